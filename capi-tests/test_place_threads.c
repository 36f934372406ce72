/* 8 threads place, evict, resolve and access overlapping ranges on several
 * devices for a couple of seconds: no crash, no lost content, and the
 * statistics add up. */
#include <pthread.h>
#include <time.h>
#include "rig.h"

#define THREADS 8
#define SPAN (64 * MIB)

static rig r;
static volatile int stop;

typedef struct { uint64_t allocs, evicts, resolves, busy, failures; unsigned seed; } work;

static uint64_t rnd(unsigned *s) { *s = *s * 1103515245u + 12345u; return (*s >> 8) & 0xffffff; }

static void *worker(void *arg)
{
	work *w = arg;
	while (!stop) {
		uint64_t start = BUF + (rnd(&w->seed) % 24) * 2 * MIB;
		uint64_t size = (1 + rnd(&w->seed) % 8) * 2 * MIB;
		int d = (int)(rnd(&w->seed) % r.n);
		int op = (int)(rnd(&w->seed) % 10);
		if (op < 5) {
			svm_pagemap pm = (rnd(&w->seed) % 6 == 0) ? r.sys : r.vram[rnd(&w->seed) % r.n];
			svm_alloc_result res = { .struct_size = sizeof(res) };
			w->allocs++;
			int st = svm_alloc_vram(r.ctx, r.dev[d], start, size, pm, 0, &res);
			/* -EBUSY is a defined answer here: other threads' GPU accesses
			 * fault the range elsewhere while it is being placed. */
			if (st == -EBUSY) {
				w->busy++;
			} else if (st != 0) {
				fprintf(stderr, "alloc: %d %s (%s)\n", st, svm_strerror(st), svm_last_error());
				w->failures++;
			}
			else
				CHECK(res.retries <= 16);
		} else if (op < 7) {
			w->evicts++;
			int st = svm_evict(r.ctx, start, size, NULL);
			if (st == -EBUSY) {
				w->busy++;
			} else if (st != 0) {
				fprintf(stderr, "evict: %d %s (%s)\n", st, svm_strerror(st), svm_last_error());
				w->failures++;
			}
		} else if (op < 9) {
			svm_pagemap pm;
			w->resolves++;
			CHECK_OK(svm_resolve_pagemap(r.ctx, r.dev[d], 0, start, size, SVM_ACCESS_READ, &pm));
		} else if (rnd(&w->seed) % 2) {
			CHECK_OK(gpu(&r, d, start, size, SVM_ACCESS_READ));
		} else {
			/* The CPU reads: device pages come back to system memory. */
			CHECK_OK(svm_sim_cpu_access(r.sim, start, size, SVM_ACCESS_READ, 0));
		}
	}
	return NULL;
}

int main(void)
{
	/* A high thrash threshold, so that most calls really move data. */
	r = rig_open("4dgpu-p2p", NULL, 1000, 1000000);
	/* Content is written once, up front; the racing phase only moves it
	 * (placements, evictions, GPU and CPU reads), so it must come out equal. */
	CHECK_OK(svm_sim_cpu_access(r.sim, BUF, SPAN, SVM_ACCESS_WRITE, 77));
	uint64_t s0 = sum(&r, BUF, SPAN);
	pthread_t t[THREADS];
	work w[THREADS] = { 0 };
	for (int i = 0; i < THREADS; i++) {
		w[i].seed = 1234u + (unsigned)i * 7919u;
		CHECK(pthread_create(&t[i], NULL, worker, &w[i]) == 0);
	}
	struct timespec ts = { .tv_sec = 2, .tv_nsec = 0 };
	nanosleep(&ts, NULL);
	stop = 1;
	uint64_t allocs = 0, evicts = 0, resolves = 0, busy = 0, failures = 0;
	for (int i = 0; i < THREADS; i++) {
		CHECK(pthread_join(t[i], NULL) == 0);
		allocs += w[i].allocs;
		evicts += w[i].evicts;
		resolves += w[i].resolves;
		failures += w[i].failures;
		busy += w[i].busy;
	}
	CHECK_OK(svm_sim_check(r.sim));
	CHECK(sum(&r, BUF, SPAN) == s0);
	svm_stats st = stats(&r);
	CHECK(st.alloc_calls == allocs);
	CHECK(st.evict_calls == evicts);
	CHECK(st.resolve_calls == resolves);
	CHECK(st.in_place + st.migrations + st.pins <= st.alloc_calls + st.fallbacks);
	CHECK(failures == 0);
	CHECK(busy * 20 <= allocs + evicts); /* rare, not the rule */
	printf("%llu allocs (%llu in place, %llu moved, %llu pinned), %llu evicts, %llu resolves in 2 s (%llu EBUSY)\n",
	       (unsigned long long)allocs, (unsigned long long)st.in_place, (unsigned long long)st.migrations,
	       (unsigned long long)st.pins, (unsigned long long)evicts, (unsigned long long)resolves, (unsigned long long)busy);
	rig_close(&r);
	return 0;
}
