/* svm_find_extent: a runtime that sees only a kernel's pointer argument
 * into malloc memory finds the allocation's extent (the CPU mapping that
 * holds it), then places that extent. Bad input: NULL context or
 * out-pointers -EINVAL, an unmapped pointer -EFAULT. */
#include "rig.h"

int main(void)
{
	rig r = rig_open("dgpu", NULL, 0, 0);
	uint64_t start = 1, size = 1;

	/* The simulated process maps two buffers with a hole between and around. */
	CHECK_OK(svm_sim_munmap(r.sim, BUF - 2 * MIB, 16 * MIB));
	CHECK_OK(svm_sim_mmap(r.sim, BUF, 6 * MIB, 0));
	CHECK_OK(svm_sim_mmap(r.sim, BUF + 8 * MIB, 3 * MIB + 4096, 0));

	/* A pointer into the middle of the first: its whole mapping. */
	CHECK_OK(svm_find_extent(r.ctx, (const void *)(uintptr_t)(BUF + 5 * MIB + 123), &start, &size));
	CHECK(start == BUF && size == 6 * MIB);
	CHECK_OK(svm_find_extent(r.ctx, (const void *)(uintptr_t)(BUF + 8 * MIB), &start, &size));
	CHECK(start == BUF + 8 * MIB && size == 3 * MIB + 4096);

	/* The extent goes to the placement calls as it is. */
	CHECK_OK(svm_sim_cpu_access(r.sim, start, size, SVM_ACCESS_WRITE, 1));
	svm_alloc_result res = { .struct_size = sizeof(res) };
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], start, size, r.vram[0], 0, &res));
	svm_sim_residency where = { 0 };
	CHECK_OK(svm_sim_get_residency(r.sim, start, size, &where));
	CHECK(where.kind == SVM_PLACE_VRAM);

	/* Bad input. Nothing is written on failure. */
	start = size = 7;
	CHECK_STATUS(svm_find_extent(r.ctx, (const void *)(uintptr_t)(BUF + 7 * MIB), &start, &size), -EFAULT);
	CHECK(strstr(svm_last_error(), "nothing is mapped") != NULL);
	CHECK(start == 7 && size == 7);
	CHECK_STATUS(svm_find_extent(NULL, (const void *)(uintptr_t)BUF, &start, &size), -EINVAL);
	CHECK_STATUS(svm_find_extent(r.ctx, (const void *)(uintptr_t)BUF, NULL, &size), -EINVAL);
	CHECK(strstr(svm_last_error(), "start is NULL") != NULL);
	CHECK_STATUS(svm_find_extent(r.ctx, (const void *)(uintptr_t)BUF, &start, NULL), -EINVAL);
	CHECK(start == 7 && size == 7);

	rig_close(&r);
	return 0;
}
