//! Model-based property tests: random sequences of produces, reopens, torn tails, flipped
//! bytes, compactions and subscriptions from an offset, each checked against an in-memory
//! model of what must still be readable. Example-based tests pin the cases someone thought
//! of; this finds the interleavings nobody did.
//!
//! The model's rules:
//! * every acknowledged record reads back, in order, with its key and value, unless a
//!   flipped byte landed in it, a truncation cut it off, or compaction may have dropped it
//!   (it has as many later records of its key as the strategy keeps);
//! * nothing is read that was not acknowledged;
//! * offsets rise strictly and a new record's offset is above every offset still held or
//!   damaged, across reopens, even when the damage makes the last record of the active
//!   file look like a torn write (it is cut off, its offset is not given out again);
//! * `offsets()` names the first and last records a subscriber reads, and a subscription
//!   from an offset reads exactly the records after it.
//!
//! `PROPTEST_CASES` sets the number of cases (64 by default); `MODEL_STATS` prints what
//! each case exercised (run with `--nocapture`), `MODEL_TRACE` the files' layout at every
//! check. The `replay_` tests run sequences the property test once failed on.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use futures_util::future::join_all;
use proptest::{prelude::*, test_runner::Config as ProptestConfig};
use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, ProducerRecord, Subscription, Topic,
};
use tokio_stream::StreamExt;

use crate::{
    compaction::{KeyBasedRetention, NthKeyBasedRetention},
    files,
    frame::{Frame, Tail},
    shared::lock,
    FileLog,
};

const TOPIC: &str = "t";
const MAX_RECORD: usize = 4096;
/// Longer than any wait a correct log makes us do, even on a loaded machine.
const GUARD: Duration = Duration::from_secs(20);

/// A value's bytes, generated from a length and a seed so that failing sequences print
/// short. Random bytes hold zeros, where the framer tries to resynchronise.
#[derive(Clone, Copy, Debug)]
struct Value {
    len: usize,
    seed: u8,
}

impl Value {
    fn bytes(self) -> Vec<u8> {
        let mut x = u32::from(self.seed).wrapping_mul(2_654_435_761) | 1;
        (0..self.len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }
}

/// A position in something of a size known only when the operation runs (a fraction of
/// it, in 64-bit fixed point). Ours rather than proptest's `Index` so that a failing
/// sequence it prints can be written down again as a regression test.
#[derive(Clone, Copy, Debug)]
struct Index(u64);

impl Index {
    fn index(self, size: usize) -> usize {
        ((size as u128 * u128::from(self.0)) >> 64) as usize
    }

    fn get<T>(self, slice: &[T]) -> &T {
        &slice[self.index(slice.len())]
    }
}

fn index() -> impl Strategy<Value = Index> {
    any::<u64>().prop_map(Index)
}

#[derive(Clone, Copy, Debug)]
enum Retention {
    Latest,
    LastN(usize),
}

impl Retention {
    fn kept_per_key(self) -> usize {
        match self {
            Retention::Latest => 1,
            Retention::LastN(n) => n,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Setup {
    threshold: u64,
    read_buffer: usize,
    retention: Retention,
}

#[derive(Clone, Debug)]
enum Op {
    /// Produced concurrently, so that they share writes.
    Produce(Vec<(u64, Value)>),
    Reopen,
    /// Cuts the active file at this byte (of its length), with the log closed.
    Truncate(Index),
    /// XORs `mask` into a byte of one of the topic's files, with the log closed.
    Flip {
        file: Index,
        at: Index,
        mask: u8,
    },
    /// Waits until compaction is idle.
    Compact,
    /// Subscribes from the offset of one of the records the model holds.
    SubscribeFrom(Index),
}

fn value() -> impl Strategy<Value = Value> {
    let len = prop_oneof![Just(0usize), 1..16usize, 100..2000usize];
    (len, any::<u8>()).prop_map(|(len, seed)| Value { len, seed })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0..6u64, value()), 1..24).prop_map(Op::Produce),
        1 => Just(Op::Reopen),
        1 => index().prop_map(Op::Truncate),
        2 => (index(), index(), 1..=255u8)
            .prop_map(|(file, at, mask)| Op::Flip { file, at, mask }),
        1 => Just(Op::Compact),
        1 => index().prop_map(Op::SubscribeFrom),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    let retention = prop_oneof![
        Just(Retention::Latest),
        (1..4usize).prop_map(Retention::LastN)
    ];
    (512..4096u64, 64..1024usize, retention).prop_map(|(threshold, read_buffer, retention)| Setup {
        threshold,
        read_buffer,
        retention,
    })
}

/// Where a flipped byte landed: the record's file and where the record ended then.
#[derive(Clone, Copy, Debug)]
struct Flipped {
    file: (u64, u64),
    to: u64,
}

#[derive(Debug)]
struct Rec {
    key: u64,
    value: Vec<u8>,
    flipped: Option<Flipped>,
}

#[derive(Debug, Default)]
struct Model {
    recs: BTreeMap<u64, Rec>,
    kept_per_key: usize,
}

impl Model {
    /// Whether compaction may have dropped the record at `offset`: the strategy keeps
    /// later records of its key in its place.
    fn compactable(&self, offset: u64, key: u64) -> bool {
        let later = self
            .recs
            .range(offset + 1..)
            .filter(|(_, r)| r.key == key)
            .count();
        later >= self.kept_per_key
    }

