/* Internal: the only door to V4L2 devices (open, ioctl, mmap, poll). */
#ifndef OKVM_LIB_SYS_V4L2_H
#define OKVM_LIB_SYS_V4L2_H

#include <stddef.h>
#include <sys/types.h>

/** open(O_RDWR | O_NONBLOCK | O_CLOEXEC). fd or -errno. */
int sys_v4l2_open(const char *path);
/** ioctl, retried on EINTR. 0 or -errno. */
int sys_v4l2_ioctl(int fd, unsigned long req, void *arg);
/** Map a buffer. NULL with errno set on failure. */
void *sys_v4l2_mmap(int fd, size_t len, off_t offset);
void sys_v4l2_munmap(void *p, size_t len);
void sys_v4l2_close(int fd);
/**
 * Wait until fd has a buffer ready or wake_fd is readable.
 * @return 1 ready, 0 timeout, -EINTR woken (or a signal), -ENODEV (POLLERR/POLLHUP: gone).
 */
int sys_v4l2_wait(int fd, int wake_fd, int timeout_ms);

#endif
