//! Verified tokens, kept briefly so that a request costs one lookup rather than a call to
//! the secret store.
//!
//! Tokens are bearer credentials, so none is kept in clear: entries are keyed by the hex
//! of the token's SHA-256, made on the stack. Built on [`SecretCache`], which bounds the
//! entries (least recently used out first), gives each its own deadline and lets
//! concurrent first uses of one token share one verification.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use sha2::{Digest, Sha256};
use streambed::secret_cache::{Loaded, SecretCache};

use super::{TokenVerifier, VerifyError};
use crate::principal::Principal;

/// The answer for a token, as kept.
type Answer = Result<Principal, VerifyError>;

/// Verified (and, briefly, refused) tokens by their SHA-256.
#[derive(Clone, Debug)]
pub(super) struct TokenCache {
    entries: Arc<SecretCache<Answer>>,
    /// The longest a verified token is kept.
    pub(super) ttl: Duration,
    /// How long a refused token is kept: long enough to spare the store a flood of one bad
    /// token, short enough that a token just issued is soon accepted.
    pub(super) refusal_ttl: Duration,
    /// How long a verification may take before the request is answered 503.
    pub(super) verify_timeout: Duration,
}

/// The hex of a SHA-256: the cache key of a token.
struct Key([u8; 64]);

impl Key {
    fn of(token: &str) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = Sha256::digest(token.as_bytes());
        let mut key = [0; 64];
        for (pair, byte) in key.chunks_exact_mut(2).zip(digest) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        Key(key)
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl TokenCache {
    pub(super) fn new(
        max_entries: usize,
        ttl: Duration,
        refusal_ttl: Duration,
        verify_timeout: Duration,
    ) -> Self {
        Self {
            entries: Arc::new(SecretCache::new(max_entries)),
            ttl,
            refusal_ttl,
            verify_timeout,
        }
    }

    /// The same settings over a new cache of at most `max_entries`.
    pub(super) fn resized(&self, max_entries: usize) -> Self {
        Self::new(max_entries, self.ttl, self.refusal_ttl, self.verify_timeout)
    }

    /// The principal of `token`: kept if still fresh, else what `verifier` says (one
    /// verification for all the requests that bring the same new token at once) if
    /// `may_verify` allows a call to it; if not, the token is unavailable (and nothing kept).
    pub(super) async fn principal(
        &self,
        verifier: &Arc<dyn TokenVerifier>,
        token: &str,
        may_verify: impl FnOnce() -> bool,
    ) -> Answer {
        let key = Key::of(token);
        let load = || {
            let allowed = may_verify();
            let verifier = Arc::clone(verifier);
            let token = token.to_string();
            let (ttl, refusal_ttl, timeout) = (self.ttl, self.refusal_ttl, self.verify_timeout);
            async move {
                if !allowed {
                    return Loaded::uncached(Err(VerifyError::Unavailable(
                        "not verified: too many failed identities from this address".to_owned(),
                    )));
                }
                let verified = tokio::time::timeout(timeout, verifier.verify(&token)).await;
                match verified {
                    Ok(Ok(verified)) => {
                        let mut keep = ttl;
                        if let Some(expires) = verified.expires {
                            match expires.duration_since(SystemTime::now()) {
                                Ok(left) => keep = keep.min(left),
                                // Expired as it was verified: a store's clock ahead of ours.
                                Err(_) => {
                                    return Loaded::keep_for(Err(VerifyError::Refused), refusal_ttl)
                                }
                            }
                        }
                        Loaded::keep_for(Ok(verified.principal), keep)
                    }
                    Ok(Err(VerifyError::Refused)) => {
                        Loaded::keep_for(Err(VerifyError::Refused), refusal_ttl)
                    }
                    Ok(Err(unavailable)) => Loaded::uncached(Err(unavailable)),
                    Err(_) => Loaded::uncached(Err(VerifyError::Unavailable(format!(
                        "no answer within {timeout:?}"
                    )))),
                }
            }
        };
        match self.entries.get_or_load(key.as_str(), load).await {
            Ok(answer) => answer,
            Err(abandoned) => Err(VerifyError::Unavailable(abandoned.to_string())),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::identity::Verified;

    /// Accepts `good` as `ann` until `expires`, refuses others, and counts its calls.
    struct Counting {
        calls: AtomicUsize,
        expires: Option<SystemTime>,
        unavailable: bool,
    }

    #[async_trait]
    impl TokenVerifier for Counting {
        async fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.unavailable {
                return Err(VerifyError::Unavailable("down".into()));
            }
            match token {
                "good" => Ok(Verified::new(Principal::new("ann"), self.expires)),
                _ => Err(VerifyError::Refused),
            }
        }
    }

    fn verifier(
        expires: Option<SystemTime>,
        unavailable: bool,
    ) -> (Arc<Counting>, Arc<dyn TokenVerifier>) {
        let counting = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            expires,
            unavailable,
        });
        (Arc::clone(&counting), counting)
    }

