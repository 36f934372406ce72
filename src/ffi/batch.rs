//! Many ranges in one VM_BIND from C: `svm_place_batch` issues them as one
//! ioctl (the copies happen inside it, as xe does them); the runtime waits
//! on the batch's user fence (its own, or the one `svm_batch_fence` names)
//! for the page-table update, and reads each range's outcome with
//! `svm_batch_complete`. Checks and conversions only; the work is
//! `crate::policy::Context::place_batch`'s.

use core::ffi::c_int;
use std::collections::BTreeSet;

use super::context::{context, svm_context, svm_device, svm_pagemap};
use super::placement::{check_result, fill_result, span_failure, svm_alloc_result};
use super::{guard, invalid, out};
use crate::policy::Batch;

/// One range of a batch: [start, start + size) to `target`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct svm_range_placement {
    /// First byte (4 KiB aligned).
    pub start: u64,
    /// Bytes (4 KiB multiple, not 0).
    pub size: u64,
    /// Where it should go.
    pub target: svm_pagemap,
}

/// A placement batch in flight or done (from svm_place_batch; release it
/// with svm_batch_destroy). One thread at a time per batch.
pub struct svm_batch {
    batch: Batch,
    /// The context's serial: a batch is completed on the context that made it.
    ctx: *const svm_context,
}

/// Most ranges in one batch.
pub const SVM_BATCH_MAX_RANGES: u32 = 1024;

/// The batches svm_place_batch made and svm_batch_destroy has not
/// released, by address: a pointer not among them (released already, or
/// never made) is refused with -EINVAL instead of being read or freed.
static LIVE: parking_lot::Mutex<BTreeSet<usize>> = parking_lot::Mutex::new(BTreeSet::new());

/// A batch pointer from C, checked: not NULL, and live.
///
/// # Safety
/// A live batch is used by one thread at a time (the header's contract),
/// so it stays live while the caller uses the reference.
unsafe fn live<'a>(batch: *const svm_batch) -> Result<&'a mut svm_batch, super::Failure> {
    if batch.is_null() {
        return Err(invalid("batch is NULL"));
    }
    if !LIVE.lock().contains(&(batch as usize)) {
        return Err(invalid("batch is not one svm_place_batch made, or was released (svm_batch_destroy)"));
    }
    // SAFETY: made by Box::into_raw in svm_place_batch and not yet released
    // (checked above); one thread at a time per batch.
    Ok(unsafe { &mut *(batch as *mut svm_batch) })
}

/// Places `n` ranges for accesses by `device` with one VM_BIND holding one
/// PREFETCH op per range, after setting each range's preferred location on
/// every device VM (madvise, synchronous, moves nothing). What xe does, and
/// so what this call does: the copies happen inside the VM_BIND ioctl
/// (`prefetch_ranges` from `op_lock_and_prep`), so the call returns once
/// the data moved, and the fence covers only the page-table update that
/// follows. It is not ordered after GPU work already queued: a user fence
/// in xe only signals, so the runtime calls this once the work that writes
/// these ranges is done (or accepts that it is not ordered). `fence_addr`:
/// the runtime's own user-fence word (8-byte aligned, kept alive until it
/// signals), which the kernel sets to `fence_value` when the binds
/// complete; values only grow, and completion is `*fence_addr >=
/// fence_value`, so a word several binds share (a monotonic paging fence)
/// works. NULL: the library lends one (svm_batch_fence names it). No
/// retries and no fallbacks: svm_batch_complete says where each range is.
/// The ranges must be page-aligned, non-empty and not overlap.
/// Errors, with nothing queued: -EINVAL (NULL, n 0 or above
/// SVM_BATCH_MAX_RANGES, bad or overlapping range, unknown pagemap,
/// misaligned fence), -ENODEV/-ECANCELED (device gone), or the errno of a
/// refused madvise (-ENOLINK: a peer without a link) or bind. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_place_batch(
    ctx: *mut svm_context,
    device: svm_device,
    ranges: *const svm_range_placement,
    n: u32,
    fence_addr: *mut u64,
    fence_value: u64,
    batch: *mut *mut svm_batch,
) -> c_int {
    guard("svm_place_batch", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `batch` is NULL or points to writable memory for its type (the header's contract).
        let o = unsafe { out(batch, "batch")? };
        if ranges.is_null() || n == 0 || n > SVM_BATCH_MAX_RANGES {
            return Err(invalid(format!("ranges must point to 1 to {SVM_BATCH_MAX_RANGES} entries (n is {n})")));
        }
        // SAFETY: the caller passes n readable entries (checked non-NULL).
        let list = unsafe { core::slice::from_raw_parts(ranges, n as usize) };
        let h = c.device(device)?;
        let mut spans = Vec::with_capacity(list.len());
        for r in list {
            spans.push((r.start, r.size, c.pagemap(r.target)?));
        }
        let fence = (!fence_addr.is_null()).then_some((fence_addr as u64, fence_value));
        let b = c.ctx.place_batch(h, &spans, fence).map_err(|e| match list.iter().find(|r| r.size == 0 || r.start % 4096 != 0 || r.size % 4096 != 0) {
            Some(r) => span_failure(e, r.start, r.size),
            None => e.into(),
        })?;
        let made = Box::into_raw(Box::new(svm_batch { batch: b, ctx }));
        LIVE.lock().insert(made as usize);
        *o = made;
        Ok(())
    })
}

