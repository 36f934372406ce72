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
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Traffic {
    pub local_bytes: u64,
    pub remote_bytes: u64,
    pub remote_ns: f64,
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

    /// A kernel launch on `tile` of the device behind `fd`, in VM `vm_id`:
    /// each argument's span is accessed in order (a write stores `value`),
    /// then the kernel runs for the roofline of `compute_ns` and its memory
    /// time. A failed access ends the launch there (the GPU context would
    /// be lost), after charging what ran.
    pub fn launch(&self, fd: RawFd, vm_id: u32, tile: u16, args: &[Arg], compute_ns: u64, value: u64) -> std::result::Result<(), LaunchError> {
        let fail = |arg, errno| LaunchError { arg, errno };
        for (i, a) in args.iter().enumerate() {
            check_span(a.start, a.size).map_err(|e| fail(i, e))?;
        }
        let mut g = self.state.lock();
        self.signal_fences(&mut g);
        let dev = g.files.get(&fd).ok_or(fail(0, Errno::EBADF))?.device;
        if let Some(e) = g.gone[dev as usize] {
            return Err(fail(0, e));
        }
        if tile >= self.topo.devices[dev as usize].tiles {
            return Err(fail(0, Errno::EINVAL));
        }
        let local_bw = self.topo.devices[dev as usize].local_bandwidth;
        let (mut local_ns, mut remote_ns) = (0.0f64, 0.0f64);
        let mut result = Ok(());
        for (i, a) in args.iter().enumerate() {
            let (start, end) = (a.start & !(PAGE - 1), (a.start + a.size).next_multiple_of(PAGE));
            let mut t = Traffic::default();
            let r = self.gpu_access_locked(&mut g, fd, vm_id, dev, tile, start, end, a.access, value, &mut t);
            let reuse = a.reuse();
            local_ns += t.local_bytes as f64 * reuse * 1e9 / local_bw;
            remote_ns += t.remote_ns * reuse * a.link_slowdown();
            self.count(&self.counters.remote_access_bytes, (t.remote_bytes as f64 * reuse) as u64);
            if let Err(e) = r {
                result = Err(fail(i, e));
                break;
            }
        }
        drop(g);
        // The roofline: memory time, and compute beyond it. Each piece is
        // rounded up, so the clock is never below max(compute, memory).
        let (local, remote) = (local_ns.ceil() as u64, remote_ns.ceil() as u64);
        self.advance(local, TimeCategory::LocalAccess);
        self.advance(remote, TimeCategory::RemoteAccess);
        self.advance(compute_ns.saturating_sub(local + remote), TimeCategory::Compute);
        result
    }
}
