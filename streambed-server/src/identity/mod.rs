//! Who is asking: a request's bearer token, verified through a secret store, or the
//! client certificate its connection showed, turned into a [`Principal`].
//!
//! One concept per file: `bearer` reads the `Authorization` header, `cache` keeps
//! verified tokens for a short while (so a request costs no secret-store round trip),
//! `stores` adapts the family's secret stores to [`TokenVerifier`], and `layer` puts
//! the answer in the request's extensions (or refuses it) before any handler runs. Which
//! topics a principal may use is the [`policy`](crate::policy)'s business, not this one's.

pub(crate) mod bearer;
mod cache;
pub(crate) mod layer;
#[cfg(any(feature = "confidant", feature = "vault"))]
mod stores;

use std::{sync::Arc, time::Duration, time::SystemTime};

use async_trait::async_trait;
use axum::http::HeaderMap;

use crate::principal::{Peer, Principal};
use bearer::BearerError;
use cache::TokenCache;

/// Turns a bearer token into the principal it was issued for.
///
/// Implemented for `streambed_confidant::FileSecretStore` (feature `confidant`: the
/// token's user) and `streambed_vault::VaultSecretStore` (feature `vault`: the principal
/// of `auth/token/lookup-self`); implement it to check tokens some other way.
///
/// ```
/// use async_trait::async_trait;
/// use streambed_server::{
///     identity::{TokenVerifier, Verified, VerifyError},
///     principal::Principal,
/// };
///
/// /// One fixed token, for a demonstration.
/// struct OneToken;
///
/// #[async_trait]
/// impl TokenVerifier for OneToken {
///     async fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
///         match token {
///             "s3cret" => Ok(Verified::new(Principal::new("demo"), None)),
///             _ => Err(VerifyError::Refused),
///         }
///     }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(OneToken.verify("s3cret").await.unwrap().principal.as_str(), "demo");
/// # });
/// ```
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    /// The principal `token` stands for, or why it is not accepted.
    async fn verify(&self, token: &str) -> Result<Verified, VerifyError>;
}

/// A token found valid: whose it is, and until when (if the store says).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// Who the token stands for.
    pub principal: Principal,
    /// When the token stops being valid; a verified token is never kept past it.
    pub expires: Option<SystemTime>,
}

impl Verified {
    /// `principal`'s token, valid until `expires` when known.
    ///
    /// ```
    /// use streambed_server::{identity::Verified, principal::Principal};
    ///
    /// let verified = Verified::new(Principal::new("ann"), None);
    /// assert_eq!(verified.principal.as_str(), "ann");
    /// ```
    pub fn new(principal: Principal, expires: Option<SystemTime>) -> Self {
        Self { principal, expires }
    }
}

/// Why a token was not turned into a principal.
///
/// ```
/// use streambed_server::identity::VerifyError;
///
/// let error = VerifyError::Unavailable("connection refused".into());
/// assert_eq!(error.to_string(), "the token store is unavailable: connection refused");
/// ```
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum VerifyError {
    /// The token is not valid: unknown, expired, badly signed. The client gets 401.
    #[error("the token is not valid")]
    Refused,
    /// The store could not say (unreachable, misconfigured). The client gets 503 and may
    /// retry; the answer is not cached.
    #[error("the token store is unavailable: {0}")]
    Unavailable(String),
}

/// Why a request has no principal.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub(crate) enum Unauthenticated {
    /// Neither a bearer token nor a verified client certificate.
    #[error(
        "this server needs an identity: an Authorization: Bearer token or a client certificate"
    )]
    Missing,
    /// An `Authorization` header that is not a bearer token.
    #[error("{0}")]
    Malformed(BearerError),
    /// A bearer token that was not accepted.
    #[error("the bearer token is not valid")]
    Refused,
    /// The token could not be checked.
    #[error("{0}")]
    Unavailable(String),
}

/// The defaults of [`Identities`]: verified tokens kept 30 s, refusals 1 s, 10 000 at most,
/// a store that does not answer within 5 s is unavailable.
const DEFAULT_TTL: Duration = Duration::from_secs(30);
const DEFAULT_REFUSAL_TTL: Duration = Duration::from_secs(1);
const DEFAULT_MAX_TOKENS: usize = 10_000;
const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// How the server learns who a request acts for; give it to
/// [`Server::with_identities`](crate::Server::with_identities). With identities on, every request
/// needs a principal: from its `Authorization: Bearer <token>` header when it has one
/// (checked by the [`TokenVerifier`]), else from the client certificate its connection
/// showed (mutual TLS); otherwise it gets 401 with `WWW-Authenticate: Bearer`.
///
/// A verified token is kept for [`cache_ttl`](Self::cache_ttl) (30 s by default, never
/// past the token's own expiry), by its SHA-256 rather than in clear, so that most
/// requests cost one lookup and no call to the store; a refused one for 1 s.
///
/// ```
/// use std::time::Duration;
/// use streambed_server::identity::Identities;
///
/// # #[cfg(feature = "confidant")] {
/// let store = streambed_confidant::FileSecretStore::new(
///     "/var/lib/confidant", &[7; 16], Duration::from_secs(60), 1, None,
/// );
/// let identities = Identities::tokens(store).cache_ttl(Duration::from_secs(10));
/// # let _ = identities;
/// # }
/// let mtls_only = Identities::certificates_only();
/// # let _ = mtls_only;
/// ```
#[derive(Clone)]
pub struct Identities {
    tokens: Option<Tokens>,
}

