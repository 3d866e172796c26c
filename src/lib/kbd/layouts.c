/*
 * DESIGN: the list of layouts for `okvm layouts`, read from the xkb-data Debian ships
 * (rules/evdev.lst: "! layout" lines "  name  Description", "! variant" lines
 * "  variant  layout: Description"). Each layout is followed by its variants. The file is the
 * same catalogue desktop settings dialogs show; whether a name compiles is okvm_layout_exists().
 * OKVM_XKB_RULES overrides the path (tests, other distributions).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okvm/keymap.h"
#include "lib/kbd/layout-json.h"
#include "lib/xalloc.h"

#define EVDEV_LST "/usr/share/X11/xkb/rules/evdev.lst"

struct lst {
	struct okvm_layout_info *layouts, *variants;
	char (*parent)[OKVM_LAYOUT_NAME_MAX]; /* layout of each variant */
	size_t nl, nv, capl, capv;
};


/* "  name   rest\n" -> name, rest (trimmed). Returns false for other lines. */
static bool
split_line(char *line, char **name, char **rest)
{
	if (line[0] != ' ')
		return false;
	char *p = line + strspn(line, " ");
	*name = p;
	p += strcspn(p, " \t\n");
	if (!*p || *p == '\n')
		return false;
	*p++ = '\0';
	*rest = p + strspn(p, " \t");
	(*rest)[strcspn(*rest, "\n")] = '\0';
	return **name != '\0';
}

static void
add_line(struct lst *l, int section, char *name, char *rest)
{
	struct okvm_layout_info *info;
	if (section == 1) {
		l->layouts = xgrow(l->layouts, &l->capl, l->nl, sizeof(*l->layouts), 128);
		info = &l->layouts[l->nl++];
		snprintf(info->name, sizeof(info->name), "%s", name);
		snprintf(info->description, sizeof(info->description), "%s", rest);
		return;
	}
	char *colon = strchr(rest, ':');
	if (!colon)
		return;
	*colon = '\0';
	size_t capv = l->capv;
	l->variants = xgrow(l->variants, &l->capv, l->nv, sizeof(*l->variants), 128);
	l->parent = xgrow(l->parent, &capv, l->nv, sizeof(*l->parent), 128);
	snprintf(l->parent[l->nv], OKVM_LAYOUT_NAME_MAX, "%.63s", rest);
	info = &l->variants[l->nv++];
	snprintf(info->name, sizeof(info->name), "%.63s:%.63s", rest, name);
	const char *desc = colon + 1 + strspn(colon + 1, " ");
	snprintf(info->description, sizeof(info->description), "%s", desc);
}

/* "! layout" -> 1, "! variant" -> 2, other sections ("! model", "! option") -> 0. */
static int
section_of(const char *line)
{
	if (!strncmp(line, "! layout", 8))
		return 1;
	return !strncmp(line, "! variant", 9) ? 2 : 0;
}

static int
read_lst(FILE *f, struct lst *l)
{
	char line[512];
	int section = 0; /* 1 layout, 2 variant */
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '!') {
			section = section_of(line);
			continue;
		}
		char *name, *rest;
		if (section && split_line(line, &name, &rest))
			add_line(l, section, name, rest);
	}
	return ferror(f) ? -EIO : 0;
}

cJSON *
layout_json(const struct okvm_layout_info *l)
{
	char layout[OKVM_LAYOUT_NAME_MAX], variant[OKVM_LAYOUT_NAME_MAX];
	if (okvm_layout_split(l->name, layout, variant))
		return NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", l->name);
	cJSON_AddStringToObject(o, "layout", layout);
	cJSON_AddStringToObject(o, "variant", variant);
	cJSON_AddStringToObject(o, "description", l->description);
	return o;
}

int
okvm_layouts_list(struct okvm_layout_info **out)
{
	const char *path = getenv("OKVM_XKB_RULES");
	FILE *f = fopen(path && *path ? path : EVDEV_LST, "re");
	if (!f)
		return -errno;
	struct lst l = { 0 };
	int rc = read_lst(f, &l);
	fclose(f);
	struct okvm_layout_info *all = NULL;
	size_t n = 0;
	if (!rc && l.nl + l.nv) {
		all = xmalloc((l.nl + l.nv) * sizeof(*all));
		for (size_t i = 0; i < l.nl; i++) {
			all[n++] = l.layouts[i];
			for (size_t v = 0; v < l.nv; v++)
				if (!strcmp(l.parent[v], l.layouts[i].name))
					all[n++] = l.variants[v];
		}
	}
	free(l.layouts);
	free(l.variants);
	free(l.parent);
	*out = all;
	return rc ? rc : (int)n;
}
