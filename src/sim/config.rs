//! The simulated machine's description: devices, tiles, VRAM, links between
//! devices, the kernel version whose behaviour to model, and the cost model
//! (docs/cost-model.md). Built from a preset name or a topology file.
//!
//! The topology file format and its reader (`Topology::parse`): `topology_file`.
//! The device classes the presets are made of (Arc B580, Arc Pro B60, Data
//! Center GPU Max 1550), with their figures: `classes`.

use std::fmt;


/// A kibibyte.
pub const KIB: u64 = 1 << 10;
/// A mebibyte.
pub const MIB: u64 = 1 << 20;
/// A gibibyte.
pub const GIB: u64 = 1 << 30;

/// Which kernel's SVM behaviour the simulated driver reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelVersion {
    /// 6.18-rc1 and -rc2: as 6.18, but without DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET
    /// (EINVAL) and with the madvise reset after munmap done on every CPU-mirror
    /// VMA. "drm/xe/uapi: Hide the madvise autoreset behind a VM_BIND flag"
    /// (ce831bffcef3, drm-xe-fixes-2025-10-23) gated it from 6.18-rc3 on.
    V6_18Rc,
    /// 6.18/6.19 (final, and -rc3 on): madvise exists, `region_instance` is
    /// pad, no multi-device pagemaps (a positive devmem_fd behaves like
    /// system), no retry-once; the madvise reset after munmap only for
    /// mirrors bound with MADVISE_AUTORESET.
    V6_18,
    /// 7.0: multi-device madvise, ENOLINK, owner groups, scan_mm,
    /// evict-and-retry-once under the migrate rwsem, EXEC_QUEUE_SET_PROPERTY,
    /// the NO_COMPRESSION_HINT config flag.
    V7_0,
    /// 7.1: as 7.0, plus VM_CREATE NO_VM_OVERCOMMIT, VM_BIND DECOMPRESS,
    /// purgeable-state madvise, VM_GET_PROPERTY, and their config flags
    /// (docs/xe-uapi.md §7). Earlier releases answer those bits EINVAL.
    V7_1,
}

