//! `POST /consumers/<group>`: opens a consumer stream, newline-delimited JSON records from
//! the log's subscription, fed by a [`Pump`] task per stream within the client's quota,
//! with heartbeats while idle.

use std::{convert::Infallible, future::Future, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{rejection::PathRejection, Path, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::Response,
};
use futures_util::FutureExt;
use streambed::{
    commit_log::CommitLog,
    kafka_api::{write_consumer_record, Consumer},
};
use tokio::sync::{mpsc, watch};
use tokio_stream::{wrappers::ReceiverStream, StreamExt};

use super::{
    body::{parse_json, PendingBody},
    checked_topic, path_error, ApiError, AppState, Sender,
};
use crate::{
    audit,
    consumer_limits::check_consumer,
    ops::{Consumed, OpenStream},
    policy::Permission,
    quota::StreamPermit,
};

pub(super) fn consume<CL: CommitLog + 'static>(
    State(state): State<AppState<CL>>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> impl Future<Output = Result<Response, ApiError>> + Send {
    // Taken apart before anything awaits (see `super::body`); a refused client or a bad
    // path is answered without waiting for the body.
    let (parts, body) = request.into_parts();
    let admitted = state.guards.admit(&parts.extensions).and_then(|client| {
        let Path(group) = path.map_err(path_error)?;
        Ok((client, group))
    });
    let sender = Sender::of(&parts.extensions);
    let body = PendingBody::of(&parts, body);
    drop(parts);
    async move {
        let (client, group) = admitted?;
        let principal = state
            .guards
            .policy
            .as_ref()
            .and_then(|_| sender.principal.clone());
        let bytes = body
            .read(state.max_body_size, state.body_read_timeout)
            .await?;
        let consumer: Consumer = parse_json(&bytes)?;
        if consumer.subscriptions.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "a consumer needs at least one subscription",
            ));
        }
        check_consumer(&consumer, state.max_subscriptions)
            .map_err(|refused| ApiError::new(StatusCode::BAD_REQUEST, refused.to_string()))?;
        for topic in consumer
            .subscriptions
            .iter()
            .map(|s| &s.topic)
            .chain(consumer.offsets.iter().map(|o| &o.topic))
        {
            checked_topic(topic)?;
            state
                .guards
                .permit(principal.as_ref(), Permission::Consume, topic)?;
        }
        let permit = state
            .guards
            .quotas
            .open_stream(&client)
            .map_err(|refused| state.guards.over_quota(refused))?;
        audit::consume(&audit::Consumed {
            who: sender.who(),
            group: &group,
            topics: consumer
                .subscriptions
                .iter()
                .map(|s| s.topic.as_str())
                .collect(),
            offsets: consumer.offsets.len(),
        });
        // A small channel bounds what a slow client can make the server hold: once it is full
        // the pump stops pulling from the log until the client reads.
        let (sender, receiver) = mpsc::channel::<Bytes>(4);
        let pump = Pump {
            group,
            sender,
            stopping: state.stopping.clone(),
            chunk_size: state.consumer_chunk_size,
            heartbeat: state.consumer_heartbeat,
            consumed: state.guards.metrics.consumed(),
            _open: state.guards.metrics.stream_opened(),
            _permit: permit,
        };
        tokio::spawn(pump.run(state.log.clone(), consumer));
        let body = Body::from_stream(ReceiverStream::new(receiver).map(Ok::<_, Infallible>));
        let mut response = Response::new(body);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        Ok(response)
    }
}

/// Feeds one consumer connection.
struct Pump {
    group: String,
    sender: mpsc::Sender<Bytes>,
    stopping: watch::Receiver<bool>,
    /// Records ready at once are sent together in chunks of about this many bytes.
    chunk_size: usize,
    heartbeat: Option<Duration>,
    /// Counts the records sent and the bytes of their values.
    consumed: Consumed,
    /// Counts the stream as open while the pump runs.
    _open: OpenStream,
    /// The stream's place in its client's quota, given back when the pump ends, however
    /// it ends (the client vanished, the write timeout cut it, the server stopped).
    _permit: Option<StreamPermit>,
}

/// What a consumer stream sends when idle: whitespace between JSON values, which readers skip.
const HEARTBEAT: &[u8] = b"\n";

/// Room beyond a chunk's size for the record that crosses it, so that a typical record
/// does not make the chunk grow (and copy) at its very end.
const CHUNK_SLACK: usize = 4096;

impl Pump {
    /// Reads the log's subscription and sends its records as newline-terminated JSON, as
    /// many as are ready per chunk so that a burst costs one write, not one per record.
    /// Ends when the client goes away, the server stops or the subscription ends.
    async fn run<CL: CommitLog>(mut self, log: CL, consumer: Consumer) {
        let mut records =
            log.scoped_subscribe(&self.group, consumer.offsets, consumer.subscriptions, None);
        loop {
            let idle = async {
                match self.heartbeat {
                    Some(period) => tokio::time::sleep(period).await,
                    None => std::future::pending().await,
                }
            };
            let first = tokio::select! {
                biased;
                _ = crate::stopped(&mut self.stopping) => break,
                _ = self.sender.closed() => break,
                record = records.next() => match record {
                    Some(record) => Some(record),
                    None => break,
                },
                _ = idle => None,
            };
            let Some(first) = first else {
                if !self.send(Bytes::from_static(HEARTBEAT)).await {
                    break;
                }
                continue;
            };
            let mut chunk = Vec::new();
            let mut next = Some(first);
            let mut records_in_chunk = 0;
            let mut value_bytes = 0;
            while let Some(record) = next.take() {
                records_in_chunk += 1;
                value_bytes += record.value.len() as u64;
                write_consumer_record(&mut chunk, &record);
                chunk.push(b'\n');
                if chunk.len() < self.chunk_size {
                    next = records.next().now_or_never().flatten();
                    if records_in_chunk == 1 && next.is_some() {
                        // A burst (history, most often): one allocation for the chunk
                        // rather than a growing one; a lone live record stays small.
                        chunk.reserve(self.chunk_size + CHUNK_SLACK - chunk.len());
                    }
                }
            }
            self.consumed.sent(records_in_chunk, value_bytes);
            if !self.send(Bytes::from(chunk)).await {
                break;
            }
        }
        log::debug!("consumer {:?}: stream ended", self.group);
    }

    /// Hands a chunk to the connection; `false` once the stream should end.
    async fn send(&mut self, bytes: Bytes) -> bool {
        tokio::select! {
            biased;
            _ = crate::stopped(&mut self.stopping) => false,
            sent = self.sender.send(bytes) => sent.is_ok(),
        }
    }
}
