//! docs/kernel-model.md §14: one test per row of the decision table, checking the
//! placement after the access (and the counters that show which path ran),
//! always through the uAPI structs and the simulated GPU/CPU.

mod common;

use common::*;
use xesvm::driver::xe::{self, PreferredLoc};
use xesvm::driver::{PageTableAccess, PageTableSource, Residency, ResidencyRun};
use xesvm::errno::Errno;
use xesvm::sim::{Access, Injection, KernelVersion, Point, Topology};
use xesvm::uapi::*;

const R: u64 = 2 * MIB;

/// A second VM on `dev` whose only mirror VMA is [start, start+size): its
/// faults create ranges no larger than that, to build mixed placements.
fn narrow_vm(r: &Rig, dev: usize, start: u64, size: u64) -> u32 {
    let vm = xe::vm_create(&r.drv, r.fds[dev], DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
    xe::bind_cpu_addr_mirror(&r.drv, r.fds[dev], vm, start, size, false).unwrap();
    vm
}

/// Puts the first 64 KiB of BUF in `dev`'s VRAM and the rest in system memory.
fn make_mixed(r: &Rig, dev: usize) {
    r.sim.cpu_access(BUF, R, Access::Write, 1).unwrap();
    let vm = narrow_vm(r, dev, BUF, 64 << 10);
    r.sim.gpu_access(r.fds[dev], vm, 0, BUF, 64 << 10, Access::Write, 2).unwrap();
    assert!(r.in_vram(BUF, 64 << 10, dev as u32));
    assert!(r.in_system(BUF + (64 << 10), R - (64 << 10)));
}

fn c(r: &Rig) -> xesvm::sim::CounterSnapshot {
    r.sim.counters()
}

#[test]
fn row01_valid_binding_is_reused_wherever_the_data_is() {
    let r = Rig::preset("dgpu");
    // Both migration attempts fail: the ordinary fault falls back to system (row 3).
    r.sim.inject(Injection::count(Point::Migrate, Errno::EBUSY, 2));
    r.gpu(0, BUF, R, Access::Write).unwrap();
    assert!(r.in_system(BUF, R));
    let before = c(&r);
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert_eq!(c(&r).gpu_faults, before.gpu_faults, "binding reused, no fault");
    assert!(r.in_system(BUF, R), "preference ignored until PTEs are zapped");
}

#[test]
fn row02_unpopulated_goes_to_local_vram() {
    let r = Rig::preset("dgpu");
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 0));
    // Never populated: born in VRAM by a clear, nothing copied (docs/cost-model.md).
    let k = c(&r);
    assert_eq!((k.migrations_to_vram, k.vram_clears, k.migrations_2m), (0, 1, 1));
    assert_eq!((k.bytes_to_vram, k.bytes_cleared), (0, R));
}

/// GPU first touch (docs/cost-model.md; `migrate_vma_setup` collects
/// `pte_none` pages as holes, drm_pagemap copies only pages with a source,
/// and xe hands out cleared VRAM): writing 64 MiB no one populated costs a
/// small fraction of writing 64 MiB the CPU wrote first, and moves nothing.
#[test]
fn first_touch_of_never_populated_memory_is_a_clear_not_a_copy() {
    let size = 64 * MIB;
    let fresh = Rig::preset("dgpu");
    let t0 = fresh.sim.now_ns();
    fresh.gpu(0, BUF, size, Access::Write).unwrap();
    let born = fresh.sim.now_ns() - t0;
    assert!(fresh.in_vram(BUF, size, 0));
    let k = c(&fresh);
    assert_eq!((k.bytes_to_vram, k.migrations_to_vram, k.bytes_cleared), (0, 0, size));
    assert_eq!(k.vram_clears, size / R);

    let used = Rig::preset("dgpu");
    used.sim.cpu_access(BUF, size, Access::Write, 7).unwrap();
    let t0 = used.sim.now_ns();
    used.gpu(0, BUF, size, Access::Write).unwrap();
    let copied = used.sim.now_ns() - t0;
    // Every new VRAM allocation is cleared (xe_bo_move), copied into or not.
    assert_eq!((c(&used).bytes_to_vram, c(&used).vram_clears), (size, size / R));
    // Both pay a fault and a clear (a submission and 2 MiB at the device's
    // clear bandwidth) per 2 MiB range; the CPU-written one also a PCIe copy.
    // Then both write the 64 MiB in VRAM at the device's local bandwidth.
    let k = &fresh.sim.topology().costs;
    let dev = &fresh.sim.topology().devices[0];
    let (clear, copy) = (k.clear_ns(R, dev.clear_bandwidth()), k.copy_ns(R, dev.host_bandwidth));
    let ranges = size / R;
    let write = (size as f64 * 1e9 / dev.local_bandwidth).ceil() as u64;
    assert_eq!(born, ranges * (k.fault_service_ns + clear) + write);
    assert_eq!(copied, ranges * (k.fault_service_ns + clear + copy) + write);
    // Fixed costs aside, the clear is under a sixth of the copy; with the
    // fault and submission per range, the first touch is about half or less.
    assert!(clear - k.copy_submit_ns < (copy - k.copy_submit_ns) / 6);
    assert!(born * 100 < copied * 55, "first touch {born} ns vs copy {copied} ns");
}

