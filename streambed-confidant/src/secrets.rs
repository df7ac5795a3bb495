//! Secrets as files: reads through the shared cache, atomic writes, and removal.
//!
//! Every path is parsed by [`streambed::secret_path`] before any file is touched, and
//! every write or removal invalidates its cache entry from the blocking task that does it,
//! so a read after a write never sees the old value, even when the writer is cancelled.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use streambed::{
    crypto,
    secret_cache::Loaded,
    secret_path::SecretPath,
    secret_store::{GetSecretReply, SecretData},
};
use tokio::time::Instant;

use crate::{
    metered, names,
    storage::{self, Existing},
    store::{Answer, Shared},
    ConfidantError, FileSecretStore,
};

/// How long a secret is cached when it names no lease of its own.
const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(5 * 60);

impl FileSecretStore {
    /// Reads a secret like
    /// [`get_secret`](streambed::secret_store::SecretStore::get_secret), saying why when it
    /// fails. An absent or undecodable secret is remembered (and answered from the cache)
    /// for the unauthorized timeout; a read the system refused (an I/O error such as no
    /// descriptor left) is not, so the next call reads the file again.
    ///
    /// ```
    /// # use std::{os::unix::fs::PermissionsExt, time::Duration};
    /// use streambed_confidant::{ConfidantError, FileSecretStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    /// let ss = FileSecretStore::new(root.path(), &[0; 16], Duration::from_secs(60), 100, None);
    /// assert!(matches!(
    ///     ss.try_get_secret("some.secret").await,
    ///     Err(ConfidantError::InsecureRoot { mode: 0o755 })
    /// ));
    /// # });
    /// ```
    pub async fn try_get_secret(
        &self,
        secret_path: &str,
    ) -> Result<Option<GetSecretReply>, ConfidantError> {
        metered::failure(metered::READ_ERRORS, self.read_secret(secret_path).await)
    }

    async fn read_secret(
        &self,
        secret_path: &str,
    ) -> Result<Option<GetSecretReply>, ConfidantError> {
        self.check_root()?;
        let path = SecretPath::parse(secret_path)?;
        // Set when this read loads the file rather than being answered by the cache.
        let loaded_file = AtomicBool::new(false);
        let load = || {
            loaded_file.store(true, Ordering::Relaxed);
            // Leases count from the start of the read, so an answer is never served past
            // its lease measured from when the file was current.
            let started = Instant::now();
            let shared = Arc::clone(&self.shared);
            let file = names::file_in(&shared.root_path, path);
            async move {
                let unauthorized_timeout = shared.unauthorized_timeout;
                match tokio::task::spawn_blocking(move || shared.load(&file)).await {
                    // The system refused the read (no descriptor left, say): the file may
                    // be readable a moment from now, so remember nothing.
                    Ok(Err(error @ ConfidantError::Io { .. })) => Loaded::uncached(Err(error)),
                    Ok(answer) => {
                        let lease = match &answer {
                            Ok(Some(reply)) => Duration::from_secs(reply.lease_duration),
                            _ => unauthorized_timeout,
                        };
                        Loaded::keep_until(answer, later(started, lease))
                    }
                    // The read panicked or the runtime is shutting down: tell the waiting
                    // callers, and remember nothing.
                    Err(_) => Loaded::uncached(Err(ConfidantError::Abandoned)),
                }
            }
        };
        let answer = self
            .shared
            .cache
            .get_or_load(path.as_str(), load)
            .await
            .unwrap_or(Err(ConfidantError::Abandoned));
        metered::read(loaded_file.load(Ordering::Relaxed));
        answer
    }

    /// Creates or replaces a secret like
    /// [`create_secret`](streambed::secret_store::SecretStore::create_secret),
    /// saying why when it fails. The file is replaced atomically and durably, and carries
    /// the root directory's permission bits; the next read sees the new secret.
    ///
    /// ```
    /// # use std::{collections::HashMap, os::unix::fs::PermissionsExt, time::Duration};
    /// use streambed::secret_store::SecretData;
    /// use streambed_confidant::{ConfidantError, FileSecretStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    /// let ss = FileSecretStore::new(root.path(), &[0; 16], Duration::from_secs(60), 100, None);
    /// let data = SecretData { data: HashMap::new() };
    /// assert!(ss.try_create_secret("a/b", data.clone()).await.is_ok());
    /// assert!(matches!(
    ///     ss.try_create_secret("../escape", data).await,
    ///     Err(ConfidantError::InvalidName { .. })
    /// ));
    /// # });
    /// ```
    pub async fn try_create_secret(
        &self,
        secret_path: &str,
        secret_data: SecretData,
    ) -> Result<(), ConfidantError> {
        self.write_secret(secret_path, &secret_data, Existing::Replace)
            .await
            .map(|_| ())
    }

