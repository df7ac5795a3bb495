#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod args;
pub mod compaction;
mod cursor;
mod error;
mod files;
mod index;
mod record;
mod topic_name;
mod topic_pruning;
mod watcher;
mod writer;

use std::{
    collections::HashMap,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use futures_util::{stream, StreamExt};
use log::warn;
use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, Offset, Partition, PartitionOffsets, ProducedOffset,
    ProducerError, ProducerRecord, Subscription, Topic,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::Stream;

pub use error::{CompactionRegistrationError, ProduceError, TopicNameError};
pub use topic_name::{validate_topic_name, MAX_TOPIC_NAME_LEN};

use crate::{cursor::Cursor, topic_name::TopicPaths, watcher::Watcher, writer::WriterMsg};

/// Requests queued per topic writer before producers wait. Larger queues let more
/// concurrent producers share one write (and one fsync).
const PRODUCER_QUEUE_SIZE: usize = 256;

/// What `produce` has done with a record by the time it answers.
///
/// | mode | process crash | power loss |
/// |------|---------------|------------|
/// | [`Buffered`](Durability::Buffered) | every acknowledged record survives | recent acknowledged records may be lost (what the OS had not written back) |
/// | [`Fsync`](Durability::Fsync) | every acknowledged record survives | every acknowledged record survives |
///
/// In both modes a torn or corrupt tail left by a crash is cut off when the topic is next
/// written, so the log always reopens.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum Durability {
    /// The default, as upstream: the writer batches queued records into one `write` when it
    /// runs out of requests and answers once the bytes are in the operating system's page
    /// cache. Fast; visible at once to every reader.
    #[default]
    Buffered,
    /// `produce` answers only after `fdatasync` returned for the record's batch. Concurrent
    /// producers share one sync (group commit), so throughput grows with concurrency.
    Fsync,
}

/// The sizes and modes a [`FileLog`] works with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) compaction_threshold_size: u64,
    pub(crate) read_buffer_size: usize,
    pub(crate) compaction_write_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) max_record_size: usize,
    pub(crate) durability: Durability,
}

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
    writer: Mutex<Option<mpsc::Sender<WriterMsg>>>,
    pub(crate) writer_lock: Arc<tokio::sync::Mutex<()>>,
    pub(crate) compaction: Mutex<compaction::CompactionState>,
    /// Signalled when a compaction finishes or is unregistered (the writer may be waiting).
    pub(crate) compaction_idle: tokio::sync::Notify,
    /// Held while a compaction runs, so a replaced compactor never overlaps its successor.
    pub(crate) compaction_lock: Arc<tokio::sync::Mutex<()>>,
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
    topics: Mutex<HashMap<Topic, Arc<TopicShared>>>,
    watcher: Mutex<Watcher>,
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

/// A commit log kept in files under one root folder: one appended file per topic (plus
/// history files once compaction is registered), readable by upstream's implementation.
///
/// * Partition 0 only; offsets of a topic start at 0 and rise by 1.
/// * One process writes a topic (through one writer task per topic); any number of
///   processes read it. Subscribers in the writing process are woken by the writer itself;
///   those in other processes by inotify on Linux, by polling every 100 ms elsewhere.
/// * Clones share everything: topics, writers and the watcher.
///
/// ```
/// use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
/// use streambed_logged::FileLog;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let log = FileLog::new(dir.path());
/// let record = ProducerRecord {
///     topic: Topic::from("readings"),
///     headers: vec![],
///     timestamp: None,
///     key: 1,
///     value: b"21.5".to_vec(),
///     partition: 0,
/// };
/// assert_eq!(log.produce(record).await.unwrap().offset, 0);
/// let offsets = log.offsets(Topic::from("readings"), 0).await.unwrap();
/// assert_eq!((offsets.beginning_offset, offsets.end_offset), (0, 0));
/// # });
/// ```
#[derive(Clone)]
pub struct FileLog {
    inner: Arc<Inner>,
}

impl FileLog {
    /// A log in `root_path` with the default sizes: compaction threshold 64 KiB, read
    /// buffer 8 KiB, compaction write buffer 64 KiB, write buffer 8 KiB, largest record
    /// 16 KiB. The folder is created when the first record is written or the first
    /// subscription starts.
    ///
    /// ```
    /// let log = streambed_logged::FileLog::new("/var/lib/logged");
    /// # let _ = log;
    /// ```
    pub fn new<P>(root_path: P) -> Self
    where
        P: Into<PathBuf>,
    {
        Self::with_config(
            root_path,
            64 * 1024,
            8 * 1024,
            64 * 1024,
            8 * 1024,
            16 * 1024,
        )
    }

