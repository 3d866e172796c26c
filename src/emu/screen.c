/*
 * DESIGN: the virtual target's screen, rendered and JPEG-encoded like an HDMI picture that the
 * MS2109 would send. It shows a desktop with a terminal window holding the characters the target
 * received (the same stream as the emulator's text events), a mouse pointer at the target's
 * pointer position, Num/Caps/Scroll indicators, a frame counter and a clock in a top bar.
 * Setters (any thread) change state under a mutex and mark it dirty; the capture thread
 * (okvm_capture_new_custom) renders at the frame rate only when something changed (or the clock
 * ticked to the next second), encodes with libjpeg-turbo at quality 80, and otherwise repeats the
 * last JPEG without copying it. No consumer, no rendering (the capture thread stops the source).
 * The desktop background is drawn when a viewer comes (dropped with the canvas and the
 * compressor when the last one goes, so an unwatched screen holds no pixels); it carries a little
 * deterministic grain so that frame sizes resemble a real desktop's rather than a flat test card's.
 * Input that types nothing leaves traces, as a screen-recording tool would show them: a ring per
 * mouse button going down (where it went down), a wheel indicator by the pointer, a "last combo"
 * box for keys pressed with Ctrl/Alt/Win, an on-screen display for media keys (the volume keys
 * move a level bar) and a notification when the USB switch moves. Each shows VSCREEN_TRACE_MS,
 * fading at the end; while one is visible every frame is rendered (the fade), and the frame after
 * the last one has gone the screen is idle again. Text is drawn one cell per code point with the
 * built-in font (DejaVu: Latin, Greek, Cyrillic, Hebrew, Arabic, Georgian, Armenian, symbols; no
 * CJK, no shaping or bidi); a code point the font lacks draws as a hollow box.
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
#include "okvm/ch9329.h"
#include "okvm/keymap.h"

#define BAR_H 32
#define MARGIN 40
#define QUALITY 80
#define TRACE_US ((uint64_t)VSCREEN_TRACE_MS * 1000u)
#define FADE_US ((uint64_t)VSCREEN_FADE_MS * 1000u)
#define MAX_CLICKS 8
#define COMBO_H 76
#define OSD_W 360
#define OSD_H 100
#define NOTE_W 380
#define NOTE_H 56

/* What input left on the screen; t is when (okvm_now_us), 0 = nothing. */
struct vs_click {
	uint64_t t;
	int x, y;
	uint8_t button; /* one OKVM_BTN_* bit */
};

struct vs_note {
	uint64_t t;
	int level; /* media OSD: a bar 0..100, -1 none; level_off: the bar greyed (muted) */
	bool level_off;
	char text[48];
};

struct vs_traces {
	struct vs_click click[MAX_CLICKS];
	uint64_t wheel_t;
	int wheel_x, wheel_y, wheel_sum;
	struct vs_note combo, media, usb;
};

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
	uint64_t draw_ns, encode_ns; /* spent drawing and encoding, all pictures so far */
	struct vs_traces tr;
	bool tracing;             /* some trace may still be visible: render every frame */
	uint8_t buttons, mods;    /* held mouse buttons, modifier keys (OKVM_MOD_* bits) */
	uint8_t solo;             /* a Win key went down with nothing else yet (its usage) */
	uint8_t media_bits[2][3]; /* last ACPI (0) and multimedia (1) reports */
	int volume;               /* what the volume keys set, 0..100 */
	bool muted;

	/* capture thread only */
	uint32_t *snap; /* copy of cells taken under the lock for rendering */
	struct vs_traces tr_snap;
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

/* Under the lock. */
static void
move_pointer(struct vscreen *vs, int x, int y)
{
	x = x < 0 ? 0 : x > 4095 ? 4095 : x;
	y = y < 0 ? 0 : y > 4095 ? 4095 : y;
	vs->px = (int)((long)x * (vs->w - 1) / 4095);
	vs->py = (int)((long)y * (vs->h - 1) / 4095);
	vs->dirty = true;
}

void
vscreen_set_pointer(struct vscreen *vs, int x, int y)
{
	pthread_mutex_lock(&vs->lock);
	move_pointer(vs, x, y);
	pthread_mutex_unlock(&vs->lock);
}