    fn may_vanish(&self, offset: u64) -> bool {
        let rec = &self.recs[&offset];
        rec.flipped.is_some() || self.compactable(offset, rec.key)
    }

    /// Notes an acknowledged record, checking that its offset was never given out for a
    /// record that was, even one damaged since (readers may have read it before).
    fn acknowledged(&mut self, offset: u64, key: u64, value: Vec<u8>) {
        if let Some((o, rec)) = self.recs.range(offset..).next() {
            panic!("offset {offset} given out again: record {o} ({rec:?}) was acknowledged");
        }
        self.recs.insert(
            offset,
            Rec {
                key,
                value,
                flipped: None,
            },
        );
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The records of a file, `(offset, from, to)`, and its damaged byte ranges.
struct Layout {
    records: Vec<(u64, u64, u64)>,
    damaged: Vec<(u64, u64)>,
}

fn layout(path: &Path, read_buffer: usize) -> Layout {
    let file = File::open(path).unwrap();
    let mut records = Vec::new();
    let mut damaged = Vec::new();
    let tail = files::scan(&file, 0, read_buffer, MAX_RECORD, |frame| match frame {
        Frame::Record { view, pos, raw } => {
            records.push((view.offset, pos, pos + raw.len() as u64))
        }
        Frame::Damaged { from, to } => damaged.push((from, to)),
        Frame::End(_) => {}
    })
    .unwrap();
    match tail {
        Tail::Clean { .. } => {}
        Tail::Torn { at } => damaged.push((at, u64::MAX)),
        Tail::Damaged { from, to } => damaged.push((from, to)),
    }
    Layout { records, damaged }
}

struct Harness {
    dir: tempfile::TempDir,
    setup: Setup,
    log: Option<FileLog>,
    model: Model,
    /// Compactions finished and damaged regions met by the logs closed so far, to show
    /// with `MODEL_STATS` that the cases exercise what they claim to.
    compactions: u64,
    damage_regions: u64,
}

fn topic() -> Topic {
    Topic::from(TOPIC)
}

impl Harness {
    async fn new(setup: Setup) -> Self {
        let mut harness = Self {
            dir: tempfile::tempdir().unwrap(),
            setup,
            log: None,
            compactions: 0,
            damage_regions: 0,
            model: Model {
                kept_per_key: setup.retention.kept_per_key(),
                ..Model::default()
            },
        };
        harness.open().await;
        harness
    }

    fn path(&self, suffix: &str) -> PathBuf {
        self.dir.path().join(format!("{TOPIC}{suffix}"))
    }

    fn log(&self) -> &FileLog {
        self.log.as_ref().unwrap()
    }

    async fn open(&mut self) {
        let mut log = FileLog::with_config(
            self.dir.path(),
            self.setup.threshold,
            self.setup.read_buffer,
            512,
            512,
            MAX_RECORD,
        );
        match self.setup.retention {
            Retention::Latest => log
                .register_compaction(topic(), KeyBasedRetention::new(100))
                .await
                .unwrap(),
            Retention::LastN(n) => log
                .register_compaction(topic(), NthKeyBasedRetention::new(100, n))
                .await
                .unwrap(),
        }
        self.log = Some(log);
    }

    async fn compaction_idle(&self) {
        let shared = self.log().inner.topic(&topic()).unwrap();
        let wait = async {
            loop {
                let idle = shared.compaction_idle.notified();
                if !lock(&shared.compaction).busy && !shared.paths.ancient_history.exists() {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(20), idle).await;
            }
        };
        tokio::time::timeout(GUARD, wait)
            .await
            .expect("compaction never became idle");
    }

    /// How many compactions have finished, if none is under way: two equal marks mean
    /// the files were not compacted in between.
    fn compaction_mark(&self) -> Option<u64> {
        let shared = self.log().inner.topic(&topic()).unwrap();
        let state = lock(&shared.compaction);
        (!state.busy && !shared.paths.ancient_history.exists()).then_some(state.stats.compactions)
    }

    /// Stops the writer and the compactor and drops the log: the files are ours.
    async fn close(&mut self) {
        self.compaction_idle().await;
        let mut log = self.log.take().unwrap();
        let shared = log.inner.topic(&topic()).unwrap();
        log.close_topic(&topic());
        // Closing with no produce under way closes the files at once, aging included.
        assert!(!lock(&shared.appender).is_open());
        log.unregister_compaction(&topic());
        drop(shared.compaction_lock.lock().await);
        assert!(
            !shared.paths.ancient_history.exists(),
            "a compaction was left unfinished"
        );
        self.compactions += log.compaction_stats(&topic()).map_or(0, |s| s.compactions);
        self.damage_regions += log.damage_stats(&topic()).map_or(0, |s| s.regions);
        drop(log);
    }

    async fn produce(&mut self, batch: &[(u64, Value)]) {
        let log = self.log().clone();
        let values: Vec<Vec<u8>> = batch.iter().map(|(_, v)| v.bytes()).collect();
        let acks = join_all(batch.iter().zip(&values).map(|((key, _), value)| {
            log.produce_with_cause(ProducerRecord {
                topic: topic(),
                headers: vec![],
                timestamp: None,
                key: *key,
                value: value.clone(),
                partition: 0,
            })
        }));
        let acks = tokio::time::timeout(GUARD, acks)
            .await
            .expect("producing never finished");
        let mut acked: Vec<_> = acks
            .into_iter()
            .zip(batch.iter().zip(values))
            .map(|(ack, ((key, _), value))| (ack.unwrap().offset, *key, value))
            .collect();
        acked.sort_by_key(|(offset, _, _)| *offset);
        for (offset, key, value) in acked {
            self.model.acknowledged(offset, key, value);
        }
    }

    async fn truncate(&mut self, at: Index) {
        self.close().await;
        let path = self.path("");
        let len = fs::metadata(&path).map_or(0, |m| m.len());
        if len > 0 {
            let cut = at.index(len as usize) as u64;
            let id = file_id(&path);
            for (offset, _, to) in layout(&path, self.setup.read_buffer).records {
                if to > cut {
                    self.model.recs.remove(&offset);
                }
            }
            self.model
                .recs
                .retain(|_, r| !r.flipped.is_some_and(|f| Some(f.file) == id && f.to > cut));
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(cut)
                .unwrap();
        }
        self.open().await;
    }

    async fn flip(&mut self, file: Index, at: Index, mask: u8) {
        self.close().await;
        let candidates: Vec<PathBuf> = ["", ".history", ".ancient_history", ".index"]
            .iter()
            .map(|s| self.path(s))
            .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() > 0))
            .collect();
        if !candidates.is_empty() {
            let path = file.get(&candidates);
            let len = fs::metadata(path).unwrap().len();
            let pos = at.index(len as usize) as u64;
            if !path.to_string_lossy().ends_with(".index") {
                self.note_flip(path, pos);
            }
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap();
            let mut byte = [0u8];
            f.seek(SeekFrom::Start(pos)).unwrap();
            f.read_exact(&mut byte).unwrap();
            byte[0] ^= mask;
            f.seek(SeekFrom::Start(pos)).unwrap();
            f.write_all(&byte).unwrap();
        }
        self.open().await;
    }

