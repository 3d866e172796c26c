/*
 * DESIGN: OCR of a captured frame with libtesseract's C API (docs/automation.md, "OCR and waiting
 * on the screen"). Only the region asked for is decoded: a lossless crop of the JPEG on MCU
 * boundaries (tjTransform), then a grayscale decode and a cut to the exact pixels. Screens show
 * light text on dark (terminals, consoles, installers) as often as dark on light, and tesseract
 * reads dark on light best, so a region that is mostly dark is inverted. Text of a KVM's picture
 * is small (a 1080p console's letters are 10 x 20 pixels), so the region is scaled up by
 * SCALE before tesseract sees it; boxes are scaled back to frame pixels. One instance holds one
 * TessBaseAPI and its buffers; one thread at a time.
 *
 * libtesseract is loaded when the first reader is made (dlopen of the soname of the headers
 * built against), not linked: it brings leptonica, libarchive, libcurl, libgomp and their own
 * dependencies, several MB of resident pages in every okvm process (`okvm view` is budgeted at
 * 40 MB, docs/viewer.md "Memory") that never reads text. The calls go through the table
 * `tess`, typed from the headers.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <tesseract/capi.h>
#include <tesseract/version.h>
#include <turbojpeg.h>

#include "auto/ocr.h"
#include "okvm/log.h"
#include "okvm/video.h"
#include "lib/xalloc.h"

#define SCALE 2               /* region pixels -> tesseract pixels, each way */
#define PPI 140               /* what tesseract is told: 1080p console text at SCALE 2 */
#define MAX_LANG 63           /* bytes of a language list */
#define MAX_PIXELS (1u << 26) /* decoded frame pixels refused above (8K is 33 M) */

struct auto_ocr {
	TessBaseAPI *api;
	tjhandle tj;
	char lang[MAX_LANG + 1];
	ETEXT_DESC *monitor;       /* asks cancel_cb between words */
	const atomic_bool *cancel; /* auto_ocr_set_cancel */
	uint8_t *gray, *big;       /* decoded region, scaled region */
	size_t gray_cap, big_cap;
};

/* ---- libtesseract, loaded on first use ---- */

#define TESS_STR2(x) #x
#define TESS_STR(x) TESS_STR2(x)
#define TESS_SONAME "libtesseract.so." TESS_STR(TESSERACT_MAJOR_VERSION)
#define TESS_FUNCS(X)                        \
	X(TessBaseAPICreate)                 \
	X(TessBaseAPIInit2)                  \
	X(TessBaseAPISetVariable)            \
	X(TessBaseAPISetPageSegMode)         \
	X(TessBaseAPIEnd)                    \
	X(TessBaseAPIDelete)                 \
	X(TessBaseAPIGetIterator)            \
	X(TessBaseAPISetImage)               \
	X(TessBaseAPISetSourceResolution)    \
	X(TessBaseAPIRecognize)              \
	X(TessBaseAPIClear)                  \
	X(TessMonitorCreate)                 \
	X(TessMonitorSetCancelFunc)          \
	X(TessMonitorSetCancelThis)          \
	X(TessMonitorDelete)                 \
	X(TessResultIteratorGetPageIterator) \
	X(TessResultIteratorConfidence)      \
	X(TessResultIteratorGetUTF8Text)     \
	X(TessResultIteratorNext)            \
	X(TessResultIteratorDelete)          \
	X(TessPageIteratorIsAtBeginningOf)   \
	X(TessPageIteratorBoundingBox)       \
	X(TessPageIteratorBaseline)          \
	X(TessDeleteText)

static struct {
#define TESS_FIELD(fn) __typeof__(fn) *fn;
	TESS_FUNCS(TESS_FIELD)
#undef TESS_FIELD
} tess;
static void *tess_lib;
static pthread_once_t tess_once = PTHREAD_ONCE_INIT;
static bool tess_ok;
static char tess_why[320]; /* why not, said by tess_available() */

