/* The video-chip helpers shared by the commands (switch, chip, info, serve). */
#ifndef OKVM_CLI_DISCOVER_CLI_H
#define OKVM_CLI_DISCOVER_CLI_H

#include <stdio.h>

#include "cli/cli.h"
#include "okvm/chip.h"
#include "okvm/discover.h"

/**
 * Open the unit's video chip (from cli_unit_discovered); it stays the unit's. @return CLI_OK,
 * or CLI_FAIL after one line naming the problem (no hidraw node, permission: the udev
 * rule/group to install).
 */
struct okvm_unit;
int cli_open_chip(struct okvm_unit *u, struct okvm_chip **out);

/** The video-chip section of `okvm info` (text, or a JSON object added to parent). */
int cli_print_chip_info(struct okvm_unit *u, FILE *out);
struct cJSON;
int cli_chip_info_json(struct okvm_unit *u, struct cJSON *parent);

const char *cli_usb_dir_name(enum okvm_usb_dir d); /* "host" / "target" */

#endif
