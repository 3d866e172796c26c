/*
 * DESIGN: the virtual unit's lifecycle and its thread ("okvm-emu").
 *
 * emu_start() creates a pty pair (raw, at the chip's baud), keeps one fd of the slave open itself
 * so the master never reports a hang-up while the host has the port closed, links the slave at
 * link_path, binds the modem datagram socket (contracts section 1) and starts the thread. The
 * thread owns every fd and all chip and target state; it sleeps in ppoll() on the master, the
 * modem socket and an eventfd (stop and requests from other threads) until the next thing is due
 * in wire or poll time (ch9329-emu.c, target.c). Other threads only set requests under the lock.
 * emu_stop() wakes and joins the thread, then closes the master: the host's slave fd then reads
 * EOF/EIO, which is how a real unplug looks. Start/stop may repeat; each start is a fresh chip at
 * power-up and a fresh target.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "emu/emu-internal.h"
#include "okvm/log.h"
#include "okvm/models.h"
#include "lib/xalloc.h"
#include "lib/thread.h"

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}


void
emu_config_init(struct emu_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->baud = EMU_DEFAULT_BAUD;
	cfg->poll_ms = EMU_DEFAULT_POLL_MS;
	cfg->layout = "us";
	cfg->target_connected = true;
	cfg->version = EMU_DEFAULT_VERSION;
}

const char emu_chip_names[] =
	"ch9329, ch9329f, ch32v208, ch32v208-quiet, ch32v208-d7 or ch32v208-d3";

int
emu_config_chip(struct emu_config *cfg, const char *name)
{
	uint8_t at = !strcmp(name, "ch32v208-d7") ? 7 : !strcmp(name, "ch32v208-d3") ? 3 : 0;
	bool v208 = !strcmp(name, "ch32v208") || !strcmp(name, "ch32v208-quiet") || at;
	if (!v208 && strcmp(name, "ch9329") && strcmp(name, "ch9329f"))
		return -EINVAL;
	cfg->chip = v208 ? EMU_CHIP_CH32V208 : EMU_CHIP_CH9329;
	/* a CH32V208 answers with 0x82..0x84 (hardware.md 2.4) and always runs at 115200 (2.1) */
	cfg->version = v208 ? EMU_CH32V208_VERSION : EMU_DEFAULT_VERSION;
	if (v208)
		cfg->baud = 115200;
	cfg->params_len = !strcmp(name, "ch9329f") ? EMU_CH9329F_PARAMS_LEN : 0;
	cfg->no_info = !strcmp(name, "ch32v208-quiet");
	cfg->info_version_at = at;
	return 0;
}

struct emu *
emu_new(const struct emu_config *cfg)
{
	struct emu *e = xcalloc(1, sizeof(*e));
	e->link_path = xstrdup_or_null(cfg->link_path);
	e->layout = xstrdup_or_null(cfg->layout ? cfg->layout : "us");
	e->events_path = xstrdup_or_null(cfg->events_path);
	e->cfg_baud = cfg->baud > 0 ? cfg->baud : EMU_DEFAULT_BAUD;
	e->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : EMU_DEFAULT_POLL_MS;
	e->cfg_connected = cfg->target_connected;
	e->chip_type = cfg->chip;
	e->version = cfg->version ? cfg->version : EMU_DEFAULT_VERSION;
	e->params_len = cfg->params_len >= OKVM_CH9329_PARAMS_LEN ? cfg->params_len
								  : OKVM_CH9329_PARAMS_LEN;
	e->no_info = cfg->no_info;
	e->info_version_at = cfg->info_version_at;
	e->strict_gap = cfg->strict_gap;
	e->dataflip = cfg->dataflip ? cfg->dataflip > 0 : cfg->chip == EMU_CHIP_CH9329;
	e->cfg_pins = cfg->pins_adapter;
	e->cfg_power_on = !cfg->target_off;
	e->master = e->slave_hold = e->modem = e->wake = e->events_fd = -1;
	pthread_mutex_init(&e->lock, NULL);
	return e;
}

void
emu_add_listener(struct emu *e, emu_listener fn, void *ud)
{
	if (e->n_listeners == EMU_MAX_LISTENERS) {
		okvm_log(OKVM_LOG_ERROR, "emu: more than %d listeners", EMU_MAX_LISTENERS);
		return;
	}
	e->listeners[e->n_listeners++] = (struct emu_listener_entry){ fn, ud };
}

static speed_t
speed_of(int baud)
{
	switch (baud) {
	case 1200: return B1200;
	case 2400: return B2400;
	case 4800: return B4800;
	case 19200: return B19200;
	case 38400: return B38400;
	case 57600: return B57600;
	case 115200: return B115200;
	default: return B9600;
	}
}

