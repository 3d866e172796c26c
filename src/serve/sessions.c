/*
 * DESIGN: the core of logins and sessions (sessions.h; ARCHITECTURE 7, docs/serve.md
 * "Security"), apart from libwebsockets so that it can be tested alone.
 *
 * The password is only ever stored as an argon2id string (libsodium crypto_pwhash_str, OWASP's
 * m = 12 MiB, t = 3 setting, so a verification stays well under the server's memory budget). A
 * session is a random 256-bit token with its user, role and expiry; tokens live in memory only,
 * so a restart logs everybody out. Failed logins are counted per address group (an IPv4 address,
 * an IPv6 /64): after max_failures in ten minutes the group is locked out for lockout_s,
 * doubling with each lockout, and not even checked meanwhile (checks under way count as failures
 * until they end); a global cap bounds the argon2 work waiting.
 *
 * What it does not do: read a request, set a cookie, end a connection, start a thread or read a
 * clock. auth.c does those and passes the time in. The tables are the caller's (struct serve).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okvm/log.h"
#include "serve/config-file.h"
#include "serve/sessions.h"
#include "serve/totp.h"
#include "lib/xalloc.h"

#define PWHASH_OPSLIMIT 3
#define PWHASH_MEMLIMIT (12u * 1024 * 1024)

void
serve_addr_group(const char *peer, char *out, size_t n)
{
	struct in6_addr a6;
	if (inet_pton(AF_INET6, peer, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			inet_ntop(AF_INET, &a6.s6_addr[12], out, (socklen_t)n);
			return;
		}
		memset(&a6.s6_addr[8], 0, 8);
		char txt[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &a6, txt, sizeof(txt));
		snprintf(out, n, "%s/64", txt);
		return;
	}
	snprintf(out, n, "%s", peer);
}

/* ---- sessions ---- */

struct session *
auth_session_find(struct session *tab, const char *token, uint64_t now_us)
{
	for (int i = 0; i < SERVE_MAX_SESSIONS; i++) {
		struct session *se = &tab[i];
		if (!se->token[0] || se->expires_us <= now_us)
			continue; /* an expired one is ended by the sweep, with its connections */
		if (!sodium_memcmp(se->token, token, 64))
			return se;
	}
	return NULL;
}

const struct session *
auth_session_by_id(const struct session *tab, uint64_t id)
{
	for (int i = 0; id && i < SERVE_MAX_SESSIONS; i++)
		if (tab[i].token[0] && tab[i].id == id)
			return &tab[i];
	return NULL;
}

struct session *
auth_session_next_expired(struct session *tab, uint64_t now_us)
{
	for (int i = 0; i < SERVE_MAX_SESSIONS; i++)
		if (tab[i].token[0] && tab[i].expires_us <= now_us)
			return &tab[i];
	return NULL;
}

struct session *
auth_session_slot(struct session *tab)
{
	struct session *slot = &tab[0];
	for (int i = 0; i < SERVE_MAX_SESSIONS; i++) {
		if (!tab[i].token[0])
			return &tab[i];
		if (tab[i].expires_us < slot->expires_us)
			slot = &tab[i];
	}
	return slot;
}

uint64_t
auth_session_start(struct session *se, uint64_t *next_id, const char *user, enum serve_role role,
		   uint64_t expires_us)
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(se->token, sizeof(se->token), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	se->expires_us = expires_us;
	se->id = ++*next_id;
	se->role = role;
	snprintf(se->user, sizeof(se->user), "%s", user);
	return se->id;
}

void
auth_session_clear(struct session *se)
{
	sodium_memzero(se, sizeof(*se));
}

/* ---- users and passwords ---- */

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
auth_config_required(const struct serve_config *cfg)
{
	return cfg->auth_mode == SERVE_AUTH_ALWAYS || (cfg->password_hash && *cfg->password_hash) ||
	       cfg->nusers > 0;
}

int
auth_user_find(const struct serve_config *cfg, const char *name, const char **hash,
	       enum serve_role *role, const char **totp)
{
	if (!strcmp(name, "admin") && cfg->password_hash && *cfg->password_hash) {
		*hash = cfg->password_hash;
		*role = SERVE_ROLE_ADMIN;
		*totp = cfg->totp_secret;
		return 0;
	}
	for (unsigned i = 0; i < cfg->nusers; i++) {
		const struct serve_user *u = &cfg->users[i];
		if (u->name && !strcmp(u->name, name)) {
			*hash = u->password_hash;
			*role = u->role;
			*totp = u->totp_secret;
			return (int)i + 1;
		}
	}
	return -1;
}

void
auth_login_name(const char *user, char *out, size_t n)
{
	if (user && *user && !serve_user_name_valid(user))
		user = "(invalid-name)";
	snprintf(out, n, "%s", user && *user ? user : "admin");
}

