//! An encrypted, file-system based [`SecretStore`]: secrets for services on devices that
//! run no Vault server.
//!
//! Each secret is one file below a root directory, encrypted under a root secret (a
//! 16-byte key the service receives from outside, e.g. through systemd credentials). The
//! operating system is the authority: the root directory must grant no access to group or
//! other users, and whoever can read it may use every secret, so AppRole logins always
//! succeed. User names and passwords are stored as salted hashes, and a user login yields
//! a signed token that any store holding the same root secret accepts.
//!
//! Files and tokens are interchangeable with those of the original streambed-confidant.
//! Beyond it, this store replaces files atomically (a crash never leaves a torn secret),
//! keeps secret paths and user names inside the root, compares password hashes in
//! constant time, reports corrupt files as errors, and reads a secret once however many
//! tasks ask for it at the same moment.
//!
//! ```
//! # use std::{collections::HashMap, os::unix::fs::PermissionsExt, time::Duration};
//! use streambed::secret_store::{SecretData, SecretStore};
//! use streambed_confidant::FileSecretStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let root = tempfile::tempdir().unwrap();
//! std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
//!
//! let ss = FileSecretStore::new(root.path(), &[7; 16], Duration::from_secs(60), 100, Some("ttl"));
//! ss.approle_auth("my-service", "ignored").await.unwrap();
//!
//! let data = HashMap::from([("value".to_string(), "00112233445566778899aabbccddeeff".to_string())]);
//! ss.create_secret("default/secrets.key", SecretData { data }).await.unwrap();
//! let reply = ss.get_secret("default/secrets.key").await.unwrap().unwrap();
//! assert_eq!(reply.lease_duration, 300); // no "ttl" field: five minutes
//! # });
//! ```

#![warn(missing_docs)]

pub mod args;
mod error;
mod names;
mod storage;
mod token;

use std::{
    collections::HashMap,
    fmt,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use streambed::{
    crypto::{self, KEY_SIZE, SALT_SIZE},
    secret_cache::{Loaded, SecretCache},
    secret_store::{
        AppRoleAuthReply, AuthToken, Error, GetSecretReply, SecretData, SecretStore,
        UserPassAuthReply,
    },
};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

pub use error::ConfidantError;
/// How many reads the cache answered itself, how many read a secret's file (concurrent
/// misses of one secret share one read), and how many answers it holds; see
/// [`FileSecretStore::cache_stats`].
pub use streambed::secret_cache::CacheStats;

use names::SecretPath;
use storage::Existing;

/// The answer to a read, as cached: the secret, its absence, or why it could not be read.
type Answer = Result<Option<GetSecretReply>, ConfidantError>;

/// How long a secret is cached when it names no lease of its own.
const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(5 * 60);

/// How long a user's token stays valid: 7 days.
const USERPASS_LEASE_TIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The token answered by AppRole logins, which this store does not need.
const APPROLE_TOKEN: &str = "some-token";

/// The secret field holding a user's hashed password.
const PASSWORD_FIELD: &str = "password";

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
    shared: Arc<Shared>,
    session: Arc<Mutex<Option<String>>>,
}

struct Shared {
    root_path: PathBuf,
    root_secret: [u8; KEY_SIZE],
    unauthorized_timeout: Duration,
    ttl_field: Option<String>,
    cache: Arc<SecretCache<Answer>>,
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
    /// an absent secret, or one that could not be read, is remembered for
    /// `unauthorized_timeout`. Nothing is touched until the first call.
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
    /// [`userpass_auth`](SecretStore::userpass_auth) or confirmed through
    /// [`token_auth`](SecretStore::token_auth); `None` before that and after an AppRole
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

