//! A real Kafka-compatible broker for tests: tansu, started on a free loopback port with
//! its records in memory, and killed when the handle drops, even when the test fails.
//!
//! The binary is found through `TANSU_BIN`, else where `scripts/install-tansu` caches it
//! (`$STREAMBED_CACHE`, by default `~/.cache/streambed`, under `tansu-<version>/bin/`),
//! else on `PATH`. Not finding it fails the test, never skips it: a CI run must not pass
//! without having run the tests against a broker.
//!
//! The broker can be frozen and thawed (`SIGSTOP`, `SIGCONT`), to test clients against a
//! cluster that stops answering without closing its connections, and reached over TLS
//! only ([`Tansu::start_tls`]).
//!
//! ```no_run
//! let broker = streambed_test::tansu::Tansu::start();
//! println!("bootstrap broker at {}", broker.address());
//! ```

use std::{
    env,
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::host::{die_with_test, free_port, is_executable, on_path, output_so_far};

/// The tansu release the tests are written against (and `scripts/install-tansu` builds).
pub const TANSU_VERSION: &str = "0.6.0";

/// A running broker; dropping it kills the process and waits for it.
pub struct Tansu {
    child: Child,
    log: tempfile::NamedTempFile,
    address: SocketAddr,
    /// The TLS front of a broker started with [`Tansu::start_tls`].
    tls_front: Option<tokio::runtime::Runtime>,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        // Without blocking: the broker may be dropped inside a test's runtime.
        if let Some(front) = self.tls_front.take() {
            front.shutdown_background();
        }
        // A frozen broker dies of SIGKILL all the same.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the binary is cached: `$STREAMBED_CACHE/tansu-<version>/bin/tansu`.
pub fn cached_binary() -> Option<PathBuf> {
    let cache = env::var_os("STREAMBED_CACHE")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cache/streambed")))?;
    Some(
        cache
            .join(format!("tansu-{TANSU_VERSION}"))
            .join("bin")
            .join("tansu"),
    )
}

/// The tansu binary to run; panics, saying how to install it, when there is none.
pub fn binary() -> PathBuf {
    if let Some(path) = env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    if let Some(path) = cached_binary().filter(|path| is_executable(path)) {
        return path;
    }
    if let Some(path) = on_path("tansu") {
        return path;
    }
    panic!(
        "the tansu broker was not found (TANSU_BIN unset, none cached, none on PATH): \
         run `scripts/install-tansu` to build and cache it (about 10 minutes)"
    );
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Tansu {
        Self::start_with(None)
    }

    /// Starts a broker that clients reach over TLS only, with this server certificate
    /// (issued for `127.0.0.1`), and waits until it accepts connections.
    ///
    /// tansu 0.6 cannot be given a certificate and a key together (its flags exclude each
    /// other), so a TLS front made here (rustls) stands before it: the broker advertises
    /// the front's address, so every connection a client makes, bootstrap or not, is TLS.
    pub fn start_tls(server: &crate::pki::Issued) -> Tansu {
        Self::start_with(Some(tls_acceptor(server)))
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Tansu {
        let binary = binary();
        let mut output = String::new();
        // A port found free can be taken before the broker binds it: try a few.
        for _ in 0..3 {
            let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
            // Behind a TLS front the broker listens on a port of its own.
            let listen = match tls {
                Some(_) => SocketAddr::from(([127, 0, 0, 1], free_port())),
                None => front,
            };
            match Self::spawned(&binary, listen, front) {
                Ok(mut broker) => {
                    if let Some(acceptor) = &tls {
                        broker.tls_front = Some(tls_front(front, listen, acceptor.clone()));
                        broker.address = front;
                    }
                    return broker;
                }
                Err(said) => output = said,
            }
        }
        panic!("tansu did not start; its output:\n{output}");
    }

    /// A broker listening on `listen` that tells clients to connect to `advertised`;
    /// its output when it did not start.
    fn spawned(binary: &Path, listen: SocketAddr, advertised: SocketAddr) -> Result<Tansu, String> {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut broker = Tansu {
            child: spawn(binary, listen, advertised, &log),
            log,
            address: listen,
            tls_front: None,
        };
        if broker.wait_listening() {
            Ok(broker)
        } else {
            Err(broker.output())
        }
    }

    /// The bootstrap broker, `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the broker in its tracks (`SIGSTOP`): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen broker go on (`SIGCONT`).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child's pid, which we have not yet waited for.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            sent,
            0,
            "signal {signal} to tansu: {}",
            std::io::Error::last_os_error()
        );
    }

    /// What the broker has printed so far.
    pub fn output(&self) -> String {
        output_so_far(&self.log)
    }

    fn wait_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20) * crate::process::slowdown();
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&self.address, Duration::from_millis(200)).is_ok() {
                return true;
            }
            // The broker offers no readiness notice but its listening socket.
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

fn spawn(
    binary: &Path,
    listen: SocketAddr,
    advertised: SocketAddr,
    log: &tempfile::NamedTempFile,
) -> Child {
    let mut command = Command::new(binary);
    command
        .arg("broker")
        .arg("--listener-url")
        .arg(format!("tcp://{listen}"))
        .arg("--advertised-listener-url")
        .arg(format!("tcp://{advertised}"))
        .args(["--storage-engine", "memory://tansu/"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("a log file"))
        .stderr(log.reopen().expect("a log file"));
    // If the test process dies without unwinding, the broker dies too.
    die_with_test(&mut command);
    command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()))
}

fn tls_acceptor(server: &crate::pki::Issued) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    };
    let chain = vec![
        CertificateDer::from_pem_slice(server.certificate_pem.as_bytes())
            .expect("the server certificate"),
    ];
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).expect("the server key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
    .expect("a TLS server configuration");
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// Accepts TLS on `front` and relays each connection's plain bytes to `behind`, on a
/// runtime of its own that stops when dropped.
fn tls_front(
    front: SocketAddr,
    behind: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
) -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the TLS front's runtime");
    // Bound here, not on the runtime: the caller may itself be on a runtime, where
    // blocking on another is refused.
    let listener = std::net::TcpListener::bind(front).expect("the TLS front's port");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    runtime.spawn(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that fails the handshake is simply let go.
                let Ok(mut client) = acceptor.accept(client).await else {
                    return;
                };
                if let Ok(mut broker) = tokio::net::TcpStream::connect(behind).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                }
            });
        }
    });
    runtime
}