static void
tess_load(void)
{
	/* never closed: libgomp's threads and tesseract's tables live as long as the process */
	tess_lib = dlopen(TESS_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!tess_lib) {
		const char *e = dlerror(); /* now: a later dl call would replace it */
		snprintf(tess_why, sizeof(tess_why), "%s", e ? e : "not found");
		return;
	}
#define TESS_SYM(fn)                                                       \
	if (!(tess.fn = (__typeof__(fn) *)dlsym(tess_lib, #fn))) {         \
		snprintf(tess_why, sizeof(tess_why), "it has no %s", #fn); \
		return;                                                    \
	}
	TESS_FUNCS(TESS_SYM)
#undef TESS_SYM
	tess_ok = true;
}

/* 0, or -ELIBACC (said) when libtesseract cannot be loaded. */
static int
tess_available(void)
{
	pthread_once(&tess_once, tess_load);
	if (tess_ok)
		return 0;
	okvm_log(OKVM_LOG_ERROR, "ocr: cannot load %s (%s); install libtesseract5", TESS_SONAME,
		 tess_why);
	return -ELIBACC;
}

/* ---- languages ---- */

/* Where tesseract's *.traineddata live: $TESSDATA_PREFIX (as tesseract reads it), then Debian's. */
static const char *
tessdata_dir(char *buf, size_t n)
{
	static const char *const debian[] = {
		"/usr/share/tesseract-ocr/5/tessdata",
		"/usr/share/tesseract-ocr/4.00/tessdata",
		"/usr/share/tessdata",
	};
	struct stat st;
	const char *env = getenv("TESSDATA_PREFIX");
	if (env && *env) {
		snprintf(buf, n, "%s/tessdata", env);
		if (!stat(buf, &st) && S_ISDIR(st.st_mode))
			return buf;
		snprintf(buf, n, "%s", env);
		return buf;
	}
	for (size_t i = 0; i < sizeof(debian) / sizeof(debian[0]); i++) {
		if (!stat(debian[i], &st) && S_ISDIR(st.st_mode)) {
			snprintf(buf, n, "%s", debian[i]);
			return buf;
		}
	}
	return NULL;
}

static bool
lang_char_ok(char ch)
{
	return islower((unsigned char)ch) || isdigit((unsigned char)ch) || ch == '_';
}

int
auto_ocr_lang_check(const char *lang, char *why, size_t n)
{
	if (!lang)
		lang = "eng";
	size_t len = strlen(lang);
	bool ok = len > 0 && len <= MAX_LANG && lang[0] != '+' && lang[len - 1] != '+' &&
		  !strstr(lang, "++");
	for (const char *p = lang; ok && *p; p++)
		ok = lang_char_ok(*p) || *p == '+';
	if (!ok) {
		snprintf(why, n,
			 "OCR language '%.*s' is not a tesseract language list such as eng or "
			 "deu+eng",
			 MAX_LANG, lang);
		return -EINVAL;
	}
	char dir[4096];
	if (!tessdata_dir(dir, sizeof(dir))) {
		snprintf(why, n,
			 "no tesseract language data found: install the Debian package "
			 "tesseract-ocr-eng (or set TESSDATA_PREFIX)");
		return -ENOENT;
	}
	for (const char *p = lang; *p;) {
		size_t k = strcspn(p, "+");
		char path[4200];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%.*s.traineddata", dir, (int)k, p);
		if (stat(path, &st)) {
			char deb[40];
			snprintf(deb, sizeof(deb), "%.*s", (int)k, p);
			for (char *q = deb; *q; q++)
				if (*q == '_')
					*q = '-';
			snprintf(why, n,
				 "OCR language '%.*s' is not installed (no %s): install the Debian "
				 "package tesseract-ocr-%s",
				 (int)k, p, path, deb);
			return -ENOENT;
		}
		p += k;
		if (*p == '+')
			p++;
	}
	return 0;
}

static bool
cancel_cb(void *ud, int words)
{
	const struct auto_ocr *o = ud;
	(void)words;
	return o->cancel && atomic_load(o->cancel);
}

void
auto_ocr_set_cancel(struct auto_ocr *o, const atomic_bool *cancel)
{
	o->cancel = cancel;
}

int
auto_ocr_new(const char *lang, struct auto_ocr **out)
{
	*out = NULL;
	if (!lang)
		lang = "eng";
	char why[512], dir[4096];
	int rc = auto_ocr_lang_check(lang, why, sizeof(why));
	if (rc) {
		okvm_log(OKVM_LOG_ERROR, "ocr: %s", why);
		return rc;
	}
	if ((rc = tess_available()))
		return rc;
	struct auto_ocr *o = xcalloc(1, sizeof(*o));
	snprintf(o->lang, sizeof(o->lang), "%s", lang);
	o->api = tess.TessBaseAPICreate();
	o->tj = tjInitTransform();
	o->monitor = tess.TessMonitorCreate();
	if (!o->api || !o->tj || !o->monitor) {
		auto_ocr_free(o);
		return -ENOMEM;
	}
	/* The LSTM engine only (what Debian's tessdata_fast-like models hold). */
	if (tess.TessBaseAPIInit2(o->api, tessdata_dir(dir, sizeof(dir)), lang, OEM_LSTM_ONLY)) {
		okvm_log(OKVM_LOG_ERROR, "ocr: tesseract cannot load the language data for '%s'",
			 lang);
		auto_ocr_free(o);
		return -ENOENT;
	}
	tess.TessMonitorSetCancelFunc(o->monitor, cancel_cb);
	tess.TessMonitorSetCancelThis(o->monitor, o);
	tess.TessBaseAPISetVariable(o->api, "debug_file", "/dev/null");
	/* tessedit_do_invert stays on: prepare() inverts a mostly dark region as a whole, and
	 * tesseract tries a line of low confidence inverted too, which reads a dark window on a
	 * light desktop (or the reverse) for about 10% more time */
	tess.TessBaseAPISetPageSegMode(o->api, PSM_AUTO);
	*out = o;
	return 0;
}

void
auto_ocr_free(struct auto_ocr *o)
{
	if (!o)
		return;
	if (o->api) {
		tess.TessBaseAPIEnd(o->api);
		tess.TessBaseAPIDelete(o->api);
	}
	if (o->tj)
		tjDestroy(o->tj);
	if (o->monitor)
		tess.TessMonitorDelete(o->monitor);
	free(o->gray);
	free(o->big);
	free(o);
}

void
auto_ocr_result_free(struct auto_ocr_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_words; i++)
		free(r->words[i].text);
	free(r->words);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

/* ---- the picture ---- */

bool
auto_rect_clip(const struct auto_rect *in, int width, int height, struct auto_rect *out)
{
	struct auto_rect r = in ? *in : (struct auto_rect){ 0, 0, width, height };
	/* in 64 bits: x + w of a caller's rectangle may overflow an int */
	long long x0 = r.x, y0 = r.y, x1 = (long long)r.x + r.w, y1 = (long long)r.y + r.h;
	if (x0 < 0)
		x0 = 0;
	if (y0 < 0)
		y0 = 0;
	if (x1 > width)
		x1 = width;
	if (y1 > height)
		y1 = height;
	if (r.w <= 0 || r.h <= 0 || x1 <= x0 || y1 <= y0) {
		*out = (struct auto_rect){ 0, 0, 0, 0 };
		return false;
	}
	*out = (struct auto_rect){ (int)x0, (int)y0, (int)(x1 - x0), (int)(y1 - y0) };
	return true;
}

static uint8_t *
grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need > *cap) {
		free(*buf);
		*buf = xmalloc(need);
		*cap = need;
	}
	return *buf;
}

/* The region r of the JPEG as 8-bit gray in o->gray (r.w x r.h, packed). */
static int
decode_region(struct auto_ocr *o, const uint8_t *jpeg, size_t len, int sub,
	      const struct auto_rect *r, int width, int height)
{
	const uint8_t *src = jpeg;
	size_t src_len = len;
	unsigned char *cropped = NULL;
	unsigned long cropped_len = 0;
	int ox = 0, oy = 0, cw = width, ch = height;
	if (r->w < width || r->h < height) {
		/* lossless crop: the left and top edges on MCU boundaries */
		int mw = tjMCUWidth[sub], mh = tjMCUHeight[sub];
		tjtransform t = { 0 };
		t.r.x = r->x / mw * mw;
		t.r.y = r->y / mh * mh;
		t.r.w = r->x + r->w - t.r.x;
		t.r.h = r->y + r->h - t.r.y;
		t.op = TJXOP_NONE;
		t.options = TJXOPT_CROP | TJXOPT_GRAY | TJXOPT_COPYNONE;
		if (tjTransform(o->tj, jpeg, len, 1, &cropped, &cropped_len, &t, 0) == 0) {
			src = cropped;
			src_len = cropped_len;
			ox = r->x - t.r.x;
			oy = r->y - t.r.y;
			cw = t.r.w;
			ch = t.r.h;
		}
	}
	int rc = 0;
	size_t full = (size_t)cw * (size_t)ch;
	uint8_t *g = grow(&o->gray, &o->gray_cap, full);
	/* A frame with a recoverable fault decodes with a warning and leaves the rows it lacks
	 * untouched: those read as black, never as what the buffer held before. */
	memset(g, 0, full);
	if (tjDecompress2(o->tj, src, src_len, g, cw, 0, ch, TJPF_GRAY, 0) < 0 &&
	    tjGetErrorCode(o->tj) == TJERR_FATAL) {
		rc = -EINVAL;
	} else if (ox || oy || cw != r->w || ch != r->h) {
		for (int y = 0; y < r->h; y++) /* in place: each row moves left and up */
			memmove(g + (size_t)y * (size_t)r->w,
				g + (size_t)(y + oy) * (size_t)cw + (size_t)ox, (size_t)r->w);
	}
	if (cropped)
		tjFree(cropped);
	return rc;
}

/*
 * o->gray (w x h) -> o->big (w * SCALE x h * SCALE), dark on light: bilinear, which keeps the
 * strokes of small glyphs smooth where nearest-neighbour would make them stairs.
 */
static const uint8_t *
prepare(struct auto_ocr *o, int w, int h)
{
	const uint8_t *g = o->gray;
	size_t n = (size_t)w * (size_t)h;
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += g[i];
	bool invert = sum < (uint64_t)n * 128;
	int bw = w * SCALE, bh = h * SCALE;
	uint8_t *b = grow(&o->big, &o->big_cap, (size_t)bw * (size_t)bh);
	for (int y = 0; y < bh; y++) {
		/* the centre of this pixel in source coordinates, in 1/256 */
		int sy = ((2 * y + 1) * 128) / SCALE - 128;
		if (sy < 0)
			sy = 0;
		int y0 = sy >> 8, fy = sy & 255, y1 = y0 + 1 < h ? y0 + 1 : y0;
		const uint8_t *r0 = g + (size_t)y0 * (size_t)w, *r1 = g + (size_t)y1 * (size_t)w;
		uint8_t *out = b + (size_t)y * (size_t)bw;
		for (int x = 0; x < bw; x++) {
			int sx = ((2 * x + 1) * 128) / SCALE - 128;
			if (sx < 0)
				sx = 0;
			int x0 = sx >> 8, fx = sx & 255, x1 = x0 + 1 < w ? x0 + 1 : x0;
			int top = r0[x0] * (256 - fx) + r0[x1] * fx;
			int bot = r1[x0] * (256 - fx) + r1[x1] * fx;
			int v = (top * (256 - fy) + bot * fy + (1 << 15)) >> 16;
			out[x] = (uint8_t)(invert ? 255 - v : v);
		}
	}
	return b;
}

/* ---- recognition ---- */

/*
 * Debian's tesseract runs parts of its network on OpenMP threads (4 at a time), which spin
 * while they wait: on a machine whose cores are busy (a Raspberry Pi serving video, a CI
 * runner) that makes a read 2-3 times slower than one thread. With OpenMP's dynamic
 * adjustment on, libgomp gives a parallel region only as many threads as the load average
 * leaves cores free. It is a setting of the calling thread, so it is made before each read;
 * libgomp is found at run time (in the libraries libtesseract brought), and nothing is done without it.
 * OMP_THREAD_LIMIT=1 in the environment still caps it at one.
 */
static void
openmp_dynamic(void)
{
	void (*set_dynamic)(int) = (void (*)(int))dlsym(tess_lib, "omp_set_dynamic");
	if (set_dynamic)
		set_dynamic(1);
}

static void
append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = 0;
}

