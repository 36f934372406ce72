//! Which process this is, as `fork` changes it. A child inherits the
//! parent's memory (contexts, records) and its open files, but not its
//! page table: `/proc/self/pagemap` opened in the parent still reads the
//! parent's, and the DRM files (with their VMs) are shared with the parent.
//! The library counts forks with a `pthread_atfork` child handler, so that
//! checking costs a load, not a `getpid` syscall on the decision path.
//! (A child made with a raw `clone` or `vfork` runs no atfork handler.)

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Once;

static FORKS: AtomicU32 = AtomicU32::new(0);
static HOOK: Once = Once::new();

extern "C" fn in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// How many forks lie between this process and the one the library was
/// first used in: a value that differs from one taken earlier means this
/// is a child of the process that took it.
pub fn generation() -> u32 {
    HOOK.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic (async-signal-safe).
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
    FORKS.load(Ordering::Relaxed)
}

/// A value each process has its own of: a forked child makes a fresh one
/// on first use, from the parent's where `make` can read it, since a
/// parent thread may have held the parent's lock at fork, for ever in the
/// child. Never freed (a late reader may hold it; a fence word must stay
/// live); the parent's stays reachable from the child's.
pub struct PerProcess<T: 'static> {
    current: AtomicPtr<Node<T>>,
}

struct Node<T> {
    process: u32,
    value: T,
    _parent: *const Node<T>,
}

impl<T: Sync + 'static> PerProcess<T> {
    /// None made yet.
    pub const fn new() -> Self {
        PerProcess { current: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// This process's value; `make` is given the parent's (None in the
    /// first process) when this one has none yet.
    pub fn get(&'static self, make: impl Fn(Option<&T>) -> T) -> &'static T {
        let here = generation();
        loop {
            let p = self.current.load(Ordering::Acquire);
            // SAFETY: nodes are leaked, never freed.
            let node = unsafe { p.as_ref() };
            if let Some(n) = node.filter(|n| n.process == here) {
                return &n.value;
            }
            let new = Box::into_raw(Box::new(Node { process: here, value: make(node.map(|n| &n.value)), _parent: p }));
            if self.current.compare_exchange(p, new, Ordering::AcqRel, Ordering::Acquire).is_err() {
                // SAFETY: made just above, never shared.
                drop(unsafe { Box::from_raw(new) });
            }
        }
    }
}

impl<T: Sync + 'static> Default for PerProcess<T> {
    fn default() -> Self {
        Self::new()
    }
}