/// The user fence a batch's VM_BIND signals: the kernel writes `*value` at
/// `*addr` when the binds complete (WAIT_USER_FENCE with
/// DRM_XE_UFENCE_WAIT_OP_GTE on it, or read it: done once `*addr >=
/// *value`). 0 for `*addr` once the batch completed with a lent word.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_batch_fence(batch: *const svm_batch, addr: *mut u64, value: *mut u64) -> c_int {
    guard("svm_batch_fence", || {
        // SAFETY: checked live; one thread at a time per batch (the header's contract).
        let b = unsafe { live(batch)? };
        // SAFETY: `addr` is NULL or points to writable memory for its type (the header's contract).
        *unsafe { out(addr, "addr")? } = b.batch.addr;
        // SAFETY: `value` is NULL or points to writable memory for its type (the header's contract).
        *unsafe { out(value, "value")? } = b.batch.value;
        Ok(())
    })
}

/// 1 when the batch's fence has signalled (the word holds its value or a
/// later one), 0 while it is in flight, or a negative errno (-EINVAL for
/// NULL or a batch released or never made). One memory read, no syscall.
#[no_mangle]
pub unsafe extern "C" fn svm_batch_signalled(batch: *const svm_batch) -> c_int {
    // SAFETY: checked live; one thread at a time per batch (the header's contract).
    match unsafe { live(batch) } {
        Ok(b) => b.batch.signalled() as c_int,
        Err(f) => guard("svm_batch_signalled", || Err(f)),
    }
}

/// Waits up to `timeout_ns` for the batch (no wait once its fence
/// signalled; 0: do not wait), then writes each range's outcome into
/// `results` (`n` entries, each with its `struct_size` set, or NULL):
/// where the range is (what the page table shows, else the target,
/// believed), SVM_RESULT_VERIFIED, and -EBUSY in `cause` where the page
/// table shows it elsewhere. The library's records take what was found.
/// -ETIME: not done yet (ask again). -EINVAL: NULL, another context's
/// batch, `n` not the batch's count, or a result whose `struct_size` is
/// not set (checked first: the batch is then not completed). Thread-safe
/// per context; one thread at a time per batch.
#[no_mangle]
pub unsafe extern "C" fn svm_batch_complete(ctx: *mut svm_context, batch: *mut svm_batch, timeout_ns: i64, results: *mut svm_alloc_result, n: u32) -> c_int {
    guard("svm_batch_complete", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: checked live; one thread at a time per batch (the header's contract).
        let b = unsafe { live(batch)? };
        if !std::ptr::eq(b.ctx, ctx) {
            return Err(invalid("batch belongs to another context"));
        }
        if !results.is_null() && n as usize != b.batch.ranges.len() {
            return Err(invalid(format!("results holds {n} entries, the batch {}", b.batch.ranges.len())));
        }
        if !results.is_null() {
            for i in 0..n as usize {
                // SAFETY: the caller passes n entries (n checked above).
                unsafe { check_result(results.add(i))? };
            }
        }
        let out = c.ctx.complete_batch(&mut b.batch, timeout_ns)?;
        if !results.is_null() {
            for (i, p) in out.iter().enumerate() {
                // SAFETY: the caller passes n writable entries (n checked above).
                fill_result(c, unsafe { results.add(i) }, p)?;
            }
        }
        Ok(())
    })
}

/// Releases a batch. A batch still in flight may be released: its lent
/// fence word is reused only once the kernel wrote it. NULL does nothing;
/// -EINVAL for a batch released already or never made (nothing freed).
#[no_mangle]
pub unsafe extern "C" fn svm_batch_destroy(batch: *mut svm_batch) -> c_int {
    guard("svm_batch_destroy", || {
        if batch.is_null() {
            return Ok(());
        }
        if !LIVE.lock().remove(&(batch as usize)) {
            return Err(invalid("batch was released already (svm_batch_destroy), or never made"));
        }
        // SAFETY: made by Box::into_raw in svm_place_batch, and taken out of
        // the live set just now, so released once.
        drop(unsafe { Box::from_raw(batch) });
        Ok(())
    })
}
