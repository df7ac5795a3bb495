#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod api;
pub mod audit;
mod client;
mod connection;
mod consumer_limits;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod memory;
mod ops;
mod peer_service;
pub mod policy;
pub mod principal;
pub mod provenance;
pub mod quota;
pub mod tls;
pub mod topic;
mod write_timeout;

use std::{future::Future, io, sync::Arc, time::Duration};

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use identity::Identities;
#[cfg(feature = "prometheus")]
pub use metrics_exporter_prometheus;
use ops::{Metrics, Render};
use policy::Policy;
use provenance::ProvenanceHeader;
use quota::{QuotaConfig, Quotas};
use streambed::commit_log::CommitLog;
use tls::Tls;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

/// How a server treats its clients.
///
/// ```
/// use std::time::Duration;
/// use streambed_server::ServerConfig;
///
/// let config = ServerConfig {
///     max_body_size: 64 * 1024,
///     ..ServerConfig::default()
/// };
/// assert_eq!(config.shutdown_grace_period, Duration::from_secs(5));
/// ```
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ServerConfig {
    /// The largest request body accepted; larger ones get 413. Default 1 MiB.
    pub max_body_size: usize,
    /// How long a client may take to send a request's headers before its connection is
    /// closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body before it gets 408. Default 30 s.
    pub body_read_timeout: Duration,
    /// On shutdown, how long requests in progress may take to finish before their
    /// connections are dropped. Default 5 s.
    pub shutdown_grace_period: Duration,
    /// A consumer stream gathers the records that are ready into chunks of about this many
    /// bytes, so that a burst costs one write rather than one per record. Default 16 KiB.
    pub consumer_chunk_size: usize,
    /// A consumer stream without records for this long gets a lone newline (which JSON
    /// readers skip), so that a client that vanished without closing its connection is
    /// noticed and its subscription freed; `None` sends none. Default 30 s.
    pub consumer_heartbeat: Option<Duration>,
    /// The most connections served at once (each open consumer stream holds one); more
    /// wait to be accepted. Bounds the memory clients can make the server use. Default 512.
    pub max_connections: usize,
    /// How long a write to a client may stay blocked (the client reading nothing) before
    /// its connection is closed. Frees what a consumer that stopped reading holds: its
    /// connection, its subscription and the records buffered for it. A client that reads,
    /// however slowly, is never cut off; zero means never. Default 30 s.
    pub write_timeout: Duration,
    /// The most subscriptions, and the most offsets, one consumer request may name; more
    /// (or a topic subscribed to twice) get 400 before the log sees the request. Default 64.
    pub max_subscriptions: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_size: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace_period: Duration::from_secs(5),
            consumer_chunk_size: 16 * 1024,
            consumer_heartbeat: Some(Duration::from_secs(30)),
            max_connections: 512,
            write_timeout: Duration::from_secs(30),
            max_subscriptions: 64,
        }
    }
}

/// The most a connection buffers of its response (and of its request's head, which is
/// therefore limited to it). hyper's default, about 400 KiB, is what every consumer that
/// stops reading would hold until the write timeout, on each of `max_connections`.
const CONNECTION_BUFFER_SIZE: usize = 64 * 1024;

/// Serves the Kafka HTTP API over `log` on `listener` until `shutdown` completes.
///
/// On shutdown the server stops accepting connections, ends every consumer stream (their
/// clients reconnect, to this server once it is back or to another), lets requests in
/// progress finish for up to [`ServerConfig::shutdown_grace_period`], then drops the
/// connections left. Dropping the returned future drops every connection at once.
///
/// The same as [`Server::new`] with `log` and `config`, then [`Server::serve`]; use
/// [`Server`] for the protections beyond [`ServerConfig`].
///
/// ```
/// use streambed_server::{memory::MemoryLog, serve, ServerConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let address = listener.local_addr()?;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(serve(MemoryLog::new(), listener, ServerConfig::default(), async {
///     let _ = stopped.await;
/// }));
/// // ... clients talk to `address` ...
/// # let _ = address;
/// stop.send(()).unwrap();
/// server.await.unwrap()?;
/// # Ok(())
/// # }
/// ```
pub async fn serve<CL, F>(
    log: CL,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: F,
) -> io::Result<()>
where
    CL: CommitLog + 'static,
    F: Future<Output = ()> + Send,
{
    Server::new(log, config).serve(listener, shutdown).await
}

