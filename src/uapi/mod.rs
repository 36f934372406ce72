//! The Xe DRM uAPI that SVM needs: request numbers, `#[repr(C)]` structs and
//! constants, restated from `docs/xe-uapi.md` §2–§5 (no kernel header is copied).
//!
//! Pure data: no logic beyond the `_IOC` arithmetic and zeroed constructors.
//! Every struct carries compile-time assertions of its size, alignment and
//! the offsets of docs/xe-uapi.md §4, so a moved field breaks the build.
//!
//! Names are the kernel's, so that code reads like the kernel and IGT.
//! Items carry no doc comment of their own where the kernel's name and
//! docs/xe-uapi.md (§3 the ioctls, §4 each struct's fields, §5 the
//! constants) say what they are; restating every field of the kernel's
//! structs here would be a second copy to keep in step.
#![allow(non_camel_case_types)]
#![allow(missing_docs)]

use core::mem::{align_of, offset_of, size_of};

pub mod pagemap;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("xesvm encodes the 64-bit Xe uAPI layout (docs/xe-uapi.md §4); 32-bit targets are not supported");

// ---------------------------------------------------------------------------
// docs/xe-uapi.md §2 ioctl encoding (asm-generic, x86-64 / aarch64)

pub const IOC_NONE: u32 = 0;
pub const IOC_WRITE: u32 = 1;
pub const IOC_READ: u32 = 2;

/// `DRM_IOCTL_BASE`, the ioctl type byte `'d'`.
pub const DRM_IOCTL_BASE: u32 = 0x64;
/// Driver-private ioctls start at this nr.
pub const DRM_COMMAND_BASE: u32 = 0x40;
pub const DRM_COMMAND_END: u32 = 0xA0;

/// `_IOC(dir, type, nr, size)`: nr in bits 0-7, type 8-15, size 16-29, dir 30-31.
pub const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (DRM_IOCTL_BASE << 8) | nr
}
const fn drm_iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, nr, size_of::<T>())
}
const fn drm_iowr<T>(nr: u32) -> u32 {
    ioc(IOC_READ | IOC_WRITE, nr, size_of::<T>())
}

/// The fields of an encoded request (`_IOC_DIR`, `_IOC_TYPE`, `_IOC_NR`, `_IOC_SIZE`).
pub const fn ioc_dir(req: u32) -> u32 {
    req >> 30
}
pub const fn ioc_type(req: u32) -> u32 {
    (req >> 8) & 0xff
}
pub const fn ioc_nr(req: u32) -> u32 {
    req & 0xff
}
pub const fn ioc_size(req: u32) -> usize {
    ((req >> 16) & 0x3fff) as usize
}

// docs/xe-uapi.md §3 Xe ioctl numbers (offset from DRM_COMMAND_BASE)
pub const DRM_XE_DEVICE_QUERY: u32 = 0x00;
pub const DRM_XE_GEM_CREATE: u32 = 0x01;
pub const DRM_XE_GEM_MMAP_OFFSET: u32 = 0x02;
pub const DRM_XE_VM_CREATE: u32 = 0x03;
pub const DRM_XE_VM_DESTROY: u32 = 0x04;
pub const DRM_XE_VM_BIND: u32 = 0x05;
pub const DRM_XE_EXEC_QUEUE_CREATE: u32 = 0x06;
pub const DRM_XE_EXEC_QUEUE_DESTROY: u32 = 0x07;
pub const DRM_XE_EXEC_QUEUE_GET_PROPERTY: u32 = 0x08;
pub const DRM_XE_EXEC: u32 = 0x09;
pub const DRM_XE_WAIT_USER_FENCE: u32 = 0x0a;
pub const DRM_XE_OBSERVATION: u32 = 0x0b;
pub const DRM_XE_MADVISE: u32 = 0x0c;
pub const DRM_XE_VM_QUERY_MEM_RANGE_ATTRS: u32 = 0x0d;
pub const DRM_XE_EXEC_QUEUE_SET_PROPERTY: u32 = 0x0e;
pub const DRM_XE_VM_GET_PROPERTY: u32 = 0x0f;

