//! Sealed values: the one layout every streambed crate gives a value it encrypts with a
//! key, and the one parser of keys written as hex.
//!
//! A sealed value is a fresh 12-byte random salt followed by the AES-128-CTR ciphertext of
//! the value under that salt ([`crypto::encrypt`]). State files, encrypted codec records,
//! secret files and the `confidant` tool's fields all share it, so one owner keeps them
//! byte-compatible. Counter mode hides content but detects neither tampering nor a wrong
//! key: opening with the wrong key yields garbage that the caller's decoder must reject.
//!
//! ```
//! use streambed::seal::Key;
//!
//! let key: Key = "000102030405060708090a0b0c0d0e0f".parse().unwrap();
//! let mut sealed = key.seal(b"21.5", &mut rand::thread_rng());
//! assert_eq!(sealed.len(), streambed::crypto::SALT_SIZE + 4);
//! assert_eq!(key.open(&mut sealed).unwrap(), b"21.5");
//! ```

use std::{fmt, str::FromStr};

use rand::RngCore;

use crate::crypto::{self, KEY_SIZE, SALT_SIZE};

/// Hex digits in a key written as text.
pub const KEY_HEX_LEN: usize = KEY_SIZE * 2;

/// An AES-128 key that seals and opens values.
///
/// Its `Debug` form never shows the key.
///
/// ```
/// use streambed::seal::Key;
///
/// let key = Key::from_hex("00112233445566778899AABBCCDDEEFF").unwrap();
/// assert_eq!(key.to_hex(), "00112233445566778899aabbccddeeff");
/// assert_eq!(format!("{key:?}"), "Key(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_SIZE]);

impl Key {
    /// A key of these bytes.
    pub const fn new(bytes: [u8; KEY_SIZE]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    ///
    /// ```
    /// use streambed::seal::Key;
    ///
    /// let mut rng = rand::thread_rng();
    /// assert_ne!(Key::random(&mut rng), Key::random(&mut rng));
    /// ```
    pub fn random<R: RngCore>(rng: &mut R) -> Self {
        let mut bytes = [0; KEY_SIZE];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses a key written as exactly [`KEY_HEX_LEN`] hex digits, either case, nothing
    /// around them.
    ///
    /// ```
    /// use streambed::seal::{Key, ParseKeyError};
    ///
    /// assert_eq!(Key::from_hex("0011"), Err(ParseKeyError::WrongLength { found: 4 }));
    /// assert_eq!(
    ///     Key::from_hex("0011223344556677889xaabbccddeeff"),
    ///     Err(ParseKeyError::NotHex { character: 'x', index: 19 })
    /// );
    /// ```
    pub fn from_hex(hex: &str) -> Result<Self, ParseKeyError> {
        let found = hex.chars().count();
        if found != KEY_HEX_LEN {
            return Err(ParseKeyError::WrongLength { found });
        }
        let mut bytes = [0; KEY_SIZE];
        for (index, character) in hex.chars().enumerate() {
            let digit = character
                .to_digit(16)
                .ok_or(ParseKeyError::NotHex { character, index })?;
            // A hex digit is below 16, so it fits the byte's half.
            let nibble = digit as u8;
            bytes[index / 2] |= if index % 2 == 0 { nibble << 4 } else { nibble };
        }
        Ok(Self(bytes))
    }

    /// The key as [`KEY_HEX_LEN`] lower-case hex digits, the form [`from_hex`](Self::from_hex)
    /// reads and secret stores keep.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The key's bytes, for the primitives in [`crypto`].
    pub fn as_bytes(&self) -> &[u8; KEY_SIZE] {
        &self.0
    }

    /// Seals `plain` under a fresh salt from `rng`: salt ‖ ciphertext, in one allocation.
    pub fn seal<R: RngCore>(&self, plain: &[u8], rng: &mut R) -> Vec<u8> {
        let mut sealed = Vec::with_capacity(SALT_SIZE + plain.len());
        sealed.extend_from_slice(&[0; SALT_SIZE]);
        sealed.extend_from_slice(plain);
        let (salt_room, message) = sealed.split_at_mut(SALT_SIZE);
        self.seal_parts(salt_room, message, &crypto::salt(rng));
        sealed
    }

    /// Seals in place, without allocating: `buf` holds [`SALT_SIZE`] bytes of room for the
    /// salt followed by the plain message, and ends up holding the sealed value. Lets a
    /// caller serialize straight into the buffer it stores, after `vec![0; SALT_SIZE]`.
    ///
    /// ```
    /// use streambed::{crypto::SALT_SIZE, seal::Key};
    ///
    /// let key = Key::new([7; 16]);
    /// let mut buf = vec![0; SALT_SIZE];
    /// buf.extend_from_slice(b"on");
    /// key.seal_in_place(&mut buf, &mut rand::thread_rng()).unwrap();
    /// assert_eq!(key.open(&mut buf).unwrap(), b"on");
    /// ```
    pub fn seal_in_place<R: RngCore>(&self, buf: &mut [u8], rng: &mut R) -> Result<(), TooShort> {
        self.seal_in_place_with_salt(buf, &crypto::salt(rng))
    }

    /// [`seal_in_place`](Self::seal_in_place) with a salt chosen by the caller, for known
    /// answers and formats that pick their salt elsewhere. The salt must never be used
    /// twice with one key: counter mode reveals the XOR of two messages sealed alike.
    ///
    /// ```
    /// use streambed::seal::Key;
    ///
    /// // The known answer of SPEC §1 (crypto), laid out as a sealed value.
    /// let mut buf = [0u8; 12 + 4];
    /// buf[12..].copy_from_slice(b"The ");
    /// Key::new([0; 16]).seal_in_place_with_salt(&mut buf, &[0; 12]).unwrap();
    /// assert_eq!(hex::encode(&buf[12..]), "bafc2e0f");
    /// ```
    pub fn seal_in_place_with_salt(
        &self,
        buf: &mut [u8],
        salt: &[u8; SALT_SIZE],
    ) -> Result<(), TooShort> {
        if buf.len() < SALT_SIZE {
            return Err(TooShort { len: buf.len() });
        }
        let (salt_room, message) = buf.split_at_mut(SALT_SIZE);
        self.seal_parts(salt_room, message, salt);
        Ok(())
    }

    /// Opens a sealed value in place, answering the plain message: the part of `sealed`
    /// after its salt. Input shorter than a salt is [`TooShort`].
    ///
    /// ```
    /// use streambed::seal::{Key, TooShort};
    ///
    /// assert_eq!(Key::new([7; 16]).open(&mut [0; 5]), Err(TooShort { len: 5 }));
    /// ```
    pub fn open<'a>(&self, sealed: &'a mut [u8]) -> Result<&'a mut [u8], TooShort> {
        let len = sealed.len();
        let (salt, message) = sealed
            .split_first_chunk_mut::<SALT_SIZE>()
            .ok_or(TooShort { len })?;
        crypto::decrypt(message, &self.0, salt);
        Ok(message)
    }

