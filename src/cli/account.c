/*
 * DESIGN: the command line of `okvm passwd` and `okvm totp`, the two commands that edit the
 * accounts in okvm.conf: --config FILE and --user NAME for both, and each command's own flags
 * out of one table, so the two parse, refuse and word their errors alike.
 */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"
#include "serve/config-file.h"

int
cli_account_args(const char *cmd, const char *flags, const char *hint, int argc, char **argv,
		 struct cli_account_args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "user", required_argument, NULL, 'u' },
		{ "role", required_argument, NULL, 'R' },
		{ "delete", no_argument, NULL, 'D' },
		{ "show", no_argument, NULL, 'S' },
		{ "remove", no_argument, NULL, 'X' },
		{ 0 },
	};
	int c, li = 0;
	optind = 1;
	opterr = 0;
	while ((li = 0, c = getopt_long(argc, argv, ":", opts, &li)) != -1) {
		int opt = c == ':' ? optopt : c;
		if (c != '?' && opt != 'c' && opt != 'u' && !strchr(flags, opt)) {
			while (opts[li].val != opt)
				li++; /* getopt sets no index for a missing value */
			return cli_usage("%s: unknown option '--%s' (%s)", cmd, opts[li].name,
					 hint); /* another command's flag */
		}
		switch (c) {
		case 'c': a->config = optarg; break;
		case 'u': a->user = optarg; break;
		case 'R': a->role = optarg; break;
		case 'D': a->del = true; break;
		case 'S': a->show = true; break;
		case 'X': a->remove = true; break;
		case ':': return cli_usage("%s: %s needs a value", cmd, argv[optind - 1]);
		default:
			return cli_usage("%s: unknown option '%s' (%s)", cmd, argv[optind - 1],
					 hint);
		}
	}
	if (optind < argc)
		return cli_usage("%s: unexpected argument '%s'", cmd, argv[optind]);
	if (a->user && !serve_user_name_valid(a->user))
		return cli_usage("%s: bad user name '%s' (1 to 32 of a-z 0-9 _ . -)", cmd, a->user);
	return CLI_OK;
}
