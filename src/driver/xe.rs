//! Typed Xe ioctls the library issues, each built exactly as IGT's
//! `lib/xe/xe_ioctl.c` builds it (docs/xe-uapi.md §8, "IGT multi-GPU flow"):
//! VM create, CPU-address-mirror bind and PREFETCH with a user fence and a
//! WAIT_USER_FENCE, madvise, and the attribute query.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{ioctl, Driver, Errno, Result};
use crate::uapi::*;

/// The high bits of the values the kernel writes into user fences when a
/// bind completes ("XV"); the low bits count the process's binds.
const UFENCE_MAGIC: u64 = 0x5856 << 48;

/// The next fence value: unique in the process, so that a bind whose wait
/// was given up (ETIME, persistent EINTR) and signals its word late never
/// satisfies a later wait on that word.
static FENCE_VALUE: AtomicU64 = AtomicU64::new(1);

/// The fence-word pools of one process (`fork::PerProcess`: a parent
/// thread may have held their locks at fork). Words are never freed, since
/// a late signal must land in live memory, and they stay reachable from
/// here (or from a thread's local storage), so leak checkers see no leak.
struct Pools {
    /// Fence words no thread holds.
    words: Mutex<Vec<&'static AtomicU64>>,
    /// Words whose bind was given up before it signalled (a batch released
    /// in flight), with the value the kernel will write: each goes back to
    /// `words` once it holds that value, so abandoned words are reused too.
    abandoned: Mutex<Vec<(&'static AtomicU64, u64)>>,
}

static POOLS: super::fork::PerProcess<Pools> = super::fork::PerProcess::new();

/// This process's pools.
fn pools() -> &'static Pools {
    POOLS.get(|_| Pools { words: Mutex::new(Vec::new()), abandoned: Mutex::new(Vec::new()) })
}

/// A thread's fence word, back to the pool when the thread ends.
struct ThreadFence(&'static AtomicU64);

impl Drop for ThreadFence {
    fn drop(&mut self) {
        pools().words.lock().push(self.0);
    }
}

thread_local! {
    static FENCE: ThreadFence = ThreadFence(pools().words.lock().pop().unwrap_or_else(|| Box::leak(Box::new(AtomicU64::new(0)))));
}

/// A fence word for a bind the caller does not wait on at once, from the
/// pool (never freed, so a late signal lands in live memory). Give it back
/// with [`release_fence_word`] once it signalled; a word never given back
/// stays out of the pool.
pub fn take_fence_word() -> &'static AtomicU64 {
    let pools = pools();
    {
        let mut abandoned = pools.abandoned.lock();
        if !abandoned.is_empty() {
            let mut pool = pools.words.lock();
            abandoned.retain(|&(w, v)| {
                let done = w.load(Ordering::Acquire) >= v;
                if done {
                    pool.push(w);
                }
                !done
            });
        }
    }
    let w = pools.words.lock().pop().unwrap_or_else(|| Box::leak(Box::new(AtomicU64::new(0))));
    w.store(0, Ordering::Relaxed);
    w
}

/// Returns a word taken with [`take_fence_word`] whose bind has signalled.
pub fn release_fence_word(w: &'static AtomicU64) {
    pools().words.lock().push(w);
}

/// Hands a word whose bind has not signalled yet back: it returns to the
/// pool once the kernel wrote `value` (looked at by the next
/// [`take_fence_word`]).
pub fn abandon_fence_word(w: &'static AtomicU64, value: u64) {
    pools().abandoned.lock().push((w, value));
}

/// The next user-fence value (unique in the process).
pub fn next_fence_value() -> u64 {
    UFENCE_MAGIC | (FENCE_VALUE.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff)
}

/// Many bind ops in one VM_BIND (`vector_of_binds` past one), with a user
/// fence that the kernel writes with `value` at `addr` when the binds
/// complete. Returns once they are queued: the caller waits or polls.
pub fn vm_bind_queued<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, ops: &[drm_xe_vm_bind_op], addr: u64, value: u64) -> Result<()> {
    let mut sync = drm_xe_sync { sync_type: DRM_XE_SYNC_TYPE_USER_FENCE, flags: DRM_XE_SYNC_FLAG_SIGNAL, addr, timeline_value: value, ..Default::default() };
    let mut b = drm_xe_vm_bind { vm_id, num_binds: ops.len() as u32, num_syncs: 1, syncs: &mut sync as *mut drm_xe_sync as u64, ..Default::default() };
    match ops {
        [] => return Err(Errno::EINVAL),
        [one] => b.ops.bind = *one,
        many => b.ops.vector_of_binds = many.as_ptr() as u64,
    }
    ioctl(drv, fd, DRM_IOCTL_XE_VM_BIND, &mut b)
}

