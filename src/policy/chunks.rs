//! Placement spans and 2 MiB chunks: a madvise that ends inside a chunk
//! splits the mirror VMA there, and the kernel then migrates the pieces in
//! 64 KiB and 4 KiB ranges, so a placement widens its attributes to whole
//! chunks where the neighbours are free, placed alike, or rented in system
//! memory by the device moving in; and since a move
//! takes the whole chunk, a span asked for system memory whose end chunk
//! came along into the device's VRAM with a neighbour is left there.

use std::sync::atomic::Ordering;

use super::place::Attempt;
use super::record::merge_pieces;
use super::*;

/// The rest of [start, end)'s end chunks on each side (the packed
/// neighbours' part: before the span in its first chunk, after it in its
/// last), each empty (start == end) where the span meets a chunk boundary.
pub(super) fn end_chunk_sides(start: u64, end: u64) -> [(u64, u64); 2] {
    [(start & !(CHUNK - 1), start), (end, end.next_multiple_of(CHUNK).min(VA_LIMIT))]
}

/// Whether a record in the granule at `s` (the 2 MiB chunk or 64 KiB
/// range holding that address) other than [start, end)'s own whole one is
/// in `pm`: a packed neighbour's, one holding the span and more, or a
/// piece of the span a neighbour's placement recorded (the page they
/// share). The kernel moves a granule whole, so the span's part of it may
/// have come along with it, unless a mate recorded in another device's
/// VRAM was placed later: that move took the granule there, and an
/// unprivileged page-table read sees "not in system memory" either way.
/// The later placement decides, a move or one found in place (whose
/// launch's faults took the granule back; a fault records no move). Two
/// devices reading packed pieces of one table: taken for the reader's
/// own, the piece a peer's move took was left there, and the reader's
/// faults pulled it across at each turn. A mate's move inside a cut chunk
/// takes only its own 64 KiB ranges, which the records cannot tell from a
/// whole chunk's: then the piece is moved though it lay here.
fn mate_in(track: &crate::track::Track, s: u64, granule: u64, start: u64, end: u64, pm: Pagemap) -> bool {
    let (cs, ce) = (s & !(granule - 1), (s & !(granule - 1)) + granule);
    let mates = || track.overlapping(cs, ce).filter(|&(rs, r)| (rs, r.end) != (start, end));
    // A placement that found a mate in place also counts: its launch's
    // faults took the granule back (a fault records no move). That stamp
    // is the LRU's, rewritten once per LRU_GRANULE_NS, so such a find may
    // be up to a granule later than it says: it counts at its latest
    // (within a granule of a move, the find wins: nothing is moved).
    let last = |r: &crate::track::Record| {
        let used = r.last_used.load(Ordering::Relaxed);
        r.moves.last().map_or(0, |m| m.at).max(if used == 0 { 0 } else { used.saturating_add(super::LRU_GRANULE_NS) })
    };
    let elsewhere = |p: Pagemap| p.device().is_some_and(|d| Some(d) != pm.device());
    let ours = mates().filter(|(_, r)| r.residency == Some(pm)).map(|(_, r)| last(r)).max();
    let theirs = mates().filter(|(_, r)| r.residency.is_some_and(elsewhere)).map(|(_, r)| last(r)).max();
    ours.is_some_and(|ours| theirs.is_none_or(|theirs| ours >= theirs))
}

impl Context {
    /// Whether [start, end) lies inside one 2 MiB chunk, a neighbour in
    /// that chunk is recorded in `pm` (`mate_in`), and no piece of the
    /// span's own records lies in another device's VRAM: an unprivileged
    /// read sees only "not in system memory", which that explains as well.
    /// Any piece counts: a packed neighbour's placement takes the page they
    /// share, and the span's merged summary then says nothing (an atomic
    /// histogram behind an input two devices split).
    pub(super) fn chunk_mate_in(&self, start: u64, end: u64, pm: Pagemap) -> bool {
        let ce = (start & !(CHUNK - 1)) + CHUNK;
        if end > ce || end - start == CHUNK {
            return false;
        }
        let track = self.track.read();
        let elsewhere = track.overlapping(start, end).any(|(_, r)| r.residency.is_some_and(|p| p != pm && p != Pagemap::System));
        !elsewhere && mate_in(&track, start, CHUNK, start, end, pm)
    }
}