    fn seal_parts(&self, salt_room: &mut [u8], message: &mut [u8], salt: &[u8; SALT_SIZE]) {
        salt_room.copy_from_slice(salt);
        crypto::encrypt(message, &self.0, salt);
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl FromStr for Key {
    type Err = ParseKeyError;

    fn from_str(hex: &str) -> Result<Self, Self::Err> {
        Self::from_hex(hex)
    }
}

impl From<[u8; KEY_SIZE]> for Key {
    fn from(bytes: [u8; KEY_SIZE]) -> Self {
        Self(bytes)
    }
}

/// Why text is not a key.
///
/// ```
/// let error = streambed::seal::Key::from_hex("").unwrap_err();
/// assert_eq!(error.to_string(), "found 0 characters where a key has 32 hex digits");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseKeyError {
    /// The text is not [`KEY_HEX_LEN`] characters long.
    #[error("found {found} characters where a key has {KEY_HEX_LEN} hex digits")]
    WrongLength {
        /// Characters (not bytes) found.
        found: usize,
    },
    /// A character is not a hex digit.
    #[error("{character:?} at index {index} is not a hex digit")]
    NotHex {
        /// The offending character.
        character: char,
        /// Its 0-based position, counted in characters.
        index: usize,
    },
}

/// A sealed value, or a buffer to seal in place, shorter than its salt.
///
/// ```
/// let error = streambed::seal::TooShort { len: 3 };
/// assert_eq!(error.to_string(), "3 bytes is shorter than the 12-byte salt of a sealed value");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes is shorter than the {SALT_SIZE}-byte salt of a sealed value")]
pub struct TooShort {
    /// The length found.
    pub len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    const QUICK_FOX: &[u8] = b"The quick brown fox jumps over the lazy dog.";

    /// SPEC §1 (crypto): the encryption of [`QUICK_FOX`] under an all-zero key and salt.
    const QUICK_FOX_SEALED_HEX: &str =
        "bafc2e0f979c95ebeb6202ffc61631558b5b052e6b5d836a00b2cea50fc5aadd461c7ee09b333a0761a0796e";