impl KernelVersion {
    /// The release string `uname -r` gives on such a kernel.
    pub fn release(self) -> &'static str {
        match self {
            KernelVersion::V6_18Rc => "6.18.0-rc2",
            KernelVersion::V6_18 => "6.18.0",
            KernelVersion::V7_0 => "7.0.0",
            KernelVersion::V7_1 => "7.1.0",
        }
    }

    /// A version by name ("6.18-rc1", "6.18-rc2" or "6.18-rc"; "6.18",
    /// also "6.18-rc3" to "-rc7" and "6.19"; "7.0"; "7.1").
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "6.18-rc" | "6.18-rc1" | "6.18-rc2" => Some(KernelVersion::V6_18Rc),
            "6.18" | "6.18-rc3" | "6.18-rc4" | "6.18-rc5" | "6.18-rc6" | "6.18-rc7" | "6.19" => Some(KernelVersion::V6_18),
            "7.0" | "7" => Some(KernelVersion::V7_0),
            "7.1" => Some(KernelVersion::V7_1),
            _ => None,
        }
    }
    /// Whether it has the multi-device series (7.0+).
    pub fn multi_device(self) -> bool {
        self >= KernelVersion::V7_0
    }
    /// Whether it has DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET and resets
    /// madvise attributes after munmap only where a mirror was bound with
    /// it (6.18-rc3 on); 6.18-rc1/rc2 reset every mirror VMA.
    pub fn autoreset_flag(self) -> bool {
        self >= KernelVersion::V6_18
    }
    /// Whether migrations use 2 MiB device folios by default: [U] the
    /// drm_pagemap THP series was posted as v4 in 2026-01 and is not
    /// confirmed merged, so only 7.1 is taken to have it.
    pub fn device_folios(self) -> bool {
        self >= KernelVersion::V7_1
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelVersion::V6_18Rc => "6.18-rc",
            KernelVersion::V6_18 => "6.18",
            KernelVersion::V7_0 => "7.0",
            KernelVersion::V7_1 => "7.1",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// What kind of link two simulated devices have.
pub enum LinkKind {
    /// None: no peer access.
    None,
    /// PCIe peer-to-peer through a switch.
    PcieP2p,
    /// A fast fabric (Xe Link). Only with [`Topology::future_fabric`]:
    /// upstream xe through 7.0 reaches a peer only over PCIe (see
    /// [`Topology::settle_links`]).
    Fabric,
}

#[derive(Clone, Debug, PartialEq)]
/// One simulated device.
pub struct DeviceSpec {
    /// Its name (in messages and traces).
    pub name: String,
    /// Tiles: 1 or 2.
    pub tiles: u16,
    /// Bytes of VRAM per tile; 0 for an integrated GPU.
    pub vram_per_tile: u64,
    /// An integrated GPU: no VRAM.
    pub integrated: bool,
    /// Device atomics work on system memory (`has_device_atomics_on_smem`).
    pub device_atomics_on_smem: bool,
    /// `XE_VRAM_FLAGS_NEED64K`: ranges under 64 KiB stay in system memory.
    pub need_64k: bool,
    /// Recoverable page faults (USM): without them there is no SVM
    /// (HAS_CPU_ADDR_MIRROR clear, FAULT_MODE VMs refused).
    pub page_faults: bool,
    /// PCI device id reported by the CONFIG query.
    pub device_id: u16,
    /// The platform needs scratch pages even in fault mode (Xe2 and later:
    /// LNL, BMG, PTL; `xe->info.needs_scratch`, not PVC), so VM_CREATE takes
    /// SCRATCH_PAGE with FAULT_MODE.
    pub needs_scratch: bool,
    /// Bandwidth of a kernel's access to this device's own VRAM (either
    /// tile), bytes/s: what a launch's local memory time is priced at.
    pub local_bandwidth: f64,
    /// Effective bandwidth of the device's host link (PCIe), bytes/s, the
    /// same in both directions: xe moves pages both ways with one copy
    /// engine (`xe_migrate_to_vram` / `xe_migrate_from_vram`), and a GPU's
    /// in-place access to system memory crosses the same link.
    pub host_bandwidth: f64,
}

impl DeviceSpec {
    /// A discrete device with `tiles` tiles of `vram_per_tile` bytes, with
    /// the B580 class's memory and link (`classes`).
    pub fn discrete(name: &str, tiles: u16, vram_per_tile: u64) -> Self {
        DeviceSpec {
            name: name.into(),
            tiles,
            vram_per_tile,
            integrated: false,
            device_atomics_on_smem: false,
            need_64k: false,
            page_faults: true,
            device_id: 0xe20b,
            needs_scratch: true,
            local_bandwidth: super::classes::B580_LOCAL,
            host_bandwidth: super::classes::B580_HOST,
        }
    }
    /// Whether it has VRAM.
    pub fn has_vram(&self) -> bool {
        !self.integrated && self.vram_per_tile > 0
    }
    /// Bandwidth of a GPU clear of this device's VRAM, and of a copy from
    /// one of its tiles to the other: [D] half the local bandwidth, as the
    /// copy engine writes (and a copy also reads) the same memory.
    pub fn clear_bandwidth(&self) -> f64 {
        self.local_bandwidth / 2.0
    }
}

#[derive(Clone, Debug, PartialEq)]
/// A link between two simulated devices.
pub struct LinkSpec {
    /// One device's index.
    pub a: u32,
    /// The other's.
    pub b: u32,
    /// Its kind.
    pub kind: LinkKind,
    /// Bytes per second, per direction.
    pub bandwidth: f64,
    /// Whether it carries GPU atomics.
    pub atomics: bool,
}

/// The cost model (docs/cost-model.md). Times in nanoseconds, bandwidths in bytes/s.
#[derive(Clone, Debug, PartialEq)]
pub struct Costs {
    /// GPU page fault service without the copy (irq, worker, get_pages, bind).
    pub fault_service_ns: u64,
    /// Copy submission (GuC) per migration.
    pub copy_submit_ns: u64,
    /// Fixed part of one chunk copy (fit: 19 us + size / bandwidth).
    pub copy_fixed_ns: u64,
    /// CPU work per 4 KiB page when device huge pages are off.
    pub per_page_cpu_ns: u64,
    /// Whether migrations use 2 MiB device folios (no per-page CPU work).
    /// Follows the kernel release ([`KernelVersion::device_folios`],
    /// applied by [`Topology::set_kernel`]) unless a topology file sets it.
    pub device_huge_pages: bool,
    /// A GPU TLB invalidation, per tile.
    pub tlb_invalidation_ns: u64,
    /// An ioctl that does no GPU work (madvise, query).
    pub ioctl_ns: u64,
    /// CPU fault on a device page, without the copy.
    pub cpu_fault_ns: u64,
    /// Default per-direction bandwidth of Xe Link (only with
    /// [`Topology::future_fabric`]). Host links are per device
    /// ([`DeviceSpec::host_bandwidth`]), PCIe P2P links derive from them
    /// ([`Topology::pcie_p2p_bandwidth`]), clears from local memory
    /// ([`DeviceSpec::clear_bandwidth`]).
    pub fabric_bandwidth: f64,
    /// Populating never-populated pages in system memory (the CPU's
    /// zero-fill at first touch, or `hmm_range_fault` at a GPU's).
    pub zero_fill_bandwidth: f64,
    /// Atomic-fault timeslice (`atomic_svm_timeslice_ms`).
    pub atomic_timeslice_ns: u64,
    /// One read of the process's page table (a PAGEMAP_SCAN or a pread of
    /// /proc/self/pagemap): the syscall, the mm lock and the walk's setup.
    pub pagemap_call_ns: u64,
    /// Walking one 4 KiB page of it with PAGEMAP_SCAN, and reading (and
    /// decoding) its entry with pread (docs/observation.md §4).
    pub pagemap_scan_page_ns: u64,
    /// Reading and decoding one page with pread.
    pub pagemap_read_page_ns: u64,
    /// Mapping the shared zero page over one never-populated page
    /// (madvise MADV_POPULATE_READ: a read fault per page, no allocation,
    /// no zeroing).
    pub zero_page_map_ns: u64,
}

impl Default for Costs {
    fn default() -> Self {
        Costs {
            fault_service_ns: 20_000,
            copy_submit_ns: 30_000,
            copy_fixed_ns: 19_000,
            per_page_cpu_ns: 1_400,
            // Kernel 7.0, the default release: no device folios.
            device_huge_pages: false,
            tlb_invalidation_ns: 40_000,
            ioctl_ns: 2_000,
            cpu_fault_ns: 20_000,
            // [S] 28 GB/s theoretical per Xe Link, x 0.8.
            fabric_bandwidth: 22e9,
            // [U] an estimate: 2 MiB in about 0.26 ms (0.1-0.5 ms per 2 MiB:
            // a fault and a cleared page per 4 KiB, or one cleared THP).
            zero_fill_bandwidth: 8e9,
            atomic_timeslice_ns: 5_000_000,
            // [M] `xesvm-pagemap-bench` on this project's 2-core Linux 6.18
            // machines: a one-page read costs 0.9-1.2 us (5-6x a rejected
            // ioctl), 2 MiB 6-8.5 us with PAGEMAP_SCAN (12-17 ns per page,
            // docs/observation.md §4 says 16) and 19-22 us with pread (37-43 ns
            // per page with decoding; docs/observation.md §4 says 21 undecoded).
            pagemap_call_ns: 900,
            pagemap_scan_page_ns: 16,
            pagemap_read_page_ns: 40,
            // [U] a read fault that maps the zero page: the fault entry, a
            // page-table walk and one PTE, no page allocated or cleared
            // (about a tenth of a zero-filling fault).
            zero_page_map_ns: 100,
        }
    }
}

impl Costs {
    /// Time to move `bytes` over a link of `bandwidth` bytes/s, as one migration.
    pub fn copy_ns(&self, bytes: u64, bandwidth: f64) -> u64 {
        let pages = if self.device_huge_pages { 0 } else { bytes / (4 * KIB) };
        self.copy_submit_ns + self.copy_fixed_ns + transfer_ns(bytes, bandwidth) + pages * self.per_page_cpu_ns
    }

    /// Time to clear `bytes` of freshly allocated VRAM at `bandwidth`
    /// ([`DeviceSpec::clear_bandwidth`]), as one submission
    /// (docs/cost-model.md, "Fixed costs": the clear of a new allocation).
    pub fn clear_ns(&self, bytes: u64, bandwidth: f64) -> u64 {
        self.copy_submit_ns + transfer_ns(bytes, bandwidth)
    }

    /// Time to populate `bytes` of never-populated system memory.
    pub fn zero_fill_ns(&self, bytes: u64) -> u64 {
        transfer_ns(bytes, self.zero_fill_bandwidth)
    }
}

/// `bytes` at `bandwidth` bytes/s in whole nanoseconds, rounded up: every
/// piece the clock charges is at least its exact time, so a bound that sums
/// exact times stays below the clock however a run splits the bytes.
pub fn transfer_ns(bytes: u64, bandwidth: f64) -> u64 {
    (bytes as f64 / bandwidth * 1e9).ceil() as u64
}

/// The host's memory bandwidth of a desktop (dual-channel DDR5-5600:
/// 89.6 GB/s peak, about 80 sustained) [U]: the B580 class's machines and
/// any topology that does not say.
pub const DESKTOP_MEMORY_BANDWIDTH: f64 = 80e9;
/// A workstation's (8-channel DDR5-4800 Xeon W: 307 GB/s peak) [U]: the
/// B60 class's machines.
pub const WORKSTATION_MEMORY_BANDWIDTH: f64 = 250e9;
/// A two-socket server's (16 channels DDR5-4800: 614 GB/s peak) [U]: the
/// Max 1550 class's machines.
pub const SERVER_MEMORY_BANDWIDTH: f64 = 500e9;

/// A whole simulated machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    /// The kernel release whose behaviour it follows.
    pub kernel: KernelVersion,
    /// Bytes of system memory.
    pub system_memory: u64,
    /// Bytes/s the host's memory moves for everyone at once: every
    /// device's host-link traffic and copies share it (docs/cost-model.md,
    /// "Timelines").
    pub host_memory_bandwidth: f64,
    /// The devices, in index order.
    pub devices: Vec<DeviceSpec>,
    /// The links between them.
    pub links: Vec<LinkSpec>,
    /// The cost model.
    pub costs: Costs,
    /// A future kernel with an Xe Link path for SVM: only then do
    /// [`LinkKind::Fabric`] links stay fabric (topology key `future_fabric`).
    pub future_fabric: bool,
    /// `device_huge_pages` set explicitly (a topology file's `[costs]`);
    /// None: the kernel release's default ([`Topology::set_kernel`]).
    pub huge_pages_override: Option<bool>,
}

