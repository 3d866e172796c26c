/*
 * Unit tests of okvm serve's pure parts: the WebSocket message handling and input merging
 * against a recording backend (no sockets), the config file reader and writer, and the
 * loopback check that decides whether a password is required.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "serve/internal.h"

/* ---- a recording backend ---- */

static char calls[64][96];
static int ncalls;

static void
rec(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (ncalls < 64)
		vsnprintf(calls[ncalls++], sizeof(calls[0]), fmt, ap);
	va_end(ap);
}

static int
f_key(void *ud, const char *code, bool down)
{
	if (strncmp(code, "Key", 3) && strncmp(code, "Shift", 5))
		return -ENOENT;
	rec("key %s %d", code, down);
	return 0;
}

/* clang-format off */
static int f_combo(void *ud, const char *c) { rec("combo %s", c); return 0; }
static int f_abs(void *ud, double x, double y, uint8_t b) { rec("abs %.3f %.3f %u", x, y, b); return 0; }
static int f_buttons(void *ud, uint8_t b) { rec("buttons %u", b); return 0; }
static int f_wheel(void *ud, int dy, int dx) { rec("wheel %d %d", dy, dx); return 0; }
static int f_rel(void *ud, int dx, int dy, uint8_t b) { rec("rel %d %d %u", dx, dy, b); return 0; }
static int f_release(void *ud) { rec("release_all"); return 0; }
static int f_switch(void *ud, enum okvm_usb_dir to) { rec("switch %d", to); return 0; }
static void f_state(void *ud, struct serve_state *out) { memset(out, 0, sizeof(*out)); }
static void f_unref(void *ud, struct okvm_frame *f) { }
static void f_destroy(void *ud) { }
/* clang-format on */

static int
f_type(void *ud, const char *text, size_t len, const char *layout, double cps,
       serve_type_progress_fn fn, void *fn_ud)
{
	rec("type %.*s %s %g", (int)len, text, layout, cps);
	return 0;
}

/* clang-format off */
static const struct serve_backend_ops fake_ops = {
	.key = f_key, .combo = f_combo, .mouse_abs = f_abs, .buttons = f_buttons, .wheel = f_wheel,
	.rel = f_rel, .type = f_type, .release_all = f_release, .usb_switch = f_switch,
	.get_state = f_state, .frame_unref = f_unref, .destroy = f_destroy,
};
/* clang-format on */

struct fixture {
	struct serve *s;
	struct conn a, b;
};

static int
setup(void **state)
{
	static struct fixture fx;
	memset(&fx, 0, sizeof(fx));
	struct serve_config cfg;
	serve_config_init(&cfg);
	struct serve_backend be = { .ops = &fake_ops };
	fx.s = serve_new(&cfg, &be);
	serve_config_clear(&cfg);
	fx.a = (struct conn){ .kind = CONN_WS, .s = fx.s, .id = 1, .role = SERVE_ROLE_ADMIN };
	fx.b = (struct conn){ .kind = CONN_WS, .s = fx.s, .id = 2, .role = SERVE_ROLE_ADMIN };
	serve_list_add(&fx.s->sockets, &fx.a);
	serve_list_add(&fx.s->sockets, &fx.b);
	ncalls = 0;
	*state = &fx;
	return 0;
}

static void
drop_queue(struct conn *c)
{
	while (c->ws.qlen) {
		free(c->ws.q[c->ws.qhead]);
		c->ws.qhead = (c->ws.qhead + 1) % SERVE_WS_QUEUE;
		c->ws.qlen--;
	}
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	drop_queue(&fx->a);
	drop_queue(&fx->b);
	fx->s->sockets = NULL;
	serve_free(fx->s);
	return 0;
}

static void
msg(struct fixture *fx, struct conn *c, const char *text)
{
	ws_handle_message(fx->s, c, text, strlen(text));
}

