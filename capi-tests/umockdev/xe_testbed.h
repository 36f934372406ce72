/*
 * What the umockdev tests (test_kernel_path.c, igt_shim.c) share: the
 * record of an emulated Xe device, and the forwarding of its ioctls.
 */
#ifndef XESVM_UMOCKDEV_XE_TESTBED_H
#define XESVM_UMOCKDEV_XE_TESTBED_H

#include <errno.h>
#include <sys/ioctl.h>
#include <umockdev.h>
#include <xesvm.h>

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
	guint8 *copy = g_memdup2(data->data, size);
	if (fix)
		fix(FORWARD_IN, request, copy, 0);
	int rc = svm_sim_ioctl(sim, sim_fd, request, copy);
	if (fix)
		fix(FORWARD_OUT, request, copy, rc);
	umockdev_ioctl_data_update(data, 0, copy, (gint)size);
	g_free(copy);
	umockdev_ioctl_client_complete(client, rc == 0 ? 0 : -1, rc == 0 ? 0 : -rc);
	return TRUE;
}

#endif
