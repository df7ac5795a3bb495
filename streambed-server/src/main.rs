//! `streambed-server`: serves the Kafka HTTP API over a commit log in a directory.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{ArgAction, Parser, ValueEnum};
use streambed::commit_log::CommitLog;
use streambed_server::{
    identity::Identities,
    memory::MemoryLog,
    policy::Policy,
    provenance::ProvenanceHeader,
    quota::{QuotaConfig, RateLimit},
    tls::{ClientCertificates, Tls, TlsFiles},
    Server, ServerConfig,
};
use tokio::net::TcpListener;

mod stderr_log;

use stderr_log::StderrLogger;

/// Serves a streambed commit log over the Kafka HTTP API: GET
/// /topics/<topic>/partitions/<partition>/offsets, POST /topics/<topic> and POST
/// /consumers/<group>.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The directory of the commit log's topic files (the `file` backend)
    #[arg(long, env = "STREAMBED_ROOT_PATH", default_value = "/var/lib/logged")]
    root_path: PathBuf,

    /// Where the log lives: `file` (in --root-path, durable) or `memory` (lost on exit)
    #[arg(long, env = "STREAMBED_BACKEND", value_enum, default_value_t = Backend::File)]
    backend: Backend,

    /// With the file backend, answer a produce request only once its records are on disk
    /// (fdatasync, shared by concurrent requests) rather than in the OS page cache
    #[arg(long, env = "STREAMBED_FSYNC")]
    fsync: bool,

    /// The address and port to listen on (port 0: any free port, logged at start)
    #[arg(long, env = "STREAMBED_LISTEN", default_value = "127.0.0.1:8082")]
    listen: SocketAddr,

    /// The largest request body accepted, in bytes; larger ones get 413
    #[arg(long, env = "STREAMBED_MAX_BODY_SIZE", default_value_t = 1024 * 1024)]
    max_body_size: usize,

    /// How long a client may take to send a request's headers
    #[arg(long, env = "STREAMBED_HEADER_READ_TIMEOUT", default_value = "10s")]
    header_read_timeout: humantime::Duration,

    /// How long a client may take to send a request's body before it gets 408
    #[arg(long, env = "STREAMBED_BODY_READ_TIMEOUT", default_value = "30s")]
    body_read_timeout: humantime::Duration,

    /// On SIGTERM or Ctrl-C, how long requests in progress may take to finish
    #[arg(long, env = "STREAMBED_SHUTDOWN_GRACE_PERIOD", default_value = "5s")]
    shutdown_grace_period: humantime::Duration,

    /// Send a newline to a consumer stream idle for this long, so that vanished clients
    /// are noticed; 0s sends none
    #[arg(long, env = "STREAMBED_CONSUMER_HEARTBEAT", default_value = "30s")]
    consumer_heartbeat: humantime::Duration,

    /// The most connections served at once (each consumer stream holds one); more wait
    #[arg(long, env = "STREAMBED_MAX_CONNECTIONS", default_value_t = 512)]
    max_connections: usize,

    /// Close a connection whose client has read nothing of its response for this long
    /// (a consumer that stopped reading), freeing its subscription and buffers; 0s: never
    #[arg(long, env = "STREAMBED_WRITE_TIMEOUT", default_value = "30s")]
    write_timeout: humantime::Duration,

    /// The most subscriptions, and the most offsets, one consumer request may name; more
    /// get 400
    #[arg(long, env = "STREAMBED_MAX_SUBSCRIPTIONS", default_value_t = 64)]
    max_subscriptions: usize,

    /// Consumer streams one principal (or, without identities, one IP address) may have
    /// open at once; more get 429; 0: no limit
    #[arg(long, env = "STREAMBED_MAX_STREAMS_PER_PRINCIPAL", default_value_t = 8)]
    max_streams_per_principal: usize,

    /// Topics one principal (or IP address) may create while the server runs; more get
    /// 403; 0: no limit
    #[arg(long, env = "STREAMBED_MAX_TOPICS_PER_PRINCIPAL", default_value_t = 64)]
    max_topics_per_principal: usize,

    /// Topics the server accepts producing to in all; creating more gets 403; 0: no limit
    #[arg(long, env = "STREAMBED_MAX_TOPICS", default_value_t = 512)]
    max_topics: usize,

    /// Requests per second one principal (or IP address) may make on average; more get
    /// 429 with Retry-After; 0: no limit
    #[arg(long, env = "STREAMBED_RATE_LIMIT", default_value_t = 200)]
    rate_limit: u32,

    /// Requests a principal (or IP address) that was idle may make at once
    #[arg(long, env = "STREAMBED_RATE_BURST", default_value_t = 400)]
    rate_burst: u32,

    /// The most principals or IP addresses given a rate of their own; the rest share one
    #[arg(long, env = "STREAMBED_RATE_LIMIT_CLIENTS", default_value_t = 4096)]
    rate_limit_clients: usize,

    /// Stamp every produced record with a header of this name holding the principal (or,
    /// without identities, the client's IP address); records already carrying it get 400
    #[arg(long, env = "STREAMBED_PROVENANCE_HEADER")]
    provenance_header: Option<String>,

    /// Log an audit line (target `audit`, level info) per produce request and per consumer
    /// stream opened
    #[arg(long, env = "STREAMBED_AUDIT", default_value_t = true, action = ArgAction::Set)]
    audit: bool,

    /// Serve GET /metrics in the Prometheus text format
    #[arg(long, env = "STREAMBED_METRICS", default_value_t = true, action = ArgAction::Set)]
    metrics: bool,

    /// Serve HTTPS with the certificate chain in this PEM file (server certificate first);
    /// needs --tls-key. Certificate, key and client CA are read again on SIGHUP
    #[arg(
        long,
        env = "STREAMBED_TLS_CERT",
        requires = "tls_key",
        value_name = "PEM_FILE"
    )]
    tls_cert: Option<PathBuf>,

    /// The PEM file of the private key of --tls-cert
    #[arg(
        long,
        env = "STREAMBED_TLS_KEY",
        requires = "tls_cert",
        value_name = "PEM_FILE"
    )]
    tls_key: Option<PathBuf>,

    /// Mutual TLS: ask clients for a certificate, which must chain to a CA in this PEM
    /// file; its subject's common name becomes the client's principal. A client may still
    /// show none (and identify itself with a token) unless --tls-require-client-cert
    #[arg(
        long,
        env = "STREAMBED_TLS_CLIENT_CA",
        requires = "tls_cert",
        value_name = "PEM_FILE"
    )]
    tls_client_ca: Option<PathBuf>,

    /// With --tls-client-ca, refuse at the handshake every client without a certificate
    #[arg(
        long,
        env = "STREAMBED_TLS_REQUIRE_CLIENT_CERT",
        requires = "tls_client_ca"
    )]
    tls_require_client_cert: bool,

    /// Threads serving requests; 0 means one per CPU
    #[arg(long, env = "STREAMBED_WORKER_THREADS", default_value_t = 0)]
    worker_threads: usize,

    /// A JSON file granting principals `produce`, `consume` and `create` on topics (see
    /// the README). Turns identities on: every request then needs a bearer token (checked
    /// through --token-store) or a verified client certificate (401 without), and may do
    /// only what the file grants (403 otherwise)
    #[arg(long, env = "STREAMBED_POLICY")]
    policy: Option<PathBuf>,

    /// Where bearer tokens are checked: `none` (client certificates only), `confidant`
    /// (tokens of a streambed-confidant store's userpass logins) or `vault` (tokens of a
    /// Vault or OpenBao server). Needs --policy
    #[arg(long, env = "STREAMBED_TOKEN_STORE", value_enum, default_value_t = TokenStore::None)]
    token_store: TokenStore,

    /// With --token-store confidant: the store's directory (mode 700)
    #[arg(
        long,
        env = "STREAMBED_CONFIDANT_ROOT_PATH",
        default_value = "/var/lib/confidant"
    )]
    confidant_root_path: PathBuf,

    /// With --token-store confidant: a file holding the store's root secret as 32 hex
    /// characters (the `root-secret` file of the `confidant` CLI's credentials directory)
    #[arg(long, env = "STREAMBED_CONFIDANT_ROOT_SECRET")]
    confidant_root_secret: Option<PathBuf>,

    /// With --token-store vault: the Vault or OpenBao server's address
    #[arg(
        long,
        env = "STREAMBED_VAULT_ADDRESS",
        default_value = "http://127.0.0.1:8200"
    )]
    vault_address: String,

    /// With --token-store vault: a PEM file of a CA certificate to trust for the server
    #[arg(long, env = "STREAMBED_VAULT_CA_FILE")]
    vault_ca_file: Option<PathBuf>,

    /// How long a verified token is trusted before its store is asked again (never past
    /// the token's expiry)
    #[arg(long, env = "STREAMBED_TOKEN_CACHE_TTL", default_value = "30s")]
    token_cache_ttl: humantime::Duration,

    /// Serve without identities on an address that is not loopback: anyone who reaches
    /// the port may read, write and create every topic. Refused without this flag
    #[arg(long, env = "STREAMBED_OPEN_DATA")]
    open_data: bool,

    /// The least severe messages logged to stderr: error, warn, info, debug or trace
    #[arg(long, env = "STREAMBED_LOG_LEVEL", default_value = "info", value_parser = parse_level)]
    log_level: log::LevelFilter,
}

