//! What a store knows beside the server: its fixed settings, and per authentication the
//! token in use and the secrets read with it.
//!
//! Kept apart from the calls that use them so that every call (auth, KV, users) reads the
//! token and the cache one way, and a new identity always starts with an empty cache.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use reqwest::RequestBuilder;
use streambed::{secret_cache::SecretCache, secret_store::GetSecretReply};

use crate::{call::Calls, VaultError};

/// The header that carries the token.
pub(crate) const TOKEN_HEADER: &str = "X-Vault-Token";

/// The outcome of a secret read, as cached.
pub(crate) type SecretRead = Result<Option<GetSecretReply>, VaultError>;

/// What stays the same for a store and every store derived from it.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) calls: Calls,
    pub(crate) unauthorized_timeout: Duration,
    pub(crate) max_secrets_cached: usize,
    pub(crate) ttl_field: Option<String>,
}

/// The token in use and whose it is: a new identity starts with an empty cache.
struct Token {
    value: String,
    identity: String,
}

/// What one authentication holds: its token and the secrets read with it.
pub(crate) struct Session {
    token: RwLock<Option<Token>>,
    pub(crate) cache: Arc<SecretCache<SecretRead>>,
}

impl Session {
    pub(crate) fn new(max_secrets_cached: usize) -> Self {
        Self {
            token: RwLock::new(None),
            cache: Arc::new(SecretCache::new(max_secrets_cached)),
        }
    }

    /// `request` with the token in use, if any.
    pub(crate) fn with_token(&self, request: RequestBuilder) -> RequestBuilder {
        let token = self.token.read().unwrap_or_else(|e| e.into_inner());
        match token.as_ref() {
            Some(token) => request.header(TOKEN_HEADER, &token.value),
            None => request,
        }
    }

    /// Uses `value` from now on. Cached reads were made with another identity's rights
    /// when `identity` differs, so they are dropped; a renewed token of the same identity
    /// keeps them.
    pub(crate) fn adopt(&self, value: &str, identity: String) {
        let mut token = self.token.write().unwrap_or_else(|e| e.into_inner());
        let same = token.as_ref().is_some_and(|t| t.identity == identity);
        *token = Some(Token {
            value: value.to_string(),
            identity,
        });
        drop(token);
        if !same {
            self.cache.clear();
        }
    }

    pub(crate) fn is_authenticated(&self) -> bool {
        self.token
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}