pub const DRM_IOCTL_VERSION: u32 = drm_iowr::<drm_version>(0x00);
pub const DRM_IOCTL_XE_DEVICE_QUERY: u32 =
    drm_iowr::<drm_xe_device_query>(DRM_COMMAND_BASE + DRM_XE_DEVICE_QUERY);
pub const DRM_IOCTL_XE_VM_CREATE: u32 =
    drm_iowr::<drm_xe_vm_create>(DRM_COMMAND_BASE + DRM_XE_VM_CREATE);
pub const DRM_IOCTL_XE_VM_DESTROY: u32 =
    drm_iow::<drm_xe_vm_destroy>(DRM_COMMAND_BASE + DRM_XE_VM_DESTROY);
pub const DRM_IOCTL_XE_VM_BIND: u32 = drm_iow::<drm_xe_vm_bind>(DRM_COMMAND_BASE + DRM_XE_VM_BIND);
pub const DRM_IOCTL_XE_WAIT_USER_FENCE: u32 =
    drm_iowr::<drm_xe_wait_user_fence>(DRM_COMMAND_BASE + DRM_XE_WAIT_USER_FENCE);
pub const DRM_IOCTL_XE_MADVISE: u32 = drm_iow::<drm_xe_madvise>(DRM_COMMAND_BASE + DRM_XE_MADVISE);
pub const DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS: u32 = drm_iowr::<drm_xe_vm_query_mem_range_attr>(
    DRM_COMMAND_BASE + DRM_XE_VM_QUERY_MEM_RANGE_ATTRS,
);

// docs/xe-uapi.md §3: the request numbers as the doc lists them, checked against the formula.
const _: () = assert!(DRM_IOCTL_VERSION == 0xC040_6400);
const _: () = assert!(DRM_IOCTL_XE_DEVICE_QUERY == 0xC028_6440);
const _: () = assert!(DRM_IOCTL_XE_VM_CREATE == 0xC020_6443);
const _: () = assert!(DRM_IOCTL_XE_VM_DESTROY == 0x4018_6444);
const _: () = assert!(DRM_IOCTL_XE_VM_BIND == 0x4088_6445);
const _: () = assert!(DRM_IOCTL_XE_WAIT_USER_FENCE == 0xC048_644A);
const _: () = assert!(DRM_IOCTL_XE_MADVISE == 0x4040_644C);
const _: () = assert!(DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS == 0xC040_644D);

// ---------------------------------------------------------------------------
// docs/xe-uapi.md §5 constants

// docs/xe-uapi.md §5.1 device query ids
pub const DRM_XE_DEVICE_QUERY_ENGINES: u32 = 0;
pub const DRM_XE_DEVICE_QUERY_MEM_REGIONS: u32 = 1;
pub const DRM_XE_DEVICE_QUERY_CONFIG: u32 = 2;
pub const DRM_XE_DEVICE_QUERY_GT_LIST: u32 = 3;
pub const DRM_XE_DEVICE_QUERY_HWCONFIG: u32 = 4;
pub const DRM_XE_DEVICE_QUERY_GT_TOPOLOGY: u32 = 5;
pub const DRM_XE_DEVICE_QUERY_ENGINE_CYCLES: u32 = 6;
pub const DRM_XE_DEVICE_QUERY_UC_FW_VERSION: u32 = 7;
pub const DRM_XE_DEVICE_QUERY_OA_UNITS: u32 = 8;
pub const DRM_XE_DEVICE_QUERY_PXP_STATUS: u32 = 9;
pub const DRM_XE_DEVICE_QUERY_EU_STALL: u32 = 10;

// docs/xe-uapi.md §5.2 memory classes
pub const DRM_XE_MEM_REGION_CLASS_SYSMEM: u16 = 0;
pub const DRM_XE_MEM_REGION_CLASS_VRAM: u16 = 1;

