/*
 * TOTP and base32 (src/serve/totp.c) against the published vectors: RFC 6238 appendix B
 * (SHA-1 rows, 8 digits), RFC 4226 appendix D (HOTP, 6 digits) and RFC 4648 section 10.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serve/totp.h"

static const uint8_t rfc_key[] = "12345678901234567890"; /* 20 bytes, ASCII */

static void
test_rfc6238_sha1(void **state)
{
	static const struct {
		uint64_t t;
		uint32_t code;
	} v[] = {
		{ 59, 94287082 },         { 1111111109, 7081804 },  { 1111111111, 14050471 },
		{ 1234567890, 89005924 }, { 2000000000, 69279037 }, { 20000000000, 65353130 },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint32_t code = 0;
		assert_int_equal(totp_hotp(rfc_key, 20, v[i].t / TOTP_STEP_S, 8, &code), 0);
		assert_int_equal(code, v[i].code);
		/* The 6-digit code is the same value's last six digits. */
		assert_int_equal(totp_code(rfc_key, 20, v[i].t, &code), 0);
		assert_int_equal(code, v[i].code % 1000000);
	}
}

static void
test_rfc4226_hotp(void **state)
{
	static const uint32_t v[] = { 755224, 287082, 359152, 969429, 338314,
				      254676, 287922, 162583, 399871, 520489 };
	for (uint64_t c = 0; c < 10; c++) {
		uint32_t code;
		assert_int_equal(totp_hotp(rfc_key, 20, c, 6, &code), 0);
		assert_int_equal(code, v[c]);
	}
	uint32_t code;
	assert_int_equal(totp_hotp(rfc_key, 20, 0, 5, &code), -EINVAL);
	assert_int_equal(totp_hotp(rfc_key, 0, 0, 6, &code), -EINVAL);
}

/* clang-format off */
static const struct {
	const char *plain, *b32;
} b32v[] = {
	{ "", "" }, { "f", "MY======" }, { "fo", "MZXQ====" }, { "foo", "MZXW6===" },
	{ "foob", "MZXW6YQ=" }, { "fooba", "MZXW6YTB" }, { "foobar", "MZXW6YTBOI======" },
};
/* clang-format on */

static void
test_base32_rfc4648(void **state)
{
	for (size_t i = 0; i < sizeof(b32v) / sizeof(b32v[0]); i++) {
		char out[32];
		size_t n = strlen(b32v[i].plain);
		assert_int_equal(totp_base32_encode((const uint8_t *)b32v[i].plain, n, true, out,
						    sizeof(out)),
				 strlen(b32v[i].b32));
		assert_string_equal(out, b32v[i].b32);
		uint8_t back[32];
		assert_int_equal(totp_base32_decode(b32v[i].b32, back, sizeof(back)), n);
		assert_memory_equal(back, b32v[i].plain, n);
		/* Without padding, in lower case: the same bytes. */
		assert_true(totp_base32_encode((const uint8_t *)b32v[i].plain, n, false, out,
					       sizeof(out)) >= 0);
		assert_null(strchr(out, '='));
		for (char *p = out; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		assert_int_equal(totp_base32_decode(out, back, sizeof(back)), n);
		assert_memory_equal(back, b32v[i].plain, n);
	}
}

static void
test_base32_bad(void **state)
{
	uint8_t out[32];
	assert_int_equal(totp_base32_decode("MZXW6YT1", out, sizeof(out)), -EINVAL); /* '1' */
	assert_int_equal(totp_base32_decode("MZ=XW6YT", out, sizeof(out)),
			 -EINVAL);                                            /* '=' inside */
	assert_int_equal(totp_base32_decode("M", out, sizeof(out)), -EINVAL); /* 5 bits */
	assert_int_equal(totp_base32_decode("MZXW6Y==", out, sizeof(out)), -EINVAL); /* 6 chars */
	assert_int_equal(totp_base32_decode("MZ", out, 0), -ENOSPC);
	assert_int_equal(totp_base32_decode("MZXW 6YTB", out, sizeof(out)), 5); /* groups */
	char small[8];
	assert_int_equal(totp_base32_encode((const uint8_t *)"fooba", 5, true, small, 8), -ENOSPC);
}

static void
test_check_window_and_replay(void **state)
{
	char secret[64];
	assert_true(totp_base32_encode(rfc_key, 20, false, secret, sizeof(secret)) > 0);
	assert_string_equal(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	assert_true(totp_secret_valid(secret));
	const uint64_t t = 1111111111; /* step 37037037 */
	uint32_t prev, cur, next, far;
	totp_code(rfc_key, 20, t - 30, &prev);
	totp_code(rfc_key, 20, t, &cur);
	totp_code(rfc_key, 20, t + 30, &next);
	totp_code(rfc_key, 20, t + 60, &far);
	char c[16];
	uint64_t last = 0;
	snprintf(c, sizeof(c), "%06u", (unsigned)cur);
	assert_true(totp_check(secret, c, t, 1, &last));
	assert_int_equal(last, t / 30);
	assert_false(totp_check(secret, c, t, 1, &last)); /* the same code again: replay */
	snprintf(c, sizeof(c), "%06u", (unsigned)prev);
	assert_false(totp_check(secret, c, t, 1, &last)); /* an older step after a newer one */
	snprintf(c, sizeof(c), "%06u", (unsigned)next);
	assert_true(totp_check(secret, c, t, 1, &last)); /* the clock 30 s ahead */
	assert_int_equal(last, t / 30 + 1);
	last = 0;
	snprintf(c, sizeof(c), "%06u", (unsigned)prev);
	assert_true(totp_check(secret, c, t, 1, NULL)); /* 30 s behind */
	snprintf(c, sizeof(c), "%06u", (unsigned)far);
	assert_false(totp_check(secret, c, t, 1, &last)); /* 60 s: outside the window */
	snprintf(c, sizeof(c), "%06u", (unsigned)cur);
	assert_false(totp_check(secret, c, t + 90, 1, &last));
	/* Not six digits. */
	assert_false(totp_check(secret, "12345", t, 1, NULL));
	assert_false(totp_check(secret, "1234567", t, 1, NULL));
	assert_false(totp_check(secret, "12a456", t, 1, NULL));
	assert_false(totp_check("not base32!", "123456", t, 1, NULL));
	/* Near the epoch the window does not wrap around. */
	uint32_t z;
	totp_code(rfc_key, 20, 0, &z);
	snprintf(c, sizeof(c), "%06u", (unsigned)z);
	assert_true(totp_check(secret, c, 10, 1, NULL));
}

static void
test_secret_new_and_uri(void **state)
{
	char *a = totp_secret_new(), *b = totp_secret_new();
	assert_int_equal(strlen(a), 32);
	assert_true(totp_secret_valid(a));
	assert_string_not_equal(a, b);
	assert_false(totp_secret_valid("MZXW6YTB")); /* 5 bytes: too short */
	char *uri = totp_uri(a, "alice");
	char want[128];
	snprintf(want, sizeof(want), "otpauth://totp/okvm:alice?secret=%s&issuer=okvm", a);
	assert_string_equal(uri, want);
	free(uri);
	free(a);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6238_sha1),
		cmocka_unit_test(test_rfc4226_hotp),
		cmocka_unit_test(test_base32_rfc4648),
		cmocka_unit_test(test_base32_bad),
		cmocka_unit_test(test_check_window_and_replay),
		cmocka_unit_test(test_secret_new_and_uri),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
