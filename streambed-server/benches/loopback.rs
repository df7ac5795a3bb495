//! Throughput and live latency of the Kafka HTTP API through `KafkaRestCommitLog` and
//! `streambed-server` (over a `FileLog`) on loopback.
//!
//! Run with `cargo bench -p streambed-server --bench loopback`; it prints its figures.

use std::time::{Duration, Instant};

use streambed::commit_log::{CommitLog, ProducerRecord, Subscription, Topic};
use streambed_kafka::KafkaRestCommitLog;
use streambed_logged::FileLog;
use streambed_server::{serve, ServerConfig};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::StreamExt;
use url::Url;

const SINGLE_RECORDS: u64 = 5_000;
const BATCHES: u64 = 200;
const BATCH_SIZE: u64 = 100;
const LATENCY_SAMPLES: usize = 2_000;

fn record(topic: &str, key: u64) -> ProducerRecord {
    // A typical small sensor reading.
    streambed_test::records::record(topic, key, vec![0x5a; 64])
}

fn subscription(topic: &str) -> Vec<Subscription> {
    vec![Subscription {
        topic: Topic::from(topic),
    }]
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    let runtime = streambed_test::runtime::two_workers();
    runtime.block_on(run());
}

async fn run() {
    let root = tempfile::tempdir().expect("temporary directory");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let url = Url::parse(&format!(
        "http://{}",
        listener.local_addr().expect("address")
    ))
    .expect("url");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        FileLog::new(root.path()),
        listener,
        ServerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let client = KafkaRestCommitLog::new(url.clone(), None, false);

    // Produce, one record per request.
    let start = Instant::now();
    for key in 0..SINGLE_RECORDS {
        client
            .produce(record("single", key))
            .await
            .expect("produce");
    }
    let elapsed = start.elapsed();
    println!(
        "produce, 1 record/request:   {:>9.0} records/s ({SINGLE_RECORDS} records in {elapsed:.2?})",
        per_second(SINGLE_RECORDS, elapsed)
    );

    // Produce in batches.
    let start = Instant::now();
    for batch in 0..BATCHES {
        let records: Vec<_> = (0..BATCH_SIZE)
            .map(|n| record("batched", batch * BATCH_SIZE + n))
            .collect();
        client.produce_batch(&records).await.expect("produce batch");
    }
    let elapsed = start.elapsed();
    let total = BATCHES * BATCH_SIZE;
    println!(
        "produce, {BATCH_SIZE} records/request: {:>9.0} records/s ({total} records in {elapsed:.2?})",
        per_second(total, elapsed)
    );

    // Consume a topic's history.
    let start = Instant::now();
    let consumed = client
        .scoped_subscribe("bench", vec![], subscription("batched"), None)
        .take(total as usize)
        .fold(0u64, |n, _| n + 1)
        .await;
    let elapsed = start.elapsed();
    println!(
        "consume history:             {:>9.0} records/s ({consumed} records in {elapsed:.2?})",
        per_second(consumed, elapsed)
    );

    // Live latency: produce one record, wait for a live consumer to receive it, repeat.
    let (received, mut arrivals) = mpsc::unbounded_channel();
    let consumer = KafkaRestCommitLog::new(url.clone(), None, false);
    let follower = tokio::spawn(async move {
        let mut stream = consumer.scoped_subscribe("live", vec![], subscription("live"), None);
        while let Some(record) = stream.next().await {
            if received.send((record.key, Instant::now())).is_err() {
                break;
            }
        }
    });
    // Warm up: the subscription is live once a first record comes through.
    client
        .produce(record("live", u64::MAX))
        .await
        .expect("produce");
    arrivals.recv().await.expect("warm-up record");
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for key in 0..LATENCY_SAMPLES as u64 {
        let sent = Instant::now();
        client.produce(record("live", key)).await.expect("produce");
        let (got, at) = arrivals.recv().await.expect("live record");
        assert_eq!(got, key);
        latencies.push(at - sent);
    }
    latencies.sort_unstable();
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "live produce-to-receive latency over {LATENCY_SAMPLES} records: p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        quantile(0.5),
        quantile(0.99),
        latencies[latencies.len() - 1]
    );

    follower.abort();
    let _ = stop.send(());
    let _ = server.await;
}
