//! Operations: `GET /health` for load balancers and service managers, and `GET /metrics` in
//! the Prometheus text format.
//!
//! Measurements go through the `metrics` facade. Their handles are registered once, when
//! the server is built, with the recorder in effect then (the process's global one, or a
//! test's local one), so that a request costs a few atomic additions rather than a lookup
//! by name, and tests each keep their own figures. `/metrics` renders the recorder through
//! the [`PrometheusHandle`] given to the server. Label values come from fixed lists (routes,
//! status codes, refusal reasons), never from topics or principals, so the number of series
//! cannot grow with what clients send.
//!
//! This module knows the exporter only as a function rendering the text, so that a build
//! without the `prometheus` feature keeps everything but `/metrics`.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use std::sync::Arc;

use metrics::{Counter, Gauge};

/// Renders every measurement in the Prometheus text format.
pub(crate) type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The routes requests are counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Offsets,
    Produce,
    Consume,
    Health,
    Metrics,
    Other,
}

impl Route {
    /// In declaration order, so that `route as usize` indexes it.
    const ALL: [Route; 6] = [
        Route::Offsets,
        Route::Produce,
        Route::Consume,
        Route::Health,
        Route::Metrics,
        Route::Other,
    ];

    // Registering (and so labelling) happens only through `Server::with_metrics`.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    fn label(self) -> &'static str {
        match self {
            Route::Offsets => "offsets",
            Route::Produce => "produce",
            Route::Consume => "consume",
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }

    /// The route a path belongs to, by its shape alone: cheaper than asking the router,
    /// and a path no route serves still lands in a fixed label.
    fn of(path: &str) -> Self {
        if let Some(rest) = path.strip_prefix("/topics/") {
            if rest.ends_with("/offsets") {
                return Route::Offsets;
            }
            return Route::Produce;
        }
        if path.starts_with("/consumers/") {
            return Route::Consume;
        }
        match path {
            "/health" => Route::Health,
            "/metrics" => Route::Metrics,
            _ => Route::Other,
        }
    }
}

/// Why a request was refused before doing its work, as counted by
/// `streambed_refused_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefusalReason {
    /// Over the client's request rate.
    RateLimit,
    /// The client had its most consumer streams open.
    StreamQuota,
    /// Creating the topic would pass a topic quota.
    TopicQuota,
    /// A record set the provenance header itself.
    ForgedProvenance,
    /// The policy does not grant the principal what it asked for.
    Forbidden,
    /// Identities are on and the request had no valid one (401).
    Unauthenticated,
}

impl RefusalReason {
    /// In declaration order, so that `reason as usize` indexes it.
    const ALL: [RefusalReason; 6] = [
        RefusalReason::RateLimit,
        RefusalReason::StreamQuota,
        RefusalReason::TopicQuota,
        RefusalReason::ForgedProvenance,
        RefusalReason::Forbidden,
        RefusalReason::Unauthenticated,
    ];

    // Registering (and so labelling) happens only through `Server::with_metrics`.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    fn label(self) -> &'static str {
        match self {
            RefusalReason::RateLimit => "rate_limit",
            RefusalReason::StreamQuota => "stream_quota",
            RefusalReason::TopicQuota => "topic_quota",
            RefusalReason::ForgedProvenance => "forged_provenance",
            RefusalReason::Forbidden => "forbidden",
            RefusalReason::Unauthenticated => "unauthenticated",
        }
    }
}

/// The error statuses counted on their own; others count as `4xx` or `5xx`.
const STATUSES: [u16; 11] = [400, 401, 403, 404, 405, 408, 413, 429, 500, 503, 504];

/// Handles of every series the server reports; without a recorder they do nothing.
/// Cloned for every request (the metrics layer's state), so a clone is one reference
/// count: cloning each handle cost more than the request itself.
#[derive(Clone)]
pub(crate) struct Metrics(Arc<Series>);

impl std::ops::Deref for Metrics {
    type Target = Series;

    fn deref(&self) -> &Series {
        &self.0
    }
}

/// The handles behind [`Metrics`].
pub(crate) struct Series {
    requests: Vec<Counter>,
    /// [`STATUSES`] in order, then `4xx` and `5xx`.
    errors: Vec<Counter>,
    records_in: Counter,
    records_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    streams_open: Gauge,
    refused: Vec<Counter>,
}

