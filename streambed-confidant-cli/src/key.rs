//! The root secret from the credentials directory, and the data key from the store.

use std::{
    collections::HashMap,
    fs, io,
    path::{Path, PathBuf},
};

use streambed::{
    seal::{Key, ParseKeyError},
    secret_store::SecretData,
};
use streambed_confidant::{ConfidantError, FileSecretStore};

/// The file in the credentials directory holding the root secret.
const ROOT_SECRET_FILE: &str = "root-secret";

/// The optional file in the credentials directory holding the AppRole secret id.
const SECRET_ID_FILE: &str = "ss-secret-id";

/// Credential files are a line long; anything much larger is not one.
const MAX_CREDENTIAL_FILE_SIZE: u64 = 4096;

/// The data field of a secret holding the hex key.
const VALUE_FIELD: &str = "value";

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A credential file could not be read.
    #[error("cannot read {path}: {source}")]
    CredentialIo {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The root secret file does not hold 32 hex characters.
    #[error("{path} must hold the root secret as 32 hex characters: {source}")]
    InvalidRootSecret {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ParseKeyError,
    },
    /// The store refused or failed.
    #[error("cannot use the secret {path:?}: {source}")]
    Store {
        /// The secret path of the key.
        path: String,
        /// The store's reason.
        source: ConfidantError,
    },
    /// Decrypting needs an existing key.
    #[error("there is no secret at {0:?} to decrypt with")]
    Absent(String),
    /// The secret exists but holds no usable key.
    #[error("the secret {path:?} has no {VALUE_FIELD:?} field of 32 hex characters: {reason}")]
    InvalidKey {
        /// The secret path of the key.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads `root-secret` from the credentials directory.
pub fn read_root_secret(credentials_directory: &Path) -> Result<Key, KeyError> {
    let path = credentials_directory.join(ROOT_SECRET_FILE);
    let line = read_first_line(&path)?.ok_or_else(|| KeyError::CredentialIo {
        path: path.clone(),
        source: io::ErrorKind::NotFound.into(),
    })?;
    Key::from_hex(&line).map_err(|source| KeyError::InvalidRootSecret { path, source })
}

/// Reads the optional `ss-secret-id` from the credentials directory ("" when absent).
pub fn read_secret_id(credentials_directory: &Path) -> Result<String, KeyError> {
    Ok(read_first_line(&credentials_directory.join(SECRET_ID_FILE))?.unwrap_or_default())
}

/// The file's first line, trimmed; `None` when there is no such file.
fn read_first_line(path: &Path) -> Result<Option<String>, KeyError> {
    let io_error = |source| KeyError::CredentialIo {
        path: path.to_path_buf(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    let mut text = String::new();
    io::Read::read_to_string(
        &mut io::Read::take(file, MAX_CREDENTIAL_FILE_SIZE),
        &mut text,
    )
    .map_err(io_error)?;
    Ok(Some(text.lines().next().unwrap_or("").trim().to_string()))
}

/// The key at `path`; when there is none and `create` is set, a new random key stored
/// there first. Of several processes creating the key at once, all end up with the one
/// that was stored.
pub async fn resolve(ss: &FileSecretStore, path: &str, create: bool) -> Result<Key, KeyError> {
    let store_error = |source| KeyError::Store {
        path: path.to_string(),
        source,
    };
    if let Some(reply) = ss.try_get_secret(path).await.map_err(store_error)? {
        return key_of(&reply.data, path);
    }
    if !create {
        return Err(KeyError::Absent(path.to_string()));
    }
    let key = Key::random(&mut rand::thread_rng());
    let data = SecretData {
        data: HashMap::from([(VALUE_FIELD.to_string(), key.to_hex())]),
    };
    if ss
        .try_create_secret_if_absent(path, data)
        .await
        .map_err(store_error)?
    {
        return Ok(key);
    }
    // Another process created it first: use theirs.
    match ss.try_get_secret(path).await.map_err(store_error)? {
        Some(reply) => key_of(&reply.data, path),
        None => Err(KeyError::Absent(path.to_string())),
    }
}

fn key_of(data: &SecretData, path: &str) -> Result<Key, KeyError> {
    let invalid = |reason: String| KeyError::InvalidKey {
        path: path.to_string(),
        reason,
    };
    let value = data
        .data
        .get(VALUE_FIELD)
        .ok_or_else(|| invalid("there is no such field".to_string()))?;
    Key::from_hex(value).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_secret_is_the_first_line_of_32_hex_characters() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(ROOT_SECRET_FILE);
        fs::write(&file, "1800af9b273e4b9ea71ec723426933a4\nignored\n").unwrap();
        assert_eq!(
            read_root_secret(dir.path()).unwrap().to_hex(),
            "1800af9b273e4b9ea71ec723426933a4"
        );
        for (bad, what) in [
            ("", "found 0 characters"),
            ("1800af9b", "found 8 characters"),
            ("1800af9b273e4b9ea71ec723426933zz", "'z' at index 30"),
        ] {
            fs::write(&file, bad).unwrap();
            let error = read_root_secret(dir.path()).unwrap_err();
            assert!(
                matches!(error, KeyError::InvalidRootSecret { .. }),
                "{error}"
            );
            assert!(error.to_string().contains(what), "{error}");
        }
        fs::remove_file(&file).unwrap();
        assert!(matches!(
            read_root_secret(dir.path()),
            Err(KeyError::CredentialIo { .. })
        ));
    }

    #[test]
    fn a_stored_key_that_is_missing_or_not_hex_says_what_is_wrong() {
        let secret = |pairs: &[(&str, &str)]| SecretData {
            data: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let key = "000102030405060708090a0b0c0d0e0f";
        assert_eq!(
            key_of(&secret(&[(VALUE_FIELD, key)]), "k")
                .unwrap()
                .to_hex(),
            key
        );
        for (data, what) in [
            (secret(&[]), "no such field"),
            (secret(&[(VALUE_FIELD, "00")]), "found 2 characters"),
        ] {
            let error = key_of(&data, "k").unwrap_err();
            assert!(matches!(error, KeyError::InvalidKey { .. }), "{error}");
            assert!(error.to_string().contains(what), "{error}");
        }
    }

    #[test]
    fn the_secret_id_is_optional() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_secret_id(dir.path()).unwrap(), "");
        fs::write(dir.path().join(SECRET_ID_FILE), "abc\n").unwrap();
        assert_eq!(read_secret_id(dir.path()).unwrap(), "abc");
    }
}
