//! A bounded cache of loaded values, each kept for its own time to live, where concurrent
//! misses of one key share a single load.
//!
//! Entries are evicted least recently used first once the capacity is reached, and expire
//! after the time to live their load returned. A load runs as its own task: a caller that
//! gives up waiting (its future dropped) neither cancels the load for the others nor
//! causes a second one.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

/// A cache of `V` by string key; cheap to share through an `Arc`.
pub(crate) struct Cache<V> {
    capacity: usize,
    inner: Mutex<Inner<V>>,
}

struct Entry<V> {
    value: V,
    expires: Instant,
    /// Position in the recency order; larger is more recent.
    used: u64,
}

struct Load<V> {
    id: u64,
    result: watch::Receiver<Option<V>>,
}

struct Inner<V> {
    entries: HashMap<Arc<str>, Entry<V>>,
    /// Keys by last use, to find the least recently used in logarithmic time.
    recency: BTreeMap<u64, Arc<str>>,
    loads: HashMap<Arc<str>, Load<V>>,
    clock: u64,
}

impl<V> Inner<V> {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.recency.remove(&entry.used);
        }
    }
}

impl<V: Clone + Send + Sync + 'static> Cache<V> {
    /// A cache holding at most `capacity` values; 0 caches nothing but still shares
    /// concurrent loads.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                recency: BTreeMap::new(),
                loads: HashMap::new(),
                clock: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // The lock is never held across an await nor around code that can panic halfway
        // through an update, so a poisoned state is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value for `key`: cached if still fresh, else the result of a load already under
    /// way, else of a new load made by `load`, which gives the value and how long to keep
    /// it (zero: not at all).
    pub(crate) async fn get_or_load<F, Fut>(self: &Arc<Self>, key: &str, load: F) -> V
    where
        F: Fn() -> Fut,
        Fut: Future<Output = (V, Duration)> + Send + 'static,
    {
        loop {
            let mut result = {
                let mut guard = self.lock();
                let inner = &mut *guard;
                let now = Instant::now();
                if let Some(entry) = inner.entries.get_mut(key) {
                    if entry.expires > now {
                        inner.clock += 1;
                        let previous = std::mem::replace(&mut entry.used, inner.clock);
                        if let Some(key) = inner.recency.remove(&previous) {
                            inner.recency.insert(inner.clock, key);
                        }
                        return entry.value.clone();
                    }
                    inner.remove(key);
                }
                match inner.loads.get(key) {
                    Some(load) => load.result.clone(),
                    None => {
                        let id = inner.tick();
                        let (sender, receiver) = watch::channel(None);
                        let key: Arc<str> = Arc::from(key);
                        inner.loads.insert(
                            Arc::clone(&key),
                            Load {
                                id,
                                result: receiver.clone(),
                            },
                        );
                        drop(guard);
                        let loading = load();
                        let cache = Arc::clone(self);
                        tokio::spawn(async move {
                            let mut abandoned = Abandoned {
                                cache: &cache,
                                key: &key,
                                id,
                                armed: true,
                            };
                            let (value, ttl) = loading.await;
                            abandoned.armed = false;
                            cache.finish(&key, id, value.clone(), ttl);
                            sender.send_replace(Some(value));
                        });
                        receiver
                    }
                }
            };
            let outcome = match result.wait_for(Option::is_some).await {
                Ok(value) => value.clone(),
                Err(_) => None,
            };
            if let Some(value) = outcome {
                return value;
            }
            // The load task was dropped before finishing (its runtime is shutting down):
            // try again, which starts a new load if this runtime still runs.
        }
    }

    /// Stores the result of load `id` of `key`, unless the key was invalidated meanwhile.
    fn finish(&self, key: &Arc<str>, id: u64, value: V, ttl: Duration) {
        let mut inner = self.lock();
        if inner.loads.get(key).map(|load| load.id) != Some(id) {
            return;
        }
        inner.loads.remove(key);
        if self.capacity == 0 || ttl.is_zero() {
            return;
        }
        let Some(expires) = Instant::now().checked_add(ttl) else {
            return;
        };
        inner.remove(key);
        while inner.entries.len() >= self.capacity {
            let Some((_, oldest)) = inner.recency.pop_first() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
        let used = inner.tick();
        inner.recency.insert(used, Arc::clone(key));
        inner.entries.insert(
            Arc::clone(key),
            Entry {
                value,
                expires,
                used,
            },
        );
    }

    /// Forgets `key`, including a load under way (its result is not kept).
    pub(crate) fn invalidate(&self, key: &str) {
        let mut inner = self.lock();
        inner.remove(key);
        inner.loads.remove(key);
    }

    /// Forgets everything, including loads under way.
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.recency.clear();
        inner.loads.clear();
    }

    /// How many values are held, fresh or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// Removes a load's record when its task is dropped before finishing, so that the next
