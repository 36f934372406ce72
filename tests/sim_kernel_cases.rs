//! Cases read off the xe driver's code (7.1: xe_vm.c, xe_vm_madvise.c,
//! xe_sync.c, xe_wait_user_fence.c, drm_gpuvm.h) where the simulated driver
//! answered otherwise, each test named after the kernel function it
//! follows.

mod common;

use common::*;
use xesvm::driver::{query, xe};
use xesvm::errno::Errno;
use xesvm::sim::{Access, KernelVersion, Topology};
use xesvm::uapi::*;

fn rig(preset: &str, kernel: KernelVersion) -> Rig {
    let mut t = Topology::preset(preset).unwrap();
    t.kernel = kernel;
    Rig::new(t)
}

fn mirror_bind(r: &Rig, pat_index: u16) -> Result<(), Errno> {
    let op = drm_xe_vm_bind_op {
        op: DRM_XE_VM_BIND_OP_MAP,
        flags: DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR,
        addr: BUF,
        range: 2 * MIB,
        pat_index,
        ..Default::default()
    };
    let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 1, ops: drm_xe_vm_bind_ops { bind: op }, ..Default::default() };
    r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)
}

/// The VMAs VM_QUERY_MEM_RANGE_ATTRS counts over [start, start + range).
fn vmas(r: &Rig, start: u64, range: u64) -> u32 {
    let mut q = drm_xe_vm_query_mem_range_attr { vm_id: r.vms[0], start, range, ..Default::default() };
    r.ioctl(0, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &mut q).unwrap();
    q.num_mem_ranges
}

/// The attributes of the VMA holding `addr`.
fn attrs_at(r: &Rig, addr: u64) -> drm_xe_mem_range_attr {
    let mut a = [drm_xe_mem_range_attr::default(); 1];
    let mut q = drm_xe_vm_query_mem_range_attr {
        vm_id: r.vms[0],
        start: addr,
        range: 4096,
        num_mem_ranges: 1,
        sizeof_mem_range_attr: core::mem::size_of::<drm_xe_mem_range_attr>() as u64,
        vector_of_mem_attr: a.as_mut_ptr() as u64,
        ..Default::default()
    };
    r.ioctl(0, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &mut q).unwrap();
    a[0]
}

fn madvise_atomic(r: &Rig, start: u64, range: u64, val: u32) -> Result<(), Errno> {
    let mut m = drm_xe_madvise { start, range, vm_id: r.vms[0], attr_type: DRM_XE_MEM_RANGE_ATTR_ATOMIC, ..Default::default() };
    m.attr.atomic = drm_xe_madvise_val { val, pad: 0, reserved: 0 };
    r.ioctl(0, DRM_IOCTL_XE_MADVISE, &mut m)
}

fn madvise_purgeable(r: &Rig, start: u64, range: u64, retained: &mut u32) -> Result<(), Errno> {
    let mut m = drm_xe_madvise { start, range, vm_id: r.vms[0], attr_type: DRM_XE_VMA_ATTR_PURGEABLE_STATE, ..Default::default() };
    m.attr.purge_state_val =
        drm_xe_madvise_purge_state { val: DRM_XE_VMA_PURGEABLE_STATE_DONTNEED, pad: 0, retained_ptr: retained as *mut u32 as u64 };
    r.ioctl(0, DRM_IOCTL_XE_MADVISE, &mut m)
}

#[test]
fn vm_bind_ioctl_check_args_refuses_a_non_coherent_mirror_on_an_integrated_gpu() {
    let ig = Rig::preset("igpu");
    // Xe2's PAT: 0 and 3 have no coherency, 1 and 2 are at least 1-way.
    assert_eq!(mirror_bind(&ig, 0), Err(Errno::EINVAL));
    assert_eq!(mirror_bind(&ig, 3), Err(Errno::EINVAL));
    assert_eq!(mirror_bind(&ig, 1), Ok(()));
    assert_eq!(mirror_bind(&ig, 2), Ok(()));
    // `!IS_DGFX(xe)`: a discrete GPU takes any index.
    assert_eq!(mirror_bind(&Rig::preset("dgpu"), 0), Ok(()));
    // The library binds with what the device asks for.
    let info = query::query_device(&ig.drv, ig.fds[0]).unwrap();
    assert_eq!(info.mirror_pat_index(), 2);
    let dg = Rig::preset("dgpu");
    assert_eq!(query::query_device(&dg.drv, dg.fds[0]).unwrap().mirror_pat_index(), 0);
}

