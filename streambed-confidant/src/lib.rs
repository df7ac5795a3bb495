//! An encrypted, file-system based [`SecretStore`](streambed::secret_store::SecretStore):
//! secrets for services on devices that run no Vault server.
//!
//! Each secret is one file below a root directory, encrypted under a root secret (a
//! 16-byte key the service receives from outside, e.g. through systemd credentials). The
//! operating system is the authority: the root directory must grant no access to group or
//! other users, and whoever can read it may use every secret, so AppRole logins always
//! succeed. User names and passwords are stored as salted hashes, and a user login yields
//! a signed token that any store holding the same root secret accepts.
//!
//! Files and tokens are interchangeable with those of the original streambed-confidant.
//! Beyond it, this store replaces files atomically (a crash never leaves a torn secret),
//! keeps secret paths and user names inside the root, compares password hashes in
//! constant time, reports corrupt files as errors, and reads a secret once however many
//! tasks ask for it at the same moment.
//!
//! ```
//! # use std::{collections::HashMap, os::unix::fs::PermissionsExt, time::Duration};
//! use streambed::secret_store::{SecretData, SecretStore};
//! use streambed_confidant::FileSecretStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let root = tempfile::tempdir().unwrap();
//! std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
//!
//! let ss = FileSecretStore::new(root.path(), &[7; 16], Duration::from_secs(60), 100, Some("ttl"));
//! ss.approle_auth("my-service", "ignored").await.unwrap();
//!
//! let data = HashMap::from([("value".to_string(), "00112233445566778899aabbccddeeff".to_string())]);
//! ss.create_secret("default/secrets.key", SecretData { data }).await.unwrap();
//! let reply = ss.get_secret("default/secrets.key").await.unwrap().unwrap();
//! assert_eq!(reply.lease_duration, 300); // no "ttl" field: five minutes
//! # });
//! ```

#![warn(missing_docs)]

pub mod args;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod metered;
mod names;
mod secret_store;
mod secrets;
mod storage;
mod store;
mod token;
mod token_owner;
mod users;

pub use error::ConfidantError;
pub use store::FileSecretStore;
/// How many reads the cache answered itself, how many read a secret's file (concurrent
/// misses of one secret share one read), and how many answers it holds; see
/// [`FileSecretStore::cache_stats`].
pub use streambed::secret_cache::CacheStats;
pub use token_owner::TokenOwner;
