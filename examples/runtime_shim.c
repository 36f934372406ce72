/*
 * A runtime's SVM entry points as a thin shim over xesvm (docs/integration.md):
 * what Level Zero's zeCommandListAppendMemAdvise / zeCommandListAppendMemoryPrefetch,
 * OpenCL's clEnqueueSVMMigrateMem and SYCL's prefetch / mem_advise become.
 * Run here on the simulated driver (2 GPUs with PCIe P2P); on hardware, the
 * same shim runs with svm_context_create(NULL, ...) and real render nodes.
 *
 * Unlike the runtimes today, the shim hands back what happened: where the
 * range went, whether it moved, fell back or was pinned, and whether the
 * process's page table confirmed it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xesvm.h>

#define MIB (1ull << 20)

/* ---- the shim ---------------------------------------------------------- */

enum shim_advice { /* ze_memory_advice_t, the SVM-relevant ones */
	SHIM_SET_PREFERRED_LOCATION,
	SHIM_CLEAR_PREFERRED_LOCATION,
	SHIM_SET_SYSTEM_MEMORY_PREFERRED_LOCATION,
	SHIM_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION,
	SHIM_SET_READ_MOSTLY,
	SHIM_CLEAR_READ_MOSTLY,
	SHIM_SET_NON_ATOMIC_MOSTLY,
	SHIM_CLEAR_NON_ATOMIC_MOSTLY,
};

typedef struct shim {
	svm_context *ctx;
	uint32_t ndev;
	svm_device dev[8];
	svm_pagemap vram[8];
	svm_pagemap sys;
} shim;

static int shim_init(shim *s, svm_sim *sim)
{
	memset(s, 0, sizeof *s);
	svm_context_config cfg = { .struct_size = sizeof cfg, .driver = SVM_DRIVER_SIM, .sim = sim };
	int rc = svm_context_create(sim ? &cfg : NULL, &s->ctx);
	if (rc)
		return rc;
	while (s->ndev < 8 && svm_device_open_index(s->ctx, s->ndev, &s->dev[s->ndev]) == 0) {
		if (svm_device_pagemap(s->ctx, s->dev[s->ndev], 0, &s->vram[s->ndev]) != 0)
			s->vram[s->ndev] = (svm_pagemap){ 0 }; /* integrated: no VRAM */
		s->ndev++;
	}
	return s->ndev ? svm_system_pagemap(s->ctx, &s->sys) : -ENODEV;
}

/* zeCommandListAppendMemAdvise(hDevice, ptr, size, advice) and SYCL's
 * queue::mem_advise. Intel's runtime answers READ_MOSTLY with success and
 * no ioctl; the Xe kernel has no replication, so the shim says "not done"
 * (-EOPNOTSUPP) rather than pretend. */
static int shim_mem_advise(shim *s, uint32_t device, uint64_t ptr, uint64_t size, enum shim_advice advice)
{
	switch (advice) {
	case SHIM_SET_PREFERRED_LOCATION:
		return svm_set_preferred_location(s->ctx, ptr, size, s->vram[device].id ? s->vram[device] : s->sys);
	case SHIM_SET_SYSTEM_MEMORY_PREFERRED_LOCATION:
		return svm_set_preferred_location(s->ctx, ptr, size, s->sys);
	case SHIM_CLEAR_PREFERRED_LOCATION:
	case SHIM_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION:
		return svm_clear_preferred_location(s->ctx, ptr, size);
	case SHIM_SET_NON_ATOMIC_MOSTLY:
	case SHIM_CLEAR_NON_ATOMIC_MOSTLY:
		/* No kernel attribute says "rarely atomic": atomics keep their
		 * default (local VRAM when they happen). */
		return 0;
	case SHIM_SET_READ_MOSTLY:
	case SHIM_CLEAR_READ_MOSTLY:
		return -EOPNOTSUPP;
	}
	return -EINVAL;
}

/* zeCommandListAppendMemoryPrefetch(ptr, size) on a device's command list,
 * SYCL's queue::prefetch: where should it live, then make it live there.
 * The result the runtime drops today comes back here. */
static int shim_prefetch(shim *s, uint32_t device, uint64_t ptr, uint64_t size, svm_alloc_result *r)
{
	svm_pagemap where;
	int rc = svm_resolve_pagemap(s->ctx, s->dev[device], 0, ptr, size, SVM_ACCESS_READ, &where);
	if (rc)
		return rc;
	r->struct_size = sizeof *r;
	return svm_alloc_vram(s->ctx, s->dev[device], ptr, size, where, 0, r);
}

/* clEnqueueSVMMigrateMem(queue, 1, &ptr, &size, flags): to the queue's
 * device, or with CL_MIGRATE_MEM_OBJECT_HOST back to system memory. */
#define SHIM_CL_MIGRATE_MEM_OBJECT_HOST (1 << 0)
static int shim_cl_migrate(shim *s, uint32_t device, uint64_t ptr, uint64_t size, unsigned flags, svm_alloc_result *r)
{
	r->struct_size = sizeof *r;
	if (flags & SHIM_CL_MIGRATE_MEM_OBJECT_HOST)
		return svm_evict(s->ctx, ptr, size, r);
	return svm_alloc_vram(s->ctx, s->dev[device], ptr, size, s->vram[device].id ? s->vram[device] : s->sys, 0, r);
}

