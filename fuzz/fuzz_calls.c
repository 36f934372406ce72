/* Call-sequence fuzz target: the fuzzer's bytes choose a simulated machine,
 * then a sequence of svm_* calls with fuzzed arguments, the way a runtime
 * (or a confused one) would make them through the C ABI.
 *
 * After every call: the status is 0 or a named negative errno, never a
 * caught panic; the simulated machine's invariants hold (svm_sim_check);
 * the arena's content is what it was unless the call wrote or unmapped
 * memory (placement must never lose or change a byte); statistics never
 * go backwards. Any breach aborts, and libFuzzer keeps the input. */
#include "fuzz.h"

#define ARENA 0x1000000000ull
#define ARENA_SIZE (16ull << 20)
#define PAGE 4096ull
#define NCTX 2
#define MAXDEV 8
#define MAXPM (MAXDEV * 2 + 1)

/* Two 8 MiB devices behind a link: pressure after a few ranges. */
static const char *small_topology =
	"[[device]]\nname = \"a\"\nvram_per_tile = \"8 MiB\"\n"
	"[[device]]\nname = \"b\"\nvram_per_tile = \"8 MiB\"\n";
static const char *presets[] = { "dgpu", "2dgpu-p2p", "2dgpu-nolink", "4dgpu-p2p", "max-node", "igpu", NULL };
#define NPRESETS (sizeof(presets) / sizeof(presets[0]))

typedef struct world {
	svm_sim *sim;
	uint32_t ndev;
	svm_context *ctx[NCTX];
	svm_device dev[NCTX][MAXDEV];
	svm_pagemap pm[NCTX][MAXPM];
	uint32_t npm[NCTX];
	int fd[MAXDEV]; /* fds of the simulator's own opens, for gpu access and adoption */
	uint64_t sum;
	svm_stats last[NCTX];
} world;

static uint64_t arena_sum(world *w)
{
	uint64_t s = 0;
	MUST(svm_sim_checksum(w->sim, ARENA, ARENA_SIZE, &s));
	return s;
}

/* Mostly a page of the arena at a placement-friendly alignment; sometimes
 * an unaligned, low, kernel-half or wrapping address. */
static uint64_t pick_start(bytes *b)
{
	uint8_t k = take8(b);
	switch (k & 7) {
	case 0: case 1: case 2:
		return ARENA + (take16(b) % (ARENA_SIZE / (2ull << 20))) * (2ull << 20);
	case 3: case 4:
		return ARENA + (take16(b) % (ARENA_SIZE / (64ull << 10))) * (64ull << 10);
	case 5:
		return ARENA + (take16(b) % (ARENA_SIZE / PAGE)) * PAGE;
	case 6:
		return ARENA + take16(b); /* unaligned, mostly */
	default:
		return take64(b);
	}
}

static uint64_t pick_size(bytes *b)
{
	uint8_t k = take8(b);
	switch (k & 7) {
	case 0: case 1: case 2:
		return (1 + take8(b) % 8) * (2ull << 20);
	case 3: case 4:
		return (1 + take8(b) % 64) * (64ull << 10);
	case 5:
		return (1 + take8(b) % 64) * PAGE;
	case 6:
		return take8(b) & 1 ? 0 : UINT64_MAX - take8(b);
	default:
		/* Raw, but either past the 47-bit VA or under 256 MiB: the
		 * simulator models every touched page, and a span of terabytes
		 * only measures its memory. 2^47 itself from address 0 is the
		 * whole user VA, which the simulated process has mapped end to
		 * end: a prefetch over it is refused with ENOMEM before any
		 * range is made, as the kernel could not back it either
		 * (fuzz/regressions/fuzz_calls/slow-alloc-whole-va). */
		return take8(b) & 1 ? (1ull << 47) + take32(b) : take32(b) & 0x0fffffffu;
	}
}

/* One of the context's devices; sometimes another context's (foreign),
 * a closed one, zero, or made up. */
static svm_device pick_device(world *w, bytes *b, int c)
{
	uint8_t k = take8(b);
	if (k < 200)
		return w->dev[c][k % (w->ndev ? w->ndev : 1)];
	if (k < 230)
		return w->dev[(c + 1) % NCTX][k % (w->ndev ? w->ndev : 1)];
	return (svm_device){ .id = k < 240 ? 0 : take64(b) };
}

static svm_pagemap pick_pagemap(world *w, bytes *b, int c)
{
	uint8_t k = take8(b);
	if (k < 200 && w->npm[c])
		return w->pm[c][k % w->npm[c]];
	if (k < 230 && w->npm[(c + 1) % NCTX])
		return w->pm[(c + 1) % NCTX][k % w->npm[(c + 1) % NCTX]];
	return (svm_pagemap){ .id = k < 240 ? 0 : take64(b) };
}

