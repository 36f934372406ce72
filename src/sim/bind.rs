//! VM_BIND in the simulated driver (docs/xe-uapi.md §6.4, §6.5): the argument
//! checks of `vm_bind_ioctl_check_args` and `xe_vm_bind_ioctl` in the
//! kernel's order, sync parsing, and the MAP / UNMAP / PREFETCH operations
//! on the VM's VMAs and SVM ranges.

use core::mem::size_of;
use std::os::fd::RawFd;

use super::ioctl::{copy_in, pat_coh, pat_comp, supported_bind_flags, COH_NONE, KVMALLOC_MAX, PAGE};
use super::uaccess;
use super::vm::{Attrs, PrefTarget, Vm, Vma, VmaKind};
use super::{Guard, Sim};
use crate::errno::{Errno, Result};
use crate::uapi::*;

impl Sim {

    pub(super) fn check_bind_op(&self, dev: u32, vm: &Vm, op: &drm_xe_vm_bind_op) -> Result<()> {
        let tiles = self.topo.devices[dev as usize].tiles as u32;
        let has_vram = !self.tile_pagemap[dev as usize].is_empty();
        let flags = op.flags;
        let is_null = flags & DRM_XE_VM_BIND_FLAG_NULL != 0;
        let is_mirror = flags & DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR != 0;
        let decompress = flags & DRM_XE_VM_BIND_FLAG_DECOMPRESS != 0;
        let inval = Err(Errno::EINVAL);
        // vm_bind_ioctl_check_args, in its order.
        if is_mirror && !vm.fault_mode() {
            return inval;
        }
        // Past the device's table (`xe->pat.n_entries`), or a
        // hardware-reserved entry (no coherency mode).
        if op.pat_index as u32 >= self.pat_entries(dev) || pat_coh(op.pat_index as u32) == 0 {
            return inval;
        }
        if op.op > DRM_XE_VM_BIND_OP_PREFETCH || flags & !supported_bind_flags(self.topo.kernel) != 0 {
            return inval;
        }
        // A userptr is CPU-cached memory: a non-coherent PAT is refused.
        if op.op == DRM_XE_VM_BIND_OP_MAP_USERPTR && pat_coh(op.pat_index as u32) == COH_NONE {
            return inval;
        }
        // So is a mirror's on an integrated GPU, which shares the CPU's LLC
        // ("drm/xe: Reject coh_none PAT index for CPU_ADDR_MIRROR", 6.18
        // stable): `!IS_DGFX(xe) && coh_mode == XE_COH_NONE && is_cpu_addr_mirror`.
        if !has_vram && is_mirror && pat_coh(op.pat_index as u32) == COH_NONE {
            return inval;
        }
        if (is_null || is_mirror) && (op.obj != 0 || op.obj_offset != 0) {
            return inval;
        }
        if (is_null || is_mirror || decompress) && op.op != DRM_XE_VM_BIND_OP_MAP {
            return inval;
        }
        // A decompressing bind through a compressing PAT, or a userptr
        // through one: `is_decompress && xe_pat_index_get_comp_en(...)`,
        // `comp_en && op == DRM_XE_VM_BIND_OP_MAP_USERPTR`.
        let comp = pat_comp(op.pat_index as u32);
        if comp && (decompress || op.op == DRM_XE_VM_BIND_OP_MAP_USERPTR) {
            return inval;
        }
        match op.op {
            DRM_XE_VM_BIND_OP_MAP if op.obj == 0 && !is_null && !is_mirror => return inval,
            DRM_XE_VM_BIND_OP_UNMAP_ALL if op.obj == 0 || op.addr != 0 || op.range != 0 => return inval,
            DRM_XE_VM_BIND_OP_MAP_USERPTR | DRM_XE_VM_BIND_OP_UNMAP | DRM_XE_VM_BIND_OP_PREFETCH if op.obj != 0 => {
                return inval
            }
            _ => {}
        }
        let region = op.prefetch_mem_region_instance;
        if op.op != DRM_XE_VM_BIND_OP_PREFETCH && region != 0 {
            return inval;
        }
        if op.op == DRM_XE_VM_BIND_OP_PREFETCH && region != DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC {
            let valid = region == 0 || (has_vram && region <= tiles);
            if !valid {
                return inval;
            }
        }
        if flags & DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET != 0 && (!is_mirror || op.op != DRM_XE_VM_BIND_OP_MAP) {
            return inval;
        }
        if op.obj_offset % PAGE != 0 || op.addr % PAGE != 0 || op.range % PAGE != 0 {
            return inval;
        }
        if op.range == 0 && op.op != DRM_XE_VM_BIND_OP_UNMAP_ALL {
            return inval;
        }
        // After every EINVAL: only a discrete Xe2 device with flat CCS
        // decompresses (`!xe_device_has_flat_ccs(xe)`, `GRAPHICS_VER(xe) <
        // 20`, `!IS_DGFX(xe)`: EOPNOTSUPP).
        if decompress && !self.decompresses(dev) {
            return Err(Errno::EOPNOTSUPP);
        }
        Ok(())
    }

