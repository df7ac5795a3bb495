//! Behaviour of `FileSecretStore` through its public API, checked against the on-disk
//! and token formats as the SPEC states them.

use std::{
    fs,
    future::Future,
    io::Write,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::Poll,
    time::{Duration, SystemTime},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use streambed::{
    crypto,
    secret_store::{Error, GetSecretReply, SecretData, SecretStore},
};
use streambed_confidant::{ConfidantError, FileSecretStore};

const ROOT_SECRET: [u8; 16] = *b"0123456789abcdef";
const SALT: [u8; 12] = *b"saltsaltsalt";
const UNAUTHORIZED_TIMEOUT: Duration = Duration::from_secs(60);

fn private_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o700)).unwrap();
    root
}

fn store(root: &Path, max_secrets_cached: usize) -> FileSecretStore {
    FileSecretStore::new(
        root,
        &ROOT_SECRET,
        UNAUTHORIZED_TIMEOUT,
        max_secrets_cached,
        Some("ttl"),
    )
}

/// A store of a new private root, caching up to `max_secrets_cached` reads.
fn private_store(max_secrets_cached: usize) -> (tempfile::TempDir, FileSecretStore) {
    let root = private_root();
    let ss = store(root.path(), max_secrets_cached);
    (root, ss)
}

/// Writes the secret `pairs` at `path`, which must succeed.
async fn write(ss: &FileSecretStore, path: &str, pairs: &[(&str, &str)]) {
    ss.create_secret(path, secret(pairs)).await.unwrap();
}

