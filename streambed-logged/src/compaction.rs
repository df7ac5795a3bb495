//! Compaction: keeping a topic's storage bounded by dropping records that newer records of
//! the same key supersede, while the topic is being written.
//!
//! # Model
//!
//! Once compaction is registered for a topic (`FileLog::register_compaction`), each time
//! the active file passes `compaction_threshold_size` bytes the writer *ages* it: the
//! history (if any) is renamed `<topic>.ancient_history` and the active file `<topic>.history`;
//! appends continue into a new, empty active file. A background task then compacts the
//! aged files:
//!
//! 1. **Analyse**: the [`CompactionStrategy`] is fed every record of the aged files and
//!    [`collect`](CompactionStrategy::collect)s, per key, the earliest offset to keep.
//! 2. **Write** `<topic>.work` with the records kept (records whose key the strategy does
//!    not return, or did not get to, are all kept; so is the last record, which keeps the
//!    topic's end offset), then `fsync` it. Once the ancient history is read, if it holds
//!    no record to keep (the usual case: it is the previous compaction's result, and the
//!    keys it holds came again in the history), it is deleted at once, so its space is
//!    free while the work file grows: every record it held is superseded by one in the
//!    history.
//! 3. **Commit**: rename the work file over the history, then delete the ancient history
//!    if it is still there. In between, a reader that finds the ancient history reads it,
//!    then skips the copies of its kept records that start the new history.
//!
//! When the strategy reaches its key limit ([`MaxKeysReached`]`(true)`), the pass is
//! abandoned and the keys are split in two halves by a hash, each analysed and written in a
//! pass of its own, halving again as needed, until every key has been processed. Memory
//! therefore stays bounded by the key limit, at the cost of more passes over the history.
//!
//! Every step leaves files that read correctly: a crash at any point reopens with every
//! record held before, with the compacted result, or (once an ancient history that held
//! nothing to keep is gone) with the history it was superseded by, which the next aging
//! compacts; never a loss of a record the compaction keeps, never a repeated offset (see
//! `recover_history` in the crate's source for how leftovers are resolved).
//!
//! # Back-pressure and sizing
//!
//! Producing never waits for a compaction that is within one threshold: aging is a pair of
//! renames. Only when the active file passes the threshold again while the previous
//! compaction still runs does the writer stop taking records until it finishes: the
//! compaction is then more than one threshold behind. Size the threshold so that
//! compacting about `threshold + kept records` bytes (two reads, one write and an `fsync`)
//! takes less time than producing one threshold does.
//!
//! The storage a topic takes peaks just before a commit: the aged history (one threshold),
//! the work file (the records kept: one record per key for [`KeyBasedRetention`], the
//! kept records per key for [`NthKeyBasedRetention`]) and the active file, which holds
//! what was produced since the aging. While compaction keeps up that is well under two
//! thresholds plus the kept records; when it falls behind, the active file reaches the
//! threshold and the peak is two thresholds plus the kept records (each file passes the
//! threshold by at most the last write batch). An ancient history that still holds
//! records to keep (a topic with more keys than one threshold of records carries) stays
//! until the commit and adds its size.
//!
//! Size the key limit to the number of distinct keys a topic carries so that one pass
//! suffices; each halving costs another read and write of the history.

