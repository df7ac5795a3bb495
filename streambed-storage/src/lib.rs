//! Encrypted state files: a service saves a snapshot of its state, sealed with a key from
//! its secret store, and loads it again at start-up.
//!
//! A state file is the serialized state [sealed](streambed::seal) with the key at the
//! secret path: a salt followed by the AES-CTR ciphertext, the form of
//! [`streambed::encrypt_struct`].
//!
//! Saving goes through [`streambed::atomic_file`]: the new state goes to a temporary file
//! in the same directory, is flushed to disk, then renamed over the old file, and the
//! directory is flushed too. A crash leaves either the old state or the new one, never a
//! mix or a torn file.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use std::{collections::HashMap, os::unix::fs::PermissionsExt, time::Duration};
//! use streambed::secret_store::{SecretData, SecretStore};
//! use streambed_confidant::FileSecretStore;
//!
//! #[derive(Debug, Default, Deserialize, PartialEq, Serialize)]
//! struct Counters {
//!     seen: u64,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A secret store holding the key (any SecretStore will do).
//! let dir = tempfile::tempdir()?;
//! let secrets = dir.path().join("secrets");
//! std::fs::create_dir(&secrets)?;
//! std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700))?;
//! let ss = FileSecretStore::new(secrets, &[7; 16], Duration::from_secs(60), 10, None);
//! let key = "00112233445566778899aabbccddeeff".to_string();
//! let secret = SecretData { data: HashMap::from([("value".to_string(), key)]) };
//! ss.create_secret("default/secrets.counters.key", secret).await?;
//!
//! let path = dir.path().join("counters");
//! let secret_path = "default/secrets.counters.key";
//! let from_json = |bytes: &[u8]| serde_json::from_slice(bytes);
//! let mut counters: Counters =
//!     streambed_storage::load_struct(&path, &ss, secret_path, from_json).await?;
//! assert_eq!(counters, Counters::default());
//! counters.seen += 1;
//! streambed_storage::save_struct(&path, &ss, secret_path, serde_json::to_vec, rand::thread_rng, &counters)
//!     .await?;
//! let again: Counters = streambed_storage::load_struct(&path, &ss, secret_path, from_json).await?;
//! assert_eq!(again.seen, 1);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod args;

use std::{
    error::Error,
    path::{Path, PathBuf},
};

use log::warn;
use rand::RngCore;
use serde::{de::DeserializeOwned, Serialize};
use streambed::{
    atomic_file::{self, AtomicFileError, FileMode},
    get_secret_value,
    seal::{Key, ParseKeyError},
    secret_store::SecretStore,
};
use tokio::fs;

/// A state file could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Reading the state file failed for another reason than its absence.
    #[error("cannot read the state file {}: {source}", path.display())]
    Read {
        /// The file being read.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A state file exists but the key to open it cannot be read from the secret store
    /// (absent, or the store refused). Nothing is assumed about the state: starting from
    /// the default and saving would overwrite the real state once the key is back.
    #[error("cannot read the key at {secret_path} to open the state file {}", path.display())]
    KeyUnavailable {
        /// The state file.
        path: PathBuf,
        /// The secret path of the key.
        secret_path: String,
    },
    /// The secret at the secret path holds no key: its value is not 32 hex characters.
    /// Nothing was read or written.
    #[error("the secret at {secret_path} is not a key: {source}")]
    InvalidKey {
        /// The secret path of the key.
        secret_path: String,
        /// What is wrong with it.
        source: ParseKeyError,
    },
    /// The key at the secret path could not be read (absent or denied), or the state did
    /// not serialize; nothing was written.
    #[error("cannot encrypt the state with the key at {secret_path}: the key is missing or unreadable, or the state does not serialize")]
    CannotEncrypt {
        /// The secret path of the key.
        secret_path: String,
    },
    /// Writing the state file failed (the error names it and the failed step); the
    /// previous state file, if any, is unchanged.
    #[error("cannot save the state: {source}")]
    Write {
        /// The cause, naming the state file.
        #[from]
        source: AtomicFileError,
    },
    /// The runtime shut down before the write started; nothing was written.
    #[error("the write of the state file {} was abandoned: the runtime is shutting down", path.display())]
    Abandoned {
        /// The state file.
        path: PathBuf,
    },
}

