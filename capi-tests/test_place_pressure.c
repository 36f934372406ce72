/* VRAM pressure: placing more than a pagemap holds evicts the least
 * recently used ranges, and every range's content survives. */
#include "rig.h"

static const char *topo =
	"[[device]]\n"
	"name = \"small\"\n"
	"vram_per_tile = \"16 MiB\"\n";

int main(void)
{
	rig r = rig_open(NULL, topo, 0, 0);
	uint64_t sums[16];
	for (int i = 0; i < 16; i++) {
		uint64_t a = BUF + (uint64_t)i * 4 * MIB;
		CHECK_OK(svm_sim_cpu_access(r.sim, a, 4 * MIB, SVM_ACCESS_WRITE, (uint64_t)i));
		sums[i] = sum(&r, a, 4 * MIB);
	}
	/* 64 MiB into a 16 MiB pagemap. */
	for (int i = 0; i < 16; i++) {
		svm_alloc_result res = alloc(&r, 0, BUF + (uint64_t)i * 4 * MIB, 4 * MIB, r.vram[0], 0);
		CHECK(same_pagemap(res.pagemap, r.vram[0]));
	}
	CHECK(counters(&r).evictions >= 12);
	CHECK(lives_in(&r, BUF + 15 * 4 * MIB, 4 * MIB, 0));
	CHECK(lives_in(&r, BUF, 4 * MIB, -1)); /* the oldest went back to system */
	for (int i = 0; i < 16; i++)
		CHECK(sum(&r, BUF + (uint64_t)i * 4 * MIB, 4 * MIB) == sums[i]);

	/* resolve knows the room is taken: a new large range goes elsewhere. */
	svm_pagemap where;
	CHECK_OK(svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF + 256 * MIB, 32 * MIB, SVM_ACCESS_READ, &where));
	CHECK(same_pagemap(where, r.sys));
	svm_pagemap_info pi = { .struct_size = sizeof(pi) };
	CHECK_OK(svm_pagemap_get_info(r.ctx, r.vram[0], &pi));
	CHECK(pi.capacity == 16 * MIB && !pi.is_system && pi.instance == 1);
	rig_close(&r);
	return 0;
}