/// A span asked for system memory whose end pieces came along into the
/// accessing device's VRAM: its pieces (at most the head granule, a 2 MiB
/// chunk or a 64 KiB range, the middle, the tail granule), each with the
/// VRAM it came along into, or None where it lies in system memory.
pub(super) struct CameAlong<'a> {
    pieces: [(u64, u64, Option<Pagemap>); 3],
    /// The range locks of the rest of the end chunks (the neighbours'),
    /// held until the pieces are recorded: a neighbour's move would take
    /// a kept piece with it.
    _locks: [Option<super::rangelock::RangeGuard<'a>>; 2],
}

/// What one granule's look at a span's end pieces found.
enum Found<'a> {
    /// They came along (see `came_along`): left where they are.
    Kept(CameAlong<'a>),
    /// Not so at this granule.
    NotExplained,
    /// A neighbour's side is locked by another call, which may be moving
    /// it: nothing is kept.
    Busy,
}

impl<'a> Found<'a> {
    fn kept(self) -> Option<CameAlong<'a>> {
        match self {
            Found::Kept(kept) => Some(kept),
            _ => None,
        }
    }
}

impl Context {
    /// An engine placement asked for system memory (resolve serves a first
    /// read where the data lies) of a span the page table shows partly or
    /// wholly away from system memory, where each away piece is an end
    /// chunk (or, where that does not explain it, an end 64 KiB range)
    /// shared with a neighbour this library placed in the accessing
    /// device's VRAM: the piece came along with the neighbour's move (the
    /// kernel migrates whole SVM ranges: 2 MiB chunks, 64 KiB ranges where
    /// a madvise cut the chunk, docs/kernel-model.md §2). Moving it back
    /// would pay a copy for a read that is local already, and take the
    /// neighbour's range with it (its next launch moves it again: packed
    /// small allocations, measured below). Only end pieces can be shared;
    /// an away middle is not explained so. Not
    /// where system memory serves someone else: another device reads it in
    /// place, a pin holds it for a hand-off, or the runtime advised it
    /// (read-mostly, a preferred location). An explicit request is executed
    /// as asked, and so is one that asks for the move now (PREFETCH_NOW).
    pub(super) fn came_along(&self, a: &Attempt, target: Pagemap) -> Option<CameAlong<'_>> {
        let Attempt { dev, ref summary, seen, flags, .. } = *a;
        let whole = seen?;
        if !flags.may_defer() || target != Pagemap::System || summary.residency.is_some_and(|p| p != Pagemap::System) || whole.in_system() {
            return None;
        }
        let serves_others = summary.readers_in_place(dev.slot).1
            || self.driver.now_ns() < summary.pinned_until
            || summary.read_mostly
            || self.track.read().advice.any_own_for(a.start, a.end, dev.slot);
        if serves_others {
            return None;
        }
        // Whole 2 MiB chunks first; where they do not explain it (a span
        // with one page of its head range in VRAM is mixed at chunk
        // scale), the 64 KiB ranges the kernel uses inside a chunk a
        // madvise has cut; not where a neighbour's side is busy. Measured on
        // generated programs (ten seeds, 200 each): 58 programs faster, all
        // packed small allocations, up to 15 %; four slower, by at most
        // 1.2 %.
        match self.came_along_in(a, CHUNK) {
            Found::NotExplained => self.came_along_in(a, super::observe::SMALL_RANGE).kept(),
            found => found.kept(),
        }
    }

    /// `came_along` for the span's end pieces of `granule` (a 2 MiB chunk,
    /// or a 64 KiB range); the neighbours' sides of its end chunks are
    /// locked either way (a neighbour's move takes the whole range that
    /// holds it, 2 MiB where the chunk is not cut).
    fn came_along_in(&self, a: &Attempt, granule: u64) -> Found<'_> {
        let Attempt { slots, dev, start, end, seen, .. } = *a;
        let Some(whole) = seen else { return Found::NotExplained };
        let head_end = end.min((start & !(granule - 1)) + granule);
        let tail_start = ((end - 1) & !(granule - 1)).max(head_end);
        let pieces = [(start, head_end, true), (head_end, tail_start, false), (tail_start, end, true)];
        // The neighbours' sides of the end chunks, locked first (another
        // call holding one may be moving it: then nothing is kept, at any
        // granule), so that what the page table shows next holds until it
        // is recorded.
        let side = |(s, e): (u64, u64)| if s < e { self.ranges.try_lock(s, e).map(Some) } else { Some(None) };
        let [before, after] = end_chunk_sides(start, end);
        let (Some(l0), Some(l1)) = (side(before), side(after)) else { return Found::Busy };
        let mut out = CameAlong { pieces: [(0, 0, None); 3], _locks: [l0, l1] };
        for (i, &(s, e, shared)) in pieces.iter().enumerate().filter(|(_, p)| p.0 < p.1) {
            // A span inside one granule is its only piece: the look the
            // placement took is this one.
            let seen = if (s, e) == (start, end) { Some(whole) } else { self.observe(s, e) };
            let Some(seen) = seen else { return Found::NotExplained };
            let pm = match seen.in_system() {
                true => None,
                false => match shared.then(|| self.local_mate(slots, dev, start, end, s, granule, &seen)).flatten() {
                    Some(pm) => Some(pm),
                    None => return Found::NotExplained,
                },
            };
            out.pieces[i] = (s, e, pm);
            // A side whose piece stays in system memory is not held (the
            // placement of the rest may widen over it).
            if pm.is_none() && i != 1 {
                let single = head_end == end;
                if i == 0 || single {
                    out._locks[0] = None;
                }
                if i == 2 || single {
                    out._locks[1] = None;
                }
            }
        }
        // Kept only where the tile has room for all of it besides what
        // this context placed there: short of room, the move back frees
        // VRAM that the kernel would otherwise evict from the spans placed.
        let kept: u64 = out.pieces.iter().filter(|p| p.2.is_some()).map(|p| p.1 - p.0).sum();
        let room = out.pieces.iter().filter_map(|p| p.2).all(|pm| match pm {
            Pagemap::Vram { tile, .. } => dev.tiles[tile as usize].is_some_and(|t| dev.placed[tile as usize].load(Ordering::Relaxed).saturating_add(kept) <= t.capacity),
            Pagemap::System => true,
        });
        if kept > 0 && room {
            Found::Kept(out)
        } else {
            Found::NotExplained
        }
    }

    /// The accessing device's VRAM tile the away piece at `s` of the span
    /// [start, end) lies in with a neighbour: the page table agrees, and a
    /// neighbour in the piece's granule (its 2 MiB chunk or 64 KiB range)
    /// is there (`mate_in`; a privileged reader's region needs none).
    #[allow(clippy::too_many_arguments)]
    fn local_mate(&self, slots: &[Slot], dev: &Device, start: u64, end: u64, s: u64, granule: u64, seen: &Seen) -> Option<Pagemap> {
        let track = self.track.read();
        let mut local = dev.tiles.iter().enumerate().filter(|(_, t)| t.is_some()).map(|(i, _)| Pagemap::Vram { device: dev.slot, tile: i as u16 });
        // A reader that names the VRAM (privileged, or the one VRAM the
        // context opened, `only_vram`: the same knowledge) needs no mate:
        // whatever took the piece there (a neighbour's range, its own move
        // whose fence timed out, the kernel's faults), it is local, and a
        // move to system memory would pay a copy for a read that is local
        // already (the runtime's request is the engine's to refine; an
        // explicit one never gets here).
        local.find(|&pm| self.agrees(slots, seen, pm) && (self.reads_name_vram() || mate_in(&track, s, granule, start, end, pm)))
    }

    /// Leaves what came along where it is (see `came_along`): the pieces in
    /// VRAM are recorded there, nothing moved, nothing advised; the rest,
    /// in system memory, is placed there as any engine placement is
    /// (advised where its chunks are its own, bound), which moves nothing
    /// either.
    pub(super) fn keep_came_along(&self, a: &Attempt, kept: CameAlong<'_>, now: u64, placed: &mut Placed) -> Result<()> {
        let Attempt { slots, dev, start, end, flags, ref summary, .. } = *a;
        let mut came = None;
        let (mut sys_start, mut sys_end) = (start, end);
        for (s, e, pm) in kept.pieces.into_iter().filter(|p| p.0 < p.1) {
            let Some(pm) = pm else { continue };
            came = Some(pm);
            if s == start {
                sys_start = e;
            } else {
                sys_end = s;
            }
            self.rewrite(slots, s, e, |pieces| {
                let mut r = merge_pieces(pieces);
                r.residency = Some(pm);
                r.spend_faulted_marks();
                // The span's own history, not a neighbour's shared page's.
                r.pinned_until = summary.pinned_until;
                r.moves = summary.moves.clone();
                r.observed_at.store(now.max(1), Ordering::Relaxed);
                r.last_used.store(now, Ordering::Relaxed);
                r.use_once();
                r
            });
        }
        let whole = sys_start >= sys_end;
        crate::log!(crate::log::Level::Debug, "alloc_vram {} device {}: asked for system memory, found {} in {} with a neighbour's range (page table): left there", crate::log::Span(start, end - start), dev.slot, if whole { "all" } else { "its ends" }, came.map_or("?".into(), |p| p.to_string()));
        if !whole {
            let rest = Attempt { slots, dev, start: sys_start, end: sys_end, summary: self.summary(sys_start, sys_end), seen: None, flags, explicit: a.explicit };
            self.try_candidate(&rest, Pagemap::System, placed).map_err(|m| match m {
                Miss::Fatal(e) | Miss::Fallback(e) => e,
            })?;
        }
        placed.pagemap = if whole { came } else { Some(Pagemap::System) };
        placed.split = !whole;
        placed.in_place = whole;
        placed.verified = true;
        Ok(())
    }
}

