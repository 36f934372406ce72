//! The simulated driver behind the seam: ioctls go to [`Sim`],
//! the clock is the simulated one, and the page table, device identities and
//! link hints are answered the way Linux answers a process, with the same
//! limits and at the same cost (docs/design.md, "What the library may know").
//!
//! [`SimDriver::oracle`] is the one exception, and says so: it answers the
//! page table with the simulator's ground truth, for free, so the benchmark
//! can show how far the honest engine is from perfect information.

use core::ffi::c_void;
use std::os::fd::RawFd;
use std::sync::Arc;

use super::Sim;
use crate::driver::{DeviceId, Driver, Errno, LinkHint, PageTableAccess, PageTableSource, ResidencyRun, Result};

#[derive(Clone)]
/// The simulated driver behind the seam (or, built with [`SimDriver::oracle`], the benchmark's oracle).
pub struct SimDriver {
    sim: Arc<Sim>,
    oracle: bool,
}

impl SimDriver {
    /// The honest simulated driver: what a process would see.
    pub fn new(sim: Arc<Sim>) -> Self {
        SimDriver { sim, oracle: false }
    }

    /// A driver whose page table tells the ground truth at no cost: not
    /// realizable on hardware (the benchmark's `oracle`).
    pub fn oracle(sim: Arc<Sim>) -> Self {
        SimDriver { sim, oracle: true }
    }

    /// The simulator's world handle (tests, measurements, svm_context_get_sim).
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }
}

impl Driver for SimDriver {
    unsafe fn ioctl_raw(&self, fd: RawFd, request: u32, arg: *mut c_void) -> Result<()> {
        // SAFETY: forwarded from the caller's contract; the library passes
        // Rust references, so the simulator may copy without checking.
        crate::sim::uaccess_trusted(|| unsafe { self.sim.ioctl(fd, request, arg) })
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

    /// Nothing: a simulated fd is no file of the process, and closing it
    /// takes the simulator's lock, which a parent thread may have held at
    /// fork (the child's simulator is its own copy of the memory anyway).
    fn close_in_child(&self, _fd: RawFd) {}

    fn now_ns(&self) -> u64 {
        self.sim.now_ns()
    }

    fn page_table(&self) -> PageTableAccess {
        if self.oracle {
            return PageTableAccess { source: PageTableSource::Oracle, privileged: true };
        }
        self.sim.page_table()
    }

    fn residency(&self, start: u64, end: u64, out: &mut [ResidencyRun]) -> Result<(usize, u64)> {
        self.sim.read_page_table(start, end, out, self.oracle)
    }

    /// madvise(MADV_POPULATE_READ) in the simulated process.
    fn populate(&self, start: u64, end: u64) -> Result<()> {
        self.sim.populate(start, end.checked_sub(start).ok_or(Errno::EINVAL)?)
    }

    /// What fstat + `/sys/dev/char` give for one of the simulator's fds.
    fn device_id(&self, fd: RawFd) -> Option<DeviceId> {
        self.sim.device_of_fd(fd).map(|d| self.sim.device_id(d))
    }

    fn link_hint(&self, a: DeviceId, b: DeviceId) -> Option<LinkHint> {
        Some(self.sim.link_hint(self.sim.device_of_id(a)?, self.sim.device_of_id(b)?))
    }

    /// What the simulated process's `/proc/self/maps` says.
    fn cpu_mapping(&self, addr: u64) -> Result<(u64, u64)> {
        self.sim.cpu_mapping(addr)
    }

    fn kernel_release(&self) -> Option<String> {
        Some(self.sim.uname_release().to_string())
    }
}
