//! The default engine's one choice, per allocation and device: leave a
//! launch's data to the kernel's faults, or prefetch it before the launch.
//! The choice follows what the library measures: the time its own
//! placements took (the driver's clock around the call) and the launch
//! durations the runtime reports from its own timestamps
//! (`Context::launch_done`, `svm_launch_report`). Without reports it never
//! changes: the runtime's default for the level (prefetch a span it knows,
//! leave an allocation found from a pointer to the faults).
//!
//! # The rule and its regret
//!
//! Each (device, allocation) keeps the cost of the last launch under each
//! strategy: the reported duration plus the placement time spent for it.
//! The first launches run the default; the eleventh the other strategy
//! (`TRIAL_AFTER`: a trial pays only in a loop; prefetch only where the
//! allocation fits the room this context has in the tile's VRAM, so that
//! trying it never evicts); from then on the
//! cheaper of the two last costs, switching only when the other is at
//! least 5 % cheaper (the lazy leader: noise alone does not flip it).
//! A launch that repeats (a loop: the only case where a choice can repeat
//! its mistake) costs about the same each time under one strategy, so
//! after the trial every later launch runs the cheaper one: the regret
//! against the better strategy in hindsight is at most the first ten
//! launches' and the trial's cost differences per allocation, plus, where
//! costs drift, one launch per switch, each switch needing the other to be
//! 5 % cheaper.
//! Against the runtime alone (which is one of the two strategies at each
//! level) the same bound holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::{Context, DeviceHandle};
use crate::errno::Result;

/// How a launch's data gets where it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Nothing before the launch: its faults move what it touches.
    Faults,
    /// The span moves before the launch (VM_BIND PREFETCH).
    Prefetch,
}

/// What one (device, allocation) has cost under each strategy, last time.
#[derive(Clone, Copy, Debug)]
struct Entry {
    faults_ns: Option<u64>,
    prefetch_ns: Option<u64>,
    current: Strategy,
    /// Launches reported under the default before the trial.
    seen: u32,
}

impl Entry {
    fn cost(&self, s: Strategy) -> Option<u64> {
        match s {
            Strategy::Faults => self.faults_ns,
            Strategy::Prefetch => self.prefetch_ns,
        }
    }
}

/// The strategies used for a device's launch not yet reported, and the
/// placement time spent on it.
#[derive(Default)]
struct Pending {
    used: Vec<((u64, u64), Strategy)>,
    spent_ns: u64,
}

/// At most this many allocations are remembered per context (a program
/// that churns through more starts over with the defaults), and this many
/// placements wait for one report.
const MAX_ENTRIES: usize = 4096;
const MAX_PENDING: usize = 64;
/// Launches under the default before the other strategy is tried. A trial
/// can cost up to one copy of the allocation more than the default (a
/// prefetch of all of it where the kernel touched little), and what the
/// better strategy saves per launch is at least one GPU fault's service per
/// 2 MiB range (the faults a prefetch avoids, or the copy of what faults
/// would not have touched). One 2 MiB copy costs about ten fault services
/// (19 us + 30 us fixed and 2 MiB over a 13-50 GB/s host link, against 20
/// us, docs/cost-model.md): a trial pays for itself only in a loop of ten
/// launches or more, so it waits for ten.
const TRIAL_AFTER: u32 = 10;

#[derive(Default)]
pub(crate) struct Chooser {
    /// Set by the first report: until then nothing is looked up.
    reported: AtomicBool,
    /// Spans several devices took turns at (set the first time one is
    /// asked for by a device while another's VRAM holds it): left to the
    /// faults from then on, for every device.
    shared: Mutex<std::collections::HashSet<(u64, u64)>>,
    /// Whether `shared` holds anything (the hot path's one load).
    any_shared: AtomicBool,
    entries: Mutex<HashMap<(u16, u64, u64), Entry>>,
    pending: Mutex<HashMap<u16, Pending>>,
}

impl Chooser {
    /// Whether the runtime reports launch durations (else every choice is
    /// the default, with no lookup).
    pub(crate) fn learning(&self) -> bool {
        self.reported.load(Ordering::Relaxed)
    }

    /// The strategy for device `slot`'s launch over [start, start+len):
    /// `default` is the runtime's own; `may_try_prefetch` says whether the
    /// span fits the room left in the target.
    pub(crate) fn choose(&self, slot: u16, start: u64, len: u64, default: Strategy, may_try_prefetch: bool) -> Strategy {
        if !self.learning() {
            return default;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&(slot, start, len)) {
            entries.clear();
        }
        let e = entries.entry((slot, start, len)).or_insert(Entry { faults_ns: None, prefetch_ns: None, current: default, seen: 0 });
        let other = match e.current {
            Strategy::Faults => Strategy::Prefetch,
            Strategy::Prefetch => Strategy::Faults,
        };
        let s = match (e.cost(e.current), e.cost(other)) {
            // The trial of the other strategy, once, after the default ran
            // TRIAL_AFTER times (a loop, where what it teaches is used again).
            (Some(_), None) if e.seen >= TRIAL_AFTER && (other == Strategy::Faults || may_try_prefetch) => other,
            // The lazy leader.
            (Some(cur), Some(oth)) if oth.saturating_mul(100) < cur.saturating_mul(95) && (other == Strategy::Faults || may_try_prefetch) => other,
            _ => e.current,
        };
        drop(entries);
        let mut pending = self.pending.lock();
        let p = pending.entry(slot).or_default();
        if p.used.len() < MAX_PENDING {
            p.used.push(((start, len), s));
        }
        s
    }

