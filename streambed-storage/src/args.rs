//! Command-line arguments for services that keep state files; flatten them into a clap
//! parser.
//!
//! ```
//! use clap::Parser;
//! use streambed_storage::args::StateStorageArgs;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     state_storage_args: StateStorageArgs,
//! }
//!
//! let args = Args::parse_from(["service", "--state-storage-path", "/tmp/state"]);
//! assert_eq!(args.state_storage_args.state_storage_path.to_str(), Some("/tmp/state"));
//! assert_eq!(*args.state_storage_args.state_store_interval, std::time::Duration::from_secs(60));
//! ```

use std::path::PathBuf;

use clap::Parser;

/// Where a service keeps its state and how often it saves it.
#[derive(Parser, Debug, Clone)]
pub struct StateStorageArgs {
    /// A directory where the service may keep state files.
    #[arg(env, long, default_value = "/var/run")]
    pub state_storage_path: PathBuf,

    /// How long between saves of the service's state, e.g. `30s` or `5m`.
    #[arg(env, long, default_value = "1m")]
    pub state_store_interval: humantime::Duration,
}
