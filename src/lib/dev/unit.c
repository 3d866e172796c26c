/*
 * DESIGN: the one place that turns "which unit" into a link. A spec is resolved once, in
 * okvm_unit_new(): parts (the virtual unit the caller made) and tty paths are used as given;
 * anything else is a sysfs scan plus okvm_discover_match(), and the unit keeps what it found,
 * above all its port chain, the key that survives a re-plug. The baud is the spec's, else the
 * model's fixed one (CH32V208, hardware.md 2.1), else 0 for detection. okvm_unit_connect()
 * then builds the link from the spec's template. A node path (-d /dev/ttyUSB0, /dev/hidraw1)
 * is looked up among the discovered units first, so the unit keeps its chain and video chip;
 * only a path no unit has is used bare.
 *
 * The unit also owns its video chip (okvm_unit_open_chip: the hidraw node of the discovered
 * unit, or the parts' chip) and its capture (okvm_unit_open_capture: a V4L2 capture that
 * locates the unit's node again after a re-plug, or the parts' screen, which is only lent).
 *
 * After a re-plug the nodes may have new names. A discovered unit keeps an okvm_discover_watch
 * (libudev monitor on /sys, periodic rescans on a recorded tree), made the first time it is
 * asked for (a short command never is), and locate answers from the watch's last scan, dispatching it first without blocking, so a unit nobody polls still
 * follows the hardware and no caller rescans sysfs itself. The watch and the cached node names
 * sit behind one mutex: the server asks from its hid thread and its capture thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "okvm/log.h"
#include "okvm/models.h"
#include "okvm/unit.h"

struct okvm_unit {
	struct okvm_link_config cfg; /* the template with this unit's path, baud, socket */
	char path[256];
	char modem_socket[256];
	char name[128];
	bool discovered;
	struct okvm_unit_info info;
	char root[256]; /* "" = the default */
	int rescan_ms;
	struct okvm_link *link;
	struct okvm_chip *chip;
	struct okvm_chip *parts_chip;       /* handed in, not yet opened */
	struct okvm_capture *capture;       /* ours unless capture_lent */
	struct okvm_capture *parts_capture; /* the virtual unit's screen */
	bool capture_lent;
	bool parts;
	/* hot-plug, under lock */
	pthread_mutex_t lock;
	struct okvm_discover_watch *watch; /* made on first use: short commands never need one */
	char serial_now[64], video_now[64];
};

/* Events are not needed: refresh_locked() reads the watch's list after each dispatch. */
static void
on_watch(enum okvm_watch_event ev, const struct okvm_unit_info *ui, void *ud)
{
	(void)ev;
	(void)ui;
	(void)ud;
}

