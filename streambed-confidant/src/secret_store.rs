//! The [`SecretStore`] trait over the store's `try_` methods.
//!
//! The trait can only say [`Error::Unauthorized`]; the reason a call failed goes to the
//! debug log on the way, so it is not lost.

use async_trait::async_trait;
use streambed::secret_store::{
    AppRoleAuthReply, AuthToken, Error, GetSecretReply, SecretData, SecretStore, UserPassAuthReply,
};

use crate::{ConfidantError, FileSecretStore};

/// The token answered by AppRole logins, which this store does not need.
const APPROLE_TOKEN: &str = "some-token";

/// The trait's answer to a failed call: the reason logged, then [`Error::Unauthorized`].
pub(crate) fn unauthorized(e: ConfidantError) -> Error {
    log::debug!("secret store call refused: {e}");
    Error::Unauthorized
}

#[async_trait]
impl SecretStore for FileSecretStore {
    /// Always succeeds while the root directory is private: the operating system user
    /// is the service's identity. The token answered is not needed for later calls.
    async fn approle_auth(
        &self,
        _role_id: &str,
        _secret_id: &str,
    ) -> Result<AppRoleAuthReply, Error> {
        self.check_root().map_err(unauthorized)?;
        self.set_session(None);
        Ok(AppRoleAuthReply {
            auth: AuthToken {
                client_token: APPROLE_TOKEN.to_string(),
                lease_duration: u64::MAX,
            },
        })
    }

    async fn create_secret(&self, secret_path: &str, secret_data: SecretData) -> Result<(), Error> {
        let written = self.try_create_secret(secret_path, secret_data).await;
        written.map_err(unauthorized)
    }

    /// Reads the secret, from the cache when fresh. A path the store can never hold
    /// (see [`streambed::secret_path`]) is absent, `Ok(None)`, as with the Vault store.
    async fn get_secret(&self, secret_path: &str) -> Result<Option<GetSecretReply>, Error> {
        match self.try_get_secret(secret_path).await {
            Err(ConfidantError::InvalidName(e)) => {
                log::debug!("secret store read of an impossible path: {e}");
                Ok(None)
            }
            read => read.map_err(unauthorized),
        }
    }

    /// Accepts a token issued by [`userpass_auth`](SecretStore::userpass_auth) of any
    /// store with the same root secret, until it expires.
    async fn token_auth(&self, token: &str) -> Result<(), Error> {
        let owner = self.token_principal(token)?;
        self.set_session(Some(owner.username));
        Ok(())
    }

    /// Checks the password against the user's stored hash and answers a token valid for
    /// 7 days; see [`try_userpass_auth`](FileSecretStore::try_userpass_auth).
    async fn userpass_auth(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserPassAuthReply, Error> {
        let login = self.try_userpass_auth(username, password).await;
        login.map_err(unauthorized)
    }

    /// Stores `username`'s salted password hash, as the original does; see [`try_userpass_create_update_user`](FileSecretStore::try_userpass_create_update_user).
    async fn userpass_create_update_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), Error> {
        let stored = self
            .try_userpass_create_update_user(current_username, username, password)
            .await;
        stored.map_err(unauthorized)
    }
}
