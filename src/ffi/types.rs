//! The C types several ABI files share: the access kinds, the residency
//! and page-table kinds, the simulator's handle (opaque; empty in a build
//! without the simulator), and the versioned-struct writer (a caller's struct may be older
//! and smaller than the library's).

use super::{invalid, FfiResult, Failure};
use crate::driver::{PageTableAccess, PageTableSource};
use crate::policy;

/// Kept for source compatibility: 0.1.0 restarted an interrupted ioctl
/// (EINTR, EAGAIN) at most this many times in a row. Since 0.2.0 restarts
/// end at a deadline instead (SVM_RESTART_DEADLINE_NS after the first
/// interruption), as often as signals come before it.
pub const SVM_MAX_RESTARTS: u32 = 8;
/// How long, in nanoseconds, an interrupted ioctl (EINTR, EAGAIN) is
/// restarted after its first interruption before the errno is returned; a
/// fence wait whose timeout runs down between interruptions continues.
pub const SVM_RESTART_DEADLINE_NS: u64 = 250_000_000;
const _: () = assert!(SVM_RESTART_DEADLINE_NS == crate::driver::RESTART_DEADLINE_NS);
const _: () = assert!(SVM_MAX_RESTARTS == crate::driver::MAX_RESTARTS);

/// What an access does: one of `SVM_ACCESS_*`.
pub type svm_access = u32;
/// Reads the range.
pub const SVM_ACCESS_READ: svm_access = 0;
/// Writes the range (every page's content changes).
pub const SVM_ACCESS_WRITE: svm_access = 1;
/// GPU atomics on the range (a write that may need VRAM, docs/kernel-model.md §3.2).
pub const SVM_ACCESS_ATOMIC: svm_access = 2;

/// An explicit prefetch (zeCommandListAppendMemoryPrefetch,
/// clEnqueueSVMMigrateMem): the application asked for the range on this
/// device, so it is read again there. svm_resolve_pagemap only: it treats
/// it as a read but never serves it in place first (a plain READ of data in
/// system memory is read in place once, and moved on its next read).
pub const SVM_ACCESS_PREFETCH: svm_access = 3;

/// The access a placement is for, as policy names it.
pub(crate) fn access_to_policy(a: svm_access) -> Result<policy::Access, Failure> {
    match a {
        SVM_ACCESS_READ => Ok(policy::Access::Read),
        SVM_ACCESS_WRITE => Ok(policy::Access::Write),
        SVM_ACCESS_ATOMIC => Ok(policy::Access::Atomic),
        SVM_ACCESS_PREFETCH => Ok(policy::Access::Prefetch),
        other => Err(invalid(format!("access {other} is not SVM_ACCESS_READ, _WRITE, _ATOMIC or _PREFETCH"))),
    }
}

/// `svm_sim_residency.kind`: no page of the span exists yet.
pub const SVM_PLACE_UNPOPULATED: u32 = 0;
/// All of the span is in system memory.
pub const SVM_PLACE_SYSTEM: u32 = 1;
/// All of the span is in one VRAM region: `device`, `instance`.
pub const SVM_PLACE_VRAM: u32 = 2;
/// The span's pages are in more than one place.
pub const SVM_PLACE_MIXED: u32 = 3;

/// Writes `v` into a caller struct of `struct_size` bytes (a prefix if the
/// caller's struct is older and smaller).
pub(crate) fn write_sized<T: Copy>(dst: *mut T, caller_size: u32, mut v: T, set_size: impl FnOnce(&mut T, u32)) -> FfiResult {
    let n = (caller_size as usize).min(core::mem::size_of::<T>());
    if n < 8 {
        return Err(invalid("struct_size is too small (set it to sizeof the struct)"));
    }
    set_size(&mut v, n as u32);
    if n == core::mem::size_of::<T>() {
        // The caller's struct is this one (the common case): a plain store
        // of a few words, not a call to memcpy for a length known only now.
        // SAFETY: the caller owns `caller_size` >= size_of::<T>() writable bytes at dst.
        unsafe { dst.write_unaligned(v) };
        return Ok(());
    }
    // SAFETY: the caller owns `caller_size` writable bytes at dst; n <= that.
    unsafe { core::ptr::copy_nonoverlapping(&v as *const T as *const u8, dst as *mut u8, n) };
    Ok(())
}


/// A simulated machine (devices, memory, clock). Created by
/// `svm_sim_create*`, released by `svm_sim_destroy`. Thread-safe: every
/// function may be called on one simulator from many threads at once.
pub struct svm_sim {
    #[cfg(feature = "sim")]
    pub(crate) sim: std::sync::Arc<crate::sim::Sim>,
}

/// `svm_stats.page_table`: not readable (no /proc, seccomp, ...): the
/// library decides on its records only.
pub const SVM_PAGE_TABLE_NONE: u32 = 0;
/// `pread` of /proc/self/pagemap.
pub const SVM_PAGE_TABLE_READ: u32 = 1;
/// The PAGEMAP_SCAN ioctl (Linux 6.7+).
pub const SVM_PAGE_TABLE_SCAN: u32 = 2;
/// The simulated driver's ground truth (benchmarks only; no real process has it).
pub const SVM_PAGE_TABLE_ORACLE: u32 = 3;

pub(crate) fn page_table_to_c(a: PageTableAccess) -> (u32, u32) {
    let s = match a.source {
        PageTableSource::Unavailable => SVM_PAGE_TABLE_NONE,
        PageTableSource::Read => SVM_PAGE_TABLE_READ,
        PageTableSource::Scan => SVM_PAGE_TABLE_SCAN,
        PageTableSource::Oracle => SVM_PAGE_TABLE_ORACLE,
    };
    // Nothing is read where the page table is not: no privilege to claim
    // (a simulator set to NONE with privileged reads said 1).
    (s, (a.privileged && a.source != PageTableSource::Unavailable) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A third-party reader's report: stats said privileged with the page
    /// table off (failed before).
    #[test]
    fn an_unreadable_page_table_claims_no_privilege() {
        assert_eq!(page_table_to_c(PageTableAccess { source: PageTableSource::Unavailable, privileged: true }), (SVM_PAGE_TABLE_NONE, 0));
        assert_eq!(page_table_to_c(PageTableAccess { source: PageTableSource::Read, privileged: true }), (SVM_PAGE_TABLE_READ, 1));
    }
}