#[test]
fn xe_vm_madvise_ioctl_checks_and_splits_a_purgeable_span_like_any_other() {
    let r = rig("dgpu", KernelVersion::V7_1);
    // Past the VM's end: drm_gpuvm_range_valid's EINVAL, and the word is
    // written only on success.
    let mut retained = 0;
    assert_eq!(madvise_purgeable(&r, (1 << 48) - 4096, 8192, &mut retained), Err(Errno::EINVAL));
    assert_eq!(retained, 0);
    // Inside the mirror: xe_vm_alloc_madvise_vma cuts it at both ends.
    assert_eq!(vmas(&r, 0, 1 << 47), 1);
    assert_eq!(madvise_purgeable(&r, BUF, 4096, &mut retained), Ok(()));
    assert_eq!(retained, 1, "SVM memory is never purged");
    assert_eq!(vmas(&r, 0, 1 << 47), 3);
    // A nonzero word is refused before anything else happens.
    assert_eq!(madvise_purgeable(&r, BUF + MIB, 4096, &mut retained), Err(Errno::EINVAL));
    assert_eq!(vmas(&r, 0, 1 << 47), 3);
}

#[test]
fn xe_vm_madvise_ioctl_strips_the_bits_above_the_va_size_from_7_0() {
    let r = rig("dgpu", KernelVersion::V7_0);
    // xe_device_uncanonicalize_addr: addr & GENMASK_ULL(va_bits - 1, 0).
    assert_eq!(madvise_atomic(&r, (1 << 48) | BUF, 2 * MIB, DRM_XE_ATOMIC_DEVICE), Ok(()));
    assert_eq!(attrs_at(&r, BUF).atomic.val, DRM_XE_ATOMIC_DEVICE);
    assert_eq!(madvise_atomic(&r, (0xffffu64 << 48) | BUF, 2 * MIB, DRM_XE_ATOMIC_GLOBAL), Ok(()));
    assert_eq!(attrs_at(&r, BUF).atomic.val, DRM_XE_ATOMIC_GLOBAL);
    // 6.18 takes the address as it comes: past the VM.
    let old = rig("dgpu", KernelVersion::V6_18);
    assert_eq!(madvise_atomic(&old, (1 << 48) | BUF, 2 * MIB, DRM_XE_ATOMIC_DEVICE), Err(Errno::EINVAL));
}

#[test]
fn madvise_splits_the_vmas_before_check_pat_args_are_sane_refuses() {
    let r = Rig::preset("igpu");
    let mut m = drm_xe_madvise { start: BUF, range: 2 * MIB, vm_id: r.vms[0], attr_type: DRM_XE_MEM_RANGE_ATTR_PAT, ..Default::default() };
    m.attr.pat_index = drm_xe_madvise_val { val: 0, pad: 0, reserved: 0 };
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_MADVISE, &mut m), Err(Errno::EINVAL));
    assert_eq!(vmas(&r, 0, 1 << 47), 3, "xe_vm_alloc_madvise_vma ran before the check");
}

#[test]
fn drm_gpuvm_for_each_va_range_walks_nothing_where_the_end_wraps() {
    let r = Rig::preset("dgpu");
    madvise_atomic(&r, BUF, 2 * MIB, DRM_XE_ATOMIC_DEVICE).unwrap();
    assert_eq!(vmas(&r, BUF, 2 * MIB), 1);
    // start + range wraps to 0, or to just below start: the first VMA over
    // [start, end - 1] starts at start, not below end.
    assert_eq!(vmas(&r, BUF, 0u64.wrapping_sub(BUF)), 0);
    assert_eq!(vmas(&r, BUF, u64::MAX), 0);
    // A VMA holding start from below it is walked once.
    assert_eq!(vmas(&r, BUF + MIB, u64::MAX), 1);
    // A zero range: the VMA straddling start, as before.
    assert_eq!(vmas(&r, BUF + MIB, 0), 1);
    assert_eq!(vmas(&r, BUF, 0), 0);
}

