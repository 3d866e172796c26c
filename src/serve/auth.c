/*
 * DESIGN: logins, sessions and the checks that keep a web KVM from being anyone's
 * (ARCHITECTURE 7, docs/serve.md "Security").
 *
 * The password is only ever stored as an argon2id string (libsodium crypto_pwhash_str, OWASP's
 * m = 12 MiB, t = 3 setting, so a verification stays well under the server's memory budget).
 * A correct login gets a random 256-bit session token in an HttpOnly, SameSite=Strict cookie
 * (Secure under TLS) that expires after session_hours; tokens live in memory only, so a restart
 * logs everybody out. Failed logins are counted per client address: after login_max_failures
 * in ten minutes the address is locked out for login_lockout_s, doubling with each lockout, and
 * not even checked meanwhile (checks under way count as failures until they end); a global cap
 * bounds the argon2 work. Every failure is logged with the address. The argon2 check itself runs
 * on the okvm-auth thread, so a login never holds up the video or anyone's input.
 *
 * Runs on the service thread, except auth_main (serve_password_hash: any thread).
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "okvm/log.h"
#include "serve/internal.h"

#define PWHASH_OPSLIMIT 3
#define PWHASH_MEMLIMIT (12u * 1024 * 1024)
#define LOGIN_WINDOW_US (600ull * 1000000)
#define GLOBAL_WINDOW_US (10ull * 1000000)
#define GLOBAL_MAX_VERIFY 20

int
serve_password_hash(const char *password, char **out)
{
	if (sodium_init() < 0)
		return -EIO;
	char *h = malloc(crypto_pwhash_STRBYTES);
	if (!h)
		abort();
	if (crypto_pwhash_str(h, password, strlen(password), PWHASH_OPSLIMIT, PWHASH_MEMLIMIT)) {
		free(h);
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

bool
auth_required(const struct serve *s)
{
	return s->cfg.password_hash && *s->cfg.password_hash;
}

/*
 * The okvm_session cookies of a request, by exact name: "xokvm_session=" is another cookie, and
 * a planted "okvm_session" (a sibling subdomain can set one) must not hide the real one, so each
 * of them is tried. fn returns true to stop. Returns whether it stopped.
 */
static bool
each_session_cookie(struct lws *wsi, bool (*fn)(const char *tok, void *ud), void *ud)
{
	char hdr[SERVE_MAX_HEADER];
	if (lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_COOKIE) <= 0)
		return false;
	bool stopped = false;
	for (char *p = hdr; *p && !stopped;) {
		p += strspn(p, " \t;");
		size_t len = strcspn(p, ";");
		char *end = p + len;
		char save = *end;
		*end = 0;
		const char *eq = strchr(p, '=');
		static const char name[] = "okvm_session";
		if (eq && (size_t)(eq - p) == sizeof(name) - 1 && !memcmp(p, name, sizeof(name) - 1)) {
			char tok[65];
			size_t n = strlen(eq + 1);
			while (n && (eq[1 + n - 1] == ' ' || eq[1 + n - 1] == '\t'))
				n--;
			if (n == 64) {
				memcpy(tok, eq + 1, 64);
				tok[64] = 0;
				stopped = fn(tok, ud);
				sodium_memzero(tok, sizeof(tok));
			}
		}
		*end = save;
		p = *end ? end + 1 : end;
	}
	sodium_memzero(hdr, sizeof(hdr));
	return stopped;
}

static struct session *
find_session(struct serve *s, const char *tok)
{
	uint64_t now = serve_wall_us();
	for (int i = 0; i < SERVE_MAX_SESSIONS; i++) {
		struct session *se = &s->sessions[i];
		if (!se->token[0])
			continue;
		if (se->expires_us <= now) {
			sodium_memzero(se, sizeof(*se));
			continue;
		}
		if (!sodium_memcmp(se->token, tok, 64))
			return se;
	}
	return NULL;
}

bool
auth_check_request(struct serve *s, struct lws *wsi)
{
	char tok[80];
	return session_cookie(wsi, tok, sizeof(tok)) && find_session(s, tok);
}

