//! Produce-to-receive latency of a live subscriber, in this process (woken by the writer)
//! and in another process (woken by inotify on Linux). Prints p50/p99/max.
//!
//! `cargo bench -p streambed-logged --bench latency`

use std::{
    process::Stdio,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use streambed::commit_log::{CommitLog, ProducerRecord, Subscription, Topic};
use streambed_logged::FileLog;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_stream::StreamExt;

const SAMPLES: usize = 2_000;
const GAP: Duration = Duration::from_micros(500);

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn record(key: u64) -> ProducerRecord {
    // When the record was handed to `produce`, as the wall clock both processes share.
    streambed_test::records::record("latency", key, now_nanos().to_le_bytes())
}

fn latency_of(value: &[u8]) -> u64 {
    let sent = u64::from_le_bytes(value.try_into().unwrap());
    now_nanos().saturating_sub(sent)
}

fn subscriptions() -> Vec<Subscription> {
    vec![Subscription {
        topic: Topic::from("latency"),
    }]
}

fn report(name: &str, mut nanos: Vec<u64>) {
    nanos.sort_unstable();
    let at = |q: f64| nanos[((nanos.len() - 1) as f64 * q) as usize] as f64 / 1e6;
    println!(
        "{name}: {} samples, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        nanos.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

async fn same_process() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    let reader = log.clone();
    let receiver = tokio::spawn(async move {
        let mut records = reader.scoped_subscribe("latency", vec![], subscriptions(), None);
        let mut nanos = Vec::with_capacity(SAMPLES);
        while nanos.len() < SAMPLES {
            nanos.push(latency_of(&records.next().await.unwrap().value));
        }
        nanos
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    for key in 0..SAMPLES as u64 {
        log.produce(record(key)).await.unwrap();
        tokio::time::sleep(GAP).await;
    }
    report("same process", receiver.await.unwrap());
}

async fn child() {
    let root = std::env::var("LOGGED_ROOT").unwrap();
    let log = FileLog::new(root);
    let mut records = log.scoped_subscribe("latency", vec![], subscriptions(), None);
    println!("ready");
    while let Some(r) = records.next().await {
        println!("{}", latency_of(&r.value));
    }
}

async fn other_process() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    let mut child = tokio::process::Command::from(streambed_test::process::this_test_binary())
        .env("LOGGED_LATENCY_CHILD", "1")
        .env("LOGGED_ROOT", dir.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "ready");
    let collector = tokio::spawn(async move {
        let mut nanos = Vec::with_capacity(SAMPLES);
        while nanos.len() < SAMPLES {
            let line = lines.next_line().await.unwrap().unwrap();
            nanos.push(line.parse().unwrap());
        }
        nanos
    });
    for key in 0..SAMPLES as u64 {
        log.produce(record(key)).await.unwrap();
        tokio::time::sleep(GAP).await;
    }
    report("other process", collector.await.unwrap());
    child.kill().await.unwrap();
}

fn main() {
    let rt = streambed_test::runtime::two_workers();
    if std::env::var("LOGGED_LATENCY_CHILD").is_ok() {
        rt.block_on(child());
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    rt.block_on(same_process());
    rt.block_on(other_process());
}
