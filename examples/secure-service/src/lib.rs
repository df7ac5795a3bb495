//! An event-sourced service that keeps its data secret and starts fast: the smallest
//! complete use of streambed's encrypted pieces together.
//!
//! * **Events** (a thermometer's reading) are sealed with [`CborEncrypted`] under a key
//!   kept in a [`FileSecretStore`], and appended to a [`FileLog`] topic with the
//!   thermometer's id as the record key.
//! * **Key-based compaction** ([`KeyBasedRetention`]) keeps the log bounded: only the latest
//!   reading of each thermometer survives once the active file is compacted. The state is
//!   built to allow it: the latest reading per thermometer, which compaction never changes.
//! * **Snapshots**: the state is saved with `streambed-storage`, sealed under a second key,
//!   together with the offset of the last event it includes. A start loads the snapshot
//!   and replays only the events after that offset; without a snapshot it replays the
//!   whole (compacted) topic.
//!
//! ```
//! use secure_service::{Config, Service};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let config = Config::new(dir.path(), [7; 16]);
//!
//! let mut service = Service::start(&config).await.unwrap();
//! service.record(1, 21.5).await.unwrap();
//! service.save_snapshot().await.unwrap();
//! service.record(1, 22.0).await.unwrap();
//! drop(service);
//!
//! // The snapshot holds the first reading; only the second is replayed.
//! let service = Service::start(&config).await.unwrap();
//! assert_eq!(service.replayed_at_start(), 1);
//! assert_eq!(service.latest(1), Some(22.0));
//! # });
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use streambed::{
    commit_log::{CommitLog, ConsumerOffset, Offset, ProducerRecord, Subscription, Topic},
    secret_store::SecretData,
};
use streambed_codec::{CborEncrypted, Codec};
use streambed_confidant::FileSecretStore;
use streambed_logged::{compaction::KeyBasedRetention, FileLog};

/// The topic of the events.
pub const TOPIC: &str = "readings";
/// Where the key sealing the events is kept in the secret store.
pub const EVENTS_KEY: &str = "default/secrets.readings.key";
/// Where the key sealing the snapshot is kept in the secret store.
pub const SNAPSHOT_KEY: &str = "default/secrets.snapshot.key";

/// The size of the active file past which it is compacted: large enough that compaction
/// runs seldom, small enough that a start without a snapshot stays quick.
const COMPACTION_THRESHOLD: u64 = 1024 * 1024;
/// At most this many thermometers are told apart by a compaction pass.
const MAX_THERMOMETERS: usize = 100_000;

/// An event: what happened, sealed before it reaches the disk.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub enum Event {
    /// A thermometer measured a temperature.
    Reading {
        /// Which thermometer (also the record's key, for compaction).
        thermometer: u32,
        /// What it measured.
        celsius: f32,
    },
}

/// What the service knows: the latest reading of each thermometer. Compaction drops only
/// readings that a later one of the same thermometer replaces, so it never changes this.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct State {
    /// The latest reading by thermometer.
    pub latest: BTreeMap<u32, f32>,
}

impl State {
    fn apply(&mut self, event: Event) {
        match event {
            Event::Reading {
                thermometer,
                celsius,
            } => {
                self.latest.insert(thermometer, celsius);
            }
        }
    }
}

/// A saved state and the offset of the last event it includes.
#[derive(Debug, Default, Deserialize, Serialize)]
struct Snapshot {
    offset: Option<Offset>,
    state: State,
}

/// Where the service keeps its files, and the root secret of its secret store.
#[derive(Clone, Debug)]
pub struct Config {
    /// The folder holding `log/`, `secrets/` and `snapshot`.
    pub dir: PathBuf,
    /// The 16-byte key every secret file is sealed under; a real service receives it from
    /// outside (systemd credentials, say), never from its own folder.
    pub root_secret: [u8; 16],
}

