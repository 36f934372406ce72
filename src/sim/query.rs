//! DEVICE_QUERY as `xe_query.c` answers it (docs/xe-uapi.md §6.1): the
//! dispatch (`xe_query_ioctl`: MBZ fields, the id), the size protocol every
//! `query_*` function shares (size 0 asks the size; any other size must be
//! exactly it), and each id's reply for the simulated platform. The
//! placement engine reads ENGINES to GT_LIST; the others are answered for
//! third-party code (IGT's `xe_query`, Intel's compute runtime).

use core::mem::size_of;

use super::config::KernelVersion;
use super::ioctl::{copy_in, copy_out};
use super::uaccess;
use super::{Guard, Sim};
use crate::errno::{Errno, Result};
use crate::uapi::query::*;
use crate::uapi::*;

const PAGE: u64 = 4096;
/// The GT reference clock of the simulated platforms (Hz).
const REFERENCE_CLOCK: u32 = 19_200_000;
/// `XE_MAX_GT_PER_TILE`: query_engine_cycles refuses a gt_id at or past it.
const MAX_GT_PER_TILE: u16 = 2;
/// Bytes of each GT_TOPOLOGY mask: `sizeof` of the kernel's bitmaps
/// (DSS: 128 bits in unsigned longs; EU per DSS and L3 banks: one long).
const DSS_MASK_BYTES: usize = 16;
const EU_MASK_BYTES: usize = 8;
const L3_MASK_BYTES: usize = 8;
/// `eu_stall_sampling_rates` in xe_eu_stall.c (GPU cycles).
const EU_STALL_RATES: [u64; 7] = [251, 251 * 2, 251 * 3, 251 * 4, 251 * 5, 251 * 6, 251 * 7];

/// What the simulated platform is, as far as the queries tell it
/// (`xe_pci.c`'s descriptors): from the PCI device id of the preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Platform {
    /// Battlemage (discrete Xe2, graphics 20.01, media 13.01).
    Bmg,
    /// Lunar Lake (integrated Xe2, graphics 20.04, media 20.00, PXP).
    Lnl,
    /// Ponte Vecchio (graphics 12.60, no media GT of its own, no HuC).
    Pvc,
}

/// One GT as `xe_info_init` creates it: a main GT per tile with id
/// `tile * max_gt_per_tile`, and a media GT (id + 1) where the platform has
/// standalone media (media version 13 or later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Gt {
    pub(super) id: u16,
    pub(super) tile: u16,
    pub(super) media: bool,
}

impl Platform {
    pub(super) fn of(device_id: u16) -> Platform {
        match device_id {
            0x0bd0..=0x0bdf => Platform::Pvc,
            0x6420 | 0x64a0 | 0x64b0 => Platform::Lnl,
            _ => Platform::Bmg,
        }
    }
    /// GRAPHICS_VER.
    fn graphics_ver(self) -> u32 {
        match self {
            Platform::Pvc => 12,
            _ => 20,
        }
    }
    /// `max_gt_per_tile` of its `xe_device_desc` (xe_pci.c): 1 on PVC,
    /// which has no standalone media, 2 on LNL and BMG.
    fn max_gt_per_tile(self) -> u16 {
        match self {
            Platform::Pvc => 1,
            _ => 2,
        }
    }
    /// What a GT's GMD_ID register holds, as `query_gt_list` reports it
    /// (major, minor): graphics and media IP of `graphics_ips` / `media_ips`
    /// in xe_pci.c (BMG: Xe2_HPG 20.01 and Xe2_HPM 13.01; LNL: Xe2_LPG 20.04
    /// and Xe2_LPM 20.00). PVC predates GMD_ID: `gt_fw_domain_init` reads
    /// the missing register as 0, so its GTs report 0.0.
    fn ip_version(self, media: bool) -> (u16, u16) {
        match (self, media) {
            (Platform::Bmg, false) => (20, 1),
            (Platform::Bmg, true) => (13, 1),
            (Platform::Lnl, false) => (20, 4),
            (Platform::Lnl, true) => (20, 0),
            (Platform::Pvc, _) => (0, 0),
        }
    }
    /// The engine classes of a GT (one instance each in the simulator): the
    /// descriptor's `hw_engine_mask`. Xe2 main GTs have render, copy and
    /// compute, their media GTs video decode and enhance; PVC
    /// (`graphics_xehpc`) has copy and compute engines only.
    fn engine_classes(self, media: bool) -> &'static [u16] {
        match (self, media) {
            (Platform::Pvc, _) => &[DRM_XE_ENGINE_CLASS_COPY, DRM_XE_ENGINE_CLASS_COMPUTE],
            (_, false) => &[DRM_XE_ENGINE_CLASS_RENDER, DRM_XE_ENGINE_CLASS_COPY, DRM_XE_ENGINE_CLASS_COMPUTE],
            (_, true) => &[DRM_XE_ENGINE_CLASS_VIDEO_DECODE, DRM_XE_ENGINE_CLASS_VIDEO_ENHANCE],
        }
    }
    /// Xe-cores (DSS) per tile.
    fn dss(self) -> u32 {
        match self {
            Platform::Bmg => 20,
            Platform::Lnl => 8,
            Platform::Pvc => 64,
        }
    }
    /// L3 banks per tile.
    fn l3_banks(self) -> u32 {
        match self {
            Platform::Bmg => 16,
            Platform::Lnl => 4,
            Platform::Pvc => 32,
        }
    }
}

fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: plain-data uAPI struct viewed as bytes.
    unsafe { core::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()) }.to_vec()
}

/// `n` low bits set, as a little-endian mask of `bytes`.
fn mask(n: u32, bytes: usize) -> Vec<u8> {
    let mut m = vec![0u8; bytes];
    for bit in 0..(n as usize).min(bytes * 8) {
        m[bit / 8] |= 1 << (bit % 8);
    }
    m
}

impl Sim {
    fn platform(&self, dev: u32) -> Platform {
        Platform::of(self.topo.devices[dev as usize].device_id)
    }

    /// Whether a VM_BIND may ask for DECOMPRESS on this device: discrete,
    /// Xe2 or later, with flat CCS (Battlemage; `xe_vm.c`
    /// vm_bind_ioctl_check_args, 7.1).
    pub(super) fn decompresses(&self, dev: u32) -> bool {
        let p = self.platform(dev);
        p.graphics_ver() >= 20 && self.topo.devices[dev as usize].has_vram()
    }

    /// `xe->pat.n_entries` (`xe_pat_init_early`): the Xe2 table's 32, but
    /// 28 on graphics 20.01 (Battlemage), where Wa_16023588340 disables
    /// CLOS3. PVC keeps the Xe2 table here (its own has 8: not modelled).
    pub(super) fn pat_entries(&self, dev: u32) -> u32 {
        match self.platform(dev) {
            Platform::Bmg => 28,
            _ => super::ioctl::N_PAT,
        }
    }

    /// The GTs of a device in id order (`xe_info_init`): per tile a main
    /// GT, id `tile * max_gt_per_tile`, and on platforms with standalone
    /// media a media GT after it. PVC has no media GT.
    pub(super) fn gts(&self, dev: u32) -> Vec<Gt> {
        let p = self.platform(dev);
        let per_tile = p.max_gt_per_tile();
        let mut gts = Vec::new();
        for tile in 0..self.topo.devices[dev as usize].tiles {
            gts.push(Gt { id: tile * per_tile, tile, media: false });
            if per_tile > 1 {
                gts.push(Gt { id: tile * per_tile + 1, tile, media: true });
            }
        }
        gts
    }

    /// The GT of an id, if the device has it (`xe_device_get_gt`).
    fn gt(&self, dev: u32, id: u16) -> Option<Gt> {
        self.gts(dev).into_iter().find(|g| g.id == id)
    }

