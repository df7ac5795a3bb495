//! Appending to a topic: the producer appends itself, with no task between it and the
//! file.
//!
//! # The story of a `produce`
//!
//! 1. Under the topic's appender lock (a short, synchronous critical section) the producer
//!    opens the topic if needed, encodes its record after the pending ones and takes the
//!    next offset: offsets are given out in the order records are encoded, which is the
//!    order they reach the file.
//! 2. At [`Durability::InProcess`] that is all: the record is acknowledged (published to
//!    `offsets()` and subscribers) and the flusher thread (see [`crate::background`]), a
//!    full buffer or a subscriber that reaches it writes it out.
//! 3. At [`Durability::Fsync`] the producer waits on the [`Batch`] its record is in; the
//!    syncer thread writes and syncs the pending batches (group commit), gathering each
//!    until most of the last batch's producers are back.
//! 4. Otherwise, if no batch is being written, the producer *leads*: it takes every pending
//!    record (its own and those of producers that came while it was away), writes them with
//!    one `write` without the lock, then takes the lock again to commit: the index, the new
//!    end published to readers, the aging of the file for compaction. If others appended
//!    meanwhile it writes their batch too, a few times at most, then hands over. When
//!    producers joined its last batch (and now and then to find out), it first pauses once
//!    so that those ready to run join this one.
//! 5. If a batch is being written, the producer waits on its [`Batch`]; it wakes when that
//!    batch is written (or failed), or when the leader hands over, and then one of the
//!    waiters leads.
//!
//! A lone producer awaiting each record therefore never waits for another task and never
//! allocates for coordination; concurrent producers share writes and syncs (group commit).
//!
//! # Invariants
//!
//! * One appender per topic file in a log: the [`Slot`] lives in the topic's shared state,
//!   and only the producer leading (`writing`) touches the file, with or without the lock.
//! * Readers never take this lock to read: they read the file, up to the end published
//!   (a record in the file beyond it is not acknowledged yet and may still be cut off).
//! * A failed write cuts the file back to the last committed batch, fails that batch and
//!   every record encoded after it, and closes the appender: the next produce recovers the
//!   file. Offsets acknowledged `InProcess` are never given out again.
//! * A leader's future dropped while it pauses to gather a batch writes the batch as it is
//!   dropped (see [`Leading`]), so a cancelled produce never stalls the others nor leaves
//!   a record behind.

mod batch;
mod open;
#[cfg(test)]
mod tests;
mod write;

use std::{pin::pin, sync::Arc, time::Duration};
use streambed::commit_log::{Offset, ProducerRecord};

use self::{
    batch::{Batch, YieldNow},
    open::{Open, Resume, Taken},
    write::Writer,
};
use crate::{
    background::Background,
    config::{Config, Durability, IN_PROCESS_FLUSH_SIZE},
    error::ProduceError,
    open_limit::OpenLimit,
    shared::{lock, TopicShared},
};

/// How long producers held back by a running compaction wait before looking again.
const BACK_PRESSURE_RECHECK: Duration = Duration::from_millis(100);

/// Batches a leader writes at most before handing over to a waiting producer: enough to
/// keep the file busy, few enough to bound the latency of the leader's own produce.
const MAX_LEADS: usize = 8;

/// Every this many leads, a lone leader pauses once to find out whether other producers
/// would join its batch (on a single thread they can only while it pauses).
pub(crate) const PROBE_EVERY: u32 = 64;

/// Bytes that may wait for a write before producers wait for it to drain: bounds the
/// memory that a burst of concurrent producers takes.
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// The appender of one topic, in its shared state.
#[derive(Default)]
pub(crate) struct Slot {
    state: State,
    /// A producer is writing a batch: nobody else touches the file until it is done.
    writing: bool,
    /// The topic is to be closed once the batches being written and pending are written.
    close_after: bool,
}

enum State {
    /// No file open. Opening resumes from `resume` when the file is as it was left;
    /// otherwise it recovers the files. Offsets below `next_at_least` were acknowledged
    /// (and may have been read) although the file lost them.
    Closed {
        resume: Option<Resume>,
        next_at_least: Offset,
    },
    Open(Box<Open>),
}

impl Default for State {
    fn default() -> Self {
        State::Closed {
            resume: None,
            next_at_least: 0,
        }
    }
}

impl Slot {
    fn open_mut(&mut self) -> Option<&mut Open> {
        match &mut self.state {
            State::Open(open) => Some(open),
            State::Closed { .. } => None,
        }
    }

    /// Whether the topic holds its files open with nothing to write: it may give them
    /// back.
    pub(crate) fn idle(&self) -> bool {
        !self.writing && matches!(&self.state, State::Open(open) if open.pending.is_empty())
    }

    /// Whether the topic holds its files open.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }
}

/// What a producer needs from the log besides the topic.
#[derive(Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) config: Config,
    pub(crate) flusher: &'a Background,
    pub(crate) syncer: &'a Background,
    pub(crate) open_limit: &'a Arc<OpenLimit>,
}

