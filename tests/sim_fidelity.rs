//! Behaviours of xe 7.0 (and the 6.18 / 7.1 split) that the simulated driver
//! reproduces, one test per rule, each naming the kernel function it follows
//! (drivers/gpu/drm/xe, as read for issue 11).

mod common;

use common::*;
use xesvm::driver::{ioctl, xe};
use xesvm::errno::Errno;
use xesvm::sim::{Access, KernelVersion, Sim, Topology};
use xesvm::uapi::*;

fn rig(kernel: KernelVersion) -> Rig {
    let mut t = Topology::preset("2dgpu-p2p").unwrap();
    t.set_kernel(kernel);
    Rig::new(t)
}

fn madvise(r: &Rig, f: impl Fn(&mut drm_xe_madvise)) -> Result<(), Errno> {
    let mut m = drm_xe_madvise { start: BUF, range: 2 * MIB, vm_id: r.vms[0], attr_type: DRM_XE_MEM_RANGE_ATTR_PAT, ..Default::default() };
    f(&mut m);
    r.ioctl(0, DRM_IOCTL_XE_MADVISE, &mut m)
}

fn bind_ops(r: &Rig, ops: &[drm_xe_vm_bind_op], f: impl Fn(&mut drm_xe_vm_bind)) -> Result<(), Errno> {
    let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: ops.len() as u32, ..Default::default() };
    if ops.len() == 1 {
        b.ops.bind = ops[0];
    } else {
        b.ops.vector_of_binds = ops.as_ptr() as u64;
    }
    f(&mut b);
    r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)
}

fn null_map(addr: u64, range: u64, pat: u16) -> drm_xe_vm_bind_op {
    drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_MAP, flags: DRM_XE_VM_BIND_FLAG_NULL, addr, range, pat_index: pat, ..Default::default() }
}

/// xe_pat.c `xe2_pat_table`: 16-19 are hardware-reserved (no coherency
/// mode); vm_bind_ioctl_check_args and madvise_args_are_sane refuse them,
/// and (Battlemage: 28 entries, xe_pat_init_early) 28 and up.
#[test]
fn xe2_reserved_pat_indices_are_einval_in_bind_and_madvise() {
    let r = rig(KernelVersion::V7_0);
    for pat in [16u16, 17, 18, 19, 28, 32] {
        assert_eq!(bind_ops(&r, &[null_map(BUF, 2 * MIB, pat)], |_| {}), Err(Errno::EINVAL), "bind pat {pat}");
        assert_eq!(madvise(&r, |m| m.attr.pat_index.val = pat as u32), Err(Errno::EINVAL), "madvise pat {pat}");
    }
    for pat in [0u16, 2, 15, 20, 27] {
        assert_eq!(bind_ops(&r, &[null_map(BUF + (pat as u64) * 4 * MIB, 2 * MIB, pat)], |_| {}), Ok(()), "bind pat {pat}");
        assert_eq!(madvise(&r, |m| m.attr.pat_index.val = pat as u32), Ok(()), "madvise pat {pat}");
    }
}

/// vm_bind_ioctl_check_args: MAP_USERPTR with a PAT whose coherency mode is
/// XE_COH_NONE is an argument error (EINVAL), not an unsupported feature.
#[test]
fn userptr_with_non_coherent_pat_is_einval() {
    let r = rig(KernelVersion::V7_0);
    let userptr = |pat: u16| drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_MAP_USERPTR, addr: BUF, range: 2 * MIB, pat_index: pat, ..Default::default() };
    assert_eq!(bind_ops(&r, &[userptr(0)], |_| {}), Err(Errno::EINVAL), "PAT 0 is COH_NONE");
    assert_eq!(bind_ops(&r, &[userptr(3)], |_| {}), Err(Errno::EINVAL), "PAT 3 is COH_NONE");
    // A coherent PAT passes every check; userptr itself is not modelled.
    assert_eq!(bind_ops(&r, &[userptr(2)], |_| {}), Err(Errno::EOPNOTSUPP));
}

