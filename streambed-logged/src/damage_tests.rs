//! Damage anywhere in a topic's files costs at most the records it touches: every other
//! record stays readable in order, offsets never repeat, and what was skipped is counted.

use std::{fs, io::Write, path::Path, time::Duration};

use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, ProducerRecord, Subscription, Topic,
};
use tokio_stream::StreamExt;

use crate::{record, FileLog};

const RECORDS: u64 = 1000;

fn produced(key: u64) -> ProducerRecord {
    ProducerRecord {
        topic: Topic::from("t"),
        headers: vec![],
        timestamp: None,
        key,
        // About 100 bytes encoded.
        value: vec![b'v'; 90],
        partition: 0,
    }
}

/// The bytes of 1,000 records of about 100 bytes (offsets 0..1000) and where each starts.
fn thousand_records() -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut starts = Vec::new();
    for i in 0..RECORDS {
        starts.push(bytes.len());
        record::encode(&mut bytes, &[], None, i, &[b'v'; 90], i);
    }
    (bytes, starts)
}

fn subscription() -> Vec<Subscription> {
    vec![Subscription {
        topic: Topic::from("t"),
    }]
}

/// What a fresh subscriber reads until the topic stays quiet.
async fn read_all(log: &FileLog, offsets: Vec<ConsumerOffset>) -> Vec<u64> {
    log.scoped_subscribe(
        "test",
        offsets,
        subscription(),
        Some(Duration::from_millis(300)),
    )
    .map(|r: ConsumerRecord| r.offset)
    .collect()
    .await
}

fn except(missing: &[u64]) -> Vec<u64> {
    (0..RECORDS).filter(|o| !missing.contains(o)).collect()
}

/// Opens `bytes` as topic `t` and checks every intact record reads in order, that
/// `offsets()` agrees before and after a produce, that the new record gets an offset
/// above every one on disk and reads back (by a fresh and a live subscriber), and that
/// the damage is counted. Returns the new record's offset.
async fn assert_damage_costs_only(dir: &Path, bytes: &[u8], missing: &[u64], case: &str) -> u64 {
    fs::write(dir.join("t"), bytes).unwrap();
    let _ = fs::remove_file(dir.join("t.index"));
    let log = FileLog::new(dir);
    let topic = Topic::from("t");
    let expected = except(missing);
    assert_eq!(read_all(&log, vec![]).await, expected, "{case}");
    let offsets = log.offsets(topic.clone(), 0).await.unwrap();
    assert_eq!(
        (offsets.beginning_offset, offsets.end_offset),
        (expected[0], *expected.last().unwrap()),
        "{case}"
    );
    let stats = log.damage_stats(&topic).unwrap();
    assert!(stats.regions >= 1 && stats.bytes >= 1, "{case}: {stats:?}");

    let mut live = log.scoped_subscribe("live", vec![], subscription(), None);
    for o in &expected {
        assert_eq!(live.next().await.unwrap().offset, *o, "{case}");
    }
    let next = log.produce(produced(7)).await.unwrap().offset;
    assert!(
        next >= RECORDS,
        "{case}: offset {next} may have been seen before"
    );
    let from_live = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .expect("the live subscriber never got the new record")
        .unwrap();
    assert_eq!(from_live.offset, next, "{case}");
    assert_eq!(
        log.offsets(topic.clone(), 0).await.unwrap().end_offset,
        next,
        "{case}"
    );
    let mut with_new = expected.clone();
    with_new.push(next);
    assert_eq!(read_all(&log, vec![]).await, with_new, "{case}");
    drop(live);
    drop(log);

    // Another log on the same files (recovery again, no writer yet) agrees.
    let reopened = FileLog::new(dir);
    assert_eq!(
        reopened.offsets(topic.clone(), 0).await.unwrap().end_offset,
        next,
        "{case}"
    );
    assert_eq!(read_all(&reopened, vec![]).await, with_new, "{case}");
    let after = reopened.produce(produced(8)).await.unwrap().offset;
    assert_eq!(after, next + 1, "{case}");
    next
}

