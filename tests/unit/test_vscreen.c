/* The virtual target's screen: what a viewer sees when text is typed (any script the font has,
 * a box for what it lacks), the mouse moves or clicks, combos, media keys or the USB switch are
 * used, LEDs change or the signal goes; and that it renders only when needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <turbojpeg.h>

#include "emu/screen.h"
#include "lib/video/draw.h"
#include "okvm/ch9329.h"
#include "okvm/video.h"
#include "video-testlib.h"

struct pic {
	uint8_t *rgb;
	int w, h;
};

static void
decode(const struct okvm_frame *f, struct pic *p)
{
	tjhandle tj = tjInitDecompress();
	int sub, cs;
	assert_int_equal(tjDecompressHeader3(tj, f->data, f->size, &p->w, &p->h, &sub, &cs), 0);
	p->rgb = malloc((size_t)p->w * (size_t)p->h * 3);
	int rc = tjDecompress2(tj, f->data, f->size, p->rgb, p->w, 0, p->h, TJPF_RGB, 0);
	assert_int_equal(rc, 0);
	tjDestroy(tj);
}

static const uint8_t *
px(const struct pic *p, int x, int y)
{
	return p->rgb + ((size_t)y * (size_t)p->w + (size_t)x) * 3;
}

/* Brightest luma in a rectangle. */
static int
max_luma(const struct pic *p, int x, int y, int w, int h)
{
	int best = 0;
	for (int j = y; j < y + h; j++)
		for (int i = x; i < x + w; i++) {
			const uint8_t *c = px(p, i, j);
			int l = (c[0] * 3 + c[1] * 6 + c[2]) / 10;
			best = l > best ? l : best;
		}
	return best;
}

/* A frame rendered after the current state was set (not a repeat of an older picture). */
static struct okvm_frame *
fresh_frame(struct vscreen *vs)
{
	struct okvm_capture *c = vscreen_capture(vs);
	uint64_t want = vscreen_rendered(vs) + 1;
	struct okvm_frame *f = NULL;
	for (int i = 0; i < 200; i++) {
		okvm_frame_unref(f);
		f = okvm_capture_latest(c);
		if (f && !f->placeholder && vscreen_rendered(vs) >= want) {
			/* the newest frame may still be the previous picture: wait one more */
			uint64_t seq = f->seq;
			okvm_frame_unref(f);
			assert_int_equal(okvm_capture_wait(c, seq, 5000), 0);
			return okvm_capture_latest(c);
		}
		okvm_capture_wait(c, f ? f->seq : 0, 100);
	}
	fail_msg("no fresh frame");
	return NULL;
}

static struct vscreen *
screen(void)
{
	struct vscreen *vs = vscreen_new(1920, 1080, 30);
	okvm_capture_want(vscreen_capture(vs), true);
	return vs;
}

static void
nothing_rendered_without_consumer(void **state)
{
	(void)state;
	struct vscreen *vs = vscreen_new(1920, 1080, 30);
	vscreen_feed_text(vs, "hello");
	assert_int_equal(okvm_capture_wait(vscreen_capture(vs), 0, 300), -ETIMEDOUT);
	assert_int_equal(vscreen_rendered(vs), 0);
	vscreen_free(vs);
}

static void
typed_text_appears(void **state)
{
	(void)state;
	struct vscreen *vs = screen();
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	struct okvm_frame *before = fresh_frame(vs);
	assert_int_equal(before->width, 1920);
	assert_int_equal(before->height, 1080);
	vscreen_feed_text(vs, "hello");
	struct okvm_frame *after = fresh_frame(vs);
	assert_int_equal(after->width, 1920);
	assert_true(after->size != before->size || memcmp(after->data, before->data, after->size));
	struct pic a, b;
	decode(before, &a);
	decode(after, &b);
	/* cells 0-4 of row 0 now hold glyphs; cell 8 is still empty */
	for (int col = 0; col < 5; col++) {
		assert_true(max_luma(&a, L.text_x + col * L.cell_w, L.text_y, L.cell_w, 14) < 60);
		assert_true(max_luma(&b, L.text_x + col * L.cell_w, L.text_y, L.cell_w, 14) > 120);
	}
	assert_true(max_luma(&b, L.text_x + 8 * L.cell_w, L.text_y, L.cell_w, 14) < 60);
	assert_int_equal(vscreen_cell(vs, 0, 0), 'h');
	assert_int_equal(vscreen_cell(vs, 4, 0), 'o');
	free(a.rgb);
	free(b.rgb);
	okvm_frame_unref(before);
	okvm_frame_unref(after);
	vscreen_free(vs);
}