    /// A log with chosen sizes.
    ///
    /// * `compaction_threshold_size`: size of the active file past which a registered
    ///   compaction ages it into history (see [`compaction`]).
    /// * `read_buffer_size`: bytes each subscriber reads at a time (its fixed memory).
    /// * `compaction_write_buffer_size`: buffer of the file a compaction writes.
    /// * `write_buffer_size`: bytes a writer gathers at most before one `write`.
    /// * `max_record_size`: the largest encoded record, checksum included; larger records
    ///   are refused by `produce` and treated as damage when read.
    ///
    /// ```
    /// let log = streambed_logged::FileLog::with_config("/tmp/log", 1 << 20, 8192, 65536, 8192, 4096);
    /// # let _ = log;
    /// ```
    pub fn with_config<P>(
        root_path: P,
        compaction_threshold_size: u64,
        read_buffer_size: usize,
        compaction_write_buffer_size: usize,
        write_buffer_size: usize,
        max_record_size: usize,
    ) -> Self
    where
        P: Into<PathBuf>,
    {
        let config = Config {
            compaction_threshold_size,
            read_buffer_size: read_buffer_size.max(64),
            compaction_write_buffer_size: compaction_write_buffer_size.max(64),
            write_buffer_size: write_buffer_size.max(64),
            max_record_size: max_record_size.max(16),
            durability: Durability::Buffered,
        };
        Self {
            inner: Arc::new(Inner {
                root: root_path.into(),
                config,
                topics: Mutex::new(HashMap::new()),
                watcher: Mutex::new(Watcher::NotStarted),
            }),
        }
    }

    /// The same log with another [`Durability`]. Call it before the log is used or
    /// cloned: the clones made earlier keep their own mode and topic state.
    ///
    /// ```
    /// use streambed_logged::{Durability, FileLog};
    ///
    /// let log = FileLog::new("/var/lib/logged").with_durability(Durability::Fsync);
    /// # let _ = log;
    /// ```
    pub fn with_durability(self, durability: Durability) -> Self {
        let mut config = self.inner.config;
        config.durability = durability;
        Self {
            inner: Arc::new(Inner {
                root: self.inner.root.clone(),
                config,
                topics: Mutex::new(HashMap::new()),
                watcher: Mutex::new(Watcher::NotStarted),
            }),
        }
    }

    /// The root folder of the log.
    ///
    /// ```
    /// let log = streambed_logged::FileLog::new("/var/lib/logged");
    /// assert_eq!(log.root_path(), std::path::Path::new("/var/lib/logged"));
    /// ```
    pub fn root_path(&self) -> &std::path::Path {
        &self.inner.root
    }

    /// Stops the topic's writer task and closes its file once the queued records are
    /// written. Subscriptions go on; producing again starts a new writer. Compaction
    /// registered for the topic stays registered.
    ///
    /// ```
    /// # use streambed::commit_log::Topic;
    /// let mut log = streambed_logged::FileLog::new("/var/lib/logged");
    /// log.close_topic(&Topic::from("readings"));
    /// ```
    pub fn close_topic(&mut self, topic: &Topic) {
        let shared = lock(&self.inner.topics).get(topic).cloned();
        if let Some(shared) = shared {
            lock(&shared.writer).take();
        }
    }

    /// Compacts `topic` with `strategy` from now on (see [`compaction`]), replacing any
    /// strategy registered before. Compaction runs in a background task; files left by an
    /// interrupted compaction are compacted first.
    ///
    /// ```
    /// use streambed::commit_log::Topic;
    /// use streambed_logged::{compaction::KeyBasedRetention, FileLog};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut log = FileLog::new(dir.path());
    /// log.register_compaction(Topic::from("readings"), KeyBasedRetention::new(1_000))
    ///     .await
    ///     .unwrap();
    /// log.unregister_compaction(&Topic::from("readings"));
    /// # });
    /// ```
    pub async fn register_compaction<CS>(
        &mut self,
        topic: Topic,
        strategy: CS,
    ) -> Result<(), CompactionRegistrationError>
    where
        CS: compaction::CompactionStrategy + Send + Sync + 'static,
    {
        let shared = self.inner.topic(&topic)?;
        compaction::register(shared, self.inner.config, strategy);
        Ok(())
    }

    /// Stops compacting `topic` once the compaction under way, if any, is done.
    ///
    /// ```
    /// # use streambed::commit_log::Topic;
    /// let mut log = streambed_logged::FileLog::new("/var/lib/logged");
    /// log.unregister_compaction(&Topic::from("readings"));
    /// ```
    pub fn unregister_compaction(&mut self, topic: &Topic) {
        let shared = lock(&self.inner.topics).get(topic).cloned();
        if let Some(shared) = shared {
            compaction::unregister(&shared);
        }
    }

