//! Compaction end to end: strategies, aging and passes, readers during compaction,
//! recovery from every interrupted step, back-pressure.

use std::{collections::HashMap, fs, sync::Arc, time::Duration};

use async_trait::async_trait;
use streambed::commit_log::{
    CommitLog, ConsumerRecord, Header, HeaderKey, Key, ProducerRecord, Subscription, Topic,
};
use tokio_stream::StreamExt;

use crate::{
    compaction::{
        CompactionMap, CompactionStrategy, KeyBasedRetention, KeyBasedRetentionState,
        MaxKeysReached, NthKeyBasedRetention, NthKeyBasedRetentionState, QidKeyState,
    },
    files,
    frame::Frame,
    shared::lock,
    FileLog,
};

fn record(topic: &str, key: u64, value: u64) -> ProducerRecord {
    ProducerRecord {
        topic: Topic::from(topic),
        headers: vec![],
        timestamp: None,
        key,
        value: value.to_le_bytes().to_vec(),
        partition: 0,
    }
}

fn value_of(r: &ConsumerRecord) -> u64 {
    u64::from_le_bytes(r.value[..8].try_into().unwrap())
}

async fn read_all(log: &FileLog, topic: &str) -> Vec<ConsumerRecord> {
    streambed_test::records::read_topic(log, topic, Duration::from_millis(200)).await
}

/// Waits until no compaction of `topic` is due or running.
async fn compaction_idle(log: &FileLog, topic: &str) {
    let shared = log.inner.topic(&Topic::from(topic)).unwrap();
    loop {
        let idle = shared.compaction_idle.notified();
        if !lock(&shared.compaction).busy && !shared.paths.ancient_history.exists() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), idle).await;
    }
}

fn topic_bytes(dir: &std::path::Path, topic: &str) -> u64 {
    ["", ".history", ".ancient_history", ".work"]
        .iter()
        .filter_map(|s| fs::metadata(dir.join(format!("{topic}{s}"))).ok())
        .map(|m| m.len())
        .sum()
}

fn assert_strictly_rising(records: &[ConsumerRecord]) {
    for pair in records.windows(2) {
        assert!(
            pair[0].offset < pair[1].offset,
            "{} then {}",
            pair[0].offset,
            pair[1].offset
        );
    }
}

fn consumer(key: u64, offset: u64) -> ConsumerRecord {
    ConsumerRecord {
        topic: Topic::from("t"),
        headers: vec![],
        timestamp: None,
        key,
        value: vec![],
        partition: 0,
        offset,
    }
}

async fn run_strategy<CS: CompactionStrategy>(
    strategy: &CS,
    records: &[ConsumerRecord],
) -> CompactionMap {
    let mut state = strategy.init().await;
    let mut key_state = strategy.key_init();
    for r in records {
        if let Some(key) = CS::key(&mut key_state, r) {
            assert_eq!(
                CS::reduce(&mut state, key, r.clone()),
                MaxKeysReached(false)
            );
        }
    }
    CS::collect(state)
}

#[tokio::test]
async fn key_based_retention_keeps_the_latest_offset_per_key() {
    let records: Vec<_> = [(1, 0), (2, 1), (1, 2), (3, 3), (2, 4)]
        .iter()
        .map(|(k, o)| consumer(*k, *o))
        .collect();
    let map = run_strategy(&KeyBasedRetention::new(10), &records).await;
    assert_eq!(map, HashMap::from([(1, 2), (2, 4), (3, 3)]));
}

#[tokio::test]
async fn strategies_report_reaching_their_key_limit() {
    let strategy = KeyBasedRetention::new(1);
    let mut state = strategy.init().await;
    assert_eq!(
        KeyBasedRetention::reduce(&mut state, 1, consumer(1, 0)),
        MaxKeysReached(false)
    );
    assert_eq!(
        KeyBasedRetention::reduce(&mut state, 1, consumer(1, 1)),
        MaxKeysReached(false)
    );
    assert_eq!(
        KeyBasedRetention::reduce(&mut state, 2, consumer(2, 2)),
        MaxKeysReached(true)
    );
    let strategy = NthKeyBasedRetention::new(1, 3);
    let mut state = strategy.init().await;
    assert_eq!(
        NthKeyBasedRetention::reduce(&mut state, 1, consumer(1, 0)),
        MaxKeysReached(false)
    );
    assert_eq!(
        NthKeyBasedRetention::reduce(&mut state, 2, consumer(2, 1)),
        MaxKeysReached(true)
    );
}