fn parse_level(text: &str) -> Result<log::LevelFilter, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not one of off, error, warn, info, debug, trace"))
}

/// Where bearer tokens are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TokenStore {
    /// No tokens: principals from client certificates only
    None,
    /// A streambed-confidant store (its userpass tokens)
    Confidant,
    /// A Vault or OpenBao server (auth/token/lookup-self)
    Vault,
}

/// The commit log implementations the server can serve.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// Topic files in --root-path
    File,
    /// Records held in memory and lost on exit
    Memory,
}

fn main() -> ExitCode {
    let args = Args::parse();
    log::set_max_level(args.log_level);
    if log::set_logger(StderrLogger::install(args.audit)).is_err() {
        eprintln!("a logger is already installed");
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if args.worker_threads > 0 {
        runtime.worker_threads(args.worker_threads);
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            log::error!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            ExitCode::FAILURE
        }
    };
    // Audit lines still gathered in the logger.
    log::logger().flush();
    code
}

/// The identities and policy the flags ask for; `None` when identities are off, which only
/// a loopback address, or --open-data, allows.
fn access(args: &Args) -> Result<Option<(Identities, Policy)>, String> {
    let Some(path) = &args.policy else {
        if args.token_store != TokenStore::None {
            return Err("--token-store needs --policy: what would its tokens grant?".to_owned());
        }
        if !args.listen.ip().is_loopback() {
            if !args.open_data {
                return Err(format!(
                    "refusing to serve {} without identities: anyone reaching it could read, \
                     write and create every topic. Give --policy (and --token-store), or \
                     --open-data if the data is meant to be open",
                    args.listen
                ));
            }
            log::warn!(
                "!!! OPEN DATA: serving {} with no identities and no permissions (--open-data): \
                 ANYONE who reaches this port can read, write and create EVERY topic !!!",
                args.listen
            );
        }
        return Ok(None);
    };
    if args.open_data {
        log::info!("--open-data has no effect: identities are on (--policy)");
    }
    let policy = Policy::load(path).map_err(|error| error.to_string())?;
    let identities = match args.token_store {
        TokenStore::None => Identities::certificates_only(),
        #[cfg(feature = "confidant")]
        TokenStore::Confidant => {
            let secret_file = args.confidant_root_secret.as_ref().ok_or(
                "--token-store confidant needs --confidant-root-secret (a file of 32 hex characters)",
            )?;
            let unreadable = |error: std::io::Error| {
                format!(
                    "cannot read the root secret in {}: {error}",
                    secret_file.display()
                )
            };
            let file = std::fs::File::open(secret_file).map_err(unreadable)?;
            let line = streambed::read_line(file).map_err(unreadable)?;
            let root_secret = streambed::seal::Key::from_hex(line.trim()).map_err(|error| {
                format!(
                    "{} must hold 32 hex characters: {error}",
                    secret_file.display()
                )
            })?;
            let store = streambed_confidant::FileSecretStore::new(
                args.confidant_root_path.clone(),
                root_secret.as_bytes(),
                std::time::Duration::from_secs(60),
                1,
                None,
            );
            Identities::tokens(store)
        }
        #[cfg(feature = "vault")]
        TokenStore::Vault => {
            let address = args
                .vault_address
                .parse()
                .map_err(|error| format!("--vault-address {:?}: {error}", args.vault_address))?;
            let certificate = match &args.vault_ca_file {
                Some(path) => {
                    let pem = std::fs::read(path)
                        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
                    let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                        format!("{} is not a PEM certificate: {error}", path.display())
                    })?;
                    Some(certificate)
                }
                None => None,
            };
            let store = streambed_vault::VaultSecretStore::builder(address)
                .server_cert(certificate)
                .request_timeout(Some(std::time::Duration::from_secs(5)))
                .max_attempts(Some(2))
                .build()
                .map_err(|error| format!("cannot set up the Vault client: {error}"))?;
            Identities::tokens(store)
        }
        #[allow(unreachable_patterns)]
        other => return Err(format!("this build cannot check tokens with {other:?}")),
    };
    log::info!(
        "identities on: tokens checked with {:?}, permissions from {}",
        args.token_store,
        path.display()
    );
    Ok(Some((identities.cache_ttl(*args.token_cache_ttl), policy)))
}