void
vscreen_mouse(struct vscreen *vs, int x, int y, uint8_t buttons, int wheel)
{
	uint64_t now = okvm_now_us();
	pthread_mutex_lock(&vs->lock);
	move_pointer(vs, x, y);
	uint8_t pressed = buttons & ~vs->buttons & OKVM_BTN_MASK;
	vs->buttons = buttons;
	for (uint8_t bit = 1; pressed; bit <<= 1) {
		if (!(pressed & bit))
			continue;
		pressed &= ~bit;
		struct vs_click *slot = &vs->tr.click[0];
		for (int i = 1; i < MAX_CLICKS; i++) /* a free slot, or the oldest */
			if (vs->tr.click[i].t < slot->t)
				slot = &vs->tr.click[i];
		*slot = (struct vs_click){ .t = now, .x = vs->px, .y = vs->py, .button = bit };
		vs->tracing = true;
	}
	if (wheel) {
		bool same = vs->tr.wheel_t && now - vs->tr.wheel_t < TRACE_US &&
			    (wheel > 0) == (vs->tr.wheel_sum > 0);
		vs->tr.wheel_sum = same ? vs->tr.wheel_sum + wheel : wheel;
		vs->tr.wheel_t = now;
		vs->tr.wheel_x = vs->px;
		vs->tr.wheel_y = vs->py;
		vs->tracing = true;
	}
	pthread_mutex_unlock(&vs->lock);
}

/* Under the lock. */
static void
note(struct vscreen *vs, struct vs_note *n, const char *text, int level, bool level_off)
{
	n->t = okvm_now_us();
	n->level = level;
	n->level_off = level_off;
	snprintf(n->text, sizeof(n->text), "%s", text);
	vs->tracing = true;
	vs->dirty = true;
}

/* The name on the key cap (US positions, as `okvm key` names them). */
static const char *
key_name(uint8_t usage, char buf[16])
{
	if (usage >= 0x04 && usage <= 0x1D) {
		snprintf(buf, 16, "%c", 'A' + usage - 0x04);
		return buf;
	}
	if (usage >= 0x1E && usage <= 0x27) {
		snprintf(buf, 16, "%c", usage == 0x27 ? '0' : '1' + usage - 0x1E);
		return buf;
	}
	const char *code;
	struct okvm_key k;
	for (size_t i = 0; okvm_key_table_get(i, &code, NULL, &k); i++)
		if (k.kind == OKVM_KEY_KBD && k.usage == usage && code)
			return code;
	snprintf(buf, 16, "key 0x%02X", usage);
	return buf;
}

#define MOD_CTRL (OKVM_MOD_LCTRL | OKVM_MOD_RCTRL)
#define MOD_SHIFT (OKVM_MOD_LSHIFT | OKVM_MOD_RSHIFT)
#define MOD_WIN (OKVM_MOD_LGUI | OKVM_MOD_RGUI)

static void
show_combo(struct vscreen *vs, const char *key)
{
	static const struct {
		uint8_t mask;
		const char *name;
	} mods[] = { { MOD_CTRL, "Ctrl" },
		     { MOD_SHIFT, "Shift" },
		     { OKVM_MOD_LALT, "Alt" },
		     { OKVM_MOD_RALT, "AltGr" },
		     { MOD_WIN, "Win" } };
	char text[48] = "";
	size_t n = 0;
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++)
		if (vs->mods & mods[i].mask)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s+", mods[i].name);
	if (*key)
		snprintf(text + n, sizeof(text) - n, "%s", key);
	else if (n)
		text[n - 1] = 0; /* Win alone: no '+' */
	note(vs, &vs->tr.combo, text, -1, false);
}

