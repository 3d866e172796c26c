/* The capture thread and its slot, with a scripted source; the file source on real files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "okvm/video.h"
#include "video-testlib.h"

/* A source that publishes picture (n % 10) per grab, every 5 ms, or fails as told. */
struct scripted {
	atomic_int starts, stops, grabs;
	atomic_int start_rc; /* returned by start() */
	atomic_int grab_rc;  /* returned by grab() instead of a frame when non-zero */
	uint8_t *pics[10];
	size_t sizes[10];
};

static int
s_start(void *ud, struct okvm_capture *c)
{
	struct scripted *s = ud;
	(void)c;
	atomic_fetch_add(&s->starts, 1);
	return s->start_rc;
}

static int
s_grab(void *ud, struct okvm_capture *c, int timeout_ms)
{
	struct scripted *s = ud;
	int n = atomic_fetch_add(&s->grabs, 1);
	if (okvm_capture_sleep_until(c, okvm_now_us() + 5000) < 0)
		return -EINTR;
	if (s->grab_rc) {
		okvm_capture_sleep_until(c, okvm_now_us() + (uint64_t)timeout_ms * 1000);
		return s->grab_rc;
	}
	return okvm_capture_publish_jpeg(c, s->pics[n % 10], s->sizes[n % 10], 0, false);
}

static void
s_stop(void *ud, struct okvm_capture *c)
{
	struct scripted *s = ud;
	(void)c;
	atomic_fetch_add(&s->stops, 1);
}

static const struct okvm_capture_ops sops = {
	.name = "scripted",
	.start = s_start,
	.grab = s_grab,
	.stop = s_stop,
};

static struct scripted *
scripted_new(void)
{
	struct scripted *s = calloc(1, sizeof(*s));
	for (int i = 0; i < 10; i++)
		s->pics[i] = testpic_jpeg(320, 240, i, &s->sizes[i]);
	return s;
}

static void
scripted_free(struct scripted *s)
{
	for (int i = 0; i < 10; i++)
		free(s->pics[i]);
	free(s);
}

static bool
has_n_real(struct recorder *r, void *ud)
{
	return recorder_real(r) >= *(int *)ud;
}

static bool
has_placeholder(struct recorder *r, void *ud)
{
	(void)ud;
	return r->n > 0 && r->frames[r->n - 1]->placeholder;
}

static void
no_consumer_no_work(void **state)
{
	(void)state;
	struct scripted *s = scripted_new();
	struct okvm_capture *c = okvm_capture_new_custom(&sops, s);
	assert_int_equal(okvm_capture_start(c), 0);
	assert_int_equal(okvm_capture_wait(c, 0, 200), -ETIMEDOUT);
	assert_int_equal(atomic_load(&s->starts), 0);
	assert_int_equal(atomic_load(&s->grabs), 0);
	assert_null(okvm_capture_latest(c));

	okvm_capture_want(c, true);
	assert_int_equal(okvm_capture_wait(c, 3, 5000), 0);
	okvm_capture_want(c, false);
	/* the source is stopped and grabbing ends */
	for (int i = 0; i < 500 && atomic_load(&s->stops) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&s->stops), 1);
	int grabs = atomic_load(&s->grabs);
	usleep(100000);
	assert_int_equal(atomic_load(&s->grabs), grabs);
	okvm_capture_free(c);
	scripted_free(s);
}

static void
newest_frame_and_refcounts(void **state)
{
	(void)state;
	struct scripted *s = scripted_new();
	struct okvm_capture *c = okvm_capture_new_custom(&sops, s);
	okvm_capture_start(c);
	okvm_capture_want(c, true);
	assert_int_equal(okvm_capture_wait(c, 0, 5000), 0);
	struct okvm_frame *first = okvm_capture_latest(c);
	assert_non_null(first);
	int idx = testpic_index(first->data, first->size);
	uint64_t seq = first->seq;
	assert_true(seq >= 1);
	/* newer frames replace it in the slot; our reference stays intact */
	assert_int_equal(okvm_capture_wait(c, seq + 5, 5000), 0);
	struct okvm_frame *now = okvm_capture_latest(c);
	assert_true(now->seq >= seq + 6);
	assert_int_equal(testpic_index(first->data, first->size), idx);
	assert_int_equal(first->width, 320);
	assert_true(now->ts_us >= first->ts_us);
	okvm_frame_unref(first);
	okvm_frame_unref(now);
	/* frames not taken by anybody were counted as dropped */
	struct okvm_capture_status st;
	okvm_capture_get_status(c, &st);
	assert_true(st.frames >= 6);
	assert_true(st.dropped >= 3);
	assert_true(st.signal && st.device);
	okvm_capture_free(c);
	scripted_free(s);
}

