//! A topic receiving 100,000 records over 1,000 keys with `KeyBasedRetention`: its size on
//! disk (sampled while producing and at the end), compaction time per MB, peak memory.
//!
//! `cargo bench -p streambed-logged --bench compaction`

use std::{path::Path, time::Instant};

use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
use streambed_logged::{compaction::KeyBasedRetention, FileLog};

const RECORDS: u64 = 100_000;
const KEYS: u64 = 1_000;
const THRESHOLD: u64 = 64 * 1024;

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn topic_files(dir: &Path) -> u64 {
    ["t", "t.history", "t.ancient_history", "t.work"]
        .iter()
        .filter_map(|n| std::fs::metadata(dir.join(n)).ok())
        .map(|m| m.len())
        .sum()
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FileLog::new(dir.path());
    let topic = Topic::from("t");
    log.register_compaction(topic.clone(), KeyBasedRetention::new(KEYS as usize))
        .await
        .unwrap();
    let mut record_size = 0;
    let mut peak_topic = 0;
    let started = Instant::now();
    for i in 0..RECORDS {
        let record = ProducerRecord {
            topic: topic.clone(),
            headers: vec![],
            timestamp: None,
            key: i % KEYS,
            value: format!("value {i:>8}").into_bytes(),
            partition: 0,
        };
        log.produce(record).await.unwrap();
        if i == 0 {
            record_size = topic_files(dir.path());
        }
        if i % 10 == 0 {
            peak_topic = peak_topic.max(topic_files(dir.path()));
        }
    }
    let produced = started.elapsed();
    // Let the last compaction finish.
    let mut stats = log.compaction_stats(&topic).unwrap();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let now = log.compaction_stats(&topic).unwrap();
        if now == stats {
            break;
        }
        stats = now;
    }
    let bound = 2 * THRESHOLD + KEYS * record_size;
    println!(
        "{RECORDS} records over {KEYS} keys produced in {:.2} s ({:.0} records/s)",
        produced.as_secs_f64(),
        RECORDS as f64 / produced.as_secs_f64()
    );
    println!(
        "topic on disk: {} bytes at the end (topic files {}), peak of samples {} bytes; bound 2 x threshold + one record per key = {} bytes",
        on_disk(dir.path()),
        topic_files(dir.path()),
        peak_topic,
        bound
    );
    println!(
        "compactions: {}, passes: {}, {:.2} MB in -> {:.2} MB out, {:.1} ms in total, {:.1} ms per MB compacted",
        stats.compactions,
        stats.passes,
        stats.bytes_in as f64 / 1e6,
        stats.bytes_out as f64 / 1e6,
        stats.time.as_secs_f64() * 1e3,
        stats.time.as_secs_f64() * 1e3 / (stats.bytes_in as f64 / 1e6)
    );
    if let (Some(hwm), Some(rss)) = (status_kib("VmHWM:"), status_kib("VmRSS:")) {
        println!("peak resident memory (VmHWM): {hwm} KiB; now {rss} KiB");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
