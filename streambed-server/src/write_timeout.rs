//! A connection whose writes fail once the client has read nothing for too long.
//!
//! hyper has a timeout for reading a request's headers but none for writing a response: a
//! client that stops reading (a consumer that hangs, or one that opens a stream and never
//! reads it) would keep its connection, its consumer task and the buffers in between for
//! ever. Wrapped in [`WriteTimeout`], the connection's writes fail with
//! [`io::ErrorKind::TimedOut`] once none has made progress for the limit, which makes hyper
//! drop the connection and, with it, everything serving it.

use std::{
    future::Future,
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

/// A stream whose writes fail when they have been blocked for longer than a limit.
#[derive(Debug)]
pub(crate) struct WriteTimeout<S> {
    inner: S,
    /// `None`: writes may stay blocked for ever.
    limit: Option<Duration>,
    /// Made at the first blocked write, re-armed at each next one; only connections that
    /// ever block pay for it.
    stalled: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<S> WriteTimeout<S> {
    /// Wraps `inner`; a `limit` of zero means none.
    pub(crate) fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit: Some(limit).filter(|limit| !limit.is_zero()),
            stalled: None,
            armed: false,
        }
    }

    /// Passes on a write's outcome, turning a write blocked for longer than the limit
    /// into an error.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let Some(limit) = self.limit else {
            return outcome;
        };
        if outcome.is_ready() {
            self.armed = false;
            return outcome;
        }
        let deadline = Instant::now() + limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            self.armed = true;
            stalled.as_mut().reset(deadline);
        }
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard(cx, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_the_peer_never_reads_fails_after_the_limit() {
        let (near, _far) = tokio::io::duplex(64);
        let mut stream = WriteTimeout::new(near, Duration::from_millis(50));
        let started = std::time::Instant::now();
        let error = stream.write_all(&[0; 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_limit_of_zero_lets_a_write_wait_for_ever() {
        let (near, _far) = tokio::io::duplex(64);
        let mut stream = WriteTimeout::new(near, Duration::ZERO);
        let write = tokio::time::timeout(Duration::from_millis(300), stream.write_all(&[0; 1024]));
        assert!(write.await.is_err(), "the write ended before the peer read");
    }

    #[tokio::test]
    async fn a_peer_that_keeps_reading_slowly_is_never_timed_out() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut stream = WriteTimeout::new(near, Duration::from_millis(1000));
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            let mut buf = [0; 64];
            loop {
                // Each pause is a tenth of the limit (a margin for busy machines); the 16
                // of them together are longer than it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                match far.read(&mut buf).await.unwrap() {
                    0 => return received,
                    n => received.extend_from_slice(&buf[..n]),
                }
            }
        });
        stream.write_all(&[7; 1024]).await.unwrap();
        stream.shutdown().await.unwrap();
        drop(stream);
        assert_eq!(reader.await.unwrap(), vec![7; 1024]);
    }
}
