//! What the library knows per range, without asking the kernel: where the
//! range was placed (and when an observation of the page table last
//! confirmed it), the
//! attributes applied on each device's VM, its migration history (for the
//! thrash guard), and when it was last placed or confirmed (LRU per pagemap).
//!
//! Records live in an interval map over the CPU address space: no two
//! overlap, and a span no record covers has kernel defaults and unknown
//! residency. The runtime's advice lives in a second map beside them
//! (`advice`): it is the runtime's, per device and per byte, and outlives
//! the rewrites of the records.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::driver::xe::PreferredLoc;
use crate::topology::Pagemap;
use crate::uapi::DRM_XE_ATOMIC_UNDEFINED;

mod advice;
pub use advice::{Advice, Preferred};

/// A preferred location the library applied to one VM. `Device` names the
/// target by device slot (its fd is the context's business).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PrefApplied {
    /// DEFAULT_DEVICE: the kernel's default after the mirror bind.
    #[default]
    DefaultDevice,
    /// `DEFAULT_SYSTEM`.
    DefaultSystem,
    /// A device's VRAM region.
    Device {
        /// The device's slot.
        slot: u16,
        /// Its VRAM region instance.
        instance: u16,
    },
}

impl PrefApplied {
    /// As the madvise argument, with `fd_of` giving each slot's fd.
    pub fn to_uapi(self, fd_of: impl Fn(u16) -> i32) -> PreferredLoc {
        match self {
            PrefApplied::DefaultDevice => PreferredLoc::DefaultDevice,
            PrefApplied::DefaultSystem => PreferredLoc::DefaultSystem,
            PrefApplied::Device { slot, instance } => PreferredLoc::Device { devmem_fd: fd_of(slot), region_instance: instance },
        }
    }
}

/// Attributes applied to one device's VM over a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevAttrs {
    /// The preferred location applied.
    pub pref: PrefApplied,
    /// The atomic mode applied.
    pub atomic: u32,
}

impl Default for DevAttrs {
    fn default() -> Self {
        DevAttrs { pref: PrefApplied::DefaultDevice, atomic: DRM_XE_ATOMIC_UNDEFINED }
    }
}

impl DevAttrs {
    /// Not known: values no madvise sets, so the next call re-applies its
    /// own (pieces that disagree merged, or the kernel may have reset them).
    pub const UNKNOWN: DevAttrs = DevAttrs { pref: PrefApplied::Device { slot: u16::MAX, instance: 0 }, atomic: u32::MAX };

    /// What two pieces' attributes say of the span they make up: each
    /// attribute where both agree, unknown where they differ. The two are
    /// set by separate madvise calls (DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC,
    /// _ATOMIC), so a preferred location that differs says nothing of the
    /// atomic mode (an atomic span whose chunk a peer's read advice
    /// covered keeps its known mode: policy/chunks.rs `atomic_rest`).
    pub fn merged(self, other: DevAttrs) -> DevAttrs {
        DevAttrs {
            pref: if self.pref == other.pref { self.pref } else { DevAttrs::UNKNOWN.pref },
            atomic: if self.atomic == other.atomic { self.atomic } else { DevAttrs::UNKNOWN.atomic },
        }
    }
}

/// Moves remembered per range, for the thrash guard.
pub const HISTORY: usize = 16;
/// Uses counted between two moves at most: past it the range is clearly
/// not moving on every use, and the hot path stops writing the counter.
pub const USES_SATURATE: u32 = 8;

/// One move of a range: when, and how often it had been used since the
/// move before (saturating at [`USES_SATURATE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    /// When (driver clock).
    pub at: u64,
    /// Uses between the move before and this one.
    pub uses_before: u32,
    /// Someone else took it back to system memory (the page table showed
    /// it there, away from the VRAM the library put it in): the CPU
    /// touched it, or the kernel evicted it.
    pub pulled_back: bool,
}