/*
 * Tesseract's words are rebuilt from its symbols, because its spaces go wrong in the way of
 * screens: in monospaced text it drops the space around one-character words ("0 1 2" becomes
 * "012"), splits a word at an underscore ("x86 _64") and drops most underscores between words
 * ("PREEMPT DYNAMIC"). So within a line, an ink gap between two symbols wider than SPLIT_GAP
 * character cells (the median advance in the picture) is a space, one narrower than JOIN_GAP is
 * none, and between those tesseract decides; where tesseract put a space, a gap of at least 0.8
 * cells crossed by a dark horizontal stroke below the baseline is underscores, one per cell. In monospaced text
 * the ink gap of a space is over 1.1 cells and that of no space under 0.9; proportional text
 * keeps tesseract's spaces, its word gaps lying between the two limits.
 */
#define SPLIT_GAP 1.0
#define JOIN_GAP 0.25

struct sym {
	char text[16];
	int l, t, r, b;           /* tesseract pixels */
	bool word, line;          /* tesseract starts a word, a line here */
	float conf;               /* of tesseract's word */
	int line_t, line_b, base; /* its line's box top and bottom, baseline at the symbol */
};

/* Whether the box [l, r) x [t, b) is mostly dark, i.e. holds light text on dark. */
static bool
box_dark(const uint8_t *px, int bw, int bh, int level, int l, int t, int r, int b)
{
	uint64_t sum = 0, n = 0;
	for (int y = t < 0 ? 0 : t; y < b && y < bh; y++)
		for (int x = l < 0 ? 0 : l; x < r && x < bw; x++, n++)
			sum += px[(size_t)y * (size_t)bw + (size_t)x];
	return n && sum < n * (uint64_t)level;
}

