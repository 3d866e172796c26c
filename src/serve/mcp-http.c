/*
 * DESIGN: MCP over streamable HTTP at /mcp (docs/api.md, docs/automation.md "MCP").
 *
 * POST /mcp carries one JSON-RPC message (or a batch) and is answered with one JSON response
 * (application/json; no tool streams, so no SSE), or 202 when it held only notifications or
 * responses. An initialize without an Mcp-Session-Id header makes a session (its id in the
 * answer's Mcp-Session-Id header); every later request names it, an unknown one gets 404 (the
 * client initializes again); an MCP-Protocol-Version header this server does not speak gets
 * 400. DELETE /mcp ends a session; GET /mcp is 405: this server offers no
 * stream of its own. Access: the web login (a session cookie of an operator or admin) or
 * "Authorization: Bearer" with [mcp] token of okvm.conf.
 *
 * Threads. Every POST runs on a thread of its own (okvm-mcp, at most MCP_MAX_JOBS at once), since
 * a tool may take minutes (wait_for_text, execute_script) and OCR takes a good part of a second:
 * the service thread never waits. The finished job is handed back through a locked list and
 * lws_cancel_service(); the service thread writes the answer. A client that disconnects first
 * sets its job's cancel flag (waits return at their next look) and the answer is dropped;
 * notifications/cancelled naming a running request of the session sets it too (answered 202 at
 * once, the request answers with its tool's "cancelled").
 * The backend's operations belong to the service thread (backend.h), so the jobs get a backend
 * of their own whose operations queue each call, wake the service thread and wait for it to
 * run the call on the real backend (mcp_http_drain). Their want_frames counts MCP's watchers in
 * s->mcp_want, which serve_update_want() adds to the stream's and the sockets'.
 * Each session gets a reader of the serial console (console.c, serve_console_auto) for
 * serial_wait_for_text / serial_send_text: what the target printed since the session began.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auto/console.h"
#include "auto/mcp.h"
#include "okvm/log.h"
#include "serve/auth-parse.h"
#include "serve/internal.h"
#include "lib/thread.h"
#include "lib/xalloc.h"

#define MCP_MAX_JOBS 16     /* POSTs running at once; more: 503 */
#define MCP_MAX_SESSIONS 32 /* more: the one idle longest goes */

enum mcall_op {
	MC_KEY,
	MC_COMBO,
	MC_MOUSE_ABS,
	MC_BUTTONS,
	MC_WHEEL,
	MC_REL,
	MC_TYPE,
	MC_RELEASE,
	MC_USB,
	MC_STATE,
	MC_FRAME,
	MC_UNREF,
	MC_WANT,
};

/* One backend call handed to the service thread. */
struct mcall {
	struct mcall *next;
	enum mcall_op op;
	const char *str, *str2;
	size_t len;
	double x, y, cps;
	int a, b;
	bool flag;
	serve_type_progress_fn fn;
	void *fn_ud;
	struct serve_state *state;
	struct okvm_frame *frame;
	int rc;
	bool done;
};

struct mcp_sess {
	struct mcp_sess *next;
	char id[33];
	struct mcp *m;
	struct auto_console *console; /* the serial console's reader (NULL: none) */
	unsigned refs;                /* the list's + one per running job */
	uint64_t last_us;
};

struct mcp_job {
	struct mcp_job *next;      /* in running (service thread) */
	struct mcp_job *done_next; /* in done (under the lock) */
	struct mcp_http *h;
	struct conn *c; /* NULL: the client left */
	struct mcp_sess *se;
	char *body, *out;
	size_t len;
	char *rpc_id; /* its request's id as JSON text (NULL: none, or a batch) */
	bool new_session;
	atomic_bool cancel;
	pthread_t th;
};

struct mcp_http {
	struct serve *s;
	struct serve_backend mb; /* the jobs' backend: marshalled onto the service thread */
	pthread_mutex_t lock;    /* calls, done, stopping */
	pthread_cond_t cond;
	struct mcall *calls, **calls_tail;
	struct mcp_job *done;
	bool stopping;
	/* service thread only */
	struct mcp_sess *sessions;
	struct mcp_job *running;
	unsigned nrunning;
};

