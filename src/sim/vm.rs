//! The kernel objects of one VM: GPU VMAs with their madvise attributes, and
//! the SVM ranges faulted or prefetched inside CPU-address-mirror VMAs
//! (docs/kernel-model.md §1, §2; docs/xe-uapi.md §6.4, §6.7).

use std::collections::BTreeMap;

use super::mem::PAGE;
use crate::uapi::*;

/// Where madvise's preferred location points (docs/kernel-model.md §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefTarget {
    /// DEFAULT_DEVICE: VRAM of the faulting tile (system on an iGPU).
    DefaultDevice,
    /// DEFAULT_SYSTEM, or (6.18) any positive fd.
    System,
    /// A device pagemap named by fd + region_instance (7.0+).
    Pagemap(u16),
}

/// madvise attributes of a VMA, as stored (docs/xe-uapi.md §6.7 "Effect").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attrs {
    /// `devmem_fd` as madvise gave it.
    pub devmem_fd: u32,
    /// `migration_policy` (stored, ignored).
    pub migration_policy: u16,
    /// `region_instance` (7.0+).
    pub region_instance: u16,
    /// The preferred location it resolves to.
    pub pref: PrefTarget,
    /// Atomic mode.
    pub atomic: u32,
    /// PAT index.
    pub pat: u16,
}

