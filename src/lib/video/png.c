/*
 * DESIGN: JPEG -> PNG for `okvm screenshot -o x.png`: decode with libjpeg-turbo, write with
 * libpng. Off the capture path; any thread. Allocates one RGB picture.
 */
#include <errno.h>
#include <stdlib.h>

#include <png.h>
#include <turbojpeg.h>

#include "okvm/video.h"
#include "lib/xalloc.h"

static int
write_png(FILE *out, const uint8_t *rgb, int w, int h)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!info) {
		png_destroy_write_struct(&png, NULL);
		return -ENOMEM;
	}
	png_bytep *rows = xmalloc(sizeof(*rows) * (size_t)h);
	for (int y = 0; y < h; y++)
		rows[y] = (png_bytep)rgb + (size_t)y * (size_t)w * 3;
	int rc = 0;
	if (setjmp(png_jmpbuf(png))) {
		rc = -EIO;
	} else {
		png_init_io(png, out);
		png_set_compression_level(png, 3);
		png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
			     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
			     PNG_FILTER_TYPE_DEFAULT);
		png_write_info(png, info);
		png_write_image(png, rows);
		png_write_end(png, NULL);
	}
	free(rows);
	png_destroy_write_struct(&png, &info);
	return rc;
}

int
okvm_jpeg_to_png(const uint8_t *jpeg, size_t n, FILE *out)
{
	tjhandle tj = tjInitDecompress();
	if (!tj)
		return -ENOMEM;
	int w, h, sub, cs;
	int rc = -EBADMSG;
	uint8_t *rgb = NULL;
	if (tjDecompressHeader3(tj, jpeg, n, &w, &h, &sub, &cs) == 0) {
		rgb = xmalloc((size_t)w * (size_t)h * 3);
		if (tjDecompress2(tj, jpeg, n, rgb, w, 0, h, TJPF_RGB, 0) == 0)
			rc = write_png(out, rgb, w, h);
	}
	free(rgb);
	tjDestroy(tj);
	return rc;
}