/// caller starts a new load instead of waiting for one that will never end.
struct Abandoned<'a, V: Clone + Send + Sync + 'static> {
    cache: &'a Cache<V>,
    key: &'a Arc<str>,
    id: u64,
    armed: bool,
}

impl<V: Clone + Send + Sync + 'static> Drop for Abandoned<'_, V> {
    fn drop(&mut self) {
        if self.armed {
            let mut inner = self.cache.lock();
            if inner.loads.get(self.key).map(|load| load.id) == Some(self.id) {
                inner.loads.remove(self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn counting_load(
        loads: &Arc<AtomicUsize>,
        value: u32,
        ttl: Duration,
    ) -> impl Fn() -> std::future::Ready<(u32, Duration)> {
        let loads = Arc::clone(loads);
        move || {
            loads.fetch_add(1, Ordering::SeqCst);
            std::future::ready((value, ttl))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_value_is_served_without_loading_until_it_expires() {
        let cache = Arc::new(Cache::new(10));
        let loads = Arc::new(AtomicUsize::new(0));
        let load = counting_load(&loads, 7, Duration::from_secs(60));
        assert_eq!(cache.get_or_load("k", &load).await, 7);
        assert_eq!(cache.get_or_load("k", &load).await, 7);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(cache.get_or_load("k", &load).await, 7);
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_ttl_is_not_cached() {
        let cache = Arc::new(Cache::new(10));
        let loads = Arc::new(AtomicUsize::new(0));
        let load = counting_load(&loads, 1, Duration::ZERO);
        cache.get_or_load("k", &load).await;
        cache.get_or_load("k", &load).await;
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_load() {
        let cache = Arc::new(Cache::new(10));
        let loads = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let load = {
            let loads = Arc::clone(&loads);
            move || {
                loads.fetch_add(1, Ordering::SeqCst);
                let mut released = released.clone();
                async move {
                    let _ = released.wait_for(|r| *r).await;
                    (5u32, Duration::ZERO)
                }
            }
        };
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let load = load.clone();
                tokio::spawn(async move { cache.get_or_load("k", load).await })
            })
            .collect();
        tokio::task::yield_now().await;
        release.send_replace(true);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), 5);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_used_entry_is_evicted_at_capacity() {
        let cache = Arc::new(Cache::new(2));
        let loads = Arc::new(AtomicUsize::new(0));
        let load = counting_load(&loads, 0, Duration::from_secs(60));
        cache.get_or_load("a", &load).await;
        cache.get_or_load("b", &load).await;
        cache.get_or_load("a", &load).await; // "b" is now the least recently used
        cache.get_or_load("c", &load).await;
        assert_eq!(loads.load(Ordering::SeqCst), 3);
        cache.get_or_load("a", &load).await;
        assert_eq!(loads.load(Ordering::SeqCst), 3, "a stayed");
        cache.get_or_load("b", &load).await;
        assert_eq!(loads.load(Ordering::SeqCst), 4, "b was evicted");
        assert_eq!(cache.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_and_clear_force_a_new_load() {
        let cache = Arc::new(Cache::new(10));
        let loads = Arc::new(AtomicUsize::new(0));
        let load = counting_load(&loads, 0, Duration::from_secs(60));
        cache.get_or_load("a", &load).await;
        cache.invalidate("a");
        cache.get_or_load("a", &load).await;
        cache.clear();
        cache.get_or_load("a", &load).await;
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_load_invalidated_while_under_way_is_not_kept() {
        let cache = Arc::new(Cache::new(10));
        let (release, released) = watch::channel(false);
        let load = move || {
            let mut released = released.clone();
            async move {
                let _ = released.wait_for(|r| *r).await;
                (1u32, Duration::from_secs(60))
            }
        };
        let waiter = {
            let cache = Arc::clone(&cache);
            let load = load.clone();
            tokio::spawn(async move { cache.get_or_load("a", load).await })
        };
        tokio::task::yield_now().await;
        cache.invalidate("a");
        release.send_replace(true);
        assert_eq!(waiter.await.unwrap(), 1);
        assert_eq!(cache.len(), 0);
    }
}
