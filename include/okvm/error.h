/* okvm error codes: negative errno everywhere, okvm-only codes from OKVM_E_BASE. */
#ifndef OKVM_ERROR_H
#define OKVM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define OKVM_E_BASE 4096

/* okvm-only failures; used (negated) only where no errno fits. */
enum okvm_error {
	/* OKVM_E_BASE + 0, + 1 and + 3 were codes that no function returned (a CH9329 error
	 * status is -EPROTO, no unit found is an empty list or -ENOENT, no signal is a capture
	 * state). They stay unused, so the codes below keep their values. */
	OKVM_E_UNMAPPABLE = OKVM_E_BASE + 2, /* a character the target layout cannot type */
	OKVM_E_VIDEO_ONLY = OKVM_E_BASE + 4, /* input asked of a video-only unit */
	OKVM_E_LAST
};

/**
 * Human-readable text for a negative okvm error or negative errno.
 * @param err a value <= 0 as returned by any okvm function
 * @return a static string; never NULL. Thread-safe.
 */
const char *okvm_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
