//! A way in to the private token and secret-file codecs for the fuzz targets under
//! `fuzz/`, compiled only with the `fuzzing` feature so that normal builds carry no extra
//! public surface.

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use streambed::{
    crypto::{KEY_SIZE, SALT_SIZE},
    secret_store::SecretData,
};

use crate::{storage, token, ConfidantError};

/// Issues a user token, as a login does.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use streambed_confidant::fuzzing::{issue_token, verify_token};
///
/// let now = SystemTime::now();
/// let token = issue_token("ann", now, Duration::from_secs(60), &[1; 16]);
/// assert_eq!(verify_token(&token, now, &[1; 16]).as_deref(), Some("ann"));
/// ```
pub fn issue_token(
    username: &str,
    now: SystemTime,
    lifetime: Duration,
    root_secret: &[u8; KEY_SIZE],
) -> String {
    token::issue(username, now, lifetime, root_secret)
}

/// Checks a user token at `now`, answering the user name it carries when it is valid.
///
/// ```
/// use std::time::SystemTime;
///
/// let verified = streambed_confidant::fuzzing::verify_token("e30=", SystemTime::now(), &[1; 16]);
/// assert_eq!(verified, None);
/// ```
pub fn verify_token(token: &str, now: SystemTime, root_secret: &[u8; KEY_SIZE]) -> Option<String> {
    token::verify(token, now, root_secret).map(|claims| claims.username)
}

/// Encodes and encrypts a secret into the bytes of its file.
///
/// ```
/// use streambed::secret_store::SecretData;
/// use streambed_confidant::fuzzing::{open_secret_file, seal_secret_file};
///
/// let secret = SecretData { data: [("value".to_owned(), "s".to_owned())].into() };
/// let bytes = seal_secret_file(&secret, &[1; 16], &[2; 12]).unwrap();
/// assert_eq!(open_secret_file(bytes, &[1; 16]).unwrap(), secret);
/// ```
pub fn seal_secret_file(
    secret_data: &SecretData,
    root_secret: &[u8; KEY_SIZE],
    salt: &[u8; SALT_SIZE],
) -> Result<Vec<u8>, postcard::Error> {
    storage::encode(secret_data, root_secret, salt)
}

/// Decrypts and decodes the bytes of a secret file.
///
/// ```
/// let opened = streambed_confidant::fuzzing::open_secret_file(vec![0; 5], &[1; 16]);
/// assert!(opened.is_err());
/// ```
pub fn open_secret_file(
    bytes: Vec<u8>,
    root_secret: &[u8; KEY_SIZE],
) -> Result<SecretData, ConfidantError> {
    storage::decode(bytes, root_secret, Path::new("fuzz-input"))
}
