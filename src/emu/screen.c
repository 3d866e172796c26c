/*
 * DESIGN: the virtual target's screen, rendered and JPEG-encoded like an HDMI picture that the
 * MS2109 would send. It shows a desktop with a terminal window holding the characters the target
 * received (the same stream as the emulator's text events), a mouse pointer at the target's
 * pointer position, Num/Caps/Scroll indicators, a frame counter and a clock in a top bar.
 * Setters (any thread) change state under a mutex and mark it dirty; the capture thread
 * (okvm_capture_new_custom) renders at the frame rate only when something changed (or the clock
 * ticked to the next second), encodes with libjpeg-turbo at quality 80, and otherwise repeats the
 * last JPEG without copying it. No consumer, no rendering (the capture thread stops the source).
 * The desktop background is drawn once; it carries a little deterministic grain so that frame
 * sizes resemble a real desktop's rather than a flat test card's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <turbojpeg.h>

#include "emu/screen.h"
#include "lib/video/capture.h"
#include "lib/video/draw.h"
#include "lib/xalloc.h"

#define BAR_H 32
#define MARGIN 40
#define QUALITY 80

struct vscreen {
	struct okvm_capture_ops ops;
	struct okvm_capture *cap;
	int w, h, fps;

	pthread_mutex_t lock; /* guards the state below */
	uint32_t *cells;      /* rows x cols code points; 0 = blank */
	int cols, rows, cur_col, cur_row;
	int px, py; /* pointer, pixels */
	uint8_t leds;
	bool signal, dirty;
	uint64_t rendered;

	/* capture thread only */
	uint32_t *snap; /* copy of cells taken under the lock for rendering */
	struct okvm_canvas bg, cv;
	int win_x, win_y, win_w, win_h;
	tjhandle tj;
	struct okvm_frame *last;
	time_t last_clock;
	uint64_t deadline;
};

/* ---- state (any thread) ---- */

static void
scroll(struct vscreen *vs)
{
	memmove(vs->cells, vs->cells + vs->cols,
		(size_t)(vs->rows - 1) * (size_t)vs->cols * sizeof(*vs->cells));
	memset(vs->cells + (size_t)(vs->rows - 1) * (size_t)vs->cols, 0,
	       (size_t)vs->cols * sizeof(*vs->cells));
	vs->cur_row = vs->rows - 1;
}

static void
newline(struct vscreen *vs)
{
	vs->cur_col = 0;
	if (++vs->cur_row >= vs->rows)
		scroll(vs);
}

static void
put(struct vscreen *vs, uint32_t cp)
{
	switch (cp) {
	case '\n': newline(vs); return;
	case '\r': vs->cur_col = 0; return;
	case '\b':
		if (vs->cur_col > 0)
			vs->cells[vs->cur_row * vs->cols + --vs->cur_col] = 0;
		return;
	case '\t':
		vs->cur_col = (vs->cur_col / 8 + 1) * 8;
		if (vs->cur_col >= vs->cols)
			newline(vs);
		return;
	}
	if (cp < 32 || cp == 127)
		return;
	if (vs->cur_col >= vs->cols)
		newline(vs);
	vs->cells[vs->cur_row * vs->cols + vs->cur_col++] = cp;
}

void
vscreen_feed_text(struct vscreen *vs, const char *utf8)
{
	pthread_mutex_lock(&vs->lock);
	while (*utf8)
		put(vs, utf8_take(&utf8));
	vs->dirty = true;
	pthread_mutex_unlock(&vs->lock);
}

void
vscreen_set_pointer(struct vscreen *vs, int x, int y)
{
	x = x < 0 ? 0 : x > 4095 ? 4095 : x;
	y = y < 0 ? 0 : y > 4095 ? 4095 : y;
	pthread_mutex_lock(&vs->lock);
	vs->px = (int)((long)x * (vs->w - 1) / 4095);
	vs->py = (int)((long)y * (vs->h - 1) / 4095);
	vs->dirty = true;
	pthread_mutex_unlock(&vs->lock);
}

