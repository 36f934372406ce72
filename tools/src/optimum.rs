//! The offline optimum of a workload on simulated time, from its trace
//! alone: a lower bound no run can beat, and (where VRAM capacity binds) an
//! offline schedule a policy should approach.
//!
//! # Segments
//!
//! The simulator places pages, and splits its SVM ranges below 2 MiB
//! wherever a VMA boundary (a runtime call's span) or a CPU mapping cuts a
//! chunk. So the bound works on *segments*: the pieces of memory cut at
//! every 2 MiB boundary and at both ends (page-aligned outwards) of every
//! access span, every runtime call's span and every free. All pages of one
//! segment are touched, advised, called on and freed together, so one sequence of places
//! serves all of them; and since every charge below is linear in the bytes
//! of a segment, segments with the same sequence of touches share one
//! shortest path, solved once per byte and scaled.
//!
//! # Why each charge is a floor
//!
//! The engines' work is the sum of every modelled cost (docs/cost-model.md),
//! each piece rounded up to whole nanoseconds (`transfer_ns`). Split that
//! sum over the pages of a run: every charge below is at most what the run
//! pays for the same page, and every cost the bound leaves out (GPU and CPU
//! fault service, ioctls, madvise, page-table reads, timeslice waits,
//! evictions under pressure, the fixed cost a range below 2 MiB pays whole)
//! is non-negative.
//!
//! * **Access.** A GPU access costs nothing in the accessing device's VRAM
//!   (either tile) and `bytes / path bandwidth` elsewhere, as the simulator
//!   prices a remote access: system memory over the accessing device's own
//!   host link (`DeviceSpec::host_bandwidth`), a peer's VRAM over their
//!   link (`Topology::peer_bandwidth`). A peer's VRAM is reachable only inside its pagemap owner
//!   group (`Topology::owner_groups`: no link, or kernel 6.18, no remote
//!   access): anywhere else the pages must move first. A GPU atomic that
//!   needs VRAM (docs/kernel-model.md §3.2) runs in the accessing tile's VRAM; in
//!   other device memory of its owner group only after a failed migration
//!   (`drm_gpusvm_get_pages` with `devmem_only` takes any device page of the
//!   fault's owner), and then each access faults again, so it pays a GPU
//!   fault's share on top of the remote access; never in system memory. One
//!   under `DRM_XE_ATOMIC_CPU` fails without cost (EACCES before any fault).
//!   A CPU access needs system memory.
//! * **Move.** A range migration pays `copy_submit + copy_fixed + bytes /
//!   bandwidth` (plus per-page CPU work without device huge pages) once per
//!   range, and a range is at most 2 MiB: a segment of `b` bytes pays at
//!   least `b / 2 MiB` of the fixed part and all of its own transfer. The
//!   bandwidth is the host link of the device whose VRAM the pages enter
//!   or leave (one copy engine both ways), a peer link between devices,
//!   and the device's clear bandwidth between its two tiles. Every move
//!   into VRAM also pays the clear of the new allocation the simulator
//!   charges when `populate_mm` creates it (`copy_submit + range bytes /
//!   clear bandwidth`, before any copy, success or not): at least the
//!   submission's `b / 2 MiB` share and `b / clear bandwidth`, as the
//!   range holds all of the segment's bytes. Between two owner groups (and
//!   between any two VRAM regions on 6.18) no VRAM-to-VRAM copy exists:
//!   pages go to system memory and back, two copies and the clear. A move
//!   between two touches is priced as the cheapest chain of such copies
//!   (through system memory or a third device: an eviction, a CPU fault on
//!   a neighbour or another device's fault can carry the pages there), so
//!   a slow direct link never makes the bound dearer than a detour.
//! * **TLB.** None in the bound. A move after a GPU used the pages needs
//!   their binding removed first, but one madvise removes any number of
//!   ranges' bindings with one invalidation per tile over its whole span
//!   (`xe_vm_invalidate_madvise_range`), after which the migration's MMU
//!   notifier finds nothing bound: the share per byte has no floor. The
//!   offline schedule, which does not batch, pays `tlb_invalidation` per
//!   range and tile, as a migration's notifier charges it.
//! * **Birth.** A never-touched segment is born in system memory for `b /
//!   zero-fill bandwidth`, or in VRAM for at least the clear (`copy_submit`
//!   share + `b / clear bandwidth`): no copy exists for pages that were
//!   never populated. The simulator charges the zero-fill for every page it
//!   populates in system memory, whoever populates it (the CPU's fault,
//!   or `hmm_range_fault` under a GPU fault or a prefetch, which may
//!   populate a whole range beyond the segment touched: those pages were
//!   charged then, and their own first touch finds them populated), and
//!   the clear for every page of a new VRAM allocation, never-touched
//!   neighbours of the faulting segment included; so each page of each
//!   life pays a zero-fill or a clear, and the moves from there, before
//!   its first touch. Birth in system memory is therefore the cheaper of
//!   the zero-fill and a clear in any VRAM with the copy back. A first
//!   touch that fails (a GPU atomic under CPU mode: EACCES before any
//!   fault) populates nothing: its birth is left out.
//!
//! * **Free.** A free (munmap) ends a segment's life: its contents are
//!   gone, nothing needs to move back, and the next touch after the
//!   allocation again is a birth as above. What munmap itself costs (a TLB
//!   invalidation per bound range it destroys) is non-negative and left
//!   out, like mmap's nothing. So each life of a segment is solved on its
//!   own, as if it were another segment: the sum of the lives' floors is a
//!   floor of the whole, since every charge belongs to one life's touches.
//!   An atomic mode set before a free is kept for the next life although a
//!   kernel with MADVISE_AUTORESET resets it: a GPU atomic under CPU mode is
//!   priced at nothing, so keeping it can only lower the bound.
//!
//! Capacity is relaxed (each segment alone may use all of any VRAM), which
//! only lowers the bound. The bound is computed in exact (floating) time
//! and rounded down; `tests` checks it against every policy, the oracle
//! included, on random traces with runtime calls, several devices, CPU
//! accesses and machines with and without links.
//!
//! # Engines at once
//!
//! The charges above are a floor of the engines' *work*: the sum of a
//! run's time categories (`Optimum::work_ns`), as they were a floor of the
//! one clock before engines ran at once (docs/cost-model.md, "Timelines").
//! The program's time is when the last engine finishes, so the bound is
//! the largest of three floors of it:
//!
//! * the work spread over every engine (two per device, each host thread
//!   used): no engine works two things at once;
//! * the copies alone (each segment's cheapest path counting only what a
//!   copy engine runs: copies and clears) spread over the copy engines;
//! * the critical path (`critical.rs`): the steps in the runner's order,
//!   each launch at the roofline of its compute and least memory time, and
//!   each hand-off between dependent steps at least the cheaper of reading
//!   in place and copying first.
//!
//! # The offline schedule
//!
//! Where the optimal places of all segments together overflow a VRAM
//! region, the schedule replays them in trace order with Belady's rule: the
//! segment resident there whose next use is farthest goes back to system
//! memory, and comes back (another copy) when its path next needs that
//! region. It is an offline schedule with capacity enforced, priced with
//! the same charges as if one engine ran it all (its work, nothing
//! overlapped), and never below the bound.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use xesvm::sim::{Access, Arg, Costs, Pattern, Topology};
use xesvm::uapi::DRM_XE_ATOMIC_CPU;

