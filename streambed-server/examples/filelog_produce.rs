//! The `FileLog`'s own produce throughput, the yardstick for the server's batched produce
//! in `scripts/server-speed`, on a multi-thread runtime: records appended one at a time
//! (each awaited before the next) by one producer and by as many concurrent producers as
//! the load generator has connections; then 100 records a call of `produce_all`, as the
//! server appends a request's records, by as many producers.
//!
//! ```sh
//! cargo run --release -p streambed-server --example filelog_produce -- SECONDS [PRODUCERS]
//! ```
//!
//! The record is the one the script posts: topic `load`, key 1, value `21.5`, no headers.
//! It prints one line per measure, ending with the rate in records/s.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
use streambed_logged::FileLog;

fn record(topic: &Topic) -> ProducerRecord {
    ProducerRecord {
        topic: topic.clone(),
        headers: Vec::new(),
        timestamp: None,
        key: 1,
        value: b"21.5".to_vec(),
        partition: 0,
    }
}

/// Appends records to `topic` for `duration`, `batch` a call (one at a time with
/// `produce` when 1, otherwise with `produce_all`); how many it appended.
async fn produce_for(log: FileLog, topic: Topic, batch: usize, duration: Duration) -> u64 {
    let start = Instant::now();
    let mut appended = 0;
    while start.elapsed() < duration {
        if batch == 1 {
            for _ in 0..100 {
                log.produce(record(&topic)).await.expect("produce");
                appended += 1;
            }
        } else {
            // Made for every call, as the server parses every request's records anew.
            let records = (0..batch).map(|_| record(&topic)).collect();
            let offsets = log.produce_all(records).await.expect("produce_all");
            appended += offsets.len() as u64;
        }
    }
    appended
}

/// Records/s of `producers` concurrent producers to one topic of a new log under `root`,
/// `batch` records a call.
async fn measure(
    root: &std::path::Path,
    producers: usize,
    batch: usize,
    duration: Duration,
) -> f64 {
    let log = FileLog::new(root.join(format!("{producers}-{batch}")));
    let topic = Topic::from("load");
    let start = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|_| tokio::spawn(produce_for(log.clone(), topic.clone(), batch, duration)))
        .collect();
    let mut appended = 0;
    for task in tasks {
        appended += task.await.expect("producer task");
    }
    appended as f64 / start.elapsed().as_secs_f64()
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let seconds = args.next().and_then(|s| s.parse::<u64>().ok());
    let producers = args.next().map_or(Some(64), |p| p.parse::<usize>().ok());
    let (Some(seconds), Some(producers)) = (seconds, producers) else {
        eprintln!("usage: filelog_produce SECONDS [PRODUCERS]");
        return ExitCode::from(2);
    };
    let duration = Duration::from_secs(seconds);
    let root = tempfile::tempdir().expect("temporary directory");
    // The server's runtime: multi-thread, one worker per CPU.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let one = measure(root.path(), 1, 1, duration).await;
        println!("FileLog produce, 1 producer:     {one:.0} records/s");
        let many = measure(root.path(), producers, 1, duration).await;
        println!("FileLog produce, {producers} producers:    {many:.0} records/s");
        let batched = measure(root.path(), producers, 100, duration).await;
        println!("FileLog produce_all of 100, {producers} producers:    {batched:.0} records/s");
    });
    ExitCode::SUCCESS
}
