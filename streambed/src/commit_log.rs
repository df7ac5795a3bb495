//! The commit log model: topics of records that are only ever appended to, addressed by
//! offsets, and read by subscribers that follow them as they grow.
//!
//! The model is that of [Apache Kafka](https://kafka.apache.org/): a *topic* is an
//! append-only sequence of *records*; every record gets the next *offset* of its topic
//! (offsets only ever rise), carries a *key* that the application chooses (commonly an
//! entity id) and may carry *headers* of metadata. A topic is split into *partitions*;
//! the implementations in this toolkit use partition 0 only. Subscribers name the topics
//! they want and, optionally, the offset of the last record they have already processed;
//! they then receive everything after it and every record appended from then on.
//!
//! Because keys identify entities, a log can be *compacted*: older records of a key are
//! dropped once newer ones supersede them, which bounds storage while keeping the log a
//! complete description of current state. This is what makes event sourcing practical on
//! small devices.
//!
//! The [`CommitLog`] trait is the interface every backend implements: a file-system log
//! (`streambed-logged`), a client of the Kafka HTTP API (`streambed-kafka`), or a test
//! double. The types here also define the JSON wire format of that HTTP API: byte values
//! are standard base64 with padding, timestamps are RFC 3339 and `null` lists read as empty.
//!
//! ```
//! use streambed::commit_log::{ConsumerRecord, Topic};
//!
//! let json = r#"{"topic":"ns:readings","headers":null,"timestamp":null,
//!               "key":7,"value":"aGk=","partition":0,"offset":41}"#;
//! let record: ConsumerRecord = serde_json::from_str(json).unwrap();
//! assert_eq!(record.topic, Topic::from("ns:readings"));
//! assert_eq!(record.value, b"hi");
//! assert!(record.headers.is_empty());
//! ```

use std::{fmt, pin::Pin, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use smol_str::SmolStr;
use tokio_stream::Stream;

/// The position of a record within its topic. Offsets start at 0 and rise by one for
/// every record appended; compaction may remove records but never renumbers them.
pub type Offset = u64;

/// The application-defined key of a record, commonly the id of the entity it describes.
/// Compaction keeps or drops records per key.
pub type Key = u64;

/// A partition of a topic. Partitions let Kafka spread a topic over machines; the
/// backends of this toolkit serve partition 0 only.
pub type Partition = u32;

/// The name of a topic. A name may carry a namespace as a prefix ending in a colon, as in
/// `"my-ns:my-topic"`; without one, a server assumes its default namespace.
pub type Topic = SmolStr;

/// The key of a [`Header`].
pub type HeaderKey = SmolStr;

/// Metadata attached to a record: a named byte value.
///
/// In JSON the value is standard base64 with padding.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Header {
    /// The header's name.
    pub key: HeaderKey,
    /// The header's value.
    #[serde(with = "crate::base64_bytes")]
    pub value: Vec<u8>,
}

/// The offset of the last record a consumer has already processed in a topic partition.
/// A subscription given this receives the records after it.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct ConsumerOffset {
    /// The topic the offset belongs to.
    pub topic: Topic,
    /// The partition within the topic.
    pub partition: Partition,
    /// The offset of the last record processed.
    pub offset: Offset,
}

/// A topic to subscribe to.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Subscription {
    /// The topic's name.
    pub topic: Topic,
}

/// A consumer session as sent to the Kafka HTTP API: the offsets already processed and the
/// topics to receive records of. `offsets` may be `null` or absent in JSON.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Consumer {
    /// Offsets already processed, per topic; topics without one are read from the start.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub offsets: Vec<ConsumerOffset>,
    /// The topics to receive records of.
    pub subscriptions: Vec<Subscription>,
}

/// A record as delivered to a subscriber, with the offset its topic assigned to it.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct ConsumerRecord {
    /// The topic the record was read from.
    pub topic: Topic,
    /// Metadata of the record; `null` or absent in JSON reads as none.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub headers: Vec<Header>,
    /// When the record was produced, if the producer said.
    pub timestamp: Option<DateTime<Utc>>,
    /// The application's key of the record.
    pub key: Key,
    /// The payload. In JSON, standard base64 with padding.
    #[serde(with = "crate::base64_bytes")]
    pub value: Vec<u8>,
    /// The partition the record was read from.
    pub partition: Partition,
    /// The record's offset within its topic partition.
    pub offset: Offset,
}

/// The range of offsets a topic partition holds.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct PartitionOffsets {
    /// The offset of the first record still held (compaction may have removed older ones).
    pub beginning_offset: Offset,
    /// The offset of the last record appended.
    pub end_offset: Offset,
}

