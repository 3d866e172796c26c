/*
 * DESIGN: the backend of okvm serve for a real or virtual unit: the CH9329 link for input, the
 * keymap for key codes, combos and typing, the unit's capture for video. Either half may be
 * missing: a video-only unit (-d frames:PATH) has no link, a link without a capture has no
 * video.
 *
 * Threads. The link has no thread of its own (fd + dispatch): this backend runs it on a thread
 * named okvm-hid that polls the link's fd and an eventfd, and is the only caller of dispatch and
 * of the link's blocking helpers (the USB switch is handed over to it). The server's service
 * thread calls the input operations; they build reports and use the link's thread-safe enqueue
 * functions, so they never block. Typing plans the whole text on the service thread (so an
 * unknown layout or an untypeable character fails at once and nothing is sent), then a thread
 * named okvm-type feeds the reports at the asked rate, keeping the link's queue short, and
 * reports progress as the link works through it.
 *
 * State (target connected, LEDs) comes from the link's listener on the hid thread, is copied
 * under the lock and announced with on_state.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "okvm/chip.h"
#include "okvm/error.h"
#include "okvm/keymap.h"
#include "okvm/link.h"
#include "okvm/pacer.h"
#include "okvm/log.h"
#include "okvm/text.h"
#include "okvm/video.h"
#include "serve/backend.h"
#include "lib/thread.h"
#include "lib/xalloc.h"

#define RECONNECT_MS 1000   /* hot-plug: how often a gone unit is looked for */
#define FOLLOW_MS 1000      /* the hardware toggle is read this often, as the official app does */
#define TYPE_QUEUE_AHEAD 16 /* keyboard reports queued ahead of the link while typing */

struct ub {
	struct okvm_link *link; /* NULL: a video-only unit */
	int (*locate)(void *ud, char *path, size_t size);
	void *locate_ud;
	struct okvm_chip *chip;   /* the video chip, or NULL */
	bool follow;              /* mirror the hardware toggle (hid thread only) */
	int follow_last;          /* its position last seen (okvm_usb_switch_follow_step) */
	uint64_t follow_next_ms;  /* when to read it next */
	struct okvm_capture *cap; /* NULL: no video */
	bool cap_owned;
	char unit[64];
	int efd; /* wakes the hid thread */
	pthread_t hid;
	pthread_mutex_t lock; /* the fields below up to "service thread only" */
	pthread_cond_t cond;
	bool stop;
	struct okvm_link_state st;
	struct okvm_link_stats stats;
	bool gone; /* the port vanished */
	bool usb_known;
	enum okvm_usb_dir usb;
	bool usb_requested; /* for the hid thread: switch to usb_request */
	enum okvm_usb_dir usb_request;
	/* the switchable port's power (ub_usb_power): asked (seq) and done by the hid thread */
	bool power_request;
	unsigned power_asked, power_done;
	int power_rc;
	void (*on_state)(void *);
	void (*on_frame)(void *);
	void *nud;
	/* typing (lock) */
	pthread_t typer;
	bool typer_running, typing, cancel;
	struct okvm_text_plan plan;
	size_t total, done;
	double cps;
	serve_type_progress_fn progress;
	void *progress_ud;
	/* service thread only */
	struct okvm_kbd_report kbd;
	struct okvm_media_report media, acpi; /* held media and ACPI keys, one report each */
	uint16_t x, y;
	uint8_t buttons;
	bool rel_mode;
	struct okvm_keymap *km; /* the last layout typed with */
};

static void
wake(struct ub *u)
{
	uint64_t one = 1;
	if (write(u->efd, &one, sizeof(one)) < 0)
		okvm_log(OKVM_LOG_DEBUG, "serve: eventfd: %m");
}

static void
notify_locked(struct ub *u)
{
	if (u->on_state)
		u->on_state(u->nud);
}

/* ---- the hid thread ---- */

