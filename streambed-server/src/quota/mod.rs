//! Quotas that keep one client from taking the server down: consumer streams open, topics
//! created, and requests per second, each counted per client (its principal, or its IP
//! address when identities are off) and checked before the work they limit.
//!
//! Refusals that waiting cures (a stream slot, a rate-limit token) answer 429; a topic
//! quota answers 403, since it does not free itself with time.

mod rate;
mod streams;
mod topics;

use std::{
    net::IpAddr,
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use streambed::commit_log::{CommitLog, Topic};

use crate::client::ClientKey;
use rate::RateLimiter;
use streams::StreamCounts;
pub(crate) use streams::StreamPermit;
use topics::TopicCounts;
pub(crate) use topics::{Creation, TopicRefused};

/// How many requests a client may send: `per_second` on average, with bursts of up to
/// `burst` at once.
///
/// ```
/// use streambed_server::quota::RateLimit;
///
/// let limit = RateLimit::default();
/// assert_eq!((limit.per_second, limit.burst), (200, 400));
/// ```
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct RateLimit {
    /// Requests per second each client may make on average. Default 200.
    pub per_second: u32,
    /// Requests a client that was idle may make at once. Default 400.
    pub burst: u32,
    /// The most clients given a bucket of their own (rounded up to a multiple of 16, the
    /// limiter's shards); those beyond share a single bucket until idle clients are
    /// forgotten (a client is forgotten once its bucket is full again). Bounds the memory
    /// the limiter uses, about 100 bytes a client. Default 4096.
    pub max_tracked: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 200,
            burst: 400,
            max_tracked: 4096,
        }
    }
}

/// The quotas a server enforces; `None` in a field means no limit.
///
/// The defaults suit a router serving a few dozen local services and devices;
/// [`QuotaConfig::unlimited`] (what [`Server::new`](crate::Server::new) starts with)
/// enforces none.
///
/// ```
/// use streambed_server::quota::{QuotaConfig, RateLimit};
///
/// let quotas = QuotaConfig {
///     rate_limit: Some(RateLimit { per_second: 50, ..RateLimit::default() }),
///     ..QuotaConfig::default()
/// };
/// assert_eq!(quotas.max_streams_per_principal, Some(8));
/// assert_eq!(QuotaConfig::unlimited().max_topics, None);
/// ```
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct QuotaConfig {
    /// Consumer streams each client may have open at once; one more gets 429. A stream's
    /// place is freed when it ends for any reason, including the client vanishing or being
    /// disconnected by the write timeout. Default 8.
    pub max_streams_per_principal: Option<usize>,
    /// Topics each client may create (by producing to a topic without records) while the
    /// server runs; one more gets 403. Default 64.
    pub max_topics_per_principal: Option<usize>,
    /// Topics the server accepts producing to in all: those it created plus those it found
    /// in the log when first producing to them (topics in the log that nobody produces to
    /// are not counted). Creating one more gets 403. Default 512.
    pub max_topics: Option<usize>,
    /// Requests per client on the Kafka API's routes (not `/health` nor `/metrics`); more
    /// get 429 with a `Retry-After` header. Default [`RateLimit::default`].
    pub rate_limit: Option<RateLimit>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            max_streams_per_principal: Some(8),
            max_topics_per_principal: Some(64),
            max_topics: Some(512),
            rate_limit: Some(RateLimit::default()),
        }
    }
}

impl QuotaConfig {
    /// No quota at all.
    pub fn unlimited() -> Self {
        Self {
            max_streams_per_principal: None,
            max_topics_per_principal: None,
            max_topics: None,
            rate_limit: None,
        }
    }
}

/// Why a request was refused by a quota; its text is what the client is told.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QuotaRefused {
    #[error("too many requests from {client}; retry in {} s", retry_after_secs(*.retry_after))]
    Rate {
        client: ClientKey,
        retry_after: Duration,
    },
    #[error("{client} already has {max} consumer streams open, the most allowed")]
    Streams { client: ClientKey, max: usize },
    #[error(transparent)]
    Topic(#[from] TopicRefused),
}

/// Whole seconds to tell a client to wait: never zero, which would invite a busy loop.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The state of every quota, shared by all connections.
#[derive(Debug)]
pub(crate) struct Quotas {
    rate: Option<RateLimiter>,
    /// Requests refused for want of a valid identity, per IP address: they have no
    /// principal to be charged to, and must not be a way around the rate limit (nor a
    /// way to make the server call its token store without end).
    failed_identities: Option<RateLimiter>,
    streams: Option<StreamCounts>,
    topics: TopicCounts,
}

