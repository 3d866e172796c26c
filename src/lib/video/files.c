/*
 * DESIGN: the file source, for benchmarks and demos. Loads a folder of .jpg/.jpeg files (sorted
 * by name) or one .mjpeg file (JPEGs back to back, split at each SOI..EOI) into memory once, on
 * the first start(), then publishes them in a loop at a fixed rate on absolute deadlines (no
 * drift). Every picture is checked like a device frame; invalid ones are skipped with a warning.
 * Runs on the capture thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/video/capture.h"
#include "okvm/log.h"
#include "lib/xalloc.h"

#define MAX_BYTES (512u << 20) /* refuse to load more than this */

struct pic {
	uint8_t *data;
	size_t size;
};

struct files {
	struct okvm_capture_ops ops; /* files_ops with this source's name */
	char *path;
	char name[300];
	double fps;
	uint8_t *blob; /* .mjpeg contents; pics point into it */
	struct pic *pics;
	size_t n, cap, next;
	bool loaded;
	uint64_t deadline;
};

static int
read_file(const char *path, uint8_t **out, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	if (n < 0 || (unsigned long)n > MAX_BYTES) {
		fclose(f);
		return -EFBIG;
	}
	uint8_t *p = xmalloc((size_t)n + 1);
	size_t got = fread(p, 1, (size_t)n, f);
	fclose(f);
	if (got != (size_t)n) {
		free(p);
		return -EIO;
	}
	*out = p;
	*size = got;
	return 0;
}

static void
add_pic(struct files *s, uint8_t *p, size_t n)
{
	long ok = okvm_jpeg_check(p, n);
	if (ok < 0) {
		okvm_log(OKVM_LOG_WARN, "%s: picture %zu is not a complete JPEG; skipped", s->name,
			 s->n + 1);
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->pics = xrealloc(s->pics, s->cap * sizeof(*s->pics));
	}
	s->pics[s->n++] = (struct pic){ p, (size_t)ok };
}

/* Split concatenated JPEGs: each starts with FF D8 and ends with the FF D9 before the next. */
static void
split_mjpeg(struct files *s, uint8_t *p, size_t n)
{
	size_t start = 0;
	while (start + 4 <= n) {
		if (p[start] != 0xFF || p[start + 1] != 0xD8) {
			start++;
			continue;
		}
		size_t i = start + 2, end = n;
		for (; i + 3 < n; i++)
			if (!memcmp(p + i, "\xFF\xD9\xFF\xD8", 4)) {
				end = i + 2;
				break;
			}
		add_pic(s, p + start, end - start);
		start = end;
	}
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
is_jpeg_name(const char *n)
{
	const char *dot = strrchr(n, '.');
	return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int
load_dir(struct files *s, DIR *d)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!is_jpeg_name(e->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = strdup(e->d_name);
	}
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char full[4096];
		uint8_t *p;
		size_t size;
		snprintf(full, sizeof(full), "%s/%s", s->path, names[i]);
		if (!rc && (rc = read_file(full, &p, &size)) == 0) {
			size_t before = s->n;
			add_pic(s, p, size);
			if (s->n == before)
				free(p);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

static int
load(struct files *s)
{
	DIR *d = opendir(s->path);
	int rc;
	if (d) {
		rc = load_dir(s, d);
		closedir(d);
	} else {
		size_t size;
		rc = read_file(s->path, &s->blob, &size);
		if (rc == 0)
			split_mjpeg(s, s->blob, size);
	}
	if (rc == 0 && s->n == 0)
		rc = -ENOMSG; /* "no JPEG pictures found" */
	return rc;
}

static int
files_start(void *ud, struct okvm_capture *c)
{
	struct files *s = ud;
	if (!s->loaded) {
		int rc = load(s);
		if (rc < 0)
			return rc;
		s->loaded = true;
		int w, h;
		if (okvm_jpeg_size(s->pics[0].data, s->pics[0].size, &w, &h) == 0)
			capture_set_size_hint(c, w, h);
	}
	s->deadline = okvm_now_us();
	return 0;
}

static int
files_grab(void *ud, struct okvm_capture *c, int timeout_ms)
{
	struct files *s = ud;
	(void)timeout_ms;
	if (okvm_capture_sleep_until(c, s->deadline) < 0)
		return -EINTR;
	struct pic *p = &s->pics[s->next];
	s->next = (s->next + 1) % s->n;
	uint64_t now = okvm_now_us();
	s->deadline += (uint64_t)(1e6 / s->fps);
	if (s->deadline + 1000000u < now) /* we fell far behind (suspend?): do not catch up */
		s->deadline = now;
	if (okvm_capture_publish_jpeg(c, p->data, p->size, now, false) < 0)
		okvm_capture_count_drop(c);
	return 0;
}

static void
files_destroy(void *ud)
{
	struct files *s = ud;
	if (!s->blob)
		for (size_t i = 0; i < s->n; i++)
			free(s->pics[i].data);
	free(s->blob);
	free(s->pics);
	free(s->path);
	free(s);
}

static const struct okvm_capture_ops files_ops = {
	.name = "files",
	.start = files_start,
	.grab = files_grab,
	.destroy = files_destroy,
};

struct okvm_capture *
okvm_capture_new_files(const char *path, double fps)
{
	struct files *s = xcalloc(1, sizeof(*s));
	s->path = strdup(path);
	s->fps = fps > 0 ? fps : 30;
	snprintf(s->name, sizeof(s->name), "%s", path);
	s->ops = files_ops;
	s->ops.name = s->name;
	return okvm_capture_new_custom(&s->ops, s);
}
