/*
 * svm_device_adopt checks what it takes, leaving the VM as it was: an fd
 * that is not an Xe device, a VM that does not exist, one that is not in
 * fault mode, and one with no CPU-address mirror bound (a NULL binding is
 * not one) are refused with a reason; a NEO-like
 * VM (LR | FAULT_MODE, mirror bound with MADVISE_AUTORESET) is taken,
 * borrowed (the library never destroys it), and its autoreset is known, so
 * repeated advice after a free is issued again.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdint.h>
#include <xesvm/xe_drm.h>
#include "check.h"

#define MIB (1ull << 20)
#define BUF 0x1000000000ull

static uint32_t vm_create(svm_sim *sim, int fd, uint32_t flags)
{
	struct xesvm_drm_xe_vm_create c = { .flags = flags };
	CHECK_OK(svm_sim_ioctl(sim, fd, XESVM_DRM_IOCTL_XE_VM_CREATE, &c));
	return c.vm_id;
}

static void bind_op(svm_sim *sim, int fd, uint32_t vm, uint32_t flags, uint64_t addr, uint64_t range)
{
	uint64_t fence = 0;
	struct xesvm_drm_xe_sync sync = {
		.type = XESVM_DRM_XE_SYNC_TYPE_USER_FENCE, .flags = XESVM_DRM_XE_SYNC_FLAG_SIGNAL,
		.addr = (uintptr_t)&fence, .timeline_value = 7,
	};
	struct xesvm_drm_xe_vm_bind_op op = { .op = XESVM_DRM_XE_VM_BIND_OP_MAP, .flags = flags, .addr = addr, .range = range };
	struct xesvm_drm_xe_vm_bind b = { .vm_id = vm, .num_binds = 1, .bind = op, .num_syncs = 1, .syncs = (uintptr_t)&sync };
	CHECK_OK(svm_sim_ioctl(sim, fd, XESVM_DRM_IOCTL_XE_VM_BIND, &b));
	struct xesvm_drm_xe_wait_user_fence w = { .addr = (uintptr_t)&fence, .op = XESVM_DRM_XE_UFENCE_WAIT_OP_EQ, .value = 7, .mask = ~0ull, .timeout = 1000000000 };
	CHECK_OK(svm_sim_ioctl(sim, fd, XESVM_DRM_IOCTL_XE_WAIT_USER_FENCE, &w));
}

static void bind_mirror(svm_sim *sim, int fd, uint32_t vm, uint32_t extra)
{
	bind_op(sim, fd, vm, XESVM_DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR | extra, 0, 1ull << 47);
}

static uint64_t madvises(svm_sim *sim)
{
	svm_sim_counters k = { .struct_size = sizeof(k) };
	CHECK_OK(svm_sim_get_counters(sim, &k));
	return k.madvise_calls;
}

int main(void)
{
	svm_sim *sim;
	CHECK_OK(svm_sim_create("dgpu", &sim));
	svm_context_config cfg = { .struct_size = sizeof(cfg), .driver = SVM_DRIVER_SIM, .sim = sim };
	svm_context *ctx;
	CHECK_OK(svm_context_create(&cfg, &ctx));
	int fd;
	CHECK_OK(svm_sim_device_open(sim, 0, &fd));
	svm_device dev;

	/* No such VM. */
	CHECK(svm_device_adopt(ctx, fd, 77, &dev) == -EINVAL);
	CHECK(strstr(svm_last_error(), "no VM with this id") != NULL);
	/* Not in fault mode (a mirror cannot even be bound there); a NULL
	 * binding gives it a VMA, which is no mirror: the probe (a migration
	 * policy only a mirror VMA takes) refuses it. */
	uint32_t plain = vm_create(sim, fd, XESVM_DRM_XE_VM_CREATE_FLAG_LR_MODE);
	CHECK(svm_device_adopt(ctx, fd, plain, &dev) == -EINVAL);
	CHECK(strstr(svm_last_error(), "no CPU-address mirror") != NULL);
	bind_op(sim, fd, plain, XESVM_DRM_XE_VM_BIND_FLAG_NULL, 0, 2 * MIB);
	CHECK(svm_device_adopt(ctx, fd, plain, &dev) == -EINVAL);
	CHECK(strstr(svm_last_error(), "no CPU-address mirror") != NULL);
	/* Fault mode, but no mirror bound: a NULL binding is not one either
	 * (NEO's VMs outside Battlemage have no mirror). */
	uint32_t bare = vm_create(sim, fd, XESVM_DRM_XE_VM_CREATE_FLAG_LR_MODE | XESVM_DRM_XE_VM_CREATE_FLAG_FAULT_MODE);
	CHECK(svm_device_adopt(ctx, fd, bare, &dev) == -EINVAL);
	CHECK(strstr(svm_last_error(), "no CPU-address mirror") != NULL);
	uint32_t nulled = vm_create(sim, fd, XESVM_DRM_XE_VM_CREATE_FLAG_LR_MODE | XESVM_DRM_XE_VM_CREATE_FLAG_FAULT_MODE);
	bind_op(sim, fd, nulled, XESVM_DRM_XE_VM_BIND_FLAG_NULL, 0, 2 * MIB);
	CHECK(svm_device_adopt(ctx, fd, nulled, &dev) == -EINVAL);
	CHECK(strstr(svm_last_error(), "no CPU-address mirror") != NULL);
	/* Not an Xe device: refused before any Xe ioctl. */
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(devnull >= 0);
	CHECK(svm_device_adopt(ctx, devnull, 1, &dev) < 0);
	close(devnull);
	CHECK(svm_device_adopt_flags(ctx, fd, bare, 1u << 9, &dev) == -EINVAL); /* unknown flag */

	/* The probes changed nothing: the bare VM still takes a mirror. */
	bind_mirror(sim, fd, bare, XESVM_DRM_XE_VM_BIND_FLAG_MADVISE_AUTORESET);
	CHECK_OK(svm_device_adopt_flags(ctx, fd, bare, SVM_ADOPT_MIRROR_AUTORESET, &dev));
	svm_device_info info = { .struct_size = sizeof(info) };
	CHECK_OK(svm_device_get_info(ctx, dev, &info));
	CHECK(info.vm_id == bare && !info.owns_vm && info.fd == fd);

	/* Autoreset known: advice, GPU use, free and reuse, the runtime's free
	 * hook, then the same advice again is issued again. */
	svm_pagemap vram;
	CHECK_OK(svm_device_pagemap(ctx, dev, 0, &vram));
	CHECK_OK(svm_set_atomic_mode(ctx, BUF, 2 * MIB, SVM_ATOMIC_DEVICE));
	svm_alloc_result r = { .struct_size = sizeof(r) };
	CHECK_OK(svm_alloc_vram(ctx, dev, BUF, 2 * MIB, vram, 0, &r));
	CHECK_OK(svm_sim_munmap(sim, BUF, 2 * MIB));
	CHECK_OK(svm_sim_mmap(sim, BUF, 2 * MIB, 0));
	CHECK_OK(svm_range_invalidate(ctx, BUF, 2 * MIB));
	uint64_t before = madvises(sim);
	CHECK_OK(svm_set_atomic_mode(ctx, BUF, 2 * MIB, SVM_ATOMIC_DEVICE));
	CHECK(madvises(sim) == before + 1);

	/* Closing an adopted device leaves the runtime's VM alive. */
	CHECK_OK(svm_device_close(ctx, dev));
	CHECK_OK(svm_device_adopt(ctx, fd, bare, &dev));

	/* A context can bind its own mirrors with autoreset. */
	svm_context_config auto_cfg = { .struct_size = sizeof(auto_cfg), .driver = SVM_DRIVER_SIM, .sim = sim,
					.flags = SVM_CONTEXT_MIRROR_AUTORESET };
	svm_context *ctx2;
	CHECK_OK(svm_context_create(&auto_cfg, &ctx2));
	auto_cfg.flags = 1u << 5;
	svm_context *bad = NULL;
	CHECK(svm_context_create(&auto_cfg, &bad) == -EINVAL && bad == NULL);
	CHECK_OK(svm_context_destroy(ctx2));
	CHECK_OK(svm_context_destroy(ctx));
	CHECK_OK(svm_sim_destroy(sim));
	puts("test_adopt: ok");
	return 0;
}