impl Quotas {
    pub(crate) fn new(config: QuotaConfig) -> Self {
        Self {
            rate: config.rate_limit.map(RateLimiter::new),
            failed_identities: config.rate_limit.map(RateLimiter::new),
            streams: config.max_streams_per_principal.map(StreamCounts::new),
            topics: TopicCounts::new(config.max_topics_per_principal, config.max_topics),
        }
    }

    /// Charges one request to `client`'s rate.
    pub(crate) fn admit(&self, client: &ClientKey) -> Result<(), QuotaRefused> {
        match &self.rate {
            Some(rate) => rate
                .check(client)
                .map_err(|retry_after| QuotaRefused::Rate {
                    client: client.clone(),
                    retry_after,
                }),
            None => Ok(()),
        }
    }

    /// Whether the client at `address` may still fail to identify itself (the rate limit,
    /// counting such failures alone); checked, without charging, before a token is
    /// verified, so that a client that keeps failing stops costing store calls.
    pub(crate) fn may_fail_identity(&self, address: IpAddr) -> Result<(), QuotaRefused> {
        let Some(failed) = &self.failed_identities else {
            return Ok(());
        };
        let client = ClientKey::Address(address);
        failed
            .peek(&client)
            .map_err(|retry_after| QuotaRefused::Rate {
                client,
                retry_after,
            })
    }

    /// Charges a request refused for want of a valid identity to the rate of `address`;
    /// `Err` once that address is over it.
    pub(crate) fn failed_identity(&self, address: IpAddr) -> Result<(), QuotaRefused> {
        let Some(failed) = &self.failed_identities else {
            return Ok(());
        };
        let client = ClientKey::Address(address);
        failed
            .check(&client)
            .map_err(|retry_after| QuotaRefused::Rate {
                client,
                retry_after,
            })
    }

    /// A place for one more consumer stream of `client`, to be held as long as the stream
    /// is open; `Ok(None)` when streams are not limited.
    pub(crate) fn open_stream(
        &self,
        client: &ClientKey,
    ) -> Result<Option<StreamPermit>, QuotaRefused> {
        let Some(streams) = &self.streams else {
            return Ok(None);
        };
        match streams.open(client) {
            Some(permit) => Ok(Some(permit)),
            None => Err(QuotaRefused::Streams {
                client: client.clone(),
                max: streams.max(),
            }),
        }
    }

    /// Checks that `client` may produce to `topic`, counting the topic as created by it
    /// when the log does not hold it yet. The produce cancels the returned [`Creation`] if
    /// it appends nothing.
    pub(crate) async fn produce_to<CL: CommitLog>(
        &self,
        log: &CL,
        topic: &Topic,
        client: &ClientKey,
    ) -> Result<Option<Creation>, QuotaRefused> {
        if !self.topics.enabled() || self.topics.is_known(topic) {
            return Ok(None);
        }
        if log.offsets(topic.clone(), 0).await.is_some() {
            self.topics.existing(topic);
            return Ok(None);
        }
        Ok(self.topics.create(topic, client)?)
    }
}

/// A poisoned lock only means another request panicked mid-update of plain counts, which
/// leaves them usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_told_to_wait_whole_seconds_and_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn unlimited_quotas_refuse_nothing() {
        let quotas = Quotas::new(QuotaConfig::unlimited());
        let client = ClientKey::Address("192.0.2.1".parse().unwrap());
        for _ in 0..10_000 {
            quotas.admit(&client).unwrap();
        }
        assert!(quotas.open_stream(&client).unwrap().is_none());
        let address = "192.0.2.1".parse().unwrap();
        for _ in 0..10_000 {
            quotas.failed_identity(address).unwrap();
        }
        quotas.may_fail_identity(address).unwrap();
    }

    #[test]
    fn failed_identities_are_limited_per_address_apart_from_the_rate_of_principals() {
        let quotas = Quotas::new(QuotaConfig {
            rate_limit: Some(RateLimit {
                per_second: 1,
                burst: 2,
                max_tracked: 16,
            }),
            ..QuotaConfig::unlimited()
        });
        let (failing, other) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..2 {
            quotas.may_fail_identity(failing).unwrap();
            quotas.failed_identity(failing).unwrap();
        }
        assert!(matches!(
            quotas.may_fail_identity(failing),
            Err(QuotaRefused::Rate { .. })
        ));
        assert!(quotas.failed_identity(failing).is_err());
        quotas.may_fail_identity(other).unwrap();
        // A principal's rate is its own, whatever its address's failures.
        quotas
            .admit(&ClientKey::Principal(crate::principal::Principal::new(
                "ann",
            )))
            .unwrap();
    }
}