/// A PREFETCH op of a mirror span into `region` (see [`prefetch`]).
pub fn prefetch_op(start: u64, range: u64, region: u32) -> drm_xe_vm_bind_op {
    drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_PREFETCH, addr: start, range, prefetch_mem_region_instance: region, ..Default::default() }
}

/// VM_CREATE with `flags`; returns the VM id.
pub fn vm_create<D: Driver + ?Sized>(drv: &D, fd: RawFd, flags: u32) -> Result<u32> {
    let mut c = drm_xe_vm_create { flags, ..Default::default() };
    ioctl(drv, fd, DRM_IOCTL_XE_VM_CREATE, &mut c)?;
    Ok(c.vm_id)
}

/// VM_DESTROY.
pub fn vm_destroy<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32) -> Result<()> {
    let mut d = drm_xe_vm_destroy { vm_id, ..Default::default() };
    ioctl(drv, fd, DRM_IOCTL_XE_VM_DESTROY, &mut d)
}

/// How long a bind's fence is waited for by default: 1 s, as Intel's compute
/// runtime waits for its bind fences (`drm_neo.cpp`; a debug variable
/// overrides it there, `Config::bind_timeout_ns` here). ETIME past it.
pub const BIND_TIMEOUT_NS: i64 = 1_000_000_000;

/// One bind op with a user-fence sync, then WAIT_USER_FENCE on it (LR VMs
/// refuse syncobj signals, docs/xe-uapi.md §6.5) for [`BIND_TIMEOUT_NS`].
pub fn vm_bind_sync<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, op: drm_xe_vm_bind_op) -> Result<()> {
    vm_bind_wait(drv, fd, vm_id, op, BIND_TIMEOUT_NS)
}

/// [`vm_bind_sync`] waiting up to `timeout_ns` for the fence.
pub fn vm_bind_wait<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, op: drm_xe_vm_bind_op, timeout_ns: i64) -> Result<()> {
    let addr = FENCE.with(|f| f.0.as_ptr() as u64);
    let value = UFENCE_MAGIC | (FENCE_VALUE.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff);
    let mut sync = drm_xe_sync {
        sync_type: DRM_XE_SYNC_TYPE_USER_FENCE,
        flags: DRM_XE_SYNC_FLAG_SIGNAL,
        addr,
        timeline_value: value,
        ..Default::default()
    };
    let mut b = drm_xe_vm_bind {
        vm_id,
        num_binds: 1,
        ops: drm_xe_vm_bind_ops { bind: op },
        num_syncs: 1,
        syncs: &mut sync as *mut drm_xe_sync as u64,
        ..Default::default()
    };
    ioctl(drv, fd, DRM_IOCTL_XE_VM_BIND, &mut b)?;
    wait_user_fence(drv, fd, addr, value, timeout_ns)
}

/// Waits until the u64 at `addr` is at least `value` (DRM_XE_UFENCE_WAIT_OP_GTE:
/// fence values only grow, and a word several binds share, as Intel's
/// compute runtime shares its paging fence, may already hold a later
/// value) or `timeout_ns` passes
/// (ETIME). Interrupted waits are restarted by [`ioctl`] like every other
/// call (until its deadline); the kernel writes the time left
/// back into `timeout` each time (docs/xe-uapi.md §6.6), so while it runs down
/// the wait continues, and a wait whose timeout does not move (a signal
/// storm that lets no time pass, an injected EINTR) ends with EINTR.
pub fn wait_user_fence<D: Driver + ?Sized>(drv: &D, fd: RawFd, addr: u64, value: u64, timeout_ns: i64) -> Result<()> {
    let mut w = drm_xe_wait_user_fence { addr, op: DRM_XE_UFENCE_WAIT_OP_GTE, value, mask: u64::MAX, timeout: timeout_ns, ..Default::default() };
    loop {
        let before = w.timeout;
        match ioctl(drv, fd, DRM_IOCTL_XE_WAIT_USER_FENCE, &mut w) {
            Err(Errno::EINTR) if w.timeout > 0 && w.timeout < before => {}
            r => return r,
        }
    }
}

