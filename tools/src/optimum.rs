//! The offline optimum of a workload on simulated time, from its trace
//! alone: a lower bound no policy can beat, and (where VRAM capacity binds)
//! a feasible offline schedule a policy should approach.
//!
//! # Why the bound is a lower bound
//!
//! The simulated clock is the sum of every modelled cost (cost-model.md).
//! Split by 2 MiB chunk, each chunk's data must be where each access of it
//! happens, or be read remotely:
//!
//! * a GPU access costs nothing where the chunk is in the accessing
//!   device's VRAM, and `bytes / path bandwidth` anywhere else (the
//!   simulator's own price of a remote access);
//! * a GPU atomic needs the accessing tile's VRAM (kernel-model §3.2) and a
//!   CPU access needs system memory: any other place is infeasible;
//! * moving the chunk between two accesses costs at least one copy of the
//!   bytes the next access uses, at the simulator's price (`copy_ns`:
//!   submission + fixed cost + bytes / bandwidth). A real migration moves a
//!   whole range (at least those bytes) and may add a GPU fault, a CPU fault,
//!   TLB invalidations and ioctls, all of which only add time; a split of
//!   one access between a local and a remote part costs at least the
//!   cheaper of the two (the cost is linear in the split, plus fixed costs);
//! * a chunk no one has touched yet is born wherever it is first placed,
//!   for free (populating costs no copy).
//!
//! The cheapest sequence of places per chunk is a shortest path over
//! (access, place) pairs; the chunks are independent once capacity is
//! relaxed (each alone may use all of any VRAM), and every other cost the
//! simulator charges (ioctls, faults, TLB invalidations, page-table reads)
//! is non-negative, so the sum over chunks is at most the simulated time of
//! any run of the trace on that machine. `tests` checks it against every
//! policy, the oracle included, on random traces. Remote-access times are
//! truncated to whole nanoseconds per chunk as the simulator truncates them
//! per range; the bound allows one nanosecond of rounding per access.
//!
//! # The offline schedule
//!
//! Where the optimal places of all chunks together overflow a VRAM region,
//! the schedule replays them in trace order with Belady's rule: the chunk
//! resident there whose next use is farthest goes back to system memory,
//! and comes back (another copy) when its path next needs that region. That
//! schedule is feasible, so it lies between the bound and the best policy.

use std::collections::{BTreeMap, HashMap};

use xesvm::sim::{Access, Costs, Topology};

use crate::workload::{Step, Workload, CHUNK};

/// A place a chunk can be in: system memory, or a VRAM region (device, tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Place {
    System,
    Vram { device: u32, tile: u16 },
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Cpu,
    Gpu { device: u32, tile: u16, atomic: bool },
}

/// One access of one chunk: who, how many of its bytes, at which step.
#[derive(Clone, Copy, Debug)]
struct Touch {
    step: usize,
    who: Who,
    bytes: u64,
}

/// What the optimum of a workload is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Optimum {
    /// The lower bound on simulated time, ns.
    pub bound_ns: u64,
    /// A feasible offline schedule's time where capacity binds (None: the
    /// unconstrained paths fit, so the bound is itself feasible).
    pub offline_ns: Option<u64>,
}

