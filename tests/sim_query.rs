//! DEVICE_QUERY ids 0-10 answered as xe 7.0's `xe_query.c` answers them:
//! the dispatch's checks (`xe_query_ioctl`), the size protocol every
//! `query_*` shares, and each id's reply and input checks, on the simulated
//! platforms (BMG for the discrete presets, LNL for `igpu`, PVC for
//! `max-node`). docs/xe-uapi.md §6.1.

use std::sync::Arc;

use xesvm::driver::ioctl;
use xesvm::errno::Errno;
use xesvm::sim::driver::SimDriver;
use xesvm::sim::Sim;
use xesvm::uapi::query::*;
use xesvm::uapi::*;

struct Dev {
    drv: SimDriver,
    fd: i32,
    _sim: Arc<Sim>,
}

fn open(preset: &str) -> Dev {
    let sim = Sim::from_preset(preset).unwrap();
    let fd = sim.open_device(0).unwrap();
    Dev { drv: SimDriver::new(sim.clone()), fd, _sim: sim }
}

impl Dev {
    fn query(&self, q: &mut drm_xe_device_query) -> Result<(), Errno> {
        ioctl(&self.drv, self.fd, DRM_IOCTL_XE_DEVICE_QUERY, q)
    }
    /// The size, then the reply, of a query id.
    fn reply(&self, id: u32) -> Result<Vec<u8>, Errno> {
        let mut q = drm_xe_device_query { query: id, ..Default::default() };
        self.query(&mut q)?;
        let mut buf = vec![0u8; q.size as usize];
        q.data = buf.as_mut_ptr() as u64;
        self.query(&mut q)?;
        Ok(buf)
    }
    fn size(&self, id: u32) -> u32 {
        let mut q = drm_xe_device_query { query: id, ..Default::default() };
        self.query(&mut q).unwrap();
        q.size
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

/// `xe_query_ioctl`: MBZ fields and an id past the table are EINVAL; every
/// id's size protocol: size 0 asks the size, another size than it is EINVAL.
#[test]
fn xe_query_ioctl_checks_and_the_size_protocol_of_every_id() {
    let d = open("dgpu");
    for id in 0..=DRM_XE_DEVICE_QUERY_EU_STALL {
        let size = d.size(id);
        assert!(size > 0, "id {id}: size {size}");
        let mut buf = vec![0u8; size as usize + 8];
        let mut q = drm_xe_device_query { query: id, size: size + 8, data: buf.as_mut_ptr() as u64, ..Default::default() };
        assert_eq!(d.query(&mut q), Err(Errno::EINVAL), "id {id}: a size other than the one asked");
        q.size = size - 1;
        assert_eq!(d.query(&mut q), Err(Errno::EINVAL), "id {id}");
    }
    let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_EU_STALL + 1, ..Default::default() };
    assert_eq!(d.query(&mut q), Err(Errno::EINVAL), "past the table");
    let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_CONFIG, extensions: 1, ..Default::default() };
    assert_eq!(d.query(&mut q), Err(Errno::EINVAL));
    let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_CONFIG, reserved: [0, 1], ..Default::default() };
    assert_eq!(d.query(&mut q), Err(Errno::EINVAL));
}

/// `query_hwconfig`: the GuC's table of key, length, values (u32s).
#[test]
fn query_hwconfig_is_a_table_of_klvs() {
    let b = open("dgpu").reply(DRM_XE_DEVICE_QUERY_HWCONFIG).unwrap();
    let (mut at, mut keys) = (0, Vec::new());
    while at < b.len() {
        let (key, len) = (u32_at(&b, at), u32_at(&b, at + 4) as usize);
        keys.push((key, u32_at(&b, at + 8)));
        at += 8 + 4 * len;
    }
    assert_eq!(at, b.len(), "the KLVs fill the reply exactly");
    assert!(keys.contains(&(2, 20)), "BMG: 20 DSS in {keys:?}");
}

