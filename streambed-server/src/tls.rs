//! HTTPS without a proxy in front: the server's certificate chain and key, and optionally a
//! client CA for mutual TLS, read from PEM files (rustls with ring: no OpenSSL), swapped
//! while serving when the files change ([`Tls::reload`]), and the handshake that turns a
//! verified client certificate into the connection's principal.
//!
//! The handshake runs in the connection's own task with a deadline, so a client that
//! connects and says nothing holds only its own connection, never the accept loop. Sessions
//! are resumable through rustls' in-memory session cache (one per loaded configuration, so
//! a reload never resumes a session that the new files would refuse).

mod subject;

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use thiserror::Error;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
        server::WebPkiClientVerifier,
        RootCertStore, ServerConfig,
    },
    server::TlsStream,
    TlsAcceptor,
};

use crate::principal::Principal;

/// Whether a client must show a certificate when a client CA is configured.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum ClientCertificates {
    /// A client may show one (which must then chain to the CA) or none, and identify
    /// itself otherwise, for example with a bearer token. The default: token clients and
    /// certificate clients share one port.
    #[default]
    Optional,
    /// A client that shows no certificate chaining to the CA is refused at the handshake.
    Required,
}

/// Where the server's TLS material lives: PEM files, read at [`Tls::load`] and again at
/// every [`Tls::reload`].
///
/// ```
/// use streambed_server::tls::{ClientCertificates, TlsFiles};
///
/// let files = TlsFiles::new("/etc/streambed/server.pem", "/etc/streambed/server.key")
///     .client_ca("/etc/streambed/clients-ca.pem", ClientCertificates::Required);
/// assert_eq!(files.client_certificates, ClientCertificates::Required);
/// ```
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct TlsFiles {
    /// The server's certificate followed by any intermediate certificates.
    pub certificate_chain: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// The certificates of the authorities client certificates must chain to; `None`:
    /// clients are not asked for a certificate.
    pub client_ca: Option<PathBuf>,
    /// With a client CA, whether a client must show a certificate.
    pub client_certificates: ClientCertificates,
}

impl TlsFiles {
    /// The server's certificate chain and key, without client certificates.
    pub fn new(certificate_chain: impl Into<PathBuf>, private_key: impl Into<PathBuf>) -> Self {
        Self {
            certificate_chain: certificate_chain.into(),
            private_key: private_key.into(),
            client_ca: None,
            client_certificates: ClientCertificates::Optional,
        }
    }

    /// The same files, with clients' certificates verified against the CA in `client_ca`.
    pub fn client_ca(
        mut self,
        client_ca: impl Into<PathBuf>,
        client_certificates: ClientCertificates,
    ) -> Self {
        self.client_ca = Some(client_ca.into());
        self.client_certificates = client_certificates;
        self
    }
}

/// Why TLS material could not be loaded.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file holds no PEM section of the kind expected, or a malformed one.
    #[error("{path} holds no usable PEM {what}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What it should hold: "certificate" or "private key".
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The client CA file's certificates cannot serve as trust anchors.
    #[error("the client CA in {path} is unusable: {reason}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Client certificates are required, but no CA says which to accept.
    #[error("client certificates are required but no client CA is configured")]
    RequiredWithoutCa,
    /// rustls refused the certificate chain or key (for example a key that does not match
    /// the certificate).
    #[error("the certificate in {certificate_chain} and the key in {private_key} cannot serve: {source}")]
    Config {
        /// The certificate chain's file.
        certificate_chain: PathBuf,
        /// The key's file.
        private_key: PathBuf,
        /// Why rustls refused them.
        #[source]
        source: rustls::Error,
    },
}

/// The server's TLS configuration, loaded from [`TlsFiles`] and replaceable while serving:
/// clones share it, so the handle the server holds and the one a signal handler holds see
/// the same reloads. HTTP/1.1 is offered through ALPN.
///
/// ```
/// use streambed_server::tls::{Tls, TlsError, TlsFiles};
///
/// let missing = Tls::load(TlsFiles::new("/nonexistent/cert.pem", "/nonexistent/key.pem"));
/// assert!(matches!(missing, Err(TlsError::Read { .. })));
/// ```
#[derive(Clone)]
pub struct Tls {
    shared: Arc<Shared>,
}