static void
set(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

/* Pick the unit from a fresh scan. */
static int
discover(struct okvm_unit *u, const struct okvm_unit_spec *spec)
{
	struct okvm_unit_info *units;
	size_t n;
	int rc = okvm_discover_scan(spec->sysfs_root, &units, &n);
	if (rc == -ENOENT) /* no USB tree at all: no unit */
		n = 0;
	else if (rc < 0)
		return rc;
	int i = -ENOENT;
	if (n)
		i = spec->device ? okvm_discover_match(units, n, spec->device) : 0;
	if (i < 0 && spec->device && spec->device[0] == '/') {
		okvm_discover_free_units(units);
		return -ENXIO; /* a path no unit has: the caller uses it bare */
	}
	if (i >= 0 && !spec->device && n > 1)
		okvm_log(OKVM_LOG_INFO, "%zu units found; using %s (choose with -d)", n,
			 units[0].port_chain);
	if (i >= 0)
		u->info = units[i];
	okvm_discover_free_units(units);
	if (i < 0)
		return -ENOENT; /* also -EINVAL of an empty spec: it names no unit either */
	u->discovered = true;
	set(u->path, sizeof(u->path), u->info.serial_node);
	set(u->serial_now, sizeof(u->serial_now), u->info.serial_node);
	set(u->video_now, sizeof(u->video_now), u->info.video_node);
	snprintf(u->name, sizeof(u->name), "%s %s", u->info.product[0] ? u->info.product : "unit",
		 u->info.port_chain);
	if (!u->cfg.baud)
		u->cfg.baud = okvm_model_fixed_baud(&u->info); /* 0 (detect) unless it is fixed */
	set(u->root, sizeof(u->root), spec->sysfs_root);
	u->rescan_ms = spec->rescan_ms;
	return 0;
}

int
okvm_unit_new(const struct okvm_unit_spec *spec, struct okvm_unit **out)
{
	struct okvm_unit *u = calloc(1, sizeof(*u));
	if (!u)
		abort();
	pthread_mutex_init(&u->lock, NULL);
	u->cfg = spec->link;
	u->cfg.baud = spec->baud;
	u->cfg.modem_socket = NULL;
	const char *path = spec->serial;
	int rc = 0;
	if (spec->parts.tty) {
		set(u->path, sizeof(u->path), spec->parts.tty);
		set(u->modem_socket, sizeof(u->modem_socket), spec->parts.modem_socket);
		u->cfg.baud = spec->parts.baud;
		u->parts = true;
		u->parts_chip = spec->parts.chip;
		u->parts_capture = spec->parts.capture;
		snprintf(u->name, sizeof(u->name), "virtual unit (emu)");
	} else if (path) {
		set(u->path, sizeof(u->path), path);
		set(u->name, sizeof(u->name), path);
	} else {
		rc = discover(u, spec);
		if (rc == -ENXIO ||
		    (rc < 0 && rc != -ENOENT && spec->device && spec->device[0] == '/')) {
			rc = 0; /* no unit has this node (or no tree to say so): the path as given */
			set(u->path, sizeof(u->path), spec->device);
			set(u->name, sizeof(u->name), spec->device);
		}
	}
	if (rc < 0) {
		okvm_unit_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

static int
connect(struct okvm_unit *u, bool lines_only)
{
	if (u->link)
		return -EALREADY;
	if (!u->path[0])
		return -ENODEV;
	struct okvm_link_config cfg = u->cfg;
	cfg.lines_only = lines_only;
	cfg.path = u->path;
	cfg.modem_socket = u->modem_socket[0] ? u->modem_socket : NULL;
	struct okvm_link *l = okvm_link_new(&cfg);
	int rc = okvm_link_open(l);
	if (rc < 0) {
		okvm_link_free(l);
		return rc;
	}
	u->link = l;
	return 0;
}

int
okvm_unit_connect(struct okvm_unit *u)
{
	return connect(u, false);
}

int
okvm_unit_connect_lines(struct okvm_unit *u)
{
	return connect(u, true);
}

int
okvm_unit_open(const struct okvm_unit_spec *spec, struct okvm_unit **out)
{
	struct okvm_unit *u;
	int rc = okvm_unit_new(spec, &u);
	if (rc < 0)
		return rc;
	rc = okvm_unit_connect(u);
	if (rc < 0) {
		okvm_unit_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

struct okvm_link *
okvm_unit_link(const struct okvm_unit *u)
{
	return u->link;
}

struct okvm_link *
okvm_unit_take_link(struct okvm_unit *u)
{
	struct okvm_link *l = u->link;
	u->link = NULL;
	return l;
}

const struct okvm_unit_info *
okvm_unit_info(const struct okvm_unit *u)
{
	return u->discovered ? &u->info : NULL;
}

const char *
okvm_unit_name(const struct okvm_unit *u)
{
	return u->name;
}

const char *
okvm_unit_serial_path(const struct okvm_unit *u)
{
	return u->path;
}

int
okvm_unit_baud(const struct okvm_unit *u)
{
	return u->cfg.baud;
}

int
okvm_unit_open_chip(struct okvm_unit *u)
{
	if (u->chip)
		return -EALREADY;
	if (u->parts_chip) {
		u->chip = u->parts_chip;
		u->parts_chip = NULL;
		return 0;
	}
	if (!u->discovered)
		return -ENXIO;
	if (!okvm_model_of_unit(&u->info))
		return -ENOTSUP; /* every known model's MS21xx answers on hidraw */
	if (!u->info.hidraw_node[0])
		return -ENODEV;
	return okvm_chip_open(u->info.hidraw_node, u->root[0] ? u->root : NULL, &u->chip);
}

struct okvm_chip *
okvm_unit_chip(const struct okvm_unit *u)
{
	return u->chip;
}

struct okvm_chip *
okvm_unit_take_chip(struct okvm_unit *u)
{
	struct okvm_chip *c = u->chip;
	u->chip = NULL;
	return c;
}

const char *
okvm_unit_chip_path(const struct okvm_unit *u)
{
	if (u->parts)
		return u->parts_chip || u->chip ? "(virtual)" : "";
	return u->discovered ? u->info.hidraw_node : "";
}

static int
locate_video_cb(void *ud, char *buf, size_t n)
{
	return okvm_unit_locate_video(ud, buf, n);
}

int
okvm_unit_open_capture(struct okvm_unit *u, const char *video, const char *mode)
{
	if (u->capture)
		return -EALREADY;
	int w, h, fps;
	if (mode && okvm_video_parse_mode(mode, &w, &h, &fps) < 0)
		return -EINVAL;
	if (video) {
		u->capture = okvm_capture_new_v4l2(video, mode);
	} else if (u->parts_capture) {
		u->capture = u->parts_capture;
		u->capture_lent = true;
	} else if (u->discovered) { /* no node yet: the located capture waits for one */
		/* Follow the unit, not the node name, across a re-plug. */
		u->capture = okvm_capture_new_v4l2_located(u->info.video_node, mode,
							   locate_video_cb, u);
	} else {
		return -ENXIO;
	}
	return 0;
}

struct okvm_capture *
okvm_unit_capture(const struct okvm_unit *u)
{
	return u->capture;
}

/* The watch, made on first use; its first scan is due at once (okvm_discover_watch_new). */
static struct okvm_discover_watch *
watch_locked(struct okvm_unit *u)
{
	if (!u->watch) {
		u->watch = okvm_discover_watch_new(u->root[0] ? u->root : NULL, u->rescan_ms,
						   on_watch, u);
		struct pollfd p = { .fd = okvm_discover_watch_fd(u->watch), .events = POLLIN };
		poll(&p, 1, 100);
	}
	return u->watch;
}

/* Dispatch the watch and refresh the cached nodes of our chain. Caller holds the lock.
 * @return 1 if they changed, 0 if not, -errno from the rescan. */
static int
refresh_locked(struct okvm_unit *u)
{
	int rc = okvm_discover_watch_dispatch(watch_locked(u));
	if (rc < 0)
		return rc;
	size_t n;
	const struct okvm_unit_info *units = okvm_discover_watch_units(u->watch, &n);
	const struct okvm_unit_info *now = NULL;
	for (size_t i = 0; i < n && !now; i++)
		if (!strcmp(units[i].port_chain, u->info.port_chain))
			now = &units[i];
	char serial[64], video[64];
	set(serial, sizeof(serial), now ? now->serial_node : "");
	set(video, sizeof(video), now ? now->video_node : "");
	bool changed = strcmp(serial, u->serial_now) || strcmp(video, u->video_now);
	memcpy(u->serial_now, serial, sizeof(serial));
	memcpy(u->video_now, video, sizeof(video));
	return changed;
}

static int
locate(struct okvm_unit *u, bool video, char *buf, size_t n)
{
	if (!u->discovered)
		return -ENODEV;
	pthread_mutex_lock(&u->lock);
	int rc = refresh_locked(u);
	char node[64];
	set(node, sizeof(node), video ? u->video_now : u->serial_now);
	pthread_mutex_unlock(&u->lock);
	if (rc < 0 || !node[0] || (!video && access(node, F_OK) != 0))
		return -ENODEV; /* a tty node appears after sysfs says so (udev makes it) */
	if ((size_t)snprintf(buf, n, "%s", node) >= n)
		return -ENOSPC;
	return 0;
}

int
okvm_unit_locate_serial(struct okvm_unit *u, char *buf, size_t n)
{
	return locate(u, false, buf, n);
}

int
okvm_unit_locate_video(struct okvm_unit *u, char *buf, size_t n)
{
	return locate(u, true, buf, n);
}

int
okvm_unit_get_fd(struct okvm_unit *u)
{
	if (!u->discovered)
		return -1;
	pthread_mutex_lock(&u->lock);
	int fd = okvm_discover_watch_fd(watch_locked(u));
	pthread_mutex_unlock(&u->lock);
	return fd;
}

int
okvm_unit_dispatch(struct okvm_unit *u)
{
	if (!u->discovered)
		return 0;
	pthread_mutex_lock(&u->lock);
	int rc = refresh_locked(u);
	pthread_mutex_unlock(&u->lock);
	return rc;
}

void
okvm_unit_free(struct okvm_unit *u)
{
	if (!u)
		return;
	okvm_link_free(u->link);
	if (u->capture_lent)
		okvm_capture_want(u->capture, false); /* the virtual unit owns its screen */
	else
		okvm_capture_free(u->capture); /* stops its thread: it locates through us */
	okvm_chip_free(u->chip);
	okvm_chip_free(u->parts_chip);
	okvm_discover_watch_free(u->watch);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
