//! The connection to the cluster, made on first use and shared by the clones of a log:
//! one rskafka client, and per partition used a partition client and its writer
//! (`producer`), cached so that a produce costs one request, not a metadata lookup too.
//!
//! rskafka retries failed requests with a back-off of its own; it is set to the curve of
//! streambed's `Delayer` (the one owner of back-off in the family) and bounded by the
//! settings' deadline, so that a call against an unreachable cluster waits, then fails,
//! and never spins.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rskafka::{
    client::{
        error::{Error as ClientError, ProtocolError},
        partition::{PartitionClient, UnknownTopicHandling},
        Client, ClientBuilder,
    },
    BackoffConfig,
};
use streambed::delayer;
use tokio::sync::OnceCell;

use crate::{error::KafkaNativeError, producer::Producer, settings::KafkaNativeSettings};

/// A partition in use: its client, and the writer that coalesces produce requests.
pub(crate) struct Partition {
    pub(crate) client: Arc<PartitionClient>,
    pub(crate) producer: Producer,
}

/// Partitions by Kafka topic, then number: a lookup borrows the topic's name.
type Partitions = HashMap<String, Vec<(i32, Arc<Partition>)>>;

pub(crate) struct Cluster {
    pub(crate) settings: KafkaNativeSettings,
    client: OnceCell<Client>,
    partitions: Mutex<Partitions>,
}

impl Cluster {
    pub(crate) fn new(settings: KafkaNativeSettings) -> Self {
        Self {
            settings,
            client: OnceCell::new(),
            partitions: Mutex::new(HashMap::new()),
        }
    }

    /// A new rskafka client of these settings: each subscription has its own, so that its
    /// long-polling fetches never queue in front of produce requests on one connection.
    pub(crate) async fn connect(&self, topic: &str) -> Result<Client, KafkaNativeError> {
        let settings = &self.settings;
        let mut builder =
            ClientBuilder::new(settings.brokers.clone()).backoff_config(BackoffConfig {
                init_backoff: delayer::MIN_DELAY,
                max_backoff: delayer::MAX_DELAY,
                base: delayer::growth(),
                deadline: Some(settings.request_deadline),
            });
        if let Some(id) = &settings.client_id {
            builder = builder.client_id(id.as_str());
        }
        if let Some(tls) = &settings.tls {
            builder = builder.tls_config(Arc::clone(tls));
        }
        if let Some(sasl) = &settings.sasl {
            builder = builder.sasl_config(sasl.clone());
        }
        builder
            .build()
            .await
            .map_err(|source| cluster(topic, source))
    }

    async fn client(&self, topic: &str) -> Result<&Client, KafkaNativeError> {
        self.client.get_or_try_init(|| self.connect(topic)).await
    }

    /// The client of a partition; `None` when the cluster has no such topic or partition.
    /// When `create` is set and the settings allow it, a missing topic is created first.
    pub(crate) async fn partition(
        &self,
        topic: &str,
        partition: i32,
        create: bool,
    ) -> Result<Option<Arc<Partition>>, KafkaNativeError> {
        if let Some(cached) = self.cached(topic, partition) {
            return Ok(Some(cached));
        }
        let client = self.client(topic).await?;
        let made = match client
            .partition_client(topic, partition, UnknownTopicHandling::Error)
            .await
        {
            Err(error) if is_unknown_topic(&error) => {
                match (create, self.settings.topic_creation) {
                    (true, Some(creation)) => {
                        self.create(client, topic, creation).await?;
                        client
                            .partition_client(topic, partition, UnknownTopicHandling::Retry)
                            .await
                    }
                    _ => return Ok(None),
                }
            }
            made => made,
        }
        .map_err(|source| cluster(topic, source))?;
        let client = Arc::new(made);
        let made = Arc::new(Partition {
            producer: Producer::start(Arc::clone(&client)),
            client,
        });
        let mut partitions = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        let of_topic = partitions.entry(topic.to_owned()).or_default();
        // Another caller may have made it meanwhile: keep theirs, so one writer serves all.
        Ok(Some(match of_topic.iter().find(|(p, _)| *p == partition) {
            Some((_, theirs)) => Arc::clone(theirs),
            None => {
                of_topic.push((partition, Arc::clone(&made)));
                made
            }
        }))
    }

    /// Forgets a partition's client after an error, so that the next call looks the
    /// partition up afresh (its topic may have been deleted and made again).
    pub(crate) fn forget(&self, topic: &str, partition: i32) {
        let mut partitions = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(of_topic) = partitions.get_mut(topic) {
            of_topic.retain(|(p, _)| *p != partition);
        }
    }

    fn cached(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let partitions = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        let of_topic = partitions.get(topic)?;
        of_topic
            .iter()
            .find(|(p, _)| *p == partition)
            .map(|(_, cached)| Arc::clone(cached))
    }

    async fn create(
        &self,
        client: &Client,
        topic: &str,
        creation: crate::settings::TopicCreation,
    ) -> Result<(), KafkaNativeError> {
        let timeout_ms =
            i32::try_from(self.settings.request_deadline.as_millis()).unwrap_or(i32::MAX);
        let created = client
            .controller_client()
            .map_err(|source| cluster(topic, source))?
            .create_topic(
                topic,
                creation.partitions,
                creation.replication_factor,
                timeout_ms,
            )
            .await;
        match created {
            // Another producer made it first: as good.
            Err(ClientError::ServerError {
                protocol_error: ProtocolError::TopicAlreadyExists,
                ..
            })
            | Ok(()) => Ok(()),
            Err(source) => Err(cluster(topic, source)),
        }
    }
}

pub(crate) fn is_unknown_topic(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::ServerError {
            protocol_error: ProtocolError::UnknownTopicOrPartition,
            ..
        }
    )
}

pub(crate) fn cluster(topic: &str, source: impl Into<Arc<ClientError>>) -> KafkaNativeError {
    KafkaNativeError::Cluster {
        topic: topic.to_owned(),
        source: source.into(),
    }
}
