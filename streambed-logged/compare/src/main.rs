//! Produce speed at every durability level, beside the published streambed-logged 0.13 in
//! the same run: one producer awaiting each record (as services write) on a current-thread
//! runtime and from `block_on` of a multi-thread one (as in `#[tokio::main]`), with 10 B and
//! 1 KiB values; then 64 concurrent producers on one topic; then a topic's history read
//! back through `scoped_subscribe`. Prints records/s, the ratio to the original, and the p50
//! and p99 latency of one `produce`.
//!
//! `scripts/produce-speed` runs it in release mode; `scripts/produce-speed --quick` (which
//! CI runs in debug mode) checks with a hundredth of the records that it works;
//! `--profile` runs one case (ours, `Buffered`, current-thread, 10 B) long enough for
//! `perf record`; `--fsync` runs only the 64 producers at `Fsync` and the disk's bound;
//! `--emulated` runs a tenth of the records and leaves out `Fsync`, for a build for another
//! architecture run under an emulator (`scripts/edge-bench`), where the host's disk says
//! nothing about the device's.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use streambed::commit_log::{CommitLog, Subscription, Topic};
use tokio_stream::StreamExt;
use streambed_logged::{Durability, FileLog};
use tokio::runtime::Runtime;

/// The log under measure: ours at a durability level, or the original.
#[derive(Clone)]
enum Log {
    Ours(FileLog),
    Original(original_logged::FileLog),
}

#[derive(Clone, Copy, PartialEq)]
enum Subject {
    Ours(Durability),
    Original,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Ours(Durability::InProcess) => "ours, InProcess",
            Subject::Ours(Durability::Buffered) => "ours, Buffered (default)",
            Subject::Ours(Durability::Fsync) => "ours, Fsync",
            Subject::Original => "original 0.13",
        }
    }

    fn open(self, dir: &std::path::Path) -> Log {
        match self {
            Subject::Ours(durability) => Log::Ours(FileLog::new(dir).with_durability(durability)),
            Subject::Original => Log::Original(original_logged::FileLog::new(dir)),
        }
    }
}

impl Log {
    async fn produce(&self, key: u64, value: &[u8]) {
        match self {
            Log::Ours(log) => {
                let record = streambed_test::records::record("bench", key, value);
                log.produce(record).await.expect("produce");
            }
            Log::Original(log) => {
                use original_streambed::commit_log::{CommitLog as _, ProducerRecord, Topic};
                let record = ProducerRecord {
                    topic: Topic::from("bench"),
                    headers: vec![],
                    timestamp: None,
                    key,
                    value: value.to_vec(),
                    partition: 0,
                };
                log.produce(record).await.expect("produce");
            }
        }
    }

    /// The records the log holds, read back: every acknowledged record must be there.
    async fn end_offset(&self) -> Option<u64> {
        match self {
            Log::Ours(log) => log
                .offsets(streambed::commit_log::Topic::from("bench"), 0)
                .await
                .map(|o| o.end_offset),
            Log::Original(log) => {
                use original_streambed::commit_log::{CommitLog as _, Topic};
                log.offsets(Topic::from("bench"), 0)
                    .await
                    .map(|o| o.end_offset)
            }
        }
    }
}

impl Log {
    /// Reads the first `records` records of the topic back from offset 0 through a
    /// subscription, as a service replays its history at start-up; answers how long that
    /// took from the subscription to the last record.
    async fn consume(&self, records: u64) -> Duration {
        let started = Instant::now();
        let read = match self {
            Log::Ours(log) => {
                let subscriptions = vec![Subscription {
                    topic: Topic::from("bench"),
                }];
                let stream = log.scoped_subscribe("bench", vec![], subscriptions, None);
                stream.take(records as usize).fold(0u64, |n, _| n + 1).await
            }
            Log::Original(log) => {
                use original_streambed::commit_log::{CommitLog as _, Subscription, Topic};
                let subscriptions = vec![Subscription {
                    topic: Topic::from("bench"),
                }];
                let stream = log.scoped_subscribe("bench", vec![], subscriptions, None);
                stream.take(records as usize).fold(0u64, |n, _| n + 1).await
            }
        };
        assert_eq!(read, records, "records missing from the history");
        started.elapsed()
    }
}