#[tokio::test]
async fn nth_key_based_retention_keeps_the_last_n_per_key() {
    let records: Vec<_> = (0..10).map(|o| consumer(o % 2, o)).collect();
    let map = run_strategy(&NthKeyBasedRetention::new(10, 3), &records).await;
    // Key 0 at 0,2,4,6,8: the last three start at 4. Key 1 at 1,3,5,7,9: at 5.
    assert_eq!(map, HashMap::from([(0, 4), (1, 5)]));
}

fn qid_of(r: &ConsumerRecord) -> Option<crate::compaction::Qid> {
    r.headers.first().map(|h| h.key.clone())
}

#[tokio::test]
async fn qid_strategies_compact_by_the_derived_id_and_keep_records_without_one() {
    let mut records: Vec<_> = (0..6).map(|o| consumer(100 + o, o)).collect();
    for (i, r) in records.iter_mut().enumerate().take(4) {
        r.headers = vec![Header {
            key: HeaderKey::from(if i % 2 == 0 { "a" } else { "b" }),
            value: vec![],
        }];
    }
    let strategy = KeyBasedRetention::with_qids(qid_of, 10);
    let map = run_strategy(&strategy, &records).await;
    // "a" (numbered 0) last at offset 2, "b" (1) last at 3; records 4 and 5 have no qid.
    assert_eq!(map, HashMap::from([(0, 2), (1, 3)]));
    let strategy = NthKeyBasedRetention::with_qids(10, 2, qid_of);
    let map = run_strategy(&strategy, &records).await;
    assert_eq!(map, HashMap::from([(0, 0), (1, 1)]));
}

/// The last ten readings of each sensor, and only the latest configuration of each:
/// a strategy composed from the two provided ones. Readings have even keys, configuration
/// changes odd ones.
struct SensorRetention {
    readings: NthKeyBasedRetention,
    configurations: KeyBasedRetention,
}

#[async_trait]
impl CompactionStrategy for SensorRetention {
    type S = (NthKeyBasedRetentionState, KeyBasedRetentionState);
    type KS = (QidKeyState, QidKeyState);

    fn key_init(&self) -> Self::KS {
        (self.readings.key_init(), self.configurations.key_init())
    }

    fn key(key_state: &mut Self::KS, r: &ConsumerRecord) -> Option<Key> {
        if r.key & 1 == 0 {
            NthKeyBasedRetention::key(&mut key_state.0, r)
        } else {
            KeyBasedRetention::key(&mut key_state.1, r)
        }
    }

    async fn init(&self) -> Self::S {
        (self.readings.init().await, self.configurations.init().await)
    }

    fn reduce(state: &mut Self::S, key: Key, record: ConsumerRecord) -> MaxKeysReached {
        if key & 1 == 0 {
            NthKeyBasedRetention::reduce(&mut state.0, key, record)
        } else {
            KeyBasedRetention::reduce(&mut state.1, key, record)
        }
    }

    fn collect(state: Self::S) -> CompactionMap {
        let mut map = NthKeyBasedRetention::collect(state.0);
        map.extend(KeyBasedRetention::collect(state.1));
        map
    }
}

