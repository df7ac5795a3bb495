//! The tokio runtimes that tests and benches build by hand, outside `#[tokio::test]`: a
//! program with its own `main` (a bench, a test that forks itself) and a bench that
//! compares runtimes. One spelling keeps them all alike.

use tokio::runtime::{Builder, Runtime};

/// A runtime with two worker threads, I/O and timers: a service on a small two-core router.
/// Panics when the threads cannot be started.
///
/// ```
/// let runtime = streambed_test::runtime::two_workers();
/// assert_eq!(runtime.block_on(async { tokio::spawn(async { 7 }).await.unwrap() }), 7);
/// ```
pub fn two_workers() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a two-worker runtime")
}

/// A runtime on the calling thread, with I/O and timers. Panics when it cannot be built.
///
/// ```
/// let runtime = streambed_test::runtime::current_thread();
/// assert_eq!(runtime.block_on(async { 7 }), 7);
/// ```
pub fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}
