//! `KafkaNativeCommitLog`: the `CommitLog` trait over a Kafka cluster.
//!
//! Offsets mean what they mean on a `FileLog`: `offsets` reports the first and the last
//! record present (Kafka's "latest" is one past the last), and a subscription from an
//! offset starts after it. The last offset is the high watermark of a fetch, not a
//! ListOffsets answer, since some brokers (tansu 0.6) answer the latter with the start of
//! the last batch.

use std::{pin::Pin, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures_util::Stream;
use rskafka::client::partition::OffsetAt;
use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, Partition, PartitionOffsets, ProduceAllError,
    ProducedOffset, ProducerError, ProducerRecord, Subscription, Topic,
};

use crate::{
    cluster::{cluster, is_unknown_topic, Cluster},
    error::KafkaNativeError,
    producer::Outcome,
    record::to_kafka,
    settings::KafkaNativeSettings,
    subscriber,
    topic::kafka_topic_name,
};

/// A commit log kept by a Kafka cluster, spoken to over the Kafka wire protocol.
///
/// Records keep streambed's shape on the cluster: the `u64` key as 8 big-endian bytes,
/// headers, the timestamp (to the millisecond), the partition named. Topic names map as
/// [`kafka_topic_name`] says. Clones share one connection.
///
/// ```no_run
/// use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
/// use streambed_kafka_native::{KafkaNativeCommitLog, KafkaNativeSettings};
///
/// # async fn run() {
/// let log = KafkaNativeCommitLog::with_settings(
///     KafkaNativeSettings::new(["127.0.0.1:9092"]).create_topics(1, 1),
/// );
/// let produced = log
///     .produce(ProducerRecord {
///         topic: Topic::from("readings"),
///         headers: vec![],
///         timestamp: None,
///         key: 7,
///         value: b"21.5".to_vec(),
///         partition: 0,
///     })
///     .await
///     .unwrap();
/// println!("stored at offset {}", produced.offset);
/// # }
/// ```
#[derive(Clone)]
pub struct KafkaNativeCommitLog {
    cluster: Arc<Cluster>,
}

impl KafkaNativeCommitLog {
    /// A log over the cluster these bootstrap brokers (`host:port`) belong to, with the
    /// default settings (plain TCP, no topic creation). Connects on first use.
    pub fn new<B: Into<String>>(bootstrap_brokers: impl IntoIterator<Item = B>) -> Self {
        Self::with_settings(KafkaNativeSettings::new(bootstrap_brokers))
    }

    /// A log with these settings. Connects on first use.
    pub fn with_settings(settings: KafkaNativeSettings) -> Self {
        Self {
            cluster: Arc::new(Cluster::new(settings)),
        }
    }

    /// The settings this log was made with.
    pub fn settings(&self) -> &KafkaNativeSettings {
        &self.cluster.settings
    }

    /// Produces records, answering their offsets in order, or the reason they could not be
    /// produced: what [`CommitLog::produce_all`] does, with the error's detail kept.
    /// Consecutive records for one partition go to the cluster in one request.
    ///
    /// On an error, records before the batch that failed are stored; the error does not
    /// say how many (use [`CommitLog::produce_all`] for that).
    pub async fn try_produce_all(
        &self,
        records: Vec<ProducerRecord>,
    ) -> Result<Vec<ProducedOffset>, KafkaNativeError> {
        let mut produced = Vec::with_capacity(records.len());
        self.produce_batches(records, &mut produced).await?;
        Ok(produced)
    }

    /// Produces batch after batch, pushing offsets as batches are stored.
    async fn produce_batches(
        &self,
        records: Vec<ProducerRecord>,
        produced: &mut Vec<ProducedOffset>,
    ) -> Result<(), KafkaNativeError> {
        let mut records = records.into_iter().peekable();
        while let Some(first) = records.next() {
            let (topic, partition) = (first.topic.clone(), first.partition);
            let mut batch = vec![to_kafka(first)?];
            while let Some(next) =
                records.next_if(|next| next.topic == topic && next.partition == partition)
            {
                batch.push(to_kafka(next)?);
            }
            self.produce_batch(&topic, partition, batch, produced)
                .await?;
        }
        Ok(())
    }

