//! The library's bookkeeping of ranges: what is known of a span (merged
//! over the records covering it), what was applied and placed, the bytes
//! placed per pagemap, invalidation, and the range query.

use std::sync::atomic::Ordering;

use super::*;

/// Whether a record over [rs, re) speaks for the span [start, end): it
/// holds at least half of it. A packed neighbour's record shares a page
/// with the span (a runtime widens spans to whole pages) and says nothing
/// of the rest (found on arenas: a 4 KiB overlap took a 100 MB span for
/// placed, so the capacity check let two spans larger than VRAM in).
pub(super) fn speaks_for(rs: u64, re: u64, start: u64, end: u64) -> bool {
    (re.min(end) - rs.max(start)) * 2 >= end - start
}

impl Context {
    /// What is known of [start, end), merged over the records covering it;
    /// its pins, moves, uses, faults' marks and, where they agree, its
    /// place are its own records' (below).
    pub(super) fn summary(&self, start: u64, end: u64) -> Record {
        let track = self.track.read();
        let mut pieces: Vec<Record> = track.overlapping(start, end).map(|(_, r)| r.clone()).collect();
        let covered = track.covers(start, end);
        // A gap is what a placement's write-back records there (`Track::
        // replace`): a fresh record, with the kernel's default attributes,
        // no hint, nothing bound, never observed. A value recorded over part
        // of the span is not the whole span's: the call that wants it
        // applies it again rather than skip the madvise, and a hint (a
        // preferred location the runtime set, read-mostly) holds only where
        // it was given.
        if !covered && !pieces.is_empty() {
            pieces.push(Record::new(end));
        }
        let mut s = merge_pieces(pieces);
        // The pins and moves are those of the span's own records (inside it,
        // or speaking for it, `speaks_for`): a packed neighbour's record
        // sharing a page with it says nothing of its history, and merged in
        // it held the span too (a hand-off pin spread along an arena from
        // neighbour to neighbour, each pinned span's record carrying it to
        // the next). Measured on generated programs (ten seeds, 200 each):
        // six programs faster (packed arenas, a solver's vectors 2.5x), two
        // slower (training, 5 % and 12 %, both at a third of the better
        // baseline).
        let is_own = |rs: u64, r: &Record| (rs >= start && r.end <= end) || speaks_for(rs, r.end, start, end);
        let own = track.overlapping(start, end).filter(|&(rs, r)| is_own(rs, r)).map(|(_, r)| r);
        // Its uses and where it lies are its own records' too: a packed
        // neighbour's record holding the page the two share (the record
        // placed last takes it) counts the neighbour's uses and says where
        // the neighbour lies. Merged in, a token packed before the logits
        // the CPU reads in system memory was "unknown" at every turn, or
        // used as often as the logits, so no look saw the CPU pull it back
        // and no hand-off held it: it moved both ways at each of a decode
        // program's 23 tokens. What the shared page holds is the page-table
        // look's to say (`Context::place`). Measured on generated programs
        // (15,800, against the better baseline): 1,032 faster, 141 slower
        // (up to 1.65x; 102 of them training programs, whose activations
        // the CPU writes are now held in system memory); by family, decode
        // 0.204 -> 0.158, training 0.460 -> 0.434, the rest within 0.5 %;
        // 79 programs more than 2 % behind, before and after.
        let (mut pinned_until, mut moves, mut faulted_by, mut uses) = (0, None::<&Vec<crate::track::Move>>, 0, 0);
        let mut residency = None::<Option<Pagemap>>;
        for r in own {
            pinned_until = pinned_until.max(r.pinned_until);
            faulted_by |= r.faulted_by.load(Ordering::Relaxed);
            uses = uses.max(r.uses.load(Ordering::Relaxed));
            // The longest history, the last of equals (as `max_by_key`).
            if moves.is_none_or(|m| r.moves.len() >= m.len()) {
                moves = Some(&r.moves);
            }
            // Known where they all agree.
            residency = Some(residency.map_or(r.residency, |p| p.filter(|_| p == r.residency)));
        }
        s.pinned_until = pinned_until;
        s.moves = moves.cloned().unwrap_or_default();
        *s.faulted_by.get_mut() = faulted_by;
        *s.uses.get_mut() = uses;
        // Only where every other piece says system memory or the same: a
        // neighbour recorded in another VRAM may have taken the chunk they
        // share, the span with it (a prefetch moves whole ranges, and only
        // an atomic span's records follow: `carried_along`), which an
        // unprivileged page-table read cannot tell from where the span's
        // own record puts it. A neighbour moved to system memory took the
        // chunk back: its mates' records say so where the library could
        // look and lock them (`carried_back`); elsewhere the page-table
        // look at the span's next placement finds it away from the VRAM
        // its record names.
        let others_agree = || {
            track.overlapping(start, end).filter(|&(rs, r)| !is_own(rs, r)).all(|(_, r)| matches!(residency, Some(own) if r.residency == own || r.residency == Some(Pagemap::System)))
        };
        if let Some(Some(p)) = residency.filter(|_| others_agree()) {
            s.residency = Some(p);
        }
        if !covered {
            s.residency = None;
        }
        s
    }