async fn run(args: Args) -> Result<(), String> {
    let access = access(&args)?;
    let tls = tls(&args)?;
    if tls.is_none() && args.token_store != TokenStore::None && !args.listen.ip().is_loopback() {
        log::warn!(
            "bearer tokens will cross the network in clear: {} speaks plain HTTP; give \
             --tls-cert and --tls-key",
            args.listen
        );
    }
    let config = ServerConfig {
        max_body_size: args.max_body_size,
        header_read_timeout: *args.header_read_timeout,
        body_read_timeout: *args.body_read_timeout,
        shutdown_grace_period: *args.shutdown_grace_period,
        consumer_heartbeat: Some(*args.consumer_heartbeat).filter(|d| !d.is_zero()),
        max_connections: args.max_connections.max(1),
        write_timeout: *args.write_timeout,
        max_subscriptions: args.max_subscriptions,
        ..ServerConfig::default()
    };
    let guards = Guards::from_args(&args)?;
    match args.backend {
        #[cfg(feature = "file")]
        Backend::File => {
            std::fs::create_dir_all(&args.root_path)
                .map_err(|error| format!("cannot create {}: {error}", args.root_path.display()))?;
            let durability = if args.fsync {
                streambed_logged::Durability::Fsync
            } else {
                streambed_logged::Durability::Buffered
            };
            let log =
                streambed_logged::FileLog::new(args.root_path.clone()).with_durability(durability);
            log::info!("serving the topics of {}", args.root_path.display());
            listen(
                guards.apply(Server::new(log, config)),
                access,
                args.listen,
                tls,
            )
            .await
        }
        #[cfg(not(feature = "file"))]
        Backend::File => Err("this build has no file backend (feature `file`)".to_owned()),
        Backend::Memory => {
            log::warn!("serving an in-memory log: records are lost when the server stops");
            listen(
                guards.apply(Server::new(MemoryLog::new(), config)),
                access,
                args.listen,
                tls,
            )
            .await
        }
    }
}

