//! Tests of the top-level helpers, against an in-memory secret store.

use super::*;
use crate::secret_store::{
    AppRoleAuthReply, AuthToken, Error, GetSecretReply, SecretData, UserPassAuthReply,
};
use async_trait::async_trait;
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};
use tokio::time::Instant;

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f";
const OTHER_KEY_HEX: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/// A secret store that holds secrets in a map and answers AppRole logins from a script,
/// recording when each login happened.
#[derive(Clone, Default)]
struct InMemorySecretStore {
    state: Arc<Mutex<State>>,
}

/// A scripted answer to a login.
#[derive(Clone, Copy)]
enum Login {
    Lease(u64),
    Fail,
    /// Never answers, like a client retrying a server that is down.
    Hang,
}
use Login::*;

#[derive(Default)]
struct State {
    secrets: HashMap<String, SecretData>,
    /// Answers to the next logins. When empty, logins succeed with a lease of 60 s.
    logins: VecDeque<Login>,
    login_times: Vec<Instant>,
}

impl InMemorySecretStore {
    fn with_key(path: &str, value: &str) -> Self {
        let store = Self::default();
        store.state.lock().unwrap().secrets.insert(
            path.to_string(),
            SecretData {
                data: HashMap::from([("value".to_string(), value.to_string())]),
            },
        );
        store
    }

    fn script_logins(&self, answers: impl IntoIterator<Item = Login>) {
        self.state.lock().unwrap().logins.extend(answers);
    }

    /// Login times as offsets in whole seconds from `start`.
    fn login_seconds(&self, start: Instant) -> Vec<u64> {
        let state = self.state.lock().unwrap();
        state
            .login_times
            .iter()
            .map(|t| t.duration_since(start).as_secs())
            .collect()
    }
}

#[async_trait]
impl SecretStore for InMemorySecretStore {
    async fn approle_auth(
        &self,
        _role_id: &str,
        _secret_id: &str,
    ) -> Result<AppRoleAuthReply, Error> {
        let login = {
            let mut state = self.state.lock().unwrap();
            state.login_times.push(Instant::now());
            state.logins.pop_front().unwrap_or(Lease(60))
        };
        match login {
            Lease(lease_duration) => Ok(AppRoleAuthReply {
                auth: AuthToken {
                    client_token: "token".to_string(),
                    lease_duration,
                },
            }),
            Fail => Err(Error::Unauthorized),
            Hang => std::future::pending().await,
        }
    }

    async fn create_secret(&self, secret_path: &str, secret_data: SecretData) -> Result<(), Error> {
        self.state
            .lock()
            .unwrap()
            .secrets
            .insert(secret_path.to_string(), secret_data);
        Ok(())
    }

    async fn get_secret(&self, secret_path: &str) -> Result<Option<GetSecretReply>, Error> {
        if secret_path.starts_with("denied/") {
            return Err(Error::Unauthorized);
        }
        Ok(self
            .state
            .lock()
            .unwrap()
            .secrets
            .get(secret_path)
            .map(|data| GetSecretReply {
                lease_duration: 300,
                data: data.clone(),
            }))
    }

    async fn token_auth(&self, _token: &str) -> Result<(), Error> {
        Ok(())
    }

    async fn userpass_auth(
        &self,
        _username: &str,
        _password: &str,
    ) -> Result<UserPassAuthReply, Error> {
        Err(Error::Unauthorized)
    }

