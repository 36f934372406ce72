//! The simulated machine's clocks (docs/cost-model.md, "Timelines"): one
//! per engine (each host thread, each device's compute engine and copy
//! engine) and a work clock per shared lane (each device's host link in
//! each direction, and the host's memory). An operation starts when its
//! engine is free and what it waits for is done, and moves only the clocks
//! it uses; the program's time is when the last engine finishes
//! ([`Sim::makespan_ns`]).
//!
//! Placement state changes in submission order (each call runs to its end
//! before the next); the clocks say when each piece of it ran. A launch is
//! queued ([`Sim::enqueue`]): it starts when its device's compute engine is
//! free, when the host submitted it, and after what the caller says it
//! waits for, and its faults, copies and memory time move the compute
//! engine's clock, not the host's.
//!
//! Calls are simulated in submission order, not in time order: a fault in a
//! launch queued earlier may run later on the clocks than a prefetch the
//! host issues after it. So a copy engine keeps the intervals it is busy
//! (a copy takes the first gap long enough from when it may start), and a
//! lane keeps how much of its bandwidth is in use over time (a transfer
//! uses what is left, up to its own rate, and ends when its bytes are
//! through). Transfers that overlap on a lane therefore finish when the
//! lane's bandwidth allows all of their bytes through; the one simulated
//! first gets its full rate.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Sim, TimeCategory};

/// Host threads a program may act from: 0 submits, the others are helper
/// threads (a runtime's or the library's placement thread).
pub const HOST_THREADS: usize = 4;

/// A lane whose bandwidth overlapping transfers share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lane {
    /// A device's host link, toward the device (host-to-device, and a
    /// peer's writes into it).
    Into(u32),
    /// A device's host link, away from it.
    OutOf(u32),
    /// The host's memory.
    HostMemory,
}

/// Who runs the calling code: a host thread, or a device's compute engine
/// during a launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Actor {
    Host(usize),
    Compute(u32),
}

thread_local! {
    /// The device whose launch the calling OS thread is running, if any:
    /// what it spends goes on that device's compute engine.
    static IN_LAUNCH: Cell<Option<u32>> = const { Cell::new(None) };
}

/// An engine that runs one thing at a time, reserved out of time order:
/// its busy intervals, start to end, disjoint.
#[derive(Default)]
struct Busy(BTreeMap<u64, u64>);

impl Busy {
    /// The first time from `from` at which it is free for `len` ns.
    fn earliest(&self, from: u64, len: u64) -> u64 {
        let mut at = from;
        if let Some((_, &e)) = self.0.range(..=from).next_back() {
            at = at.max(e);
        }
        for (&s, &e) in self.0.range(from..) {
            if s >= at.saturating_add(len) {
                break;
            }
            at = at.max(e);
        }
        at
    }

    /// The next busy interval's start after `at`, if any.
    fn next_start(&self, at: u64) -> u64 {
        self.0.range(at..).next().map_or(u64::MAX, |(&s, _)| s)
    }

    fn reserve(&mut self, start: u64, end: u64) {
        if end > start {
            self.0.insert(start, end);
        }
    }

    fn end(&self) -> u64 {
        self.0.values().next_back().copied().unwrap_or(0)
    }
}

/// A lane's bandwidth in use over time: from each key to the next, the
/// share in use (0 to 1); none before the first key.
#[derive(Default)]
struct Share(BTreeMap<u64, f64>);

impl Share {
    fn at(&self, t: u64) -> f64 {
        self.0.range(..=t).next_back().map_or(0.0, |(_, &u)| u)
    }

    fn next_change(&self, t: u64) -> u64 {
        self.0.range(t + 1..).next().map_or(u64::MAX, |(&k, _)| k)
    }

    /// Adds `u` in use over [a, b).
    fn add(&mut self, a: u64, b: u64, u: f64) {
        if b <= a || u <= 0.0 {
            return;
        }
        let (at_a, at_b) = (self.at(a), self.at(b));
        self.0.insert(a, at_a);
        self.0.insert(b, at_b);
        for (_, v) in self.0.range_mut(a..b) {
            *v = (*v + u).min(1.0);
        }
    }
}

/// Spans of memory with a time each: a launch's argument with when it
/// ends (its pages are in use until then), or a copied range with when
/// its copy ends (its pages are there from then).
#[derive(Default)]
struct Spans(Vec<(u64, u64, u64)>);

