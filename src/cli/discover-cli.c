/*
 * DESIGN: the glue between the commands and the unit's video chip: open it (the unit layer,
 * okvm_unit_open_chip, finds it; src/cli/unit.c picks the unit) with messages a user can act on, and print the video-chip section that `okvm info`,
 * `okvm chip` and the server's state share. Runs on the main thread of the CLI.
 */
#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/discover-cli.h"
#include "okvm/unit.h"
#include "okvm/log.h"
#include "okvm/models.h"

const char *
cli_usb_dir_name(enum okvm_usb_dir d)
{
	return d == OKVM_USB_TO_TARGET ? "target" : "host";
}

int
cli_open_chip(struct okvm_unit *unit, struct okvm_chip **out)
{
	const struct okvm_unit_info *u = okvm_unit_info(unit);
	const char *node = okvm_unit_chip_path(unit);
	int rc = okvm_unit_open_chip(unit);
	if (rc == -ENODEV && u)
		return cli_fail("unit %s has no hidraw node (is usbhid bound? see "
				"docs/hardware-setup.md)",
				u->port_chain);
	if (rc == -EACCES || rc == -EPERM)
		return cli_fail("%s: permission denied; install dist/60-okvm.rules and join group "
				"plugdev (docs/hardware-setup.md)",
				node);
	if (rc < 0 && rc != -EALREADY)
		return cli_fail("%s: %s", node, strerror(-rc));
	*out = okvm_unit_chip(unit); /* the unit's: freed with it */
	return CLI_OK;
}

static int
read_status(struct okvm_unit *u, struct okvm_chip_status *st, const char **kind)
{
	struct okvm_chip *chip;
	int rc = cli_open_chip(u, &chip);
	if (rc)
		return rc;
	*kind = okvm_chip_kind_name(okvm_chip_kind(chip));
	rc = okvm_chip_get_status(chip, st);
	if (rc < 0)
		return cli_fail("%s: reading registers: %s", okvm_unit_chip_path(u), strerror(-rc));
	return CLI_OK;
}

int
cli_print_chip_info(struct okvm_unit *u, FILE *out)
{
	struct okvm_chip_status st;
	const char *kind;
	int rc = read_status(u, &st, &kind);
	if (rc)
		return rc;
	fprintf(out, "video chip:   %s on %s, firmware %s\n", kind, okvm_unit_chip_path(u),
		st.firmware);
	if (st.signal)
		fprintf(out, "hdmi:         signal, %dx%d @ %.2f Hz, pixel clock %.2f MHz\n",
			st.width, st.height, st.fps, st.pixel_clock);
	else
		fprintf(out, "hdmi:         no signal\n");
	if (st.has_switch)
		fprintf(out, "usb switch:   %s\n", cli_usb_dir_name(st.usb));
	if (st.has_toggle)
		fprintf(out, "toggle:       %s\n", cli_usb_dir_name(st.toggle));
	return CLI_OK;
}

int
cli_chip_info_json(struct okvm_unit *u, struct cJSON *parent)
{
	struct okvm_chip_status st;
	const char *kind;
	int rc = read_status(u, &st, &kind);
	if (rc)
		return rc;
	cJSON *c = cJSON_AddObjectToObject(parent, "video_chip");
	cJSON_AddStringToObject(c, "chip", kind);
	cJSON_AddStringToObject(c, "node", okvm_unit_chip_path(u));
	cJSON_AddStringToObject(c, "firmware", st.firmware);
	cJSON_AddBoolToObject(c, "signal", st.signal);
	cJSON_AddNumberToObject(c, "width", st.width);
	cJSON_AddNumberToObject(c, "height", st.height);
	cJSON_AddNumberToObject(c, "fps", st.fps);
	cJSON_AddNumberToObject(c, "pixel_clock_mhz", st.pixel_clock);
	if (st.has_switch)
		cJSON_AddStringToObject(c, "usb_switch", cli_usb_dir_name(st.usb));
	if (st.has_toggle)
		cJSON_AddStringToObject(c, "toggle", cli_usb_dir_name(st.toggle));
	return CLI_OK;
}
