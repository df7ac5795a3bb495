//! A real Kafka-compatible broker for tests: tansu, started on a free loopback port with
//! its records in memory, and killed when the handle drops, even when the test fails.
//!
//! The binary is found through `TANSU_BIN`, else where `scripts/install-tansu` caches it
//! (`$STREAMBED_CACHE`, by default `~/.cache/streambed`, under `tansu-<version>/bin/`),
//! else on `PATH`. Not finding it fails the test, never skips it: a CI run must not pass
//! without having run the tests against a broker.
//!
//! The broker can be frozen and thawed (`SIGSTOP`, `SIGCONT`), to test clients against a
//! cluster that stops answering without closing its connections.
//!
//! ```no_run
//! let broker = streambed_test::tansu::Tansu::start();
//! println!("bootstrap broker at {}", broker.address());
//! ```

use std::{
    env,
    io::Read,
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The tansu release the tests are written against (and `scripts/install-tansu` builds).
pub const TANSU_VERSION: &str = "0.6.0";

/// A running broker; dropping it kills the process and waits for it.
pub struct Tansu {
    child: Child,
    log: tempfile::NamedTempFile,
    address: SocketAddr,
}

impl Drop for Tansu {
    fn drop(&mut self) {
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

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The tansu binary to run; panics, saying how to install it, when there is none.
pub fn binary() -> PathBuf {
    if let Some(path) = env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    if let Some(path) = cached_binary().filter(|path| is_executable(path)) {
        return path;
    }
    if let Some(paths) = env::var_os("PATH") {
        for dir in env::split_paths(&paths) {
            let path = dir.join("tansu");
            if is_executable(&path) {
                return path;
            }
        }
    }
    panic!(
        "the tansu broker was not found (TANSU_BIN unset, none cached, none on PATH): \
         run `scripts/install-tansu` to build and cache it (about 17 minutes)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Tansu {
        let binary = binary();
        let mut output = String::new();
        // A port found free can be taken before the broker binds it: try a few.
        for _ in 0..3 {
            let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let log = tempfile::NamedTempFile::new().expect("a log file");
            let mut broker = Tansu {
                child: spawn(&binary, address, &log),
                log,
                address,
            };
            if broker.wait_listening() {
                return broker;
            }
            output = broker.output();
        }
        panic!("tansu did not start; its output:\n{output}");
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
        let mut text = String::new();
        if let Ok(mut file) = self.log.reopen() {
            let _ = file.read_to_string(&mut text);
        }
        text
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

fn spawn(binary: &Path, address: SocketAddr, log: &tempfile::NamedTempFile) -> Child {
    let url = format!("tcp://{address}");
    let mut command = Command::new(binary);
    command
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("a log file"))
        .stderr(log.reopen().expect("a log file"));
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // If the test process dies without unwinding (killed by a timeout), the kernel
        // kills the broker too.
        // SAFETY: prctl is async-signal-safe and touches only the child being made.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()))
}
