//! A commit log held in memory: the server's backend for tests, demonstrations and hosts
//! without a writable disk.
//!
//! Records live only as long as the process and are never compacted, so memory grows with
//! every record produced; use a file-backed log wherever records must survive a restart.
//! Subscribers follow the log live: every append wakes them through a
//! [`tokio::sync::watch`] channel, so a record reaches them without polling.

use std::{
    collections::{HashMap, VecDeque},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, Offset, Partition, PartitionOffsets, ProducedOffset,
    ProducerError, ProducerRecord, Subscription, Topic,
};
use tokio::sync::watch;
use tokio_stream::Stream;

/// The most records a subscriber copies out of the log under one lock, so that a
/// subscriber catching up on a long topic never holds the lock for long.
const READ_BATCH: usize = 256;

/// A [`CommitLog`] kept in memory; clones share the same topics.
///
/// Like the file-system log it serves partition 0 only; offsets of a topic start at 0
/// and rise by one.
///
/// ```
/// use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
/// use streambed_server::memory::MemoryLog;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log = MemoryLog::default();
/// let record = ProducerRecord {
///     topic: Topic::from("readings"),
///     headers: vec![],
///     timestamp: None,
///     key: 1,
///     value: b"21.5".to_vec(),
///     partition: 0,
/// };
/// assert_eq!(log.produce(record).await.unwrap().offset, 0);
/// assert_eq!(log.offsets(Topic::from("readings"), 0).await.unwrap().end_offset, 0);
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    topics: Mutex<HashMap<Topic, Vec<Arc<ConsumerRecord>>>>,
    /// Bumped after every append; subscribers wait for it to change.
    appended: watch::Sender<u64>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            topics: Mutex::default(),
            appended: watch::Sender::new(0),
        }
    }
}

impl Shared {
    fn topics(&self) -> MutexGuard<'_, HashMap<Topic, Vec<Arc<ConsumerRecord>>>> {
        // A panic while holding the lock cannot leave the map half-updated (each update is
        // a single push), so a poisoned lock is safe to keep using.
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MemoryLog {
    /// Creates an empty log.
    ///
    /// ```
    /// let log = streambed_server::memory::MemoryLog::new();
    /// # drop(log);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CommitLog for MemoryLog {
    async fn offsets(&self, topic: Topic, partition: Partition) -> Option<PartitionOffsets> {
        if partition != 0 {
            return None;
        }
        let topics = self.shared.topics();
        let records = topics.get(&topic)?;
        let last = records.last()?;
        Some(PartitionOffsets {
            beginning_offset: 0,
            end_offset: last.offset,
        })
    }

    async fn produce(&self, record: ProducerRecord) -> Result<ProducedOffset, ProducerError> {
        if record.partition != 0 {
            log::warn!(
                "refusing a record for partition {} of {}: only partition 0 exists",
                record.partition,
                record.topic
            );
            return Err(ProducerError::CannotProduce);
        }
        let offset = {
            let mut topics = self.shared.topics();
            let records = topics.entry(record.topic.clone()).or_default();
            let offset = records.len() as Offset;
            records.push(Arc::new(ConsumerRecord {
                topic: record.topic,
                headers: record.headers,
                timestamp: record.timestamp,
                key: record.key,
                value: record.value,
                partition: 0,
                offset,
            }));
            offset
        };
        self.shared.appended.send_modify(|n| *n = n.wrapping_add(1));
        Ok(ProducedOffset { offset })
    }

    fn scoped_subscribe<'a>(
        &'a self,
        _consumer_group_name: &str,
        offsets: Vec<ConsumerOffset>,
        subscriptions: Vec<Subscription>,
        idle_timeout: Option<Duration>,
    ) -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>> {
        let mut cursors: Vec<(Topic, usize)> = Vec::with_capacity(subscriptions.len());
        for Subscription { topic } in subscriptions {
            if cursors.iter().any(|(known, _)| *known == topic) {
                continue;
            }
            let next = offsets
                .iter()
                .filter(|o| o.topic == topic && o.partition == 0)
                .map(|o| o.offset.saturating_add(1))
                .max()
                .unwrap_or(0);
            cursors.push((topic, usize::try_from(next).unwrap_or(usize::MAX)));
        }
        let state = Tail {
            shared: Arc::clone(&self.shared),
            appended: self.shared.appended.subscribe(),
            cursors,
            ready: VecDeque::new(),
            idle_timeout,
        };
        Box::pin(futures_util::stream::unfold(state, |mut tail| async move {
            let record = tail.next().await?;
            Some((record, tail))
        }))
    }
}