/// The preset names `Topology::preset` knows, with one line each.
pub const PRESETS: &[(&str, &str)] = &[
    ("b580", "one Arc B580-class GPU: 1 tile, 12 GiB GDDR6 at 456 GB/s, PCIe 4.0 x8 (13 GB/s)"),
    ("b60", "one Arc Pro B60-class GPU: 1 tile, 24 GiB GDDR6 at 456 GB/s, PCIe 5.0 x8 (26 GB/s)"),
    ("max1550", "one Data Center GPU Max 1550-class device: 2 tiles x 64 GiB HBM2e at 1.6 TB/s, PCIe 5.0 x16 (50 GB/s)"),
    ("dgpu", "one B580-class GPU (as b580)"),
    ("2dgpu-p2p", "two B60-class GPUs with PCIe P2P between them"),
    ("2dgpu-nolink", "two B580-class GPUs without any link"),
    ("4dgpu-p2p", "four B60-class GPUs, PCIe P2P all-to-all"),
    ("max-node", "six Max 1550-class devices (2 tiles x 64 GiB), PCIe P2P all-to-all (Xe Link only with future_fabric)"),
    ("igpu", "one integrated GPU (no VRAM; system memory at ~100 GB/s)"),
];

impl Topology {
    pub(super) fn new(devices: Vec<DeviceSpec>) -> Self {
        let mut t = Topology {
            kernel: KernelVersion::V7_0,
            system_memory: 512 * GIB,
            host_memory_bandwidth: DESKTOP_MEMORY_BANDWIDTH,
            devices,
            links: Vec::new(),
            costs: Costs::default(),
            future_fabric: false,
            huge_pages_override: None,
        };
        t.set_kernel(KernelVersion::V7_0);
        t
    }

