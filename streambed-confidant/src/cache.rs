//! The secret cache: bounded (LRU), time-limited per entry, and loading each missing key
//! once however many callers ask for it at the same time.
//!
//! A miss starts one load on tokio's blocking pool and records it as *in flight*; later
//! callers for the same key wait for that load instead of starting their own. The load
//! stores its answer in the cache itself, so it completes and is cached even when every
//! caller that waited for it has been cancelled. A write invalidates the key: it drops the
//! cached entry and detaches any in-flight load, whose (possibly older) answer then goes
//! only to the callers already waiting for it and is never cached.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use streambed::secret_store::GetSecretReply;
use tokio::{sync::watch, time::Instant};

use crate::{lru::Lru, ConfidantError};

/// The answer to a read: the secret, its absence, or why it could not be read.
pub(crate) type Answer = Result<Option<GetSecretReply>, ConfidantError>;

/// How many reads the cache answered itself and how many went to the file system.
///
/// ```
/// let stats = streambed_confidant::CacheStats::default();
/// assert_eq!((stats.hits, stats.loads, stats.entries), (0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct CacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads of a secret's file (concurrent misses of one secret share one).
    pub loads: u64,
    /// Secrets (and remembered absences and refusals) currently cached.
    pub entries: usize,
}

struct Entry {
    answer: Answer,
    expires_at: Instant,
}

struct InFlight {
    id: u64,
    answer: watch::Receiver<Option<Answer>>,
}

struct State {
    entries: Lru<Entry>,
    in_flight: HashMap<String, InFlight>,
    next_load_id: u64,
    hits: u64,
    loads: u64,
}

/// A cache shared by a store and every store prepared from it.
pub(crate) struct Cache {
    state: Mutex<State>,
}

enum Lookup {
    Hit(Answer),
    Wait(watch::Receiver<Option<Answer>>),
    Load(
        u64,
        watch::Receiver<Option<Answer>>,
        watch::Sender<Option<Answer>>,
    ),
}

impl Cache {
    pub(crate) fn new(max_entries: usize) -> Self {
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

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock, and the state stays consistent at every
        // step anyway, so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            hits: state.hits,
            loads: state.loads,
            entries: state.entries.len(),
        }
    }

    /// Answers `key` from the cache, or by running `load(key)` on the blocking pool (once
    /// for all concurrent callers). `expiry` says when a loaded answer stops being valid,
    /// given the instant its load started.
    pub(crate) async fn get<L, E>(self: &Arc<Self>, key: &str, load: L, expiry: E) -> Answer
    where
        L: FnOnce(&str) -> Answer + Send + 'static,
        E: FnOnce(&Answer, Instant) -> Instant + Send + 'static,
    {
        let now = Instant::now();
        let lookup = {
            let mut state = self.lock();
            match state.entries.get(key) {
                Some(entry) if entry.expires_at > now => {
                    let answer = entry.answer.clone();
                    state.hits += 1;
                    Lookup::Hit(answer)
                }
                found => {
                    if found.is_some() {
                        state.entries.remove(key);
                    }
                    match state.in_flight.get(key) {
                        Some(in_flight) => Lookup::Wait(in_flight.answer.clone()),
                        None => {
                            let id = state.next_load_id;
                            state.next_load_id += 1;
                            state.loads += 1;
                            let (sender, receiver) = watch::channel(None);
                            state.in_flight.insert(
                                key.to_string(),
                                InFlight {
                                    id,
                                    answer: receiver.clone(),
                                },
                            );
                            Lookup::Load(id, receiver, sender)
                        }
                    }
                }
            }
        };
        let receiver = match lookup {
            Lookup::Hit(answer) => return answer,
            Lookup::Wait(receiver) => receiver,
            Lookup::Load(id, receiver, sender) => {
                let guard = LoadGuard {
                    cache: Arc::clone(self),
                    key: key.to_string(),
                    id,
                    sender,
                };
                // If the runtime refuses the task, dropping it drops the guard, which
                // withdraws the load so that waiters and later callers are not stranded.
                drop(tokio::task::spawn_blocking(move || {
                    let answer = load(&guard.key);
                    let expires_at = expiry(&answer, now);
                    guard.complete(answer, expires_at);
                }));
                receiver
            }
        };
        wait(receiver).await
    }

    /// Forgets `key`, so that the next read loads it afresh.
    pub(crate) fn invalidate(&self, key: &str) {
        let mut state = self.lock();
        state.entries.remove(key);
        state.in_flight.remove(key);
    }
}

async fn wait(mut receiver: watch::Receiver<Option<Answer>>) -> Answer {
    loop {
        if let Some(answer) = receiver.borrow_and_update().as_ref() {
            return answer.clone();
        }
        if receiver.changed().await.is_err() {
            return receiver
                .borrow()
                .clone()
                .unwrap_or(Err(ConfidantError::Abandoned));
        }
    }
}

/// Owns an in-flight load: publishes its answer, or withdraws it if dropped unanswered.
struct LoadGuard {
    cache: Arc<Cache>,
    key: String,
    id: u64,
    sender: watch::Sender<Option<Answer>>,
}

impl LoadGuard {
    fn complete(self, answer: Answer, expires_at: Instant) {
        {
            let mut state = self.cache.lock();
            if self.is_current(&state) {
                state.in_flight.remove(&self.key);
                state.entries.insert(
                    self.key.clone(),
                    Entry {
                        answer: answer.clone(),
                        expires_at,
                    },
                );
            }
        }
        self.sender.send_replace(Some(answer));
    }

    fn is_current(&self, state: &State) -> bool {
        state.in_flight.get(&self.key).map(|f| f.id) == Some(self.id)
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        if self.sender.borrow().is_none() {
            let mut state = self.cache.lock();
            if self.is_current(&state) {
                state.in_flight.remove(&self.key);
            }
        }
    }
}
