/*
 * xesvm/xe_drm.h: the subset of the Intel Xe DRM uAPI that SVM uses, for C
 * code that talks to xesvm's simulated driver (svm_sim_ioctl) on machines
 * whose kernel headers predate Xe.
 *
 * Every name here is the kernel's with a prefix: struct and enum tags
 * `xesvm_` (struct xesvm_drm_xe_madvise), macros and enumerators `XESVM_`
 * (XESVM_DRM_IOCTL_XE_MADVISE, XESVM_DRM_XE_VM_BIND_OP_PREFETCH); field
 * names and the anonymous unions are the kernel's, so code moves between the
 * two by the prefix alone. The header defines no name of the kernel's own
 * <drm/xe_drm.h> and does not use its include guard (_XE_DRM_H_): a
 * runtime's own copy of that header (linux-libc-dev's, libdrm's, the one
 * Intel's compute runtime vendors) is never hidden or redefined, whether it
 * is included before or after this one, and it stays the only source of the
 * kernel's names. Restating the kernel's names under its guard (whichever
 * header came first would win) hid the complete header behind this subset,
 * and guarding each kernel name separately cannot work when the kernel's
 * header comes second: a struct cannot be defined twice.
 *
 * The structs are restated from xesvm's reference (docs/xe-uapi.md §4, checked
 * there against the kernel's xe_drm.h). capi-tests/test_uapi_layout.c checks
 * every size, offset and request number, and, built against linux-libc-dev
 * 7.x's header, that each equals the kernel's; capi-tests/
 * kernel_header_both_orders.c includes both headers in either order.
 *
 * Maintained by hand (cbindgen cannot express anonymous unions); the Rust
 * side is src/uapi, with the same compile-time layout checks.
 */
#ifndef XESVM_XE_DRM_H
#define XESVM_XE_DRM_H

#include <stdint.h>

