/*
 * DESIGN: GET /api/ocr?x=&y=&w=&h=&lang= (docs/api.md): the text on the target's screen, read
 * by src/auto/ocr.c. Reading a frame takes hundreds of milliseconds to seconds, so it never runs
 * on the service thread: a request is checked there (arguments, language data), then waits for
 * a frame captured after it came (capture is wanted meanwhile, as for GET /api/state), and the
 * job with a reference to that frame goes to the okvm-ocr thread. The thread keeps one tesseract
 * instance per language it was last asked for, builds the JSON answer and hands the job back
 * through a locked list and lws_cancel_service(); the service thread sends it and drops the
 * frame. A client that hangs up meanwhile only leaves its job without a connection (job->c =
 * NULL): the answer is dropped. At most OCR_MAX_JOBS are pending; more get 503.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auto/ocr.h"
#include "okvm/log.h"
#include "serve/internal.h"
#include "lib/thread.h"
#include "lib/xalloc.h"

#define OCR_MAX_JOBS 4       /* waiting for a frame, queued or being read */
#define OCR_WAIT_US 3000000  /* no real frame this long after the request: 503 */
#define OCR_MAX_COORD 100000 /* larger than any frame */

struct ocr_job {
	struct ocr_job *next;
	struct conn *c; /* NULL once the connection closed or moved on (service thread only) */
	struct auto_rect region;
	bool has_region;
	char lang[64];
	uint64_t asked_us;
	struct okvm_frame *frame; /* taken and given back on the service thread */
	atomic_bool gone;         /* the client hung up: not worth reading */
	/* the answer, made on the okvm-ocr thread */
	unsigned status;
	char *json;
};

struct ocr_route {
	struct ocr_job *waiting; /* for a frame: service thread only */
	unsigned njobs;          /* all of them: service thread only */
	pthread_mutex_t lock;    /* guards the rest */
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stop;
	struct ocr_job *todo, *done;
	struct ocr_job *reading; /* on the okvm-ocr thread now */
};

static void
job_free(struct ocr_job *j)
{
	free(j->json);
	free(j);
}

static void
job_append(struct ocr_job **list, struct ocr_job *j)
{
	j->next = NULL;
	while (*list)
		list = &(*list)->next;
	*list = j;
}

static char *
error_json(const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", false);
	cJSON_AddStringToObject(o, "error", msg);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* ---- the okvm-ocr thread ---- */

static void
read_job(struct auto_ocr **ocr, char *lang, size_t lang_n, struct ocr_job *j)
{
	const struct okvm_frame *f = j->frame;
	if (atomic_load(&j->gone))
		return;
	char msg[200];
	struct auto_rect clipped;
	if (j->has_region && !auto_rect_clip(&j->region, f->width, f->height, &clipped)) {
		snprintf(msg, sizeof(msg), "ocr: the region %d,%d %dx%d is outside the %dx%d frame",
			 j->region.x, j->region.y, j->region.w, j->region.h, f->width, f->height);
		j->status = 400;
		j->json = error_json(msg);
		return;
	}
	if (!*ocr || strcmp(lang, j->lang)) {
		auto_ocr_free(*ocr);
		*ocr = NULL;
		lang[0] = 0;
		int rc = auto_ocr_new(j->lang, ocr);
		if (rc) {
			snprintf(msg, sizeof(msg), "ocr: tesseract cannot start with '%s'",
				 j->lang);
			j->status = 503;
			j->json = error_json(msg);
			return;
		}
		snprintf(lang, lang_n, "%s", j->lang);
	}
	struct auto_ocr_result r;
	auto_ocr_set_cancel(*ocr, &j->gone); /* the client hangs up, the server stops */
	int rc = auto_ocr_jpeg(*ocr, f->data, f->size, j->has_region ? &j->region : NULL, &r);
	auto_ocr_set_cancel(*ocr, NULL);
	if (rc == -ECANCELED) {
		j->status = 503;
		j->json = error_json("ocr: the server is stopping");
		return;
	}
	if (rc) {
		j->status = 503;
		j->json = error_json(rc == -EINVAL ? "ocr: the frame is not a JPEG that decodes"
						   : "ocr: tesseract failed on the frame");
		return;
	}
	j->status = 200;
	j->json = auto_ocr_result_json(&r);
	auto_ocr_result_free(&r);
}

static void *
ocr_main(void *arg)
{
	struct serve *s = arg;
	struct ocr_route *o = s->ocr;
	struct auto_ocr *ocr = NULL;
	char lang[64] = "";
	pthread_mutex_lock(&o->lock);
	for (;;) {
		while (!o->todo && !o->stop)
			pthread_cond_wait(&o->cond, &o->lock);
		if (o->stop)
			break;
		struct ocr_job *j = o->todo;
		o->todo = j->next;
		o->reading = j;
		pthread_mutex_unlock(&o->lock);
		read_job(&ocr, lang, sizeof(lang), j);
		pthread_mutex_lock(&o->lock);
		o->reading = NULL;
		job_append(&o->done, j);
		pthread_mutex_unlock(&o->lock);
		lws_cancel_service(s->ctx);
		pthread_mutex_lock(&o->lock);
	}
	pthread_mutex_unlock(&o->lock);
	auto_ocr_free(ocr);
	return NULL;
}

/* ---- the service thread ---- */

static struct ocr_route *
route_get(struct serve *s)
{
	if (!s->ocr) {
		s->ocr = xcalloc(1, sizeof(*s->ocr));
		pthread_mutex_init(&s->ocr->lock, NULL);
		pthread_cond_init(&s->ocr->cond, NULL);
	}
	struct ocr_route *o = s->ocr;
	if (!o->running) {
		o->stop = false;
		if (thread_start(&o->thread, "okvm-ocr", ocr_main, s)) {
			okvm_log(OKVM_LOG_ERROR, "serve: cannot start the OCR thread");
			return NULL;
		}
		o->running = true;
	}
	return o;
}

/* A number argument of ?name=; 0 absent, 1 read, -1 not an integer in range. */
static int
int_arg(struct conn *c, const char *name, int lo, int hi, int *out)
{
	char buf[32];
	const char *v = serve_urlarg(c->wsi, name, buf, sizeof(buf));
	if (!v)
		return 0;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < lo || n > hi)
		return -1;
	*out = (int)n;
	return 1;
}

