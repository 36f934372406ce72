//! The standard workload suite (docs/cost-model.md, the usual SVM benchmark
//! literature, and the patterns runtimes run: host offload loops, pipelines
//! across devices, sweeps larger than VRAM, irregular gathers), each
//! parameterised by the machine: buffers are sized against VRAM so that
//! capacity matters the same way at every scale.

use xesvm::sim::{Access, Topology};

use crate::workload::{Workload, CHUNK};

pub const MIB: u64 = 1 << 20;

/// The machines `xesvm bench` runs by default: name, preset, VRAM per tile
/// (small enough that capacity matters).
pub const MACHINES: &[(&str, &str, u64)] = &[
    ("2dgpu-p2p", "2dgpu-p2p", 256),
    ("4dgpu-p2p", "4dgpu-p2p", 256),
    ("max-node", "max-node", 128),
    ("2dgpu-nolink", "2dgpu-nolink", 256),
];

/// A machine: a preset or a topology file, with VRAM per tile set to
/// `vram_mib` (0: as described) and only its first `devices` devices (0: all).
pub fn machine(name: &str, vram_mib: u64, devices: u32) -> Result<Topology, String> {
    let mut t = match Topology::preset(name) {
        Some(t) => t,
        None => {
            let path = std::path::Path::new(name);
            let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: not a preset, and {e}"))?;
            Topology::parse(&text).map_err(|e| format!("{name}: {e}"))?
        }
    };
    if devices > 0 {
        if devices as usize > t.devices.len() {
            return Err(format!("{name} has {} devices, not {devices}", t.devices.len()));
        }
        t.devices.truncate(devices as usize);
        t.links.retain(|l| l.a < devices && l.b < devices);
    }
    if vram_mib > 0 {
        for d in t.devices.iter_mut().filter(|d| d.has_vram()) {
            d.vram_per_tile = vram_mib * MIB;
        }
    }
    t.validate()?;
    Ok(t)
}

/// Parameters of the suite.
#[derive(Clone, Debug)]
pub struct Params {
    pub topology: Topology,
    pub iterations: u32,
}

impl Params {
    fn devices(&self) -> u32 {
        self.topology.devices.len() as u32
    }
    /// VRAM of one tile (of the first device with VRAM; 256 MiB without).
    fn vram(&self) -> u64 {
        self.topology.devices.iter().find(|d| d.has_vram()).map_or(256 * MIB, |d| d.vram_per_tile)
    }
}

/// A tiny seeded generator (workloads must be the same for every policy).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn chunks(size: u64) -> u64 {
    size / CHUNK
}

/// Device 0 reads a buffer of `size` in order, 16 MiB per launch, up to
/// three times round.
fn sweep(name: &str, topology: Topology, size: u64, iterations: u32) -> Workload {
    let mut w = Workload::new(name, topology);
    let a = w.buffer("data", size);
    w.cpu(a, size, true);
    let step = 16 * MIB;
    for _ in 0..iterations.min(3) {
        for off in (0..size).step_by(step as usize) {
            w.launch(0, vec![(a + off, step.min(size - off), Access::Read)]);
        }
    }
    w
}

