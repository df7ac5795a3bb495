//! Writing taken batches as the leader (a producer, or the syncer thread): write, sync,
//! commit under the lock, then the next batch or the release of the leadership, in the same
//! critical section so that no record appended meanwhile is left behind. A failed write
//! fails its batch and everything encoded after it and closes the appender.

use std::{
    io,
    sync::{Arc, MutexGuard},
    time::{Duration, Instant},
};

use log::warn;

use super::{close_now, open, open::Taken, Slot, State, MAX_LEADS};
use crate::{
    config::Durability,
    error::ProduceError,
    shared::{lock, TopicShared},
};

/// Who writes the batches.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Writer {
    /// A producer: a few batches at most, then it hands over.
    Producer,
    /// The syncer thread: until nothing is pending, gathering each batch first.
    Syncer,
}

/// Writes pending batches, starting with `taken` if the caller took one, until none is
/// left or (a producer) it is time to hand over; then releases the leadership. Answers how
/// the first batch went. The lock is taken once between two batches: commit, then the next
/// batch or the release.
pub(super) fn write_batches_as(
    shared: &Arc<TopicShared>,
    writer: Writer,
    mut taken: Option<Taken>,
) -> Result<(), ProduceError> {
    let mut first = None;
    let mut leads = 0;
    let mut slot: Option<MutexGuard<'_, Slot>> = None;
    loop {
        let next = match taken.take() {
            Some(next) => next,
            None => {
                let guard = slot.take().unwrap_or_else(|| lock(&shared.appender));
                match next_or_release(shared, guard, writer, leads) {
                    Some(next) => next,
                    None => break,
                }
            }
        };
        leads += 1;
        let (outcome, guard) = write_taken(shared, writer, next);
        let failed = outcome.is_err();
        first.get_or_insert(outcome);
        match guard {
            Some(mut guard) if failed => {
                release_locked(shared, &mut guard);
                break;
            }
            None if failed => {
                release(shared);
                break;
            }
            guard => slot = guard,
        }
    }
    first.unwrap_or(Ok(()))
}

/// The next batch to write, or `None` once the leadership is released (in the same
/// critical section, so that no record can be appended in between and be left behind).
fn next_or_release(
    shared: &Arc<TopicShared>,
    mut slot: MutexGuard<'_, Slot>,
    writer: Writer,
    leads: usize,
) -> Option<Taken> {
    let mut gathered = false;
    loop {
        let closing = slot.close_after;
        let Some(open) = slot.open_mut() else { break };
        if open.pending.is_empty() {
            break;
        }
        let others_wait = open.batch.is_some() || open.flush_queued;
        if writer == Writer::Producer && leads >= MAX_LEADS && others_wait && !closing {
            break;
        }
        let gathering = open.pending.len() < open.gather_target();
        if writer == Writer::Syncer && !gathered && !closing && gathering {
            // The producers of the last batch are coming back: one sync for them all is
            // worth a short wait (bounded by a quarter of a sync).
            gathered = true;
            open.syncer_waiting = true;
            let wait = open.gather_time;
            slot = shared
                .appended
                .wait_timeout(slot, wait)
                .map_or_else(|e| e.into_inner().0, |(slot, _)| slot);
            if let Some(open) = slot.open_mut() {
                open.syncer_waiting = false;
            }
            continue;
        }
        return Some(open.take());
    }
    release_locked(shared, &mut slot);
    None
}

/// Writes one taken batch and commits it, or fails it and everything after it. Answers
/// with the lock still held when no producer waits on the batch (the caller goes on under
/// it); otherwise the lock is let go before they are woken.
fn write_taken(
    shared: &TopicShared,
    writer: Writer,
    taken: Taken,
) -> (Result<(), ProduceError>, Option<MutexGuard<'_, Slot>>) {
    let Taken {
        file,
        records,
        batch,
        sync,
    } = taken;
    let mut written = write_at_end(&file, &records.bytes);
    let mut took = Duration::ZERO;
    if written.is_ok() && sync {
        let started = Instant::now();
        written = file.sync_data();
        took = started.elapsed();
    }
    let mut slot = lock(&shared.appender);
    let outcome = match written {
        Ok(()) => {
            if let Some(open) = slot.open_mut() {
                if sync {
                    open.synced_in(took);
                }
                open.commit(shared, records);
                open.age_when_due(shared);
            }
            Ok(())
        }
        Err(e) => Err(fail(shared, &mut slot, e)),
    };
    match batch {
        None => (outcome, Some(slot)),
        Some(batch) => {
            drop(slot);
            match writer {
                Writer::Producer => batch.complete(outcome.clone()),
                Writer::Syncer => batch.complete_relayed(outcome.clone()),
            }
            (outcome, None)
        }
    }
}

/// Appends `bytes` to `file`, opened with `O_APPEND`. On Linux through `pwrite`, which
/// appends all the same on such a file but skips the lock on the shared file position that
/// `write` takes: a tenth of the kernel's time for a small record.
#[cfg(target_os = "linux")]
fn write_at_end(file: &std::fs::File, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(bytes, 0)
}

#[cfg(not(target_os = "linux"))]
fn write_at_end(mut file: &std::fs::File, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    file.write_all(bytes)
}

/// After a failed write: the batch and every record encoded after it fail with the same
/// error, and the appender closes so that the next produce recovers the file.
fn fail(shared: &TopicShared, slot: &mut Slot, e: io::Error) -> ProduceError {
    let error = ProduceError::io(&shared.topic, "appending to the topic file", e);
    warn!("{error}");
    let Some(open) = slot.open_mut() else {
        return error;
    };
    open.cut_back();
    open.pending = Default::default();
    if let Some(batch) = open.batch.take() {
        batch.complete(Err(error.clone()));
    }
    // Offsets acknowledged `InProcess` may have been read: never give them again.
    let next_at_least = if open.config.durability == Durability::InProcess {
        open.next_offset()
    } else {
        0
    };
    slot.state = State::Closed {
        resume: None,
        next_at_least,
    };
    open::publish(shared, false, None, None);
    error
}

/// Ends a leadership: closes the topic if asked, or wakes the producers of a pending
/// batch so that one of them leads.
fn release(shared: &TopicShared) {
    release_locked(shared, &mut lock(&shared.appender));
}

pub(super) fn release_locked(shared: &TopicShared, slot: &mut Slot) {
    slot.writing = false;
    if slot.close_after {
        let pending = slot.open_mut().is_some_and(|o| !o.pending.is_empty());
        if !pending {
            slot.close_after = false;
            close_now(shared, slot, false);
            return;
        }
    }
    if let Some(batch) = slot.open_mut().and_then(|o| o.batch.as_ref()) {
        batch.elect();
    }
}
