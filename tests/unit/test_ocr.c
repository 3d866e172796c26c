/* OCR and screen waits (src/auto/ocr.c, wait.c): regions clipped to the frame, bad input and
 * missing languages refused with what to install, text read back with boxes in frame pixels,
 * and the waits on a fake backend whose screen changes on cue: change, stillness, a needle
 * image, text, timeouts and cancelling. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <png.h>
#include <turbojpeg.h>

#include "auto/ocr.h"
#include "auto/wait.h"
#include "lib/video/draw.h"
#include "okvm/video.h"
#include "serve/backend.h"

/* ---- pictures ---- */

struct pic {
	struct okvm_canvas cv;
	uint8_t *jpeg;
	size_t size;
};

/* A dark screen with light lines of text (as a console), 10 x 20 cells from (x0, y0). */
static void
pic_text(struct pic *p, int w, int h, int x0, int y0, const char *const *lines)
{
	canvas_init(&p->cv, w, h);
	canvas_fill(&p->cv, 0, 0, w, h, OKVM_RGB(16, 18, 22));
	for (int i = 0; lines && lines[i]; i++)
		canvas_text(&p->cv, x0, y0 + i * OKVM_FONT_H, lines[i], OKVM_RGB(220, 220, 220), 1);
}

static void
pic_encode(struct pic *p)
{
	tjhandle tj = tjInitCompress();
	size_t cap = canvas_jpeg_bound(&p->cv);
	p->jpeg = malloc(cap);
	long n = canvas_encode(tj, &p->cv, 90, p->jpeg, &cap);
	assert_true(n > 0);
	p->size = (size_t)n;
	tjDestroy(tj);
}

static void
pic_free(struct pic *p)
{
	canvas_fini(&p->cv);
	free(p->jpeg);
}

/* ---- regions ---- */

static void
test_clip(void **state)
{
	(void)state;
	struct auto_rect r;
	assert_true(auto_rect_clip(NULL, 640, 480, &r));
	assert_true(r.x == 0 && r.y == 0 && r.w == 640 && r.h == 480);
	assert_true(auto_rect_clip(&(struct auto_rect){ -50, -20, 100, 100 }, 640, 480, &r));
	assert_true(r.x == 0 && r.y == 0 && r.w == 50 && r.h == 80);
	assert_true(auto_rect_clip(&(struct auto_rect){ 600, 400, 100, 100 }, 640, 480, &r));
	assert_true(r.x == 600 && r.y == 400 && r.w == 40 && r.h == 80);
	assert_true(auto_rect_clip(&(struct auto_rect){ 10, 10, INT_MAX, INT_MAX }, 640, 480, &r));
	assert_true(r.x == 10 && r.y == 10 && r.w == 630 && r.h == 470);
	/* nothing left */
	assert_false(auto_rect_clip(&(struct auto_rect){ 640, 0, 10, 10 }, 640, 480, &r));
	assert_false(auto_rect_clip(&(struct auto_rect){ -20, 0, 20, 10 }, 640, 480, &r));
	assert_false(auto_rect_clip(&(struct auto_rect){ 0, 0, 0, 10 }, 640, 480, &r));
	assert_false(auto_rect_clip(&(struct auto_rect){ 0, 0, 10, -1 }, 640, 480, &r));
	assert_false(
		auto_rect_clip(&(struct auto_rect){ INT_MAX, INT_MAX, INT_MAX, 5 }, 640, 480, &r));
	assert_int_equal(r.w, 0);
}

/* ---- languages ---- */

