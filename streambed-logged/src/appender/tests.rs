//! The write path's promises: every durability level keeps order and read-your-writes,
//! `produce` needs no particular executor, concurrent producers get distinct offsets in
//! file order, a cancelled producer stalls nobody, and idle topics give their files back.

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
    thread,
    time::{Duration, Instant},
};

use streambed::commit_log::{CommitLog, ProducerRecord, Subscription, Topic};
use tokio_stream::StreamExt;

use crate::{
    shared::{lock, read},
    Durability, FileLog,
};

const LEVELS: [Durability; 3] = [
    Durability::InProcess,
    Durability::Buffered,
    Durability::Fsync,
];

fn record(topic: &str, key: u64) -> ProducerRecord {
    streambed_test::records::record(topic, key, key.to_le_bytes().to_vec())
}

/// The first `n` records of `topic` as this log's subscribers see them: (offset, key).
async fn read_here(log: &FileLog, topic: &str, n: usize) -> Vec<(u64, u64)> {
    let subscription = vec![Subscription {
        topic: Topic::from(topic),
    }];
    log.scoped_subscribe("check", vec![], subscription, None)
        .take(n)
        .map(|r| (r.offset, r.key))
        .collect()
        .await
}

/// The smallest executor there is: polls on the calling thread, parks until woken. Not
/// tokio, so that nothing of tokio's runtime is there to lean on.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

/// The keys of every record of `topic`, read by a new log (as another process would).
async fn keys_on_disk(dir: &std::path::Path, topic: &str) -> Vec<u64> {
    let log = FileLog::new(dir);
    let end = log
        .offsets(Topic::from(topic), 0)
        .await
        .map(|o| o.end_offset);
    let Some(end) = end else { return vec![] };
    let records = log.scoped_subscribe(
        "check",
        vec![],
        vec![Subscription {
            topic: Topic::from(topic),
        }],
        None,
    );
    let mut records = pin!(records);
    let mut keys = Vec::new();
    while let Some(record) = records.next().await {
        keys.push(record.key);
        if record.offset == end {
            break;
        }
    }
    keys
}

#[test]
fn produce_is_awaited_from_plain_threads_without_a_tokio_runtime_at_every_level() {
    for durability in LEVELS {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::new(dir.path()).with_durability(durability);
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let log = log.clone();
                thread::spawn(move || {
                    let mut offsets = Vec::new();
                    for i in 0..250 {
                        let produced = block_on(log.produce(record("t", t * 1000 + i))).unwrap();
                        offsets.push(produced.offset);
                    }
                    offsets
                })
            })
            .collect();
        let mut offsets: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        offsets.sort_unstable();
        assert_eq!(offsets, (0..1000).collect::<Vec<_>>(), "{durability:?}");
        drop(log);
        let rt = streambed_test::runtime::current_thread();
        let keys = rt.block_on(keys_on_disk(dir.path(), "t"));
        assert_eq!(keys.len(), 1000, "{durability:?}");
        // Each thread's records are in the order it produced them.
        for t in 0..4u64 {
            let mine: Vec<u64> = keys.iter().copied().filter(|k| k / 1000 == t).collect();
            assert_eq!(mine, (t * 1000..t * 1000 + 250).collect::<Vec<_>>());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_get_distinct_offsets_in_file_order_at_every_level() {
    for durability in LEVELS {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::new(dir.path()).with_durability(durability);
        let tasks: Vec<_> = (0..64u64)
            .map(|p| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for i in 0..50 {
                        let key = p * 100 + i;
                        got.push((log.produce(record("t", key)).await.unwrap().offset, key));
                    }
                    got
                })
            })
            .collect();
        let mut acknowledged = Vec::new();
        for task in tasks {
            acknowledged.extend(task.await.unwrap());
        }
        acknowledged.sort_unstable();
        let offsets: Vec<u64> = acknowledged.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (0..3200).collect::<Vec<_>>(), "{durability:?}");
        // Read back in this process at once: every acknowledged record, at its offset.
        let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
        assert_eq!(offsets.end_offset, 3199);
        assert_eq!(
            read_here(&log, "t", 3200).await,
            acknowledged,
            "{durability:?}"
        );
    }
}