/* A struct_size: mostly right, sometimes short, zero or larger (the
 * buffers are twice the struct, so a larger size never lies about memory). */
static uint32_t pick_struct_size(bytes *b, uint32_t right)
{
	uint8_t k = take8(b);
	if (k < 224)
		return right;
	return k < 240 ? (uint32_t)(take8(b) % (2 * right + 1)) : 0;
}

/* The documented contract for spans (svm_resolve_pagemap's errors): zero,
 * unaligned to 4 KiB, overflowing or above 2^47 is -EINVAL. */
static int bad_span(uint64_t s, uint64_t n)
{
	return n == 0 || s % PAGE || n % PAGE || s + n < s || s + n > (1ull << 47);
}

/* mmap(2) and munmap(2): the address page-aligned, the length rounded up. */
static int bad_map(uint64_t s, uint64_t n)
{
	return n == 0 || s % PAGE || s + n < s || s + n > (1ull << 47);
}

/* Bad input must never be a silent success: it is refused with -EINVAL, or
 * -EBADF where the device handle (checked first) is the closed one. */
static void refused(int st, int bad, const char *call)
{
	if (bad && st != -EINVAL && st != -EBADF)
		FUZZ_FAIL("%s accepted bad input: %d (%s)", call, st, svm_strerror(st));
}
#define REFUSED(bad, expr) refused(CALL(expr), (bad), #expr)

static const int errnos[] = { -EBUSY, -ENOMEM, -ENOSPC, -EINTR, -EAGAIN, -ENODEV, -ECANCELED, -ENOLINK, -EIO, -EFAULT, -EINVAL, -ETIME };

static void collect_pagemaps(world *w, int c)
{
	w->npm[c] = 0;
	if (CALL(svm_system_pagemap(w->ctx[c], &w->pm[c][0])) == 0)
		w->npm[c] = 1;
	for (uint32_t d = 0; d < w->ndev; d++)
		for (uint16_t t = 0; t < 2; t++) {
			svm_pagemap pm;
			if (CALL(svm_device_pagemap(w->ctx[c], w->dev[c][d], t, &pm)) == 0 && w->npm[c] < MAXPM)
				w->pm[c][w->npm[c]++] = pm;
		}
}

static int setup(world *w, bytes *b)
{
	memset(w, 0, sizeof(*w));
	const char *preset = presets[take8(b) % NPRESETS];
	int st = preset ? svm_sim_create(preset, &w->sim) : svm_sim_create_from_text(small_topology, &w->sim);
	if (st)
		FUZZ_FAIL("cannot create the simulator %s: %d", preset ? preset : "small", st);
	MUST(svm_sim_device_count(w->sim, &w->ndev));
	if (w->ndev > MAXDEV)
		w->ndev = MAXDEV;
	for (int c = 0; c < NCTX; c++) {
		svm_context_config cfg = { .struct_size = sizeof(cfg), .driver = SVM_DRIVER_SIM, .sim = w->sim,
					   .thrash_max_moves = take8(b) % 6, .thrash_window_ns = take8(b) * 1000000ull,
					   .pin_ns = take8(b) * 1000000ull, .observe_ttl_ns = take8(b) * 10000ull,
					   /* Both engines: the default and the rule cascade. */
					   .flags = c % 2 ? SVM_CONTEXT_ENGINE_RULES : 0 };
		MUST(svm_context_create(&cfg, &w->ctx[c]));
		for (uint32_t d = 0; d < w->ndev; d++)
			MUST(svm_device_open_index(w->ctx[c], d, &w->dev[c][d]));
		collect_pagemaps(w, c);
		w->last[c].struct_size = sizeof(svm_stats);
	}
	for (uint32_t d = 0; d < w->ndev; d++)
		MUST(svm_sim_device_open(w->sim, d, &w->fd[d]));
	/* Some content to keep: every 64 KiB piece its own token. */
	for (uint64_t a = ARENA; a < ARENA + ARENA_SIZE; a += 64ull << 10)
		MUST(svm_sim_cpu_access(w->sim, a, 64ull << 10, SVM_ACCESS_WRITE, a));
	w->sum = arena_sum(w);
	return 0;
}

static void teardown(world *w)
{
	for (int c = 0; c < NCTX; c++)
		MUST(svm_context_destroy(w->ctx[c]));
	MUST(svm_sim_check(w->sim));
	MUST(svm_sim_destroy(w->sim));
}

