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

enum shim_advice { /* ze_memory_advice_t, in its order */
	SHIM_SET_READ_MOSTLY,
	SHIM_CLEAR_READ_MOSTLY,
	SHIM_SET_PREFERRED_LOCATION,
	SHIM_CLEAR_PREFERRED_LOCATION,
	SHIM_SET_NON_ATOMIC_MOSTLY,
	SHIM_CLEAR_NON_ATOMIC_MOSTLY,
	SHIM_BIAS_CACHED,
	SHIM_BIAS_UNCACHED,
	SHIM_SET_SYSTEM_MEMORY_PREFERRED_LOCATION,
	SHIM_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION,
};

/* ze_memory_atomic_attr_exp_flags_t (zeMemSetAtomicAccessAttributeExp). */
#define SHIM_ATOMICS_NO_ATOMICS (1u << 0)
#define SHIM_ATOMICS_NO_HOST (1u << 1)
#define SHIM_ATOMICS_HOST (1u << 2)
#define SHIM_ATOMICS_NO_DEVICE (1u << 3)
#define SHIM_ATOMICS_DEVICE (1u << 4)
#define SHIM_ATOMICS_NO_SYSTEM (1u << 5)
#define SHIM_ATOMICS_SYSTEM (1u << 6)

/* The runtime's own allocation table (zeMemAllocShared / clSVMAlloc): what
 * "the whole allocation" is when OpenCL passes size 0 or sizes NULL. */
typedef struct shim_alloc {
	uint64_t ptr, size;
} shim_alloc;

