//! What can go wrong between a `KafkaNativeCommitLog` and the cluster, with the context a
//! user needs to act on it. The `CommitLog` trait's own errors (`ProducerError`) carry no
//! detail, so the log's `try_produce_all` answers these and the trait methods log them.

use thiserror::Error;

use crate::topic::TopicNameError;

/// An error of producing to, or reading from, a Kafka cluster.
#[derive(Debug, Error)]
pub enum KafkaNativeError {
    /// The streambed topic name cannot be a Kafka topic name.
    #[error(transparent)]
    TopicName(#[from] TopicNameError),
    /// Kafka numbers partitions with `i32`; the record named one beyond.
    #[error("partition {0} is beyond Kafka's largest partition number")]
    Partition(u32),
    /// A record named one header key twice; Kafka clients keep one value per key, so the
    /// record is refused rather than stored without one of them.
    #[error("header {key:?} is given more than once in a record for topic {topic:?}")]
    DuplicateHeader {
        /// The streambed topic of the record.
        topic: String,
        /// The repeated key.
        key: String,
    },
    /// The topic does not exist and this log is not configured to create topics.
    #[error("topic {0:?} does not exist on the cluster (topic creation is off)")]
    UnknownTopic(String),
    /// The cluster could not be reached or refused the request, after retrying.
    #[error("Kafka cluster, topic {topic:?}: {source}")]
    Cluster {
        /// The Kafka topic concerned.
        topic: String,
        /// What rskafka reported (shared: one failed request may carry the records of
        /// several callers).
        #[source]
        source: std::sync::Arc<rskafka::client::error::Error>,
    },
    /// The log's writer for the partition went away with the records (the tokio runtime
    /// it was started on shut down): they may or may not have been produced. The next call
    /// starts a new writer.
    #[error("Kafka cluster, topic {0:?}: the partition's writer stopped with its runtime")]
    WriterStopped(String),
    /// The cluster answered fewer offsets than records were sent.
    #[error(
        "Kafka cluster, topic {topic:?}: {sent} records produced but {answered} offsets answered"
    )]
    MissingOffsets {
        /// The Kafka topic concerned.
        topic: String,
        /// Records sent.
        sent: usize,
        /// Offsets answered.
        answered: usize,
    },
}
