//! Range locks: how placement calls that issue ioctls are serialized. Calls
//! on overlapping spans take turns, so a range is never migrated by two
//! calls at once and overlapping placements end where the last one put
//! them; calls on disjoint spans run at the same time, each with its own
//! ioctls (the kernel orders what it must per VM itself). Closing a device
//! holds the whole address space.

use parking_lot::{Condvar, Mutex};

pub(super) struct RangeLocks {
    /// Spans held now: one per call in flight, so a short list.
    held: Mutex<Vec<(u64, u64)>>,
    released: Condvar,
}

/// A held span; released when dropped.
pub(super) struct RangeGuard<'a> {
    locks: &'a RangeLocks,
    span: (u64, u64),
}

impl RangeLocks {
    pub fn new() -> Self {
        RangeLocks { held: Mutex::new(Vec::new()), released: Condvar::new() }
    }

    /// Waits until no held span overlaps [start, end), then holds it.
    pub fn lock(&self, start: u64, end: u64) -> RangeGuard<'_> {
        let mut held = self.held.lock();
        while held.iter().any(|&(s, e)| s < end && start < e) {
            self.released.wait(&mut held);
        }
        held.push((start, end));
        RangeGuard { locks: self, span: (start, end) }
    }

    /// Holds [start, end) only if nothing overlapping is held now. For
    /// ranges a call touches besides its own (LRU victims): waiting there
    /// could deadlock two calls evicting each other's ranges.
    pub fn try_lock(&self, start: u64, end: u64) -> Option<RangeGuard<'_>> {
        let mut held = self.held.lock();
        if held.iter().any(|&(s, e)| s < end && start < e) {
            return None;
        }
        held.push((start, end));
        Some(RangeGuard { locks: self, span: (start, end) })
    }

    /// Spans held now (tests).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held.lock().len()
    }
}

impl Drop for RangeGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock();
        // Held spans never overlap, so a span is held at most once.
        if let Some(i) = held.iter().position(|&s| s == self.span) {
            held.swap_remove(i);
        }
        drop(held);
        self.locks.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Barrier;

    #[test]
    fn overlapping_spans_wait_disjoint_ones_do_not() {
        let l = RangeLocks::new();
        let a = l.lock(0, 10);
        assert!(l.try_lock(9, 20).is_none(), "overlaps [0, 10)");
        let b = l.try_lock(10, 20).expect("disjoint (ends are exclusive)");
        assert_eq!(l.held(), 2);
        drop(a);
        assert!(l.try_lock(0, 5).is_some());
        drop(b);
        assert_eq!(l.held(), 0);
    }

    /// Threads locking one span are inside it one at a time; threads on
    /// disjoint spans are inside at once.
    #[test]
    fn mutual_exclusion_and_parallelism() {
        let l = RangeLocks::new();
        let inside = AtomicU32::new(0);
        let most = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let _g = l.lock(100, 200);
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1, "two threads inside one span");

        let barrier = Barrier::new(4);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (l, barrier) = (&l, &barrier);
                s.spawn(move || {
                    let _g = l.lock(t * 10, t * 10 + 10);
                    barrier.wait(); // all four hold their spans at once, or this never returns
                });
            }
        });
        assert_eq!(l.held(), 0);
    }
}
