//! Steps 2 to 4 of the placement flow (docs/design.md) for one candidate:
//! the attributes every device VM gets (`try_candidate`, and what it
//! records however the attempt ends), the PREFETCH with
//! its user fence (none where the page table shows the span there already,
//! and none for a multi-tile re-move, rule 6, left to the launch's fault),
//! the answer to each errno (EBUSY: evict and retry once; ENOMEM/ENOSPC:
//! make room and retry once; ENOLINK: the link is marked absent), and the
//! page table's check that the range really is there.

use std::sync::atomic::Ordering;

use super::chunks::ChunkSides;
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
    /// Attributes + prefetch + verification for one candidate (steps 2-4).
    pub(super) fn try_candidate(&self, a: &Attempt, cand: Pagemap, placed: &mut Placed) -> std::result::Result<(), Miss> {
        let Attempt { slots, dev, start, end, ref summary, .. } = *a;
        // Step 2: the same preferred location on every device VM, skipping
        // madvise calls whose effect is recorded. What was applied is recorded
        // however the attempt ends, so the record never disagrees with the kernel.
        let mut applied = Vec::new();
        // A small span served in system memory (a piece of a table read at
        // random, a small allocation) is bound for the accessing device by
        // the prefetch and not advised: a madvise on every device VM costs
        // more than reading the piece (2 us an ioctl against 1.4 us for 64
        // KiB at host bandwidth, docs/cost-model.md), it cuts the mapping at
        // the piece's ends (a neighbour in its chunk then migrates in 4 KiB
        // ranges), and without it a later GPU fault there may migrate the
        // piece, which is the kernel's default and loses nothing. While it
        // stays bound, the next call finds it in place (`in_place`).
        // Nor is system memory advised where no device of the context has
        // VRAM (integrated GPUs): every fault lands there anyway, and a
        // madvise zaps the PTEs of what a packed neighbour's prefetch bound
        // in its chunk (measured on igpu, 100 generated programs: GPU
        // faults the prefetch baseline never takes, up to 1.75x it). An
        // explicit request is honoured all the same: the span lives and is
        // bound where it asked, and on such a device the advice changes
        // no fault's outcome.
        let no_vram = cand == Pagemap::System && slots.iter().filter_map(|s| s.dev.as_ref()).all(|d| !d.has_vram());
        let engine_system = a.flags.engine() && cand == Pagemap::System;
        let advise = !(no_vram || (engine_system && end - start <= super::resolve::SMALL_READ));
        // The madvise covers the span's whole 2 MiB chunks where nothing else
        // is recorded there: a madvise splits the mirror VMA at its ends, and
        // inside a split the kernel can no longer use a 2 MiB range, so a
        // buffer ending mid-chunk would migrate its tail in 64 KiB and 4 KiB
        // ranges (about 49 us each against one 2 MiB copy, docs/cost-model.md),
        // where the kernel alone, unsplit, moves that chunk whole anyway.
        let widened = if advise { self.chunk_sides(start, end, cand, dev) } else { ChunkSides::none(start, end) };
        // An engine placement in system memory that shares a chunk with a
        // neighbour placed otherwise is bound, not advised: the madvise
        // would split the VMA inside the chunk and destroy the neighbour's
        // SVM ranges straddling the cut (evicted from VRAM, unbound:
        // xe_svm_unmap_address_range), while the bind alone spares the
        // launch its faults; a later fault may migrate the span, the
        // kernel's default. Measured on generated programs (seeds 1, 2,
        // 21, 22, against the better baseline): 0.777, 0.754, 0.798, 0.753
        // -> 0.770, 0.748, 0.793, 0.745, no program more than 1 % slower.
        let split = widened.start % super::CHUNK != 0 || widened.end % super::CHUNK != 0;
        // Nor an atomic span whose advice would cut a chunk it shares
        // (`atomic_rest`): the rest of its chunks moves with it.
        let rest = if advise && split { self.atomic_rest(a, cand, widened.start, widened.end, &mut placed.ioctls) } else { None };
        let advise = advise && !(engine_system && split) && rest.is_none();
        let (ws, we) = (widened.start, widened.end);
        let attributes = if advise { self.apply_preferred(slots, Some(dev.slot), None, ws, we, cand, summary, placed, &mut applied) } else { Ok(()) };
        // Until a copy prices the rent's buy (policy/rent.rs), a span of a
        // chunk or more the records do not place is sampled before its
        // move into VRAM (four page-table reads, under 4 us, before a move
        // of megabytes): a first round's inputs, written by the CPU, are
        // copies; a buffer nothing populated is a birth.
        let into_vram = cand.device().is_some();
        let unknown = summary.residency.is_none() && a.seen.is_none() && into_vram && end - start >= super::CHUNK;
        let sampled = if unknown && !self.rent.priced() { self.observe_samples(start, end, 4) } else { None };
        let t_move = if into_vram { self.driver.now_ns() } else { 0 };
        let outcome = attributes.and_then(|()| self.migrate_verified(a, cand, placed));
        // The sides' preferred locations are recorded as applied (residency
        // unknown).
        let record_sides = |applied: &[(u16, DevAttrs)]| {
            for (s, e) in [(ws, start), (end, we)] {
                if s < e && !applied.is_empty() {
                    self.record_side(slots, s, e, applied, cand);
                }
            }
        };
        let Migrated { moved, bound } = match outcome {
            Ok(m) => m,
            Err(m) => {
                self.record(slots, start, end, &applied, |_| {});
                record_sides(&applied);
                return Err(m);
            }
        };
        record_sides(&applied);
        drop(widened);
        if moved && !placed.on_fault {
            placed.bytes_moved += end - start;
        }
        // Record what is true now.
        let now = self.driver.now_ns();
        // A copy out of system memory into VRAM (its record said so, or the
        // page table showed it all there) prices the buy of a read served
        // in system memory (policy/rent.rs); a birth copies nothing.
        let from_system = summary.residency == Some(Pagemap::System) || a.seen.or(sampled).is_some_and(|s| s.samples > 0 && s.system == s.samples);
        if moved && !placed.on_fault && from_system && into_vram {
            self.rent.moved(now.saturating_sub(t_move), end - start);
        }
        let observed_at = if placed.verified { now.max(1) } else { 0 };
        let explicit = !a.flags.engine();
        self.record(slots, start, end, &applied, |r| {
            r.residency = Some(cand);
            *r.explicit.get_mut() = explicit;
            // Placed here by this call: no device's faults ran on it since.
            r.spend_faulted_marks();
            r.observed_at.store(observed_at, Ordering::Relaxed);
            r.last_used.store(now, Ordering::Relaxed);
            r.moves = summary.moves.clone();
            // The merge's pin, which a packed neighbour's record of a shared
            // page can carry in (summary() reads past it, so only a later
            // placement of this span sees it). Taking the span's own
            // (`summary`) here too exposed two-device solvers whose shared
            // vectors then ping-pong at fault granularity (generated
            // programs: one solver 0.54 -> 1.10x, one 0.40 -> 1.08x the
            // better baseline): the spread pin held them in one place. A
            // home for spans devices take turns at is the fix; until then
            // this stays.
            r.pinned_until = r.pinned_until.max(summary.pinned_until);
            *r.uses.get_mut() = summary.uses.load(Ordering::Relaxed);
            if moved {
                r.record_move(now);
            }
            if bound {
                r.set_bound(dev.slot, true);
            }
            // The launch this placement is for uses it here.
            r.use_once();
            if cand == Pagemap::System && dev.has_vram() {
                r.read_in_place(dev.slot);
            }
        });
        if moved && cand == Pagemap::System {
            self.carried_back(slots, start, end, summary.residency);
        }
        // Not where rule 6 left the move to the launch's fault: nothing
        // has moved yet.
        if let Some(rest) = rest.as_ref().filter(|_| moved && !placed.on_fault) {
            self.carried_along(slots, rest, start, end, cand);
        } else if moved && !placed.on_fault && into_vram && self.vram_mate_elsewhere(start, end, cand) && self.chunks_mapped_whole(start, end) {
            // Where no madvise cut the chunk in the prefetching VM, the
            // kernel may have moved the whole 2 MiB range
            // (`drm_gpusvm_range_chunk_size` takes the largest chunk inside
            // the VMA), a packed neighbour's part recorded in another VRAM
            // along with it, and its next explicit request, to an
            // unprivileged reader "not in system memory" either way, was
            // answered in place where it was not (a third-party reader's
            // report). Smaller ranges the VM kept in the chunk (made while
            // the mapping ended inside it, before it grew) keep a 2 MiB
            // range from forming, which neither the query nor the maps
            // show: its place is recorded unknown, and its next placement
            // looks and moves it. Two ioctls a side, only where such a
            // neighbour is recorded (and a maps read: the kernel's range
            // stays inside one CPU mapping); one another call is placing
            // now is left to that call.
            let vm = match cand {
                Pagemap::Vram { device, tile } if device == dev.slot => dev.vm_of_tile(tile),
                _ => dev.vm_id,
            };
            if let Some(rest) = self.lock_chunk_rest(start, end, dev, vm, &mut placed.ioctls) {
                self.mates_unknown(slots, &rest, cand);
            }
        }
        Ok(())
    }

    /// Whether [start, end)'s partial end 2 MiB chunks each lie inside one
    /// CPU mapping (/proc/self/maps), where a 2 MiB range can hold them.
    fn chunks_mapped_whole(&self, start: u64, end: u64) -> bool {
        super::chunks::end_chunk_sides(start, end).into_iter().filter(|(s, e)| s < e).all(|(s, _)| {
            let cs = s & !(CHUNK - 1);
            self.driver.cpu_mapping(cs).is_ok_and(|(ms, me)| ms <= cs && me >= cs + CHUNK)
        })
    }

    /// Whether a record in [start, end)'s end 2 MiB chunks, outside it,
    /// places its part in a VRAM other than `to`.
    fn vram_mate_elsewhere(&self, start: u64, end: u64, to: Pagemap) -> bool {
        !self.vram_mates(super::chunks::end_chunk_sides(start, end), to).is_empty()
    }

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
        let miss = |e: Errno, placed: &mut Placed| match peer.as_deref().and_then(|p| self.device_lost(p, &mut placed.ioctls)) {
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
                    return Err(miss(e, placed));
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
                let agrees = self.agrees(slots, &after, cand);
                // A hole (one maps read, only where the look disagrees or an
                // explicit request's walk met a never-populated page):
                // EFAULT, not a fallback that would call it placed. The
                // mapped part may have moved: its place is unknown, to the
                // result and the records.
                if (!agrees || (explicit && after.unpopulated > 0)) && self.unmapped(start, end, &after) {
                    crate::log!(crate::log::Level::Info, "alloc_vram {} to {cand}: nothing is mapped there, or not all of it (EFAULT)", Span(start, size));
                    self.stats.count_errno(Errno::EFAULT);
                    self.place_unknown(slots, start, end);
                    placed.pagemap = None;
                    return Err(Miss::Fatal(Errno::EFAULT));
                }
                if !agrees {
                    self.stats.local().unverified.fetch_add(1, Ordering::Relaxed);
                    crate::log!(crate::log::Level::Info, "alloc_vram {} to {cand}: the prefetch reported success but the page table shows it elsewhere (counted as EBUSY)", Span(start, size));
                    if !busy_retried {
                        busy_retried = true;
                        placed.retries += 1;
                        let _ = self.prefetch(&via, start, size, 0, placed);
                        continue;
                    }
                    return Err(miss(Errno::EBUSY, placed));
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
