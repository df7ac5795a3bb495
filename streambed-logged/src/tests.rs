//! Behaviour of `FileLog` as a whole: format, tailing, recovery, validation, index.

use std::{fs, io::Write, time::Duration};

use chrono::{TimeZone, Utc};
use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, Header, HeaderKey, PartitionOffsets, ProducedOffset,
    ProducerError, ProducerRecord, Subscription, Topic,
};
use tokio_stream::StreamExt;

use crate::{Durability, FileLog, ProduceError, TopicNameError};

fn record(topic: &str, key: u64, value: &[u8]) -> ProducerRecord {
    streambed_test::records::record(topic, key, value)
}

fn subscription(topic: &str) -> Vec<Subscription> {
    vec![Subscription {
        topic: Topic::from(topic),
    }]
}

fn after(topic: &str, offset: u64) -> Vec<ConsumerOffset> {
    vec![ConsumerOffset {
        topic: Topic::from(topic),
        partition: 0,
        offset,
    }]
}

async fn read_all(log: &FileLog, topic: &str, offsets: Vec<ConsumerOffset>) -> Vec<ConsumerRecord> {
    log.scoped_subscribe(
        "test",
        offsets,
        subscription(topic),
        Some(Duration::from_millis(200)),
    )
    .collect()
    .await
}

/// The first `n` records of a topic; the caller checks the end offset to show there are
/// no more.
async fn read_n(log: &FileLog, topic: &str, n: usize) -> Vec<ConsumerRecord> {
    let stream = log.scoped_subscribe("test", vec![], subscription(topic), None);
    tokio::time::timeout(Duration::from_secs(30), stream.take(n).collect())
        .await
        .expect("fewer records than expected")
}

/// The record `{version 0, headers [("h", [1, 2])], timestamp 1.5 s, key 300, value "hi",
/// offset 0}` encoded by hand following the postcard rules, then its CRC32C.
fn hand_made_record() -> Vec<u8> {
    let mut bytes = vec![
        0x00, // version: varint 0
        0x01, // one header
        0x01, b'h', // key: length 1, "h"
        0x02, 0x01, 0x02, // value: length 2, bytes
        0x01, // timestamp: Some
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f, // 1.5f64, little-endian
        0xac, 0x02, // key 300 as a varint
        0x02, b'h', b'i', // value
        0x00, // offset 0
    ];
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn crc32c_is_the_castagnoli_polynomial() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn the_trailer_matches_postcards_crc32_flavour_with_crc_32_iscsi() {
    // Upstream writes records with `postcard::to_stdvec_crc32(.., Crc::<u32>::new(&CRC_32_ISCSI))`;
    // postcard documents that `&[1, 0, 0x20, 0x30]` serialises with it to these bytes.
    let body = [0x04, 0x01, 0x00, 0x20, 0x30];
    assert_eq!(
        crc32c::crc32c(&body).to_le_bytes(),
        [0x8e, 0xc8, 0x1a, 0x37]
    );
}

#[tokio::test]
async fn a_hand_made_record_is_read_and_written_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("known"), hand_made_record()).unwrap();
    let log = FileLog::new(dir.path());
    let read = read_all(&log, "known", vec![]).await;
    assert_eq!(
        read,
        vec![ConsumerRecord {
            topic: Topic::from("known"),
            headers: vec![Header {
                key: HeaderKey::from("h"),
                value: vec![1, 2],
            }],
            timestamp: Some(Utc.timestamp_opt(1, 500_000_000).unwrap()),
            key: 300,
            value: b"hi".to_vec(),
            partition: 0,
            offset: 0,
        }]
    );

    let log = FileLog::new(dir.path());
    let mut produced = record("written", 300, b"hi");
    produced.headers = read[0].headers.clone();
    produced.timestamp = read[0].timestamp;
    assert_eq!(log.produce(produced).await.unwrap().offset, 0);
    assert_eq!(
        fs::read(dir.path().join("written")).unwrap(),
        hand_made_record()
    );
}

