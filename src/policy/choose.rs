//! The default engine's choice, per device and span the runtime knows,
//! among three strategies: the runtime's own (prefetch the span; for a
//! mapping found from a pointer, the faults), the kernel's (leave it to
//! the launch's faults) and the rule cascade (policy/resolve.rs: serve in
//! place, split birth, walks, widening). The choice follows what the
//! library measures: the time its own placements took (the driver's clock
//! around the call) and the launch durations the runtime reports from its
//! own timestamps (`Context::launch_done`, `svm_launch_report`), each
//! matched to the placements of its launch where the runtime announces its
//! submissions (`Context::launch_submitted`, `svm_launch_submit`; reports
//! come in submission order from an in-order queue). Without reports it
//! never changes: the runtime's strategy. With them, the spans one launch
//! asks for are known together too (what `Chooser::choose` returns beside
//! the strategy).
//!
//! # The rule and its regret
//!
//! Each (device, span) keeps the cost of a launch under each strategy:
//! the reported duration plus the placement time spent for it, the mean
//! of its last two launches there (a span two launches of a round use,
//! one dear and one cheap, is priced over the round). The prefetch's
//! trial is charged without its own move: a span that then stays in place
//! pays the move once, and charged with it the trial lost to a cascade
//! that rented the span in place launch after launch.
//! The cascade runs first; after `TRIAL_AFTER` launches the runtime's
//! prefetch runs once, then the faults once (not where the runtime asks
//! for the move now, nor for an atomic span the CPU takes back: the
//! kernel's atomic timeslice makes the CPU wait, unseen by any report),
//! each only when moving the span (at the rate the
//! device's last timed move took) costs at most a quarter of the cheapest
//! launch so far (`TRIAL_SHARE`), the faults also once it costs at most a
//! quarter of all the span's launches, whether or not the prefetch was
//! tried (below); from then on the cheapest of the
//! costs, switching only to one more than 2 % cheaper than the current
//! one's (the lazy leader: noise alone does not flip it, and the margin is
//! the one the engine is held to against the better baseline). A launch that
//! repeats (a loop: the only case where a choice can repeat its mistake)
//! costs about the same each time under one strategy, and so does a round
//! of two launches over the mean, so after the trials (and, for a round
//! of two, one more launch under each: a trial's mean is one launch's
//! until then) every later launch runs the cheapest: the regret against the best of
//! the three in hindsight (so against both baselines, the kernel and the
//! runtime's prefetch) is at most `TRIAL_AFTER` launches' cost difference
//! per span and the two trials', plus, where costs drift, one launch per
//! switch, each switch needing another to be more than 2 % cheaper. The
//! gate bounds each trial's own loss: a prefetch trial costs the move, at
//! most a quarter launch; a faults trial the move plus a fault service per range
//! (20 us per 2 MiB range against about 94 us for its copy,
//! docs/cost-model.md). A span whose move stays dear against one launch
//! gets the faults' trial once its launches have cost TRIAL_SHARE times
//! the move (ski rental: waiting costs at most that, the trial at most a
//! quarter of what the span has cost so far); the runtime's prefetch,
//! which would move all of it and its consequences onto other spans,
//! still waits for a cheap move. A mapping found from a pointer never runs the cascade (it
//! may hold a whole arena), so there the engine is the runtime. What is
//! not bounded: spans whose program ends before the trials, spans whose
//! costs depend on each other, and a runtime that places a span's next
//! launches before the trial's report comes: each of them runs the trial
//! too, so "once" is once per report (making them wait for it was
//! measured slower: the faults' repeated trial is what fixed an offload
//! program's LRU cliff, docs/design.md).
//!
//! The strategies: the kernel's is policy/faults.rs, the runtime's
//! policy/prefetch.rs, the cascade's rules policy/resolve.rs with the
//! placements they make (policy/birth.rs, the hand-off
//! pin and the thrash guard in policy/place.rs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{Context, DeviceHandle, MAX_DEVICES};
use crate::topology::Pagemap;
use crate::errno::Result;