impl Spans {
    /// The latest time of any span overlapping [start, end).
    fn latest(&self, start: u64, end: u64) -> u64 {
        self.0.iter().filter(|&&(s, e, _)| s < end && start < e).map(|&(_, _, t)| t).max().unwrap_or(0)
    }

    /// Records one, forgetting those whose time no future operation can
    /// start before (`floor`).
    fn record(&mut self, start: u64, end: u64, at: u64, floor: u64) {
        if self.0.len() >= 64 {
            self.0.retain(|&(_, _, t)| t > floor);
        }
        self.0.push((start, end, at));
    }
}

/// The host threads' and compute engines' clocks: written only under the
/// timelines' lock (with the engines and lanes they move with), read
/// without it, as `CLOCK_MONOTONIC` is read (a vDSO call that takes no
/// lock): the library's decision path reads the clock on every call.
pub(super) struct Clocks {
    host: [AtomicU64; HOST_THREADS],
    compute: Box<[AtomicU64]>,
}

impl Clocks {
    pub(super) fn new(devices: usize) -> Self {
        Clocks { host: std::array::from_fn(|_| AtomicU64::new(0)), compute: (0..devices).map(|_| AtomicU64::new(0)).collect() }
    }

    fn of(&self, a: Actor) -> &AtomicU64 {
        match a {
            Actor::Host(t) => &self.host[t],
            Actor::Compute(d) => &self.compute[d as usize],
        }
    }

    fn get(&self, a: Actor) -> u64 {
        self.of(a).load(Ordering::Acquire)
    }

    /// Sets a clock; the caller holds the timelines' lock.
    fn set(&self, a: Actor, ns: u64) {
        self.of(a).store(ns, Ordering::Release);
    }
}

/// Every engine's clock but the host threads' and compute engines'
/// ([`Clocks`]), and every lane's share in use.
pub(super) struct Timelines {
    /// Launches' arguments, until they end: a copy of their pages waits
    /// for them (placement state follows submission order, so a copy must
    /// not move pages a launch queued before it is still using).
    in_use: Spans,
    /// Copied ranges, from when they arrive: a launch or CPU access to
    /// their pages waits for them.
    arrived: Spans,
    copy: Vec<Busy>,
    into: Vec<Share>,
    out_of: Vec<Share>,
    host_memory: Share,
}

/// Below this share a lane is full.
const FULL: f64 = 1.0 - 1e-9;

impl Timelines {
    pub(super) fn new(devices: usize) -> Self {
        let per_device = |_| Share::default();
        Timelines {
            in_use: Spans::default(),
            arrived: Spans::default(),
            copy: (0..devices).map(|_| Busy::default()).collect(),
            into: (0..devices).map(per_device).collect(),
            out_of: (0..devices).map(per_device).collect(),
            host_memory: Share::default(),
        }
    }

    fn lane(&self, l: Lane) -> &Share {
        match l {
            Lane::Into(d) => &self.into[d as usize],
            Lane::OutOf(d) => &self.out_of[d as usize],
            Lane::HostMemory => &self.host_memory,
        }
    }

    fn lane_mut(&mut self, l: Lane) -> &mut Share {
        match l {
            Lane::Into(d) => &mut self.into[d as usize],
            Lane::OutOf(d) => &mut self.out_of[d as usize],
            Lane::HostMemory => &mut self.host_memory,
        }
    }

    /// A transfer from `start` that takes `ns` at its own rate and needs
    /// `work` ns of each lane's full bandwidth: the pieces it runs in,
    /// (from, to, its rate as a share of its own), over what the lanes
    /// have left. Its end is the last piece's.
    fn fill(&self, start: u64, ns: u64, lanes: &[(Lane, f64)]) -> Vec<(u64, u64, f64)> {
        let phi: Vec<f64> = lanes.iter().map(|&(_, w)| if ns == 0 { 0.0 } else { w / ns as f64 }).collect();
        let (mut t, mut left, mut pieces) = (start, ns as f64, Vec::new());
        while left > 0.5 {
            let mut rate: f64 = 1.0;
            let mut next = u64::MAX;
            for (&(l, _), &p) in lanes.iter().zip(&phi) {
                let lane = self.lane(l);
                if p > 0.0 {
                    rate = rate.min((1.0 - lane.at(t)).max(0.0) / p);
                }
                next = next.min(lane.next_change(t));
            }
            if rate < 1.0 - FULL {
                t = next;
                continue;
            }
            let need = (left / rate).ceil() as u64;
            let until = next.min(t.saturating_add(need));
            pieces.push((t, until, rate));
            left -= (until - t) as f64 * rate;
            t = until;
        }
        if pieces.is_empty() {
            pieces.push((start, start + ns, 1.0));
        }
        pieces
    }

