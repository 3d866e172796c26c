/* okvm view: MJPEG frames to I420 planes (decode.c). Main thread only. */
#ifndef OKVM_VIEW_DECODE_H
#define OKVM_VIEW_DECODE_H

#include <stddef.h>
#include <stdint.h>

struct view_decoder {
	void *tj; /* tjhandle */
	uint8_t *buf, *scratch;
	size_t cap, scratch_cap;
};

/* I420 planes, borrowed from the decoder until the next view_decode(). */
struct view_yuv {
	int width, height;
	int subsamp; /* the JPEG's (TJSAMP_*) */
	const uint8_t *y, *u, *v;
	int y_pitch, u_pitch, v_pitch;
};

void view_decoder_init(struct view_decoder *d);
void view_decoder_fini(struct view_decoder *d);
/* Returns 0, or -EBADMSG (not a JPEG libjpeg-turbo can decode; a warning alone is fine). */
int view_decode(struct view_decoder *d, const uint8_t *jpeg, size_t size, struct view_yuv *out);

#endif