    async fn produce_batch(
        &self,
        topic: &Topic,
        partition: Partition,
        mut batch: Vec<rskafka::record::Record>,
        produced: &mut Vec<ProducedOffset>,
    ) -> Result<(), KafkaNativeError> {
        let (name, index) = kafka_partition(topic, partition)?;
        let sent = batch.len();
        // A writer whose runtime has shut down never saw the records: once, a new writer
        // on this runtime takes them.
        let mut tries = 0;
        let offsets = loop {
            tries += 1;
            let partition = self
                .cluster
                .partition(&name, index, true)
                .await?
                .ok_or_else(|| KafkaNativeError::UnknownTopic(topic.to_string()))?;
            match partition.producer.produce(batch).await {
                Outcome::Produced(Ok(offsets)) => break offsets,
                Outcome::Produced(Err(source)) => {
                    self.cluster.forget(&name, index);
                    return Err(cluster(&name, source));
                }
                Outcome::NotSent(records) if tries == 1 => {
                    self.cluster.forget(&name, index);
                    batch = records;
                }
                Outcome::NotSent(_) | Outcome::Lost => {
                    self.cluster.forget(&name, index);
                    return Err(KafkaNativeError::WriterStopped(name.into_owned()));
                }
            }
        };
        if offsets.len() != sent {
            return Err(KafkaNativeError::MissingOffsets {
                topic: name.into_owned(),
                sent,
                answered: offsets.len(),
            });
        }
        produced.extend(offsets.into_iter().map(|offset| ProducedOffset {
            offset: u64::try_from(offset).unwrap_or_default(),
        }));
        Ok(())
    }

    /// The first and last offsets of a partition, or the reason they are unknown.
    /// `Ok(None)` is an unknown topic or an empty partition.
    pub async fn try_offsets(
        &self,
        topic: &Topic,
        partition: Partition,
    ) -> Result<Option<PartitionOffsets>, KafkaNativeError> {
        let (name, index) = kafka_partition(topic, partition)?;
        let Some(partition) = self.cluster.partition(&name, index, false).await? else {
            return Ok(None);
        };
        let client = &partition.client;
        let queried = async {
            let beginning = client.get_offset(OffsetAt::Earliest).await?;
            // Nothing waits: min bytes 0, no wait. The answer's high watermark is one past
            // the last record.
            let (_, high_watermark) = client.fetch_records(beginning, 0..2, 0).await?;
            Ok((beginning, high_watermark))
        };
        match queried.await {
            Ok((beginning, high_watermark)) if high_watermark > beginning => {
                Ok(Some(PartitionOffsets {
                    beginning_offset: u64::try_from(beginning).unwrap_or_default(),
                    end_offset: u64::try_from(high_watermark - 1).unwrap_or_default(),
                }))
            }
            Ok(_) => Ok(None),
            Err(error) if is_unknown_topic(&error) => {
                self.cluster.forget(&name, index);
                Ok(None)
            }
            Err(source) => {
                self.cluster.forget(&name, index);
                Err(cluster(&name, source))
            }
        }
    }

    pub(crate) fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }
}

/// The Kafka topic and partition number that hold a streambed topic's partition.
fn kafka_partition(
    topic: &Topic,
    partition: Partition,
) -> Result<(std::borrow::Cow<'_, str>, i32), KafkaNativeError> {
    let index = i32::try_from(partition).map_err(|_| KafkaNativeError::Partition(partition))?;
    Ok((kafka_topic_name(topic)?, index))
}

#[async_trait]
impl CommitLog for KafkaNativeCommitLog {
    async fn offsets(&self, topic: Topic, partition: Partition) -> Option<PartitionOffsets> {
        self.try_offsets(&topic, partition)
            .await
            .unwrap_or_else(|error| {
                log::warn!("offsets of {topic} partition {partition}: {error}");
                None
            })
    }

    async fn produce(&self, record: ProducerRecord) -> Result<ProducedOffset, ProducerError> {
        match self.try_produce_all(vec![record]).await {
            Ok(mut offsets) => offsets.pop().ok_or(ProducerError::CannotProduce),
            Err(error) => {
                log::warn!("produce: {error}");
                Err(ProducerError::CannotProduce)
            }
        }
    }

    async fn produce_all(
        &self,
        records: Vec<ProducerRecord>,
    ) -> Result<Vec<ProducedOffset>, ProduceAllError> {
        let mut produced = Vec::with_capacity(records.len());
        match self.produce_batches(records, &mut produced).await {
            Ok(()) => Ok(produced),
            Err(error) => {
                log::warn!("produce_all, after {} records: {error}", produced.len());
                Err(ProduceAllError {
                    produced,
                    error: ProducerError::CannotProduce,
                })
            }
        }
    }

    fn scoped_subscribe<'a>(
        &'a self,
        _consumer_group_name: &str,
        offsets: Vec<ConsumerOffset>,
        subscriptions: Vec<Subscription>,
        idle_timeout: Option<Duration>,
    ) -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>> {
        subscriber::subscribe(
            Arc::clone(self.cluster()),
            offsets,
            subscriptions,
            idle_timeout,
        )
    }
}
