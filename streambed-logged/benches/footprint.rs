//! Figures that must not grow with the size of a topic:
//! * a fresh `FileLog` on a 1,000,000-record topic: time of `offsets()` and of the first
//!   record of a subscription from an offset near the end;
//! * the resident memory of a process with 100 topics, each with one idle subscriber;
//! * the resident memory and open files of a process whose log wrote once to each of
//!   1,000 topics, now idle.
//!
//! `cargo bench -p streambed-logged --bench footprint`

use std::time::{Duration, Instant};

use streambed::commit_log::{CommitLog, ConsumerOffset, ProducerRecord, Subscription, Topic};
use streambed_logged::{Durability, FileLog};
use tokio_stream::StreamExt;

const BIG: u64 = 1_000_000;

fn record(topic: &str, key: u64) -> ProducerRecord {
    streambed_test::records::record(topic, key, b"0123456789".as_slice())
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds this process used so far (user + system), from `/proc/self/stat`, so that
/// figures can be judged on a machine shared with other work. Assumes 100 ticks a second.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn per_cpu_second(records: u64, cpu_before: Option<f64>) -> String {
    match (cpu_before, cpu_secs()) {
        (Some(before), Some(after)) if after > before => format!(
            "; {:.2} CPU s, {:.0} records per CPU second",
            after - before,
            records as f64 / (after - before)
        ),
        _ => String::new(),
    }
}

async fn big_topic() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    let cpu = cpu_secs();
    let started = Instant::now();
    for key in 0..BIG {
        log.produce(record("big", key)).await.unwrap();
    }
    let produced = started.elapsed();
    drop(log);
    let size = std::fs::metadata(dir.path().join("big")).unwrap().len();
    println!(
        "1,000,000 records produced one at a time in {:.2} s ({:.0} records/s), log {:.1} MB{}",
        produced.as_secs_f64(),
        BIG as f64 / produced.as_secs_f64(),
        size as f64 / 1e6,
        per_cpu_second(BIG, cpu)
    );

    let fresh = FileLog::new(dir.path());
    let started = Instant::now();
    let offsets = fresh.offsets(Topic::from("big"), 0).await.unwrap();
    println!(
        "fresh FileLog offsets(): {:.3} ms (end offset {})",
        started.elapsed().as_secs_f64() * 1e3,
        offsets.end_offset
    );

    let fresh = FileLog::new(dir.path());
    let started = Instant::now();
    let from = vec![ConsumerOffset {
        topic: Topic::from("big"),
        partition: 0,
        offset: BIG - 10,
    }];
    let subscriptions = vec![Subscription {
        topic: Topic::from("big"),
    }];
    let mut records = fresh.scoped_subscribe("bench", from, subscriptions, None);
    let first = records.next().await.unwrap();
    println!(
        "fresh FileLog, subscription from offset {}: first record (offset {}) in {:.3} ms",
        BIG - 10,
        first.offset,
        started.elapsed().as_secs_f64() * 1e3
    );

    let fresh = FileLog::new(dir.path());
    let cpu = cpu_secs();
    let started = Instant::now();
    let n = streambed_test::records::count_first(&fresh, "big", BIG).await;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "consumed {n} records from the start in {elapsed:.2} s ({:.0} records/s, {:.1} MB/s){}",
        n as f64 / elapsed,
        size as f64 / 1e6 / elapsed,
        per_cpu_second(n, cpu)
    );
}

fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// 1,000 topics, each written once and then idle: what they cost above the empty process,
/// in memory and in open files (bounded by the log's open topic limit).
async fn thousand_topics_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let (rss_before, fds_before) = (rss_kib(), open_fds());
    let log = FileLog::new(dir.path());
    for t in 0..1_000 {
        log.produce(record(&format!("topic-{t}"), 0)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (rss_after, fds_after) = (rss_kib(), open_fds());
    if let (Some(b), Some(a), Some(fb), Some(fa)) = (rss_before, rss_after, fds_before, fds_after) {
        println!(
            "1,000 topics written once, idle: RSS {} KiB above the empty process, {} more \
             open files (open topic limit {})",
            a.saturating_sub(b),
            fa.saturating_sub(fb),
            streambed_logged::DEFAULT_OPEN_TOPIC_LIMIT
        );
    }
    drop(log);
}

async fn hundred_idle_topics() {
    let dir = tempfile::tempdir().unwrap();
    let before = rss_kib();
    let log = FileLog::new(dir.path());
    let mut streams = Vec::new();
    for t in 0..100 {
        let topic = format!("topic-{t}");
        log.produce(record(&topic, 0)).await.unwrap();
        let subscriptions = vec![Subscription {
            topic: Topic::from(topic.as_str()),
        }];
        let mut stream = log.scoped_subscribe("bench", vec![], subscriptions, None);
        stream.next().await.unwrap();
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = rss_kib();
    match (before, after) {
        (Some(b), Some(a)) => println!(
            "100 topics with an appender and one idle subscriber each: RSS {a} KiB ({} KiB more than before)",
            a.saturating_sub(b)
        ),
        _ => println!("RSS not available on this system"),
    }
    drop(streams);
}

/// Fsync mode: one producer awaiting each record, then 16 concurrent producers sharing
/// each `fdatasync` (group commit).
async fn fsync_group_commit() {
    const RECORDS: u64 = 2_000;
    for producers in [1u64, 16] {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::new(dir.path()).with_durability(Durability::Fsync);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..producers {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..RECORDS / producers {
                    log.produce(record("durable", p * RECORDS + i))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "fsync mode, {producers} concurrent producer(s): {RECORDS} records in {:.2} s ({:.0} records/s)",
            elapsed,
            RECORDS as f64 / elapsed
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(thousand_topics_written_once());
    rt.block_on(hundred_idle_topics());
    rt.block_on(big_topic());
    rt.block_on(fsync_group_commit());
}
