//! One HTTP call to the server, retried under the shared policy of [`streambed::http`]
//! while the server is unreachable or failing, and counted through the `metrics` facade.

use std::{error::Error as _, sync::Arc, time::Duration};

use log::debug;
use metrics::counter;
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use streambed::http::{
    self, ApiUrlError, BodyError, Idempotence, RetryPolicy, TryError, TryFailure,
};

use crate::VaultError;

/// Largest answer read from the server; Vault's answers are a few KiB.
const MAX_REPLY: usize = 1024 * 1024;

/// Counter of server or network failures (upstream's name).
pub(crate) const UNAVAILABLES: &str = "ss_unavailables";
/// Counter of denied calls (upstream's name).
pub(crate) const UNAUTHORIZED: &str = "ss_unauthorized";
/// Counter of answers that are neither success nor denial (upstream's name).
pub(crate) const OTHER_REPLY_FAILURES: &str = "ss_other_reply_failures";
/// Counter of tries after the first of a call (the server was unreachable or failing).
pub(crate) const RETRIES: &str = "ss_retries_total";
/// Counter of secret reads answered without a request: from the cache, or by a read of
/// the same path already under way.
pub(crate) const CACHE_HITS: &str = "ss_cache_hits_total";
/// Counter of secret reads that started a request.
pub(crate) const CACHE_MISSES: &str = "ss_cache_misses_total";

/// What a call is counted as: the counter of its attempts and the label naming its subject.
pub(crate) struct Counted<'a> {
    pub(crate) requests: &'static str,
    pub(crate) label: &'static str,
    pub(crate) value: &'a str,
}

impl Counted<'_> {
    /// Counts one more of `counter` for this call's subject.
    pub(crate) fn count(&self, counter: &'static str) {
        counter!(counter, self.label => self.value.to_string()).increment(1);
    }
}

/// A complete answer of the server.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// Whether the server refused the call for lack of rights.
    pub(crate) fn is_denied(&self) -> bool {
        matches!(
            self.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        )
    }

    /// The server's error messages (Vault's `{"errors": [...]}`), or the start of the body.
    pub(crate) fn message(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<String>,
        }
        match serde_json::from_slice::<Errors>(&self.body) {
            Ok(errors) if !errors.errors.is_empty() => errors.errors.join("; "),
            _ => {
                let start = &self.body[..self.body.len().min(200)];
                String::from_utf8_lossy(start).trim().to_string()
            }
        }
    }

    /// The failure to report for an answer that is neither success nor denial.
    pub(crate) fn failure(&self, counted: &Counted<'_>) -> VaultError {
        counted.count(OTHER_REPLY_FAILURES);
        debug!(
            "Secret store answered {} for {} {}",
            self.status, counted.label, counted.value
        );
        VaultError::Status {
            status: self.status.as_u16(),
            message: self.message(),
        }
    }
}

/// The HTTP side of the store: the client, the server's base URL and the retry policy.
#[derive(Debug)]
pub(crate) struct Calls {
    pub(crate) client: Client,
    base: Url,
    policy: RetryPolicy,
}