#[tokio::test]
async fn in_process_records_are_readable_here_at_once_and_reach_the_file_soon_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path()).with_durability(Durability::InProcess);
    for key in 0..3 {
        log.produce(record("t", key)).await.unwrap();
    }
    // Read-your-writes in this process, whether or not the file has them yet.
    let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
    assert_eq!((offsets.beginning_offset, offsets.end_offset), (0, 2));
    assert_eq!(read_here(&log, "t", 3).await, [(0, 0), (1, 1), (2, 2)]);
    // Another reader of the files sees them without any further produce.
    log.produce(record("t", 3)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if keys_on_disk(dir.path(), "t").await == [0, 1, 2, 3] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the buffer never reached the file"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn in_process_records_reach_the_file_when_the_log_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path()).with_durability(Durability::InProcess);
    let topics: Vec<String> = (0..5).map(|t| format!("t{t}")).collect();
    for topic in &topics {
        for key in 0..10 {
            log.produce(record(topic, key)).await.unwrap();
        }
    }
    drop(log);
    for topic in &topics {
        assert_eq!(
            keys_on_disk(dir.path(), topic).await,
            (0..10).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn a_clone_taken_before_with_durability_shares_the_appender_and_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    let earlier = log.clone();
    let log = log.with_durability(Durability::Fsync);
    assert_eq!(earlier.inner.config().durability, Durability::Fsync);
    let shared = log.inner.topic(&Topic::from("t")).unwrap();
    let from_earlier = earlier.inner.topic(&Topic::from("t")).unwrap();
    assert!(Arc::ptr_eq(&shared, &from_earlier));
    let (a, b) = tokio::join!(log.produce(record("t", 1)), earlier.produce(record("t", 2)));
    let mut offsets = [a.unwrap().offset, b.unwrap().offset];
    offsets.sort_unstable();
    assert_eq!(offsets, [0, 1]);
}

#[test]
fn a_leader_dropped_while_it_gathers_a_batch_stalls_no_other_producer() {
    let rt = streambed_test::runtime::current_thread();
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    let probe = u64::from(super::PROBE_EVERY);
    rt.block_on(async {
        // A lone leader pauses now and then to find out whether others would join it:
        // this produce's lead is such a one.
        for key in 0..probe - 1 {
            log.produce(record("t", key)).await.unwrap();
        }
        let mut abandoned = Box::pin(log.produce(record("t", 1000)));
        let waker = Waker::from(Arc::new(Nothing));
        let polled = abandoned.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending(), "the leader did not pause");
        drop(abandoned);
        // Others still produce; the abandoned record was written as it was dropped.
        let next = tokio::time::timeout(Duration::from_secs(10), log.produce(record("t", 1001)))
            .await
            .expect("a producer stalled")
            .unwrap();
        assert_eq!(next.offset, probe);
    });
    drop(log);
    let keys = rt.block_on(keys_on_disk(dir.path(), "t"));
    assert_eq!(keys[probe as usize - 1..], [1000, 1001]);
}

struct Nothing;
impl Wake for Nothing {
    fn wake(self: Arc<Self>) {}
}

fn open_topics(log: &FileLog) -> usize {
    read(&log.inner.topics)
        .values()
        .filter(|shared| lock(&shared.appender).is_open())
        .count()
}

#[tokio::test]
async fn past_the_open_topic_limit_idle_topics_give_their_files_back_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path()).with_open_topic_limit(4);
    for round in 0..3u64 {
        for t in 0..20 {
            let produced = log.produce(record(&format!("t{t}"), round)).await.unwrap();
            // Reopened topics continue where they were.
            assert_eq!(produced.offset, round);
            assert!(open_topics(&log) <= 4, "{}", open_topics(&log));
        }
    }
    drop(log);
    for t in 0..20 {
        assert_eq!(keys_on_disk(dir.path(), &format!("t{t}")).await, [0, 1, 2]);
    }
}

#[tokio::test]
async fn a_topic_appended_by_someone_else_while_its_files_were_given_back_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path()).with_open_topic_limit(1);
    log.produce(record("a", 0)).await.unwrap();
    // Opening "b" gives back "a"'s files.
    log.produce(record("b", 0)).await.unwrap();
    {
        // Another writer appends to "a" meanwhile.
        let other = FileLog::new(dir.path());
        assert_eq!(other.produce(record("a", 1)).await.unwrap().offset, 1);
    }
    // Not resumed from what "a" was when given back: its offsets go on after the other's.
    assert_eq!(log.produce(record("a", 2)).await.unwrap().offset, 2);
    drop(log);
    assert_eq!(keys_on_disk(dir.path(), "a").await, [0, 1, 2]);
}
