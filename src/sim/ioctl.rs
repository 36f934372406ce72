//! Ioctl entry of the simulated driver: the DRM core's dispatch (docs/xe-uapi.md
//! docs/xe-uapi.md §2), then each Xe ioctl decoded from the caller's memory exactly as the
//! kernel reads it, with the validation rules and errnos of docs/xe-uapi.md §6.

use core::ffi::c_void;
use core::mem::size_of;
use std::os::fd::RawFd;

use super::config::KernelVersion;
use super::uaccess;
use super::vm::{PrefTarget, Vm, VmaKind};
use super::{Guard, Point, Sim, TimeCategory};
use crate::errno::{Errno, Result};
use crate::uapi::*;

/// The Xe2 PAT table (BMG, LNL; `xe2_pat_table` in xe_pat.c): per index
/// its coherency mode as `xe_pat_index_get_coh_mode` returns it. 0: the
/// entry is hardware-reserved (16-19) and has none, so VM_BIND and MADVISE
/// refuse it; 1: XE_COH_NONE; 2: XE_COH_AT_LEAST_1WAY.
pub(super) const XE2_PAT_COH: [u8; 32] = [1, 2, 2, 1, 2, 2, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2];
pub(super) const N_PAT: u32 = XE2_PAT_COH.len() as u32;
pub(super) const COH_NONE: u8 = 1;
pub(super) const PAGE: u64 = 4096;
/// The GPU VA size every simulated device reports (DEVICE_QUERY CONFIG).
pub(super) const VA_BITS: u32 = 48;
/// `kvmalloc` refuses sizes over INT_MAX: arrays the kernel copies in larger
/// than that fail to allocate (ENOBUFS for arrays of more than one).
pub(super) const KVMALLOC_MAX: u64 = i32::MAX as u64;

/// Coherency mode of a PAT index (0 for reserved or past the table).
pub(super) fn pat_coh(index: u32) -> u8 {
    XE2_PAT_COH.get(index as usize).copied().unwrap_or(0)
}

/// Whether a PAT index enables compression (`xe_pat_index_get_comp_en`:
/// the Xe2 table's `comp_en` column, set on 9-12, 14, 15, 21, 25 and 29).
pub(super) fn pat_comp(index: u32) -> bool {
    matches!(index, 9..=12 | 14 | 15 | 21 | 25 | 29)
}

/// VM_BIND flags a kernel release takes (`SUPPORTED_FLAGS` in xe_vm.c).
pub(super) fn supported_bind_flags(k: KernelVersion) -> u32 {
    let base = DRM_XE_VM_BIND_FLAG_READONLY
        | DRM_XE_VM_BIND_FLAG_IMMEDIATE
        | DRM_XE_VM_BIND_FLAG_NULL
        | DRM_XE_VM_BIND_FLAG_DUMPABLE
        | DRM_XE_VM_BIND_FLAG_CHECK_PXP
        | DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR;
    // MADVISE_AUTORESET arrived in 6.18-rc3 (ce831bffcef3): unknown before.
    let base = if k.autoreset_flag() { base | DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET } else { base };
    if k >= KernelVersion::V7_1 {
        base | DRM_XE_VM_BIND_FLAG_DECOMPRESS
    } else {
        base
    }
}

/// VM_CREATE flags a kernel release takes (`ALL_DRM_XE_VM_CREATE_FLAGS`).
fn supported_vm_create_flags(k: KernelVersion) -> u32 {
    let base = DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE | DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE;
    if k >= KernelVersion::V7_1 {
        base | DRM_XE_VM_CREATE_FLAG_NO_VM_OVERCOMMIT
    } else {
        base
    }
}

/// The highest Xe ioctl nr a release knows (docs/xe-uapi.md §3, §7).
fn last_xe_ioctl(k: KernelVersion) -> u32 {
    match k {
        KernelVersion::V6_18Rc | KernelVersion::V6_18 => DRM_XE_VM_QUERY_MEM_RANGE_ATTRS,
        KernelVersion::V7_0 => DRM_XE_EXEC_QUEUE_SET_PROPERTY,
        KernelVersion::V7_1 => DRM_XE_VM_GET_PROPERTY,
    }
}