struct Machine<'a> {
    topo: &'a Topology,
    places: Vec<Place>,
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
        Machine { topo, places }
    }

    fn costs(&self) -> &Costs {
        &self.topo.costs
    }

    /// The simulator's bandwidth from device `dev` to a place (`path_bandwidth`).
    fn path_bw(&self, dev: u32, p: Place) -> Option<f64> {
        match p {
            Place::System => Some(self.costs().h2d_bandwidth),
            Place::Vram { device, .. } if device == dev => None,
            Place::Vram { device, .. } => Some(self.topo.link(dev, device).map_or(self.costs().h2d_bandwidth, |l| l.bandwidth)),
        }
    }

    /// The cost of an access with the chunk at `p` (None: impossible there).
    fn access(&self, t: &Touch, p: Place) -> Option<u64> {
        match t.who {
            Who::Cpu => (p == Place::System).then_some(0),
            Who::Gpu { device, tile, atomic } => {
                let spec = &self.topo.devices[device as usize];
                if atomic && spec.has_vram() && !spec.device_atomics_on_smem {
                    return (p == Place::Vram { device, tile }).then_some(0);
                }
                Some(match self.path_bw(device, p) {
                    None => 0,
                    // One ns of slack for the simulator's truncation per range.
                    Some(bw) => ((t.bytes as f64 / bw * 1e9) as u64).saturating_sub(1),
                })
            }
        }
    }

    /// The cheapest copy of `bytes` from one place to another.
    fn mv(&self, from: Place, to: Place, bytes: u64) -> u64 {
        let c = self.costs();
        match (from, to) {
            _ if from == to => 0,
            (Place::System, _) => c.copy_ns(bytes, c.h2d_bandwidth),
            (_, Place::System) => c.copy_ns(bytes, c.d2h_bandwidth),
            (Place::Vram { device: a, .. }, Place::Vram { device: b, .. }) => {
                let bw = if a == b { c.p2p_bandwidth } else { self.topo.link(a, b).map_or(c.h2d_bandwidth, |l| l.bandwidth) };
                c.copy_ns(bytes, bw)
            }
        }
    }
}

/// Every chunk's accesses, in trace order.
fn touches(w: &Workload) -> BTreeMap<u64, Vec<Touch>> {
    let mut out: BTreeMap<u64, Vec<Touch>> = BTreeMap::new();
    let mut add = |step: usize, who: Who, start: u64, size: u64| {
        let mut c = start / CHUNK * CHUNK;
        while c < start + size {
            let bytes = (c + CHUNK).min(start + size) - c.max(start);
            out.entry(c).or_default().push(Touch { step, who, bytes });
            c += CHUNK;
        }
    };
    for (i, s) in w.steps.iter().enumerate() {
        match s {
            Step::Launch { device, tile, accesses } => {
                for &(start, size, a) in accesses {
                    add(i, Who::Gpu { device: *device, tile: *tile, atomic: a == Access::Atomic }, start, size);
                }
            }
            Step::Cpu { start, size, .. } => add(i, Who::Cpu, *start, *size),
            Step::Call(_) => {}
        }
    }
    out
}

/// The shortest path of one chunk: its cost, and its place at each access.
fn shortest_path(m: &Machine, ts: &[Touch]) -> (u64, Vec<Place>) {
    const INF: u64 = u64::MAX / 4;
    let n = m.places.len();
    // Before the first access the chunk does not exist: any place is free.
    let mut cost = vec![0u64; n];
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(ts.len());
    for t in ts {
        let mut next = vec![INF; n];
        let mut from = vec![0usize; n];
        for (j, &p) in m.places.iter().enumerate() {
            let Some(a) = m.access(t, p) else { continue };
            for (i, &q) in m.places.iter().enumerate() {
                if cost[i] >= INF {
                    continue;
                }
                let c = cost[i] + m.mv(q, p, t.bytes) + a;
                if c < next[j] {
                    next[j] = c;
                    from[j] = i;
                }
            }
        }
        cost = next;
        back.push(from);
    }
    let (mut j, best) = cost.iter().enumerate().min_by_key(|(_, c)| **c).map(|(j, c)| (j, *c)).unwrap();
    let mut path = vec![Place::System; ts.len()];
    for k in (0..ts.len()).rev() {
        path[k] = m.places[j];
        j = back[k][j];
    }
    (best, path)
}

/// The bound and, where capacity binds, the offline schedule of a workload.
pub fn optimum(w: &Workload) -> Optimum {
    let m = Machine::new(&w.topology);
    let chunks = touches(w);
    let mut bound = 0u64;
    let mut paths: HashMap<u64, Vec<Place>> = HashMap::new();
    for (&c, ts) in &chunks {
        let (cost, path) = shortest_path(&m, ts);
        bound += cost;
        paths.insert(c, path);
    }
    // The schedule can only be dearer than the bound; rounding aside, keep it so.
    let offline = offline_schedule(&m, &chunks, &paths).map(|o| o.max(bound));
    Optimum { bound_ns: bound, offline_ns: offline }
}

