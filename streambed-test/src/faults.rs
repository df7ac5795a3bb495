//! File-system faults for tests: a small tmpfs that fills up or turns read-only on demand,
//! lowered resource limits for a child process, and the CPU time a process has used.
//!
//! The file log and the secret store must fail cleanly when the disk is full, a folder is
//! read-only, a file may grow no more or no descriptor is left. Those conditions are real
//! only with a real file system and real limits; this module makes them in a few lines so
//! that both crates' fault tests share one way of doing it.
//!
//! Mounting needs root. [`Tmpfs::mount_or_skip`] decides what a test does without it: it
//! fails under CI (the `CI` variable is set), and skips with a loud message on a developer's
//! machine.
//!
//! ```
//! use std::time::Duration;
//! use streambed_test::faults;
//!
//! let before = faults::cpu_time();
//! let spent: u64 = (0..100_000u64).sum();
//! assert!(spent > 0);
//! assert!(faults::cpu_time() >= before);
//! assert!(faults::cpu_time() < Duration::from_secs(3600));
//! ```

use std::{
    ffi::OsStr,
    fs::File,
    io,
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use tempfile::TempDir;

/// A tmpfs of a fixed size mounted on a fresh temporary folder, unmounted when dropped
/// (also when the test panics).
#[derive(Debug)]
pub struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes whose root has the permission bits `mode`. Needs
    /// root (or `CAP_SYS_ADMIN`).
    ///
    /// ```
    /// use streambed_test::faults::Tmpfs;
    ///
    /// match Tmpfs::mount(1024 * 1024, 0o700) {
    ///     Ok(fs) => {
    ///         let big = vec![0u8; 2 * 1024 * 1024];
    ///         let full = std::fs::write(fs.path().join("big"), big).unwrap_err();
    ///         assert_eq!(full.raw_os_error(), Some(28)); // ENOSPC
    ///     }
    ///     Err(e) => eprintln!("not root here: {e}"),
    /// }
    /// ```
    pub fn mount(size: u64, mode: u32) -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let options = format!("size={size},mode={mode:o}");
        run(
            "mount",
            [
                OsStr::new("-t"),
                OsStr::new("tmpfs"),
                OsStr::new("-o"),
                OsStr::new(&options),
                OsStr::new("tmpfs"),
                dir.path().as_os_str(),
            ],
        )?;
        Ok(Self { dir })
    }

    /// Mounts like [`mount`](Self::mount), or decides that the test `test` cannot run:
    /// panics when `CI` is set or the user is root (the fault must be tested there), and
    /// otherwise prints a loud notice and answers `None` so the caller skips.
    ///
    /// ```
    /// use streambed_test::faults::Tmpfs;
    ///
    /// # if std::env::var_os("CI").is_none() {
    /// if let Some(fs) = Tmpfs::mount_or_skip(1024 * 1024, 0o700, "doc example") {
    ///     assert!(fs.path().is_dir());
    /// }
    /// # }
    /// ```
    pub fn mount_or_skip(size: u64, mode: u32, test: &str) -> Option<Self> {
        match Self::mount(size, mode) {
            Ok(fs) => Some(fs),
            Err(e) if std::env::var_os("CI").is_none() && !is_root() => {
                eprintln!(
                    "\n!!!!!!!! SKIPPED {test}: cannot mount a tmpfs ({e}); run as root to test \
                     this fault (under CI this is a failure) !!!!!!!!\n"
                );
                None
            }
            Err(e) => panic!("{test}: cannot mount a tmpfs ({e}), and this fault must be tested"),
        }
    }

    /// The folder the tmpfs is mounted on.
    ///
    /// ```
    /// # use streambed_test::faults::Tmpfs;
    /// if let Ok(fs) = Tmpfs::mount(64 * 1024, 0o755) {
    ///     assert!(fs.path().is_absolute());
    /// }
    /// ```
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts the file system read-only (`true`) or writable again (`false`). Fails
    /// with "busy" while a file on it is open for writing.
    ///
    /// ```
    /// # use streambed_test::faults::Tmpfs;
    /// if let Ok(fs) = Tmpfs::mount(64 * 1024, 0o755) {
    ///     fs.set_read_only(true).unwrap();
    ///     assert!(std::fs::write(fs.path().join("x"), b"x").is_err());
    ///     fs.set_read_only(false).unwrap();
    ///     std::fs::write(fs.path().join("x"), b"x").unwrap();
    /// }
    /// ```
    pub fn set_read_only(&self, read_only: bool) -> io::Result<()> {
        let options = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        run(
            "mount",
            [
                OsStr::new("-o"),
                OsStr::new(options),
                self.dir.path().as_os_str(),
            ],
        )
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.dir.path().as_os_str();
        // Tasks of a dropped log or store may close their files a moment later.
        for _ in 0..50 {
            if run("umount", [path]).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Something still holds a file open: detach now, freed once it lets go.
        if let Err(e) = run("umount", [OsStr::new("-l"), path]) {
            eprintln!("cannot unmount {:?}: {e}", self.dir.path());
        }
    }
}