impl Config {
    /// Files under `dir`, secrets under `root_secret`.
    pub fn new(dir: impl Into<PathBuf>, root_secret: [u8; 16]) -> Self {
        Self {
            dir: dir.into(),
            root_secret,
        }
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn secrets_dir(&self) -> PathBuf {
        self.dir.join("secrets")
    }

    /// The sealed snapshot file.
    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join("snapshot")
    }
}

/// Why the service could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Its folders could not be made private.
    #[error("cannot prepare {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The secret store refused to read or create a key.
    #[error("the secret store cannot provide the key at {secret_path}: {reason}")]
    Key {
        /// The key's secret path.
        secret_path: &'static str,
        /// What the store said.
        reason: String,
    },
    /// The snapshot could not be loaded or saved.
    #[error("cannot {action} the snapshot {}: {reason}", path.display())]
    Snapshot {
        /// `"load"` or `"save"`.
        action: &'static str,
        /// The snapshot file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The log refused to compact the topic or to append an event.
    #[error("the commit log refused to {action}: {reason}")]
    Log {
        /// What was asked of it.
        action: &'static str,
        /// What it said.
        reason: String,
    },
}

/// A running service: its log, its keys and its state.
pub struct Service {
    log: FileLog,
    ss: FileSecretStore,
    codec: CborEncrypted,
    snapshot_path: PathBuf,
    snapshot: Snapshot,
    replayed_at_start: u64,
}

impl Service {
    /// Starts the service: makes its keys on the first start, registers compaction, loads
    /// the snapshot and replays the events after it.
    pub async fn start(config: &Config) -> Result<Self, ServiceError> {
        for dir in [config.dir.clone(), config.log_dir(), config.secrets_dir()] {
            private_folder(&dir)?;
        }
        let ss = FileSecretStore::new(
            config.secrets_dir(),
            &config.root_secret,
            Duration::from_secs(60),
            10,
            None,
        );
        for secret_path in [EVENTS_KEY, SNAPSHOT_KEY] {
            ensure_key(&ss, secret_path).await?;
        }
        let codec = CborEncrypted::new(&ss, EVENTS_KEY)
            .await
            .ok_or_else(|| ServiceError::Key {
                secret_path: EVENTS_KEY,
                reason: "it is not a 32-hex-character key".to_string(),
            })?;

        let mut log = FileLog::with_config(
            config.log_dir(),
            COMPACTION_THRESHOLD,
            64 * 1024,
            64 * 1024,
            64 * 1024,
            16 * 1024,
        );
        log.register_compaction(Topic::from(TOPIC), KeyBasedRetention::new(MAX_THERMOMETERS))
            .await
            .map_err(|e| ServiceError::Log {
                action: "compact the topic",
                reason: e.to_string(),
            })?;

        let snapshot_path = config.snapshot_path();
        let snapshot: Snapshot =
            streambed_storage::load_struct(&snapshot_path, &ss, SNAPSHOT_KEY, |bytes| {
                ciborium::from_reader(bytes)
            })
            .await
            .map_err(|e| ServiceError::Snapshot {
                action: "load",
                path: snapshot_path.clone(),
                reason: e.to_string(),
            })?;

        let mut service = Self {
            log,
            ss,
            codec,
            snapshot_path,
            snapshot,
            replayed_at_start: 0,
        };
        service.replayed_at_start = service.replay().await;
        Ok(service)
    }

    /// Applies every event after the snapshot's offset up to the end of the topic now,
    /// answering how many records were read.
    async fn replay(&mut self) -> u64 {
        let topic = Topic::from(TOPIC);
        let Some(end) = self
            .log
            .offsets(topic.clone(), 0)
            .await
            .map(|o| o.end_offset)
        else {
            return 0;
        };
        if self.snapshot.offset.is_some_and(|seen| seen >= end) {
            return 0;
        }
        let after = self.snapshot.offset.map(|offset| ConsumerOffset {
            topic: topic.clone(),
            partition: 0,
            offset,
        });
        let subscriptions = vec![Subscription { topic }];
        let mut records = self.log.scoped_subscribe(
            "secure-service",
            after.into_iter().collect(),
            subscriptions,
            None,
        );
        let mut read = 0;
        while let Some(mut record) = records.next().await {
            read += 1;
            // A record sealed under another key, or damaged, is skipped: the rest of
            // the history still counts.
            if let Some(event) = self.codec.decode(&mut record.value) {
                self.snapshot.state.apply(event);
            }
            self.snapshot.offset = Some(record.offset);
            if record.offset >= end {
                break;
            }
        }
        read
    }