#[tokio::test]
async fn a_new_log_on_the_same_folder_reads_and_continues_a_topic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = FileLog::new(dir.path());
        for i in 0..10u64 {
            assert_eq!(log.produce(record("t", i, b"v")).await.unwrap().offset, i);
        }
    }
    let log = FileLog::new(dir.path());
    assert_eq!(
        log.offsets(Topic::from("t"), 0).await,
        Some(PartitionOffsets {
            beginning_offset: 0,
            end_offset: 9
        })
    );
    assert_eq!(log.produce(record("t", 10, b"v")).await.unwrap().offset, 10);
    let keys: Vec<u64> = read_all(&log, "t", vec![])
        .await
        .iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, (0..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn offsets_of_a_topic_never_written_are_none() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(log.offsets(Topic::from("nothing"), 0).await, None);
}

#[tokio::test]
async fn a_subscriber_gets_only_records_after_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    for i in 0..5u64 {
        log.produce(record("t", i, b"v")).await.unwrap();
    }
    let offsets: Vec<u64> = read_all(&log, "t", after("t", 2))
        .await
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, vec![3, 4]);
}

#[tokio::test]
async fn a_subscriber_receives_records_as_they_are_produced() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    let mut stream = log.scoped_subscribe("test", vec![], subscription("live"), None);
    for i in 0..100u64 {
        log.produce(record("live", i, b"v")).await.unwrap();
        let received = stream.next().await.unwrap();
        assert_eq!((received.offset, received.key), (i, i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_started_before_the_topic_exists_sees_its_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path().join("not-yet"));
    let reader = log.clone();
    let task = tokio::spawn(async move {
        let mut stream = reader.scoped_subscribe("test", vec![], subscription("late"), None);
        stream.next().await.unwrap()
    });
    tokio::task::yield_now().await;
    log.produce(record("late", 7, b"v")).await.unwrap();
    assert_eq!(task.await.unwrap().key, 7);
}

#[tokio::test]
async fn subscriptions_to_several_topics_merge_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    log.produce(record("a", 1, b"v")).await.unwrap();
    log.produce(record("b", 2, b"v")).await.unwrap();
    let subscriptions = vec![
        Subscription {
            topic: Topic::from("a"),
        },
        Subscription {
            topic: Topic::from("b"),
        },
    ];
    let mut keys: Vec<u64> = log
        .scoped_subscribe(
            "test",
            vec![],
            subscriptions,
            Some(Duration::from_millis(100)),
        )
        .map(|r| r.key)
        .collect()
        .await;
    keys.sort();
    assert_eq!(keys, vec![1, 2]);
}

/// The bytes of a topic `t` of three records, and the length of one record.
async fn three_record_topic() -> (Vec<u8>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    for i in 0..3u64 {
        log.produce(record("t", i, b"some value")).await.unwrap();
    }
    drop(log);
    let whole = fs::read(dir.path().join("t")).unwrap();
    let record_len = whole.len() / 3;
    (whole, record_len)
}

/// Opens a topic `t` holding `bytes` (two good records and a damaged third) and checks that
/// the damage is cut off: the end is offset 1, and the next record gets offset `next` (3
/// when bytes of the third record were there: offset 2 may have been read before).
async fn assert_damaged_third_record_is_cut(bytes: &[u8], next: u64, case: &str) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t"), bytes).unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(
        log.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
        1,
        "{case}"
    );
    assert_eq!(
        log.produce(record("t", 9, b"new")).await.unwrap().offset,
        next,
        "{case}"
    );
    assert_eq!(
        log.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
        next
    );
    let read = read_n(&log, "t", 3).await;
    let offsets: Vec<u64> = read.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1, next], "{case}");
    assert_eq!(read[2].value, b"new");
}

#[tokio::test]
async fn a_torn_tail_is_cut_at_every_byte_and_writing_resumes_past_its_offset() {
    let (whole, record_len) = three_record_topic().await;
    for cut in 0..record_len {
        let next = if cut == 0 { 2 } else { 3 };
        assert_damaged_third_record_is_cut(
            &whole[..2 * record_len + cut],
            next,
            &format!("cut {cut}"),
        )
        .await;
    }
}

