//! The Kafka HTTP API: its routes, the state and guards its handlers share, and the
//! refusal every handler answers with. The handlers live in [`produce`] and [`consume`]
//! (and the small `offsets` below); reading and writing JSON bodies in [`body`].
//!
//! Every refusal is a JSON body `{"error_code": <HTTP status>, "message": "…"}` so that
//! clients in any language can report it; nothing a client sends can panic the server or
//! disturb the connections of other clients.

mod body;
mod consume;
mod produce;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use axum::{
    extract::{rejection::PathRejection, Path, Request, State},
    http::{header, Extensions, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use streambed::{
    commit_log::{CommitLog, Topic},
    kafka_api::ErrorReply,
};
use tokio::sync::watch;

use self::{body::json_response, consume::consume, produce::produce};
use crate::{
    audit::Who,
    client::ClientKey,
    ops::{Metrics, RefusalReason},
    policy::{Permission, Policy},
    principal::{Peer, Principal},
    provenance::ProvenanceHeader,
    quota::{retry_after_secs, QuotaRefused, Quotas},
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
    check_topic_name(name)?;
    Ok(Topic::from(name))
}

/// 400 unless `name` is a valid topic name.
fn check_topic_name(name: &str) -> Result<(), ApiError> {
    validate_topic(name).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))
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
