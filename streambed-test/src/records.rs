//! Commit log records for tests and benches. Many crates' tests build a `ProducerRecord`
//! that differs only in topic, key and value, and read a topic back from its start; these
//! are the one spelling of each, so a field added to the record type or to a subscription
//! is filled in one place.

use std::time::Duration;

use futures_util::StreamExt;
use streambed::commit_log::{CommitLog, ConsumerRecord, ProducerRecord, Subscription, Topic};

/// A record for `topic` with `key` and `value`, no headers, no timestamp, partition 0.
///
/// ```
/// use streambed_test::records::record;
///
/// let produced = record("readings", 7, b"21.5".as_slice());
/// assert_eq!(produced.topic, "readings");
/// assert_eq!(produced.key, 7);
/// assert_eq!(produced.value, b"21.5");
/// assert_eq!(produced.partition, 0);
/// assert!(produced.headers.is_empty() && produced.timestamp.is_none());
/// ```
pub fn record(topic: &str, key: u64, value: impl Into<Vec<u8>>) -> ProducerRecord {
    ProducerRecord {
        topic: Topic::from(topic),
        headers: vec![],
        timestamp: None,
        key,
        value: value.into(),
        partition: 0,
    }
}

/// Every record of `topic` from its start, in order, read until none has arrived for
/// `idle_timeout`.
///
/// ```
/// # use std::time::Duration;
/// # use streambed::commit_log::CommitLog;
/// # async fn check(log: impl CommitLog) {
/// use streambed_test::records::{read_topic, record};
///
/// log.produce(record("t", 1, b"a".as_slice())).await.unwrap();
/// let records = read_topic(&log, "t", Duration::from_millis(100)).await;
/// assert_eq!(records.iter().map(|r| r.key).collect::<Vec<_>>(), [1]);
/// # }
/// ```
pub async fn read_topic(
    log: &impl CommitLog,
    topic: &str,
    idle_timeout: Duration,
) -> Vec<ConsumerRecord> {
    log.scoped_subscribe("test", vec![], subscriptions(&[topic]), Some(idle_timeout))
        .collect()
        .await
}

/// Reads the first `n` records of `topic` from its start, waiting for them as they are
/// appended, and says how many came (fewer only if the log ended the stream).
///
/// ```
/// # use streambed::commit_log::CommitLog;
/// # async fn check(log: impl CommitLog) {
/// use streambed_test::records::{count_first, record};
///
/// log.produce(record("t", 1, b"a".as_slice())).await.unwrap();
/// assert_eq!(count_first(&log, "t", 1).await, 1);
/// # }
/// ```
pub async fn count_first(log: &impl CommitLog, topic: &str, n: u64) -> u64 {
    let records = log.scoped_subscribe("test", vec![], subscriptions(&[topic]), None);
    let count = records
        .take(n as usize)
        .fold(0u64, |count, _| async move { count + 1 });
    count.await
}

/// A subscription to each of `topics`.
pub(crate) fn subscriptions(topics: &[&str]) -> Vec<Subscription> {
    topics
        .iter()
        .map(|topic| Subscription {
            topic: Topic::from(*topic),
        })
        .collect()
}
