//! The kernel's strategy: leave a span to the launch's faults, which move
//! what the kernel touches as it touches it. The runtime's strategy gives
//! way to it where placing a span first costs more than the faults can: a
//! launch larger than the tile's VRAM, and a span devices take turns at
//! (its state: `Turns`), also where the chooser would run the rule cascade
//! (`Turns::taken`). Where launch reports show the faults cheapest for a
//! span, the chooser runs them there too (policy/choose.rs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::{Context, Device};
use crate::topology::Pagemap;
use crate::track::PrefApplied;

/// Spans several devices took turns at (set the first time one is asked
/// for by a device while another's VRAM holds it, or under the cascade
/// the second, `Turns::turned`): left to the faults from then on, for
/// every device; where reports would have the chooser run the cascade,
/// for placements into the asking device's own VRAM too
/// (`Turns::taken`), unless they are a hand-off from one writer to other
/// readers. Read-locked on the hot path (a placement, resolve's note);
/// written where a span becomes shared or is forgotten.
#[derive(Default)]
pub(crate) struct Turns {
    shared: RwLock<HashMap<(u64, u64), Uses>>,
    /// Whether `shared` holds anything (the hot path's one load).
    any: AtomicBool,
    /// Under the cascade: the device that took the span from another's
    /// VRAM at its first turn (`Turns::turned`).
    first: Mutex<HashMap<(u64, u64), u16>>,
    /// Whether `first` ever held anything (a free's one load where not).
    any_first: AtomicBool,
}

/// At most this many shared spans are remembered (a program that churns
/// through more starts over, as the chooser's entries do).
const MAX_SHARED: usize = 4096;

/// The devices (bit = slot) resolve saw write and read a shared span
/// since it became shared.
#[derive(Default)]
struct Uses {
    writers: AtomicU64,
    readers: AtomicU64,
}

impl Uses {
    /// One device writes it and only others read it: a stage's output
    /// handed to the next stage's device (a pipeline). Its writer touches
    /// all of it, and so does its reader's kernel: the cascade's move to
    /// the reader, then the writer's remote writes (policy/resolve.rs,
    /// producer and consumer), beat the faults' whole move at every turn.
    fn hand_off(&self) -> bool {
        let (w, r) = (self.writers.load(Ordering::Relaxed), self.readers.load(Ordering::Relaxed));
        w.count_ones() == 1 && r != 0 && r & w == 0
    }
}

fn bit(slot: u16) -> u64 {
    1u64 << slot.min(63)
}

impl Turns {
    /// Whether [start, start+len) is shared between devices: asked for by
    /// one while `held_by` (the record's residency) is another's VRAM, now
    /// or before. A prefetch of a whole span that devices take turns at
    /// moves all of it at every turn, where each device's faults move only
    /// what its kernel touches (a row split, a slice of the input): at
    /// worst the faults cost one fault service per 2 MiB range more than
    /// the prefetch (20 us against about 94 us for its copy,
    /// docs/cost-model.md), at best they save every untouched byte's round
    /// trip. The choice is the kernel's own, so it is never worse than the
    /// runtime without xesvm. A span already shared that is a hand-off
    /// (`Uses::hand_off`) is not, here either.
    pub(crate) fn shared(&self, slot: u16, start: u64, len: u64, held_by: Option<u16>) -> bool {
        if held_by.is_some_and(|d| d != slot) {
            let mut m = self.shared.write();
            if m.len() >= MAX_SHARED && !m.contains_key(&(start, len)) {
                m.clear();
            }
            m.entry((start, len)).or_default();
            self.any.store(true, Ordering::Relaxed);
            return true;
        }
        self.taken(start, len)
    }

    /// Notes resolve's access by device `slot` to a shared span: a write
    /// (or atomic) makes it a writer, a read a reader. One relaxed load
    /// where nothing is shared; no store where the bit is set already.
    pub(crate) fn note(&self, slot: u16, start: u64, len: u64, write: bool) {
        if self.any.load(Ordering::Relaxed) {
            if let Some(u) = self.shared.read().get(&(start, len)) {
                let mask = if write { &u.writers } else { &u.readers };
                if mask.load(Ordering::Relaxed) & bit(slot) == 0 {
                    mask.fetch_or(bit(slot), Ordering::Relaxed);
                }
            }
        }
    }

