/*
 * DESIGN: `okvm power status|on|off|force-off|reset|cycle`: the target's power and reset buttons
 * through the modem lines of the USB-serial adapter on the unit's extension pins (or any tty,
 * --adapter / [power] device), a HID relay board, the switchable port's VBUS or Wake-on-LAN
 * (--wol MAC, [power] wol_mac; docs/power.md). The presses and
 * the LED are src/power/power.c; this file finds the adapter (okvm.conf [power], --adapter, the
 * virtual unit's pins with -d emu, else discovery: the unit's chain + ".4" with a tty) and prints
 * the outcome. SIGINT/SIGTERM end a press early, with the line released.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "lib/xalloc.h"
#include "okvm/discover.h"
#include "okvm/error.h"
#include "okvm/link.h"
#include "power/power.h"
#include "serve/serve.h"

struct power_opts {
	const char *adapter, *config, *wol;
};

void
cmd_power_help(FILE *out)
{
	fputs("usage: okvm power status|on|off|force-off|reset|cycle [--adapter TTY] [--config FILE]\n"
	      "       okvm power on --wol MAC\n"
	      "  The target's power and reset buttons through a USB-serial adapter's modem lines\n"
	      "  (DTR = power, RTS = reset, DSR = power LED by default; okvm.conf [power],\n"
	      "  docs/power.md), a USB HID relay board ([power] backend = hidrelay, device =\n"
	      "  /dev/hidrawN, power_channel, reset_channel), the switchable port's power\n"
	      "  ([power] backend = vbus), or Wake-on-LAN ([power] backend = wol, wol_mac =\n"
	      "  MAC, wol_address = 255.255.255.255:9; it can only wake: on).\n"
	      "  on: press power (0.5 s) unless the LED is lit; off: press power (0.5 s, the OS\n"
	      "  shuts down) unless the LED is dark; force-off: hold power 5 s; reset: press reset\n"
	      "  0.5 s; cycle: force-off, wait 3 s, on. Without an LED line the state is unknown\n"
	      "  and every press is made.\n"
	      "  --adapter TTY   the adapter or relay node (default: [power] device, else the\n"
	      "                  USB-serial adapter on the unit's extension pins; with -d emu\n"
	      "                  the virtual one)\n"
	      "  --config FILE   okvm.conf to read [power] from (default: the serve config)\n"
	      "  --wol MAC       on: send the Wake-on-LAN magic packet for MAC (AA:BB:CC:DD:EE:FF)\n"
	      "                  to wol_address instead of pressing (the LED, if any, is read\n"
	      "                  before and watched after)\n"
	      "  --json          {\"state\":...,\"before\":...,\"done\":...,\"message\":...}\n",
	      out);
}

static int
parse_opts(int argc, char **argv, struct power_opts *o, enum power_action *act, bool *status)
{
	static const struct option opts[] = {
		{ "adapter", required_argument, NULL, 'a' },
		{ "config", required_argument, NULL, 'c' },
		{ "wol", required_argument, NULL, 'w' },
		{ 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'a')
			o->adapter = optarg;
		else if (c == 'c')
			o->config = optarg;
		else if (c == 'w')
			o->wol = optarg;
		else if (optopt == 'w')
			return cli_usage(
				"power: --wol needs the target's MAC (--wol AA:BB:CC:DD:EE:FF)");
		else
			return cli_usage("power: unknown option '%s' (okvm power --help)",
					 argv[optind - 1]);
	}
	if (optind + 1 != argc)
		return cli_usage("power: give one of status, on, off, force-off, reset, cycle");
	*status = !strcmp(argv[optind], "status");
	if (!*status && power_action_parse(argv[optind], act) < 0)
		return cli_usage("power: '%s' is not status, on, off, force-off, reset or cycle",
				 argv[optind]);
	if (o->wol && (*status || *act != POWER_ACT_ON))
		return cli_usage("power: --wol wakes the target: it goes with on only");
	return CLI_OK;
}

static int
load_config(const char *config, struct power_config *pc)
{
	char *path = config ? strdup(config) : serve_config_default_path(false);
	char err[256];
	int rc = path ? power_config_load(pc, path, err, sizeof(err)) : 0;
	free(path);
	if (rc == -EINVAL || (rc < 0 && config))
		return cli_usage("%s", err);
	return CLI_OK;
}

/* Found nothing: said, unless the caller only looks (okvm serve). */
static bool quiet;
#define NOT_FOUND(...) (quiet ? CLI_FAIL : cli_fail(__VA_ARGS__))

