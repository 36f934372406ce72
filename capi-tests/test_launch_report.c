/* The default engine (no SVM_CONTEXT_ENGINE_RULES): an allocation found
 * from a pointer (SVM_ALLOC_EXTENT) is left to the launch's faults unless
 * SVM_ALLOC_PREFETCH_NOW; svm_launch_submit announces a launch and
 * svm_launch_report takes a launch's duration. Bad input: NULL context
 * -EINVAL, a closed device -EBADF, unknown context flags -EINVAL. */
#include "rig.h"

int main(void)
{
	rig r = rig_open("dgpu", NULL, 0, 0);
	svm_device dev;
	svm_pagemap vram;
	svm_context *ctx = plain_context(r.sim, 0, &dev, &vram);

	CHECK_OK(svm_sim_cpu_access(r.sim, BUF, 8 * MIB, SVM_ACCESS_WRITE, 1));
	svm_alloc_result res = { .struct_size = sizeof(res) };
	CHECK_OK(svm_alloc_vram(ctx, dev, BUF, 8 * MIB, vram, SVM_ALLOC_ENGINE | SVM_ALLOC_EXTENT, &res));
	CHECK((res.flags & SVM_RESULT_ON_FAULT) && res.bytes_moved == 0);
	svm_sim_residency where = { 0 };
	CHECK_OK(svm_sim_get_residency(r.sim, BUF, 8 * MIB, &where));
	CHECK(where.kind == SVM_PLACE_SYSTEM);
	CHECK_OK(svm_launch_report(ctx, dev, 1000));
	CHECK_OK(svm_alloc_vram(ctx, dev, BUF, 8 * MIB, vram, SVM_ALLOC_ENGINE | SVM_ALLOC_EXTENT | SVM_ALLOC_PREFETCH_NOW, &res));
	CHECK(!(res.flags & SVM_RESULT_ON_FAULT) && res.bytes_moved == 8 * MIB);
	CHECK_OK(svm_launch_report(ctx, dev, 1000));
	/* Submitted ahead of their reports: two launches, two reports. */
	CHECK_OK(svm_launch_submit(ctx, dev));
	CHECK_OK(svm_launch_submit(ctx, dev));
	CHECK_OK(svm_launch_report(ctx, dev, 1000));
	CHECK_OK(svm_launch_report(ctx, dev, 1000));

	/* Bad input. */
	CHECK_STATUS(svm_launch_report(NULL, dev, 1), -EINVAL);
	CHECK_STATUS(svm_launch_submit(NULL, dev), -EINVAL);
	svm_device made_up = { .id = 0xdeadbeefcafef00dull };
	CHECK_STATUS(svm_launch_submit(ctx, made_up), -EINVAL);
	CHECK_OK(svm_device_close(ctx, dev));
	CHECK_STATUS(svm_launch_report(ctx, dev, 1), -EBADF);
	CHECK_STATUS(svm_launch_submit(ctx, dev), -EBADF);
	svm_context *bad = NULL;
	svm_context_config cfg = { .struct_size = sizeof(cfg), .driver = SVM_DRIVER_SIM, .sim = r.sim, .flags = 1u << 3 };
	CHECK_STATUS(svm_context_create(&cfg, &bad), -EINVAL);
	cfg.flags = SVM_CONTEXT_ENGINE_RULES;
	CHECK_OK(svm_context_create(&cfg, &bad));
	CHECK_OK(svm_context_destroy(bad));
	cfg.flags = SVM_CONTEXT_NO_ZERO_PAGE;
	CHECK_OK(svm_context_create(&cfg, &bad));
	CHECK_OK(svm_context_destroy(bad));

	CHECK_OK(svm_context_destroy(ctx));
	rig_close(&r);
	return 0;
}
