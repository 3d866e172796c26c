/*
 * DESIGN: `okvm switch host|target|toggle|follow|status [--no-pulse]`. The decision logic is
 * okvm_usb_switch_*() (src/lib/chip/usbswitch.c), shared with the server; this file only
 * gathers what a unit has: the MS2109 register (Mini-KVM), the DTR pulse on the unit's serial
 * port, or the CH32V208's serial command 0x17 (KVM-Go/VGA).
 * The DTR pulse goes through the serial module, the 0x17 command through the link.
 * `follow` mirrors the hardware toggle once a second, as the official app does, until
 * SIGINT/SIGTERM.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/discover-cli.h"
#include "okvm/chip.h"
#include "okvm/log.h"
#include "okvm/models.h"

#include "okvm/link.h"
#include "okvm/serial.h"
#include "okvm/unit.h"

#define FOLLOW_PERIOD_MS 1000

static void
wait_ms(int ms)
{
	poll(NULL, 0, ms); /* a period, not a synchronisation: nothing to wait for */
}

static int
dtr_pulse(void *ud, int ms)
{
	const struct okvm_unit_info *u = ud;
	struct okvm_serial *s;
	int rc = okvm_serial_open(u->serial_node, 9600, &s);
	if (rc < 0)
		return rc;
	if (!strcmp(u->port_chain, "emu")) /* a pty: its modem lines go to the virtual unit */
		okvm_serial_set_modem_socket(s, cli_emu_modem_socket());
	rc = okvm_serial_set_dtr(s, true);
	if (rc == 0) {
		wait_ms(ms);
		rc = okvm_serial_set_dtr(s, false);
	}
	okvm_serial_close(s);
	return rc;
}

static int
no_pulse(void *ud, int ms)
{
	(void)ud;
	(void)ms;
	return 0;
}

static int
serial_switch(void *ud, bool query, enum okvm_usb_dir dir, enum okvm_usb_dir *now)
{
	const struct okvm_unit_info *u = ud;
	/* a CH32V208's speed is fixed: no detection */
	struct okvm_link_config cfg = { .path = u->serial_node, .baud = okvm_model_fixed_baud(u) };
	struct okvm_link *l = okvm_link_new(&cfg);
	int rc = okvm_link_open(l);
	if (rc == 0)
		rc = okvm_link_usb_switch(l, query ? OKVM_USB_QUERY : dir, now);
	okvm_link_free(l);
	return rc;
}

static int
report(const char *what, int rc)
{
	if (rc == -ENOSYS)
		return cli_fail("%s: not available in this build", what);
	if (rc == -ENOTSUP)
		return cli_fail("%s: this unit has no software USB switch (Mini-KVM v1.6: use the "
				"toggle switch)",
				what);
	return cli_fail("%s: %s", what, strerror(-rc));
}

static int
status(const struct okvm_usb_switch *sw)
{
	enum okvm_usb_dir now, toggle;
	int rc = okvm_usb_switch_get(sw, &now);
	if (rc < 0)
		return report("switch status", rc);
	printf("usb switch: %s\n", cli_usb_dir_name(now));
	if (sw->chip && okvm_chip_get_toggle(sw->chip, &toggle) == 0)
		printf("toggle: %s\n", cli_usb_dir_name(toggle));
	return CLI_OK;
}

static int
follow(const struct okvm_usb_switch *sw)
{
	int last = -1;
	if (!sw->chip)
		return report("switch follow", -ENOTSUP);
	while (!cli_stop_signal) {
		int rc = okvm_usb_switch_follow_step(sw, &last);
		if (rc < 0)
			return report("switch follow", rc);
		if (rc > 0)
			printf("usb switch: %s\n", cli_usb_dir_name((enum okvm_usb_dir)last));
		fflush(stdout);
		wait_ms(FOLLOW_PERIOD_MS);
	}
	return CLI_OK;
}

static int
run(struct okvm_usb_switch *sw, const char *verb, const struct okvm_unit_info *u)
{
	enum okvm_usb_dir dir;
	if (!strcmp(verb, "status"))
		return status(sw);
	if (!strcmp(verb, "follow"))
		return follow(sw);
	if (!strcmp(verb, "toggle")) {
		int rc = okvm_usb_switch_get(sw, &dir);
		if (rc < 0)
			return report("switch toggle", rc);
		dir = dir == OKVM_USB_TO_HOST ? OKVM_USB_TO_TARGET : OKVM_USB_TO_HOST;
	} else {
		dir = !strcmp(verb, "host") ? OKVM_USB_TO_HOST : OKVM_USB_TO_TARGET;
	}
	int rc = okvm_usb_switch_set(sw, dir);
	if (rc == -ENOSYS && sw->chip)
		return cli_fail(
			"switch: routed to %s, but this build cannot pulse DTR to re-enumerate "
			"the device; replug it, or use --no-pulse",
			cli_usb_dir_name(dir));
	if (rc < 0)
		return report("switch", rc);
	printf("usb switch: %s\n", cli_usb_dir_name(dir));
	if (u->variant == OKVM_VARIANT_MINI_KVM)
		okvm_log(OKVM_LOG_INFO,
			 "on Mini-KVM v1.6 hardware only the toggle routes the port");
	return CLI_OK;
}

static bool
valid_verb(const char *v)
{
	static const char *const verbs[] = { "host", "target", "toggle", "follow", "status" };
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(v, verbs[i]))
			return true;
	return false;
}

int
cmd_switch(struct cli *cli, int argc, char **argv)
{
	bool pulse = true;
	const char *verb = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-pulse"))
			pulse = false;
		else if (!verb && valid_verb(argv[i]))
			verb = argv[i];
		else
			return cli_usage(
				"switch: unexpected '%s' (host|target|toggle|follow|status)",
				argv[i]);
	}
	if (!verb)
		verb = "status";
	struct okvm_unit_info u;
	struct okvm_unit *unit;
	int rc = cli_unit_discovered(cli, &unit, &u);
	if (rc)
		return rc;
	struct okvm_usb_switch sw = { .ud = &u, .dtr_pulse = pulse ? dtr_pulse : no_pulse };
	if (u.variant == OKVM_VARIANT_MINI_KVM)
		rc = cli_open_chip(unit, &sw.chip);
	else
		sw.serial_switch = serial_switch;
	if (!rc)
		rc = run(&sw, verb, &u);
	okvm_unit_free(unit); /* and its chip */
	return rc;
}
