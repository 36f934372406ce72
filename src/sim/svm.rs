//! The kernel's SVM paths (docs/kernel-model.md): GPU fault handling (§4,
//! §15), range lookup and chunk sizing (§2), target resolution (§3),
//! migration to VRAM with scan, migrate rwsem and evict-and-retry-once
//! (§5), get_pages (§6), munmap and the garbage collector
//! (§8), VRAM pressure (§9) and the atomic timeslice (§5.3).

use std::os::fd::RawFd;

use parking_lot::MutexGuard;

use super::mem::{CpuKind, Loc, PAGE};
use super::vm::{PrefTarget, SvmRange, VmaKind};
use super::timeline::Lane;
use super::{Access, Guard, LinkKind, Point, Sim, SimEvent, TimeCategory};
use crate::errno::{Errno, Result};
use crate::uapi::*;

const CHUNK_SIZES: [u64; 3] = [2 << 20, 64 << 10, 4 << 10];
/// `check_pages_threshold` on discrete GPUs (docs/kernel-model.md §2 step 5).
const CHECK_PAGES_THRESHOLD: u64 = 64 << 10;
/// The sim's own bound on the kernel's unbounded ordinary-fault retry loop:
/// beyond it the access reports EBUSY instead of spinning forever.
const MAX_FAULT_PASSES: u32 = 64;

/// A found or created range: [start, end).
type Span = (u64, u64);

impl Sim {
    fn dev_has_vram(&self, dev: u32) -> bool {
        !self.tile_pagemap[dev as usize].is_empty()
    }

    /// `xe_vma_need_vram_for_atomic` (docs/kernel-model.md §3.2): Ok(true) when the fault must run
    /// `devmem_only` in local VRAM; EACCES for ATOMIC_CPU ranges.
    pub(super) fn need_vram(&self, dev: u32, attr: u32, access: Access) -> Result<bool> {
        if !self.dev_has_vram(dev) || access != Access::Atomic {
            return Ok(false);
        }
        match attr {
            DRM_XE_ATOMIC_DEVICE => Ok(!self.topo.devices[dev as usize].device_atomics_on_smem),
            DRM_XE_ATOMIC_CPU => Err(Errno::EACCES),
            _ => Ok(true),
        }
    }

    /// `xe_vma_resolve_pagemap` (docs/kernel-model.md §3.1) for a faulting tile.
    pub(super) fn resolve_pref(&self, dev: u32, tile: u16, pref: PrefTarget) -> Option<u16> {
        match pref {
            PrefTarget::DefaultDevice => self.pagemap_of(dev, tile),
            PrefTarget::System => None,
            PrefTarget::Pagemap(p) => Some(p),
        }
    }

    pub(super) fn owner_of_pagemap(&self, p: u16) -> u32 {
        self.owner[self.pagemaps[p as usize].device as usize]
    }

    /// Bandwidth of the path from a device's tile to where pages live:
    /// system memory over the device's host link, a peer's VRAM over
    /// their link. None: the device's own memory (its VRAM, either tile;
    /// system memory for an integrated GPU, which has no other).
    fn path_bandwidth(&self, dev: u32, loc: Option<u16>) -> Option<f64> {
        match loc {
            None if !self.dev_has_vram(dev) => None,
            None => Some(self.topo.devices[dev as usize].host_bandwidth),
            Some(p) => {
                let pd = self.pagemaps[p as usize].device;
                (pd != dev).then(|| self.topo.peer_bandwidth(dev, pd))
            }
        }
    }

    /// The lanes `bytes` between system memory and `dev` cross: its host
    /// link one way, and the host's memory.
    pub(super) fn host_lanes(&self, dev: u32, bytes: u64, link: Lane) -> [(Lane, f64); 2] {
        let b = bytes as f64 * 1e9;
        [(link, b / self.topo.devices[dev as usize].host_bandwidth), (Lane::HostMemory, b / self.topo.host_memory_bandwidth)]
    }