/// A record to append to a topic. The log assigns its offset.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct ProducerRecord {
    /// The topic to append to.
    pub topic: Topic,
    /// Metadata of the record; `null` or absent in JSON reads as none.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub headers: Vec<Header>,
    /// When the record was produced; `None` lets the log leave it unset.
    pub timestamp: Option<DateTime<Utc>>,
    /// The application's key of the record.
    pub key: Key,
    /// The payload. In JSON, standard base64 with padding.
    #[serde(with = "crate::base64_bytes")]
    pub value: Vec<u8>,
    /// The partition to append to.
    pub partition: Partition,
}

/// The offset a produced record was given.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct ProducedOffset {
    /// The record's offset.
    pub offset: Offset,
}

/// A record could not be appended.
///
/// The variant says only that it failed; backends offer the cause through APIs of their
/// own (for example `FileLog::produce_with_cause` in `streambed-logged`) and in their logs.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum ProducerError {
    /// The commit log received the record but could not append it.
    CannotProduce,
}

impl fmt::Display for ProducerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProducerError::CannotProduce => f.write_str("the commit log cannot produce the record"),
        }
    }
}

impl std::error::Error for ProducerError {}

/// Some records of a [`CommitLog::produce_all`] could not be appended.
///
/// Records are appended in order, so those in `produced` are the first ones given, in
/// order; none after them was appended.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ProduceAllError {
    /// The offsets of the records appended before the failure, perhaps none.
    pub produced: Vec<ProducedOffset>,
    /// Why the next record was not appended.
    pub error: ProducerError,
}

impl fmt::Display for ProduceAllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} after appending {} record(s)",
            self.error,
            self.produced.len()
        )
    }
}

impl std::error::Error for ProduceAllError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A store of topics that can be appended to and followed.
///
/// Implementations are cheap to clone: clones share the same underlying log, so a clone
/// can be handed to every task that produces or subscribes.
///
/// ```
/// use std::time::Duration;
/// use streambed::commit_log::{CommitLog, ConsumerRecord, Subscription, Topic};
/// use tokio_stream::StreamExt;
///
/// // Counts the records of a topic that exist now, ending once none arrived for 100 ms.
/// async fn count<CL: CommitLog>(log: &CL, topic: Topic) -> usize {
///     let subscriptions = vec![Subscription { topic }];
///     log.scoped_subscribe("counter", vec![], subscriptions, Some(Duration::from_millis(100)))
///         .fold(0, |n, _record: ConsumerRecord| n + 1)
///         .await
/// }
/// ```
#[async_trait]
pub trait CommitLog: Clone + Send + Sync {
    /// The offsets a topic partition holds, or `None` for a topic never written.
    async fn offsets(&self, topic: Topic, partition: Partition) -> Option<PartitionOffsets>;

    /// Appends a record and answers the offset it was given.
    async fn produce(&self, record: ProducerRecord) -> Result<ProducedOffset, ProducerError>;

    /// Appends records in the order given, as [`produce`](CommitLog::produce) would one
    /// after the other, and answers their offsets in that order.
    ///
    /// Not in the upstream trait; provided, so every implementation has it. The provided
    /// body produces one record at a time; a log that can append many records at the
    /// cost of one (`FileLog` writes records of one topic with one write) overrides it.
    ///
    /// ```
    /// use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
    ///
    /// // Stores a burst of readings, in order.
    /// async fn store<CL: CommitLog>(log: &CL, readings: &[f32]) -> usize {
    ///     let records = readings
    ///         .iter()
    ///         .map(|reading| ProducerRecord {
    ///             topic: Topic::from("default:readings"),
    ///             headers: vec![],
    ///             timestamp: None,
    ///             key: 0,
    ///             value: reading.to_le_bytes().to_vec(),
    ///             partition: 0,
    ///         })
    ///         .collect();
    ///     match log.produce_all(records).await {
    ///         Ok(offsets) => offsets.len(),
    ///         Err(partly) => partly.produced.len(),
    ///     }
    /// }
    /// ```
    async fn produce_all(
        &self,
        records: Vec<ProducerRecord>,
    ) -> Result<Vec<ProducedOffset>, ProduceAllError> {
        let mut produced = Vec::with_capacity(records.len());
        for record in records {
            match self.produce(record).await {
                Ok(offset) => produced.push(offset),
                Err(error) => return Err(ProduceAllError { produced, error }),
            }
        }
        Ok(produced)
    }

    /// Subscribes to topics on behalf of a consumer group.
    ///
    /// The stream yields, per topic, the records whose offset is greater than the one given
    /// in `offsets` (every record when none is given), then each new record as it is
    /// appended, forever. With an `idle_timeout`, the stream ends once no record has
    /// arrived for that long.
    fn scoped_subscribe<'a>(
        &'a self,
        consumer_group_name: &str,
        offsets: Vec<ConsumerOffset>,
        subscriptions: Vec<Subscription>,
        idle_timeout: Option<Duration>,
    ) -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>>;
}

