//! Observation: what the engine learns of a range from the process's own
//! page table (docs/observation.md), and when it pays for it.
//!
//! A page table tells unpopulated, present in system memory, or not in
//! system memory (a device-private page: some GPU's VRAM); which device
//! only to a privileged reader. The engine combines that with its record of
//! where it placed the range. Reads cost real time (docs/observation.md §4), so:
//!
//! * it samples one page per 2 MiB chunk, spread over at most
//!   [`MAX_SAMPLES`] chunks per call: SVM ranges are at most 2 MiB and move
//!   whole (a CPU fault migrates the whole allocation back, kernel-model
//!   docs/kernel-model.md §5.5; a prefetch fails per range, §7), so one page tells the chunk,
//!   except at a span's end inside a chunk, where ranges may be smaller
//!   (the chunk does not fit the mapping, or a madvise split it): there the
//!   last page is read too. A read costs about 1 us whatever it covers (`xesvm-pagemap-bench`), so
//!   spans over 32 MiB are sampled, not read whole: a failure confined to a
//!   few chunks of a large span can go unseen;
//! * it reuses an answer younger than `Config::observe_ttl_ns`;
//! * it does not look at a range it settled in system memory (every device VM
//!   prefers system memory there: no GPU fault migrates it, row 10 of
//!   docs/kernel-model.md §14, and the CPU never moves system pages).

use std::sync::atomic::Ordering;

use super::{Context, Device, Slot};
use crate::driver::{PageTableSource, Residency, ResidencyRun, VramRegion};
use crate::topology::Pagemap;
use crate::track::{PrefApplied, Record};

/// Chunk one sample stands for: the largest SVM range (docs/kernel-model.md §2).
const SAMPLE_CHUNK: u64 = 2 << 20;
/// The kernel's next range size below a chunk (`xe_svm` fault chunk sizes
/// 2 MiB, 64 KiB, 4 KiB).
pub(super) const SMALL_RANGE: u64 = 64 << 10;

/// `Context::vram_opened`: one VRAM pagemap, as `ONE_VRAM + (slot << 16 |
/// tile)`; several.
const ONE_VRAM: u32 = 1;
const MANY_VRAM: u32 = u32::MAX;
/// Samples (page-table reads) per observation at most.
pub const MAX_SAMPLES: u64 = 16;

/// What the sampled pages of a span said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Pages sampled.
    pub samples: u32,
    /// Of them, never populated.
    pub unpopulated: u32,
    /// Of them, present in system memory.
    pub system: u32,
    /// Not in system memory (device-private, migrating, or swapped).
    pub away: u32,
    /// The region the `away` samples named (privileged readers), if all named one.
    pub region: Option<VramRegion>,
    /// Some `away` samples named no region or another one.
    pub regions_differ: bool,
}

impl Seen {
    /// Nothing of it is outside system memory (unpopulated pages count as
    /// system: they are born there).
    pub fn in_system(&self) -> bool {
        self.away == 0
    }

    /// All of it is outside system memory.
    pub fn all_away(&self) -> bool {
        self.samples > 0 && self.away == self.samples
    }

    fn add(&mut self, r: Residency) {
        self.samples += 1;
        match r {
            Residency::Unpopulated => self.unpopulated += 1,
            // Swapped out: on no GPU, and back in system memory at the next
            // access (only a privileged reader can tell, docs/observation.md §2).
            Residency::System | Residency::Swapped => self.system += 1,
            Residency::NotInSystem { vram } => {
                if self.away == 0 {
                    self.region = vram;
                } else if self.region != vram || vram.is_none() {
                    self.regions_differ = true;
                    self.region = None;
                }
                self.away += 1;
            }
        }
    }
}

impl Context {
    /// Samples the page table over [start, end). None where the page table
    /// cannot be read (the engine then decides on its records).
    pub(super) fn observe(&self, start: u64, end: u64) -> Option<Seen> {
        self.observe_samples(start, end, MAX_SAMPLES)
    }

