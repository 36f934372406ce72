//! The standard workload suite (docs/cost-model.md, the usual SVM benchmark
//! literature, and the patterns runtimes run: host offload loops, pipelines
//! across devices, sweeps larger than VRAM, irregular gathers), each
//! parameterised by the machine: buffers are sized against VRAM so that
//! capacity matters the same way at every scale.
//!
//! Buffers hold whole thousands of 4-byte elements ([`decimal`]), as real
//! arrays do, so they end inside a 2 MiB chunk. Each launch says how its
//! kernel goes over its arguments (passes, pattern) and how long it
//! computes, from the kind of kernel it models, in a comment: compute as a
//! multiple of one pass over its bytes in the device's own VRAM (its
//! arithmetic intensity against the memory roofline).

use xesvm::sim::{Access, Arg, Pattern, Topology};

use crate::workload::{Knows, Step, Workload, CHUNK};

pub const MIB: u64 = 1 << 20;

/// The machines `xesvm bench` runs by default: name, preset, VRAM per tile
/// (small enough that capacity matters).
pub const MACHINES: &[(&str, &str, u64)] = &[("2dgpu-p2p", "2dgpu-p2p", 256), ("4dgpu-p2p", "4dgpu-p2p", 256), ("max-node", "max-node", 128), ("2dgpu-nolink", "2dgpu-nolink", 256)];

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

/// The largest whole number of thousands of 4-byte elements in `bytes`.
pub fn decimal(bytes: u64) -> u64 {
    (bytes / 4000).max(1) * 4000
}

/// A launch on `device` of a kernel that goes over `args` and computes for
/// `intensity` times one streaming pass over all its bytes in the
/// device's own VRAM.
fn kernel(w: &mut Workload, device: u32, args: Vec<Arg>, intensity: f64) {
    let bytes: u64 = args.iter().map(|a| a.size).sum();
    let local = w.topology.devices[device as usize].local_bandwidth;
    let compute_ns = (intensity * bytes as f64 * 1e9 / local) as u64;
    w.steps.push(Step::Launch { device, tile: 0, args, compute_ns, knows: Knows::Span, allocs: Vec::new() });
}

fn arg(start: u64, size: u64, access: Access, passes: u32) -> Arg {
    Arg { passes, ..Arg::new(start, size, access) }
}

fn scattered(start: u64, size: u64, access: Access, passes: u32, permille: u16) -> Arg {
    Arg { passes, pattern: Pattern::Scattered { permille }, ..Arg::new(start, size, access) }
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
            // A scan: one pass, memory-bound.
            kernel(&mut w, 0, vec![arg(a + off, step.min(size - off), Access::Read, 1)], 0.3);
        }
    }
    w
}

