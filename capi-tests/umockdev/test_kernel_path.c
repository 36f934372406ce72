/*
 * The kernel driver path end to end, under umockdev (run by ctest through
 * umockdev-wrapper): a testbed with two Xe render nodes in sysfs and /dev,
 * whose ioctls this test answers by handing them to a simulated driver.
 * The library runs with the KERNEL driver: sysfs discovery, open() of
 * /dev/dri/renderD12x, DEVICE_QUERY, VM_CREATE, the mirror bind with a user
 * fence, prefetch, madvise, the range query, all as real ioctl(2) calls.
 * The simulator's ground truth checks what they did.
 *
 * What umockdev cannot answer, and how the test copes:
 *  - fstat() of an emulated fd shows umockdev's pty, not 226:128, so the
 *    library cannot tell the PCI device behind an fd (links stay unknown
 *    until ENOLINK; a privileged page table could not name the device);
 *  - fd numbers are per side: the library holds umockdev's fds, the
 *    simulator its own, so the handler translates the one fd the uAPI
 *    carries (madvise's devmem_fd, and back in the range query's answer);
 *  - the process's page table describes real memory, while the pages here
 *    live in the simulator's model: XESVM_PAGEMAP=off puts the library in
 *    records-only mode (placements are believed, not VERIFIED).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <umockdev.h>
#include <xesvm.h>
#include <xesvm/xe_drm.h>

#include "xe_testbed.h"

#define MIB (1ull << 20)
#define BUF 0x1000000000ull

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: CHECK failed: %s\n  last error: %s\n", __FILE__, __LINE__, #cond, svm_last_error()); \
	exit(1); } } while (0)
#define CHECK_OK(call) do { int st_ = (call); if (st_ != 0) { \
	fprintf(stderr, "%s:%d: %s returned %d (%s)\n  last error: %s\n", __FILE__, __LINE__, #call, st_, \
		svm_strerror(st_), svm_last_error()); exit(1); } } while (0)

static svm_sim *sim;
static int sim_fd[2];
static unsigned long forwarded;
/* The library's fd for each device (known once it opened them). */
static int lib_fd[2] = { -1, -1 };

static int translate(int fd, const int *from, const int *to)
{
	for (int i = 0; i < 2; i++)
		if (from[i] == fd)
			return to[i];
	return fd;
}

/* The one fd the uAPI carries (madvise's devmem_fd, and back in the range
 * query's answer) names a device on each side by that side's number. */
static void translate_fds(enum forward_when when, unsigned long request, void *arg, int rc)
{
	struct xesvm_drm_xe_madvise *m = arg;
	if (when == FORWARD_IN && request == XESVM_DRM_IOCTL_XE_MADVISE && m->type == XESVM_DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC &&
	    (int32_t)m->preferred_mem_loc.devmem_fd > 0)
		m->preferred_mem_loc.devmem_fd = (uint32_t)translate((int)m->preferred_mem_loc.devmem_fd, lib_fd, sim_fd);
	struct xesvm_drm_xe_vm_query_mem_range_attr *q = arg;
	if (when == FORWARD_OUT && rc == 0 && request == XESVM_DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS && q->vector_of_mem_attr) {
		struct xesvm_drm_xe_mem_range_attr *a = (struct xesvm_drm_xe_mem_range_attr *)(uintptr_t)q->vector_of_mem_attr;
		for (uint32_t i = 0; i < q->num_mem_ranges; i++)
			if ((int32_t)a[i].preferred_mem_loc.devmem_fd > 0)
				a[i].preferred_mem_loc.devmem_fd = (uint32_t)translate((int)a[i].preferred_mem_loc.devmem_fd, sim_fd, lib_fd);
	}
}

static gboolean handle_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer user)
{
	(void)base;
	forwarded++;
	return forward_ioctl(client, sim, *(int *)user, translate_fds);
}

