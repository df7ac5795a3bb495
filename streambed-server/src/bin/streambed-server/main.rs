//! `streambed-server`: serves the Kafka HTTP API over a commit log in a directory.

use std::{net::SocketAddr, process::ExitCode};

use clap::Parser;
use streambed::commit_log::CommitLog;
use streambed_server::{
    identity::Identities,
    memory::MemoryLog,
    policy::Policy,
    tls::{ClientCertificates, Tls},
    Server, ServerConfig,
};
use tokio::net::TcpListener;

mod args;
mod protections;
mod stderr_log;

use args::{Args, Backend, TokenStore};
use protections::{access, tls, Guards};
use stderr_log::StderrLogger;

/// See the `mimalloc` feature in Cargo.toml: requests allocate and free on any worker.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        #[cfg(feature = "kafka")]
        Backend::Kafka(url) => {
            let settings = args
                .kafka
                .settings(&url, "streambed-server")
                .map_err(|error| error.to_string())?;
            log::info!("serving the topics of the Kafka cluster at {url}");
            listen(
                guards.apply(Server::new(
                    streambed_kafka_native::KafkaNativeCommitLog::with_settings(settings),
                    config,
                )),
                access,
                args.listen,
                tls,
            )
            .await
        }
        #[cfg(not(feature = "kafka"))]
        Backend::Kafka(_) => Err("this build has no kafka backend (feature `kafka`)".to_owned()),
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
