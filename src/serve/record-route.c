/*
 * DESIGN: recording in okvm serve (docs/recording.md "From the web UI", docs/api.md):
 * POST /api/record?action=start|stop, GET /api/record (the state), GET /api/recordings (the
 * files), GET and DELETE /api/recordings/NAME.
 *
 * A recording is one more consumer of the frame fan-out: on each new device frame the service
 * thread (record_on_frame, from drain_events) hands a reference to the recorder thread
 * ("okvm-record") and goes on; newest wins, so a slow disk drops frames from the file (counted as
 * missed), never from the viewers. The thread remuxes each JPEG as it is into Matroska with its
 * capture time (src/av/record.c, as `okvm record` does) and, when the unit has sound, takes the
 * PCM of every 20 ms packet of the audio thread (ws-audio.c: it counts as one more listener)
 * into a second track on the same clock. While a recording runs the capture runs
 * (serve_update_want), whether or not a browser watches.
 *
 * A recording ends on stop, at [record] max_size, when free space falls under half of
 * [record] min_free, when the video device goes away (unplug), on a write error, and on server
 * shutdown (serve_free, SIGTERM): each way the trailer is written and the file is complete.
 * A start is refused while free space is under min_free. Files live in [record] dir (default
 * $XDG_STATE_HOME/okvm/recordings, ~/.local/state/okvm/recordings), named
 * okvm-YYYYMMDD-HHMMSS.mkv (local time); names in requests are checked (one path component of
 * [A-Za-z0-9._-] ending in .mkv, no leading dot) and opened relative to the folder without
 * following symlinks. A download maps the file and lets http.c write it in chunks.
 * Threads: the service thread; the recorder thread under lock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "av/record.h"
#include "lib/thread.h"
#include "lib/xalloc.h"
#include "okvm/error.h"
#include "okvm/log.h"
#include "serve/internal.h"

#define REC_NAME_MAX 96
#define REC_AUDIO_FRAMES 960      /* one packet of the audio thread: 20 ms */
#define REC_DISK_CHECK_US 1000000 /* free space looked at once a second while recording */

struct serve_record {
	struct serve *s;
	/* service thread */
	bool running; /* the thread runs or ended and is not yet joined */
	pthread_t thread;
	uint64_t fed_seq;
	/* lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct okvm_frame *in; /* the newest frame not yet written */
	bool stop;             /* asked to stop */
	bool done;             /* the thread has finished the file */
	bool audio;            /* an audio track */
	char name[REC_NAME_MAX];
	char path[4096];
	uint64_t start_us, start_wall_us;
	struct av_record_stats st;
	uint64_t missed;
	const char *end; /* how the last recording ended ("stopped", "max-size"...) */
	char error[256]; /* and why, when it was not asked for */
	char last[REC_NAME_MAX];
	/* recorder thread */
	struct av_record *rec;
	uint64_t seq;       /* of the last frame written */
	uint64_t audio_seq; /* of the last audio packet taken */
	uint64_t disk_check_us;
};

static const char *
rec_dir(struct serve *s)
{
	return s->cfg.record_dir;
}

static struct serve_record *
rec_get(struct serve *s)
{
	if (!s->record) {
		struct serve_record *r = xcalloc(1, sizeof(*r));
		r->s = s;
		pthread_mutex_init(&r->lock, NULL);
		pthread_cond_init(&r->cond, NULL);
		s->record = r;
	}
	return s->record;
}

bool
serve_record_active(struct serve *s)
{
	return s->record && s->record->running;
}