void
vscreen_set_leds(struct vscreen *vs, uint8_t leds)
{
	pthread_mutex_lock(&vs->lock);
	vs->dirty |= vs->leds != leds;
	vs->leds = leds;
	pthread_mutex_unlock(&vs->lock);
}

void
vscreen_set_signal(struct vscreen *vs, bool on)
{
	pthread_mutex_lock(&vs->lock);
	vs->dirty |= vs->signal != on;
	vs->signal = on;
	pthread_mutex_unlock(&vs->lock);
}

struct okvm_capture *
vscreen_capture(struct vscreen *vs)
{
	return vs->cap;
}

uint64_t
vscreen_rendered(struct vscreen *vs)
{
	pthread_mutex_lock(&vs->lock);
	uint64_t n = vs->rendered;
	pthread_mutex_unlock(&vs->lock);
	return n;
}

/* ---- drawing (capture thread) ---- */

static void
draw_background(struct vscreen *vs)
{
	struct okvm_canvas *c = &vs->bg;
	uint32_t seed = 0x2545F491u;
	for (int y = 0; y < c->height; y++) {
		uint8_t *row = c->rgb + (size_t)y * (size_t)c->width * 3;
		for (int x = 0; x < c->width; x++) {
			seed = seed * 1664525u + 1013904223u;
			int grain = (int)(seed >> 28) - 8; /* -8..7 */
			row[3 * x] = (uint8_t)(30 + 40 * y / c->height + grain);
			row[3 * x + 1] = (uint8_t)(60 + 50 * x / c->width + grain);
			row[3 * x + 2] = (uint8_t)(110 + 60 * y / c->height + grain);
		}
	}
	canvas_fill(c, 0, 0, c->width, BAR_H, OKVM_RGB(32, 32, 36));
	canvas_text(c, 12, (BAR_H - OKVM_FONT_H) / 2, "okvm virtual target",
		    OKVM_RGB(220, 220, 220), 1);
	/* the terminal window: title bar + body */
	canvas_fill(c, vs->win_x - 2, vs->win_y - 26, vs->win_w + 4, vs->win_h + 28,
		    OKVM_RGB(70, 70, 78));
	canvas_text(c, vs->win_x + 6, vs->win_y - 23, "Terminal", OKVM_RGB(235, 235, 235), 1);
	canvas_fill(c, vs->win_x, vs->win_y, vs->win_w, vs->win_h, OKVM_RGB(16, 18, 20));
}

static int
led_x(const struct vscreen *vs, int i)
{
	int x = vs->w - 12 - 50 * OKVM_FONT_W;
	if (x < 220)
		x = 220;
	static const int off[3] = { 0, 70, 150 };
	return x + off[i];
}

void
vscreen_get_layout(struct vscreen *vs, struct vscreen_layout *out)
{
	out->text_x = vs->win_x + 4;
	out->text_y = vs->win_y + 4;
	out->cell_w = OKVM_FONT_W;
	out->cols = vs->cols;
	out->rows = vs->rows;
	for (int i = 0; i < 3; i++)
		out->led_x[i] = led_x(vs, i);
	out->led_y = 6;
}

uint32_t
vscreen_cell(struct vscreen *vs, int col, int row)
{
	if (col < 0 || row < 0 || col >= vs->cols || row >= vs->rows)
		return 0;
	pthread_mutex_lock(&vs->lock);
	uint32_t cp = vs->cells[row * vs->cols + col];
	pthread_mutex_unlock(&vs->lock);
	return cp;
}

static void
draw_led(struct okvm_canvas *c, int x, const char *name, bool on)
{
	uint32_t box = on ? OKVM_RGB(60, 220, 90) : OKVM_RGB(70, 70, 70);
	canvas_fill(c, x, 6, 14, BAR_H - 12, box);
	canvas_text(c, x + 20, (BAR_H - OKVM_FONT_H) / 2, name,
		    on ? OKVM_RGB(240, 240, 240) : OKVM_RGB(140, 140, 140), 1);
}