/// The kernel's own direction and size for each driver ioctl nr it models.
fn kernel_ioctl(nr: u32) -> Option<(u32, usize)> {
    const W: u32 = IOC_WRITE;
    const RW: u32 = IOC_READ | IOC_WRITE;
    Some(match nr {
        0x00 => (RW, size_of::<drm_version>()),
        n if n == DRM_COMMAND_BASE + DRM_XE_DEVICE_QUERY => (RW, size_of::<drm_xe_device_query>()),
        n if n == DRM_COMMAND_BASE + DRM_XE_VM_CREATE => (RW, size_of::<drm_xe_vm_create>()),
        n if n == DRM_COMMAND_BASE + DRM_XE_VM_DESTROY => (W, size_of::<drm_xe_vm_destroy>()),
        n if n == DRM_COMMAND_BASE + DRM_XE_VM_BIND => (W, size_of::<drm_xe_vm_bind>()),
        n if n == DRM_COMMAND_BASE + DRM_XE_WAIT_USER_FENCE => (RW, size_of::<drm_xe_wait_user_fence>()),
        n if n == DRM_COMMAND_BASE + DRM_XE_MADVISE => (W, size_of::<drm_xe_madvise>()),
        n if n == DRM_COMMAND_BASE + DRM_XE_VM_QUERY_MEM_RANGE_ATTRS => (RW, size_of::<drm_xe_vm_query_mem_range_attr>()),
        _ => return None,
    })
}

/// Reads the ioctl argument as the DRM core does: the kernel's size, copied
/// in only if the caller's direction says so, zero-extended.
pub(super) fn copy_in<T: Copy + Default>(arg: u64, user_dir: u32, user_size: usize) -> Result<T> {
    let mut v = T::default();
    if user_dir & IOC_WRITE != 0 {
        let n = user_size.min(size_of::<T>());
        // SAFETY: viewing a plain-data struct as n <= size_of::<T>() bytes.
        let bytes = unsafe { core::slice::from_raw_parts_mut(&mut v as *mut T as *mut u8, n) };
        uaccess::read_arg(arg, bytes)?;
    }
    Ok(v)
}

/// Copies the result back if both the caller and the kernel say READ.
pub(super) fn copy_out<T: Copy>(arg: u64, user_dir: u32, user_size: usize, v: &T) -> Result<()> {
    if user_dir & IOC_READ == 0 {
        return Ok(());
    }
    let n = user_size.min(size_of::<T>());
    // SAFETY: viewing a plain-data struct as n <= size_of::<T>() bytes.
    let bytes = unsafe { core::slice::from_raw_parts(v as *const T as *const u8, n) };
    uaccess::write_arg(arg, bytes)
}