/// xe_vm_madvise_ioctl -> xe_vm_alloc_madvise_vma (drm_gpuvm's range check)
/// and xe_vm_bind_ioctl's `range > vm->size || addr > vm->size - range`:
/// a span past the VM (2^48) or wrapping is EINVAL, VMA there or not.
/// madvise first strips the bits above the VA size from the start
/// (`xe_device_uncanonicalize_addr`): 2^48 is 0 to it.
#[test]
fn spans_past_the_vm_or_wrapping_are_einval() {
    let r = rig(KernelVersion::V7_0);
    let vm_size = 1u64 << 48;
    for (start, range) in [(vm_size - 4096, 8192), (vm_size, 4096), (u64::MAX - 4095, 8192), (4096, u64::MAX - 4095)] {
        let m = madvise(&r, |m| {
            m.start = start;
            m.range = range;
            m.attr_type = DRM_XE_MEM_RANGE_ATTR_ATOMIC;
        });
        let want = if start == vm_size { Ok(()) } else { Err(Errno::EINVAL) };
        assert_eq!(m, want, "madvise {start:#x}+{range:#x}");
        assert_eq!(bind_ops(&r, &[null_map(start, range, 0)], |_| {}), Err(Errno::EINVAL), "bind {start:#x}+{range:#x}");
    }
    // Inside the VM with no VMA there: madvise has nothing to do (0).
    let vm = xe::vm_create(&r.drv, r.fds[0], DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
    assert_eq!(xe::madvise_atomic(&r.drv, r.fds[0], vm, BUF, 2 * MIB, DRM_XE_ATOMIC_DEVICE), Ok(()));
    assert_eq!(xe::madvise_atomic(&r.drv, r.fds[0], vm, vm_size - 4096, 8192, DRM_XE_ATOMIC_DEVICE), Err(Errno::EINVAL));
}

/// xe_vm_bind_ioctl: the VM is looked up (EINVAL) before the vector of
/// binds is copied in (EFAULT); every bind's range is checked (EINVAL)
/// before any BO is looked up (ENOENT).
#[test]
fn vm_bind_checks_in_the_kernels_order() {
    let r = rig(KernelVersion::V7_0);
    let bad_vector = |b: &mut drm_xe_vm_bind| {
        b.num_binds = 2;
        b.ops.vector_of_binds = 8; // unmapped
    };
    assert_eq!(bind_ops(&r, &[null_map(BUF, 2 * MIB, 0)], |b| { bad_vector(b); b.vm_id = 999 }), Err(Errno::EINVAL));
    assert_eq!(bind_ops(&r, &[null_map(BUF, 2 * MIB, 0)], bad_vector), Err(Errno::EFAULT));
    let bo = drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_MAP, obj: 7, addr: BUF, range: 2 * MIB, ..Default::default() };
    let past = null_map(1 << 48, 2 * MIB, 0);
    assert_eq!(bind_ops(&r, &[bo, past], |_| {}), Err(Errno::EINVAL), "the range of bind 2 before the BO of bind 1");
    assert_eq!(bind_ops(&r, &[bo, null_map(BUF, 2 * MIB, 0)], |_| {}), Err(Errno::ENOENT));
    // A vector the kernel could not allocate (over INT_MAX bytes): ENOBUFS.
    assert_eq!(bind_ops(&r, &[null_map(BUF, 2 * MIB, 0)], |b| { b.num_binds = 30_000_000; b.ops.vector_of_binds = 8 }), Err(Errno::ENOBUFS));
}

/// The VFS answers EBADF for a closed fd before any DRM code; xe_drm_ioctl
/// answers ECANCELED for a wedged device (and drm_ioctl ENODEV for an
/// unplugged one) before the DRM core looks at the request's type.
#[test]
fn closed_fd_and_gone_devices_answer_before_the_type_check() {
    let r = rig(KernelVersion::V7_0);
    let not_drm = ioc(IOC_READ | IOC_WRITE, 0x10, 8) & !(0xff << 8) | (b'f' as u32) << 8;
    let mut q = 0u64;
    assert_eq!(ioctl(&r.drv, 12345, not_drm, &mut q), Err(Errno::EBADF), "closed fd");
    assert_eq!(ioctl(&r.drv, r.fds[0], not_drm, &mut q), Err(Errno::ENOTTY), "open fd, not a DRM ioctl");
    r.sim.remove_device(0, Errno::ECANCELED).unwrap();
    assert_eq!(ioctl(&r.drv, r.fds[0], not_drm, &mut q), Err(Errno::ECANCELED), "wedged");
    r.sim.remove_device(1, Errno::ENODEV).unwrap();
    assert_eq!(ioctl(&r.drv, r.fds[1], not_drm, &mut q), Err(Errno::ENODEV), "unplugged");
}

