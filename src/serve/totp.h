/*
 * Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA1, 30 s steps, 6
 * digits, the parameters every authenticator app assumes when an otpauth:// URI names none. The
 * secret is kept as base32 (RFC 4648), as those apps expect it. Pure functions, any thread.
 */
#ifndef OKVM_SERVE_TOTP_H
#define OKVM_SERVE_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TOTP_STEP_S 30
#define TOTP_DIGITS 6
#define TOTP_SECRET_BYTES 20     /* RFC 4226 R6 recommends 160 bits */
#define TOTP_MIN_SECRET_BYTES 16 /* R6: at least 128 bits */
#define TOTP_MAX_SECRET_BYTES 64

/* HOTP value of counter with digits (6..8) digits, into *code.
 * Returns 0, or -EINVAL (digits out of range, key empty or over 64 bytes). */
int totp_hotp(const uint8_t *key, size_t n, uint64_t counter, int digits, uint32_t *code);

/* The 6-digit code of unix_time's 30 s step. Returns 0 or -EINVAL as totp_hotp. */
int totp_code(const uint8_t *key, size_t n, uint64_t unix_time, uint32_t *code);

/* Is code (exactly 6 ASCII digits) the code of base32_secret for a step within window_steps of
 * unix_time's step, and later than *last_used_step? On success *last_used_step becomes the
 * matching step, so the same code (or an older one) is refused next time: no replay.
 * last_used_step may be NULL (no replay check). All steps of the window are computed, whatever
 * matches, so the time taken says nothing about the code. */
bool totp_check(const char *base32_secret, const char *code, uint64_t unix_time, int window_steps,
		uint64_t *last_used_step);

/* RFC 4648 base32 of n bytes into out (outsz includes the NUL), with '=' padding if pad.
 * Returns the length written, or -ENOSPC. */
ssize_t totp_base32_encode(const uint8_t *in, size_t n, bool pad, char *out, size_t outsz);

/* Decode RFC 4648 base32: upper or lower case, optional '=' padding at the end, spaces ignored
 * (apps show secrets in groups of four). Returns the number of bytes, -EINVAL (another
 * character, padding in the middle, an impossible length, non-zero leftover bits) or -ENOSPC. */
ssize_t totp_base32_decode(const char *in, uint8_t *out, size_t outsz);

/* Is this a usable secret: base32 of TOTP_MIN_SECRET_BYTES..TOTP_MAX_SECRET_BYTES bytes? */
bool totp_secret_valid(const char *base32_secret);

/* A new secret of TOTP_SECRET_BYTES random bytes (libsodium randombytes), base32 without
 * padding, malloc'd. Aborts when out of memory or when libsodium cannot initialise. */
char *totp_secret_new(void);

/* otpauth://totp/okvm:ACCOUNT?secret=SECRET&issuer=okvm (Google's Key URI Format), malloc'd.
 * account must be URI-safe (user names are [a-z0-9_.-]). */
char *totp_uri(const char *base32_secret, const char *account);

#endif