/* Free bytes for an unprivileged user where the recordings go (UINT64_MAX: unknown). */
static uint64_t
free_bytes(const char *dir)
{
	struct statvfs v;
	if (statvfs(dir, &v))
		return UINT64_MAX;
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/* ---- the recorder thread ---- */

static void rec_finish(struct serve_record *r, const char *end, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
rec_finish(struct serve_record *r, const char *end, const char *fmt, ...)
{
	pthread_mutex_lock(&r->lock);
	if (!r->end) {
		r->end = end;
		if (fmt) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(r->error, sizeof(r->error), fmt, ap);
			va_end(ap);
		}
	}
	r->stop = true;
	pthread_mutex_unlock(&r->lock);
}

static void
write_frame(struct serve_record *r, struct okvm_frame *f)
{
	struct serve *s = r->s;
	if (f->placeholder) {
		/* No signal is a gap in the timestamps; no device (unplug) ends the file. */
		struct okvm_capture_status cs = { .device = true };
		if (s->be.capture)
			okvm_capture_get_status(s->be.capture, &cs);
		if (!cs.device)
			rec_finish(r, "unplugged",
				   "the video device went away (unplugged?); the file is complete "
				   "up to there");
		return;
	}
	if (r->seq && f->seq > r->seq + 1) {
		pthread_mutex_lock(&r->lock);
		r->missed += f->seq - r->seq - 1;
		pthread_mutex_unlock(&r->lock);
	}
	if (f->seq <= r->seq)
		return;
	r->seq = f->seq;
	int rc = av_record_video(r->rec, f->data, f->size, f->width, f->height, f->ts_us);
	if (rc == -EFBIG)
		rec_finish(r, "max-size", "the file reached [record] max_size (%llu bytes)",
			   (unsigned long long)s->cfg.record_max_bytes);
	else if (rc)
		rec_finish(r, "write error", "cannot write %s: %s", r->name, okvm_strerror(rc));
}

static void
write_audio(struct serve_record *r)
{
	int16_t pcm[REC_AUDIO_FRAMES * 2];
	uint64_t ts;
	long n;
	while ((n = serve_audio_next(r->s, &r->audio_seq, pcm, REC_AUDIO_FRAMES, &ts)) > 0) {
		int rc = av_record_audio(r->rec, pcm, (size_t)n, ts);
		if (rc == -EFBIG)
			rec_finish(r, "max-size", "the file reached [record] max_size (%llu bytes)",
				   (unsigned long long)r->s->cfg.record_max_bytes);
		else if (rc)
			rec_finish(r, "write error", "cannot write %s: %s", r->name,
				   okvm_strerror(rc));
		if (rc)
			return;
	}
}

static void
check_disk(struct serve_record *r)
{
	uint64_t now = serve_now_us();
	if (now - r->disk_check_us < REC_DISK_CHECK_US)
		return;
	r->disk_check_us = now;
	uint64_t margin = r->s->cfg.record_min_free / 2;
	if (free_bytes(rec_dir(r->s)) < margin)
		rec_finish(r, "disk full",
			   "less than %llu MiB free where the recordings go (half of [record] "
			   "min_free); stopped",
			   (unsigned long long)(margin >> 20));
}

static void *
rec_thread(void *arg)
{
	struct serve_record *r = arg;
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct okvm_frame *f = r->in;
		r->in = NULL;
		if (!f) {
			/* The audio thread makes a packet each 20 ms: look at least that often. */
			struct timespec t;
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += 10 * 1000 * 1000;
			if (t.tv_nsec >= 1000000000)
				t.tv_sec++, t.tv_nsec -= 1000000000;
			if (r->audio)
				pthread_cond_timedwait(&r->cond, &r->lock, &t);
			else
				pthread_cond_wait(&r->cond, &r->lock);
			f = r->in;
			r->in = NULL;
		}
		pthread_mutex_unlock(&r->lock);
		if (f) {
			write_frame(r, f);
			okvm_frame_unref(f);
		}
		if (r->audio)
			write_audio(r);
		check_disk(r);
		pthread_mutex_lock(&r->lock);
		av_record_get_stats(r->rec, &r->st);
	}
	okvm_frame_unref(r->in);
	r->in = NULL;
	pthread_mutex_unlock(&r->lock);
	if (r->audio)
		write_audio(r); /* what was captured up to the stop */
	struct av_record_stats st;
	av_record_get_stats(r->rec, &st);
	int rc = av_record_close(r->rec);
	r->rec = NULL;
	pthread_mutex_lock(&r->lock);
	r->st = st;
	if (!r->end)
		r->end = "stopped";
	if (rc == -ENODATA)
		snprintf(r->error, sizeof(r->error),
			 "no picture came from the unit; nothing recorded (%s removed)", r->name);
	else if (rc)
		snprintf(r->error, sizeof(r->error), "cannot finish %s: %s", r->name,
			 okvm_strerror(rc));
	r->done = true;
	pthread_mutex_unlock(&r->lock);
	okvm_log(OKVM_LOG_NOTICE, "serve: recording %s ended (%s): %llu frames, %llu missed%s%s",
		 r->name, r->end, (unsigned long long)r->st.frames, (unsigned long long)r->missed,
		 r->error[0] ? ": " : "", r->error);
	serve_notify_state(r->s);
	return NULL;
}

/* ---- service thread ---- */

