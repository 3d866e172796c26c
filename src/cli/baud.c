/*
 * DESIGN: `okvm baud 9600|115200`: change the CH9329's stored speed (SET_PARA_CFG + RESET at
 * the old speed, then verify at the new one; hardware.md 2.10). The official apps use only
 * these two.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/link.h"

int
cmd_baud(struct cli *cli, int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("baud: give 9600 or 115200");
	int baud = !strcmp(argv[1], "9600") ? 9600 : !strcmp(argv[1], "115200") ? 115200 : 0;
	if (!baud)
		return cli_usage("baud: '%s' is not 9600 or 115200", argv[1]);
	struct okvm_link *l;
	int rc = cli_open_link(cli, &l);
	if (rc)
		return rc;
	int err = okvm_link_set_baud(l, baud);
	cli_close_link(l);
	if (err < 0)
		return cli_fail("baud: %s", okvm_strerror(err));
	printf("the CH9329 now runs at %d baud\n", baud);
	return CLI_OK;
}