impl Sim {
    /// Issues an ioctl on a simulated device fd, with the real uAPI structs.
    ///
    /// # Safety
    /// As for `ioctl(2)`: `arg` and the user pointers inside it are read and
    /// written as the kernel would; bad pointers give EFAULT where detectable.
    pub unsafe fn ioctl(&self, fd: RawFd, request: u32, arg: *mut c_void) -> Result<()> {
        self.count(&self.counters.ioctls, 1);
        let mut g = self.state.lock();
        // Binds done before this call have completed by now.
        self.signal_fences(&mut g);
        // The VFS answers a closed fd before any DRM code runs; an open fd
        // of this process that is no simulated device (/dev/null, a file,
        // another simulator's) answers as a file that is no DRM device:
        // ENOTTY, what vfs_ioctl gives without an unlocked_ioctl.
        let Some(file) = g.files.get(&fd) else {
            // SAFETY: F_GETFD only reads the descriptor table's flags.
            let open = fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
            return Err(if open { Errno::ENOTTY } else { Errno::EBADF });
        };
        let dev = file.device;
        // A wedged device is ECANCELED in xe_drm_ioctl and an unplugged one
        // ENODEV at the top of drm_ioctl, both before the request is looked at.
        if let Some(e) = g.gone[dev as usize] {
            return Err(e);
        }
        if ioc_type(request) != DRM_IOCTL_BASE {
            return Err(Errno::ENOTTY);
        }
        if let Some(e) = self.injected(&mut g, Point::DeviceRemoval, dev, request) {
            self.mark_gone(&mut g, dev, e);
            return Err(e);
        }
        if let Some(e) = self.injected(&mut g, Point::Ioctl, dev, request) {
            return Err(e);
        }
        self.advance(self.topo.costs.ioctl_ns, TimeCategory::Calls);
        let nr = ioc_nr(request);
        let Some((_, _)) = kernel_ioctl(nr) else {
            // Xe ioctls outside SVM (GEM, exec queues, exec, OA) are not modelled;
            // an nr the kernel does not know at all is EINVAL (drm_ioctl).
            let xe_known = (DRM_COMMAND_BASE..=DRM_COMMAND_BASE + last_xe_ioctl(self.topo.kernel)).contains(&nr);
            return Err(if xe_known { Errno::EOPNOTSUPP } else { Errno::EINVAL });
        };
        let (udir, usize_) = (ioc_dir(request), ioc_size(request));
        let arg = arg as u64;
        match nr {
            0x00 => self.version(arg, udir, usize_),
            n if n == DRM_COMMAND_BASE + DRM_XE_DEVICE_QUERY => self.device_query(&g, dev, arg, udir, usize_),
            n if n == DRM_COMMAND_BASE + DRM_XE_VM_CREATE => self.vm_create(&mut g, fd, dev, arg, udir, usize_),
            n if n == DRM_COMMAND_BASE + DRM_XE_VM_DESTROY => self.vm_destroy(&mut g, fd, arg, udir, usize_),
            n if n == DRM_COMMAND_BASE + DRM_XE_VM_BIND => self.vm_bind(&mut g, fd, dev, arg, udir, usize_),
            n if n == DRM_COMMAND_BASE + DRM_XE_WAIT_USER_FENCE => self.wait_user_fence(&mut g, arg, udir, usize_),
            n if n == DRM_COMMAND_BASE + DRM_XE_MADVISE => self.madvise(&mut g, fd, dev, arg, udir, usize_),
            _ => self.query_mem_range_attrs(&g, fd, arg, udir, usize_),
        }
    }

    // -- DRM_IOCTL_VERSION --------------------------------------------------

    fn version(&self, arg: u64, udir: u32, usz: usize) -> Result<()> {
        let mut v: drm_version = copy_in(arg, udir, usz)?;
        let fill = |len: &mut u64, ptr: u64, s: &str| -> Result<()> {
            if *len > 0 && ptr != 0 {
                let n = (*len as usize).min(s.len());
                uaccess::write_bytes(ptr, &s.as_bytes()[..n])?;
            }
            *len = s.len() as u64;
            Ok(())
        };
        v.version_major = 1;
        v.version_minor = 1;
        v.version_patchlevel = 0;
        fill(&mut v.name_len, v.name, "xe")?;
        fill(&mut v.date_len, v.date, "20260401")?;
        fill(&mut v.desc_len, v.desc, "Intel Xe2 Graphics (xesvm simulated driver)")?;
        copy_out(arg, udir, usz, &v)
    }

    // -- VM_CREATE / VM_DESTROY (docs/xe-uapi.md §6.2, §6.3) --------------------------------

    fn vm_create(&self, g: &mut Guard, fd: RawFd, dev: u32, arg: u64, udir: u32, usz: usize) -> Result<()> {
        let mut c: drm_xe_vm_create = copy_in(arg, udir, usz)?;
        // The order of xe_vm_create_ioctl's checks.
        let spec = &self.topo.devices[dev as usize];
        let fault = c.flags & DRM_XE_VM_CREATE_FLAG_FAULT_MODE != 0;
        if c.extensions != 0 || (fault && !spec.page_faults) || c.reserved != [0, 0] {
            return Err(Errno::EINVAL);
        }
        if c.flags & !supported_vm_create_flags(self.topo.kernel) != 0 {
            return Err(Errno::EINVAL);
        }
        // Scratch pages with fault mode only where the platform needs them.
        if fault && c.flags & DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE != 0 && !spec.needs_scratch {
            return Err(Errno::EINVAL);
        }
        if fault && c.flags & DRM_XE_VM_CREATE_FLAG_LR_MODE == 0 {
            return Err(Errno::EINVAL);
        }
        if c.flags & DRM_XE_VM_CREATE_FLAG_NO_VM_OVERCOMMIT != 0 && !fault {
            return Err(Errno::EINVAL);
        }
        let f = g.files.get_mut(&fd).unwrap();
        // xa_alloc in xe_file_open's XA_FLAGS_ALLOC1 xarray: the lowest
        // free id from 1, so a destroyed VM's id names the next one.
        let id = f.vms.keys().zip(1..).find(|&(&k, i)| k != i).map_or(f.vms.len() as u32 + 1, |(_, i)| i);
        f.vms.insert(id, Vm::new(c.flags, 1 << 48));
        c.vm_id = id;
        copy_out(arg, udir, usz, &c).inspect_err(|_| {
            g.files.get_mut(&fd).unwrap().vms.remove(&id);
        })
    }

