//! The placement calls from C: `svm_resolve_pagemap`, `svm_alloc_vram`,
//! `svm_evict` and the attribute calls (the range and statistics calls are
//! `range`'s). Checks and conversions only; the work is
//! `crate::policy::Context`'s.

use core::ffi::c_int;

use super::context::{context, svm_context, svm_device, svm_pagemap};
use super::types::{access_to_policy, svm_access, write_sized};
use super::{guard, invalid, out, FfiResult, Failure};
use crate::errno::Errno;
use crate::policy::{self, AllocFlags, Placed};

/// Where [start, start+size) should live for an access of `access` kind by
/// `tile` of `device`: the kernel's decision (docs/kernel-model.md §3, §14:
/// atomics in the tile's VRAM; an explicit preferred location if reachable;
/// else the tile's VRAM; system memory on integrated GPUs) refined by what
/// the library knows (VRAM this context filled, pinned or ping-ponging
/// ranges, ranges the CPU pulled back, links). By default the answer is
/// where the runtime's own prefetch would send the span (the device's
/// advice, else the tile's VRAM while this context has room there, else
/// where it is), except that a span another tile of the same device holds
/// is used there (not atomics nor SVM_ACCESS_PREFETCH, not against the
/// device's advice or the read-mostly hint: the device's kernels reach
/// either tile's memory at its local bandwidth) and a read of a chunk or
/// more a linked peer holds is read there, over the link, until the
/// launches it was served to have paid its move (a reported launch pays
/// its duration, at most a pass of the span over the link; a launch
/// submitted, svm_launch_submit, and not reported yet owes a pass): then
/// it is left to the device's own faults. With launch reports (svm_launch_report) the rule cascade
/// answers for a span until the reports show the runtime's prefetch or
/// the kernel's faults cost less there: reads of data in system memory
/// rent before they buy (the first SVM_ACCESS_READ of a span by a device
/// is served in place, the next one moves it, unless the device used more
/// than its VRAM since; a span several devices read in place stays there;
/// a read of at most 256 KiB is served in place), and the same under
/// SVM_CONTEXT_ENGINE_RULES for every span.
/// SVM_ACCESS_PREFETCH (the application asked for it here) moves at once.
/// No ioctl, no allocation. It notes the access for the placements that
/// follow: which device asked and whether to write (devices taking turns at
/// a span, any engine); a read served over a peer link leaves the pass its
/// launch's report pays, and a write voids what such reads paid; under the
/// cascade also the library's records (a write, a read of a span born
/// split, a walk). The same call again notes nothing new.
/// Errors: -EINVAL (bad range: zero, unaligned to 4 KiB, overflowing, above
/// 2^47; bad tile or access), -EBADF (device closed), -ENODEV/-ECANCELED
/// (device gone: unplugged or wedged), -EACCES (GPU
/// atomics forbidden on the range: atomic mode CPU). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_resolve_pagemap(
    ctx: *mut svm_context,
    device: svm_device,
    tile: u16,
    start: u64,
    size: u64,
    access: svm_access,
    pagemap: *mut svm_pagemap,
) -> c_int {
    guard("svm_resolve_pagemap", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `pagemap` is NULL or points to writable memory for its type (the header's contract).
        let o = unsafe { out(pagemap, "pagemap")? };
        let a = access_to_policy(access)?;
        // One lock: policy checks the handle, decides, and names the slot.
        let h = c.device_handle(device)?;
        let (pm, gen) = c.ctx.resolve_tagged(h, tile, start, size, a).map_err(|e| match c.ctx.check_device(h) {
            Err(d) => svm_context::device_failure(d),
            Ok(()) => span_failure(e, start, size),
        })?;
        *o = c.pagemap_id_of(pm, gen);
        Ok(())
    })
}

