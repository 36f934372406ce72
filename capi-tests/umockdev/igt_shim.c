/*
 * IGT's own tests against the simulated driver (scripts/igt.sh): loaded
 * with LD_PRELOAD after umockdev's preload library, before the test's
 * main() runs, it builds a umockdev testbed with one Xe device per device
 * of a simulated machine (SHIM_PRESET, default "dgpu"): a PCI device, its
 * primary node card<N> and render node renderD<128+N>, whose ioctls the
 * simulated driver answers through svm_sim_ioctl, as the kernel would.
 * IGT's multigpu-* subtests open each node in a forked child (SHIM_PRESET
 * 2dgpu-p2p: two nodes, one simulated machine): the child's ioctls reach
 * the testbed's thread in this process over umockdev's socket, and the
 * buffers its structs point to go to and fro through umockdev
 * (forward_ioctl in xe_testbed.h).
 *
 * IGT mounts debugfs when /sys/kernel/debug is not a mount point. Under
 * umockdev /sys is the testbed's, which has none, while mount(2) is not
 * redirected: the shim answers a debugfs mount with success, so that
 * nothing on the machine is mounted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <umockdev.h>
#include <xesvm.h>

#include "xe_testbed.h"

#define MAX_DEVICES 8

static svm_sim *sim;
static int sim_fd[MAX_DEVICES];

static gboolean handle_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer user)
{
	(void)base;
	return forward_ioctl(client, sim, *(int *)user, NULL);
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "igt_shim: %s: %s\n", what, why);
	exit(1);
}

__attribute__((constructor)) static void igt_shim_init(void)
{
	const char *preset = getenv("SHIM_PRESET") ? getenv("SHIM_PRESET") : "dgpu";
	uint32_t n = 0;
	if (svm_sim_create(preset, &sim) != 0 || svm_sim_device_count(sim, &n) != 0)
		die(preset, svm_last_error());
	UMockdevTestbed *tb = umockdev_testbed_new();
	for (uint32_t d = 0; d < n && d < MAX_DEVICES; d++) {
		char record[2048], node[64];
		snprintf(record, sizeof record, XE_DEVICE_RECORD, 3 + d, d, 128 + d);
		GError *err = NULL;
		if (svm_sim_device_open(sim, d, &sim_fd[d]) != 0)
			die("svm_sim_device_open", svm_last_error());
		if (!umockdev_testbed_add_from_string(tb, record, &err))
			die("umockdev_testbed_add_from_string", err->message);
		for (int render = 0; render < 2; render++) {
			snprintf(node, sizeof node, render ? "/dev/dri/renderD%u" : "/dev/dri/card%u", render ? 128 + d : d);
			UMockdevIoctlBase *h = umockdev_ioctl_base_new();
			g_signal_connect(h, "handle-ioctl", G_CALLBACK(handle_ioctl), &sim_fd[d]);
			if (!umockdev_testbed_attach_ioctl(tb, node, h, &err))
				die(node, err->message);
		}
	}
}

int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)
{
	(void)source;
	(void)target;
	(void)flags;
	(void)data;
	if (fstype && strcmp(fstype, "debugfs") == 0)
		return 0;
	errno = EPERM;
	return -1;
}
