//! Steps 3 and 4 of the placement flow (docs/design.md): the PREFETCH with
//! its user fence (none where the page table shows the span there already,
//! and none for a multi-tile re-move, rule 6, left to the launch's fault),
//! the answer to each errno (EBUSY: evict and retry once; ENOMEM/ENOSPC:
//! make room and retry once; ENOLINK: the link is marked absent), and the
//! page table's check that the range really is there.

use std::sync::atomic::Ordering;

use super::errors::Answer;
use super::place::Attempt;
use super::*;
use crate::log::Span;

/// What steps 3 and 4 did: whether data moved (or will, at the launch's
/// fault), and whether a prefetch bound the span for the accessing device.
pub(super) struct Migrated {
    pub(super) moved: bool,
    pub(super) bound: bool,
}

impl Context {
    /// Steps 3 and 4: PREFETCH with user fence, each errno's answer, and the
    /// check that the range really is there. Returns whether data moved, and
    /// whether a prefetch bound it for the accessing device.
    pub(super) fn migrate_verified(&self, a: &Attempt, cand: Pagemap, placed: &mut Placed) -> std::result::Result<Migrated, Miss> {
        let Attempt { slots, dev, start, end, ref summary, ref seen, flags, explicit } = *a;
        let seen = seen.as_ref();
        let size = end - start;
        let (region, via, peer) = match cand {
            Pagemap::System => (0, dev.clone(), None),
            Pagemap::Vram { device, tile } => {
                let owner = Context::check_pagemap(slots, cand)?.expect("VRAM pagemap").clone();
                owner.check_alive().map_err(Miss::Fatal)?;
                let inst = owner.tiles[tile as usize].unwrap().instance;
                if device == dev.slot {
                    (inst as u32, dev.clone(), None)
                } else {
                    // A peer: prefetch from the accessing VM, consulting the
                    // preferred location just set (IGT xe_multigpu_svm).
                    (DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC, dev.clone(), Some(owner))
                }
            }
        };
        // A move into a peer's VRAM that failed or did not happen: the
        // accessing VM's ioctls say nothing of the peer (a failed migration
        // inside a prefetch is skipped, docs/kernel-model.md §7), so the
        // peer is asked whether it is gone; a target on a lost device never
        // falls back (include/xesvm.h).
        let miss = |e: Errno| match peer.as_deref().and_then(|p| self.device_lost(p)) {
            Some(gone) => Miss::Fatal(gone),
            None => Miss::Fallback(e),
        };
        let (mut busy_retried, mut room_retried) = (false, false);
        // The page table shows it already there (system memory, or the
        // pagemap the record believes or a privileged reader names): no
        // prefetch to issue.
        // (For system memory the page table alone answers; look now if step
        // 1 did not: one read is cheaper than a prefetch that can fail.)
        // A piece of a 2 MiB chunk whose other part this library placed in
        // `cand`: the kernel migrates whole SVM ranges (up to the 2 MiB
        // chunk, docs/kernel-model.md §2), so the piece may have come along.
        // One page-table read (under 1 us) against a prefetch that would
        // move nothing. Not where its records put it in another VRAM
        // (`chunk_mate_in`, and the summary as observed): a wrong guess
        // leaves the launch to fault it over in small ranges, where a
        // prefetch of a piece already there moves nothing.
        let away = summary.residency.is_some_and(|p| p != cand && p != Pagemap::System);
        let mate = !explicit && cand != Pagemap::System && seen.is_none() && !away && self.chunk_mate_in(start, end, cand);
        // Where no device has VRAM, every page is in system memory: no read
        // could change what follows (a prefetch binds either way).
        let readable = self.any_vram();
        let looked = match (seen, cand) {
            (None, Pagemap::System) if readable => self.observe(start, end),
            (None, _) if mate => self.observe(start, end),
            (s, _) => s.copied(),
        };
        let here = |s: &Seen| self.agrees(slots, s, cand) && (cand == Pagemap::System || self.reads_name_vram() || summary.residency == Some(cand) || mate);
        // An explicit request skips its prefetch only where every page is
        // there, not a sample of them: it says so (SVM_RESULT_VERIFIED);
        // and it moves all of its span or fails: a hole in it (never
        // populated pages where nothing maps them) is EFAULT, as a span
        // nothing maps is after the prefetch below.
        let whole = looked.filter(|s| explicit && (here(s) || s.unpopulated > 0)).and_then(|_| self.observe_whole(start, end)).map(|(w, _)| w);
        if let Some(w) = whole.filter(|w| self.unmapped(start, end, w)) {
            crate::log!(crate::log::Level::Info, "alloc_vram {} to {cand}: part of it is not mapped (EFAULT, {} of {} runs never populated)", Span(start, size), w.unpopulated, w.samples);
            self.stats.count_errno(Errno::EFAULT);
            return Err(Miss::Fatal(Errno::EFAULT));
        }
        let already = (!readable && cand == Pagemap::System) || looked.is_some_and(|s| here(&s) && (!explicit || whole.is_some_and(|w| here(&w))));
        if already && mate {
            crate::log!(crate::log::Level::Debug, "alloc_vram {} to {cand}: already there, moved with the rest of its 2 MiB range (page table); no prefetch", Span(start, size));
        }
        if already {
            // Already in system memory, a prefetch still binds the range for
            // the accessing device (docs/kernel-model.md §7): one ioctl instead of a
            // GPU fault per range at launch. It moves nothing, so it is
            // queued without a fence and not waited for; a failure to bind
            // changes nothing.
            let bound = cand == Pagemap::System && self.bind_in_system(&via, start, size, placed);
            placed.verified = looked.is_some();
            return Ok(Migrated { moved: false, bound });
        }
        // Rule 6, multi-tile devices: a range that moved before, going to
        // the accessing device's own VRAM, is left to the launch's GPU
        // fault. A prefetch binds it on every tile of the VM
        // (`vm_bind_ioctl_ops_create` takes all tiles), and at its next move
        // each bound tile pays a TLB invalidation (40 us); the fault (20 us)
        // binds only the tile that faults (docs/cost-model.md). The
        // attributes just set send the fault there.
        let tiles = dev.vram_tiles();
        // Not a span the runtime insists on (atomics) where the CPU takes
        // it back: an atomic fault stamps the kernel's timeslice on what it
        // migrates (xe_svm_handle_pagefault: atomic_svm_timeslice_ms; a
        // prefetch asks for none, docs/kernel-model.md §5.3), and the CPU's
        // next touch (a histogram read after the round) waits it out. In
        // system memory now (pulled back or evicted), the fault saves 20-40
        // us a range against that wait. From elsewhere (a peer's VRAM, or
        // where the launch's faults put it), where the CPU pulled it back
        // before: which device runs last before the CPU's read is not known,
        // so every device's move pays the prefetch's price, its other tiles'
        // TLB invalidation on each of the span's ranges, and one timeslice
        // falls per pull-back. Prefetched where its moves between
        // pull-backs (the pull-back's own included) cost no more in
        // invalidations than that timeslice (a histogram in 14 ranges that
        // three devices take each round: 14 x 4 x 40 us = 2.2 ms against
        // 5; one in 43 ranges over five devices: 10.3 ms, left to the
        // fault). The ranges are counted as if the VMA were cut at the
        // span's ends, an upper bound where the madvise took whole chunks:
        // counting those (fewer ranges, more prefetches) made 14 programs
        // slower and 8 faster (the bound's 40 us a range undercounts what
        // binding every tile costs the moves after). Before the CPU was
        // seen to pull it back, as though it will once: left to the fault
        // the span risks that one timeslice, prefetched it risks the
        // invalidations, and the smaller worst case runs (a histogram read
        // once after one round: 13.6 -> 10.3 ms, the prefetch's 10.4; on
        // 17,600 generated programs 54 faster, up to 1.31x, 17 slower, at
        // most 1.05x, all multi-tile atomics).
        let cpu_reads = || {
            let pulls = summary.moves.iter().filter(|m| m.pulled_back).count() as u64;
            let invalidations = (tiles as u64).saturating_sub(1).saturating_mul(kernel_ranges(start, end)).saturating_mul(summary.moves.len() as u64);
            invalidations.saturating_mul(TLB_INVALIDATION_NS) <= ATOMIC_TIMESLICE_NS.saturating_mul(pulls.max(1))
        };
        let timesliced = || flags.contains(AllocFlags::IGNORE_THRASH_GUARD) && (summary.residency == Some(Pagemap::System) || cpu_reads());
        if rule_6_may_defer(dev, cand, flags, summary) && !timesliced() {
            crate::log!(crate::log::Level::Debug, "alloc_vram {} to {cand}: left to the GPU fault (rule 6: moved {} times before, device {} has {tiles} tiles; a prefetch would bind all of them)", Span(start, size), summary.moves.len(), dev.slot);
            placed.on_fault = true;
            return Ok(Migrated { moved: true, bound: false });
        }
        loop {
            match self.prefetch(&via, start, size, region, placed) {
                Ok(()) => {}
                Err(Errno::EBUSY) if !busy_retried => {
                    // The kernel thread's rule: evict to system, retry once.
                    busy_retried = true;
                    placed.retries += 1;
                    self.stats.count_errno(Errno::EBUSY);
                    crate::log!(crate::log::Level::Info, "alloc_vram {} to {cand}: EBUSY, evicting to system and retrying once", Span(start, size));
                    let _ = self.prefetch(&via, start, size, 0, placed);
                    continue;
                }
                Err(e @ (Errno::ENOMEM | Errno::ENOSPC)) if !room_retried && cand != Pagemap::System => {
                    room_retried = true;
                    placed.retries += 1;
                    self.stats.count_errno(e);
                    crate::log!(crate::log::Level::Info, "alloc_vram {} to {cand}: {}, evicting least recently used ranges and retrying once", Span(start, size), e.short());
                    self.make_room(slots, cand, start, end, placed);
                    continue;
                }
                Err(e @ (Errno::EBUSY | Errno::ENOMEM | Errno::ENOSPC)) => {
                    self.stats.count_errno(e);
                    return Err(miss(e));
                }
                Err(e) => {
                    return Err(match self.suffer(e, &via, Some(cand)) {
                        Answer::NoLink => {
                            crate::log!(crate::log::Level::Info, "alloc_vram {} device {} to {cand}: ENOLINK, the link is marked absent", Span(start, size), dev.slot);
                            Miss::Fallback(e)
                        }
                        _ => Miss::Fatal(e),
                    });
                }
            }
            // Step 4: a prefetch that reported success but left the range
            // elsewhere (docs/kernel-model.md §7) counts as EBUSY, where observable.
            // An explicit request's every page (a hole the samples miss is
            // skipped by the prefetch all the same).
            let after = match readable {
                false => None,
                true if explicit => self.observe_whole(start, end).map(|(w, _)| w),
                true => self.observe(start, end),
            };
            if let Some(after) = after {
                if !self.agrees(slots, &after, cand) || (explicit && after.unpopulated > 0 && self.unmapped(start, end, &after)) {
                    // A hole: EFAULT, not a fallback that would call it
                    // placed. The mapped part may have moved: its place is
                    // unknown, to the result and the records.
                    if self.unmapped(start, end, &after) {
                        crate::log!(crate::log::Level::Info, "alloc_vram {} to {cand}: nothing is mapped there, or not all of it (EFAULT)", Span(start, size));
                        self.stats.count_errno(Errno::EFAULT);
                        self.place_unknown(slots, start, end);
                        placed.pagemap = None;
                        return Err(Miss::Fatal(Errno::EFAULT));
                    }
                    self.stats.local().unverified.fetch_add(1, Ordering::Relaxed);
                    crate::log!(crate::log::Level::Info, "alloc_vram {} to {cand}: the prefetch reported success but the page table shows it elsewhere (counted as EBUSY)", Span(start, size));
                    if !busy_retried {
                        busy_retried = true;
                        placed.retries += 1;
                        let _ = self.prefetch(&via, start, size, 0, placed);
                        continue;
                    }
                    return Err(miss(Errno::EBUSY));
                }
                placed.verified = true;
            }
            break;
        }
        Ok(Migrated { moved: summary.residency != Some(cand), bound: true })
    }
}

