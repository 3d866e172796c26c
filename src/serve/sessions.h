/*
 * The core of okvm serve's logins, on plain C values: the session table, users and their roles,
 * password and TOTP checks, and the login limits per address group (failures, lockouts, checks
 * under way) with the bound on checks waiting. No libwebsockets types and no clock of its own:
 * every time is a parameter, so tests call these alone (tests/unit/test_sessions.c). auth.c
 * reads the requests, ends the connections of a session and answers; it holds the tables in
 * struct serve and calls these.
 *
 * Threads: the tables belong to their owner's thread (the service thread, in okvm serve);
 * auth_password_verify may run on any thread once auth_password_prepare returned 0.
 */
#ifndef OKVM_SERVE_SESSIONS_H
#define OKVM_SERVE_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serve/serve.h"

#define SERVE_MAX_SESSIONS 64
#define SERVE_LOGIN_SLOTS 128
#define SERVE_ADDR_GROUP 48 /* bytes of an address group, NUL included */
/* Failures count within this window of the first one (CLOCK_MONOTONIC microseconds). */
#define SERVE_LOGIN_WINDOW_US (600ull * 1000000)
/* Checks waiting for the okvm-auth thread. At ~15 ms each, a correct password waits at most
 * about a second behind other addresses' guesses, instead of being refused. */
#define SERVE_LOGIN_QUEUE_MAX 64

struct session {
	char token[65];      /* hex of 32 random bytes; "" = free */
	uint64_t expires_us; /* CLOCK_REALTIME */
	uint64_t id;         /* never reused: connections remember it */
	char user[40];
	enum serve_role role;
};

struct login_slot {
	char addr[SERVE_ADDR_GROUP]; /* the address group (serve_addr_group) */
	unsigned failures;
	unsigned pending; /* checks under way (counted against the limit) */
	uint64_t window_start_us, locked_until_us;
	unsigned lockouts;
};

/*
 * The group an address counts in, into out (n bytes): an IPv4 address as it is ("192.0.2.7",
 * also when written as "::ffff:192.0.2.7"), an IPv6 address as its /64 ("2001:db8:1:2::/64":
 * one host is given a whole /64), anything else copied. Any thread.
 */
void serve_addr_group(const char *peer, char *out, size_t n);

/* ---- sessions: tab is an array of SERVE_MAX_SESSIONS, zeroed at the start ---- */

/* The live session (expires_us > now_us) whose token is this one (compared in constant time),
 * or NULL. An expired one is not found: it is still in tab until auth_session_next_expired. */
struct session *auth_session_find(struct session *tab, const char *token, uint64_t now_us);

/* The session of that id (0: none), expired or not, or NULL. */
const struct session *auth_session_by_id(const struct session *tab, uint64_t id);

/* The first session of tab in use whose time has come (expires_us <= now_us), or NULL. The
 * caller ends it (auth_session_clear) and asks again. */
struct session *auth_session_next_expired(struct session *tab, uint64_t now_us);

/* Where a new session goes: a free entry, or when all are in use the one that expires first,
 * which the caller ends (auth_session_clear) before auth_session_start. */
struct session *auth_session_slot(struct session *tab);

/* Start a session in se: a new random token (libsodium), the id ++*next_id, user (truncated to
 * 39 bytes), role, and expires_us. Returns its id. */
uint64_t auth_session_start(struct session *se, uint64_t *next_id, const char *user,
			    enum serve_role role, uint64_t expires_us);

/* End it: the token is wiped and the entry is free. */
void auth_session_clear(struct session *se);

/* ---- users and passwords ---- */

/* Does cfg ask for a login (auth = always, a [serve] password, or any [user.NAME])? */
bool auth_config_required(const struct serve_config *cfg);

/* The user of that name: returns 0 for the [serve] password's "admin", i + 1 for users[i], -1 for
 * none. On 0 or more, *hash, *role and *totp (NULL: no second factor) are set. */
int auth_user_find(const struct serve_config *cfg, const char *name, const char **hash,
		   enum serve_role *role, const char **totp);

/* The name a login is checked and logged under, into out (n bytes): "admin" for NULL or "", the
 * name itself if serve_user_name_valid, else "(invalid-name)" (the log must not take a line break
 * or anything else from the network). */
void auth_login_name(const char *user, char *out, size_t n);

/* Ready auth_password_verify (libsodium, the dummy hash). Returns 0, -EIO or -ENOMEM. Not
 * thread-safe: call it before handing work to another thread. */
int auth_password_prepare(void);

/* Is password the one of hash (an argon2id string)? hash NULL (no such user) is checked against a
 * dummy hash, and false, so the time taken does not tell which names exist. Any thread. */
bool auth_password_verify(const char *hash, const char *password);

/* The second factor after a right password: totp_secret NULL (none) gives 0; else code must be
 * the code of unix_s (one step either side) and newer than *last_step, which it then becomes.
 * Returns 0, -ENOKEY (code NULL or "": one is needed) or -EPERM (wrong, or used already). */
int auth_code_check(const char *totp_secret, const char *code, uint64_t unix_s,
		    uint64_t *last_step);

/* ---- login limits: tab is an array of SERVE_LOGIN_SLOTS, zeroed at the start; now_us is
 * CLOCK_MONOTONIC. max_failures and lockout_s: cfg->login_max_failures, login_lockout_s. ---- */

/* May a login from peer start now? Returns 0, or -EAGAIN when peer's group is locked out or its
 * failures plus its checks under way reach max_failures, or -EBUSY when queued (checks waiting or
 * under way, over every group) is SERVE_LOGIN_QUEUE_MAX. A refusal is logged. Changes nothing. */
int auth_login_admit(const struct login_slot *tab, unsigned queued, int max_failures,
		     const char *peer, uint64_t now_us);

/* Seconds (rounded up) until peer's group may log in again; 0 when it may now. */
int auth_login_wait_s(const struct login_slot *tab, const char *peer, uint64_t now_us);

/* A check of peer's is under way: counted in its group and in *queued. */
void auth_login_queued(struct login_slot *tab, unsigned *queued, const char *peer);

/* That check ended (whatever its result): the counts of auth_login_queued go down again. */
void auth_login_dequeued(struct login_slot *tab, unsigned *queued, const char *peer);

/* A wrong password (or code) from peer for user, logged. The failures of peer's group within
 * SERVE_LOGIN_WINDOW_US reaching max_failures lock the group out for lockout_s, doubled with each
 * lockout before (up to 1024 times). Returns the seconds of the lockout this started, or 0. */
uint64_t auth_login_failed(struct login_slot *tab, const char *peer, const char *user,
			   int max_failures, int lockout_s, uint64_t now_us);

/* A right one: peer's group starts afresh (no failures, no lockouts). */
void auth_login_succeeded(struct login_slot *tab, const char *peer);

#endif
