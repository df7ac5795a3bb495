//! What a `FileLog` is configured with: the durability level and the sizes every part of
//! the log reads. Its own module so that the parts depend on it, not on the crate root.

use std::time::Duration;

use crate::create::Modes;

/// What `produce` has done with a record by the time it answers: the one choice between
/// speed and what survives a failure. Every level keeps the same order, offsets and
/// read-your-writes in the producing process: an acknowledged record is in `offsets()`
/// and reaches new subscribers at once.
///
/// | level | answers once the record is | process crash | power loss | cost per awaited produce |
/// |-------|----------------------------|---------------|------------|---------------------------|
/// | [`InProcess`](Durability::InProcess) | in the log's own buffer | up to [`IN_PROCESS_FLUSH_DELAY`] or [`IN_PROCESS_FLUSH_SIZE`] of acknowledged records lost | as a process crash, plus what the OS had not written back | a copy: no system call |
/// | [`Buffered`](Durability::Buffered) (the default) | in the OS page cache (`write` returned) | every acknowledged record survives | recent acknowledged records may be lost | one `write` per batch |
/// | [`Fsync`](Durability::Fsync) | on the disk (`fdatasync` returned) | every acknowledged record survives | every acknowledged record survives | one `write` and one `fdatasync` per batch |
///
/// A batch is what concurrent producers of a topic append while the previous batch is
/// being written: the producer that finds no write under way writes every record queued
/// so far in one system call (and one `fdatasync`: group commit), so throughput grows with
/// concurrency while one awaited producer alone never waits for another task.
///
/// At every level a torn record left at the end by a crash is cut off when the topic is
/// next written, so the log always reopens; damage elsewhere is skipped (see
/// [`FileLog::damage_stats`](crate::FileLog::damage_stats)).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum Durability {
    /// As upstream's `FileLog`: `produce` answers once the record is in the log's own
    /// buffer. Readers in this process see it at once (a subscriber that reaches it
    /// writes the buffer out); other processes see it once the buffer is written, within
    /// [`IN_PROCESS_FLUSH_DELAY`] or as soon as [`IN_PROCESS_FLUSH_SIZE`] bytes wait, and
    /// when the topic is closed or the last clone of the log is dropped. Records still in
    /// the buffer when the process dies are lost; their offsets are never given out again
    /// by this process.
    InProcess,
    /// The default: `produce` answers once the record's batch is written to the file, so
    /// it survives a crash (even `SIGKILL`) of the process and is visible at once to every
    /// reader, in this process or another.
    #[default]
    Buffered,
    /// `produce` answers only after `fdatasync` returned for the record's batch, so it
    /// survives a power loss. Concurrent producers share one sync (group commit), so
    /// throughput grows with concurrency.
    Fsync,
}

/// How long at most a record acknowledged at [`Durability::InProcess`] waits in the log's
/// buffer before the file has it.
pub const IN_PROCESS_FLUSH_DELAY: Duration = Duration::from_millis(1);

/// How many bytes at most wait in a topic's buffer at [`Durability::InProcess`]: reaching
/// this writes the buffer out at once.
pub const IN_PROCESS_FLUSH_SIZE: usize = 64 * 1024;

/// Topics whose files stay open for appending, by default: each holds two file
/// descriptors (the topic file and its offset index), so the default keeps a log well
/// below the usual limit of 1,024 open files.
pub const DEFAULT_OPEN_TOPIC_LIMIT: usize = 128;

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
    pub(crate) open_topic_limit: usize,
}
