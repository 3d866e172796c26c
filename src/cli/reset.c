/*
 * DESIGN: `okvm reset` (the CH9329's RESET command: it restarts with its stored settings) and
 * `okvm factory-reset` (RTS held 4 s on boards >= v1.9, else SET_DEFAULT_CFG; hardware.md 2.10).
 */
#include <stdio.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/link.h"

static int
run(struct cli *cli, int argc, char **argv, int (*op)(struct okvm_link *), const char *done)
{
	if (argc > 1)
		return cli_usage("%s: unexpected argument '%s'", argv[0], argv[1]);
	struct okvm_link *l;
	int rc = cli_open_link(cli, &l);
	if (rc)
		return rc;
	int err = op(l);
	cli_close_link(l);
	if (err < 0)
		return cli_fail("%s: %s", argv[0], okvm_strerror(err));
	puts(done);
	return CLI_OK;
}

int
cmd_reset(struct cli *cli, int argc, char **argv)
{
	return run(cli, argc, argv, okvm_link_reset, "the CH9329 restarted and answers");
}

int
cmd_factory_reset(struct cli *cli, int argc, char **argv)
{
	return run(cli, argc, argv, okvm_link_factory_reset,
		   "factory settings restored; the CH9329 answers at 9600 baud");
}