#[tokio::test]
async fn one_byte_flipped_in_the_first_record_costs_only_that_record() {
    let (bytes, starts) = thousand_records();
    // The version, the header count, the key, the value, the offset and the CRC.
    for at in [0, 1, 3, 4, 50, starts[1] - 5, starts[1] - 1] {
        let next = flip_costs_only(&bytes, at, 0).await;
        assert_eq!(next, RECORDS);
    }
}

/// Flips byte `at` of `bytes` (as a topic's active file), checks that only record `lost`
/// is lost and that the damaged bytes stay on disk, and answers the next offset.
async fn flip_costs_only(bytes: &[u8], at: usize, lost: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut damaged = bytes.to_vec();
    damaged[at] ^= 0x5a;
    let next = assert_damage_costs_only(dir.path(), &damaged, &[lost], &format!("byte {at}")).await;
    let on_disk = fs::read(dir.path().join("t")).unwrap();
    assert_eq!(&on_disk[..damaged.len()], &damaged[..], "damage destroyed");
    next
}

#[tokio::test]
async fn one_byte_flipped_in_a_middle_record_costs_only_that_record() {
    let (bytes, starts) = thousand_records();
    for at in [0, 1, 3, 4, 50, 100, 101] {
        let pos = (starts[500] + at).min(starts[501] - 1);
        let next = flip_costs_only(&bytes, pos, 500).await;
        assert_eq!(next, RECORDS);
    }
}

#[tokio::test]
async fn one_byte_flipped_in_the_last_record_costs_only_that_record_and_never_its_offset() {
    let (bytes, starts) = thousand_records();
    let last = starts[999];
    // Bytes whose damage leaves a complete-looking record: version, key, value, CRC.
    for at in [last, last + 3, last + 50, bytes.len() - 1] {
        let next = flip_costs_only(&bytes, at, 999).await;
        // Offset 999 may have been read before the damage: the next record comes after
        // every offset the damaged bytes could have held.
        assert!(next > 999);
    }
}

#[tokio::test]
async fn damage_over_several_records_costs_only_those_records() {
    let (bytes, starts) = thousand_records();
    let dir = tempfile::tempdir().unwrap();
    let mut damaged = bytes.clone();
    // From inside record 300 to inside record 303.
    for b in &mut damaged[starts[300] + 20..starts[303] + 20] {
        *b = 0xaa;
    }
    assert_damage_costs_only(dir.path(), &damaged, &[300, 301, 302, 303], "garbage").await;

    let dir = tempfile::tempdir().unwrap();
    let mut damaged = bytes.clone();
    // Zeroes over the last three records: the next offset is past all they could hold.
    for b in &mut damaged[starts[997]..] {
        *b = 0;
    }
    let next = assert_damage_costs_only(dir.path(), &damaged, &[997, 998, 999], "zeroes").await;
    assert!(next > 999);
}

#[tokio::test]
async fn a_record_inside_a_damaged_value_is_not_taken_for_one_of_the_log() {
    // Record 10 carries, as its value, an encoded record with a far higher offset; with the
    // start of record 10 damaged, that inner record must not become part of the log.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    let mut inner = Vec::new();
    record::encode(&mut inner, &[], None, 1, b"inner", 5000);
    let mut starts = Vec::new();
    for i in 0..20u64 {
        starts.push(bytes.len());
        let value: &[u8] = if i == 10 || i == 19 { &inner } else { b"plain" };
        record::encode(&mut bytes, &[], None, i, value, i);
    }
    bytes[starts[10]] ^= 0xff;
    bytes[starts[19]] ^= 0xff;
    fs::write(dir.path().join("t"), &bytes).unwrap();
    let log = FileLog::new(dir.path());
    let expected: Vec<u64> = (0..19).filter(|o| *o != 10).collect();
    assert_eq!(read_all(&log, vec![]).await, expected);
    let next = log.produce(produced(1)).await.unwrap().offset;
    assert!(next > 19 && next < 5000, "next offset {next}");
    let mut with_new = expected;
    with_new.push(next);
    assert_eq!(read_all(&log, vec![]).await, with_new);
}

