//! The classic workload: 30,000 records produced one at a time (each awaited), then
//! consumed from the start by a new subscriber; with 10-byte and 1 KiB values. A
//! single-threaded runtime (as on a single-core device) unless the name says otherwise.
//!
//! `cargo bench -p streambed-logged --bench logged`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use streambed::commit_log::{CommitLog, ProducerRecord};
use streambed_logged::FileLog;

const RECORDS: u64 = 30_000;

fn record(value_size: usize, key: u64) -> ProducerRecord {
    streambed_test::records::record("bench", key, vec![b'x'; value_size])
}

async fn produce_all(log: &FileLog, value_size: usize) {
    for key in 0..RECORDS {
        log.produce(record(value_size, key)).await.unwrap();
    }
}

async fn consume_all(log: &FileLog) {
    let n = streambed_test::records::count_first(log, "bench", RECORDS).await;
    assert_eq!(n, RECORDS);
}

fn bench_value_size(c: &mut Criterion, name: &str, value_size: usize) {
    let rt = streambed_test::runtime::current_thread();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(RECORDS));

    let multi = streambed_test::runtime::two_workers();
    for (name, runtime) in [("produce", &rt), ("produce (2-thread runtime)", &multi)] {
        group.bench_function(name, |b| {
            b.iter_with_setup(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    runtime.block_on(produce_all(&FileLog::new(dir.path()), value_size));
                    dir
                },
            )
        });
    }

    // As services run: the producer is a task on the runtime's workers, not the thread
    // that called `block_on` (which makes every hand-over a cross-thread wake-up).
    group.bench_function("produce (2-thread runtime, producer task)", |b| {
        b.iter_with_setup(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let log = FileLog::new(dir.path());
                multi.block_on(async move {
                    tokio::spawn(async move { produce_all(&log, value_size).await })
                        .await
                        .unwrap()
                });
                dir
            },
        )
    });

    let dir = tempfile::tempdir().unwrap();
    rt.block_on(produce_all(&FileLog::new(dir.path()), value_size));
    group.bench_function("consume", |b| {
        b.iter(|| rt.block_on(consume_all(&FileLog::new(dir.path()))))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_value_size(c, "10-byte values", 10);
    bench_value_size(c, "1 KiB values", 1024);
}

criterion_group!(logged, benches);
criterion_main!(logged);