static const char *outcome(const svm_alloc_result *r)
{
	static char buf[128];
	snprintf(buf, sizeof buf, "%s%s%s%s, %llu MiB moved",
		 (r->flags & SVM_RESULT_IN_PLACE) ? "in place" : "placed",
		 (r->flags & SVM_RESULT_FELL_BACK) ? ", fell back" : "",
		 (r->flags & SVM_RESULT_PINNED) ? ", pinned" : "",
		 (r->flags & SVM_RESULT_VERIFIED) ? ", verified" : ", believed",
		 (unsigned long long)(r->bytes_moved / MIB));
	return buf;
}

/* ---- an application, on the simulated driver -------------------------- */

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: %s failed (%s)\n", __FILE__, __LINE__, #cond, svm_last_error()); exit(1); } } while (0)

int main(void)
{
	svm_sim *sim;
	CHECK(svm_sim_create("2dgpu-p2p", &sim) == 0);
	shim s;
	CHECK(shim_init(&s, sim) == 0 && s.ndev == 2);
	uint64_t buf = 0x1000000000ull, size = 16 * MIB; /* zeMemAllocShared / clSVMAlloc */
	CHECK(svm_sim_cpu_access(sim, buf, size, SVM_ACCESS_WRITE, 1) == 0); /* the host fills it */

	svm_alloc_result r;
	CHECK(shim_prefetch(&s, 0, buf, size, &r) == 0);
	printf("prefetch to GPU 0:                 %s\n", outcome(&r));
	CHECK(r.bytes_moved == size && r.pagemap.id == s.vram[0].id);
	CHECK(shim_prefetch(&s, 0, buf, size, &r) == 0 && (r.flags & SVM_RESULT_IN_PLACE));
	printf("prefetch to GPU 0 again:           %s\n", outcome(&r));

	/* GPU 1 should read it where it is: preferred location GPU 0. */
	CHECK(shim_mem_advise(&s, 0, buf, size, SHIM_SET_PREFERRED_LOCATION) == 0);
	CHECK(shim_prefetch(&s, 1, buf, size, &r) == 0);
	printf("prefetch to GPU 1, preferred GPU 0: %s (served over the link)\n", outcome(&r));
	CHECK(r.pagemap.id == s.vram[0].id && r.bytes_moved == 0);
	svm_sim_counters k = { .struct_size = sizeof k };
	CHECK(svm_sim_get_counters(sim, &k) == 0);
	uint64_t migrations = k.migrations_to_vram + k.migrations_device_to_device;
	/* GPU 1's kernel reads it: mapped over P2P, nothing moves. */
	svm_device_info info = { .struct_size = sizeof info };
	CHECK(svm_device_get_info(s.ctx, s.dev[1], &info) == 0);
	CHECK(svm_sim_gpu_access(sim, info.fd, info.vm_id, 0, buf, size, SVM_ACCESS_READ, 0) == 0);
	CHECK(svm_sim_get_counters(sim, &k) == 0 && k.migrations_to_vram + k.migrations_device_to_device == migrations);
	CHECK(shim_mem_advise(&s, 0, buf, size, SHIM_CLEAR_PREFERRED_LOCATION) == 0);
	CHECK(shim_prefetch(&s, 1, buf, size, &r) == 0);
	printf("cleared, prefetch to GPU 1:        %s\n", outcome(&r));
	CHECK(r.pagemap.id == s.vram[1].id && r.bytes_moved == size);
	CHECK(svm_sim_get_counters(sim, &k) == 0 && k.migrations_to_vram + k.migrations_device_to_device > migrations);

	CHECK(shim_mem_advise(&s, 0, buf, size, SHIM_SET_READ_MOSTLY) == -EOPNOTSUPP);
	CHECK(shim_mem_advise(&s, 0, buf, size, SHIM_SET_NON_ATOMIC_MOSTLY) == 0);
	CHECK(shim_mem_advise(&s, 0, buf, size, SHIM_SET_SYSTEM_MEMORY_PREFERRED_LOCATION) == 0);
	CHECK(shim_mem_advise(&s, 0, buf, size, SHIM_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION) == 0);

	/* OpenCL: migrate to the host before the CPU reads the result. */
	CHECK(shim_cl_migrate(&s, 1, buf, size, SHIM_CL_MIGRATE_MEM_OBJECT_HOST, &r) == 0);
	printf("clEnqueueSVMMigrateMem(HOST):      %s\n", outcome(&r));
	CHECK(r.pagemap.id == s.sys.id && r.bytes_moved == size);
	svm_sim_residency res;
	CHECK(svm_sim_get_residency(sim, buf, size, &res) == 0 && res.kind == SVM_PLACE_SYSTEM);
	CHECK(shim_cl_migrate(&s, 0, buf, 4 * MIB, 0, &r) == 0 && r.pagemap.id == s.vram[0].id);
	printf("clEnqueueSVMMigrateMem(GPU 0):     %s\n", outcome(&r));

	CHECK(svm_sim_check(sim) == 0);
	CHECK(svm_context_destroy(s.ctx) == 0);
	CHECK(svm_sim_destroy(sim) == 0);
	puts("runtime_shim: ok");
	return 0;
}