fn secret(pairs: &[(&str, &str)]) -> SecretData {
    SecretData {
        data: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// postcard of `{ version: 0u32, secret_data: { data: { key: value } } }`, written byte by
/// byte: varint version, varint map length, then varint-length-prefixed UTF-8 strings.
fn postcard_by_hand(key: &str, value: &str) -> Vec<u8> {
    assert!(
        key.len() < 128 && value.len() < 128,
        "one-byte varints only"
    );
    let mut bytes = vec![0x00, 0x01, key.len() as u8];
    bytes.extend_from_slice(key.as_bytes());
    bytes.push(value.len() as u8);
    bytes.extend_from_slice(value.as_bytes());
    bytes
}

/// A secret file as the SPEC lays it out: salt ‖ AES-CTR(root secret, salt, postcard).
fn file_by_hand(key: &str, value: &str, root_secret: &[u8; 16]) -> Vec<u8> {
    let mut body = postcard_by_hand(key, value);
    crypto::encrypt(&mut body, root_secret, &SALT);
    let mut file = SALT.to_vec();
    file.extend(body);
    file
}

fn write_by_hand(root: &Path, secret_path: &str, bytes: &[u8]) {
    let path = root.join(secret_path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn token_by_hand(data: &str, key: &[u8]) -> String {
    let signature = hex::encode(crypto::sign(data.as_bytes(), key));
    STANDARD.encode(format!(r#"{{"data":{data},"signature":"{signature}"}}"#))
}

#[tokio::test]
async fn a_secret_file_built_by_hand_from_the_spec_is_read() {
    let root = private_root();
    let value = "00112233445566778899aabbccddeeff";
    write_by_hand(
        root.path(),
        "default/secrets.key",
        &file_by_hand("value", value, &ROOT_SECRET),
    );
    let ss = store(root.path(), 10);
    assert_eq!(
        ss.get_secret("default/secrets.key").await,
        Ok(Some(GetSecretReply {
            lease_duration: 300,
            data: secret(&[("value", value)]),
        }))
    );
    assert_eq!(
        streambed::get_secret_value(&ss, "default/secrets.key")
            .await
            .as_deref(),
        Some(value)
    );
}

#[tokio::test]
async fn a_written_secret_decrypts_by_hand_to_the_spec_layout() {
    let (root, ss) = private_store(10);
    write(&ss, "k", &[("value", "abc")]).await;
    let mut bytes = fs::read(root.path().join("k")).unwrap();
    let (salt, body) = bytes.split_at_mut(12);
    crypto::decrypt(body, &ROOT_SECRET, &salt.try_into().unwrap());
    assert_eq!(body, postcard_by_hand("value", "abc").as_slice());
}

#[tokio::test]
async fn the_lease_comes_from_the_ttl_field() {
    let (_root, ss) = private_store(10);
    write(&ss, "s", &[("value", "v"), ("ttl", "60m")]).await;
    assert_eq!(
        ss.get_secret("s").await.unwrap().unwrap().lease_duration,
        3600
    );
    write(&ss, "bad-ttl", &[("ttl", "soon")]).await;
    assert_eq!(
        ss.get_secret("bad-ttl")
            .await
            .unwrap()
            .unwrap()
            .lease_duration,
        300
    );
}

#[tokio::test]
async fn an_absent_secret_is_none() {
    let root = private_root();
    assert_eq!(
        store(root.path(), 10).get_secret("nothing/here").await,
        Ok(None)
    );
}

#[tokio::test]
async fn a_token_made_by_hand_is_accepted_until_tampered_or_expired() {
    let (_root, ss) = private_store(10);
    let data = format!(
        r#"{{"username":"bob","expires":{}}}"#,
        now_millis() + 60_000
    );
    let token = token_by_hand(&data, &ROOT_SECRET);
    assert_eq!(ss.token_auth(&token).await, Ok(()));
    assert_eq!(ss.authenticated_user().as_deref(), Some("bob"));

    // One changed byte in the signed data.
    let changed = token_by_hand(&data, &ROOT_SECRET);
    let mut json = STANDARD.decode(changed).unwrap();
    let at = json.windows(3).position(|w| w == b"bob").unwrap();
    json[at + 2] = b'c';
    let fresh = FileSecretStore::with_new_auth_prepared(&ss);
    assert_eq!(
        fresh.token_auth(&STANDARD.encode(&json)).await,
        Err(Error::Unauthorized)
    );
    assert_eq!(fresh.authenticated_user(), None);

    // One changed byte of the base64 text itself.
    let mut text = token.clone().into_bytes();
    text[10] = if text[10] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        fresh.token_auth(std::str::from_utf8(&text).unwrap()).await,
        Err(Error::Unauthorized)
    );

    // Signed under another key.
    assert_eq!(
        fresh
            .token_auth(&token_by_hand(&data, b"another root key"))
            .await,
        Err(Error::Unauthorized)
    );

    // Expired.
    let past = format!(r#"{{"username":"bob","expires":{}}}"#, now_millis() - 1);
    assert_eq!(
        fresh.token_auth(&token_by_hand(&past, &ROOT_SECRET)).await,
        Err(Error::Unauthorized)
    );
}

#[tokio::test]
async fn users_log_in_with_tokens_laid_out_as_the_spec_says() {
    let (root, ss) = private_store(10);
    ss.approle_auth("role", "secret").await.unwrap();
    ss.userpass_create_update_user("mitchellh", "mitchellh", "foo")
        .await
        .unwrap();

    // The stored password is hex(salt ‖ SHA-512(salt ‖ password)).
    let record = ss
        .get_secret("auth/userpass/users/mitchellh")
        .await
        .unwrap()
        .unwrap();
    let stored = hex::decode(&record.data.data["password"]).unwrap();
    assert_eq!(
        stored,
        crypto::hash(b"foo", &stored[..12].try_into().unwrap())
    );

    let user_ss = FileSecretStore::with_new_auth_prepared(&ss);
    let reply = user_ss.userpass_auth("mitchellh", "foo").await.unwrap();
    assert_eq!(reply.auth.lease_duration, 604_800);
    assert_eq!(user_ss.authenticated_user().as_deref(), Some("mitchellh"));
    assert_eq!(ss.authenticated_user(), None);

    let json = String::from_utf8(STANDARD.decode(&reply.auth.client_token).unwrap()).unwrap();
    let prefix = r#"{"data":{"username":"mitchellh","expires":"#;
    assert!(json.starts_with(prefix), "{json}");
    let data_end = json.find('}').unwrap() + 1;
    let data = &json[r#"{"data":"#.len()..data_end];
    let expires: u64 = json[prefix.len()..data_end - 1].parse().unwrap();
    let week_ms = 7 * 24 * 3600 * 1000;
    assert!(expires.abs_diff(now_millis() + week_ms) < 60_000);
    assert_eq!(
        &json[data_end..],
        format!(
            r#","signature":"{}"}}"#,
            hex::encode(crypto::sign(data.as_bytes(), &ROOT_SECRET))
        )
    );

    // Any store with the same root secret accepts it; wrong passwords and users fail.
    let other = store(root.path(), 10);
    assert_eq!(other.token_auth(&reply.auth.client_token).await, Ok(()));
    assert!(user_ss.userpass_auth("mitchellh", "fo").await.is_err());
    assert!(user_ss.userpass_auth("nobody", "foo").await.is_err());
}

#[tokio::test]
async fn a_password_change_and_a_rename_apply_at_once() {
    let (root, ss) = private_store(10);
    ss.userpass_create_update_user("ann", "ann", "one")
        .await
        .unwrap();
    assert!(ss.userpass_auth("ann", "one").await.is_ok());
    ss.userpass_create_update_user("ann", "ann", "two")
        .await
        .unwrap();
    assert!(ss.userpass_auth("ann", "one").await.is_err());
    assert!(ss.userpass_auth("ann", "two").await.is_ok());
    ss.rename_user("ann", "anne", "three").await.unwrap();
    assert!(ss.userpass_auth("ann", "two").await.is_err());
    assert!(ss.userpass_auth("anne", "three").await.is_ok());
    assert!(!root.path().join("auth/userpass/users/ann").exists());
}

#[tokio::test]
async fn create_update_writes_the_named_user_and_leaves_the_current_one_as_the_original_does() {
    let root = private_root();
    let ss = store(root.path(), 10);
    ss.userpass_create_update_user("admin", "admin", "admin-pw")
        .await
        .unwrap();
    ss.userpass_create_update_user("admin", "ann", "ann-pw")
        .await
        .unwrap();
    assert!(ss.userpass_auth("admin", "admin-pw").await.is_ok());
    assert!(ss.userpass_auth("ann", "ann-pw").await.is_ok());
    assert_eq!(
        ss.userpass_create_update_user("../admin", "ann", "x").await,
        Err(Error::Unauthorized),
        "the current name is checked too"
    );
    assert!(ss.userpass_auth("ann", "ann-pw").await.is_ok());
}

#[tokio::test]
async fn reading_a_path_the_store_can_never_hold_is_absent_not_refused() {
    let root = private_root();
    let ss = store(root.path(), 10);
    for path in ["../escape", "a//b", "a\nb", ""] {
        assert_eq!(ss.get_secret(path).await, Ok(None), "{path:?}");
    }
}

#[tokio::test]
async fn malformed_password_records_are_refused_without_panicking() {
    let (_root, ss) = private_store(10);
    for (user, password) in [("short", "00ff"), ("nothex", "zz"), ("empty", "")] {
        ss.create_secret(
            &format!("auth/userpass/users/{user}"),
            secret(&[("password", password)]),
        )
        .await
        .unwrap();
        assert_eq!(
            ss.userpass_auth(user, "").await.map(|_| ()),
            Err(Error::Unauthorized)
        );
    }
    write(&ss, "auth/userpass/users/nofield", &[]).await;
    assert!(ss.userpass_auth("nofield", "").await.is_err());
}

#[tokio::test]
async fn any_group_or_other_bit_on_the_root_refuses_every_call() {
    let (root, ss) = private_store(10);
    write(&ss, "s", &[("value", "v")]).await;
    ss.userpass_create_update_user("u", "u", "p").await.unwrap();
    let token = ss.userpass_auth("u", "p").await.unwrap().auth.client_token;

    for mode in [0o701, 0o710, 0o740, 0o702, 0o720, 0o777] {
        fs::set_permissions(root.path(), fs::Permissions::from_mode(mode)).unwrap();
        let u = Err(Error::Unauthorized);
        assert_eq!(ss.approle_auth("r", "s").await.map(|_| ()), u, "{mode:o}");
        assert_eq!(ss.get_secret("s").await.map(|_| ()), u, "{mode:o}");
        assert_eq!(ss.create_secret("s", secret(&[])).await, u, "{mode:o}");
        assert_eq!(ss.token_auth(&token).await, u, "{mode:o}");
        assert_eq!(ss.userpass_auth("u", "p").await.map(|_| ()), u, "{mode:o}");
        assert_eq!(ss.userpass_create_update_user("u", "u", "q").await, u);
        assert!(matches!(
            ss.try_get_secret("s").await,
            Err(ConfidantError::InsecureRoot { .. })
        ));
    }
    // Fixing the mode takes effect at once, and nothing was changed meanwhile.
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        ss.get_secret("s").await.unwrap().unwrap().data,
        secret(&[("value", "v")])
    );
    assert!(ss.userpass_auth("u", "p").await.is_ok());
}

#[tokio::test]
async fn a_missing_root_refuses_every_call() {
    let root = private_root();
    let ss = store(&root.path().join("absent"), 10);
    assert_eq!(ss.get_secret("s").await, Err(Error::Unauthorized));
    assert_eq!(
        ss.approle_auth("r", "s").await.map(|_| ()),
        Err(Error::Unauthorized)
    );
}

#[tokio::test]
async fn secret_files_and_new_directories_carry_the_root_mode() {
    let (root, ss) = private_store(10);
    write(&ss, "dir/sub/s", &[("value", "v")]).await;
    let mode = |p: &str| fs::metadata(root.path().join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("dir/sub/s"), 0o700);
    assert_eq!(mode("dir"), 0o700);
    assert_eq!(mode("dir/sub"), 0o700);
    assert_eq!(
        ss.get_secret("dir/sub").await,
        Ok(None),
        "a directory is no secret"
    );

    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o600)).unwrap();
    if ss.create_secret("t", secret(&[])).await.is_ok() {
        // Only a privileged user can write below a directory without search permission.
        assert_eq!(mode("t"), 0o600);
    }
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o700)).unwrap();
}

#[tokio::test]
async fn an_overwrite_replaces_the_file_whole_and_leaves_no_stale_bytes() {
    let (root, ss) = private_store(10);
    let long = "x".repeat(500);
    write(&ss, "d/s", &[("value", &long)]).await;
    let file = root.path().join("d/s");
    let before = fs::metadata(&file).unwrap();

    // A second name for the old file: an in-place write would change what it shows too.
    let link = root.path().join("old-link");
    fs::hard_link(&file, &link).unwrap();
    let old_bytes = fs::read(&link).unwrap();

    write(&ss, "d/s", &[("value", "short")]).await;
    let after = fs::metadata(&file).unwrap();
    assert_ne!(
        before.ino(),
        after.ino(),
        "replaced by rename, not rewritten"
    );
    assert_eq!(
        fs::read(&link).unwrap(),
        old_bytes,
        "the old file was never touched"
    );
    assert_eq!(
        after.len() as usize,
        12 + postcard_by_hand("value", "short").len(),
        "no stale tail"
    );
    assert_eq!(
        ss.get_secret("d/s").await.unwrap().unwrap().data,
        secret(&[("value", "short")])
    );
    let mut names: Vec<_> = fs::read_dir(root.path().join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["s"], "no temporary file left behind");
}

#[tokio::test]
async fn paths_and_user_names_that_would_leave_the_root_are_refused() {
    let outer = private_root();
    let root = outer.path().join("root");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
    let ss = store(&root, 10);
    let target = outer.path().join("escaped");
    fs::write(&target, file_by_hand("value", "outside", &ROOT_SECRET)).unwrap();

    for path in [
        "../escaped",
        "a/../../escaped",
        "/etc/passwd",
        "",
        "a\0b",
        "a//b",
        "./a",
    ] {
        assert_eq!(
            ss.create_secret(path, secret(&[("value", "v")])).await,
            Err(Error::Unauthorized),
            "{path:?}"
        );
        assert_eq!(ss.get_secret(path).await, Ok(None), "{path:?}");
        assert!(matches!(
            ss.try_get_secret(path).await,
            Err(ConfidantError::InvalidName { .. })
        ));
    }
    assert_eq!(
        fs::read(&target).unwrap(),
        file_by_hand("value", "outside", &ROOT_SECRET)
    );
    for name in ["../../../escaped", "a/b", "..", "", "x\0"] {
        assert_eq!(
            ss.userpass_create_update_user(name, name, "p").await,
            Err(Error::Unauthorized),
            "{name:?}"
        );
        assert_eq!(
            ss.userpass_create_update_user("ok", name, "p").await,
            Err(Error::Unauthorized),
            "{name:?}"
        );
        assert!(ss.userpass_auth(name, "p").await.is_err(), "{name:?}");
    }
    assert_eq!(
        fs::read_dir(&root).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn corrupt_or_truncated_files_are_errors_not_panics() {
    let (root, ss) = private_store(100);
    let whole = file_by_hand("value", "a value long enough to be cut", &ROOT_SECRET);
    for len in 0..whole.len() {
        let path = format!("cut/{len}");
        write_by_hand(root.path(), &path, &whole[..len]);
        assert_eq!(
            ss.get_secret(&path).await,
            Err(Error::Unauthorized),
            "{len}"
        );
        assert!(matches!(
            ss.try_get_secret(&path).await,
            Err(ConfidantError::Corrupt { .. })
        ));
    }
    write_by_hand(root.path(), "garbage", &[0xff; 64]);
    assert_eq!(ss.get_secret("garbage").await, Err(Error::Unauthorized));
    write_by_hand(
        root.path(),
        "other-key",
        &file_by_hand("value", "v", b"another root key"),
    );
    assert!(ss.get_secret("other-key").await.is_err());
    write_by_hand(root.path(), "huge", &vec![0; 2 * 1024 * 1024]);
    assert!(matches!(
        ss.try_get_secret("huge").await,
        Err(ConfidantError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn the_cache_holds_at_most_max_secrets_cached_and_evicts_the_least_recent() {
    let (_root, ss) = private_store(2);
    for name in ["a", "b", "c"] {
        write(&ss, name, &[("value", name)]).await;
    }
    for name in ["a", "b", "a", "c"] {
        ss.get_secret(name).await.unwrap().unwrap();
    }
    let stats = ss.cache_stats();
    assert_eq!((stats.entries, stats.loads, stats.hits), (2, 3, 1));
    ss.get_secret("a").await.unwrap(); // still cached: "b" went
    assert_eq!(ss.cache_stats().loads, 3);
    ss.get_secret("b").await.unwrap();
    assert_eq!(ss.cache_stats().loads, 4);
    assert_eq!(ss.cache_stats().entries, 2);
}

#[tokio::test(start_paused = true)]
async fn cached_secrets_expire_at_their_lease() {
    let (_root, ss) = private_store(10);
    write(&ss, "ttl", &[("ttl", "60s")]).await;
    write(&ss, "default", &[("value", "v")]).await;

    ss.get_secret("ttl").await.unwrap();
    ss.get_secret("default").await.unwrap();
    assert_eq!(ss.cache_stats().loads, 2);

    tokio::time::advance(Duration::from_secs(59)).await;
    ss.get_secret("ttl").await.unwrap();
    assert_eq!(ss.cache_stats().loads, 2, "within its 60 s lease");
    tokio::time::advance(Duration::from_secs(2)).await;
    ss.get_secret("ttl").await.unwrap();
    assert_eq!(ss.cache_stats().loads, 3, "past its 60 s lease");

    tokio::time::advance(Duration::from_secs(300 - 61 - 1)).await;
    ss.get_secret("default").await.unwrap();
    assert_eq!(ss.cache_stats().loads, 3, "within the default 300 s");
    tokio::time::advance(Duration::from_secs(2)).await;
    ss.get_secret("default").await.unwrap();
    assert_eq!(ss.cache_stats().loads, 4, "past the default 300 s");
}

#[tokio::test(start_paused = true)]
async fn an_unauthorized_answer_is_remembered_for_the_unauthorized_timeout() {
    let (root, ss) = private_store(10);
    write_by_hand(root.path(), "s", b"short");
    assert_eq!(ss.get_secret("s").await, Err(Error::Unauthorized));

    // Repaired behind the store's back: the refusal still stands for a while.
    write_by_hand(root.path(), "s", &file_by_hand("value", "v", &ROOT_SECRET));
    tokio::time::advance(UNAUTHORIZED_TIMEOUT - Duration::from_secs(1)).await;
    assert_eq!(ss.get_secret("s").await, Err(Error::Unauthorized));
    assert_eq!(ss.cache_stats().loads, 1);

    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        ss.get_secret("s").await.unwrap().unwrap().data,
        secret(&[("value", "v")])
    );
    assert_eq!(ss.cache_stats().loads, 2);
}

#[tokio::test]
async fn a_write_is_visible_to_the_next_read_of_every_prepared_store() {
    let (_root, ss) = private_store(10);
    let user_ss = FileSecretStore::with_new_auth_prepared(&ss);
    assert_eq!(ss.get_secret("s").await, Ok(None)); // absence is cached
    write(&ss, "s", &[("value", "1")]).await;
    assert_eq!(
        user_ss.get_secret("s").await.unwrap().unwrap().data,
        secret(&[("value", "1")])
    );
    user_ss
        .create_secret("s", secret(&[("value", "2")]))
        .await
        .unwrap();
    assert_eq!(
        ss.get_secret("s").await.unwrap().unwrap().data,
        secret(&[("value", "2")])
    );
}

/// Polls a future once, leaving it pending or done.
async fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) {
    let mut future = future;
    std::future::poll_fn(|cx| {
        let _ = future.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await
}

#[tokio::test]
async fn concurrent_readers_of_an_uncached_secret_cause_one_file_read() {
    let (root, ss) = private_store(10);
    // A FIFO holds the one file read open until every reader has asked.
    let fifo = root.path().join("slow");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());

    type Read = Pin<Box<dyn Future<Output = Result<Option<GetSecretReply>, Error>> + Send>>;
    let mut readers: Vec<Read> = (0..16)
        .map(|_| {
            let ss = ss.clone();
            Box::pin(async move { ss.get_secret("slow").await }) as Read
        })
        .collect();
    for reader in &mut readers {
        poll_once(reader.as_mut()).await;
    }
    // The first reader gives up; its read carries on for the others.
    drop(readers.remove(0));

    // Serves every open of the FIFO, so that a broken cache making several reads fails
    // this test instead of hanging it.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (fifo, stop) = (fifo.clone(), Arc::clone(&stop));
        let bytes = file_by_hand("value", "v", &ROOT_SECRET);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let mut file = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                if !stop.load(Ordering::SeqCst) {
                    // The reader may already have closed its end: nothing to serve then.
                    let _ = file.write_all(&bytes);
                }
            }
        })
    };
    for reader in readers {
        assert_eq!(
            reader.await.unwrap().unwrap().data,
            secret(&[("value", "v")])
        );
    }
    stop.store(true, Ordering::SeqCst);
    // Opening a FIFO for reading and writing never blocks, and releases the writer.
    let _release = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    writer.join().unwrap();
    let stats = ss.cache_stats();
    assert_eq!((stats.loads, stats.hits), (1, 0));
    ss.get_secret("slow").await.unwrap();
    assert_eq!(ss.cache_stats().hits, 1, "the shared read was cached");
}

#[tokio::test]
async fn approle_auth_always_succeeds_on_a_private_root() {
    let root = private_root();
    let reply = store(root.path(), 10)
        .approle_auth("any", "thing")
        .await
        .unwrap();
    assert_eq!(reply.auth.client_token, "some-token");
    assert_eq!(reply.auth.lease_duration, u64::MAX);
}

#[test]
fn tokens_and_secrets_of_the_same_root_secret_work_across_stores() {
    let root = private_root();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = runtime.block_on(async {
        let ss = store(root.path(), 10);
        ss.userpass_create_update_user("u", "u", "p").await.unwrap();
        write(&ss, "s", &[("value", "v")]).await;
        ss.userpass_auth("u", "p").await.unwrap().auth.client_token
    });
    drop(runtime);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ss = store(root.path(), 10);
        assert_eq!(ss.token_auth(&token).await, Ok(()));
        assert!(ss.get_secret("s").await.unwrap().is_some());
        let stranger = FileSecretStore::new(root.path(), &[9; 16], UNAUTHORIZED_TIMEOUT, 10, None);
        assert_eq!(stranger.token_auth(&token).await, Err(Error::Unauthorized));
    });
}

#[tokio::test]
async fn create_if_absent_never_replaces_an_existing_secret() {
    let (root, ss) = private_store(10);
    assert!(ss
        .try_create_secret_if_absent("k/key", secret(&[("value", "first")]))
        .await
        .unwrap());
    assert!(!ss
        .try_create_secret_if_absent("k/key", secret(&[("value", "second")]))
        .await
        .unwrap());
    assert_eq!(
        ss.get_secret("k/key").await.unwrap().unwrap().data,
        secret(&[("value", "first")])
    );
    assert_eq!(fs::read_dir(root.path().join("k")).unwrap().count(), 1);
    assert_eq!(
        fs::metadata(root.path().join("k/key")).unwrap().mode() & 0o7777,
        0o700
    );
}

#[tokio::test]
async fn a_write_cut_short_before_its_rename_leaves_the_old_secret_whole() {
    let (root, ss) = private_store(0);
    write(&ss, "s", &[("value", "old")]).await;
    // What a crash mid-write leaves: a partial temporary file beside the secret.
    let new_bytes = file_by_hand("value", "new", &ROOT_SECRET);
    fs::write(
        root.path().join(".confidant-00000000deadbeef.tmp"),
        &new_bytes[..new_bytes.len() / 2],
    )
    .unwrap();
    assert_eq!(
        ss.get_secret("s").await.unwrap().unwrap().data,
        secret(&[("value", "old")])
    );
    write(&ss, "s", &[("value", "new")]).await;
    assert_eq!(
        ss.get_secret("s").await.unwrap().unwrap().data,
        secret(&[("value", "new")])
    );
}
