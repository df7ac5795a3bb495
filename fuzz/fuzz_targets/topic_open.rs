//! A topic file may hold anything after a crash or disk damage: opening it, asking its
//! `offsets()` and subscribing must never panic, offsets must rise strictly, the end
//! offset must be the last record a subscriber reads (none is read after it, nor at all
//! when there are no offsets), and damage must cost only the records it touches: every
//! intact record stays readable.
//!
//! Input (through `arbitrary`): its first four bytes, a little-endian `u32`, choose the
//! layout. Below 2^31, the rest of the input is the file, byte for byte (so the fuzzer's
//! comparison tracing can plant checksums and offsets straight into it). From 2^31, the
//! rest describes records (consecutive offsets from 0) each preceded by garbage without
//! zero bytes (a record starts with a zero byte, so garbage cannot hide one) and followed
//! by a torn prefix of one more record; for these, which records are intact is known.
//!
//! Speed: millions of inputs must run in minutes, so nothing per input costs a system
//! resource that only the kernel can free slowly. One process-wide fixture holds a
//! runtime, a folder (on tmpfs when there is one) and a `FileLog` with its watcher thread;
//! each input rewrites the one topic file in place. The topic is still opened from its
//! bytes every time: `offsets()` and each new subscription read the files afresh, and the
//! log keeps no record or offset of a topic it does not write. The runtime's clock is
//! paused, so waiting for a record that must not come costs no wall time: the clock jumps
//! once the subscriber has nothing left to do. Waiting is therefore exact, not a guess
//! about how busy the machine is.
#![no_main]

use std::{
    fs,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use streambed::commit_log::{CommitLog, ProducerRecord, Subscription, Topic};
use streambed_logged::{fuzzing::encode_record, FileLog};
use tokio::runtime::Runtime;
use tokio_stream::StreamExt;

/// The topic every input is written to.
const TOPIC: &str = "t";
/// Runtime (paused) time a subscriber gets to hand out the next record: reached only when
/// it waits for a change although records it has not handed out are on disk, a stall.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Runtime (paused) time a subscriber is watched for a record that must not appear: ten
/// of the intervals at which it would look at the files again without a watcher.
const QUIET: Duration = Duration::from_secs(1);

#[derive(Arbitrary, Debug)]
enum File<'a> {
    Raw(&'a [u8]),
    Damaged {
        records: Vec<(Vec<u8>, u64, Vec<u8>)>,
        torn: (Vec<u8>, u16),
    },
}

fn record(key: u64, value: Vec<u8>) -> ProducerRecord {
    ProducerRecord {
        topic: Topic::from(TOPIC),
        headers: vec![],
        timestamp: None,
        key,
        value,
        partition: 0,
    }
}

/// The file's bytes and, when known, the offsets of the intact records in it.
fn layout(file: File<'_>) -> (Vec<u8>, Option<Vec<u64>>) {
    match file {
        File::Raw(bytes) => (bytes.to_vec(), None),
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

/// What every input reuses.
struct Fixture {
    runtime: Runtime,
    log: FileLog,
    /// The topic's active file, rewritten for each input.
    file: fs::File,
}

/// The folder of this process, removed when it exits.
static DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_dir() {
    if let Some(dir) = DIR.get() {
        let _ = fs::remove_dir_all(dir);
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = parent.join(format!("streambed-fuzz-topic_open-{}", std::process::id()));
        // A folder left by an earlier process with the same id (one that crashed).
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("the fuzzing folder is created");
        DIR.set(dir.clone()).expect("the fixture is built once");
        // SAFETY: `remove_dir` is an `extern "C"` function without arguments that never
        // unwinds (it ignores the only error it can meet).
        unsafe { libc::atexit(remove_dir) };
        let file = fs::File::create(dir.join(TOPIC)).expect("the topic file is created");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime builds");
        Fixture {
            runtime,
            log: FileLog::new(&dir),
            file,
        }
    })
}

impl Fixture {
    fn write(&self, bytes: &[u8]) {
        self.file
            .write_all_at(bytes, 0)
            .expect("the topic file is written");
        self.file
            .set_len(bytes.len() as u64)
            .expect("the topic file is cut to its new length");
    }
}

async fn open_and_read(log: &FileLog, expected: Option<Vec<u64>>) {
    let topic = Topic::from(TOPIC);
    let offsets = log.offsets(topic.clone(), 0).await;
    let subscription = vec![Subscription {
        topic: topic.clone(),
    }];
    let mut records = log.scoped_subscribe("fuzz", vec![], subscription, None);
    let mut read = Vec::new();
    if let Some(offsets) = &offsets {
        loop {
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
        }
    }
    if let Ok(record) = tokio::time::timeout(QUIET, records.next()).await {
        panic!("offsets {offsets:?}, yet after {read:?} a subscriber read {record:?}");
    }
    if let Some(expected) = expected {
        assert_eq!(read, expected, "intact records lost");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = File::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (bytes, expected) = layout(file);
    let fixture = fixture();
    fixture.write(&bytes);
    fixture
        .runtime
        .block_on(open_and_read(&fixture.log, expected));
});
