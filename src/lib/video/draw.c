/*
 * DESIGN: the little drawing okvm needs: fill rectangles and blend glyphs of the built-in font
 * (generated at build time from DejaVu Sans Mono, see font/gen-font.c) on an RGB canvas, and
 * encode that canvas with libjpeg-turbo. Used for the placeholder pictures ("no signal", "no
 * device") and by the virtual target's screen. No state; the caller owns canvas and handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "lib/video/draw.h"
#include "okvm/text.h"
#include "lib/xalloc.h"

void
canvas_init(struct okvm_canvas *cv, int width, int height)
{
	cv->width = width;
	cv->height = height;
	cv->rgb = xcalloc((size_t)width * (size_t)height, 3);
}

void
canvas_fini(struct okvm_canvas *cv)
{
	free(cv->rgb);
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

static int
glyph_index(uint32_t cp)
{
	if (cp >= 32 && cp <= 126)
		return (int)cp - 32;
	if (cp >= 160 && cp <= 255)
		return 95 + (int)cp - 160;
	return OKVM_FONT_GLYPHS - 1;
}

static void
blend(uint8_t *p, const uint8_t fg[3], unsigned a)
{
	for (int k = 0; k < 3; k++)
		p[k] = (uint8_t)((p[k] * (255 - a) + fg[k] * a + 127) / 255);
}

void
canvas_glyph(struct okvm_canvas *cv, int x, int y, uint32_t cp, uint32_t rgb, int scale)
{
	const unsigned char *g = okvm_font_cells[glyph_index(cp)];
	uint8_t fg[3] = { (uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb };
	for (int gy = 0; gy < OKVM_FONT_H * scale; gy++) {
		int py = y + gy;
		if (py < 0 || py >= cv->height)
			continue;
		uint8_t *row = cv->rgb + (size_t)py * (size_t)cv->width * 3;
		for (int gx = 0; gx < OKVM_FONT_W * scale; gx++) {
			int px = x + gx;
			unsigned a = g[(gy / scale) * OKVM_FONT_W + gx / scale];
			if (a && px >= 0 && px < cv->width)
				blend(row + (size_t)px * 3, fg, a);
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
canvas_text(struct okvm_canvas *cv, int x, int y, const char *utf8, uint32_t rgb, int scale)
{
	while (*utf8) {
		canvas_glyph(cv, x, y, utf8_take(&utf8), rgb, scale);
		x += OKVM_FONT_W * scale;
	}
	return x;
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
	int tw = (int)strlen(title) * OKVM_FONT_W * scale;
	int ty = height / 2 - OKVM_FONT_H * scale;
	canvas_text(&cv, (width - tw) / 2, ty, title, OKVM_RGB(240, 240, 240), scale);
	int ds = scale > 2 ? 2 : 1;
	int dw = (int)strlen(detail) * OKVM_FONT_W * ds;
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
