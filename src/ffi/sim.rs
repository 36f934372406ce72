//! `svm_sim_*`: the simulated Xe driver from C. A runtime's tests open
//! simulated devices, issue raw ioctls with the real uAPI structs, play GPU
//! and CPU accesses, and read ground truth (residency, checksum, clock,
//! counters), with fault injection to drive their error paths.

use core::ffi::{c_char, c_int, c_ulong, c_void};
use std::sync::Arc;

use super::types::{svm_access, svm_sim, write_sized, SVM_PAGE_TABLE_NONE, SVM_PAGE_TABLE_READ, SVM_PAGE_TABLE_SCAN, SVM_ACCESS_ATOMIC, SVM_ACCESS_READ, SVM_ACCESS_WRITE, SVM_PLACE_MIXED, SVM_PLACE_SYSTEM, SVM_PLACE_UNPOPULATED, SVM_PLACE_VRAM};
use super::{cstr, guard, invalid, out, FfiResult, Failure};
use crate::driver::{PageTableAccess, PageTableSource};
use crate::errno::Errno;
use crate::sim::{Access, Injection, Placement, Point, Sim, Topology};


pub(crate) fn access_from_c(a: svm_access) -> Result<Access, Failure> {
    match a {
        SVM_ACCESS_READ => Ok(Access::Read),
        SVM_ACCESS_WRITE => Ok(Access::Write),
        SVM_ACCESS_ATOMIC => Ok(Access::Atomic),
        other => Err(invalid(format!("access {other} is not SVM_ACCESS_READ, _WRITE or _ATOMIC (a simulated access)"))),
    }
}

/// `svm_sim_mmap` flag: file-backed memory (never placed in VRAM).
pub const SVM_SIM_MAP_FILE: u32 = 1;

/// Where a span lives (ground truth).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct svm_sim_residency {
    /// One of `SVM_PLACE_*`.
    pub kind: u32,
    /// For `SVM_PLACE_VRAM`: the simulated device index.
    pub device: u32,
    /// For `SVM_PLACE_VRAM`: the region instance on that device (tile + 1).
    pub instance: u16,
    /// Zero.
    pub _pad: [u16; 3],
}

/// Injection points for `svm_sim_injection.point`: a migration to VRAM
/// (`drm_pagemap_populate_mm`).
pub const SVM_SIM_INJECT_MIGRATE: u32 = 0;
/// Creating the VRAM allocation of a migration.
pub const SVM_SIM_INJECT_VRAM_ALLOC: u32 = 1;
/// Entry of an ioctl (optionally one request only).
pub const SVM_SIM_INJECT_IOCTL: u32 = 2;
/// The device goes away at its next ioctl; that and every later call fail
/// with the errno (-ENODEV: unplugged, -ECANCELED: wedged).
pub const SVM_SIM_INJECT_DEVICE_REMOVAL: u32 = 3;

/// A failure to inject. Zero-initialise, set `struct_size`, then the fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct svm_sim_injection {
    /// `sizeof(svm_sim_injection)`.
    pub struct_size: u32,
    /// One of `SVM_SIM_INJECT_*`.
    pub point: u32,
    /// Only this device index; -1 for any.
    pub device: i32,
    /// `SVM_SIM_INJECT_IOCTL` only: this request number; 0 for any.
    pub request: u32,
    /// The status to fail with: a negative errno such as -EBUSY.
    pub error: i32,
    /// Zero.
    pub _pad: u32,
    /// Hits to let through before failing.
    pub skip: u64,
    /// Failures to inject (when `probability` is 0).
    pub count: u64,
    /// In (0, 1]: fail each hit with this probability, forever (seeded).
    pub probability: f64,
    /// Seed of the probability draw.
    pub seed: u64,
}