    /// Records a reading: sealed, appended, then applied to the state.
    pub async fn record(&mut self, thermometer: u32, celsius: f32) -> Result<Offset, ServiceError> {
        let event = Event::Reading {
            thermometer,
            celsius,
        };
        let value = self
            .codec
            .encode(event.clone())
            .ok_or_else(|| ServiceError::Log {
                action: "take an event that cannot be encoded",
                reason: format!("{event:?}"),
            })?;
        let record = ProducerRecord {
            topic: Topic::from(TOPIC),
            headers: vec![],
            timestamp: None,
            key: u64::from(thermometer),
            value,
            partition: 0,
        };
        let offset = self
            .log
            .produce(record)
            .await
            .map_err(|e| ServiceError::Log {
                action: "append an event",
                reason: e.to_string(),
            })?
            .offset;
        // Applied only once the log holds it: the state never runs ahead of the log.
        self.snapshot.state.apply(event);
        self.snapshot.offset = Some(offset);
        Ok(offset)
    }

    /// Saves the state and the offset it has seen, sealed, replacing the last snapshot
    /// atomically.
    pub async fn save_snapshot(&self) -> Result<(), ServiceError> {
        let to_cbor = |snapshot: &Snapshot| {
            let mut bytes = Vec::new();
            ciborium::into_writer(snapshot, &mut bytes).map(|()| bytes)
        };
        streambed_storage::save_struct(
            &self.snapshot_path,
            &self.ss,
            SNAPSHOT_KEY,
            to_cbor,
            rand::thread_rng,
            &self.snapshot,
        )
        .await
        .map_err(|e| ServiceError::Snapshot {
            action: "save",
            path: self.snapshot_path.clone(),
            reason: e.to_string(),
        })
    }

    /// The latest reading of `thermometer`.
    pub fn latest(&self, thermometer: u32) -> Option<f32> {
        self.snapshot.state.latest.get(&thermometer).copied()
    }

    /// Everything the service knows.
    pub fn state(&self) -> &State {
        &self.snapshot.state
    }

    /// The offset of the last event in the state.
    pub fn offset(&self) -> Option<Offset> {
        self.snapshot.offset
    }

    /// How many records the last start read from the log: those after the snapshot.
    pub fn replayed_at_start(&self) -> u64 {
        self.replayed_at_start
    }

    /// The log, to look at its files or compaction.
    pub fn log(&self) -> &FileLog {
        &self.log
    }
}

/// Creates `dir` if needed with no access for group or others: the secret store refuses
/// to work in a folder others can read.
fn private_folder(dir: &Path) -> Result<(), ServiceError> {
    let failed = |source| ServiceError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)
}

/// Makes a random key at `secret_path` unless one is there.
async fn ensure_key(ss: &FileSecretStore, secret_path: &'static str) -> Result<(), ServiceError> {
    let failed = |reason: String| ServiceError::Key {
        secret_path,
        reason,
    };
    let found = ss
        .try_get_secret(secret_path)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if found.is_some() {
        return Ok(());
    }
    let key: [u8; 16] = rand::random();
    let data = HashMap::from([("value".to_string(), hex::encode(key))]);
    // Kept if another start made one meanwhile, so both use the same key.
    ss.try_create_secret_if_absent(secret_path, SecretData { data })
        .await
        .map(|_| ())
        .map_err(|e| failed(e.to_string()))
}

/// The README's Rust example runs as a doctest too, so the walk-through cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
