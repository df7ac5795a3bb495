//! What a handler answers: a status, headers and a body whose delivery the test controls.

use std::time::Duration;

use http::{header::HeaderName, HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

/// One step of a streamed body, sent through a [`BodySender`].
#[derive(Debug)]
pub(crate) enum Frame {
    /// Bytes written as one HTTP chunk and flushed at once.
    Data(Vec<u8>),
    /// Close the connection in the middle of the body.
    Abort,
}

/// How the body of a [`Response`] reaches the client.
#[derive(Debug)]
pub(crate) enum Body {
    /// Written at once, with a `Content-Length`.
    Full(Vec<u8>),
    /// Written as HTTP chunks, one per (non-empty) piece, each flushed before the next,
    /// with an optional pause between them so that they reach the client in separate
    /// reads; then ended, cut or held open.
    Chunks {
        pieces: Vec<Vec<u8>>,
        pause: Duration,
        after: AfterChunks,
    },
    /// Chunks sent by the test as it goes, through a [`BodySender`].
    Stream(mpsc::UnboundedReceiver<Frame>),
    /// No answer at all: the connection is closed as soon as the request is read.
    DropConnection,
}

/// What follows the last piece of a [`Response::chunks_then`] body.
///
/// ```
/// use std::time::Duration;
/// use streambed_test::server::{AfterChunks, Response, StatusCode};
///
/// // Half a record, then the connection breaks, as a server that crashes mid-answer.
/// let broken = Response::new(StatusCode::OK)
///     .chunks_then([&b"{\"offs"[..]], Duration::ZERO, AfterChunks::Cut);
/// # let _ = broken;
/// ```
#[derive(Debug, Clone, Copy, Default, Eq, PartialEq)]
pub enum AfterChunks {
    /// The body ends properly, with the terminating empty chunk.
    #[default]
    End,
    /// The connection is cut: the client sees the body break off.
    Cut,
    /// Nothing more is sent and the body never ends: the connection stays open until the
    /// client hangs up or the server stops, as a stream with nothing new to say.
    HoldOpen,
}

/// An answer for the test server to send, built by a handler.
///
/// ```
/// use streambed_test::server::{Response, StatusCode};
///
/// let ok = Response::json(&serde_json::json!({"offsets": [{"offset": 1}]}));
/// assert_eq!(ok.status_code(), StatusCode::OK);
/// let missing = Response::new(StatusCode::NOT_FOUND).text("no such topic");
/// assert_eq!(missing.status_code(), StatusCode::NOT_FOUND);
/// ```
#[derive(Debug)]
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
}

impl Response {
    /// An answer with the given status and an empty body.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Body::Full(Vec::new()),
        }
    }

    /// A `200 OK` answer carrying `value` as JSON.
    ///
    /// Panics when `value` cannot be serialized: that is a bug in the test.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        let bytes = serde_json::to_vec(value).expect("test response serializes to JSON");
        Self::new(StatusCode::OK)
            .header("content-type", "application/json")
            .bytes(bytes)
    }

    /// No answer: the server reads the request, then closes the connection, as a server
    /// that crashes while handling it would.
    ///
    /// ```
    /// let dropped = streambed_test::server::Response::drop_connection();
    /// # let _ = dropped;
    /// ```
    pub fn drop_connection() -> Self {
        Self {
            body: Body::DropConnection,
            ..Self::new(StatusCode::OK)
        }
    }

    /// A streamed answer: the body is sent as HTTP chunks, each one as the test passes it
    /// to the returned [`BodySender`]; dropping the sender ends the body properly, and
    /// [`BodySender::abort`] cuts the connection in the middle of it.
    ///
    /// ```
    /// use streambed_test::server::{Response, StatusCode};
    ///
    /// let (response, body) = Response::stream(StatusCode::OK);
    /// body.send(&b"{\"offset\":"[..]);
    /// body.send(&b"0}"[..]);
    /// drop(body);
    /// # let _ = response;
    /// ```
    pub fn stream(status: StatusCode) -> (Self, BodySender) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let response = Self {
            body: Body::Stream(receiver),
            ..Self::new(status)
        };
        (response, BodySender { sender })
    }

    /// Changes the status.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a header. Panics on a name or value HTTP does not allow: a bug in the test.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
        let value = HeaderValue::from_str(value).expect("valid header value");
        self.headers.append(name, value);
        self
    }

    /// Sets the body, sent at once with a `Content-Length`.
    pub fn bytes(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Full(body.into());
        self
    }

    /// Sets a plain text body.
    pub fn text(self, body: &str) -> Self {
        self.header("content-type", "text/plain").bytes(body)
    }

    /// Sends the body as HTTP chunks, one for each piece, flushing each and pausing
    /// `pause` between them (zero for none) so that a client sees the pieces in separate
    /// reads, split exactly where the test chose.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed_test::server::{Response, StatusCode};
    ///
    /// let body = br#"{"offset":1}{"offset":2}"#;
    /// let split = Response::new(StatusCode::OK)
    ///     .chunks([&body[..5], &body[5..15], &body[15..]], Duration::from_millis(5));
    /// # let _ = split;
    /// ```
    pub fn chunks<I, C>(self, pieces: I, pause: Duration) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<Vec<u8>>,
    {
        self.chunks_then(pieces, pause, AfterChunks::End)
    }

    /// Sends the body as HTTP chunks like [`chunks`](Self::chunks), then does what
    /// `after` says: end the body, cut the connection in the middle of it, or hold it
    /// open without ending it. Empty pieces are skipped: an empty chunk would end the body.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed_test::server::{AfterChunks, Response, StatusCode};
    ///
    /// // One record, then silence until the client gives up waiting.
    /// let idle = Response::new(StatusCode::OK)
    ///     .chunks_then([&b"{\"offset\":1}\n"[..]], Duration::ZERO, AfterChunks::HoldOpen);
    /// # let _ = idle;
    /// ```
    pub fn chunks_then<I, C>(mut self, pieces: I, pause: Duration, after: AfterChunks) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<Vec<u8>>,
    {
        let pieces = pieces
            .into_iter()
            .map(Into::into)
            .filter(|piece: &Vec<u8>| !piece.is_empty())
            .collect();
        self.body = Body::Chunks {
            pieces,
            pause,
            after,
        };
        self
    }

    /// The status this answer carries.
    pub fn status_code(&self) -> StatusCode {
        self.status
    }
}

/// Feeds the body of a [`Response::stream`] answer. Dropping it ends the body.
#[derive(Debug, Clone)]
pub struct BodySender {
    sender: mpsc::UnboundedSender<Frame>,
}

impl BodySender {
    /// Sends `bytes` as one HTTP chunk; `false` once the connection is gone (the client
    /// went away or the server stopped). Empty chunks are skipped: an empty chunk would
    /// end the body.
    ///
    /// ```
    /// let (_response, body) =
    ///     streambed_test::server::Response::stream(streambed_test::server::StatusCode::OK);
    /// assert!(body.send(&b"still connected"[..]));
    /// ```
    pub fn send(&self, bytes: impl Into<Vec<u8>>) -> bool {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return !self.sender.is_closed();
        }
        self.sender.send(Frame::Data(bytes)).is_ok()
    }

    /// Cuts the connection now, without ending the body: the client sees the stream break.
    pub fn abort(self) {
        let _ = self.sender.send(Frame::Abort);
    }

    /// Whether the connection has gone (client disconnected or server stopped).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Waits until the connection has gone, for tests that check that a client
    /// disconnects.
    pub async fn closed(&self) {
        self.sender.closed().await
    }
}