    /// DEVICE_QUERY (`xe_query_ioctl`).
    pub(super) fn device_query(&self, g: &Guard, dev: u32, arg: u64, udir: u32, usz: usize) -> Result<()> {
        let mut q: drm_xe_device_query = copy_in(arg, udir, usz)?;
        if q.extensions != 0 || q.reserved != [0, 0] || q.query > DRM_XE_DEVICE_QUERY_EU_STALL {
            return Err(Errno::EINVAL);
        }
        // query_eu_stall checks the platform before the size protocol.
        if q.query == DRM_XE_DEVICE_QUERY_EU_STALL && !self.eu_stall_supported(dev) {
            return Err(Errno::ENODEV);
        }
        let reply = self.query_reply(g, dev, q.query)?;
        if q.size == 0 {
            q.size = reply.len() as u32;
            return copy_out(arg, udir, usz, &q);
        }
        if q.size as usize != reply.len() {
            return Err(Errno::EINVAL);
        }
        match q.query {
            DRM_XE_DEVICE_QUERY_ENGINE_CYCLES => self.query_engine_cycles(dev, q.data),
            DRM_XE_DEVICE_QUERY_UC_FW_VERSION => self.query_uc_fw_version(dev, q.data),
            // query_pxp_status: the size first, then whether PXP exists.
            DRM_XE_DEVICE_QUERY_PXP_STATUS if !self.pxp_supported(dev) => Err(Errno::ENODEV),
            _ => uaccess::write_bytes(q.data, &reply).map_err(|e| {
                // The MEM_REGIONS query reports a failed copy-out as ENOSPC (docs/xe-uapi.md §6.1).
                if q.query == DRM_XE_DEVICE_QUERY_MEM_REGIONS { Errno::ENOSPC } else { e }
            }),
        }
    }

