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
#include "serve/totp.h"
#include "lib/thread.h"
#include "lib/xalloc.h"

#define PWHASH_OPSLIMIT 3
#define PWHASH_MEMLIMIT (12u * 1024 * 1024)
#define LOGIN_WINDOW_US (600ull * 1000000)
/* Checks waiting for the okvm-auth thread. At ~15 ms each, a correct password waits at most
 * about a second behind other addresses' guesses, instead of being refused. */
#define AUTH_QUEUE_MAX 64

int
serve_password_hash(const char *password, char **out)
{
	if (sodium_init() < 0)
		return -EIO;
	char *h = xmalloc(crypto_pwhash_STRBYTES);
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
	return s->cfg.auth_mode == SERVE_AUTH_ALWAYS ||
	       (s->cfg.password_hash && *s->cfg.password_hash) || s->cfg.nusers > 0;
}

const struct session *
auth_session(const struct serve *s, uint64_t id)
{
	for (int i = 0; id && i < SERVE_MAX_SESSIONS; i++)
		if (s->sessions[i].token[0] && s->sessions[i].id == id)
			return &s->sessions[i];
	return NULL;
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

static struct session *
find_session(struct serve *s, const char *tok)
{
	uint64_t now = serve_wall_us();
	for (int i = 0; i < SERVE_MAX_SESSIONS; i++) {
		struct session *se = &s->sessions[i];
		if (!se->token[0] || se->expires_us <= now)
			continue; /* an expired one is ended by the sweep, with its connections */
		if (!sodium_memcmp(se->token, tok, 64))
			return se;
	}
	return NULL;
}

struct lookup {
	struct serve *s;
	struct session *found;
};

static bool
lookup_one(const char *tok, void *ud)
{
	struct lookup *l = ud;
	l->found = find_session(l->s, tok);
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
	sodium_memzero(se, sizeof(*se));
}

void
auth_expire(struct serve *s)
{
	uint64_t now = serve_wall_us();
	for (int i = 0; i < SERVE_MAX_SESSIONS; i++)
		if (s->sessions[i].token[0] && s->sessions[i].expires_us <= now)
			end_session(s, &s->sessions[i], "expired");
}

static bool
logout_one(const char *tok, void *ud)
{
	struct lookup *l = ud;
	struct session *se = find_session(l->s, tok);
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

/* ---- login rate limits, per address group ---- */

static struct login_slot *
login_slot(struct serve *s, const char *peer, bool create)
{
	char group[48];
	serve_addr_group(peer, group, sizeof(group));
	struct login_slot *oldest = &s->logins[0];
	for (int i = 0; i < SERVE_LOGIN_SLOTS; i++) {
		struct login_slot *l = &s->logins[i];
		if (!strcmp(l->addr, group))
			return l;
		if (l->window_start_us < oldest->window_start_us)
			oldest = l;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", group);
	return oldest;
}

int
auth_login_retry_after(struct serve *s, const char *peer)
{
	uint64_t now = serve_now_us();
	struct login_slot *l = login_slot(s, peer, false);
	if (l && l->locked_until_us > now)
		return (int)((l->locked_until_us - now + 999999) / 1000000);
	return 0;
}

static void
record_failure(struct serve *s, const char *peer, const char *user)
{
	uint64_t now = serve_now_us();
	struct login_slot *l = login_slot(s, peer, true);
	if (now - l->window_start_us > LOGIN_WINDOW_US) {
		l->window_start_us = now;
		l->failures = 0;
	}
	l->failures++;
	s->login_failures++;
	okvm_log(OKVM_LOG_WARN, "audit: wrong password from %s user=%s (%u in a row)", peer, user,
		 l->failures);
	if (l->failures < (unsigned)s->cfg.login_max_failures)
		return;
	unsigned shift = l->lockouts < 10 ? l->lockouts : 10;
	uint64_t secs = (uint64_t)s->cfg.login_lockout_s << shift;
	l->locked_until_us = now + secs * 1000000;
	l->lockouts++;
	l->failures = 0;
	okvm_log(OKVM_LOG_WARN, "serve: %s locked out of login for %llu s", l->addr,
		 (unsigned long long)secs);
}

static void
new_session(struct serve *s, const char *user, enum serve_role role, char *set_cookie, size_t n,
	    uint64_t *id)
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
	if (slot->token[0])
		end_session(s, slot, "too many sessions: the oldest goes");
	unsigned char raw[32];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(slot->token, sizeof(slot->token), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	uint64_t secs = (uint64_t)s->cfg.session_hours * 3600;
	slot->expires_us = serve_wall_us() + secs * 1000000;
	slot->id = ++s->next_session_id;
	slot->role = role;
	snprintf(slot->user, sizeof(slot->user), "%s", user);
	*id = slot->id;
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

/* An unknown user is checked against this, so the time taken does not tell which names exist. */
static char dummy_hash[crypto_pwhash_STRBYTES];

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
		const char *hash = j->hash ? j->hash : dummy_hash;
		j->ok = !crypto_pwhash_str_verify(hash, j->pw, strlen(j->pw)) && j->hash;
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

/* The user of that name: 0 = the [serve] password's "admin", i + 1 = users[i]; -1: none. */
static int
find_user(const struct serve *s, const char *name, const char **hash, enum serve_role *role,
	  const char **totp)
{
	if (!strcmp(name, "admin") && s->cfg.password_hash && *s->cfg.password_hash) {
		*hash = s->cfg.password_hash;
		*role = SERVE_ROLE_ADMIN;
		*totp = s->cfg.totp_secret;
		return 0;
	}
	for (unsigned i = 0; i < s->cfg.nusers; i++) {
		const struct serve_user *u = &s->cfg.users[i];
		if (u->name && !strcmp(u->name, name)) {
			*hash = u->password_hash;
			*role = u->role;
			*totp = u->totp_secret;
			return (int)i + 1;
		}
	}
	return -1;
}

static int
start_thread(struct serve *s)
{
	if (s->auth_running)
		return 0;
	if (!dummy_hash[0] &&
	    crypto_pwhash_str(dummy_hash, "okvm", 4, PWHASH_OPSLIMIT, PWHASH_MEMLIMIT))
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
	struct login_slot *l = login_slot(s, c->peer, false);
	bool busy = l && l->failures + l->pending >= (unsigned)s->cfg.login_max_failures;
	if (busy || auth_login_retry_after(s, c->peer) > 0) {
		okvm_log(OKVM_LOG_WARN, "serve: login from %s refused (rate limit)", c->peer);
		return -EAGAIN;
	}
	if (s->auth_queued >= AUTH_QUEUE_MAX) {
		okvm_log(OKVM_LOG_WARN, "serve: login from %s refused (%u checks waiting)", c->peer,
			 s->auth_queued);
		return -EBUSY;
	}
	if (start_thread(s))
		return -EBUSY;
	struct login_job *j = xcalloc(1, sizeof(*j));
	j->c = c;
	snprintf(j->peer, sizeof(j->peer), "%s", c->peer);
	/* A name no user can have is checked (against the dummy hash) and logged as such: it goes
	 * into the log, which must not take a line break or anything else from the network. */
	if (user && *user && !serve_user_name_valid(user))
		user = "(invalid-name)";
	snprintf(j->user, sizeof(j->user), "%s", user && *user ? user : "admin");
	enum serve_role role;
	const char *totp;
	j->user_idx = find_user(s, j->user, &j->hash, &role, &totp);
	snprintf(j->pw, sizeof(j->pw), "%s", password);
	snprintf(j->code, sizeof(j->code), "%s", code ? code : "");
	login_slot(s, c->peer, true)->pending++;
	s->auth_queued++;
	c->http.login_job = j;
	pthread_mutex_lock(&s->auth_lock);
	job_append(&s->auth_todo, j);
	pthread_cond_signal(&s->auth_cond);
	pthread_mutex_unlock(&s->auth_lock);
	return 0;
}

/* After the password: the second factor, if the user has one. 0, -ENOKEY (none given), -EPERM. */
static int
check_code(struct serve *s, struct login_job *j, const char *totp)
{
	if (!totp)
		return 0;
	if (!j->code[0])
		return -ENOKEY;
	uint64_t now = serve_wall_us() / 1000000;
	return totp_check(totp, j->code, now, 1, &s->totp_last_step[j->user_idx]) ? 0 : -EPERM;
}

static void
login_finished(struct serve *s, struct login_job *j)
{
	struct login_slot *l = login_slot(s, j->peer, false);
	if (l && l->pending)
		l->pending--;
	if (s->auth_queued)
		s->auth_queued--;
	char cookie[256] = "";
	int rc = j->ok ? 0 : -EPERM;
	enum serve_role role = SERVE_ROLE_NONE;
	const char *hash, *totp = NULL;
	if (!rc && find_user(s, j->user, &hash, &role, &totp) != j->user_idx)
		rc = -EPERM;
	if (!rc)
		rc = check_code(s, j, totp);
	if (rc == -EPERM) {
		record_failure(s, j->peer, j->user); /* also when the client hung up meanwhile */
	} else if (!rc) {
		if (l)
			memset(l, 0, sizeof(*l));
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
