//! Fault injection: writes that fail because a file may grow no more (`RLIMIT_FSIZE`), the
//! folder is read-only, the file system is full, or no file descriptor is left. Each must
//! make `produce` fail without losing or half-showing a record, and producing must work
//! again, with offsets that never repeat, once the cause is gone.
//!
//! Resource limits apply to a whole process, so those cases run in a child: this same
//! binary, with `LOGGED_FAULT_CHILD` naming its role, reporting on stdout. The tmpfs cases
//! need root; see `streambed_test::faults::Tmpfs::mount_or_skip` for what happens without.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use streambed::commit_log::{CommitLog, ConsumerRecord, ProducerRecord, Subscription, Topic};
use streambed_logged::{Durability, FileLog};
use streambed_test::{
    faults::{self, Limit, Tmpfs},
    harness::{self, Harness},
};
use tokio_stream::StreamExt;

/// The child role variable; its value names the role.
const CHILD: &str = "LOGGED_FAULT_CHILD";
/// The child's log folder.
const CHILD_ROOT: &str = "LOGGED_FAULT_ROOT";
/// Concurrent producers, so that failures also hit batches of several records.
const PRODUCERS: u64 = 4;
/// The key of the record produced once the fault is gone.
const AFTER_KEY: u64 = u64::MAX;
/// Times the file size limit is lowered and lifted again.
const ROUNDS: u64 = 20;
/// How long the descriptor exhaustion lasts while producers keep retrying, and the pause
/// between their attempts, natively; both stretch under an emulator
/// (`streambed_test::process::slowdown`).
const FAILING_FOR: Duration = Duration::from_secs(2);
const RETRY_PAUSE: Duration = Duration::from_millis(20);

fn main() {
    Harness::new(CHILD)
        .child("fsize", child_file_size_limit)
        .child("nofile", child_out_of_descriptors)
        .test(
            "a_file_size_limit_fails_produce_and_loses_nothing_acknowledged",
            a_file_size_limit_fails_produce_and_loses_nothing_acknowledged,
        )
        .test(
            "a_read_only_folder_fails_produce_until_it_is_writable_again",
            a_read_only_folder_fails_produce_until_it_is_writable_again,
        )
        .test(
            "a_full_file_system_fails_produce_and_loses_nothing_acknowledged",
            a_full_file_system_fails_produce_and_loses_nothing_acknowledged,
        )
        .test(
            "a_subscriber_that_read_part_of_a_cut_off_tail_reads_what_replaced_it",
            a_subscriber_that_read_part_of_a_cut_off_tail_reads_what_replaced_it,
        )
        .test(
            "running_out_of_descriptors_fails_produce_without_spinning_and_recovers",
            running_out_of_descriptors_fails_produce_without_spinning_and_recovers,
        )
        .run();
}

fn value_of(key: u64) -> Vec<u8> {
    // 200 bytes that say which key they belong to, so a mixed-up record is noticed.
    key.to_le_bytes()
        .iter()
        .copied()
        .cycle()
        .take(200)
        .collect()
}

fn record(topic: &str, key: u64) -> ProducerRecord {
    streambed_test::records::record(topic, key, value_of(key))
}

