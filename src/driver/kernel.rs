//! The kernel driver: libc `ioctl` on an Xe render node (one call; the
//! bounded restart is `driver::ioctl`'s), and render-node discovery from
//! sysfs (roots overridable so tests can build a fake tree).

use core::ffi::c_void;
use std::ffi::CString;
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::residency::{DeviceId, PageTableAccess, ResidencyRun};
use super::{Driver, Errno, LinkHint, Result};

/// The real Xe kernel driver behind `/dev/dri/renderD*`.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelDriver;

impl Driver for KernelDriver {
    /// One system call: EINTR and EAGAIN go back to [`super::ioctl`], the
    /// one layer that restarts them (bounded).
    unsafe fn ioctl_raw(&self, fd: RawFd, request: u32, arg: *mut c_void) -> Result<()> {
        // `as _`: glibc takes c_ulong, musl c_int (docs/xe-uapi.md §2, Rust note).
        // SAFETY: forwarded from the caller's contract.
        let r = unsafe { libc::ioctl(fd, request as _, arg) };
        if r != -1 {
            return Ok(());
        }
        Err(Errno::last())
    }

    fn page_table(&self) -> PageTableAccess {
        super::pagemap::process_access()
    }

    fn residency(&self, start: u64, end: u64, out: &mut [ResidencyRun]) -> Result<(usize, u64)> {
        super::pagemap::process_page_table().ok_or(Errno::EOPNOTSUPP)?.residency(start, end, out)
    }

    fn populate(&self, start: u64, end: u64) -> Result<()> {
        populate(start, end)
    }

    fn device_id(&self, fd: RawFd) -> Option<DeviceId> {
        device_id_of_fd(fd, &Roots::default())
    }

    fn link_hint(&self, a: DeviceId, b: DeviceId) -> Option<LinkHint> {
        pci_link_hint(a, b, &Roots::default())
    }
}

/// madvise(MADV_POPULATE_READ) over [start, end) of this process
/// ([`Driver::populate`]).
pub fn populate(start: u64, end: u64) -> Result<()> {
    if start % 4096 != 0 || end < start {
        return Err(Errno::EINVAL);
    }
    if end == start {
        return Ok(()); // as madvise answers a zero length
    }
    // SAFETY: madvise takes an address range, not memory this code reads or
    // writes; MADV_POPULATE_READ only faults in pages of the process's own
    // mappings (ENOMEM where the span is not mapped) and changes no
    // content: a never-populated anonymous page reads as zeros either way.
    let r = unsafe { libc::madvise(start as *mut c_void, (end - start) as usize, libc::MADV_POPULATE_READ) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// The VMA of this process holding `addr`, from `/proc/self/maps`: read in
/// fixed chunks and parsed as it streams, with no allocation (a runtime may
/// ask on every launch). EFAULT where no mapping holds `addr`; the open's or
/// read's errno where the file cannot be read.
pub fn cpu_mapping(addr: u64) -> Result<(u64, u64)> {
    let f = fs::File::open("/proc/self/maps").map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno))?;
    find_mapping(f, addr)?.ok_or(Errno::EFAULT)
}

/// The `start-end` of the first line of a maps file whose span holds
/// `addr`. Only each line's first field is parsed; the rest (perms, path of
/// any length) is skipped byte by byte, so a line may straddle reads.
pub fn find_mapping(mut r: impl std::io::Read, addr: u64) -> Result<Option<(u64, u64)>> {
    // 0: start, 1: end, 2: rest of the line.
    let (mut field, mut start, mut end, mut digits) = (0u8, 0u64, 0u64, 0u32);
    let mut buf = [0u8; 4096];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.raw_os_error().map_or(Errno::EIO, Errno)),
        };
        for &b in &buf[..n] {
            match (field, b) {
                (_, b'\n') => (field, start, end, digits) = (0, 0, 0, 0),
                (0, b'-') => (field, digits) = (1, 0),
                (1, b' ') => {
                    if digits > 0 && start <= addr && addr < end {
                        return Ok(Some((start, end)));
                    }
                    field = 2;
                }
                (0 | 1, _) => {
                    let Some(d) = (b as char).to_digit(16) else {
                        field = 2; // not a maps line: skip it
                        continue;
                    };
                    digits += 1;
                    let v = if field == 0 { &mut start } else { &mut end };
                    *v = v.wrapping_shl(4) | d as u64;
                }
                _ => {}
            }
        }
    }
}

