/*
 * What the umockdev tests (test_kernel_path.c, igt_shim.c) share: the
 * record of an emulated Xe device, and the forwarding of its ioctls.
 */
#ifndef XESVM_UMOCKDEV_XE_TESTBED_H
#define XESVM_UMOCKDEV_XE_TESTBED_H

#include <errno.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <umockdev.h>
#include <xesvm.h>
#include <xesvm/xe_drm.h>

/* An Xe PCI device with its primary and render nodes, umockdev-record
 * format: %1$ PCI bus, %2$ card minor, %3$ render minor (library
 * discovery takes render nodes only). */
#define XE_DEVICE_RECORD \
	"P: /devices/pci0000:00/0000:00:01.0/0000:%1$02x:00.0\n" \
	"E: SUBSYSTEM=pci\n" \
	"E: DRIVER=xe\n" \
	"E: PCI_ID=8086:E20B\n" \
	"E: PCI_SLOT_NAME=0000:%1$02x:00.0\n" \
	"A: vendor=0x8086\n" \
	"A: device=0xe20b\n" \
	"L: driver=../../../bus/pci/drivers/xe\n" \
	"\n" \
	"P: /devices/pci0000:00/0000:00:01.0/0000:%1$02x:00.0/drm/card%2$d\n" \
	"N: dri/card%2$d\n" \
	"E: DEVNAME=/dev/dri/card%2$d\n" \
	"E: SUBSYSTEM=drm\n" \
	"E: DEVTYPE=drm_minor\n" \
	"A: dev=226:%2$d\n" \
	"L: device=../../../0000:%1$02x:00.0\n" \
	"\n" \
	"P: /devices/pci0000:00/0000:00:01.0/0000:%1$02x:00.0/drm/renderD%3$d\n" \
	"N: dri/renderD%3$d\n" \
	"E: DEVNAME=/dev/dri/renderD%3$d\n" \
	"E: SUBSYSTEM=drm\n" \
	"E: DEVTYPE=drm_minor\n" \
	"A: dev=226:%3$d\n" \
	"L: device=../../../0000:%1$02x:00.0\n"

/* DRM_IOCTL_VERSION's struct drm_version (drm.h), which xesvm.h does not
 * carry: three strings the caller's buffers receive. */
struct testbed_drm_version {
	int version_major, version_minor, version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};
#define TESTBED_DRM_IOCTL_VERSION _IOWR('d', 0x00, struct testbed_drm_version)
/* Larger than any DEVICE_QUERY reply: a size past it is wrong anyway (the
 * simulator answers EINVAL before it copies) and is not fetched. */
#define TESTBED_MAX_QUERY_SIZE (1u << 20)

/* The buffers the structs of VERSION and DEVICE_QUERY point to, resolved
 * through umockdev: the pointer in `data` then names a copy of the
 * client's buffer, which the simulator reads and writes, and which
 * umockdev writes back to the client when the ioctl completes. The
 * simulator's direct access to the client's pointers is right only for a
 * client in this process; these two ioctls are also issued by forked
 * children (IGT's multigpu-* subtests open their device after fork), whose
 * buffers are in another address space. Other ioctls keep direct access
 * (their callers here are in this process). */
static inline void forward_resolve_nested(UMockdevIoctlData *data, unsigned long request)
{
	size_t offsets[3], lens[3], n = 0;
	if (request == TESTBED_DRM_IOCTL_VERSION && (size_t)data->data_len >= sizeof(struct testbed_drm_version)) {
		const struct testbed_drm_version *v = (const void *)data->data;
		offsets[n] = offsetof(struct testbed_drm_version, name), lens[n++] = v->name_len;
		offsets[n] = offsetof(struct testbed_drm_version, date), lens[n++] = v->date_len;
		offsets[n] = offsetof(struct testbed_drm_version, desc), lens[n++] = v->desc_len;
	} else if (request == XESVM_DRM_IOCTL_XE_DEVICE_QUERY && (size_t)data->data_len >= sizeof(struct xesvm_drm_xe_device_query)) {
		const struct xesvm_drm_xe_device_query *q = (const void *)data->data;
		if (q->size <= TESTBED_MAX_QUERY_SIZE)
			offsets[n] = offsetof(struct xesvm_drm_xe_device_query, data), lens[n++] = q->size;
	}
	for (size_t i = 0; i < n; i++) {
		GError *err = NULL;
		/* NULL for a NULL pointer or a zero length: nothing to fetch. */
		UMockdevIoctlData *child = lens[i] ? umockdev_ioctl_data_resolve(data, offsets[i], lens[i], &err) : NULL;
		g_clear_error(&err);
		if (child)
			g_object_unref(child);
	}
}

enum forward_when { FORWARD_IN, FORWARD_OUT };
typedef void forward_fix(enum forward_when when, unsigned long request, void *arg, int rc);

/* One ioctl umockdev hands over on an emulated Xe node, answered by the
 * simulated driver: the argument struct is copied in, `fix(when, ...)`
 * may rewrite it before (`FORWARD_IN`) and after (`FORWARD_OUT`, with the
 * status), the simulator answers it (it reads and writes the user
 * pointers inside directly: same process), and the struct goes back. */
static inline gboolean forward_ioctl(UMockdevIoctlClient *client, svm_sim *sim, int sim_fd, forward_fix *fix)
{
	unsigned long request = umockdev_ioctl_client_get_request(client);
	size_t size = _IOC_SIZE(request);
	GError *err = NULL;
	UMockdevIoctlData *data = umockdev_ioctl_data_resolve(umockdev_ioctl_client_get_arg(client), 0, size, &err);
	if (!data) {
		g_clear_error(&err);
		umockdev_ioctl_client_complete(client, -1, EFAULT);
		return TRUE;
	}
	forward_resolve_nested(data, request);
	guint8 *copy = g_memdup2(data->data, size);
	if (fix)
		fix(FORWARD_IN, request, copy, 0);
	int rc = svm_sim_ioctl(sim, sim_fd, request, copy);
	if (fix)
		fix(FORWARD_OUT, request, copy, rc);
	umockdev_ioctl_data_update(data, 0, copy, (gint)size);
	g_free(copy);
	umockdev_ioctl_client_complete(client, rc == 0 ? 0 : -1, rc == 0 ? 0 : -rc);
	/* Ours (transfer full); the client's argument keeps its own until the
	 * completion has written it back. */
	g_object_unref(data);
	return TRUE;
}

#endif