static void
terminal_controls(void **state)
{
	(void)state;
	struct vscreen *vs = vscreen_new(640, 480, 30);
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	vscreen_feed_text(vs, "ab\bc\nx\ty\r"
			      "Z\xc3\xa9");
	assert_int_equal(vscreen_cell(vs, 0, 0), 'a');
	assert_int_equal(vscreen_cell(vs, 1, 0), 'c');
	assert_int_equal(vscreen_cell(vs, 2, 0), 0);
	assert_int_equal(vscreen_cell(vs, 0, 1), 'Z');
	assert_int_equal(vscreen_cell(vs, 1, 1), 0xE9);
	assert_int_equal(vscreen_cell(vs, 8, 1), 'y');
	/* filling the screen scrolls: the first line leaves the top */
	for (int i = 0; i < L.rows; i++)
		vscreen_feed_text(vs, "\n");
	assert_int_equal(vscreen_cell(vs, 0, 0), 0);
	char *line = malloc((size_t)L.cols + 2);
	memset(line, 'w', (size_t)L.cols + 1);
	line[L.cols + 1] = 0;
	vscreen_feed_text(vs, line); /* one more than fits: wraps */
	assert_int_equal(vscreen_cell(vs, 0, L.rows - 1), 'w');
	assert_int_equal(vscreen_cell(vs, 1, L.rows - 1), 0);
	assert_int_equal(vscreen_cell(vs, 0, L.rows - 2), 'w');
	free(line);
	vscreen_free(vs);
}

static void
pointer_follows_the_mouse(void **state)
{
	(void)state;
	struct vscreen *vs = screen();
	vscreen_set_pointer(vs, 2048, 2048); /* pixel (959, 539) */
	struct okvm_frame *f1 = fresh_frame(vs);
	vscreen_set_pointer(vs, 1024, 3072); /* pixel (479, 809) */
	struct okvm_frame *f2 = fresh_frame(vs);
	struct pic a, b;
	decode(f1, &a);
	decode(f2, &b);
	/* inside the arrow just below its tip: white where the pointer is, dark where not */
	assert_true(max_luma(&a, 961, 547, 2, 2) > 180);
	assert_true(max_luma(&b, 961, 547, 2, 2) < 90);
	assert_true(max_luma(&b, 481, 817, 2, 2) > 180);
	assert_true(max_luma(&a, 481, 817, 2, 2) < 90);
	free(a.rgb);
	free(b.rgb);
	okvm_frame_unref(f1);
	okvm_frame_unref(f2);
	vscreen_free(vs);
}

static void
lock_indicators(void **state)
{
	(void)state;
	struct vscreen *vs = screen();
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	vscreen_set_leds(vs, 0x02); /* Caps */
	struct okvm_frame *f = fresh_frame(vs);
	struct pic p;
	decode(f, &p);
	const uint8_t *caps = px(&p, L.led_x[1] + 7, L.led_y + 10);
	const uint8_t *num = px(&p, L.led_x[0] + 7, L.led_y + 10);
	assert_true(caps[1] > 180 && caps[1] > caps[0] + 80); /* lit: green */
	assert_true(num[1] < 110);                            /* unlit: grey */
	free(p.rgb);
	okvm_frame_unref(f);
	vscreen_free(vs);
}

static void
unchanged_picture_repeats_without_rendering(void **state)
{
	(void)state;
	struct vscreen *vs = screen();
	struct okvm_frame *f = fresh_frame(vs);
	uint64_t r0 = vscreen_rendered(vs), seq = f->seq;
	okvm_frame_unref(f);
	usleep(1000000);
	f = okvm_capture_latest(vscreen_capture(vs));
	uint64_t frames = f->seq - seq, renders = vscreen_rendered(vs) - r0;
	okvm_frame_unref(f);
	/* ~30 frames went out; only the clock (once a second) made new pictures */
	assert_true(frames >= 10);
	assert_true(renders <= 3);
	vscreen_free(vs);
}