/// A policy error on a span, with the reason for an EINVAL: policy's span
/// rules in words (`policy::span_problem`), else the tile or pagemap.
pub(super) fn span_failure(e: Errno, start: u64, size: u64) -> Failure {
    if e == Errno::EINVAL {
        let why = policy::span_problem(start, size).unwrap_or("invalid argument (tile or pagemap)");
        return Failure { errno: e, message: format!("[{start:#x}, +{size:#x}): {why}") };
    }
    e.into()
}

/// `svm_alloc_vram` flag: fail with the errno instead of falling back to
/// another pagemap (the peer, then local VRAM, then system memory).
pub const SVM_ALLOC_NO_FALLBACK: u32 = 1 << 0;
/// `svm_alloc_vram` flag, with SVM_ALLOC_ENGINE only: move the range even
/// if the thrash guard pins it, or devices take turns at it (an explicit
/// request is never pinned). For a span a kernel uses atomically, which
/// runs in local VRAM whatever happens.
pub const SVM_ALLOC_IGNORE_THRASH_GUARD: u32 = 1 << 1;
/// `svm_alloc_vram` flag, with SVM_ALLOC_ENGINE only: prefetch now, never
/// leave the move to the launch's GPU fault (SVM_RESULT_ON_FAULT), split
/// it (SVM_RESULT_SPLIT), give it a system-memory birth or leave what came
/// along with a neighbour. An explicit request always moves now.
pub const SVM_ALLOC_PREFETCH_NOW: u32 = 1 << 2;
/// `svm_alloc_vram` flag: hand the choice over. `target` is the engine's
/// own answer (svm_resolve_pagemap's, for a launch the runtime is about to
/// submit), and the engine may decide how the span gets there: split a
/// never-populated buffer (SVM_RESULT_SPLIT), give a small one that VRAM
/// would take in 64 KiB or 4 KiB ranges (no 2 MiB chunk of it inside its
/// mapping: each later move a migration per range), its birth in system
/// memory and serve it there (`pagemap`
/// says so; SVM_ALLOC_IGNORE_THRASH_GUARD, SVM_ALLOC_PREFETCH_NOW or an
/// explicit request moves it), leave a range asked for system memory where it came along into the
/// device's VRAM with a neighbour the library moved there (the kernel moves
/// whole 2 MiB ranges; `pagemap` says so, SVM_RESULT_SPLIT where only its
/// end chunk did), leave the move to the launch's fault (SVM_RESULT_ON_FAULT), keep a
/// thrashing range where it is (SVM_RESULT_PINNED), or widen the span to
/// the walk or record it belongs to. Without it the call is an explicit request (an
/// application's zeCommandListAppendMemoryPrefetch, clEnqueueSVMMigrateMem):
/// exactly [start, start+size) moves to `target` now, or the call falls
/// back and says so (SVM_RESULT_FELL_BACK and `cause`), or fails.
pub const SVM_ALLOC_ENGINE: u32 = 1 << 3;
/// `svm_alloc_vram` flag, with SVM_ALLOC_ENGINE only: [start, start+size)
/// is the allocation that holds a kernel's argument pointer (as
/// svm_find_extent gives it, or the runtime's allocation table), not the
/// bytes the kernel touches. Unless the context was created with
/// SVM_CONTEXT_ENGINE_RULES, the engine then leaves the move to the
/// launch's faults (SVM_RESULT_ON_FAULT), as the runtime does without
/// xesvm: prefetching a whole allocation for a kernel that touches a slice
/// of it can cost more than the faults it saves. The first time an engine
/// placement leaves a span to the faults on a discrete GPU, the library
/// maps the zero page over the never-populated pages of its partial 2 MiB
/// chunks (madvise(MADV_POPULATE_READ): page tables written, no content,
/// no page allocated for anonymous memory), so the kernel's faults there
/// take 64 KiB ranges, not 4 KiB ones, where a 64 KiB block lies inside
/// the span (SVM_CONTEXT_NO_ZERO_PAGE turns it off). SVM_ALLOC_PREFETCH_NOW
/// moves it all now instead. Ignored without SVM_ALLOC_ENGINE (an explicit
/// request moves exactly its span).
pub const SVM_ALLOC_EXTENT: u32 = 1 << 4;
const _: () = assert!(
    SVM_ALLOC_NO_FALLBACK == AllocFlags::NO_FALLBACK.bits()
        && SVM_ALLOC_IGNORE_THRASH_GUARD == AllocFlags::IGNORE_THRASH_GUARD.bits()
        && SVM_ALLOC_PREFETCH_NOW == AllocFlags::PREFETCH_NOW.bits()
        && SVM_ALLOC_ENGINE == AllocFlags::ENGINE.bits()
        && SVM_ALLOC_EXTENT == AllocFlags::EXTENT.bits()
);

