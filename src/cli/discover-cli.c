/*
 * DESIGN: the glue between the commands and discovery: map -d to a discovered unit, open its
 * video chip with messages a user can act on, and print the video-chip section that `okvm info`,
 * `okvm chip` and the server's state share. Runs on the main thread of the CLI.
 */
#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/discover-cli.h"
#include "emu/emu.h"
#include "okvm/log.h"
#include "okvm/models.h"

const char *
cli_usb_dir_name(enum okvm_usb_dir d)
{
	return d == OKVM_USB_TO_TARGET ? "target" : "host";
}

/* The in-process virtual unit, described as discovery would describe a Mini-KVM v1.9. */
static int
resolve_emu(struct cli *cli, struct okvm_unit_info *out)
{
	const struct okvm_model *m = okvm_model_get(OKVM_MODEL_MINI_KVM_V1_9);
	struct emu *e;
	int rc = cli_emu(cli, &e);
	if (rc)
		return rc;
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
	return CLI_OK;
}

static bool
is_emu_unit(const struct okvm_unit_info *u)
{
	return !strcmp(u->port_chain, "emu");
}

int
cli_resolve_unit(struct cli *cli, struct okvm_unit_info *out)
{
	const char *spec = cli->device;
	if (cli_is_emu(cli))
		return resolve_emu(cli, out);
	if (spec && !strncmp(spec, "frames:", 7))
		return cli_usage(
			"-d %s is a video-only unit: it has no keyboard/mouse link, video chip "
			"or USB switch",
			spec);
	struct okvm_unit_info *units;
	size_t n;
	int rc = okvm_discover_scan(NULL, &units, &n);
	if (rc < 0 && rc != -ENOENT)
		return cli_fail("cannot read %s: %s", okvm_discover_default_root(), strerror(-rc));
	if (rc < 0 || !n) {
		okvm_discover_free_units(units);
		return cli_fail("no Openterface unit found; use --serial PATH for a CH9329 on any "
				"tty, or -d emu for the built-in virtual unit");
	}
	int i = spec ? okvm_discover_match(units, n, spec) : 0;
	if (i < 0) {
		okvm_discover_free_units(units);
		return cli_fail("-d %s: no such unit (see `okvm list`)", spec);
	}
	if (!spec && n > 1)
		okvm_log(OKVM_LOG_INFO, "%zu units found; using %s (choose with -d)", n,
			 units[0].port_chain);
	*out = units[i];
	okvm_discover_free_units(units);
	return CLI_OK;
}

int
cli_open_chip(const struct okvm_unit_info *u, struct okvm_chip **out)
{
	if (is_emu_unit(u))
		return cli_emu_chip(NULL, out);
	if (!u->hidraw_node[0])
		return cli_fail("unit %s has no hidraw node (is usbhid bound? see "
				"docs/hardware-setup.md)",
				u->port_chain);
	int rc = okvm_chip_open(u->hidraw_node, NULL, out);
	if (rc == -EACCES || rc == -EPERM)
		return cli_fail("%s: permission denied; install dist/60-okvm.rules and join group "
				"plugdev (docs/hardware-setup.md)",
				u->hidraw_node);
	if (rc < 0)
		return cli_fail("%s: %s", u->hidraw_node, strerror(-rc));
	return CLI_OK;
}

static int
read_status(const struct okvm_unit_info *u, struct okvm_chip_status *st, const char **kind)
{
	struct okvm_chip *chip;
	int rc = cli_open_chip(u, &chip);
	if (rc)
		return rc;
	*kind = okvm_chip_kind_name(okvm_chip_kind(chip));
	rc = okvm_chip_get_status(chip, st);
	okvm_chip_free(chip);
	if (rc < 0)
		return cli_fail("%s: reading registers: %s", u->hidraw_node, strerror(-rc));
	return CLI_OK;
}

int
cli_print_chip_info(const struct okvm_unit_info *u, FILE *out)
{
	struct okvm_chip_status st;
	const char *kind;
	int rc = read_status(u, &st, &kind);
	if (rc)
		return rc;
	fprintf(out, "video chip:   %s on %s, firmware %s\n", kind, u->hidraw_node, st.firmware);
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
cli_chip_info_json(const struct okvm_unit_info *u, struct cJSON *parent)
{
	struct okvm_chip_status st;
	const char *kind;
	int rc = read_status(u, &st, &kind);
	if (rc)
		return rc;
	cJSON *c = cJSON_AddObjectToObject(parent, "video_chip");
	cJSON_AddStringToObject(c, "chip", kind);
	cJSON_AddStringToObject(c, "node", u->hidraw_node);
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