#[derive(Debug)]
/// What the library knows of one span.
pub struct Record {
    /// One past its last byte (the key is its start).
    pub end: u64,
    /// Where the library placed it (None: unknown).
    pub residency: Option<Pagemap>,
    /// Driver clock when the page table last confirmed `residency` (0: never).
    pub observed_at: AtomicU64,
    /// Driver clock when a launch that used it was reported done, since
    /// the page table last confirmed it (0: none): the host may have
    /// touched it after (policy's freshness).
    pub reported_at: AtomicU64,
    /// Applied attributes, by device slot; slots beyond the end have defaults.
    pub attrs: Vec<DevAttrs>,
    /// The most recent moves, newest last.
    pub moves: Vec<Move>,
    /// Placement calls that found or put the range here since its last move.
    pub uses: AtomicU32,
    /// Until when the thrash guard keeps it where it is.
    pub pinned_until: u64,
    /// Last time it was placed or found in place (LRU among this context's ranges).
    pub last_used: AtomicU64,
    /// The runtime's read-mostly hint (Level Zero SET_READ_MOSTLY): read by
    /// several devices, rarely written (no kernel attribute; resolve's).
    pub read_mostly: bool,
    /// Devices (bit = slot, slots below 64) that read it in place, from
    /// system memory, since its last move: resolve's rent-or-buy history.
    pub remote_readers: AtomicU64,
    /// Devices (bit = slot) that read it while it lay in another device's
    /// VRAM, since it was last written: moves do not clear it, a write
    /// does. resolve's several-readers rule for data a peer holds.
    pub peer_readers: AtomicU64,
    /// Devices (bit = slot) whose reported launches left it to their
    /// faults while `residency` named another device's VRAM, with no move
    /// of it recorded between the leave and the report: their faults may
    /// have taken what their kernels touched, which an unprivileged
    /// page-table read cannot tell from where the record says. Cleared
    /// where the library places it or a look settles where it is.
    pub faulted_by: AtomicU64,
    /// Device VMs (bit = slot) a prefetch of the library bound it on since
    /// its last move or madvise there: a range in system memory a device
    /// never had bound is bound for it once (a queued prefetch), not left
    /// to fault range by range. A hint: the kernel may unbind without the
    /// library seeing it (munmap, CPU events), and then the GPU faults.
    pub bound: AtomicU64,
    /// The rest of a split birth: the chunk just before it is the probe,
    /// born in VRAM (policy's split-birth rule).
    pub probe_born: bool,
    /// Born in system memory where its VRAM birth would have taken 4 KiB
    /// ranges (policy's birth in pieces rule): served there.
    pub born_in_pieces: bool,
    /// A read of the split span was resolved since its birth: the GPU
    /// uses what it wrote (policy's split-birth rule then buys at once).
    pub probe_read: AtomicBool,
    /// Created by a placement's madvise widened over the rest of its 2 MiB
    /// chunk (policy's chunk sides), where nothing but gaps and such sides
    /// lay: its attributes are that widening's alone. Cleared by every
    /// other write of the record (policy's `merge_pieces`) and where a span
    /// inside it is left to the faults.
    pub side: AtomicBool,
    /// Placed or found where the runtime named since it was last written
    /// otherwise: `svm_alloc_vram` without SVM_ALLOC_ENGINE, a batch, an
    /// eviction, or the runtime's own prefetch the default engine ran for
    /// it (policy/prefetch.rs); an explicit request, which no rule of the
    /// engine moves for another span.
    pub explicit: AtomicBool,
}

impl Clone for Record {
    fn clone(&self) -> Self {
        Record {
            end: self.end,
            residency: self.residency,
            observed_at: AtomicU64::new(self.observed_at.load(Ordering::Relaxed)),
            reported_at: AtomicU64::new(self.reported_at.load(Ordering::Relaxed)),
            attrs: self.attrs.clone(),
            moves: self.moves.clone(),
            uses: AtomicU32::new(self.uses.load(Ordering::Relaxed)),
            pinned_until: self.pinned_until,
            last_used: AtomicU64::new(self.last_used.load(Ordering::Relaxed)),
            read_mostly: self.read_mostly,
            remote_readers: AtomicU64::new(self.remote_readers.load(Ordering::Relaxed)),
            peer_readers: AtomicU64::new(self.peer_readers.load(Ordering::Relaxed)),
            faulted_by: AtomicU64::new(self.faulted_by.load(Ordering::Relaxed)),
            bound: AtomicU64::new(self.bound.load(Ordering::Relaxed)),
            probe_born: self.probe_born,
            born_in_pieces: self.born_in_pieces,
            probe_read: AtomicBool::new(self.probe_read.load(Ordering::Relaxed)),
            side: AtomicBool::new(self.side.load(Ordering::Relaxed)),
            explicit: AtomicBool::new(self.explicit.load(Ordering::Relaxed)),
        }
    }
}

