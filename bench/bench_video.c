/*
 * Video benchmarks (figures only; not a test):
 *  1. file source: capture-to-consumer latency (publish -> a waiting consumer holds the frame)
 *     and frames per second, for a folder of 1080p JPEGs at a requested rate;
 *  2. the virtual screen: render + encode cost per changed 1080p picture and its JPEG size,
 *     for an idle desktop, a full terminal, and that terminal under every input trace (clicks,
 *     wheel, combo, media OSD, USB note); draw and encode are the capture thread's CPU time.
 * usage: bench-video [FPS] [SECONDS] [--save-busy FILE.png]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <turbojpeg.h>

#include "emu/screen.h"
#include "okvm/video.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void
write_pics(const char *dir, int n)
{
	struct vscreen *vs = vscreen_new(1920, 1080, 60);
	struct okvm_capture *c = vscreen_capture(vs);
	okvm_capture_want(c, true);
	uint64_t seq = 0;
	for (int i = 0; i < n; i++) {
		char text[64];
		snprintf(text, sizeof(text), "picture %d of the benchmark\n", i);
		vscreen_feed_text(vs, text);
		uint64_t want = vscreen_rendered(vs) + 1;
		struct okvm_frame *f = NULL;
		while (!f || vscreen_rendered(vs) < want + 1) {
			okvm_frame_unref(f);
			okvm_capture_wait(c, seq, 1000);
			f = okvm_capture_latest(c);
			seq = f ? f->seq : seq;
		}
		char path[4200];
		snprintf(path, sizeof(path), "%s/%03d.jpg", dir, i);
		FILE *fp = fopen(path, "wb");
		fwrite(f->data, 1, f->size, fp);
		fclose(fp);
		okvm_frame_unref(f);
	}
	vscreen_free(vs);
}

static void
bench_files(double fps, int seconds)
{
	char dir[] = "/tmp/okvm-bench-XXXXXX";
	if (!mkdtemp(dir))
		return;
	write_pics(dir, 10);
	struct okvm_capture *c = okvm_capture_new_files(dir, fps);
	okvm_capture_start(c);
	okvm_capture_want(c, true);
	size_t cap = (size_t)(fps * seconds) + 16, n = 0;
	uint64_t *lat = malloc(cap * sizeof(*lat)), seq = 0, t0 = 0, t1 = 0;
	uint64_t end = okvm_now_us() + (uint64_t)seconds * 1000000u;
	while (okvm_now_us() < end && n < cap) {
		if (okvm_capture_wait(c, seq, 1000) < 0)
			continue;
		struct okvm_frame *f = okvm_capture_latest(c);
		uint64_t now = okvm_now_us();
		if (!t0)
			t0 = now;
		t1 = now;
		lat[n++] = now - f->ts_us;
		seq = f->seq;
		okvm_frame_unref(f);
	}
	struct okvm_capture_status st;
	okvm_capture_get_status(c, &st);
	okvm_capture_free(c);
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("file source, 1080p at %.0f fps requested: %.1f fps received, %zu frames, "
	       "capture->consumer latency p50 %llu us, p99 %llu us, max %llu us\n",
	       fps, n > 1 ? (double)(n - 1) * 1e6 / (double)(t1 - t0) : 0.0, n,
	       (unsigned long long)lat[n / 2], (unsigned long long)lat[n * 99 / 100],
	       (unsigned long long)lat[n - 1]);
	free(lat);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static void
fill_terminal(struct vscreen *vs)
{
	struct vscreen_layout L;
	vscreen_get_layout(vs, &L);
	char line[512];
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
}

/* Change something every frame and measure how long each picture takes to appear. */
static void
bench_vscreen(const char *label, bool busy, bool traces, int frames, const char *save)
{
	struct vscreen *vs = vscreen_new(1920, 1080, 120);
	struct okvm_capture *c = vscreen_capture(vs);
	if (busy)
		fill_terminal(vs);
	okvm_capture_want(c, true);
	okvm_capture_wait(c, 0, 2000);
	uint64_t r0 = vscreen_rendered(vs), t0 = okvm_now_us(), seq = 0, d0, e0, d1, e1;
	vscreen_get_timing(vs, &d0, &e0);
	size_t bytes = 0, n = 0;
	for (int i = 0; i < frames; i++) {
		vscreen_set_pointer(vs, (i * 37) % 4096, (i * 91) % 4096);
		if (traces && i % 10 == 0) { /* every trace the screen draws stays visible */
			static const uint8_t vol[3] = { 1, 0, 0 }, none[3] = { 0 };
			vscreen_mouse(vs, 1000, 1000, 1, 0);
			vscreen_mouse(vs, 1000, 1000, 0, 2);
			vscreen_key(vs, 0xE0, true);
			vscreen_key(vs, 0x4C, true);
			vscreen_key(vs, 0x4C, false);
			vscreen_key(vs, 0xE0, false);
			vscreen_media(vs, 2, vol);
			vscreen_media(vs, 2, none);
			vscreen_usb_switch(vs, i % 20 == 0);
		}
		uint64_t want = vscreen_rendered(vs) + 1;
		while (vscreen_rendered(vs) < want)
			okvm_capture_wait(c, seq, 1000), seq++;
		struct okvm_frame *f = okvm_capture_latest(c);
		bytes += f->size;
		n++;
		seq = f->seq;
		if (save && i == frames - 1) {
			FILE *fp = fopen(save, "wb");
			okvm_jpeg_to_png(f->data, f->size, fp);
			fclose(fp);
		}
		okvm_frame_unref(f);
	}
	uint64_t renders = vscreen_rendered(vs) - r0, us = okvm_now_us() - t0;
	vscreen_get_timing(vs, &d1, &e1);
	printf("virtual screen 1920x1080, %s: %llu pictures, %.2f ms per render+encode "
	       "(draw %.2f ms, encode %.2f ms), mean JPEG %zu KB (quality 80)\n",
	       label, (unsigned long long)renders, (double)us / 1000.0 / (double)renders,
	       (double)(d1 - d0) / 1e6 / (double)renders, (double)(e1 - e0) / 1e6 / (double)renders,
	       bytes / n / 1024);
	vscreen_free(vs);
}

int
main(int argc, char **argv)
{
	double fps = argc > 1 ? atof(argv[1]) : 30;
	int secs = argc > 2 ? atoi(argv[2]) : 3;
	const char *save = argc > 4 && !strcmp(argv[3], "--save-busy") ? argv[4] : NULL;
	bench_files(fps, secs);
	bench_files(fps * 4, secs);
	bench_vscreen("idle desktop, pointer moving", false, false, 60, NULL);
	bench_vscreen("terminal half full of 80-column text, pointer moving", true, false, 60,
		      save);
	bench_vscreen("the same with a click, wheel, combo, media OSD and USB note showing", true,
		      true, 60, NULL);
	return 0;
}