/// xe_vm_find_cpu_addr_mirror_vma_range: a CPU_ADDR_MIRROR re-MAP of part
/// of a mirror VMA with default attributes covers the whole VMA, so it
/// succeeds over live SVM ranges; a VMA with other attributes would be
/// split, and splitting one with mappings is EBUSY (vm_bind_ioctl_ops_parse).
#[test]
fn mirror_remap_widens_over_default_vmas_only() {
    let r = rig(KernelVersion::V7_0);
    r.gpu(0, BUF, 2 * MIB, Access::Write).unwrap();
    let remap = |addr| bind_ops(&r, &[drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_MAP, flags: DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR, addr, range: 2 * MIB, ..Default::default() }], |_| {});
    assert_eq!(remap(BUF), Ok(()), "default attributes: widened to the whole VMA");
    // Non-default attributes on the span holding a live range: EBUSY.
    r.gpu(0, BUF + 8 * MIB, 2 * MIB, Access::Write).unwrap();
    xe::madvise_atomic(&r.drv, r.fds[0], r.vms[0], BUF + 8 * MIB, 4 * MIB, DRM_XE_ATOMIC_DEVICE).unwrap();
    r.gpu(0, BUF + 8 * MIB, 2 * MIB, Access::Write).unwrap();
    assert_eq!(remap(BUF + 8 * MIB), Err(Errno::EBUSY));
    r.sim.check_invariants().unwrap();
}

/// xe_vm_query_vmas_attrs_ioctl allocates num_mem_ranges entries before
/// filling them: over INT_MAX bytes kvmalloc fails, ENOBUFS (ENOMEM for one).
#[test]
fn query_with_a_huge_num_mem_ranges_is_enobufs() {
    let r = rig(KernelVersion::V7_0);
    let mut out = [drm_xe_mem_range_attr::default(); 1];
    let mut q = drm_xe_vm_query_mem_range_attr {
        vm_id: r.vms[0],
        num_mem_ranges: u32::MAX,
        start: BUF,
        range: 2 * MIB,
        sizeof_mem_range_attr: 64,
        vector_of_mem_attr: out.as_mut_ptr() as u64,
        ..Default::default()
    };
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &mut q), Err(Errno::ENOBUFS));
    q.num_mem_ranges = 1;
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &mut q), Ok(()));
    // Arguments are checked before the VM is looked up.
    q.vm_id = 999;
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &mut q), Err(Errno::EINVAL));
}

/// xe_vm_create_ioctl: SCRATCH_PAGE with FAULT_MODE is refused only where
/// the platform does not need scratch pages (`xe->info.needs_scratch`).
#[test]
fn scratch_with_fault_mode_depends_on_the_platform() {
    let flags = DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE | DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE;
    let mut t = Topology::preset("2dgpu-p2p").unwrap();
    t.devices[1].needs_scratch = false;
    let sim = Sim::new(t).unwrap();
    let drv = xesvm::sim::driver::SimDriver::new(sim.clone());
    let (a, b) = (sim.open_device(0).unwrap(), sim.open_device(1).unwrap());
    assert!(xe::vm_create(&drv, a, flags).is_ok(), "BMG needs scratch");
    assert_eq!(xe::vm_create(&drv, b, flags), Err(Errno::EINVAL));
    let ig = Rig::preset("igpu");
    assert!(xe::vm_create(&ig.drv, ig.fds[0], flags).is_ok(), "LNL needs scratch");
    // pvc_desc sets no needs_scratch: the Data Center GPU Max preset refuses it.
    let pvc = Rig::preset("max-node");
    assert_eq!(xe::vm_create(&pvc.drv, pvc.fds[0], flags), Err(Errno::EINVAL), "PVC does not need scratch");
    let fault_only = DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE;
    assert!(xe::vm_create(&pvc.drv, pvc.fds[0], fault_only).is_ok());
}

/// query_engines: size 0 asks for the size and returns 0, like every query.
#[test]
fn engines_query_follows_the_size_protocol() {
    let r = rig(KernelVersion::V7_0);
    let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_ENGINES, ..Default::default() };
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_DEVICE_QUERY, &mut q), Ok(()));
    assert_eq!(q.size as usize, 8 + 5 * 32, "one tile: render, copy, compute, video decode, video enhance");
    let mut buf = vec![0u64; q.size as usize / 8];
    q.data = buf.as_mut_ptr() as u64;
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_DEVICE_QUERY, &mut q), Ok(()));
    assert_eq!(buf[0] & 0xffff_ffff, 5);
    q.size -= 8;
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_DEVICE_QUERY, &mut q), Err(Errno::EINVAL), "a wrong size");
}

