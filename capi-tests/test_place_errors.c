/* Injected EBUSY, ENOMEM, EINTR and ENODEV each get their answer, with
 * bounded retries, and nothing is lost. */
#include "rig.h"

#define VM_BIND_REQUEST 0x40886445u

static void inject(rig *r, uint32_t point, int err, uint64_t count, uint32_t request)
{
	svm_sim_injection i = { .struct_size = sizeof(i), .point = point, .device = -1, .request = request,
				.error = err, .count = count };
	CHECK_OK(svm_sim_inject(r->sim, &i));
}

int main(void)
{
	rig r = rig_open("dgpu", NULL, 0, 0);
	CHECK_OK(svm_sim_cpu_access(r.sim, BUF, 32 * MIB, SVM_ACCESS_WRITE, 99));
	uint64_t s0 = sum(&r, BUF, 32 * MIB);
	svm_alloc_result res;

	/* EBUSY inside the kernel's migration (reported to us as success):
	 * detected, evicted, retried once. */
	inject(&r, SVM_SIM_INJECT_MIGRATE, -EBUSY, 2, 0);
	res = alloc(&r, 0, BUF, 2 * MIB, r.vram[0], 0);
	CHECK(same_pagemap(res.pagemap, r.vram[0]) && res.retries == 1);
	CHECK(stats(&r).unverified == 1);
	/* EBUSY that persists: one retry, then system, and the result says so. */
	inject(&r, SVM_SIM_INJECT_MIGRATE, -EBUSY, 100, 0);
	res = alloc(&r, 0, BUF + 2 * MIB, 2 * MIB, r.vram[0], 0);
	CHECK((res.flags & SVM_RESULT_FELL_BACK) && res.cause == -EBUSY && same_pagemap(res.pagemap, r.sys));
	CHECK(res.retries <= 2);
	CHECK_OK(svm_sim_inject_clear(r.sim));

	/* EBUSY from the ioctl: evict to system, retry once. */
	inject(&r, SVM_SIM_INJECT_IOCTL, -EBUSY, 1, VM_BIND_REQUEST);
	res = alloc(&r, 0, BUF + 4 * MIB, 2 * MIB, r.vram[0], 0);
	CHECK(same_pagemap(res.pagemap, r.vram[0]) && res.retries == 1);

	/* ENOMEM: make room, retry once; persisting: fall back to system. */
	inject(&r, SVM_SIM_INJECT_IOCTL, -ENOMEM, 1, VM_BIND_REQUEST);
	res = alloc(&r, 0, BUF + 6 * MIB, 2 * MIB, r.vram[0], 0);
	CHECK(same_pagemap(res.pagemap, r.vram[0]) && res.retries == 1);
	inject(&r, SVM_SIM_INJECT_IOCTL, -ENOMEM, 100, VM_BIND_REQUEST);
	res = alloc(&r, 0, BUF + 8 * MIB, 2 * MIB, r.vram[0], 0);
	CHECK((res.flags & SVM_RESULT_FELL_BACK) && res.cause == -ENOMEM && res.retries <= 2);
	CHECK_OK(svm_sim_inject_clear(r.sim));

	/* EINTR: restarted transparently; persisting: restarted until the
	 * deadline (SVM_RESTART_DEADLINE_NS), then returned. */
	inject(&r, SVM_SIM_INJECT_IOCTL, -EINTR, 3, VM_BIND_REQUEST);
	res = alloc(&r, 0, BUF + 10 * MIB, 2 * MIB, r.vram[0], 0);
	CHECK(same_pagemap(res.pagemap, r.vram[0]) && res.retries == 3);
	inject(&r, SVM_SIM_INJECT_IOCTL, -EINTR, 1000000000, VM_BIND_REQUEST);
	svm_alloc_result bad = { .struct_size = sizeof(bad) };
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF + 12 * MIB, 2 * MIB, r.vram[0], 0, &bad), -EINTR);
	CHECK_OK(svm_sim_inject_clear(r.sim));
	CHECK(stats(&r).retries_eintr > 3 + SVM_MAX_RESTARTS); /* many more than 0.1.0's count */

	/* ENODEV: the device is gone; the library says so from then on. */
	CHECK(sum(&r, BUF, 32 * MIB) == s0);
	inject(&r, SVM_SIM_INJECT_DEVICE_REMOVAL, -ENODEV, 1, 0);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF + 14 * MIB, 2 * MIB, r.vram[0], 0, &bad), -ENODEV);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[0], 0, &bad), -ENODEV);
	svm_pagemap where;
	CHECK_STATUS(svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF, 2 * MIB, SVM_ACCESS_READ, &where), -ENODEV);
	svm_device_info info = { .struct_size = sizeof(info) };
	CHECK_OK(svm_device_get_info(r.ctx, r.dev[0], &info));
	CHECK(info.status == -ENODEV);
	/* The unplug returned VRAM contents to system memory: nothing lost. */
	CHECK(lives_in(&r, BUF, 32 * MIB, -1));
	CHECK(sum(&r, BUF, 32 * MIB) == s0);
	rig_close(&r);
	return 0;
}
