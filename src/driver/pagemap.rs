//! The kernel side of residency: this process's own page table through
//! `/proc/self/pagemap` (docs/observation.md §1-§3). PAGEMAP_SCAN where the kernel
//! has it (6.7+), `pread` of the 8-byte entries otherwise; with
//! CAP_SYS_ADMIN the entries carry PFNs, and a device-private PFN inside a
//! range a device reserved in `/proc/iomem` names that device.
//!
//! Opened once per process and never closed: the answer belongs to the
//! process, not to a context.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::residency::{push_run, DeviceId, PageTableAccess, PageTableSource, Residency, ResidencyRun, VramRegion};
use crate::errno::{Errno, Result};
use crate::uapi::pagemap::*;

const PAGE: u64 = 4096;

/// A device's reserved range of physical frames, `[first, end)` in PFNs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevmemRange {
    /// First device-private PFN of the device's reserved range.
    pub first_pfn: u64,
    /// One past its last PFN.
    pub end_pfn: u64,
    /// The VRAM region those PFNs belong to.
    pub region: VramRegion,
}

/// An open `/proc/self/pagemap` and what it can tell.
pub struct PageTable {
    fd: OwnedFd,
    access: PageTableAccess,
    /// PAGEMAP_SCAN answered the probe (used when PFNs are not wanted).
    has_scan: bool,
    devmem: Vec<DevmemRange>,
}

/// The process's page table, opened on first use (None where it cannot be).
///
/// `XESVM_PAGEMAP` restricts how it is read, never widens it: `off` (records
/// only, as under a seccomp filter that denies it), `read` (pread, no
/// PAGEMAP_SCAN), `unprivileged` (no PFNs even with CAP_SYS_ADMIN). For
/// processes where reads cost more than they tell, and for tests whose
/// memory is simulated (the umockdev test of the kernel path).
pub fn process_page_table() -> Option<&'static PageTable> {
    // One table per process: a forked child opens its own (the parent's fd
    // still reads the parent's page table) and closes the one it inherited.
    // A table is kept for the life of the process that opened it.
    static PT: parking_lot::RwLock<Option<(u32, Option<&'static PageTable>)>> = parking_lot::RwLock::new(None);
    let generation = super::fork::generation();
    if let Some((g, pt)) = *PT.read() {
        if g == generation {
            return pt;
        }
    }
    let mut w = PT.write();
    match *w {
        Some((g, pt)) if g == generation => pt,
        _ => {
            if let Some((_, Some(inherited))) = w.take() {
                // SAFETY: the parent's table, leaked by the Box::leak below
                // in the parent. The generation moved, so this is a child of
                // that process: the threads that used it (each only for the
                // length of one call) did not come along through fork, and
                // every later caller gets the new table. Dropped once: the
                // slot no longer names it.
                drop(unsafe { Box::from_raw(inherited as *const PageTable as *mut PageTable) });
            }
            let pt = open_process_page_table().map(|p| &*Box::leak(Box::new(p)));
            *w = Some((generation, pt));
            pt
        }
    }
}

fn open_process_page_table() -> Option<PageTable> {
    let pt = PageTable::open(c"/proc/self/pagemap").ok()?;
    let a = pt.access();
    match crate::env::var("XESVM_PAGEMAP").as_deref() {
        Some("off") => None,
        Some("read") => pt.restricted(PageTableAccess { source: PageTableSource::Read, privileged: a.privileged }).ok(),
        Some("unprivileged") => {
            let source = if pt.has_scan { PageTableSource::Scan } else { PageTableSource::Read };
            pt.restricted(PageTableAccess { source, privileged: false }).ok()
        }
        _ => Some(pt),
    }
}

/// What the kernel's page table gives this process.
pub fn process_access() -> PageTableAccess {
    process_page_table().map_or(PageTableAccess::UNAVAILABLE, |p| p.access)
}

impl PageTable {
    /// Opens a pagemap file and probes what it answers: PAGEMAP_SCAN or
    /// only `pread`, and whether entries carry PFNs.
    pub fn open(path: &CStr) -> Result<PageTable> {
        // SAFETY: valid NUL-terminated path; the descriptor is owned at once.
        let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut pt = PageTable { fd, access: PageTableAccess { source: PageTableSource::Read, privileged: false }, has_scan: false, devmem: Vec::new() };
        // A page this thread surely has present: the one holding `probe`.
        let probe = [1u8; 1];
        let page = std::hint::black_box(&probe) as *const _ as u64 & !(PAGE - 1);
        let mut entry = [0u64; 1];
        if pt.read_entries(page, &mut entry)? != 1 || entry[0] & PM_PRESENT == 0 {
            // A page this thread just touched must be present: this pagemap lies.
            return Err(Errno::EIO);
        }
        pt.access.privileged = entry[0] & PM_PFN_MASK != 0;
        let mut one = [page_region::default(); 1];
        pt.has_scan = pt.scan(page, page + PAGE, &mut one).is_ok();
        // PFNs come only with pread: a privileged reader reads that way.
        if pt.has_scan && !pt.access.privileged {
            pt.access.source = PageTableSource::Scan;
        }
        if pt.access.privileged {
            pt.devmem = std::fs::read_to_string("/proc/iomem").map(|t| parse_iomem(&t)).unwrap_or_default();
        }
        Ok(pt)
    }