/* Statistics are monotonic counters. */
static void check_stats(world *w, int c)
{
	svm_stats s = { .struct_size = sizeof(s) };
	MUST(svm_get_stats(w->ctx[c], &s));
	const uint64_t *now = &s.resolve_calls, *before = &w->last[c].resolve_calls;
	size_t n = (offsetof(svm_stats, page_table) - offsetof(svm_stats, resolve_calls)) / sizeof(uint64_t);
	for (size_t i = 0; i < n; i++)
		if (now[i] < before[i])
			FUZZ_FAIL("statistic %zu of context %d went from %llu to %llu", i, c, (unsigned long long)before[i],
				  (unsigned long long)now[i]);
	const uint64_t *tail = &s.observe_reads, *tail_before = &w->last[c].observe_reads;
	size_t m = (sizeof(svm_stats) - offsetof(svm_stats, observe_reads)) / sizeof(uint64_t);
	for (size_t i = 0; i < m; i++)
		if (tail[i] < tail_before[i])
			FUZZ_FAIL("statistic %zu after the page-table mode of context %d went from %llu to %llu", i, c,
				  (unsigned long long)tail_before[i], (unsigned long long)tail[i]);
	uint64_t engine = s.engine_faults + s.engine_prefetch + s.engine_cascade;
	if (s.in_place > s.alloc_calls || s.migrations > s.alloc_calls || s.fallbacks > s.alloc_calls || engine > s.alloc_calls)
		FUZZ_FAIL("statistics do not add up: alloc_calls %llu, in_place %llu, migrations %llu, fallbacks %llu, engine placements %llu",
			  (unsigned long long)s.alloc_calls, (unsigned long long)s.in_place, (unsigned long long)s.migrations,
			  (unsigned long long)s.fallbacks, (unsigned long long)engine);
	w->last[c] = s;
}