    async fn userpass_create_update_user(
        &self,
        _current_username: &str,
        _username: &str,
        _password: &str,
    ) -> Result<(), Error> {
        Ok(())
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: u32,
    celsius: f32,
    label: String,
}

fn reading() -> Reading {
    Reading {
        sensor: 7,
        celsius: 21.5,
        label: "kitchen".to_string(),
    }
}

fn seal_json(key: &str) -> Option<Vec<u8>> {
    encrypt_struct_with_secret(
        key.to_string(),
        serde_json::to_vec,
        rand::thread_rng,
        &reading(),
    )
}

#[test]
fn json_values_round_trip_through_encryption() {
    let mut sealed = seal_json(KEY_HEX).unwrap();
    assert!(
        !sealed.windows(7).any(|w| w == b"kitchen"),
        "plaintext leaked"
    );
    let opened: Option<Reading> =
        decrypt_buf_with_secret(KEY_HEX.to_string(), &mut sealed, serde_json::from_slice);
    assert_eq!(opened, Some(reading()));
}

#[test]
fn postcard_values_round_trip_through_encryption() {
    let mut sealed = encrypt_struct_with_secret(
        KEY_HEX.to_string(),
        postcard::to_allocvec,
        rand::thread_rng,
        &reading(),
    )
    .unwrap();
    let opened: Option<Reading> =
        decrypt_buf_with_secret(KEY_HEX.to_string(), &mut sealed, postcard::from_bytes);
    assert_eq!(opened, Some(reading()));
}

#[test]
fn uppercase_hex_keys_are_accepted() {
    let mut sealed = seal_json(&KEY_HEX.to_uppercase()).unwrap();
    let opened: Option<Reading> =
        decrypt_buf_with_secret(KEY_HEX.to_string(), &mut sealed, serde_json::from_slice);
    assert_eq!(opened, Some(reading()));
}

#[test]
fn each_encryption_uses_a_fresh_salt() {
    assert_ne!(seal_json(KEY_HEX), seal_json(KEY_HEX));
}

#[test]
fn a_wrong_key_gives_none() {
    let mut sealed = seal_json(KEY_HEX).unwrap();
    let opened: Option<Reading> = decrypt_buf_with_secret(
        OTHER_KEY_HEX.to_string(),
        &mut sealed,
        serde_json::from_slice,
    );
    assert_eq!(opened, None);
}

#[test]
fn buffers_shorter_than_a_salt_give_none() {
    for len in 0..crypto::SALT_SIZE {
        let mut buf = vec![0u8; len];
        let opened: Option<Vec<u8>> =
            decrypt_buf_with_secret(KEY_HEX.to_string(), &mut buf, |b: &[u8]| {
                Ok::<_, ()>(b.to_vec())
            });
        assert_eq!(opened, None, "length {len}");
    }
    let mut just_a_salt = vec![0u8; crypto::SALT_SIZE];
    let opened: Option<Vec<u8>> =
        decrypt_buf_with_secret(KEY_HEX.to_string(), &mut just_a_salt, |b: &[u8]| {
            Ok::<_, ()>(b.to_vec())
        });
    assert_eq!(opened, Some(vec![]));
}

#[test]
fn malformed_secrets_give_none() {
    for bad in [
        "",
        "not hex at all, not hex at all!!",
        "000102030405060708090a0b0c0d0e0",
        "000102030405060708090a0b0c0d0e0f00",
        "00010203040506070809",
        "000102030405060708090a0b0c0d0e0g",
        "é00102030405060708090a0b0c0d0e0",
    ] {
        assert_eq!(seal_json(bad), None, "{bad:?}");
        let mut sealed = seal_json(KEY_HEX).unwrap();
        let opened: Option<Reading> =
            decrypt_buf_with_secret(bad.to_string(), &mut sealed, serde_json::from_slice);
        assert_eq!(opened, None, "{bad:?}");
    }
}

#[test]
fn a_failing_serializer_gives_none() {
    let sealed = encrypt_struct_with_secret(
        KEY_HEX.to_string(),
        |_: &Reading| Err::<Vec<u8>, _>("no"),
        rand::thread_rng,
        &reading(),
    );
    assert_eq!(sealed, None);
}

#[tokio::test]
async fn store_helpers_round_trip_with_the_key_from_the_store() {
    let ss = InMemorySecretStore::with_key("keys/readings", KEY_HEX);
    assert_eq!(
        get_secret_value(&ss, "keys/readings").await.as_deref(),
        Some(KEY_HEX)
    );
    let mut sealed = encrypt_struct(
        &ss,
        "keys/readings",
        serde_json::to_vec,
        rand::thread_rng,
        &reading(),
    )
    .await
    .unwrap();
    let opened: Option<Reading> =
        decrypt_buf(&ss, "keys/readings", &mut sealed, serde_json::from_slice).await;
    assert_eq!(opened, Some(reading()));
}

#[tokio::test]
async fn store_helpers_give_none_for_absent_or_denied_keys() {
    let ss = InMemorySecretStore::with_key("keys/readings", KEY_HEX);
    assert_eq!(get_secret_value(&ss, "keys/absent").await, None);
    assert_eq!(get_secret_value(&ss, "denied/key").await, None);
    let sealed = encrypt_struct(
        &ss,
        "denied/key",
        serde_json::to_vec,
        rand::thread_rng,
        &reading(),
    )
    .await;
    assert_eq!(sealed, None);
    let mut sealed = seal_json(KEY_HEX).unwrap();
    let opened: Option<Reading> =
        decrypt_buf(&ss, "keys/absent", &mut sealed, serde_json::from_slice).await;
    assert_eq!(opened, None);
}

#[test]
fn read_line_strips_a_unix_newline() {
    assert_eq!(read_line(&b"abc\ndef\n"[..]).unwrap(), "abc");
}

#[test]
fn read_line_strips_a_windows_newline() {
    assert_eq!(read_line(&b"abc\r\ndef"[..]).unwrap(), "abc");
}

#[test]
fn read_line_takes_the_whole_input_without_a_newline() {
    assert_eq!(read_line(&b"abc"[..]).unwrap(), "abc");
    assert_eq!(read_line(&b""[..]).unwrap(), "");
}

#[test]
fn read_line_leaves_later_lines_in_the_reader() {
    let mut input = &b"first\nsecond\n"[..];
    assert_eq!(read_line(&mut input).unwrap(), "first");
    assert_eq!(read_line(&mut input).unwrap(), "second");
}

#[test]
fn read_line_rejects_invalid_utf8() {
    let error = read_line(&b"\xff\xfe\n"[..]).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
}

/// Starts re-authentication with the given timeouts, in seconds.
async fn reauthenticate(
    ss: &InMemorySecretStore,
    unauthenticated_timeout: u64,
    max_lease_duration: u64,
) -> AuthenticationTask {
    reauthenticate_secret_store(
        ss.clone(),
        "role",
        "secret",
        Duration::from_secs(unauthenticated_timeout),
        Duration::from_secs(max_lease_duration),
    )
    .await
}

/// When logins happened, in whole seconds from the start, while reauthentication ran for
/// `run_for` seconds against a store answering logins with `script`.
async fn login_seconds(
    script: impl IntoIterator<Item = Login>,
    unauthenticated_timeout: u64,
    max_lease_duration: u64,
    run_for: u64,
) -> Vec<u64> {
    let ss = InMemorySecretStore::default();
    ss.script_logins(script);
    let start = Instant::now();
    let mut task = reauthenticate(&ss, unauthenticated_timeout, max_lease_duration).await;
    time::sleep(Duration::from_secs(run_for)).await;
    task.cancel().await;
    ss.login_seconds(start)
}

#[tokio::test(start_paused = true)]
async fn reauthenticates_when_the_lease_ends() {
    // Leases of 10 s, 20 s, 10 s, then the default 60 s.
    assert_eq!(
        login_seconds([Lease(10), Lease(20), Lease(10)], 1, 3600, 45).await,
        vec![0, 10, 30, 40]
    );
}

#[tokio::test(start_paused = true)]
async fn never_waits_longer_than_the_max_lease_duration() {
    // A lease of 0 (no expiry) also waits the maximum instead of spinning.
    assert_eq!(
        login_seconds([Lease(1000), Lease(1000), Lease(0)], 1, 30, 95).await,
        vec![0, 30, 60, 90]
    );
}

#[tokio::test(start_paused = true)]
async fn retries_every_unauthenticated_timeout_after_failures() {
    assert_eq!(
        login_seconds([Fail, Fail, Fail, Lease(100)], 5, 3600, 50).await,
        vec![0, 5, 10, 15]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_renewal_is_retried_after_the_unauthenticated_timeout() {
    assert_eq!(
        login_seconds([Lease(10), Fail, Lease(100)], 2, 3600, 50).await,
        vec![0, 10, 12]
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_reauthentication_and_a_second_cancel_is_harmless() {
    let ss = InMemorySecretStore::default();
    let start = Instant::now();
    let mut task = reauthenticate(&ss, 1, 3600).await;
    time::sleep(Duration::from_secs(61)).await;
    task.cancel().await;
    task.cancel().await;
    time::sleep(Duration::from_secs(600)).await;
    assert_eq!(ss.login_seconds(start), vec![0, 60]);
}

#[tokio::test(start_paused = true)]
async fn cancel_does_not_wait_for_a_login_that_never_answers() {
    let ss = InMemorySecretStore::default();
    ss.script_logins([Lease(10), Hang]);
    let mut task = reauthenticate(&ss, 1, 3600).await;
    time::sleep(Duration::from_secs(20)).await;
    time::timeout(Duration::from_secs(1), task.cancel())
        .await
        .expect("cancel must not wait for the hanging login");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_keeps_reauthenticating() {
    let ss = InMemorySecretStore::default();
    let start = Instant::now();
    drop(reauthenticate(&ss, 1, 3600).await);
    time::sleep(Duration::from_secs(125)).await;
    assert_eq!(ss.login_seconds(start), vec![0, 60, 120]);
}