impl Record {
    /// A record with nothing known.
    pub fn new(end: u64) -> Self {
        Record {
            end,
            residency: None,
            observed_at: AtomicU64::new(0),
            reported_at: AtomicU64::new(0),
            attrs: Vec::new(),
            moves: Vec::new(),
            uses: AtomicU32::new(0),
            pinned_until: 0,
            last_used: AtomicU64::new(0),
            read_mostly: false,
            remote_readers: AtomicU64::new(0),
            peer_readers: AtomicU64::new(0),
            faulted_by: AtomicU64::new(0),
            bound: AtomicU64::new(0),
            probe_born: false,
            born_in_pieces: false,
            probe_read: AtomicBool::new(false),
            side: AtomicBool::new(false),
            explicit: AtomicBool::new(false),
        }
    }

    /// A widened side (`side`) with nothing placed, found, used, read,
    /// bound, pinned or moved there since and no read-mostly hint (the
    /// runtime's advice is `Track::advice`'s, which callers check): its
    /// attributes are an earlier widening's alone, which the next widening
    /// may replace.
    pub fn is_side(&self) -> bool {
        let zero = |a: &AtomicU64| a.load(Ordering::Relaxed) == 0;
        self.side.load(Ordering::Relaxed)
            && self.residency.is_none()
            && !self.read_mostly
            && self.moves.is_empty()
            && self.pinned_until == 0
            && self.uses.load(Ordering::Relaxed) == 0
            && [&self.last_used, &self.remote_readers, &self.peer_readers, &self.faulted_by, &self.bound].into_iter().all(zero)
            && !(self.probe_born || self.born_in_pieces)
    }

    /// The attributes applied to a device's VM.
    pub fn attrs(&self, slot: u16) -> DevAttrs {
        self.attrs.get(slot as usize).copied().unwrap_or_default()
    }

    /// Records the attributes applied to a device's VM.
    pub fn set_attrs(&mut self, slot: u16, a: DevAttrs) {
        if self.attrs.len() <= slot as usize {
            self.attrs.resize(slot as usize + 1, DevAttrs::default());
        }
        self.attrs[slot as usize] = a;
    }

    /// Moves within `window` before `now`.
    pub fn moves_within(&self, now: u64, window: u64) -> usize {
        self.moves.iter().filter(|m| now.saturating_sub(m.at) <= window).count()
    }

    /// Records a move now: the uses since the last one go into the history.
    pub fn record_move(&mut self, now: u64) {
        self.record_move_by(now, false);
    }

    /// [`Record::record_move`], saying whether it was a pull-back to
    /// system memory by someone else ([`Move::pulled_back`]).
    pub fn record_move_by(&mut self, now: u64, pulled_back: bool) {
        if self.moves.len() == HISTORY {
            self.moves.remove(0);
        }
        self.moves.push(Move { at: now, uses_before: *self.uses.get_mut(), pulled_back });
        *self.uses.get_mut() = 0;
        *self.remote_readers.get_mut() = 0;
        // A migration unmaps the range from every GPU (the MMU notifier).
        *self.bound.get_mut() = 0;
    }

