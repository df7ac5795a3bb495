//! Bounding how long records acknowledged at `Durability::InProcess` wait in a topic's
//! buffer: one thread per log, started by the first such record, writes each buffer out
//! [`IN_PROCESS_FLUSH_DELAY`] after it was first queued. A thread rather than a task, so
//! that `produce` can be awaited from any executor; it sleeps on a condition variable while
//! no buffer waits, so an idle log costs no wake-ups.

use std::{
    sync::{Arc, Condvar, Mutex},
    thread,
};

use log::warn;

use crate::{
    appender,
    config::IN_PROCESS_FLUSH_DELAY,
    shared::{lock, TopicShared},
};

/// The flusher of one log.
#[derive(Default)]
pub(crate) struct Flusher {
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

impl Flusher {
    /// Has the buffer of `shared` written out soon.
    pub(crate) fn queue(&self, shared: &Arc<TopicShared>) {
        let mut state = lock(&self.queue.state);
        if !state.started {
            state.started = true;
            let queue = self.queue.clone();
            let spawned = thread::Builder::new()
                .name("logged-flush".to_string())
                .stack_size(64 * 1024)
                .spawn(move || run(&queue));
            if let Err(e) = spawned {
                // Without the thread, the buffer is written at once: slower, never late.
                warn!("Cannot start the commit log's flusher ({e}); writing at once");
                state.started = false;
                drop(state);
                appender::flush(shared);
                return;
            }
        }
        state.topics.push(shared.clone());
        if state.topics.len() == 1 {
            self.queue.wake.notify_one();
        }
    }

    /// Ends the thread once it wrote out what is queued.
    pub(crate) fn stop(&self) {
        lock(&self.queue.state).stopping = true;
        self.queue.wake.notify_one();
    }
}

fn run(queue: &Queue) {
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
        let stopping = state.stopping;
        drop(state);
        if !stopping {
            // Let more records join the buffers first: one write per delay at most.
            thread::sleep(IN_PROCESS_FLUSH_DELAY);
        }
        let topics = std::mem::take(&mut lock(&queue.state).topics);
        for shared in &topics {
            appender::flush(shared);
        }
        drop(topics);
        state = lock(&queue.state);
    }
}
