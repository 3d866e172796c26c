/*
 * DESIGN: how a command gets its unit's CH9329 link: `--serial PATH`, `-d PATH` when PATH is
 * a tty path (starts with '/'), `-d emu` (the in-process virtual unit, src/cli/vunit.c, handed
 * to the library as parts), or discovery (-d N, -d PORTCHAIN, the first unit found), with
 * `--baud N` (else the model's fixed baud or detection). The library's unit layer
 * (okvm/unit.h) resolves and opens; this file turns its errors into the messages a user acts
 * on. The link is opened without GET_INFO polling (commands are short). cli_open_unit() keeps
 * the unit, so a command that also reads the video chip (`okvm info`) resolves it once (one
 * scan, one "N units found" line); cli_open_link() hands over just the link. Either is closed
 * with its cli_close_*(), which releases everything first.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/link.h"
#include "okvm/discover.h"
#include "okvm/models.h"
#include "okvm/unit.h"
#include "emu/emu.h"
int
cli_check_link(const struct cli *cli)
{
	if (cli->device && !strncmp(cli->device, "frames:", 7))
		return cli_usage("-d %s is a video-only unit: %s", cli->device,
				 okvm_strerror(-OKVM_E_VIDEO_ONLY));
	return CLI_OK; /* anything else is resolved (and may fail) when the link opens */
}

/* -ENOENT from discovery: no unit at all, or none that -d names. */
static int
no_unit(const struct cli *cli)
{
	struct okvm_unit_info *units;
	size_t n = 0;
	if (cli->device && okvm_discover_scan(NULL, &units, &n) == 0)
		okvm_discover_free_units(units);
	if (n)
		return cli_fail("-d %s: no such unit (see `okvm list`)", cli->device);
	return cli_fail("no Openterface unit found; use --serial PATH for a CH9329 on any tty, or "
			"-d emu for the built-in virtual unit");
}

static int
unit_new(struct cli *cli, struct okvm_unit_spec *spec, bool serial, struct okvm_unit **out)
{
	spec->device = cli->device;
	spec->serial = serial ? cli->serial : NULL;
	spec->baud = cli->baud;
	if (cli_is_emu(cli) && !cli->serial) {
		struct emu *e;
		int rc = cli_emu(cli, &e);
		if (rc)
			return rc;
		spec->parts.tty = emu_tty_path(e);
		spec->parts.modem_socket = emu_modem_socket(e);
		spec->parts.baud = cli_emu_baud(cli); /* known: no detection needed */
		if ((rc = cli_emu_chip(cli, &spec->parts.chip)) ||
		    (rc = cli_emu_capture(cli, &spec->parts.capture))) {
			okvm_chip_free(spec->parts.chip);
			return rc;
		}
	}
	int rc = okvm_unit_new(spec, out);
	if (rc == -ENOENT)
		return no_unit(cli);
	if (rc < 0)
		return cli_fail("cannot read %s: %s", okvm_discover_default_root(), strerror(-rc));
	return CLI_OK;
}

int
cli_unit_new(struct cli *cli, struct okvm_unit_spec *spec, struct okvm_unit **out)
{
	return unit_new(cli, spec, true, out);
}

/* The in-process virtual unit, described as discovery would describe a Mini-KVM v1.9. */
static void
describe_emu(struct okvm_unit_info *out)
{
	const struct okvm_model *m = okvm_model_get(OKVM_MODEL_MINI_KVM_V1_9);
	struct emu *e;
	cli_emu(NULL, &e); /* running: the unit's parts are its */
	memset(out, 0, sizeof(*out));
	out->index = 1;
	out->variant = m->variant;
	snprintf(out->port_chain, sizeof(out->port_chain), "emu");
	snprintf(out->serial_node, sizeof(out->serial_node), "%s", emu_tty_path(e));
	snprintf(out->hidraw_node, sizeof(out->hidraw_node), "(virtual)");
	snprintf(out->product, sizeof(out->product), "Openterface (virtual unit)");
	out->video_vid = m->video.vid;
	out->video_pid = m->video.pid;
	out->serial_vid = m->serial.vid;
	out->serial_pid = m->serial.pid;
	out->behind_hub = true;
}

int
cli_unit_discovered(struct cli *cli, struct okvm_unit **out, struct okvm_unit_info *shown)
{
	if (cli->device && !strncmp(cli->device, "frames:", 7))
		return cli_usage(
			"-d %s is a video-only unit: it has no keyboard/mouse link, video chip "
			"or USB switch",
			cli->device);
	struct okvm_unit_spec spec = { 0 };
	struct okvm_unit *u;
	int rc = unit_new(cli, &spec, false, &u); /* --serial names no video chip */
	if (rc)
		return rc;
	const struct okvm_unit_info *ui = okvm_unit_info(u);
	if (ui) {
		*shown = *ui;
	} else if (cli_is_emu(cli)) {
		describe_emu(shown);
	} else {
		okvm_unit_free(u); /* a path that is no unit's node */
		return no_unit(cli);
	}
	*out = u;
	return CLI_OK;
}

/* The message for okvm_unit_connect()'s error, unless the library has logged one already. */
static int
link_error(const struct okvm_unit *u, int err, bool logged)
{
	const char *path = okvm_unit_serial_path(u);
	const struct okvm_unit_info *ui = okvm_unit_info(u);
	if (err == -ENODEV && ui && !path[0])
		return cli_fail("unit %s has no serial port: is the ch341 driver loaded, or did "
				"brltty take it? (docs/hardware-setup.md)",
				ui->port_chain);
	if (logged)
		return CLI_FAIL; /* the library has said what went wrong, in one line */
	if (err == -ETIMEDOUT)
		return cli_fail("%s: the CH9329 does not answer at %s (wrong port, or the unit "
				"is unpowered; try `okvm factory-reset`)",
				path, okvm_unit_baud(u) ? "that baud" : "9600 or 115200");
	return cli_fail("%s: %s", path, okvm_strerror(err));
}

int
cli_open_unit(struct cli *cli, struct okvm_unit **out)
{
	int rc = cli_check_link(cli);
	if (rc)
		return rc;
	struct okvm_unit_spec spec = { .link = { .info_poll_ms = 0 } };
	if (cli->report_gap_ms == 0)
		spec.link.no_gap = true;
	else if (cli->report_gap_ms > 0)
		spec.link.report_gap_ms = cli->report_gap_ms;
	spec.link.no_pipeline = cli->no_pipeline;
	struct okvm_unit *u;
	if ((rc = cli_unit_new(cli, &spec, &u)))
		return rc;
	unsigned logged = cli_errors_logged;
	int err = okvm_unit_connect(u);
	if (err < 0) {
		rc = link_error(u, err, cli_errors_logged != logged);
		okvm_unit_free(u);
		cli_emu_shutdown();
		return rc;
	}
	*out = u;
	return CLI_OK;
}

void
cli_close_unit(struct okvm_unit *u)
{
	okvm_unit_free(u);  /* the link first: it sends release-all and waits for its ACKs */
	cli_emu_shutdown(); /* after the release reached the virtual target */
}

int
cli_open_link(struct cli *cli, struct okvm_link **out)
{
	struct okvm_unit *u = NULL;
	int rc = cli_open_unit(cli, &u);
	if (rc)
		return rc;
	*out = okvm_unit_take_link(u); /* a short command follows no re-plug */
	okvm_unit_free(u);
	return CLI_OK;
}

void
cli_close_link(struct okvm_link *l)
{
	okvm_link_free(l);  /* sends release-all and waits for its ACKs */
	cli_emu_shutdown(); /* after the release reached the virtual target */
}
