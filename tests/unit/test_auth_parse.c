/* The header checks of serve/auth-parse.h: Host (DNS rebinding), Cookie, Origin, Bearer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "serve/auth-parse.h"

static void
test_host(void **state)
{
	(void)state;
	static const char *const names[] = { "kvm.example.org", "other.example" };
	static const struct {
		const char *host;
		bool ok;
	} cases[] = {
		/* clang-format off */
		{ "127.0.0.1:8080", true }, { "127.0.0.1", true }, { "localhost:1", true },
		{ "LOCALHOST:1", true }, { "localhost.", true }, { "foo.localhost:9", true },
		{ "[::1]:8080", true }, { "[::1]", true }, { "192.0.2.7:80", true },
		{ "kvm.example.org:443", true }, { "KVM.Example.ORG", true }, { "other.example", true },
		/* rebinding: a name that is none of those */
		{ "rebind.attacker.example:8080", false }, { "localhost.attacker.example", false },
		{ "xlocalhost", false }, { "kvm.example.org.evil", false }, { "example.org", false },
		/* malformed */
		{ "", false }, { ":8080", false }, { "127.0.0.1:", false }, { "127.0.0.1:80x", false },
		{ "[::1", false }, { "[::1]x", false }, { "[::1]:", false }, { "[evil]:80", false },
		{ "a b", false }, { "localhost:8080:1", false },
		/* clang-format on */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = auth_host_allowed(cases[i].host, names, 2);
		if (got != cases[i].ok)
			fail_msg("Host '%s': %d, want %d", cases[i].host, got, cases[i].ok);
	}
	assert_false(auth_host_allowed(NULL, names, 2));
	assert_false(auth_host_allowed("kvm.example.org", names, 0)); /* only when configured */
}

struct seen {
	char tok[8][65];
	int n;
	int stop_at;
};

static bool
collect(const char *tok, void *ud)
{
	struct seen *s = ud;
	snprintf(s->tok[s->n++], sizeof(s->tok[0]), "%s", tok);
	return s->n == s->stop_at;
}

#define T1 "1111111111111111111111111111111111111111111111111111111111111111"
#define T2 "2222222222222222222222222222222222222222222222222222222222222222"

static void
test_cookies(void **state)
{
	(void)state;
	struct seen s = { .stop_at = 99 };
	auth_each_session_cookie("okvm_session=" T1, collect, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.tok[0], T1);
	/* another cookie whose name ends in okvm_session is not it */
	s = (struct seen){ .stop_at = 99 };
	auth_each_session_cookie("xokvm_session=" T1 "; a=b", collect, &s);
	assert_int_equal(s.n, 0);
	s = (struct seen){ .stop_at = 99 };
	auth_each_session_cookie("x=okvm_session=" T1, collect, &s);
	assert_int_equal(s.n, 0);
	/* a planted one does not hide the real one: both are tried, in order */
	s = (struct seen){ .stop_at = 99 };
	auth_each_session_cookie("aokvm_session=1; okvm_session=" T2 ";okvm_session=" T1, collect,
				 &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.tok[0], T2);
	assert_string_equal(s.tok[1], T1);
	/* fn stops the walk */
	s = (struct seen){ .stop_at = 1 };
	assert_true(auth_each_session_cookie("okvm_session=" T2 "; okvm_session=" T1, collect, &s));
	assert_int_equal(s.n, 1);
	/* only whole tokens: short, long, trailing junk */
	s = (struct seen){ .stop_at = 99 };
	auth_each_session_cookie("okvm_session=123; okvm_session=" T1 "0; okvm_session=" T1 "x y",
				 collect, &s);
	assert_int_equal(s.n, 0);
	assert_false(auth_each_session_cookie(NULL, collect, &s));
}

static void
test_origin_and_bearer(void **state)
{
	(void)state;
	assert_true(auth_origin_matches(NULL, "127.0.0.1:8080"));
	assert_true(auth_origin_matches("http://127.0.0.1:8080", "127.0.0.1:8080"));
	assert_true(auth_origin_matches("https://KVM.example:1", "kvm.example:1"));
	assert_false(auth_origin_matches("http://evil.example", "127.0.0.1:8080"));
	assert_false(auth_origin_matches("http://127.0.0.1:9", "127.0.0.1:8080"));
	assert_false(auth_origin_matches("null", "127.0.0.1:8080"));
	assert_false(auth_origin_matches("http://127.0.0.1:8080", NULL));
	const char *tok = "0123456789abcdef-token";
	assert_true(auth_bearer_ok("Bearer 0123456789abcdef-token", tok));
	assert_true(auth_bearer_ok("bearer 0123456789abcdef-token", tok));
	assert_false(auth_bearer_ok("Bearer 0123456789abcdef-tokenX", tok));
	assert_false(auth_bearer_ok("Bearer 0123456789abcdef-toke", tok));
	assert_false(auth_bearer_ok("Basic 0123456789abcdef-token", tok));
	assert_false(auth_bearer_ok("Bearer 0123456789abcdef-token", NULL));
	assert_false(auth_bearer_ok(NULL, tok));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_cookies),
		cmocka_unit_test(test_origin_and_bearer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
