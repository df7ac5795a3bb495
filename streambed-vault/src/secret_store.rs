//! The [`SecretStore`] trait over the store's `try_` methods.
//!
//! The trait can only say [`Error::Unauthorized`]; the reason a call failed goes to the
//! debug log on the way, so it is not lost.

use async_trait::async_trait;
use log::debug;
use streambed::secret_store::{
    AppRoleAuthReply, Error, GetSecretReply, SecretData, SecretStore, UserPassAuthReply,
};

use crate::{VaultError, VaultSecretStore};

/// The trait's answer to a failed `call` on `subject`: the reason logged, then
/// [`Error::Unauthorized`].
fn refused<'a>(call: &'a str, subject: &'a str) -> impl FnOnce(VaultError) -> Error + 'a {
    move |error| {
        debug!("Secret store {call} of {subject} failed: {error}");
        Error::Unauthorized
    }
}

#[async_trait]
impl SecretStore for VaultSecretStore {
    /// Logs in with an AppRole and uses the token granted from then on. Any failure is
    /// [`Error::Unauthorized`]; [`try_approle_auth`](Self::try_approle_auth) tells why.
    async fn approle_auth(
        &self,
        role_id: &str,
        secret_id: &str,
    ) -> Result<AppRoleAuthReply, Error> {
        let login = self.try_approle_auth(role_id, secret_id).await;
        login.map_err(refused("AppRole login", role_id))
    }

    /// Writes the secret (KV version 2, `v1/secret/data/<path>`).
    async fn create_secret(&self, secret_path: &str, secret_data: SecretData) -> Result<(), Error> {
        let written = self.try_create_secret(secret_path, secret_data).await;
        written.map_err(refused("write", secret_path))
    }

    /// Reads the secret, from the cache when fresh. A denied read is
    /// [`Error::Unauthorized`]; an absent secret, an unreadable answer or a server given up
    /// on is `Ok(None)` ([`try_get_secret`](Self::try_get_secret) tells them apart).
    async fn get_secret(&self, secret_path: &str) -> Result<Option<GetSecretReply>, Error> {
        match self.try_get_secret(secret_path).await {
            Ok(secret) => Ok(secret),
            Err(VaultError::Unauthorized) => Err(Error::Unauthorized),
            Err(error) => {
                debug!("Cannot read secret {secret_path}: {error}");
                Ok(None)
            }
        }
    }

    /// Checks the token with the server (`v1/auth/token/lookup-self`) and uses it from
    /// then on.
    async fn token_auth(&self, token: &str) -> Result<(), Error> {
        let adopted = self.try_token_auth(token).await;
        adopted.map_err(refused("token login", "a token"))
    }

    /// Logs in as a user and uses the token granted from then on.
    async fn userpass_auth(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserPassAuthReply, Error> {
        let login = self.try_userpass_auth(username, password).await;
        login.map_err(refused("user login", username))
    }

    /// Creates the user `current_username` or sets its password, with the one request of
    /// the original; see
    /// [`try_userpass_create_update_user`](Self::try_userpass_create_update_user). To
    /// rename a user, use [`rename_user`](Self::rename_user).
    async fn userpass_create_update_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), Error> {
        let updated = self
            .try_userpass_create_update_user(current_username, username, password)
            .await;
        updated.map_err(refused("user create or update", current_username))
    }
}
