//! Replacing a file's whole content so that readers, and a machine that loses power, see
//! either the old content or the new, never a torn mix.
//!
//! State files and secret files are rewritten while services read them, on devices that
//! may lose power at any moment. Every write goes through a temporary file in the target's
//! own directory (a rename is atomic only within one file system): the temporary file is
//! written and flushed to disk, renamed over the target, and then the directory is flushed
//! so that the rename itself survives a crash. A failure removes the temporary file and
//! leaves the target as it was. Everything here blocks; async callers run it on a blocking
//! thread.
//!
//! ```
//! use streambed::atomic_file::{self, FileMode};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("state");
//! atomic_file::replace(&path, b"old", FileMode::Default).unwrap();
//! atomic_file::replace(&path, b"new", FileMode::Default).unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"new");
//!
//! let error = atomic_file::replace(&dir.path().join("absent/state"), b"x", FileMode::Default)
//!     .unwrap_err();
//! assert!(error.to_string().contains("absent/state"));
//! ```

use std::{
    fmt, fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use tempfile::NamedTempFile;

/// The permission bits a written file gets.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FileMode {
    /// What a newly created file gets: `0o666` less the process's umask.
    Default,
    /// Exactly these bits (Unix only; ignored elsewhere), whatever the umask. The file
    /// never carries more than these bits, not even for a moment.
    Exactly(u32),
}

/// Atomically gives the file at `path` the content `bytes`, creating it or replacing what
/// was there. The directory must exist.
pub fn replace(path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), AtomicFileError> {
    let temp = write_temp(path, bytes, mode)?;
    temp.persist(path)
        .map_err(|e| AtomicFileError::new(Step::MoveIntoPlace, path, e.error))?;
    sync_directory_of(path)
}

/// Atomically creates the file at `path` with the content `bytes`, unless a file is already
/// there: answers `false`, leaving that file untouched, in that case. Of several writers
/// racing to create one file, exactly one answers `true`. The directory must exist.
///
/// ```
/// use streambed::atomic_file::{self, FileMode};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("key");
/// assert!(atomic_file::create_new(&path, b"first", FileMode::Exactly(0o600)).unwrap());
/// assert!(!atomic_file::create_new(&path, b"second", FileMode::Exactly(0o600)).unwrap());
/// assert_eq!(std::fs::read(&path).unwrap(), b"first");
/// ```
pub fn create_new(path: &Path, bytes: &[u8], mode: FileMode) -> Result<bool, AtomicFileError> {
    let temp = write_temp(path, bytes, mode)?;
    // Never replaces an existing name (a no-replace rename, or a hard link where the
    // kernel or file system lacks one).
    match temp.persist_noclobber(path) {
        Ok(_) => {}
        // Dropping the returned temporary file removes it.
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(AtomicFileError::new(Step::MoveIntoPlace, path, e.error)),
    }
    sync_directory_of(path)?;
    Ok(true)
}

/// Removes the file at `path`, durably: answers `false` when there was none.
///
/// ```
/// use streambed::atomic_file::{self, FileMode};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("gone");
/// atomic_file::replace(&path, b"x", FileMode::Default).unwrap();
/// assert!(atomic_file::remove(&path).unwrap());
/// assert!(!atomic_file::remove(&path).unwrap());
/// ```
pub fn remove(path: &Path) -> Result<bool, AtomicFileError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(AtomicFileError::new(Step::Remove, path, e)),
    }
    sync_directory_of(path)?;
    Ok(true)
}

