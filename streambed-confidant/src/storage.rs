//! Secret files: their encrypted layout, and reading and replacing them safely.
//!
//! A file holds a [sealed](streambed::seal) value under the root secret: a 12-byte random
//! salt followed by the AES-CTR encryption of the postcard encoding of
//! `{ version: u32 = 0, secret_data }`. The format has no integrity check of its own, so
//! decoding is defensive: short, oversized or undecodable files are errors, never panics.
//!
//! Files are replaced and removed through [`streambed::atomic_file`], so readers see either
//! the old or the new secret, whole, even across a crash or power loss. Everything here
//! blocks; callers run it on tokio's blocking pool.

use std::{
    fs::{DirBuilder, File},
    io::{self, Read},
    os::unix::fs::DirBuilderExt,
    path::Path,
};

use serde::{Deserialize, Serialize};
use streambed::{
    atomic_file::{self, AtomicFileError, FileMode},
    crypto::{KEY_SIZE, SALT_SIZE},
    seal::Key,
    secret_store::SecretData,
};

use crate::ConfidantError;

/// The only version of the stored structure so far.
const VERSION: u32 = 0;

/// Secret files larger than this are refused rather than read into memory: secrets are
/// small, and a device with little RAM must not be made to allocate without bound.
pub(crate) const MAX_SECRET_FILE_SIZE: u64 = 1024 * 1024;

#[derive(Serialize)]
struct StoredRef<'a> {
    version: u32,
    secret_data: &'a SecretData,
}

#[derive(Deserialize)]
struct Stored {
    version: u32,
    secret_data: SecretData,
}

/// Encodes and encrypts a secret into the bytes of its file.
pub(crate) fn encode(
    secret_data: &SecretData,
    root_secret: &[u8; KEY_SIZE],
    salt: &[u8; SALT_SIZE],
) -> Result<Vec<u8>, postcard::Error> {
    // Encode after room for the salt, so the secret is sealed in the one buffer written.
    let mut bytes = Vec::with_capacity(SALT_SIZE + 64);
    bytes.extend_from_slice(&[0; SALT_SIZE]);
    let mut bytes = postcard::to_extend(
        &StoredRef {
            version: VERSION,
            secret_data,
        },
        bytes,
    )?;
    Key::new(*root_secret)
        .seal_in_place_with_salt(&mut bytes, salt)
        .expect("the buffer starts with room for the salt");
    Ok(bytes)
}

/// Decrypts and decodes the bytes of a secret file. `path` only names the file in errors.
///
/// Bytes after the encoded structure are ignored: files that the original implementation
/// overwrote in place with shorter data carry a stale tail, and must stay readable.
pub(crate) fn decode(
    mut bytes: Vec<u8>,
    root_secret: &[u8; KEY_SIZE],
    path: &Path,
) -> Result<SecretData, ConfidantError> {
    let corrupt = |reason: String| ConfidantError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let body = Key::new(*root_secret)
        .open(&mut bytes)
        .map_err(|e| corrupt(e.to_string()))?;
    let (stored, _stale_tail) = postcard::take_from_bytes::<Stored>(body)
        .map_err(|e| corrupt(format!("cannot decode (wrong root secret?): {e}")))?;
    if stored.version != VERSION {
        return Err(corrupt(format!("unknown version {}", stored.version)));
    }
    Ok(stored.secret_data)
}

