/*
 * The V4L2 source against tests/fakes/preload-v4l2.so (an MS2109 as the uvcvideo driver shows
 * it): mode negotiation, every scripted fault, unplug and re-plug (also under another node),
 * newest-frame selection and Huffman-table insertion. Run with LD_PRELOAD (see
 * tests/fakes/meson.build).
 */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <linux/videodev2.h>

#include "okvm/video.h"
#include "video-testlib.h"

#define DEV "/dev/video-okvm-fake"

static unsigned long (*counter)(const char *name);
static void (*format)(uint32_t *fourcc, int *w, int *h, int *fps);
static char *dir;

static int
setup(void **state)
{
	(void)state;
	counter = (unsigned long (*)(const char *))dlsym(RTLD_DEFAULT, "fake_v4l2_counter");
	format = (void (*)(uint32_t *, int *, int *, int *))dlsym(RTLD_DEFAULT, "fake_v4l2_format");
	if (!counter || !format) {
		fprintf(stderr, "preload-v4l2.so is not loaded (LD_PRELOAD)\n");
		return -1;
	}
	dir = testdir_new();
	testpic_write(dir, "1920x1080-", 1920, 1080, 10);
	testpic_write(dir, "1280x720-", 1280, 720, 10);
	setenv("OKVM_FAKE_V4L2_DIR", dir, 1);
	setenv("OKVM_FAKE_V4L2_PATH", DEV, 1);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (dir)
		testdir_free(dir);
	return 0;
}

struct run {
	struct okvm_capture *cap;
	struct recorder rec;
};

/* Record what cap publishes; the fake plays script from the device's first open. */
static void
run_begin(struct run *r, struct okvm_capture *cap, const char *script)
{
	setenv("OKVM_FAKE_V4L2_SCRIPT", script, 1);
	r->cap = cap;
	recorder_init(&r->rec, r->cap);
	assert_int_equal(okvm_capture_start(r->cap), 0);
	okvm_capture_want(r->cap, true);
}

static void
run_start(struct run *r, const char *mode, const char *script)
{
	run_begin(r, okvm_capture_new_v4l2(DEV, mode), script);
}

static void
run_end(struct run *r)
{
	okvm_capture_free(r->cap); /* no frames are recorded after this */
	r->cap = NULL;
	recorder_fini(&r->rec);
}

/* Stop capturing, then return the picture numbers of the real frames from the first loop over
 * the 10 pictures (frame k shows picture k % 10, so the first wrap ends the loop). */
static int
first_loop(struct run *r, int *idx)
{
	okvm_capture_free(r->cap);
	r->cap = NULL;
	int n = 0, prev = -1;
	for (int i = 0; i < r->rec.n; i++) {
		if (r->rec.frames[i]->placeholder)
			continue;
		int k = testpic_index(r->rec.frames[i]->data, r->rec.frames[i]->size);
		assert_true(k >= 0);
		if (k <= prev)
			break;
		idx[n++] = prev = k;
	}
	return n;
}

static bool
has(const int *idx, int n, int k)
{
	for (int i = 0; i < n; i++)
		if (idx[i] == k)
			return true;
	return false;
}

static bool
n_real(struct recorder *r, void *ud)
{
	return recorder_real(r) >= *(int *)ud;
}

static bool
last_is_placeholder(struct recorder *r, void *ud)
{
	(void)ud;
	return r->n > 0 && r->frames[r->n - 1]->placeholder;
}

static bool
real_after_placeholder(struct recorder *r, void *ud)
{
	(void)ud;
	bool ph = false;
	for (int i = 0; i < r->n; i++) {
		ph |= r->frames[i]->placeholder;
		if (ph && !r->frames[i]->placeholder)
			return true;
	}
	return false;
}

static void
wait_real(struct run *r, int n)
{
	assert_true(recorder_wait(&r->rec, n_real, &n, 10000));
}

static void
default_mode_is_largest_mjpeg_at_30(void **state)
{
	(void)state;
	struct run r;
	run_start(&r, NULL, "");
	wait_real(&r, 3);
	uint32_t fourcc;
	int w, h, fps;
	format(&fourcc, &w, &h, &fps);
	assert_int_equal(fourcc, V4L2_PIX_FMT_MJPEG);
	assert_int_equal(w, 1920);
	assert_int_equal(h, 1080);
	assert_int_equal(fps, 30);
	struct okvm_frame *f = r.rec.frames[0];
	assert_int_equal(f->width, 1920);
	assert_int_equal(f->height, 1080);
	assert_false(f->placeholder);
	/* the JPEG bytes are the device's, unchanged */
	assert_true(testpic_index(f->data, f->size) >= 0);
	size_t n;
	uint8_t *orig = testpic_jpeg(1920, 1080, testpic_index(f->data, f->size), &n);
	assert_int_equal(f->size, n);
	assert_memory_equal(f->data, orig, n);
	free(orig);
	run_end(&r);
}

