/*
 * Allocation helpers for okvm's own code: out of memory aborts (STYLE.md: okvm_x_new() cannot
 * fail), so callers never carry an OOM path. Header-only, static inline: nothing exported.
 */
#ifndef OKVM_XALLOC_H
#define OKVM_XALLOC_H

#include <stdlib.h>
#include <string.h>

/* strdup that aborts on OOM; NULL stays NULL. */
static inline char *
xstrdup_or_null(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

/* Room for element n of an array of size-byte elements: doubles *cap (from first) as needed. */
static inline void *
xgrow(void *p, size_t *cap, size_t n, size_t size, size_t first)
{
	if (n < *cap)
		return p;
	*cap = *cap ? 2 * *cap : first;
	p = realloc(p, *cap * size);
	if (!p)
		abort();
	return p;
}

#endif
