/*
 * The open entry points an LD_PRELOAD fake answers (open, open64, openat, openat64, and the
 * _FORTIFY_SOURCE forms __open_2 ... __openat64_2), each handing its arguments to the fake's own
 *     static int open_common(int dirfd, const char *path, int flags, va_list ap);
 * (dirfd AT_FDCWD for open and open64; ap holds the mode when flags ask for one). On the 64-bit
 * ABIs okvm runs on, open64 is open. Include this once per fake, after open_common.
 */
#ifndef OKVM_PRELOAD_OPEN_H
#define OKVM_PRELOAD_OPEN_H

#include <fcntl.h>
#include <stdarg.h>

#define PRELOAD_OPEN_AT(fn, at)                            \
	int fn(const char *path, int flags, ...)           \
	{                                                  \
		va_list ap;                                \
		va_start(ap, flags);                       \
		int rc = open_common(at, path, flags, ap); \
		va_end(ap);                                \
		return rc;                                 \
	}
#define PRELOAD_OPENAT(fn)                                    \
	int fn(int dirfd, const char *path, int flags, ...)   \
	{                                                     \
		va_list ap;                                   \
		va_start(ap, flags);                          \
		int rc = open_common(dirfd, path, flags, ap); \
		va_end(ap);                                   \
		return rc;                                    \
	}

PRELOAD_OPEN_AT(open, AT_FDCWD)
PRELOAD_OPEN_AT(open64, AT_FDCWD)
PRELOAD_OPENAT(openat)
PRELOAD_OPENAT(openat64)

/* _FORTIFY_SOURCE turns open() with non-constant flags into these */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

int
__open_2(const char *path, int flags)
{
	return open(path, flags);
}

int
__open64_2(const char *path, int flags)
{
	return open(path, flags);
}

int
__openat_2(int dirfd, const char *path, int flags)
{
	return openat(dirfd, path, flags);
}

int
__openat64_2(int dirfd, const char *path, int flags)
{
	return openat(dirfd, path, flags);
}

#endif
