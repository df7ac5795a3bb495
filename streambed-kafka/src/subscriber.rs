//! The consumer stream: one long `POST /consumers/<group>` response, decoded as it arrives,
//! re-established from the last delivered offsets whenever it is lost.

use std::{collections::VecDeque, pin::Pin, time::Duration};

use reqwest::Response;
use streambed::{
    commit_log::{Consumer, ConsumerOffset, ConsumerRecord, Subscription},
    http::{self, Idempotence, RetryPolicy, Retrying, TryFailure},
};
use tokio::time::Instant;
use tokio_stream::Stream;
use url::Url;

use crate::{decoder::RecordDecoder, KafkaRestCommitLog};

/// A connection that lasted this long was healthy: back-off starts over after it.
const HEALTHY_CONNECTION: Duration = Duration::from_secs(10);

/// How often subscribing is tried before the stream ends: more patiently than other calls
/// (5 tries), since a subscription is meant to outlast a server restarting behind a load
/// balancer. The Delayer's waits between 16 tries add up to 31.3 s.
const SUBSCRIPTION_RETRIES: RetryPolicy = RetryPolicy {
    max_sent_tries: 16,
    max_tries: None,
};

/// The largest incomplete record the stream buffers before giving up on a connection.
const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

pub(crate) fn subscribe(
    log: KafkaRestCommitLog,
    group: &str,
    offsets: Vec<ConsumerOffset>,
    subscriptions: Vec<Subscription>,
    idle_timeout: Option<Duration>,
) -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'static>> {
    let subscriber = Subscriber {
        log,
        group: group.to_owned(),
        positions: offsets,
        subscriptions,
        idle_timeout,
        response: None,
        lost: false,
        deadline: None,
        connected_at: None,
        decoder: RecordDecoder::new(MAX_RECORD_BYTES),
        ready: VecDeque::new(),
        retrying: Retrying::new(SUBSCRIPTION_RETRIES, Idempotence::Idempotent),
    };
    Box::pin(futures_util::stream::unfold(
        subscriber,
        |mut subscriber| async move {
            let record = subscriber.next().await?;
            Some((record, subscriber))
        },
    ))
}

struct Subscriber {
    log: KafkaRestCommitLog,
    group: String,
    /// Per topic partition, the offset of the last record delivered (or given at the
    /// start): what a reconnection asks to continue after.
    positions: Vec<ConsumerOffset>,
    subscriptions: Vec<Subscription>,
    idle_timeout: Option<Duration>,
    response: Option<Response>,
    /// A connection was lost: wait before the next one so a failing server is not hammered.
    lost: bool,
    /// When the stream ends for want of records, if it has an idle timeout.
    deadline: Option<Instant>,
    /// When the current connection was made.
    connected_at: Option<Instant>,
    decoder: RecordDecoder,
    ready: VecDeque<ConsumerRecord>,
    /// The back-off of reconnections and the count of failed tries of the current one.
    retrying: Retrying,
}

