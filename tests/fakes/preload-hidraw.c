/*
 * DESIGN: an LD_PRELOAD fake for /dev/hidraw* (this machine has no uhid). open() of a path
 * starting with /dev/hidraw returns a placeholder fd (a memfd) when OKVM_FAKE_HIDRAW_DIR is set;
 * HIDIOCSFEATURE/HIDIOCGFEATURE on it are answered by the register model of src/emu/ms2109-emu.c,
 * i.e. the same bytes an in-process virtual unit answers with.
 *
 * State lives in $OKVM_FAKE_HIDRAW_DIR/<node>.state (ms2109_emu_apply lines): read at open()
 * and before every SET_FEATURE, rewritten after it, so one okvm process sees what an earlier one wrote and a
 * test can script the signal, the mode and the toggle by writing the file before a command.
 * Every feature report is appended to <node>.log as "set|get XX XX ..." for byte-exact checks.
 * <node>.deny makes open() fail with EACCES (a node without the udev rule).
 * Other paths and fds go to the real libc functions.
 */
/* Define open and open64 both: undo Meson's 64-bit redirection for this file. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/hidraw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu/ms2109-emu.h"

#define MAX_FAKES 8

struct fake {
	int fd;
	char name[32];
	struct ms2109_emu emu;
};

static struct fake *fakes[MAX_FAKES];

static const char *
fake_dir(const char *path)
{
	const char *dir = getenv("OKVM_FAKE_HIDRAW_DIR");
	return dir && !strncmp(path, "/dev/hidraw", 11) ? dir : NULL;
}

static void
file_path(const struct fake *f, const char *ext, char *out, size_t size)
{
	snprintf(out, size, "%s/%s.%s", getenv("OKVM_FAKE_HIDRAW_DIR"), f->name, ext);
}

static void
load(struct fake *f)
{
	char path[4096], line[256];
	ms2109_emu_init(&f->emu, NULL);
	file_path(f, "state", path, sizeof(path));
	FILE *in = fopen(path, "re");
	while (in && fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\r\n")] = 0;
		if (line[0] && line[0] != '#' && ms2109_emu_apply(&f->emu, line) < 0)
			fprintf(stderr, "preload-hidraw: bad state line '%s'\n", line);
	}
	if (in)
		fclose(in);
}

static void
save(struct fake *f)
{
	static char text[1 << 20];
	char path[4096], tmp[4200];
	size_t n = ms2109_emu_dump(&f->emu, text, sizeof(text));
	file_path(f, "state", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *out = fopen(tmp, "we");
	if (!out)
		return;
	fwrite(text, 1, n, out);
	fclose(out);
	rename(tmp, path);
}

static void
log_report(struct fake *f, const char *what, const uint8_t *buf, size_t len)
{
	char path[4096];
	file_path(f, "log", path, sizeof(path));
	FILE *out = fopen(path, "ae");
	if (!out)
		return;
	fputs(what, out);
	for (size_t i = 0; i < len; i++)
		fprintf(out, " %02x", buf[i]);
	fputc('\n', out);
	fclose(out);
}

static int
open_fake(const char *path)
{
	char deny[4096];
	const char *name = strrchr(path, '/') + 1;
	snprintf(deny, sizeof(deny), "%s/%s.deny", getenv("OKVM_FAKE_HIDRAW_DIR"), name);
	if (access(deny, F_OK) == 0) {
		errno = EACCES;
		return -1;
	}
	for (int i = 0; i < MAX_FAKES; i++) {
		if (fakes[i])
			continue;
		struct fake *f = calloc(1, sizeof(*f));
		if (!f)
			break;
		snprintf(f->name, sizeof(f->name), "%s", name);
		f->fd = memfd_create("fake-hidraw", MFD_CLOEXEC);
		load(f);
		fakes[i] = f;
		return f->fd;
	}
	errno = EMFILE;
	return -1;
}

static struct fake *
find(int fd)
{
	for (int i = 0; i < MAX_FAKES; i++)
		if (fakes[i] && fakes[i]->fd == fd)
			return fakes[i];
	return NULL;
}

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef int (*close_fn)(int);

static void *
real(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);
int openat(int dirfd, const char *path, int flags, ...);
int openat64(int dirfd, const char *path, int flags, ...);

static mode_t
mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

int
open(const char *path, int flags, ...)
{
	open_fn real_open = (open_fn)real("open");
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return fake_dir(path) ? open_fake(path) : real_open(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	open_fn real_open64 = (open_fn)real("open64");
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return fake_dir(path) ? open_fake(path) : real_open64(path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	openat_fn real_openat = (openat_fn)real("openat");
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return fake_dir(path) ? open_fake(path) : real_openat(dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	openat_fn real_openat64 = (openat_fn)real("openat64");
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return fake_dir(path) ? open_fake(path) : real_openat64(dirfd, path, flags, mode);
}

static int
feature(struct fake *f, unsigned long req, uint8_t *buf)
{
	size_t len = _IOC_SIZE(req);
	int rc;
	if (_IOC_NR(req) == _IOC_NR(HIDIOCSFEATURE(0))) {
		log_report(f, "set", buf, len);
		load(f); /* another process (or the test) may have changed the state */
		rc = ms2109_emu_feature_set(&f->emu, buf, len);
		if (rc == 0) {
			save(f);
			rc = (int)len;
		}
	} else if (_IOC_NR(req) == _IOC_NR(HIDIOCGFEATURE(0))) {
		rc = ms2109_emu_feature_get(&f->emu, buf, len);
		if (rc >= 0)
			log_report(f, "get", buf, (size_t)rc);
	} else {
		rc = -ENOTTY;
	}
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return rc;
}

int
ioctl(int fd, unsigned long req, ...)
{
	ioctl_fn real_ioctl = (ioctl_fn)real("ioctl");
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	struct fake *f = find(fd);
	if (f && _IOC_TYPE(req) == 'H')
		return feature(f, req, arg);
	return real_ioctl(fd, req, arg);
}

int
close(int fd)
{
	close_fn real_close = (close_fn)real("close");
	for (int i = 0; i < MAX_FAKES; i++) {
		if (fakes[i] && fakes[i]->fd == fd) {
			free(fakes[i]);
			fakes[i] = NULL;
		}
	}
	return real_close(fd);
}
