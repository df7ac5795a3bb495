//! A subscriber's position in one topic: it reads the topic's files in order with a small
//! fixed buffer, hands records over in batches, and sleeps until the appender (in this
//! process) or the file watcher (for other processes) says the topic changed. Records are
//! framed by [`crate::frame`], which skips damage as every other reader does.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use log::warn;
use streambed::commit_log::{ConsumerRecord, Offset};
use tokio::sync::watch;

use crate::{
    appender,
    files::{self, FileKind, OpenFile},
    frame::{Frame, Framer, Tail},
    index::{entry_matches, IndexReader},
    shared::{Inner, TailState, TopicShared},
};

/// Records handed over per batch: enough to amortise the wake-up, small enough to bound
/// memory.
const BATCH: usize = 256;
/// Records handed over between two yields to the runtime.
const YIELD_EVERY: usize = 4096;
/// How often a reader looks at the files when no notification can reach it.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);

pub(crate) struct Cursor {
    inner: Arc<Inner>,
    shared: Arc<TopicShared>,
    rx: watch::Receiver<TailState>,
    last: Option<Offset>,
    files: VecDeque<OpenFile>,
    framer: Framer,
    ready: VecDeque<ConsumerRecord>,
    /// Encoded bytes of the records in `ready`, for the log's telemetry.
    ready_bytes: u64,
    since_yield: usize,
}

enum Step {
    Ready,
    Wait,
}

impl Cursor {
    pub(crate) fn new(inner: Arc<Inner>, shared: Arc<TopicShared>, last: Option<Offset>) -> Self {
        let rx = shared.tail.subscribe();
        let config = inner.config();
        Self {
            inner,
            shared,
            rx,
            last,
            files: VecDeque::new(),
            framer: Framer::new(0, config.read_buffer_size, config.max_record_size),
            ready: VecDeque::new(),
            ready_bytes: 0,
            since_yield: 0,
        }
    }