/// MAP | CPU_ADDR_MIRROR of [start, start + range) (the whole VA space, in
/// practice), with MADVISE_AUTORESET when asked, PAT index 0 (what a
/// discrete GPU takes: `bind_cpu_addr_mirror_pat` for any device).
pub fn bind_cpu_addr_mirror<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64, autoreset: bool) -> Result<()> {
    bind_cpu_addr_mirror_pat(drv, fd, vm_id, start, range, autoreset, 0)
}

/// The mirror's bind with a PAT index (`DeviceInfo::mirror_pat_index`:
/// an integrated GPU refuses a non-coherent one).
pub fn bind_cpu_addr_mirror_pat<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64, autoreset: bool, pat_index: u16) -> Result<()> {
    let mut flags = DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR;
    if autoreset {
        flags |= DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET;
    }
    let op = drm_xe_vm_bind_op { op: DRM_XE_VM_BIND_OP_MAP, flags, addr: start, range, pat_index, ..Default::default() };
    vm_bind_sync(drv, fd, vm_id, op)
}

/// Whether one of a VM's VMAs (`vmas`, as VM_QUERY_MEM_RANGE_ATTRS listed
/// them) is a CPU-address mirror. The query reports every VMA alike
/// (`get_mem_attrs`), so the answer comes from the one attribute only
/// mirror VMAs take: a preferred location (`madvise_preferred_mem_loc`
/// skips any other VMA). A VMA that holds a non-default one is a mirror;
/// otherwise the largest few VMAs with the defaults are tried: their
/// migration policy is flipped over exactly the VMA (no split at its
/// edges), read back, and restored. Two madvise calls per VMA tried, each
/// unbinding the mirror's GPU mappings there once (the next GPU access
/// faults them back in): meant for adoption, once per VM. A mirror also
/// proves fault mode (`vm_bind_ioctl_check_args` refuses CPU_ADDR_MIRROR
/// outside it), with no reliance on the order of the kernel's checks.
pub fn probe_cpu_addr_mirror<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, vmas: &[drm_xe_mem_range_attr]) -> Result<bool> {
    let default = |v: &drm_xe_mem_range_attr| {
        v.preferred_mem_loc.devmem_fd == DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE && v.preferred_mem_loc.migration_policy == DRM_XE_MIGRATE_ALL_PAGES as u32
    };
    if vmas.iter().any(|v| !default(v)) {
        return Ok(true);
    }
    let mut by_size: Vec<&drm_xe_mem_range_attr> = vmas.iter().filter(|v| v.end > v.start).collect();
    by_size.sort_unstable_by_key(|v| std::cmp::Reverse(v.end - v.start));
    for v in by_size.into_iter().take(4) {
        let (start, range) = (v.start, v.end - v.start);
        madvise_migration_policy(drv, fd, vm_id, start, range, DRM_XE_MIGRATE_ONLY_SYSTEM_PAGES)?;
        let after = query_mem_range_attrs(drv, fd, vm_id, start, range);
        let restored = madvise_migration_policy(drv, fd, vm_id, start, range, DRM_XE_MIGRATE_ALL_PAGES);
        let took = after?.iter().any(|a| a.preferred_mem_loc.migration_policy == DRM_XE_MIGRATE_ONLY_SYSTEM_PAGES as u32);
        restored?;
        if took {
            return Ok(true);
        }
    }
    Ok(false)
}

/// MADVISE PREFERRED_LOC with the default device and `policy` (the probe's).
fn madvise_migration_policy<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64, policy: u16) -> Result<()> {
    madvise_pref(drv, fd, vm_id, start, range, DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE, 0, policy)
}

/// The one MADVISE PREFERRED_LOC the wrappers build.
#[allow(clippy::too_many_arguments)]
fn madvise_pref<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64, devmem_fd: u32, region_instance: u16, migration_policy: u16) -> Result<()> {
    let mut m = drm_xe_madvise {
        start,
        range,
        vm_id,
        attr_type: DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC,
        attr: drm_xe_madvise_attr { preferred_mem_loc: drm_xe_madvise_preferred_mem_loc { devmem_fd, migration_policy, region_instance, reserved: 0 } },
        ..Default::default()
    };
    ioctl(drv, fd, DRM_IOCTL_XE_MADVISE, &mut m)
}

/// VM_BIND PREFETCH of a mirror span into `region` (an instance, 0 for
/// system, or DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC).
pub fn prefetch<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64, region: u32) -> Result<()> {
    vm_bind_sync(drv, fd, vm_id, prefetch_op(start, range, region))
}

