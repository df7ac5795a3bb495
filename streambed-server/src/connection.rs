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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::{routing::get, Extension};
    use hyper_util::rt::TokioTimer;
    use streambed_test::pki::{Issued, TestCa};
    use tokio::net::TcpListener;

    use super::*;
    use crate::tls::{ClientCertificates, TlsFiles};

    /// A route that answers who the connection's peer is, as a handler sees it.
    fn who_am_i() -> Router {
        Router::new().route(
            "/whoami",
            get(|Extension(peer): Extension<Peer>| async move {
                match peer.certificate_principal {
                    Some(principal) => principal.to_string(),
                    None => "(no certificate)".to_owned(),
                }
            }),
        )
    }

    fn tls(ca: &TestCa, dir: &Path, clients: ClientCertificates) -> Tls {
        let files = TlsFiles::new(dir.join("server.pem"), dir.join("server.key"))
            .client_ca(dir.join("clients.pem"), clients);
        ca.server("localhost")
            .write(&files.certificate_chain, &files.private_key)
            .unwrap();
        std::fs::write(dir.join("clients.pem"), ca.certificate_pem()).unwrap();
        Tls::load(files).unwrap()
    }

    /// Serves `who_am_i` on one loopback connection after another over TLS, with a server
    /// certificate from `ca` and client certificates `clients`; answers the port.
    async fn serve_connections(ca: &TestCa, clients: ClientCertificates) -> u16 {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls(ca, dir.path(), clients);
        let router = who_am_i();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new());
        let settings = Arc::new(Settings {
            http,
            tls: Some(tls),
            write_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_millis(500),
        });
        let (_stop, stopping) = watch::channel(false);
        tokio::spawn(async move {
            let (_stop, _dir) = (_stop, dir);
            loop {
                let (stream, address) = listener.accept().await.unwrap();
                tokio::spawn(serve(
                    Arc::clone(&settings),
                    stream,
                    address,
                    router.clone(),
                    stopping.clone(),
                ));
            }
        });
        port
    }

    fn client(ca: &TestCa, identity: Option<&Issued>) -> reqwest::Client {
        let mut client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(ca.certificate_pem().as_bytes()).unwrap(),
            );
        if let Some(identity) = identity {
            client = client
                .identity(reqwest::Identity::from_pem(identity.identity_pem().as_bytes()).unwrap());
        }
        client.build().unwrap()
    }

    async fn who(client: &reqwest::Client, port: u16) -> reqwest::Result<String> {
        client
            .get(format!("https://localhost:{port}/whoami"))
            .send()
            .await?
            .text()
            .await
    }

    #[tokio::test]
    async fn a_handler_sees_the_common_name_of_the_verified_client_certificate() {
        let ca = TestCa::new("clients and server");
        let port = serve_connections(&ca, ClientCertificates::Optional).await;
        let sensor = client(&ca, Some(&ca.client("farm-a-sensor-7")));
        assert_eq!(who(&sensor, port).await.unwrap(), "farm-a-sensor-7");
        // A second request on the same connection keeps its principal.
        assert_eq!(who(&sensor, port).await.unwrap(), "farm-a-sensor-7");
        let anonymous = client(&ca, None);
        assert_eq!(who(&anonymous, port).await.unwrap(), "(no certificate)");
    }

    #[tokio::test]
    async fn a_certificate_from_another_ca_is_refused_at_the_handshake() {
        let ca = TestCa::new("ours");
        let port = serve_connections(&ca, ClientCertificates::Optional).await;
        let stranger = TestCa::new("theirs").client("farm-a-sensor-7");
        let error = who(&client(&ca, Some(&stranger)), port).await.unwrap_err();
        assert!(error.is_connect() || error.is_request(), "{error:?}");
    }

    #[tokio::test]
    async fn with_certificates_required_a_client_without_one_is_refused() {
        let ca = TestCa::new("ca");
        let port = serve_connections(&ca, ClientCertificates::Required).await;
        assert!(who(&client(&ca, None), port).await.is_err());
        let sensor = client(&ca, Some(&ca.client("sensor-1")));
        assert_eq!(who(&sensor, port).await.unwrap(), "sensor-1");
    }

    #[tokio::test]
    async fn a_client_that_never_completes_the_handshake_is_dropped_after_the_timeout() {
        use tokio::io::AsyncReadExt;

        let ca = TestCa::new("ca");
        let port = serve_connections(&ca, ClientCertificates::Optional).await;
        let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut buf = [0; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
            .await
            .expect("the connection is still open after the handshake timeout");
        assert_eq!(read.unwrap(), 0);
        // Meanwhile, and afterwards, others are served.
        let sensor = client(&ca, Some(&ca.client("sensor-2")));
        assert_eq!(who(&sensor, port).await.unwrap(), "sensor-2");
    }
}
