/*
 * DESIGN: one MJPEG frame to the three planes of an I420 (IYUV) texture, with libjpeg-turbo's
 * tjDecompressToYUVPlanes: the JPEG's own Y, Cb and Cr samples after the IDCT, with no colour
 * conversion and no RGB buffer. SDL shows them with its JPEG (full-range BT.601) conversion.
 *
 * 4:2:0 frames (okvm's virtual screen, most webcams) are the texture's layout as decoded.
 * 4:2:2 frames (the MS2109's) have full-height chroma: the texture takes every other chroma row
 * by giving SDL twice the row pitch, so nothing is copied. Other subsamplings (4:4:4, 4:4:0,
 * 4:1:1, grey) are resampled to 4:2:0 into a scratch buffer, nearest sample. Main thread only.
 *
 * With SDL's software renderer (no GPU) a YUV texture costs its planes, an RGB surface of the
 * frame's size that SDL converts them into, and the decoder's planes (15 MB at 1080p 4:2:2):
 * there the frame is decoded straight to RGB into the locked texture (view_decode_rgb), the
 * one colour conversion the picture needs either way, done by libjpeg-turbo's SIMD code.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "view/decode.h"
#include "lib/xalloc.h"

void
view_decoder_init(struct view_decoder *d)
{
	memset(d, 0, sizeof(*d));
	d->tj = tjInitDecompress();
}

void
view_decoder_fini(struct view_decoder *d)
{
	if (d->tj)
		tjDestroy(d->tj);
	free(d->buf);
	free(d->scratch);
	memset(d, 0, sizeof(*d));
}

static void *
grow(void *p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return p;
	free(p);
	*cap = need;
	return xmalloc(need);
}

/* Nearest-sample resampling of a chroma plane (cw x ch) to the 4:2:0 plane (ow x oh). */
static void
resample(const uint8_t *src, int cw, int ch, int stride, uint8_t *dst, int ow, int oh)
{
	for (int y = 0; y < oh; y++) {
		const uint8_t *row = src + (size_t)((long)y * ch / oh) * (size_t)stride;
		for (int x = 0; x < ow; x++)
			dst[(size_t)y * (size_t)ow + (size_t)x] = row[(long)x * cw / ow];
	}
}

int
view_decode(struct view_decoder *d, const uint8_t *jpeg, size_t size, struct view_yuv *out)
{
	int w, h, ss, cs;
	if (!d->tj || tjDecompressHeader3(d->tj, jpeg, (unsigned long)size, &w, &h, &ss, &cs))
		return -EBADMSG;
	int n = ss == TJSAMP_GRAY ? 1 : 3;
	size_t off[3] = { 0 }, total = 0;
	int strides[3] = { 0 };
	for (int i = 0; i < n; i++) {
		strides[i] = tjPlaneWidth(i, w, ss);
		off[i] = total;
		total += tjPlaneSizeYUV(i, w, 0, h, ss);
	}
	d->buf = grow(d->buf, &d->cap, total);
	uint8_t *planes[3] = { d->buf, d->buf + off[1 % n], d->buf + off[2 % n] };
	if (tjDecompressToYUVPlanes(d->tj, jpeg, (unsigned long)size, planes, w, strides, h, 0) &&
	    tjGetErrorCode(d->tj) == TJERR_FATAL)
		return -EBADMSG;
	out->width = w;
	out->height = h;
	out->subsamp = ss;
	out->y = planes[0];
	out->y_pitch = strides[0];
	int ow = (w + 1) / 2, oh = (h + 1) / 2;
	if (ss == TJSAMP_420 || ss == TJSAMP_422) {
		/* 4:2:2: every other row of the full-height chroma is the 4:2:0 plane */
		int k = ss == TJSAMP_422 ? 2 : 1;
		out->u = planes[1];
		out->v = planes[2];
		out->u_pitch = strides[1] * k;
		out->v_pitch = strides[2] * k;
		return 0;
	}
	size_t psize = (size_t)ow * (size_t)oh;
	d->scratch = grow(d->scratch, &d->scratch_cap, 2 * psize);
	out->u = d->scratch;
	out->v = d->scratch + psize;
	out->u_pitch = out->v_pitch = ow;
	if (ss == TJSAMP_GRAY) {
		memset(d->scratch, 128, 2 * psize);
		return 0;
	}
	int cw = tjPlaneWidth(1, w, ss), ch = tjPlaneHeight(1, h, ss);
	resample(planes[1], cw, ch, strides[1], d->scratch, ow, oh);
	resample(planes[2], cw, ch, strides[2], d->scratch + psize, ow, oh);
	return 0;
}

int
view_decode_size(struct view_decoder *d, const uint8_t *jpeg, size_t size, int *w, int *h)
{
	int ss, cs;
	if (!d->tj || tjDecompressHeader3(d->tj, jpeg, (unsigned long)size, w, h, &ss, &cs))
		return -EBADMSG;
	return 0;
}

int
view_decode_rgb(struct view_decoder *d, const uint8_t *jpeg, size_t size, int w, int h,
		void *pixels, int pitch, int tj_format)
{
	if (tjDecompress2(d->tj, jpeg, (unsigned long)size, pixels, w, pitch, h, tj_format, 0) &&
	    tjGetErrorCode(d->tj) == TJERR_FATAL)
		return -EBADMSG;
	return 0;
}
