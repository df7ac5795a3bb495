//! The HTTP plumbing that streambed's clients (`streambed-kafka`, `streambed-vault`) share,
//! so that both build their client, their URLs and their retries the same way: one
//! list of the answers that mean "try again later", one rule for which requests may be
//! sent again, and no retry without a [`Delayer`] back-off before it.
//!
//! A request is retried for as long as the server is *unreachable* (no connection could
//! be made, so it never left), because a service may well start before its server. Once
//! a request may have reached the server, it is tried at most
//! [`RetryPolicy::max_sent_tries`] times, and a request that must not act twice
//! ([`Idempotence::NotIdempotent`]) is sent again only when the server answered that it
//! did not act on it (502, 503, 504).
//!
//! ```
//! use streambed::http::{self, Idempotence, RetryPolicy, TryError, TryFailure};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let server: reqwest::Url = "http://127.0.0.1:8082/api/".parse().unwrap();
//! let url = http::api_url(&server, ["topics", "a b"]).unwrap();
//! assert_eq!(url.as_str(), "http://127.0.0.1:8082/api/topics/a%20b");
//!
//! // A server that says "unavailable" twice, then answers.
//! let mut answers = vec![200u16, 503, 503].into_iter().rev();
//! let answer = RetryPolicy::default()
//!     .run(&url, Idempotence::Idempotent, || {
//!         let status = reqwest::StatusCode::from_u16(answers.next().unwrap()).unwrap();
//!         async move {
//!             match TryFailure::of_status(status) {
//!                 Some(failure) => Err(TryError::Failed(failure, format!("answered {status}"))),
//!                 None => Ok(status),
//!             }
//!         }
//!     })
//!     .await;
//! assert_eq!(answer, Ok(reqwest::StatusCode::OK));
//! # }
//! ```

use std::{fmt::Display, future::Future, time::Duration};

use log::{debug, warn};
use reqwest::{Certificate, Client, StatusCode, Url};
use thiserror::Error;

use crate::delayer::Delayer;

/// The answers that say "not now, try again later", each with whether the server surely
/// did not act on the request (so that even a request that must not act twice may be
/// sent again). The one list every client retries by.
const TEMPORARY: [(StatusCode, bool); 6] = [
    (StatusCode::REQUEST_TIMEOUT, false),
    (StatusCode::TOO_MANY_REQUESTS, false),
    (StatusCode::INTERNAL_SERVER_ERROR, false),
    (StatusCode::BAD_GATEWAY, true),
    (StatusCode::SERVICE_UNAVAILABLE, true),
    (StatusCode::GATEWAY_TIMEOUT, true),
];

/// How the clients' shared [`reqwest::Client`] is set up; [`ClientOptions::build`] makes
/// it. TLS is always rustls (with the `ring` provider): no OpenSSL.
///
/// ```
/// use std::time::Duration;
///
/// let client = streambed::http::ClientOptions {
///     request_timeout: Some(Duration::from_secs(5)),
///     ..Default::default()
/// }
/// .build()
/// .unwrap();
/// # drop(client);
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// An additional root certificate to trust, typically a server's self-signed one
    /// (see [`read_pem`](crate::read_pem)).
    pub server_cert: Option<Certificate>,
    /// Accept any server certificate: for tests only.
    pub tls_insecure: bool,
    /// The longest connecting may take; `None`: no limit. 10 seconds by default.
    pub connect_timeout: Option<Duration>,
    /// The longest a whole request may take, answer included; `None` (the default): no
    /// limit, as long-lived streams need.
    pub request_timeout: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            server_cert: None,
            tls_insecure: false,
            connect_timeout: Some(Duration::from_secs(10)),
            request_timeout: None,
        }
    }
}

