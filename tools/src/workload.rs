//! A workload as a trace: its buffers, and the GPU kernel launches, CPU
//! accesses and runtime calls it makes, in order (`runner` plays it,
//! `optimum` bounds it).

#[cfg(test)]
use xesvm::sim::Access;
use xesvm::sim::{Arg, Topology};

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
    /// A GPU kernel launch on a device tile: its arguments (the spans it
    /// accesses, how often and how densely), how long it computes, and
    /// what the runtime knows of its memory when it launches it.
    Launch {
        device: u32,
        tile: u16,
        args: Vec<Arg>,
        compute_ns: u64,
        knows: Knows,
        /// Per argument, the buffer its pointer lies in (where the step
        /// names one): what a runtime's allocation table gives for the
        /// exact pointer, which the page-widened span no longer tells
        /// where small buffers share a page.
        allocs: Vec<Option<usize>>,
    },
    Cpu {
        start: u64,
        size: u64,
        write: bool,
    },
    Call(Call),
    /// The program frees the pages (munmap): their contents are gone. No
    /// runtime is told (no free hook, as without an allocator interposer).
    Free {
        start: u64,
        size: u64,
    },
    /// The program allocates them again at the same address (mmap, fresh
    /// anonymous memory: a later access finds them unpopulated).
    Alloc {
        start: u64,
        size: u64,
    },
    /// The host waits for every launch queued so far (a queue or device
    /// synchronize).
    Wait,
}

/// The host thread a runtime places memory from (docs/cost-model.md,
/// "Timelines"): its prefetches and the library's placement calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PlacementThread {
    /// The thread that submits the launches, before it submits (NEO
    /// today): it waits for each copy.
    #[default]
    Submitting,
    /// A helper thread: the submitting thread goes on, and the launch
    /// waits for the placement's copies.
    Helper,
}

/// What a runtime knows of a launch's memory when it launches it
/// (../README.md, "What the runtime knows").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Knows {
    /// Only the pointers (a kernel's arguments into malloc memory): the
    /// library may find the extent itself.
    #[default]
    Pointer,
    /// The allocation each pointer lies in (a runtime with an allocation table).
    Extent,
    /// The exact span each argument touches (an application that
    /// prefetches or advises precisely).
    Span,
}

/// A buffer: `size` bytes from `start`, neither necessarily page aligned
/// (a buffer packed after another starts where that one ends). Accesses,
/// like a runtime's, cover whole pages: [`Buffer::pages`].
#[derive(Clone, Debug)]
pub struct Buffer {
    pub name: String,
    pub start: u64,
    pub size: u64,
}

impl Buffer {
    /// The pages the buffer lies on: (first page, bytes), widened outwards.
    pub fn pages(&self) -> (u64, u64) {
        let lo = self.start / PAGE * PAGE;
        (lo, (self.start + self.size).next_multiple_of(PAGE) - lo)
    }
}

/// Where a buffer packed after another starts: the previous one's end,
/// rounded up to this (as runtime allocators align their blocks).
pub const PACK_ALIGN: u64 = 256;

#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub topology: Topology,
    pub buffers: Vec<Buffer>,
    pub steps: Vec<Step>,
    /// Where the runtime places memory from.
    pub placement_thread: PlacementThread,
}

impl Workload {
    pub fn new(name: &str, topology: Topology) -> Self {
        Workload { name: name.into(), topology, buffers: Vec::new(), steps: Vec::new(), placement_thread: PlacementThread::Submitting }
    }

    /// Adds a buffer after the previous ones (2 MiB aligned, with a gap),
    /// of `size` bytes (its accesses cover whole pages).
    pub fn buffer(&mut self, name: &str, size: u64) -> u64 {
        let start = self.buffers.last().map_or(BASE, |b| (b.start + b.size).next_multiple_of(CHUNK) + CHUNK);
        self.buffers.push(Buffer { name: name.into(), start, size });
        start
    }

    /// Adds a buffer packed right after the previous one, as an allocator
    /// packs blocks in one arena: it starts at the previous buffer's end
    /// rounded up to [`PACK_ALIGN`], so the two can share a page.
    pub fn packed_buffer(&mut self, name: &str, size: u64) -> u64 {
        let start = self.buffers.last().map_or(BASE, |b| (b.start + b.size).next_multiple_of(PACK_ALIGN));
        self.buffers.push(Buffer { name: name.into(), start, size });
        start
    }

    /// The process's mappings of the buffers, (start, bytes) in address
    /// order: each buffer its own anonymous mapping over its pages, and an
    /// arena of packed buffers (each sharing or abutting the previous one's
    /// pages) one mapping. Nothing else around them is mapped.
    pub fn mappings(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = Vec::new();
        let mut pages: Vec<(u64, u64)> = self.buffers.iter().map(|b| b.pages()).collect();
        pages.sort_unstable();
        for (lo, n) in pages {
            match v.last_mut() {
                Some((s, m)) if lo <= *s + *m => *m = (*m).max(lo + n - *s),
                _ => v.push((lo, n)),
            }
        }
        v
    }

    /// The buffer an argument over [start, start+size) is into: of those
    /// whose bytes it overlaps, the one it overlaps most (a page-widened
    /// argument may reach into a packed neighbour's last page), the later
    /// on a tie.
    pub fn buffer_of(&self, start: u64, size: u64) -> Option<&Buffer> {
        let end = start + size;
        let overlap = |b: &Buffer| (b.start + b.size).min(end).saturating_sub(b.start.max(start));
        self.buffers.iter().filter(|b| overlap(b) > 0).max_by_key(|b| (overlap(b), b.start))
    }

    /// The pages buffer `i` holds alone (no other buffer lies on them):
    /// what freeing it can unmap. None when it shares every page.
    pub fn own_pages(&self, i: usize) -> Option<(u64, u64)> {
        let (mut lo, n) = self.buffers[i].pages();
        let mut hi = lo + n;
        let shares = |p: u64| self.buffers.iter().enumerate().any(|(j, b)| j != i && b.start < p + PAGE && b.start + b.size > p);
        if shares(lo) {
            lo += PAGE;
        }
        if hi > lo && shares(hi - PAGE) {
            hi -= PAGE;
        }
        (hi > lo).then_some((lo, hi - lo))
    }

    /// A launch on tile 0 of `device`: one streaming pass over each span, no
    /// compute, the exact spans known.
    #[cfg(test)]
    pub fn launch(&mut self, device: u32, accesses: Vec<(u64, u64, Access)>) {
        let args = accesses.into_iter().map(|(s, n, a)| Arg::new(s, n, a)).collect();
        self.steps.push(Step::Launch { device, tile: 0, args, compute_ns: 0, knows: Knows::Span, allocs: Vec::new() });
    }

    pub fn cpu(&mut self, start: u64, size: u64, write: bool) {
        self.steps.push(Step::Cpu { start, size, write });
    }
}