    fn cache(ttl: Duration) -> TokenCache {
        TokenCache::new(10, ttl, Duration::from_millis(50), Duration::from_secs(1))
    }

    #[tokio::test]
    async fn a_verified_token_is_answered_from_the_cache_until_its_ttl() {
        let (counting, verifier) = verifier(None, false);
        let cache = cache(Duration::from_millis(200));
        for _ in 0..3 {
            assert_eq!(
                cache.principal(&verifier, "good", || true).await,
                Ok(Principal::new("ann"))
            );
        }
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        cache.principal(&verifier, "good", || true).await.unwrap();
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_kept_token_needs_no_leave_to_verify_and_a_new_one_without_it_is_not_verified() {
        let (counting, verifier) = verifier(None, false);
        let cache = cache(Duration::from_secs(60));
        cache.principal(&verifier, "good", || true).await.unwrap();
        let kept = cache
            .principal(&verifier, "good", || panic!("not asked"))
            .await;
        assert_eq!(kept, Ok(Principal::new("ann")));
        let barred = cache.principal(&verifier, "bad", || false).await;
        assert!(
            matches!(barred, Err(VerifyError::Unavailable(_))),
            "{barred:?}"
        );
        assert_eq!(
            counting.calls.load(Ordering::SeqCst),
            1,
            "no store call when barred"
        );
        // Nothing kept from the barred attempt: allowed later, the token is verified.
        let refused = cache.principal(&verifier, "bad", || true).await;
        assert_eq!(refused, Err(VerifyError::Refused));
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_token_is_never_kept_past_its_own_expiry() {
        let expires = SystemTime::now() + Duration::from_millis(100);
        let (counting, verifier) = verifier(Some(expires), false);
        let cache = cache(Duration::from_secs(60));
        cache.principal(&verifier, "good", || true).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The verifier is asked again, and its answer is now out of date.
        assert_eq!(
            cache.principal(&verifier, "good", || true).await,
            Err(VerifyError::Refused)
        );
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_token_expired_when_verified_is_refused() {
        let expires = SystemTime::now() - Duration::from_secs(1);
        let (_, verifier) = verifier(Some(expires), false);
        let answer = cache(Duration::from_secs(60))
            .principal(&verifier, "good", || true)
            .await;
        assert_eq!(answer, Err(VerifyError::Refused));
    }

    #[tokio::test]
    async fn a_refusal_is_kept_only_briefly() {
        let (counting, verifier) = verifier(None, false);
        let cache = cache(Duration::from_secs(60));
        assert_eq!(
            cache.principal(&verifier, "bad", || true).await,
            Err(VerifyError::Refused)
        );
        assert_eq!(
            cache.principal(&verifier, "bad", || true).await,
            Err(VerifyError::Refused)
        );
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        cache
            .principal(&verifier, "bad", || true)
            .await
            .unwrap_err();
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unavailable_store_is_asked_again_next_time() {
        let (counting, verifier) = verifier(None, true);
        let cache = cache(Duration::from_secs(60));
        for _ in 0..2 {
            assert!(matches!(
                cache.principal(&verifier, "good", || true).await,
                Err(VerifyError::Unavailable(_))
            ));
        }
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_its_bound() {
        let (_, verifier) = verifier(None, false);
        let cache = TokenCache::new(
            3,
            Duration::from_secs(60),
            Duration::from_secs(60),
            Duration::from_secs(1),
        );
        for i in 0..10 {
            let _ = cache
                .principal(&verifier, &format!("bad-{i}"), || true)
                .await;
        }
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn tokens_are_keyed_by_the_hex_of_their_sha256() {
        assert_eq!(
            Key::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