impl ClientOptions {
    /// Builds the client. Fails only when the TLS configuration cannot be set up, for
    /// example with an unusable certificate.
    pub fn build(self) -> reqwest::Result<Client> {
        let mut builder = Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(self.tls_insecure)
            // Shorter than servers keep idle connections (streambed-server: 10 s), so that a
            // request is never sent on a connection the server is closing, which would
            // make it fail after it may have been sent rather than retry.
            .pool_idle_timeout(Duration::from_secs(5))
            // Lets a long-lived stream notice a server host that vanished without closing.
            .tcp_keepalive(Duration::from_secs(30))
            .tcp_nodelay(true);
        if let Some(certificate) = self.server_cert {
            builder = builder.add_root_certificate(certificate);
        }
        if let Some(timeout) = self.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = self.request_timeout {
            builder = builder.timeout(timeout);
        }
        builder.build()
    }
}

/// A server URL that cannot have a path appended (it is not an `http(s)://` URL).
///
/// ```
/// let server: reqwest::Url = "mailto:ops@example.com".parse().unwrap();
/// let error = streambed::http::api_url(&server, ["v1"]).unwrap_err();
/// assert_eq!(error.0, server);
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("server URL {0} cannot be a base for API paths")]
pub struct NotABaseUrl(pub Url);

/// The URL of an API path on `server`: its path (a trailing `/` or not) followed by
/// `segments`, each percent-encoded as one path segment, so that no value (a topic or a
/// user name holding `/` or `?`) can reach another API path. The server URL's query and
/// fragment are dropped.
///
/// ```
/// let server: reqwest::Url = "http://localhost:8200?x=1".parse().unwrap();
/// let url = streambed::http::api_url(&server, ["v1", "a/b?"]).unwrap();
/// assert_eq!(url.as_str(), "http://localhost:8200/v1/a%2Fb%3F");
/// ```
pub fn api_url<'a>(
    server: &Url,
    segments: impl IntoIterator<Item = &'a str>,
) -> Result<Url, NotABaseUrl> {
    let mut url = server.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| NotABaseUrl(server.clone()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Whether sending a request twice can do harm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotence {
    /// Repeating it does no harm: a read, a login, a write of the same value.
    Idempotent,
    /// Repeating it could act twice (appending records): it is sent again only when it
    /// surely did not reach the server, or the server answered that it did not act on it.
    NotIdempotent,
}

/// How one try of a request failed, as far as retrying it is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryFailure {
    /// No connection could be made: the request never left.
    Unreachable,
    /// The connection broke or timed out after the request may have reached the server.
    Lost,
    /// The server answered a status of the temporary list ([`TryFailure::of_status`]).
    Answered(StatusCode),
}

impl TryFailure {
    /// What an error of reqwest says about the request; `None` when the request could not
    /// even be built (a URL or body reqwest refuses), which no retry cures.
    ///
    /// ```
    /// use streambed::http::TryFailure;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Nothing listens on port 1 of the loopback address.
    /// let error = reqwest::get("http://127.0.0.1:1/").await.unwrap_err();
    /// assert_eq!(TryFailure::of_error(&error), Some(TryFailure::Unreachable));
    /// let error = reqwest::get("no-scheme").await.unwrap_err();
    /// assert_eq!(TryFailure::of_error(&error), None);
    /// # }
    /// ```
    pub fn of_error(error: &reqwest::Error) -> Option<Self> {
        if error.is_builder() {
            None
        } else if error.is_connect() {
            Some(Self::Unreachable)
        } else {
            Some(Self::Lost)
        }
    }

    /// `Some` when `status` says "try again later" (408, 429, 500, 502, 503, 504); `None`
    /// for every other answer, which retrying would not change.
    ///
    /// ```
    /// use reqwest::StatusCode;
    /// use streambed::http::TryFailure;
    ///
    /// assert_eq!(
    ///     TryFailure::of_status(StatusCode::SERVICE_UNAVAILABLE),
    ///     Some(TryFailure::Answered(StatusCode::SERVICE_UNAVAILABLE))
    /// );
    /// assert_eq!(TryFailure::of_status(StatusCode::NOT_FOUND), None);
    /// ```
    pub fn of_status(status: StatusCode) -> Option<Self> {
        TEMPORARY
            .iter()
            .any(|(temporary, _)| *temporary == status)
            .then_some(Self::Answered(status))
    }

    /// Whether the request may have reached the server and been acted on.
    fn may_have_acted(self) -> bool {
        match self {
            Self::Unreachable => false,
            Self::Lost => true,
            Self::Answered(status) => !TEMPORARY
                .iter()
                .any(|(temporary, unprocessed)| *temporary == status && *unprocessed),
        }
    }

    /// Whether the request may have reached the server at all.
    fn was_sent(self) -> bool {
        self != Self::Unreachable
    }
}

/// How a try of [`RetryPolicy::run`] failed, with the error to return should it be the
/// last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TryError<E> {
    /// A failure that another try may cure.
    Failed(TryFailure, E),
    /// A failure that retrying would not cure: returned at once.
    Final(E),
}