/* Otsu's threshold of the prepared picture: below it is ink. */
static int
ink_level(const uint8_t *px, size_t n)
{
	size_t hist[256] = { 0 };
	for (size_t i = 0; i < n; i++)
		hist[px[i]]++;
	double sum = 0, sb = 0, wb = 0, best = -1;
	for (int i = 0; i < 256; i++)
		sum += (double)i * (double)hist[i];
	int level = 128;
	for (int i = 0; i < 256; i++) {
		wb += (double)hist[i];
		if (wb == 0)
			continue;
		double wf = (double)n - wb;
		if (wf == 0)
			break;
		sb += (double)i * (double)hist[i];
		double mb = sb / wb, mf = (sum - sb) / wf;
		double between = wb * wf * (mb - mf) * (mb - mf);
		if (between > best) {
			best = between;
			level = i;
		}
	}
	return level;
}

/*
 * The ink gap between symbols a and b of a line: the widest run of columns between their
 * centres with no ink from the line's top down to the baseline (so an underscore does not close
 * it); its first column in *x0. Symbols' own boxes are rough (tesseract estimates them from its
 * network's steps): their centres are good, except that now and then a box spans several
 * characters; of one wider than 1.5 cells, the half cell next to the gap is taken.
 */
static int
ink_gap(const struct auto_ocr *o, int bw, int bh, int level, const struct sym *a,
	const struct sym *b, double cell, int *x0)
{
	int half = (int)(cell / 2);
	int ca = a->r - a->l > 1.5 * cell ? a->r - half : (a->l + a->r) / 2;
	int cb = b->r - b->l > 1.5 * cell ? b->l + half : (b->l + b->r) / 2;
	/* an underscore's ink is all below the baseline: next to one, count it */
	bool under = !strcmp(a->text, "_") || !strcmp(b->text, "_");
	int low = under ? a->line_b : a->base;
	int top = a->line_t < 0 ? 0 : a->line_t, bot = low < bh ? low : bh - 1;
	/* light text on dark here (a terminal pane, a button, a title bar on a light screen)? */
	bool light = box_dark(o->big, bw, bh, level, a->l, a->line_t, b->r, a->line_b);
	int best = 0, run = 0;
	*x0 = ca;
	for (int x = ca + 1; x < cb && x < bw; x++) {
		bool ink = false;
		for (int y = top; y < bot && !ink; y++)
			ink = (o->big[(size_t)y * (size_t)bw + (size_t)x] < level) != light;
		run = ink ? 0 : run + 1;
		if (run > best) {
			best = run;
			*x0 = x - run + 1;
		}
	}
	return best;
}

