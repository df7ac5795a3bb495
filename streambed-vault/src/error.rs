//! Why a call to the secret store failed, in more detail than the
//! [`SecretStore`](streambed::secret_store::SecretStore) trait can report.

use std::sync::Arc;

use streambed::{secret_path::SecretPathError, secret_store};

/// Why a call to the secret store failed.
///
/// The [`SecretStore`](streambed::secret_store::SecretStore) methods of
/// [`VaultSecretStore`](crate::VaultSecretStore) can only say
/// [`Unauthorized`](secret_store::Error::Unauthorized); its `try_` methods return this
/// instead.
///
/// ```
/// use streambed_vault::VaultError;
///
/// let error = VaultError::Status { status: 400, message: "missing client token".into() };
/// assert_eq!(error.to_string(), "the secret store answered 400: missing client token");
/// assert_eq!(
///     streambed::secret_store::Error::from(error),
///     streambed::secret_store::Error::Unauthorized,
/// );
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The server refused: not authenticated, bad credentials, or a policy denies the path.
    #[error("the secret store denied the request")]
    Unauthorized,
    /// The server could not be reached, or failed (5xx, 429, timeout), on every try allowed.
    #[error("the secret store is unavailable: {0}")]
    Unavailable(String),
    /// The server answered with a status that is neither success nor denial.
    #[error("the secret store answered {status}: {message}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The server's error messages, or the start of its answer.
        message: String,
    },
    /// The server's answer is not what its API promises.
    #[error("the secret store's answer cannot be read: {0}")]
    InvalidReply(String),
    /// A secret path or user name breaks the rules of [`streambed::secret_path`]; nothing
    /// was sent.
    #[error(transparent)]
    InvalidInput(#[from] SecretPathError),
    /// The server URL cannot have the API's path appended (such as a `mailto:` URL).
    #[error("the server URL {0} cannot carry an API path")]
    InvalidServerUrl(String),
    /// An API path component is empty, `.` or `..`, which would name another path;
    /// nothing was sent. (Secret paths and user names are checked before, by
    /// [`streambed::secret_path`].)
    #[error("{0:?} cannot be an API path segment: empty, \".\" and \"..\" are refused")]
    InvalidPathSegment(String),
    /// TLS refused the server's certificate (not trusted, expired, for another name...):
    /// no retry cures that, so the call fails at once. Holds the URL and why.
    #[error("the secret store's TLS certificate was refused: {0}")]
    Certificate(String),
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[source] Arc<reqwest::Error>),
}

impl From<VaultError> for secret_store::Error {
    /// Every failure is [`Unauthorized`](secret_store::Error::Unauthorized), the only error
    /// the trait knows.
    fn from(_: VaultError) -> Self {
        secret_store::Error::Unauthorized
    }
}
