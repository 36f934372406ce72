/*
 * The library's log, routed into the runtime's own: a handler set with
 * svm_set_log_handler sees one line per event. A forced fallback (VRAM
 * allocation keeps failing) logs the retry and the fallback at info; bad
 * input logs at debug with the same text svm_last_error() gives; nothing is
 * logged below the level in force. A context's own handler
 * (svm_context_set_log_handler) takes the lines of calls on that context,
 * so two runtimes in one process keep their logs apart.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "rig.h"

#define VM_BIND_REQUEST 0x40886445u
#define MAX_LINES 64

static char lines[MAX_LINES][512];
static int levels[MAX_LINES];
static int nlines;
static int user_token = 42;

static void handler(int level, const char *line, void *user)
{
	CHECK(user == &user_token);
	if (nlines < MAX_LINES) {
		snprintf(lines[nlines], sizeof lines[0], "%s", line);
		levels[nlines++] = level;
	}
}

struct sink_count {
	int n;
	char last[512];
};

static void own_handler(int level, const char *line, void *user)
{
	struct sink_count *s = user;
	(void)level;
	s->n++;
	snprintf(s->last, sizeof s->last, "%s", line);
}

/* A handler that calls back into the library: a range query of the span
 * the logging call is placing. Lines reach handlers once the call holds no
 * lock, so this neither deadlocks nor waits. */
static svm_context *reenter_ctx;
static int reentered;

static void reentrant_handler(int level, const char *line, void *user)
{
	(void)level;
	(void)user;
	if (reenter_ctx && strstr(line, "alloc_vram")) {
		svm_range_info info = { .struct_size = sizeof(info) };
		CHECK_OK(svm_range_query(reenter_ctx, BUF, 2 * MIB, &info));
		reentered++;
	}
}

static int find(const char *needle, int level)
{
	for (int i = 0; i < nlines; i++)
		if (strstr(lines[i], needle) && levels[i] == level)
			return i;
	return -1;
}

/* A handler's user data that is dead once its handler was replaced: a
 * call after svm_set_log_handler returned would see it dead (a runtime
 * freeing it there read freed memory). */
struct live {
	atomic_int alive;
};
static atomic_int late_calls;
static atomic_int swapping = 1;

static void live_handler(int level, const char *line, void *user)
{
	struct live *l = user;
	(void)level;
	(void)line;
	if (!atomic_load(&l->alive))
		atomic_fetch_add(&late_calls, 1);
}

static void quiet_handler(int level, const char *line, void *user)
{
	(void)level;
	(void)line;
	(void)user;
}

static void *tracing_placer(void *arg)
{
	rig *r = arg;
	svm_alloc_result res = { .struct_size = sizeof(res) };
	for (int i = 0; atomic_load(&swapping); i++) {
		int d = i % 2;
		svm_alloc_vram(r->ctx, r->dev[d], BUF + (uint64_t)(i % 4) * 8 * MIB, 8 * MIB, r->vram[d], 0, &res);
	}
	return NULL;
}

/* Handlers swapped while two threads' calls log at trace level: none is
 * called once another replaced it, process-wide or the context's. */
static void handler_swaps_under_load(void)
{
	rig r = rig_open("2dgpu-p2p", NULL, 0, 0);
	CHECK_OK(svm_set_log_level(SVM_LOG_TRACE));
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, tracing_placer, &r) == 0);
	static struct live sinks[400];
	for (int k = 0; k < 400; k++) {
		atomic_store(&sinks[k].alive, 1);
		if (k % 2)
			CHECK_OK(svm_context_set_log_handler(r.ctx, live_handler, &sinks[k]));
		else
			CHECK_OK(svm_set_log_handler(live_handler, &sinks[k]));
		usleep(50);
		/* Replaced by one that keeps quiet (stderr would take the lines). */
		if (k % 2)
			CHECK_OK(svm_context_set_log_handler(r.ctx, quiet_handler, NULL));
		else
			CHECK_OK(svm_set_log_handler(quiet_handler, NULL));
		atomic_store(&sinks[k].alive, 0);
	}
	atomic_store(&swapping, 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK(atomic_load(&late_calls) == 0);
	CHECK_OK(svm_context_set_log_handler(r.ctx, NULL, NULL));
	CHECK_OK(svm_set_log_handler(NULL, NULL));
	CHECK_OK(svm_set_log_level(SVM_LOG_WARN));
	rig_close(&r);
}

