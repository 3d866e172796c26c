/*
 * DESIGN: `okvm layouts [--json] [FILTER]`: the target keyboard layouts okvm can type on, from
 * the xkb-data catalogue (okvm_layouts_list). FILTER keeps entries whose name or description
 * contains it (case-insensitive). Prints "name  description" lines, or a JSON array of
 * {"name","layout","variant","description"}. Touches no device.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/keymap.h"

static bool
matches(const struct okvm_layout_info *l, const char *filter)
{
	return !filter || strcasestr(l->name, filter) || strcasestr(l->description, filter);
}

static int
print_json(const struct okvm_layout_info *l, int n, const char *filter)
{
	cJSON *arr = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		if (!matches(&l[i], filter))
			continue;
		char layout[OKVM_LAYOUT_NAME_MAX], variant[OKVM_LAYOUT_NAME_MAX];
		if (okvm_layout_split(l[i].name, layout, variant))
			continue;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", l[i].name);
		cJSON_AddStringToObject(o, "layout", layout);
		cJSON_AddStringToObject(o, "variant", variant);
		cJSON_AddStringToObject(o, "description", l[i].description);
		cJSON_AddItemToArray(arr, o);
	}
	char *s = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	if (!s)
		return cli_fail("out of memory");
	puts(s);
	free(s);
	return CLI_OK;
}

int
cmd_layouts(struct cli *cli, int argc, char **argv)
{
	const char *filter = NULL;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' && strcmp(argv[i], "--"))
			return cli_usage("layouts: unknown option '%s'", argv[i]);
		if (!strcmp(argv[i], "--"))
			continue;
		if (filter)
			return cli_usage("layouts: at most one FILTER");
		filter = argv[i];
	}
	struct okvm_layout_info *l;
	int n = okvm_layouts_list(&l);
	if (n < 0)
		return cli_fail("cannot read the XKB layout list: %s", okvm_strerror(n));
	int rc = CLI_OK;
	if (cli->json) {
		rc = print_json(l, n, filter);
	} else {
		for (int i = 0; i < n; i++)
			if (matches(&l[i], filter))
				printf("%-28s %s\n", l[i].name, l[i].description);
	}
	free(l);
	return rc;
}
