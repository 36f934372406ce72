//! A GPU kernel launch: the spans its arguments point at, how often and how
//! densely it touches each, and how long it computes; and what it costs on
//! the simulated clock (docs/cost-model.md, "A launch").
//!
//! A launch first accesses each argument's span as the GPU would (faults,
//! migrations: `gpu_access_locked`), in order. Then it runs: its time is the
//! roofline of its compute and its memory time, where memory time is, per
//! argument, the bytes it touches over the bandwidth of the path to where
//! each piece lies (the device's own VRAM, system memory over its host
//! link, a peer's VRAM over theirs). Faults and copies stall it first and
//! are not overlapped.

use std::os::fd::RawFd;

use super::timeline::{Lane, OnDevice, Ran};
use super::{check_span, Access, Sim, TimeCategory};
use crate::errno::{Errno, Result};
use crate::sim::mem::PAGE;

/// What fraction of streaming bandwidth scattered small accesses reach over
/// a link (PCIe to system memory or to a peer's BAR): 64-byte reads carry
/// 20-30 bytes of TLP header each and are bound by outstanding requests.
/// [U] docs/cost-model.md, "A launch". Local VRAM keeps its bandwidth
/// (its caches and sectors serve scattered access at GDDR/HBM rates).
pub const SCATTERED_LINK_EFFICIENCY: f64 = 0.25;

/// How a kernel goes over an argument's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Front to back, every byte.
    Streaming,
    /// Small accesses spread over the span, touching `permille` thousandths
    /// of its bytes per pass (a graph frontier, a hash table). The pages
    /// fault as the span's (a touch anywhere in a range faults the range).
    Scattered {
        /// Thousandths of the span touched per pass, 1..=1000.
        permille: u16,
    },
}

/// One argument of a launch: the span it points at and how the kernel uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Arg {
    /// First byte.
    pub start: u64,
    /// Bytes.
    pub size: u64,
    /// Read, write or atomic.
    pub access: Access,
    /// How many times the kernel goes over the span beyond its caches (a
    /// GEMM's tile loop, a stencil's neighbours): at least 1.
    pub passes: u32,
    /// How it goes over it.
    pub pattern: Pattern,
}

impl Arg {
    /// One streaming pass over [start, start+size).
    pub fn new(start: u64, size: u64, access: Access) -> Arg {
        Arg { start, size, access, passes: 1, pattern: Pattern::Streaming }
    }

    /// Bytes touched per byte of the span over the whole launch.
    pub fn reuse(&self) -> f64 {
        let share = match self.pattern {
            Pattern::Streaming => 1.0,
            Pattern::Scattered { permille } => permille as f64 / 1000.0,
        };
        self.passes.max(1) as f64 * share
    }

    /// The factor on the streaming time over a link.
    pub fn link_slowdown(&self) -> f64 {
        match self.pattern {
            Pattern::Streaming => 1.0,
            Pattern::Scattered { .. } => 1.0 / SCATTERED_LINK_EFFICIENCY,
        }
    }
}

/// Where one pass over a span found its bytes: in the device's own VRAM,
/// or elsewhere (ns at the path's streaming bandwidth).
#[derive(Clone, Debug, Default)]
pub(super) struct Traffic {
    pub local_bytes: u64,
    pub remote_bytes: u64,
    pub remote_ns: f64,
    /// The shared lanes the remote bytes cross, with the ns each needs of
    /// its bandwidth for one pass.
    pub lanes: Vec<(Lane, f64)>,
}

impl Traffic {
    /// Adds lane work.
    pub fn cross(&mut self, lanes: &[(Lane, f64)]) {
        for &(l, ns) in lanes {
            add_lane(&mut self.lanes, l, ns);
        }
    }
}

fn add_lane(lanes: &mut Vec<(Lane, f64)>, l: Lane, ns: f64) {
    match lanes.iter_mut().find(|(x, _)| *x == l) {
        Some((_, w)) => *w += ns,
        None => lanes.push((l, ns)),
    }
}

/// A launch as it was queued: when its compute engine ran it, and how it
/// ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    /// When it ran.
    pub ran: Ran,
    /// Whether every argument's access succeeded.
    pub result: std::result::Result<(), LaunchError>,
}

/// A launch that stopped at an argument whose access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchError {
    /// The argument's index.
    pub arg: usize,
    /// What the GPU's fault ended in.
    pub errno: Errno,
}

