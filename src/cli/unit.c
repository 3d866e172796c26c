/*
 * DESIGN: how a command gets its unit's CH9329 link: `--serial PATH`, `-d PATH` when PATH is
 * a tty path (starts with '/'), or `-d emu` (the in-process virtual unit, src/cli/vunit.c),
 * with `--baud N` (else detection). The link is opened without GET_INFO polling (commands are
 * short) and must be closed with cli_close_link(), which releases everything first.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/link.h"
#include "okvm/discover.h"
#include "okvm/models.h"
#include "cli/discover-cli.h"
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
	if (cli->device && !strncmp(cli->device, "frames:", 7))
		return cli_usage("-d %s is a video-only unit: %s", cli->device,
				 okvm_strerror(-OKVM_E_VIDEO_ONLY));
	return CLI_OK; /* anything else is resolved (and may fail) when the link opens */
}

/* Where the CH9329 is: --serial/-d PATH as given, the virtual unit, or discovery (-d N,
 * -d PORTCHAIN, or the first unit found). */
static int
locate(struct cli *cli, struct okvm_link_config *cfg, char *buf, size_t size)
{
	const char *path = serial_path(cli);
	if (path) {
		cfg->path = path;
		return CLI_OK;
	}
	if (cli_is_emu(cli)) {
		struct emu *e;
		int rc = cli_emu(cli, &e);
		if (rc)
			return rc;
		cfg->path = emu_tty_path(e);
		cfg->modem_socket = emu_modem_socket(e);
		cfg->baud = cli_emu_baud(cli); /* known: no detection needed */
		return CLI_OK;
	}
	struct okvm_unit_info u;
	int rc = cli_resolve_unit(cli, &u);
	if (rc)
		return rc;
	if (!u.serial_node[0])
		return cli_fail("unit %s has no serial port: is the ch341 driver loaded, or did "
				"brltty take it? (docs/hardware-setup.md)",
				u.port_chain);
	snprintf(buf, size, "%s", u.serial_node);
	cfg->path = buf;
	if (!cfg->baud)
		cfg->baud = okvm_model_fixed_baud(&u); /* 0 (detect) unless the chip's is fixed */
	return CLI_OK;
}

int
cli_open_link(struct cli *cli, struct okvm_link **out)
{
	int rc = cli_check_link(cli);
	if (rc)
		return rc;
	char buf[64];
	struct okvm_link_config cfg = { .baud = cli->baud, .info_poll_ms = 0 };
	if (cli->report_gap_ms == 0)
		cfg.no_gap = true;
	else if (cli->report_gap_ms > 0)
		cfg.report_gap_ms = cli->report_gap_ms;
	cfg.no_pipeline = cli->no_pipeline;
	rc = locate(cli, &cfg, buf, sizeof(buf));
	if (rc)
		return rc;
	const char *path = cfg.path;
	struct okvm_link *l = okvm_link_new(&cfg);
	unsigned logged = cli_errors_logged;
	int err = okvm_link_open(l);
	if (err < 0) {
		okvm_link_free(l);
		cli_emu_shutdown();
		if (cli_errors_logged != logged)
			return CLI_FAIL; /* the library has said what went wrong, in one line */
		if (err == -ETIMEDOUT)
			return cli_fail(
				"%s: the CH9329 does not answer at %s (wrong port, or the unit "
				"is unpowered; try `okvm factory-reset`)",
				path, cfg.baud ? "that baud" : "9600 or 115200");
		return cli_fail("%s: %s", path, okvm_strerror(err));
	}
	*out = l;
	return CLI_OK;
}

void
cli_close_link(struct okvm_link *l)
{
	okvm_link_free(l);  /* sends release-all and waits for its ACKs */
	cli_emu_shutdown(); /* after the release reached the virtual target */
}
