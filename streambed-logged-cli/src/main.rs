//! `logged`: produce JSON records into a file-system commit log, or subscribe to its topics
//! and print their records as JSON lines.
//!
//! Values stay as they are (base64 in the JSON); decrypting or decoding them is the job of
//! another tool in the pipeline, such as `confidant decrypt`.

mod errors;
mod producer;
mod subscriber;

use std::{
    fs::File,
    io::{self, BufReader, BufWriter, Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand};
use streambed::commit_log::ConsumerOffset;
use streambed_logged::FileLog;

use crate::errors::CliError;

/// Operates on file-system commit logs: appends JSON records to topics, or subscribes to
/// topics and writes their records out as JSON lines. Record values are base64 and are
/// left as they are, encrypted or not.
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

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Produce(ProduceCommand),
    Subscribe(SubscribeCommand),
}

/// Reads JSON producer records, one after another, until the end of the input and appends
/// each to its topic. Stops at the first record that is not valid, naming it; the records
/// before it stay appended and nothing of it or after it is written.
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
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("logged: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ProgramArgs) -> Result<(), CliError> {
    let log = FileLog::new(args.root_path);
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
            let produced = producer::produce(&log, BufReader::new(input)).await?;
            eprintln!("logged: produced {produced} records");
            Ok(())
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
                BufWriter::new(output),
            )
            .await
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
