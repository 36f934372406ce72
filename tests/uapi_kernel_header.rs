//! src/uapi against the real Linux uAPI header: with XESVM_KERNEL_HEADERS
//! naming an include directory holding `drm/xe_drm.h` (scripts/test.sh
//! fetches linux-libc-dev 7.x there with scripts/kernel-header.sh), a C
//! program built against that header prints every size, offset, request
//! number and constant the library encodes, and each must equal the Rust
//! side's. Without it the test says it skipped.

use core::mem::{offset_of, size_of};
use std::process::Command;

use xesvm::uapi::query::*;
use xesvm::uapi::*;

/// (C expression, the Rust side's value).
fn facts() -> Vec<(&'static str, u64)> {
    macro_rules! size {
        ($c:literal, $t:ty) => {
            (concat!("sizeof(struct ", $c, ")"), size_of::<$t>() as u64)
        };
    }
    macro_rules! off {
        ($c:literal, $cf:literal, $t:ty, $($f:tt)+) => {
            (concat!("offsetof(struct ", $c, ", ", $cf, ")"), offset_of!($t, $($f)+) as u64)
        };
    }
    macro_rules! val {
        ($c:ident) => {
            (stringify!($c), $c as u64)
        };
    }
    vec![
        size!("drm_xe_user_extension", drm_xe_user_extension),
        size!("drm_xe_device_query", drm_xe_device_query),
        off!("drm_xe_device_query", "size", drm_xe_device_query, size),
        off!("drm_xe_device_query", "data", drm_xe_device_query, data),
        size!("drm_xe_query_mem_regions", drm_xe_query_mem_regions),
        size!("drm_xe_mem_region", drm_xe_mem_region),
        off!("drm_xe_mem_region", "total_size", drm_xe_mem_region, total_size),
        off!("drm_xe_mem_region", "cpu_visible_used", drm_xe_mem_region, cpu_visible_used),
        size!("drm_xe_query_config", drm_xe_query_config),
        size!("drm_xe_query_gt_list", drm_xe_query_gt_list),
        size!("drm_xe_gt", drm_xe_gt),
        off!("drm_xe_gt", "reference_clock", drm_xe_gt, reference_clock),
        off!("drm_xe_gt", "near_mem_regions", drm_xe_gt, near_mem_regions),
        off!("drm_xe_gt", "ip_ver_major", drm_xe_gt, ip_ver_major),
        size!("drm_xe_engine_class_instance", drm_xe_engine_class_instance),
        size!("drm_xe_engine", drm_xe_engine),
        size!("drm_xe_query_engines", drm_xe_query_engines),
        size!("drm_xe_vm_create", drm_xe_vm_create),
        off!("drm_xe_vm_create", "vm_id", drm_xe_vm_create, vm_id),
        size!("drm_xe_vm_destroy", drm_xe_vm_destroy),
        size!("drm_xe_vm_bind_op", drm_xe_vm_bind_op),
        off!("drm_xe_vm_bind_op", "range", drm_xe_vm_bind_op, range),
        off!("drm_xe_vm_bind_op", "op", drm_xe_vm_bind_op, op),
        off!("drm_xe_vm_bind_op", "prefetch_mem_region_instance", drm_xe_vm_bind_op, prefetch_mem_region_instance),
        size!("drm_xe_vm_bind", drm_xe_vm_bind),
        off!("drm_xe_vm_bind", "num_binds", drm_xe_vm_bind, num_binds),
        off!("drm_xe_vm_bind", "num_syncs", drm_xe_vm_bind, num_syncs),
        off!("drm_xe_vm_bind", "syncs", drm_xe_vm_bind, syncs),
        size!("drm_xe_sync", drm_xe_sync),
        off!("drm_xe_sync", "timeline_value", drm_xe_sync, timeline_value),
        size!("drm_xe_wait_user_fence", drm_xe_wait_user_fence),
        off!("drm_xe_wait_user_fence", "timeout", drm_xe_wait_user_fence, timeout),
        off!("drm_xe_wait_user_fence", "exec_queue_id", drm_xe_wait_user_fence, exec_queue_id),
        size!("drm_xe_madvise", drm_xe_madvise),
        off!("drm_xe_madvise", "type", drm_xe_madvise, attr_type),
        off!("drm_xe_madvise", "preferred_mem_loc.region_instance", drm_xe_madvise, attr.preferred_mem_loc.region_instance),
        off!("drm_xe_madvise", "reserved", drm_xe_madvise, reserved),
        size!("drm_xe_mem_range_attr", drm_xe_mem_range_attr),
        off!("drm_xe_mem_range_attr", "atomic", drm_xe_mem_range_attr, atomic),
        size!("drm_xe_vm_query_mem_range_attr", drm_xe_vm_query_mem_range_attr),
        off!("drm_xe_vm_query_mem_range_attr", "vector_of_mem_attr", drm_xe_vm_query_mem_range_attr, vector_of_mem_attr),
        size!("drm_xe_query_topology_mask", drm_xe_query_topology_mask),
        size!("drm_xe_query_engine_cycles", drm_xe_query_engine_cycles),
        off!("drm_xe_query_engine_cycles", "cpu_delta", drm_xe_query_engine_cycles, cpu_delta),
        size!("drm_xe_query_uc_fw_version", drm_xe_query_uc_fw_version),
        size!("drm_xe_query_oa_units", drm_xe_query_oa_units),
        size!("drm_xe_oa_unit", drm_xe_oa_unit),
        off!("drm_xe_oa_unit", "num_engines", drm_xe_oa_unit, num_engines),
        size!("drm_xe_query_pxp_status", drm_xe_query_pxp_status),
        size!("drm_xe_query_eu_stall", drm_xe_query_eu_stall),
        off!("drm_xe_query_eu_stall", "num_sampling_rates", drm_xe_query_eu_stall, num_sampling_rates),
        val!(DRM_IOCTL_XE_DEVICE_QUERY),
        val!(DRM_IOCTL_XE_VM_CREATE),
        val!(DRM_IOCTL_XE_VM_DESTROY),
        val!(DRM_IOCTL_XE_VM_BIND),
        val!(DRM_IOCTL_XE_WAIT_USER_FENCE),
        val!(DRM_IOCTL_XE_MADVISE),
        val!(DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS),
        val!(DRM_XE_DEVICE_QUERY_EU_STALL),
        val!(DRM_XE_VM_CREATE_FLAG_FAULT_MODE),
        val!(DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR),
        val!(DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET),
        val!(DRM_XE_VM_BIND_OP_PREFETCH),
        val!(DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR),
        val!(DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC),
        val!(DRM_XE_ATOMIC_CPU),
        val!(DRM_XE_TOPO_SIMD16_EU_PER_DSS),
        val!(XE_QUERY_UC_TYPE_HUC),
        val!(DRM_XE_EU_STALL_CAPS_BASE),
    ]
}

