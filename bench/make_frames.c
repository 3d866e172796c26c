/*
 * DESIGN: writes N test JPEGs of WxH into a folder (frame-0001.jpg ...) for okvm serve's
 * benchmarks and tests: a colour gradient with a bright bar that moves one step per frame and a
 * varying noise band, so frames differ and compress like a busy desktop rather than a flat fill.
 * Usage: make_frames DIR W H N [QUALITY]
 */
#include <stdio.h>
#include <stdlib.h>
#include <turbojpeg.h>

static unsigned
noise(unsigned x)
{
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

int
main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: make_frames DIR W H N [QUALITY]\n");
		return 2;
	}
	int w = atoi(argv[2]), h = atoi(argv[3]), n = atoi(argv[4]);
	int q = argc > 5 ? atoi(argv[5]) : 80;
	unsigned char *rgb = malloc((size_t)w * h * 3);
	tjhandle tj = tjInitCompress();
	unsigned seed = 12345;
	for (int f = 0; f < n; f++) {
		for (int y = 0; y < h; y++) {
			for (int x = 0; x < w; x++) {
				unsigned char *p = rgb + ((size_t)y * w + x) * 3;
				p[0] = (unsigned char)(x * 255 / w);
				p[1] = (unsigned char)(y * 255 / h);
				p[2] = (unsigned char)(f * 40);
				if (x / (w / 16) == f % 16)
					p[0] = p[1] = p[2] = 240;
				if (y > h * 3 / 4 && y < h * 3 / 4 + h / 10)
					p[0] = p[1] = p[2] = (unsigned char)((seed = noise(seed)) & 0xff);
			}
		}
		unsigned char *jpg = NULL;
		unsigned long size = 0;
		if (tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpg, &size, TJSAMP_420, q, 0))
			return 1;
		char path[4096];
		snprintf(path, sizeof(path), "%s/frame-%04d.jpg", argv[1], f + 1);
		FILE *o = fopen(path, "wb");
		if (!o || fwrite(jpg, 1, size, o) != size || fclose(o))
			return 1;
		tjFree(jpg);
	}
	tjDestroy(tj);
	free(rgb);
	return 0;
}