#[tokio::test]
async fn garbage_in_the_index_costs_time_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::new(dir.path());
    for i in 0..RECORDS {
        log.produce(produced(i)).await.unwrap();
    }
    drop(log);
    let index = dir.path().join("t.index");
    let good = fs::read(&index).unwrap();
    let mut garbage = good[..8].to_vec();
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        garbage.extend_from_slice(&x.to_le_bytes()[..7]);
    }
    let mut end = RECORDS - 1;
    for (case, content) in [("entries", garbage), ("no magic", vec![0x55; 77])] {
        fs::write(&index, &content).unwrap();
        let log = FileLog::new(dir.path());
        assert_eq!(
            log.offsets(Topic::from("t"), 0).await.unwrap().end_offset,
            end,
            "{case}"
        );
        let after_500 = vec![ConsumerOffset {
            topic: Topic::from("t"),
            partition: 0,
            offset: 500,
        }];
        assert_eq!(
            read_all(&log, after_500).await,
            (501..=end).collect::<Vec<_>>(),
            "{case}"
        );
        assert_eq!(read_all(&log, vec![]).await.len() as u64, end + 1);
        let next = log.produce(produced(0)).await.unwrap().offset;
        assert_eq!(next, end + 1, "{case}");
        end = next;
        assert_eq!(
            read_all(&log, vec![]).await.last().copied(),
            Some(next),
            "{case}"
        );
        assert_eq!(log.damage_stats(&Topic::from("t")).unwrap().regions, 0);
    }
}

#[tokio::test]
async fn a_live_subscriber_of_another_log_skips_damage_appended_by_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let writer = FileLog::new(dir.path());
    for i in 0..10 {
        writer.produce(produced(i)).await.unwrap();
    }
    drop(writer);
    let reader = FileLog::new(dir.path());
    let mut live = reader.scoped_subscribe("live", vec![], subscription(), None);
    for o in 0..10 {
        assert_eq!(live.next().await.unwrap().offset, o);
    }
    // Another writer leaves garbage, then intact records.
    let mut appended = vec![0x00, 0x07, 0xaa, 0xbb, 0xcc, 0x00, 0x00, 0x31];
    for i in 10..13u64 {
        record::encode(&mut appended, &[], None, i, b"after", i);
    }
    fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("t"))
        .unwrap()
        .write_all(&appended)
        .unwrap();
    for o in 10..13 {
        let r = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("the live subscriber stopped at the damage")
            .unwrap();
        assert_eq!(r.offset, o);
    }
    assert_eq!(reader.damage_stats(&Topic::from("t")).unwrap().regions, 1);
}

#[tokio::test]
async fn damage_at_the_end_of_a_compacted_history_never_makes_offsets_repeat() {
    // A compacted history has gaps between offsets; its last record (offset 900) is
    // damaged, and no record was produced since the aging.
    let dir = tempfile::tempdir().unwrap();
    let mut history = Vec::new();
    let mut last_start = 0;
    for o in [3u64, 40, 41, 500, 900] {
        last_start = history.len();
        record::encode(&mut history, &[], None, o, b"kept value", o);
    }
    history[last_start + 6] ^= 0x10;
    fs::write(dir.path().join("t.history"), &history).unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(read_all(&log, vec![]).await, vec![3, 40, 41, 500]);
    let next = log.produce(produced(1)).await.unwrap().offset;
    assert!(next > 900, "offset {next} may have been seen before");
    assert_eq!(read_all(&log, vec![]).await, vec![3, 40, 41, 500, next]);
    assert_eq!(log.damage_stats(&Topic::from("t")).unwrap().regions, 1);
}

#[tokio::test]
async fn damage_in_an_ancient_history_costs_only_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut ancient = Vec::new();
    let mut starts = Vec::new();
    for o in 0..10u64 {
        starts.push(ancient.len());
        record::encode(&mut ancient, &[], None, o, b"ancient", o);
    }
    ancient[starts[3] + 8] ^= 0x01;
    let mut history = Vec::new();
    for o in 10..20u64 {
        record::encode(&mut history, &[], None, o, b"history", o);
    }
    fs::write(dir.path().join("t.ancient_history"), &ancient).unwrap();
    fs::write(dir.path().join("t.history"), &history).unwrap();
    let log = FileLog::new(dir.path());
    let expected: Vec<u64> = (0..20).filter(|o| *o != 3).collect();
    assert_eq!(read_all(&log, vec![]).await, expected);
    assert_eq!(log.produce(produced(1)).await.unwrap().offset, 20);
    let mut with_new = expected;
    with_new.push(20);
    assert_eq!(read_all(&log, vec![]).await, with_new);
    assert_eq!(log.damage_stats(&Topic::from("t")).unwrap().regions, 1);
}

