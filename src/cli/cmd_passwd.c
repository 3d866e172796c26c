/*
 * DESIGN: `okvm passwd`: set a web login password. Reads it twice from the terminal without
 * echo (or once from a pipe, for scripts), hashes it with argon2id and stores only the hash:
 * in the [serve] section (the user "admin") or, with --user NAME --role ROLE, in [user.NAME].
 * --delete removes a user's section. The file is written by serve_config_set_in
 * (src/serve/config-write.c), which keeps the system service's ownership; the server reads it
 * at start.
 *
 * A password is 8 to SERVE_MAX_PASSWORD characters. A longer one is refused, never cut: a cut
 * password would be accepted with anything after the cut.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "serve/config-file.h"
#include "serve/serve.h"

#define MIN_PASSWORD 8
/* The buffer holds the longest password, its newline and the NUL, plus one character so that a
 * longer line is seen to be longer. */
#define PW_BUF (SERVE_MAX_PASSWORD + 3)

/* Returns 0, -EIO (no input) or -E2BIG (a line longer than the buffer takes). */
static int
read_line(const char *prompt, char *buf, size_t n)
{
	bool tty = isatty(STDIN_FILENO);
	struct termios old, quiet;
	if (tty) {
		fputs(prompt, stderr);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	char *ok = fgets(buf, (int)n, stdin);
	bool whole = ok && (strchr(buf, '\n') || feof(stdin));
	if (ok && !whole) {
		/* Drain the rest of the line, so nothing of it is left for a later read. */
		int c;
		while ((c = getchar()) != EOF && c != '\n')
			;
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fputc('\n', stderr);
	}
	if (!ok)
		return -EIO;
	if (!whole)
		return -E2BIG;
	buf[strcspn(buf, "\r\n")] = 0;
	return 0;
}

static int
read_password(char *pw, char *again)
{
	int rc = read_line("New web password: ", pw, PW_BUF);
	if (rc == -EIO)
		return cli_fail("passwd: no password given");
	if (rc == -E2BIG || strlen(pw) > SERVE_MAX_PASSWORD)
		return cli_fail(
			"passwd: the password is longer than %d characters; nothing changed",
			SERVE_MAX_PASSWORD);
	if (strlen(pw) < MIN_PASSWORD)
		return cli_fail("passwd: use at least %d characters", MIN_PASSWORD);
	if (isatty(STDIN_FILENO)) {
		if (read_line("Again: ", again, PW_BUF) || strcmp(pw, again))
			return cli_fail("passwd: the two passwords differ; nothing changed");
	}
	return CLI_OK;
}

static int
parse_args(int argc, char **argv, struct cli_account_args *a)
{
	int rc = cli_account_args(
		"passwd", "RD",
		"--config FILE, --user NAME, --role viewer|operator|admin, --delete", argc, argv,
		a);
	if (rc)
		return rc;
	if (a->role && serve_role_parse(a->role) == SERVE_ROLE_NONE)
		return cli_usage("passwd: unknown role '%s' (viewer, operator or admin)", a->role);
	if ((a->role || a->del) && !a->user)
		return cli_usage("passwd: %s needs --user NAME", a->role ? "--role" : "--delete");
	if (a->del && a->role)
		return cli_usage("passwd: --delete takes no --role");
	return CLI_OK;
}

/* The [serve] password is the user admin, so [user.admin] may only stand in for it. */
static int
check_admin_clash(const char *path, const struct cli_account_args *a)
{
	if (a->del || (a->user && strcmp(a->user, "admin")))
		return CLI_OK;
	struct serve_config cfg;
	serve_config_init(&cfg);
	int rc = serve_config_load_quiet(&cfg,
					 path); /* a file that does not load yet is fixed below */
	bool serve_pw = !rc && cfg.password_hash, user_admin = false;
	for (unsigned i = 0; !rc && i < cfg.nusers; i++)
		user_admin |= !strcmp(cfg.users[i].name, "admin");
	serve_config_clear(&cfg);
	if (a->user && serve_pw)
		return cli_fail("passwd: %s already has the admin's password in [serve]; change it "
				"with okvm passwd (no --user)",
				path);
	if (!a->user && user_admin)
		return cli_fail("passwd: %s has a [user.admin]; change it with okvm passwd --user "
				"admin --role ROLE",
				path);
	return CLI_OK;
}

static int
store(const char *path, const struct cli_account_args *a, const char *hash)
{
	char section[64];
	snprintf(section, sizeof(section), "user.%s", a->user ? a->user : "");
	int rc = a->user ? serve_config_set_in(path, section, "password", hash)
			 : serve_config_set(path, "password", hash);
	if (!rc && a->role)
		rc = serve_config_set_in(path, section, "role", a->role);
	if (rc)
		return cli_fail("passwd: cannot write %s: %s", path, okvm_strerror(rc));
	if (a->user)
		printf("okvm: password of %s set in %s\n", a->user, path);
	else
		printf("okvm: password set in %s\n", path);
	return CLI_OK;
}

static int
delete_user(const char *path, const char *user)
{
	char section[64];
	snprintf(section, sizeof(section), "user.%s", user);
	int rc = serve_config_remove_section(path, section);
	if (rc == -ENOENT)
		return cli_fail("passwd: no user %s in %s", user, path);
	if (rc)
		return cli_fail("passwd: cannot write %s: %s", path, okvm_strerror(rc));
	printf("okvm: user %s removed from %s\n", user, path);
	return CLI_OK;
}

/* A new [user.NAME] needs a role; an existing one keeps its own unless --role says otherwise. */
static bool
user_has_role(const char *path, const char *user)
{
	struct serve_config cfg;
	serve_config_init(&cfg);
	bool has = false;
	if (!serve_config_load_quiet(&cfg, path))
		for (unsigned i = 0; i < cfg.nusers; i++)
			has |= !strcmp(cfg.users[i].name, user) && cfg.users[i].role;
	serve_config_clear(&cfg);
	return has;
}

int
cmd_passwd(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	struct cli_account_args a = { 0 };
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	char *path = a.config ? strdup(a.config) : serve_config_default_path(true);
	if (!path)
		return cli_fail("passwd: no config path (set HOME or use --config FILE)");
	if (a.del) {
		rc = delete_user(path, a.user);
		free(path);
		return rc;
	}
	if ((rc = check_admin_clash(path, &a))) {
		free(path);
		return rc;
	}
	if (a.user && !a.role && !user_has_role(path, a.user)) {
		free(path);
		return cli_usage("passwd: a new user needs --role viewer|operator|admin");
	}
	if (sodium_init() < 0)
		abort();
	/* Guarded, locked pages, zeroed when freed. */
	char *pw = sodium_malloc(PW_BUF), *again = sodium_malloc(PW_BUF);
	if (!pw || !again)
		abort();
	pw[0] = again[0] = 0;
	rc = read_password(pw, again);
	char *hash = NULL;
	if (!rc && (rc = serve_password_hash(pw, &hash)))
		rc = cli_fail("passwd: hashing failed: %s", okvm_strerror(rc));
	sodium_free(pw);
	sodium_free(again);
	if (!rc)
		rc = store(path, &a, hash);
	if (hash) {
		sodium_memzero(hash, strlen(hash));
		free(hash);
	}
	free(path);
	return rc;
}
