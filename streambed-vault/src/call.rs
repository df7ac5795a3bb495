//! One HTTP call to the server, retried with back-off while the server is unreachable or
//! failing, and counted through the `metrics` facade.

use std::{error::Error as _, time::Duration};

use log::{debug, warn};
use metrics::counter;
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use streambed::delayer::Delayer;

use crate::VaultError;

/// Largest answer read from the server; Vault's answers are a few KiB.
const MAX_REPLY: usize = 1024 * 1024;

/// Counter of server or network failures (upstream's name).
pub(crate) const UNAVAILABLES: &str = "ss_unavailables";
/// Counter of denied calls (upstream's name).
pub(crate) const UNAUTHORIZED: &str = "ss_unauthorized";
/// Counter of answers that are neither success nor denial (upstream's name).
pub(crate) const OTHER_REPLY_FAILURES: &str = "ss_other_reply_failures";

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
    max_attempts: Option<u32>,
}

/// Statuses that say "try again later" rather than "no".
fn is_transient(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::REQUEST_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
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

async fn read_body(mut response: Response) -> Result<Vec<u8>, VaultError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| VaultError::Unavailable(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_REPLY {
            return Err(VaultError::InvalidReply(format!(
                "answer larger than {MAX_REPLY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl Calls {
    pub(crate) fn new(client: Client, server: Url, max_attempts: Option<u32>) -> Self {
        Self {
            client,
            base: server,
            max_attempts,
        }
    }

    /// The URL of `fixed` API path components followed by `tail`'s, which come from
    /// checked names (`streambed::secret_path`). Components are percent-encoded, so no
    /// name can reach another API path.
    pub(crate) fn url<'a>(
        &self,
        fixed: &[&str],
        tail: impl IntoIterator<Item = &'a str>,
    ) -> Result<Url, VaultError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| VaultError::InvalidServerUrl(self.base.to_string()))?
            .pop_if_empty()
            .extend(fixed)
            .extend(tail);
        Ok(url)
    }

    /// Sends the request that `request` builds until the server gives an answer that is
    /// not a transient failure, waiting with [`Delayer`] back-off between tries; gives up
    /// after `max_attempts` tries when set.
    pub(crate) async fn send(
        &self,
        counted: &Counted<'_>,
        request: impl Fn() -> RequestBuilder,
    ) -> Result<Reply, VaultError> {
        let mut delayer = Delayer::default();
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            counted.count(counted.requests);
            let failure = match request().send().await {
                Ok(response) => {
                    let status = response.status();
                    match read_body(response).await {
                        Ok(body) if is_transient(status) => {
                            let reply = Reply { status, body };
                            counted.count(OTHER_REPLY_FAILURES);
                            VaultError::Unavailable(format!(
                                "answered {status}: {}",
                                reply.message()
                            ))
                        }
                        Ok(body) => return Ok(Reply { status, body }),
                        Err(failure @ VaultError::Unavailable(_)) => {
                            counter!(UNAVAILABLES).increment(1);
                            failure
                        }
                        Err(failure) => return Err(failure),
                    }
                }
                Err(error) => {
                    counter!(UNAVAILABLES).increment(1);
                    VaultError::Unavailable(describe(&error))
                }
            };
            if self.max_attempts.is_some_and(|max| attempt >= max) {
                warn!("Secret store call failed, giving up after {attempt} tries: {failure}");
                return Err(failure);
            }
            if attempt == 1 {
                warn!("Secret store call failed, will retry: {failure}");
            } else {
                debug!("Secret store call failed again (try {attempt}): {failure}");
            }
            delayer.delay().await;
        }
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