/// A flipped byte in the last record leaves either a record that looks torn (a length now
/// claims more bytes than the file has: cut, as a torn tail is) or a complete-looking
/// damaged record: kept in place and skipped. Either way its offset is never given out
/// again.
#[tokio::test]
async fn a_corrupt_last_record_is_kept_and_its_offset_not_reused() {
    let (whole, record_len) = three_record_topic().await;
    for i in 2 * record_len..whole.len() {
        let mut bytes = whole.clone();
        bytes[i] ^= 0x40;
        let case = format!("flip {i}");
        let looks_torn = matches!(
            crate::record::decode(&bytes[2 * record_len..], 1 << 14),
            crate::record::Decoded::Incomplete
        );
        if looks_torn {
            assert_damaged_third_record_is_cut(&bytes, 3, &case).await;
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("t"), &bytes).unwrap();
        let log = FileLog::new(dir.path());
        assert_eq!(
            log.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
            1,
            "{case}"
        );
        let next = log.produce(record("t", 9, b"new")).await.unwrap().offset;
        assert!(next > 2, "{case}: offset {next} may have been seen before");
        assert_eq!(
            log.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
            next,
            "{case}"
        );
        let read = read_n(&log, "t", 3).await;
        let offsets: Vec<u64> = read.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1, next], "{case}");
        assert_eq!(read[2].value, b"new", "{case}");
        let on_disk = fs::read(dir.path().join("t")).unwrap();
        assert_eq!(
            &on_disk[..bytes.len()],
            &bytes[..],
            "{case}: damage destroyed"
        );
        assert_eq!(
            log.damage_stats(&Topic::from("t")).unwrap().regions,
            1,
            "{case}"
        );
    }
}

#[tokio::test]
async fn bad_topic_names_are_refused_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let log = FileLog::new(&root);
    let long = "x".repeat(250);
    for name in ["", "a/b", "..", "a\\b", "nul\0", long.as_str(), "t.history"] {
        let error = log
            .produce_with_cause(record(name, 1, b"v"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProduceError::InvalidTopic(_)),
            "{name:?}: {error}"
        );
        assert!(log.produce(record(name, 1, b"v")).await.is_err());
        assert_eq!(log.offsets(Topic::from(name), 0).await, None);
    }
    assert!(!root.exists(), "a refused produce created files");
    let error = log
        .produce_with_cause(record("", 1, b"v"))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ProduceError::InvalidTopic(TopicNameError::Empty)
    ));
}

#[tokio::test]
async fn a_record_over_max_record_size_is_refused_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::with_config(dir.path(), 1 << 20, 8192, 8192, 8192, 100);
    let error = log
        .produce_with_cause(record("t", 1, &[0u8; 100]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProduceError::RecordTooLarge { max: 100, .. }),
        "{error}"
    );
    assert_eq!(
        log.produce(record("t", 2, &[0u8; 10]))
            .await
            .unwrap()
            .offset,
        0
    );
    let read = read_all(&log, "t", vec![]).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].key, 2);
}

#[tokio::test]
async fn a_partition_other_than_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    let mut r = record("t", 1, b"v");
    r.partition = 1;
    let error = log.produce_with_cause(r.clone()).await.unwrap_err();
    assert!(matches!(
        error,
        ProduceError::UnsupportedPartition { partition: 1, .. }
    ));
    assert!(log.produce(r).await.is_err());
    assert!(!dir.path().join("t").exists());
    log.produce(record("t", 1, b"v")).await.unwrap();
    assert_eq!(log.offsets(Topic::from("t"), 1).await, None);
}