static void
test_lang(void **state)
{
	(void)state;
	char why[512];
	assert_int_equal(auto_ocr_lang_check("eng", why, sizeof(why)), 0);
	assert_int_equal(auto_ocr_lang_check(NULL, why, sizeof(why)), 0);
	static const char *const bad[] = { "",         "Eng",    "eng+",    "+eng",
					   "eng++deu", "../eng", "eng deu", "e/n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(auto_ocr_lang_check(bad[i], why, sizeof(why)), -EINVAL);
		assert_non_null(strstr(why, "not a tesseract language list"));
	}
	assert_int_equal(auto_ocr_lang_check("zzz", why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "install the Debian package tesseract-ocr-zzz"));
	assert_int_equal(auto_ocr_lang_check("eng+chi_sim", why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "tesseract-ocr-chi-sim"));
	struct auto_ocr *o = (struct auto_ocr *)1;
	assert_int_equal(auto_ocr_new("zzz", &o), -ENOENT);
	assert_null(o);
	/* TESSDATA_PREFIX, as tesseract reads it: a folder without eng */
	char dir[] = "/tmp/okvm-ocr-XXXXXX";
	assert_non_null(mkdtemp(dir));
	setenv("TESSDATA_PREFIX", dir, 1);
	assert_int_equal(auto_ocr_lang_check("eng", why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "tesseract-ocr-eng"));
	unsetenv("TESSDATA_PREFIX");
	rmdir(dir);
}

/* ---- reading ---- */

static struct auto_ocr *ocr; /* one for the file: loading eng takes a while */

static void
test_bad_jpeg(void **state)
{
	(void)state;
	struct auto_ocr_result r;
	assert_int_equal(auto_ocr_jpeg(ocr, NULL, 0, NULL, &r), -EINVAL);
	assert_null(r.text);
	static const uint8_t junk[64] = { 0xff, 0xd8, 0xff, 0x00, 1, 2, 3 };
	assert_int_equal(auto_ocr_jpeg(ocr, junk, sizeof(junk), NULL, &r), -EINVAL);
	auto_ocr_result_free(&r); /* zeroed: nothing to free, nothing breaks */
	struct pic p;
	pic_text(&p, 320, 240, 8, 8, NULL);
	pic_encode(&p);
	assert_int_equal(
		auto_ocr_jpeg(ocr, p.jpeg, p.size, &(struct auto_rect){ 320, 0, 5, 5 }, &r),
		-EINVAL);
	assert_int_equal(auto_ocr_jpeg(ocr, p.jpeg, p.size, &(struct auto_rect){ 0, 0, 0, 5 }, &r),
			 -EINVAL);
	/* a truncated JPEG: what decodes is read, or refused; never a crash */
	int rc = auto_ocr_jpeg(ocr, p.jpeg, p.size / 3, NULL, &r);
	assert_true(rc == 0 || rc == -EINVAL);
	auto_ocr_result_free(&r);
	/* an empty screen: no words */
	assert_int_equal(auto_ocr_jpeg(ocr, p.jpeg, p.size, NULL, &r), 0);
	assert_int_equal(r.n_words, 0);
	assert_string_equal(r.text, "");
	assert_true(r.width == 320 && r.height == 240);
	auto_ocr_result_free(&r);
	pic_free(&p);
}

static const struct auto_ocr_word *
word(const struct auto_ocr_result *r, const char *text)
{
	for (size_t i = 0; i < r->n_words; i++)
		if (!strcmp(r->words[i].text, text))
			return &r->words[i];
	return NULL;
}

static void
test_read(void **state)
{
	(void)state;
	static const char *const lines[] = { "login: root", "Password: 0 1 2 x86_64 done", NULL };
	struct pic p;
	pic_text(&p, 640, 360, 40, 100, lines);
	pic_encode(&p);
	struct auto_ocr_result r;
	assert_int_equal(auto_ocr_jpeg(ocr, p.jpeg, p.size, NULL, &r), 0);
	assert_string_equal(r.text, "login: root\nPassword: 0 1 2 x86_64 done");
	const struct auto_ocr_word *w = word(&r, "root");
	assert_non_null(w);
	/* "root" is cells 7..10 of the first line: x 110..150, y 100..120 */
	assert_in_range(w->box.x, 108, 114);
	assert_in_range(w->box.x + w->box.w, 146, 152);
	assert_in_range(w->box.y, 100, 110);
	assert_in_range(w->box.y + w->box.h, 110, 122);
	assert_true(w->conf >= 50 && w->conf <= 100);
	char *json = auto_ocr_result_json(&r);
	assert_non_null(strstr(json, "\"text\":\"root\",\"x\":"));
	assert_non_null(strstr(json, "\"width\":640,\"height\":360"));
	free(json);
	auto_ocr_result_free(&r);
	/* a region: only its words, boxes still in frame pixels, any alignment to the JPEG's
	 * 16-pixel blocks */
	assert_int_equal(
		auto_ocr_jpeg(ocr, p.jpeg, p.size, &(struct auto_rect){ 103, 95, 60, 30 }, &r), 0);
	assert_string_equal(r.text, "root");
	assert_in_range(r.words[0].box.x, 108, 114);
	auto_ocr_result_free(&r);
	/* cancelled: nothing read; cleared: reads again */
	atomic_bool stop = true;
	auto_ocr_set_cancel(ocr, &stop);
	assert_int_equal(auto_ocr_jpeg(ocr, p.jpeg, p.size, NULL, &r), -ECANCELED);
	assert_null(r.text);
	auto_ocr_set_cancel(ocr, NULL);
	assert_int_equal(auto_ocr_jpeg(ocr, p.jpeg, p.size, NULL, &r), 0);
	assert_int_equal(r.n_words, 8);
	auto_ocr_result_free(&r);
	pic_free(&p);
}