#[test]
fn xe_wait_user_fence_ioctl_writes_the_time_back_after_a_fault() {
    let r = Rig::preset("dgpu");
    // The first page is never mapped: do_compare's EFAULT ends the loop.
    let mut w = drm_xe_wait_user_fence { addr: 8, op: DRM_XE_UFENCE_WAIT_OP_EQ, value: 5, mask: u64::MAX, timeout: 1_000_000_000, ..Default::default() };
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_WAIT_USER_FENCE, &mut w), Err(Errno::EFAULT));
    assert!(w.timeout < 1_000_000_000 && w.timeout > 0, "written back as {}", w.timeout);
    w.timeout = -1;
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_WAIT_USER_FENCE, &mut w), Err(Errno::EFAULT));
    assert!(w.timeout > 1 << 40, "a wait forever is written back as MAX_SCHEDULE_TIMEOUT less the time: {}", w.timeout);
}

#[test]
fn xe_sync_entry_parse_fails_on_the_first_bad_sync_before_reading_the_next() {
    let r = Rig::preset("dgpu");
    let page = 4096usize;
    // SAFETY: a fresh anonymous mapping of two pages, its second made
    // inaccessible (not unmapped: no other thread's mapping can land
    // there), so that the array's second sync cannot be read.
    let base = unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 2 * page, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::mprotect((p as *mut u8).add(page) as *mut libc::c_void, page, libc::PROT_NONE), 0);
        p as *mut u8
    };
    let size = core::mem::size_of::<drm_xe_sync>();
    // SAFETY: page - size bytes into the mapping's first page.
    let first = unsafe { base.add(page - size) } as *mut drm_xe_sync;
    // SAFETY: `first` lies in the mapped page, aligned to 8 (page - 48).
    unsafe { first.write(drm_xe_sync { sync_type: DRM_XE_SYNC_TYPE_SYNCOBJ, addr: 0, ..Default::default() }) };
    let op = drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_PREFETCH, addr: BUF, range: 2 * MIB, ..Default::default() };
    let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 1, ops: drm_xe_vm_bind_ops { bind: op }, num_syncs: 2, syncs: first as u64, ..Default::default() };
    // The first sync names no syncobj: ENOENT, before the second's EFAULT.
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b), Err(Errno::ENOENT));
    // With the first sync a good user fence, the second is read: EFAULT.
    let mut fence = 0u64;
    let good = drm_xe_sync { sync_type: DRM_XE_SYNC_TYPE_USER_FENCE, flags: DRM_XE_SYNC_FLAG_SIGNAL, addr: &mut fence as *mut u64 as u64, timeline_value: 1, ..Default::default() };
    // SAFETY: as above.
    unsafe { first.write(good) };
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b), Err(Errno::EFAULT));
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(base as *mut libc::c_void, 2 * page) };
}

#[test]
fn vm_bind_ioctl_check_args_takes_decompress_on_a_discrete_xe2_device_only() {
    let null_decompress = |pat_index: u16| drm_xe_vm_bind_op {
        op: DRM_XE_VM_BIND_OP_MAP,
        flags: DRM_XE_VM_BIND_FLAG_NULL | DRM_XE_VM_BIND_FLAG_DECOMPRESS,
        addr: BUF,
        range: 2 * MIB,
        pat_index,
        ..Default::default()
    };
    let bind = |r: &Rig, op: drm_xe_vm_bind_op| {
        let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 1, ops: drm_xe_vm_bind_ops { bind: op }, ..Default::default() };
        r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)
    };
    // Battlemage: taken, but not through a compressing PAT (9: comp_en).
    let bmg = rig("dgpu", KernelVersion::V7_1);
    assert_eq!(bind(&bmg, null_decompress(9)), Err(Errno::EINVAL));
    assert_eq!(bind(&bmg, null_decompress(0)), Ok(()));
    // Lunar Lake (!IS_DGFX) and Ponte Vecchio (GRAPHICS_VER 12): EOPNOTSUPP,
    // after every EINVAL (a compressing PAT is still EINVAL there).
    for preset in ["igpu", "max-node"] {
        let r = rig(preset, KernelVersion::V7_1);
        assert_eq!(bind(&r, null_decompress(0)), Err(Errno::EOPNOTSUPP), "{preset}");
        assert_eq!(bind(&r, null_decompress(9)), Err(Errno::EINVAL), "{preset}");
    }
}