int main(void)
{
	/* The simulated pages are not this process's pages: records only. */
	setenv("XESVM_PAGEMAP", "off", 1);
	UMockdevTestbed *tb = umockdev_testbed_new();
	CHECK_OK(svm_sim_create("2dgpu-p2p", &sim));
	UMockdevIoctlBase *handler[2];
	for (int i = 0; i < 2; i++) {
		char rec[2048], node[64];
		int bus = 3 + i, minor = 128 + i;
		snprintf(rec, sizeof rec, XE_DEVICE_RECORD, bus, i, minor);
		GError *err = NULL;
		if (!umockdev_testbed_add_from_string(tb, rec, &err)) {
			fprintf(stderr, "umockdev: cannot add renderD%d: %s\n", minor, err->message);
			return 1;
		}
		CHECK_OK(svm_sim_device_open(sim, (uint32_t)i, &sim_fd[i]));
		handler[i] = umockdev_ioctl_base_new();
		g_signal_connect(handler[i], "handle-ioctl", G_CALLBACK(handle_ioctl), &sim_fd[i]);
		snprintf(node, sizeof node, "/dev/dri/renderD%d", minor);
		if (!umockdev_testbed_attach_ioctl(tb, node, handler[i], &err)) {
			fprintf(stderr, "umockdev: cannot attach ioctls to %s: %s\n", node, err->message);
			return 1;
		}
	}

	/* The kernel driver: discovery through sysfs, render nodes through /dev. */
	svm_context *ctx = NULL;
	CHECK_OK(svm_context_create(NULL, &ctx));
	svm_device dev[2];
	CHECK_OK(svm_device_open_index(ctx, 0, &dev[0]));
	CHECK_OK(svm_device_open(ctx, "/dev/dri/renderD129", &dev[1]));
	svm_device extra;
	CHECK(svm_device_open_index(ctx, 2, &extra) == -ENODEV); /* discovery found exactly two */
	svm_device_info info = { .struct_size = sizeof(info) };
	for (int i = 1; i >= 0; i--) {
		CHECK_OK(svm_device_get_info(ctx, dev[i], &info));
		CHECK(info.has_vram && info.vm_id != 0 && info.fd >= 0);
		lib_fd[i] = info.fd;
	}
	CHECK(forwarded >= 5); /* queries, VM_CREATE, mirror bind, user-fence wait */

	svm_pagemap vram0, vram1, where;
	CHECK_OK(svm_device_pagemap(ctx, dev[0], 0, &vram0));
	CHECK_OK(svm_device_pagemap(ctx, dev[1], 0, &vram1));
	CHECK_OK(svm_resolve_pagemap(ctx, dev[0], 0, BUF, 8 * MIB, SVM_ACCESS_WRITE, &where));
	CHECK(where.id == vram0.id);

	/* alloc_vram: madvise + prefetch with a user fence, through ioctl(2). */
	svm_alloc_result r = { .struct_size = sizeof(r) };
	CHECK_OK(svm_alloc_vram(ctx, dev[0], BUF, 8 * MIB, where, 0, &r));
	CHECK(r.pagemap.id == vram0.id && r.bytes_moved == 8 * MIB && !(r.flags & SVM_RESULT_VERIFIED));
	svm_sim_residency res;
	CHECK_OK(svm_sim_get_residency(sim, BUF, 8 * MIB, &res));
	CHECK(res.kind == SVM_PLACE_VRAM && res.device == 0 && res.instance == 1);
	/* Again: in place by the record, zero ioctls. */
	unsigned long before = forwarded;
	CHECK_OK(svm_alloc_vram(ctx, dev[0], BUF, 8 * MIB, where, 0, &r));
	CHECK((r.flags & SVM_RESULT_IN_PLACE) && forwarded == before);

	/* A peer placement: multi-device madvise with the peer's fd + CONSULT prefetch. */
	CHECK_OK(svm_alloc_vram(ctx, dev[0], BUF + 16 * MIB, 4 * MIB, vram1, 0, &r));
	CHECK(r.pagemap.id == vram1.id);
	CHECK_OK(svm_sim_get_residency(sim, BUF + 16 * MIB, 4 * MIB, &res));
	CHECK(res.kind == SVM_PLACE_VRAM && res.device == 1);

	/* The range query reads each VM's attributes with VM_QUERY_MEM_RANGE_ATTRS. */
	svm_range_info q = { .struct_size = sizeof(q) };
	CHECK_OK(svm_range_query(ctx, BUF + 16 * MIB, 4 * MIB, &q));
	CHECK(q.ndevices == 2 && (q.flags & SVM_RANGE_RESIDENCY_KNOWN) && !(q.flags & SVM_RANGE_OBSERVED));
	CHECK(q.devices[0].preferred_fd == lib_fd[1]); /* device 0's VM prefers device 1's VRAM */

	/* Evict: prefetch to system on the holders. */
	CHECK_OK(svm_evict(ctx, BUF, 8 * MIB, NULL));
	CHECK_OK(svm_sim_get_residency(sim, BUF, 8 * MIB, &res));
	CHECK(res.kind == SVM_PLACE_SYSTEM);

	svm_stats st = { .struct_size = sizeof(st) };
	CHECK_OK(svm_get_stats(ctx, &st));
	CHECK(st.page_table == SVM_PAGE_TABLE_NONE && st.prefetch >= 3 && st.ioctls > 0 && st.evictions == 1);
	svm_sim_counters k = { .struct_size = sizeof(k) };
	CHECK_OK(svm_sim_get_counters(sim, &k));
	/* Never written by the CPU: both placements were first touches (VRAM
	 * cleared, nothing copied); the evict copies the 8 MiB back. */
	CHECK(k.bytes_to_vram == 0 && k.bytes_cleared == 12 * MIB && k.bytes_to_system == 8 * MIB);
	CHECK_OK(svm_sim_check(sim));

	CHECK_OK(svm_context_destroy(ctx));
	for (int i = 0; i < 2; i++)
		g_object_unref(handler[i]);
	g_object_unref(tb);
	CHECK_OK(svm_sim_destroy(sim));
	printf("test_kernel_path: ok (%lu ioctls forwarded through umockdev)\n", forwarded);
	return 0;
}
