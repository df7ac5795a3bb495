#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod args;
mod decoder;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod subscriber;

use std::{pin::Pin, sync::Arc, time::Duration};

use async_trait::async_trait;
use reqwest::{Certificate, Client, Identity, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use streambed::{
    commit_log::{
        CommitLog, ConsumerOffset, ConsumerRecord, Partition, PartitionOffsets, ProducedOffset,
        ProducerError, ProducerRecord, Subscription, Topic,
    },
    http::{
        self, ApiUrlError, BearerToken, BodyError, ClientOptions, Idempotence, RetryPolicy,
        TryError, TryFailure,
    },
    kafka_api::{ErrorReply, ProduceReply, ProduceRequest},
};
use tokio_stream::Stream;
use url::Url;

pub use error::ClientError;

/// A [`CommitLog`] on a server of the Kafka HTTP API, such as `streambed-server`.
///
/// Clones share one connection pool. Every call retries with back-off for as long as the
/// server is unreachable, so a service can start before its server does; wrap a call in
/// [`tokio::time::timeout`] to bound the wait (calls are cancel-safe). A request that may
/// have reached the server is tried at most 5 times (a produce request only when the
/// server answered 503, so that no record is appended twice): see [`streambed::http`].
/// A server certificate that TLS refuses fails the call at once
/// ([`ClientError::Certificate`]), and no answer larger than the client expects is read
/// into memory ([`ClientError::BadReply`]).
///
/// ```no_run
/// use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
/// use streambed_kafka::KafkaRestCommitLog;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let server = "http://localhost:8082".parse().unwrap();
/// let log = KafkaRestCommitLog::new(server, None, false);
/// let record = ProducerRecord {
///     topic: Topic::from("default:readings"),
///     headers: vec![],
///     timestamp: None,
///     key: 1,
///     value: b"21.5".to_vec(),
///     partition: 0,
/// };
/// let offset = log.produce(record).await.unwrap().offset;
/// # let _ = offset;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct KafkaRestCommitLog {
    /// The client, or why it could not be built (every call then fails with that reason:
    /// [`KafkaRestCommitLog::new`] cannot return an error).
    client: Result<Client, Arc<reqwest::Error>>,
    /// What the client was built from, to build it again with a builder method's change.
    options: ClientOptions,
    server: Url,
}

/// How long one request (other than a consumer stream) may take once connected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read, but for a produce reply's offsets: offsets and error answers
/// are a few hundred bytes.
const MAX_REPLY: usize = 1024 * 1024;

/// Room for each offset of a produce reply beyond [`MAX_REPLY`] (`{"offset":<u64>},` is
/// at most 32 bytes), so that a large batch's reply is never refused after its records
/// were appended.
const MAX_REPLY_PER_OFFSET: usize = 64;

impl KafkaRestCommitLog {
    /// Creates a client of the server at `server` (for example `http://localhost:8082`).
    ///
    /// `server_cert` is an additional root certificate to trust, typically a server's
    /// self-signed one (see `streambed::read_pem`); `tls_insecure` accepts any server
    /// certificate, for tests only. Should the client not be buildable, every call fails
    /// and logs why; [`KafkaRestCommitLog::try_new`] reports it at once instead.
    ///
    /// ```
    /// use streambed_kafka::KafkaRestCommitLog;
    ///
    /// let log = KafkaRestCommitLog::new("https://logs.example:8082".parse().unwrap(), None, false);
    /// # drop(log);
    /// ```
    pub fn new(server: Url, server_cert: Option<Certificate>, tls_insecure: bool) -> Self {
        let options = client_options(server_cert, tls_insecure);
        let client = build_logged(&options, &server);
        Self {
            client,
            options,
            server,
        }
    }

    /// The same log, sending `Authorization: Bearer <token>` with every request (produce,
    /// offsets and consumer streams, reconnections included), for a server that checks
    /// identities. The token is never logged or shown by `Debug`.
    ///
    /// ```
    /// use streambed_kafka::KafkaRestCommitLog;
    ///
    /// let log = KafkaRestCommitLog::new("https://logs.example:8082".parse().unwrap(), None, false)
    ///     .with_bearer_token("s.token-from-the-secret-store".parse().unwrap());
    /// assert!(!format!("{log:?}").contains("s.token"));
    /// ```
    pub fn with_bearer_token(mut self, token: BearerToken) -> Self {
        self.options.bearer_token = Some(token);
        self.client = build_logged(&self.options, &self.server);
        self
    }