    fn vm_destroy(&self, g: &mut Guard, fd: RawFd, arg: u64, udir: u32, usz: usize) -> Result<()> {
        let d: drm_xe_vm_destroy = copy_in(arg, udir, usz)?;
        if d.pad != 0 || d.reserved != [0, 0] {
            return Err(Errno::EINVAL);
        }
        let vm = g.files.get_mut(&fd).unwrap().vms.remove(&d.vm_id).ok_or(Errno::ENOENT)?;
        let tiles: u32 = vm.ranges.values().map(|r| r.bound.count_ones()).sum();
        self.count(&self.counters.tlb_invalidations, tiles as u64);
        Ok(())
    }

    // -- WAIT_USER_FENCE (docs/xe-uapi.md §6.6) ---------------------------------------------

    fn wait_user_fence(&self, g: &mut Guard, arg: u64, udir: u32, usz: usize) -> Result<()> {
        let mut w: drm_xe_wait_user_fence = copy_in(arg, udir, usz)?;
        if w.extensions != 0 || w.pad != 0 || w.pad2 != 0 || w.reserved != [0, 0] {
            return Err(Errno::EINVAL);
        }
        if w.flags & !DRM_XE_UFENCE_WAIT_FLAG_ABSTIME != 0 || w.op > DRM_XE_UFENCE_WAIT_OP_LTE || w.addr & 7 != 0 {
            return Err(Errno::EINVAL);
        }
        if w.exec_queue_id != 0 {
            return Err(Errno::ENOENT);
        }
        let abs = w.flags & DRM_XE_UFENCE_WAIT_FLAG_ABSTIME != 0;
        // to_jiffies_timeout: a negative timeout waits forever, and is
        // rewritten to MAX_SCHEDULE_TIMEOUT so the arithmetic after the wait
        // hands back that minus the time spent.
        if w.timeout < 0 {
            w.timeout = i64::MAX;
        }
        let start = crate::driver::monotonic_ns() as i64;
        let deadline = if w.timeout == i64::MAX { i64::MAX } else if abs { w.timeout } else { start.saturating_add(w.timeout) };
        let zero = w.timeout == 0;
        let result = loop {
            // The word may be the runtime's (a batch's fence): checked.
            // do_compare's EFAULT ends the loop like any result: the time
            // spent is still written back below.
            let v: u64 = match uaccess::read(w.addr) {
                Ok(v) => v,
                Err(e) => break Err(e),
            };
            let (a, b) = (v & w.mask, w.value & w.mask);
            let passed = match w.op {
                DRM_XE_UFENCE_WAIT_OP_EQ => a == b,
                DRM_XE_UFENCE_WAIT_OP_NEQ => a != b,
                DRM_XE_UFENCE_WAIT_OP_GT => a > b,
                DRM_XE_UFENCE_WAIT_OP_GTE => a >= b,
                DRM_XE_UFENCE_WAIT_OP_LT => a < b,
                _ => a <= b,
            };
            if passed {
                // xe_wait_user_fence_ioctl: a passing compare returns 0, also at
                // timeout 0 (the trailing `if (!timeout && !(err < 0)) err =
                // -ETIME` went in 6.12, "drm/xe/ufence: ufence can be signaled
                // right after wait_woken"; every release modelled is later).
                break Ok(());
            }
            if zero || crate::driver::monotonic_ns() as i64 >= deadline {
                break Err(Errno::ETIME);
            }
            // Another thread may write the fence: wait without the driver lock.
            parking_lot::MutexGuard::unlocked(g, || std::thread::sleep(std::time::Duration::from_micros(50)));
        };
        if !abs {
            let spent = crate::driver::monotonic_ns() as i64 - start;
            w.timeout = (w.timeout - spent).max(0);
        }
        // The DRM core copies the argument back whatever the result.
        copy_out(arg, udir, usz, &w)?;
        result
    }