// docs/xe-uapi.md §5.3 query config
pub const DRM_XE_QUERY_CONFIG_REV_AND_DEVICE_ID: usize = 0;
pub const DRM_XE_QUERY_CONFIG_FLAGS: usize = 1;
pub const DRM_XE_QUERY_CONFIG_MIN_ALIGNMENT: usize = 2;
pub const DRM_XE_QUERY_CONFIG_VA_BITS: usize = 3;
pub const DRM_XE_QUERY_CONFIG_MAX_EXEC_QUEUE_PRIORITY: usize = 4;
pub const DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM: u64 = 1 << 0;
pub const DRM_XE_QUERY_CONFIG_FLAG_HAS_LOW_LATENCY: u64 = 1 << 1;
pub const DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR: u64 = 1 << 2;
pub const DRM_XE_QUERY_CONFIG_FLAG_HAS_NO_COMPRESSION_HINT: u64 = 1 << 3;
pub const DRM_XE_QUERY_CONFIG_FLAG_HAS_DISABLE_STATE_CACHE_PERF_FIX: u64 = 1 << 4;
pub const DRM_XE_QUERY_CONFIG_FLAG_HAS_PURGING_SUPPORT: u64 = 1 << 5;

// docs/xe-uapi.md §5.4 engine classes
pub const DRM_XE_ENGINE_CLASS_RENDER: u16 = 0;
pub const DRM_XE_ENGINE_CLASS_COPY: u16 = 1;
pub const DRM_XE_ENGINE_CLASS_VIDEO_DECODE: u16 = 2;
pub const DRM_XE_ENGINE_CLASS_VIDEO_ENHANCE: u16 = 3;
pub const DRM_XE_ENGINE_CLASS_COMPUTE: u16 = 4;
pub const DRM_XE_ENGINE_CLASS_VM_BIND: u16 = 5;

// docs/xe-uapi.md §5.4 GT types
pub const DRM_XE_QUERY_GT_TYPE_MAIN: u16 = 0;
pub const DRM_XE_QUERY_GT_TYPE_MEDIA: u16 = 1;

// docs/xe-uapi.md §5.5 VM create flags
pub const DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE: u32 = 1 << 0;
pub const DRM_XE_VM_CREATE_FLAG_LR_MODE: u32 = 1 << 1;
pub const DRM_XE_VM_CREATE_FLAG_FAULT_MODE: u32 = 1 << 2;
pub const DRM_XE_VM_CREATE_FLAG_NO_VM_OVERCOMMIT: u32 = 1 << 3;

// docs/xe-uapi.md §5.6 VM bind ops and flags
pub const DRM_XE_VM_BIND_OP_MAP: u32 = 0x0;
pub const DRM_XE_VM_BIND_OP_UNMAP: u32 = 0x1;
pub const DRM_XE_VM_BIND_OP_MAP_USERPTR: u32 = 0x2;
pub const DRM_XE_VM_BIND_OP_UNMAP_ALL: u32 = 0x3;
pub const DRM_XE_VM_BIND_OP_PREFETCH: u32 = 0x4;
pub const DRM_XE_VM_BIND_FLAG_READONLY: u32 = 1 << 0;
pub const DRM_XE_VM_BIND_FLAG_IMMEDIATE: u32 = 1 << 1;
pub const DRM_XE_VM_BIND_FLAG_NULL: u32 = 1 << 2;
pub const DRM_XE_VM_BIND_FLAG_DUMPABLE: u32 = 1 << 3;
pub const DRM_XE_VM_BIND_FLAG_CHECK_PXP: u32 = 1 << 4;
pub const DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR: u32 = 1 << 5;
pub const DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET: u32 = 1 << 6;
pub const DRM_XE_VM_BIND_FLAG_DECOMPRESS: u32 = 1 << 7;
/// `prefetch_mem_region_instance` value meaning "use madvise's preferred location".
pub const DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC: u32 = 0xFFFF_FFFF;

