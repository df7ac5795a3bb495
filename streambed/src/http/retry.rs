//! The retry policy: how often, and after which failures, a request is tried again,
//! apart from the failure classification ([`TryFailure`]) so that the counting and
//! waiting rules can be read (and tested) on their own.

use std::{fmt::Display, future::Future};

use log::{debug, warn};
use reqwest::Url;

use super::failure::TryFailure;
use crate::delayer::Delayer;

/// Whether sending a request twice can do harm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotence {
    /// Repeating it does no harm: a read, a login, a write of the same value.
    Idempotent,
    /// Repeating it could act twice (appending records): it is sent again only when it
    /// surely did not reach the server, or the server answered that it did not act on it
    /// (503).
    NotIdempotent,
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
    use std::time::Duration;

    use reqwest::StatusCode;

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
        let tries = tries_until_giving_up(
            Idempotence::NotIdempotent,
            TryFailure::Answered(StatusCode::SERVICE_UNAVAILABLE),
        )
        .await;
        assert_eq!(tries, 5);
        // A gateway's 502 or 504 may follow the server's append.
        for failure in [
            TryFailure::Lost,
            TryFailure::Answered(StatusCode::INTERNAL_SERVER_ERROR),
            TryFailure::Answered(StatusCode::TOO_MANY_REQUESTS),
            TryFailure::Answered(StatusCode::BAD_GATEWAY),
            TryFailure::Answered(StatusCode::GATEWAY_TIMEOUT),
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
