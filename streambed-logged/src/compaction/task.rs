//! The background task of a topic's compaction: registration, the loop that waits for aged
//! files and runs a compaction when they are there, and the back-off after failures.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use log::error;
use streambed::{commit_log::Offset, delayer::Delayer};
use tokio::sync::Notify;

use super::{pass::compact, CompactionStrategy};
use crate::{
    config::Config,
    files,
    shared::{lock, TopicShared},
};

/// The registration of a compactor, shared with the appender.
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

/// Compaction as the appender and compactor of one topic see it.
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
    /// The pauses between failed attempts, started over by a success.
    delayer: Delayer,
}

impl CompactionState {
    /// Whether a failed compaction is still backing off.
    pub(crate) fn backing_off(&self) -> bool {
        self.retry_after
            .is_some_and(|t| std::time::Instant::now() < t)
    }
}

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
                    state.delayer.reset();
                    state.retry_after = None;
                }
                Err(e) => {
                    let delay = state.delayer.next_delay();
                    state.retry_after = Some(std::time::Instant::now() + delay);
                    error!(
                        "Compaction of topic {} failed ({e}); the files stay as they are and \
                         the next attempt comes in {:.1} s at the earliest",
                        shared.topic,
                        delay.as_secs_f64()
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
