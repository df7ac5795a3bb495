//! Fault injection: secret files that cannot be written because a file may grow no more
//! (`RLIMIT_FSIZE`), the folder is read-only, the file system is full, or no file
//! descriptor is left. `create_secret` must fail, the secret it meant to replace must stay
//! readable (and no temporary file stay behind), and writing and reading must work again
//! once the cause is gone.
//!
//! Resource limits apply to a whole process, so those cases run in a child: this same
//! binary, with `CONFIDANT_FAULT_CHILD` naming its role, reporting on stdout. The tmpfs
//! cases need root; see `streambed_test::faults::Tmpfs::mount_or_skip` for what happens
//! without.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use streambed::secret_store::{SecretData, SecretStore};
use streambed_confidant::FileSecretStore;
use streambed_test::{
    faults::{self, Limit, Tmpfs},
    harness::{self, Harness},
};

/// The child role variable; its value names the role.
const CHILD: &str = "CONFIDANT_FAULT_CHILD";
/// The child's secret folder.
const CHILD_ROOT: &str = "CONFIDANT_FAULT_ROOT";
/// Long enough that a remembered failure would outlast every test here.
const UNAUTHORIZED_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the descriptor exhaustion lasts while callers keep retrying, and the pause
/// between their attempts, natively; both stretch under an emulator
/// (`streambed_test::process::slowdown`).
const FAILING_FOR: Duration = Duration::from_secs(1);
const RETRY_PAUSE: Duration = Duration::from_millis(20);

fn main() {
    Harness::new(CHILD)
        .child("fsize", child_file_size_limit)
        .child("nofile", child_out_of_descriptors)
        .test(
            "a_file_size_limit_fails_create_secret_and_keeps_the_previous_secret",
            a_file_size_limit_fails_create_secret_and_keeps_the_previous_secret,
        )
        .test(
            "a_read_only_folder_fails_create_secret_and_keeps_the_previous_secret",
            a_read_only_folder_fails_create_secret_and_keeps_the_previous_secret,
        )
        .test(
            "a_full_file_system_fails_create_secret_and_keeps_the_previous_secret",
            a_full_file_system_fails_create_secret_and_keeps_the_previous_secret,
        )
        .test(
            "running_out_of_descriptors_fails_without_spinning_and_recovers",
            running_out_of_descriptors_fails_without_spinning_and_recovers,
        )
        .run();
}

fn store(root: &Path) -> FileSecretStore {
    FileSecretStore::new(root, &[7; 16], UNAUTHORIZED_TIMEOUT, 100, None)
}

/// A secret whose value is `len` copies of `fill`, so its file is about `len` bytes.
fn secret(fill: char, len: usize) -> SecretData {
    SecretData {
        data: [("value".to_string(), fill.to_string().repeat(len))].into(),
    }
}

/// The value of the secret at `path`, `"absent"`, or the error.
async fn value(ss: &FileSecretStore, path: &str) -> String {
    match ss.get_secret(path).await {
        Ok(Some(reply)) => reply.data.data["value"].clone(),
        Ok(None) => "absent".to_string(),
        Err(e) => format!("error {e:?}"),
    }
}

/// Files the atomic writes left behind in `dir` (temporaries are hidden `.atomic-*`).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".atomic-")
        })
        .collect()
}

/// Checks that a failed overwrite left the old secret, for this store and a fresh one.
async fn assert_kept(ss: &FileSecretStore, root: &Path, path: &str, old: &SecretData) {
    let old = &old.data["value"];
    assert_eq!(&value(ss, path).await, old, "the old secret is gone");
    assert_eq!(
        &value(&store(root), path).await,
        old,
        "the old file is gone"
    );
    assert_eq!(
        leftovers(root),
        Vec::<PathBuf>::new(),
        "temporary files left"
    );
}

fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn run_child(role: &str, root: &Path) -> Vec<String> {
    harness::child_lines(CHILD, role, [(CHILD_ROOT, root)])
}

// ---- RLIMIT_FSIZE ----