/// `svm_alloc_result.flags`: the range was already there: nothing moved, and
/// no ioctl issued, except one queued bind (`ioctls` 1) where it is in
/// system memory and this device's VM never had it bound.
pub const SVM_RESULT_IN_PLACE: u32 = 1 << 0;
/// It is not where asked: it fell back (`cause` says why).
pub const SVM_RESULT_FELL_BACK: u32 = 1 << 1;
/// The thrash guard (SVM_ALLOC_ENGINE only) kept it where it was (mapped
/// remotely where a link allows), or moved it to system memory where the
/// device cannot reach that place; also where the engine holds a hand-off
/// in system memory (the CPU took it back after one GPU use: pin_ns).
pub const SVM_RESULT_PINNED: u32 = 1 << 2;
/// The process's page table confirmed the placement (pages in system memory,
/// or not in system memory for VRAM; the device itself only with PFNs).
/// Clear where the page table cannot be read, or where no device of the
/// context has VRAM (nothing there to confirm): the placement is believed.
pub const SVM_RESULT_VERIFIED: u32 = 1 << 3;
/// Not prefetched (SVM_ALLOC_ENGINE only): the launch's GPU faults place
/// the range, moving what the kernel touches to `pagemap`, or mapping it
/// there over the link where `pagemap` is a peer's VRAM that the range's
/// preferred location names (`bytes_moved` is 0). Chosen where the faults
/// cost less than a prefetch: a range devices take turns at (each
/// kernel's faults move what it touches), a launch whose ranges outgrow
/// the tile's VRAM, a range whose launch reports show the faults
/// cheapest, and a range that moved before, placed in the VRAM of a
/// device with more than one tile (a prefetch binds it on every tile, and
/// each tile bound pays its own TLB invalidation at the next move, while
/// a fault binds only the tile that uses it; not for a range the runtime
/// insists on that lies in system memory, or that the CPU took back
/// before where the other tiles' invalidations cost less than the
/// timeslice: an atomic fault would hold it in VRAM for the kernel's
/// timeslice against the CPU's next touch).
/// SVM_ALLOC_PREFETCH_NOW refuses it.
pub const SVM_RESULT_ON_FAULT: u32 = 1 << 4;
/// Split (SVM_ALLOC_ENGINE only): part of the range lives in the
/// accessing device's VRAM, the rest in system memory (`pagemap`). Three
/// cases. A split birth: the range was never populated, and only its first 2 MiB
/// chunk lives in the VRAM asked for; the rest is in system memory
/// until the next calls show who uses it. The CPU reading it
/// back (seen in the page table) holds all of it in system memory; the
/// owner's second call after the birth, or its first after a read was
/// resolved (the GPU uses what it wrote), moves the rest to its VRAM; any
/// other device's call ends the split and places the whole range. Set by
/// the birth and by the calls that keep it. Or a range asked for system
/// memory whose end 2 MiB chunk came along into the device's VRAM with a
/// neighbour the library moved there (the kernel migrates whole 2 MiB
/// ranges): that chunk is left there, the rest is bound in system memory.
/// SVM_ALLOC_PREFETCH_NOW refuses both.
pub const SVM_RESULT_SPLIT: u32 = 1 << 5;

