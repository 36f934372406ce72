//! Which process this is, as `fork` changes it. A child inherits the
//! parent's memory (contexts, records) and its open files, but not its
//! page table: `/proc/self/pagemap` opened in the parent still reads the
//! parent's, and the DRM files (with their VMs) are shared with the parent.
//! The library counts forks with a `pthread_atfork` child handler, so that
//! checking costs a load, not a `getpid` syscall on the decision path.
//! (A child made with a raw `clone` or `vfork` runs no atfork handler.)

use std::sync::atomic::{AtomicU32, Ordering};
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
