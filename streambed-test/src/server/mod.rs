//! A loopback HTTP/1.1 server whose answers a test scripts, to exercise HTTP clients.
//!
//! [`http`](fn@http) starts a server on a free port of 127.0.0.1 that calls a handler for each
//! request; the handler's [`Response`] says what goes back, down to where the body's
//! chunks end ([`Response::chunks`], [`Response::stream`]) and whether the connection is
//! cut ([`Response::drop_connection`], [`AfterChunks::Cut`], [`BodySender::abort`]).
//! A slow server is a handler that sleeps before answering, or chunks with a pause.
//! [`https`] does the same over TLS with a fresh self-signed certificate. [`http_on`]
//! starts a server on a given address, so that a test can start one late or restart one
//! on the same port. [`Script`] is a ready-made handler that gives fixed answers in order
//! and records the requests.
//!
//! HTTP itself is hyper's: requests are parsed and responses framed by it, so what the
//! client sees is a conforming server that misbehaves only where the test says.
//!
//! Each server runs on its own thread and runtime, so it keeps serving whatever the
//! test's runtime does (including paused time). Dropping the [`Server`] stops it and
//! closes every open connection, as a crashed server would; if a handler panicked, the
//! drop panics too, so that a failed assertion inside a handler fails the test.
//!
//! ```
//! use streambed_test::server::{self, Method, Response, StatusCode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = server::http(|request| async move {
//!     match (request.method(), request.uri().path()) {
//!         (&Method::GET, "/hello") => Response::new(StatusCode::OK).text("hi"),
//!         _ => Response::new(StatusCode::NOT_FOUND),
//!     }
//! });
//! let body = reqwest::get(format!("{}hello", server.url()))
//!     .await
//!     .unwrap()
//!     .text()
//!     .await
//!     .unwrap();
//! assert_eq!(body, "hi");
//! # }
//! ```

mod delivery;
mod response;
mod script;

use std::{
    any::Any,
    future::{poll_fn, Future},
    io,
    net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener},
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{Arc, Mutex},
    thread,
};

use futures_util::FutureExt;
use hyper::{
    body::{Body as _, Incoming},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use log::debug;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::oneshot,
};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
    TlsAcceptor,
};

pub use http::{Method, StatusCode};
pub use response::{AfterChunks, BodySender, Response};
pub use script::Script;

/// A request as the handler sees it, its body read in full.
pub type Request = http::Request<Vec<u8>>;

/// A running test server; dropping it stops the server. See the [module docs](self).
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    certificate_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
    panics: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's base URL, such as `http://127.0.0.1:41234/`, with a trailing slash.
    pub fn url(&self) -> String {
        format!("{}://{}/", self.scheme, self.addr)
    }

    /// The PEM of the self-signed certificate an [`https`] server presents, for a client
    /// to trust; `None` for plain HTTP.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }

    /// Stops the server now, closing every open connection; the same as dropping it.
    pub fn stop(self) {}
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let panics = std::mem::take(&mut *lock(&self.panics));
        if !panics.is_empty() && !thread::panicking() {
            panic!("test server handler panicked: {}", panics.join("; "));
        }
    }
}

/// An address on 127.0.0.1 with a port that was free a moment ago, for a server to be
/// started later with [`http_on`] (to test a client that starts before its server).
///
/// ```
/// let addr = streambed_test::server::free_addr();
/// assert!(addr.ip().is_loopback());
/// assert_ne!(addr.port(), 0);
/// ```
pub fn free_addr() -> SocketAddr {
    StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// A request's body read as JSON, `null` when it is empty. Panics on a body that is not
/// JSON, which fails the test that expected JSON.
///
/// ```
/// use streambed_test::server::{json_body, Request};
///
/// assert_eq!(json_body(&Request::new(b"{\"a\":1}".to_vec())), serde_json::json!({"a": 1}));
/// assert_eq!(json_body(&Request::new(Vec::new())), serde_json::Value::Null);
/// ```
pub fn json_body(request: &Request) -> serde_json::Value {
    if request.body().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(request.body()).expect("a JSON body")
    }
}

/// Starts an HTTP server on a free port of 127.0.0.1 that answers every request with
/// `handler`. Panics when no port can be bound.
pub fn http<F, Fut>(handler: F) -> Server
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    http_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), handler).expect("test server starts")
}