#[tokio::test]
async fn a_long_run_of_zeroes_or_garbage_is_skipped() {
    let (bytes, starts) = thousand_records();
    for fill in [0x00u8, 0xff] {
        let mut damaged = bytes[..starts[500]].to_vec();
        damaged.extend(std::iter::repeat_n(fill, 256 * 1024));
        damaged.extend_from_slice(&bytes[starts[500]..]);
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("t"), &damaged).unwrap();
        let log = FileLog::new(dir.path());
        assert_eq!(read_all(&log, vec![]).await, except(&[]), "fill {fill:#x}");
        assert_eq!(log.produce(produced(1)).await.unwrap().offset, RECORDS);
        let stats = log.damage_stats(&Topic::from("t")).unwrap();
        assert_eq!(stats.bytes, 256 * 1024, "fill {fill:#x}");
    }
}

/// An active file as a compaction leaves it (offsets from 1,000 on, after a history of
/// 0..1000) whose first record is damaged and whose last record was torn by a crash.
#[tokio::test]
async fn a_damaged_first_record_before_a_torn_tail_costs_only_those_two_records() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), thousand_records().0).unwrap();
    let mut active = Vec::new();
    record::encode(&mut active, &[], None, 1000, &[b'v'; 90], 1000);
    active[50] ^= 0x5a;
    record::encode(&mut active, &[], None, 1001, &[b'v'; 90], 1001);
    let mut torn = Vec::new();
    record::encode(&mut torn, &[], None, 1002, &[b'v'; 90], 1002);
    active.extend_from_slice(&torn[..torn.len() / 2]);
    fs::write(dir.path().join("t"), &active).unwrap();

    let mut expected: Vec<u64> = (0..RECORDS).chain([1001]).collect();
    let log = FileLog::new(dir.path());
    assert_eq!(read_all(&log, vec![]).await, expected, "before recovery");
    let next = log.produce(produced(7)).await.unwrap().offset;
    assert_eq!(
        next, 1003,
        "the torn record's offset 1002 may have been read"
    );
    expected.push(next);
    assert_eq!(read_all(&log, vec![]).await, expected, "after recovery");
    drop(log);
    let reopened = FileLog::new(dir.path());
    assert_eq!(
        read_all(&reopened, vec![]).await,
        expected,
        "after a restart"
    );
    assert_eq!(
        reopened.produce(produced(8)).await.unwrap().offset,
        next + 1
    );
}

#[tokio::test]
async fn a_damaged_active_file_after_a_history_reserves_only_the_offsets_it_can_hold() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), thousand_records().0).unwrap();
    let mut active = Vec::new();
    record::encode(&mut active, &[], None, 1000, &[b'v'; 90], 1000);
    active[50] ^= 0x5a;
    let room = (active.len() as u64).div_ceil(10);
    fs::write(dir.path().join("t"), &active).unwrap();

    let log = FileLog::new(dir.path());
    let next = log.produce(produced(7)).await.unwrap().offset;
    assert!(
        (RECORDS + 1..=RECORDS + room).contains(&next),
        "offset {next}: 1000 may have been seen, nothing after {}",
        RECORDS + room
    );
}

