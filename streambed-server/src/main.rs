//! `streambed-server`: serves the Kafka HTTP API over a commit log in a directory.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, ValueEnum};
use streambed::commit_log::CommitLog;
use streambed_server::{
    memory::MemoryLog,
    tls::{ClientCertificates, Tls, TlsFiles},
    Server, ServerConfig,
};
use tokio::net::TcpListener;

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

    /// The least severe messages logged to stderr: error, warn, info, debug or trace
    #[arg(long, env = "STREAMBED_LOG_LEVEL", default_value = "info", value_parser = parse_level)]
    log_level: log::LevelFilter,
}

fn parse_level(text: &str) -> Result<log::LevelFilter, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not one of off, error, warn, info, debug, trace"))
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
    if log::set_logger(&StderrLogger).is_err() {
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
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let tls = tls(&args)?;
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
            listen(log, args.listen, config, tls).await
        }
        #[cfg(not(feature = "file"))]
        Backend::File => Err("this build has no file backend (feature `file`)".to_owned()),
        Backend::Memory => {
            log::warn!("serving an in-memory log: records are lost when the server stops");
            listen(MemoryLog::new(), args.listen, config, tls).await
        }
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
    log: CL,
    address: SocketAddr,
    config: ServerConfig,
    tls: Option<Tls>,
) -> Result<(), String> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let bound = listener.local_addr().unwrap_or(address);
    let mut server = Server::new(log, config);
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
            server = server.tls(tls);
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

/// Writes log messages to stderr, one a line; service managers add timestamps.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "{:<5} {}: {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}
