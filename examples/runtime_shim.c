/*
 * A runtime's SVM entry points as a thin shim over xesvm, shaped the way
 * Intel's compute runtime (NEO) handles them (docs/integration.md):
 *
 *  - Only shared-system memory goes through xesvm: a pointer that is not in
 *    the runtime's own USM allocation table (zeMemAllocShared, clSVMAlloc,
 *    sycl::malloc_shared are buffer objects the runtime places itself).
 *  - zeCommandListAppendMemAdvise and zeCommandListAppendMemoryPrefetch only
 *    record; zeCommandQueueExecuteCommandLists applies them, every time the
 *    list executes, advice before prefetch. An immediate list applies at
 *    append.
 *  - Advice and prefetch are hints: an execute never fails because one could
 *    not be honoured; the shim's report says what happened.
 *  - A prefetch is an explicit request: the range goes to the device's VRAM
 *    (or to the preferred location advised for that device, as NEO's
 *    CONSULT_MEM_ADVISE_PREF_LOC does), never re-decided.
 *  - Advice and atomic attributes are per device (hDevice), applied to that
 *    device's VMs only.
 *
 * Run here on the simulated driver (2 GPUs with PCIe P2P); on hardware, the
 * same shim adopts the runtime's own fds and VMs (svm_device_adopt).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xesvm.h>

#define MIB (1ull << 20)

/* ---- API values, as the APIs' headers define them -------------------- */

/* ze_memory_advice_t (ze_api.h). */
enum ze_advice {
	ZE_SET_READ_MOSTLY = 0,
	ZE_CLEAR_READ_MOSTLY = 1,
	ZE_SET_PREFERRED_LOCATION = 2,
	ZE_CLEAR_PREFERRED_LOCATION = 3,
	ZE_SET_NON_ATOMIC_MOSTLY = 4,
	ZE_CLEAR_NON_ATOMIC_MOSTLY = 5,
	ZE_BIAS_CACHED = 6,
	ZE_BIAS_UNCACHED = 7,
	ZE_SET_SYSTEM_MEMORY_PREFERRED_LOCATION = 8,
	ZE_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION = 9,
};

/* ze_memory_atomic_attr_exp_flags_t (zeMemSetAtomicAccessAttributeExp). */
#define ZE_ATOMICS_NO_ATOMICS (1u << 0)
#define ZE_ATOMICS_NO_HOST (1u << 1)
#define ZE_ATOMICS_HOST (1u << 2)
#define ZE_ATOMICS_NO_DEVICE (1u << 3)
#define ZE_ATOMICS_DEVICE (1u << 4)
#define ZE_ATOMICS_NO_SYSTEM (1u << 5)
#define ZE_ATOMICS_SYSTEM (1u << 6)
#define ZE_ATOMICS_NO_ANY (ZE_ATOMICS_NO_ATOMICS | ZE_ATOMICS_NO_HOST | ZE_ATOMICS_NO_DEVICE | ZE_ATOMICS_NO_SYSTEM)

/* ze_result_t (ze_api.h). */
#define ZE_RESULT_SUCCESS 0
#define ZE_RESULT_ERROR_DEVICE_LOST 0x70000001
#define ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY 0x70000003
#define ZE_RESULT_ERROR_UNINITIALIZED 0x78000001
#define ZE_RESULT_ERROR_UNSUPPORTED_FEATURE 0x78000003
#define ZE_RESULT_ERROR_INVALID_ARGUMENT 0x78000004
#define ZE_RESULT_ERROR_INVALID_NULL_HANDLE 0x78000005
#define ZE_RESULT_ERROR_INVALID_NULL_POINTER 0x78000007
#define ZE_RESULT_ERROR_INVALID_SIZE 0x78000008
#define ZE_RESULT_ERROR_INVALID_ENUMERATION 0x7800000c
#define ZE_RESULT_ERROR_UNKNOWN 0x7ffffffe

/* cl_mem_advice_intel (cl_ext.h, cl_intel_unified_shared_memory): the
 * extension reserves these and defines no meaning for them yet. */
#define CL_MEM_ADVICE_TBD0_INTEL 0x4208
#define CL_MEM_ADVICE_TBD7_INTEL 0x420F

/* cl_int (cl.h). */
#define CL_SUCCESS 0
#define CL_DEVICE_NOT_AVAILABLE (-2)
#define CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)
#define CL_OUT_OF_RESOURCES (-5)
#define CL_INVALID_VALUE (-30)
#define CL_INVALID_DEVICE (-33)
#define CL_INVALID_CONTEXT (-34)
#define CL_INVALID_OPERATION (-59)