/// A subscriber that read up to a torn tail before the writer cut it and wrote a shorter
/// record in its place (the usual restart: subscribe, then produce).
#[tokio::test]
async fn a_subscriber_at_a_torn_tail_reads_the_shorter_record_written_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    record::encode(&mut bytes, &[], None, 0, &[b'v'; 90], 0);
    let mut torn = Vec::new();
    record::encode(&mut torn, &[], None, 1, &[b'w'; 2000], 1);
    bytes.extend_from_slice(&torn[..1500]);
    fs::write(dir.path().join("t"), &bytes).unwrap();

    let log = FileLog::new(dir.path());
    let mut live = log.scoped_subscribe("live", vec![], subscription(), None);
    // Handed over once the framer reached the end of the file, torn tail included.
    assert_eq!(live.next().await.unwrap().offset, 0);
    let next = log.produce(produced(7)).await.unwrap().offset;
    assert_eq!(next, 2, "the torn record's offset 1 may have been read");
    let got = tokio::time::timeout(Duration::from_secs(5), live.next())
        .await
        .expect("the subscriber stalled on the stale torn bytes")
        .unwrap();
    assert_eq!(got.offset, next);
}

/// Found by the model tests: damage at the start of an active file (whose offsets are far
/// above what its damaged bytes could hold, as after an aging), then an intact record,
/// then a torn write. The intact record was taken for part of the damage, and so was lost
/// for good: the torn tail was never cut because the file did not end in a torn record.
#[tokio::test]
async fn a_record_between_damage_and_a_torn_tail_stays_readable() {
    let mut bytes = Vec::new();
    let mut starts = Vec::new();
    for o in 500..504 {
        starts.push(bytes.len());
        record::encode(&mut bytes, &[], None, o, &[b'v'; 90], o);
    }
    // Records 500 and 501 damaged, 502 intact, 503 torn.
    bytes[starts[0]] ^= 1;
    bytes[starts[1]] ^= 1;
    bytes.truncate(starts[3] + 5);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t"), &bytes).unwrap();

    let log = FileLog::new(dir.path());
    assert_eq!(read_all(&log, vec![]).await, [502]);
    let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
    assert_eq!((offsets.beginning_offset, offsets.end_offset), (502, 502));
    // Offset 503 (the torn record's) may have been read.
    assert_eq!(log.produce(produced(1)).await.unwrap().offset, 504);
    assert_eq!(read_all(&log, vec![]).await, [502, 504]);
}

/// Found while reviewing what the model tests allow: a history is written whole, so a
/// record cut short at its end is damage, not a torn write; the offset it held (read by
/// subscribers before the damage) was given out again.
#[tokio::test]
async fn damage_that_looks_torn_at_the_end_of_a_history_never_makes_offsets_repeat() {
    let mut history = Vec::new();
    let mut last_start = 0;
    for o in 0..5u64 {
        last_start = history.len();
        record::encode(&mut history, &[], None, o, &[b'v'; 20], o);
    }
    // The last record's value length now claims more bytes than the file holds.
    history[last_start + 4] = 120;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), &history).unwrap();
    fs::write(dir.path().join("t"), b"").unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(read_all(&log, vec![]).await, [0, 1, 2, 3]);
    let next = log.produce(produced(1)).await.unwrap().offset;
    assert!(next > 4, "offset {next} may have been seen before");
    assert_eq!(read_all(&log, vec![]).await, [0, 1, 2, 3, next]);
    assert_eq!(log.damage_stats(&Topic::from("t")).unwrap().regions, 1);
}

/// Found while reviewing what the model tests allow: damage in the first and third records
/// of an active file whose offsets start far above 0 (as after any aging). The record
/// between them was judged by offset 0 for want of an earlier record in the file, found
/// out of reach, followed by damage, and skipped.
#[tokio::test]
async fn a_record_between_two_damaged_ones_at_the_start_of_a_file_stays_readable() {
    let mut history = Vec::new();
    for o in 490..500u64 {
        record::encode(&mut history, &[], None, o, &[b'v'; 20], o);
    }
    let mut active = Vec::new();
    let mut starts = Vec::new();
    for o in 500..510u64 {
        starts.push(active.len());
        record::encode(&mut active, &[], None, o, &[b'v'; 20], o);
    }
    active[starts[0]] ^= 1;
    active[starts[2]] ^= 1;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), &history).unwrap();
    fs::write(dir.path().join("t"), &active).unwrap();
    let log = FileLog::new(dir.path());
    let expected: Vec<u64> = (490..510).filter(|o| *o != 500 && *o != 502).collect();
    assert_eq!(read_all(&log, vec![]).await, expected);
}

