/*
 * DESIGN: the in-process virtual unit behind `-d emu`. One per process, started on first use
 * by whichever part needs it (the link, the video capture, the server) and stopped at exit by
 * cli_emu_shutdown(), after the link has released everything. It is configured from the global
 * --emu-* options. The emulator runs on its own thread; this file only owns its lifetime.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "emu/emu.h"
#include "okvm/error.h"

static struct emu *the_emu;

bool
cli_is_emu(const struct cli *cli)
{
	return cli->device && !strcmp(cli->device, "emu") && !cli->serial;
}

int
cli_emu(struct cli *cli, struct emu **out)
{
	if (the_emu) {
		*out = the_emu;
		return CLI_OK;
	}
	struct emu_config cfg;
	emu_config_init(&cfg);
	cfg.events_path = cli->emu_events;
	cfg.layout = cli->emu_layout ? cli->emu_layout : cli_layout(cli);
	cfg.poll_ms = cli->emu_poll_ms;
	cfg.baud = cli->baud > 0 ? cli->baud : EMU_DEFAULT_BAUD;
	struct emu *e = emu_new(&cfg);
	int rc = emu_start(e);
	if (rc < 0) {
		emu_free(e);
		return cli_fail("cannot start the virtual unit: %s", okvm_strerror(rc));
	}
	the_emu = e;
	*out = e;
	return CLI_OK;
}

int
cli_emu_baud(const struct cli *cli)
{
	return cli->baud > 0 ? cli->baud : EMU_DEFAULT_BAUD;
}

void
cli_emu_shutdown(void)
{
	if (!the_emu)
		return;
	emu_stop(the_emu);
	emu_free(the_emu);
	the_emu = NULL;
}