impl Metrics {
    /// Registers every series with the recorder in effect now, so all of them show in
    /// `/metrics` from the start.
    // Registering (and so labelling) happens only through `Server::with_metrics`.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn register() -> Self {
        metrics::describe_counter!(
            "streambed_http_requests_total",
            "HTTP requests answered, by route"
        );
        metrics::describe_counter!(
            "streambed_http_errors_total",
            "HTTP requests answered with an error status, by status"
        );
        metrics::describe_counter!(
            "streambed_records_produced_total",
            "records appended to the log by produce requests"
        );
        metrics::describe_counter!(
            "streambed_records_consumed_total",
            "records sent to consumer streams"
        );
        metrics::describe_counter!(
            "streambed_bytes_produced_total",
            "bytes of record values appended to the log by produce requests"
        );
        metrics::describe_counter!(
            "streambed_bytes_consumed_total",
            "bytes of record values sent to consumer streams"
        );
        metrics::describe_gauge!(
            "streambed_consumer_streams_open",
            "consumer streams open now"
        );
        metrics::describe_counter!(
            "streambed_refused_total",
            "requests refused by a quota, the policy, the provenance check or for want of an identity, by reason"
        );
        let status_labels = STATUSES
            .iter()
            .map(|status| status.to_string())
            .chain(["4xx".to_owned(), "5xx".to_owned()]);
        Self(Arc::new(Series {
            requests: Route::ALL
                .iter()
                .map(|route| metrics::counter!("streambed_http_requests_total", "route" => route.label()))
                .collect(),
            errors: status_labels
                .map(|status| metrics::counter!("streambed_http_errors_total", "status" => status))
                .collect(),
            records_in: metrics::counter!("streambed_records_produced_total"),
            records_out: metrics::counter!("streambed_records_consumed_total"),
            bytes_in: metrics::counter!("streambed_bytes_produced_total"),
            bytes_out: metrics::counter!("streambed_bytes_consumed_total"),
            streams_open: metrics::gauge!("streambed_consumer_streams_open"),
            refused: RefusalReason::ALL
                .iter()
                .map(|reason| metrics::counter!("streambed_refused_total", "reason" => reason.label()))
                .collect(),
        }))
    }

    /// Handles that record nothing, for a server without metrics.
    pub(crate) fn noop() -> Self {
        Self(Arc::new(Series {
            requests: vec![Counter::noop(); Route::ALL.len()],
            errors: vec![Counter::noop(); STATUSES.len() + 2],
            records_in: Counter::noop(),
            records_out: Counter::noop(),
            bytes_in: Counter::noop(),
            bytes_out: Counter::noop(),
            streams_open: Gauge::noop(),
            refused: vec![Counter::noop(); RefusalReason::ALL.len()],
        }))
    }

    fn answered(&self, route: Route, status: StatusCode) {
        if let Some(counter) = self.requests.get(route as usize) {
            counter.increment(1);
        }
        let code = status.as_u16();
        if code < 400 {
            return;
        }
        let index = STATUSES
            .iter()
            .position(|s| *s == code)
            .unwrap_or(STATUSES.len() + usize::from(code >= 500));
        if let Some(counter) = self.errors.get(index) {
            counter.increment(1);
        }
    }

    /// Counts records appended by a produce request, and the bytes of their values.
    pub(crate) fn produced(&self, records: usize, bytes: usize) {
        self.records_in.increment(records as u64);
        self.bytes_in.increment(bytes as u64);
    }

    /// The counters of records sent to consumers, for a stream's task to keep.
    pub(crate) fn consumed(&self) -> Consumed {
        Consumed {
            records: self.records_out.clone(),
            bytes: self.bytes_out.clone(),
        }
    }

    /// Counts a refusal.
    pub(crate) fn refused(&self, reason: RefusalReason) {
        if let Some(counter) = self.refused.get(reason as usize) {
            counter.increment(1);
        }
    }

    /// Counts a consumer stream as open until the returned guard is dropped.
    pub(crate) fn stream_opened(&self) -> OpenStream {
        self.streams_open.increment(1.0);
        OpenStream(self.streams_open.clone())
    }
}

/// What a consumer stream counts as it sends records.
pub(crate) struct Consumed {
    records: Counter,
    bytes: Counter,
}

impl Consumed {
    /// Counts `records` sent, whose values hold `bytes` bytes in all.
    pub(crate) fn sent(&self, records: u64, bytes: u64) {
        self.records.increment(records);
        self.bytes.increment(bytes);
    }
}

/// A consumer stream counted as open.
pub(crate) struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// `GET /health`, and `GET /metrics` when there is something to render it.
pub(crate) fn routes(render: Option<Render>) -> Router {
    let router = Router::new().route("/health", get(health));
    match render {
        Some(render) => router.route("/metrics", get(metrics_text).with_state(render)),
        None => router,
    }
}

/// Counts every request answered by `router`, by route and by error status.
pub(crate) fn instrument(router: Router, metrics: Metrics) -> Router {
    router.layer(axum::middleware::from_fn_with_state(metrics, count))
}

async fn count(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = Route::of(request.uri().path());
    let response = next.run(request).await;
    metrics.answered(route, response.status());
    response
}

/// Answers that the server is up; touches nothing else, so it stays cheap.
async fn health() -> Response {
    let mut response = (StatusCode::OK, r#"{"status":"ok"}"#).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn metrics_text(State(render): State<Render>) -> Response {
    let mut response = (StatusCode::OK, render()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(all(test, feature = "prometheus"))]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[test]
    fn every_series_shows_from_the_start_and_counts_by_fixed_labels() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let metrics = metrics::with_local_recorder(&recorder, Metrics::register);
        metrics.answered(Route::Produce, StatusCode::OK);
        metrics.answered(Route::Produce, StatusCode::TOO_MANY_REQUESTS);
        metrics.answered(Route::Other, StatusCode::IM_A_TEAPOT);
        assert_eq!(Route::of("/topics/a/partitions/0/offsets"), Route::Offsets);
        assert_eq!(Route::of("/topics/a"), Route::Produce);
        assert_eq!(Route::of("/consumers/g"), Route::Consume);
        assert_eq!(Route::of("/nothing"), Route::Other);
        metrics.produced(3, 12);
        metrics.consumed().sent(2, 5);
        metrics.refused(RefusalReason::RateLimit);
        let open = metrics.stream_opened();
        let text = handle.render();
        for line in [
            "streambed_http_requests_total{route=\"produce\"} 2",
            "streambed_http_requests_total{route=\"consume\"} 0",
            "streambed_http_errors_total{status=\"429\"} 1",
            "streambed_http_errors_total{status=\"4xx\"} 1",
            "streambed_records_produced_total 3",
            "streambed_bytes_produced_total 12",
            "streambed_records_consumed_total 2",
            "streambed_bytes_consumed_total 5",
            "streambed_refused_total{reason=\"rate_limit\"} 1",
            "streambed_refused_total{reason=\"topic_quota\"} 0",
            "streambed_consumer_streams_open 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
        drop(open);
        assert!(handle
            .render()
            .lines()
            .any(|l| l == "streambed_consumer_streams_open 0"));
    }
}