    fn with_host_memory(mut self, bandwidth: f64) -> Topology {
        self.host_memory_bandwidth = bandwidth;
        self
    }

    /// Sets the kernel release, and with it the release's default for
    /// device folios unless [`Topology::huge_pages_override`] says otherwise.
    pub fn set_kernel(&mut self, kernel: KernelVersion) {
        self.kernel = kernel;
        self.costs.device_huge_pages = self.huge_pages_override.unwrap_or(kernel.device_folios());
    }

    /// Links every pair of devices with PCIe P2P at its derived bandwidth.
    fn link_all_pcie(&mut self) {
        let n = self.devices.len() as u32;
        for a in 0..n {
            for b in a + 1..n {
                let bandwidth = self.pcie_p2p_bandwidth(a, b);
                self.links.push(LinkSpec { a, b, kind: LinkKind::PcieP2p, bandwidth, atomics: false });
            }
        }
    }

    /// One of [`PRESETS`].
    pub fn preset(name: &str) -> Option<Topology> {
        use super::classes::Class;
        let of = |class: Class, n: usize| (0..n).map(|i| class.device(&format!("gpu{i}"))).collect::<Vec<_>>();
        Some(match name {
            "b580" | "dgpu" => Topology::new(of(Class::B580, 1)),
            "b60" => Topology::new(of(Class::B60, 1)).with_host_memory(WORKSTATION_MEMORY_BANDWIDTH),
            "max1550" => Topology::new(of(Class::Max1550, 1)).with_host_memory(SERVER_MEMORY_BANDWIDTH),
            "2dgpu-p2p" | "4dgpu-p2p" => {
                let mut t = Topology::new(of(Class::B60, if name == "2dgpu-p2p" { 2 } else { 4 })).with_host_memory(WORKSTATION_MEMORY_BANDWIDTH);
                t.link_all_pcie();
                t
            }
            "2dgpu-nolink" => Topology::new(of(Class::B580, 2)),
            "max-node" => {
                // PCIe P2P, not Xe Link: upstream xe has no fabric path for
                // SVM (`settle_links`).
                let mut t = Topology::new(of(Class::Max1550, 6)).with_host_memory(SERVER_MEMORY_BANDWIDTH);
                t.system_memory = 1024 * GIB;
                t.link_all_pcie();
                t
            }
            "igpu" => Topology::new(vec![Class::Integrated.device("igpu0")]),
            _ => return None,
        })
    }