/// What one run measured.
struct Figures {
    per_sec: f64,
    /// Bytes of topic file written per second.
    bytes_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn figures(records: u64, elapsed: Duration, mut latencies: Vec<Duration>) -> Figures {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Figures {
        per_sec: records as f64 / elapsed.as_secs_f64(),
        bytes_per_sec: 0.0,
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// `producers` tasks each producing `per_producer` records of `value_size` bytes, each
/// awaited; one producer runs on the calling thread (`block_on`), more as spawned tasks.
async fn run(log: Log, producers: u64, per_producer: u64, value_size: usize) -> Figures {
    let started = Instant::now();
    let latencies = if producers == 1 {
        produce_timed(log.clone(), 0, per_producer, value_size).await
    } else {
        let mut tasks = Vec::new();
        for p in 0..producers {
            let log = log.clone();
            tasks.push(tokio::spawn(produce_timed(
                log,
                p * per_producer,
                per_producer,
                value_size,
            )));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("producer"));
        }
        all
    };
    let elapsed = started.elapsed();
    let records = producers * per_producer;
    if let Log::Ours(_) = log {
        // Every acknowledged record is there (the original's end lags its buffer).
        assert_eq!(log.end_offset().await, Some(records - 1), "records lost");
    }
    figures(records, elapsed, latencies)
}

async fn produce_timed(log: Log, first_key: u64, n: u64, value_size: usize) -> Vec<Duration> {
    let value = vec![b'x'; value_size];
    let mut latencies = Vec::with_capacity(n as usize);
    for key in first_key..first_key + n {
        let started = Instant::now();
        log.produce(key, &value).await;
        latencies.push(started.elapsed());
    }
    latencies
}

/// The best of `rounds` runs (the machine is shared: the best is the least disturbed).
fn best(
    rt: &Runtime,
    subject: Subject,
    rounds: usize,
    producers: u64,
    per_producer: u64,
    value_size: usize,
) -> Figures {
    let mut best: Option<Figures> = None;
    for _ in 0..rounds {
        let dir = tempfile::tempdir().expect("temporary folder");
        let log = subject.open(dir.path());
        let started = Instant::now();
        let mut f = rt.block_on(run(log, producers, per_producer, value_size));
        let bytes = std::fs::metadata(dir.path().join("bench")).map_or(0, |m| m.len());
        f.bytes_per_sec = bytes as f64 / started.elapsed().as_secs_f64();
        // Let the original's writer task finish before its folder goes.
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
        if best.as_ref().is_none_or(|b| f.per_sec > b.per_sec) {
            best = Some(f);
        }
    }
    best.expect("at least one round")
}

fn print_row(label: &str, subject: Subject, f: &Figures, original: Option<&Figures>) {
    let ratio = match (subject, original) {
        (Subject::Ours(_), Some(o)) => format!("{:>6.2}x", f.per_sec / o.per_sec),
        _ => "       ".to_string(),
    };
    println!(
        "{label:<34} {:<26} {:>12.0} rec/s {ratio}  p50 {:>7.1} us  p99 {:>8.1} us",
        subject.name(),
        f.per_sec,
        f.p50.as_secs_f64() * 1e6,
        f.p99.as_secs_f64() * 1e6,
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let emulated = std::env::args().any(|a| a == "--emulated");
    let scale = match (quick, emulated) {
        (true, _) => 100,
        (false, true) => 10,
        (false, false) => 1,
    };
    let rounds = if quick { 1 } else { 3 };
    let current = Arc::new(streambed_test::runtime::current_thread());
    let multi = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime"),
    );
    let levels = [Durability::InProcess, Durability::Buffered];
    // `--profile`: only ours, Buffered, current-thread, 10 B, for a long while (to run
    // under `perf record`).
    if std::env::args().any(|a| a == "--profile") {
        let f = best(
            &current,
            Subject::Ours(Durability::Buffered),
            10,
            1,
            300_000,
            10,
        );
        print_row("profile", Subject::Ours(Durability::Buffered), &f, None);
        return;
    }

    // `--fsync`: only the 64 producers at `Fsync` and the disk's bound.
    let fsync_only = std::env::args().any(|a| a == "--fsync");
    if !fsync_only {
        awaited_one_by_one(&current, &multi, rounds, scale, &levels, !emulated);
    }
    println!();
    println!("64 concurrent producers on one topic (multi-thread runtime)");
    if !fsync_only {
        let original = best(&multi, Subject::Original, rounds, 64, 4_000 / scale, 10);
        print_row("64 producers, 10 B", Subject::Original, &original, None);
        for level in levels {
            let subject = Subject::Ours(level);
            let f = best(&multi, subject, rounds, 64, 4_000 / scale, 10);
            print_row("64 producers, 10 B", subject, &f, Some(&original));
        }
        println!();
        history(&current, rounds, 100_000 / scale);
    }
    if emulated {
        return;
    }
    let fsync = Subject::Ours(Durability::Fsync);
    let f = best(&multi, fsync, rounds, 64, 2_000 / scale, 100);
    print_row("64 producers, 100 B", fsync, &f, None);
    let f = best(&multi, fsync, rounds, 64, 500 / scale, 1024);
    print_row("64 producers, 1 KiB", fsync, &f, None);
    // The disk is shared and its speed varies: its best of three tries.
    let disk = (0..3)
        .map(|_| synced_sequential_write(if quick { 4 } else { 1_000 }))
        .fold(0.0, f64::max);
    println!(
        "{:<34} {:<26} {:>12.1} MB/s of topic file, {:.0}% of the disk's synced sequential \
         write ({:.1} MB/s: 64 KiB blocks, fdatasync after each)",
        "64 producers, 1 KiB",
        fsync.name(),
        f.bytes_per_sec / 1e6,
        100.0 * f.bytes_per_sec / disk,
        disk / 1e6,
    );
}

/// One producer awaiting each record: the original beside ours at each level, both
/// runtime flavours, 10 B and 1 KiB; then ours at `Fsync`.
fn awaited_one_by_one(
    current: &Runtime,
    multi: &Runtime,
    rounds: usize,
    scale: u64,
    levels: &[Durability],
    with_fsync: bool,
) {
    println!(
        "One producer awaiting each record, {} records",
        30_000 / scale
    );
    for (runtime_name, rt) in [("current-thread", current), ("multi-thread", multi)] {
        for value_size in [10usize, 1024] {
            let label = format!("{runtime_name}, {value_size} B");
            let original = best(rt, Subject::Original, rounds, 1, 30_000 / scale, value_size);
            print_row(&label, Subject::Original, &original, None);
            for &level in levels {
                let subject = Subject::Ours(level);
                let f = best(rt, subject, rounds, 1, 30_000 / scale, value_size);
                print_row(&label, subject, &f, Some(&original));
            }
        }
    }

    if !with_fsync {
        return;
    }
    println!();
    println!(
        "One producer awaiting each record, Fsync, {} records",
        3_000 / scale
    );
    for (runtime_name, rt) in [("current-thread", current), ("multi-thread", multi)] {
        let subject = Subject::Ours(Durability::Fsync);
        let f = best(rt, subject, rounds, 1, 3_000 / scale, 100);
        print_row(&format!("{runtime_name}, 100 B"), subject, &f, None);
    }
}

/// A topic's history of `records` records of 100 B read back from offset 0 on a
/// current-thread runtime, by the original and by ours, each from a log it wrote itself:
/// the best of `rounds` reads of records/s.
fn history(rt: &Runtime, rounds: usize, records: u64) {
    println!("A topic's history of {records} records of 100 B read back through a subscription (current-thread runtime)");
    let mut original_rate = None;
    for subject in [Subject::Original, Subject::Ours(Durability::Buffered)] {
        let dir = tempfile::tempdir().expect("temporary folder");
        let log = subject.open(dir.path());
        rt.block_on(async {
            let value = [b'x'; 100];
            for key in 0..records {
                log.produce(key, &value).await;
            }
            // The original acknowledges records still in its buffer: wait until all are
            // there before reading.
            let deadline = Instant::now() + Duration::from_secs(30);
            while log.end_offset().await != Some(records - 1) {
                assert!(Instant::now() < deadline, "{} never held every record", subject.name());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let best = (0..rounds)
            .map(|_| rt.block_on(log.consume(records)))
            .min()
            .expect("at least one round");
        let rate = records as f64 / best.as_secs_f64();
        let ratio = match original_rate {
            Some(original) => format!("{:>6.2}x", rate / original),
            None => {
                original_rate = Some(rate);
                "       ".to_string()
            }
        };
        println!(
            "{:<34} {:<26} {:>12.0} rec/s {ratio}",
            "history, 100 B",
            subject.name(),
            rate
        );
    }
}

/// The disk's bound for synced appends: bytes per second of 64 KiB blocks appended to a
/// file, each followed by `fdatasync`, in the same folder as the logs above.
fn synced_sequential_write(blocks: usize) -> f64 {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut file = std::fs::File::create(dir.path().join("disk")).expect("file");
    let block = vec![0x5au8; 64 * 1024];
    let started = Instant::now();
    for _ in 0..blocks {
        file.write_all(&block).expect("write");
        file.sync_data().expect("sync");
    }
    (blocks * block.len()) as f64 / started.elapsed().as_secs_f64()
}
