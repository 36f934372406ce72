/* svm_alloc_result says everything, on failure too: where the range is
 * now, the retries and ioctls of the attempt, the errno, and which device
 * VMs took the attributes. A device lost during an attribute call makes it
 * fail with that device's errno, every other VM holding the value. */
#include <stddef.h>
#include "rig.h"

#define VM_BIND_REQUEST 0x40886445u

static uint32_t index_of(rig *r, int i)
{
	svm_device_info info = { .struct_size = sizeof(info) };
	CHECK_OK(svm_device_get_info(r->ctx, r->dev[i], &info));
	return info.index;
}

int main(void)
{
	rig r = rig_open("2dgpu-p2p", NULL, 0, 0);
	uint32_t i0 = index_of(&r, 0), i1 = index_of(&r, 1);
	CHECK(i0 != i1 && i0 < 64 && i1 < 64);
	/* Device identity by PCI address (the simulated devices sit on buses 3
	 * and 4); a caller built against 0.1.0's smaller struct still works. */
	svm_device_info a = { .struct_size = sizeof(a) }, b = { .struct_size = sizeof(b) };
	CHECK_OK(svm_device_get_info(r.ctx, r.dev[0], &a));
	CHECK_OK(svm_device_get_info(r.ctx, r.dev[1], &b));
	CHECK(a.has_pci && b.has_pci && a.pci_domain == 0 && a.pci_bus == 3 && b.pci_bus == 4 && a.pci_device == 0 && a.pci_function == 0);
	svm_device_info old = { .struct_size = offsetof(svm_device_info, has_pci) };
	CHECK_OK(svm_device_get_info(r.ctx, r.dev[0], &old));
	CHECK(old.struct_size == offsetof(svm_device_info, has_pci) && old.index == i0);

	/* Placed in GPU 0's VRAM: both VMs take the preferred location. */
	svm_alloc_result res = { .struct_size = sizeof(res) };
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[0], 0, &res));
	CHECK(res.cause == 0 && res.vms_refused == 0);
	/* The engine's placements count by the strategy that ran (the rule
	 * cascade: the rig's contexts ask for SVM_CONTEXT_ENGINE_RULES); an
	 * explicit one does not. A caller built before those counts gets the
	 * fields it knows. */
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], BUF + 12 * MIB, 2 * MIB, r.vram[0], SVM_ALLOC_ENGINE, &res));
	svm_stats st = { .struct_size = sizeof(st) };
	CHECK_OK(svm_get_stats(r.ctx, &st));
	CHECK(st.struct_size == sizeof(st) && st.engine_cascade == 1 && st.engine_faults == 0 && st.engine_prefetch == 0);
	svm_stats old_st = { .struct_size = offsetof(svm_stats, engine_faults), .engine_faults = 7 };
	CHECK_OK(svm_get_stats(r.ctx, &old_st));
	CHECK(old_st.struct_size == offsetof(svm_stats, engine_faults) && old_st.engine_faults == 7 && old_st.alloc_calls == st.alloc_calls);

	/* GPU 0 asks for GPU 1's VRAM, without fallback, while every VM_BIND
	 * fails ENOMEM: GPU 0's VM takes the peer preference (a madvise), the
	 * prefetch never succeeds. */
	svm_sim_injection inj = { .struct_size = sizeof(inj), .point = SVM_SIM_INJECT_IOCTL, .device = -1,
				  .request = VM_BIND_REQUEST, .error = -ENOMEM, .count = 100 };
	CHECK_OK(svm_sim_inject(r.sim, &inj));
	memset(&res, 0xff, sizeof(res));
	res.struct_size = sizeof(res);
	CHECK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[1], SVM_ALLOC_NO_FALLBACK, &res) == -ENOMEM);
	CHECK(res.struct_size == sizeof(res));
	CHECK(res.cause == -ENOMEM && res.retries >= 1 && res.ioctls > 0 && res.bytes_moved == 0);
	CHECK(res.pagemap.id == r.vram[0].id); /* still where it was */
	CHECK(!(res.flags & (SVM_RESULT_IN_PLACE | SVM_RESULT_FELL_BACK)));
	CHECK(res.vms_applied & (1ull << i0)); /* GPU 0's VM prefers GPU 1's VRAM now */
	CHECK(res.vms_refused == 0);
	CHECK_OK(svm_sim_inject_clear(r.sim));

	/* Bad arguments: an error before anything is known, result untouched. */
	memset(&res, 0, sizeof(res));
	res.struct_size = sizeof(res);
	CHECK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 0, r.vram[0], 0, &res) == -EINVAL);
	CHECK(res.pagemap.id == 0 && res.ioctls == 0);

	/* GPU 1 wedged: an atomic mode set on both VMs reaches GPU 0's and fails
	 * with GPU 1's errno; GPU 0 keeps working. */
	CHECK_OK(svm_sim_remove_device(r.sim, 1, -ECANCELED));
	CHECK(svm_set_atomic_mode(r.ctx, BUF, 2 * MIB, SVM_ATOMIC_DEVICE) == -ECANCELED);
	svm_range_info q = { .struct_size = sizeof(q) };
	CHECK_OK(svm_range_query(r.ctx, BUF, 2 * MIB, &q));
	CHECK(q.ndevices >= 1);
	/* A second call knows GPU 1 is gone: applied to every live VM, 0. */
	CHECK_OK(svm_set_atomic_mode(r.ctx, BUF + 4 * MIB, 2 * MIB, SVM_ATOMIC_DEVICE));
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], BUF + 8 * MIB, 2 * MIB, r.vram[0], 0, &res));
	CHECK_OK(svm_context_destroy(r.ctx));
	CHECK_OK(svm_sim_destroy(r.sim));

	/* Two tiles per device, the choice handed to the engine: a range that
	 * moved before is left to the GPU fault (SVM_RESULT_ON_FAULT, nothing
	 * moved by the call), unless the caller says SVM_ALLOC_PREFETCH_NOW.
	 * An explicit request (no SVM_ALLOC_ENGINE) always moves now. */
	rig m = rig_open("max-node", NULL, 0, 0);
	CHECK_OK(svm_alloc_vram(m.ctx, m.dev[0], BUF, 2 * MIB, m.vram[0], 0, &res));
	CHECK(!(res.flags & SVM_RESULT_ON_FAULT) && res.bytes_moved == 2 * MIB);
	CHECK_OK(svm_alloc_vram(m.ctx, m.dev[1], BUF + 4 * MIB, 2 * MIB, m.vram[1], 0, &res));
	CHECK_OK(svm_alloc_vram(m.ctx, m.dev[0], BUF + 4 * MIB, 2 * MIB, m.vram[0], 0, &res));
	CHECK(!(res.flags & SVM_RESULT_ON_FAULT) && res.bytes_moved == 2 * MIB && lives_in(&m, BUF + 4 * MIB, 2 * MIB, 0));
	CHECK_OK(svm_alloc_vram(m.ctx, m.dev[1], BUF, 2 * MIB, m.vram[1], SVM_ALLOC_ENGINE, &res));
	CHECK((res.flags & SVM_RESULT_ON_FAULT) && res.bytes_moved == 0 && res.pagemap.id == m.vram[1].id);
	CHECK(lives_in(&m, BUF, 2 * MIB, 0));
	CHECK_OK(gpu(&m, 1, BUF, 2 * MIB, SVM_ACCESS_READ));
	CHECK(lives_in(&m, BUF, 2 * MIB, 1));
	CHECK_OK(svm_alloc_vram(m.ctx, m.dev[2], BUF, 2 * MIB, m.vram[2], SVM_ALLOC_ENGINE | SVM_ALLOC_PREFETCH_NOW, &res));
	CHECK(!(res.flags & SVM_RESULT_ON_FAULT) && res.bytes_moved == 2 * MIB && lives_in(&m, BUF, 2 * MIB, 2));
	rig_close(&m);
	puts("test_place_result: ok");
	return 0;
}
