//! The program's flags (each with an environment variable), in one place so that the rest
//! of the program reads settled values.

use std::{net::SocketAddr, path::PathBuf};

use clap::{ArgAction, Parser, ValueEnum};

/// Serves a streambed commit log over the Kafka HTTP API: GET
/// /topics/<topic>/partitions/<partition>/offsets, POST /topics/<topic> and POST
/// /consumers/<group>.
#[derive(Debug, Parser)]
#[command(version)]
pub(crate) struct Args {
    /// The directory of the commit log's topic files (the `file` backend)
    #[arg(long, env = "STREAMBED_ROOT_PATH", default_value = "/var/lib/logged")]
    pub(crate) root_path: PathBuf,

    /// Where the log lives: `file` (in --root-path, durable), `memory` (lost on exit), or
    /// `kafka://HOST:PORT[,HOST:PORT...]` (a Kafka cluster, by its bootstrap brokers)
    #[arg(long, env = "STREAMBED_BACKEND", default_value = "file", value_parser = parse_backend)]
    pub(crate) backend: Backend,

    /// How the kafka backend reaches its cluster (topic creation, TLS, SASL, deadline)
    #[cfg(feature = "kafka")]
    #[command(flatten)]
    pub(crate) kafka: streambed_kafka_native::KafkaNativeArgs,

    /// With the file backend, answer a produce request only once its records are on disk
    /// (fdatasync, shared by concurrent requests) rather than in the OS page cache
    #[arg(long, env = "STREAMBED_FSYNC")]
    pub(crate) fsync: bool,

    /// The address and port to listen on (port 0: any free port, logged at start)
    #[arg(long, env = "STREAMBED_LISTEN", default_value = "127.0.0.1:8082")]
    pub(crate) listen: SocketAddr,

    /// The largest request body accepted, in bytes; larger ones get 413
    #[arg(long, env = "STREAMBED_MAX_BODY_SIZE", default_value_t = 1024 * 1024)]
    pub(crate) max_body_size: usize,

    /// How long a client may take to send a request's headers
    #[arg(long, env = "STREAMBED_HEADER_READ_TIMEOUT", default_value = "10s")]
    pub(crate) header_read_timeout: humantime::Duration,

    /// How long a client may take to send a request's body before it gets 408
    #[arg(long, env = "STREAMBED_BODY_READ_TIMEOUT", default_value = "30s")]
    pub(crate) body_read_timeout: humantime::Duration,

    /// On SIGTERM or Ctrl-C, how long requests in progress may take to finish
    #[arg(long, env = "STREAMBED_SHUTDOWN_GRACE_PERIOD", default_value = "5s")]
    pub(crate) shutdown_grace_period: humantime::Duration,

    /// Send a newline to a consumer stream idle for this long, so that vanished clients
    /// are noticed; 0s sends none
    #[arg(long, env = "STREAMBED_CONSUMER_HEARTBEAT", default_value = "30s")]
    pub(crate) consumer_heartbeat: humantime::Duration,

    /// The most connections served at once (each consumer stream holds one); more wait
    #[arg(long, env = "STREAMBED_MAX_CONNECTIONS", default_value_t = 512)]
    pub(crate) max_connections: usize,

    /// Close a connection whose client has read nothing of its response for this long
    /// (a consumer that stopped reading), freeing its subscription and buffers; 0s: never
    #[arg(long, env = "STREAMBED_WRITE_TIMEOUT", default_value = "30s")]
    pub(crate) write_timeout: humantime::Duration,

    /// The most subscriptions, and the most offsets, one consumer request may name; more
    /// get 400
    #[arg(long, env = "STREAMBED_MAX_SUBSCRIPTIONS", default_value_t = 64)]
    pub(crate) max_subscriptions: usize,

    /// Consumer streams one principal (or, without identities, one IP address) may have
    /// open at once; more get 429; 0: no limit
    #[arg(long, env = "STREAMBED_MAX_STREAMS_PER_PRINCIPAL", default_value_t = 8)]
    pub(crate) max_streams_per_principal: usize,

