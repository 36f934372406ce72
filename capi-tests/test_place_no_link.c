/* Two devices without a link: placement on the peer falls back to local
 * VRAM (then system), and the result says so; with SVM_ALLOC_NO_FALLBACK
 * the errno comes back instead. */
#include "rig.h"

int main(void)
{
	rig r = rig_open("2dgpu-nolink", NULL, 0, 0);
	CHECK_OK(svm_sim_cpu_access(r.sim, BUF, 8 * MIB, SVM_ACCESS_WRITE, 5));
	uint64_t s0 = sum(&r, BUF, 8 * MIB);

	svm_alloc_result res = alloc(&r, 1, BUF, 8 * MIB, r.vram[0], 0);
	CHECK(res.flags & SVM_RESULT_FELL_BACK);
	CHECK(res.cause == -ENOLINK);
	CHECK(same_pagemap(res.pagemap, r.vram[1]));
	CHECK(lives_in(&r, BUF, 8 * MIB, 1));
	CHECK(sum(&r, BUF, 8 * MIB) == s0);

	svm_link link = { .struct_size = sizeof(link) };
	CHECK_OK(svm_link_get(r.ctx, r.dev[1], r.dev[0], &link));
	CHECK(link.kind == SVM_LINK_NONE);

	svm_alloc_result strict = { .struct_size = sizeof(strict) };
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[1], BUF + 8 * MIB, 2 * MIB, r.vram[0], SVM_ALLOC_NO_FALLBACK, &strict), -ENOLINK);

	/* A preferred location on the unreachable peer is not honoured by resolve. */
	CHECK_OK(svm_set_preferred_location(r.ctx, BUF, 8 * MIB, r.vram[0]));
	svm_pagemap where;
	CHECK_OK(svm_resolve_pagemap(r.ctx, r.dev[1], 0, BUF, 8 * MIB, SVM_ACCESS_READ, &where));
	CHECK(!same_pagemap(where, r.vram[0]));
	CHECK(stats(&r).fallbacks >= 1);
	rig_close(&r);
	return 0;
}