/* Join a recorder thread that has finished (by itself or asked to). */
static void
reap(struct serve_record *r, bool wait)
{
	if (!r->running)
		return;
	pthread_mutex_lock(&r->lock);
	bool done = r->done;
	if (wait && !done) {
		r->stop = true;
		pthread_cond_signal(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	if (!done && !wait)
		return;
	pthread_join(r->thread, NULL);
	r->running = false;
	if (r->audio)
		serve_audio_record(r->s, false, NULL);
	snprintf(r->last, sizeof(r->last), "%s", r->name);
	serve_update_want(r->s);
}

void
record_reap(struct serve *s)
{
	if (s->record)
		reap(s->record, false);
}

void
record_on_frame(struct serve *s)
{
	struct serve_record *r = s->record;
	if (!r || !r->running)
		return;
	reap(r, false);
	if (!r->running || !s->be.ops->newest_frame)
		return;
	struct okvm_frame *f = s->be.ops->newest_frame(s->be.ud);
	if (!f)
		return;
	if (f->seq == r->fed_seq) {
		s->be.ops->frame_unref(s->be.ud, f);
		return;
	}
	r->fed_seq = f->seq;
	pthread_mutex_lock(&r->lock);
	okvm_frame_unref(r->in); /* not written yet: newest wins (seq gap counts it missed) */
	r->in = okvm_frame_ref(f);
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	s->be.ops->frame_unref(s->be.ud, f);
}

/* mkdir -p with 0700 for the parts it creates. */
static int
make_dirs(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, 0700) && errno != EEXIST)
				return -errno;
			*p = c;
			if (!c)
				break;
		}
	}
	struct stat st;
	if (stat(path, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static void
status_json(struct serve_record *r, cJSON *o)
{
	struct serve *s = r->s;
	pthread_mutex_lock(&r->lock);
	bool on = r->running && !r->done;
	cJSON_AddBoolToObject(o, "recording", on);
	if (r->running || r->name[0]) {
		cJSON_AddStringToObject(o, "name", r->name);
		double secs = on             ? (double)(serve_now_us() - r->start_us) / 1e6
			      : r->st.frames ? (double)(r->st.last_us - r->st.first_us) / 1e6
					     : 0;
		cJSON_AddNumberToObject(o, "seconds", secs);
		cJSON_AddNumberToObject(o, "bytes", (double)r->st.bytes);
		cJSON_AddNumberToObject(o, "frames", (double)r->st.frames);
		cJSON_AddNumberToObject(o, "missed", (double)r->missed);
		cJSON_AddBoolToObject(o, "audio", r->audio);
		cJSON_AddNumberToObject(o, "started", (double)(r->start_wall_us / 1000000));
	}
	if (!on && r->end) {
		cJSON_AddStringToObject(o, "end", r->end);
		if (r->error[0])
			cJSON_AddStringToObject(o, "error", r->error);
	}
	pthread_mutex_unlock(&r->lock);
	cJSON_AddNumberToObject(o, "limit", (double)s->cfg.record_max_bytes);
	cJSON_AddNumberToObject(o, "min_free", (double)s->cfg.record_min_free);
}

void
serve_record_state_json(struct serve *s, cJSON *o)
{
	cJSON *j = cJSON_AddObjectToObject(o, "record");
	status_json(rec_get(s), j);
}

/* A free name in dir from the local time: okvm-YYYYMMDD-HHMMSS.mkv, then -2, -3 ... */
static int
pick_name(const char *dir, char *name, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	char stamp[32];
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	for (int k = 1; k < 100; k++) {
		if (k == 1)
			snprintf(name, n, "okvm-%s.mkv", stamp);
		else
			snprintf(name, n, "okvm-%s-%d.mkv", stamp, k);
		char path[4200];
		snprintf(path, sizeof(path), "%.4000s/%s", dir, name);
		if (access(path, F_OK))
			return 0;
	}
	return -EEXIST;
}

static int
do_start(struct conn *c, struct serve_record *r)
{
	struct serve *s = c->s;
	if (r->running)
		return http_reply_error(c, 409, "a recording is running already (stop it first)");
	if (!s->be.ops->newest_frame || !s->be.ops->want_frames)
		return http_reply_error(c, 503, "record: this unit has no video");
	const char *dir = rec_dir(s);
	int rc = make_dirs(dir);
	char msg[512];
	if (rc) {
		snprintf(msg, sizeof(msg),
			 "record: cannot use the folder %.300s: %s (set [record] dir in okvm.conf)",
			 dir, okvm_strerror(rc));
		return http_reply_error(c, 500, msg);
	}
	uint64_t avail = free_bytes(dir);
	if (avail < s->cfg.record_min_free) {
		snprintf(
			msg, sizeof(msg),
			"record: only %llu MiB free where the recordings go (%.300s); at least %llu MiB "
			"are needed ([record] min_free): delete old recordings or free space",
			(unsigned long long)(avail >> 20), dir,
			(unsigned long long)(s->cfg.record_min_free >> 20));
		return http_reply_error(c, 507, msg);
	}
	pthread_mutex_lock(&r->lock);
	rc = pick_name(dir, r->name, sizeof(r->name));
	snprintf(r->path, sizeof(r->path), "%.3900s/%s", dir, r->name);
	pthread_mutex_unlock(&r->lock);
	bool audio = s->audio && s->cfg.record_audio;
	struct av_record_config cfg = { .path = r->path, .max_bytes = s->cfg.record_max_bytes };
	if (audio)
		cfg.audio_rate = 48000, cfg.audio_channels = 2;
	struct av_record *rec = NULL;
	if (!rc)
		rc = av_record_open(&cfg, &rec);
	if (rc) {
		if (rc == -ELIBACC)
			snprintf(msg, sizeof(msg), "record: %s", av_record_load_error());
		else
			snprintf(msg, sizeof(msg), "record: cannot create %.300s: %s", r->path,
				 okvm_strerror(rc));
		return http_reply_error(c, 500, msg);
	}
	pthread_mutex_lock(&r->lock);
	r->rec = rec;
	r->stop = r->done = false;
	r->end = NULL;
	r->error[0] = 0;
	r->audio = audio;
	r->missed = 0;
	r->seq = 0;
	memset(&r->st, 0, sizeof(r->st));
	r->start_us = serve_now_us();
	r->start_wall_us = serve_wall_us();
	r->disk_check_us = r->start_us;
	pthread_mutex_unlock(&r->lock);
	if (audio)
		serve_audio_record(s, true, &r->audio_seq);
	if (thread_start(&r->thread, "okvm-record", rec_thread, r)) {
		if (audio)
			serve_audio_record(s, false, NULL);
		av_record_close(rec); /* no frame: removed */
		r->rec = NULL;
		return http_reply_error(c, 500, "record: cannot start the recorder thread");
	}
	r->running = true;
	r->fed_seq = 0;
	serve_update_want(s);
	audit(c, "record start name=%s", r->name);
	okvm_log(OKVM_LOG_INFO, "serve: recording to %s%s", r->path, audio ? " (with sound)" : "");
	serve_notify_state(s);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", true);
	status_json(r, o);
	return http_reply_object(c, 200, o);
}

static int
do_stop(struct conn *c, struct serve_record *r)
{
	reap(r, false);
	if (!r->running)
		return http_reply_error(c, 409, "no recording is running");
	reap(r, true);
	audit(c, "record stop name=%s", r->name);
	serve_notify_state(c->s);
	cJSON *o = cJSON_CreateObject();
	pthread_mutex_lock(&r->lock);
	bool ok = !r->error[0];
	pthread_mutex_unlock(&r->lock);
	cJSON_AddBoolToObject(o, "ok", ok);
	status_json(r, o);
	return http_reply_object(c, ok ? 200 : 500, o);
}

/* GET/POST /api/record */
int
serve_record_route(struct conn *c)
{
	struct serve_record *r = rec_get(c->s);
	reap(r, false);
	if (!c->http.is_post) {
		cJSON *o = cJSON_CreateObject();
		status_json(r, o);
		return http_reply_object(c, 200, o);
	}
	if (c->role < SERVE_ROLE_OPERATOR)
		return http_reply_error(c, 403, "recording needs the role operator");
	char buf[32];
	const char *act = serve_urlarg(c->wsi, "action=", buf, sizeof(buf));
	if (act && !strcmp(act, "start"))
		return do_start(c, r);
	if (act && !strcmp(act, "stop"))
		return do_stop(c, r);
	return http_reply_error(c, 400, "record: ?action=start or ?action=stop");
}

/* A recording's name as requests may give it: NAME.mkv of [A-Za-z0-9._-], no leading dot. */
static bool
name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len < 5 || len >= REC_NAME_MAX || n[0] == '.' || strcmp(n + len - 4, ".mkv"))
		return false;
	return strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
	       len;
}

