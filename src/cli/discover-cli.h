/* Discovery helpers shared by the commands (list, switch, chip, and the integrator's info). */
#ifndef OKVM_CLI_DISCOVER_CLI_H
#define OKVM_CLI_DISCOVER_CLI_H

#include <stdio.h>

#include "cli/cli.h"
#include "okvm/chip.h"
#include "okvm/discover.h"

/**
 * The real unit -d names (a number from `okvm list`, a port chain, a serial/hidraw/video path),
 * or the first unit when -d is not given. Prints one `okvm: ...` line on failure.
 * @return CLI_OK, CLI_FAIL (no such unit / none found: suggests -d emu), CLI_USAGE (-d emu or
 *         frames:, which are not discovered units)
 */
int cli_resolve_unit(struct cli *cli, struct okvm_unit_info *out);

/**
 * Open the unit's video chip. @return CLI_OK, or CLI_FAIL after one line naming the problem
 * (no hidraw node, permission: the udev rule/group to install).
 */
int cli_open_chip(const struct okvm_unit_info *u, struct okvm_chip **out);

/** The video-chip section of `okvm info` (text, or a JSON object added to parent). */
int cli_print_chip_info(const struct okvm_unit_info *u, FILE *out);
struct cJSON;
int cli_chip_info_json(const struct okvm_unit_info *u, struct cJSON *parent);

const char *cli_usb_dir_name(enum okvm_usb_dir d); /* "host" / "target" */

#endif
