/*
 * Whole numbers from text for okvm's own code (command-line arguments, virtual-unit settings):
 * the whole string is one number in [lo, hi], no sign of overflow, nothing after it.
 * Header-only, static inline: nothing exported.
 */
#ifndef OKVM_STRNUM_H
#define OKVM_STRNUM_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

/* strtol's base: 10, or 0 to take 0x1F and 017 too. false (and *out untouched) if s is not a
 * number from lo to hi. */
static inline bool
str_to_long(const char *s, int base, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, base);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

#endif