    /// Takes the pieces' shares of each lane.
    fn take(&mut self, pieces: &[(u64, u64, f64)], ns: u64, lanes: &[(Lane, f64)]) {
        for &(l, w) in lanes {
            let p = if ns == 0 { 0.0 } else { w / ns as f64 };
            for &(a, b, rate) in pieces {
                self.lane_mut(l).add(a, b, p * rate);
            }
        }
    }
}

/// A launch as its compute engine ran it: when it started and ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ran {
    /// When the compute engine began it, ns.
    pub start_ns: u64,
    /// When it completed, ns.
    pub end_ns: u64,
}

/// Runs the body of a launch on `device`'s compute engine: what the
/// calling thread spends until the guard drops goes on that engine.
pub(super) struct OnDevice(Option<u32>);

impl OnDevice {
    pub(super) fn enter(device: u32) -> OnDevice {
        OnDevice(IN_LAUNCH.with(|c| c.replace(Some(device))))
    }
}

impl Drop for OnDevice {
    fn drop(&mut self) {
        IN_LAUNCH.with(|c| c.set(self.0));
    }
}

impl Sim {
    fn actor(&self) -> Actor {
        match IN_LAUNCH.with(Cell::get) {
            Some(d) => Actor::Compute(d),
            // Acquire: the clock `set_host_thread` moved before naming the
            // thread is what an unlocked `now_ns` then reads.
            None => Actor::Host(self.host_thread.load(Ordering::Acquire) as usize),
        }
    }

    /// The calling actor's clock, ns: the current host thread's (or, inside
    /// a launch, its device's compute engine's). What `CLOCK_MONOTONIC`
    /// reads on that thread.
    pub fn now_ns(&self) -> u64 {
        self.clocks.get(self.actor())
    }

    /// When the last engine finishes: the program's time so far, ns.
    pub fn makespan_ns(&self) -> u64 {
        let t = self.timelines.lock();
        let engines = self.clocks.host.iter().chain(self.clocks.compute.iter()).map(|c| c.load(Ordering::Acquire));
        engines.chain(t.copy.iter().map(Busy::end)).max().unwrap_or(0)
    }

    /// Makes the calling code act as host thread `thread` (0 submits; the
    /// others are helper threads), until set again. A helper's clock
    /// starts where the thread handing it work is, if it was behind.
    pub fn set_host_thread(&self, thread: usize) {
        assert!(thread < HOST_THREADS, "host thread {thread} out of range");
        let _t = self.timelines.lock();
        if thread != 0 {
            let now = self.clocks.get(Actor::Host(self.host_thread.load(Ordering::Relaxed) as usize));
            self.clocks.set(Actor::Host(thread), self.clocks.get(Actor::Host(thread)).max(now));
        }
        self.host_thread.store(thread as u8, Ordering::Release);
    }

    /// The current host thread waits (idle, uncharged) until `at_ns`: for a
    /// launch to complete, a fence, another thread's work.
    pub fn host_wait(&self, at_ns: u64) {
        let h = Actor::Host(self.host_thread.load(Ordering::Relaxed) as usize);
        let _t = self.timelines.lock();
        self.clocks.set(h, self.clocks.get(h).max(at_ns));
    }

