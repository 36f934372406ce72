//! The kernel's strategy: leave a span to the launch's faults, which move
//! what the kernel touches as it touches it. The runtime's strategy gives
//! way to it where placing a span first costs more than the faults can: a
//! launch larger than the tile's VRAM, and a span devices take turns at
//! (its state: `Turns`). Where launch reports show the faults cheapest for
//! a span, the chooser runs them there too (policy/choose.rs).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::{Context, Device};
use crate::topology::Pagemap;

/// Spans several devices took turns at (set the first time one is asked
/// for by a device while another's VRAM holds it): left to the faults from
/// then on, for every device.
#[derive(Default)]
pub(crate) struct Turns {
    shared: Mutex<HashSet<(u64, u64)>>,
    /// Whether `shared` holds anything (the hot path's one load).
    any: AtomicBool,
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
    /// runtime without xesvm.
    pub(crate) fn shared(&self, slot: u16, start: u64, len: u64, held_by: Option<u16>) -> bool {
        if held_by.is_some_and(|d| d != slot) {
            self.shared.lock().insert((start, len));
            self.any.store(true, Ordering::Relaxed);
            return true;
        }
        self.any.load(Ordering::Relaxed) && self.shared.lock().contains(&(start, len))
    }
}

impl Context {
    /// Whether an engine placement not in place is left to the launch's
    /// faults:
    /// - the span, with the launch's spans placed before it (`before`,
    ///   known where launch reports delimit launches), larger than the
    ///   tile's VRAM, whatever strategy runs: placing it would evict the
    ///   launch's own spans, or its own beginning, before the kernel reads
    ///   them;
    /// - where turns between devices count (`turns`: the runtime's
    ///   strategy, the thrash guard not ignored; the cascade has its own
    ///   thrash guard), a span another device's VRAM holds any of, as the
    ///   records say (a placement widens its record to whole chunks): a
    ///   span devices take turns at (`Turns`).
    ///
    /// The faults move what the kernel touches as it touches it, never
    /// worse than the kernel alone for that span.
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
        let held_by = self
            .track
            .read()
            .overlapping(start, end)
            .filter(|&(s, r)| super::record::speaks_for(s, r.end, start, end))
            .filter_map(|(_, r)| r.residency.and_then(|p| p.device()))
            .find(|&d| d != slot);
        self.turns.shared(slot, start, len, held_by)
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
}