    /// Reads a secret like [`get_secret`](SecretStore::get_secret), saying why when it
    /// fails. Failed reads are remembered (and answered from the cache) for the
    /// unauthorized timeout.
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
        self.check_root()?;
        let path = SecretPath::parse(secret_path)?;
        let secret_path = path.as_str();
        let load = || {
            // Leases count from the start of the read, so an answer is never served past
            // its lease measured from when the file was current.
            let started = Instant::now();
            let shared = Arc::clone(&self.shared);
            let secret_path = secret_path.to_string();
            async move {
                let unauthorized_timeout = shared.unauthorized_timeout;
                match tokio::task::spawn_blocking(move || shared.load(&secret_path)).await {
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
        self.shared
            .cache
            .get_or_load(secret_path, load)
            .await
            .unwrap_or(Err(ConfidantError::Abandoned))
    }

    /// Creates or replaces a secret like [`create_secret`](SecretStore::create_secret),
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
        let root_mode = self.check_root()?;
        let path = SecretPath::parse(secret_path)?;
        let file = path.file_in(&self.shared.root_path);
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

    fn session_lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // The session is a plain value, always consistent, so a poisoned lock is harmless.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_session(&self, user: Option<String>) {
        *self.session_lock() = user;
    }

    /// Checks the root directory's permissions, answering its mode.
    ///
    /// A plain `stat` of one directory is served from the kernel's inode cache; running it
    /// inline costs far less than a hop to the blocking pool on every cached read.
    fn check_root(&self) -> Result<u32, ConfidantError> {
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

    async fn remove_secret(&self, path: SecretPath<'_>) -> Result<(), ConfidantError> {
        let file = path.file_in(&self.shared.root_path);
        let key = path.as_str().to_string();
        let cache = Arc::clone(&self.shared.cache);
        tokio::task::spawn_blocking(move || {
            let removed = storage::remove(&file);
            cache.invalidate(&key);
            removed
        })
        .await
        .map_err(|_| ConfidantError::Abandoned)?
    }

    async fn try_userpass_auth(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), ConfidantError> {
        let user_path = names::user_secret_path(username)?;
        let stored = self
            .try_get_secret(&user_path)
            .await?
            .and_then(|reply| reply.data.data.get(PASSWORD_FIELD).cloned())
            .and_then(|hex_hash| hex::decode(hex_hash).ok())
            .filter(|hash| hash.len() > SALT_SIZE);
        // An unknown user costs a hash too, so timing does not tell which users exist.
        let (salt, expected) = match &stored {
            Some(hash) => {
                let mut salt = [0; SALT_SIZE];
                salt.copy_from_slice(&hash[..SALT_SIZE]);
                (salt, hash.as_slice())
            }
            None => ([0; SALT_SIZE], &[][..]),
        };
        let offered = crypto::hash(password.as_bytes(), &salt);
        if stored.is_some() && bool::from(offered.ct_eq(expected)) {
            Ok(())
        } else {
            Err(ConfidantError::AuthenticationFailed)
        }
    }

    async fn try_userpass_create_update_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), ConfidantError> {
        let current_path = names::user_secret_path(current_username)?;
        let user_path = names::user_secret_path(username)?;
        let salt = crypto::salt(&mut rand::thread_rng());
        let hash = crypto::hash(password.as_bytes(), &salt);
        let data = HashMap::from([(PASSWORD_FIELD.to_string(), hex::encode(hash))]);
        self.try_create_secret(&user_path, SecretData { data })
            .await?;
        if current_path != user_path {
            // A rename: the old name must no longer log in.
            self.remove_secret(SecretPath::parse(&current_path)?)
                .await?;
        }
        Ok(())
    }
}

impl Shared {
    /// Reads and decodes a secret's file; runs on the blocking pool.
    fn load(&self, secret_path: &str) -> Answer {
        let file = self.root_path.join(secret_path);
        let Some(bytes) = storage::read(&file)? else {
            return Ok(None);
        };
        let secret_data = storage::decode(bytes, &self.root_secret, &file).inspect_err(|e| {
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

fn unauthorized(e: ConfidantError) -> Error {
    log::debug!("secret store call refused: {e}");
    Error::Unauthorized
}

#[async_trait]
impl SecretStore for FileSecretStore {
    /// Always succeeds while the root directory is private: the operating system user
    /// is the service's identity. The token answered is not needed for later calls.
    async fn approle_auth(
        &self,
        _role_id: &str,
        _secret_id: &str,
    ) -> Result<AppRoleAuthReply, Error> {
        self.check_root().map_err(unauthorized)?;
        self.set_session(None);
        Ok(AppRoleAuthReply {
            auth: AuthToken {
                client_token: APPROLE_TOKEN.to_string(),
                lease_duration: u64::MAX,
            },
        })
    }

    async fn create_secret(&self, secret_path: &str, secret_data: SecretData) -> Result<(), Error> {
        self.try_create_secret(secret_path, secret_data)
            .await
            .map_err(unauthorized)
    }

    async fn get_secret(&self, secret_path: &str) -> Result<Option<GetSecretReply>, Error> {
        self.try_get_secret(secret_path).await.map_err(unauthorized)
    }

    /// Accepts a token issued by [`userpass_auth`](SecretStore::userpass_auth) of any
    /// store with the same root secret, until it expires.
    async fn token_auth(&self, token: &str) -> Result<(), Error> {
        self.check_root().map_err(unauthorized)?;
        let user = token::verify(token, SystemTime::now(), &self.shared.root_secret)
            .ok_or_else(|| unauthorized(ConfidantError::AuthenticationFailed))?;
        self.set_session(Some(user));
        Ok(())
    }

    /// Checks the password against the user's stored hash and answers a token valid for
    /// 7 days.
    async fn userpass_auth(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserPassAuthReply, Error> {
        self.try_userpass_auth(username, password)
            .await
            .map_err(unauthorized)?;
        let client_token = token::issue(
            username,
            SystemTime::now(),
            USERPASS_LEASE_TIME,
            &self.shared.root_secret,
        );
        self.set_session(Some(username.to_string()));
        Ok(UserPassAuthReply {
            auth: AuthToken {
                client_token,
                lease_duration: USERPASS_LEASE_TIME.as_secs(),
            },
        })
    }

    /// Stores the user's salted password hash. When `current_username` differs from
    /// `username`, the user is renamed: the old name is removed once the new one is
    /// stored.
    async fn userpass_create_update_user(
        &self,
        current_username: &str,
        username: &str,
        password: &str,
    ) -> Result<(), Error> {
        self.try_userpass_create_update_user(current_username, username, password)
            .await
            .map_err(unauthorized)
    }
}