#if defined(__cplusplus)
extern "C" {
#endif

/* _IOC(dir, 'd', nr, size) as the DRM headers build it (docs/xe-uapi.md §2). */
#define XESVM_DRM_IOC(dir, nr, size) \
	((uint32_t)(((uint32_t)(dir) << 30) | ((uint32_t)(size) << 16) | (0x64u << 8) | (uint32_t)(nr)))
#define XESVM_DRM_COMMAND_BASE 0x40

#define XESVM_DRM_XE_DEVICE_QUERY		0x00
#define XESVM_DRM_XE_VM_CREATE		0x03
#define XESVM_DRM_XE_VM_DESTROY		0x04
#define XESVM_DRM_XE_VM_BIND			0x05
#define XESVM_DRM_XE_WAIT_USER_FENCE		0x0a
#define XESVM_DRM_XE_MADVISE			0x0c
#define XESVM_DRM_XE_VM_QUERY_MEM_RANGE_ATTRS	0x0d

#define XESVM_DRM_IOCTL_XE_DEVICE_QUERY  XESVM_DRM_IOC(3, XESVM_DRM_COMMAND_BASE + XESVM_DRM_XE_DEVICE_QUERY, sizeof(struct xesvm_drm_xe_device_query))
#define XESVM_DRM_IOCTL_XE_VM_CREATE     XESVM_DRM_IOC(3, XESVM_DRM_COMMAND_BASE + XESVM_DRM_XE_VM_CREATE, sizeof(struct xesvm_drm_xe_vm_create))
#define XESVM_DRM_IOCTL_XE_VM_DESTROY    XESVM_DRM_IOC(1, XESVM_DRM_COMMAND_BASE + XESVM_DRM_XE_VM_DESTROY, sizeof(struct xesvm_drm_xe_vm_destroy))
#define XESVM_DRM_IOCTL_XE_VM_BIND       XESVM_DRM_IOC(1, XESVM_DRM_COMMAND_BASE + XESVM_DRM_XE_VM_BIND, sizeof(struct xesvm_drm_xe_vm_bind))
#define XESVM_DRM_IOCTL_XE_WAIT_USER_FENCE XESVM_DRM_IOC(3, XESVM_DRM_COMMAND_BASE + XESVM_DRM_XE_WAIT_USER_FENCE, sizeof(struct xesvm_drm_xe_wait_user_fence))
#define XESVM_DRM_IOCTL_XE_MADVISE       XESVM_DRM_IOC(1, XESVM_DRM_COMMAND_BASE + XESVM_DRM_XE_MADVISE, sizeof(struct xesvm_drm_xe_madvise))
#define XESVM_DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS XESVM_DRM_IOC(3, XESVM_DRM_COMMAND_BASE + XESVM_DRM_XE_VM_QUERY_MEM_RANGE_ATTRS, sizeof(struct xesvm_drm_xe_vm_query_mem_range_attr))

struct xesvm_drm_xe_user_extension {
	uint64_t next_extension;
	uint32_t name;
	uint32_t pad;
};

/* §4.3 */
struct xesvm_drm_xe_device_query {
	uint64_t extensions;
#define XESVM_DRM_XE_DEVICE_QUERY_ENGINES		0
#define XESVM_DRM_XE_DEVICE_QUERY_MEM_REGIONS		1
#define XESVM_DRM_XE_DEVICE_QUERY_CONFIG		2
#define XESVM_DRM_XE_DEVICE_QUERY_GT_LIST		3
	uint32_t query;
	uint32_t size;
	uint64_t data;
	uint64_t reserved[2];
};

/* §4.4 */
enum xesvm_drm_xe_memory_class {
	XESVM_DRM_XE_MEM_REGION_CLASS_SYSMEM = 0,
	XESVM_DRM_XE_MEM_REGION_CLASS_VRAM
};

struct xesvm_drm_xe_mem_region {
	uint16_t mem_class;
	uint16_t instance;
	uint32_t min_page_size;
	uint64_t total_size;
	uint64_t used;
	uint64_t cpu_visible_size;
	uint64_t cpu_visible_used;
	uint64_t reserved[6];
};

struct xesvm_drm_xe_query_mem_regions {
	uint32_t num_mem_regions;
	uint32_t pad;
	struct xesvm_drm_xe_mem_region mem_regions[];
};

/* §4.5, §5.3 */
struct xesvm_drm_xe_query_config {
	uint32_t num_params;
	uint32_t pad;
#define XESVM_DRM_XE_QUERY_CONFIG_REV_AND_DEVICE_ID	0
#define XESVM_DRM_XE_QUERY_CONFIG_FLAGS		1
#define   XESVM_DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM		(1 << 0)
#define   XESVM_DRM_XE_QUERY_CONFIG_FLAG_HAS_LOW_LATENCY	(1 << 1)
#define   XESVM_DRM_XE_QUERY_CONFIG_FLAG_HAS_CPU_ADDR_MIRROR	(1 << 2)
#define XESVM_DRM_XE_QUERY_CONFIG_MIN_ALIGNMENT	2
#define XESVM_DRM_XE_QUERY_CONFIG_VA_BITS		3
#define XESVM_DRM_XE_QUERY_CONFIG_MAX_EXEC_QUEUE_PRIORITY	4
	uint64_t info[];
};

/* §4.6 */
struct xesvm_drm_xe_gt {
#define XESVM_DRM_XE_QUERY_GT_TYPE_MAIN		0
#define XESVM_DRM_XE_QUERY_GT_TYPE_MEDIA		1
	uint16_t type;
	uint16_t tile_id;
	uint16_t gt_id;
	uint16_t pad[3];
	uint32_t reference_clock;
	uint64_t near_mem_regions;
	uint64_t far_mem_regions;
	uint16_t ip_ver_major;
	uint16_t ip_ver_minor;
	uint16_t ip_ver_rev;
	uint16_t pad2;
	uint64_t reserved[7];
};

struct xesvm_drm_xe_query_gt_list {
	uint32_t num_gt;
	uint32_t pad;
	struct xesvm_drm_xe_gt gt_list[];
};

/* §4.7, §5.5 */
struct xesvm_drm_xe_vm_create {
	uint64_t extensions;
#define XESVM_DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE	(1 << 0)
#define XESVM_DRM_XE_VM_CREATE_FLAG_LR_MODE		(1 << 1)
#define XESVM_DRM_XE_VM_CREATE_FLAG_FAULT_MODE	(1 << 2)
#define XESVM_DRM_XE_VM_CREATE_FLAG_NO_VM_OVERCOMMIT	(1 << 3)
	uint32_t flags;
	uint32_t vm_id;
	uint64_t reserved[2];
};

/* §4.8 */
struct xesvm_drm_xe_vm_destroy {
	uint32_t vm_id;
	uint32_t pad;
	uint64_t reserved[2];
};

/* §4.9, §5.6 */
struct xesvm_drm_xe_vm_bind_op {
	uint64_t extensions;
	uint32_t obj;
	uint16_t pat_index;
	uint16_t pad;
	union {
		uint64_t obj_offset;
		uint64_t userptr;
		int64_t cpu_addr_mirror_offset;
	};
	uint64_t range;
	uint64_t addr;
#define XESVM_DRM_XE_VM_BIND_OP_MAP		0x0
#define XESVM_DRM_XE_VM_BIND_OP_UNMAP		0x1
#define XESVM_DRM_XE_VM_BIND_OP_MAP_USERPTR	0x2
#define XESVM_DRM_XE_VM_BIND_OP_UNMAP_ALL	0x3
#define XESVM_DRM_XE_VM_BIND_OP_PREFETCH	0x4
	uint32_t op;
#define XESVM_DRM_XE_VM_BIND_FLAG_READONLY		(1 << 0)
#define XESVM_DRM_XE_VM_BIND_FLAG_IMMEDIATE		(1 << 1)
#define XESVM_DRM_XE_VM_BIND_FLAG_NULL		(1 << 2)
#define XESVM_DRM_XE_VM_BIND_FLAG_DUMPABLE		(1 << 3)
#define XESVM_DRM_XE_VM_BIND_FLAG_CHECK_PXP		(1 << 4)
#define XESVM_DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR	(1 << 5)
#define XESVM_DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET	(1 << 6)
#define XESVM_DRM_XE_VM_BIND_FLAG_DECOMPRESS		(1 << 7)
	uint32_t flags;
#define XESVM_DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC	(-1)
	uint32_t prefetch_mem_region_instance;
	uint32_t pad2;
	uint64_t reserved[3];
};

/* §4.10 */
struct xesvm_drm_xe_vm_bind {
	uint64_t extensions;
	uint32_t vm_id;
	uint32_t exec_queue_id;
	uint32_t pad;
	uint32_t num_binds;
	union {
		struct xesvm_drm_xe_vm_bind_op bind;
		uint64_t vector_of_binds;
	};
	uint32_t pad2;
	uint32_t num_syncs;
	uint64_t syncs;
	uint64_t reserved[2];
};

/* §4.11, §5.7 */
struct xesvm_drm_xe_sync {
	uint64_t extensions;
#define XESVM_DRM_XE_SYNC_TYPE_SYNCOBJ		0x0
#define XESVM_DRM_XE_SYNC_TYPE_TIMELINE_SYNCOBJ	0x1
#define XESVM_DRM_XE_SYNC_TYPE_USER_FENCE		0x2
	uint32_t type;
#define XESVM_DRM_XE_SYNC_FLAG_SIGNAL	(1 << 0)
	uint32_t flags;
	union {
		uint32_t handle;
		uint64_t addr;
	};
	uint64_t timeline_value;
	uint64_t reserved[2];
};

#define XESVM_DRM_XE_MAX_SYNCS 1024

/* §4.12 */
struct xesvm_drm_xe_wait_user_fence {
	uint64_t extensions;
	uint64_t addr;
#define XESVM_DRM_XE_UFENCE_WAIT_OP_EQ	0x0
#define XESVM_DRM_XE_UFENCE_WAIT_OP_NEQ	0x1
#define XESVM_DRM_XE_UFENCE_WAIT_OP_GT	0x2
#define XESVM_DRM_XE_UFENCE_WAIT_OP_GTE	0x3
#define XESVM_DRM_XE_UFENCE_WAIT_OP_LT	0x4
#define XESVM_DRM_XE_UFENCE_WAIT_OP_LTE	0x5
	uint16_t op;
#define XESVM_DRM_XE_UFENCE_WAIT_FLAG_ABSTIME	(1 << 0)
	uint16_t flags;
	uint32_t pad;
	uint64_t value;
	uint64_t mask;
	int64_t timeout;
	uint32_t exec_queue_id;
	uint32_t pad2;
	uint64_t reserved[2];
};

/* §4.13, §5.8 */
struct xesvm_drm_xe_madvise {
	uint64_t extensions;
	uint64_t start;
	uint64_t range;
	uint32_t vm_id;
#define XESVM_DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC	0
#define XESVM_DRM_XE_MEM_RANGE_ATTR_ATOMIC		1
#define XESVM_DRM_XE_MEM_RANGE_ATTR_PAT		2
#define XESVM_DRM_XE_VMA_ATTR_PURGEABLE_STATE		3
	uint32_t type;
	union {
		struct {
#define XESVM_DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE	0
#define XESVM_DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM	(-1)
			uint32_t devmem_fd;
#define XESVM_DRM_XE_MIGRATE_ALL_PAGES		0
#define XESVM_DRM_XE_MIGRATE_ONLY_SYSTEM_PAGES	1
			uint16_t migration_policy;
			/* 7.0+; on 6.18/6.19 this is pad and must be zero. */
			uint16_t region_instance;
			uint64_t reserved;
		} preferred_mem_loc;
		struct {
#define XESVM_DRM_XE_ATOMIC_UNDEFINED	0
#define XESVM_DRM_XE_ATOMIC_DEVICE	1
#define XESVM_DRM_XE_ATOMIC_GLOBAL	2
#define XESVM_DRM_XE_ATOMIC_CPU	3
			uint32_t val;
			uint32_t pad;
			uint64_t reserved;
		} atomic;
		struct {
			uint32_t val;
			uint32_t pad;
			uint64_t reserved;
		} pat_index;
		struct {
			uint32_t val;
			uint32_t pad;
			uint64_t retained_ptr;
		} purge_state_val;
	};
	uint64_t reserved[2];
};

/* §4.14 */
struct xesvm_drm_xe_mem_range_attr {
	uint64_t extensions;
	uint64_t start;
	uint64_t end;
	struct {
		uint32_t devmem_fd;
		uint32_t migration_policy;
	} preferred_mem_loc;
	struct {
		uint32_t val;
		uint32_t reserved;
	} atomic;
	struct {
		uint32_t val;
		uint32_t reserved;
	} pat_index;
	uint64_t reserved[2];
};

/* §4.15 */
struct xesvm_drm_xe_vm_query_mem_range_attr {
	uint64_t extensions;
	uint32_t vm_id;
	uint32_t num_mem_ranges;
	uint64_t start;
	uint64_t range;
	uint64_t sizeof_mem_range_attr;
	uint64_t vector_of_mem_attr;
	uint64_t reserved[2];
};

#if defined(__cplusplus)
}
#endif

#endif /* XESVM_XE_DRM_H */