/// Produces from [`PRODUCERS`] tasks until each has had one failure, then one record at a
/// time until one fails (the room a failed batch left may still hold a single record);
/// answers the acknowledged `(offset, key)` pairs.
async fn produce_until_failure(log: &FileLog, topic: &str) -> Vec<(u64, u64)> {
    let mut tasks = Vec::new();
    for task in 0..PRODUCERS {
        let log = log.clone();
        let topic = topic.to_string();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let key = task * 1_000_000 + i;
                match log.produce_with_cause(record(&topic, key)).await {
                    Ok(o) => acked.push((o.offset, key)),
                    Err(_) => break,
                }
                assert!(i < 100_000, "the fault never came");
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    for key in PRODUCERS * 1_000_000.. {
        match log.produce_with_cause(record(topic, key)).await {
            Ok(o) => acked.push((o.offset, key)),
            Err(_) => break,
        }
        assert!(key < PRODUCERS * 1_000_000 + 100, "the fault went away");
    }
    acked.sort_unstable();
    acked
}

/// Every record of `topic` under `root`, read by a log opened afresh.
async fn read_back(root: &Path, topic: &str) -> Vec<ConsumerRecord> {
    let log = FileLog::new(root);
    streambed_test::records::read_topic(&log, topic, Duration::from_millis(500)).await
}

/// Checks that the topic holds exactly `acked`: offsets from 0 without gap or repeat, each
/// with the key acknowledged for it and that key's value. No failed produce shows.
async fn assert_holds_exactly(root: &Path, topic: &str, acked: &[(u64, u64)]) {
    let records = read_back(root, topic).await;
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        (0..records.len() as u64).collect::<Vec<_>>(),
        "offsets are not 0, 1, 2, ..."
    );
    for r in &records {
        assert_eq!(r.value, value_of(r.key), "record {} is damaged", r.offset);
    }
    let read: BTreeMap<u64, u64> = records.iter().map(|r| (r.offset, r.key)).collect();
    let expected: BTreeMap<u64, u64> = acked.iter().copied().collect();
    assert_eq!(
        expected.len(),
        acked.len(),
        "an offset was acknowledged twice"
    );
    let lost: Vec<_> = expected
        .iter()
        .filter(|(o, k)| read.get(o) != Some(k))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not read back: {lost:?}");
    let unacknowledged: Vec<_> = read
        .iter()
        .filter(|(o, _)| !expected.contains_key(o))
        .collect();
    assert!(
        unacknowledged.is_empty(),
        "read back but never acknowledged: {unacknowledged:?}"
    );
}

/// A subscriber that follows `topic` while it is produced to, until the record with
/// [`AFTER_KEY`]; answers the `(offset, key)` of every record it saw.
fn watch_live(log: &FileLog, topic: &str) -> tokio::task::JoinHandle<Vec<(u64, u64)>> {
    let log = log.clone();
    let subscriptions = vec![Subscription {
        topic: Topic::from(topic),
    }];
    tokio::spawn(async move {
        let mut records = log.scoped_subscribe("live", vec![], subscriptions, None);
        let mut seen = Vec::new();
        while let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(5), records.next()).await {
            seen.push((r.offset, r.key));
            if r.key == AFTER_KEY {
                break;
            }
        }
        seen
    })
}

/// Checks that a live subscriber saw acknowledged records only, in order: a failed write
/// that was momentarily in the file must not have reached it (its offset is reused).
fn assert_seen_only_acknowledged(seen: &[(u64, u64)], acked: &[(u64, u64)]) {
    assert_eq!(
        seen.last().map(|(_, k)| *k),
        Some(AFTER_KEY),
        "the live subscriber stopped early; it saw {} records, the last {:?}",
        seen.len(),
        &seen[seen.len().saturating_sub(5)..]
    );
    let acked: BTreeSet<(u64, u64)> = acked.iter().copied().collect();
    let unacknowledged: Vec<_> = seen.iter().filter(|r| !acked.contains(r)).collect();
    assert!(
        unacknowledged.is_empty(),
        "a live subscriber saw records that were never acknowledged: {unacknowledged:?}"
    );
    assert_eq!(
        seen.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (0..seen.len() as u64).collect::<Vec<_>>(),
        "a live subscriber saw a gap or a repeat"
    );
}

// ---- RLIMIT_FSIZE ----

/// The child: produces under a 64 KiB file size limit until every producer failed, checks
/// that producing still fails, lifts the limit, produces once more.
async fn child_file_size_limit() {
    faults::ignore_file_size_signal();
    faults::set_soft_limit(Limit::FileSize, Some(64 * 1024)).unwrap();
    let log = FileLog::new(std::env::var(CHILD_ROOT).unwrap());
    for (offset, key) in produce_until_failure(&log, "t").await {
        println!("ack {offset} {key}");
    }
    match log.produce_with_cause(record("t", AFTER_KEY - 1)).await {
        Ok(o) => println!("unexpectedly-produced {}", o.offset),
        Err(e) => println!("still-failing {e}"),
    }
    faults::set_soft_limit(Limit::FileSize, None).unwrap();
    match log.produce_with_cause(record("t", AFTER_KEY)).await {
        Ok(o) => println!("after {} {AFTER_KEY}", o.offset),
        Err(e) => println!("not-recovered {e}"),
    }
    // Again and again: the first produce after the fault clears must never meet the
    // writer that failed.
    let file = Path::new(&std::env::var(CHILD_ROOT).unwrap()).join("t");
    for round in 0..ROUNDS {
        let len = fs::metadata(&file).unwrap().len();
        faults::set_soft_limit(Limit::FileSize, Some(len)).unwrap();
        if let Ok(o) = log.produce_with_cause(record("t", AFTER_KEY - 1)).await {
            println!("unexpectedly-produced {}", o.offset);
        }
        faults::set_soft_limit(Limit::FileSize, None).unwrap();
        let key = 10_000_000 + round;
        match log.produce_with_cause(record("t", key)).await {
            Ok(o) => println!("after {} {key}", o.offset),
            Err(e) => println!("not-recovered {e}"),
        }
    }
}

