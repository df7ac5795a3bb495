//! Symmetric encryption, message authentication and password hashing, in the exact forms
//! that streambed's files and tokens use.
//!
//! - [`encrypt`]/[`decrypt`]: AES-128 in counter mode, in place. Keystream block *i*
//!   (counting from 1) is AES(key, big-endian `u32` *i* ‖ 12-byte salt). A fresh random
//!   [`salt`] per message makes the keystream unique; the salt is stored beside the
//!   ciphertext. Counter mode hides content but does not detect tampering: pair it with
//!   [`sign`] where that matters.
//! - [`sign`]/[`verify`]: HMAC-SHA256; [`verify`] compares in constant time.
//! - [`hash`]: salt ‖ SHA-512(salt ‖ bytes), used for stored passwords.
//!
//! [`encrypt`] works on the stack only and hands the AES implementation many blocks at a
//! time (8 for small messages, 64 for larger ones), so CPUs with AES instructions (AES-NI,
//! ARMv8 crypto) process them in parallel. It keeps the last expanded key of each thread,
//! since expanding a key costs more than encrypting a small record.
//!
//! ```
//! use streambed::crypto::{decrypt, encrypt, salt, KEY_SIZE};
//!
//! let key = [7u8; KEY_SIZE];
//! let salt = salt(&mut rand::thread_rng());
//! let mut message = *b"meet at the usual place";
//! encrypt(&mut message, &key, &salt);
//! assert_ne!(&message, b"meet at the usual place");
//! decrypt(&mut message, &key, &salt);
//! assert_eq!(&message, b"meet at the usual place");
//! ```

use aes::{
    cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit},
    Aes128Enc,
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};
use std::cell::RefCell;

/// Bytes in an encryption key (AES-128).
pub const KEY_SIZE: usize = 16;

/// Bytes in a salt: the nonce part of each counter block, and the prefix of password hashes.
pub const SALT_SIZE: usize = 12;

const BLOCK_SIZE: usize = 16;

/// Blocks of keystream made per call into AES for small messages: the 8 blocks that AES-NI
/// pipelines, so a 16-byte record clears only 128 bytes of buffer.
const SMALL_BATCH: usize = 8;
/// Blocks per call into AES for larger messages: fewer calls amortise their overhead, and
/// 1 KiB still sits easily on the stack of any target.
const LARGE_BATCH: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// Returns a fresh random salt.
///
/// ```
/// let a = streambed::crypto::salt(&mut rand::thread_rng());
/// let b = streambed::crypto::salt(&mut rand::thread_rng());
/// assert_ne!(a, b);
/// ```
pub fn salt<T: RngCore>(rng: &mut T) -> [u8; SALT_SIZE] {
    let mut salt = [0; SALT_SIZE];
    rng.fill_bytes(&mut salt);
    salt
}

/// Encrypts `bytes` in place with AES-128 in counter mode; see the [module docs](self)
/// for the counter layout. Never allocates.
///
/// ```
/// let mut bytes = *b"The quick brown fox jumps over the lazy dog.";
/// streambed::crypto::encrypt(&mut bytes, &[0; 16], &[0; 12]);
/// assert_eq!(hex::encode(&bytes[..8]), "bafc2e0f979c95eb");
/// ```
pub fn encrypt(bytes: &mut [u8], key: &[u8; KEY_SIZE], salt: &[u8; SALT_SIZE]) {
    // Expanding an AES key costs several times more than encrypting a small record, and
    // services encrypt many records with one key: keep the last expanded key per thread.
    // The cached key stays in this thread's memory until another key replaces it or the
    // thread ends, even after the caller wipes its own copy; a process that must not keep
    // keys around can call `encrypt` once with a throw-away key to overwrite it.
    let cached = LAST_CIPHER.try_with(|cell| {
        let mut slot = cell.borrow_mut();
        match &*slot {
            Some((cached_key, cipher)) if cached_key == key => apply_keystream(cipher, bytes, salt),
            _ => {
                let cipher = new_cipher(key);
                apply_keystream(&cipher, bytes, salt);
                *slot = Some((*key, cipher));
            }
        }
    });
    if cached.is_err() {
        // The thread is being torn down and its cache is gone: expand the key afresh.
        apply_keystream(&new_cipher(key), bytes, salt);
    }
}

thread_local! {
    static LAST_CIPHER: RefCell<Option<([u8; KEY_SIZE], Aes128Enc)>> = const { RefCell::new(None) };
}

fn new_cipher(key: &[u8; KEY_SIZE]) -> Aes128Enc {
    // Encryption-only keys: counter mode never runs AES backwards, so the decryption key
    // schedule would be wasted work.
    Aes128Enc::new(GenericArray::from_slice(key))
}