/* The speed the host set on its end of the pty (the master sees the slave's termios). */
static int
host_baud(struct emu *e)
{
	const struct okvm_hid_chip *c = okvm_hid_chip_get(OKVM_HID_CH9329);
	struct termios t;
	if (tcgetattr(e->master, &t) < 0)
		return 0;
	speed_t sp = cfgetospeed(&t);
	for (size_t i = 0; i < c->n_bauds; i++)
		if (speed_of(c->bauds[i]) == sp)
			return c->bauds[i];
	return 0;
}

int
emu_open_pty(int baud, int *master, int *slave_hold, char *name, size_t namesz)
{
	*master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (*master < 0 || grantpt(*master) < 0 || unlockpt(*master) < 0 ||
	    ptsname_r(*master, name, namesz))
		return -errno;
	struct termios t;
	if (tcgetattr(*master, &t) < 0)
		return -errno;
	cfmakeraw(&t);
	cfsetspeed(&t, speed_of(baud));
	if (tcsetattr(*master, TCSANOW, &t) < 0)
		return -errno;
	*slave_hold = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	return *slave_hold < 0 ? -errno : 0;
}

int
emu_make_link(const char *link, const char *target)
{
	struct stat st;
	if (lstat(link, &st) == 0) {
		if (!S_ISLNK(st.st_mode)) {
			okvm_log(OKVM_LOG_INFO, "emu: %s exists and is not a symlink", link);
			return -EEXIST;
		}
		unlink(link);
	}
	if (symlink(target, link) < 0) {
		int rc = -errno;
		okvm_log(OKVM_LOG_INFO, "emu: cannot link %s: %s", link, strerror(-rc));
		return rc;
	}
	return 0;
}