/// `xe_vm_create_ioctl` takes the id with `xa_alloc` from the file's
/// XA_FLAGS_ALLOC1 xarray (`xe_file_open`): the lowest free id from 1, so
/// a destroyed VM's id names the next VM created, and a stale id reaches it.
#[test]
fn xe_vm_create_ioctl_hands_out_the_lowest_free_id() {
    let r = Rig::preset("dgpu");
    let create = || xe::vm_create(&r.drv, r.fds[0], DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
    let destroy = |vm_id| r.ioctl(0, DRM_IOCTL_XE_VM_DESTROY, &mut drm_xe_vm_destroy { vm_id, ..Default::default() });
    assert_eq!((r.vms[0], create(), create()), (1, 2, 3));
    destroy(2).unwrap();
    assert_eq!(create(), 2);
    destroy(1).unwrap();
    assert_eq!(create(), 1);
    assert_eq!(create(), 4);
    // The new VM 1 has no mirror: a mirror MAP through the old id binds it.
    assert_eq!(vmas(&r, 0, 1 << 47), 0);
    assert_eq!(mirror_bind(&r, 0), Ok(()));
}

fn madvise_pat(r: &Rig, val: u32) -> Result<(), Errno> {
    let mut m = drm_xe_madvise { start: BUF, range: 2 * MIB, vm_id: r.vms[0], attr_type: DRM_XE_MEM_RANGE_ATTR_PAT, ..Default::default() };
    m.attr.pat_index = drm_xe_madvise_val { val, pad: 0, reserved: 0 };
    r.ioctl(0, DRM_IOCTL_XE_MADVISE, &mut m)
}

/// `xe_pat_init_early`: Battlemage (graphics 20.01) has 28 PAT entries,
/// Wa_16023588340 disabling CLOS3; Lunar Lake (20.04) all 32.
/// `vm_bind_ioctl_check_args` and `madvise_args_are_sane` refuse an index
/// at or past `xe->pat.n_entries`.
#[test]
fn xe_pat_init_early_gives_battlemage_28_pat_entries() {
    let bmg = Rig::preset("b580");
    assert_eq!(mirror_bind(&bmg, 27), Ok(()));
    assert_eq!(mirror_bind(&bmg, 28), Err(Errno::EINVAL));
    assert_eq!(mirror_bind(&bmg, 30), Err(Errno::EINVAL));
    assert_eq!(madvise_pat(&bmg, 27), Ok(()));
    assert_eq!(madvise_pat(&bmg, 31), Err(Errno::EINVAL));
    let lnl = Rig::preset("igpu");
    assert_eq!(mirror_bind(&lnl, 30), Ok(()));
    assert_eq!(madvise_pat(&lnl, 31), Ok(()));
    // The library's own mirror PAT stays inside both tables.
    for r in [&bmg, &lnl] {
        assert!(query::query_device(&r.drv, r.fds[0]).unwrap().mirror_pat_index() < 28);
    }
}

/// A dGPU VM whose mirror is bound with MADVISE_AUTORESET, with BUF
/// advised atomic DEVICE, faulted by the GPU and then unmapped: the
/// garbage collector has a reset of BUF queued.
fn reset_queued(kernel: KernelVersion) -> Rig {
    let r = rig("dgpu", kernel);
    xe::bind_cpu_addr_mirror_pat(&r.drv, r.fds[0], r.vms[0], 0, 1 << 47, true, 0).unwrap();
    madvise_atomic(&r, BUF, 2 * MIB, DRM_XE_ATOMIC_DEVICE).unwrap();
    r.gpu(0, BUF, 2 * MIB, Access::Read).unwrap();
    r.sim.munmap(BUF, 2 * MIB).unwrap();
    assert_eq!(attrs_at(&r, BUF).atomic.val, DRM_XE_ATOMIC_DEVICE, "a query does not flush");
    r
}

/// `xe_vm_bind_ioctl` calls `xe_svm_flush` before taking the VM lock, so
/// before the span, BO and sync checks: a bind they refuse has run the
/// garbage collector.
#[test]
fn xe_vm_bind_ioctl_flushes_the_garbage_collector_before_the_span_check() {
    let r = reset_queued(KernelVersion::V7_1);
    let op = drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_PREFETCH, addr: (1 << 48) - 4096, range: 8192, ..Default::default() };
    let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 1, ops: drm_xe_vm_bind_ops { bind: op }, ..Default::default() };
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b), Err(Errno::EINVAL));
    assert_eq!(attrs_at(&r, BUF).atomic.val, DRM_XE_ATOMIC_UNDEFINED);
}