/// Found by the model tests (300 cases): `offsets()` of a topic this process does not
/// write framed the active file without the offsets before it, so a record between two
/// damaged regions at its start was missed and subscribers waiting for the end stopped
/// short of it.
#[tokio::test]
async fn offsets_from_disk_count_a_record_between_damage_at_the_start_of_the_active_file() {
    let mut history = Vec::new();
    for o in 0..10u64 {
        record::encode(&mut history, &[], None, o, &[], o);
    }
    let mut active = Vec::new();
    let mut starts = Vec::new();
    for o in 10..13u64 {
        starts.push(active.len());
        record::encode(&mut active, &[], None, o, &[], o);
    }
    active[starts[0]] ^= 1;
    active[starts[2]] ^= 1;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), &history).unwrap();
    fs::write(dir.path().join("t"), &active).unwrap();
    let log = FileLog::new(dir.path());
    let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
    assert_eq!((offsets.beginning_offset, offsets.end_offset), (0, 11));
    let expected: Vec<u64> = (0..10).chain([11]).collect();
    assert_eq!(read_all(&log, vec![]).await, expected);
}

/// The model tests' open case: a compacted history, the topic's first file, starts at an
/// offset far above 0, and its first and third records are damaged. Nothing before the
/// file says where its offsets start: the record between them was judged against 0, found
/// out of reach, followed by damage, and skipped. The first damaged record's fields still
/// claim its offset, and that is what it is judged against now.
#[tokio::test]
async fn a_record_between_two_damaged_ones_at_the_start_of_the_first_file_stays_readable() {
    let mut history = Vec::new();
    let mut starts = Vec::new();
    for o in 100..105u64 {
        starts.push(history.len());
        record::encode(&mut history, &[], None, o, &[b'v'; 20], o);
    }
    // In the values: the checksums fail, the fields still parse.
    history[starts[0] + 10] ^= 1;
    history[starts[2] + 10] ^= 1;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), &history).unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(read_all(&log, vec![]).await, [101, 103, 104]);
    let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
    assert_eq!((offsets.beginning_offset, offsets.end_offset), (101, 104));
}

/// Edge (a) of issue 11: a byte flipped in the last record of the active file can make it
/// look cut short (a length or a tag that now claims more bytes than the file holds). It
/// is cut off like a torn write, but readers may have read its offset before the damage:
/// the next record must never be given that offset.
#[tokio::test]
async fn a_flip_that_makes_the_last_record_look_torn_never_reuses_its_offset() {
    let (bytes, starts) = thousand_records();
    let last = starts[999];
    // Version 0, no header, no timestamp, key 999 in two bytes, then the value's length.
    let (tag, value_len) = (last + 2, last + 5);
    assert_eq!((bytes[tag], bytes[value_len]), (0, 90));
    for (at, mask) in [(value_len, 0x20), (tag, 0x01), (last + 1, 0x01)] {
        let dir = tempfile::tempdir().unwrap();
        let mut damaged = bytes.clone();
        damaged[at] ^= mask;
        fs::write(dir.path().join("t"), &damaged).unwrap();
        let log = FileLog::new(dir.path());
        assert_eq!(read_all(&log, vec![]).await, except(&[999]), "byte {at}");
        let next = log.produce(produced(7)).await.unwrap().offset;
        assert!(
            next > 999,
            "byte {at}: offset {next} may have been seen before"
        );
        let mut expected = except(&[999]);
        expected.push(next);
        assert_eq!(read_all(&log, vec![]).await, expected, "byte {at}");
        drop(log);
        let reopened = FileLog::new(dir.path());
        assert_eq!(read_all(&reopened, vec![]).await, expected, "byte {at}");
        assert_eq!(
            reopened.produce(produced(8)).await.unwrap().offset,
            next + 1
        );
    }
}

