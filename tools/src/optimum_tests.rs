//! Tests of the bound (`optimum.rs`): exact charges on small traces, and
//! the property that no policy beats it on random traces with runtime calls.

use super::*;
use crate::runner::{run, PolicyKind};
use crate::workload::{Knows, Target};
use proptest::prelude::*;
use xesvm::uapi::*;

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

fn t_link(w: &Workload) -> f64 {
    w.topology.link(0, 1).unwrap().bandwidth
}

/// The bound of an exact time: rounded down, less a nanosecond.
fn floor(ns: f64) -> u64 {
    (ns - 1.0).floor() as u64
}

fn ns(bytes: u64, bw: f64) -> f64 {
    bytes as f64 / bw * 1e9
}

/// One streaming pass over `bytes` in device 0's own VRAM: the least memory
/// time of an access, which every launch pays.
fn local(w: &Workload, bytes: u64) -> f64 {
    ns(bytes, w.topology.devices[0].local_bandwidth)
}

/// A device's host link and clear bandwidth.
fn host(t: &Topology, d: usize) -> f64 {
    t.devices[d].host_bandwidth
}

/// The floor of one copy of `bytes` (its share of a range's fixed cost, the
/// transfer, and per-page CPU work without device folios, as on 7.0).
fn copy(c: &Costs, bytes: u64, bw: f64) -> f64 {
    let pages = if c.device_huge_pages { 0.0 } else { (bytes / PAGE * c.per_page_cpu_ns) as f64 };
    (c.copy_submit_ns + c.copy_fixed_ns) as f64 * bytes as f64 / CHUNK as f64 + ns(bytes, bw) + pages
}

/// The floor of the clear of `bytes` of new VRAM on device `d`.
fn clear(t: &Topology, bytes: u64, d: usize) -> f64 {
    t.costs.copy_submit_ns as f64 * bytes as f64 / CHUNK as f64 + ns(bytes, t.devices[d].clear_bandwidth())
}

/// The zero-fill of `bytes` born in system memory.
fn zero_fill(c: &Costs, bytes: u64) -> f64 {
    ns(bytes, c.zero_fill_bandwidth)
}

/// Every policy's run of `w` takes at least `floor_ns`.
fn every_run_at_least(w: &Workload, floor_ns: u64) {
    for p in PolicyKind::ALL {
        let r = run(w, p).unwrap();
        assert!(r.simulated_ns >= floor_ns, "{p:?}: {} < {floor_ns}", r.simulated_ns);
    }
}

#[test]
fn a_read_only_buffer_costs_the_cheaper_of_reading_remotely_and_copying() {
    let t = machine(1, 64 * MIB, true);
    let c = t.costs.clone();
    // Born in system memory by the CPU's write: the zero-fill.
    let born = zero_fill(&c, 2 * MIB);
    let remote = ns(2 * MIB, host(&t, 0));
    let moved = copy(&c, 2 * MIB, host(&t, 0)) + clear(&t, 2 * MIB, 0);
    let mut w = Workload::new("t", t);
    let a = w.buffer("a", 2 * MIB);
    w.cpu(a, 2 * MIB, true);
    w.launch(0, vec![(a, 2 * MIB, Access::Read)]);
    let lo = local(&w, 2 * MIB);
    assert_eq!(optimum(&w).work_ns, floor(born + remote.min(moved + lo)));
    // Read sixteen times: one copy (without device folios on 7.0, about
    // eleven remote reads) is cheaper than sixteen remote reads.
    for _ in 0..15 {
        w.launch(0, vec![(a, 2 * MIB, Access::Read)]);
    }
    assert!(moved < 16.0 * (remote - lo));
    assert_eq!(optimum(&w).work_ns, floor(born + moved + 16.0 * lo));
    // With compute beyond each read's remote time, the remote reads hide
    // behind it: sixteen launches of compute and the birth.
    let slow = (2.0 * remote) as u64;
    for s in &mut w.steps {
        if let Step::Launch { compute_ns, .. } = s {
            *compute_ns = slow;
        }
    }
    assert_eq!(optimum(&w).work_ns, floor(born + 16.0 * slow as f64));
    // Read eight times per launch: the copy again.
    for s in &mut w.steps {
        if let Step::Launch { args, compute_ns, .. } = s {
            args[0].passes = 8;
            *compute_ns = 0;
        }
    }
    assert_eq!(optimum(&w).work_ns, floor(born + moved + 128.0 * lo));
}

