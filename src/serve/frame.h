/*
 * The video frame as the server sees it (docs/contracts.md section 5).
 *
 * When include/okvm/video.h is on the branch, this header only includes it. Until then it
 * carries a STAND-IN with the contract's field names, so the server builds and is tested before
 * the video work lands. TO BE REMOVED once okvm/video.h is on main: nothing else changes, since
 * the server only reads these fields and returns its references through the backend.
 */
#ifndef OKVM_SERVE_FRAME_H
#define OKVM_SERVE_FRAME_H

#if __has_include("okvm/video.h")
#include "okvm/video.h"
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* STAND-IN for struct okvm_frame of include/okvm/video.h (contract 5): same fields. */
struct okvm_frame {
	const uint8_t *data;
	size_t size; /* a complete JPEG */
	int width, height;
	uint64_t seq;     /* per source, starts at 1 */
	uint64_t ts_us;   /* CLOCK_MONOTONIC capture time */
	bool placeholder; /* a "no signal" / "no device" picture */
};
#endif

#endif