/// The token side of [`Identities`].
#[derive(Clone)]
struct Tokens {
    verifier: Arc<dyn TokenVerifier>,
    cache: Arc<TokenCache>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("tokens", &self.tokens.as_ref().map(|t| &t.cache))
            .finish()
    }
}

impl Identities {
    /// Principals from bearer tokens that `verifier` accepts, or else from client
    /// certificates.
    pub fn tokens(verifier: impl TokenVerifier) -> Self {
        Self {
            tokens: Some(Tokens {
                verifier: Arc::new(verifier),
                cache: Arc::new(TokenCache::new(
                    DEFAULT_MAX_TOKENS,
                    DEFAULT_TTL,
                    DEFAULT_REFUSAL_TTL,
                    DEFAULT_VERIFY_TIMEOUT,
                )),
            }),
        }
    }

    /// Principals from client certificates only (mutual TLS); a bearer token is refused.
    pub fn certificates_only() -> Self {
        Self { tokens: None }
    }

    /// Keeps a verified token for at most `ttl` (never past its expiry); zero checks
    /// every request's token with the store. 30 s by default.
    pub fn cache_ttl(self, ttl: Duration) -> Self {
        self.with_cache(|cache| cache.ttl = ttl)
    }

    /// Keeps at most `max` verified tokens (the least recently used go first). 10 000 by
    /// default.
    pub fn max_cached_tokens(self, max: usize) -> Self {
        self.with_cache(|cache| *cache = cache.resized(max))
    }

    /// How long the store may take to verify a token before the request gets 503. 5 s by
    /// default.
    pub fn verify_timeout(self, timeout: Duration) -> Self {
        self.with_cache(|cache| cache.verify_timeout = timeout)
    }

    fn with_cache(mut self, change: impl FnOnce(&mut TokenCache)) -> Self {
        if let Some(tokens) = &mut self.tokens {
            let mut cache = (*tokens.cache).clone();
            change(&mut cache);
            tokens.cache = Arc::new(cache);
        }
        self
    }

    /// The principal of a request with `headers` that arrived from `peer`.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<&Peer>,
    ) -> Result<Principal, Unauthenticated> {
        let token = bearer::token(headers).map_err(Unauthenticated::Malformed)?;
        let Some(token) = token else {
            return peer
                .and_then(|peer| peer.certificate_principal.clone())
                .ok_or(Unauthenticated::Missing);
        };
        let Some(tokens) = &self.tokens else {
            return Err(Unauthenticated::Refused);
        };
        match tokens.cache.principal(&tokens.verifier, token).await {
            Ok(principal) => Ok(principal),
            Err(VerifyError::Refused) => Err(Unauthenticated::Refused),
            Err(VerifyError::Unavailable(why)) => Err(Unauthenticated::Unavailable(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderValue};

    use super::*;

    struct Fixed;

    #[async_trait]
    impl TokenVerifier for Fixed {
        async fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
            match token {
                "t" => Ok(Verified::new(Principal::new("token-user"), None)),
                _ => Err(VerifyError::Refused),
            }
        }
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        headers.insert(header::AUTHORIZATION, value);
        headers
    }

    fn peer_with_certificate() -> Peer {
        Peer::new("192.0.2.1:5000".parse().unwrap())
            .with_certificate_principal(Principal::new("cert-subject"))
    }

    #[tokio::test]
    async fn without_a_token_the_client_certificate_is_the_principal() {
        let peer = peer_with_certificate();
        for identities in [Identities::tokens(Fixed), Identities::certificates_only()] {
            let principal = identities
                .authenticate(&HeaderMap::new(), Some(&peer))
                .await;
            assert_eq!(principal, Ok(Principal::new("cert-subject")));
        }
    }

    #[tokio::test]
    async fn a_bearer_token_wins_over_the_client_certificate() {
        let peer = peer_with_certificate();
        let identities = Identities::tokens(Fixed);
        let principal = identities.authenticate(&bearer("t"), Some(&peer)).await;
        assert_eq!(principal, Ok(Principal::new("token-user")));
        let refused = identities.authenticate(&bearer("x"), Some(&peer)).await;
        assert_eq!(
            refused,
            Err(Unauthenticated::Refused),
            "no fallback past a bad token"
        );
    }

    #[tokio::test]
    async fn with_certificates_only_a_token_is_refused() {
        let identities = Identities::certificates_only();
        let refused = identities.authenticate(&bearer("t"), None).await;
        assert_eq!(refused, Err(Unauthenticated::Refused));
    }

    #[tokio::test]
    async fn neither_token_nor_certificate_is_missing() {
        let peer = Peer::new("192.0.2.1:5000".parse().unwrap());
        let identities = Identities::tokens(Fixed);
        let missing = identities
            .authenticate(&HeaderMap::new(), Some(&peer))
            .await;
        assert_eq!(missing, Err(Unauthenticated::Missing));
    }
}