void
vscreen_key(struct vscreen *vs, uint8_t usage, bool down)
{
	pthread_mutex_lock(&vs->lock);
	if (usage >= 0xE0 && usage <= 0xE7) {
		uint8_t bit = (uint8_t)(1u << (usage - 0xE0));
		if (down) {
			vs->mods |= bit;
			vs->solo = bit & MOD_WIN ? usage : 0;
		} else {
			if (usage == vs->solo) /* Win pressed and released alone */
				show_combo(vs, "");
			vs->mods &= (uint8_t)~bit;
			vs->solo = 0;
		}
	} else if (down) {
		vs->solo = 0;
		if (vs->mods & (MOD_CTRL | OKVM_MOD_LALT | MOD_WIN)) {
			char buf[16];
			show_combo(vs, key_name(usage, buf));
		}
	}
	pthread_mutex_unlock(&vs->lock);
}

static const char *const media_names[3][8] = {
	{ "Volume up", "Volume down", "Mute", "Play/Pause", "Next track", "Previous track", "Stop",
	  "Eject" },
	{ "Mail", "Search", "Favorites", "Home page", "Back", "Forward", "Stop loading",
	  "Refresh" },
	{ "Media player", "Explorer", "Calculator", "Screen saver", "My computer", "Minimize",
	  "Record", "Rewind" },
};
static const char *const acpi_names[3] = { "Power", "Sleep", "Wake up" };

void
vscreen_media(struct vscreen *vs, uint8_t id, const uint8_t bits[3])
{
	if (id != OKVM_MEDIA_ACPI && id != OKVM_MEDIA_MULTIMEDIA)
		return;
	int nbytes = id == OKVM_MEDIA_ACPI ? 1 : 3;
	pthread_mutex_lock(&vs->lock);
	uint8_t *prev = vs->media_bits[id == OKVM_MEDIA_MULTIMEDIA];
	for (int b = 0; b < nbytes; b++) {
		uint8_t pressed = bits[b] & ~prev[b];
		prev[b] = bits[b];
		for (int i = 0; i < 8; i++) {
			if (!(pressed & (1u << i)))
				continue;
			if (id == OKVM_MEDIA_ACPI) {
				if (i < 3)
					note(vs, &vs->tr.media, acpi_names[i], -1, false);
				continue;
			}
			char text[32];
			if (b == 0 && i <= 2) { /* the volume keys move a level, as a desktop's */
				if (i == 2)
					vs->muted = !vs->muted;
				else
					vs->muted = false;
				vs->volume += i == 0 ? 5 : i == 1 ? -5 : 0;
				vs->volume = vs->volume < 0     ? 0
					     : vs->volume > 100 ? 100
								: vs->volume;
				if (vs->muted)
					snprintf(text, sizeof(text), "Muted");
				else
					snprintf(text, sizeof(text), "Volume %d%%", vs->volume);
				note(vs, &vs->tr.media, text, vs->volume, vs->muted);
			} else {
				note(vs, &vs->tr.media, media_names[b][i], -1, false);
			}
		}
	}
	pthread_mutex_unlock(&vs->lock);
}

