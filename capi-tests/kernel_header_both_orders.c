/* The installed kernel's <drm/xe_drm.h> and xesvm's headers in one
 * translation unit, in either order (-DXESVM_KERNEL_FIRST or not): both
 * xe_drm.h copies use the installed header's guard (_XE_DRM_H_), so
 * whichever comes first defines the structs and the other is skipped,
 * and the layouts are the same. Built by scripts/test.sh against
 * linux-libc-dev 7.x (scripts/kernel-header.sh); not part of ctest, since
 * it needs that header. */
#ifdef XESVM_KERNEL_FIRST
#include <drm/xe_drm.h>
#include <xesvm/xe_drm.h>
#include <xesvm.h>
#else
#include <xesvm.h>
#include <xesvm/xe_drm.h>
#include <drm/xe_drm.h>
#endif
#include <stdio.h>

int main(void)
{
	struct drm_xe_madvise m = { .type = DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC };
	struct drm_xe_vm_bind b = { .num_binds = 1 };
	m.preferred_mem_loc.region_instance = 1;
	b.bind.op = DRM_XE_VM_BIND_OP_PREFETCH;
	if (sizeof m != 64 || sizeof b != 136 || DRM_IOCTL_XE_MADVISE != 0x4040644Cu) {
		fprintf(stderr, "layouts differ\n");
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
