//! A reader-sharded lock ("big reader lock"): each thread reads through its
//! own cache-padded shard, so concurrent readers never write a shared cache
//! line; a writer takes every shard. For data read on every call (open
//! devices, range records) and written rarely (open/close, placements).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub const SHARDS: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

static NEXT: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// This thread's shard index (stable for the thread's life).
pub fn shard() -> usize {
    SHARD.with(|s| *s)
}

pub struct BrLock<T> {
    shards: [Padded<RwLock<()>>; SHARDS],
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is guarded like an RwLock's: shared through any
// shard's read lock, exclusive only with every shard's write lock.
unsafe impl<T: Send> Send for BrLock<T> {}
// SAFETY: as above: readers share `&T` (hence Sync), a writer holds every
// shard and so excludes them (hence Send).
unsafe impl<T: Send + Sync> Sync for BrLock<T> {}

pub struct ReadGuard<'a, T> {
    _g: RwLockReadGuard<'a, ()>,
    data: &'a T,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data
    }
}

pub struct WriteGuard<'a, T> {
    _g: Vec<RwLockWriteGuard<'a, ()>>,
    data: &'a mut T,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data
    }
}

impl<T> BrLock<T> {
    pub fn new(v: T) -> Self {
        BrLock { shards: Default::default(), data: UnsafeCell::new(v) }
    }

    pub fn read(&self) -> ReadGuard<'_, T> {
        let g = self.shards[shard()].0.read();
        // SAFETY: a shard's read lock excludes writers (who hold all shards).
        ReadGuard { _g: g, data: unsafe { &*self.data.get() } }
    }

    /// A read where no writer holds this thread's shard, else None (a
    /// forked child's look, where a writer may be gone for ever).
    pub fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        let g = self.shards[shard()].0.try_read()?;
        // SAFETY: as `read`: a shard's read lock excludes writers.
        Some(ReadGuard { _g: g, data: unsafe { &*self.data.get() } })
    }

    pub fn write(&self) -> WriteGuard<'_, T> {
        // Always in index order, so writers cannot deadlock each other.
        let g: Vec<_> = self.shards.iter().map(|s| s.0.write()).collect();
        // SAFETY: every shard is write-locked: no reader or writer remains.
        WriteGuard { _g: g, data: unsafe { &mut *self.data.get() } }
    }
}

impl<T: Default> Default for BrLock<T> {
    fn default() -> Self {
        BrLock::new(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn readers_and_writers_from_many_threads() {
        let l = Arc::new(BrLock::new(0u64));
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if i % 2 == 0 {
                            *l.write() += 1;
                        } else {
                            let v = *l.read();
                            assert!(v <= 8000);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*l.read(), 8000);
    }
}
