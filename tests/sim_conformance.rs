//! Conformance of the simulated driver with docs/xe-uapi.md §2 and §6: one case
//! per validation rule, each issued through the real uAPI structs, checked
//! against the kernel's errno.

mod common;

use common::*;
use xesvm::driver::{ioctl, query, xe};
use xesvm::errno::Errno;
use xesvm::sim::{Access, KernelVersion, Topology};
use xesvm::uapi::*;

type Case = (&'static str, Box<dyn Fn(&Rig) -> Result<(), Errno>>, Result<(), Errno>);

fn ok() -> Result<(), Errno> {
    Ok(())
}
fn e(x: Errno) -> Result<(), Errno> {
    Err(x)
}

fn query(r: &Rig, f: impl Fn(&mut drm_xe_device_query)) -> Result<(), Errno> {
    let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_CONFIG, ..Default::default() };
    f(&mut q);
    r.ioctl(0, DRM_IOCTL_XE_DEVICE_QUERY, &mut q)
}

fn vm_create(r: &Rig, f: impl Fn(&mut drm_xe_vm_create)) -> Result<(), Errno> {
    let mut c = drm_xe_vm_create { flags: DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE, ..Default::default() };
    f(&mut c);
    r.ioctl(0, DRM_IOCTL_XE_VM_CREATE, &mut c)
}

fn mirror_op(addr: u64, range: u64) -> drm_xe_vm_bind_op {
    drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_MAP, flags: DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR, addr, range, ..Default::default() }
}

/// A VM_BIND of one op (mirror MAP unless `f` changes it) with no syncs.
fn bind(r: &Rig, f: impl Fn(&mut drm_xe_vm_bind, &mut drm_xe_vm_bind_op)) -> Result<(), Errno> {
    let mut op = mirror_op(BUF, 2 * MIB);
    let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 1, ..Default::default() };
    f(&mut b, &mut op);
    if b.num_binds == 1 {
        b.ops.bind = op;
    }
    r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)
}

/// A prefetch VM_BIND with one sync built by `f`.
fn bind_sync(r: &Rig, f: impl Fn(&mut drm_xe_sync, &mut u64)) -> Result<(), Errno> {
    let mut fence: u64 = 0;
    let mut s = drm_xe_sync { sync_type: DRM_XE_SYNC_TYPE_USER_FENCE, flags: DRM_XE_SYNC_FLAG_SIGNAL, timeline_value: 7, ..Default::default() };
    s.addr = &mut fence as *mut u64 as u64;
    f(&mut s, &mut fence);
    let op = drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_PREFETCH, addr: BUF, range: 2 * MIB, ..Default::default() };
    let mut b = drm_xe_vm_bind {
        vm_id: r.vms[0],
        num_binds: 1,
        ops: drm_xe_vm_bind_ops { bind: op },
        num_syncs: 1,
        syncs: &mut s as *mut drm_xe_sync as u64,
        ..Default::default()
    };
    r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)?;
    // The fence signals after the ioctl returns: wait while it is alive.
    if s.sync_type == DRM_XE_SYNC_TYPE_USER_FENCE && s.addr == &mut fence as *mut u64 as u64 {
        let mut w = drm_xe_wait_user_fence { addr: s.addr, op: DRM_XE_UFENCE_WAIT_OP_EQ, value: s.timeline_value, mask: u64::MAX, timeout: 1_000_000_000, ..Default::default() };
        r.ioctl(0, DRM_IOCTL_XE_WAIT_USER_FENCE, &mut w)?;
    }
    Ok(())
}

fn wait(r: &Rig, f: impl Fn(&mut drm_xe_wait_user_fence)) -> Result<(), Errno> {
    let word: u64 = 5;
    let mut w = drm_xe_wait_user_fence {
        addr: &word as *const u64 as u64,
        op: DRM_XE_UFENCE_WAIT_OP_EQ,
        value: 5,
        mask: u64::MAX,
        timeout: 0,
        ..Default::default()
    };
    f(&mut w);
    r.ioctl(0, DRM_IOCTL_XE_WAIT_USER_FENCE, &mut w)
}

fn madvise(r: &Rig, dev: usize, f: impl Fn(&mut drm_xe_madvise)) -> Result<(), Errno> {
    let mut m = drm_xe_madvise { start: BUF, range: 2 * MIB, vm_id: r.vms[dev], attr_type: DRM_XE_MEM_RANGE_ATTR_ATOMIC, ..Default::default() };
    f(&mut m);
    r.ioctl(dev, DRM_IOCTL_XE_MADVISE, &mut m)
}

fn pref(m: &mut drm_xe_madvise, fd: u32, inst: u16) {
    m.attr_type = DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC;
    m.attr.preferred_mem_loc = drm_xe_madvise_preferred_mem_loc { devmem_fd: fd, migration_policy: 0, region_instance: inst, reserved: 0 };
}

fn qattr(r: &Rig, f: impl Fn(&mut drm_xe_vm_query_mem_range_attr, u64)) -> Result<(), Errno> {
    let mut buf = vec![drm_xe_mem_range_attr::default(); 4];
    let mut q = drm_xe_vm_query_mem_range_attr { vm_id: r.vms[0], start: 0, range: 1 << 47, ..Default::default() };
    f(&mut q, buf.as_mut_ptr() as u64);
    r.ioctl(0, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &mut q)
}

macro_rules! case {
    ($name:expr, $body:expr, $want:expr) => {
        ($name, Box::new($body) as Box<dyn Fn(&Rig) -> Result<(), Errno>>, $want)
    };
}

