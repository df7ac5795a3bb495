//! Crash loops: a child process produces in `Durability::Fsync` and is killed with SIGKILL
//! at a random moment, again and again on the same log, which is checked after every kill.
//! One kill tests one moment; hundreds of them land in writes, fsyncs, recovery of the
//! previous crash's torn tail and, with compaction, in every step of aging and compacting.
//!
//! Checked after each kill: every record the child acknowledged is there (unless, with
//! compaction, a later record of its key that is there supersedes it), offsets rise
//! strictly, and an offset holds the record that was acknowledged with it (never one
//! given out again). `offsets()` agrees with what a subscriber reads.
//!
//! `CRASH_LOOPS` sets the number of kills per test (200 by default), `CRASH_LOOPS_SEED`
//! the seed of the kill moments (printed by every run).
//!
//! The harness is our own: the same binary runs as the child when `CRASH_CHILD` says so.

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    os::unix::process::ExitStatusExt,
    process::Stdio,
    time::{Duration, Instant},
};

use streambed::commit_log::{CommitLog, ConsumerRecord, ProducerRecord, Subscription, Topic};
use streambed_logged::{compaction::KeyBasedRetention, Durability, FileLog};
use streambed_test::harness::Harness;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};
use tokio_stream::StreamExt;

const TOPIC: &str = "t";
/// Keys the child cycles through, so that compaction has records to drop.
const KEYS: u64 = 8;
/// Longer than any wait a correct log makes us do, even on a loaded machine.
const GUARD: Duration = Duration::from_secs(30);

fn main() {
    Harness::new("CRASH_CHILD")
        .child("plain", || child(false))
        .child("compacting", || child(true))
        .test(
            "fsync_acknowledged_records_survive_repeated_sigkill",
            || crash_loop(false),
        )
        .test(
            "fsync_acknowledged_records_survive_repeated_sigkill_while_compacting",
            || crash_loop(true),
        )
        .run();
}

fn log_at(root: &str, compacting: bool) -> FileLog {
    if compacting {
        // Records of about 60 bytes: the active file ages every 30 or so.
        FileLog::with_config(root, 2048, 1024, 1024, 1024, 1024)
    } else {
        FileLog::new(root)
    }
}

