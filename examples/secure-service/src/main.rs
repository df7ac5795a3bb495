//! `secure-service`: starts the service (loading its snapshot and replaying what came
//! after it), records readings given on the command line, saves a snapshot, and prints
//! what it knows. Each run is one start, so the README can show what a start costs.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use secure_service::{Config, Service};

/// An event-sourced service with encrypted events, compaction and encrypted snapshots.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The folder of the log, the secrets and the snapshot.
    #[arg(long, env = "SECURE_SERVICE_DIR")]
    dir: PathBuf,

    /// A file holding the root secret of the secret store: 32 hex characters. Keep it
    /// outside `--dir` (systemd credentials, say).
    #[arg(long, env = "SECURE_SERVICE_ROOT_SECRET_FILE")]
    root_secret_file: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Records readings, each `THERMOMETER=CELSIUS` (e.g. `1=21.5`), then saves a
    /// snapshot unless `--no-snapshot`.
    Record {
        /// The readings.
        #[arg(required = true, value_parser = parse_reading)]
        readings: Vec<(u32, f32)>,
        /// Leaves the last snapshot as it is, so the next start replays these readings.
        #[arg(long)]
        no_snapshot: bool,
    },
    /// Prints the latest reading of every thermometer.
    Show,
}

fn parse_reading(argument: &str) -> Result<(u32, f32), String> {
    let (thermometer, celsius) = argument
        .split_once('=')
        .ok_or_else(|| format!("expected THERMOMETER=CELSIUS, got {argument:?}"))?;
    let thermometer = thermometer
        .parse()
        .map_err(|_| format!("{thermometer:?} is not a thermometer number"))?;
    let celsius = celsius
        .parse()
        .map_err(|_| format!("{celsius:?} is not a temperature"))?;
    Ok((thermometer, celsius))
}

fn read_root_secret(path: &PathBuf) -> Result<[u8; 16], String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the root secret {}: {e}", path.display()))?;
    let bytes = hex::decode(text.trim())
        .map_err(|e| format!("the root secret in {} is not hex: {e}", path.display()))?;
    bytes
        .try_into()
        .map_err(|_| format!("the root secret in {} is not 16 bytes", path.display()))
}

async fn run(args: Args) -> Result<(), String> {
    let config = Config::new(args.dir, read_root_secret(&args.root_secret_file)?);
    let mut service = Service::start(&config).await.map_err(|e| e.to_string())?;
    eprintln!(
        "started: {} records replayed after the snapshot",
        service.replayed_at_start()
    );
    match args.command {
        Command::Record {
            readings,
            no_snapshot,
        } => {
            for (thermometer, celsius) in readings {
                let offset = service
                    .record(thermometer, celsius)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("thermometer {thermometer}: {celsius} °C recorded at offset {offset}");
            }
            if !no_snapshot {
                service.save_snapshot().await.map_err(|e| e.to_string())?;
                if let Some(offset) = service.offset() {
                    eprintln!("snapshot saved at offset {offset}");
                }
            }
        }
        Command::Show => {
            for (thermometer, celsius) in &service.state().latest {
                println!("thermometer {thermometer}: {celsius} °C");
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("secure-service: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("secure-service: {error}");
            ExitCode::FAILURE
        }
    }
}
