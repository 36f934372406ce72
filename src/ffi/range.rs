//! The range and statistics calls from C: `svm_range_invalidate`,
//! `svm_range_query` and `svm_get_stats`. Checks and conversions only; the
//! work is `crate::policy::Context`'s.

use core::ffi::c_int;

use super::context::{context, svm_context, svm_device, svm_pagemap};
use super::placement::span_failure;
use super::types::{page_table_to_c, write_sized, SVM_PLACE_MIXED, SVM_PLACE_SYSTEM, SVM_PLACE_UNPOPULATED, SVM_PLACE_VRAM};
use super::{guard, out};

/// Tells the library that what it knows of a range's residency is stale
/// (the CPU touched it, or it was freed and reused); the next svm_alloc_vram
/// acts instead of trusting its record. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_range_invalidate(ctx: *mut svm_context, start: u64, size: u64) -> c_int {
    guard("svm_range_invalidate", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        c.ctx.invalidate(start, size).map_err(|e| span_failure(e, start, size))
    })
}

/// One device's attributes over a queried range.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct svm_range_device {
    /// The device.
    pub device: svm_device,
    /// As the kernel reports it: 0 default device, -1 default system, else
    /// the fd of the preferred device.
    pub preferred_fd: i32,
    /// DRM_XE_ATOMIC_* / SVM_ATOMIC_*.
    pub atomic_mode: u32,
    /// VMAs the range spans on that VM (more than 1: attributes vary inside;
    /// the values above are the first VMA's).
    pub vmas: u32,
    /// Zero.
    pub _pad: u32,
}

/// Devices a range query reports: every device a context can hold. (The
/// array is the struct's last field, so a caller built with a smaller
/// array gets the prefix its `struct_size` covers.)
pub const SVM_RANGE_MAX_DEVICES: usize = 64;
const _: () = assert!(SVM_RANGE_MAX_DEVICES == crate::policy::MAX_DEVICES);

/// `svm_range_info.flags`: `residency` is known to the library.
pub const SVM_RANGE_RESIDENCY_KNOWN: u32 = 1 << 0;
/// `observed_*` hold what the process's page table showed.
pub const SVM_RANGE_OBSERVED: u32 = 1 << 1;
/// The thrash guard pins it now.
pub const SVM_RANGE_PINNED: u32 = 1 << 2;
/// `preferred` holds a preferred location set by the runtime: for every
/// device, or per device where every device given one has the same.
pub const SVM_RANGE_PREFERRED_SET: u32 = 1 << 3;

/// What svm_range_query answers.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct svm_range_info {
    /// In: `sizeof(svm_range_info)`; out: bytes written.
    pub struct_size: u32,
    /// `SVM_RANGE_*` bits.
    pub flags: u32,
    /// Where the library believes the span is (with `SVM_RANGE_RESIDENCY_KNOWN`).
    pub residency: svm_pagemap,
    /// The preferred location the runtime set (with `SVM_RANGE_PREFERRED_SET`).
    pub preferred: svm_pagemap,
    /// With SVM_RANGE_OBSERVED, what the process's page table shows:
    /// SVM_PLACE_UNPOPULATED, SVM_PLACE_SYSTEM, SVM_PLACE_VRAM (no sampled
    /// page is in system memory: device-private pages) or SVM_PLACE_MIXED.
    pub observed_kind: u32,
    /// Pages sampled (one per 2 MiB chunk, at most 16 spread over the span,
    /// and the span's last page where it ends inside a chunk) and how many
    /// of them were not in system memory.
    pub observed_samples: u32,
    /// Sampled pages the page table showed outside system memory.
    pub observed_away: u32,
    /// Moves within the range's thrash window (thrash_window_ns, or
    /// longer for a range whose moves take longer).
    pub moves_in_window: u32,
    /// The pagemap every page not in system memory is in, when it is one
    /// of this context's: named by a privileged page table (PFNs), or the
    /// only VRAM the context ever opened (one device of one tile, where
    /// nothing else could hold them); else 0.
    pub observed_pagemap: svm_pagemap,
    /// Open devices (entries filled: min(ndevices, the entries the caller's
    /// struct_size holds)).
    pub ndevices: u32,
    /// Zero.
    pub _pad: u32,
    /// Per device, the first `num_devices` entries.
    pub devices: [svm_range_device; SVM_RANGE_MAX_DEVICES],
}

