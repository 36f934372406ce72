//! `evict`: send a range back to system memory on every device that holds
//! it, verified in the page table where it can be read; and the room a
//! placement makes by evicting this context's least recently used ranges.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::record::merge_pieces;
use super::*;

impl Context {
    /// Sends [start, start+size) back to system memory on every device that
    /// holds any of it. Returns the bytes that moved (as far as known).
    pub fn evict(&self, start: u64, size: u64) -> Result<Placed> {
        let end = check_span(start, size)?;
        let t0 = if crate::log::tracing() { crate::trace::now() } else { 0 };
        let r = self.evict_span(start, end);
        if t0 != 0 {
            let outcome = r.as_ref().map_or_else(|e| e.short().to_string(), |p| format!("{} bytes moved", p.bytes_moved));
            crate::trace::span("evict", t0, crate::trace::now(), &format!("{}: {outcome}", crate::log::Span(start, size)));
        }
        r
    }

    fn evict_span(&self, start: u64, end: u64) -> Result<Placed> {
        let size = end - start;
        self.stats.local().evict_calls.fetch_add(1, Ordering::Relaxed);
        let _g = self.ranges.lock(start, end);
        let slots = self.slots.read();
        let mut placed = Placed::default();
        let alive: Vec<Arc<Device>> = slots.iter().filter_map(|s| s.dev.clone()).filter(|d| d.check_alive().is_ok()).collect();
        let summary = self.summary(start, end);
        // Who holds it: the page table says whether anyone does (and who, to
        // a privileged reader); else the record; else every device. Every
        // page of it (`observe_whole`), not a page per chunk: a chunk moved
        // in pieces (a madvise cut it, the CPU pulled back a 64 KiB range)
        // shows a sample in system memory and the rest away, and the
        // request, and the result's VERIFIED, are for all of the span. A
        // record of VRAM does not overrule a walk that finds none.
        // (None where no device has VRAM: every page is in system memory.)
        let walked = if self.any_vram() { self.observe_whole(start, end) } else { None };
        let before = walked.map(|(s, _)| s);
        let named = before.and_then(|s| Context::named_pagemap(&slots, &s));
        let holders: Vec<Arc<Device>> = match (before, named, summary.residency) {
            _ if !self.any_vram() => Vec::new(),
            (Some(s), _, _) if s.in_system() => Vec::new(),
            (_, Some(Pagemap::Vram { device, .. }), _) => alive.iter().filter(|d| d.slot == device).cloned().collect(),
            (None, _, Some(Pagemap::System)) => Vec::new(),
            (_, _, Some(Pagemap::Vram { device, .. })) => alive.iter().filter(|d| d.slot == device).cloned().collect(),
            _ => alive.clone(),
        };
        for d in &holders {
            match self.prefetch(d, start, size, 0, &mut placed) {
                Ok(()) => {}
                Err(e) => {
                    if self.suffer(e, d, None) != super::errors::Answer::DeviceGone {
                        return Err(e);
                    }
                }
            }
        }
        if !holders.is_empty() {
            // What the page table showed away from system memory, else all of it.
            placed.bytes_moved = walked.map_or(size, |(_, away)| away);
            self.stats.local().evictions.fetch_add(1, Ordering::Relaxed);
            crate::log!(crate::log::Level::Info, "evict {}: sent back to system memory from {} device(s)", crate::log::Span(start, size), holders.len());
        }
        if before.is_some() {
            let in_system = |c: &Context| c.observe_whole(start, end).is_some_and(|(s, _)| s.in_system());
            placed.verified = holders.is_empty() || in_system(self);
            if !placed.verified {
                // Swallowed failure, or a GPU fault raced us: once more, from every device.
                placed.retries += 1;
                self.stats.count_errno(Errno::EBUSY);
                for d in &alive {
                    let _ = self.prefetch(d, start, size, 0, &mut placed);
                }
                placed.verified = in_system(self);
            }
            if !placed.verified {
                // It will not stay: concurrent GPU accesses keep pulling it back.
                return Err(Errno::EBUSY);
            }
        }
        let now = self.driver.now_ns();
        let moved = !holders.is_empty();
        let observed_at = if placed.verified { now.max(1) } else { 0 };
        self.rewrite(&slots, start, end, |pieces| {
            let mut r = merge_pieces(pieces);
            r.residency = Some(Pagemap::System);
            // Sent there at the runtime's request.
            *r.explicit.get_mut() = true;
            r.observed_at.store(observed_at, Ordering::Relaxed);
            if moved {
                r.record_move(now);
            }
            r
        });
        if moved {
            self.carried_back(&slots, start, end, named.or(summary.residency).filter(|p| p.device().is_some()));
        }
        placed.pagemap = Some(Pagemap::System);
        Ok(placed)
    }

    /// ENOMEM/ENOSPC: evicts this context's least recently used ranges on
    /// `pm` (not overlapping the one being placed) until `size` bytes are
    /// free. A victim another call is placing right now is skipped.
    pub(super) fn make_room(&self, slots: &[Slot], pm: Pagemap, start: u64, end: u64, placed: &mut Placed) {
        let Some(owner) = Context::check_pagemap(slots, pm).ok().flatten().cloned() else { return };
        let victims = self.track.read().lru_on(pm);
        let mut freed = 0;
        for (s, e) in victims {
            if freed >= end - start {
                break;
            }
            if s < end && start < e {
                continue;
            }
            let Some(_victim) = self.ranges.try_lock(s, e) else { continue };
            // Its record may have changed since the LRU list was read.
            if self.summary(s, e).residency != Some(pm) {
                continue;
            }
            if self.prefetch(&owner, s, e - s, 0, placed).is_ok() {
                freed += e - s;
                self.stats.local().lru_evictions.fetch_add(1, Ordering::Relaxed);
                crate::log!(crate::log::Level::Info, "evicted {} from {pm} (least recently used) to make room", crate::log::Span(s, e - s));
                self.rewrite(slots, s, e, |pieces| {
                    let mut r = merge_pieces(pieces);
                    r.residency = Some(Pagemap::System);
                    r.observed_at.store(0, Ordering::Relaxed);
                    r
                });
                self.carried_back(slots, s, e, Some(pm));
            }
        }
    }
}