impl Context {
    /// After this library moved [start, end) out of VRAM `from` (None: some
    /// VRAM the page table does not name) into system memory: a move back
    /// takes each device allocation holding the span's pages back whole
    /// (`migrate_to_ram` migrates the allocation's window,
    /// docs/kernel-model.md §5.5: up to the 2 MiB chunk), so a packed
    /// neighbour recorded there in the span's end chunks may have come
    /// along. Each such piece the page table now shows present in system
    /// memory is recorded there, as observed: its next placement then does
    /// not take the library's own move for the CPU's pull-back (a hand-off,
    /// held in system memory), nor count it as a move of its own. Not a
    /// piece with pages never populated: a move back makes every page it
    /// moves present, so that one was freed and mapped again (its next
    /// placement sees so). A side another call holds is left to that
    /// call's own look; without a page table to read, nothing is assumed.
    pub(super) fn carried_back(&self, slots: &[Slot], start: u64, end: u64, from: Option<Pagemap>) {
        if !self.access.available() {
            return;
        }
        for (s, e) in end_chunk_sides(start, end).into_iter().filter(|(s, e)| s < e) {
            let Some(_side) = self.ranges.try_lock(s, e) else { continue };
            // At most a few packed neighbours per side: no allocation worth
            // avoiding on a path that has just moved data.
            let mates: Vec<(u64, u64)> = self.track.read().overlapping(s, e).filter(|(_, r)| r.residency.is_some_and(|p| p.device().is_some() && from.is_none_or(|f| f == p))).map(|(rs, r)| (rs.max(s), r.end.min(e))).collect();
            for (ms, me) in mates {
                if !self.observe(ms, me).is_some_and(|seen| seen.in_system() && seen.unpopulated == 0) {
                    continue;
                }
                let now = self.driver.now_ns();
                crate::log!(crate::log::Level::Debug, "{} came back to system memory with its chunk mate {} (page table)", crate::log::Span(ms, me - ms), crate::log::Span(start, end - start));
                self.rewrite(slots, ms, me, |pieces| {
                    let mut r = merge_pieces(pieces);
                    r.residency = Some(Pagemap::System);
                    r.observed_at.store(now.max(1), Ordering::Relaxed);
                    // The move invalidated every VM's mapping of it.
                    r.bound.store(0, Ordering::Relaxed);
                    r
                });
            }
        }
    }
}

