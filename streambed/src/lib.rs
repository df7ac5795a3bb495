//! The core of streambed: the traits that services program against and the helpers they
//! share.
//!
//! A streambed service keeps its state as a sequence of events in a [commit
//! log](commit_log) and its keys and credentials in a [secret store](secret_store). Both are
//! traits, so the same service runs on a router with the file-system implementations
//! (`streambed-logged`, `streambed-confidant`) and in the cloud against Kafka and Vault
//! (`streambed-kafka`, `streambed-vault`).
//!
//! Besides the traits, this crate holds:
//! - [`crypto`]: AES-128-CTR, HMAC-SHA256 and salted SHA-512 in the forms streambed files use;
//! - [`seal`]: the salt ‖ ciphertext layout of every encrypted value, and hex keys;
//! - [`atomic_file`]: replacing a file so that a crash leaves the old or the new content;
//! - [`delayer`]: exponential back-off for retries;
//! - `http` (feature `reqwest`): the HTTP client, URL and retry policy the clients share;
//! - [`kafka_api`]: the JSON bodies of the Kafka HTTP API;
//! - [`secret_cache`]: the bounded, expiring, single-flight cache that secret store
//!   implementations keep their answers in;
//! - helpers to encrypt and decrypt values with keys kept in a secret store
//!   ([`encrypt_struct`], [`decrypt_buf`] and their `_with_secret` forms);
//! - [`reauthenticate_secret_store`], which keeps a service's secret store token fresh;
//! - [`read_line`] for reading a secret from standard input, and `read_pem` (feature
//!   `reqwest`) for loading a server certificate.
//!
//! ```
//! // Encrypt a value with a key held as 32 hex characters, then decrypt it again.
//! let key = "000102030405060708090a0b0c0d0e0f".to_string();
//! let mut sealed = streambed::encrypt_struct_with_secret(
//!     key.clone(),
//!     |reading: &u32| Ok::<_, ()>(reading.to_be_bytes().to_vec()),
//!     rand::thread_rng,
//!     &21u32,
//! )
//! .unwrap();
//! let opened = streambed::decrypt_buf_with_secret(key, &mut sealed, |bytes: &[u8]| {
//!     <[u8; 4]>::try_from(bytes).map(u32::from_be_bytes)
//! });
//! assert_eq!(opened, Some(21));
//! ```

#![warn(missing_docs)]

pub mod atomic_file;
mod base64_bytes;
pub mod commit_log;
pub mod crypto;
pub mod delayer;
#[cfg(feature = "reqwest")]
pub mod http;
pub mod kafka_api;
pub mod seal;
pub mod secret_cache;
pub mod secret_path;
pub mod secret_store;
pub mod topic_name;

use std::{
    io::{self, Read},
    sync::Arc,
    time::Duration,
};

use log::{debug, info, warn};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::{sync::Notify, task::JoinHandle, time};

use secret_store::SecretStore;

