//! Compaction: keeping a topic's storage bounded by dropping records that newer records of
//! the same key supersede, while the topic is being written.
//!
//! # Model
//!
//! Once compaction is registered for a topic (`FileLog::register_compaction`), each time
//! the active file passes `compaction_threshold_size` bytes the appender *ages* it: the
//! history (if any) is renamed `<topic>.ancient_history` and the active file `<topic>.history`;
//! appends continue into a new, empty active file. A background task then compacts the
//! aged files:
//!
//! 1. **Analyse**: the [`CompactionStrategy`] is fed every record of the aged files and
//!    [`collect`](CompactionStrategy::collect)s, per key, the earliest offset to keep.
//! 2. **Write** `<topic>.work` with the records kept (records whose key the strategy does
//!    not return, or did not get to, are all kept; so is the last record, which keeps the
//!    topic's end offset), then `fsync` it. Once the ancient history is read, if it holds
//!    no record to keep (the usual case: it is the previous compaction's result, and the
//!    keys it holds came again in the history), it is deleted at once, so its space is
//!    free while the work file grows: every record it held is superseded by one in the
//!    history. Damaged bytes in the aged files (see `FileLog::damage_stats`) are skipped
//!    like every reader skips them, and copied into the work file where they were, with
//!    the records just before and after them: damage is never destroyed, the offsets it
//!    may hold stay after the last intact record, and readers resynchronise after it on
//!    the same record as before.
//! 3. **Commit**: rename the work file over the history, then delete the ancient history
//!    if it is still there. In between, a reader that finds the ancient history reads it,
//!    then skips the copies of its kept records that start the new history.
//!
//! When the strategy reaches its key limit ([`MaxKeysReached`]`(true)`), the pass is
//! abandoned and the keys are split in two halves by a hash, each analysed and written in a
//! pass of its own, halving again as needed, until every key has been processed. Memory
//! therefore stays bounded by the key limit, at the cost of more passes over the history.
//!
//! Every step leaves files that read correctly: a crash at any point reopens with every
//! record held before, with the compacted result, or (once an ancient history that held
//! nothing to keep is gone) with the history it was superseded by, which the next aging
//! compacts; never a loss of a record the compaction keeps, never a repeated offset (see
//! `compaction::recovery` in the crate's source for how leftovers are resolved).
//!
//! # Back-pressure and sizing
//!
//! Producing never waits for a compaction that is within one threshold: aging is a pair of
//! renames. Only when the active file passes the threshold again while the previous
//! compaction still runs do producers wait before appending until it finishes: the
//! compaction is then more than one threshold behind. Size the threshold so that
//! compacting about `threshold + kept records` bytes (two reads, one write and an `fsync`)
//! takes less time than producing one threshold does.
//!
//! The storage a topic takes peaks just before a commit: the aged history (one threshold),
//! the work file (the records kept: one record per key for [`KeyBasedRetention`], the
//! kept records per key for [`NthKeyBasedRetention`]) and the active file, which holds
//! what was produced since the aging. While compaction keeps up that is well under two
//! thresholds plus the kept records; when it falls behind, the active file reaches the
//! threshold and the peak is two thresholds plus the kept records (each file passes the
//! threshold by at most the last write batch). An ancient history that still holds
//! records to keep (a topic with more keys than one threshold of records carries) stays
//! until the commit and adds its size.
//!
//! Size the key limit to the number of distinct keys a topic carries so that one pass
//! suffices; each halving costs another read and write of the history.

mod pass;
mod recovery;
mod strategy;
mod task;

#[cfg(test)]
pub(crate) use pass::compact;
pub(crate) use recovery::recover_history;
pub use strategy::{
    CompactionMap, CompactionStrategy, KeyBasedRetention, KeyBasedRetentionState, MaxKeysReached,
    NthKeyBasedRetention, NthKeyBasedRetentionState, Qid, QidKeyState,
};
pub use task::CompactionStats;
pub(crate) use task::{register, unregister, CompactionState};