use crate::workload::{Call, PlacementThread, Step, Target, Workload, CHUNK, PAGE};

/// A place a segment can be in: system memory, or a VRAM region (device, tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Place {
    System,
    Vram { device: u32, tile: u16 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Who {
    Cpu,
    /// A launch's argument: its device and tile, whether it is an atomic,
    /// and how the kernel goes over it.
    Gpu {
        device: u32,
        tile: u16,
        atomic: bool,
        passes: u32,
        pattern: Pattern,
    },
    /// A runtime call honoured (`Optimum::calls_ns`): the segment is in
    /// this place right after it.
    Call(Place),
}

/// What an access costs per byte of a segment in one place: memory time
/// (which a launch overlaps with its compute) and time that stalls it
/// (an atomic's fault share).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Price {
    mem: f64,
    stall: f64,
}

/// One access of one segment: at which step, by whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Touch {
    step: usize,
    who: Who,
}

/// What the optimum of a workload is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Optimum {
    /// The lower bound on simulated time (the makespan), ns.
    pub bound_ns: u64,
    /// The lower bound on the work every engine does together (the sum of
    /// a run's time categories), ns: what the bound was when one clock
    /// ran everything in sequence.
    pub work_ns: u64,
    /// The offline schedule's time where capacity binds (None: the
    /// unconstrained paths fit, so the bound is itself a schedule).
    pub offline_ns: Option<u64>,
    /// Where the runtime's calls (alloc_vram, evict) force work no access
    /// needs: the bound with every call honoured (its span in the call's
    /// target right after it), what any run that carries them out pays at
    /// least. Not a floor of a run whose calls fell back (a full VRAM),
    /// so only printed, never checked against. None: no call forces more.
    pub calls_ns: Option<u64>,
}

