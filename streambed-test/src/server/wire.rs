//! HTTP/1.1 on one connection: requests read, responses written, several per connection.
//!
//! Written by hand rather than with a server library so that a test controls what goes on
//! the wire: where chunks end, and when a connection is cut.

use std::{io, time::Duration};

use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use super::response::{Body, Frame, Response};

/// Longest request head accepted; the server is for tests, whose requests are small.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// The reading side of a connection, with the bytes received but not yet used.
pub(crate) struct Reader<S> {
    half: ReadHalf<S>,
    buffer: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite> Reader<S> {
    pub(crate) fn new(half: ReadHalf<S>) -> Self {
        Self {
            half,
            buffer: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer; `false` at the end of the stream.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut scratch = [0u8; 4096];
        let read = self.half.read(&mut scratch).await?;
        self.buffer.extend_from_slice(&scratch[..read]);
        Ok(read > 0)
    }

    /// Takes `n` bytes from the front, reading until there are that many.
    async fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buffer.len() < n {
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let rest = self.buffer.split_off(n);
        Ok(std::mem::replace(&mut self.buffer, rest))
    }

    /// Takes one CRLF-terminated line, without the CRLF.
    async fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let mut line = self.take(end + 2).await?;
                line.truncate(end);
                return Ok(line);
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Waits for input while a response streams, to notice a client that hangs up;
    /// returns when the connection is closed or fails.
    pub(crate) async fn hang_up(&mut self) {
        loop {
            match self.fill().await {
                Ok(true) => {
                    // A client does not send while a body streams to it; anything sent is
                    // dropped rather than let grow without bound.
                    if self.buffer.len() > MAX_HEAD {
                        self.buffer.clear();
                    }
                }
                Ok(false) | Err(_) => return,
            }
        }
    }

    /// Reads the next request; `None` when the client closed the connection between
    /// requests.
    pub(crate) async fn request(&mut self) -> io::Result<Option<Request<Vec<u8>>>> {
        // Skip blank lines some clients send between requests.
        let request_line = loop {
            if self.buffer.is_empty() && !self.fill().await? {
                return Ok(None);
            }
            let line = self.line().await?;
            if !line.is_empty() {
                break line;
            }
        };
        let request_line =
            std::str::from_utf8(&request_line).map_err(|_| invalid("request line not UTF-8"))?;
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(format!("bad request line {request_line:?}")));
        };
        let version = match version {
            "HTTP/1.1" => Version::HTTP_11,
            "HTTP/1.0" => Version::HTTP_10,
            other => return Err(invalid(format!("unsupported version {other:?}"))),
        };
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(target)
            .version(version);
        let mut head_size = request_line.len();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            head_size += line.len();
            if head_size > MAX_HEAD {
                return Err(invalid("request head too long"));
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| invalid("header without colon"))?;
            let name =
                HeaderName::from_bytes(&line[..colon]).map_err(|e| invalid(e.to_string()))?;
            let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
                .map_err(|e| invalid(e.to_string()))?;
            builder = builder.header(name, value);
        }
        let mut request = builder
            .body(Vec::new())
            .map_err(|e| invalid(e.to_string()))?;
        let body = self.body(request.headers()).await?;
        *request.body_mut() = body;
        Ok(Some(request))
    }

    async fn body(&mut self, headers: &HeaderMap) -> io::Result<Vec<u8>> {
        let chunked = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
        if chunked {
            let mut body = Vec::new();
            loop {
                let size_line = self.line().await?;
                let size = std::str::from_utf8(&size_line)
                    .ok()
                    .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                    .ok_or_else(|| invalid("bad chunk size"))?;
                if body.len() + size > MAX_BODY {
                    return Err(invalid("request body too large"));
                }
                if size == 0 {
                    // Trailers, up to the blank line.
                    while !self.line().await?.is_empty() {}
                    return Ok(body);
                }
                body.extend(self.take(size).await?);
                if !self.line().await?.is_empty() {
                    return Err(invalid("chunk not followed by CRLF"));
                }
            }
        }
        let length = match headers.get(header::CONTENT_LENGTH) {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| invalid("bad content-length"))?,
            None => 0,
        };
        if length > MAX_BODY {
            return Err(invalid("request body too large"));
        }
        self.take(length).await
    }
}

/// Whether the connection stays open after answering `request`.
pub(crate) fn keep_alive<B>(request: &Request<B>) -> bool {
    let connection = request
        .headers()
        .get(header::CONNECTION)
        .map(|v| v.as_bytes().to_ascii_lowercase());
    match request.version() {
        Version::HTTP_10 => connection.as_deref() == Some(b"keep-alive"),
        _ => connection.as_deref() != Some(b"close"),
    }
}

/// What became of the connection after a response.
#[derive(Debug, Eq, PartialEq)]
pub(crate) enum Outcome {
    /// The response was sent in full.
    Sent,
    /// The test asked to cut the connection, or the client went away.
    Closed,
}

/// Writes `response`; while a streamed body waits for its next chunk, `reader` watches for
/// the client hanging up.
pub(crate) async fn write_response<S: AsyncRead + AsyncWrite>(
    writer: &mut WriteHalf<S>,
    reader: &mut Reader<S>,
    response: Response,
    keep_alive: bool,
) -> io::Result<Outcome> {
    let Response {
        status,
        mut headers,
        body,
    } = response;
    match &body {
        Body::DropConnection => return Ok(Outcome::Closed),
        Body::Full(bytes) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        Body::Chunks(..) | Body::Stream(_) => {
            headers.remove(header::CONTENT_LENGTH);
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
    }
    if !keep_alive {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Unknown")
    )
    .into_bytes();
    for (name, value) in &headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    match body {
        Body::DropConnection => Ok(Outcome::Closed),
        Body::Full(bytes) => {
            head.extend_from_slice(&bytes);
            writer.write_all(&head).await?;
            writer.flush().await?;
            Ok(Outcome::Sent)
        }
        Body::Chunks(pieces, pause) => {
            writer.write_all(&head).await?;
            writer.flush().await?;
            for (i, piece) in pieces.iter().enumerate() {
                if piece.is_empty() {
                    continue;
                }
                if i > 0 && pause > Duration::ZERO {
                    tokio::time::sleep(pause).await;
                }
                write_chunk(writer, piece).await?;
            }
            writer.write_all(b"0\r\n\r\n").await?;
            writer.flush().await?;
            Ok(Outcome::Sent)
        }
        Body::Stream(mut frames) => {
            writer.write_all(&head).await?;
            writer.flush().await?;
            loop {
                let frame = tokio::select! {
                    frame = frames.recv() => frame,
                    _ = reader.hang_up() => return Ok(Outcome::Closed),
                };
                match frame {
                    Some(Frame::Data(bytes)) => write_chunk(writer, &bytes).await?,
                    Some(Frame::Abort) => return Ok(Outcome::Closed),
                    None => break,
                }
            }
            writer.write_all(b"0\r\n\r\n").await?;
            writer.flush().await?;
            Ok(Outcome::Sent)
        }
    }
}

async fn write_chunk<W: AsyncWrite>(writer: &mut WriteHalf<W>, bytes: &[u8]) -> io::Result<()> {
    let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
    chunk.extend_from_slice(bytes);
    chunk.extend_from_slice(b"\r\n");
    writer.write_all(&chunk).await?;
    writer.flush().await
}
