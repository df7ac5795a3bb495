//! Managing userpass users: the original's create-or-update call, byte for byte on the
//! wire, and a rename that the original never offered.
//!
//! Services written against the original expect `userpass_create_update_user` to send
//! exactly its one request, so anything more (carrying settings over, deleting the old
//! name) is a separate method that callers choose.

use reqwest::StatusCode;
use serde::Serialize;
use streambed::secret_path::UserName;

use crate::{
    call::{Counted, Reply},
    outcome::accepted,
    VaultError, VaultSecretStore,
};

/// Where the userpass method keeps its users.
const USERS: [&str; 4] = ["v1", "auth", "userpass", "users"];

/// The body of the original's create-or-update request, fields in its order.
#[derive(Serialize)]
struct CreateUpdate<'a> {
    username: &'a str,
    password: &'a str,
}

impl VaultSecretStore {
    /// [`SecretStore::userpass_create_update_user`](streambed::secret_store::SecretStore::userpass_create_update_user)
    /// with the reason of a failure.
    ///
    /// Sends what the original sends: one `POST v1/auth/userpass/users/<current_username>`
    /// with `{"username": username, "password": password}`. The server creates the user
    /// `current_username` or sets its password; Vault and OpenBao take the user from the
    /// path, so a different `username` renames nothing (see
    /// [`rename_user`](Self::rename_user) for that). Both names must follow the rules of
    /// [`streambed::secret_path`], else the answer is [`VaultError::InvalidInput`] and
    /// nothing is sent.
    pub async fn try_userpass_create_update_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), VaultError> {
        let current = UserName::parse(current_username)?;
        UserName::parse(username)?;
        let url = self.config.calls.url(&USERS, [current.as_str()])?;
        let counted = Counted {
            requests: "ss_userpass_create_updates",
            label: "userpass_create_update",
            value: username,
        };
        let body = CreateUpdate { username, password };
        let reply = self
            .send_with_token(&counted, |client| client.post(url.clone()).json(&body))
            .await?;
        accepted(&reply, &counted)
    }

    /// Renames the user `current_username` to `username` with the password `password`,
    /// or creates `username` when there is no `current_username`; with equal names, only
    /// sets the password.
    ///
    /// A rename is three requests: read `current_username`'s settings, create `username`
    /// with its token settings (policies, TTLs and other `token_*` fields) and the new
    /// password, then delete `current_username`. They are not atomic: if the deletion
    /// fails, both users exist and the call fails. Counted like
    /// [`try_userpass_create_update_user`](Self::try_userpass_create_update_user).
    ///
    /// ```no_run
    /// # async fn run(ss: streambed_vault::VaultSecretStore) -> Result<(), streambed_vault::VaultError> {
    /// ss.rename_user("john", "johnny", "johnny-pass").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn rename_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), VaultError> {
        let current = UserName::parse(current_username)?;
        let user = UserName::parse(username)?;
        let target = self.config.calls.url(&USERS, [user.as_str()])?;
        let counted = Counted {
            requests: "ss_userpass_create_updates",
            label: "userpass_create_update",
            value: username,
        };
        let mut settings = serde_json::Map::new();
        let current = if current != user {
            let current = self.config.calls.url(&USERS, [current.as_str()])?;
            let reply = self
                .send_with_token(&counted, |client| client.get(current.clone()))
                .await?;
            if reply.status == StatusCode::NOT_FOUND {
                // No such user: create the new one.
                None
            } else {
                accepted(&reply, &counted)?;
                settings = user_settings(&reply)?;
                Some(current)
            }
        } else {
            None
        };
        settings.insert("password".to_string(), password.into());
        let body = serde_json::Value::Object(settings);
        let reply = self
            .send_with_token(&counted, |client| client.post(target.clone()).json(&body))
            .await?;
        accepted(&reply, &counted)?;
        if let Some(current) = current {
            let reply = self
                .send_with_token(&counted, |client| client.delete(current.clone()))
                .await?;
            accepted(&reply, &counted)?;
        }
        Ok(())
    }
}

/// The settings of a user as read, in the form that creates one like it: the current
/// `token_*` fields, without the deprecated aliases a write would reject alongside them.
fn user_settings(reply: &Reply) -> Result<serde_json::Map<String, serde_json::Value>, VaultError> {
    #[derive(serde::Deserialize)]
    struct User {
        data: serde_json::Map<String, serde_json::Value>,
    }
    let user: User = serde_json::from_slice(&reply.body)
        .map_err(|e| VaultError::InvalidReply(format!("user answer: {e}")))?;
    Ok(user
        .data
        .into_iter()
        .filter(|(field, _)| field.starts_with("token_"))
        .collect())
}