/// Event counts of a simulator (see the Rust `CounterSnapshot` docs).
/// Set `struct_size` before calling `svm_sim_get_counters`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct svm_sim_counters {
    /// In: `sizeof(svm_sim_counters)`; out: the bytes written.
    pub struct_size: u32,
    /// Zero.
    pub _pad: u32,
    /// Ioctls the simulated driver answered.
    pub ioctls: u64,
    /// GPU page faults serviced.
    pub gpu_faults: u64,
    /// GPU faults that failed.
    pub gpu_fault_errors: u64,
    /// CPU faults on device pages.
    pub cpu_faults: u64,
    /// CPU faults that waited out an atomic timeslice.
    pub timeslice_waits: u64,
    /// Migrations into VRAM.
    pub migrations_to_vram: u64,
    /// Migrations back to system memory.
    pub migrations_to_system: u64,
    /// Migrations between devices.
    pub migrations_device_to_device: u64,
    /// Bytes copied into VRAM.
    pub bytes_to_vram: u64,
    /// Bytes copied back to system memory.
    pub bytes_to_system: u64,
    /// Bytes copied between devices.
    pub bytes_device_to_device: u64,
    /// Migrations of 4 KiB ranges.
    pub migrations_4k: u64,
    /// Migrations of 64 KiB ranges.
    pub migrations_64k: u64,
    /// Migrations of 2 MiB ranges.
    pub migrations_2m: u64,
    /// VRAM allocations evicted under pressure.
    pub evictions: u64,
    /// Bytes they held.
    pub evicted_bytes: u64,
    /// populate_mm EBUSY answered by evict and retry once.
    pub migrate_retries: u64,
    /// Migrations that failed.
    pub migrate_errors: u64,
    /// Prefetched ranges whose failure became success (ENODATA).
    pub prefetch_swallowed: u64,
    /// GPU TLB invalidations (per tile).
    pub tlb_invalidations: u64,
    /// MADVISE ioctls.
    pub madvise_calls: u64,
    /// Ranges prefetches walked.
    pub prefetch_ranges: u64,
    /// Bytes GPUs accessed in place (remote).
    pub remote_access_bytes: u64,
    /// Injected failures fired.
    pub injected: u64,
    /// Reads of the simulated process's page table (one syscall each) and
    /// pages they walked: the cost the library's observation puts on the clock.
    pub page_table_reads: u64,
    /// Pages those reads walked.
    pub page_table_pages: u64,
    /// First touches of never-populated pages in VRAM (cleared on the GPU,
    /// nothing copied, not in the bytes_* counters) and the bytes cleared.
    pub vram_clears: u64,
    /// Bytes cleared on first touch.
    pub bytes_cleared: u64,
    /// Where the simulated time went, ns: every advance of the clock is
    /// charged to one of these seven, so they sum to svm_sim_clock_ns. GPU
    /// accesses outside the accessing tile's VRAM (over a link or from
    /// system memory).
    pub time_remote_access_ns: u64,
    /// Copies between system memory and VRAM or between devices, VRAM
    /// clears on first touch, waits for a timeslice before an eviction.
    pub time_migration_ns: u64,
    /// GPU and CPU fault service (a CPU fault's timeslice wait included).
    pub time_fault_ns: u64,
    /// GPU TLB invalidations (unbinds, madvise, munmap).
    pub time_tlb_ns: u64,
    /// The process's calls: ioctls and page-table reads.
    pub time_calls_ns: u64,
    /// GPU accesses to the accessing device's own VRAM (bytes touched
    /// over its local bandwidth). Appended in 0.3.0, like the next.
    pub time_local_access_ns: u64,
    /// Launches' compute beyond their memory time.
    pub time_compute_ns: u64,
}

unsafe fn sim_ref<'a>(sim: *const svm_sim) -> Result<&'a Arc<Sim>, Failure> {
    // SAFETY: non-NULL handles come from svm_sim_create* (caller contract).
    unsafe { sim.as_ref() }.map(|s| &s.sim).ok_or_else(|| invalid("sim is NULL"))
}

fn publish(sim: Arc<Sim>, out_ptr: *mut *mut svm_sim) -> FfiResult {
    // SAFETY: out_ptr checked non-NULL by the caller of publish.
    unsafe { *out_ptr = Box::into_raw(Box::new(svm_sim { sim })) };
    Ok(())
}

