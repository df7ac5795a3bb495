//! What can stop a `logged` command, each with the context a user needs to fix it.

use std::{io, path::PathBuf};

use streambed_logged::{inspect::InspectError, ProduceError, TopicNameError};

/// A `logged` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An input or output file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    /// A record of the input is not valid JSON of a producer record.
    #[error("record {number} is not a valid producer record ({records_produced} records before it were produced): {source}")]
    BadRecord {
        /// The record's position in the input, counting from 1.
        number: u64,
        records_produced: u64,
        source: serde_json::Error,
    },
    /// Reading the input failed.
    #[error("cannot read record {number}: {source}")]
    Read { number: u64, source: io::Error },
    /// The commit log refused a record.
    #[error("cannot produce record {number} ({records_produced} records before it were produced): {source}")]
    Produce {
        number: u64,
        records_produced: u64,
        source: ProduceError,
    },
    /// A subscription names a topic the log cannot hold.
    #[error("cannot subscribe to {topic:?}: {source}")]
    BadTopic {
        topic: String,
        source: TopicNameError,
    },
    /// An offset was given for a topic that is not subscribed to.
    #[error("an offset is given for {topic}, which is not among the subscriptions")]
    OffsetWithoutSubscription { topic: String },
    /// An offset names a partition other than 0.
    #[error("an offset for {topic} names partition {partition}, but file-system logs have only partition 0")]
    UnsupportedPartition { topic: String, partition: u32 },
    /// A topic could not be inspected.
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// `offsets` was asked of a topic that holds no intact record.
    #[error("topic {topic:?} holds no record")]
    NoRecords { topic: String },
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Write(#[from] io::Error),
    /// A record could not be written as JSON.
    #[error("cannot write record at offset {offset} of {topic} as JSON: {source}")]
    Encode {
        topic: String,
        offset: u64,
        source: serde_json::Error,
    },
}
