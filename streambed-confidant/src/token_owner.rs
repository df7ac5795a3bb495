//! Whose a user token is, for a service that receives the store's tokens from its own
//! clients (a server checking `Authorization: Bearer`) and must learn who is asking
//! without taking the client's token on as its own session, as `token_auth` does.

use std::time::{Duration, SystemTime};

use streambed::secret_store::Error;

use crate::{metered, secret_store::unauthorized, token, ConfidantError, FileSecretStore};

/// The user a valid token was issued for, and when it stops being valid.
///
/// ```
/// # use std::{os::unix::fs::PermissionsExt, time::{Duration, SystemTime}};
/// use streambed::secret_store::SecretStore;
/// use streambed_confidant::FileSecretStore;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let root = tempfile::tempdir().unwrap();
/// std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
/// let ss = FileSecretStore::new(root.path(), &[3; 16], Duration::from_secs(60), 100, None);
/// ss.userpass_create_update_user("ann", "ann", "pw").await.unwrap();
/// let token = ss.userpass_auth("ann", "pw").await.unwrap().auth.client_token;
/// let owner = ss.token_principal(&token).unwrap();
/// assert_eq!(owner.username, "ann");
/// assert!(owner.expires > SystemTime::now() + Duration::from_secs(6 * 24 * 60 * 60));
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenOwner {
    /// The user name the token was issued for.
    pub username: String,
    /// The last moment the token is accepted (to the millisecond).
    pub expires: SystemTime,
}

impl FileSecretStore {
    /// The user `token` was issued for, with the checks of
    /// [`token_auth`](streambed::secret_store::SecretStore::token_auth) (a private root
    /// directory, the signature under the root secret, the expiry), saying why when it is
    /// refused. Unlike `token_auth`, the store's own session is left as it is: a server
    /// asks this about its clients' tokens, each request's. No file is read.
    ///
    /// ```
    /// # use std::{os::unix::fs::PermissionsExt, time::Duration};
    /// use streambed_confidant::{ConfidantError, FileSecretStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    /// let ss = FileSecretStore::new(root.path(), &[3; 16], Duration::from_secs(60), 100, None);
    /// ss.try_userpass_create_update_user("bo", "bo", "pw").await.unwrap();
    /// let token = ss.try_userpass_auth("bo", "pw").await.unwrap().auth.client_token;
    /// let server = FileSecretStore::new(root.path(), &[3; 16], Duration::from_secs(60), 100, None);
    /// assert_eq!(server.try_token_principal(&token).unwrap().username, "bo");
    /// assert_eq!(server.authenticated_user(), None);
    /// assert!(matches!(
    ///     server.try_token_principal("not a token"),
    ///     Err(ConfidantError::AuthenticationFailed)
    /// ));
    /// # });
    /// ```
    pub fn try_token_principal(&self, token: &str) -> Result<TokenOwner, ConfidantError> {
        self.check_root()?;
        let claims = metered::failure(
            metered::AUTH_FAILURES,
            token::verify(token, SystemTime::now(), &self.shared.root_secret)
                .ok_or(ConfidantError::AuthenticationFailed),
        )?;
        Ok(TokenOwner {
            username: claims.username,
            expires: SystemTime::UNIX_EPOCH + Duration::from_millis(claims.expires),
        })
    }

    /// [`try_token_principal`](Self::try_token_principal) with the trait's error: every
    /// refusal is [`Error::Unauthorized`], its reason in the debug log.
    ///
    /// ```
    /// # use std::{os::unix::fs::PermissionsExt, time::Duration};
    /// use streambed::secret_store::Error;
    /// use streambed_confidant::FileSecretStore;
    ///
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    /// let ss = FileSecretStore::new(root.path(), &[3; 16], Duration::from_secs(60), 100, None);
    /// assert_eq!(ss.token_principal("e30="), Err(Error::Unauthorized));
    /// ```
    pub fn token_principal(&self, token: &str) -> Result<TokenOwner, Error> {
        self.try_token_principal(token).map_err(unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn store(root: &std::path::Path, secret: u8) -> FileSecretStore {
        FileSecretStore::new(root, &[secret; 16], Duration::from_secs(60), 10, None)
    }

    fn private_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        root
    }

    #[test]
    fn a_token_names_its_user_and_expiry_without_touching_the_session() {
        let root = private_root();
        let ss = store(root.path(), 1);
        let now = SystemTime::now();
        let token = token::issue("carol", now, Duration::from_secs(60), &[1; 16]);
        let owner = ss.try_token_principal(&token).unwrap();
        assert_eq!(owner.username, "carol");
        let expected =
            SystemTime::UNIX_EPOCH + Duration::from_millis(token::epoch_millis(now) + 60_000);
        assert_eq!(owner.expires, expected);
        assert_eq!(ss.authenticated_user(), None);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let root = private_root();
        let ss = store(root.path(), 1);
        let issued = SystemTime::now() - Duration::from_secs(120);
        let token = token::issue("carol", issued, Duration::from_secs(60), &[1; 16]);
        assert!(matches!(
            ss.try_token_principal(&token),
            Err(ConfidantError::AuthenticationFailed)
        ));
        assert_eq!(ss.token_principal(&token), Err(Error::Unauthorized));
    }

    #[test]
    fn a_token_signed_under_another_root_secret_is_refused() {
        let root = private_root();
        let token = token::issue(
            "carol",
            SystemTime::now(),
            Duration::from_secs(60),
            &[2; 16],
        );
        assert!(matches!(
            store(root.path(), 1).try_token_principal(&token),
            Err(ConfidantError::AuthenticationFailed)
        ));
    }

    #[test]
    fn a_root_open_to_others_refuses_even_a_valid_token() {
        let root = private_root();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let token = token::issue(
            "carol",
            SystemTime::now(),
            Duration::from_secs(60),
            &[1; 16],
        );
        assert!(matches!(
            store(root.path(), 1).try_token_principal(&token),
            Err(ConfidantError::InsecureRoot { .. })
        ));
    }
}