static void
draw_bar(struct vscreen *vs, uint8_t leds, uint64_t frame_no, time_t now)
{
	struct okvm_canvas *c = &vs->cv;
	int x = led_x(vs, 0);
	draw_led(c, x, "Num", leds & 1);
	draw_led(c, led_x(vs, 1), "Caps", leds & 2);
	draw_led(c, led_x(vs, 2), "Scroll", leds & 4);
	struct tm tm;
	localtime_r(&now, &tm);
	char text[64];
	snprintf(text, sizeof(text), "frame %-8llu %02d:%02d:%02d", (unsigned long long)frame_no,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
	canvas_text(c, x + 250, (BAR_H - OKVM_FONT_H) / 2, text, OKVM_RGB(230, 230, 230), 1);
}

static void
draw_console(struct vscreen *vs, const uint32_t *cells, int cur_col, int cur_row)
{
	struct okvm_canvas *c = &vs->cv;
	for (int r = 0; r < vs->rows; r++)
		for (int col = 0; col < vs->cols; col++) {
			uint32_t cp = cells[r * vs->cols + col];
			if (cp && cp != ' ')
				canvas_glyph(c, vs->win_x + 4 + col * OKVM_FONT_W,
					     vs->win_y + 4 + r * OKVM_FONT_H, cp,
					     OKVM_RGB(200, 230, 200), 1);
		}
	canvas_fill(c, vs->win_x + 4 + cur_col * OKVM_FONT_W,
		    vs->win_y + 4 + cur_row * OKVM_FONT_H + OKVM_FONT_H - 4, OKVM_FONT_W, 2,
		    OKVM_RGB(200, 230, 200));
}

/* A classic arrow: white inside, black outline, tip at (x, y). */
static void
draw_pointer(struct okvm_canvas *c, int x, int y)
{
	for (int dy = 0; dy < 19; dy++) {
		int wdt = dy < 12 ? dy * 7 / 10 + 1 : 12 - dy / 2;
		if (dy >= 12 && wdt < 1)
			break;
		canvas_fill(c, x, y + dy, wdt + 1, 1, OKVM_RGB(0, 0, 0));
		if (wdt > 1 && dy > 1 && dy < 17)
			canvas_fill(c, x + 1, y + dy, wdt - 1, 1, OKVM_RGB(255, 255, 255));
	}
}

/* Render the current state and publish it; returns 0 or -errno. */
static int
render(struct vscreen *vs, struct okvm_capture *c, time_t now)
{
	size_t ncell = (size_t)vs->rows * (size_t)vs->cols;
	uint32_t *cells = vs->snap;
	pthread_mutex_lock(&vs->lock);
	memcpy(cells, vs->cells, ncell * sizeof(*cells));
	int cur_col = vs->cur_col, cur_row = vs->cur_row, px = vs->px, py = vs->py;
	uint8_t leds = vs->leds;
	vs->dirty = false;
	uint64_t n = ++vs->rendered;
	pthread_mutex_unlock(&vs->lock);

	memcpy(vs->cv.rgb, vs->bg.rgb, (size_t)vs->w * (size_t)vs->h * 3);
	draw_console(vs, cells, cur_col < vs->cols ? cur_col : vs->cols - 1, cur_row);
	draw_bar(vs, leds, n, now);
	draw_pointer(&vs->cv, px, py);

	size_t cap = canvas_jpeg_bound(&vs->cv);
	struct okvm_frame *f = okvm_capture_frame_alloc(c, cap);
	long size = canvas_encode(vs->tj, &vs->cv, QUALITY, okvm_frame_buffer(f, NULL), &cap);
	if (size < 0) {
		okvm_frame_unref(f);
		return (int)size;
	}
	f->size = (size_t)size;
	f->width = vs->w;
	f->height = vs->h;
	okvm_frame_unref(vs->last);
	vs->last = okvm_frame_ref(f);
	okvm_capture_publish(c, f);
	return 0;
}

static int
vs_start(void *ud, struct okvm_capture *c)
{
	struct vscreen *vs = ud;
	(void)c;
	if (!vs->tj && !(vs->tj = tjInitCompress()))
		return -ENOMEM;
	pthread_mutex_lock(&vs->lock);
	vs->dirty = true; /* a new consumer gets a fresh picture */
	pthread_mutex_unlock(&vs->lock);
	vs->deadline = okvm_now_us();
	return 0;
}

static int
vs_grab(void *ud, struct okvm_capture *c, int timeout_ms)
{
	struct vscreen *vs = ud;
	pthread_mutex_lock(&vs->lock);
	bool signal = vs->signal, dirty = vs->dirty;
	pthread_mutex_unlock(&vs->lock);
	if (!signal) {
		if (okvm_capture_sleep_until(c, okvm_now_us() + (uint64_t)timeout_ms * 1000) < 0)
			return -EINTR;
		vs->deadline = okvm_now_us();
		return -ETIMEDOUT;
	}
	if (okvm_capture_sleep_until(c, vs->deadline) < 0)
		return -EINTR;
	uint64_t now_us = okvm_now_us();
	vs->deadline += 1000000u / (unsigned)vs->fps;
	if (vs->deadline < now_us)
		vs->deadline = now_us; /* fell behind: do not burst to catch up */
	time_t now = time(NULL);
	if (dirty || now != vs->last_clock || !vs->last) {
		vs->last_clock = now;
		return render(vs, c, now);
	}
	okvm_capture_publish_repeat(c, vs->last, now_us);
	return 0;
}

static void
vs_stop(void *ud, struct okvm_capture *c)
{
	struct vscreen *vs = ud;
	(void)c;
	okvm_frame_unref(vs->last);
	vs->last = NULL;
}

static const struct okvm_capture_ops vscreen_ops = {
	.name = "virtual screen",
	.start = vs_start,
	.grab = vs_grab,
	.stop = vs_stop,
};

static int
clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

struct vscreen *
vscreen_new(int w, int h, int fps)
{
	struct vscreen *vs = xcalloc(1, sizeof(*vs));
	vs->w = clamp(w, 64, 4096) & ~1;
	vs->h = clamp(h, 64, 2160) & ~1;
	vs->fps = clamp(fps, 1, 120);
	vs->win_x = MARGIN;
	vs->win_y = BAR_H + MARGIN / 2 + 26;
	vs->win_w = vs->w - 2 * MARGIN;
	vs->win_h = vs->h - vs->win_y - MARGIN;
	vs->cols = (vs->win_w - 8) / OKVM_FONT_W;
	vs->rows = (vs->win_h - 8) / OKVM_FONT_H;
	if (vs->cols < 1 || vs->rows < 1)
		vs->cols = vs->rows = 1;
	vs->cells = xcalloc((size_t)vs->cols * (size_t)vs->rows, sizeof(*vs->cells));
	vs->snap = xcalloc((size_t)vs->cols * (size_t)vs->rows, sizeof(*vs->snap));
	vs->px = vs->w / 2;
	vs->py = vs->h / 2;
	vs->signal = true;
	vs->dirty = true;
	pthread_mutex_init(&vs->lock, NULL);
	canvas_init(&vs->bg, vs->w, vs->h);
	canvas_init(&vs->cv, vs->w, vs->h);
	draw_background(vs);
	vs->ops = vscreen_ops;
	vs->cap = okvm_capture_new_custom(&vs->ops, vs);
	capture_set_size_hint(vs->cap, vs->w, vs->h);
	if (okvm_capture_start(vs->cap) < 0)
		abort();
	return vs;
}

struct vscreen *
vscreen_new_mode(const char *mode)
{
	int w = VSCREEN_DEFAULT_W, h = VSCREEN_DEFAULT_H, fps = 0;
	if (mode && okvm_video_parse_mode(mode, &w, &h, &fps) < 0)
		return NULL;
	return vscreen_new(w, h, fps ? fps : VSCREEN_DEFAULT_FPS);
}

void
vscreen_free(struct vscreen *vs)
{
	if (!vs)
		return;
	okvm_capture_free(vs->cap); /* joins the thread, which calls vs_stop */
	okvm_frame_unref(vs->last);
	if (vs->tj)
		tjDestroy(vs->tj);
	canvas_fini(&vs->bg);
	canvas_fini(&vs->cv);
	free(vs->cells);
	free(vs->snap);
	pthread_mutex_destroy(&vs->lock);
	free(vs);
}