fn run_child(role: &str, root: &Path) -> Vec<String> {
    harness::child_lines(CHILD, role, [(CHILD_ROOT, root)])
}

fn pairs(lines: &[String], tag: &str) -> Vec<(u64, u64)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(tag))
        .map(|rest| {
            let (o, k) = rest.trim().split_once(' ').unwrap();
            (o.parse().unwrap(), k.parse().unwrap())
        })
        .collect()
}

async fn a_file_size_limit_fails_produce_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_child("fsize", dir.path());
    let acked = pairs(&lines, "ack ");
    assert!(acked.len() > 100, "too few acknowledged: {lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("still-failing")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("unexpectedly-produced")),
        "{lines:?}"
    );
    let after = pairs(&lines, "after ");
    assert_eq!(
        after.len(),
        1 + ROUNDS as usize,
        "a produce failed after the limit was lifted: {lines:?}"
    );
    let last_acked = acked.iter().map(|(o, _)| *o).max().unwrap();
    assert_eq!(
        after.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (last_acked + 1..=last_acked + 1 + ROUNDS).collect::<Vec<_>>(),
        "an offset repeats or was skipped"
    );
    println!(
        "  file size limit: {} records acknowledged, all read back; next offset {}",
        acked.len(),
        after[0].0
    );
    let all: Vec<_> = acked.iter().chain(&after).copied().collect();
    assert_holds_exactly(dir.path(), "t", &all).await;
}

// ---- read-only folder ----

/// A folder that can be made read-only: by permission bits for an ordinary user, by a
/// read-only remount for root (whom permission bits do not stop).
enum ReadOnlyDir {
    Bits(tempfile::TempDir),
    Mount(Tmpfs),
}

impl ReadOnlyDir {
    fn new() -> Option<Self> {
        if faults::is_root() {
            let test = "a_read_only_folder_fails_produce_until_it_is_writable_again";
            Tmpfs::mount_or_skip(4 * 1024 * 1024, 0o755, test).map(Self::Mount)
        } else {
            Some(Self::Bits(tempfile::tempdir().unwrap()))
        }
    }

    fn path(&self) -> PathBuf {
        match self {
            Self::Bits(dir) => dir.path().join("log"),
            Self::Mount(fs) => fs.path().join("log"),
        }
    }