/* ur_usm_advice_flags_t (Unified Runtime's ur_api.h, in its order: bit n is
 * the n-th flag after DEFAULT), which DPC++'s queue::mem_advise passes down. */
#define UR_SET_READ_MOSTLY (1u << 0)
#define UR_CLEAR_READ_MOSTLY (1u << 1)
#define UR_SET_PREFERRED_LOCATION (1u << 2)
#define UR_CLEAR_PREFERRED_LOCATION (1u << 3)
#define UR_SET_NON_ATOMIC_MOSTLY (1u << 4)
#define UR_CLEAR_NON_ATOMIC_MOSTLY (1u << 5)
#define UR_BIAS_CACHED (1u << 6)
#define UR_BIAS_UNCACHED (1u << 7)
#define UR_SET_ACCESSED_BY_DEVICE (1u << 8)
#define UR_CLEAR_ACCESSED_BY_DEVICE (1u << 9)
#define UR_SET_ACCESSED_BY_HOST (1u << 10)
#define UR_CLEAR_ACCESSED_BY_HOST (1u << 11)
#define UR_SET_PREFERRED_LOCATION_HOST (1u << 12)
#define UR_CLEAR_PREFERRED_LOCATION_HOST (1u << 13)
#define UR_SET_NON_COHERENT_MEMORY (1u << 14)
#define UR_CLEAR_NON_COHERENT_MEMORY (1u << 15)

/* ---- the shim ---------------------------------------------------------- */

#define SHIM_MAX_DEVICES 8
#define SHIM_MAX_PREFS 16
#define SHIM_MAX_CMDS 32

/* A range the runtime allocated itself (USM): its own path, not xesvm's. */
typedef struct shim_alloc {
	uint64_t ptr, size;
} shim_alloc;

/* A preferred location advised for one device, which that device's
 * prefetches consult (NEO prefetches with CONSULT_MEM_ADVISE_PREF_LOC). */
typedef struct shim_pref {
	uint32_t device;
	uint64_t ptr, size;
	svm_pagemap where;
} shim_pref;

typedef struct shim {
	svm_context *ctx;
	uint32_t ndev;
	svm_device dev[SHIM_MAX_DEVICES];
	svm_pagemap vram[SHIM_MAX_DEVICES];
	svm_pagemap sys;
	shim_alloc usm[16];
	int nusm;
	shim_pref prefs[SHIM_MAX_PREFS];
	int nprefs;
} shim;

/* What an execute did with its hints: never a failure of the execute. */
typedef struct shim_report {
	uint32_t applied, failed;
	int last_error;            /* the last hint's errno, 0 if none failed */
	uint64_t bytes_moved;
	uint32_t fell_back;
} shim_report;

static int shim_init(shim *s, svm_sim *sim)
{
	memset(s, 0, sizeof *s);
	svm_context_config cfg = { .struct_size = sizeof cfg, .driver = SVM_DRIVER_SIM, .sim = sim,
				   .flags = SVM_CONTEXT_MIRROR_AUTORESET /* as NEO binds its mirror */ };
	int rc = svm_context_create(sim ? &cfg : NULL, &s->ctx);
	if (rc)
		return rc;
	while (s->ndev < SHIM_MAX_DEVICES && svm_device_open_index(s->ctx, s->ndev, &s->dev[s->ndev]) == 0) {
		if (svm_device_pagemap(s->ctx, s->dev[s->ndev], 0, &s->vram[s->ndev]) != 0)
			s->vram[s->ndev] = (svm_pagemap){ 0 }; /* integrated: no VRAM */
		s->ndev++;
	}
	return s->ndev ? svm_system_pagemap(s->ctx, &s->sys) : -ENODEV;
}

/* Whether a pointer is shared-system memory (not in the runtime's USM
 * table), as NEO tells them apart (cmdlist_hw.inl: no allocData). */
static bool shim_is_svm(const shim *s, uint64_t ptr)
{
	for (int i = 0; i < s->nusm; i++)
		if (ptr >= s->usm[i].ptr && ptr < s->usm[i].ptr + s->usm[i].size)
			return false;
	return true;
}

/* The library takes page-aligned spans (-EINVAL otherwise); the APIs take
 * any pointer and size. Widen to whole 4 KiB pages, as NEO does. */
static void shim_pages(uint64_t *ptr, uint64_t *size)
{
	uint64_t start = *ptr & ~4095ull, end = (*ptr + *size + 4095) & ~4095ull;
	*ptr = start;
	*size = end - start;
}

static void shim_forget_pref(shim *s, uint32_t device, uint64_t ptr, uint64_t size)
{
	for (int i = 0; i < s->nprefs; i++)
		if (s->prefs[i].device == device && s->prefs[i].ptr == ptr && s->prefs[i].size == size)
			s->prefs[i--] = s->prefs[--s->nprefs];
}