/* A light screen with a dark pane: both kinds of text keep their spaces. */
static void
test_mixed(void **state)
{
	(void)state;
	struct pic p;
	canvas_init(&p.cv, 800, 300);
	canvas_fill(&p.cv, 0, 0, 800, 300, OKVM_RGB(236, 238, 240));
	canvas_text(&p.cv, 30, 40, "Select a disk to install on: 0 1 2", OKVM_RGB(30, 30, 30), 1);
	canvas_fill(&p.cv, 20, 120, 760, 120, OKVM_RGB(20, 22, 26));
	canvas_text(&p.cv, 30, 150, "user@host:~$ ls -l a b c", OKVM_RGB(225, 225, 225), 1);
	canvas_text(&p.cv, 30, 190, "total 0 x86_64", OKVM_RGB(225, 225, 225), 1);
	pic_encode(&p);
	struct auto_ocr_result r;
	assert_int_equal(auto_ocr_jpeg(ocr, p.jpeg, p.size, NULL, &r), 0);
	assert_string_equal(r.text, "Select a disk to install on: 0 1 2\nuser@host:~$ ls -l a b c\n"
				    "total 0 x86_64");
	auto_ocr_result_free(&r);
	pic_free(&p);
}

/* ---- a backend whose screen changes on cue ---- */

struct fake {
	struct okvm_frame frames[4];
	int (*pick)(struct fake *f); /* which frame the next look sees */
	int looks;                   /* newest_frame calls */
	int refs;                    /* references out */
	uint64_t seq;
	atomic_bool *cancel_at_look; /* set true at look cancel_look */
	int cancel_look;
};

static struct okvm_frame *
fake_newest(void *ud)
{
	struct fake *f = ud;
	f->looks++;
	if (f->cancel_at_look && f->looks == f->cancel_look)
		atomic_store(f->cancel_at_look, true);
	struct okvm_frame *fr = &f->frames[f->pick(f)];
	fr->seq = ++f->seq;
	f->refs++;
	return fr;
}

static void
fake_unref(void *ud, struct okvm_frame *fr)
{
	struct fake *f = ud;
	(void)fr;
	f->refs--;
}

static const struct serve_backend_ops fake_ops = {
	.newest_frame = fake_newest,
	.frame_unref = fake_unref,
};

static void
fake_set(struct fake *f, int i, const struct pic *p)
{
	f->frames[i] = (struct okvm_frame){ .data = p->jpeg,
					    .size = p->size,
					    .width = p->cv.width,
					    .height = p->cv.height };
}

static int
pick_0_then_1(struct fake *f)
{
	return f->looks < 4 ? 0 : 1;
}

static int
pick_0(struct fake *f)
{
	(void)f;
	return 0;
}

static int
pick_alternate(struct fake *f)
{
	return f->looks % 2;
}

/* 0, a frame that does not decode (a capture sends one now and then), then 1 */
static int
pick_0_broken_1(struct fake *f)
{
	return f->looks < 3 ? 0 : f->looks < 6 ? 2 : 1;
}

