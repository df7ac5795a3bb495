//! One accepted connection, from its TCP stream to its end: the TLS handshake when the
//! server speaks HTTPS (here, in the connection's own task, so that the accept loop never
//! waits for a client), then HTTP/1.1 until the client leaves or the server stops.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::watch,
};

use crate::{
    peer_service::WithPeer, principal::Peer, stopped, tls::Tls, write_timeout::WriteTimeout,
};

/// What every connection of a server is served with; shared, so a connection costs one
/// reference count.
pub(crate) struct Settings {
    pub(crate) http: http1::Builder,
    /// `None`: plain HTTP.
    pub(crate) tls: Option<Tls>,
    pub(crate) write_timeout: Duration,
    /// How long a client may take to complete the TLS handshake.
    pub(crate) handshake_timeout: Duration,
}

/// Serves the client at `address` on `stream` with `router` until either ends or
/// `stopping` turns true (then the request in progress is finished first).
pub(crate) async fn serve(
    settings: Arc<Settings>,
    stream: TcpStream,
    address: SocketAddr,
    router: Router,
    stopping: watch::Receiver<bool>,
) {
    let peer = Peer::new(address);
    let write_timeout = settings.write_timeout;
    match &settings.tls {
        None => {
            let stream = WriteTimeout::new(stream, write_timeout);
            http(
                &settings.http,
                stream,
                WithPeer::new(router, peer),
                stopping,
            )
            .await;
        }
        Some(tls) => {
            let handshake = tls.accept(stream, settings.handshake_timeout, |stream| {
                WriteTimeout::new(stream, write_timeout)
            });
            match handshake.await {
                Ok((stream, principal)) => {
                    let peer = match principal {
                        Some(principal) => peer.with_certificate_principal(principal),
                        None => peer,
                    };
                    http(
                        &settings.http,
                        stream,
                        WithPeer::new(router, peer),
                        stopping,
                    )
                    .await;
                }
                Err(error) => log::debug!("no TLS session with {address}: {error}"),
            }
        }
    }
}

async fn http<IO>(
    http: &http1::Builder,
    stream: IO,
    service: WithPeer,
    mut stopping: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let address = service.peer().address;
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopped(&mut stopping) => {
            // Finish the request in progress, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        log::debug!("connection from {address} ended: {error}");
    }
}