static void
requested_mode_720p60(void **state)
{
	(void)state;
	struct run r;
	run_start(&r, "1280x720@60", "");
	wait_real(&r, 2);
	uint32_t fourcc;
	int w, h, fps;
	format(&fourcc, &w, &h, &fps);
	assert_int_equal(fourcc, V4L2_PIX_FMT_MJPEG);
	assert_int_equal(w, 1280);
	assert_int_equal(h, 720);
	assert_int_equal(fps, 60);
	assert_int_equal(r.rec.frames[0]->width, 1280);
	run_end(&r);
}

static void
yuyv_only_mode_is_encoded(void **state)
{
	(void)state;
	struct run r;
	run_start(&r, "1280x960@8", ""); /* MS2109: YUYV only at 8 fps */
	wait_real(&r, 2);
	uint32_t fourcc;
	int w, h, fps;
	format(&fourcc, &w, &h, &fps);
	assert_int_equal(fourcc, V4L2_PIX_FMT_YUYV);
	assert_int_equal(fps, 8);
	struct okvm_frame *f = r.rec.frames[0];
	uint8_t px[3];
	assert_int_equal(testpic_decode(f->data, f->size, &w, &h, px), 0);
	assert_int_equal(w, 1280);
	assert_int_equal(h, 960);
	/* the fake sends flat grey (U = V = 128): the JPEG shows grey */
	assert_true(abs(px[0] - px[1]) < 4 && abs(px[1] - px[2]) < 4);
	run_end(&r);
}

static void
unknown_mode_shows_placeholder(void **state)
{
	(void)state;
	struct run r;
	run_start(&r, "1234x567@30", "");
	assert_true(recorder_wait(&r.rec, last_is_placeholder, NULL, 5000));
	assert_int_equal(recorder_real(&r.rec), 0);
	run_end(&r);
}

static void
eagain_is_survived(void **state)
{
	(void)state;
	unsigned long before = counter("eagain");
	struct run r;
	run_start(&r, NULL, "3:eagain");
	wait_real(&r, 6);
	assert_int_equal(counter("eagain"), before + 1);
	run_end(&r);
}

static void
frames_without_dht_are_repaired(void **state)
{
	(void)state;
	struct run r;
	run_start(&r, NULL, "0:nodht"); /* every frame */
	wait_real(&r, 4);
	for (int i = 0; i < 4; i++) {
		struct okvm_frame *f = r.rec.frames[i];
		assert_true(okvm_jpeg_has_dht(f->data, f->size));
		/* it decodes, to one of the pictures */
		assert_true(testpic_index(f->data, f->size) >= 0);
	}
	run_end(&r);
}

static void
truncated_frames_are_dropped(void **state)
{
	(void)state;
	struct run r;
	run_start(&r, NULL, "2:truncated,3:truncated");
	wait_real(&r, 6);
	struct okvm_capture_status st;
	okvm_capture_get_status(r.cap, &st);
	assert_true(st.dropped >= 2);
	int idx[REC_MAX];
	int n = first_loop(&r, idx);
	assert_false(has(idx, n, 2)); /* frames 2 and 3 = pictures 2 and 3 */
	assert_false(has(idx, n, 3));
	assert_true(n >= 3 && idx[n - 1] >= 4);
	run_end(&r);
}

static void
burst_keeps_only_the_newest(void **state)
{
	(void)state;
	struct run r;
	run_start(&r, NULL, "5:burst=3"); /* frames 5, 6 and 7 become ready at once */
	wait_real(&r, 6);
	int idx[REC_MAX];
	int n = first_loop(&r, idx);
	assert_false(has(idx, n, 5));
	assert_false(has(idx, n, 6));
	assert_true(has(idx, n, 7));
	run_end(&r);
}

static void
unplug_and_replug(void **state)
{
	(void)state;
	unsigned long opens = counter("opens");
	struct run r;
	run_start(&r, NULL, "4:unplug=400");
	assert_true(recorder_wait(&r.rec, last_is_placeholder, NULL, 5000));
	struct okvm_capture_status st;
	okvm_capture_get_status(r.cap, &st);
	assert_false(st.device);
	assert_true(recorder_wait(&r.rec, real_after_placeholder, NULL, 10000));
	okvm_capture_get_status(r.cap, &st);
	assert_true(st.device && st.signal);
	assert_int_equal(counter("opens"), opens + 2);
	run_end(&r);
}

#define DEV2 "/dev/video-okvm-fake-2"

static int locate_calls;

