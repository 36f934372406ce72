//! Many ranges in one VM_BIND from C: `svm_place_batch` issues them as one
//! ioctl (the copies happen inside it, as xe does them); the runtime waits
//! on the batch's user fence (its own, or the one `svm_batch_fence` names)
//! for the page-table update, and reads each range's outcome with
//! `svm_batch_complete`. Checks and conversions only; the work is
//! `crate::policy::Context::place_batch`'s.

use core::ffi::c_int;

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
/// with svm_batch_destroy). A handle, not an address: one released is
/// refused (-EINVAL) even once a newer batch exists. One thread at a time
/// per batch: while svm_batch_complete waits on it, the batch's other
/// calls are -EBUSY. A batch belongs to the process that made it: in a
/// forked child every call on the parent's batches is -ECHILD (the child
/// makes its own, with its own contexts).
pub struct svm_batch {
    batch: Batch,
    /// The serial of the context that made it: a batch is completed on
    /// that context (its address may be another context's once it is
    /// destroyed; its serial is never reused).
    ctx: u32,
}

/// Most ranges in one batch.
pub const SVM_BATCH_MAX_RANGES: u32 = 1024;

/// The batches svm_place_batch made and svm_batch_destroy has not
/// released. C holds a handle, never an address: the pointer's value is a
/// slot here and that slot's generation, so a handle released already (or
/// never made) is refused with -EINVAL however the allocator reuses
/// memory, and a batch is never freed while a call uses it.
/// One per process (`fork::PerProcess`): a child's is its own, as a parent
/// thread may have held the parent's lock at fork, and the parent's
/// batches are not the child's (-ECHILD).
static TABLE: crate::driver::fork::PerProcess<parking_lot::Mutex<Batches>> = crate::driver::fork::PerProcess::new();

/// This process's batches.
fn batches() -> parking_lot::MutexGuard<'static, Batches> {
    TABLE.get(|_| parking_lot::Mutex::new(Batches { slots: Vec::new(), free: Vec::new() })).lock()
}

// A handle is a slot (24 bits, plus one), the process's fork generation
// (8 bits) and the slot's generation (32 bits) in one pointer-sized value.
const _: () = assert!(usize::BITS == 64);
const SLOT_BITS: u32 = 24;

struct Batches {
    slots: Vec<BatchSlot>,
    /// Free slots, reused newest first (a slot whose generation ran out
    /// is never freed again).
    free: Vec<u32>,
}

struct BatchSlot {
    gen: u32,
    state: BatchState,
}

enum BatchState {
    Free,
    Idle(Box<svm_batch>),
    /// Taken out by svm_batch_complete, which may wait without the lock.
    Busy,
}

fn handle(slot: u32, gen: u32) -> *mut svm_batch {
    let process = u64::from(crate::driver::fork::generation() & 0xff) << SLOT_BITS;
    ((u64::from(gen) << 32) | process | (u64::from(slot) + 1)) as usize as *mut svm_batch
}