fn apply_keystream(cipher: &Aes128Enc, bytes: &mut [u8], salt: &[u8; SALT_SIZE]) {
    // Small messages clear only a small keystream buffer; large ones amortise each call
    // into AES over more blocks.
    if bytes.len() <= BLOCK_SIZE * SMALL_BATCH {
        apply_keystream_in_batches::<SMALL_BATCH>(cipher, bytes, salt)
    } else {
        apply_keystream_in_batches::<LARGE_BATCH>(cipher, bytes, salt)
    }
}

fn apply_keystream_in_batches<const BLOCKS: usize>(
    cipher: &Aes128Enc,
    bytes: &mut [u8],
    salt: &[u8; SALT_SIZE],
) {
    let mut keystream = [GenericArray::<u8, _>::default(); BLOCKS];
    let mut counter: u32 = 1;
    for chunk in bytes.chunks_mut(BLOCK_SIZE * BLOCKS) {
        let blocks = chunk.len().div_ceil(BLOCK_SIZE);
        for block in &mut keystream[..blocks] {
            block[..4].copy_from_slice(&counter.to_be_bytes());
            block[4..].copy_from_slice(salt);
            counter = counter.wrapping_add(1);
        }
        cipher.encrypt_blocks(&mut keystream[..blocks]);
        for (data, stream) in chunk.chunks_mut(BLOCK_SIZE).zip(&keystream[..blocks]) {
            xor_into(data, stream);
        }
    }
}

/// Decrypts `bytes` in place: counter mode is its own inverse, so this is [`encrypt`].
///
/// ```
/// let mut bytes = hex::decode("bafc2e0f979c95ebeb6202ffc61631558b5b052e6b5d836a00b2cea50fc5aadd461c7ee09b333a0761a0796e").unwrap();
/// streambed::crypto::decrypt(&mut bytes, &[0; 16], &[0; 12]);
/// assert_eq!(bytes, b"The quick brown fox jumps over the lazy dog.");
/// ```
pub fn decrypt(bytes: &mut [u8], key: &[u8; KEY_SIZE], salt: &[u8; SALT_SIZE]) {
    encrypt(bytes, key, salt)
}

#[inline(always)]
fn xor_into(data: &mut [u8], stream: &[u8]) {
    if let (Ok(data), Ok(stream)) = (
        <&mut [u8; BLOCK_SIZE]>::try_from(&mut *data),
        <&[u8; BLOCK_SIZE]>::try_from(stream),
    ) {
        // A whole block: one 128-bit XOR.
        let mixed = u128::from_ne_bytes(*data) ^ u128::from_ne_bytes(*stream);
        *data = mixed.to_ne_bytes();
    } else {
        for (d, s) in data.iter_mut().zip(stream) {
            *d ^= s;
        }
    }
}

/// Signs `bytes` with HMAC-SHA256 under `key` (of any length), returning the 32-byte tag.
///
/// ```
/// let tag = streambed::crypto::sign(b"The quick brown fox jumps over the lazy dog.", b"changeme");
/// assert_eq!(hex::encode(&tag[..4]), "ed31e94c");
/// ```
pub fn sign(bytes: &[u8], key: &[u8]) -> Vec<u8> {
    mac(bytes, key).finalize().into_bytes().to_vec()
}

/// Checks that `compare_bytes` is the HMAC-SHA256 tag of `bytes` under `key`. The
/// comparison takes the same time wherever the tags differ, so it leaks nothing of the
/// expected tag.
///
/// ```
/// use streambed::crypto::{sign, verify};
///
/// let tag = sign(b"hello", b"key");
/// assert!(verify(b"hello", b"key", &tag));
/// assert!(!verify(b"hello!", b"key", &tag));
/// ```
pub fn verify(bytes: &[u8], key: &[u8], compare_bytes: &[u8]) -> bool {
    mac(bytes, key).verify_slice(compare_bytes).is_ok()
}

fn mac(bytes: &[u8], key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so construction cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(bytes);
    mac
}

