/*
 * DESIGN: screenshots for a model's context: a captured JPEG decoded with turbojpeg (at the
 * smallest of its DCT scaling factors that is still at least as wide as asked, which is
 * cheap), averaged down to the asked width (each output pixel the mean of the input pixels it
 * covers), and encoded again at the asked quality.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "auto/mcp-internal.h"
#include "lib/xalloc.h"

/* Area average of an RGB image sw x sh into dw x dh (dw <= sw, dh <= sh). */
static void
shrink(const unsigned char *src, int sw, int sh, unsigned char *dst, int dw, int dh)
{
	for (int y = 0; y < dh; y++) {
		int y0 = (int)((long long)y * sh / dh), y1 = (int)((long long)(y + 1) * sh / dh);
		if (y1 <= y0)
			y1 = y0 + 1;
		for (int x = 0; x < dw; x++) {
			int x0 = (int)((long long)x * sw / dw),
			    x1 = (int)((long long)(x + 1) * sw / dw);
			if (x1 <= x0)
				x1 = x0 + 1;
			unsigned sum[3] = { 0 };
			for (int yy = y0; yy < y1; yy++)
				for (int xx = x0; xx < x1; xx++)
					for (int c = 0; c < 3; c++)
						sum[c] += src[((size_t)yy * sw + xx) * 3 + c];
			unsigned n = (unsigned)((y1 - y0) * (x1 - x0));
			for (int c = 0; c < 3; c++)
				dst[((size_t)y * dw + x) * 3 + c] =
					(unsigned char)((sum[c] + n / 2) / n);
		}
	}
}

int
mcp_jpeg_scale(const void *jpeg, size_t len, int max_width, int quality, unsigned char **out,
	       size_t *out_len, int *w, int *h)
{
	tjhandle d = tjInitDecompress();
	if (!d)
		return -ENOMEM;
	int sw, sh, sub, cs;
	if (tjDecompressHeader3(d, jpeg, (unsigned long)len, &sw, &sh, &sub, &cs) || sw <= 0 ||
	    sh <= 0) {
		tjDestroy(d);
		return -EINVAL;
	}
	int dw = max_width > 0 && max_width < sw ? max_width : sw;
	int dh = (int)(((long long)sh * dw + sw / 2) / sw);
	if (dh < 1)
		dh = 1;
	/* The smallest DCT scaling at least dw wide. */
	int n, fw = sw, fh = sh;
	tjscalingfactor *f = tjGetScalingFactors(&n);
	for (int i = 0; f && i < n; i++) {
		int tw = TJSCALED(sw, f[i]), th = TJSCALED(sh, f[i]);
		if (tw >= dw && th >= dh && tw < fw)
			fw = tw, fh = th;
	}
	unsigned char *rgb = xmalloc((size_t)fw * fh * 3);
	int rc = tjDecompress2(d, jpeg, (unsigned long)len, rgb, fw, 0, fh, TJPF_RGB, 0);
	bool fatal = rc && tjGetErrorCode(d) == TJERR_FATAL; /* a warning still decoded it */
	tjDestroy(d);
	if (fatal) {
		free(rgb);
		return -EINVAL;
	}
	unsigned char *img = rgb;
	if (fw != dw || fh != dh) {
		img = xmalloc((size_t)dw * dh * 3);
		shrink(rgb, fw, fh, img, dw, dh);
		free(rgb);
	}
	tjhandle c = tjInitCompress();
	unsigned char *buf = NULL;
	unsigned long blen = 0;
	rc = c ? tjCompress2(c, img, dw, 0, dh, TJPF_RGB, &buf, &blen, TJSAMP_420,
			     quality < 1     ? 1
			     : quality > 100 ? 100
					     : quality,
			     TJFLAG_FASTDCT)
	       : -1;
	free(img);
	if (c)
		tjDestroy(c);
	if (rc) {
		tjFree(buf);
		return -ENOMEM;
	}
	*out = xmalloc(blen);
	memcpy(*out, buf, blen);
	*out_len = blen;
	tjFree(buf);
	*w = dw;
	*h = dh;
	return 0;
}