/* The adapter on the unit's extension pins: the first tty at the unit's chain + ".4". */
static int
find_adapter(struct cli *cli, char **tty, char **modem)
{
	if (cli_is_emu(cli)) {
		struct emu *e;
		int rc = cli_emu(cli, &e);
		if (rc)
			return rc;
		if (!cli_emu_pins_tty())
			return NOT_FOUND("the virtual unit has nothing on its extension pins "
					 "(add --emu-pins usb-serial)");
		*tty = xstrdup(cli_emu_pins_tty());
		*modem = xstrdup(cli_emu_pins_modem_socket());
		return CLI_OK;
	}
	struct okvm_unit_info *units;
	size_t n;
	int rc = okvm_discover_scan(NULL, &units, &n);
	if (rc < 0 || !n) {
		if (!rc)
			okvm_discover_free_units(units);
		return NOT_FOUND("no unit found, so no adapter on its pins (give --adapter "
				 "TTY, or -d emu --emu-pins usb-serial)");
	}
	int i = cli->device ? okvm_discover_match(units, n, cli->device) : 0;
	if (i < 0) {
		okvm_discover_free_units(units);
		return NOT_FOUND("no unit '%s' (okvm list)", cli->device);
	}
	for (size_t k = 0; k < units[i].n_ext && !*tty; k++)
		if (!strncmp(units[i].ext[k].node, "/dev/tty", 8))
			*tty = xstrdup(units[i].ext[k].node);
	char chain[32];
	snprintf(chain, sizeof(chain), "%s", units[i].port_chain);
	okvm_discover_free_units(units);
	if (!*tty)
		return NOT_FOUND("no USB-serial adapter on the extension pins of unit %s "
				 "(okvm list shows what is there; --adapter TTY for another one)",
				 chain);
	return CLI_OK;
}

static int
print_result(struct cli *cli, bool status, enum power_state st, const struct power_result *r,
	     int rc)
{
	if (cli->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "state", power_state_name(status ? st : r->after));
		if (!status) {
			cJSON_AddStringToObject(o, "before", power_state_name(r->before));
			cJSON_AddBoolToObject(o, "done", r->done);
			cJSON_AddStringToObject(o, "message", r->msg);
		}
		if (rc < 0)
			cJSON_AddStringToObject(o, "error", r->msg);
		char *s = cJSON_PrintUnformatted(o);
		puts(s);
		free(s);
		cJSON_Delete(o);
	} else if (status) {
		printf("power: %s\n", power_state_name(st));
	} else if (!rc) {
		printf("%s\n", r->msg);
	}
	if (rc < 0)
		return cli_fail("power: %s", r->msg);
	return CLI_OK;
}

/* VBUS from the command line: only the pulse lasts beyond this process (the port's power comes
 * back when okvm closes the unit's serial port). */
static int
run_vbus(struct cli *cli, bool status, enum power_action act, const struct power_config *pc)
{
	if (status) {
		printf("power: unknown (power via the switchable port has no LED line)\n");
		return CLI_OK;
	}
	if (act != POWER_ACT_RESET && act != POWER_ACT_CYCLE)
		return cli_fail(
			"power: via the switchable port, %s lasts only while okvm holds the "
			"unit's serial port: use okvm power cycle, or okvm serve",
			power_action_name(act));
	struct okvm_link *l;
	int rc = cli_open_link(cli, &l);
	if (rc)
		return rc;
	rc = okvm_link_dtr_pulse(l, pc->cycle_off_ms);
	cli_close_link(l);
	if (rc < 0)
		return cli_fail("power: switchable port: %s", okvm_strerror(rc));
	printf("%s: done (switchable port unpowered for %d ms)\n", power_action_name(act),
	       pc->cycle_off_ms);
	return CLI_OK;
}

/* The serial console: [power] console, else the power adapter (serial backend), else the
 * USB-serial adapter on the pins, looked for quietly (no console is no error here). */