#[tokio::test]
async fn a_composed_strategy_keeps_ten_readings_per_sensor_and_the_latest_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FileLog::with_config(dir.path(), 2048, 8192, 8192, 8192, 16384);
    let strategy = SensorRetention {
        readings: NthKeyBasedRetention::new(100, 10),
        configurations: KeyBasedRetention::new(100),
    };
    log.register_compaction(Topic::from("s"), strategy)
        .await
        .unwrap();
    let mut n = 0;
    for round in 0..40u64 {
        for sensor in [0u64, 2, 4] {
            log.produce(record("s", sensor, round)).await.unwrap();
            n += 1;
        }
        if round % 8 == 0 {
            log.produce(record("s", 1, round)).await.unwrap();
            n += 1;
        }
    }
    compaction_idle(&log, "s").await;
    let history = log
        .inner
        .topic(&Topic::from("s"))
        .unwrap()
        .paths
        .history
        .clone();
    assert!(history.exists(), "nothing was compacted");
    let records = read_all(&log, "s").await;
    assert_strictly_rising(&records);
    assert_eq!(records.last().unwrap().offset, n - 1);
    for sensor in [0u64, 2, 4] {
        let values: Vec<u64> = records
            .iter()
            .filter(|r| r.key == sensor)
            .map(value_of)
            .collect();
        assert!(
            values.ends_with(&(30..40).collect::<Vec<_>>()),
            "sensor {sensor}: {values:?}"
        );
        assert!(
            values.len() < 40,
            "sensor {sensor} was not compacted: {values:?}"
        );
    }
    let configurations: Vec<u64> = records
        .iter()
        .filter(|r| r.key == 1)
        .map(value_of)
        .collect();
    assert_eq!(configurations.last(), Some(&32));
    assert!(configurations.len() < 5, "{configurations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_bounds_storage_while_readers_see_one_ordered_stream() {
    let dir = tempfile::tempdir().unwrap();
    let threshold = 1024;
    let mut log = FileLog::with_config(dir.path(), threshold, 256, 1024, 1024, 1024);
    log.register_compaction(Topic::from("t"), KeyBasedRetention::new(100))
        .await
        .unwrap();
    let reader = log.clone();
    let live = tokio::spawn(async move {
        let subscriptions = vec![Subscription {
            topic: Topic::from("t"),
        }];
        let mut stream = reader.scoped_subscribe("live", vec![], subscriptions, None);
        let mut seen = Vec::new();
        loop {
            let r = stream.next().await.unwrap();
            let done = r.offset == 1999;
            seen.push(r);
            if done {
                return seen;
            }
        }
    });
    for i in 0..2000u64 {
        log.produce(record("t", i % 10, i)).await.unwrap();
    }
    compaction_idle(&log, "t").await;

    let live = live.await.unwrap();
    assert_strictly_rising(&live);
    let mut latest = HashMap::new();
    for r in &live {
        latest.insert(r.key, value_of(r));
    }
    assert_eq!(latest, (0..10).map(|k| (k, 1990 + k)).collect());

    let after = read_all(&log, "t").await;
    assert_strictly_rising(&after);
    assert_eq!(after.last().unwrap().offset, 1999);
    let mut latest = HashMap::new();
    for r in &after {
        latest.insert(r.key, value_of(r));
    }
    assert_eq!(latest, (0..10).map(|k| (k, 1990 + k)).collect());
    let on_disk = topic_bytes(dir.path(), "t");
    assert!(on_disk < 2 * threshold + 10 * 40, "{on_disk} bytes on disk");
    let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
    assert_eq!(offsets.end_offset, 1999);
    assert_eq!(offsets.beginning_offset, after[0].offset);
}

#[tokio::test]
async fn a_strategy_at_its_key_limit_gets_further_passes_until_every_key_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    for i in 0..200u64 {
        log.produce(record("t", i % 20, i)).await.unwrap();
    }
    let shared = log.inner.topic(&Topic::from("t")).unwrap();
    drop(log);
    fs::rename(&shared.paths.active, &shared.paths.history).unwrap();
    crate::compaction::compact(
        &shared,
        crate::FileLog::new(dir.path()).inner.config(),
        &KeyBasedRetention::new(3),
    )
    .await
    .unwrap();
    let log = FileLog::new(dir.path());
    let records = read_all(&log, "t").await;
    assert_eq!(
        records.len(),
        20,
        "{:?}",
        records.iter().map(|r| r.offset).collect::<Vec<_>>()
    );
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (180..200).collect::<Vec<_>>()
    );
}

