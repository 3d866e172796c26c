/* Test helper shared by the V4L2 fake and the JPEG unit test: copy a JPEG without its DHT
 * segments, as a UVC camera sends MJPEG. out needs n bytes. Returns the new length. */
#ifndef OKVM_TESTS_JPEG_STRIP_H
#define OKVM_TESTS_JPEG_STRIP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline size_t
strip_dht(const uint8_t *p, size_t n, uint8_t *out)
{
	size_t i = 2, o = 2;
	memcpy(out, p, 2);
	while (i + 4 <= n && p[i] == 0xFF && p[i + 1] != 0xDA) {
		size_t len = 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
		if (p[i + 1] != 0xC4) {
			memcpy(out + o, p + i, len);
			o += len;
		}
		i += len;
	}
	memcpy(out + o, p + i, n - i);
	return o + n - i;
}

#endif
