//! The Kafka HTTP API: routes, request parsing and the streaming consumer response.
//!
//! Every refusal is a JSON body `{"error_code": <HTTP status>, "message": "…"}` so that
//! clients in any language can report it; nothing a client sends can panic the server or
//! disturb the connections of other clients.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{rejection::PathRejection, Path, Request, State},
    http::{header, Extensions, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use streambed::{
    commit_log::{CommitLog, ProduceAllError, Topic},
    kafka_api::{write_consumer_record, Consumer, ErrorReply, ProduceReply, ProduceRequest},
};
use tokio::sync::{mpsc, watch};
use tokio_stream::{wrappers::ReceiverStream, StreamExt};

use crate::{
    audit::{self, Who},
    client::ClientKey,
    consumer_limits::check_consumer,
    ops::{Consumed, Metrics, OpenStream, RefusalReason},
    policy::{Permission, Policy},
    principal::{Peer, Principal},
    provenance::ProvenanceHeader,
    quota::{retry_after_secs, QuotaRefused, Quotas, StreamPermit},
    topic::validate_topic,
    ServerConfig,
};

/// A refusal: its status and the [`ErrorReply`] sent as its JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    reply: ErrorReply,
    /// Seconds to send as `Retry-After`.
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            reply: ErrorReply {
                error_code: status.as_u16(),
                message: message.into(),
                offsets: None,
            },
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.reply).unwrap_or_else(|_| {
            br#"{"error_code":500,"message":"error not expressible as JSON"}"#.to_vec()
        });
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The protections beyond [`ServerConfig`] a server was built with.
pub(crate) struct Guards {
    pub(crate) quotas: Quotas,
    pub(crate) provenance: Option<ProvenanceHeader>,
    pub(crate) metrics: Metrics,
    /// With identities on, what each principal may do; `None`: everything, to everyone.
    pub(crate) policy: Option<Arc<Policy>>,
}

impl Guards {
    /// The answer to a request a quota refused, counted by its reason.
    fn over_quota(&self, refused: QuotaRefused) -> ApiError {
        let (status, reason, retry_after) = match &refused {
            QuotaRefused::Rate { retry_after, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                RefusalReason::RateLimit,
                Some(retry_after_secs(*retry_after)),
            ),
            QuotaRefused::Streams { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                RefusalReason::StreamQuota,
                None,
            ),
            QuotaRefused::Topic(_) => (StatusCode::FORBIDDEN, RefusalReason::TopicQuota, None),
        };
        self.metrics.refused(reason);
        let mut error = ApiError::new(status, refused.to_string());
        error.retry_after = retry_after;
        error
    }

    /// 403 unless the policy (when identities are on) grants the request's `principal`
    /// `permission` on `topic`.
    fn permit(
        &self,
        principal: Option<&Principal>,
        permission: Permission,
        topic: &str,
    ) -> Result<(), ApiError> {
        match &self.policy {
            None => Ok(()),
            Some(policy) => policy
                .check(principal, permission, topic)
                .map_err(|denied| self.forbidden(denied.to_string())),
        }
    }

    /// The answer to a request the policy refused, counted.
    fn forbidden(&self, message: String) -> ApiError {
        self.metrics.refused(RefusalReason::Forbidden);
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// 429 when the client at `address` has failed to identify itself more often than the
    /// rate limit allows: checked before its token is verified, and charged nothing.
    pub(crate) fn may_fail_identity(&self, address: IpAddr) -> Result<(), ApiError> {
        self.quotas
            .may_fail_identity(address)
            .map_err(|refused| self.over_quota(refused))
    }

    /// Charges a request that ended without a valid identity (or whose token could not be
    /// checked) to the rate of its client's address: 429 once that is spent.
    pub(crate) fn failed_identity(&self, address: IpAddr) -> Result<(), ApiError> {
        self.quotas
            .failed_identity(address)
            .map_err(|refused| self.over_quota(refused))
    }

    /// Counts a request answered 401.
    pub(crate) fn unauthenticated(&self) {
        self.metrics.refused(RefusalReason::Unauthenticated);
    }

    /// Charges a request to its client's rate, answering whom it counts against.
    fn admit(&self, extensions: &Extensions) -> Result<ClientKey, ApiError> {
        let client = ClientKey::of(extensions);
        self.quotas
            .admit(&client)
            .map_err(|refused| self.over_quota(refused))?;
        Ok(client)
    }
}

/// Who sent a request, kept for its audit line.
struct Sender {
    principal: Option<Principal>,
    peer: Option<SocketAddr>,
}

impl Sender {
    fn of(extensions: &Extensions) -> Self {
        Self {
            principal: extensions.get::<Principal>().cloned(),
            peer: extensions.get::<Peer>().map(|peer| peer.address),
        }
    }

    fn who(&self) -> Who<'_> {
        Who {
            principal: self.principal.as_ref(),
            peer: self.peer,
        }
    }
}