use std::{
    collections::{hash_map::Entry, HashMap, VecDeque},
    fmt::Debug,
    fs::{self, File},
    io::{self, BufWriter, Write},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use async_trait::async_trait;
use log::{error, info};
use smol_str::SmolStr;
use streambed::commit_log::{ConsumerRecord, Key, Offset};
use tokio::sync::Notify;

use crate::{
    files::{self, FileKind},
    lock, Config, TopicShared,
};

/// Per key, the earliest offset to keep: records of that key below it are removed.
pub type CompactionMap = HashMap<Key, Offset>;

/// Returned by [`CompactionStrategy::reduce`]: `true` when the record's key could not be
/// taken because the strategy holds as many keys as it may.
#[derive(Debug, PartialEq, Eq)]
pub struct MaxKeysReached(pub bool);

/// A qualified id: a string naming what a record is about (an entity type and its id, for
/// example), used instead of the record's key by the `with_qids` strategies.
pub type Qid = SmolStr;

/// Decides which records of a topic a compaction keeps.
///
/// A compaction derives a key for every record with [`key`](Self::key), feeds the record
/// to [`reduce`](Self::reduce) and finally asks [`collect`](Self::collect) for the earliest
/// offset to keep per key.
///
/// ```
/// use streambed::commit_log::{ConsumerRecord, Topic};
/// use streambed_logged::compaction::{CompactionStrategy, KeyBasedRetention};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let strategy = KeyBasedRetention::new(10);
/// let mut state = strategy.init().await;
/// let mut key_state = strategy.key_init();
/// for (offset, key) in [(0, 1), (1, 2), (2, 1)] {
///     let record = ConsumerRecord {
///         topic: Topic::from("t"), headers: vec![], timestamp: None,
///         key, value: vec![], partition: 0, offset,
///     };
///     let key = KeyBasedRetention::key(&mut key_state, &record).unwrap();
///     KeyBasedRetention::reduce(&mut state, key, record);
/// }
/// let map = KeyBasedRetention::collect(state);
/// assert_eq!((map[&1], map[&2]), (2, 1));
/// # });
/// ```
#[async_trait]
pub trait CompactionStrategy {
    /// The state of one analysis.
    type S: Debug + Send;
    /// The state needed to derive keys; kept across the passes of a compaction so that a
    /// record gets the same key in each.
    type KS: Debug + Send + Clone;

    /// The key state at the start of a compaction.
    fn key_init(&self) -> Self::KS;

    /// The key a record is compacted by; `None` keeps the record out of compaction.
    fn key(key_state: &mut Self::KS, r: &ConsumerRecord) -> Option<Key>;

    /// The state at the start of an analysis.
    async fn init(&self) -> Self::S;

    /// Takes in a record of `key`; answers [`MaxKeysReached`]`(true)` when the key is new
    /// and no more keys fit.
    fn reduce(state: &mut Self::S, key: Key, record: ConsumerRecord) -> MaxKeysReached;

    /// Per key, the earliest offset to keep.
    fn collect(state: Self::S) -> CompactionMap;
}

type QidFn = fn(&ConsumerRecord) -> Option<Qid>;

/// Key state of the `with_qids` strategies: qids numbered in order of appearance.
pub type QidKeyState = Option<(HashMap<Qid, Key>, QidFn)>;

fn qid_key(key_state: &mut QidKeyState, r: &ConsumerRecord) -> Option<Key> {
    match key_state {
        None => Some(r.key),
        Some((keys, qid_from_record)) => {
            let qid = qid_from_record(r)?;
            let next = keys.len() as Key;
            Some(*keys.entry(qid).or_insert(next))
        }
    }
}

/// Keeps the latest record of each key, as Kafka's key-based retention does.
///
/// ```
/// use streambed_logged::compaction::KeyBasedRetention;
///
/// let by_key = KeyBasedRetention::new(1_000);
/// let by_qid = KeyBasedRetention::with_qids(|r| r.headers.first().map(|h| h.key.clone()), 1_000);
/// # let _ = (by_key, by_qid);
/// ```
#[derive(Clone, Debug)]
pub struct KeyBasedRetention {
    max_compaction_keys: usize,
    qid_from_record: Option<QidFn>,
}

impl KeyBasedRetention {
    /// Compacts by the records' keys, at most `max_compaction_keys` keys per pass.
    pub fn new(max_compaction_keys: usize) -> Self {
        Self {
            max_compaction_keys,
            qid_from_record: None,
        }
    }

    /// Compacts by the qid `qid_from_record` derives (records without one are kept), at
    /// most `max_compaction_keys` qids per pass.
    pub fn with_qids(qid_from_record: QidFn, max_compaction_keys: usize) -> Self {
        Self {
            max_compaction_keys,
            qid_from_record: Some(qid_from_record),
        }
    }
}

/// State of a [`KeyBasedRetention`] analysis: the latest offset per key, and the key limit.
pub type KeyBasedRetentionState = (CompactionMap, usize);

#[async_trait]
impl CompactionStrategy for KeyBasedRetention {
    type S = KeyBasedRetentionState;
    type KS = QidKeyState;

    fn key_init(&self) -> Self::KS {
        self.qid_from_record.map(|f| (HashMap::new(), f))
    }

    fn key(key_state: &mut Self::KS, r: &ConsumerRecord) -> Option<Key> {
        qid_key(key_state, r)
    }

    async fn init(&self) -> Self::S {
        (HashMap::new(), self.max_compaction_keys)
    }

    fn reduce(state: &mut Self::S, key: Key, record: ConsumerRecord) -> MaxKeysReached {
        let (map, max_keys) = state;
        let len = map.len();
        match map.entry(key) {
            Entry::Occupied(mut e) => {
                *e.get_mut() = record.offset;
                MaxKeysReached(false)
            }
            Entry::Vacant(e) if len < *max_keys => {
                e.insert(record.offset);
                MaxKeysReached(false)
            }
            Entry::Vacant(_) => MaxKeysReached(true),
        }
    }

    fn collect(state: Self::S) -> CompactionMap {
        state.0
    }
}

/// Keeps the last `max_records_per_key` records of each key.
///
/// ```
/// use streambed_logged::compaction::NthKeyBasedRetention;
///
/// let last_ten = NthKeyBasedRetention::new(1_000, 10);
/// let by_qid = NthKeyBasedRetention::with_qids(1_000, 10, |r| Some(r.key.to_string().into()));
/// # let _ = (last_ten, by_qid);
/// ```
#[derive(Clone, Debug)]
pub struct NthKeyBasedRetention {
    max_compaction_keys: usize,
    max_records_per_key: usize,
    qid_from_record: Option<QidFn>,
}

impl NthKeyBasedRetention {
    /// Keeps `max_records_per_key` records per key, at most `max_compaction_keys` keys per
    /// pass.
    pub fn new(max_compaction_keys: usize, max_records_per_key: usize) -> Self {
        Self {
            max_compaction_keys,
            max_records_per_key,
            qid_from_record: None,
        }
    }

    /// The same, by the qid `qid_from_record` derives (records without one are kept).
    pub fn with_qids(
        max_compaction_keys: usize,
        max_records_per_key: usize,
        qid_from_record: QidFn,
    ) -> Self {
        Self {
            max_compaction_keys,
            max_records_per_key,
            qid_from_record: Some(qid_from_record),
        }
    }
}

/// State of an [`NthKeyBasedRetention`] analysis: the last offsets per key, the key limit
/// and the records kept per key.
pub type NthKeyBasedRetentionState = (HashMap<Key, VecDeque<Offset>>, usize, usize);

#[async_trait]
impl CompactionStrategy for NthKeyBasedRetention {
    type S = NthKeyBasedRetentionState;
    type KS = QidKeyState;

    fn key_init(&self) -> Self::KS {
        self.qid_from_record.map(|f| (HashMap::new(), f))
    }

    fn key(key_state: &mut Self::KS, r: &ConsumerRecord) -> Option<Key> {
        qid_key(key_state, r)
    }

    async fn init(&self) -> Self::S {
        (
            HashMap::new(),
            self.max_compaction_keys,
            self.max_records_per_key.max(1),
        )
    }

    fn reduce(state: &mut Self::S, key: Key, record: ConsumerRecord) -> MaxKeysReached {
        let (map, max_keys, per_key) = state;
        let len = map.len();
        match map.entry(key) {
            Entry::Occupied(mut e) => {
                let offsets = e.get_mut();
                if offsets.len() >= *per_key {
                    offsets.pop_front();
                }
                offsets.push_back(record.offset);
                MaxKeysReached(false)
            }
            Entry::Vacant(e) if len < *max_keys => {
                e.insert(VecDeque::from([record.offset]));
                MaxKeysReached(false)
            }
            Entry::Vacant(_) => MaxKeysReached(true),
        }
    }

    fn collect(state: Self::S) -> CompactionMap {
        state
            .0
            .into_iter()
            .filter_map(|(k, offsets)| offsets.front().map(|o| (k, *o)))
            .collect()
    }
}

/// The registration of a compactor, shared with the writer.
#[derive(Clone)]
pub(crate) struct CompactorHandle {
    stop: Arc<AtomicBool>,
    pub(crate) trigger: Arc<Notify>,
}

impl CompactorHandle {
    fn new() -> Self {
        Self {
            stop: Arc::new(AtomicBool::new(false)),
            trigger: Arc::new(Notify::new()),
        }
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.trigger.notify_one();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Compaction as the writer and compactor of one topic see it.
#[derive(Default)]
pub(crate) struct CompactionState {
    /// The registered compactor, if any.
    pub(crate) handle: Option<CompactorHandle>,
    /// Aged files await compaction or are being compacted: no aging until it clears.
    pub(crate) busy: bool,
    /// What compaction of the topic has done so far in this process.
    pub(crate) stats: CompactionStats,
    /// After a failed compaction, none is started (and producing never waits for one)
    /// before this instant.
    pub(crate) retry_after: Option<std::time::Instant>,
    failures: u32,
}

impl CompactionState {
    /// Whether a failed compaction is still backing off.
    pub(crate) fn backing_off(&self) -> bool {
        self.retry_after
            .is_some_and(|t| std::time::Instant::now() < t)
    }
}

/// The longest pause between compaction attempts after failures.
const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(300);

/// What compaction of a topic has done in this process, from
/// `FileLog::compaction_stats`.
///
/// ```
/// let stats = streambed_logged::compaction::CompactionStats::default();
/// assert_eq!(stats.compactions, 0);
/// ```
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct CompactionStats {
    /// Compactions completed.
    pub compactions: u64,
    /// Passes over the history they took (more than one per compaction when the
    /// strategy's key limit was reached).
    pub passes: u64,
    /// Bytes of aged files the compactions started from.
    pub bytes_in: u64,
    /// Bytes of history they left.
    pub bytes_out: u64,
    /// Time spent compacting.
    pub time: std::time::Duration,
}

/// Installs `strategy` as the topic's compactor, replacing (and stopping) any other.
pub(crate) fn register<CS>(shared: Arc<TopicShared>, config: Config, strategy: CS)
where
    CS: CompactionStrategy + Send + Sync + 'static,
{
    let handle = CompactorHandle::new();
    if let Some(old) = lock(&shared.compaction).handle.replace(handle.clone()) {
        old.stop();
    }
    tokio::spawn(run(shared, config, Arc::new(strategy), handle));
}

/// Stops the topic's compactor after the compaction it may be running.
pub(crate) fn unregister(shared: &TopicShared) {
    let old = lock(&shared.compaction).handle.take();
    if let Some(old) = old {
        old.stop();
    }
    shared.compaction_idle.notify_one();
}

async fn run<CS>(
    shared: Arc<TopicShared>,
    config: Config,
    strategy: Arc<CS>,
    handle: CompactorHandle,
) where
    CS: CompactionStrategy + Send + Sync + 'static,
{
    loop {
        if handle.stopped() {
            break;
        }
        let (due, backing_off) = {
            let mut state = lock(&shared.compaction);
            let backing_off = state
                .retry_after
                .and_then(|t| t.checked_duration_since(std::time::Instant::now()));
            // Aged files left by an earlier run or process are compacted first.
            if backing_off.is_none() && !state.busy && shared.paths.ancient_history.exists() {
                state.busy = true;
            }
            (state.busy && backing_off.is_none(), backing_off)
        };
        if !due {
            match backing_off {
                Some(pause) => {
                    let _ = tokio::time::timeout(pause, handle.trigger.notified()).await;
                }
                None => handle.trigger.notified().await,
            }
            continue;
        }
        let _one_at_a_time = shared.compaction_lock.clone().lock_owned().await;
        let result = compact(&shared, config, strategy.as_ref()).await;
        {
            let mut state = lock(&shared.compaction);
            match &result {
                Ok(()) => {
                    state.failures = 0;
                    state.retry_after = None;
                }
                Err(e) => {
                    state.failures = state.failures.saturating_add(1);
                    let delay = std::time::Duration::from_secs(1)
                        .saturating_mul(1 << state.failures.min(9).saturating_sub(1))
                        .min(MAX_RETRY_DELAY);
                    state.retry_after = Some(std::time::Instant::now() + delay);
                    error!(
                        "Compaction of topic {} failed ({e}); the files stay as they are and \
                         the next attempt comes in {} s at the earliest",
                        shared.topic,
                        delay.as_secs()
                    );
                }
            }
            state.busy = false;
        }
        shared.compaction_idle.notify_one();
        if let Some(beginning) = beginning(&shared, config) {
            shared.tail.send_modify(|tail| {
                tail.version = tail.version.wrapping_add(1);
                if let Some(ends) = tail.ends.as_mut() {
                    ends.0 = beginning;
                }
            });
        }
    }
}

fn beginning(shared: &TopicShared, config: Config) -> Option<Offset> {
    let files = files::open_sequence(&shared.paths).ok()?;
    files.iter().find_map(|f| {
        files::first_offset(&f.file, config.max_record_size)
            .ok()
            .flatten()
    })
}

/// Which of `parts` hash classes a key falls in (`parts` is a power of two).
fn class_of(key: Key, parts: u64) -> u64 {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) & (parts - 1)
}

/// Passes beyond which a strategy that accepts (almost) no keys is given up on.
const MAX_PARTS: u64 = 1 << 16;

/// Compacts the aged files of a topic, in as many passes as the strategy's key limit needs.
pub(crate) async fn compact<CS>(
    shared: &Arc<TopicShared>,
    config: Config,
    strategy: &CS,
) -> io::Result<()>
where
    CS: CompactionStrategy + Send + Sync + 'static,
{
    let started = std::time::Instant::now();
    let size = |path: &std::path::Path| fs::metadata(path).map_or(0, |m| m.len());
    let paths = &shared.paths;
    let bytes_in = size(&paths.ancient_history) + size(&paths.history);
    let mut key_state = strategy.key_init();
    let mut pending = VecDeque::from([(1u64, 0u64)]);
    let mut passes = 0;
    while let Some((parts, class)) = pending.pop_front() {
        if parts > MAX_PARTS {
            return Err(io::Error::other(
                "the strategy takes too few keys to make progress",
            ));
        }
        let state = strategy.init().await;
        let paths_shared = shared.clone();
        let ks = key_state.clone();
        let (ks, map) =
            blocking(move || analyse::<CS>(&paths_shared, config, ks, state, parts, class)).await?;
        key_state = ks;
        let Some(map) = map else {
            pending.push_front((parts * 2, class + parts));
            pending.push_front((parts * 2, class));
            continue;
        };
        let paths_shared = shared.clone();
        key_state =
            blocking(move || rewrite::<CS>(&paths_shared, config, key_state, &map, parts, class))
                .await?;
        passes += 1;
    }
    let time = started.elapsed();
    let bytes_out = size(&paths.history);
    info!(
        "Compacted topic {} from {bytes_in} to {bytes_out} bytes in {passes} pass(es), {:.1} ms",
        shared.topic,
        time.as_secs_f64() * 1e3
    );
    let mut state = lock(&shared.compaction);
    state.stats.compactions += 1;
    state.stats.passes += passes;
    state.stats.bytes_in += bytes_in;
    state.stats.bytes_out += bytes_out;
    state.stats.time += time;
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
}

/// What [`for_each_aged`] hands over.
enum Aged<'a> {
    /// The next record, decoded and as stored.
    Record(ConsumerRecord, &'a [u8]),
    /// Every record of the ancient history has been handed over; `last` is its last offset.
    EndOfAncientHistory { last: Option<Offset> },
}

/// Reads every record of the aged files in order, each offset once: after an interrupted
/// commit the history can repeat records of the ancient history, which readers skip too.
fn for_each_aged(
    shared: &TopicShared,
    config: Config,
    mut f: impl FnMut(Aged<'_>) -> bool,
) -> io::Result<bool> {
    let inputs = files::open_sequence(&shared.paths)?;
    let mut last: Option<Offset> = None;
    for input in inputs.iter().filter(|f| f.kind != FileKind::Active) {
        let mut go_on = true;
        let scan = files::scan(
            &input.file,
            0,
            config.read_buffer_size,
            config.max_record_size,
            |view, _, raw| {
                if go_on && last < Some(view.offset) {
                    last = Some(view.offset);
                    go_on = f(Aged::Record(view.to_consumer_record(&shared.topic), raw));
                }
            },
        )?;
        if let Some(stop) = scan.stopped {
            // History files are complete when aged; damage there is not ours to cut.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{:?} is damaged at byte {} ({stop:?})",
                    input.kind, scan.end
                ),
            ));
        }
        if go_on && input.kind == FileKind::AncientHistory {
            go_on = f(Aged::EndOfAncientHistory { last });
        }
        if !go_on {
            return Ok(false);
        }
    }
    Ok(true)
}