    /// Keeps each device's bytes-placed counter (used by resolve) in step.
    pub(super) fn account(&self, slots: &[Slot], old: Option<Pagemap>, new: Option<Pagemap>, size: u64) {
        if old == new {
            return;
        }
        let counter = |pm: Option<Pagemap>| match pm {
            Some(Pagemap::Vram { device, tile }) => {
                slots.get(device as usize).and_then(|s| s.dev.as_ref()).map(|d| &d.placed[tile as usize])
            }
            _ => None,
        };
        if let Some(c) = counter(old) {
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(size)));
        }
        if let Some(c) = counter(new) {
            c.fetch_add(size, Ordering::Relaxed);
        }
    }

    /// Replaces the records over [start, end) with what `merge` makes of
    /// them, keeping the per-tile placed-bytes counters (what resolve reads)
    /// in step: each old piece gives back its bytes, the new record takes the
    /// span. Every change of a record goes through here, so the counters
    /// never drift from the records (found by xesvm-soak: a belief corrected
    /// by the page table, a held or split range, were counted twice). The
    /// runtime's read-mostly hint holds only where it was given: where it
    /// covers part of the span, each part is merged and rewritten on its
    /// own (merged whole, an eviction, an atomic mode or a placement over
    /// more than the hinted span dropped it).
    pub(super) fn rewrite(&self, slots: &[Slot], start: u64, end: u64, merge: impl Fn(Vec<Record>) -> Record) {
        let cuts = self.read_mostly_cuts(start, end);
        for (s, e) in cuts.iter().copied().chain([end]).scan(start, |at, cut| Some((std::mem::replace(at, cut), cut))) {
            self.rewrite_one(slots, s, e, &merge);
        }
    }

    fn rewrite_one(&self, slots: &[Slot], start: u64, end: u64, merge: &impl Fn(Vec<Record>) -> Record) {
        let mut old: Vec<(Option<Pagemap>, u64)> = Vec::new();
        let new = self
            .track
            .write()
            .replace(start, end, |pieces| {
                let mut at = start;
                for p in &pieces {
                    old.push((p.residency, p.end - at));
                    at = p.end;
                }
                merge(pieces)
            })
            .residency;
        for (residency, bytes) in old {
            self.account(slots, residency, None, bytes);
        }
        self.account(slots, None, new, end - start);
    }

    /// Records over [start, end) the attributes applied to each VM, then
    /// whatever else `more` sets (each part the read-mostly hint covers on
    /// its own, `rewrite`).
    pub(super) fn record(&self, slots: &[Slot], start: u64, end: u64, applied: &[(u16, DevAttrs)], more: impl Fn(&mut Record)) {
        self.rewrite(slots, start, end, |pieces| {
            let mut r = merge_pieces(pieces);
            for (slot, a) in applied {
                r.set_attrs(*slot, *a);
                // A madvise zaps the span's PTEs in that VM.
                r.set_bound(*slot, false);
            }
            more(&mut r);
            r
        });
        // The madvise split the mirror VMA at the span's ends, destroying
        // the SVM ranges (at most 2 MiB, chunk-aligned) that straddle them
        // (`xe_svm_unmap_address_range`, docs/kernel-model.md §8): a packed
        // neighbour's binding in those chunks is gone too. (Where it covered
        // less, trimmed to the VMAs that differed, or none did, this is
        // cautious: a binding believed gone is bound again.)
        if !applied.is_empty() {
            self.unbind_end_chunks(start, end, applied.iter().map(|(slot, _)| *slot));
        }
    }

    /// Whether the page table ever showed [start, end) taken back to system
    /// memory by someone else (the CPU) after the library moved it
    /// (`Move::pulled_back`, in the records inside it). One read-locked
    /// walk of its records.
    pub(super) fn pulled_back_before(&self, start: u64, end: u64) -> bool {
        self.track.read().overlapping(start, end).any(|(rs, r)| rs >= start && r.end <= end && r.moves.iter().any(|m| m.pulled_back))
    }

    /// Where the read-mostly hint changes inside [start, end) (a gap has
    /// none): no allocation where it does not, the common case.
    fn read_mostly_cuts(&self, start: u64, end: u64) -> Vec<u64> {
        let track = self.track.read();
        let (mut cuts, mut at, mut hint) = (Vec::new(), start, None::<bool>);
        let mut next = |s: u64, on: bool, cuts: &mut Vec<u64>| {
            if hint.is_some_and(|h| h != on) {
                cuts.push(s);
            }
            hint = Some(on);
        };
        for (rs, r) in track.overlapping(start, end) {
            let s = rs.max(start);
            if s > at {
                next(at, false, &mut cuts);
            }
            next(s, r.read_mostly, &mut cuts);
            at = r.end.min(end);
        }
        if at < end {
            next(at, false, &mut cuts);
        }
        cuts
    }

    /// A madvise over [start, end) in the VMs of `advised` split the
    /// mirror VMA at its ends, destroying the SVM ranges that straddle
    /// them: what the records call bound there for those VMs is not.
    pub(super) fn unbind_end_chunks(&self, start: u64, end: u64, advised: impl Iterator<Item = u16> + Clone) {
        let track = self.track.read();
        for (s, e) in super::chunks::end_chunk_sides(start, end).into_iter().filter(|(s, e)| s < e) {
            for (_, r) in track.overlapping(s, e) {
                for slot in advised.clone() {
                    r.set_bound(slot, false);
                }
            }
        }
    }

    /// [`Context::rewrite`] record by record: each record's part of
    /// [start, end), and with `gaps` each gap between them, is rewritten
    /// alone, so that packed neighbours never take one another's history
    /// (moves, pin, uses), as one merged record would make them.
    pub(super) fn rewrite_each(&self, slots: &[Slot], start: u64, end: u64, gaps: bool, merge: impl Fn(Vec<Record>) -> Record) {
        let mut windows = Vec::new();
        let mut at = start;
        for (s, r) in self.track.read().overlapping(start, end) {
            let (ws, we) = (s.max(start), r.end.min(end));
            if gaps && at < ws {
                windows.push((at, ws));
            }
            windows.push((ws, we));
            at = we;
        }
        if gaps && at < end {
            windows.push((at, end));
        }
        for (s, e) in windows {
            self.rewrite(slots, s, e, &merge);
        }
    }

    /// Records what a look at the page table settled of [start, end)
    /// (policy/observe.rs): the span's history, with the move the look
    /// counted, and its faults' marks spent; `more` records the rest.
    pub(super) fn record_look(&self, slots: &[Slot], start: u64, end: u64, moves: &[crate::track::Move], more: impl Fn(&mut Record)) {
        self.rewrite(slots, start, end, |pieces| {
            let mut r = merge_pieces(pieces);
            r.moves = moves.to_vec();
            r.spend_faulted_marks();
            more(&mut r);
            r
        });
    }

    /// Forgets where [start, start+size) is (the runtime knows the CPU or a
    /// free touched it: the runtime's free hook). On a VM whose kernel resets
    /// madvise attributes on munmap (a mirror bound with MADVISE_AUTORESET,
    /// or possibly 6.18, which resets unconditionally) the kernel resets the
    /// whole SVM range, up to its 2 MiB chunk, where the GPU created one,
    /// which the library cannot see: there its attribute records over the
    /// chunks become unknown, so the next advice is issued again. Elsewhere
    /// attributes stay recorded, as the kernel keeps them.
    pub fn invalidate(&self, start: u64, size: u64) -> Result<()> {
        let end = check_span(start, size)?;
        let [(cs, _), (_, ce)] = super::chunks::end_chunk_sides(start, end);
        let _g = self.ranges.lock(cs, ce);
        self.turns.forget(start, end);
        self.populated.forget(start, end);
        self.rent.forget(start, end);
        let slots = self.slots.read();
        // What the records knew: a gap stays one (nothing was known there,
        // and the kernel's defaults are what a gap says).
        self.rewrite_each(&slots, start, end, false, |pieces| {
            let mut r = merge_pieces(pieces);
            r.residency = None;
            r.observed_at.store(0, Ordering::Relaxed);
            r.spend_faulted_marks();
            r
        });
        // The MMU notifier unmapped the span from every GPU, with the SVM
        // ranges straddling its ends (a partly unmapped range is destroyed
        // whole, docs/kernel-model.md §8): nothing in its chunks is bound.
        for (_, r) in self.track.read().overlapping(cs, ce) {
            r.bound.store(0, Ordering::Relaxed);
        }
        self.forget_reset_attrs(&slots, cs, ce);
        Ok(())
    }

    /// The attribute records over [start, end) of every VM that resets them
    /// on munmap become unknown (gaps too: a gap means "kernel defaults" to
    /// the records), piece by piece so that residency and history stay.
    pub(super) fn forget_reset_attrs(&self, slots: &[Slot], start: u64, end: u64) {
        let devices = || slots.iter().filter_map(|s| s.dev.as_ref());
        let unflagged = self.resets_unflagged(slots);
        let resetting: Vec<u16> = devices().filter(|d| d.resets_attrs_on_free(unflagged)).map(|d| d.slot).collect();
        if resetting.is_empty() {
            return;
        }
        // A gap was never advised by the library: reset or not, it holds
        // the kernel's defaults, which is what a gap says.
        self.rewrite_each(slots, start, end, false, |pieces| {
            let mut r = merge_pieces(pieces);
            for &slot in &resetting {
                r.set_attrs(slot, DevAttrs::UNKNOWN);
            }
            r
        });
    }

    /// The kernel's VMAs over [start, end) in one VM of `d`, with their
    /// attributes (VM_QUERY_MEM_RANGE_ATTRS: two ioctls, or one where the
    /// first fails or finds none, more where the VMAs change between
    /// them), counted in `ioctls` and the stats.
    pub(super) fn query_vmas(&self, d: &Device, vm: u32, start: u64, end: u64, ioctls: &mut u32) -> Result<Vec<drm_xe_mem_range_attr>> {
        // Restarted on EINTR/EAGAIN by the driver layer, as every ioctl is.
        let (r, issued, restarts) = self.counted(|| xe::query_mem_range_attrs(&*self.driver, d.fd, vm, start, end - start));
        *ioctls += issued;
        self.stats.count_errnos(Errno::EINTR, restarts);
        r
    }

    /// Attributes on every device VM (asked of the kernel) and what the
    /// library knows of the range's residency.
    pub fn query(&self, start: u64, size: u64) -> Result<RangeInfo> {
        let end = check_span(start, size)?;
        let _g = self.ranges.lock(start, end);
        let slots = self.slots.read();
        let summary = self.summary(start, end);
        let mut devices = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            let Some(d) = &s.dev else { continue };
            if d.check_alive().is_err() {
                continue;
            }
            let attrs = match self.query_vmas(d, d.vm_id, start, end, &mut 0) {
                Err(e @ (Errno::ENODEV | Errno::ECANCELED)) => {
                    self.suffer(e, d, None);
                    None
                }
                r => Some(r?),
            };
            let Some(attrs) = attrs else { continue };
            let first = attrs.first();
            devices.push(DeviceAttrs {
                device: DeviceHandle { slot: i as u16, gen: s.gen },
                preferred_fd: first.map_or(0, |a| a.preferred_mem_loc.devmem_fd as i32),
                atomic: first.map_or(0, |a| a.atomic.val),
                vmas: attrs.len() as u32,
            });
        }
        // The advice every open device given one holds over the whole span.
        let preferred = {
            let track = self.track.read();
            let mut held = slots.iter().filter_map(|s| s.dev.as_ref()).filter_map(|d| track.advice.for_device(start, end, d.slot));
            held.next().filter(|&first| held.all(|p| p == first))
        };
        let now = self.driver.now_ns();
        let observed = self.observe(start, end);
        // What the page table names, as the placements read it (a
        // privileged reader's region, else the one VRAM), believing nothing.
        let observed_pagemap = observed.filter(Seen::all_away).and_then(|o| self.place_of(&slots, &o, None, 0));
        Ok(RangeInfo {
            residency: summary.residency,
            observed,
            observed_pagemap,
            preferred,
            moves_in_window: summary.moves_within(now, self.thrash_window(end - start)) as u32,
            pinned: now < summary.pinned_until,
            devices,
        })
    }
}