int
emu_bind_modem(const char *path, int *fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	*fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -errno;
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* left over from a unit that was killed */
	return bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

void
emu_modem_each(struct emu *e, int fd, emu_modem_fn fn, uint64_t now)
{
	char msg[64];
	ssize_t n;
	struct sockaddr_un from;
	socklen_t flen = sizeof(from);
	while ((n = recvfrom(fd, msg, sizeof(msg) - 1, 0, (struct sockaddr *)&from, &flen)) > 0) {
		msg[n] = '\0';
		fn(e, msg, &from, flen, now);
		flen = sizeof(from);
	}
}

static char *
modem_path_for(struct emu *e)
{
	if (e->link_path)
		return xasprintf("%s.modem", e->link_path);
	const char *dir = getenv("TMPDIR");
	e->tmpdir = xasprintf("%s/okvm-emu-XXXXXX", dir && *dir ? dir : "/tmp");
	if (!mkdtemp(e->tmpdir)) {
		free(e->tmpdir);
		e->tmpdir = NULL;
		return NULL;
	}
	return xasprintf("%s/modem", e->tmpdir);
}

static int
open_modem(struct emu *e)
{
	e->modem_path = modem_path_for(e);
	if (!e->modem_path)
		return -errno;
	return emu_bind_modem(e->modem_path, &e->modem);
}

/*
 * --emu-events FILE is opened without following a symlink at FILE (O_NOFOLLOW), so a link
 * planted there by another user (in /tmp, say) cannot make okvm create, truncate or write a file
 * of the user running it. A symlink at FILE is followed only when its owner is this user or
 * root: that keeps /dev/stdout, /dev/stderr and /dev/fd/N (root's links to /proc/self/fd/N),
 * whatever stdout is (terminal, pipe, FIFO or a redirected file), and links users make
 * themselves. The owner is checked before the link is opened, so another user's link is never
 * opened at all, not even a FIFO or device behind it. A regular file is truncated after the
 * open; FIFOs and terminals are not. This is fs.protected_symlinks, applied in every folder.
 */
static int
open_events_fd(const char *path)
{
	const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
	int fd = open(path, flags | O_NOFOLLOW, 0644);
	if (fd < 0 && errno == ELOOP) {
		struct stat link;
		if (lstat(path, &link) == 0 && S_ISLNK(link.st_mode) && link.st_uid != geteuid() &&
		    link.st_uid != 0) {
			okvm_log(OKVM_LOG_ERROR,
				 "emu: %s is a symlink owned by another user; not "
				 "following it (give --emu-events the real path)",
				 path);
			errno = ELOOP;
			return -1;
		}
		fd = open(path, flags, 0644);
	}
	struct stat st;
	if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && ftruncate(fd, 0)) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int
open_events(struct emu *e)
{
	if (!e->events_path)
		return 0;
	e->events_fd = open_events_fd(e->events_path);
	if (e->events_fd < 0) {
		int rc = -errno;
		okvm_log(OKVM_LOG_INFO, "emu: cannot write %s: %s", e->events_path, strerror(-rc));
		return rc;
	}
	return 0;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
release_resources(struct emu *e)
{
	close_fd(&e->master);
	close_fd(&e->slave_hold);
	close_fd(&e->modem);
	close_fd(&e->wake);
	close_fd(&e->events_fd);
	pins_close(e);
	if (e->link_path && e->pty_name[0]) {
		struct stat st;
		if (lstat(e->link_path, &st) == 0 && S_ISLNK(st.st_mode))
			unlink(e->link_path);
	}
	if (e->modem_path)
		unlink(e->modem_path);
	if (e->tmpdir)
		rmdir(e->tmpdir);
	free(e->modem_path);
	free(e->tmpdir);
	e->modem_path = e->tmpdir = NULL;
	e->pty_name[0] = '\0';
	target_fini(e);
}

/* Requests from other threads, applied on the emu thread. @return false to stop. */
static bool
take_requests(struct emu *e)
{
	uint64_t v;
	if (read(e->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
		okvm_log(OKVM_LOG_DEBUG, "emu: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&e->lock);
	int conn = e->req_connected, sw = e->req_switch, pins = e->req_pins;
	bool stop = e->req_stop;
	e->req_connected = e->req_switch = e->req_pins = -1;
	pthread_mutex_unlock(&e->lock);
	if (conn >= 0)
		target_set_plugged(e, conn);
	if (pins >= 0)
		pins_set_plugged(e, pins, now_ns());
	if (sw >= 0)
		emu_emit(e, &(struct emu_event){ .type = EMU_EV_SWITCH, .to_target = sw });
	return !stop;
}

static void
read_master(struct emu *e, uint64_t now)
{
	uint8_t buf[256];
	size_t room = EMU_FIFO_CAP - e->chip.rx.n;
	ssize_t n = read(e->master, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n > 0)
		chip_host_bytes(e, buf, (size_t)n, host_baud(e), now);
}

static void
send_cts(struct emu *e)
{
	if (!e->cts_peer_len)
		return;
	const char *msg = e->cts ? "CTS=1" : "CTS=0";
	if (sendto(e->modem, msg, 5, MSG_DONTWAIT, (struct sockaddr *)&e->cts_peer,
		   e->cts_peer_len) < 0 &&
	    errno != EAGAIN)
		e->cts_peer_len = 0; /* the watcher went away */
}

void
emu_dataflip(struct emu *e)
{
	if (!e->dataflip)
		return;
	e->cts = !e->cts;
	send_cts(e);
}

/* A datagram from the host's serial layer: modem lines for the chip, or "WATCH" (send the CTS
 * line back to this sender from now on; contracts section 1). */
static void
chip_datagram(struct emu *e, const char *msg, const struct sockaddr_un *from, socklen_t flen,
	      uint64_t now)
{
	if (!strcmp(msg, "WATCH")) {
		if (e->dataflip && flen > sizeof(sa_family_t)) {
			e->cts_peer = *from;
			e->cts_peer_len = flen;
			send_cts(e); /* the line as it is now */
		}
	} else {
		chip_modem(e, msg, now);
	}
}

/* Everything due up to now, in time order: the chip's wire, its timers, the target's polls. */
static void
run_due(struct emu *e, uint64_t now)
{
	for (;;) {
		uint64_t tc = chip_next_due(e), tt = target_next_due(e);
		uint64_t t = tc < tt ? tc : tt;
		if (t > now)
			break;
		if (chip_next_tx(e) <= t) /* bytes that left before (e.g. RESET's reply) */
			chip_flush_tx(e, host_baud(e), t);
		if (tt <= tc)
			target_run(e, tt);
		else
			chip_run(e, tc);
	}
	pins_run(e, now);
	if (chip_next_tx(e) <= now)
		chip_flush_tx(e, host_baud(e), now);
}

static uint64_t
next_wakeup(const struct emu *e)
{
	uint64_t t = chip_next_due(e), u = target_next_due(e), v = chip_next_tx(e);
	uint64_t w = pins_next_due(e);
	if (u < t)
		t = u;
	if (w < t)
		t = w;
	return v < t ? v : t;
}

/* Sleep until the next thing is due or an fd is ready. @return true if the eventfd fired. */
static bool
wait_events(struct emu *e, uint64_t now)
{
	struct pollfd p[5] = {
		{ .fd = e->wake, .events = POLLIN },
		{ .fd = e->modem, .events = POLLIN },
		/* A full receive FIFO leaves bytes in the pty, like a host tx queue draining. */
		{ .fd = e->master, .events = e->chip.rx.n < EMU_FIFO_CAP ? POLLIN : 0 },
	};
	uint64_t due = next_wakeup(e);
	struct timespec ts, *tp = NULL;
	if (due != EMU_NEVER) {
		uint64_t d = due > now ? due - now : 0;
		ts = (struct timespec){ .tv_sec = (time_t)(d / 1000000000ull),
					.tv_nsec = (long)(d % 1000000000ull) };
		tp = &ts;
	}
	int np = 3 + pins_pollfds(e, p + 3);
	if (ppoll(p, (nfds_t)np, tp, NULL) <= 0)
		return true;
	now = now_ns();
	/* Requests first: one posted before a modem datagram was sent (the switch event before
	 * the DTR pulse that follows it) is signalled by the time the datagram is readable. */
	bool run = true;
	if (p[0].revents & POLLIN)
		run = take_requests(e);
	if (p[2].revents & POLLIN)
		read_master(e, now);
	if (p[1].revents & POLLIN)
		emu_modem_each(e, e->modem, chip_datagram, now);
	if (np > 3)
		pins_ready(e, p + 3, now);
	return run;
}

static void *
emu_thread(void *arg)
{
	struct emu *e = arg;
	/* The wire-time model stamps host bytes when this thread reads them: a thread that runs
	 * late makes two reports look closer than they were sent, and the poll model then "loses"
	 * one that a real chip would have kept. Real-time priority (when the process may have it,
	 * e.g. as root in CI) keeps the stamps faithful on a loaded machine; the thread sleeps in
	 * poll() between events, so it costs nothing. Without the privilege nothing changes. */
	struct sched_param sp = { .sched_priority = 1 };
	pthread_setschedparam(pthread_self(), SCHED_RR, &sp);
	pins_start(e);
	if (e->cfg_connected)
		target_set_plugged(e, true);
	bool run = take_requests(e);
	while (run) {
		run_due(e, now_ns());
		run = wait_events(e, now_ns());
	}
	return NULL;
}

static int
start_thread(struct emu *e)
{
	return thread_start(&e->thread, "okvm-emu", emu_thread, e);
}

int
emu_start(struct emu *e)
{
	if (e->running)
		return -EALREADY;
	uint64_t now = now_ns();
	e->req_connected = e->req_switch = e->req_pins = -1;
	e->req_stop = false;
	int rc = target_init(e, now);
	if (!rc)
		rc = emu_open_pty(e->cfg_baud, &e->master, &e->slave_hold, e->pty_name,
				  sizeof(e->pty_name));
	if (!rc && e->link_path)
		rc = emu_make_link(e->link_path, e->pty_name);
	if (!rc)
		rc = open_modem(e);
	if (!rc)
		rc = pins_open(e);
	if (!rc)
		rc = open_events(e);
	if (!rc) {
		e->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		rc = e->wake < 0 ? -errno : 0;
	}
	chip_power_up(e, now);
	if (!rc)
		rc = start_thread(e);
	if (rc) {
		release_resources(e);
		return rc;
	}
	e->running = true;
	return 0;
}

static void
wake(struct emu *e)
{
	uint64_t one = 1;
	if (write(e->wake, &one, sizeof(one)) < 0)
		okvm_log(OKVM_LOG_DEBUG, "emu: eventfd write: %s", strerror(errno));
}

void
emu_set_target_connected(struct emu *e, bool on)
{
	pthread_mutex_lock(&e->lock);
	e->req_connected = on;
	if (!e->running)
		e->cfg_connected = on;
	else
		wake(e);
	pthread_mutex_unlock(&e->lock);
}

void
emu_set_pins_plugged(struct emu *e, bool plugged)
{
	pthread_mutex_lock(&e->lock);
	if (e->running) {
		e->req_pins = plugged;
		wake(e);
	}
	pthread_mutex_unlock(&e->lock);
}

void
emu_post_switch(struct emu *e, bool to_target)
{
	pthread_mutex_lock(&e->lock);
	if (e->running) {
		e->req_switch = to_target;
		wake(e);
	}
	pthread_mutex_unlock(&e->lock);
}

const char *
emu_tty_path(struct emu *e)
{
	if (!e->running)
		return NULL;
	return e->link_path ? e->link_path : e->pty_name;
}

const char *
emu_pty_name(struct emu *e)
{
	return e->running ? e->pty_name : NULL;
}

const char *
emu_modem_socket(struct emu *e)
{
	return e->running ? e->modem_path : NULL;
}

void
emu_stop(struct emu *e)
{
	if (!e->running)
		return;
	pthread_mutex_lock(&e->lock);
	e->req_stop = true;
	wake(e);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->thread, NULL);
	pthread_mutex_lock(&e->lock);
	e->running = false;
	pthread_mutex_unlock(&e->lock);
	release_resources(e);
}

void
emu_free(struct emu *e)
{
	if (!e)
		return;
	emu_stop(e);
	pthread_mutex_destroy(&e->lock);
	free(e->link_path);
	free(e->layout);
	free(e->events_path);
	free(e);
}
