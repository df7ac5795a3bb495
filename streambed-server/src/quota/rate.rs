//! Request rate per client: a token bucket each, in a bounded, sharded table.
//!
//! The table is what an attacker with many addresses (or tokens) would grow, so it has a
//! cap: buckets that have refilled completely are indistinguishable from absent ones and
//! are swept out, and clients beyond the cap share one overflow bucket instead of getting
//! their own. Sharding keeps the lock each request takes short and rarely contended.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{lock, RateLimit};
use crate::client::ClientKey;

/// Shards of the table: enough that the server's threads rarely meet on one lock.
const SHARDS: usize = 16;

/// How often a shard is swept of idle buckets, at most.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// One client's allowance.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }

    /// The tokens the bucket holds at `now`, refilled since it was last touched.
    fn level(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant, rate: f64, burst: f64) -> Result<(), Duration> {
        self.tokens = self.level(now, rate, burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

#[derive(Debug)]
struct Shard {
    buckets: HashMap<ClientKey, Bucket>,
    swept: Instant,
}

/// Token buckets of every client seen recently.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    per_shard: usize,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    /// Shared by the clients the table has no room for.
    overflow: Mutex<Bucket>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let now = Instant::now();
        // A rate of zero would never refill; `RateLimit` of zero is "off" and never gets here.
        let rate = f64::from(limit.per_second.max(1));
        let burst = f64::from(limit.burst.max(1));
        Self {
            rate,
            burst,
            per_shard: limit.max_tracked.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        buckets: HashMap::new(),
                        swept: now,
                    })
                })
                .collect(),
            overflow: Mutex::new(Bucket::full(burst, now)),
        }
    }

    /// Charges one request to `client`: `Err` holds how long until it may send another.
    pub(crate) fn check(&self, client: &ClientKey) -> Result<(), Duration> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: &ClientKey, now: Instant) -> Result<(), Duration> {
        let index = (self.hasher.hash_one(client) as usize) % self.shards.len();
        let mut shard = lock(&self.shards[index]);
        if let Some(bucket) = shard.buckets.get_mut(client) {
            return bucket.take(now, self.rate, self.burst);
        }
        if shard.buckets.len() >= self.per_shard
            || now.saturating_duration_since(shard.swept) >= SWEEP_INTERVAL * 60
        {
            self.sweep(&mut shard, now);
        }
        if shard.buckets.len() < self.per_shard {
            let mut bucket = Bucket::full(self.burst, now);
            let taken = bucket.take(now, self.rate, self.burst);
            shard.buckets.insert(client.clone(), bucket);
            return taken;
        }
        drop(shard);
        lock(&self.overflow).take(now, self.rate, self.burst)
    }

    /// Whether `client` has a request left, without charging one: `Err` holds how long
    /// until it has. For work worth refusing before it is done (a token store call for a
    /// client that keeps failing), while only its outcome decides whether to charge.
    pub(crate) fn peek(&self, client: &ClientKey) -> Result<(), Duration> {
        self.peek_at(client, Instant::now())
    }

    fn peek_at(&self, client: &ClientKey, now: Instant) -> Result<(), Duration> {
        let index = (self.hasher.hash_one(client) as usize) % self.shards.len();
        let shard = lock(&self.shards[index]);
        let level = match shard.buckets.get(client) {
            Some(bucket) => bucket.level(now, self.rate, self.burst),
            // A newcomer gets a full bucket of its own if there is room (a sweep may make
            // some), else it would share the overflow bucket.
            None if shard.buckets.len() < self.per_shard => return Ok(()),
            None => {
                drop(shard);
                lock(&self.overflow).level(now, self.rate, self.burst)
            }
        };
        if level >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - level) / self.rate))
        }
    }

    /// Drops the buckets that have refilled completely (their clients have been idle long
    /// enough that forgetting them changes nothing), at most once per [`SWEEP_INTERVAL`].
    fn sweep(&self, shard: &mut Shard, now: Instant) {
        if now.saturating_duration_since(shard.swept) < SWEEP_INTERVAL {
            return;
        }
        shard.swept = now;
        let (rate, burst) = (self.rate, self.burst);
        shard
            .buckets
            .retain(|_, bucket| bucket.level(now, rate, burst) < burst);
    }

    /// How many clients have a bucket of their own.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.shards.iter().map(|s| lock(s).buckets.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: u32, burst: u32, max_tracked: usize) -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_second,
            burst,
            max_tracked,
        })
    }

    fn ip(n: u32) -> ClientKey {
        ClientKey::Address(std::net::Ipv4Addr::from(n).into())
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_for_a_refill() {
        let limiter = limiter(10, 3, 100);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check_at(&ip(1), now), Ok(()));
        }
        let wait = limiter.check_at(&ip(1), now).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another client is not affected.
        assert_eq!(limiter.check_at(&ip(2), now), Ok(()));
        // A tenth of a second later one token is back.
        let later = now + Duration::from_millis(100);
        assert_eq!(limiter.check_at(&ip(1), later), Ok(()));
        assert!(limiter.check_at(&ip(1), later).is_err());
    }

    #[test]
    fn peeking_tells_whether_a_request_is_left_without_taking_it() {
        let limiter = limiter(10, 2, 100);
        let now = Instant::now();
        assert_eq!(
            limiter.peek_at(&ip(1), now),
            Ok(()),
            "a newcomer has its burst"
        );
        assert_eq!(limiter.check_at(&ip(1), now), Ok(()));
        for _ in 0..10 {
            assert_eq!(
                limiter.peek_at(&ip(1), now),
                Ok(()),
                "peeking takes nothing"
            );
        }
        assert_eq!(limiter.check_at(&ip(1), now), Ok(()));
        let wait = limiter.peek_at(&ip(1), now).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        let later = now + Duration::from_millis(100);
        assert_eq!(limiter.peek_at(&ip(1), later), Ok(()));
    }

    #[test]
    fn a_hundred_thousand_distinct_clients_cannot_grow_the_table_past_its_cap() {
        let limiter = limiter(1, 1, 1000);
        let now = Instant::now();
        for n in 0..100_000 {
            let _ = limiter.check_at(&ip(n), now);
        }
        // Each shard holds at most its share, rounded up.
        assert!(limiter.tracked() <= 1000 + SHARDS, "{}", limiter.tracked());
    }

    #[test]
    fn clients_beyond_the_cap_share_one_bucket() {
        let limiter = limiter(1, 2, 1);
        let now = Instant::now();
        let mut allowed = 0;
        for n in 0..100 {
            if limiter.check_at(&ip(n), now).is_ok() {
                allowed += 1;
            }
        }
        // Each shard tracks one client, with its own burst of 2; everyone else shares the
        // overflow bucket's burst of 2.
        assert!(allowed <= SHARDS + 2, "{allowed} requests allowed");
    }

    #[test]
    fn idle_clients_are_forgotten_to_make_room_for_new_ones() {
        let limiter = limiter(10, 1, SHARDS);
        let now = Instant::now();
        for n in 0..1000 {
            let _ = limiter.check_at(&ip(n), now);
        }
        let full = limiter.tracked();
        assert!(full <= SHARDS, "{full}");
        // A second later every bucket has refilled: new clients replace the idle ones, and
        // get their own full bucket rather than the (drained) shared one.
        let later = now + Duration::from_secs(2);
        for n in 1000..1100 {
            let _ = limiter.check_at(&ip(n), later);
        }
        let replaced = (1000..1100)
            .filter(|n| {
                limiter
                    .shards
                    .iter()
                    .any(|s| lock(s).buckets.contains_key(&ip(*n)))
            })
            .count();
        assert!(replaced > 0);
        assert!(limiter.tracked() <= SHARDS);
    }
}