/// What every handler shares. Handlers get a clone per request, so it is one reference
/// count: each clone of a field would be an atomic operation on memory that every worker
/// thread touches.
struct AppState<CL>(Arc<Shared<CL>>);

impl<CL> Clone for AppState<CL> {
    fn clone(&self) -> Self {
        AppState(Arc::clone(&self.0))
    }
}

impl<CL> std::ops::Deref for AppState<CL> {
    type Target = Shared<CL>;

    fn deref(&self) -> &Shared<CL> {
        &self.0
    }
}

/// The fields of [`AppState`].
struct Shared<CL> {
    log: CL,
    max_body_size: usize,
    body_read_timeout: Duration,
    consumer_chunk_size: usize,
    consumer_heartbeat: Option<Duration>,
    max_subscriptions: usize,
    stopping: watch::Receiver<bool>,
    guards: Arc<Guards>,
}

/// Builds the router of the API over a commit log. Consumer streams end once `stopping`
/// turns `true`, so that a graceful shutdown does not wait for them forever.
pub(crate) fn router<CL>(
    log: CL,
    config: &ServerConfig,
    guards: Arc<Guards>,
    stopping: watch::Receiver<bool>,
) -> Router
where
    CL: CommitLog + 'static,
{
    let state = AppState(Arc::new(Shared {
        log,
        max_body_size: config.max_body_size,
        body_read_timeout: config.body_read_timeout,
        consumer_chunk_size: config.consumer_chunk_size.max(1),
        consumer_heartbeat: config.consumer_heartbeat.filter(|d| !d.is_zero()),
        max_subscriptions: config.max_subscriptions,
        stopping,
        guards,
    }));
    Router::new()
        .route(
            "/topics/{topic}/partitions/{partition}/offsets",
            get(offsets::<CL>),
        )
        .route("/topics/{topic}", post(produce::<CL>))
        .route("/consumers/{group}", post(consume::<CL>))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such resource") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this resource",
            )
        })
        .with_state(state)
}

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text())
}

fn checked_topic(name: &str) -> Result<Topic, ApiError> {
    validate_topic(name).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Topic::from(name))
}

/// What a POST handler starts from: its path segment, checked by `check` before the body is
/// read (a bad path is refused without waiting for the body), and the whole body.
async fn path_and_body<CL, P>(
    state: &AppState<CL>,
    path: Result<Path<String>, PathRejection>,
    check: impl FnOnce(&str) -> Result<P, ApiError>,
    request: Request,
) -> Result<(P, Vec<u8>), ApiError> {
    let Path(segment) = path.map_err(path_error)?;
    let checked = check(&segment)?;
    let (parts, body) = request.into_parts();
    let bytes = read_body(
        &parts.headers,
        body,
        state.max_body_size,
        state.body_read_timeout,
    )
    .await?;
    Ok((checked, bytes))
}

async fn offsets<CL: CommitLog + 'static>(
    State(state): State<AppState<CL>>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    state.guards.admit(request.extensions())?;
    let Path((topic, partition)) = path.map_err(path_error)?;
    let topic = checked_topic(&topic)?;
    state.guards.permit(
        request.extensions().get::<Principal>(),
        Permission::Consume,
        &topic,
    )?;
    let partition = partition.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("partition {partition:?} is not a number from 0 to 4294967295"),
        )
    })?;
    match state.log.offsets(topic.clone(), partition).await {
        Some(offsets) => Ok(json_response(StatusCode::OK, &offsets)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("topic {topic} partition {partition} has no records"),
        )),
    }
}

/// What a produce request did, for its audit line.
#[derive(Default)]
struct ProduceOutcome {
    topic: Option<Topic>,
    records: usize,
    appended: Option<(u64, u64)>,
}

async fn produce<CL: CommitLog + 'static>(
    State(state): State<AppState<CL>>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let sender = Sender::of(request.extensions());
    let mut outcome = ProduceOutcome::default();
    let result = append(&state, path, request, &mut outcome).await;
    audit::produce(&audit::Produced {
        who: sender.who(),
        topic: outcome.topic.as_ref(),
        records: outcome.records,
        appended: outcome.appended,
        status: match &result {
            Ok(response) => response.status().as_u16(),
            Err(error) => error.status.as_u16(),
        },
    });
    result
}

