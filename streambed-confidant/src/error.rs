//! Why a call on a [`FileSecretStore`](crate::FileSecretStore) failed.
//!
//! The [`SecretStore`](streambed::secret_store::SecretStore) trait can only say
//! `Unauthorized`; the `try_` methods of the store give one of these instead.

use std::{io, path::PathBuf, sync::Arc};

use streambed::secret_path::SecretPathError;

/// A detailed reason for a refused or failed call.
///
/// Clonable so that one failed file read can answer every caller that waited for it
/// (I/O errors are shared through an `Arc` for that reason).
///
/// ```
/// use streambed_confidant::ConfidantError;
///
/// let e = ConfidantError::InsecureRoot { mode: 0o755 };
/// assert!(e.to_string().contains("755"));
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfidantError {
    /// The root directory grants group or other users some access.
    #[error("the root directory has mode {mode:o}: group and other users must have no access")]
    InsecureRoot {
        /// The directory's permission bits.
        mode: u32,
    },
    /// The root directory could not be examined, or is not a directory.
    #[error("the root directory {path} is unusable: {source}")]
    RootUnavailable {
        /// The root directory.
        path: PathBuf,
        /// What went wrong.
        source: Arc<io::Error>,
    },
    /// A secret path or user name breaks the rules of [`streambed::secret_path`]; no file
    /// was touched.
    #[error(transparent)]
    InvalidName(#[from] SecretPathError),
    /// Reading or writing a secret's file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. `"read"`.
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        source: Arc<io::Error>,
    },
    /// A secret file is shorter than its salt, larger than secrets may be, does not decode,
    /// or has an unknown version.
    #[error("the secret file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A user name and password, or a token, were not accepted.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A background file operation stopped before answering (the runtime is shutting
    /// down).
    #[error("the file operation was abandoned")]
    Abandoned,
}

impl ConfidantError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ConfidantError::Io {
            action,
            path: path.into(),
            source: Arc::new(source),
        }
    }
}