/// What svm_alloc_vram or svm_evict did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct svm_alloc_result {
    /// In: `sizeof(svm_alloc_result)`; out: bytes written.
    pub struct_size: u32,
    /// `SVM_RESULT_*` bits.
    pub flags: u32,
    /// Where the range is now.
    pub pagemap: svm_pagemap,
    /// Bytes of the spans this call migrated: a prefetch's whole span (the
    /// kernel does not say how much of it lay elsewhere), none where the
    /// page table showed it there already; for svm_evict, what the page
    /// table showed away.
    pub bytes_moved: u64,
    /// Retries (EBUSY, ENOMEM/ENOSPC, EINTR/EAGAIN, unverified prefetch).
    pub retries: u32,
    /// Ioctls issued by this call.
    pub ioctls: u32,
    /// The negative errno that caused a fallback, or (when the call
    /// failed) the one it returned; else 0.
    pub cause: i32,
    /// Zero.
    pub _pad: u32,
    /// Device VMs (bit = `svm_device_info.index`) whose attributes this call
    /// set, and those that refused them (found gone, or no link to the
    /// target for a device other than the accessing one): those keep
    /// their own (svm_range_query shows each VM's).
    pub vms_applied: u64,
    /// Device VMs that refused the attributes (their errno was not fatal).
    pub vms_refused: u64,
}

/// A caller's result struct, NULL or with its `struct_size` set: checked
/// before the call does anything, so that a bad one leaves nothing done.
///
/// # Safety
/// `r` is NULL or points to a readable svm_alloc_result.
pub(super) unsafe fn check_result(r: *const svm_alloc_result) -> FfiResult {
    // SAFETY: the caller's contract.
    match unsafe { r.as_ref() } {
        Some(r) if r.struct_size < 8 => Err(invalid("result->struct_size is not sizeof(svm_alloc_result)")),
        _ => Ok(()),
    }
}

pub(super) fn fill_result(c: &svm_context, r: *mut svm_alloc_result, p: &Placed) -> FfiResult {
    // SAFETY: caller's struct (optional).
    let Some(r) = (unsafe { r.as_mut() }) else { return Ok(()) };
    let mut flags = 0;
    flags |= if p.in_place { SVM_RESULT_IN_PLACE } else { 0 };
    flags |= if p.fell_back { SVM_RESULT_FELL_BACK } else { 0 };
    flags |= if p.pinned { SVM_RESULT_PINNED } else { 0 };
    flags |= if p.verified { SVM_RESULT_VERIFIED } else { 0 };
    flags |= if p.on_fault { SVM_RESULT_ON_FAULT } else { 0 };
    flags |= if p.split { SVM_RESULT_SPLIT } else { 0 };
    let v = svm_alloc_result {
        struct_size: 0,
        flags,
        pagemap: p.pagemap.map_or(svm_pagemap::default(), |pm| c.pagemap_id(pm)),
        bytes_moved: p.bytes_moved,
        retries: p.retries,
        ioctls: p.ioctls,
        cause: p.cause.map_or(0, |e| e.to_status()),
        _pad: 0,
        vms_applied: p.vms_applied,
        vms_refused: p.vms_refused,
    };
    write_sized(r, r.struct_size, v, |v, n| v.struct_size = n)
}

