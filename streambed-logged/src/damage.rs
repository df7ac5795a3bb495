//! Accounting for damaged regions of a topic's files. Every reader of the files (recovery,
//! subscribers, compaction, `offsets()`) comes across the same damage; this is where it is
//! warned about once per region and counted for `FileLog::damage_stats`.

use std::{collections::HashSet, fs::File, path::Path, sync::Mutex};

use log::warn;
use metrics::Counter;

/// Regions remembered to warn about each once; past this many the memory is started over,
/// so a file with endless damage costs bounded memory (and some repeated warnings).
const MAX_REMEMBERED: usize = 4096;

/// Damage found in a topic's files by this process, from `FileLog::damage_stats`.
///
/// A region is a run of bytes that are not records, between two intact records or from
/// the last intact record to the end of a file. Each region is counted once however many
/// readers skip it; a copy of it that a compaction carries into a new history counts
/// again.
///
/// ```
/// let stats = streambed_logged::DamageStats::default();
/// assert_eq!((stats.regions, stats.bytes), (0, 0));
/// ```
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct DamageStats {
    /// Damaged regions skipped.
    pub regions: u64,
    /// Bytes in them.
    pub bytes: u64,
}

/// The damage a topic's readers reported, shared by all of them in this process.
#[derive(Debug, Default)]
pub(crate) struct DamageLog {
    state: Mutex<State>,
    /// The log's `logged_damaged_bytes_total`.
    damaged_bytes: Option<Counter>,
}

#[derive(Debug, Default)]
struct State {
    seen: HashSet<(u64, u64, u64)>,
    stats: DamageStats,
}

#[cfg(unix)]
fn file_id(file: &File) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    file.metadata().map_or((0, 0), |m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_file: &File) -> (u64, u64) {
    (0, 0)
}

impl DamageLog {
    /// A log that also counts the bytes of each new region into `damaged_bytes`.
    pub(crate) fn counting_into(damaged_bytes: Counter) -> Self {
        Self {
            state: Mutex::default(),
            damaged_bytes: Some(damaged_bytes),
        }
    }

    /// Notes that bytes `from..to` of `file` (found at `path`) are not records.
    pub(crate) fn report(&self, path: &Path, file: &File, from: u64, to: u64) {
        let (dev, ino) = file_id(file);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.seen.len() >= MAX_REMEMBERED {
            state.seen.clear();
        }
        if state.seen.insert((dev, ino, from)) {
            state.stats.regions += 1;
            state.stats.bytes += to.saturating_sub(from);
            if let Some(counter) = &self.damaged_bytes {
                counter.increment(to.saturating_sub(from));
            }
            warn!(
                "{}: bytes {from}..{to} are damaged; skipping them, the records around them \
                 stay readable",
                path.display()
            );
        }
    }

    pub(crate) fn stats(&self) -> DamageStats {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.stats.clone()
    }
}