/// The state of one subscription.
struct Tail {
    shared: Arc<Shared>,
    appended: watch::Receiver<u64>,
    /// Per subscribed topic, the index (equal to the offset) of the next record to deliver.
    cursors: Vec<(Topic, usize)>,
    ready: VecDeque<Arc<ConsumerRecord>>,
    idle_timeout: Option<Duration>,
}

impl Tail {
    async fn next(&mut self) -> Option<ConsumerRecord> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Some(ConsumerRecord::clone(&record));
            }
            // Marking the current generation seen *before* reading means an append that
            // lands after the read still wakes the wait below: no record is missed.
            self.appended.borrow_and_update();
            self.fill();
            if !self.ready.is_empty() {
                continue;
            }
            let changed = self.appended.changed();
            match self.idle_timeout {
                Some(idle) => match tokio::time::timeout(idle, changed).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => return None,
                },
                None => changed.await.ok()?,
            }
        }
    }

    fn fill(&mut self) {
        let topics = self.shared.topics();
        for (topic, next) in &mut self.cursors {
            let Some(records) = topics.get(topic) else {
                continue;
            };
            let available = records.get(*next..).unwrap_or_default();
            let take = available
                .len()
                .min(READ_BATCH - self.ready.len().min(READ_BATCH));
            self.ready.extend(available[..take].iter().cloned());
            *next += take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    fn record(topic: &str, key: u64) -> ProducerRecord {
        streambed_test::records::record(topic, key, key.to_le_bytes())
    }

    #[tokio::test]
    async fn offsets_are_absent_until_a_topic_is_written_then_rise_by_one() {
        let log = MemoryLog::new();
        assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
        for expected in 0..3 {
            assert_eq!(log.produce(record("t", 9)).await.unwrap().offset, expected);
        }
        assert_eq!(
            log.offsets(Topic::from("t"), 0).await,
            Some(PartitionOffsets {
                beginning_offset: 0,
                end_offset: 2
            })
        );
        assert_eq!(log.offsets(Topic::from("t"), 1).await, None);
    }

    #[tokio::test]
    async fn subscribers_get_records_after_their_offset_then_live_ones() {
        let log = MemoryLog::new();
        for key in 0..3 {
            log.produce(record("a", key)).await.unwrap();
        }
        let offsets = vec![ConsumerOffset {
            topic: Topic::from("a"),
            partition: 0,
            offset: 0,
        }];
        let subscriptions = vec![Subscription {
            topic: Topic::from("a"),
        }];
        let mut stream = log.scoped_subscribe("g", offsets, subscriptions, None);
        assert_eq!(stream.next().await.unwrap().offset, 1);
        assert_eq!(stream.next().await.unwrap().offset, 2);
        let producer = log.clone();
        let live = tokio::spawn(async move { producer.produce(record("a", 7)).await });
        let received = stream.next().await.unwrap();
        assert_eq!((received.offset, received.key), (3, 7));
        live.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_subscription_follows_several_topics_and_ends_when_idle() {
        let log = MemoryLog::new();
        log.produce(record("a", 1)).await.unwrap();
        log.produce(record("b", 2)).await.unwrap();
        let subscriptions = vec![
            Subscription {
                topic: Topic::from("a"),
            },
            Subscription {
                topic: Topic::from("b"),
            },
        ];
        let stream =
            log.scoped_subscribe("g", vec![], subscriptions, Some(Duration::from_millis(20)));
        let mut keys: Vec<u64> = stream.map(|r| r.key).collect().await;
        keys.sort_unstable();
        assert_eq!(keys, vec![1, 2]);
    }

    #[tokio::test]
    async fn other_partitions_are_refused() {
        let log = MemoryLog::new();
        let mut wrong = record("a", 1);
        wrong.partition = 3;
        assert_eq!(log.produce(wrong).await, Err(ProducerError::CannotProduce));
    }
}