/// Hashes `bytes` (typically a password) with a salt: the result is the salt followed by
/// SHA-512(salt ‖ bytes), 76 bytes in all, so the salt travels with the hash.
///
/// ```
/// let hashed = streambed::crypto::hash(b"secret", &[1; 12]);
/// assert_eq!(hashed.len(), 12 + 64);
/// assert_eq!(&hashed[..12], &[1; 12]);
/// ```
pub fn hash(bytes: &[u8], salt: &[u8; SALT_SIZE]) -> Vec<u8> {
    let digest = Sha512::new()
        .chain_update(salt)
        .chain_update(bytes)
        .finalize();
    let mut hashed = Vec::with_capacity(SALT_SIZE + digest.len());
    hashed.extend_from_slice(salt);
    hashed.extend_from_slice(&digest);
    hashed
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog.";

    /// A block-at-a-time reference of the counter layout, to check the batched version
    /// against at every length and batch boundary.
    fn reference_encrypt(bytes: &mut [u8], key: &[u8; KEY_SIZE], salt: &[u8; SALT_SIZE]) {
        let cipher = Aes128Enc::new(GenericArray::from_slice(key));
        for (i, chunk) in bytes.chunks_mut(BLOCK_SIZE).enumerate() {
            let mut block = GenericArray::default();
            block[..4].copy_from_slice(&(i as u32 + 1).to_be_bytes());
            block[4..].copy_from_slice(salt);
            cipher.encrypt_block(&mut block);
            for (d, s) in chunk.iter_mut().zip(block.iter()) {
                *d ^= s;
            }
        }
    }

    #[test]
    fn encrypt_matches_the_known_answer() {
        let mut bytes = FOX.to_vec();
        encrypt(&mut bytes, &[0; KEY_SIZE], &[0; SALT_SIZE]);
        assert_eq!(
            hex::encode(&bytes),
            "bafc2e0f979c95ebeb6202ffc61631558b5b052e6b5d836a00b2cea50fc5aadd461c7ee09b333a0761a0796e"
        );
        decrypt(&mut bytes, &[0; KEY_SIZE], &[0; SALT_SIZE]);
        assert_eq!(bytes, FOX);
    }

    #[test]
    fn sign_matches_the_known_answer() {
        assert_eq!(
            hex::encode(sign(FOX, b"changeme")),
            "ed31e94c161aea6ff2300c72b17741f71b616463f294dac0542324bbdbf8a2de"
        );
    }

    #[test]
    fn hash_matches_the_known_answer() {
        assert_eq!(
            hex::encode(hash(FOX, &[0; SALT_SIZE])),
            concat!(
                "000000000000000000000000",
                "27cbc61af1b821ec863e77076df08016f41eb583d668426520b8ce5c85c150ad",
                "a36f89061955c1bd12340764ee471f370528326dfa060a8c98978fb25774b35d"
            )
        );
    }

    #[test]
    fn batched_encrypt_equals_block_at_a_time_at_every_boundary() {
        let key = *b"0123456789abcdef";
        let salt = *b"saltsaltsalt";
        let batch = BLOCK_SIZE * LARGE_BATCH;
        let small = BLOCK_SIZE * SMALL_BATCH;
        for len in (0..40)
            .chain(small - 17..small + 17)
            .chain(batch - 17..batch + 17)
            .chain([3 * batch + 5, 70_001])
        {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut fast = plain.clone();
            let mut slow = plain.clone();
            encrypt(&mut fast, &key, &salt);
            reference_encrypt(&mut slow, &key, &salt);
            assert_eq!(fast, slow, "length {len}");
        }
    }

    #[test]
    fn alternating_keys_never_reuse_the_wrong_cached_key() {
        let plain = FOX.to_vec();
        let keys = [[1u8; KEY_SIZE], [2u8; KEY_SIZE]];
        let expected: Vec<Vec<u8>> = keys
            .iter()
            .map(|key| {
                let mut bytes = plain.clone();
                reference_encrypt(&mut bytes, key, &[3; SALT_SIZE]);
                bytes
            })
            .collect();
        for round in 0..4 {
            let which = round % 2;
            let mut bytes = plain.clone();
            encrypt(&mut bytes, &keys[which], &[3; SALT_SIZE]);
            assert_eq!(bytes, expected[which], "round {round}");
        }
    }

    #[test]
    fn different_salts_give_different_ciphertexts() {
        let mut a = FOX.to_vec();
        let mut b = FOX.to_vec();
        encrypt(&mut a, &[1; KEY_SIZE], &[0; SALT_SIZE]);
        encrypt(&mut b, &[1; KEY_SIZE], &[1; SALT_SIZE]);
        assert_ne!(a, b);
    }

    #[test]
    fn verify_accepts_only_the_exact_tag() {
        let tag = sign(FOX, b"changeme");
        assert!(verify(FOX, b"changeme", &tag));
        assert!(!verify(FOX, b"changemf", &tag));
        assert!(!verify(b"The quick brown fox", b"changeme", &tag));
        let mut flipped = tag.clone();
        flipped[31] ^= 1;
        assert!(!verify(FOX, b"changeme", &flipped));
        assert!(!verify(FOX, b"changeme", &tag[..31]));
        assert!(!verify(FOX, b"changeme", &[]));
    }

    #[test]
    fn salt_fills_every_byte_from_the_rng() {
        struct Fixed;
        impl RngCore for Fixed {
            fn next_u32(&mut self) -> u32 {
                0xabab_abab
            }
            fn next_u64(&mut self) -> u64 {
                0xabab_abab_abab_abab
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                dest.fill(0xab)
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
                dest.fill(0xab);
                Ok(())
            }
        }
        assert_eq!(salt(&mut Fixed), [0xab; SALT_SIZE]);
    }
}