/// `drm_gpusvm_range_chunk_size`: a range of 64 KiB or less is made only
/// over pages the CPU has populated (`check_pages_threshold`, 64 KiB on
/// dGPU); a 2 MiB range skips the probe. A 1 MiB mapping no one populated
/// faults in 256 ranges of 4 KiB; the same mapping with the zero page over
/// it (madvise MADV_POPULATE_READ) in 16 of 64 KiB, still as holes (no
/// copy: `migrate_vma_collect_pmd` collects the zero pfn as one). The page
/// table shows the zero page present; munmap takes it away.
#[test]
fn check_pages_makes_4k_ranges_over_unpopulated_memory_and_the_zero_page_passes_it() {
    let len = MIB;
    for zero in [false, true] {
        let r = Rig::preset("dgpu");
        // A mapping of its own: nothing mapped in the rest of its 2 MiB.
        r.sim.munmap(BUF, R).unwrap();
        r.sim.mmap(BUF, len, false).unwrap();
        if zero {
            assert_eq!(errno(r.sim.populate(BUF + 1, 4096)), Some(Errno::EINVAL), "unaligned");
            assert_eq!(errno(r.sim.populate(BUF + len, 4096)), Some(Errno::ENOMEM), "past the mapping");
            r.sim.populate(BUF, len).unwrap();
            // A present PTE: PAGEMAP_SCAN names the zero page
            // (PAGE_IS_PFNZERO), a pread sees it present.
            let mut runs = [ResidencyRun::default(); 4];
            let (n, _) = r.sim.read_page_table(BUF, BUF + len, &mut runs, false).unwrap();
            assert_eq!((n, runs[0].residency), (1, Residency::Unpopulated), "scan: the zero page");
            r.sim.set_page_table(PageTableAccess { source: PageTableSource::Read, privileged: false }).unwrap();
            let (n, _) = r.sim.read_page_table(BUF, BUF + len, &mut runs, false).unwrap();
            assert_eq!((n, runs[0].residency), (1, Residency::System), "pread: present");
            // A CPU read of the zero page faults nothing and keeps it.
            let zero_fill = c(&r).time_fault_ns;
            r.sim.cpu_access(BUF, len, Access::Read, 0).unwrap();
            assert_eq!(c(&r).time_fault_ns, zero_fill);
        }
        r.gpu(0, BUF, len, Access::Write).unwrap();
        assert!(r.in_vram(BUF, len, 0));
        let k = c(&r);
        let (small, ranges) = if zero { (k.migrations_64k, 16) } else { (k.migrations_4k, 256) };
        assert_eq!((small, k.gpu_faults), (ranges, ranges), "zero page {zero}");
        assert_eq!(k.bytes_to_vram, 0, "holes, not copies");
    }
    let r = Rig::preset("dgpu");
    r.sim.munmap(BUF, R).unwrap();
    r.sim.mmap(BUF, len, false).unwrap();
    r.sim.populate(BUF, len).unwrap();
    r.sim.munmap(BUF, len).unwrap();
    r.sim.mmap(BUF, len, false).unwrap();
    r.gpu(0, BUF, len, Access::Write).unwrap();
    assert_eq!(c(&r).migrations_4k, 256, "mapped again: unpopulated again");
}

