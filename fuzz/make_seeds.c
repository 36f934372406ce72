/* Writes the hand-made seeds of fuzz/corpus: inputs that spell a runtime's
 * ordinary sessions in each target's byte format, so that the fuzzer starts
 * from the deep paths (binds, prefetches, migrations, eviction, retries)
 * instead of finding them byte by byte. Run it again when a target's input
 * format changes:
 *
 *   cc -Iinclude fuzz/make_seeds.c -o /tmp/make_seeds && /tmp/make_seeds fuzz/corpus
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xesvm/xe_drm.h>

static uint8_t out[4096];
static size_t len;

static void put(uint64_t v, unsigned width)
{
	for (unsigned i = 0; i < width; i++)
		out[len++] = (uint8_t)(v >> (8 * i));
}

static void save(const char *dir, const char *target, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(out, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
	len = 0;
}

/* ---- fuzz_ioctl: [preset][second device] then steps of
 * [request][fd][offset u16][n u16][n bytes][arg][gpu?]. */
#define TAG 0x7e0000000000ull
#define ARENA 0x1000000000ull
enum { R_QUERY, R_VM_CREATE, R_VM_DESTROY, R_VM_BIND, R_WAIT, R_MADVISE, R_QUERY_ATTRS, R_NONE = 255 };

static void ioctl_step(int req, uint16_t off, const void *s, uint16_t n)
{
	put(req, 1);
	if (req == R_NONE)
		put(0, 4); /* a raw request 0: ENOTTY, the bytes stay */
	put(0, 1);
	put(off, 2);
	put(n, 2);
	memcpy(out + len, s, n);
	len += n;
	put(0, 1); /* arg: the struct */
	put(0, 1); /* no GPU access */
}

static void gpu_step(uint32_t vm, uint64_t start, int access)
{
	/* An empty write, then the access. */
	put(R_NONE, 1);
	put(0, 4);
	put(0, 1);
	put(0, 2);
	put(0, 2);
	put(0, 1);
	put(255, 1);
	put(vm, 1);
	put(start >> 12, 4);
	put(0, 1);
	put(access, 1);
}

/* A query's two calls: the size first (written back by the driver into
 * the struct), then the data, rewriting only `extensions` so the size stays. */
static void query(uint16_t off, uint32_t what, uint64_t data)
{
	struct xesvm_drm_xe_device_query q = { .query = what, .data = data };
	ioctl_step(R_QUERY, off, &q, sizeof(q));
	uint64_t zero = 0;
	ioctl_step(R_QUERY, off, &zero, sizeof(zero));
}

static void bind(uint32_t vm, uint32_t op, uint32_t flags, uint64_t addr, uint64_t range, uint32_t region, int fence)
{
	if (fence) {
		struct xesvm_drm_xe_sync s = { .type = XESVM_DRM_XE_SYNC_TYPE_USER_FENCE, .flags = XESVM_DRM_XE_SYNC_FLAG_SIGNAL, .addr = TAG + 0x3100, .timeline_value = 1 };
		ioctl_step(R_NONE, 0x3000, &s, sizeof(s));
	}
	struct xesvm_drm_xe_vm_bind b = { .vm_id = vm, .num_binds = 1, .num_syncs = fence ? 1 : 0, .syncs = fence ? TAG + 0x3000 : 0 };
	b.bind.op = op;
	b.bind.flags = flags;
	b.bind.addr = addr;
	b.bind.range = range;
	b.bind.prefetch_mem_region_instance = region;
	ioctl_step(R_VM_BIND, 0x300, &b, sizeof(b));
}