/* ---- the jobs' backend (any thread but the service thread) ---- */

static int
marshal(struct mcp_http *h, struct mcall *c)
{
	pthread_mutex_lock(&h->lock);
	if (h->stopping) {
		pthread_mutex_unlock(&h->lock);
		return -ECANCELED;
	}
	c->next = NULL;
	*h->calls_tail = c;
	h->calls_tail = &c->next;
	lws_cancel_service(h->s->ctx);
	while (!c->done)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	return c->rc;
}

static int
mb_key(void *ud, const char *code, bool down)
{
	return marshal(ud, &(struct mcall){ .op = MC_KEY, .str = code, .flag = down });
}

static int
mb_combo(void *ud, const char *combo)
{
	return marshal(ud, &(struct mcall){ .op = MC_COMBO, .str = combo });
}

static int
mb_mouse_abs(void *ud, double x, double y, uint8_t buttons)
{
	return marshal(ud, &(struct mcall){ .op = MC_MOUSE_ABS, .x = x, .y = y, .a = buttons });
}

static int
mb_buttons(void *ud, uint8_t buttons)
{
	return marshal(ud, &(struct mcall){ .op = MC_BUTTONS, .a = buttons });
}

static int
mb_wheel(void *ud, int dy, int dx)
{
	return marshal(ud, &(struct mcall){ .op = MC_WHEEL, .a = dy, .b = dx });
}

static int
mb_rel(void *ud, int dx, int dy, uint8_t buttons)
{
	return marshal(ud, &(struct mcall){ .op = MC_REL, .a = dx, .b = dy, .x = buttons });
}

static int
mb_type(void *ud, const char *text, size_t len, const char *layout, double cps,
	serve_type_progress_fn fn, void *fn_ud)
{
	return marshal(ud, &(struct mcall){ .op = MC_TYPE,
					    .str = text,
					    .str2 = layout,
					    .len = len,
					    .cps = cps,
					    .fn = fn,
					    .fn_ud = fn_ud });
}

static int
mb_release_all(void *ud)
{
	return marshal(ud, &(struct mcall){ .op = MC_RELEASE });
}

static int
mb_usb_switch(void *ud, enum okvm_usb_dir to)
{
	return marshal(ud, &(struct mcall){ .op = MC_USB, .a = (int)to });
}

static void
mb_get_state(void *ud, struct serve_state *out)
{
	memset(out, 0, sizeof(*out));
	marshal(ud, &(struct mcall){ .op = MC_STATE, .state = out });
}

static struct okvm_frame *
mb_newest_frame(void *ud)
{
	struct mcall c = { .op = MC_FRAME };
	marshal(ud, &c);
	return c.frame;
}

static void
mb_frame_unref(void *ud, struct okvm_frame *f)
{
	struct mcp_http *h = ud;
	if (marshal(h, &(struct mcall){ .op = MC_UNREF, .frame = f }) == -ECANCELED)
		okvm_frame_unref(f); /* stopping: frames are references any thread may drop */
}

static void
mb_want(void *ud, bool want)
{
	marshal(ud, &(struct mcall){ .op = MC_WANT, .flag = want });
}

static void
mb_set_notify(void *ud, void (*on_frame)(void *), void (*on_state)(void *), void *nud)
{
}

static void
mb_destroy(void *ud)
{
}

static const struct serve_backend_ops mb_ops = {
	.key = mb_key,
	.combo = mb_combo,
	.mouse_abs = mb_mouse_abs,
	.buttons = mb_buttons,
	.wheel = mb_wheel,
	.rel = mb_rel,
	.type = mb_type,
	.release_all = mb_release_all,
	.usb_switch = mb_usb_switch,
	.get_state = mb_get_state,
	.newest_frame = mb_newest_frame,
	.frame_unref = mb_frame_unref,
	.want_frames = mb_want,
	.set_notify = mb_set_notify,
	.destroy = mb_destroy,
};

/* ---- the service thread runs the calls ---- */