/// How a launch's data gets where it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Nothing before the launch: its faults move what it touches.
    Faults,
    /// The span moves before the launch (VM_BIND PREFETCH).
    Prefetch,
    /// The rule cascade decides (`Config::engine_rules`'s engine: serve
    /// in place, split birth, walks, widening; policy/resolve.rs).
    Cascade,
}

impl Strategy {
    const ALL: [Strategy; 3] = [Strategy::Faults, Strategy::Prefetch, Strategy::Cascade];

    fn index(self) -> usize {
        self as usize
    }
}

/// What one (device, span) has cost under each strategy, last time.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// What a launch costs under each strategy (`Strategy::index`): the
    /// mean of its last two launches there. A span two launches of a
    /// round use (one writes a scratch buffer, the next reads it) is
    /// charged each one's cost in turn, and the last one alone compared a
    /// strategy's cheap launch with another's dear one: the faults, tried
    /// on the cheap one, stayed while the dear one cost 9x the cascade's
    /// (a free-reuse program 2.6x the prefetch).
    cost: [Option<u64>; 3],
    /// The last launch's cost under each strategy.
    last: [Option<u64>; 3],
    /// The strategy its last launch ran.
    current: Strategy,
    /// Launches reported under the cascade before the trial.
    seen: u32,
    /// When the device last used the span (`Launches::uses`).
    used_at: Option<u64>,
    /// What its reported launches cost in all (the faults' ski rental), as
    /// charged: the prefetch trial's without its move (docs/design.md).
    launches_ns: u64,
}

impl Default for Entry {
    fn default() -> Self {
        Entry { cost: [None; 3], last: [None; 3], current: Strategy::Cascade, seen: 0, used_at: None, launches_ns: 0 }
    }
}

/// A span of a launch.
#[derive(Clone, Copy)]
struct Use {
    /// (start, len).
    span: (u64, u64),
    /// The strategy the chooser gave it; None where only
    /// `Chooser::faulted` listed it (left to the faults whatever would
    /// run: its cost teaches nothing).
    strategy: Option<Strategy>,
    /// Whether its bytes count in the launch's (`Pending::bytes`).
    into_vram: bool,
    /// The driver clock when a placement left it to the launch's faults
    /// (`Chooser::faulted`).
    faulted_at: Option<u64>,
    /// The time its own placements for the launch took (within
    /// `Pending::spent_ns`).
    own_ns: u64,
    /// Listed as a peer-link read bought from the faults (`Chooser::listed`).
    bought: bool,
}

/// The spans placed for a device's launch not yet reported (each once),
/// the strategy each ran, and the placement time spent on it.
#[derive(Default)]
struct Pending {
    used: Vec<Use>,
    spent_ns: u64,
    /// Bytes of the spans asked into the device's VRAM for the launch so
    /// far (one served elsewhere after all is taken out again:
    /// `Chooser::served_outside`).
    bytes: u64,
}

/// A device's launches not yet reported: those the runtime said it
/// submitted (oldest first; its queue reports them in that order) and the
/// one being placed now; and a clock of its span uses (each launch's
/// spans once), which orders them for reuse distances.
#[derive(Default)]
struct Launches {
    submitted: std::collections::VecDeque<Pending>,
    open: Pending,
    uses: u64,
    /// Span lists of reported launches, kept for the next ones: a
    /// runtime's steady launches place and report without allocating.
    spare: Vec<Vec<Use>>,
    /// The context's report count (`Chooser::reports`) at this device's
    /// last report or submission; None before its first.
    heard_at: Option<u64>,
}

