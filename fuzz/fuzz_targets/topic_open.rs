//! A topic file may hold anything after a crash or disk damage: opening it, asking its
//! `offsets()` and subscribing must never panic, offsets must rise strictly, the end
//! offset must be the last record a subscriber reads, and damage must cost only the
//! records it touches: every intact record stays readable.
//!
//! Input (through `arbitrary`): either raw file bytes, or records (consecutive offsets from
//! 0) each preceded by garbage without zero bytes (a record starts with a zero byte, so
//! garbage cannot hide one) and followed by a torn prefix of one more record.
#![no_main]

use std::{fs, time::Duration};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use streambed::commit_log::{CommitLog, ProducerRecord, Subscription, Topic};
use streambed_logged::{fuzzing::encode_record, FileLog};
use tokio_stream::StreamExt;

/// Long enough for a record on disk to reach a subscriber on a busy machine.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a topic without records is watched for one appearing.
const QUIET: Duration = Duration::from_millis(5);

#[derive(Arbitrary, Debug)]
enum File {
    Raw(Vec<u8>),
    Damaged {
        records: Vec<(Vec<u8>, u64, Vec<u8>)>,
        torn: (Vec<u8>, u16),
    },
}

fn record(key: u64, value: Vec<u8>) -> ProducerRecord {
    ProducerRecord {
        topic: Topic::from("t"),
        headers: vec![],
        timestamp: None,
        key,
        value,
        partition: 0,
    }
}

/// The file's bytes and, when known, the offsets of the intact records in it.
fn layout(file: File) -> (Vec<u8>, Option<Vec<u64>>) {
    match file {
        File::Raw(bytes) => (bytes, None),
        File::Damaged { records, torn } => {
            let mut bytes = Vec::new();
            let mut offsets = Vec::new();
            for (offset, (garbage, key, value)) in (0..).zip(records) {
                bytes.extend(garbage.into_iter().map(|b| b.max(1)));
                encode_record(&mut bytes, &record(key, value), offset);
                offsets.push(offset);
            }
            let mut last = Vec::new();
            encode_record(&mut last, &record(0, torn.0), offsets.len() as u64);
            bytes.extend_from_slice(&last[..usize::from(torn.1) % last.len()]);
            (bytes, Some(offsets))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = Unstructured::new(data).arbitrary::<File>() else {
        return;
    };
    let (bytes, expected) = layout(file);
    let dir = tempfile::tempdir().expect("a temporary directory");
    fs::write(dir.path().join("t"), &bytes).expect("the topic file is written");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async {
        let log = FileLog::new(dir.path());
        let topic = Topic::from("t");
        let offsets = log.offsets(topic.clone(), 0).await;
        let subscription = vec![Subscription {
            topic: topic.clone(),
        }];
        let mut records = log.scoped_subscribe("fuzz", vec![], subscription, None);
        let mut read = Vec::new();
        match offsets {
            Some(offsets) => loop {
                let record = tokio::time::timeout(READ_TIMEOUT, records.next())
                    .await
                    .unwrap_or_else(|_| panic!("stalled after {read:?}, end is {offsets:?}"))
                    .expect("a subscription without idle timeout never ends");
                assert!(
                    read.last().is_none_or(|&last| record.offset > last),
                    "{read:?} then {}",
                    record.offset
                );
                assert!(
                    record.offset <= offsets.end_offset,
                    "{} beyond {offsets:?}",
                    record.offset
                );
                read.push(record.offset);
                if record.offset == offsets.end_offset {
                    assert_eq!(read[0], offsets.beginning_offset);
                    break;
                }
            },
            None => {
                if let Ok(record) = tokio::time::timeout(QUIET, records.next()).await {
                    panic!("no offsets, yet a subscriber read {record:?}");
                }
            }
        }
        if let Some(expected) = expected {
            assert_eq!(read, expected, "intact records lost");
        }
    });
});