/// Creates a simulator from a preset: "dgpu", "2dgpu-p2p", "2dgpu-nolink",
/// "4dgpu-p2p", "max-node" or "igpu". Errors: -EINVAL (NULL, unknown name).
#[no_mangle]
pub unsafe extern "C" fn svm_sim_create(preset: *const c_char, sim: *mut *mut svm_sim) -> c_int {
    guard("svm_sim_create", || {
        // SAFETY: `sim` is NULL or points to writable memory for its type (the header's contract).
        unsafe { out(sim, "sim")? };
        // SAFETY: `preset` is NULL or a NUL-terminated string (the header's contract).
        let name = unsafe { cstr(preset, "preset")? };
        publish(Sim::from_preset(name).map_err(invalid)?, sim)
    })
}

/// Creates a simulator from a topology file (format: README, "Topology
/// files"). Errors: -EINVAL with the line and field in svm_last_error()
/// for a bad file, -ENOENT and friends when it cannot be read.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_create_from_file(path: *const c_char, sim: *mut *mut svm_sim) -> c_int {
    guard("svm_sim_create_from_file", || {
        // SAFETY: `sim` is NULL or points to writable memory for its type (the header's contract).
        unsafe { out(sim, "sim")? };
        // SAFETY: `path` is NULL or a NUL-terminated string (the header's contract).
        let path = unsafe { cstr(path, "path")? };
        let text = std::fs::read_to_string(path).map_err(|e| Failure {
            errno: Errno(e.raw_os_error().unwrap_or(libc::EIO)),
            message: format!("{path}: {e}"),
        })?;
        let topo = Topology::parse(&text).map_err(|e| invalid(format!("{path}: {e}")))?;
        publish(Sim::new(topo).map_err(invalid)?, sim)
    })
}

/// Creates a simulator from topology text (the file format, in memory).
#[no_mangle]
pub unsafe extern "C" fn svm_sim_create_from_text(text: *const c_char, sim: *mut *mut svm_sim) -> c_int {
    guard("svm_sim_create_from_text", || {
        // SAFETY: `sim` is NULL or points to writable memory for its type (the header's contract).
        unsafe { out(sim, "sim")? };
        // SAFETY: `text` is NULL or a NUL-terminated string (the header's contract).
        let text = unsafe { cstr(text, "text")? };
        let topo = Topology::parse(text).map_err(|e| invalid(format!("topology: {e}")))?;
        publish(Sim::new(topo).map_err(invalid)?, sim)
    })
}

/// Releases the caller's reference; contexts using the simulator keep it
/// alive until they are destroyed. NULL is a no-op. Returns 0.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_destroy(sim: *mut svm_sim) -> c_int {
    guard("svm_sim_destroy", || {
        if !sim.is_null() {
            // SAFETY: created by Box::into_raw in publish; destroyed once (caller contract).
            drop(unsafe { Box::from_raw(sim) });
        }
        Ok(())
    })
}

/// Number of simulated devices.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_device_count(sim: *const svm_sim, count: *mut u32) -> c_int {
    guard("svm_sim_device_count", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        // SAFETY: `count` is NULL or points to writable memory for its type (the header's contract).
        *unsafe { out(count, "count")? } = s.topology().devices.len() as u32;
        Ok(())
    })
}

/// Opens simulated device `index` like a render node: `*fd` is a real,
/// process-unique descriptor that only this simulator understands (pass it
/// to svm_sim_ioctl, or as a madvise devmem_fd). Errors: -ENODEV (no such
/// device, or unplugged), -ECANCELED (wedged: svm_sim_remove_device's
/// errno), or the errno of making the descriptor (-EMFILE, -ENFILE).
#[no_mangle]
pub unsafe extern "C" fn svm_sim_device_open(sim: *mut svm_sim, index: u32, fd: *mut c_int) -> c_int {
    guard("svm_sim_device_open", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        // SAFETY: `fd` is NULL or points to writable memory for its type (the header's contract).
        let fd = unsafe { out(fd, "fd")? };
        *fd = s.open_device(index).map_err(|e| {
            let why = match e {
                Errno::ENODEV => "no such device, or unplugged".to_string(),
                Errno::ECANCELED => "the device is wedged".to_string(),
                e => format!("its descriptor could not be made: {e}"),
            };
            Failure { errno: e, message: format!("simulated device {index}: {why}") }
        })?;
        Ok(())
    })
}

