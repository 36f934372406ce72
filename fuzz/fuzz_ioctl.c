/* ioctl-decoder fuzz target: fuzzed request numbers and structs fed to the
 * simulated driver's raw ioctl entry (svm_sim_ioctl), exactly what ioctl(2)
 * on an Xe render node takes. It must answer 0 or an errno, never crash,
 * never hang, and keep its invariants (svm_sim_check) whatever it was fed.
 *
 * User memory is one fuzzer-owned buffer between two PROT_NONE guards. The
 * driver follows the structs' embedded pointers (query data, the vector of
 * binds, syncs and their user fences, fence addresses, attribute vectors)
 * through process_vm_readv/writev, which answer EFAULT for unmapped memory
 * but would write over any mapped memory: the harness's heap, or ASan's
 * shadow, which spans a tenth of the address space. So before each call
 * every pointer field of the request's struct (docs/xe-uapi.md §4) that holds a
 * user address is folded into the buffer, keeping its low 16 bits (and so
 * its alignment): any user address ending in n names byte n of the buffer,
 * which is how a seed (fuzz/make_seeds.c) points into it without knowing
 * where it is. Values outside user space reach the driver as
 * fuzzed (EFAULT), and so does every other field. */
#include <sys/mman.h>
#include <xesvm/xe_drm.h>
#include "fuzz.h"

#define BUFSIZE (64u << 10)
#define GUARD (64u << 10)
#define USER_MIN 0x10000ull
#define USER_END (1ull << 47)

static uint8_t *buf;

static const uint32_t requests[] = {
	XESVM_DRM_IOCTL_XE_DEVICE_QUERY, XESVM_DRM_IOCTL_XE_VM_CREATE,  XESVM_DRM_IOCTL_XE_VM_DESTROY,
	XESVM_DRM_IOCTL_XE_VM_BIND,      XESVM_DRM_IOCTL_XE_WAIT_USER_FENCE, XESVM_DRM_IOCTL_XE_MADVISE,
	XESVM_DRM_IOCTL_XE_VM_QUERY_MEM_RANGE_ATTRS,
};
#define NREQ (sizeof(requests) / sizeof(requests[0]))

static void map_buffer(void)
{
	/* [guard][buffer][guard], the buffer aligned to its size so that
	 * folding a pointer into it keeps the pointer's low bits. */
	size_t span = 2 * BUFSIZE + 2 * GUARD;
	uint8_t *m = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		abort();
	uintptr_t b = ((uintptr_t)m + GUARD + BUFSIZE - 1) & ~(uintptr_t)(BUFSIZE - 1);
	if (mprotect((void *)b, BUFSIZE, PROT_READ | PROT_WRITE))
		abort();
	buf = (uint8_t *)b;
}

/* Folds the user address at buf[pos] into the buffer; returns the
 * buffer offset it now names, or BUFSIZE when it names none. */
static size_t fold_at(size_t pos)
{
	if (pos + 8 > BUFSIZE)
		return BUFSIZE;
	uint64_t v, lo = (uint64_t)(uintptr_t)buf;
	memcpy(&v, buf + pos, 8);
	if (v >= lo && v < lo + BUFSIZE)
		return v - lo;
	if (v < USER_MIN || v >= USER_END || (v >= lo - GUARD && v < lo + BUFSIZE + GUARD))
		return BUFSIZE;
	v = lo + (v & (BUFSIZE - 1));
	memcpy(buf + pos, &v, 8);
	return v - lo;
}

static uint32_t u32_at(size_t pos)
{
	uint32_t v = 0;
	if (pos + 4 <= BUFSIZE)
		memcpy(&v, buf + pos, 4);
	return v;
}

/* A prefetch populates every page of its span, here as in the kernel
 * (hmm_range_fault), and the simulated process has all of its VA mapped:
 * a fuzzed span of terabytes measures the model's memory, not the decoder.
 * Prefetch spans are capped at 64 MiB, keeping their low bits. */
static void cap_prefetch(size_t op)
{
	size_t range = op + offsetof(struct xesvm_drm_xe_vm_bind_op, range);
	if (range + 8 > BUFSIZE || u32_at(op + offsetof(struct xesvm_drm_xe_vm_bind_op, op)) != XESVM_DRM_XE_VM_BIND_OP_PREFETCH)
		return;
	uint64_t v;
	memcpy(&v, buf + range, 8);
	v &= (64ull << 20) - 1;
	memcpy(buf + range, &v, 8);
}

/* The pointer fields of the struct at buf[off] for request `req`, by its
 * DRM command number as the driver decodes it (docs/xe-uapi.md §4, §6), and
 * the wait's timeout. */