static int
reply_error(struct conn *c, unsigned status, const char *msg)
{
	return http_reply_error(c, status, msg);
}

/* Parse ?x=&y=&w=&h=: x, y default 0, w and h to the frame's edge. */
static int
parse_region(struct conn *c, struct ocr_job *j)
{
	int v[4] = { 0, 0, OCR_MAX_COORD, OCR_MAX_COORD };
	static const char *const names[4] = { "x=", "y=", "w=", "h=" };
	bool any = false;
	for (int i = 0; i < 4; i++) {
		int rc = int_arg(c, names[i], i < 2 ? -OCR_MAX_COORD : 1, OCR_MAX_COORD, &v[i]);
		if (rc < 0)
			return -1;
		any |= rc > 0;
	}
	j->has_region = any;
	j->region = (struct auto_rect){ v[0], v[1], v[2], v[3] };
	return 0;
}

int
ocr_route_begin(struct conn *c)
{
	struct serve *s = c->s;
	struct serve_state st = { 0 };
	s->be.ops->get_state(s->be.ud, &st);
	if (!st.has_video)
		return reply_error(c, 503, "ocr: this unit has no video capture");
	struct ocr_job *j = xcalloc(1, sizeof(*j));
	if (parse_region(c, j)) {
		free(j);
		return reply_error(c, 400,
				   "ocr: ?x= and ?y= must be integers, ?w= and ?h= integers above "
				   "0 (pixels of the captured frame)");
	}
	char lang[80] = "eng", why[400];
	const char *l = serve_urlarg(c->wsi, "lang=", lang, sizeof(lang));
	if (!l || !*l)
		l = "eng";
	snprintf(j->lang, sizeof(j->lang), "%s", l);
	if (strlen(l) >= sizeof(j->lang) || auto_ocr_lang_check(j->lang, why, sizeof(why))) {
		if (strlen(l) >= sizeof(j->lang))
			snprintf(why, sizeof(why), "OCR language list too long");
		free(j);
		char msg[440];
		snprintf(msg, sizeof(msg), "ocr: %s", why);
		return reply_error(c, 400, msg);
	}
	struct ocr_route *o = s->ocr;
	if (o && o->njobs >= OCR_MAX_JOBS) {
		free(j);
		const char *m =
			"{\"ok\":false,\"error\":\"ocr: busy reading other frames; retry\"}";
		return http_reply(c, 503, "application/json", m, strlen(m), "Retry-After: 1\r\n");
	}
	if (!(o = route_get(s))) {
		free(j);
		return reply_error(c, 503, "ocr: cannot start the OCR thread");
	}
	j->c = c;
	j->asked_us = serve_now_us();
	c->http.ocr_job = j;
	job_append(&o->waiting, j);
	lws_set_timer_usecs(c->wsi, OCR_WAIT_US);
	o->njobs++;
	s->ocr_want++;
	serve_update_want(s);
	return 0;
}

