//! `FileLog` as a [`CommitLog`]: offsets, produce and subscriptions. Apart from the crate
//! root, which builds and configures the log and holds its own methods.

use std::{pin::Pin, time::Duration};

use async_trait::async_trait;
use futures_util::{stream, StreamExt};
use log::warn;
use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, Partition, PartitionOffsets, ProduceAllError,
    ProducedOffset, ProducerError, ProducerRecord, Subscription, Topic,
};
use tokio_stream::Stream;

use crate::{cursor::Cursor, error::ProduceError, files, watcher, FileLog};

impl FileLog {
    fn subscribe_topic(
        &self,
        subscription: &Subscription,
        offsets: &[ConsumerOffset],
    ) -> Option<Pin<Box<dyn Stream<Item = ConsumerRecord> + Send>>> {
        let shared = match self.inner.topic(&subscription.topic) {
            Ok(shared) => shared,
            Err(e) => {
                warn!("Subscription ignored: {e}");
                return None;
            }
        };
        let last = offsets
            .iter()
            .filter(|o| o.topic == subscription.topic)
            .find(|o| {
                if o.partition != 0 {
                    warn!(
                        "Offset for partition {} of {} ignored: only partition 0 exists",
                        o.partition, o.topic
                    );
                }
                o.partition == 0
            })
            .map(|o| o.offset);
        let cursor = Cursor::new(self.inner.clone(), shared, last);
        Some(Box::pin(stream::unfold(cursor, |mut cursor| async move {
            let record = cursor.next().await;
            Some((record, cursor))
        })))
    }
}

#[async_trait]
impl CommitLog for FileLog {
    async fn offsets(&self, topic: Topic, partition: Partition) -> Option<PartitionOffsets> {
        if partition != 0 {
            return None;
        }
        let shared = match self.inner.topic(&topic) {
            Ok(shared) => shared,
            Err(e) => {
                warn!("Offsets of an invalid topic asked for: {e}");
                return None;
            }
        };
        if let Some((beginning_offset, end_offset)) = shared.tail.borrow().ends {
            return Some(PartitionOffsets {
                beginning_offset,
                end_offset,
            });
        }
        let config = self.inner.config();
        files::offsets_from_disk(
            &shared.paths,
            config.read_buffer_size,
            config.max_record_size,
            &shared.damage,
        )
        .unwrap_or_else(|e| {
            warn!("Cannot read the offsets of topic {topic}: {e}");
            None
        })
    }

    async fn produce(&self, record: ProducerRecord) -> Result<ProducedOffset, ProducerError> {
        self.produce_with_cause(record)
            .await
            .map_err(cannot_produce)
    }

    /// Records of one topic in a row are appended together: encoded at once and written
    /// with one write (one sync at [`Durability::Fsync`](crate::Durability::Fsync)), all
    /// or none of them.
    async fn produce_all(
        &self,
        records: Vec<ProducerRecord>,
    ) -> Result<Vec<ProducedOffset>, ProduceAllError> {
        let mut produced = Vec::with_capacity(records.len());
        let mut rest = &records[..];
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take_while(|r| r.topic == first.topic && r.partition == 0)
                .count()
                .max(1);
            let (now, later) = rest.split_at(run);
            match self.append_run(now).await {
                Ok(offset) => produced.extend((0..run as u64).map(|i| ProducedOffset {
                    offset: offset.wrapping_add(i),
                })),
                Err(e) => {
                    return Err(ProduceAllError {
                        produced,
                        error: cannot_produce(e),
                    })
                }
            }
            rest = later;
        }
        Ok(produced)
    }

    fn scoped_subscribe<'a>(
        &'a self,
        _consumer_group_name: &str,
        offsets: Vec<ConsumerOffset>,
        subscriptions: Vec<Subscription>,
        idle_timeout: Option<Duration>,
    ) -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>> {
        watcher::ensure_started(&self.inner);
        let mut streams: Vec<_> = subscriptions
            .iter()
            .filter_map(|s| self.subscribe_topic(s, &offsets))
            .collect();
        // Merging costs a task of its own per record; one topic needs no merging.
        let merged: Pin<Box<dyn Stream<Item = ConsumerRecord> + Send>> = match streams.pop() {
            Some(only) if streams.is_empty() => only,
            last => {
                streams.extend(last);
                Box::pin(stream::select_all(streams))
            }
        };
        match idle_timeout {
            None => Box::pin(merged),
            Some(idle) => Box::pin(stream::unfold(merged, move |mut merged| async move {
                match tokio::time::timeout(idle, merged.next()).await {
                    Ok(Some(record)) => Some((record, merged)),
                    _ => None,
                }
            })),
        }
    }
}

/// The upstream error for a record not appended: its cause is logged, as the trait's
/// error cannot carry it (`produce_with_cause` answers it to callers that want it).
fn cannot_produce(e: ProduceError) -> ProducerError {
    warn!("Cannot produce: {e}");
    ProducerError::CannotProduce
}
