/*
 * DESIGN: `okvm chip [--json]`: the video chip's registers of one unit (firmware, HDMI signal,
 * input mode, hardware toggle, USB switch). The same section `okvm info` prints.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/discover-cli.h"

int
cmd_chip(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("chip takes no arguments");
	struct okvm_unit_info u;
	int rc = cli_resolve_unit(cli, &u);
	if (rc)
		return rc;
	if (!cli->json)
		return cli_print_chip_info(&u, stdout);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "port_chain", u.port_chain);
	rc = cli_chip_info_json(&u, o);
	if (rc == CLI_OK) {
		char *text = cJSON_PrintUnformatted(o);
		puts(text);
		free(text);
	}
	cJSON_Delete(o);
	return rc;
}