/// Makes [start, start+size) resident in `target` for accesses by `device`
/// (docs/design.md, "The placement flow"). Without SVM_ALLOC_ENGINE this is
/// an explicit request and honoured exactly: the whole span asked moves to
/// `target` before the call returns, or the call falls back and says so
/// (SVM_RESULT_FELL_BACK, `cause`), or fails; no split, no deferral to a
/// fault, no pin, no widening. The kernel migrates whole SVM ranges (up to
/// a 2 MiB chunk inside one mapping and one VMA), so where no madvise cut
/// the span's end chunk, the rest of that chunk, a packed neighbour's bytes
/// too, moves along, as with the runtime's own prefetch; and a madvise
/// that cuts a range in VRAM sends it back to system memory. Where such a
/// move may have taken a neighbour the library placed in another VRAM, its
/// place is recorded unknown (svm_range_query says so) and its next
/// request looks at the page table and moves it. With SVM_ALLOC_ENGINE (`target` is resolve's
/// answer) the engine may also use step 5 and the choices that flag names.
/// 1. already there by the library's record, the accessing device's VM keeps
///    it there (its preferred location, or, for SVM_ALLOC_ENGINE, a binding
///    to system memory of a span of at most 256 KiB: the GPU takes no fault
///    there), and the process's page table agrees (read only when the last
///    reading is older than observe_ttl_ns; one sample where it is older
///    than the svm_launch_report of a launch that used the range; a page
///    per 2 MiB chunk): returns at once, zero ioctls; an explicit request
///    the record does not place there issues its prefetch unless every page
///    is there already (a page per chunk does not say so: a chunk a madvise
///    cut moves in pieces), and one over a span part of which nothing maps
///    is -EFAULT (every page is looked at after its prefetch); an explicit request whose VM keeps it there by
///    a preferred location the kernel may have reset since (a mirror with
///    MADVISE_AUTORESET) goes on to step 2, as the runtime would;
/// 2. preferred location set to the same value on every device VM (where
///    `target` is the accessing device's own VRAM, the kernel's default,
///    DEFAULT_DEVICE, on every VM: another device's faults then take what
///    its kernel touches into its own VRAM, a move a reader without PFNs
///    does not see, so a later call finds the range in place as the record
///    believes it; SVM_RESULT_VERIFIED then says only that its pages are
///    away from system memory), skipping
///    madvise calls whose effect is recorded (not, where the kernel may
///    have reset it, a value other than its default); the madvise covers
///    the rest of the span's end 2 MiB chunks where the library records
///    nothing there (the kernel migrates whole 2 MiB ranges, the rest of
///    such a chunk with the span as without any advice, and a cut inside
///    one makes it migrate in 4 KiB pieces);
///    where the records hold the
///    span in pieces, the madvise covers only the VMAs whose preferred
///    location differs (VM_QUERY_MEM_RANGE_ATTRS: a cut inside a range in
///    VRAM would evict it); an engine placement of an atomic span
///    (SVM_ALLOC_IGNORE_THRASH_GUARD) into the accessing device's VRAM is
///    not advised where the madvise would cut a 2 MiB chunk it shares and
///    its atomic mode is the default or global one (atomics then fault into
///    local VRAM whatever the preferred location says): the rest of that
///    chunk moves with it, and its records that named another VRAM say so;
/// 3. VM_BIND PREFETCH with a user fence, then a wait;
/// 4. every errno gets a defined answer: EINTR/EAGAIN restart (until 250 ms
///    after the first interruption); a bind fence not signalled within the
///    context's bind_timeout_ns (1 s by default) is -ETIME;
///    EBUSY (or a prefetch that claimed success but left the range
///    elsewhere) evicts to system and retries once; ENOMEM/ENOSPC evicts
///    this context's least recently used ranges from the pagemap and retries
///    once; then falls back (peer -> local VRAM -> system) unless
///    SVM_ALLOC_NO_FALLBACK; ENOLINK marks the link absent and falls back;
///    ENODEV/ECANCELED mark the device dead and are returned, the accessing
///    device's or the target's owner's (a target on a lost device never
///    falls back, whether the call or an earlier one found the loss);
///    EINVAL/EFAULT are returned;
/// 5. (SVM_ALLOC_ENGINE only) the thrash guard: a range that moved thrash_max_moves times within
///    the window, about as often as it was used (a CPU pulling it back counts,
///    seen in the page table), stays where it is (SVM_RESULT_PINNED), or
///    in system memory where the accessing device cannot reach where it is
///    (no link): then it moves there once, also reported as pinned.
///
/// `result` may be NULL; otherwise set `result->struct_size` first. It is
/// filled on failure too (once the arguments are valid): where the range is
/// believed to be now, the retries, ioctls and VMs of the attempt, and the
/// errno in `cause`.
/// Errors: -EINVAL (bad range, unknown pagemap or device, unknown flags),
/// -ENODEV/-ECANCELED (device gone), or the errno that ended the attempt.
/// Thread-safe: racing placements of overlapping ranges are serialized, the
/// last one wins, and no content is lost.
#[no_mangle]
pub unsafe extern "C" fn svm_alloc_vram(
    ctx: *mut svm_context,
    device: svm_device,
    start: u64,
    size: u64,
    target: svm_pagemap,
    flags: u32,
    result: *mut svm_alloc_result,
) -> c_int {
    guard("svm_alloc_vram", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        let f = AllocFlags::from_bits(flags).ok_or_else(|| invalid(format!("unknown flags {flags:#x}")))?;
        // SAFETY: `result` is NULL or points to a caller's svm_alloc_result (the header's contract).
        unsafe { check_result(result)? };
        let h = c.device(device)?;
        let pm = c.pagemap(target)?;
        let o = c.ctx.alloc_vram_outcome(h, start, size, pm, f);
        fill_result(c, result, &o.placed)?;
        o.result.map_err(|e| span_failure(e, start, size))
    })
}