    /// Default bandwidth of a PCIe P2P link between two devices: [U] 0.8 x
    /// the slower of their host links (peer reads and writes cross the
    /// PCIe BAR of the peer, through a switch or the root complex, and no
    /// published Xe figure exists).
    pub fn pcie_p2p_bandwidth(&self, a: u32, b: u32) -> f64 {
        0.8 * self.devices[a as usize].host_bandwidth.min(self.devices[b as usize].host_bandwidth)
    }

    /// Turns [`LinkKind::Fabric`] links into PCIe P2P unless
    /// [`Topology::future_fabric`]: upstream xe through 7.0 groups devices
    /// for SVM only by `xe_has_interconnect` (xe_svm.c): the same device, or
    /// `pci_p2pdma_distance() >= 0`; peer pages are mapped through the
    /// PCIe BAR (`xe_page_to_pcie`), never over Xe Link. Such a link gets
    /// the PCIe-derived bandwidth and no atomics. Links whose bandwidth was
    /// not given (`explicit[i]` false; missing entries count as given) get
    /// their kind's default. Idempotent: the reader, and `Sim::new`, run it.
    pub fn settle_links(&mut self, explicit: &[bool]) {
        for i in 0..self.links.len() {
            let (a, b) = (self.links[i].a, self.links[i].b);
            if (a as usize) >= self.devices.len() || (b as usize) >= self.devices.len() {
                continue; // validate() names it
            }
            let set = explicit.get(i).copied().unwrap_or(true);
            let (pcie, future, fabric) = (self.pcie_p2p_bandwidth(a, b), self.future_fabric, self.costs.fabric_bandwidth);
            let l = &mut self.links[i];
            match l.kind {
                LinkKind::Fabric if !future => {
                    l.kind = LinkKind::PcieP2p;
                    l.atomics = false;
                    l.bandwidth = pcie;
                }
                LinkKind::Fabric if !set => l.bandwidth = fabric,
                LinkKind::PcieP2p if !set => l.bandwidth = pcie,
                _ => {}
            }
        }
    }