static void shim_remember_pref(shim *s, uint32_t device, uint64_t ptr, uint64_t size, svm_pagemap where)
{
	shim_forget_pref(s, device, ptr, size);
	if (s->nprefs < SHIM_MAX_PREFS)
		s->prefs[s->nprefs++] = (shim_pref){ device, ptr, size, where };
}

/* One advice for one device, applied now (execute time). BIAS_* and
 * NON_ATOMIC_MOSTLY have no xe attribute: hints the driver may ignore. */
static int shim_apply_advice(shim *s, uint32_t device, uint64_t ptr, uint64_t size, enum ze_advice advice)
{
	shim_pages(&ptr, &size);
	svm_device d = s->dev[device];
	svm_pagemap own = s->vram[device].id ? s->vram[device] : s->sys;
	switch (advice) {
	case ZE_SET_READ_MOSTLY:
	case ZE_CLEAR_READ_MOSTLY:
		return svm_set_read_mostly(s->ctx, ptr, size, advice == ZE_SET_READ_MOSTLY);
	case ZE_SET_PREFERRED_LOCATION:
		shim_remember_pref(s, device, ptr, size, own);
		return svm_device_set_preferred_location(s->ctx, d, ptr, size, own);
	case ZE_SET_SYSTEM_MEMORY_PREFERRED_LOCATION:
		shim_remember_pref(s, device, ptr, size, s->sys);
		return svm_device_set_preferred_location(s->ctx, d, ptr, size, s->sys);
	case ZE_CLEAR_PREFERRED_LOCATION:
	case ZE_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION:
		shim_forget_pref(s, device, ptr, size);
		return svm_device_clear_preferred_location(s->ctx, d, ptr, size);
	case ZE_SET_NON_ATOMIC_MOSTLY:
	case ZE_CLEAR_NON_ATOMIC_MOSTLY:
	case ZE_BIAS_CACHED:
	case ZE_BIAS_UNCACHED:
		return 0;
	}
	return -EINVAL;
}

/* One prefetch to a device, applied now: an explicit request, to the
 * preferred location advised for that device or else its VRAM. */
static int shim_apply_prefetch(shim *s, uint32_t device, uint64_t ptr, uint64_t size, svm_alloc_result *r)
{
	shim_pages(&ptr, &size);
	svm_pagemap where = s->vram[device].id ? s->vram[device] : s->sys;
	for (int i = 0; i < s->nprefs; i++)
		if (s->prefs[i].device == device && ptr >= s->prefs[i].ptr && ptr + size <= s->prefs[i].ptr + s->prefs[i].size)
			where = s->prefs[i].where;
	*r = (svm_alloc_result){ .struct_size = sizeof *r };
	return svm_alloc_vram(s->ctx, s->dev[device], ptr, size, where, 0, r);
}

/* A command list: appends record (cheap, no library call), executes apply. */
enum shim_cmd_kind { SHIM_CMD_ADVISE, SHIM_CMD_PREFETCH };
typedef struct shim_cmd {
	enum shim_cmd_kind kind;
	uint32_t device; /* the advice's hDevice; the list's device for a prefetch */
	uint64_t ptr, size;
	enum ze_advice advice;
} shim_cmd;

typedef struct shim_cmdlist {
	uint32_t device;
	bool immediate;
	shim_cmd cmd[SHIM_MAX_CMDS];
	uint32_t n;
	shim_report last; /* an immediate list's report of its last append */
} shim_cmdlist;

static void shim_hint_done(shim_report *rep, int rc, const svm_alloc_result *r)
{
	if (rc) {
		rep->failed++;
		rep->last_error = rc;
		return;
	}
	rep->applied++;
	if (r) {
		rep->bytes_moved += r->bytes_moved;
		rep->fell_back += !!(r->flags & SVM_RESULT_FELL_BACK);
	}
}

/* Applies a list's recorded hints in NEO's order: every advice (madvise)
 * first, then every prefetch. Hints never fail the execute. */
static void shim_apply_list(shim *s, const shim_cmd *cmd, uint32_t n, shim_report *rep)
{
	for (uint32_t i = 0; i < n; i++)
		if (cmd[i].kind == SHIM_CMD_ADVISE)
			shim_hint_done(rep, shim_apply_advice(s, cmd[i].device, cmd[i].ptr, cmd[i].size, cmd[i].advice), NULL);
	for (uint32_t i = 0; i < n; i++)
		if (cmd[i].kind == SHIM_CMD_PREFETCH) {
			svm_alloc_result r;
			int rc = shim_apply_prefetch(s, cmd[i].device, cmd[i].ptr, cmd[i].size, &r);
			shim_hint_done(rep, rc, &r);
		}
}

