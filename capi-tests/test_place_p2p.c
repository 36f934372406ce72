/* Two devices with PCIe P2P: a range on A moves to B over the link for
 * alloc_vram on B; with the preferred location set to A, B's accesses are
 * served remotely without migration; atomics from B put it in B's VRAM. */
#include "rig.h"

int main(void)
{
	rig r = rig_open("2dgpu-p2p", NULL, 0, 0);
	svm_link link = { .struct_size = sizeof(link) };
	CHECK_OK(svm_link_get(r.ctx, r.dev[0], r.dev[1], &link));
	CHECK(link.kind == SVM_LINK_PCIE_P2P && link.bandwidth_gbps > 0);

	CHECK_OK(gpu(&r, 0, BUF, 4 * MIB, SVM_ACCESS_WRITE));
	CHECK(lives_in(&r, BUF, 4 * MIB, 0));
	uint64_t s0 = sum(&r, BUF, 4 * MIB);

	svm_alloc_result res = alloc(&r, 1, BUF, 4 * MIB, r.vram[1], 0);
	CHECK(same_pagemap(res.pagemap, r.vram[1]) && res.bytes_moved == 4 * MIB && !(res.flags & SVM_RESULT_FELL_BACK));
	CHECK(lives_in(&r, BUF, 4 * MIB, 1));
	CHECK(counters(&r).migrations_device_to_device >= 1);
	CHECK(sum(&r, BUF, 4 * MIB) == s0);

	/* Preferred location A: placed there, and B reads it over the link. */
	CHECK_OK(svm_set_preferred_location(r.ctx, BUF, 4 * MIB, r.vram[0]));
	svm_pagemap where;
	CHECK_OK(svm_resolve_pagemap(r.ctx, r.dev[1], 0, BUF, 4 * MIB, SVM_ACCESS_READ, &where));
	CHECK(same_pagemap(where, r.vram[0]));
	alloc(&r, 0, BUF, 4 * MIB, r.vram[0], 0);
	svm_sim_counters c0 = counters(&r);
	CHECK_OK(gpu(&r, 1, BUF, 4 * MIB, SVM_ACCESS_READ));
	svm_sim_counters c1 = counters(&r);
	CHECK(c1.migrations_device_to_device == c0.migrations_device_to_device);
	CHECK(c1.migrations_to_vram == c0.migrations_to_vram);
	CHECK(c1.remote_access_bytes - c0.remote_access_bytes == 4 * MIB);
	CHECK(lives_in(&r, BUF, 4 * MIB, 0));

	/* The same attributes on both VMs. */
	svm_range_info info = { .struct_size = sizeof(info) };
	CHECK_OK(svm_range_query(r.ctx, BUF, 4 * MIB, &info));
	CHECK(info.ndevices == 2 && (info.flags & SVM_RANGE_PREFERRED_SET) && same_pagemap(info.preferred, r.vram[0]));
	CHECK(info.devices[1].preferred_fd == r.fd[0]);

	/* Atomics from B: local VRAM only (the kernel never serves atomics over P2P). */
	CHECK_OK(svm_resolve_pagemap(r.ctx, r.dev[1], 0, BUF, 4 * MIB, SVM_ACCESS_ATOMIC, &where));
	CHECK(same_pagemap(where, r.vram[1]));
	CHECK_OK(gpu(&r, 1, BUF, 4 * MIB, SVM_ACCESS_ATOMIC));
	CHECK(lives_in(&r, BUF, 4 * MIB, 1));
	rig_close(&r);
	return 0;
}
