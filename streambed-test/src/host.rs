//! Programs of the host that tests start as real servers (a Kafka broker, an OpenBao dev
//! server): finding their binaries, giving them a free loopback port, and making sure they
//! die with the test. Unlike [`process`](crate::process), these are never the target's
//! programs, so they run directly, not through an emulator.
//!
//! ```
//! use std::process::Command;
//! use streambed_test::host;
//!
//! let port = host::free_port();
//! assert_ne!(port, 0);
//! let sh = host::on_path("sh").expect("a shell");
//! assert!(host::is_executable(&sh));
//! let mut command = Command::new(sh);
//! host::die_with_test(&mut command);
//! assert!(command.arg("-c").arg("true").status().unwrap().success());
//! ```

use std::{
    env,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

/// A loopback port free when asked. Another process may take it before the server binds
/// it, so callers try a few.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Whether `path` is a file someone may execute.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The executable called `name` in a directory of `PATH`, if any.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let paths = env::var_os("PATH")?;
    env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

/// What a program has written so far to the log file it was given for its output; empty
/// when the file cannot be read (the caller is already reporting a failure).
pub fn output_so_far(log: &tempfile::NamedTempFile) -> String {
    let mut text = String::new();
    if let Ok(mut file) = log.reopen() {
        let _ = std::io::Read::read_to_string(&mut file, &mut text);
    }
    text
}

/// Makes the program `command` starts die when the thread that started it does (on Linux),
/// so that a test killed without unwinding (by a timeout) leaves no server behind.
pub fn die_with_test(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
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
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}