#[test]
fn row03_system_goes_to_local_and_falls_back_to_system_on_error() {
    let r = Rig::preset("dgpu");
    r.sim.cpu_access(BUF, R, Access::Write, 9).unwrap();
    let sum = r.sim.checksum(BUF, R).unwrap();
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 0));
    assert_eq!(r.sim.checksum(BUF, R).unwrap(), sum, "content carried");
    let r = Rig::preset("dgpu");
    r.sim.cpu_access(BUF, R, Access::Write, 9).unwrap();
    r.sim.inject(Injection::count(Point::VramAlloc, Errno::ENOMEM, 1));
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_system(BUF, R), "silent fallback (docs/kernel-model.md §9)");
    assert_eq!(c(&r).gpu_fault_errors, 0);
}

#[test]
fn row04_local_stays_without_migration() {
    let r = Rig::preset("dgpu");
    r.gpu(0, BUF, R, Access::Write).unwrap();
    // Zap the PTEs so the next access faults again.
    xe::madvise_atomic(&r.drv, r.fds[0], r.vms[0], BUF, R, DRM_XE_ATOMIC_GLOBAL).unwrap();
    let before = c(&r);
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert_eq!(c(&r).gpu_faults, before.gpu_faults + 1);
    assert_eq!(c(&r).migrations_to_vram, before.migrations_to_vram, "scan EQUAL: no migration");
    assert!(r.in_vram(BUF, R, 0));
}

#[test]
fn row05_peer_p2p_is_migrated_to_local() {
    let r = Rig::preset("2dgpu-p2p");
    r.gpu(1, BUF, R, Access::Write).unwrap();
    let sum = r.sim.checksum(BUF, R).unwrap();
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 0));
    assert_eq!(c(&r).migrations_device_to_device, 1, "d2d by the source engine");
    assert_eq!(r.sim.checksum(BUF, R).unwrap(), sum);
}

#[test]
fn row06_peer_unreachable_goes_via_system_with_retry_once() {
    let r = Rig::preset("2dgpu-nolink");
    r.gpu(1, BUF, R, Access::Write).unwrap();
    let sum = r.sim.checksum(BUF, R).unwrap();
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 0));
    assert_eq!(c(&r).migrate_retries, 1, "-EBUSY -> evict -> retry once");
    assert_eq!(c(&r).migrations_device_to_device, 0);
    assert_eq!(r.sim.checksum(BUF, R).unwrap(), sum);
}

#[test]
fn row07_mixed_system_and_local_becomes_local() {
    let r = Rig::preset("dgpu");
    make_mixed(&r, 0);
    let sum = r.sim.checksum(BUF, R).unwrap();
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 0));
    assert_eq!(c(&r).migrate_retries, 1, "fragmentation -EBUSY, then retry once");
    assert_eq!(r.sim.checksum(BUF, R).unwrap(), sum);
}

#[test]
fn row08_mixed_with_peer_p2p_becomes_local() {
    let r = Rig::preset("2dgpu-p2p");
    make_mixed(&r, 1);
    let sum = r.sim.checksum(BUF, R).unwrap();
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 0));
    assert_eq!(c(&r).migrations_device_to_device, 1, "peer part copied device to device");
    assert_eq!(c(&r).migrate_retries, 0);
    assert_eq!(r.sim.checksum(BUF, R).unwrap(), sum);
}

#[test]
fn row09_mixed_with_unreachable_peer_becomes_local_via_retry() {
    let r = Rig::preset("2dgpu-nolink");
    make_mixed(&r, 1);
    let sum = r.sim.checksum(BUF, R).unwrap();
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 0));
    assert_eq!(c(&r).migrate_retries, 1);
    assert_eq!(r.sim.checksum(BUF, R).unwrap(), sum);
}

