/*
 * DESIGN: the only file that opens, ioctls, maps and polls a V4L2 device, so that what the
 * kernel is asked is in one place (and the LD_PRELOAD fake in tests/fakes/ sees exactly these
 * calls). No policy here: errors go back as -errno and video/v4l2.c decides.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/sys/v4l2.h"

int
sys_v4l2_open(const char *path)
{
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int
sys_v4l2_ioctl(int fd, unsigned long req, void *arg)
{
	int r;
	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

void *
sys_v4l2_mmap(int fd, size_t len, off_t offset)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
	return p == MAP_FAILED ? NULL : p;
}

void
sys_v4l2_munmap(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

void
sys_v4l2_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

int
sys_v4l2_wait(int fd, int wake_fd, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
			       { .fd = wake_fd, .events = POLLIN } };
	int r = poll(p, 2, timeout_ms);
	if (r < 0)
		return errno == EINTR ? -EINTR : -errno;
	if (r == 0)
		return 0;
	if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
		return -ENODEV;
	if (p[1].revents)
		return -EINTR;
	return 1;
}