/// One record from the pieces that covered a span: residency only if all
/// agree, attributes per device only if all agree (else unknown, which makes
/// the next call re-apply them), the longest history and latest pin.
pub(super) fn merge_pieces(pieces: Vec<Record>) -> Record {
    let mut it = pieces.into_iter();
    let Some(mut r) = it.next() else { return Record::new(0) };
    for p in it {
        if p.residency != r.residency {
            r.residency = None;
        }
        // A hint holds for a merged span only where it holds for every piece.
        r.read_mostly &= p.read_mostly;
        r.probe_born &= p.probe_born;
        r.born_in_pieces &= p.born_in_pieces;
        r.remote_readers.fetch_or(p.remote_readers.load(Ordering::Relaxed), Ordering::Relaxed);
        r.peer_readers.fetch_or(p.peer_readers.load(Ordering::Relaxed), Ordering::Relaxed);
        r.faulted_by.fetch_or(p.faulted_by.load(Ordering::Relaxed), Ordering::Relaxed);
        // Bound for a device only where every piece is.
        r.bound.fetch_and(p.bound.load(Ordering::Relaxed), Ordering::Relaxed);
        let n = r.attrs.len().max(p.attrs.len());
        for slot in 0..n as u16 {
            if r.attrs(slot) != p.attrs(slot) {
                r.set_attrs(slot, r.attrs(slot).merged(p.attrs(slot)));
            }
        }
        if p.moves.len() > r.moves.len() {
            r.moves = p.moves;
        }
        let uses = p.uses.load(Ordering::Relaxed).max(r.uses.load(Ordering::Relaxed));
        r.uses = std::sync::atomic::AtomicU32::new(uses);
        r.pinned_until = r.pinned_until.max(p.pinned_until);
        let lu = p.last_used.load(Ordering::Relaxed).max(r.last_used.load(Ordering::Relaxed));
        r.last_used = AtomicU64::new(lu);
        // Confirmed as a whole only as of the oldest piece's confirmation.
        let at = p.observed_at.load(Ordering::Relaxed).min(r.observed_at.load(Ordering::Relaxed));
        r.observed_at = AtomicU64::new(at);
        let rep = p.reported_at.load(Ordering::Relaxed).max(r.reported_at.load(Ordering::Relaxed));
        r.reported_at = AtomicU64::new(rep);
        // Explicit where any piece is.
        if p.explicit.load(Ordering::Relaxed) {
            *r.explicit.get_mut() = true;
        }
    }
    // Written now by whoever merges: no longer a widening's side alone
    // (`chunks::record_side` marks its own).
    *r.side.get_mut() = false;
    r
}