/// Closes an fd from svm_sim_device_open; its VMs go away. -EBADF if unknown.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_device_close(sim: *mut svm_sim, fd: c_int) -> c_int {
    // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
    guard("svm_sim_device_close", || Ok(unsafe { sim_ref(sim)? }.close_device(fd)?))
}

/// Issues an ioctl on a simulated device fd with the real uAPI structs (the
/// kernel's <drm/xe_drm.h>, or <xesvm/xe_drm.h>: the same layouts and values
/// under xesvm_/XESVM_-prefixed names): exactly what ioctl(2) on an Xe render
/// node takes. Returns 0 or the kernel's negative errno (docs/xe-uapi.md §6);
/// bad user pointers give -EFAULT.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_ioctl(sim: *mut svm_sim, fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    guard("svm_sim_ioctl", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        let req = u32::try_from(request).map_err(|_| Failure::from(Errno::ENOTTY))?;
        // SAFETY: as ioctl(2); the simulator reads user memory through uaccess.
        unsafe { s.ioctl(fd, req, arg) }.map_err(|e| Failure { errno: e, message: format!("ioctl {req:#x} failed: {e}") })
    })
}

/// A GPU access by `tile` of the device behind `fd`, in VM `vm_id`, to
/// [start, start+size): runs the GPU fault path where needed and returns
/// what the GPU would see (0, or the failed fault's negative errno). Writes
/// and atomics give each page new content derived from `value`.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_gpu_access(
    sim: *mut svm_sim,
    fd: c_int,
    vm_id: u32,
    tile: u16,
    start: u64,
    size: u64,
    access: svm_access,
    value: u64,
) -> c_int {
    guard("svm_sim_gpu_access", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        let a = access_from_c(access)?;
        Ok(s.gpu_access(fd, vm_id, tile, start, size, a, value)?)
    })
}

/// A CPU access to [start, start+size): device pages are faulted back to
/// system memory first (waiting out any atomic timeslice). SVM_ACCESS_ATOMIC
/// is a CPU write here. -EFAULT on unmapped memory.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_cpu_access(sim: *mut svm_sim, start: u64, size: u64, access: svm_access, value: u64) -> c_int {
    guard("svm_sim_cpu_access", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        let a = access_from_c(access)?;
        Ok(s.cpu_access(start, size, a, value)?)
    })
}

/// Maps [start, start+size) anew in the simulated process (flags:
/// SVM_SIM_MAP_FILE or 0 for anonymous). Everything not munmapped is
/// anonymous memory from the start.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_mmap(sim: *mut svm_sim, start: u64, size: u64, flags: u32) -> c_int {
    guard("svm_sim_mmap", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        if flags & !SVM_SIM_MAP_FILE != 0 {
            return Err(invalid(format!("unknown mmap flags {flags:#x}")));
        }
        Ok(s.mmap(start, size, flags & SVM_SIM_MAP_FILE != 0)?)
    })
}

/// munmap in the simulated process: contents gone, SVM ranges destroyed.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_munmap(sim: *mut svm_sim, start: u64, size: u64) -> c_int {
    // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
    guard("svm_sim_munmap", || Ok(unsafe { sim_ref(sim)? }.munmap(start, size)?))
}

/// How the simulated process may read its page table: `source` is
/// SVM_PAGE_TABLE_NONE, _READ or _SCAN (the default, as on Linux 6.7+), and
/// `privileged` nonzero gives it PFNs (CAP_SYS_ADMIN: pages in VRAM name
/// their device). Contexts read this when they are created. Errors: -EINVAL
/// for another source. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_set_page_table(sim: *mut svm_sim, source: u32, privileged: u32) -> c_int {
    guard("svm_sim_set_page_table", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        let source = match source {
            SVM_PAGE_TABLE_NONE => PageTableSource::Unavailable,
            SVM_PAGE_TABLE_READ => PageTableSource::Read,
            SVM_PAGE_TABLE_SCAN => PageTableSource::Scan,
            other => return Err(invalid(format!("source {other} is not SVM_PAGE_TABLE_NONE, _READ or _SCAN"))),
        };
        Ok(s.set_page_table(PageTableAccess { source, privileged: privileged != 0 })?)
    })
}

