//! Secrets in the KV version 2 engine at `secret/`: reads through the session's cache, and
//! writes that invalidate it.
//!
//! A read is a cache load, so concurrent misses of one path share one request and a
//! cancelled caller cancels nothing; a write drops the cached read of its path however the
//! writing future ends, so a read after a write never sees the old value.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use log::debug;
use metrics::counter;
use reqwest::{StatusCode, Url};
use serde_json::json;
use streambed::{
    secret_cache::{Loaded, SecretCache},
    secret_path::SecretPath,
    secret_store::{GetSecretReply, SecretData},
};

use crate::{
    call::{secret_ttl, Counted, CACHE_HITS, CACHE_MISSES, OTHER_REPLY_FAILURES},
    outcome::accepted,
    session::{Config, SecretRead, Session},
    VaultError, VaultSecretStore,
};

/// Where the KV version 2 engine keeps a secret's current version.
const DATA: [&str; 3] = ["v1", "secret", "data"];

impl VaultSecretStore {
    /// [`SecretStore::get_secret`](streambed::secret_store::SecretStore::get_secret) with
    /// the reason of a failure: `Ok(None)` only when the secret is absent. A path that
    /// breaks the rules of [`streambed::secret_path`] is [`VaultError::InvalidInput`], with
    /// no request.
    pub async fn try_get_secret(
        &self,
        secret_path: &str,
    ) -> Result<Option<GetSecretReply>, VaultError> {
        let path = SecretPath::parse(secret_path)?;
        let url = self.config.calls.url(&DATA, path.components())?;
        let config = &self.config;
        let session = &self.session;
        // One retry: a load can be abandoned once by a runtime shutting down or a restart
        // racing it; a load that is abandoned again (it panics, or no runtime can run it)
        // would be abandoned forever, so that is reported instead of retried.
        for _ in 0..2 {
            // Set when this read starts the request rather than being answered by the
            // cache (or by a read of the same path under way).
            let started = AtomicBool::new(false);
            let load = || {
                started.store(true, Ordering::Relaxed);
                let loading = load_secret(
                    Arc::clone(config),
                    Arc::clone(session),
                    url.clone(),
                    secret_path.to_string(),
                );
                async move {
                    let (read, ttl) = loading.await;
                    Loaded::keep_for(read, ttl)
                }
            };
            if let Ok(read) = session.cache.get_or_load(secret_path, load).await {
                let counter = if started.load(Ordering::Relaxed) {
                    CACHE_MISSES
                } else {
                    CACHE_HITS
                };
                counter!(counter).increment(1);
                return read;
            }
        }
        Err(VaultError::Unavailable(format!(
            "the read of {secret_path} was abandoned before it finished"
        )))
    }

    /// [`SecretStore::create_secret`](streambed::secret_store::SecretStore::create_secret)
    /// with the reason of a failure. A path that breaks the rules of
    /// [`streambed::secret_path`] is [`VaultError::InvalidInput`], with no request.
    pub async fn try_create_secret(
        &self,
        secret_path: &str,
        secret_data: SecretData,
    ) -> Result<(), VaultError> {
        let path = SecretPath::parse(secret_path)?;
        let url = self.config.calls.url(&DATA, path.components())?;
        let counted = Counted {
            requests: "ss_create_secret_requests",
            label: "secret_path",
            value: secret_path,
        };
        let body = json!({ "data": secret_data.data });
        // Whatever happens, even if this future is dropped while the request is under way
        // (the server may have applied it), what was cached for this path may be stale.
        let _invalidate = InvalidateOnDrop {
            cache: &self.session.cache,
            key: secret_path,
        };
        let reply = self
            .send_with_token(&counted, |client| client.post(url.clone()).json(&body))
            .await?;
        accepted(&reply, &counted)
    }
}

/// Reads a secret from the server: the outcome and how long to cache it.
async fn load_secret(
    config: Arc<Config>,
    session: Arc<Session>,
    url: Url,
    secret_path: String,
) -> (SecretRead, Duration) {
    let counted = Counted {
        requests: "ss_get_secret_requests",
        label: "secret_path",
        value: &secret_path,
    };
    let client = &config.calls.client;
    let reply = match config
        .calls
        .send(&counted, || session.with_token(client.get(url.clone())))
        .await
    {
        Ok(reply) => reply,
        // Gave up on an unavailable server: nothing worth remembering.
        Err(error) => return (Err(error), Duration::ZERO),
    };
    let remember = config.unauthorized_timeout;
    if reply.status == StatusCode::NOT_FOUND {
        return (Ok(None), remember);
    }
    if let Err(error) = accepted(&reply, &counted) {
        return (Err(error), remember);
    }
    match serde_json::from_slice::<GetSecretReply>(&reply.body) {
        Ok(secret) => {
            let ttl = secret_ttl(&secret, config.ttl_field.as_deref());
            (Ok(Some(secret)), ttl)
        }
        Err(error) => {
            counted.count(OTHER_REPLY_FAILURES);
            debug!("Secret store answer for {secret_path} cannot be read: {error}");
            (
                Err(VaultError::InvalidReply(format!("secret answer: {error}"))),
                remember,
            )
        }
    }
}

/// Invalidates a cached secret when dropped: after a write, however the writing future
/// ends.
struct InvalidateOnDrop<'a> {
    cache: &'a SecretCache<SecretRead>,
    key: &'a str,
}

impl Drop for InvalidateOnDrop<'_> {
    fn drop(&mut self) {
        self.cache.invalidate(self.key);
    }
}