static int32_t shim_append(shim *s, shim_cmdlist *cl, shim_cmd c)
{
	if (c.ptr == 0)
		return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
	if (c.size == 0)
		return ZE_RESULT_ERROR_INVALID_SIZE;
	if (c.device >= s->ndev)
		return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
	if (!shim_is_svm(s, c.ptr))
		return ZE_RESULT_SUCCESS; /* USM: the runtime's own buffer-object path */
	if (cl->immediate) {
		cl->last = (shim_report){ 0 };
		shim_apply_list(s, &c, 1, &cl->last);
		return ZE_RESULT_SUCCESS;
	}
	if (cl->n == SHIM_MAX_CMDS)
		return ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY; /* the list is full (a host-side limit here) */
	cl->cmd[cl->n++] = c;
	return ZE_RESULT_SUCCESS;
}

/* zeCommandListAppendMemAdvise(hCommandList, hDevice, ptr, size, advice). */
static int32_t shim_append_mem_advise(shim *s, shim_cmdlist *cl, uint32_t device, uint64_t ptr, uint64_t size, uint32_t advice)
{
	if (advice > ZE_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION)
		return ZE_RESULT_ERROR_INVALID_ENUMERATION;
	return shim_append(s, cl, (shim_cmd){ SHIM_CMD_ADVISE, device, ptr, size, (enum ze_advice)advice });
}

/* zeCommandListAppendMemoryPrefetch(hCommandList, ptr, size). */
static int32_t shim_append_prefetch(shim *s, shim_cmdlist *cl, uint64_t ptr, uint64_t size)
{
	return shim_append(s, cl, (shim_cmd){ SHIM_CMD_PREFETCH, cl->device, ptr, size, 0 });
}

/* zeCommandQueueExecuteCommandLists: the hints of the list, every time. */
static int32_t shim_execute(shim *s, const shim_cmdlist *cl, shim_report *rep)
{
	*rep = (shim_report){ 0 };
	shim_apply_list(s, cl->cmd, cl->n, rep);
	return ZE_RESULT_SUCCESS;
}

/* zeMemSetAtomicAccessAttributeExp(hContext, hDevice, ptr, size, attr), as
 * NEO maps the flags (context.cpp: DEVICE, then HOST, then SYSTEM, each
 * overriding the one before; any NO_* flag means none) onto xe's values. */
static uint32_t shim_atomic_mode(uint32_t attr)
{
	if (attr & ZE_ATOMICS_NO_ANY)
		return SVM_ATOMIC_UNDEFINED;
	if (attr & ZE_ATOMICS_SYSTEM)
		return SVM_ATOMIC_GLOBAL;
	if (attr & ZE_ATOMICS_HOST)
		return SVM_ATOMIC_CPU;
	if (attr & ZE_ATOMICS_DEVICE)
		return SVM_ATOMIC_DEVICE;
	return SVM_ATOMIC_UNDEFINED;
}

static int32_t shim_ze_result(int rc);

static int32_t shim_set_atomic_access(shim *s, uint32_t device, uint64_t ptr, uint64_t size, uint32_t attr)
{
	if (attr & ~0x7fu)
		return ZE_RESULT_ERROR_INVALID_ENUMERATION;
	if (device >= s->ndev)
		return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
	if (!shim_is_svm(s, ptr))
		return ZE_RESULT_SUCCESS;
	shim_pages(&ptr, &size);
	return shim_ze_result(svm_device_set_atomic_mode(s->ctx, s->dev[device], ptr, size, shim_atomic_mode(attr)));
}

/* clEnqueueSVMMigrateMem(queue, n, ptrs, sizes, flags) on an in-order
 * queue, when the queue reaches it: to the queue's device, or with
 * CL_MIGRATE_MEM_OBJECT_HOST back to system memory. A hint too. */
#define SHIM_CL_MIGRATE_MEM_OBJECT_HOST (1 << 0)
static int32_t shim_cl_migrate(shim *s, uint32_t device, uint64_t ptr, uint64_t size, unsigned flags, shim_report *rep)
{
	*rep = (shim_report){ 0 };
	if (ptr == 0 || size == 0)
		return CL_INVALID_VALUE; /* size 0 means "the whole allocation": only for USM, not malloc */
	if (!shim_is_svm(s, ptr))
		return CL_SUCCESS;
	svm_alloc_result r = { .struct_size = sizeof r };
	int rc;
	if (flags & SHIM_CL_MIGRATE_MEM_OBJECT_HOST) {
		shim_pages(&ptr, &size);
		rc = svm_evict(s->ctx, ptr, size, &r);
	} else {
		rc = shim_apply_prefetch(s, device, ptr, size, &r);
	}
	shim_hint_done(rep, rc, &r);
	return CL_SUCCESS;
}

