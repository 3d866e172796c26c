/*
 * DESIGN: `okvm totp`: the second login factor of one user. It makes a random secret
 * (src/serve/totp.c), stores it as the `totp` key of [serve] (the user admin) or of
 * [user.NAME], and prints it three ways for an authenticator app: an otpauth:// URI, a QR code
 * of that URI drawn in the terminal, and the secret itself for typing in. --show prints the
 * stored one again, --remove deletes it. Running it again replaces the secret, so a lost phone
 * is dealt with by enrolling the new one.
 *
 * The QR code comes from libqrencode (error correction M, 8-bit mode), two modules per
 * character cell with the Unicode half blocks. On a terminal the code is drawn black on white
 * with ANSI colours, so it scans on dark and light themes alike; into a pipe or file it is plain
 * text with dark modules as blocks.
 */
#include <errno.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "serve/config-file.h"
#include "serve/serve.h"
#include "serve/totp.h"

#define QR_MARGIN 2 /* modules of quiet zone (qrencode's own default for text) */

static bool
dark(const QRcode *q, int x, int y)
{
	return x >= 0 && y >= 0 && x < q->width && y < q->width && (q->data[y * q->width + x] & 1);
}

static int
print_qr(FILE *out, const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!q)
		return -1;
	bool colour = isatty(fileno(out));
	for (int y = -QR_MARGIN; y < q->width + QR_MARGIN; y += 2) {
		if (colour)
			fputs("\033[30;47m", out);
		for (int x = -QR_MARGIN; x < q->width + QR_MARGIN; x++) {
			bool top = dark(q, x, y), bottom = dark(q, x, y + 1);
			fputs(top && bottom ? "\u2588"
			      : top         ? "\u2580"
			      : bottom      ? "\u2584"
					    : " ",
			      out);
		}
		fputs(colour ? "\033[0m\n" : "\n", out);
	}
	QRcode_free(q);
	return 0;
}

static void
print_secret(const char *secret, const char *account)
{
	char *uri = totp_uri(secret, account);
	if (print_qr(stdout, uri))
		printf("(no QR code: the URI is too long)\n");
	printf("%s\n", uri);
	printf("secret (type it in if you cannot scan):");
	for (size_t i = 0; secret[i]; i++)
		printf("%s%c", i % 4 ? "" : " ", secret[i]);
	printf("\n");
	free(uri);
}

static int
parse_args(int argc, char **argv, struct cli_account_args *a)
{
	int rc = cli_account_args("totp", "SX", "--config FILE, --user NAME, --show, --remove",
				  argc, argv, a);
	if (!rc && a->show && a->remove)
		rc = cli_usage("totp: --show or --remove, not both");
	return rc;
}

/* The user's current secret (NULL: none) into *secret, or an exit code if there is no user. */
static int
find_user(const struct serve_config *cfg, const char *path, const char *user, const char **secret)
{
	if (!user) {
		if (!cfg->password_hash)
			return cli_fail("totp: %s has no password in [serve]; set one first with "
					"okvm passwd%s",
					path, cfg->nusers ? " (or use --user NAME)" : "");
		*secret = cfg->totp_secret;
		return CLI_OK;
	}
	for (unsigned i = 0; i < cfg->nusers; i++) {
		if (!strcmp(cfg->users[i].name, user)) {
			*secret = cfg->users[i].totp_secret;
			return CLI_OK;
		}
	}
	return cli_fail("totp: no user %s in %s (add one with okvm passwd --user %s --role ROLE)",
			user, path, user);
}

static int
run(const char *path, const struct cli_account_args *a)
{
	struct serve_config cfg;
	serve_config_init(&cfg);
	int rc = serve_config_load(&cfg, path);
	if (rc) {
		serve_config_clear(&cfg);
		if (rc == -ENOENT)
			return cli_fail("totp: no config file %s; set a password first with okvm "
					"passwd",
					path);
		return cli_fail("totp: cannot use %s: %s", path, okvm_strerror(rc));
	}
	const char *account = a->user ? a->user : "admin", *old = NULL;
	char section[64] = "serve";
	if (a->user)
		snprintf(section, sizeof(section), "user.%s", a->user);
	rc = find_user(&cfg, path, a->user, &old);
	if (!rc && (a->show || a->remove) && !old)
		rc = cli_fail("totp: %s has no second factor (okvm totp%s%s makes one)", account,
			      a->user ? " --user " : "", a->user ? a->user : "");
	if (!rc && a->show) {
		print_secret(old, account);
	} else if (!rc) {
		char *secret = a->remove ? NULL : totp_secret_new();
		int err = serve_config_set_in(path, section, "totp", secret);
		if (err)
			rc = cli_fail("totp: cannot write %s: %s", path, okvm_strerror(err));
		else if (a->remove)
			printf("okvm: second factor of %s removed from %s\n", account, path);
		else {
			printf("okvm: %s second factor of %s stored in %s; scan it with an "
			       "authenticator app:\n",
			       old ? "new" : "a", account, path);
			print_secret(secret, account);
		}
		if (secret)
			memset(secret, 0, strlen(secret));
		free(secret);
	}
	serve_config_clear(&cfg);
	return rc;
}

int
cmd_totp(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	struct cli_account_args a = { 0 };
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	char *path = a.config ? strdup(a.config) : serve_config_default_path(false);
	if (!path)
		return cli_fail("totp: no config file; set a password first with okvm passwd");
	rc = run(path, &a);
	free(path);
	return rc;
}