static void ioctl_session(int two_devices)
{
	put(two_devices, 1);
	put(two_devices, 1);
	query(0x100, XESVM_DRM_XE_DEVICE_QUERY_MEM_REGIONS, TAG + 0x1000);
	query(0x100, XESVM_DRM_XE_DEVICE_QUERY_CONFIG, TAG + 0x2000);
	query(0x100, XESVM_DRM_XE_DEVICE_QUERY_GT_LIST, TAG + 0x2000);
	query(0x100, XESVM_DRM_XE_DEVICE_QUERY_ENGINES, TAG + 0x2000);
	struct xesvm_drm_xe_vm_create c = { .flags = XESVM_DRM_XE_VM_CREATE_FLAG_LR_MODE | XESVM_DRM_XE_VM_CREATE_FLAG_FAULT_MODE };
	ioctl_step(R_VM_CREATE, 0x200, &c, sizeof(c));
	bind(1, XESVM_DRM_XE_VM_BIND_OP_MAP, XESVM_DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR, 0, 1ull << 47, 0, 1);
	struct xesvm_drm_xe_wait_user_fence w = { .addr = TAG + 0x3100, .op = XESVM_DRM_XE_UFENCE_WAIT_OP_EQ, .value = 1, .mask = ~0ull };
	ioctl_step(R_WAIT, 0x400, &w, sizeof(w));
	gpu_step(1, ARENA, 1);
	bind(1, XESVM_DRM_XE_VM_BIND_OP_PREFETCH, 0, ARENA, 2 << 20, 1, 1);
	bind(1, XESVM_DRM_XE_VM_BIND_OP_PREFETCH, 0, ARENA + (4 << 20), 2 << 20, 0, 0);
	struct xesvm_drm_xe_madvise m = { .start = ARENA, .range = 4 << 20, .vm_id = 1, .type = XESVM_DRM_XE_MEM_RANGE_ATTR_ATOMIC };
	m.atomic.val = XESVM_DRM_XE_ATOMIC_DEVICE;
	ioctl_step(R_MADVISE, 0x500, &m, sizeof(m));
	struct xesvm_drm_xe_madvise p = { .start = ARENA, .range = 2 << 20, .vm_id = 1, .type = XESVM_DRM_XE_MEM_RANGE_ATTR_PREFERRED_LOC };
	p.preferred_mem_loc.devmem_fd = (uint32_t)XESVM_DRM_XE_PREFERRED_LOC_DEFAULT_SYSTEM;
	ioctl_step(R_MADVISE, 0x500, &p, sizeof(p));
	bind(1, XESVM_DRM_XE_VM_BIND_OP_PREFETCH, 0, ARENA, 2 << 20, (uint32_t)XESVM_DRM_XE_CONSULT_MEM_ADVISE_PREF_LOC, 1);
	gpu_step(1, ARENA + (2 << 20), 2);
	struct xesvm_drm_xe_vm_query_mem_range_attr q = { .vm_id = 1, .start = ARENA, .range = 8 << 20 };
	ioctl_step(R_QUERY_ATTRS, 0x600, &q, sizeof(q));
	q.num_mem_ranges = 4;
	q.sizeof_mem_range_attr = sizeof(struct xesvm_drm_xe_mem_range_attr);
	q.vector_of_mem_attr = TAG + 0x4000;
	ioctl_step(R_QUERY_ATTRS, 0x600, &q, sizeof(q));
	bind(1, XESVM_DRM_XE_VM_BIND_OP_UNMAP, 0, ARENA, 2 << 20, 0, 0);
	struct xesvm_drm_xe_vm_destroy d = { .vm_id = 1 };
	ioctl_step(R_VM_DESTROY, 0x700, &d, sizeof(d));
}

/* ---- fuzz_calls: [preset][4 config bytes per context] then steps of
 * [context][op][arguments]; see fuzz_calls.c's pick_* for the argument
 * encodings used here (chunk starts, chunk counts, in-range indices). */
enum { PRESET_2DGPU_P2P = 1, PRESET_SMALL = 6 };
enum { OP_RESOLVE = 0, OP_ALLOC = 3, OP_EVICT = 6, OP_PREFERRED = 7, OP_QUERY = 11, OP_STATS = 12, OP_INJECT = 13, OP_CPU = 16, OP_GPU = 17 };