/// The interrupted compaction steps, each followed by a reopen: every record held before,
/// or the compacted result; never a loss, never a repeated offset.
#[tokio::test]
async fn a_compaction_interrupted_at_any_step_reopens_without_loss_or_duplicates() {
    #[derive(Debug, Clone, Copy)]
    enum StopAfter {
        Aged,
        WorkPartlyWritten,
        /// The ancient history held nothing to keep and went before the work file was done.
        AncientRetired,
        WorkComplete,
        /// As earlier versions committed: the work file replaced the ancient history first.
        RenamedOverAncient,
        /// The work file replaced the history; the ancient history has not gone yet (or its
        /// early removal did not reach the disk before a power loss).
        RenamedOverHistory,
        Done,
    }
    for stop in [
        StopAfter::Aged,
        StopAfter::WorkPartlyWritten,
        StopAfter::AncientRetired,
        StopAfter::WorkComplete,
        StopAfter::RenamedOverAncient,
        StopAfter::RenamedOverHistory,
        StopAfter::Done,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::new(dir.path());
        let shared = log.inner.topic(&Topic::from("t")).unwrap();
        let paths = shared.paths.clone();
        let mut all = Vec::new();
        // A history (as an earlier aging leaves it), then an active file to age.
        for i in 0..40u64 {
            all.push(i);
            log.produce(record("t", i % 4, i)).await.unwrap();
        }
        let mut closable = log.clone();
        closable.close_topic(&Topic::from("t"));
        drop(log);
        drop(closable);
        // The appender let go before its file is renamed.
        assert!(!lock(&shared.appender).is_open());
        fs::rename(&paths.active, &paths.history).unwrap();
        let _ = fs::remove_file(&paths.index);
        let log = FileLog::new(dir.path());
        for i in 40..80u64 {
            log.produce(record("t", i % 4, i)).await.unwrap();
        }
        let writer = log.inner.topic(&Topic::from("t")).unwrap();
        let mut closable = log.clone();
        closable.close_topic(&Topic::from("t"));
        drop(log);
        drop(closable);
        assert!(!lock(&writer.appender).is_open());
        // Age.
        fs::rename(&paths.history, &paths.ancient_history).unwrap();
        fs::rename(&paths.active, &paths.history).unwrap();
        let _ = fs::remove_file(&paths.index);
        // The compacted content of ancient + history: the latest of each key, and the last.
        let mut compacted = Vec::new();
        for f in files::open_sequence(&paths).unwrap() {
            files::scan(&f.file, 0, 4096, 16384, |frame| {
                if let Frame::Record { view, raw, .. } = frame {
                    if view.offset >= 76 {
                        compacted.extend_from_slice(raw);
                    }
                }
            })
            .unwrap();
        }
        match stop {
            StopAfter::Aged => {}
            StopAfter::WorkPartlyWritten => {
                fs::write(&paths.work, &compacted[..compacted.len() / 2]).unwrap()
            }
            StopAfter::AncientRetired => {
                fs::remove_file(&paths.ancient_history).unwrap();
                fs::write(&paths.work, &compacted[..compacted.len() / 2]).unwrap()
            }
            StopAfter::WorkComplete => fs::write(&paths.work, &compacted).unwrap(),
            StopAfter::RenamedOverHistory => fs::write(&paths.history, &compacted).unwrap(),
            StopAfter::RenamedOverAncient => fs::write(&paths.ancient_history, &compacted).unwrap(),
            StopAfter::Done => {
                fs::write(&paths.history, &compacted).unwrap();
                fs::remove_file(&paths.ancient_history).unwrap();
            }
        }

        let log = FileLog::new(dir.path());
        let offsets: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
        let expected: Vec<u64> = match stop {
            StopAfter::RenamedOverAncient | StopAfter::Done => (76..80).collect(),
            // Every record of the ancient history is superseded by one in the history.
            StopAfter::AncientRetired => (40..80).collect(),
            StopAfter::RenamedOverHistory => all.iter().copied().chain(76..80).collect(),
            _ => all.iter().copied().chain(40..80).collect(),
        };
        assert_eq!(offsets, expected, "reading after {stop:?}");
        // The writer resolves leftovers and resumes at the next offset.
        assert_eq!(
            log.produce(record("t", 9, 80)).await.unwrap().offset,
            80,
            "{stop:?}"
        );
        assert!(!paths.work.exists(), "{stop:?}");
        let offsets: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
        let mut expected = expected;
        expected.push(80);
        assert_eq!(offsets, expected, "after recovery from {stop:?}");

        // A compactor registered now finishes what was left.
        let mut log = log;
        log.register_compaction(Topic::from("t"), KeyBasedRetention::new(10))
            .await
            .unwrap();
        compaction_idle(&log, "t").await;
        assert!(!paths.ancient_history.exists(), "{stop:?}");
        let offsets: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
        // Without an ancient history nothing is due: the history left by a retired one is
        // compacted with the next aging.
        let first = match stop {
            StopAfter::AncientRetired => 40,
            _ => 76,
        };
        assert!(
            offsets.ends_with(&[80]) && offsets.starts_with(&[first]),
            "{stop:?}: {offsets:?}"
        );
    }
}

