//! API URLs built from a server URL and path segments, apart from the retry policy and the
//! client because both clients build every URL through it and it is where names that
//! come from users (topics, groups, user names) meet the path.

use reqwest::Url;
use thiserror::Error;

/// Why [`api_url`] could not build an API URL.
///
/// ```
/// use streambed::http::{api_url, ApiUrlError};
///
/// let server: reqwest::Url = "mailto:ops@example.com".parse().unwrap();
/// assert_eq!(api_url(&server, ["v1"]), Err(ApiUrlError::NotABase(server)));
///
/// let server: reqwest::Url = "http://localhost:8082".parse().unwrap();
/// let error = api_url(&server, ["topics", ".."]).unwrap_err();
/// assert_eq!(error, ApiUrlError::Segment("..".to_string()));
/// assert_eq!(error.to_string(), r#"".." cannot be an API path segment: empty, "." and ".." are refused"#);
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ApiUrlError {
    /// The server URL cannot have a path appended (it is not an `http(s)://` URL).
    #[error("server URL {0} cannot be a base for API paths")]
    NotABase(Url),
    /// A segment is empty, `.` or `..`, which would make the path another one (the URL
    /// rules drop `.` and `..`, and an empty segment names no resource).
    #[error("{0:?} cannot be an API path segment: empty, \".\" and \"..\" are refused")]
    Segment(String),
}

/// The URL of an API path on `server`: its path (a trailing `/` or not) followed by
/// `segments`, each percent-encoded as one path segment, so that no value (a topic or a
/// user name holding `/` or `?`) can reach another API path. The server URL's query and
/// fragment are dropped. A segment that is empty, `.` or `..` is refused
/// ([`ApiUrlError::Segment`]) rather than shortening the path.
///
/// ```
/// let server: reqwest::Url = "http://localhost:8200?x=1".parse().unwrap();
/// let url = streambed::http::api_url(&server, ["v1", "a/b?"]).unwrap();
/// assert_eq!(url.as_str(), "http://localhost:8200/v1/a%2Fb%3F");
/// ```
pub fn api_url<'a>(
    server: &Url,
    segments: impl IntoIterator<Item = &'a str>,
) -> Result<Url, ApiUrlError> {
    let mut url = server.clone();
    url.set_query(None);
    url.set_fragment(None);
    let mut path = url
        .path_segments_mut()
        .map_err(|()| ApiUrlError::NotABase(server.clone()))?;
    path.pop_if_empty();
    for segment in segments {
        // `PathSegmentsMut` silently skips `.` and `..`: a topic named `..` would post
        // to the parent path.
        if matches!(segment, "" | "." | "..") {
            return Err(ApiUrlError::Segment(segment.to_owned()));
        }
        path.push(segment);
    }
    drop(path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str) -> Url {
        url.parse().unwrap()
    }

    #[test]
    fn segments_that_would_change_the_path_are_refused() {
        for segment in ["", ".", ".."] {
            assert_eq!(
                api_url(&server("http://host/api/"), ["topics", segment]),
                Err(ApiUrlError::Segment(segment.to_owned())),
                "{segment:?}"
            );
        }
    }

    #[test]
    fn segments_holding_dots_or_percent_signs_stay_one_segment() {
        let url = api_url(
            &server("http://host/api"),
            ["topics", "...", "%2E%2E", "a.b"],
        )
        .unwrap();
        assert_eq!(url.path(), "/api/topics/.../%252E%252E/a.b");
    }

    #[test]
    fn the_server_path_is_kept_with_or_without_a_trailing_slash() {
        for base in ["http://host/kafka/", "http://host/kafka"] {
            let url = api_url(&server(base), ["consumers", "g"]).unwrap();
            assert_eq!(url.as_str(), "http://host/kafka/consumers/g", "{base}");
        }
    }
}
