//! The runtime's strategy: prefetch each span a launch uses to where the
//! runtime's own prefetch would send it, as an explicit request
//! (policy/place.rs, the engine flag dropped). Its one decision is the
//! target; it keeps no state of its own.

use crate::track::Record;
use crate::topology::Pagemap;

/// Resolve without the rule cascade (`Config::engine_rules` off): the
/// runtime's advice for this device where it can be reached, else, for a
/// read of what the runtime marked read-mostly, where it lies if that is
/// system memory or the tile's VRAM and otherwise system memory (the hint
/// as include/xesvm.h states it, whichever engine runs), else the
/// accessing tile's VRAM if this context has room there (it holds what
/// it placed), else where the range is if reachable, else system
/// memory. A launch's data goes where the runtime's own prefetch sends
/// it (its device's VRAM); resolve's departures before this are a span
/// another tile of the device holds, used there (never dearer than the
/// move: the device reaches it at its local bandwidth), and a read of what
/// a linked peer holds served there (policy/resolve.rs), the one way an
/// engine placement can cost more than that prefetch. It
/// changes nothing: the call is a pure decision.
#[allow(clippy::too_many_arguments)]
pub(super) fn resolve_plain(rec: Option<&Record>, advised: Option<Pagemap>, read: bool, local: Pagemap, size: u64, placed: u64, capacity: u64, reachable: impl Fn(Pagemap) -> bool) -> Pagemap {
    if let Some(p) = advised.filter(|&p| reachable(p)) {
        return p;
    }
    if let Some(r) = rec.filter(|r| read && r.read_mostly) {
        return match r.residency {
            Some(p) if p == local || p == Pagemap::System => p,
            _ => Pagemap::System,
        };
    }
    if rec.is_some_and(|r| r.residency == Some(local)) || placed.saturating_add(size) <= capacity {
        return local;
    }
    rec.and_then(|r| r.residency).filter(|&p| reachable(p)).unwrap_or(Pagemap::System)
}
