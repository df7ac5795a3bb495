//! Getting a token: AppRole and userpass logins, and adopting a token given from outside.
//!
//! Each way ends the same: the token is adopted by the session, which keeps its cache only
//! when the identity is the same as before.

use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::json;
use streambed::{
    secret_path::UserName,
    secret_store::{AppRoleAuthReply, AuthToken, UserPassAuthReply},
};

use crate::{
    call::Counted,
    outcome::{accepted, denied},
    VaultError, VaultSecretStore,
};

impl VaultSecretStore {
    /// Logs in at `url` with `body` and adopts the token granted.
    async fn login<R: DeserializeOwned>(
        &self,
        url: Url,
        body: serde_json::Value,
        counted: Counted<'_>,
        identity: String,
        token_of: impl Fn(&R) -> &AuthToken,
    ) -> Result<R, VaultError> {
        let client = &self.config.calls.client;
        let reply = self
            .config
            .calls
            .send(&counted, || client.post(url.clone()).json(&body))
            .await?;
        // Vault answers bad credentials with 400, a denied role with 403.
        if reply.status == StatusCode::BAD_REQUEST {
            return Err(denied(&reply, &counted));
        }
        accepted(&reply, &counted)?;
        let login: R = serde_json::from_slice(&reply.body)
            .map_err(|e| VaultError::InvalidReply(format!("login answer: {e}")))?;
        self.session.adopt(&token_of(&login).client_token, identity);
        Ok(login)
    }

    /// [`SecretStore::approle_auth`](streambed::secret_store::SecretStore::approle_auth)
    /// with the reason of a failure.
    pub async fn try_approle_auth(
        &self,
        role_id: &str,
        secret_id: &str,
    ) -> Result<AppRoleAuthReply, VaultError> {
        let url = self
            .config
            .calls
            .url(&["v1", "auth", "approle"], ["login"])?;
        let counted = Counted {
            requests: "ss_approle_auth_requests",
            label: "approle_auth",
            value: role_id,
        };
        self.login(
            url,
            json!({ "role_id": role_id, "secret_id": secret_id }),
            counted,
            format!("approle:{role_id}"),
            |reply: &AppRoleAuthReply| &reply.auth,
        )
        .await
    }

    /// [`SecretStore::userpass_auth`](streambed::secret_store::SecretStore::userpass_auth)
    /// with the reason of a failure. A user name that breaks the rules of
    /// [`streambed::secret_path`] is [`VaultError::InvalidInput`], with no request.
    pub async fn try_userpass_auth(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserPassAuthReply, VaultError> {
        let user = UserName::parse(username)?;
        let url = self
            .config
            .calls
            .url(&["v1", "auth", "userpass", "login"], [user.as_str()])?;
        let counted = Counted {
            requests: "ss_userpass_auth_requests",
            label: "userpass_auth",
            value: username,
        };
        self.login(
            url,
            json!({ "password": password }),
            counted,
            format!("userpass:{username}"),
            |reply: &UserPassAuthReply| &reply.auth,
        )
        .await
    }

    /// [`SecretStore::token_auth`](streambed::secret_store::SecretStore::token_auth) with
    /// the reason of a failure.
    pub async fn try_token_auth(&self, token: &str) -> Result<(), VaultError> {
        self.lookup_self(token).await?;
        self.session.adopt(token, format!("token:{token}"));
        Ok(())
    }
}
