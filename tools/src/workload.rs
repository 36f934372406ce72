//! A workload as a trace: its buffers, and the GPU kernel launches, CPU
//! accesses and runtime calls it makes, in order (`runner` plays it,
//! `optimum` bounds it).

use xesvm::sim::{Access, Topology};

pub const PAGE: u64 = 4096;
pub const CHUNK: u64 = 2 << 20;
/// Where buffers start in the simulated process.
pub const BASE: u64 = 0x10_0000_0000;

/// A placement target in a runtime call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    System,
    Device { device: u32, tile: u16 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    AllocVram { device: u32, start: u64, size: u64, target: Target },
    Evict { start: u64, size: u64 },
    Preferred { start: u64, size: u64, target: Target },
    AtomicMode { start: u64, size: u64, mode: u32 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A GPU kernel launch on a device tile: the spans it accesses.
    Launch { device: u32, tile: u16, accesses: Vec<(u64, u64, Access)> },
    Cpu { start: u64, size: u64, write: bool },
    Call(Call),
}

#[derive(Clone, Debug)]
pub struct Buffer {
    pub name: String,
    pub start: u64,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub topology: Topology,
    pub buffers: Vec<Buffer>,
    pub steps: Vec<Step>,
}

impl Workload {
    pub fn new(name: &str, topology: Topology) -> Self {
        Workload { name: name.into(), topology, buffers: Vec::new(), steps: Vec::new() }
    }

    /// Adds a buffer after the previous ones (2 MiB aligned, with a gap).
    pub fn buffer(&mut self, name: &str, size: u64) -> u64 {
        let start = self.buffers.last().map_or(BASE, |b| (b.start + b.size).next_multiple_of(CHUNK) + CHUNK);
        let size = size.next_multiple_of(PAGE);
        self.buffers.push(Buffer { name: name.into(), start, size });
        start
    }

    pub fn launch(&mut self, device: u32, accesses: Vec<(u64, u64, Access)>) {
        self.steps.push(Step::Launch { device, tile: 0, accesses });
    }

    pub fn cpu(&mut self, start: u64, size: u64, write: bool) {
        self.steps.push(Step::Cpu { start, size, write });
    }
}

