//! What the shared suite does not cover, against a real broker (tansu on loopback):
//! concurrent producers, the runtime a log is first used on going away, a cluster that is
//! unreachable, and records or topics Kafka cannot hold.

use std::time::{Duration, Instant};

use streambed::commit_log::{CommitLog, Header, HeaderKey, Subscription, Topic};
use streambed_kafka_native::{KafkaNativeCommitLog, KafkaNativeError, KafkaNativeSettings};
use streambed_test::{records::record, runtime, tansu::Tansu};

fn creating(broker: &Tansu) -> KafkaNativeCommitLog {
    KafkaNativeCommitLog::with_settings(
        KafkaNativeSettings::new([broker.address()]).create_topics(1, 1),
    )
}

/// A log of a cluster that is not there: its one broker's port has nothing listening.
fn unreachable(request_deadline: Duration) -> KafkaNativeCommitLog {
    let port = streambed_test::host::free_port();
    KafkaNativeCommitLog::with_settings(
        KafkaNativeSettings::new([format!("127.0.0.1:{port}")]).request_deadline(request_deadline),
    )
}

#[test]
fn concurrent_producers_each_keep_their_order_and_every_record_one_offset() {
    let broker = Tansu::start();
    let log = creating(&broker);
    runtime::two_workers().block_on(async {
        const PRODUCERS: u64 = 32;
        const EACH: u64 = 50;
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut offsets = Vec::new();
                    for n in 0..EACH {
                        let key = producer * EACH + n;
                        offsets.push(log.produce(record("t", key, "v")).await.unwrap().offset);
                    }
                    offsets
                })
            })
            .collect();
        let mut all = Vec::new();
        for producer in producers {
            let offsets = producer.await.unwrap();
            assert!(
                offsets.windows(2).all(|pair| pair[0] < pair[1]),
                "{offsets:?}"
            );
            all.extend(offsets);
        }
        all.sort_unstable();
        assert_eq!(all, (0..PRODUCERS * EACH).collect::<Vec<_>>());
        // Each record is at the offset it was given.
        let read = streambed_test::records::read_topic(&log, "t", Duration::from_secs(1)).await;
        assert_eq!(read.len() as u64, PRODUCERS * EACH);
    });
}

#[test]
fn a_log_goes_on_producing_after_the_runtime_that_first_used_it_is_gone() {
    let broker = Tansu::start();
    let log = creating(&broker);
    for expected in 0..3 {
        // A runtime per call: the partition's writer started by the first is gone by the
        // second.
        let produced = runtime::current_thread()
            .block_on(log.produce(record("t", expected, "v")))
            .unwrap();
        assert_eq!(produced.offset, expected);
    }
}

#[test]
fn an_unreachable_cluster_fails_a_produce_once_the_deadline_has_passed() {
    let log = unreachable(Duration::from_secs(1));
    runtime::current_thread().block_on(async {
        let started = Instant::now();
        let error = log
            .try_produce_all(vec![record("t", 1, "v")])
            .await
            .unwrap_err();
        let waited = started.elapsed();
        assert!(matches!(error, KafkaNativeError::Cluster { .. }), "{error}");
        // It waited and tried again (the first back-off is 100 ms), and gave up within the
        // deadline (with room for a slow machine).
        assert!(
            waited >= Duration::from_millis(100),
            "never retried: {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(6) * streambed_test::process::slowdown(),
            "kept trying: {waited:?}"
        );
        // The trait says only that it cannot produce; `offsets` knows nothing.
        assert!(log.produce(record("t", 1, "v")).await.is_err());
        assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
    });
}

#[test]
fn producing_to_a_missing_topic_without_topic_creation_is_an_unknown_topic_error() {
    let broker = Tansu::start();
    let log = KafkaNativeCommitLog::new([broker.address()]);
    runtime::current_thread().block_on(async {
        let error = log
            .try_produce_all(vec![record("absent", 1, "v")])
            .await
            .unwrap_err();
        assert!(
            matches!(&error, KafkaNativeError::UnknownTopic(topic) if topic == "absent"),
            "{error}"
        );
    });
}

