/*
 * DESIGN: the CH9329 link's queue: what waits to be sent, and in which order.
 *
 * Threads: any. Every field of struct link_queue is under its mutex q->mu, and nothing here
 * touches the in-flight side (struct okvm_link outside q, link.c); the only field of the link
 * read here is the atomic dead flag. The enqueue functions (okvm_link_send_*,
 * okvm_link_mouse_*, okvm_link_release_all) take mu, push, drop it, and then either write the
 * frame themselves when the link is idle (link_try_direct(), link.c: it takes the link's lock,
 * then mu, never the other way) or kick the queue's eventfd so the dispatch thread wakes. The dispatch thread takes frames out with
 * queue_pop_next() and hands each HID frame back with queue_hid_done() once it is answered or
 * lost; the queue counts those in between so that okvm_link_pending() sees them.
 *
 * What it owns: the bounded rings (urgent release-all frames, keyboard and media reports,
 * mouse button/wheel changes; -EAGAIN when full), the coalesced mouse motion (the newest
 * unsent absolute position, the summed relative motion), the button state and the latest
 * position the release-all frames need, and the priorities: release-all frames first (they
 * jump the queue and drop what was queued), then keyboard reports (FIFO: full states), media
 * reports, mouse changes, then the pending absolute position and relative motion. The mutex and
 * the eventfd are created and closed here too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/hid/link-private.h"
#include "lib/xalloc.h"

#define URGENT_CAP 8
#define REL_ACC_MAX 1000000

/* ---- bounded rings ---- */

static void
ring_init(struct ring *r, size_t elem, size_t cap)
{
	r->buf = xcalloc(cap, elem);
	r->elem = elem;
	r->cap = cap;
	r->head = r->n = 0;
}

static bool
ring_push(struct ring *r, const void *item)
{
	if (r->n == r->cap)
		return false;
	memcpy(r->buf + ((r->head + r->n) % r->cap) * r->elem, item, r->elem);
	r->n++;
	return true;
}

static void *
ring_peek(struct ring *r)
{
	return r->n ? r->buf + r->head * r->elem : NULL;
}

static bool
ring_pop(struct ring *r, void *out)
{
	if (!r->n)
		return false;
	if (out)
		memcpy(out, r->buf + r->head * r->elem, r->elem);
	r->head = (r->head + 1) % r->cap;
	r->n--;
	return true;
}

/* ---- life cycle ---- */

int
queue_init(struct link_queue *q)
{
	pthread_mutex_init(&q->mu, NULL);
	ring_init(&q->urgent, sizeof(struct okvm_ch9329_frame), URGENT_CAP);
	ring_init(&q->kbd, sizeof(struct okvm_kbd_report), OKVM_LINK_KBD_QUEUE);
	ring_init(&q->media, sizeof(struct okvm_media_report), OKVM_LINK_MEDIA_QUEUE);
	ring_init(&q->mouse, sizeof(struct mouse_ev), OKVM_LINK_MOUSE_QUEUE);
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return q->efd < 0 ? -errno : 0;
}

void
queue_fini(struct link_queue *q)
{
	if (q->efd >= 0)
		close(q->efd);
	free(q->urgent.buf);
	free(q->kbd.buf);
	free(q->media.buf);
	free(q->mouse.buf);
	pthread_mutex_destroy(&q->mu);
}

int
queue_fd(struct link_queue *q)
{
	return q->efd;
}

static void
kick(struct link_queue *q)
{
	uint64_t one = 1;
	ssize_t w = write(q->efd, &one, sizeof(one));
	(void)w; /* EAGAIN: the counter is already non-zero, dispatch will run */
}

void
queue_drain_kicks(struct link_queue *q)
{
	uint64_t v;
	while (read(q->efd, &v, sizeof(v)) > 0)
		;
}

/* ---- enqueue (any thread) ---- */

/* Something was queued: write it from this thread if the link is idle (link.c's direct write),
 * else wake the dispatch thread. */
static void
queued(struct okvm_link *l)
{
	if (!link_try_direct(l))
		kick(&l->q);
}

static int
push_locked(struct okvm_link *l, struct ring *r, const void *item)
{
	if (atomic_load(&l->dead))
		return -ENODEV;
	pthread_mutex_lock(&l->q.mu);
	bool ok = ring_push(r, item);
	pthread_mutex_unlock(&l->q.mu);
	if (!ok)
		return -EAGAIN;
	queued(l);
	return 0;
}

int
okvm_link_send_kbd(struct okvm_link *l, const struct okvm_kbd_report *r)
{
	return push_locked(l, &l->q.kbd, r);
}

int
okvm_link_send_media(struct okvm_link *l, const struct okvm_media_report *r)
{
	if (r->report_id != OKVM_MEDIA_ACPI && r->report_id != OKVM_MEDIA_MULTIMEDIA)
		return -EINVAL;
	if (r->report_id == OKVM_MEDIA_ACPI) {
		pthread_mutex_lock(&l->q.mu);
		l->q.acpi_used = true;
		pthread_mutex_unlock(&l->q.mu);
	}
	return push_locked(l, &l->q.media, r);
}