/// A temporary file beside `path`, holding `bytes` flushed to disk with the bits `mode`.
fn write_temp(path: &Path, bytes: &[u8], mode: FileMode) -> Result<NamedTempFile, AtomicFileError> {
    let mut builder = tempfile::Builder::new();
    // Hidden, and named so that a leftover from a crash says what it is.
    builder.prefix(".atomic-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The file is created with the bits less the umask: never more than asked for.
        let bits = match mode {
            FileMode::Default => 0o666,
            FileMode::Exactly(bits) => bits,
        };
        builder.permissions(fs::Permissions::from_mode(bits));
    }
    let mut temp = builder
        .tempfile_in(directory_of(path))
        .map_err(|e| AtomicFileError::new(Step::CreateTemporary, path, e))?;
    let written = (|| {
        #[cfg(unix)]
        if let FileMode::Exactly(bits) = mode {
            use std::os::unix::fs::PermissionsExt;
            // Exactly: the umask must not take bits away.
            temp.as_file()
                .set_permissions(fs::Permissions::from_mode(bits))?;
        }
        temp.write_all(bytes)?;
        temp.as_file().sync_all()
    })();
    // On error, dropping `temp` removes the temporary file.
    written.map_err(|e| AtomicFileError::new(Step::WriteTemporary, path, e))?;
    Ok(temp)
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn sync_directory_of(path: &Path) -> Result<(), AtomicFileError> {
    sync_dir(directory_of(path)).map_err(|e| AtomicFileError::new(e.step, path, e.source))
}

/// Flushes the directory `dir` to disk, so that files created, renamed or removed in it
/// stay so after a crash (the files' own content is flushed separately). Does nothing
/// where directories cannot be opened for flushing; renames there are still atomic.
///
/// ```
/// use streambed::atomic_file::{self, Step};
///
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("a"), b"x").unwrap();
/// std::fs::rename(dir.path().join("a"), dir.path().join("b")).unwrap();
/// atomic_file::sync_dir(dir.path()).unwrap();
///
/// let error = atomic_file::sync_dir(&dir.path().join("absent")).unwrap_err();
/// assert_eq!(error.step, Step::SyncDirectory);
/// assert_eq!(error.path, dir.path().join("absent"));
/// ```
pub fn sync_dir(dir: &Path) -> Result<(), AtomicFileError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|directory| directory.sync_all())
            .map_err(|e| AtomicFileError::new(Step::SyncDirectory, dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// A file could not be written, replaced or removed; the file at [`path`](Self::path)
/// is as it was unless the failed step was [`Step::SyncDirectory`] (the change is made but
/// may not survive a crash).
///
/// ```
/// use streambed::atomic_file::{self, FileMode, Step};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("missing/state");
/// let error = atomic_file::replace(&path, b"x", FileMode::Default).unwrap_err();
/// assert_eq!(error.step, Step::CreateTemporary);
/// assert_eq!(error.path, path);
/// assert_eq!(error.source.kind(), std::io::ErrorKind::NotFound);
/// ```
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {}: {source}", path.display())]
pub struct AtomicFileError {
    /// What was being done.
    pub step: Step,
    /// The file being written or removed (not the temporary file); for [`sync_dir`], the
    /// directory.
    pub path: PathBuf,
    /// The operating system's error.
    pub source: io::Error,
}

/// For callers that report I/O errors: the kind stays the operating system's, the message
/// names the path and the step.
///
/// ```
/// use streambed::atomic_file;
///
/// let error = atomic_file::sync_dir(std::path::Path::new("/absent/dir")).unwrap_err();
/// let io: std::io::Error = error.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
/// assert!(io.to_string().contains("/absent/dir"));
/// ```
impl From<AtomicFileError> for io::Error {
    fn from(error: AtomicFileError) -> Self {
        io::Error::new(error.source.kind(), error)
    }
}

impl AtomicFileError {
    fn new(step: Step, path: &Path, source: io::Error) -> Self {
        Self {
            step,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The step of a write or removal that failed.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Step {
    /// Creating the temporary file in the target's directory.
    CreateTemporary,
    /// Setting the temporary file's mode, writing or flushing it.
    WriteTemporary,
    /// Renaming (or linking) the temporary file to the target's name.
    MoveIntoPlace,
    /// Removing the target.
    Remove,
    /// Flushing the directory after the change.
    SyncDirectory,
}

impl Step {
    /// The step as a verb phrase that the path completes, e.g. `"move into place"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::CreateTemporary => "create a temporary file to write",
            Step::WriteTemporary => "write the temporary file for",
            Step::MoveIntoPlace => "move into place",
            Step::Remove => "remove",
            Step::SyncDirectory => "flush the directory of",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replacing_swaps_in_a_new_file_and_never_rewrites_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        replace(&path, &[b'x'; 500], FileMode::Default).unwrap();
        // A second name for the old file: a write in place would change it too.
        let old_name = dir.path().join("old");
        fs::hard_link(&path, &old_name).unwrap();
        let before = fs::metadata(&path).unwrap();

        replace(&path, b"short", FileMode::Default).unwrap();

        assert_eq!(fs::read(&path).unwrap(), b"short", "no stale tail");
        assert_ne!(fs::metadata(&path).unwrap().ino(), before.ino());
        assert_eq!(fs::read(&old_name).unwrap(), [b'x'; 500]);
    }

    #[test]
    fn success_leaves_no_temporary_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        replace(&path, b"one", FileMode::Default).unwrap();
        replace(&path, b"two", FileMode::Exactly(0o600)).unwrap();
        assert!(create_new(&dir.path().join("new"), b"three", FileMode::Default).unwrap());
        assert!(!create_new(&path, b"four", FileMode::Default).unwrap());
        assert_eq!(names_in(dir.path()), ["new", "state"]);
    }

    #[test]
    fn a_failed_move_names_the_target_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file should go: the rename must fail.
        let path = dir.path().join("state");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"untouched").unwrap();
        let error = replace(&path, b"x", FileMode::Default).unwrap_err();
        assert_eq!(error.step, Step::MoveIntoPlace);
        assert_eq!(error.path, path);
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
        assert_eq!(fs::read(path.join("keep")).unwrap(), b"untouched");
        assert_eq!(names_in(dir.path()), ["state"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("state");
        for error in [
            replace(&path, b"x", FileMode::Default).unwrap_err(),
            create_new(&path, b"x", FileMode::Default).unwrap_err(),
        ] {
            assert_eq!(error.step, Step::CreateTemporary);
            assert_eq!(error.source.kind(), io::ErrorKind::NotFound);
            let message = error.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
    }

    #[test]
    fn an_exact_mode_is_kept_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let mode = |name: &str| fs::metadata(dir.path().join(name)).unwrap().mode() & 0o7777;
        // Bits that any usual umask (022, 077) would take away.
        replace(&dir.path().join("wide"), b"x", FileMode::Exactly(0o666)).unwrap();
        assert_eq!(mode("wide"), 0o666);
        replace(&dir.path().join("private"), b"x", FileMode::Exactly(0o600)).unwrap();
        assert_eq!(mode("private"), 0o600);
        assert!(create_new(&dir.path().join("new"), b"x", FileMode::Exactly(0o640)).unwrap());
        assert_eq!(mode("new"), 0o640);
    }

    #[test]
    fn the_default_mode_is_that_of_a_newly_created_file() {
        let dir = tempfile::tempdir().unwrap();
        let created = dir.path().join("created");
        fs::write(&created, b"x").unwrap();
        let replaced = dir.path().join("replaced");
        replace(&replaced, b"x", FileMode::Default).unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&replaced), mode(&created));
    }

    #[test]
    fn create_new_leaves_an_existing_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, b"theirs").unwrap();
        assert!(!create_new(&path, b"ours", FileMode::Default).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"theirs");
    }

    #[test]
    fn of_writers_racing_to_create_one_file_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let winners: Vec<bool> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8u8)
                .map(|i| {
                    let path = &path;
                    scope.spawn(move || create_new(path, &[i], FileMode::Default).unwrap())
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(winners.iter().filter(|&&won| won).count(), 1, "{winners:?}");
        let winner = winners.iter().position(|&won| won).unwrap() as u8;
        assert_eq!(fs::read(&path).unwrap(), [winner]);
        assert_eq!(names_in(dir.path()), ["key"]);
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_directory() {
        assert_eq!(directory_of(Path::new("state")), Path::new("."));
        assert_eq!(directory_of(Path::new("a/state")), Path::new("a"));
    }

    #[test]
    fn removing_answers_whether_there_was_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone");
        fs::write(&path, b"x").unwrap();
        assert!(remove(&path).unwrap());
        assert!(!path.exists());
        assert!(!remove(&path).unwrap());
        let error = remove(dir.path()).unwrap_err();
        assert_eq!(error.step, Step::Remove);
    }
}