    /// Device `slot`'s reported launch was left to its faults on it at
    /// driver clock `left_at` (`faulted_by`): where `residency` names
    /// another device's VRAM, the launch's faults may have taken what its
    /// kernel touched (marked); where it names `slot`'s, they took back
    /// what its kernel touched (the others' marks spent). Not where a move
    /// of it was recorded since the leave (placed again before the report).
    pub fn faults_ran(&self, slot: u16, left_at: u64) {
        if self.moves.last().is_some_and(|m| m.at > left_at) {
            return;
        }
        let bit = device_bit(slot);
        match self.residency.and_then(|p| p.device()) {
            Some(d) if d == slot => self.spend_faulted_marks(),
            Some(_) if self.faulted_by.load(Ordering::Relaxed) & bit == 0 => {
                self.faulted_by.fetch_or(bit, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Drops the faults' marks (`faulted_by`): the library placed it, or
    /// a look or the named device's own faults settled where it is.
    pub fn spend_faulted_marks(&self) {
        if self.faulted_by.load(Ordering::Relaxed) != 0 {
            self.faulted_by.store(0, Ordering::Relaxed);
        }
    }

    /// The devices other than `slot` whose faults may have taken it since
    /// the library last placed it (`faulted_by`, bit = slot).
    pub fn faulted_by_others(&self, slot: u16) -> u64 {
        self.faulted_by.load(Ordering::Relaxed) & !device_bit(slot)
    }

    /// Whether a prefetch through device `slot`'s VM bound it (since the
    /// last move or madvise there).
    pub fn bound_for(&self, slot: u16) -> bool {
        self.bound.load(Ordering::Relaxed) & device_bit(slot) != 0
    }

    /// Records that device `slot`'s VM has it bound, or not.
    pub fn set_bound(&self, slot: u16, bound: bool) {
        if bound {
            self.bound.fetch_or(device_bit(slot), Ordering::Relaxed);
        } else {
            self.bound.fetch_and(!device_bit(slot), Ordering::Relaxed);
        }
    }

    /// Counts a read in place by device `slot` (rent-or-buy's history); no
    /// write once recorded, so that the hot path does not bounce the line.
    pub fn read_in_place(&self, slot: u16) {
        let bit = device_bit(slot);
        if self.remote_readers.load(Ordering::Relaxed) & bit != bit {
            self.remote_readers.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// The devices other than `slot` and `slot` itself that read it in place
    /// since its last move.
    pub fn readers_in_place(&self, slot: u16) -> (bool, bool) {
        let m = self.remote_readers.load(Ordering::Relaxed);
        let bit = device_bit(slot);
        (m & bit != 0, m & !bit != 0)
    }

    /// Counts a read by device `slot` of the range in a peer's VRAM, and
    /// says whether another device did so since the last write. No write
    /// once recorded.
    pub fn read_from_peer(&self, slot: u16) -> bool {
        let bit = device_bit(slot);
        let m = self.peer_readers.load(Ordering::Relaxed);
        if m & bit != bit {
            self.peer_readers.fetch_or(bit, Ordering::Relaxed);
        }
        m & !bit != 0
    }

    /// Whether device `slot` read it from a peer's VRAM since the last write.
    pub fn read_from_peer_by(&self, slot: u16) -> bool {
        self.peer_readers.load(Ordering::Relaxed) & device_bit(slot) != 0
    }

    /// A write: the readers since the last write start again (no store
    /// when there are none).
    pub fn written(&self) {
        if self.peer_readers.load(Ordering::Relaxed) != 0 {
            self.peer_readers.store(0, Ordering::Relaxed);
        }
    }

    /// Counts one use (a placement call that found the range where it
    /// wanted it); no write once saturated.
    pub fn use_once(&self) {
        if self.uses.load(Ordering::Relaxed) < USES_SATURATE {
            self.uses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Thrashing: at least `max_moves` moves within `window`, and about one
    /// use per move or fewer between them (the range moves as often as it is
    /// used: CPU-GPU ping-pong, devices taking turns). A range used several
    /// times between moves is changing phase, which migration serves better
    /// than remote access (the pin would make every use remote).
    pub fn thrashing(&self, now: u64, window: u64, max_moves: u32) -> bool {
        // No allocation: this runs on resolve's path.
        let recent = || self.moves.iter().filter(|m| now.saturating_sub(m.at) <= window);
        let k = recent().count() as u32;
        if k < max_moves.max(1) {
            return false;
        }
        let uses: u32 = recent().skip(1).map(|m| m.uses_before).sum::<u32>() + self.uses.load(Ordering::Relaxed);
        uses <= k
    }
}

/// A device's bit in a record's per-device masks (`remote_readers`,
/// `peer_readers`, `bound`, `faulted_by`). Slots stay below `policy::MAX_DEVICES` (64);
/// past 63 they would share the last bit.
fn device_bit(slot: u16) -> u64 {
    1u64 << slot.min(63)
}

/// The interval map of records, and the runtime's advice beside it.
#[derive(Default)]
pub struct Track {
    records: BTreeMap<u64, Record>,
    /// The runtime's preferred locations (kept apart: a record rewritten
    /// whole never takes them from part of its span).
    pub advice: Advice,
}

impl Track {
    /// The record that covers exactly [start, end), if any: the hot path.
    pub fn exact(&self, start: u64, end: u64) -> Option<&Record> {
        self.records.get(&start).filter(|r| r.end == end)
    }

    /// [`Track::exact`], to change it.
    pub fn exact_mut(&mut self, start: u64, end: u64) -> Option<&mut Record> {
        self.records.get_mut(&start).filter(|r| r.end == end)
    }

    /// The one record that holds all of [start, end), exactly or as a part
    /// of it (a piece of a placed buffer): one lookup, no allocation.
    /// Returns the record's start with it.
    pub fn containing(&self, start: u64, end: u64) -> Option<(u64, &Record)> {
        // A record that starts at `start` (a span asked as it was placed,
        // the usual case): one descent, where a range search makes two.
        if let Some(r) = self.records.get(&start) {
            return (r.end >= end).then_some((start, r));
        }
        self.records.range(..=start).next_back().filter(|(_, r)| r.end >= end).map(|(&s, r)| (s, r))
    }

    /// The records overlapping [start, end), in order.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, &Record)> {
        let first = self.records.range(..=start).next_back().filter(|(_, r)| r.end > start).map_or(start, |(&s, _)| s);
        self.records.range(first..end).filter(move |(_, r)| r.end > start).map(|(&s, r)| (s, r))
    }

    /// Whether records cover all of [start, end) without gaps.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for (s, r) in self.overlapping(start, end) {
            if s > at {
                return false;
            }
            at = r.end;
        }
        at >= end
    }

    fn split_at(&mut self, addr: u64) {
        let Some((&s, r)) = self.records.range(..addr).next_back() else { return };
        if r.end <= addr {
            return;
        }
        let right = r.clone();
        self.records.get_mut(&s).unwrap().end = addr;
        self.records.insert(addr, right);
    }

    /// Replaces whatever covers [start, end) by one record built from the
    /// pieces: `merge` sees the old pieces (gaps as fresh records) and
    /// returns the new record. Pieces outside the span are cut off and kept.
    pub fn replace(&mut self, start: u64, end: u64, merge: impl FnOnce(Vec<Record>) -> Record) -> &mut Record {
        self.split_at(start);
        self.split_at(end);
        let mut pieces = Vec::new();
        let mut at = start;
        let keys: Vec<u64> = self.records.range(start..end).map(|(&s, _)| s).collect();
        for s in keys {
            if s > at {
                pieces.push(Record::new(s));
            }
            let r = self.records.remove(&s).unwrap();
            at = r.end;
            pieces.push(r);
        }
        if at < end {
            pieces.push(Record::new(end));
        }
        let mut rec = merge(pieces);
        rec.end = end;
        self.records.insert(start, rec);
        self.records.get_mut(&start).unwrap()
    }

    /// Forgets [start, end): residency unknown, attributes back to what the
    /// caller says the kernel now has (records are cut at the edges).
    pub fn forget(&mut self, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.records.range(start..end).map(|(&s, _)| s).collect();
        for s in keys {
            self.records.remove(&s);
        }
    }

    /// Every record whose residency is `pm`, least recently used first.
    pub fn lru_on(&self, pm: Pagemap) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64, u64)> = self
            .records
            .iter()
            .filter(|(_, r)| r.residency == Some(pm))
            .map(|(&s, r)| (r.last_used.load(Ordering::Relaxed), s, r.end))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, s, e)| (s, e)).collect()
    }

    /// Bytes recorded as placed in `pm`.
    pub fn bytes_on(&self, pm: Pagemap) -> u64 {
        self.records.iter().filter(|(_, r)| r.residency == Some(pm)).map(|(&s, r)| r.end - s).sum()
    }

    /// Forgets a closed device slot in every record: residency in its
    /// pagemaps becomes unknown, and its attributes, bound, reader and
    /// faults' bits and the runtime's preference for it alone (or for its
    /// VRAM, which is gone) are dropped. A device opened in the slot next
    /// has a new VM, where nothing is bound or advised.
    pub fn forget_device(&mut self, slot: u16) {
        let bit = device_bit(slot);
        for r in self.records.values_mut() {
            if r.residency.and_then(|p| p.device()) == Some(slot) {
                r.residency = None;
            }
            if r.attrs.len() > slot as usize {
                r.attrs[slot as usize] = DevAttrs::default();
            }
            for bits in [&mut r.faulted_by, &mut r.bound, &mut r.remote_readers, &mut r.peer_readers] {
                *bits.get_mut() &= !bit;
            }
        }
        self.advice.forget_device(slot);
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS: Option<Pagemap> = Some(Pagemap::System);


    #[test]
    fn replace_splits_merges_and_keeps_the_outside() {
        let mut t = Track::default();
        t.replace(0, 100, |_| Record { residency: SYS, ..Record::new(0) });
        let v0 = Some(Pagemap::Vram { device: 0, tile: 0 });
        t.replace(50, 150, |pieces| {
            assert_eq!(pieces.len(), 2, "the overlapped half and a gap");
            assert_eq!(pieces[0].residency, SYS);
            assert_eq!(pieces[1].residency, None);
            Record { residency: v0, ..Record::new(0) }
        });
        assert_eq!(t.len(), 2);
        assert_eq!(t.exact(0, 50).unwrap().residency, SYS);
        assert_eq!(t.exact(50, 150).unwrap().residency, v0);
        assert!(t.covers(0, 150) && !t.covers(0, 151));
        assert_eq!(t.bytes_on(Pagemap::Vram { device: 0, tile: 0 }), 100);
        t.forget(25, 75);
        assert_eq!(t.overlapping(0, 150).count(), 2);
        assert!(!t.covers(0, 150));
        assert_eq!(t.exact(75, 150).unwrap().residency, v0);
    }

    /// Preferred location and atomic mode are separate madvise attributes:
    /// pieces that differ in one still agree on the other.
    #[test]
    fn merged_attributes_lose_only_what_differs() {
        let dev1 = DevAttrs { pref: PrefApplied::Device { slot: 1, instance: 1 }, atomic: DRM_XE_ATOMIC_UNDEFINED };
        let m = dev1.merged(DevAttrs::default());
        assert_eq!((m.pref, m.atomic), (DevAttrs::UNKNOWN.pref, DRM_XE_ATOMIC_UNDEFINED));
        let global = DevAttrs { atomic: crate::uapi::DRM_XE_ATOMIC_GLOBAL, ..dev1 };
        assert_eq!(dev1.merged(global), DevAttrs { atomic: DevAttrs::UNKNOWN.atomic, ..dev1 });
        assert_eq!(dev1.merged(dev1), dev1);
        assert_eq!(DevAttrs::default().merged(global.merged(DevAttrs::default())), DevAttrs::UNKNOWN);
    }

    #[test]
    fn history_is_bounded_and_windowed() {
        let mut r = Record::new(10);
        for i in 0..40 {
            r.record_move(i * 10);
        }
        assert_eq!(r.moves.len(), HISTORY);
        assert_eq!(r.moves_within(390, 25), 3);
        assert!(r.thrashing(390, 35, 4), "4 moves in the window, no use between them");
        for _ in 0..2 * USES_SATURATE {
            r.use_once();
        }
        assert_eq!(r.uses.load(Ordering::Relaxed), USES_SATURATE, "saturates");
        assert!(!r.thrashing(390, 35, 4), "used many times since the last move: a phase, not thrash");
        r.record_move(400);
        assert_eq!(r.moves.last().unwrap().uses_before, USES_SATURATE);
        r.set_attrs(3, DevAttrs { pref: PrefApplied::DefaultSystem, atomic: 1 });
        assert_eq!(r.attrs(1), DevAttrs::default());
        assert_eq!(r.attrs(3).atomic, 1);
    }

    /// A widened side stays one while nothing else is recorded there;
    /// anything that says the span was placed, used or hinted at ends it.
    #[test]
    fn a_widened_side_with_nothing_since_is_a_side_and_nothing_more_is() {
        let side = || {
            let mut r = Record::new(10);
            r.set_attrs(0, DevAttrs { pref: PrefApplied::DefaultSystem, atomic: 0 });
            r.side.store(true, Ordering::Relaxed);
            r
        };
        assert!(side().is_side());
        // (The runtime's advice lives apart, `Advice`: its callers check it.)
        let marks: [fn(&mut Record); 13] = [
            |r| r.side.store(false, Ordering::Relaxed),
            |r| r.residency = SYS,
            |r| r.read_mostly = true,
            |r| r.record_move(1),
            |r| r.pinned_until = 1,
            |r| r.use_once(),
            |r| r.last_used.store(1, Ordering::Relaxed),
            |r| r.read_in_place(1),
            |r| r.peer_readers.store(1, Ordering::Relaxed),
            |r| r.faulted_by.store(1, Ordering::Relaxed),
            |r| r.set_bound(0, true),
            |r| r.probe_born = true,
            |r| r.born_in_pieces = true,
        ];
        for (i, mark) in marks.iter().enumerate() {
            let mut r = side();
            mark(&mut r);
            assert!(!r.is_side(), "mark {i}");
        }
    }
}
