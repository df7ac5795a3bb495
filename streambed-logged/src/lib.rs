#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod appender;
pub mod args;
mod background;
mod commit_log_impl;
pub mod compaction;
mod config;
mod create;
mod cursor;
mod damage;
mod error;
mod files;
mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod index;
pub mod inspect;
mod open_limit;
mod record;
mod shared;
mod telemetry;
mod topic_name;
mod topic_pruning;
mod watcher;

use std::{path::PathBuf, sync::Arc};

use streambed::commit_log::{Offset, ProducedOffset, ProducerRecord, Topic};

pub use config::{
    Durability, DEFAULT_OPEN_TOPIC_LIMIT, IN_PROCESS_FLUSH_DELAY, IN_PROCESS_FLUSH_SIZE,
};
pub use damage::DamageStats;
pub use error::{CompactionRegistrationError, ProduceError, TopicNameError};
pub use topic_name::{validate_topic_name, MAX_TOPIC_NAME_LEN};

use crate::{
    config::Config,
    create::Modes,
    shared::{lock, read, write, Inner},
};

/// A commit log kept in files under one root folder: one appended file per topic (plus
/// history files once compaction is registered), readable by upstream's implementation.
///
/// * Partition 0 only; offsets of a topic start at 0 and rise by 1.
/// * One process writes a topic; any number of processes read it. A producer appends its
///   record itself, with no task in between, so `produce` can be awaited from any
///   executor; concurrent producers of a topic share writes (see [`Durability`]).
///   Subscribers in the writing process are woken by the producer; those in other
///   processes by inotify on Linux, by polling every 100 ms elsewhere.
/// * Clones share everything: configuration, topics, appenders and the watcher.
/// * At most [`DEFAULT_OPEN_TOPIC_LIMIT`] topics (see
///   [`with_open_topic_limit`](Self::with_open_topic_limit)) hold their files open for
///   appending; idle topics give theirs back and reopen on use.
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
    /// * `write_buffer_size`: bytes of a topic's write buffer kept between writes (larger
    ///   batches of concurrent producers grow it while they last).
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
            modes: Modes::default(),
            open_topic_limit: DEFAULT_OPEN_TOPIC_LIMIT,
        };
        Self {
            inner: Arc::new(Inner::new(root_path.into(), config)),
        }
    }

    /// The same log with another [`Durability`]. The log keeps one configuration for all
    /// its clones, earlier ones included, and one appender per topic: records produced
    /// from now on, through any clone, are acknowledged as `durability` says.
    ///
    /// ```
    /// use streambed_logged::{Durability, FileLog};
    ///
    /// let log = FileLog::new("/var/lib/logged").with_durability(Durability::Fsync);
    /// # let _ = log;
    /// ```
    pub fn with_durability(self, durability: Durability) -> Self {
        self.configured(|config| config.durability = durability)
    }

    /// The same log holding the files of at most `limit` topics open for appending (two
    /// file descriptors each: the topic file and its offset index), instead of
    /// [`DEFAULT_OPEN_TOPIC_LIMIT`]. Opening one more topic first closes the files of the
    /// least recently produced-to idle one, which reopens on its next produce. A topic
    /// being written when the bound is reached stays open until it is idle. Subscribers
    /// hold their own files (up to three per subscribed topic), outside this bound.
    ///
    /// ```
    /// let log = streambed_logged::FileLog::new("/var/lib/logged").with_open_topic_limit(16);
    /// # let _ = log;
    /// ```
    pub fn with_open_topic_limit(self, limit: usize) -> Self {
        self.configured(|config| config.open_topic_limit = limit.max(1))
    }

    fn configured(self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut write(&self.inner.config));
        self
    }

    /// The same log creating files with mode `file_mode` and folders with `dir_mode` (Unix
    /// permission bits, before the process umask) instead of the default `0o600` and
    /// `0o700`, which keep other users out. Widen them when readers run as other users
    /// (`0o640` and `0o750` for a shared group, say). Files that exist keep their mode.
    /// Elsewhere than on Unix the modes are ignored. Call it before the log is used or
    /// cloned, as [`with_durability`](Self::with_durability).
    ///
    /// Whatever the modes, a topic's files are never written through a symbolic link: one
    /// found at a topic file's path makes producing to the topic fail.
    ///
    /// ```
    /// use streambed_logged::FileLog;
    ///
    /// let log = FileLog::new("/var/lib/logged").with_permissions(0o640, 0o750);
    /// # let _ = log;
    /// ```
    pub fn with_permissions(self, file_mode: u32, dir_mode: u32) -> Self {
        self.configured(|config| {
            config.modes = Modes {
                file: file_mode,
                dir: dir_mode,
            }
        })
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

    /// Writes out the topic's buffered records and closes its files (at once, or when the
    /// producer writing now is done). Subscriptions go on; producing again reopens the
    /// files, recovering them as a new process would. Compaction registered for the topic
    /// stays registered.
    ///
    /// ```
    /// # use streambed::commit_log::Topic;
    /// let mut log = streambed_logged::FileLog::new("/var/lib/logged");
    /// log.close_topic(&Topic::from("readings"));
    /// ```
    pub fn close_topic(&mut self, topic: &Topic) {
        let shared = read(&self.inner.topics).get(topic).cloned();
        if let Some(shared) = shared {
            appender::close(&shared);
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
        compaction::register(shared, self.inner.config(), strategy);
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
        let shared = read(&self.inner.topics).get(topic).cloned();
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
        let shared = read(&self.inner.topics).get(topic).cloned()?;
        let stats = lock(&shared.compaction).stats.clone();
        Some(stats)
    }

    /// The damage this process came across in `topic`'s files so far (see [`DamageStats`]);
    /// `None` for a topic this log has not touched.
    ///
    /// Damage costs only the records it touches: readers, recovery and compaction skip a
    /// region whose bytes do not frame as intact records (CRC32C) and go on with the next
    /// intact record that has a greater offset. Such a region stays where it is, for
    /// inspection, and is logged (`log::warn!`, with the file and byte range) once; only a
    /// torn record at the very end of the active file (a write cut short) is cut off. The
    /// offsets damage at the end of a topic may have held are never given out again.
    ///
    /// ```
    /// use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
    /// use streambed_logged::FileLog;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let topic = Topic::from("readings");
    /// let log = FileLog::new(dir.path());
    /// for value in [b"first", b"other"] {
    ///     let record = ProducerRecord {
    ///         topic: topic.clone(), headers: vec![], timestamp: None,
    ///         key: 1, value: value.to_vec(), partition: 0,
    ///     };
    ///     log.produce(record).await.unwrap();
    /// }
    /// drop(log);
    /// // Damage the first record on disk.
    /// let path = dir.path().join("readings");
    /// let mut bytes = std::fs::read(&path).unwrap();
    /// bytes[6] ^= 0xff;
    /// std::fs::write(&path, bytes).unwrap();
    ///
    /// let log = FileLog::new(dir.path());
    /// let offsets = log.offsets(topic.clone(), 0).await.unwrap();
    /// assert_eq!((offsets.beginning_offset, offsets.end_offset), (1, 1));
    /// let stats = log.damage_stats(&topic).unwrap();
    /// assert_eq!(stats.regions, 1);
    /// # });
    /// ```
    pub fn damage_stats(&self, topic: &Topic) -> Option<DamageStats> {
        let shared = read(&self.inner.topics).get(topic).cloned()?;
        let stats = shared.damage.stats();
        Some(stats)
    }

    /// Appends a record like
    /// [`CommitLog::produce`](streambed::commit_log::CommitLog::produce), but says why it
    /// could not.
    ///
    /// Dropping the returned future after it started may still leave the record written.
    /// The future needs no particular executor (unless compaction is registered for the
    /// topic: then producing may wait for it on tokio's timer).
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
        let offset = self.append_run(std::slice::from_ref(&record)).await?;
        Ok(ProducedOffset { offset })
    }

    /// Appends records of one topic and partition together (all or none), answering the
    /// first one's offset; the others follow it one by one.
    async fn append_run(&self, records: &[ProducerRecord]) -> Result<Offset, ProduceError> {
        let Some(record) = records.first() else {
            unreachable!("runs are never empty")
        };
        let shared = self.inner.topic(&record.topic)?;
        if record.partition != 0 {
            return Err(ProduceError::UnsupportedPartition {
                topic: record.topic.clone(),
                partition: record.partition,
            });
        }
        let cx = appender::Context {
            config: self.inner.config(),
            flusher: &self.inner.flusher,
            syncer: &self.inner.syncer,
            open_limit: &self.inner.open_limit,
        };
        appender::append(&shared, cx, records).await
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod compaction_tests;

#[cfg(test)]
mod damage_tests;

#[cfg(test)]
mod model_tests;
