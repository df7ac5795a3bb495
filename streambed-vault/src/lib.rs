//! A streambed [`SecretStore`](streambed::secret_store::SecretStore) backed by a
//! [HashiCorp Vault](https://developer.hashicorp.com/vault) or
//! [OpenBao](https://openbao.org) server, through its HTTP API.
//!
//! [`VaultSecretStore`] authenticates with an AppRole, a user name and password, or a
//! token; reads and writes secrets in the KV version 2 engine at `secret/`, caching reads;
//! and manages userpass users. [`args::SsArgs`] holds the command line settings services
//! use to set one up. TLS is rustls with the `ring` provider: no OpenSSL.
//!
//! ```
//! use std::time::Duration;
//! use streambed::secret_store::SecretStore;
//! use streambed_vault::VaultSecretStore;
//! # use serde_json::json;
//! # use streambed_test::server::{self, Method, Request, Response, StatusCode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A stand-in for Vault, from streambed-test: it answers an AppRole login and a read.
//! # let vault = server::http(|request: Request| async move {
//! #     match (request.method(), request.uri().path()) {
//! #         (&Method::POST, "/v1/auth/approle/login") => Response::json(&json!({
//! #             "auth": { "client_token": "hvs.token", "lease_duration": 1200 }
//! #         })),
//! #         (&Method::GET, "/v1/secret/data/default/secrets.key") => Response::json(&json!({
//! #             "lease_duration": 0,
//! #             "data": { "data": { "value": "00112233445566778899aabbccddeeff", "ttl": "1h" } }
//! #         })),
//! #         _ => Response::new(StatusCode::NOT_FOUND),
//! #     }
//! # });
//! # let vault_url = vault.url();
//! // The server's URL, e.g. "http://127.0.0.1:8200".
//! let ss = VaultSecretStore::new(
//!     vault_url.parse()?,
//!     None,
//!     false,
//!     Duration::from_secs(60),
//!     10_000,
//!     Some("ttl"),
//! );
//! // A service reads its secret id from standard input or a credentials file.
//! let secret_id = "my-secret-id";
//! ss.approle_auth("my-role-id", secret_id).await?;
//! // Cached for the duration in its "ttl" field: reading it again sends no request.
//! let secret = ss.get_secret("default/secrets.key").await?.expect("the key exists");
//! assert_eq!(secret.data.data["value"], "00112233445566778899aabbccddeeff");
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
