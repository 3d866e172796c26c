/*
 * DESIGN: the libwebsockets side of logins and sessions (ARCHITECTURE 7, docs/serve.md
 * "Security"): the headers of a request (Host, Cookie, Origin, Authorization) read off its wsi,
 * the session cookie written, the connections of an ended session closed, and the okvm-auth
 * thread that runs the argon2 checks, so a login never holds up the video or anyone's input.
 * A correct login gets its session token in an HttpOnly, SameSite=Strict cookie (Secure under
 * TLS) that expires after session_hours. What a session, a user, a password, a code and a
 * lockout are is sessions.c's, on plain values: this file passes it the tables of struct serve,
 * its config and the time. Every failure is logged with the address.
 *
 * Runs on the service thread, except auth_main (the okvm-auth thread).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "okvm/log.h"
#include "serve/auth-parse.h"
#include "serve/config-file.h"
#include "serve/internal.h"
#include "lib/thread.h"
#include "lib/xalloc.h"

bool
auth_required(const struct serve *s)
{
	return auth_config_required(&s->cfg);
}

const struct session *
auth_session(const struct serve *s, uint64_t id)
{
	return auth_session_by_id(s->sessions, id);
}

void
audit(struct conn *c, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const struct session *se = auth_session(c->s, c->session_id);
	okvm_log(OKVM_LOG_NOTICE, "audit: %s user=%s from=%s", what,
		 se                    ? se->user
		 : auth_required(c->s) ? "?"
				       : "-",
		 c->peer);
}

/* ---- Host: the DNS-rebinding check ---- */

bool
auth_host_ok(struct serve *s, struct lws *wsi)
{
	char host[256];
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return false;
	if (auth_host_allowed(host, (const char *const *)s->cfg.server_names, s->cfg.nserver_names))
		return true;
	const char *own[2] = { s->host_name, s->host_name_local };
	return s->host_name[0] && auth_host_allowed(host, own, 2);
}

/*
 * This machine's own name (and NAME.local, as mDNS announces it) is served too: a browser only
 * sends it when the user typed it, and no attacker's page can make that name its own origin.
 * So `http://raspberrypi.local:8080` works without server_names.
 */
void
auth_learn_host_name(struct serve *s)
{
	char name[64];
	if (gethostname(name, sizeof(name)) || !name[0])
		return;
	name[sizeof(name) - 1] = 0;
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!strcmp(name, "localhost"))
		return;
	snprintf(s->host_name, sizeof(s->host_name), "%s", name);
	snprintf(s->host_name_local, sizeof(s->host_name_local), "%s.local", name);
}

/* ---- sessions ---- */

/* Each okvm_session cookie of the request (auth-parse.c says which count). */
static bool
each_session_cookie(struct lws *wsi, bool (*fn)(const char *tok, void *ud), void *ud)
{
	char hdr[SERVE_MAX_HEADER];
	if (lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_COOKIE) <= 0)
		return false;
	bool stopped = auth_each_session_cookie(hdr, fn, ud);
	sodium_memzero(hdr, sizeof(hdr));
	return stopped;
}

struct lookup {
	struct serve *s;
	struct session *found;
};

static bool
lookup_one(const char *tok, void *ud)
{
	struct lookup *l = ud;
	l->found = auth_session_find(l->s->sessions, tok, serve_wall_us());
	return l->found != NULL;
}

const struct session *
auth_check_request(struct serve *s, struct lws *wsi)
{
	struct lookup l = { s, NULL };
	each_session_cookie(wsi, lookup_one, &l);
	return l.found;
}

