//! Split birth: never-populated memory a device asks for in its own VRAM is
//! born there for its first 2 MiB chunk only (the probe) and in system
//! memory for the rest, until the next calls tell which side uses it.
//!
//! A GPU writing a buffer nothing populated yet (an output, a result the
//! CPU reads back) gives no sign of who reads it next, and a CPU read of
//! system pages leaves no trace in the page table. Born in VRAM whole, a
//! buffer the CPU reads costs a copy back of all of it (15 GB/s, plus a
//! CPU fault per range) before the hand-off rule can see anything; born in
//! system memory whole, a buffer the GPU keeps costs a remote pass per use
//! and never learns otherwise. The probe is the witness: the CPU's read
//! pulls it back, which the page table shows, and then the whole buffer is
//! held in system memory (a hand-off), where the GPU wrote all but 2 MiB
//! already. While the probe stays in VRAM, the owner's next
//! [`BUY_AFTER`] - 1 calls keep the split, and the one after moves the
//! rest to VRAM (rent or buy: one remote pass per call already paid buys
//! the move), at once after a read of it was resolved (the GPU uses what it
//! wrote). Any other device or target ends the split, and the normal flow
//! places the whole span.
//!
//! The bet, both ways, for 64 MiB on the simulated clock: a CPU read-back
//! costs 2 MiB copied back instead of 64 (about 5 ms saved); a GPU that
//! keeps the buffer pays a remote write pass of the rest and its move
//! (about 3 ms lost). The context keeps score of which way this process
//! goes (`Context::births`), and where its GPUs kept more buffers than its
//! CPU took, new ones are born whole in VRAM, as the kernel would.
//!
//! Birth in pieces: a small never-populated buffer VRAM would take in 64
//! KiB or 4 KiB ranges (no 2 MiB chunk of it inside its mapping), each
//! later move a migration per range, is born in system memory instead and
//! served there (`Context::birth_in_pieces`).

use std::sync::atomic::Ordering;

use super::place::Attempt;
use super::record::merge_pieces;
use super::*;
use crate::log::Span;

/// The owner's calls that find the probe in VRAM before the rest moves
/// there: the birth's, then one more (a buffer written twice, then read
/// back by the CPU, stays in system memory).
const BUY_AFTER: u32 = 2;

/// Page-table samples that tell a never-populated span (0.9 us each).
const BIRTH_SAMPLES: u64 = 4;

/// How far the learned score goes either way: a change of pattern is
/// followed after at most this many outcomes.
const SCORE_LIMIT: i32 = 4;

impl Context {
    /// The birth: a span with no record, chunk-aligned and at least two
    /// chunks long, that the page table shows never populated, asked of the
    /// accessing device's own VRAM. None where the rule does not apply.
    pub(super) fn split_birth(&self, a: &mut Attempt, target: Pagemap, placed: &mut Placed) -> Option<Result<()>> {
        let Attempt { dev, start, end, flags, .. } = *a;
        let ok = target.device() == Some(dev.slot)
            && flags.may_defer()
            && start % CHUNK == 0
            && end - start >= 2 * CHUNK
            && self.track.read().overlapping(start, end).next().is_none();
        if !ok {
            return None;
        }
        // A few samples: a buffer nothing touched is unpopulated throughout,
        // and this look is paid by every first placement of a large span.
        let seen = match a.seen {
            Some(s) => s,
            None => {
                let s = self.observe_samples(start, end, BIRTH_SAMPLES)?;
                a.seen = Some(s);
                s
            }
        };
        if seen.samples == 0 || seen.unpopulated != seen.samples {
            return None;
        }
        // Learned: where this process's GPUs kept the buffers they wrote
        // more often than its CPU took them, a new one is born whole in VRAM.
        let score = self.births.load(Ordering::Relaxed);
        if score < 0 {
            crate::log!(crate::log::Level::Debug, "alloc_vram {} device {} to {target}: never populated, born whole there: this process's GPUs kept the buffers they wrote (score {score})", Span(start, end - start), dev.slot);
            return None;
        }
        let probe = start + CHUNK;
        crate::log!(
            crate::log::Level::Debug,
            "alloc_vram {} device {} to {target}: never populated: its first chunk born there, the rest {} in system memory until the next calls show who uses it (split birth)",
            Span(start, end - start),
            dev.slot,
            Span(probe, end - probe)
        );
        let r = self.place_split(a, probe, target, seen, placed);
        if r.is_ok() {
            if let Some(rec) = self.track.write().exact_mut(probe, end) {
                rec.probe_born = true;
            }
        }
        Some(r)
    }