    /// The same log, showing `identity` (a client certificate chain and its key, see
    /// [`Identity::from_pem`]) to a server that asks for one: mutual TLS, where the server
    /// names the client by the certificate's subject. Fails when TLS cannot be set up
    /// with it (for example a key of a kind rustls does not support).
    ///
    /// ```
    /// use streambed_kafka::KafkaRestCommitLog;
    /// # let ca = streambed_test::pki::TestCa::new("ca");
    /// # let pem = ca.client("sensor-7").identity_pem();
    ///
    /// // `pem`: the client's certificate chain followed by its private key.
    /// let identity = reqwest::Identity::from_pem(pem.as_bytes()).unwrap();
    /// let log = KafkaRestCommitLog::new("https://logs.example:8443".parse().unwrap(), None, false)
    ///     .with_client_identity(identity)
    ///     .unwrap();
    /// # drop(log);
    /// ```
    pub fn with_client_identity(mut self, identity: Identity) -> Result<Self, ClientError> {
        self.options.client_identity = Some(identity);
        let client = self
            .options
            .clone()
            .build()
            .map_err(|error| ClientError::Build(Arc::new(error)))?;
        self.client = Ok(client);
        Ok(self)
    }

    /// Like [`KafkaRestCommitLog::new`], but fails when the client cannot be built or the
    /// URL cannot serve as a base for the API's paths.
    ///
    /// ```
    /// use streambed_kafka::{ClientError, KafkaRestCommitLog};
    ///
    /// let log = KafkaRestCommitLog::try_new("http://localhost:8082".parse().unwrap(), None, false);
    /// assert!(log.is_ok());
    /// let log = KafkaRestCommitLog::try_new("mailto:me@example.com".parse().unwrap(), None, false);
    /// assert!(matches!(log, Err(ClientError::BadServerUrl(_))));
    /// ```
    pub fn try_new(
        server: Url,
        server_cert: Option<Certificate>,
        tls_insecure: bool,
    ) -> Result<Self, ClientError> {
        if server.cannot_be_a_base() {
            return Err(ClientError::BadServerUrl(server));
        }
        let options = client_options(server_cert, tls_insecure);
        let client = options
            .clone()
            .build()
            .map_err(|e| ClientError::Build(Arc::new(e)))?;
        Ok(Self {
            client: Ok(client),
            options,
            server,
        })
    }

    /// The offsets of a topic partition, `Ok(None)` when the server knows no record of it,
    /// or why the server could not say.
    ///
    /// ```no_run
    /// # use streambed_kafka::KafkaRestCommitLog;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let log = KafkaRestCommitLog::new("http://localhost:8082".parse().unwrap(), None, false);
    /// match log.offsets_with_cause("default:readings".into(), 0).await {
    ///     Ok(Some(offsets)) => println!("last offset {}", offsets.end_offset),
    ///     Ok(None) => println!("no records yet"),
    ///     Err(error) => eprintln!("{error}"),
    /// }
    /// # }
    /// ```
    pub async fn offsets_with_cause(
        &self,
        topic: Topic,
        partition: Partition,
    ) -> Result<Option<PartitionOffsets>, ClientError> {
        let partition = partition.to_string();
        let url = self.url(&["topics", &topic, "partitions", &partition, "offsets"])?;
        let client = self.client()?;
        let response = send(&url, Idempotence::Idempotent, || client.get(url.clone())).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = success(response, &url).await?;
        read_json(response, &url, MAX_REPLY).await.map(Some)
    }

