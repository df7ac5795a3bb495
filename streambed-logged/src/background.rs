//! The log's two background threads, each started by the first record that needs it:
//!
//! * the *flusher* bounds how long records acknowledged at `Durability::InProcess` wait in
//!   a topic's buffer: it writes each buffer out [`IN_PROCESS_FLUSH_DELAY`] after it was
//!   first queued;
//! * the *syncer* writes and `fdatasync`s the batches of `Durability::Fsync` producers
//!   (group commit), so that no executor thread blocks on the disk and producers keep
//!   joining the next batch while one is synced.
//!
//! Threads rather than tasks, so that `produce` can be awaited from any executor; each
//! sleeps on a condition variable while nothing is queued, so an idle log costs no
//! wake-ups.

use std::{
    sync::{Arc, Condvar, Mutex},
    thread,
    time::Duration,
};

use log::warn;

use crate::{
    appender::{self, Flushed},
    config::IN_PROCESS_FLUSH_DELAY,
    shared::{lock, TopicShared},
};

/// One background thread of a log and the topics queued for it.
pub(crate) struct Background {
    name: &'static str,
    /// How long a queued topic waits, so that more records join its write.
    delay: Duration,
    /// What the thread does for a queued topic; `Busy` queues it again.
    job: fn(&Arc<TopicShared>) -> Flushed,
    queue: Arc<Queue>,
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

#[derive(Default)]
struct QueueState {
    topics: Vec<Arc<TopicShared>>,
    started: bool,
    stopping: bool,
}

impl Background {
    /// The flusher of `Durability::InProcess` buffers.
    pub(crate) fn flusher() -> Self {
        Self {
            name: "logged-flush",
            delay: IN_PROCESS_FLUSH_DELAY,
            job: appender::flush,
            queue: Arc::default(),
        }
    }

    /// The syncer of `Durability::Fsync` batches.
    pub(crate) fn syncer() -> Self {
        Self {
            name: "logged-sync",
            delay: Duration::ZERO,
            job: appender::sync,
            queue: Arc::default(),
        }
    }

    /// Has the thread do its job for `shared` soon.
    pub(crate) fn queue(&self, shared: &Arc<TopicShared>) {
        let mut state = lock(&self.queue.state);
        if !state.started {
            state.started = true;
            let (queue, delay, job) = (self.queue.clone(), self.delay, self.job);
            let spawned = thread::Builder::new()
                .name(self.name.to_string())
                .stack_size(64 * 1024)
                .spawn(move || run(&queue, delay, job));
            if let Err(e) = spawned {
                // Without the thread, the job is done at once: slower, never late.
                warn!("Cannot start the commit log's {} thread ({e})", self.name);
                state.started = false;
                drop(state);
                let _ = (self.job)(shared);
                return;
            }
        }
        state.topics.push(shared.clone());
        if state.topics.len() == 1 {
            self.queue.wake.notify_one();
        }
    }

    /// Ends the thread once it did what is queued.
    pub(crate) fn stop(&self) {
        lock(&self.queue.state).stopping = true;
        self.queue.wake.notify_one();
    }
}

fn run(queue: &Queue, delay: Duration, job: fn(&Arc<TopicShared>) -> Flushed) {
    let mut state = lock(&queue.state);
    loop {
        while state.topics.is_empty() && !state.stopping {
            state = queue
                .wake
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if state.topics.is_empty() {
            return;
        }
        drop(state);
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        let topics = std::mem::take(&mut lock(&queue.state).topics);
        let mut busy = Vec::new();
        for shared in topics {
            // A producer writing now may stop before it writes all: look again later.
            if job(&shared) == Flushed::Busy {
                busy.push(shared);
            }
        }
        state = lock(&queue.state);
        if !busy.is_empty() && delay.is_zero() {
            // Never spin on a busy topic.
            drop(state);
            thread::sleep(IN_PROCESS_FLUSH_DELAY);
            state = lock(&queue.state);
        }
        state.topics.append(&mut busy);
    }
}
