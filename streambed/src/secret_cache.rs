//! A cache for [`SecretStore`](crate::secret_store::SecretStore) implementations: bounded,
//! with a lifetime per entry, and loading each missing key once however many callers ask
//! for it at the same time.
//!
//! Secret stores answer the same few reads (keys, credentials) over and over, while each
//! real read is costly: a file read and decryption for `streambed-confidant`, an HTTP call
//! for `streambed-vault`. Both keep their answers in a [`SecretCache`], which guarantees:
//!
//! - **Bounded memory.** At most `max_entries` answers are held; when full, the least
//!   recently used one is evicted. Lookups, inserts and evictions take constant time.
//! - **A lifetime per entry.** Each load says how long its answer may be served
//!   ([`Loaded`]): a secret for its lease, a refusal for a shorter time, a transient failure
//!   not at all. Since the cached value is any `V`, a `Result` caches failures too.
//! - **Single flight.** Concurrent misses of one key share one load: the first caller
//!   starts it, the others wait for its answer.
//! - **Cancellation safety.** A load runs as its own tokio task. A caller that gives up
//!   waiting (its future dropped) neither cancels the load for the others nor causes a
//!   second one; the answer is cached even when every caller has gone.
//! - **Writes win.** [`invalidate`](SecretCache::invalidate) (call it after a write)
//!   drops the cached answer *and detaches* a load under way: that load's answer, which may
//!   predate the write, still reaches the callers already waiting for it but is never
//!   cached, so any read that starts after the invalidation sees the write.
//!
//! The load is a future supplied by the caller, so it may do anything: await an HTTP
//! call, or move a blocking file read to `tokio::task::spawn_blocking`. Should the load
//! task be dropped before answering (its runtime shutting down) or the load panic, its
//! waiters get [`LoadAbandoned`] and the next read starts afresh.
//!
//! One mutex guards the state; it is never held across an `.await` nor while user code
//! runs. Counters are plain integers under that mutex, so no 64-bit atomics are needed on
//! 32-bit targets.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use streambed::secret_cache::{Loaded, SecretCache};
//!
//! // What a store would fetch from its backend; failures are cached too, for less time.
//! async fn fetch(path: String) -> Loaded<Result<String, String>> {
//!     if path.starts_with("forbidden/") {
//!         Loaded::keep_for(Err("denied".to_string()), Duration::from_secs(5))
//!     } else {
//!         Loaded::keep_for(Ok(format!("secret of {path}")), Duration::from_secs(60))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cache = Arc::new(SecretCache::new(100));
//! let read = cache.get_or_load("a/b", || fetch("a/b".to_string())).await;
//! assert_eq!(read, Ok(Ok("secret of a/b".to_string())));
//! let again = cache.get_or_load("a/b", || fetch("a/b".to_string())).await;
//! assert_eq!(again, read);
//! assert_eq!((cache.stats().loads, cache.stats().hits), (1, 1));
//!
//! cache.invalidate("a/b"); // say, after writing the secret
//! cache.get_or_load("a/b", || fetch("a/b".to_string())).await.unwrap();
//! assert_eq!(cache.stats().loads, 2);
//! # });
//! ```

mod lru;

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

use lru::Lru;

/// The longest time an answer is kept; longer lifetimes (such as a lease of `u64::MAX`
/// seconds) are cut to it rather than overflowing [`Instant`].
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A loaded value and until when the cache may serve it.
///
/// ```
/// use std::time::Duration;
/// use streambed::secret_cache::Loaded;
///
/// let secret = Loaded::keep_for("s3cr3t", Duration::from_secs(60));
/// assert!(secret.deadline().is_some());
/// let outage = Loaded::uncached("server unavailable");
/// assert_eq!(outage.deadline(), None);
/// assert_eq!(*outage.value(), "server unavailable");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded<V> {
    value: V,
    keep_until: Option<Instant>,
}

impl<V> Loaded<V> {
    /// A value to serve for `ttl` from now (the end of its load). A zero `ttl` is not
    /// cached; a `ttl` past a century is cut to a century.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed::secret_cache::Loaded;
    ///
    /// assert_eq!(Loaded::keep_for(1, Duration::ZERO).deadline(), None);
    /// assert!(Loaded::keep_for(1, Duration::MAX).deadline().is_some());
    /// ```
    pub fn keep_for(value: V, ttl: Duration) -> Self {
        if ttl.is_zero() {
            return Self::uncached(value);
        }
        let now = Instant::now();
        let keep_until = now
            .checked_add(ttl.min(FOREVER))
            .or_else(|| now.checked_add(Duration::from_secs(24 * 60 * 60)));
        Self { value, keep_until }
    }

    /// A value to serve until `deadline`, such as a lease counted from when its load
    /// started. A deadline that has passed by the time the load ends is not cached.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed::secret_cache::Loaded;
    /// use tokio::time::Instant;
    ///
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// assert_eq!(Loaded::keep_until(1, deadline).deadline(), Some(deadline));
    /// ```
    pub fn keep_until(value: V, deadline: Instant) -> Self {
        Self {
            value,
            keep_until: Some(deadline),
        }
    }

