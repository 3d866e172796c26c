/*
 * DESIGN: `okvm chip [--json]`: the video chip's registers of one unit (firmware, HDMI signal,
 * input mode, hardware toggle, USB switch). The same section `okvm info` prints.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/discover-cli.h"
#include "okvm/unit.h"

int
cmd_chip(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("chip takes no arguments");
	struct okvm_unit_info shown;
	struct okvm_unit *unit;
	int rc = cli_unit_discovered(cli, &unit, &shown);
	if (rc)
		return rc;
	if (!cli->json) {
		rc = cli_print_chip_info(unit, stdout);
		okvm_unit_free(unit);
		return rc;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "port_chain", shown.port_chain);
	rc = cli_chip_info_json(unit, o);
	if (rc == CLI_OK) {
		char *text = cJSON_PrintUnformatted(o);
		puts(text);
		free(text);
	}
	cJSON_Delete(o);
	okvm_unit_free(unit);
	return rc;
}