#[test]
fn the_rust_uapi_matches_the_installed_kernel_header() {
    let Some(inc) = std::env::var_os("XESVM_KERNEL_HEADERS") else {
        eprintln!("skipped: XESVM_KERNEL_HEADERS is not set (scripts/test.sh sets it from scripts/kernel-header.sh)");
        return;
    };
    let facts = facts();
    let dir = std::env::temp_dir().join(format!("xesvm-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = String::from("#include <stddef.h>\n#include <stdio.h>\n#include <drm/xe_drm.h>\nint main(void) {\n");
    for (expr, _) in &facts {
        c.push_str(&format!("\tprintf(\"%llu\\n\", (unsigned long long)({expr}));\n"));
    }
    c.push_str("\treturn 0;\n}\n");
    std::fs::write(dir.join("facts.c"), c).unwrap();
    let built = Command::new("cc").arg("-std=gnu11").arg("-I").arg(&inc).arg(dir.join("facts.c")).arg("-o").arg(dir.join("facts")).status().expect("cc");
    assert!(built.success(), "the program against {} did not build", inc.to_string_lossy());
    let out = Command::new(dir.join("facts")).output().unwrap();
    let values: Vec<u64> = String::from_utf8(out.stdout).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(values.len(), facts.len());
    let wrong: Vec<String> = facts.iter().zip(&values).filter(|((_, rust), c)| rust != *c).map(|((e, rust), c)| format!("{e}: kernel {c}, xesvm {rust}")).collect();
    std::fs::remove_dir_all(&dir).ok();
    assert!(wrong.is_empty(), "src/uapi differs from {}:\n{}", inc.to_string_lossy(), wrong.join("\n"));
    eprintln!("{} facts equal to {}", facts.len(), inc.to_string_lossy());
}