    /// Marks the record a byte at `pos` of `path` lies in as one that may vanish.
    fn note_flip(&mut self, path: &Path, pos: u64) {
        let id = file_id(path).unwrap();
        let Layout { records, damaged } = layout(path, self.setup.read_buffer);
        if let Some((offset, _, to)) = records.iter().find(|(_, f, t)| (*f..*t).contains(&pos)) {
            let rec = self
                .model
                .recs
                .get_mut(offset)
                .unwrap_or_else(|| panic!("record {offset} on disk was never acknowledged"));
            rec.flipped = Some(Flipped { file: id, to: *to });
            return;
        }
        // Already damaged bytes: the record they were, if we know it, stays one that may
        // vanish; nothing else is touched.
        assert!(
            damaged.iter().any(|(f, t)| (*f..*t).contains(&pos)),
            "byte {pos} of {path:?} is neither a record nor damage"
        );
    }

    /// Reads from `after` (or the beginning) up to `end`.
    async fn read(&self, after: Option<u64>, end: u64) -> Vec<ConsumerRecord> {
        let offsets = after
            .map(|offset| ConsumerOffset {
                topic: topic(),
                partition: 0,
                offset,
            })
            .into_iter()
            .collect();
        let subscriptions = vec![Subscription { topic: topic() }];
        let mut stream = self
            .log()
            .scoped_subscribe("model", offsets, subscriptions, None);
        let mut read = Vec::new();
        while read.last().is_none_or(|r: &ConsumerRecord| r.offset < end) {
            match tokio::time::timeout(GUARD, stream.next()).await {
                Ok(Some(record)) => read.push(record),
                _ => panic!(
                    "offsets() says the topic ends at {end}, a subscriber stopped after {:?}",
                    read.last().map(|r| r.offset)
                ),
            }
        }
        read
    }