/* How many underscores the gap [x0, x0 + w) below the baseline holds: 0 unless one row there
 * is ink over nearly all of it. cell: the width of one character, tesseract pixels. */
static int
underscores(const struct auto_ocr *o, int bw, int bh, int level, const struct sym *a, int x0, int w,
	    double cell)
{
	int h = a->line_b - a->line_t;
	if (w < 0.8 * cell || h <= 0)
		return 0; /* narrower than the space between two letters */
	bool light = box_dark(o->big, bw, bh, level, x0, a->line_t, x0 + w, a->line_b);
	int y0 = a->base, y1 = a->base + (int)(0.45 * h);
	if (y0 < 0)
		y0 = 0;
	if (y1 >= bh)
		y1 = bh - 1;
	for (int y = y0; y <= y1; y++) {
		const uint8_t *row = o->big + (size_t)y * (size_t)bw;
		int dark = 0;
		for (int x = x0; x < x0 + w && x < bw; x++)
			dark += (row[x] < level) != light;
		if (dark * 4 >= w * 3) {
			int n = (int)((double)w / cell + 0.5);
			return n < 1 ? 1 : n > 64 ? 64 : n;
		}
	}
	return 0;
}

static void
add_word(struct auto_ocr_result *out, size_t *cap, const struct auto_rect *r, const char *text,
	 int l, int t, int rr, int bb, float conf)
{
	if (out->n_words == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		out->words = xrealloc(out->words, *cap * sizeof(*out->words));
	}
	struct auto_ocr_word *w = &out->words[out->n_words++];
	w->text = xstrdup(text);
	w->box.x = r->x + l / SCALE;
	w->box.y = r->y + t / SCALE;
	w->box.w = (rr + SCALE - 1) / SCALE - l / SCALE;
	w->box.h = (bb + SCALE - 1) / SCALE - t / SCALE;
	w->conf = conf < 0 ? 0 : conf;
}