static void
run_call(struct serve *s, struct mcall *c)
{
	const struct serve_backend *b = &s->be;
	void *ud = b->ud;
	switch (c->op) {
	case MC_KEY: c->rc = b->ops->key(ud, c->str, c->flag); break;
	case MC_COMBO: c->rc = b->ops->combo(ud, c->str); break;
	case MC_MOUSE_ABS: c->rc = b->ops->mouse_abs(ud, c->x, c->y, (uint8_t)c->a); break;
	case MC_BUTTONS: c->rc = b->ops->buttons(ud, (uint8_t)c->a); break;
	case MC_WHEEL: c->rc = b->ops->wheel(ud, c->a, c->b); break;
	case MC_REL: c->rc = b->ops->rel(ud, c->a, c->b, (uint8_t)c->x); break;
	case MC_TYPE:
		c->rc = b->ops->type(ud, c->str, c->len, c->str2,
				     c->cps > 0 ? c->cps : s->cfg.type_cps, c->fn, c->fn_ud);
		break;
	case MC_RELEASE: c->rc = b->ops->release_all(ud); break;
	case MC_USB: c->rc = b->ops->usb_switch(ud, (enum okvm_usb_dir)c->a); break;
	case MC_STATE: b->ops->get_state(ud, c->state); break;
	case MC_FRAME: c->frame = b->ops->newest_frame(ud); break;
	case MC_UNREF: b->ops->frame_unref(ud, c->frame); break;
	case MC_WANT:
		if (c->flag)
			s->mcp_want++;
		else if (s->mcp_want)
			s->mcp_want--;
		serve_update_want(s);
		break;
	}
}

/* ---- sessions ---- */

static void
sess_unref(struct mcp_sess *se)
{
	if (--se->refs)
		return;
	mcp_free(se->m);
	auto_console_close(se->console);
	free(se);
}

static struct mcp_sess *
sess_find(struct mcp_http *h, const char *id)
{
	for (struct mcp_sess *se = h->sessions; se; se = se->next)
		if (strlen(id) == 32 && !sodium_memcmp(se->id, id, 32))
			return se;
	return NULL;
}

static void
sess_remove(struct mcp_http *h, struct mcp_sess *se)
{
	for (struct mcp_sess **p = &h->sessions; *p; p = &(*p)->next)
		if (*p == se) {
			*p = se->next;
			break;
		}
	for (struct mcp_job *j = h->running; j; j = j->next)
		if (j->se == se)
			atomic_store(&j->cancel, true);
	sess_unref(se);
}

static struct mcp_sess *
sess_new(struct mcp_http *h)
{
	unsigned n = 0;
	struct mcp_sess *oldest = NULL;
	for (struct mcp_sess *se = h->sessions; se; se = se->next, n++)
		if (!oldest || se->last_us < oldest->last_us)
			oldest = se;
	if (n >= MCP_MAX_SESSIONS)
		sess_remove(h, oldest);
	struct mcp_sess *se = xcalloc(1, sizeof(*se));
	unsigned char raw[16];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(se->id, sizeof(se->id), raw, sizeof(raw));
	se->console = serve_console_auto(h->s); /* serial_* tools: the console's ring */
	struct mcp_config cfg = { .b = &h->mb,
				  .layout = h->s->cfg.layout,
				  .type_cps = 0,
				  .transport = "http",
				  .console = se->console };
	se->m = mcp_new(&cfg);
	se->refs = 1;
	se->next = h->sessions;
	h->sessions = se;
	return se;
}

/* ---- jobs ---- */

