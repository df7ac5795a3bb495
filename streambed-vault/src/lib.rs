//! A streambed [`SecretStore`](streambed::secret_store::SecretStore) backed by a
//! [HashiCorp Vault](https://developer.hashicorp.com/vault) or
//! [OpenBao](https://openbao.org) server, through its HTTP API.
//!
//! [`VaultSecretStore`] authenticates with an AppRole, a user name and password, or a
//! token; reads and writes secrets in the KV version 2 engine at `secret/`, caching reads;
//! and manages userpass users. [`args::SsArgs`] holds the command line settings services
//! use to set one up. TLS is rustls with the `ring` provider: no OpenSSL.
//!
//! ```no_run
//! use std::time::Duration;
//! use streambed::secret_store::SecretStore;
//! use streambed_vault::VaultSecretStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let ss = VaultSecretStore::new(
//!     "http://127.0.0.1:8200".parse()?,
//!     None,
//!     false,
//!     Duration::from_secs(60),
//!     10_000,
//!     Some("ttl"),
//! );
//! let secret_id = streambed::read_line(std::io::stdin())?;
//! ss.approle_auth("my-role-id", &secret_id).await?;
//! if let Some(secret) = ss.get_secret("default/secrets.key").await? {
//!     println!("{} fields", secret.data.data.len());
//! }
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod args;
mod auth;
mod builder;
mod call;
mod error;
mod kv;
mod outcome;
mod secret_store;
mod session;
mod store;
mod token_owner;
mod users;

pub use builder::VaultSecretStoreBuilder;
pub use error::VaultError;
pub use store::VaultSecretStore;
pub use token_owner::TokenOwner;
