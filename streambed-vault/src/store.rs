//! The store itself: what a [`VaultSecretStore`] holds and how its clones and derived
//! stores share it.
//!
//! Its calls live beside it by concept (`auth`, `kv`, `users`, `secret_store` for the
//! trait); this file only says what they all share.

use std::{fmt, sync::Arc};

use reqwest::{Client, RequestBuilder};

use crate::{
    call::{Counted, Reply},
    session::{Config, Session},
    VaultError,
};

/// A [`SecretStore`](streambed::secret_store::SecretStore) that talks to a HashiCorp Vault
/// or OpenBao server over its HTTP API.
///
/// Secrets are read from the KV version 2 engine mounted at `secret/`. Reads are cached,
/// at most `max_secrets_cached` of them (least recently used evicted first), each for the
/// duration in its `ttl_field` or else its lease; a read the server denies is remembered
/// as [`Error::Unauthorized`](streambed::secret_store::Error::Unauthorized) for
/// `unauthorized_timeout`, and so is an absent secret (as
/// `Ok(None)`). Concurrent reads of one path that is not cached make a single request.
///
/// While the server cannot be reached or answers with a transient failure (5xx, 429,
/// timeout), calls retry with [`Delayer`](streambed::delayer::Delayer) back-off, forever
/// unless
/// [`VaultSecretStoreBuilder::max_attempts`](crate::VaultSecretStoreBuilder::max_attempts)
/// sets a limit.
///
/// Clones share the HTTP connections, the token and the cache; clone rather than create
/// new stores. [`with_new_auth_prepared`](Self::with_new_auth_prepared) gives a store
/// that shares the connections only, for another identity (for example a user).
///
/// Counters, through the `metrics` facade: `ss_get_secret_requests` (label `secret_path`),
/// `ss_approle_auth_requests` (label `approle_auth`: the role id),
/// `ss_userpass_auth_requests` (label `userpass_auth`: the user name),
/// `ss_userpass_create_updates` (label `userpass_create_update`: the user name; also
/// counts the calls of [`rename_user`](Self::rename_user)),
/// `ss_create_secret_requests` (label `secret_path`), `ss_token_auth_requests` (label
/// `token_auth`) for each try; `ss_unauthorized` and `ss_other_reply_failures` with the
/// label of the call; `ss_unavailables` for each try the server could not be reached;
/// `ss_retries_total` (with the label of the call) for each try after a call's first;
/// `ss_cache_hits_total` for each secret read answered without a request (from the cache,
/// or by a read of the same path already under way) and `ss_cache_misses_total` for each
/// that started one.
///
/// ```no_run
/// use std::time::Duration;
/// use streambed::secret_store::SecretStore;
/// use streambed_vault::VaultSecretStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ss = VaultSecretStore::new(
///     "http://localhost:8200".parse()?,
///     None,
///     false,
///     Duration::from_secs(60),
///     10_000,
///     Some("ttl"),
/// );
/// ss.approle_auth("my-role-id", "my-secret-id").await?;
/// let key = streambed::get_secret_value(&ss, "default/secrets.key").await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct VaultSecretStore {
    pub(crate) config: Arc<Config>,
    pub(crate) session: Arc<Session>,
}

impl fmt::Debug for VaultSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("VaultSecretStore")
            .field("calls", &self.config.calls)
            .field("unauthorized_timeout", &self.config.unauthorized_timeout)
            .field("max_secrets_cached", &self.config.max_secrets_cached)
            .field("ttl_field", &self.config.ttl_field)
            .field("authenticated", &self.session.is_authenticated())
            .finish()
    }
}

impl VaultSecretStore {
    /// A store with the settings and HTTP connections of `ss`, but not yet authenticated
    /// and with an empty cache of its own: for acting as another identity, such as a user
    /// who logs in, without touching `ss`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed_vault::VaultSecretStore;
    ///
    /// let service = VaultSecretStore::new(
    ///     "http://127.0.0.1:8200".parse().unwrap(), None, false, Duration::from_secs(60), 100, None,
    /// );
    /// let user = VaultSecretStore::with_new_auth_prepared(&service);
    /// # let _ = user;
    /// ```
    pub fn with_new_auth_prepared(ss: &Self) -> Self {
        Self {
            config: Arc::clone(&ss.config),
            session: Arc::new(Session::new(ss.config.max_secrets_cached)),
        }
    }

    /// Whether a token is in use (from a login or
    /// [`SecretStore::token_auth`](streambed::secret_store::SecretStore::token_auth)); says
    /// nothing of whether the server still accepts it.
    pub fn is_authenticated(&self) -> bool {
        self.session.is_authenticated()
    }
}

impl VaultSecretStore {
    /// Sends the request that `request` builds on the store's client, carrying the token in
    /// use, under the retry policy of every call; see `Calls::send`.
    pub(crate) async fn send_with_token(
        &self,
        counted: &Counted<'_>,
        request: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Reply, VaultError> {
        let calls = &self.config.calls;
        let with_token = || self.session.with_token(request(&calls.client));
        calls.send(counted, with_token).await
    }
}