/// The rest of a span's end 2 MiB chunks (`end_chunk_sides`), locked: a
/// prefetch into an uncut chunk moves all of it (the kernel migrates the
/// whole SVM range), so what is recorded there is recorded again after
/// the move (`Context::carried_along`) under these locks.
pub(super) struct ChunkRest<'a> {
    sides: [(u64, u64); 2],
    _locks: [Option<super::rangelock::RangeGuard<'a>>; 2],
}

impl Context {
    /// Whether a span the runtime insists on (atomics) placed into the
    /// asking device's own VRAM goes unadvised where the madvise over
    /// [ws, we) would cut a chunk it shares, and then the rest of its end
    /// chunks, locked until recorded again (`carried_along`). Atomics fault
    /// into local VRAM whatever the preferred location says
    /// (`xe_vma_need_vram_for_atomic`, docs/kernel-model.md §3.2), so the
    /// advice changes nothing for them, while the cut makes every later
    /// move of the span go in 4 KiB ranges (a histogram packed after its
    /// input, taken by each device in turn: ten 4 KiB copies a turn instead
    /// of one range); the prefetch names its region. Not in the device
    /// atomic mode: a device with device atomics on system memory then
    /// follows the preferred location (row 22 of the decision table there).
    /// Measured on 15,800 generated programs: 21 atomics programs faster
    /// (up to 1.22x), 2 slower (at most 1.04x), 4 no longer behind the
    /// better baseline (without the atomic-mode condition, 35 faster and 7).
    pub(super) fn atomic_rest(&self, a: &Attempt, cand: Pagemap, ws: u64, we: u64, ioctls: &mut u32) -> Option<ChunkRest<'_>> {
        let Attempt { dev, ref summary, flags, .. } = *a;
        let Pagemap::Vram { device, tile } = cand else { return None };
        let default_mode = matches!(summary.attrs(dev.slot).atomic, DRM_XE_ATOMIC_UNDEFINED | DRM_XE_ATOMIC_GLOBAL);
        if !flags.contains(AllocFlags::IGNORE_THRASH_GUARD) || device != dev.slot || !default_mode {
            return None;
        }
        self.lock_chunk_rest(ws, we, dev, dev.vm_of_tile(tile), ioctls)
    }

    /// The rest of [start, end)'s end chunks, locked; None where another
    /// call holds a part of it (that call may be moving it), or where the
    /// kernel shows an end chunk cut into several VMAs in VM `vm` (two
    /// ioctls a side): there it cannot use a 2 MiB range, so nothing else
    /// comes along. What the query cannot show is left: a boundary between
    /// CPU mappings inside the chunk, or a smaller SVM range an earlier
    /// cut left there; the page-table look at the next placement of a
    /// record wrongly taken as moved corrects it where it is in system
    /// memory, not between two VRAMs.
    pub(super) fn lock_chunk_rest(&self, start: u64, end: u64, dev: &Device, vm: u32, ioctls: &mut u32) -> Option<ChunkRest<'_>> {
        let sides = end_chunk_sides(start, end);
        let lock = |(s, e): (u64, u64)| if s < e { self.ranges.try_lock(s, e).map(Some) } else { Some(None) };
        let (Some(l0), Some(l1)) = (lock(sides[0]), lock(sides[1])) else { return None };
        // The chunk moves whole only where no earlier madvise cut it in the
        // prefetching VM (a cut is never undone there): one VMA over it.
        let mut whole = |(s, e): (u64, u64)| {
            let (cs, ce) = (s & !(CHUNK - 1), (s & !(CHUNK - 1)) + CHUNK);
            s >= e || self.query_vmas(dev, vm, cs, ce, ioctls).is_ok_and(|v| v.len() == 1 && v[0].start <= cs && v[0].end >= ce)
        };
        if !(whole(sides[0]) && whole(sides[1])) {
            return None;
        }
        Some(ChunkRest { sides, _locks: [l0, l1] })
    }

    /// After a prefetch into `to` moved [start, end) with no madvise cutting
    /// its end chunks: the rest of those chunks came along (the kernel moves
    /// the whole range). Each record there that said another device's VRAM
    /// now says `to`, so its next placement moves it where asked rather
    /// than find it "in place" where it was (an unprivileged page-table
    /// read cannot tell one VRAM from another), and a peer's read is served
    /// where it lies. Recorded as unknown instead, a read then resolved to
    /// system memory moved it back there and read it remotely (an atomics
    /// program 1.18x slower). A record that said system memory is left:
    /// its next placement's look finds it away and asks which mate it came
    /// along with (`came_along`).
    pub(super) fn carried_along(&self, slots: &[Slot], rest: &ChunkRest<'_>, start: u64, end: u64, to: Pagemap) {
        for (ms, me) in self.vram_mates(rest.sides, to) {
            crate::log!(crate::log::Level::Debug, "{} came along into {to} with its chunk mate {}", crate::log::Span(ms, me - ms), crate::log::Span(start, end - start));
            self.rewrite(slots, ms, me, |pieces| {
                let mut r = merge_pieces(pieces);
                r.residency = Some(to);
                // The move invalidated every VM's mapping of it.
                r.bound.store(0, Ordering::Relaxed);
                r
            });
        }
    }

    /// The parts inside `sides` (a span's end chunk sides,
    /// `end_chunk_sides`) of the records that place them in a VRAM other
    /// than `to`: the neighbours a move into `to` may take along. At most
    /// a few per side; no allocation where there are none.
    pub(super) fn vram_mates(&self, sides: [(u64, u64); 2], to: Pagemap) -> Vec<(u64, u64)> {
        let track = self.track.read();
        let elsewhere = |r: &crate::track::Record| r.residency.is_some_and(|p| p != to && p.device().is_some());
        sides.into_iter().filter(|(s, e)| s < e).flat_map(|(s, e)| track.overlapping(s, e).filter(|(_, r)| elsewhere(r)).map(move |(rs, r)| (rs.max(s), r.end.min(e)))).collect()
    }
}