    /// The reply bytes of a query id (for ENGINE_CYCLES and UC_FW_VERSION,
    /// which read their input from the caller, a zeroed reply of the size).
    pub(super) fn query_reply(&self, g: &Guard, dev: u32, query: u32) -> Result<Vec<u8>> {
        let spec = &self.topo.devices[dev as usize];
        let platform = self.platform(dev);
        let mut out = Vec::new();
        let push = |out: &mut Vec<u8>, bytes: &[u8]| out.extend_from_slice(bytes);
        match query {
            DRM_XE_DEVICE_QUERY_ENGINES => {
                // `query_engines`: every engine of every GT, in GT order.
                let mut engines = Vec::new();
                for gt in self.gts(dev) {
                    for &class in platform.engine_classes(gt.media) {
                        let instance = drm_xe_engine_class_instance { engine_class: class, engine_instance: 0, gt_id: gt.id, pad: 0 };
                        engines.push(drm_xe_engine { instance, reserved: [0; 3] });
                    }
                }
                push(&mut out, &bytes_of(&drm_xe_query_engines { num_engines: engines.len() as u32, pad: 0 }));
                for e in &engines {
                    push(&mut out, &bytes_of(e));
                }
            }
            DRM_XE_DEVICE_QUERY_MEM_REGIONS => {
                // query_mem_regions: `used` and `cpu_visible_used` for every
                // caller since "drm/xe/uapi: loosen used tracking restriction"
                // (2d1684a077d6, stable 6.8+; before it only for
                // perfmon_capable() callers). System memory's `used` is the
                // TT manager's usage (ttm_resource_manager_usage); the
                // simulator has no buffer objects and reports the bytes its
                // pages hold in system memory instead (docs/simulator.md).
                let vram = &self.tile_pagemap[dev as usize];
                let sys_used = (g.mem.totals().0 * PAGE).min(self.topo.system_memory);
                push(&mut out, &bytes_of(&drm_xe_query_mem_regions { num_mem_regions: 1 + vram.len() as u32, pad: 0 }));
                let sys = drm_xe_mem_region {
                    mem_class: DRM_XE_MEM_REGION_CLASS_SYSMEM,
                    instance: 0,
                    min_page_size: PAGE as u32,
                    total_size: self.topo.system_memory,
                    used: sys_used,
                    ..Default::default()
                };
                push(&mut out, &bytes_of(&sys));
                for &p in vram {
                    let info = self.pagemaps[p as usize];
                    let r = drm_xe_mem_region {
                        mem_class: DRM_XE_MEM_REGION_CLASS_VRAM,
                        instance: info.instance,
                        min_page_size: if spec.need_64k { 65536 } else { PAGE as u32 },
                        total_size: info.capacity,
                        used: g.mem.used(p),
                        cpu_visible_size: info.capacity,
                        cpu_visible_used: g.mem.used(p),
                        ..Default::default()
                    };
                    push(&mut out, &bytes_of(&r));
                }
            }
            DRM_XE_DEVICE_QUERY_CONFIG => {
                // query_config: HAS_LOW_LATENCY unconditionally.
                let mut flags = DRM_XE_QUERY_CONFIG_FLAG_HAS_LOW_LATENCY;
                if spec.has_vram() {
                    flags |= DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM;
                }
                if spec.page_faults {
                    flags |= DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR;
                }
                // Flags by release (docs/xe-uapi.md §5.3, §7); purging is a 7.1
                // feature the simulated BOs do not model, so it stays clear.
                if self.topo.kernel >= KernelVersion::V7_0 {
                    flags |= DRM_XE_QUERY_CONFIG_FLAG_HAS_NO_COMPRESSION_HINT;
                }
                if self.topo.kernel >= KernelVersion::V7_1 {
                    flags |= DRM_XE_QUERY_CONFIG_FLAG_HAS_DISABLE_STATE_CACHE_PERF_FIX;
                }
                push(&mut out, &bytes_of(&drm_xe_query_config { num_params: 5, pad: 0 }));
                let align = if spec.need_64k { 65536u64 } else { PAGE };
                // MAX_EXEC_QUEUE_PRIORITY is xe_exec_queue_device_get_max_priority:
                // HIGH (2) for a caller with CAP_SYS_NICE, NORMAL (1) for
                // everyone else. VA_BITS stays 48 everywhere: the simulated
                // VMs span 2^48 (PVC's graphics_xehpc would say 57).
                let va_bits = super::ioctl::VA_BITS as u64;
                let priority = if self.sys_nice_capable() { 2 } else { 1 };
                for v in [spec.device_id as u64 | (1 << 16), flags, align, va_bits, priority] {
                    push(&mut out, &v.to_ne_bytes());
                }
            }
            DRM_XE_DEVICE_QUERY_GT_LIST => {
                // query_gt_list: each GT with its own GMD_ID version.
                let regions = 1 + self.tile_pagemap[dev as usize].len() as u32;
                let all = (1u64 << regions) - 1;
                let gts: Vec<drm_xe_gt> = self
                    .gts(dev)
                    .into_iter()
                    .map(|gt| {
                        let near = if spec.has_vram() { 1u64 << (gt.tile + 1) } else { 1 };
                        let (major, minor) = platform.ip_version(gt.media);
                        drm_xe_gt {
                            gt_type: if gt.media { DRM_XE_QUERY_GT_TYPE_MEDIA } else { DRM_XE_QUERY_GT_TYPE_MAIN },
                            tile_id: gt.tile,
                            gt_id: gt.id,
                            reference_clock: REFERENCE_CLOCK,
                            near_mem_regions: near,
                            far_mem_regions: all ^ near,
                            ip_ver_major: major,
                            ip_ver_minor: minor,
                            ..Default::default()
                        }
                    })
                    .collect();
                push(&mut out, &bytes_of(&drm_xe_query_gt_list { num_gt: gts.len() as u32, pad: 0 }));
                for gt in &gts {
                    push(&mut out, &bytes_of(gt));
                }
            }
            DRM_XE_DEVICE_QUERY_HWCONFIG => out = self.hwconfig(dev),
            DRM_XE_DEVICE_QUERY_GT_TOPOLOGY => {
                // query_gt_topology: per GT, geometry and compute DSS, L3
                // banks, then EUs per DSS (SIMD16 on Xe2 and PVC). A media GT
                // has no DSS of its own: its masks are zero.
                for Gt { id: gt, media, .. } in self.gts(dev) {
                    let main = !media;
                    let dss = if main { platform.dss() } else { 0 };
                    let eu_type = if platform.graphics_ver() >= 20 || platform == Platform::Pvc { DRM_XE_TOPO_SIMD16_EU_PER_DSS } else { DRM_XE_TOPO_EU_PER_DSS };
                    for (ty, m) in [
                        (DRM_XE_TOPO_DSS_GEOMETRY, mask(if platform == Platform::Pvc { 0 } else { dss }, DSS_MASK_BYTES)),
                        (DRM_XE_TOPO_DSS_COMPUTE, mask(dss, DSS_MASK_BYTES)),
                        (DRM_XE_TOPO_L3_BANK, mask(if main { platform.l3_banks() } else { 0 }, L3_MASK_BYTES)),
                        (eu_type, mask(if main { 8 } else { 0 }, EU_MASK_BYTES)),
                    ] {
                        push(&mut out, &bytes_of(&drm_xe_query_topology_mask { gt_id: gt, mask_type: ty, num_bytes: m.len() as u32 }));
                        push(&mut out, &m);
                    }
                }
            }
            DRM_XE_DEVICE_QUERY_ENGINE_CYCLES => out = vec![0; size_of::<drm_xe_query_engine_cycles>()],
            DRM_XE_DEVICE_QUERY_UC_FW_VERSION => out = vec![0; size_of::<drm_xe_query_uc_fw_version>()],
            DRM_XE_DEVICE_QUERY_OA_UNITS => {
                // query_oa_units: an OAG unit per main GT (render, compute,
                // copy), an OAM unit per media GT (video), ids in GT order.
                let mut units: Vec<(drm_xe_oa_unit, Vec<drm_xe_engine_class_instance>)> = Vec::new();
                for Gt { id: gt, media, .. } in self.gts(dev) {
                    let main = !media;
                    let classes = platform.engine_classes(media);
                    let eci: Vec<_> = classes.iter().map(|&c| drm_xe_engine_class_instance { engine_class: c, engine_instance: 0, gt_id: gt, pad: 0 }).collect();
                    let unit = drm_xe_oa_unit {
                        oa_unit_id: units.len() as u32,
                        oa_unit_type: if main { DRM_XE_OA_UNIT_TYPE_OAG } else { DRM_XE_OA_UNIT_TYPE_OAM },
                        capabilities: DRM_XE_OA_CAPS_BASE | DRM_XE_OA_CAPS_SYNCS | DRM_XE_OA_CAPS_OA_BUFFER_SIZE | DRM_XE_OA_CAPS_WAIT_NUM_REPORTS | DRM_XE_OA_CAPS_OAM,
                        oa_timestamp_freq: REFERENCE_CLOCK as u64,
                        gt_id: gt,
                        num_engines: eci.len() as u64,
                        ..Default::default()
                    };
                    units.push((unit, eci));
                }
                push(&mut out, &bytes_of(&drm_xe_query_oa_units { num_oa_units: units.len() as u32, ..Default::default() }));
                for (u, eci) in &units {
                    push(&mut out, &bytes_of(u));
                    for e in eci {
                        push(&mut out, &bytes_of(e));
                    }
                }
            }
            DRM_XE_DEVICE_QUERY_PXP_STATUS => {
                // Status 1 (ready) and HWDRM sessions where PXP exists;
                // device_query answers ENODEV after the size elsewhere.
                let s = drm_xe_query_pxp_status { status: 1, supported_session_types: 1 << DRM_XE_PXP_TYPE_HWDRM };
                push(&mut out, &bytes_of(&s));
            }
            DRM_XE_DEVICE_QUERY_EU_STALL => {
                // query_eu_stall: 64-byte records, 512 KiB per XeCore.
                let info = drm_xe_query_eu_stall {
                    capabilities: DRM_XE_EU_STALL_CAPS_BASE,
                    record_size: 64,
                    per_xecore_buf_size: 512 << 10,
                    num_sampling_rates: EU_STALL_RATES.len() as u64,
                    ..Default::default()
                };
                push(&mut out, &bytes_of(&info));
                for r in EU_STALL_RATES {
                    push(&mut out, &r.to_ne_bytes());
                }
            }
            _ => return Err(Errno::EINVAL),
        }
        Ok(out)
    }

