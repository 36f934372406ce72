/*
 * Placement in command order from C: svm_place_batch returns before the
 * bind completes, the batch's user fence signals after, each range's
 * outcome is readable, and many ranges go out as one VM_BIND, with the
 * fence lent by the library or given by the runtime.
 */
#include <errno.h>
#include <stdint.h>
#include <xesvm/xe_drm.h>
#include "rig.h"

int main(void)
{
	rig r = rig_open("2dgpu-p2p", NULL, 0, 0);
	for (int i = 0; i < 3; i++)
		CHECK_OK(svm_sim_cpu_access(r.sim, BUF + i * 8 * MIB, 4 * MIB, SVM_ACCESS_WRITE, 5));
	svm_range_placement ranges[3] = {
		{ BUF, 4 * MIB, r.vram[0] }, { BUF + 8 * MIB, 4 * MIB, r.vram[1] }, { BUF + 16 * MIB, 4 * MIB, r.sys },
	};
	svm_sim_counters k0 = counters(&r);
	svm_batch *b = NULL;
	CHECK_OK(svm_place_batch(r.ctx, r.dev[0], ranges, 3, NULL, 0, &b));
	svm_sim_counters k1 = counters(&r);
	CHECK(k1.ioctls - k0.ioctls - (k1.madvise_calls - k0.madvise_calls) == 1); /* one VM_BIND */
	CHECK(svm_batch_signalled(b) == 0); /* returned with the bind in flight */
	uint64_t addr = 0, value = 0;
	CHECK_OK(svm_batch_fence(b, &addr, &value));
	CHECK(addr != 0 && *(volatile uint64_t *)(uintptr_t)addr != value);

	svm_alloc_result res[3];
	for (int i = 0; i < 3; i++)
		res[i] = (svm_alloc_result){ .struct_size = sizeof res[i] };
	CHECK(svm_batch_complete(r.ctx, b, 1000000000, res, 2) == -EINVAL); /* wrong count */
	/* A result without its size is refused before anything is done: the
	 * batch is not completed, and its lent fence word stays readable. */
	res[2].struct_size = 0;
	CHECK(svm_batch_complete(r.ctx, b, 1000000000, res, 3) == -EINVAL);
	CHECK_OK(svm_batch_fence(b, &addr, &value));
	CHECK(addr != 0 && res[0].flags == 0);
	res[2].struct_size = sizeof res[2];
	CHECK_OK(svm_batch_complete(r.ctx, b, 1000000000, res, 3));
	CHECK(svm_batch_signalled(b) == 1);
	for (int i = 0; i < 3; i++) {
		CHECK(res[i].pagemap.id == ranges[i].target.id && (res[i].flags & SVM_RESULT_VERIFIED) && res[i].cause == 0);
		CHECK(lives_in(&r, ranges[i].start, ranges[i].size, i < 2 ? i : -1));
	}
	CHECK_OK(svm_batch_destroy(b));

	/* The runtime's own fence, waited on in its order. */
	uint64_t fence = 0;
	svm_range_placement one = { BUF + 24 * MIB, 2 * MIB, r.vram[0] };
	CHECK_OK(svm_place_batch(r.ctx, r.dev[0], &one, 1, &fence, 0x77, &b));
	CHECK(fence == 0);
	struct xesvm_drm_xe_wait_user_fence w = { .addr = (uintptr_t)&fence, .op = XESVM_DRM_XE_UFENCE_WAIT_OP_EQ, .value = 0x77, .mask = ~0ull, .timeout = 1000000000 };
	CHECK_OK(svm_sim_ioctl(r.sim, r.fd[0], XESVM_DRM_IOCTL_XE_WAIT_USER_FENCE, &w));
	CHECK(fence == 0x77 && svm_batch_signalled(b) == 1);
	CHECK_OK(svm_batch_complete(r.ctx, b, 0, NULL, 0));
	CHECK_OK(svm_batch_destroy(b));

	/* Bad batches: nothing queued. */
	uint64_t before = counters(&r).ioctls;
	svm_range_placement overlap[2] = { { BUF, 4 * MIB, r.vram[0] }, { BUF + 2 * MIB, 2 * MIB, r.vram[0] } };
	CHECK(svm_place_batch(r.ctx, r.dev[0], overlap, 2, NULL, 0, &b) == -EINVAL);
	CHECK(strstr(svm_last_error(), "overlap") != NULL);
	uint64_t words[2] = { 0, 0 };
	CHECK(svm_place_batch(r.ctx, r.dev[0], ranges, 1, (uint64_t *)((char *)words + 4), 1, &b) == -EINVAL);
	CHECK(strstr(svm_last_error(), "aligned") != NULL);
	svm_range_placement past = { (1ull << 47) - 2 * MIB, 4 * MIB, r.vram[0] };
	CHECK(svm_place_batch(r.ctx, r.dev[0], &past, 1, NULL, 0, &b) == -EINVAL);
	CHECK(strstr(svm_last_error(), "2^47") != NULL);
	CHECK(svm_place_batch(r.ctx, r.dev[0], ranges, 0, NULL, 0, &b) == -EINVAL);
	CHECK(svm_place_batch(r.ctx, r.dev[0], NULL, 1, NULL, 0, &b) == -EINVAL);
	svm_range_placement zero = { BUF, 0, r.vram[0] };
	CHECK(svm_place_batch(r.ctx, r.dev[0], &zero, 1, NULL, 0, &b) == -EINVAL);
	CHECK(strstr(svm_last_error(), "size is zero") != NULL);
	CHECK(counters(&r).ioctls == before);
	CHECK(svm_batch_signalled(NULL) == -EINVAL);
	CHECK_OK(svm_batch_destroy(NULL));

	/* A released batch is refused, never read or freed again; so is a
	 * pointer svm_place_batch never made. */
	CHECK_OK(svm_place_batch(r.ctx, r.dev[0], ranges, 1, NULL, 0, &b));
	CHECK_OK(svm_batch_complete(r.ctx, b, 1000000000, NULL, 0));
	CHECK_OK(svm_batch_destroy(b));
	uint64_t word, word_value;
	CHECK(svm_batch_signalled(b) == -EINVAL);
	CHECK(svm_batch_fence(b, &word, &word_value) == -EINVAL);
	CHECK(svm_batch_complete(r.ctx, b, 0, NULL, 0) == -EINVAL);
	CHECK(strstr(svm_last_error(), "released") != NULL);
	CHECK(svm_batch_destroy(b) == -EINVAL);
	CHECK(svm_batch_destroy((svm_batch *)&word) == -EINVAL);
	/* A handle, not an address: a stale one stays refused once a newer
	 * batch exists (wherever the allocator put it), and the newer one is
	 * untouched by the stale calls. */
	svm_batch *stale = b, *newer = NULL;
	CHECK_OK(svm_place_batch(r.ctx, r.dev[0], ranges, 1, NULL, 0, &newer));
	CHECK(newer != stale);
	CHECK(svm_batch_destroy(stale) == -EINVAL);
	CHECK(svm_batch_signalled(stale) == -EINVAL);
	CHECK_OK(svm_batch_complete(r.ctx, newer, 1000000000, NULL, 0));
	CHECK(svm_batch_signalled(newer) == 1);
	CHECK_OK(svm_batch_destroy(newer));
	rig_close(&r);

	/* A batch outliving its context belongs to no later context, whatever
	 * address the allocator gives that one (the serial decides). */
	for (int k = 0; k < 8; k++) { /* the allocator often reuses the address */
		rig a = rig_open("dgpu", NULL, 0, 0);
		svm_range_placement one = { BUF, 2 * MIB, a.vram[0] };
		svm_batch *orphan = NULL;
		CHECK_OK(svm_place_batch(a.ctx, a.dev[0], &one, 1, NULL, 0, &orphan));
		rig_close(&a);
		rig c = rig_open("dgpu", NULL, 0, 0);
		CHECK(svm_batch_complete(c.ctx, orphan, 0, NULL, 0) == -EINVAL);
		CHECK(strstr(svm_last_error(), "another context") != NULL);
		CHECK_OK(svm_batch_destroy(orphan));
		rig_close(&c);
	}
	puts("test_batch: ok");
	return 0;
}
