/*
 * Allocation helpers for okvm's own code: out of memory aborts (STYLE.md: okvm_x_new() cannot
 * fail), so callers never carry an OOM path. Header-only, static inline: nothing exported.
 */
#ifndef OKVM_XALLOC_H
#define OKVM_XALLOC_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* malloc that aborts on OOM. size 0 still returns a pointer that free() takes. */
static inline void *
xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		abort();
	return p;
}

/* calloc that aborts on OOM (and on n * size overflowing, as calloc itself refuses it). */
static inline void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		abort();
	return p;
}

/* realloc that aborts on OOM; p is never leaked, as the process ends. */
static inline void *
xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (!p)
		abort();
	return p;
}

/* strdup that aborts on OOM. */
static inline char *
xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

/* strdup that aborts on OOM; NULL stays NULL. */
static inline char *
xstrdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* asprintf that aborts on OOM (or a bad format) and returns the new string. */
__attribute__((format(printf, 1, 2))) static inline char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	return s;
}

/* Room for element n of an array of size-byte elements: doubles *cap (from first) as needed. */
static inline void *
xgrow(void *p, size_t *cap, size_t n, size_t size, size_t first)
{
	if (n < *cap)
		return p;
	*cap = *cap ? 2 * *cap : first;
	return xrealloc(p, *cap * size);
}

#endif