/* Queue a button/wheel change after the motion that preceded it (mu held). */
static bool
mouse_change_locked(struct link_queue *q, const struct mouse_ev *ev)
{
	size_t need = 1 + (q->abs_pending ? 1 : 0) + (q->rel_dx || q->rel_dy ? 1 : 0);
	if (q->mouse.cap - q->mouse.n < need)
		return false;
	if (q->rel_dx || q->rel_dy) {
		struct mouse_ev m = { .abs = false,
				      .buttons = q->buttons,
				      .dx = q->rel_dx,
				      .dy = q->rel_dy };
		ring_push(&q->mouse, &m);
		q->rel_dx = q->rel_dy = 0;
	}
	/* the pending position goes first unless the change itself lands on it */
	if (q->abs_pending && (!ev->abs || q->abs_x != ev->x || q->abs_y != ev->y)) {
		struct mouse_ev m = { .abs = true,
				      .buttons = q->buttons,
				      .x = q->abs_x,
				      .y = q->abs_y };
		ring_push(&q->mouse, &m);
	}
	q->abs_pending = false;
	ring_push(&q->mouse, ev);
	q->buttons = ev->buttons;
	return true;
}

/* Queue a mouse report. With the buttons unchanged and no wheel it is motion: an absolute one
 * replaces the pending position (coalesced), a relative one adds to the summed motion (dropped
 * past REL_ACC_MAX). Anything else is a change, queued in order after the motion before it. */
static int
mouse_push(struct okvm_link *l, const struct mouse_ev *ev)
{
	struct link_queue *q = &l->q;
	if (atomic_load(&l->dead))
		return -ENODEV;
	bool ok = true;
	pthread_mutex_lock(&q->mu);
	if (ev->abs) {
		q->abs_used = true;
		q->last_x = ev->x;
		q->last_y = ev->y;
	} else {
		q->rel_used = true;
	}
	if (ev->buttons != q->buttons || ev->wheel) {
		ok = mouse_change_locked(q, ev);
	} else if (ev->abs) {
		if (q->abs_pending)
			q->coalesced++;
		q->abs_pending = true;
		q->abs_x = ev->x;
		q->abs_y = ev->y;
	} else if (abs(q->rel_dx + ev->dx) < REL_ACC_MAX && abs(q->rel_dy + ev->dy) < REL_ACC_MAX) {
		q->rel_dx += ev->dx;
		q->rel_dy += ev->dy;
	}
	pthread_mutex_unlock(&q->mu);
	if (!ok)
		return -EAGAIN;
	queued(l);
	return 0;
}

int
okvm_link_mouse_abs(struct okvm_link *l, uint16_t x, uint16_t y, uint8_t buttons, int8_t wheel)
{
	if (x > OKVM_CH9329_ABS_MAX || y > OKVM_CH9329_ABS_MAX)
		return -EINVAL;
	struct mouse_ev ev = { .abs = true, .buttons = buttons, .wheel = wheel, .x = x, .y = y };
	return mouse_push(l, &ev);
}

int
okvm_link_mouse_rel(struct okvm_link *l, int8_t dx, int8_t dy, uint8_t buttons, int8_t wheel)
{
	struct mouse_ev ev = { .abs = false,
			       .buttons = buttons,
			       .wheel = wheel,
			       .dx = dx,
			       .dy = dy };
	return mouse_push(l, &ev);
}

/* Drop everything queued and forget the button state (mu held). */
static void
clear_locked(struct link_queue *q)
{
	q->urgent.n = q->kbd.n = q->media.n = q->mouse.n = 0;
	q->abs_pending = false;
	q->rel_dx = q->rel_dy = 0;
	q->buttons = 0;
}

void
queue_clear(struct link_queue *q)
{
	pthread_mutex_lock(&q->mu);
	clear_locked(q);
	pthread_mutex_unlock(&q->mu);
}

/* The release-all frames: keyboard up, media up, mouse buttons up (mu held). */
static void
queue_release_locked(struct link_queue *q)
{
	struct okvm_ch9329_frame f;
	struct okvm_kbd_report k = { 0 };
	okvm_ch9329_build_kbd(&f, &k);
	ring_push(&q->urgent, &f);
	struct okvm_media_report m = { .report_id = OKVM_MEDIA_MULTIMEDIA };
	okvm_ch9329_build_media(&f, &m);
	ring_push(&q->urgent, &f);
	if (q->acpi_used) {
		m.report_id = OKVM_MEDIA_ACPI;
		okvm_ch9329_build_media(&f, &m);
		ring_push(&q->urgent, &f);
	}
	if (q->rel_used || !q->abs_used) {
		struct okvm_mouse_rel r = { 0 };
		okvm_ch9329_build_rel(&f, &r);
		ring_push(&q->urgent, &f);
	}
	if (q->abs_used) {
		/* at the newest position, so the pointer does not jump */
		struct okvm_mouse_abs a = { .x = q->last_x, .y = q->last_y };
		okvm_ch9329_build_abs(&f, &a);
		ring_push(&q->urgent, &f);
	}
}

