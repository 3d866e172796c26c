/* okvm view: MJPEG frames to I420 planes, or to RGB pixels (decode.c). Main thread only. */
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
/* The frame's size: 0, or -EBADMSG. */
int view_decode_size(struct view_decoder *d, const uint8_t *jpeg, size_t size, int *w, int *h);
/* For SDL's software renderer, which turns a YUV texture into RGB itself anyway: the frame
 * straight to 32-bit pixels in tj_format (TJPF_BGRX, TJPF_RGBX) at pixels (pitch bytes a row),
 * w x h as view_decode_size() said. 0, or -EBADMSG. */
int view_decode_rgb(struct view_decoder *d, const uint8_t *jpeg, size_t size, int w, int h,
		    void *pixels, int pitch, int tj_format);

#endif