static int
cmp_name(const void *a, const void *b)
{
	const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;
	return strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(y, "name")),
		      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "name")));
}

/* GET /api/recordings: the files, newest name first. */
int
serve_recordings_list(struct conn *c)
{
	struct serve_record *r = rec_get(c->s);
	reap(r, false);
	cJSON *o = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(o, "recordings");
	DIR *d = opendir(rec_dir(c->s));
	size_t n = 0, cap = 0;
	cJSON **items = NULL;
	struct dirent *e;
	pthread_mutex_lock(&r->lock);
	const char *cur = r->running && !r->done ? r->name : "";
	while (d && (e = readdir(d))) {
		struct stat st;
		if (!name_ok(e->d_name) || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "name", e->d_name);
		cJSON_AddNumberToObject(j, "bytes", (double)st.st_size);
		cJSON_AddNumberToObject(j, "mtime", (double)st.st_mtime);
		cJSON_AddBoolToObject(j, "recording", !strcmp(cur, e->d_name));
		if (n == cap)
			items = xrealloc(items, (cap = cap ? 2 * cap : 16) * sizeof(*items));
		items[n++] = j;
	}
	pthread_mutex_unlock(&r->lock);
	if (d)
		closedir(d);
	if (n)
		qsort(items, n, sizeof(*items), cmp_name);
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, items[i]);
	free(items);
	cJSON_AddStringToObject(o, "dir", rec_dir(c->s));
	uint64_t avail = free_bytes(rec_dir(c->s));
	if (avail == UINT64_MAX)
		cJSON_AddNullToObject(o, "free"); /* no folder yet */
	else
		cJSON_AddNumberToObject(o, "free", (double)avail);
	return http_reply_object(c, 200, o);
}