    /// Birth in pieces: a never-populated span of at most two 2 MiB chunks,
    /// none of them inside its CPU mapping (a small buffer), asked of the
    /// accessing device's VRAM: the kernel takes a 2 MiB range only inside
    /// the mapping (`drm_gpusvm_range_chunk_size`, docs/kernel-model.md §2),
    /// so the span is born there in ranges of 64 KiB (a prefetch, whose
    /// ranges `vm_bind_ioctl_ops_create` makes with no check_pages_threshold)
    /// or 4 KiB (a fault: `xe_svm_handle_pagefault` probes the pages of
    /// ranges up to 64 KiB), and every later move, a hand-off to another
    /// device or back to the CPU, goes in such ranges too, each a migration
    /// of its own. Born in system memory instead (a page's zero-fill, about
    /// 0.5 us) and served there, read and written at host bandwidth. Only
    /// where the context has more than one VRAM (devices or tiles that may
    /// take it from each other): with one, nothing moves it but the CPU,
    /// whose pull-backs the hand-off answers, and served in system memory
    /// it was read over the host link at every use (a grid's result row,
    /// rodinia-pathfinder 1.075x the prefetch; generated programs on b60,
    /// 159 faster, 324 slower, 5 fewer more than 2 % behind). Not
    /// the tail of a larger buffer, whose head lies in 2 MiB ranges: that
    /// buffer stays where it is used, and its tail was read over the host
    /// link at every pass (a solver's GPU-born matrix, 3x the prefetch,
    /// once prefetched ranges were 64 KiB). None where the rule does not
    /// apply.
    pub(super) fn birth_in_pieces(&self, a: &mut Attempt, target: Pagemap, placed: &mut Placed) -> Option<Result<()>> {
        let Attempt { dev, start, end, flags, .. } = *a;
        // Nothing placed there (a packed neighbour's record may share an end
        // page), and no advice of the runtime's: its preferred location or
        // read-mostly hint decides where the span lives.
        let track = self.track.read();
        let free = |s: u64, r: &Record| r.end.min(end) - s.max(start) <= PAGE || (r.residency.is_none() && !track.advice.any(s, r.end) && !r.read_mostly);
        // More than one VRAM open now (devices or tiles): `only_vram` stays
        // None once any VRAM closed, a single GPU closed and opened again.
        let vrams: usize = a.slots.iter().filter_map(|s| s.dev.as_ref()).map(|d| d.vram_tiles()).sum();
        let ok = target.device() == Some(dev.slot) && vrams > 1 && track.overlapping(start, end).all(|(s, r)| free(s, r));
        drop(track);
        if !ok {
            return None;
        }
        let (ms, me) = self.driver.cpu_mapping(start).ok()?;
        let inside = |c: u64| c >= ms && c + CHUNK <= me;
        let (c0, c1) = (start & !(CHUNK - 1), (end - 1) & !(CHUNK - 1));
        // What VRAM would take in small ranges: all of the span where none
        // of its chunks lies inside the mapping.
        if end > me || inside(c0) || inside(c1) || c1 > c0 + CHUNK {
            return None;
        }
        // A packed neighbour may share its end pages: the pages between say.
        let (ss, se) = (start + PAGE, end - PAGE);
        if se <= ss {
            return None;
        }
        let seen = self.observe_samples(ss, se, BIRTH_SAMPLES)?;
        if seen.samples == 0 || seen.unpopulated != seen.samples {
            return None;
        }
        crate::log!(crate::log::Level::Debug, "alloc_vram {} device {} to {target}: never populated, and no 2 MiB chunk of it inside its mapping: born there in system memory, not in small ranges of VRAM (birth in pieces)", Span(start, end - start), dev.slot);
        // The zero page over what is born in system memory: its bind, the
        // GPU's writes there and any later move take 64 KiB ranges, not 4
        // KiB ones (`Context::populate_edges`; ten seeds: 140 programs up
        // to 38 % faster, 245 slower by at most 3 %, its page-table read).
        if self.config.zero_page {
            self.populate_edges(start, end);
        }
        let r = self.place(a, Pagemap::System, flags, placed);
        if r.is_ok() {
            self.mark_born_in_pieces(start, end);
        }
        Some(r)
    }

    /// A never-populated span born split at `cut`: [start, cut) in `target`
    /// (cleared there: nothing copied), the rest in system memory, where
    /// the page table `seen` it unpopulated. The result says split, in
    /// system memory (SVM_RESULT_SPLIT).
    fn place_split(&self, a: &Attempt, cut: u64, target: Pagemap, seen: Seen, placed: &mut Placed) -> Result<()> {
        let Attempt { start, end, flags, .. } = *a;
        let mut head = Attempt { end: cut, summary: self.summary(start, cut), seen: None, ..*a };
        self.place(&mut head, target, flags, placed)?;
        placed.bytes_moved = 0;
        let mut rest = Attempt { start: cut, summary: self.summary(cut, end), seen: Some(seen), ..*a };
        let mut more = Placed::default();
        let r = self.place(&mut rest, Pagemap::System, flags, &mut more);
        placed.ioctls += more.ioctls;
        placed.retries += more.retries;
        placed.vms_applied |= more.vms_applied;
        if r.is_ok() {
            placed.pagemap = Some(Pagemap::System);
            placed.split = true;
        }
        r
    }

    /// Whether any span was born in pieces (the hot paths' one load).
    #[inline]
    pub(super) fn any_born_in_pieces(&self) -> bool {
        self.born_in_pieces.load(Ordering::Relaxed)
    }

