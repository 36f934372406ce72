//! The simulated machine's description: devices, tiles, VRAM, links between
//! devices, the kernel version whose behaviour to model, and the cost model
//! (docs/cost-model.md). Built from a preset name or a topology file.
//!
//! The topology file format and its reader (`Topology::parse`): `topology_file`.

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
    /// A fast fabric (Xe Link).
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
}

impl DeviceSpec {
    /// A discrete device with `tiles` tiles of `vram_per_tile` bytes.
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
            local_bandwidth: 456e9,
        }
    }
    /// Whether it has VRAM.
    pub fn has_vram(&self) -> bool {
        !self.integrated && self.vram_per_tile > 0
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
    pub device_huge_pages: bool,
    /// A GPU TLB invalidation, per tile.
    pub tlb_invalidation_ns: u64,
    /// An ioctl that does no GPU work (madvise, query).
    pub ioctl_ns: u64,
    /// CPU fault on a device page, without the copy.
    pub cpu_fault_ns: u64,
    /// Driver-managed migration host-to-device and device-to-host.
    pub h2d_bandwidth: f64,
    /// Driver-managed migration device to host.
    pub d2h_bandwidth: f64,
    /// Default per-direction bandwidth of PCIe P2P and fabric links.
    pub p2p_bandwidth: f64,
    /// Default per-direction bandwidth of Xe Link.
    pub fabric_bandwidth: f64,
    /// Clearing freshly allocated VRAM on the GPU (first touch of
    /// never-populated pages: nothing to copy, the pages are cleared).
    pub clear_bandwidth: f64,
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
}

impl Default for Costs {
    fn default() -> Self {
        Costs {
            fault_service_ns: 20_000,
            copy_submit_ns: 30_000,
            copy_fixed_ns: 19_000,
            per_page_cpu_ns: 1_400,
            device_huge_pages: true,
            tlb_invalidation_ns: 40_000,
            ioctl_ns: 2_000,
            cpu_fault_ns: 20_000,
            h2d_bandwidth: 46e9,
            d2h_bandwidth: 15e9,
            p2p_bandwidth: 20e9,
            fabric_bandwidth: 22e9,
            // [D] docs/cost-model.md: about half of Arc B580's 456 GB/s GDDR6.
            clear_bandwidth: 200e9,
            atomic_timeslice_ns: 5_000_000,
            // [M] `xesvm-pagemap-bench` on this project's 2-core Linux 6.18
            // machines: a one-page read costs 0.9-1.2 us (5-6x a rejected
            // ioctl), 2 MiB 6-8.5 us with PAGEMAP_SCAN (12-17 ns per page,
            // docs/observation.md §4 says 16) and 19-22 us with pread (37-43 ns
            // per page with decoding; docs/observation.md §4 says 21 undecoded).
            pagemap_call_ns: 900,
            pagemap_scan_page_ns: 16,
            pagemap_read_page_ns: 40,
        }
    }
}

impl Costs {
    /// Time to move `bytes` over a link of `bandwidth` bytes/s, as one migration.
    pub fn copy_ns(&self, bytes: u64, bandwidth: f64) -> u64 {
        let pages = if self.device_huge_pages { 0 } else { bytes / (4 * KIB) };
        self.copy_submit_ns + self.copy_fixed_ns + transfer_ns(bytes, bandwidth) + pages * self.per_page_cpu_ns
    }

    /// Time to clear `bytes` of freshly allocated VRAM, as one submission
    /// (docs/cost-model.md, "GPU first touch of never-populated pages").
    pub fn clear_ns(&self, bytes: u64) -> u64 {
        self.copy_submit_ns + transfer_ns(bytes, self.clear_bandwidth)
    }
}

/// `bytes` at `bandwidth` bytes/s in whole nanoseconds, rounded up: every
/// piece the clock charges is at least its exact time, so a bound that sums
/// exact times stays below the clock however a run splits the bytes.
pub fn transfer_ns(bytes: u64, bandwidth: f64) -> u64 {
    (bytes as f64 / bandwidth * 1e9).ceil() as u64
}