/// What the server is built with beyond its `ServerConfig`: quotas, provenance, metrics.
struct Guards {
    quotas: QuotaConfig,
    provenance: Option<ProvenanceHeader>,
    #[cfg(feature = "prometheus")]
    metrics: Option<streambed_server::metrics_exporter_prometheus::PrometheusHandle>,
}

impl Guards {
    fn from_args(args: &Args) -> Result<Self, String> {
        let limit = |n: usize| Some(n).filter(|n| *n > 0);
        let quotas = QuotaConfig {
            max_streams_per_principal: limit(args.max_streams_per_principal),
            max_topics_per_principal: limit(args.max_topics_per_principal),
            max_topics: limit(args.max_topics),
            rate_limit: (args.rate_limit > 0).then(|| RateLimit {
                per_second: args.rate_limit,
                burst: args.rate_burst.max(1),
                max_tracked: args.rate_limit_clients.max(1),
            }),
        };
        let provenance = match &args.provenance_header {
            Some(name) => Some(ProvenanceHeader::new(name.as_str()).map_err(|e| e.to_string())?),
            None => None,
        };
        // One recorder for the process; the server registers its measurements with it.
        #[cfg(feature = "prometheus")]
        let metrics = match args.metrics {
            true => Some(
                streambed_server::metrics_exporter_prometheus::PrometheusBuilder::new()
                    .install_recorder()
                    .map_err(|error| format!("cannot install the metrics recorder: {error}"))?,
            ),
            false => None,
        };
        #[cfg(not(feature = "prometheus"))]
        if args.metrics {
            log::warn!("this build has no metrics (feature `prometheus`): /metrics answers 404");
        }
        Ok(Self {
            quotas,
            provenance,
            #[cfg(feature = "prometheus")]
            metrics,
        })
    }