impl Batches {
    /// A slot for a batch about to be made, held Busy (a guessed handle is
    /// -EBUSY), so that a full table refuses the batch before anything is
    /// queued.
    fn reserve(&mut self) -> Result<u32, super::Failure> {
        let slot = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() + 1 >= 1 << SLOT_BITS => {
                return Err(super::Failure { errno: crate::errno::Errno::ENOSPC, message: "2^24 batches live: release some (svm_batch_destroy)".into() });
            }
            None => {
                self.slots.push(BatchSlot { gen: 0, state: BatchState::Free });
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[slot as usize].state = BatchState::Busy;
        Ok(slot)
    }

    /// A reserved slot takes its batch: its handle.
    fn fill(&mut self, slot: u32, b: svm_batch) -> *mut svm_batch {
        let s = &mut self.slots[slot as usize];
        s.state = BatchState::Idle(Box::new(b));
        handle(slot, s.gen)
    }

    /// A reserved slot whose batch was refused: free again (no handle named
    /// it, so its generation stays).
    fn unreserve(&mut self, slot: u32) {
        self.slots[slot as usize].state = BatchState::Free;
        self.free.push(slot);
    }

    /// The slot a handle names, if it is the slot's current generation.
    fn slot(&mut self, batch: *const svm_batch) -> Result<&mut BatchSlot, super::Failure> {
        if batch.is_null() {
            return Err(invalid("batch is NULL"));
        }
        let v = batch as usize as u64;
        let here = crate::driver::fork::generation();
        if here != 0 && (v >> SLOT_BITS) & 0xff != u64::from(here & 0xff) {
            return Err(super::Failure { errno: crate::errno::Errno::ECHILD, message: "batch of the process this one was forked from: a forked child makes its own contexts, and batches with them".into() });
        }
        let (slot, gen) = ((v & ((1 << SLOT_BITS) - 1)).wrapping_sub(1) as usize, (v >> 32) as u32);
        match self.slots.get_mut(slot) {
            Some(s) if s.gen == gen && !matches!(s.state, BatchState::Free) => Ok(s),
            _ => Err(invalid("batch is not one svm_place_batch made, or was released (svm_batch_destroy)")),
        }
    }
}

fn busy() -> super::Failure {
    super::Failure { errno: crate::errno::Errno::EBUSY, message: "batch is in use by another thread (svm_batch_complete): one thread at a time per batch".into() }
}

/// Runs `f` on a live, idle batch under the batches' lock (a read of its
/// fields: no wait, no call into the library).
fn with_batch<R>(batch: *const svm_batch, f: impl FnOnce(&svm_batch) -> R) -> Result<R, super::Failure> {
    let mut all = batches();
    match &all.slot(batch)?.state {
        BatchState::Idle(b) => Ok(f(b)),
        _ => Err(busy()),
    }
}

/// A batch taken out of its slot for a call that may wait; put back when
/// dropped, however the call ends.
struct Taken {
    handle: *const svm_batch,
    batch: Option<Box<svm_batch>>,
}

impl Taken {
    fn new(batch: *const svm_batch) -> Result<Taken, super::Failure> {
        let mut all = batches();
        let s = all.slot(batch)?;
        match std::mem::replace(&mut s.state, BatchState::Busy) {
            BatchState::Idle(b) => Ok(Taken { handle: batch, batch: Some(b) }),
            other => {
                s.state = other;
                Err(busy())
            }
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let (Some(b), Ok(s)) = (self.batch.take(), batches().slot(self.handle)) {
            s.state = BatchState::Idle(b);
        }
    }
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
/// misaligned fence), -ENOSPC (2^24 batches live in the process),
/// -ENODEV/-ECANCELED (device gone), or the errno of a
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
        let slot = batches().reserve()?;
        match c.ctx.place_batch(h, &spans, fence) {
            Ok(b) => {
                *o = batches().fill(slot, svm_batch { batch: b, ctx: c.serial() });
                Ok(())
            }
            Err(e) => {
                batches().unreserve(slot);
                Err(batch_failure(e, list, fence_addr as u64))
            }
        }
    })
}

/// What a refused batch's EINVAL was about: the first bad range, a
/// misaligned fence, ranges that overlap; else a pagemap or tile.
fn batch_failure(e: crate::errno::Errno, list: &[svm_range_placement], fence_addr: u64) -> super::Failure {
    if e != crate::errno::Errno::EINVAL {
        return e.into();
    }
    if let Some(r) = list.iter().find(|r| crate::policy::span_problem(r.start, r.size).is_some()) {
        return span_failure(e, r.start, r.size);
    }
    if fence_addr % 8 != 0 {
        return invalid(format!("fence_addr {fence_addr:#x} is not 8-byte aligned"));
    }
    let mut spans: Vec<(u64, u64)> = list.iter().map(|r| (r.start, r.start + r.size)).collect();
    spans.sort_unstable();
    if let Some(w) = spans.windows(2).find(|w| w[1].0 < w[0].1) {
        return invalid(format!("ranges [{:#x}, {:#x}) and [{:#x}, {:#x}) overlap", w[0].0, w[0].1, w[1].0, w[1].1));
    }
    invalid("a range's target is not a pagemap this device can reach (tile or pagemap)")
}

