//! The command-line flags of a program that reaches a Kafka cluster (the server's
//! `kafka://` backend, the forwarder), in one place so that every program spells and
//! reads them alike: `#[command(flatten)]` them into the program's own flags, and turn a
//! `kafka://` URL into settings with `KafkaNativeArgs::settings`.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use clap::ValueEnum;
use rskafka::client::{Credentials, SaslConfig};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use thiserror::Error;

use crate::settings::{BrokerUrlError, KafkaNativeSettings};

/// The SASL mechanisms a program can be told to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    /// PLAIN: the password crosses the connection (use it over TLS only)
    #[default]
    Plain,
    /// SCRAM-SHA-256
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// SCRAM-SHA-512
    #[value(name = "scram-sha-512")]
    ScramSha512,
}

/// How a program reaches a Kafka cluster: flags to `#[command(flatten)]` into a
/// program's own, and [`KafkaNativeArgs::settings`] to turn a `kafka://` URL into settings.
///
/// ```
/// use clap::Parser;
/// use streambed_kafka_native::KafkaNativeArgs;
///
/// #[derive(Parser)]
/// struct Program {
///     #[arg(long)]
///     cluster: String,
///     #[command(flatten)]
///     kafka: KafkaNativeArgs,
/// }
///
/// let program = Program::parse_from([
///     "program",
///     "--cluster",
///     "kafka://k1:9092,k2:9092",
///     "--kafka-create-topics",
///     "--kafka-partitions",
///     "3",
/// ]);
/// let settings = program.kafka.settings(&program.cluster, "program").unwrap();
/// assert_eq!(settings.brokers(), ["k1:9092", "k2:9092"]);
/// ```
#[derive(Clone, Debug, clap::Args)]
pub struct KafkaNativeArgs {
    /// With a Kafka cluster: create a topic on its first produce when the cluster lacks
    /// it, with --kafka-partitions and --kafka-replication-factor
    #[arg(long, env = "STREAMBED_KAFKA_CREATE_TOPICS")]
    pub kafka_create_topics: bool,

    /// Partitions of a topic created on a Kafka cluster
    #[arg(long, env = "STREAMBED_KAFKA_PARTITIONS", default_value_t = 1)]
    pub kafka_partitions: i32,

    /// Replicas of each partition of a topic created on a Kafka cluster
    #[arg(long, env = "STREAMBED_KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub kafka_replication_factor: i16,

    /// How long one request to a Kafka cluster retries before it fails
    #[arg(long, env = "STREAMBED_KAFKA_REQUEST_DEADLINE", default_value = "30s")]
    pub kafka_request_deadline: humantime::Duration,

    /// Connect to the Kafka cluster over TLS, trusting the certificate authorities in this
    /// PEM file
    #[arg(long, env = "STREAMBED_KAFKA_CA_FILE")]
    pub kafka_ca_file: Option<PathBuf>,

    /// Authenticate to the Kafka cluster with SASL as this user
    #[arg(
        long,
        env = "STREAMBED_KAFKA_SASL_USERNAME",
        requires = "kafka_sasl_password_file"
    )]
    pub kafka_sasl_username: Option<String>,

    /// A file whose first line is the SASL password
    #[arg(
        long,
        env = "STREAMBED_KAFKA_SASL_PASSWORD_FILE",
        requires = "kafka_sasl_username"
    )]
    pub kafka_sasl_password_file: Option<PathBuf>,

    /// The SASL mechanism
    #[arg(
        long,
        env = "STREAMBED_KAFKA_SASL_MECHANISM",
        value_enum,
        default_value_t
    )]
    pub kafka_sasl_mechanism: SaslMechanism,
}

