//! The store itself: what a [`FileSecretStore`] holds, how clones and per-user stores
//! share it, and the check of the root directory that every call makes first.
//!
//! Its calls live beside it by concept (`secrets`, `users`, `secret_store` for the
//! trait); this file only says what they all share.

use std::{
    fmt,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use streambed::{
    crypto::KEY_SIZE,
    secret_cache::{CacheStats, SecretCache},
    secret_store::GetSecretReply,
};

use crate::ConfidantError;

/// The answer to a read, as cached: the secret, its absence, or why it could not be read.
pub(crate) type Answer = Result<Option<GetSecretReply>, ConfidantError>;

/// Group and other permission bits, none of which the root directory may have.
const GROUP_OTHER_BITS: u32 = 0o077;

/// A secret store keeping each secret in an encrypted file below a root directory.
///
/// Clones share everything; [`FileSecretStore::with_new_auth_prepared`] makes a store
/// that shares the files and cache but has its own authentication state, for one user
/// session. Every call fails with `Unauthorized` while the root directory grants any
/// access to group or other users.
///
/// The trait methods answer only `Unauthorized` on failure; the `try_` methods say why.
pub struct FileSecretStore {
    pub(crate) shared: Arc<Shared>,
    session: Arc<Mutex<Option<String>>>,
}

/// What every store over the same files shares: where they are, how they are sealed, and
/// the cache of their reads.
pub(crate) struct Shared {
    pub(crate) root_path: PathBuf,
    pub(crate) root_secret: [u8; KEY_SIZE],
    pub(crate) unauthorized_timeout: Duration,
    pub(crate) ttl_field: Option<String>,
    pub(crate) cache: Arc<SecretCache<Answer>>,
}

impl Clone for FileSecretStore {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            session: Arc::clone(&self.session),
        }
    }
}

impl fmt::Debug for FileSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the root secret.
        f.debug_struct("FileSecretStore")
            .field("root_path", &self.shared.root_path)
            .field("ttl_field", &self.shared.ttl_field)
            .field("unauthorized_timeout", &self.shared.unauthorized_timeout)
            .finish_non_exhaustive()
    }
}

impl FileSecretStore {
    /// Makes a store of the secrets below `root_path`, encrypted under `root_secret`.
    ///
    /// Up to `max_secrets_cached` answers are cached. A secret is cached for the
    /// humantime duration in its `ttl_field` data field (e.g. `"60m"`), else 5 minutes;
    /// an absent secret, or one that does not decode, is remembered for
    /// `unauthorized_timeout` (an I/O error is not remembered). Nothing is touched until
    /// the first call.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed_confidant::FileSecretStore;
    ///
    /// let ss = FileSecretStore::new("/var/lib/confidant", &[0; 16], Duration::from_secs(60), 10_000, None);
    /// assert_eq!(ss.cache_stats().entries, 0);
    /// ```
    pub fn new<P: Into<PathBuf>>(
        root_path: P,
        root_secret: &[u8; KEY_SIZE],
        unauthorized_timeout: Duration,
        max_secrets_cached: usize,
        ttl_field: Option<&str>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                root_path: root_path.into(),
                root_secret: *root_secret,
                unauthorized_timeout,
                ttl_field: ttl_field.map(str::to_string),
                cache: Arc::new(SecretCache::new(max_secrets_cached)),
            }),
            session: Arc::new(Mutex::new(None)),
        }
    }

    /// Makes a store over the same files, settings and cache as `ss`, with a fresh
    /// authentication state: typically one per user session.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed_confidant::FileSecretStore;
    ///
    /// let ss = FileSecretStore::new("/var/lib/confidant", &[0; 16], Duration::from_secs(60), 100, None);
    /// let user_ss = FileSecretStore::with_new_auth_prepared(&ss);
    /// assert_eq!(user_ss.authenticated_user(), None);
    /// ```
    pub fn with_new_auth_prepared(ss: &Self) -> Self {
        Self {
            shared: Arc::clone(&ss.shared),
            session: Arc::new(Mutex::new(None)),
        }
    }

    /// The user this store (or a clone of it) last logged in as through
    /// [`userpass_auth`](streambed::secret_store::SecretStore::userpass_auth) or confirmed
    /// through [`token_auth`](streambed::secret_store::SecretStore::token_auth); `None`
    /// before that and after an AppRole
    /// login.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed_confidant::FileSecretStore;
    ///
    /// let ss = FileSecretStore::new("/tmp/none", &[0; 16], Duration::from_secs(60), 100, None);
    /// assert_eq!(ss.authenticated_user(), None);
    /// ```
    pub fn authenticated_user(&self) -> Option<String> {
        self.session_lock().clone()
    }

    /// Counts of cache hits and file reads so far, and the cache's current size.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed_confidant::FileSecretStore;
    ///
    /// let ss = FileSecretStore::new("/tmp/none", &[0; 16], Duration::from_secs(60), 100, None);
    /// assert_eq!(ss.cache_stats().loads, 0);
    /// ```
    pub fn cache_stats(&self) -> CacheStats {
        self.shared.cache.stats()
    }

    fn session_lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // The session is a plain value, always consistent, so a poisoned lock is harmless.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_session(&self, user: Option<String>) {
        *self.session_lock() = user;
    }

    /// Checks the root directory's permissions, answering its mode.
    ///
    /// A plain `stat` of one directory is served from the kernel's inode cache; running it
    /// inline costs far less than a hop to the blocking pool on every cached read.
    pub(crate) fn check_root(&self) -> Result<u32, ConfidantError> {
        let root = &self.shared.root_path;
        let unavailable = |source: std::io::Error| ConfidantError::RootUnavailable {
            path: root.clone(),
            source: Arc::new(source),
        };
        let metadata = std::fs::metadata(root).map_err(unavailable)?;
        if !metadata.is_dir() {
            return Err(unavailable(std::io::Error::other("not a directory")));
        }
        let mode = metadata.permissions().mode();
        if mode & GROUP_OTHER_BITS != 0 {
            return Err(ConfidantError::InsecureRoot {
                mode: mode & 0o7777,
            });
        }
        Ok(mode)
    }
}