#[test]
fn row10_preferred_system_pulls_device_pages_back() {
    let r = Rig::preset("dgpu");
    r.gpu(0, BUF, R, Access::Write).unwrap();
    r.pref(0, BUF, R, PreferredLoc::DefaultSystem).unwrap();
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_system(BUF, R));
    assert!(c(&r).remote_access_bytes >= R, "served from system memory");
    // Prefetch to region 0 evicts explicitly.
    let r = Rig::preset("dgpu");
    r.gpu(0, BUF, R, Access::Write).unwrap();
    r.prefetch(0, BUF, R, 0).unwrap();
    assert!(r.in_system(BUF, R));
}

#[test]
fn row11_preferred_peer_places_data_in_peer_and_maps_over_p2p() {
    let r = Rig::preset("2dgpu-p2p");
    r.pref_device(0, BUF, R, 1).unwrap();
    r.gpu(0, BUF, R, Access::Write).unwrap();
    assert!(r.in_vram(BUF, R, 1));
    assert_eq!(c(&r).remote_access_bytes, R, "mapped over the link");
}

#[test]
fn row12_data_in_preferred_peer_does_not_move() {
    let r = Rig::preset("2dgpu-p2p");
    r.gpu(1, BUF, R, Access::Write).unwrap();
    r.pref_device(0, BUF, R, 1).unwrap();
    let before = c(&r);
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 1));
    assert_eq!(c(&r).migrations_device_to_device + c(&r).migrations_to_vram, before.migrations_device_to_device + before.migrations_to_vram);
}

#[test]
fn row13_local_data_moves_to_preferred_peer() {
    let r = Rig::preset("2dgpu-p2p");
    r.gpu(0, BUF, R, Access::Write).unwrap();
    let sum = r.sim.checksum(BUF, R).unwrap();
    r.pref_device(0, BUF, R, 1).unwrap();
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 1));
    assert_eq!(r.sim.checksum(BUF, R).unwrap(), sum);
}

#[test]
fn row14_preferred_peer_without_link_is_rejected() {
    let r = Rig::preset("2dgpu-nolink");
    assert_eq!(r.pref_device(0, BUF, R, 1), Err(Errno::ENOLINK));
}

#[test]
fn row15_atomic_on_local_needs_nothing() {
    let r = Rig::preset("dgpu");
    r.gpu(0, BUF, R, Access::Write).unwrap();
    let before = c(&r);
    r.gpu(0, BUF, R, Access::Atomic).unwrap();
    assert_eq!(c(&r).gpu_faults, before.gpu_faults);
    assert!(r.in_vram(BUF, R, 0));
}

#[test]
fn row16_atomic_on_system_migrates_local_with_timeslice() {
    let r = Rig::preset("dgpu");
    r.pref(0, BUF, R, PreferredLoc::DefaultSystem).unwrap();
    r.sim.cpu_access(BUF, R, Access::Write, 3).unwrap();
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_system(BUF, R), "non-atomic follows the preference");
    r.gpu(0, BUF, R, Access::Atomic).unwrap();
    assert!(r.in_vram(BUF, R, 0), "atomics ignore the preference: local VRAM");
    // docs/kernel-model.md §5.3: a CPU fault inside the timeslice waits for it to expire.
    let t0 = r.now();
    r.sim.cpu_access(BUF, 4096, Access::Read, 0).unwrap();
    assert_eq!(c(&r).timeslice_waits, 1);
    assert!(r.now() >= t0 + 4_000_000, "waited out most of the 5 ms timeslice");
    assert!(r.in_system(BUF, R));
}

#[test]
fn row16_atomic_fails_after_three_attempts() {
    let r = Rig::preset("dgpu");
    r.sim.inject(Injection::count(Point::VramAlloc, Errno::ENOMEM, 3));
    assert_eq!(r.gpu(0, BUF, R, Access::Atomic), Err(Errno::ENOMEM));
    assert_eq!(c(&r).gpu_fault_errors, 1);
    let r = Rig::preset("dgpu");
    r.sim.inject(Injection::count(Point::VramAlloc, Errno::ENOMEM, 2));
    r.gpu(0, BUF, R, Access::Atomic).unwrap();
    assert!(r.in_vram(BUF, R, 0), "third attempt succeeds");
}

