//! The one seam between the library and a driver: issue an ioctl on a device
//! fd and get `Ok(())` or the errno. Two implementations sit behind it:
//! [`kernel::KernelDriver`] (libc `ioctl` on an Xe render node) and the
//! simulated Xe driver, which decodes the very same structs and lives beside
//! this layer (`crate::sim::driver`): nothing here names it.
//!
//! Everything above this seam (queries, policy) is written once against
//! [`Driver`] and never asks which implementation it has. Besides ioctls the
//! seam carries only what a Linux process can know (design.md, "What the
//! library may know"): its own page table ([`residency`]), the PCI identity
//! of the device behind an fd, and what sysfs says of links.

pub mod fork;
pub mod kernel;
pub mod pagemap;
pub mod query;
pub mod residency;
pub mod xe;

use core::ffi::c_void;
use core::mem::size_of;
use std::os::fd::RawFd;

pub use crate::errno::{Errno, Result};
use crate::uapi;
pub use residency::{DeviceId, PageTableAccess, PageTableSource, Residency, ResidencyRun, VramRegion};

/// What the platform says of the link between two devices (sysfs PCI
/// topology, a topology file): a hint, which the kernel's ENOLINK overrides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinkHint {
    /// Neither device can use the other's VRAM.
    None,
    /// An interconnect: `fabric` (Xe Link) or PCIe P2P.
    Interconnect { fabric: bool, atomics: bool, bandwidth: f64 },
}

/// A driver: the kernel, or the simulated one.
pub trait Driver: Send + Sync {
    /// Issue `request` on `fd` with `arg`.
    ///
    /// # Safety
    /// `arg` must point to a live, writable value of the size `request` encodes,
    /// and any user pointers inside it must be valid as the kernel requires.
    unsafe fn ioctl_raw(&self, fd: RawFd, request: u32, arg: *mut c_void) -> Result<()>;

    /// Opens the device of this index (the index-th Xe render node by minor
    /// number on the kernel; the simulated device of that index).
    fn open_index(&self, index: u32) -> Result<RawFd> {
        let nodes = kernel::discover(&Default::default()).map_err(|_| Errno::ENODEV)?;
        let node = nodes.get(index as usize).ok_or(Errno::ENODEV)?;
        self.open_path(&node.path)
    }

    /// Opens a device node by path (EINVAL where the driver has no nodes).
    fn open_path(&self, path: &std::path::Path) -> Result<RawFd> {
        use std::os::fd::IntoRawFd;
        Ok(kernel::open_render_node(path)?.into_raw_fd())
    }

    /// Closes an fd this driver opened.
    fn close(&self, fd: RawFd) {
        // SAFETY: the caller owns the fd and closes it once.
        unsafe { libc::close(fd) };
    }

    /// Nanoseconds on the clock this driver's world runs on: CLOCK_MONOTONIC
    /// for the kernel, the simulated clock for the simulated driver.
    fn now_ns(&self) -> u64 {
        monotonic_ns()
    }

    /// How this process's page table can be read (observation.md §3).
    fn page_table(&self) -> PageTableAccess;

    /// The page table over [start, end) (page aligned): runs of equal
    /// residency into `out`, merged; returns how many were filled and the
    /// address up to which they describe the span. One syscall's worth of
    /// work per call; its cost is real (observation.md §4).
    fn residency(&self, start: u64, end: u64, out: &mut [ResidencyRun]) -> Result<(usize, u64)>;

    /// The PCI device behind an fd this process holds (fstat + sysfs).
    fn device_id(&self, fd: RawFd) -> Option<DeviceId>;

    /// What the platform says of the link between two devices (None: it
    /// does not say).
    fn link_hint(&self, a: DeviceId, b: DeviceId) -> Option<LinkHint>;
}

/// Typed, safe entry to [`Driver::ioctl_raw`] for structs without user pointers
/// (or whose pointers the caller keeps alive for the duration of the call).
pub fn ioctl<D: Driver + ?Sized, T>(drv: &D, fd: RawFd, request: u32, arg: &mut T) -> Result<()> {
    debug_assert!(uapi::request_size_matches(request, size_of::<T>()), "request/struct size mismatch");
    // SAFETY: `arg` is a live &mut of exactly the size the request encodes.
    unsafe { drv.ioctl_raw(fd, request, arg as *mut T as *mut c_void) }
}

pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
