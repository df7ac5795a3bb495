//! User tokens reach the confidant secret store from clients: verifying arbitrary text
//! must never panic, and a token issued for any user name must verify to that name until
//! it expires, and not after.
//!
//! Input: the whole input, as text, is a token to verify. When it has at least 8 bytes, the
//! first 8 are also a little-endian token lifetime in seconds and the rest a user name.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use streambed_confidant::fuzzing::{issue_token, verify_token};

const KEY: [u8; 16] = [7; 16];

/// Names longer than this make tokens beyond the verifier's length limit.
const MAX_USERNAME_LEN: usize = 512;

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    let _ = verify_token(&String::from_utf8_lossy(data), now, &KEY);

    if data.len() < 8 || data.len() - 8 > MAX_USERNAME_LEN {
        return;
    }
    let (lifetime, username) = data.split_at(8);
    let lifetime = Duration::from_secs(u64::from_le_bytes(lifetime.try_into().unwrap()));
    let username = String::from_utf8_lossy(username);
    let token = issue_token(&username, now, lifetime, &KEY);
    assert_eq!(verify_token(&token, now, &KEY).as_deref(), Some(&*username));
    assert_eq!(verify_token(&token, now, &[8; 16]), None);
    if let Some(expiry) = now.checked_add(lifetime) {
        assert_eq!(
            verify_token(&token, expiry, &KEY).as_deref(),
            Some(&*username),
            "refused at its expiry time, lifetime {lifetime:?}"
        );
        let after = expiry.checked_add(Duration::from_millis(1));
        let representable = after
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .is_some_and(|d| d.as_millis() < u128::from(u64::MAX));
        if let (Some(after), true) = (after, representable) {
            assert_eq!(
                verify_token(&token, after, &KEY),
                None,
                "valid after expiry"
            );
        }
    }
});
