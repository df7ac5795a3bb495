//! Forwarding for real, under the faults a farm's link and power bring: 10,000 records
//! forwarded by the `streambed-forward` program from a `FileLog` into a Kafka-compatible
//! broker (tansu, really started) while the program is killed with SIGKILL and restarted
//! twice and the broker is frozen (SIGSTOP) and thawed (SIGCONT) once. A client of the
//! broker then sees every record, in order, and after dropping duplicates by their origin
//! headers, exactly once. Two clients check: streambed's own, and kafka-python (PyPI),
//! which shares no code with streambed.
//!
//! The figures (records/s while healthy, duplicates after each kill) are printed; run with
//! `--nocapture` to see them.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use streambed::commit_log::{CommitLog, Topic};
use streambed_forward::{Deduplicator, Origin, PositionFile};
use streambed_kafka_native::KafkaNativeCommitLog;
use streambed_logged::FileLog;
use streambed_test::{
    process::slowdown,
    records::{read_topic, record},
    tansu::Tansu,
};

const PROGRAM: &str = env!("CARGO_BIN_EXE_streambed-forward");
const RECORDS: u64 = 10_000;
const TOPIC: &str = "farm:readings";

fn value(key: u64) -> Vec<u8> {
    format!("reading {key}").into_bytes()
}

fn start_forwarder(root: &Path, positions: &Path, broker: &Tansu, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    streambed_test::process::command(PROGRAM)
        .arg(format!("--from=file:{}", root.display()))
        .arg(format!("--to=kafka://{}", broker.address()))
        .args(["--topic", TOPIC, "--source-id", "router-7"])
        .arg("--positions")
        .arg(positions)
        // Small batches, so that kills land mid-stream.
        .args(["--max-batch", "20", "--kafka-create-topics"])
        .args(["--kafka-request-deadline", "2s"])
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Records the broker holds for the topic (duplicates included).
async fn held(cluster: &KafkaNativeCommitLog) -> u64 {
    cluster
        .offsets(Topic::from(TOPIC), 0)
        .await
        .map_or(0, |offsets| offsets.end_offset + 1)
}

/// Waits until the broker holds at least `count` records; fails after a minute.
async fn wait_for_held(cluster: &KafkaNativeCommitLog, count: u64, log: &Path) -> Duration {
    let started = Instant::now();
    let patience = Duration::from_secs(60) * slowdown();
    loop {
        if held(cluster).await >= count {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < patience,
            "the broker never held {count} records; the forwarder said:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What kafka-python reads of a (Kafka) topic: per record its offset, key and origin
/// offset, having checked its origin and value.
fn read_with_kafka_python(broker: &Tansu, topic: &str) -> Vec<(u64, u64, u64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_python_reader.py");
    let output = Command::new("python3")
        .arg(script)
        .args([&broker.address(), topic])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "kafka-python could not read the topic (`pip install kafka-python`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, ' ').collect();
            let number = |index: usize| fields[index].parse::<u64>().unwrap();
            assert_eq!(fields[2], "router-7", "{line}");
            assert_eq!(fields[4].as_bytes(), value(number(1)), "{line}");
            (number(0), number(1), number(3))
        })
        .collect()
}

fn kill(mut forwarder: Child) {
    forwarder.kill().unwrap();
    forwarder.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_arrive_in_order_and_once_after_dedup_despite_kills_and_a_frozen_broker(
) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("router");
    let positions = dir.path().join("forward.positions");
    let log = dir.path().join("forward.log");
    let source = FileLog::new(&root);
    for first in (0..RECORDS).step_by(1000) {
        let batch = (first..first + 1000)
            .map(|key| record(TOPIC, key, value(key)))
            .collect();
        source.produce_all(batch).await.unwrap();
    }
    drop(source);

    let broker = Tansu::start();
    let cluster = KafkaNativeCommitLog::new([broker.address()]);
    let started = Instant::now();

    // Healthy until 2,000, then the first kill.
    let mut forwarder = start_forwarder(&root, &positions, &broker, &log);
    let healthy = wait_for_held(&cluster, 2_000, &log).await;
    kill(forwarder);
    // Where the broker's log stood at each fault: what is resent after it lands after.
    let mut faults = vec![("first kill", held(&cluster).await)];
    forwarder = start_forwarder(&root, &positions, &broker, &log);

    wait_for_held(&cluster, 5_000, &log).await;
    kill(forwarder);
    faults.push(("second kill", held(&cluster).await));
    forwarder = start_forwarder(&root, &positions, &broker, &log);

    // The broker stops answering for a while, then comes back.
    wait_for_held(&cluster, 6_000, &log).await;
    faults.push(("freeze", held(&cluster).await));
    broker.freeze();
    let file = PositionFile::new(&positions);
    assert_ne!(
        file.load().unwrap().last(&Topic::from(TOPIC), 0),
        Some(RECORDS - 1),
        "forwarding finished before the broker froze: the freeze tested nothing"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.thaw();

    // Done when the forwarder has stored the position of the last record.
    let patience = Duration::from_secs(120) * slowdown();
    while file.load().unwrap().last(&Topic::from(TOPIC), 0) != Some(RECORDS - 1) {
        assert!(
            started.elapsed() < patience,
            "forwarding never finished; the forwarder said:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    kill(forwarder);

    let read = read_topic(&cluster, TOPIC, Duration::from_secs(2) * slowdown()).await;
    let mut seen = Deduplicator::default();
    let mut once = Vec::with_capacity(RECORDS as usize);
    let mut duplicates_after = vec![0u64; faults.len()];
    for record in &read {
        let origin = Origin::of(record).expect("every forwarded record names its origin");
        assert_eq!(origin.source, "router-7");
        assert_eq!(
            record.key, origin.offset,
            "the record's key is its source offset"
        );
        assert_eq!(record.value, value(record.key));
        if seen.is_new(record) {
            once.push(origin.offset);
        } else {
            let fault = faults
                .iter()
                .rposition(|&(_, at)| record.offset >= at)
                .expect("no duplicate before the first fault");
            duplicates_after[fault] += 1;
        }
    }
    // Every record, in order, exactly once after de-duplication.
    assert_eq!(once, (0..RECORDS).collect::<Vec<_>>());
    let duplicates = read.len() as u64 - RECORDS;
    assert_eq!(
        read_with_kafka_python(&broker, "farm.readings"),
        read.iter()
            .map(|record| (
                record.offset,
                record.key,
                Origin::of(record).unwrap().offset
            ))
            .collect::<Vec<_>>(),
        "kafka-python reads what streambed's client reads"
    );

    let after: Vec<String> = faults
        .iter()
        .zip(&duplicates_after)
        .map(|((fault, _), count)| format!("{count} after the {fault}"))
        .collect();
    println!(
        "forwarded {RECORDS} records in {:.2} s with 2 kills and a 3 s freeze; healthy: {:.0} \
         records/s (the first 2,000, process start included); duplicates: {duplicates} ({})",
        elapsed.as_secs_f64(),
        2_000.0 / healthy.as_secs_f64(),
        after.join(", "),
    );
}
