/*
 * DESIGN: the serial port, the only file that read()s and write()s the CH9329's tty.
 *
 * Raw 8N1 without flow control at a standard speed (hardware.md 2.1), non-blocking, exclusive
 * (TIOCEXCL, so a second okvm or a stray `cat` cannot interleave bytes). Linux raises DTR and
 * RTS on open; on a Mini-KVM v1.9 DTR asserted cuts the switchable USB port's ground and RTS
 * held > 3 s factory-resets the CH9329 (hardware.md 2.11), so on a CH340 port (ch341 driver,
 * ttyUSB) both are deasserted right after TIOCEXCL, before the termios calls (USB control
 * transfers), so the port's ground is cut as briefly as possible. A CDC-ACM port (cdc_acm,
 * ttyACM: a KVM-Go's CH32V208) keeps its lines as Linux set them: many CDC-ACM firmwares stop
 * sending while DTR is low (the official app clears DTR on CH9329 units only, QT PR 649).
 *
 * A pseudo-terminal has no modem lines (TIOCMBIS fails with ENOTTY). The virtual unit listens on
 * a Unix datagram socket instead (docs/contracts.md section 1): PATH.modem next to the tty, or a
 * path given with okvm_serial_set_modem_socket(). One datagram per line change.
 *
 * Owner: the thread that dispatches the link. Errors are negative errno; open failures are
 * logged here because only this file knows the fix (group, udev rule, who holds the port).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <linux/serial.h> /* struct serial_icounter_struct (TIOCGICOUNT) */

#include "okvm/log.h"
#include "okvm/serial.h"
#include "lib/xalloc.h"

struct okvm_serial {
	int fd;
	int baud;
	char *path;
	char *modem_path; /* datagram socket of a virtual unit, or NULL */
	int modem_fd;     /* autobound datagram socket (sends lines, hears CTS), or -1 */
	bool cdc_acm;     /* a CDC-ACM port: the modem lines are left alone */
	/* CTS over the modem socket (the virtual unit's DATAFLIP): asked for once with "WATCH" */
	bool cts_watch, cts_known, cts_level;
	uint64_t cts_count;
};

bool serial_is_cdc_acm(const struct okvm_serial *s); /* lib/hid/link-private.h */

static const struct {
	int baud;
	speed_t speed;
} speeds[] = {
	{ 1200, B1200 },   { 2400, B2400 },   { 4800, B4800 },   { 9600, B9600 },
	{ 19200, B19200 }, { 38400, B38400 }, { 57600, B57600 }, { 115200, B115200 },
};

static speed_t
speed_of(int baud)
{
	for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++)
		if (speeds[i].baud == baud)
			return speeds[i].speed;
	return B0;
}

bool
okvm_serial_baud_valid(int baud)
{
	return speed_of(baud) != B0;
}

static int
configure(int fd, int baud)
{
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return -errno;
	cfmakeraw(&t);
	t.c_cflag &= ~(CSTOPB | PARENB | CRTSCTS | CSIZE);
	t.c_cflag |= CS8 | CLOCAL | CREAD;
	t.c_iflag &= ~(IXON | IXOFF | IXANY);
	t.c_cc[VMIN] = 1; /* with O_NONBLOCK: EAGAIN when empty, so 0 really is EOF */
	t.c_cc[VTIME] = 0;
	cfsetispeed(&t, speed_of(baud));
	cfsetospeed(&t, speed_of(baud));
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return -errno;
	tcflush(fd, TCIOFLUSH);
	return 0;
}

static void
explain_eacces(const char *path)
{
	struct stat st;
	const char *group = "dialout";
	char buf[64];
	if (stat(path, &st) == 0) {
		struct group *gr = getgrgid(st.st_gid);
		if (gr && gr->gr_name) {
			snprintf(buf, sizeof(buf), "%s", gr->gr_name);
			group = buf;
		}
	}
	okvm_log(
		OKVM_LOG_ERROR,
		"%s: permission denied; join its group with `sudo usermod -aG %s $USER` and log in "
		"again, or install okvm's udev rules (dist/60-okvm.rules)",
		path, group);
}

static void
explain_open_error(const char *path, int err)
{
	switch (err) {
	case ENOENT:
	case ENXIO:
		okvm_log(OKVM_LOG_ERROR,
			 "%s: no such port; is the unit plugged in? see `okvm list`", path);
		break;
	case EACCES:
	case EPERM: explain_eacces(path); break;
	case EBUSY:
		okvm_log(OKVM_LOG_ERROR,
			 "%s: busy: another program holds it (brltty, ModemManager, the official "
			 "Openterface app or another okvm); close it and retry",
			 path);
		break;
	case ENOTTY: okvm_log(OKVM_LOG_ERROR, "%s: not a serial port", path); break;
	default: okvm_log(OKVM_LOG_ERROR, "%s: %s", path, strerror(err));
	}
}