/// Appends `records` (at least one) to the topic of `shared`, all or none, and answers the
/// first one's offset (the others follow it one by one) once they are as durable as
/// `cx.config.durability` says. They are encoded together, so they share every write.
pub(crate) async fn append(
    shared: &Arc<TopicShared>,
    cx: Context<'_>,
    records: &[ProducerRecord],
) -> Result<Offset, ProduceError> {
    loop {
        // The lock is never held across an await: each step decides under it, then waits.
        let step = step(shared, cx, records);
        match step? {
            Step::Acknowledged(offset) => return Ok(offset),
            Step::Lead(offset, None) => return lead(shared).await.map(|()| offset),
            // Nothing to wait for: written at once, with no further await.
            Step::Lead(offset, Some(taken)) => {
                return write::write_batches_as(shared, Writer::Producer, Some(taken))
                    .map(|()| offset)
            }
            Step::Follow(offset, batch) => return wait(shared, batch).await.map(|()| offset),
            Step::Drain(batch) => {
                let _relay = batch.relay_on_drop();
                let mut notified = pin!(batch.notify.notified());
                notified.as_mut().enable();
                if batch.outcome().is_none() {
                    notified.await;
                }
            }
            Step::Compaction => wait_for_compaction(shared).await,
        }
    }
}

/// What a producer does next, decided under the appender lock.
enum Step {
    /// Acknowledged before it is written (`InProcess`).
    Acknowledged(Offset),
    /// Encoded; no batch is being written: write it (taken already, unless the leader
    /// first pauses to gather others).
    Lead(Offset, Option<Taken>),
    /// Encoded into a batch that waits for the one being written.
    Follow(Offset, Arc<Batch>),
    /// Not encoded: too much waits to be written already; try again after this batch.
    Drain(Arc<Batch>),
    /// Not encoded: a compaction is behind; try again once it is done.
    Compaction,
}

fn step(
    shared: &Arc<TopicShared>,
    cx: Context<'_>,
    records: &[ProducerRecord],
) -> Result<Step, ProduceError> {
    let mut slot = lock(&shared.appender);
    if !slot.is_open() {
        open(shared, &mut slot, cx)?;
    }
    let writing = slot.writing;
    let Some(open) = slot.open_mut() else {
        unreachable!("opened above")
    };
    open.config = cx.config;
    if open.len >= cx.config.compaction_threshold_size && compaction_behind(shared) {
        return Ok(Step::Compaction);
    }
    if writing && open.pending.bytes.len() >= MAX_PENDING {
        let batch = open.batch.get_or_insert_with(Default::default).clone();
        return Ok(Step::Drain(batch));
    }
    let offset = open.encode_all(records, cx.config.max_record_size)?;
    cx.open_limit.touch(&shared.last_use);
    if cx.config.durability == Durability::InProcess {
        open.ack_encoded(shared);
        if open.pending.bytes.len() >= IN_PROCESS_FLUSH_SIZE && !writing {
            slot.writing = true;
            drop(slot);
            // The records are acknowledged already; a failure is logged and their
            // offsets are never given out again.
            let _ = write_batches(shared);
        } else if !open.flush_queued {
            open.flush_queued = true;
            drop(slot);
            cx.flusher.queue(shared);
        }
        return Ok(Step::Acknowledged(offset));
    }
    if cx.config.durability == Durability::Fsync {
        // The syncer writes and syncs; this producer waits for its batch.
        let batch = open.batch.get_or_insert_with(Default::default).clone();
        let filled = open.syncer_waiting && open.pending.len() >= open.gather_target();
        slot.writing = true;
        drop(slot);
        if !writing {
            cx.syncer.queue(shared);
        } else if filled {
            shared.appended.notify_one();
        }
        return Ok(Step::Follow(offset, batch));
    }
    if writing {
        let batch = open.batch.get_or_insert_with(Default::default).clone();
        return Ok(Step::Follow(offset, batch));
    }
    let taken = (!open.gathers()).then(|| open.take());
    slot.writing = true;
    Ok(Step::Lead(offset, taken))
}

/// Opens the topic, within the log's bound on open topics.
fn open(shared: &Arc<TopicShared>, slot: &mut Slot, cx: Context<'_>) -> Result<(), ProduceError> {
    let (resume, next_at_least) = match &slot.state {
        State::Closed {
            resume,
            next_at_least,
        } => (*resume, *next_at_least),
        State::Open(_) => return Ok(()),
    };
    let opened = Open::start(shared, cx.config, resume, next_at_least)
        .map_err(|e| ProduceError::io(&shared.topic, "recovering the topic's files", e))?;
    opened.publish(shared);
    slot.state = State::Open(Box::new(opened));
    cx.open_limit
        .opened(shared, cx.config.open_topic_limit, give_back);
    Ok(())
}

