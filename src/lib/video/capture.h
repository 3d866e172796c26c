/* Internal helpers shared by the capture sources. */
#ifndef OKVM_LIB_VIDEO_CAPTURE_H
#define OKVM_LIB_VIDEO_CAPTURE_H

#include <errno.h>

#include "okvm/error.h"
#include "okvm/video.h"

/** Size of placeholder pictures before the first real frame (the requested mode). */
void capture_set_size_hint(struct okvm_capture *c, int width, int height);

/** okvm_strerror() with the capture's own wording for the common device errors. */
static inline const char *
video_strerror(int err)
{
	return err == -ENOENT   ? "no such device (is the unit plugged in?)"
	       : err == -ENOMSG ? "no JPEG pictures found"
				: okvm_strerror(err);
}

#endif
