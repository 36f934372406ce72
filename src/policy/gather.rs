//! The gather rule: small reads served in system memory (a gather's pieces,
//! embedding lookups, a table every device reads at random) merge into one
//! span, settled in system memory on every device VM and bound once per
//! device, so that a runtime calling per piece pays a lookup, not a
//! page-table read and a bind per piece.
//!
//! A piece with no record near a gather span seeds one: its 2 MiB chunk
//! (the kernel's SVM range, docs/kernel-model.md §2, which the piece's own
//! bind would cover anyway). A piece within [`MAX_GAP`] of a gather span,
//! with nothing recorded between, widens the span over the gap. The gap is
//! memory the library never placed: every placement of this library is
//! recorded, so only a GPU fault of a launch the runtime did not announce
//! could have moved it, and a few page-table samples check that it is
//! present in system memory (so the bind moves nothing and populates
//! nothing) before the span takes it. Chunk-aligned edges keep the madvise
//! from splitting a bound SVM range (which would unbind it and pay a TLB
//! invalidation).

use std::sync::atomic::Ordering;

use super::*;
use crate::log::Span;

/// The widest gap a gather span grows over in one step. A table read at
/// random fills in from both ends in about 2 ln(pieces) steps; a gap this
/// wide between two small reads is still most likely one allocation.
const MAX_GAP: u64 = 1 << 30;

/// Page-table samples per gap (one page each, 0.9 us, docs/cost-model.md):
/// enough to see a gap that is unpopulated or lies in VRAM as a whole.
const GAP_SAMPLES: u64 = 4;

impl Context {
    /// Places a small span `target`ed at system memory by the gather rule:
    /// None where the rule does not apply (the slow path then places the
    /// piece alone), else how it ended.
    pub(super) fn gather(&self, dev: &Device, start: u64, end: u64, out: &mut Placed) -> Option<Result<()>> {
        if !dev.has_vram() || !self.access.available() {
            return None;
        }
        let (ws, we) = self.gather_span(start, end)?;
        let _g = self.ranges.lock(ws, we);
        let slots = self.slots.read();
        // Another call may have changed the records while we waited.
        if self.gather_span(start, end) != Some((ws, we)) {
            return None;
        }
        // The gaps: what no record covers, sampled before the span takes them.
        let mut gaps = Vec::new();
        {
            let track = self.track.read();
            let mut at = ws;
            for (s, r) in track.overlapping(ws, we) {
                if s > at {
                    gaps.push((at, s));
                }
                at = r.end;
            }
            if at < we {
                gaps.push((at, we));
            }
        }
        for &(s, e) in &gaps {
            let seen = self.observe_samples(s, e, GAP_SAMPLES)?;
            if seen.system != seen.samples {
                crate::log!(crate::log::Level::Debug, "gather {}: the gap {} is not all present in system memory ({} of {} samples): the piece is placed alone", Span(start, end - start), Span(s, e - s), seen.system, seen.samples);
                return None;
            }
        }
        // Settled in system memory on every device VM: no GPU fault moves it,
        // so later pieces need no look. One madvise per VM over the span; the
        // kernel leaves VMAs already so alone (no zap).
        let summary = self.summary(ws, we);
        let mut applied = Vec::new();
        for d in slots.iter().filter_map(|s| s.dev.as_ref()).filter(|d| d.has_vram() && d.check_alive().is_ok()) {
            let mut a = summary.attrs(d.slot);
            if a.pref == PrefApplied::DefaultSystem && gaps.is_empty() {
                continue;
            }
            if self.madvise_pref(&slots, d, ws, we, PrefApplied::DefaultSystem, out).is_err() {
                // Leave the span as it was; the slow path places the piece.
                self.record(&slots, ws, we, &applied, |_| {});
                return None;
            }
            a.pref = PrefApplied::DefaultSystem;
            applied.push((d.slot, a));
            out.vms_applied |= 1 << d.slot;
        }
        let bound = self.bind_in_system(dev, ws, we - ws, out);
        let now = self.driver.now_ns();
        crate::log!(
            crate::log::Level::Debug,
            "alloc_vram {} device {}: gather, placed as {} in system memory ({} gaps sampled, {} VMs advised, bound: {bound})",
            Span(start, end - start),
            dev.slot,
            Span(ws, we - ws),
            gaps.len(),
            applied.len()
        );
        // `record` sets what the madvises applied (and clears the bound bit
        // they zapped), then the rest.
        self.record(&slots, ws, we, &applied, |r| {
            r.residency = Some(Pagemap::System);
            r.gather = true;
            r.observed_at.store(now.max(1), Ordering::Relaxed);
            r.last_used.store(now, Ordering::Relaxed);
            if bound {
                r.set_bound(dev.slot, true);
            }
            r.use_once();
            r.read_in_place(dev.slot);
        });
        *out = Placed { pagemap: Some(Pagemap::System), verified: true, ..*out };
        Some(Ok(()))
    }

    /// The span a small read of [start, end) in system memory widens to:
    /// its 2 MiB chunk (with the records there, all in system memory),
    /// joined to the gather span on either side within [`MAX_GAP`]. None
    /// where a record in the chunk lies elsewhere, or is neither a gather
    /// span nor inside the chunk (the slow path places the piece alone).
    fn gather_span(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let track = self.track.read();
        let (cs, ce) = (start & !(CHUNK - 1), end.next_multiple_of(CHUNK).min(VA_LIMIT));
        let (mut ws, mut we) = (cs, ce);
        for (s, r) in track.overlapping(cs, ce) {
            if r.residency != Some(Pagemap::System) || !(r.gather || (s >= cs && r.end <= ce)) {
                return None;
            }
            ws = ws.min(s);
            we = we.max(r.end);
        }
        if let Some((s, _)) = track.before(ws).filter(|&(_, r)| r.gather && r.residency == Some(Pagemap::System) && ws - r.end <= MAX_GAP) {
            ws = s;
        }
        if let Some((_, r)) = track.after(we).filter(|&(s, r)| r.gather && r.residency == Some(Pagemap::System) && s - we <= MAX_GAP) {
            we = r.end;
        }
        Some((ws, we))
    }
}
