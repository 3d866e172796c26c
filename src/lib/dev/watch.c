/*
 * DESIGN: hot-plug for units. One pollable fd (an epoll set) holds a timerfd and, on a real
 * /sys, a libudev netlink monitor for the subsystems a unit is made of. A uevent only arms a
 * short debounce (a unit is a dozen devices that appear over a few hundred ms); the timer then
 * rescans sysfs with okvm_discover_scan() and the difference with the previous scan is reported
 * to the callback: ADDED, REMOVED, or CHANGED (same unit key, other nodes, e.g. the tty arrived
 * after the video node). A periodic rescan also runs on a real /sys as a safety net (monitor
 * buffer overruns), and is the only mechanism on a recorded tree (OKVM_SYSFS_ROOT), which
 * has no uevents.
 *
 * Thread: whoever owns the watch calls fd/dispatch/free; no threads inside.
 */
#include <errno.h>
#include <libudev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "okvm/discover.h"
#include "okvm/log.h"

#define DEBOUNCE_MS 200

struct okvm_discover_watch {
	char *root;
	int rescan_ms;
	okvm_discover_watch_fn fn;
	void *ud;
	int epfd, timerfd;
	struct udev *udev;
	struct udev_monitor *mon;
	struct okvm_unit_info *units;
	size_t n_units;
};

static void
arm(struct okvm_discover_watch *w, int first_ms)
{
	struct itimerspec its = {
		.it_value = { first_ms / 1000, (long)(first_ms % 1000) * 1000000L + 1 },
		.it_interval = { w->rescan_ms / 1000, (long)(w->rescan_ms % 1000) * 1000000L },
	};
	timerfd_settime(w->timerfd, 0, &its, NULL);
}

static void
add_fd(struct okvm_discover_watch *w, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void
start_monitor(struct okvm_discover_watch *w)
{
	static const char *const subsystems[] = { "usb", "tty", "hidraw", "video4linux", "sound" };
	w->udev = udev_new();
	if (w->udev)
		w->mon = udev_monitor_new_from_netlink(w->udev, "udev");
	if (!w->mon) {
		okvm_log(OKVM_LOG_INFO, "discover: no udev monitor; rescanning every %d ms",
			 w->rescan_ms);
		return;
	}
	for (size_t i = 0; i < sizeof(subsystems) / sizeof(subsystems[0]); i++)
		udev_monitor_filter_add_match_subsystem_devtype(w->mon, subsystems[i], NULL);
	if (udev_monitor_enable_receiving(w->mon) < 0) {
		udev_monitor_unref(w->mon);
		w->mon = NULL;
		return;
	}
	add_fd(w, udev_monitor_get_fd(w->mon));
}

struct okvm_discover_watch *
okvm_discover_watch_new(const char *root, int rescan_ms, okvm_discover_watch_fn fn, void *ud)
{
	struct okvm_discover_watch *w = calloc(1, sizeof(*w));
	if (!w)
		abort();
	w->root = strdup(root ? root : okvm_discover_default_root());
	if (!w->root)
		abort();
	w->rescan_ms = rescan_ms > 0 ? rescan_ms : 1000;
	w->fn = fn;
	w->ud = ud;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->epfd < 0 || w->timerfd < 0)
		abort();
	add_fd(w, w->timerfd);
	if (!strcmp(w->root, "/sys"))
		start_monitor(w);
	arm(w, 0); /* first scan right away */
	return w;
}

int
okvm_discover_watch_fd(const struct okvm_discover_watch *w)
{
	return w->epfd;
}

/* Same unit key, same parts? index is a list position and does not count. */
static bool
same_unit(const struct okvm_unit_info *a, const struct okvm_unit_info *b)
{
	struct okvm_unit_info x = *a, y = *b;
	x.index = y.index = 0;
	return !memcmp(&x, &y, sizeof(x));
}

static const struct okvm_unit_info *
find(const struct okvm_unit_info *units, size_t n, const char *chain)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(units[i].port_chain, chain))
			return &units[i];
	return NULL;
}

static int
report_diff(struct okvm_discover_watch *w, const struct okvm_unit_info *now, size_t n)
{
	int changes = 0;
	for (size_t i = 0; i < w->n_units; i++) {
		if (!find(now, n, w->units[i].port_chain)) {
			w->fn(OKVM_UNIT_REMOVED, &w->units[i], w->ud);
			changes++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct okvm_unit_info *old = find(w->units, w->n_units, now[i].port_chain);
		if (old && same_unit(old, &now[i]))
			continue;
		w->fn(old ? OKVM_UNIT_CHANGED : OKVM_UNIT_ADDED, &now[i], w->ud);
		changes++;
	}
	return changes;
}

static int
rescan(struct okvm_discover_watch *w)
{
	struct okvm_unit_info *now;
	size_t n;
	int rc = okvm_discover_scan(w->root, &now, &n);
	if (rc == -ENOENT) { /* no USB at all (yet): same as no unit */
		now = NULL;
		n = 0;
	} else if (rc < 0) {
		return rc;
	}
	int changes = report_diff(w, now, n);
	okvm_discover_free_units(w->units);
	w->units = now;
	w->n_units = n;
	return changes;
}

static bool
drain_monitor(struct okvm_discover_watch *w)
{
	bool any = false;
	struct udev_device *d;
	while (w->mon && (d = udev_monitor_receive_device(w->mon))) {
		okvm_log(OKVM_LOG_DEBUG, "discover: uevent %s %s", udev_device_get_action(d),
			 udev_device_get_syspath(d));
		udev_device_unref(d);
		any = true;
	}
	return any;
}

int
okvm_discover_watch_dispatch(struct okvm_discover_watch *w)
{
	uint64_t ticks = 0;
	bool due = read(w->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks);
	if (drain_monitor(w))
		arm(w, DEBOUNCE_MS);
	return due ? rescan(w) : 0;
}

const struct okvm_unit_info *
okvm_discover_watch_units(const struct okvm_discover_watch *w, size_t *n)
{
	*n = w->n_units;
	return w->units;
}

void
okvm_discover_watch_free(struct okvm_discover_watch *w)
{
	if (!w)
		return;
	if (w->mon)
		udev_monitor_unref(w->mon);
	if (w->udev)
		udev_unref(w->udev);
	close(w->timerfd);
	close(w->epfd);
	okvm_discover_free_units(w->units);
	free(w->root);
	free(w);
}