static const uint8_t broken[] = { 0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 1, 2, 3, 0xff, 0xd9 };

/* 0 for 5 looks, then 1 */
static int
pick_late_1(struct fake *f)
{
	return f->looks < 6 ? 0 : 1;
}

static void
test_wait_change_still(void **state)
{
	(void)state;
	static const char *const a[] = { "first screen", NULL };
	static const char *const b[] = { "second screen with more text on it", "and a line", NULL };
	struct pic pa, pb;
	pic_text(&pa, 320, 240, 10, 10, a);
	pic_text(&pb, 320, 240, 10, 10, b);
	pic_encode(&pa);
	pic_encode(&pb);
	struct fake f = { .pick = pick_0_then_1 };
	fake_set(&f, 0, &pa);
	fake_set(&f, 1, &pb);
	struct serve_backend be = { .ops = &fake_ops, .ud = &f };
	assert_int_equal(auto_wait_change(&be, 5000, NULL), 0);
	assert_int_equal(f.looks, 4); /* the first look that saw b */
	assert_int_equal(f.refs, 0);
	/* a broken frame in between is skipped, not an error, and not a change */
	f.frames[2] = (struct okvm_frame){ .data = broken,
					   .size = sizeof(broken),
					   .width = 320,
					   .height = 240 };
	f.looks = 0;
	f.pick = pick_0_broken_1;
	assert_int_equal(auto_wait_change(&be, 5000, NULL), 0);
	assert_int_equal(f.looks, 6);
	f.looks = 0;
	assert_int_equal(auto_wait_still(&be, 100, 5000, NULL), 0);
	assert_true(f.looks > 6); /* still only once b had been there 100 ms */
	f = (struct fake){ .pick = pick_0, .frames = { f.frames[0], f.frames[1], f.frames[2] } };
	assert_int_equal(auto_wait_change(&be, 300, NULL), -ETIMEDOUT);
	assert_int_equal(f.refs, 0);
	/* still: a screen that does not change is still after still_ms */
	f.looks = 0;
	assert_int_equal(auto_wait_still(&be, 200, 5000, NULL), 0);
	assert_int_equal(f.refs, 0);
	/* one that keeps changing never is */
	f.pick = pick_alternate;
	assert_int_equal(auto_wait_still(&be, 200, 600, NULL), -ETIMEDOUT);
	/* cancelled while waiting */
	atomic_bool cancel = false;
	f.looks = 0;
	f.cancel_at_look = &cancel;
	f.cancel_look = 3;
	assert_int_equal(auto_wait_still(&be, 200, 5000, &cancel), -ECANCELED);
	assert_int_equal(auto_wait_change(&be, 5000, &cancel), -ECANCELED);
	assert_int_equal(f.refs, 0);
	pic_free(&pa);
	pic_free(&pb);
}

static void
write_png(const char *path, const struct okvm_canvas *cv, int x, int y, int w, int h)
{
	uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
	for (int j = 0; j < h; j++)
		memcpy(rgb + (size_t)j * (size_t)w * 3,
		       cv->rgb + ((size_t)(y + j) * (size_t)cv->width + (size_t)x) * 3,
		       (size_t)w * 3);
	png_image img;
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	img.width = (png_uint_32)w;
	img.height = (png_uint_32)h;
	img.format = PNG_FORMAT_RGB;
	assert_true(png_image_write_to_file(&img, path, 0, rgb, 0, NULL));
	free(rgb);
}