/// Where [start, start+size) lives (ground truth, nothing moves).
#[no_mangle]
pub unsafe extern "C" fn svm_sim_get_residency(sim: *const svm_sim, start: u64, size: u64, residency: *mut svm_sim_residency) -> c_int {
    guard("svm_sim_get_residency", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        // SAFETY: `residency` is NULL or points to writable memory for its type (the header's contract).
        let r = unsafe { out(residency, "residency")? };
        if size == 0 || start.checked_add(size).is_none() {
            return Err(invalid("size is zero or the range overflows"));
        }
        *r = match s.placement(start, size) {
            Placement::Unpopulated => svm_sim_residency { kind: SVM_PLACE_UNPOPULATED, ..Default::default() },
            Placement::System => svm_sim_residency { kind: SVM_PLACE_SYSTEM, ..Default::default() },
            Placement::Vram { device, instance } => svm_sim_residency { kind: SVM_PLACE_VRAM, device, instance, _pad: [0; 3] },
            Placement::Mixed => svm_sim_residency { kind: SVM_PLACE_MIXED, ..Default::default() },
        };
        Ok(())
    })
}

/// Bytes of the span in one place: `instance` 0 is system memory, N the
/// VRAM region N of `device`. -EINVAL for a region the device lacks.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_bytes_in(sim: *const svm_sim, start: u64, size: u64, device: u32, instance: u16, bytes: *mut u64) -> c_int {
    guard("svm_sim_bytes_in", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        // SAFETY: `bytes` is NULL or points to writable memory for its type (the header's contract).
        let b = unsafe { out(bytes, "bytes")? };
        *b = s.bytes_in(start, size, device, instance)?;
        Ok(())
    })
}

/// An order-independent checksum of the span's contents, read where each
/// page lives. Equal before and after migrations: nothing was lost.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_checksum(sim: *const svm_sim, start: u64, size: u64, checksum: *mut u64) -> c_int {
    guard("svm_sim_checksum", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        // SAFETY: `checksum` is NULL or points to writable memory for its type (the header's contract).
        *unsafe { out(checksum, "checksum")? } = s.checksum(start, size)?;
        Ok(())
    })
}

/// The simulated clock, in nanoseconds (docs/cost-model.md).
#[no_mangle]
pub unsafe extern "C" fn svm_sim_clock_ns(sim: *const svm_sim, ns: *mut u64) -> c_int {
    guard("svm_sim_clock_ns", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        // SAFETY: `ns` is NULL or points to writable memory for its type (the header's contract).
        *unsafe { out(ns, "ns")? } = s.now_ns();
        Ok(())
    })
}

/// The simulator's counters. Set `counters->struct_size` first.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_get_counters(sim: *const svm_sim, counters: *mut svm_sim_counters) -> c_int {
    guard("svm_sim_get_counters", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        // SAFETY: `counters` is NULL or points to writable memory for its type (the header's contract).
        let c = unsafe { out(counters, "counters")? };
        let k = s.counters();
        let v = svm_sim_counters {
            struct_size: 0,
            _pad: 0,
            ioctls: k.ioctls,
            gpu_faults: k.gpu_faults,
            gpu_fault_errors: k.gpu_fault_errors,
            cpu_faults: k.cpu_faults,
            timeslice_waits: k.timeslice_waits,
            migrations_to_vram: k.migrations_to_vram,
            migrations_to_system: k.migrations_to_system,
            migrations_device_to_device: k.migrations_device_to_device,
            bytes_to_vram: k.bytes_to_vram,
            bytes_to_system: k.bytes_to_system,
            bytes_device_to_device: k.bytes_device_to_device,
            migrations_4k: k.migrations_4k,
            migrations_64k: k.migrations_64k,
            migrations_2m: k.migrations_2m,
            evictions: k.evictions,
            evicted_bytes: k.evicted_bytes,
            migrate_retries: k.migrate_retries,
            migrate_errors: k.migrate_errors,
            prefetch_swallowed: k.prefetch_swallowed,
            tlb_invalidations: k.tlb_invalidations,
            madvise_calls: k.madvise_calls,
            prefetch_ranges: k.prefetch_ranges,
            remote_access_bytes: k.remote_access_bytes,
            injected: k.injected,
            page_table_reads: k.page_table_reads,
            page_table_pages: k.page_table_pages,
            vram_clears: k.vram_clears,
            bytes_cleared: k.bytes_cleared,
            time_remote_access_ns: k.time_remote_access_ns,
            time_migration_ns: k.time_migration_ns,
            time_fault_ns: k.time_fault_ns,
            time_tlb_ns: k.time_tlb_ns,
            time_calls_ns: k.time_calls_ns,
            time_local_access_ns: k.time_local_access_ns,
            time_compute_ns: k.time_compute_ns,
        };
        write_sized(c, c.struct_size, v, |v, n| v.struct_size = n)
    })
}

