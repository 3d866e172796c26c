/*
 * DESIGN: the generic capture thread and its newest-frame slot.
 * One thread ("okvm-capture", SIGINT/SIGTERM blocked) per capture drives a source through
 * okvm_capture_ops: start() when somebody wants frames, grab() in a loop, stop() when nobody
 * does, so an unwatched unit does no capture work. Published frames go into a one-frame slot
 * under a mutex: a newer frame replaces an older one, and consumers take a reference to the
 * newest (okvm_capture_latest) or wait for one (okvm_capture_wait); the source never waits for
 * a consumer. When the source has no device or no signal, this file publishes a placeholder
 * picture once a second that says so (ustreamer's blank screens), so a viewer always sees why.
 * What it does not do: decode, convert, or know anything about V4L2.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/video/capture.h"
#include "lib/video/draw.h"
#include "lib/video/frame.h"
#include "okvm/log.h"
#include "lib/thread.h"
#include "lib/xalloc.h"

#define RETRY_US 1000000       /* reopen a missing device once a second */
#define PLACEHOLDER_US 1000000 /* placeholder frames once a second */
#define GRAB_TIMEOUT_MS 1000   /* no frame for this long = no signal */

enum ph_kind { PH_NONE, PH_NO_SIGNAL, PH_NO_DEVICE };

#define FPS_PAUSE_US 2000000u /* frames this far apart start a new fps window */
#define FPS_FIRST_US 250000u  /* a partial window gives a figure after this long */

struct okvm_capture {
	const struct okvm_capture_ops *ops;
	void *ud;
	struct okvm_frame_pool *pool;
	pthread_t thread;
	bool started;
	int wake_fd;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	struct okvm_frame *latest;
	bool latest_taken;
	uint64_t seq;
	int want;
	bool quit;
	void (*notify)(void *ud);
	void *notify_ud;
	struct okvm_capture_status st;
	uint64_t fps_t0, fps_n, last_real_us;
	int hint_w, hint_h;

	/* capture thread only */
	struct okvm_frame *ph_frame;
	enum ph_kind ph_kind;
	char ph_detail[200];
	uint64_t ph_last_us;
};

uint64_t
okvm_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct okvm_capture *
okvm_capture_new_custom(const struct okvm_capture_ops *ops, void *ud)
{
	struct okvm_capture *c = xcalloc(1, sizeof(*c));
	c->ops = ops;
	c->ud = ud;
	c->pool = frame_pool_new();
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0)
		abort();
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->st.device = true;
	c->hint_w = 1920;
	c->hint_h = 1080;
	return c;
}

static void
wake(struct okvm_capture *c)
{
	uint64_t one = 1;
	ssize_t r = write(c->wake_fd, &one, sizeof(one));
	(void)r; /* EAGAIN: the counter is already non-zero, which is all we need */
}

static void
drain_wake(struct okvm_capture *c)
{
	uint64_t v;
	ssize_t r = read(c->wake_fd, &v, sizeof(v));
	(void)r;
}

int
okvm_capture_wake_fd(struct okvm_capture *c)
{
	return c->wake_fd;
}

int
okvm_capture_sleep_until(struct okvm_capture *c, uint64_t deadline_us)
{
	uint64_t now = okvm_now_us();
	int ms = deadline_us > now ? (int)((deadline_us - now + 999) / 1000) : 0;
	struct pollfd p = { .fd = c->wake_fd, .events = POLLIN };
	int r = poll(&p, 1, ms);
	return r > 0 ? -EINTR : 0;
}

void
okvm_capture_want(struct okvm_capture *c, bool want)
{
	pthread_mutex_lock(&c->lock);
	c->want += want ? 1 : -1;
	if (c->want < 0)
		c->want = 0;
	pthread_mutex_unlock(&c->lock);
	wake(c);
}

void
okvm_capture_set_notify(struct okvm_capture *c, void (*fn)(void *ud), void *ud)
{
	pthread_mutex_lock(&c->lock);
	c->notify = fn;
	c->notify_ud = ud;
	pthread_mutex_unlock(&c->lock);
}

void
capture_set_size_hint(struct okvm_capture *c, int width, int height)
{
	pthread_mutex_lock(&c->lock);
	c->hint_w = width;
	c->hint_h = height;
	pthread_mutex_unlock(&c->lock);
}

struct okvm_frame *
okvm_capture_latest(struct okvm_capture *c)
{
	pthread_mutex_lock(&c->lock);
	struct okvm_frame *f = c->latest ? okvm_frame_ref(c->latest) : NULL;
	c->latest_taken = true;
	pthread_mutex_unlock(&c->lock);
	return f;
}

