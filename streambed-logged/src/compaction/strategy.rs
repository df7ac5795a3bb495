//! The compaction strategies: what a compaction keeps. Apart from the machinery that runs
//! compactions, as users implement [`CompactionStrategy`] themselves.

use std::{
    collections::{hash_map::Entry, HashMap, VecDeque},
    fmt::Debug,
};

use async_trait::async_trait;
use smol_str::SmolStr;
use streambed::commit_log::{ConsumerRecord, Key, Offset};

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

/// The key part of a strategy that compacts by key or, given `qid_from_record`, by qid;
/// one definition for both built-in strategies.
macro_rules! qid_keyed {
    () => {
        type KS = QidKeyState;

        fn key_init(&self) -> Self::KS {
            self.qid_from_record.map(|f| (HashMap::new(), f))
        }

        fn key(key_state: &mut Self::KS, r: &ConsumerRecord) -> Option<Key> {
            qid_key(key_state, r)
        }
    };
}

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
    qid_keyed!();

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
    qid_keyed!();

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