impl Launches {
    /// The bytes of the launch being placed, for a room check (0 where
    /// none is known). Only a device the runtime reports or submits
    /// launches of has launch boundaries: before its first, its open
    /// launch holds every placement since reports began, and it counts
    /// none; after STALE_REPORTS reports of other devices without one of
    /// its own (a runtime that stopped reporting it), its open launch's
    /// bytes start over. Else they would grow until every placement there
    /// failed the room check.
    fn open_bytes(&mut self, reports: u64) -> u64 {
        match self.heard_at {
            None => self.open.bytes = 0,
            Some(at) if reports.saturating_sub(at) > STALE_REPORTS => {
                self.open.bytes = 0;
                self.heard_at = Some(reports);
            }
            Some(_) => {}
        }
        self.open.bytes
    }

    /// Closes the launch being placed, opening the next with a spare list.
    fn close_open(&mut self) -> Pending {
        let used = self.spare.pop().unwrap_or_default();
        std::mem::replace(&mut self.open, Pending { used, ..Pending::default() })
    }
}

/// At most this many spans are remembered per device (a program that
/// churns through more starts over), this many spans wait for one
/// launch's report, and this many submitted launches for theirs.
const MAX_ENTRIES: usize = 4096;
const MAX_PENDING: usize = 64;
/// Other devices' reports after which a device's open launch, without a
/// report or submission of its own, counts as unreported (`Launches::
/// open_bytes`): generous against devices that take turns (four devices,
/// one report each per round, leave 3 between a device's own).
const STALE_REPORTS: u64 = 32;
/// Launches under the cascade before the runtime's strategy is tried once.
/// The two differ by up to one launch's cost either way, so each launch
/// the cascade runs where the runtime's strategy is cheaper loses at most
/// that: the trial caps the loss at TRIAL_AFTER launches per span, and a
/// trial costs at most one. A span's first launch pays births and first
/// moves whatever runs, its second the cascade's own buy of what it served
/// in place; from the third its cost is what a loop repeats, which is what
/// the comparison needs. Measured on generated programs (200 per seed,
/// geometric mean against the better baseline): 2 gave 0.84, 3 0.81, and
/// held out on seeds 21-22, 0.83 and 0.80 against 0.81 and 0.78.
const TRIAL_AFTER: u32 = 3;
/// A trial waits until it is cheap: moving the span (at what this device's
/// last move took per byte, the library's own timed prefetch) must cost at
/// most 1/TRIAL_SHARE of the span's last launch under the cascade. The
/// trial's price is that move, so a trial loses at most a quarter of a
/// launch; where moving costs more (the cascade serves it in place, or
/// holds it in system memory for the CPU), trying the prefetch would move
/// all of it and, for a CPU reader, back again, for the one launch the
/// comparison needs. Measured on generated programs in the timelines world
/// (200 per seed, geometric mean against the better baseline, seeds 1, 2
/// and held-out 21, 22): an ungated trial 0.823, 0.835, 0.841, 0.803; no
/// trial at all 0.795, 0.812, 0.822, 0.783; gated at 1, 0.794, 0.811,
/// 0.824, 0.776; at 4, 0.792, 0.808, 0.820, 0.772; at 16, 0.798, 0.814,
/// 0.824, 0.777.
const TRIAL_SHARE: f64 = 4.0;

/// What the chooser knows of one device: its spans' entries, its launches
/// in flight, and what its last move cost per byte. One lock per device:
/// placements for different devices never wait on each other, and a
/// placement takes its device's lock once.
#[derive(Default)]
struct Learned {
    entries: HashMap<(u64, u64), Entry, SpanHash>,
    launches: Launches,
    /// What its last placement that moved bytes took per byte moved (ns),
    /// the price of moving a span there.
    move_ns_per_byte: Option<f64>,
}

impl Learned {
    /// What moving `len` bytes there costs, as its last move took (None:
    /// nothing moved there yet).
    fn trial_ns(&self, len: u64) -> Option<f64> {
        self.move_ns_per_byte.map(|r| r * len as f64)
    }
}

/// A span's hash: its start and length mixed by one multiply (spans are
/// page-aligned addresses; SipHash's DoS resistance buys nothing here and
/// costs the hot path).
#[derive(Default, Clone, Copy)]
pub(super) struct SpanHash;

