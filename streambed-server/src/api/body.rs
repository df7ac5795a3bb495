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
    pub(super) async fn read(self, limit: usize, timeout: Duration) -> Result<Vec<u8>, ApiError> {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes"),
            )
        };
        if self.declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        let capacity = self.declared.map_or(0, |len| len as usize);
        let mut bytes = Vec::with_capacity(capacity);
        let mut stream = self.body.into_data_stream();
        let take = |frame: Result<Bytes, axum::Error>, bytes: &mut Vec<u8>| {
            let frame = frame.map_err(|error| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("request body unreadable: {error}"),
                )
            })?;
            if bytes.len() + frame.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&frame);
            Ok(())
        };
        // A small body usually came with the headers: read at once, it needs no timer.
        loop {
            match stream.next().now_or_never() {
                Some(Some(frame)) => take(frame, &mut bytes)?,
                Some(None) => return Ok(bytes),
                None => break,
            }
        }
        // The rest, under the timer: boxed, so that the common case above does not carry
        // the timer in every handler's future.
        let rest = async move {
            while let Some(frame) = stream.next().await {
                take(frame, &mut bytes)?;
            }
            Ok(bytes)
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