/* The last reply queued for c, as text. */
static const char *
last_reply(struct conn *c)
{
	if (!c->ws.qlen)
		return "";
	struct ws_msg *m = c->ws.q[(c->ws.qhead + c->ws.qlen - 1) % SERVE_WS_QUEUE];
	static char buf[512];
	snprintf(buf, sizeof(buf), "%.*s", (int)m->len, (char *)m->buf + LWS_PRE);
	return buf;
}

static void
test_key_merge(void **state)
{
	struct fixture *fx = *state;
	msg(fx, &fx->a, "{\"type\":\"key\",\"code\":\"ShiftLeft\",\"down\":true}");
	msg(fx, &fx->a, "{\"type\":\"key\",\"code\":\"ShiftLeft\",\"down\":true}");
	msg(fx, &fx->b, "{\"type\":\"key\",\"code\":\"ShiftLeft\",\"down\":true}");
	assert_int_equal(ncalls, 1);
	assert_string_equal(calls[0], "key ShiftLeft 1");
	msg(fx, &fx->a, "{\"type\":\"key\",\"code\":\"ShiftLeft\",\"down\":false}");
	assert_int_equal(ncalls, 1);
	msg(fx, &fx->b, "{\"type\":\"key\",\"code\":\"ShiftLeft\",\"down\":false}");
	assert_int_equal(ncalls, 2);
	assert_string_equal(calls[1], "key ShiftLeft 0");
	assert_int_equal(fx->a.ws.qlen + fx->b.ws.qlen, 0);
}

static void
test_release_client(void **state)
{
	struct fixture *fx = *state;
	msg(fx, &fx->a, "{\"type\":\"key\",\"code\":\"KeyA\",\"down\":true}");
	msg(fx, &fx->a, "{\"type\":\"key\",\"code\":\"KeyB\",\"down\":true}");
	msg(fx, &fx->b, "{\"type\":\"key\",\"code\":\"KeyB\",\"down\":true}");
	msg(fx, &fx->a, "{\"type\":\"mouse\",\"x\":0.5,\"y\":0.5,\"buttons\":1}");
	msg(fx, &fx->b, "{\"type\":\"mouse\",\"x\":0.5,\"y\":0.5,\"buttons\":4}");
	assert_string_equal(calls[ncalls - 1], "abs 0.500 0.500 5");
	ncalls = 0;
	input_release_client(fx->s, &fx->a);
	assert_int_equal(ncalls, 2);
	assert_string_equal(calls[0], "key KeyA 0"); /* KeyB is still held by b */
	assert_string_equal(calls[1], "buttons 4");  /* b's middle button stays */
}

static void
test_bad_messages_change_nothing(void **state)
{
	struct fixture *fx = *state;
	static const char *const bad[] = {
		"",
		"{",
		"null",
		"\"key\"",
		"{\"type\":7}",
		"{\"type\":\"dance\"}",
		"{\"type\":\"key\",\"code\":\"NoSuch\",\"down\":true}",
		"{\"type\":\"key\",\"code\":\"Key A\",\"down\":true}",
		"{\"type\":\"key\",\"code\":\"KeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"down\":true}",
		"{\"type\":\"key\",\"code\":\"KeyA\"}",
		"{\"type\":\"mouse\",\"x\":0.5,\"y\":1.0001}",
		"{\"type\":\"mouse\",\"x\":\"0.5\",\"y\":0.5}",
		"{\"type\":\"mouse\",\"x\":0.5,\"y\":0.5,\"buttons\":1.5}",
		"{\"type\":\"wheel\",\"dy\":128}",
		"{\"type\":\"rel\",\"dx\":1,\"dy\":32768}",
		"{\"type\":\"type\",\"text\":7}",
		"{\"type\":\"type\",\"text\":\"x\",\"cps\":-1}",
		"{\"type\":\"switch\",\"to\":\"HOST\"}",
		"{\"type\":\"combo\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg(fx, &fx->a, bad[i]);
		assert_int_equal(fx->a.ws.qlen, 1);
		assert_non_null(strstr(last_reply(&fx->a), "\"type\":\"error\""));
		drop_queue(&fx->a);
	}
	assert_int_equal(ncalls, 0);
	assert_int_equal(fx->a.ws.npressed, 0);
}

