/* okvm error codes: negative errno everywhere, okvm-only codes from OKVM_E_BASE. */
#ifndef OKVM_ERROR_H
#define OKVM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define OKVM_E_BASE 4096

/* okvm-only failures; used (negated) only where no errno fits. */
enum okvm_error {
	OKVM_E_CHIP_STATUS = OKVM_E_BASE, /* the CH9329 answered with an error status */
	OKVM_E_NO_DEVICE_FOUND,           /* discovery found no unit */
	OKVM_E_UNMAPPABLE,                /* a character the target layout cannot type */
	OKVM_E_NO_SIGNAL,                 /* the video source has no HDMI signal */
	OKVM_E_VIDEO_ONLY,                /* input asked of a video-only unit */
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