/// `xe_vm_madvise_ioctl` calls `xe_svm_flush` after `madvise_args_are_sane`
/// and before `xe_madvise_details_init`: a `devmem_fd` that names no Xe
/// file (ENOENT) is refused after the garbage collector ran.
#[test]
fn xe_vm_madvise_ioctl_flushes_the_garbage_collector_before_xe_madvise_details_init() {
    let r = reset_queued(KernelVersion::V7_1);
    let mut m = drm_xe_madvise { start: BUF + 64 * MIB, range: 2 * MIB, vm_id: r.vms[0], attr_type: DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC, ..Default::default() };
    m.attr.preferred_mem_loc = drm_xe_madvise_preferred_mem_loc { devmem_fd: 9999, migration_policy: 0, region_instance: 1, reserved: 0 };
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_MADVISE, &mut m), Err(Errno::ENOENT));
    assert_eq!(attrs_at(&r, BUF).atomic.val, DRM_XE_ATOMIC_UNDEFINED);
}

/// `vm_bind_ioctl_ops_create` leaves out of a PREFETCH op every range
/// `xe_svm_range_validate` finds bound on all tiles where the op asks:
/// in a VRAM region that pagemap, in system memory (region 0) no device
/// pages (`!range->base.pages.dpagemap`; 6.18: `devmem_preferred ==
/// has_devmem_pages`). `prefetch_ranges` never walks such a range.
#[test]
fn xe_svm_range_validate_leaves_a_range_bound_where_asked_out_of_the_prefetch() {
    let r = Rig::preset("dgpu");
    let walked = || r.sim.counters().prefetch_ranges;
    r.prefetch(0, BUF, 2 * MIB, 0).unwrap();
    assert_eq!(walked(), 1, "populated and bound in system memory");
    r.prefetch(0, BUF, 2 * MIB, 0).unwrap();
    assert_eq!(walked(), 1, "bound in system memory: left out");
    r.prefetch(0, BUF, 2 * MIB, 1).unwrap();
    r.prefetch(0, BUF, 2 * MIB, 1).unwrap();
    assert_eq!(walked(), 2, "bound in VRAM: left out the second time");
    assert!(r.in_vram(BUF, 2 * MIB, 0));
    r.prefetch(0, BUF, 2 * MIB, 0).unwrap();
    assert_eq!(walked(), 3, "in VRAM, asked for system memory: walked");
    assert!(r.in_system(BUF, 2 * MIB));
}

