//! DEVICE_QUERY helpers: the two-call size protocol of docs/xe-uapi.md §6.1 and the
//! decoding of MEM_REGIONS, CONFIG and GT_LIST replies into Rust types, plus
//! DRM_IOCTL_VERSION's driver name. Decoders take byte images, so they are
//! tested without any device.

use core::mem::size_of;
use std::os::fd::RawFd;

use super::{ioctl, Driver, Errno, Result};
use crate::uapi::*;

/// `drm_xe_mem_region.mem_class`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemClass {
    /// `DRM_XE_MEM_REGION_CLASS_SYSMEM`.
    System,
    /// `DRM_XE_MEM_REGION_CLASS_VRAM`.
    Vram,
    /// A class this library does not know.
    Other(u16),
}

/// One memory region as the device reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRegion {
    /// Its memory class.
    pub class: MemClass,
    /// Bit index in placement masks; the value prefetch and madvise name.
    pub instance: u16,
    /// Smallest page it can be mapped with.
    pub min_page_size: u32,
    /// Bytes in the region.
    pub total_size: u64,
    /// Bytes in use (for every caller since "drm/xe/uapi: loosen used
    /// tracking restriction", stable 6.8+; 0 for an unprivileged caller before).
    pub used: u64,
    /// Bytes the CPU can map.
    pub cpu_visible_size: u64,
    /// CPU-visible bytes in use (as `used`).
    pub cpu_visible_used: u64,
}

/// The CONFIG query, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Config {
    /// PCI device id.
    pub device_id: u16,
    /// Revision.
    pub revision: u8,
    /// `DRM_XE_QUERY_CONFIG_FLAG_*` bits.
    pub flags: u64,
    /// Minimum alignment of a binding.
    pub min_alignment: u64,
    /// Bits of GPU virtual address.
    pub va_bits: u32,
    /// Highest exec-queue priority.
    pub max_exec_queue_priority: u64,
}

impl Config {
    /// SVM is possible on this device (docs/xe-uapi.md §5.3).
    pub fn has_cpu_addr_mirror(&self) -> bool {
        self.flags & DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR != 0
    }
    /// Whether the device has VRAM (`HAS_VRAM`).
    pub fn has_vram(&self) -> bool {
        self.flags & DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM != 0
    }
}

/// One GT of the GT_LIST query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gt {
    /// `DRM_XE_QUERY_GT_TYPE_*`.
    pub gt_type: u16,
    /// The tile it belongs to.
    pub tile_id: u16,
    /// Its GT id.
    pub gt_id: u16,
    /// Reference clock in Hz.
    pub reference_clock: u32,
    /// Memory regions near it (a bit per region instance).
    pub near_mem_regions: u64,
    /// Memory regions far from it.
    pub far_mem_regions: u64,
    /// Graphics IP version: major, minor, revision.
    pub ip_version: (u16, u16, u16),
}

/// Everything the library learns about a device from DEVICE_QUERY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Memory regions, system memory first.
    pub regions: Vec<MemRegion>,
    /// The CONFIG reply.
    pub config: Config,
    /// The GT list.
    pub gts: Vec<Gt>,
}

