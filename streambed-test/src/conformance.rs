//! One behavioural suite for every [`CommitLog`]: what a service written against the trait
//! may rely on, whichever backend it runs on. It exists so that the backends (the
//! `FileLog`, the server's in-memory log, the Kafka HTTP client through our server, and
//! those to come) are held to the same expectations, written once: a behaviour that one
//! backend's own tests pin and another's forget is how a service breaks when it moves.
//!
//! Each check is a function generic over the log, given a topic name of its own (checks
//! that need two topics add a suffix to it), so that checks may share one backend or
//! each have a fresh one. [`commit_log_conformance!`](crate::commit_log_conformance)
//! makes one `#[test]` per check for a backend.
//!
//! A check fails by panicking. Here one catches a log that forgets what it was given:
//!
//! ```
//! use std::{panic, pin::Pin, time::Duration};
//!
//! use futures_util::{stream, Stream};
//! use streambed::commit_log::*;
//! use streambed_test::conformance;
//!
//! /// Answers offset 0 to every record and keeps none.
//! #[derive(Clone)]
//! struct Forgetful;
//!
//! #[async_trait::async_trait]
//! impl CommitLog for Forgetful {
//!     async fn offsets(&self, _: Topic, _: Partition) -> Option<PartitionOffsets> {
//!         None
//!     }
//!
//!     async fn produce(&self, _: ProducerRecord) -> Result<ProducedOffset, ProducerError> {
//!         Ok(ProducedOffset { offset: 0 })
//!     }
//!
//!     fn scoped_subscribe<'a>(
//!         &'a self,
//!         _: &str,
//!         _: Vec<ConsumerOffset>,
//!         _: Vec<Subscription>,
//!         _: Option<Duration>,
//!     ) -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>> {
//!         Box::pin(stream::empty())
//!     }
//! }
//!
//! let runtime = streambed_test::runtime::current_thread();
//! // It knows no topic, and says so, as it should...
//! runtime.block_on(conformance::a_topic_never_written_has_no_offsets_and_no_records(
//!     &Forgetful, "readings",
//! ));
//! // ...but loses what it is given.
//! let checked = panic::catch_unwind(panic::AssertUnwindSafe(|| {
//!     runtime.block_on(conformance::produce_answers_rising_offsets_that_offsets_reports(
//!         &Forgetful, "readings",
//!     ))
//! }));
//! assert!(checked.is_err());
//! ```
//!
//! Bounds on waiting are stretched by [`slowdown`], so the checks hold under an emulator.

use std::{pin::Pin, time::Duration};

use chrono::{TimeZone, Utc};
use futures_util::{Stream, StreamExt};
use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, Header, HeaderKey, PartitionOffsets, ProducedOffset,
    ProducerRecord, Topic,
};

use crate::{
    process::slowdown,
    records::{record, subscriptions},
};

type Records<'a> = Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>>;

/// How long a check waits for a record it is owed before it fails, natively.
const PATIENCE: Duration = Duration::from_secs(20);

/// The idle timeout of subscriptions that should end once they have read what is there.
const IDLE: Duration = Duration::from_millis(300);

fn patience() -> Duration {
    PATIENCE * slowdown()
}

fn idle() -> Duration {
    IDLE * slowdown()
}

/// Every record a subscription yields until it ends by its idle timeout; fails if it has
/// not ended within the patience.
async fn until_idle<CL: CommitLog>(
    log: &CL,
    offsets: Vec<ConsumerOffset>,
    topics: &[&str],
) -> Vec<ConsumerRecord> {
    let stream = log.scoped_subscribe("conformance", offsets, subscriptions(topics), Some(idle()));
    tokio::time::timeout(patience(), stream.collect::<Vec<_>>())
        .await
        .unwrap_or_else(|_| panic!("a subscription to {topics:?} with an idle timeout never ended"))
}

/// The next record of a subscription without an idle timeout; fails if none has come
/// within the patience or the stream ended.
async fn next_of(stream: &mut Records<'_>) -> ConsumerRecord {
    tokio::time::timeout(patience(), stream.next())
        .await
        .expect("a record owed to a live subscription did not arrive")
        .expect("a subscription without an idle timeout ended")
}

fn keys(records: &[ConsumerRecord]) -> Vec<u64> {
    records.iter().map(|r| r.key).collect()
}

fn offsets(records: &[ConsumerRecord]) -> Vec<u64> {
    records.iter().map(|r| r.offset).collect()
}

async fn produce_keys<CL: CommitLog>(log: &CL, topic: &str, keys: impl IntoIterator<Item = u64>) {
    for key in keys {
        log.produce(record(topic, key, format!("value {key}")))
            .await
            .unwrap_or_else(|error| panic!("producing key {key} to {topic}: {error:?}"));
    }
}

/// A topic that was never written has no offsets, and a subscription to it yields nothing
/// (and ends by its idle timeout).
pub async fn a_topic_never_written_has_no_offsets_and_no_records<CL: CommitLog>(
    log: &CL,
    topic: &str,
) {
    assert_eq!(log.offsets(Topic::from(topic), 0).await, None);
    assert_eq!(until_idle(log, vec![], &[topic]).await, vec![]);
    // Reading it did not create it.
    assert_eq!(log.offsets(Topic::from(topic), 0).await, None);
}

