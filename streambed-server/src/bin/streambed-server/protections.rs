//! Turns the flags into what protects the server: identities and policy (with the
//! refusal to serve open data on a non-loopback address unless told to), quotas,
//! provenance, metrics and TLS. Every check of the flags' consistency happens here, before
//! the server listens.

use streambed::commit_log::CommitLog;
use streambed_server::{
    identity::Identities,
    policy::Policy,
    provenance::ProvenanceHeader,
    quota::{QuotaConfig, RateLimit},
    tls::{ClientCertificates, Tls, TlsFiles},
    Server,
};

use crate::args::{Args, TokenStore};

/// The identities and policy the flags ask for; `None` when identities are off, which only
/// a loopback address, or --open-data, allows.
pub(crate) fn access(args: &Args) -> Result<Option<(Identities, Policy)>, String> {
    let Some(path) = &args.policy else {
        if args.token_store != TokenStore::None {
            return Err("--token-store needs --policy: what would its tokens grant?".to_owned());
        }
        if !args.listen.ip().is_loopback() {
            if !args.open_data {
                return Err(format!(
                    "refusing to serve {} without identities: anyone reaching it could read, \
                     write and create every topic. Give --policy (and --token-store), or \
                     --open-data if the data is meant to be open",
                    args.listen
                ));
            }
            log::warn!(
                "!!! OPEN DATA: serving {} with no identities and no permissions (--open-data): \
                 ANYONE who reaches this port can read, write and create EVERY topic !!!",
                args.listen
            );
        }
        return Ok(None);
    };
    if args.open_data {
        log::info!("--open-data has no effect: identities are on (--policy)");
    }
    let policy = Policy::load(path).map_err(|error| error.to_string())?;
    let identities = match args.token_store {
        TokenStore::None => Identities::certificates_only(),
        #[cfg(feature = "confidant")]
        TokenStore::Confidant => {
            let secret_file = args.confidant_root_secret.as_ref().ok_or(
                "--token-store confidant needs --confidant-root-secret (a file of 32 hex characters)",
            )?;
            let unreadable = |error: std::io::Error| {
                format!(
                    "cannot read the root secret in {}: {error}",
                    secret_file.display()
                )
            };
            let file = std::fs::File::open(secret_file).map_err(unreadable)?;
            let line = streambed::read_line(file).map_err(unreadable)?;
            let root_secret = streambed::seal::Key::from_hex(line.trim()).map_err(|error| {
                format!(
                    "{} must hold 32 hex characters: {error}",
                    secret_file.display()
                )
            })?;
            let store = streambed_confidant::FileSecretStore::new(
                args.confidant_root_path.clone(),
                root_secret.as_bytes(),
                std::time::Duration::from_secs(60),
                1,
                None,
            );
            Identities::tokens(store)
        }
        #[cfg(feature = "vault")]
        TokenStore::Vault => {
            let address = args
                .vault_address
                .parse()
                .map_err(|error| format!("--vault-address {:?}: {error}", args.vault_address))?;
            let certificate = match &args.vault_ca_file {
                Some(path) => {
                    let pem = std::fs::read(path)
                        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
                    let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                        format!("{} is not a PEM certificate: {error}", path.display())
                    })?;
                    Some(certificate)
                }
                None => None,
            };
            let store = streambed_vault::VaultSecretStore::builder(address)
                .server_cert(certificate)
                .request_timeout(Some(std::time::Duration::from_secs(5)))
                .max_attempts(Some(2))
                .build()
                .map_err(|error| format!("cannot set up the Vault client: {error}"))?;
            Identities::tokens(store)
        }
        #[allow(unreachable_patterns)]
        other => return Err(format!("this build cannot check tokens with {other:?}")),
    };
    log::info!(
        "identities on: tokens checked with {:?}, permissions from {}",
        args.token_store,
        path.display()
    );
    Ok(Some((identities.cache_ttl(*args.token_cache_ttl), policy)))
}

/// What the server is built with beyond its `ServerConfig`: quotas, provenance, metrics.
pub(crate) struct Guards {
    quotas: QuotaConfig,
    provenance: Option<ProvenanceHeader>,
    #[cfg(feature = "prometheus")]
    metrics: Option<streambed_server::metrics_exporter_prometheus::PrometheusHandle>,
}

impl Guards {
    pub(crate) fn from_args(args: &Args) -> Result<Self, String> {
        let limit = |n: usize| Some(n).filter(|n| *n > 0);
        let quotas = QuotaConfig {
            max_streams_per_principal: limit(args.max_streams_per_principal),
            max_topics_per_principal: limit(args.max_topics_per_principal),
            max_topics: limit(args.max_topics),
            rate_limit: (args.rate_limit > 0).then(|| RateLimit {
                per_second: args.rate_limit,
                burst: args.rate_burst.max(1),
                max_tracked: args.rate_limit_clients.max(1),
            }),
        };
        let provenance = match &args.provenance_header {
            Some(name) => Some(ProvenanceHeader::new(name.as_str()).map_err(|e| e.to_string())?),
            None => None,
        };
        // One recorder for the process; the server registers its measurements with it.
        #[cfg(feature = "prometheus")]
        let metrics = match args.metrics {
            true => Some(
                streambed_server::metrics_exporter_prometheus::PrometheusBuilder::new()
                    .install_recorder()
                    .map_err(|error| format!("cannot install the metrics recorder: {error}"))?,
            ),
            false => None,
        };
        #[cfg(not(feature = "prometheus"))]
        if args.metrics {
            log::warn!("this build has no metrics (feature `prometheus`): /metrics answers 404");
        }
        Ok(Self {
            quotas,
            provenance,
            #[cfg(feature = "prometheus")]
            metrics,
        })
    }

    pub(crate) fn apply<CL: CommitLog + 'static>(self, mut server: Server<CL>) -> Server<CL> {
        server = server.with_quotas(self.quotas);
        if let Some(header) = self.provenance {
            server = server.with_provenance_header(header);
        }
        #[cfg(feature = "prometheus")]
        if let Some(handle) = self.metrics {
            server = server.with_metrics(handle);
        }
        server
    }
}

/// The TLS configuration the flags name, read and checked before the server listens.
pub(crate) fn tls(args: &Args) -> Result<Option<Tls>, String> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let mut files = TlsFiles::new(cert, key);
    if let Some(client_ca) = &args.tls_client_ca {
        let client_certificates = if args.tls_require_client_cert {
            ClientCertificates::Required
        } else {
            ClientCertificates::Optional
        };
        files = files.client_ca(client_ca, client_certificates);
    }
    Tls::load(files)
        .map(Some)
        .map_err(|error| error.to_string())
}