static bool
placeholder_seen(struct recorder *r, void *ud)
{
	(void)ud;
	return r->n && r->frames[r->n - 1]->placeholder;
}

static bool
real_again(struct recorder *r, void *ud)
{
	(void)ud;
	return r->n && !r->frames[r->n - 1]->placeholder;
}

static void
no_signal_when_the_target_sends_none(void **state)
{
	(void)state;
	struct vscreen *vs = vscreen_new(1280, 720, 30);
	struct recorder r;
	recorder_init(&r, vscreen_capture(vs));
	okvm_capture_want(vscreen_capture(vs), true);
	vscreen_set_signal(vs, false);
	assert_true(recorder_wait(&r, placeholder_seen, NULL, 5000));
	struct okvm_capture_status st;
	okvm_capture_get_status(vscreen_capture(vs), &st);
	assert_false(st.signal);
	struct okvm_frame *ph = r.frames[r.n - 1];
	assert_int_equal(ph->width, 1280);
	vscreen_set_signal(vs, true);
	assert_true(recorder_wait(&r, real_again, NULL, 5000));
	vscreen_free(vs);
	recorder_fini(&r);
}

static void
busy_frame_has_a_realistic_size(void **state)
{
	(void)state;
	struct vscreen *vs = screen();
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	char line[256];
	for (int r = 0; r < L.rows / 2; r++) {
		int n = 0;
		/* a shell session: half the window of 80-column lines of words */
		for (int c = 0; c < 80 && c < L.cols - 1; c++) {
			int v = r * 7 + c * 13;
			line[n++] = v % 9 == 0 ? ' ' : (char)(33 + v % 94);
		}
		line[n++] = '\n';
		line[n] = 0;
		vscreen_feed_text(vs, line);
	}
	struct okvm_frame *f = fresh_frame(vs);
	assert_true(f->size >= 100 * 1024);
	assert_true(f->size <= 300 * 1024);
	okvm_frame_unref(f);
	vscreen_free(vs);
}

/* Mean absolute difference of two same-sized rectangles of two pictures. */
static int
diff(const struct pic *a, int ax, int ay, const struct pic *b, int bx, int by, int w, int h)
{
	long sum = 0;
	for (int j = 0; j < h; j++)
		for (int i = 0; i < w; i++)
			for (int k = 0; k < 3; k++)
				sum += abs(px(a, ax + i, ay + j)[k] - px(b, bx + i, by + j)[k]);
	return (int)(sum / (w * h * 3));
}

static void
scripts_beyond_latin1_draw_their_glyphs(void **state)
{
	(void)state;
	/* what de, ru, gr, il, ge layouts type; U+E000 (private use) is in no font */
	static const uint32_t cps[] = { 0x20AC, 0x416, 0x3A9, 0x5E9, 0x10D0, 0x142, 0x153 };
	size_t n = sizeof(cps) / sizeof(cps[0]);
	for (size_t i = 0; i < n; i++)
		assert_true(font_has_glyph(cps[i]));
	assert_false(font_has_glyph(0xE000));
	assert_false(font_has_glyph(0x1F600));
	struct vscreen *vs = screen();
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	/* "€ЖΩשაłœ" then the box, then the box again */
	vscreen_feed_text(vs, "\xe2\x82\xac\xd0\x96\xce\xa9\xd7\xa9\xe1\x83\x90\xc5\x82\xc5\x93"
			      "\xee\x80\x80\xf0\x9f\x98\x80");
	assert_int_equal(vscreen_cell(vs, 0, 0), 0x20AC);
	struct okvm_frame *f = fresh_frame(vs);
	struct pic p;
	decode(f, &p);
	int box_x = L.text_x + (int)n * L.cell_w, emoji_x = box_x + L.cell_w;
	/* the replacement box: drawn (bright edge), hollow (dark middle), the same for both */
	assert_true(max_luma(&p, box_x + 1, L.text_y + 8, 1, 4) > 120);
	assert_true(max_luma(&p, box_x + 4, L.text_y + 8, 2, 4) < 90);
	assert_true(diff(&p, box_x, L.text_y, &p, emoji_x, L.text_y, L.cell_w, OKVM_FONT_H) < 10);
	/* each glyph is drawn, and is not the box */
	for (size_t i = 0; i < n; i++) {
		int x = L.text_x + (int)i * L.cell_w;
		assert_true(max_luma(&p, x, L.text_y, L.cell_w, OKVM_FONT_H) > 120);
		assert_true(diff(&p, x, L.text_y, &p, box_x, L.text_y, L.cell_w, OKVM_FONT_H) > 16);
	}
	free(p.rgb);
	okvm_frame_unref(f);
	vscreen_free(vs);
}

