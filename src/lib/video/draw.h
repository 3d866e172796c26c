/* Internal: an RGB canvas, the built-in font, and JPEG encoding (placeholders, virtual screen). */
#ifndef OKVM_LIB_VIDEO_DRAW_H
#define OKVM_LIB_VIDEO_DRAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OKVM_FONT_W 10
#define OKVM_FONT_H 20
#define OKVM_FONT_CELL_BYTES (OKVM_FONT_W * OKVM_FONT_H / 2) /* 4-bit coverage, row-major */

/* The built-in font (font/gen-font.c): okvm_font_glyphs code points in ascending order (ASCII
 * 32-126 first), their cells, and one more cell after them: the replacement box. */
extern const uint16_t okvm_font_cps[];
extern const unsigned okvm_font_glyphs;
extern const unsigned char okvm_font_cells[][OKVM_FONT_CELL_BYTES];

struct okvm_canvas {
	uint8_t *rgb; /* width * height * 3, row-major, no padding */
	int width, height;
};

#define OKVM_RGB(r, g, b) ((uint32_t)(r) << 16 | (uint32_t)(g) << 8 | (uint32_t)(b))

void canvas_init(struct okvm_canvas *cv, int width, int height); /* aborts on OOM */
void canvas_fini(struct okvm_canvas *cv);
/** Fill a rectangle (clipped). */
void canvas_fill(struct okvm_canvas *cv, int x, int y, int w, int h, uint32_t rgb);
/** true if the built-in font has a glyph for cp (otherwise it draws as the replacement box). */
bool font_has_glyph(uint32_t cp);
/** Blend one glyph for code point cp at (x, y), each font pixel scale x scale. */
void canvas_glyph(struct okvm_canvas *cv, int x, int y, uint32_t cp, uint32_t rgb, int scale);
/** Draw UTF-8 text on one line; returns the x after the last glyph. */
int canvas_text(struct okvm_canvas *cv, int x, int y, const char *utf8, uint32_t rgb, int scale);
/** The same, faded: alpha 0 (invisible) .. 255 (as canvas_text). */
int canvas_text_alpha(struct okvm_canvas *cv, int x, int y, const char *utf8, uint32_t rgb,
		      int scale, unsigned alpha);
/** Cells (code points) UTF-8 text takes on a line. */
int text_cells(const char *utf8);
/** Blend a rectangle over the picture: alpha 0..255 (255 = canvas_fill). Clipped. */
void canvas_fill_alpha(struct okvm_canvas *cv, int x, int y, int w, int h, uint32_t rgb,
		       unsigned alpha);
/** Blend the ring of pixels between r_in and r_out (inclusive) from (cx, cy); r_in 0: a disc. */
void canvas_ring(struct okvm_canvas *cv, int cx, int cy, int r_in, int r_out, uint32_t rgb,
		 unsigned alpha);
/** Decode one UTF-8 sequence at *s (advancing it); invalid bytes yield U+FFFD. */
uint32_t utf8_take(const char **s);

/**
 * Encode the canvas with libjpeg-turbo (4:2:0) into out (capacity *cap); if it does not fit,
 * returns -ENOSPC with *cap set to the size needed. Returns bytes written.
 * handle: a tjInitCompress() handle owned by the calling thread.
 */
long canvas_encode(void *handle, const struct okvm_canvas *cv, int quality, uint8_t *out,
		   size_t *cap);
/** Worst-case JPEG size for a canvas (tjBufSize). */
size_t canvas_jpeg_bound(const struct okvm_canvas *cv);

/**
 * Render okvm's "no signal" / "no device" picture: title in large letters, detail below.
 * Returns a malloc'ed JPEG in *out (caller frees) and its size, or -errno.
 */
long placeholder_jpeg(int width, int height, const char *title, const char *detail, uint8_t **out);

#endif