impl std::hash::BuildHasher for SpanHash {
    type Hasher = SpanHasher;
    fn build_hasher(&self) -> SpanHasher {
        SpanHasher(0)
    }
}

pub(super) struct SpanHasher(u64);

impl std::hash::Hasher for SpanHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub(crate) struct Chooser {
    /// Set by the first report: until then nothing is looked up.
    reported: AtomicBool,
    /// Reports so far, all devices together (`Launches::open_bytes`).
    reports: AtomicU64,
    devices: [Mutex<Learned>; MAX_DEVICES],
    /// Device slots without VRAM (bit = slot).
    no_vram: AtomicU64,
}

impl Default for Chooser {
    fn default() -> Self {
        Chooser { reported: AtomicBool::new(false), reports: AtomicU64::new(0), devices: std::array::from_fn(|_| Mutex::new(Learned::default())), no_vram: AtomicU64::new(0) }
    }
}

impl Entry {
    /// The strategy of the next launch: the cascade until TRIAL_AFTER
    /// launches are reported; then one trial of the runtime's prefetch and,
    /// where the span may be left to them (`faults_ok`), one of the faults,
    /// each once moving the span (`trial_ns`) costs at most 1/TRIAL_SHARE of
    /// the cheapest launch so far, the faults' also once it costs at most
    /// 1/TRIAL_SHARE of all the span's launches (`launches_ns`); then the lazy leader: the current
    /// strategy stays unless another's cost is more than 2 % lower, and
    /// then the cheapest runs.
    fn next(&self, trial_ns: Option<f64>, faults_ok: bool) -> Strategy {
        let cost = |s: Strategy| self.cost[s.index()];
        let Some(c) = cost(Strategy::Cascade) else { return self.current };
        let cheap = |base: u64| trial_ns.is_some_and(|t| t * TRIAL_SHARE <= base as f64);
        // Ski rental for the faults: once the span's launches have cost
        // TRIAL_SHARE times the move, its trial runs however dear the
        // move is against one launch (a span served over a link, or in
        // system memory, round after round).
        let rented = cheap(self.launches_ns);
        let faults_untried = faults_ok && cost(Strategy::Faults).is_none();
        match cost(Strategy::Prefetch) {
            None if self.seen >= TRIAL_AFTER && cheap(c) => return Strategy::Prefetch,
            None if self.seen >= TRIAL_AFTER && faults_untried && rented => return Strategy::Faults,
            None if cost(Strategy::Faults).is_none() => return Strategy::Cascade,
            Some(r) if faults_untried && (cheap(c.min(r)) || rented) => return Strategy::Faults,
            _ => {}
        }
        let allowed = |s: Strategy| faults_ok || s != Strategy::Faults;
        let known = Strategy::ALL.into_iter().filter(|&s| allowed(s)).filter_map(|s| cost(s).map(|x| (x, s)));
        let (best, pick) = known.min_by_key(|&(x, _)| x).expect("the cascade's cost is known");
        match cost(self.current).filter(|_| allowed(self.current)) {
            Some(cur) if best.saturating_mul(100) >= cur.saturating_mul(98) => self.current,
            _ => pick,
        }
    }
}

impl Chooser {
    /// Whether the runtime reports launch durations (else every choice is
    /// the runtime's own, with no lookup).
    pub(crate) fn learning(&self) -> bool {
        self.reported.load(Ordering::Relaxed)
    }

    fn device(&self, slot: u16) -> &Mutex<Learned> {
        &self.devices[slot as usize % MAX_DEVICES]
    }

    /// Whether the launch device `slot` is placing now has placed
    /// [start, start+len) already (with reports, which delimit launches).
    pub(crate) fn in_open_launch(&self, slot: u16, start: u64, len: u64) -> bool {
        self.learning() && self.device(slot).lock().launches.open.used.iter().any(|u| u.span == (start, len))
    }