/// The PCI device behind a DRM fd: `fstat`'s `st_rdev`, then
/// `/sys/dev/char/MAJ:MIN/device` (docs/observation.md §5). None for anything
/// that is not a character device with a PCI parent.
pub fn device_id_of_fd(fd: RawFd, roots: &Roots) -> Option<DeviceId> {
    // SAFETY: plain syscall with a valid out-pointer; a bad fd gives an error.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return None;
    }
    let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
    let dev = fs::canonicalize(roots.sysfs.join(format!("dev/char/{major}:{minor}/device"))).ok()?;
    DeviceId::parse(&dev.file_name()?.to_string_lossy())
}

/// The PCI path of a device from the root complex down: the device itself
/// last (`/sys/bus/pci/devices/ADDR` links into `/sys/devices/pci.../...`).
fn pci_path(d: DeviceId, roots: &Roots) -> Option<Vec<DeviceId>> {
    let path = fs::canonicalize(roots.sysfs.join("bus/pci/devices").join(d.to_string())).ok()?;
    let v: Vec<DeviceId> = path.components().filter_map(|c| DeviceId::parse(&c.as_os_str().to_string_lossy())).collect();
    (v.last() == Some(&d)).then_some(v)
}

/// What sysfs PCI topology says of two devices: below one PCIe switch
/// (a common bridge other than the root port each hangs off) they can do
/// P2P, which the kernel counts as a fast interconnect
/// (`pci_p2pdma_distance`, docs/kernel-model.md §1). Anything else is unknown
/// (host bridges may allow P2P too): the kernel's ENOLINK will tell.
pub fn pci_link_hint(a: DeviceId, b: DeviceId, roots: &Roots) -> Option<LinkHint> {
    let (pa, pb) = (pci_path(a, roots)?, pci_path(b, roots)?);
    let common = pa.iter().zip(&pb).take_while(|(x, y)| x == y).count();
    // The first component is the root port; sharing more means a shared switch.
    (common >= 2).then_some(LinkHint::Interconnect { fabric: false, atomics: false, bandwidth: 20e9 })
}