// docs/xe-uapi.md §5.7 syncs and user fences
pub const DRM_XE_SYNC_TYPE_SYNCOBJ: u32 = 0x0;
pub const DRM_XE_SYNC_TYPE_TIMELINE_SYNCOBJ: u32 = 0x1;
pub const DRM_XE_SYNC_TYPE_USER_FENCE: u32 = 0x2;
pub const DRM_XE_SYNC_FLAG_SIGNAL: u32 = 1 << 0;
pub const DRM_XE_MAX_SYNCS: u32 = 1024;
pub const DRM_XE_UFENCE_WAIT_OP_EQ: u16 = 0x0;
pub const DRM_XE_UFENCE_WAIT_OP_NEQ: u16 = 0x1;
pub const DRM_XE_UFENCE_WAIT_OP_GT: u16 = 0x2;
pub const DRM_XE_UFENCE_WAIT_OP_GTE: u16 = 0x3;
pub const DRM_XE_UFENCE_WAIT_OP_LT: u16 = 0x4;
pub const DRM_XE_UFENCE_WAIT_OP_LTE: u16 = 0x5;
pub const DRM_XE_UFENCE_WAIT_FLAG_ABSTIME: u16 = 1 << 0;

// docs/xe-uapi.md §5.8 madvise
pub const DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC: u32 = 0;
pub const DRM_XE_MEM_RANGE_ATTR_ATOMIC: u32 = 1;
pub const DRM_XE_MEM_RANGE_ATTR_PAT: u32 = 2;
pub const DRM_XE_VMA_ATTR_PURGEABLE_STATE: u32 = 3;
pub const DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE: u32 = 0;
/// -1 as the u32 the struct carries.
pub const DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM: u32 = 0xFFFF_FFFF;
pub const DRM_XE_MIGRATE_ALL_PAGES: u16 = 0;
pub const DRM_XE_MIGRATE_ONLY_SYSTEM_PAGES: u16 = 1;
pub const DRM_XE_ATOMIC_UNDEFINED: u32 = 0;
pub const DRM_XE_ATOMIC_DEVICE: u32 = 1;
pub const DRM_XE_ATOMIC_GLOBAL: u32 = 2;
pub const DRM_XE_ATOMIC_CPU: u32 = 3;
pub const DRM_XE_VMA_PURGEABLE_STATE_WILLNEED: u32 = 0;
pub const DRM_XE_VMA_PURGEABLE_STATE_DONTNEED: u32 = 1;

// ---------------------------------------------------------------------------
// docs/xe-uapi.md §4 structs

macro_rules! zeroed_default {
    ($($t:ty),* $(,)?) => {$(
        impl Default for $t {
            fn default() -> Self {
                // SAFETY: every uAPI struct is plain integers (and unions of them): all-zero is
                // valid and is what docs/xe-uapi.md §9.1 asks for (pad/reserved/extensions zero).
                unsafe { core::mem::zeroed() }
            }
        }
    )*};
}

/// Asserts size, alignment and each listed field offset at compile time.
macro_rules! layout {
    ($t:ty, size $s:expr, align $a:expr $(, $f:ident $(. $g:ident)* = $o:expr)* $(,)?) => {
        const _: () = assert!(size_of::<$t>() == $s);
        const _: () = assert!(align_of::<$t>() == $a);
        $(const _: () = assert!(offset_of!($t, $f $(. $g)*) == $o);)*
    };
}

// The query replies use the macro above: declared after it.
pub mod query;

/// docs/xe-uapi.md §4.1
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_user_extension {
    pub next_extension: u64,
    pub name: u32,
    pub pad: u32,
}
layout!(drm_xe_user_extension, size 16, align 8, next_extension = 0, name = 8, pad = 12);

