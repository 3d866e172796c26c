/*
 * The login core of okvm serve alone (serve/sessions.h): sessions that expire and end, users and
 * their roles, passwords and codes, lockouts per address group, and the bound on checks
 * waiting. No server, no sockets, no clock: every time is given.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "okvm/log.h"
#include "serve/sessions.h"

#define S_US 1000000ull
/* A monotonic time well past the first failure window, as on a machine up for an hour. */
#define T0 (3600 * S_US)

/* The last line logged: what the admin reads about a refusal or a lockout. */
static char last_log[256];

static void
keep_last(enum okvm_log_level level, const char *fmt, va_list ap, void *ud)
{
	(void)level;
	(void)ud;
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
}

/* ---- sessions ---- */

static struct session *
start(struct session *tab, uint64_t *next_id, const char *user, uint64_t expires_us)
{
	struct session *se = auth_session_slot(tab);
	assert_int_equal(se->token[0], 0); /* a free entry while there is one */
	auth_session_start(se, next_id, user, SERVE_ROLE_OPERATOR, expires_us);
	return se;
}

/* A session is found by its token until its expiry time, not at it; the sweep then sees it. */
static void
test_session_expires_at_its_time(void **state)
{
	(void)state;
	struct session tab[SERVE_MAX_SESSIONS] = { 0 };
	uint64_t next_id = 0, t = 1700000000 * S_US;
	struct session *se = start(tab, &next_id, "olga", t + 3600 * S_US);
	assert_int_equal(strlen(se->token), 64);
	assert_int_equal(strspn(se->token, "0123456789abcdef"), 64);
	assert_string_equal(se->user, "olga");
	assert_int_equal(se->id, 1);
	char tok[65];
	memcpy(tok, se->token, sizeof(tok));

	assert_ptr_equal(auth_session_find(tab, tok, t), se);
	assert_ptr_equal(auth_session_find(tab, tok, t + 3600 * S_US - 1), se);
	assert_null(auth_session_next_expired(tab, t + 3600 * S_US - 1));
	assert_null(auth_session_find(tab, tok, t + 3600 * S_US)); /* expired: not let in */
	assert_ptr_equal(auth_session_next_expired(tab, t + 3600 * S_US), se);
	/* Until the sweep ends it, its connections still find who it was. */
	assert_ptr_equal(auth_session_by_id(tab, 1), se);
	auth_session_clear(se);
	assert_null(auth_session_next_expired(tab, t + 3600 * S_US));
	assert_null(auth_session_by_id(tab, 1));

	/* A token that differs in one character is another token. */
	struct session *b = start(tab, &next_id, "vic", t + 3600 * S_US);
	memcpy(tok, b->token, sizeof(tok));
	tok[63] = tok[63] == '0' ? '1' : '0';
	assert_null(auth_session_find(tab, tok, t));
	assert_int_equal(b->id, 2); /* ids are never reused */
}

/* Logout (clearing the entry) deletes the session: neither its token nor its id finds it, the
 * entry is free for the next one, and the other sessions stay. */
static void
test_logout_deletes_session(void **state)
{
	(void)state;
	struct session tab[SERVE_MAX_SESSIONS] = { 0 };
	uint64_t next_id = 0, t = 1700000000 * S_US;
	struct session *a = start(tab, &next_id, "olga", t + 3600 * S_US);
	struct session *b = start(tab, &next_id, "vic", t + 3600 * S_US);
	assert_ptr_not_equal(a, b);
	assert_string_not_equal(a->token, b->token);
	char tok_a[65], tok_b[65];
	memcpy(tok_a, a->token, sizeof(tok_a));
	memcpy(tok_b, b->token, sizeof(tok_b));
	uint64_t id_a = a->id;

	auth_session_clear(auth_session_find(tab, tok_a, t));
	assert_null(auth_session_find(tab, tok_a, t));
	assert_null(auth_session_by_id(tab, id_a));
	assert_ptr_equal(auth_session_find(tab, tok_b, t), b);
	assert_ptr_equal(auth_session_slot(tab), a); /* its entry is the free one */
	for (size_t i = 0; i < sizeof(*a); i++)
		assert_int_equal(((const unsigned char *)a)[i], 0); /* the token is wiped */
}

/* With every entry in use, a new session takes the place of the one that expires first. */
static void
test_session_table_full(void **state)
{
	(void)state;
	struct session tab[SERVE_MAX_SESSIONS] = { 0 };
	uint64_t next_id = 0, t = 1700000000 * S_US;
	for (int i = 0; i < SERVE_MAX_SESSIONS; i++)
		start(tab, &next_id, "olga",
		      t + (uint64_t)(100 + (i * 37 + 11) % SERVE_MAX_SESSIONS));
	struct session *first = auth_session_slot(tab);
	assert_int_not_equal(first->token[0], 0); /* in use: the caller ends it first */
	assert_int_equal(first->expires_us, t + 100);
}