static void
test_good_messages(void **state)
{
	struct fixture *fx = *state;
	msg(fx, &fx->a, "{\"type\":\"wheel\",\"dy\":-3}");
	msg(fx, &fx->a, "{\"type\":\"rel\",\"dx\":500,\"dy\":-2,\"buttons\":2}");
	msg(fx, &fx->a, "{\"type\":\"combo\",\"combo\":\"ctrl+alt+delete\"}");
	msg(fx, &fx->a, "{\"type\":\"switch\",\"to\":\"host\"}");
	msg(fx, &fx->a, "{\"type\":\"type\",\"text\":\"hi\",\"layout\":\"de\",\"cps\":25}");
	msg(fx, &fx->a, "{\"type\":\"type\",\"text\":\"x\"}");
	assert_int_equal(ncalls, 6);
	assert_string_equal(calls[0], "wheel -3 0");
	assert_string_equal(calls[1], "rel 500 -2 2");
	assert_string_equal(calls[2], "combo ctrl+alt+delete");
	assert_string_equal(calls[3], "switch 0"); /* OKVM_USB_TO_HOST */
	assert_string_equal(calls[4], "type hi de 25");
	assert_string_equal(calls[5], "type x us 0"); /* the server's default layout */
	msg(fx, &fx->a, "{\"type\":\"ping\",\"t\":42}");
	assert_string_equal(last_reply(&fx->a), "{\"type\":\"pong\",\"t\":42}");
}

static void
test_release_all_clears_everyone(void **state)
{
	struct fixture *fx = *state;
	msg(fx, &fx->a, "{\"type\":\"key\",\"code\":\"KeyA\",\"down\":true}");
	msg(fx, &fx->b, "{\"type\":\"key\",\"code\":\"KeyB\",\"down\":true}");
	msg(fx, &fx->b, "{\"type\":\"release_all\"}");
	assert_string_equal(calls[ncalls - 1], "release_all");
	assert_int_equal(fx->a.ws.npressed + fx->b.ws.npressed, 0);
	ncalls = 0;
	input_release_client(fx->s, &fx->a);
	assert_int_equal(ncalls, 0); /* nothing left to release twice */
}

static void
test_queue_is_bounded(void **state)
{
	struct fixture *fx = *state;
	for (int i = 0; i < SERVE_WS_QUEUE + 10; i++)
		msg(fx, &fx->a, "{\"type\":\"ping\"}");
	assert_int_equal(fx->a.ws.qlen, SERVE_WS_QUEUE);
	assert_int_equal(fx->a.ws.q_dropped, 10);
}

/* ---- config ---- */