static void
no_signal_placeholder(void **state)
{
	(void)state;
	struct scripted *s = scripted_new();
	s->grab_rc = -ETIMEDOUT;
	struct okvm_capture *c = okvm_capture_new_custom(&sops, s);
	struct recorder r;
	recorder_init(&r, c);
	okvm_capture_start(c);
	okvm_capture_want(c, true);
	assert_true(recorder_wait(&r, has_placeholder, NULL, 5000));
	struct okvm_capture_status st;
	okvm_capture_get_status(c, &st);
	assert_false(st.signal);
	assert_true(st.device);
	struct okvm_frame *f = okvm_capture_latest(c);
	assert_true(f->placeholder);
	int w, h;
	uint8_t px[3];
	assert_int_equal(testpic_decode(f->data, f->size, &w, &h, px), 0);
	assert_int_equal(w, 1920); /* the default until a real frame says otherwise */
	okvm_frame_unref(f);
	/* the signal comes back: real frames again */
	s->grab_rc = 0;
	int one = 1;
	assert_true(recorder_wait(&r, has_n_real, &one, 5000));
	okvm_capture_free(c);
	recorder_fini(&r);
	scripted_free(s);
}

static void
no_device_placeholder_and_retry(void **state)
{
	(void)state;
	struct scripted *s = scripted_new();
	s->start_rc = -ENOENT;
	struct okvm_capture *c = okvm_capture_new_custom(&sops, s);
	struct recorder r;
	recorder_init(&r, c);
	okvm_capture_start(c);
	okvm_capture_want(c, true);
	assert_true(recorder_wait(&r, has_placeholder, NULL, 5000));
	struct okvm_capture_status st;
	okvm_capture_get_status(c, &st);
	assert_false(st.device);
	s->start_rc = 0; /* plugged in: the next retry (within a second) succeeds */
	int one = 1;
	assert_true(recorder_wait(&r, has_n_real, &one, 5000));
	okvm_capture_get_status(c, &st);
	assert_true(st.device && st.signal);
	assert_true(atomic_load(&s->starts) >= 2);
	okvm_capture_free(c);
	recorder_fini(&r);
	scripted_free(s);
}

static void
repeat_shares_bytes(void **state)
{
	(void)state;
	/* a source that publishes one picture and then repeats it */
	struct scripted *s = scripted_new();
	struct okvm_capture *c = okvm_capture_new_custom(&sops, s);
	struct okvm_frame *f = okvm_capture_frame_alloc(c, s->sizes[2]);
	memcpy(okvm_frame_buffer(f, NULL), s->pics[2], s->sizes[2]);
	f->size = s->sizes[2];
	f->width = 320;
	f->height = 240;
	okvm_capture_publish(c, okvm_frame_ref(f));
	okvm_capture_publish_repeat(c, f, 0);
	struct okvm_frame *g = okvm_capture_latest(c);
	assert_ptr_equal(g->data, f->data);
	assert_int_equal(g->seq, 2);
	assert_int_equal(g->size, f->size);
	okvm_frame_unref(f);
	okvm_capture_free(c); /* g keeps the bytes alive */
	assert_int_equal(testpic_index(g->data, g->size), 2);
	okvm_frame_unref(g);
	scripted_free(s);
}

static bool
has_n_any(struct recorder *r, void *ud)
{
	return r->n >= *(int *)ud;
}

