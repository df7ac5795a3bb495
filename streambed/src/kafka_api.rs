//! The JSON bodies of streambed's Kafka HTTP API, in one place for the server
//! (`streambed-server`) and the client (`streambed-kafka`) so that the two cannot drift
//! apart.
//!
//! The endpoints:
//! - `GET /topics/<topic>/partitions/<partition>/offsets` → [`PartitionOffsets`]
//!   (404: no record of the topic);
//! - `POST /topics/<topic>` with a [`ProduceRequest`] → a [`ProduceReply`], one offset per
//!   record, in order;
//! - `POST /consumers/<group>` with a [`Consumer`] → a response that stays open and streams
//!   [`ConsumerRecord`] values one after another;
//! - any refusal → an [`ErrorReply`] with the refusal's status.
//!
//! A server streaming many records writes each with [`write_consumer_record`], which
//! produces the bytes of the serde form without its cost.
//!
//! ```
//! use streambed::{
//!     commit_log::{ProducedOffset, ProducerRecord, Topic},
//!     kafka_api::{ProduceReply, ProduceRequest},
//! };
//!
//! let records = [ProducerRecord {
//!     topic: Topic::from("default:readings"),
//!     headers: vec![],
//!     timestamp: None,
//!     key: 1,
//!     value: b"hi".to_vec(),
//!     partition: 0,
//! }];
//! let request = serde_json::to_value(ProduceRequest { records: (&records[..]).into() }).unwrap();
//! assert_eq!(request["records"][0]["value"], "aGk=");
//!
//! // Fields that other servers add are ignored.
//! let reply: ProduceReply =
//!     serde_json::from_str(r#"{"key_schema_id":null,"offsets":[{"partition":0,"offset":7}]}"#)
//!         .unwrap();
//! assert_eq!(reply.offsets, vec![ProducedOffset { offset: 7 }]);
//! ```

mod record_json;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::commit_log::ProducerRecord;
pub use crate::commit_log::{Consumer, ConsumerRecord, PartitionOffsets, ProducedOffset};
pub use record_json::write_consumer_record;

/// The body of `POST /topics/<topic>`: `{"records": [...]}`. A client sends borrowed
/// records; a server reads owned ones.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ProduceRequest<'a> {
    /// The records to append, all of the topic of the path.
    pub records: Cow<'a, [ProducerRecord]>,
}

/// The answer to `POST /topics/<topic>`: `{"offsets": [{"offset": n}, ...]}`, one per
/// record, in order. Other fields (some servers add partitions and schema ids) are
/// ignored.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Serialize)]
pub struct ProduceReply {
    /// The offsets the records were given.
    pub offsets: Vec<ProducedOffset>,
}

/// A refusal: `{"error_code": <HTTP status>, "message": "..."}` (the form of Confluent's
/// REST proxy too), plus, for a produce request that failed part-way, the offsets of the
/// records appended before the failure.
///
/// ```
/// use streambed::kafka_api::ErrorReply;
///
/// let refusal = ErrorReply { error_code: 400, message: "bad topic".into(), offsets: None };
/// assert_eq!(
///     serde_json::to_string(&refusal).unwrap(),
///     r#"{"error_code":400,"message":"bad topic"}"#
/// );
/// // A body without a code still yields its message.
/// let read: ErrorReply = serde_json::from_str(r#"{"message":"no"}"#).unwrap();
/// assert_eq!(read.message, "no");
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Serialize)]
pub struct ErrorReply {
    /// The HTTP status of the refusal.
    #[serde(default)]
    pub error_code: u16,
    /// Why the request was refused.
    pub message: String,
    /// For a produce request that failed part-way: the offsets of the records appended
    /// before the failure, so that the client knows exactly what was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<Vec<ProducedOffset>>,
}