static void calls_header(int preset)
{
	put(preset, 1);
	for (int c = 0; c < 2; c++)
		put(0, 4);
}

static void chunks(unsigned first, unsigned n)
{
	put(0, 1);
	put(first, 2);
	put(0, 1);
	put(n - 1, 1);
}

static void resolve(int c, int dev, unsigned first, unsigned n, int access)
{
	put(c, 1), put(OP_RESOLVE, 1), put(dev, 1), put(0, 1);
	chunks(first, n);
	put(access, 1), put(0, 1);
}

static void alloc(int c, int dev, unsigned first, unsigned n, int pagemap)
{
	put(c, 1), put(OP_ALLOC, 1), put(dev, 1);
	chunks(first, n);
	put(pagemap, 1), put(0, 1), put(0, 1), put(0, 1);
}

static void evict(int c, unsigned first, unsigned n)
{
	put(c, 1), put(OP_EVICT, 1);
	chunks(first, n);
	put(0, 1), put(0, 1);
}

static void gpu(int c, int dev, unsigned first, unsigned n, int access)
{
	put(c, 1), put(OP_GPU, 1), put(dev, 1);
	chunks(first, n);
	put(access, 1), put(0, 1), put(0x1234 + first, 8);
}

static void calls_sessions(const char *dir)
{
	/* Place, use, give back, on two devices with a link. */
	calls_header(PRESET_2DGPU_P2P);
	resolve(0, 0, 0, 2, 0);
	alloc(0, 0, 0, 2, 1);
	gpu(0, 0, 0, 2, 1);
	alloc(0, 1, 0, 2, 1);
	put(0, 1), put(OP_QUERY, 1), chunks(0, 2), put(0, 1), put(0, 1);
	evict(0, 0, 2);
	put(1, 1), put(OP_PREFERRED, 1), chunks(2, 2), put(2, 1);
	resolve(1, 1, 2, 2, 2);
	alloc(1, 1, 2, 2, 2);
	put(0, 1), put(OP_STATS, 1);
	save(dir, "fuzz_calls", "place-use-evict");

	/* Pressure: eight 2 MiB ranges into 8 MiB of VRAM. */
	calls_header(PRESET_SMALL);
	for (unsigned i = 0; i < 8; i++)
		alloc(0, 0, i, 1, 1);
	for (unsigned i = 0; i < 8; i++)
		gpu(0, 0, i, 1, 0);
	save(dir, "fuzz_calls", "pressure");

	/* A range both devices write in turn: the thrash guard pins it. */
	calls_header(PRESET_2DGPU_P2P);
	for (int i = 0; i < 6; i++) {
		alloc(0, i & 1, 3, 1, i & 1 ? 2 : 1);
		gpu(0, i & 1, 3, 1, 1);
	}
	save(dir, "fuzz_calls", "thrash");

	/* Retries: EBUSY on the next prefetches, then ENOMEM. */
	calls_header(PRESET_2DGPU_P2P);
	/* context, op, errno, struct_size, point, device, skip, count, probability, seed */
	put(0, 1), put(OP_INJECT, 1), put(0, 1), put(0, 1), put(0, 1), put(0, 1), put(0, 1), put(3, 1), put(0, 1), put(7, 8);
	alloc(0, 0, 0, 4, 1);
	put(0, 1), put(OP_INJECT, 1), put(1, 1), put(0, 1), put(1, 1), put(1, 1), put(0, 1), put(2, 1), put(0, 1), put(9, 8);
	alloc(0, 0, 4, 2, 1);
	put(0, 1), put(OP_CPU, 1), chunks(4, 2), put(1, 1), put(5, 8);
	save(dir, "fuzz_calls", "retries");
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "fuzz/corpus";
	ioctl_session(0);
	save(dir, "fuzz_ioctl", "session-dgpu");
	ioctl_session(1);
	save(dir, "fuzz_ioctl", "session-2dgpu");
	calls_sessions(dir);
	return 0;
}
