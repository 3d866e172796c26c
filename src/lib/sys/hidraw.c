/*
 * DESIGN: the only file that opens a hidraw node or issues ioctls on it. Feature reports only:
 * the video chips use HID only for vendor registers (hardware.md 3.1). Errors are returned
 * as -errno; EIO/ENODEV/EPIPE pass through unchanged so that the caller can tell a stall (the
 * chip does not have that report: EPIPE) from an unplug (ENODEV).
 * Thread: any; the caller serialises transactions on one fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/hidraw.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/sys/hidraw.h"

int
hidraw_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	return fd >= 0 ? fd : -errno; /* the caller, who knows the unit, names the fix */
}

int
hidraw_set_feature(int fd, const uint8_t *buf, size_t len)
{
	int rc = ioctl(fd, HIDIOCSFEATURE(len), buf);
	return rc < 0 ? -errno : 0;
}

int
hidraw_get_feature(int fd, uint8_t *buf, size_t len)
{
	int rc = ioctl(fd, HIDIOCGFEATURE(len), buf);
	return rc < 0 ? -errno : rc;
}

int
hidraw_get_ids(int fd, uint16_t *vendor, uint16_t *product)
{
	struct hidraw_devinfo info;
	if (ioctl(fd, HIDIOCGRAWINFO, &info) < 0)
		return -errno;
	*vendor = (uint16_t)info.vendor;
	*product = (uint16_t)info.product;
	return 0;
}

void
hidraw_close(int fd)
{
	if (fd >= 0)
		close(fd);
}