    /// The lanes `bytes` from `src`'s VRAM to `dst` cross: over PCIe P2P
    /// (or, with no link, the host links a copy between their VRAM would
    /// use) each one's host link; over a fabric link, or inside one
    /// device, none that others share.
    pub(super) fn peer_lanes(&self, src: u32, dst: u32, bytes: u64) -> Vec<(Lane, f64)> {
        if src == dst || self.topo.link(src, dst).is_some_and(|l| l.kind == LinkKind::Fabric) {
            return Vec::new();
        }
        let b = bytes as f64 * 1e9;
        let bw = |d: u32| self.topo.devices[d as usize].host_bandwidth;
        vec![(Lane::OutOf(src), b / bw(src)), (Lane::Into(dst), b / bw(dst))]
    }

    /// The slowest host link of the machine: the price of a copy whose
    /// device is unknown (never less than what any device would pay).
    fn slowest_host(&self) -> f64 {
        self.topo.devices.iter().map(|d| d.host_bandwidth).fold(f64::INFINITY, f64::min)
    }

    /// The MMU notifier: zaps every VM's bindings over [start, end) (one TLB
    /// invalidation per tile that lost one).
    pub(super) fn invalidate_all(&self, g: &mut Guard, start: u64, end: u64) {
        let (mut tiles, at) = (0, self.now_ns());
        for f in g.files.values_mut() {
            let mut flushed = 0;
            for vm in f.vms.values_mut() {
                flushed += vm.invalidate(start, end, true);
            }
            // The flush stalls the device it reaches (a launch running
            // there waits for its TLB), as well as the caller who waits
            // for it below.
            if flushed > 0 {
                self.stall_device(f.device, at, flushed as u64 * self.topo.costs.tlb_invalidation_ns);
            }
            tiles += flushed;
        }
        self.charge_tlb(tiles);
    }

    /// Charges the population of `pages` never-populated pages in system
    /// memory: the CPU's zero-fill at its first touch, or `hmm_range_fault`
    /// faulting them in for a GPU (docs/cost-model.md). Fault time.
    pub(super) fn charge_zero_fill(&self, pages: u64) {
        if pages > 0 {
            self.advance(self.topo.costs.zero_fill_ns(pages * PAGE), TimeCategory::Fault);
        }
    }

    /// Charges `tiles` GPU TLB invalidations to the counters and the clock.
    pub(super) fn charge_tlb(&self, tiles: u32) {
        if tiles > 0 {
            self.count(&self.counters.tlb_invalidations, tiles as u64);
            self.advance(tiles as u64 * self.topo.costs.tlb_invalidation_ns, TimeCategory::Tlb);
        }
    }