/// Replays the paths in trace order with VRAM capacity enforced, and
/// returns that schedule's cost, or None when no region ever overflowed
/// (then the bound's paths are themselves feasible). Belady's rule with
/// bypass: to make room, the resident chunk whose next use there is
/// farthest goes back to system memory; a chunk whose own next use there is
/// farther than every resident's stays where it is and is read remotely
/// (atomics and CPU accesses, which cannot be remote, always get their place).
fn offline_schedule(m: &Machine, chunks: &BTreeMap<u64, Vec<Touch>>, paths: &HashMap<u64, Vec<Place>>) -> Option<u64> {
    let capacity = |p: Place| match p {
        Place::System => u64::MAX,
        Place::Vram { device, .. } => m.topo.devices[device as usize].vram_per_tile,
    };
    // (step, chunk, index of the touch) in trace order.
    let mut order: Vec<(usize, u64, usize)> = chunks.iter().flat_map(|(&c, ts)| ts.iter().enumerate().map(move |(k, t)| (t.step, c, k))).collect();
    order.sort_unstable();
    let mut at: HashMap<u64, Place> = HashMap::new();
    let mut used: HashMap<Place, u64> = HashMap::new();
    let mut cost = 0u64;
    let mut bound_hit = false;
    // The next step at which chunk `c`'s path wants it in `p`, after touch `k`.
    let next_use = |c: u64, k: usize, p: Place| -> usize {
        let (ts, path) = (&chunks[&c], &paths[&c]);
        (k + 1..ts.len()).find(|&j| path[j] == p).map_or(usize::MAX, |j| ts[j].step)
    };
    let mut last_touch: HashMap<u64, usize> = HashMap::new();
    for &(_, c, k) in &order {
        let t = &chunks[&c][k];
        let want = paths[&c][k];
        // Untouched chunks are born where they are first wanted.
        let cur = at.get(&c).copied().unwrap_or(Place::System);
        let born = !at.contains_key(&c);
        let mut place = want;
        if want != Place::System && cur != want {
            while used.get(&want).copied().unwrap_or(0) + CHUNK > capacity(want) {
                bound_hit = true;
                let victim = at
                    .iter()
                    .filter(|(&v, &p)| p == want && v != c)
                    .map(|(&v, _)| (next_use(v, last_touch.get(&v).copied().unwrap_or(0), want), v))
                    .max();
                let mine = next_use(c, k, want);
                let forced = m.access(t, cur).is_none();
                match victim {
                    Some((theirs, v)) if forced || theirs > mine => {
                        cost += m.mv(want, Place::System, CHUNK);
                        at.insert(v, Place::System);
                        *used.entry(want).or_default() -= CHUNK;
                    }
                    _ => {
                        place = cur; // bypass: read it where it is
                        break;
                    }
                }
            }
        }
        if place != cur {
            if !born {
                cost += m.mv(cur, place, t.bytes);
            }
            if let Place::Vram { .. } = cur {
                if !born {
                    *used.entry(cur).or_default() -= CHUNK;
                }
            }
            if let Place::Vram { .. } = place {
                *used.entry(place).or_default() += CHUNK;
            }
        } else if born {
            if let Place::Vram { .. } = place {
                *used.entry(place).or_default() += CHUNK;
            }
        }
        cost += m.access(t, place).unwrap_or_else(|| m.access(t, want).unwrap_or(0));
        at.insert(c, place);
        last_touch.insert(c, k);
    }
    bound_hit.then_some(cost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{run, PolicyKind};
    use proptest::prelude::*;

    const MIB: u64 = 1 << 20;

    fn machine(devices: u32, vram: u64, link: bool) -> Topology {
        let mut t = Topology::preset(if link { "2dgpu-p2p" } else { "2dgpu-nolink" }).unwrap();
        t.devices.truncate(devices as usize);
        t.links.retain(|l| l.a < devices && l.b < devices);
        for d in &mut t.devices {
            d.vram_per_tile = vram;
        }
        t
    }

    #[test]
    fn a_read_only_buffer_costs_the_cheaper_of_reading_remotely_and_copying() {
        let t = machine(1, 64 * MIB, true);
        let c = t.costs.clone();
        let mut w = Workload::new("t", t);
        let a = w.buffer("a", 2 * MIB);
        w.cpu(a, 2 * MIB, true);
        w.launch(0, vec![(a, 2 * MIB, Access::Read)]);
        let remote = (2.0 * MIB as f64 / c.h2d_bandwidth * 1e9) as u64 - 1;
        assert_eq!(optimum(&w).bound_ns, remote.min(c.copy_ns(2 * MIB, c.h2d_bandwidth)));
        // Read five times: one copy is cheaper than five remote reads.
        for _ in 0..4 {
            w.launch(0, vec![(a, 2 * MIB, Access::Read)]);
        }
        assert_eq!(optimum(&w).bound_ns, c.copy_ns(2 * MIB, c.h2d_bandwidth));
    }

    #[test]
    fn atomics_and_cpu_accesses_force_their_places() {
        let t = machine(2, 64 * MIB, true);
        let c = t.costs.clone();
        let mut w = Workload::new("t", t);
        let a = w.buffer("a", 2 * MIB);
        w.launch(0, vec![(a, 2 * MIB, Access::Atomic)]); // born in device 0's VRAM
        w.launch(1, vec![(a, 2 * MIB, Access::Atomic)]); // over the link to device 1
        w.cpu(a, 2 * MIB, false); // back to system
        let link = t_link(&w);
        assert_eq!(optimum(&w).bound_ns, c.copy_ns(2 * MIB, link) + c.copy_ns(2 * MIB, c.d2h_bandwidth));
    }

    fn t_link(w: &Workload) -> f64 {
        w.topology.link(0, 1).unwrap().bandwidth
    }

    #[test]
    fn capacity_makes_the_offline_schedule_dearer_than_the_bound() {
        let t = machine(1, 8 * MIB, true);
        let mut w = Workload::new("t", t);
        let a = w.buffer("a", 24 * MIB);
        w.cpu(a, 24 * MIB, true);
        for _ in 0..4 {
            w.launch(0, vec![(a, 24 * MIB, Access::Write)]);
        }
        let o = optimum(&w);
        let off = o.offline_ns.expect("24 MiB in 8 MiB of VRAM overflows");
        assert!(off > o.bound_ns);
        let small = {
            let mut w = Workload::new("t", machine(1, 64 * MIB, true));
            let a = w.buffer("a", 24 * MIB);
            w.cpu(a, 24 * MIB, true);
            w.launch(0, vec![(a, 24 * MIB, Access::Write)]);
            optimum(&w)
        };
        assert_eq!(small.offline_ns, None, "fits: the bound is feasible");
    }

    fn random_workload(seed: u64, devices: u32, link: bool, steps: usize) -> Workload {
        let mut rng = seed | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut w = Workload::new("random", machine(devices, 16 * MIB, link));
        let a = w.buffer("a", 24 * MIB);
        for _ in 0..steps {
            let chunk = next(12);
            let len = (1 + next(4)).min(12 - chunk) * CHUNK;
            let (start, size) = (a + chunk * CHUNK, if next(4) == 0 { 64 << 10 } else { len });
            match next(6) {
                0 => w.cpu(start, size, next(2) == 0),
                k => {
                    let access = [Access::Read, Access::Write, Access::Atomic][(k % 3) as usize];
                    w.launch(next(devices as u64) as u32, vec![(start, size, access)]);
                }
            }
        }
        w
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("XESVM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(if std::env::var("CI").is_ok() { 12 } else { 24 }), ..ProptestConfig::default() })]
        /// No policy, the oracle included, runs a trace faster than its bound.
        #[test]
        fn no_policy_beats_the_bound(seed in any::<u64>(), devices in 1u32..=2, link in any::<bool>(), steps in 4usize..24) {
            let w = random_workload(seed, devices, link, steps);
            let o = optimum(&w);
            for p in PolicyKind::ALL {
                let r = run(&w, p).unwrap();
                prop_assert!(r.simulated_ns >= o.bound_ns, "{p:?}: {} ns < bound {} ns", r.simulated_ns, o.bound_ns);
                if let Some(off) = o.offline_ns {
                    prop_assert!(off >= o.bound_ns);
                }
            }
        }
    }
}