    /// A value handed to the callers waiting for it but not cached, such as a transient
    /// failure.
    ///
    /// ```
    /// use streambed::secret_cache::Loaded;
    ///
    /// assert_eq!(Loaded::uncached(1).deadline(), None);
    /// ```
    pub fn uncached(value: V) -> Self {
        Self {
            value,
            keep_until: None,
        }
    }

    /// The loaded value.
    ///
    /// ```
    /// use streambed::secret_cache::Loaded;
    ///
    /// assert_eq!(*Loaded::uncached(7).value(), 7);
    /// ```
    pub fn value(&self) -> &V {
        &self.value
    }

    /// Until when the value may be served; `None` when it is not cached at all.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambed::secret_cache::Loaded;
    ///
    /// assert!(Loaded::keep_for(7, Duration::from_secs(1)).deadline().is_some());
    /// assert_eq!(Loaded::uncached(7).deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.keep_until
    }
}

/// How many reads a cache answered itself, how many loads it started, and its size.
///
/// ```
/// let stats = streambed::secret_cache::CacheStats::default();
/// assert_eq!((stats.hits, stats.loads, stats.entries), (0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct CacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Loads started (concurrent misses of one key share one).
    pub loads: u64,
    /// Answers currently cached (some possibly expired but not yet evicted).
    pub entries: usize,
}

/// The load of a key ended without an answer: its task was dropped (its runtime is
/// shutting down) or the load panicked. Nothing was cached; the next read loads afresh.
///
/// ```
/// let error = streambed::secret_cache::LoadAbandoned;
/// assert_eq!(error.to_string(), "the load was abandoned before answering");
/// ```
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct LoadAbandoned;

impl fmt::Display for LoadAbandoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the load was abandoned before answering")
    }
}

impl std::error::Error for LoadAbandoned {}

struct Entry<V> {
    value: V,
    expires_at: Instant,
}

/// A load under way. Its id tells it apart from a later load of the same key, started
/// after an invalidation detached it.
struct InFlight<V> {
    id: u64,
    answer: watch::Receiver<Option<V>>,
}

struct State<V> {
    entries: Lru<Entry<V>>,
    in_flight: HashMap<Arc<str>, InFlight<V>>,
    next_load_id: u64,
    hits: u64,
    loads: u64,
}

impl<V> State<V> {
    fn is_current(&self, key: &str, id: u64) -> bool {
        self.in_flight.get(key).map(|load| load.id) == Some(id)
    }
}

/// A bounded, expiring, single-flight cache of `V` by string key; see the
/// [module documentation](self). Share it through an [`Arc`].
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use streambed::secret_cache::{Loaded, SecretCache};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let cache = Arc::new(SecretCache::new(10));
/// let load = || async { Loaded::keep_for(42, Duration::from_secs(60)) };
/// assert_eq!(cache.get_or_load("answer", load).await, Ok(42));
/// assert_eq!(cache.len(), 1);
/// # });
/// ```
pub struct SecretCache<V> {
    state: Mutex<State<V>>,
}

impl<V> fmt::Debug for SecretCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SecretCache")
            .field("max_entries", &state.entries.capacity())
            .field("entries", &state.entries.len())
            .field("in_flight", &state.in_flight.len())
            .finish()
    }
}