    // -- MADVISE (docs/xe-uapi.md §6.7) -------------------------------------------------------

    fn madvise(&self, g: &mut Guard, fd: RawFd, dev: u32, arg: u64, udir: u32, usz: usize) -> Result<()> {
        let m: drm_xe_madvise = copy_in(arg, udir, usz)?;
        let v7 = self.topo.kernel >= KernelVersion::V7_0;
        let v7_1 = self.topo.kernel >= KernelVersion::V7_1;
        let mut start = m.start;
        // 7.0+ strips the bits above the VA size (`xe_device_uncanonicalize_addr`,
        // `addr & GENMASK_ULL(va_bits - 1, 0)`), so canonical (sign-extended)
        // addresses are accepted, and so is any junk up there.
        if v7 {
            start &= (1 << VA_BITS) - 1;
        }
        if !g.files[&fd].vms.contains_key(&m.vm_id) {
            return Err(Errno::EINVAL);
        }
        if start % PAGE != 0 || m.range % PAGE != 0 || m.range < PAGE || m.reserved != [0, 0] {
            return Err(Errno::EINVAL);
        }
        // SAFETY: union members are plain data; `attr_type` selects the meaningful one.
        let (pl, val) = unsafe { (m.attr.preferred_mem_loc, m.attr.atomic) };
        enum Change {
            Pref(u32, u16, u16, PrefTarget),
            Atomic(u32),
            Pat(u16),
            /// No attribute of a mirror VMA changes (only BOs are purgeable),
            /// but the span is checked and its VMAs split like any other's;
            /// the retained word's address, if any.
            Purgeable(u64),
        }
        let change = match m.attr_type {
            DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC => {
                let fd_s = pl.devmem_fd as i32;
                if fd_s < -1 || pl.migration_policy > DRM_XE_MIGRATE_ONLY_SYSTEM_PAGES || pl.reserved != 0 {
                    return Err(Errno::EINVAL);
                }
                if (!v7 || fd_s <= 0) && pl.region_instance != 0 {
                    return Err(Errno::EINVAL);
                }
                let target = match fd_s {
                    0 => PrefTarget::DefaultDevice,
                    // 6.18 takes a positive fd unvalidated, as system memory;
                    // 7.0 looks it up after the garbage collector (below).
                    _ => PrefTarget::System,
                };
                Change::Pref(pl.devmem_fd, pl.migration_policy, pl.region_instance, target)
            }
            DRM_XE_MEM_RANGE_ATTR_ATOMIC => {
                if val.val > DRM_XE_ATOMIC_CPU || val.pad != 0 || val.reserved != 0 {
                    return Err(Errno::EINVAL);
                }
                Change::Atomic(val.val)
            }
            DRM_XE_MEM_RANGE_ATTR_PAT => {
                // madvise_args_are_sane: past `xe->pat.n_entries`, or
                // reserved (no coherency mode).
                if val.val >= self.pat_entries(dev) || pat_coh(val.val) == 0 || val.pad != 0 || val.reserved != 0 {
                    return Err(Errno::EINVAL);
                }
                Change::Pat(val.val as u16)
            }
            DRM_XE_VMA_ATTR_PURGEABLE_STATE if v7_1 => {
                // SAFETY: union member, plain data.
                let p = unsafe { m.attr.purge_state_val };
                if p.val > DRM_XE_VMA_PURGEABLE_STATE_DONTNEED || p.pad != 0 {
                    return Err(Errno::EINVAL);
                }
                // xe_vm_madvise_ioctl reads the word before taking the VM
                // lock, and writes it after everything else succeeded.
                if p.retained_ptr != 0 && uaccess::read::<u32>(p.retained_ptr)? != 0 {
                    return Err(Errno::EINVAL);
                }
                Change::Purgeable(p.retained_ptr)
            }
            _ => return Err(Errno::EINVAL),
        };
        // The garbage collector runs before the madvise (xe_svm_flush), after
        // the argument checks and before xe_madvise_details_init: a reset
        // queued by a munmap lands first, and this advice wins.
        self.collect_garbage(g, fd, m.vm_id);
        let change = match change {
            Change::Pref(raw, policy, inst, _) if v7 && raw as i32 > 0 => {
                Change::Pref(raw, policy, inst, self.devmem_target(g, fd, dev, m.vm_id, raw as i32, inst)?)
            }
            c => c,
        };
        self.count(&self.counters.madvise_calls, 1);
        let integrated = !self.topo.devices[dev as usize].has_vram();
        let vm = g.files.get_mut(&fd).unwrap().vms.get_mut(&m.vm_id).unwrap();
        // After the arguments and the target device: the span must lie in
        // the VM (xe_vm_alloc_madvise_vma -> drm_gpuvm range check), VMA or
        // not, and must not wrap.
        let end = match start.checked_add(m.range) {
            Some(end) if end <= vm.va_size => end,
            _ => return Err(Errno::EINVAL),
        };
        // The written retained word: SVM memory is never purged
        // (`xe_madvise_purgeable_retained_to_user`, !has_purged_bo).
        let retained = |change: &Change| match *change {
            Change::Purgeable(ptr) if ptr != 0 => uaccess::write(ptr, &1u32),
            _ => Ok(()),
        };
        if vm.vmas_in(start, end).is_empty() {
            return retained(&change); // no VMA: nothing to do
        }
        // xe_vm_alloc_madvise_vma splits the VMAs at the span's ends before
        // any check of what it holds: a PAT refused below leaves them split.
        let mut straddling = vm.split_at(start);
        straddling.extend(vm.split_at(end));
        // check_pat_args_are_sane: on an integrated GPU a non-coherent PAT
        // over CPU-cached memory (SVM mirror ranges) is refused.
        if let Change::Pat(p) = change {
            let mirror = vm.vmas_in(start, end).iter().any(|vs| vm.vmas[vs].kind == VmaKind::Mirror);
            if integrated && pat_coh(p as u32) == COH_NONE && mirror {
                self.destroy_ranges(g, fd, m.vm_id, &straddling, true);
                return Err(Errno::EINVAL);
            }
        }
        let mut zapped = Vec::new();
        for vs in vm.vmas_in(start, end) {
            let v = vm.vmas.get_mut(&vs).unwrap();
            let changed = match change {
                Change::Pref(fd_raw, policy, inst, target) => {
                    // Only mirror VMAs take it; and the quirk: a VMA is unchanged
                    // when fd and policy match, whatever region_instance says.
                    let unchanged = v.attrs.devmem_fd == fd_raw && v.attrs.migration_policy == policy;
                    if v.kind != VmaKind::Mirror || unchanged {
                        false
                    } else {
                        v.attrs.devmem_fd = fd_raw;
                        v.attrs.migration_policy = policy;
                        v.attrs.region_instance = inst;
                        v.attrs.pref = target;
                        true
                    }
                }
                Change::Atomic(a) => std::mem::replace(&mut v.attrs.atomic, a) != a,
                Change::Pat(p) => std::mem::replace(&mut v.attrs.pat, p) != p,
                Change::Purgeable(_) => false,
            };
            if changed {
                zapped.push((vs, v.end));
            }
        }
        // xe_vm_invalidate_madvise_range: the PTEs of every changed VMA are
        // zapped, then one range invalidation over [start, end) per tile
        // that had any of them bound (xe_vm_range_tilemask_tlb_inval).
        let mut mask = 0u8;
        for (s, e) in zapped {
            mask |= vm.invalidate_span(s, e);
        }
        let tiles = mask.count_ones();
        self.count(&self.counters.tlb_invalidations, tiles as u64);
        self.advance(tiles as u64 * self.topo.costs.tlb_invalidation_ns, TimeCategory::Tlb);
        self.destroy_ranges(g, fd, m.vm_id, &straddling, true);
        retained(&change)
    }

