//! Why a call to the server failed, for the APIs that say more than the [`CommitLog`]
//! trait can.
//!
//! [`CommitLog`]: streambed::commit_log::CommitLog

use std::sync::Arc;

use thiserror::Error;
use url::Url;

/// A call to the Kafka HTTP API failed.
///
/// Calls retry by themselves while the server is unreachable, so these errors are the ones
/// that retrying would not cure (or could make worse, such as producing a record twice),
/// or that persisted over the tries a request that may have reached the server is given.
///
/// ```
/// use streambed_kafka::{ClientError, KafkaRestCommitLog};
///
/// let error = KafkaRestCommitLog::try_new("mailto:ops@example.com".parse().unwrap(), None, false)
///     .unwrap_err();
/// assert!(matches!(error, ClientError::BadServerUrl(_)));
/// assert!(error.to_string().contains("mailto:ops@example.com"));
/// ```
#[derive(Clone, Debug, Error)]
pub enum ClientError {
    /// The HTTP client could not be set up, typically because the server certificate given
    /// is unusable.
    #[error("the HTTP client could not be built: {0}")]
    Build(Arc<reqwest::Error>),
    /// The server URL cannot have a path appended (it is not an `http(s)://` URL).
    #[error("server URL {0} cannot be a base for API paths")]
    BadServerUrl(Url),
    /// A topic or consumer group name is empty, `.` or `..`, which cannot be one segment
    /// of an API path (it would name another path); nothing was sent.
    #[error("{0:?} cannot be an API path segment: empty, \".\" and \"..\" are refused")]
    BadPathSegment(String),
    /// TLS refused the server's certificate (not trusted, expired, for another name...),
    /// or the server refused the client's (mutual TLS: none shown where one is required,
    /// or one from a CA it does not trust): no retry cures that, so the call fails at
    /// once. Trust the server's certificate with `server_cert`; show a client certificate
    /// with [`KafkaRestCommitLog::with_client_identity`](crate::KafkaRestCommitLog::with_client_identity).
    #[error("a TLS certificate was refused at {url}: {reason}")]
    Certificate {
        /// The URL requested.
        url: Url,
        /// Why the certificate was refused.
        reason: String,
    },
    /// A batch to produce holds records of several topics; one request serves one topic.
    #[error("records of topics {first:?} and {other:?} cannot be produced in one request")]
    MixedTopics {
        /// The topic of the first record.
        first: String,
        /// Another topic found in the batch.
        other: String,
    },
    /// The request could not be completed, and repeating it could have done harm (for a
    /// produce request: appending its records twice) or failed as often as allowed.
    #[error("request to {url} failed: {source}")]
    Transport {
        /// The URL requested.
        url: Url,
        /// What went wrong.
        source: Arc<reqwest::Error>,
    },
    /// The server refused the request, or answered "try later" on every try allowed.
    #[error("server answered {status} to {url}: {message}")]
    Status {
        /// The URL requested.
        url: Url,
        /// The HTTP status.
        status: u16,
        /// The server's explanation (the `message` of its JSON error body, or the body).
        message: String,
    },
    /// The server answered fewer offsets than records were produced, so it is unknown
    /// where some of them went.
    #[error("{url} answered {offsets} offsets for {records} records produced")]
    MissingOffsets {
        /// The URL requested.
        url: Url,
        /// How many records were sent.
        records: usize,
        /// How many offsets the server answered.
        offsets: usize,
    },
    /// The server's answer is not what the API promises, or larger than the client
    /// reads.
    #[error("unexpected answer from {url}: {reason}")]
    BadReply {
        /// The URL requested.
        url: Url,
        /// What was wrong with the answer.
        reason: String,
    },
}
