//! `confidant`: encrypts or decrypts one field of a stream of JSON lines with a key kept in
//! a streambed-confidant secret store. Typically a pre-stage of `logged produce` or a
//! post-stage of `logged subscribe`.

mod cryptor;
mod json_line;
mod key;

use std::{
    fs::File,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use clap::{Args, Parser, Subcommand};
use streambed::secret_store::SecretStore;
use streambed_confidant::{ConfidantError, FileSecretStore};

use cryptor::{Cryptor, Direction, StreamError};

/// Encrypts or decrypts a field of JSON objects streamed one per line, with a key from a
/// file-based secret store. The selected field (default "value") holds standard base64,
/// and is written back as standard base64: encrypted values are a 12-byte salt followed
/// by the ciphertext.
#[derive(Parser, Debug)]
#[clap(author, version)]
struct ProgramArgs {
    /// A directory holding the file `root-secret`: the store's root secret as 32 hex
    /// characters. Matches systemd's CREDENTIALS_DIRECTORY. An optional `ss-secret-id`
    /// file there is used as the secret id when authenticating.
    #[clap(env, long, default_value = "/tmp")]
    credentials_directory: PathBuf,

    /// The most secrets to cache at once.
    #[clap(env, long, default_value_t = 10_000)]
    max_secrets: usize,

    /// The role id to authenticate with.
    #[clap(env, long, default_value = "streambed-confidant-cli")]
    role_id: String,

    /// The directory holding the secrets; it must grant no access to group or other
    /// users (mode 700).
    #[clap(env, long, default_value = "/var/lib/confidant")]
    root_path: PathBuf,

    /// A secret data field holding how long the secret may be cached (e.g. "1m").
    #[clap(env, long)]
    ttl_field: Option<String>,

    /// How long an absent or unreadable secret is remembered.
    #[clap(env, long, default_value = "1m")]
    unauthorized_timeout: humantime::Duration,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decrypts the selected field of each JSON line, until the end of the input.
    Decrypt(StreamArgs),
    /// Encrypts the selected field of each JSON line, until the end of the input. Creates
    /// a random key at --path when there is none yet.
    Encrypt(StreamArgs),
}

#[derive(Args, Debug)]
struct StreamArgs {
    /// The file to read JSON lines from, or `-` for standard input.
    #[clap(short, long)]
    file: PathBuf,

    /// The longest line accepted, in bytes (line ending excluded).
    #[clap(long, default_value_t = 8 * 1024)]
    max_line_len: u64,

    /// A file to write the JSON lines to, instead of standard output.
    #[clap(short, long)]
    output: Option<PathBuf>,

    /// The field holding the base64 value to encrypt or decrypt.
    #[clap(long, default_value = "value")]
    select: String,

    /// The secret path of the key, e.g. "default/secrets.configurator-events.key".
    #[clap(long)]
    path: String,
}

/// Why `confidant` stopped.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Key(#[from] key::KeyError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("cannot open the input {path}: {source}")]
    Input { path: PathBuf, source: io::Error },
    #[error("cannot create the output {path}: {source}")]
    Output { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Stream(#[from] StreamError),
}

impl CliError {
    /// A closed output pipe (e.g. `confidant … | head`) is the reader's choice, not a fault.
    fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Stream(StreamError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

fn main() -> ExitCode {
    let args = ProgramArgs::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confidant: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: ProgramArgs) -> Result<(), CliError> {
    let (direction, stream) = match args.command {
        Command::Decrypt(stream) => (Direction::Decrypt, stream),
        Command::Encrypt(stream) => (Direction::Encrypt, stream),
    };
    let root_secret = key::read_root_secret(&args.credentials_directory)?;
    let secret_id = key::read_secret_id(&args.credentials_directory)?;
    let ss = FileSecretStore::new(
        &args.root_path,
        root_secret.as_bytes(),
        Duration::from(args.unauthorized_timeout),
        args.max_secrets,
        args.ttl_field.as_deref(),
    );

    // The store is only needed to find the key; the stream itself is plain blocking I/O.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(CliError::Runtime)?;
    let key = runtime.block_on(async {
        if ss.approle_auth(&args.role_id, &secret_id).await.is_err() {
            // Ask again through the detailed API to say why.
            let reason = ss
                .try_get_secret(&stream.path)
                .await
                .err()
                .unwrap_or(ConfidantError::AuthenticationFailed);
            return Err(key::KeyError::Store {
                path: stream.path.clone(),
                source: reason,
            });
        }
        key::resolve(&ss, &stream.path, direction == Direction::Encrypt).await
    })?;
    drop(runtime);

    let input = open_input(&stream.file)?;
    let output = open_output(stream.output.as_deref())?;
    Cryptor::new(key, direction, stream.select).process_stream(
        input,
        output,
        stream.max_line_len,
    )?;
    Ok(())
}

fn open_input(file: &Path) -> Result<Box<dyn Read>, CliError> {
    if file.as_os_str() == "-" {
        Ok(Box::new(io::stdin().lock()))
    } else {
        File::open(file)
            .map(|f| Box::new(f) as Box<dyn Read>)
            .map_err(|source| CliError::Input {
                path: file.to_path_buf(),
                source,
            })
    }
}

fn open_output(output: Option<&Path>) -> Result<Box<dyn Write>, CliError> {
    match output {
        None => Ok(Box::new(io::stdout().lock())),
        Some(path) => File::create(path)
            .map(|f| Box::new(f) as Box<dyn Write>)
            .map_err(|source| CliError::Output {
                path: path.to_path_buf(),
                source,
            }),
    }
}