/* A handler that re-enters the library while another thread sets
 * handlers: its own call's lines reach it without waiting behind the
 * queued setter (the two waited on each other). */
static atomic_int stop_setting;
static _Thread_local int depth;

static void reenter_under_setter(int level, const char *line, void *user)
{
	(void)level;
	(void)line;
	svm_context *c = user;
	if (depth || !c)
		return;
	depth++;
	usleep(500); /* a setter queues meanwhile */
	svm_range_query(c, BUF, 2 * MIB, NULL); /* EINVAL: a debug line of its own */
	depth--;
}

static void *setter(void *arg)
{
	rig *r = arg;
	for (int k = 0; !atomic_load(&stop_setting); k++) {
		if (k % 2)
			svm_context_set_log_handler(r->ctx, reenter_under_setter, r->ctx);
		else
			svm_set_log_handler(reenter_under_setter, r->ctx);
		usleep(100);
	}
	return NULL;
}

/* A handler setting a handler would wait for itself: -EDEADLK. */
static int nested_status = 1;

static void sets_a_handler(int level, const char *line, void *user)
{
	(void)level;
	(void)line;
	(void)user;
	nested_status = svm_set_log_handler(NULL, NULL);
}

static void reentrant_handlers(void)
{
	rig r = rig_open("dgpu", NULL, 0, 0);
	alarm(60); /* a deadlock fails the test instead of hanging it */
	CHECK_OK(svm_set_log_level(SVM_LOG_DEBUG));
	CHECK_OK(svm_set_log_handler(reenter_under_setter, r.ctx));
	pthread_t t;
	CHECK(pthread_create(&t, NULL, setter, &r) == 0);
	for (int i = 0; i < 200; i++)
		svm_range_query(r.ctx, BUF, 2 * MIB, NULL);
	atomic_store(&stop_setting, 1);
	pthread_join(t, NULL);
	CHECK_OK(svm_context_set_log_handler(r.ctx, NULL, NULL));
	CHECK_OK(svm_set_log_handler(sets_a_handler, NULL));
	svm_range_query(r.ctx, BUF, 2 * MIB, NULL);
	CHECK(nested_status == -EDEADLK);
	CHECK_OK(svm_set_log_handler(NULL, NULL));
	alarm(0);
	CHECK_OK(svm_set_log_level(SVM_LOG_WARN));
	rig_close(&r);
}