struct Shared {
    files: TlsFiles,
    /// Read once per connection (a pointer copy); written only by a reload.
    acceptor: RwLock<TlsAcceptor>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.shared.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads `files` into a configuration, or says which file is unusable and why.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let acceptor = TlsAcceptor::from(server_config(&files)?);
        Ok(Self {
            shared: Arc::new(Shared {
                files,
                acceptor: RwLock::new(acceptor),
            }),
        })
    }

    /// Reads the files again and, if they make a usable configuration, serves new
    /// connections with it (connections already open keep theirs). If they do not, the
    /// configuration in use stays and the error says why. Sessions of the old
    /// configuration are not resumed under the new one.
    pub fn reload(&self) -> Result<(), TlsError> {
        let acceptor = TlsAcceptor::from(server_config(&self.shared.files)?);
        *self
            .shared
            .acceptor
            .write()
            .unwrap_or_else(PoisonError::into_inner) = acceptor;
        Ok(())
    }

    /// The files this configuration is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.shared.files
    }

    /// Runs the handshake on `stream` (wrapped by `wrap` beneath TLS) within `timeout`,
    /// answering the TLS stream and the principal its verified client certificate names.
    ///
    /// A client that speaks plain HTTP gets a 400 answer saying that this port speaks
    /// HTTPS, rather than a connection that breaks without a word.
    pub(crate) async fn accept<IO>(
        &self,
        stream: TcpStream,
        timeout: Duration,
        wrap: impl FnOnce(TcpStream) -> IO,
    ) -> Result<(TlsStream<IO>, Option<Principal>), HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = self
            .shared
            .acceptor
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let handshake = async move {
            let mut first = [0; 1];
            if stream.peek(&mut first).await.map_err(HandshakeError::Io)? == 0 {
                return Err(HandshakeError::Closed);
            }
            if first[0] != TLS_HANDSHAKE_RECORD {
                refuse_plain_http(stream).await;
                return Err(HandshakeError::PlainHttp);
            }
            let tls = acceptor
                .accept(wrap(stream))
                .await
                .map_err(HandshakeError::Io)?;
            let principal = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| subject::principal(leaf));
            Ok((tls, principal))
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| HandshakeError::TimedOut(timeout))?
    }
}

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain HTTP client gets on a TLS port.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: application/json\r\n\
Content-Length: 69\r\n\
Connection: close\r\n\
\r\n\
{\"error_code\":400,\"message\":\"this port speaks HTTPS, not plain HTTP\"}";

/// Answers a plain HTTP client, then reads (and drops) what it sent for a moment, so that
/// closing with its request unread does not reset the connection before the answer
/// arrives.
async fn refuse_plain_http(mut stream: TcpStream) {
    if stream.write_all(PLAIN_HTTP_ANSWER).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut left = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(read) => left -= read.min(left),
            }
        }
    })
    .await;
}