/// Loads the state saved at `state_storage_path`, decrypted with the key at `secret_path`.
///
/// A missing file gives `T::default()`, as does a file that cannot be decrypted or
/// deserialized (logged as a warning): a service then starts afresh rather than not at
/// all. A key that cannot be read is [`StorageError::KeyUnavailable`] (or
/// [`StorageError::InvalidKey`] when the secret is no key) rather than a reason to start
/// afresh, since the state is probably fine and would be overwritten by the next save.
/// Other I/O errors, such as a permission problem, are [`StorageError::Read`].
pub async fn load_struct<T, D, DE>(
    state_storage_path: &Path,
    ss: &impl SecretStore,
    secret_path: &str,
    deserialize: D,
) -> Result<T, Box<dyn Error>>
where
    T: Default + DeserializeOwned,
    D: FnOnce(&[u8]) -> Result<T, DE>,
{
    let mut buf = match fs::read(state_storage_path).await {
        Ok(buf) => buf,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(error) => {
            return Err(Box::new(StorageError::Read {
                path: state_storage_path.to_path_buf(),
                source: error,
            }))
        }
    };
    let Some(key) = get_secret_value(ss, secret_path).await else {
        return Err(Box::new(StorageError::KeyUnavailable {
            path: state_storage_path.to_path_buf(),
            secret_path: secret_path.to_string(),
        }));
    };
    let key = parse_key(&key, secret_path)?;
    match key
        .open(&mut buf)
        .ok()
        .and_then(|plain| deserialize(plain).ok())
    {
        Some(state) => Ok(state),
        None => {
            warn!(
                "Cannot decrypt or deserialize the state at {} with the key at {secret_path}; starting from the default state",
                state_storage_path.display()
            );
            Ok(T::default())
        }
    }
}

/// Saves `state` at `state_storage_path`, serialized with `serialize` and encrypted with
/// the key at `secret_path`, atomically (see the [crate docs](crate)).
///
/// Unlike upstream, which silently skipped the save, a missing or unreadable key is an
/// error ([`StorageError::CannotEncrypt`], or [`StorageError::InvalidKey`] when the secret
/// is no key), so a service learns that its state is not being kept. A failed write is
/// [`StorageError::Write`] and leaves the previous file in place.
pub async fn save_struct<T, U, F, S, SE>(
    state_storage_path: &Path,
    ss: &impl SecretStore,
    secret_path: &str,
    serialize: S,
    rng: F,
    state: &T,
) -> Result<(), Box<dyn Error>>
where
    T: Serialize,
    S: FnOnce(&T) -> Result<Vec<u8>, SE>,
    F: FnOnce() -> U,
    U: RngCore,
{
    let cannot_encrypt = || StorageError::CannotEncrypt {
        secret_path: secret_path.to_string(),
    };
    let key = get_secret_value(ss, secret_path)
        .await
        .ok_or_else(cannot_encrypt)?;
    let key = parse_key(&key, secret_path)?;
    let plain = serialize(state).map_err(|_| cannot_encrypt())?;
    let sealed = key.seal(&plain, &mut rng());
    let path = state_storage_path.to_path_buf();
    // An fsync can take long on flash storage: keep it off the async threads.
    let written = tokio::task::spawn_blocking(move || {
        atomic_file::replace(&path, &sealed, FileMode::Default)
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Box::new(StorageError::from(e))),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Box::new(StorageError::Abandoned {
            path: state_storage_path.to_path_buf(),
        })),
    }
}

fn parse_key(hex: &str, secret_path: &str) -> Result<Key, StorageError> {
    Key::from_hex(hex).map_err(|source| StorageError::InvalidKey {
        secret_path: secret_path.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests;
