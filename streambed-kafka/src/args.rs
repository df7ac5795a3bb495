//! Command-line arguments (also read from the environment) with which a service names
//! the commit log server it uses.
//!
//! ```
//! use clap::Parser;
//! use streambed_kafka::args::CommitLogArgs;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     cl: CommitLogArgs,
//! }
//!
//! let args = Args::parse_from(["service", "--cl-server", "http://10.0.0.2:8082"]);
//! assert_eq!(args.cl.cl_server.port(), Some(8082));
//! assert_eq!(*args.cl.cl_idle_timeout, std::time::Duration::from_millis(100));
//! ```

use std::path::PathBuf;

use clap::Parser;
use streambed::http::InvalidBearerToken;
use thiserror::Error;
use url::Url;

use crate::{ClientError, KafkaRestCommitLog};

/// How to reach the commit log server; see the [module docs](self) for an example.
#[derive(Clone, Debug, Parser)]
pub struct CommitLogArgs {
    /// How long a subscription waits for a record before deciding that no more are
    /// immediately available
    #[arg(env, long, default_value = "100ms")]
    pub cl_idle_timeout: humantime::Duration,

    /// The namespace that prefixes this service's topic names, as in "default:readings"
    #[arg(env, long, default_value = "default")]
    pub cl_ns: String,

    /// The URL of the commit log's Kafka HTTP API server
    #[arg(env, long, default_value = "http://localhost:8082")]
    pub cl_server: Url,

    /// A PEM file of the certificate to trust for the server (for a self-signed one)
    #[arg(env, long)]
    pub cl_server_cert_path: Option<PathBuf>,

    /// Accept any TLS certificate from the server (insecure: for tests only)
    #[arg(env, long)]
    pub cl_server_insecure: bool,

    /// A file holding the token sent as `Authorization: Bearer <token>` with every
    /// request, for a server that checks identities (surrounding whitespace is ignored)
    #[arg(env, long)]
    pub cl_bearer_token_path: Option<PathBuf>,

    /// A PEM file of the client certificate (then any intermediates) to show a server that
    /// asks for one (mutual TLS); needs --cl-client-key-path
    #[arg(env, long, requires = "cl_client_key_path")]
    pub cl_client_cert_path: Option<PathBuf>,

    /// The PEM file of the private key of --cl-client-cert-path
    #[arg(env, long, requires = "cl_client_cert_path")]
    pub cl_client_key_path: Option<PathBuf>,
}

/// The arguments do not describe a usable client.
///
/// ```
/// use clap::Parser;
/// use streambed_kafka::args::{CommitLogArgs, CommitLogArgsError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let args = CommitLogArgs::parse_from(["service", "--cl-server-cert-path", "/nonexistent.pem"]);
/// let error = args.commit_log().await.unwrap_err();
/// assert!(matches!(error, CommitLogArgsError::Certificate { .. }));
/// # }
/// ```
#[derive(Debug, Error)]
pub enum CommitLogArgsError {
    /// The certificate file could not be read or holds no certificate.
    #[error("cannot use the certificate at {path}: {reason}")]
    Certificate {
        /// The file named by `--cl-server-cert-path`.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// The bearer token file could not be read or holds no usable token.
    #[error("cannot use the bearer token in {path}: {reason}")]
    BearerToken {
        /// The file named by `--cl-bearer-token-path`.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// The client certificate or its key could not be read or used.
    #[error("cannot use the client certificate or key at {path}: {reason}")]
    ClientCertificate {
        /// The file named by `--cl-client-cert-path` or `--cl-client-key-path`.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// The client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl CommitLogArgs {
    /// Builds the client these arguments describe, reading the certificate, token and
    /// client certificate files that are named.
    ///
    /// ```
    /// use clap::Parser;
    /// use streambed_kafka::args::CommitLogArgs;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let args = CommitLogArgs::parse_from(["service"]);
    /// let log = args.commit_log().await.unwrap();
    /// # drop(log);
    /// # }
    /// ```
    pub async fn commit_log(&self) -> Result<KafkaRestCommitLog, CommitLogArgsError> {
        let cert = match &self.cl_server_cert_path {
            Some(path) => {
                let certificate = std::fs::File::open(path)
                    .map_err(|e| e.to_string())
                    .map(streambed::read_pem);
                let certificate = match certificate {
                    Ok(reading) => reading.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                Some(
                    certificate.map_err(|reason| CommitLogArgsError::Certificate {
                        path: path.clone(),
                        reason,
                    })?,
                )
            }
            None => None,
        };
        let mut log =
            KafkaRestCommitLog::try_new(self.cl_server.clone(), cert, self.cl_server_insecure)?;
        if let Some(path) = &self.cl_bearer_token_path {
            let unusable = |reason: String| CommitLogArgsError::BearerToken {
                path: path.clone(),
                reason,
            };
            let token = std::fs::read_to_string(path).map_err(|e| unusable(e.to_string()))?;
            let token = token
                .trim()
                .parse()
                .map_err(|e: InvalidBearerToken| unusable(e.to_string()))?;
            log = log.with_bearer_token(token);
        }
        if let (Some(cert_path), Some(key_path)) =
            (&self.cl_client_cert_path, &self.cl_client_key_path)
        {
            let read = |path: &PathBuf| {
                std::fs::read(path).map_err(|e| CommitLogArgsError::ClientCertificate {
                    path: path.clone(),
                    reason: e.to_string(),
                })
            };
            let mut pem = read(cert_path)?;
            pem.push(b'\n');
            pem.extend_from_slice(&read(key_path)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                CommitLogArgsError::ClientCertificate {
                    path: cert_path.clone(),
                    reason: e.to_string(),
                }
            })?;
            log = log.with_client_identity(identity)?;
        }
        Ok(log)
    }
}