fn run<'a>(program: &str, args: impl IntoIterator<Item = &'a OsStr>) -> io::Result<()> {
    let Output { status, stderr, .. } = Command::new(program).args(args).output()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{program} failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        )))
    }
}

/// Whether this process runs as root, which reads and writes whatever the permission
/// bits say (so a folder without write permission is no read-only folder for it).
///
/// ```
/// let _ = streambed_test::faults::is_root();
/// ```
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A resource limit a test lowers in a child process.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Limit {
    /// The largest file the process may write (`RLIMIT_FSIZE`), in bytes. Writing past it
    /// raises `SIGXFSZ`; call [`ignore_file_size_signal`] first so writes fail with
    /// `EFBIG` instead.
    FileSize,
    /// One more than the highest file descriptor the process may open (`RLIMIT_NOFILE`).
    OpenFiles,
}

/// Sets the soft limit of `limit` to `value` (the hard limit stays, so the soft limit can
/// be raised again up to it), or to the hard limit when `value` is `None`.
///
/// ```
/// use streambed_test::faults::{set_soft_limit, Limit};
///
/// // Here, in the doctest's own process, leave it as it is.
/// set_soft_limit(Limit::OpenFiles, None).unwrap();
/// ```
pub fn set_soft_limit(limit: Limit, value: Option<u64>) -> io::Result<()> {
    let resource = match limit {
        Limit::FileSize => libc::RLIMIT_FSIZE,
        Limit::OpenFiles => libc::RLIMIT_NOFILE,
    };
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a valid rlimit for the call to fill in.
    if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let soft = value.map_or(current.rlim_max, |v| {
        (v as libc::rlim_t).min(current.rlim_max)
    });
    let wanted = libc::rlimit {
        rlim_cur: soft,
        rlim_max: current.rlim_max,
    };
    // SAFETY: `wanted` is a valid rlimit, read only by the call.
    if unsafe { libc::setrlimit(resource, &wanted) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Lowers [`Limit::OpenFiles`] to `limit`, then opens `/dev/null` until no descriptor is
/// left. Answers the open files, which hold the descriptors until dropped, and the error
/// that ended it. For a child process: the lowered limit stays.
///
/// ```
/// use streambed_test::faults;
///
/// let (held, exhausted) = faults::exhaust_descriptors(64).unwrap();
/// assert!(std::fs::File::open("/dev/null").is_err(), "{exhausted}");
/// drop(held);
/// assert!(std::fs::File::open("/dev/null").is_ok());
/// faults::set_soft_limit(faults::Limit::OpenFiles, None).unwrap();
/// ```
pub fn exhaust_descriptors(limit: u64) -> io::Result<(Vec<File>, io::Error)> {
    set_soft_limit(Limit::OpenFiles, Some(limit))?;
    let mut held = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(exhausted) => return Ok((held, exhausted)),
        }
    }
}

/// Makes a write past [`Limit::FileSize`] fail with `EFBIG` rather than kill the process.
///
/// ```
/// streambed_test::faults::ignore_file_size_signal();
/// ```
pub fn ignore_file_size_signal() {
    // SAFETY: ignoring a signal installs no handler code; nothing else here handles it.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The CPU time (user and system, all threads) this process has used so far: a test
/// compares it across a wait to show that nothing spun meanwhile.
///
/// ```
/// assert!(streambed_test::faults::cpu_time() > std::time::Duration::ZERO);
/// ```
pub fn cpu_time() -> Duration {
    // SAFETY: all-zero is a valid rusage; getrusage fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage for the call to fill in.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}