impl Default for svm_range_info {
    fn default() -> Self {
        svm_range_info {
            struct_size: 0,
            flags: 0,
            residency: svm_pagemap::default(),
            preferred: svm_pagemap::default(),
            observed_kind: 0,
            observed_samples: 0,
            observed_away: 0,
            moves_in_window: 0,
            observed_pagemap: svm_pagemap::default(),
            ndevices: 0,
            _pad: 0,
            devices: [svm_range_device::default(); SVM_RANGE_MAX_DEVICES],
        }
    }
}

/// Attributes of a range on every device VM (asked of the kernel with
/// VM_QUERY_MEM_RANGE_ATTRS) and the library's knowledge of its residency.
/// Set `info->struct_size` first. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_range_query(ctx: *mut svm_context, start: u64, size: u64, info: *mut svm_range_info) -> c_int {
    guard("svm_range_query", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `info` is NULL or points to writable memory for its type (the header's contract).
        let i = unsafe { out(info, "info")? };
        let q = c.ctx.query(start, size).map_err(|e| span_failure(e, start, size))?;
        let mut v = svm_range_info::default();
        if let Some(r) = q.residency {
            v.flags |= SVM_RANGE_RESIDENCY_KNOWN;
            v.residency = c.pagemap_id(r);
        }
        if let Some(p) = q.preferred {
            v.flags |= SVM_RANGE_PREFERRED_SET;
            v.preferred = c.pagemap_id(p);
        }
        if q.pinned {
            v.flags |= SVM_RANGE_PINNED;
        }
        if let Some(o) = q.observed {
            v.flags |= SVM_RANGE_OBSERVED;
            v.observed_kind = if o.unpopulated == o.samples {
                SVM_PLACE_UNPOPULATED
            } else if o.in_system() {
                SVM_PLACE_SYSTEM
            } else if o.all_away() {
                SVM_PLACE_VRAM
            } else {
                SVM_PLACE_MIXED
            };
            (v.observed_samples, v.observed_away) = (o.samples, o.away);
            if let Some(pm) = q.observed_pagemap {
                v.observed_pagemap = c.pagemap_id(pm);
            }
        }
        v.moves_in_window = q.moves_in_window;
        v.ndevices = q.devices.len() as u32;
        for (slot, d) in v.devices.iter_mut().zip(&q.devices) {
            *slot = svm_range_device { device: c.device_id(d.device), preferred_fd: d.preferred_fd, atomic_mode: d.atomic, vmas: d.vmas, _pad: 0 };
        }
        write_sized(i, i.struct_size, v, |v, n| v.struct_size = n)
    })
}

