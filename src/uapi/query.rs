//! The replies of the DEVICE_QUERY ids the placement engine does not read
//! (HWCONFIG to EU_STALL, docs/xe-uapi.md §5.1), as the kernel's
//! `xe_drm.h` lays them out: the simulated driver answers them so that
//! third-party code (IGT, Intel's compute runtime) can open a simulated
//! device. Pure data, layouts asserted at compile time.

use core::mem::{align_of, offset_of, size_of};

use super::drm_xe_engine_class_instance;

/// `drm_xe_query_topology_mask.type`: DSS available for geometry.
pub const DRM_XE_TOPO_DSS_GEOMETRY: u16 = 1;
/// DSS available for compute.
pub const DRM_XE_TOPO_DSS_COMPUTE: u16 = 2;
/// Enabled L3 banks.
pub const DRM_XE_TOPO_L3_BANK: u16 = 3;
/// SIMD8 EUs per DSS.
pub const DRM_XE_TOPO_EU_PER_DSS: u16 = 4;
/// SIMD16 EUs per DSS.
pub const DRM_XE_TOPO_SIMD16_EU_PER_DSS: u16 = 5;

/// `drm_xe_query_uc_fw_version.uc_type`: the GuC submission interface.
pub const XE_QUERY_UC_TYPE_GUC_SUBMISSION: u16 = 0;
/// The HuC.
pub const XE_QUERY_UC_TYPE_HUC: u16 = 1;

/// `drm_xe_oa_unit.oa_unit_type` values.
pub const DRM_XE_OA_UNIT_TYPE_OAG: u32 = 0;
/// A media OA unit.
pub const DRM_XE_OA_UNIT_TYPE_OAM: u32 = 1;
/// `drm_xe_oa_unit.capabilities` bits.
pub const DRM_XE_OA_CAPS_BASE: u64 = 1 << 0;
/// Syncs in stream open and config.
pub const DRM_XE_OA_CAPS_SYNCS: u64 = 1 << 1;
/// The OA buffer size property.
pub const DRM_XE_OA_CAPS_OA_BUFFER_SIZE: u64 = 1 << 2;
/// The wait-number-of-reports property.
pub const DRM_XE_OA_CAPS_WAIT_NUM_REPORTS: u64 = 1 << 3;
/// OAM units.
pub const DRM_XE_OA_CAPS_OAM: u64 = 1 << 4;

/// `enum drm_xe_pxp_session_type`: HWDRM sessions.
pub const DRM_XE_PXP_TYPE_HWDRM: u32 = 1;

/// `drm_xe_query_eu_stall.capabilities`: EU stall sampling.
pub const DRM_XE_EU_STALL_CAPS_BASE: u64 = 1 << 0;

/// GT_TOPOLOGY: one mask's header; `num_bytes` of little-endian mask follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_query_topology_mask {
    /// The GT.
    pub gt_id: u16,
    /// `DRM_XE_TOPO_*`.
    pub mask_type: u16,
    /// Bytes of mask that follow.
    pub num_bytes: u32,
}
layout!(drm_xe_query_topology_mask, size 8, align 4, gt_id = 0, mask_type = 2, num_bytes = 4);

/// ENGINE_CYCLES: the engine and clock in, the counter and timestamps out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_query_engine_cycles {
    /// In: the engine.
    pub eci: drm_xe_engine_class_instance,
    /// In: the CPU clock (`clock_gettime` id).
    pub clockid: i32,
    /// Out: bits of the engine's cycle counter.
    pub width: u32,
    /// Out: the counter.
    pub engine_cycles: u64,
    /// Out: the CPU clock before reading it, ns.
    pub cpu_timestamp: u64,
    /// Out: ns taken around the read.
    pub cpu_delta: u64,
}
layout!(drm_xe_query_engine_cycles, size 40, align 8, eci = 0, clockid = 8, width = 12, engine_cycles = 16, cpu_timestamp = 24, cpu_delta = 32);

/// UC_FW_VERSION: the type in, the version out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_query_uc_fw_version {
    /// `XE_QUERY_UC_TYPE_*`.
    pub uc_type: u16,
    /// Must be zero.
    pub pad: u16,
    /// Out.
    pub branch_ver: u32,
    /// Out.
    pub major_ver: u32,
    /// Out.
    pub minor_ver: u32,
    /// Out.
    pub patch_ver: u32,
    /// Must be zero.
    pub pad2: u32,
    /// Must be zero.
    pub reserved: u64,
}
layout!(drm_xe_query_uc_fw_version, size 32, align 8, uc_type = 0, branch_ver = 4, major_ver = 8, patch_ver = 16, pad2 = 20, reserved = 24);

/// OA_UNITS: the reply's header; the units follow, each with its engines.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_query_oa_units {
    /// Zero.
    pub extensions: u64,
    /// Units that follow.
    pub num_oa_units: u32,
    /// Zero.
    pub pad: u32,
}
layout!(drm_xe_query_oa_units, size 16, align 8, num_oa_units = 8);

/// One OA unit; `num_engines` engine instances follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_oa_unit {
    /// Zero.
    pub extensions: u64,
    /// Its id (unique on the device).
    pub oa_unit_id: u32,
    /// `DRM_XE_OA_UNIT_TYPE_*`.
    pub oa_unit_type: u32,
    /// `DRM_XE_OA_CAPS_*`.
    pub capabilities: u64,
    /// Its timestamp frequency, Hz.
    pub oa_timestamp_freq: u64,
    /// The GT it belongs to (reserved before the field was named).
    pub gt_id: u16,
    /// Zero.
    pub reserved1: [u16; 3],
    /// Zero.
    pub reserved: [u64; 3],
    /// Engines that follow.
    pub num_engines: u64,
}
layout!(drm_xe_oa_unit, size 72, align 8, oa_unit_id = 8, capabilities = 16, oa_timestamp_freq = 24, gt_id = 32, num_engines = 64);

/// PXP_STATUS.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_query_pxp_status {
    /// 0: initialising, 1: ready.
    pub status: u32,
    /// A bit per `drm_xe_pxp_session_type` (NONE not reported).
    pub supported_session_types: u32,
}
layout!(drm_xe_query_pxp_status, size 8, align 4, supported_session_types = 4);

/// EU_STALL: the reply's header; `num_sampling_rates` u64 rates follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_query_eu_stall {
    /// Zero.
    pub extensions: u64,
    /// `DRM_XE_EU_STALL_CAPS_*`.
    pub capabilities: u64,
    /// Bytes per stall record.
    pub record_size: u64,
    /// The per-XeCore buffer, bytes.
    pub per_xecore_buf_size: u64,
    /// Zero.
    pub reserved: [u64; 5],
    /// Rates that follow, fastest first, in GPU cycles.
    pub num_sampling_rates: u64,
}
layout!(drm_xe_query_eu_stall, size 80, align 8, capabilities = 8, record_size = 16, per_xecore_buf_size = 24, num_sampling_rates = 72);
