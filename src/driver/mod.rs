//! The one seam between the library and a driver: issue an ioctl on a device
//! fd and get `Ok(())` or the errno. Two implementations sit behind it:
//! [`kernel::KernelDriver`] (libc `ioctl` on an Xe render node) and the
//! simulated Xe driver, which decodes the very same structs and lives beside
//! this layer, implementing this trait; nothing here knows it.
//!
//! Everything above this seam (queries, policy) is written once against
//! [`Driver`] and never asks which implementation it has. Besides ioctls the
//! seam carries only what a Linux process can know (docs/design.md, "What the
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
    Interconnect {
        /// Xe Link rather than PCIe P2P.
        fabric: bool,
        /// Whether it carries GPU atomics.
        atomics: bool,
        /// Bytes/s per direction.
        bandwidth: f64,
    },
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

    /// Closes a forked child's copy of an fd this driver opened, taking no
    /// lock (a parent thread may have held any at fork). For the kernel's
    /// render nodes, close(2).
    fn close_in_child(&self, fd: RawFd) {
        self.close(fd);
    }

    /// Nanoseconds on the clock this driver's world runs on: CLOCK_MONOTONIC
    /// for the kernel, the simulated clock for the simulated driver.
    fn now_ns(&self) -> u64 {
        monotonic_ns()
    }

    /// How this process's page table can be read (docs/observation.md §3).
    fn page_table(&self) -> PageTableAccess;

    /// The page table over [start, end) (page aligned): runs of equal
    /// residency into `out`, merged; returns how many were filled and the
    /// address up to which they describe the span. One syscall's worth of
    /// work per call; its cost is real (docs/observation.md §4).
    fn residency(&self, start: u64, end: u64, out: &mut [ResidencyRun]) -> Result<(usize, u64)>;

    /// Faults the pages of [start, end) (page aligned) of this process's
    /// own mappings in as a CPU read would, without reading:
    /// madvise(MADV_POPULATE_READ), Linux 5.14. A never-populated page of
    /// an anonymous mapping gets the shared zero page (nothing allocated;
    /// it reads the same, and a write still faults a page of its own); a
    /// device page is migrated back, so callers name only pages they saw
    /// unpopulated. EINVAL before 5.14; EOPNOTSUPP from a driver that does
    /// not forward it (a wrapper must, or nothing is populated).
    fn populate(&self, _start: u64, _end: u64) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }

    /// The PCI device behind an fd this process holds (fstat + sysfs).
    fn device_id(&self, fd: RawFd) -> Option<DeviceId>;

    /// What the platform says of the link between two devices (None: it
    /// does not say).
    fn link_hint(&self, a: DeviceId, b: DeviceId) -> Option<LinkHint>;

    /// The CPU mapping (VMA) of this process that holds `addr`, as
    /// `/proc/self/maps` lists it: `(start, end)`, page aligned. What a
    /// runtime without an allocation table has to find a pointer's extent
    /// (adjacent mappings of the same kind may have been merged into one, as
    /// Linux merges them). EFAULT where nothing is mapped at `addr`; the
    /// simulated driver answers its simulated process's mappings.
    fn cpu_mapping(&self, addr: u64) -> Result<(u64, u64)> {
        kernel::cpu_mapping(addr)
    }

    /// The running kernel's release (`uname -r`), which a process can read:
    /// the simulated driver answers its simulated kernel's.
    fn kernel_release(&self) -> Option<String> {
        uname_release()
    }
}