static void fold_pointers(uint32_t req, size_t off)
{
	if (((req >> 8) & 0xff) != 0x64)
		return;
	fold_at(off); /* every Xe struct starts with `extensions` */
	switch (req & 0xff) {
	case 0x40 + XESVM_DRM_XE_DEVICE_QUERY:
		fold_at(off + offsetof(struct xesvm_drm_xe_device_query, data));
		break;
	case 0x40 + XESVM_DRM_XE_VM_BIND: {
		uint32_t binds = u32_at(off + offsetof(struct xesvm_drm_xe_vm_bind, num_binds));
		if (binds > 1) {
			size_t v = fold_at(off + offsetof(struct xesvm_drm_xe_vm_bind, vector_of_binds));
			for (uint32_t i = 0; i < binds && v + (i + 1) * sizeof(struct xesvm_drm_xe_vm_bind_op) <= BUFSIZE; i++)
				cap_prefetch(v + i * sizeof(struct xesvm_drm_xe_vm_bind_op));
		} else {
			cap_prefetch(off + offsetof(struct xesvm_drm_xe_vm_bind, bind));
		}
		size_t syncs = fold_at(off + offsetof(struct xesvm_drm_xe_vm_bind, syncs));
		uint32_t n = u32_at(off + offsetof(struct xesvm_drm_xe_vm_bind, num_syncs));
		for (uint32_t i = 0; i < n && syncs + (i + 1) * sizeof(struct xesvm_drm_xe_sync) <= BUFSIZE; i++)
			fold_at(syncs + i * sizeof(struct xesvm_drm_xe_sync) + offsetof(struct xesvm_drm_xe_sync, addr));
		break;
	}
	case 0x40 + XESVM_DRM_XE_WAIT_USER_FENCE: {
		fold_at(off + offsetof(struct xesvm_drm_xe_wait_user_fence, addr));
		/* A wait is a wait: like the kernel, the driver blocks up to the
		 * timeout for a fence nobody signals (a negative one: forever), so
		 * the harness caps it at about 1 ms, relative or absolute. */
		size_t t = off + offsetof(struct xesvm_drm_xe_wait_user_fence, timeout);
		int64_t v;
		if (t + 8 <= BUFSIZE) {
			memcpy(&v, buf + t, 8);
			v &= 0xfffff;
			memcpy(buf + t, &v, 8);
		}
		break;
	}
	case 0x40 + XESVM_DRM_XE_MADVISE:
		fold_at(off + offsetof(struct xesvm_drm_xe_madvise, purge_state_val.retained_ptr));
		break;
	case 0x40 + XESVM_DRM_XE_VM_QUERY_MEM_RANGE_ATTRS:
		fold_at(off + offsetof(struct xesvm_drm_xe_vm_query_mem_range_attr, vector_of_mem_attr));
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bytes b = { data, size };
	if (!buf)
		map_buffer();
	svm_set_log_level(SVM_LOG_OFF);
	svm_sim *sim;
	const char *preset = take8(&b) & 1 ? "2dgpu-p2p" : "dgpu";
	MUST(svm_sim_create(preset, &sim));
	int fds[2];
	MUST(svm_sim_device_open(sim, 0, &fds[0]));
	MUST(svm_sim_device_open(sim, take8(&b) & 1 && strcmp(preset, "dgpu") ? 1 : 0, &fds[1]));
	memset(buf, 0, BUFSIZE);
	for (int i = 0; i < 32 && b.n; i++) {
		uint8_t k = take8(&b);
		uint32_t req = k < 200 ? requests[k % NREQ] : k < 230 ? requests[k % NREQ] ^ (1u << (take8(&b) % 32)) : take32(&b);
		uint8_t f = take8(&b);
		int fd = f < 240 ? fds[f & 1] : f < 248 ? -1 : (int)take32(&b);
		/* The struct: fuzzed bytes at a fuzzed 8-aligned offset; the rest
		 * of the buffer keeps what earlier steps (and the driver) left. */
		size_t off = (take16(&b) & (BUFSIZE - 1)) & ~(size_t)7;
		size_t n = take16(&b) % 512;
		if (n > b.n)
			n = b.n;
		if (n > BUFSIZE - off)
			n = BUFSIZE - off;
		memcpy(buf + off, b.p, n);
		b.p += n;
		b.n -= n;
		uint8_t a = take8(&b);
		void *arg = a < 240 ? (void *)(buf + off) : a < 244 ? NULL : a < 248 ? (void *)(uintptr_t)0x1000 : (void *)(buf + BUFSIZE - (a & 7));
		if (arg == buf + off)
			fold_pointers(req, off);
		int st = CALL(svm_sim_ioctl(sim, fd, req, arg));
		(void)st;
		/* Now and then the GPU touches what was bound. */
		if (take8(&b) > 240) {
			uint32_t vm = take8(&b) % 4;
			uint64_t start = ((uint64_t)take32(&b) << 12) & (USER_END - 1);
			CALL(svm_sim_gpu_access(sim, fds[0], vm, 0, start, (1 + take8(&b) % 16) * 4096ull, take8(&b) % 3, 1));
		}
		MUST(svm_sim_check(sim));
	}
	MUST(svm_sim_device_close(sim, fds[0]));
	if (fds[1] != fds[0])
		MUST(svm_sim_device_close(sim, fds[1]));
	MUST(svm_sim_check(sim));
	MUST(svm_sim_destroy(sim));
	return 0;
}
