//! Bounding the files a log holds open for appending. Each topic written holds two file
//! descriptors (its active file and its offset index) and a buffer; a log that wrote to
//! thousands of topics would otherwise keep them all. Past the configured number of open
//! topics, opening one more first gives back the files of the least recently produced-to
//! topic that is idle; it reopens on its next produce, without a scan when its file is as
//! it was left.

use std::sync::{
    atomic::{AtomicU32, Ordering},
    Arc, Mutex, Weak,
};

use crate::shared::{lock, TopicShared};

/// The topics of a log that hold their files open, and the clock their use is stamped by.
#[derive(Default)]
pub(crate) struct OpenLimit {
    /// Advanced by a produce to a topic that is not the latest used; wraps (ages are
    /// compared as wrapping differences).
    clock: AtomicU32,
    open: Mutex<Vec<Weak<TopicShared>>>,
}

impl OpenLimit {
    /// The stamp of a use now: the clock once advanced.
    pub(crate) fn tick(&self) -> u32 {
        self.clock.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    /// Stamps a topic's use (`last_use`) now. A topic that is the latest used already keeps
    /// its stamp: producers of a busy topic then only read the clock, rather than all
    /// writing the one counter from every thread. Two topics used at once may end up
    /// ordered either way, which costs the eviction nothing that matters.
    pub(crate) fn touch(&self, last_use: &AtomicU32) {
        let latest = self.clock.load(Ordering::Relaxed);
        let last = last_use.load(Ordering::Relaxed);
        // 0: never stamped (or a stamp from a wrapped clock, which may as well be renewed).
        if last == 0 || last != latest {
            last_use.store(self.tick(), Ordering::Relaxed);
        }
    }

    /// Records that `shared` opened its files; if more than `limit` topics now hold theirs,
    /// asks `give_back` to close the least recently used idle ones (it answers `false` for a
    /// topic that is busy).
    pub(crate) fn opened(
        &self,
        shared: &Arc<TopicShared>,
        limit: usize,
        give_back: fn(&TopicShared) -> bool,
    ) {
        let now = self.tick();
        shared.last_use.store(now, Ordering::Relaxed);
        let mut open = lock(&self.open);
        // Topics dropped or closed since hold nothing any more.
        open.retain(|weak| {
            weak.upgrade().is_some_and(|other| {
                Arc::ptr_eq(&other, shared)
                    || other
                        .appender
                        .try_lock()
                        .map_or(true, |slot| slot.is_open())
            })
        });
        if !open.iter().any(|weak| weak.as_ptr() == Arc::as_ptr(shared)) {
            open.push(Arc::downgrade(shared));
        }
        let limit = limit.max(1);
        if open.len() <= limit {
            return;
        }
        let mut by_age: Vec<(u32, usize)> = open
            .iter()
            .enumerate()
            .filter_map(|(i, weak)| {
                let other = weak.upgrade()?;
                let age = now.wrapping_sub(other.last_use.load(Ordering::Relaxed));
                (!Arc::ptr_eq(&other, shared)).then_some((age, i))
            })
            .collect();
        by_age.sort_unstable_by_key(|&(age, _)| std::cmp::Reverse(age));
        let mut excess = open.len() - limit;
        let mut closed = vec![false; open.len()];
        for (_, i) in by_age {
            if excess == 0 {
                break;
            }
            // A busy topic stays open: the bound is exceeded only while every open topic
            // is being written.
            if open[i].upgrade().is_some_and(|other| give_back(&other)) {
                closed[i] = true;
                excess -= 1;
            }
        }
        let mut i = 0;
        open.retain(|_| {
            i += 1;
            !closed[i - 1]
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(limit: &OpenLimit, last_use: &AtomicU32) -> u32 {
        limit
            .clock
            .load(Ordering::Relaxed)
            .wrapping_sub(last_use.load(Ordering::Relaxed))
    }

    #[test]
    fn touching_orders_topics_by_their_last_use_and_a_repeat_costs_no_tick() {
        let limit = OpenLimit::default();
        let (a, b) = (AtomicU32::new(0), AtomicU32::new(0));
        limit.touch(&a);
        limit.touch(&b);
        assert!(age(&limit, &a) > age(&limit, &b));
        limit.touch(&a);
        assert!(age(&limit, &a) < age(&limit, &b));
        // The latest used topic touched again keeps its stamp and the clock stands.
        let clock = limit.clock.load(Ordering::Relaxed);
        limit.touch(&a);
        limit.touch(&a);
        assert_eq!(limit.clock.load(Ordering::Relaxed), clock);
        assert!(age(&limit, &a) < age(&limit, &b));
    }
}
