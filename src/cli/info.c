/*
 * DESIGN: `okvm info`: what the keyboard/mouse chip reports. GET_INFO (version, target
 * connected, Num/Caps/Scroll) and GET_PARA_CFG (working mode, USB VID:PID), plus the baud the
 * link found, and for a discovered or virtual unit the video chip's registers (firmware, HDMI
 * signal and mode, USB switch, toggle). Text for people, one JSON object with --json (cJSON).
 * The unit is resolved once (cli_open_unit): its link and its video chip are the same unit's.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/discover-cli.h"
#include "okvm/error.h"
#include "okvm/link.h"
#include "okvm/unit.h"

#define INFO_PROBE_REPORTS 16

struct info {
	struct okvm_ch9329_info chip;
	struct okvm_ch9329_params params;
	bool have_params;
	bool unknown; /* the chip never answers GET_INFO (link state info_unknown) */
	int baud;
	struct okvm_link_stats probe; /* after a few empty reports: DATAFLIP, the poll interval */
	bool probed;
	struct okvm_unit *unit; /* the unit is known (discovery or -d emu): its video chip too */
};

/* Working modes, CH9329-D "Operating mode configuration" (hardware.md 2.8). */
static const char *
mode_name(uint8_t mode)
{
	static const char *const names[] = { "keyboard + mouse + custom HID", "keyboard only",
					     "keyboard + mouse", "custom HID only" };
	return names[mode & 0x03];
}

void
cli_ch9329_version_text(uint8_t v, char *out, size_t cap)
{
	if (v >= 0x30 && v <= 0x39)
		snprintf(out, cap, "V1.%d", v - 0x30);
	else
		snprintf(out, cap, "0x%02X", v);
}

static void
print_text(const struct info *in)
{
	char ver[16];
	cli_ch9329_version_text(in->chip.version, ver, sizeof(ver));
	if (in->unknown) {
		printf("chip:    CH9329 (version unknown: GET_INFO is not answered)\n");
		printf("target:  unknown\nleds:    unknown\n");
	} else {
		printf("chip:    CH9329 %s\n", ver);
		printf("target:  %s\n", in->chip.target_connected ? "connected" : "not connected");
		printf("leds:    num %s, caps %s, scroll %s\n",
		       in->chip.leds & OKVM_LED_NUM ? "on" : "off",
		       in->chip.leds & OKVM_LED_CAPS ? "on" : "off",
		       in->chip.leds & OKVM_LED_SCROLL ? "on" : "off");
	}
	printf("baud:    %d\n", in->baud);
	if (in->probed) {
		if (in->probe.flip_pacing)
			printf("dataflip: toggles; the target polls about every %.0f ms\n",
			       in->probe.target_poll_ms < 1 ? 1 : in->probe.target_poll_ms);
		else
			printf("dataflip: %s\n",
			       in->probe.flip_absent
				       ? "none seen (pacing by the fixed gap)"
				       : "unknown (no report was taken by the target)");
	}
	if (!in->have_params)
		return;
	printf("mode:    %d, %s%s\n", in->params.mode & 0x03, mode_name(in->params.mode),
	       in->params.mode & 0x80 ? " (set by pins)" : "");
	printf("usb:     %04x:%04x\n", in->params.vid, in->params.pid);
}

static void
print_chip(const struct info *in, cJSON *json)
{
	if (!in->unit)
		return;
	if (json)
		cli_chip_info_json(in->unit, json); /* a failure is reported inside the object */
	else
		cli_print_chip_info(in->unit, stdout);
}

static void
print_json(const struct info *in)
{
	char ver[16], usb[16];
	cli_ch9329_version_text(in->chip.version, ver, sizeof(ver));
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "chip", "CH9329");
	if (in->unknown) { /* GET_INFO not answered: null, not "disconnected" */
		cJSON_AddNullToObject(o, "version");
		cJSON_AddNullToObject(o, "target_connected");
		cJSON_AddNullToObject(o, "leds");
	} else {
		cJSON_AddStringToObject(o, "version", ver);
		cJSON_AddBoolToObject(o, "target_connected", in->chip.target_connected);
		cJSON *leds = cJSON_AddObjectToObject(o, "leds");
		cJSON_AddBoolToObject(leds, "num", in->chip.leds & OKVM_LED_NUM);
		cJSON_AddBoolToObject(leds, "caps", in->chip.leds & OKVM_LED_CAPS);
		cJSON_AddBoolToObject(leds, "scroll", in->chip.leds & OKVM_LED_SCROLL);
	}
	cJSON_AddNumberToObject(o, "baud", in->baud);
	if (in->probed) {
		cJSON *df = cJSON_AddObjectToObject(o, "dataflip");
		cJSON_AddStringToObject(df, "state",
					in->probe.flip_pacing   ? "toggles"
					: in->probe.flip_absent ? "none"
								: "unknown");
		if (in->probe.flip_pacing)
			cJSON_AddNumberToObject(df, "target_poll_ms", in->probe.target_poll_ms);
		else
			cJSON_AddNullToObject(df, "target_poll_ms");
	}
	if (in->have_params) {
		cJSON_AddNumberToObject(o, "mode", in->params.mode & 0x03);
		cJSON_AddBoolToObject(o, "mode_by_pins", in->params.mode & 0x80);
		snprintf(usb, sizeof(usb), "%04x:%04x", in->params.vid, in->params.pid);
		cJSON_AddStringToObject(o, "usb", usb);
	}
	print_chip(in, o);
	char *s = cJSON_PrintUnformatted(o);
	puts(s);
	free(s);
	cJSON_Delete(o);
}

/* GET_INFO, GET_PARA_CFG and the baud from the unit's link. */
static int
read_link(struct okvm_link *l, struct info *in)
{
	struct okvm_link_state st;
	okvm_link_get_state(l, &st);
	/* a chip that ignores GET_INFO opened anyway (the link found it by a HID ACK) */
	in->unknown = st.info_unknown;
	int err = in->unknown ? 0 : okvm_link_get_info(l, &in->chip, 1000);
	if (err == 0)
		in->have_params = okvm_link_get_params(l, &in->params, 1000) == 0;
	/* Empty keyboard reports (nothing pressed): whether DATAFLIP moves, and the target's poll
	 * interval it shows (hardware.md 2.11). A target that is not connected takes none. */
	if (err == 0 && (in->unknown || in->chip.target_connected) &&
	    okvm_link_probe_target(l, INFO_PROBE_REPORTS, 2000) == 0) { /* -ENOTSUP: no CTS */
		okvm_link_get_stats(l, &in->probe);
		in->probed = true;
	}
	okvm_link_get_state(l, &st);
	in->baud = st.baud;
	return err;
}

int
cmd_info(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage("info: unexpected argument '%s'", argv[1]);
	struct info in = { 0 };
	struct okvm_unit *u;
	int rc = cli_open_unit(cli, &u); /* one unit: one scan, for the link and the video chip */
	if (rc)
		return rc;
	/* A tty path (--serial, -d /dev/tty...) reports the CH9329 only, as it always did. */
	bool by_path = cli->serial || (cli->device && cli->device[0] == '/');
	if (!by_path && (okvm_unit_info(u) || cli_is_emu(cli)))
		in.unit = u;
	int err = read_link(okvm_unit_link(u), &in);
	if (err < 0) {
		cli_close_unit(u);
		return cli_fail("info: %s", okvm_strerror(err));
	}
	if (cli->json) {
		print_json(&in);
	} else {
		print_text(&in);
		print_chip(&in, NULL);
	}
	cli_close_unit(u); /* link, chip, then the virtual unit whose registers were just read */
	return CLI_OK;
}