impl Context {
    /// The records in `rest`'s sides (locked) that place their part in a
    /// VRAM other than `to`: the move into `to` may have taken them along
    /// (see `carried_along`), so their place is unknown until looked at.
    pub(super) fn mates_unknown(&self, slots: &[Slot], rest: &ChunkRest<'_>, to: Pagemap) {
        for (ms, me) in self.vram_mates(rest.sides, to) {
            self.place_unknown(slots, ms, me);
        }
    }
}

/// The span a placement's madvise covers, widened to whole 2 MiB chunks on
/// the sides where that was free, with the range locks that keep those
/// sides free until the placement is recorded.
pub(super) struct ChunkSides<'a> {
    pub(super) start: u64,
    pub(super) end: u64,
    _locks: [Option<super::rangelock::RangeGuard<'a>>; 2],
}

impl ChunkSides<'_> {
    pub(super) fn none(start: u64, end: u64) -> Self {
        ChunkSides { start, end, _locks: [None, None] }
    }
}

/// A neighbour a placement into device `slot`'s VRAM may take its part of
/// the chunk along with it (its madvise widened over it): one only that
/// device has read, in place from system memory, where this library's rent
/// left it (never moved since, nothing of the runtime's on it, not placed
/// there at the runtime's request, no hand-off pin, not born there in
/// pieces). Its own next use by that device buys it, and the move takes
/// its part now in the span's 2 MiB range, where the cut would move the
/// span's end in 64 KiB and 4 KiB ranges now and the neighbour's in the
/// same pieces at its buy.
fn rented_by(r: &crate::track::Record, advised: bool, slot: u16, now: u64) -> bool {
    r.readers_in_place(slot) == (true, false)
        && r.residency == Some(Pagemap::System)
        && !advised
        && !r.read_mostly
        && r.moves.is_empty()
        && now >= r.pinned_until
        && r.peer_readers.load(Ordering::Relaxed) == 0
        && !r.born_in_pieces
        && !r.explicit.load(Ordering::Relaxed)
}