/// A genuine torn write (a crash during the append) is still cut and producing goes on
/// right after it; at most the one offset the torn record may have shown is skipped.
#[tokio::test]
async fn a_torn_write_is_cut_and_producing_goes_on_past_its_offset() {
    let (bytes, starts) = thousand_records();
    for cut in [starts[999] + 1, starts[999] + 50, bytes.len() - 1] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("t"), &bytes[..cut]).unwrap();
        let log = FileLog::new(dir.path());
        assert_eq!(read_all(&log, vec![]).await, except(&[999]), "cut at {cut}");
        let next = log.produce(produced(7)).await.unwrap().offset;
        assert_eq!(next, 1000, "cut at {cut}: only offset 999 is skipped");
        let mut written = Vec::new();
        record::encode(&mut written, &[], None, 7, &[b'v'; 90], next);
        assert_eq!(
            fs::metadata(dir.path().join("t")).unwrap().len(),
            (starts[999] + written.len()) as u64,
            "cut at {cut}: the torn bytes were not cut before the new record"
        );
        assert_eq!(log.damage_stats(&Topic::from("t")).unwrap().regions, 0);
    }
}

/// Edge (b) of issue 11: a compacted history (offsets with gaps) whose first record is
/// damaged beyond reading the offset it claimed. The record after it jumps far ahead and is
/// followed by more damage: nothing before it contradicts it, and a later record confirms
/// its order, so it is read.
#[tokio::test]
async fn a_record_whose_offset_jumps_after_damage_at_the_start_of_a_history_is_readable() {
    let mut history = Vec::new();
    let mut starts = Vec::new();
    for o in [3u64, 40, 41, 500, 900] {
        starts.push(history.len());
        record::encode(&mut history, &[], None, o, b"kept value", o);
    }
    // Neither damaged record still claims an offset.
    history[starts[0]] ^= 0x01;
    history[starts[2]] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), &history).unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(read_all(&log, vec![]).await, [40, 500, 900]);
    let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
    assert_eq!((offsets.beginning_offset, offsets.end_offset), (40, 900));
    assert_eq!(log.produce(produced(1)).await.unwrap().offset, 901);
}

/// The same with an intact record before: the record between two damaged ones jumps out of
/// reach of the one before it, and the record after the second damage confirms its order.
#[tokio::test]
async fn a_record_whose_offset_jumps_between_two_damaged_ones_of_a_history_is_readable() {
    let mut history = Vec::new();
    let mut starts = Vec::new();
    for o in [3u64, 40, 41, 500, 900, 901] {
        starts.push(history.len());
        record::encode(&mut history, &[], None, o, b"kept value", o);
    }
    history[starts[2]] ^= 0x01;
    history[starts[4]] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), &history).unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(read_all(&log, vec![]).await, [3, 40, 500, 901]);
    assert_eq!(log.produce(produced(1)).await.unwrap().offset, 902);
}

/// Edge (c) of issue 11: the first record of a topic is damaged, its fields still parse and
/// claim a huge offset, and its value holds an encoded record with a high offset. Neither
/// claim is confirmed by the records that follow, so neither hides them nor pushes the
/// next offset.
#[tokio::test]
async fn a_damaged_record_claiming_a_huge_offset_hides_nothing_after_it() {
    let mut inner = Vec::new();
    record::encode(&mut inner, &[], None, 1, b"inner", 1_000_000);
    let mut bytes = Vec::new();
    record::encode(&mut bytes, &[], None, 0, &inner, 1 << 40);
    // The checksum fails; every field still parses.
    let crc = bytes.len() - 1;
    bytes[crc] ^= 0x01;
    for o in 1..10u64 {
        record::encode(&mut bytes, &[], None, o, b"plain", o);
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t"), &bytes).unwrap();
    let log = FileLog::new(dir.path());
    let expected: Vec<u64> = (1..10).collect();
    assert_eq!(read_all(&log, vec![]).await, expected);
    let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
    assert_eq!((offsets.beginning_offset, offsets.end_offset), (1, 9));
    let next = log.produce(produced(1)).await.unwrap().offset;
    assert_eq!(next, 10);
}

/// `offsets()` of a topic this process does not write must frame each file after the
/// offsets of the files before it, as subscribers do, or it names an end that they never
/// read: here a record far above the history's offsets, with damage before and after it
/// up to the end of the active file, which a framer that knows nothing before takes.
#[tokio::test]
async fn offsets_from_disk_frame_the_active_file_after_the_offsets_before_it() {
    let mut history = Vec::new();
    for o in 0..10u64 {
        record::encode(&mut history, &[], None, o, &[b'v'; 90], o);
    }
    let mut active = Vec::new();
    let mut starts = Vec::new();
    for o in [10u64, 500, 501] {
        starts.push(active.len());
        record::encode(&mut active, &[], None, o, &[b'v'; 90], o);
    }
    active[starts[0]] ^= 1;
    active[starts[2]] ^= 1;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), &history).unwrap();
    fs::write(dir.path().join("t"), &active).unwrap();
    let log = FileLog::new(dir.path());
    let read = read_all(&log, vec![]).await;
    let offsets = log.offsets(Topic::from("t"), 0).await.unwrap();
    assert_eq!(
        (offsets.beginning_offset, offsets.end_offset),
        (read[0], *read.last().unwrap())
    );
}

