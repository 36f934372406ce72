//! What each step of a workload waits for on the simulated clocks
//! (docs/cost-model.md, "Timelines"), as a runtime orders them:
//!
//! * each device has one in-order queue, so its launches run one after
//!   another on its compute engine (the simulator's own rule);
//! * a launch waits for the launches, on any device, that wrote a buffer
//!   it touches or touched a buffer it writes (the events a runtime puts
//!   between queues, or a program's barrier), and for the placement work
//!   the runtime issued before it;
//! * a CPU step waits for the launches that wrote what it reads or touched
//!   what it writes (a program synchronizes before it reads a result);
//! * a free waits for every launch over its pages;
//! * a wait step waits for everything queued.
//!
//! Dependencies are per buffer: a runtime's events order allocations, not
//! bytes.

use xesvm::sim::{Access, Arg, Ran};

use crate::workload::Workload;

pub struct Queues<'w> {
    w: &'w Workload,
    /// Per buffer: when the last launch that wrote it ends.
    written: Vec<u64>,
    /// Per buffer: when the last launch that touched it ends.
    touched: Vec<u64>,
    /// When everything queued so far ends.
    all: u64,
    /// When the placement work issued since the last launch is done.
    placed: u64,
}

impl<'w> Queues<'w> {
    pub fn new(w: &'w Workload) -> Self {
        let n = w.buffers.len();
        Queues { w, written: vec![0; n], touched: vec![0; n], all: 0, placed: 0 }
    }

    /// The buffers whose bytes [start, start+size) overlaps.
    fn buffers(&self, start: u64, size: u64) -> impl Iterator<Item = usize> + 'w {
        let end = start.saturating_add(size);
        self.w.buffers.iter().enumerate().filter(move |(_, b)| b.start < end && start < b.start + b.size).map(|(i, _)| i)
    }

    /// When a launch over `args` may start: after what it depends on.
    pub fn launch_after(&self, args: &[Arg]) -> u64 {
        let mut after = self.placed;
        for a in args {
            let writes = a.access != Access::Read;
            for b in self.buffers(a.start, a.size) {
                after = after.max(if writes { self.touched[b] } else { self.written[b] });
            }
        }
        after
    }

    /// Records a launch over `args` that ran as `ran`.
    pub fn launched(&mut self, args: &[Arg], ran: Ran) {
        for a in args {
            for b in self.buffers(a.start, a.size).collect::<Vec<_>>() {
                self.touched[b] = self.touched[b].max(ran.end_ns);
                if a.access != Access::Read {
                    self.written[b] = self.written[b].max(ran.end_ns);
                }
            }
        }
        self.all = self.all.max(ran.end_ns);
        self.placed = 0;
    }

    /// Records placement work (a prefetch, a runtime call) done at `at`:
    /// the next launch, and CPU steps, wait for it.
    pub fn placed(&mut self, at: u64) {
        self.placed = self.placed.max(at);
        self.all = self.all.max(at);
    }

    /// When a CPU step over [start, start+size) may run.
    pub fn cpu_after(&self, start: u64, size: u64, write: bool) -> u64 {
        let of = if write { &self.touched } else { &self.written };
        self.buffers(start, size).map(|b| of[b]).fold(self.placed, u64::max)
    }

    /// When the pages [start, start+size) may be freed.
    pub fn free_after(&self, start: u64, size: u64) -> u64 {
        self.buffers(start, size).map(|b| self.touched[b]).fold(self.placed, u64::max)
    }

    /// When everything queued so far is done.
    pub fn all(&self) -> u64 {
        self.all
    }
}