    /// Appends a record, answering its offset or why it could not be appended.
    ///
    /// ```no_run
    /// # use streambed::commit_log::{ProducerRecord, Topic};
    /// # use streambed_kafka::KafkaRestCommitLog;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let log = KafkaRestCommitLog::new("http://localhost:8082".parse().unwrap(), None, false);
    /// let record = ProducerRecord {
    ///     topic: Topic::from("default:readings"),
    ///     headers: vec![],
    ///     timestamp: None,
    ///     key: 1,
    ///     value: b"21.5".to_vec(),
    ///     partition: 0,
    /// };
    /// if let Err(error) = log.produce_with_cause(record).await {
    ///     eprintln!("not stored: {error}");
    /// }
    /// # }
    /// ```
    pub async fn produce_with_cause(
        &self,
        record: ProducerRecord,
    ) -> Result<ProducedOffset, ClientError> {
        let offsets = self.produce_batch(std::slice::from_ref(&record)).await?;
        offsets
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::MissingOffsets {
                url: self.server.clone(),
                records: 1,
                offsets: 0,
            })
    }

    /// Appends records of one topic in a single request, answering their offsets in order.
    /// The server appends all of them or, should the log fail part-way, says which it
    /// appended (in the error's message). Of a reply with more offsets than records, the
    /// first ones are taken, one per record; fewer is [`ClientError::MissingOffsets`].
    ///
    /// ```no_run
    /// # use streambed::commit_log::{ProducerRecord, Topic};
    /// # use streambed_kafka::KafkaRestCommitLog;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let log = KafkaRestCommitLog::new("http://localhost:8082".parse().unwrap(), None, false);
    /// let records: Vec<ProducerRecord> = (0..10)
    ///     .map(|key| ProducerRecord {
    ///         topic: Topic::from("default:readings"),
    ///         headers: vec![],
    ///         timestamp: None,
    ///         key,
    ///         value: vec![],
    ///         partition: 0,
    ///     })
    ///     .collect();
    /// let offsets = log.produce_batch(&records).await.unwrap();
    /// assert_eq!(offsets.len(), 10);
    /// # }
    /// ```
    pub async fn produce_batch(
        &self,
        records: &[ProducerRecord],
    ) -> Result<Vec<ProducedOffset>, ClientError> {
        let Some(first) = records.first() else {
            return Ok(Vec::new());
        };
        if let Some(other) = records.iter().find(|r| r.topic != first.topic) {
            return Err(ClientError::MixedTopics {
                first: first.topic.to_string(),
                other: other.topic.to_string(),
            });
        }
        let url = self.url(&["topics", &first.topic])?;
        let client = self.client()?;
        let body = ProduceRequest {
            records: records.into(),
        };
        let response = send(&url, Idempotence::NotIdempotent, || {
            client.post(url.clone()).json(&body)
        })
        .await?;
        let response = success(response, &url).await?;
        let limit = MAX_REPLY.saturating_add(records.len().saturating_mul(MAX_REPLY_PER_OFFSET));
        let reply: ProduceReply = read_json(response, &url, limit).await?;
        let mut offsets = reply.offsets;
        if offsets.len() < records.len() {
            return Err(ClientError::MissingOffsets {
                url,
                records: records.len(),
                offsets: offsets.len(),
            });
        }
        offsets.truncate(records.len());
        Ok(offsets)
    }

    fn client(&self) -> Result<&Client, ClientError> {
        self.client
            .as_ref()
            .map_err(|error| ClientError::Build(Arc::clone(error)))
    }

    /// The server URL with `segments` appended, each percent-encoded as needed; a
    /// segment (a topic or group name) that is empty, `.` or `..` is refused.
    fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        http::api_url(&self.server, segments.iter().copied()).map_err(|error| match error {
            ApiUrlError::NotABase(server) => ClientError::BadServerUrl(server),
            ApiUrlError::Segment(segment) => ClientError::BadPathSegment(segment),
        })
    }
}

fn client_options(server_cert: Option<Certificate>, tls_insecure: bool) -> ClientOptions {
    // No client-wide timeout: a consumer stream stays open for as long as it is read.
    ClientOptions {
        server_cert,
        tls_insecure,
        ..ClientOptions::default()
    }
}

/// The client `options` describe, or why it cannot be built, logged: every call then
/// fails with that reason.
fn build_logged(options: &ClientOptions, server: &Url) -> Result<Client, Arc<reqwest::Error>> {
    options.clone().build().map_err(|error| {
        log::error!("the HTTP client for {server} could not be built: {error}");
        Arc::new(error)
    })
}

/// Sends the request that `request` builds under the shared retry policy, answering the
/// first response that is not a temporary failure.
async fn send(
    url: &Url,
    idempotence: Idempotence,
    request: impl Fn() -> RequestBuilder,
) -> Result<Response, ClientError> {
    RetryPolicy::default()
        .run(url, idempotence, || {
            let attempt = request().timeout(REQUEST_TIMEOUT);
            async move {
                match attempt.send().await {
                    Ok(response) => match TryFailure::of_status(response.status()) {
                        Some(failure) => {
                            Err(TryError::Failed(failure, refusal(response, url).await))
                        }
                        None => Ok(response),
                    },
                    Err(error) => {
                        if let Some(reason) = http::refused_certificate(&error) {
                            return Err(TryError::Final(ClientError::Certificate {
                                url: url.clone(),
                                reason,
                            }));
                        }
                        let failure = TryFailure::of_error(&error);
                        let error = ClientError::Transport {
                            url: url.clone(),
                            source: Arc::new(error),
                        };
                        Err(match failure {
                            Some(failure) => TryError::Failed(failure, error),
                            None => TryError::Final(error),
                        })
                    }
                }
            }
        })
        .await
}