    /// Prints the layout of the topic's files, what `offsets()` said and what the model
    /// holds: what one needs to see why a sequence fails.
    fn trace(&self, offsets: Option<&streambed::commit_log::PartitionOffsets>) {
        for suffix in ["", ".history", ".index"] {
            let path = self.path(suffix);
            let Ok(bytes) = fs::read(&path) else {
                continue;
            };
            eprintln!("{TOPIC}{suffix}: {} bytes", bytes.len());
            if suffix == ".index" {
                eprintln!("  {bytes:?}");
            } else {
                let layout = layout(&path, self.setup.read_buffer);
                eprintln!("  records {:?}", layout.records);
                eprintln!("  damaged {:?}", layout.damaged);
            }
        }
        let held: Vec<_> = self.model.recs.keys().collect();
        eprintln!("offsets() {offsets:?}; the model holds {held:?}");
    }

    /// Everything a fresh subscriber reads, checked against the model and `offsets()`.
    async fn check(&self) -> Vec<ConsumerRecord> {
        let before = self.compaction_mark();
        let offsets = self.log().offsets(topic(), 0).await;
        if std::env::var_os("MODEL_TRACE").is_some() {
            self.trace(offsets.as_ref());
        }
        let read = match offsets {
            Some(o) => {
                let read = self.read(None, o.end_offset).await;
                if before.is_some() && self.compaction_mark() == before {
                    assert_eq!(read[0].offset, o.beginning_offset, "beginning offset");
                } else {
                    // A compaction that committed meanwhile moves the beginning on.
                    assert!(read[0].offset >= o.beginning_offset, "beginning offset");
                }
                assert_eq!(read.last().unwrap().offset, o.end_offset, "end offset");
                read
            }
            None => {
                streambed_test::records::read_topic(
                    self.log(),
                    &topic(),
                    Duration::from_millis(200),
                )
                .await
            }
        };
        for pair in read.windows(2) {
            assert!(
                pair[0].offset < pair[1].offset,
                "offset {} read after {}",
                pair[1].offset,
                pair[0].offset
            );
        }
        for r in &read {
            let rec = self
                .model
                .recs
                .get(&r.offset)
                .unwrap_or_else(|| panic!("read offset {}, never acknowledged", r.offset));
            assert_eq!(
                (r.key, &r.value),
                (rec.key, &rec.value),
                "offset {}",
                r.offset
            );
        }
        let mut read_offsets = read.iter().map(|r| r.offset).peekable();
        for offset in self.model.recs.keys() {
            while read_offsets.next_if(|o| o < offset).is_some() {}
            let found = read_offsets.peek() == Some(offset);
            assert!(
                found || self.model.may_vanish(*offset),
                "record {offset} ({:?}) is lost",
                self.model.recs[offset]
            );
        }
        read
    }

    async fn subscribe_from(&self, at: Index) {
        // Both reads see the same files only if no compaction commits in between.
        self.compaction_idle().await;
        let all = self.check().await;
        let Some(last) = all.last() else {
            return;
        };
        let held: Vec<u64> = self.model.recs.keys().copied().collect();
        let from = *at.get(&held);
        let expected: Vec<u64> = all.iter().map(|r| r.offset).filter(|o| *o > from).collect();
        let read: Vec<u64> = if from >= last.offset {
            vec![]
        } else {
            self.read(Some(from), last.offset)
                .await
                .iter()
                .map(|r| r.offset)
                .collect()
        };
        assert_eq!(read, expected, "subscribed after {from}");
    }

