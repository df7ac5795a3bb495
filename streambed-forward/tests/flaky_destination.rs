//! A destination that refuses records, then takes only part of a batch: the forwarder
//! waits and tries again, resends only what was not stored, and so delivers every record
//! once and in order, storing its position only for what the destination holds.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::Stream;
use streambed::commit_log::{
    CommitLog, ConsumerOffset, ConsumerRecord, Partition, PartitionOffsets, ProduceAllError,
    ProducedOffset, ProducerError, ProducerRecord, Subscription, Topic,
};
use streambed_forward::{ForwardSettings, Forwarder, Origin, PositionFile};
use streambed_logged::FileLog;
use streambed_test::records::{read_topic, record};

/// Refuses its first three batches outright, stores the first half of the fourth and
/// reports failure, then takes everything.
#[derive(Clone)]
struct Flaky {
    inner: FileLog,
    batches: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl CommitLog for Flaky {
    async fn offsets(&self, topic: Topic, partition: Partition) -> Option<PartitionOffsets> {
        self.inner.offsets(topic, partition).await
    }

    async fn produce(&self, record: ProducerRecord) -> Result<ProducedOffset, ProducerError> {
        self.inner.produce(record).await
    }

    async fn produce_all(
        &self,
        mut records: Vec<ProducerRecord>,
    ) -> Result<Vec<ProducedOffset>, ProduceAllError> {
        match self.batches.fetch_add(1, Ordering::SeqCst) {
            0..=2 => Err(ProduceAllError {
                produced: vec![],
                error: ProducerError::CannotProduce,
            }),
            3 => {
                records.truncate(records.len() / 2);
                Err(ProduceAllError {
                    produced: self.inner.produce_all(records).await?,
                    error: ProducerError::CannotProduce,
                })
            }
            _ => self.inner.produce_all(records).await,
        }
    }

    fn scoped_subscribe<'a>(
        &'a self,
        group: &str,
        offsets: Vec<ConsumerOffset>,
        subscriptions: Vec<Subscription>,
        idle_timeout: Option<Duration>,
    ) -> Pin<Box<dyn Stream<Item = ConsumerRecord> + Send + 'a>> {
        self.inner
            .scoped_subscribe(group, offsets, subscriptions, idle_timeout)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_partly_taken_batches_are_resent_from_where_the_destination_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let source = FileLog::new(dir.path().join("router"));
    let records = (0..100).map(|key| record("readings", key, "v")).collect();
    source.produce_all(records).await.unwrap();
    let destination = Flaky {
        inner: FileLog::new(dir.path().join("cloud")),
        batches: Arc::new(AtomicUsize::new(0)),
    };
    let positions = PositionFile::new(dir.path().join("positions"));
    let mut settings = ForwardSettings::new("router-7", [Topic::from("readings")]);
    settings.max_batch = 10;
    let mut forwarder =
        Forwarder::new(source, destination.clone(), positions.clone(), settings).unwrap();

    let forwarded = forwarder
        .forward_until_idle(Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(forwarded, 100);
    // Three refusals, the half-taken batch, its other half, then nine whole batches.
    assert_eq!(destination.batches.load(Ordering::SeqCst), 3 + 1 + 1 + 9);
    let held = read_topic(&destination.inner, "readings", Duration::from_millis(300)).await;
    let origins: Vec<u64> = held
        .iter()
        .map(|record| Origin::of(record).unwrap().offset)
        .collect();
    assert_eq!(
        origins,
        (0..100).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert_eq!(
        positions.load().unwrap().last(&Topic::from("readings"), 0),
        Some(99)
    );
}