/// to_jiffies_timeout: a negative timeout becomes MAX_SCHEDULE_TIMEOUT in
/// the argument, and xe_wait_user_fence_ioctl then subtracts the time spent:
/// the caller gets back nearly i64::MAX, not -1.
#[test]
fn wait_with_negative_timeout_writes_back_max_schedule_timeout_minus_time_spent() {
    let r = rig(KernelVersion::V7_0);
    let word: u64 = 5;
    let mut w = drm_xe_wait_user_fence { addr: &word as *const u64 as u64, value: 5, mask: u64::MAX, timeout: -1, ..Default::default() };
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_WAIT_USER_FENCE, &mut w), Ok(()));
    assert!(w.timeout > i64::MAX - 1_000_000_000 && w.timeout < i64::MAX, "{}", w.timeout);
    // Relative timeouts come back reduced, never negative.
    w.timeout = 1_000_000_000;
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_WAIT_USER_FENCE, &mut w), Ok(()));
    assert!(w.timeout > 0 && w.timeout <= 1_000_000_000);
}

/// docs/xe-uapi.md §7: what each release knows. Unknown bits are EINVAL where a
/// release lacks them.
#[test]
fn kernel_releases_differ_in_flags_and_features() {
    for k in [KernelVersion::V6_18, KernelVersion::V7_0, KernelVersion::V7_1] {
        let r = rig(k);
        let v7_1 = k >= KernelVersion::V7_1;
        // VM_CREATE NO_VM_OVERCOMMIT (7.1).
        let flags = DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE | DRM_XE_VM_CREATE_FLAG_NO_VM_OVERCOMMIT;
        assert_eq!(xe::vm_create(&r.drv, r.fds[0], flags).is_ok(), v7_1, "{k}: NO_VM_OVERCOMMIT");
        // VM_BIND DECOMPRESS (7.1, on a discrete Xe2 device as here:
        // tests/sim_kernel_cases.rs has where else it is EOPNOTSUPP).
        let op = drm_xe_vm_bind_op { flags: DRM_XE_VM_BIND_FLAG_DECOMPRESS | DRM_XE_VM_BIND_FLAG_NULL, ..null_map(BUF, 2 * MIB, 0) };
        let want = if v7_1 { Ok(()) } else { Err(Errno::EINVAL) };
        assert_eq!(bind_ops(&r, &[op], |_| {}), want, "{k}: DECOMPRESS");
        // Purgeable-state madvise (7.1).
        let m = madvise(&r, |m| m.attr_type = DRM_XE_VMA_ATTR_PURGEABLE_STATE);
        assert_eq!(m.is_ok(), v7_1, "{k}: purgeable madvise");
        // VM_GET_PROPERTY (7.1): known but not modelled there; EINVAL before.
        let mut p = [0u64; 7];
        let req = ioc(IOC_READ | IOC_WRITE, DRM_COMMAND_BASE + DRM_XE_VM_GET_PROPERTY, 56);
        let want = if v7_1 { Errno::EOPNOTSUPP } else { Errno::EINVAL };
        assert_eq!(ioctl(&r.drv, r.fds[0], req, &mut p), Err(want), "{k}: VM_GET_PROPERTY");
        // Multi-device madvise (7.0+): region_instance is pad on 6.18.
        let multi = r.pref(0, BUF, 2 * MIB, xe::PreferredLoc::Device { devmem_fd: r.fds[1], region_instance: 1 });
        assert_eq!(multi.is_ok(), k >= KernelVersion::V7_0, "{k}: multi-device madvise");
        // CONFIG flags by release.
        let info = xesvm::driver::query::query_device(&r.drv, r.fds[0]).unwrap();
        assert_eq!(info.config.flags & DRM_XE_QUERY_CONFIG_FLAG_HAS_NO_COMPRESSION_HINT != 0, k >= KernelVersion::V7_0, "{k}");
        assert_eq!(info.config.flags & DRM_XE_QUERY_CONFIG_FLAG_HAS_DISABLE_STATE_CACHE_PERF_FIX != 0, v7_1, "{k}");
    }
    assert_eq!(KernelVersion::parse("7.1"), Some(KernelVersion::V7_1));
    assert_eq!(Topology::parse("kernel = \"7.1\"\n[[device]]\nname = \"g\"\n").unwrap().kernel, KernelVersion::V7_1);
}
