//! `logged`: the operator's command for file-system commit logs. It produces JSON records
//! into a log, subscribes to or tails its topics, lists them with their offsets and sizes,
//! and verifies that their files are intact.
//!
//! Values stay as they are (base64 in the JSON, UTF-8 or hex in text); decrypting or
//! decoding them is the job of another tool in the pipeline, such as `confidant decrypt`.

mod errors;
mod format;
mod inspection;
mod producer;
mod subscriber;

use std::{
    fs::File,
    io::{self, BufReader, BufWriter, IsTerminal, Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use streambed::commit_log::ConsumerOffset;
use streambed_logged::{inspect::Inspector, FileLog};

use crate::{errors::CliError, format::Format};

/// The exit status of `verify` when it found damage (1 is any error, 2 a usage error).
const DAMAGE_FOUND: u8 = 3;

/// Operates on file-system commit logs: appends JSON records to topics, subscribes to or
/// tails topics, lists topics with their offsets and sizes, and verifies their files.
/// Record values are left as they are, encrypted or not.
#[derive(Parser, Debug)]
#[command(name = "logged", version, about)]
struct ProgramArgs {
    /// A namespace for the commit log's topics (accepted for compatibility with other
    /// streambed tools; topic names are used exactly as given).
    #[arg(env, long, default_value = "default")]
    ns: String,

    /// The directory holding the commit log's topics.
    #[arg(env, long, default_value = "/var/lib/logged")]
    root_path: PathBuf,

    /// The largest record the log's writer accepts, in bytes (its `max_record_size`):
    /// larger records would be read as damage.
    #[arg(env, long, default_value_t = 16 * 1024)]
    max_record_size: usize,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Produce(ProduceCommand),
    Subscribe(SubscribeCommand),
    Tail(TailCommand),
    Topics(TopicsCommand),
    Offsets(OffsetsCommand),
    Verify(VerifyCommand),
}

/// Reads JSON producer records, one after another, until the end of the input and appends
/// each to its topic. Stops at the first record that is not valid, naming it; the records
/// before it stay appended and nothing of it or after it is written. When standard error
/// is a terminal, a line there counts the records produced.
#[derive(Args, Debug)]
struct ProduceCommand {
    /// The file to read records from, or `-` for standard input.
    #[arg(short, long)]
    file: PathBuf,
}

/// Subscribes to topics and writes their records as JSON, one per line.
#[derive(Args, Debug)]
struct SubscribeCommand {
    /// End once no record has arrived for this long (e.g. `100ms`, `5s`). Without it, the
    /// subscription follows the topics until interrupted.
    #[arg(long)]
    idle_timeout: Option<humantime::Duration>,

    /// Start after this offset of a topic, given as `topic,partition,offset` (the record
    /// at that offset is not written). May be repeated, once per topic.
    #[arg(long, value_parser = parse_offset)]
    offset: Vec<ConsumerOffset>,

    /// Write the records to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,

    /// A topic to subscribe to. May be repeated, or given several names.
    #[arg(long, required = true, num_args = 1..)]
    subscription: Vec<String>,

    /// How to print records: `json` (base64 values, what `produce` reads) or `text`
    /// (values as UTF-8 text where they are, hex otherwise).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// Prints the last records of a topic, then follows it live, like `tail -f`, until
/// interrupted.
#[derive(Args, Debug)]
struct TailCommand {
    /// The topic to follow.
    topic: String,

    /// How many of the newest records to print first (the records after offset
    /// END - N; fewer in a compacted topic, whose offsets have gaps).
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: u64,

    /// How to print records: `json` or `text` (see `subscribe --help`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Lists every topic with its first and last offsets, record count, bytes on disk (index
/// included), last write time and damaged regions. Reads every file; writes nothing.
#[derive(Args, Debug)]
struct TopicsCommand {
    /// `text` (a table) or `json` (one object per topic).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Prints the first and last offsets of a topic. Fails when it holds no record.
#[derive(Args, Debug)]
struct OffsetsCommand {
    /// The topic.
    topic: String,

    /// `text` (`beginning_offset=B end_offset=E`) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Reads every file of a topic (or of every topic) and reports damaged byte ranges and the
/// records they may have cost. Never repairs or truncates anything. Exits with status 3
/// when it finds damage, 1 when it cannot read the files.
#[derive(Args, Debug)]
struct VerifyCommand {
    /// The topic to verify; every topic without it.
    topic: Option<String>,
}

/// Parses `topic,partition,offset`.
fn parse_offset(argument: &str) -> Result<ConsumerOffset, String> {
    let mut parts = argument.rsplitn(3, ',');
    let (Some(offset), Some(partition), Some(topic)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "expected topic,partition,offset (e.g. readings,0,41), got {argument:?}"
        ));
    };
    if topic.is_empty() {
        return Err("the topic of an offset cannot be empty".to_string());
    }
    let partition = partition
        .parse()
        .map_err(|_| format!("the partition {partition:?} is not a whole number"))?;
    let offset = offset
        .parse()
        .map_err(|_| format!("the offset {offset:?} is not a whole number"))?;
    Ok(ConsumerOffset {
        topic: topic.into(),
        partition,
        offset,
    })
}

fn main() -> ExitCode {
    let args = ProgramArgs::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("logged: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::DamageFound) => ExitCode::from(DAMAGE_FOUND),
        Err(error) => {
            eprintln!("logged: {error}");
            ExitCode::FAILURE
        }
    }
}

/// How a command that ran to its end went.
enum Outcome {
    Done,
    DamageFound,
}

/// Counts produced records on standard error, only when a person is watching it: a
/// pipeline's logs get nothing but the final count.
fn produce_progress() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {human_pos} records produced ({per_sec})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

async fn run(args: ProgramArgs) -> Result<Outcome, CliError> {
    let inspector = Inspector::new(&args.root_path).with_max_record_size(args.max_record_size);
    let log = FileLog::with_config(
        args.root_path,
        64 * 1024,
        8 * 1024,
        64 * 1024,
        8 * 1024,
        args.max_record_size,
    );
    let stdout = || BufWriter::new(io::stdout().lock());
    match args.command {
        Command::Produce(command) => {
            let input: Box<dyn Read> = if command.file.as_os_str() == "-" {
                Box::new(io::stdin().lock())
            } else {
                let file = File::open(&command.file).map_err(|source| CliError::Open {
                    path: command.file.clone(),
                    source,
                })?;
                Box::new(file)
            };
            let progress = produce_progress();
            let produced = producer::produce(&log, BufReader::new(input), &progress).await;
            progress.finish_and_clear();
            let produced = produced?;
            eprintln!("logged: produced {produced} records");
            Ok(Outcome::Done)
        }
        Command::Subscribe(command) => {
            let output: Box<dyn Write> = match &command.output {
                Some(path) => Box::new(File::create(path).map_err(|source| CliError::Open {
                    path: path.clone(),
                    source,
                })?),
                None => Box::new(io::stdout().lock()),
            };
            subscriber::subscribe(
                &log,
                command.offset,
                command.subscription,
                command.idle_timeout.map(Into::into),
                command.format,
                BufWriter::new(output),
            )
            .await?;
            Ok(Outcome::Done)
        }
        Command::Tail(command) => {
            // The newest `lines` records are those after offset END - lines; with fewer
            // offsets than that (or no topic yet), everything from the beginning.
            let after = inspector
                .offsets(&command.topic)?
                .and_then(|offsets| offsets.end_offset.checked_sub(command.lines));
            let offsets = after
                .map(|offset| ConsumerOffset {
                    topic: command.topic.as_str().into(),
                    partition: 0,
                    offset,
                })
                .into_iter()
                .collect();
            subscriber::subscribe(
                &log,
                offsets,
                vec![command.topic],
                None,
                command.format,
                stdout(),
            )
            .await?;
            Ok(Outcome::Done)
        }
        Command::Topics(command) => {
            inspection::topics(&inspector, command.format, stdout())?;
            Ok(Outcome::Done)
        }
        Command::Offsets(command) => {
            inspection::offsets(&inspector, &command.topic, command.format, stdout())?;
            Ok(Outcome::Done)
        }
        Command::Verify(command) => {
            let intact = inspection::verify(&inspector, command.topic.as_deref(), stdout())?;
            Ok(if intact {
                Outcome::Done
            } else {
                Outcome::DamageFound
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_from_three_comma_separated_parts() {
        let offset = parse_offset("ns:readings,0,41").unwrap();
        assert_eq!(offset.topic, "ns:readings");
        assert_eq!(offset.partition, 0);
        assert_eq!(offset.offset, 41);
    }

    #[test]
    fn malformed_offsets_are_refused_with_a_reason() {
        assert!(parse_offset("readings")
            .unwrap_err()
            .contains("topic,partition,offset"));
        assert!(parse_offset("readings,0")
            .unwrap_err()
            .contains("topic,partition,offset"));
        assert!(parse_offset(",0,1").unwrap_err().contains("empty"));
        assert!(parse_offset("t,x,1").unwrap_err().contains("partition"));
        assert!(parse_offset("t,0,-1").unwrap_err().contains("offset"));
    }

    #[test]
    fn arguments_parse_as_documented() {
        let args = ProgramArgs::try_parse_from([
            "logged",
            "--root-path",
            "/tmp/log",
            "subscribe",
            "--subscription",
            "a",
            "b",
            "--offset",
            "a,0,3",
            "--idle-timeout",
            "100ms",
        ])
        .unwrap();
        assert_eq!(args.root_path, PathBuf::from("/tmp/log"));
        let Command::Subscribe(command) = args.command else {
            panic!("expected subscribe");
        };
        assert_eq!(command.subscription, vec!["a", "b"]);
        assert_eq!(command.offset.len(), 1);
        assert_eq!(
            std::time::Duration::from(command.idle_timeout.unwrap()),
            std::time::Duration::from_millis(100)
        );
    }

    #[test]
    fn subscribe_requires_a_subscription() {
        assert!(ProgramArgs::try_parse_from(["logged", "subscribe"]).is_err());
    }
}