static void
files_folder_in_order(void **state)
{
	(void)state;
	char *dir = testdir_new();
	testpic_write(dir, "pic", 320, 240, 4);
	char junk[4200];
	snprintf(junk, sizeof(junk), "%s/notes.txt", dir); /* ignored: not a .jpg */
	FILE *fp = fopen(junk, "w");
	fputs("hello", fp);
	fclose(fp);
	struct okvm_capture *c = okvm_capture_new_files(dir, 50);
	struct recorder r;
	recorder_init(&r, c);
	okvm_capture_start(c);
	okvm_capture_want(c, true);
	int want = 60;
	uint64_t t0 = okvm_now_us();
	assert_true(recorder_wait(&r, has_n_any, &want, 10000));
	double secs = (double)(okvm_now_us() - t0) / 1e6;
	okvm_capture_free(c);
	for (int i = 0; i < 8; i++)
		assert_int_equal(testpic_index(r.frames[i]->data, r.frames[i]->size), i % 4);
	/* 60 frames at 50 fps: about 1.2 s (generous bounds for a loaded machine) */
	assert_true(secs > 0.9 && secs < 4.0);
	recorder_fini(&r);
	testdir_free(dir);
}

/* The fps figure is right within half a second of the first frames, and again after a pause
 * (nobody wanted frames): it never spreads a handful of frames over the pause (0.1-3 fps). */
static void
fps_right_away_and_after_a_pause(void **state)
{
	(void)state;
	char *dir = testdir_new();
	testpic_write(dir, "pic", 160, 120, 4);
	struct okvm_capture *c = okvm_capture_new_files(dir, 50);
	okvm_capture_start(c);
	struct okvm_capture_status st;
	for (int round = 0; round < 2; round++) {
		okvm_capture_want(c, true);
		usleep(600000);
		okvm_capture_get_status(c, &st);
		print_message("round %d: %.1f fps\n", round, st.fps);
		assert_true(st.fps > 25 && st.fps < 80); /* 50, with a loaded machine's slack */
		okvm_capture_want(c, false);
		usleep(2500000);
	}
	okvm_capture_free(c);
	testdir_free(dir);
}

static void
files_mjpeg_stream(void **state)
{
	(void)state;
	char *dir = testdir_new();
	char path[4200];
	snprintf(path, sizeof(path), "%s/clip.mjpeg", dir);
	FILE *fp = fopen(path, "wb");
	size_t sizes[3];
	uint8_t *pics[3];
	for (int i = 0; i < 3; i++) {
		pics[i] = testpic_jpeg(160, 120, 7 + i, &sizes[i]);
		fwrite(pics[i], 1, sizes[i], fp);
	}
	fclose(fp);
	struct okvm_capture *c = okvm_capture_new_files(path, 100);
	struct recorder r;
	recorder_init(&r, c);
	okvm_capture_start(c);
	okvm_capture_want(c, true);
	int want = 6;
	assert_true(recorder_wait(&r, has_n_any, &want, 10000));
	okvm_capture_free(c);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(r.frames[i]->size, sizes[i % 3]);
		assert_memory_equal(r.frames[i]->data, pics[i % 3], sizes[i % 3]);
		assert_int_equal(r.frames[i]->seq, (uint64_t)i + 1);
	}
	for (int i = 0; i < 3; i++)
		free(pics[i]);
	recorder_fini(&r);
	testdir_free(dir);
}

static void
files_missing_is_no_device(void **state)
{
	(void)state;
	struct okvm_capture *c = okvm_capture_new_files("/nonexistent/okvm-frames", 30);
	struct recorder r;
	recorder_init(&r, c);
	okvm_capture_start(c);
	okvm_capture_want(c, true);
	assert_true(recorder_wait(&r, has_placeholder, NULL, 5000));
	struct okvm_capture_status st;
	okvm_capture_get_status(c, &st);
	assert_false(st.device);
	assert_int_equal(st.frames, 0);
	okvm_capture_free(c);
	recorder_fini(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_consumer_no_work),
		cmocka_unit_test(newest_frame_and_refcounts),
		cmocka_unit_test(no_signal_placeholder),
		cmocka_unit_test(no_device_placeholder_and_retry),
		cmocka_unit_test(repeat_shares_bytes),
		cmocka_unit_test(files_folder_in_order),
		cmocka_unit_test(files_mjpeg_stream),
		cmocka_unit_test(fps_right_away_and_after_a_pause),
		cmocka_unit_test(files_missing_is_no_device),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