/// Statistics of a context (monotonic counters).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct svm_stats {
    /// In: `sizeof(svm_stats)`; out: bytes written.
    pub struct_size: u32,
    /// Zero.
    pub _pad: u32,
    /// svm_resolve_pagemap calls.
    pub resolve_calls: u64,
    /// svm_alloc_vram calls.
    pub alloc_calls: u64,
    /// svm_evict calls.
    pub evict_calls: u64,
    /// alloc_vram calls answered in place (zero ioctls).
    pub in_place: u64,
    /// Ioctls the library issued.
    pub ioctls: u64,
    /// MADVISE ioctls issued.
    pub madvise: u64,
    /// PREFETCH binds issued.
    pub prefetch: u64,
    /// alloc_vram calls that moved data, and the bytes.
    pub migrations: u64,
    /// Bytes migrated by placements (each call's `bytes_moved`).
    pub bytes_moved: u64,
    /// All retries.
    pub retries: u64,
    /// Retries after EBUSY (evict and retry once).
    pub retries_ebusy: u64,
    /// Retries after ENOMEM or ENOSPC (make room and retry once).
    pub retries_enomem: u64,
    /// EINTR/EAGAIN restarts.
    pub retries_eintr: u64,
    /// ENOLINK answers (links marked absent).
    pub errors_enolink: u64,
    /// ENODEV/ECANCELED answers (devices marked dead).
    pub errors_enodev: u64,
    /// Other errnos.
    pub errors_other: u64,
    /// Prefetches that reported success but left the range elsewhere.
    pub unverified: u64,
    /// Placements that fell back.
    pub fallbacks: u64,
    /// Placements the thrash guard pinned.
    pub pins: u64,
    /// Ranges evicted to make room after ENOMEM/ENOSPC.
    pub lru_evictions: u64,
    /// svm_evict calls that moved data.
    pub evictions: u64,
    /// How the context reads the process's page table: SVM_PAGE_TABLE_*.
    pub page_table: u32,
    /// Nonzero: the reads carry PFNs (CAP_SYS_ADMIN), naming devices.
    pub page_table_privileged: u32,
    /// Page-table reads (one syscall each), checks answered without one
    /// (fresh observation, or settled in system memory), and failed reads.
    pub observe_reads: u64,
    /// Checks answered without a read (fresh, or settled in system memory).
    pub observe_fresh: u64,
    /// Failed page-table reads.
    pub observe_errors: u64,
    /// Successful SVM_ALLOC_ENGINE placements by the strategy the default
    /// engine ran: left to the launch's faults (its faults' strategy, or
    /// the runtime's prefetch the library left to them where devices take
    /// turns at the span or the launch has no room). This field and the
    /// next two came after 0.3.0's first build: an older library writes up
    /// to `observe_errors`, and its `struct_size` out says so.
    pub engine_faults: u64,
    /// Prefetched as the runtime would, or found in place by that strategy.
    pub engine_prefetch: u64,
    /// Decided by the rule cascade (every one under
    /// SVM_CONTEXT_ENGINE_RULES; otherwise where launch reports showed it
    /// cheaper): served in place, held, born split, moved, or left to the
    /// fault by its own rule.
    pub engine_cascade: u64,
}


/// The context's statistics. Set `stats->struct_size` first. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_get_stats(ctx: *mut svm_context, stats: *mut svm_stats) -> c_int {
    guard("svm_get_stats", || {
        // SAFETY: `ctx` is NULL or a live context from svm_context_create (the header's contract).
        let c = unsafe { context(ctx)? };
        // SAFETY: `stats` is NULL or points to writable memory for its type (the header's contract).
        let s = unsafe { out(stats, "stats")? };
        let k = c.ctx.stats();
        let (page_table, page_table_privileged) = page_table_to_c(c.ctx.page_table());
        let v = svm_stats {
            struct_size: 0,
            _pad: 0,
            resolve_calls: k.resolve_calls,
            alloc_calls: k.alloc_calls,
            evict_calls: k.evict_calls,
            in_place: k.in_place,
            ioctls: k.ioctls,
            madvise: k.madvise,
            prefetch: k.prefetch,
            migrations: k.migrations,
            bytes_moved: k.bytes_moved,
            retries: k.retries,
            retries_ebusy: k.retries_ebusy,
            retries_enomem: k.retries_enomem,
            retries_eintr: k.retries_eintr,
            errors_enolink: k.errors_enolink,
            errors_enodev: k.errors_enodev,
            errors_other: k.errors_other,
            unverified: k.unverified,
            fallbacks: k.fallbacks,
            pins: k.pins,
            lru_evictions: k.lru_evictions,
            evictions: k.evictions,
            page_table,
            page_table_privileged,
            observe_reads: k.observe_reads,
            observe_fresh: k.observe_fresh,
            observe_errors: k.observe_errors,
            engine_faults: k.engine_faults,
            engine_prefetch: k.engine_prefetch,
            engine_cascade: k.engine_cascade,
        };
        write_sized(s, s.struct_size, v, |v, n| v.struct_size = n)
    })
}