/// [`prefetch`] waiting up to `timeout_ns` for the bind's fence. The copy
/// itself happens inside the VM_BIND ioctl (`prefetch_ranges` from
/// `op_lock_and_prep`); the fence covers the page-table update.
pub fn prefetch_wait<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64, region: u32, timeout_ns: i64) -> Result<()> {
    vm_bind_wait(drv, fd, vm_id, prefetch_op(start, range, region), timeout_ns)
}

/// VM_BIND PREFETCH of a mirror span with no sync: the ioctl returns once
/// the bind is queued, and nothing waits for it. For a span whose pages
/// already are where `region` says, so that the bind moves nothing: a launch
/// that reaches the range before the page-table update lands takes the GPU
/// fault it would have taken without the bind (docs/kernel-model.md §7).
pub fn prefetch_queued<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64, region: u32) -> Result<()> {
    let mut b = drm_xe_vm_bind { vm_id, num_binds: 1, ops: drm_xe_vm_bind_ops { bind: prefetch_op(start, range, region) }, ..Default::default() };
    ioctl(drv, fd, DRM_IOCTL_XE_VM_BIND, &mut b)
}

/// The preferred location of madvise, as the uAPI spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PreferredLoc {
    /// `DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE`: the faulting tile's VRAM.
    DefaultDevice,
    /// `DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM`.
    DefaultSystem,
    /// VRAM `region_instance` of the device behind `devmem_fd` (7.0+).
    Device {
        /// The device's fd, opened by this process.
        devmem_fd: RawFd,
        /// The VRAM region instance on that device.
        region_instance: u16,
    },
}

impl PreferredLoc {
    /// The `devmem_fd` the uAPI carries for it (madvise, and the range
    /// query's answer).
    pub fn devmem_fd(self) -> u32 {
        match self {
            PreferredLoc::DefaultDevice => DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE,
            PreferredLoc::DefaultSystem => DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM,
            PreferredLoc::Device { devmem_fd, .. } => devmem_fd as u32,
        }
    }
}

/// MADVISE PREFERRED_LOC over [start, start+range).
pub fn madvise_preferred_loc<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64, loc: PreferredLoc) -> Result<()> {
    let (devmem_fd, region_instance) = match loc {
        PreferredLoc::DefaultDevice => (DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE, 0),
        PreferredLoc::DefaultSystem => (DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, 0),
        PreferredLoc::Device { devmem_fd, region_instance } => (devmem_fd as u32, region_instance),
    };
    madvise_pref(drv, fd, vm_id, start, range, devmem_fd, region_instance, DRM_XE_MIGRATE_ALL_PAGES)
}

/// MADVISE ATOMIC over [start, start+range).
pub fn madvise_atomic<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64, val: u32) -> Result<()> {
    let mut m = drm_xe_madvise {
        start,
        range,
        vm_id,
        attr_type: DRM_XE_MEM_RANGE_ATTR_ATOMIC,
        attr: drm_xe_madvise_attr { atomic: drm_xe_madvise_val { val, pad: 0, reserved: 0 } },
        ..Default::default()
    };
    ioctl(drv, fd, DRM_IOCTL_XE_MADVISE, &mut m)
}