/// A whole simulated machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    /// The kernel release whose behaviour it follows.
    pub kernel: KernelVersion,
    /// Bytes of system memory.
    pub system_memory: u64,
    /// The devices, in index order.
    pub devices: Vec<DeviceSpec>,
    /// The links between them.
    pub links: Vec<LinkSpec>,
    /// The cost model.
    pub costs: Costs,
}

/// The preset names `Topology::preset` knows, with one line each.
pub const PRESETS: &[(&str, &str)] = &[
    ("dgpu", "one discrete GPU, 1 tile, 16 GiB VRAM"),
    ("2dgpu-p2p", "two discrete GPUs (16 GiB each) with PCIe P2P between them"),
    ("2dgpu-nolink", "two discrete GPUs (16 GiB each) without any link"),
    ("4dgpu-p2p", "four discrete GPUs (16 GiB each), PCIe P2P all-to-all"),
    ("max-node", "Data Center GPU Max node: 6 devices x 2 tiles x 64 GiB, all-to-all Xe Link fabric"),
    ("igpu", "one integrated GPU (no VRAM)"),
];

impl Topology {
    pub(super) fn new(devices: Vec<DeviceSpec>) -> Self {
        Topology { kernel: KernelVersion::V7_0, system_memory: 512 * GIB, devices, links: Vec::new(), costs: Costs::default() }
    }

    fn link_all(&mut self, kind: LinkKind, atomics: bool) {
        let bw = match kind {
            LinkKind::Fabric => self.costs.fabric_bandwidth,
            _ => self.costs.p2p_bandwidth,
        };
        let n = self.devices.len() as u32;
        for a in 0..n {
            for b in a + 1..n {
                self.links.push(LinkSpec { a, b, kind, bandwidth: bw, atomics });
            }
        }
    }

    /// One of [`PRESETS`].
    pub fn preset(name: &str) -> Option<Topology> {
        let d = |i: usize, tiles, vram| DeviceSpec::discrete(&format!("gpu{i}"), tiles, vram);
        Some(match name {
            "dgpu" => Topology::new(vec![d(0, 1, 16 * GIB)]),
            "2dgpu-p2p" => {
                let mut t = Topology::new(vec![d(0, 1, 16 * GIB), d(1, 1, 16 * GIB)]);
                t.link_all(LinkKind::PcieP2p, false);
                t
            }
            "2dgpu-nolink" => Topology::new(vec![d(0, 1, 16 * GIB), d(1, 1, 16 * GIB)]),
            "4dgpu-p2p" => {
                let mut t = Topology::new((0..4).map(|i| d(i, 1, 16 * GIB)).collect());
                t.link_all(LinkKind::PcieP2p, false);
                t
            }
            "max-node" => {
                let mut t = Topology::new((0..6).map(|i| d(i, 2, 64 * GIB)).collect());
                for dev in &mut t.devices {
                    dev.device_id = 0x0bd5;
                    // pvc_desc in xe_pci.c has no needs_scratch (only LNL,
                    // BMG and PTL set it): SCRATCH_PAGE | FAULT_MODE is EINVAL.
                    dev.needs_scratch = false;
                }
                t.system_memory = 1024 * GIB;
                t.link_all(LinkKind::Fabric, true);
                t
            }
            "igpu" => {
                let mut dev = DeviceSpec::discrete("igpu0", 1, 0);
                dev.integrated = true;
                dev.device_atomics_on_smem = true;
                dev.device_id = 0x64a0;
                Topology::new(vec![dev])
            }
            _ => return None,
        })
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
        for (i, d) in self.devices.iter().enumerate() {
            if !(1..=2).contains(&d.tiles) {
                return Err(format!("device {i} ({}): tiles must be 1 or 2", d.name));
            }
            if !d.integrated && d.vram_per_tile != 0 && d.vram_per_tile < 2 * MIB {
                return Err(format!("device {i} ({}): vram_per_tile below 2 MiB", d.name));
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
