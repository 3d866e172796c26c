/*
 * DESIGN: TOTP for okvm serve's second factor (RFC 6238; RFC 4226 for HOTP; RFC 4648 for
 * base32). HMAC-SHA1 comes from OpenSSL's libcrypto, which the server links for TLS anyway;
 * random secrets come from libsodium, which it links for argon2.
 *
 * Pure functions with the clock passed in, so tests use the RFC's own times. totp_check takes
 * the last step a user logged in with, and refuses that step and older ones: a code seen over a
 * shoulder or in a proxy log cannot be used again. It does not keep that state itself (the
 * caller keeps it per user) and does not rate-limit (the login rate limit covers codes too).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/totp.h"
#include "lib/xalloc.h"

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int
totp_hotp(const uint8_t *key, size_t n, uint64_t counter, int digits, uint32_t *code)
{
	if (digits < 6 || digits > 8 || !n || n > TOTP_MAX_SECRET_BYTES)
		return -EINVAL;
	uint8_t msg[8];
	for (int i = 7; i >= 0; i--, counter >>= 8)
		msg[i] = (uint8_t)counter;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!HMAC(EVP_sha1(), key, (int)n, msg, sizeof(msg), md, &mdlen) || mdlen != 20)
		return -EINVAL;
	/* RFC 4226 5.3: dynamic truncation. */
	unsigned off = md[19] & 0x0f;
	uint32_t bin = (uint32_t)(md[off] & 0x7f) << 24 | (uint32_t)md[off + 1] << 16 |
		       (uint32_t)md[off + 2] << 8 | md[off + 3];
	uint32_t mod = 1;
	for (int i = 0; i < digits; i++)
		mod *= 10;
	*code = bin % mod;
	sodium_memzero(md, sizeof(md));
	return 0;
}

int
totp_code(const uint8_t *key, size_t n, uint64_t unix_time, uint32_t *code)
{
	return totp_hotp(key, n, unix_time / TOTP_STEP_S, TOTP_DIGITS, code);
}

static bool
parse_code(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < TOTP_DIGITS; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (s[TOTP_DIGITS])
		return false;
	*out = v;
	return true;
}

bool
totp_check(const char *base32_secret, const char *code, uint64_t unix_time, int window_steps,
	   uint64_t *last_used_step)
{
	uint8_t key[TOTP_MAX_SECRET_BYTES];
	uint32_t want;
	if (!base32_secret || !code || window_steps < 0 || !parse_code(code, &want))
		return false;
	ssize_t n = totp_base32_decode(base32_secret, key, sizeof(key));
	if (n <= 0)
		return false;
	uint64_t now = unix_time / TOTP_STEP_S, match = 0;
	bool found = false;
	for (int64_t d = -window_steps; d <= window_steps; d++) {
		if (d < 0 && now < (uint64_t)-d)
			continue;
		uint64_t step = now + (uint64_t)d;
		uint32_t got;
		if (totp_hotp(key, (size_t)n, step, TOTP_DIGITS, &got))
			break;
		/* Prefer the latest matching step, so a replay check keeps the highest one. */
		if (got == want && (!last_used_step || step > *last_used_step)) {
			match = step;
			found = true;
		}
	}
	sodium_memzero(key, sizeof(key));
	if (found && last_used_step)
		*last_used_step = match;
	return found;
}

ssize_t
totp_base32_encode(const uint8_t *in, size_t n, bool pad, char *out, size_t outsz)
{
	size_t len = (n + 4) / 5 * 8, o = 0;
	if (!pad)
		len = (n * 8 + 4) / 5;
	if (len + 1 > outsz)
		return -ENOSPC;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = b32_alphabet[(acc >> bits) & 31];
		}
	}
	if (bits)
		out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
	while (o < len)
		out[o++] = '=';
	out[o] = 0;
	return (ssize_t)o;
}

static int
b32_value(char c)
{
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	const char *p = c ? strchr(b32_alphabet, c) : NULL;
	return p ? (int)(p - b32_alphabet) : -1;
}

ssize_t
totp_base32_decode(const char *in, uint8_t *out, size_t outsz)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0, chars = 0, padding = 0;
	for (const char *p = in; *p; p++) {
		if (*p == ' ')
			continue;
		if (*p == '=') {
			padding++;
			continue;
		}
		int v = b32_value(*p);
		if (v < 0 || padding)
			return -EINVAL;
		chars++;
		acc = acc << 5 | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o == outsz)
				return -ENOSPC;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* A group of 8 characters holds 5 bytes; 1, 3 and 6 leftover characters cannot happen. */
	size_t rest = chars % 8;
	if (rest == 1 || rest == 3 || rest == 6 || (acc & ((1u << bits) - 1)))
		return -EINVAL;
	if (padding && (!rest || (chars + padding) % 8))
		return -EINVAL;
	return (ssize_t)o;
}

bool
totp_secret_valid(const char *base32_secret)
{
	uint8_t key[TOTP_MAX_SECRET_BYTES];
	ssize_t n = totp_base32_decode(base32_secret, key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	return n >= TOTP_MIN_SECRET_BYTES;
}

char *
totp_secret_new(void)
{
	if (sodium_init() < 0)
		abort();
	uint8_t key[TOTP_SECRET_BYTES];
	randombytes_buf(key, sizeof(key));
	char *out = xmalloc(TOTP_SECRET_BYTES * 8 / 5 + 2);
	totp_base32_encode(key, sizeof(key), false, out, TOTP_SECRET_BYTES * 8 / 5 + 2);
	sodium_memzero(key, sizeof(key));
	return out;
}

char *
totp_uri(const char *base32_secret, const char *account)
{
	return xasprintf("otpauth://totp/okvm:%s?secret=%s&issuer=okvm", account, base32_secret);
}