/// Reads a secret file's bytes: `Ok(None)` when there is no such file (or a directory).
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>, ConfidantError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfidantError::io("open", path, e)),
    };
    let metadata = file
        .metadata()
        .map_err(|e| ConfidantError::io("examine", path, e))?;
    if metadata.is_dir() {
        // A directory of secrets (say, `auth`) is not itself a secret.
        return Ok(None);
    }
    let len = metadata.len();
    if len > MAX_SECRET_FILE_SIZE {
        return Err(ConfidantError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{len} bytes exceeds the {MAX_SECRET_FILE_SIZE}-byte limit"),
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` bounds the read even if the file grows after the length was taken.
    file.take(MAX_SECRET_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfidantError::io("read", path, e))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_SIZE {
        return Err(ConfidantError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("exceeds the {MAX_SECRET_FILE_SIZE}-byte limit"),
        });
    }
    Ok(Some(bytes))
}

/// What to do when the target file already exists.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Existing {
    /// Replace it.
    Replace,
    /// Leave it, and report that nothing was written.
    Keep,
}

/// Atomically writes the file at `path` with `bytes`, giving it the permission bits
/// `mode`; missing parent directories are created with `dir_mode`. Answers whether the
/// file was written (`false` only when `existing` is [`Existing::Keep`] and a file was
/// there).
pub(crate) fn write(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    dir_mode: u32,
    existing: Existing,
) -> Result<bool, ConfidantError> {
    let dir = path
        .parent()
        .ok_or_else(|| ConfidantError::io("write", path, io::ErrorKind::InvalidInput.into()))?;
    DirBuilder::new()
        .recursive(true)
        .mode(dir_mode)
        .create(dir)
        .map_err(|e| ConfidantError::io("create directory", dir, e))?;
    let mode = FileMode::Exactly(mode);
    match existing {
        Existing::Replace => atomic_file::replace(path, bytes, mode).map(|()| true),
        Existing::Keep => atomic_file::create_new(path, bytes, mode),
    }
    .map_err(from_atomic_file)
}

/// Removes a file if it exists, making the removal durable.
pub(crate) fn remove(path: &Path) -> Result<(), ConfidantError> {
    atomic_file::remove(path)
        .map(|_existed| ())
        .map_err(from_atomic_file)
}

fn from_atomic_file(e: AtomicFileError) -> ConfidantError {
    ConfidantError::io(e.step.as_str(), e.path, e.source)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use streambed::crypto;

    use super::*;

    fn data(pairs: &[(&str, &str)]) -> SecretData {
        SecretData {
            data: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        }
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let secret = data(&[("value", "00112233445566778899aabbccddeeff"), ("ttl", "1m")]);
        let bytes = encode(&secret, &[3; KEY_SIZE], &[9; SALT_SIZE]).unwrap();
        assert_eq!(&bytes[..SALT_SIZE], &[9; SALT_SIZE]);
        assert_eq!(
            decode(bytes, &[3; KEY_SIZE], Path::new("x")).unwrap(),
            secret
        );
    }

    #[test]
    fn a_file_is_the_salt_then_the_encrypted_postcard_structure() {
        let secret = data(&[("value", "v")]);
        let bytes = encode(&secret, &[3; KEY_SIZE], &[9; SALT_SIZE]).unwrap();
        let mut by_hand = postcard::to_stdvec(&(VERSION, &secret)).unwrap();
        crypto::encrypt(&mut by_hand, &[3; KEY_SIZE], &[9; SALT_SIZE]);
        assert_eq!(bytes, [[9; SALT_SIZE].to_vec(), by_hand].concat());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let secret = data(&[("value", "some fairly long secret value to cut")]);
        let bytes = encode(&secret, &[3; KEY_SIZE], &[9; SALT_SIZE]).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode(bytes[..len].to_vec(), &[3; KEY_SIZE], Path::new("x")).is_err(),
                "length {len}"
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 7u32;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as u8
                })
                .collect();
            let _ = decode(bytes, &[1; KEY_SIZE], Path::new("x"));
        }
    }

    #[test]
    fn a_stale_tail_after_the_structure_is_ignored() {
        let secret = data(&[("value", "v")]);
        let mut bytes = encode(&secret, &[3; KEY_SIZE], &[9; SALT_SIZE]).unwrap();
        bytes.extend_from_slice(b"leftover bytes of a longer, older secret");
        assert_eq!(
            decode(bytes, &[3; KEY_SIZE], Path::new("x")).unwrap(),
            secret
        );
    }

    #[test]
    fn an_unknown_version_is_refused() {
        let mut bytes = [0u8; SALT_SIZE].to_vec();
        bytes.extend(postcard::to_stdvec(&(1u32, data(&[]))).unwrap());
        crypto::encrypt(&mut bytes[SALT_SIZE..], &[3; KEY_SIZE], &[0; SALT_SIZE]);
        let e = decode(bytes, &[3; KEY_SIZE], Path::new("x")).unwrap_err();
        assert!(e.to_string().contains("unknown version 1"), "{e}");
    }
}