    #[test]
    fn sealing_then_opening_gives_back_the_message_at_every_length() {
        let key = Key::new([3; KEY_SIZE]);
        let mut rng = StdRng::seed_from_u64(1);
        for len in 0..300 {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut sealed = key.seal(&plain, &mut rng);
            assert_eq!(sealed.len(), SALT_SIZE + len);
            if len >= 4 {
                assert_ne!(
                    &sealed[SALT_SIZE..],
                    &plain[..],
                    "length {len} left in the clear"
                );
            }
            assert_eq!(key.open(&mut sealed).unwrap(), &plain[..], "length {len}");
        }
    }

    #[test]
    fn a_sealed_value_is_the_salt_then_the_spec_ciphertext() {
        let mut buf = [0; SALT_SIZE].to_vec();
        buf.extend_from_slice(QUICK_FOX);
        Key::new([0; KEY_SIZE])
            .seal_in_place_with_salt(&mut buf, &[0; SALT_SIZE])
            .unwrap();
        assert_eq!(&buf[..SALT_SIZE], &[0; SALT_SIZE]);
        assert_eq!(hex::encode(&buf[SALT_SIZE..]), QUICK_FOX_SEALED_HEX);
    }

    #[test]
    fn a_known_sealed_value_opens() {
        let mut sealed = [0; SALT_SIZE].to_vec();
        sealed.extend(hex::decode(QUICK_FOX_SEALED_HEX).unwrap());
        assert_eq!(
            Key::new([0; KEY_SIZE]).open(&mut sealed).unwrap(),
            QUICK_FOX
        );
    }

    #[test]
    fn seal_and_seal_in_place_agree_for_one_salt() {
        let key = Key::new([9; KEY_SIZE]);
        let sealed = key.seal(QUICK_FOX, &mut StdRng::seed_from_u64(5));
        let salt: [u8; SALT_SIZE] = sealed[..SALT_SIZE].try_into().unwrap();
        let mut in_place = [0; SALT_SIZE].to_vec();
        in_place.extend_from_slice(QUICK_FOX);
        key.seal_in_place_with_salt(&mut in_place, &salt).unwrap();
        assert_eq!(in_place, sealed);
    }

    #[test]
    fn each_seal_draws_a_fresh_salt() {
        let key = Key::new([9; KEY_SIZE]);
        let mut rng = rand::thread_rng();
        let a = key.seal(QUICK_FOX, &mut rng);
        let b = key.seal(QUICK_FOX, &mut rng);
        assert_ne!(a[..SALT_SIZE], b[..SALT_SIZE]);
        assert_ne!(a[SALT_SIZE..], b[SALT_SIZE..]);
    }

    #[test]
    fn input_shorter_than_a_salt_is_an_error_not_a_panic() {
        let key = Key::new([1; KEY_SIZE]);
        for len in 0..SALT_SIZE {
            let mut buf = vec![0; len];
            assert_eq!(key.open(&mut buf), Err(TooShort { len }));
            assert_eq!(
                key.seal_in_place(&mut buf, &mut rand::thread_rng()),
                Err(TooShort { len })
            );
        }
        let mut just_a_salt = [0; SALT_SIZE];
        assert_eq!(key.open(&mut just_a_salt).unwrap(), b"");
    }

    #[test]
    fn hex_keys_parse_in_either_case_and_print_in_lower_case() {
        let key = Key::from_hex("000102030405060708090A0B0C0D0E0f").unwrap();
        assert_eq!(key.as_bytes(), &core::array::from_fn(|i| i as u8));
        assert_eq!(key.to_hex(), "000102030405060708090a0b0c0d0e0f");
        assert_eq!(Key::from_hex(&key.to_hex()), Ok(key));
    }

    #[test]
    fn hex_of_the_wrong_length_says_how_long_it_was() {
        for (text, found) in [
            ("", 0),
            ("000102030405060708090a0b0c0d0e0", 31),
            ("000102030405060708090a0b0c0d0e0f00", 34),
            (" 000102030405060708090a0b0c0d0e0f", 33),
            // Lengths count characters, not bytes: 31 digits and a 2-byte 'é'.
            ("000102030405060708090a0b0c0d0eé", 31),
        ] {
            assert_eq!(
                Key::from_hex(text),
                Err(ParseKeyError::WrongLength { found }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_non_hex_character_is_named_with_its_index() {
        for (text, character, index) in [
            ("g1111111111111111111111111111111", 'g', 0),
            ("000102030405060708090a0b0c0d0e0g", 'g', 31),
            ("000102030405060708090a0b0c0d0e0é", 'é', 31),
            ("00010203040506070809 a0b0c0d0e0f", ' ', 20),
        ] {
            assert_eq!(
                Key::from_hex(text),
                Err(ParseKeyError::NotHex { character, index }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = Key::new([0xab; KEY_SIZE]);
        assert!(!format!("{key:?}").contains("ab"));
        assert!(!format!("{key:?}").contains("171"));
    }
}