/* Pointer pixel of chip coordinates on a 1920x1080 screen. */
#define PX(x) ((int)((long)(x)*1919 / 4095))
#define PY(y) ((int)((long)(y)*1079 / 4095))

static bool
is_colour(const struct pic *p, int x, int y, int r, int g, int b)
{
	const uint8_t *c = px(p, x, y);
	return abs(c[0] - r) < 70 && abs(c[1] - g) < 70 && abs(c[2] - b) < 70; /* JPEG */
}

static bool timing_skipped(void);

static void
click_leaves_a_marker_that_fades(void **state)
{
	(void)state;
	if (timing_skipped()) /* f1 must come before the 1 s trace has faded */
		skip();
	struct vscreen *vs = screen();
	vscreen_mouse(vs, 1024, 2048, 0, 0);
	struct okvm_frame *f0 = fresh_frame(vs);
	vscreen_mouse(vs, 1024, 2048, OKVM_BTN_LEFT, 0);
	vscreen_mouse(vs, 1024, 2048, 0, 0);
	vscreen_mouse(vs, 3000, 1000, OKVM_BTN_RIGHT, 0);
	vscreen_mouse(vs, 3000, 1000, 0, 0);
	struct okvm_frame *f1 = fresh_frame(vs);
	usleep((VSCREEN_TRACE_MS + 300) * 1000);
	struct okvm_frame *f2 = fresh_frame(vs);
	struct pic a, b, c;
	decode(f0, &a);
	decode(f1, &b);
	decode(f2, &c);
	int lx = PX(1024) - VSCREEN_CLICK_R, ly = PY(2048); /* the left edge of the ring */
	int rx = PX(3000) - VSCREEN_CLICK_R, ry = PY(1000);
	assert_false(is_colour(&a, lx, ly, 255, 200, 0));
	assert_true(is_colour(&b, lx, ly, 255, 200, 0)); /* left: amber */
	assert_true(is_colour(&b, rx, ry, 255, 70, 70)); /* right: red */
	assert_false(is_colour(&b, rx, ry, 255, 200, 0));
	/* a second later both are gone: the terminal's dark background (left of the pointer) */
	assert_true(max_luma(&b, lx - 4, ly - 20, VSCREEN_CLICK_R + 2, 40) > 150);
	assert_true(max_luma(&c, lx - 4, ly - 20, VSCREEN_CLICK_R + 2, 40) < 60);
	assert_true(max_luma(&c, rx - 4, ry - 20, VSCREEN_CLICK_R + 2, 40) < 60);
	free(a.rgb);
	free(b.rgb);
	free(c.rgb);
	okvm_frame_unref(f0);
	okvm_frame_unref(f1);
	okvm_frame_unref(f2);
	vscreen_free(vs);
}

/* Frames a second and traces that last VSCREEN_TRACE_MS are wall-clock facts: under valgrind
 * (tests/meson.build sets OKVM_UNDER_VALGRIND) a 1080p picture takes longer than a trace shows,
 * so these two run only in the normal and sanitizer runs. */
static bool
timing_skipped(void)
{
	return getenv("OKVM_UNDER_VALGRIND") != NULL;
}