/// Every workload of the suite, in table order.
pub fn all(p: &Params) -> Vec<Workload> {
    let n = p.devices();
    let t = || p.topology.clone();
    let vram = p.vram();
    let slice = decimal(vram / 2);
    let mut out = Vec::new();

    // Streaming: each device reads its slice once.
    let mut w = Workload::new("streaming", t());
    let a = w.buffer("data", slice * n as u64);
    w.cpu(a, slice * n as u64, true);
    for d in 0..n {
        // A reduction: one pass, memory-bound.
        kernel(&mut w, d, vec![arg(a + d as u64 * slice, slice, Access::Read, 1)], 0.3);
    }
    out.push(w);

    // Oversubscribed cyclic: a working set of 1.5x VRAM read round and round.
    out.push(sweep("oversubscribed", t(), decimal(vram * 3 / 2), p.iterations));

    // Random access: random devices read random chunks.
    let mut w = Workload::new("random", t());
    let size = slice * n as u64;
    let a = w.buffer("data", size);
    w.cpu(a, size, true);
    let mut r = Lcg(42);
    for _ in 0..(p.iterations as u64 * 32) {
        let c = r.next() % chunks(size);
        let d = (r.next() % n as u64) as u32;
        // A small batch of work on one tile: two passes, light compute.
        kernel(&mut w, d, vec![arg(a + c * CHUNK, CHUNK, Access::Read, 2)], 1.0);
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
            // A 7-point stencil: its slice read about three times beyond
            // the caches (neighbouring planes), the halos once.
            let mut acc = vec![arg(mine, slice, Access::Write, 3)];
            if d > 0 {
                acc.push(arg(mine - CHUNK, CHUNK, Access::Read, 1));
            }
            if d + 1 < n {
                acc.push(arg(mine + slice, CHUNK, Access::Read, 1));
            }
            kernel(&mut w, d, acc, 1.5);
        }
    }
    out.push(w);

    // All-to-all: every device reads every other device's slice.
    let mut w = Workload::new("all-to-all", t());
    let a = w.buffer("data", slice * n as u64);
    for d in 0..n {
        kernel(&mut w, d, vec![arg(a + d as u64 * slice, slice, Access::Write, 1)], 0.3);
    }
    for _ in 0..2 {
        for d in 0..n {
            // An all-gather consumer: each peer's slice read once.
            let acc = (0..n).filter(|&o| o != d).map(|o| arg(a + o as u64 * slice, slice, Access::Read, 1)).collect();
            kernel(&mut w, d, acc, 0.3);
        }
    }
    out.push(w);

    // Read-mostly table shared by all devices, with rare CPU updates.
    let mut w = Workload::new("read-mostly", t());
    let size = decimal(vram / 4);
    let a = w.buffer("table", size);
    w.cpu(a, size, true);
    for i in 0..p.iterations {
        for d in 0..n {
            // Lookups: a fifth of the table touched, scattered, four times.
            kernel(&mut w, d, vec![scattered(a, size, Access::Read, 4, 200)], 0.5);
        }
        if i % 4 == 3 {
            w.cpu(a, CHUNK, true);
        }
    }
    out.push(w);

    // CPU-GPU ping-pong: the GPU writes, the CPU reads, again and again.
    let mut w = Workload::new("cpu-gpu-pingpong", t());
    let size = decimal(32 * MIB);
    let a = w.buffer("data", size);
    for _ in 0..p.iterations {
        // An element-wise producer: one pass.
        kernel(&mut w, 0, vec![arg(a, size, Access::Write, 1)], 0.5);
        w.cpu(a, size, false);
    }
    out.push(w);

    // Atomics hotspot: a small buffer updated atomically by every device in turn.
    let mut w = Workload::new("atomics-hotspot", t());
    let size = decimal(4 * MIB);
    let a = w.buffer("counters", size);
    w.cpu(a, size, true);
    for _ in 0..p.iterations {
        for d in 0..n {
            // A histogram: scattered atomics on a tenth of the bins, eight
            // rounds of input.
            kernel(&mut w, d, vec![scattered(a, size, Access::Atomic, 8, 100)], 2.0);
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
        // An iterative update: two passes over its data.
        kernel(&mut w, owner, vec![arg(a, size, Access::Write, 2)], 1.0);
        // Now and then another device peeks at it.
        if i % 4 == 2 {
            kernel(&mut w, (owner + 1) % n, vec![arg(a, CHUNK, Access::Read, 1)], 0.3);
        }
    }
    out.push(w);

    // Host offload loop (an inference server, a solver's host-driven
    // iterations): the CPU writes the input, GPU 0 reads it and a large
    // read-only weight buffer and writes a small output, the CPU reads it.
    let mut w = Workload::new("host-offload", t());
    let input = decimal(vram / 16);
    let weights_size = decimal(vram / 2);
    let out_size = decimal(4 * MIB);
    let weights = w.buffer("weights", weights_size);
    let inp = w.buffer("input", input);
    let out_buf = w.buffer("output", out_size);
    w.cpu(weights, weights_size, true);
    for _ in 0..p.iterations {
        w.cpu(inp, input, true);
        // A batched GEMM: the input re-read per weight tile (eight times),
        // the weights streamed twice, compute-heavy.
        let acc = vec![arg(inp, input, Access::Read, 8), arg(weights, weights_size, Access::Read, 2), arg(out_buf, out_size, Access::Write, 1)];
        kernel(&mut w, 0, acc, 4.0);
        w.cpu(out_buf, out_size, false);
    }
    out.push(w);

    // Pipeline across every device (pipeline-parallel training or a
    // multi-stage video pipeline): device k reads device k-1's activations
    // and writes its own; the CPU feeds the first stage.
    let mut w = Workload::new("pipeline", t());
    let act = decimal(vram / 8);
    let feed = w.buffer("feed", act);
    let acts: Vec<u64> = (0..n).map(|k| w.buffer(&format!("act{k}"), act)).collect();
    for _ in 0..p.iterations {
        w.cpu(feed, act, true);
        for k in 0..n {
            let src = if k == 0 { feed } else { acts[k as usize - 1] };
            // A convolution stage: its input read three times (the
            // filter's rows), its output written once.
            kernel(&mut w, k, vec![arg(src, act, Access::Read, 3), arg(acts[k as usize], act, Access::Write, 1)], 2.0);
        }
    }
    out.push(w);

    // An in-order sweep over three times the VRAM (out-of-core stencil or
    // a scan over a large table).
    out.push(sweep("sweep-3x", t(), decimal(vram * 3), p.iterations));

    // Irregular gather (graph analytics, embedding lookups): every device
    // reads random 64 KiB pieces of a large buffer.
    let mut w = Workload::new("gather", t());
    let size = decimal(vram * 2);
    let a = w.buffer("table", size);
    w.cpu(a, size, true);
    let mut r = Lcg(7);
    let piece = 64 << 10;
    for _ in 0..p.iterations {
        for d in 0..n {
            // Embedding lookups: rows scattered over each 64 KiB piece, a
            // quarter of its bytes.
            let acc = (0..16).map(|_| scattered(a + r.next() % (size / piece) * piece, piece, Access::Read, 1, 250)).collect();
            kernel(&mut w, d, acc, 0.2);
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
            assert!(r.content_ok, "{machine} {} {p:?}: content lost", w.name);
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