/// Arms a fault injection. Errors: -EINVAL for an unknown point, an
/// `error` that is not a negative errno svm_strerror names, a device index
/// the simulator lacks, a probability outside [0, 1], or a bad struct_size.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_inject(sim: *mut svm_sim, injection: *const svm_sim_injection) -> c_int {
    guard("svm_sim_inject", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        // SAFETY: caller passes a valid struct (checked non-NULL).
        let i = unsafe { injection.as_ref() }.ok_or_else(|| invalid("injection is NULL"))?;
        if (i.struct_size as usize) < core::mem::size_of::<svm_sim_injection>() {
            return Err(invalid("injection->struct_size is not sizeof(svm_sim_injection)"));
        }
        let point = match i.point {
            SVM_SIM_INJECT_MIGRATE => Point::Migrate,
            SVM_SIM_INJECT_VRAM_ALLOC => Point::VramAlloc,
            SVM_SIM_INJECT_IOCTL => Point::Ioctl,
            SVM_SIM_INJECT_DEVICE_REMOVAL => Point::DeviceRemoval,
            p => return Err(invalid(format!("unknown injection point {p}"))),
        };
        // Only errnos the library can name: a made-up status would reach
        // the caller as a code svm_strerror cannot explain (found by fuzz_calls).
        if i.error >= 0 || Errno(i.error.wrapping_neg()).name().is_none() {
            return Err(invalid(format!("injection->error {} is not a negative errno svm_strerror names", i.error)));
        }
        if !(0.0..=1.0).contains(&i.probability) {
            return Err(invalid("injection->probability must be within [0, 1]"));
        }
        if i.device < -1 || i.device >= s.topology().devices.len() as i32 {
            return Err(invalid(format!("injection->device {} is neither -1 (any) nor a device index", i.device)));
        }
        s.inject(Injection {
            point,
            device: (i.device >= 0).then_some(i.device as u32),
            request: i.request,
            errno: Errno(-i.error),
            skip: i.skip,
            count: i.count,
            probability: i.probability,
            seed: i.seed,
        });
        Ok(())
    })
}

/// Disarms every injection.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_inject_clear(sim: *mut svm_sim) -> c_int {
    guard("svm_sim_inject_clear", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        unsafe { sim_ref(sim)? }.clear_injections();
        Ok(())
    })
}

/// Removes device `index` now: its VRAM contents return to system memory
/// and every later call on it fails with `error` (-ENODEV or -ECANCELED).
#[no_mangle]
pub unsafe extern "C" fn svm_sim_remove_device(sim: *mut svm_sim, index: u32, error: c_int) -> c_int {
    guard("svm_sim_remove_device", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        let s = unsafe { sim_ref(sim)? };
        if error != -libc::ENODEV && error != -libc::ECANCELED {
            return Err(invalid("error must be -ENODEV or -ECANCELED"));
        }
        Ok(s.remove_device(index, Errno(-error))?)
    })
}

/// Checks the simulator's invariants (each page in one place, no region over
/// capacity, exact accounting). -EIO with the broken invariant in
/// svm_last_error() if one does not hold.
#[no_mangle]
pub unsafe extern "C" fn svm_sim_check(sim: *const svm_sim) -> c_int {
    guard("svm_sim_check", || {
        // SAFETY: `sim` is NULL or a live handle from svm_sim_create* (the header's contract).
        unsafe { sim_ref(sim)? }.check_invariants().map_err(|m| Failure { errno: Errno::EIO, message: m })
    })
}