struct Machine<'a> {
    topo: &'a Topology,
    places: Vec<Place>,
    owner: Vec<u32>,
    multi_device: bool,
    /// The cheapest chain of moves between any two places, per byte
    /// (`places` order): a move may go through system memory or a third
    /// device where that costs less than the direct copy.
    moves: Vec<Vec<f64>>,
}

impl Machine<'_> {
    fn new(topo: &Topology) -> Machine<'_> {
        let mut places = vec![Place::System];
        for (d, spec) in topo.devices.iter().enumerate() {
            if spec.has_vram() {
                for t in 0..spec.tiles {
                    places.push(Place::Vram { device: d as u32, tile: t });
                }
            }
        }
        let mut m = Machine { topo, places, owner: topo.owner_groups(), multi_device: topo.kernel.multi_device(), moves: Vec::new() };
        // Floyd-Warshall over the direct moves: any run's sequence of moves
        // between two touches is a chain of direct moves, each at least its
        // floor, so the cheapest chain is a floor of what it pays.
        let n = m.places.len();
        let mut d: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| m.direct(m.places[i], m.places[j])).collect()).collect();
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    if d[i][k] + d[k][j] < d[i][j] {
                        d[i][j] = d[i][k] + d[k][j];
                    }
                }
            }
        }
        m.moves = d;
        m
    }

    /// The cheapest chain of moves per byte from one place to another
    /// (without the TLB).
    fn mv(&self, from: Place, to: Place) -> f64 {
        let ix = |p: Place| self.places.iter().position(|&q| q == p).expect("a place of this machine");
        self.moves[ix(from)][ix(to)]
    }

    fn costs(&self) -> &Costs {
        &self.topo.costs
    }

    /// Time per byte, ns, at `bw` bytes/s.
    fn per_byte(bw: f64) -> f64 {
        1e9 / bw
    }

    /// What an access costs per byte with the segment at `p` (None: the
    /// access cannot run there). `atomic_fails`: the range's atomic mode is
    /// CPU, so a GPU atomic fails before it costs anything.
    fn access(&self, t: &Touch, p: Place, atomic_fails: bool) -> Option<Price> {
        let (device, tile, atomic, passes, pattern) = match t.who {
            Who::Gpu { device, tile, atomic, passes, pattern } => (device, tile, atomic, passes, pattern),
            Who::Cpu => return (p == Place::System).then_some(Price { mem: 0.0, stall: 0.0 }),
            Who::Call(q) => return (p == q).then_some(Price { mem: 0.0, stall: 0.0 }),
        };
        let spec = &self.topo.devices[device as usize];
        let arg = Arg { start: 0, size: 0, access: Access::Read, passes, pattern };
        // One pass's streaming time per byte over a path, as sim/launch.rs
        // prices it: the device's own memory, or a link.
        let local = Price { mem: arg.reuse() * Self::per_byte(spec.local_bandwidth), stall: 0.0 };
        let link = |bw: f64, stall: f64| Price { mem: arg.reuse() * arg.link_slowdown() * Self::per_byte(bw), stall };
        let peer_bw = |d: u32| self.topo.peer_bandwidth(device, d);
        if atomic && spec.has_vram() {
            if atomic_fails {
                return Some(Price { mem: 0.0, stall: 0.0 });
            }
            if !spec.device_atomics_on_smem {
                return match p {
                    Place::Vram { device: d, tile: t } if d == device && t == tile => Some(local),
                    // Device memory of the fault's owner group, not the
                    // tile's: get_pages(devmem_only) maps it when the
                    // migration failed, and every such access faults
                    // again (the range is never usable for atomics).
                    Place::Vram { device: d, .. } if d == device => Some(Price { stall: self.fault(), ..local }),
                    Place::Vram { device: d, .. } if self.owner[d as usize] == self.owner[device as usize] => Some(link(peer_bw(d), self.fault())),
                    _ => None,
                };
            }
        }
        match p {
            Place::System if !spec.has_vram() => Some(local),
            Place::System => Some(link(spec.host_bandwidth, 0.0)),
            Place::Vram { device: d, .. } if d == device => Some(local),
            Place::Vram { device: d, .. } if self.owner[d as usize] == self.owner[device as usize] => Some(link(peer_bw(d), 0.0)),
            Place::Vram { .. } => None,
        }
    }

    /// The least memory time per byte a touch has anywhere it can run.
    fn least_mem(&self, t: &Touch, atomic_fails: bool) -> f64 {
        self.places.iter().filter_map(|&p| self.access(t, p, atomic_fails)).map(|a| a.mem).fold(f64::INFINITY, f64::min)
    }

    /// One copy's floor per byte: its share of the per-range fixed cost,
    /// its transfer, and per-page CPU work.
    fn copy(&self, bw: f64) -> f64 {
        let c = self.costs();
        let pages = if c.device_huge_pages { 0.0 } else { c.per_page_cpu_ns as f64 / PAGE as f64 };
        (c.copy_submit_ns + c.copy_fixed_ns) as f64 / CHUNK as f64 + Self::per_byte(bw) + pages
    }

    /// A device's host link, bytes/s (both directions alike).
    fn host(&self, device: u32) -> f64 {
        self.topo.devices[device as usize].host_bandwidth
    }

    /// The floor per byte of the clear of new VRAM on `device`: its share
    /// of one submission per range, and the bytes at its clear bandwidth.
    fn clear(&self, device: u32) -> f64 {
        self.costs().copy_submit_ns as f64 / CHUNK as f64 + Self::per_byte(self.topo.devices[device as usize].clear_bandwidth())
    }

    /// The cheapest move per byte from one place to another (without the
    /// TLB): every move into VRAM also pays the new allocation's clear.
    fn direct(&self, from: Place, to: Place) -> f64 {
        match (from, to) {
            _ if from == to => 0.0,
            (Place::System, Place::Vram { device: b, .. }) => self.copy(self.host(b)) + self.clear(b),
            (Place::Vram { device: a, .. }, Place::System) => self.copy(self.host(a)),
            (Place::Vram { device: a, .. }, Place::Vram { device: b, .. }) => {
                // Out to system memory and back in: the only path between
                // owner groups, and a floor of the direct one (which it may
                // undercut where host links are fast and the link slow).
                let via_system = self.copy(self.host(a)) + self.copy(self.host(b)) + self.clear(b);
                if !self.multi_device || self.owner[a as usize] != self.owner[b as usize] {
                    return via_system;
                }
                via_system.min(self.copy(self.topo.peer_bandwidth(a, b)) + self.clear(b))
            }
            (Place::System, Place::System) => 0.0,
        }
    }

    /// A GPU fault's share per byte (one fault per range and access).
    fn fault(&self) -> f64 {
        self.costs().fault_service_ns as f64 / CHUNK as f64
    }

    /// The TLB share per byte of a move after GPU use, one invalidation per
    /// 2 MiB range (the offline schedule's price).
    fn tlb(&self) -> f64 {
        self.costs().tlb_invalidation_ns as f64 / CHUNK as f64
    }

    /// Birth per byte, up to the first touch: in VRAM the new allocation's
    /// clear (cheaper than any way through system memory or another VRAM,
    /// which pay a clear too); in system memory the zero-fill, or a clear in
    /// some VRAM and the copy back, where that is cheaper: a neighbour's
    /// migration clears its whole range, pages never touched included.
    fn birth(&self, p: Place) -> f64 {
        match p {
            Place::System => self.places.iter().fold(Self::per_byte(self.costs().zero_fill_bandwidth), |best, &q| match q {
                Place::Vram { device, .. } => best.min(self.clear(device) + self.mv(q, Place::System)),
                Place::System => best,
            }),
            Place::Vram { device, .. } => self.clear(device),
        }
    }

    /// Whether a touch fails before it costs anything (a GPU atomic under
    /// `DRM_XE_ATOMIC_CPU` on a device with VRAM: EACCES before any fault),
    /// so it populates nothing either.
    fn fails(&self, t: &Touch, atomic_fails: bool) -> bool {
        matches!(t.who, Who::Gpu { device, atomic: true, .. } if atomic_fails && self.topo.devices[device as usize].has_vram())
    }
}

