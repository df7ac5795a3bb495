//! Command-line arguments that services using a [`FileLog`](crate::FileLog) commonly take.

use std::path::PathBuf;

use clap::Parser;

/// Where the commit log lives and which namespace a service uses in it.
///
/// Each argument can also come from the environment variable of the same name in upper
/// case (`CL_NS`, `CL_ROOT_PATH`).
///
/// ```
/// use clap::Parser;
/// use streambed_logged::args::CommitLogArgs;
///
/// let args = CommitLogArgs::parse_from(["service", "--cl-root-path", "/tmp/logged"]);
/// assert_eq!(args.cl_ns, "default");
/// assert_eq!(args.cl_root_path, std::path::PathBuf::from("/tmp/logged"));
/// ```
#[derive(Clone, Debug, Parser)]
pub struct CommitLogArgs {
    /// A namespace to use when communicating with the commit log.
    #[clap(env, long, default_value = "default")]
    pub cl_ns: String,

    /// The folder holding every topic of the commit log.
    #[clap(env, long, default_value = "/var/lib/logged")]
    pub cl_root_path: PathBuf,
}
