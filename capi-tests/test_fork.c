/* Process lifetime across fork: the child cannot use the parent's context
 * (-ECHILD, with a message saying what to do), creates its own and places
 * with it, and may destroy the inherited one, which issues no ioctl (the
 * VMs belong to the parent's DRM files). The parent is untouched. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>
#include "rig.h"

/* Parent threads placing while the main thread forks: any of the context's
 * locks may be held at fork, for ever in the child. */
static atomic_int stop;

static void *placer(void *arg)
{
	rig *r = arg;
	svm_alloc_result res = { .struct_size = sizeof(res) };
	for (int i = 0; !atomic_load(&stop); i++) {
		int d = i % 2;
		svm_alloc_vram(r->ctx, r->dev[d], BUF + (uint64_t)(i % 8) * 4 * MIB, 4 * MIB, r->vram[d], 0, &res);
	}
	return NULL;
}

/* A child of a busy parent destroys the inherited context without waiting
 * on a lock a parent thread held (it hung in close()). */
static void busy_parent_fork(void)
{
	rig r = rig_open("2dgpu-p2p", NULL, 0, 0);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, placer, &r) == 0);
	for (int k = 0; k < 20; k++) {
		fflush(NULL);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			alarm(10);
			svm_pagemap pm;
			if (svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF, 2 * MIB, SVM_ACCESS_READ, &pm) != -ECHILD)
				_exit(3);
			_exit(svm_context_destroy(r.ctx) == 0 ? 0 : 4);
		}
		int status = 0;
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	rig_close(&r);
}

static int child(rig *parent)
{
	svm_pagemap pm;
	CHECK(svm_resolve_pagemap(parent->ctx, parent->dev[0], 0, BUF, 2 * MIB, SVM_ACCESS_READ, &pm) == -ECHILD);
	CHECK(strstr(svm_last_error(), "fork") != NULL);
	CHECK(strstr(svm_strerror(-ECHILD), "fork") != NULL);
	svm_alloc_result r = { .struct_size = sizeof(r) };
	CHECK(svm_alloc_vram(parent->ctx, parent->dev[0], BUF, 2 * MIB, parent->vram[0], 0, &r) == -ECHILD);

	/* The child's own context works, with its own page table. */
	rig mine = rig_open("dgpu", NULL, 0, 0);
	CHECK_OK(svm_alloc_vram(mine.ctx, mine.dev[0], BUF, 2 * MIB, mine.vram[0], 0, &r));
	CHECK(lives_in(&mine, BUF, 2 * MIB, 0));
	rig_close(&mine);

	/* Destroying the inherited context destroys no VM of the parent's. */
	uint64_t before = counters(parent).ioctls;
	CHECK_OK(svm_context_destroy(parent->ctx));
	CHECK(counters(parent).ioctls == before);
	return 0;
}

int main(void)
{
	rig r = rig_open("dgpu", NULL, 0, 0);
	svm_alloc_result res = { .struct_size = sizeof(res) };
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], BUF, 2 * MIB, r.vram[0], 0, &res));
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(child(&r));
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* The parent goes on with its context as before. */
	svm_pagemap pm;
	CHECK_OK(svm_resolve_pagemap(r.ctx, r.dev[0], 0, BUF, 2 * MIB, SVM_ACCESS_READ, &pm));
	CHECK_OK(svm_alloc_vram(r.ctx, r.dev[0], BUF + 4 * MIB, 2 * MIB, r.vram[0], 0, &res));
	uint64_t before = counters(&r).ioctls;
	CHECK_OK(svm_context_destroy(r.ctx));
	CHECK(counters(&r).ioctls > before); /* the parent's destroy does destroy its VM */
	CHECK_OK(svm_sim_destroy(r.sim));
	busy_parent_fork();
	printf("fork: child refused the parent's context, used its own; parent unaffected\n");
	return 0;
}
