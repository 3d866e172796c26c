/* JPEG checks and the Huffman-table repair: what a browser would reject, and that the repaired
 * frame decodes to the same picture. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <turbojpeg.h>

#include "okvm/video.h"
#include "video-testlib.h"
#include "../fakes/jpeg-strip.h"

static void
check_accepts_and_rejects(void **state)
{
	(void)state;
	size_t n;
	uint8_t *j = testpic_jpeg(320, 240, 3, &n);
	assert_int_equal(okvm_jpeg_check(j, n), (long)n);
	assert_int_equal(okvm_jpeg_check(j, 100), -EBADMSG);       /* too short */
	assert_int_equal(okvm_jpeg_check(j, n - 1), -EBADMSG);     /* no EOI */
	assert_int_equal(okvm_jpeg_check(j + 1, n - 1), -EBADMSG); /* no SOI */
	uint8_t *padded = calloc(1, n + 64);                       /* zero padding after EOI */
	memcpy(padded, j, n);
	assert_int_equal(okvm_jpeg_check(padded, n + 64), (long)n);
	free(padded);
	free(j);
}

static void
size_from_header(void **state)
{
	(void)state;
	size_t n;
	uint8_t *j = testpic_jpeg(1280, 720, 1, &n);
	int w = 0, h = 0;
	assert_int_equal(okvm_jpeg_size(j, n, &w, &h), 0);
	assert_int_equal(w, 1280);
	assert_int_equal(h, 720);
	uint8_t junk[200] = { 0xFF, 0xD8, 0x12, 0x34 };
	assert_int_equal(okvm_jpeg_size(junk, sizeof(junk), &w, &h), -EBADMSG);
	free(j);
}

static void
std_dht_is_annex_k(void **state)
{
	(void)state;
	/* Segment header and Table K.3 (DC luminance): 0 codes of length 1, 1 of 2, 5 of 3 ... */
	static const uint8_t head[] = { 0xFF, 0xC4, 0x01, 0xA2, 0x00, 0x00, 0x01, 0x05, 0x01,
					0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
					0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03 };
	assert_int_equal(okvm_jpeg_dht_size(), 420);
	size_t n;
	uint8_t *j = testpic_jpeg(64, 64, 0, &n);
	uint8_t *bare = malloc(n), *fixed = malloc(n + 420);
	size_t bn = strip_dht(j, n, bare);
	long fn = okvm_jpeg_insert_dht(bare, bn, fixed, bn + 420);
	assert_int_equal(fn, (long)bn + 420);
	uint8_t *seg = memmem(fixed, (size_t)fn, "\xFF\xC4", 2);
	assert_non_null(seg);
	assert_memory_equal(seg, head, sizeof(head));
	free(j);
	free(bare);
	free(fixed);
}

static void
dht_inserted_frame_decodes_the_same(void **state)
{
	(void)state;
	size_t n;
	uint8_t *j = testpic_jpeg(640, 480, 6, &n);
	uint8_t *bare = malloc(n), *fixed = malloc(n + 420);
	size_t bn = strip_dht(j, n, bare);
	assert_true(okvm_jpeg_has_dht(j, n));
	assert_false(okvm_jpeg_has_dht(bare, bn));
	assert_int_equal(okvm_jpeg_insert_dht(bare, bn, fixed, bn + 419), -ENOSPC);
	long fn = okvm_jpeg_insert_dht(bare, bn, fixed, bn + 420);
	assert_true(fn > 0);
	assert_true(okvm_jpeg_has_dht(fixed, (size_t)fn));
	assert_int_equal(okvm_jpeg_check(fixed, (size_t)fn), fn);
	/* libjpeg-turbo decodes the repaired frame, pixel for pixel the same as the original */
	tjhandle tj = tjInitDecompress();
	uint8_t *a = malloc(640 * 480 * 3), *b = malloc(640 * 480 * 3);
	assert_int_equal(tjDecompress2(tj, j, n, a, 640, 0, 480, TJPF_RGB, 0), 0);
	unsigned long fsize = (unsigned long)fn;
	assert_int_equal(tjDecompress2(tj, fixed, fsize, b, 640, 0, 480, TJPF_RGB, 0), 0);
	assert_memory_equal(a, b, 640 * 480 * 3);
	assert_int_equal(testpic_index(fixed, (size_t)fn), 6);
	tjDestroy(tj);
	free(a);
	free(b);
	free(j);
	free(bare);
	free(fixed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_accepts_and_rejects),
		cmocka_unit_test(size_from_header),
		cmocka_unit_test(std_dht_is_annex_k),
		cmocka_unit_test(dht_inserted_frame_decodes_the_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