    async fn run(&mut self, op: &Op) {
        match op {
            Op::Produce(batch) => self.produce(batch).await,
            Op::Reopen => {
                self.close().await;
                self.open().await;
            }
            Op::Truncate(at) => self.truncate(*at).await,
            Op::Flip { file, at, mask } => self.flip(*file, *at, *mask).await,
            Op::Compact => self.compaction_idle().await,
            Op::SubscribeFrom(at) => self.subscribe_from(*at).await,
        }
        self.check().await;
    }
}

fn run_case(setup: Setup, ops: &[Op]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut harness = Harness::new(setup).await;
        for op in ops {
            harness.run(op).await;
        }
        // Whatever happened, the log still takes records, above every offset it holds.
        harness.produce(&[(0, Value { len: 3, seed: 1 })]).await;
        harness.close().await;
        harness.open().await;
        harness.check().await;
        harness.close().await;
        if std::env::var_os("MODEL_STATS").is_some() {
            eprintln!(
                "model case: {} ops, {} records held, {} compactions, {} damaged regions",
                ops.len(),
                harness.model.recs.len(),
                harness.compactions,
                harness.damage_regions
            );
        }
    });
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_record_not_damaged_cut_or_compacted_away_reads_back_in_order(
        setup in setup(),
        ops in prop::collection::vec(op(), 1..24),
    ) {
        run_case(setup, &ops);
    }
}

/// Runs a sequence a long run once failed on, with the small files and buffers those runs
/// found it with.
fn replay(ops: &[Op]) {
    let setup = Setup {
        threshold: 512,
        read_buffer: 64,
        retention: Retention::Latest,
    };
    run_case(setup, ops);
}

/// One bit flipped in the first of the topic's files, at `at` scaled into its size (see `Index`).
fn flip(at: u64) -> Op {
    Op::Flip {
        file: Index(0),
        at: Index(at),
        mask: 1,
    }
}

fn produce(records: &[(u64, usize)]) -> Op {
    Op::Produce(
        records
            .iter()
            .map(|(key, len)| (*key, Value { len: *len, seed: 0 }))
            .collect(),
    )
}

/// The minimal sequence that found `a_record_between_damage_and_a_torn_tail_stays_readable`
/// (damage_tests): damage at the start of an active file, an intact record, a torn tail.
#[test]
fn replay_a_record_between_damage_and_a_torn_tail_stays_readable() {
    replay(&[
        produce(&[
            (0, 0),
            (0, 0),
            (0, 481),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 15),
            (0, 10),
        ]),
        Op::Truncate(Index(7624654217133281335)),
        flip(5950562604422436006),
        flip(0),
    ]);
}

/// The minimal sequence that found
/// `compaction_keeps_the_record_after_damage_that_readers_resynchronise_on`
/// (compaction_tests): a kept record between two damaged regions of an aged file.
#[test]
fn replay_compaction_keeps_the_record_after_damage() {
    replay(&[
        produce(&[(0, 0)]),
        flip(11068046444225730970),
        produce(&[(0, 0)]),
        produce(&[(0, 0)]),
        produce(&[(1, 0), (2, 325), (0, 0), (0, 103)]),
        flip(1478696919736236603),
    ]);
}

/// The minimal sequence that found
/// `a_record_between_two_damaged_ones_at_the_start_of_a_file_stays_readable`
/// (damage_tests): damaged first and third records of an active file after an aging.
#[test]
fn replay_a_record_between_two_damaged_ones_at_the_start_of_a_file() {
    replay(&[
        produce(&[(0, 0), (0, 491), (0, 0), (0, 0), (1, 0), (1, 0)]),
        flip(9223372036854775808),
        flip(0),
    ]);
}

/// The minimal sequence the 300-case run failed on after the merge with main's framer.
#[test]
fn replay_a_record_between_damage_and_a_truncation() {
    replay(&[
        produce(&[(0, 501), (0, 0), (2, 0), (0, 0), (0, 0)]),
        flip(9223372036854775808),
        Op::Truncate(Index(9684540638697514599)),
        flip(0),
    ]);
}

/// A sequence the property test failed on (about once in 1,400 cases): it runs into the
/// second known limit of the format (see `frame`). Aged and compacted (offsets 0, 3, 4, 5
/// left), then two flips damage records 5 and 3; record 4 lies between the two damaged
/// regions, its offset jumps from 0, and only damage follows it to the end of the file, so
/// the framer takes it for part of the damage and it is not read, although its bytes are
/// intact. Ignored until the framer (or the model) handles that case.
#[test]
#[ignore = "hits known limit 2 of frame.rs: an intact record between two damaged ones at the end of a compacted history is not read"]
fn replay_a_record_with_an_offset_jump_between_damage_and_damage_to_the_end() {
    run_case(
        Setup {
            threshold: 1055,
            read_buffer: 64,
            retention: Retention::Latest,
        },
        &[
            produce(&[(2, 693), (0, 0), (0, 0), (3, 10), (1, 0), (0, 1247)]),
            flip(6797143649650005465),
            flip(6519331238901367640),
        ],
    );
}