    /// Whether device `slot`'s next launch over [start, start+len) runs
    /// the cascade (resolve asks; nothing changes).
    pub(crate) fn cascade_next(&self, slot: u16, start: u64, len: u64) -> bool {
        if !self.learning() || !self.has_vram(slot) {
            return false;
        }
        let d = self.device(slot).lock();
        d.entries.get(&(start, len)).is_none_or(|e| e.next(d.trial_ns(len), true) == Strategy::Cascade)
    }

    /// The strategy for device `slot`'s launch over [start, start+len), and
    /// the bytes of the launch's spans already placed into the device's
    /// VRAM (each once; known where the runtime reports launches, which
    /// delimits them; 0 without reports; this one counts where it is asked
    /// `into_vram`): `default` is the runtime's own (prefetch a span it
    /// knows, faults for a mapping found from a pointer). Without reports,
    /// and for a mapping found from a pointer, always that; for a span the
    /// runtime knows, with reports, the cascade first, the runtime's
    /// prefetch once after TRIAL_AFTER launches and the faults once (where
    /// `faults_ok`: the runtime did not ask for the move now), then the
    /// cheapest (`Entry::next`).
    pub(crate) fn choose(&self, slot: u16, start: u64, len: u64, default: Strategy, faults_ok: bool, into_vram: bool) -> (Strategy, u64) {
        if !self.learning() {
            return (default, 0);
        }
        let reports = self.reports.load(Ordering::Relaxed);
        let mut d = self.device(slot).lock();
        let before = d.launches.open_bytes(reports);
        // The cascade decides from spans: a mapping found from a pointer is
        // not what the kernel touches (it may hold a whole arena), so there
        // the runtime's own strategy, the faults, stays.
        if default == Strategy::Faults || !self.has_vram(slot) {
            return (default, before);
        }
        let Learned { entries, launches: l, move_ns_per_byte } = &mut *d;
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&(start, len)) {
            entries.clear();
        }
        let trial = move_ns_per_byte.map(|r| r * len as f64);
        let e = entries.entry((start, len)).or_default();
        let strategy = e.next(trial, faults_ok);
        if strategy != e.current {
            let ms = |s: Strategy| e.cost[s.index()].map_or(f64::NAN, |c| c as f64 / 1e6);
            crate::log!(
                crate::log::Level::Debug,
                "engine {} device {slot}: {strategy:?} next, where its last reported launch ran {:?} (costs: faults {:.3} ms, prefetch {:.3} ms, cascade {:.3} ms)",
                crate::log::Span(start, len),
                e.current,
                ms(Strategy::Faults),
                ms(Strategy::Prefetch),
                ms(Strategy::Cascade)
            );
        }
        // A span a launch lists twice is one span of it; one only the
        // faults listed (`faulted`) is chosen now.
        let listed = l.open.used.iter().position(|u| u.span == (start, len));
        if listed.is_none_or(|i| l.open.used[i].strategy.is_none()) {
            match listed {
                Some(i) => (l.open.used[i].strategy, l.open.used[i].into_vram) = (Some(strategy), into_vram),
                // Unlisted (past MAX_PENDING), its bytes stay counted.
                None if l.open.used.len() < MAX_PENDING => l.open.used.push(Use { span: (start, len), strategy: Some(strategy), into_vram, faulted_at: None, own_ns: 0, bought: false }),
                None => {}
            }
            if into_vram {
                l.open.bytes = l.open.bytes.saturating_add(len);
            }
            l.uses += 1;
            e.used_at = Some(l.uses);
        }
        (strategy, before)
    }

    /// Device `slot`'s launch leaves a span of `len` bytes to the faults
    /// whatever would run (a span devices took turns at,
    /// policy/faults.rs): its bytes count in the launch's (a later span's
    /// room check), its cost teaches no strategy. Returns the bytes placed
    /// for the launch before it.
    pub(crate) fn left_to_faults(&self, slot: u16, len: u64) -> u64 {
        let reports = self.reports.load(Ordering::Relaxed);
        let mut d = self.device(slot).lock();
        let before = d.launches.open_bytes(reports);
        d.launches.open.bytes = before.saturating_add(len);
        before
    }

    /// The placement of [start, start+len), asked into device `slot`'s VRAM
    /// for its open launch, left it outside (held in system memory, born
    /// there in pieces): its bytes take no room there, so a later span's
    /// room check (`policy/faults.rs`) does not count them.
    pub(crate) fn served_outside(&self, slot: u16, start: u64, len: u64) {
        let mut d = self.device(slot).lock();
        let open = &mut d.launches.open;
        if let Some(u) = open.used.iter_mut().find(|u| u.span == (start, len) && u.into_vram) {
            u.into_vram = false;
            open.bytes = open.bytes.saturating_sub(len);
        }
    }

    /// Lists [start, start+len), a peer-link read bought from the faults,
    /// in device `slot`'s open launch: its report tests the buy (rent.rs).
    pub(crate) fn listed(&self, slot: u16, start: u64, len: u64) {
        let mut d = self.device(slot).lock();
        let used = &mut d.launches.open.used;
        if let Some(u) = used.iter_mut().find(|u| u.span == (start, len)) {
            u.bought = true;
        } else if used.len() < MAX_PENDING {
            used.push(Use { span: (start, len), strategy: None, into_vram: false, faulted_at: None, own_ns: 0, bought: true });
        }
    }

    /// The placement of [start, start+len) for device `slot`'s open launch
    /// left it to the launch's faults at driver clock `now`; the faults
    /// take what the kernel touches once it runs, and the launch's report
    /// passes the span on (`launch_done`). Listed once per launch, also
    /// before reports begin (the first report takes the placements before
    /// it); the list stays bounded (MAX_PENDING, shared with the chosen
    /// spans).
    pub(crate) fn faulted(&self, slot: u16, start: u64, len: u64, now: u64) {
        let mut d = self.device(slot).lock();
        let used = &mut d.launches.open.used;
        if let Some(u) = used.iter_mut().find(|u| u.span == (start, len)) {
            u.faulted_at.get_or_insert(now);
        } else if used.len() < MAX_PENDING {
            used.push(Use { span: (start, len), strategy: None, into_vram: false, faulted_at: Some(now), own_ns: 0, bought: false });
        }
    }

    /// Whether device `slot`'s launches used more than `cap` distinct bytes
    /// since its last use of [start, start+len): the spans with a later
    /// use, each once (its LRU stack distance; false where it was not used
    /// since reports began). Then a span moved to a VRAM of `cap` bytes now
    /// is evicted (the kernel evicts the least recently used) before its
    /// next use if the pattern repeats. Walks this device's spans until
    /// the sum passes `cap`: asked only where resolve would buy.
    pub(crate) fn reused_beyond(&self, slot: u16, start: u64, len: u64, cap: u64) -> bool {
        let d = self.device(slot).lock();
        let Some(at) = d.entries.get(&(start, len)).and_then(|e| e.used_at) else { return false };
        let mut sum = 0u64;
        d.entries.iter().filter(|(_, e)| e.used_at.is_some_and(|u| u > at)).any(|(k, _)| {
            sum += k.1;
            sum > cap
        })
    }

    /// Placement time spent on `span` for device `slot`'s coming launch,
    /// and the bytes it moved.
    pub(crate) fn spent(&self, slot: u16, span: (u64, u64), ns: u64, moved: u64) {
        // A call that took no time and moved nothing (found in place on a
        // clock that did not move) changes nothing: no lock.
        if self.learning() && (ns > 0 || moved > 0) {
            let mut d = self.device(slot).lock();
            d.launches.open.spent_ns += ns;
            if let Some(u) = d.launches.open.used.iter_mut().find(|u| u.span == span) {
                u.own_ns = u.own_ns.saturating_add(ns);
            }
            if moved > 0 {
                d.move_ns_per_byte = Some(ns as f64 / moved as f64);
            }
        }
    }

    /// The runtime's report: device `slot`'s launch took `duration_ns` (the
    /// oldest submitted one not yet reported, else the placements since the
    /// previous report). Each allocation placed for it learns the launch's
    /// cost under the strategy it ran, and follows it from now on.
    /// `used` is called with each span the launch used, when its
    /// placement left it to the faults if it did, and whether as bought
    /// (`listed`), after the device's lock is released (it may take the
    /// records' lock, which placements take before this one). Returns
    /// whether this was the first report (the launches before it were
    /// not recorded).
    pub(crate) fn launch_done(&self, slot: u16, duration_ns: u64, mut used: impl FnMut(u64, u64, Option<u64>, bool)) -> bool {
        let first = !self.reported.swap(true, Ordering::Relaxed);
        let reports = self.reports.fetch_add(1, Ordering::Relaxed) + 1;
        let mut spans = {
            let mut d = self.device(slot).lock();
            let Learned { entries, launches: l, .. } = &mut *d;
            l.heard_at = Some(reports);
            let mut p = match l.submitted.pop_front() {
                Some(p) => p,
                None => l.close_open(),
            };
            let cost = duration_ns.saturating_add(p.spent_ns);
            for &Use { span, strategy, own_ns, .. } in &p.used {
                let Some(strategy) = strategy else { continue };
                if let Some(e) = entries.get_mut(&span) {
                    let i = strategy.index();
                    // The prefetch's trial carries its own move, which a
                    // span that stays in place pays once: its launches
                    // after cost the rest (ski rental: the buy is not the
                    // rent). Its next launch there corrects the estimate.
                    let cost = if strategy == Strategy::Prefetch && e.last[i].is_none() { cost.saturating_sub(own_ns) } else { cost };
                    e.cost[i] = Some(e.last[i].map_or(cost, |p| p / 2 + cost / 2));
                    e.last[i] = Some(cost);
                    e.launches_ns = e.launches_ns.saturating_add(cost);
                    if strategy == Strategy::Cascade {
                        e.seen = e.seen.saturating_add(1);
                    }
                    e.current = strategy;
                }
            }
            std::mem::take(&mut p.used)
        };
        for u in &spans {
            used(u.span.0, u.span.1, u.faulted_at, u.bought);
        }
        spans.clear();
        let mut d = self.device(slot).lock();
        if d.launches.spare.len() < 4 {
            d.launches.spare.push(spans);
        }
        first
    }

    /// The runtime submitted device `slot`'s launch: the placements since
    /// the previous submission are that launch's, and its report (reports
    /// come in submission order, from an in-order queue) is theirs.
    pub(crate) fn launch_submitted(&self, slot: u16) {
        let reports = self.reports.load(Ordering::Relaxed);
        let mut d = self.device(slot).lock();
        let l = &mut d.launches;
        l.heard_at = Some(reports);
        if l.submitted.len() >= MAX_PENDING {
            l.submitted.pop_front(); // never reported: forgotten
        }
        let p = l.close_open();
        l.submitted.push_back(p);
    }

    /// A device opened in `slot`. One without VRAM (an integrated GPU)
    /// always runs the runtime's strategy: every strategy leaves its data in
    /// system memory, where the runtime's prefetch also binds it at each
    /// launch, so the cascade has nothing to offer but a skipped bind.
    pub(crate) fn opened(&self, slot: u16, has_vram: bool) {
        let bit = 1u64 << (slot % 64);
        match has_vram {
            true => self.no_vram.fetch_and(!bit, Ordering::Relaxed),
            false => self.no_vram.fetch_or(bit, Ordering::Relaxed),
        };
    }

    fn has_vram(&self, slot: u16) -> bool {
        self.no_vram.load(Ordering::Relaxed) & (1u64 << (slot % 64)) == 0
    }

    /// Forgets device `slot` (closed).
    pub(crate) fn forget(&self, slot: u16) {
        *self.device(slot).lock() = Learned::default();
        self.opened(slot, true);
    }
}