fn encoded(records: &[(u64, u64)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (offset, key) in records {
        crate::record::encode(&mut bytes, &[], None, *key, &offset.to_le_bytes(), *offset);
    }
    bytes
}

/// An ancient history with a record to keep (key 100) beside the history that replaced
/// it, which starts with that record: the state a commit leaves until the ancient history
/// is removed.
fn committed_over_an_ancient_history_that_kept_a_record(dir: &std::path::Path) {
    let ancient: Vec<(u64, u64)> = (0..10)
        .map(|o| (o, if o == 5 { 100 } else { o % 3 }))
        .collect();
    fs::write(dir.join("t.ancient_history"), encoded(&ancient)).unwrap();
    let compacted = [(5, 100), (17, 2), (18, 0), (19, 1)];
    fs::write(dir.join("t.history"), encoded(&compacted)).unwrap();
}

#[tokio::test]
async fn a_history_committed_beside_the_ancient_history_reads_each_offset_once() {
    let dir = tempfile::tempdir().unwrap();
    committed_over_an_ancient_history_that_kept_a_record(dir.path());
    let log = FileLog::new(dir.path());
    let offsets: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..10).chain(17..20).collect::<Vec<_>>());
    // The writer's recovery removes the ancient history the history covers.
    assert_eq!(log.produce(record("t", 1, 20)).await.unwrap().offset, 20);
    assert!(!dir.path().join("t.ancient_history").exists());
    let offsets: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![5, 17, 18, 19, 20]);
}

#[tokio::test]
async fn a_committed_history_starting_with_a_large_record_is_not_replaced_on_recovery() {
    // The kept record at the start of the new history is larger than any fixed read
    // buffer: recovery must still see where the history starts and keep it.
    let dir = tempfile::tempdir().unwrap();
    let big = vec![7u8; 100 * 1024];
    let mut ancient = Vec::new();
    crate::record::encode(&mut ancient, &[], None, 100, &big, 5);
    crate::record::encode(&mut ancient, &[], None, 1, b"old", 6);
    fs::write(dir.path().join("t.ancient_history"), &ancient).unwrap();
    let mut history = Vec::new();
    crate::record::encode(&mut history, &[], None, 100, &big, 5);
    crate::record::encode(&mut history, &[], None, 1, b"new", 9);
    fs::write(dir.path().join("t.history"), &history).unwrap();

    let log = FileLog::with_config(dir.path(), 1024 * 1024, 8192, 8192, 8192, 256 * 1024);
    assert_eq!(log.produce(record("t", 2, 10)).await.unwrap().offset, 10);
    assert!(!dir.path().join("t.ancient_history").exists());
    let offsets: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![5, 9, 10]);
}

#[tokio::test]
async fn compacting_a_history_committed_beside_the_ancient_history_repeats_no_offset() {
    let dir = tempfile::tempdir().unwrap();
    committed_over_an_ancient_history_that_kept_a_record(dir.path());
    let log = FileLog::new(dir.path());
    let shared = log.inner.topic(&Topic::from("t")).unwrap();
    // Keeping the last two of each key counts every record once, not its copy as well.
    crate::compaction::compact(
        &shared,
        log.inner.config(),
        &NthKeyBasedRetention::new(10, 2),
    )
    .await
    .unwrap();
    assert!(!shared.paths.ancient_history.exists());
    let records = read_all(&log, "t").await;
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    // Key 100: 5; key 0: 9 (in the ancient history) and 18; key 1: 7 and 19; key 2: 8, 17.
    assert_eq!(offsets, vec![5, 7, 8, 9, 17, 18, 19]);
    let mut on_disk = Vec::new();
    files::scan(
        &fs::File::open(&shared.paths.history).unwrap(),
        0,
        4096,
        16384,
        |frame| {
            if let Frame::Record { view, .. } = frame {
                on_disk.push(view.offset);
            }
        },
    )
    .unwrap();
    assert_eq!(on_disk, offsets);
}

/// Key-based retention that notes, each time it derives a key, whether the ancient
/// history is still there.
struct Watching {
    ancient_history: std::path::PathBuf,
    seen: Arc<std::sync::Mutex<Vec<(u64, bool)>>>,
}

type WatchingKeyState = (std::path::PathBuf, Arc<std::sync::Mutex<Vec<(u64, bool)>>>);

#[async_trait]
impl CompactionStrategy for Watching {
    type S = KeyBasedRetentionState;
    type KS = WatchingKeyState;

    fn key_init(&self) -> Self::KS {
        (self.ancient_history.clone(), self.seen.clone())
    }

    fn key(key_state: &mut Self::KS, r: &ConsumerRecord) -> Option<Key> {
        let present = key_state.0.exists();
        key_state.1.lock().unwrap().push((r.offset, present));
        Some(r.key)
    }

    async fn init(&self) -> Self::S {
        KeyBasedRetention::new(100).init().await
    }

    fn reduce(state: &mut Self::S, key: Key, record: ConsumerRecord) -> MaxKeysReached {
        KeyBasedRetention::reduce(state, key, record)
    }

