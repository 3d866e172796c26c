/*
 * OCR of a captured frame (docs/automation.md, "OCR and waiting on the screen").
 *
 * The JPEG of a frame is decoded to grayscale (only the region asked for), scaled up when its
 * text is small, and read by libtesseract. Used by `okvm ocr`, GET /api/ocr, the script engine's
 * waits and the MCP server.
 */
#ifndef OKVM_AUTO_OCR_H
#define OKVM_AUTO_OCR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* A rectangle in pixels of the captured frame. */
struct auto_rect {
	int x, y, w, h;
};

struct auto_ocr_word {
	char *text; /* UTF-8 */
	struct auto_rect box;
	float conf; /* 0..100 */
};

struct auto_ocr_result {
	char *text; /* UTF-8, lines joined by \n */
	struct auto_ocr_word *words;
	size_t n_words;
	int width, height; /* of the frame */
	double ms;         /* decode + recognition time */
};

/* One tesseract instance; used by one thread at a time. */
struct auto_ocr;

/* lang: "eng", "deu+eng"; NULL = "eng". Returns 0, -ENOENT when a language's data is missing
 * (a message to stderr names the Debian package tesseract-ocr-LANG), -EINVAL for a malformed
 * language name, -ENOMEM. */
int auto_ocr_new(const char *lang, struct auto_ocr **out);

/* region: NULL = the whole frame; clipped to the frame; -EINVAL if empty after clipping or
 * the JPEG cannot be decoded; -ECANCELED (auto_ocr_set_cancel). Boxes in out are in frame
 * pixels. On failure out is zeroed. */
int auto_ocr_jpeg(struct auto_ocr *o, const void *jpeg, size_t len, const struct auto_rect *region,
		  struct auto_ocr_result *out);

void auto_ocr_result_free(struct auto_ocr_result *r);

/* From now on a read stops soon after *cancel becomes true (tesseract looks between words):
 * auto_ocr_jpeg returns -ECANCELED. NULL: reads run to the end. Set it on the reading thread. */
void auto_ocr_set_cancel(struct auto_ocr *o, const atomic_bool *cancel);

/* r as JSON: {"text", "words": [{"text", "x", "y", "w", "h", "conf"}], "width", "height",
 * "ms"} (conf and ms rounded to integers), as okvm ocr --json and GET /api/ocr answer. Free
 * with free(). */
char *auto_ocr_result_json(const struct auto_ocr_result *r);

/* Whether lang names installed tesseract data: 0; -EINVAL (not a list such as "deu+eng") or
 * -ENOENT (a language's data is missing), with one line for the user in why. Any thread. */
int auto_ocr_lang_check(const char *lang, char *why, size_t n);

/* in (NULL: the whole frame) clipped to a width x height frame into out; false if nothing is
 * left (or in->w or in->h <= 0). */
bool auto_rect_clip(const struct auto_rect *in, int width, int height, struct auto_rect *out);
void auto_ocr_free(struct auto_ocr *o);

#endif