static void
on_link_state(const struct okvm_link_state *st, void *ud)
{
	struct ub *u = ud;
	pthread_mutex_lock(&u->lock);
	u->st = *st;
	notify_locked(u);
	pthread_mutex_unlock(&u->lock);
}

static int
sw_dtr_pulse(void *ud, int ms)
{
	struct ub *u = ud;
	return okvm_link_dtr_pulse(u->link, ms);
}

static int
sw_serial(void *ud, bool query, enum okvm_usb_dir dir, enum okvm_usb_dir *now)
{
	struct ub *u = ud;
	return okvm_link_usb_switch(u->link, query ? OKVM_USB_QUERY : dir, now);
}

/* The same switch logic as `okvm switch` (src/lib/chip/usbswitch.c): the MS2109 register and
 * the DTR pulse on a Mini-KVM, command 0x17 on a CH32V208. Runs on the hid thread (the link's
 * blocking helpers belong to it). */
static void
usb_switch_of(struct ub *u, struct okvm_usb_switch *sw)
{
	*sw = (struct okvm_usb_switch){ .chip = u->chip, .ud = u };
	if (u->link) {
		sw->dtr_pulse = sw_dtr_pulse;
		if (!u->chip)
			sw->serial_switch = sw_serial;
	}
}

static void
do_usb_switch(struct ub *u, enum okvm_usb_dir to)
{
	struct okvm_usb_switch sw;
	usb_switch_of(u, &sw);
	enum okvm_usb_dir now = OKVM_USB_TO_HOST;
	int rc = okvm_usb_switch_set(&sw, to);
	if (rc == 0)
		rc = okvm_usb_switch_get(&sw, &now);
	pthread_mutex_lock(&u->lock);
	if (rc < 0)
		okvm_log(OKVM_LOG_WARN, "serve: USB switch: %s", okvm_strerror(rc));
	else
		u->usb = now, u->usb_known = true;
	notify_locked(u);
	pthread_mutex_unlock(&u->lock);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The physical toggle moved? Route the port where it points now, as `okvm switch follow` does
 * (the same library step), and tell the pages. Only a change switches: starting the server
 * leaves the port where it is. */
static void
follow_toggle(struct ub *u)
{
	u->follow_next_ms = mono_ms() + FOLLOW_MS;
	struct okvm_usb_switch sw;
	usb_switch_of(u, &sw);
	int rc = okvm_usb_switch_follow_step(&sw, &u->follow_last);
	if (rc == 0)
		return;
	enum okvm_usb_dir now;
	if (rc < 0) {
		okvm_log(OKVM_LOG_WARN, "serve: following the hardware toggle: %s",
			 okvm_strerror(rc));
		if (rc == -ENOTSUP)
			u->follow = false;
		return;
	}
	okvm_log(OKVM_LOG_NOTICE, "serve: the hardware toggle moved: USB port to the %s",
		 u->follow_last == OKVM_USB_TO_HOST ? "host" : "target");
	if (okvm_usb_switch_get(&sw, &now) < 0)
		now = (enum okvm_usb_dir)u->follow_last;
	pthread_mutex_lock(&u->lock);
	u->usb = now;
	u->usb_known = true;
	notify_locked(u);
	pthread_mutex_unlock(&u->lock);
}

static int
poll_timeout(const struct ub *u)
{
	if (u->gone)
		return RECONNECT_MS;
	if (!u->follow)
		return -1;
	uint64_t now = mono_ms();
	return u->follow_next_ms > now ? (int)(u->follow_next_ms - now) : 0;
}

/* The unit came back? Re-open the same link object, so other threads' pointers stay good. */
static void
reconnect(struct ub *u)
{
	char path[256];
	const char *where = NULL;
	if (u->locate) {
		if (u->locate(u->locate_ud, path, sizeof(path)) != 0)
			return;
		where = path;
	} else if (access(okvm_link_path(u->link), F_OK) != 0) {
		return; /* not back yet: no open, no error line every second */
	}
	if (okvm_link_reopen(u->link, where) < 0)
		return;
	okvm_log(OKVM_LOG_WARN, "serve: the keyboard/mouse link is back on %s",
		 okvm_link_path(u->link));
	struct okvm_link_state st;
	okvm_link_get_state(u->link, &st);
	pthread_mutex_lock(&u->lock);
	u->gone = false;
	u->st = st;
	notify_locked(u);
	pthread_mutex_unlock(&u->lock);
}

static void *
hid_thread(void *ud)
{
	struct ub *u = ud;
	/* p[0] the eventfd, p[1] the link (left out once the port is gone) */
	struct pollfd p[2] = { { .fd = u->efd, .events = POLLIN },
			       { .fd = okvm_link_fd(u->link), .events = POLLIN } };
	for (;;) {
		/* While the port is gone, look for the unit again once a second (hot-plug). */
		if (poll(p, u->gone ? 1 : 2, poll_timeout(u)) < 0 && errno != EINTR)
			break;
		uint64_t v;
		if (p[0].revents && read(u->efd, &v, sizeof(v)) < 0)
			v = 0;
		pthread_mutex_lock(&u->lock);
		bool stop = u->stop;
		bool switch_req = u->usb_requested;
		enum okvm_usb_dir req = u->usb_request;
		u->usb_requested = false;
		unsigned power_asked = u->power_asked;
		bool powered = u->power_request;
		pthread_mutex_unlock(&u->lock);
		if (stop)
			break;
		if (switch_req)
			do_usb_switch(u, req);
		if (power_asked != u->power_done) {
			/* DTR asserted grounds nothing: the port is unpowered (hardware.md 2.11) */
			int prc = u->gone ? -ENODEV : okvm_link_set_dtr(u->link, !powered);
			pthread_mutex_lock(&u->lock);
			u->power_rc = prc;
			u->power_done = power_asked;
			pthread_cond_broadcast(&u->cond);
			pthread_mutex_unlock(&u->lock);
		}
		if (u->follow && mono_ms() >= u->follow_next_ms)
			follow_toggle(u);
		if (u->gone) {
			reconnect(u);
			continue;
		}
		int rc = okvm_link_dispatch(u->link);
		struct okvm_link_stats stats;
		okvm_link_get_stats(u->link, &stats);
		pthread_mutex_lock(&u->lock);
		u->stats = stats;
		if (rc == -ENODEV) {
			okvm_log(OKVM_LOG_ERROR, "serve: the keyboard/mouse link is gone");
			u->gone = true;
			u->st.chip_ok = false;
			u->st.target_connected = false;
			notify_locked(u);
		}
		pthread_mutex_unlock(&u->lock);
	}
	return NULL;
}

/* ---- input (service thread) ---- */

static int
send_kbd(struct ub *u)
{
	int rc = okvm_link_send_kbd(u->link, &u->kbd);
	return rc == -EAGAIN ? -EBUSY : rc;
}

static int
ub_key(void *ud, const char *code, bool down)
{
	struct ub *u = ud;
	if (!u->link)
		return -OKVM_E_VIDEO_ONLY;
	struct okvm_key k;
	if (okvm_key_from_code(code, &k))
		return -ENOENT;
	if (k.kind == OKVM_KEY_KBD) {
		/* A seventh key is dropped (6-key rollover, -ENOSPC); the report goes out anyway. */
		okvm_kbd_report_apply(&u->kbd, &k, down);
		return send_kbd(u);
	}
	struct okvm_media_report *m = k.kind == OKVM_KEY_MEDIA ? &u->media : &u->acpi;
	okvm_media_report_apply(m, &k, down);
	return okvm_link_send_media(u->link, m);
}

static int
ub_combo(void *ud, const char *combo)
{
	struct ub *u = ud;
	if (!u->link)
		return -OKVM_E_VIDEO_ONLY;
	struct okvm_combo c;
	char err[160];
	int rc = okvm_combo_parse(combo, NULL, &c, err, sizeof(err));
	if (rc)
		return rc;
	for (int i = 0; i < c.n && !rc; i++)
		rc = c.is_media ? okvm_link_send_media(u->link, &c.media[i])
				: okvm_link_send_kbd(u->link, &c.kbd[i]);
	/* The combo ends with everything up; put back what the browsers still hold. */
	if (!rc && !c.is_media && (u->kbd.modifiers || u->kbd.keys[0]))
		rc = send_kbd(u);
	return rc;
}

static uint16_t
chip_units(double f)
{
	return (uint16_t)lround(f * OKVM_CH9329_ABS_MAX);
}

static int
ub_mouse_abs(void *ud, double x, double y, uint8_t buttons)
{
	struct ub *u = ud;
	if (!u->link)
		return -OKVM_E_VIDEO_ONLY;
	u->x = chip_units(x);
	u->y = chip_units(y);
	u->buttons = buttons;
	u->rel_mode = false;
	return okvm_link_mouse_abs(u->link, u->x, u->y, buttons, 0);
}

static int
ub_buttons(void *ud, uint8_t buttons)
{
	struct ub *u = ud;
	if (!u->link)
		return -OKVM_E_VIDEO_ONLY;
	u->buttons = buttons;
	if (u->rel_mode)
		return okvm_link_mouse_rel(u->link, 0, 0, buttons, 0);
	return okvm_link_mouse_abs(u->link, u->x, u->y, buttons, 0);
}

static int
ub_wheel(void *ud, int dy, int dx)
{
	struct ub *u = ud;
	if (!u->link)
		return -OKVM_E_VIDEO_ONLY;
	if (!dy)
		return dx ? -EOPNOTSUPP : 0; /* the CH9329 has no horizontal wheel */
	/* The chip's wheel is + up; the browser's dy is + down. */
	int8_t w = (int8_t)(dy > 0 ? -(dy > 127 ? 127 : dy) : (-dy > 127 ? 127 : -dy));
	if (u->rel_mode)
		return okvm_link_mouse_rel(u->link, 0, 0, u->buttons, w);
	return okvm_link_mouse_abs(u->link, u->x, u->y, u->buttons, w);
}

static int
ub_rel(void *ud, int dx, int dy, uint8_t buttons)
{
	struct ub *u = ud;
	if (!u->link)
		return -OKVM_E_VIDEO_ONLY;
	u->rel_mode = true;
	u->buttons = buttons;
	int rc = 0;
	do {
		int sx = dx > 127 ? 127 : dx < -127 ? -127 : dx;
		int sy = dy > 127 ? 127 : dy < -127 ? -127 : dy;
		rc = okvm_link_mouse_rel(u->link, (int8_t)sx, (int8_t)sy, buttons, 0);
		dx -= sx;
		dy -= sy;
	} while (!rc && (dx || dy));
	return rc;
}

/* ---- typing ---- */

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
wait_until_locked(struct ub *u, double t)
{
	struct timespec ts;
	double s = floor(t);
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((t - s) * 1e9);
	pthread_cond_timedwait(&u->cond, &u->lock, &ts);
}

static void
report_progress_locked(struct ub *u, size_t done, int err)
{
	if (done == u->done && !err)
		return;
	u->done = done;
	if (u->progress)
		u->progress(done, u->total, err, u->progress_ud);
}

static void *
typer_thread(void *ud)
{
	struct ub *u = ud;
	pthread_mutex_lock(&u->lock);
	struct okvm_pacer p;
	okvm_pacer_init(&p, u->plan.reports, u->plan.char_index, u->plan.n, u->total, u->cps,
			TYPE_QUEUE_AHEAD, now_s());
	int err = 0;
	while (!u->cancel && !u->stop) {
		double now = now_s(), wake;
		int rc = okvm_pacer_run(&p, u->link, now, &wake);
		report_progress_locked(u, okvm_pacer_done(&p, u->link), 0);
		if (rc) {
			err = rc < 0 ? rc : 0;
			break;
		}
		wait_until_locked(u, fmin(wake, now + 0.005));
	}
	/* Until the link has sent it all (or 30 s, a link that stopped answering). */
	double limit = now_s() + 30;
	while (!err && !u->cancel && !u->stop && !u->gone &&
	       okvm_pacer_done(&p, u->link) < u->total && now_s() < limit) {
		report_progress_locked(u, okvm_pacer_done(&p, u->link), 0);
		wait_until_locked(u, now_s() + 0.005);
	}
	if (u->cancel || u->stop)
		err = -ECANCELED;
	else if (!err && u->gone)
		err = -ENODEV; /* unplugged while typing: the rest is lost, and said so */
	else if (!err && okvm_pacer_done(&p, u->link) < u->total)
		err = -ETIMEDOUT;
	report_progress_locked(u, err ? okvm_pacer_done(&p, u->link) : u->total, err);
	okvm_text_plan_free(&u->plan);
	u->typing = false;
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

static int
plan_text(struct ub *u, const char *text, size_t len, const char *layout,
	  struct okvm_text_plan *plan)
{
	if (!u->km || strcmp(okvm_keymap_layout(u->km), layout)) {
		struct okvm_keymap *km = okvm_keymap_new(layout);
		if (!km)
			return -EINVAL;
		okvm_keymap_free(u->km);
		u->km = km;
	}
	pthread_mutex_lock(&u->lock);
	struct okvm_text_opts o = { .leds = u->st.leds, .caps = OKVM_CAPS_COMPENSATE };
	pthread_mutex_unlock(&u->lock);
	struct okvm_text_error e;
	int rc = okvm_text_plan(u->km, text, len, &o, plan, &e);
	if (rc)
		okvm_log(OKVM_LOG_WARN, "serve: cannot type that on %s: %s", layout, e.message);
	return rc;
}

static int
ub_type(void *ud, const char *text, size_t len, const char *layout, double cps,
	serve_type_progress_fn fn, void *fn_ud)
{
	struct ub *u = ud;
	if (!u->link)
		return -OKVM_E_VIDEO_ONLY;
	pthread_mutex_lock(&u->lock);
	bool busy = u->typing, gone = u->gone;
	pthread_mutex_unlock(&u->lock);
	if (gone)
		return -ENODEV; /* unplugged: a paste now would be lost, say so (503) */
	if (busy)
		return -EBUSY;
	struct okvm_text_plan plan;
	int rc = plan_text(u, text, len, layout, &plan);
	if (rc)
		return rc;
	if (u->typer_running)
		pthread_join(u->typer, NULL);
	pthread_mutex_lock(&u->lock);
	u->plan = plan;
	u->total = plan.chars;
	u->done = (size_t)-1;
	u->cps = cps;
	u->progress = fn;
	u->progress_ud = fn_ud;
	u->cancel = false;
	u->typing = true;
	if (thread_start(&u->typer, "okvm-type", typer_thread, u)) {
		u->typing = false;
		pthread_mutex_unlock(&u->lock);
		return -EAGAIN;
	}
	u->typer_running = true;
	pthread_mutex_unlock(&u->lock);
	return 0;
}

static int
ub_release_all(void *ud)
{
	struct ub *u = ud;
	if (!u->link)
		return 0; /* nothing can be pressed */
	pthread_mutex_lock(&u->lock);
	u->cancel = true;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	memset(&u->kbd, 0, sizeof(u->kbd));
	u->media = (struct okvm_media_report){ .report_id = OKVM_MEDIA_MULTIMEDIA };
	u->acpi = (struct okvm_media_report){ .report_id = OKVM_MEDIA_ACPI };
	u->buttons = 0;
	return okvm_link_release_all(u->link);
}

static int
ub_usb_switch(void *ud, enum okvm_usb_dir to)
{
	struct ub *u = ud;
	if (!u->link)
		return -OKVM_E_VIDEO_ONLY;
	pthread_mutex_lock(&u->lock);
	u->usb_request = to;
	u->usb_requested = true;
	pthread_mutex_unlock(&u->lock);
	wake(u);
	return 0;
}

/* The hid thread sets the line; this caller (a power press thread) waits for it. */
static int
ub_usb_power(void *ud, bool powered)
{
	struct ub *u = ud;
	if (!u->link)
		return -OKVM_E_VIDEO_ONLY;
	pthread_mutex_lock(&u->lock);
	unsigned mine = ++u->power_asked;
	u->power_request = powered;
	wake(u);
	while ((int)(u->power_done - mine) < 0 && !u->stop) /* a later request counts too */
		pthread_cond_wait(&u->cond, &u->lock);
	int rc = (int)(u->power_done - mine) >= 0 ? u->power_rc : -ECANCELED;
	pthread_mutex_unlock(&u->lock);
	return rc;
}

/* ---- state, frames, life ---- */

static void
ub_get_state(void *ud, struct serve_state *out)
{
	struct ub *u = ud;
	memset(out, 0, sizeof(*out));
	if (u->cap) {
		struct okvm_capture_status cs;
		okvm_capture_get_status(u->cap, &cs);
		out->has_video = true;
		out->signal = cs.signal && cs.device;
		out->width = cs.width;
		out->height = cs.height;
		out->fps = cs.fps;
		out->frames_captured = cs.frames;
	}
	snprintf(out->unit, sizeof(out->unit), "%s", u->unit);
	pthread_mutex_lock(&u->lock);
	out->has_input = u->link != NULL;
	out->target_connected = u->st.target_connected && !u->gone;
	out->leds = u->st.leds;
	out->usb = u->usb;
	out->usb_known = u->usb_known;
	out->hid_reports = u->stats.reports_sent;
	out->hid_errors = u->stats.timeouts + u->stats.chip_errors;
	out->ack_ms_last = u->stats.ack_ms_last;
	out->ack_ms_max = u->stats.ack_ms_max;
	out->typing_pending = u->typing && u->done != (size_t)-1 ? u->total - u->done
			      : u->typing                        ? u->total
								 : 0;
	pthread_mutex_unlock(&u->lock);
}

static struct okvm_frame *
ub_newest_frame(void *ud)
{
	struct ub *u = ud;
	if (u->cap)
		return okvm_capture_latest(u->cap);
	return NULL;
}

static void
ub_frame_unref(void *ud, struct okvm_frame *f)
{
	struct ub *u = ud;
	(void)u;
	okvm_frame_unref(f);
}

static void
ub_want(void *ud, bool want)
{
	struct ub *u = ud;
	if (u->cap)
		okvm_capture_want(u->cap, want);
}

static void
ub_set_notify(void *ud, void (*on_frame)(void *), void (*on_state)(void *), void *nud)
{
	struct ub *u = ud;
	pthread_mutex_lock(&u->lock);
	u->on_state = on_state;
	u->on_frame = on_frame;
	u->nud = nud;
	if (!on_state)
		u->progress = NULL;
	pthread_mutex_unlock(&u->lock);
}

/* The capture thread's notify: forwarded under the lock, so none runs after set_notify(NULL). */
static void
on_capture_frame(void *ud)
{
	struct ub *u = ud;
	pthread_mutex_lock(&u->lock);
	if (u->on_frame)
		u->on_frame(u->nud);
	pthread_mutex_unlock(&u->lock);
}

static void
ub_destroy(void *ud)
{
	struct ub *u = ud;
	pthread_mutex_lock(&u->lock);
	u->stop = true;
	u->cancel = true;
	u->progress = NULL;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	wake(u);
	if (u->link)
		pthread_join(u->hid, NULL);
	if (u->typer_running)
		pthread_join(u->typer, NULL);
	if (u->link) {
		okvm_link_set_listener(u->link, NULL, NULL);
		okvm_link_free(u->link); /* releases everything, on this thread now */
	}
	if (u->cap) {
		okvm_capture_set_notify(u->cap, NULL, NULL);
		if (u->cap_owned)
			okvm_capture_free(u->cap);
	}
	okvm_keymap_free(u->km);
	okvm_chip_free(u->chip);
	close(u->efd);
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static const struct serve_backend_ops ub_ops = {
	.key = ub_key,
	.combo = ub_combo,
	.mouse_abs = ub_mouse_abs,
	.buttons = ub_buttons,
	.wheel = ub_wheel,
	.rel = ub_rel,
	.type = ub_type,
	.release_all = ub_release_all,
	.usb_switch = ub_usb_switch,
	.get_state = ub_get_state,
	.newest_frame = ub_newest_frame,
	.frame_unref = ub_frame_unref,
	.want_frames = ub_want,
	.set_notify = ub_set_notify,
	.destroy = ub_destroy,
	.usb_power = ub_usb_power,
};

static int
start_hid(struct ub *u)
{
	okvm_link_get_state(u->link, &u->st);
	okvm_link_set_listener(u->link, on_link_state, u);
	int rc = thread_start(&u->hid, "okvm-hid", hid_thread, u);
	if (rc)
		okvm_link_set_listener(u->link, NULL, NULL);
	return rc;
}

int
serve_backend_unit_new(const struct serve_unit_config *cfg, struct serve_backend *out)
{
	struct ub *u = xcalloc(1, sizeof(*u));
	u->link = cfg->link;
	u->locate = cfg->locate;
	u->locate_ud = cfg->locate_ud;
	u->cap = cfg->capture;
	u->cap_owned = cfg->capture_owned;
	snprintf(u->unit, sizeof(u->unit), "%s", cfg->unit ? cfg->unit : "unit");
	u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->efd < 0) {
		free(u);
		return -errno;
	}
	pthread_mutex_init(&u->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->cond, &ca);
	pthread_condattr_destroy(&ca);
	u->chip = cfg->chip;
	if (u->chip) { /* a register read: where the port is routed now (no thread runs yet) */
		struct okvm_usb_switch sw;
		usb_switch_of(u, &sw);
		enum okvm_usb_dir now;
		if (okvm_usb_switch_get(&sw, &now) == 0)
			u->usb = now, u->usb_known = true;
		/* Follow the toggle from where it is now (no switch at start). */
		enum okvm_usb_dir toggle;
		u->follow_last = -1;
		if (u->link && cfg->follow_toggle && okvm_chip_get_toggle(u->chip, &toggle) == 0) {
			u->follow = true;
			u->follow_last = (int)toggle;
			u->follow_next_ms = mono_ms() + FOLLOW_MS;
		}
	}
	int rc = u->link ? start_hid(u) : 0;
	if (!rc && u->cap) {
		okvm_capture_set_notify(u->cap, on_capture_frame, u);
		rc = okvm_capture_start(u->cap);
		if (rc == -EALREADY)
			rc = 0; /* the virtual unit's screen runs already */
		if (rc && u->link) {
			pthread_mutex_lock(&u->lock);
			u->stop = true;
			pthread_mutex_unlock(&u->lock);
			wake(u);
			pthread_join(u->hid, NULL);
			okvm_link_set_listener(u->link, NULL, NULL);
		}
		if (rc)
			okvm_capture_set_notify(u->cap, NULL, NULL);
	}
	if (rc) {
		close(u->efd); /* the caller still owns link, capture and chip */
		pthread_cond_destroy(&u->cond);
		pthread_mutex_destroy(&u->lock);
		free(u);
		return rc;
	}
	*out = (struct serve_backend){ .link = cfg->link,
				       .capture = cfg->capture,
				       .ops = &ub_ops,
				       .ud = u };
	return 0;
}