fn cases() -> Vec<Case> {
    vec![
        // §2 DRM core dispatch
        case!("§2 type byte not 'd' -> ENOTTY", |r: &Rig| {
            let mut x = 0u64;
            r.ioctl(0, ioc(IOC_READ | IOC_WRITE, 0x40, 8) & !0xff00 | (0x41 << 8), &mut x)
        }, e(Errno::ENOTTY)),
        case!("§2 nr unknown to the driver -> EINVAL", |r: &Rig| {
            let mut x = [0u64; 2];
            r.ioctl(0, ioc(IOC_READ | IOC_WRITE, 0x9f, 16), &mut x)
        }, e(Errno::EINVAL)),
        // SAFETY: the bad pointer is the point: the simulated driver must
        // refuse it (EFAULT) without touching it.
        case!("§2 bad argument pointer -> EFAULT", |r: &Rig| unsafe {
            xesvm::driver::Driver::ioctl_raw(&r.drv, r.fds[0], DRM_IOCTL_XE_VM_CREATE, 16 as *mut _)
        }, e(Errno::EFAULT)),
        case!("§2 unknown fd -> EBADF", |r: &Rig| {
            let mut c = drm_xe_vm_create::default();
            ioctl(&r.drv, 9999, DRM_IOCTL_XE_VM_CREATE, &mut c)
        }, e(Errno::EBADF)),
        case!("§2 an open fd that is no DRM device (/dev/null) -> ENOTTY (vfs_ioctl)", |r: &Rig| {
            use std::os::fd::AsRawFd;
            let null = std::fs::File::open("/dev/null").unwrap();
            let mut c = drm_xe_vm_create::default();
            ioctl(&r.drv, null.as_raw_fd(), DRM_IOCTL_XE_VM_CREATE, &mut c)
        }, e(Errno::ENOTTY)),
        // §6.1 DEVICE_QUERY
        case!("§6.1 extensions != 0 -> EINVAL", |r: &Rig| query(r, |q| q.extensions = 1), e(Errno::EINVAL)),
        case!("§6.1 reserved != 0 -> EINVAL", |r: &Rig| query(r, |q| q.reserved[1] = 1), e(Errno::EINVAL)),
        case!("§6.1 unknown query id -> EINVAL", |r: &Rig| query(r, |q| q.query = 99), e(Errno::EINVAL)),
        case!("§6.1 size neither 0 nor exact -> EINVAL", |r: &Rig| query(r, |q| q.size = 9), e(Errno::EINVAL)),
        case!("§6.1 size 0 asks for the size", |r: &Rig| {
            let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_MEM_REGIONS, ..Default::default() };
            r.ioctl(0, DRM_IOCTL_XE_DEVICE_QUERY, &mut q)?;
            if q.size as usize == 8 + 2 * 88 { Ok(()) } else { Err(Errno::ERANGE) }
        }, ok()),
        case!("§6.1 bad data pointer -> EFAULT", |r: &Rig| query(r, |q| { q.size = 48; q.data = 8 }), e(Errno::EFAULT)),
        case!("§6.1 MEM_REGIONS copy-out failure -> ENOSPC", |r: &Rig| query(r, |q| {
            q.query = DRM_XE_DEVICE_QUERY_MEM_REGIONS; q.size = 8 + 2 * 88; q.data = 8
        }), e(Errno::ENOSPC)),
        // §6.2 VM_CREATE
        case!("§6.2 extensions -> EINVAL", |r: &Rig| vm_create(r, |c| c.extensions = 1), e(Errno::EINVAL)),
        case!("§6.2 reserved -> EINVAL", |r: &Rig| vm_create(r, |c| c.reserved[0] = 1), e(Errno::EINVAL)),
        case!("§6.2 unknown flag -> EINVAL", |r: &Rig| vm_create(r, |c| c.flags |= 1 << 8), e(Errno::EINVAL)),
        case!("§6.2 FAULT_MODE without LR_MODE -> EINVAL", |r: &Rig| vm_create(r, |c| c.flags = DRM_XE_VM_CREATE_FLAG_FAULT_MODE), e(Errno::EINVAL)),
        case!("§6.2 SCRATCH_PAGE with FAULT_MODE on Xe2 (needs scratch) -> 0", |r: &Rig| vm_create(r, |c| c.flags |= DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE), ok()),
        case!("§6.2 NO_VM_OVERCOMMIT without FAULT_MODE -> EINVAL", |r: &Rig| vm_create(r, |c| c.flags = DRM_XE_VM_CREATE_FLAG_NO_VM_OVERCOMMIT), e(Errno::EINVAL)),
        case!("§6.2 LR|FAULT is accepted", |r: &Rig| vm_create(r, |_| {}), ok()),
        // §6.3 VM_DESTROY
        case!("§6.3 pad -> EINVAL", |r: &Rig| r.ioctl(0, DRM_IOCTL_XE_VM_DESTROY, &mut drm_xe_vm_destroy { vm_id: r.vms[0], pad: 1, reserved: [0; 2] }), e(Errno::EINVAL)),
        case!("§6.3 reserved -> EINVAL", |r: &Rig| r.ioctl(0, DRM_IOCTL_XE_VM_DESTROY, &mut drm_xe_vm_destroy { vm_id: r.vms[0], pad: 0, reserved: [0, 1] }), e(Errno::EINVAL)),
        case!("§6.3 unknown vm -> ENOENT", |r: &Rig| xe::vm_destroy(&r.drv, r.fds[0], 777), e(Errno::ENOENT)),
        // §6.4 VM_BIND, whole-ioctl checks
        case!("§6.4 unknown vm -> EINVAL", |r: &Rig| bind(r, |b, _| b.vm_id = 777), e(Errno::EINVAL)),
        case!("§6.4 extensions -> EINVAL", |r: &Rig| bind(r, |b, _| b.extensions = 1), e(Errno::EINVAL)),
        case!("§6.4 pad -> EINVAL", |r: &Rig| bind(r, |b, _| b.pad = 1), e(Errno::EINVAL)),
        case!("§6.4 pad2 -> EINVAL", |r: &Rig| bind(r, |b, _| b.pad2 = 1), e(Errno::EINVAL)),
        case!("§6.4 reserved -> EINVAL", |r: &Rig| bind(r, |b, _| b.reserved[1] = 1), e(Errno::EINVAL)),
        case!("§6.4 num_syncs > 1024 -> EINVAL", |r: &Rig| bind(r, |b, _| b.num_syncs = 1025), e(Errno::EINVAL)),
        case!("§6.4 unknown exec queue -> ENOENT", |r: &Rig| bind(r, |b, _| b.exec_queue_id = 3), e(Errno::ENOENT)),
        case!("§6.4 range beyond the VM -> EINVAL", |r: &Rig| bind(r, |_, o| { o.addr = (1 << 48) - 4096; o.range = 8192 }), e(Errno::EINVAL)),
        case!("§6.4 unknown GEM handle -> ENOENT", |r: &Rig| bind(r, |_, o| { o.flags = 0; o.obj = 5 }), e(Errno::ENOENT)),
        case!("§6.4 bad vector_of_binds -> EFAULT", |r: &Rig| bind(r, |b, _| { b.num_binds = 2; b.ops.vector_of_binds = 8 }), e(Errno::EFAULT)),
        case!("§6.4 num_binds 0 is nothing to do", |r: &Rig| bind(r, |b, _| b.num_binds = 0), ok()),
        // §6.4 per-op checks
        case!("§6.4 op > PREFETCH -> EINVAL", |r: &Rig| bind(r, |_, o| { o.flags = 0; o.op = 5 }), e(Errno::EINVAL)),
        case!("§6.4 unknown flag -> EINVAL", |r: &Rig| bind(r, |_, o| o.flags |= 1 << 9), e(Errno::EINVAL)),
        case!("§6.4 CPU_ADDR_MIRROR on a non-fault VM -> EINVAL", |r: &Rig| {
            let vm = xe::vm_create(&r.drv, r.fds[0], DRM_XE_VM_CREATE_FLAG_LR_MODE)?;
            bind(r, |b, _| b.vm_id = vm)
        }, e(Errno::EINVAL)),
        case!("§6.4 pat_index out of range -> EINVAL", |r: &Rig| bind(r, |_, o| o.pat_index = 40), e(Errno::EINVAL)),
        case!("§6.4 mirror with obj -> EINVAL", |r: &Rig| bind(r, |_, o| o.obj = 1), e(Errno::EINVAL)),
        case!("§6.4 mirror with obj_offset -> EINVAL", |r: &Rig| bind(r, |_, o| o.obj_offset = 4096), e(Errno::EINVAL)),
        case!("§6.4 NULL on an op other than MAP -> EINVAL", |r: &Rig| bind(r, |_, o| { o.op = DRM_XE_VM_BIND_OP_UNMAP; o.flags = DRM_XE_VM_BIND_FLAG_NULL }), e(Errno::EINVAL)),
        case!("§6.4 MAP without obj, NULL or MIRROR -> EINVAL", |r: &Rig| bind(r, |_, o| o.flags = 0), e(Errno::EINVAL)),
        case!("§6.4 UNMAP_ALL without obj -> EINVAL", |r: &Rig| bind(r, |_, o| { o.op = DRM_XE_VM_BIND_OP_UNMAP_ALL; o.flags = 0; o.addr = 0; o.range = 0 }), e(Errno::EINVAL)),
        case!("§6.4 UNMAP_ALL with addr -> EINVAL", |r: &Rig| bind(r, |_, o| { o.op = DRM_XE_VM_BIND_OP_UNMAP_ALL; o.flags = 0; o.obj = 1; o.range = 0 }), e(Errno::EINVAL)),
        case!("§6.4 PREFETCH with obj -> EINVAL", |r: &Rig| bind(r, |_, o| { o.op = DRM_XE_VM_BIND_OP_PREFETCH; o.flags = 0; o.obj = 1 }), e(Errno::EINVAL)),
        case!("§6.4 UNMAP with obj -> EINVAL", |r: &Rig| bind(r, |_, o| { o.op = DRM_XE_VM_BIND_OP_UNMAP; o.flags = 0; o.obj = 1 }), e(Errno::EINVAL)),
        case!("§6.4 prefetch region on a non-PREFETCH op -> EINVAL", |r: &Rig| bind(r, |_, o| o.prefetch_mem_region_instance = 1), e(Errno::EINVAL)),
        case!("§6.4 prefetch to a region the device lacks -> EINVAL", |r: &Rig| bind(r, |_, o| { o.op = DRM_XE_VM_BIND_OP_PREFETCH; o.flags = 0; o.prefetch_mem_region_instance = 3 }), e(Errno::EINVAL)),
        case!("§6.4 MADVISE_AUTORESET without MIRROR -> EINVAL", |r: &Rig| bind(r, |_, o| o.flags = DRM_XE_VM_BIND_FLAG_NULL | DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET), e(Errno::EINVAL)),
        case!("§6.4 addr not page aligned -> EINVAL", |r: &Rig| bind(r, |_, o| o.addr += 16), e(Errno::EINVAL)),
        case!("§6.4 range not page aligned -> EINVAL", |r: &Rig| bind(r, |_, o| o.range += 16), e(Errno::EINVAL)),
        case!("§6.4 range 0 -> EINVAL", |r: &Rig| bind(r, |_, o| o.range = 0), e(Errno::EINVAL)),
        case!("§6.4/§7 DECOMPRESS before 7.1 is an unknown flag -> EINVAL", |r: &Rig| bind(r, |_, o| o.flags = DRM_XE_VM_BIND_FLAG_DECOMPRESS | DRM_XE_VM_BIND_FLAG_NULL), e(Errno::EINVAL)),
        case!("§6.4 UNMAP of a mirror VMA with SVM mappings -> EBUSY", |r: &Rig| {
            r.gpu(0, BUF, 2 * MIB, Access::Write)?;
            bind(r, |_, o| { o.op = DRM_XE_VM_BIND_OP_UNMAP; o.flags = 0 })
        }, e(Errno::EBUSY)),
        case!("§6.4 partial MAP over a mirror VMA with mappings -> EBUSY", |r: &Rig| {
            r.gpu(0, BUF, 2 * MIB, Access::Write)?;
            bind(r, |_, o| { o.flags = DRM_XE_VM_BIND_FLAG_NULL; o.range = 4096 })
        }, e(Errno::EBUSY)),
        case!("§6.4 mirror MAP fully covering a mirror with mappings is allowed", |r: &Rig| {
            r.gpu(0, BUF, 2 * MIB, Access::Write)?;
            bind(r, |_, o| { o.addr = 0; o.range = 1 << 47 })
        }, ok()),
        case!("§6.4 UNMAP of an unfaulted mirror part punches a gap", |r: &Rig| bind(r, |_, o| { o.op = DRM_XE_VM_BIND_OP_UNMAP; o.flags = 0 }), ok()),
        // §6.5 syncs
        case!("§6.5 flags other than SIGNAL -> EINVAL", |r: &Rig| bind_sync(r, |s, _| s.flags |= 2), e(Errno::EINVAL)),
        case!("§6.5 reserved -> EINVAL", |r: &Rig| bind_sync(r, |s, _| s.reserved[0] = 1), e(Errno::EINVAL)),
        case!("§6.5 unknown type -> EINVAL", |r: &Rig| bind_sync(r, |s, _| s.sync_type = 9), e(Errno::EINVAL)),
        case!("§6.5 syncobj SIGNAL on an LR VM -> EOPNOTSUPP", |r: &Rig| bind_sync(r, |s, _| { s.sync_type = DRM_XE_SYNC_TYPE_SYNCOBJ; s.addr = 1 }), e(Errno::EOPNOTSUPP)),
        case!("§6.5 syncobj handle upper bits -> EINVAL", |r: &Rig| bind_sync(r, |s, _| { s.sync_type = DRM_XE_SYNC_TYPE_SYNCOBJ; s.flags = 0; s.addr = 1 << 40 }), e(Errno::EINVAL)),
        case!("§6.5 syncobj not found -> ENOENT", |r: &Rig| bind_sync(r, |s, _| { s.sync_type = DRM_XE_SYNC_TYPE_SYNCOBJ; s.flags = 0; s.addr = 3 }), e(Errno::ENOENT)),
        case!("§6.5 timeline value 0 -> EINVAL", |r: &Rig| bind_sync(r, |s, _| { s.sync_type = DRM_XE_SYNC_TYPE_TIMELINE_SYNCOBJ; s.flags = 0; s.addr = 3; s.timeline_value = 0 }), e(Errno::EINVAL)),
        case!("§6.5 user fence without SIGNAL -> EOPNOTSUPP", |r: &Rig| bind_sync(r, |s, _| s.flags = 0), e(Errno::EOPNOTSUPP)),
        case!("§6.5 user fence misaligned -> EINVAL", |r: &Rig| bind_sync(r, |s, _| s.addr += 4), e(Errno::EINVAL)),
        case!("§6.5 user fence unmapped -> EFAULT", |r: &Rig| bind_sync(r, |s, _| s.addr = 0x100), e(Errno::EFAULT)),
        case!("§6.5 user fence is written on completion, after the ioctl returns", |r: &Rig| {
            let mut fence = 0u64;
            let mut s = drm_xe_sync { sync_type: DRM_XE_SYNC_TYPE_USER_FENCE, flags: DRM_XE_SYNC_FLAG_SIGNAL, addr: &mut fence as *mut u64 as u64, timeline_value: 77, ..Default::default() };
            let op = drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_PREFETCH, addr: BUF, range: 2 * MIB, ..Default::default() };
            let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 1, ops: drm_xe_vm_bind_ops { bind: op }, num_syncs: 1, syncs: &mut s as *mut _ as u64, ..Default::default() };
            r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)?;
            // In flight: an LR VM's bind signals when its job completes.
            // SAFETY: a live local the kernel (simulated) may write.
            let in_flight = unsafe { std::ptr::read_volatile(&fence) } == 0;
            let mut w = drm_xe_wait_user_fence { addr: &mut fence as *mut u64 as u64, op: DRM_XE_UFENCE_WAIT_OP_EQ, value: 77, mask: u64::MAX, timeout: 1_000_000_000, ..Default::default() };
            r.ioctl(0, DRM_IOCTL_XE_WAIT_USER_FENCE, &mut w)?;
            if in_flight && fence == 77 { Ok(()) } else { Err(Errno::ERANGE) }
        }, ok()),
        case!("§6.5 two user fences -> EINVAL", |r: &Rig| {
            let mut fence = [0u64; 2];
            let s = |i: usize, f: &mut [u64; 2]| drm_xe_sync { sync_type: DRM_XE_SYNC_TYPE_USER_FENCE, flags: DRM_XE_SYNC_FLAG_SIGNAL, addr: &mut f[i] as *mut u64 as u64, timeline_value: 1, ..Default::default() };
            let mut syncs = [s(0, &mut fence), s(1, &mut fence)];
            let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 1, ops: drm_xe_vm_bind_ops { bind: mirror_op(BUF, 2 * MIB) }, num_syncs: 2, syncs: syncs.as_mut_ptr() as u64, ..Default::default() };
            r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)
        }, e(Errno::EINVAL)),
        case!("§6.5 user fence with num_binds 0 -> EOPNOTSUPP", |r: &Rig| {
            let mut fence = 0u64;
            let mut s = drm_xe_sync { sync_type: DRM_XE_SYNC_TYPE_USER_FENCE, flags: DRM_XE_SYNC_FLAG_SIGNAL, addr: &mut fence as *mut u64 as u64, timeline_value: 1, ..Default::default() };
            let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 0, num_syncs: 1, syncs: &mut s as *mut _ as u64, ..Default::default() };
            r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b)
        }, e(Errno::EOPNOTSUPP)),
        case!("§6.5 bad syncs pointer -> EFAULT", |r: &Rig| bind(r, |b, _| { b.num_syncs = 1; b.syncs = 8 }), e(Errno::EFAULT)),
        // §6.6 WAIT_USER_FENCE
        case!("§6.6 extensions -> EINVAL", |r: &Rig| wait(r, |w| w.extensions = 1), e(Errno::EINVAL)),
        case!("§6.6 pad -> EINVAL", |r: &Rig| wait(r, |w| w.pad = 1), e(Errno::EINVAL)),
        case!("§6.6 pad2 -> EINVAL", |r: &Rig| wait(r, |w| w.pad2 = 1), e(Errno::EINVAL)),
        case!("§6.6 reserved -> EINVAL", |r: &Rig| wait(r, |w| w.reserved[0] = 1), e(Errno::EINVAL)),
        case!("§6.6 flags other than ABSTIME -> EINVAL", |r: &Rig| wait(r, |w| w.flags = 2), e(Errno::EINVAL)),
        case!("§6.6 op > LTE -> EINVAL", |r: &Rig| wait(r, |w| w.op = 6), e(Errno::EINVAL)),
        case!("§6.6 addr misaligned -> EINVAL", |r: &Rig| wait(r, |w| w.addr += 1), e(Errno::EINVAL)),
        case!("§6.6 unknown exec queue -> ENOENT", |r: &Rig| wait(r, |w| w.exec_queue_id = 4), e(Errno::ENOENT)),
        case!("§6.6 unreadable addr -> EFAULT", |r: &Rig| wait(r, |w| w.addr = 0x800), e(Errno::EFAULT)),
        case!("§6.6 condition met -> 0", |r: &Rig| wait(r, |w| w.timeout = 1_000_000), ok()),
        case!("§6.6 masked GT met -> 0", |r: &Rig| wait(r, |w| { w.op = DRM_XE_UFENCE_WAIT_OP_GT; w.value = 4; w.mask = 0xff; w.timeout = 1_000_000 }), ok()),
        case!("§6.6 timeout 0, met -> 0 (xe_wait_user_fence_ioctl since 6.12: the trailing !timeout ETIME is gone)", |r: &Rig| wait(r, |_| {}), ok()),
        case!("§6.6 timeout 0, unmet -> ETIME", |r: &Rig| wait(r, |w| w.value = 6), e(Errno::ETIME)),
        case!("§6.6 short timeout, unmet -> ETIME", |r: &Rig| wait(r, |w| { w.value = 6; w.timeout = 200_000 }), e(Errno::ETIME)),
        // §6.7 MADVISE
        case!("§6.7 unknown vm -> EINVAL", |r: &Rig| madvise(r, 0, |m| m.vm_id = 99), e(Errno::EINVAL)),
        case!("§6.7 start unaligned -> EINVAL", |r: &Rig| madvise(r, 0, |m| m.start += 8), e(Errno::EINVAL)),
        case!("§6.7 range unaligned -> EINVAL", |r: &Rig| madvise(r, 0, |m| m.range += 8), e(Errno::EINVAL)),
        case!("§6.7 range below 4 KiB -> EINVAL", |r: &Rig| madvise(r, 0, |m| m.range = 0), e(Errno::EINVAL)),
        case!("§6.7 unknown type -> EINVAL", |r: &Rig| madvise(r, 0, |m| m.attr_type = 9), e(Errno::EINVAL)),
        case!("§6.7 reserved -> EINVAL", |r: &Rig| madvise(r, 0, |m| m.reserved[0] = 1), e(Errno::EINVAL)),
        case!("§6.7 devmem_fd < -1 -> EINVAL", |r: &Rig| madvise(r, 0, |m| pref(m, (-2i32) as u32, 0)), e(Errno::EINVAL)),
        case!("§6.7 migration_policy > 1 -> EINVAL", |r: &Rig| madvise(r, 0, |m| { pref(m, 0, 0); m.attr.preferred_mem_loc.migration_policy = 2 }), e(Errno::EINVAL)),
        case!("§6.7 preferred_mem_loc.reserved -> EINVAL", |r: &Rig| madvise(r, 0, |m| { pref(m, 0, 0); m.attr.preferred_mem_loc.reserved = 1 }), e(Errno::EINVAL)),
        case!("§6.7 region_instance with DEFAULT_DEVICE -> EINVAL", |r: &Rig| madvise(r, 0, |m| pref(m, 0, 1)), e(Errno::EINVAL)),
        case!("§6.7 region_instance with DEFAULT_SYSTEM -> EINVAL", |r: &Rig| madvise(r, 0, |m| pref(m, u32::MAX, 1)), e(Errno::EINVAL)),
        case!("§6.7 devmem_fd not open -> ENOENT", |r: &Rig| madvise(r, 0, |m| pref(m, 999, 1)), e(Errno::ENOENT)),
        case!("§6.7 devmem_fd not an Xe file -> ENOENT", |r: &Rig| {
            let f = std::fs::File::open("/dev/null").unwrap();
            madvise(r, 0, |m| pref(m, std::os::fd::AsRawFd::as_raw_fd(&f) as u32, 1))
        }, e(Errno::ENOENT)),
        case!("§6.7 region_instance 0 with a device fd -> ENOENT", |r: &Rig| madvise(r, 0, |m| pref(m, r.fds[1] as u32, 0)), e(Errno::ENOENT)),
        case!("§6.7 region_instance beyond the device's VRAM -> ENOENT", |r: &Rig| madvise(r, 0, |m| pref(m, r.fds[1] as u32, 2)), e(Errno::ENOENT)),
        case!("§6.7 peer over PCIe P2P is accepted", |r: &Rig| madvise(r, 0, |m| pref(m, r.fds[1] as u32, 1)), ok()),
        case!("§6.7 own device named by fd is accepted", |r: &Rig| madvise(r, 0, |m| pref(m, r.fds[0] as u32, 1)), ok()),
        case!("§6.7 device unplugged -> ENODEV", |r: &Rig| {
            r.sim.remove_device(1, Errno::ENODEV)?;
            madvise(r, 0, |m| pref(m, r.fds[1] as u32, 1))
        }, e(Errno::ENODEV)),
        case!("§6.7 atomic val > 3 -> EINVAL", |r: &Rig| madvise(r, 0, |m| m.attr.atomic.val = 4), e(Errno::EINVAL)),
        case!("§6.7 atomic pad -> EINVAL", |r: &Rig| madvise(r, 0, |m| m.attr.atomic.pad = 1), e(Errno::EINVAL)),
        case!("§6.7 atomic reserved -> EINVAL", |r: &Rig| madvise(r, 0, |m| m.attr.atomic.reserved = 1), e(Errno::EINVAL)),
        case!("§6.7 PAT out of range -> EINVAL", |r: &Rig| madvise(r, 0, |m| { m.attr_type = DRM_XE_MEM_RANGE_ATTR_PAT; m.attr.pat_index.val = 32 }), e(Errno::EINVAL)),
        case!("§6.7 PAT pad -> EINVAL", |r: &Rig| madvise(r, 0, |m| { m.attr_type = DRM_XE_MEM_RANGE_ATTR_PAT; m.attr.pat_index.pad = 1 }), e(Errno::EINVAL)),
        case!("§6.7 purgeable val > 1 -> EINVAL", |r: &Rig| madvise(r, 0, |m| { m.attr_type = DRM_XE_VMA_ATTR_PURGEABLE_STATE; m.attr.purge_state_val.val = 2 }), e(Errno::EINVAL)),
        case!("§6.7 purgeable retained != 0 on entry -> EINVAL", |r: &Rig| {
            let retained = 1u32;
            madvise(r, 0, |m| { m.attr_type = DRM_XE_VMA_ATTR_PURGEABLE_STATE; m.attr.purge_state_val.retained_ptr = &retained as *const u32 as u64 })
        }, e(Errno::EINVAL)),
        case!("§6.7 range without VMA -> 0, nothing done", |r: &Rig| {
            let vm = xe::vm_create(&r.drv, r.fds[0], DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE)?;
            madvise(r, 0, |m| m.vm_id = vm)
        }, ok()),
        // §6.8 VM_QUERY_MEM_RANGE_ATTRS
        case!("§6.8 count with a vector -> EINVAL", |r: &Rig| qattr(r, |q, v| q.vector_of_mem_attr = v), e(Errno::EINVAL)),
        case!("§6.8 count with an element size -> EINVAL", |r: &Rig| qattr(r, |q, _| q.sizeof_mem_range_attr = 64), e(Errno::EINVAL)),
        case!("§6.8 fill with a NULL vector -> EINVAL", |r: &Rig| qattr(r, |q, _| { q.num_mem_ranges = 1; q.sizeof_mem_range_attr = 64 }), e(Errno::EINVAL)),
        case!("§6.8 fill with element size != 64 -> EINVAL", |r: &Rig| qattr(r, |q, v| { q.num_mem_ranges = 1; q.vector_of_mem_attr = v; q.sizeof_mem_range_attr = 32 }), e(Errno::EINVAL)),
        case!("§6.8 unknown vm -> EINVAL", |r: &Rig| qattr(r, |q, _| q.vm_id = 99), e(Errno::EINVAL)),
        case!("§6.8 more VMAs than room -> ENOSPC", |r: &Rig| {
            xe::madvise_atomic(&r.drv, r.fds[0], r.vms[0], BUF, 2 * MIB, DRM_XE_ATOMIC_DEVICE)?; // 1 VMA -> 3
            qattr(r, |q, v| { q.num_mem_ranges = 2; q.vector_of_mem_attr = v; q.sizeof_mem_range_attr = 64 })
        }, e(Errno::ENOSPC)),
        case!("§6.8 bad vector -> EFAULT", |r: &Rig| qattr(r, |q, _| { q.num_mem_ranges = 1; q.vector_of_mem_attr = 8; q.sizeof_mem_range_attr = 64 }), e(Errno::EFAULT)),
    ]
}