/// The user fence a batch's VM_BIND signals: the kernel writes `*value` at
/// `*addr` when the binds complete (WAIT_USER_FENCE with
/// DRM_XE_UFENCE_WAIT_OP_GTE on it, or read it: done once `*addr >=
/// *value`). 0 for `*addr` once the batch completed with a lent word.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_batch_fence(batch: *const svm_batch, addr: *mut u64, value: *mut u64) -> c_int {
    guard("svm_batch_fence", || {
        let (a, v) = with_batch(batch, |b| (b.batch.addr, b.batch.value))?;
        // SAFETY: `addr` is NULL or points to writable memory for its type (the header's contract).
        *unsafe { out(addr, "addr")? } = a;
        // SAFETY: `value` is NULL or points to writable memory for its type (the header's contract).
        *unsafe { out(value, "value")? } = v;
        Ok(())
    })
}

/// 1 when the batch's fence has signalled (the word holds its value or a
/// later one), 0 while it is in flight, or a negative errno (-EINVAL for
/// NULL or a batch released or never made, -EBUSY while svm_batch_complete
/// waits on it). One lock and one memory read, no syscall.
#[no_mangle]
pub unsafe extern "C" fn svm_batch_signalled(batch: *const svm_batch) -> c_int {
    match with_batch(batch, |b| b.batch.signalled()) {
        Ok(done) => done as c_int,
        Err(f) => guard("svm_batch_signalled", || Err(f)),
    }
}

/// Waits up to `timeout_ns` for the batch (no wait once its fence
/// signalled; 0: do not wait), then writes each range's outcome into
/// `results` (`n` entries, each with its `struct_size` set, or NULL):
/// where the range is (what the page table shows, else the target,
/// believed), SVM_RESULT_VERIFIED (every page looked at), and -EBUSY in `cause` where the page
/// table shows any of it elsewhere (the target device's -ENODEV or -ECANCELED
/// where that device was lost meanwhile, or the batch's own device's where
/// it was lost before its fence signalled: the fence never will, and the
/// call completes from the page table; -EFAULT, and no place, where
/// nothing maps it, in system memory too;
/// -EBADF, and no place, where the target's device was closed since the
/// batch was queued, or the batch's own device before its fence signalled).
/// The library's records take what was found.
/// -ETIME: not done yet (ask again). -EINVAL: NULL, a batch released or
/// never made, another context's batch, `n` not the batch's count, or a
/// result whose `struct_size` is not set (checked first: the batch is then
/// not completed). -EBUSY: another thread is completing it. Thread-safe
/// per context; one thread at a time per batch.
#[no_mangle]
pub unsafe extern "C" fn svm_batch_complete(ctx: *mut svm_context, batch: *mut svm_batch, timeout_ns: i64, results: *mut svm_alloc_result, n: u32) -> c_int {
    guard("svm_batch_complete", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        let mut taken = Taken::new(batch)?;
        let b = taken.batch.as_mut().expect("taken");
        if b.ctx != c.serial() {
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
/// -EINVAL for a batch released already or never made (nothing freed),
/// -EBUSY while svm_batch_complete waits on it.
#[no_mangle]
pub unsafe extern "C" fn svm_batch_destroy(batch: *mut svm_batch) -> c_int {
    guard("svm_batch_destroy", || {
        if batch.is_null() {
            return Ok(());
        }
        let released = {
            let mut all = batches();
            let s = all.slot(batch)?;
            let b = match std::mem::replace(&mut s.state, BatchState::Free) {
                BatchState::Idle(b) => b,
                other => {
                    s.state = other;
                    return Err(busy());
                }
            };
            // A new generation; a slot whose generations ran out is retired.
            s.gen = s.gen.saturating_add(1);
            if s.gen != u32::MAX {
                let slot = ((batch as usize as u64 & ((1 << SLOT_BITS) - 1)) - 1) as u32;
                all.free.push(slot);
            }
            b
        };
        // Dropped without the lock (its lent fence word goes back to the pool).
        drop(released);
        Ok(())
    })
}
