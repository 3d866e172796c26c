/*
 * DESIGN: waiting on the target's screen (docs/automation.md, "OCR and waiting on the screen").
 * Every wait polls the backend's newest frame every POLL_MS and looks at a frame only once (by
 * seq). Change and stillness are judged on a small grayscale picture (the JPEG decoded at 1/4
 * scale): a pixel differs when it moved by more than DIFF_LEVEL gray levels, which JPEG noise
 * of a real capture does not reach at that scale. The screen changed when any pixel differs
 * from the first picture; it is still when for still_ms no picture differs from the one that
 * began the period in more than STILL_FRACTION of its pixels (a ticking clock or a blinking
 * cursor is still; a window opening or a line of text is not). A needle is found by mean
 * absolute difference of gray levels at each position of the region (a coarse pass at 1/4
 * scale picks candidates, full resolution confirms). Any thread except the lws service thread.
 */
#include <errno.h>
#include <limits.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <turbojpeg.h>

#include "auto/wait.h"
#include "okvm/video.h"
#include "serve/backend.h"
#include "lib/xalloc.h"

#define POLL_MS 50
#define DIFF_LEVEL 32        /* gray levels: a pixel of the 1/4 picture that changed */
#define STILL_FRACTION 0.002 /* of the 1/4 picture's pixels that may differ while still */
#define TEXT_EVERY_MS 250    /* OCR no more often than this */
#define COARSE_CANDIDATES 16 /* positions of the 1/4 pass checked at full scale */

/* A gray picture. */
struct gray {
	uint8_t *px;
	int w, h;
};

static void
gray_free(struct gray *g)
{
	free(g->px);
	g->px = NULL;
	g->w = g->h = 0;
}

static int
gray_decode1(tjhandle tj, const struct okvm_frame *f, int denom, struct gray *out)
{
	int w = 0, h = 0, sub = -1, cs = -1;
	if (tjDecompressHeader3(tj, f->data, f->size, &w, &h, &sub, &cs) < 0 || w <= 0 || h <= 0 ||
	    w > 16384 || h > 16384)
		return -EINVAL;
	int sw = (w + denom - 1) / denom, sh = (h + denom - 1) / denom;
	uint8_t *px = xmalloc((size_t)sw * (size_t)sh);
	/* a warning (a truncated or corrupt frame) fails too: half a picture is not a change */
	if (tjDecompress2(tj, f->data, f->size, px, sw, 0, sh, TJPF_GRAY,
			  TJFLAG_FASTDCT | TJFLAG_STOPONWARNING) < 0) {
		free(px);
		return -EINVAL;
	}
	gray_free(out);
	*out = (struct gray){ px, sw, sh };
	return 0;
}

/* Decode jpeg to gray at 1/denom scale (1, 2, 4 or 8). A frame that does not decode (a real
 * capture sends a broken one now and then) is -EINVAL, and the waits skip it; the handle is
 * renewed then, as libjpeg-turbo 2.1 may fail the next good frame on the old one. */
static int
gray_decode(tjhandle *tjp, const struct okvm_frame *f, int denom, struct gray *out)
{
	int rc = gray_decode1(*tjp, f, denom, out);
	if (rc) {
		tjDestroy(*tjp);
		if (!(*tjp = tjInitDecompress()))
			abort(); /* out of memory, as xmalloc */
	}
	return rc;
}

/* Pixels that differ by more than DIFF_LEVEL; size changes count as every pixel. */
static size_t
gray_diff(const struct gray *a, const struct gray *b)
{
	if (a->w != b->w || a->h != b->h)
		return (size_t)b->w * (size_t)b->h + 1;
	size_t n = (size_t)a->w * (size_t)a->h, d = 0;
	for (size_t i = 0; i < n; i++) {
		int v = a->px[i] - b->px[i];
		if (v > DIFF_LEVEL || v < -DIFF_LEVEL)
			d++;
	}
	return d;
}

/* ---- the polling loop ---- */

struct poll {
	const struct serve_backend *b;
	const atomic_bool *cancel;
	uint64_t start_us, deadline_us; /* 0: none */
	uint64_t seq;
	bool looked; /* the next look waits POLL_MS first */
};

static uint64_t
now_us(void)
{
	return okvm_now_us();
}

