//! The runtime's advice over the address space (svm_set_preferred_location
//! for every device, svm_device_set_preferred_location for one), kept apart
//! from the records: advice is the runtime's, per device and per byte, and
//! lives until the runtime changes it or the device closes. A record
//! rewritten whole by a placement, a look or a free never takes it from
//! part of its span (devices that advised the halves of a buffer each keep
//! theirs when one places all of it).

use std::collections::BTreeMap;

use crate::topology::Pagemap;

/// The runtime's preferred locations over a span: one for every device
/// (svm_set_preferred_location) and each device's own
/// (svm_device_set_preferred_location), which Level Zero advises per
/// `hDevice` and Intel's compute runtime applies to that device's VMs only
/// (`drm_memory_manager.cpp`): one device's advice leaves another's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preferred {
    /// For every device, those opened later too, unless `own` says otherwise.
    every: Option<Pagemap>,
    /// Devices' own, by slot (ascending; None: cleared for that device
    /// alone), each differing from `every`. Empty unless the runtime
    /// advised per device: no allocation otherwise.
    own: Vec<(u16, Option<Pagemap>)>,
}

impl Preferred {
    /// Device `slot`'s preferred location, if any.
    pub fn for_device(&self, slot: u16) -> Option<Pagemap> {
        match self.own.binary_search_by_key(&slot, |&(s, _)| s) {
            Ok(i) => self.own[i].1,
            Err(_) => self.every,
        }
    }

    /// Whether any device may have one (the one for every device counts
    /// even where each open device cleared its own: a hint read
    /// cautiously).
    pub fn any(&self) -> bool {
        self.every.is_some() || self.own.iter().any(|(_, p)| p.is_some())
    }

    /// The one for every device (each device's own aside).
    pub fn every(&self) -> Option<Pagemap> {
        self.every
    }

    /// Sets (`Some`) or clears (`None`) the preferred location of one
    /// device (`only`) or of every device. Advice for every device
    /// replaces each device's own but those of `kept` (bit = slot): devices
    /// whose VMs it did not reach (no link) keep what they had.
    pub fn set(&mut self, pm: Option<Pagemap>, only: Option<u16>, kept: u64) {
        match only {
            None => {
                let before = std::mem::replace(self, Preferred { every: pm, own: Vec::new() });
                let mut k = kept;
                while k != 0 {
                    let slot = k.trailing_zeros() as u16;
                    k &= k - 1;
                    self.put(slot, before.for_device(slot));
                }
            }
            Some(slot) => self.put(slot, pm),
        }
    }

    fn put(&mut self, slot: u16, pm: Option<Pagemap>) {
        match self.own.binary_search_by_key(&slot, |&(s, _)| s) {
            Ok(i) if pm == self.every => {
                self.own.remove(i);
            }
            Ok(i) => self.own[i].1 = pm,
            Err(_) if pm == self.every => {}
            Err(i) => self.own.insert(i, (slot, pm)),
        }
    }

    /// Forgets a closed device: its own preference, and any preference
    /// for its VRAM, which is gone.
    pub fn forget_device(&mut self, slot: u16) {
        let gone = |p: Option<Pagemap>| p.and_then(|p| p.device()) == Some(slot);
        if gone(self.every) {
            self.every = None;
        }
        self.own.retain(|&(s, _)| s != slot);
        for e in &mut self.own {
            if gone(e.1) {
                e.1 = None;
            }
        }
        let every = self.every;
        self.own.retain(|&(_, p)| p != every);
    }
}

/// An interval map of advice: no two pieces overlap, a gap has none.
#[derive(Default)]
pub struct Advice {
    /// Start -> (end, advice), never the empty advice.
    pieces: BTreeMap<u64, (u64, Preferred)>,
}