    /// Topics one principal (or IP address) may create while the server runs; more get
    /// 403; 0: no limit
    #[arg(long, env = "STREAMBED_MAX_TOPICS_PER_PRINCIPAL", default_value_t = 64)]
    pub(crate) max_topics_per_principal: usize,

    /// Topics the server accepts producing to in all; creating more gets 403; 0: no limit
    #[arg(long, env = "STREAMBED_MAX_TOPICS", default_value_t = 512)]
    pub(crate) max_topics: usize,

    /// Requests per second one principal (or IP address) may make on average; more get
    /// 429 with Retry-After; 0: no limit
    #[arg(long, env = "STREAMBED_RATE_LIMIT", default_value_t = 200)]
    pub(crate) rate_limit: u32,

    /// Requests a principal (or IP address) that was idle may make at once
    #[arg(long, env = "STREAMBED_RATE_BURST", default_value_t = 400)]
    pub(crate) rate_burst: u32,

    /// The most principals or IP addresses given a rate of their own; the rest share one
    #[arg(long, env = "STREAMBED_RATE_LIMIT_CLIENTS", default_value_t = 4096)]
    pub(crate) rate_limit_clients: usize,

    /// Stamp every produced record with a header of this name holding the principal (or,
    /// without identities, the client's IP address); records already carrying it get 400
    #[arg(long, env = "STREAMBED_PROVENANCE_HEADER")]
    pub(crate) provenance_header: Option<String>,

    /// Log an audit line (target `audit`, level info) per produce request and per consumer
    /// stream opened
    #[arg(long, env = "STREAMBED_AUDIT", default_value_t = true, action = ArgAction::Set)]
    pub(crate) audit: bool,

    /// Serve GET /metrics in the Prometheus text format
    #[arg(long, env = "STREAMBED_METRICS", default_value_t = true, action = ArgAction::Set)]
    pub(crate) metrics: bool,

    /// Serve HTTPS with the certificate chain in this PEM file (server certificate first);
    /// needs --tls-key. Certificate, key and client CA are read again on SIGHUP
    #[arg(
        long,
        env = "STREAMBED_TLS_CERT",
        requires = "tls_key",
        value_name = "PEM_FILE"
    )]
    pub(crate) tls_cert: Option<PathBuf>,

    /// The PEM file of the private key of --tls-cert
    #[arg(
        long,
        env = "STREAMBED_TLS_KEY",
        requires = "tls_cert",
        value_name = "PEM_FILE"
    )]
    pub(crate) tls_key: Option<PathBuf>,

    /// Mutual TLS: ask clients for a certificate, which must chain to a CA in this PEM
    /// file; its subject's common name becomes the client's principal. A client may still
    /// show none (and identify itself with a token) unless --tls-require-client-cert
    #[arg(
        long,
        env = "STREAMBED_TLS_CLIENT_CA",
        requires = "tls_cert",
        value_name = "PEM_FILE"
    )]
    pub(crate) tls_client_ca: Option<PathBuf>,

    /// With --tls-client-ca, refuse at the handshake every client without a certificate
    #[arg(
        long,
        env = "STREAMBED_TLS_REQUIRE_CLIENT_CERT",
        requires = "tls_client_ca"
    )]
    pub(crate) tls_require_client_cert: bool,

    /// Threads serving requests; 0 means one per CPU
    #[arg(long, env = "STREAMBED_WORKER_THREADS", default_value_t = 0)]
    pub(crate) worker_threads: usize,

    /// A JSON file granting principals `produce`, `consume` and `create` on topics (see
    /// the README). Turns identities on: every request then needs a bearer token (checked
    /// through --token-store) or a verified client certificate (401 without), and may do
    /// only what the file grants (403 otherwise)
    #[arg(long, env = "STREAMBED_POLICY")]
    pub(crate) policy: Option<PathBuf>,

    /// Where bearer tokens are checked: `none` (client certificates only), `confidant`
    /// (tokens of a streambed-confidant store's userpass logins) or `vault` (tokens of a
    /// Vault or OpenBao server). Needs --policy
    #[arg(long, env = "STREAMBED_TOKEN_STORE", value_enum, default_value_t = TokenStore::None)]
    pub(crate) token_store: TokenStore,

    /// With --token-store confidant: the store's directory (mode 700)
    #[arg(
        long,
        env = "STREAMBED_CONFIDANT_ROOT_PATH",
        default_value = "/var/lib/confidant"
    )]
    pub(crate) confidant_root_path: PathBuf,

    /// With --token-store confidant: a file holding the store's root secret as 32 hex
    /// characters (the `root-secret` file of the `confidant` CLI's credentials directory)
    #[arg(long, env = "STREAMBED_CONFIDANT_ROOT_SECRET")]
    pub(crate) confidant_root_secret: Option<PathBuf>,

    /// With --token-store vault: the Vault or OpenBao server's address
    #[arg(
        long,
        env = "STREAMBED_VAULT_ADDRESS",
        default_value = "http://127.0.0.1:8200"
    )]
    pub(crate) vault_address: String,

    /// With --token-store vault: a PEM file of a CA certificate to trust for the server
    #[arg(long, env = "STREAMBED_VAULT_CA_FILE")]
    pub(crate) vault_ca_file: Option<PathBuf>,

    /// How long a verified token is trusted before its store is asked again (never past
    /// the token's expiry)
    #[arg(long, env = "STREAMBED_TOKEN_CACHE_TTL", default_value = "30s")]
    pub(crate) token_cache_ttl: humantime::Duration,

    /// Serve without identities on an address that is not loopback: anyone who reaches
    /// the port may read, write and create every topic. Refused without this flag
    #[arg(long, env = "STREAMBED_OPEN_DATA")]
    pub(crate) open_data: bool,

    /// The least severe messages logged to stderr: error, warn, info, debug or trace
    #[arg(long, env = "STREAMBED_LOG_LEVEL", default_value = "info", value_parser = parse_level)]
    pub(crate) log_level: log::LevelFilter,
}

