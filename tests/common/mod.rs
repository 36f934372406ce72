//! Shared rig for tests against the simulated driver through the raw uAPI.
#![allow(dead_code)]

use std::os::fd::RawFd;
use std::sync::Arc;

use xesvm::sim::driver::SimDriver;
use xesvm::driver::{ioctl, xe, Driver};
use xesvm::errno::{Errno, Result};
use xesvm::sim::{Sim, Topology};
use xesvm::uapi::*;

pub const MIB: u64 = 1 << 20;
/// A 2 MiB-aligned buffer address in the simulated process.
pub const BUF: u64 = 0x10_0000_0000;

pub struct Rig {
    pub sim: Arc<Sim>,
    pub drv: SimDriver,
    pub fds: Vec<RawFd>,
    pub vms: Vec<u32>,
}

impl Rig {
    /// Opens every device of a topology, creates an LR|FAULT VM on each and
    /// binds the CPU-address mirror over the whole user VA space.
    pub fn new(topo: Topology) -> Rig {
        let sim = Sim::new(topo).unwrap();
        let drv = SimDriver::new(sim.clone());
        let mut fds = Vec::new();
        let mut vms = Vec::new();
        for d in 0..sim.topology().devices.len() as u32 {
            let fd = sim.open_device(d).unwrap();
            let vm = xe::vm_create(&drv, fd, DRM_XE_VM_CREATE_FLAG_LR_MODE | DRM_XE_VM_CREATE_FLAG_FAULT_MODE).unwrap();
            let pat = xesvm::driver::query::query_device(&drv, fd).unwrap().mirror_pat_index();
            xe::bind_cpu_addr_mirror_pat(&drv, fd, vm, 0, 1 << 47, false, pat).unwrap();
            fds.push(fd);
            vms.push(vm);
        }
        Rig { sim, drv, fds, vms }
    }

    pub fn preset(name: &str) -> Rig {
        Rig::new(Topology::preset(name).unwrap())
    }

    pub fn ioctl<T>(&self, dev: usize, request: u32, arg: &mut T) -> Result<()> {
        ioctl(&self.drv, self.fds[dev], request, arg)
    }

    pub fn gpu(&self, dev: usize, start: u64, size: u64, access: xesvm::sim::Access) -> Result<()> {
        self.sim.gpu_access(self.fds[dev], self.vms[dev], 0, start, size, access, 0x1234 + start)
    }

    pub fn prefetch(&self, dev: usize, start: u64, size: u64, region: u32) -> Result<()> {
        xe::prefetch(&self.drv, self.fds[dev], self.vms[dev], start, size, region)
    }

    pub fn pref(&self, dev: usize, start: u64, size: u64, loc: xe::PreferredLoc) -> Result<()> {
        xe::madvise_preferred_loc(&self.drv, self.fds[dev], self.vms[dev], start, size, loc)
    }

    /// Preferred location "device `target`'s tile-0 VRAM" from `dev`'s VM.
    pub fn pref_device(&self, dev: usize, start: u64, size: u64, target: usize) -> Result<()> {
        self.pref(dev, start, size, xe::PreferredLoc::Device { devmem_fd: self.fds[target], region_instance: 1 })
    }

    pub fn bytes_in(&self, start: u64, size: u64, dev: u32, instance: u16) -> u64 {
        self.sim.bytes_in(start, size, dev, instance).unwrap()
    }

    pub fn in_vram(&self, start: u64, size: u64, dev: u32) -> bool {
        self.bytes_in(start, size, dev, 1) == size
    }

    pub fn in_system(&self, start: u64, size: u64) -> bool {
        self.bytes_in(start, size, 0, 0) == size
    }

    pub fn now(&self) -> u64 {
        self.drv.now_ns()
    }
}

pub fn errno<T>(r: Result<T>) -> Option<Errno> {
    r.err()
}
