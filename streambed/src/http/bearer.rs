//! The bearer token a client sends on every request (`Authorization: Bearer <token>`),
//! checked once when it is made, so that a token that cannot travel in a header fails at
//! set-up rather than on each request, and kept out of every `Debug` output and log.

use std::{fmt, str::FromStr};

use reqwest::header::HeaderValue;
use thiserror::Error;

/// The `Authorization` header value of a bearer token, marked sensitive.
///
/// ```
/// use streambed::http::BearerToken;
///
/// let token: BearerToken = "s3cr3t-token".parse().unwrap();
/// assert_eq!(token.header_value().to_str().unwrap(), "Bearer s3cr3t-token");
/// assert!(!format!("{token:?}").contains("s3cr3t"));
/// assert!("two\nlines".parse::<BearerToken>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(HeaderValue);

/// A token that cannot be sent as a bearer token: empty, or with characters a header
/// cannot carry (RFC 6750 allows letters, digits and `-._~+/=`; we refuse only what would
/// break the header: control characters, spaces and non-ASCII).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("a bearer token must be non-empty visible ASCII without spaces")]
pub struct InvalidBearerToken;

impl BearerToken {
    /// The token `token`, or why it cannot be sent.
    pub fn new(token: &str) -> Result<Self, InvalidBearerToken> {
        if token.is_empty() || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(InvalidBearerToken);
        }
        let mut value =
            HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| InvalidBearerToken)?;
        value.set_sensitive(true);
        Ok(Self(value))
    }

    /// The whole header value, `Bearer <token>`.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl FromStr for BearerToken {
    type Err = InvalidBearerToken;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        Self::new(token)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_that_would_break_or_smuggle_a_header_are_refused() {
        for token in ["", "a b", "a\r\nX-Admin: 1", "tab\there", "naïve", "end\n"] {
            assert_eq!(
                BearerToken::new(token),
                Err(InvalidBearerToken),
                "{token:?}"
            );
        }
    }

    #[test]
    fn a_token_of_every_character_rfc_6750_allows_is_sent_as_written() {
        let token = "AZaz09-._~+/=";
        let header = BearerToken::new(token).unwrap();
        assert_eq!(header.header_value().as_bytes(), b"Bearer AZaz09-._~+/=");
        assert!(header.header_value().is_sensitive());
    }
}