impl Context {
    /// The runtime's report that device `h`'s launch took `duration_ns`:
    /// the oldest one [`Context::launch_submitted`] announced and not yet
    /// reported, else the one placed by the calls since the previous
    /// report (from the runtime's own
    /// timestamps: submission to completion, its GPU faults included). The
    /// default engine learns from it which strategy each allocation costs
    /// least under (policy/choose.rs); without reports it keeps the
    /// runtime's defaults. Errors: EBADF for a closed handle.
    pub fn launch_done(&self, h: DeviceHandle, duration_ns: u64) -> Result<()> {
        // Held to the end: a close forgets the slot's state under the
        // write lock, so a stale handle's report cannot land in the
        // state of the device opened in its slot next.
        let slots = self.slots.read();
        Context::device_in(&slots, h)?;
        // The host may touch what the launch used from now on: a look at
        // the page table from before does not vouch for those ranges
        // (policy/observe.rs, `recheck`). The spans of launches placed
        // before the first report were not recorded: there, every range.
        let now = self.driver.now_ns().max(1);
        // A span the launch left to its faults: they have run now
        // (`Record::faults_ran`), on the records inside it only (the
        // faults stay within it).
        let mark = |start: u64, end: u64, faulted_at: Option<u64>, bought: bool| {
            // Where the records hold the whole span: all in system memory,
            // or all in this device's VRAM (policy/rent.rs).
            let (mut system, mut own, mut at) = (true, true, start);
            for (rs, r) in self.track.read().overlapping(start, end) {
                r.reported_at.fetch_max(now, Ordering::Relaxed);
                if let Some(at) = faulted_at.filter(|_| rs >= start && r.end <= end) {
                    r.faults_ran(h.slot, at);
                }
                let joined = rs <= at;
                system &= joined && r.residency == Some(Pagemap::System);
                own &= joined && r.residency.and_then(|p| p.device()) == Some(h.slot);
                at = at.max(r.end);
            }
            let whole = at >= end;
            self.rent.reported(h.slot, start, end - start, duration_ns, system && whole, own && whole);
            self.rent.peer_reported(h.slot, start, end - start, duration_ns, bought);
        };
        self.rent.report(h.slot);
        if self.chooser.launch_done(h.slot, duration_ns, |start, len, faulted_at, bought| mark(start, start + len, faulted_at, bought)) {
            mark(0, super::VA_LIMIT, None, false);
        }
        Ok(())
    }