/// VM_QUERY_MEM_RANGE_ATTRS with its two calls, restarting on ENOSPC when
/// the VMAs changed in between (docs/xe-uapi.md §6.8). The second call's
/// buffer is sized by the entry size the kernel reported in the first
/// (`xe_vm_query_vmas_attrs_ioctl` copies `num_mem_ranges *
/// sizeof_mem_range_attr` bytes and accepts only its own size): a kernel
/// whose entry is larger than this library's struct is refused with
/// EOVERFLOW rather than read past; a smaller (older) one fills the
/// prefix, the rest left zero.
pub fn query_mem_range_attrs<D: Driver + ?Sized>(drv: &D, fd: RawFd, vm_id: u32, start: u64, range: u64) -> Result<Vec<drm_xe_mem_range_attr>> {
    const KNOWN: usize = core::mem::size_of::<drm_xe_mem_range_attr>();
    for _ in 0..16 {
        let mut q = drm_xe_vm_query_mem_range_attr { vm_id, start, range, ..Default::default() };
        ioctl(drv, fd, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &mut q)?;
        let n = q.num_mem_ranges as usize;
        if n == 0 {
            return Ok(Vec::new());
        }
        let entry = q.sizeof_mem_range_attr as usize;
        if entry > KNOWN || entry == 0 || entry % 8 != 0 {
            crate::log!(crate::log::Level::Error, "VM_QUERY_MEM_RANGE_ATTRS: the kernel's entry is {entry} bytes, this library knows {KNOWN}: refused");
            return Err(Errno::EOVERFLOW);
        }
        // u64 words: the entries' alignment, and exactly the kernel's bytes.
        let mut buf = vec![0u64; n * entry / 8];
        q.vector_of_mem_attr = buf.as_mut_ptr() as u64;
        match ioctl(drv, fd, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, &mut q) {
            Ok(()) => {
                let got = (q.num_mem_ranges as usize).min(n);
                let bytes = buf.as_ptr() as *const u8;
                let v = (0..got)
                    .map(|i| {
                        let mut a = drm_xe_mem_range_attr::default();
                        // SAFETY: entry i lies inside `buf` (i < n, entry
                        // bytes each), `a` is a plain-data repr(C) struct of
                        // KNOWN >= entry bytes, and the regions do not overlap.
                        unsafe { core::ptr::copy_nonoverlapping(bytes.add(i * entry), &mut a as *mut _ as *mut u8, entry) };
                        a
                    })
                    .collect();
                return Ok(v);
            }
            Err(Errno::ENOSPC) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EAGAIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::c_void;

    /// A kernel whose VM_QUERY_MEM_RANGE_ATTRS entry is `entry` bytes: two
    /// ranges, each entry's first word its index + 1, every other byte 0xAB.
    struct Kernel {
        entry: u64,
    }

    impl Driver for Kernel {
        unsafe fn ioctl_raw(&self, _fd: RawFd, request: u32, arg: *mut c_void) -> Result<()> {
            assert_eq!(request, DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS);
            // SAFETY: the wrapper passes its drm_xe_vm_query_mem_range_attr.
            let q = unsafe { &mut *(arg as *mut drm_xe_vm_query_mem_range_attr) };
            if q.vector_of_mem_attr == 0 {
                q.num_mem_ranges = 2;
                q.sizeof_mem_range_attr = self.entry;
                return Ok(());
            }
            // xe_vm_query_vmas_attrs_ioctl: only its own entry size.
            if q.sizeof_mem_range_attr != self.entry {
                return Err(Errno::EINVAL);
            }
            let out = q.vector_of_mem_attr as *mut u8;
            for i in 0..2u64 {
                // SAFETY: the caller sized the buffer for 2 entries of `entry` bytes.
                unsafe {
                    core::ptr::write_bytes(out.add((i * self.entry) as usize), 0xAB, self.entry as usize);
                    core::ptr::write_unaligned(out.add((i * self.entry) as usize) as *mut u64, i + 1);
                }
            }
            Ok(())
        }
        fn page_table(&self) -> crate::driver::PageTableAccess {
            crate::driver::PageTableAccess { source: crate::driver::PageTableSource::Unavailable, privileged: false }
        }
        fn residency(&self, _: u64, _: u64, _: &mut [crate::driver::ResidencyRun]) -> Result<(usize, u64)> {
            Err(Errno::EOPNOTSUPP)
        }
        fn device_id(&self, _: RawFd) -> Option<crate::driver::DeviceId> {
            None
        }
        fn link_hint(&self, _: crate::driver::DeviceId, _: crate::driver::DeviceId) -> Option<crate::driver::LinkHint> {
            None
        }
    }

    const KNOWN: u64 = core::mem::size_of::<drm_xe_mem_range_attr>() as u64;

    #[test]
    fn query_mem_range_attrs_reads_the_kernels_entry_size() {
        let v = query_mem_range_attrs(&Kernel { entry: KNOWN }, 3, 1, 0, 1 << 21).unwrap();
        assert_eq!((v.len(), v[0].extensions, v[1].extensions), (2, 1, 2));
        // An older, smaller entry: its prefix, the rest zero.
        let v = query_mem_range_attrs(&Kernel { entry: KNOWN - 8 }, 3, 1, 0, 1 << 21).unwrap();
        assert_eq!((v.len(), v[1].extensions), (2, 2));
        // SAFETY: the last word of a drm_xe_mem_range_attr, read as bytes.
        let tail = unsafe { core::ptr::read_unaligned((&v[1] as *const _ as *const u8).add(KNOWN as usize - 8) as *const u64) };
        assert_eq!(tail, 0, "beyond the kernel's entry");
    }

    #[test]
    fn query_mem_range_attrs_refuses_a_larger_entry_than_it_knows() {
        assert_eq!(query_mem_range_attrs(&Kernel { entry: KNOWN + 16 }, 3, 1, 0, 1 << 21).map(|v| v.len()), Err(Errno::EOVERFLOW));
    }
}