/* clEnqueueMemAdviseINTEL(queue, ptr, size, advice): cl_mem_advice_intel
 * values are the extension's reserved 0x4208-0x420F, which define nothing
 * yet: accepted, and no attribute is set. Anything else is invalid. */
static int32_t shim_cl_mem_advise_intel(shim *s, uint64_t ptr, uint64_t size, uint32_t advice)
{
	(void)s;
	if (ptr == 0 || size == 0 || advice < CL_MEM_ADVICE_TBD0_INTEL || advice > CL_MEM_ADVICE_TBD7_INTEL)
		return CL_INVALID_VALUE;
	return CL_SUCCESS;
}

/* SYCL's queue::mem_advise through Unified Runtime: a mask of UR flags,
 * each one advice for the queue's device (the Level Zero adapter turns
 * them into ze advice; ACCESSED_BY and NON_COHERENT have none). */
static int32_t shim_ur_usm_advise(shim *s, shim_cmdlist *cl, uint64_t ptr, uint64_t size, uint32_t flags)
{
	static const struct { uint32_t bit; enum ze_advice ze; } map[] = {
		{ UR_SET_READ_MOSTLY, ZE_SET_READ_MOSTLY },
		{ UR_CLEAR_READ_MOSTLY, ZE_CLEAR_READ_MOSTLY },
		{ UR_SET_PREFERRED_LOCATION, ZE_SET_PREFERRED_LOCATION },
		{ UR_CLEAR_PREFERRED_LOCATION, ZE_CLEAR_PREFERRED_LOCATION },
		{ UR_SET_NON_ATOMIC_MOSTLY, ZE_SET_NON_ATOMIC_MOSTLY },
		{ UR_CLEAR_NON_ATOMIC_MOSTLY, ZE_CLEAR_NON_ATOMIC_MOSTLY },
		{ UR_BIAS_CACHED, ZE_BIAS_CACHED },
		{ UR_BIAS_UNCACHED, ZE_BIAS_UNCACHED },
		{ UR_SET_PREFERRED_LOCATION_HOST, ZE_SET_SYSTEM_MEMORY_PREFERRED_LOCATION },
		{ UR_CLEAR_PREFERRED_LOCATION_HOST, ZE_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION },
	};
	if (flags & ~0xffffu)
		return ZE_RESULT_ERROR_INVALID_ENUMERATION;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (flags & map[i].bit) {
			int32_t rc = shim_append_mem_advise(s, cl, cl->device, ptr, size, map[i].ze);
			if (rc)
				return rc;
		}
	return ZE_RESULT_SUCCESS;
}

/* A free hook, where an allocator interposer (or the application) gives
 * one: the runtime never sees free() of malloc memory. Without one the
 * library finds out from the page table, and advice is re-issued on every
 * execute anyway under MADVISE_AUTORESET. */
static void shim_free_hook(shim *s, uint64_t ptr, uint64_t size)
{
	shim_pages(&ptr, &size);
	svm_range_invalidate(s->ctx, ptr, size);
}

/* An errno from xesvm as the API's status (docs/integration.md, "Errors"),
 * for the calls that are not hints. */
static int32_t shim_ze_result(int rc)
{
	switch (rc) {
	case 0: return ZE_RESULT_SUCCESS;
	case -EINVAL: case -EFAULT: case -EOVERFLOW: return ZE_RESULT_ERROR_INVALID_ARGUMENT;
	case -EBADF: return ZE_RESULT_ERROR_INVALID_ARGUMENT;      /* a closed or unknown handle */
	case -ENODEV: case -ECANCELED: return ZE_RESULT_ERROR_DEVICE_LOST; /* unplugged, wedged */
	case -ENXIO: case -ENOLINK: case -EOPNOTSUPP: case -EACCES: return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
	case -ENOMEM: case -ENOSPC: return ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY;
	case -ECHILD: return ZE_RESULT_ERROR_UNINITIALIZED;        /* a context of the parent process */
	case -ETIME:                                               /* a bind that never signalled: a hang, not NOT_READY */
	default: return ZE_RESULT_ERROR_UNKNOWN;
	}
}