/* The symbols of the last recognition, in reading order; *n of them. */
static struct sym *
symbols(struct auto_ocr *o, size_t *n)
{
	size_t cap = 0;
	struct sym *s = NULL;
	*n = 0;
	TessResultIterator *ri = tess.TessBaseAPIGetIterator(o->api);
	if (!ri)
		return NULL;
	TessPageIterator *pi = tess.TessResultIteratorGetPageIterator(ri);
	int lt = 0, lb = 0, bx1 = 0, by1 = 0, bx2 = 1, by2 = 0;
	float conf = 0;
	bool line = true;
	do {
		if (tess.TessPageIteratorIsAtBeginningOf(pi, RIL_TEXTLINE)) {
			int l, r;
			line = true;
			if (!tess.TessPageIteratorBoundingBox(pi, RIL_TEXTLINE, &l, &lt, &r, &lb) ||
			    !tess.TessPageIteratorBaseline(pi, RIL_TEXTLINE, &bx1, &by1, &bx2,
							   &by2))
				bx2 = bx1 + 1, by1 = by2 = lb;
			if (bx2 == bx1)
				bx2 = bx1 + 1;
		}
		bool word = tess.TessPageIteratorIsAtBeginningOf(pi, RIL_WORD);
		if (word)
			conf = tess.TessResultIteratorConfidence(ri, RIL_WORD);
		char *t = tess.TessResultIteratorGetUTF8Text(ri, RIL_SYMBOL);
		int l, tp, r, b;
		/* a "symbol" of blanks (tesseract gives one for a picture edge): none */
		if (t && t[strspn(t, " \t\n")] && strlen(t) < sizeof(s->text) &&
		    tess.TessPageIteratorBoundingBox(pi, RIL_SYMBOL, &l, &tp, &r, &b)) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 256;
				s = xrealloc(s, cap * sizeof(*s));
			}
			struct sym *y = &s[(*n)++];
			snprintf(y->text, sizeof(y->text), "%s", t);
			y->l = l, y->t = tp, y->r = r, y->b = b;
			y->word = word || line;
			y->line = line;
			y->conf = conf;
			y->line_t = lt;
			y->line_b = lb;
			y->base = by1 + (by2 - by1) * (l - bx1) / (bx2 - bx1);
			line = false;
		}
		tess.TessDeleteText(t);
	} while (tess.TessResultIteratorNext(ri, RIL_SYMBOL));
	tess.TessResultIteratorDelete(ri);
	return s;
}

