/* Helpers for the video tests; see video-testlib.h. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <turbojpeg.h>

#include "video-testlib.h"

static void
colour(int i, uint8_t rgb[3])
{
	rgb[0] = (uint8_t)(20 + i * 22);
	rgb[1] = (uint8_t)(220 - i * 20);
	rgb[2] = (uint8_t)(30 + (i * 70) % 200);
}

uint8_t *
testpic_jpeg(int w, int h, int i, size_t *size)
{
	uint8_t rgb[3];
	colour(i, rgb);
	uint8_t *px = malloc((size_t)w * (size_t)h * 3);
	for (size_t k = 0; k < (size_t)w * (size_t)h; k++)
		memcpy(px + 3 * k, rgb, 3);
	/* a little texture so that the JPEG is not trivially small */
	for (int y = 0; y < h; y += 7)
		for (int x = (y * 3) % 11; x < w; x += 11)
			px[3 * ((size_t)y * (size_t)w + (size_t)x)] ^= 0x10;
	tjhandle tj = tjInitCompress();
	unsigned char *out = NULL;
	unsigned long n = 0;
	tjCompress2(tj, px, w, 0, h, TJPF_RGB, &out, &n, TJSAMP_420, 85, 0);
	tjDestroy(tj);
	free(px);
	uint8_t *copy = malloc(n);
	memcpy(copy, out, n);
	tjFree(out);
	*size = n;
	return copy;
}

int
testpic_decode(const uint8_t *jpeg, size_t size, int *w, int *h, uint8_t center[3])
{
	tjhandle tj = tjInitDecompress();
	int sub, cs, rc = -1;
	if (tjDecompressHeader3(tj, jpeg, size, w, h, &sub, &cs) == 0) {
		/* decode at 1/8 scale: enough to tell the pictures apart, and fast under ASan */
		int sw = (*w + 7) / 8, sh = (*h + 7) / 8;
		uint8_t *px = malloc((size_t)sw * (size_t)sh * 3);
		if (tjDecompress2(tj, jpeg, size, px, sw, 0, sh, TJPF_RGB, TJFLAG_FASTDCT) == 0) {
			size_t at = ((size_t)(sh / 2) * (size_t)sw + (size_t)(sw / 2)) * 3;
			memcpy(center, px + at, 3);
			rc = 0;
		}
		free(px);
	}
	tjDestroy(tj);
	return rc;
}

int
testpic_index(const uint8_t *jpeg, size_t size)
{
	int w, h;
	uint8_t c[3];
	if (testpic_decode(jpeg, size, &w, &h, c) < 0)
		return -1;
	for (int i = 0; i < 10; i++) {
		uint8_t want[3];
		colour(i, want);
		if (abs(c[0] - want[0]) < 8 && abs(c[1] - want[1]) < 8 && abs(c[2] - want[2]) < 8)
			return i;
	}
	return -1;
}

void
testpic_write(const char *dir, const char *prefix, int w, int h, int n)
{
	for (int i = 0; i < n; i++) {
		size_t size;
		uint8_t *p = testpic_jpeg(w, h, i, &size);
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s%02d.jpg", dir, prefix, i);
		FILE *f = fopen(path, "wb");
		fwrite(p, 1, size, f);
		fclose(f);
		free(p);
	}
}

char *
testdir_new(void)
{
	char *d = strdup("/tmp/okvm-test-XXXXXX");
	if (!mkdtemp(d))
		abort();
	return d;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
testdir_free(char *dir)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static void
on_frame(void *ud)
{
	struct recorder *r = ud;
	struct okvm_frame *f = okvm_capture_latest(r->cap);
	pthread_mutex_lock(&r->lock);
	if (f && r->n < REC_MAX)
		r->frames[r->n++] = f;
	else
		okvm_frame_unref(f);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void
recorder_init(struct recorder *r, struct okvm_capture *cap)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	r->cap = cap;
	okvm_capture_set_notify(cap, on_frame, r);
}

bool
recorder_wait(struct recorder *r, bool (*pred)(struct recorder *r, void *ud), void *ud,
	      int timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	bool ok;
	while (!(ok = pred(r, ud)))
		if (pthread_cond_timedwait(&r->cond, &r->lock, &dl) == ETIMEDOUT) {
			ok = pred(r, ud);
			break;
		}
	pthread_mutex_unlock(&r->lock);
	return ok;
}

int
recorder_real(struct recorder *r)
{
	int n = 0;
	for (int i = 0; i < r->n; i++)
		n += !r->frames[i]->placeholder;
	return n;
}

void
recorder_fini(struct recorder *r)
{
	for (int i = 0; i < r->n; i++)
		okvm_frame_unref(r->frames[i]);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
}
