//! The state the clones of a `FileLog` share: per topic, the appender, the tail subscribers
//! watch and the compaction state; and, for the whole log, its configuration, the file
//! watcher, the background threads and the bound on open topic files. Its own module so that
//! appender, cursor, compaction and watcher depend on it, not on the crate root.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::AtomicU32, Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard,
        RwLockWriteGuard,
    },
};

use streambed::commit_log::{Offset, Topic};
use tokio::sync::watch;

use crate::{
    appender::{self, Slot},
    background::Background,
    compaction,
    config::Config,
    damage::DamageLog,
    error::TopicNameError,
    open_limit::OpenLimit,
    telemetry::Telemetry,
    topic_name::TopicPaths,
    topic_pruning,
    watcher::Watcher,
};

/// What subscribers and `offsets()` learn from the topic's appender in this process.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TailState {
    /// Changes whenever the topic's files change.
    pub(crate) version: u64,
    /// Whether this process writes the topic (and so notifies of every append).
    pub(crate) local_writer: bool,
    /// The first and last acknowledged offsets, known while the appender is local.
    pub(crate) ends: Option<(Offset, Offset)>,
}

/// The shared state of one topic in this process. It lives as long as anything uses it
/// (`topic_pruning` drops it after), so every subscriber of a topic hears the same
/// appender, even across `close_topic`, and a topic file has one appender in the log.
pub(crate) struct TopicShared {
    pub(crate) topic: Topic,
    pub(crate) paths: TopicPaths,
    pub(crate) tail: watch::Sender<TailState>,
    /// The one appender of the topic's active file (see [`crate::appender`]).
    pub(crate) appender: Mutex<Slot>,
    /// Signalled when `Fsync` producers filled the batch the syncer waits for.
    pub(crate) appended: Condvar,
    /// When the topic was last produced to, on [`OpenLimit`]'s clock: the least recently
    /// used open topic gives its files back first.
    pub(crate) last_use: AtomicU32,
    pub(crate) compaction: Mutex<compaction::CompactionState>,
    /// Signalled when a compaction finishes or is unregistered (producers may be waiting).
    pub(crate) compaction_idle: tokio::sync::Notify,
    /// Held while a compaction runs, so a replaced compactor never overlaps its successor.
    pub(crate) compaction_lock: Arc<tokio::sync::Mutex<()>>,
    /// The damage readers of the topic's files came across.
    pub(crate) damage: DamageLog,
    /// The log's series, which the topic counts into.
    pub(crate) telemetry: Arc<Telemetry>,
}

impl TopicShared {
    pub(crate) fn bump(&self) {
        self.tail
            .send_modify(|tail| tail.version = tail.version.wrapping_add(1));
    }
}

/// The topics a log knows, by name. Looked up on every produce: foldhash, seeded per
/// process (so names chosen by clients cannot be made to collide at will), hashes a short
/// name several times faster than the standard SipHash.
pub(crate) type TopicMap = HashMap<Topic, Arc<TopicShared>, foldhash::fast::RandomState>;

/// State shared by the clones of a [`FileLog`](crate::FileLog).
pub(crate) struct Inner {
    pub(crate) root: PathBuf,
    /// Shared so that a setting changed through one clone holds for all: a log has one
    /// configuration, and one appender per topic.
    /// Read by every produce, so behind a read-write lock.
    pub(crate) config: RwLock<Config>,
    /// Looked up by every produce, so readers share it; only a new topic (or pruning)
    /// writes.
    pub(crate) topics: RwLock<TopicMap>,
    pub(crate) watcher: Mutex<Watcher>,
    /// Writes out the buffers of [`Durability::InProcess`](crate::Durability::InProcess).
    pub(crate) flusher: Background,
    /// Writes and syncs the batches of [`Durability::Fsync`](crate::Durability::Fsync).
    pub(crate) syncer: Background,
    /// Which topics hold their files open for appending, within the configured bound.
    pub(crate) open_limit: Arc<OpenLimit>,
    pub(crate) telemetry: Arc<Telemetry>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads what `lock` guards, alongside other readers (see [`lock`] on poisoning).
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Changes what `lock` guards (see [`lock`] on poisoning).
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    pub(crate) fn new(root: PathBuf, config: Config) -> Self {
        Self {
            root,
            config: RwLock::new(config),
            topics: RwLock::new(TopicMap::default()),
            watcher: Mutex::new(Watcher::NotStarted),
            flusher: Background::flusher(),
            syncer: Background::syncer(),
            open_limit: Arc::new(OpenLimit::default()),
            telemetry: Arc::new(Telemetry::register()),
        }
    }

    /// The configuration as it is now.
    pub(crate) fn config(&self) -> Config {
        *read(&self.config)
    }

    pub(crate) fn lock_watcher(&self) -> MutexGuard<'_, Watcher> {
        lock(&self.watcher)
    }

    pub(crate) fn watcher_live(&self) -> bool {
        self.lock_watcher().is_live()
    }

    /// Wakes the readers of `topic` after another process changed its files.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn wake_remote(&self, topic: &str) {
        let shared = read(&self.topics).get(topic).cloned();
        if let Some(shared) = shared {
            // A local writer already notifies of its own appends.
            if !shared.tail.borrow().local_writer {
                shared.bump();
            }
        }
    }

    pub(crate) fn wake_all(&self) {
        let topics: Vec<_> = read(&self.topics).values().cloned().collect();
        for shared in topics {
            shared.bump();
        }
    }

    pub(crate) fn topic(&self, topic: &Topic) -> Result<Arc<TopicShared>, TopicNameError> {
        // Every produce looks its topic up: producers on other threads must not wait for
        // each other here.
        if let Some(shared) = read(&self.topics).get(topic) {
            return Ok(shared.clone());
        }
        let mut topics = write(&self.topics);
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
            appender: Mutex::new(Slot::default()),
            appended: Condvar::new(),
            last_use: AtomicU32::new(0),
            compaction: Mutex::new(compaction::CompactionState::default()),
            compaction_idle: tokio::sync::Notify::new(),
            compaction_lock: Arc::new(tokio::sync::Mutex::new(())),
            damage: DamageLog::counting_into(self.telemetry.damaged_bytes.clone()),
            telemetry: self.telemetry.clone(),
        });
        topics.insert(topic.clone(), shared.clone());
        Ok(shared)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.watcher).stop();
        self.flusher.stop();
        self.syncer.stop();
        // What `InProcess` producers left in buffers reaches the files now; subscribers
        // that outlive the log keep their topic's state, not its open files.
        let topics: Vec<_> = read(&self.topics).values().cloned().collect();
        for shared in topics {
            appender::close(&shared);
        }
    }
}
