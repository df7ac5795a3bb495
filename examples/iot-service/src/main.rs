//! An IoT service: devices send temperature readings over UDP; the service appends them to
//! a commit log topic keyed by device, keeps the latest readings of each device in memory
//! (rebuilt from the log at start-up) and answers `GET /api/database/events?id=N` over HTTP.
//!
//! Run with no flags, it keeps its log in a temporary directory removed at exit; pass
//! `--cl-root-path` to keep it.

mod database;
// Compiled (and tested) in every build; the allocator is installed only for `heap-stats`.
#[cfg_attr(not(feature = "heap-stats"), allow(dead_code))]
mod heap;
mod http_server;
mod logger;
mod udp_server;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{parser::ValueSource, CommandFactory, FromArgMatches, Parser};
use log::{error, info, LevelFilter};
use streambed_logged::{args::CommitLogArgs, FileLog};
use tokio::{
    net::{TcpListener, UdpSocket},
    sync::mpsc,
};

/// Receives temperature readings over UDP, keeps them in a commit log, and serves the latest
/// readings of each device over HTTP.
#[derive(Parser, Debug)]
#[command(name = "iot-service", version, about)]
struct Args {
    #[command(flatten)]
    cl_args: CommitLogArgs,

    /// The address to serve HTTP on.
    #[arg(env, long, default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,

    /// The address to receive readings on: UDP datagrams holding the postcard encoding of
    /// `(device id: u64, temperature: u32)`.
    #[arg(env, long, default_value = "127.0.0.1:8081")]
    udp_addr: SocketAddr,
}

/// Counts the heap, for `GET /api/heap`.
#[cfg(feature = "heap-stats")]
#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

/// Commands queued for the database task before senders wait.
const DATABASE_QUEUE_SIZE: usize = 64;

fn main() -> ExitCode {
    one_heap_arena();
    logger::init(LevelFilter::Info);
    let matches = Args::command().get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    // A service on a small device runs on one core: one thread serves everything.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            error!("Cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let root_given = matches.value_source("cl_root_path") != Some(ValueSource::DefaultValue);
    match runtime.block_on(run(args, root_given)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// glibc's allocator gives each thread that allocates an arena of its own (here the
/// runtime's blocking thread, which the log's file work runs on): about a third of a MiB
/// more resident memory for a service that never allocates from two threads at once. One
/// arena keeps it to what the service holds. musl's allocator has no per-thread arenas.
fn one_heap_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in `main`, before any other thread exists; mallopt only
    // sets a tuning parameter of the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

async fn run(args: Args, root_given: bool) -> Result<(), String> {
    // Without an explicit root the log lives in a temporary directory, deleted on exit.
    let (root, _temporary): (PathBuf, _) = if root_given {
        (args.cl_args.cl_root_path.clone(), None)
    } else {
        let dir = tempfile::Builder::new()
            .prefix("iot-service-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        (dir.path().to_path_buf(), Some(dir))
    };
    std::fs::create_dir_all(&root).map_err(|e| {
        format!(
            "cannot create the commit log directory {}: {e}",
            root.display()
        )
    })?;
    println!("Commit log in {}", root.display());
    let log = FileLog::new(root);

    let (database_sender, database_receiver) = mpsc::channel(DATABASE_QUEUE_SIZE);
    let database = tokio::spawn(database::task(log, database_receiver));

    let listener = TcpListener::bind(args.http_addr)
        .await
        .map_err(|e| format!("cannot listen for HTTP on {}: {e}", args.http_addr))?;
    let http_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let socket = UdpSocket::bind(args.udp_addr)
        .await
        .map_err(|e| format!("cannot listen for UDP on {}: {e}", args.udp_addr))?;
    let udp_addr = socket.local_addr().map_err(|e| e.to_string())?;

    let udp = tokio::spawn(udp_server::task(socket, database_sender.clone()));
    let app = http_server::routes(database_sender);
    println!("HTTP listening on http://{http_addr}");
    println!("UDP listening on {udp_addr}");
    info!("IoT service ready");

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("the HTTP server failed: {e}"))?;
    info!("Shutting down");
    // Dropping the UDP task drops the last sender, which ends the database task once it
    // has finished the commands already queued.
    udp.abort();
    let _ = udp.await;
    let _ = database.await;
    Ok(())
}

/// Resolves on ctrl-c or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
