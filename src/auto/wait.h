/*
 * Waiting on the target's screen (docs/automation.md, "OCR and waiting on the screen").
 *
 * All poll the newest frame of a serve backend (src/serve/backend.h: ops->newest_frame /
 * frame_unref; the caller has called want_frames(true)). They block the calling thread, so
 * never call them on the libwebsockets service thread.
 *
 * Return 0 when met, -ETIMEDOUT, -ECANCELED when *cancel became true, other -errno.
 * cancel may be NULL. timeout_ms < 0: no timeout.
 */
#ifndef OKVM_AUTO_WAIT_H
#define OKVM_AUTO_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "auto/ocr.h"

struct serve_backend;

/* Until text (case-sensitive, spaces between words collapsed) appears in region (NULL: whole
 * frame); where gets the box of the matching words. A read under way stops on cancel too: o's
 * cancel (auto_ocr_set_cancel) is cancel during the wait and NULL after it. */
int auto_wait_text(const struct serve_backend *b, struct auto_ocr *o, const char *text,
		   const struct auto_rect *region, int timeout_ms, const atomic_bool *cancel,
		   struct auto_rect *where /* may be NULL */);

/* Until the screen has not changed for still_ms. */
int auto_wait_still(const struct serve_backend *b, int still_ms, int timeout_ms,
		    const atomic_bool *cancel);

/* Until the PNG image needle_png (a file path) is found in region (NULL: whole frame) with a
 * similarity of at least threshold (0..1; 1 - mean absolute difference of gray levels / 255);
 * where gets its box. -ENOENT / -EINVAL: the needle cannot be read. */
int auto_wait_screen(const struct serve_backend *b, const char *needle_png, double threshold,
		     const struct auto_rect *region, int timeout_ms, const atomic_bool *cancel,
		     struct auto_rect *where);

/* Until the screen differs from what it showed when called. */
int auto_wait_change(const struct serve_backend *b, int timeout_ms, const atomic_bool *cancel);

#endif