/* GET /metrics for a scraper that cannot log in: "Authorization: Bearer <metrics_token>". */
bool
auth_check_metrics_token(struct serve *s, struct lws *wsi)
{
	const char *want = s->cfg.metrics_token;
	char got[300];
	if (!want || lws_hdr_copy(wsi, got, sizeof(got), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
		return false;
	if (strncasecmp(got, "Bearer ", 7))
		return false;
	const char *tok = got + 7;
	size_t n = strlen(want);
	bool ok = strlen(tok) == n && !sodium_memcmp(tok, want, n);
	sodium_memzero(got, sizeof(got));
	return ok;
}

void
auth_logout(struct serve *s, struct lws *wsi)
{
	char tok[80];
	struct session *se;
	if (session_cookie(wsi, tok, sizeof(tok)) && (se = find_session(s, tok)))
		sodium_memzero(se, sizeof(*se));
}

static struct login_slot *
login_slot(struct serve *s, const char *peer, bool create)
{
	struct login_slot *oldest = &s->logins[0];
	for (int i = 0; i < SERVE_LOGIN_SLOTS; i++) {
		struct login_slot *l = &s->logins[i];
		if (!strcmp(l->addr, peer))
			return l;
		if (l->window_start_us < oldest->window_start_us)
			oldest = l;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", peer);
	return oldest;
}

int
auth_login_retry_after(struct serve *s, const char *peer)
{
	uint64_t now = serve_now_us();
	struct login_slot *l = login_slot(s, peer, false);
	if (l && l->locked_until_us > now)
		return (int)((l->locked_until_us - now + 999999) / 1000000);
	if (s->login_global_count >= GLOBAL_MAX_VERIFY &&
	    now - s->login_global_window_us < GLOBAL_WINDOW_US)
		return (int)((s->login_global_window_us + GLOBAL_WINDOW_US - now + 999999) / 1000000);
	return 0;
}

static bool
global_budget(struct serve *s)
{
	uint64_t now = serve_now_us();
	if (now - s->login_global_window_us >= GLOBAL_WINDOW_US) {
		s->login_global_window_us = now;
		s->login_global_count = 0;
	}
	return s->login_global_count++ < GLOBAL_MAX_VERIFY;
}

static void
record_failure(struct serve *s, const char *peer)
{
	uint64_t now = serve_now_us();
	struct login_slot *l = login_slot(s, peer, true);
	if (now - l->window_start_us > LOGIN_WINDOW_US) {
		l->window_start_us = now;
		l->failures = 0;
	}
	l->failures++;
	s->login_failures++;
	okvm_log(OKVM_LOG_WARN, "serve: wrong password from %s (%u in a row)", peer, l->failures);
	if (l->failures < (unsigned)s->cfg.login_max_failures)
		return;
	unsigned shift = l->lockouts < 10 ? l->lockouts : 10;
	uint64_t secs = (uint64_t)s->cfg.login_lockout_s << shift;
	l->locked_until_us = now + secs * 1000000;
	l->lockouts++;
	l->failures = 0;
	okvm_log(OKVM_LOG_WARN, "serve: %s locked out of login for %llu s", peer,
		 (unsigned long long)secs);
}

static void
new_session(struct serve *s, char *set_cookie, size_t n)
{
	struct session *slot = &s->sessions[0];
	for (int i = 0; i < SERVE_MAX_SESSIONS; i++) {
		if (!s->sessions[i].token[0]) {
			slot = &s->sessions[i];
			break;
		}
		if (s->sessions[i].expires_us < slot->expires_us)
			slot = &s->sessions[i];
	}
	unsigned char raw[32];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(slot->token, sizeof(slot->token), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	uint64_t secs = (uint64_t)s->cfg.session_hours * 3600;
	slot->expires_us = serve_wall_us() + secs * 1000000;
	snprintf(set_cookie, n, "okvm_session=%s; Path=/; Max-Age=%llu; HttpOnly; SameSite=Strict%s",
		 slot->token, (unsigned long long)secs, s->tls ? "; Secure" : "");
}

/* ---- the okvm-auth thread: argon2 takes ~10 ms here and more on a Raspberry Pi, time the
 * service thread must spend sending frames. Jobs go in auth_todo and come back in auth_done;
 * job->c is touched on the service thread only. */

struct login_job {
	struct login_job *next;
	struct conn *c;                 /* NULL once the connection closed or moved on */
	char peer[48];
	char pw[512];
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
		j->ok = !crypto_pwhash_str_verify(s->cfg.password_hash, j->pw, strlen(j->pw));
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

int
auth_login_start(struct serve *s, struct conn *c, const char *password)
{
	if (!auth_required(s))
		return -EINVAL;
	struct login_slot *l = login_slot(s, c->peer, false);
	bool busy = l && l->failures + l->pending >= (unsigned)s->cfg.login_max_failures;
	if (busy || auth_login_retry_after(s, c->peer) > 0 || !global_budget(s)) {
		okvm_log(OKVM_LOG_WARN, "serve: login from %s refused (rate limit)", c->peer);
		return -EAGAIN;
	}
	if (!s->auth_running) {
		s->auth_stop = false;
		if (pthread_create(&s->auth_thread, NULL, auth_main, s)) {
			okvm_log(OKVM_LOG_ERROR, "serve: cannot start the login thread");
			return -EAGAIN;
		}
		pthread_setname_np(s->auth_thread, "okvm-auth");
		s->auth_running = true;
	}
	struct login_job *j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->c = c;
	snprintf(j->peer, sizeof(j->peer), "%s", c->peer);
	snprintf(j->pw, sizeof(j->pw), "%s", password);
	login_slot(s, c->peer, true)->pending++;
	c->login_job = j;
	pthread_mutex_lock(&s->auth_lock);
	job_append(&s->auth_todo, j);
	pthread_cond_signal(&s->auth_cond);
	pthread_mutex_unlock(&s->auth_lock);
	return 0;
}

static void
login_finished(struct serve *s, struct login_job *j)
{
	struct login_slot *l = login_slot(s, j->peer, false);
	if (l && l->pending)
		l->pending--;
	char cookie[256] = "";
	int rc = 0;
	if (!j->ok) {
		record_failure(s, j->peer); /* also when the client hung up meanwhile */
		rc = -EPERM;
	} else {
		if (l)
			memset(l, 0, sizeof(*l));
		if (j->c)
			new_session(s, cookie, sizeof(cookie));
		okvm_log(OKVM_LOG_INFO, "serve: login from %s", j->peer);
	}
	if (j->c) {
		j->c->login_job = NULL;
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
	if (c->login_job)
		c->login_job->c = NULL;
	c->login_job = NULL;
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

/* The part of an Origin after "scheme://", compared with Host (both may carry a port). */
bool
auth_origin_ok(struct lws *wsi)
{
	char origin[256], host[256];
	if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
		return true; /* not a browser: curl, scripts */
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return false;
	const char *o = strstr(origin, "://");
	if (!o)
		return false;
	return !strcasecmp(o + 3, host);
}