/// Passes a successful response on; turns any other into [`ClientError::Status`].
async fn success(response: Response, url: &Url) -> Result<Response, ClientError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(refusal(response, url).await)
    }
}

/// The [`ClientError::Status`] of an answer that is not a success, with the server's
/// explanation (or why it could not be read).
async fn refusal(response: Response, url: &Url) -> ClientError {
    let status = response.status();
    let message = match http::read_body(response, MAX_REPLY).await {
        Ok(body) => serde_json::from_slice::<ErrorReply>(&body)
            .map(|reply| reply.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned()),
        Err(error) => format!("({error})"),
    };
    ClientError::Status {
        url: url.clone(),
        status: status.as_u16(),
        message,
    }
}

/// The JSON body of `response`, read up to `limit` bytes.
async fn read_json<T: for<'de> Deserialize<'de>>(
    response: Response,
    url: &Url,
    limit: usize,
) -> Result<T, ClientError> {
    let body = http::read_body(response, limit)
        .await
        .map_err(|error| match error {
            BodyError::Transport(source) => ClientError::Transport {
                url: url.clone(),
                source: Arc::new(source),
            },
            too_large @ BodyError::TooLarge { .. } => ClientError::BadReply {
                url: url.clone(),
                reason: too_large.to_string(),
            },
        })?;
    serde_json::from_slice(&body).map_err(|error| ClientError::BadReply {
        url: url.clone(),
        reason: error.to_string(),
    })
}

#[async_trait]
impl CommitLog for KafkaRestCommitLog {
    async fn offsets(&self, topic: Topic, partition: Partition) -> Option<PartitionOffsets> {
        match self.offsets_with_cause(topic, partition).await {
            Ok(offsets) => offsets,
            Err(error) => {
                log::warn!("offsets unavailable: {error}");
                None
            }
        }
    }

    async fn produce(&self, record: ProducerRecord) -> Result<ProducedOffset, ProducerError> {
        self.produce_with_cause(record).await.map_err(|error| {
            log::warn!("record not produced: {error}");
            ProducerError::CannotProduce
        })
    }

    /// Follows topics through the server's consumer endpoint.
    ///
    /// The stream survives the server: when the connection drops or the server ends it,
    /// the stream reconnects after back-off, asking for the records after the last one it
    /// delivered of each topic, so none is lost or repeated. With an `idle_timeout` the
    /// stream ends once a connected server has sent no record for that long (time spent
    /// reconnecting does not count: an outage must not look like an empty topic). A
    /// request the server refuses (4xx, such as a bad topic name) ends the stream, and so
    /// do 16 subscription requests in a row that may have reached the server but got no
    /// stream (the connection cut, no answer in time, or "try later"): 31.3 s of back-off
    /// between them (eight waits from 0.1 s growing to 10 s, 20.6 s, then seven more from
    /// 0.1 s), plus the requests' own time, enough to ride out a server restarting behind a
    /// load balancer. An unreachable server is waited for. A group name that is empty, `.`
    /// or `..` ends the stream before any request.
    fn scoped_subscribe<'a>(
        &'a self,
        consumer_group_name: &str,
        offsets: Vec<ConsumerOffset>,
        subscriptions: Vec<Subscription>,
        idle_timeout: Option<Duration>,
    ) -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>> {
        subscriber::subscribe(
            self.clone(),
            consumer_group_name,
            offsets,
            subscriptions,
            idle_timeout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(server: &str) -> KafkaRestCommitLog {
        KafkaRestCommitLog::new(server.parse().unwrap(), None, false)
    }

    #[test]
    fn api_paths_keep_the_server_path_and_encode_each_segment() {
        let url = log("http://host:8082/kafka/")
            .url(&["topics", "ns:a/b c", "partitions", "0", "offsets"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://host:8082/kafka/topics/ns:a%2Fb%20c/partitions/0/offsets"
        );
        let url = log("http://host:8082").url(&["consumers", "g"]).unwrap();
        assert_eq!(url.as_str(), "http://host:8082/consumers/g");
    }

    #[tokio::test]
    async fn a_server_url_without_paths_fails_every_call_instead_of_panicking() {
        let log = log("mailto:ops@example.com");
        assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
        assert!(matches!(
            log.offsets_with_cause(Topic::from("t"), 0).await,
            Err(ClientError::BadServerUrl(_))
        ));
    }
}