    /// Per-direction bandwidth between device `a` and device `b`'s VRAM, for
    /// a copy or an access in place: within one device (tile to tile) at
    /// its clear bandwidth, else over their link, else (no link: out of
    /// reach, as both stay inside an owner group) the slower host link.
    pub fn peer_bandwidth(&self, a: u32, b: u32) -> f64 {
        if a == b {
            return self.devices[a as usize].clear_bandwidth();
        }
        let host = self.devices[a as usize].host_bandwidth.min(self.devices[b as usize].host_bandwidth);
        self.link(a, b).map_or(host, |l| l.bandwidth)
    }

    /// The link between two distinct devices, if any (kind `None` counts as none).
    pub fn link(&self, a: u32, b: u32) -> Option<&LinkSpec> {
        self.links
            .iter()
            .find(|l| l.kind != LinkKind::None && ((l.a == a && l.b == b) || (l.a == b && l.b == a)))
    }

    /// Interconnect (pagemap owner) groups as `drm_pagemap_acquire_owner`
    /// forms them: devices in index order join the first group with every
    /// member of which they have a link; 6.18 has no multi-device pagemaps,
    /// so each device is its own group there (docs/kernel-model.md §1, §11.2). A
    /// GPU reaches a peer's VRAM, and pages move VRAM to VRAM, only inside
    /// a group.
    pub fn owner_groups(&self) -> Vec<u32> {
        let n = self.devices.len();
        if !self.kernel.multi_device() {
            return (0..n as u32).collect();
        }
        let mut groups: Vec<Vec<u32>> = Vec::new();
        let mut owner = vec![0; n];
        for d in 0..n as u32 {
            match groups.iter().position(|g| g.iter().all(|&m| self.link(d, m).is_some())) {
                Some(i) => {
                    groups[i].push(d);
                    owner[d as usize] = i as u32;
                }
                None => {
                    owner[d as usize] = groups.len() as u32;
                    groups.push(vec![d]);
                }
            }
        }
        owner
    }

    /// Checks the description: at least one device, 1-2 tiles, links between
    /// existing distinct devices, positive bandwidths.
    pub fn validate(&self) -> Result<(), String> {
        if self.devices.is_empty() {
            return Err("a topology needs at least one [[device]]".into());
        }
        if self.devices.len() > 32 {
            return Err("at most 32 devices are supported".into());
        }
        if self.host_memory_bandwidth.is_nan() || self.host_memory_bandwidth <= 0.0 {
            return Err("host_memory_gbps must be positive".into());
        }
        for (i, d) in self.devices.iter().enumerate() {
            if !(1..=2).contains(&d.tiles) {
                return Err(format!("device {i} ({}): tiles must be 1 or 2", d.name));
            }
            if !d.integrated && d.vram_per_tile != 0 && d.vram_per_tile < 2 * MIB {
                return Err(format!("device {i} ({}): vram_per_tile below 2 MiB", d.name));
            }
            for (what, bw) in [("host_gbps", d.host_bandwidth), ("local_gbps", d.local_bandwidth)] {
                if bw.is_nan() || bw <= 0.0 {
                    return Err(format!("device {i} ({}): {what} must be positive", d.name));
                }
            }
        }
        for l in &self.links {
            if l.a == l.b || l.a as usize >= self.devices.len() || l.b as usize >= self.devices.len() {
                return Err(format!("link {}-{}: needs two distinct existing devices", l.a, l.b));
            }
            if l.kind != LinkKind::None && (l.bandwidth.is_nan() || l.bandwidth <= 0.0) {
                return Err(format!("link {}-{}: bandwidth must be positive", l.a, l.b));
            }
        }
        Ok(())
    }

}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