#[test]
fn records_and_topics_kafka_cannot_hold_are_refused_with_the_reason() {
    let broker = Tansu::start();
    let log = creating(&broker);
    runtime::current_thread().block_on(async {
        let error = log
            .try_produce_all(vec![record("a topic", 1, "v")])
            .await
            .unwrap_err();
        assert!(matches!(error, KafkaNativeError::TopicName(_)), "{error}");

        let mut twice = record("t", 1, "v");
        twice.headers = ["a", "a"]
            .into_iter()
            .map(|key| Header {
                key: HeaderKey::from(key),
                value: vec![],
            })
            .collect();
        let error = log.try_produce_all(vec![twice]).await.unwrap_err();
        assert!(
            matches!(&error, KafkaNativeError::DuplicateHeader { key, .. } if key == "a"),
            "{error}"
        );
        // Nothing of either was stored.
        assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
    });
}

#[test]
fn a_namespaced_topic_lives_on_the_cluster_under_its_dotted_name() {
    let broker = Tansu::start();
    let log = creating(&broker);
    runtime::current_thread().block_on(async {
        log.produce(record("farm:readings", 1, "v")).await.unwrap();
        let plain = KafkaNativeCommitLog::new([broker.address()]);
        let offsets = plain
            .offsets(Topic::from("farm.readings"), 0)
            .await
            .unwrap();
        assert_eq!(offsets.end_offset, 0);
    });
}

#[test]
fn records_cross_a_tls_connection_to_the_broker() {
    use std::sync::Arc;

    use rustls::pki_types::{pem::PemObject, CertificateDer};

    let ca = streambed_test::pki::TestCa::new("cluster CA");
    let broker = Tansu::start_tls(&ca.server("127.0.0.1"));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.certificate_pem().as_bytes()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let log = KafkaNativeCommitLog::with_settings(
        KafkaNativeSettings::new([broker.address()])
            .create_topics(1, 1)
            .tls(Arc::new(tls)),
    );
    runtime::current_thread().block_on(async {
        log.produce(record("t", 7, "over TLS")).await.unwrap();
        let read = streambed_test::records::read_topic(&log, "t", Duration::from_secs(1)).await;
        assert_eq!(read.len(), 1);
        assert_eq!(
            (read[0].key, read[0].value.as_slice()),
            (7, b"over TLS".as_slice())
        );
    });

    // A client that does not trust the broker's authority gets nowhere.
    let stranger = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let refused = KafkaNativeCommitLog::with_settings(
        KafkaNativeSettings::new([broker.address()])
            .tls(Arc::new(stranger))
            .request_deadline(Duration::from_millis(500)),
    );
    runtime::current_thread().block_on(async {
        assert!(refused.produce(record("t", 8, "v")).await.is_err());
    });
}

#[test]
fn a_subscription_to_an_unreachable_cluster_waits_without_spinning() {
    let log = unreachable(Duration::from_millis(300));
    runtime::current_thread().block_on(async {
        use futures_util::StreamExt;

        let mut records = log.scoped_subscribe(
            "waiting",
            vec![],
            vec![Subscription {
                topic: Topic::from("t"),
            }],
            None,
        );
        let cpu_before = streambed_test::faults::cpu_time();
        let waited = tokio::time::timeout(Duration::from_secs(3), records.next()).await;
        let cpu = streambed_test::faults::cpu_time() - cpu_before;
        assert!(waited.is_err(), "the stream yielded or ended: {waited:?}");
        // Three seconds of retrying with back-off cost a few milliseconds of work; a
        // loop that spun would cost seconds.
        assert!(
            cpu < Duration::from_millis(500) * streambed_test::process::slowdown(),
            "{cpu:?} of CPU while waiting"
        );
    });
}