    /// `xe_madvise_details_init` for a positive `devmem_fd` (7.0+): the
    /// pagemap `xe_drm_pagemap_from_fd` finds, which must have the VM's
    /// owner (`vm->svm.peer.owner`). Only a FAULT_MODE VM acquires an owner
    /// (xe_svm_init), so on any other VM every device pagemap is foreign.
    fn devmem_target(&self, g: &Guard, fd: RawFd, dev: u32, vm_id: u32, devmem_fd: i32, region_instance: u16) -> Result<PrefTarget> {
        let tdev = g.files.get(&devmem_fd).ok_or(Errno::ENOENT)?.device;
        // xe_drm_pagemap_from_fd: ENODEV only where drm_dev_enter fails
        // (unplugged); a wedged device's memory is looked up as any other's.
        if matches!(g.gone[tdev as usize], Some(e) if e != Errno::ECANCELED) {
            return Err(Errno::ENODEV);
        }
        let tile = region_instance.checked_sub(1).ok_or(Errno::ENOENT)?;
        let p = self.pagemap_of(tdev, tile).ok_or(Errno::ENOENT)?;
        if !g.files[&fd].vms[&vm_id].fault_mode() || self.owner_of_pagemap(p) != self.owner[dev as usize] {
            return Err(Errno::ENOLINK);
        }
        Ok(PrefTarget::Pagemap(p))
    }

