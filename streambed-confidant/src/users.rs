//! Users: salted password hashes kept as secrets, logins that answer signed tokens, and
//! password changes and renames.
//!
//! A user is the secret `auth/userpass/users/<name>` holding the hex of a salted hash of
//! the password, as the original keeps it; the token a login answers is checked by
//! [`token`](crate::token) without any file access.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use streambed::{
    crypto::{self, SALT_SIZE},
    secret_path::{SecretPath, UserName},
    secret_store::{AuthToken, SecretData, UserPassAuthReply},
};
use subtle::ConstantTimeEq;

use crate::{metered, names, token, ConfidantError, FileSecretStore};

/// How long a user's token stays valid: 7 days.
const USERPASS_LEASE_TIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The secret field holding a user's hashed password.
const PASSWORD_FIELD: &str = "password";

impl FileSecretStore {
    /// Logs in like [`userpass_auth`](streambed::secret_store::SecretStore::userpass_auth),
    /// saying why when it fails: checks the password against the user's stored hash (in
    /// constant time, and as costly for an unknown user) and answers a token valid for 7
    /// days, which any store with the same root secret accepts.
    ///
    /// ```
    /// # use std::{os::unix::fs::PermissionsExt, time::Duration};
    /// use streambed_confidant::{ConfidantError, FileSecretStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    /// let ss = FileSecretStore::new(root.path(), &[0; 16], Duration::from_secs(60), 100, None);
    /// ss.try_userpass_create_update_user("ann", "ann", "pw").await.unwrap();
    /// let login = ss.try_userpass_auth("ann", "pw").await.unwrap();
    /// assert_eq!(login.auth.lease_duration, 7 * 24 * 60 * 60);
    /// assert!(matches!(
    ///     ss.try_userpass_auth("ann", "wrong").await,
    ///     Err(ConfidantError::AuthenticationFailed)
    /// ));
    /// # });
    /// ```
    pub async fn try_userpass_auth(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserPassAuthReply, ConfidantError> {
        let user = UserName::parse(username)?;
        let stored = self
            .try_get_secret(&names::user_record(user))
            .await?
            .and_then(|reply| reply.data.data.get(PASSWORD_FIELD).cloned())
            .and_then(|hex_hash| hex::decode(hex_hash).ok())
            .filter(|hash| hash.len() > SALT_SIZE);
        // An unknown user costs a hash too, so timing does not tell which users exist.
        let (salt, expected) = match &stored {
            Some(hash) => {
                let mut salt = [0; SALT_SIZE];
                salt.copy_from_slice(&hash[..SALT_SIZE]);
                (salt, hash.as_slice())
            }
            None => ([0; SALT_SIZE], &[][..]),
        };
        let offered = crypto::hash(password.as_bytes(), &salt);
        if stored.is_none() || !bool::from(offered.ct_eq(expected)) {
            return metered::failure(
                metered::AUTH_FAILURES,
                Err(ConfidantError::AuthenticationFailed),
            );
        }
        let client_token = token::issue(
            username,
            SystemTime::now(),
            USERPASS_LEASE_TIME,
            &self.shared.root_secret,
        );
        self.set_session(Some(username.to_string()));
        Ok(UserPassAuthReply {
            auth: AuthToken {
                client_token,
                lease_duration: USERPASS_LEASE_TIME.as_secs(),
            },
        })
    }

    /// Stores a user's salted password hash like
    /// [`userpass_create_update_user`](streambed::secret_store::SecretStore::userpass_create_update_user),
    /// saying why when it fails. As the original does, the user written is `username`;
    /// `current_username` (the caller's own name, say) is only checked, and no other user
    /// is touched. [`rename_user`](Self::rename_user) renames. Both names must follow the
    /// rules of [`streambed::secret_path`].
    ///
    /// ```
    /// # use std::{os::unix::fs::PermissionsExt, time::Duration};
    /// use streambed_confidant::{ConfidantError, FileSecretStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    /// let ss = FileSecretStore::new(root.path(), &[0; 16], Duration::from_secs(60), 100, None);
    /// ss.try_userpass_create_update_user("admin", "anne", "pw").await.unwrap();
    /// assert!(ss.try_userpass_auth("anne", "pw").await.is_ok());
    /// assert!(matches!(
    ///     ss.try_userpass_create_update_user("admin", "../anne", "pw").await,
    ///     Err(ConfidantError::InvalidName(_))
    /// ));
    /// # });
    /// ```
    pub async fn try_userpass_create_update_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), ConfidantError> {
        UserName::parse(current_username)?;
        self.store_password(UserName::parse(username)?, password)
            .await
    }

    /// Renames the user `current_username` to `username` with the password `password`:
    /// the new name is stored first, then the old one removed, so it no longer logs in.
    /// With equal names, only sets the password. A crash between the two steps leaves
    /// both names able to log in, never neither.
    ///
    /// ```
    /// # use std::{os::unix::fs::PermissionsExt, time::Duration};
    /// use streambed_confidant::FileSecretStore;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    /// let ss = FileSecretStore::new(root.path(), &[0; 16], Duration::from_secs(60), 100, None);
    /// ss.try_userpass_create_update_user("ann", "ann", "pw").await.unwrap();
    /// ss.rename_user("ann", "anne", "new-pw").await.unwrap();
    /// assert!(ss.try_userpass_auth("anne", "new-pw").await.is_ok());
    /// assert!(ss.try_userpass_auth("ann", "pw").await.is_err());
    /// # });
    /// ```
    pub async fn rename_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), ConfidantError> {
        let current = UserName::parse(current_username)?;
        let user = UserName::parse(username)?;
        self.store_password(user, password).await?;
        if current != user {
            let record = names::user_record(current);
            self.remove_secret(SecretPath::parse(&record)?).await?;
        }
        Ok(())
    }

    /// Stores `user`'s password as the hex of a freshly salted hash.
    async fn store_password(
        &self,
        user: UserName<'_>,
        password: &str,
    ) -> Result<(), ConfidantError> {
        let salt = crypto::salt(&mut rand::thread_rng());
        let hash = crypto::hash(password.as_bytes(), &salt);
        let data = HashMap::from([(PASSWORD_FIELD.to_string(), hex::encode(hash))]);
        self.try_create_secret(&names::user_record(user), SecretData { data })
            .await
    }
}
