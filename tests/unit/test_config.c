/*
 * okvm serve's config file (src/serve/config.c, config-write.c): every key with its default and
 * its bounds, [user.NAME] sections, errors that name the line, long lines, the mode check, the
 * deep copy, and the writer (sections, removal, symbolic links, folder modes).
 */
#include <errno.h>
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

#include "okvm/log.h"
#include "serve/config-file.h"
#include "serve/serve.h"

#define HASH "$argon2id$v=19$m=12288,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
#define SECRET "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

static char logbuf[8192];

static void
log_to_buf(enum okvm_log_level level, const char *fmt, va_list ap, void *ud)
{
	size_t n = strlen(logbuf);
	vsnprintf(logbuf + n, sizeof(logbuf) - n, fmt, ap);
	n = strlen(logbuf);
	snprintf(logbuf + n, sizeof(logbuf) - n, "\n");
}

static char dir[] = "/tmp/okvm-config-unit-XXXXXX";

static char *
path_of(const char *name)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void
spit(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[16384];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

/* Load text (mode 0600) into *c; returns the result, with the log in logbuf. */
static int
load(struct serve_config *c, const char *text)
{
	char *p = path_of("t.conf");
	spit(p, text, 0600);
	logbuf[0] = 0;
	serve_config_init(c);
	int rc = serve_config_load(c, p);
	free(p);
	return rc;
}

/* text fails to load, with a log line naming line and containing what. */
static void
fails_at(const char *text, int line, const char *what)
{
	struct serve_config c;
	assert_int_equal(load(&c, text), -EINVAL);
	char want[64];
	snprintf(want, sizeof(want), "t.conf:%d: ", line);
	if (!strstr(logbuf, want) || !strstr(logbuf, what))
		fail_msg("wanted '%s' and '%s' in: %s", want, what, logbuf);
	serve_config_clear(&c);
}

static void
test_defaults(void **state)
{
	struct serve_config c;
	assert_int_equal(load(&c, "[serve]\n"), 0);
	assert_int_equal(c.auth_mode, SERVE_AUTH_AUTO);
	assert_int_equal(c.header_timeout_s, 10);
	assert_int_equal(c.max_unauth_per_addr, 16);
	assert_int_equal(c.nserver_names, 0);
	assert_int_equal(c.nusers, 0);
	assert_null(c.totp_secret);
	serve_config_clear(&c);
}

static void
test_new_keys(void **state)
{
	struct serve_config c;
	assert_int_equal(load(&c,
			      "[serve]\npassword = " HASH "\nauth = always\n"
			      "server_names = KVM.Example.org, b.example  c-1.example,d.example\n"
			      "totp = gezd gnbv gy3t qojq gezd gnbv gy3t qojq\n"
			      "header_timeout = 300\nmax_unauth_per_address = 4096\n"),
			 0);
	assert_int_equal(c.auth_mode, SERVE_AUTH_ALWAYS);
	assert_int_equal(c.nserver_names, 4);
	assert_string_equal(c.server_names[0], "kvm.example.org");
	assert_string_equal(c.server_names[1], "b.example");
	assert_string_equal(c.server_names[2], "c-1.example");
	assert_string_equal(c.server_names[3], "d.example");
	assert_string_equal(c.totp_secret, SECRET);
	assert_int_equal(c.header_timeout_s, 300);
	assert_int_equal(c.max_unauth_per_addr, 4096);
	serve_config_clear(&c);
	assert_int_equal(load(&c, "[serve]\nauth = auto\n"), 0);
	assert_int_equal(c.auth_mode, SERVE_AUTH_AUTO);
	serve_config_clear(&c);
}

static void
test_bad_values_name_the_line(void **state)
{
	fails_at("[serve]\n\nauth = sometimes\n", 3, "auth");
	fails_at("[serve]\nheader_timeout = 0\n", 2, "header_timeout");
	fails_at("[serve]\nheader_timeout = 301\n", 2, "header_timeout");
	fails_at("[serve]\nidle_timeout = 5\n", 2, "idle_timeout"); /* no such key */
	fails_at("[serve]\nmax_unauth_per_address = 0\n", 2, "max_unauth_per_address");
	fails_at("[serve]\nmax_unauth_per_address = 4097\n", 2, "max_unauth_per_address");
	fails_at("[serve]\nserver_names = a.example, bad_name.example\n", 2, "bad_name.example");
	fails_at("[serve]\nserver_names = -a.example\n", 2, "server_names");
	fails_at("[serve]\nserver_names = a..example\n", 2, "server_names");
	fails_at("[serve]\nserver_names = a b c d e f g h i j k l m n o p q\n", 2, "more than 16");
	fails_at("[serve]\npassword = " HASH "\ntotp = MZXW6YTB\n", 3, "totp"); /* 5 bytes */
	fails_at("[serve]\npassword = " HASH "\ntotp = not-base32!\n", 3, "totp");
	fails_at("[serve]\npassword = plaintext\n", 2, "argon2id");
	fails_at("[serve]\nlisten = 127.0.0.1:1\nlisen = typo\n", 3, "lisen");
}

static void
test_users(void **state)
{
	struct serve_config c;
	assert_int_equal(load(&c, "[serve]\npassword = " HASH "\ntotp = " SECRET "\n"
				  "[user.alice]\npassword = " HASH "\nrole = viewer\n"
				  "[other]\nrole = whatever\n"
				  "[user.bob-2.x_y]\nrole = operator\npassword = " HASH
				  "\ntotp = " SECRET "\n[user.carol]\npassword = " HASH
				  "\nrole = admin\n"),
			 0);
	assert_int_equal(c.nusers, 3);
	assert_string_equal(c.users[0].name, "alice");
	assert_int_equal(c.users[0].role, SERVE_ROLE_VIEWER);
	assert_null(c.users[0].totp_secret);
	assert_string_equal(c.users[1].name, "bob-2.x_y");
	assert_int_equal(c.users[1].role, SERVE_ROLE_OPERATOR);
	assert_string_equal(c.users[1].totp_secret, SECRET);
	assert_string_equal(c.users[1].password_hash, HASH);
	assert_int_equal(c.users[2].role, SERVE_ROLE_ADMIN);
	assert_string_equal(c.totp_secret, SECRET);
	serve_config_clear(&c);

	/* [user.admin] stands in for the [serve] password, but not beside it. */
	assert_int_equal(load(&c, "[user.admin]\npassword = " HASH "\nrole = admin\n"), 0);
	assert_int_equal(c.nusers, 1);
	serve_config_clear(&c);
	fails_at("[serve]\npassword = " HASH "\n\n[user.admin]\npassword = " HASH
		 "\nrole = admin\n",
		 4, "[user.admin]");

	fails_at("[user.alice]\npassword = " HASH "\nrole = boss\n", 3, "role");
	fails_at("[user.alice]\npassword = " HASH "\nrole = viewer\ncolour = red\n", 4, "colour");
	fails_at("[user.Alice]\npassword = " HASH "\nrole = viewer\n", 2, "user name");
	fails_at("[user.abcdefghijabcdefghijabcdefghijabc]\nrole = viewer\n", 2, "user name");
	fails_at("[serve]\n[user.empty]\n", 2, "no password");
	fails_at("[user.alice]\n\npassword = " HASH "\n", 1, "no role");
	fails_at("[user.alice]\nrole = viewer\n", 1, "no password");
	fails_at("[user.alice]\nrole = viewer\npassword = hunter22\n", 3, "argon2id");
	fails_at("[serve]\ntotp = " SECRET "\n", 1, "no password");

	/* At most SERVE_MAX_USERS. */
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	for (int i = 0; i <= SERVE_MAX_USERS; i++)
		fprintf(m, "[user.u%d]\npassword = %s\nrole = viewer\n", i, HASH);
	fclose(m);
	fails_at(text, SERVE_MAX_USERS * 3 + 2, "more than 32");
	free(text);
}

static void
test_long_lines(void **state)
{
	/* Lines of up to 16 KiB load whole (inih's default buffer is 200 bytes). */
	char *text = malloc(20000);
	char tok[257];
	memset(tok, 'T', 256);
	tok[256] = 0;
	int n = snprintf(text, 20000, "[serve]\n# ");
	memset(text + n, 'c', 5000);
	n += 5000;
	n += snprintf(text + n, 20000 - (size_t)n, "\nmetrics_token = %s\ntls_dir = /", tok);
	memset(text + n, 'd', 4096);
	n += 4096;
	snprintf(text + n, 20000 - (size_t)n, "\nlayout = de\n");
	struct serve_config c;
	assert_int_equal(load(&c, text), 0);
	assert_string_equal(c.metrics_token, tok);
	assert_int_equal(strlen(c.tls_dir), 4097);
	assert_string_equal(c.layout, "de");
	serve_config_clear(&c);
	/* A line past the limit is refused by its number, not cut. */
	n = snprintf(text, 20000, "[serve]\nlayout = ");
	memset(text + n, 'x', 17000);
	text[n + 17000] = 0;
	fails_at(text, 2, "longer than");
	free(text);
}

static void
test_mode_check(void **state)
{
	char *p = path_of("mode.conf");
	struct serve_config c;
	spit(p, "[serve]\npassword = " HASH "\n", 0604);
	logbuf[0] = 0;
	serve_config_init(&c);
	assert_int_equal(serve_config_load(&c, p), -EACCES);
	assert_non_null(strstr(logbuf, p));
	assert_non_null(strstr(logbuf, "chmod o-rwx"));
	serve_config_clear(&c);
	/* Group access is the service's layout; a file without secrets may be world-readable. */
	static const struct {
		const char *text;
		mode_t mode;
		int rc;
	} v[] = {
		{ "[serve]\npassword = " HASH "\n", 0640, 0 },
		{ "[serve]\npassword = " HASH "\n", 0660, 0 },
		{ "[serve]\nmetrics_token = 0123456789abcdef\n", 0644, -EACCES },
		{ "[user.a]\npassword = " HASH "\nrole = viewer\n", 0644, -EACCES },
		{ "[serve]\nlisten = 127.0.0.1:1\n", 0644, 0 },
		{ "[serve]\nlisten = 127.0.0.1:1\n", 0666, -EACCES },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		spit(p, v[i].text, v[i].mode);
		serve_config_init(&c);
		assert_int_equal(serve_config_load(&c, p), v[i].rc);
		serve_config_clear(&c);
	}
	free(p);
}

static void
test_copy(void **state)
{
	struct serve_config c, d;
	assert_int_equal(
		load(&c, "[serve]\npassword = " HASH "\ntotp = " SECRET "\n"
			 "server_names = a.example b.example\nmetrics_token = 0123456789abcdef\n"
			 "tls_dir = /x\nauth = always\nheader_timeout = 7\n"
			 "[user.alice]\npassword = " HASH "\nrole = operator\ntotp = " SECRET "\n"),
		0);
	serve_config_copy(&d, &c);
	serve_config_clear(&c); /* d must not share anything with c (ASan would see it) */
	assert_string_equal(d.password_hash, HASH);
	assert_string_equal(d.totp_secret, SECRET);
	assert_string_equal(d.server_names[1], "b.example");
	assert_string_equal(d.metrics_token, "0123456789abcdef");
	assert_string_equal(d.tls_dir, "/x");
	assert_string_equal(d.listen, SERVE_DEFAULT_LISTEN);
	assert_non_null(strstr(d.config_path, "t.conf"));
	assert_int_equal(d.auth_mode, SERVE_AUTH_ALWAYS);
	assert_int_equal(d.header_timeout_s, 7);
	assert_int_equal(d.nusers, 1);
	assert_string_equal(d.users[0].name, "alice");
	assert_string_equal(d.users[0].totp_secret, SECRET);
	assert_int_equal(d.users[0].role, SERVE_ROLE_OPERATOR);
	serve_config_clear(&d);
}

static void
test_set_in(void **state)
{
	char *p = path_of("w.conf");
	spit(p,
	     "# mine\n[serve]\nlisten = :1\n[user.alice]\npassword = OLD\nrole = viewer\n"
	     "[other]\nx = 1",
	     0600);
	assert_int_equal(serve_config_set_in(p, "user.alice", "password", "NEW"), 0);
	assert_int_equal(serve_config_set_in(p, "user.alice", "totp", "T"), 0);
	assert_int_equal(serve_config_set_in(p, "user.bob", "role", "admin"), 0);
	assert_string_equal(
		slurp(p), "# mine\n[serve]\nlisten = :1\n[user.alice]\npassword = NEW\n"
			  "role = viewer\ntotp = T\n[other]\nx = 1\n\n[user.bob]\nrole = admin\n");
	assert_int_equal(serve_config_set_in(p, "user.alice", "role", NULL), 0);
	assert_int_equal(serve_config_set_in(p, "user.alice", "nothing", NULL), 0);
	assert_int_equal(serve_config_remove_section(p, "user.bob"), 0);
	assert_int_equal(serve_config_remove_section(p, "user.bob"), -ENOENT);
	assert_string_equal(slurp(p), "# mine\n[serve]\nlisten = :1\n[user.alice]\npassword = NEW\n"
				      "totp = T\n[other]\nx = 1\n\n");
	/* A newline in a value would write a line of its own. */
	assert_int_equal(serve_config_set_in(p, "serve", "password", "x\nauth = auto"), -EINVAL);
	assert_int_equal(serve_config_set_in(p, "se]rve", "password", "x"), -EINVAL);
	/* Lines longer than any buffer are copied whole. */
	char *big = malloc(9000);
	memset(big, 'b', 8999);
	big[8999] = 0;
	char *text;
	assert_true(asprintf(&text, "[serve]\n# %s\nlayout = us\n", big) > 0);
	spit(p, text, 0600);
	assert_int_equal(serve_config_set(p, "layout", "de"), 0);
	text[strlen(text) - 3] = 0;
	char *want;
	assert_true(asprintf(&want, "%sde\n", text) > 0);
	assert_string_equal(slurp(p), want);
	free(want);
	free(text);
	free(big);
	free(p);
}

static void
test_symlink(void **state)
{
	char *target = path_of("real.conf"), *link = path_of("link.conf");
	spit(target, "[serve]\nlisten = :1\n", 0600);
	unlink(link);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(serve_config_set(link, "password", "H"), 0);
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_string_equal(slurp(target), "[serve]\nlisten = :1\npassword = H\n");
	/* A link to nothing: refused, and the link stays. */
	char *gone = path_of("gone.conf"), *dangling = path_of("dangling.conf");
	unlink(dangling);
	assert_int_equal(symlink(gone, dangling), 0);
	logbuf[0] = 0;
	assert_int_equal(serve_config_set(dangling, "password", "H"), -ENOENT);
	assert_non_null(strstr(logbuf, "symbolic link"));
	assert_int_equal(lstat(dangling, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(access(gone, F_OK), -1);
	free(target);
	free(link);
	free(gone);
	free(dangling);
}

static mode_t
mode_of(const char *p)
{
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	return st.st_mode & 07777;
}

static void
test_folder_modes(void **state)
{
	/* The per-user folder is tightened to 0700, and the file is 0600. */
	char *xdg = path_of("xdg"), *mine = path_of("xdg/okvm"),
	     *conf = path_of("xdg/okvm/okvm.conf");
	assert_int_equal(mkdir(xdg, 0755), 0);
	assert_int_equal(mkdir(mine, 0755), 0);
	assert_int_equal(chmod(mine, 0755), 0);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	spit(conf, "[serve]\n", 0644);
	assert_int_equal(serve_config_set(conf, "password", "H"), 0);
	assert_int_equal(mode_of(mine), 0700);
	assert_int_equal(mode_of(conf), 0600);
	/* Another existing folder is the user's business: left alone (the file is still 0600). */
	char *other = path_of("shared"), *oconf = path_of("shared/okvm.conf");
	assert_int_equal(mkdir(other, 0755), 0);
	assert_int_equal(chmod(other, 0755), 0);
	assert_int_equal(serve_config_set(oconf, "password", "H"), 0);
	assert_int_equal(mode_of(other), 0755);
	assert_int_equal(mode_of(oconf), 0600);
	/* Folders it creates are 0700. */
	char *made = path_of("new/sub/okvm.conf"), *madedir = path_of("new/sub");
	assert_int_equal(serve_config_set(made, "password", "H"), 0);
	assert_int_equal(mode_of(madedir), 0700);
	unsetenv("XDG_CONFIG_HOME");
	free(xdg);
	free(mine);
	free(conf);
	free(other);
	free(oconf);
	free(made);
	free(madedir);
}

int
main(void)
{
	assert_non_null(mkdtemp(dir));
	umask(022);
	okvm_log_set_handler(log_to_buf, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_new_keys),
		cmocka_unit_test(test_bad_values_name_the_line),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_mode_check),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_set_in),
		cmocka_unit_test(test_symlink),
		cmocka_unit_test(test_folder_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
