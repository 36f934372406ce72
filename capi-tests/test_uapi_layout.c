/* include/xesvm/xe_drm.h must match the Xe uAPI byte for byte (docs/xe-uapi.md §3, §4).
 * Built a second time by scripts/test.sh with -DXESVM_KERNEL_HEADER against
 * the real header of linux-libc-dev 7.x (scripts/kernel-header.sh): xesvm's
 * copy defines its names with a prefix (xesvm_drm_xe_*, XESVM_DRM_*), so
 * both headers go into one unit and every check then holds for the kernel's
 * own layouts and values as well as for xesvm's. */
#include <stddef.h>
#include <xesvm/xe_drm.h>
#ifdef XESVM_KERNEL_HEADER
#include <drm/xe_drm.h>
#endif
#include "check.h"

#ifdef XESVM_KERNEL_HEADER
#define KSIZE(T, n) _Static_assert(sizeof(struct T) == (n), #T " size (kernel)")
#define KOFF(T, f, n) _Static_assert(offsetof(struct T, f) == (n), #T "." #f " offset (kernel)")
#define KCHECK(cond) CHECK(cond)
#else
#define KSIZE(T, n) _Static_assert(1, "")
#define KOFF(T, f, n) _Static_assert(1, "")
#define KCHECK(cond) ((void)0)
#endif
/* xesvm's struct xesvm_T, and with the kernel's header its struct T. */
#define SIZE(T, n) _Static_assert(sizeof(struct xesvm_##T) == (n), #T " size"); KSIZE(T, n)
#define OFF(T, f, n) _Static_assert(offsetof(struct xesvm_##T, f) == (n), #T "." #f " offset"); KOFF(T, f, n)
/* xesvm's XESVM_NAME, and with the kernel's header its NAME. */
#define VALUE(name, v) do { CHECK((uint32_t)(XESVM_##name) == (v)); KCHECK((uint32_t)(name) == (v)); } while (0)

SIZE(drm_xe_user_extension, 16);
SIZE(drm_xe_device_query, 40); OFF(drm_xe_device_query, size, 12); OFF(drm_xe_device_query, data, 16);
SIZE(drm_xe_query_mem_regions, 8); OFF(drm_xe_query_mem_regions, mem_regions, 8);
SIZE(drm_xe_mem_region, 88); OFF(drm_xe_mem_region, total_size, 8); OFF(drm_xe_mem_region, cpu_visible_used, 32);
SIZE(drm_xe_query_config, 8); OFF(drm_xe_query_config, info, 8);
SIZE(drm_xe_query_gt_list, 8); OFF(drm_xe_query_gt_list, gt_list, 8);
SIZE(drm_xe_gt, 96); OFF(drm_xe_gt, reference_clock, 12); OFF(drm_xe_gt, near_mem_regions, 16);
OFF(drm_xe_gt, far_mem_regions, 24); OFF(drm_xe_gt, ip_ver_major, 32); OFF(drm_xe_gt, reserved, 40);
SIZE(drm_xe_vm_create, 32); OFF(drm_xe_vm_create, vm_id, 12);
SIZE(drm_xe_vm_destroy, 24);
SIZE(drm_xe_vm_bind_op, 80); OFF(drm_xe_vm_bind_op, obj_offset, 16); OFF(drm_xe_vm_bind_op, cpu_addr_mirror_offset, 16);
OFF(drm_xe_vm_bind_op, range, 24); OFF(drm_xe_vm_bind_op, addr, 32); OFF(drm_xe_vm_bind_op, op, 40);
OFF(drm_xe_vm_bind_op, flags, 44); OFF(drm_xe_vm_bind_op, prefetch_mem_region_instance, 48); OFF(drm_xe_vm_bind_op, reserved, 56);
SIZE(drm_xe_vm_bind, 136); OFF(drm_xe_vm_bind, bind, 24); OFF(drm_xe_vm_bind, vector_of_binds, 24);
OFF(drm_xe_vm_bind, pad2, 104); OFF(drm_xe_vm_bind, num_syncs, 108); OFF(drm_xe_vm_bind, syncs, 112);
SIZE(drm_xe_sync, 48); OFF(drm_xe_sync, addr, 16); OFF(drm_xe_sync, handle, 16); OFF(drm_xe_sync, timeline_value, 24);
SIZE(drm_xe_wait_user_fence, 72); OFF(drm_xe_wait_user_fence, op, 16); OFF(drm_xe_wait_user_fence, value, 24);
OFF(drm_xe_wait_user_fence, timeout, 40); OFF(drm_xe_wait_user_fence, exec_queue_id, 48);
SIZE(drm_xe_madvise, 64); OFF(drm_xe_madvise, type, 28); OFF(drm_xe_madvise, preferred_mem_loc, 32);
OFF(drm_xe_madvise, preferred_mem_loc.region_instance, 38); OFF(drm_xe_madvise, atomic.val, 32);
OFF(drm_xe_madvise, purge_state_val.retained_ptr, 40); OFF(drm_xe_madvise, reserved, 48);
SIZE(drm_xe_mem_range_attr, 64); OFF(drm_xe_mem_range_attr, preferred_mem_loc.migration_policy, 28);
OFF(drm_xe_mem_range_attr, atomic, 32); OFF(drm_xe_mem_range_attr, pat_index, 40);
SIZE(drm_xe_vm_query_mem_range_attr, 64); OFF(drm_xe_vm_query_mem_range_attr, sizeof_mem_range_attr, 32);
OFF(drm_xe_vm_query_mem_range_attr, vector_of_mem_attr, 40);

int main(void)
{
	VALUE(DRM_IOCTL_XE_DEVICE_QUERY, 0xC0286440u);
	VALUE(DRM_IOCTL_XE_VM_CREATE, 0xC0206443u);
	VALUE(DRM_IOCTL_XE_VM_DESTROY, 0x40186444u);
	VALUE(DRM_IOCTL_XE_VM_BIND, 0x40886445u);
	VALUE(DRM_IOCTL_XE_WAIT_USER_FENCE, 0xC048644Au);
	VALUE(DRM_IOCTL_XE_MADVISE, 0x4040644Cu);
	VALUE(DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS, 0xC040644Du);
	VALUE(DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC, 0xFFFFFFFFu);
	VALUE(DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM, 0xFFFFFFFFu);
	return 0;
}