static int
open_tty(const char *path, int *out)
{
	int fd = open(path, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!isatty(fd)) {
		close(fd);
		return -ENOTTY;
	}
	if (ioctl(fd, TIOCEXCL) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* TIOCEXCL does not keep root out (CAP_SYS_ADMIN passes it): an advisory lock keeps a
	 * second okvm (say `okvm key` beside `okvm serve`, both as root) from interleaving frames. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		close(fd);
		return -EBUSY;
	}
	*out = fd;
	return 0;
}

static void
modem_path_default(struct okvm_serial *s)
{
	char buf[4096];
	struct stat st;
	int n = snprintf(buf, sizeof(buf), "%s.modem", s->path);
	if (n > 0 && (size_t)n < sizeof(buf) && stat(buf, &st) == 0 && S_ISSOCK(st.st_mode))
		s->modem_path = strdup(buf);
}

static bool
has_prefix(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* The tty's driver from sysfs (OKVM_SYSFS_ROOT, else /sys): cdc_acm, or a ttyACM name when sysfs
 * has no entry (the path given or where it leads, e.g. a symlink in /dev/serial/by-id). */
static bool
is_cdc_acm(const char *path)
{
	char real[4096], link[4096], drv[4096];
	const char *root = getenv("OKVM_SYSFS_ROOT");
	const char *given = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	const char *name = given;
	if (realpath(path, real))
		name = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
	int n = snprintf(link, sizeof(link), "%s/class/tty/%s/device/driver",
			 root && *root ? root : "/sys", name);
	ssize_t k = n > 0 && (size_t)n < sizeof(link) ? readlink(link, drv, sizeof(drv) - 1) : -1;
	if (k > 0) {
		drv[k] = 0;
		const char *d = strrchr(drv, '/') ? strrchr(drv, '/') + 1 : drv;
		return !strcmp(d, "cdc_acm");
	}
	return has_prefix(name, "ttyACM") || has_prefix(given, "ttyACM");
}

bool
serial_is_cdc_acm(const struct okvm_serial *s)
{
	return s->cdc_acm;
}

/* Right after open: what Linux raised, lowered (CH340 ports only; see DESIGN). */
static void
lower_lines(struct okvm_serial *s)
{
	if (s->cdc_acm)
		return;
	okvm_serial_set_dtr(s, false);
	okvm_serial_set_rts(s, false);
}

int
okvm_serial_open(const char *path, int baud, struct okvm_serial **out)
{
	if (!okvm_serial_baud_valid(baud)) {
		okvm_log(OKVM_LOG_ERROR, "%s: unsupported baud %d (1200..115200)", path, baud);
		return -EINVAL;
	}
	int fd = -1;
	int rc = open_tty(path, &fd);
	if (rc < 0) {
		explain_open_error(path, -rc);
		return rc;
	}
	struct okvm_serial *s = xcalloc(1, sizeof(*s));
	s->path = xstrdup(path);
	s->fd = fd;
	s->baud = baud;
	s->modem_fd = -1;
	s->cdc_acm = is_cdc_acm(path);
	modem_path_default(s);
	/* before the termios calls: the switchable port's ground is cut till then */
	lower_lines(s);
	rc = configure(fd, baud);
	if (rc < 0) {
		explain_open_error(path, -rc);
		okvm_serial_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

int
okvm_serial_fd(const struct okvm_serial *s)
{
	return s->fd;
}

const char *
okvm_serial_path(const struct okvm_serial *s)
{
	return s->path;
}

int
okvm_serial_set_baud(struct okvm_serial *s, int baud)
{
	if (!okvm_serial_baud_valid(baud))
		return -EINVAL;
	int rc = configure(s->fd, baud);
	if (rc == 0)
		s->baud = baud;
	return rc;
}

int
okvm_serial_baud(const struct okvm_serial *s)
{
	return s->baud;
}

void
okvm_serial_flush(struct okvm_serial *s)
{
	tcflush(s->fd, TCIOFLUSH);
}

static bool
is_unplug(int err)
{
	return err == EIO || err == ENODEV || err == ENXIO || err == EPIPE;
}

ssize_t
okvm_serial_write(struct okvm_serial *s, const uint8_t *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(s->fd, p + done, n - done);
		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			return is_unplug(errno) ? -ENODEV : -errno;
		struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
		int r = poll(&pfd, 1, 1000);
		if (r == 0)
			return -ETIMEDOUT;
		if (r > 0 && (pfd.revents & (POLLERR | POLLHUP)) && !(pfd.revents & POLLOUT))
			return -ENODEV;
	}
	return (ssize_t)n;
}

ssize_t
okvm_serial_read(struct okvm_serial *s, uint8_t *p, size_t n)
{
	for (;;) {
		ssize_t r = read(s->fd, p, n);
		if (r > 0)
			return r;
		if (r == 0)
			return -ENODEV; /* EOF: the pty master closed, or the device went away */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		return is_unplug(errno) ? -ENODEV : -errno;
	}
}

/* The socket to the virtual unit, bound to an abstract name of its own (autobind) so that the
 * unit can answer: it sends the CTS line back ("CTS=1", "CTS=0") once asked with "WATCH". */
static int
modem_socket(struct okvm_serial *s)
{
	if (s->modem_fd >= 0)
		return 0;
	s->modem_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->modem_fd < 0)
		return -errno;
	struct sockaddr_un me = { .sun_family = AF_UNIX };
	if (bind(s->modem_fd, (struct sockaddr *)&me, sizeof(sa_family_t)) < 0) {
		int e = errno;
		close(s->modem_fd);
		s->modem_fd = -1;
		return -e;
	}
	return 0;
}

static int
modem_send_text(struct okvm_serial *s, const char *msg)
{
	if (!s->modem_path)
		return -ENOTTY;
	int rc = modem_socket(s);
	if (rc < 0)
		return rc;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(s->modem_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, s->modem_path, strlen(s->modem_path) + 1);
	if (sendto(s->modem_fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		okvm_log(OKVM_LOG_WARN, "%s: modem socket %s: %s", s->path, s->modem_path,
			 strerror(e));
		return -e;
	}
	return 0;
}

static int
modem_send(struct okvm_serial *s, const char *line, bool asserted)
{
	char msg[8];
	snprintf(msg, sizeof(msg), "%s=%d", line, asserted ? 1 : 0);
	return modem_send_text(s, msg);
}

int
okvm_serial_cts_count(struct okvm_serial *s, uint64_t *count)
{
	struct serial_icounter_struct ic;
	if (ioctl(s->fd, TIOCGICOUNT, &ic) == 0) {
		*count = (uint32_t)ic.cts; /* the driver counts every change of the line */
		return 0;
	}
	if (errno != ENOTTY && errno != EINVAL)
		return is_unplug(errno) ? -ENODEV : -errno;
	if (!s->modem_path)
		return -ENOTSUP;
	if (!s->cts_watch) {
		int rc = modem_send_text(s, "WATCH");
		if (rc < 0)
			return rc;
		s->cts_watch = true;
	}
	char msg[16];
	ssize_t n;
	while ((n = recv(s->modem_fd, msg, sizeof(msg) - 1, 0)) > 0) {
		msg[n] = 0;
		if (strcmp(msg, "CTS=0") && strcmp(msg, "CTS=1"))
			continue;
		bool level = msg[4] == '1';
		if (s->cts_known && level != s->cts_level)
			s->cts_count++;
		s->cts_known = true; /* the first answer to WATCH is the line as it is */
		s->cts_level = level;
	}
	*count = s->cts_count;
	return 0;
}

int
okvm_serial_cts_fd(const struct okvm_serial *s)
{
	return s->cts_watch ? s->modem_fd : -1;
}

static int
set_line(struct okvm_serial *s, int bit, const char *name, bool asserted)
{
	int bits = bit;
	if (ioctl(s->fd, asserted ? TIOCMBIS : TIOCMBIC, &bits) == 0)
		return 0;
	if (errno != ENOTTY && errno != EINVAL)
		return is_unplug(errno) ? -ENODEV : -errno;
	return modem_send(s, name, asserted);
}

int
okvm_serial_set_dtr(struct okvm_serial *s, bool asserted)
{
	return set_line(s, TIOCM_DTR, "DTR", asserted);
}

int
okvm_serial_set_rts(struct okvm_serial *s, bool asserted)
{
	return set_line(s, TIOCM_RTS, "RTS", asserted);
}

int
okvm_serial_get_lines(struct okvm_serial *s, int *bits)
{
	if (ioctl(s->fd, TIOCMGET, bits) == 0)
		return 0;
	if (errno == ENOTTY || errno == EINVAL)
		return -ENOTTY;
	return is_unplug(errno) ? -ENODEV : -errno;
}

int
okvm_serial_send_break(struct okvm_serial *s)
{
	if (tcsendbreak(s->fd, 0) == 0)
		return 0;
	return is_unplug(errno) ? -ENODEV : -errno;
}

int
okvm_serial_set_modem_socket(struct okvm_serial *s, const char *path)
{
	free(s->modem_path);
	s->modem_path = NULL;
	if (!path)
		return 0;
	s->modem_path = xstrdup(path);
	if (s->cdc_acm)
		return 0; /* lines left as they are (see DESIGN) */
	int rc = okvm_serial_set_dtr(s, false);
	int rc2 = okvm_serial_set_rts(s, false);
	return rc ? rc : rc2;
}

void
okvm_serial_close(struct okvm_serial *s)
{
	if (!s)
		return;
	close(s->fd);
	if (s->modem_fd >= 0)
		close(s->modem_fd);
	free(s->modem_path);
	free(s->path);
	free(s);
}
