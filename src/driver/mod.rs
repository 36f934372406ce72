//! The one seam between the library and a driver: issue an ioctl on a device
//! fd and get `Ok(())` or the errno. Two implementations sit behind it:
//! [`kernel::KernelDriver`] (libc `ioctl` on an Xe render node) and the
//! simulated Xe driver (`crate::sim`), which decodes the very same structs.
//!
//! Everything above this seam (queries, policy) is written once against
//! [`Driver`] and never asks which implementation it has.

pub mod kernel;
pub mod query;
pub mod sim;
pub mod xe;

use core::ffi::c_void;
use core::mem::size_of;
use std::os::fd::RawFd;

pub use crate::errno::{Errno, Result};
use crate::uapi;

/// Where the pages of a span of the process address space live, as far as a
/// driver can tell (ground truth on the simulated driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Never populated: no page exists yet.
    Unpopulated,
    /// System memory.
    System,
    /// VRAM region `instance` of the device whose (any) fd is `device_fd`'s device;
    /// identified by the driver's global device index.
    Vram { device: u32, instance: u16 },
    /// The span's pages are not all in one place.
    Mixed,
}

/// What a driver knows of the link between two of its devices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinkHint {
    /// Neither device can use the other's VRAM (ENOLINK).
    None,
    /// An interconnect: `fabric` (Xe Link) or PCIe P2P.
    Interconnect { fabric: bool, atomics: bool, bandwidth: f64 },
}

/// What a driver lets the library observe beyond the uAPI. The kernel driver
/// observes nothing (`None` everywhere); the simulated driver sees all.
pub trait Observer: Send + Sync {
    /// Placement of `[start, start + len)`, with the pages merged into one answer.
    fn placement(&self, start: u64, len: u64) -> Placement;
    /// A counter that changes whenever any page changes place; equal values
    /// mean nothing moved in between.
    fn placement_epoch(&self) -> u64;
    /// The driver's device index behind an fd it opened.
    fn device_of_fd(&self, fd: RawFd) -> Option<u32>;
    /// The link between the devices behind two fds, if the driver knows it.
    fn link(&self, a: RawFd, b: RawFd) -> Option<LinkHint>;
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

    /// What the driver lets the library observe, if anything.
    fn observer(&self) -> Option<&dyn Observer> {
        None
    }
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
