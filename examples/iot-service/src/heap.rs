//! The heap the service holds, for measuring its footprint on a device: with the feature
//! `heap-stats`, the service's global allocator is [`Counting`], which counts the bytes the
//! system allocator has handed out and not taken back, and the most it ever had out at once.
//! `GET /api/heap` answers both (see `http_server`), so a bench reads them the same way
//! from a native build and from one run under an emulator, where the process's resident
//! size is the emulator's.
//!
//! Counting costs two relaxed atomic operations per allocation; the counters are `usize`,
//! which every target has atomics for (MIPS32 has none of 64 bits).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
};

use serde::Serialize;

/// Bytes allocated and not yet freed.
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// The most `CURRENT` has been.
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting.
pub struct Counting;

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is passed on to `System` unchanged; only the counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are `System`'s.
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() {
            grew(layout.size());
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let block = unsafe { System.alloc_zeroed(layout) };
        if !block.is_null() {
            grew(layout.size());
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(block, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's to keep valid.
        let moved = unsafe { System.realloc(block, layout, new_size) };
        if !moved.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        moved
    }
}

/// What the heap holds now and the most it has held, in bytes.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct HeapStats {
    /// Bytes allocated and not yet freed.
    pub current_bytes: usize,
    /// The most bytes allocated at once since the service started.
    pub peak_bytes: usize,
}

/// The counters as they stand.
pub fn stats() -> HeapStats {
    HeapStats {
        current_bytes: CURRENT.load(Ordering::Relaxed),
        peak_bytes: PEAK.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        feature = "heap-stats",
        ignore = "with `Counting` as the global allocator, other tests move the counters"
    )]
    fn counting_follows_allocations_grown_shrunk_and_freed() {
        // The test binary's own allocator is not `Counting`: drive one directly, so that
        // other tests' allocations do not move the counters under it.
        let before = stats();
        let layout = Layout::from_size_align(4096, 8).unwrap();
        // SAFETY: a non-zero layout; each block is freed with the layout it has.
        unsafe {
            let block = Counting.alloc(layout);
            assert!(!block.is_null());
            assert_eq!(stats().current_bytes, before.current_bytes + 4096);
            let block = Counting.realloc(block, layout, 8192);
            assert_eq!(stats().current_bytes, before.current_bytes + 8192);
            let grown = Layout::from_size_align(8192, 8).unwrap();
            let block = Counting.realloc(block, grown, 1024);
            assert_eq!(stats().current_bytes, before.current_bytes + 1024);
            Counting.dealloc(block, Layout::from_size_align(1024, 8).unwrap());
        }
        let after = stats();
        assert_eq!(after.current_bytes, before.current_bytes);
        assert!(after.peak_bytes >= before.current_bytes + 8192);
    }
}