/// A server of the Kafka HTTP API over a commit log, with everything it is configured with.
///
/// ```
/// use streambed_server::{memory::MemoryLog, Server, ServerConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let server = Server::new(MemoryLog::new(), ServerConfig::default());
/// // Shuts down at once: a real service passes a signal here.
/// server.serve(listener, async {}).await?;
/// # Ok(())
/// # }
/// ```
pub struct Server<CL> {
    log: CL,
    config: ServerConfig,
    identities: Option<Identities>,
    policy: Option<Policy>,
    quotas: QuotaConfig,
    provenance: Option<ProvenanceHeader>,
    metrics: Option<(Render, Metrics)>,
    tls: Option<Tls>,
}

impl<CL> Server<CL>
where
    CL: CommitLog + 'static,
{
    /// A server of `log`, treating its clients as `config` says, without quotas,
    /// provenance headers or metrics until the methods below add them.
    pub fn new(log: CL, config: ServerConfig) -> Self {
        Self {
            log,
            config,
            identities: None,
            policy: None,
            quotas: QuotaConfig::unlimited(),
            provenance: None,
            metrics: None,
            tls: None,
        }
    }

    /// Turns identities on: every request needs a principal, from a bearer token or a
    /// client certificate, or gets 401; what it may do is the [`with_policy`](Self::with_policy)'s
    /// to say (nothing, without one). Off by default: every client may do everything.
    ///
    /// ```
    /// use streambed_server::{identity::Identities, memory::MemoryLog, policy::Policy, Server, ServerConfig};
    ///
    /// let policy = Policy::from_json(r#"{"principals": {"gateway": {"produce": ["*"]}}}"#).unwrap();
    /// let server = Server::new(MemoryLog::new(), ServerConfig::default())
    ///     .with_identities(Identities::certificates_only())
    ///     .with_policy(policy);
    /// # let _ = server;
    /// ```
    pub fn with_identities(mut self, identities: Identities) -> Self {
        self.identities = Some(identities);
        self
    }

    /// What each principal may do; see [`policy`](mod@crate::policy) for the file. Turns
    /// identities on, from client certificates only unless [`with_identities`](Self::with_identities)
    /// says otherwise.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Enforces `quotas` (see [`QuotaConfig`]; its default suits a router).
    ///
    /// ```
    /// use streambed_server::{memory::MemoryLog, quota::QuotaConfig, Server, ServerConfig};
    ///
    /// let server = Server::new(MemoryLog::new(), ServerConfig::default())
    ///     .with_quotas(QuotaConfig::default());
    /// # drop(server);
    /// ```
    pub fn with_quotas(mut self, quotas: QuotaConfig) -> Self {
        self.quotas = quotas;
        self
    }

    /// Stamps every produced record with `header`, naming the request's principal (or,
    /// without identities, its client's IP address); a request whose records carry a
    /// header of that name already gets 400. See [`provenance`].
    ///
    /// ```
    /// use streambed_server::{
    ///     memory::MemoryLog, provenance::ProvenanceHeader, Server, ServerConfig,
    /// };
    ///
    /// let header = ProvenanceHeader::new("streambed-principal").unwrap();
    /// let server = Server::new(MemoryLog::new(), ServerConfig::default())
    ///     .with_provenance_header(header);
    /// # drop(server);
    /// ```
    pub fn with_provenance_header(mut self, header: ProvenanceHeader) -> Self {
        self.provenance = Some(header);
        self
    }

    /// Measures requests, records, consumer streams and refusals through the `metrics`
    /// facade, and serves `GET /metrics` by rendering `handle`.
    ///
    /// The measurements are registered with the recorder in effect when this is called:
    /// the global one a program installs (for example with
    /// `PrometheusBuilder::install_recorder`, which returns `handle`), or a local one
    /// (`metrics::with_local_recorder`), which lets tests in one process keep apart.
    /// Without this method the server measures nothing and `/metrics` answers 404.
    ///
    /// Needs the `prometheus` feature (on by default).
    ///
    /// ```
    /// use streambed_server::{
    ///     memory::MemoryLog, metrics_exporter_prometheus::PrometheusBuilder, Server,
    ///     ServerConfig,
    /// };
    ///
    /// let recorder = PrometheusBuilder::new().build_recorder();
    /// let server = metrics::with_local_recorder(&recorder, || {
    ///     Server::new(MemoryLog::new(), ServerConfig::default()).with_metrics(recorder.handle())
    /// });
    /// assert!(recorder.handle().render().contains("streambed_http_requests_total"));
    /// # drop(server);
    /// ```
    #[cfg(feature = "prometheus")]
    pub fn with_metrics(mut self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        let render: Render = std::sync::Arc::new(move || handle.render());
        self.metrics = Some((render, Metrics::register()));
        self
    }

    /// Serves HTTPS rather than plain HTTP, with `tls` (see [`tls`] for mutual TLS and
    /// reloading). The handshake must complete within
    /// [`ServerConfig::header_read_timeout`]; a verified client certificate's subject
    /// becomes the [`Peer::certificate_principal`](principal::Peer) of its connection's
    /// requests.
    ///
    /// ```
    /// use streambed_server::{memory::MemoryLog, tls::{Tls, TlsFiles}, Server, ServerConfig};
    /// # use streambed_test::pki::TestCa;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    /// # let ca = TestCa::new("ca");
    /// # ca.server("localhost").write(&cert, &key)?;
    /// // `cert` and `key`: PEM files of the server's certificate chain and its key.
    /// let tls = Tls::load(TlsFiles::new(&cert, &key))?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let port = listener.local_addr()?.port();
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(
    ///     Server::new(MemoryLog::new(), ServerConfig::default())
    ///         .with_tls(tls)
    ///         .serve(listener, async { let _ = stopped.await; }),
    /// );
    /// let client = reqwest::Client::builder()
    ///     .add_root_certificate(reqwest::Certificate::from_pem(ca.certificate_pem().as_bytes())?)
    ///     .build()?;
    /// let url = format!("https://localhost:{port}/topics/t/partitions/0/offsets");
    /// assert_eq!(client.get(url).send().await?.status(), 404);
    /// let _ = stop.send(());
    /// server.await??;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Serves on `listener` until `shutdown` completes; see [`serve`] for how it stops.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send,
    {
        let Self {
            log,
            config,
            identities,
            policy,
            quotas,
            provenance,
            metrics,
            tls,
        } = self;
        // Identities and policy come together: either one on means both, deny by default.
        let access = match (identities, policy) {
            (None, None) => None,
            (identities, policy) => Some((
                identities.unwrap_or_else(Identities::certificates_only),
                Arc::new(policy.unwrap_or_else(Policy::deny_all)),
            )),
        };
        let (stop, stopping) = watch::channel(false);
        let (render, measured) = match metrics {
            Some((render, metrics)) => (Some(render), Some(metrics)),
            None => (None, None),
        };
        let policy = access.as_ref().map(|(_, policy)| Arc::clone(policy));
        let identities = access.map(|(identities, _)| identities);
        let guards = Arc::new(api::Guards {
            quotas: Quotas::new(quotas),
            provenance,
            metrics: measured.clone().unwrap_or_else(Metrics::noop),
            policy,
        });
        let mut router = api::router(log, &config, Arc::clone(&guards), stopping.clone());
        if let Some(identities) = identities {
            // Requests without a valid identity are counted, audited and rate limited there.
            router = identity::layer::authenticated(router, identities, guards);
        }
        // Probes and scrapers need no identity: these routes tell nothing about the data.
        let router = router.merge(ops::routes(render));
        // Only a server with metrics pays for counting every request.
        let router = match measured {
            Some(metrics) => ops::instrument(router, metrics),
            None => router,
        };
        let mut connections = JoinSet::new();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .max_buf_size(CONNECTION_BUFFER_SIZE)
            .header_read_timeout(config.header_read_timeout)
            .keep_alive(true);
        let settings = Arc::new(connection::Settings {
            http,
            tls,
            write_timeout: config.write_timeout,
            handshake_timeout: config.header_read_timeout,
        });
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                // At the limit, connections wait in the listen backlog until one ends.
                accepted = listener.accept(), if connections.len() < config.max_connections => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        connections.spawn(connection::serve(
                            Arc::clone(&settings),
                            stream,
                            peer,
                            router.clone(),
                            stopping.clone(),
                        ));
                    }
                    Err(error) => {
                        // Typically out of file descriptors: pause rather than spin, and let
                        // finishing connections free some.
                        log::warn!("accepting a connection failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        log::info!("shutting down: {} connection(s) open", connections.len());
        let _ = stop.send(true);
        let drained = tokio::time::timeout(config.shutdown_grace_period, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            log::warn!(
                "{} connection(s) still busy after {:?}; dropping them",
                connections.len(),
                config.shutdown_grace_period
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

/// Completes once `stopping` turns `true` (or its sender is gone, which also means stop).
pub(crate) async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // The guard `wait_for` answers is not `Send`; drop it before the caller awaits more.
    let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
}