    pub(super) fn vm_bind(&self, g: &mut Guard, fd: RawFd, dev: u32, arg: u64, udir: u32, usz: usize) -> Result<()> {
        let b: drm_xe_vm_bind = copy_in(arg, udir, usz)?;
        // xe_vm_bind_ioctl's order: the VM first, then the arguments (the
        // vector of binds copied in), the exec queue, every bind's range,
        // then the BOs, then the syncs.
        let vm = g.files[&fd].vms.get(&b.vm_id).ok_or(Errno::EINVAL)?;
        if b.extensions != 0 || b.pad != 0 || b.pad2 != 0 || b.reserved != [0, 0] || b.num_syncs > DRM_XE_MAX_SYNCS {
            return Err(Errno::EINVAL);
        }
        let ops: Vec<drm_xe_vm_bind_op> = match b.num_binds {
            0 => Vec::new(),
            // SAFETY: union member read of a plain-data value.
            1 => vec![unsafe { b.ops.bind }],
            n if n as u64 * size_of::<drm_xe_vm_bind_op>() as u64 > KVMALLOC_MAX => return Err(Errno::ENOBUFS),
            // SAFETY: union member read of a plain u64 (the op array's address).
            n => uaccess::read_array(unsafe { b.ops.vector_of_binds }, n as usize)?,
        };
        for op in &ops {
            self.check_bind_op(dev, vm, op)?;
        }
        if b.exec_queue_id != 0 {
            return Err(Errno::ENOENT);
        }
        // xe_svm_flush before the VM lock, so before the span, BO and sync
        // checks: a bind they refuse has still run the garbage collector
        // (docs/kernel-model.md §8).
        self.collect_garbage(g, fd, b.vm_id);
        let vm = &g.files[&fd].vms[&b.vm_id];
        for op in &ops {
            if op.range > vm.va_size || op.addr > vm.va_size - op.range {
                return Err(Errno::EINVAL);
            }
        }
        // GEM buffer objects are not modelled: every handle is unknown.
        if ops.iter().any(|op| op.obj != 0) {
            return Err(Errno::ENOENT);
        }
        let lr = vm.flags & DRM_XE_VM_CREATE_FLAG_LR_MODE != 0;
        let mut fences = Vec::new();
        // xe_sync_entry_parse copies one sync at a time, and parses it
        // before the next is read: an earlier sync's error wins over a
        // later one's unreadable memory.
        for i in 0..b.num_syncs as u64 {
            let s = &uaccess::read::<drm_xe_sync>(b.syncs.wrapping_add(i * size_of::<drm_xe_sync>() as u64))?;
            if s.flags & !DRM_XE_SYNC_FLAG_SIGNAL != 0 || s.reserved != [0, 0] {
                return Err(Errno::EINVAL);
            }
            let signal = s.flags & DRM_XE_SYNC_FLAG_SIGNAL != 0;
            match s.sync_type {
                DRM_XE_SYNC_TYPE_SYNCOBJ | DRM_XE_SYNC_TYPE_TIMELINE_SYNCOBJ => {
                    if signal && lr {
                        return Err(Errno::EOPNOTSUPP);
                    }
                    if s.addr >> 32 != 0 {
                        return Err(Errno::EINVAL);
                    }
                    if s.sync_type == DRM_XE_SYNC_TYPE_TIMELINE_SYNCOBJ && s.timeline_value == 0 {
                        return Err(Errno::EINVAL);
                    }
                    return Err(Errno::ENOENT); // no syncobjs exist in the simulation
                }
                DRM_XE_SYNC_TYPE_USER_FENCE => {
                    if ops.is_empty() || !signal {
                        return Err(Errno::EOPNOTSUPP);
                    }
                    if s.addr & 7 != 0 {
                        return Err(Errno::EINVAL);
                    }
                    // user_fence_create reads the word (get_user, since
                    // "drm/xe: prefetch the user fence value" in 6.12), and
                    // the worker writes it later with copy_to_user: both
                    // checked, whoever issued the bind, as the word may be
                    // the runtime's (a batch's fence) and not the library's.
                    uaccess::read::<u64>(s.addr)?;
                    fences.push((s.addr, s.timeline_value));
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        if fences.len() > 1 {
            return Err(Errno::EINVAL);
        }
        // Userptr binds pass every check above but are not modelled.
        if ops.iter().any(|op| op.op == DRM_XE_VM_BIND_OP_MAP_USERPTR) {
            return Err(Errno::EOPNOTSUPP);
        }
        // Map/unmap ops are all-or-nothing: keep the VM to restore on failure.
        let structural = ops.iter().any(|o| o.op != DRM_XE_VM_BIND_OP_PREFETCH);
        let saved = structural.then(|| {
            let vm = &g.files[&fd].vms[&b.vm_id];
            (vm.vmas.clone(), vm.ranges.clone())
        });
        let (mut binds, mut voided) = (Vec::new(), false);
        for op in &ops {
            let r = match op.op {
                DRM_XE_VM_BIND_OP_MAP => self.bind_map(g, fd, b.vm_id, op),
                DRM_XE_VM_BIND_OP_UNMAP => self.bind_unmap(g, fd, b.vm_id, op.addr, op.addr + op.range),
                // A swallowed failure (`voided`) also stops every later
                // prefetch op's migrations (vm_bind_ioctl_ops_prefetch_ranges).
                DRM_XE_VM_BIND_OP_PREFETCH => self.bind_prefetch(g, fd, b.vm_id, dev, op, &mut binds, &mut voided).map(|_| ()),
                _ => Err(Errno::ENOENT), // UNMAP_ALL needs a BO
            };
            if let Err(e) = r {
                if let Some((vmas, ranges)) = saved {
                    if let Some(vm) = g.files.get_mut(&fd).and_then(|f| f.vms.get_mut(&b.vm_id)) {
                        vm.vmas = vmas;
                        vm.ranges = ranges;
                    }
                }
                return Err(e);
            }
        }
        self.execute_prefetch_binds(g, fd, b.vm_id, dev, &binds, voided);
        // The work is done; the fences signal when the world next moves
        // (Sim::signal_fences): the ioctl returns with the bind in flight.
        g.fences.extend(fences);
        Ok(())
    }

    pub(super) fn bind_map(&self, g: &mut Guard, fd: RawFd, vm_id: u32, op: &drm_xe_vm_bind_op) -> Result<()> {
        let (mut s, mut e) = (op.addr, op.addr + op.range);
        let mirror = op.flags & DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR != 0;
        let vm = g.files.get_mut(&fd).unwrap().vms.get_mut(&vm_id).unwrap();
        // From 7.0 a mirror MAP is widened over its default neighbours
        // (`Vm::widen_over_default_mirrors`, from vm_bind_ioctl_ops_create):
        // a re-MAP of part of one covers it whole, so it replaces the VMA
        // instead of splitting it, live SVM ranges or not, and a MAP over a
        // piece madvise split off merges it with its neighbours once their
        // values are the defaults again.
        let widens = self.topo.kernel.multi_device();
        if mirror && widens {
            (s, e) = vm.widen_over_default_mirrors(s, e);
        }
        // EBUSY: removing or splitting a mirror VMA that still has SVM mappings,
        // unless a mirror MAP covers it whole (docs/xe-uapi.md §6.4, execution-time results)
        // from 7.0 on: vm_bind_ioctl_ops_parse's UNMAP spares it only under
        // XE_VMA_OPS_FLAG_ALLOW_SVM_UNMAP, which 6.18 does not have.
        for vs in vm.vmas_in(s, e) {
            let v = &vm.vmas[&vs];
            if v.kind == VmaKind::Mirror && vm.overlaps_range(s.max(vs), e.min(v.end)) {
                let covered = s <= vs && v.end <= e;
                if !(covered && mirror && widens) {
                    return Err(Errno::EBUSY);
                }
            }
        }
        let mut straddling = vm.split_at(s);
        straddling.extend(vm.split_at(e));
        for vs in vm.vmas_in(s, e) {
            vm.vmas.remove(&vs);
        }
        // From 7.0 (XE_VMA_OPS_FLAG_ALLOW_SVM_UNMAP) the mirror VMAs a
        // mirror MAP replaces give up nothing: their SVM ranges keep their
        // pages and GPU mappings (no page-table op for a mirror VMA's
        // UNMAP in op_commit, nothing in xe_vma_destroy).
        let keeps = mirror && widens;
        let inside = if keeps { Vec::new() } else { vm.ranges_in(s, e) };
        let tiles = if keeps { 0 } else { vm.invalidate(s, e, true) };
        let attrs = Attrs::defaults(op.pat_index);
        vm.vmas.insert(
            s,
            Vma {
                end: e,
                kind: if mirror { VmaKind::Mirror } else { VmaKind::Null },
                readonly: op.flags & DRM_XE_VM_BIND_FLAG_READONLY != 0,
                autoreset: op.flags & DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET != 0,
                bind_pat: op.pat_index,
                attrs,
            },
        );
        // The replaced VMAs' SVM ranges lose their GPU PTEs: one TLB
        // invalidation per tile they were bound on (xe_vm_range_unbind).
        self.charge_tlb(tiles);
        self.destroy_ranges(g, fd, vm_id, &straddling, true);
        self.destroy_ranges(g, fd, vm_id, &inside, false);
        Ok(())
    }

    pub(super) fn bind_unmap(&self, g: &mut Guard, fd: RawFd, vm_id: u32, s: u64, e: u64) -> Result<()> {
        let vm = g.files.get_mut(&fd).unwrap().vms.get_mut(&vm_id).unwrap();
        for vs in vm.vmas_in(s, e) {
            let v = &vm.vmas[&vs];
            if v.kind == VmaKind::Mirror && vm.overlaps_range(s.max(vs), e.min(v.end)) {
                return Err(Errno::EBUSY);
            }
        }
        vm.split_at(s);
        vm.split_at(e);
        for vs in vm.vmas_in(s, e) {
            vm.vmas.remove(&vs);
        }
        Ok(())
    }

    /// A PREFETCH op's migrations; whether one was swallowed (ENODATA).
    /// `stopped`: an earlier failure of the ioctl ended its migrations.
    #[allow(clippy::too_many_arguments)] // the ioctl's fields, and the array's state
    pub(super) fn bind_prefetch(&self, g: &mut Guard, fd: RawFd, vm_id: u32, dev: u32, op: &drm_xe_vm_bind_op, binds: &mut Vec<u64>, stopped: &mut bool) -> Result<bool> {
        let mut swallowed = false;
        let (s, e) = (op.addr, op.addr + op.range);
        let region = op.prefetch_mem_region_instance;
        // `vm_bind_ioctl_ops_create` creates every SVM range of the span
        // (xa_alloc, GFP_KERNEL) before `prefetch_ranges` populates a page,
        // and get_pages backs every never-populated page (hmm_range_fault).
        // A span whose untouched part alone exceeds the machine's memory
        // ends on the kernel in ENOMEM (unwind_prefetch_ops) or the OOM
        // killer; the simulator answers ENOMEM before creating any range
        // (docs/kernel-model.md §7), in time proportional to what the span
        // holds, not to its length.
        if g.mem.untouched_mapped_bytes(s, e) > self.topo.system_memory {
            return Err(Errno::ENOMEM);
        }
        let parts: Vec<(u64, u64, PrefTarget)> = {
            let vm = &g.files[&fd].vms[&vm_id];
            // vm_bind_ioctl_ops_create: `op->prefetch.region = prefetch_region;
            // break;` for a VMA that is no mirror leaves its op loop, so no
            // mirror VMA after the first such one gets a range.
            vm.vmas_in(s, e)
                .into_iter()
                .take_while(|vs| vm.vmas[vs].kind == VmaKind::Mirror)
                .map(|vs| (s.max(vs), e.min(vm.vmas[&vs].end), vm.vmas[&vs].attrs.pref))
                .collect()
        };
        for (ps, pe, pref) in parts {
            let target = match region {
                // CONSULT: preferred location resolved against the root tile.
                DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC => self.resolve_pref(dev, 0, pref),
                0 => None,
                n => self.pagemap_of(dev, (n - 1) as u16),
            };
            swallowed |= self.prefetch(g, fd, vm_id, dev, ps, pe, target, binds, stopped)?;
        }
        Ok(swallowed)
    }
}