impl Subscriber {
    async fn next(&mut self) -> Option<ConsumerRecord> {
        loop {
            while let Some(record) = self.ready.pop_front() {
                if self.deliver(&record) {
                    // The server works: a later loss retries promptly again.
                    self.retrying.reset_delay();
                    self.deadline = self.idle_timeout.map(|idle| Instant::now() + idle);
                    return Some(record);
                }
            }
            if self.response.is_none() {
                let response = self.connect().await?;
                self.response = Some(response);
                self.deadline = self.idle_timeout.map(|idle| Instant::now() + idle);
            }
            let Some(response) = self.response.as_mut() else {
                continue;
            };
            let chunk = match self.deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, response.chunk()).await {
                    Ok(chunk) => chunk,
                    Err(_) => return None,
                },
                None => response.chunk().await,
            };
            match chunk {
                Ok(Some(bytes)) => {
                    if let Err(error) = self.decoder.push(&bytes, &mut self.ready) {
                        log::warn!("consumer {}: {error}; reconnecting", self.group);
                        self.disconnect();
                    }
                }
                Ok(None) => {
                    log::debug!("consumer {}: server ended the stream", self.group);
                    self.disconnect();
                }
                Err(error) => {
                    log::debug!("consumer {}: stream lost: {error}", self.group);
                    self.disconnect();
                }
            }
        }
    }

    /// Records `record` as delivered; `false` for one at or before a position already
    /// delivered, which a server replaying after a reconnection could send again.
    fn deliver(&mut self, record: &ConsumerRecord) -> bool {
        let position = self
            .positions
            .iter_mut()
            .find(|p| p.topic == record.topic && p.partition == record.partition);
        match position {
            Some(position) if record.offset <= position.offset => false,
            Some(position) => {
                position.offset = record.offset;
                true
            }
            None => {
                self.positions.push(ConsumerOffset {
                    topic: record.topic.clone(),
                    partition: record.partition,
                    offset: record.offset,
                });
                true
            }
        }
    }

    fn disconnect(&mut self) {
        if self
            .connected_at
            .take()
            .is_some_and(|at| at.elapsed() >= HEALTHY_CONNECTION)
        {
            self.retrying.reset_delay();
        }
        self.response = None;
        self.decoder.clear();
        self.lost = true;
    }

    /// Opens the stream, retrying with back-off while the server is unreachable or
    /// temporarily unavailable; `None` when the server refuses the request for good, or
    /// fails a request that reached it as often as [`SUBSCRIPTION_RETRIES`] allows.
    async fn connect(&mut self) -> Option<Response> {
        let url = match self.log.url(&["consumers", &self.group]) {
            Ok(url) => url,
            Err(error) => {
                log::error!("consumer {}: {error}", self.group);
                return None;
            }
        };
        let client = match self.log.client() {
            Ok(client) => client.clone(),
            Err(error) => {
                log::error!("consumer {}: {error}", self.group);
                return None;
            }
        };
        if self.lost {
            // The last stream was lost after it was established: not a failed try, but
            // a failing server must still be reconnected to ever more slowly.
            self.retrying.pause().await;
            self.lost = false;
        }
        loop {
            let consumer = Consumer {
                offsets: self.positions.clone(),
                subscriptions: self.subscriptions.clone(),
            };
            let request = client.post(url.clone()).json(&consumer).send();
            let (failure, reason) =
                match tokio::time::timeout(crate::REQUEST_TIMEOUT, request).await {
                    Err(_) => (TryFailure::Lost, "no answer in time".to_owned()),
                    Ok(Ok(response)) if response.status().is_success() => {
                        // The back-off is not reset yet: a server that accepts and then
                        // drops every stream at once must still be retried ever more slowly.
                        self.retrying.succeeded();
                        self.connected_at = Some(Instant::now());
                        return Some(response);
                    }
                    Ok(Ok(response)) => match TryFailure::of_status(response.status()) {
                        Some(failure) => (failure, response.status().to_string()),
                        None => {
                            let refusal = crate::refusal(response, &url).await;
                            log::error!(
                                "consumer {}: the server refused the subscription: {refusal}",
                                self.group
                            );
                            return None;
                        }
                    },
                    Ok(Err(error)) => match TryFailure::of_error(&error) {
                        Some(failure) => (failure, error.to_string()),
                        None => {
                            let reason = http::refused_certificate(&error)
                                .map(|reason| format!("TLS refused the certificate: {reason}"))
                                .unwrap_or_else(|| error.to_string());
                            log::error!(
                                "consumer {}: cannot subscribe at {url}: {reason}",
                                self.group
                            );
                            return None;
                        }
                    },
                };
            log_retry(&self.group, &url, &reason);
            if !self.retrying.again(failure).await {
                log::error!(
                    "consumer {}: giving up on {url} after {} tries: {reason}",
                    self.group,
                    self.retrying.tries()
                );
                return None;
            }
        }
    }
}

fn log_retry(group: &str, url: &Url, reason: &str) {
    log::debug!("consumer {group}: cannot subscribe at {url} ({reason}); retrying");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_subscription_gives_up_after_sixteen_failed_tries_and_31_s_of_back_off() {
        let mut retrying = Retrying::new(SUBSCRIPTION_RETRIES, Idempotence::Idempotent);
        let start = Instant::now();
        while retrying.again(TryFailure::Lost).await {}
        assert_eq!(retrying.tries(), 16);
        let waited = start.elapsed();
        assert!(
            waited > Duration::from_millis(31_200) && waited < Duration::from_millis(31_400),
            "{waited:?}"
        );
    }
}