/* GET, HEAD or DELETE /api/recordings/NAME */
int
serve_recording_file(struct conn *c, const char *uri)
{
	struct serve *s = c->s;
	struct serve_record *r = rec_get(s);
	reap(r, false);
	const char *name = uri + strlen("/api/recordings/");
	if (!name_ok(name))
		return http_reply_error(c, 400,
					"recordings: a name is NAME.mkv of letters, digits, '.', "
					"'_' and '-' (see GET /api/recordings)");
	pthread_mutex_lock(&r->lock);
	bool busy = r->running && !r->done && !strcmp(r->name, name);
	pthread_mutex_unlock(&r->lock);
	if (busy)
		return http_reply_error(c, 409,
					"this recording is still running: stop it first "
					"(POST /api/record?action=stop)");
	int dfd = open(rec_dir(s), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return http_reply_error(c, 404, "no such recording");
	if (c->http.is_delete) {
		if (c->role < SERVE_ROLE_OPERATOR) {
			close(dfd);
			return http_reply_error(c, 403,
						"deleting a recording needs the role operator");
		}
		struct stat st;
		int rc = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode)
				 ? -ENOENT
			 : unlinkat(dfd, name, 0) ? -errno
						  : 0;
		close(dfd);
		if (rc == -ENOENT)
			return http_reply_error(c, 404, "no such recording");
		if (rc) {
			char msg[200];
			snprintf(msg, sizeof(msg), "cannot delete %s: %s", name, okvm_strerror(rc));
			return http_reply_error(c, 500, msg);
		}
		audit(c, "record delete name=%s", name);
		return http_reply_json(c, 200, "{\"ok\":true}");
	}
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(dfd);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return http_reply_error(c, 404, "no such recording");
	}
	void *map = NULL;
	if (st.st_size > 0 && !c->http.is_head) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			close(fd);
			return http_reply_error(c, 500, "cannot read the recording");
		}
	}
	close(fd);
	char hdr[256];
	snprintf(hdr, sizeof(hdr), "Content-Disposition: attachment; filename=\"%s\"\r\n", name);
	http_set_headers(c, 200, "video/x-matroska", (long long)st.st_size, hdr);
	c->http.body_map = map;
	c->http.body_map_len = map ? (size_t)st.st_size : 0;
	c->http.body_ptr = map;
	c->http.body_size = c->http.body_map_len;
	c->http.body_off = 0;
	lws_callback_on_writable(c->wsi);
	return 0;
}

void
serve_record_free(struct serve *s)
{
	struct serve_record *r = s->record;
	if (!r)
		return;
	reap(r, true);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
	s->record = NULL;
}
