//! Serde adapter that writes byte vectors as standard base64 with padding, the form the
//! Kafka HTTP API uses for record and header values.
//!
//! Binary formats get the same base64 string: upstream does so, and values a user
//! serialized with it (in CBOR, say) must read back with ours.

use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{de, Deserializer, Serializer};
use std::fmt;

pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&base64::display::Base64Display::new(bytes, &STANDARD))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_str(Base64Visitor)
}

struct Base64Visitor;

impl de::Visitor<'_> for Base64Visitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a standard base64 string with padding")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        STANDARD
            .decode(text)
            .map_err(|error| E::custom(format_args!("invalid base64 value: {error}")))
    }
}