/// Reads one line, without its trailing `\n` or `\r\n`, for example a secret id piped to a
/// service's standard input.
///
/// Bytes are read one at a time, so nothing after the line is consumed from the reader:
/// pass `&mut reader` to read further lines. An empty reader gives an empty string; bytes
/// that are not UTF-8 are an [`io::ErrorKind::InvalidData`] error.
///
/// ```
/// assert_eq!(streambed::read_line(&b"s3cret\r\nrest"[..]).unwrap(), "s3cret");
/// assert_eq!(streambed::read_line(&b"no newline"[..]).unwrap(), "no newline");
/// ```
pub fn read_line<R: Read>(mut reader: R) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8];
    loop {
        match reader.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    while matches!(line.last(), Some(b'\r' | b'\n')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

/// Reads a PEM-encoded certificate, for example a server's self-signed certificate, for
/// the HTTP clients' `server_cert` argument.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let error = streambed::read_pem(&b"not a certificate"[..]).await;
/// assert!(error.is_err());
/// # }
/// ```
#[cfg(feature = "reqwest")]
pub async fn read_pem<R: Read>(
    mut reader: R,
) -> Result<reqwest::Certificate, Box<dyn std::error::Error>> {
    let mut pem = Vec::new();
    reader.read_to_end(&mut pem)?;
    if !pem
        .windows(b"-----BEGIN".len())
        .any(|window| window == b"-----BEGIN")
    {
        return Err("no PEM block found".into());
    }
    Ok(reqwest::Certificate::from_pem(&pem)?)
}

/// Reads the `"value"` field of a secret: by convention, where a secret store keeps a key.
/// `None` when the secret is absent, unreadable or has no such field.
///
/// ```
/// use streambed::secret_store::SecretStore;
///
/// async fn print_key(ss: &impl SecretStore) {
///     match streambed::get_secret_value(ss, "default/secrets.key").await {
///         Some(key) => println!("{} hex digits", key.len()),
///         None => println!("no key"),
///     }
/// }
/// ```
pub async fn get_secret_value(ss: &impl SecretStore, secret_path: &str) -> Option<String> {
    match ss.get_secret(secret_path).await {
        Ok(Some(reply)) => reply.data.data.get("value").cloned(),
        Ok(None) => None,
        Err(error) => {
            debug!("Cannot read secret {secret_path}: {error}");
            None
        }
    }
}

/// Serializes `t` and encrypts it with the key in `secret_value` (32 hex characters).
///
/// The result is a [sealed](seal) value: a fresh random salt followed by the ciphertext,
/// the form [`decrypt_buf_with_secret`] reads. `None` when the key is not 32 hex characters
/// or serialization fails; [`seal::Key`] says which.
///
/// ```
/// let sealed = streambed::encrypt_struct_with_secret(
///     "000102030405060708090a0b0c0d0e0f".to_string(),
///     |text: &&str| Ok::<_, ()>(text.as_bytes().to_vec()),
///     rand::thread_rng,
///     &"hello",
/// )
/// .unwrap();
/// assert_eq!(sealed.len(), streambed::crypto::SALT_SIZE + 5);
/// ```
pub fn encrypt_struct_with_secret<T, U, F, S, SE>(
    secret_value: String,
    serialize: S,
    rng: F,
    t: &T,
) -> Option<Vec<u8>>
where
    T: Serialize,
    S: FnOnce(&T) -> Result<Vec<u8>, SE>,
    F: FnOnce() -> U,
    U: RngCore,
{
    let key = seal::Key::from_hex(&secret_value).ok()?;
    let bytes = serialize(t).ok()?;
    Some(key.seal(&bytes, &mut rng()))
}

/// [`encrypt_struct_with_secret`] with the key read from the `"value"` field of the secret
/// at `secret_path`.
///
/// ```
/// # use std::collections::HashMap;
/// # use streambed::secret_store::*;
/// # #[derive(Clone)]
/// # struct OneKeyStore;
/// # #[async_trait::async_trait]
/// # impl SecretStore for OneKeyStore {
/// #     async fn approle_auth(&self, _: &str, _: &str) -> Result<AppRoleAuthReply, Error> { Err(Error::Unauthorized) }
/// #     async fn create_secret(&self, _: &str, _: SecretData) -> Result<(), Error> { Err(Error::Unauthorized) }
/// #     async fn get_secret(&self, path: &str) -> Result<Option<GetSecretReply>, Error> {
/// #         Ok((path == "default/secrets.readings.key").then(|| GetSecretReply {
/// #             lease_duration: 300,
/// #             data: SecretData { data: HashMap::from([("value".to_string(), "000102030405060708090a0b0c0d0e0f".to_string())]) },
/// #         }))
/// #     }
/// #     async fn token_auth(&self, _: &str) -> Result<(), Error> { Err(Error::Unauthorized) }
/// #     async fn userpass_auth(&self, _: &str, _: &str) -> Result<UserPassAuthReply, Error> { Err(Error::Unauthorized) }
/// #     async fn userpass_create_update_user(&self, _: &str, _: &str, _: &str) -> Result<(), Error> { Err(Error::Unauthorized) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // `ss` is any SecretStore holding a key at the path.
/// # let ss = OneKeyStore;
/// let path = "default/secrets.readings.key";
/// let to_bytes = |r: &Vec<u8>| Ok::<_, ()>(r.clone());
/// let mut sealed = streambed::encrypt_struct(&ss, path, to_bytes, rand::thread_rng, &vec![1u8, 2, 3])
///     .await
///     .unwrap();
/// let opened = streambed::decrypt_buf(&ss, path, &mut sealed, |b: &[u8]| Ok::<_, ()>(b.to_vec())).await;
/// assert_eq!(opened, Some(vec![1, 2, 3]));
///
/// // Without a key there is nothing to seal with.
/// assert_eq!(streambed::encrypt_struct(&ss, "absent", to_bytes, rand::thread_rng, &vec![1]).await, None);
/// # }
/// ```
pub async fn encrypt_struct<T, U, F, S, SE>(
    ss: &impl SecretStore,
    secret_path: &str,
    serialize: S,
    rng: F,
    t: &T,
) -> Option<Vec<u8>>
where
    T: Serialize,
    S: FnOnce(&T) -> Result<Vec<u8>, SE>,
    F: FnOnce() -> U,
    U: RngCore,
{
    let secret_value = get_secret_value(ss, secret_path).await?;
    encrypt_struct_with_secret(secret_value, serialize, rng, t)
}

/// Decrypts `buf` (salt followed by ciphertext) in place with the key in `secret_value`
/// (32 hex characters) and deserializes the result.
///
/// `None` when the buffer is shorter than a salt, the key is not 32 hex characters, or the
/// decrypted bytes do not deserialize. Counter mode cannot tell a wrong key from a right
/// one: a wrong key yields garbage that the deserializer is left to reject.
///
/// ```
/// let mut too_short = [0u8; 4];
/// let opened = streambed::decrypt_buf_with_secret(
///     "000102030405060708090a0b0c0d0e0f".to_string(),
///     &mut too_short,
///     |bytes: &[u8]| std::str::from_utf8(bytes),
/// );
/// assert_eq!(opened, None);
/// ```
pub fn decrypt_buf_with_secret<'a, T, D, DE>(
    secret_value: String,
    buf: &'a mut [u8],
    deserialize: D,
) -> Option<T>
where
    T: Deserialize<'a>,
    D: FnOnce(&'a [u8]) -> Result<T, DE>,
{
    let key = seal::Key::from_hex(&secret_value).ok()?;
    let plain = key.open(buf).ok()?;
    deserialize(plain).ok()
}

/// [`decrypt_buf_with_secret`] with the key read from the `"value"` field of the secret at
/// `secret_path`. `None` also when the key cannot be read. See [`encrypt_struct`] for an
/// example of both.
pub async fn decrypt_buf<'a, T, D, DE>(
    ss: &impl SecretStore,
    secret_path: &str,
    buf: &'a mut [u8],
    deserialize: D,
) -> Option<T>
where
    T: Deserialize<'a>,
    D: FnOnce(&'a [u8]) -> Result<T, DE>,
{
    // Too short to open with any key: spare the store a read.
    if buf.len() < crypto::SALT_SIZE {
        return None;
    }
    let secret_value = get_secret_value(ss, secret_path).await?;
    decrypt_buf_with_secret(secret_value, buf, deserialize)
}

/// The task started by [`reauthenticate_secret_store`]; [`cancel`](Self::cancel) stops it.
///
/// Dropping the handle leaves the task running for the life of the runtime, as upstream
/// does; call `cancel` to stop re-authenticating.
#[derive(Debug)]
pub struct AuthenticationTask {
    stop: Arc<Notify>,
    join_handle: Option<JoinHandle<()>>,
}

impl AuthenticationTask {
    /// Stops re-authenticating and waits for the task to end. Calling it again does nothing.
    pub async fn cancel(&mut self) {
        if let Some(join_handle) = self.join_handle.take() {
            debug!("Cancelling secret store re-authentication");
            // `notify_one` keeps a permit if the task is between waits, so the stop is
            // never missed.
            self.stop.notify_one();
            let _ = join_handle.await;
        }
    }
}

/// Authenticates with a secret store using an AppRole, then keeps the authentication
/// fresh in a background task until the returned handle is cancelled.
///
/// The first login happens before this returns. The task then logs in again when the
/// token's lease ends, or after `max_lease_duration` if that comes sooner; a lease of 0
/// (a token that does not expire) waits `max_lease_duration`. After a failed login it
/// tries again every `unauthenticated_timeout`.
///
/// ```
/// use std::time::Duration;
/// use streambed::secret_store::SecretStore;
///
/// async fn run(ss: impl SecretStore + 'static, role_id: &str) -> std::io::Result<()> {
///     let secret_id = streambed::read_line(std::io::stdin())?;
///     let mut task = streambed::reauthenticate_secret_store(
///         ss,
///         role_id,
///         &secret_id,
///         Duration::from_secs(1),
///         Duration::from_secs(30 * 60),
///     )
///     .await;
///     // ... serve ...
///     task.cancel().await;
///     Ok(())
/// }
/// ```
pub async fn reauthenticate_secret_store(
    ss: impl SecretStore + 'static,
    role_id: &str,
    secret_id: &str,
    unauthenticated_timeout: Duration,
    max_lease_duration: Duration,
) -> AuthenticationTask {
    let first = ss.approle_auth(role_id, secret_id).await;
    let role_id = role_id.to_string();
    let secret_id = secret_id.to_string();
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    let join_handle = tokio::spawn(async move {
        let mut lease = match &first {
            Ok(reply) => {
                info!("Authenticated with the secret store");
                Some(reply.auth.lease_duration)
            }
            Err(error) => {
                warn!("Cannot authenticate with the secret store, will retry: {error}");
                None
            }
        };
        loop {
            let wait = match lease {
                Some(0) => max_lease_duration,
                Some(seconds) => Duration::from_secs(seconds).min(max_lease_duration),
                None => unauthenticated_timeout,
            };
            tokio::select! {
                _ = stopped.notified() => break,
                _ = time::sleep(wait) => {}
            }
            let was_authenticated = lease.is_some();
            // A login can take long (a client retrying a server that is down); cancelling
            // must not wait for it.
            let reply = tokio::select! {
                biased;
                _ = stopped.notified() => break,
                reply = ss.approle_auth(&role_id, &secret_id) => reply,
            };
            lease = match reply {
                Ok(reply) => {
                    if !was_authenticated {
                        info!("Authenticated with the secret store");
                    }
                    Some(reply.auth.lease_duration)
                }
                Err(error) => {
                    if was_authenticated {
                        warn!("Cannot re-authenticate with the secret store, will retry: {error}");
                    }
                    None
                }
            };
        }
    });
    AuthenticationTask {
        stop,
        join_handle: Some(join_handle),
    }
}

#[cfg(test)]
mod tests;