    /// Records [start, end) as born in pieces (see `birth_in_pieces`).
    pub(super) fn mark_born_in_pieces(&self, start: u64, end: u64) {
        if let Some(rec) = self.track.write().exact_mut(start, end) {
            rec.born_in_pieces = true;
            self.born_in_pieces.store(true, Ordering::Relaxed);
        }
    }

    /// Whether [start, end) is a span born in pieces that lies in system
    /// memory still: its record holds all of it but an end page a packed
    /// neighbour may have taken (a wider call is not the span). One load
    /// where nothing was.
    pub(super) fn born_in_pieces(&self, start: u64, end: u64) -> bool {
        if !self.any_born_in_pieces() {
            return false;
        }
        let track = self.track.read();
        let born = track.overlapping(start, end).any(|(s, r)| {
            s <= start + PAGE && r.end + PAGE >= end && r.born_in_pieces && r.residency == Some(Pagemap::System) && !track.advice.any(s, r.end)
        });
        born
    }

    /// A later call over a split span: the probe back in system memory
    /// means the CPU used the buffer, and the whole span is held there (the
    /// hand-off); still in VRAM, the owner keeps the split until
    /// [`BUY_AFTER`], and everyone else ends it. None: continue with the
    /// normal flow, over what the records now say.
    pub(super) fn split_review(&self, a: &mut Attempt, target: Pagemap, placed: &mut Placed) -> Option<Result<()>> {
        let Attempt { slots, dev, start, end, .. } = *a;
        let probe = start.checked_add(CHUNK)?;
        let owner = {
            let track = self.track.read();
            let mut it = track.overlapping(start, end);
            let (hs, head) = it.next()?;
            let (rs, rest) = it.next()?;
            if it.next().is_some() || (hs, head.end, rs, rest.end) != (start, probe, probe, end) || !rest.probe_born || rest.residency != Some(Pagemap::System) {
                return None;
            }
            head.residency.and_then(|p| p.device().map(|d| (p, d)))?
        };
        let now = self.driver.now_ns();
        let seen = self.observe_samples(start, probe, 1)?;
        if !seen.all_away() {
            self.learn_birth(1);
            crate::log!(crate::log::Level::Info, "alloc_vram {}: the first chunk of a split birth is back in system memory: the CPU used it, held there for {} ms (hand-off)", Span(start, end - start), self.config.pin_ns / 1_000_000);
            self.rewrite(slots, start, end, |pieces| {
                let mut r = merge_pieces(pieces);
                r.residency = Some(Pagemap::System);
                r.record_move(now);
                r.pinned_until = r.pinned_until.max(now.saturating_add(self.config.pin_ns));
                r.observed_at.store(now.max(1), Ordering::Relaxed);
                r
            });
            a.summary = self.summary(start, end);
            return None;
        }
        let (uses, read) = self.track.read().exact(probe, end).map_or((0, false), |r| (r.uses.load(Ordering::Relaxed), r.probe_read.load(Ordering::Relaxed)));
        // An explicit request ends the split: the owner's buys the rest now.
        if owner.1 == dev.slot && target == owner.0 && uses < BUY_AFTER && !read && a.flags.may_defer() {
            if let Some(rec) = self.track.read().exact(probe, end) {
                rec.use_once();
                if !rec.bound_for(dev.slot) && self.bind_in_system(dev, probe, end - probe, placed) {
                    rec.set_bound(dev.slot, true);
                }
            }
            crate::log!(crate::log::Level::Debug, "alloc_vram {} device {}: split birth kept (its first chunk still in {target}; use {} of {BUY_AFTER} before the rest moves)", Span(start, end - start), dev.slot, uses + 1);
            placed.pagemap = Some(Pagemap::System);
            placed.verified = true;
            placed.split = true;
            return Some(Ok(()));
        }
        crate::log!(crate::log::Level::Debug, "alloc_vram {} device {} to {target}: split birth ended (its first chunk still in {}; {uses} uses, read: {read})", Span(start, end - start), dev.slot, owner.0);
        if owner.1 == dev.slot && target == owner.0 {
            self.learn_birth(-1);
            // The owner buys: only the rest moves, and one record holds the span.
            let mut rest = Attempt { start: probe, end, summary: self.summary(probe, end), seen: None, ..*a };
            let r = self.place(&mut rest, target, a.flags, placed);
            if r.is_ok() {
                self.rewrite(slots, start, end, |pieces| {
                    let mut r = merge_pieces(pieces);
                    r.probe_born = false;
                    r
                });
            }
            return Some(r);
        }
        self.rewrite(slots, start, end, |pieces| {
            let mut r = merge_pieces(pieces);
            r.residency = None;
            r.probe_born = false;
            r
        });
        a.summary = self.summary(start, end);
        None
    }

    /// One outcome of a split birth for the learned score: +1 the CPU took
    /// the buffer, -1 its GPU kept it.
    fn learn_birth(&self, outcome: i32) {
        let _ = self.births.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| Some((s + outcome).clamp(-SCORE_LIMIT, SCORE_LIMIT)));
    }
}