/// docs/xe-uapi.md §4.3
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_device_query {
    pub extensions: u64,
    pub query: u32,
    pub size: u32,
    pub data: u64,
    pub reserved: [u64; 2],
}
layout!(drm_xe_device_query, size 40, align 8, extensions = 0, query = 8, size = 12, data = 16, reserved = 24);

/// docs/xe-uapi.md §4.4 header of the MEM_REGIONS reply; `num_mem_regions` × [`drm_xe_mem_region`] follow.
// align(8): the C struct ends in a flexible array of u64-aligned elements.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_query_mem_regions {
    pub num_mem_regions: u32,
    pub pad: u32,
}
layout!(drm_xe_query_mem_regions, size 8, align 8, num_mem_regions = 0, pad = 4);

/// docs/xe-uapi.md §4.4
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_mem_region {
    pub mem_class: u16,
    pub instance: u16,
    pub min_page_size: u32,
    pub total_size: u64,
    pub used: u64,
    pub cpu_visible_size: u64,
    pub cpu_visible_used: u64,
    pub reserved: [u64; 6],
}
layout!(drm_xe_mem_region, size 88, align 8, mem_class = 0, instance = 2, min_page_size = 4,
    total_size = 8, used = 16, cpu_visible_size = 24, cpu_visible_used = 32, reserved = 40);

/// docs/xe-uapi.md §4.5 header of the CONFIG reply; `num_params` × u64 follow.
// align(8): the C struct ends in a flexible array of u64-aligned elements.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_query_config {
    pub num_params: u32,
    pub pad: u32,
}
layout!(drm_xe_query_config, size 8, align 8, num_params = 0, pad = 4);

/// docs/xe-uapi.md §4.6 header of the GT_LIST reply; `num_gt` × [`drm_xe_gt`] follow.
// align(8): the C struct ends in a flexible array of u64-aligned elements.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_query_gt_list {
    pub num_gt: u32,
    pub pad: u32,
}
layout!(drm_xe_query_gt_list, size 8, align 8, num_gt = 0, pad = 4);

/// Byte offset of the first element after each flexible-array header (the C
/// headers' alignment of the u64-aligned element arrays puts them at 8).
pub const QUERY_ARRAY_OFFSET: usize = 8;

/// docs/xe-uapi.md §4.6 engines: one engine instance (size 8, align 2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_engine_class_instance {
    pub engine_class: u16,
    pub engine_instance: u16,
    pub gt_id: u16,
    pub pad: u16,
}
layout!(drm_xe_engine_class_instance, size 8, align 2, engine_class = 0, engine_instance = 2, gt_id = 4, pad = 6);

/// docs/xe-uapi.md §4.6 engines: one element of the ENGINES reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_engine {
    pub instance: drm_xe_engine_class_instance,
    pub reserved: [u64; 3],
}
layout!(drm_xe_engine, size 32, align 8, instance = 0, reserved = 8);

/// docs/xe-uapi.md §4.6 header of the ENGINES reply; `num_engines` × [`drm_xe_engine`] follow.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_query_engines {
    pub num_engines: u32,
    pub pad: u32,
}
layout!(drm_xe_query_engines, size 8, align 8, num_engines = 0, pad = 4);

/// docs/xe-uapi.md §4.6 (`type` is `gt_type` here: `type` is a Rust keyword).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_gt {
    pub gt_type: u16,
    pub tile_id: u16,
    pub gt_id: u16,
    pub pad: [u16; 3],
    pub reference_clock: u32,
    pub near_mem_regions: u64,
    pub far_mem_regions: u64,
    pub ip_ver_major: u16,
    pub ip_ver_minor: u16,
    pub ip_ver_rev: u16,
    pub pad2: u16,
    pub reserved: [u64; 7],
}
layout!(drm_xe_gt, size 96, align 8, gt_type = 0, tile_id = 2, gt_id = 4, pad = 6,
    reference_clock = 12, near_mem_regions = 16, far_mem_regions = 24, ip_ver_major = 32,
    ip_ver_minor = 34, ip_ver_rev = 36, pad2 = 38, reserved = 40);

