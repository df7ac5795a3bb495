//! Request and response bodies of the API: JSON in and out, and reading a request's body
//! whole within the server's size and time limits.
//!
//! A handler takes its request apart before it first awaits (see [`PendingBody::of`]):
//! what it keeps across the await is then the body alone, not the whole request with its
//! headers and extensions, which keeps every handler's future small (moved and copied on
//! each request).

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt;

use super::ApiError;

/// A request's body, not read yet, with the length its headers declared.
pub(super) struct PendingBody {
    declared: Option<u64>,
    body: Body,
}

impl PendingBody {
    /// The body of the request whose head is `parts`.
    pub(super) fn of(parts: &Parts, body: Body) -> Self {
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        Self { declared, body }
    }

    /// Reads the whole body, refusing more than `limit` bytes with 413 (before reading
    /// anything when the declared length already says so) and a body that takes longer
    /// than `timeout` with 408.
    pub(super) async fn read(self, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
        if self.declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large(limit));
        }
        let mut gathered = Gathered::new(self.declared.map_or(0, |len| len as usize), limit);
        let mut stream = self.body.into_data_stream();
        // A small body usually came with the headers: read at once, it needs no timer.
        loop {
            match stream.next().now_or_never() {
                Some(Some(frame)) => gathered.push(frame)?,
                Some(None) => return Ok(gathered.into_bytes()),
                None => break,
            }
        }
        // The rest, under the timer: boxed, so that the common case above does not carry
        // the timer in every handler's future.
        let rest = async move {
            while let Some(frame) = stream.next().await {
                gathered.push(frame)?;
            }
            Ok(gathered.into_bytes())
        };
        Box::pin(tokio::time::timeout(timeout, rest))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("request body not received within {timeout:?}"),
                )
            })?
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body larger than {limit} bytes"),
    )
}

/// The frames of a body read so far, within its size limit. A body that came in one
/// frame, as a sensor's small request does, is kept as that frame: no copy, no allocation.
struct Gathered {
    frames: Frames,
    /// The length the headers declared, to allocate once when frames must be joined.
    declared: usize,
    limit: usize,
}

enum Frames {
    None,
    One(Bytes),
    Joined(Vec<u8>),
}

impl Gathered {
    fn new(declared: usize, limit: usize) -> Self {
        Self {
            frames: Frames::None,
            declared,
            limit,
        }
    }

    fn len(&self) -> usize {
        match &self.frames {
            Frames::None => 0,
            Frames::One(frame) => frame.len(),
            Frames::Joined(bytes) => bytes.len(),
        }
    }

    fn push(&mut self, frame: Result<Bytes, axum::Error>) -> Result<(), ApiError> {
        let frame = frame.map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("request body unreadable: {error}"),
            )
        })?;
        if self.len() + frame.len() > self.limit {
            return Err(too_large(self.limit));
        }
        self.frames = match std::mem::replace(&mut self.frames, Frames::None) {
            Frames::None => Frames::One(frame),
            Frames::One(first) => {
                let mut joined = Vec::with_capacity(self.declared.max(first.len() + frame.len()));
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&frame);
                Frames::Joined(joined)
            }
            Frames::Joined(mut joined) => {
                joined.extend_from_slice(&frame);
                Frames::Joined(joined)
            }
        };
        Ok(())
    }

    fn into_bytes(self) -> Bytes {
        match self.frames {
            Frames::None => Bytes::new(),
            Frames::One(frame) => frame,
            Frames::Joined(bytes) => Bytes::from(bytes),
        }
    }
}

pub(super) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reply not expressible as JSON: {error}"),
        )
        .into_response(),
    }
}

/// `bytes` as a `T`, or 400 saying whether the JSON is malformed or not the request.
pub(super) fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    // JSON is UTF-8 (RFC 8259 §8.1). Checked once for the whole body, which costs less
    // than `from_slice`'s check of every string (each key among them) on its own.
    let text = std::str::from_utf8(bytes).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed JSON: not UTF-8: {error}"),
        )
    })?;
    serde_json::from_str(text).map_err(|error| {
        let kind = match error.classify() {
            serde_json::error::Category::Data => "invalid request",
            _ => "malformed JSON",
        };
        ApiError::new(StatusCode::BAD_REQUEST, format!("{kind}: {error}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &'static [u8]) -> Result<Bytes, axum::Error> {
        Ok(Bytes::from_static(bytes))
    }

    #[test]
    fn a_body_in_one_frame_is_kept_as_that_frame_without_a_copy() {
        let mut gathered = Gathered::new(5, 100);
        let sent = Bytes::from_static(b"hello");
        gathered.push(Ok(sent.clone())).unwrap();
        let body = gathered.into_bytes();
        assert_eq!(body.as_ptr(), sent.as_ptr());
        assert_eq!(body, "hello");
    }

    #[test]
    fn frames_are_joined_in_order() {
        let mut gathered = Gathered::new(0, 100);
        for part in [&b"{\"re"[..], b"cords\"", b":[]}"] {
            gathered.push(Ok(Bytes::from_static(part))).unwrap();
        }
        assert_eq!(gathered.into_bytes(), "{\"records\":[]}");
    }

    #[test]
    fn a_frame_that_takes_the_body_over_its_limit_is_refused_with_413() {
        let mut gathered = Gathered::new(0, 8);
        gathered.push(frame(b"12345")).unwrap();
        let refused = gathered.push(frame(b"6789")).unwrap_err();
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Exactly at the limit is allowed.
        let mut gathered = Gathered::new(0, 8);
        gathered.push(frame(b"1234")).unwrap();
        gathered.push(frame(b"5678")).unwrap();
        assert_eq!(gathered.into_bytes(), "12345678");
    }

    #[test]
    fn no_frames_make_an_empty_body() {
        assert!(Gathered::new(0, 8).into_bytes().is_empty());
    }
}
