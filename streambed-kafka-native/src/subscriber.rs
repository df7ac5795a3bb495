//! Subscriptions: each topic read by a reader of its own, partition by partition with
//! long-polling fetches, the topics' streams merged, and the whole ended by the idle
//! timeout when one is given.
//!
//! A subscription has its own connection to the cluster, so that its fetches, which wait
//! at the broker for records to arrive, never hold up produce requests. It outlives the
//! cluster going away: failures are retried with the shared back-off (`Delayer`), and a
//! topic that does not exist yet is looked for again until it does. Nothing is spawned:
//! dropping the stream stops all of it.

use std::{collections::VecDeque, pin::Pin, sync::Arc, time::Duration};

use futures_util::{stream, Stream, StreamExt};
use rskafka::client::{
    error::{Error as ClientError, ProtocolError},
    partition::{OffsetAt, PartitionClient, UnknownTopicHandling},
    Client,
};
use streambed::{
    commit_log::{ConsumerOffset, ConsumerRecord, Subscription, Topic},
    delayer::Delayer,
};
use tokio::sync::OnceCell;

use crate::{
    cluster::{cluster, Cluster},
    error::KafkaNativeError,
    record::from_kafka,
    topic::kafka_topic_name,
};

/// How long one fetch waits at the broker for records, split among a topic's partitions.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// The most record bytes one fetch brings back, which bounds a reader's memory.
const FETCH_BYTES: i32 = 1024 * 1024;
/// How often a topic that does not exist yet is looked for.
const DISCOVERY_INTERVAL: Duration = Duration::from_millis(200);

type Records = Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'static>>;

pub(crate) fn subscribe(
    cluster: Arc<Cluster>,
    offsets: Vec<ConsumerOffset>,
    subscriptions: Vec<Subscription>,
    idle_timeout: Option<Duration>,
) -> Records {
    let connection = Arc::new(Connection {
        cluster,
        client: OnceCell::new(),
    });
    let readers = subscriptions.into_iter().filter_map(|subscription| {
        let topic = subscription.topic;
        let name = match kafka_topic_name(&topic) {
            Ok(name) => name.into_owned(),
            Err(error) => {
                log::error!("subscription: {error}; the topic is left out");
                return None;
            }
        };
        let starts = offsets
            .iter()
            .filter(|offset| offset.topic == topic)
            .filter_map(|offset| {
                let partition = i32::try_from(offset.partition).ok()?;
                let next = i64::try_from(offset.offset).ok()?.checked_add(1)?;
                Some((partition, next))
            })
            .collect();
        let reader = TopicReader {
            connection: Arc::clone(&connection),
            topic,
            name,
            starts,
            partitions: Vec::new(),
            turn: 0,
            ready: VecDeque::new(),
            delayer: Delayer::default(),
        };
        Some(Box::pin(stream::unfold(reader, |mut reader| async move {
            let record = reader.next().await;
            Some((record, reader))
        })) as Records)
    });
    let merged = stream::select_all(readers);
    match idle_timeout {
        None => Box::pin(merged),
        Some(idle) => Box::pin(stream::unfold(merged, move |mut merged| async move {
            let record = tokio::time::timeout(idle, merged.next()).await.ok()??;
            Some((record, merged))
        })),
    }
}

/// The connection one subscription's readers share, made when first needed.
struct Connection {
    cluster: Arc<Cluster>,
    client: OnceCell<Client>,
}

/// One partition being read, and the offset of the next record it owes.
struct Cursor {
    client: PartitionClient,
    /// `None` until the first fetch, which then starts at the earliest record kept.
    next: Option<i64>,
    /// Whether the last fetch brought records: then the next asks without waiting, since
    /// more are likely there. Some brokers (tansu 0.6) hold a fetch for half its wait
    /// even when records are ready, so a reader catching up must not ask them to wait.
    behind: bool,
}