/* An unknown user is checked against this, so the time taken does not tell which names exist. */
static char dummy_hash[crypto_pwhash_STRBYTES];

int
auth_password_prepare(void)
{
	if (sodium_init() < 0)
		return -EIO;
	if (!dummy_hash[0] &&
	    crypto_pwhash_str(dummy_hash, "okvm", 4, PWHASH_OPSLIMIT, PWHASH_MEMLIMIT))
		return -ENOMEM;
	return 0;
}

bool
auth_password_verify(const char *hash, const char *password)
{
	const char *h = hash ? hash : dummy_hash;
	return !crypto_pwhash_str_verify(h, password, strlen(password)) && hash;
}

int
auth_code_check(const char *totp_secret, const char *code, uint64_t unix_s, uint64_t *last_step)
{
	if (!totp_secret)
		return 0;
	if (!code || !code[0])
		return -ENOKEY;
	return totp_check(totp_secret, code, unix_s, 1, last_step) ? 0 : -EPERM;
}

/* ---- login limits, per address group ---- */

static const struct login_slot *
slot_find(const struct login_slot *tab, const char *group)
{
	for (int i = 0; i < SERVE_LOGIN_SLOTS; i++)
		if (!strcmp(tab[i].addr, group))
			return &tab[i];
	return NULL;
}

/* peer's slot, or NULL; with create, a new one in place of the one whose window began first. */
static struct login_slot *
slot_get(struct login_slot *tab, const char *peer, bool create)
{
	char group[SERVE_ADDR_GROUP];
	serve_addr_group(peer, group, sizeof(group));
	struct login_slot *l = (struct login_slot *)slot_find(tab, group);
	if (l || !create)
		return l;
	struct login_slot *oldest = &tab[0];
	for (int i = 1; i < SERVE_LOGIN_SLOTS; i++)
		if (tab[i].window_start_us < oldest->window_start_us)
			oldest = &tab[i];
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", group);
	return oldest;
}

static const struct login_slot *
slot_of(const struct login_slot *tab, const char *peer)
{
	char group[SERVE_ADDR_GROUP];
	serve_addr_group(peer, group, sizeof(group));
	return slot_find(tab, group);
}

int
auth_login_wait_s(const struct login_slot *tab, const char *peer, uint64_t now_us)
{
	const struct login_slot *l = slot_of(tab, peer);
	if (l && l->locked_until_us > now_us)
		return (int)((l->locked_until_us - now_us + 999999) / 1000000);
	return 0;
}

int
auth_login_admit(const struct login_slot *tab, unsigned queued, int max_failures, const char *peer,
		 uint64_t now_us)
{
	const struct login_slot *l = slot_of(tab, peer);
	bool busy = l && l->failures + l->pending >= (unsigned)max_failures;
	if (busy || auth_login_wait_s(tab, peer, now_us) > 0) {
		okvm_log(OKVM_LOG_WARN, "serve: login from %s refused (rate limit)", peer);
		return -EAGAIN;
	}
	if (queued >= SERVE_LOGIN_QUEUE_MAX) {
		okvm_log(OKVM_LOG_WARN, "serve: login from %s refused (%u checks waiting)", peer,
			 queued);
		return -EBUSY;
	}
	return 0;
}

void
auth_login_queued(struct login_slot *tab, unsigned *queued, const char *peer)
{
	slot_get(tab, peer, true)->pending++;
	(*queued)++;
}

void
auth_login_dequeued(struct login_slot *tab, unsigned *queued, const char *peer)
{
	struct login_slot *l = slot_get(tab, peer, false);
	if (l && l->pending)
		l->pending--;
	if (*queued)
		(*queued)--;
}

uint64_t
auth_login_failed(struct login_slot *tab, const char *peer, const char *user, int max_failures,
		  int lockout_s, uint64_t now_us)
{
	struct login_slot *l = slot_get(tab, peer, true);
	if (now_us - l->window_start_us > SERVE_LOGIN_WINDOW_US) {
		l->window_start_us = now_us;
		l->failures = 0;
	}
	l->failures++;
	okvm_log(OKVM_LOG_WARN, "audit: wrong password from %s user=%s (%u in a row)", peer, user,
		 l->failures);
	if (l->failures < (unsigned)max_failures)
		return 0;
	unsigned shift = l->lockouts < 10 ? l->lockouts : 10;
	uint64_t secs = (uint64_t)lockout_s << shift;
	l->locked_until_us = now_us + secs * 1000000;
	l->lockouts++;
	l->failures = 0;
	okvm_log(OKVM_LOG_WARN, "serve: %s locked out of login for %llu s", l->addr,
		 (unsigned long long)secs);
	return secs;
}

void
auth_login_succeeded(struct login_slot *tab, const char *peer)
{
	struct login_slot *l = slot_get(tab, peer, false);
	if (l)
		memset(l, 0, sizeof(*l));
}
