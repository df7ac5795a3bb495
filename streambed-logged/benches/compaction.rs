//! A topic receiving 100,000 records over 1,000 keys with `KeyBasedRetention`: its size on
//! disk (sampled every 10 records while producing, and at the end) against the bound of
//! two thresholds plus one record per key, the files the largest sample was made of, how
//! long compactions took from aging to commit as the samples saw them and how much the
//! active file grew meanwhile, compaction time per MB, peak memory.
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

/// A record as the SPEC lays it out on disk (postcard, then a 4-byte CRC), to size the
/// records compaction keeps.
#[derive(serde::Serialize)]
struct OnDisk {
    version: u32,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: Option<f64>,
    key: u64,
    value: Vec<u8>,
    offset: u64,
}

fn value(i: u64) -> Vec<u8> {
    format!("value {i:>8}").into_bytes()
}

fn encoded_size(i: u64) -> u64 {
    let record = OnDisk {
        version: 0,
        headers: vec![],
        timestamp: None,
        key: i % KEYS,
        value: value(i),
        offset: i,
    };
    postcard::to_stdvec(&record).unwrap().len() as u64 + 4
}

/// Sizes of the topic's files: active, history, ancient history, work.
fn topic_file_sizes(dir: &Path) -> [Option<u64>; 4] {
    ["t", "t.history", "t.ancient_history", "t.work"]
        .map(|n| std::fs::metadata(dir.join(n)).ok().map(|m| m.len()))
}

fn topic_files(dir: &Path) -> u64 {
    topic_file_sizes(dir).iter().flatten().sum()
}

fn show(sizes: [Option<u64>; 4]) -> String {
    let names = ["active", "history", "ancient", "work"];
    names
        .iter()
        .zip(sizes)
        .filter_map(|(n, s)| s.map(|s| format!("{n} {s}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the samples saw of one compaction: from the sample where an ancient history (or a
/// work file) first appeared to the first where both were gone.
struct Cycle {
    seen_at: Instant,
    active_at_start: u64,
    peak: u64,
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
    let mut peak_sizes = [None; 4];
    let mut cycle: Option<Cycle> = None;
    let mut cycles: Vec<(std::time::Duration, u64, u64)> = Vec::new();
    let started = Instant::now();
    for i in 0..RECORDS {
        let record = ProducerRecord {
            topic: topic.clone(),
            headers: vec![],
            timestamp: None,
            key: i % KEYS,
            value: value(i),
            partition: 0,
        };
        log.produce(record).await.unwrap();
        if i == 0 {
            record_size = topic_files(dir.path());
        }
        if i % 10 == 0 {
            let sizes = topic_file_sizes(dir.path());
            let total: u64 = sizes.iter().flatten().sum();
            if total > peak_topic {
                peak_topic = total;
                peak_sizes = sizes;
            }
            let active = sizes[0].unwrap_or(0);
            let compacting = sizes[2].is_some() || sizes[3].is_some();
            match (&mut cycle, compacting) {
                (None, true) => {
                    cycle = Some(Cycle {
                        seen_at: Instant::now(),
                        active_at_start: active,
                        peak: total,
                    })
                }
                (Some(c), true) => c.peak = c.peak.max(total),
                (Some(c), false) => {
                    cycles.push((
                        c.seen_at.elapsed(),
                        active.saturating_sub(c.active_at_start),
                        c.peak,
                    ));
                    cycle = None;
                }
                (None, false) => {}
            }
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
    // Later records are larger than the first (their offsets and keys take more bytes):
    // the records compaction keeps, one per key, are the last of each key.
    let kept: u64 = (RECORDS - KEYS..RECORDS).map(encoded_size).sum();
    assert_eq!(record_size, encoded_size(0), "the record layout changed");
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
        "the records kept (the last of each key) take {kept} bytes, not {}: bound with them {} bytes",
        KEYS * record_size,
        2 * THRESHOLD + kept
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
    println!("peak sample made of: {}", show(peak_sizes));
    if !cycles.is_empty() {
        let n = cycles.len() as f64;
        let mean_ms = cycles.iter().map(|c| c.0.as_secs_f64()).sum::<f64>() / n * 1e3;
        let max_ms = cycles.iter().map(|c| c.0.as_secs_f64()).fold(0.0, f64::max) * 1e3;
        let mean_growth = cycles.iter().map(|c| c.1).sum::<u64>() as f64 / n;
        let max_growth = cycles.iter().map(|c| c.1).max().unwrap_or(0);
        let max_peak = cycles.iter().map(|c| c.2).max().unwrap_or(0);
        println!(
            "compactions seen by the samples: {} lasting {mean_ms:.2} ms on average (max {max_ms:.2} ms) from aging to commit, active file growing {mean_growth:.0} bytes meanwhile (max {max_growth}); peak during one {max_peak} bytes",
            cycles.len()
        );
    }
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
