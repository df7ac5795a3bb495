//! What a `FileLog` reports through the `metrics` facade, seen through a test recorder:
//! records and bytes produced and consumed, compactions and their duration, damaged bytes.

use std::time::Duration;

use streambed::commit_log::{CommitLog, Topic};
use streambed_logged::{compaction::KeyBasedRetention, FileLog};
use streambed_test::metrics::Recording;

#[test]
fn produce_consume_compaction_and_damage_are_counted_once_each() {
    // The log registers its series when it is made, with the recorder installed then.
    let recording = Recording::new();
    let _local = recording.install();
    let rt = streambed_test::runtime::current_thread();
    let dir = tempfile::tempdir().unwrap();
    let topic = Topic::from("t");
    rt.block_on(async {
        let mut log = FileLog::with_config(dir.path(), 400, 4096, 4096, 4096, 4096);
        log.register_compaction(topic.clone(), KeyBasedRetention::new(10))
            .await
            .unwrap();
        for key in 0..20u64 {
            let record = streambed_test::records::record("t", key % 2, vec![b'v'; 30]);
            log.produce(record).await.unwrap();
        }
        // Compaction ran at least once (the threshold is a few records).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while log.compaction_stats(&topic).unwrap().compactions == 0 {
            assert!(std::time::Instant::now() < deadline, "no compaction ran");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let compactions = log.compaction_stats(&topic).unwrap().compactions;
        let end = log.offsets(topic.clone(), 0).await.unwrap().end_offset;
        assert_eq!(end, 19);
        let read = streambed_test::records::count_first(&log, "t", 2).await;
        assert_eq!(read, 2);
        let recorded = recording.recorded();
        let counter = |name| recorded.counter_total(name);
        assert_eq!(counter("logged_records_produced_total"), 20);
        assert!(counter("logged_bytes_produced_total") > 20 * 30);
        assert!(counter("logged_records_consumed_total") >= 2);
        assert!(counter("logged_bytes_consumed_total") > 2 * 30);
        assert_eq!(counter("logged_compactions_total"), compactions);
        let timed = recorded.histogram_count("logged_compaction_seconds");
        assert_eq!(timed as u64, compactions);
        assert_eq!(counter("logged_damaged_bytes_total"), 0);
    });
}

#[test]
fn damaged_bytes_are_counted_once_however_many_readers_skip_them() {
    let recording = Recording::new();
    let _local = recording.install();
    let rt = streambed_test::runtime::current_thread();
    let dir = tempfile::tempdir().unwrap();
    let topic = Topic::from("t");
    rt.block_on(async {
        let log = FileLog::new(dir.path());
        for key in 0..3u64 {
            let record = streambed_test::records::record("t", key, vec![b'v'; 30]);
            log.produce(record).await.unwrap();
        }
    });
    // Damage the middle record's value.
    let path = dir.path().join("t");
    let mut bytes = std::fs::read(&path).unwrap();
    let third = bytes.len() / 3;
    bytes[third + third / 2] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    rt.block_on(async {
        let log = FileLog::new(dir.path());
        assert_eq!(streambed_test::records::count_first(&log, "t", 2).await, 2);
        assert_eq!(streambed_test::records::count_first(&log, "t", 2).await, 2);
        let damage = log.damage_stats(&topic).unwrap();
        assert_eq!(damage.regions, 1);
        let damaged = recording
            .recorded()
            .counter_total("logged_damaged_bytes_total");
        assert_eq!(damaged, damage.bytes);
        assert!(damage.bytes > 0);
    });
}
