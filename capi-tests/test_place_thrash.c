/* A ping-pong workload between two devices, placed by the engine
 * (SVM_ALLOC_ENGINE), is pinned by the thrash guard after N moves; pinned,
 * it is served remotely instead of migrating. Explicit requests (an
 * application's alternating prefetches) are never pinned. */
#include "rig.h"

#define N 3

int main(void)
{
	rig r = rig_open("2dgpu-p2p", NULL, N, 10000000000ull);
	CHECK_OK(svm_sim_cpu_access(r.sim, BUF, 2 * MIB, SVM_ACCESS_WRITE, 1));
	uint64_t s0 = sum(&r, BUF, 2 * MIB);
	int moves = 0, first_pin = -1;
	for (int i = 0; i < 10; i++) {
		int d = i % 2;
		svm_alloc_result res = alloc(&r, d, BUF, 2 * MIB, r.vram[d], SVM_ALLOC_ENGINE);
		if (res.bytes_moved)
			moves++;
		if (res.flags & SVM_RESULT_PINNED) {
			if (first_pin < 0)
				first_pin = i;
			CHECK(!same_pagemap(res.pagemap, r.vram[d]));
		}
		CHECK_OK(gpu(&r, d, BUF, 2 * MIB, SVM_ACCESS_READ));
	}
	CHECK(moves == N);
	CHECK(first_pin == N);
	svm_range_info info = { .struct_size = sizeof(info) };
	CHECK_OK(svm_range_query(r.ctx, BUF, 2 * MIB, &info));
	CHECK(info.flags & SVM_RANGE_PINNED);
	CHECK(info.moves_in_window == N);
	/* Pinned and read by both devices: no migration between them. */
	svm_sim_counters c0 = counters(&r);
	CHECK_OK(gpu(&r, 0, BUF, 2 * MIB, SVM_ACCESS_READ));
	CHECK_OK(gpu(&r, 1, BUF, 2 * MIB, SVM_ACCESS_READ));
	CHECK(counters(&r).migrations_device_to_device == c0.migrations_device_to_device);
	CHECK(sum(&r, BUF, 2 * MIB) == s0);
	CHECK(stats(&r).pins >= 1);
	rig_close(&r);

	/* Explicit: each of ten alternating prefetches is honoured. */
	rig e = rig_open("2dgpu-p2p", NULL, N, 10000000000ull);
	CHECK_OK(svm_sim_cpu_access(e.sim, BUF, 2 * MIB, SVM_ACCESS_WRITE, 1));
	for (int i = 0; i < 10; i++) {
		int d = i % 2;
		svm_alloc_result res = alloc(&e, d, BUF, 2 * MIB, e.vram[d], 0);
		CHECK(res.bytes_moved == 2 * MIB && !(res.flags & SVM_RESULT_PINNED) && same_pagemap(res.pagemap, e.vram[d]));
		CHECK(lives_in(&e, BUF, 2 * MIB, d));
	}
	rig_close(&e);
	return 0;
}
