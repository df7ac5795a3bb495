//! `streambed-forward`: copies topics from one commit log to another, at least once and
//! in order, resuming after a restart where it stopped. Either side is a `FileLog`
//! directory or a Kafka cluster.
//!
//! ```text
//! streambed-forward --from file:/var/lib/logged --to kafka://cloud:9092 \
//!     --topic farm:readings --source-id router-7 --positions /var/lib/forward.positions
//! ```

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use streambed::commit_log::{CommitLog, Topic};
use streambed_forward::{ForwardError, ForwardSettings, Forwarder, PositionFile};
use streambed_kafka_native::{KafkaNativeArgs, KafkaNativeCommitLog};
use streambed_logged::FileLog;

/// Copies topics from one commit log to another: at least once, in order per partition,
/// each record tagged with its origin (source id and offset) so that duplicates can be
/// dropped downstream.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The log read: `file:DIR` (a FileLog) or `kafka://HOST:PORT[,HOST:PORT...]`
    #[arg(long, env = "STREAMBED_FORWARD_FROM")]
    from: String,

    /// The log written: `file:DIR` or `kafka://HOST:PORT[,HOST:PORT...]`
    #[arg(long, env = "STREAMBED_FORWARD_TO")]
    to: String,

    /// A topic to copy; give the flag once per topic
    #[arg(long = "topic", required = true)]
    topics: Vec<String>,

    /// Names this source in the origin header of every record forwarded
    #[arg(long, env = "STREAMBED_FORWARD_SOURCE_ID")]
    source_id: String,

    /// The file keeping how far forwarding has got, on the source's side
    #[arg(long, env = "STREAMBED_FORWARD_POSITIONS")]
    positions: PathBuf,

    /// The most records sent in one request (and held while the destination is down)
    #[arg(long, default_value_t = 500)]
    max_batch: usize,

    /// Exit once the source has had nothing new for this long, rather than follow it
    #[arg(long)]
    until_idle: Option<humantime::Duration>,

    /// How a Kafka side is reached (topic creation, TLS, SASL, deadline)
    #[command(flatten)]
    kafka: KafkaNativeArgs,

    /// The least severe messages logged: error, warn, info, debug or trace
    #[arg(long, env = "STREAMBED_LOG_LEVEL", default_value = "info", value_parser = parse_level)]
    log_level: log::LevelFilter,
}

fn parse_level(level: &str) -> Result<log::LevelFilter, String> {
    level
        .parse()
        .map_err(|_| format!("{level:?} is not a level: error, warn, info, debug or trace"))
}

/// One side of the copy.
enum Side {
    File(FileLog),
    Kafka(KafkaNativeCommitLog),
}

impl Side {
    fn open(url: &str, args: &Args) -> Result<Side, String> {
        if let Some(dir) = url.strip_prefix("file:") {
            let dir = dir.strip_prefix("//").unwrap_or(dir);
            if dir.is_empty() {
                return Err(format!("{url:?} names no directory"));
            }
            return Ok(Side::File(FileLog::new(dir)));
        }
        let settings = args
            .kafka
            .settings(url, &format!("streambed-forward-{}", args.source_id))
            .map_err(|error| error.to_string())?;
        Ok(Side::Kafka(KafkaNativeCommitLog::with_settings(settings)))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    log::set_max_level(args.log_level);
    let _ = log::set_logger(&StderrLogger);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
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
    let source = Side::open(&args.from, &args)?;
    let destination = Side::open(&args.to, &args)?;
    let mut settings = ForwardSettings::new(
        args.source_id.clone(),
        args.topics.iter().map(|t| Topic::from(t.as_str())),
    );
    settings.max_batch = args.max_batch;
    let file = PositionFile::new(&args.positions);
    let idle = args.until_idle.map(Into::into);
    log::info!(
        "forwarding {} from {} to {} as {:?}",
        args.topics.join(", "),
        args.from,
        args.to,
        args.source_id
    );
    let forwarded = match (source, destination) {
        (Side::File(from), Side::File(to)) => forward(from, to, file, settings, idle).await,
        (Side::File(from), Side::Kafka(to)) => forward(from, to, file, settings, idle).await,
        (Side::Kafka(from), Side::File(to)) => forward(from, to, file, settings, idle).await,
        (Side::Kafka(from), Side::Kafka(to)) => forward(from, to, file, settings, idle).await,
    };
    let count = forwarded.map_err(|error| error.to_string())?;
    log::info!("the source is idle; forwarded {count} records");
    Ok(())
}

/// Forwards until idle when asked to, else for ever (until a signal ends the process).
async fn forward<S: CommitLog, D: CommitLog>(
    source: S,
    destination: D,
    file: PositionFile,
    settings: ForwardSettings,
    idle: Option<Duration>,
) -> Result<u64, ForwardError> {
    let mut forwarder = Forwarder::new(source, destination, file, settings)?;
    match idle {
        Some(idle) => forwarder.forward_until_idle(idle).await,
        None => match forwarder.run().await? {},
    }
}

/// Log lines on stderr: the level, the message.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{} {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}