    // -- accesses -----------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub(super) fn gpu_access_locked(
        &self,
        g: &mut Guard,
        fd: RawFd,
        vm_id: u32,
        dev: u32,
        tile: u16,
        start: u64,
        end: u64,
        access: Access,
        value: u64,
        traffic: &mut super::launch::Traffic,
    ) -> Result<()> {
        let tile_bit = 1u8 << tile;
        let local = self.pagemap_of(dev, tile);
        let mut a = start;
        while a < end {
            let vm = g.files.get(&fd).ok_or(Errno::EBADF)?.vms.get(&vm_id).ok_or(Errno::ENOENT)?;
            // An access that will fault processes pending unmaps first
            // (__xe_svm_handle_pagefault: "Always process UNMAPs first"), and
            // then looks its VMA up again.
            if !vm.gc_pending.is_empty() && vm.range_at(a).is_none_or(|(_, r)| r.bound & tile_bit == 0) {
                self.collect_garbage(g, fd, vm_id);
            }
            let vm = g.files.get(&fd).ok_or(Errno::EBADF)?.vms.get(&vm_id).ok_or(Errno::ENOENT)?;
            let Some((_, vma)) = vm.vma_at(a) else {
                // No GPU mapping: the fault handler finds no VMA.
                self.count(&self.counters.gpu_faults, 1);
                self.count(&self.counters.gpu_fault_errors, 1);
                return Err(Errno::EINVAL);
            };
            if vma.kind == VmaKind::Null {
                a = end.min(vma.end);
                continue;
            }
            if vma.readonly && access != Access::Read {
                self.count(&self.counters.gpu_fault_errors, 1);
                return Err(Errno::EPERM);
            }
            let need = match self.need_vram(dev, vma.attrs.atomic, access) {
                Ok(n) => n,
                Err(e) => {
                    self.count(&self.counters.gpu_faults, 1);
                    self.count(&self.counters.gpu_fault_errors, 1);
                    return Err(e);
                }
            };
            let usable = |r: &SvmRange| r.bound & tile_bit != 0 && (!need || r.dpagemap == local);
            if !vm.range_at(a).is_some_and(|(_, r)| usable(r)) {
                if let Err(e) = self.gpu_fault(g, fd, vm_id, dev, tile, a, access) {
                    self.count(&self.counters.gpu_fault_errors, 1);
                    return Err(e);
                }
            }
            let vm = g.files.get(&fd).ok_or(Errno::EBADF)?.vms.get(&vm_id).ok_or(Errno::ENOENT)?;
            let Some((_, r)) = vm.range_at(a) else { return Err(Errno::EFAULT) };
            let seg_end = end.min(r.end);
            // One pass's bytes by path; the launch prices them (sim/launch.rs).
            let bytes = seg_end - a;
            match self.path_bandwidth(dev, r.dpagemap) {
                Some(bw) => {
                    traffic.remote_bytes += bytes;
                    traffic.remote_ns += bytes as f64 * 1e9 / bw;
                    // The lanes the bytes cross: reads flow toward the
                    // accessing device, writes away from it.
                    let read = access == Access::Read;
                    match r.dpagemap {
                        None => traffic.cross(&self.host_lanes(dev, bytes, if read { Lane::Into(dev) } else { Lane::OutOf(dev) })),
                        Some(p) => {
                            let pd = self.pagemaps[p as usize].device;
                            traffic.cross(&if read { self.peer_lanes(pd, dev, bytes) } else { self.peer_lanes(dev, pd, bytes) });
                        }
                    }
                }
                None => traffic.local_bytes += bytes,
            }
            if access != Access::Read {
                g.mem.write_span(a, seg_end, value);
            }
            a = seg_end;
        }
        Ok(())
    }

    /// `xe_svm_handle_pagefault` (docs/kernel-model.md §4, §15).
    #[allow(clippy::too_many_arguments)]
    fn gpu_fault(&self, g: &mut Guard, fd: RawFd, vm_id: u32, dev: u32, tile: u16, addr: u64, access: Access) -> Result<()> {
        self.count(&self.counters.gpu_faults, 1);
        let dur_ns = self.topo.costs.fault_service_ns;
        let at_ns = self.spend(dur_ns, TimeCategory::Fault);
        self.event(|| SimEvent::GpuFault { at_ns, dur_ns, device: dev });
        let attr = {
            let vm = &g.files[&fd].vms[&vm_id];
            vm.vma_at(addr).ok_or(Errno::EINVAL)?.1.attrs.atomic
        };
        let need = self.need_vram(dev, attr, access)?;
        let mut tries: u32 = if need { 3 } else { 1 };
        let mut timeslice = if need { self.topo.costs.atomic_timeslice_ns } else { 0 };
        let tile_bit = 1u8 << tile;
        for _ in 0..MAX_FAULT_PASSES {
            // RETRY: the garbage collector ran at munmap time (see unmap_span).
            let pref = {
                let vm = g.files.get(&fd).ok_or(Errno::EBADF)?.vms.get(&vm_id).ok_or(Errno::ENOENT)?;
                vm.vma_at(addr).ok_or(Errno::EINVAL)?.1.attrs.pref
            };
            let target = if need { self.pagemap_of(dev, tile) } else { self.resolve_pref(dev, tile, pref) };
            let (rs, re) = self.find_or_insert(g, fd, vm_id, dev, addr, true)?;
            let migratable = self.range_migratable(g, dev, rs);
            if need && !migratable {
                // docs/kernel-model.md §4 step 5: the 2026 trees ack this fault as handled without a
                // binding; the GPU would replay forever, so the access fails here.
                return Err(Errno::EACCES);
            }
            let r = g.files[&fd].vms[&vm_id].ranges[&rs].clone();
            if r.bound & tile_bit != 0 && (!need || r.dpagemap == target) {
                return Ok(());
            }
            let migrate_to = target.filter(|_| tries > 0 && r.dpagemap != target && migratable && self.size_rule(dev, re - rs));
            if let Some(t) = migrate_to {
                tries -= 1;
                let res = self.alloc_vram(g, rs, re, t, timeslice);
                timeslice = timeslice.saturating_mul(2);
                if let Err(e) = res {
                    if !need {
                        continue; // ordinary fault: retry without migration (fallback)
                    }
                    if tries == 0 {
                        return Err(e);
                    }
                    // devmem_only with tries left: get_pages fixes mixed mappings.
                }
            }
            let owner = target.map(|_| self.owner[dev as usize]);
            match self.get_pages(g, fd, vm_id, rs, re, owner, need) {
                Ok(()) => {}
                Err(e @ (Errno::EOPNOTSUPP | Errno::EFAULT | Errno::EPERM)) => {
                    if e == Errno::EOPNOTSUPP {
                        self.evict_range(g, rs, re);
                    }
                    timeslice = timeslice.saturating_mul(2);
                    if tries > 0 || !need {
                        continue;
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
            self.bind(g, fd, vm_id, rs, tile_bit);
            return Ok(());
        }
        Err(Errno::EBUSY)
    }

    /// Marks a range bound on tiles. Its allocation keeps the LRU place it
    /// got when `xe_drm_pagemap_populate_mm` created it
    /// (`___xe_bo_create_locked`: `ttm_bo_move_to_lru_tail_unlocked`).
    pub(super) fn bind(&self, g: &mut Guard, fd: RawFd, vm_id: u32, rs: u64, tiles: u8) {
        let Some(r) = g.files.get_mut(&fd).and_then(|f| f.vms.get_mut(&vm_id)).and_then(|vm| vm.ranges.get_mut(&rs)) else {
            return;
        };
        r.bound |= tiles;
    }

    /// NEED64K parts keep ranges below 64 KiB in system memory (docs/kernel-model.md §2).
    pub(super) fn size_rule(&self, dev: u32, size: u64) -> bool {
        !(self.topo.devices[dev as usize].need_64k && size < (64 << 10))
    }

    /// `migrate_devmem`: device memory possible and the CPU VMA anonymous (docs/kernel-model.md §2 step 4).
    pub(super) fn range_migratable(&self, g: &Guard, dev: u32, rs: u64) -> bool {
        self.dev_has_vram(dev) && g.mem.cpu_vma(rs).2 == CpuKind::Anonymous
    }

    /// `drm_gpusvm_range_find_or_insert` (docs/kernel-model.md §2).
    /// `check_pages`: the caller's ctx has a `check_pages_threshold` (the
    /// fault handler's; `vm_bind_ioctl_ops_create` sets none for PREFETCH).
    pub(super) fn find_or_insert(&self, g: &mut Guard, fd: RawFd, vm_id: u32, dev: u32, addr: u64, check_pages: bool) -> Result<Span> {
        let (cs, ce, kind) = g.mem.cpu_vma(addr);
        if kind == CpuKind::Unmapped {
            return Err(Errno::ENOENT);
        }
        let dgpu = self.dev_has_vram(dev);
        let vm = g.files.get(&fd).ok_or(Errno::EBADF)?.vms.get(&vm_id).ok_or(Errno::ENOENT)?;
        if let Some((s, r)) = vm.range_at(addr) {
            return Ok((s, r.end));
        }
        let (vs, vma) = vm.vma_at(addr).ok_or(Errno::EINVAL)?;
        let ve = vma.end;
        for size in CHUNK_SIZES {
            let s = addr & !(size - 1);
            let e = s + size;
            if s < cs || e > ce || s < vs || e > ve {
                continue;
            }
            if size > PAGE && vm.overlaps_range(s, e) {
                continue;
            }
            if check_pages && dgpu && size > PAGE && size <= CHECK_PAGES_THRESHOLD && g.mem.unbacked(s, e) > 0 {
                continue;
            }
            let vm = g.files.get_mut(&fd).unwrap().vms.get_mut(&vm_id).unwrap();
            vm.ranges.insert(s, SvmRange { end: e, bound: 0, dpagemap: None });
            return Ok((s, e));
        }
        Err(Errno::EINVAL)
    }

    // -- migration ----------------------------------------------------------

    /// `xe_svm_alloc_vram` (docs/kernel-model.md §5): scan, then populate under the migrate
    /// rwsem, with one evict-and-retry on EBUSY (7.0+). 6.18 populates once.
    pub(super) fn alloc_vram(&self, g: &mut Guard, rs: u64, re: u64, target: u16, timeslice: u64) -> Result<()> {
        if !self.topo.kernel.multi_device() {
            let r = self.populate_mm(g, rs, re, target, timeslice);
            if r.is_err() {
                self.count(&self.counters.migrate_errors, 1);
            }
            return r;
        }
        let pages = (re - rs) / PAGE;
        if g.mem.census(rs, re, Some(target)).in_target == pages {
            return Ok(()); // scan_mm: EQUAL
        }
        let read = MutexGuard::unlocked(g, || self.migrate_lock.read());
        let mut r = self.populate_mm(g, rs, re, target, timeslice);
        drop(read);
        if r == Err(Errno::EBUSY) {
            let write = MutexGuard::unlocked(g, || self.migrate_lock.write());
            self.count(&self.counters.migrate_retries, 1);
            self.evict_range(g, rs, re);
            r = self.populate_mm(g, rs, re, target, timeslice);
            drop(write);
        }
        if r.is_err() {
            self.count(&self.counters.migrate_errors, 1);
        }
        r
    }

    /// `drm_pagemap_populate_mm` + `drm_pagemap_migrate_to_devmem` (docs/kernel-model.md §5.1, §5.3).
    fn populate_mm(&self, g: &mut Guard, rs: u64, re: u64, target: u16, timeslice: u64) -> Result<()> {
        let tdev = self.pagemaps[target as usize].device;
        if let Some(e) = g.gone[tdev as usize] {
            return Err(if e == Errno::ECANCELED { e } else { Errno::ENODEV });
        }
        if let Some(e) = self.injected(g, Point::Migrate, tdev, 0) {
            return Err(e);
        }
        let (cs, ce, kind) = g.mem.cpu_vma(rs);
        match kind {
            CpuKind::Unmapped => return Err(Errno::ENOENT),
            _ if rs < cs || re > ce => return Err(Errno::EINVAL),
            CpuKind::File => return Err(Errno::EBUSY),
            CpuKind::Anonymous => {}
        }
        let bytes = re - rs;
        if let Some(e) = self.injected(g, Point::VramAlloc, tdev, 0) {
            return Err(e);
        }
        let id = match g.mem.create_alloc(target, rs, bytes) {
            Some(id) => id,
            None => {
                // Exclusive eviction retry (docs/kernel-model.md §9): push LRU allocations out until it fits.
                while g.mem.free_bytes(target) < bytes {
                    let Some(victim) = g.mem.lru_victim(target, rs, re) else { break };
                    self.evict_alloc(g, victim, true);
                }
                g.mem.create_alloc(target, rs, bytes).ok_or(Errno::ENOMEM)?
            }
        };
        // xe_svm_alloc_vram creates the BO (ttm_bo_type_device, no
        // SKIP_CLEAR), and xe_bo_move clears all of new VRAM of such a BO
        // (needs_clear, move_lacks_source: xe_migrate_clear) before any
        // page is copied in: every allocation pays a clear of its bytes,
        // whether the migration then succeeds or not (docs/cost-model.md).
        let c = &self.topo.costs;
        let clear_ns = c.clear_ns(bytes, self.topo.devices[tdev as usize].clear_bandwidth());
        let (at_ns, dur_ns) = self.copy(tdev, (rs, re), clear_ns, TimeCategory::Migration, &[]);
        self.event(|| SimEvent::Clear { at_ns, dur_ns, bytes, device: tdev });
        self.count(&self.counters.vram_clears, 1);
        self.count(&self.counters.bytes_cleared, bytes);
        // migrate_vma_setup: collect what this owner may move.
        let d2d = self.topo.kernel.multi_device();
        let towner = self.owner_of_pagemap(target);
        // The page list reuses one buffer: no allocation per migration.
        let mut collected = std::mem::take(&mut g.scratch);
        collected.clear();
        let mut in_target = 0;
        g.mem.each_run(rs, re, |a, e, loc, locked| {
            let take = match loc {
                _ if locked => false,
                Loc::Unpopulated | Loc::System => true,
                Loc::Vram(p) if p == target => {
                    in_target += ((e - a) / PAGE) as usize;
                    true
                }
                Loc::Vram(p) => d2d && self.owner_of_pagemap(p) == towner,
            };
            if take {
                collected.extend((a..e).step_by(PAGE as usize));
            }
        });
        let r = self.migrate_collected(g, id, rs, re, target, timeslice, &collected, in_target);
        g.scratch = collected;
        r
    }

    /// The rest of populate_mm once the pages are collected: migrate_vma's
    /// checks, the copy with the pages locked, and the finalize.
    #[allow(clippy::too_many_arguments)]
    fn migrate_collected(&self, g: &mut Guard, id: u32, rs: u64, re: u64, target: u16, timeslice: u64, collected: &[u64], in_target: usize) -> Result<()> {
        let (bytes, d2d) = (re - rs, self.topo.kernel.multi_device());
        let pages = (bytes / PAGE) as usize;
        let fail = |g: &mut Guard, e: Errno| {
            g.mem.drop_empty_alloc(id);
            Err(e)
        };
        if collected.is_empty() {
            return fail(g, if d2d { Errno::EBUSY } else { Errno::EFAULT });
        }
        if collected.len() < pages {
            return fail(g, Errno::EBUSY);
        }
        if in_target == pages {
            g.mem.drop_empty_alloc(id);
            return Ok(()); // "migration wasn't necessary"
        }
        if in_target > 0 {
            return fail(g, Errno::EBUSY); // fragmentation
        }
        // The copy runs with the pages locked and the driver lock dropped, so
        // racing migrations and CPU faults see them busy (docs/kernel-model.md §13).
        g.mem.lock_pages(collected, true);
        MutexGuard::bump(g);
        // Finalize: pages a munmap discarded meanwhile are no longer locked.
        let m = g.mem.move_into(collected, id, true);
        let (from_sys, from_peer, moved) = (m.from_system, m.from_device, m.pages as usize);
        let c = &self.topo.costs;
        let tdev = self.pagemaps[target as usize].device;
        let to = Some(tdev);
        // First touch (docs/cost-model.md): migrate_vma_setup collected
        // never-populated pages as holes with no source page, drm_pagemap
        // copies nothing for them: the allocation's clear (populate_mm) is
        // all they cost. No PCIe copy, no bytes moved.
        if from_sys > 0 {
            let copy_ns = c.copy_ns(from_sys, self.topo.devices[tdev as usize].host_bandwidth);
            let (at_ns, dur_ns) = self.copy(tdev, (rs, re), copy_ns, TimeCategory::Migration, &self.host_lanes(tdev, from_sys, Lane::Into(tdev)));
            self.event(|| SimEvent::Migration { at_ns, dur_ns, bytes: from_sys, from: None, to });
            self.count(&self.counters.migrations_to_vram, 1);
            self.count(&self.counters.bytes_to_vram, from_sys);
        }
        if from_sys > 0 || m.from_unpopulated > 0 {
            // The kernel's per-size stats count every range populate_mm placed
            // from system memory or holes, copied or cleared.
            let by_size = match bytes {
                b if b >= 2 << 20 => &self.counters.migrations_2m,
                b if b >= 64 << 10 => &self.counters.migrations_64k,
                _ => &self.counters.migrations_4k,
            };
            self.count(by_size, 1);
        }
        for (p, b) in from_peer {
            let src = self.pagemaps[p as usize].device;
            let bw = self.topo.peer_bandwidth(src, tdev);
            let (at_ns, dur_ns) = self.copy(tdev, (rs, re), c.copy_ns(b, bw), TimeCategory::Migration, &self.peer_lanes(src, tdev, b));
            self.event(|| SimEvent::Migration { at_ns, dur_ns, bytes: b, from: Some(src), to });
            self.count(&self.counters.migrations_device_to_device, 1);
            self.count(&self.counters.bytes_device_to_device, b);
        }
        g.mem.finish_alloc(id, self.now_ns() + timeslice);
        self.invalidate_all(g, rs, re);
        if moved < collected.len() {
            return Err(Errno::EBUSY); // raced while finalizing
        }
        Ok(())
    }

    /// Moves every live page of an allocation to system memory
    /// (`drm_pagemap_evict_to_ram`; `pressure`: a TTM eviction).
    pub(super) fn evict_alloc(&self, g: &mut Guard, id: u32, pressure: bool) {
        let pages = g.mem.alloc_pages(id);
        if pages.is_empty() {
            return;
        }
        let device = self.pagemaps[g.mem.alloc(id).pagemap as usize].device;
        self.pages_to_system(g, &pages);
        if pressure {
            let (at_ns, bytes) = (self.now_ns(), pages.len() as u64 * PAGE);
            self.event(|| SimEvent::Eviction { at_ns, bytes, device });
            self.count(&self.counters.evictions, 1);
            self.count(&self.counters.evicted_bytes, pages.len() as u64 * PAGE);
        }
    }

    /// Copies device pages to system memory and zaps mappings over them.
    fn pages_to_system(&self, g: &mut Guard, pages: &[u64]) {
        if pages.is_empty() {
            return;
        }
        // The device whose copy engine runs it: the one whose VRAM holds
        // the pages (a list never spans two allocations).
        let from = pages.iter().find_map(|&a| match g.mem.loc(a) {
            Loc::Vram(p) => Some(self.pagemaps[p as usize].device),
            _ => None,
        });
        let bytes = g.mem.move_to_system(pages) * PAGE;
        if bytes == 0 {
            return;
        }
        let (lo, hi) = (pages[0], *pages.last().unwrap() + PAGE);
        let c = &self.topo.costs;
        let bw = from.map_or_else(|| self.slowest_host(), |d| self.topo.devices[d as usize].host_bandwidth);
        let (at_ns, dur_ns) = match from {
            Some(d) => self.copy(d, (lo, hi), c.copy_ns(bytes, bw), TimeCategory::Migration, &self.host_lanes(d, bytes, Lane::OutOf(d))),
            None => {
                let ns = c.copy_ns(bytes, bw);
                (self.spend(ns, TimeCategory::Migration), ns)
            }
        };
        self.event(|| SimEvent::Migration { at_ns, dur_ns, bytes, from, to: None });
        self.count(&self.counters.migrations_to_system, 1);
        self.count(&self.counters.bytes_to_system, bytes);
        self.invalidate_all(g, lo, hi);
    }

    /// `drm_gpusvm_range_evict` (docs/kernel-model.md §5.5): every device page of the span back to
    /// RAM through migrate_to_ram, waiting out timeslices (up to 1 s).
    pub(super) fn evict_range(&self, g: &mut Guard, rs: u64, re: u64) {
        let mut from = rs;
        while let Some((a, _)) = g.mem.find_page(from, re, |l, locked| locked || matches!(l, Loc::Vram(_))) {
            if self.wait_unlocked(g, a).is_err() {
                from = a + PAGE;
                continue;
            }
            let Loc::Vram(p) = g.mem.loc(a) else { continue };
            let Some(id) = g.mem.alloc_at(p, a) else {
                from = a + PAGE;
                continue;
            };
            let expiry = g.mem.alloc(id).timeslice_expiry;
            let now = self.now_ns(); // read once: another thread may move the shared clock
            if expiry > now && expiry - now <= 1_000_000_000 {
                self.advance_to(expiry, TimeCategory::Migration);
            }
            let pages: Vec<u64> = g.mem.alloc_pages(id).into_iter().filter(|&x| x >= rs && x < re).collect();
            self.pages_to_system(g, &pages);
            from = a;
        }
    }

    /// A CPU fault on a device page (`migrate_to_ram`, docs/kernel-model.md §5.5, §12): waits for
    /// the timeslice, then moves the whole allocation back to RAM.
    pub(super) fn cpu_fault(&self, g: &mut Guard, p: u16, addr: u64) {
        self.count(&self.counters.cpu_faults, 1);
        let at_ns = self.spend(self.topo.costs.cpu_fault_ns, TimeCategory::Fault);
        self.event(|| SimEvent::CpuFault { at_ns });
        match g.mem.alloc_at(p, addr) {
            Some(id) => {
                let expiry = g.mem.alloc(id).timeslice_expiry;
                if expiry > self.now_ns() {
                    self.count(&self.counters.timeslice_waits, 1);
                    self.advance_to(expiry, TimeCategory::Fault);
                }
                self.evict_alloc(g, id, false);
            }
            None => self.pages_to_system(g, &[addr]),
        }
    }

    /// `drm_gpusvm_get_pages` (docs/kernel-model.md §6): fault pages in for `owner` and require one
    /// uniform placement; records where the pages were found.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn get_pages(&self, g: &mut Guard, fd: RawFd, vm_id: u32, rs: u64, re: u64, owner: Option<u32>, devmem_only: bool) -> Result<()> {
        let (_, ce, kind) = g.mem.cpu_vma(rs);
        if kind == CpuKind::Unmapped || ce < re {
            return Err(Errno::EFAULT);
        }
        // hmm_range_fault: wait for pages a migration holds, fault foreign
        // device pages back through migrate_to_ram, populate the rest.
        let mut born = 0;
        let u = loop {
            if g.files.get(&fd).and_then(|f| f.vms.get(&vm_id)).and_then(|vm| vm.ranges.get(&rs)).is_none() {
                self.charge_zero_fill(born);
                return Err(Errno::EFAULT); // range unmapped meanwhile
            }
            let usable = |p: u16| owner == Some(self.owner_of_pagemap(p));
            match g.mem.prepare_pages(rs, re, usable, &mut born) {
                Ok(u) => break u,
                Err(a) if g.mem.is_locked(a) => {
                    if let Err(e) = self.wait_unlocked(g, a) {
                        self.charge_zero_fill(born);
                        return Err(e);
                    }
                }
                Err(a) => match g.mem.loc(a) {
                    Loc::Vram(p) => self.cpu_fault(g, p, a),
                    _ => unreachable!("prepare_pages stops at locked or unusable device pages"),
                },
            }
        };
        self.charge_zero_fill(born);
        if devmem_only && u.system {
            return Err(Errno::EFAULT);
        }
        if (u.system && u.device.is_some()) || u.several_devices {
            return Err(Errno::EOPNOTSUPP);
        }
        let seen_dev = u.device;
        let r = g.files.get_mut(&fd).unwrap().vms.get_mut(&vm_id).unwrap().ranges.get_mut(&rs).unwrap();
        r.dpagemap = seen_dev.map(|(p, _)| p);
        Ok(())
    }

    // -- munmap -------------------------------------------------------------

    /// Discards pages of [start, end) and destroys the SVM ranges over them
    /// in every VM (the MMU notifier and the garbage collector). The madvise
    /// reset is queued per range that existed, over the whole range, and
    /// runs at that VM's next bind or madvise (docs/kernel-model.md §8): memory the
    /// GPU never touched keeps its attributes.
    pub(super) fn unmap_span(&self, g: &mut Guard, start: u64, end: u64) {
        // Ranges first (the notifier + GC), so no binding outlives the pages.
        self.invalidate_all(g, start, end);
        for f in g.files.values_mut() {
            for vm in f.vms.values_mut() {
                for rs in vm.ranges_in(start, end) {
                    let r = vm.ranges.remove(&rs).unwrap();
                    vm.gc_pending.push((rs, r.end));
                }
            }
        }
        g.mem.discard_span(start, end);
    }

    /// Runs a VM's pending garbage collection, as the kernel does at the
    /// start of every bind and madvise. The madvise reset follows the
    /// mirror's MADVISE_AUTORESET flag from 6.18-rc3 on
    /// (`xe_svm_garbage_collector` checks XE_VMA_MADV_AUTORESET); 6.18-rc1
    /// and -rc2 reset every mirror VMA (docs/kernel-model.md §8).
    pub(super) fn collect_garbage(&self, g: &mut Guard, fd: RawFd, vm_id: u32) {
        let unconditional = !self.topo.kernel.autoreset_flag();
        if let Some(vm) = g.files.get_mut(&fd).and_then(|f| f.vms.get_mut(&vm_id)) {
            vm.collect_garbage(unconditional, self.topo.kernel.multi_device());
        }
    }

    /// Evicts and destroys ranges (VMA splits and removals, docs/kernel-model.md §8).
    pub(super) fn destroy_ranges(&self, g: &mut Guard, fd: RawFd, vm_id: u32, ranges: &[u64], evict: bool) {
        for &rs in ranges {
            let Some(r) = g.files.get_mut(&fd).unwrap().vms.get_mut(&vm_id).unwrap().ranges.remove(&rs) else { continue };
            // Unbinding a range that still has GPU PTEs invalidates the TLB
            // of each tile it was bound on (xe_svm_range_notifier_event_begin
            // -> xe_vm_range_tilemask_tlb_inval), as every other unbind does.
            self.charge_tlb(r.bound.count_ones());
            if evict {
                self.evict_range(g, rs, r.end);
            }
        }
    }
}