/// A segment's touches and whether each GPU atomic among them fails.
type Signature = Vec<(Touch, bool)>;

/// Every segment of the workload (start, bytes) with its touches in trace order.
fn segments(w: &Workload, honour_calls: bool) -> Vec<(u64, u64, Signature)> {
    let span = |s: &Step| -> Vec<(u64, u64)> {
        match s {
            Step::Launch { args, .. } => args.iter().map(|a| (a.start, a.size)).collect(),
            Step::Cpu { start, size, .. } => vec![(*start, *size)],
            Step::Call(c) => match *c {
                Call::AllocVram { start, size, .. } | Call::Evict { start, size } | Call::Preferred { start, size, .. } | Call::AtomicMode { start, size, .. } => {
                    vec![(start, size)]
                }
            },
            Step::Free { start, size } | Step::Alloc { start, size } => vec![(*start, *size)],
            Step::Wait => Vec::new(),
        }
    };
    let mut cuts = BTreeSet::new();
    for s in &w.steps {
        for (a, n) in span(s) {
            if n == 0 {
                continue;
            }
            let (lo, hi) = (a / PAGE * PAGE, (a + n).next_multiple_of(PAGE));
            cuts.insert(lo);
            cuts.insert(hi);
            let mut c = lo.next_multiple_of(CHUNK);
            while c < hi {
                cuts.insert(c);
                c += CHUNK;
            }
        }
    }
    // Per segment start and life (frees so far): its touches.
    let mut touched: BTreeMap<(u64, u32), Signature> = BTreeMap::new();
    let mut life: HashMap<u64, u32> = HashMap::new();
    let at = |life: &HashMap<u64, u32>, c: u64| (c, life.get(&c).copied().unwrap_or(0));
    // Atomic mode per segment start, as the runtime's calls leave it.
    let mut mode: HashMap<u64, u32> = HashMap::new();
    for (i, s) in w.steps.iter().enumerate() {
        let each = |a: u64, n: u64, f: &mut dyn FnMut(u64)| {
            if n == 0 {
                return;
            }
            let (lo, hi) = (a / PAGE * PAGE, (a + n).next_multiple_of(PAGE));
            for &c in cuts.range(lo..hi) {
                f(c);
            }
        };
        match s {
            Step::Launch { device, tile, args, .. } => {
                for arg in args {
                    let atomic = arg.access == Access::Atomic;
                    let who = Who::Gpu { device: *device, tile: *tile, atomic, passes: arg.passes, pattern: arg.pattern };
                    each(arg.start, arg.size, &mut |c| {
                        let fails = atomic && mode.get(&c) == Some(&DRM_XE_ATOMIC_CPU);
                        touched.entry(at(&life, c)).or_default().push((Touch { step: i, who }, fails));
                    });
                }
            }
            Step::Cpu { start, size, .. } => each(*start, *size, &mut |c| touched.entry(at(&life, c)).or_default().push((Touch { step: i, who: Who::Cpu }, false))),
            Step::Free { start, size } => each(*start, *size, &mut |c| *life.entry(c).or_default() += 1),
            Step::Alloc { .. } | Step::Wait => {}
            Step::Call(Call::AtomicMode { start, size, mode: m }) => each(*start, *size, &mut |c| {
                mode.insert(c, *m);
            }),
            Step::Call(Call::AllocVram { start, size, target, .. }) if honour_calls => {
                let place = match *target {
                    Target::Device { device, tile } if w.topology.devices[device as usize].has_vram() => Place::Vram { device, tile },
                    _ => Place::System,
                };
                each(*start, *size, &mut |c| touched.entry(at(&life, c)).or_default().push((Touch { step: i, who: Who::Call(place) }, false)))
            }
            Step::Call(Call::Evict { start, size }) if honour_calls => {
                each(*start, *size, &mut |c| touched.entry(at(&life, c)).or_default().push((Touch { step: i, who: Who::Call(Place::System) }, false)))
            }
            Step::Call(_) => {}
        }
    }
    touched
        .into_iter()
        .map(|((c, _), sig)| {
            let end = cuts.range(c + 1..).next().copied().expect("every segment start has an end cut");
            (c, end - c, sig)
        })
        .collect()
}

