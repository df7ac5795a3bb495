//! Error types: why a produce, a topic name or a compaction registration was refused.

use std::{io, sync::Arc};

use streambed::commit_log::{Partition, Topic};
use thiserror::Error;

/// Why a topic name was refused. Names become file names under the log's root folder, so
/// anything that could leave that folder or collide with another topic's files is refused.
#[derive(Clone, Debug, Error, Eq, PartialEq)]
pub enum TopicNameError {
    /// The name is empty.
    #[error("a topic name must not be empty")]
    Empty,
    /// The name is longer than the 249 bytes Kafka allows.
    #[error("topic name is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// The name's length in bytes.
        len: usize,
        /// The longest name allowed.
        max: usize,
    },
    /// The name holds a character that could leave the root folder or end a C string.
    #[error("topic name {name:?} holds the forbidden character {ch:?}")]
    ForbiddenCharacter {
        /// The refused name.
        name: String,
        /// The first forbidden character found.
        ch: char,
    },
    /// The name is `.` or holds `..`.
    #[error("topic name {name:?} is `.` or holds `..`")]
    Dots {
        /// The refused name.
        name: String,
    },
    /// The name ends like one of the files the log keeps beside a topic.
    #[error("topic name {name:?} ends with the reserved suffix {suffix:?}")]
    ReservedSuffix {
        /// The refused name.
        name: String,
        /// The suffix it ends with.
        suffix: &'static str,
    },
}

/// Why `FileLog::produce_with_cause` could not append a record.
///
/// `CommitLog::produce` reports every one of these as `ProducerError::CannotProduce` and
/// logs the cause at warning level.
#[derive(Clone, Debug, Error)]
pub enum ProduceError {
    /// The topic name is not acceptable.
    #[error("invalid topic name: {0}")]
    InvalidTopic(#[from] TopicNameError),
    /// Only partition 0 exists.
    #[error("partition {partition} requested for topic {topic}, but only partition 0 exists")]
    UnsupportedPartition {
        /// The topic produced to.
        topic: Topic,
        /// The partition asked for.
        partition: Partition,
    },
    /// The encoded record would be larger than the configured `max_record_size`.
    #[error("record for topic {topic} encodes to {size} bytes; the maximum is {max}")]
    RecordTooLarge {
        /// The topic produced to.
        topic: Topic,
        /// The record's encoded size, checksum included.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The file system refused an operation.
    #[error("{action} for topic {topic} failed: {source}")]
    Io {
        /// The topic produced to.
        topic: Topic,
        /// What the log was doing.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The topic's writer stopped before answering. Kept for code that matches on it:
    /// producers now append themselves, so this log no longer returns it.
    #[error("the writer of topic {topic} stopped before answering")]
    WriterStopped {
        /// The topic produced to.
        topic: Topic,
    },
}

impl ProduceError {
    pub(crate) fn io(topic: &Topic, action: &'static str, source: io::Error) -> Self {
        ProduceError::Io {
            topic: topic.clone(),
            action,
            source: Arc::new(source),
        }
    }
}

/// Compaction could not be registered for a topic.
#[derive(Clone, Debug, Error)]
pub enum CompactionRegistrationError {
    /// The topic name is not acceptable.
    #[error("invalid topic name: {0}")]
    InvalidTopic(#[from] TopicNameError),
}