impl Advice {
    /// The pieces overlapping [start, end), in order, with their starts.
    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64, &Preferred)> {
        let first = self.pieces.range(..=start).next_back().filter(|(_, (e, _))| *e > start).map_or(start, |(&s, _)| s);
        self.pieces.range(first..end).filter(move |(_, (e, _))| *e > start).map(|(&s, (e, p))| (s, *e, p))
    }

    /// The pieces of [start, end) that are the span's own: all but a
    /// piece sharing at most an end page with it (a packed neighbour's),
    /// unless it holds all of the span. Clipped to the span.
    /// In no order: one descent of the map (the lookups on resolve's path).
    fn own(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64, &Preferred)> {
        const PAGE: u64 = 4096;
        let back = self.pieces.range(..end).rev().take_while(move |(_, (e, _))| *e > start);
        back.map(move |(&s, (e, p))| (s.max(start), (*e).min(end), p)).filter(move |&(s, e, _)| {
            (s, e) == (start, end) || e - s > PAGE || (s > start && e < end)
        })
    }

    fn split_at(&mut self, at: u64) {
        let Some((&s, (e, p))) = self.pieces.range(..at).next_back() else { return };
        if *e > at {
            let right = (*e, p.clone());
            self.pieces.get_mut(&s).expect("the piece just found").0 = at;
            self.pieces.insert(at, right);
        }
    }

    /// Changes the advice over [start, end) with `f`, gaps included (as no
    /// advice); pieces left with none are dropped, equal neighbours joined.
    pub fn update(&mut self, start: u64, end: u64, f: impl Fn(&mut Preferred)) {
        self.split_at(start);
        self.split_at(end);
        let mut at = start;
        let mut gaps = Vec::new();
        for (s, e, _) in self.overlapping(start, end) {
            if s > at {
                gaps.push((at, s));
            }
            at = e;
        }
        if at < end {
            gaps.push((at, end));
        }
        for (s, e) in gaps {
            self.pieces.insert(s, (e, Preferred::default()));
        }
        let starts: Vec<u64> = self.pieces.range(start..end).map(|(&s, _)| s).collect();
        for s in starts {
            let piece = self.pieces.get_mut(&s).expect("a piece of the span");
            f(&mut piece.1);
            if piece.1 == Preferred::default() {
                self.pieces.remove(&s);
            }
        }
        self.join(start, end);
    }

    /// Joins equal neighbours from the piece before `start` to the one at `end`.
    fn join(&mut self, start: u64, end: u64) {
        let from = self.pieces.range(..start).next_back().map_or(start, |(&s, _)| s);
        let starts: Vec<u64> = self.pieces.range(from..=end).map(|(&s, _)| s).collect();
        let mut prev: Option<u64> = None;
        for s in starts {
            if let Some(p) = prev {
                let (pe, pp) = &self.pieces[&p];
                let (e, sp) = &self.pieces[&s];
                if *pe == s && pp == sp {
                    let e = *e;
                    self.pieces.remove(&s);
                    self.pieces.get_mut(&p).expect("the piece before").0 = e;
                    continue;
                }
            }
            prev = Some(s);
        }
    }

    /// Device `slot`'s advice over all of [start, end): the one every byte
    /// holds, None where a byte has none or another.
    pub fn for_device(&self, start: u64, end: u64, slot: u16) -> Option<Pagemap> {
        let (mut at, mut value) = (start, None);
        for (s, e, p) in self.overlapping(start, end) {
            let v = p.for_device(slot).filter(|_| s <= at)?;
            if value.is_some_and(|x| x != v) {
                return None;
            }
            (value, at) = (Some(v), e);
        }
        value.filter(|_| at >= end)
    }

    /// Device `slot`'s advice for a placement of [start, end): the one
    /// its advised pieces there agree on, where they hold at least half of
    /// the span (a neighbour's advice sharing a page with it, or the end
    /// of an advised buffer a wider span takes in, does not speak for the
    /// rest). None where none does, or two differ. One lookup where the
    /// runtime advised nothing.
    pub fn prevailing(&self, start: u64, end: u64, slot: u16) -> Option<Pagemap> {
        if self.pieces.is_empty() {
            return None;
        }
        let (mut value, mut held) = (None, 0u64);
        for (s, e, p) in self.own(start, end) {
            let Some(v) = p.for_device(slot) else { continue };
            if value.is_some_and(|x| x != v) {
                return None;
            }
            value = Some(v);
            held += e - s;
        }
        value.filter(|_| held * 2 >= end - start)
    }

    /// Device `slot`'s advice on the pieces of [start, end) that have one.
    pub fn pieces_for(&self, start: u64, end: u64, slot: u16) -> impl Iterator<Item = Pagemap> + '_ {
        self.overlapping(start, end).filter_map(move |(_, _, p)| p.for_device(slot))
    }

    /// Whether device `slot` has advice on [start, end) but a neighbour's end page.
    pub fn any_own_for(&self, start: u64, end: u64, slot: u16) -> bool {
        !self.pieces.is_empty() && self.own(start, end).any(|(_, _, p)| p.for_device(slot).is_some())
    }

    /// Whether device `slot` has advice on any byte of [start, end).
    pub fn any_for(&self, start: u64, end: u64, slot: u16) -> bool {
        !self.pieces.is_empty() && self.pieces.range(..end).rev().take_while(|(_, (e, _))| *e > start).any(|(_, (_, p))| p.for_device(slot).is_some())
    }

    /// Whether any device may have advice on [start, end)
    /// (`Preferred::any`): on all of it, or on more than a page of it (a
    /// packed neighbour's advice sharing an end page with a span is the
    /// neighbour's, as everywhere in the records). One lookup where the
    /// runtime advised nothing.
    pub fn any(&self, start: u64, end: u64) -> bool {
        const PAGE: u64 = 4096;
        if self.pieces.is_empty() {
            return false;
        }
        let held: u64 = self.overlapping(start, end).filter(|(_, _, p)| p.any()).map(|(s, e, _)| e.min(end) - s.max(start)).sum();
        held == end - start || self.own(start, end).any(|(_, _, p)| p.any()) && held > PAGE
    }

    /// The advice over exactly [start, end) where one piece holds all of
    /// it (None where the span holds several, or none).
    pub fn whole(&self, start: u64, end: u64) -> Option<&Preferred> {
        let (_, (e, p)) = self.pieces.range(..=start).next_back()?;
        (*e >= end).then_some(p)
    }

    /// Forgets a closed device's advice, and advice for its VRAM.
    pub fn forget_device(&mut self, slot: u16) {
        self.pieces.retain(|_, (_, p)| {
            p.forget_device(slot);
            *p != Preferred::default()
        });
        self.join(0, u64::MAX);
    }

    /// Pieces kept.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS: Option<Pagemap> = Some(Pagemap::System);

    #[test]
    fn preferred_is_per_device() {
        let v1 = Pagemap::Vram { device: 1, tile: 0 };
        let mut a = Preferred::default();
        a.set(SYS, Some(0), 0);
        a.set(Some(v1), Some(1), 0);
        assert_eq!((a.for_device(0), a.for_device(1), a.for_device(2)), (SYS, Some(v1), None));
        let mut b = Preferred::default();
        b.set(SYS, None, 0);
        b.set(None, Some(2), 0);
        assert_eq!((b.for_device(0), b.for_device(2), b.for_device(5)), (SYS, None, SYS));
        // Every device's replaces each one's own.
        a.set(SYS, None, 0);
        assert_eq!((a.every(), a.for_device(1)), (SYS, SYS));
        a.set(Some(v1), Some(0), 0);
        a.forget_device(1);
        assert_eq!((a.for_device(0), a.for_device(3)), (None, SYS), "device 1's VRAM is gone");
        a.set(None, Some(0), 0);
        // Advice for every device, device 3 unreached: it keeps its own.
        a.set(Some(v1), Some(3), 0);
        a.set(SYS, None, 1 << 3 | 1 << 5);
        assert_eq!((a.for_device(3), a.for_device(5), a.for_device(0)), (Some(v1), SYS, SYS));
        a.set(None, None, 0);
        assert!(!a.any());
    }

    /// Two devices advise the halves of a span: each keeps its own over
    /// its half, the whole span has neither's, and clearing joins pieces.
    #[test]
    fn advice_is_per_byte_and_per_device() {
        let v1 = Pagemap::Vram { device: 1, tile: 0 };
        let mut a = Advice::default();
        assert!(!a.any(0, 100));
        a.update(0, 50, |p| p.set(SYS, Some(0), 0));
        a.update(50, 100, |p| p.set(Some(v1), Some(1), 0));
        assert_eq!((a.for_device(0, 50, 0), a.for_device(50, 100, 1)), (SYS, Some(v1)));
        assert_eq!((a.for_device(0, 100, 0), a.for_device(0, 100, 1)), (None, None), "half each");
        assert!(a.any_for(0, 100, 0) && !a.any_for(50, 100, 0));
        // Device 1 over all of it: device 0 keeps its half.
        a.update(0, 100, |p| p.set(Some(v1), Some(1), 0));
        assert_eq!((a.for_device(0, 50, 0), a.for_device(0, 100, 1)), (SYS, Some(v1)));
        assert_eq!(a.len(), 2);
        assert!(a.whole(0, 50).is_some() && a.whole(0, 100).is_none() && a.whole(10, 20).is_some());
        // Device 0's cleared: one piece again; every device's cleared: none.
        a.update(0, 100, |p| p.set(None, Some(0), 0));
        assert_eq!(a.len(), 1);
        a.update(0, 100, |p| p.set(None, None, 0));
        assert!(a.is_empty() && !a.any(0, 100));
        // A gap inside the span is no advice.
        a.update(0, 10, |p| p.set(SYS, None, 0));
        a.update(20, 30, |p| p.set(SYS, None, 0));
        assert_eq!((a.for_device(0, 30, 3), a.for_device(20, 30, 3)), (None, SYS));
        a.forget_device(3);
        assert_eq!(a.for_device(20, 30, 3), SYS, "advice for every device stays");
        a.update(0, 30, |p| p.set(Some(v1), None, 0));
        a.forget_device(1);
        assert!(a.is_empty(), "device 1's VRAM is gone");
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    const SYS: Option<Pagemap> = Some(Pagemap::System);
    const P: u64 = 4096;

    /// `any`: "on all of it": a two-page span advised over all of it in
    /// two pieces (device 0's own on one page, every device's on the
    /// other) reads as unadvised.
    #[test]
    fn any_sees_a_span_advised_all_over_in_page_pieces() {
        let mut a = Advice::default();
        a.update(0, P, |p| p.set(SYS, Some(0), 0));
        a.update(P, 2 * P, |p| p.set(SYS, None, 0));
        assert_eq!(a.for_device(0, 2 * P, 0), SYS);
        assert!(a.any(0, 2 * P), "advised over all of it");
    }

    /// `forget_device` leaves equal neighbours apart: `whole` then finds
    /// no piece for a span every byte of which holds the same advice, and
    /// `preferred_unchanged`'s fast path misses for every device's advice.
    #[test]
    fn forget_device_joins_equal_neighbours() {
        let v1 = Pagemap::Vram { device: 1, tile: 0 };
        let mut a = Advice::default();
        a.update(0, 100, |p| p.set(SYS, None, 0));
        a.update(0, 50, |p| p.set(Some(v1), Some(1), 0));
        a.forget_device(1);
        assert_eq!(a.len(), 1, "[0,50) and [50,100) hold the same advice");
        assert!(a.whole(0, 100).is_some_and(|p| p.every() == SYS));
    }
}