/// What a path is charged: moves, births and stalls (P0); those and the
/// memory time above the least (P1); or only what copy engines run (the
/// copies and clears of moves and births).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Charge {
    Moves,
    Excess,
    Copies,
}

/// The shortest path of one byte of a segment: its cost, and its place at
/// each touch. States: the place; before the first touch the segment does
/// not exist.
fn shortest_path(m: &Machine, sig: &[(Touch, bool)], charge: Charge) -> (f64, Vec<Place>) {
    let n = m.places.len();
    let mut cost: Vec<f64> = vec![f64::INFINITY; n];
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(sig.len());
    for (k, (t, fails)) in sig.iter().enumerate() {
        let mut next = vec![f64::INFINITY; n];
        let mut from = vec![usize::MAX; n];
        for (j, &p) in m.places.iter().enumerate() {
            let Some(price) = m.access(t, p, *fails) else {
                continue;
            };
            let a = match charge {
                Charge::Moves => price.stall,
                Charge::Excess => price.stall + price.mem - m.least_mem(t, *fails),
                Charge::Copies => 0.0,
            };
            if k == 0 {
                // A failing first touch populates nothing: its birth is left
                // to a later touch, and left out (a lower bound). A copy
                // engine's share of a birth in system memory is none (the
                // zero-fill runs on whoever faults).
                let birth = match (charge, p) {
                    _ if m.fails(t, *fails) => 0.0,
                    (Charge::Copies, Place::System) => 0.0,
                    _ => m.birth(p),
                };
                next[j] = birth + a;
                continue;
            }
            for (i, _) in m.places.iter().enumerate() {
                let c0 = cost[i];
                if c0.is_infinite() {
                    continue;
                }
                let c = c0 + m.moves[i][j] + a;
                if c < next[j] {
                    next[j] = c;
                    from[j] = i;
                }
            }
        }
        cost = next;
        back.push(from);
    }
    let (mut s, best) = cost.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map(|(s, c)| (s, *c)).unwrap();
    let mut path = vec![Place::System; sig.len()];
    for k in (0..sig.len()).rev() {
        path[k] = m.places[s];
        s = back[k][s];
    }
    (best, path)
}