static int32_t shim_cl_status(int rc)
{
	switch (rc) {
	case 0: return CL_SUCCESS;
	case -EINVAL: case -EFAULT: case -EOVERFLOW: return CL_INVALID_VALUE;
	case -EBADF: case -ENXIO: return CL_INVALID_DEVICE;
	case -ENODEV: case -ECANCELED: return CL_DEVICE_NOT_AVAILABLE;
	case -ENOLINK: case -EOPNOTSUPP: case -EACCES: return CL_INVALID_OPERATION;
	case -ENOMEM: case -ENOSPC: return CL_MEM_OBJECT_ALLOCATION_FAILURE;
	case -ECHILD: return CL_INVALID_CONTEXT;
	default: return CL_OUT_OF_RESOURCES;
	}
}

/* ---- an application, on the simulated driver -------------------------- */

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: %s failed (%s)\n", __FILE__, __LINE__, #cond, svm_last_error()); exit(1); } } while (0)

static svm_sim *sim;

static int lives_in(uint64_t ptr, uint64_t size, int device)
{
	svm_sim_residency r = { 0 };
	if (svm_sim_get_residency(sim, ptr, size, &r) != 0)
		return 0;
	return device < 0 ? r.kind == SVM_PLACE_SYSTEM : r.kind == SVM_PLACE_VRAM && r.device == (uint32_t)device;
}

static uint64_t madvises(void)
{
	svm_sim_counters k = { .struct_size = sizeof k };
	CHECK(svm_sim_get_counters(sim, &k) == 0);
	return k.madvise_calls;
}

static svm_range_device attrs_of(shim *s, uint32_t device, uint64_t ptr, uint64_t size)
{
	svm_range_info q = { .struct_size = sizeof q };
	CHECK(svm_range_query(s->ctx, ptr, size, &q) == 0 && q.ndevices == s->ndev);
	for (uint32_t i = 0; i < q.ndevices; i++)
		if (q.devices[i].device.id == s->dev[device].id)
			return q.devices[i];
	CHECK(!"device in the range query");
	return q.devices[0];
}

