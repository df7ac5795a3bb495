//! Reading a bearer token from a request's `Authorization` header (RFC 6750 §2.1).
//!
//! Apart so that the rules for a malformed header, which gets 401 rather than being
//! ignored, are in one place and tested alone.

use axum::http::{header, HeaderMap};

/// Why an `Authorization` header is not a bearer token.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub(crate) enum BearerError {
    #[error("more than one Authorization header")]
    Repeated,
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("the bearer token is empty or holds characters a token cannot have")]
    BadToken,
}

/// The scheme, matched without regard to case as RFC 7235 asks.
const SCHEME: &str = "bearer ";

/// The bearer token of a request, `None` when it has no `Authorization` header. The token
/// is borrowed from the header: nothing is allocated.
pub(crate) fn token(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BearerError::Repeated);
    }
    let value = value.to_str().map_err(|_| BearerError::BadToken)?;
    let scheme = value.get(..SCHEME.len()).ok_or(BearerError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(BearerError::NotBearer);
    }
    let token = value[SCHEME.len()..].trim_matches(' ');
    // RFC 6750's b64token, widened to every visible character but the space: tokens
    // of the family's stores are base64 or Vault's `hvs.` strings.
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BearerError::BadToken);
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn no_header_is_no_token() {
        assert_eq!(token(&headers(&[])), Ok(None));
    }

    #[test]
    fn the_scheme_is_matched_without_regard_to_case() {
        for value in ["Bearer abc=", "bearer abc=", "BEARER  abc= "] {
            assert_eq!(token(&headers(&[value])), Ok(Some("abc=")), "{value}");
        }
    }

    #[test]
    fn another_scheme_or_a_bare_token_is_malformed() {
        for value in ["Basic YTpi", "abc", "Bearer", "Bearerabc"] {
            assert_eq!(
                token(&headers(&[value])),
                Err(BearerError::NotBearer),
                "{value}"
            );
        }
    }

    #[test]
    fn an_empty_or_spaced_token_is_malformed() {
        for value in ["Bearer ", "Bearer  ", "Bearer a b", "Bearer a\tb"] {
            assert_eq!(
                token(&headers(&[value])),
                Err(BearerError::BadToken),
                "{value}"
            );
        }
        let mut map = HeaderMap::new();
        map.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(token(&map), Err(BearerError::BadToken));
    }

    #[test]
    fn two_headers_are_malformed() {
        assert_eq!(
            token(&headers(&["Bearer a", "Bearer b"])),
            Err(BearerError::Repeated)
        );
    }
}