#[test]
fn every_validation_rule_gives_the_kernels_errno() {
    let mut failures = Vec::new();
    let cases = cases();
    for (name, run, want) in &cases {
        let rig = Rig::preset("2dgpu-p2p");
        let got = run(&rig);
        if got != *want {
            failures.push(format!("{name}: got {got:?}, want {want:?}"));
        }
        rig.sim.check_invariants().unwrap();
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// §6.7 on 6.18: region_instance is pad (MBZ) and a positive fd is accepted
/// unvalidated, behaving like system memory.
#[test]
fn kernel_6_18_madvise_differences() {
    let mut t = Topology::preset("2dgpu-p2p").unwrap();
    t.set_kernel(KernelVersion::V6_18);
    let r = Rig::new(t);
    let m = |inst: u16, fd: u32| madvise(&r, 0, |m| pref(m, fd, inst));
    assert_eq!(m(1, r.fds[1] as u32), Err(Errno::EINVAL));
    assert_eq!(m(0, 999), Ok(()), "unvalidated fd");
    r.gpu(0, BUF, 2 * MIB, Access::Write).unwrap();
    assert!(r.in_system(BUF, 2 * MIB), "a positive fd behaves like DEFAULT_SYSTEM on 6.18");
}

/// `xe_svm_range_set_default_attr` (xe_svm.c, run by the garbage collector
/// after munmap) resets a mirror VMA's madvise attributes only if it was
/// bound with MADVISE_AUTORESET, from "drm/xe/uapi: Hide the madvise
/// autoreset behind a VM_BIND flag" (ce831bffcef3, 6.18-rc3) on. 6.18-rc1
/// and -rc2 have no such flag (EINVAL in `vm_bind_ioctl_check_args`) and
/// reset every mirror VMA.
#[test]
fn xe_svm_range_set_default_attr_follows_the_autoreset_flag_from_6_18_rc3() {
    assert_eq!(KernelVersion::parse("6.18-rc2"), Some(KernelVersion::V6_18Rc));
    assert_eq!(KernelVersion::parse("6.18-rc1"), Some(KernelVersion::V6_18Rc));
    assert_eq!(KernelVersion::parse("6.18-rc3"), Some(KernelVersion::V6_18));
    assert_eq!(KernelVersion::parse(&KernelVersion::V6_18Rc.to_string()), Some(KernelVersion::V6_18Rc));
    let file = "kernel = \"6.18-rc2\"\n[[device]]\nname = \"g\"\nvram_per_tile = \"16 GiB\"\n";
    assert_eq!(Topology::parse(file).unwrap().kernel, KernelVersion::V6_18Rc);
    for (kernel, flag, resets) in [(KernelVersion::V6_18Rc, false, true), (KernelVersion::V6_18, false, false), (KernelVersion::V6_18, true, true)] {
        let mut t = Topology::preset("dgpu").unwrap();
        t.set_kernel(kernel);
        let r = Rig::new(t);
        let vm = xe::vm_create(&r.drv, r.fds[0], DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
        if kernel == KernelVersion::V6_18Rc {
            assert_eq!(xe::bind_cpu_addr_mirror(&r.drv, r.fds[0], vm, 0, 1 << 47, true), Err(Errno::EINVAL), "no MADVISE_AUTORESET before rc3");
        }
        xe::bind_cpu_addr_mirror(&r.drv, r.fds[0], vm, 0, 1 << 47, flag).unwrap();
        xe::madvise_atomic(&r.drv, r.fds[0], vm, BUF, 2 * MIB, DRM_XE_ATOMIC_DEVICE).unwrap();
        r.sim.gpu_access(r.fds[0], vm, 0, BUF, 2 * MIB, Access::Read, 1).unwrap();
        r.sim.munmap(BUF, 2 * MIB).unwrap();
        r.sim.mmap(BUF, 2 * MIB, false).unwrap();
        // The next madvise on the VM runs the garbage collector first.
        xe::madvise_atomic(&r.drv, r.fds[0], vm, BUF + 64 * MIB, 2 * MIB, DRM_XE_ATOMIC_GLOBAL).unwrap();
        let atomic = xe::query_mem_range_attrs(&r.drv, r.fds[0], vm, BUF, 2 * MIB).unwrap()[0].atomic.val;
        assert_eq!(atomic, if resets { DRM_XE_ATOMIC_UNDEFINED } else { DRM_XE_ATOMIC_DEVICE }, "{kernel} flag {flag}");
    }
}

/// §6.7 ENOLINK: a foreign pagemap without an interconnect is rejected (7.0+).
#[test]
fn madvise_foreign_without_link_is_enolink() {
    let r = Rig::preset("2dgpu-nolink");
    assert_eq!(madvise(&r, 0, |m| pref(m, r.fds[1] as u32, 1)), Err(Errno::ENOLINK));
}

/// `xe_madvise_details_init` (xe_vm_madvise.c): a devmem_fd is accepted
/// only if its pagemap's owner is the VM's `svm.peer.owner`, which
/// `xe_svm_init` acquires for FAULT_MODE VMs only. A VM without fault mode
/// has no owner, so naming device memory, even the device's own, is
/// ENOLINK (7.0+); 6.18 does not look at the fd.
#[test]
fn madvise_devmem_fd_on_a_vm_without_fault_mode_is_enolink() {
    for kernel in [KernelVersion::V7_0, KernelVersion::V6_18] {
        let mut t = Topology::preset("2dgpu-p2p").unwrap();
        t.set_kernel(kernel);
        let r = Rig::new(t);
        let vm = xe::vm_create(&r.drv, r.fds[0], DRM_XE_VM_CREATE_FLAG_LR_MODE).unwrap();
        let advise = |vm_id: u32, devmem_fd: i32, inst: u16| {
            let mut m = drm_xe_madvise { vm_id, start: BUF, range: 2 * MIB, attr_type: DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC, ..Default::default() };
            pref(&mut m, devmem_fd as u32, inst);
            r.ioctl(0, DRM_IOCTL_XE_MADVISE, &mut m)
        };
        if kernel == KernelVersion::V7_0 {
            assert_eq!(advise(vm, r.fds[0], 1), Err(Errno::ENOLINK), "its own device's VRAM");
            assert_eq!(advise(vm, r.fds[1], 1), Err(Errno::ENOLINK), "a peer's VRAM");
            assert_eq!(advise(r.vms[0], r.fds[0], 1), Ok(()), "a FAULT_MODE VM owns its pagemaps");
        } else {
            assert_eq!(advise(vm, r.fds[0], 0), Ok(()), "6.18: the fd is not looked at");
        }
        assert_eq!(advise(vm, -1, 0), Ok(()), "DEFAULT_SYSTEM names no pagemap");
        assert_eq!(advise(vm, 0, 0), Ok(()), "DEFAULT_DEVICE names no pagemap");
    }
}

/// §6.7 quirk: a VMA counts as unchanged when fd and policy match, so
/// changing only region_instance is ignored.
#[test]
fn madvise_region_instance_only_change_is_ignored() {
    let mut t = Topology::preset("max-node").unwrap();
    t.devices.truncate(2);
    t.links.retain(|l| l.a < 2 && l.b < 2);
    let r = Rig::new(t);
    r.pref(0, BUF, 2 * MIB, xe::PreferredLoc::Device { devmem_fd: r.fds[1], region_instance: 1 }).unwrap();
    r.pref(0, BUF, 2 * MIB, xe::PreferredLoc::Device { devmem_fd: r.fds[1], region_instance: 2 }).unwrap();
    r.gpu(0, BUF, 2 * MIB, Access::Read).unwrap();
    assert_eq!(r.bytes_in(BUF, 2 * MIB, 1, 1), 2 * MIB, "still tile 0 of device 1");
}

/// `xe_vm_invalidate_madvise_range`: a madvise that changes the attributes
/// of bound ranges zaps their PTEs and then issues one range invalidation
/// over the madvise span per tile that had any of them bound, not one per
/// SVM range; a madvise that changes nothing invalidates nothing.
#[test]
fn madvise_invalidates_each_bound_tile_once_over_its_span() {
    let mut t = Topology::preset("max-node").unwrap();
    t.devices.truncate(1);
    t.links.clear();
    let r = Rig::new(t);
    r.sim.cpu_access(BUF, 16 * MIB, Access::Write, 1).unwrap();
    r.prefetch(0, BUF, 16 * MIB, 0).unwrap(); // 8 ranges, bound on both tiles
    let tlb = r.sim.counters().tlb_invalidations;
    r.pref(0, BUF, 16 * MIB, xe::PreferredLoc::DefaultSystem).unwrap();
    assert_eq!(r.sim.counters().tlb_invalidations - tlb, 2, "one per tile, not one per range and tile");
    r.prefetch(0, BUF, 16 * MIB, 0).unwrap();
    let tlb = r.sim.counters().tlb_invalidations;
    r.pref(0, BUF, 16 * MIB, xe::PreferredLoc::DefaultSystem).unwrap();
    assert_eq!(r.sim.counters().tlb_invalidations - tlb, 0, "unchanged: skip_invalidation");
}

/// §6.8 protocol: count, then fill; attributes as madvise stored them.
#[test]
fn query_reports_vmas_and_attributes() {
    let r = Rig::preset("2dgpu-p2p");
    xe::madvise_atomic(&r.drv, r.fds[0], r.vms[0], BUF, 2 * MIB, DRM_XE_ATOMIC_GLOBAL).unwrap();
    r.pref(0, BUF, 2 * MIB, xe::PreferredLoc::DefaultSystem).unwrap();
    let attrs = xe::query_mem_range_attrs(&r.drv, r.fds[0], r.vms[0], BUF - 4096, 2 * MIB + 8192).unwrap();
    assert_eq!(attrs.len(), 3);
    let mid = attrs.iter().find(|a| a.start == BUF).unwrap();
    assert_eq!((mid.end, mid.atomic.val, mid.preferred_mem_loc.devmem_fd), (BUF + 2 * MIB, DRM_XE_ATOMIC_GLOBAL, u32::MAX));
    assert_eq!(attrs[0].atomic.val, DRM_XE_ATOMIC_UNDEFINED);
}

/// §6.1 recipe against the simulated device, through the library's decoder.
#[test]
fn device_query_describes_the_topology() {
    let r = Rig::preset("max-node");
    let info = query::query_device(&r.drv, r.fds[3]).unwrap();
    assert!(info.config.has_cpu_addr_mirror() && info.config.has_vram());
    assert_eq!(info.regions.len(), 3);
    assert_eq!(info.tiles(), vec![0, 1]);
    assert_eq!(info.vram_of_tile(1).unwrap().instance, 2);
    assert_eq!(info.vram_of_tile(1).unwrap().total_size, 64 << 30);
    assert_eq!(query::driver_name(&r.drv, r.fds[0]).unwrap(), "xe");
    let ig = Rig::preset("igpu");
    let info = query::query_device(&ig.drv, ig.fds[0]).unwrap();
    assert!(!info.config.has_vram());
    assert_eq!(info.gts[0].near_mem_regions, 1);
}

/// §2: an IOWR ioctl encoded as IOW copies nothing back.
#[test]
fn direction_bits_decide_what_is_copied_back() {
    let r = Rig::preset("dgpu");
    let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_CONFIG, ..Default::default() };
    let iow = ioc(IOC_WRITE, DRM_COMMAND_BASE + DRM_XE_DEVICE_QUERY, 40);
    r.ioctl(0, iow, &mut q).unwrap();
    assert_eq!(q.size, 0, "not copied back");
    r.ioctl(0, DRM_IOCTL_XE_DEVICE_QUERY, &mut q).unwrap();
    assert_eq!(q.size, 48);
}

/// A device without recoverable page faults has no SVM.
#[test]
fn no_page_faults_means_no_svm() {
    let mut t = Topology::preset("dgpu").unwrap();
    t.devices[0].page_faults = false;
    let sim = xesvm::sim::Sim::new(t).unwrap();
    let drv = xesvm::sim::driver::SimDriver::new(sim.clone());
    let fd = sim.open_device(0).unwrap();
    let info = query::query_device(&drv, fd).unwrap();
    assert!(!info.config.has_cpu_addr_mirror());
    let flags = DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE;
    assert_eq!(xe::vm_create(&drv, fd, flags), Err(Errno::EINVAL));
}

/// `prefetch_ranges` + `xe_vm_bind_ioctl` (docs/kernel-model.md §7): one
/// migration failure inside a prefetch becomes ENODATA and voids the
/// page-table work of the whole bind array: the ioctl returns 0, the range
/// that did migrate stays in VRAM, and nothing of the array is bound, so
/// the next GPU access faults. Without the failure every range is bound.
#[test]
fn prefetch_ranges_enodata_voids_the_whole_bind_array() {
    use xesvm::sim::{Injection, Point};
    let run = |fail: bool| {
        let r = Rig::preset("dgpu");
        r.sim.cpu_access(BUF, 4 * MIB, Access::Write, 1).unwrap();
        if fail {
            // The second migration of the array fails (VRAM allocation).
            r.sim.inject(Injection { skip: 1, ..Injection::count(Point::VramAlloc, Errno::ENOMEM, 1) });
        }
        let ops = [
            drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_PREFETCH, addr: BUF, range: 2 * MIB, prefetch_mem_region_instance: 1, ..Default::default() },
            drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_PREFETCH, addr: BUF + 2 * MIB, range: 2 * MIB, prefetch_mem_region_instance: 1, ..Default::default() },
        ];
        let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: 2, ..Default::default() };
        b.ops.vector_of_binds = ops.as_ptr() as u64;
        assert_eq!(r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b), Ok(()), "a swallowed failure is success");
        let first_in_vram = r.sim.bytes_in(BUF, 2 * MIB, 0, 1).unwrap() == 2 * MIB;
        let faults = r.sim.counters().gpu_faults;
        r.gpu(0, BUF, 2 * MIB, Access::Read).unwrap();
        (first_in_vram, r.sim.counters().gpu_faults - faults, r.sim.counters().prefetch_swallowed)
    };
    assert_eq!(run(false), (true, 0, 0), "bound by the prefetch");
    assert_eq!(run(true), (true, 1, 1), "migrated, but the array's binds were voided");
}

