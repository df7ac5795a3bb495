//! Setting up a store: the defaults of [`VaultSecretStore::new`] and the further options
//! of [`VaultSecretStoreBuilder`].
//!
//! Apart from the calls because it is the only place the HTTP client and its TLS settings
//! are made; every store derived from a built one shares that client.

use std::{sync::Arc, time::Duration};

use reqwest::{Certificate, Url};

use crate::{
    call::Calls,
    session::{Config, Session},
    VaultError, VaultSecretStore,
};

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
            ..Default::default()
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
}