/// Every workload of the suite, in table order.
pub fn all(p: &Params) -> Vec<Workload> {
    let n = p.devices();
    let t = || p.topology.clone();
    let vram = p.vram();
    let slice = (vram / 2).next_multiple_of(CHUNK);
    let mut out = Vec::new();

    // Streaming: each device reads its slice once.
    let mut w = Workload::new("streaming", t());
    let a = w.buffer("data", slice * n as u64);
    w.cpu(a, slice * n as u64, true);
    for d in 0..n {
        w.launch(d, vec![(a + d as u64 * slice, slice, Access::Read)]);
    }
    out.push(w);

    // Oversubscribed cyclic: a working set of 1.5x VRAM read round and round.
    out.push(sweep("oversubscribed", t(), (vram * 3 / 2).next_multiple_of(CHUNK), p.iterations));

    // Random access: random devices read random chunks.
    let mut w = Workload::new("random", t());
    let size = slice * n as u64;
    let a = w.buffer("data", size);
    w.cpu(a, size, true);
    let mut r = Lcg(42);
    for _ in 0..(p.iterations as u64 * 32) {
        let c = r.next() % chunks(size);
        let d = (r.next() % n as u64) as u32;
        w.launch(d, vec![(a + c * CHUNK, CHUNK, Access::Read)]);
    }
    out.push(w);

    // Stencil with halo exchange: each device updates its slice and reads
    // its neighbours' edge chunks.
    let mut w = Workload::new("stencil-halo", t());
    let a = w.buffer("grid", slice * n as u64);
    w.cpu(a, slice * n as u64, true);
    for _ in 0..p.iterations {
        for d in 0..n {
            let mine = a + d as u64 * slice;
            let mut acc = vec![(mine, slice, Access::Write)];
            if d > 0 {
                acc.push((mine - CHUNK, CHUNK, Access::Read));
            }
            if d + 1 < n {
                acc.push((mine + slice, CHUNK, Access::Read));
            }
            w.launch(d, acc);
        }
    }
    out.push(w);

    // All-to-all: every device reads every other device's slice.
    let mut w = Workload::new("all-to-all", t());
    let a = w.buffer("data", slice * n as u64);
    for d in 0..n {
        w.launch(d, vec![(a + d as u64 * slice, slice, Access::Write)]);
    }
    for _ in 0..2 {
        for d in 0..n {
            let acc = (0..n).filter(|&o| o != d).map(|o| (a + o as u64 * slice, slice, Access::Read)).collect();
            w.launch(d, acc);
        }
    }
    out.push(w);

    // Read-mostly table shared by all devices, with rare CPU updates.
    let mut w = Workload::new("read-mostly", t());
    let size = (vram / 4).next_multiple_of(CHUNK);
    let a = w.buffer("table", size);
    w.cpu(a, size, true);
    for i in 0..p.iterations {
        for d in 0..n {
            w.launch(d, vec![(a, size, Access::Read)]);
        }
        if i % 4 == 3 {
            w.cpu(a, CHUNK, true);
        }
    }
    out.push(w);

    // CPU-GPU ping-pong: the GPU writes, the CPU reads, again and again.
    let mut w = Workload::new("cpu-gpu-pingpong", t());
    let size = 32 * MIB;
    let a = w.buffer("data", size);
    for _ in 0..p.iterations {
        w.launch(0, vec![(a, size, Access::Write)]);
        w.cpu(a, size, false);
    }
    out.push(w);

    // Atomics hotspot: a small buffer updated atomically by every device in turn.
    let mut w = Workload::new("atomics-hotspot", t());
    let size = 4 * MIB;
    let a = w.buffer("counters", size);
    w.cpu(a, size, true);
    for _ in 0..p.iterations {
        for d in 0..n {
            w.launch(d, vec![(a, size, Access::Atomic)]);
        }
    }
    out.push(w);

    // Phase-shifting owner: the buffer's user changes every few iterations.
    let mut w = Workload::new("phase-shift", t());
    let size = slice;
    let a = w.buffer("data", size);
    w.cpu(a, size, true);
    for i in 0..p.iterations * 2 {
        let owner = (i / 4) % n;
        w.launch(owner, vec![(a, size, Access::Write)]);
        // Now and then another device peeks at it.
        if i % 4 == 2 {
            w.launch((owner + 1) % n, vec![(a, CHUNK, Access::Read)]);
        }
    }
    out.push(w);

    // Host offload loop (an inference server, a solver's host-driven
    // iterations): the CPU writes the input, GPU 0 reads it and a large
    // read-only weight buffer and writes a small output, the CPU reads it.
    let mut w = Workload::new("host-offload", t());
    let input = (vram / 16).next_multiple_of(CHUNK);
    let weights_size = (vram / 2).next_multiple_of(CHUNK);
    let weights = w.buffer("weights", weights_size);
    let inp = w.buffer("input", input);
    let out_buf = w.buffer("output", 4 * MIB);
    w.cpu(weights, weights_size, true);
    for _ in 0..p.iterations {
        w.cpu(inp, input, true);
        w.launch(0, vec![(inp, input, Access::Read), (weights, weights_size, Access::Read), (out_buf, 4 * MIB, Access::Write)]);
        w.cpu(out_buf, 4 * MIB, false);
    }
    out.push(w);

    // Pipeline across every device (pipeline-parallel training or a
    // multi-stage video pipeline): device k reads device k-1's activations
    // and writes its own; the CPU feeds the first stage.
    let mut w = Workload::new("pipeline", t());
    let act = (vram / 8).next_multiple_of(CHUNK);
    let feed = w.buffer("feed", act);
    let acts: Vec<u64> = (0..n).map(|k| w.buffer(&format!("act{k}"), act)).collect();
    for _ in 0..p.iterations {
        w.cpu(feed, act, true);
        for k in 0..n {
            let src = if k == 0 { feed } else { acts[k as usize - 1] };
            w.launch(k, vec![(src, act, Access::Read), (acts[k as usize], act, Access::Write)]);
        }
    }
    out.push(w);

    // An in-order sweep over three times the VRAM (out-of-core stencil or
    // a scan over a large table).
    out.push(sweep("sweep-3x", t(), (vram * 3).next_multiple_of(CHUNK), p.iterations));

    // Irregular gather (graph analytics, embedding lookups): every device
    // reads random 64 KiB pieces of a large buffer.
    let mut w = Workload::new("gather", t());
    let size = (vram * 2).next_multiple_of(CHUNK);
    let a = w.buffer("table", size);
    w.cpu(a, size, true);
    let mut r = Lcg(7);
    let piece = 64 << 10;
    for _ in 0..p.iterations {
        for d in 0..n {
            let acc = (0..16).map(|_| (a + r.next() % (size / piece) * piece, piece, Access::Read)).collect();
            w.launch(d, acc);
        }
    }
    out.push(w);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimum::optimum;
    use crate::runner::{run, PolicyKind};

    fn above_the_bound(w: &Workload, machine: &str) {
        let o = optimum(w);
        assert!(o.bound_ns > 0, "{machine} {}: a bound of 0 while GPUs work", w.name);
        if let Some(off) = o.offline_ns {
            assert!(off >= o.bound_ns, "{machine} {}: offline {off} < bound {}", w.name, o.bound_ns);
        }
        for p in PolicyKind::ALL {
            let r = run(w, p).unwrap_or_else(|e| panic!("{machine} {} {p:?}: {e}", w.name));
            assert!(r.simulated_ns >= o.bound_ns, "{machine} {} {p:?}: {} ns < bound {} ns", w.name, r.simulated_ns, o.bound_ns);
        }
    }

    /// Every workload of the suite on each of the bench's machines (two
    /// iterations, so the test stays short), under every policy, the oracle
    /// included, takes at least its bound (the example scenarios are checked
    /// in scenario.rs, `every_example_scenario_runs`).
    #[test]
    fn no_policy_beats_the_bound_on_the_suite() {
        for &(name, preset, vram) in MACHINES {
            let p = Params { topology: machine(preset, vram, 0).unwrap(), iterations: 2 };
            for w in all(&p) {
                above_the_bound(&w, name);
            }
        }
    }
}
