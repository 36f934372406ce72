/* A runtime's own complete <drm/xe_drm.h> and xesvm's headers in one
 * translation unit, in either order (-DXESVM_KERNEL_FIRST or not). xesvm's
 * headers define none of the kernel's names and do not use its include guard
 * (xesvm/xe_drm.h prefixes its copy: xesvm_drm_xe_*, XESVM_DRM_*), so the
 * kernel's header is neither hidden nor redefined: what only the complete
 * header has (DRM_XE_EXEC, struct drm_xe_exec, DRM_XE_GEM_CREATE, ...) is
 * there in both orders, and xesvm's copy has the kernel's layouts. Built by
 * scripts/test.sh against linux-libc-dev 7.x (scripts/kernel-header.sh);
 * not part of ctest, since it needs that header. */
#ifdef XESVM_KERNEL_FIRST
#include <drm/xe_drm.h>
#include <xesvm/xe_drm.h>
#include <xesvm.h>
#else
#include <xesvm.h>
#include <xesvm/xe_drm.h>
/* Nothing of the kernel's header may exist yet: xesvm defines none of it. */
#if defined(_XE_DRM_H_) || defined(_UAPI_XE_DRM_H_) || defined(DRM_XE_VM_BIND) || defined(DRM_IOCTL_XE_MADVISE) || \
	defined(DRM_XE_VM_BIND_OP_PREFETCH) || defined(DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC)
#error "xesvm's headers define a name of the kernel's <drm/xe_drm.h>"
#endif
#include <drm/xe_drm.h>
#endif
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Only the complete header has these (xesvm's copy is the SVM subset). */
#if !defined(DRM_XE_EXEC) || !defined(DRM_XE_GEM_CREATE) || !defined(DRM_XE_EXEC_QUEUE_CREATE) || \
	!defined(DRM_IOCTL_XE_EXEC) || !defined(DRM_IOCTL_XE_GEM_MMAP_OFFSET)
#error "the kernel's <drm/xe_drm.h> was hidden by xesvm's headers"
#endif

/* Each struct both headers define has one layout. */
#define SAME(T) _Static_assert(sizeof(struct T) == sizeof(struct xesvm_##T), #T " size")
#define SAME_OFF(T, f) _Static_assert(offsetof(struct T, f) == offsetof(struct xesvm_##T, f), #T "." #f " offset")
SAME(drm_xe_madvise);
SAME_OFF(drm_xe_madvise, preferred_mem_loc.region_instance);
SAME(drm_xe_vm_bind);
SAME_OFF(drm_xe_vm_bind, num_syncs);
SAME(drm_xe_vm_bind_op);
SAME(drm_xe_sync);
SAME(drm_xe_wait_user_fence);
SAME(drm_xe_vm_query_mem_range_attr);
SAME(drm_xe_mem_range_attr);

int main(void)
{
	/* The kernel's names, including what only the complete header has. */
	struct drm_xe_madvise m = { .type = DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC };
	struct drm_xe_vm_bind b = { .num_binds = 1 };
	struct drm_xe_exec exec = { .num_batch_buffer = 1 };
	struct drm_xe_gem_create gem = { .size = 4096, .placement = 1 };
	struct drm_xe_exec_queue_create q = { .width = 1, .num_placements = 1 };
	m.preferred_mem_loc.region_instance = 1;
	b.bind.op = DRM_XE_VM_BIND_OP_PREFETCH;
	/* xesvm's prefixed copy, alongside. */
	struct xesvm_drm_xe_madvise xm = { .type = XESVM_DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC };
	xm.preferred_mem_loc.region_instance = 1;

	int bad = 0;
	if (sizeof m != 64 || sizeof b != 136 || DRM_IOCTL_XE_MADVISE != 0x4040644Cu || memcmp(&m, &xm, sizeof m) != 0)
		bad = 1;
	if (XESVM_DRM_IOCTL_XE_MADVISE != DRM_IOCTL_XE_MADVISE || XESVM_DRM_IOCTL_XE_VM_BIND != DRM_IOCTL_XE_VM_BIND ||
	    XESVM_DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS != DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS ||
	    XESVM_DRM_XE_VM_BIND_OP_PREFETCH != DRM_XE_VM_BIND_OP_PREFETCH ||
	    XESVM_DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC != DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC)
		bad = 1;
	if (DRM_XE_EXEC != 0x09 || DRM_XE_GEM_CREATE != 0x01 ||
	    DRM_IOCTL_XE_EXEC != (unsigned long)DRM_IOW(DRM_COMMAND_BASE + DRM_XE_EXEC, struct drm_xe_exec) ||
	    exec.num_batch_buffer != 1 || gem.size != 4096 || q.width != 1)
		bad = 1;
	if (bad) {
		fprintf(stderr, "the kernel's and xesvm's uAPI definitions differ\n");
		return 1;
	}
	printf("kernel header and xesvm headers in one unit: %s first, xesvm %s\n",
#ifdef XESVM_KERNEL_FIRST
	       "kernel",
#else
	       "xesvm",
#endif
	       svm_version());
	return 0;
}