static void *
job_thread(void *ud)
{
	struct mcp_job *j = ud;
	j->out = mcp_handle(j->se->m, j->body, j->len, &j->cancel);
	struct mcp_http *h = j->h;
	pthread_mutex_lock(&h->lock);
	j->done_next = h->done;
	h->done = j;
	lws_cancel_service(h->s->ctx);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void
job_unlink(struct mcp_http *h, struct mcp_job *j)
{
	for (struct mcp_job **p = &h->running; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	h->nrunning--;
}

static void
job_free(struct mcp_job *j)
{
	if (j->c)
		j->c->http.mcp_job = NULL;
	sess_unref(j->se);
	free(j->rpc_id);
	free(j->body);
	free(j->out);
	free(j);
}

static void
job_reply(struct mcp_job *j)
{
	struct conn *c = j->c;
	char hdr[80];
	snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %s\r\n", j->se->id);
	const char *extra = j->new_session ? hdr : NULL;
	if (j->out)
		http_reply(c, 200, "application/json", j->out, strlen(j->out), extra);
	else
		http_reply(c, 202, "application/json", "", 0, extra);
}

void
mcp_http_drain(struct serve *s)
{
	struct mcp_http *h = s->mcp;
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	struct mcall *calls = h->calls;
	h->calls = NULL;
	h->calls_tail = &h->calls;
	struct mcp_job *done = h->done;
	h->done = NULL;
	pthread_mutex_unlock(&h->lock);
	for (struct mcall *c = calls, *next; c; c = next) {
		next = c->next; /* c lives on its thread's stack: done is its last touch */
		run_call(s, c);
		pthread_mutex_lock(&h->lock);
		c->done = true;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
	}
	for (struct mcp_job *j = done, *next; j; j = next) {
		next = j->done_next;
		pthread_join(j->th, NULL);
		job_unlink(h, j);
		if (j->c)
			job_reply(j);
		job_free(j);
	}
}

/* ---- requests (service thread) ---- */

/* The Mcp-Session-Id header (lws knows it as a custom header only). */
static bool
session_header(struct conn *c, char *buf, int n)
{
	static const char name[] = "mcp-session-id:";
	return lws_hdr_custom_copy(c->wsi, buf, n, name, (int)strlen(name)) > 0;
}

bool
mcp_http_token_ok(struct serve *s, struct lws *wsi)
{
	char got[300];
	if (!s->cfg.mcp_token ||
	    lws_hdr_copy(wsi, got, sizeof(got), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
		return false;
	bool ok = auth_bearer_ok(got, s->cfg.mcp_token);
	sodium_memzero(got, sizeof(got));
	return ok;
}

static struct mcp_http *
get_h(struct serve *s)
{
	if (s->mcp)
		return s->mcp;
	struct mcp_http *h = xcalloc(1, sizeof(*h));
	h->s = s;
	h->mb = (struct serve_backend){ .link = s->be.link,
					.capture = s->be.capture,
					.ops = &mb_ops,
					.ud = h };
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->calls_tail = &h->calls;
	s->mcp = h;
	return h;
}

static int
do_post(struct conn *c, struct mcp_http *h)
{
	char sid[48] = "";
	bool has_sid = session_header(c, sid, sizeof(sid));
	const char *body = c->http.body ? c->http.body : "";
	size_t len = c->http.body ? c->http.body_len : 0;
	struct mcp_sess *se = NULL;
	bool fresh = false;
	char ver[32];
	static const char vname[] = "mcp-protocol-version:";
	if (lws_hdr_custom_copy(c->wsi, ver, sizeof(ver), vname, (int)strlen(vname)) > 0) {
		bool known = false;
		for (int i = 0; mcp_protocol_versions[i]; i++)
			known |= !strcmp(ver, mcp_protocol_versions[i]);
		if (!known)
			return http_reply_error(
				c, 400,
				"unsupported MCP-Protocol-Version: this server speaks "
				"2025-06-18, 2025-03-26 and 2024-11-05");
	}
	if (has_sid) {
		se = sess_find(h, sid);
		if (!se)
			return http_reply_error(c, 404,
						"no such MCP session (it ended): initialize again");
	} else if (mcp_is_initialize(body, len)) {
		fresh = true;
	} else {
		return http_reply_error(
			c, 400, "send the Mcp-Session-Id header of your initialize's answer");
	}
	cJSON *msg = cJSON_ParseWithLength(body, len);
	const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
	char *rpc_id = cJSON_IsObject(msg) && id ? cJSON_PrintUnformatted(id) : NULL;
	if (se && !id && cJSON_IsString(method) &&
	    !strcmp(method->valuestring, "notifications/cancelled")) {
		/* A request of this session that is still running stops (its answer goes out). */
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(msg, "params");
		char *want = cJSON_PrintUnformatted(
			cJSON_GetObjectItemCaseSensitive(p, "requestId"));
		for (struct mcp_job *j = h->running; j && want; j = j->next)
			if (j->se == se && j->rpc_id && !strcmp(j->rpc_id, want))
				atomic_store(&j->cancel, true);
		free(want);
		cJSON_Delete(msg);
		return http_reply(c, 202, "application/json", "", 0, NULL);
	}
	const cJSON *tool = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(msg, "params"), "name");
	if (cJSON_IsString(method) && !strcmp(method->valuestring, "tools/call") &&
	    cJSON_IsString(tool)) {
		char name[48];
		snprintf(name, sizeof(name), "%s", tool->valuestring);
		for (char *q = name; *q; q++) /* it goes into the log: a tool name's characters */
			if (!((*q >= 'a' && *q <= 'z') || *q == '_' || (*q >= '0' && *q <= '9')))
				*q = '?';
		audit(c, "mcp tool=%s via=%s", name, c->session_id ? "login" : "token");
	}
	cJSON_Delete(msg);
	if (h->nrunning >= MCP_MAX_JOBS) {
		free(rpc_id);
		return http_reply_error(c, 503, "too many MCP requests at once: try again");
	}
	if (fresh)
		se = sess_new(h);
	se->last_us = serve_now_us();
	struct mcp_job *j = xcalloc(1, sizeof(*j));
	j->h = h;
	j->c = c;
	j->se = se;
	se->refs++;
	j->len = len;
	j->body = xmalloc(len + 1);
	memcpy(j->body, body, len);
	j->body[len] = 0;
	j->new_session = fresh;
	j->rpc_id = rpc_id;
	atomic_init(&j->cancel, false);
	if (thread_start(&j->th, "okvm-mcp", job_thread, j)) {
		j->c = NULL;
		job_free(j);
		return http_reply_error(c, 503, "cannot start an MCP worker: try again");
	}
	j->next = h->running;
	h->running = j;
	h->nrunning++;
	c->http.mcp_job = j;
	return 0;
}

int
mcp_http_request(struct conn *c)
{
	struct serve *s = c->s;
	struct mcp_http *h = get_h(s);
	if (c->http.is_post)
		return do_post(c, h);
	if (c->http.is_delete) {
		char sid[48] = "";
		struct mcp_sess *se = session_header(c, sid, sizeof(sid)) ? sess_find(h, sid)
									  : NULL;
		if (!se)
			return http_reply_error(c, 404, "no such MCP session");
		sess_remove(h, se);
		return http_reply(c, 204, "application/json", "", 0, NULL);
	}
	static const char no_stream[] = "{\"ok\":false,\"error\":\"no server stream here: POST "
					"requests, DELETE ends a session\"}";
	return http_reply(c, 405, "application/json", no_stream, strlen(no_stream),
			  "Allow: POST, DELETE\r\n");
}

void
mcp_http_closed(struct conn *c)
{
	struct mcp_job *j = c->http.mcp_job;
	if (!j)
		return;
	atomic_store(&j->cancel, true); /* the client left: stop waiting, drop the answer */
	j->c = NULL;
	c->http.mcp_job = NULL;
}

void
mcp_http_stop(struct serve *s)
{
	struct mcp_http *h = s->mcp;
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	for (struct mcall *c = h->calls; c; c = c->next) {
		c->rc = -ECANCELED;
		c->frame = NULL;
		c->done = true;
	}
	h->calls = NULL;
	h->calls_tail = &h->calls;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	for (struct mcp_job *j = h->running; j; j = j->next)
		atomic_store(&j->cancel, true);
	for (struct mcp_job *j = h->running, *next; j; j = next) {
		next = j->next;
		pthread_join(j->th, NULL);
		if (j->c)
			j->c->http.mcp_job = NULL;
		j->c = NULL;
		job_free(j);
	}
	h->running = NULL;
	h->done = NULL; /* those were in running too */
	while (h->sessions)
		sess_remove(h, h->sessions);
	if (s->mcp_want) {
		s->mcp_want = 0;
		serve_update_want(s);
	}
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
	s->mcp = NULL;
}