/// Sends [start, start+size) back to system memory on every device that
/// holds any of it. `result` may be NULL. Thread-safe. The page table is
/// read page by page (one PAGEMAP_SCAN per run of pages alike): nothing is
/// issued only where every page is in system memory, and
/// SVM_RESULT_VERIFIED says every page is there after. `bytes_moved` is
/// what it showed outside system memory, or the whole span where it cannot
/// be read.
#[no_mangle]
pub unsafe extern "C" fn svm_evict(ctx: *mut svm_context, start: u64, size: u64, result: *mut svm_alloc_result) -> c_int {
    guard("svm_evict", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `result` is NULL or points to a caller's svm_alloc_result (the header's contract).
        unsafe { check_result(result)? };
        let p = c.ctx.evict(start, size).map_err(|e| span_failure(e, start, size))?;
        fill_result(c, result, &p)
    })
}

/// Sets the preferred location of a range on every device VM: a VRAM
/// pagemap (by fd + region instance on kernels that support multi-device
/// madvise; devices without a link to it keep theirs, and the link is
/// recorded absent) or system memory (DEFAULT_SYSTEM). The owner's own VM
/// keeps DEFAULT_DEVICE where that means the same VRAM. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_set_preferred_location(ctx: *mut svm_context, start: u64, size: u64, pagemap: svm_pagemap) -> c_int {
    guard("svm_set_preferred_location", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        let pm = c.pagemap(pagemap)?;
        c.ctx.set_preferred(start, size, pm).map_err(|e| span_failure(e, start, size))
    })
}

/// Forgets a preferred location set with svm_set_preferred_location: every
/// device VM gets the kernel's default back (DEFAULT_DEVICE: the faulting
/// tile's VRAM), skipping VMs whose recorded value already is. Errors:
/// -EINVAL (bad range), or the madvise's errno. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_clear_preferred_location(ctx: *mut svm_context, start: u64, size: u64) -> c_int {
    guard("svm_clear_preferred_location", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        c.ctx.clear_preferred(start, size).map_err(|e| span_failure(e, start, size))
    })
}

/// Sets the preferred location of a range on the VMs of one device only (its
/// tiles' VMs where it has one per tile), as Level Zero's
/// zeCommandListAppendMemAdvise(hDevice, ...) and Intel's compute runtime
/// apply it; other devices keep theirs. Where the kernel may have reset the
/// range's attributes since the library recorded them (a mirror bound with
/// MADVISE_AUTORESET: memory the GPU used was freed), the madvise is issued
/// on every call, as the runtime would. svm_resolve_pagemap honours it for
/// that device. Errors: -EINVAL (bad range, pagemap, a handle never
/// opened), -EBADF (a closed device), -ENODEV/-ECANCELED (device gone), -ENOLINK (the device
/// cannot reach that VRAM), or the madvise's errno. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_set_preferred_location(ctx: *mut svm_context, device: svm_device, start: u64, size: u64, pagemap: svm_pagemap) -> c_int {
    guard("svm_device_set_preferred_location", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        let h = c.device(device)?;
        let pm = c.pagemap(pagemap)?;
        c.ctx.set_preferred_on(Some(h), start, size, pm).map_err(|e| span_failure(e, start, size))
    })
}

