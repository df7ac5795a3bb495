//! How a `KafkaNativeCommitLog` reaches its cluster: brokers, identity, TLS, SASL, whether
//! it creates the topics it produces to, and how long one call may retry. Kept apart from
//! the log so that a service can build them from its own configuration.

use std::{sync::Arc, time::Duration};

use rskafka::client::SaslConfig;
use thiserror::Error;

/// How long one call retries an unreachable or failing cluster before it fails, by default.
pub const DEFAULT_REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// The partitions and replicas of a topic this log creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicCreation {
    /// Partitions of a new topic.
    pub partitions: i32,
    /// Replicas of each partition (at most the number of brokers).
    pub replication_factor: i16,
}

/// The connection settings of a [`KafkaNativeCommitLog`](crate::KafkaNativeCommitLog).
///
/// ```
/// use std::time::Duration;
/// use streambed_kafka_native::{KafkaNativeCommitLog, KafkaNativeSettings};
///
/// let settings = KafkaNativeSettings::new(["kafka-1:9092", "kafka-2:9092"])
///     .client_id("farm-router-7")
///     .create_topics(3, 2)
///     .request_deadline(Duration::from_secs(10));
/// // Nothing connects until the log is first used.
/// let log = KafkaNativeCommitLog::with_settings(settings);
/// # drop(log);
/// ```
#[derive(Clone, Debug)]
pub struct KafkaNativeSettings {
    pub(crate) brokers: Vec<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) topic_creation: Option<TopicCreation>,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) sasl: Option<SaslConfig>,
    pub(crate) request_deadline: Duration,
}

impl KafkaNativeSettings {
    /// Settings for the cluster that these bootstrap brokers (`host:port`) belong to:
    /// plain TCP, no SASL, no topic creation, the default deadline.
    pub fn new<B: Into<String>>(bootstrap_brokers: impl IntoIterator<Item = B>) -> Self {
        Self {
            brokers: bootstrap_brokers.into_iter().map(Into::into).collect(),
            client_id: None,
            topic_creation: None,
            tls: None,
            sasl: None,
            request_deadline: DEFAULT_REQUEST_DEADLINE,
        }
    }

    /// Settings for the brokers of a `kafka://HOST:PORT[,HOST:PORT...]` URL, as programs
    /// take them on their command lines.
    ///
    /// ```
    /// use streambed_kafka_native::KafkaNativeSettings;
    ///
    /// let settings = KafkaNativeSettings::from_url("kafka://k1:9092,k2:9093").unwrap();
    /// assert_eq!(settings.brokers(), ["k1:9092", "k2:9093"]);
    /// assert!(KafkaNativeSettings::from_url("kafka://k1").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, BrokerUrlError> {
        let bad = |reason: String| BrokerUrlError {
            url: url.to_owned(),
            reason,
        };
        let brokers = url
            .strip_prefix("kafka://")
            .ok_or_else(|| bad("it does not start with kafka://".to_owned()))?;
        let brokers: Vec<&str> = brokers
            .trim_end_matches('/')
            .split(',')
            .map(str::trim)
            .collect();
        if let Some(broker) = brokers.iter().find(|broker| !is_host_port(broker)) {
            return Err(bad(format!("{broker:?} is not HOST:PORT")));
        }
        Ok(Self::new(brokers))
    }

    /// The bootstrap brokers.
    pub fn brokers(&self) -> &[String] {
        &self.brokers
    }

    /// The client id the brokers see (in their logs and quotas).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Creates a topic on its first produce when the cluster does not have it, with these
    /// partitions and replicas. Without this, producing to a missing topic fails (unless the
    /// cluster creates topics itself).
    pub fn create_topics(mut self, partitions: i32, replication_factor: i16) -> Self {
        self.topic_creation = Some(TopicCreation {
            partitions,
            replication_factor,
        });
        self
    }

    /// Connects over TLS with this rustls configuration.
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Authenticates with SASL (PLAIN, SCRAM-SHA-256 or -512, OAUTHBEARER).
    pub fn sasl(mut self, config: SaslConfig) -> Self {
        self.sasl = Some(config);
        self
    }

    /// How long one call (a produce, an offsets query) retries before it fails.
    /// Subscriptions never give up; they wait with the shared back-off instead.
    pub fn request_deadline(mut self, deadline: Duration) -> Self {
        self.request_deadline = deadline;
        self
    }
}

/// A `kafka://` URL that names no brokers.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{url:?} is not a Kafka cluster (kafka://HOST:PORT[,HOST:PORT...]): {reason}")]
pub struct BrokerUrlError {
    /// The URL given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

/// `host:port` with a non-empty host and a port number.
fn is_host_port(broker: &str) -> bool {
    broker
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}
