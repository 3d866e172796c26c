/*
 * DESIGN: `okvm layouts [--json] [FILTER]`: the target keyboard layouts okvm can type on, from
 * the xkb-data catalogue (okvm_layouts_list). FILTER keeps entries whose name or description
 * contains it (case-insensitive), best first: the name itself (`okvm layouts de`: de), then the
 * names that start with it (de:nodeadkeys), then the rest in catalogue order (ch:de, "German"
 * in a description). Prints "name  description" lines, or a JSON array of
 * {"name","layout","variant","description"}. Touches no device.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "lib/kbd/layout-json.h"
#include "okvm/error.h"
#include "okvm/keymap.h"
#include "lib/xalloc.h"

enum { RANK_EXACT, RANK_PREFIX, RANK_OTHER, RANK_NONE, RANKS = RANK_NONE };

/* How well l matches filter: RANK_NONE when it does not (no filter matches all equally). */
static int
rank(const struct okvm_layout_info *l, const char *filter)
{
	if (!filter)
		return RANK_OTHER;
	if (!strcasecmp(l->name, filter))
		return RANK_EXACT;
	if (!strncasecmp(l->name, filter, strlen(filter)))
		return RANK_PREFIX;
	if (strcasestr(l->name, filter) || strcasestr(l->description, filter))
		return RANK_OTHER;
	return RANK_NONE;
}

static int
print_json(const struct okvm_layout_info *l, int n, const char *filter)
{
	cJSON *arr = cJSON_CreateArray();
	for (int r = 0; r < RANKS; r++) {
		for (int i = 0; i < n; i++) {
			if (rank(&l[i], filter) != r)
				continue;
			cJSON *o = layout_json(&l[i]);
			if (o)
				cJSON_AddItemToArray(arr, o);
		}
	}
	char *s = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	if (!s)
		return cli_fail("out of memory");
	puts(s);
	free(s);
	return CLI_OK;
}

static void
put_utf8(uint32_t cp, FILE *out)
{
	char b[4];
	int n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (char)(0xF0 | cp >> 18);
		b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		b[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	fwrite(b, 1, (size_t)n, out);
}

/* `okvm layouts --chars NAME`: every printable character the layout can type, on one line. */
static int
print_chars(const char *name)
{
	struct okvm_keymap *km = okvm_keymap_new(name);
	if (!km)
		return cli_usage("unknown keyboard layout '%s'; see `okvm layouts`", name);
	size_t n = okvm_keymap_charset(km, false, NULL, 0);
	uint32_t *cps = xcalloc(n ? n : 1, sizeof(*cps));
	okvm_keymap_charset(km, false, cps, n);
	for (size_t i = 0; i < n; i++)
		if (cps[i] >= 0x20 && cps[i] != 0x7F)
			put_utf8(cps[i], stdout);
	putchar('\n');
	free(cps);
	okvm_keymap_free(km);
	return CLI_OK;
}

int
cmd_layouts(struct cli *cli, int argc, char **argv)
{
	const char *filter = NULL;
	if (argc >= 2 && !strcmp(argv[1], "--chars")) {
		if (argc != 3)
			return cli_usage("usage: okvm layouts --chars LAYOUT");
		return print_chars(argv[2]);
	}
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
		for (int r = 0; r < RANKS; r++)
			for (int i = 0; i < n; i++)
				if (rank(&l[i], filter) == r)
					printf("%-28s %s\n", l[i].name, l[i].description);
	}
	free(l);
	return rc;
}