/// How many times a request is tried; [`RetryPolicy::run`] runs one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries of a request that may have reached the server (the connection broke or timed
    /// out, or the server answered "try later"), at most. 5 by default.
    pub max_sent_tries: u32,
    /// Tries of any kind, at most; `None` (the default) waits for an unreachable server
    /// for as long as it takes.
    pub max_tries: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_sent_tries: 5,
            max_tries: None,
        }
    }
}

impl RetryPolicy {
    /// Calls `try_once` until it succeeds, fails for good ([`TryError::Final`]) or the
    /// policy gives up, waiting with [`Delayer`] back-off before each new try. Giving up
    /// returns the last try's error; `url` is named in the log lines about retries.
    /// Cancel-safe: dropping the future stops between or during tries.
    pub async fn run<T, E, F, Fut>(
        &self,
        url: &Url,
        idempotence: Idempotence,
        mut try_once: F,
    ) -> Result<T, E>
    where
        E: Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TryError<E>>>,
    {
        let mut retrying = Retrying::new(*self, idempotence);
        loop {
            match try_once().await {
                Ok(value) => return Ok(value),
                Err(TryError::Final(error)) => return Err(error),
                Err(TryError::Failed(failure, error)) => {
                    if retrying.tries == 0 {
                        warn!("{url}: {error}; will retry");
                    } else {
                        debug!("{url}: {error} (try {})", retrying.tries + 1);
                    }
                    if !retrying.again(failure).await {
                        warn!("{url}: giving up after {} tries: {error}", retrying.tries);
                        return Err(error);
                    }
                }
            }
        }
    }
}

/// The state of a request being retried under a [`RetryPolicy`], for callers that keep
/// it across several requests (a consumer stream that reconnects); [`RetryPolicy::run`]
/// serves single requests.
///
/// ```
/// use streambed::http::{Idempotence, RetryPolicy, Retrying, TryFailure};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut retrying = Retrying::new(RetryPolicy::default(), Idempotence::NotIdempotent);
/// // An unreachable server is waited for...
/// assert!(retrying.again(TryFailure::Unreachable).await);
/// // ...but a request that may have been acted on is not sent twice.
/// assert!(!retrying.again(TryFailure::Lost).await);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Retrying {
    policy: RetryPolicy,
    idempotence: Idempotence,
    delayer: Delayer,
    tries: u32,
    sent_tries: u32,
}

impl Retrying {
    /// A request not tried yet.
    pub fn new(policy: RetryPolicy, idempotence: Idempotence) -> Self {
        Self {
            policy,
            idempotence,
            delayer: Delayer::default(),
            tries: 0,
            sent_tries: 0,
        }
    }

    /// Counts a failed try. When another may be made, waits the back-off and answers
    /// `true`; `false` when the caller must give up (nothing is waited).
    pub async fn again(&mut self, failure: TryFailure) -> bool {
        self.tries = self.tries.saturating_add(1);
        if failure.was_sent() {
            self.sent_tries = self.sent_tries.saturating_add(1);
        }
        let allowed = match self.idempotence {
            Idempotence::Idempotent => true,
            Idempotence::NotIdempotent => !failure.may_have_acted(),
        } && self.sent_tries < self.policy.max_sent_tries
            && self.policy.max_tries.is_none_or(|max| self.tries < max);
        if allowed {
            self.delayer.delay().await;
        }
        allowed
    }

    /// Waits the next back-off without counting a failed try: for a request that
    /// succeeded, but whose result was lost afterwards (a consumer stream that broke).
    pub async fn pause(&mut self) {
        self.delayer.delay().await;
    }

