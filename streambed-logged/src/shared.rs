//! The state the clones of a `FileLog` share: per topic, the writer's channel, the tail
//! subscribers watch and the compaction state; and the file watcher. Its own module so that
//! writer, cursor, compaction and watcher depend on it, not on the crate root.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use streambed::commit_log::{Offset, Topic};
use tokio::sync::{mpsc, watch};

use crate::{
    compaction,
    config::Config,
    damage::DamageLog,
    error::TopicNameError,
    topic_name::TopicPaths,
    topic_pruning,
    watcher::Watcher,
    writer::{self, WriterMsg},
};

/// Requests queued per topic writer before producers wait. Larger queues let more
/// concurrent producers share one write (and one fsync).
const PRODUCER_QUEUE_SIZE: usize = 256;

/// What subscribers and `offsets()` learn from the topic's writer in this process.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TailState {
    /// Changes whenever the topic's files change.
    pub(crate) version: u64,
    /// Whether this process writes the topic (and so notifies of every append).
    pub(crate) local_writer: bool,
    /// The first and last offsets, known while the writer is local.
    pub(crate) ends: Option<(Offset, Offset)>,
}

/// The shared state of one topic in this process. It lives as long as anything uses it
/// (`topic_pruning` drops it after), so every subscriber of a topic hears the same writer,
/// even across `close_topic`.
pub(crate) struct TopicShared {
    pub(crate) topic: Topic,
    pub(crate) paths: TopicPaths,
    pub(crate) tail: watch::Sender<TailState>,
    pub(crate) writer: Mutex<Option<mpsc::Sender<WriterMsg>>>,
    pub(crate) writer_lock: Arc<tokio::sync::Mutex<()>>,
    pub(crate) compaction: Mutex<compaction::CompactionState>,
    /// Signalled when a compaction finishes or is unregistered (the writer may be waiting).
    pub(crate) compaction_idle: tokio::sync::Notify,
    /// Held while a compaction runs, so a replaced compactor never overlaps its successor.
    pub(crate) compaction_lock: Arc<tokio::sync::Mutex<()>>,
    /// The damage readers of the topic's files came across.
    pub(crate) damage: DamageLog,
}

impl TopicShared {
    pub(crate) fn bump(&self) {
        self.tail
            .send_modify(|tail| tail.version = tail.version.wrapping_add(1));
    }
}

/// State shared by the clones of a [`FileLog`].
pub(crate) struct Inner {
    pub(crate) root: PathBuf,
    pub(crate) config: Config,
    pub(crate) topics: Mutex<HashMap<Topic, Arc<TopicShared>>>,
    pub(crate) watcher: Mutex<Watcher>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    pub(crate) fn lock_watcher(&self) -> MutexGuard<'_, Watcher> {
        lock(&self.watcher)
    }

    pub(crate) fn watcher_live(&self) -> bool {
        self.lock_watcher().is_live()
    }

    /// Wakes the readers of `topic` after another process changed its files.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn wake_remote(&self, topic: &str) {
        let shared = lock(&self.topics).get(topic).cloned();
        if let Some(shared) = shared {
            // A local writer already notifies of its own appends.
            if !shared.tail.borrow().local_writer {
                shared.bump();
            }
        }
    }

    pub(crate) fn wake_all(&self) {
        let topics: Vec<_> = lock(&self.topics).values().cloned().collect();
        for shared in topics {
            shared.bump();
        }
    }

    pub(crate) fn topic(&self, topic: &Topic) -> Result<Arc<TopicShared>, TopicNameError> {
        let mut topics = lock(&self.topics);
        if let Some(shared) = topics.get(topic) {
            return Ok(shared.clone());
        }
        let paths = TopicPaths::new(&self.root, topic)?;
        if topic_pruning::due(topics.len()) {
            topic_pruning::prune_unused(&mut topics);
        }
        let shared = Arc::new(TopicShared {
            topic: topic.clone(),
            paths,
            tail: watch::Sender::new(TailState::default()),
            writer: Mutex::new(None),
            writer_lock: Arc::new(tokio::sync::Mutex::new(())),
            compaction: Mutex::new(compaction::CompactionState::default()),
            compaction_idle: tokio::sync::Notify::new(),
            compaction_lock: Arc::new(tokio::sync::Mutex::new(())),
            damage: DamageLog::default(),
        });
        topics.insert(topic.clone(), shared.clone());
        Ok(shared)
    }

    /// The sender to the topic's writer task, starting the task if none runs.
    pub(crate) fn writer(&self, shared: &Arc<TopicShared>) -> mpsc::Sender<WriterMsg> {
        let mut slot = lock(&shared.writer);
        if let Some(tx) = slot.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(PRODUCER_QUEUE_SIZE);
        tokio::spawn(writer::run(shared.clone(), self.config, rx));
        *slot = Some(tx.clone());
        tx
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.watcher).stop();
    }
}