#[test]
fn row17_atomic_on_peer_p2p_migrates_local() {
    let r = Rig::preset("2dgpu-p2p");
    r.gpu(1, BUF, R, Access::Write).unwrap();
    r.pref_device(0, BUF, R, 1).unwrap();
    r.gpu(0, BUF, R, Access::Atomic).unwrap();
    assert!(r.in_vram(BUF, R, 0), "P2P is treated as having no atomics");
}

#[test]
fn row18_atomic_on_unreachable_peer_migrates_local() {
    let r = Rig::preset("2dgpu-nolink");
    r.gpu(1, BUF, R, Access::Write).unwrap();
    r.gpu(0, BUF, R, Access::Atomic).unwrap();
    assert!(r.in_vram(BUF, R, 0));
}

#[test]
fn row19_atomic_on_mixed_migrates_local() {
    let r = Rig::preset("2dgpu-p2p");
    make_mixed(&r, 1);
    let sum = r.sim.checksum(BUF, R).unwrap();
    r.gpu(0, BUF, R, Access::Atomic).unwrap();
    assert!(r.in_vram(BUF, R, 0));
    assert_ne!(r.sim.checksum(BUF, R).unwrap(), sum, "the atomic wrote");
}

#[test]
fn row20_atomic_on_file_backed_memory_is_eacces() {
    let r = Rig::preset("dgpu");
    r.sim.mmap(BUF, R, true).unwrap();
    assert_eq!(r.gpu(0, BUF, R, Access::Atomic), Err(Errno::EACCES));
    r.gpu(0, BUF, R, Access::Write).unwrap();
    assert!(r.in_system(BUF, R), "file-backed memory never goes to VRAM");
}

#[test]
fn row21_atomic_with_attr_cpu_is_eacces() {
    let r = Rig::preset("dgpu");
    xe::madvise_atomic(&r.drv, r.fds[0], r.vms[0], BUF, R, DRM_XE_ATOMIC_CPU).unwrap();
    assert_eq!(r.gpu(0, BUF, R, Access::Atomic), Err(Errno::EACCES));
}