/// svm_clear_preferred_location on one device's VMs only. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_clear_preferred_location(ctx: *mut svm_context, device: svm_device, start: u64, size: u64) -> c_int {
    guard("svm_device_clear_preferred_location", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        let h = c.device(device)?;
        c.ctx.clear_preferred_on(Some(h), start, size).map_err(|e| span_failure(e, start, size))
    })
}

/// The read-mostly hint (Level Zero SET_READ_MOSTLY with `on` = 1,
/// CLEAR_READ_MOSTLY with 0): the range is read by several devices and
/// rarely written. The Xe kernel has no replication and no attribute for it,
/// so no ioctl is issued; svm_resolve_pagemap then answers a read with where
/// the range lies if that is system memory or the reader's own VRAM, else
/// system memory, which every device reads (an explicit preferred location
/// still wins). Writes and atomics ignore it. Errors: -EINVAL (bad range).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_set_read_mostly(ctx: *mut svm_context, start: u64, size: u64, on: bool) -> c_int {
    guard("svm_set_read_mostly", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        c.ctx.set_read_mostly(start, size, on).map_err(|e| span_failure(e, start, size))
    })
}

/// Atomic modes for svm_set_atomic_mode (DRM_XE_ATOMIC_*): the default
/// (GPU and CPU atomics; GPU atomics need VRAM).
pub const SVM_ATOMIC_UNDEFINED: u32 = 0;
/// GPU atomics only.
pub const SVM_ATOMIC_DEVICE: u32 = 1;
/// GPU and CPU atomics.
pub const SVM_ATOMIC_GLOBAL: u32 = 2;
/// CPU atomics only. A GPU atomic on such a range is an unrecoverable GPU
/// page fault in the kernel (`xe_vma_need_vram_for_atomic`): the queue is
/// killed, no errno reaches the application. svm_resolve_pagemap answers
/// -EACCES for an atomic access so that a runtime can refuse the launch.
pub const SVM_ATOMIC_CPU: u32 = 3;

/// Sets the atomic mode of a range on every device VM, re-issued where the
/// kernel may have reset it (as svm_device_set_preferred_location says).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_set_atomic_mode(ctx: *mut svm_context, start: u64, size: u64, mode: u32) -> c_int {
    guard("svm_set_atomic_mode", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        if mode > SVM_ATOMIC_CPU {
            return Err(invalid(format!("mode {mode} is not an SVM_ATOMIC_* value")));
        }
        c.ctx.set_atomic(start, size, mode).map_err(|e| span_failure(e, start, size))
    })
}

/// Sets the atomic mode of a range on one device's VMs only: Level Zero's
/// atomic attributes (zeMemSetAtomicAccessAttributeExp) are per device.
/// docs/integration.md maps the ze flags onto modes as Intel's compute
/// runtime does. Errors: -EINVAL (bad range or mode, a handle never
/// opened), -EBADF (a closed device), -ENODEV/-ECANCELED (device gone), or the madvise's
/// errno. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_device_set_atomic_mode(ctx: *mut svm_context, device: svm_device, start: u64, size: u64, mode: u32) -> c_int {
    guard("svm_device_set_atomic_mode", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        if mode > SVM_ATOMIC_CPU {
            return Err(invalid(format!("mode {mode} is not an SVM_ATOMIC_* value")));
        }
        let h = c.device(device)?;
        c.ctx.set_atomic_on(Some(h), start, size, mode).map_err(|e| span_failure(e, start, size))
    })
}