    /// `xe_eu_stall_supported_on_platform`: PVC, or graphics 20 and later.
    fn eu_stall_supported(&self, dev: u32) -> bool {
        let p = self.platform(dev);
        p == Platform::Pvc || p.graphics_ver() >= 20
    }

    /// PXP (`xe_pxp_get_readiness_status`): on the integrated platforms only.
    fn pxp_supported(&self, dev: u32) -> bool {
        self.platform(dev) == Platform::Lnl
    }

    /// HWCONFIG: the GuC's hardware-configuration table, key / length /
    /// values in u32s (`intel_hwconfig_types.h`): slices, DSS, EUs per DSS,
    /// L3 banks, memory channels, for the simulated platform.
    fn hwconfig(&self, dev: u32) -> Vec<u8> {
        let p = self.platform(dev);
        let mut t: Vec<u32> = Vec::new();
        for (key, value) in [(1u32, 1u32), (2, p.dss()), (3, 8), (4, 0), (7, p.l3_banks()), (12, 2)] {
            t.extend([key, 1, value]);
        }
        t.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    /// ENGINE_CYCLES (`query_engine_cycles`): the caller's engine and clock,
    /// checked as the kernel checks them, then the counter (the reference
    /// clock's ticks on the host's raw monotonic clock) and the CPU timestamp
    /// on the clock asked for.
    fn query_engine_cycles(&self, dev: u32, data: u64) -> Result<()> {
        let mut r: drm_xe_query_engine_cycles = uaccess::read(data)?;
        let clock = match r.clockid {
            libc::CLOCK_MONOTONIC | libc::CLOCK_MONOTONIC_RAW | libc::CLOCK_REALTIME | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI => r.clockid,
            _ => return Err(Errno::EINVAL),
        };
        let e = r.eci;
        if e.gt_id >= MAX_GT_PER_TILE || e.engine_class > DRM_XE_ENGINE_CLASS_COMPUTE {
            return Err(Errno::EINVAL);
        }
        let gt = self.gt(dev, e.gt_id).ok_or(Errno::EINVAL)?;
        // xe_gt_hw_engine: the GT must have an engine of that class.
        if !self.platform(dev).engine_classes(gt.media).contains(&e.engine_class) || e.engine_instance != 0 {
            return Err(Errno::EINVAL);
        }
        let now = |c: libc::clockid_t| {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: a valid out-pointer and a clock id checked above.
            unsafe { libc::clock_gettime(c, &mut ts) };
            ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
        };
        let width = if self.platform(dev).graphics_ver() >= 20 { 64 } else { 36 };
        r.cpu_timestamp = now(clock);
        let raw = now(libc::CLOCK_MONOTONIC_RAW);
        let cycles = (raw as u128 * REFERENCE_CLOCK as u128 / 1_000_000_000) as u64;
        r.engine_cycles = if width == 64 { cycles } else { cycles & ((1 << width) - 1) };
        r.cpu_delta = now(libc::CLOCK_MONOTONIC_RAW).saturating_sub(raw);
        r.width = width;
        // Only the output fields are written back.
        uaccess::write(data, &r)
    }

    /// UC_FW_VERSION (`query_uc_fw_version`): MBZ fields, then the GuC's
    /// submission interface version, or the HuC's where one runs (none on
    /// PVC: ENODEV).
    fn query_uc_fw_version(&self, dev: u32, data: u64) -> Result<()> {
        let mut r: drm_xe_query_uc_fw_version = uaccess::read(data)?;
        if r.pad != 0 || r.pad2 != 0 || r.reserved != 0 {
            return Err(Errno::EINVAL);
        }
        let (major, minor, patch) = match r.uc_type {
            XE_QUERY_UC_TYPE_GUC_SUBMISSION => (1, if self.topo.kernel >= KernelVersion::V7_0 { 14 } else { 12 }, 0),
            XE_QUERY_UC_TYPE_HUC if self.platform(dev) == Platform::Pvc => return Err(Errno::ENODEV),
            XE_QUERY_UC_TYPE_HUC => (8, 2, 10),
            _ => return Err(Errno::EINVAL),
        };
        r.branch_ver = 0;
        r.major_ver = major;
        r.minor_ver = minor;
        r.patch_ver = patch;
        uaccess::write(data, &r)
    }
}
