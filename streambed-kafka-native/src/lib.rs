#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod args;
mod cluster;
mod error;
mod kafka_log;
mod producer;
mod record;
mod settings;
mod subscriber;
mod topic;

pub use args::{KafkaArgsError, KafkaNativeArgs, SaslMechanism};
pub use error::KafkaNativeError;
pub use kafka_log::KafkaNativeCommitLog;
pub use rskafka::client::{Credentials, SaslConfig};
pub use settings::{BrokerUrlError, KafkaNativeSettings, TopicCreation, DEFAULT_REQUEST_DEADLINE};
pub use topic::{kafka_topic_name, TopicNameError};