/* The width of a character cell: the median advance of neighbours in tesseract's words. */
static double
cell_width(const struct sym *s, size_t n)
{
	size_t m = 0, cap = n ? n : 1;
	int *adv = xmalloc(cap * sizeof(*adv));
	for (size_t i = 1; i < n; i++)
		if (!s[i].word && s[i].l > s[i - 1].l)
			adv[m++] = s[i].l - s[i - 1].l;
	double cell = 0;
	if (m) {
		for (size_t i = 1; i < m; i++) /* insertion sort: m is a screenful at most */
			for (size_t j = i; j > 0 && adv[j - 1] > adv[j]; j--) {
				int t = adv[j];
				adv[j] = adv[j - 1];
				adv[j - 1] = t;
			}
		cell = adv[m / 2];
	}
	free(adv);
	return cell > 0 ? cell : 10.0 * SCALE;
}

/* Words, their boxes in frame pixels, and the text: words of a line joined by a space, lines by
 * '\n' (tesseract's own text adds blank lines between blocks). */
static void
collect(struct auto_ocr *o, const struct auto_rect *r, int bw, int bh, struct auto_ocr_result *out)
{
	size_t n, cap = 0, tlen = 0, tcap = 0;
	out->text = xstrdup("");
	int level = ink_level(o->big, (size_t)bw * (size_t)bh);
	struct sym *s = symbols(o, &n);
	if (!n) {
		free(s);
		return;
	}
	double cell = cell_width(s, n);
	char word[1024];
	size_t wl = 0;
	int wl_l = 0, wl_t = 0, wl_r = 0, wl_b = 0;
	float wconf = 100;
	for (size_t i = 0; i <= n; i++) {
		bool start = i == n || s[i].line;
		int under = 0;
		if (!start) {
			int x0, gap = ink_gap(o, bw, bh, level, &s[i - 1], &s[i], cell, &x0);
			start = s[i].word;
			if (gap > SPLIT_GAP * cell)
				start = true;
			else if (gap < JOIN_GAP * cell)
				start = false;
			/* only where tesseract saw a space: inside its words the symbols' places
			 * are too rough to tell a gap from a neighbour's */
			if (s[i].word && strcmp(s[i - 1].text, "_") && strcmp(s[i].text, "_"))
				under = underscores(o, bw, bh, level, &s[i - 1], x0, gap, cell);
			if (under)
				start = false;
		}
		if ((start || wl + 16 + (size_t)under >= sizeof(word)) && wl) {
			add_word(out, &cap, r, word, wl_l, wl_t, wl_r, wl_b, wconf);
			wl = 0;
		}
		if (i == n)
			break;
		if (!wl) {
			if (tlen)
				append(&out->text, &tlen, &tcap, s[i].line ? "\n" : " ", 1);
			wl_l = s[i].l, wl_t = s[i].t, wl_r = s[i].r, wl_b = s[i].b;
			wconf = s[i].conf;
		}
		for (int k = 0; k < under; k++) {
			word[wl++] = '_';
			append(&out->text, &tlen, &tcap, "_", 1);
		}
		size_t tl = strlen(s[i].text);
		memcpy(word + wl, s[i].text, tl);
		wl += tl;
		word[wl] = 0;
		append(&out->text, &tlen, &tcap, s[i].text, tl);
		wl_l = s[i].l < wl_l ? s[i].l : wl_l;
		wl_t = s[i].t < wl_t ? s[i].t : wl_t;
		wl_r = s[i].r > wl_r ? s[i].r : wl_r;
		wl_b = s[i].b > wl_b ? s[i].b : wl_b;
		wconf = s[i].conf < wconf ? s[i].conf : wconf;
	}
	free(s);
}