static void
traces_render_while_visible_then_idle(void **state)
{
	(void)state;
	if (timing_skipped())
		skip();
	struct vscreen *vs = screen();
	okvm_frame_unref(fresh_frame(vs));
	uint64_t r0 = vscreen_rendered(vs);
	vscreen_mouse(vs, 2048, 2048, OKVM_BTN_LEFT, 0);
	vscreen_mouse(vs, 2048, 2048, 0, 0);
	usleep(VSCREEN_TRACE_MS * 1000);
	uint64_t r1 = vscreen_rendered(vs);
	usleep(500 * 1000); /* the last fading picture, then nothing */
	uint64_t r2 = vscreen_rendered(vs);
	usleep(1000 * 1000);
	uint64_t r3 = vscreen_rendered(vs);
	/* at 30 fps: a picture per frame while the marker fades, then the clock's one a second */
	assert_true(r1 - r0 >= 8); /* (fewer when the machine is loaded) */
	assert_true(r3 - r2 <= 2);
	vscreen_free(vs);
}

static void
wheel_shows_an_indicator(void **state)
{
	(void)state;
	if (timing_skipped()) /* the trace must still show in the next picture */
		skip();
	struct vscreen *vs = screen();
	vscreen_mouse(vs, 1024, 2048, 0, 0);
	struct okvm_frame *f0 = fresh_frame(vs);
	vscreen_mouse(vs, 1024, 2048, 0, 2);
	vscreen_mouse(vs, 1024, 2048, 0, 1);
	struct okvm_frame *f1 = fresh_frame(vs);
	struct pic a, b;
	decode(f0, &a);
	decode(f1, &b);
	/* a panel right of the pointer with "▲ 3" */
	int x = PX(1024) + 20, y = PY(2048) - 30;
	assert_true(max_luma(&a, x, y, 50, 26) < 60);
	assert_true(max_luma(&b, x + 8, y + 4, 40, 18) > 200);
	assert_true(diff(&a, x, y, &b, x, y, 50, 26) > 8);
	free(a.rgb);
	free(b.rgb);
	okvm_frame_unref(f0);
	okvm_frame_unref(f1);
	vscreen_free(vs);
}

static void
press(struct vscreen *vs, const uint8_t *keys, int n)
{
	for (int i = 0; i < n; i++)
		vscreen_key(vs, keys[i], true);
	for (int i = n - 1; i >= 0; i--)
		vscreen_key(vs, keys[i], false);
}

/* Left border column of a centred "last combo" box holding chars characters, or -1 if none. */
static bool
combo_box(struct vscreen *vs, int chars)
{
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	struct okvm_frame *f = fresh_frame(vs);
	struct pic p;
	decode(f, &p);
	int bw = chars * OKVM_FONT_W * 2 + 48, x = (1920 - bw) / 2, y = L.combo_y + L.combo_h / 2;
	bool ok = max_luma(&p, x, y - 10, 1, 20) > 70 && max_luma(&p, x - 4, y - 10, 2, 20) < 45 &&
		  max_luma(&p, x + 20, L.combo_y + 26, bw - 40, 44) > 200;
	free(p.rgb);
	okvm_frame_unref(f);
	return ok;
}

static void
combos_show_as_last_combo(void **state)
{
	(void)state;
	if (timing_skipped())
		skip();
	struct vscreen *vs = screen();
	assert_false(combo_box(vs, 5));
	/* typing is no combo: Shift+A, AltGr+E (€ on de) */
	press(vs, (const uint8_t[]){ 0xE1, 0x04 }, 2);
	press(vs, (const uint8_t[]){ 0xE6, 0x08 }, 2);
	assert_false(combo_box(vs, 5));
	press(vs, (const uint8_t[]){ 0xE3, 0x15 }, 2); /* Win+R */
	assert_true(combo_box(vs, 5));
	assert_false(combo_box(vs, 15));
	press(vs, (const uint8_t[]){ 0xE0, 0xE2, 0x4C }, 3); /* Ctrl+Alt+Delete */
	assert_true(combo_box(vs, 15));
	usleep((VSCREEN_TRACE_MS + 300) * 1000);
	assert_false(combo_box(vs, 15));
	press(vs, (const uint8_t[]){ 0xE3 }, 1); /* Win alone opens a start menu: "Win" */
	assert_true(combo_box(vs, 3));
	vscreen_free(vs);
}

