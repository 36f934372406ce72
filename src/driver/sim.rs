//! The simulated driver behind the seam: ioctls go to [`crate::sim::Sim`],
//! the clock is the simulated one, and placement is observable (ground truth).

use core::ffi::c_void;
use std::os::fd::RawFd;
use std::sync::Arc;

use super::{Driver, Errno, LinkHint, Observer, Placement, Result};
use crate::sim::Sim;

#[derive(Clone)]
pub struct SimDriver {
    sim: Arc<Sim>,
}

impl SimDriver {
    pub fn new(sim: Arc<Sim>) -> Self {
        SimDriver { sim }
    }
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }
}

impl Driver for SimDriver {
    unsafe fn ioctl_raw(&self, fd: RawFd, request: u32, arg: *mut c_void) -> Result<()> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.sim.ioctl(fd, request, arg) }
    }

    fn open_index(&self, index: u32) -> Result<RawFd> {
        self.sim.open_device(index)
    }

    /// The simulated driver has no device nodes.
    fn open_path(&self, _path: &std::path::Path) -> Result<RawFd> {
        Err(Errno::EINVAL)
    }

    fn close(&self, fd: RawFd) {
        let _ = self.sim.close_device(fd);
    }

    fn now_ns(&self) -> u64 {
        self.sim.now_ns()
    }

    fn observer(&self) -> Option<&dyn Observer> {
        Some(self)
    }
}

impl Observer for SimDriver {
    fn placement(&self, start: u64, len: u64) -> Placement {
        self.sim.placement(start, len)
    }
    fn placement_epoch(&self) -> u64 {
        self.sim.placement_epoch()
    }
    fn device_of_fd(&self, fd: RawFd) -> Option<u32> {
        self.sim.device_of_fd(fd)
    }

    fn link(&self, a: RawFd, b: RawFd) -> Option<LinkHint> {
        let (a, b) = (self.sim.device_of_fd(a)?, self.sim.device_of_fd(b)?);
        if self.sim.owner_group(a) != self.sim.owner_group(b) {
            return Some(LinkHint::None);
        }
        self.sim.topology().link(a, b).map(|l| LinkHint::Interconnect {
            fabric: l.kind == crate::sim::LinkKind::Fabric,
            atomics: l.atomics,
            bandwidth: l.bandwidth,
        })
    }
}