    fn set_read_only(&self, read_only: bool) {
        match self {
            Self::Bits(_) => {
                use std::os::unix::fs::PermissionsExt;
                // The files too: a folder's bits stop only creating and removing.
                let (dir_mode, file_mode) = if read_only {
                    (0o555, 0o444)
                } else {
                    (0o755, 0o644)
                };
                for entry in fs::read_dir(self.path()).unwrap() {
                    let file = entry.unwrap().path();
                    fs::set_permissions(file, fs::Permissions::from_mode(file_mode)).unwrap();
                }
                fs::set_permissions(self.path(), fs::Permissions::from_mode(dir_mode)).unwrap();
            }
            Self::Mount(fs) => {
                // The closed writer lets go of its file a moment later: busy till then.
                let deadline = Instant::now() + Duration::from_secs(5);
                while let Err(e) = fs.set_read_only(read_only) {
                    assert!(Instant::now() < deadline, "cannot remount: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

async fn a_read_only_folder_fails_produce_until_it_is_writable_again() {
    let Some(dir) = ReadOnlyDir::new() else {
        return;
    };
    {
        let mut log = FileLog::new(dir.path());
        let mut acked = Vec::new();
        for key in 0..10 {
            acked.push((log.produce(record("t", key)).await.unwrap().offset, key));
        }
        log.close_topic(&Topic::from("t"));
        drop(log);
        dir.set_read_only(true);

        let mut log = FileLog::new(dir.path());
        for key in 10..13 {
            let produced = log.produce_with_cause(record("t", key)).await;
            assert!(produced.is_err(), "produced into a read-only folder");
        }
        let new_topic = log.produce_with_cause(record("new", 0)).await;
        assert!(new_topic.is_err(), "created a topic in a read-only folder");
        assert_holds_exactly(&dir.path(), "t", &acked).await;

        dir.set_read_only(false);
        let after = log.produce(record("t", AFTER_KEY)).await.unwrap().offset;
        assert_eq!(after, 10, "an offset repeats or was skipped");
        acked.push((after, AFTER_KEY));
        assert_eq!(log.produce(record("new", 0)).await.unwrap().offset, 0);
        // Writers hold their files until closed, and the folder is unmounted at the end.
        log.close_topic(&Topic::from("t"));
        log.close_topic(&Topic::from("new"));
        drop(log);
        assert_holds_exactly(&dir.path(), "t", &acked).await;
    }
}

// ---- full file system ----

async fn a_full_file_system_fails_produce_and_loses_nothing_acknowledged() {
    for durability in [Durability::Buffered, Durability::Fsync] {
        let test = "a_full_file_system_fails_produce_and_loses_nothing_acknowledged";
        let Some(fs) = Tmpfs::mount_or_skip(1024 * 1024, 0o755, test) else {
            return;
        };
        let root = fs.path().join("log");
        // Room that can be given back once the log has filled the rest.
        let filler = fs.path().join("filler");
        fs::write(&filler, vec![0u8; 256 * 1024]).unwrap();
        {
            let mut log = FileLog::new(&root).with_durability(durability);
            let live = watch_live(&log, "t");
            let mut acked = produce_until_failure(&log, "t").await;
            assert!(acked.len() > 1000, "too few acknowledged: {}", acked.len());
            let error = log
                .produce_with_cause(record("t", AFTER_KEY - 1))
                .await
                .expect_err("produced into a full file system");
            assert!(
                error.to_string().contains("No space left"),
                "not the full disk: {error}"
            );
            // Readable while still full.
            assert_holds_exactly(&root, "t", &acked).await;

            fs::remove_file(&filler).unwrap();
            let last_acked = acked.iter().map(|(o, _)| *o).max().unwrap();
            let after = log.produce(record("t", AFTER_KEY)).await.unwrap().offset;
            assert_eq!(after, last_acked + 1, "an offset repeats or was skipped");
            acked.push((after, AFTER_KEY));
            let seen = live.await.unwrap();
            assert_seen_only_acknowledged(&seen, &acked);
            log.close_topic(&Topic::from("t"));
            drop(log);
            let mut reopened = FileLog::new(&root).with_durability(durability);
            let again = reopened.produce(record("t", 7)).await.unwrap().offset;
            assert_eq!(again, after + 1, "an offset repeats after reopening");
            acked.push((again, 7));
            reopened.close_topic(&Topic::from("t"));
            drop(reopened);
            println!(
                "  full file system ({durability:?}): {} records acknowledged, all read back; \
                 next offsets {after}, {again}",
                acked.len() - 2
            );
            assert_holds_exactly(&root, "t", &acked).await;
        }
    }
}

// ---- RLIMIT_NOFILE ----

/// The child: a subscriber waits on topic `u`, the descriptors run out, producers retry
/// every [`RETRY_PAUSE`] for [`FAILING_FOR`] (both longer under an emulator), then the
/// descriptors are given back.
async fn child_out_of_descriptors() {
    let log = FileLog::new(std::env::var(CHILD_ROOT).unwrap());
    log.produce(record("t", 0)).await.unwrap();
    let subscriptions = vec![Subscription {
        topic: Topic::from("u"),
    }];
    let subscriber = log.clone();
    let delivered = tokio::spawn(async move {
        let mut stream = subscriber.scoped_subscribe("waiting", vec![], subscriptions, None);
        stream.next().await.map(|r| r.offset)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let slowdown = streambed_test::process::slowdown();
    let (failing_for, pause) = (FAILING_FOR * slowdown, RETRY_PAUSE * slowdown);

    let (held, exhausted) = faults::exhaust_descriptors(256).unwrap();
    println!("exhausted {exhausted}");

    let (mut attempts, mut errors, mut existing_ok) = (0, 0, 0);
    let (cpu, started) = (faults::cpu_time(), Instant::now());
    while started.elapsed() < failing_for {
        attempts += 1;
        if log.produce_with_cause(record("u", attempts)).await.is_err() {
            errors += 1;
        }
        // A topic whose file is already open has no need of a new descriptor.
        if log.produce(record("t", attempts)).await.is_ok() {
            existing_ok += 1;
        }
        tokio::time::sleep(pause).await;
    }
    let (cpu, wall) = (faults::cpu_time() - cpu, started.elapsed());
    println!(
        "failing attempts={attempts} errors={errors} existing_ok={existing_ok} cpu_ms={} wall_ms={}",
        cpu.as_millis(),
        wall.as_millis()
    );
    drop(held);
    faults::set_soft_limit(Limit::OpenFiles, None).unwrap();
    match log.produce_with_cause(record("u", AFTER_KEY)).await {
        Ok(o) => println!("recovered {}", o.offset),
        Err(e) => println!("not-recovered {e}"),
    }
    match tokio::time::timeout(Duration::from_secs(5), delivered).await {
        Ok(Ok(Some(offset))) => println!("delivered {offset}"),
        other => println!("not-delivered {other:?}"),
    }
}

async fn running_out_of_descriptors_fails_produce_without_spinning_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_child("nofile", dir.path());
    let field = |name: &str| harness::reported(&lines, "failing ", name);
    let (attempts, errors) = (field("attempts"), field("errors"));
    let (cpu_ms, wall_ms) = (field("cpu_ms"), field("wall_ms"));
    println!(
        "  out of descriptors: {errors}/{attempts} produces failed; {cpu_ms} ms CPU in \
         {wall_ms} ms; an open topic took {} produces",
        field("existing_ok")
    );
    assert!(attempts > 10, "{lines:?}");
    assert_eq!(
        errors, attempts,
        "a produce to a new topic succeeded: {lines:?}"
    );
    assert_eq!(field("existing_ok"), attempts, "{lines:?}");
    // Spinning would use about one core, the whole wall time; paced attempts use a few
    // percent, natively and (with the longer pause) under an emulator.
    assert!(
        cpu_ms * 2 < wall_ms,
        "{cpu_ms} ms CPU in {wall_ms} ms while failing: something spins"
    );
    assert!(lines.contains(&"recovered 0".to_string()), "{lines:?}");
    assert!(lines.contains(&"delivered 0".to_string()), "{lines:?}");
    let read = BTreeSet::from_iter(
        read_back(dir.path(), "u")
            .await
            .into_iter()
            .map(|r| (r.offset, r.key)),
    );
    assert_eq!(read, BTreeSet::from([(0, AFTER_KEY)]));
}

// ---- a tail cut off under a reader ----

/// A failed write (or a crashed writer) leaves part of a record at the end of the file; a
/// subscriber reads that part and waits for the rest. The next writer cuts it off and
/// writes a different, longer record there: the subscriber must read the new record, not
/// the old part joined to the new bytes.
async fn a_subscriber_that_read_part_of_a_cut_off_tail_reads_what_replaced_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t");
    let mut log = FileLog::new(dir.path());
    log.produce(record("t", 0)).await.unwrap();
    let start = fs::metadata(&file).unwrap().len();
    log.produce(record("t", 1)).await.unwrap();
    let part = fs::read(&file).unwrap()[start as usize..start as usize + 20].to_vec();
    log.close_topic(&Topic::from("t"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
    std::io::Write::write_all(&mut f, &part).unwrap();
    drop(f);

    let subscriber = log.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reading = tokio::spawn(async move {
        let subscriptions = vec![Subscription {
            topic: Topic::from("t"),
        }];
        let mut records = subscriber.scoped_subscribe("reader", vec![], subscriptions, None);
        while let Some(r) = records.next().await {
            if tx.send((r.offset, r.key)).is_err() {
                break;
            }
        }
    });
    for expected in [(0, 0), (1, 1)] {
        assert_eq!(rx.recv().await, Some(expected));
    }
    // Let the subscriber read the part and wait for the rest of it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A longer key makes the new record longer than the one the part began.
    let offset = log.produce(record("t", AFTER_KEY)).await.unwrap().offset;
    // The cut record's offset, 2, may have been read by another process: never again.
    assert_eq!(offset, 3);
    let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(
        next.ok().flatten(),
        Some((offset, AFTER_KEY)),
        "the subscriber did not read the record that replaced the cut-off tail"
    );
    reading.abort();
}