/* ---- users and roles ---- */

static void
test_roles(void **state)
{
	(void)state;
	struct serve_config cfg = { 0 };
	assert_false(auth_config_required(&cfg));
	const char *hash = "?", *totp = "?";
	enum serve_role role = SERVE_ROLE_NONE;
	assert_int_equal(auth_user_find(&cfg, "admin", &hash, &role, &totp), -1);

	cfg.users[0] = (struct serve_user){ .name = "olga",
					    .password_hash = "h-olga",
					    .role = SERVE_ROLE_OPERATOR };
	cfg.users[1] = (struct serve_user){ .name = "vic",
					    .password_hash = "h-vic",
					    .role = SERVE_ROLE_VIEWER,
					    .totp_secret = "SECRET" };
	cfg.nusers = 2;
	assert_true(auth_config_required(&cfg));
	assert_int_equal(auth_user_find(&cfg, "olga", &hash, &role, &totp), 1);
	assert_string_equal(hash, "h-olga");
	assert_int_equal(role, SERVE_ROLE_OPERATOR);
	assert_null(totp);
	assert_int_equal(auth_user_find(&cfg, "vic", &hash, &role, &totp), 2);
	assert_int_equal(role, SERVE_ROLE_VIEWER);
	assert_string_equal(totp, "SECRET");
	assert_int_equal(auth_user_find(&cfg, "Olga", &hash, &role, &totp), -1); /* exact name */
	assert_int_equal(auth_user_find(&cfg, "admin", &hash, &role, &totp), -1);

	/* The [serve] password is the user "admin", role admin. */
	cfg.password_hash = "h-admin";
	assert_int_equal(auth_user_find(&cfg, "admin", &hash, &role, &totp), 0);
	assert_string_equal(hash, "h-admin");
	assert_int_equal(role, SERVE_ROLE_ADMIN);

	struct serve_config always = { .auth_mode = SERVE_AUTH_ALWAYS };
	assert_true(auth_config_required(&always));
	struct serve_config empty_pw = { .password_hash = "" };
	assert_false(auth_config_required(&empty_pw));

	char name[40];
	auth_login_name(NULL, name, sizeof(name));
	assert_string_equal(name, "admin");
	auth_login_name("", name, sizeof(name));
	assert_string_equal(name, "admin");
	auth_login_name("olga", name, sizeof(name));
	assert_string_equal(name, "olga");
	auth_login_name("olga\nfake log line", name, sizeof(name));
	assert_string_equal(name, "(invalid-name)");
}

/* ---- passwords and codes ---- */

static void
test_password_verify(void **state)
{
	(void)state;
	assert_int_equal(auth_password_prepare(), 0);
	char *hash = NULL;
	assert_int_equal(serve_password_hash("correct horse", &hash), 0);
	assert_non_null(strstr(hash, "$argon2id$"));
	assert_true(auth_password_verify(hash, "correct horse"));
	assert_false(auth_password_verify(hash, "correct hors"));
	assert_false(auth_password_verify(hash, ""));
	assert_false(auth_password_verify(NULL, "correct horse")); /* no such user */
	assert_false(auth_password_verify(NULL, "okvm"));          /* not even the dummy's */
	free(hash);
}

/* RFC 6238 appendix B: the key "12345678901234567890" at T = 59 s gives 94287082; its last six
 * digits are the code. */
static void
test_code_check(void **state)
{
	(void)state;
	const char *secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
	uint64_t last = 0;
	assert_int_equal(auth_code_check(NULL, NULL, 59, &last), 0); /* no second factor */
	assert_int_equal(auth_code_check(secret, NULL, 59, &last), -ENOKEY);
	assert_int_equal(auth_code_check(secret, "", 59, &last), -ENOKEY);
	assert_int_equal(auth_code_check(secret, "287083", 59, &last), -EPERM);
	assert_int_equal(last, 0);
	assert_int_equal(auth_code_check(secret, "287082", 59, &last), 0);
	assert_int_equal(last, 1);
	assert_int_equal(auth_code_check(secret, "287082", 59, &last), -EPERM); /* no replay */
	assert_int_equal(auth_code_check(secret, "287082", 59 + 10 * 30, &last), -EPERM); /* old */
}

/* ---- login limits ---- */

#define MAX_FAILURES 3
#define LOCKOUT_S 60

static void
wrong(struct login_slot *tab, const char *peer, uint64_t now_us, uint64_t want_lockout_s)
{
	assert_int_equal(auth_login_failed(tab, peer, "olga", MAX_FAILURES, LOCKOUT_S, now_us),
			 want_lockout_s);
}

