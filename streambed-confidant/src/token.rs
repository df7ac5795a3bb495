//! Signed, self-contained user tokens.
//!
//! A token is the standard base64 (with padding) of
//! `{"data":{"username":"<name>","expires":<ms since the epoch>},"signature":"<hex>"}`
//! where the signature is HMAC-SHA256, under the root secret, of the `data` object exactly
//! as it is written in the token. Verification checks the signature over those very
//! bytes (not over a re-encoding), so any token a peer signed verifies here.

use std::{
    borrow::Cow,
    time::{Duration, SystemTime},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use streambed::crypto::{self, KEY_SIZE};

/// Longest token accepted, in characters: real ones are a few hundred.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The signed part; field order is part of the format.
#[derive(Deserialize, Serialize)]
struct TokenData<'a> {
    #[serde(borrow)]
    username: Cow<'a, str>,
    expires: u64,
}

#[derive(Deserialize)]
struct ClientToken<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    signature: Cow<'a, str>,
}

/// Milliseconds since the Unix epoch of a point in time (0 before the epoch).
pub(crate) fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Issues a token for `username` valid for `lifetime` from `now`.
pub(crate) fn issue(
    username: &str,
    now: SystemTime,
    lifetime: Duration,
    root_secret: &[u8; KEY_SIZE],
) -> String {
    // A lifetime beyond `u64` milliseconds saturates: a plain cast would wrap it to a short one.
    let lifetime = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
    let expires = epoch_millis(now).saturating_add(lifetime);
    let data = TokenData {
        username: Cow::Borrowed(username),
        expires,
    };
    // Serialising a struct of a string and an integer cannot fail.
    let data = serde_json::to_string(&data).unwrap_or_default();
    let signature = hex::encode(crypto::sign(data.as_bytes(), root_secret));
    STANDARD.encode(format!(r#"{{"data":{data},"signature":"{signature}"}}"#))
}

/// What a valid token says: whose it is and until when.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Claims {
    pub(crate) username: String,
    /// Milliseconds since the Unix epoch; the token is valid up to and including it.
    pub(crate) expires: u64,
}

/// Checks a token's signature and expiry at `now`, answering what it carries.
pub(crate) fn verify(token: &str, now: SystemTime, root_secret: &[u8; KEY_SIZE]) -> Option<Claims> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let json = STANDARD.decode(token.trim()).ok()?;
    let client_token: ClientToken = serde_json::from_slice(&json).ok()?;
    let signature = hex::decode(client_token.signature.as_bytes()).ok()?;
    let data = client_token.data.get();
    if !crypto::verify(data.as_bytes(), root_secret, &signature) {
        return None;
    }
    let data: TokenData = serde_json::from_str(data).ok()?;
    (epoch_millis(now) <= data.expires).then(|| Claims {
        username: data.username.into_owned(),
        expires: data.expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_SIZE] = [5; KEY_SIZE];

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = issue("mitchellh", now, Duration::from_secs(10), &KEY);
        let claims = Claims {
            username: "mitchellh".to_string(),
            expires: 1_700_000_010_000,
        };
        assert_eq!(verify(&token, now, &KEY).as_ref(), Some(&claims));
        let at_expiry = now + Duration::from_secs(10);
        assert_eq!(verify(&token, at_expiry, &KEY), Some(claims));
        let after = at_expiry + Duration::from_millis(1);
        assert_eq!(verify(&token, after, &KEY), None);
        assert_eq!(verify(&token, now, &[6; KEY_SIZE]), None);
    }

    #[test]
    fn a_lifetime_too_long_for_u64_milliseconds_never_expires() {
        // Found by the `confidant_token` fuzz target: the lifetime used to wrap modulo 2^64 ms.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let lifetime = Duration::from_secs(8_386_094_080_398_008_609);
        let token = issue("ann", now, lifetime, &KEY);
        let far_future = now + Duration::from_secs(1 << 60);
        let user = |claims: Option<Claims>| claims.map(|c| c.username);
        assert_eq!(
            user(verify(&token, far_future, &KEY)).as_deref(),
            Some("ann")
        );
        assert_eq!(
            user(verify(&token, now + lifetime, &KEY)).as_deref(),
            Some("ann")
        );
    }

    #[test]
    fn the_issued_layout_is_the_documented_one() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1000);
        let token = issue("a\"b", now, Duration::from_millis(500), &KEY);
        let json = String::from_utf8(STANDARD.decode(token).unwrap()).unwrap();
        let data = r#"{"username":"a\"b","expires":1500}"#;
        let signature = hex::encode(crypto::sign(data.as_bytes(), &KEY));
        assert_eq!(
            json,
            format!(r#"{{"data":{data},"signature":"{signature}"}}"#)
        );
    }

    #[test]
    fn garbage_is_refused() {
        let now = SystemTime::now();
        for token in ["", "!!!", "e30=", &STANDARD.encode("{\"data\":1}")] {
            assert_eq!(verify(token, now, &KEY), None, "{token}");
        }
        assert_eq!(verify(&"A".repeat(MAX_TOKEN_LEN + 4), now, &KEY), None);
    }
}