#[test]
fn row22_device_atomics_on_smem_behave_like_read_write() {
    let mut t = Topology::preset("dgpu").unwrap();
    t.devices[0].device_atomics_on_smem = true;
    let r = Rig::new(t);
    xe::madvise_atomic(&r.drv, r.fds[0], r.vms[0], BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
    r.pref(0, BUF, R, PreferredLoc::DefaultSystem).unwrap();
    r.gpu(0, BUF, R, Access::Atomic).unwrap();
    assert!(r.in_system(BUF, R));
}

#[test]
fn row23_integrated_gpu_maps_system_memory() {
    let r = Rig::preset("igpu");
    for a in [Access::Read, Access::Write, Access::Atomic] {
        r.gpu(0, BUF, R, a).unwrap();
    }
    assert!(r.in_system(BUF, R));
    assert_eq!(c(&r).migrations_to_vram, 0);
}

/// docs/kernel-model.md §2: chunk sizes 2 MiB → 64 KiB → 4 KiB, with the ≤64 KiB present-pages rule.
#[test]
fn chunk_sizes_follow_vmas_and_present_pages() {
    let r = Rig::preset("dgpu");
    let vm = narrow_vm(&r, 0, BUF, 64 << 10);
    // Untouched CPU pages: a 64 KiB chunk would need them present -> 4 KiB.
    r.sim.gpu_access(r.fds[0], vm, 0, BUF, 4096, Access::Read, 0).unwrap();
    assert_eq!(c(&r).migrations_4k, 1);
    r.sim.cpu_access(BUF + (64 << 10) * 4, 64 << 10, Access::Write, 1).unwrap();
    let vm2 = narrow_vm(&r, 0, BUF + (64 << 10) * 4, 64 << 10);
    r.sim.gpu_access(r.fds[0], vm2, 0, BUF + (64 << 10) * 4, 4096, Access::Read, 0).unwrap();
    assert_eq!(c(&r).migrations_64k, 1);
}

/// docs/kernel-model.md §8: munmap destroys ranges and content; autoreset restores default
/// attributes through the garbage collector (xe_svm_range_set_default_attr):
/// deferred until the next bind, madvise or fault (a query in between still
/// shows the old values), over the whole SVM range, and only where the GPU
/// created a range.
#[test]
fn munmap_destroys_ranges_and_autoreset_resets_attributes() {
    let r = Rig::preset("dgpu");
    let vm = xe::vm_create(&r.drv, r.fds[0], DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
    xe::bind_cpu_addr_mirror(&r.drv, r.fds[0], vm, 0, 1 << 47, true).unwrap();
    xe::madvise_atomic(&r.drv, r.fds[0], vm, BUF, 2 * R, DRM_XE_ATOMIC_CPU).unwrap();
    // The GPU creates a range in the first 2 MiB only.
    r.sim.gpu_access(r.fds[0], vm, 0, BUF, R, Access::Write, 1).unwrap();
    assert!(r.in_vram(BUF, R, 0));
    r.sim.munmap(BUF, 2 * R).unwrap();
    assert_eq!(r.sim.placement(BUF, R), xesvm::sim::Placement::Unpopulated);
    assert_eq!(r.sim.gpu_access(r.fds[0], vm, 0, BUF, R, Access::Write, 1), Err(Errno::ENOENT), "no CPU VMA");
    r.sim.mmap(BUF, 2 * R, false).unwrap();
    let atomic_at = |a: u64| xe::query_mem_range_attrs(&r.drv, r.fds[0], vm, a, 4096).unwrap()[0].atomic.val;
    // The fault above ran the GC: the GPU's range went back to defaults; the
    // 2 MiB the GPU never touched keeps its advice.
    assert_eq!(atomic_at(BUF), DRM_XE_ATOMIC_UNDEFINED);
    assert_eq!(atomic_at(BUF + R), DRM_XE_ATOMIC_CPU, "memory the GPU never touched keeps its attributes");
    r.sim.gpu_access(r.fds[0], vm, 0, BUF, R, Access::Atomic, 1).unwrap();
    r.sim.check_invariants().unwrap();
}

/// docs/kernel-model.md §8: the reset is deferred: a query right after munmap still shows the
/// advice, the next madvise (or bind) flushes it first; on 6.18-rc1/rc2 it
/// resets without the flag (6.18 final gates it on the flag).
#[test]
fn autoreset_is_deferred_to_the_next_madvise_and_unconditional_on_6_18_rc() {
    for (kernel, flag) in [(KernelVersion::V7_0, true), (KernelVersion::V7_0, false), (KernelVersion::V6_18, true), (KernelVersion::V6_18, false), (KernelVersion::V6_18Rc, false)] {
        let mut t = Topology::preset("dgpu").unwrap();
        t.set_kernel(kernel);
        let r = Rig::new(t);
        let vm = xe::vm_create(&r.drv, r.fds[0], DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
        xe::bind_cpu_addr_mirror(&r.drv, r.fds[0], vm, 0, 1 << 47, flag).unwrap();
        xe::madvise_atomic(&r.drv, r.fds[0], vm, BUF, R, DRM_XE_ATOMIC_DEVICE).unwrap();
        r.sim.gpu_access(r.fds[0], vm, 0, BUF, R, Access::Read, 1).unwrap();
        r.sim.munmap(BUF, R).unwrap();
        r.sim.mmap(BUF, R, false).unwrap();
        let atomic = || xe::query_mem_range_attrs(&r.drv, r.fds[0], vm, BUF, R).unwrap()[0].atomic.val;
        assert_eq!(atomic(), DRM_XE_ATOMIC_DEVICE, "{kernel:?} {flag}: a query does not run the GC");
        // Any madvise on the VM flushes it (here on another span).
        xe::madvise_atomic(&r.drv, r.fds[0], vm, BUF + 64 * R, R, DRM_XE_ATOMIC_GLOBAL).unwrap();
        let resets = flag || kernel == KernelVersion::V6_18Rc;
        assert_eq!(atomic(), if resets { DRM_XE_ATOMIC_UNDEFINED } else { DRM_XE_ATOMIC_DEVICE }, "{kernel:?} {flag}");
    }
}

/// docs/kernel-model.md §7: prefetch failures are reported as success; the range stays put.
#[test]
fn prefetch_failure_is_swallowed() {
    let r = Rig::preset("dgpu");
    r.sim.cpu_access(BUF, R, Access::Write, 5).unwrap();
    r.sim.inject(Injection::count(Point::Migrate, Errno::EBUSY, 2));
    r.prefetch(0, BUF, R, 1).unwrap();
    assert!(r.in_system(BUF, R));
    assert_eq!(c(&r).prefetch_swallowed, 1);
    r.prefetch(0, BUF, R, 1).unwrap();
    assert!(r.in_vram(BUF, R, 0));
}

/// docs/kernel-model.md §7: every migration failure of a prefetch is swallowed (-ENODATA), whatever
/// its errno: here the CPU mapping vanished under the migration (ENOENT).
#[test]
fn prefetch_swallows_any_migration_errno() {
    let r = Rig::preset("dgpu");
    for e in [Errno::ENOENT, Errno::ENOMEM, Errno::EINVAL, Errno::ENODEV] {
        r.sim.inject(Injection::count(Point::Migrate, e, 2));
        r.prefetch(0, BUF, R, 1).unwrap();
        r.sim.clear_injections();
    }
    assert_eq!(c(&r).prefetch_swallowed, 4);
    assert!(!r.in_vram(BUF, R, 0));
}

/// docs/kernel-model.md §7 CONSULT follows madvise, including a peer (IGT xe_multigpu_svm's flow).
#[test]
fn prefetch_consult_follows_preferred_location() {
    let r = Rig::preset("2dgpu-p2p");
    r.pref_device(0, BUF, 8 * MIB, 1).unwrap();
    r.prefetch(0, BUF, 8 * MIB, DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC).unwrap();
    assert!(r.in_vram(BUF, 8 * MIB, 1));
    let before = c(&r).gpu_faults;
    r.gpu(0, BUF, 8 * MIB, Access::Read).unwrap();
    assert_eq!(c(&r).gpu_faults, before, "prefetch bound the ranges on device 0");
}

/// docs/kernel-model.md §9: VRAM pressure evicts LRU allocations to system; nothing is lost.
#[test]
fn vram_pressure_evicts_least_recently_used() {
    let mut t = Topology::preset("dgpu").unwrap();
    t.devices[0].vram_per_tile = 8 * MIB;
    let r = Rig::new(t);
    for i in 0..6 {
        r.gpu(0, BUF + i * R, R, Access::Write).unwrap();
    }
    let sum = r.sim.checksum(BUF, 6 * R).unwrap();
    assert_eq!(c(&r).evictions, 2);
    assert!(r.in_system(BUF, 2 * R), "the two oldest were evicted");
    assert!(r.in_vram(BUF + 2 * R, 4 * R, 0));
    assert_eq!(r.sim.checksum(BUF, 6 * R).unwrap(), sum);
    r.sim.check_invariants().unwrap();
}

/// Device removal: everything on it goes back to system; calls get ENODEV.
#[test]
fn device_removal_injection() {
    let r = Rig::preset("2dgpu-p2p");
    r.gpu(1, BUF, R, Access::Write).unwrap();
    let sum = r.sim.checksum(BUF, R).unwrap();
    r.sim.inject(Injection::count(Point::DeviceRemoval, Errno::ENODEV, 1));
    assert_eq!(r.prefetch(1, BUF, R, 1), Err(Errno::ENODEV));
    assert_eq!(r.prefetch(1, BUF, R, 1), Err(Errno::ENODEV));
    assert!(r.in_system(BUF, R));
    assert_eq!(r.sim.checksum(BUF, R).unwrap(), sum);
    r.gpu(0, BUF, R, Access::Read).unwrap();
    assert!(r.in_vram(BUF, R, 0), "the other device carries on");
}