    /// Whether [start, start+len) is shared between devices: asked for by
    /// one while `held_by` (the record's residency) is another's VRAM, now
    /// or before. A prefetch of a whole span that devices take turns at
    /// moves all of it at every turn, where each device's faults move only
    /// what its kernel touches (a row split, a slice of the input): at
    /// worst the faults cost one fault service per 2 MiB range more than
    /// the prefetch (a tenth of its copy, see TRIAL_AFTER), at best they
    /// save every untouched byte's round trip. The choice is the kernel's
    /// own, so it is never worse than the runtime without xesvm.
    pub(crate) fn shared(&self, slot: u16, start: u64, len: u64, held_by: Option<u16>) -> bool {
        if held_by.is_some_and(|d| d != slot) {
            self.shared.lock().insert((start, len));
            self.any_shared.store(true, Ordering::Relaxed);
            return true;
        }
        self.any_shared.load(Ordering::Relaxed) && self.shared.lock().contains(&(start, len))
    }

    /// Placement time spent for device `slot`'s coming launch.
    pub(crate) fn spent(&self, slot: u16, ns: u64) {
        if self.learning() {
            self.pending.lock().entry(slot).or_default().spent_ns += ns;
        }
    }

    /// The runtime's report: device `slot`'s launch took `duration_ns`.
    /// Each allocation placed for it learns the launch's cost under the
    /// strategy it ran, and follows it from now on.
    pub(crate) fn launch_done(&self, slot: u16, duration_ns: u64) {
        self.reported.store(true, Ordering::Relaxed);
        let Some(p) = self.pending.lock().remove(&slot) else { return };
        let cost = duration_ns.saturating_add(p.spent_ns);
        let mut entries = self.entries.lock();
        for ((start, len), s) in p.used {
            if let Some(e) = entries.get_mut(&(slot, start, len)) {
                match s {
                    Strategy::Faults => e.faults_ns = Some(cost),
                    Strategy::Prefetch => e.prefetch_ns = Some(cost),
                }
                e.seen = e.seen.saturating_add(1);
                e.current = s;
            }
        }
    }

    /// Forgets device `slot` (closed).
    pub(crate) fn forget(&self, slot: u16) {
        self.pending.lock().remove(&slot);
        self.entries.lock().retain(|k, _| k.0 != slot);
    }
}

impl Context {
    /// The runtime's report that device `h`'s launch, placed by the calls
    /// since its last report, took `duration_ns` (from the runtime's own
    /// timestamps: submission to completion, its GPU faults included). The
    /// default engine learns from it which strategy each allocation costs
    /// least under (policy/choose.rs); without reports it keeps the
    /// runtime's defaults. Errors: EBADF for a closed handle.
    pub fn launch_done(&self, h: DeviceHandle, duration_ns: u64) -> Result<()> {
        Context::device_in(&self.slots.read(), h)?;
        self.chooser.launch_done(h.slot, duration_ns);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without reports the default always; with them, the default ten
    /// times, one trial of the other, then the cheaper, switching back only
    /// when the other is 5 % cheaper.
    #[test]
    fn the_default_then_one_trial_then_the_lazy_leader() {
        let c = Chooser::default();
        assert_eq!(c.choose(0, 0, 4096, Strategy::Faults, true), Strategy::Faults);
        assert!(!c.learning());
        c.launch_done(0, 1_000);
        for _ in 0..TRIAL_AFTER {
            assert_eq!(c.choose(0, 0, 4096, Strategy::Faults, true), Strategy::Faults);
            c.launch_done(0, 1_000);
        }
        // The trial; prefetch turns out cheaper: it stays.
        assert_eq!(c.choose(0, 0, 4096, Strategy::Faults, true), Strategy::Prefetch);
        c.spent(0, 100);
        c.launch_done(0, 500);
        assert_eq!(c.choose(0, 0, 4096, Strategy::Faults, true), Strategy::Prefetch);
        // It gets dearer than the faults were, but within 5 %: it stays.
        c.launch_done(0, 1_040);
        assert_eq!(c.choose(0, 0, 4096, Strategy::Faults, true), Strategy::Prefetch);
        // Dearer by more: back to the faults.
        c.launch_done(0, 2_000);
        assert_eq!(c.choose(0, 0, 4096, Strategy::Faults, true), Strategy::Faults);
        // Another device and another span start over.
        assert_eq!(c.choose(1, 0, 4096, Strategy::Prefetch, true), Strategy::Prefetch);
        assert_eq!(c.choose(0, 4096, 4096, Strategy::Faults, true), Strategy::Faults);
    }

    /// A prefetch is never tried where it does not fit.
    #[test]
    fn no_trial_of_a_prefetch_that_does_not_fit() {
        let c = Chooser::default();
        for _ in 0..=TRIAL_AFTER + 2 {
            assert_eq!(c.choose(0, 0, 4096, Strategy::Faults, false), Strategy::Faults);
            c.launch_done(0, 1_000);
        }
    }

    /// A span another device's VRAM held when this one asked is shared
    /// from then on, for every device.
    #[test]
    fn a_span_devices_take_turns_at_is_shared() {
        let c = Chooser::default();
        assert!(!c.shared(0, 0, 4096, Some(0)));
        assert!(!c.shared(0, 0, 4096, None));
        assert!(c.shared(1, 0, 4096, Some(0)));
        assert!(c.shared(0, 0, 4096, Some(0)));
        assert!(!c.shared(0, 4096, 4096, None));
        c.forget(0);
        assert!(c.shared(1, 0, 4096, None), "a span's sharing is not a device's");
    }
}
