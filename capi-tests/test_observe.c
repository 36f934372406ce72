/*
 * Residency from the process's own page table, from C: the statistics say
 * how the context reads it (PAGEMAP_SCAN by default on the simulated
 * process); a CPU access that pulls a placed range back is seen by the next
 * svm_alloc_vram (VERIFIED, not in place); the range query shows what the
 * page table shows; and with no page table the library runs on its records
 * (believed, never VERIFIED) without failing.
 */
#include "rig.h"

int main(void)
{
	rig r = rig_open("dgpu", NULL, 0, 0);
	svm_stats s = stats(&r);
	CHECK(s.page_table == SVM_PAGE_TABLE_SCAN && s.page_table_privileged == 0);

	svm_alloc_result a = { .struct_size = sizeof(a) };
	/* Never populated, the choice handed to the engine: born split, its
	 * first 2 MiB in VRAM, the rest in system memory. */
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], BUF + 64 * MIB, 8 * MIB, r.vram[0], SVM_ALLOC_ENGINE, &a));
	CHECK((a.flags & SVM_RESULT_SPLIT) && a.pagemap.id == r.sys.id && a.bytes_moved == 0);
	CHECK(lives_in(&r, BUF + 64 * MIB, 2 * MIB, 0) && lives_in(&r, BUF + 66 * MIB, 6 * MIB, -1));
	/* The same, asked explicitly (an application's prefetch): all of it there. */
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], BUF + 128 * MIB, 8 * MIB, r.vram[0], 0, &a));
	CHECK(!(a.flags & SVM_RESULT_SPLIT) && a.pagemap.id == r.vram[0].id);
	CHECK(lives_in(&r, BUF + 128 * MIB, 8 * MIB, 0));

	/* Data the CPU wrote moves whole. */
	CHECK_OK(svm_sim_cpu_access(r.sim, BUF, 8 * MIB, SVM_ACCESS_WRITE, 1));
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 8 * MIB, r.vram[0], 0, &a));
	CHECK(a.flags & SVM_RESULT_VERIFIED);
	CHECK(stats(&r).observe_reads >= 4);

	svm_range_info q = { .struct_size = sizeof(q) };
	CHECK_OK(svm_range_query(r.ctx, BUF, 8 * MIB, &q));
	CHECK((q.flags & SVM_RANGE_OBSERVED) && q.observed_kind == SVM_PLACE_VRAM && q.observed_away == q.observed_samples);
	/* Unprivileged, the page table names no device; but this context's one
	 * VRAM is the only place pages away from system memory can be. */
	CHECK(q.observed_pagemap.id == r.vram[0].id);

	/* The CPU reads one page: its 2 MiB come back; the next placement sees it. */
	CHECK_OK(svm_sim_cpu_access(r.sim, BUF + 2 * MIB, 4096, SVM_ACCESS_READ, 0));
	CHECK_OK(svm_range_query(r.ctx, BUF, 8 * MIB, &q));
	CHECK(q.observed_kind == SVM_PLACE_MIXED);
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 8 * MIB, r.vram[0], 0, &a));
	CHECK(!(a.flags & SVM_RESULT_IN_PLACE) && (a.flags & SVM_RESULT_VERIFIED));
	CHECK(lives_in(&r, BUF, 8 * MIB, 0));
	CHECK_STATUS(svm_sim_set_page_table(r.sim, 7, 0), -EINVAL);
	rig_close(&r);

	/* A privileged process: the page table names the device. */
	rig p = rig_open("2dgpu-p2p", NULL, 0, 0);
	CHECK_OK(svm_sim_set_page_table(p.sim, SVM_PAGE_TABLE_READ, 1));
	svm_device d;
	svm_pagemap v1;
	svm_context *ctx2 = plain_context(p.sim, 1, &d, &v1);
	CHECK_OK(svm_alloc_vram(ctx2, d, BUF, 2 * MIB, v1, 0, &a));
	CHECK_OK(svm_range_query(ctx2, BUF, 2 * MIB, &q));
	CHECK(q.observed_pagemap.id == v1.id);
	svm_stats s2 = { .struct_size = sizeof(s2) };
	CHECK_OK(svm_get_stats(ctx2, &s2));
	CHECK(s2.page_table == SVM_PAGE_TABLE_READ && s2.page_table_privileged == 1);
	CHECK_OK(svm_context_destroy(ctx2));
	rig_close(&p);

	/* No page table (seccomp, no /proc): records only, and nothing fails. */
	svm_sim *sim;
	CHECK_OK(svm_sim_create("dgpu", &sim));
	CHECK_OK(svm_sim_set_page_table(sim, SVM_PAGE_TABLE_NONE, 0));
	svm_device dev;
	svm_pagemap v;
	svm_context *ctx = plain_context(sim, 0, &dev, &v);
	CHECK_OK(svm_alloc_vram(ctx, dev, BUF, 4 * MIB, v, 0, &a));
	CHECK(!(a.flags & SVM_RESULT_VERIFIED));
	CHECK_OK(svm_range_query(ctx, BUF, 4 * MIB, &q));
	CHECK(!(q.flags & SVM_RANGE_OBSERVED) && (q.flags & SVM_RANGE_RESIDENCY_KNOWN));
	svm_stats s3 = { .struct_size = sizeof(s3) };
	CHECK_OK(svm_get_stats(ctx, &s3));
	CHECK(s3.page_table == SVM_PAGE_TABLE_NONE && s3.observe_reads == 0);
	CHECK_OK(svm_context_destroy(ctx));
	CHECK_OK(svm_sim_destroy(sim));
	puts("test_observe: ok");
	return 0;
}