/// An error with its chain of causes, which is where reqwest says what went wrong.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Calls {
    /// Calls with `client` to the server at `server`; `max_attempts` bounds the tries of
    /// a call in all (else an unreachable server is waited for indefinitely).
    pub(crate) fn new(client: Client, server: Url, max_attempts: Option<u32>) -> Self {
        Self {
            client,
            base: server,
            policy: RetryPolicy {
                max_tries: max_attempts,
                ..RetryPolicy::default()
            },
        }
    }

    /// The URL of `fixed` API path components followed by `tail`'s, which come from
    /// checked names (`streambed::secret_path`). Components are percent-encoded, so no
    /// name can reach another API path.
    pub(crate) fn url<'a>(
        &self,
        fixed: &[&'a str],
        tail: impl IntoIterator<Item = &'a str>,
    ) -> Result<Url, VaultError> {
        http::api_url(&self.base, fixed.iter().copied().chain(tail)).map_err(|error| match error {
            ApiUrlError::NotABase(_) => VaultError::InvalidServerUrl(self.base.to_string()),
            ApiUrlError::Segment(segment) => VaultError::InvalidPathSegment(segment),
        })
    }

    /// Sends the request that `request` builds until the server gives an answer that is
    /// not a transient failure, under the shared retry policy: an unreachable server is
    /// waited for (up to `max_attempts` tries when set), a call that may have reached the
    /// server is tried at most 5 times; each failure names the URL.
    pub(crate) async fn send(
        &self,
        counted: &Counted<'_>,
        request: impl Fn() -> RequestBuilder,
    ) -> Result<Reply, VaultError> {
        let url = request()
            .build()
            .map_err(|error| VaultError::Client(Arc::new(error)))?
            .url()
            .clone();
        let mut tried = false;
        self.policy
            .run(&url, Idempotence::Idempotent, || {
                counted.count(counted.requests);
                if std::mem::replace(&mut tried, true) {
                    counted.count(RETRIES);
                }
                let attempt = request().send();
                let url = &url;
                async move {
                    let response = match attempt.await {
                        Ok(response) => response,
                        Err(error) => {
                            if let Some(reason) = http::refused_certificate(&error) {
                                return Err(TryError::Final(VaultError::Certificate(format!(
                                    "{url}: {reason}"
                                ))));
                            }
                            let Some(failure) = TryFailure::of_error(&error) else {
                                return Err(TryError::Final(VaultError::Client(Arc::new(error))));
                            };
                            counter!(UNAVAILABLES).increment(1);
                            return Err(TryError::Failed(
                                failure,
                                VaultError::Unavailable(format!("{url}: {}", describe(&error))),
                            ));
                        }
                    };
                    let status = response.status();
                    let body = match http::read_body(response, MAX_REPLY).await {
                        Ok(body) => body,
                        Err(BodyError::Transport(error)) => {
                            counter!(UNAVAILABLES).increment(1);
                            return Err(TryError::Failed(
                                TryFailure::Lost,
                                VaultError::Unavailable(format!("{url}: {}", describe(&error))),
                            ));
                        }
                        Err(too_large @ BodyError::TooLarge { .. }) => {
                            return Err(TryError::Final(VaultError::InvalidReply(format!(
                                "{url}: {too_large}"
                            ))));
                        }
                    };
                    let reply = Reply { status, body };
                    match TryFailure::of_status(status) {
                        Some(failure) => {
                            counted.count(OTHER_REPLY_FAILURES);
                            Err(TryError::Failed(
                                failure,
                                VaultError::Unavailable(format!(
                                    "{url} answered {status}: {}",
                                    reply.message()
                                )),
                            ))
                        }
                        None => Ok(reply),
                    }
                }
            })
            .await
    }
}

/// How long a read secret may be cached: the duration in its `ttl_field` when set and
/// readable (a humantime string such as `"1m"`), else its lease.
pub(crate) fn secret_ttl(
    reply: &streambed::secret_store::GetSecretReply,
    ttl_field: Option<&str>,
) -> Duration {
    ttl_field
        .and_then(|field| reply.data.data.get(field))
        .and_then(|ttl| ttl.parse::<humantime::Duration>().ok())
        .map(Duration::from)
        .unwrap_or_else(|| Duration::from_secs(reply.lease_duration))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use streambed::secret_store::{GetSecretReply, SecretData};

    use super::*;

    fn calls(server: &str) -> Calls {
        Calls::new(Client::new(), Url::parse(server).unwrap(), None)
    }

    #[test]
    fn urls_keep_the_server_prefix_and_encode_components() {
        let url = calls("http://127.0.0.1:8200/vault/")
            .url(&["v1", "secret", "data"], ["default", "a b?c"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8200/vault/v1/secret/data/default/a%20b%3Fc"
        );
        let url = self::calls("http://localhost:8200")
            .url(&["v1", "auth", "userpass", "login"], ["mary"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://localhost:8200/v1/auth/userpass/login/mary"
        );
    }

    #[test]
    fn a_server_url_that_cannot_carry_a_path_is_an_error() {
        assert!(matches!(
            calls("mailto:vault@example.com").url(&["v1"], ["x"]),
            Err(VaultError::InvalidServerUrl(_))
        ));
    }

    #[test]
    fn a_component_that_would_change_the_path_is_an_error() {
        for component in ["", ".", ".."] {
            assert!(
                matches!(
                    calls("http://localhost:8200").url(&["v1", "secret", "data"], [component]),
                    Err(VaultError::InvalidPathSegment(c)) if c == component
                ),
                "{component:?}"
            );
        }
    }

    #[test]
    fn ttl_comes_from_the_ttl_field_when_readable_else_the_lease() {
        let reply = |ttl: &str| GetSecretReply {
            lease_duration: 7,
            data: SecretData {
                data: HashMap::from([("ttl".to_string(), ttl.to_string())]),
            },
        };
        assert_eq!(
            secret_ttl(&reply("1m"), Some("ttl")),
            Duration::from_secs(60)
        );
        assert_eq!(
            secret_ttl(&reply("soon"), Some("ttl")),
            Duration::from_secs(7)
        );
        assert_eq!(secret_ttl(&reply("1m"), None), Duration::from_secs(7));
    }
}