/* One call; returns 1 when it may have changed the arena's content. */
static int step(world *w, bytes *b)
{
	int c = take8(b) % NCTX;
	svm_context *ctx = w->ctx[c];
	uint8_t op = take8(b);
	switch (op % 25) {
	case 0: case 1: case 2: {
		svm_device d = pick_device(w, b, c);
		uint16_t tile = take8(b) % 3;
		uint64_t s = pick_start(b), n = pick_size(b);
		/* READ, WRITE, ATOMIC, PREFETCH, and one past them. */
		svm_access a = take8(b) % 5;
		svm_pagemap pm;
		int null = take8(b) == 255;
		REFUSED(bad_span(s, n) || a > SVM_ACCESS_PREFETCH || null, svm_resolve_pagemap(ctx, d, tile, s, n, a, null ? NULL : &pm));
		return 0;
	}
	case 3: case 4: case 5: {
		svm_device d = pick_device(w, b, c);
		uint64_t s = pick_start(b), n = pick_size(b);
		svm_pagemap pm = pick_pagemap(w, b, c);
		uint32_t flags = take8(b) % 33; /* 32: one past SVM_ALLOC_* */
		svm_alloc_result res[2] = { { .struct_size = pick_struct_size(b, sizeof(svm_alloc_result)) } };
		REFUSED(bad_span(s, n) || flags > 31 || pm.id == 0, svm_alloc_vram(ctx, d, s, n, pm, flags, take8(b) == 255 ? NULL : res));
		/* Now and then the launch it placed is submitted, or reported
		 * (the default engine learns from it), in any order: fine, or a
		 * stale handle refused. */
		uint8_t k = take8(b) % 8;
		if (k == 0 || k == 1) {
			int st = CALL(k == 0 ? svm_launch_report(ctx, d, take8(b) * 1000ull) : svm_launch_submit(ctx, d));
			if (st != 0 && st != -EBADF && st != -EINVAL)
				FUZZ_FAIL("%s: %d (%s)", k == 0 ? "svm_launch_report" : "svm_launch_submit", st, svm_strerror(st));
		}
		return 0;
	}
	case 6: {
		uint64_t s = pick_start(b), n = pick_size(b);
		svm_alloc_result res[2] = { { .struct_size = pick_struct_size(b, sizeof(svm_alloc_result)) } };
		REFUSED(bad_span(s, n), svm_evict(ctx, s, n, take8(b) == 255 ? NULL : res));
		return 0;
	}
	case 7: {
		uint64_t s = pick_start(b), n = pick_size(b);
		svm_pagemap pm = pick_pagemap(w, b, c);
		if (take8(b) & 1) {
			svm_device d = pick_device(w, b, c);
			REFUSED(bad_span(s, n) || pm.id == 0, svm_device_set_preferred_location(ctx, d, s, n, pm));
		} else {
			REFUSED(bad_span(s, n) || pm.id == 0, svm_set_preferred_location(ctx, s, n, pm));
		}
		return 0;
	}
	case 8: {
		uint64_t s = pick_start(b), n = pick_size(b);
		if (take8(b) & 1) {
			svm_device d = pick_device(w, b, c);
			REFUSED(bad_span(s, n), svm_device_clear_preferred_location(ctx, d, s, n));
		} else {
			REFUSED(bad_span(s, n), svm_clear_preferred_location(ctx, s, n));
		}
		return 0;
	}
	case 9: {
		uint64_t s = pick_start(b), n = pick_size(b);
		uint32_t mode = take8(b) % 5;
		if (take8(b) & 1) {
			svm_device d = pick_device(w, b, c);
			REFUSED(bad_span(s, n) || mode > SVM_ATOMIC_CPU, svm_device_set_atomic_mode(ctx, d, s, n, mode));
		} else {
			REFUSED(bad_span(s, n) || mode > SVM_ATOMIC_CPU, svm_set_atomic_mode(ctx, s, n, mode));
		}
		return 0;
	}
	case 10: {
		uint64_t s = pick_start(b), n = pick_size(b);
		REFUSED(bad_span(s, n), svm_range_invalidate(ctx, s, n));
		return 0;
	}
	case 11: {
		uint64_t s = pick_start(b), n = pick_size(b);
		svm_range_info info[2] = { { .struct_size = pick_struct_size(b, sizeof(svm_range_info)) } };
		int null = take8(b) == 255;
		REFUSED(bad_span(s, n) || null, svm_range_query(ctx, s, n, null ? NULL : info));
		return 0;
	}
	case 12:
		check_stats(w, c);
		return 0;
	case 13: {
		uint8_t k = take8(b);
		svm_sim_injection inj = { .struct_size = pick_struct_size(b, sizeof(svm_sim_injection)),
					  .point = take8(b) % 5,
					  .device = (int32_t)(take8(b) % (w->ndev + 1)) - 1,
					  .error = k < 240 ? errnos[k % (sizeof(errnos) / sizeof(errnos[0]))] : (int32_t)take32(b),
					  .skip = take8(b) % 4,
					  .count = take8(b) % 8 };
		if (inj.point == SVM_SIM_INJECT_IOCTL)
			inj.request = take8(b) & 1 ? 0 : take32(b);
		if (inj.point == SVM_SIM_INJECT_DEVICE_REMOVAL && inj.device < 0)
			inj.device = 0;
		uint8_t p = take8(b);
		if (p > 200)
			inj.probability = p == 255 ? -1.0 : (p - 200) / 55.0;
		inj.seed = take64(b);
		CALL(svm_sim_inject(w->sim, &inj));
		return 0;
	}
	case 14:
		CALL(svm_sim_inject_clear(w->sim));
		return 0;
	case 15: {
		uint64_t s = pick_start(b), n = pick_size(b);
		if (take8(b) & 1) {
			REFUSED(bad_map(s, n), svm_sim_munmap(w->sim, s, n));
		} else {
			uint32_t flags = take8(b) % 3;
			REFUSED(bad_map(s, n) || flags > SVM_SIM_MAP_FILE, svm_sim_mmap(w->sim, s, n, flags));
		}
		return 1;
	}
	case 16: {
		uint64_t s = pick_start(b), n = pick_size(b);
		svm_access a = take8(b) % 4;
		CALL(svm_sim_cpu_access(w->sim, s, n, a, take64(b)));
		return a != SVM_ACCESS_READ;
	}
	case 17: case 18: {
		uint32_t d = take8(b) % (w->ndev ? w->ndev : 1);
		uint64_t s = pick_start(b), n = pick_size(b);
		svm_access a = take8(b) % 4;
		svm_device_info info = { .struct_size = sizeof(info) };
		if (CALL(svm_device_get_info(ctx, w->dev[c][d], &info)) == 0)
			CALL(svm_sim_gpu_access(w->sim, info.fd, info.vm_id, take8(b) % 3, s, n, a, take64(b)));
		return a != SVM_ACCESS_READ;
	}
	case 19: {
		uint32_t d = take8(b) % (w->ndev ? w->ndev : 1);
		if (take8(b) & 1) {
			CALL(svm_device_close(ctx, w->dev[c][d]));
		} else {
			svm_device nd;
			if (CALL(svm_device_open_index(ctx, take8(b) % (w->ndev + 2), &nd)) == 0 && d < w->ndev)
				w->dev[c][d] = nd;
			collect_pagemaps(w, c);
		}
		return 0;
	}
	case 20: {
		svm_device a = pick_device(w, b, c), d2 = pick_device(w, b, c);
		svm_link l[2] = { { .struct_size = pick_struct_size(b, sizeof(svm_link)) } };
		if (take8(b) & 1) {
			l[0].kind = take8(b) % 5;
			l[0].atomics = take8(b) & 1;
			uint8_t k = take8(b);
			l[0].bandwidth_gbps = k < 200 ? k : k < 220 ? -1.0 : k < 240 ? 1.0 / 0.0 : 0.0 / 0.0;
			REFUSED(k >= 200 || l[0].kind > SVM_LINK_FABRIC, svm_link_set(ctx, a, d2, l));
		} else {
			CALL(svm_link_get(ctx, a, d2, l));
		}
		return 0;
	}
	case 21: {
		svm_pagemap_info pi[2] = { { .struct_size = pick_struct_size(b, sizeof(svm_pagemap_info)) } };
		CALL(svm_pagemap_get_info(ctx, pick_pagemap(w, b, c), pi));
		svm_device_info di[2] = { { .struct_size = pick_struct_size(b, sizeof(svm_device_info)) } };
		CALL(svm_device_get_info(ctx, pick_device(w, b, c), di));
		return 0;
	}
	case 22: {
		/* Rare and hostile: a device unplugged, or the library's own fd
		 * closed under it, or a device adopted from the simulator's fd. */
		uint8_t k = take8(b);
		uint32_t d = take8(b) % (w->ndev ? w->ndev : 1);
		if (k < 8) {
			CALL(svm_sim_remove_device(w->sim, d, k & 1 ? -ECANCELED : -ENODEV));
		} else if (k < 16) {
			svm_device_info info = { .struct_size = sizeof(info) };
			if (CALL(svm_device_get_info(ctx, w->dev[c][d], &info)) == 0)
				CALL(svm_sim_device_close(w->sim, info.fd));
		} else if (k < 64) {
			svm_device nd;
			CALL(svm_device_adopt(ctx, k < 60 ? w->fd[d] : (int)take32(b), take32(b) % 4, &nd));
		} else {
			CALL(svm_sim_set_page_table(w->sim, take8(b) % 5, take8(b) & 1));
		}
		return 0;
	}
	case 23: {
		/* A context from a fuzzed configuration: refused, or made and
		 * destroyed again. Driver, preset and topology text may be
		 * unknown, struct_size short or long. */
		static const char *names[] = { "dgpu", "no-such-preset", "", "2dgpu-p2p" };
		svm_context_config cfg[2] = { { .struct_size = pick_struct_size(b, sizeof(svm_context_config)),
						.driver = take8(b) % 3,
						.thrash_max_moves = take32(b),
						.thrash_window_ns = take64(b),
						.pin_ns = take64(b),
						.observe_ttl_ns = take64(b) } };
		uint8_t k = take8(b);
		if (k & 1)
			cfg[0].sim = w->sim;
		else if (k & 2)
			cfg[0].sim_preset = names[(k >> 2) % 4];
		svm_context *extra = NULL;
		int bad = cfg[0].driver > SVM_DRIVER_SIM || cfg[0].struct_size < offsetof(svm_context_config, observe_ttl_ns);
		int st = CALL(svm_context_create(cfg, take8(b) == 255 ? NULL : &extra));
		if (st == 0 && bad)
			FUZZ_FAIL("svm_context_create accepted driver %u, struct_size %u", cfg[0].driver, cfg[0].struct_size);
		if (st == 0)
			MUST(svm_context_destroy(extra));
		return 0;
	}
	default: {
		uint64_t s = pick_start(b), n = pick_size(b);
		svm_sim_residency res;
		CALL(svm_sim_get_residency(w->sim, s, n, &res));
		uint64_t bytes_in = 0;
		CALL(svm_sim_bytes_in(w->sim, s, n, take8(b) % (w->ndev + 1), take8(b) % 3, &bytes_in));
		return 0;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bytes b = { data, size };
	world w;
	svm_set_log_level(SVM_LOG_OFF);
	setup(&w, &b);
	for (int i = 0; i < 64 && b.n; i++) {
		int wrote = step(&w, &b);
		MUST(svm_sim_check(w.sim));
		uint64_t now = arena_sum(&w);
		if (wrote)
			w.sum = now;
		else if (now != w.sum)
			FUZZ_FAIL("step %d changed the arena's content without writing it (checksum %#llx, was %#llx)", i,
				  (unsigned long long)now, (unsigned long long)w.sum);
	}
	for (int c = 0; c < NCTX; c++)
		check_stats(&w, c);
	teardown(&w);
	return 0;
}