static void
media_keys_show_an_osd(void **state)
{
	(void)state;
	if (timing_skipped()) /* the trace must still show in the next picture */
		skip();
	struct vscreen *vs = screen();
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	const uint8_t up[3] = { 0x01, 0, 0 }, mute[3] = { 0x04, 0, 0 }, none[3] = { 0 };
	struct okvm_frame *f0 = fresh_frame(vs);
	vscreen_media(vs, OKVM_MEDIA_MULTIMEDIA, up);
	vscreen_media(vs, OKVM_MEDIA_MULTIMEDIA, none);
	struct okvm_frame *f1 = fresh_frame(vs); /* Volume 55% */
	vscreen_media(vs, OKVM_MEDIA_MULTIMEDIA, up);
	vscreen_media(vs, OKVM_MEDIA_MULTIMEDIA, none);
	struct okvm_frame *f2 = fresh_frame(vs); /* Volume 60% */
	vscreen_media(vs, OKVM_MEDIA_MULTIMEDIA, mute);
	struct okvm_frame *f3 = fresh_frame(vs); /* Muted: the bar greys */
	struct pic a, b, c, d;
	decode(f0, &a);
	decode(f1, &b);
	decode(f2, &c);
	decode(f3, &d);
	int bar_x = L.osd_x + 30, bar_y = L.osd_y + 76, bw = L.osd_w - 60;
	assert_true(max_luma(&a, L.osd_x, L.osd_y, L.osd_w, L.osd_h) < 60);
	assert_true(max_luma(&b, L.osd_x + 40, L.osd_y + 12, L.osd_w - 80, 40) > 200); /* label */
	int at57 = bar_x + bw * 57 / 100;
	assert_true(max_luma(&b, bar_x + 4, bar_y, 4, 2) > 200);
	assert_true(max_luma(&b, at57, bar_y, 2, 2) < 110);
	assert_true(max_luma(&c, at57, bar_y, 2, 2) > 200);
	assert_true(max_luma(&d, bar_x + 4, bar_y, 4, 2) < 160);
	assert_true(max_luma(&d, bar_x + 4, bar_y, 4, 2) > 100);
	free(a.rgb);
	free(b.rgb);
	free(c.rgb);
	free(d.rgb);
	okvm_frame_unref(f0);
	okvm_frame_unref(f1);
	okvm_frame_unref(f2);
	okvm_frame_unref(f3);
	vscreen_free(vs);
}

static void
usb_switch_shows_a_notification(void **state)
{
	(void)state;
	if (timing_skipped()) /* the trace must still show in the next picture */
		skip();
	struct vscreen *vs = screen();
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	struct okvm_frame *f0 = fresh_frame(vs);
	vscreen_usb_switch(vs, true);
	struct okvm_frame *f1 = fresh_frame(vs);
	struct pic a, b;
	decode(f0, &a);
	decode(f1, &b);
	int sx = L.note_x + 3, sy = L.note_y + L.note_h / 2;
	assert_false(is_colour(&a, sx, sy, 60, 160, 255));
	assert_true(is_colour(&b, sx, sy, 60, 160, 255)); /* the blue stripe */
	assert_true(max_luma(&b, L.note_x + 20, L.note_y + 8, L.note_w - 30, 18) > 200);
	free(a.rgb);
	free(b.rgb);
	okvm_frame_unref(f0);
	okvm_frame_unref(f1);
	vscreen_free(vs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nothing_rendered_without_consumer),
		cmocka_unit_test(typed_text_appears),
		cmocka_unit_test(terminal_controls),
		cmocka_unit_test(pointer_follows_the_mouse),
		cmocka_unit_test(lock_indicators),
		cmocka_unit_test(unchanged_picture_repeats_without_rendering),
		cmocka_unit_test(no_signal_when_the_target_sends_none),
		cmocka_unit_test(busy_frame_has_a_realistic_size),
		cmocka_unit_test(scripts_beyond_latin1_draw_their_glyphs),
		cmocka_unit_test(click_leaves_a_marker_that_fades),
		cmocka_unit_test(traces_render_while_visible_then_idle),
		cmocka_unit_test(wheel_shows_an_indicator),
		cmocka_unit_test(combos_show_as_last_combo),
		cmocka_unit_test(media_keys_show_an_osd),
		cmocka_unit_test(usb_switch_shows_a_notification),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
