//! The secret store client: authentication, secret reads through the cache, writes.

use std::{
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use async_trait::async_trait;
use log::debug;
use reqwest::{Certificate, RequestBuilder, Url};
use serde::de::DeserializeOwned;
use serde_json::json;
use streambed::{
    secret_cache::{Loaded, SecretCache},
    secret_store::{
        AppRoleAuthReply, AuthToken, Error, GetSecretReply, SecretData, SecretStore,
        UserPassAuthReply,
    },
};

use crate::{
    call::{secret_ttl, Calls, Counted, Reply, UNAUTHORIZED},
    VaultError,
};

const TOKEN_HEADER: &str = "X-Vault-Token";

/// The outcome of a secret read, as cached.
type SecretRead = Result<Option<GetSecretReply>, VaultError>;

/// What stays the same for a store and every store derived from it.
#[derive(Debug)]
struct Config {
    calls: Calls,
    unauthorized_timeout: Duration,
    max_secrets_cached: usize,
    ttl_field: Option<String>,
}

/// The token in use and whose it is: a new identity starts with an empty cache.
struct Token {
    value: String,
    identity: String,
}

/// What one authentication holds: its token and the secrets read with it.
struct Session {
    token: RwLock<Option<Token>>,
    cache: Arc<SecretCache<SecretRead>>,
}

impl Session {
    fn new(max_secrets_cached: usize) -> Self {
        Self {
            token: RwLock::new(None),
            cache: Arc::new(SecretCache::new(max_secrets_cached)),
        }
    }

    fn with_token(&self, request: RequestBuilder) -> RequestBuilder {
        let token = self.token.read().unwrap_or_else(|e| e.into_inner());
        match token.as_ref() {
            Some(token) => request.header(TOKEN_HEADER, &token.value),
            None => request,
        }
    }

    /// Uses `value` from now on. Cached reads were made with another identity's rights
    /// when `identity` differs, so they are dropped; a renewed token of the same identity
    /// keeps them.
    fn adopt(&self, value: &str, identity: String) {
        let mut token = self.token.write().unwrap_or_else(|e| e.into_inner());
        let same = token.as_ref().is_some_and(|t| t.identity == identity);
        *token = Some(Token {
            value: value.to_string(),
            identity,
        });
        drop(token);
        if !same {
            self.cache.clear();
        }
    }

    fn is_authenticated(&self) -> bool {
        self.token
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

/// A [`SecretStore`] that talks to a HashiCorp Vault or OpenBao server over its HTTP API.
///
/// Secrets are read from the KV version 2 engine mounted at `secret/`. Reads are cached,
/// at most `max_secrets_cached` of them (least recently used evicted first), each for the
/// duration in its `ttl_field` or else its lease; a read the server denies is remembered
/// as [`Error::Unauthorized`] for `unauthorized_timeout`, and so is an absent secret (as
/// `Ok(None)`). Concurrent reads of one path that is not cached make a single request.
///
/// While the server cannot be reached or answers with a transient failure (5xx, 429,
/// timeout), calls retry with [`Delayer`](streambed::delayer::Delayer) back-off, forever
/// unless [`VaultSecretStoreBuilder::max_attempts`] sets a limit.
///
/// Clones share the HTTP connections, the token and the cache; clone rather than create
/// new stores. [`with_new_auth_prepared`](Self::with_new_auth_prepared) gives a store
/// that shares the connections only, for another identity (for example a user).
///
/// Counters, through the `metrics` facade: `ss_get_secret_requests` (label `secret_path`),
/// `ss_approle_auth_requests` (label `approle_auth`: the role id),
/// `ss_userpass_auth_requests` (label `userpass_auth`: the user name),
/// `ss_userpass_create_updates` (label `userpass_create_update`: the user name),
/// `ss_create_secret_requests` (label `secret_path`), `ss_token_auth_requests` (label
/// `token_auth`) for each try; `ss_unauthorized` and `ss_other_reply_failures` with the
/// label of the call; `ss_unavailables` for each try the server could not be reached.
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
    config: Arc<Config>,
    session: Arc<Session>,
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

/// Sets up a [`VaultSecretStore`] with more options than [`VaultSecretStore::new`].
///
/// ```
/// use std::time::Duration;
/// use streambed_vault::VaultSecretStore;
///
/// let ss = VaultSecretStore::builder("http://127.0.0.1:8200".parse().unwrap())
///     .ttl_field(Some("ttl"))
///     .request_timeout(Some(Duration::from_secs(5)))
///     .max_attempts(Some(3))
///     .build()
///     .unwrap();
/// # let _ = ss;
/// ```
#[derive(Debug)]
pub struct VaultSecretStoreBuilder {
    server: Url,
    server_cert: Option<Certificate>,
    tls_insecure: bool,
    unauthorized_timeout: Duration,
    max_secrets_cached: usize,
    ttl_field: Option<String>,
    request_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    max_attempts: Option<u32>,
}

impl VaultSecretStoreBuilder {
    /// Trusts `certificate` as a root, for a server with a self-signed certificate.
    pub fn server_cert(mut self, certificate: Option<Certificate>) -> Self {
        self.server_cert = certificate;
        self
    }

    /// Skips verifying the server's certificate. Only for tests and trusted networks.
    pub fn tls_insecure(mut self, insecure: bool) -> Self {
        self.tls_insecure = insecure;
        self
    }

    /// How long a denied read (and an absent secret) is remembered; 1 minute by default.
    pub fn unauthorized_timeout(mut self, timeout: Duration) -> Self {
        self.unauthorized_timeout = timeout;
        self
    }

    /// How many secret reads are cached at most; 10 000 by default.
    pub fn max_secrets_cached(mut self, max: usize) -> Self {
        self.max_secrets_cached = max;
        self
    }

    /// A secret's field that holds how long to cache it (a humantime string such as
    /// `"5m"`), in place of its lease, which KV version 2 leaves at 0.
    pub fn ttl_field(mut self, field: Option<&str>) -> Self {
        self.ttl_field = field.map(str::to_string);
        self
    }

    /// The longest one try of a call may take, answer included; a try that takes longer
    /// counts as the server being unavailable. 30 seconds by default; `None`: no limit.
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The longest connecting may take; 10 seconds by default; `None`: no limit.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many tries a call makes while the server is unavailable before failing with
    /// [`VaultError::Unavailable`]; `None` (the default, as upstream) waits for an
    /// unreachable server forever. A call that may have reached the server (the
    /// connection broke, or the server answered "try later") is tried at most 5 times
    /// either way.
    pub fn max_attempts(mut self, max: Option<u32>) -> Self {
        self.max_attempts = max.map(|max| max.max(1));
        self
    }

    /// Sets up the store.
    pub fn build(self) -> Result<VaultSecretStore, VaultError> {
        let client = streambed::http::ClientOptions {
            server_cert: self.server_cert,
            tls_insecure: self.tls_insecure,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
        }
        .build()
        .map_err(|e| VaultError::Client(Arc::new(e)))?;
        let config = Config {
            calls: Calls::new(client, self.server, self.max_attempts),
            unauthorized_timeout: self.unauthorized_timeout,
            max_secrets_cached: self.max_secrets_cached,
            ttl_field: self.ttl_field,
        };
        Ok(VaultSecretStore {
            session: Arc::new(Session::new(config.max_secrets_cached)),
            config: Arc::new(config),
        })
    }
}

/// Vault's answer to a token lookup; only its success matters.
#[derive(serde::Deserialize)]
struct TokenLookup {}

impl VaultSecretStore {
    /// A store for the server at `server`, such as `http://localhost:8200`.
    ///
    /// `server_cert` is trusted as a root certificate (for a self-signed server) and
    /// `tls_insecure` skips certificate verification. A denied read is remembered for
    /// `unauthorized_timeout`; at most `max_secrets_cached` reads are cached; `ttl_field`
    /// names a secret field holding how long to cache it.
    ///
    /// # Panics
    ///
    /// When the TLS backend cannot be set up, which does not happen with the bundled
    /// rustls; [`VaultSecretStore::builder`] reports it as an error instead.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ss = streambed_vault::VaultSecretStore::new(
    ///     "http://127.0.0.1:8200".parse().unwrap(),
    ///     None,
    ///     false,
    ///     Duration::from_secs(60),
    ///     100,
    ///     Some("ttl"),
    /// );
    /// # let _ = ss;
    /// ```
    pub fn new(
        server: Url,
        server_cert: Option<Certificate>,
        tls_insecure: bool,
        unauthorized_timeout: Duration,
        max_secrets_cached: usize,
        ttl_field: Option<&str>,
    ) -> Self {
        Self::builder(server)
            .server_cert(server_cert)
            .tls_insecure(tls_insecure)
            .unauthorized_timeout(unauthorized_timeout)
            .max_secrets_cached(max_secrets_cached)
            .ttl_field(ttl_field)
            .build()
            .unwrap_or_else(|error| panic!("cannot set up the secret store client: {error}"))
    }

    /// A builder for a store of the server at `server`, with the defaults of
    /// [`VaultSecretStoreBuilder`].
    pub fn builder(server: Url) -> VaultSecretStoreBuilder {
        VaultSecretStoreBuilder {
            server,
            server_cert: None,
            tls_insecure: false,
            unauthorized_timeout: Duration::from_secs(60),
            max_secrets_cached: 10_000,
            ttl_field: None,
            request_timeout: Some(Duration::from_secs(30)),
            connect_timeout: Some(Duration::from_secs(10)),
            max_attempts: None,
        }
    }

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

    /// Whether a token is in use (from a login or [`SecretStore::token_auth`]); says
    /// nothing of whether the server still accepts it.
    pub fn is_authenticated(&self) -> bool {
        self.session.is_authenticated()
    }

    /// Logs in at `url` with `body` and adopts the token granted.
    async fn login<R: DeserializeOwned>(
        &self,
        url: Url,
        body: serde_json::Value,
        counted: Counted<'_>,
        identity: String,
        token_of: impl Fn(&R) -> &AuthToken,
    ) -> Result<R, VaultError> {
        let client = &self.config.calls.client;
        let reply = self
            .config
            .calls
            .send(&counted, || client.post(url.clone()).json(&body))
            .await?;
        // Vault answers bad credentials with 400, a denied role with 403.
        if reply.is_denied() || reply.status == reqwest::StatusCode::BAD_REQUEST {
            counted.count(UNAUTHORIZED);
            debug!(
                "Secret store refused login of {}: {}",
                counted.value,
                reply.message()
            );
            return Err(VaultError::Unauthorized);
        }
        if !reply.status.is_success() {
            return Err(reply.failure(&counted));
        }
        let login: R = serde_json::from_slice(&reply.body)
            .map_err(|e| VaultError::InvalidReply(format!("login answer: {e}")))?;
        self.session.adopt(&token_of(&login).client_token, identity);
        Ok(login)
    }

    /// [`SecretStore::approle_auth`] with the reason of a failure.
    pub async fn try_approle_auth(
        &self,
        role_id: &str,
        secret_id: &str,
    ) -> Result<AppRoleAuthReply, VaultError> {
        let url =
            self.config
                .calls
                .url(&["v1", "auth", "approle"], "login path", "login", false)?;
        let counted = Counted {
            requests: "ss_approle_auth_requests",
            label: "approle_auth",
            value: role_id,
        };
        self.login(
            url,
            json!({ "role_id": role_id, "secret_id": secret_id }),
            counted,
            format!("approle:{role_id}"),
            |reply: &AppRoleAuthReply| &reply.auth,
        )
        .await
    }

    /// [`SecretStore::userpass_auth`] with the reason of a failure.
    pub async fn try_userpass_auth(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserPassAuthReply, VaultError> {
        let url = self.config.calls.url(
            &["v1", "auth", "userpass", "login"],
            "user name",
            username,
            false,
        )?;
        let counted = Counted {
            requests: "ss_userpass_auth_requests",
            label: "userpass_auth",
            value: username,
        };
        self.login(
            url,
            json!({ "password": password }),
            counted,
            format!("userpass:{username}"),
            |reply: &UserPassAuthReply| &reply.auth,
        )
        .await
    }

    /// [`SecretStore::token_auth`] with the reason of a failure.
    pub async fn try_token_auth(&self, token: &str) -> Result<(), VaultError> {
        let url = self.config.calls.url(
            &["v1", "auth", "token"],
            "lookup path",
            "lookup-self",
            false,
        )?;
        let counted = Counted {
            requests: "ss_token_auth_requests",
            label: "token_auth",
            value: "lookup-self",
        };
        let client = &self.config.calls.client;
        let reply = self
            .config
            .calls
            .send(&counted, || {
                client.get(url.clone()).header(TOKEN_HEADER, token)
            })
            .await?;
        if reply.is_denied() {
            counted.count(UNAUTHORIZED);
            return Err(VaultError::Unauthorized);
        }
        if !reply.status.is_success() {
            return Err(reply.failure(&counted));
        }
        serde_json::from_slice::<TokenLookup>(&reply.body)
            .map_err(|e| VaultError::InvalidReply(format!("token lookup answer: {e}")))?;
        self.session.adopt(token, format!("token:{token}"));
        Ok(())
    }

    /// [`SecretStore::get_secret`] with the reason of a failure: `Ok(None)` only when the
    /// secret is absent.
    pub async fn try_get_secret(
        &self,
        secret_path: &str,
    ) -> Result<Option<GetSecretReply>, VaultError> {
        let url =
            self.config
                .calls
                .url(&["v1", "secret", "data"], "secret path", secret_path, true)?;
        let config = &self.config;
        let session = &self.session;
        // One retry: a load can be abandoned once by a runtime shutting down or a restart
        // racing it; a load that is abandoned again (it panics, or no runtime can run it)
        // would be abandoned forever, so that is reported instead of retried.
        for _ in 0..2 {
            let load = || {
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
                return read;
            }
        }
        Err(VaultError::Unavailable(format!(
            "the read of {secret_path} was abandoned before it finished"
        )))
    }

    /// [`SecretStore::create_secret`] with the reason of a failure.
    pub async fn try_create_secret(
        &self,
        secret_path: &str,
        secret_data: SecretData,
    ) -> Result<(), VaultError> {
        let url =
            self.config
                .calls
                .url(&["v1", "secret", "data"], "secret path", secret_path, true)?;
        let counted = Counted {
            requests: "ss_create_secret_requests",
            label: "secret_path",
            value: secret_path,
        };
        let body = json!({ "data": secret_data.data });
        let client = &self.config.calls.client;
        // Whatever happens, even if this future is dropped while the request is under way
        // (the server may have applied it), what was cached for this path may be stale.
        let _invalidate = InvalidateOnDrop {
            cache: &self.session.cache,
            key: secret_path,
        };
        let reply = self
            .config
            .calls
            .send(&counted, || {
                self.session
                    .with_token(client.post(url.clone()).json(&body))
            })
            .await;
        let reply = reply?;
        if reply.is_denied() {
            counted.count(UNAUTHORIZED);
            return Err(VaultError::Unauthorized);
        }
        if !reply.status.is_success() {
            return Err(reply.failure(&counted));
        }
        Ok(())
    }

    /// [`SecretStore::userpass_create_update_user`] with the reason of a failure.
    ///
    /// When `username` differs from `current_username`, the user is renamed: a user
    /// `username` is created with the settings (policies, token limits) of
    /// `current_username` and the new password, then `current_username` is deleted. The
    /// two steps are not atomic: if the second fails, both users exist and the call fails.
    pub async fn try_userpass_create_update_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), VaultError> {
        let users = ["v1", "auth", "userpass", "users"];
        let target = self
            .config
            .calls
            .url(&users, "user name", username, false)?;
        let counted = Counted {
            requests: "ss_userpass_create_updates",
            label: "userpass_create_update",
            value: username,
        };
        let client = &self.config.calls.client;
        let mut settings = serde_json::Map::new();
        let current = if current_username != username {
            let current = self
                .config
                .calls
                .url(&users, "user name", current_username, false)?;
            let reply = self
                .config
                .calls
                .send(&counted, || {
                    self.session.with_token(client.get(current.clone()))
                })
                .await?;
            match reply.status {
                status if status.is_success() => {
                    settings = user_settings(&reply)?;
                    Some(current)
                }
                // No such user: create the new one.
                reqwest::StatusCode::NOT_FOUND => None,
                _ if reply.is_denied() => {
                    counted.count(UNAUTHORIZED);
                    return Err(VaultError::Unauthorized);
                }
                _ => return Err(reply.failure(&counted)),
            }
        } else {
            None
        };
        settings.insert("password".to_string(), password.into());
        let body = serde_json::Value::Object(settings);
        let reply = self
            .config
            .calls
            .send(&counted, || {
                self.session
                    .with_token(client.post(target.clone()).json(&body))
            })
            .await?;
        if reply.is_denied() {
            counted.count(UNAUTHORIZED);
            return Err(VaultError::Unauthorized);
        }
        if !reply.status.is_success() {
            return Err(reply.failure(&counted));
        }
        if let Some(current) = current {
            let reply = self
                .config
                .calls
                .send(&counted, || {
                    self.session.with_token(client.delete(current.clone()))
                })
                .await?;
            if reply.is_denied() {
                counted.count(UNAUTHORIZED);
                return Err(VaultError::Unauthorized);
            }
            if !reply.status.is_success() {
                return Err(reply.failure(&counted));
            }
        }
        Ok(())
    }
}

/// The settings of a user as read, in the form that creates one like it: the current
/// `token_*` fields, without the deprecated aliases a write would reject alongside them.
fn user_settings(reply: &Reply) -> Result<serde_json::Map<String, serde_json::Value>, VaultError> {
    #[derive(serde::Deserialize)]
    struct User {
        data: serde_json::Map<String, serde_json::Value>,
    }
    let user: User = serde_json::from_slice(&reply.body)
        .map_err(|e| VaultError::InvalidReply(format!("user answer: {e}")))?;
    Ok(user
        .data
        .into_iter()
        .filter(|(field, _)| field.starts_with("token_"))
        .collect())
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
    if reply.is_denied() {
        counted.count(UNAUTHORIZED);
        return (Err(VaultError::Unauthorized), remember);
    }
    if reply.status == reqwest::StatusCode::NOT_FOUND {
        return (Ok(None), remember);
    }
    if !reply.status.is_success() {
        return (Err(reply.failure(&counted)), remember);
    }
    match serde_json::from_slice::<GetSecretReply>(&reply.body) {
        Ok(secret) => {
            let ttl = secret_ttl(&secret, config.ttl_field.as_deref());
            (Ok(Some(secret)), ttl)
        }
        Err(error) => {
            counted.count(crate::call::OTHER_REPLY_FAILURES);
            debug!("Secret store answer for {secret_path} cannot be read: {error}");
            (
                Err(VaultError::InvalidReply(format!("secret answer: {error}"))),
                remember,
            )
        }
    }
}

#[async_trait]
impl SecretStore for VaultSecretStore {
    /// Logs in with an AppRole and uses the token granted from then on. Any failure is
    /// [`Error::Unauthorized`]; [`try_approle_auth`](Self::try_approle_auth) tells why.
    async fn approle_auth(
        &self,
        role_id: &str,
        secret_id: &str,
    ) -> Result<AppRoleAuthReply, Error> {
        self.try_approle_auth(role_id, secret_id)
            .await
            .map_err(|error| {
                debug!("AppRole login failed: {error}");
                error.into()
            })
    }

    /// Writes the secret (KV version 2, `v1/secret/data/<path>`).
    async fn create_secret(&self, secret_path: &str, secret_data: SecretData) -> Result<(), Error> {
        self.try_create_secret(secret_path, secret_data)
            .await
            .map_err(|error| {
                debug!("Cannot write secret {secret_path}: {error}");
                error.into()
            })
    }

    /// Reads the secret, from the cache when fresh. A denied read is
    /// [`Error::Unauthorized`]; an absent secret, an unreadable answer or a server given up
    /// on is `Ok(None)` ([`try_get_secret`](Self::try_get_secret) tells them apart).
    async fn get_secret(&self, secret_path: &str) -> Result<Option<GetSecretReply>, Error> {
        match self.try_get_secret(secret_path).await {
            Ok(secret) => Ok(secret),
            Err(VaultError::Unauthorized) => Err(Error::Unauthorized),
            Err(error) => {
                debug!("Cannot read secret {secret_path}: {error}");
                Ok(None)
            }
        }
    }

    /// Checks the token with the server (`v1/auth/token/lookup-self`) and uses it from
    /// then on.
    async fn token_auth(&self, token: &str) -> Result<(), Error> {
        self.try_token_auth(token).await.map_err(|error| {
            debug!("Token login failed: {error}");
            error.into()
        })
    }

    /// Logs in as a user and uses the token granted from then on.
    async fn userpass_auth(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserPassAuthReply, Error> {
        self.try_userpass_auth(username, password)
            .await
            .map_err(|error| {
                debug!("Login of user {username} failed: {error}");
                error.into()
            })
    }

    /// Creates a user or changes its password, or renames it; see
    /// [`try_userpass_create_update_user`](Self::try_userpass_create_update_user).
    async fn userpass_create_update_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), Error> {
        self.try_userpass_create_update_user(current_username, username, password)
            .await
            .map_err(|error| {
                debug!("Cannot create or update user {username}: {error}");
                error.into()
            })
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