/// The bound and, where capacity binds, the offline schedule of a workload,
/// and where the runtime's calls force work, the bound with them honoured.
pub fn optimum(w: &Workload) -> Optimum {
    let m = Machine::new(&w.topology);
    let (bound, work, offline) = bound_of(&m, w, false);
    let forced = w.steps.iter().any(|s| matches!(s, Step::Call(Call::AllocVram { .. } | Call::Evict { .. })));
    let calls = forced.then(|| bound_of(&m, w, true).0).filter(|&c| c > bound);
    Optimum { bound_ns: bound, work_ns: work, offline_ns: offline, calls_ns: calls }
}

/// The bound of a workload (with its runtime calls honoured, or not), and
/// the offline schedule where capacity binds.
fn bound_of(m: &Machine, w: &Workload, honour_calls: bool) -> (u64, u64, Option<u64>) {
    let segs = segments(w, honour_calls);
    // Per launch: its least memory time (every byte where it is cheapest).
    let mut least = vec![0.0f64; w.steps.len()];
    for (_, bytes, sig) in &segs {
        for (t, fails) in sig {
            least[t.step] += m.least_mem(t, *fails) * *bytes as f64;
        }
    }
    let compute = |i: usize| match &w.steps[i] {
        Step::Launch { compute_ns, .. } => *compute_ns as f64,
        _ => 0.0,
    };
    // Every launch runs at least the roofline of its compute and its least
    // memory time; `slack` is the compute beyond that memory time, which
    // memory time above the least can hide behind.
    let rooflines: f64 = (0..w.steps.len()).map(|i| compute(i).max(least[i])).sum();
    let slack: f64 = (0..w.steps.len()).map(|i| (compute(i) - least[i]).max(0.0)).sum();
    // Moves with the excess memory time free (P0) and paid (P1).
    let mut solved: [HashMap<&Signature, (f64, Vec<Place>)>; 3] = [HashMap::new(), HashMap::new(), HashMap::new()];
    let (mut p0, mut p1, mut copies) = (0.0f64, 0.0f64, 0.0f64);
    for (_, bytes, sig) in &segs {
        p0 += solved[0].entry(sig).or_insert_with(|| shortest_path(m, sig, Charge::Moves)).0 * *bytes as f64;
        p1 += solved[1].entry(sig).or_insert_with(|| shortest_path(m, sig, Charge::Excess)).0 * *bytes as f64;
        copies += solved[2].entry(sig).or_insert_with(|| shortest_path(m, sig, Charge::Copies)).0 * *bytes as f64;
    }
    let work = rooflines + p0.max(p1 - slack);
    // The engines run at once (docs/cost-model.md, "Timelines"): the
    // program takes at least its critical path, the copies spread over
    // the copy engines of the devices with VRAM, and its work spread over
    // every engine.
    let roofline: Vec<u64> = (0..w.steps.len()).map(|i| (compute(i).max(least[i]) - 1.0).max(0.0).floor() as u64).collect();
    let engines = 2 * w.topology.devices.len() + 1 + (w.placement_thread != PlacementThread::Submitting) as usize;
    let copy_engines = w.topology.devices.iter().filter(|d| d.has_vram()).count().max(1);
    let path = critical::path(m, w, &segs, &roofline, copy_engines);
    let total = (path as f64).max(copies / copy_engines as f64).max(work / engines as f64);
    // Exact time rounded down, less a nanosecond for floating-point sums.
    let floor = |x: f64| (x - 1.0).max(0.0).floor() as u64;
    let bound = floor(total);
    if honour_calls {
        return (bound, floor(work), None);
    }
    let paths: Vec<&[Place]> = segs.iter().map(|(_, _, sig)| solved[1][sig].1.as_slice()).collect();
    let offline = offline_schedule(m, w, &segs, &paths).map(|o| o.max(bound));
    (bound, floor(work), offline)
}

