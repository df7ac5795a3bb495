//! Whose a Vault token is (`auth/token/lookup-self`), for a service that receives tokens
//! from its own clients (a server checking `Authorization: Bearer`) and must learn who is
//! asking without taking the client's token on as its own, as `token_auth` does.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use serde::Deserialize;
use streambed::secret_store::Error;

use crate::{
    call::Counted, outcome::accepted, session::TOKEN_HEADER, VaultError, VaultSecretStore,
};

/// The identity a valid token stands for, and when it stops being valid.
///
/// ```
/// use streambed_vault::TokenOwner;
///
/// # fn show(owner: TokenOwner) {
/// println!("{} until {:?}", owner.principal, owner.expires);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenOwner {
    /// Who the token stands for: the `username` of the token's metadata when the server
    /// set one (a userpass login does), else its `display_name` (such as `approle` or
    /// `token-<name>`, which Vault derives from how the token was made).
    pub principal: String,
    /// When the token expires, from the time-to-live the server reported; `None` for a
    /// token without one (such as a root token).
    pub expires: Option<SystemTime>,
}

/// The part of Vault's answer to `lookup-self` that names the token's owner. Every field
/// is optional so that `token_auth`, which needs only the answer's success, accepts any
/// JSON object as before.
#[derive(Deserialize)]
pub(crate) struct TokenLookup {
    #[serde(default)]
    data: TokenData,
}

#[derive(Default, Deserialize)]
struct TokenData {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    meta: Option<HashMap<String, Option<String>>>,
    #[serde(default)]
    ttl: u64,
}

impl TokenLookup {
    /// The owner by the rule of [`TokenOwner::principal`]; `None` when the answer names
    /// nobody.
    fn owner(self, now: SystemTime) -> Option<TokenOwner> {
        let TokenData {
            display_name,
            meta,
            ttl,
        } = self.data;
        let username = meta
            .and_then(|mut meta| meta.remove("username"))
            .flatten()
            .filter(|name| !name.is_empty());
        let principal = username.or(display_name.filter(|name| !name.is_empty()))?;
        let expires = (ttl > 0).then(|| now + Duration::from_secs(ttl));
        Some(TokenOwner { principal, expires })
    }
}

impl VaultSecretStore {
    /// Asks the server about `token` itself (`GET auth/token/lookup-self`, sent with that
    /// token rather than the store's), which checks it exactly as any call made with it.
    pub(crate) async fn lookup_self(&self, token: &str) -> Result<TokenLookup, VaultError> {
        let url = self
            .config
            .calls
            .url(&["v1", "auth", "token"], ["lookup-self"])?;
        let counted = Counted {
            requests: "ss_token_auth_requests",
            label: "token_auth",
            value: "lookup-self",
        };
        let client = &self.config.calls.client;
        let reply = self
            .config
            .calls
            .send(&counted, || {
                client.get(url.clone()).header(TOKEN_HEADER, token)
            })
            .await?;
        accepted(&reply, &counted)?;
        serde_json::from_slice::<TokenLookup>(&reply.body)
            .map_err(|e| VaultError::InvalidReply(format!("token lookup answer: {e}")))
    }

    /// Whom `token` stands for, as the server says (`auth/token/lookup-self`, with the
    /// retries and counters of
    /// [`token_auth`](streambed::secret_store::SecretStore::token_auth)), saying why when
    /// it is refused: the principal is the token's `meta.username` when present, else its
    /// `display_name` (see [`TokenOwner::principal`]). Unlike `token_auth`, the store
    /// keeps using its own token: a server asks this about its clients' tokens.
    ///
    /// ```no_run
    /// use streambed_vault::VaultSecretStore;
    ///
    /// # async fn run(client_token: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let ss = VaultSecretStore::builder("http://127.0.0.1:8200".parse()?).build()?;
    /// let owner = ss.try_token_principal(client_token).await?;
    /// println!("a request of {}", owner.principal);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn try_token_principal(&self, token: &str) -> Result<TokenOwner, VaultError> {
        self.lookup_self(token)
            .await?
            .owner(SystemTime::now())
            .ok_or_else(|| {
                VaultError::InvalidReply(
                    "token lookup answer names no username and no display_name".to_string(),
                )
            })
    }

    /// [`try_token_principal`](Self::try_token_principal) with the trait's error: every
    /// failure is [`Error::Unauthorized`].
    ///
    /// ```no_run
    /// use streambed_vault::VaultSecretStore;
    ///
    /// # async fn run(client_token: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let ss = VaultSecretStore::builder("http://127.0.0.1:8200".parse()?).build()?;
    /// if let Ok(owner) = ss.token_principal(client_token).await {
    ///     println!("a request of {}", owner.principal);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn token_principal(&self, token: &str) -> Result<TokenOwner, Error> {
        let owner = self.try_token_principal(token).await;
        owner.map_err(|e| {
            log::debug!("token lookup refused: {e}");
            Error::from(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(json: &str) -> Option<TokenOwner> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        serde_json::from_str::<TokenLookup>(json)
            .unwrap()
            .owner(now)
    }

    #[test]
    fn the_username_of_the_metadata_wins_over_the_display_name() {
        let found =
            owner(r#"{"data":{"display_name":"userpass-ann","meta":{"username":"ann"},"ttl":60}}"#)
                .unwrap();
        assert_eq!(found.principal, "ann");
        assert_eq!(
            found.expires,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_060))
        );
    }

    #[test]
    fn without_a_username_the_display_name_is_the_principal() {
        for json in [
            r#"{"data":{"display_name":"approle","meta":null,"ttl":0}}"#,
            r#"{"data":{"display_name":"approle","meta":{"role_name":"x"}}}"#,
            r#"{"data":{"display_name":"approle","meta":{"username":""}}}"#,
            r#"{"data":{"display_name":"approle","meta":{"username":null}}}"#,
        ] {
            let found = owner(json).unwrap();
            assert_eq!(found.principal, "approle", "{json}");
            assert_eq!(found.expires, None, "{json}");
        }
    }

    #[test]
    fn an_answer_naming_nobody_has_no_owner() {
        assert_eq!(owner(r#"{"data":{"display_name":"","meta":null}}"#), None);
        assert_eq!(owner(r#"{"data":{}}"#), None);
        assert_eq!(owner("{}"), None);
    }
}