static void
find_console(struct cli *cli, struct power_config *pc)
{
	if (pc->console_off || pc->console)
		return;
	if (pc->backend == POWER_BACKEND_SERIAL && pc->device) {
		pc->console = xstrdup(pc->device);
		pc->console_modem = pc->modem_socket ? xstrdup(pc->modem_socket) : NULL;
		return;
	}
	if (pc->backend == POWER_BACKEND_SERIAL)
		return; /* no adapter at all: the lookup said so already */
	bool was = quiet;
	quiet = true;
	if (find_adapter(cli, &pc->console, &pc->console_modem) != CLI_OK) {
		free(pc->console);
		free(pc->console_modem);
		pc->console = pc->console_modem = NULL;
	}
	quiet = was;
}

int
cli_power_adapter(struct cli *cli, const char *config, struct power_config *pc, bool look)
{
	int rc = load_config(config, pc);
	bool by_wol = look && power_wakes_by_wol(pc);
	quiet = look;
	if (!rc && !pc->device && pc->backend == POWER_BACKEND_SERIAL) {
		rc = find_adapter(cli, &pc->device, &pc->modem_socket);
		if (rc == CLI_FAIL && by_wol) { /* no adapter: the packet alone, without the LED */
			pc->backend = POWER_BACKEND_WOL;
			rc = CLI_OK;
		}
	}
	if (!rc)
		find_console(cli, pc);
	quiet = false;
	return rc;
}

int
cmd_power(struct cli *cli, int argc, char **argv)
{
	struct power_opts o = { 0 };
	enum power_action act = POWER_ACT_ON;
	bool status = false;
	int rc = parse_opts(argc, argv, &o, &act, &status);
	struct power_config pc;
	power_config_init(&pc);
	if (!rc)
		rc = load_config(o.config, &pc);
	if (!rc && o.wol) {
		if (power_parse_mac(o.wol, pc.wol_mac) < 0)
			rc = cli_usage("power: --wol '%s' is not the target's MAC address (six hex "
				       "bytes: AA:BB:CC:DD:EE:FF)",
				       o.wol);
		pc.wol = pc.wol_first = true;
	}
	if (!rc && pc.backend == POWER_BACKEND_WOL && !pc.wol)
		rc = cli_usage(
			"power: backend wol: Wake-on-LAN needs the target's MAC: set wol_mac "
			"in [power] (AA:BB:CC:DD:EE:FF), or give --wol MAC");
	if (!rc && pc.backend == POWER_BACKEND_WOL && (status || act != POWER_ACT_ON)) {
		power_config_clear(&pc);
		if (status) {
			printf("power: unknown (Wake-on-LAN has no power LED to read)\n");
			return CLI_OK;
		}
		return cli_usage("power: Wake-on-LAN can only wake the target: %s needs a power "
				 "switch (backend serial or hidrelay in [power], docs/power.md)",
				 power_action_name(act));
	}
	if (!rc && pc.backend == POWER_BACKEND_VBUS) {
		rc = run_vbus(cli, status, act, &pc);
		power_config_clear(&pc);
		return rc;
	}
	if (!rc && o.adapter) {
		free(pc.device);
		pc.device = strdup(o.adapter);
	}
	if (!rc && !pc.device && pc.backend == POWER_BACKEND_SERIAL) {
		bool by_wol = power_wakes_by_wol(&pc);
		quiet = by_wol; /* no adapter: the packet alone, without the LED */
		rc = find_adapter(cli, &pc.device, &pc.modem_socket);
		quiet = false;
		if (rc == CLI_FAIL && by_wol) {
			pc.backend = POWER_BACKEND_WOL;
			rc = CLI_OK;
		}
	}
	if (rc) {
		power_config_clear(&pc);
		return rc;
	}
	cli_install_signals();
	struct power_result r = { 0 };
	enum power_state st = POWER_UNKNOWN;
	if (status)
		rc = power_status(&pc, &st, r.msg, sizeof(r.msg));
	else
		rc = power_run(&pc, act, &cli_stop_signal, &r);
	power_config_clear(&pc);
	return print_result(cli, status, st, &r, rc);
}