/// Rule 6's ground: a span that moved before, going to a multi-tile
/// device's own VRAM, in a call that lets the library defer the move.
pub(super) fn rule_6_may_defer(dev: &Device, target: Pagemap, flags: AllocFlags, summary: &Record) -> bool {
    dev.vram_tiles() > 1 && target.device() == Some(dev.slot) && !summary.moves.is_empty() && flags.may_defer()
}

/// A GPU TLB invalidation, per range and tile (docs/cost-model.md).
const TLB_INVALIDATION_NS: u64 = 40_000;
/// The kernel's atomic timeslice: `atomic_svm_timeslice_ms`, 5 ms unless
/// changed in debugfs, which a runtime does not read (docs/kernel-model.md
/// §5.3).
const ATOMIC_TIMESLICE_NS: u64 = 5_000_000;

/// The SVM ranges the kernel cuts [start, end) into where the VMA is cut
/// at its ends: the largest aligned chunk that fits at each address, 2 MiB,
/// 64 KiB or 4 KiB (`drm_gpusvm_range_chunk_size` over xe's
/// `fault_chunk_sizes`, docs/kernel-model.md §2). Page-aligned bounds below
/// the VA limit.
pub(super) fn kernel_ranges(start: u64, end: u64) -> u64 {
    use super::{CHUNK, PAGE};
    debug_assert!(start % PAGE == 0 && end % PAGE == 0 && end <= super::VA_LIMIT);
    let mut n = 0;
    let mut at = start;
    while at < end {
        if at % CHUNK == 0 && end - at >= CHUNK {
            // The run of whole chunks in one step.
            let whole = (end - at) / CHUNK;
            (n, at) = (n + whole, at + whole * CHUNK);
            continue;
        }
        at += [64 << 10, PAGE].into_iter().find(|&c| at % c == 0 && end - at >= c).unwrap_or(PAGE);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::kernel_ranges;

    const K: u64 = 4096;
    const M: u64 = 1 << 20;

    #[test]
    fn kernel_ranges_take_the_largest_aligned_chunk_that_fits() {
        assert_eq!(kernel_ranges(0, 2 * M), 1);
        assert_eq!(kernel_ranges(0, 2 * M + 64 * 1024 + K), 3);
        assert_eq!(kernel_ranges(K, 2 * K), 1);
        // 15 pages and 31 64 KiB ranges up to the 2 MiB boundary, the same after it.
        assert_eq!(kernel_ranges(K, 4 * M - K), 92);
        assert_eq!(kernel_ranges(5 * K, 5 * K), 0);
        assert_eq!(kernel_ranges(2 * M - K, (1 << 40) + K), (1 << 19) - 1 + 2);
    }
}