    /// What a placement for device `h`'s open launch teaches the chooser:
    /// the span asked into its VRAM but served `outside` it takes no room
    /// there, and the placement took the time since driver clock `t0` to
    /// move `moved` bytes. Only while the handle still names the device: a
    /// close forgets the slot's state under the slots' write lock.
    pub(super) fn placement_learned(&self, h: DeviceHandle, span: (u64, u64), outside: bool, t0: Option<u64>, moved: u64) {
        if !outside && t0.is_none() {
            return;
        }
        let slots = self.slots.read();
        if Context::device_in(&slots, h).is_err() {
            return;
        }
        if outside {
            self.chooser.served_outside(h.slot, span.0, span.1);
        }
        if let Some(t0) = t0 {
            self.chooser.spent(h.slot, span, self.driver.now_ns().saturating_sub(t0), moved);
        }
    }

    /// The runtime's word that device `h`'s launch, placed by the calls
    /// since its previous submission, is submitted. With it, the reports
    /// that follow (in submission order) are matched launch by launch,
    /// however far the runtime runs ahead of its queue; without it a report
    /// covers every placement since the previous report. Errors: EBADF for
    /// a closed handle.
    pub fn launch_submitted(&self, h: DeviceHandle) -> Result<()> {
        // Held to the end: a close forgets the slot under the write lock,
        // so a stale handle's word cannot land on the slot's next device.
        let slots = self.slots.read();
        Context::device_in(&slots, h)?;
        self.chooser.launch_submitted(h.slot);
        self.rent.submitted(h.slot);
        Ok(())
    }
}

#[cfg(test)]
#[path = "choose_tests.rs"]
mod tests;