    fn collect(state: Self::S) -> CompactionMap {
        KeyBasedRetention::collect(state)
    }
}

/// Compacts an ancient history of offsets 0..10 (key 100 at `unique`, else `offset % 3`)
/// and a history of 10..20 (`offset % 3`); answers, per offset the rewrite took in,
/// whether the ancient history was still there.
async fn ancient_history_presence_while_rewriting(unique: Option<u64>) -> Vec<(u64, bool)> {
    let dir = tempfile::tempdir().unwrap();
    let ancient: Vec<(u64, u64)> = (0..10)
        .map(|o| (o, if Some(o) == unique { 100 } else { o % 3 }))
        .collect();
    fs::write(dir.path().join("t.ancient_history"), encoded(&ancient)).unwrap();
    let history: Vec<(u64, u64)> = (10..20).map(|o| (o, o % 3)).collect();
    fs::write(dir.path().join("t.history"), encoded(&history)).unwrap();
    let log = FileLog::new(dir.path());
    let shared = log.inner.topic(&Topic::from("t")).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let strategy = Watching {
        ancient_history: shared.paths.ancient_history.clone(),
        seen: seen.clone(),
    };
    crate::compaction::compact(&shared, log.inner.config(), &strategy)
        .await
        .unwrap();
    assert!(!shared.paths.ancient_history.exists());
    let offsets: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
    let mut expected: Vec<u64> = unique.into_iter().collect();
    expected.extend([17, 18, 19]);
    assert_eq!(offsets, expected);
    let seen = seen.lock().unwrap().clone();
    // The analysis took in the 20 records first, then the rewrite did.
    assert_eq!(seen.len(), 40, "{seen:?}");
    seen[20..].to_vec()
}

#[tokio::test]
async fn an_ancient_history_holding_nothing_to_keep_goes_before_the_history_is_rewritten() {
    let rewrite = ancient_history_presence_while_rewriting(None).await;
    assert!(
        rewrite[..10].iter().all(|(_, present)| *present),
        "{rewrite:?}"
    );
    assert!(
        rewrite[10..].iter().all(|(_, present)| !present),
        "{rewrite:?}"
    );
}

#[tokio::test]
async fn an_ancient_history_holding_a_record_to_keep_stays_until_the_commit() {
    let rewrite = ancient_history_presence_while_rewriting(Some(4)).await;
    assert!(rewrite.iter().all(|(_, present)| *present), "{rewrite:?}");
}

/// A strategy that cannot start analysing until the test lets it.
struct Gated {
    inner: KeyBasedRetention,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait]
impl CompactionStrategy for Gated {
    type S = KeyBasedRetentionState;
    type KS = QidKeyState;

    fn key_init(&self) -> Self::KS {
        self.inner.key_init()
    }

    fn key(key_state: &mut Self::KS, r: &ConsumerRecord) -> Option<Key> {
        KeyBasedRetention::key(key_state, r)
    }

    async fn init(&self) -> Self::S {
        if let Ok(permit) = self.gate.acquire().await {
            permit.forget();
        }
        self.inner.init().await
    }

    fn reduce(state: &mut Self::S, key: Key, record: ConsumerRecord) -> MaxKeysReached {
        KeyBasedRetention::reduce(state, key, record)
    }

