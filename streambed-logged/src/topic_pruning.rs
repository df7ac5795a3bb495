//! Forgetting the state of topics nobody uses any more.
//!
//! A `FileLog` keeps a `TopicShared` for every topic name it is asked about, so that all
//! the subscribers of a topic hear the same writer. Kept for ever, those entries let a
//! client grow the process without bound just by naming new topics (asking their offsets,
//! subscribing then leaving): about 1.3 KiB per name. An entry that nothing but the map
//! holds (no subscriber, no open files, no compaction registered, run or recorded, no
//! damage counted) is only
//! a cache and is dropped; asking about the topic again rebuilds it from the files.

use std::sync::Arc;

use crate::{
    compaction::CompactionStats,
    damage::DamageStats,
    shared::{lock, TopicMap, TopicShared},
};

/// Entries kept before the first pruning pass.
const FIRST_PASS_AT: usize = 1024;

/// Whether a map of `len` entries is due a pruning pass before it takes one more. Passes
/// happen at each power of two from [`FIRST_PASS_AT`] on, so their cost, linear in the
/// map, stays amortized over the insertions between them whenever most entries go.
pub(crate) fn due(len: usize) -> bool {
    len >= FIRST_PASS_AT && len.is_power_of_two()
}

/// Drops the entries of topics that nothing but the map uses.
pub(crate) fn prune_unused(topics: &mut TopicMap) {
    topics.retain(|_, shared| !unused(shared));
}

fn unused(shared: &Arc<TopicShared>) -> bool {
    // Subscribers, producers, the flusher and running compactions each hold a clone.
    if Arc::strong_count(shared) > 1 || Arc::strong_count(&shared.compaction_lock) > 1 {
        return false;
    }
    // Open files are bounded by the log's open topic limit; they go there, not here.
    if shared
        .appender
        .try_lock()
        .map_or(true, |slot| slot.is_open())
    {
        return false;
    }
    let compaction = lock(&shared.compaction);
    compaction.handle.is_none()
        && !compaction.busy
        && compaction.retry_after.is_none()
        && compaction.stats == CompactionStats::default()
        // The damage count is the user's record of what was skipped: it must not reset.
        && shared.damage.stats() == DamageStats::default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use streambed::commit_log::{CommitLog, ProducerRecord, Subscription, Topic};
    use tokio_stream::StreamExt;

    use super::*;
    use crate::{compaction::KeyBasedRetention, shared::read, FileLog};

    fn topics_held(log: &FileLog) -> usize {
        read(&log.inner.topics).len()
    }

    #[tokio::test]
    async fn asking_about_many_unknown_topics_keeps_the_topic_map_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::new(dir.path());
        for i in 0..5000 {
            assert_eq!(log.offsets(Topic::from(format!("t{i}")), 0).await, None);
        }
        assert!(topics_held(&log) <= FIRST_PASS_AT, "{}", topics_held(&log));
    }

    #[tokio::test]
    async fn topics_with_a_subscriber_or_a_compactor_keep_their_state_through_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::new(dir.path());
        log.register_compaction(Topic::from("compacted"), KeyBasedRetention::new(10))
            .await
            .unwrap();
        let mut followed = log.scoped_subscribe(
            "g",
            vec![],
            vec![Subscription {
                topic: Topic::from("followed"),
            }],
            None,
        );
        for i in 0..2 * FIRST_PASS_AT {
            let _ = log.offsets(Topic::from(format!("t{i}")), 0).await;
        }
        assert!(topics_held(&log) < FIRST_PASS_AT);
        assert!(read(&log.inner.topics).contains_key(&Topic::from("compacted")));
        assert!(read(&log.inner.topics).contains_key(&Topic::from("followed")));

        // The subscriber still hears the writer of its topic.
        log.produce(ProducerRecord {
            topic: Topic::from("followed"),
            headers: vec![],
            timestamp: None,
            key: 1,
            value: b"heard".to_vec(),
            partition: 0,
        })
        .await
        .unwrap();
        let record = tokio::time::timeout(Duration::from_secs(10), followed.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.value, b"heard");
    }
}