    /// The time `device`'s compute engine is free from.
    pub fn device_free_ns(&self, device: u32) -> u64 {
        self.clocks.compute.get(device as usize).map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// Starts a launch on `device`'s compute engine: when it is free, the
    /// host submitted it, and `after` passed. Returns the start.
    pub(super) fn begin_launch(&self, device: u32, after: u64) -> u64 {
        let h = Actor::Host(self.host_thread.load(Ordering::Relaxed) as usize);
        let _t = self.timelines.lock();
        let start = self.clocks.get(Actor::Compute(device)).max(self.clocks.get(h)).max(after);
        self.clocks.set(Actor::Compute(device), start);
        start
    }

    /// A launch's memory phase from its device's clock: the roofline
    /// `ns` (charged as the caller splits it), with its remote traffic
    /// through the lanes it crosses. Returns the launch's end, and how much
    /// later than `ns` that is because others shared its lanes.
    pub(super) fn run_launch(&self, device: u32, ns: u64, lanes: &[(Lane, f64)], args: &[(u64, u64)]) -> (u64, u64) {
        let mut t = self.timelines.lock();
        // Its memory phase waits for the copies of its pages to arrive.
        let arrived = args.iter().map(|&(s, e)| t.arrived.latest(s, e)).max().unwrap_or(0);
        let start = self.clocks.get(Actor::Compute(device)).max(arrived);
        let pieces = t.fill(start, ns, lanes);
        t.take(&pieces, ns, lanes);
        let end = pieces.last().map_or(start + ns, |p| p.1).max(start + ns);
        self.clocks.set(Actor::Compute(device), end);
        let floor = self.clocks.get(Actor::Host(0));
        for &(s, e) in args {
            t.in_use.record(s, e, end, floor);
        }
        (end, end - start - ns)
    }

    /// Advances the actor's clock by `ns`, charged to `cat`.
    pub(super) fn advance(&self, ns: u64, cat: TimeCategory) {
        self.spend(ns, cat);
    }

    /// Advances the actor's clock by `ns`, charged to `cat`, and returns
    /// when that started.
    pub(super) fn spend(&self, ns: u64, cat: TimeCategory) -> u64 {
        let a = self.actor();
        let at = {
            let _t = self.timelines.lock();
            let at = self.clocks.get(a);
            self.clocks.set(a, at + ns);
            at
        };
        self.charge(cat, ns);
        at
    }

    /// Moves the actor's clock to at least `t` (a wait it spends, such as
    /// an atomic timeslice), charging the wait to `cat`.
    pub(super) fn advance_to(&self, at: u64, cat: TimeCategory) {
        let a = self.actor();
        let before = {
            let _t = self.timelines.lock();
            let b = self.clocks.get(a);
            self.clocks.set(a, b.max(at));
            b
        };
        if at > before {
            self.charge(cat, at - before);
        }
    }

    /// A copy or clear on `engine`'s copy engine, `ns` long at full
    /// bandwidth, through `lanes`: it starts when both the actor (who waits
    /// for it: a faulting launch, a prefetching or faulting host thread)
    /// and the copy engine are free, and moves both to its end. Charges
    /// what it took to `cat`; returns (start, took).
    pub(super) fn copy(&self, engine: u32, span: (u64, u64), ns: u64, cat: TimeCategory, lanes: &[(Lane, f64)]) -> (u64, u64) {
        let a = self.actor();
        let (start, took) = {
            let mut t = self.timelines.lock();
            let e = engine as usize;
            // The first gap in the copy engine's work, once no launch uses
            // the pages and earlier copies of them arrived, where the
            // transfer, at what its lanes have left, fits.
            let (used, arrived) = (t.in_use.latest(span.0, span.1), t.arrived.latest(span.0, span.1));
            let mut from = self.clocks.get(a).max(used).max(arrived);
            let pieces = loop {
                let start = t.copy[e].earliest(from, ns);
                let pieces = t.fill(start, ns, lanes);
                let end = pieces.last().map_or(start + ns, |p| p.1);
                if end <= t.copy[e].next_start(start) {
                    break pieces;
                }
                from = t.copy[e].next_start(start);
            };
            let (start, end) = (pieces[0].0, pieces.last().unwrap().1.max(pieces[0].0 + ns));
            t.take(&pieces, ns, lanes);
            t.copy[e].reserve(start, end);
            self.clocks.set(a, end);
            let floor = self.clocks.get(Actor::Host(0));
            t.arrived.record(span.0, span.1, end, floor);
            (start, end - start)
        };
        self.charge(cat, took);
        (start, took)
    }

    /// The calling host thread waits (uncharged: a copy engine is busy)
    /// for copies of [start, end) to arrive before it touches them.
    pub(super) fn wait_arrived(&self, start: u64, end: u64) {
        let a = self.actor();
        let t = self.timelines.lock();
        let arrived = t.arrived.latest(start, end);
        self.clocks.set(a, self.clocks.get(a).max(arrived));
    }

    /// A TLB invalidation that flushed `device`'s tiles stalls its compute
    /// engine by `ns` if a launch is running there past `at`.
    pub(super) fn stall_device(&self, device: u32, at: u64, ns: u64) {
        let _t = self.timelines.lock();
        if let Some(c) = self.clocks.compute.get(device as usize) {
            let v = c.load(Ordering::Acquire);
            if v > at {
                c.store(v + ns, Ordering::Release);
            }
        }
    }
}