/// Produces to the topic from four tasks in fsync mode, printing `offset value` for each
/// acknowledged record, until killed.
async fn child(compacting: bool) {
    let root = std::env::var("CRASH_ROOT").unwrap();
    let generation = std::env::var("CRASH_GENERATION").unwrap();
    let mut log = log_at(&root, compacting).with_durability(Durability::Fsync);
    if compacting {
        log.register_compaction(Topic::from(TOPIC), KeyBasedRetention::new(100))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for task in 0..4u64 {
        let log = log.clone();
        let generation = generation.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let value = format!("{generation}:{task}:{i}:padding-to-make-records-longer");
                let record = ProducerRecord {
                    topic: Topic::from(TOPIC),
                    headers: vec![],
                    timestamp: None,
                    key: i % KEYS,
                    value: value.clone().into_bytes(),
                    partition: 0,
                };
                let offset = match log.produce(record).await {
                    Ok(produced) => produced.offset,
                    Err(e) => {
                        // Not a kill: the parent must see this child fail.
                        eprintln!("produce failed: {e}");
                        std::process::exit(3);
                    }
                };
                let mut out = std::io::stdout().lock();
                writeln!(out, "{offset} {value}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A small xorshift generator: the kill moments only need to vary, and be repeatable
/// from the printed seed.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, from: u64, to: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        from + self.0 % (to - from)
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Starts a child producing into the log at `root` as generation `generation`.
fn spawn_child(root: &str, compacting: bool, generation: u64) -> tokio::process::Child {
    Command::from(streambed_test::process::this_test_binary())
        .env(
            "CRASH_CHILD",
            if compacting { "compacting" } else { "plain" },
        )
        .env("CRASH_ROOT", root)
        .env("CRASH_GENERATION", generation.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Time a child takes natively to acknowledge its first record, with room to spare.
const NATIVE_FIRST_ACKNOWLEDGEMENT: Duration = Duration::from_millis(20);

/// How many times slower than natively a child starts here, never below 1: the time it
/// takes to acknowledge its first record (on a log of its own) over
/// [`NATIVE_FIRST_ACKNOWLEDGEMENT`]. Under an emulator (`scripts/edge-test`) a child starts
/// tens of times slower; the kill moments stretch by this factor, so that they still land
/// across start-up, recovery and writing rather than all before the first acknowledgement.
async fn slowdown(compacting: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = spawn_child(dir.path().to_str().unwrap(), compacting, 0);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(GUARD, lines.next_line()).await;
    let took = started.elapsed();
    assert!(
        matches!(first, Ok(Ok(Some(_)))),
        "a child acknowledged nothing in {took:?}"
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;
    (took.as_secs_f64() / NATIVE_FIRST_ACKNOWLEDGEMENT.as_secs_f64()).max(1.0)
}

/// Runs the child once, kills it after `delay`, and answers what it acknowledged.
async fn run_child(root: &str, compacting: bool, generation: u64, delay: Duration) -> Vec<String> {
    let mut child = spawn_child(root, compacting, generation);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let reader = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            acknowledged.push(line);
        }
        acknowledged
    });
    tokio::time::sleep(delay).await;
    // SIGKILL: no destructor, no flush runs in the child.
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the child ended by itself before it was killed: {status}"
    );
    tokio::time::timeout(GUARD, reader)
        .await
        .expect("the child's output never ended")
        .unwrap()
}

/// Reads the whole topic as a fresh reader in another process would.
async fn read_topic(root: &str, compacting: bool) -> Vec<ConsumerRecord> {
    let log = log_at(root, compacting);
    let Some(offsets) = log.offsets(Topic::from(TOPIC), 0).await else {
        return vec![];
    };
    let subscriptions = vec![Subscription {
        topic: Topic::from(TOPIC),
    }];
    let mut stream = log.scoped_subscribe("check", vec![], subscriptions, None);
    let mut read: Vec<ConsumerRecord> = Vec::new();
    while read.last().is_none_or(|r| r.offset < offsets.end_offset) {
        match tokio::time::timeout(GUARD, stream.next()).await {
            Ok(Some(record)) => read.push(record),
            _ => panic!(
                "offsets() says the topic ends at {}, a subscriber stopped after {:?}",
                offsets.end_offset,
                read.last().map(|r| r.offset)
            ),
        }
    }
    assert_eq!(read[0].offset, offsets.beginning_offset, "beginning offset");
    assert_eq!(
        read.last().unwrap().offset,
        offsets.end_offset,
        "end offset"
    );
    read
}

/// The record key the child gave the value (`generation:task:i:…`).
fn key_of(value: &str) -> u64 {
    let i: u64 = value.split(':').nth(2).unwrap().parse().unwrap();
    i % KEYS
}

async fn crash_loop(compacting: bool) {
    let kills = env_number("CRASH_LOOPS").unwrap_or(200);
    let seed = env_number("CRASH_LOOPS_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_nanos() as u64) | 1
    });
    let name = if compacting {
        "while compacting"
    } else {
        "plain"
    };
    let slowdown = slowdown(compacting).await;
    println!(
        "crash loop ({name}): {kills} kills, CRASH_LOOPS_SEED={seed}, children start \
         {slowdown:.1}x as slowly as natively"
    );
    let mut moments = Moments(seed);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_owned();
    let started = Instant::now();
    // Every acknowledged record: offset → value.
    let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
    let mut silent_kills = 0;
    let mut mid_compaction_kills = 0;
    let mut highest_read = None;
    for generation in 0..kills {
        let delay = Duration::from_millis(moments.next_ms(3, 60)).mul_f64(slowdown);
        let lines = run_child(&root, compacting, generation, delay).await;
        if lines.is_empty() {
            silent_kills += 1;
        }
        if ["ancient_history", "work"]
            .iter()
            .any(|s| dir.path().join(format!("{TOPIC}.{s}")).exists())
        {
            mid_compaction_kills += 1;
        }
        for line in lines {
            let (offset, value) = line.split_once(' ').unwrap();
            let offset: u64 = offset.parse().unwrap();
            assert!(
                highest_read.is_none_or(|h| offset > h),
                "generation {generation}: offset {offset} given out again (the log held \
                 up to {highest_read:?})"
            );
            if let Some(before) = acknowledged.insert(offset, value.to_owned()) {
                panic!("offset {offset} acknowledged twice: {before} and {value}");
            }
        }

        let read = read_topic(&root, compacting).await;
        for pair in read.windows(2) {
            assert!(
                pair[0].offset < pair[1].offset,
                "generation {generation}: offset {} read after {}",
                pair[1].offset,
                pair[0].offset
            );
        }
        let mut latest_read_of_key: HashMap<u64, u64> = HashMap::new();
        for r in &read {
            if let Some(value) = acknowledged.get(&r.offset) {
                assert_eq!(
                    String::from_utf8_lossy(&r.value),
                    value.as_str(),
                    "generation {generation}: offset {} holds another record than the one \
                     acknowledged with it",
                    r.offset
                );
            }
            latest_read_of_key.insert(r.key, r.offset);
        }
        let held: std::collections::HashSet<u64> = read.iter().map(|r| r.offset).collect();
        for (offset, value) in &acknowledged {
            let superseded = compacting
                && latest_read_of_key
                    .get(&key_of(value))
                    .is_some_and(|latest| latest > offset);
            assert!(
                held.contains(offset) || superseded,
                "generation {generation}: acknowledged record {offset} ({value}) is lost"
            );
        }
        highest_read = read.last().map(|r| r.offset).max(highest_read);
    }
    let elapsed = started.elapsed();
    let on_disk = read_topic(&root, compacting).await.len();
    println!(
        "crash loop ({name}): {kills} kills in {:.1} s, {} records acknowledged, {} kills \
         before the first acknowledgement, {mid_compaction_kills} with a compaction \
         unfinished, {on_disk} records on disk at the end",
        elapsed.as_secs_f64(),
        acknowledged.len(),
        silent_kills
    );
    assert!(
        silent_kills <= kills / 2,
        "too few children acknowledged anything for the loop to mean something"
    );
}