    fn collect(state: Self::S) -> CompactionMap {
        KeyBasedRetention::collect(state)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producing_waits_only_when_compaction_is_more_than_one_threshold_behind() {
    let dir = tempfile::tempdir().unwrap();
    let threshold = 400;
    let mut log = FileLog::with_config(dir.path(), threshold, 1024, 1024, 1024, 1024);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let strategy = Gated {
        inner: KeyBasedRetention::new(10),
        gate: gate.clone(),
    };
    log.register_compaction(Topic::from("t"), strategy)
        .await
        .unwrap();
    // Producing goes on through the first aging (the compaction is stuck at the gate) and
    // until the active file passes the threshold again; then the writer waits.
    let shared = log.inner.topic(&Topic::from("t")).unwrap();
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let producer_log = log.clone();
    let producer = tokio::spawn(async move {
        for i in 0..200u64 {
            let offset = producer_log
                .produce(record("t", i % 3, i))
                .await
                .unwrap()
                .offset;
            assert_eq!(offset, i);
            let _ = acks_tx.send(offset);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut acknowledged = 0u64;
    loop {
        match tokio::time::timeout(Duration::from_millis(200), acks.recv()).await {
            Ok(Some(_)) => acknowledged += 1,
            Ok(None) => panic!("producing never waited"),
            Err(_) => {
                let active = fs::metadata(&shared.paths.active).map_or(0, |m| m.len());
                if active >= threshold {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "producing stopped after {acknowledged} records with only {active} bytes active"
                );
            }
        }
    }
    let aged = fs::metadata(&shared.paths.history).unwrap().len();
    assert!(aged >= threshold, "aged only {aged} bytes");
    assert!(acknowledged < 200 && !producer.is_finished());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), acks.recv())
            .await
            .is_err(),
        "producing went on while the compaction was more than one threshold behind"
    );
    gate.add_permits(1_000);
    producer.await.unwrap();
    compaction_idle(&log, "t").await;
    assert_eq!(
        log.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
        199
    );
}

/// A strategy that fails every compaction.
#[derive(Debug)]
struct Failing;

#[async_trait]
impl CompactionStrategy for Failing {
    type S = ();
    type KS = ();

    fn key_init(&self) -> Self::KS {}

    fn key(_key_state: &mut Self::KS, r: &ConsumerRecord) -> Option<Key> {
        Some(r.key)
    }

    async fn init(&self) -> Self::S {}

    fn reduce(_state: &mut Self::S, _key: Key, _record: ConsumerRecord) -> MaxKeysReached {
        panic!("this strategy fails every compaction (expected by the test)");
    }

    fn collect(_state: Self::S) -> CompactionMap {
        CompactionMap::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_compaction_neither_stops_producers_nor_loses_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut history = Vec::new();
    for i in 0..10u64 {
        crate::record::encode(&mut history, &[], None, i, &i.to_le_bytes(), i);
    }
    fs::write(dir.path().join("t.history"), &history).unwrap();

    let threshold = 300;
    let mut log = FileLog::with_config(dir.path(), threshold, 1024, 1024, 1024, 1024);
    log.register_compaction(Topic::from("t"), Failing)
        .await
        .unwrap();
    produce_three_keys(
        &log,
        200,
        10,
        "producing stalled behind a failing compaction",
    )
    .await;
    let stats = log.compaction_stats(&Topic::from("t")).unwrap();
    assert_eq!(stats.compactions, 0, "{stats:?}");
    let shared = log.inner.topic(&Topic::from("t")).unwrap();
    assert!(lock(&shared.compaction).retry_after.is_some());
    let records = read_all(&log, "t").await;
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..210).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_in_a_history_file_costs_its_record_and_compaction_carries_it_over() {
    let dir = tempfile::tempdir().unwrap();
    // A history with a damaged record in its middle.
    let mut history = Vec::new();
    let mut starts = Vec::new();
    for i in 0..10u64 {
        starts.push(history.len());
        crate::record::encode(&mut history, &[], None, 100 + i, &i.to_le_bytes(), i);
    }
    history[starts[5] + 4] ^= 0xff;
    let damaged = history[starts[5]..starts[6]].to_vec();
    fs::write(dir.path().join("t.history"), &history).unwrap();

    let log = FileLog::with_config(dir.path(), 300, 1024, 1024, 1024, 1024);
    let offsets: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(log.produce(record("t", 1, 0)).await.unwrap().offset, 10);

    // Compaction goes past the damage, keeps every other record it must, and carries the
    // damaged bytes over into the new history rather than destroying them.
    let mut log = log;
    log.register_compaction(Topic::from("t"), KeyBasedRetention::new(100))
        .await
        .unwrap();
    produce_three_keys(&log, 200, 11, "producing stalled").await;
    compaction_idle(&log, "t").await;
    let stats = log.compaction_stats(&Topic::from("t")).unwrap();
    assert!(stats.compactions >= 1, "{stats:?}");
    let records = read_all(&log, "t").await;
    assert_strictly_rising(&records);
    // The history keys (100..110) are never superseded: all but the damaged one remain.
    let kept: Vec<u64> = records
        .iter()
        .filter(|r| r.key >= 100)
        .map(|r| r.offset)
        .collect();
    assert_eq!(kept, vec![0, 1, 2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(records.last().unwrap().offset, 210);
    let new_history = fs::read(dir.path().join("t.history")).unwrap();
    assert!(
        new_history.windows(damaged.len()).any(|w| w == damaged),
        "the damaged bytes were not carried over"
    );
    assert!(log.damage_stats(&Topic::from("t")).unwrap().regions >= 1);
}

/// Recovery after an interrupted compaction must not delete or replace a history file it
/// cannot read: damaged bytes, or records over a since lowered `max_record_size`.
#[tokio::test]
async fn compaction_recovery_keeps_history_files_it_cannot_read() {
    let mut damaged = encoded(&[(0, 1)]);
    damaged[3] ^= 0x5a;
    let mut large = Vec::new();
    crate::record::encode(&mut large, &[], None, 1, &[7u8; 2048], 0);
    for unreadable in [damaged, large] {
        // An ancient history with nothing readable beside a history after it.
        let dir = tempfile::tempdir().unwrap();
        let ancient = dir.path().join("t.ancient_history");
        fs::write(&ancient, &unreadable).unwrap();
        fs::write(dir.path().join("t.history"), encoded(&[(5, 1), (6, 2)])).unwrap();
        let log = FileLog::with_config(dir.path(), 1024 * 1024, 8192, 8192, 8192, 1024);
        assert_eq!(log.produce(record("t", 3, 7)).await.unwrap().offset, 7);
        assert_eq!(
            fs::read(&ancient).unwrap(),
            unreadable,
            "ancient history kept"
        );

        // An ancient history beside a history with nothing readable.
        let dir = tempfile::tempdir().unwrap();
        let history = dir.path().join("t.history");
        fs::write(dir.path().join("t.ancient_history"), encoded(&[(0, 1)])).unwrap();
        fs::write(&history, &unreadable).unwrap();
        let log = FileLog::with_config(dir.path(), 1024 * 1024, 8192, 8192, 8192, 1024);
        log.produce(record("t", 3, 7)).await.unwrap();
        assert_eq!(fs::read(&history).unwrap(), unreadable, "history kept");
    }
    // Empty leftovers still go.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.ancient_history"), b"").unwrap();
    fs::write(dir.path().join("t.history"), encoded(&[(5, 1)])).unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(log.produce(record("t", 3, 7)).await.unwrap().offset, 6);
    assert!(!dir.path().join("t.ancient_history").exists());
}

/// Found by the model tests: a history starting with damage, whose first records were
/// superseded, and a record kept between that damage and more damage. Compaction dropped
/// the record right after the first damage, on which readers resynchronise (its offset is
/// within reach of the damage); what followed the damage in the new history was a record
/// whose offset was not (compaction leaves gaps) followed by damage, so it was skipped
/// as part of the damage: a kept record lost.
#[tokio::test]
async fn compaction_keeps_the_record_after_damage_that_readers_resynchronise_on() {
    let dir = tempfile::tempdir().unwrap();
    // Keys by offset: 0, 0, 0, 1, 2, 0, 0, 0; offsets 0 and 4 damaged.
    let keys = [0u64, 0, 0, 1, 2, 0, 0, 0];
    let mut history = Vec::new();
    let mut starts = Vec::new();
    for (offset, key) in keys.iter().enumerate() {
        starts.push(history.len());
        crate::record::encode(&mut history, &[], None, *key, &[], offset as u64);
    }
    history[starts[0]] ^= 1;
    history[starts[4]] ^= 1;
    fs::write(dir.path().join("t.history"), &history).unwrap();
    let log = FileLog::new(dir.path());
    let before: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
    assert_eq!(before, [1, 2, 3, 5, 6, 7]);

    let shared = log.inner.topic(&Topic::from("t")).unwrap();
    crate::compaction::compact(&shared, log.inner.config(), &KeyBasedRetention::new(10))
        .await
        .unwrap();
    let log = FileLog::new(dir.path());
    let after: Vec<u64> = read_all(&log, "t").await.iter().map(|r| r.offset).collect();
    // 3 is the only record of key 1; 7 the latest of key 0. The records after each
    // damaged region stay too.
    assert_eq!(after, [1, 3, 5, 7]);
}

/// Produces `count` records to topic `t` over three keys, expecting offsets from `first` on,
/// and fails with `stalled` should producing take more than 30 s (ten times that under an
/// emulator, where producers held back by a compaction wait as long as it takes: one that
/// panics spends seconds there printing its backtrace).
async fn produce_three_keys(log: &FileLog, count: u64, first: u64, stalled: &str) {
    let produce_all = async {
        for i in 0..count {
            let offset = log.produce(record("t", i % 3, i)).await.unwrap().offset;
            assert_eq!(offset, first + i);
        }
    };
    let bound = Duration::from_secs(30) * streambed_test::process::slowdown();
    tokio::time::timeout(bound, produce_all)
        .await
        .expect(stalled);
}
