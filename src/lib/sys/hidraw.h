/* The syscall edge for hidraw (private to libokvm). */
#ifndef OKVM_SYS_HIDRAW_H
#define OKVM_SYS_HIDRAW_H

#include <stddef.h>
#include <stdint.h>

/** open(O_RDWR|O_CLOEXEC). @return fd, or -errno (-EACCES: no udev rule / group). */
int hidraw_open(const char *path);
/** HIDIOCSFEATURE. @return 0 or -errno (-ENODEV when unplugged). */
int hidraw_set_feature(int fd, const uint8_t *buf, size_t len);
/** HIDIOCGFEATURE. @return bytes read or -errno. */
int hidraw_get_feature(int fd, uint8_t *buf, size_t len);
/** HIDIOCGRAWINFO: the device's USB vendor and product. @return 0 or -errno. */
int hidraw_get_ids(int fd, uint16_t *vendor, uint16_t *product);
void hidraw_close(int fd);

#endif
