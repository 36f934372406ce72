//! Statistics of a context: relaxed atomic counters in per-thread shards
//! (so counting on the hot path writes no shared cache line), summed when read.

use std::sync::atomic::{AtomicU64, Ordering};

use super::brlock::{shard, SHARDS};
use crate::errno::Errno;

macro_rules! stats {
    ($($(#[$m:meta])* $name:ident,)*) => {
        #[derive(Default)]
        #[repr(align(128))]
        pub struct Shard { $(pub(crate) $name: AtomicU64,)* }

        /// A snapshot of a context's statistics.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct StatsSnapshot { $($(#[$m])* pub $name: u64,)* }

        /// A context's statistics, sharded by thread so that counting
        /// never bounces one cache line between cores.
        pub struct Stats { shards: Box<[Shard]> }

        impl Default for Stats {
            fn default() -> Self {
                Stats { shards: (0..SHARDS).map(|_| Shard::default()).collect() }
            }
        }

        impl Stats {
            /// The counters summed over every shard.
            pub fn snapshot(&self) -> StatsSnapshot {
                let mut s = StatsSnapshot::default();
                for sh in self.shards.iter() {
                    $(s.$name += sh.$name.load(Ordering::Relaxed);)*
                }
                s
            }
        }
    };
}

stats! {
    /// resolve calls.
    resolve_calls,
    /// alloc_vram calls.
    alloc_calls,
    /// evict calls.
    evict_calls,
    /// alloc_vram calls answered by the cheap check (zero ioctls).
    in_place,
    /// Ioctls issued by the library (all kinds).
    ioctls,
    /// MADVISE ioctls issued.
    madvise,
    /// PREFETCH binds issued.
    prefetch,
    /// alloc_vram calls that moved data.
    migrations,
    /// Bytes placements moved.
    bytes_moved,
    /// All retries (EBUSY, ENOMEM/ENOSPC, EINTR/EAGAIN, unverified prefetch).
    retries,
    /// Retries after EBUSY.
    retries_ebusy,
    /// Retries after ENOMEM or ENOSPC.
    retries_enomem,
    /// EINTR/EAGAIN restarts.
    retries_eintr,
    /// ENOLINK answers.
    errors_enolink,
    /// ENODEV/ECANCELED answers.
    errors_enodev,
    /// Other errnos.
    errors_other,
    /// Prefetches that reported success but left the range elsewhere.
    unverified,
    /// Placements that fell back.
    fallbacks,
    /// Placements the thrash guard pinned.
    pins,
    /// Ranges the library evicted to make room (ENOMEM/ENOSPC).
    lru_evictions,
    /// svm_evict calls that moved data.
    evictions,
    /// Page-table reads (one syscall each: PAGEMAP_SCAN or pread).
    observe_reads,
    /// Checks answered without reading: a fresh observation, or a range settled in system memory.
    observe_fresh,
    /// Page-table reads that failed (the engine then believes its records).
    observe_errors,
    /// Successful engine placements (SVM_ALLOC_ENGINE) by the strategy
    /// that ran (policy/choose.rs): left to the launch's faults (the
    /// faults' strategy, or the runtime's prefetch the library left to
    /// them: devices take turns at the span, no room).
    engine_faults,
    /// Prefetched as the runtime would, or found in place by that strategy.
    engine_prefetch,
    /// Decided by the rule cascade: served in place, held, born split,
    /// moved, or left to the fault by its rule 6.
    engine_cascade,
    /// Never-populated pages given the zero page before the faults first
    /// bind a span (madvise MADV_POPULATE_READ, `Context::populate_edges`).
    populated_pages,
}

impl Stats {
    /// This thread's shard.
    pub(crate) fn local(&self) -> &Shard {
        &self.shards[shard()]
    }

    pub(crate) fn count_errno(&self, e: Errno) {
        self.count_errnos(e, 1);
    }

    /// Counts `n` occurrences of `e` (no write when `n` is 0).
    pub(crate) fn count_errnos(&self, e: Errno, n: u32) {
        if n == 0 {
            return;
        }
        let s = self.local();
        let c = match e {
            Errno::EBUSY => &s.retries_ebusy,
            Errno::ENOMEM | Errno::ENOSPC => &s.retries_enomem,
            Errno::EINTR | Errno::EAGAIN => &s.retries_eintr,
            Errno::ENOLINK => &s.errors_enolink,
            Errno::ENODEV | Errno::ECANCELED => &s.errors_enodev,
            _ => &s.errors_other,
        };
        c.fetch_add(n as u64, Ordering::Relaxed);
    }
}