/// How many bytes of rented neighbours (`rented_by`) a placement takes
/// along per byte of the cut it spares (`readvised_in_chunk`), from the
/// cost model (docs/cost-model.md, 7.0 without device huge pages). A cut
/// moves the span's part in 64 KiB ranges, each with a copy submission
/// and a copy's fixed part (30 + 19 us) and a clear submission (30 us):
/// about 1.2 us per KiB more than inside one 2 MiB range, and not once:
/// the cut stays (a madvise split is never merged back on 6.18), so every
/// later move of the part pays it again, and the neighbour's own buy, its
/// next use by the device (the rent's premise), moves its part in the
/// same pieces, 1.2 us per KiB of the neighbour more. A neighbour's KiB
/// taken along costs the CPU's work per page (0.35 us) and its bytes
/// (0.04 us on a B60's 26 GB/s link), and as much again if it must go
/// back in one range: 0.78 us (0.86 on a B580, 0.74 on a Max 1550). Where
/// the neighbour is bought later, taking it along is the move it needed,
/// minus the cut on both; where it is never used again and must go back,
/// 32 times the part costs at most 32 x 0.86 - 1.2 = 26 us per KiB of the
/// part, about 22 cuts of it. The cut costs most where the part is small
/// against the neighbour: a buffer's 68 KiB head beside a rented 1.98 MB
/// neighbour was cut, and the neighbour's buy then moved it in 31 ranges
/// of 64 KiB and 4 KiB (3.1 ms against 0.9). Measured at 2, 8, 32 and
/// unbounded (docs/design.md, "The engine's default"): 32 against 8 on 17,600
/// generated programs, 27 faster, 3 slower, more than 2 % behind the
/// better baseline 468 -> 465; unbounded against 32, 7 faster, 70 slower
/// (solvers whose vectors came along, up to 3x).
const DRAG_PER_CUT: u64 = 32;