    /// How this reader reads the page table.
    pub fn access(&self) -> PageTableAccess {
        self.access
    }

    /// Reads as a process with less would: `pread` only (no PAGEMAP_SCAN)
    /// and/or without PFNs. Never adds a capability the file lacks (tests
    /// compare the paths on the same memory). EINVAL for more than it has.
    pub fn restricted(mut self, access: PageTableAccess) -> Result<PageTable> {
        let ok_source = match access.source {
            PageTableSource::Read => true,
            PageTableSource::Scan => self.has_scan && !access.privileged,
            _ => false,
        };
        if !ok_source || (access.privileged && !self.access.privileged) {
            return Err(Errno::EINVAL);
        }
        if !access.privileged {
            self.devmem.clear();
        }
        self.access = access;
        Ok(self)
    }

    /// Reads `buf.len()` entries starting at the page of `addr`; returns how many.
    fn read_entries(&self, addr: u64, buf: &mut [u64]) -> Result<usize> {
        let off = (addr / PAGE * PM_ENTRY_BYTES) as libc::off_t;
        loop {
            // SAFETY: the buffer is live and writable for its byte length.
            let n = unsafe { libc::pread(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), std::mem::size_of_val(buf), off) };
            if n >= 0 {
                return Ok(n as usize / PM_ENTRY_BYTES as usize);
            }
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
    }

    /// One PAGEMAP_SCAN over [start, end): regions merged by PRESENT/SWAPPED;
    /// returns how many were filled and where the walk stopped.
    fn scan(&self, start: u64, end: u64, out: &mut [page_region]) -> Result<(usize, u64)> {
        let mut arg = pm_scan_arg {
            size: std::mem::size_of::<pm_scan_arg>() as u64,
            start,
            end,
            vec: out.as_mut_ptr() as u64,
            vec_len: out.len() as u64,
            // Report every page (inverting PRESENT matches the non-present ones too).
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            category_inverted: 0,
            // The zero page (PAGE_IS_PFNZERO, Linux 6.7 like the scan) is a
            // present PTE with nothing behind it: read as never populated.
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO,
            ..Default::default()
        };
        // Pages with neither category are unpopulated: they match no mask and
        // leave gaps between the regions, which `residency` fills in.
        loop {
            // SAFETY: `arg` is a live pm_scan_arg and `vec` points to `vec_len` regions.
            let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg as *mut pm_scan_arg) };
            if r >= 0 {
                return Ok((r as usize, arg.walk_end));
            }
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
    }

    fn classify(&self, entry: u64) -> Residency {
        if entry & PM_PRESENT != 0 {
            return Residency::System;
        }
        if entry & PM_SWAP == 0 {
            return Residency::Unpopulated;
        }
        if !self.access.privileged {
            return Residency::NotInSystem { vram: None };
        }
        // A swap entry: `swp_type | offset << 5` (pte_to_pagemap_entry fills
        // it for CAP_SYS_ADMIN only); a device-private entry's offset is its
        // PFN, a swapped-out page's its slot in a swap area, whose type is
        // below the special ones. A slot number can fall in a device's PFN
        // range, so the type decides first.
        let swap_type = entry & ((1 << PM_SWAP_TYPE_BITS) - 1);
        if swap_type < PM_SWAP_AREA_TYPES {
            return Residency::Swapped;
        }
        let pfn = (entry & PM_PFN_MASK) >> PM_SWAP_TYPE_BITS;
        let vram = self.devmem.iter().find(|r| pfn >= r.first_pfn && pfn < r.end_pfn).map(|r| r.region);
        Residency::NotInSystem { vram }
    }

    /// Runs of [start, end) (page aligned) into `out`; returns how many were
    /// filled and the address up to which they describe the span (less than
    /// `end` when `out` filled up).
    pub fn residency(&self, start: u64, end: u64, out: &mut [ResidencyRun]) -> Result<(usize, u64)> {
        if start % PAGE != 0 || end % PAGE != 0 || start >= end || out.is_empty() {
            return Err(Errno::EINVAL);
        }
        let mut n = 0;
        if self.access.source == PageTableSource::Scan {
            let mut regions = [page_region::default(); 32];
            let mut at = start;
            while at < end {
                let (got, walk_end) = self.scan(at, end, &mut regions)?;
                for r in &regions[..got] {
                    if r.start > at && !push_run(out, &mut n, ResidencyRun { start: at, end: r.start, residency: Residency::Unpopulated }) {
                        return Ok((n, at));
                    }
                    let residency = match r.categories {
                        c if c & PAGE_IS_PFNZERO != 0 => Residency::Unpopulated,
                        c if c & PAGE_IS_PRESENT != 0 => Residency::System,
                        _ => Residency::NotInSystem { vram: None },
                    };
                    if !push_run(out, &mut n, ResidencyRun { start: r.start, end: r.end, residency }) {
                        return Ok((n, r.start));
                    }
                    at = r.end;
                }
                if walk_end > at {
                    // Pages the walk passed without a region matched neither category.
                    if !push_run(out, &mut n, ResidencyRun { start: at, end: walk_end, residency: Residency::Unpopulated }) {
                        return Ok((n, at));
                    }
                    at = walk_end;
                }
                if got == 0 && walk_end <= at {
                    break;
                }
            }
            return Ok((n, at.min(end)));
        }
        let mut buf = [0u64; 512];
        let mut at = start;
        while at < end {
            let want = (((end - at) / PAGE) as usize).min(buf.len());
            let got = self.read_entries(at, &mut buf[..want])?;
            if got == 0 {
                return Err(Errno::EIO);
            }
            for &e in &buf[..got] {
                if !push_run(out, &mut n, ResidencyRun { start: at, end: at + PAGE, residency: self.classify(e) }) {
                    return Ok((n, at));
                }
                at += PAGE;
            }
        }
        Ok((n, end))
    }
}

