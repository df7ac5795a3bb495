//! The forwarding loop: read a batch of what the source has, produce it to the
//! destination until acknowledged, store the position, repeat.
//!
//! The order of those steps is the guarantee. A record's position is stored only after
//! the destination acknowledged it, so a crash anywhere loses nothing and at worst sends
//! the last batch again (at least once). Each partition's records go out in source order,
//! and a batch that the destination half took is resumed after the part it took, so order
//! holds across retries too. While the destination is unreachable the forwarder holds one
//! batch and reads nothing more (bounded memory), waiting with the shared back-off.

use std::{convert::Infallible, time::Duration};

use futures_util::{FutureExt, StreamExt};
use streambed::{
    commit_log::{CommitLog, ConsumerRecord, ProduceAllError, Subscription, Topic},
    delayer::Delayer,
};

use crate::{
    error::ForwardError,
    origin::forwarded,
    positions::{PositionFile, Positions},
};

/// The consumer group name a forwarder subscribes to its source with.
const GROUP: &str = "streambed-forward";

/// What a forwarder copies, and how much at a time.
#[derive(Clone, Debug)]
pub struct ForwardSettings {
    /// Names the source in the origin header of every forwarded record; unique among the
    /// sources forwarding to one destination (a router's serial number, say).
    pub source_id: String,
    /// The topics copied; each keeps its name at the destination.
    pub topics: Vec<Topic>,
    /// The most records produced to the destination in one request, and held while it is
    /// unreachable.
    pub max_batch: usize,
}

impl ForwardSettings {
    /// Settings forwarding `topics` as `source_id`, 500 records a batch at most.
    pub fn new(source_id: impl Into<String>, topics: impl IntoIterator<Item = Topic>) -> Self {
        Self {
            source_id: source_id.into(),
            topics: topics.into_iter().collect(),
            max_batch: 500,
        }
    }
}

/// Copies topics from one commit log to another; see the [crate docs](crate).
///
/// ```
/// use std::time::Duration;
/// use streambed::commit_log::{CommitLog, Topic};
/// use streambed_forward::{ForwardSettings, Forwarder, PositionFile};
/// use streambed_logged::FileLog;
/// # use streambed_test::records::record;
///
/// # streambed_test::runtime::current_thread().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let router = FileLog::new(dir.path().join("router"));
/// let cloud = FileLog::new(dir.path().join("cloud"));
/// router.produce(record("readings", 1, "21.5")).await.unwrap();
///
/// let mut forwarder = Forwarder::new(
///     router,
///     cloud.clone(),
///     PositionFile::new(dir.path().join("positions")),
///     ForwardSettings::new("router-7", [Topic::from("readings")]),
/// )
/// .unwrap();
/// assert_eq!(forwarder.forward_until_idle(Duration::from_millis(100)).await.unwrap(), 1);
/// assert_eq!(cloud.offsets(Topic::from("readings"), 0).await.unwrap().end_offset, 0);
/// # });
/// ```
pub struct Forwarder<S, D> {
    source: S,
    destination: D,
    settings: ForwardSettings,
    file: PositionFile,
    positions: Positions,
}

impl<S: CommitLog, D: CommitLog> Forwarder<S, D> {
    /// A forwarder resuming from the positions in `file` (from the start without one).
    /// Fails if the file exists but cannot be read: starting over would send everything
    /// again.
    pub fn new(
        source: S,
        destination: D,
        file: PositionFile,
        settings: ForwardSettings,
    ) -> Result<Self, ForwardError> {
        let positions = file.load()?;
        Ok(Self {
            source,
            destination,
            settings,
            file,
            positions,
        })
    }

    /// Where forwarding has got to (what is stored in the position file).
    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    /// Forwards for ever, following the source as records are appended. Returns only on
    /// an error that would lose the forwarder its place.
    pub async fn run(&mut self) -> Result<Infallible, ForwardError> {
        let mut delayer = Delayer::default();
        loop {
            if self.forward(None).await? > 0 {
                delayer.reset();
            }
            // The source ended a subscription that has no idle timeout; subscribe again.
            delayer.delay().await;
        }
    }

    /// Forwards until the source has had nothing new for `idle`; answers how many records
    /// were forwarded.
    pub async fn forward_until_idle(&mut self, idle: Duration) -> Result<u64, ForwardError> {
        self.forward(Some(idle)).await
    }

    async fn forward(&mut self, idle: Option<Duration>) -> Result<u64, ForwardError> {
        let source = self.source.clone();
        let subscriptions = self
            .settings
            .topics
            .iter()
            .map(|topic| Subscription {
                topic: topic.clone(),
            })
            .collect();
        let mut records = source.scoped_subscribe(
            GROUP,
            self.positions.consumer_offsets(),
            subscriptions,
            idle,
        );
        let max_batch = self.settings.max_batch.max(1);
        let mut batch = Vec::with_capacity(max_batch.min(4096));
        let mut count = 0;
        while let Some(first) = records.next().await {
            batch.push(first);
            // Whatever else is ready joins the batch; nothing waits for more.
            while batch.len() < max_batch {
                match records.next().now_or_never() {
                    Some(Some(record)) => batch.push(record),
                    _ => break,
                }
            }
            self.send(&batch).await;
            for record in &batch {
                self.positions
                    .advance(&record.topic, record.partition, record.offset);
            }
            self.store().await?;
            count += batch.len() as u64;
            batch.clear();
        }
        Ok(count)
    }

    /// Produces the batch to the destination until it has all of it.
    async fn send(&self, batch: &[ConsumerRecord]) {
        let source_id = &self.settings.source_id;
        let mut delayer = Delayer::default();
        let mut stored = 0;
        let mut refused = false;
        loop {
            let pending = batch[stored..]
                .iter()
                .map(|record| forwarded(record, source_id))
                .collect();
            match self.destination.produce_all(pending).await {
                Ok(_) => {
                    if refused {
                        log::info!("the destination takes records again");
                    }
                    return;
                }
                Err(ProduceAllError { produced, error }) => {
                    stored += produced.len();
                    if stored >= batch.len() {
                        return;
                    }
                    refused = true;
                    log::warn!(
                        "the destination refused {} records ({error}); trying again",
                        batch.len() - stored
                    );
                    delayer.delay().await;
                }
            }
        }
    }

    async fn store(&self) -> Result<(), ForwardError> {
        let (file, positions) = (self.file.clone(), self.positions.clone());
        // The write is flushed to disk: off the async workers.
        match tokio::task::spawn_blocking(move || file.save(&positions)).await {
            Ok(saved) => saved,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
}