impl Attrs {
    /// Defaults after a MAP: DEFAULT_DEVICE + ALL_PAGES, atomic UNDEFINED, the bind's PAT.
    pub fn defaults(pat: u16) -> Self {
        Attrs {
            devmem_fd: DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE,
            migration_policy: DRM_XE_MIGRATE_ALL_PAGES,
            region_instance: 0,
            pref: PrefTarget::DefaultDevice,
            atomic: DRM_XE_ATOMIC_UNDEFINED,
            pat,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// What backs a VMA.
pub enum VmaKind {
    /// CPU_ADDR_MIRROR: populated by faults and prefetch.
    Mirror,
    /// NULL binding: reads zero, writes dropped, never faults.
    Null,
}

#[derive(Clone, Debug)]
/// A GPU VMA of a simulated VM.
pub struct Vma {
    /// One past its last address.
    pub end: u64,
    /// What backs it.
    pub kind: VmaKind,
    /// Read-only binding.
    pub readonly: bool,
    /// Bound with MADVISE_AUTORESET.
    pub autoreset: bool,
    /// The bind's PAT index.
    pub bind_pat: u16,
    /// Its madvise attributes.
    pub attrs: Attrs,
}

/// An SVM range (GPU-side chunk). Never split; destroyed and re-faulted.
#[derive(Clone, Debug)]
pub struct SvmRange {
    /// One past its last address.
    pub end: u64,
    /// Tiles with a valid (not invalidated) binding.
    pub bound: u8,
    /// The pagemap the pages were found in by the last get_pages (None: system).
    pub dpagemap: Option<u16>,
}

/// A simulated VM: its VMAs and SVM ranges.
pub struct Vm {
    /// `DRM_XE_VM_CREATE_FLAG_*`.
    pub flags: u32,
    /// VMAs by start.
    pub vmas: BTreeMap<u64, Vma>,
    /// SVM ranges by start.
    pub ranges: BTreeMap<u64, SvmRange>,
    /// Size of the VA space, 2^VA_BITS.
    pub va_size: u64,
    /// SVM ranges the garbage collector still has to reset (munmap'ed after
    /// the GPU created them): [start, end), flushed at the next bind or
    /// madvise on this VM, not by a query (docs/kernel-model.md §8).
    pub gc_pending: Vec<(u64, u64)>,
}

impl Vm {
    /// A VM with these flags over [0, va_size).
    pub fn new(flags: u32, va_size: u64) -> Self {
        Vm { flags, vmas: BTreeMap::new(), ranges: BTreeMap::new(), va_size, gc_pending: Vec::new() }
    }

    /// The garbage collector's madvise reset (`xe_svm_range_set_default_attr`),
    /// per pending SVM range, on the mirror VMA holding its start where it
    /// was bound with MADVISE_AUTORESET (or on every mirror VMA where the
    /// kernel resets unconditionally, 6.18-rc1 and -rc2): a VMA that is
    /// exactly the range is reset in place; a larger one has the range split
    /// off with the defaults (`xe_vm_alloc_cpu_addr_mirror_vma`); one with
    /// the defaults already is left alone on 6.18. From 7.0 (`merges`,
    /// "drm/xe: Merge adjacent default-attribute VMAs during garbage
    /// collection", 4a938d3886d6) a VMA with the defaults is taken whole
    /// (`start = xe_vma_start(vma); end = xe_vma_end(vma)`), whatever part
    /// the range was, and that span or the reset one is widened over the
    /// default mirror VMAs beside it (`xe_vm_find_cpu_addr_mirror_vma_range`)
    /// and mapped as one VMA.
    pub fn collect_garbage(&mut self, unconditional: bool, merges: bool) {
        for (s, e) in std::mem::take(&mut self.gc_pending) {
            let Some((vs, v)) = self.vma_at(s) else { continue };
            if v.kind != VmaKind::Mirror || !(v.autoreset || unconditional) {
                continue;
            }
            let ve = v.end;
            if v.attrs == Attrs::defaults(v.bind_pat) {
                if merges {
                    self.merge_default_mirrors(vs, ve);
                }
                continue;
            }
            self.split_at(s);
            self.split_at(e.min(ve));
            if let Some(v) = self.vmas.get_mut(&s) {
                v.attrs = Attrs::defaults(v.bind_pat);
            }
            if merges {
                self.merge_default_mirrors(s, e.min(ve));
            }
        }
    }

    /// Whether it was created with FAULT_MODE.
    pub fn fault_mode(&self) -> bool {
        self.flags & DRM_XE_VM_CREATE_FLAG_FAULT_MODE != 0
    }

    /// The VMA at `addr`.
    pub fn vma_at(&self, addr: u64) -> Option<(u64, &Vma)> {
        let (&s, v) = self.vmas.range(..=addr).next_back()?;
        (addr < v.end).then_some((s, v))
    }

    /// The SVM range at `addr`.
    pub fn range_at(&self, addr: u64) -> Option<(u64, &SvmRange)> {
        let (&s, r) = self.ranges.range(..=addr).next_back()?;
        (addr < r.end).then_some((s, r))
    }

    /// Ranges overlapping [start, end).
    pub fn ranges_in(&self, start: u64, end: u64) -> Vec<u64> {
        let first = self.range_at(start).map_or(start, |(s, _)| s);
        self.ranges.range(first..end).filter(|(_, r)| r.end > start).map(|(&s, _)| s).collect()
    }

    /// Whether any SVM range overlaps [start, end).
    pub fn overlaps_range(&self, start: u64, end: u64) -> bool {
        let first = self.range_at(start).map_or(start, |(s, _)| s);
        self.ranges.range(first..end).any(|(_, r)| r.end > start)
    }

    /// VMAs overlapping [start, end), as start addresses.
    pub fn vmas_in(&self, start: u64, end: u64) -> Vec<u64> {
        let first = self.vma_at(start).map_or(start, |(s, _)| s);
        self.vmas.range(first..end).filter(|(_, v)| v.end > start).map(|(&s, _)| s).collect()
    }

    /// The VMAs `drm_gpuvm_for_each_va_range(start, end)` visits, with the
    /// kernel's wrapping u64s: from the lowest VMA overlapping [start,
    /// end - 1] (`drm_gpuva_find_first`), in order while one starts below
    /// end. Where end does not lie above start (a zero or wrapping range)
    /// that is at most the VMA holding start, if it starts below end.
    pub fn vmas_walked(&self, start: u64, end: u64) -> Vec<u64> {
        if end > start {
            return self.vmas_in(start, end);
        }
        self.vma_at(start).map(|(s, _)| s).filter(|&s| s < end).into_iter().collect()
    }

    /// Splits the VMA containing `addr` so that a VMA starts at `addr`.
    /// Returns the ranges that straddled the cut, which the caller must evict
    /// and destroy (docs/kernel-model.md §8, "VMA splits").
    pub fn split_at(&mut self, addr: u64) -> Vec<u64> {
        let Some((s, v)) = self.vma_at(addr).map(|(s, v)| (s, v.clone())) else { return Vec::new() };
        if s == addr {
            return Vec::new();
        }
        self.vmas.get_mut(&s).unwrap().end = addr;
        self.vmas.insert(addr, v);
        self.ranges_in(addr - 1, addr + 1).into_iter().filter(|&rs| rs < addr && self.ranges[&rs].end > addr).collect()
    }

    /// Zaps the bindings of ranges overlapping [start, end); returns how many
    /// tiles lost a binding (each costs a TLB invalidation). With
    /// `unmap_pages` (the MMU notifier: pages moved or went away) the pages'
    /// DMA mappings go too, and with them what get_pages recorded; a madvise
    /// only zaps PTEs.
    pub fn invalidate(&mut self, start: u64, end: u64, unmap_pages: bool) -> u32 {
        let mut tiles = 0;
        self.zap(start, end, unmap_pages, |bound| tiles += bound.count_ones());
        tiles
    }

    /// [`Vm::invalidate`] for one TLB invalidation over the whole span per
    /// tile: the tiles (bit = tile) any zapped range was bound on.
    pub fn invalidate_span(&mut self, start: u64, end: u64) -> u8 {
        let mut mask = 0;
        self.zap(start, end, false, |bound| mask |= bound);
        mask
    }

    fn zap(&mut self, start: u64, end: u64, unmap_pages: bool, mut bound: impl FnMut(u8)) {
        let first = self.range_at(start).map_or(start, |(s, _)| s);
        for r in self.ranges.range_mut(first..end).map(|(_, r)| r).filter(|r| r.end > start) {
            bound(r.bound);
            r.bound = 0;
            if unmap_pages {
                r.dpagemap = None;
            }
        }
    }

    /// `xe_vm_find_cpu_addr_mirror_vma_range` (7.0): [start, end) widened
    /// over the mirror VMA holding the page before it and the one after
    /// it, where they have the default attributes. No further: a default
    /// VMA beyond them stays a VMA of its own. The one after is the first
    /// over [end + 1, end + 4K] (`xe_vm_find_vma_by_addr(vm, *end + 1)`):
    /// the VMA holding end or, past a one-page hole, the VMA starting a page
    /// after it, whose widening covers the hole.
    pub fn widen_over_default_mirrors(&self, start: u64, end: u64) -> (u64, u64) {
        let default_mirror = |v: &Vma| v.kind == VmaKind::Mirror && v.attrs == Attrs::defaults(v.bind_pat);
        let s = start.checked_sub(PAGE).and_then(|a| self.vma_at(a)).filter(|(_, v)| default_mirror(v)).map_or(start, |(s, _)| s);
        let next = self.vma_at(end).or_else(|| self.vmas.get_key_value(&(end + PAGE)).map(|(&s, v)| (s, v)));
        let e = next.filter(|(_, v)| default_mirror(v)).map_or(end, |(_, v)| v.end);
        (s, e)
    }

    /// The mirror VMA at `start` merged with its default neighbours
    /// (`widen_over_default_mirrors`) into one VMA with its flags; the SVM
    /// ranges inside keep their pages and mappings, as a 7.0 mirror MAP
    /// over them leaves them.
    pub fn merge_default_mirrors(&mut self, start: u64, end: u64) {
        let (s, e) = self.widen_over_default_mirrors(start, end);
        let Some((_, v)) = self.vma_at(start) else { return };
        let merged = Vma { end: e, ..v.clone() };
        for k in self.vmas_in(s, e) {
            self.vmas.remove(&k);
        }
        self.vmas.insert(s, merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(end: u64) -> Vma {
        Vma { end, kind: VmaKind::Mirror, readonly: false, autoreset: false, bind_pat: 0, attrs: Attrs::defaults(0) }
    }

    #[test]
    fn split_reports_straddling_ranges_and_merge_undoes_it() {
        let mut vm = Vm::new(0, 1 << 48);
        vm.vmas.insert(0, mirror(1 << 30));
        vm.ranges.insert(0x20_0000, SvmRange { end: 0x40_0000, bound: 1, dpagemap: None });
        vm.ranges.insert(0x40_0000, SvmRange { end: 0x41_0000, bound: 1, dpagemap: None });
        assert_eq!(vm.split_at(0x30_0000), vec![0x20_0000]);
        assert_eq!(vm.split_at(0x40_0000), Vec::<u64>::new());
        assert_eq!(vm.vmas.len(), 3);
        assert_eq!(vm.vma_at(0x30_0000).unwrap().0, 0x30_0000);
        assert_eq!(vm.invalidate(0, 1 << 30, true), 2);
        vm.merge_default_mirrors(0x30_0000, 0x40_0000);
        assert_eq!(vm.vmas.len(), 1);
        assert_eq!(vm.vmas[&0].end, 1 << 30);
    }

    /// `xe_svm_range_set_default_attr`: a VMA that is exactly the range is
    /// reset in place and a range inside a larger VMA split off, on every
    /// kernel; from 7.0 the reset span, or a VMA with the defaults already,
    /// merges with its default neighbours.
    #[test]
    fn the_garbage_collectors_reset_merges_with_default_neighbours_from_7_0() {
        const M: u64 = 1 << 20;
        // [0, 2M) default, [2M, 6M) advised (atomic), [6M, 1G) default; the
        // mirror bound with MADVISE_AUTORESET.
        let m = |end| Vma { autoreset: true, ..mirror(end) };
        let advised = |vm: &mut Vm| {
            vm.vmas.clear();
            vm.vmas.insert(0, m(2 * M));
            vm.vmas.insert(2 * M, Vma { attrs: Attrs { atomic: 1, ..Attrs::defaults(0) }, ..m(6 * M) });
            vm.vmas.insert(6 * M, m(1 << 30));
        };
        let starts = |vm: &Vm| vm.vmas.keys().copied().collect::<Vec<_>>();
        let mut vm = Vm::new(0, 1 << 48);
        for merges in [false, true] {
            // The whole VMA: reset in place, and from 7.0 merged with its
            // default neighbours.
            advised(&mut vm);
            vm.gc_pending.push((2 * M, 6 * M));
            vm.collect_garbage(false, merges);
            let want = if merges { vec![0] } else { vec![0, 2 * M, 6 * M] };
            assert_eq!(starts(&vm), want, "merges {merges}");
            assert_eq!(vm.vma_at(2 * M).unwrap().1.attrs, Attrs::defaults(0));
            // Its first 2 MiB: split off; from 7.0 merged with the default
            // VMA before it, which the split-off part touches.
            advised(&mut vm);
            vm.gc_pending.push((2 * M, 4 * M));
            vm.collect_garbage(false, merges);
            let want = if merges { vec![0, 4 * M, 6 * M] } else { vec![0, 2 * M, 4 * M, 6 * M] };
            assert_eq!(starts(&vm), want, "merges {merges}");
            assert_eq!(vm.vma_at(2 * M).unwrap().1.attrs, Attrs::defaults(0));
            assert_eq!(vm.vma_at(4 * M).unwrap().1.attrs.atomic, 1, "the rest keeps its advice");
            // A default VMA only partly covered by the range: taken whole
            // and merged from 7.0.
            advised(&mut vm);
            vm.vmas.get_mut(&(2 * M)).unwrap().attrs = Attrs::defaults(0);
            vm.gc_pending.push((2 * M, 4 * M));
            vm.collect_garbage(false, merges);
            let want = if merges { vec![0] } else { vec![0, 2 * M, 6 * M] };
            assert_eq!(starts(&vm), want, "merges {merges}");
            // A default VMA bound without the flag is left alone (6.18-rc3 on).
            vm.vmas.clear();
            vm.vmas.insert(0, mirror(2 * M));
            vm.vmas.insert(2 * M, mirror(4 * M));
            vm.vmas.insert(4 * M, mirror(1 << 30));
            vm.gc_pending.push((2 * M, 4 * M));
            vm.collect_garbage(false, merges);
            assert_eq!(starts(&vm), vec![0, 2 * M, 4 * M], "merges {merges}");
        }
    }
}