void
vscreen_usb_switch(struct vscreen *vs, bool to_target)
{
	pthread_mutex_lock(&vs->lock);
	note(vs, &vs->tr.usb, to_target ? "USB stick: to target" : "USB stick: to host", -1, false);
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

void
vscreen_get_timing(struct vscreen *vs, uint64_t *draw_ns, uint64_t *encode_ns)
{
	pthread_mutex_lock(&vs->lock);
	*draw_ns = vs->draw_ns;
	*encode_ns = vs->encode_ns;
	pthread_mutex_unlock(&vs->lock);
}

/* ---- drawing (capture thread) ---- */

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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
	out->combo_h = COMBO_H;
	out->combo_y = vs->h - MARGIN - 40 - COMBO_H;
	out->osd_w = OSD_W;
	out->osd_h = OSD_H;
	out->osd_x = (vs->w - OSD_W) / 2;
	out->osd_y = vs->h * 2 / 3 - OSD_H / 2; /* above the combo box on small screens */
	if (out->osd_y > out->combo_y - OSD_H - 10)
		out->osd_y = out->combo_y - OSD_H - 10;
	out->note_w = NOTE_W;
	out->note_h = NOTE_H;
	out->note_x = vs->w - 12 - NOTE_W;
	out->note_y = BAR_H + 10;
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

/* How visible a trace from time t is at now: 255, fading to 0 over the last FADE_US. */
static unsigned
trace_alpha(uint64_t t, uint64_t now)
{
	if (!t || now - t >= TRACE_US)
		return 0;
	uint64_t left = TRACE_US - (now - t);
	return left >= FADE_US ? 255 : (unsigned)(255 * left / FADE_US);
}

/* Forget traces that have faded; true if any is left. Under the lock. */
static bool
prune_traces(struct vs_traces *tr, uint64_t now)
{
	bool any = false;
	for (int i = 0; i < MAX_CLICKS; i++) {
		if (!trace_alpha(tr->click[i].t, now))
			tr->click[i].t = 0;
		any |= tr->click[i].t != 0;
	}
	if (!trace_alpha(tr->wheel_t, now))
		tr->wheel_t = 0;
	any |= tr->wheel_t != 0;
	struct vs_note *notes[] = { &tr->combo, &tr->media, &tr->usb };
	for (int i = 0; i < 3; i++) {
		if (!trace_alpha(notes[i]->t, now))
			notes[i]->t = 0;
		any |= notes[i]->t != 0;
	}
	return any;
}

static uint32_t
button_colour(uint8_t bit, const char **label)
{
	switch (bit) {
	case OKVM_BTN_LEFT: *label = "L"; return OKVM_RGB(255, 200, 0);
	case OKVM_BTN_RIGHT: *label = "R"; return OKVM_RGB(255, 70, 70);
	case OKVM_BTN_MIDDLE: *label = "M"; return OKVM_RGB(70, 200, 255);
	case OKVM_BTN_BACK: *label = "B"; return OKVM_RGB(190, 120, 255);
	default: *label = "F"; return OKVM_RGB(110, 240, 110);
	}
}

/* A dark translucent panel, as desktops draw their on-screen displays. */
static void
panel(struct okvm_canvas *c, int x, int y, int w, int h, unsigned a)
{
	canvas_fill_alpha(c, x, y, w, h, OKVM_RGB(18, 18, 22), a * 215 / 255);
	canvas_fill_alpha(c, x, y, w, 1, OKVM_RGB(120, 120, 130), a);
	canvas_fill_alpha(c, x, y + h - 1, w, 1, OKVM_RGB(120, 120, 130), a);
	canvas_fill_alpha(c, x, y + 1, 1, h - 2, OKVM_RGB(120, 120, 130), a);
	canvas_fill_alpha(c, x + w - 1, y + 1, 1, h - 2, OKVM_RGB(120, 120, 130), a);
}

static void
draw_traces(struct vscreen *vs, const struct vs_traces *tr, uint64_t now)
{
	struct okvm_canvas *c = &vs->cv;
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	for (int i = 0; i < MAX_CLICKS; i++) {
		const struct vs_click *k = &tr->click[i];
		unsigned a = trace_alpha(k->t, now);
		if (!a)
			continue;
		const char *label;
		uint32_t col = button_colour(k->button, &label);
		int r = VSCREEN_CLICK_R;
		canvas_ring(c, k->x, k->y, 0, r - 3, col, a / 4);
		canvas_ring(c, k->x, k->y, r + 3, r + 4, OKVM_RGB(0, 0, 0), a / 2);
		canvas_ring(c, k->x, k->y, r - 2, r + 2, col, a);
		canvas_text_alpha(c, k->x - r - OKVM_FONT_W, k->y - r - OKVM_FONT_H + 4, label, col,
				  1, a);
	}
	unsigned a = trace_alpha(tr->wheel_t, now);
	if (a) {
		char text[24];
		int n = tr->wheel_sum < 0 ? -tr->wheel_sum : tr->wheel_sum;
		snprintf(text, sizeof(text), "%s %d", tr->wheel_sum > 0 ? "\u25B2" : "\u25BC", n);
		int x = tr->wheel_x + 20, y = tr->wheel_y - 30;
		panel(c, x, y, (text_cells(text) + 2) * OKVM_FONT_W, OKVM_FONT_H + 6, a);
		canvas_text_alpha(c, x + OKVM_FONT_W, y + 3, text, OKVM_RGB(255, 255, 255), 1, a);
	}
	if ((a = trace_alpha(tr->combo.t, now))) {
		int tw = text_cells(tr->combo.text) * OKVM_FONT_W * 2, bw = tw + 48;
		int x = (vs->w - bw) / 2, y = L.combo_y;
		panel(c, x, y, bw, L.combo_h, a);
		canvas_text_alpha(c, x + 10, y + 6, "last combo", OKVM_RGB(160, 160, 170), 1, a);
		canvas_text_alpha(c, x + 24, y + 28, tr->combo.text, OKVM_RGB(255, 255, 255), 2, a);
	}
	if ((a = trace_alpha(tr->media.t, now))) {
		int x = L.osd_x, y = L.osd_y;
		panel(c, x, y, L.osd_w, L.osd_h, a);
		int tw = text_cells(tr->media.text) * OKVM_FONT_W * 2;
		canvas_text_alpha(c, x + (L.osd_w - tw) / 2, y + 12, tr->media.text,
				  OKVM_RGB(255, 255, 255), 2, a);
		if (tr->media.level >= 0) {
			int bw = L.osd_w - 60;
			canvas_fill_alpha(c, x + 30, y + 70, bw, 12, OKVM_RGB(70, 70, 78), a);
			canvas_fill_alpha(c, x + 30, y + 70, bw * tr->media.level / 100, 12,
					  tr->media.level_off ? OKVM_RGB(130, 130, 130)
							      : OKVM_RGB(240, 240, 240),
					  a);
		}
	}
	if ((a = trace_alpha(tr->usb.t, now))) {
		int x = L.note_x, y = L.note_y;
		panel(c, x, y, L.note_w, L.note_h, a);
		canvas_fill_alpha(c, x + 1, y + 1, 6, L.note_h - 2, OKVM_RGB(60, 160, 255), a);
		canvas_text_alpha(c, x + 20, y + 8, tr->usb.text, OKVM_RGB(255, 255, 255), 1, a);
		canvas_text_alpha(c, x + 20, y + 8 + OKVM_FONT_H, "the switchable USB-A port",
				  OKVM_RGB(170, 170, 180), 1, a);
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
	uint64_t now_us = okvm_now_us();
	vs->tracing = prune_traces(&vs->tr, now_us);
	vs->tr_snap = vs->tr;
	vs->dirty = false;
	uint64_t n = ++vs->rendered;
	pthread_mutex_unlock(&vs->lock);

	uint64_t t0 = now_ns();
	memcpy(vs->cv.rgb, vs->bg.rgb, (size_t)vs->w * (size_t)vs->h * 3);
	draw_console(vs, cells, cur_col < vs->cols ? cur_col : vs->cols - 1, cur_row);
	draw_bar(vs, leds, n, now);
	draw_traces(vs, &vs->tr_snap, now_us);
	draw_pointer(&vs->cv, px, py);

	uint64_t t1 = now_ns();
	size_t cap = canvas_jpeg_bound(&vs->cv);
	struct okvm_frame *f = okvm_capture_frame_alloc(c, cap);
	long size = canvas_encode(vs->tj, &vs->cv, QUALITY, okvm_frame_buffer(f, NULL), &cap);
	if (size < 0) {
		okvm_frame_unref(f);
		return (int)size;
	}
	uint64_t t2 = now_ns();
	pthread_mutex_lock(&vs->lock);
	vs->draw_ns += t1 - t0;
	vs->encode_ns += t2 - t1;
	pthread_mutex_unlock(&vs->lock);
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
	if (!vs->cv.rgb)
		canvas_init(&vs->cv, vs->w, vs->h);
	if (!vs->bg.rgb) {
		canvas_init(&vs->bg, vs->w, vs->h);
		draw_background(vs); /* ~10 ms at 1080p */
	}
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
	bool signal = vs->signal, dirty = vs->dirty || vs->tracing; /* traces fade frame by frame */
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
	/* Nobody watches: the background, the canvas frames are drawn on (w x h x 3 each) and the
	 * compressor's buffers go until the next viewer (the capture then trims the heap). */
	canvas_fini(&vs->bg);
	canvas_fini(&vs->cv);
	if (vs->tj)
		tjDestroy(vs->tj);
	vs->tj = NULL;
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
	vs->volume = 50;
	pthread_mutex_init(&vs->lock, NULL);
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
