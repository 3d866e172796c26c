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
 *
 * For other programs (hidapi and the like) it answers as the hidraw driver does: the request is
 * looked at as 32 bits (the kernel ABI's unsigned int, so an int request sign-extended to 64
 * bits is the same ioctl), HIDIOCGRDESCSIZE/HIDIOCGRDESC give a vendor-page descriptor with one
 * feature report of the model's id and length, HIDIOCGRAWINFO gives BUS_USB and the ID
 * (OKVM_FAKE_HIDRAW_ID=VVVV:PPPP, default 534d:2109), HIDIOCGRAWNAME/PHYS/UNIQ(len) copy at most
 * len bytes and return the count, and any other request is ENOTTY. The placeholder fd is an
 * eventfd that never becomes readable (the chip sends no input reports); write() fails with
 * EPIPE (no output report).
 *
 * With OKVM_FAKE_HIDRAW_ID=16c0:05df it plays a USB HID relay board (the V-USB boards PiKVM's
 * hidrelay drives; okvm's hidrelay power backend) instead of the chip: feature report 0 of 8
 * bytes, no report ids. SET_FEATURE { 0, 0xFF|0xFD, channel 1..8, ... } closes or opens a
 * channel, { 0, 0xFE|0xFC, ... } all of them (anything else: EPIPE, as the board stalls);
 * GET_FEATURE answers { 0, "OKVM1" (its serial), 0, 0, state } (bit n-1 = channel n closed).
 * The state is the line "relays XX" (hex) of <node>.state; the log lines carry " t=MS" (the
 * CLOCK_MONOTONIC milliseconds of the report), so a test can measure how long a relay was held.
 *
 * Other paths and fds go to the real libc functions.
 */
/* Define open and open64 both: undo Meson's 64-bit redirection for this file. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/hidraw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emu/ms2109-emu.h"

#define MAX_FAKES 8

#define RELAY_VID 0x16c0
#define RELAY_PID 0x05df
#define RELAY_LEN 9 /* report 0 + 8 bytes */

struct fake {
	int fd;
	char name[32];
	struct ms2109_emu emu;
	bool relay;          /* a USB HID relay board, not the chip */
	uint8_t relay_state; /* bit n-1: channel n closed */
};

static void
fake_id(unsigned *vid, unsigned *pid)
{
	*vid = 0x534d;
	*pid = 0x2109;
	const char *id = getenv("OKVM_FAKE_HIDRAW_ID");
	if (id)
		sscanf(id, "%x:%x", vid, pid);
}

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
	unsigned vid, pid, st;
	fake_id(&vid, &pid);
	f->relay = vid == RELAY_VID && pid == RELAY_PID;
	f->relay_state = 0;
	file_path(f, "state", path, sizeof(path));
	FILE *in = fopen(path, "re");
	while (in && fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\r\n")] = 0;
		if (f->relay) {
			if (sscanf(line, "relays %x", &st) == 1)
				f->relay_state = (uint8_t)st;
			continue;
		}
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
	size_t n = f->relay ? (size_t)snprintf(text, sizeof(text), "relays %02x\n", f->relay_state)
			    : ms2109_emu_dump(&f->emu, text, sizeof(text));
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
	if (f->relay) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		fprintf(out, " t=%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	}
	fputc('\n', out);
	fclose(out);
}

static int
open_fake(const char *path, int flags)
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
		f->fd = eventfd(0, EFD_CLOEXEC | ((flags & O_NONBLOCK) ? EFD_NONBLOCK : 0));
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

static int
open_common(int dirfd, const char *path, int flags, va_list ap)
{
	mode_t mode = mode_arg(flags, ap);
	if (fake_dir(path))
		return open_fake(path, flags);
	if (dirfd == AT_FDCWD)
		return ((open_fn)real("open"))(path, flags, mode);
	return ((openat_fn)real("openat"))(dirfd, path, flags, mode);
}

#include "preload-open.h" /* open, open64, openat, openat64 */

/* A vendor-defined collection with one feature report of the chip's id and length. */
static size_t
descriptor(const struct fake *f, uint8_t *d)
{
	size_t n = 0;
	const uint8_t head[] = { 0x06, 0x00, 0xff, /* Usage Page (Vendor 0xFF00) */
				 0x09, 0x01,       /* Usage (1) */
				 0xa1, 0x01 };     /* Collection (Application) */
	memcpy(d, head, sizeof(head));
	n = sizeof(head);
	if (f->emu.report_id && !f->relay) {
		d[n++] = 0x85; /* Report ID */
		d[n++] = f->emu.report_id;
	}
	const uint8_t body[] = { 0x15, 0x00,       /* Logical Minimum (0) */
				 0x26, 0xff, 0x00, /* Logical Maximum (255) */
				 0x75, 0x08,       /* Report Size (8) */
				 0x95, (uint8_t)(f->relay ? RELAY_LEN - 1 : f->emu.report_len - 1),
				 /* Report Count */
				 0x09, 0x01, /* Usage (1) */
				 0xb1, 0x02, /* Feature (Data, Var, Abs) */
				 0xc0 };     /* End Collection */
	memcpy(d + n, body, sizeof(body));
	return n + sizeof(body);
}

static int
copy_string(const char *s, void *out, size_t max)
{
	size_t len = strlen(s) + 1;
	if (len > max)
		len = max;
	memcpy(out, s, len);
	return (int)len;
}

/* The relay board's feature report 0 (see the top). Returns bytes, or -errno. */
static int
relay_feature(struct fake *f, bool set, uint8_t *buf, size_t len)
{
	if (set) {
		log_report(f, "set", buf, len);
		load(f);
		uint8_t cmd = len >= 3 ? buf[1] : 0, ch = len >= 3 ? buf[2] : 0;
		if (len < 3 || buf[0] != 0)
			return -EPIPE;
		if ((cmd == 0xFF || cmd == 0xFD) && ch >= 1 && ch <= 8)
			f->relay_state = cmd == 0xFF ? f->relay_state | (uint8_t)(1u << (ch - 1))
						     : f->relay_state & (uint8_t) ~(1u << (ch - 1));
		else if (cmd == 0xFE || cmd == 0xFC)
			f->relay_state = cmd == 0xFE ? 0xFF : 0;
		else
			return -EPIPE;
		save(f);
		return (int)len;
	}
	if (len < 1 || buf[0] != 0)
		return -EPIPE;
	uint8_t r[RELAY_LEN] = { 0, 'O', 'K', 'V', 'M', '1', 0, 0, f->relay_state };
	size_t n = len < RELAY_LEN ? len : RELAY_LEN;
	memcpy(buf, r, n);
	log_report(f, "get", buf, n);
	return (int)n;
}

static int
feature(struct fake *f, unsigned int req, uint8_t *buf)
{
	size_t len = _IOC_SIZE(req);
	unsigned vid, pid;
	fake_id(&vid, &pid);
	int rc;
	if (req == HIDIOCGRDESCSIZE) {
		uint8_t d[64];
		*(int *)buf = (int)descriptor(f, d);
		return 0;
	} else if (req == HIDIOCGRDESC) {
		struct hidraw_report_descriptor *rd = (void *)buf;
		uint8_t d[64];
		size_t n = descriptor(f, d);
		if (rd->size > HID_MAX_DESCRIPTOR_SIZE - 1) {
			errno = EINVAL;
			return -1;
		}
		memcpy(rd->value, d, rd->size < n ? rd->size : n);
		return 0;
	} else if (req == HIDIOCGRAWINFO) {
		struct hidraw_devinfo *info = (void *)buf;
		info->bustype = 3; /* BUS_USB */
		info->vendor = (__s16)vid;
		info->product = (__s16)pid;
		return 0;
	} else if (_IOC_DIR(req) == _IOC_READ && _IOC_NR(req) == _IOC_NR(HIDIOCGRAWNAME(0))) {
		return copy_string(vid == 0x534d ? "MACROSILICON Openterface"
				   : f->relay    ? "www.dcttech.com USBRelay2"
						 : "USB Video",
				   buf, len);
	} else if (_IOC_DIR(req) == _IOC_READ && _IOC_NR(req) == _IOC_NR(HIDIOCGRAWPHYS(0))) {
		return copy_string("usb-0000:00:14.0-3.1/input4", buf, len);
	} else if (_IOC_DIR(req) == _IOC_READ && _IOC_NR(req) == _IOC_NR(HIDIOCGRAWUNIQ(0))) {
		return copy_string("", buf, len);
	}
	if (_IOC_DIR(req) != (_IOC_READ | _IOC_WRITE)) {
		rc = -ENOTTY;
	} else if (f->relay) {
		rc = relay_feature(f, _IOC_NR(req) == _IOC_NR(HIDIOCSFEATURE(0)), buf, len);
	} else if (_IOC_NR(req) == _IOC_NR(HIDIOCSFEATURE(0))) {
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
	if (f && _IOC_TYPE((unsigned int)req) == 'H')
		return feature(f, (unsigned int)req, arg);
	if (f) {
		errno = ENOTTY;
		return -1;
	}
	return real_ioctl(fd, req, arg);
}

typedef ssize_t (*write_fn)(int, const void *, size_t);

ssize_t
write(int fd, const void *buf, size_t len)
{
	if (find(fd)) {
		errno = EPIPE; /* no output report: the chip stalls the SET_REPORT */
		return -1;
	}
	return ((write_fn)real("write"))(fd, buf, len);
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
