//! How a scripted [`Response`] goes out through hyper: its body as hyper frames, with a
//! flush after each chunk, pauses and cuts exactly where the test put them.
//!
//! hyper owns the HTTP framing; this module only decides when each frame becomes
//! available. Two hyper behaviours carry the script: a body that answers `Pending` makes
//! hyper flush what it has buffered, and a body that fails makes hyper close the
//! connection without ending the body.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http::{header, HeaderValue};
use hyper::body::{Bytes, Frame as HyperFrame, SizeHint};
use tokio::{sync::mpsc, time::Sleep};

use super::response::{AfterChunks, Body, Frame, Response};

/// Why the server broke a connection off; hyper closes the connection on either.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Cut {
    /// The script answers the request with no response at all.
    #[error("the test drops the connection instead of answering")]
    NoAnswer,
    /// The script cuts the connection in the middle of a body.
    #[error("the test cuts the connection in the middle of the body")]
    MidBody,
}

/// The hyper response for `response`, or `Cut::NoAnswer` when the script wants the
/// connection dropped instead.
pub(crate) fn into_hyper(response: Response) -> Result<http::Response<WireBody>, Cut> {
    let Response {
        status,
        mut headers,
        body,
    } = response;
    let state = match body {
        Body::DropConnection => return Err(Cut::NoAnswer),
        Body::Full(bytes) => {
            // hyper derives Content-Length from the body's exact size.
            headers.remove(header::CONTENT_LENGTH);
            State::Full(Some(Bytes::from(bytes)))
        }
        Body::Chunks {
            pieces,
            pause,
            after,
        } => {
            chunked(&mut headers);
            State::Chunks {
                pieces: pieces.into_iter().map(Bytes::from).collect(),
                pause,
                timer: None,
                sent_any: false,
                after,
            }
        }
        Body::Stream(frames) => {
            chunked(&mut headers);
            State::Stream(frames)
        }
    };
    let mut hyper_response = http::Response::new(WireBody {
        state,
        flush_owed: false,
    });
    *hyper_response.status_mut() = status;
    *hyper_response.headers_mut() = headers;
    Ok(hyper_response)
}

/// A body of unknown length goes out chunked; a Content-Length set by the test would
/// contradict it.
fn chunked(headers: &mut http::HeaderMap) {
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
}

/// A response body that releases its frames as the script says.
pub(crate) struct WireBody {
    state: State,
    /// A chunk was just handed to hyper: answer `Pending` once so that hyper flushes it
    /// before the next one is buffered behind it.
    flush_owed: bool,
}

enum State {
    Full(Option<Bytes>),
    Chunks {
        pieces: VecDeque<Bytes>,
        pause: Duration,
        timer: Option<Pin<Box<Sleep>>>,
        sent_any: bool,
        after: AfterChunks,
    },
    Stream(mpsc::UnboundedReceiver<Frame>),
}

type Polled = Poll<Option<Result<HyperFrame<Bytes>, Cut>>>;

impl hyper::body::Body for WireBody {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let this = self.get_mut();
        if this.flush_owed {
            this.flush_owed = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let polled = match &mut this.state {
            State::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(HyperFrame::data(b)))),
            State::Chunks {
                pieces,
                pause,
                timer,
                sent_any,
                after,
            } => {
                if pieces.is_empty() {
                    return match after {
                        AfterChunks::End => Poll::Ready(None),
                        AfterChunks::Cut => Poll::Ready(Some(Err(Cut::MidBody))),
                        // Never woken: the connection ends when the client hangs up (hyper
                        // watches for that) or the server's runtime stops.
                        AfterChunks::HoldOpen => Poll::Pending,
                    };
                }
                if *sent_any && !pause.is_zero() {
                    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(*pause)));
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    *timer = None;
                }
                *sent_any = true;
                Poll::Ready(pieces.pop_front().map(|b| Ok(HyperFrame::data(b))))
            }
            State::Stream(frames) => match frames.poll_recv(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Frame::Data(bytes))) => {
                    Poll::Ready(Some(Ok(HyperFrame::data(Bytes::from(bytes)))))
                }
                Poll::Ready(Some(Frame::Abort)) => Poll::Ready(Some(Err(Cut::MidBody))),
                Poll::Ready(None) => Poll::Ready(None),
            },
        };
        if matches!(polled, Poll::Ready(Some(Ok(_)))) && !matches!(this.state, State::Full(_)) {
            this.flush_owed = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            State::Chunks { .. } | State::Stream(_) => SizeHint::default(),
        }
    }
}