static int
admit(const struct login_slot *tab, const char *peer, uint64_t now_us)
{
	return auth_login_admit(tab, 0, MAX_FAILURES, peer, now_us);
}

/* MAX_FAILURES wrong passwords lock the address out; meanwhile even the right one is not
 * checked: it waits until the lockout ends, and each lockout is twice as long as the last. */
static void
test_wrong_password_locks_out(void **state)
{
	(void)state;
	struct login_slot tab[SERVE_LOGIN_SLOTS] = { 0 };
	const char *peer = "192.0.2.7";
	wrong(tab, peer, T0, 0);
	wrong(tab, peer, T0 + S_US, 0);
	assert_int_equal(admit(tab, peer, T0 + 2 * S_US), 0);
	assert_int_equal(auth_login_wait_s(tab, peer, T0 + 2 * S_US), 0);
	wrong(tab, peer, T0 + 2 * S_US, LOCKOUT_S);
	assert_string_equal(last_log, "serve: 192.0.2.7 locked out of login for 60 s");

	uint64_t locked = T0 + 2 * S_US;
	assert_int_equal(admit(tab, peer, locked), -EAGAIN);
	assert_string_equal(last_log, "serve: login from 192.0.2.7 refused (rate limit)");
	assert_int_equal(auth_login_wait_s(tab, peer, locked), LOCKOUT_S);
	assert_int_equal(auth_login_wait_s(tab, peer, locked + LOCKOUT_S * S_US - S_US / 2), 1);
	assert_int_equal(admit(tab, peer, locked + LOCKOUT_S * S_US - 1), -EAGAIN);
	assert_int_equal(admit(tab, "192.0.2.8", locked), 0); /* another address */

	uint64_t after = locked + LOCKOUT_S * S_US;
	assert_int_equal(admit(tab, peer, after), 0);
	assert_int_equal(auth_login_wait_s(tab, peer, after), 0);
	/* The second lockout lasts twice as long. */
	wrong(tab, peer, after, 0);
	wrong(tab, peer, after, 0);
	wrong(tab, peer, after, 2 * LOCKOUT_S);
	assert_int_equal(auth_login_wait_s(tab, peer, after), 2 * LOCKOUT_S);
	assert_int_equal(admit(tab, peer, after + LOCKOUT_S * S_US), -EAGAIN);

	/* A right password once it is over starts the address afresh: the next lockout is short. */
	uint64_t later = after + 2 * LOCKOUT_S * S_US;
	assert_int_equal(admit(tab, peer, later), 0);
	auth_login_succeeded(tab, peer);
	wrong(tab, peer, later, 0);
	wrong(tab, peer, later, 0);
	wrong(tab, peer, later, LOCKOUT_S);
}

/* Failures more than ten minutes apart do not add up. */
static void
test_failures_window(void **state)
{
	(void)state;
	struct login_slot tab[SERVE_LOGIN_SLOTS] = { 0 };
	const char *peer = "192.0.2.7";
	wrong(tab, peer, T0, 0);
	wrong(tab, peer, T0 + S_US, 0);
	wrong(tab, peer, T0 + SERVE_LOGIN_WINDOW_US + S_US, 0); /* a new window: 1 */
	wrong(tab, peer, T0 + SERVE_LOGIN_WINDOW_US + 2 * S_US, 0);
	wrong(tab, peer, T0 + SERVE_LOGIN_WINDOW_US + 3 * S_US, LOCKOUT_S);
}

/* One IPv6 /64 is one group: failures from any of its addresses add up and lock out all of it;
 * the next /64 is another group. An IPv4 client of a dual-stack socket is its IPv4 address. */