    // -- VM_QUERY_MEM_RANGE_ATTRS (docs/xe-uapi.md §6.8) --------------------------------------

    fn query_mem_range_attrs(&self, g: &Guard, fd: RawFd, arg: u64, udir: u32, usz: usize) -> Result<()> {
        let mut q: drm_xe_vm_query_mem_range_attr = copy_in(arg, udir, usz)?;
        let attr_size = size_of::<drm_xe_mem_range_attr>() as u64;
        // xe_vm_query_vmas_attrs_ioctl: the arguments, then the VM.
        let bad = if q.num_mem_ranges == 0 {
            q.vector_of_mem_attr != 0 || q.sizeof_mem_range_attr != 0
        } else {
            q.vector_of_mem_attr == 0 || q.sizeof_mem_range_attr != attr_size
        };
        if bad {
            return Err(Errno::EINVAL);
        }
        let vm = g.files[&fd].vms.get(&q.vm_id).ok_or(Errno::EINVAL)?;
        // The kernel's u64 sum wraps (drm_gpuvm_for_each_va_range walks
        // from the first VMA over [start, end - 1] while one starts below end).
        let vmas = vm.vmas_walked(q.start, q.start.wrapping_add(q.range));
        if q.num_mem_ranges == 0 {
            q.num_mem_ranges = vmas.len() as u32;
            q.sizeof_mem_range_attr = attr_size;
            return copy_out(arg, udir, usz, &q);
        }
        // The kernel allocates num_mem_ranges entries first: kvmalloc refuses
        // more than INT_MAX bytes (ENOBUFS for more than one entry).
        if q.num_mem_ranges as u64 * attr_size > KVMALLOC_MAX {
            return Err(if q.num_mem_ranges > 1 { Errno::ENOBUFS } else { Errno::ENOMEM });
        }
        if vmas.len() > q.num_mem_ranges as usize {
            return Err(Errno::ENOSPC);
        }
        for (i, vs) in vmas.iter().enumerate() {
            let v = &vm.vmas[vs];
            let a = drm_xe_mem_range_attr {
                extensions: 0,
                start: *vs,
                end: v.end,
                preferred_mem_loc: drm_xe_mem_range_attr_pref_loc {
                    devmem_fd: v.attrs.devmem_fd,
                    migration_policy: v.attrs.migration_policy as u32,
                },
                atomic: drm_xe_mem_range_attr_val { val: v.attrs.atomic, reserved: 0 },
                pat_index: drm_xe_mem_range_attr_val { val: v.attrs.pat as u32, reserved: 0 },
                reserved: [0, 0],
            };
            uaccess::write(q.vector_of_mem_attr + (i * size_of::<drm_xe_mem_range_attr>()) as u64, &a)?;
        }
        q.num_mem_ranges = vmas.len() as u32;
        copy_out(arg, udir, usz, &q)
    }
}