/// Appends the records of a produce request, noting in `outcome` what it did.
async fn append<CL: CommitLog + 'static>(
    state: &AppState<CL>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
    outcome: &mut ProduceOutcome,
) -> Result<Response, ApiError> {
    let guards = &state.guards;
    let client = guards.admit(request.extensions())?;
    let principal = guards
        .policy
        .as_ref()
        .and_then(|_| request.extensions().get::<Principal>().cloned());
    let check = |name: &str| {
        let topic = checked_topic(name)?;
        // Noted before the permission check: a refused attempt is audited with its topic.
        outcome.topic = Some(topic.clone());
        guards.permit(principal.as_ref(), Permission::Produce, &topic)?;
        Ok(topic)
    };
    let (topic, bytes) = path_and_body(state, path, check, request).await?;
    // Creating a topic is producing to one without records; only checked when the
    // principal lacks the permission, so granted producers pay no offsets lookup.
    if let Some(policy) = &guards.policy {
        if let Err(denied) = policy.check(principal.as_ref(), Permission::Create, &topic) {
            if state.log.offsets(topic.clone(), 0).await.is_none() {
                return Err(guards.forbidden(denied.to_string()));
            }
        }
    }
    let request: ProduceRequest = parse_json(&bytes)?;
    outcome.records = request.records.len();
    // Every record is checked before the first is appended: a bad request writes nothing.
    if let Some(stray) = request.records.iter().find(|r| r.topic != topic) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "record for topic {:?} posted to topic {:?}",
                stray.topic.as_str(),
                topic.as_str()
            ),
        ));
    }
    // Backends serve partition 0 only: another is the client's mistake, not a server failure.
    if let Some(stray) = request.records.iter().find(|r| r.partition != 0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "record for partition {}; only partition 0 exists",
                stray.partition
            ),
        ));
    }
    if let Some(header) = &guards.provenance {
        header.check(&request.records).map_err(|forged| {
            guards.metrics.refused(RefusalReason::ForgedProvenance);
            ApiError::new(StatusCode::BAD_REQUEST, forged.to_string())
        })?;
    }
    let total = request.records.len();
    let mut creation = match total {
        0 => None,
        _ => guards
            .quotas
            .produce_to(&state.log, &topic, &client)
            .await
            .map_err(|refused| guards.over_quota(refused))?,
    };
    let mut records = request.records.into_owned();
    if let Some(header) = &guards.provenance {
        for record in &mut records {
            header.stamp(record, &client);
        }
    }
    // Value bytes for the metrics, taken before the log owns the records: in all, and
    // record by record in case only some are appended (a lone record needs no list).
    let all_bytes = records.iter().map(|r| r.value.len()).sum::<usize>();
    let sizes: Vec<usize> = match total {
        1 => Vec::new(),
        _ => records.iter().map(|r| r.value.len()).collect(),
    };
    let (offsets, failure) = match state.log.produce_all(records).await {
        Ok(offsets) => (offsets, None),
        Err(ProduceAllError { produced, error }) => (produced, Some(error)),
    };
    let bytes = match offsets.len() {
        n if n == total => all_bytes,
        n => sizes.iter().take(n).sum(),
    };
    if let (Some(first), Some(last)) = (offsets.first(), offsets.last()) {
        outcome.appended = Some((first.offset, last.offset));
    }
    guards.metrics.produced(offsets.len(), bytes);
    if let Some(error) = failure {
        if offsets.is_empty() {
            // Nothing appended: the topic was not created after all.
            if let Some(creation) = creation.take() {
                creation.cancel();
            }
        }
        log::error!(
            "{topic}: record {} of {total} not appended: {error}",
            offsets.len() + 1
        );
        let mut refusal = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the commit log could not append record {} of {total}; the offsets \
                 listed were appended before it",
                offsets.len() + 1
            ),
        );
        refusal.reply.offsets = Some(offsets);
        return Err(refusal);
    }
    Ok(json_response(StatusCode::OK, &ProduceReply { offsets }))
}

async fn consume<CL: CommitLog + 'static>(
    State(state): State<AppState<CL>>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let client = state.guards.admit(request.extensions())?;
    let sender = Sender::of(request.extensions());
    let principal = state
        .guards
        .policy
        .as_ref()
        .and_then(|_| sender.principal.clone());
    let (group, bytes) = path_and_body(&state, path, |g| Ok(g.to_string()), request).await?;
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

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reply not expressible as JSON: {error}"),
        )
        .into_response(),
    }
}

fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        let kind = match error.classify() {
            serde_json::error::Category::Data => "invalid request",
            _ => "malformed JSON",
        };
        ApiError::new(StatusCode::BAD_REQUEST, format!("{kind}: {error}"))
    })
}

/// Reads a whole request body, refusing more than `limit` bytes with 413 (before reading
/// anything when the declared length already says so) and a body that takes longer than
/// `timeout` with 408.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let capacity = declared.map_or(0, |len| len as usize);
    let read = async {
        let mut bytes = Vec::with_capacity(capacity);
        let mut stream = body.into_data_stream();
        while let Some(frame) = stream.next().await {
            let frame = frame.map_err(|error| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("request body unreadable: {error}"),
                )
            })?;
            if bytes.len() + frame.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&frame);
        }
        Ok(bytes)
    };
    // A small body usually came with the headers: read at once, it needs no timer.
    let mut read = std::pin::pin!(read);
    if let Some(read) = read.as_mut().now_or_never() {
        return read;
    }
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {timeout:?}"),
        )
    })?
}