/// `xe_vm_find_cpu_addr_mirror_vma_range` looks for the VMA after a mirror
/// MAP with `xe_vm_find_vma_by_addr(vm, *end + 1)`, the first VMA over
/// [end + 1, end + 4K]: one starting a page past the end is found, and the
/// widened MAP covers the page between (7.x; 6.18 does not widen).
#[test]
fn xe_vm_find_cpu_addr_mirror_vma_range_widens_over_a_one_page_hole() {
    for (kernel, want) in [(KernelVersion::V7_1, 1), (KernelVersion::V6_18, 2)] {
        let r = rig("dgpu", kernel);
        let bind = |op: u32, flags: u32, addr: u64, range: u64| {
            let op = drm_xe_vm_bind_op { op, flags, addr, range, ..Default::default() };
            let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 1, ops: drm_xe_vm_bind_ops { bind: op }, ..Default::default() };
            r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)
        };
        bind(DRM_XE_VM_BIND_OP_UNMAP, 0, 0, 1 << 47).unwrap();
        let mirror = DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR;
        bind(DRM_XE_VM_BIND_OP_MAP, mirror, 0x20_1000, 0xf_f000).unwrap();
        bind(DRM_XE_VM_BIND_OP_MAP, mirror, 0x10_0000, 0x10_0000).unwrap();
        assert_eq!(vmas(&r, 0, 1 << 47), want, "{kernel}");
        assert_eq!(vmas(&r, 0x20_0000, 4096), 2 - want, "{kernel}: the hole");
    }
}

/// `query_mem_regions` reports system memory's `total_size` as the TT
/// manager's size, and `xe_ttm_sys_mgr_init` has sized it at all of RAM
/// (`si.totalram`) since 6.15 dropped the `gtt_size /= 2`: the whole of
/// the topology's system memory, not half of it.
#[test]
fn xe_ttm_sys_mgr_init_spans_all_of_system_memory() {
    let r = Rig::preset("dgpu");
    let info = query::query_device(&r.drv, r.fds[0]).unwrap();
    assert_eq!(info.region(0).unwrap().total_size, r.sim.topology().system_memory);
}

/// `xe_drm_pagemap_from_fd` fails a madvise naming another device's fd
/// with ENODEV only where `drm_dev_enter` fails, on an unplugged device; a
/// wedged one (ECANCELED to its own ioctls, `xe_drm_ioctl`) is not
/// checked, and its memory is taken as the preferred location.
#[test]
fn xe_drm_pagemap_from_fd_refuses_an_unplugged_device_not_a_wedged_one() {
    for (errno, want) in [(Errno::ENODEV, Err(Errno::ENODEV)), (Errno::ECANCELED, Ok(()))] {
        let r = rig("2dgpu-p2p", KernelVersion::V7_1);
        r.sim.remove_device(1, errno).unwrap();
        assert_eq!(r.pref_device(0, BUF, 2 * MIB, 1), want, "{errno:?}");
        let fd = if want.is_ok() { r.fds[1] as u32 } else { DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE };
        assert_eq!(attrs_at(&r, BUF).preferred_mem_loc.devmem_fd, fd, "{errno:?}");
    }
}

fn bind_op(r: &Rig, op: u32, flags: u32, addr: u64, range: u64) -> Result<(), Errno> {
    let op = drm_xe_vm_bind_op { op, flags, addr, range, ..Default::default() };
    let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 1, ops: drm_xe_vm_bind_ops { bind: op }, ..Default::default() };
    r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)
}

/// `vm_bind_ioctl_ops_parse` refuses to UNMAP a mirror VMA that has SVM
/// ranges with EBUSY unless `XE_VMA_OPS_FLAG_ALLOW_SVM_UNMAP` is set, which
/// `vm_bind_ioctl_ops_create` sets for a mirror MAP from 7.0 on. 6.18 has no
/// such flag: a mirror MAP over a faulted mirror VMA is EBUSY there too.
#[test]
fn vm_bind_ioctl_ops_parse_refuses_a_mirror_map_over_faulted_ranges_on_6_18() {
    for (kernel, want) in [(KernelVersion::V6_18, Err(Errno::EBUSY)), (KernelVersion::V7_1, Ok(()))] {
        let r = rig("dgpu", kernel);
        r.gpu(0, BUF, 2 * MIB, Access::Read).unwrap();
        let mirror = DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR;
        assert_eq!(bind_op(&r, DRM_XE_VM_BIND_OP_MAP, mirror, 0, 1 << 47), want, "{kernel}");
        // A mirror MAP over a VMA no range lies in is taken on both.
        assert_eq!(bind_op(&r, DRM_XE_VM_BIND_OP_UNMAP, 0, 1 << 46, 1 << 46), Ok(()), "{kernel}");
        assert_eq!(bind_op(&r, DRM_XE_VM_BIND_OP_MAP, mirror, 1 << 46, 1 << 46), Ok(()), "{kernel}");
    }
}