impl DeviceInfo {
    /// Tile ids that carry a MAIN GT, ascending.
    pub fn tiles(&self) -> Vec<u16> {
        let mut t: Vec<u16> =
            self.gts.iter().filter(|g| g.gt_type == DRM_XE_QUERY_GT_TYPE_MAIN).map(|g| g.tile_id).collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// The VRAM region nearest to a tile (docs/xe-uapi.md §6.1 recipe: the tile's MAIN GT's
    /// `near_mem_regions` intersected with the VRAM instances).
    pub fn vram_of_tile(&self, tile: u16) -> Option<&MemRegion> {
        let gt = self.gts.iter().find(|g| g.tile_id == tile && g.gt_type == DRM_XE_QUERY_GT_TYPE_MAIN)?;
        self.regions
            .iter()
            .find(|r| r.class == MemClass::Vram && r.instance < 64 && gt.near_mem_regions & (1 << r.instance) != 0)
    }

    /// The region of an instance.
    pub fn region(&self, instance: u16) -> Option<&MemRegion> {
        self.regions.iter().find(|r| r.instance == instance)
    }

    /// The PAT index for the CPU-address mirror's bind. The kernel refuses a
    /// non-coherent one on an integrated GPU, which shares the CPU's LLC
    /// (`vm_bind_ioctl_check_args`: `!IS_DGFX(xe) && coh_mode == XE_COH_NONE
    /// && is_cpu_addr_mirror`, in 6.18 stable and later), so there it is the
    /// kernel's own write-back coherent choice for the graphics IP
    /// (`xe->pat.idx[XE_CACHE_WB]`): 2 on Xe2 and later (2-way, which the
    /// L2-flush-optimized parts also ask for), 3 on Xe_LPG, 0 on Xe_LP. A
    /// discrete GPU reaches system memory coherently over PCIe whatever the
    /// index says, and the uAPI header allows 0 for mirror binds.
    pub fn mirror_pat_index(&self) -> u16 {
        if self.config.has_vram() {
            return 0;
        }
        let ip = self.gts.iter().find(|g| g.gt_type == DRM_XE_QUERY_GT_TYPE_MAIN).map_or((0, 0, 0), |g| g.ip_version);
        match (ip.0, ip.1) {
            (20.., _) => 2,
            (12, 70..) => 3,
            _ => 0,
        }
    }
}

/// Whether the device behind `fd` still answers: one size-only DEVICE_QUERY
/// (CONFIG), which does no work in the kernel. A wedged device answers
/// ECANCELED (`xe_drm_ioctl`), an unplugged one ENODEV (`drm_ioctl`).
pub fn probe<D: Driver + ?Sized>(drv: &D, fd: RawFd) -> Result<()> {
    let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_CONFIG, ..Default::default() };
    ioctl(drv, fd, DRM_IOCTL_XE_DEVICE_QUERY, &mut q)
}

