/*
 * DESIGN: `okvm switch host|target|toggle|follow|status [--no-pulse]`. The decision logic is
 * okvm_usb_switch_*() (src/lib/chip/usbswitch.c), shared with the server; this file only
 * gathers what a unit has: the MS2109 register (Mini-KVM), the DTR pulse on the unit's serial
 * port, or the CH32V208's serial command 0x17 (KVM-Go/VGA).
 * Both serial-port actions, the DTR pulse and the 0x17 command, go through the unit's own link
 * (okvm_unit_connect, opened only when one is needed), the one way a unit's CH9329 is opened.
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
#include "okvm/unit.h"

#define FOLLOW_PERIOD_MS 1000

/* What the switch callbacks get: the unit, and how `okvm list` describes it. */
struct switch_unit {
	struct okvm_unit *unit;
	struct okvm_unit_info info;
};

static void
wait_ms(int ms)
{
	poll(NULL, 0, ms); /* a period, not a synchronisation: nothing to wait for */
}

/* The unit's own link (okvm_unit_connect), opened on first use: a Mini-KVM's `switch status`
 * and `--no-pulse` read and write the MS2109 only and leave the serial port alone. */
static int
unit_link(struct switch_unit *su, bool lines_only, struct okvm_link **out)
{
	int rc = okvm_unit_link(su->unit) ? 0
		 : lines_only             ? okvm_unit_connect_lines(su->unit)
					  : okvm_unit_connect(su->unit);
	if (rc == -ENODEV && !okvm_unit_serial_path(su->unit)[0])
		okvm_log(OKVM_LOG_ERROR,
			 "unit %s has no serial port: is the ch341 driver loaded, "
			 "or did brltty take it? (docs/hardware-setup.md)",
			 su->info.port_chain);
	*out = okvm_unit_link(su->unit);
	return rc;
}

static int
dtr_pulse(void *ud, int ms)
{
	struct okvm_link *l;
	/* The pulse is the CH340's DTR line alone: the CH9329 need not answer (hardware.md 2.11). */
	int rc = unit_link(ud, true, &l);
	return rc < 0 ? rc : okvm_link_dtr_pulse(l, ms);
}

static int
no_pulse(void *ud, int ms)
{
	(void)ud;
	(void)ms;
	return 0;
}

/* CH32V208: command 0x17 on the unit's link, at the model's fixed baud (the unit's, unless
 * --baud says otherwise): no detection. */
static int
serial_switch(void *ud, bool query, enum okvm_usb_dir dir, enum okvm_usb_dir *now)
{
	struct okvm_link *l;
	int rc = unit_link(ud, false, &l);
	return rc < 0 ? rc : okvm_link_usb_switch(l, query ? OKVM_USB_QUERY : dir, now);
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
	struct switch_unit su;
	int rc = cli_unit_discovered(cli, &su.unit, &su.info);
	if (rc)
		return rc;
	struct okvm_usb_switch sw = { .ud = &su, .dtr_pulse = pulse ? dtr_pulse : no_pulse };
	if (su.info.variant == OKVM_VARIANT_MINI_KVM)
		rc = cli_open_chip(su.unit, &sw.chip);
	else
		sw.serial_switch = serial_switch;
	if (!rc)
		rc = run(&sw, verb, &su.info);
	okvm_unit_free(su.unit); /* its link and its chip */
	return rc;
}
