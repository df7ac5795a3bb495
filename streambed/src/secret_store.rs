//! The secret store model: named secrets, read and written by authenticated clients, each
//! read granted for a lease.
//!
//! The model is that of [HashiCorp Vault](https://developer.hashicorp.com/vault) (and its
//! open fork OpenBao). A service first *authenticates*: with an AppRole (a role id that
//! names the service and a secret id that proves it), with a user name and password, or
//! with a token it already holds. Authentication yields a token with a *lease*: a number
//! of seconds after which it must authenticate again (see
//! [`reauthenticate_secret_store`](crate::reauthenticate_secret_store)). A secret lives at
//! a path, such as `default/secrets.key`, and holds a map of string fields; by convention
//! an encryption key is the hex field `"value"`. Each secret read comes with a lease too,
//! telling how long the value may be cached. Policies on the server decide which paths a
//! token may read; a denied read is [`Error::Unauthorized`].
//!
//! The [`SecretStore`] trait is what every backend implements: a client of the Vault HTTP
//! API (`streambed-vault`), an encrypted file-system store for devices without a server
//! (`streambed-confidant`), or a test double.
//!
//! ```
//! use std::collections::HashMap;
//! use streambed::secret_store::{GetSecretReply, SecretData};
//!
//! let reply: GetSecretReply = serde_json::from_str(
//!     r#"{"lease_duration":300,"data":{"data":{"value":"00112233445566778899aabbccddeeff"}}}"#,
//! ).unwrap();
//! assert_eq!(reply.lease_duration, 300);
//! assert_eq!(reply.data.data.get("value").map(String::len), Some(32));
//! ```

use std::{collections::HashMap, fmt};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The reply to an AppRole login.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct AppRoleAuthReply {
    /// The token granted and its lease.
    pub auth: AuthToken,
}

/// A token granted by a login, and how long it lasts.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct AuthToken {
    /// The token to present on later calls.
    pub client_token: String,
    /// Seconds the token stays valid; 0 means it does not expire.
    pub lease_duration: u64,
}

/// The fields of a secret.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct SecretData {
    /// The secret's fields by name.
    pub data: HashMap<String, String>,
}

/// The reply to a secret read.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct GetSecretReply {
    /// Seconds the secret may be cached for.
    pub lease_duration: u64,
    /// The secret's fields.
    pub data: SecretData,
}

/// The reply to a user name and password login.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct UserPassAuthReply {
    /// The token granted and its lease.
    pub auth: AuthToken,
}

/// A secret store refused a call.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Error {
    /// The caller is not authenticated, or its token does not grant the call.
    Unauthorized,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unauthorized => f.write_str("unauthorized"),
        }
    }
}

impl std::error::Error for Error {}

/// A store of secrets with Vault's model of authentication, policies and leases.
///
/// Implementations are cheap to clone and clones share their authentication state: a
/// token gained through one clone serves all of them.
///
/// ```
/// use streambed::secret_store::SecretStore;
///
/// // Reads a secret's "value" field, treating absence and denial alike.
/// async fn key_of(ss: &impl SecretStore, path: &str) -> Option<String> {
///     let reply = ss.get_secret(path).await.ok()??;
///     reply.data.data.get("value").cloned()
/// }
/// ```
#[async_trait]
pub trait SecretStore: Clone + Send + Sync {
    /// Authenticates with an AppRole, adopting the granted token for later calls.
    async fn approle_auth(&self, role_id: &str, secret_id: &str)
        -> Result<AppRoleAuthReply, Error>;

    /// Creates or replaces the secret at a path.
    async fn create_secret(&self, secret_path: &str, secret_data: SecretData) -> Result<(), Error>;

    /// Reads the secret at a path: `Ok(None)` when it is absent or cannot be read.
    async fn get_secret(&self, secret_path: &str) -> Result<Option<GetSecretReply>, Error>;

    /// Adopts a token for later calls once the store has confirmed it is valid.
    async fn token_auth(&self, token: &str) -> Result<(), Error>;

    /// Authenticates with a user name and password, adopting the granted token.
    async fn userpass_auth(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserPassAuthReply, Error>;

    /// Creates a user, or changes the name or password of one. `current_username` names
    /// the user to update; it equals `username` when no rename is intended.
    async fn userpass_create_update_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_reply_reads_vault_json() {
        let reply: AppRoleAuthReply =
            serde_json::from_str(r#"{"auth":{"client_token":"hvs.abc","lease_duration":2764800}}"#)
                .unwrap();
        assert_eq!(
            reply,
            AppRoleAuthReply {
                auth: AuthToken {
                    client_token: "hvs.abc".to_string(),
                    lease_duration: 2764800
                }
            }
        );
    }

    #[test]
    fn error_displays_its_meaning() {
        assert_eq!(Error::Unauthorized.to_string(), "unauthorized");
    }
}