    /// Forgets device `slot`'s part (closed: a device opened in its slot
    /// starts afresh).
    pub(crate) fn forget_device(&self, slot: u16) {
        if self.any.load(Ordering::Relaxed) {
            for u in self.shared.read().values() {
                u.writers.fetch_and(!bit(slot), Ordering::Relaxed);
                u.readers.fetch_and(!bit(slot), Ordering::Relaxed);
            }
        }
        if self.any_first.load(Ordering::Relaxed) {
            self.first.lock().retain(|_, d| *d != slot);
        }
    }

    /// Device `slot` asks for [start, start+len), which device `held_by`'s
    /// VRAM holds, under the cascade: shared at the second such turn, by a
    /// device other than the first turn's (devices taking it back and
    /// forth, not a service handed over once: there the faults would
    /// follow the CPU's own turns at the service's queries and answers,
    /// where the cascade holds them in system memory).
    pub(crate) fn turned(&self, slot: u16, start: u64, len: u64, held_by: u16) {
        let mut f = self.first.lock();
        match f.get(&(start, len)).copied() {
            Some(d) if d != slot => {
                f.remove(&(start, len));
                drop(f);
                self.shared(slot, start, len, Some(held_by));
            }
            Some(_) => {}
            None => {
                if f.len() >= MAX_SHARED {
                    f.clear();
                }
                f.insert((start, len), slot);
                self.any_first.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Forgets the spans overlapping [start, end) (freed: the runtime's
    /// free hook; a buffer allocated there again is a new one).
    pub(crate) fn forget(&self, start: u64, end: u64) {
        if self.any.load(Ordering::Relaxed) {
            self.shared.write().retain(|&(s, len), _| s + len <= start || s >= end);
        }
        if self.any_first.load(Ordering::Relaxed) {
            self.first.lock().retain(|&(s, len), _| s + len <= start || s >= end);
        }
    }

    /// Whether device `slot` wrote (or used atomically) a span devices
    /// took turns at that overlaps [start, end), as resolve noted: a
    /// stage's output, which its writer's kernel writes whole. A walk of
    /// the shared spans, asked only where a look found another device's
    /// faults took the span.
    pub(crate) fn written_by(&self, slot: u16, start: u64, end: u64) -> bool {
        self.any.load(Ordering::Relaxed) && self.shared.read().iter().any(|(&(s, len), u)| s < end && s + len > start && u.writers.load(Ordering::Relaxed) & bit(slot) != 0)
    }

    /// Whether [start, start+len) is a span devices took turns at (one
    /// relaxed load where none did), other than a hand-off from one writer
    /// to other readers (`Uses::hand_off`). A placement of it into the
    /// asking device's VRAM is left to the faults whatever the chooser
    /// would run: once the faults have moved what each device's kernel
    /// touches, the records no longer say where its pieces lie, and the
    /// cascade's move of the whole span is a guess that can cost far more
    /// than the faults. It carries the slice another device reads (whose
    /// next turn pulls it back), and a span the faults left in 4 KiB
    /// ranges (scattered writes) pays a range's fixed cost per 4 KiB: 3 MiB
    /// in 22 ms against 0.13 ms whole (a two-device solver's trace). The
    /// cascade still serves it where it lies or sends it to system memory
    /// for several readers (policy/resolve.rs), which moves no slice to a
    /// device that does not read it. The faults are the kernel's own
    /// placement, never worse than the runtime without xesvm for that span.
    /// Measured on generated programs (200 per seed, geometric mean against
    /// the better baseline, programs above 1.02x): seeds 1, 2, 21, 22 from
    /// 0.555, 0.554, 0.549, 0.520 (5, 3, 7, 8) to 0.554, 0.548, 0.543,
    /// 0.520 (5, 2, 6, 8); held out 31, 32 from 0.544, 0.544 (8, 3; worst
    /// 1.66x, 1.64x) to 0.532, 0.541 (4, 1; worst 1.25x, 1.08x): two-device
    /// solvers up to 5.5x and the atomics family's shared inputs up to
    /// 1.4x faster. Without the hand-off exception pipelines ran up to 2x
    /// slower (0.557, 0.551, 0.546, 0.521; 22 programs more than 5 % behind
    /// the oracle row, 6 with it); leaving every placement of such a span
    /// to the faults
    /// (system memory too) cost an input six devices read 1.46x (its shared
    /// chunks moved at every turn, where system memory served them all).
    pub(crate) fn taken(&self, start: u64, len: u64) -> bool {
        self.any.load(Ordering::Relaxed) && self.shared.read().get(&(start, len)).is_some_and(|u| !u.hand_off())
    }
}

/// Spans left to the faults whose partial chunks this library populated
/// (`Context::populate_edges`), each once: a read-locked lookup on the
/// faults' path, a write where a span is new or freed.
#[derive(Default)]
pub(crate) struct Populated {
    spans: RwLock<std::collections::HashSet<(u64, u64)>>,
}

impl Populated {
    /// Whether [start, end) is new here; it is noted.
    pub(crate) fn first(&self, start: u64, end: u64) -> bool {
        if self.spans.read().contains(&(start, end)) {
            return false;
        }
        let mut s = self.spans.write();
        if s.len() >= MAX_SHARED {
            s.clear();
        }
        s.insert((start, end))
    }

    /// Forgets the spans overlapping [start, end) (freed: a buffer
    /// allocated there again is born unpopulated).
    pub(crate) fn forget(&self, start: u64, end: u64) {
        if self.spans.read().is_empty() {
            return;
        }
        self.spans.write().retain(|&(a, b)| b <= start || a >= end);
    }
}

impl Context {
    /// Withdraws the engine's own preference for another device's VRAM on
    /// [start, end) from device `dev`'s VMs (set where resolve served a
    /// read over the link), unless the runtime advised this device there:
    /// a read bought from the faults (policy/rent.rs) then goes where the
    /// kernel's faults put it, this device's VRAM. One walk of the records
    /// where none prefers a peer; a madvise where one does, under the
    /// span's range lock if it is free now (the caller holds the slots'
    /// lock, which a close takes after the ranges': waiting could deadlock;
    /// where another call holds it, the next placement withdraws it).
    pub(super) fn unprefer_peer(&self, slots: &[super::Slot], dev: &Device, start: u64, end: u64) {
        let peer = |p: PrefApplied| matches!(p, PrefApplied::Device { slot, .. } if slot != dev.slot);
        let (prefers, advised) = {
            let track = self.track.read();
            let prefers = track.overlapping(start, end).any(|(_, r)| peer(r.attrs(dev.slot).pref));
            (prefers, track.advice.any_for(start, end, dev.slot))
        };
        if !prefers || advised {
            return;
        }
        let Some(_g) = self.ranges.try_lock(start, end) else { return };
        let mut placed = super::Placed::default();
        if self.madvise_pref(slots, dev, start, end, PrefApplied::DefaultDevice, &mut placed).is_ok() {
            let mut a = self.summary(start, end).attrs(dev.slot);
            a.pref = PrefApplied::DefaultDevice;
            self.record(slots, start, end, &[(dev.slot, a)], |_| {});
        }
    }

    /// Device `slot`'s placement left [start, end) to its launch's faults,
    /// which move what the kernel touches into its VRAM: where the records
    /// put a span inside it in another device's VRAM, the launch's report
    /// says that its faults ran there (`Record::faulted_by`, through
    /// `Chooser::faulted`); where they put it in this one's and another's
    /// faults ran on it, the report spends those marks. An unprivileged
    /// page-table read sees one device's VRAM as the other's, so without
    /// this the records went on
    /// saying the first device held it and its next placement found it "in
    /// place" where the faults had taken it (two-device pipelines on
    /// 2dgpu-nolink: the honest engine up to 2.25x the oracle row, which
    /// saw the move and pinned the hand-off in system memory). Only records
    /// inside the span (the faults stay within it); a span the runtime
    /// knows as the whole extent of a buffer the devices split still reads
    /// as taken whole (measured below, docs/design.md). One walk of the
    /// records, on a placement that leaves a span to the faults only.
    pub(super) fn note_left_to_faults(&self, slot: u16, start: u64, end: u64) {
        // A reader that names devices sees where the faults put it.
        if self.reads_name_vram() {
            return;
        }
        // Where the records name this device and another's faults ran on
        // it, this one's faults take back what its kernel touches.
        let marks = |r: &crate::track::Record| match r.residency.and_then(|p| p.device()) {
            Some(d) => d != slot || r.faulted_by_others(slot) != 0,
            None => false,
        };
        let listed = self.track.read().overlapping(start, end).any(|(rs, r)| rs >= start && r.end <= end && marks(r));
        if listed {
            self.chooser.faulted(slot, start, end - start, self.driver.now_ns());
        }
    }

    /// Whether an engine placement not in place is left to the launch's
    /// faults:
    /// - the span, with the launch's spans placed before it that take room
    ///   in this VRAM (`before`, known where launch reports delimit
    ///   launches; a span served in system memory takes none), larger than the
    ///   tile's VRAM, whatever strategy runs: placing it would evict the
    ///   launch's own spans, or its own beginning, before the kernel reads
    ///   them;
    /// - where turns between devices count (`turns`: the runtime's
    ///   strategy, the thrash guard not ignored; the cascade has its own
    ///   thrash guard), a span another device's VRAM holds any of, as the
    ///   records say (a placement widens its record to whole chunks): a
    ///   span devices take turns at (`Turns`).
    ///
    /// The faults move what the kernel touches as it touches it, where the
    /// VM has the kernel's default preferred location: never worse than the
    /// kernel alone for that span. Where a placement told every VM to
    /// prefer a peer's VRAM (a read resolve served there), the faults map
    /// the peer's pages over the link instead, and the placement is
    /// reported there (`faults_put`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn leave_to_faults(&self, dev: &Device, slot: u16, target: Pagemap, start: u64, end: u64, before: u64, turns: bool) -> bool {
        let capacity = match target {
            Pagemap::Vram { device, tile } if device == slot => dev.tiles.get(tile as usize).copied().flatten().map(|t| t.capacity),
            _ => None,
        };
        let len = end - start;
        if capacity.is_some_and(|cap| before + len > cap) {
            return true;
        }
        if !turns {
            return false;
        }
        self.turns.shared(slot, start, len, self.held_by_other(slot, start, end))
    }

    /// Another device whose VRAM holds [start, end), as the records say
    /// (a placement widens its record to whole chunks).
    fn held_by_other(&self, slot: u16, start: u64, end: u64) -> Option<u16> {
        self.track
            .read()
            .overlapping(start, end)
            .filter(|&(s, r)| super::record::speaks_for(s, r.end, start, end))
            .filter_map(|(_, r)| r.residency.and_then(|p| p.device()))
            .find(|&d| d != slot)
    }

    /// Device `slot`'s placement under the cascade asks for [start, end)
    /// into its own VRAM: a turn where another's holds it
    /// (`Turns::turned`).
    pub(super) fn note_turn(&self, slot: u16, start: u64, end: u64) {
        if let Some(d) = self.held_by_other(slot, start, end) {
            self.turns.turned(slot, start, end - start, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A span another device's VRAM held when this one asked is shared
    /// from then on, for every device.
    #[test]
    fn a_span_devices_take_turns_at_is_shared() {
        let c = Turns::default();
        assert!(!c.shared(0, 0, 4096, Some(0)));
        assert!(!c.shared(0, 0, 4096, None));
        assert!(c.shared(1, 0, 4096, Some(0)));
        assert!(c.shared(0, 0, 4096, Some(0)));
        assert!(!c.shared(0, 4096, 4096, None));
        assert!(c.shared(1, 0, 4096, None), "for every device");
    }

    /// A shared span one device writes and only others read is a hand-off
    /// (not taken); another writer, the writer reading it too, or no reader
    /// yet keep it taken. Prefetch-less notes of unshared spans change
    /// nothing.
    #[test]
    fn a_shared_span_with_one_writer_and_other_readers_is_a_hand_off() {
        let c = Turns::default();
        c.note(0, 0, 4096, true); // not shared yet: nothing noted
        assert!(c.shared(1, 0, 4096, Some(0)));
        c.note(0, 0, 4096, true);
        assert!(c.taken(0, 4096), "a writer, no reader yet");
        c.note(1, 0, 4096, false);
        assert!(!c.taken(0, 4096) && !c.shared(1, 0, 4096, None), "a hand-off");
        c.note(0, 0, 4096, false);
        assert!(c.taken(0, 4096), "the writer reads it too");
        c.shared(1, 8192, 4096, Some(0));
        for (d, w) in [(0, true), (1, false), (1, true)] {
            c.note(d, 8192, 4096, w);
        }
        assert!(c.taken(8192, 4096), "two writers");
    }

    /// A closed device's notes go; a freed span is forgotten whole.
    #[test]
    fn a_closed_device_and_a_freed_span_are_forgotten() {
        let c = Turns::default();
        c.shared(1, 0, 4096, Some(0));
        c.note(0, 0, 4096, true);
        c.note(1, 0, 4096, true);
        assert!(c.taken(0, 4096));
        c.forget_device(1);
        c.note(2, 0, 4096, false);
        assert!(!c.taken(0, 4096), "device 1's write forgotten: a hand-off from 0 to 2");
        c.forget(2048, 4096);
        assert!(!c.taken(0, 4096) && !c.shared(0, 0, 4096, None), "freed");
    }
}
