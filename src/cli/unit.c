/*
 * DESIGN: how a command gets its unit's CH9329 link: `--serial PATH`, `-d PATH` when PATH is
 * a tty path (starts with '/'), or `-d emu` (the in-process virtual unit, src/cli/vunit.c),
 * with `--baud N` (else detection). The link is opened without GET_INFO polling (commands are
 * short) and must be closed with cli_close_link(), which releases everything first.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/link.h"
#include "emu/emu.h"

static const char *
serial_path(const struct cli *cli)
{
	if (cli->serial)
		return cli->serial;
	if (cli->device && cli->device[0] == '/')
		return cli->device;
	return NULL;
}

int
cli_check_link(const struct cli *cli)
{
	if (serial_path(cli) || cli_is_emu(cli))
		return CLI_OK;
	if (cli->device)
		return cli_usage("-d %s: not supported here; use --serial PATH (a tty) or -d emu",
				 cli->device);
	return cli_fail("no unit given; use --serial PATH (e.g. /dev/ttyUSB0) or -d emu");
}

int
cli_open_link(struct cli *cli, struct okvm_link **out)
{
	int rc = cli_check_link(cli);
	if (rc)
		return rc;
	const char *path = serial_path(cli);
	struct okvm_link_config cfg = { .path = path, .baud = cli->baud, .info_poll_ms = 0 };
	if (cli->report_gap_ms == 0)
		cfg.no_gap = true;
	else if (cli->report_gap_ms > 0)
		cfg.report_gap_ms = cli->report_gap_ms;
	if (!path) {
		struct emu *e;
		rc = cli_emu(cli, &e);
		if (rc)
			return rc;
		cfg.path = path = emu_tty_path(e);
		cfg.modem_socket = emu_modem_socket(e);
		cfg.baud = cli_emu_baud(cli); /* known: no detection needed */
	}
	struct okvm_link *l = okvm_link_new(&cfg);
	int err = okvm_link_open(l);
	if (err < 0) {
		okvm_link_free(l);
		cli_emu_shutdown();
		return cli_fail("%s: %s", path, okvm_strerror(err));
	}
	*out = l;
	return CLI_OK;
}

void
cli_close_link(struct okvm_link *l)
{
	okvm_link_free(l); /* sends release-all and waits for its ACKs */
	cli_emu_shutdown(); /* after the release reached the virtual target */
}