#[test]
fn atomics_and_cpu_accesses_force_their_places() {
    let t = machine(2, 64 * MIB, true);
    let c = t.costs.clone();
    let mut w = Workload::new("t", t);
    let a = w.buffer("a", 2 * MIB);
    w.launch(0, vec![(a, 2 * MIB, Access::Atomic)]); // born in device 0's VRAM: a clear
    w.launch(1, vec![(a, 2 * MIB, Access::Atomic)]); // moved over the link after GPU use, or remote at a fault
    w.cpu(a, 2 * MIB, false); // back to system, after GPU use
    let link = t_link(&w);
    let t = &w.topology;
    // No TLB share: one madvise unbinds any span with one invalidation.
    let moved = copy(&c, 2 * MIB, link) + clear(t, 2 * MIB, 1);
    let lo = local(&w, 2 * MIB);
    let remote = c.fault_service_ns as f64 + ns(2 * MIB, link) - lo;
    // Both devices are of one class: back to system over either host link.
    assert_eq!(host(t, 0), host(t, 1));
    let want = 2.0 * lo + clear(t, 2 * MIB, 0) + moved.min(remote) + copy(&c, 2 * MIB, host(t, 0));
    assert_eq!(optimum(&w).work_ns, floor(want));
}

/// Without a link (or across owner groups) a GPU cannot read a peer's
/// VRAM, and VRAM-to-VRAM moves go out to system memory and back.
#[test]
fn without_a_link_peer_vram_is_out_of_reach() {
    let t = machine(2, 64 * MIB, false);
    let c = t.costs.clone();
    let mut w = Workload::new("t", t);
    let a = w.buffer("a", 2 * MIB);
    w.launch(0, vec![(a, 2 * MIB, Access::Atomic)]);
    w.launch(1, vec![(a, 2 * MIB, Access::Atomic)]);
    let t = &w.topology;
    let via_system = copy(&c, 2 * MIB, host(t, 0)) + copy(&c, 2 * MIB, host(t, 1)) + clear(t, 2 * MIB, 1);
    assert_eq!(optimum(&w).work_ns, floor(2.0 * local(&w, 2 * MIB) + clear(t, 2 * MIB, 0) + via_system));
}

/// Never-populated memory a GPU writes is born in VRAM by a clear (or
/// written remotely in system memory, if that is cheaper): never free.
#[test]
fn gpu_born_buffers_pay_their_birth() {
    let t = machine(1, 64 * MIB, true);
    let born = clear(&t, 8 * MIB, 0);
    assert!(born < zero_fill(&t.costs, 8 * MIB) + ns(8 * MIB, host(&t, 0)));
    let mut w = Workload::new("t", t);
    let a = w.buffer("a", 8 * MIB);
    for _ in 0..4 {
        w.launch(0, vec![(a, 8 * MIB, Access::Write)]);
    }
    assert_eq!(optimum(&w).work_ns, floor(born + 4.0 * local(&w, 8 * MIB)));
}

/// The split case: a system preference on 64 KiB of a 2 MiB buffer,
/// atomics beside it, CPU writes on it. Each piece has its own place,
/// and the bound charges no move per round.
#[test]
fn pieces_of_a_chunk_each_keep_their_place() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
    let text = std::fs::read_to_string(dir.join("split.toml")).unwrap();
    let w = crate::scenario::parse(&text, &dir).unwrap().workload;
    let o = optimum(&w);
    let t = &w.topology;
    // The CPU's write gives birth to all 2 MiB in system memory; one move
    // of the atomic piece into VRAM (a copy and the clear), nothing after.
    let piece = 64 << 10;
    let once = copy(&t.costs, piece, host(t, 0)) + clear(t, piece, 0);
    assert_eq!(o.work_ns, floor(zero_fill(&t.costs, 2 * MIB) + once + 8.0 * local(&w, piece)));
    every_run_at_least(&w, o.bound_ns);
}