int
okvm_capture_wait(struct okvm_capture *c, uint64_t after_seq, int timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	if (timeout_ms >= 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	while (c->seq <= after_seq && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&c->cond, &c->lock);
		else if (pthread_cond_timedwait(&c->cond, &c->lock, &dl) == ETIMEDOUT)
			rc = c->seq > after_seq ? 0 : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void
okvm_capture_get_status(struct okvm_capture *c, struct okvm_capture_status *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	if (okvm_now_us() - c->last_real_us > 2 * 1000000u)
		out->fps = 0;
	pthread_mutex_unlock(&c->lock);
}

void
okvm_capture_count_drop(struct okvm_capture *c)
{
	pthread_mutex_lock(&c->lock);
	c->st.dropped++;
	pthread_mutex_unlock(&c->lock);
}

struct okvm_frame *
okvm_capture_frame_alloc(struct okvm_capture *c, size_t size)
{
	return frame_pool_alloc(c->pool, size);
}

static void
count_real(struct okvm_capture *c, const struct okvm_frame *f)
{
	c->st.signal = true;
	c->st.device = true;
	c->st.frames++;
	c->st.width = f->width;
	c->st.height = f->height;
	/* Frames again after a pause (nobody wanted them, or no signal): a new window, or the
	 * first figure would spread a handful of frames over the whole pause (0.1-3 fps). */
	if (c->last_real_us && f->ts_us - c->last_real_us > FPS_PAUSE_US)
		c->fps_t0 = c->fps_n = 0;
	c->last_real_us = f->ts_us;
	c->fps_n++;
	if (!c->fps_t0)
		c->fps_t0 = f->ts_us;
	uint64_t span = f->ts_us - c->fps_t0;
	if (span >= 1000000u) {
		c->st.fps = (double)c->fps_n * 1e6 / (double)span;
		c->fps_t0 = f->ts_us;
		c->fps_n = 0;
	} else if (span >= FPS_FIRST_US && c->fps_n >= 3) {
		/* the first second of a window: the intervals seen so far */
		c->st.fps = (double)(c->fps_n - 1) * 1e6 / (double)span;
	}
}

void
okvm_capture_publish(struct okvm_capture *c, struct okvm_frame *f)
{
	if (!f->ts_us)
		f->ts_us = okvm_now_us();
	pthread_mutex_lock(&c->lock);
	f->seq = ++c->seq;
	struct okvm_frame *old = c->latest;
	if (old && !c->latest_taken && !old->placeholder)
		c->st.dropped++;
	c->latest = f;
	c->latest_taken = false;
	if (!f->placeholder)
		count_real(c, f);
	void (*fn)(void *) = c->notify;
	void *ud = c->notify_ud;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	okvm_frame_unref(old);
	if (fn)
		fn(ud);
}

int
okvm_capture_publish_jpeg(struct okvm_capture *c, const uint8_t *jpeg, size_t size, uint64_t ts_us,
			  bool placeholder)
{
	int w, h;
	if (okvm_jpeg_size(jpeg, size, &w, &h) < 0)
		return -EBADMSG;
	struct okvm_frame *f = okvm_capture_frame_alloc(c, size);
	memcpy(okvm_frame_buffer(f, NULL), jpeg, size);
	f->size = size;
	f->width = w;
	f->height = h;
	f->ts_us = ts_us;
	f->placeholder = placeholder;
	okvm_capture_publish(c, f);
	return 0;
}

void
okvm_capture_publish_repeat(struct okvm_capture *c, struct okvm_frame *prev, uint64_t ts_us)
{
	struct okvm_frame *f = frame_pool_repeat(c->pool, prev);
	f->ts_us = ts_us;
	okvm_capture_publish(c, f);
}

/* ---- placeholders ---- */

static void
placeholder(struct okvm_capture *c, enum ph_kind kind, const char *detail)
{
	uint64_t now = okvm_now_us();
	if (kind == c->ph_kind && !strcmp(detail, c->ph_detail) && c->ph_frame) {
		if (now - c->ph_last_us < PLACEHOLDER_US)
			return;
		okvm_capture_publish_repeat(c, c->ph_frame, now);
		c->ph_last_us = now;
		return;
	}
	pthread_mutex_lock(&c->lock);
	int w = c->st.width ? c->st.width : c->hint_w, h = c->st.height ? c->st.height : c->hint_h;
	pthread_mutex_unlock(&c->lock);
	uint8_t *jpeg;
	const char *title = kind == PH_NO_SIGNAL ? "NO SIGNAL" : "NO CAPTURE DEVICE";
	long n = placeholder_jpeg(w, h, title, detail, &jpeg);
	if (n < 0)
		return;
	okvm_frame_unref(c->ph_frame);
	c->ph_frame = okvm_capture_frame_alloc(c, (size_t)n);
	memcpy(okvm_frame_buffer(c->ph_frame, NULL), jpeg, (size_t)n);
	free(jpeg);
	c->ph_frame->size = (size_t)n;
	c->ph_frame->width = w;
	c->ph_frame->height = h;
	c->ph_frame->placeholder = true;
	c->ph_kind = kind;
	snprintf(c->ph_detail, sizeof(c->ph_detail), "%s", detail);
	okvm_capture_publish_repeat(c, c->ph_frame, now);
	c->ph_last_us = now;
}

static void
set_state(struct okvm_capture *c, bool device, bool signal)
{
	pthread_mutex_lock(&c->lock);
	bool changed = c->st.device != device || c->st.signal != signal;
	c->st.device = device;
	c->st.signal = signal;
	if (!signal)
		c->st.fps = 0;
	pthread_mutex_unlock(&c->lock);
	if (changed)
		okvm_log(OKVM_LOG_INFO, "%s: %s", c->ops->name,
			 !device  ? "no device"
			 : signal ? "signal"
				  : "no signal");
}

/* ---- the thread ---- */

struct run {
	bool running;
	uint64_t next_try;
	int last_err;
};

static bool
wanted(struct okvm_capture *c, bool *quit)
{
	pthread_mutex_lock(&c->lock);
	*quit = c->quit;
	bool w = c->want > 0;
	pthread_mutex_unlock(&c->lock);
	return w;
}

/* Nobody watches: the pool's spare frames go, and the C library gives the heap's free pages
 * (the source's buffers, this thread's arena) back to the system. */
static void
stop_source(struct okvm_capture *c, struct run *r)
{
	if (r->running) {
		if (c->ops->stop)
			c->ops->stop(c->ud, c);
		frame_pool_trim(c->pool);
#ifdef __GLIBC__
		malloc_trim(0);
#endif
	}
	r->running = false;
}

static void
try_start(struct okvm_capture *c, struct run *r)
{
	uint64_t now = okvm_now_us();
	if (now < r->next_try) {
		okvm_capture_sleep_until(c, r->next_try);
		return;
	}
	int rc = c->ops->start ? c->ops->start(c->ud, c) : 0;
	if (rc == 0) {
		r->running = true;
		r->last_err = 0;
		set_state(c, true, true);
		return;
	}
	if (rc != r->last_err)
		okvm_log(OKVM_LOG_INFO, "%s: %s", c->ops->name, video_strerror(rc));
	r->last_err = rc;
	r->next_try = now + RETRY_US;
	set_state(c, false, false);
	char detail[200];
	snprintf(detail, sizeof(detail), "%s: %s", c->ops->name, video_strerror(rc));
	placeholder(c, PH_NO_DEVICE, detail);
}

static void
grab_once(struct okvm_capture *c, struct run *r)
{
	int rc = c->ops->grab(c->ud, c, GRAB_TIMEOUT_MS);
	if (rc == 0 || rc == -EAGAIN || rc == -EINTR)
		return;
	if (rc == -ETIMEDOUT) {
		set_state(c, true, false);
		char detail[200];
		snprintf(detail, sizeof(detail), "%s: no frames (HDMI cable? target asleep?)",
			 c->ops->name);
		placeholder(c, PH_NO_SIGNAL, detail);
		return;
	}
	okvm_log(rc == -ENODEV ? OKVM_LOG_WARN : OKVM_LOG_ERROR, "%s: %s", c->ops->name,
		 rc == -ENODEV ? "device unplugged" : video_strerror(rc));
	stop_source(c, r);
	r->next_try = okvm_now_us() + (rc == -ENODEV ? 0 : RETRY_US);
	r->last_err = rc;
	set_state(c, false, false);
}

static void *
thread_main(void *arg)
{
	struct okvm_capture *c = arg;
	struct run r = { 0 };
	bool quit = false;
	for (;;) {
		drain_wake(c);
		bool w = wanted(c, &quit);
		if (quit)
			break;
		if (!w) {
			stop_source(c, &r);
			struct pollfd p = { .fd = c->wake_fd, .events = POLLIN };
			poll(&p, 1, -1);
		} else if (!r.running) {
			try_start(c, &r);
		} else {
			grab_once(c, &r);
		}
	}
	stop_source(c, &r);
	return NULL;
}

int
okvm_capture_start(struct okvm_capture *c)
{
	if (c->started)
		return -EALREADY;
	int rc = thread_start(&c->thread, "okvm-capture", thread_main, c);
	if (rc)
		return rc;
	c->started = true;
	return 0;
}

void
okvm_capture_free(struct okvm_capture *c)
{
	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->lock);
		c->quit = true;
		pthread_mutex_unlock(&c->lock);
		wake(c);
		pthread_join(c->thread, NULL);
	}
	if (c->ops->destroy)
		c->ops->destroy(c->ud);
	okvm_frame_unref(c->latest);
	okvm_frame_unref(c->ph_frame);
	frame_pool_unref(c->pool);
	close(c->wake_fd);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