typedef struct shim {
	svm_context *ctx;
	uint32_t ndev;
	svm_device dev[8];
	svm_pagemap vram[8];
	svm_pagemap sys;
	shim_alloc allocs[16];
	int nallocs;
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

/* The library takes page-aligned spans (-EINVAL otherwise); the APIs take
 * any pointer and size. Widen to whole 4 KiB pages, as Intel's compute
 * runtime does before its own madvise and prefetch. */
static void shim_pages(uint64_t *ptr, uint64_t *size)
{
	uint64_t start = *ptr & ~4095ull, end = (*ptr + *size + 4095) & ~4095ull;
	*ptr = start;
	*size = end - start;
}

/* zeCommandListAppendMemAdvise(hDevice, ptr, size, advice) and SYCL's
 * queue::mem_advise. Level Zero says an advice the driver cannot honour is
 * a hint it may ignore: BIAS_* and NON_ATOMIC_MOSTLY have no xe attribute
 * and succeed doing nothing; READ_MOSTLY is a hint the library uses. */
static int shim_mem_advise(shim *s, uint32_t device, uint64_t ptr, uint64_t size, enum shim_advice advice)
{
	shim_pages(&ptr, &size);
	switch (advice) {
	case SHIM_SET_READ_MOSTLY:
	case SHIM_CLEAR_READ_MOSTLY:
		return svm_set_read_mostly(s->ctx, ptr, size, advice == SHIM_SET_READ_MOSTLY);
	case SHIM_SET_PREFERRED_LOCATION:
		return svm_set_preferred_location(s->ctx, ptr, size, s->vram[device].id ? s->vram[device] : s->sys);
	case SHIM_SET_SYSTEM_MEMORY_PREFERRED_LOCATION:
		return svm_set_preferred_location(s->ctx, ptr, size, s->sys);
	case SHIM_CLEAR_PREFERRED_LOCATION:
	case SHIM_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION:
		return svm_clear_preferred_location(s->ctx, ptr, size);
	case SHIM_SET_NON_ATOMIC_MOSTLY:
	case SHIM_CLEAR_NON_ATOMIC_MOSTLY:
	case SHIM_BIAS_CACHED:
	case SHIM_BIAS_UNCACHED:
		return 0;
	}
	return -EINVAL;
}

/* zeMemSetAtomicAccessAttributeExp(hDevice, ptr, size, attr): the kernel's
 * atomic mode is per VM, and the library keeps it equal on every device's
 * VM, so hDevice only picks which device asks. */
static int shim_set_atomic_access(shim *s, uint64_t ptr, uint64_t size, uint32_t attr)
{
	uint32_t mode = SVM_ATOMIC_UNDEFINED;
	if (attr & SHIM_ATOMICS_SYSTEM)
		mode = SVM_ATOMIC_GLOBAL;                /* GPU and CPU atomics */
	else if (attr & SHIM_ATOMICS_DEVICE)
		mode = SVM_ATOMIC_DEVICE;                /* GPU atomics only */
	else if (attr & (SHIM_ATOMICS_HOST | SHIM_ATOMICS_NO_DEVICE | SHIM_ATOMICS_NO_ATOMICS))
		mode = SVM_ATOMIC_CPU;                   /* a GPU atomic then fails (-EACCES) */
	else if (attr & (SHIM_ATOMICS_NO_HOST | SHIM_ATOMICS_NO_SYSTEM))
		mode = SVM_ATOMIC_DEVICE;
	shim_pages(&ptr, &size);
	return svm_set_atomic_mode(s->ctx, ptr, size, mode);
}

/* zeCommandListAppendMemoryPrefetch(ptr, size) on a device's command list,
 * SYCL's queue::prefetch, clEnqueueMigrateMemINTEL to a device: where should
 * it live, then make it live there. The result the runtime drops today
 * comes back here. Called when the command list executes, in its order
 * (docs/integration.md, "When to call"). */
static int shim_prefetch(shim *s, uint32_t device, uint64_t ptr, uint64_t size, svm_alloc_result *r)
{
	shim_pages(&ptr, &size);
	svm_pagemap where;
	/* The application asked for it on this device: a prefetch, not a read
	 * (a first read of system memory would be served in place). */
	int rc = svm_resolve_pagemap(s->ctx, s->dev[device], 0, ptr, size, SVM_ACCESS_PREFETCH, &where);
	if (rc)
		return rc;
	r->struct_size = sizeof *r;
	/* And moved now, not at the launch's fault (SVM_RESULT_ON_FAULT). */
	return svm_alloc_vram(s->ctx, s->dev[device], ptr, size, where, SVM_ALLOC_PREFETCH_NOW, r);
}

/* A command list: zeCommandListAppendMemoryPrefetch only records (append
 * time); zeCommandQueueExecuteCommandLists sends every recorded prefetch as
 * one VM_BIND in command order, after the kernels ahead of it (execute
 * time), and the list's next kernel waits on the batch's fence. */
typedef struct shim_cmdlist {
	uint32_t device;
	svm_range_placement prefetch[16];
	uint32_t n;
} shim_cmdlist;

static int shim_append_prefetch(shim *s, shim_cmdlist *cl, uint64_t ptr, uint64_t size)
{
	if (cl->n == 16)
		return -ENOSPC;
	shim_pages(&ptr, &size);
	svm_pagemap where;
	int rc = svm_resolve_pagemap(s->ctx, s->dev[cl->device], 0, ptr, size, SVM_ACCESS_READ, &where);
	if (rc)
		return rc;
	cl->prefetch[cl->n++] = (svm_range_placement){ ptr, size, where };
	return 0;
}

/* Returns the batch whose fence the list's next kernel waits on. */
static int shim_execute(shim *s, shim_cmdlist *cl, svm_batch **b)
{
	return svm_place_batch(s->ctx, s->dev[cl->device], cl->prefetch, cl->n, NULL, 0, b);
}

/* clEnqueueSVMMigrateMem(queue, n, ptrs, sizes, flags): to the queue's
 * device, or with CL_MIGRATE_MEM_OBJECT_HOST back to system memory. A size
 * of 0 (or sizes NULL) means the whole allocation the pointer is in. */
#define SHIM_CL_MIGRATE_MEM_OBJECT_HOST (1 << 0)
static int shim_cl_migrate(shim *s, uint32_t device, uint64_t ptr, uint64_t size, unsigned flags, svm_alloc_result *r)
{
	if (size == 0) {
		int i;
		for (i = 0; i < s->nallocs; i++)
			if (ptr >= s->allocs[i].ptr && ptr < s->allocs[i].ptr + s->allocs[i].size)
				break;
		if (i == s->nallocs)
			return -EINVAL; /* CL_INVALID_VALUE: not an SVM allocation */
		ptr = s->allocs[i].ptr;
		size = s->allocs[i].size;
	}
	shim_pages(&ptr, &size);
	r->struct_size = sizeof *r;
	if (flags & SHIM_CL_MIGRATE_MEM_OBJECT_HOST)
		return svm_evict(s->ctx, ptr, size, r);
	return svm_alloc_vram(s->ctx, s->dev[device], ptr, size, s->vram[device].id ? s->vram[device] : s->sys, 0, r);
}

/* clEnqueueMemAdviseINTEL (cl_intel_unified_shared_memory) takes the same
 * advice values as Level Zero in Intel's implementation. */
static int shim_cl_mem_advise_intel(shim *s, uint32_t device, uint64_t ptr, uint64_t size, enum shim_advice advice)
{
	return shim_mem_advise(s, device, ptr, size, advice);
}

/* An errno from xesvm as the API's status (docs/integration.md, "Errors").
 * Values as ze_api.h and cl.h define them. */
static int32_t shim_ze_result(int rc)
{
	switch (rc) {
	case 0: return 0;                                   /* ZE_RESULT_SUCCESS */
	case -ENOMEM: case -ENOSPC: return 0x70000003;      /* ERROR_OUT_OF_DEVICE_MEMORY */
	case -ENODEV: case -ECANCELED: return 0x70000001;   /* ERROR_DEVICE_LOST */
	case -ENOLINK: case -EOPNOTSUPP: return 0x78000003; /* ERROR_UNSUPPORTED_FEATURE */
	case -EBUSY: case -EAGAIN: case -EINTR: case -EACCES: return 0x70010001; /* ERROR_NOT_AVAILABLE */
	case -ETIME: return 1;                              /* NOT_READY */
	case -ECHILD: return 0x78000001;                    /* ERROR_UNINITIALIZED */
	case -EINVAL: case -EFAULT: case -EOVERFLOW: return 0x78000004; /* ERROR_INVALID_ARGUMENT */
	default: return 0x7ffffffe;                         /* ERROR_UNKNOWN */
	}
}

static int32_t shim_cl_status(int rc)
{
	switch (rc) {
	case 0: return 0;                                   /* CL_SUCCESS */
	case -ENOMEM: case -ENOSPC: return -4;              /* CL_MEM_OBJECT_ALLOCATION_FAILURE */
	case -ENODEV: case -ECANCELED: return -2;           /* CL_DEVICE_NOT_AVAILABLE */
	case -ENOLINK: case -EOPNOTSUPP: case -EACCES: return -59; /* CL_INVALID_OPERATION */
	case -ECHILD: return -34;                           /* CL_INVALID_CONTEXT */
	case -EINVAL: case -EFAULT: case -EOVERFLOW: return -30; /* CL_INVALID_VALUE */
	default: return -5;                                 /* CL_OUT_OF_RESOURCES */
	}
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
	s.allocs[s.nallocs++] = (shim_alloc){ buf, size };
	CHECK(svm_sim_cpu_access(sim, buf, size, SVM_ACCESS_WRITE, 1) == 0); /* the host fills it */

	svm_alloc_result r;
	svm_sim_residency res;
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

	/* Every advice value: a hint the driver cannot honour succeeds. */
	for (int a = SHIM_SET_READ_MOSTLY; a <= SHIM_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION; a++)
		CHECK(shim_mem_advise(&s, 0, buf, size, (enum shim_advice)a) == 0);
	/* Unaligned pointers and sizes from the API are widened to pages. */
	CHECK(shim_mem_advise(&s, 0, buf + 100, 5000, SHIM_SET_PREFERRED_LOCATION) == 0);
	CHECK(svm_set_preferred_location(s.ctx, buf + 100, 5000, s.vram[0]) == -EINVAL); /* the library itself does not widen */
	CHECK(shim_mem_advise(&s, 0, buf, size, SHIM_CLEAR_PREFERRED_LOCATION) == 0);

	/* READ_MOSTLY: both GPUs read it from one place both reach. */
	CHECK(shim_mem_advise(&s, 0, buf, size, SHIM_SET_READ_MOSTLY) == 0);
	CHECK(shim_prefetch(&s, 0, buf, size, &r) == 0);
	printf("read-mostly, prefetch to GPU 0:    %s\n", outcome(&r));
	svm_pagemap first = r.pagemap;
	CHECK(shim_prefetch(&s, 1, buf, size, &r) == 0);
	printf("read-mostly, prefetch to GPU 1:    %s\n", outcome(&r));
	CHECK(r.pagemap.id == s.sys.id || r.pagemap.id == first.id);
	CHECK(shim_prefetch(&s, 0, buf, size, &r) == 0 && r.bytes_moved == 0); /* no ping-pong */
	CHECK(shim_mem_advise(&s, 0, buf, size, SHIM_CLEAR_READ_MOSTLY) == 0);

	/* zeMemSetAtomicAccessAttributeExp: host-only atomics make GPU atomics fail. */
	CHECK(shim_set_atomic_access(&s, buf, size, SHIM_ATOMICS_HOST) == 0);
	svm_pagemap where;
	CHECK(svm_resolve_pagemap(s.ctx, s.dev[0], 0, buf, size, SVM_ACCESS_ATOMIC, &where) == -EACCES);
	CHECK(shim_ze_result(-EACCES) == 0x70010001 && shim_cl_status(-EACCES) == -59);
	CHECK(shim_set_atomic_access(&s, buf, size, SHIM_ATOMICS_DEVICE) == 0);
	CHECK(svm_resolve_pagemap(s.ctx, s.dev[0], 0, buf, size, SVM_ACCESS_ATOMIC, &where) == 0);
	CHECK(shim_ze_result(svm_alloc_vram(s.ctx, s.dev[0], buf, 0, where, 0, NULL)) == 0x78000004); /* ERROR_INVALID_ARGUMENT */

	/* OpenCL: migrate to the host before the CPU reads the result. */
	CHECK(shim_cl_migrate(&s, 1, buf, size, SHIM_CL_MIGRATE_MEM_OBJECT_HOST, &r) == 0);
	printf("clEnqueueSVMMigrateMem(HOST):      %s\n", outcome(&r));
	CHECK(r.pagemap.id == s.sys.id); /* read-mostly left it in system memory: nothing to move */
	CHECK(svm_sim_get_residency(sim, buf, size, &res) == 0 && res.kind == SVM_PLACE_SYSTEM);
	CHECK(shim_cl_migrate(&s, 0, buf, 4 * MIB, 0, &r) == 0 && r.pagemap.id == s.vram[0].id);
	printf("clEnqueueSVMMigrateMem(GPU 0):     %s\n", outcome(&r));
	/* Size 0: the whole allocation the pointer is in. */
	CHECK(shim_cl_migrate(&s, 0, buf + 8 * MIB, 0, SHIM_CL_MIGRATE_MEM_OBJECT_HOST, &r) == 0);
	CHECK(svm_sim_get_residency(sim, buf, size, &res) == 0 && res.kind == SVM_PLACE_SYSTEM);
	printf("clEnqueueSVMMigrateMem(HOST, 0):   %s (the whole allocation)\n", outcome(&r));
	CHECK(shim_cl_migrate(&s, 0, 0x2000000000ull, 0, 0, &r) == -EINVAL);
	CHECK(shim_cl_status(-EINVAL) == -30); /* CL_INVALID_VALUE */
	CHECK(shim_cl_mem_advise_intel(&s, 1, buf, size, SHIM_SET_PREFERRED_LOCATION) == 0);

	/* A command list with two prefetches: recorded at append, sent as one
	 * VM_BIND at execute, complete when its fence signals. */
	shim_cmdlist cl = { .device = 1 };
	CHECK(shim_append_prefetch(&s, &cl, buf + 100, 2 * MIB) == 0);
	CHECK(shim_append_prefetch(&s, &cl, buf + 8 * MIB, 4 * MIB) == 0);
	CHECK(svm_sim_get_counters(sim, &k) == 0);
	uint64_t ioctls = k.ioctls;
	svm_batch *b;
	CHECK(shim_execute(&s, &cl, &b) == 0);
	CHECK(svm_batch_signalled(b) == 0); /* in flight: the next kernel waits on its fence */
	svm_alloc_result out[2] = { { .struct_size = sizeof out[0] }, { .struct_size = sizeof out[1] } };
	CHECK(svm_batch_complete(s.ctx, b, 1000000000, out, 2) == 0);
	CHECK(svm_sim_get_counters(sim, &k) == 0);
	printf("command list, 2 prefetches:        %s; %llu ioctls (madvise + one VM_BIND)\n", outcome(&out[0]), (unsigned long long)(k.ioctls - ioctls));
	CHECK(out[0].pagemap.id == cl.prefetch[0].target.id && out[1].pagemap.id == cl.prefetch[1].target.id);
	CHECK(svm_batch_destroy(b) == 0);

	CHECK(svm_sim_check(sim) == 0);
	CHECK(svm_context_destroy(s.ctx) == 0);
	CHECK(svm_sim_destroy(sim) == 0);
	puts("runtime_shim: ok");
	return 0;
}