/// Why a TLS connection was not established.
#[derive(Debug, Error)]
pub(crate) enum HandshakeError {
    #[error("no handshake within {0:?}")]
    TimedOut(Duration),
    #[error("the client closed the connection before a handshake")]
    Closed,
    #[error("the client spoke plain HTTP; it was told to use HTTPS")]
    PlainHttp,
    #[error("{0}")]
    Io(#[source] io::Error),
}

fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certificates(&files.certificate_chain)?;
    let key = read_key(&files.private_key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let refused = |source| TlsError::Config {
        certificate_chain: files.certificate_chain.clone(),
        private_key: files.private_key.clone(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(refused)?;
    let builder = match &files.client_ca {
        None if files.client_certificates == ClientCertificates::Required => {
            return Err(TlsError::RequiredWithoutCa)
        }
        None => builder.with_no_client_auth(),
        Some(path) => {
            let unusable = |reason: String| TlsError::ClientCa {
                path: path.clone(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(path)? {
                roots
                    .add(certificate)
                    .map_err(|error| unusable(error.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match files.client_certificates {
                ClientCertificates::Optional => verifier.allow_unauthenticated(),
                ClientCertificates::Required => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|error| unusable(error.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(refused)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let malformed = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        what: "certificate",
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| malformed(error.to_string()))?;
    if certificates.is_empty() {
        return Err(malformed("no CERTIFICATE section".to_owned()));
    }
    Ok(certificates)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|error| TlsError::Pem {
        path: path.to_owned(),
        what: "private key",
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use streambed_test::pki::TestCa;

    use super::*;

    /// The files of a server certificate for localhost from `ca`, in `dir`.
    fn server_files(ca: &TestCa, dir: &Path) -> TlsFiles {
        let files = TlsFiles::new(dir.join("server.pem"), dir.join("server.key"));
        ca.server("localhost")
            .write(&files.certificate_chain, &files.private_key)
            .unwrap();
        files
    }

    #[test]
    fn the_plain_http_answer_declares_its_body_length() {
        let answer = std::str::from_utf8(PLAIN_HTTP_ANSWER).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error_code"], 400);
    }

    #[test]
    fn a_certificate_and_key_load() {
        let dir = tempfile::tempdir().unwrap();
        let files = server_files(&TestCa::new("ca"), dir.path());
        let tls = Tls::load(files.clone()).unwrap();
        assert_eq!(tls.files(), &files);
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("ca");
        let files = server_files(&ca, dir.path());
        std::fs::write(&files.private_key, ca.server("localhost").key_pem).unwrap();
        let error = Tls::load(files).unwrap_err();
        assert!(matches!(error, TlsError::Config { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("server.pem") && message.contains("server.key"),
            "{message}"
        );
    }

    #[test]
    fn a_file_without_pem_sections_is_refused_naming_what_it_should_hold() {
        let dir = tempfile::tempdir().unwrap();
        let files = server_files(&TestCa::new("ca"), dir.path());
        std::fs::write(&files.private_key, "no key here").unwrap();
        let error = Tls::load(files.clone()).unwrap_err();
        assert!(
            matches!(&error, TlsError::Pem { what: "private key", path, .. } if *path == files.private_key),
            "{error:?}"
        );
        std::fs::write(&files.certificate_chain, "").unwrap();
        let error = Tls::load(files.clone()).unwrap_err();
        assert!(
            matches!(
                &error,
                TlsError::Pem {
                    what: "certificate",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn required_client_certificates_without_a_ca_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = server_files(&TestCa::new("ca"), dir.path());
        files.client_certificates = ClientCertificates::Required;
        assert!(matches!(Tls::load(files), Err(TlsError::RequiredWithoutCa)));
    }

    #[test]
    fn a_client_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("clients.pem");
        std::fs::write(&ca_path, TestCa::new("ca").server("x").key_pem).unwrap();
        let files = server_files(&TestCa::new("ca"), dir.path())
            .client_ca(&ca_path, ClientCertificates::Optional);
        assert!(matches!(
            Tls::load(files),
            Err(TlsError::Pem {
                what: "certificate",
                ..
            })
        ));
    }

    #[test]
    fn a_reload_from_bad_files_keeps_the_configuration_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("ca");
        let files = server_files(&ca, dir.path());
        let tls = Tls::load(files.clone()).unwrap();
        let in_use = Arc::as_ptr(tls.shared.acceptor.read().unwrap().config());
        std::fs::write(&files.private_key, "truncated").unwrap();
        assert!(tls.reload().is_err());
        assert_eq!(
            Arc::as_ptr(tls.shared.acceptor.read().unwrap().config()),
            in_use
        );
        ca.server("localhost")
            .write(&files.certificate_chain, &files.private_key)
            .unwrap();
        tls.clone().reload().unwrap();
        assert_ne!(
            Arc::as_ptr(tls.shared.acceptor.read().unwrap().config()),
            in_use,
            "a reload through a clone is not seen by the original"
        );
    }

    #[test]
    fn http_1_1_is_offered_through_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::load(server_files(&TestCa::new("ca"), dir.path())).unwrap();
        let acceptor = tls.shared.acceptor.read().unwrap().clone();
        assert_eq!(acceptor.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}

#[cfg(test)]
mod handshake_tests {
    use tokio::net::TcpListener;
    use tokio_rustls::{
        rustls::{pki_types::ServerName, ClientConfig, HandshakeKind},
        TlsConnector,
    };

    use streambed_test::pki::{Issued, TestCa};

    use super::*;

    fn client_config(ca: &TestCa, identity: &Issued) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.certificate_pem().as_bytes()).unwrap())
            .unwrap();
        let chain =
            vec![CertificateDer::from_pem_slice(identity.certificate_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        Arc::new(config)
    }

    #[tokio::test]
    async fn a_resumed_session_keeps_the_principal_of_its_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("ca");
        let files = TlsFiles::new(dir.path().join("s.pem"), dir.path().join("s.key"))
            .client_ca(dir.path().join("ca.pem"), ClientCertificates::Required);
        ca.server("localhost")
            .write(&files.certificate_chain, &files.private_key)
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.certificate_pem()).unwrap();
        let tls = Tls::load(files).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connector = TlsConnector::from(client_config(&ca, &ca.client("sensor-9")));
        let mut kinds = Vec::new();
        for _ in 0..3 {
            let client = async {
                let stream = TcpStream::connect(address).await.unwrap();
                let mut stream = connector
                    .connect(ServerName::try_from("localhost").unwrap(), stream)
                    .await
                    .unwrap();
                // TLS 1.3 hands out the session after the handshake: read until the
                // server closes, so the client has it before the next connection.
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
            };
            let server = async {
                let (stream, _) = listener.accept().await.unwrap();
                let (mut stream, principal) = tls
                    .accept(stream, Duration::from_secs(5), |stream| stream)
                    .await
                    .unwrap();
                kinds.push(stream.get_ref().1.handshake_kind());
                stream.shutdown().await.unwrap();
                principal
            };
            let ((), principal) = tokio::join!(client, server);
            assert_eq!(principal.unwrap().as_str(), "sensor-9");
        }
        assert_eq!(kinds[0], Some(HandshakeKind::Full));
        assert_eq!(kinds[1..], [Some(HandshakeKind::Resumed); 2]);
    }
}