struct TopicReader {
    connection: Arc<Connection>,
    topic: Topic,
    /// The Kafka topic holding `topic`.
    name: String,
    /// Where partitions start: one past the offsets the subscriber was given.
    starts: Vec<(i32, i64)>,
    partitions: Vec<(i32, Cursor)>,
    /// The partition fetched next, round-robin.
    turn: usize,
    ready: VecDeque<ConsumerRecord>,
    delayer: Delayer,
}

impl TopicReader {
    /// The next record of the topic; waits as long as it takes.
    async fn next(&mut self) -> ConsumerRecord {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return record;
            }
            let step = if self.partitions.is_empty() {
                self.discover().await
            } else {
                self.fetch().await
            };
            match step {
                Ok(()) => self.delayer.reset(),
                Err(error) => {
                    log::warn!("subscription to {}: {error}", self.topic);
                    self.delayer.delay().await;
                }
            }
        }
    }

    /// Finds the topic's partitions; waits a while when the topic does not exist yet.
    async fn discover(&mut self) -> Result<(), KafkaNativeError> {
        let name = self.name.as_str();
        let connection = &self.connection;
        let client = connection
            .client
            .get_or_try_init(|| connection.cluster.connect(name))
            .await?;
        let topics = client
            .list_topics()
            .await
            .map_err(|source| cluster(name, source))?;
        let Some(found) = topics.into_iter().find(|topic| topic.name == self.name) else {
            tokio::time::sleep(DISCOVERY_INTERVAL).await;
            return Ok(());
        };
        let mut indices: Vec<i32> = found.partitions.into_iter().collect();
        indices.sort_unstable();
        // All or nothing: a partition left out now would never be read.
        let mut partitions = Vec::with_capacity(indices.len());
        for index in indices {
            let partition_client = client
                .partition_client(name, index, UnknownTopicHandling::Retry)
                .await
                .map_err(|source| cluster(name, source))?;
            let next = self
                .starts
                .iter()
                .find(|(partition, _)| *partition == index)
                .map(|(_, next)| *next);
            partitions.push((
                index,
                Cursor {
                    client: partition_client,
                    next,
                    behind: true,
                },
            ));
        }
        self.partitions = partitions;
        Ok(())
    }

    /// One fetch from the partition whose turn it is.
    async fn fetch(&mut self) -> Result<(), KafkaNativeError> {
        let name = self.name.as_str();
        let count = self.partitions.len();
        let (index, cursor) = &mut self.partitions[self.turn % count];
        self.turn = (self.turn + 1) % count;
        let offset = match cursor.next {
            Some(offset) => offset,
            None => *cursor.next.insert(
                cursor
                    .client
                    .get_offset(OffsetAt::Earliest)
                    .await
                    .map_err(|source| cluster(name, source))?,
            ),
        };
        let wait = if cursor.behind {
            0
        } else {
            i32::try_from(FETCH_WAIT.as_millis() / count as u128)
                .unwrap_or(1)
                .max(1)
        };
        match cursor
            .client
            .fetch_records(offset, 1..FETCH_BYTES, wait)
            .await
        {
            Ok((records, _high_watermark)) => {
                cursor.behind = !records.is_empty();
                let partition = u32::try_from(*index).unwrap_or_default();
                for record in records {
                    cursor.next = Some(record.offset + 1);
                    self.ready
                        .push_back(from_kafka(&self.topic, partition, record));
                }
                Ok(())
            }
            // Retention removed what this cursor was owed: go on from what is kept.
            Err(ClientError::ServerError {
                protocol_error: ProtocolError::OffsetOutOfRange,
                ..
            }) => {
                log::warn!(
                    "subscription to {} partition {index}: offset {offset} is no longer kept; \
                     reading on from the earliest record kept",
                    self.topic
                );
                cursor.next = None;
                Ok(())
            }
            Err(source) => Err(cluster(name, source)),
        }
    }
}
