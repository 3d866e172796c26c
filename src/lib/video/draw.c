/*
 * DESIGN: the little drawing okvm needs: fill rectangles and blend glyphs of the built-in font
 * (generated at build time from DejaVu Sans Mono and DejaVu Sans: the BMP code points they have,
 * 4-bit coverage, see font/gen-font.c) on an RGB canvas, and
 * encode that canvas with libjpeg-turbo. Used for the placeholder pictures ("no signal", "no
 * device") and by the virtual target's screen. No state; the caller owns canvas and handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <turbojpeg.h>

#include "lib/video/draw.h"
#include "okvm/text.h"
#include "lib/xalloc.h"

static size_t
canvas_bytes(const struct okvm_canvas *cv)
{
	size_t n = (size_t)cv->width * (size_t)cv->height * 3;
	return n ? n : 1;
}

/* The pixels are a mapping of their own, not heap memory: a frame-sized canvas freed goes back
 * to the system at once (from a thread's malloc arena it could stay: malloc_trim does not trim
 * an arena's top, and glibc's trim threshold grows with the sizes freed). Zeroed, as calloc's. */
void
canvas_init(struct okvm_canvas *cv, int width, int height)
{
	cv->width = width;
	cv->height = height;
	void *p = mmap(NULL, canvas_bytes(cv), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (p == MAP_FAILED)
		abort(); /* out of memory, as xcalloc */
	cv->rgb = p;
}

void
canvas_fini(struct okvm_canvas *cv)
{
	if (cv->rgb)
		munmap(cv->rgb, canvas_bytes(cv));
	cv->rgb = NULL;
}

void
canvas_fill(struct okvm_canvas *cv, int x, int y, int w, int h, uint32_t rgb)
{
	int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
	int x1 = x + w > cv->width ? cv->width : x + w;
	int y1 = y + h > cv->height ? cv->height : y + h;
	if (x0 >= x1 || y0 >= y1)
		return;
	uint8_t px[3] = { (uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb };
	uint8_t *row = cv->rgb + ((size_t)y0 * (size_t)cv->width + (size_t)x0) * 3;
	for (int i = x0; i < x1; i++)
		memcpy(row + (size_t)(i - x0) * 3, px, 3);
	size_t len = (size_t)(x1 - x0) * 3;
	for (int j = y0 + 1; j < y1; j++)
		memcpy(cv->rgb + ((size_t)j * (size_t)cv->width + (size_t)x0) * 3, row, len);
}

/* Index of cp's cell; okvm_font_glyphs (the replacement box) if the font lacks it. */
static unsigned
glyph_index(uint32_t cp)
{
	if (cp >= 32 && cp <= 126)
		return cp - 32;
	unsigned lo = 95, hi = okvm_font_glyphs;
	if (cp > 0xFFFF)
		return okvm_font_glyphs;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (okvm_font_cps[mid] < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < okvm_font_glyphs && okvm_font_cps[lo] == cp ? lo : okvm_font_glyphs;
}

bool
font_has_glyph(uint32_t cp)
{
	return glyph_index(cp) < okvm_font_glyphs;
}

static void
blend(uint8_t *p, const uint8_t fg[3], unsigned a)
{
	if (a == 255) {
		memcpy(p, fg, 3);
		return;
	}
	for (int k = 0; k < 3; k++)
		p[k] = (uint8_t)((p[k] * (255 - a) + fg[k] * a + 127) / 255);
}

/* Blend glyph cell g at (x, y), coverage scaled by alpha/255. */
static void
glyph_cell(struct okvm_canvas *cv, int x, int y, const unsigned char *g, uint32_t rgb, int scale,
	   unsigned alpha)
{
	uint8_t fg[3] = { (uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb };
	if (scale == 1 && x >= 0 && y >= 0 && x + OKVM_FONT_W <= cv->width &&
	    y + OKVM_FONT_H <= cv->height) { /* the common case: a whole cell, two pixels a byte */
		for (int gy = 0; gy < OKVM_FONT_H; gy++) {
			uint8_t *p = cv->rgb +
				     ((size_t)(y + gy) * (size_t)cv->width + (size_t)x) * 3;
			const unsigned char *src = g + gy * (OKVM_FONT_W / 2);
			for (int i = 0; i < OKVM_FONT_W / 2; i++, p += 6) {
				if (!src[i])
					continue;
				unsigned a = (src[i] >> 4) * 17u, b = (src[i] & 15) * 17u;
				if (alpha < 255)
					a = a * alpha / 255, b = b * alpha / 255;
				if (a)
					blend(p, fg, a);
				if (b)
					blend(p + 3, fg, b);
			}
		}
		return;
	}
	for (int gy = 0; gy < OKVM_FONT_H * scale; gy++) {
		int py = y + gy;
		if (py < 0 || py >= cv->height)
			continue;
		uint8_t *row = cv->rgb + (size_t)py * (size_t)cv->width * 3;
		const unsigned char *src = g + (gy / scale) * (OKVM_FONT_W / 2);
		for (int gx = 0; gx < OKVM_FONT_W * scale; gx++) {
			int px = x + gx, fx = gx / scale;
			unsigned a = (fx & 1 ? src[fx / 2] & 15 : src[fx / 2] >> 4) * 17;
			if (alpha < 255)
				a = a * alpha / 255;
			if (a && px >= 0 && px < cv->width)
				blend(row + (size_t)px * 3, fg, a);
		}
	}
}

void
canvas_glyph(struct okvm_canvas *cv, int x, int y, uint32_t cp, uint32_t rgb, int scale)
{
	glyph_cell(cv, x, y, okvm_font_cells[glyph_index(cp)], rgb, scale, 255);
}

void
canvas_fill_alpha(struct okvm_canvas *cv, int x, int y, int w, int h, uint32_t rgb, unsigned alpha)
{
	if (alpha >= 255) {
		canvas_fill(cv, x, y, w, h, rgb);
		return;
	}
	int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
	int x1 = x + w > cv->width ? cv->width : x + w;
	int y1 = y + h > cv->height ? cv->height : y + h;
	uint8_t fg[3] = { (uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb };
	for (int j = y0; j < y1; j++) {
		uint8_t *p = cv->rgb + ((size_t)j * (size_t)cv->width + (size_t)x0) * 3;
		for (int i = x0; i < x1; i++, p += 3)
			blend(p, fg, alpha);
	}
}

void
canvas_ring(struct okvm_canvas *cv, int cx, int cy, int r_in, int r_out, uint32_t rgb,
	    unsigned alpha)
{
	uint8_t fg[3] = { (uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb };
	int in2 = r_in * r_in, out2 = r_out * r_out;
	for (int dy = -r_out; dy <= r_out; dy++) {
		int y = cy + dy;
		if (y < 0 || y >= cv->height)
			continue;
		for (int dx = -r_out; dx <= r_out; dx++) {
			int x = cx + dx, d2 = dx * dx + dy * dy;
			if (x >= 0 && x < cv->width && d2 >= in2 && d2 <= out2)
				blend(cv->rgb + ((size_t)y * (size_t)cv->width + (size_t)x) * 3, fg,
				      alpha > 255 ? 255 : alpha);
		}
	}
}

uint32_t
utf8_take(const char **s)
{
	/* One decoder for the project (okvm/text.h); broken bytes draw as U+FFFD. */
	uint32_t cp;
	int n = okvm_utf8_next(*s, strnlen(*s, 4), &cp);
	if (n < 0) {
		*s += 1;
		return 0xFFFD;
	}
	*s += n;
	return cp;
}

int
canvas_text_alpha(struct okvm_canvas *cv, int x, int y, const char *utf8, uint32_t rgb, int scale,
		  unsigned alpha)
{
	while (*utf8) {
		glyph_cell(cv, x, y, okvm_font_cells[glyph_index(utf8_take(&utf8))], rgb, scale,
			   alpha > 255 ? 255 : alpha);
		x += OKVM_FONT_W * scale;
	}
	return x;
}

int
canvas_text(struct okvm_canvas *cv, int x, int y, const char *utf8, uint32_t rgb, int scale)
{
	return canvas_text_alpha(cv, x, y, utf8, rgb, scale, 255);
}

int
text_cells(const char *utf8)
{
	int n = 0;
	while (*utf8) {
		utf8_take(&utf8);
		n++;
	}
	return n;
}

size_t
canvas_jpeg_bound(const struct okvm_canvas *cv)
{
	return tjBufSize(cv->width, cv->height, TJSAMP_420);
}

long
canvas_encode(void *handle, const struct okvm_canvas *cv, int quality, uint8_t *out, size_t *cap)
{
	size_t need = canvas_jpeg_bound(cv);
	if (*cap < need) {
		*cap = need;
		return -ENOSPC;
	}
	unsigned long size = *cap;
	if (tjCompress2(handle, cv->rgb, cv->width, 0, cv->height, TJPF_RGB, &out, &size,
			TJSAMP_420, quality, TJFLAG_NOREALLOC | TJFLAG_FASTDCT))
		return -EIO;
	return (long)size;
}

long
placeholder_jpeg(int width, int height, const char *title, const char *detail, uint8_t **out)
{
	struct okvm_canvas cv;
	canvas_init(&cv, width, height);
	canvas_fill(&cv, 0, 0, width, height, OKVM_RGB(24, 24, 32));
	int scale = width >= 1280 ? 4 : width >= 640 ? 3 : 2;
	int tw = text_cells(title) * OKVM_FONT_W * scale;
	int ty = height / 2 - OKVM_FONT_H * scale;
	canvas_text(&cv, (width - tw) / 2, ty, title, OKVM_RGB(240, 240, 240), scale);
	int ds = scale > 2 ? 2 : 1;
	int dw = text_cells(detail) * OKVM_FONT_W * ds;
	canvas_text(&cv, (width - dw) / 2, ty + OKVM_FONT_H * (scale + 1), detail,
		    OKVM_RGB(170, 170, 180), ds);
	size_t cap = canvas_jpeg_bound(&cv);
	uint8_t *buf = malloc(cap);
	tjhandle tj = tjInitCompress();
	long n = buf && tj ? canvas_encode(tj, &cv, 80, buf, &cap) : -ENOMEM;
	if (tj)
		tjDestroy(tj);
	canvas_fini(&cv);
	if (n < 0) {
		free(buf);
		return n;
	}
	*out = buf;
	return n;
}