    /// Forgets the failed tries, keeping the back-off: the request succeeded, and the
    /// next failure starts a new count, yet a server that keeps failing right after
    /// succeeding is still waited for ever longer.
    pub fn succeeded(&mut self) {
        self.tries = 0;
        self.sent_tries = 0;
    }

    /// Starts the back-off over: the server has proven healthy.
    pub fn reset_delay(&mut self) {
        self.delayer.reset();
    }

    /// The failed tries counted since the start or the last success.
    pub fn tries(&self) -> u32 {
        self.tries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn tries_until_giving_up(idempotence: Idempotence, failure: TryFailure) -> u32 {
        let mut retrying = Retrying::new(RetryPolicy::default(), idempotence);
        while retrying.again(failure).await {}
        retrying.tries()
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_may_have_reached_the_server_is_tried_five_times() {
        for failure in [
            TryFailure::Lost,
            TryFailure::Answered(StatusCode::INTERNAL_SERVER_ERROR),
            TryFailure::Answered(StatusCode::SERVICE_UNAVAILABLE),
        ] {
            assert_eq!(
                tries_until_giving_up(Idempotence::Idempotent, failure).await,
                5,
                "{failure:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_must_not_act_twice_is_repeated_only_when_the_server_did_not_act() {
        for status in [
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::GATEWAY_TIMEOUT,
        ] {
            let tries =
                tries_until_giving_up(Idempotence::NotIdempotent, TryFailure::Answered(status))
                    .await;
            assert_eq!(tries, 5, "{status}");
        }
        for failure in [
            TryFailure::Lost,
            TryFailure::Answered(StatusCode::INTERNAL_SERVER_ERROR),
            TryFailure::Answered(StatusCode::TOO_MANY_REQUESTS),
        ] {
            let tries = tries_until_giving_up(Idempotence::NotIdempotent, failure).await;
            assert_eq!(tries, 1, "{failure:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_server_is_waited_for_with_growing_back_off() {
        let mut retrying = Retrying::new(RetryPolicy::default(), Idempotence::NotIdempotent);
        let start = tokio::time::Instant::now();
        for _ in 0..100 {
            assert!(retrying.again(TryFailure::Unreachable).await);
        }
        // Each round of eight waits takes tens of seconds; a busy loop would take none.
        assert!(start.elapsed() > Duration::from_secs(100));
    }

    #[tokio::test(start_paused = true)]
    async fn max_tries_bounds_waiting_for_an_unreachable_server() {
        let policy = RetryPolicy {
            max_tries: Some(3),
            ..RetryPolicy::default()
        };
        let mut retrying = Retrying::new(policy, Idempotence::Idempotent);
        while retrying.again(TryFailure::Unreachable).await {}
        assert_eq!(retrying.tries(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_starts_a_new_count() {
        let mut retrying = Retrying::new(RetryPolicy::default(), Idempotence::Idempotent);
        for _ in 0..4 {
            assert!(retrying.again(TryFailure::Lost).await);
        }
        retrying.succeeded();
        assert!(retrying.again(TryFailure::Lost).await);
    }

    #[tokio::test(start_paused = true)]
    async fn run_returns_the_last_error_once_it_gives_up() {
        let url: Url = "http://localhost/".parse().unwrap();
        let mut calls = 0;
        let result: Result<(), String> = RetryPolicy::default()
            .run(&url, Idempotence::Idempotent, || {
                calls += 1;
                let error = format!("cut {calls}");
                async move { Err(TryError::Failed(TryFailure::Lost, error)) }
            })
            .await;
        assert_eq!(result, Err("cut 5".to_string()));
    }

    #[tokio::test]
    async fn run_returns_a_final_error_at_once() {
        let url: Url = "http://localhost/".parse().unwrap();
        let mut calls = 0;
        let result: Result<(), &str> = RetryPolicy::default()
            .run(&url, Idempotence::Idempotent, || {
                calls += 1;
                async { Err(TryError::Final("no")) }
            })
            .await;
        assert_eq!((result, calls), (Err("no"), 1));
    }
}