int main(void)
{
	CHECK(svm_sim_create("2dgpu-p2p", &sim) == 0);
	shim s;
	CHECK(shim_init(&s, sim) == 0 && s.ndev == 2);
	uint64_t usm = 0x2000000000ull;                       /* zeMemAllocShared: the runtime's own */
	s.usm[s.nusm++] = (shim_alloc){ usm, 16 * MIB };
	uint64_t buf = 0x1000000000ull, size = 16 * MIB;      /* malloc: shared-system memory */
	CHECK(svm_sim_cpu_access(sim, buf, size, SVM_ACCESS_WRITE, 1) == 0);
	shim_report rep;

	/* A USM pointer never reaches xesvm. */
	shim_cmdlist cl = { .device = 0 };
	svm_stats st0 = { .struct_size = sizeof st0 };
	CHECK(svm_get_stats(s.ctx, &st0) == 0);
	CHECK(shim_append_prefetch(&s, &cl, usm, MIB) == ZE_RESULT_SUCCESS && cl.n == 0);
	svm_stats st1 = { .struct_size = sizeof st1 };
	CHECK(svm_get_stats(s.ctx, &st1) == 0 && st1.alloc_calls == st0.alloc_calls);

	/* A prefetch is recorded at append and moves nothing until execute. */
	CHECK(shim_append_prefetch(&s, &cl, buf + 100, size - 100) == ZE_RESULT_SUCCESS);
	CHECK(lives_in(buf, size, -1));
	CHECK(shim_execute(&s, &cl, &rep) == ZE_RESULT_SUCCESS);
	printf("execute 1: %u hints, %llu MiB moved\n", rep.applied, (unsigned long long)(rep.bytes_moved / MIB));
	CHECK(rep.applied == 1 && rep.bytes_moved == size && lives_in(buf, size, 0));
	/* The host takes it back; the next execute moves it again: every execute. */
	CHECK(svm_sim_cpu_access(sim, buf, size, SVM_ACCESS_WRITE, 2) == 0 && lives_in(buf, size, -1));
	CHECK(shim_execute(&s, &cl, &rep) == ZE_RESULT_SUCCESS);
	printf("execute 2: %u hints, %llu MiB moved\n", rep.applied, (unsigned long long)(rep.bytes_moved / MIB));
	CHECK(rep.bytes_moved == size && lives_in(buf, size, 0));

	/* Alternating prefetches on two devices' lists are each honoured: an
	 * explicit request is never pinned or re-decided. */
	shim_cmdlist other = { .device = 1 };
	CHECK(shim_append_prefetch(&s, &other, buf, size) == ZE_RESULT_SUCCESS);
	for (int i = 0; i < 6; i++) {
		CHECK(shim_execute(&s, i % 2 ? &cl : &other, &rep) == ZE_RESULT_SUCCESS);
		CHECK(rep.bytes_moved == size && lives_in(buf, size, i % 2 ? 0 : 1));
	}

	/* Advice recorded at append applies at execute, before the list's
	 * prefetches, on the advised device's VM only: system memory preferred
	 * for GPU 1, whose prefetch then consults it. */
	shim_cmdlist adv = { .device = 1 };
	CHECK(shim_append_prefetch(&s, &adv, buf, size) == ZE_RESULT_SUCCESS);
	CHECK(shim_append_mem_advise(&s, &adv, 1, buf, size, ZE_SET_SYSTEM_MEMORY_PREFERRED_LOCATION) == ZE_RESULT_SUCCESS);
	CHECK(shim_append_mem_advise(&s, &adv, 0, buf, size, ZE_SET_PREFERRED_LOCATION) == ZE_RESULT_SUCCESS);
	CHECK(attrs_of(&s, 1, buf, size).preferred_fd == 0); /* recorded, not applied */
	CHECK(shim_execute(&s, &adv, &rep) == ZE_RESULT_SUCCESS && rep.applied == 3);
	/* Each device's VM holds its own advice; the prefetch to system memory
	 * left GPU 0's alone (the runtime advised it otherwise). */
	CHECK(attrs_of(&s, 1, buf, size).preferred_fd == -1 && attrs_of(&s, 0, buf, size).preferred_fd == 0);
	CHECK(lives_in(buf, size, -1));
	printf("advice + prefetch, GPU 1:          in system memory, as advised for GPU 1\n");
	/* Executed again, the advice is issued again (NEO keeps no cache of it;
	 * with MADVISE_AUTORESET a free may have reset it). */
	uint64_t m = madvises();
	CHECK(shim_execute(&s, &adv, &rep) == ZE_RESULT_SUCCESS && madvises() > m);

	/* An immediate list applies at append. */
	shim_cmdlist imm = { .device = 0, .immediate = true };
	CHECK(shim_append_mem_advise(&s, &imm, 0, buf, size, ZE_CLEAR_SYSTEM_MEMORY_PREFERRED_LOCATION) == ZE_RESULT_SUCCESS);
	CHECK(shim_append_prefetch(&s, &imm, buf, 4 * MIB) == ZE_RESULT_SUCCESS);
	CHECK(imm.last.bytes_moved == 4 * MIB && lives_in(buf, 4 * MIB, 0));

	/* Hints never fail an execute: VRAM refusing the prefetch (ENOSPC, then
	 * the retry) falls back, and the report says so. */
	svm_sim_injection inj = { .struct_size = sizeof inj, .point = SVM_SIM_INJECT_VRAM_ALLOC, .device = -1, .error = -ENOSPC, .count = 1000 };
	CHECK(svm_sim_inject(sim, &inj) == 0);
	CHECK(svm_sim_cpu_access(sim, buf, size, SVM_ACCESS_WRITE, 3) == 0);
	CHECK(shim_execute(&s, &cl, &rep) == ZE_RESULT_SUCCESS);
	printf("execute under VRAM pressure:       %u applied, %u fell back, %u failed\n", rep.applied, rep.fell_back, rep.failed);
	CHECK(rep.fell_back + rep.failed == 1);
	CHECK(svm_sim_inject_clear(sim) == 0);

	/* Bad arguments are the append's own errors. */
	CHECK(shim_append_prefetch(&s, &cl, 0, MIB) == ZE_RESULT_ERROR_INVALID_NULL_POINTER);
	CHECK(shim_append_prefetch(&s, &cl, buf, 0) == ZE_RESULT_ERROR_INVALID_SIZE);
	CHECK(shim_append_mem_advise(&s, &cl, 0, buf, size, 10) == ZE_RESULT_ERROR_INVALID_ENUMERATION);
	CHECK(shim_append_mem_advise(&s, &cl, 7, buf, size, ZE_SET_READ_MOSTLY) == ZE_RESULT_ERROR_INVALID_NULL_HANDLE);

	/* Atomics as NEO maps them, per device. */
	static const struct { uint32_t attr, mode; } atomics[] = {
		{ ZE_ATOMICS_SYSTEM, SVM_ATOMIC_GLOBAL },
		{ ZE_ATOMICS_DEVICE, SVM_ATOMIC_DEVICE },
		{ ZE_ATOMICS_HOST, SVM_ATOMIC_CPU },
		{ ZE_ATOMICS_HOST | ZE_ATOMICS_DEVICE, SVM_ATOMIC_CPU },     /* HOST wins over DEVICE */
		{ ZE_ATOMICS_SYSTEM | ZE_ATOMICS_HOST, SVM_ATOMIC_GLOBAL },  /* SYSTEM comes last */
		{ ZE_ATOMICS_NO_HOST, SVM_ATOMIC_UNDEFINED },
		{ ZE_ATOMICS_DEVICE | ZE_ATOMICS_NO_SYSTEM, SVM_ATOMIC_UNDEFINED }, /* a NO_* flag wins */
		{ ZE_ATOMICS_NO_ATOMICS, SVM_ATOMIC_UNDEFINED },
	};
	for (size_t i = 0; i < sizeof atomics / sizeof atomics[0]; i++) {
		CHECK(shim_set_atomic_access(&s, 1, buf, size, atomics[i].attr) == ZE_RESULT_SUCCESS);
		CHECK(attrs_of(&s, 1, buf, size).atomic_mode == atomics[i].mode);
		CHECK(attrs_of(&s, 0, buf, size).atomic_mode == SVM_ATOMIC_UNDEFINED); /* the other device's VM */
	}
	CHECK(shim_set_atomic_access(&s, 0, buf, size, 1u << 9) == ZE_RESULT_ERROR_INVALID_ENUMERATION);

	/* OpenCL: the migrations of an in-order queue, and Intel's advice values. */
	CHECK(shim_cl_migrate(&s, 0, buf, size, 0, &rep) == CL_SUCCESS && lives_in(buf, size, 0));
	CHECK(shim_cl_migrate(&s, 1, buf, size, 0, &rep) == CL_SUCCESS && lives_in(buf, size, -1)); /* GPU 1's advice */
	CHECK(shim_cl_migrate(&s, 0, buf, size, 0, &rep) == CL_SUCCESS && lives_in(buf, size, 0));
	CHECK(shim_cl_migrate(&s, 0, buf, size, SHIM_CL_MIGRATE_MEM_OBJECT_HOST, &rep) == CL_SUCCESS && lives_in(buf, size, -1));
	printf("clEnqueueSVMMigrateMem(HOST):      %llu MiB back\n", (unsigned long long)(rep.bytes_moved / MIB));
	CHECK(shim_cl_migrate(&s, 0, buf, 0, 0, &rep) == CL_INVALID_VALUE);
	CHECK(shim_cl_mem_advise_intel(&s, buf, size, CL_MEM_ADVICE_TBD0_INTEL) == CL_SUCCESS);
	CHECK(shim_cl_mem_advise_intel(&s, buf, size, ZE_SET_PREFERRED_LOCATION) == CL_INVALID_VALUE); /* a ze value */

	/* SYCL through Unified Runtime: PREFERRED_LOCATION_HOST on GPU 0's queue. */
	shim_cmdlist q = { .device = 0, .immediate = true };
	CHECK(shim_ur_usm_advise(&s, &q, buf, size, UR_SET_PREFERRED_LOCATION_HOST | UR_BIAS_CACHED) == ZE_RESULT_SUCCESS);
	CHECK(attrs_of(&s, 0, buf, size).preferred_fd == -1);
	CHECK(shim_ur_usm_advise(&s, &q, buf, size, UR_CLEAR_PREFERRED_LOCATION_HOST) == ZE_RESULT_SUCCESS);
	CHECK(attrs_of(&s, 0, buf, size).preferred_fd == 0);

	/* Errors: a timed-out bind is no NOT_READY; a closed handle is no
	 * device loss; a lost device is. */
	CHECK(shim_ze_result(-ETIME) == ZE_RESULT_ERROR_UNKNOWN);
	CHECK(shim_ze_result(-EBADF) == ZE_RESULT_ERROR_INVALID_ARGUMENT && shim_cl_status(-EBADF) == CL_INVALID_DEVICE);
	CHECK(shim_ze_result(-ENODEV) == ZE_RESULT_ERROR_DEVICE_LOST && shim_cl_status(-ECANCELED) == CL_DEVICE_NOT_AVAILABLE);
	svm_device closed = s.dev[1];
	CHECK(svm_device_close(s.ctx, closed) == 0);
	CHECK(shim_ze_result(svm_device_set_atomic_mode(s.ctx, closed, buf, size, SVM_ATOMIC_DEVICE)) == ZE_RESULT_ERROR_INVALID_ARGUMENT);

	/* Free and malloc at the same address, with a free hook. */
	shim_free_hook(&s, buf, size);
	CHECK(svm_sim_munmap(sim, buf, size) == 0 && svm_sim_mmap(sim, buf, size, 0) == 0);

	CHECK(svm_sim_check(sim) == 0);
	CHECK(svm_context_destroy(s.ctx) == 0);
	CHECK(svm_sim_destroy(sim) == 0);
	puts("runtime_shim: ok");
	return 0;
}