static void
poll_init(struct poll *p, const struct serve_backend *b, int timeout_ms, const atomic_bool *c)
{
	p->b = b;
	p->cancel = c;
	p->start_us = now_us();
	p->deadline_us = timeout_ms < 0 ? 0 : p->start_us + (uint64_t)timeout_ms * 1000;
	p->seq = 0;
	p->looked = false;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/*
 * The next real frame not seen yet (a new reference in *out), or -ETIMEDOUT / -ECANCELED. Looks
 * every POLL_MS (the first time at once), so a wait costs a decode per POLL_MS at most.
 */
static int
poll_next(struct poll *p, struct okvm_frame **out)
{
	for (;;) {
		if (p->cancel && atomic_load(p->cancel))
			return -ECANCELED;
		if (p->looked) {
			uint64_t t = now_us();
			if (p->deadline_us && t >= p->deadline_us)
				return -ETIMEDOUT;
			int left = p->deadline_us ? (int)((p->deadline_us - t + 999) / 1000)
						  : POLL_MS;
			sleep_ms(left < POLL_MS ? left : POLL_MS);
			if (p->cancel && atomic_load(p->cancel))
				return -ECANCELED;
		}
		p->looked = true;
		struct okvm_frame *f = p->b->ops->newest_frame(p->b->ud);
		if (f && !f->placeholder && f->seq != p->seq) {
			p->seq = f->seq;
			*out = f;
			return 0;
		}
		if (f)
			p->b->ops->frame_unref(p->b->ud, f);
	}
}

static void
poll_unref(struct poll *p, struct okvm_frame *f)
{
	if (f)
		p->b->ops->frame_unref(p->b->ud, f);
}

/* ---- change and stillness ---- */

int
auto_wait_change(const struct serve_backend *b, int timeout_ms, const atomic_bool *cancel)
{
	tjhandle tj = tjInitDecompress();
	if (!tj)
		return -ENOMEM;
	struct poll p;
	poll_init(&p, b, timeout_ms, cancel);
	struct gray first = { 0 }, cur = { 0 };
	int rc;
	for (;;) {
		struct okvm_frame *f;
		rc = poll_next(&p, &f);
		if (rc)
			break;
		rc = gray_decode(&tj, f, 4, first.px ? &cur : &first);
		poll_unref(&p, f);
		if (rc == 0 && cur.px && gray_diff(&first, &cur) > 0)
			break;
	}
	gray_free(&first);
	gray_free(&cur);
	tjDestroy(tj);
	return rc;
}

int
auto_wait_still(const struct serve_backend *b, int still_ms, int timeout_ms,
		const atomic_bool *cancel)
{
	if (still_ms < 0)
		return -EINVAL;
	tjhandle tj = tjInitDecompress();
	if (!tj)
		return -ENOMEM;
	struct poll p;
	poll_init(&p, b, timeout_ms, cancel);
	struct gray ref = { 0 }, cur = { 0 };
	uint64_t since = 0;
	int rc;
	for (;;) {
		struct okvm_frame *f = NULL;
		rc = poll_next(&p, &f);
		if (rc == -ETIMEDOUT && ref.px && now_us() - since >= (uint64_t)still_ms * 1000)
			rc = 0; /* the last look was long enough ago */
		if (rc)
			break;
		rc = gray_decode(&tj, f, 4, &cur);
		poll_unref(&p, f);
		if (rc)
			continue;
		size_t limit = (size_t)((double)cur.w * cur.h * STILL_FRACTION);
		if (!ref.px || gray_diff(&ref, &cur) > limit) {
			struct gray t = ref;
			ref = cur;
			cur = t;
			since = now_us();
		}
		if (now_us() - since >= (uint64_t)still_ms * 1000)
			break;
	}
	gray_free(&ref);
	gray_free(&cur);
	tjDestroy(tj);
	return rc;
}

/* ---- text ---- */

/* needle in hay with runs of white space counted as one space; the byte range in hay. */
static bool
find_words(const char *hay, const char *needle, size_t *at, size_t *len)
{
	while (*needle == ' ' || *needle == '\t' || *needle == '\n')
		needle++;
	if (!*needle)
		return false;
	for (const char *s = hay; *s; s++) {
		const char *h = s, *n = needle;
		while (*n && *h) {
			bool ns = *n == ' ' || *n == '\t' || *n == '\n';
			bool hs = *h == ' ' || *h == '\t' || *h == '\n';
			if (ns && hs) {
				while (*n == ' ' || *n == '\t' || *n == '\n')
					n++;
				while (*h == ' ' || *h == '\t' || *h == '\n')
					h++;
				continue;
			}
			if (*n != *h)
				break;
			n++;
			h++;
		}
		while (*n == ' ' || *n == '\t' || *n == '\n')
			n++;
		if (!*n) {
			*at = (size_t)(s - hay);
			*len = (size_t)(h - s);
			return true;
		}
	}
	return false;
}

/* The union of the boxes of the words that make up text[at, at + len) (words in text order,
 * separated by one byte each, as ocr.c builds the text). */
static void
words_box(const struct auto_ocr_result *r, size_t at, size_t len, struct auto_rect *out)
{
	size_t pos = 0;
	int x0 = INT_MAX, y0 = INT_MAX, x1 = INT_MIN, y1 = INT_MIN;
	for (size_t i = 0; i < r->n_words; i++) {
		const struct auto_ocr_word *w = &r->words[i];
		size_t wl = strlen(w->text);
		if (pos < at + len && pos + wl > at) {
			x0 = w->box.x < x0 ? w->box.x : x0;
			y0 = w->box.y < y0 ? w->box.y : y0;
			x1 = w->box.x + w->box.w > x1 ? w->box.x + w->box.w : x1;
			y1 = w->box.y + w->box.h > y1 ? w->box.y + w->box.h : y1;
		}
		pos += wl + 1;
	}
	if (x0 == INT_MAX)
		*out = (struct auto_rect){ 0, 0, 0, 0 };
	else
		*out = (struct auto_rect){ x0, y0, x1 - x0, y1 - y0 };
}

static int
wait_text(const struct serve_backend *b, struct auto_ocr *o, const char *text,
	  const struct auto_rect *region, int timeout_ms, const atomic_bool *cancel,
	  struct auto_rect *where)
{
	struct poll p;
	poll_init(&p, b, timeout_ms, cancel);
	uint64_t last = 0;
	for (;;) {
		uint64_t t = now_us();
		if (last && t - last < TEXT_EVERY_MS * 1000) {
			int wait = (int)((last + TEXT_EVERY_MS * 1000 - t) / 1000);
			if (p.deadline_us && t + (uint64_t)wait * 1000 > p.deadline_us)
				return -ETIMEDOUT;
			sleep_ms(wait);
		}
		struct okvm_frame *f;
		int rc = poll_next(&p, &f);
		if (rc)
			return rc;
		last = now_us();
		struct auto_ocr_result r;
		struct auto_rect clipped;
		bool fits = auto_rect_clip(region, f->width, f->height, &clipped);
		rc = fits ? auto_ocr_jpeg(o, f->data, f->size, region, &r) : -EINVAL;
		poll_unref(&p, f);
		if (rc == -EINVAL && fits)
			continue; /* a frame that does not decode */
		if (rc)
			return rc;
		size_t at, len;
		bool found = find_words(r.text, text, &at, &len);
		if (found && where)
			words_box(&r, at, len, where);
		auto_ocr_result_free(&r);
		if (found)
			return 0;
	}
}

int
auto_wait_text(const struct serve_backend *b, struct auto_ocr *o, const char *text,
	       const struct auto_rect *region, int timeout_ms, const atomic_bool *cancel,
	       struct auto_rect *where)
{
	if (!o || !text)
		return -EINVAL;
	auto_ocr_set_cancel(o, cancel); /* a read under way stops too */
	int rc = wait_text(b, o, text, region, timeout_ms, cancel, where);
	auto_ocr_set_cancel(o, NULL);
	return rc;
}

/* ---- a needle image ---- */

static int
needle_load(const char *path, struct gray *out)
{
	png_image img;
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return -errno;
	int rc = -EINVAL;
	if (png_image_begin_read_from_stdio(&img, fp)) {
		img.format = PNG_FORMAT_GRAY;
		size_t n = PNG_IMAGE_SIZE(img);
		uint8_t *px = xmalloc(n ? n : 1);
		if (img.width > 0 && img.height > 0 && img.width <= 8192 && img.height <= 8192 &&
		    png_image_finish_read(&img, NULL, px, 0, NULL)) {
			*out = (struct gray){ px, (int)img.width, (int)img.height };
			rc = 0;
		} else {
			free(px);
		}
	}
	png_image_free(&img);
	fclose(fp);
	return rc;
}

/* Shrink by 4 (box filter); the last partial block is dropped. */
static void
gray_quarter(const struct gray *in, struct gray *out)
{
	int w = in->w / 4, h = in->h / 4;
	out->w = w;
	out->h = h;
	out->px = xmalloc((size_t)(w ? w : 1) * (size_t)(h ? h : 1));
	for (int y = 0; y < h; y++) {
		for (int x = 0; x < w; x++) {
			unsigned s = 0;
			for (int j = 0; j < 4; j++)
				for (int i = 0; i < 4; i++)
					s += in->px[(size_t)(y * 4 + j) * (size_t)in->w +
						    (size_t)(x * 4 + i)];
			out->px[(size_t)y * (size_t)w + (size_t)x] = (uint8_t)((s + 8) / 16);
		}
	}
}

/* Mean absolute difference of n at (x, y) of hay, in gray levels; stops early above limit. */
static double
mad_at(const struct gray *hay, const struct gray *n, int x, int y, double limit)
{
	uint64_t sum = 0, stop = (uint64_t)(limit * n->w * n->h) + 1;
	for (int j = 0; j < n->h; j++) {
		const uint8_t *a = hay->px + (size_t)(y + j) * (size_t)hay->w + (size_t)x;
		const uint8_t *b = n->px + (size_t)j * (size_t)n->w;
		for (int i = 0; i < n->w; i++)
			sum += (uint64_t)abs(a[i] - b[i]);
		if (sum > stop)
			return 256;
	}
	return (double)sum / ((double)n->w * n->h);
}

struct cand {
	int x, y;
	double mad;
};

/* Best position of needle in hay inside r (both full scale); its similarity 1 - mad / 255. */
static double
search(const struct gray *hay, const struct gray *needle, const struct auto_rect *r,
       const struct gray *hay4, const struct gray *needle4, int *bx, int *by)
{
	struct cand best[COARSE_CANDIDATES];
	int nbest = 0;
	/* coarse: every position of the 1/4 pictures (when the needle is big enough for it) */
	if (needle4->w >= 4 && needle4->h >= 4) {
		int x0 = r->x / 4, y0 = r->y / 4;
		int x1 = (r->x + r->w - needle->w) / 4, y1 = (r->y + r->h - needle->h) / 4;
		for (int y = y0; y <= y1 && y + needle4->h <= hay4->h; y++) {
			for (int x = x0; x <= x1 && x + needle4->w <= hay4->w; x++) {
				double lim = nbest == COARSE_CANDIDATES ? best[nbest - 1].mad : 256;
				double m = mad_at(hay4, needle4, x, y, lim);
				if (m >= lim)
					continue;
				int k = nbest < COARSE_CANDIDATES ? nbest++ : nbest - 1;
				while (k > 0 && best[k - 1].mad > m) {
					best[k] = best[k - 1];
					k--;
				}
				best[k] = (struct cand){ x * 4, y * 4, m };
			}
		}
	} else {
		best[nbest++] = (struct cand){ r->x, r->y, 0 };
	}
	/* fine: full scale around each candidate (all of r for a tiny needle) */
	double top = 256;
	for (int c = 0; c < nbest; c++) {
		bool tiny = needle4->w < 4 || needle4->h < 4;
		int xa = tiny ? r->x : best[c].x - 4, xb = tiny ? r->x + r->w : best[c].x + 4;
		int ya = tiny ? r->y : best[c].y - 4, yb = tiny ? r->y + r->h : best[c].y + 4;
		for (int y = ya < r->y ? r->y : ya; y <= yb; y++) {
			if (y + needle->h > r->y + r->h)
				break;
			for (int x = xa < r->x ? r->x : xa; x <= xb; x++) {
				if (x + needle->w > r->x + r->w)
					break;
				double m = mad_at(hay, needle, x, y, top);
				if (m < top) {
					top = m;
					*bx = x;
					*by = y;
				}
			}
		}
	}
	return top > 255 ? 0 : 1 - top / 255;
}

int
auto_wait_screen(const struct serve_backend *b, const char *needle_png, double threshold,
		 const struct auto_rect *region, int timeout_ms, const atomic_bool *cancel,
		 struct auto_rect *where)
{
	if (!needle_png || threshold < 0 || threshold > 1)
		return -EINVAL;
	struct gray needle = { 0 }, needle4 = { 0 }, hay = { 0 }, hay4 = { 0 };
	int rc = needle_load(needle_png, &needle);
	if (rc)
		return rc;
	gray_quarter(&needle, &needle4);
	tjhandle tj = tjInitDecompress();
	if (!tj) {
		rc = -ENOMEM;
		goto out;
	}
	struct poll p;
	poll_init(&p, b, timeout_ms, cancel);
	for (;;) {
		struct okvm_frame *f;
		rc = poll_next(&p, &f);
		if (rc)
			break;
		rc = gray_decode(&tj, f, 1, &hay);
		poll_unref(&p, f);
		if (rc)
			continue;
		struct auto_rect r;
		if (!auto_rect_clip(region, hay.w, hay.h, &r) || r.w < needle.w || r.h < needle.h) {
			rc = -EINVAL; /* the needle cannot fit: no frame will do */
			break;
		}
		gray_free(&hay4);
		gray_quarter(&hay, &hay4);
		int x = 0, y = 0;
		if (search(&hay, &needle, &r, &hay4, &needle4, &x, &y) >= threshold) {
			if (where)
				*where = (struct auto_rect){ x, y, needle.w, needle.h };
			break;
		}
	}
	tjDestroy(tj);
out:
	gray_free(&needle);
	gray_free(&needle4);
	gray_free(&hay);
	gray_free(&hay4);
	return rc;
}
