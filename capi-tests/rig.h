/* A simulated context with all its devices open, for the placement tests. */
#ifndef XESVM_RIG_H
#define XESVM_RIG_H
#include <errno.h>
#include <stdint.h>
#include "check.h"

#define MIB (1ull << 20)
#define BUF 0x1000000000ull
#define RIG_MAX 8

typedef struct rig {
	svm_context *ctx;
	svm_sim *sim;
	uint32_t n;
	svm_device dev[RIG_MAX];
	svm_pagemap vram[RIG_MAX];
	svm_pagemap sys;
	int fd[RIG_MAX];
	uint32_t vm[RIG_MAX];
} rig;

/* From a preset, or (preset NULL) from topology text; thrash knobs may be 0. */
static inline rig rig_open(const char *preset, const char *topology, uint32_t moves, uint64_t window_ns)
{
	rig r = { 0 };
	if (preset)
		CHECK_OK(svm_sim_create(preset, &r.sim));
	else
		CHECK_OK(svm_sim_create_from_text(topology, &r.sim));
	/* The engine's rule cascade, which these tests exercise through
	 * SVM_ALLOC_ENGINE (the default engine: tests/engine_plain.rs). */
	svm_context_config cfg = { .struct_size = sizeof(cfg), .driver = SVM_DRIVER_SIM, .sim = r.sim,
				   .thrash_max_moves = moves, .thrash_window_ns = window_ns, .pin_ns = window_ns,
				   .flags = SVM_CONTEXT_ENGINE_RULES };
	CHECK_OK(svm_context_create(&cfg, &r.ctx));
	CHECK_OK(svm_sim_device_count(r.sim, &r.n));
	CHECK(r.n <= RIG_MAX);
	CHECK_OK(svm_system_pagemap(r.ctx, &r.sys));
	for (uint32_t i = 0; i < r.n; i++) {
		CHECK_OK(svm_device_open_index(r.ctx, i, &r.dev[i]));
		svm_device_info info = { .struct_size = sizeof(info) };
		CHECK_OK(svm_device_get_info(r.ctx, r.dev[i], &info));
		r.fd[i] = info.fd;
		r.vm[i] = info.vm_id;
		if (info.has_vram)
			CHECK_OK(svm_device_pagemap(r.ctx, r.dev[i], 0, &r.vram[i]));
	}
	return r;
}

/* A context with the default engine (no SVM_CONTEXT_ENGINE_RULES) on `sim`,
 * its device `index` open in *dev and that device's tile-0 VRAM in *vram. */
static inline svm_context *plain_context(svm_sim *sim, uint32_t index, svm_device *dev, svm_pagemap *vram)
{
	svm_context *ctx = NULL;
	svm_context_config cfg = { .struct_size = sizeof(cfg), .driver = SVM_DRIVER_SIM, .sim = sim };
	CHECK_OK(svm_context_create(&cfg, &ctx));
	CHECK_OK(svm_device_open_index(ctx, index, dev));
	CHECK_OK(svm_device_pagemap(ctx, *dev, 0, vram));
	return ctx;
}

static inline void rig_close(rig *r)
{
	CHECK_OK(svm_sim_check(r->sim));
	CHECK_OK(svm_context_destroy(r->ctx));
	CHECK_OK(svm_sim_destroy(r->sim));
}

static inline uint64_t sum(rig *r, uint64_t start, uint64_t size)
{
	uint64_t s = 0;
	CHECK_OK(svm_sim_checksum(r->sim, start, size, &s));
	return s;
}

static inline svm_sim_counters counters(rig *r)
{
	svm_sim_counters c = { .struct_size = sizeof(c) };
	CHECK_OK(svm_sim_get_counters(r->sim, &c));
	return c;
}

static inline svm_stats stats(rig *r)
{
	svm_stats s = { .struct_size = sizeof(s) };
	CHECK_OK(svm_get_stats(r->ctx, &s));
	return s;
}

/* Ground truth: true when the whole span is in device d's tile-0 VRAM (d < 0: system). */
static inline int lives_in(rig *r, uint64_t start, uint64_t size, int d)
{
	svm_sim_residency res;
	CHECK_OK(svm_sim_get_residency(r->sim, start, size, &res));
	if (d < 0)
		return res.kind == SVM_PLACE_SYSTEM;
	return res.kind == SVM_PLACE_VRAM && res.device == (uint32_t)d && res.instance == 1;
}

static inline int gpu(rig *r, int d, uint64_t start, uint64_t size, svm_access a)
{
	return svm_sim_gpu_access(r->sim, r->fd[d], r->vm[d], 0, start, size, a, start + (uint64_t)d);
}

static inline svm_alloc_result alloc(rig *r, int d, uint64_t start, uint64_t size, svm_pagemap pm, uint32_t flags)
{
	svm_alloc_result res = { .struct_size = sizeof(res) };
	CHECK_OK(svm_alloc_vram(r->ctx, r->dev[d], start, size, pm, flags, &res));
	return res;
}

static inline int same_pagemap(svm_pagemap a, svm_pagemap b)
{
	return a.id == b.id;
}
#endif