/// Flags that do not make settings.
#[derive(Debug, Error)]
pub enum KafkaArgsError {
    /// The URL names no brokers.
    #[error(transparent)]
    Url(#[from] BrokerUrlError),
    /// A file named by a flag cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no certificate the TLS library accepts.
    #[error("{path} holds no usable certificate: {reason}")]
    Certificates {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

impl KafkaNativeArgs {
    /// Settings for the cluster of a `kafka://HOST:PORT[,HOST:PORT...]` URL with these
    /// flags; `client_id` names the program to the brokers.
    pub fn settings(
        &self,
        url: &str,
        client_id: &str,
    ) -> Result<KafkaNativeSettings, KafkaArgsError> {
        let mut settings = KafkaNativeSettings::from_url(url)?
            .client_id(client_id)
            .request_deadline(*self.kafka_request_deadline);
        if self.kafka_create_topics {
            settings = settings.create_topics(self.kafka_partitions, self.kafka_replication_factor);
        }
        if let Some(path) = &self.kafka_ca_file {
            settings = settings.tls(tls_trusting(path)?);
        }
        if let (Some(username), Some(path)) =
            (&self.kafka_sasl_username, &self.kafka_sasl_password_file)
        {
            let password = read(path)?.lines().next().unwrap_or_default().to_owned();
            let credentials = Credentials::new(username.clone(), password);
            settings = settings.sasl(match self.kafka_sasl_mechanism {
                SaslMechanism::Plain => SaslConfig::Plain(credentials),
                SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
                SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
            });
        }
        Ok(settings)
    }
}

fn read(path: &Path) -> Result<String, KafkaArgsError> {
    fs::read_to_string(path).map_err(|source| KafkaArgsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A TLS configuration trusting the certificate authorities of a PEM file, and no other.
fn tls_trusting(path: &Path) -> Result<Arc<rustls::ClientConfig>, KafkaArgsError> {
    let bad = |reason: String| KafkaArgsError::Certificates {
        path: path.to_owned(),
        reason,
    };
    let pem = read(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let certificate = certificate.map_err(|error| bad(error.to_string()))?;
        roots
            .add(certificate)
            .map_err(|error| bad(error.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no PEM certificate in it".to_owned()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| bad(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Program {
        #[command(flatten)]
        kafka: KafkaNativeArgs,
    }

    fn args(flags: &[&str]) -> KafkaNativeArgs {
        Program::parse_from(std::iter::once("program").chain(flags.iter().copied())).kafka
    }

    #[test]
    fn the_sasl_password_is_the_first_line_of_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        fs::write(&password, "s3cret\n").unwrap();
        let settings = args(&[
            "--kafka-sasl-username",
            "router-7",
            "--kafka-sasl-password-file",
            password.to_str().unwrap(),
            "--kafka-sasl-mechanism",
            "scram-sha-512",
        ])
        .settings("kafka://k:9092", "test")
        .unwrap();
        match settings.sasl {
            Some(SaslConfig::ScramSha512(credentials)) => {
                assert_eq!(credentials.username, "router-7");
                assert_eq!(credentials.password, "s3cret");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        fs::write(&ca, "not a certificate").unwrap();
        let error = args(&["--kafka-ca-file", ca.to_str().unwrap()])
            .settings("kafka://k:9092", "test")
            .unwrap_err();
        assert!(error.to_string().contains("ca.pem"), "{error}");
        let missing = dir.path().join("missing.pem");
        let error = args(&["--kafka-ca-file", missing.to_str().unwrap()])
            .settings("kafka://k:9092", "test")
            .unwrap_err();
        assert!(matches!(error, KafkaArgsError::Read { .. }), "{error}");
    }

    #[test]
    fn topic_creation_and_the_deadline_come_from_their_flags() {
        let settings = args(&[
            "--kafka-create-topics",
            "--kafka-partitions",
            "6",
            "--kafka-request-deadline",
            "2s",
        ])
        .settings("kafka://k:9092", "test")
        .unwrap();
        assert_eq!(settings.topic_creation.unwrap().partitions, 6);
        assert_eq!(settings.request_deadline, std::time::Duration::from_secs(2));
        assert!(args(&[]).settings("kafka://k", "test").is_err());
    }
}
