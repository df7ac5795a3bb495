//! The only place a log creates files and folders. Topic files are opened for writing
//! without following a symbolic link at their path (one planted there is an error, never
//! a write through it) and created with modes that keep other users out unless the log
//! is configured otherwise.

use std::{
    fs::{DirBuilder, OpenOptions},
    io,
    path::Path,
};

/// The modes new files and folders get (before the process umask).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) struct Modes {
    pub(crate) file: u32,
    pub(crate) dir: u32,
}

impl Default for Modes {
    fn default() -> Self {
        Self {
            file: 0o600,
            dir: 0o700,
        }
    }
}

/// Options to open a topic file for writing: never through a symbolic link, and with
/// `modes.file` if the file is created.
pub(crate) fn options(modes: Modes) -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(modes.file).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = modes;
    options
}

/// Creates `dir` and its missing parents with `modes.dir`.
pub(crate) fn dir_all(dir: &Path, modes: Modes) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(modes.dir);
    }
    #[cfg(not(unix))]
    let _ = modes;
    builder.create(dir)
}
