//! The standard workload suite (cost-model.md and the usual SVM benchmark
//! literature), each parameterised by device count and VRAM size: buffers
//! are sized against VRAM so that capacity matters the same way at every
//! scale.

use xesvm::sim::{Access, LinkKind, LinkSpec, Topology};

use crate::workload::{Workload, CHUNK};

pub const MIB: u64 = 1 << 20;

/// Parameters of the suite.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub devices: u32,
    pub vram: u64,
    pub iterations: u32,
}

/// `devices` discrete GPUs (1 tile each, `vram` bytes) with PCIe P2P all-to-all.
pub fn topology(p: Params) -> Topology {
    let mut t = Topology::preset("4dgpu-p2p").unwrap();
    t.devices.truncate(1);
    let proto = t.devices[0].clone();
    t.devices = (0..p.devices)
        .map(|i| {
            let mut d = proto.clone();
            d.name = format!("gpu{i}");
            d.vram_per_tile = p.vram;
            d
        })
        .collect();
    t.links.clear();
    for a in 0..p.devices {
        for b in a + 1..p.devices {
            t.links.push(LinkSpec { a, b, kind: LinkKind::PcieP2p, bandwidth: t.costs.p2p_bandwidth, atomics: false });
        }
    }
    t
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

/// Every workload of the suite, in table order.
pub fn all(p: Params) -> Vec<Workload> {
    let n = p.devices;
    let t = || topology(p);
    let slice = (p.vram / 2).next_multiple_of(CHUNK);
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
    let mut w = Workload::new("oversubscribed", t());
    let size = (p.vram * 3 / 2).next_multiple_of(CHUNK);
    let a = w.buffer("data", size);
    w.cpu(a, size, true);
    let step = 16 * MIB;
    for _ in 0..p.iterations.min(3) {
        for off in (0..size).step_by(step as usize) {
            w.launch(0, vec![(a + off, step.min(size - off), Access::Read)]);
        }
    }
    out.push(w);

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
    let size = (p.vram / 4).next_multiple_of(CHUNK);
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
    out
}
