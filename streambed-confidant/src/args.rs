//! Command-line and environment arguments that services commonly take to set up a
//! [`FileSecretStore`](crate::FileSecretStore).

use std::path::PathBuf;

use clap::Parser;

/// Secret store settings, from `--ss-…` options or `SS_…` environment variables.
///
/// ```
/// use clap::Parser;
/// use streambed_confidant::args::SsArgs;
///
/// #[derive(Parser)]
/// struct Args {
///     #[clap(flatten)]
///     ss_args: SsArgs,
/// }
///
/// let args = Args::parse_from(["service", "--ss-role-id", "my-service"]);
/// assert_eq!(args.ss_args.ss_root_path.to_str(), Some("/var/lib/confidant"));
/// assert_eq!(args.ss_args.ss_max_secrets, 10_000);
/// ```
#[derive(Parser, Debug)]
pub struct SsArgs {
    /// The most secrets to keep in the cache at once; the least recently used are
    /// forgotten beyond that.
    #[clap(env, long, default_value_t = 10_000)]
    pub ss_max_secrets: usize,

    /// The namespace that prefixes this service's secret paths.
    #[clap(env, long, default_value = "default")]
    pub ss_ns: String,

    /// The role id with which the service authenticates (AppRole).
    #[clap(env, long)]
    pub ss_role_id: String,

    /// The directory holding the secrets. It must grant no access to group or other
    /// users (for example mode 700); use ACLs to grant individual processes access.
    #[clap(env, long, default_value = "/var/lib/confidant")]
    pub ss_root_path: PathBuf,

    /// A data field of each secret that holds how long it may be cached, as a humantime
    /// duration such as "1m" or "60m". Without it, or when a secret lacks the field, a
    /// secret is cached for 5 minutes.
    #[clap(env, long)]
    pub ss_ttl_field: Option<String>,

    /// How long a refused or absent secret is remembered before its file is read again.
    #[clap(env, long, default_value = "1m")]
    pub ss_unauthorized_timeout: humantime::Duration,
}