    fn apply<CL: CommitLog + 'static>(self, mut server: Server<CL>) -> Server<CL> {
        server = server.with_quotas(self.quotas);
        if let Some(header) = self.provenance {
            server = server.with_provenance_header(header);
        }
        #[cfg(feature = "prometheus")]
        if let Some(handle) = self.metrics {
            server = server.with_metrics(handle);
        }
        server
    }
}

/// The TLS configuration the flags name, read and checked before the server listens.
fn tls(args: &Args) -> Result<Option<Tls>, String> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let mut files = TlsFiles::new(cert, key);
    if let Some(client_ca) = &args.tls_client_ca {
        let client_certificates = if args.tls_require_client_cert {
            ClientCertificates::Required
        } else {
            ClientCertificates::Optional
        };
        files = files.client_ca(client_ca, client_certificates);
    }
    Tls::load(files)
        .map(Some)
        .map_err(|error| error.to_string())
}

async fn listen<CL: CommitLog + 'static>(
    mut server: Server<CL>,
    access: Option<(Identities, Policy)>,
    address: SocketAddr,
    tls: Option<Tls>,
) -> Result<(), String> {
    if let Some((identities, policy)) = access {
        server = server.with_identities(identities).with_policy(policy);
    }
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let bound = listener.local_addr().unwrap_or(address);
    match tls {
        None => log::info!("listening on {bound}"),
        Some(tls) => {
            let clients = match &tls.files().client_ca {
                None => "no client certificates".to_owned(),
                Some(ca) => format!(
                    "client certificates {} from the CA in {}",
                    match tls.files().client_certificates {
                        ClientCertificates::Optional => "verified when shown",
                        ClientCertificates::Required => "required",
                    },
                    ca.display()
                ),
            };
            log::info!("listening on {bound} (https, {clients})");
            reload_on_hangup(tls.clone());
            server = server.with_tls(tls);
        }
    }
    server
        .serve(listener, shutdown_signal())
        .await
        .map_err(|error| format!("serving failed: {error}"))?;
    log::info!("stopped");
    Ok(())
}

/// Reloads the TLS files on every SIGHUP, keeping the configuration in use when the new
/// files are unusable.
fn reload_on_hangup(tls: Tls) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                log::error!("cannot listen for SIGHUP, TLS files will not be reloaded: {error}");
                return;
            }
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => log::info!("SIGHUP: TLS files reloaded; new connections use them"),
                    Err(error) => log::error!(
                        "SIGHUP: TLS files not reloaded, the previous ones stay in use: {error}"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    drop(tls);
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what service managers send).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            log::error!("cannot listen for Ctrl-C: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                log::error!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => log::info!("interrupted"),
        _ = terminate => log::info!("terminated"),
    }
}
