//! The clients' one way to build their `reqwest::Client` and to read an answer, so that
//! TLS is rustls everywhere and no server can make a client hold an answer of any size.

use std::time::Duration;

use reqwest::{
    header::{HeaderMap, AUTHORIZATION},
    Certificate, Client, Identity, Response,
};
use thiserror::Error;

use super::BearerToken;

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
    /// A client certificate chain and its key, shown to a server that asks for one
    /// (mutual TLS); see [`Identity::from_pem`].
    pub client_identity: Option<Identity>,
    /// Sent as `Authorization: Bearer <token>` on every request.
    pub bearer_token: Option<BearerToken>,
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
            client_identity: None,
            bearer_token: None,
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
        if let Some(identity) = self.client_identity {
            builder = builder.identity(identity);
        }
        if let Some(token) = self.bearer_token {
            // A default header: shared by every request, not rebuilt for each.
            let mut headers = HeaderMap::with_capacity(1);
            headers.insert(AUTHORIZATION, token.header_value().clone());
            builder = builder.default_headers(headers);
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

/// Why [`read_body`] could not read an answer.
#[derive(Debug, Error)]
pub enum BodyError {
    /// The connection broke or timed out while the body was read.
    #[error("the answer broke off: {0}")]
    Transport(#[source] reqwest::Error),
    /// The body is longer than the caller allows; the rest was not read.
    #[error("answer larger than {limit} bytes")]
    TooLarge {
        /// The most bytes the caller allowed.
        limit: usize,
    },
}

/// The whole body of `response`, or [`BodyError::TooLarge`] as soon as it is known to
/// exceed `limit` bytes: from its `Content-Length`, else once the chunks read pass it,
/// so a server cannot make the client buffer an endless answer.
///
/// ```
/// use streambed::http::{read_body, BodyError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let response = reqwest::Response::from(http::Response::new("{}"));
/// assert_eq!(read_body(response, 2).await.unwrap(), b"{}");
/// let response = reqwest::Response::from(http::Response::new("[1, 2]"));
/// assert!(matches!(read_body(response, 2).await, Err(BodyError::TooLarge { limit: 2 })));
/// # }
/// ```
pub async fn read_body(mut response: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let too_large = BodyError::TooLarge { limit };
    if response
        .content_length()
        .is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(too_large);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        time::Duration,
    };

    use super::*;

    /// An answer without a length whose body is `chunks` chunks of 1 KiB, then never ends;
    /// `sent` counts the chunks taken from it.
    fn endless(chunks: usize, sent: Arc<AtomicUsize>) -> Response {
        let pieces = (0..chunks).map(move |_| {
            sent.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(vec![b' '; 1024])
        });
        let stream =
            tokio_stream::StreamExt::chain(tokio_stream::iter(pieces), tokio_stream::pending());
        Response::from(http::Response::new(reqwest::Body::wrap_stream(stream)))
    }

    #[tokio::test]
    async fn a_body_without_a_length_is_cut_off_at_the_limit_without_waiting_for_its_end() {
        let sent = Arc::new(AtomicUsize::new(0));
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            read_body(endless(100, Arc::clone(&sent)), 4 * 1024),
        )
        .await
        .expect("the read waits for the end");
        assert!(matches!(read, Err(BodyError::TooLarge { limit: 4096 })));
        assert_eq!(sent.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_read_whole() {
        let stream = tokio_stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 1024])));
        let response = Response::from(http::Response::new(reqwest::Body::wrap_stream(stream)));
        assert_eq!(read_body(response, 4 * 1024).await.unwrap().len(), 4 * 1024);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let response = Response::from(http::Response::new(vec![0u8; 10]));
        assert_eq!(response.content_length(), Some(10));
        assert!(matches!(
            read_body(response, 9).await,
            Err(BodyError::TooLarge { limit: 9 })
        ));
    }
}