/* What discovery would answer: the unit's capture node is DEV2 now. */
static int
locate_dev2(void *ud, char *path, size_t size)
{
	(void)ud;
	locate_calls++;
	snprintf(path, size, "%s", DEV2);
	return 0;
}

/* The re-plugged device comes back under another node: a located capture follows it. */
static void
replug_under_another_node(void **state)
{
	(void)state;
	setenv("OKVM_FAKE_V4L2_RENUMBER", DEV2, 1);
	locate_calls = 0;
	struct run r;
	/* Not the last test's script, so the fake parses it anew. */
	run_begin(&r, okvm_capture_new_v4l2_located(DEV, NULL, locate_dev2, NULL), "5:unplug=400");
	assert_true(recorder_wait(&r.rec, last_is_placeholder, NULL, 5000));
	assert_true(recorder_wait(&r.rec, real_after_placeholder, NULL, 10000));
	struct okvm_capture_status st;
	okvm_capture_get_status(r.cap, &st);
	assert_true(st.device && st.signal);
	assert_true(locate_calls >= 1);
	run_end(&r);
	unsetenv("OKVM_FAKE_V4L2_RENUMBER");
}

static void
no_signal_then_signal(void **state)
{
	(void)state;
	struct run r;
	run_start(&r, NULL, "3:nosignal=1600");
	assert_true(recorder_wait(&r.rec, last_is_placeholder, NULL, 5000));
	struct okvm_capture_status st;
	okvm_capture_get_status(r.cap, &st);
	assert_false(st.signal);
	assert_true(st.device);
	struct okvm_frame *f = r.rec.frames[r.rec.n - 1];
	assert_int_equal(f->width, 1920); /* placeholder at the last picture's size */
	assert_true(recorder_wait(&r.rec, real_after_placeholder, NULL, 10000));
	okvm_capture_get_status(r.cap, &st);
	assert_true(st.signal);
	run_end(&r);
}

static bool
saw_720(struct recorder *r, void *ud)
{
	(void)ud;
	return r->n > 0 && r->frames[r->n - 1]->width == 1280 && !r->frames[r->n - 1]->placeholder;
}

static void
resolution_change_follows_the_jpeg(void **state)
{
	(void)state;
	struct run r;
	run_start(&r, NULL, "3:mode=1280x720");
	assert_true(recorder_wait(&r.rec, saw_720, NULL, 10000));
	struct okvm_frame *f = r.rec.frames[r.rec.n - 1];
	assert_int_equal(f->height, 720);
	assert_int_equal(r.rec.frames[0]->width, 1920);
	struct okvm_capture_status st;
	okvm_capture_get_status(r.cap, &st);
	assert_int_equal(st.width, 1280);
	assert_int_equal(st.height, 720);
	run_end(&r);
}

static void
no_consumer_closes_the_device(void **state)
{
	(void)state;
	unsigned long opens = counter("opens"), closes = counter("closes");
	setenv("OKVM_FAKE_V4L2_SCRIPT", "", 1);
	struct okvm_capture *c = okvm_capture_new_v4l2(DEV, NULL);
	okvm_capture_start(c);
	assert_int_equal(okvm_capture_wait(c, 0, 300), -ETIMEDOUT);
	assert_int_equal(counter("opens"), opens); /* nobody wants frames: not even opened */
	okvm_capture_want(c, true);
	assert_int_equal(okvm_capture_wait(c, 0, 5000), 0);
	assert_int_equal(counter("opens"), opens + 1);
	okvm_capture_want(c, false);
	for (int i = 0; i < 500 && counter("closes") == closes; i++)
		okvm_capture_wait(c, UINT64_MAX, 10);
	assert_int_equal(counter("closes"), closes + 1);
	unsigned long dq = counter("dqbuf");
	okvm_capture_wait(c, UINT64_MAX, 200);
	assert_int_equal(counter("dqbuf"), dq); /* and no capture work */
	okvm_capture_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_mode_is_largest_mjpeg_at_30),
		cmocka_unit_test(requested_mode_720p60),
		cmocka_unit_test(yuyv_only_mode_is_encoded),
		cmocka_unit_test(unknown_mode_shows_placeholder),
		cmocka_unit_test(eagain_is_survived),
		cmocka_unit_test(frames_without_dht_are_repaired),
		cmocka_unit_test(truncated_frames_are_dropped),
		cmocka_unit_test(burst_keeps_only_the_newest),
		cmocka_unit_test(unplug_and_replug),
		cmocka_unit_test(replug_under_another_node),
		cmocka_unit_test(no_signal_then_signal),
		cmocka_unit_test(resolution_change_follows_the_jpeg),
		cmocka_unit_test(no_consumer_closes_the_device),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