#[test]
fn capacity_makes_the_offline_schedule_dearer_than_the_bound() {
    let t = machine(1, 8 * MIB, true);
    let mut w = Workload::new("t", t);
    let a = w.buffer("a", 24 * MIB);
    w.cpu(a, 24 * MIB, true);
    // Enough writes that moving beats writing remotely (a copy without
    // device folios costs about eleven remote writes).
    for _ in 0..16 {
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

/// A seeded xorshift stream (workloads must not depend on the proptest shrinker).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The machines the property runs on: with and without links, one to
/// three devices, two tiles, kernel 6.18 (no multi-device pagemaps) or 7.1 (device folios),
/// small VRAM so that capacity binds.
fn random_machine(r: &mut Rng) -> Topology {
    let (preset, devices) = match r.below(6) {
        0 => ("2dgpu-p2p", 1),
        1 => ("2dgpu-p2p", 2),
        2 => ("2dgpu-nolink", 2),
        3 => ("4dgpu-p2p", 3),
        4 => ("max-node", 2),
        _ => ("2dgpu-p2p", 2),
    };
    let mut t = Topology::preset(preset).unwrap();
    t.devices.truncate(devices);
    t.links.retain(|l| (l.a as usize) < devices && (l.b as usize) < devices);
    for d in &mut t.devices {
        d.vram_per_tile = [8, 16, 64][r.below(3) as usize] * MIB;
    }
    match r.below(5) {
        0 => t.set_kernel(xesvm::sim::KernelVersion::V6_18),
        // 7.1: device folios on (no per-page CPU work in a copy).
        1 => t.set_kernel(xesvm::sim::KernelVersion::V7_1),
        _ => {}
    }
    t
}

/// A random trace over two buffers: GPU launches (whole buffers, 2 MiB
/// chunks and pieces down to 4 KiB, any access, any device and tile),
/// CPU reads and writes, and runtime calls (preferred location, atomic
/// mode, alloc_vram, evict) on sub-ranges and whole buffers, and a buffer
/// freed and allocated again (munmap, mmap: its contents gone).
fn random_workload(seed: u64, steps: usize) -> Workload {
    let mut r = Rng(seed | 1);
    let t = random_machine(&mut r);
    let devices = t.devices.len() as u64;
    let tiles: Vec<u16> = t.devices.iter().map(|d| d.tiles).collect();
    let mut w = Workload::new("random", t);
    // Placements from the submitting thread or a helper; four buffers, so
    // that devices can run launches that do not depend on each other.
    if r.below(2) == 0 {
        w.placement_thread = PlacementThread::Helper;
    }
    let bufs = [(w.buffer("a", 12 * MIB), 12 * MIB), (w.buffer("b", 6 * MIB), 6 * MIB), (w.buffer("c", 8 * MIB), 8 * MIB), (w.buffer("d", 4 * MIB), 4 * MIB)];
    let span = |r: &mut Rng| -> (u64, u64) {
        let (b, size) = bufs[r.below(4) as usize];
        let unit = [4096, 64 << 10, CHUNK][r.below(3) as usize];
        match r.below(4) {
            0 => (b, size),
            _ => {
                let units = size / unit;
                let first = r.below(units);
                let n = 1 + r.below((units - first).min(if unit == CHUNK { 3 } else { 40 }));
                (b + first * unit, n * unit)
            }
        }
    };
    let target = |r: &mut Rng| -> Target {
        let device = r.below(devices) as u32;
        match r.below(3) {
            0 => Target::System,
            _ => Target::Device { device, tile: r.below(tiles[device as usize] as u64) as u16 },
        }
    };
    for _ in 0..steps {
        let (start, size) = span(&mut r);
        match r.below(14) {
            0 | 1 => w.cpu(start, size, r.below(2) == 0),
            13 => w.steps.push(Step::Wait),
            12 => {
                let (b, size) = bufs[r.below(4) as usize];
                w.steps.push(Step::Free { start: b, size });
                w.steps.push(Step::Alloc { start: b, size });
            }
            2 => w.steps.push(Step::Call(Call::Preferred { start, size, target: target(&mut r) })),
            3 => {
                let mode = [DRM_XE_ATOMIC_UNDEFINED, DRM_XE_ATOMIC_DEVICE, DRM_XE_ATOMIC_GLOBAL, DRM_XE_ATOMIC_CPU][r.below(4) as usize];
                w.steps.push(Step::Call(Call::AtomicMode { start, size, mode }))
            }
            4 => {
                let device = r.below(devices) as u32;
                w.steps.push(Step::Call(Call::AllocVram { device, start, size, target: target(&mut r) }))
            }
            5 => w.steps.push(Step::Call(Call::Evict { start, size })),
            _ => {
                let device = r.below(devices) as u32;
                let tile = r.below(tiles[device as usize] as u64) as u16;
                // Passes, pattern and compute drawn so that either side of
                // the roofline can bind.
                let shape = |r: &mut Rng, a: Access| {
                    let pattern = if r.below(3) == 0 { Pattern::Scattered { permille: 1 + r.below(1000) as u16 } } else { Pattern::Streaming };
                    Arg { passes: 1 + r.below(16) as u32, pattern, ..Arg::new(0, 0, a) }
                };
                let a = [Access::Read, Access::Write, Access::Atomic][r.below(3) as usize];
                let mut args = vec![Arg { start, size, ..shape(&mut r, a) }];
                if r.below(3) == 0 {
                    let (s2, n2) = span(&mut r);
                    let a = [Access::Read, Access::Write][r.below(2) as usize];
                    args.push(Arg { start: s2, size: n2, ..shape(&mut r, a) });
                }
                let compute_ns = [0, 1_000, 50_000, 2_000_000][r.below(4) as usize];
                w.steps.push(Step::Launch { device, tile, args, compute_ns, knows: Knows::Span, allocs: Vec::new() });
            }
        }
    }
    w
}

fn cases() -> u32 {
    std::env::var("XESVM_BOUND_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(if std::env::var("CI").is_ok() { 1000 } else { 500 })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    /// No policy, the oracle included, runs a trace faster than its
    /// bound; the offline schedule never undercuts it either.
    /// `XESVM_BOUND_CASES=N` runs more cases.
    #[test]
    fn no_policy_beats_the_bound(seed in any::<u64>(), steps in 4usize..28) {
        let w = random_workload(seed, steps);
        let o = optimum(&w);
        if let Some(off) = o.offline_ns {
            prop_assert!(off >= o.bound_ns);
        }
        for p in PolicyKind::ALL {
            let r = run(&w, p).map_err(|e| TestCaseError::fail(format!("{p:?}: {e}\n{w:#?}")))?;
            // A GPU access that failed (the kernel answers the fault with an
            // error: on hardware the context is lost) did not run the trace;
            // the bound is for runs that did.
            if r.gpu_errors > 0 {
                continue;
            }
            prop_assert!(r.simulated_ns >= o.bound_ns, "{p:?}: {} ns < bound {} ns, {} GPU errors\n{w:#?}", r.simulated_ns, o.bound_ns, r.gpu_errors);
            // The engines' work together, which the one-clock bound floored.
            let work: u64 = r.breakdown().iter().map(|&(_, ns)| ns).sum();
            prop_assert!(work >= o.work_ns, "{p:?}: work {work} ns < work bound {} ns\n{w:#?}", o.work_ns);
        }
    }
}


/// A move between two touches is priced as the cheapest chain of copies:
/// on a slow peer link with slow host links, through a third device.
#[test]
fn a_move_is_priced_as_the_cheapest_chain_of_copies() {
    let mut t = Topology::preset("4dgpu-p2p").unwrap();
    t.devices.truncate(3);
    t.links.retain(|l| l.a < 3 && l.b < 3);
    for d in &mut t.devices {
        d.vram_per_tile = 64 * MIB;
        d.host_bandwidth = 4e9;
    }
    for l in &mut t.links {
        if (l.a, l.b) == (0, 1) {
            l.bandwidth = 1e9;
        }
    }
    let m = Machine::new(&t);
    let v = |d| Place::Vram { device: d, tile: 0 };
    let via_third = m.direct(v(0), v(2)) + m.direct(v(2), v(1));
    assert!(via_third < m.direct(v(0), v(1)), "a 1 GB/s link and 4 GB/s host links: the third device is cheaper");
    assert_eq!(m.mv(v(0), v(1)), via_third);
    let mut w = Workload::new("slow link", t);
    let a = w.buffer("a", 8 * MIB);
    w.launch(0, vec![(a, 8 * MIB, Access::Atomic)]);
    w.launch(1, vec![(a, 8 * MIB, Access::Atomic)]);
    w.launch(2, vec![(a, 8 * MIB, Access::Atomic)]);
    w.launch(1, vec![(a, 8 * MIB, Access::Atomic)]);
    let o = optimum(&w);
    every_run_at_least(&w, o.bound_ns);
}

/// An alloc_vram of data no GPU reads forces a move the bound leaves out;
/// the figure beside it charges it, and every run that honours the call
/// (all policies, when the VRAM has room) pays at least that.
#[test]
fn honouring_the_calls_is_priced_beside_the_bound() {
    let t = machine(1, 64 * MIB, true);
    let mut w = Workload::new("t", t);
    let a = w.buffer("a", 8 * MIB);
    w.cpu(a, 8 * MIB, true);
    w.steps.push(Step::Call(Call::AllocVram { device: 0, start: a, size: 8 * MIB, target: Target::Device { device: 0, tile: 0 } }));
    w.cpu(a, 8 * MIB, false);
    let o = optimum(&w);
    let calls = o.calls_ns.expect("the call forces two moves no access needs");
    assert!(calls > o.bound_ns);
    every_run_at_least(&w, calls);
    // Without the call there is nothing beside the bound.
    w.steps.remove(1);
    assert_eq!(optimum(&w).calls_ns, None);
}