static char *
tmpfile_path(const char *name)
{
	static char dir[] = "/tmp/okvm-serve-unit-XXXXXX";
	static bool made;
	if (!made) {
		assert_non_null(mkdtemp(dir));
		made = true;
	}
	char *p;
	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void
spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_config_load(void **state)
{
	char *p = tmpfile_path("a.conf");
	spit(p, "[other]\nwhatever = 1\n[serve]\nlisten = 0.0.0.0:9000\nsession_hours = 3\n"
		"tls_self_signed = yes\ntype_cps = 40.5\nlayout = de\n");
	struct serve_config c;
	serve_config_init(&c);
	assert_int_equal(serve_config_load(&c, p), 0);
	assert_string_equal(c.listen, "0.0.0.0:9000");
	assert_int_equal(c.session_hours, 3);
	assert_true(c.tls_self_signed);
	assert_true(c.type_cps == 40.5);
	assert_string_equal(c.layout, "de");
	assert_int_equal(c.stall_timeout_s, 10);
	spit(p, "[serve]\nsession_hours = 0\n");
	assert_int_equal(serve_config_load(&c, p), -EINVAL);
	spit(p, "[serve]\nlisen = x\n");
	assert_int_equal(serve_config_load(&c, p), -EINVAL);
	assert_int_equal(serve_config_load(&c, "/nonexistent/okvm.conf"), -ENOENT);
	serve_config_clear(&c);
	free(p);
}

static void
test_config_set(void **state)
{
	char *p = tmpfile_path("sub/dir/okvm.conf");
	assert_int_equal(serve_config_set(p, "password", "H1"), 0);
	assert_string_equal(slurp(p), "\n[serve]\npassword = H1\n");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	spit(p, "# mine\n[serve]\nlisten = :1\npassword = OLD\n[other]\nx = 1\n");
	assert_int_equal(serve_config_set(p, "password", "H2"), 0);
	assert_string_equal(slurp(p),
			    "# mine\n[serve]\nlisten = :1\npassword = H2\n[other]\nx = 1\n");
	spit(p, "[serve]\nlisten = :1\n[other]\nx = 1\n");
	assert_int_equal(serve_config_set(p, "password", "H3"), 0);
	assert_string_equal(slurp(p), "[serve]\nlisten = :1\npassword = H3\n[other]\nx = 1\n");
	spit(p, "[other]\npassword = keep\n");
	assert_int_equal(serve_config_set(p, "password", "H4"), 0);
	assert_string_equal(slurp(p), "[other]\npassword = keep\n\n[serve]\npassword = H4\n");
	free(p);
}

static void
test_loopback(void **state)
{
	assert_true(serve_listen_is_loopback("127.0.0.1:8080"));
	assert_true(serve_listen_is_loopback("127.1.2.3:80"));
	assert_true(serve_listen_is_loopback("localhost:8080"));
	assert_true(serve_listen_is_loopback("[::1]:8080"));
	assert_false(serve_listen_is_loopback("0.0.0.0:8080"));
	assert_false(serve_listen_is_loopback(":8080"));
	assert_false(serve_listen_is_loopback("[::]:8080"));
	assert_false(serve_listen_is_loopback("192.168.1.5:8080"));
	assert_false(serve_listen_is_loopback("128.0.0.1:8080"));
	assert_false(serve_listen_is_loopback("127.0.0.1"));
	assert_false(serve_listen_is_loopback("127.0.0.1:0"));
	assert_false(serve_listen_is_loopback("127.0.0.1:99999"));
}

static void
test_password_hash(void **state)
{
	char *h;
	assert_int_equal(serve_password_hash("correct horse", &h), 0);
	assert_int_equal(strncmp(h, "$argon2id$", 10), 0);
	assert_null(strstr(h, "correct"));
	free(h);
}

/* {"Type":"mouse","type":"key"}: two readers could take different members; refused whole. */
static void
test_duplicate_names_refused(void **state)
{
	struct fixture *fx = *state;
	msg(fx, &fx->a,
	    "{\"Type\":\"mouse\",\"type\":\"key\",\"code\":\"ShiftLeft\",\"down\":true}");
	assert_int_equal(ncalls, 0);
	assert_non_null(strstr(last_reply(&fx->a), "appears twice"));
	msg(fx, &fx->a,
	    "{\"type\":\"key\",\"code\":\"KeyA\",\"CODE\":\"ShiftLeft\",\"down\":true}");
	assert_int_equal(ncalls, 0);
	msg(fx, &fx->a, "{\"type\":\"release_all\",\"TYPE\":\"x\"}");
	assert_int_equal(ncalls, 0);
}

/* A viewer sees the video and may ping; every input message is refused and nothing is sent. */
static void
test_viewer_sends_nothing(void **state)
{
	struct fixture *fx = *state;
	fx->a.role = SERVE_ROLE_VIEWER;
	static const char *const input[] = {
		"{\"type\":\"key\",\"code\":\"KeyA\",\"down\":true}",
		"{\"type\":\"mouse\",\"x\":0.5,\"y\":0.5,\"buttons\":1}",
		"{\"type\":\"wheel\",\"dy\":1}",
		"{\"type\":\"rel\",\"dx\":1,\"dy\":1}",
		"{\"type\":\"type\",\"text\":\"x\"}",
		"{\"type\":\"release_all\"}",
		"{\"type\":\"switch\",\"to\":\"host\"}",
		"{\"type\":\"combo\",\"combo\":\"ctrl+alt+delete\"}",
	};
	for (size_t i = 0; i < sizeof(input) / sizeof(input[0]); i++) {
		msg(fx, &fx->a, input[i]);
		assert_non_null(
			strstr(last_reply(&fx->a), "needs the role operator (yours: viewer)"));
	}
	assert_int_equal(ncalls, 0);
	msg(fx, &fx->a, "{\"type\":\"ping\",\"t\":1}");
	assert_non_null(strstr(last_reply(&fx->a), "pong"));
	fx->a.role = SERVE_ROLE_OPERATOR;
	msg(fx, &fx->a, "{\"type\":\"key\",\"code\":\"KeyA\",\"down\":true}");
	assert_int_equal(ncalls, 1);
}

/* A session that expires takes its connections with it: their keys are released and they lose
 * their role at once (the sweep then closes them); another session's connection stays. */
static void
test_expired_session_ends_its_connections(void **state)
{
	struct fixture *fx = *state;
	struct session *se = &fx->s->sessions[0];
	snprintf(se->token, sizeof(se->token), "%064d", 1);
	snprintf(se->user, sizeof(se->user), "olga");
	se->id = 7;
	se->role = SERVE_ROLE_OPERATOR;
	se->expires_us = serve_wall_us() + 3600ull * 1000000;
	fx->a.session_id = 7;
	fx->a.role = SERVE_ROLE_OPERATOR;
	fx->b.session_id = 8;
	msg(fx, &fx->a, "{\"type\":\"key\",\"code\":\"ShiftLeft\",\"down\":true}");
	assert_int_equal(ncalls, 1);
	auth_expire(fx->s); /* not yet */
	assert_int_equal(fx->a.session_id, 7);
	se->expires_us = serve_wall_us() - 1;
	auth_expire(fx->s);
	assert_int_equal(fx->a.session_id, 0);
	assert_int_equal(fx->a.role, SERVE_ROLE_NONE);
	assert_string_equal(calls[ncalls - 1], "key ShiftLeft 0"); /* released */
	assert_int_equal(fx->b.session_id, 8);
	assert_int_equal(se->token[0], 0);
	int n = ncalls;
	msg(fx, &fx->a, "{\"type\":\"key\",\"code\":\"KeyA\",\"down\":true}");
	assert_int_equal(ncalls, n); /* nothing more from it */
}

static void
test_addr_group(void **state)
{
	(void)state;
	char g[64];
	serve_addr_group("192.0.2.7", g, sizeof(g));
	assert_string_equal(g, "192.0.2.7");
	serve_addr_group("2001:db8:1:2:aaaa:bbbb:cccc:dddd", g, sizeof(g));
	assert_string_equal(g, "2001:db8:1:2::/64");
	char h[64];
	serve_addr_group("2001:db8:1:2::99", h, sizeof(h));
	assert_string_equal(g, h); /* one /64, one group */
	serve_addr_group("2001:db8:1:3::1", h, sizeof(h));
	assert_string_not_equal(g, h);
	serve_addr_group("::ffff:198.51.100.4", g, sizeof(g));
	assert_string_equal(g, "198.51.100.4"); /* an IPv4 client of a dual-stack socket */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_messages_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_good_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_all_clears_everyone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_names_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_viewer_sends_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_session_ends_its_connections, setup,
						teardown),
		cmocka_unit_test(test_addr_group),
		cmocka_unit_test(test_config_load),
		cmocka_unit_test(test_config_set),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_password_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