/// docs/xe-uapi.md §4.7
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_vm_create {
    pub extensions: u64,
    pub flags: u32,
    pub vm_id: u32,
    pub reserved: [u64; 2],
}
layout!(drm_xe_vm_create, size 32, align 8, extensions = 0, flags = 8, vm_id = 12, reserved = 16);

/// docs/xe-uapi.md §4.8
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_vm_destroy {
    pub vm_id: u32,
    pub pad: u32,
    pub reserved: [u64; 2],
}
layout!(drm_xe_vm_destroy, size 24, align 8, vm_id = 0, pad = 4, reserved = 8);

/// docs/xe-uapi.md §4.9. `obj_offset` shares its 8 bytes with `userptr` and
/// `cpu_addr_mirror_offset` (all u64/s64, so one field serves).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_vm_bind_op {
    pub extensions: u64,
    pub obj: u32,
    pub pat_index: u16,
    pub pad: u16,
    pub obj_offset: u64,
    pub range: u64,
    pub addr: u64,
    pub op: u32,
    pub flags: u32,
    pub prefetch_mem_region_instance: u32,
    pub pad2: u32,
    pub reserved: [u64; 3],
}
layout!(drm_xe_vm_bind_op, size 80, align 8, extensions = 0, obj = 8, pat_index = 12, pad = 14,
    obj_offset = 16, range = 24, addr = 32, op = 40, flags = 44,
    prefetch_mem_region_instance = 48, pad2 = 52, reserved = 56);

/// docs/xe-uapi.md §4.10 inline op (`num_binds == 1`) or user pointer to an op array.
#[repr(C)]
#[derive(Clone, Copy)]
pub union drm_xe_vm_bind_ops {
    pub bind: drm_xe_vm_bind_op,
    pub vector_of_binds: u64,
}

/// docs/xe-uapi.md §4.10
#[repr(C)]
#[derive(Clone, Copy)]
pub struct drm_xe_vm_bind {
    pub extensions: u64,
    pub vm_id: u32,
    pub exec_queue_id: u32,
    pub pad: u32,
    pub num_binds: u32,
    pub ops: drm_xe_vm_bind_ops,
    pub pad2: u32,
    pub num_syncs: u32,
    pub syncs: u64,
    pub reserved: [u64; 2],
}
layout!(drm_xe_vm_bind, size 136, align 8, extensions = 0, vm_id = 8, exec_queue_id = 12,
    pad = 16, num_binds = 20, ops = 24, ops.bind = 24, ops.vector_of_binds = 24, pad2 = 104,
    num_syncs = 108, syncs = 112, reserved = 120);

/// docs/xe-uapi.md §4.11. `addr` is the user-fence address, or a syncobj handle in its low 32 bits.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_sync {
    pub extensions: u64,
    pub sync_type: u32,
    pub flags: u32,
    pub addr: u64,
    pub timeline_value: u64,
    pub reserved: [u64; 2],
}
layout!(drm_xe_sync, size 48, align 8, extensions = 0, sync_type = 8, flags = 12, addr = 16,
    timeline_value = 24, reserved = 32);

/// docs/xe-uapi.md §4.12
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_wait_user_fence {
    pub extensions: u64,
    pub addr: u64,
    pub op: u16,
    pub flags: u16,
    pub pad: u32,
    pub value: u64,
    pub mask: u64,
    pub timeout: i64,
    pub exec_queue_id: u32,
    pub pad2: u32,
    pub reserved: [u64; 2],
}
layout!(drm_xe_wait_user_fence, size 72, align 8, extensions = 0, addr = 8, op = 16, flags = 18,
    pad = 20, value = 24, mask = 32, timeout = 40, exec_queue_id = 48, pad2 = 52, reserved = 56);