/// Records are given offsets from 0, one more for each; `produce_all` answers its
/// records' offsets in order; `offsets` reports the first and the last.
pub async fn produce_answers_rising_offsets_that_offsets_reports<CL: CommitLog>(
    log: &CL,
    topic: &str,
) {
    let mut given = Vec::new();
    for key in 0..3 {
        let produced = log
            .produce(record(topic, key, format!("value {key}")))
            .await
            .unwrap_or_else(|error| panic!("producing to {topic}: {error:?}"));
        given.push(produced.offset);
    }
    assert_eq!(given, [0, 1, 2]);
    assert_eq!(
        log.offsets(Topic::from(topic), 0).await,
        Some(PartitionOffsets {
            beginning_offset: 0,
            end_offset: 2,
        })
    );
    let all = log
        .produce_all(vec![record(topic, 3, "three"), record(topic, 4, "four")])
        .await
        .unwrap_or_else(|error| panic!("produce_all to {topic}: {error:?}"));
    assert_eq!(
        all,
        [ProducedOffset { offset: 3 }, ProducedOffset { offset: 4 }]
    );
    assert_eq!(
        log.offsets(Topic::from(topic), 0).await,
        Some(PartitionOffsets {
            beginning_offset: 0,
            end_offset: 4,
        })
    );
    let read = until_idle(log, vec![], &[topic]).await;
    assert_eq!(offsets(&read), [0, 1, 2, 3, 4]);
    assert_eq!(keys(&read), [0, 1, 2, 3, 4]);
}

/// A subscription given the offset of the last record processed receives the records
/// after it, and only those; without an offset it receives every record.
pub async fn a_subscription_from_an_offset_receives_only_the_records_after_it<CL: CommitLog>(
    log: &CL,
    topic: &str,
) {
    produce_keys(log, topic, 10..15).await;
    let after = |offset| {
        vec![ConsumerOffset {
            topic: Topic::from(topic),
            partition: 0,
            offset,
        }]
    };
    assert_eq!(offsets(&until_idle(log, after(2), &[topic]).await), [3, 4]);
    assert_eq!(
        keys(&until_idle(log, after(0), &[topic]).await),
        [11, 12, 13, 14]
    );
    assert_eq!(until_idle(log, after(4), &[topic]).await, vec![]);
    assert_eq!(
        keys(&until_idle(log, vec![], &[topic]).await),
        [10, 11, 12, 13, 14]
    );
}

/// A subscription reads what is there, then keeps following the topic: records appended
/// after it began arrive, in order, including to a topic that did not exist when it began.
pub async fn a_subscription_follows_records_appended_after_it_began<CL: CommitLog>(
    log: &CL,
    topic: &str,
) {
    let fresh = format!("{topic}-fresh");
    produce_keys(log, topic, [1, 2]).await;
    let mut stream =
        log.scoped_subscribe("conformance", vec![], subscriptions(&[topic, &fresh]), None);
    assert_eq!(next_of(&mut stream).await.key, 1);
    assert_eq!(next_of(&mut stream).await.key, 2);
    produce_keys(log, topic, [3]).await;
    let third = next_of(&mut stream).await;
    assert_eq!((third.key, third.offset), (3, 2));
    produce_keys(log, &fresh, [4]).await;
    let fourth = next_of(&mut stream).await;
    assert_eq!((fourth.topic.as_str(), fourth.key), (fresh.as_str(), 4));
    assert_eq!(fourth.offset, 0);
}

/// With an idle timeout a subscription delivers what is there, then ends once nothing has
/// arrived for that long; without one it stays open, waiting.
pub async fn an_idle_timeout_ends_a_quiet_subscription_and_none_keeps_it_open<CL: CommitLog>(
    log: &CL,
    topic: &str,
) {
    produce_keys(log, topic, [1]).await;
    let ended = until_idle(log, vec![], &[topic]).await;
    assert_eq!(keys(&ended), [1]);

    let mut open = log.scoped_subscribe("conformance", vec![], subscriptions(&[topic]), None);
    assert_eq!(next_of(&mut open).await.key, 1);
    // Several idle timeouts pass: the stream is still open, waiting.
    let quiet = tokio::time::timeout(idle() * 3, open.next()).await;
    assert!(
        quiet.is_err(),
        "a subscription without an idle timeout ended or yielded: {quiet:?}"
    );
}

