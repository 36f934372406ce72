//! What a runtime tells the library about a launch: where a kernel
//! argument's allocation lies (`svm_find_extent`), that a launch was
//! submitted (`svm_launch_submit`) and how long it took
//! (`svm_launch_report`).

use core::ffi::{c_int, c_void};

use super::context::{context, svm_context, svm_device};
use super::{guard, out, Failure};
use crate::errno::Errno;

/// The extent of the allocation `ptr` lies in, as a runtime without an
/// allocation table needs it for a kernel argument into malloc memory (a
/// "shared system" pointer): the process's CPU mapping that holds `ptr`, as
/// `/proc/self/maps` lists it, into `*start` and `*size` (page aligned; on
/// the simulator, the simulated process's mappings). A mapping may hold
/// several allocations (an allocator's arena, adjacent anonymous mappings
/// Linux merged), and it is one kernel VMA: an mprotect, mlock or madvise
/// (MADV_HUGEPAGE, MADV_DONTFORK) over part of an allocation splits it
/// there, and the extent is then the part that holds `ptr`.
/// [*start, *start + *size) can go to svm_resolve_pagemap and
/// svm_alloc_vram as it is. The library's records
/// are not consulted. Each call reads the maps (a syscall under the mm
/// lock): cache the answer until your free hook, if you have one, says
/// otherwise. Errors: -EINVAL (`ctx`, `start` or `size` NULL), -EFAULT
/// (nothing mapped at `ptr`, or `ptr` below 64 KiB, NULL included, or
/// above the user address space, where nothing can be placed), -ECHILD (a forked child's inherited
/// context), or the errno of reading /proc/self/maps. Nothing is written on
/// failure. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_find_extent(ctx: *mut svm_context, ptr: *const c_void, start: *mut u64, size: *mut u64) -> c_int {
    guard("svm_find_extent", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `start`, `size` are NULL or point to writable u64s (the header's contract).
        let (s, n) = unsafe { (out(start, "start")?, out(size, "size")?) };
        let addr = ptr as u64;
        let (lo, hi) = c.ctx.extent_of(addr).map_err(|e| match e {
            Errno::EFAULT => Failure { errno: e, message: format!("{addr:#x}: nothing is mapped there") },
            e => e.into(),
        })?;
        (*s, *n) = (lo, hi - lo);
        Ok(())
    })
}

/// Says that the runtime submitted a launch on `device`: the
/// svm_alloc_vram(SVM_ALLOC_ENGINE) calls since the previous
/// svm_launch_submit on that device placed its data. A runtime that calls
/// it for every launch may run ahead of its queue (place and submit the
/// next launches before the first completes): each svm_launch_report that
/// follows is then matched to the oldest submitted launch not yet reported,
/// as an in-order queue completes them (a runtime with several queues on a
/// device reports in submission order). Without it a report covers every
/// placement since the previous report, which under a queue running ahead
/// mixes several launches. A read served over a peer link owes a pass
/// for each launch submitted and not reported yet, so its rent is paid
/// also where reports come late or never (svm_resolve_pagemap).
/// Optional; call it for every launch or for none.
/// Errors: -EINVAL (`ctx` NULL, a handle never opened), -EBADF (a closed
/// device). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_launch_submit(ctx: *mut svm_context, device: svm_device) -> c_int {
    guard("svm_launch_submit", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        let h = c.device(device)?;
        c.ctx.launch_submitted(h).map_err(Failure::from)
    })
}

/// Reports that a launch on `device` took `duration_ns`: the oldest one
/// svm_launch_submit announced and not yet reported, or, where the runtime
/// does not call svm_launch_submit, the launch that the runtime placed with
/// svm_alloc_vram(SVM_ALLOC_ENGINE) calls since its previous report. The
/// duration is from the runtime's own timestamps (submission to
/// completion, the launch's GPU faults included). With reports the default
/// engine learns, per allocation, which of the library's rule cascade, the
/// runtime's own prefetch and the kernel's faults costs least: the cascade
/// first, the prefetch once and the faults once when moving the span costs
/// at most a quarter of a launch (the faults also once the span's launches
/// have cost four of its moves; once per report: the span's launches
/// placed before a trial's report run the trial too), then the cheapest
/// (docs/design.md, "The engine's default"); without them it keeps
/// the runtime's own default. A device without VRAM always keeps it.
/// Optional. Errors:
/// -EINVAL (`ctx` NULL, a handle never opened), -EBADF (a closed device).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_launch_report(ctx: *mut svm_context, device: svm_device, duration_ns: u64) -> c_int {
    guard("svm_launch_report", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        let h = c.device(device)?;
        c.ctx.launch_done(h, duration_ns).map_err(Failure::from)
    })
}