/// `uname(2)`'s release field.
pub fn uname_release() -> Option<String> {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { core::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates the field.
    let r = unsafe { core::ffi::CStr::from_ptr(u.release.as_ptr()) };
    Some(r.to_string_lossy().into_owned())
}

/// Whether a kernel release resets madvise attributes after munmap on a
/// mirror bound without MADVISE_AUTORESET: only 6.18-rc1 and -rc2 (the
/// flag gated it from 6.18-rc3 on, "drm/xe/uapi: Hide the madvise
/// autoreset behind a VM_BIND flag"). None where the release string does
/// not say (a distribution's own numbering).
pub fn resets_without_autoreset(release: &str) -> Option<bool> {
    let leading = |t: &str| t.chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse::<u32>().ok();
    let mut nums = release.split('.');
    let (major, minor) = (leading(nums.next()?)?, leading(nums.next()?)?);
    if (major, minor) != (6, 18) {
        return Some(false);
    }
    let rc = release.split("-rc").nth(1).and_then(leading);
    Some(matches!(rc, Some(1 | 2)))
}

/// How long one ioctl interrupted by a signal (EINTR) or told to try again
/// (EAGAIN) is restarted, from its first interruption, before the errno goes
/// back to the caller. A deadline, not a count: a profiler's signals can
/// interrupt a long wait many times and each restart makes progress, while a
/// storm that lets nothing finish still returns (libdrm's `drmIoctl` and
/// Intel's compute runtime restart without a bound). Real time
/// (CLOCK_MONOTONIC, a vDSO read, taken only once a call was interrupted).
pub const RESTART_DEADLINE_NS: u64 = 250_000_000;

/// The count the header's `SVM_MAX_RESTARTS` once bounded restarts by
/// (0.1.0); kept for source compatibility. Restarts now end at
/// [`RESTART_DEADLINE_NS`].
pub const MAX_RESTARTS: u32 = 8;

thread_local! {
    /// Restarts [`ioctl`] made on this thread since [`take_restarts`].
    static RESTARTS: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    /// Ioctls [`ioctl`] issued on this thread (wrapping), restarts
    /// included ([`issued`]).
    static ISSUED: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

/// The restarts [`ioctl`] made on this thread since the last call (the
/// policy counts them as retries of the placement that issued them).
pub fn take_restarts() -> u32 {
    RESTARTS.with(|r| r.replace(0))
}

/// The ioctls [`ioctl`] has issued on this thread, each restart one more
/// (wrapping): the difference between two readings is what a call issued
/// (a wrapper may issue two: a bind and its fence wait, or none, where its
/// first fails), whatever a call between them read.
pub fn issued() -> u32 {
    ISSUED.with(|r| r.get())
}

/// Typed, safe entry to [`Driver::ioctl_raw`] for structs without user pointers
/// (or whose pointers the caller keeps alive for the duration of the call),
/// restarted on EINTR and EAGAIN until [`RESTART_DEADLINE_NS`] after the
/// first interruption.
pub fn ioctl<D: Driver + ?Sized, T>(drv: &D, fd: RawFd, request: u32, arg: &mut T) -> Result<()> {
    debug_assert!(uapi::request_size_matches(request, size_of::<T>()), "request/struct size mismatch");
    let mut deadline = 0;
    loop {
        ISSUED.with(|n| n.set(n.get().wrapping_add(1)));
        // SAFETY: `arg` is a live &mut of exactly the size the request encodes.
        let r = unsafe { drv.ioctl_raw(fd, request, arg as *mut T as *mut c_void) };
        // The trace level's promise (include/xesvm.h): each ioctl.
        crate::log!(crate::log::Level::Trace, "{} on fd {fd}: {}", uapi::request_name(request), r.map_or_else(|e| e.short().to_string(), |()| "0".into()));
        match r {
            Err(e @ (Errno::EINTR | Errno::EAGAIN)) => {
                let now = monotonic_ns();
                if deadline == 0 {
                    deadline = now + RESTART_DEADLINE_NS;
                } else if now >= deadline {
                    return Err(e);
                }
                RESTARTS.with(|r| r.set(r.get() + 1));
            }
            r => return r,
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A driver whose ioctls fail with `errno` the first `fail` times.
    struct Interrupted {
        calls: AtomicU32,
        fail: u32,
        errno: Errno,
    }

    impl Driver for Interrupted {
        unsafe fn ioctl_raw(&self, _: RawFd, _: u32, _: *mut c_void) -> Result<()> {
            let n = self.calls.fetch_add(1, Ordering::Relaxed);
            if n < self.fail {
                Err(self.errno)
            } else {
                Ok(())
            }
        }
        fn page_table(&self) -> PageTableAccess {
            PageTableAccess { source: PageTableSource::Unavailable, privileged: false }
        }
        fn residency(&self, _: u64, _: u64, _: &mut [ResidencyRun]) -> Result<(usize, u64)> {
            Err(Errno::EOPNOTSUPP)
        }
        fn device_id(&self, _: RawFd) -> Option<DeviceId> {
            None
        }
        fn link_hint(&self, _: DeviceId, _: DeviceId) -> Option<LinkHint> {
            None
        }
    }

    fn query(d: &Interrupted) -> Result<()> {
        let mut q = uapi::drm_xe_device_query::default();
        ioctl(d, 3, uapi::DRM_IOCTL_XE_DEVICE_QUERY, &mut q)
    }

    #[test]
    fn only_6_18_rc1_and_rc2_reset_without_the_flag() {
        for (r, want) in [("6.18.0-rc1", Some(true)), ("6.18.0-rc2-xe", Some(true)), ("6.18.0-rc3", Some(false)), ("6.18.0", Some(false)), ("6.18.7-1-default", Some(false)), ("7.0.0", Some(false)), ("6.12.48+deb13-amd64", Some(false)), ("weird", None)] {
            assert_eq!(resets_without_autoreset(r), want, "{r}");
        }
    }

    /// `ioctl` is the one layer that restarts EINTR and EAGAIN, as often as
    /// a signal comes (many more than the 8 of 0.1.0), and it stops at its
    /// deadline: a signal storm returns to the caller.
    #[test]
    fn interrupted_ioctls_restart_until_a_deadline() {
        take_restarts();
        let d = Interrupted { calls: AtomicU32::new(0), fail: 50, errno: Errno::EINTR };
        assert_eq!(query(&d), Ok(()));
        assert_eq!((d.calls.load(Ordering::Relaxed), take_restarts()), (51, 50));
        let storm = Interrupted { calls: AtomicU32::new(0), fail: u32::MAX, errno: Errno::EAGAIN };
        let t0 = monotonic_ns();
        assert_eq!(query(&storm), Err(Errno::EAGAIN));
        let took = monotonic_ns() - t0;
        assert!((RESTART_DEADLINE_NS..RESTART_DEADLINE_NS * 20).contains(&took), "ended after {took} ns");
        take_restarts();
        let other = Interrupted { calls: AtomicU32::new(0), fail: 1, errno: Errno::EBUSY };
        assert_eq!(query(&other), Err(Errno::EBUSY), "other errnos are not restarted");
        assert_eq!(other.calls.load(Ordering::Relaxed), 1);
    }
}