static void
test_ipv6_groups(void **state)
{
	(void)state;
	struct login_slot tab[SERVE_LOGIN_SLOTS] = { 0 };
	wrong(tab, "2001:db8:1:2::1", T0, 0);
	wrong(tab, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", T0, 0);
	wrong(tab, "2001:DB8:1:2::ffff", T0, LOCKOUT_S);
	assert_string_equal(last_log, "serve: 2001:db8:1:2::/64 locked out of login for 60 s");
	assert_int_equal(admit(tab, "2001:db8:1:2::99", T0), -EAGAIN);
	assert_int_equal(auth_login_wait_s(tab, "2001:db8:1:2:1:2:3:4", T0), LOCKOUT_S);
	assert_int_equal(admit(tab, "2001:db8:1:3::1", T0), 0);
	assert_int_equal(admit(tab, "2001:db8:1:1:ffff:ffff:ffff:ffff", T0), 0);

	char g[SERVE_ADDR_GROUP];
	serve_addr_group("2001:db8:1:2:aaaa:bbbb:cccc:dddd", g, sizeof(g));
	assert_string_equal(g, "2001:db8:1:2::/64");

	wrong(tab, "::ffff:198.51.100.4", T0, 0);
	wrong(tab, "198.51.100.4", T0, 0);
	wrong(tab, "::ffff:198.51.100.4", T0, LOCKOUT_S);
	assert_int_equal(admit(tab, "198.51.100.4", T0), -EAGAIN);
	assert_int_equal(admit(tab, "198.51.100.5", T0), 0);
}

/* Checks under way count against the address's limit until they end. */
static void
test_checks_under_way_count(void **state)
{
	(void)state;
	struct login_slot tab[SERVE_LOGIN_SLOTS] = { 0 };
	unsigned queued = 0;
	const char *peer = "192.0.2.7";
	auth_login_queued(tab, &queued, peer);
	wrong(tab, peer, T0, 0);
	assert_int_equal(auth_login_admit(tab, queued, MAX_FAILURES, peer, T0), 0);
	auth_login_queued(tab, &queued, peer);
	assert_int_equal(queued, 2);
	/* 1 failure + 2 under way = 3 */
	assert_int_equal(auth_login_admit(tab, queued, MAX_FAILURES, peer, T0), -EAGAIN);
	assert_int_equal(auth_login_wait_s(tab, peer, T0), 0); /* refused, yet not locked out */
	auth_login_dequeued(tab, &queued, peer);
	assert_int_equal(queued, 1);
	assert_int_equal(auth_login_admit(tab, queued, MAX_FAILURES, peer, T0), 0);
	auth_login_dequeued(tab, &queued, peer);
	auth_login_dequeued(tab, &queued, peer); /* never below zero */
	assert_int_equal(queued, 0);
	auth_login_queued(tab, &queued, peer);
	auth_login_queued(tab, &queued, peer);
	assert_int_equal(auth_login_admit(tab, queued, MAX_FAILURES, peer, T0), -EAGAIN);
}

/* At most SERVE_LOGIN_QUEUE_MAX checks wait, over every address: one more is refused with
 * -EBUSY (503), not -EAGAIN, and gets in once one has ended. */
static void
test_login_queue_bound(void **state)
{
	(void)state;
	struct login_slot tab[SERVE_LOGIN_SLOTS] = { 0 };
	unsigned queued = 0;
	char peer[32];
	for (int i = 0; i < SERVE_LOGIN_QUEUE_MAX; i++) {
		snprintf(peer, sizeof(peer), "10.0.%d.%d", i / 200, i % 200 + 1);
		assert_int_equal(auth_login_admit(tab, queued, MAX_FAILURES, peer, T0), 0);
		auth_login_queued(tab, &queued, peer);
	}
	assert_int_equal(queued, SERVE_LOGIN_QUEUE_MAX);
	assert_int_equal(auth_login_admit(tab, queued, MAX_FAILURES, "192.0.2.1", T0), -EBUSY);
	assert_string_equal(last_log, "serve: login from 192.0.2.1 refused (64 checks waiting)");
	auth_login_dequeued(tab, &queued, "10.0.0.1");
	assert_int_equal(auth_login_admit(tab, queued, MAX_FAILURES, "192.0.2.1", T0), 0);
}

/* With every slot taken, a new address takes the slot whose window began first. */
static void
test_slots_full(void **state)
{
	(void)state;
	struct login_slot tab[SERVE_LOGIN_SLOTS] = { 0 };
	char peer[32];
	for (int i = 0; i < SERVE_LOGIN_SLOTS; i++) {
		snprintf(peer, sizeof(peer), "10.0.0.%d", i + 1);
		uint64_t t = T0 + (uint64_t)((i + 5) % SERVE_LOGIN_SLOTS) * S_US;
		wrong(tab, peer, t, 0);
		wrong(tab, peer, t, 0);
	}
	/* 10.0.0.124 (i = 123) began first, at T0: it is forgotten, the others are kept. */
	wrong(tab, "192.0.2.1", T0 + 200 * S_US, 0);
	wrong(tab, "10.0.0.124", T0 + 200 * S_US, 0);
	wrong(tab, "10.0.0.1", T0 + 200 * S_US, LOCKOUT_S);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_expires_at_its_time),
		cmocka_unit_test(test_logout_deletes_session),
		cmocka_unit_test(test_session_table_full),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_password_verify),
		cmocka_unit_test(test_code_check),
		cmocka_unit_test(test_wrong_password_locks_out),
		cmocka_unit_test(test_failures_window),
		cmocka_unit_test(test_ipv6_groups),
		cmocka_unit_test(test_checks_under_way_count),
		cmocka_unit_test(test_login_queue_bound),
		cmocka_unit_test(test_slots_full),
	};
	okvm_log_set_handler(keep_last, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