/// Reads a JSON `null` (or a missing field, with `#[serde(default)]`) as an empty list.
fn nullable_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Vec<T>>::deserialize(deserializer).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample_consumer_record() -> ConsumerRecord {
        ConsumerRecord {
            topic: Topic::from("ns:topic"),
            headers: vec![Header {
                key: HeaderKey::from("h"),
                value: vec![0xff, 0x00, 0x10],
            }],
            timestamp: Some(Utc.with_ymd_and_hms(2023, 1, 2, 3, 4, 5).unwrap()),
            key: 42,
            value: b"any carnal pleas".to_vec(),
            partition: 0,
            offset: 9,
        }
    }

    #[test]
    fn consumer_record_json_uses_base64_and_rfc3339() {
        let json = serde_json::to_value(sample_consumer_record()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "topic": "ns:topic",
                "headers": [{"key": "h", "value": "/wAQ"}],
                "timestamp": "2023-01-02T03:04:05Z",
                "key": 42,
                "value": "YW55IGNhcm5hbCBwbGVhcw==",
                "partition": 0,
                "offset": 9
            })
        );
    }

    #[test]
    fn consumer_record_json_round_trips() {
        let record = sample_consumer_record();
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(
            serde_json::from_str::<ConsumerRecord>(&text).unwrap(),
            record
        );
    }

    #[test]
    fn timestamps_with_offsets_and_fractions_are_accepted() {
        let json = r#"{"topic":"t","headers":[],"timestamp":"2023-01-02T05:04:05.250+02:00",
                       "key":1,"value":"","partition":0,"offset":0}"#;
        let record: ConsumerRecord = serde_json::from_str(json).unwrap();
        assert_eq!(
            record.timestamp.unwrap(),
            Utc.with_ymd_and_hms(2023, 1, 2, 3, 4, 5).unwrap()
                + chrono::Duration::milliseconds(250)
        );
    }

    #[test]
    fn producer_record_accepts_null_headers_and_timestamp() {
        let json =
            r#"{"topic":"t","headers":null,"timestamp":null,"key":3,"value":"AAE=","partition":0}"#;
        let record: ProducerRecord = serde_json::from_str(json).unwrap();
        assert_eq!(
            record,
            ProducerRecord {
                topic: Topic::from("t"),
                headers: vec![],
                timestamp: None,
                key: 3,
                value: vec![0, 1],
                partition: 0,
            }
        );
        let back = serde_json::to_value(&record).unwrap();
        assert_eq!(back["headers"], serde_json::json!([]));
        assert_eq!(back["timestamp"], serde_json::Value::Null);
        assert_eq!(back["value"], "AAE=");
    }

    #[test]
    fn consumer_accepts_null_offsets() {
        let consumer: Consumer =
            serde_json::from_str(r#"{"offsets":null,"subscriptions":[{"topic":"a"}]}"#).unwrap();
        assert_eq!(
            consumer,
            Consumer {
                offsets: vec![],
                subscriptions: vec![Subscription {
                    topic: Topic::from("a")
                }],
            }
        );
    }

    #[test]
    fn consumer_json_round_trips_offsets() {
        let consumer = Consumer {
            offsets: vec![ConsumerOffset {
                topic: Topic::from("a"),
                partition: 0,
                offset: 17,
            }],
            subscriptions: vec![Subscription {
                topic: Topic::from("a"),
            }],
        };
        let json = serde_json::to_value(&consumer).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "offsets": [{"topic": "a", "partition": 0, "offset": 17}],
                "subscriptions": [{"topic": "a"}]
            })
        );
        assert_eq!(serde_json::from_value::<Consumer>(json).unwrap(), consumer);
    }

    #[test]
    fn offsets_types_have_snake_case_fields() {
        let offsets = PartitionOffsets {
            beginning_offset: 1,
            end_offset: 5,
        };
        assert_eq!(
            serde_json::to_value(&offsets).unwrap(),
            serde_json::json!({"beginning_offset": 1, "end_offset": 5})
        );
        assert_eq!(
            serde_json::to_value(ProducedOffset { offset: 8 }).unwrap(),
            serde_json::json!({"offset": 8})
        );
        assert_eq!(
            serde_json::from_str::<PartitionOffsets>(r#"{"beginning_offset":1,"end_offset":5}"#)
                .unwrap(),
            offsets
        );
    }

    #[test]
    fn invalid_base64_is_an_error_not_a_panic() {
        let json =
            r#"{"topic":"t","headers":[],"timestamp":null,"key":3,"value":"!!","partition":0}"#;
        let error = serde_json::from_str::<ProducerRecord>(json).unwrap_err();
        assert!(error.to_string().contains("base64"), "{error}");
    }

    #[test]
    fn unpadded_base64_is_refused() {
        let json =
            r#"{"topic":"t","headers":[],"timestamp":null,"key":3,"value":"AAE","partition":0}"#;
        assert!(serde_json::from_str::<ProducerRecord>(json).is_err());
    }

    #[test]
    fn producer_error_displays_its_meaning() {
        assert_eq!(
            ProducerError::CannotProduce.to_string(),
            "the commit log cannot produce the record"
        );
    }
}