int main(void)
{
	handler_swaps_under_load();
	reentrant_handlers();
	rig r = rig_open("dgpu", NULL, 0, 0);
	CHECK_OK(svm_set_log_handler(handler, &user_token));
	CHECK_STATUS(svm_set_log_level(9), -EINVAL);

	/* At the default level (warn), a fallback is not logged. */
	CHECK_OK(svm_set_log_level(SVM_LOG_WARN));
	svm_sim_injection inj = { .struct_size = sizeof(inj), .point = SVM_SIM_INJECT_IOCTL, .device = -1,
				  .request = VM_BIND_REQUEST, .error = -ENOMEM, .count = 100 };
	CHECK_OK(svm_sim_inject(r.sim, &inj));
	svm_alloc_result res = alloc(&r, 0, BUF, 2 * MIB, r.vram[0], 0);
	CHECK(res.flags & SVM_RESULT_FELL_BACK);
	CHECK(nlines == 0);

	/* At info: the retry after ENOMEM and the fallback, one line each. */
	CHECK_OK(svm_set_log_level(SVM_LOG_INFO));
	res = alloc(&r, 0, BUF + 2 * MIB, 2 * MIB, r.vram[0], 0);
	CHECK(res.flags & SVM_RESULT_FELL_BACK);
	int retry = find("ENOMEM, evicting least recently used ranges and retrying once", SVM_LOG_INFO);
	int fell = find("fell back to system from device 0 VRAM tile 0 (ENOMEM", SVM_LOG_INFO);
	CHECK(retry >= 0 && fell > retry);
	CHECK(strncmp(lines[fell], "xesvm: info: alloc_vram [0x1000200000+2 MiB] device 0", 53) == 0);
	CHECK_OK(svm_sim_inject_clear(r.sim));

	/* A handler that re-enters the library on a placement's own line. */
	CHECK_OK(svm_set_log_handler(reentrant_handler, NULL));
	reenter_ctx = r.ctx;
	CHECK_OK(svm_sim_inject(r.sim, &inj));
	res = alloc(&r, 0, BUF, 2 * MIB, r.vram[0], 0);
	CHECK_OK(svm_sim_inject_clear(r.sim));
	CHECK(reentered > 0);
	reenter_ctx = NULL;
	CHECK_OK(svm_set_log_handler(handler, &user_token));

	/* Bad input at debug, with svm_last_error()'s text. */
	CHECK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 0, r.vram[0], 0, NULL) == -EINVAL);
	CHECK(find(svm_last_error(), SVM_LOG_DEBUG) < 0); /* info: not logged */
	CHECK_OK(svm_set_log_level(SVM_LOG_DEBUG));
	CHECK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 0, r.vram[0], 0, NULL) == -EINVAL);
	int bad = find(svm_last_error(), SVM_LOG_DEBUG);
	CHECK(bad >= 0);

	/* At trace: each ioctl, by the kernel's name, with its result. */
	CHECK_OK(svm_set_log_level(SVM_LOG_TRACE));
	res = alloc(&r, 0, BUF + 8 * MIB, 2 * MIB, r.vram[0], 0);
	CHECK(res.pagemap.id == r.vram[0].id);
	CHECK(find("DRM_IOCTL_XE_VM_BIND on fd", SVM_LOG_TRACE) >= 0);
	CHECK(find("DRM_IOCTL_XE_WAIT_USER_FENCE on fd", SVM_LOG_TRACE) >= 0);
	CHECK_OK(svm_set_log_level(SVM_LOG_DEBUG));

	/* Two contexts, each with its own handler: each sees only its lines. */
	rig other = rig_open("dgpu", NULL, 0, 0);
	struct sink_count mine = { 0 }, theirs = { 0 };
	CHECK_OK(svm_context_set_log_handler(r.ctx, own_handler, &mine));
	CHECK_OK(svm_context_set_log_handler(other.ctx, own_handler, &theirs));
	int global_before = nlines;
	CHECK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 0, r.vram[0], 0, NULL) == -EINVAL);
	CHECK(mine.n == 1 && theirs.n == 0 && strstr(mine.last, "size") != NULL);
	CHECK(svm_alloc_vram(other.ctx, other.dev[0], BUF, 0, other.vram[0], 0, NULL) == -EINVAL);
	CHECK(mine.n == 1 && theirs.n == 1);
	CHECK(nlines == global_before); /* the process-wide handler saw neither */
	/* Cleared: the context's lines go to the process-wide handler again. */
	CHECK_OK(svm_context_set_log_handler(r.ctx, NULL, NULL));
	CHECK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 0, r.vram[0], 0, NULL) == -EINVAL);
	CHECK(mine.n == 1 && nlines == global_before + 1);
	CHECK(svm_context_set_log_handler(NULL, own_handler, &mine) == -EINVAL);
	rig_close(&other);

	/* Back to stderr, and off. */
	CHECK_OK(svm_set_log_handler(NULL, NULL));
	int before = nlines;
	CHECK_OK(svm_set_log_level(SVM_LOG_OFF));
	CHECK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 0, r.vram[0], 0, NULL) == -EINVAL);
	CHECK(nlines == before);
	rig_close(&r);
	puts("test_log: ok");
	return 0;
}
