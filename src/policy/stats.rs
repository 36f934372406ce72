//! Statistics of a context: relaxed atomic counters, readable at any time.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::errno::Errno;

macro_rules! stats {
    ($($(#[$m:meta])* $name:ident,)*) => {
        #[derive(Default)]
        pub struct Stats { $(pub(crate) $name: AtomicU64,)* }

        /// A snapshot of a context's statistics.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct StatsSnapshot { $($(#[$m])* pub $name: u64,)* }

        impl Stats {
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

stats! {
    resolve_calls,
    alloc_calls,
    evict_calls,
    /// alloc_vram calls answered by the cheap check (zero ioctls).
    in_place,
    /// Ioctls issued by the library (all kinds).
    ioctls,
    madvise,
    prefetch,
    /// alloc_vram calls that moved data.
    migrations,
    bytes_moved,
    /// All retries (EBUSY, ENOMEM/ENOSPC, EINTR/EAGAIN, unverified prefetch).
    retries,
    retries_ebusy,
    retries_enomem,
    retries_eintr,
    errors_enolink,
    errors_enodev,
    errors_other,
    /// Prefetches that reported success but left the range elsewhere.
    unverified,
    fallbacks,
    pins,
    /// Ranges the library evicted to make room (ENOMEM/ENOSPC).
    lru_evictions,
    /// svm_evict calls that moved data.
    evictions,
}

impl Stats {
    pub(crate) fn count_errno(&self, e: Errno) {
        let c = match e {
            Errno::EBUSY => &self.retries_ebusy,
            Errno::ENOMEM | Errno::ENOSPC => &self.retries_enomem,
            Errno::EINTR | Errno::EAGAIN => &self.retries_eintr,
            Errno::ENOLINK => &self.errors_enolink,
            Errno::ENODEV | Errno::ECANCELED => &self.errors_enodev,
            _ => &self.errors_other,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}
