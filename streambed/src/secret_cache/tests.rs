use std::{
    pin::Pin,
    sync::atomic::{AtomicUsize, Ordering},
    task::Poll,
};

use super::*;

/// A load that counts its calls and answers `value` at once, kept for `ttl`.
fn counting_load(
    loads: &Arc<AtomicUsize>,
    value: u32,
    ttl: Duration,
) -> impl Fn() -> std::future::Ready<Loaded<u32>> + Clone {
    let loads = Arc::clone(loads);
    move || {
        loads.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Loaded::keep_for(value, ttl))
    }
}

/// What a gated load's future is.
type GatedLoad = Pin<Box<dyn Future<Output = Loaded<u32>> + Send>>;

/// A load that answers `value`, kept for a minute, once the returned sender sends true.
fn gated_load(value: u32) -> (watch::Sender<bool>, impl Fn() -> GatedLoad + Clone) {
    let (release, released) = watch::channel(false);
    let load = move || -> GatedLoad {
        let mut released = released.clone();
        Box::pin(async move {
            let _ = released.wait_for(|r| *r).await;
            Loaded::keep_for(value, Duration::from_secs(60))
        })
    };
    (release, load)
}

/// Polls a future once, leaving it pending or done.
async fn poll_once<F: Future + ?Sized>(mut future: Pin<&mut F>) {
    std::future::poll_fn(|cx| {
        let _ = future.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await
}

/// Lets spawned tasks run until `done` holds (on a current-thread runtime every spawned
/// task is polled between two yields).
async fn yield_until(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition never held");
}

#[tokio::test(start_paused = true)]
async fn a_fresh_value_is_served_without_loading_until_it_expires() {
    let cache = Arc::new(SecretCache::new(10));
    let loads = Arc::new(AtomicUsize::new(0));
    let load = counting_load(&loads, 7, Duration::from_secs(60));
    assert_eq!(cache.get_or_load("k", &load).await, Ok(7));
    assert_eq!(cache.get_or_load("k", &load).await, Ok(7));
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(cache.get_or_load("k", &load).await, Ok(7));
    assert_eq!(loads.load(Ordering::SeqCst), 1, "within its 60 s");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(cache.get_or_load("k", &load).await, Ok(7));
    assert_eq!(loads.load(Ordering::SeqCst), 2, "past its 60 s");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_counted_from_the_start_of_the_load_is_kept() {
    let cache = Arc::new(SecretCache::new(10));
    let started = Instant::now();
    let load = move || async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Loaded::keep_until(1u32, started + Duration::from_secs(30))
    };
    cache.get_or_load("k", load).await.unwrap();
    tokio::time::advance(Duration::from_secs(19)).await;
    cache.get_or_load("k", load).await.unwrap();
    assert_eq!(cache.stats().loads, 1, "29 s after the start");
    tokio::time::advance(Duration::from_secs(2)).await;
    cache.get_or_load("k", load).await.unwrap();
    assert_eq!(cache.stats().loads, 2, "31 s after the start");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_passed_by_the_end_of_the_load_is_not_cached() {
    let cache = Arc::new(SecretCache::new(10));
    let started = Instant::now();
    let load = move || async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Loaded::keep_until(1u32, started + Duration::from_secs(5))
    };
    assert_eq!(cache.get_or_load("k", load).await, Ok(1));
    assert!(cache.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_zero_ttl_or_an_uncached_answer_is_not_kept() {
    let cache = Arc::new(SecretCache::new(10));
    let loads = Arc::new(AtomicUsize::new(0));
    let load = counting_load(&loads, 1, Duration::ZERO);
    cache.get_or_load("k", &load).await.unwrap();
    cache.get_or_load("k", &load).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    assert_eq!(
        cache
            .get_or_load("u", || async { Loaded::uncached(3) })
            .await,
        Ok(3)
    );
    assert_eq!(cache.len(), 0);
}

#[tokio::test]
async fn failures_are_cached_like_any_value() {
    let cache: Arc<SecretCache<Result<u32, String>>> = Arc::new(SecretCache::new(10));
    let denied = || async { Loaded::keep_for(Err("denied".to_string()), Duration::from_secs(60)) };
    assert_eq!(
        cache.get_or_load("k", denied).await,
        Ok(Err("denied".into()))
    );
    let granted = || async { Loaded::keep_for(Ok(1), Duration::from_secs(60)) };
    assert_eq!(
        cache.get_or_load("k", granted).await,
        Ok(Err("denied".into())),
        "the refusal is remembered"
    );
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test]
async fn concurrent_misses_share_one_load() {
    let cache = Arc::new(SecretCache::new(10));
    let loads = Arc::new(AtomicUsize::new(0));
    let (release, gated) = gated_load(5);
    let load = {
        let loads = Arc::clone(&loads);
        move || {
            loads.fetch_add(1, Ordering::SeqCst);
            gated()
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
        assert_eq!(waiter.await.unwrap(), Ok(5));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!((stats.loads, stats.hits, stats.entries), (1, 0, 1));
}

#[tokio::test]
async fn a_cancelled_caller_neither_cancels_the_load_nor_causes_a_second() {
    let cache = Arc::new(SecretCache::new(10));
    let (release, load) = gated_load(9);
    let mut first = Box::pin(cache.get_or_load("k", &load));
    poll_once(first.as_mut()).await;
    let mut second = Box::pin(cache.get_or_load("k", &load));
    poll_once(second.as_mut()).await;
    drop(first); // the caller that started the load gives up
    release.send_replace(true);
    assert_eq!(second.await, Ok(9));
    assert_eq!(cache.stats().loads, 1);
}

#[tokio::test]
async fn a_load_whose_callers_all_gave_up_is_still_cached() {
    let cache = Arc::new(SecretCache::new(10));
    let (release, load) = gated_load(4);
    let mut caller = Box::pin(cache.get_or_load("k", &load));
    poll_once(caller.as_mut()).await;
    drop(caller);
    release.send_replace(true);
    yield_until(|| cache.len() == 1).await;
    assert_eq!(cache.get_or_load("k", &load).await, Ok(4));
    let stats = cache.stats();
    assert_eq!((stats.loads, stats.hits), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn the_least_recently_used_entry_is_evicted_at_capacity() {
    let cache = Arc::new(SecretCache::new(2));
    let loads = Arc::new(AtomicUsize::new(0));
    let load = counting_load(&loads, 0, Duration::from_secs(60));
    cache.get_or_load("a", &load).await.unwrap();
    cache.get_or_load("b", &load).await.unwrap();
    cache.get_or_load("a", &load).await.unwrap(); // "b" is now the least recently used
    cache.get_or_load("c", &load).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 3);
    cache.get_or_load("a", &load).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 3, "a stayed");
    cache.get_or_load("b", &load).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 4, "b was evicted");
    assert_eq!(cache.len(), 2);
}

#[tokio::test]
async fn a_capacity_of_zero_caches_nothing_but_still_shares_loads() {
    let cache = Arc::new(SecretCache::new(0));
    let (release, load) = gated_load(2);
    let mut first = Box::pin(cache.get_or_load("k", &load));
    poll_once(first.as_mut()).await;
    let mut second = Box::pin(cache.get_or_load("k", &load));
    poll_once(second.as_mut()).await;
    release.send_replace(true);
    assert_eq!((first.await, second.await), (Ok(2), Ok(2)));
    assert_eq!(cache.stats().loads, 1);
    cache.get_or_load("k", &load).await.unwrap();
    assert_eq!(cache.stats().loads, 2);
    assert!(cache.is_empty());
}

#[tokio::test(start_paused = true)]
async fn invalidate_and_clear_force_a_new_load() {
    let cache = Arc::new(SecretCache::new(10));
    let loads = Arc::new(AtomicUsize::new(0));
    let load = counting_load(&loads, 0, Duration::from_secs(60));
    cache.get_or_load("a", &load).await.unwrap();
    cache.get_or_load("b", &load).await.unwrap();
    cache.invalidate("a");
    assert_eq!(cache.len(), 1);
    cache.get_or_load("a", &load).await.unwrap();
    cache.clear();
    assert!(cache.is_empty());
    cache.get_or_load("a", &load).await.unwrap();
    cache.get_or_load("b", &load).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_load_invalidated_while_under_way_is_not_kept_and_a_later_read_sees_the_write() {
    let cache = Arc::new(SecretCache::new(10));
    let (release_old, old) = gated_load(1);
    let mut before_write = Box::pin(cache.get_or_load("a", &old));
    poll_once(before_write.as_mut()).await;

    cache.invalidate("a"); // a write of "a" happened
    let (release_new, new) = gated_load(2);
    let mut after_write = Box::pin(cache.get_or_load("a", &new));
    poll_once(after_write.as_mut()).await;
    assert_eq!(
        cache.stats().loads,
        2,
        "the read after the write did not join the old load"
    );

    // The old load ends last but must not replace the new answer.
    release_new.send_replace(true);
    assert_eq!(after_write.await, Ok(2));
    release_old.send_replace(true);
    assert_eq!(
        before_write.await,
        Ok(1),
        "its own callers still get the old answer"
    );
    assert_eq!(cache.get_or_load("a", &old).await, Ok(2));
    assert_eq!(cache.stats().loads, 2);
}

#[tokio::test]
async fn a_cleared_load_under_way_is_not_kept() {
    let cache = Arc::new(SecretCache::new(10));
    let (release, load) = gated_load(1);
    let mut caller = Box::pin(cache.get_or_load("a", &load));
    poll_once(caller.as_mut()).await;
    cache.clear();
    release.send_replace(true);
    assert_eq!(caller.await, Ok(1));
    assert_eq!(cache.len(), 0);
}

#[tokio::test]
async fn a_panicking_load_abandons_its_waiters_and_the_next_read_loads_again() {
    let cache = Arc::new(SecretCache::new(10));
    let panics = || async {
        if true {
            panic!("the load failed badly");
        }
        Loaded::uncached(0u32)
    };
    assert_eq!(cache.get_or_load("k", panics).await, Err(LoadAbandoned));
    let works = || async { Loaded::keep_for(1u32, Duration::from_secs(60)) };
    assert_eq!(cache.get_or_load("k", works).await, Ok(1));
    assert_eq!(cache.stats().loads, 2);
}

#[test]
fn a_load_dropped_with_its_runtime_abandons_its_waiters_and_is_withdrawn() {
    let cache = Arc::new(SecretCache::new(10));
    let never = || std::future::pending::<Loaded<u32>>();
    let doomed = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut waiter = Box::pin(cache.get_or_load("k", never));
    doomed.block_on(poll_once(waiter.as_mut())); // starts the load on `doomed`
    drop(doomed); // drops the load task

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(waiter.as_mut().await, Err(LoadAbandoned));
        let works = || async { Loaded::keep_for(3u32, Duration::from_secs(60)) };
        assert_eq!(cache.get_or_load("k", works).await, Ok(3));
        assert_eq!(cache.stats().loads, 2);
    });
}

#[tokio::test]
async fn stats_count_hits_loads_and_entries() {
    let cache = Arc::new(SecretCache::new(10));
    let load = || async { Loaded::keep_for(1u32, Duration::from_secs(60)) };
    for key in ["a", "b", "a", "a"] {
        cache.get_or_load(key, load).await.unwrap();
    }
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 2,
            loads: 2,
            entries: 2
        }
    );
    assert!(format!("{cache:?}").contains("entries: 2"));
}