/// Runs one query with the two-call size protocol and returns the reply
/// bytes in an 8-byte-aligned buffer (the reply arrays hold u64 fields).
pub fn query_raw<D: Driver + ?Sized>(drv: &D, fd: RawFd, query: u32) -> Result<Vec<u8>> {
    let mut q = drm_xe_device_query { query, ..Default::default() };
    ioctl(drv, fd, DRM_IOCTL_XE_DEVICE_QUERY, &mut q)?;
    let size = q.size as usize;
    if size == 0 {
        return Err(Errno::EIO);
    }
    let mut words = vec![0u64; size.div_ceil(8)];
    q.data = words.as_mut_ptr() as u64;
    ioctl(drv, fd, DRM_IOCTL_XE_DEVICE_QUERY, &mut q)?;
    let mut bytes = Vec::with_capacity(size);
    for w in &words {
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    bytes.truncate(size);
    Ok(bytes)
}

/// Reads a `T` at `off`, or EIO when the reply is too short.
fn read_at<T: Copy>(bytes: &[u8], off: usize) -> Result<T> {
    let end = off.checked_add(size_of::<T>()).ok_or(Errno::EIO)?;
    if end > bytes.len() {
        return Err(Errno::EIO);
    }
    // SAFETY: bounds checked; T is a plain-integer uAPI struct, any bytes are valid.
    Ok(unsafe { core::ptr::read_unaligned(bytes.as_ptr().add(off) as *const T) })
}

fn elements<T: Copy>(bytes: &[u8], count: u32) -> Result<Vec<T>> {
    (0..count as usize).map(|i| read_at::<T>(bytes, QUERY_ARRAY_OFFSET + i * size_of::<T>())).collect()
}

/// Decodes a MEM_REGIONS reply.
pub fn decode_mem_regions(bytes: &[u8]) -> Result<Vec<MemRegion>> {
    let head: drm_xe_query_mem_regions = read_at(bytes, 0)?;
    let regions: Vec<drm_xe_mem_region> = elements(bytes, head.num_mem_regions)?;
    Ok(regions
        .into_iter()
        .map(|r| MemRegion {
            class: match r.mem_class {
                DRM_XE_MEM_REGION_CLASS_SYSMEM => MemClass::System,
                DRM_XE_MEM_REGION_CLASS_VRAM => MemClass::Vram,
                c => MemClass::Other(c),
            },
            instance: r.instance,
            min_page_size: r.min_page_size,
            total_size: r.total_size,
            used: r.used,
            cpu_visible_size: r.cpu_visible_size,
            cpu_visible_used: r.cpu_visible_used,
        })
        .collect())
}

/// Decodes a CONFIG reply.
pub fn decode_config(bytes: &[u8]) -> Result<Config> {
    let head: drm_xe_query_config = read_at(bytes, 0)?;
    let info: Vec<u64> = elements(bytes, head.num_params)?;
    let get = |i: usize| info.get(i).copied().unwrap_or(0);
    let rev_dev = get(DRM_XE_QUERY_CONFIG_REV_AND_DEVICE_ID);
    Ok(Config {
        device_id: (rev_dev & 0xffff) as u16,
        revision: ((rev_dev >> 16) & 0xff) as u8,
        flags: get(DRM_XE_QUERY_CONFIG_FLAGS),
        min_alignment: get(DRM_XE_QUERY_CONFIG_MIN_ALIGNMENT),
        va_bits: get(DRM_XE_QUERY_CONFIG_VA_BITS) as u32,
        max_exec_queue_priority: get(DRM_XE_QUERY_CONFIG_MAX_EXEC_QUEUE_PRIORITY),
    })
}

/// Decodes a GT_LIST reply.
pub fn decode_gt_list(bytes: &[u8]) -> Result<Vec<Gt>> {
    let head: drm_xe_query_gt_list = read_at(bytes, 0)?;
    let gts: Vec<drm_xe_gt> = elements(bytes, head.num_gt)?;
    Ok(gts
        .into_iter()
        .map(|g| Gt {
            gt_type: g.gt_type,
            tile_id: g.tile_id,
            gt_id: g.gt_id,
            reference_clock: g.reference_clock,
            near_mem_regions: g.near_mem_regions,
            far_mem_regions: g.far_mem_regions,
            ip_version: (g.ip_ver_major, g.ip_ver_minor, g.ip_ver_rev),
        })
        .collect())
}

/// MEM_REGIONS, CONFIG and GT_LIST of one device.
pub fn query_device<D: Driver + ?Sized>(drv: &D, fd: RawFd) -> Result<DeviceInfo> {
    Ok(DeviceInfo {
        regions: decode_mem_regions(&query_raw(drv, fd, DRM_XE_DEVICE_QUERY_MEM_REGIONS)?)?,
        config: decode_config(&query_raw(drv, fd, DRM_XE_DEVICE_QUERY_CONFIG)?)?,
        gts: decode_gt_list(&query_raw(drv, fd, DRM_XE_DEVICE_QUERY_GT_LIST)?)?,
    })
}

/// The kernel driver's name behind an fd (`"xe"` for an Xe device), via
/// DRM_IOCTL_VERSION's two calls (lengths first, then the strings).
pub fn driver_name<D: Driver + ?Sized>(drv: &D, fd: RawFd) -> Result<String> {
    let mut v = drm_version::default();
    ioctl(drv, fd, DRM_IOCTL_VERSION, &mut v)?;
    let mut name = vec![0u8; v.name_len as usize];
    let mut v2 = drm_version { name_len: v.name_len, name: name.as_mut_ptr() as u64, ..Default::default() };
    ioctl(drv, fd, DRM_IOCTL_VERSION, &mut v2)?;
    name.truncate(v2.name_len.min(name.len() as u64) as usize);
    String::from_utf8(name).map_err(|_| Errno::EIO)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn push<T: Copy>(buf: &mut Vec<u8>, v: &T) {
        // SAFETY: viewing a plain-integer uAPI struct as bytes.
        let b = unsafe { core::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()) };
        buf.extend_from_slice(b);
    }

    /// The reply a two-tile discrete device gives (docs/xe-uapi.md §6.1 numbering).
    pub(crate) fn two_tile_images() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let mut regions = Vec::new();
        push(&mut regions, &drm_xe_query_mem_regions { num_mem_regions: 3, pad: 0 });
        let sys = drm_xe_mem_region { mem_class: DRM_XE_MEM_REGION_CLASS_SYSMEM, instance: 0, min_page_size: 4096, total_size: 64 << 30, ..Default::default() };
        push(&mut regions, &sys);
        for t in 0..2u16 {
            let v = drm_xe_mem_region { mem_class: DRM_XE_MEM_REGION_CLASS_VRAM, instance: t + 1, min_page_size: 65536, total_size: 16 << 30, used: 1 << 20, cpu_visible_size: 16 << 30, ..Default::default() };
            push(&mut regions, &v);
        }
        let mut config = Vec::new();
        push(&mut config, &drm_xe_query_config { num_params: 5, pad: 0 });
        for v in [0x0001_0bd5u64, DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM | DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR, 65536, 48, 2] {
            push(&mut config, &v);
        }
        let mut gts = Vec::new();
        push(&mut gts, &drm_xe_query_gt_list { num_gt: 3, pad: 0 });
        for (ty, tile, id) in [(DRM_XE_QUERY_GT_TYPE_MAIN, 0u16, 0u16), (DRM_XE_QUERY_GT_TYPE_MEDIA, 0, 1), (DRM_XE_QUERY_GT_TYPE_MAIN, 1, 2)] {
            let near = 1u64 << (tile + 1);
            push(&mut gts, &drm_xe_gt { gt_type: ty, tile_id: tile, gt_id: id, near_mem_regions: near, far_mem_regions: 0b111 ^ near, ip_ver_major: 12, ip_ver_minor: 60, ..Default::default() });
        }
        (regions, config, gts)
    }

    #[test]
    fn decodes_two_tile_device() {
        let (r, c, g) = two_tile_images();
        let info = DeviceInfo {
            regions: decode_mem_regions(&r).unwrap(),
            config: decode_config(&c).unwrap(),
            gts: decode_gt_list(&g).unwrap(),
        };
        assert_eq!(info.regions.len(), 3);
        assert_eq!(info.regions[0].class, MemClass::System);
        assert_eq!(info.regions[2].instance, 2);
        assert_eq!(info.regions[2].min_page_size, 65536);
        assert!(info.config.has_cpu_addr_mirror() && info.config.has_vram());
        assert_eq!((info.config.device_id, info.config.revision, info.config.va_bits), (0x0bd5, 1, 48));
        assert_eq!(info.tiles(), vec![0, 1]);
        assert_eq!(info.vram_of_tile(1).unwrap().instance, 2);
        assert_eq!(info.vram_of_tile(0).unwrap().instance, 1);
        assert!(info.vram_of_tile(2).is_none());
        assert_eq!(info.gts[2].ip_version, (12, 60, 0));
    }

    #[test]
    fn truncated_replies_are_eio() {
        let (r, c, g) = two_tile_images();
        assert_eq!(decode_mem_regions(&r[..r.len() - 1]), Err(Errno::EIO));
        assert_eq!(decode_config(&c[..4]), Err(Errno::EIO));
        assert_eq!(decode_gt_list(&g[..8 + 95]), Err(Errno::EIO));
        assert_eq!(decode_gt_list(&[]), Err(Errno::EIO));
    }

    #[test]
    fn short_config_defaults_missing_params_to_zero() {
        let mut c = Vec::new();
        push(&mut c, &drm_xe_query_config { num_params: 2, pad: 0 });
        push(&mut c, &7u64);
        push(&mut c, &DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR);
        let cfg = decode_config(&c).unwrap();
        assert!(cfg.has_cpu_addr_mirror() && !cfg.has_vram());
        assert_eq!(cfg.va_bits, 0);
    }
}