/// Headers, timestamps, keys and values come back as they were produced, byte for byte:
/// binary values, empty ones, the largest key, a timestamp to the millisecond.
pub async fn headers_timestamps_keys_and_values_round_trip<CL: CommitLog>(log: &CL, topic: &str) {
    let every_byte: Vec<u8> = (0..=255).collect();
    let timestamp = Utc
        .timestamp_millis_opt(1_796_400_000_123)
        .single()
        .expect("a valid instant");
    let sent = [
        ProducerRecord {
            topic: Topic::from(topic),
            // In the order of their keys: a Kafka cluster read through rskafka gives
            // headers back in that order whatever order they were produced in (its record
            // keeps them in a map). The logs that keep any order pin it in tests of their
            // own.
            headers: vec![
                Header {
                    key: HeaderKey::from("binary"),
                    value: every_byte.clone(),
                },
                Header {
                    key: HeaderKey::from("empty"),
                    value: vec![],
                },
                Header {
                    key: HeaderKey::from("origin"),
                    value: b"router-7".to_vec(),
                },
            ],
            timestamp: Some(timestamp),
            key: u64::MAX,
            value: every_byte.clone(),
            partition: 0,
        },
        ProducerRecord {
            topic: Topic::from(topic),
            headers: vec![],
            timestamp: Some(timestamp + chrono::Duration::milliseconds(1)),
            key: 0,
            value: vec![],
            partition: 0,
        },
    ];
    for record in &sent {
        log.produce(record.clone())
            .await
            .unwrap_or_else(|error| panic!("producing to {topic}: {error:?}"));
    }
    let read = until_idle(log, vec![], &[topic]).await;
    assert_eq!(read.len(), sent.len(), "{read:?}");
    for (offset, (sent, read)) in sent.iter().zip(&read).enumerate() {
        let expected = ConsumerRecord {
            topic: sent.topic.clone(),
            headers: sent.headers.clone(),
            timestamp: sent.timestamp,
            key: sent.key,
            value: sent.value.clone(),
            partition: 0,
            offset: offset as u64,
        };
        assert_eq!(read, &expected);
    }
}

/// A subscription to several topics receives the records of each, each topic's in the
/// order they were appended, with the offsets of its own topic.
pub async fn a_subscription_to_several_topics_keeps_each_topics_order<CL: CommitLog>(
    log: &CL,
    topic: &str,
) {
    let (a, b) = (format!("{topic}-a"), format!("{topic}-b"));
    for key in 0..6 {
        let to = if key % 2 == 0 { &a } else { &b };
        produce_keys(log, to, [key]).await;
    }
    let read = until_idle(log, vec![], &[&a, &b]).await;
    let of = |name: &str| {
        read.iter()
            .filter(|r| r.topic == name)
            .map(|r| (r.offset, r.key))
            .collect::<Vec<_>>()
    };
    assert_eq!(of(&a), [(0, 0), (1, 2), (2, 4)]);
    assert_eq!(of(&b), [(0, 1), (1, 3), (2, 5)]);
    assert_eq!(read.len(), 6);
}

/// Makes one `#[test]` per check of [`conformance`](crate::conformance) for a backend.
///
/// The argument is an expression of a future that makes a fresh backend: a pair of the
/// log and whatever must live as long as it does (a temporary directory, a server), `()`
/// when nothing must. It is evaluated once per test, each on a runtime of its own with two
/// workers. The crate invoking the macro needs `streambed-test` only.
///
/// ```
/// // tests/conformance.rs of a crate whose log keeps its files in a directory:
/// # mod my_log {
/// #     use std::{path::Path, pin::Pin, time::Duration};
/// #     use futures_util::{stream, Stream};
/// #     use streambed::commit_log::*;
/// #     #[derive(Clone)]
/// #     pub struct MyLog;
/// #     impl MyLog {
/// #         pub fn new(_: &Path) -> Self { MyLog }
/// #     }
/// #     #[async_trait::async_trait]
/// #     impl CommitLog for MyLog {
/// #         async fn offsets(&self, _: Topic, _: Partition) -> Option<PartitionOffsets> { None }
/// #         async fn produce(&self, _: ProducerRecord) -> Result<ProducedOffset, ProducerError> {
/// #             Ok(ProducedOffset { offset: 0 })
/// #         }
/// #         fn scoped_subscribe<'a>(&'a self, _: &str, _: Vec<ConsumerOffset>,
/// #             _: Vec<Subscription>, _: Option<Duration>)
/// #             -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>> {
/// #             Box::pin(stream::empty())
/// #         }
/// #     }
/// # }
/// use my_log::MyLog;
///
/// streambed_test::commit_log_conformance!(async {
///     let dir = tempfile::tempdir().unwrap();
///     (MyLog::new(dir.path()), dir)
/// });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! commit_log_conformance {
    ($backend:expr) => {
        $crate::commit_log_conformance!(@tests $backend;
            a_topic_never_written_has_no_offsets_and_no_records,
            produce_answers_rising_offsets_that_offsets_reports,
            a_subscription_from_an_offset_receives_only_the_records_after_it,
            a_subscription_follows_records_appended_after_it_began,
            an_idle_timeout_ends_a_quiet_subscription_and_none_keeps_it_open,
            headers_timestamps_keys_and_values_round_trip,
            a_subscription_to_several_topics_keeps_each_topics_order,
        );
    };
    (@tests $backend:expr; $($check:ident,)*) => {
        $(
            #[test]
            fn $check() {
                $crate::runtime::two_workers().block_on(async {
                    let (log, _keep) = $backend.await;
                    $crate::conformance::$check(&log, concat!("conformance-", stringify!($check)))
                        .await;
                });
            }
        )*
    };
}