/// `prefetch_ranges` (xe_vm.c) returns -ENODATA at the first range whose
/// migration fails, and `vm_bind_ioctl_ops_prefetch_ranges` returns at the
/// first failing op: later ranges of the op, and later PREFETCH ops of the
/// same VM_BIND, are never migrated (docs/kernel-model.md §7).
#[test]
fn prefetch_ranges_returns_at_the_first_failing_range() {
    use xesvm::sim::{Injection, Point};
    let op = |addr: u64, range: u64| drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_PREFETCH, addr, range, prefetch_mem_region_instance: 1, ..Default::default() };
    let run = |ops: &[drm_xe_vm_bind_op]| {
        let r = Rig::preset("dgpu");
        r.sim.cpu_access(BUF, 8 * MIB, Access::Write, 1).unwrap();
        // The first migration of the ioctl fails (VRAM allocation).
        r.sim.inject(Injection::count(Point::VramAlloc, Errno::ENOMEM, 1));
        let mut b = drm_xe_vm_bind { vm_id: r.vms[0], num_binds: ops.len() as u32, ..Default::default() };
        if ops.len() == 1 {
            b.ops.bind = ops[0];
        } else {
            b.ops.vector_of_binds = ops.as_ptr() as u64;
        }
        assert_eq!(r.ioctl(0, DRM_IOCTL_XE_VM_BIND, &mut b), Ok(()), "a swallowed failure is success");
        (r.sim.bytes_in(BUF, 8 * MIB, 0, 1).unwrap(), r.sim.counters().prefetch_swallowed)
    };
    assert_eq!(run(&[op(BUF, 8 * MIB)]), (0, 1), "one op: the ranges after the failing one stay in system memory");
    assert_eq!(run(&[op(BUF, 2 * MIB), op(BUF + 2 * MIB, 6 * MIB)]), (0, 1), "a later op is not migrated either");
}