#[tokio::test]
async fn produce_all_appends_runs_of_a_topic_together_in_order_at_every_level() {
    for durability in [
        Durability::InProcess,
        Durability::Buffered,
        Durability::Fsync,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::new(dir.path()).with_durability(durability);
        log.produce(record("a", 0, b"before")).await.unwrap();
        let records = vec![
            record("a", 1, b"one"),
            record("a", 2, b"two"),
            record("b", 3, b"three"),
            record("a", 4, b"four"),
        ];
        let offsets: Vec<u64> = log
            .produce_all(records)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.offset)
            .collect();
        assert_eq!(offsets, [1, 2, 0, 3], "{durability:?}");
        // Acknowledged means visible: read-your-writes holds for a batch too.
        assert_eq!(
            log.offsets(Topic::from("a"), 0).await,
            Some(PartitionOffsets {
                beginning_offset: 0,
                end_offset: 3
            }),
            "{durability:?}"
        );
        let keys: Vec<u64> = read_n(&log, "a", 4).await.iter().map(|r| r.key).collect();
        assert_eq!(keys, [0, 1, 2, 4], "{durability:?}");
        assert_eq!(read_n(&log, "b", 1).await[0].value, b"three");
        assert_eq!(log.produce_all(vec![]).await.unwrap(), []);
    }
}

#[tokio::test]
async fn produce_all_appends_none_of_a_run_with_a_bad_record_and_says_what_it_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::with_config(dir.path(), 1 << 20, 8192, 8192, 8192, 100);
    let error = log
        .produce_all(vec![
            record("b", 1, b"appended"),
            record("t", 2, b"dropped with the run"),
            record("t", 3, &[0u8; 100]),
            record("t", 4, b"never tried"),
        ])
        .await
        .unwrap_err();
    assert_eq!(error.produced, [ProducedOffset { offset: 0 }]);
    assert_eq!(error.error, ProducerError::CannotProduce);
    assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
    // The refused run left nothing pending: the next record takes the first offset.
    assert_eq!(log.produce(record("t", 5, b"v")).await.unwrap().offset, 0);
    let read = read_all(&log, "t", vec![]).await;
    assert_eq!(read.iter().map(|r| r.key).collect::<Vec<_>>(), [5]);

    let mut other_partition = record("t", 6, b"v");
    other_partition.partition = 1;
    let error = log
        .produce_all(vec![
            record("t", 7, b"v"),
            other_partition,
            record("t", 8, b"v"),
        ])
        .await
        .unwrap_err();
    assert_eq!(error.produced, [ProducedOffset { offset: 1 }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_mode_acknowledges_concurrent_producers_with_distinct_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path()).with_durability(Durability::Fsync);
    let mut tasks = Vec::new();
    for p in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for i in 0..20u64 {
                offsets.push(
                    log.produce(record("t", p * 100 + i, b"v"))
                        .await
                        .unwrap()
                        .offset,
                );
            }
            offsets
        }));
    }
    let mut offsets = Vec::new();
    for t in tasks {
        offsets.extend(t.await.unwrap());
    }
    offsets.sort();
    assert_eq!(offsets, (0..160).collect::<Vec<_>>());
    assert_eq!(read_all(&log, "t", vec![]).await.len(), 160);
}

#[tokio::test]
async fn closing_a_topic_lets_producing_resume_at_the_next_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FileLog::new(dir.path());
    let reader = log.clone();
    let mut stream = reader.scoped_subscribe("test", vec![], subscription("t"), None);
    log.produce(record("t", 0, b"v")).await.unwrap();
    log.close_topic(&Topic::from("t"));
    assert_eq!(log.produce(record("t", 1, b"v")).await.unwrap().offset, 1);
    assert_eq!(stream.next().await.unwrap().offset, 0);
    assert_eq!(stream.next().await.unwrap().offset, 1);
}