/// Starts an HTTP server on `addr`, for example the address of a server stopped earlier.
///
/// ```
/// use streambed_test::server::{self, Response, StatusCode};
///
/// let first = server::http(|_| async { Response::new(StatusCode::OK) });
/// let addr = first.addr();
/// drop(first);
/// let again = server::http_on(addr, |_| async { Response::new(StatusCode::OK) }).unwrap();
/// assert_eq!(again.addr(), addr);
/// ```
pub fn http_on<F, Fut>(addr: SocketAddr, handler: F) -> io::Result<Server>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    start(addr, None, handler)
}

/// Starts an HTTPS server on a free port of 127.0.0.1 with a new self-signed certificate
/// for `localhost` and `127.0.0.1`; [`Server::certificate_pem`] gives the certificate.
///
/// ```
/// use streambed_test::server::{self, Response, StatusCode};
///
/// let server = server::https(|_| async { Response::new(StatusCode::OK) });
/// assert!(server.url().starts_with("https://"));
/// assert!(server.certificate_pem().unwrap().contains("BEGIN CERTIFICATE"));
/// ```
pub fn https<F, Fut>(handler: F) -> Server
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let identity =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("self-signed certificate");
    let certificate_pem = identity.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pair.serialize_der()));
    let chain = vec![CertificateDer::from(identity.cert.der().to_vec())];
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .expect("TLS server configuration");
    let mut server = start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        Some(TlsAcceptor::from(Arc::new(config))),
        handler,
    )
    .expect("test server starts");
    server.certificate_pem = Some(certificate_pem);
    server
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock only ever pushes a message; the data stays usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn start<F, Fut>(addr: SocketAddr, tls: Option<TlsAcceptor>, handler: F) -> io::Result<Server>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    // Bind on the caller's thread so that a clash is reported to it, and the address is
    // known (and connectable) before this returns.
    let listener = StdTcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let panics = Arc::new(Mutex::new(Vec::new()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let handler = Arc::new(handler);
    let task_panics = Arc::clone(&panics);
    let thread = thread::Builder::new()
        .name(format!("test-server-{addr}"))
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => {
                        lock(&task_panics).push(format!("cannot listen: {error}"));
                        return;
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = accept(listener, tls, handler, task_panics) => {}
                }
            });
            // Dropping the runtime drops every connection task, closing their sockets.
            drop(runtime);
        })?;
    Ok(Server {
        addr,
        scheme,
        certificate_pem: None,
        stop: Some(stop),
        thread: Some(thread),
        panics,
    })
}

async fn accept<F, Fut>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: Arc<F>,
    panics: Arc<Mutex<Vec<String>>>,
) where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                debug!("test server accept failed: {error}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = Arc::clone(&handler);
        let panics = Arc::clone(&panics);
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => serve(stream, handler, panics).await,
                    Err(error) => {
                        debug!("test server TLS handshake failed: {error}");
                        return;
                    }
                },
                None => serve(stream, handler, panics).await,
            };
            if let Err(error) = result {
                debug!("test server connection ended: {error}");
            }
        });
    }
}

async fn serve<S, F, Fut>(
    stream: S,
    handler: Arc<F>,
    panics: Arc<Mutex<Vec<String>>>,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let handler = Arc::clone(&handler);
        let panics = Arc::clone(&panics);
        async move {
            let request = read_in_full(request).await?;
            // The call is inside the caught future too: a handler may panic before it
            // returns its future (as `Script` does), not only while it runs.
            let answer = async { handler(request).await };
            let response = match AssertUnwindSafe(answer).catch_unwind().await {
                Ok(response) => response,
                Err(panic) => {
                    lock(&panics).push(panic_message(panic.as_ref()));
                    Response::new(StatusCode::INTERNAL_SERVER_ERROR).text("handler panicked")
                }
            };
            delivery::into_hyper(response).map_err(ServeError::from)
        }
    });
    http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
}

/// The request with its body read to the end, as handlers get it.
async fn read_in_full(request: hyper::Request<Incoming>) -> Result<Request, hyper::Error> {
    let (parts, mut incoming) = request.into_parts();
    let mut body = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut incoming).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            body.extend_from_slice(&data);
        }
    }
    Ok(Request::from_parts(parts, body))
}

/// Why a request got no response: its body did not arrive, or the test cut the connection.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("reading the request body: {0}")]
    Request(#[from] hyper::Error),
    #[error(transparent)]
    Cut(#[from] delivery::Cut),
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "handler panicked".to_string()
    }
}

#[cfg(test)]
mod tests;