static void
unwant(struct serve *s)
{
	s->ocr_want--;
	serve_update_want(s);
}

void
ocr_route_frame(struct serve *s)
{
	struct ocr_route *o = s->ocr;
	if (!o || !o->waiting)
		return;
	struct okvm_frame *f = s->be.ops->newest_frame(s->be.ud);
	uint64_t now = serve_now_us();
	for (struct ocr_job **p = &o->waiting; *p;) {
		struct ocr_job *j = *p;
		bool fresh = f && f->ts_us >= j->asked_us && !f->placeholder;
		bool late = now - j->asked_us >= OCR_WAIT_US;
		if (!j->c || fresh || late) {
			*p = j->next;
			unwant(s);
		} else {
			p = &j->next;
			continue;
		}
		if (!j->c) { /* hung up while waiting */
			o->njobs--;
			job_free(j);
		} else if (!fresh) {
			struct conn *c = j->c;
			c->http.ocr_job = NULL;
			lws_set_timer_usecs(c->wsi, -1);
			o->njobs--;
			job_free(j);
			reply_error(c, 503,
				    f && f->placeholder
					    ? "ocr: no video signal from the target (HDMI cable? "
					      "target asleep?)"
					    : "ocr: no frame from the capture in time");
		} else {
			lws_set_timer_usecs(j->c->wsi, -1);
			j->frame = s->be.ops->newest_frame(s->be.ud); /* its own reference */
			pthread_mutex_lock(&o->lock);
			job_append(&o->todo, j);
			pthread_cond_signal(&o->cond);
			pthread_mutex_unlock(&o->lock);
		}
	}
	if (f)
		s->be.ops->frame_unref(s->be.ud, f);
}

void
ocr_route_drain(struct serve *s)
{
	struct ocr_route *o = s->ocr;
	if (!o)
		return;
	if (o->waiting) /* a job given up on by its client, or waiting too long */
		ocr_route_frame(s);
	pthread_mutex_lock(&o->lock);
	struct ocr_job *done = o->done;
	o->done = NULL;
	pthread_mutex_unlock(&o->lock);
	while (done) {
		struct ocr_job *n = done->next;
		if (done->c) {
			done->c->http.ocr_job = NULL;
			http_reply_json(done->c, done->status, done->json ? done->json : "{}");
		}
		if (done->frame)
			s->be.ops->frame_unref(s->be.ud, done->frame);
		o->njobs--;
		job_free(done);
		done = n;
	}
}

void
ocr_route_detach(struct conn *c)
{
	if (c->http.ocr_job) {
		c->http.ocr_job->c = NULL;
		atomic_store(&c->http.ocr_job->gone, true);
	}
	c->http.ocr_job = NULL;
}

int
ocr_route_timer(struct conn *c)
{
	ocr_route_frame(c->s); /* answers it if it still waits for a frame */
	return 0;
}

void
ocr_route_stop(struct serve *s)
{
	struct ocr_route *o = s->ocr;
	if (!o || !o->running)
		return;
	pthread_mutex_lock(&o->lock);
	o->stop = true;
	if (o->reading) /* stops within a word or so */
		atomic_store(&o->reading->gone, true);
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->thread, NULL);
	o->running = false;
}

void
ocr_route_free(struct serve *s)
{
	struct ocr_route *o = s->ocr;
	if (!o)
		return;
	struct ocr_job *lists[3] = { o->waiting, o->todo, o->done };
	for (int i = 0; i < 3; i++) {
		while (lists[i]) {
			struct ocr_job *n = lists[i]->next;
			if (lists[i]->frame)
				s->be.ops->frame_unref(s->be.ud, lists[i]->frame);
			job_free(lists[i]);
			lists[i] = n;
		}
	}
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cond);
	free(o);
	s->ocr = NULL;
}