#[tokio::test]
async fn offsets_and_seeks_use_the_index_and_survive_a_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    for i in 0..5000u64 {
        log.produce(record("t", i, b"0123456789")).await.unwrap();
    }
    drop(log);
    let index = dir.path().join("t.index");
    assert!(
        fs::metadata(&index).unwrap().len() > 8 + 16,
        "no index entries written"
    );

    let fresh = FileLog::new(dir.path());
    assert_eq!(
        fresh.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
        4999
    );
    let read = read_all(&fresh, "t", after("t", 4990)).await;
    assert_eq!(read.first().unwrap().offset, 4991);
    assert_eq!(read.len(), 9);

    // An index that lies (as if left from another file) is detected and not trusted.
    let mut bogus = fs::read(&index).unwrap();
    bogus.truncate(8);
    for i in 0..100u64 {
        bogus.extend_from_slice(&(i * 50).to_le_bytes());
        bogus.extend_from_slice(&(i * 7 + 3).to_le_bytes());
    }
    fs::write(&index, &bogus).unwrap();
    let fresh = FileLog::new(dir.path());
    assert_eq!(
        fresh.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
        4999
    );
    let read = read_all(&fresh, "t", after("t", 4000)).await;
    assert_eq!(read.len(), 999);
    assert_eq!(read[0].offset, 4001);
    // The writer rebuilds it.
    assert_eq!(
        fresh.produce(record("t", 0, b"v")).await.unwrap().offset,
        5000
    );
    drop(fresh);
    let rebuilt = crate::index::IndexReader::open(&index).unwrap();
    assert!(rebuilt.last().unwrap().offset > 4000);
}

#[tokio::test]
async fn a_missing_index_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    for i in 0..2000u64 {
        log.produce(record("t", i, b"0123456789")).await.unwrap();
    }
    drop(log);
    fs::remove_file(dir.path().join("t.index")).unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(
        log.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
        1999
    );
    assert_eq!(
        log.produce(record("t", 0, b"v")).await.unwrap().offset,
        2000
    );
    assert!(dir.path().join("t.index").exists());
}

#[tokio::test]
async fn files_appended_by_another_writer_are_read_in_full() {
    // Upstream (or any other writer) may append after our index was written.
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    for i in 0..3000u64 {
        log.produce(record("t", i, b"0123456789")).await.unwrap();
    }
    drop(log);
    let mut extra = Vec::new();
    for i in 3000..3010u64 {
        crate::record::encode(&mut extra, &[], None, i, b"x", i);
    }
    fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("t"))
        .unwrap()
        .write_all(&extra)
        .unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(
        log.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
        3009
    );
    let read = read_all(&log, "t", after("t", 2995)).await;
    assert_eq!(
        read.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (2996..3010).collect::<Vec<_>>()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_planted_at_a_topic_file_is_an_error_never_a_write_through_it() {
    for planted in ["t", "t.index"] {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"precious").unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join(planted)).unwrap();
        let log = FileLog::new(&root);
        let error = log
            .produce_with_cause(record("t", 1, b"value"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProduceError::Io { .. }),
            "{planted}: {error}"
        );
        assert_eq!(fs::read(&outside).unwrap(), b"precious", "{planted}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn files_and_folders_keep_other_users_out_unless_configured_otherwise() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("private");
    let log = FileLog::new(&root);
    log.produce(record("t", 1, b"value")).await.unwrap();
    assert_eq!(mode(&root) & 0o077, 0);
    for file in ["t", "t.index"] {
        assert_eq!(mode(&root.join(file)) & 0o077, 0, "{file}");
        assert_eq!(mode(&root.join(file)) & 0o600, 0o600, "{file}");
    }

    let root = dir.path().join("shared");
    let log = FileLog::new(&root).with_permissions(0o640, 0o750);
    log.produce(record("t", 1, b"value")).await.unwrap();
    // Group read survives any usual umask (022, 027); nothing beyond the asked bits.
    assert_eq!(mode(&root) & !0o750, 0);
    assert_ne!(mode(&root) & 0o050, 0);
    assert_eq!(mode(&root.join("t")) & !0o640, 0);
    assert_ne!(mode(&root.join("t")) & 0o040, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_producers_are_acknowledged_only_once_their_records_are_visible() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path()).with_durability(Durability::Fsync);
    let mut tasks = Vec::new();
    for p in 0..64u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100u64 {
                let offset = log
                    .produce(record("t", p * 1000 + i, &[7u8; 100]))
                    .await
                    .unwrap()
                    .offset;
                let end = log.offsets(Topic::from("t"), 0).await.unwrap().end_offset;
                assert!(end >= offset, "acknowledged {offset} beyond the end {end}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        log.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
        6399
    );
}