/// `xe_vm_bind_ioctl`: every per-op check (`vm_bind_ioctl_check_args`)
/// runs before the exec-queue lookup, so a bad flag with an unknown queue is
/// EINVAL, not ENOENT.
#[test]
fn vm_bind_checks_ops_before_the_exec_queue() {
    let r = Rig::preset("dgpu");
    let bad_flag_unknown_queue = bind(&r, |b, op| {
        b.exec_queue_id = 77;
        op.flags |= 1 << 30;
    });
    assert_eq!(bad_flag_unknown_queue, Err(Errno::EINVAL));
    assert_eq!(bind(&r, |b, _| b.exec_queue_id = 77), Err(Errno::ENOENT), "good ops, unknown queue");
}

/// `xe_vm_madvise_ioctl`: the devmem_fd lookup (`xe_madvise_details_init`)
/// runs before the VMA lookup, so a bad fd is ENOENT even over a span with
/// no VMA, which is otherwise 0 and nothing done.
#[test]
fn madvise_checks_devmem_fd_before_looking_for_a_vma() {
    // A fault-mode VM with no binding at all: no VMA anywhere.
    let mut r = Rig::preset("dgpu");
    r.vms[0] = xe::vm_create(&r.drv, r.fds[0], DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
    assert_eq!(madvise(&r, 0, |m| pref(m, 0, 0)), Ok(()), "no VMA: nothing to do");
    assert_eq!(madvise(&r, 0, |m| pref(m, 999, 1)), Err(Errno::ENOENT), "the fd is looked up first");
}

/// `xe_wait_user_fence_ioctl`: a negative (infinite) relative timeout is
/// written back as a large positive number (`to_jiffies_timeout` makes it
/// MAX_SCHEDULE_TIMEOUT first, then the elapsed time is taken off), not as
/// the negative value it was.
#[test]
fn wait_user_fence_writes_back_a_negative_timeout_as_positive() {
    let r = Rig::preset("dgpu");
    let word: u64 = 5;
    let mut w = drm_xe_wait_user_fence { addr: &word as *const u64 as u64, op: DRM_XE_UFENCE_WAIT_OP_EQ, value: 5, mask: u64::MAX, timeout: -1, ..Default::default() };
    assert_eq!(r.ioctl(0, DRM_IOCTL_XE_WAIT_USER_FENCE, &mut w), Ok(()));
    assert!(w.timeout > 1 << 40, "written back as {}", w.timeout);
}

/// DEVICE_QUERY ids 0-10 answered as xe 7.0's `xe_query.c` answers them:
/// the dispatch's checks (`xe_query_ioctl`), the size protocol every
/// `query_*` shares, and each id's reply and input checks, on the simulated
/// platforms (BMG for the discrete presets, LNL for `igpu`, PVC for
/// `max-node`). docs/xe-uapi.md §6.1.
mod device_query {
    use std::sync::Arc;

    use xesvm::driver::ioctl;
    use xesvm::errno::Errno;
    use xesvm::sim::driver::SimDriver;
    use xesvm::sim::Sim;
    use xesvm::uapi::query::*;
    use xesvm::uapi::*;

    struct Dev {
        drv: SimDriver,
        fd: i32,
        _sim: Arc<Sim>,
    }

    fn open(preset: &str) -> Dev {
        let sim = Sim::from_preset(preset).unwrap();
        let fd = sim.open_device(0).unwrap();
        Dev { drv: SimDriver::new(sim.clone()), fd, _sim: sim }
    }

    impl Dev {
        fn query(&self, q: &mut drm_xe_device_query) -> Result<(), Errno> {
            ioctl(&self.drv, self.fd, DRM_IOCTL_XE_DEVICE_QUERY, q)
        }
        /// The size, then the reply, of a query id.
        fn reply(&self, id: u32) -> Result<Vec<u8>, Errno> {
            let mut q = drm_xe_device_query { query: id, ..Default::default() };
            self.query(&mut q)?;
            let mut buf = vec![0u8; q.size as usize];
            q.data = buf.as_mut_ptr() as u64;
            self.query(&mut q)?;
            Ok(buf)
        }
        fn size(&self, id: u32) -> u32 {
            let mut q = drm_xe_device_query { query: id, ..Default::default() };
            self.query(&mut q).unwrap();
            q.size
        }
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// `xe_query_ioctl`: MBZ fields and an id past the table are EINVAL; every
    /// id's size protocol: size 0 asks the size, another size than it is EINVAL.
    #[test]
    fn xe_query_ioctl_checks_and_the_size_protocol_of_every_id() {
        let d = open("dgpu");
        for id in 0..=DRM_XE_DEVICE_QUERY_EU_STALL {
            let size = d.size(id);
            assert!(size > 0, "id {id}: size {size}");
            let mut buf = vec![0u8; size as usize + 8];
            let mut q = drm_xe_device_query { query: id, size: size + 8, data: buf.as_mut_ptr() as u64, ..Default::default() };
            assert_eq!(d.query(&mut q), Err(Errno::EINVAL), "id {id}: a size other than the one asked");
            q.size = size - 1;
            assert_eq!(d.query(&mut q), Err(Errno::EINVAL), "id {id}");
        }
        let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_EU_STALL + 1, ..Default::default() };
        assert_eq!(d.query(&mut q), Err(Errno::EINVAL), "past the table");
        let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_CONFIG, extensions: 1, ..Default::default() };
        assert_eq!(d.query(&mut q), Err(Errno::EINVAL));
        let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_CONFIG, reserved: [0, 1], ..Default::default() };
        assert_eq!(d.query(&mut q), Err(Errno::EINVAL));
    }

    /// `query_hwconfig`: the GuC's table of key, length, values (u32s).
    #[test]
    fn query_hwconfig_is_a_table_of_klvs() {
        let b = open("dgpu").reply(DRM_XE_DEVICE_QUERY_HWCONFIG).unwrap();
        let (mut at, mut keys) = (0, Vec::new());
        while at < b.len() {
            let (key, len) = (u32_at(&b, at), u32_at(&b, at + 4) as usize);
            keys.push((key, u32_at(&b, at + 8)));
            at += 8 + 4 * len;
        }
        assert_eq!(at, b.len(), "the KLVs fill the reply exactly");
        assert!(keys.contains(&(2, 20)), "BMG: 20 DSS in {keys:?}");
    }

    /// `query_gt_topology`: per GT, geometry DSS, compute DSS, L3 banks and EUs
    /// per DSS (SIMD16 on Xe2), each a header and `num_bytes` of mask.
    #[test]
    fn query_gt_topology_gives_four_masks_per_gt() {
        for (preset, gts, compute_dss) in [("dgpu", 2, 20), ("igpu", 2, 8), ("max-node", 2, 64)] {
            let b = open(preset).reply(DRM_XE_DEVICE_QUERY_GT_TOPOLOGY).unwrap();
            let mut at = 0;
            let mut seen = Vec::new();
            while at < b.len() {
                let (gt, ty, n) = (u16::from_ne_bytes([b[at], b[at + 1]]), u16::from_ne_bytes([b[at + 2], b[at + 3]]), u32_at(&b, at + 4) as usize);
                let bits: u32 = b[at + 8..at + 8 + n].iter().map(|x| x.count_ones()).sum();
                seen.push((gt, ty, bits));
                at += 8 + n;
            }
            assert_eq!(at, b.len(), "{preset}");
            assert_eq!(seen.len(), gts * 4, "{preset}: {seen:?}");
            assert!(seen.contains(&(0, DRM_XE_TOPO_DSS_COMPUTE, compute_dss)), "{preset}: {seen:?}");
            assert!(seen.contains(&(0, DRM_XE_TOPO_SIMD16_EU_PER_DSS, 8)), "{preset}: {seen:?}");
            if preset != "max-node" {
                assert!(seen.iter().filter(|s| s.0 == 1).all(|s| s.2 == 0), "{preset}: a media GT has no DSS");
            } else {
                assert!(seen.contains(&(1, DRM_XE_TOPO_DSS_COMPUTE, 64)), "PVC: GT 1 is tile 1's main GT: {seen:?}");
            }
        }
    }

    fn cycles(d: &Dev, class: u16, gt: u16, clockid: i32) -> Result<drm_xe_query_engine_cycles, Errno> {
        let mut r = drm_xe_query_engine_cycles { clockid, ..Default::default() };
        r.eci = drm_xe_engine_class_instance { engine_class: class, engine_instance: 0, gt_id: gt, pad: 0 };
        let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_ENGINE_CYCLES, size: 40, data: &mut r as *mut _ as u64, ..Default::default() };
        d.query(&mut q).map(|()| r)
    }

    /// `query_engine_cycles`: the clock and the engine are checked (gt_id below
    /// XE_MAX_GT_PER_TILE, even on a second tile), then the counter, the CPU
    /// timestamp on the clock asked for, and the counter's width (64 bits on
    /// Xe2, 36 before).
    #[test]
    fn query_engine_cycles_checks_engine_and_clock() {
        let d = open("dgpu");
        let before = {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: a valid out-pointer.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
            ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
        };
        let r = cycles(&d, DRM_XE_ENGINE_CLASS_RENDER, 0, libc::CLOCK_MONOTONIC).unwrap();
        assert_eq!(r.width, 64);
        assert!(r.engine_cycles > 0 && r.cpu_timestamp >= before && r.cpu_timestamp - before < 1_000_000_000, "{r:?}");
        assert!(cycles(&d, DRM_XE_ENGINE_CLASS_VIDEO_DECODE, 1, libc::CLOCK_REALTIME).is_ok(), "video on the media GT");
        assert_eq!(cycles(&d, DRM_XE_ENGINE_CLASS_RENDER, 0, 99).err(), Some(Errno::EINVAL), "unknown clock");
        assert_eq!(cycles(&d, DRM_XE_ENGINE_CLASS_VIDEO_DECODE, 0, libc::CLOCK_MONOTONIC).err(), Some(Errno::EINVAL), "no video engine on the main GT");
        assert_eq!(cycles(&d, 5, 0, libc::CLOCK_MONOTONIC).err(), Some(Errno::EINVAL), "VM_BIND class has no counter to read");
        let two = open("max-node");
        assert_eq!(cycles(&two, DRM_XE_ENGINE_CLASS_RENDER, 2, libc::CLOCK_MONOTONIC).err(), Some(Errno::EINVAL), "gt_id >= XE_MAX_GT_PER_TILE");
        assert_eq!(cycles(&two, DRM_XE_ENGINE_CLASS_COMPUTE, 0, libc::CLOCK_MONOTONIC).unwrap().width, 36, "PVC: 36-bit counter");
        assert_eq!(cycles(&two, DRM_XE_ENGINE_CLASS_COMPUTE, 1, libc::CLOCK_MONOTONIC).unwrap().width, 36, "PVC: GT 1 is tile 1's main GT");
        assert_eq!(cycles(&two, DRM_XE_ENGINE_CLASS_RENDER, 0, libc::CLOCK_MONOTONIC).err(), Some(Errno::EINVAL), "PVC has no render engine");
    }

    /// `query_engine_cycles` (`hwe_read_timestamp`): the engine's counter
    /// ticks at its GT's reference clock as GT_LIST reports it, and
    /// `cpu_timestamp` is read on the clock asked for right before the
    /// counter, so that two snapshots correlate as IGT's query-cs-cycles
    /// checks them (`__engine_cycles` in tests/intel/xe_query.c): the
    /// counter's delta, masked to `width` and turned into ns at the reference
    /// clock, within 5 µs of the CPU clock's delta in more than 2 of 10
    /// snapshot pairs, on each of five clocks. Only the output fields are
    /// written. (IGT's subtest cannot run on the simulator: it also starts a
    /// spinning batch, see scripts/igt.sh.)
    #[test]
    fn query_engine_cycles_correlates_the_counter_with_the_cpu_clock() {
        const CLOCKS: [i32; 5] = [libc::CLOCK_MONOTONIC, libc::CLOCK_MONOTONIC_RAW, libc::CLOCK_REALTIME, libc::CLOCK_BOOTTIME, libc::CLOCK_TAI];
        for (preset, class) in [("dgpu", DRM_XE_ENGINE_CLASS_RENDER), ("max-node", DRM_XE_ENGINE_CLASS_COPY)] {
            let d = open(preset);
            let list = d.reply(DRM_XE_DEVICE_QUERY_GT_LIST).unwrap();
            // SAFETY: the reply holds drm_xe_query_gt_list's header and at least one drm_xe_gt.
            let gt0: drm_xe_gt = unsafe { std::ptr::read_unaligned(list[core::mem::size_of::<drm_xe_query_gt_list>()..].as_ptr().cast()) };
            let reference_clock = gt0.reference_clock as u64;
            assert!(reference_clock > 0, "{preset}");
            for clockid in CLOCKS {
                let mut usable = 0;
                for _ in 0..10 {
                    let t1 = cycles(&d, class, gt0.gt_id, clockid).unwrap();
                    let t2 = cycles(&d, class, gt0.gt_id, clockid).unwrap();
                    assert_eq!((t1.eci.engine_class, t1.eci.gt_id, t1.clockid), (class, gt0.gt_id, clockid), "inputs are left as given");
                    assert_eq!(t1.width, t2.width);
                    assert!(t1.cpu_delta < 1_000_000, "{preset}: reading the counter took {} ns", t1.cpu_delta);
                    let mask = if t1.width == 64 { u64::MAX } else { (1u64 << t1.width) - 1 };
                    let delta_cs = (t2.engine_cycles.wrapping_sub(t1.engine_cycles) & mask) as u128 * 1_000_000_000 / reference_clock as u128;
                    let delta_cpu = t2.cpu_timestamp.wrapping_sub(t1.cpu_timestamp) as u128;
                    if delta_cs.abs_diff(delta_cpu) < 5000 {
                        usable += 1;
                    }
                }
                assert!(usable > 2, "{preset}, clock {clockid}: {usable} of 10 snapshot pairs within 5 us");
            }
        }
    }

    fn fw(d: &Dev, v: drm_xe_query_uc_fw_version) -> Result<drm_xe_query_uc_fw_version, Errno> {
        let mut v = v;
        let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_UC_FW_VERSION, size: 32, data: &mut v as *mut _ as u64, ..Default::default() };
        d.query(&mut q).map(|()| v)
    }

    /// `query_uc_fw_version`: MBZ fields, the type, then GuC's submission
    /// version or HuC's (ENODEV where no HuC runs: PVC).
    #[test]
    fn query_uc_fw_version_checks_mbz_and_type() {
        let d = open("dgpu");
        let guc = fw(&d, drm_xe_query_uc_fw_version { uc_type: XE_QUERY_UC_TYPE_GUC_SUBMISSION, ..Default::default() }).unwrap();
        assert_eq!((guc.branch_ver, guc.major_ver), (0, 1));
        assert!(fw(&d, drm_xe_query_uc_fw_version { uc_type: XE_QUERY_UC_TYPE_HUC, ..Default::default() }).unwrap().major_ver > 0);
        for bad in [
            drm_xe_query_uc_fw_version { pad: 1, ..Default::default() },
            drm_xe_query_uc_fw_version { pad2: 1, ..Default::default() },
            drm_xe_query_uc_fw_version { reserved: 1, ..Default::default() },
            drm_xe_query_uc_fw_version { uc_type: 2, ..Default::default() },
        ] {
            assert_eq!(fw(&d, bad).err(), Some(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(fw(&open("max-node"), drm_xe_query_uc_fw_version { uc_type: XE_QUERY_UC_TYPE_HUC, ..Default::default() }).err(), Some(Errno::ENODEV));
    }

    /// `query_oa_units`: an OAG unit per main GT and an OAM unit per media GT,
    /// each followed by its engines.
    #[test]
    fn query_oa_units_lists_units_and_their_engines() {
        for (preset, units) in [("dgpu", 2), ("max-node", 2)] {
            let b = open(preset).reply(DRM_XE_DEVICE_QUERY_OA_UNITS).unwrap();
            assert_eq!(u32_at(&b, 8), units, "{preset}");
            let mut at = 16;
            for i in 0..units {
                assert_eq!(u32_at(&b, at + 8), i, "{preset}: ids in order");
                assert!(u64_at(&b, at + 16) & DRM_XE_OA_CAPS_BASE != 0);
                let engines = u64_at(&b, at + 64) as usize;
                assert!(engines > 0);
                at += 72 + 8 * engines;
            }
            assert_eq!(at, b.len(), "{preset}");
        }
    }

    /// `query_pxp_status`: the size for everyone, then ENODEV where the
    /// platform has no PXP (discrete BMG) and the status where it has (LNL).
    #[test]
    fn query_pxp_status_is_enodev_without_pxp() {
        let d = open("dgpu");
        assert_eq!(d.size(DRM_XE_DEVICE_QUERY_PXP_STATUS), 8);
        assert_eq!(d.reply(DRM_XE_DEVICE_QUERY_PXP_STATUS).err(), Some(Errno::ENODEV));
        let b = open("igpu").reply(DRM_XE_DEVICE_QUERY_PXP_STATUS).unwrap();
        assert_eq!((u32_at(&b, 0), u32_at(&b, 4)), (1, 1 << DRM_XE_PXP_TYPE_HWDRM));
    }

    /// `query_eu_stall`: supported on PVC and Xe2 (checked before the size),
    /// with its record size, buffer size and sampling rates.
    #[test]
    fn query_eu_stall_reports_rates() {
        for preset in ["dgpu", "igpu", "max-node"] {
            let b = open(preset).reply(DRM_XE_DEVICE_QUERY_EU_STALL).unwrap();
            let n = u64_at(&b, 72) as usize;
            assert_eq!((u64_at(&b, 8), u64_at(&b, 16), n, b.len()), (DRM_XE_EU_STALL_CAPS_BASE, 64, 7, 80 + 8 * n), "{preset}");
            assert_eq!(u64_at(&b, 80), 251, "fastest first");
        }
    }

    /// `query_mem_regions` after "drm/xe/uapi: loosen used tracking
    /// restriction" (2d1684a077d6, stable 6.8+): `used` and
    /// `cpu_visible_used` go to every caller, not only perfmon-capable ones,
    /// and system memory's `used` is filled too.
    #[test]
    fn query_mem_regions_reports_used_to_every_caller() {
        let r = crate::Rig::preset("dgpu");
        r.sim.cpu_access(crate::BUF, 4 << 20, xesvm::sim::Access::Write, 1).unwrap();
        xesvm::driver::xe::prefetch(&r.drv, r.fds[0], r.vms[0], crate::BUF, 2 << 20, 1).unwrap();
        let regions = xesvm::driver::query::query_device(&r.drv, r.fds[0]).unwrap().regions;
        let used: Vec<_> = regions.iter().map(|m| (m.instance, m.used, m.cpu_visible_used)).collect();
        assert_eq!(used[1], (1, 2 << 20, 2 << 20), "VRAM, for an unprivileged caller: {used:?}");
        assert!(used[0].1 >= 2 << 20 && used[0].1 <= regions[0].total_size, "system memory's used is filled: {used:?}");
        assert_eq!(used[0].2, 0, "no CPU-visible part in system memory");
    }

    /// `query_config`: HAS_LOW_LATENCY is set unconditionally, and
    /// MAX_EXEC_QUEUE_PRIORITY is `xe_exec_queue_device_get_max_priority`:
    /// HIGH (2) only with CAP_SYS_NICE, NORMAL (1) otherwise.
    #[test]
    fn query_config_low_latency_always_priority_by_cap_sys_nice() {
        for preset in ["dgpu", "igpu", "max-node"] {
            let d = open(preset);
            let b = d.reply(DRM_XE_DEVICE_QUERY_CONFIG).unwrap();
            let info = |i: usize| u64_at(&b, 8 + 8 * i);
            assert!(info(DRM_XE_QUERY_CONFIG_FLAGS) & DRM_XE_QUERY_CONFIG_FLAG_HAS_LOW_LATENCY != 0, "{preset}");
            assert_eq!(info(DRM_XE_QUERY_CONFIG_MAX_EXEC_QUEUE_PRIORITY), 1, "{preset}: without CAP_SYS_NICE");
            d._sim.set_sys_nice_capable(true);
            let b = d.reply(DRM_XE_DEVICE_QUERY_CONFIG).unwrap();
            assert_eq!(u64_at(&b, 8 + 8 * DRM_XE_QUERY_CONFIG_MAX_EXEC_QUEUE_PRIORITY), 2, "{preset}: with CAP_SYS_NICE");
        }
    }

    /// `query_gt_list` reports each GT's own GMD_ID version (xe_pci.c's
    /// `graphics_ips` / `media_ips`): BMG's main GT is Xe2_HPG 20.01 and its
    /// media GT Xe2_HPM 13.01; LNL's 20.04 and 20.00. PVC (`pvc_desc`,
    /// `max_gt_per_tile` 1, no media IP) has one main GT per tile, ids 0 and
    /// 1, and no GMD_ID register, so its versions read 0.
    #[test]
    fn query_gt_list_reports_each_gts_own_ip_version() {
        for (preset, want) in [
            ("dgpu", vec![(DRM_XE_QUERY_GT_TYPE_MAIN, 0, 0, (20, 1)), (DRM_XE_QUERY_GT_TYPE_MEDIA, 0, 1, (13, 1))]),
            ("igpu", vec![(DRM_XE_QUERY_GT_TYPE_MAIN, 0, 0, (20, 4)), (DRM_XE_QUERY_GT_TYPE_MEDIA, 0, 1, (20, 0))]),
            ("max-node", vec![(DRM_XE_QUERY_GT_TYPE_MAIN, 0, 0, (0, 0)), (DRM_XE_QUERY_GT_TYPE_MAIN, 1, 1, (0, 0))]),
        ] {
            let d = open(preset);
            let info = xesvm::driver::query::query_device(&d.drv, d.fd).unwrap();
            let got: Vec<_> = info.gts.iter().map(|g| (g.gt_type, g.tile_id, g.gt_id, (g.ip_version.0, g.ip_version.1))).collect();
            assert_eq!(got, want, "{preset}");
        }
    }

    /// `query_engines` lists the engines of every GT: PVC (`graphics_xehpc`
    /// in xe_pci.c: BCS and CCS only, no media IP) has copy and compute
    /// engines and neither render nor video ones; BMG has render, copy and
    /// compute on the main GT and video on the media GT.
    #[test]
    fn query_engines_pvc_has_only_copy_and_compute() {
        let engines = |preset: &str| {
            let b = open(preset).reply(DRM_XE_DEVICE_QUERY_ENGINES).unwrap();
            let n = u32_at(&b, 0) as usize;
            assert_eq!(b.len(), 8 + 32 * n, "{preset}");
            (0..n).map(|i| (u16::from_ne_bytes([b[8 + 32 * i], b[9 + 32 * i]]), u16::from_ne_bytes([b[12 + 32 * i], b[13 + 32 * i]]))).collect::<Vec<_>>()
        };
        let pvc = engines("max-node");
        assert_eq!(pvc, vec![(DRM_XE_ENGINE_CLASS_COPY, 0), (DRM_XE_ENGINE_CLASS_COMPUTE, 0), (DRM_XE_ENGINE_CLASS_COPY, 1), (DRM_XE_ENGINE_CLASS_COMPUTE, 1)]);
        let bmg = engines("dgpu");
        assert!(bmg.contains(&(DRM_XE_ENGINE_CLASS_RENDER, 0)) && bmg.contains(&(DRM_XE_ENGINE_CLASS_VIDEO_DECODE, 1)), "{bmg:?}");
    }
}

/// `vm_bind_ioctl_ops_create` makes every SVM range of a prefetch's span
/// before any page moves, and get_pages backs every never-populated page:
/// a span whose untouched part exceeds the machine's memory is ENOMEM on
/// the kernel (or the OOM killer). The simulator refuses it at once, before
/// any range exists (docs/kernel-model.md §7): the whole user VA from 0,
/// which the simulated process has mapped end to end, costs microseconds,
/// not 2^26 ranges. A span the machine can back is walked as before.
#[test]
fn prefetch_past_system_memory_is_enomem_before_any_range() {
    let r = Rig::preset("dgpu");
    r.sim.cpu_access(BUF, 4 * MIB, Access::Write, 1).unwrap();
    let t = std::time::Instant::now();
    assert_eq!(r.prefetch(0, 0, 1 << 47, 0), Err(Errno::ENOMEM));
    assert_eq!(r.prefetch(0, 0, 1 << 47, 1), Err(Errno::ENOMEM));
    assert!(t.elapsed() < std::time::Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(r.sim.counters().prefetch_ranges, 0, "no range was made");
    // A machine with 64 MiB: the 4 MiB already touched need no new backing.
    let mut t = Topology::preset("dgpu").unwrap();
    t.system_memory = 64 * MIB;
    let r = Rig::new(t);
    r.sim.cpu_access(BUF, 4 * MIB, Access::Write, 1).unwrap();
    assert_eq!(r.prefetch(0, BUF, 72 * MIB, 0), Err(Errno::ENOMEM));
    assert_eq!(r.prefetch(0, BUF, 68 * MIB, 0), Ok(()));
    assert!(r.in_system(BUF, 68 * MIB));
}

/// From 7.0 a MAP | CPU_ADDR_MIRROR is widened over the mirror VMA that
/// holds the page before it and the one that holds its end, where they
/// have the default attributes (`xe_vm_find_cpu_addr_mirror_vma_range` in
/// `vm_bind_ioctl_ops_create`), and replaces them with one VMA of
/// defaults; the SVM ranges inside keep their pages and GPU mappings
/// (XE_VMA_OPS_FLAG_ALLOW_SVM_UNMAP: no page-table op for a mirror VMA's
/// UNMAP). A MAP inside one piece covers that piece only. 6.18 neither
/// widens nor merges, and has no ALLOW_SVM_UNMAP: `vm_bind_ioctl_ops_parse`
/// refuses the MAP's UNMAP of a mirror VMA with SVM ranges (EBUSY), and the
/// pieces and their ranges stay.
#[test]
fn a_mirror_map_merges_default_neighbours_from_7_0_and_keeps_the_ranges() {
    let (head, mid) = (BUF, 64 * 1024);
    for (kernel, merges) in [(KernelVersion::V7_0, true), (KernelVersion::V6_18, false)] {
        let mut t = Topology::preset("dgpu").unwrap();
        t.set_kernel(kernel);
        let r = Rig::new(t);
        let vmas = |r: &Rig| xe::query_mem_range_attrs(&r.drv, r.fds[0], r.vms[0], head, 2 * MIB).unwrap().len();
        // A madvise over [BUF + 64 KiB, BUF + 128 KiB) splits the mirror in
        // three; setting the default back leaves three.
        xe::madvise_atomic(&r.drv, r.fds[0], r.vms[0], head + mid, mid, DRM_XE_ATOMIC_DEVICE).unwrap();
        xe::madvise_atomic(&r.drv, r.fds[0], r.vms[0], head + mid, mid, DRM_XE_ATOMIC_UNDEFINED).unwrap();
        assert_eq!(vmas(&r), 3, "{kernel:?}");
        // The GPU faults the middle piece into VRAM (never populated: 4 KiB
        // ranges, each bound).
        r.gpu(0, head + mid, mid, Access::Write).unwrap();
        let before = r.sim.counters();
        if merges {
            // A MAP inside the middle piece covers that piece, no more.
            assert_eq!(xe::bind_cpu_addr_mirror(&r.drv, r.fds[0], r.vms[0], head + mid + 4096, 4096, false), Ok(()));
            assert_eq!(vmas(&r), 3, "widened to the piece that holds it only");
        }
        // A MAP of exactly the middle piece.
        let want = if merges { Ok(()) } else { Err(Errno::EBUSY) };
        assert_eq!(xe::bind_cpu_addr_mirror(&r.drv, r.fds[0], r.vms[0], head + mid, mid, false), want, "{kernel:?}");
        if merges {
            assert_eq!(vmas(&r), 1, "merged with both default neighbours");
            assert_eq!(r.sim.counters().tlb_invalidations, before.tlb_invalidations, "the ranges keep their mappings");
            assert!(r.in_vram(head + mid, mid, 0));
            r.gpu(0, head + mid, mid, Access::Read).unwrap();
            assert_eq!(r.sim.counters().gpu_faults, before.gpu_faults, "no fault: still bound");
        } else {
            assert_eq!(vmas(&r), 3, "{kernel:?}");
            assert_eq!(r.sim.counters().tlb_invalidations, before.tlb_invalidations, "the ranges stay bound");
        }
    }
}
