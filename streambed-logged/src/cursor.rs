//! A subscriber's position in one topic: it reads the topic's files in order with a small
//! fixed buffer, hands records over in batches, and sleeps until the writer (in this
//! process) or the file watcher (for other processes) says the topic changed.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use log::{error, warn};
use streambed::commit_log::{ConsumerRecord, Offset};
use tokio::sync::watch;

use crate::{
    files::{self, FileKind, OpenFile},
    index::{entry_matches, read_at, IndexReader},
    record::{decode, Decoded},
    Inner, TailState, TopicShared,
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
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File position of `buf[end]`.
    pos: u64,
    ready: VecDeque<ConsumerRecord>,
    corrupt_at: Option<u64>,
    since_yield: usize,
}

enum Step {
    Ready,
    Wait,
    /// The bytes read last were cut off the file (a failed write): read again at once.
    Again,
}

impl Cursor {
    pub(crate) fn new(inner: Arc<Inner>, shared: Arc<TopicShared>, last: Option<Offset>) -> Self {
        let rx = shared.tail.subscribe();
        let buf = vec![0u8; inner.config.read_buffer_size.max(64)];
        Self {
            inner,
            shared,
            rx,
            last,
            files: VecDeque::new(),
            buf,
            start: 0,
            end: 0,
            pos: 0,
            ready: VecDeque::new(),
            corrupt_at: None,
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
                // Reading from the page cache never waits, so give the writer and other
                // tasks their turn now and then, even on a single-threaded runtime.
                Step::Ready => {
                    self.since_yield += self.ready.len();
                    if self.since_yield >= YIELD_EVERY {
                        self.since_yield = 0;
                        tokio::task::yield_now().await;
                    }
                }
                Step::Wait => self.wait().await,
                Step::Again => tokio::task::yield_now().await,
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

    fn reset_buffer(&mut self, pos: u64) {
        self.start = 0;
        self.end = 0;
        self.pos = pos;
        let size = self.inner.config.read_buffer_size.max(64);
        if self.buf.len() > size {
            self.buf.truncate(size);
            self.buf.shrink_to_fit();
        }
    }

    /// Opens the topic's files afresh and positions on the first record after `last`.
    fn reopen(&mut self) -> bool {
        let paths = &self.shared.paths;
        let limit = self.inner.config.max_record_size;
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
            let first = files::first_offset(&active.file, limit).ok().flatten();
            if first.is_some_and(|first| first <= target) {
                // Everything still to read is in the active file: use its index.
                if let Some(entry) = IndexReader::open(&paths.index)
                    .and_then(|index| index.floor(target))
                    .filter(|entry| entry_matches(&active.file, *entry, limit))
                {
                    start = entry.pos;
                }
                while opened.len() > 1 {
                    opened.pop_front();
                }
            }
        }
        self.files = opened;
        self.reset_buffer(start);
        !self.files.is_empty()
    }

    /// Reads and decodes what is there; `Wait` when the topic has nothing more for now.
    fn fill(&mut self) -> Step {
        self.rx.borrow_and_update();
        if self.files.is_empty() && !self.reopen() {
            return Step::Wait;
        }
        let limit = self.inner.config.max_record_size;
        loop {
            while self.ready.len() < BATCH {
                match decode(&self.buf[self.start..self.end], limit) {
                    Decoded::Record(view, len) => {
                        self.start += len;
                        if self.last < Some(view.offset) {
                            self.last = Some(view.offset);
                            self.ready
                                .push_back(view.to_consumer_record(&self.shared.topic));
                        }
                    }
                    Decoded::Incomplete => break,
                    Decoded::Corrupt(c) => {
                        let at = self.pos - (self.end - self.start) as u64;
                        let kind = self.files.front().map(|f| f.kind);
                        if kind != Some(FileKind::Active) {
                            // Nothing will ever repair a history file: go on with the next.
                            error!(
                                "Topic {}: {kind:?} file damaged at byte {at} ({c:?}); skipping its rest",
                                self.shared.topic
                            );
                            self.files.pop_front();
                            self.reset_buffer(0);
                            if self.files.is_empty() {
                                return if self.ready.is_empty() {
                                    Step::Wait
                                } else {
                                    Step::Ready
                                };
                            }
                            break;
                        }
                        let first_sight = self.corrupt_at != Some(at);
                        if first_sight {
                            warn!(
                                "Topic {}: unreadable record at byte {at} ({c:?}); waiting for the writer to repair it",
                                self.shared.topic
                            );
                            self.corrupt_at = Some(at);
                        }
                        self.files.clear();
                        return if !self.ready.is_empty() {
                            Step::Ready
                        } else if first_sight {
                            // Perhaps read across a failed write that was cut off and
                            // written over: read once more from the last record handed out.
                            Step::Again
                        } else {
                            Step::Wait
                        };
                    }
                }
            }
            if self.ready.len() >= BATCH {
                return Step::Ready;
            }
            // Keep the partial record and make room behind it.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                let grown = self.buf.len() * 2;
                self.buf.resize(grown, 0);
            }
            let Some(current) = self.files.front() else {
                return Step::Wait;
            };
            let n = match read_at(&current.file, &mut self.buf[self.end..], self.pos) {
                Ok(n) => n,
                Err(e) => {
                    warn!("Cannot read topic {}: {e}", self.shared.topic);
                    self.files.clear();
                    return Step::Wait;
                }
            };
            if n > 0 {
                self.end += n;
                self.pos += n as u64;
                continue;
            }
            if !self.ready.is_empty() {
                return Step::Ready;
            }
            if current.kind == FileKind::Active {
                if files::is_active(&current.file, &self.shared.paths) {
                    if self.end > self.start && cut_below(&current.file, self.pos) {
                        // The partial record held was cut off by a failed write: read
                        // again from the last record handed out.
                        self.files.clear();
                        return Step::Again;
                    }
                    return Step::Wait;
                }
                // Aged by a compaction: find what follows under the new names.
                if !self.reopen() {
                    return Step::Wait;
                }
            } else {
                self.files.pop_front();
                self.reset_buffer(0);
                if self.files.is_empty() {
                    // The active file is being replaced; its writer will say when.
                    return Step::Wait;
                }
            }
        }
    }
}

/// Whether `file` is now shorter than `pos`: a writer cut off bytes read before.
fn cut_below(file: &std::fs::File, pos: u64) -> bool {
    file.metadata().is_ok_and(|m| m.len() < pos)
}
