//! What a producer waiting for another to write its record waits on: the batch its record
//! was appended to. Built only from runtime-agnostic parts (`tokio::sync::Notify` needs no
//! tokio runtime), so that `produce` can be awaited from any executor.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        OnceLock,
    },
    task::{Context, Poll},
};

use tokio::sync::Notify;

use crate::error::ProduceError;

/// Records appended while another batch was being written, written together. Created only
/// when a producer has to wait for it: a producer that writes its own record never needs
/// one, so an uncontended `produce` allocates nothing for it.
#[derive(Default)]
pub(crate) struct Batch {
    outcome: OnceLock<Result<(), ProduceError>>,
    /// Woken when the batch is written (or failed) and when its producers must elect one
    /// of them to write it.
    pub(super) notify: Notify,
    /// The leadership was let go with this batch pending: one of its producers is to take
    /// it. Kept (not only notified), so that a producer that starts waiting after the
    /// notification still sees it; until then a waiting producer needs no lock.
    electing: AtomicBool,
}

impl Batch {
    /// How writing the batch ended, once it has.
    pub(super) fn outcome(&self) -> Option<Result<(), ProduceError>> {
        self.outcome.get().cloned()
    }

    /// Records how writing the batch ended and wakes its producers.
    pub(super) fn complete(&self, outcome: Result<(), ProduceError>) {
        let _ = self.outcome.set(outcome);
        self.notify.notify_waiters();
    }

    /// Wakes the batch's producers so that one of them writes it.
    pub(super) fn elect(&self) {
        self.electing.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Whether the batch's producers are to elect one of them to write it.
    pub(super) fn electing(&self) -> bool {
        self.electing.load(Ordering::Acquire)
    }

    /// A producer took the leadership (under the appender lock).
    pub(super) fn elected(&self) {
        self.electing.store(false, Ordering::Relaxed);
    }
}

/// Returns `Pending` once, so that other tasks ready on the same executor run first, on
/// any executor (tokio's `yield_now` is tied to tokio's).
#[derive(Default)]
pub(super) struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
