//! Command line arguments (also read from the environment) that configure a service's
//! [`VaultSecretStore`](crate::VaultSecretStore); flatten them into a service's own.
//!
//! ```
//! use clap::Parser;
//! use streambed_vault::args::SsArgs;
//!
//! let args = SsArgs::try_parse_from(["service", "--ss-role-id", "my-role"]).unwrap();
//! assert_eq!(args.ss_server.as_str(), "http://localhost:9876/");
//! assert_eq!(args.ss_max_secrets, 10_000);
//! ```

use std::path::PathBuf;

use clap::Parser;
use reqwest::Url;

/// Secret store settings; each flag can also be given as the upper-case environment
/// variable of its name (`SS_SERVER` for `--ss-server`).
#[derive(Parser, Clone, Debug)]
pub struct SsArgs {
    /// The longest a token is trusted before authenticating again, whatever lease the
    /// server advised: a guard against a server that does not honour its own leases.
    #[arg(env, long, default_value = "30m")]
    pub ss_max_lease_duration: humantime::Duration,

    /// How many secrets the cache holds at most; the least recently used go first.
    #[arg(env, long, default_value_t = 10_000)]
    pub ss_max_secrets: usize,

    /// The namespace of this service's secrets.
    #[arg(env, long, default_value = "default")]
    pub ss_ns: String,

    /// The AppRole role id this service authenticates with.
    #[arg(env, long)]
    pub ss_role_id: String,

    /// The URL of the secret store server.
    #[arg(env, long, default_value = "http://localhost:9876")]
    pub ss_server: Url,

    /// A PEM file with the certificate to trust for the server, such as its self-signed one.
    #[arg(env, long)]
    pub ss_server_cert_path: Option<PathBuf>,

    /// Trust the server's TLS certificate without verifying it.
    #[arg(env, long)]
    pub ss_server_insecure: bool,

    /// A secret field holding how long to cache the secret (a humantime string such as
    /// "1m"), used in place of the lease, which KV version 2 leaves at 0.
    #[arg(env, long)]
    pub ss_ttl_field: Option<String>,

    /// How long to wait before authenticating again after a failed attempt.
    #[arg(env, long, default_value = "1m")]
    pub ss_unauthenticated_timeout: humantime::Duration,

    /// How long a denied secret read is remembered before the server is asked again.
    #[arg(env, long, default_value = "1m")]
    pub ss_unauthorized_timeout: humantime::Duration,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_match_upstream() {
        let args = SsArgs::try_parse_from(["s", "--ss-role-id", "r"]).unwrap();
        assert_eq!(*args.ss_max_lease_duration, Duration::from_secs(30 * 60));
        assert_eq!(args.ss_max_secrets, 10_000);
        assert_eq!(args.ss_ns, "default");
        assert_eq!(args.ss_role_id, "r");
        assert_eq!(args.ss_server.as_str(), "http://localhost:9876/");
        assert_eq!(args.ss_server_cert_path, None);
        assert!(!args.ss_server_insecure);
        assert_eq!(args.ss_ttl_field, None);
        assert_eq!(*args.ss_unauthenticated_timeout, Duration::from_secs(60));
        assert_eq!(*args.ss_unauthorized_timeout, Duration::from_secs(60));
    }

    #[test]
    fn every_flag_is_read() {
        let args = SsArgs::try_parse_from([
            "s",
            "--ss-max-lease-duration=5m",
            "--ss-max-secrets=3",
            "--ss-ns=farm",
            "--ss-role-id=r",
            "--ss-server=https://vault:8200",
            "--ss-server-cert-path=/etc/vault.pem",
            "--ss-server-insecure",
            "--ss-ttl-field=ttl",
            "--ss-unauthenticated-timeout=2s",
            "--ss-unauthorized-timeout=3s",
        ])
        .unwrap();
        assert_eq!(*args.ss_max_lease_duration, Duration::from_secs(300));
        assert_eq!(args.ss_max_secrets, 3);
        assert_eq!(args.ss_ns, "farm");
        assert_eq!(args.ss_server.as_str(), "https://vault:8200/");
        assert_eq!(
            args.ss_server_cert_path,
            Some(PathBuf::from("/etc/vault.pem"))
        );
        assert!(args.ss_server_insecure);
        assert_eq!(args.ss_ttl_field.as_deref(), Some("ttl"));
        assert_eq!(*args.ss_unauthenticated_timeout, Duration::from_secs(2));
        assert_eq!(*args.ss_unauthorized_timeout, Duration::from_secs(3));
    }

    #[test]
    fn a_role_id_is_required() {
        assert!(SsArgs::try_parse_from(["s"]).is_err());
    }
}
