//! The family's secret stores as [`TokenVerifier`]s: `FileSecretStore` (feature
//! `confidant`) and `VaultSecretStore` (feature `vault`).
//!
//! Each store says why it refused; here that becomes the one distinction the server
//! needs: the token is bad (401), or the store cannot tell right now (503).

use async_trait::async_trait;

use super::{TokenVerifier, Verified, VerifyError};
use crate::principal::Principal;

/// The token's user, from its signature and expiry under the store's root secret; no
/// file is read.
#[cfg(feature = "confidant")]
#[async_trait]
impl TokenVerifier for streambed_confidant::FileSecretStore {
    async fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
        use streambed_confidant::ConfidantError;
        match self.try_token_principal(token) {
            Ok(owner) => Ok(Verified::new(
                Principal::new(owner.username),
                Some(owner.expires),
            )),
            Err(ConfidantError::AuthenticationFailed | ConfidantError::InvalidName(_)) => {
                Err(VerifyError::Refused)
            }
            // An unusable or insecure root directory is the server's problem, not the
            // client's: it must not look like a bad token.
            Err(other) => Err(VerifyError::Unavailable(other.to_string())),
        }
    }
}

/// The principal of `auth/token/lookup-self`: the token's `meta.username`, else its
/// `display_name`; see `streambed_vault::TokenOwner`.
#[cfg(feature = "vault")]
#[async_trait]
impl TokenVerifier for streambed_vault::VaultSecretStore {
    async fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
        use streambed_vault::VaultError;
        match self.try_token_principal(token).await {
            Ok(owner) => Ok(Verified::new(
                Principal::new(owner.principal),
                owner.expires,
            )),
            // Vault answers an unknown token with 403, a malformed one with 400.
            Err(VaultError::Unauthorized | VaultError::Status { status: 400, .. }) => {
                Err(VerifyError::Refused)
            }
            Err(other) => Err(VerifyError::Unavailable(other.to_string())),
        }
    }
}