/// The child: writes a small secret, lowers the file size limit below a large one, tries
/// to replace the small by the large, then lifts the limit and tries again.
async fn child_file_size_limit() {
    let root = PathBuf::from(std::env::var(CHILD_ROOT).unwrap());
    let ss = store(&root);
    let (old, new) = (secret('o', 10), secret('n', 4096));
    ss.create_secret("s", old.clone()).await.unwrap();
    faults::ignore_file_size_signal();
    faults::set_soft_limit(Limit::FileSize, Some(1024)).unwrap();
    match ss.try_create_secret("s", new.clone()).await {
        Ok(()) => println!("unexpectedly-written"),
        Err(e) => println!("refused {e}"),
    }
    assert_kept(&ss, &root, "s", &old).await;
    println!("kept");
    faults::set_soft_limit(Limit::FileSize, None).unwrap();
    match ss.try_create_secret("s", new.clone()).await {
        Ok(()) => println!("written {}", value(&ss, "s").await.len()),
        Err(e) => println!("not-recovered {e}"),
    }
}

async fn a_file_size_limit_fails_create_secret_and_keeps_the_previous_secret() {
    let dir = private_dir();
    let lines = run_child("fsize", dir.path());
    assert!(
        lines.iter().any(|l| l.contains("File too large")),
        "not refused for its size: {lines:?}"
    );
    assert!(lines.contains(&"kept".to_string()), "{lines:?}");
    assert!(lines.contains(&"written 4096".to_string()), "{lines:?}");
}

// ---- read-only folder ----

/// A secret root that can be made read-only: by permission bits for an ordinary user, by
/// a read-only remount for root (whom permission bits do not stop).
enum ReadOnlyDir {
    Bits(tempfile::TempDir),
    Mount(Tmpfs),
}

impl ReadOnlyDir {
    fn new() -> Option<Self> {
        if faults::is_root() {
            let test = "a_read_only_folder_fails_create_secret_and_keeps_the_previous_secret";
            Tmpfs::mount_or_skip(1024 * 1024, 0o700, test).map(Self::Mount)
        } else {
            Some(Self::Bits(private_dir()))
        }
    }

    fn path(&self) -> &Path {
        match self {
            Self::Bits(dir) => dir.path(),
            Self::Mount(fs) => fs.path(),
        }
    }

    fn set_read_only(&self, read_only: bool) {
        match self {
            Self::Bits(dir) => {
                let mode = if read_only { 0o500 } else { 0o700 };
                fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            }
            Self::Mount(fs) => fs.set_read_only(read_only).unwrap(),
        }
    }
}

async fn a_read_only_folder_fails_create_secret_and_keeps_the_previous_secret() {
    let Some(dir) = ReadOnlyDir::new() else {
        return;
    };
    let ss = store(dir.path());
    let (old, new) = (secret('o', 10), secret('n', 20));
    ss.create_secret("s", old.clone()).await.unwrap();
    dir.set_read_only(true);
    assert!(ss.create_secret("s", new.clone()).await.is_err());
    assert!(ss.create_secret("other", new.clone()).await.is_err());
    assert!(ss.create_secret("deeper/s", new.clone()).await.is_err());
    assert_kept(&ss, dir.path(), "s", &old).await;
    assert_eq!(value(&ss, "other").await, "absent");

    dir.set_read_only(false);
    ss.create_secret("s", new.clone()).await.unwrap();
    ss.create_secret("deeper/s", new.clone()).await.unwrap();
    assert_eq!(value(&ss, "s").await, new.data["value"]);
    assert_eq!(
        value(&store(dir.path()), "deeper/s").await,
        new.data["value"]
    );
}

// ---- full file system ----