    /// The next record after the last one handed out, waiting for it as long as needed.
    pub(crate) async fn next(&mut self) -> ConsumerRecord {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return record;
            }
            match self.fill() {
                // Reading from the page cache never waits, so give producers and other
                // tasks their turn now and then, even on a single-threaded runtime.
                Step::Ready => {
                    let bytes = std::mem::take(&mut self.ready_bytes);
                    self.shared.telemetry.consumed(self.ready.len(), bytes);
                    self.since_yield += self.ready.len();
                    if self.since_yield >= YIELD_EVERY {
                        self.since_yield = 0;
                        tokio::task::yield_now().await;
                    }
                }
                Step::Wait => self.wait().await,
            }
        }
    }

    async fn wait(&mut self) {
        let notified = self.rx.borrow().local_writer || self.inner.watcher_live();
        if notified {
            // The sender lives in `shared`, which this cursor holds: this cannot end.
            let _ = self.rx.changed().await;
        } else {
            let _ = tokio::time::timeout(POLL_INTERVAL, self.rx.changed()).await;
        }
    }

    /// Opens the topic's files afresh and positions on the first record after `last`.
    fn reopen(&mut self) -> bool {
        let paths = &self.shared.paths;
        let limit = self.inner.config().max_record_size;
        let mut opened = match files::open_sequence(paths) {
            Ok(files) => VecDeque::from(files),
            Err(e) => {
                warn!("Cannot open the files of topic {}: {e}", self.shared.topic);
                return false;
            }
        };
        let mut start = 0;
        let active = opened.back().filter(|f| f.kind == FileKind::Active);
        if let (Some(last), Some(active)) = (self.last, active) {
            let target = last.saturating_add(1);
            let (first, starts_damaged) =
                files::first_record(&active.file, limit).unwrap_or((None, false));
            if first.is_some_and(|first| first <= target) {
                // Everything still to read is in the active file: use its index.
                let entry = IndexReader::open(&paths.index)
                    .and_then(|index| index.floor(target))
                    .filter(|entry| entry_matches(&active.file, *entry, limit));
                if let Some(entry) = entry {
                    start = entry.pos;
                }
                // Damage at the start of the file is framed after the offsets of the files
                // before it, as every other reader frames it: read them too then.
                if entry.is_some() || !starts_damaged {
                    while opened.len() > 1 {
                        opened.pop_front();
                    }
                }
            }
        }
        self.files = opened;
        self.framer.reset(start);
        !self.files.is_empty()
    }

    fn ready_or_wait(&self) -> Step {
        if self.ready.is_empty() {
            Step::Wait
        } else {
            Step::Ready
        }
    }

    /// Reads and frames what is there; `Wait` when the topic has nothing more for now.
    fn fill(&mut self) -> Step {
        self.rx.borrow_and_update();
        if self.files.is_empty() && !self.reopen() {
            return Step::Wait;
        }
        while self.ready.len() < BATCH {
            let Some(current) = self.files.front() else {
                return self.ready_or_wait();
            };
            let frame = match self.framer.next(&current.file) {
                Ok(frame) => frame,
                Err(e) => {
                    warn!("Cannot read topic {}: {e}", self.shared.topic);
                    self.files.clear();
                    return self.ready_or_wait();
                }
            };
            let path = files::path_of(&self.shared.paths, current.kind);
            match frame {
                Frame::Record { view, pos, raw } => {
                    if unacknowledged(&self.rx, view.offset) {
                        // In the file but not yet acknowledged by this process:
                        // a failed write may still cut it off and give its offset to
                        // another record. Read it again from its start once the appender
                        // says more.
                        let last = self.last;
                        self.framer.reset(pos);
                        self.framer.after(last);
                        return self.ready_or_wait();
                    }
                    if self.last < Some(view.offset) {
                        self.last = Some(view.offset);
                        self.ready_bytes += raw.len() as u64;
                        self.ready
                            .push_back(view.to_consumer_record(&self.shared.topic));
                    }
                }
                Frame::Damaged { from, to } => {
                    self.shared.damage.report(path, &current.file, from, to);
                }
                Frame::End(tail) => {
                    if !self.ready.is_empty() {
                        return Step::Ready;
                    }
                    if current.kind == FileKind::Active {
                        if files::is_active(&current.file, &self.shared.paths) {
                            // Records acknowledged `InProcess` may still be in the
                            // appender's buffer: write it out to read them now.
                            if acknowledged_beyond(&self.rx, self.last)
                                && appender::flush(&self.shared) == appender::Flushed::Written
                            {
                                continue;
                            }
                            // The appender appends (or repairs a torn tail) here next.
                            return Step::Wait;
                        }
                        // Aged by a compaction: find what follows under the new names.
                        if !self.reopen() {
                            return Step::Wait;
                        }
                        continue;
                    }
                    // A history file is complete: whatever does not frame is damage.
                    match tail {
                        Tail::Clean { .. } => {}
                        Tail::Torn { at: from } | Tail::Damaged { from, .. } => {
                            let to = current.file.metadata().map_or(from, |m| m.len());
                            self.shared.damage.report(path, &current.file, from, to);
                        }
                    }
                    if self.framer.held_back().is_some() {
                        // A record held back at the end of this file: the next file's first
                        // record may confirm its order.
                        let next_first = self.files.get(1).and_then(|next| {
                            let limit = self.inner.config().max_record_size;
                            files::first_offset(&next.file, limit).ok().flatten()
                        });
                        if self.framer.confirm_held_back(next_first) {
                            continue;
                        }
                    }
                    self.files.pop_front();
                    // Offsets rise across files: the next one is framed after this one.
                    let before = self.framer.last();
                    self.framer.reset(0);
                    self.framer.after(before);
                    if self.files.is_empty() {
                        // The active file is being replaced; its appender will say when.
                        return Step::Wait;
                    }
                }
            }
        }
        Step::Ready
    }
}

/// Whether this process's appender acknowledged records after `last`.
fn acknowledged_beyond(tail: &watch::Receiver<TailState>, last: Option<Offset>) -> bool {
    let tail = tail.borrow();
    tail.local_writer && tail.ends.is_some_and(|(_, acked)| Some(acked) > last)
}

/// Whether the record at `offset` is beyond what this process's appender has published.
/// Records written by another process are taken as they are read.
fn unacknowledged(tail: &watch::Receiver<TailState>, offset: Offset) -> bool {
    let tail = tail.borrow();
    tail.local_writer && tail.ends.is_none_or(|(_, last)| offset > last)
}
