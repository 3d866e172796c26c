/*
 * DESIGN: `okvm list [--json]`: every unit discovery finds, one entry each, with its variant,
 * port chain, nodes, the video chip's firmware version (read over hidraw when the node can be
 * opened; otherwise the reason is shown instead) and the devices on its switchable port and
 * extension pins. Opens nothing but the hidraw nodes, and those only to read four registers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/discover-cli.h"
#include "okvm/chip.h"
#include "okvm/discover.h"
#include "okvm/log.h"

/* Firmware version, or why it is unknown. */
static void
firmware_of(const struct okvm_unit_info *u, char *fw, size_t size, const char **why)
{
	struct okvm_chip *chip;
	*why = NULL;
	fw[0] = 0;
	if (!u->hidraw_node[0]) {
		*why = "no hidraw node";
		return;
	}
	int rc = okvm_chip_open(u->hidraw_node, NULL, &chip);
	if (rc == 0) {
		char v[9];
		rc = okvm_chip_firmware(chip, v, NULL);
		okvm_chip_free(chip);
		if (rc == 0)
			snprintf(fw, size, "%s", v);
	}
	if (rc == -EACCES || rc == -EPERM)
		*why = "hidraw permission denied (docs/hardware-setup.md)";
	else if (rc < 0)
		*why = strerror(-rc);
}

static const char *
or_none(const char *s)
{
	return s[0] ? s : "-";
}

static void
print_ext(const char *title, const struct okvm_ext_device *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *role = okvm_ext_role(&x[i]);
		printf("   %-11s %s  %04x:%04x %s  driver %s  %s%s%s%s\n", i ? "" : title,
		       x[i].port_chain, x[i].vid, x[i].pid, or_none(x[i].product),
		       or_none(x[i].driver), or_none(x[i].node), role ? "  (" : "",
		       role ? role : "", role ? ")" : "");
	}
}

static void
print_unit(const struct okvm_unit_info *u)
{
	char fw[16];
	const char *why;
	firmware_of(u, fw, sizeof(fw), &why);
	printf("%d  %s  %s\n", u->index, okvm_variant_name(u->variant), u->port_chain);
	printf("   video       %s  (%s %04x:%04x %s)\n", or_none(u->video_node), u->video_chain,
	       u->video_vid, u->video_pid, or_none(u->product));
	if (why)
		printf("   hidraw      %s  firmware unknown: %s\n", or_none(u->hidraw_node), why);
	else
		printf("   hidraw      %s  firmware %s\n", or_none(u->hidraw_node), fw);
	if (u->serial_chain[0])
		printf("   serial      %s  (%s %04x:%04x %s)\n", or_none(u->serial_node),
		       u->serial_chain, u->serial_vid, u->serial_pid, or_none(u->serial_driver));
	else
		printf("   serial      -  (no serial chip found for this unit)\n");
	printf("   audio       %s\n", or_none(u->alsa_card));
	print_ext("switchable", u->switchable, u->n_switchable);
	print_ext("extension", u->ext, u->n_ext);
}

static cJSON *
ext_json(const struct okvm_ext_device *x, size_t n)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		char id[16];
		cJSON *o = cJSON_CreateObject();
		snprintf(id, sizeof(id), "%04x:%04x", x[i].vid, x[i].pid);
		cJSON_AddStringToObject(o, "port_chain", x[i].port_chain);
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddStringToObject(o, "product", x[i].product);
		cJSON_AddStringToObject(o, "driver", x[i].driver);
		cJSON_AddStringToObject(o, "node", x[i].node);
		if (okvm_ext_role(&x[i]))
			cJSON_AddStringToObject(o, "role", okvm_ext_role(&x[i]));
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

static void
add_str(cJSON *o, const char *key, const char *val)
{
	if (val[0])
		cJSON_AddStringToObject(o, key, val);
	else
		cJSON_AddNullToObject(o, key);
}

static cJSON *
unit_json(const struct okvm_unit_info *u)
{
	char fw[16], id[16];
	const char *why;
	firmware_of(u, fw, sizeof(fw), &why);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "index", u->index);
	cJSON_AddStringToObject(o, "variant", okvm_variant_name(u->variant));
	cJSON_AddStringToObject(o, "port_chain", u->port_chain);
	add_str(o, "video", u->video_node);
	add_str(o, "hidraw", u->hidraw_node);
	add_str(o, "serial", u->serial_node);
	add_str(o, "serial_driver", u->serial_driver);
	add_str(o, "audio", u->alsa_card);
	add_str(o, "video_chain", u->video_chain);
	add_str(o, "serial_chain", u->serial_chain);
	snprintf(id, sizeof(id), "%04x:%04x", u->video_vid, u->video_pid);
	cJSON_AddStringToObject(o, "video_id", id);
	if (u->serial_chain[0]) {
		snprintf(id, sizeof(id), "%04x:%04x", u->serial_vid, u->serial_pid);
		cJSON_AddStringToObject(o, "serial_id", id);
	}
	add_str(o, "firmware", fw);
	if (why)
		cJSON_AddStringToObject(o, "firmware_error", why);
	cJSON_AddItemToObject(o, "switchable", ext_json(u->switchable, u->n_switchable));
	cJSON_AddItemToObject(o, "extension", ext_json(u->ext, u->n_ext));
	return o;
}

static int
print_json(const struct okvm_unit_info *units, size_t n)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, unit_json(&units[i]));
	char *text = cJSON_PrintUnformatted(arr);
	puts(text);
	free(text);
	cJSON_Delete(arr);
	return CLI_OK;
}

int
cmd_list(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage("list takes no arguments");
	struct okvm_unit_info *units;
	size_t n;
	int rc = okvm_discover_scan(NULL, &units, &n);
	if (rc < 0 && rc != -ENOENT)
		return cli_fail("cannot read %s: %s", okvm_discover_default_root(), strerror(-rc));
	if (cli->json)
		rc = print_json(units, n);
	else
		for (size_t i = 0; i < n; i++)
			print_unit(&units[i]);
	if (!n && !cli->json)
		fprintf(stderr, "okvm: no Openterface unit found; `-d emu` runs the built-in "
				"virtual unit\n");
	okvm_discover_free_units(units);
	return CLI_OK;
}