/// Edge (c) of issue 11, at the end of a file: bytes after the last record that parse as a
/// record claiming a far offset, but are followed by more bytes that are not records, are
/// not a damaged record of the log: the claim does not push the next offset.
#[tokio::test]
async fn garbage_claiming_a_far_offset_at_the_end_does_not_push_the_next_offset() {
    let (mut bytes, _) = thousand_records();
    let garbage_at = bytes.len();
    record::encode(&mut bytes, &[], None, 1, b"garbage", 1 << 31);
    let crc = bytes.len() - 1;
    bytes[crc] ^= 0x01;
    bytes.extend_from_slice(&[0xff; 7]);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t"), &bytes).unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(read_all(&log, vec![]).await, except(&[]));
    let next = log.produce(produced(1)).await.unwrap().offset;
    let room = (bytes.len() - garbage_at).div_ceil(10) as u64;
    assert!(
        (RECORDS..=RECORDS + room).contains(&next),
        "offset {next}: beyond what the damaged bytes can hold"
    );
}

/// A damaged record at the end of a compacted history, then an intact one out of reach
/// of the record before the damage, then another damaged record: the intact record may
/// have been read, so the next offset passes it (and, confirmed by it, it is read).
#[tokio::test]
async fn a_record_held_back_at_the_end_of_a_history_never_makes_offsets_repeat() {
    let mut history = Vec::new();
    let mut starts = Vec::new();
    for o in [3u64, 40, 500, 900] {
        starts.push(history.len());
        record::encode(&mut history, &[], None, o, b"kept value", o);
    }
    // In the values: the checksums fail, the framing holds.
    history[starts[1] + 8] ^= 0x01;
    history[starts[3] + 8] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.history"), &history).unwrap();
    let log = FileLog::new(dir.path());
    let next = log.produce(produced(1)).await.unwrap().offset;
    assert!(next > 900, "offset {next} may have been seen before");
    assert_eq!(read_all(&log, vec![]).await, [3, 500, next]);
}

/// Found by the framer's property test: the first record's length flipped to claim more
/// bytes than the file holds, then an intact record whose offset jumps, then a damaged
/// one. The file looked like one torn write from its start, and recovery cut it off,
/// intact record included. An intact record after it makes it damage, kept in place.
#[tokio::test]
async fn an_intact_record_after_a_length_flipped_past_the_end_is_never_cut_off() {
    let mut active = Vec::new();
    let mut starts = Vec::new();
    for o in [3u64, 40, 41] {
        starts.push(active.len());
        record::encode(&mut active, &[], None, o, b"kept value", o);
    }
    // Version, header count, timestamp tag, key: the value's length, now past the end.
    assert_eq!(active[starts[0] + 4], 10);
    active[starts[0] + 4] = 0x7f;
    active[starts[2] + 8] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t"), &active).unwrap();
    let log = FileLog::new(dir.path());
    assert_eq!(read_all(&log, vec![]).await, [40]);
    let next = log.produce(produced(1)).await.unwrap().offset;
    assert!(next > 41, "offset {next} may have been seen before");
    assert_eq!(read_all(&log, vec![]).await, [40, next]);
    let on_disk = fs::read(dir.path().join("t")).unwrap();
    assert_eq!(&on_disk[..active.len()], &active[..], "damage destroyed");
}
