//! What a process can see of where its pages are (docs/design.md, "What the
//! library may know"; docs/observation.md): the answer of its own page table, and
//! the identity of the devices behind its fds. These are the only facts about
//! placement that cross the driver seam; the simulated driver answers them
//! with the same limits and charges their cost to its clock.

/// A PCI function, `domain:bus:device.function`, packed as the kernel packs
/// it: domain << 16 | bus << 8 | device << 3 | function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub u64);

impl DeviceId {
    /// A PCI address.
    pub const fn pci(domain: u32, bus: u8, device: u8, function: u8) -> DeviceId {
        DeviceId((domain as u64) << 16 | (bus as u64) << 8 | ((device as u64) & 0x1f) << 3 | (function as u64 & 7))
    }

    /// Parses `0000:03:00.0` (sysfs and /proc/iomem spelling).
    pub fn parse(s: &str) -> Option<DeviceId> {
        let (domain, rest) = s.split_once(':')?;
        let (bus, rest) = rest.split_once(':')?;
        let (dev, func) = rest.split_once('.')?;
        if domain.len() != 4 || bus.len() != 2 || dev.len() != 2 || func.len() != 1 {
            return None;
        }
        let hex = |t: &str| u32::from_str_radix(t, 16).ok();
        let (d, b, v, f) = (hex(domain)?, hex(bus)?, hex(dev)?, hex(func)?);
        (b <= 0xff && v < 32 && f < 8).then(|| DeviceId::pci(d, b as u8, v as u8, f as u8))
    }

    /// The bus number.
    pub fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        write!(f, "{:04x}:{:02x}:{:02x}.{}", v >> 16, (v >> 8) & 0xff, (v >> 3) & 0x1f, v & 7)
    }
}

/// A device-private memory region a privileged reader can name: the
/// `region`-th range the device reserved in `/proc/iomem` (one per tile's
/// VRAM, in address order), docs/observation.md §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VramRegion {
    /// The device whose VRAM it is.
    pub device: DeviceId,
    /// The region instance on that device.
    pub region: u16,
}

/// Where a run of pages is, as the page table says (docs/observation.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residency {
    /// No page table entry: never touched (or freed).
    Unpopulated,
    /// Present in system memory (also when a GPU maps it remotely).
    System,
    /// A swap entry: a device-private page (some GPU's VRAM), a migration
    /// in flight, or real swap. `vram` names the region where the reader is
    /// privileged and the PFN lies in a device's reserved range.
    NotInSystem {
        /// The VRAM region, where the reader could tell.
        vram: Option<VramRegion>,
    },
    /// Swapped out to a swap area: on no GPU, and back in system memory at
    /// the next access. Only a privileged reader can tell it from
    /// `NotInSystem` (the swap type, docs/observation.md §2).
    Swapped,
}

/// Adjacent pages with one [`Residency`], `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResidencyRun {
    /// First address of the run.
    pub start: u64,
    /// One past its last address.
    pub end: u64,
    /// Where its pages are.
    pub residency: Residency,
}

impl Default for ResidencyRun {
    fn default() -> Self {
        ResidencyRun { start: 0, end: 0, residency: Residency::Unpopulated }
    }
}

/// How the page table is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageTableSource {
    /// Not at all (no /proc, EPERM under seccomp, ...): the library decides
    /// on its records only.
    Unavailable,
    /// `pread` of `/proc/self/pagemap` (every kernel).
    Read,
    /// The PAGEMAP_SCAN ioctl (Linux 6.7+).
    Scan,
    /// The simulated driver's ground truth at no cost: the `oracle` of the
    /// benchmark, which no process on hardware has.
    Oracle,
}

/// What the page table can tell this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTableAccess {
    /// How it is read.
    pub source: PageTableSource,
    /// CAP_SYS_ADMIN: entries carry PFNs, so device-private pages name their device.
    pub privileged: bool,
}

impl PageTableAccess {
    /// No page table: decisions on the library's records only.
    pub const UNAVAILABLE: PageTableAccess = PageTableAccess { source: PageTableSource::Unavailable, privileged: false };

    /// Whether it can be read at all.
    pub fn available(self) -> bool {
        self.source != PageTableSource::Unavailable
    }

    /// Whether answers name the device of a page not in system memory.
    pub fn names_devices(self) -> bool {
        self.privileged || self.source == PageTableSource::Oracle
    }

    /// A short name (`scan`, `pread`, `none`, `oracle`).
    pub fn name(self) -> &'static str {
        match (self.source, self.privileged) {
            (PageTableSource::Unavailable, _) => "records only (no page table)",
            (PageTableSource::Read, false) => "pagemap read",
            (PageTableSource::Read, true) => "pagemap read, privileged (PFNs)",
            (PageTableSource::Scan, false) => "PAGEMAP_SCAN",
            (PageTableSource::Scan, true) => "PAGEMAP_SCAN, privileged (PFNs)",
            (PageTableSource::Oracle, _) => "oracle (simulator ground truth)",
        }
    }
}

/// Appends `run` to `out[..*n]`, merging with the last run when adjacent
/// and equal. Returns false when `out` is full (the run was not stored).
pub fn push_run(out: &mut [ResidencyRun], n: &mut usize, run: ResidencyRun) -> bool {
    if *n > 0 {
        let last = &mut out[*n - 1];
        if last.end == run.start && last.residency == run.residency {
            last.end = run.end;
            return true;
        }
    }
    if *n == out.len() {
        return false;
    }
    out[*n] = run;
    *n += 1;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_round_trip() {
        let d = DeviceId::parse("0000:03:00.0").unwrap();
        assert_eq!(d, DeviceId::pci(0, 3, 0, 0));
        assert_eq!(d.to_string(), "0000:03:00.0");
        assert_eq!(DeviceId::parse("0001:af:1f.7").unwrap().to_string(), "0001:af:1f.7");
        for bad in ["", "0000:03:00", "03:00.0", "0000:03:20.0", "0000:03:00.8", "zzzz:03:00.0", "PCI Bus 0000:00"] {
            assert_eq!(DeviceId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn runs_merge_and_stop_when_full() {
        let mut out = [ResidencyRun::default(); 2];
        let mut n = 0;
        let r = |s, e, residency| ResidencyRun { start: s, end: e, residency };
        assert!(push_run(&mut out, &mut n, r(0, 4096, Residency::System)));
        assert!(push_run(&mut out, &mut n, r(4096, 8192, Residency::System)));
        assert_eq!((n, out[0].end), (1, 8192));
        assert!(push_run(&mut out, &mut n, r(8192, 12288, Residency::NotInSystem { vram: None })));
        assert!(!push_run(&mut out, &mut n, r(12288, 16384, Residency::Unpopulated)));
        assert_eq!(n, 2);
    }
}
