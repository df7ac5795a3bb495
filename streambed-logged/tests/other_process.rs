//! Tests across processes: a reader in another process tails what this one writes (woken
//! by inotify on Linux), and a writer killed with SIGKILL leaves a log that reopens with
//! every record it acknowledged in fsync mode.
//!
//! The harness is `streambed_test::harness`: the same binary runs as the child when
//! `LOGGED_CHILD` says so.

use std::{process::Stdio, time::Duration};

use streambed::commit_log::{CommitLog, ProducerRecord, Subscription, Topic};
use streambed_logged::{compaction::KeyBasedRetention, Durability, FileLog};
use streambed_test::harness::Harness;
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};
use tokio_stream::StreamExt;

const GUARD: Duration = Duration::from_secs(30);

fn record(topic: &str, key: u64) -> ProducerRecord {
    streambed_test::records::record(topic, key, key.to_le_bytes())
}

fn main() {
    Harness::new("LOGGED_CHILD")
        .child("tail", child_tail)
        .child("produce", || child_produce(Durability::Fsync))
        .child("produce-buffered", || child_produce(Durability::Buffered))
        .test(
            "another_process_reads_and_tails_what_this_one_writes",
            another_process_reads_and_tails_what_this_one_writes,
        )
        .test("records_acknowledged_in_fsync_mode_survive_sigkill", || {
            acknowledged_records_survive_sigkill("produce")
        })
        // A killed process loses nothing the OS already has, even without fsync.
        .test(
            "records_acknowledged_in_buffered_mode_survive_sigkill",
            || acknowledged_records_survive_sigkill("produce-buffered"),
        )
        .test(
            "another_process_follows_a_topic_through_compaction",
            another_process_follows_a_topic_through_compaction,
        )
        .run();
}

fn root() -> String {
    std::env::var("LOGGED_ROOT").unwrap()
}

/// Prints the offset of every record of topic `t`, forever.
async fn child_tail() {
    let log = FileLog::new(root());
    let subscriptions = vec![Subscription {
        topic: Topic::from("t"),
    }];
    let mut records = log.scoped_subscribe("child", vec![], subscriptions, None);
    while let Some(r) = records.next().await {
        println!("{}", r.offset);
    }
}

/// Produces to topic `t` from four tasks, printing each acknowledged offset.
async fn child_produce(durability: Durability) {
    let log = FileLog::new(root()).with_durability(durability);
    let mut tasks = Vec::new();
    for task in 0..4u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let offset = log
                    .produce(record("t", task * 1_000_000 + i))
                    .await
                    .unwrap();
                println!("{}", offset.offset);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn spawn_child(mode: &str, root: &std::path::Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::from(streambed_test::process::this_test_binary())
        .env("LOGGED_CHILD", mode)
        .env("LOGGED_ROOT", root)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

async fn next_offset(lines: &mut Lines<BufReader<ChildStdout>>) -> u64 {
    let line = tokio::time::timeout(GUARD, lines.next_line())
        .await
        .expect("the child went silent")
        .unwrap()
        .expect("the child ended");
    line.trim().parse().unwrap()
}

/// A reader in another process keeps one ordered stream while this process ages and
/// compacts the files it reads (it learns of the renames through the watcher).
async fn another_process_follows_a_topic_through_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FileLog::with_config(dir.path(), 1024, 512, 1024, 1024, 1024);
    log.register_compaction(Topic::from("t"), KeyBasedRetention::new(100))
        .await
        .unwrap();
    log.produce(record("t", 0)).await.unwrap();
    let (mut child, mut lines) = spawn_child("tail", dir.path());
    assert_eq!(next_offset(&mut lines).await, 0);
    for i in 1..2000u64 {
        let mut r = record("t", i % 10);
        r.value = i.to_le_bytes().to_vec();
        log.produce(r).await.unwrap();
    }
    let mut seen = vec![0];
    while *seen.last().unwrap() != 1999 {
        seen.push(next_offset(&mut lines).await);
    }
    child.kill().await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "out of order: {seen:?}"
    );
    // The latest record of every key arrived.
    assert!(
        seen.ends_with(&(1990..2000).collect::<Vec<_>>()),
        "{seen:?}"
    );
    let stats = log.compaction_stats(&Topic::from("t")).unwrap();
    assert!(stats.compactions > 0, "nothing was compacted: {stats:?}");
}

async fn another_process_reads_and_tails_what_this_one_writes() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    for i in 0..5 {
        log.produce(record("t", i)).await.unwrap();
    }
    let (mut child, mut lines) = spawn_child("tail", dir.path());
    for expected in 0..5 {
        assert_eq!(next_offset(&mut lines).await, expected);
    }
    // Produced one at a time, each awaited by the other process before the next.
    for expected in 5..25 {
        log.produce(record("t", expected)).await.unwrap();
        assert_eq!(next_offset(&mut lines).await, expected);
    }
    child.kill().await.unwrap();
}

async fn acknowledged_records_survive_sigkill(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut lines) = spawn_child(mode, dir.path());
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 300 {
        acknowledged.push(next_offset(&mut lines).await);
    }
    // `kill` sends SIGKILL: no destructor, no flush runs in the child.
    child.kill().await.unwrap();
    let max_acknowledged = *acknowledged.iter().max().unwrap();

    let log = FileLog::new(dir.path());
    let end = log.offsets(Topic::from("t"), 0).await.unwrap().end_offset;
    assert!(
        end >= max_acknowledged,
        "end {end} < acknowledged {max_acknowledged}"
    );
    let history = streambed_test::records::read_topic(&log, "t", Duration::from_millis(300)).await;
    let offsets: Vec<u64> = history.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..=end).collect::<Vec<_>>());
    assert_eq!(log.produce(record("t", 0)).await.unwrap().offset, end + 1);
}