/// Device-private ranges in `/proc/iomem`: top-level entries (reserved with
/// `devm_request_free_mem_region` under `iomem_resource`) named by a PCI
/// address, numbered per device in address order (tile order; a choice,
/// docs/observation.md §2 does not say how tiles are told apart). Nested entries
/// (BARs under their bridge) are indented and skipped.
pub fn parse_iomem(text: &str) -> Vec<DevmemRange> {
    let mut out: Vec<DevmemRange> = Vec::new();
    for line in text.lines() {
        if line.starts_with(' ') {
            continue;
        }
        let Some((span, name)) = line.split_once(" : ") else { continue };
        let Some(device) = DeviceId::parse(name.trim()) else { continue };
        let Some((a, b)) = span.split_once('-') else { continue };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a.trim(), 16), u64::from_str_radix(b.trim(), 16)) else { continue };
        if b <= a {
            continue; // unprivileged readers see zeros
        }
        let region = out.iter().filter(|r| r.region.device == device).count() as u16;
        out.push(DevmemRange { first_pfn: a / PAGE, end_pfn: (b + 1) / PAGE, region: VramRegion { device, region } });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iomem_names_device_private_ranges_by_pci_address() {
        let text = "\
00000000-00000fff : Reserved
3800000000-3bffffffff : PCI Bus 0000:03
  3800000000-3bffffffff : 0000:03:00.0
3c00000000000-3c003ffffffff : 0000:03:00.0
3c00400000000-3c007ffffffff : 0000:03:00.0
3d00000000000-3d003ffffffff : 0000:04:00.0
00000000-00000000 : 0000:05:00.0
";
        let r = parse_iomem(text);
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(r[0].region, VramRegion { device: DeviceId::pci(0, 3, 0, 0), region: 0 });
        assert_eq!(r[1].region.region, 1);
        assert_eq!(r[2].region.device.to_string(), "0000:04:00.0");
        assert_eq!(r[0].first_pfn, 0x3c00000000000 / PAGE);
        assert_eq!(r[0].end_pfn, 0x3c00400000000 / PAGE);
    }

    /// `pte_to_pagemap_entry` (fs/proc/task_mmu.c) writes a swap entry as
    /// `swp_type | offset << 5` for a CAP_SYS_ADMIN reader only. A
    /// swapped-out page (a swap area's type, its slot as offset) is told
    /// from a device-private page (a special type, its PFN as offset) by
    /// the type, even where the slot number falls in a device's PFN range;
    /// an unprivileged reader sees neither and cannot tell them apart.
    #[test]
    fn pte_to_pagemap_entry_swap_type_tells_swapped_pages_from_device_pages() {
        let dev = DevmemRange { first_pfn: 0x1000, end_pfn: 0x2000, region: VramRegion { device: DeviceId::pci(0, 3, 0, 0), region: 0 } };
        let null = std::fs::File::open("/dev/null").unwrap();
        let pt = |privileged: bool| PageTable {
            fd: OwnedFd::from(null.try_clone().unwrap()),
            access: PageTableAccess { source: PageTableSource::Read, privileged },
            has_scan: false,
            devmem: vec![dev],
        };
        let (privileged, plain) = (pt(true), pt(false));
        let swap = |ty: u64, offset: u64| PM_SWAP | ty | offset << PM_SWAP_TYPE_BITS;
        // SWP_DEVICE_WRITE is 28-30 depending on the configuration.
        for ty in [28, 29, 30] {
            assert_eq!(privileged.classify(swap(ty, 0x1800)), Residency::NotInSystem { vram: Some(dev.region) }, "type {ty}");
        }
        assert_eq!(privileged.classify(swap(0, 0x1800)), Residency::Swapped, "swap area 0, slot inside the device's range");
        assert_eq!(privileged.classify(swap(1, 7)), Residency::Swapped);
        assert_eq!(privileged.classify(swap(26, 0x9000)), Residency::NotInSystem { vram: None }, "a migration entry of a system page");
        // Without CAP_SYS_ADMIN bits 0-54 are 0: a swap entry is all it says.
        assert_eq!(plain.classify(PM_SWAP), Residency::NotInSystem { vram: None });
    }
}