fn parse_level(text: &str) -> Result<log::LevelFilter, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not one of off, error, warn, info, debug, trace"))
}

/// Where bearer tokens are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TokenStore {
    /// No tokens: principals from client certificates only
    None,
    /// A streambed-confidant store (its userpass tokens)
    Confidant,
    /// A Vault or OpenBao server (auth/token/lookup-self)
    Vault,
}

/// The commit log implementations the server can serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// Topic files in --root-path
    File,
    /// Records held in memory and lost on exit
    Memory,
    /// A Kafka cluster, by the `kafka://` URL of its bootstrap brokers
    Kafka(String),
}

fn parse_backend(value: &str) -> Result<Backend, String> {
    match value {
        "file" => Ok(Backend::File),
        "memory" => Ok(Backend::Memory),
        _ if value.starts_with("kafka://") => {
            // The URL's form has one owner, the Kafka backend; a build without it still
            // takes the flag, and says at start that it cannot serve it.
            #[cfg(feature = "kafka")]
            streambed_kafka_native::KafkaNativeSettings::from_url(value)
                .map_err(|error| error.to_string())?;
            Ok(Backend::Kafka(value.to_owned()))
        }
        _ => Err(format!(
            "{value:?} is not a backend: give file, memory or kafka://HOST:PORT"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_parse_from_their_names_and_kafka_urls() {
        assert_eq!(parse_backend("file"), Ok(Backend::File));
        assert_eq!(parse_backend("memory"), Ok(Backend::Memory));
        assert_eq!(
            parse_backend("kafka://k1:9092,k2:9093/"),
            Ok(Backend::Kafka("kafka://k1:9092,k2:9093/".into()))
        );
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn a_kafka_url_without_a_broker_port_is_refused_naming_it() {
        let error = parse_backend("kafka://k1:9092,k2").unwrap_err();
        assert!(error.contains("\"k2\""), "{error}");
        assert!(parse_backend("kafka://").is_err());
        assert!(parse_backend("files").is_err());
    }
}