/// `query_gt_topology`: per GT, geometry DSS, compute DSS, L3 banks and EUs
/// per DSS (SIMD16 on Xe2), each a header and `num_bytes` of mask.
#[test]
fn query_gt_topology_gives_four_masks_per_gt() {
    for (preset, gts, compute_dss) in [("dgpu", 2, 20), ("igpu", 2, 8), ("max-node", 4, 64)] {
        let b = open(preset).reply(DRM_XE_DEVICE_QUERY_GT_TOPOLOGY).unwrap();
        let mut at = 0;
        let mut seen = Vec::new();
        while at < b.len() {
            let (gt, ty, n) = (u16::from_ne_bytes([b[at], b[at + 1]]), u16::from_ne_bytes([b[at + 2], b[at + 3]]), u32_at(&b, at + 4) as usize);
            let bits: u32 = b[at + 8..at + 8 + n].iter().map(|x| x.count_ones()).sum();
            seen.push((gt, ty, bits));
            at += 8 + n;
        }
        assert_eq!(at, b.len(), "{preset}");
        assert_eq!(seen.len(), gts * 4, "{preset}: {seen:?}");
        assert!(seen.contains(&(0, DRM_XE_TOPO_DSS_COMPUTE, compute_dss)), "{preset}: {seen:?}");
        assert!(seen.contains(&(0, DRM_XE_TOPO_SIMD16_EU_PER_DSS, 8)), "{preset}: {seen:?}");
        assert!(seen.iter().filter(|s| s.0 == 1).all(|s| s.2 == 0), "{preset}: a media GT has no DSS");
    }
}

fn cycles(d: &Dev, class: u16, gt: u16, clockid: i32) -> Result<drm_xe_query_engine_cycles, Errno> {
    let mut r = drm_xe_query_engine_cycles { clockid, ..Default::default() };
    r.eci = drm_xe_engine_class_instance { engine_class: class, engine_instance: 0, gt_id: gt, pad: 0 };
    let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_ENGINE_CYCLES, size: 40, data: &mut r as *mut _ as u64, ..Default::default() };
    d.query(&mut q).map(|()| r)
}