    /// [`Context::observe`] with at most `max` samples.
    pub(super) fn observe_samples(&self, start: u64, end: u64, max: u64) -> Option<Seen> {
        if !self.access.available() {
            return None;
        }
        let chunks = (end - 1) / SAMPLE_CHUNK - start / SAMPLE_CHUNK + 1;
        let stride = chunks.div_ceil(max) * SAMPLE_CHUNK;
        let mut seen = Seen::default();
        let mut run = [ResidencyRun::default(); 1];
        let mut chunk = start / SAMPLE_CHUNK * SAMPLE_CHUNK;
        let stats = self.stats.local();
        let mut sample = |page: u64| match self.driver.residency(page, page + super::PAGE, &mut run) {
            Ok((1, _)) => {
                seen.add(run[0].residency);
                true
            }
            _ => false,
        };
        let mut last = start;
        while chunk < end {
            // The span's first page may be a packed neighbour's last (a
            // runtime widens spans to whole pages): its first sample is the
            // page after, where there is one in the same chunk, which only
            // this span holds. Where the span starts on its chunk's last
            // page, that page is the chunk's only one of the span, and it
            // is sampled (the page after belongs to the next chunk, which
            // the next sample looks at: this chunk went unseen).
            last = if chunk <= start {
                let after = start + super::PAGE;
                if after < end && after / SAMPLE_CHUNK == start / SAMPLE_CHUNK { after } else { start }
            } else {
                chunk
            };
            if !sample(last) {
                stats.observe_errors.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            chunk += stride;
        }
        // A span ending inside a chunk may end in ranges smaller than 2 MiB
        // (the chunk does not fit the mapping, or a madvise split it): a
        // neighbour's move may have taken part of the chunk, so the span's
        // last page is sampled too, where it lies in another 64 KiB block
        // than the last sample (xe's range sizes: 2 MiB, 64 KiB, 4 KiB).
        let tail = end - super::PAGE;
        if end % SAMPLE_CHUNK != 0 && tail / SMALL_RANGE != last / SMALL_RANGE && !sample(tail) {
            stats.observe_errors.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        stats.observe_reads.fetch_add(seen.samples as u64, Ordering::Relaxed);
        Some(seen)
    }

    /// Every page of [start, end), not samples: what the runtime asked for
    /// explicitly (an explicit request, `svm_evict`) is found already there
    /// only where all of it is, as its result says (a page per 2 MiB chunk
    /// misses a chunk moved in pieces: a madvise cut it, or the CPU took
    /// back a 64 KiB range). Each run of pages alike counts as one sample;
    /// also returns the bytes away from system memory. PAGEMAP_SCAN reports
    /// runs, one call for a span in one place (about 8 us per 2 MiB walked,
    /// docs/cost-model.md), where a prefetch it spares costs more. None
    /// where the page table cannot be read.
    pub(super) fn observe_whole(&self, start: u64, end: u64) -> Option<(Seen, u64)> {
        if !self.access.available() {
            return None;
        }
        let stats = self.stats.local();
        let (mut seen, mut away) = (Seen::default(), 0);
        let mut runs = [ResidencyRun::default(); 8];
        let mut at = start;
        while at < end {
            let Ok((n, upto)) = self.driver.residency(at, end, &mut runs) else {
                stats.observe_errors.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            stats.observe_reads.fetch_add(1, Ordering::Relaxed);
            for r in &runs[..n] {
                seen.add(r.residency);
                if matches!(r.residency, Residency::NotInSystem { .. }) {
                    away += r.end.min(end) - r.start.max(at);
                }
            }
            if n == 0 || upto <= at {
                break;
            }
            at = upto;
        }
        Some((seen, away))
    }

    /// [`Context::populate_edges`] the first time a span with partial
    /// chunks is left to the faults on device `on` (one with VRAM: the probe
    /// is dGPU's), where `Config::zero_page` allows. A span of whole
    /// chunks has none: no lookup.
    pub(super) fn populate_edges_once(&self, on: &super::Device, start: u64, end: u64) {
        let partial = start % super::CHUNK != 0 || end % super::CHUNK != 0;
        if partial && self.config.zero_page && on.has_vram() && self.populated.first(start, end) {
            self.populate_edges(start, end);
        }
    }

    /// Maps the shared zero page (madvise MADV_POPULATE_READ: nothing
    /// allocated, content unchanged) over the never-populated pages of
    /// [start, end) that lie in the span's partial 2 MiB chunks (where it
    /// does not cover its first or last chunk whole), before the faults
    /// first bind it on a device with VRAM. The kernel makes a range of 64
    /// KiB or less only over present pages (`drm_gpusvm_range_chunk_size`,
    /// its `check_pages_threshold` of 64 KiB on dGPU, docs/kernel-model.md
    /// §2), and a 2 MiB range only where the whole chunk is mapped: a
    /// GPU-born buffer's partial chunk is otherwise faulted, and moved at
    /// every migration, in 4 KiB ranges, each a migration of its own (about
    /// 50 us, docs/cost-model.md), for as long as the ranges live. The zero
    /// page passes the probe and migrates as a hole. Cost, once: a
    /// page-table read per partial chunk and about 0.1 us a page (at most
    /// 1024). Only pages the read shows unpopulated are named (populating a
    /// device page would migrate it back; one a fault takes between the
    /// read and the madvise comes back, a cost, not an error). Returns the
    /// pages mapped.
    pub(super) fn populate_edges(&self, start: u64, end: u64) -> u64 {
        if !self.access.available() {
            return 0;
        }
        let head = start / super::CHUNK * super::CHUNK;
        let tail = (end - 1) / super::CHUNK * super::CHUNK;
        let partial = |c: u64| start > c || end < c + super::CHUNK;
        let pieces = [(head, start, end.min(head + super::CHUNK)), (tail, start.max(tail), end)];
        let stats = self.stats.local();
        let mut populated = 0;
        let mut runs = [ResidencyRun::default(); 8];
        for (i, &(chunk, s, e)) in pieces.iter().enumerate() {
            if !partial(chunk) || (i == 1 && tail == head) {
                continue;
            }
            let mut at = s;
            while at < e {
                let Ok((n, upto)) = self.driver.residency(at, e, &mut runs) else { return populated };
                stats.observe_reads.fetch_add(1, Ordering::Relaxed);
                for r in runs[..n].iter().filter(|r| r.residency == Residency::Unpopulated) {
                    if self.driver.populate(r.start, r.end).is_ok() {
                        populated += (r.end - r.start) / super::PAGE;
                    }
                }
                if upto <= at {
                    break;
                }
                at = upto;
            }
        }
        stats.populated_pages.fetch_add(populated, Ordering::Relaxed);
        populated
    }

    /// How long an observation stays fresh: never for the oracle (it looks
    /// for free), `observe_ttl_ns` otherwise.
    fn ttl(&self) -> u64 {
        if self.access.source == PageTableSource::Oracle {
            0
        } else {
            self.config.observe_ttl_ns
        }
    }

    /// The VRAM region a privileged reader would see for a pagemap.
    pub(super) fn region_of(slots: &[Slot], pm: Pagemap) -> Option<VramRegion> {
        match pm {
            Pagemap::System => None,
            Pagemap::Vram { device, tile } => {
                let d = slots.get(device as usize)?.dev.as_ref()?;
                Some(VramRegion { device: d.id?, region: tile })
            }
        }
    }

    /// The open pagemap a named region is (None: not a device of this context).
    pub(super) fn pagemap_of_region(slots: &[Slot], r: VramRegion) -> Option<Pagemap> {
        slots.iter().filter_map(|s| s.dev.as_ref()).find(|d| d.id == Some(r.device)).and_then(|d| {
            d.tiles.get(r.region as usize).copied().flatten().map(|_| Pagemap::Vram { device: d.slot, tile: r.region })
        })
    }

    /// The open pagemap every away sample named (privileged readers), if
    /// they all named one of this context's.
    pub(super) fn named_pagemap(slots: &[Slot], seen: &Seen) -> Option<Pagemap> {
        seen.region.filter(|_| !seen.regions_differ).and_then(|r| Context::pagemap_of_region(slots, r))
    }

    /// Whether what was seen agrees with the range being in `pm`. Without
    /// device names, "not in system memory" agrees with any VRAM pagemap:
    /// the record says which.
    pub(super) fn agrees(&self, slots: &[Slot], seen: &Seen, pm: Pagemap) -> bool {
        match pm {
            Pagemap::System => seen.in_system(),
            Pagemap::Vram { .. } if !self.access.names_devices() => seen.all_away() && self.only_vram().is_none_or(|only| only == pm),
            Pagemap::Vram { .. } => seen.all_away() && !seen.regions_differ && seen.region == Context::region_of(slots, pm),
        }
    }

    /// Where what was seen puts the range, given what the record believed
    /// and the other devices whose reported launches were left to their
    /// faults on it since (`taken_by`, bit = slot,
    /// `Record::faulted_by_others`): system memory; the named region
    /// (privileged); when all of it is away, the believed VRAM pagemap, or
    /// where exactly one other device's faults ran on it, that device's
    /// VRAM (they took what its kernel touched, and a reader that cannot
    /// name devices sees both alike); else unknown (mixed, or moved into a
    /// VRAM the reader cannot name).
    pub(super) fn place_of(&self, slots: &[Slot], seen: &Seen, believed: Option<Pagemap>, taken_by: u64) -> Option<Pagemap> {
        if seen.in_system() {
            return Some(Pagemap::System);
        }
        if !seen.all_away() {
            return None;
        }
        if self.access.names_devices() {
            return Context::named_pagemap(slots, seen);
        }
        if let Some(only) = self.only_vram() {
            return Some(only);
        }
        let believed = believed.filter(|p| *p != Pagemap::System)?;
        if taken_by.count_ones() != 1 {
            return Some(believed);
        }
        let taker = taken_by.trailing_zeros() as usize;
        let tile = slots.get(taker).and_then(|s| s.dev.as_ref()).and_then(|d| d.tiles.iter().position(Option::is_some));
        Some(tile.map_or(believed, |t| Pagemap::Vram { device: taker as u16, tile: t as u16 }))
    }

    /// A range the record puts in system memory with every VRAM device's VM
    /// preferring system memory: only the library moves it.
    fn settled(slots: &[Slot], rec: &Record) -> bool {
        rec.residency == Some(Pagemap::System)
            && slots
                .iter()
                .filter_map(|s| s.dev.as_ref())
                .filter(|d| d.has_vram() && d.check_alive().is_ok())
                .all(|d| rec.attrs(d.slot).pref == PrefApplied::DefaultSystem)
    }

    /// Whether this context ever opened a device with VRAM: where none
    /// (integrated GPUs), every page it placed is in system memory, and a
    /// page-table read tells a placement nothing (what another context or
    /// library put in VRAM, it would not know of either way).
    pub(super) fn any_vram(&self) -> bool {
        self.vram_opened.load(Ordering::Relaxed) != 0
    }

    /// The one VRAM pagemap this context ever opened, if it opened exactly
    /// one and has not closed it (a machine with one discrete GPU of one
    /// tile, the common case): a page the page table shows away from
    /// system memory can only be there, so an unprivileged read names it
    /// as a privileged one would. As for `any_vram`, what another context
    /// or library of the process put in another device's VRAM it cannot
    /// know of, and a page swapped out to disk reads the same as one in
    /// VRAM without CAP_SYS_ADMIN (docs/observation.md): a wrong name costs
    /// the launch its faults, never content.
    pub(super) fn only_vram(&self) -> Option<Pagemap> {
        match self.vram_opened.load(Ordering::Relaxed) {
            0 | MANY_VRAM => None,
            one => Some(Pagemap::Vram { device: ((one - ONE_VRAM) >> 16) as u16, tile: ((one - ONE_VRAM) & 0xffff) as u16 }),
        }
    }

    /// Whether a span whose page table shows nothing at all (`seen`) is
    /// memory nothing maps: the kernel's prefetch skips such holes and
    /// succeeds (docs/kernel-model.md §7), so a placement or a batch range
    /// is EFAULT there, as svm_find_extent answers; also where a hole lies
    /// inside the span (an explicit request moves all of its span or
    /// fails). /proc/self/maps reads, only where the look saw a page never
    /// populated, on a path that moves data or fails.
    pub(super) fn unmapped(&self, start: u64, end: u64, seen: &Seen) -> bool {
        if seen.unpopulated == 0 {
            return false;
        }
        let mut at = start;
        while at < end {
            match self.driver.cpu_mapping(at) {
                Ok((_, e)) if e > at => at = e,
                // Only "nothing mapped here": a maps file that cannot be
                // read (EMFILE, EACCES) says nothing of holes.
                Err(crate::errno::Errno::EFAULT) => return true,
                _ => return false,
            }
        }
        false
    }

    /// Whether a page-table read says which VRAM a page is in: it names
    /// devices (privileged), or only one VRAM could hold it.
    pub(super) fn reads_name_vram(&self) -> bool {
        self.access.names_devices() || self.only_vram().is_some()
    }

    /// A device with VRAM closed: `only_vram` names nothing from now on
    /// (its pagemap is no open device's, and a device opened in its slot
    /// may have no such tile).
    pub(super) fn vram_closed(&self, dev: &Device) {
        if dev.has_vram() {
            self.vram_opened.store(MANY_VRAM, Ordering::Relaxed);
        }
    }

    /// Counts a device's VRAM pagemaps in (`only_vram`), before its handle
    /// is published.
    pub(super) fn vram_opened_now(&self, dev: &Device) {
        let one = match dev.tiles.iter().position(Option::is_some) {
            None => return,
            Some(t) if dev.vram_tiles() == 1 => ONE_VRAM + ((dev.slot as u32) << 16 | t as u32),
            Some(_) => MANY_VRAM,
        };
        let _ = self.vram_opened.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |seen| Some(if seen == 0 { one } else { MANY_VRAM }));
    }

    /// The last observation is fresh, or the range is settled. Fresh: at
    /// most `ttl` old, and no launch that used the range reported done
    /// since (`Record::reported_at`; `Context::recheck` looks again).
    fn fresh_or_settled(&self, slots: &[Slot], rec: &Record, now: u64) -> bool {
        let at = rec.observed_at.load(Ordering::Relaxed);
        (self.within_ttl(at, now) && at >= rec.reported_at.load(Ordering::Relaxed)) || Context::settled(slots, rec)
    }

    fn within_ttl(&self, at: u64, now: u64) -> bool {
        at != 0 && now.saturating_sub(at) <= self.ttl()
    }

    /// An observation within the freshness period but from before the
    /// report of a launch that used the range, looked at again with one sample (the
    /// span's second page, its first being perhaps a packed neighbour's,
    /// and its last where that lies in another 64 KiB block). A launch the
    /// runtime reports done has ended, and the host touches what it used
    /// right after (a CPU read of a histogram 20 us after its launch): an
    /// observation from before cannot vouch for after. Where the data
    /// moved, the full read follows and finds it; believed in VRAM, an
    /// atomic launch faulted the histogram back and stamped the kernel's
    /// atomic timeslice, and the CPU's next read waited 5 ms. One sample,
    /// not the whole set: launches reported back to back over large spans
    /// the host never touches (a wavefront over two 16 MB matrices, 64
    /// launches) would pay a full read each (3 % of the program). It holds
    /// until the next report, not longer than the full read's freshness:
    /// the full read still comes when that ends.
    fn recheck(&self, slots: &[Slot], rec: &Record, start: u64, end: u64, pm: Pagemap, now: u64) -> bool {
        let reported = rec.reported_at.load(Ordering::Relaxed);
        if reported == 0 || !self.within_ttl(rec.observed_at.load(Ordering::Relaxed), now) {
            return false;
        }
        match self.observe_samples(start, end, 1) {
            Some(seen) if self.agrees(slots, &seen, pm) => {
                // Cleared only if no report came since it was read.
                let _ = rec.reported_at.compare_exchange(reported, 0, Ordering::Relaxed, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Whether a record's residency (`pm`) still holds at `now`:
    /// `Ok((verified, looked))` when it does (verified: an observation
    /// confirmed it; looked: this call read the page table), `Err(seen)`
    /// with what a fresh observation saw when it does not. No syscall when
    /// the page table cannot be read (believed), when the range is
    /// settled, or when the last observation is fresh.
    pub(super) fn confirm(&self, slots: &[Slot], rec: &Record, start: u64, end: u64, pm: Pagemap, now: u64) -> Result<(bool, bool), Seen> {
        if !self.access.available() {
            return Ok((false, false));
        }
        // Freshness first: it is the cheaper test, and the usual answer.
        if self.fresh_or_settled(slots, rec, now) {
            self.stats.local().observe_fresh.fetch_add(1, Ordering::Relaxed);
            return Ok((rec.observed_at.load(Ordering::Relaxed) != 0, false));
        }
        if self.recheck(slots, rec, start, end, pm, now) {
            return Ok((true, true));
        }
        match self.observe(start, end) {
            None => Ok((false, true)),
            Some(seen) if self.agrees(slots, &seen, pm) => {
                rec.observed_at.store(now.max(1), Ordering::Relaxed);
                Ok((true, true))
            }
            Some(seen) => Err(seen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::DeviceId;

    #[test]
    fn seen_tracks_one_region_or_says_they_differ() {
        let r0 = Some(VramRegion { device: DeviceId(1), region: 0 });
        let r1 = Some(VramRegion { device: DeviceId(1), region: 1 });
        let mut s = Seen::default();
        s.add(Residency::NotInSystem { vram: r0 });
        s.add(Residency::NotInSystem { vram: r0 });
        assert!(s.all_away() && !s.regions_differ && s.region == r0);
        s.add(Residency::NotInSystem { vram: r1 });
        assert!(s.regions_differ && s.region.is_none());
        let mut u = Seen::default();
        u.add(Residency::NotInSystem { vram: None });
        u.add(Residency::NotInSystem { vram: None });
        assert!(u.regions_differ, "unnamed regions are not known to be one");
        let mut m = Seen::default();
        m.add(Residency::System);
        m.add(Residency::Unpopulated);
        assert!(m.in_system() && !m.all_away());
    }
}