static void
test_wait_screen(void **state)
{
	(void)state;
	static const char *const a[] = { "Installing...", NULL };
	static const char *const b[] = { "Installing...", "", "      [ OK ]  Reboot now", NULL };
	struct pic pa, pb;
	pic_text(&pa, 480, 270, 30, 40, a);
	pic_text(&pb, 480, 270, 30, 40, b);
	canvas_fill(&pb.cv, 300, 150, 60, 40, OKVM_RGB(40, 120, 220)); /* a button */
	canvas_text(&pb.cv, 310, 160, "OK", OKVM_RGB(255, 255, 255), 1);
	pic_encode(&pa);
	pic_encode(&pb);
	char needle[] = "/tmp/okvm-needle-XXXXXX.png";
	int fd = mkstemps(needle, 4);
	assert_true(fd >= 0);
	close(fd);
	write_png(needle, &pb.cv, 296, 146, 68, 48); /* the button and a margin */
	struct fake f = { .pick = pick_late_1 };
	fake_set(&f, 0, &pa);
	fake_set(&f, 1, &pb);
	struct serve_backend be = { .ops = &fake_ops, .ud = &f };
	struct auto_rect where = { 0 };
	assert_int_equal(auto_wait_screen(&be, needle, 0.95, NULL, 5000, NULL, &where), 0);
	assert_true(f.looks >= 6);
	assert_true(where.x == 296 && where.y == 146 && where.w == 68 && where.h == 48);
	/* in a region that holds it; not in one that does not */
	f.looks = 0;
	assert_int_equal(auto_wait_screen(&be, needle, 0.95,
					  &(struct auto_rect){ 250, 100, 200, 150 }, 5000, NULL,
					  &where),
			 0);
	assert_true(where.x == 296 && where.y == 146);
	f.looks = 0;
	assert_int_equal(auto_wait_screen(&be, needle, 0.95, &(struct auto_rect){ 0, 0, 250, 270 },
					  400, NULL, &where),
			 -ETIMEDOUT);
	/* a region smaller than the needle, a threshold out of range, no such file */
	assert_int_equal(auto_wait_screen(&be, needle, 0.95, &(struct auto_rect){ 0, 0, 20, 20 },
					  400, NULL, NULL),
			 -EINVAL);
	assert_int_equal(auto_wait_screen(&be, needle, 1.5, NULL, 400, NULL, NULL), -EINVAL);
	assert_int_equal(
		auto_wait_screen(&be, "/nonexistent/needle.png", 0.9, NULL, 400, NULL, NULL),
		-ENOENT);
	assert_int_equal(f.refs, 0);
	unlink(needle);
	pic_free(&pa);
	pic_free(&pb);
}

static void
test_wait_text(void **state)
{
	(void)state;
	static const char *const a[] = { "Booting...", NULL };
	static const char *const b[] = { "Booting...", "debian login:", NULL };
	struct pic pa, pb;
	pic_text(&pa, 400, 200, 20, 20, a);
	pic_text(&pb, 400, 200, 20, 20, b);
	pic_encode(&pa);
	pic_encode(&pb);
	struct fake f = { .pick = pick_0_broken_1 };
	fake_set(&f, 0, &pa);
	fake_set(&f, 1, &pb);
	f.frames[2] = (struct okvm_frame){ .data = broken,
					   .size = sizeof(broken),
					   .width = 400,
					   .height = 200 };
	struct serve_backend be = { .ops = &fake_ops, .ud = &f };
	struct auto_rect where = { 0 };
	assert_int_equal(auto_wait_text(&be, ocr, "debian  login:", NULL, 10000, NULL, &where), 0);
	/* "debian login:" is cells 0..12 of the second line: x 20..150, y 40..60 */
	assert_in_range(where.x, 18, 24);
	assert_in_range(where.x + where.w, 144, 152);
	assert_in_range(where.y, 40, 50);
	f.looks = 0;
	assert_int_equal(auto_wait_text(&be, ocr, "login:", &(struct auto_rect){ 0, 0, 400, 38 },
					800, NULL, NULL),
			 -ETIMEDOUT);
	assert_int_equal(auto_wait_text(&be, NULL, "x", NULL, 100, NULL, NULL), -EINVAL);
	assert_int_equal(f.refs, 0);
	pic_free(&pa);
	pic_free(&pb);
}

static int
setup(void **state)
{
	(void)state;
	return auto_ocr_new("eng", &ocr);
}

static int
teardown(void **state)
{
	(void)state;
	auto_ocr_free(ocr);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clip),        cmocka_unit_test(test_lang),
		cmocka_unit_test(test_bad_jpeg),    cmocka_unit_test(test_read),
		cmocka_unit_test(test_mixed),       cmocka_unit_test(test_wait_change_still),
		cmocka_unit_test(test_wait_screen), cmocka_unit_test(test_wait_text),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