int
okvm_link_release_all(struct okvm_link *l)
{
	struct link_queue *q = &l->q;
	if (atomic_load(&l->dead))
		return -ENODEV;
	pthread_mutex_lock(&q->mu);
	clear_locked(q);
	queue_release_locked(q);
	pthread_mutex_unlock(&q->mu);
	queued(l);
	return 0;
}

/* ---- counting ---- */

static size_t
queued_locked(struct link_queue *q)
{
	return q->urgent.n + q->kbd.n + q->media.n + q->mouse.n + (q->abs_pending ? 1 : 0) +
	       (q->rel_dx || q->rel_dy ? 1 : 0);
}

size_t
queue_queued(struct link_queue *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = queued_locked(q);
	pthread_mutex_unlock(&q->mu);
	return n;
}

size_t
okvm_link_pending(struct okvm_link *l)
{
	struct link_queue *q = &l->q;
	pthread_mutex_lock(&q->mu);
	size_t n = queued_locked(q) + q->inflight_hid;
	pthread_mutex_unlock(&q->mu);
	return n;
}

uint64_t
queue_coalesced(struct link_queue *q)
{
	pthread_mutex_lock(&q->mu);
	uint64_t n = q->coalesced;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void
queue_hid_done(struct link_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->inflight_hid--;
	pthread_mutex_unlock(&q->mu);
}

/* ---- choosing the next HID frame (mu held) ---- */

static int8_t
step8(int32_t *v)
{
	int32_t s = *v > 127 ? 127 : *v < -127 ? -127 : *v;
	*v -= s;
	return (int8_t)s;
}

static void
build_mouse_ev(struct link_queue *q, struct okvm_ch9329_frame *f)
{
	struct mouse_ev *ev = ring_peek(&q->mouse);
	if (ev->abs) {
		struct okvm_mouse_abs a = { .buttons = ev->buttons,
					    .x = ev->x,
					    .y = ev->y,
					    .wheel = ev->wheel };
		okvm_ch9329_build_abs(f, &a);
		q->sent_buttons = ev->buttons;
		ring_pop(&q->mouse, NULL);
		return;
	}
	struct okvm_mouse_rel r = { 0 };
	r.dx = step8(&ev->dx);
	r.dy = step8(&ev->dy);
	if (ev->dx || ev->dy) {
		r.buttons = q->sent_buttons; /* the change comes with the last step */
	} else {
		r.buttons = ev->buttons;
		r.wheel = ev->wheel;
		q->sent_buttons = ev->buttons;
		ring_pop(&q->mouse, NULL);
	}
	okvm_ch9329_build_rel(f, &r);
}

/* Take the next HID frame by priority. @return false if nothing is queued. */
static bool
next_hid_locked(struct link_queue *q, struct okvm_ch9329_frame *f, bool *lock_key)
{
	struct okvm_kbd_report k;
	struct okvm_media_report m;
	if (ring_pop(&q->urgent, f))
		return true;
	if (ring_pop(&q->kbd, &k)) {
		okvm_ch9329_build_kbd(f, &k);
		for (int i = 0; i < 6; i++)
			if (k.keys[i] == 0x39 || k.keys[i] == 0x53 || k.keys[i] == 0x47)
				*lock_key = true; /* Caps, Num, Scroll Lock */
		return true;
	}
	if (ring_pop(&q->media, &m)) {
		okvm_ch9329_build_media(f, &m);
		return true;
	}
	if (q->mouse.n) {
		build_mouse_ev(q, f);
		return true;
	}
	if (q->rel_dx || q->rel_dy) {
		struct okvm_mouse_rel r = { .buttons = q->buttons };
		r.dx = step8(&q->rel_dx);
		r.dy = step8(&q->rel_dy);
		okvm_ch9329_build_rel(f, &r);
		q->sent_buttons = q->buttons;
		return true;
	}
	if (q->abs_pending) {
		struct okvm_mouse_abs a = { .buttons = q->buttons, .x = q->abs_x, .y = q->abs_y };
		okvm_ch9329_build_abs(f, &a);
		q->sent_buttons = q->buttons;
		q->abs_pending = false;
		return true;
	}
	return false;
}

bool
queue_pop_next(struct link_queue *q, struct okvm_ch9329_frame *f, bool *lock_key)
{
	*lock_key = false;
	pthread_mutex_lock(&q->mu);
	bool have = next_hid_locked(q, f, lock_key);
	if (have)
		q->inflight_hid++;
	pthread_mutex_unlock(&q->mu);
	return have;
}
