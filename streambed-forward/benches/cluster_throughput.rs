//! Records per second against a Kafka-compatible broker on loopback (tansu, release build,
//! records in memory), beside the same work on a `FileLog`, in one run:
//!
//! - produce, each record awaited before the next (one producer);
//! - produce by 64 concurrent producers;
//! - consume a topic from its start: the one written one record at a time (on the broker,
//!   a batch per record), and the one written by 64 producers (batches coalesced);
//! - forward a topic from a `FileLog` (the router) to the broker, and to another
//!   `FileLog` for comparison.
//!
//! `cargo bench -p streambed-forward --bench cluster_throughput [-- RECORDS]` prints a
//! table; RECORDS (20,000 by default) is per measurement.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use streambed::commit_log::{CommitLog, Subscription, Topic};
use streambed_forward::{ForwardSettings, Forwarder, PositionFile};
use streambed_kafka_native::{KafkaNativeCommitLog, KafkaNativeSettings};
use streambed_logged::FileLog;
use streambed_test::{records::record, tansu::Tansu};

const PRODUCERS: u64 = 64;
const VALUE: &[u8] = &[b'x'; 100];
/// How long a forwarding run waits for more before it ends.
const IDLE: Duration = Duration::from_millis(200);

async fn rate(records: u64, work: impl Future<Output = ()>) -> f64 {
    let started = Instant::now();
    work.await;
    records as f64 / started.elapsed().as_secs_f64()
}

async fn produce_one_at_a_time(log: &impl CommitLog, topic: &str, records: u64) -> f64 {
    rate(records, async {
        for key in 0..records {
            log.produce(record(topic, key, VALUE)).await.unwrap();
        }
    })
    .await
}

async fn produce_concurrently<CL: CommitLog + 'static>(log: &CL, topic: &str, records: u64) -> f64 {
    rate(records, async {
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let (log, topic) = (log.clone(), topic.to_owned());
                tokio::spawn(async move {
                    for key in (producer..records).step_by(PRODUCERS as usize) {
                        log.produce(record(&topic, key, VALUE)).await.unwrap();
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.await.unwrap();
        }
    })
    .await
}

async fn consume(log: &impl CommitLog, topic: &str, records: u64) -> f64 {
    rate(records, async {
        let subscriptions = vec![Subscription {
            topic: Topic::from(topic),
        }];
        let read = log
            .scoped_subscribe("bench", vec![], subscriptions, None)
            .take(records as usize)
            .count()
            .await;
        assert_eq!(read as u64, records);
    })
    .await
}

/// Forwards the source's "serial" topic; the idle wait that ends the run is not counted.
async fn forward(source: &FileLog, destination: impl CommitLog, positions: PositionFile) -> f64 {
    let mut forwarder = Forwarder::new(
        source.clone(),
        destination,
        positions,
        ForwardSettings::new("bench", [Topic::from("serial")]),
    )
    .unwrap();
    let started = Instant::now();
    let forwarded = forwarder.forward_until_idle(IDLE).await.unwrap();
    forwarded as f64 / (started.elapsed() - IDLE).as_secs_f64()
}

fn main() {
    let records: u64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(20_000);
    let runtime = streambed_test::runtime::two_workers();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let broker = Tansu::start();
        let kafka = KafkaNativeCommitLog::with_settings(
            KafkaNativeSettings::new([broker.address()]).create_topics(1, 1),
        );
        let file = FileLog::new(dir.path().join("log"));

        let rows = [
            (
                "produce, one at a time",
                produce_one_at_a_time(&kafka, "serial", records).await,
                produce_one_at_a_time(&file, "serial", records).await,
            ),
            (
                "produce, 64 producers",
                produce_concurrently(&kafka, "concurrent", records).await,
                produce_concurrently(&file, "concurrent", records).await,
            ),
            (
                "consume, 1-record batches",
                consume(&kafka, "serial", records).await,
                consume(&file, "serial", records).await,
            ),
            (
                "consume, coalesced",
                consume(&kafka, "concurrent", records).await,
                consume(&file, "concurrent", records).await,
            ),
            (
                "forward from a FileLog",
                // Into a topic of the broker that already holds records: forwarding
                // appends after them.
                forward(
                    &file,
                    kafka.clone(),
                    PositionFile::new(dir.path().join("to-kafka.positions")),
                )
                .await,
                forward(
                    &file,
                    FileLog::new(dir.path().join("copy")),
                    PositionFile::new(dir.path().join("to-file.positions")),
                )
                .await,
            ),
        ];

        println!("{records} records of {} bytes per measurement", VALUE.len());
        println!(
            "{:<24} {:>14} {:>14} {:>8}",
            "records/s", "Kafka (tansu)", "FileLog", "ratio"
        );
        for (name, kafka, file) in rows {
            println!(
                "{name:<24} {kafka:>14.0} {file:>14.0} {:>7.1}%",
                100.0 * kafka / file
            );
        }
    });
}
