//! Placement spans and 2 MiB chunks: a madvise that ends inside a chunk
//! splits the mirror VMA there, and the kernel then migrates the pieces in
//! 64 KiB and 4 KiB ranges, so a placement widens its attributes to whole
//! chunks where the neighbours are free or placed alike.

use super::*;

impl Context {
    /// Whether [start, end) lies inside one 2 MiB chunk, and another part of
    /// that chunk is recorded in `pm`.
    pub(super) fn chunk_mate_in(&self, start: u64, end: u64, pm: Pagemap) -> bool {
        let (cs, ce) = (start & !(CHUNK - 1), (start & !(CHUNK - 1)) + CHUNK);
        if end > ce || end - start == CHUNK {
            return false;
        }
        let track = self.track.read();
        let found = track.overlapping(cs, ce).any(|(s, r)| (s, r.end) != (start, end) && r.residency == Some(pm));
        found
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

impl Context {
    /// [start, end) widened to its 2 MiB chunks on each side where no other
    /// call holds the side and what is recorded there lives where this span
    /// goes (its attributes then are, or become, the same: a packed
    /// neighbor placed alike); elsewhere another placement's attributes
    /// stay as they are. A span already on chunk boundaries is returned as
    /// it is, with no lock taken.
    pub(super) fn chunk_sides(&self, start: u64, end: u64, cand: Pagemap) -> ChunkSides<'_> {
        let (lo, hi) = (start & !(CHUNK - 1), end.next_multiple_of(CHUNK).min(VA_LIMIT));
        let side = |s: u64, e: u64| {
            if s >= e {
                return None;
            }
            let g = self.ranges.try_lock(s, e)?;
            let alike = self.track.read().overlapping(s, e).all(|(_, r)| r.residency == Some(cand) && r.preferred.is_none());
            alike.then_some(g)
        };
        let (gl, gh) = (side(lo, start), side(end, hi));
        ChunkSides { start: if gl.is_some() { lo } else { start }, end: if gh.is_some() { hi } else { end }, _locks: [gl, gh] }
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
