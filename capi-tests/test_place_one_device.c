/* One device: alloc_vram, then a GPU access causes no fault-driven
 * migration; a second alloc_vram is free; evict, then a CPU access finds
 * the data intact. */
#include "rig.h"

int main(void)
{
	rig r = rig_open("dgpu", NULL, 0, 0);
	CHECK_OK(svm_sim_cpu_access(r.sim, BUF, 16 * MIB, SVM_ACCESS_WRITE, 1234));
	uint64_t s0 = sum(&r, BUF, 16 * MIB);

	svm_pagemap where;
	/* A first read of system memory is served in place (rent or buy); an
	 * explicit prefetch moves at once. */
	CHECK_OK(svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF, 16 * MIB, SVM_ACCESS_READ, &where));
	CHECK(same_pagemap(where, r.sys));
	CHECK(svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF, 16 * MIB, 4, &where) == -EINVAL);
	CHECK_OK(svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF, 16 * MIB, SVM_ACCESS_PREFETCH, &where));
	CHECK(same_pagemap(where, r.vram[0]));
	svm_alloc_result res = alloc(&r, 0, BUF, 16 * MIB, where, 0);
	CHECK(same_pagemap(res.pagemap, r.vram[0]));
	CHECK(res.bytes_moved == 16 * MIB && (res.flags & SVM_RESULT_VERIFIED) && !(res.flags & SVM_RESULT_FELL_BACK));
	CHECK(lives_in(&r, BUF, 16 * MIB, 0));

	svm_sim_counters c0 = counters(&r);
	CHECK_OK(gpu(&r, 0, BUF, 16 * MIB, SVM_ACCESS_WRITE));
	svm_sim_counters c1 = counters(&r);
	CHECK(c1.gpu_faults == c0.gpu_faults);
	CHECK(c1.migrations_to_vram == c0.migrations_to_vram);

	res = alloc(&r, 0, BUF, 16 * MIB, r.vram[0], 0);
	CHECK((res.flags & SVM_RESULT_IN_PLACE) && res.ioctls == 0 && res.bytes_moved == 0);
	CHECK(counters(&r).ioctls == c1.ioctls);

	uint64_t s1 = sum(&r, BUF, 16 * MIB); /* the GPU wrote */
	CHECK(s1 != s0);
	svm_alloc_result ev = { .struct_size = sizeof(ev) };
	CHECK_OK(svm_evict(r.ctx, BUF, 16 * MIB, &ev));
	CHECK(same_pagemap(ev.pagemap, r.sys) && ev.bytes_moved == 16 * MIB);
	CHECK(lives_in(&r, BUF, 16 * MIB, -1));
	CHECK_OK(svm_sim_cpu_access(r.sim, BUF, 16 * MIB, SVM_ACCESS_READ, 0));
	CHECK(sum(&r, BUF, 16 * MIB) == s1);

	svm_stats st = stats(&r);
	CHECK(st.alloc_calls == 2 && st.in_place == 1 && st.migrations == 1 && st.evictions == 1);
	rig_close(&r);
	return 0;
}