/// Opens a render node read-write and close-on-exec.
pub fn open_render_node(path: &Path) -> Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: we own the fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A render node whose kernel driver is `xe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderNode {
    /// `renderD128` and so on.
    pub name: String,
    /// The device node, under the dev root.
    pub path: PathBuf,
    /// The DRM minor number parsed from the name.
    pub minor: u32,
    /// The PCI device behind it (the `device` link's target), where sysfs
    /// names one.
    pub pci: Option<super::residency::DeviceId>,
}

/// Where discovery looks: `/sys` and `/dev` unless a test says otherwise.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The sysfs root (`/sys`).
    pub sysfs: PathBuf,
    /// The device-node root (`/dev`).
    pub dev: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots { sysfs: "/sys".into(), dev: "/dev".into() }
    }
}

/// Lists `/dev/dri/renderD*` nodes whose `/sys/class/drm/renderD*/device/driver`
/// resolves to a directory named `xe`, ordered by minor number. A missing
/// `class/drm` directory means no DRM devices: an empty list, not an error.
pub fn discover(roots: &Roots) -> std::io::Result<Vec<RenderNode>> {
    let class = roots.sysfs.join("class/drm");
    let entries = match fs::read_dir(&class) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut nodes = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(minor) = name.strip_prefix("renderD").and_then(|m| m.parse::<u32>().ok()) else {
            continue;
        };
        let driver = match fs::read_link(entry.path().join("device/driver")) {
            Ok(target) => target,
            Err(_) => continue,
        };
        if driver.file_name().map(|d| d == "xe") != Some(true) {
            continue;
        }
        let pci = fs::read_link(entry.path().join("device"))
            .ok()
            .and_then(|t| t.file_name().and_then(|n| n.to_str()).and_then(super::residency::DeviceId::parse));
        nodes.push(RenderNode { path: roots.dev.join("dri").join(&name), name, minor, pci });
    }
    // PCI bus order, as Intel's compute runtime orders its devices (nodes
    // without a PCI address last, by minor): minors follow probe order,
    // which need not be the bus order.
    nodes.sort_by_key(|n| (n.pci.is_none(), n.pci.map_or(0, |p| p.0), n.minor));
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> PathBuf {
        let d = std::env::temp_dir().join(format!("xesvm-sysfs-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn discovers_only_xe_render_nodes_in_pci_order() {
        let root = tree();
        let class = root.join("sys/class/drm");
        // renderD128 probed first, but on the higher bus: PCI order wins.
        for (node, drv, pci) in [("renderD129", "xe", "0000:03:00.0"), ("renderD128", "xe", "0000:83:00.0"), ("renderD130", "i915", "0000:04:00.0"), ("card0", "xe", "0000:05:00.0")] {
            let dev = root.join("sys/devices/pci0000:00").join(pci);
            fs::create_dir_all(&dev).unwrap();
            fs::create_dir_all(root.join("sys/bus/pci/drivers").join(drv)).unwrap();
            symlink(root.join("sys/bus/pci/drivers").join(drv), dev.join("driver")).unwrap();
            fs::create_dir_all(class.join(node)).unwrap();
            symlink(&dev, class.join(node).join("device")).unwrap();
        }
        // A render node without a bound driver is skipped, not an error.
        fs::create_dir_all(class.join("renderD131/device")).unwrap();
        let roots = Roots { sysfs: root.join("sys"), dev: root.join("dev") };
        let nodes = discover(&roots).unwrap();
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["renderD129", "renderD128"]);
        assert_eq!(nodes[1].path, root.join("dev/dri/renderD128"));
        assert_eq!(nodes[0].minor, 129);
        assert_eq!(nodes[0].pci.map(|p| p.to_string()).as_deref(), Some("0000:03:00.0"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn no_drm_class_means_no_devices() {
        let roots = Roots { sysfs: tree().join("absent"), dev: "/dev".into() };
        assert!(discover(&roots).unwrap().is_empty());
    }

    #[test]
    fn maps_lines_are_found_across_reads_without_their_paths() {
        /// Hands out a few bytes per read, so lines straddle reads.
        struct Trickle<'a>(&'a [u8]);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(b.len()).min(7);
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let long = "x".repeat(5000);
        let text = format!(
            "55d0a000-55d0b000 r--p 00000000 08:01 42 /usr/bin/{long}\n7f0000000000-7f0000200000 rw-p 00000000 00:00 0 \nffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n"
        );
        let find = |a| find_mapping(Trickle(text.as_bytes()), a).unwrap();
        assert_eq!(find(0x55d0a123), Some((0x55d0a000, 0x55d0b000)));
        assert_eq!(find(0x7f00001fffff), Some((0x7f0000000000, 0x7f0000200000)));
        assert_eq!(find(0xffffffffff600000), Some((0xffffffffff600000, 0xffffffffff601000)));
        assert_eq!(find(0x55d0b000), None, "the end is exclusive");
        assert_eq!(find(0x1000), None);
    }

    #[test]
    fn this_process_finds_its_own_mappings() {
        let v = vec![7u8; 1 << 20];
        let a = v.as_ptr() as u64;
        let (s, e) = cpu_mapping(a).unwrap();
        assert!(s <= a && a + (1 << 20) <= e && s % 4096 == 0 && e % 4096 == 0, "{s:#x}..{e:#x} for {a:#x}");
        assert_eq!(KernelDriver.cpu_mapping(a), Ok((s, e)), "the kernel driver reads the same");
        assert_eq!(cpu_mapping(8), Err(Errno::EFAULT), "page 0 is never mapped");
    }

    #[test]
    fn ioctl_errno_is_preserved() {
        // /dev/null is not a DRM device: the kernel answers ENOTTY, and we keep it.
        let fd = open_render_node(Path::new("/dev/null")).unwrap();
        let mut q = crate::uapi::drm_xe_device_query::default();
        let e = super::super::ioctl(&KernelDriver, std::os::fd::AsRawFd::as_raw_fd(&fd), crate::uapi::DRM_IOCTL_XE_DEVICE_QUERY, &mut q);
        assert_eq!(e, Err(Errno::ENOTTY));
        assert_eq!(open_render_node(Path::new("/nonexistent/renderD128")).err(), Some(Errno::ENOENT));
    }
}