/// A bind with no ops: `xe_vm_bind_ioctl` runs `xe_svm_flush` and returns
/// (ENODATA, taken as success): the garbage collector, nothing else.
fn flush(r: &Rig) {
    let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 0, ..Default::default() };
    r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b).unwrap();
}

/// `xe_svm_range_set_default_attr` (7.0 on): a VMA with default attributes
/// is widened whole (`start = xe_vma_start(vma); end = xe_vma_end(vma)`),
/// else the range's span is reset, and either span goes through
/// `xe_vm_find_cpu_addr_mirror_vma_range` before
/// `xe_vm_alloc_cpu_addr_mirror_vma` maps it: the reset VMA merges with
/// the default mirror VMAs beside it, whether or not the range covered it.
#[test]
fn xe_svm_range_set_default_attr_merges_the_reset_span_with_default_neighbours() {
    // (advice over [BUF, BUF + len), then back to default?, VMAs after the collector)
    for (len, undo, want) in [(2 * MIB, false, 1), (4 * MIB, true, 1), (4 * MIB, false, 3)] {
        let r = rig("dgpu", KernelVersion::V7_1);
        xe::bind_cpu_addr_mirror_pat(&r.drv, r.fds[0], r.vms[0], 0, 1 << 47, true, 0).unwrap();
        madvise_atomic(&r, BUF, len, DRM_XE_ATOMIC_DEVICE).unwrap();
        if undo {
            madvise_atomic(&r, BUF, len, DRM_XE_ATOMIC_UNDEFINED).unwrap();
        }
        assert_eq!(vmas(&r, 0, 1 << 47), 3);
        r.gpu(0, BUF, 2 * MIB, Access::Read).unwrap();
        r.sim.munmap(BUF, 2 * MIB).unwrap();
        flush(&r);
        assert_eq!(vmas(&r, 0, 1 << 47), want, "advice over {len:#x}, undone {undo}");
        assert_eq!(attrs_at(&r, BUF).atomic.val, DRM_XE_ATOMIC_UNDEFINED);
        assert_eq!(attrs_at(&r, BUF + len - 4096).atomic.val, if len > 2 * MIB && !undo { DRM_XE_ATOMIC_DEVICE } else { DRM_XE_ATOMIC_UNDEFINED });
    }
}

/// `vm_bind_ioctl_ops_create` handles a PREFETCH op of a VMA that is no CPU
/// mirror with `op->prefetch.region = prefetch_region; break;` inside
/// `drm_gpuva_for_each_op`: the `break` leaves the loop, so no mirror VMA
/// after the first non-mirror one in the bind's span gets its SVM ranges,
/// and nothing of it is prefetched. Mirror VMAs before it are.
#[test]
fn vm_bind_ioctl_ops_create_stops_at_the_first_vma_that_is_no_mirror() {
    for kernel in [KernelVersion::V6_18, KernelVersion::V7_1] {
        let r = rig("dgpu", kernel);
        bind_op(&r, DRM_XE_VM_BIND_OP_UNMAP, 0, BUF, 2 * MIB).unwrap();
        bind_op(&r, DRM_XE_VM_BIND_OP_MAP, DRM_XE_VM_BIND_FLAG_NULL, BUF, 2 * MIB).unwrap();
        r.prefetch(0, BUF - 2 * MIB, 6 * MIB, 1).unwrap();
        assert!(r.in_vram(BUF - 2 * MIB, 2 * MIB, 0), "{kernel}: the mirror before the NULL VMA");
        assert_eq!(r.bytes_in(BUF + 2 * MIB, 2 * MIB, 0, 1), 0, "{kernel}: the mirror after it");
        // On its own, the mirror after it is prefetched.
        r.prefetch(0, BUF + 2 * MIB, 2 * MIB, 1).unwrap();
        assert!(r.in_vram(BUF + 2 * MIB, 2 * MIB, 0), "{kernel}");
    }
}

