/*
 * Fuzz target: unit discovery over sysfs (src/lib/dev/discover.c, watch.c). Each input is a
 * small sysfs tree, written under a temporary root; okvm_discover_scan() then reads it as it
 * would /sys: bus/usb/devices links, idVendor/idProduct/product, class/NAME node links and the
 * interface driver and port peer links it resolves.
 *
 * Input: lines of text, one entry each (paths are below the root; ".." is refused, so nothing
 * outside the root is ever touched):
 *   d PATH            a folder (parents are made as needed for every entry)
 *   f PATH TEXT       a file holding TEXT and a newline ("f a/idVendor 534d")
 *   l PATH TARGET     a symlink to ROOT/TARGET
 *   r PATH            remove PATH (and what is below it)
 *   m SPEC            after the scan, okvm_discover_match(SPEC)
 *   ---               the tree so far is watched (okvm_discover_watch); the lines after it
 *                     change it, and the next rescan must report exactly the difference
 * Checks: units are numbered 1..n in port-chain order, their lists stay in bounds, and the
 * watch's ADDED / REMOVED / CHANGED events keep a caller's list equal to the scan's.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "okvm/discover.h"
#include "fuzz-util.h"

#define MAX_LINES 256
#define MAX_PATH 300

static char root[PATH_MAX];

/* Refuse absolute paths, "..", and anything long; "a//b" and "./a" are fine. */
static bool
safe_path(const char *p, size_t n)
{
	if (!n || n > MAX_PATH || p[0] == '/' || memchr(p, 0, n))
		return false;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		if (j - i == 2 && p[i] == '.' && p[i + 1] == '.')
			return false;
		i = j + 1;
	}
	return true;
}

static void
make_parents(char *path)
{
	for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		mkdir(path, 0755);
		*s = '/';
	}
}

struct line {
	char op;
	const char *arg, *rest;
	size_t arg_len, rest_len;
};

static void
apply(const struct line *l, const char **specs, size_t *nspecs, char (*spec_buf)[MAX_PATH + 1])
{
	char path[PATH_MAX + MAX_PATH + 2], target[PATH_MAX + MAX_PATH + 2];
	if (l->op == 'm') {
		if (*nspecs < 8 && l->arg_len <= MAX_PATH && !memchr(l->arg, 0, l->arg_len)) {
			memcpy(spec_buf[*nspecs], l->arg, l->arg_len);
			spec_buf[*nspecs][l->arg_len] = 0;
			specs[*nspecs] = spec_buf[*nspecs];
			(*nspecs)++;
		}
		return;
	}
	if (!safe_path(l->arg, l->arg_len))
		return;
	snprintf(path, sizeof(path), "%s/%.*s", root, (int)l->arg_len, l->arg);
	make_parents(path);
	switch (l->op) {
	case 'd': mkdir(path, 0755); break;
	case 'f': {
		char text[MAX_PATH + 2];
		size_t n = l->rest_len > MAX_PATH ? MAX_PATH : l->rest_len;
		memcpy(text, l->rest, n);
		text[n++] = '\n';
		fuzz_write_file(path, text, n);
		break;
	}
	case 'l':
		if (!safe_path(l->rest, l->rest_len))
			return;
		snprintf(target, sizeof(target), "%s/%.*s", root, (int)l->rest_len, l->rest);
		symlink(target, path);
		break;
	case 'r': fuzz_rmtree(path); break;
	}
}

/* "f PATH TEXT" -> op 'f', arg PATH, rest TEXT. */
static bool
parse_line(const char *p, size_t n, struct line *l)
{
	if (n < 3 || p[1] != ' ')
		return n == 3 && !memcmp(p, "---", 3) ? (l->op = '-', true) : false;
	l->op = p[0];
	l->arg = p + 2;
	const char *sp = memchr(l->arg, ' ', n - 2);
	l->arg_len = sp ? (size_t)(sp - l->arg) : n - 2;
	l->rest = sp ? sp + 1 : p + n;
	l->rest_len = (size_t)(p + n - l->rest);
	return true;
}

static void
check_units(const struct okvm_unit_info *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (u[i].index != (int)i + 1 || u[i].n_switchable > OKVM_DISCOVER_MAX_EXT ||
		    u[i].n_ext > OKVM_DISCOVER_MAX_EXT || !u[i].port_chain[0] ||
		    !strcmp(okvm_variant_name(u[i].variant), "unknown"))
			abort();
		if (i && strverscmp(u[i - 1].port_chain, u[i].port_chain) > 0)
			abort();
	}
}

/* What a caller keeps from the watch's events: the unit keys it was told about. */
struct seen {
	char keys[64][32];
	size_t n;
};

static int
seen_find(const struct seen *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->keys[i], key))
			return (int)i;
	return -1;
}

static void
on_event(enum okvm_watch_event ev, const struct okvm_unit_info *u, void *ud)
{
	struct seen *s = ud;
	int i = seen_find(s, u->port_chain);
	if ((ev == OKVM_UNIT_ADDED) != (i < 0))
		abort(); /* added twice, or removed/changed without being added */
	if (ev == OKVM_UNIT_ADDED) {
		if (s->n == 64)
			abort();
		snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", u->port_chain);
	} else if (ev == OKVM_UNIT_REMOVED) {
		memmove(s->keys[i], s->keys[i + 1], (s->n - (size_t)i - 1) * sizeof(s->keys[0]));
		s->n--;
	}
}

static void
watch_step(struct okvm_discover_watch *w, struct seen *s)
{
	struct pollfd p = { .fd = okvm_discover_watch_fd(w), .events = POLLIN };
	int rc;
	while ((rc = poll(&p, 1, 1000)) < 0 && errno == EINTR)
		; /* libFuzzer's SIGALRM */
	if (rc != 1)
		abort(); /* the 1 ms rescan timer did not fire */
	if (okvm_discover_watch_dispatch(w) < 0)
		return;
	size_t n;
	const struct okvm_unit_info *u = okvm_discover_watch_units(w, &n);
	check_units(u, n);
	if (n != s->n)
		abort();
	for (size_t i = 0; i < n; i++)
		if (seen_find(s, u[i].port_chain) < 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!root[0]) {
		fuzz_quiet();
		snprintf(root, sizeof(root), "%s/sys", fuzz_tmpdir());
	}
	fuzz_rmtree(root);
	if (mkdir(root, 0755))
		abort();
	const char *specs[8];
	char spec_buf[8][MAX_PATH + 1];
	size_t nspecs = 0, nlines = 0;
	const char *p = (const char *)data, *end = p + size;
	struct okvm_discover_watch *w = NULL;
	struct seen seen = { .n = 0 };
	while (p < end && nlines++ < MAX_LINES) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct line l;
		if (parse_line(p, n, &l)) {
			if (l.op != '-')
				apply(&l, specs, &nspecs, spec_buf);
			else if (!w) {
				w = okvm_discover_watch_new(root, 1, on_event, &seen);
				watch_step(w, &seen);
			}
		}
		p += n + 1;
	}
	if (w) {
		watch_step(w, &seen);
		okvm_discover_watch_free(w);
	}
	struct okvm_unit_info *u;
	size_t n;
	if (okvm_discover_scan(root, &u, &n) < 0)
		return 0;
	check_units(u, n);
	for (size_t i = 0; i < nspecs; i++) {
		int k = okvm_discover_match(u, n, specs[i]);
		if (k >= (int)n || (k < 0 && k != -ENOENT && k != -EINVAL))
			abort();
	}
	okvm_discover_free_units(u);
	return 0;
}
