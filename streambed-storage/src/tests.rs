//! Tests against a real `FileSecretStore` in a temporary directory.

use super::*;
use serde::Deserialize;
use std::{collections::HashMap, os::unix::fs::PermissionsExt, time::Duration};
use streambed::secret_store::SecretData;
use streambed_confidant::FileSecretStore;

const KEY_PATH: &str = "default/secrets.state.key";

#[derive(Debug, Default, Deserialize, PartialEq, Serialize)]
struct State {
    readings: Vec<u32>,
    name: String,
}

fn state() -> State {
    State {
        readings: vec![1, 2, 3],
        name: "kitchen".to_string(),
    }
}

/// A new directory holding a secret store (in `secrets`) with a valid key, and the path
/// of the state file beside it.
async fn keyed_store() -> (tempfile::TempDir, FileSecretStore, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ss = FileSecretStore::new(secrets, &[9; 16], Duration::from_secs(60), 10, None);
    set_key(&ss, "000102030405060708090a0b0c0d0e0f").await;
    let path = dir.path().join("state");
    (dir, ss, path)
}

async fn set_key(ss: &FileSecretStore, key_hex: &str) {
    let data = SecretData {
        data: HashMap::from([("value".to_string(), key_hex.to_string())]),
    };
    ss.create_secret(KEY_PATH, data).await.unwrap();
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn load(path: &Path, ss: &FileSecretStore) -> Result<State, Box<dyn Error>> {
    load_struct(path, ss, KEY_PATH, |bytes: &[u8]| {
        serde_json::from_slice(bytes)
    })
    .await
}

async fn save(path: &Path, ss: &FileSecretStore, state: &State) -> Result<(), Box<dyn Error>> {
    save_struct(
        path,
        ss,
        KEY_PATH,
        serde_json::to_vec,
        rand::thread_rng,
        state,
    )
    .await
}

#[tokio::test]
async fn saved_state_loads_back() {
    let (_dir, ss, path) = keyed_store().await;
    save(&path, &ss, &state()).await.unwrap();
    let on_disk = std::fs::read(&path).unwrap();
    assert!(
        !on_disk.windows(7).any(|w| w == b"kitchen"),
        "the state is stored in the clear"
    );
    assert_eq!(load(&path, &ss).await.unwrap(), state());
}

#[tokio::test]
async fn a_missing_file_loads_the_default() {
    let (dir, ss, _) = keyed_store().await;
    assert_eq!(
        load(&dir.path().join("absent"), &ss).await.unwrap(),
        State::default()
    );
}

#[tokio::test]
async fn a_file_sealed_with_another_key_loads_the_default() {
    let (_dir, ss, path) = keyed_store().await;
    save(&path, &ss, &state()).await.unwrap();
    set_key(&ss, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").await;
    assert_eq!(load(&path, &ss).await.unwrap(), State::default());
}

#[tokio::test]
async fn an_unreadable_path_is_a_read_error() {
    let (dir, ss, _) = keyed_store().await;
    // A directory where the file should be cannot be read as one.
    let error = load(dir.path(), &ss).await.unwrap_err();
    let error = error.downcast_ref::<StorageError>().unwrap();
    assert!(matches!(error, StorageError::Read { .. }), "{error}");
}

#[tokio::test]
async fn saving_without_a_key_is_an_error_and_writes_nothing() {
    let (_dir, ss, path) = keyed_store().await;
    let error = save_struct(
        &path,
        &ss,
        "default/secrets.absent.key",
        serde_json::to_vec,
        rand::thread_rng,
        &state(),
    )
    .await
    .unwrap_err();
    let error = error.downcast_ref::<StorageError>().unwrap();
    assert!(
        matches!(error, StorageError::CannotEncrypt { .. }),
        "{error}"
    );
    assert!(!path.exists());
}

#[tokio::test]
async fn a_secret_that_is_no_key_says_what_is_wrong_and_touches_nothing() {
    let (_dir, ss, path) = keyed_store().await;
    save(&path, &ss, &state()).await.unwrap();
    let before = std::fs::read(&path).unwrap();
    set_key(&ss, "not a hex key").await;
    for error in [
        save(&path, &ss, &state()).await.unwrap_err(),
        load(&path, &ss).await.unwrap_err(),
    ] {
        let error = error.downcast_ref::<StorageError>().unwrap();
        assert!(
            matches!(
                error,
                StorageError::InvalidKey {
                    source: ParseKeyError::WrongLength { found: 13 },
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains(KEY_PATH), "{error}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn state_files_are_in_the_form_of_encrypt_struct() {
    let (_dir, ss, path) = keyed_store().await;
    save(&path, &ss, &state()).await.unwrap();
    let mut on_disk = std::fs::read(&path).unwrap();
    let opened: Option<State> =
        streambed::decrypt_buf(&ss, KEY_PATH, &mut on_disk, serde_json::from_slice).await;
    assert_eq!(opened, Some(state()));

    let sealed = streambed::encrypt_struct(
        &ss,
        KEY_PATH,
        |s: &State| serde_json::to_vec(s),
        rand::thread_rng,
        &state(),
    )
    .await
    .unwrap();
    std::fs::write(&path, sealed).unwrap();
    assert_eq!(load(&path, &ss).await.unwrap(), state());
}

#[tokio::test]
async fn saving_replaces_the_old_state_and_leaves_no_temporary_files() {
    let (dir, ss, path) = keyed_store().await;
    save(&path, &ss, &state()).await.unwrap();
    let newer = State {
        readings: vec![9],
        name: "k".to_string(),
    };
    save(&path, &ss, &newer).await.unwrap();
    assert_eq!(load(&path, &ss).await.unwrap(), newer);
    assert_eq!(file_names(dir.path()), vec!["secrets", "state"]);
}

#[tokio::test]
async fn a_failed_write_names_the_file_and_leaves_what_was_there() {
    let (dir, ss, path) = keyed_store().await;
    // A non-empty directory where the state file should go: the final rename must fail.
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep"), b"untouched").unwrap();
    let error = save(&path, &ss, &state()).await.unwrap_err();
    let error = error.downcast_ref::<StorageError>().unwrap();
    assert!(matches!(error, StorageError::Write { .. }), "{error}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert_eq!(std::fs::read(path.join("keep")).unwrap(), b"untouched");
    assert_eq!(
        file_names(dir.path()),
        vec!["secrets", "state"],
        "a temporary file was left"
    );
}

#[tokio::test]
async fn a_state_whose_key_is_unavailable_is_an_error_not_a_fresh_start() {
    let (_dir, ss, path) = keyed_store().await;
    save(&path, &ss, &state()).await.unwrap();
    let before = std::fs::read(&path).unwrap();
    let error =
        load_struct::<State, _, _>(&path, &ss, "default/secrets.absent.key", |b: &[u8]| {
            serde_json::from_slice(b)
        })
        .await
        .unwrap_err();
    let error = error.downcast_ref::<StorageError>().unwrap();
    assert!(
        matches!(error, StorageError::KeyUnavailable { .. }),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
