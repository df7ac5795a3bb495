//! What a `FileLog` is configured with: the durability mode and the sizes every part of the
//! log reads. Its own module so that the parts depend on it, not on the crate root.

use crate::create::Modes;

/// What `produce` has done with a record by the time it answers.
///
/// | mode | process crash | power loss |
/// |------|---------------|------------|
/// | [`Buffered`](Durability::Buffered) | every acknowledged record survives | recent acknowledged records may be lost (what the OS had not written back) |
/// | [`Fsync`](Durability::Fsync) | every acknowledged record survives | every acknowledged record survives |
///
/// In both modes a torn record left at the end by a crash is cut off when the topic is next
/// written, so the log always reopens; damage elsewhere is skipped (see
/// [`FileLog::damage_stats`](crate::FileLog::damage_stats)).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum Durability {
    /// The default, as upstream: the writer batches queued records into one `write` when it
    /// runs out of requests and answers once the bytes are in the operating system's page
    /// cache. Fast; visible at once to every reader.
    #[default]
    Buffered,
    /// `produce` answers only after `fdatasync` returned for the record's batch. Concurrent
    /// producers share one sync (group commit), so throughput grows with concurrency.
    Fsync,
}

/// The sizes and modes a [`FileLog`](crate::FileLog) works with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) compaction_threshold_size: u64,
    pub(crate) read_buffer_size: usize,
    pub(crate) compaction_write_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) max_record_size: usize,
    pub(crate) durability: Durability,
    pub(crate) modes: Modes,
}