/* A handle that failed on a bad JPEG may fail on the next good one (libjpeg-turbo 2.1 leaves
 * its state behind): a fresh one. */
static int
tj_reset(struct auto_ocr *o)
{
	tjDestroy(o->tj);
	o->tj = tjInitTransform();
	if (!o->tj)
		abort(); /* out of memory, as xmalloc */
	return -EINVAL;
}

int
auto_ocr_jpeg(struct auto_ocr *o, const void *jpeg, size_t len, const struct auto_rect *region,
	      struct auto_ocr_result *out)
{
	memset(out, 0, sizeof(*out));
	uint64_t t0 = okvm_now_us();
	int w = 0, h = 0, sub = -1, cs = -1;
	if (!jpeg || !len || tjDecompressHeader3(o->tj, jpeg, len, &w, &h, &sub, &cs) < 0 ||
	    w <= 0 || h <= 0 || (uint64_t)w * (uint64_t)h > MAX_PIXELS || sub < 0 ||
	    sub >= TJ_NUMSAMP)
		return jpeg && len ? tj_reset(o) : -EINVAL;
	struct auto_rect r;
	if (!auto_rect_clip(region, w, h, &r))
		return -EINVAL;
	int rc = decode_region(o, jpeg, len, sub, &r, w, h);
	if (rc)
		return tj_reset(o);
	const uint8_t *img = prepare(o, r.w, r.h);
	tess.TessBaseAPISetImage(o->api, img, r.w * SCALE, r.h * SCALE, 1, r.w * SCALE);
	tess.TessBaseAPISetSourceResolution(o->api, PPI);
	openmp_dynamic();
	if (cancel_cb(o, 0))
		return -ECANCELED;
	int failed = tess.TessBaseAPIRecognize(o->api, o->monitor);
	if (failed || cancel_cb(o, 0)) {
		tess.TessBaseAPIClear(o->api);
		return cancel_cb(o, 0) ? -ECANCELED : -EIO;
	}
	out->width = w;
	out->height = h;
	collect(o, &r, r.w * SCALE, r.h * SCALE, out);
	tess.TessBaseAPIClear(o->api);
	out->ms = (double)(okvm_now_us() - t0) / 1000.0;
	return 0;
}

char *
auto_ocr_result_json(const struct auto_ocr_result *r)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "text", r->text ? r->text : "");
	cJSON *arr = cJSON_AddArrayToObject(o, "words");
	for (size_t i = 0; i < r->n_words; i++) {
		const struct auto_ocr_word *w = &r->words[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "text", w->text);
		cJSON_AddNumberToObject(e, "x", w->box.x);
		cJSON_AddNumberToObject(e, "y", w->box.y);
		cJSON_AddNumberToObject(e, "w", w->box.w);
		cJSON_AddNumberToObject(e, "h", w->box.h);
		cJSON_AddNumberToObject(e, "conf", (int)(w->conf + 0.5f));
		cJSON_AddItemToArray(arr, e);
	}
	cJSON_AddNumberToObject(o, "width", r->width);
	cJSON_AddNumberToObject(o, "height", r->height);
	cJSON_AddNumberToObject(o, "ms", (int)(r->ms + 0.5));
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}