/* GET /metrics for a scraper that cannot log in: "Authorization: Bearer <metrics_token>". */
bool
auth_check_metrics_token(struct serve *s, struct lws *wsi)
{
	char got[300];
	if (!s->cfg.metrics_token ||
	    lws_hdr_copy(wsi, got, sizeof(got), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
		return false;
	bool ok = auth_bearer_ok(got, s->cfg.metrics_token);
	sodium_memzero(got, sizeof(got));
	return ok;
}

/* A session ends (logout, expiry): so does every stream and WebSocket it opened. */
static void
end_session(struct serve *s, struct session *se, const char *why)
{
	struct conn *lists[2] = { s->streams, s->sockets };
	unsigned closed = 0;
	for (int i = 0; i < 2; i++) {
		for (struct conn *c = lists[i]; c; c = c->next) {
			if (c->session_id != se->id)
				continue;
			if (c->kind == CONN_WS)
				input_release_client(s, c);
			c->session_id = 0;
			c->role = SERVE_ROLE_NONE;
			if (c->wsi) /* none in unit tests */
				lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE,
						LWS_TO_KILL_ASYNC);
			closed++;
		}
	}
	okvm_log(OKVM_LOG_INFO, "serve: session of %s ended (%s); %u connection%s closed", se->user,
		 why, closed, closed == 1 ? "" : "s");
	auth_session_clear(se);
}

void
auth_expire(struct serve *s)
{
	uint64_t now = serve_wall_us();
	struct session *se;
	while ((se = auth_session_next_expired(s->sessions, now)))
		end_session(s, se, "expired");
}

static bool
logout_one(const char *tok, void *ud)
{
	struct lookup *l = ud;
	struct session *se = auth_session_find(l->s->sessions, tok, serve_wall_us());
	if (se)
		end_session(l->s, se, "logout");
	return false; /* every okvm_session cookie it sent */
}

void
auth_logout(struct serve *s, struct lws *wsi)
{
	struct lookup l = { s, NULL };
	each_session_cookie(wsi, logout_one, &l);
}

/* ---- login rate limits (sessions.c), on the monotonic clock ---- */

int
auth_login_retry_after(struct serve *s, const char *peer)
{
	return auth_login_wait_s(s->logins, peer, serve_now_us());
}

static void
record_failure(struct serve *s, const char *peer, const char *user)
{
	s->login_failures++;
	auth_login_failed(s->logins, peer, user, s->cfg.login_max_failures, s->cfg.login_lockout_s,
			  serve_now_us());
}

static void
new_session(struct serve *s, const char *user, enum serve_role role, char *set_cookie, size_t n,
	    uint64_t *id)
{
	struct session *slot = auth_session_slot(s->sessions);
	if (slot->token[0])
		end_session(s, slot, "too many sessions: the oldest goes");
	uint64_t secs = (uint64_t)s->cfg.session_hours * 3600;
	*id = auth_session_start(slot, &s->next_session_id, user, role,
				 serve_wall_us() + secs * 1000000);
	snprintf(set_cookie, n,
		 "okvm_session=%s; Path=/; Max-Age=%llu; HttpOnly; SameSite=Strict%s", slot->token,
		 (unsigned long long)secs, s->tls ? "; Secure" : "");
}

/* ---- the okvm-auth thread: argon2 takes ~10 ms here and more on a Raspberry Pi, time the
 * service thread must spend sending frames. Jobs go in auth_todo and come back in auth_done;
 * job->c is touched on the service thread only. */

struct login_job {
	struct login_job *next;
	struct conn *c; /* NULL once the connection closed or moved on */
	char peer[48];
	char user[40];
	int user_idx;     /* 0: [serve] password ("admin"), i + 1: users[i], -1: none */
	const char *hash; /* into s->cfg, which outlives every job */
	char pw[1100];
	char code[16]; /* the TOTP code given, if any */
	bool ok;
};

static void
job_free(struct login_job *j)
{
	sodium_memzero(j, sizeof(*j));
	free(j);
}

/* Both lists are first in, first out: replies go out in the order the checks finished. */
static void
job_append(struct login_job **list, struct login_job *j)
{
	j->next = NULL;
	while (*list)
		list = &(*list)->next;
	*list = j;
}

static void *
auth_main(void *arg)
{
	struct serve *s = arg;
	pthread_mutex_lock(&s->auth_lock);
	for (;;) {
		while (!s->auth_todo && !s->auth_stop)
			pthread_cond_wait(&s->auth_cond, &s->auth_lock);
		if (s->auth_stop)
			break;
		struct login_job *j = s->auth_todo;
		s->auth_todo = j->next;
		pthread_mutex_unlock(&s->auth_lock);
		j->ok = auth_password_verify(j->hash, j->pw);
		sodium_memzero(j->pw, sizeof(j->pw));
		pthread_mutex_lock(&s->auth_lock);
		job_append(&s->auth_done, j);
		pthread_mutex_unlock(&s->auth_lock);
		lws_cancel_service(s->ctx);
		pthread_mutex_lock(&s->auth_lock);
	}
	pthread_mutex_unlock(&s->auth_lock);
	return NULL;
}

static int
start_thread(struct serve *s)
{
	if (s->auth_running)
		return 0;
	if (auth_password_prepare())
		return -ENOMEM;
	s->auth_stop = false;
	if (thread_start(&s->auth_thread, "okvm-auth", auth_main, s)) {
		okvm_log(OKVM_LOG_ERROR, "serve: cannot start the login thread");
		return -EAGAIN;
	}
	s->auth_running = true;
	return 0;
}

int
auth_login_start(struct serve *s, struct conn *c, const char *user, const char *password,
		 const char *code)
{
	if (!auth_required(s))
		return -EINVAL;
	int rc = auth_login_admit(s->logins, s->auth_queued, s->cfg.login_max_failures, c->peer,
				  serve_now_us());
	if (rc)
		return rc;
	if (start_thread(s))
		return -EBUSY;
	struct login_job *j = xcalloc(1, sizeof(*j));
	j->c = c;
	snprintf(j->peer, sizeof(j->peer), "%s", c->peer);
	/* A name no user can have is checked (against the dummy hash) and logged as such. */
	auth_login_name(user, j->user, sizeof(j->user));
	enum serve_role role;
	const char *totp;
	j->user_idx = auth_user_find(&s->cfg, j->user, &j->hash, &role, &totp);
	snprintf(j->pw, sizeof(j->pw), "%s", password);
	snprintf(j->code, sizeof(j->code), "%s", code ? code : "");
	auth_login_queued(s->logins, &s->auth_queued, c->peer);
	c->http.login_job = j;
	pthread_mutex_lock(&s->auth_lock);
	job_append(&s->auth_todo, j);
	pthread_cond_signal(&s->auth_cond);
	pthread_mutex_unlock(&s->auth_lock);
	return 0;
}

static void
login_finished(struct serve *s, struct login_job *j)
{
	auth_login_dequeued(s->logins, &s->auth_queued, j->peer);
	char cookie[256] = "";
	int rc = j->ok ? 0 : -EPERM;
	enum serve_role role = SERVE_ROLE_NONE;
	const char *hash, *totp = NULL;
	if (!rc && auth_user_find(&s->cfg, j->user, &hash, &role, &totp) != j->user_idx)
		rc = -EPERM;
	if (!rc) /* the second factor, if the user has one */
		rc = auth_code_check(totp, j->code, serve_wall_us() / 1000000,
				     &s->totp_last_step[j->user_idx]);
	if (rc == -EPERM) {
		record_failure(s, j->peer, j->user); /* also when the client hung up meanwhile */
	} else if (!rc) {
		auth_login_succeeded(s->logins, j->peer);
		uint64_t id = 0;
		if (j->c) {
			new_session(s, j->user, role, cookie, sizeof(cookie), &id);
			j->c->session_id = id;
		}
		okvm_log(OKVM_LOG_NOTICE, "audit: login user=%s role=%s from=%s", j->user,
			 serve_role_name(role), j->peer);
	}
	if (j->c) {
		j->c->http.login_job = NULL;
		http_login_reply(j->c, rc, cookie);
		sodium_memzero(cookie, sizeof(cookie));
	}
}

void
auth_drain(struct serve *s)
{
	if (!s->auth_running)
		return;
	pthread_mutex_lock(&s->auth_lock);
	struct login_job *done = s->auth_done;
	s->auth_done = NULL;
	pthread_mutex_unlock(&s->auth_lock);
	while (done) {
		struct login_job *n = done->next;
		login_finished(s, done);
		job_free(done);
		done = n;
	}
}

void
auth_detach(struct conn *c)
{
	if (c->http.login_job)
		c->http.login_job->c = NULL;
	c->http.login_job = NULL;
}

void
auth_stop(struct serve *s)
{
	if (!s->auth_running)
		return;
	pthread_mutex_lock(&s->auth_lock);
	s->auth_stop = true;
	pthread_cond_signal(&s->auth_cond);
	pthread_mutex_unlock(&s->auth_lock);
	pthread_join(s->auth_thread, NULL);
	s->auth_running = false;
}

void
auth_free(struct serve *s)
{
	struct login_job *lists[2] = { s->auth_todo, s->auth_done };
	for (int i = 0; i < 2; i++) {
		while (lists[i]) {
			struct login_job *n = lists[i]->next;
			job_free(lists[i]);
			lists[i] = n;
		}
	}
	s->auth_todo = s->auth_done = NULL;
}

/* Origin, if any, must name the Host (auth-parse.c). */
bool
auth_origin_ok(struct lws *wsi)
{
	char origin[256], host[256];
	bool has_origin = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) > 0;
	bool has_host = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) > 0;
	return auth_origin_matches(has_origin ? origin : NULL, has_host ? host : NULL);
}