async fn a_full_file_system_fails_create_secret_and_keeps_the_previous_secret() {
    let test = "a_full_file_system_fails_create_secret_and_keeps_the_previous_secret";
    let Some(fs) = Tmpfs::mount_or_skip(1024 * 1024, 0o700, test) else {
        return;
    };
    let ss = store(fs.path());
    let (old, new) = (secret('o', 10), secret('n', 8192));
    ss.create_secret("s", old.clone()).await.unwrap();
    // Fill every block that is left.
    let filler = fs.path().join("filler");
    let full = fs::write(&filler, vec![0u8; 2 * 1024 * 1024]).unwrap_err();
    assert_eq!(full.raw_os_error(), Some(libc_enospc()), "{full}");

    let error = ss
        .try_create_secret("s", new.clone())
        .await
        .expect_err("a secret was written to a full file system");
    assert!(error.to_string().contains("No space left"), "{error}");
    assert!(ss.create_secret("other", new.clone()).await.is_err());
    assert_kept(&ss, fs.path(), "s", &old).await;
    assert_eq!(value(&ss, "other").await, "absent");

    fs::remove_file(&filler).unwrap();
    ss.create_secret("s", new.clone()).await.unwrap();
    ss.create_secret("other", new.clone()).await.unwrap();
    assert_eq!(value(&ss, "s").await, new.data["value"]);
    assert_eq!(value(&store(fs.path()), "other").await, new.data["value"]);
}

fn libc_enospc() -> i32 {
    // ENOSPC, the same on every Linux architecture.
    28
}

// ---- RLIMIT_NOFILE ----

/// The child: with every descriptor taken, writes and uncached reads are retried every
/// [`RETRY_PAUSE`] for [`FAILING_FOR`] (both longer under an emulator); then the
/// descriptors are given back.
async fn child_out_of_descriptors() {
    let root = PathBuf::from(std::env::var(CHILD_ROOT).unwrap());
    let ss = store(&root);
    let (old, new) = (secret('o', 10), secret('n', 20));
    ss.create_secret("s", old.clone()).await.unwrap();
    // Written by another store: this one has never read it.
    store(&root).create_secret("t", old.clone()).await.unwrap();

    let slowdown = streambed_test::process::slowdown();
    let (failing_for, pause) = (FAILING_FOR * slowdown, RETRY_PAUSE * slowdown);

    let (held, exhausted) = faults::exhaust_descriptors(256).unwrap();
    println!("exhausted {exhausted}");

    let (mut attempts, mut write_errors, mut read_errors) = (0, 0, 0);
    let (cpu, started) = (faults::cpu_time(), Instant::now());
    while started.elapsed() < failing_for {
        attempts += 1;
        if ss.create_secret("s", new.clone()).await.is_err() {
            write_errors += 1;
        }
        if value(&ss, "t").await.starts_with("error") {
            read_errors += 1;
        }
        tokio::time::sleep(pause).await;
    }
    let (cpu, wall) = (faults::cpu_time() - cpu, started.elapsed());
    println!(
        "failing attempts={attempts} write_errors={write_errors} read_errors={read_errors} \
         cpu_ms={} wall_ms={}",
        cpu.as_millis(),
        wall.as_millis()
    );
    drop(held);
    println!("read t={}", value(&ss, "t").await);
    match ss.create_secret("s", new.clone()).await {
        Ok(()) => println!("written s={}", value(&ss, "s").await),
        Err(e) => println!("not-recovered {e:?}"),
    }
}

async fn running_out_of_descriptors_fails_without_spinning_and_recovers() {
    let dir = private_dir();
    let lines = run_child("nofile", dir.path());
    let field = |name: &str| harness::reported(&lines, "failing ", name);
    let attempts = field("attempts");
    let (cpu_ms, wall_ms) = (field("cpu_ms"), field("wall_ms"));
    println!(
        "  out of descriptors: {}/{attempts} writes and {}/{attempts} reads failed; {cpu_ms} ms \
         CPU in {wall_ms} ms",
        field("write_errors"),
        field("read_errors")
    );
    assert!(attempts > 10, "{lines:?}");
    assert_eq!(field("write_errors"), attempts, "{lines:?}");
    assert_eq!(field("read_errors"), attempts, "{lines:?}");
    // Spinning would use about one core, the whole wall time; paced attempts use a few
    // percent, natively and (with the longer pause) under an emulator.
    assert!(
        cpu_ms * 2 < wall_ms,
        "{cpu_ms} ms CPU in {wall_ms} ms while failing: something spins"
    );
    // Once descriptors are free, the failed read is not served from memory.
    assert!(
        lines.contains(&format!("read t={}", "o".repeat(10))),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("written s={}", "n".repeat(20))),
        "{lines:?}"
    );
}