impl Context {
    /// [start, end) widened to its 2 MiB chunks on each side where no other
    /// call holds the side and what is recorded there lives where this span
    /// goes (its attributes then are, or become, the same: a packed
    /// neighbor placed alike); elsewhere another placement's attributes
    /// stay as they are. A span already on chunk boundaries is returned as
    /// it is, with no lock taken.
    ///
    /// Into VRAM, a side that holds only what an earlier widening applied
    /// (`Record::is_side`: nothing placed, left to the faults or advised
    /// by the runtime there since) is free as an unrecorded one: else a
    /// span placed once in system memory, widened, and then asked into
    /// VRAM would be cut at its own ends by its second madvise and move
    /// its end pieces in 4 KiB ranges (in one generated arena, a 76 KiB
    /// buffer took 19 copies, 1.6 ms, against 0.2 ms). Into system memory
    /// such a side stays a cut: an engine placement cut there is bound,
    /// not advised (`try_candidate`), which costs less. Measured on 15,800
    /// generated programs: see `record_side`.
    ///
    /// Into the asking device's own VRAM, a side may also hold neighbours
    /// that device rents in system memory (`rented_by`), where their chunk
    /// ends up whole and they are at most DRAG_PER_CUT times the span's
    /// part of it the madvise changes: they move along in the span's
    /// range, and their records then say their place is unknown
    /// (`record_side`).
    pub(super) fn chunk_sides(&self, start: u64, end: u64, cand: Pagemap, dev: &Device) -> ChunkSides<'_> {
        let slot = dev.slot;
        let sides = end_chunk_sides(start, end);
        let [(lo, _), (_, hi)] = sides;
        let now = self.driver.now_ns();
        let into_own = cand.device() == Some(slot);
        let empty = |(s, e): (u64, u64)| s >= e;
        // A side that may be widened over, and the bytes of rented
        // neighbours the move would take along there.
        let side = |(s, e): (u64, u64)| {
            if empty((s, e)) {
                return None;
            }
            let g = self.ranges.try_lock(s, e)?;
            let track = self.track.read();
            let mut rented = 0;
            for (rs, r) in track.overlapping(s, e) {
                let advised = track.advice.any(rs, r.end);
                if !advised && (r.residency == Some(cand) || cand != Pagemap::System && r.is_side()) {
                    continue;
                }
                if !(into_own && rented_by(r, advised, slot, now)) {
                    return None;
                }
                rented += r.end.min(e) - rs.max(s);
            }
            Some((g, rented))
        };
        let (mut gl, mut gh) = (side(sides[0]), side(sides[1]));
        let rented = |g: &Option<(_, u64)>| g.as_ref().map_or(0, |&(_, n)| n);
        // Rented neighbours come along only where that spares a cut: their
        // chunk ends up whole (a span inside one chunk needs both sides),
        // and they are at most DRAG_PER_CUT times the span's part there
        // that the madvise changes.
        let spares = |dragged: u64, at: u64, whole: bool| dragged == 0 || whole && dragged <= DRAG_PER_CUT * self.readvised_in_chunk(start, end, at, slot);
        if lo + CHUNK == hi {
            let whole = (empty(sides[0]) || gl.is_some()) && (empty(sides[1]) || gh.is_some());
            if !spares(rented(&gl) + rented(&gh), start, whole) {
                gl = gl.filter(|&(_, n)| n == 0);
                gh = gh.filter(|&(_, n)| n == 0);
            }
        } else {
            gl = gl.filter(|&(_, n)| spares(n, start, true));
            gh = gh.filter(|&(_, n)| spares(n, end - 1, true));
        }
        let (gl, gh) = (gl.map(|(g, _)| g), gh.map(|(g, _)| g));
        ChunkSides { start: if gl.is_some() { lo } else { start }, end: if gh.is_some() { hi } else { end }, _locks: [gl, gh] }
    }

    /// The bytes of [start, end) in the 2 MiB chunk holding `at` whose
    /// preferred location on device `slot`'s VM is not yet the default
    /// (its own VRAM): the part a placement into that VRAM advises there,
    /// which a madvise ending inside the chunk would cut (`advise_span`
    /// trims the call to what differs, so the rest is cut already or not
    /// at all).
    fn readvised_in_chunk(&self, start: u64, end: u64, at: u64, slot: u16) -> u64 {
        let cs = at & !(CHUNK - 1);
        let (os, oe) = (start.max(cs), end.min(cs + CHUNK));
        self.track
            .read()
            .overlapping(os, oe)
            .filter(|(_, r)| r.attrs(slot).pref != crate::track::PrefApplied::DefaultDevice)
            .map(|(rs, r)| r.end.min(oe) - rs.max(os))
            .sum()
    }

    /// Records the side [s, e) of a placement into `cand` whose madvise
    /// widened to its chunk: each VM's preferred location as applied (the
    /// madvise set nothing else, so the side keeps its own atomic mode), a
    /// rented neighbour's place as unknown (the move may have taken it
    /// along: its next placement looks), and, where
    /// only gaps and earlier such sides lay there, that it is a side
    /// (`Record::is_side`), which the next widening may advise over again.
    /// Called under the side's range lock (`ChunkSides`). Measured on
    /// 15,800 generated programs against widening over placements alike
    /// only: 90 faster (small-allocation arenas up to 1.6x), 22 slower (at
    /// most 1.41x, all below 0.3x the better baseline), 6 no longer more
    /// than 2 % behind the better baseline, none newly so.
    pub(super) fn record_side(&self, slots: &[Slot], s: u64, e: u64, applied: &[(u16, crate::track::DevAttrs)], cand: Pagemap) {
        let fresh = self.track.read().overlapping(s, e).all(|(_, r)| r.side.load(Ordering::Relaxed));
        self.rewrite_each(slots, s, e, true, |pieces| {
            let mut r = merge_pieces(pieces);
            // A neighbour widened over where it lay elsewhere may have come
            // along with the span's move: where it is now is unknown.
            if r.residency.is_some_and(|p| p != cand) {
                r.residency = None;
            }
            for &(slot, a) in applied {
                let mut attrs = r.attrs(slot);
                attrs.pref = a.pref;
                r.set_attrs(slot, attrs);
                // The madvise zapped its PTEs in that VM.
                r.set_bound(slot, false);
            }
            *r.side.get_mut() = fresh;
            r
        });
    }

    /// A span left to the faults: no side around it is advised over again
    /// (where its faults put it follows the advice it has now).
    pub(super) fn end_sides_in(&self, start: u64, end: u64) {
        for (_, r) in self.track.read().overlapping(start, end) {
            if r.side.load(Ordering::Relaxed) {
                r.side.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// Whether a device's GPU faults leave a range in `target` under the
/// preferred location recorded for its VM (docs/kernel-model.md §3.1; §14 rows 4,
/// 10, 12): its own VRAM under DEFAULT_DEVICE or named, a peer's only when
/// named, system memory under DEFAULT_SYSTEM (or on a device without VRAM).
/// Otherwise its next fault would migrate the range (rows 3, 5, 13), so the
/// placement is not done even where the pages are.
pub(super) fn faults_keep(dev: &Device, pref: PrefApplied, target: Pagemap) -> bool {
    match (target, pref) {
        (Pagemap::System, PrefApplied::DefaultSystem) => true,
        (Pagemap::System, PrefApplied::DefaultDevice) => !dev.has_vram(),
        (Pagemap::Vram { device, .. }, PrefApplied::DefaultDevice) => device == dev.slot,
        (Pagemap::Vram { device, .. }, PrefApplied::Device { slot, .. }) => slot == device,
        _ => false,
    }
}

/// Where a device's GPU faults put a range asked into `target` under the
/// preferred location recorded for its VM (`xe_vma_resolve_pagemap`,
/// docs/kernel-model.md §3.1): the named region (a peer's VRAM stays where
/// it is and is mapped over the link), system memory under DEFAULT_SYSTEM,
/// the faulting tile under DEFAULT_DEVICE (`target` where it is one of the
/// device's own, else its first; system memory on a device without VRAM).
/// `target` where the attributes are not known.
pub(super) fn faults_put(slots: &[Slot], dev: &Device, pref: PrefApplied, target: Pagemap) -> Pagemap {
    match pref {
        PrefApplied::DefaultSystem => Pagemap::System,
        PrefApplied::Device { slot, instance } => slots
            .get(slot as usize)
            .and_then(|s| s.dev.as_ref())
            .and_then(|d| d.tiles.iter().position(|t| t.is_some_and(|t| t.instance == instance)))
            .map_or(target, |tile| Pagemap::Vram { device: slot, tile: tile as u16 }),
        PrefApplied::DefaultDevice => match target {
            Pagemap::Vram { device, .. } if device == dev.slot => target,
            _ => dev.tiles.iter().position(Option::is_some).map_or(Pagemap::System, |tile| Pagemap::Vram { device: dev.slot, tile: tile as u16 }),
        },
    }
}

impl Context {
    /// Where device `dev`'s faults put [start, end) asked into `target`
    /// (`faults_put`), under the preferred location its records hold for
    /// the device's VM: where every piece agrees (a gap has the kernel's
    /// default, DEFAULT_DEVICE), else `target`.
    pub(super) fn faults_pagemap(&self, slots: &[Slot], dev: &Device, start: u64, end: u64, target: Pagemap) -> Pagemap {
        let track = self.track.read();
        // Bound for this device's VM in system memory (an eviction or a
        // placement there bound it), all of it: its kernel reads it there
        // and takes no fault that could move it.
        if track.covers(start, end) && track.overlapping(start, end).all(|(_, r)| r.residency == Some(Pagemap::System) && r.bound_for(dev.slot)) {
            return Pagemap::System;
        }
        let (mut at, mut pref) = (start, None);
        for (s, r) in track.overlapping(start, end) {
            let p = r.attrs(dev.slot).pref;
            let gap = (s > at).then_some(PrefApplied::DefaultDevice);
            if [gap, pref].into_iter().flatten().any(|q| q != p) {
                return target;
            }
            (at, pref) = (r.end, Some(p));
        }
        let p = pref.unwrap_or(PrefApplied::DefaultDevice);
        if at < end && p != PrefApplied::DefaultDevice {
            return target;
        }
        faults_put(slots, dev, p, target)
    }
}
