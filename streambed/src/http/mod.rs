//! The HTTP plumbing that streambed's clients (`streambed-kafka`, `streambed-vault`) share,
//! so that both build their client, their URLs and their retries the same way: one
//! list of the answers that mean "try again later", one rule for which requests may be
//! sent again, no retry without a [`Delayer`](crate::delayer::Delayer) back-off before it,
//! and one bounded way to read an answer.
//!
//! A request is retried for as long as the server is *unreachable* (no connection could
//! be made, so it never left), because a service may well start before its server. Once
//! a request may have reached the server, it is tried at most
//! [`RetryPolicy::max_sent_tries`] times, and a request that must not act twice
//! ([`Idempotence::NotIdempotent`]) is sent again only when the server answered that it
//! did not act on it (503). A gateway's 502 or 504 does not say so: the server behind
//! it may have acted. A server certificate that TLS refuses is never retried.
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

mod bearer;
mod client;
mod failure;
mod retry;
mod url;

pub use self::{
    bearer::{BearerToken, InvalidBearerToken},
    client::{read_body, BodyError, ClientOptions},
    failure::{refused_certificate, TryFailure},
    retry::{Idempotence, RetryPolicy, Retrying, TryError},
    url::{api_url, ApiUrlError},
};