/// `query_engine_cycles`: the clock and the engine are checked (gt_id below
/// XE_MAX_GT_PER_TILE, even on a second tile), then the counter, the CPU
/// timestamp on the clock asked for, and the counter's width (64 bits on
/// Xe2, 36 before).
#[test]
fn query_engine_cycles_checks_engine_and_clock() {
    let d = open("dgpu");
    let before = {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    let r = cycles(&d, DRM_XE_ENGINE_CLASS_RENDER, 0, libc::CLOCK_MONOTONIC).unwrap();
    assert_eq!(r.width, 64);
    assert!(r.engine_cycles > 0 && r.cpu_timestamp >= before && r.cpu_timestamp - before < 1_000_000_000, "{r:?}");
    assert!(cycles(&d, DRM_XE_ENGINE_CLASS_VIDEO_DECODE, 1, libc::CLOCK_REALTIME).is_ok(), "video on the media GT");
    assert_eq!(cycles(&d, DRM_XE_ENGINE_CLASS_RENDER, 0, 99).err(), Some(Errno::EINVAL), "unknown clock");
    assert_eq!(cycles(&d, DRM_XE_ENGINE_CLASS_VIDEO_DECODE, 0, libc::CLOCK_MONOTONIC).err(), Some(Errno::EINVAL), "no video engine on the main GT");
    assert_eq!(cycles(&d, 5, 0, libc::CLOCK_MONOTONIC).err(), Some(Errno::EINVAL), "VM_BIND class has no counter to read");
    let two = open("max-node");
    assert_eq!(cycles(&two, DRM_XE_ENGINE_CLASS_RENDER, 2, libc::CLOCK_MONOTONIC).err(), Some(Errno::EINVAL), "gt_id >= XE_MAX_GT_PER_TILE");
    assert_eq!(cycles(&two, DRM_XE_ENGINE_CLASS_RENDER, 0, libc::CLOCK_MONOTONIC).unwrap().width, 36, "PVC: 36-bit counter");
}

fn fw(d: &Dev, v: drm_xe_query_uc_fw_version) -> Result<drm_xe_query_uc_fw_version, Errno> {
    let mut v = v;
    let mut q = drm_xe_device_query { query: DRM_XE_DEVICE_QUERY_UC_FW_VERSION, size: 32, data: &mut v as *mut _ as u64, ..Default::default() };
    d.query(&mut q).map(|()| v)
}

/// `query_uc_fw_version`: MBZ fields, the type, then GuC's submission
/// version or HuC's (ENODEV where no HuC runs: PVC).
#[test]
fn query_uc_fw_version_checks_mbz_and_type() {
    let d = open("dgpu");
    let guc = fw(&d, drm_xe_query_uc_fw_version { uc_type: XE_QUERY_UC_TYPE_GUC_SUBMISSION, ..Default::default() }).unwrap();
    assert_eq!((guc.branch_ver, guc.major_ver), (0, 1));
    assert!(fw(&d, drm_xe_query_uc_fw_version { uc_type: XE_QUERY_UC_TYPE_HUC, ..Default::default() }).unwrap().major_ver > 0);
    for bad in [
        drm_xe_query_uc_fw_version { pad: 1, ..Default::default() },
        drm_xe_query_uc_fw_version { pad2: 1, ..Default::default() },
        drm_xe_query_uc_fw_version { reserved: 1, ..Default::default() },
        drm_xe_query_uc_fw_version { uc_type: 2, ..Default::default() },
    ] {
        assert_eq!(fw(&d, bad).err(), Some(Errno::EINVAL), "{bad:?}");
    }
    assert_eq!(fw(&open("max-node"), drm_xe_query_uc_fw_version { uc_type: XE_QUERY_UC_TYPE_HUC, ..Default::default() }).err(), Some(Errno::ENODEV));
}

/// `query_oa_units`: an OAG unit per main GT and an OAM unit per media GT,
/// each followed by its engines.
#[test]
fn query_oa_units_lists_units_and_their_engines() {
    for (preset, units) in [("dgpu", 2), ("max-node", 2)] {
        let b = open(preset).reply(DRM_XE_DEVICE_QUERY_OA_UNITS).unwrap();
        assert_eq!(u32_at(&b, 8), units, "{preset}");
        let mut at = 16;
        for i in 0..units {
            assert_eq!(u32_at(&b, at + 8), i, "{preset}: ids in order");
            assert!(u64_at(&b, at + 16) & DRM_XE_OA_CAPS_BASE != 0);
            let engines = u64_at(&b, at + 64) as usize;
            assert!(engines > 0);
            at += 72 + 8 * engines;
        }
        assert_eq!(at, b.len(), "{preset}");
    }
}

/// `query_pxp_status`: the size for everyone, then ENODEV where the
/// platform has no PXP (discrete BMG) and the status where it has (LNL).
#[test]
fn query_pxp_status_is_enodev_without_pxp() {
    let d = open("dgpu");
    assert_eq!(d.size(DRM_XE_DEVICE_QUERY_PXP_STATUS), 8);
    assert_eq!(d.reply(DRM_XE_DEVICE_QUERY_PXP_STATUS).err(), Some(Errno::ENODEV));
    let b = open("igpu").reply(DRM_XE_DEVICE_QUERY_PXP_STATUS).unwrap();
    assert_eq!((u32_at(&b, 0), u32_at(&b, 4)), (1, 1 << DRM_XE_PXP_TYPE_HWDRM));
}

/// `query_eu_stall`: supported on PVC and Xe2 (checked before the size),
/// with its record size, buffer size and sampling rates.
#[test]
fn query_eu_stall_reports_rates() {
    for preset in ["dgpu", "igpu", "max-node"] {
        let b = open(preset).reply(DRM_XE_DEVICE_QUERY_EU_STALL).unwrap();
        let n = u64_at(&b, 72) as usize;
        assert_eq!((u64_at(&b, 8), u64_at(&b, 16), n, b.len()), (DRM_XE_EU_STALL_CAPS_BASE, 64, 7, 80 + 8 * n), "{preset}");
        assert_eq!(u64_at(&b, 80), 251, "fastest first");
    }
}