impl Sim {
    /// A GPU access by `tile` of the device behind `fd`, in VM `vm_id`, to
    /// [start, start+size): a launch of one streaming pass and no compute.
    /// Unbound or unsuitable ranges go through the GPU fault path
    /// (docs/kernel-model.md §4); the result is what the GPU would see.
    #[allow(clippy::too_many_arguments)]
    pub fn gpu_access(&self, fd: RawFd, vm_id: u32, tile: u16, start: u64, size: u64, access: Access, value: u64) -> Result<()> {
        self.launch(fd, vm_id, tile, &[Arg::new(start, size, access)], 0, value).map_err(|e| e.errno)
    }

    /// A kernel launch on `tile` of the device behind `fd`, in VM `vm_id`,
    /// that the calling host thread waits for ([`Sim::enqueue`], then
    /// [`Sim::host_wait`] until it completes).
    pub fn launch(&self, fd: RawFd, vm_id: u32, tile: u16, args: &[Arg], compute_ns: u64, value: u64) -> std::result::Result<(), LaunchError> {
        let q = self.enqueue(fd, vm_id, tile, args, compute_ns, value, 0);
        self.host_wait(q.ran.end_ns);
        q.result
    }

    /// Queues a kernel launch on `tile` of the device behind `fd`, in VM
    /// `vm_id`, and returns without waiting (the host goes on): it runs on
    /// the device's compute engine once that is free, the calling host
    /// thread has submitted it, and `after_ns` has passed (what it waits
    /// for: the launches that wrote what it reads). Each argument's span is
    /// accessed in order (a write stores `value`; faults and their copies
    /// stall the launch), then the kernel runs for the roofline of
    /// `compute_ns` and its memory time, its remote bytes sharing the lanes
    /// they cross. A failed access ends the launch there (the GPU context
    /// would be lost), after charging what ran.
    #[allow(clippy::too_many_arguments)]
    pub fn enqueue(&self, fd: RawFd, vm_id: u32, tile: u16, args: &[Arg], compute_ns: u64, value: u64, after_ns: u64) -> Queued {
        let now = self.now_ns();
        let refused = |arg, errno| Queued { ran: Ran { start_ns: now, end_ns: now }, result: Err(LaunchError { arg, errno }) };
        for (i, a) in args.iter().enumerate() {
            if let Err(e) = check_span(a.start, a.size) {
                return refused(i, e);
            }
        }
        let mut g = self.state.lock();
        self.signal_fences(&mut g);
        let Some(dev) = g.files.get(&fd).map(|f| f.device) else {
            return refused(0, Errno::EBADF);
        };
        if let Some(e) = g.gone[dev as usize] {
            return refused(0, e);
        }
        if tile >= self.topo.devices[dev as usize].tiles {
            return refused(0, Errno::EINVAL);
        }
        let start_ns = self.begin_launch(dev, after_ns);
        let on_device = OnDevice::enter(dev);
        let local_bw = self.topo.devices[dev as usize].local_bandwidth;
        let (mut local_ns, mut remote_ns) = (0.0f64, 0.0f64);
        let mut lanes = Vec::new();
        let mut result = Ok(());
        for (i, a) in args.iter().enumerate() {
            let (start, end) = (a.start & !(PAGE - 1), (a.start + a.size).next_multiple_of(PAGE));
            let mut t = Traffic::default();
            let r = self.gpu_access_locked(&mut g, fd, vm_id, dev, tile, start, end, a.access, value, &mut t);
            let reuse = a.reuse();
            local_ns += t.local_bytes as f64 * reuse * 1e9 / local_bw;
            remote_ns += t.remote_ns * reuse * a.link_slowdown();
            for (l, ns) in t.lanes {
                add_lane(&mut lanes, l, ns * reuse * a.link_slowdown());
            }
            self.count(&self.counters.remote_access_bytes, (t.remote_bytes as f64 * reuse) as u64);
            if let Err(e) = r {
                result = Err(LaunchError { arg: i, errno: e });
                break;
            }
        }
        drop(g);
        drop(on_device);
        // The roofline: memory time, and compute beyond it, each piece
        // rounded up, so the launch is never shorter than max(compute,
        // memory); remote bytes that share a lane with other transfers may
        // make it longer.
        let (local, remote) = (local_ns.ceil() as u64, remote_ns.ceil() as u64);
        let compute = compute_ns.saturating_sub(local + remote);
        let spans: Vec<(u64, u64)> = args.iter().map(|a| (a.start & !(PAGE - 1), (a.start + a.size).next_multiple_of(PAGE))).collect();
        let (end_ns, slowed) = self.run_launch(dev, local + remote + compute, &lanes, &spans);
        self.charge(TimeCategory::LocalAccess, local);
        self.charge(TimeCategory::RemoteAccess, remote + slowed);
        self.charge(TimeCategory::Compute, compute);
        Queued { ran: Ran { start_ns, end_ns }, result }
    }
}