    /// Creates a secret only if there is none at its path yet, answering whether it did.
    /// The check and the creation are one atomic step, so of several processes racing to
    /// create the same secret (say, a new encryption key) exactly one succeeds and the
    /// others can read the winner's secret.
    ///
    /// ```
    /// # use std::{collections::HashMap, os::unix::fs::PermissionsExt, time::Duration};
    /// use streambed::secret_store::SecretData;
    /// use streambed_confidant::FileSecretStore;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let root = tempfile::tempdir().unwrap();
    /// std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    /// let ss = FileSecretStore::new(root.path(), &[0; 16], Duration::from_secs(60), 100, None);
    /// let data = SecretData { data: HashMap::new() };
    /// assert!(ss.try_create_secret_if_absent("key", data.clone()).await.unwrap());
    /// assert!(!ss.try_create_secret_if_absent("key", data).await.unwrap());
    /// # });
    /// ```
    pub async fn try_create_secret_if_absent(
        &self,
        secret_path: &str,
        secret_data: SecretData,
    ) -> Result<bool, ConfidantError> {
        self.write_secret(secret_path, &secret_data, Existing::Keep)
            .await
    }

    async fn write_secret(
        &self,
        secret_path: &str,
        secret_data: &SecretData,
        existing: Existing,
    ) -> Result<bool, ConfidantError> {
        let written = self.write_file(secret_path, secret_data, existing).await;
        metered::failure(metered::WRITE_ERRORS, written)
    }

    async fn write_file(
        &self,
        secret_path: &str,
        secret_data: &SecretData,
        existing: Existing,
    ) -> Result<bool, ConfidantError> {
        let root_mode = self.check_root()?;
        let path = SecretPath::parse(secret_path)?;
        let file = names::file_in(&self.shared.root_path, path);
        let salt = crypto::salt(&mut rand::thread_rng());
        let bytes = storage::encode(secret_data, &self.shared.root_secret, &salt).map_err(|e| {
            ConfidantError::Corrupt {
                path: file.clone(),
                reason: format!("cannot encode: {e}"),
            }
        })?;
        let key = path.as_str().to_string();
        let cache = Arc::clone(&self.shared.cache);
        // The cache is invalidated by the blocking task itself so that a caller that is
        // cancelled mid-write still leaves no stale entry behind.
        tokio::task::spawn_blocking(move || {
            let written = storage::write(
                &file,
                &bytes,
                root_mode & 0o777,
                root_mode & 0o7777,
                existing,
            );
            cache.invalidate(&key);
            written
        })
        .await
        .map_err(|_| ConfidantError::Abandoned)?
    }

    /// Removes a secret's file, if any, and its cached read.
    pub(crate) async fn remove_secret(&self, path: SecretPath<'_>) -> Result<(), ConfidantError> {
        let file = names::file_in(&self.shared.root_path, path);
        let key = path.as_str().to_string();
        let cache = Arc::clone(&self.shared.cache);
        let removed = tokio::task::spawn_blocking(move || {
            let removed = storage::remove(&file);
            cache.invalidate(&key);
            removed
        })
        .await
        .map_err(|_| ConfidantError::Abandoned)
        .and_then(|removed| removed);
        metered::failure(metered::WRITE_ERRORS, removed)
    }
}

impl Shared {
    /// Reads and decodes a secret's file; runs on the blocking pool.
    fn load(&self, file: &Path) -> Answer {
        let Some(bytes) = storage::read(file)? else {
            return Ok(None);
        };
        let secret_data = storage::decode(bytes, &self.root_secret, file).inspect_err(|e| {
            log::warn!("{e}");
        })?;
        let lease = self
            .ttl_field
            .as_ref()
            .and_then(|field| secret_data.data.get(field))
            .and_then(|ttl| ttl.parse::<humantime::Duration>().ok())
            .map(Duration::from)
            .unwrap_or(DEFAULT_SECRET_TTL);
        Ok(Some(GetSecretReply {
            lease_duration: lease.as_secs(),
            data: secret_data,
        }))
    }
}

/// `start + duration`, saturating at a far but representable future.
fn later(start: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    start
        .checked_add(duration.min(FAR))
        .or_else(|| start.checked_add(Duration::from_secs(24 * 60 * 60)))
        .unwrap_or(start)
}