type Analysis<CS> = (<CS as CompactionStrategy>::KS, Option<CompactionMap>);

fn analyse<CS: CompactionStrategy>(
    shared: &TopicShared,
    config: Config,
    mut key_state: CS::KS,
    mut state: CS::S,
    parts: u64,
    class: u64,
) -> io::Result<Analysis<CS>> {
    let complete = for_each_aged(shared, config, |aged| match aged {
        Aged::Record(record, _) => match CS::key(&mut key_state, &record) {
            Some(key) if class_of(key, parts) == class => !CS::reduce(&mut state, key, record).0,
            _ => true,
        },
        Aged::EndOfAncientHistory { .. } => true,
    })?;
    Ok((key_state, complete.then(|| CS::collect(state))))
}

/// Writes the records `map` keeps to the work file and makes it the history.
///
/// The ancient history goes as soon as it is known to hold nothing to keep (a compaction
/// that follows an earlier one usually finds every record of it superseded), so that it
/// does not take space while the work file is written. Otherwise it goes after the commit.
/// Every state in between reads correctly and is resolved by `files::recover_history`.
fn rewrite<CS: CompactionStrategy>(
    shared: &TopicShared,
    config: Config,
    mut key_state: CS::KS,
    map: &CompactionMap,
    parts: u64,
    class: u64,
) -> io::Result<CS::KS> {
    let paths = &shared.paths;
    if !paths.ancient_history.exists() && !paths.history.exists() {
        return Ok(key_state);
    }
    // The ancient history may only go early if the history holds records after it: the
    // last record of the topic must stay somewhere.
    let history_first = match File::open(&paths.history) {
        Ok(history) => files::first_offset(&history, config.max_record_size)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut work = BufWriter::with_capacity(
        config.compaction_write_buffer_size,
        File::create(&paths.work)?,
    );
    // The last record is always kept (it carries the topic's end offset), so each record
    // is written only once the next one shows it was not the last.
    let mut held: Vec<u8> = Vec::new();
    let mut held_keep = false;
    let mut written = 0u64;
    let mut failure = None;
    for_each_aged(shared, config, |aged| match aged {
        Aged::Record(record, raw) => {
            if held_keep {
                if let Err(e) = work.write_all(&held) {
                    failure = Some(e);
                    return false;
                }
                written += 1;
            }
            held_keep = match CS::key(&mut key_state, &record) {
                Some(key) if class_of(key, parts) == class => match map.get(&key) {
                    Some(earliest) => record.offset >= *earliest,
                    None => true,
                },
                _ => true,
            };
            held.clear();
            held.extend_from_slice(raw);
            true
        }
        Aged::EndOfAncientHistory { last } => {
            let nothing_kept = written == 0 && !held_keep;
            if nothing_kept && last.is_some() && history_first > last {
                // Every record of it is superseded by one in the history: reading the
                // history alone now gives the compacted ancient history. A crash from
                // here on leaves the history and an unfinished work file. The history is
                // the aged active file, which buffered mode never synced: make it durable
                // first, or a power loss could keep the deletion and lose the records
                // that superseded the deleted ones.
                let removed = File::open(&paths.history)
                    .and_then(|history| history.sync_all())
                    .and_then(|()| files::sync_dir(&paths.root))
                    .and_then(|()| fs::remove_file(&paths.ancient_history));
                if let Err(e) = removed {
                    failure = Some(e);
                    return false;
                }
                held.clear();
            }
            true
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    work.write_all(&held)?;
    let work = work.into_inner().map_err(|e| e.into_error())?;
    work.sync_all()?;
    drop(work);
    // One rename commits: readers that still find the ancient history read it, then skip
    // the copies of its kept records at the start of the new history.
    fs::rename(&paths.work, &paths.history)?;
    files::sync_dir(&paths.root)?;
    // Covered by the history now (recovery removes it too, should this not last).
    match fs::remove_file(&paths.ancient_history) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(key_state)
}
