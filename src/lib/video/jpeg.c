/*
 * DESIGN: JPEG checks and repairs on the capture path, without decoding.
 * okvm_jpeg_check() applies ustreamer's validity rules (minimum size, SOI first, EOI last, zero
 * padding after EOI tolerated). okvm_jpeg_size() walks the marker segments to the first SOFn.
 * UVC MJPEG cameras (the MS2109 among them) may omit the Huffman tables, which JPEG allows for
 * motion JPEG (the decoder is expected to know the standard ones) but browsers reject; we insert
 * the standard DHT (JPEG Annex K.3) before SOF. The table bytes are not copied from anywhere:
 * libjpeg builds its standard tables in jpeg_set_defaults(), and we serialise those once.
 * Pure functions; any thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

#include "okvm/video.h"

#define M_SOI 0xD8
#define M_EOI 0xD9
#define M_SOS 0xDA
#define M_DHT 0xC4

#define DHT_SIZE 420 /* FF C4, length 418: 4 tables x (class/id + 16 counts) + 12+12+162+162 */

static uint8_t std_dht[DHT_SIZE];
static size_t std_dht_len;
static pthread_once_t std_dht_once = PTHREAD_ONCE_INIT;

static size_t
put_table(uint8_t *p, int class_id, const JHUFF_TBL *t)
{
	size_t n = 0, count = 0;
	p[n++] = (uint8_t)class_id;
	for (int i = 1; i <= 16; i++) {
		p[n++] = t->bits[i];
		count += t->bits[i];
	}
	memcpy(p + n, t->huffval, count);
	return n + count;
}

static void
build_std_dht(void)
{
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr err;
	ci.err = jpeg_std_error(&err);
	jpeg_create_compress(&ci);
	ci.in_color_space = JCS_RGB;
	ci.input_components = 3;
	jpeg_set_defaults(&ci);
	uint8_t *p = std_dht;
	size_t n = 4;
	n += put_table(p + n, 0x00, ci.dc_huff_tbl_ptrs[0]);
	n += put_table(p + n, 0x10, ci.ac_huff_tbl_ptrs[0]);
	n += put_table(p + n, 0x01, ci.dc_huff_tbl_ptrs[1]);
	n += put_table(p + n, 0x11, ci.ac_huff_tbl_ptrs[1]);
	jpeg_destroy_compress(&ci);
	p[0] = 0xFF;
	p[1] = M_DHT;
	p[2] = (uint8_t)((n - 2) >> 8);
	p[3] = (uint8_t)(n - 2);
	std_dht_len = n;
}

size_t
okvm_jpeg_dht_size(void)
{
	pthread_once(&std_dht_once, build_std_dht);
	return std_dht_len;
}

long
okvm_jpeg_check(const uint8_t *p, size_t n)
{
	if (n < OKVM_JPEG_MIN_SIZE || p[0] != 0xFF || p[1] != M_SOI)
		return -EBADMSG;
	/* Some devices pad the buffer with zeros after EOI. */
	while (n > 2 && p[n - 1] == 0x00)
		n--;
	if (n < OKVM_JPEG_MIN_SIZE || p[n - 2] != 0xFF || p[n - 1] != M_EOI)
		return -EBADMSG;
	return (long)n;
}

typedef long (*segment_fn)(const uint8_t *p, size_t n, size_t at, void *ud);

/*
 * Walk the segments after SOI up to SOS. Calls fn for each marker with the offset of its 0xFF;
 * stops when fn returns non-zero (and returns that), or at SOS (returns 0), or -EBADMSG.
 */
static long
walk_segments(const uint8_t *p, size_t n, segment_fn fn, void *ud)
{
	size_t i = 2;
	while (i + 4 <= n) {
		if (p[i] != 0xFF)
			return -EBADMSG;
		uint8_t m = p[i + 1];
		if (m == 0xFF) { /* fill byte */
			i++;
			continue;
		}
		long r = fn(p, n, i, ud);
		if (r)
			return r;
		if (m == M_SOS || m == M_EOI)
			return 0;
		size_t len = ((size_t)p[i + 2] << 8) | p[i + 3];
		if (len < 2)
			return -EBADMSG;
		i += 2 + len;
	}
	return -EBADMSG;
}

static bool
is_sof(uint8_t m)
{
	return m >= 0xC0 && m <= 0xCF && m != M_DHT && m != 0xC8 && m != 0xCC;
}

static long
find_sof(const uint8_t *p, size_t n, size_t at, void *ud)
{
	(void)ud;
	if (!is_sof(p[at + 1]))
		return 0;
	if (at + 9 > n)
		return -EBADMSG;
	return (long)at + 1; /* never 0 */
}

int
okvm_jpeg_size(const uint8_t *p, size_t n, int *width, int *height)
{
	if (n < 4 || p[0] != 0xFF || p[1] != M_SOI)
		return -EBADMSG;
	long at = walk_segments(p, n, find_sof, NULL);
	if (at <= 0)
		return -EBADMSG;
	const uint8_t *s = p + at - 1;
	*height = (s[5] << 8) | s[6];
	*width = (s[7] << 8) | s[8];
	return *width > 0 && *height > 0 ? 0 : -EBADMSG;
}

static long
find_dht(const uint8_t *p, size_t n, size_t at, void *ud)
{
	(void)n;
	(void)ud;
	return p[at + 1] == M_DHT ? 1 : 0;
}

bool
okvm_jpeg_has_dht(const uint8_t *p, size_t n)
{
	if (n < 4 || p[0] != 0xFF || p[1] != M_SOI)
		return false;
	return walk_segments(p, n, find_dht, NULL) == 1;
}

long
okvm_jpeg_insert_dht(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
	size_t dht = okvm_jpeg_dht_size();
	if (n < 4 || p[0] != 0xFF || p[1] != M_SOI)
		return -EBADMSG;
	long at = walk_segments(p, n, find_sof, NULL);
	if (at <= 0)
		return -EBADMSG;
	size_t sof = (size_t)at - 1;
	if (cap < n + dht)
		return -ENOSPC;
	memcpy(out, p, sof);
	memcpy(out + sof, std_dht, dht);
	memcpy(out + sof + dht, p + sof, n - sof);
	return (long)(n + dht);
}