/// Replays the paths in trace order with VRAM capacity enforced, and
/// returns that schedule's cost, or None when no region ever overflowed
/// (then the bound's paths are themselves feasible). Belady's rule with
/// bypass: to make room, the resident segment whose next use there is
/// farthest goes back to system memory; a segment whose own next use there
/// is farther than every resident's stays where it is and is read remotely
/// where it can be (atomics and CPU accesses always get their place).
///
/// A segment's lives between frees are separate entries here: a freed life
/// keeps its VRAM until Belady's rule, which finds no next use for it,
/// evicts it first and pays for that copy. So the schedule stays feasible
/// and can only overcharge.
fn offline_schedule(m: &Machine, w: &Workload, segs: &[(u64, u64, Signature)], paths: &[&[Place]]) -> Option<u64> {
    let capacity = |p: Place| match p {
        Place::System => u64::MAX,
        Place::Vram { device, .. } => m.topo.devices[device as usize].vram_per_tile,
    };
    // (step, segment, index of the touch) in trace order.
    let mut order: Vec<(usize, usize, usize)> = segs.iter().enumerate().flat_map(|(g, (_, _, sig))| sig.iter().enumerate().map(move |(k, (t, _))| (t.step, g, k))).collect();
    order.sort_unstable();
    // Per segment: its place (None: not born), GPU-used since its last move, last touch.
    let mut at: Vec<Option<Place>> = vec![None; segs.len()];
    let mut used_by_gpu = vec![false; segs.len()];
    let mut last: Vec<usize> = vec![0; segs.len()];
    let mut resident: HashMap<Place, BTreeSet<usize>> = HashMap::new();
    let mut used: HashMap<Place, u64> = HashMap::new();
    let mut cost = 0.0f64;
    // Per launch: its memory time in this schedule's places.
    let mut mem = vec![0.0f64; w.steps.len()];
    let mut bound_hit = false;
    // The next step at which segment `g`'s path wants it in `p`, after touch `k`.
    let next_use = |g: usize, k: usize, p: Place| -> usize {
        let sig = &segs[g].2;
        (k + 1..sig.len()).find(|&j| paths[g][j] == p).map_or(usize::MAX, |j| sig[j].0.step)
    };
    for &(_, g, k) in &order {
        let (t, fails) = segs[g].2[k];
        let bytes = segs[g].1;
        let want = paths[g][k];
        let cur = at[g];
        let mut place = want;
        if want != Place::System && cur != Some(want) {
            while used.get(&want).copied().unwrap_or(0) + bytes > capacity(want) {
                bound_hit = true;
                let victim = resident.get(&want).and_then(|r| r.iter().filter(|&&v| v != g).map(|&v| (next_use(v, last[v], want), v)).max());
                let mine = next_use(g, k, want);
                let forced = cur.is_none_or(|c| m.access(&t, c, fails).is_none());
                match victim {
                    Some((theirs, v)) if forced || theirs > mine => {
                        let vb = segs[v].1 as f64;
                        cost += vb * (m.mv(want, Place::System) + if used_by_gpu[v] { m.tlb() } else { 0.0 });
                        at[v] = Some(Place::System);
                        used_by_gpu[v] = false;
                        resident.get_mut(&want).unwrap().remove(&v);
                        *used.get_mut(&want).unwrap() -= segs[v].1;
                    }
                    _ => {
                        place = cur.unwrap_or(Place::System); // bypass: read it where it is
                        break;
                    }
                }
            }
        }
        let b = bytes as f64;
        match cur {
            None => cost += b * m.birth(place),
            Some(c) if c != place => {
                cost += b * (m.mv(c, place) + if used_by_gpu[g] { m.tlb() } else { 0.0 });
                used_by_gpu[g] = false;
            }
            Some(_) => {}
        }
        if cur != Some(place) {
            if let Some(c @ Place::Vram { .. }) = cur {
                resident.get_mut(&c).unwrap().remove(&g);
                *used.get_mut(&c).unwrap() -= bytes;
            }
            if let Place::Vram { .. } = place {
                resident.entry(place).or_default().insert(g);
                *used.entry(place).or_default() += bytes;
            }
        }
        let price = m.access(&t, place, fails).or_else(|| m.access(&t, want, fails)).unwrap_or(Price { mem: 0.0, stall: 0.0 });
        cost += b * price.stall;
        mem[t.step] += b * price.mem;
        used_by_gpu[g] |= matches!(t.who, Who::Gpu { .. }) && !fails;
        at[g] = Some(place);
        last[g] = k;
    }
    for (i, step) in w.steps.iter().enumerate() {
        let compute = if let Step::Launch { compute_ns, .. } = step { *compute_ns as f64 } else { 0.0 };
        cost += compute.max(mem[i]);
    }
    bound_hit.then_some(cost.floor() as u64)
}

#[path = "critical.rs"]
mod critical;

#[cfg(test)]
#[path = "optimum_tests.rs"]
mod tests;