impl<V> SecretCache<V> {
    /// A cache holding at most `max_entries` answers. With 0 it caches nothing but still
    /// shares the loads of concurrent misses.
    ///
    /// ```
    /// let cache = streambed::secret_cache::SecretCache::<String>::new(100);
    /// assert!(cache.is_empty());
    /// ```
    pub fn new(max_entries: usize) -> Self {
        Self {
            state: Mutex::new(State {
                entries: Lru::new(max_entries),
                in_flight: HashMap::new(),
                next_load_id: 0,
                hits: 0,
                loads: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<V>> {
        // The lock is never held while user code runs nor across an await, and every step
        // under it leaves the state consistent, so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets `key`, including a load of it under way: that load's answer still goes to
    /// the callers already waiting for it, but is not cached. Call it after writing `key`,
    /// so that every read starting afterwards loads the new value.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use streambed::secret_cache::{Loaded, SecretCache};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let cache = Arc::new(SecretCache::new(10));
    /// let load = || async { Loaded::keep_for(1, Duration::from_secs(60)) };
    /// cache.get_or_load("k", load).await.unwrap();
    /// cache.invalidate("k");
    /// assert!(cache.is_empty());
    /// # });
    /// ```
    pub fn invalidate(&self, key: &str) {
        let mut state = self.lock();
        state.entries.remove(key);
        state.in_flight.remove(key);
    }

    /// Forgets everything, detaching every load under way as
    /// [`invalidate`](Self::invalidate) does; for example when the identity whose rights
    /// the answers were read with changes. Counters are kept.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use streambed::secret_cache::{Loaded, SecretCache};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let cache = Arc::new(SecretCache::new(10));
    /// let load = || async { Loaded::keep_for(1, Duration::from_secs(60)) };
    /// cache.get_or_load("a", load).await.unwrap();
    /// cache.get_or_load("b", load).await.unwrap();
    /// cache.clear();
    /// assert_eq!(cache.len(), 0);
    /// # });
    /// ```
    pub fn clear(&self) {
        let mut state = self.lock();
        state.entries.clear();
        state.in_flight.clear();
    }

    /// How many answers are held, fresh or expired but not yet evicted.
    ///
    /// ```
    /// assert_eq!(streambed::secret_cache::SecretCache::<u8>::new(10).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no answer is held.
    ///
    /// ```
    /// assert!(streambed::secret_cache::SecretCache::<u8>::new(10).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hits and loads so far, and the number of answers held.
    ///
    /// ```
    /// let stats = streambed::secret_cache::SecretCache::<u8>::new(10).stats();
    /// assert_eq!(stats, Default::default());
    /// ```
    pub fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            hits: state.hits,
            loads: state.loads,
            entries: state.entries.len(),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> SecretCache<V> {
    /// The answer for `key`: cached if still fresh, else that of the load of `key` already
    /// under way, else that of a new load: the future made by `load`, run as its own task
    /// on the current tokio runtime (so this must be called within one).
    ///
    /// `load` is called at most once, without the cache's lock held. Dropping the returned
    /// future only stops waiting; the load goes on for everyone else. The error is returned
    /// only when the load ended without an answer.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use streambed::secret_cache::{Loaded, SecretCache};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let cache = Arc::new(SecretCache::new(10));
    /// // A blocking read belongs on the blocking pool.
    /// let read = || async {
    ///     match tokio::task::spawn_blocking(|| "from disk".to_string()).await {
    ///         Ok(value) => Loaded::keep_for(Some(value), Duration::from_secs(60)),
    ///         Err(_) => Loaded::uncached(None),
    ///     }
    /// };
    /// assert_eq!(cache.get_or_load("k", read).await.unwrap().as_deref(), Some("from disk"));
    /// # });
    /// ```
    pub async fn get_or_load<F, Fut>(
        self: &Arc<Self>,
        key: &str,
        load: F,
    ) -> Result<V, LoadAbandoned>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Loaded<V>> + Send + 'static,
    {
        let mut answer = {
            let mut state = self.lock();
            let now = Instant::now();
            let expired = match state.entries.get(key) {
                Some(entry) if entry.expires_at > now => {
                    let value = entry.value.clone();
                    state.hits += 1;
                    return Ok(value);
                }
                found => found.is_some(),
            };
            if expired {
                state.entries.remove(key);
            }
            match state.in_flight.get(key) {
                Some(in_flight) => in_flight.answer.clone(),
                None => {
                    let id = state.next_load_id;
                    state.next_load_id = state.next_load_id.wrapping_add(1);
                    state.loads += 1;
                    let (sender, receiver) = watch::channel(None);
                    let key: Arc<str> = Arc::from(key);
                    state.in_flight.insert(
                        Arc::clone(&key),
                        InFlight {
                            id,
                            answer: receiver.clone(),
                        },
                    );
                    drop(state);
                    // The guard exists before any user code runs, so a panicking `load`, or
                    // a task dropped unpolled, still withdraws the load.
                    let guard = LoadGuard {
                        cache: Arc::clone(self),
                        key,
                        id,
                        sender,
                    };
                    let loading = load();
                    drop(tokio::spawn(async move {
                        let loaded = loading.await;
                        guard.complete(loaded);
                    }));
                    receiver
                }
            }
        };
        let outcome = match answer.wait_for(Option::is_some).await {
            Ok(value) => value.clone(),
            Err(_) => None,
        };
        outcome.ok_or(LoadAbandoned)
    }
}

/// Owns a load under way: publishes its answer, or withdraws the load if dropped first.
struct LoadGuard<V> {
    cache: Arc<SecretCache<V>>,
    key: Arc<str>,
    id: u64,
    sender: watch::Sender<Option<V>>,
}

impl<V: Clone> LoadGuard<V> {
    fn complete(self, loaded: Loaded<V>) {
        let Loaded { value, keep_until } = loaded;
        {
            let mut state = self.cache.lock();
            if state.is_current(&self.key, self.id) {
                state.in_flight.remove(&self.key);
                if let Some(expires_at) = keep_until.filter(|&at| at > Instant::now()) {
                    let entry = Entry {
                        value: value.clone(),
                        expires_at,
                    };
                    state.entries.insert(Arc::clone(&self.key), entry);
                }
            }
        }
        self.sender.send_replace(Some(value));
    }
}

impl<V> Drop for LoadGuard<V> {
    fn drop(&mut self) {
        if self.sender.borrow().is_none() {
            let mut state = self.cache.lock();
            if state.is_current(&self.key, self.id) {
                state.in_flight.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests;
