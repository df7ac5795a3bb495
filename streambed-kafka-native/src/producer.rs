//! Produce requests coalesced per partition. Kafka brokers answer one connection's
//! requests in order, so concurrent producers that each sent their own request would wait
//! for each other's round trips. Instead each partition has a writer task: while one
//! request is in flight, records from other callers queue, and the next request takes all
//! of them at once. A lone producer sees no delay (nothing lingers waiting for company);
//! many get one round trip per batch instead of one per record.
//!
//! A caller that stops waiting does not withdraw its records: once submitted they are
//! produced, as a request already on the wire would be.

use std::sync::Arc;

use rskafka::{
    client::{
        error::Error as ClientError,
        partition::{Compression, PartitionClient},
    },
    record::Record,
};
use tokio::sync::{mpsc, oneshot};

/// The most record bytes (as rskafka counts them) coalesced into one request, under the
/// 1 MB a broker accepts by default. A single caller's larger batch still goes whole.
const MAX_COALESCED_BYTES: usize = 512 * 1024;
/// Submissions waiting for the writer; callers beyond wait to submit (back-pressure).
const QUEUE: usize = 1024;

/// The offsets of one submission's records, or why the request carrying them failed.
pub(crate) type Produced = Result<Vec<i64>, Arc<ClientError>>;

/// What became of a submission.
pub(crate) enum Outcome {
    /// The writer sent it and the cluster answered.
    Produced(Produced),
    /// The writer is gone (the runtime it ran on shut down) and never saw the records.
    NotSent(Vec<Record>),
    /// The writer went away with the records: they may or may not have been produced.
    Lost,
}

struct Submission {
    records: Vec<Record>,
    reply: oneshot::Sender<Produced>,
}

/// The sending side of a partition's writer; the writer ends when this is dropped.
#[derive(Clone)]
pub(crate) struct Producer {
    submissions: mpsc::Sender<Submission>,
}

impl Producer {
    /// Starts the writer of a partition on the current tokio runtime.
    pub(crate) fn start(client: Arc<PartitionClient>) -> Self {
        let (submissions, received) = mpsc::channel(QUEUE);
        tokio::spawn(write(client, received));
        Self { submissions }
    }

    /// Produces records, answering their offsets in order.
    pub(crate) async fn produce(&self, records: Vec<Record>) -> Outcome {
        let (reply, answer) = oneshot::channel();
        if let Err(refused) = self.submissions.send(Submission { records, reply }).await {
            return Outcome::NotSent(refused.0.records);
        }
        match answer.await {
            Ok(produced) => Outcome::Produced(produced),
            Err(_) => Outcome::Lost,
        }
    }
}

async fn write(client: Arc<PartitionClient>, mut received: mpsc::Receiver<Submission>) {
    let mut records = Vec::new();
    let mut waiting: Vec<(usize, oneshot::Sender<Produced>)> = Vec::new();
    let mut next = None;
    loop {
        let first = match next.take() {
            Some(first) => first,
            None => match received.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut bytes = size(&first.records);
        waiting.push((first.records.len(), first.reply));
        records.extend(first.records);
        // Whatever else is queued joins, up to the size limit; nothing waits for more.
        while let Ok(more) = received.try_recv() {
            let more_bytes = size(&more.records);
            if bytes + more_bytes > MAX_COALESCED_BYTES {
                next = Some(more);
                break;
            }
            bytes += more_bytes;
            waiting.push((more.records.len(), more.reply));
            records.extend(more.records);
        }
        let produced = client
            .produce(std::mem::take(&mut records), Compression::NoCompression)
            .await;
        match produced {
            Ok(offsets) => {
                let mut offsets = offsets.into_iter();
                for (count, reply) in waiting.drain(..) {
                    let _ = reply.send(Ok(offsets.by_ref().take(count).collect()));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for (_, reply) in waiting.drain(..) {
                    let _ = reply.send(Err(Arc::clone(&error)));
                }
            }
        }
    }
}

fn size(records: &[Record]) -> usize {
    records.iter().map(Record::approximate_size).sum()
}
