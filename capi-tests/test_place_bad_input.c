/* Bad input gets a negative errno and a message, never a crash: NULL
 * handles and pointers, zero size, unaligned or overflowing ranges, an
 * unknown pagemap, a device of another context, a closed device. */
#include <math.h>
#include "rig.h"

int main(void)
{
	rig r = rig_open("2dgpu-p2p", NULL, 0, 0);
	rig other = rig_open("dgpu", NULL, 0, 0);
	svm_alloc_result res = { .struct_size = sizeof(res) };
	svm_pagemap pm;
	svm_device dev;

	CHECK_STATUS(svm_context_create(NULL, NULL), -EINVAL);
	svm_context_config bad = { .struct_size = 4, .driver = SVM_DRIVER_SIM };
	svm_context *c = NULL;
	CHECK_STATUS(svm_context_create(&bad, &c), -EINVAL);
	bad.struct_size = sizeof(bad);
	CHECK_STATUS(svm_context_create(&bad, &c), -EINVAL); /* SIM without a simulator */
	CHECK(strstr(svm_last_error(), "sim_preset") != NULL);
	bad.driver = 7;
	CHECK_STATUS(svm_context_create(&bad, &c), -EINVAL);
	bad.driver = SVM_DRIVER_SIM;
	bad.sim_preset = "warp-drive";
	CHECK_STATUS(svm_context_create(&bad, &c), -EINVAL);
	/* One simulator source; reserved fields zero. */
	bad.sim_preset = "dgpu";
	bad.sim_topology_file = "/nonexistent.toml";
	CHECK_STATUS(svm_context_create(&bad, &c), -EINVAL);
	CHECK(strstr(svm_last_error(), "set one of") != NULL);
	bad.sim_topology_file = NULL;
	bad._pad = 1;
	CHECK_STATUS(svm_context_create(&bad, &c), -EINVAL);
	CHECK(strstr(svm_last_error(), "_pad") != NULL);
	bad._pad = 0;
	CHECK_OK(svm_context_create(&bad, &c));
	CHECK_OK(svm_context_destroy(c));
	CHECK_OK(svm_context_destroy(NULL));

	/* NULL context and out-pointers. */
	CHECK_STATUS(svm_alloc_vram(NULL, r.dev[0], BUF, 2 * MIB, r.vram[0], 0, &res), -EINVAL);
	CHECK(strstr(svm_last_error(), "ctx is NULL") != NULL);
	CHECK_STATUS(svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF, 2 * MIB, SVM_ACCESS_READ, NULL), -EINVAL);
	CHECK_STATUS(svm_device_open_index(r.ctx, 0, NULL), -EINVAL);
	CHECK_STATUS(svm_device_open(r.ctx, NULL, &dev), -EINVAL);
	CHECK_STATUS(svm_get_stats(r.ctx, NULL), -EINVAL);
	CHECK_STATUS(svm_evict(NULL, BUF, 4096, NULL), -EINVAL);

	/* Ranges: zero, unaligned, overflowing, beyond the user address space. */
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 0, r.vram[0], 0, &res), -EINVAL);
	CHECK(strstr(svm_last_error(), "size is zero") != NULL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF + 1, 2 * MIB, r.vram[0], 0, &res), -EINVAL);
	CHECK(strstr(svm_last_error(), "multiples of 4096") != NULL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 100, r.vram[0], 0, &res), -EINVAL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], UINT64_MAX - 4095, 8192, r.vram[0], 0, &res), -EINVAL);
	CHECK(strstr(svm_last_error(), "overflows") != NULL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], 1ull << 47, 4096, r.vram[0], 0, &res), -EINVAL);
	CHECK_STATUS(svm_evict(r.ctx, BUF, 0, NULL), -EINVAL);
	CHECK_STATUS(svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF, 4095, SVM_ACCESS_READ, &pm), -EINVAL);
	CHECK_STATUS(svm_set_preferred_location(r.ctx, BUF, 0, r.vram[0]), -EINVAL);
	CHECK_STATUS(svm_set_atomic_mode(r.ctx, BUF, 4096, 17), -EINVAL);
	CHECK_STATUS(svm_range_invalidate(r.ctx, UINT64_MAX, 4096), -EINVAL);

	/* Unknown pagemap, flags, access, tile. */
	svm_pagemap junk = { .id = 0x12345678 };
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, junk, 0, &res), -EINVAL);
	svm_pagemap zero = { 0 };
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, zero, 0, &res), -EINVAL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[0], 0x80, &res), -EINVAL);
	CHECK_STATUS(svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF, 4096, 42, &pm), -EINVAL);
	CHECK_STATUS(svm_resolve_pagemap(r.ctx, r.dev[0], 9, BUF, 4096, SVM_ACCESS_READ, &pm), -EINVAL);
	CHECK_STATUS(svm_device_pagemap(r.ctx, r.dev[0], 9, &pm), -EINVAL);
	svm_pagemap bad_tile = { .id = r.vram[0].id + 7 }; /* same device, tile 7 */
	svm_pagemap_info pinfo = { .struct_size = sizeof(pinfo) };
	CHECK_STATUS(svm_pagemap_get_info(r.ctx, bad_tile, &pinfo), -EINVAL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, bad_tile, 0, &res), -EINVAL);
	/* A pagemap of this context's slot 5, which was never opened: unknown
	 * (-EINVAL), as a device handle of that slot is, not a closed one. */
	svm_pagemap unopened = { .id = (r.vram[0].id & ~0xFFFFFFFFull) | 0x0500 };
	CHECK_STATUS(svm_pagemap_get_info(r.ctx, unopened, &pinfo), -EINVAL);
	CHECK(strstr(svm_last_error(), "never opened") != NULL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, unopened, 0, &res), -EINVAL);
	CHECK_STATUS(svm_set_preferred_location(r.ctx, BUF, 2 * MIB, unopened), -EINVAL);
	svm_alloc_result small = { .struct_size = 2 };
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[0], 0, &small), -EINVAL);

	/* Links: a bandwidth must be a real, non-negative number (0: unknown). */
	svm_link lk = { .struct_size = sizeof(lk), .kind = SVM_LINK_PCIE_P2P };
	for (int i = 0; i < 4; i++) {
		const double bad[] = { -1.0, NAN, INFINITY, -INFINITY };
		lk.bandwidth_gbps = bad[i];
		CHECK_STATUS(svm_link_set(r.ctx, r.dev[0], r.dev[1], &lk), -EINVAL);
		CHECK(strstr(svm_last_error(), "bandwidth") != NULL);
	}
	lk.bandwidth_gbps = 0.0;
	CHECK_OK(svm_link_set(r.ctx, r.dev[0], r.dev[1], &lk));
	lk.bandwidth_gbps = 25.0;
	CHECK_OK(svm_link_set(r.ctx, r.dev[0], r.dev[1], &lk));
	/* A device has no link to itself, to set or to ask about. */
	CHECK_STATUS(svm_link_set(r.ctx, r.dev[0], r.dev[0], &lk), -EINVAL);
	CHECK_STATUS(svm_link_get(r.ctx, r.dev[0], r.dev[0], &lk), -EINVAL);
	CHECK(strstr(svm_last_error(), "itself") != NULL);

	/* The simulated process maps and unmaps at page boundaries, as Linux does. */
	CHECK_STATUS(svm_sim_mmap(r.sim, BUF + 1, 4096, 0), -EINVAL);
	CHECK_STATUS(svm_sim_munmap(r.sim, BUF + 100, 4096), -EINVAL);
	CHECK_STATUS(svm_sim_mmap(r.sim, UINT64_MAX & ~4095ull, 8192, 0), -EINVAL);
	CHECK_OK(svm_sim_mmap(r.sim, BUF + 64 * MIB, 100, 0)); /* length rounds up */

	/* Handles of another context. */
	CHECK_STATUS(svm_alloc_vram(r.ctx, other.dev[0], BUF, 2 * MIB, r.vram[0], 0, &res), -EINVAL);
	CHECK(strstr(svm_last_error(), "another context") != NULL || strstr(svm_last_error(), "this context") != NULL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, other.vram[0], 0, &res), -EINVAL);
	CHECK_STATUS(svm_set_preferred_location(r.ctx, BUF, 2 * MIB, other.sys), -EINVAL);
	svm_device made_up = { .id = 0xdeadbeefcafef00dull };
	CHECK_STATUS(svm_device_close(r.ctx, made_up), -EINVAL);

	/* The per-device calls: the same checks, and the device's own. */
	CHECK_STATUS(svm_device_set_preferred_location(NULL, r.dev[0], BUF, 2 * MIB, r.sys), -EINVAL);
	CHECK_STATUS(svm_device_set_preferred_location(r.ctx, r.dev[0], BUF + 1, 2 * MIB, r.sys), -EINVAL);
	CHECK_STATUS(svm_device_set_preferred_location(r.ctx, r.dev[0], BUF, 0, r.sys), -EINVAL);
	CHECK_STATUS(svm_device_set_preferred_location(r.ctx, other.dev[0], BUF, 2 * MIB, r.sys), -EINVAL);
	CHECK_STATUS(svm_device_set_preferred_location(r.ctx, r.dev[0], BUF, 2 * MIB, (svm_pagemap){ 0 }), -EINVAL);
	CHECK_STATUS(svm_device_clear_preferred_location(r.ctx, made_up, BUF, 2 * MIB), -EINVAL);
	CHECK_STATUS(svm_device_set_atomic_mode(r.ctx, r.dev[0], BUF, 2 * MIB, 4), -EINVAL);
	CHECK_STATUS(svm_device_set_atomic_mode(r.ctx, r.dev[0], UINT64_MAX & ~4095ull, 8192, SVM_ATOMIC_DEVICE), -EINVAL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[0], 1u << 5, &res), -EINVAL); /* unknown flag */

	/* A closed device, and its pagemap. */
	CHECK_OK(svm_device_close(r.ctx, r.dev[1]));
	CHECK_STATUS(svm_device_set_preferred_location(r.ctx, r.dev[1], BUF, 2 * MIB, r.sys), -EBADF);
	CHECK_STATUS(svm_device_clear_preferred_location(r.ctx, r.dev[1], BUF, 2 * MIB), -EBADF);
	CHECK_STATUS(svm_device_set_atomic_mode(r.ctx, r.dev[1], BUF, 2 * MIB, SVM_ATOMIC_DEVICE), -EBADF);
	CHECK_STATUS(svm_device_set_preferred_location(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[1]), -EBADF);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[1], BUF, 2 * MIB, r.vram[0], 0, &res), -EBADF);
	CHECK(strstr(svm_last_error(), "closed") != NULL);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[1], 0, &res), -EBADF);
	CHECK_STATUS(svm_device_close(r.ctx, r.dev[1]), -EBADF);
	/* Reopening reuses the slot; the old handle stays dead. */
	CHECK_OK(svm_device_open_index(r.ctx, 1, &dev));
	CHECK(dev.id != r.dev[1].id);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[1], BUF, 2 * MIB, r.vram[0], 0, &res), -EBADF);
	CHECK_STATUS(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[1], 0, &res), -EBADF);

	/* Kernel context: no render nodes here (or not Xe): clear errors. */
	svm_context *k = NULL;
	CHECK_OK(svm_context_create(NULL, &k));
	CHECK(svm_device_open(k, "/nonexistent/renderD128", &dev) == -ENOENT);
	CHECK(svm_device_open(k, "/dev/null", &dev) < 0);
	svm_sim *s = NULL;
	CHECK_STATUS(svm_context_get_sim(k, &s), -ENODEV);
	CHECK_OK(svm_context_destroy(k));

	/* Still fine after all that. */
	res = alloc(&r, 0, BUF, 2 * MIB, r.vram[0], 0);
	CHECK(same_pagemap(res.pagemap, r.vram[0]));
	rig_close(&other);
	rig_close(&r);
	return 0;
}
