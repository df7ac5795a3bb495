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
    /// Every producer of the batch was woken once it was written, by the writer or by the
    /// first producer to learn it (see [`Batch::complete_relayed`]).
    relayed: AtomicBool,
    /// The leadership was let go with this batch pending: one of its producers is to take
    /// it. Kept (not only notified), so that a producer that starts waiting after the
    /// notification still sees it; until then a waiting producer needs no lock.
    electing: AtomicBool,
}

impl Batch {
    /// How writing the batch ended, once it has. A producer that learns it wakes the
    /// others if they are not woken yet (see [`Batch::complete_relayed`]).
    pub(super) fn outcome(&self) -> Option<Result<(), ProduceError>> {
        let outcome = self.outcome.get()?;
        self.relay();
        Some(outcome.clone())
    }

    /// Records how writing the batch ended and wakes its producers, as a writer running on
    /// their executor does: each woken producer can run on any free thread at once.
    pub(super) fn complete(&self, outcome: Result<(), ProduceError>) {
        let _ = self.outcome.set(outcome);
        self.relayed.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Records how writing the batch ended and wakes one of its producers, which wakes the
    /// others as it learns the outcome ([`Batch::relay`]); for the syncer, a thread outside
    /// the producers' executor. Waking each producer from there costs the executor's
    /// cross-thread path for every one of them (a quarter of the time between two syncs
    /// with 64 producers), while the producer woken first wakes the others from within the
    /// executor, where a wake is cheap. (A writer on the executor wakes them all itself:
    /// a relay there could wait behind the writer's own task, where no other thread can
    /// take it.)
    pub(super) fn complete_relayed(&self, outcome: Result<(), ProduceError>) {
        let _ = self.outcome.set(outcome);
        self.notify.notify_one();
    }

    /// Once the batch is written, wakes every producer waiting on it unless that was done
    /// (the first caller does). Every producer that stops waiting on a written batch calls
    /// it, even when its wait is cancelled, so that the one wake of
    /// [`Batch::complete_relayed`] is never lost with it.
    pub(super) fn relay(&self) {
        if self.outcome.get().is_some()
            && !self.relayed.load(Ordering::Acquire)
            && !self.relayed.swap(true, Ordering::AcqRel)
        {
            self.notify.notify_waiters();
        }
    }

    /// Wakes the batch's producers so that one of them writes it.
    pub(super) fn elect(&self) {
        self.electing.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// A guard that calls [`Batch::relay`] when the wait it lives in ends, however it ends.
    pub(super) fn relay_on_drop(&self) -> RelayOnDrop<'_> {
        RelayOnDrop(self)
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

/// See [`Batch::relay_on_drop`].
pub(super) struct RelayOnDrop<'a>(&'a Batch);

impl Drop for RelayOnDrop<'_> {
    fn drop(&mut self) {
        self.0.relay();
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

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        pin::{pin, Pin},
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        task::{Context, Poll, Wake, Waker},
    };

    use super::Batch;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A producer's wait on its batch, as the appender waits (listen, look, sleep).
    async fn wait_for(batch: &Batch) {
        let _relay = batch.relay_on_drop();
        loop {
            let mut notified = pin!(batch.notify.notified());
            notified.as_mut().enable();
            if batch.outcome().is_some() {
                return;
            }
            notified.await;
        }
    }

    struct Producer<'a> {
        wait: Option<Pin<Box<dyn Future<Output = ()> + 'a>>>,
        wakes: Arc<Wakes>,
    }

    impl Producer<'_> {
        fn poll(&mut self) -> Poll<()> {
            let waker = Waker::from(self.wakes.clone());
            let wait = self.wait.as_mut().expect("not cancelled");
            wait.as_mut().poll(&mut Context::from_waker(&waker))
        }

        fn woken(&self) -> usize {
            self.wakes.0.load(Ordering::SeqCst)
        }
    }

    /// Three producers waiting on `batch`.
    fn waiting(batch: &Batch) -> Vec<Producer<'_>> {
        let mut producers: Vec<Producer> = (0..3)
            .map(|_| Producer {
                wait: Some(Box::pin(wait_for(batch))),
                wakes: Arc::default(),
            })
            .collect();
        for producer in &mut producers {
            assert!(producer.poll().is_pending());
        }
        producers
    }

    #[test]
    fn the_producer_woken_first_wakes_the_others_even_if_its_wait_is_cancelled() {
        for cancel_first in [false, true] {
            let batch = Batch::default();
            let mut producers = waiting(&batch);

            batch.complete_relayed(Ok(()));
            // The writer wakes one producer, whichever.
            let first = (0..3).find(|&i| producers[i].woken() > 0).expect("a wake");
            assert_eq!(producers.iter().map(Producer::woken).sum::<usize>(), 1);

            if cancel_first {
                producers[first].wait = None;
            } else {
                assert!(producers[first].poll().is_ready());
            }
            for (i, producer) in producers.iter_mut().enumerate() {
                if i != first {
                    assert_eq!(producer.woken(), 1, "producer {i} was not woken");
                    assert!(producer.poll().is_ready());
                }
            }
        }
    }

    #[test]
    fn a_batch_written_on_the_producers_executor_wakes_them_all_at_once() {
        let batch = Batch::default();
        let mut producers = waiting(&batch);
        batch.complete(Ok(()));
        for producer in &mut producers {
            assert_eq!(producer.woken(), 1);
        }
        // Learning the outcome wakes nobody again.
        for producer in &mut producers {
            assert!(producer.poll().is_ready());
        }
        assert!(producers.iter().all(|p| p.woken() == 1));
    }
}