    /// What compaction of `topic` has done in this process so far; `None` for a topic
    /// this log has not touched.
    ///
    /// ```
    /// # use streambed::commit_log::Topic;
    /// let log = streambed_logged::FileLog::new("/var/lib/logged");
    /// assert!(log.compaction_stats(&Topic::from("readings")).is_none());
    /// ```
    pub fn compaction_stats(&self, topic: &Topic) -> Option<compaction::CompactionStats> {
        let shared = lock(&self.inner.topics).get(topic).cloned()?;
        let stats = lock(&shared.compaction).stats.clone();
        Some(stats)
    }

    /// Appends a record like [`CommitLog::produce`], but says why it could not.
    ///
    /// Dropping the returned future after it started may still leave the record written.
    ///
    /// ```
    /// use streambed::commit_log::{ProducerRecord, Topic};
    /// use streambed_logged::{FileLog, ProduceError};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let log = FileLog::new(dir.path());
    /// let record = ProducerRecord {
    ///     topic: Topic::from("../escape"),
    ///     headers: vec![],
    ///     timestamp: None,
    ///     key: 1,
    ///     value: vec![],
    ///     partition: 0,
    /// };
    /// let error = log.produce_with_cause(record).await.unwrap_err();
    /// assert!(matches!(error, ProduceError::InvalidTopic(_)));
    /// # });
    /// ```
    pub async fn produce_with_cause(
        &self,
        record: ProducerRecord,
    ) -> Result<ProducedOffset, ProduceError> {
        let shared = self.inner.topic(&record.topic)?;
        if record.partition != 0 {
            return Err(ProduceError::UnsupportedPartition {
                topic: record.topic,
                partition: record.partition,
            });
        }
        let tx = self.inner.writer(&shared);
        let (reply_tx, reply_rx) = oneshot::channel();
        let stopped = || ProduceError::WriterStopped {
            topic: shared.topic.clone(),
        };
        tx.send(WriterMsg::Produce(record, reply_tx))
            .await
            .map_err(|_| stopped())?;
        let offset = reply_rx.await.map_err(|_| stopped())??;
        Ok(ProducedOffset { offset })
    }

    fn subscribe_topic(
        &self,
        subscription: &Subscription,
        offsets: &[ConsumerOffset],
    ) -> Option<Pin<Box<dyn Stream<Item = ConsumerRecord> + Send>>> {
        let shared = match self.inner.topic(&subscription.topic) {
            Ok(shared) => shared,
            Err(e) => {
                warn!("Subscription ignored: {e}");
                return None;
            }
        };
        let last = offsets
            .iter()
            .filter(|o| o.topic == subscription.topic)
            .find(|o| {
                if o.partition != 0 {
                    warn!(
                        "Offset for partition {} of {} ignored: only partition 0 exists",
                        o.partition, o.topic
                    );
                }
                o.partition == 0
            })
            .map(|o| o.offset);
        let cursor = Cursor::new(self.inner.clone(), shared, last);
        Some(Box::pin(stream::unfold(cursor, |mut cursor| async move {
            let record = cursor.next().await;
            Some((record, cursor))
        })))
    }
}

#[async_trait]
impl CommitLog for FileLog {
    async fn offsets(&self, topic: Topic, partition: Partition) -> Option<PartitionOffsets> {
        if partition != 0 {
            return None;
        }
        let shared = match self.inner.topic(&topic) {
            Ok(shared) => shared,
            Err(e) => {
                warn!("Offsets of an invalid topic asked for: {e}");
                return None;
            }
        };
        if let Some((beginning_offset, end_offset)) = shared.tail.borrow().ends {
            return Some(PartitionOffsets {
                beginning_offset,
                end_offset,
            });
        }
        let config = &self.inner.config;
        files::offsets_from_disk(
            &shared.paths,
            config.read_buffer_size,
            config.max_record_size,
        )
        .unwrap_or_else(|e| {
            warn!("Cannot read the offsets of topic {topic}: {e}");
            None
        })
    }

    async fn produce(&self, record: ProducerRecord) -> Result<ProducedOffset, ProducerError> {
        self.produce_with_cause(record).await.map_err(|e| {
            warn!("Cannot produce: {e}");
            ProducerError::CannotProduce
        })
    }

    fn scoped_subscribe<'a>(
        &'a self,
        _consumer_group_name: &str,
        offsets: Vec<ConsumerOffset>,
        subscriptions: Vec<Subscription>,
        idle_timeout: Option<Duration>,
    ) -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>> {
        watcher::ensure_started(&self.inner);
        let streams: Vec<_> = subscriptions
            .iter()
            .filter_map(|s| self.subscribe_topic(s, &offsets))
            .collect();
        let merged = stream::select_all(streams);
        match idle_timeout {
            None => Box::pin(merged),
            Some(idle) => Box::pin(stream::unfold(merged, move |mut merged| async move {
                match tokio::time::timeout(idle, merged.next()).await {
                    Ok(Some(record)) => Some((record, merged)),
                    _ => None,
                }
            })),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod compaction_tests;