/// docs/xe-uapi.md §4.13 `preferred_mem_loc` (type 0). `devmem_fd` is read as signed by the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_madvise_preferred_mem_loc {
    pub devmem_fd: u32,
    pub migration_policy: u16,
    /// 7.0+: VRAM instance on the device of `devmem_fd`; 6.18/6.19: `pad`, must be zero.
    pub region_instance: u16,
    pub reserved: u64,
}
layout!(drm_xe_madvise_preferred_mem_loc, size 16, align 8, devmem_fd = 0,
    migration_policy = 4, region_instance = 6, reserved = 8);

/// docs/xe-uapi.md §4.13 `atomic` (type 1) and `pat_index` (type 2) share this shape.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_madvise_val {
    pub val: u32,
    pub pad: u32,
    pub reserved: u64,
}
layout!(drm_xe_madvise_val, size 16, align 8, val = 0, pad = 4, reserved = 8);

/// docs/xe-uapi.md §4.13 `purge_state_val` (type 3, 7.1+, BOs only).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_madvise_purge_state {
    pub val: u32,
    pub pad: u32,
    pub retained_ptr: u64,
}
layout!(drm_xe_madvise_purge_state, size 16, align 8, val = 0, pad = 4, retained_ptr = 8);

/// docs/xe-uapi.md §4.13 the 16-byte union selected by `drm_xe_madvise::type`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union drm_xe_madvise_attr {
    pub preferred_mem_loc: drm_xe_madvise_preferred_mem_loc,
    pub atomic: drm_xe_madvise_val,
    pub pat_index: drm_xe_madvise_val,
    pub purge_state_val: drm_xe_madvise_purge_state,
}

/// docs/xe-uapi.md §4.13 (`type` is `attr_type` here).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct drm_xe_madvise {
    pub extensions: u64,
    pub start: u64,
    pub range: u64,
    pub vm_id: u32,
    pub attr_type: u32,
    pub attr: drm_xe_madvise_attr,
    pub reserved: [u64; 2],
}
layout!(drm_xe_madvise, size 64, align 8, extensions = 0, start = 8, range = 16, vm_id = 24,
    attr_type = 28, attr = 32, attr.preferred_mem_loc = 32, attr.atomic = 32, attr.pat_index = 32,
    reserved = 48);
const _: () = assert!(
    offset_of!(drm_xe_madvise, attr) + offset_of!(drm_xe_madvise_preferred_mem_loc, region_instance)
        == 38
);

/// docs/xe-uapi.md §4.14 `preferred_mem_loc` as reported by the query (policy is u32 here).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_mem_range_attr_pref_loc {
    pub devmem_fd: u32,
    pub migration_policy: u32,
}
/// docs/xe-uapi.md §4.14 `atomic` / `pat_index` as reported by the query.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_xe_mem_range_attr_val {
    pub val: u32,
    pub reserved: u32,
}

/// docs/xe-uapi.md §4.14 one element of the VM_QUERY_MEM_RANGE_ATTRS output vector.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_mem_range_attr {
    pub extensions: u64,
    pub start: u64,
    pub end: u64,
    pub preferred_mem_loc: drm_xe_mem_range_attr_pref_loc,
    pub atomic: drm_xe_mem_range_attr_val,
    pub pat_index: drm_xe_mem_range_attr_val,
    pub reserved: [u64; 2],
}
layout!(drm_xe_mem_range_attr, size 64, align 8, extensions = 0, start = 8, end = 16,
    preferred_mem_loc = 24, preferred_mem_loc.migration_policy = 28, atomic = 32,
    pat_index = 40, reserved = 48);

/// docs/xe-uapi.md §4.15
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_xe_vm_query_mem_range_attr {
    pub extensions: u64,
    pub vm_id: u32,
    pub num_mem_ranges: u32,
    pub start: u64,
    pub range: u64,
    pub sizeof_mem_range_attr: u64,
    pub vector_of_mem_attr: u64,
    pub reserved: [u64; 2],
}
layout!(drm_xe_vm_query_mem_range_attr, size 64, align 8, extensions = 0, vm_id = 8,
    num_mem_ranges = 12, start = 16, range = 24, sizeof_mem_range_attr = 32,
    vector_of_mem_attr = 40, reserved = 48);