/// Whether producing must wait for the topic's compaction: the active file passed the
/// threshold again while the previous compaction still runs (back-pressure).
fn compaction_behind(shared: &TopicShared) -> bool {
    let state = lock(&shared.compaction);
    state.handle.is_some() && state.busy && !state.backing_off()
}

async fn wait_for_compaction(shared: &TopicShared) {
    let idle = shared.compaction_idle.notified();
    // Compaction runs on tokio, so its producers do.
    let _ = tokio::time::timeout(BACK_PRESSURE_RECHECK, idle).await;
}

/// Waits until `batch` is written, leading it when the producer writing before hands over.
async fn wait(shared: &Arc<TopicShared>, batch: Arc<Batch>) -> Result<(), ProduceError> {
    let _relay = batch.relay_on_drop();
    loop {
        // Listening before looking: a hand-over after the look still wakes this producer.
        let mut notified = pin!(batch.notify.notified());
        notified.as_mut().enable();
        if let Some(outcome) = batch.outcome() {
            return outcome;
        }
        // Until the leadership is let go with this batch pending, only a leader touches it:
        // waiting needs no lock (the appender lock is the one every producer takes).
        if batch.electing() {
            let leads = {
                let mut slot = lock(&shared.appender);
                if let Some(outcome) = batch.outcome() {
                    return outcome;
                }
                let leads = !slot.writing;
                if leads {
                    slot.writing = true;
                    batch.elected();
                }
                leads
            };
            if leads {
                return lead(shared).await;
            }
        }
        notified.await;
    }
}

/// Leadership held by a producer that may still be dropped before it writes: dropping it
/// writes the pending batch at once, so that a record encoded (and maybe awaited by
/// others) is never left behind by a cancelled produce.
struct Leading<'a> {
    shared: &'a Arc<TopicShared>,
    armed: bool,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = write_batches(self.shared);
        }
    }
}

/// Writes pending batches as a producer leading (the caller set `writing`), then hands
/// over. Answers how the first batch went: the one holding the leader's own record, if any.
fn write_batches(shared: &Arc<TopicShared>) -> Result<(), ProduceError> {
    write::write_batches_as(shared, Writer::Producer, None)
}

/// Writes the pending batches, this producer's record in the first, as the leader, after
/// a pause that lets others join.
async fn lead(shared: &Arc<TopicShared>) -> Result<(), ProduceError> {
    let mut leading = Leading {
        shared,
        armed: true,
    };
    // Let producers ready to run on this executor join the batch: on one thread they
    // could not otherwise.
    YieldNow::default().await;
    leading.armed = false;
    write_batches(shared)
}

/// Closes an idle appender: its files are closed and its state kept to reopen cheaply
/// (`resume`), or dropped so that reopening recovers the files as a new appender would.
fn close_now(shared: &TopicShared, slot: &mut Slot, resume: bool) {
    let State::Open(open) = &slot.state else {
        return;
    };
    let (resume, next_at_least) = if resume {
        (Some(open.resume_point()), 0)
    } else {
        (None, open.next_offset())
    };
    slot.state = State::Closed {
        resume,
        next_at_least,
    };
    open::publish(shared, false, None, None);
}

/// Writes out what is pending and closes the topic's files (at once, or when the producer
/// writing now is done). Producing again reopens them.
pub(crate) fn close(shared: &Arc<TopicShared>) {
    let mut slot = lock(&shared.appender);
    slot.close_after = true;
    if slot.writing {
        return;
    }
    slot.writing = true;
    drop(slot);
    let _ = write_batches(shared);
}

/// What [`flush`] did.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Flushed {
    /// Wrote the pending records.
    Written,
    /// Nothing was pending.
    Nothing,
    /// Another producer is writing: what is pending is left to it or to a later flush.
    Busy,
}

/// Writes out what `InProcess` producers left pending, unless a write is under way.
pub(crate) fn flush(shared: &Arc<TopicShared>) -> Flushed {
    let mut slot = lock(&shared.appender);
    let pending = slot.open_mut().is_some_and(|o| !o.pending.is_empty());
    if !pending {
        return Flushed::Nothing;
    }
    if slot.writing {
        return Flushed::Busy;
    }
    slot.writing = true;
    drop(slot);
    let _ = write_batches(shared);
    Flushed::Written
}

/// Writes and syncs what `Fsync` producers queued, as the syncer thread: the producer that
/// queued the topic handed the leadership over with it.
pub(crate) fn sync(shared: &Arc<TopicShared>) -> Flushed {
    let _ = write::write_batches_as(shared, Writer::Syncer, None);
    Flushed::Written
}

/// Gives an idle topic's files back (for [`OpenLimit`]); `false` if it is busy.
fn give_back(shared: &TopicShared) -> bool {
    let Ok(mut slot) = shared.appender.try_lock() else {
        return false;
    };
    if !slot.idle() {
        return false;
    }
    close_now(shared, &mut slot, true);
    true
}