/// An SVM range's VRAM is a BO that `xe_drm_pagemap_populate_mm` creates
/// (`xe_bo_create_locked`, which puts it at the tail of TTM's LRU) and
/// unlocks (`xe_bo_unlock`, no `ttm_bo_move_to_lru_tail`); no fault, bind
/// or prefetch of xe_svm.c, drm_gpusvm.c or xe_pt.c touches the BO again,
/// so TTM evicts under pressure the oldest allocation, however recently the
/// GPU bound it.
#[test]
fn xe_drm_pagemap_populate_mm_places_a_range_in_ttms_lru_once() {
    let mut t = Topology::preset("dgpu").unwrap();
    t.kernel = KernelVersion::V7_1;
    t.devices[0].vram_per_tile = 4 * MIB;
    let r = Rig::new(t);
    let (a, b, c) = (BUF, BUF + 2 * MIB, BUF + 4 * MIB);
    r.prefetch(0, a, 2 * MIB, 1).unwrap();
    r.prefetch(0, b, 2 * MIB, 1).unwrap();
    // A madvise zaps A's PTEs; the GPU binds it again where it lies.
    madvise_atomic(&r, a, 2 * MIB, DRM_XE_ATOMIC_GLOBAL).unwrap();
    let faults = r.sim.counters().gpu_faults;
    r.gpu(0, a, 2 * MIB, Access::Read).unwrap();
    assert_eq!(r.sim.counters().gpu_faults, faults + 1);
    assert!(r.in_vram(a, 2 * MIB, 0) && r.in_vram(b, 2 * MIB, 0));
    // C's allocation evicts the oldest: A.
    r.prefetch(0, c, 2 * MIB, 1).unwrap();
    assert!(r.in_vram(c, 2 * MIB, 0));
    assert!(r.in_system(a, 2 * MIB), "the oldest allocation is evicted");
    assert!(r.in_vram(b, 2 * MIB, 0));
}

/// `vm_bind_ioctl_ops_create` creates a PREFETCH op's ranges with a
/// `drm_gpusvm_ctx` that sets no `check_pages_threshold` (only
/// `prefetch_ranges` and the fault handler set SZ_64K), so
/// `drm_gpusvm_range_chunk_size` never asks `drm_gpusvm_check_pages`: a
/// prefetch over never-touched memory where 2 MiB does not fit makes one
/// 64 KiB range, where a GPU fault makes 4 KiB ones.
#[test]
fn vm_bind_ioctl_ops_create_sets_no_check_pages_threshold() {
    let r = rig("dgpu", KernelVersion::V7_1);
    // Two 128 KiB CPU mappings, never touched.
    for at in [BUF, BUF + 4 * MIB] {
        r.sim.munmap(at, 2 * MIB).unwrap();
        r.sim.mmap(at, 128 * 1024, false).unwrap();
    }
    let before = r.sim.counters();
    r.prefetch(0, BUF, 64 * 1024, 1).unwrap();
    let c = r.sim.counters();
    assert_eq!(c.prefetch_ranges - before.prefetch_ranges, 1, "one 64 KiB range");
    assert_eq!((c.migrations_64k - before.migrations_64k, c.migrations_4k - before.migrations_4k), (1, 0));
    assert!(r.in_vram(BUF, 64 * 1024, 0));
    // The fault handler checks the pages: 4 KiB.
    r.gpu(0, BUF + 4 * MIB, 4096, Access::Write).unwrap();
    let d = r.sim.counters();
    assert_eq!((d.migrations_64k - c.migrations_64k, d.migrations_4k - c.migrations_4k), (0, 1));
}