/// docs/xe-uapi.md §3 `struct drm_version` (DRM core, DRM_IOCTL_VERSION). Pointers are carried as u64.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct drm_version {
    pub version_major: i32,
    pub version_minor: i32,
    pub version_patchlevel: i32,
    pub name_len: u64,
    pub name: u64,
    pub date_len: u64,
    pub date: u64,
    pub desc_len: u64,
    pub desc: u64,
}
layout!(drm_version, size 64, align 8, version_major = 0, version_minor = 4,
    version_patchlevel = 8, name_len = 16, name = 24, date_len = 32, date = 40, desc_len = 48,
    desc = 56);

zeroed_default!(
    drm_xe_user_extension,
    drm_xe_device_query,
    drm_xe_query_mem_regions,
    drm_xe_mem_region,
    drm_xe_query_config,
    drm_xe_query_gt_list,
    drm_xe_gt,
    drm_xe_vm_create,
    drm_xe_vm_destroy,
    drm_xe_vm_bind_op,
    drm_xe_vm_bind,
    drm_xe_sync,
    drm_xe_wait_user_fence,
    drm_xe_madvise,
    drm_xe_mem_range_attr,
    drm_xe_vm_query_mem_range_attr,
    drm_version,
);

/// The uAPI structs whose kernel-facing size is encoded in a request; lets the
/// seam check that a request and a struct agree.
pub const fn request_size_matches(req: u32, size: usize) -> bool {
    ioc_size(req) == size
}

/// The kernel's name of a request (the trace log's), or "ioctl" for one
/// the library does not issue.
pub const fn request_name(req: u32) -> &'static str {
    match req {
        DRM_IOCTL_VERSION => "DRM_IOCTL_VERSION",
        DRM_IOCTL_XE_DEVICE_QUERY => "DRM_IOCTL_XE_DEVICE_QUERY",
        DRM_IOCTL_XE_VM_CREATE => "DRM_IOCTL_XE_VM_CREATE",
        DRM_IOCTL_XE_VM_DESTROY => "DRM_IOCTL_XE_VM_DESTROY",
        DRM_IOCTL_XE_VM_BIND => "DRM_IOCTL_XE_VM_BIND",
        DRM_IOCTL_XE_WAIT_USER_FENCE => "DRM_IOCTL_XE_WAIT_USER_FENCE",
        DRM_IOCTL_XE_MADVISE => "DRM_IOCTL_XE_MADVISE",
        DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS => "DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS",
        _ => "ioctl",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioc_fields_round_trip() {
        let r = DRM_IOCTL_XE_VM_BIND;
        assert_eq!(ioc_dir(r), IOC_WRITE);
        assert_eq!(ioc_type(r), DRM_IOCTL_BASE);
        assert_eq!(ioc_nr(r), DRM_COMMAND_BASE + DRM_XE_VM_BIND);
        assert_eq!(ioc_size(r), size_of::<drm_xe_vm_bind>());
        assert_eq!(ioc_dir(DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS), IOC_READ | IOC_WRITE);
        assert!(request_size_matches(DRM_IOCTL_XE_MADVISE, 64));
        assert_eq!(request_name(DRM_IOCTL_XE_VM_BIND), "DRM_IOCTL_XE_VM_BIND");
        assert_eq!(request_name(0), "ioctl");
    }

    #[test]
    fn defaults_are_all_zero() {
        let b = drm_xe_vm_bind::default();
        // SAFETY: reading the union's integer member of a zeroed value.
        assert_eq!(unsafe { b.ops.vector_of_binds }, 0);
        let m = drm_xe_madvise::default();
        // SAFETY: reading an integer member of a zeroed union.
        assert_eq!(unsafe { m.attr.preferred_mem_loc.region_instance }, 0);
        assert_eq!(m.reserved, [0, 0]);
    }
}
