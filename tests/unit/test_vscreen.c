/* The virtual target's screen: what a viewer sees when text is typed, the mouse moves, LEDs
 * change or the signal goes; and that it renders only when needed. */
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
