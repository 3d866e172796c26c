/*
 * DESIGN: `okvm passwd`: set the web login password. Reads it twice from the terminal without
 * echo (or once from a pipe, for scripts), hashes it with argon2id and stores only the hash in
 * the [serve] section of the config file, which ends up 0600. The server reads it at start.
 */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "serve/serve.h"

#define MIN_PASSWORD 8

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
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fputc('\n', stderr);
	}
	if (!ok)
		return -EIO;
	buf[strcspn(buf, "\r\n")] = 0;
	return 0;
}

int
cmd_passwd(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' }, { 0 } };
	const char *config = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c != 'c')
			return cli_usage("passwd: unknown option '%s' (only --config FILE)",
					 argv[optind - 1]);
		config = optarg;
	}
	if (optind < argc)
		return cli_usage("passwd: unexpected argument '%s'", argv[optind]);
	char pw[256], again[256];
	if (read_line("New web password: ", pw, sizeof(pw)))
		return cli_fail("passwd: no password given");
	if (strlen(pw) < MIN_PASSWORD)
		return cli_fail("passwd: use at least %d characters", MIN_PASSWORD);
	if (isatty(STDIN_FILENO)) {
		if (read_line("Again: ", again, sizeof(again)) || strcmp(pw, again))
			return cli_fail("passwd: the two passwords differ; nothing changed");
	}
	char *hash;
	int rc = serve_password_hash(pw, &hash);
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(again, sizeof(again));
	if (rc)
		return cli_fail("passwd: hashing failed: %s", okvm_strerror(rc));
	char *path = config ? strdup(config) : serve_config_default_path(true);
	if (!path) {
		free(hash);
		return cli_fail("passwd: no config path (set HOME or use --config FILE)");
	}
	rc = serve_config_set(path, "password", hash);
	free(hash);
	if (rc) {
		int r = cli_fail("passwd: cannot write %s: %s", path, okvm_strerror(rc));
		free(path);
		return r;
	}
	printf("okvm: password set in %s\n", path);
	free(path);
	return CLI_OK;
}
