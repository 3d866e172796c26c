/*
 * DESIGN: the [view] section of okvm.conf (the file okvm serve reads, src/serve/config.c), read
 * with inih. Other sections belong to other commands and are skipped; an unknown key or a bad
 * value in [view] is an error naming its line, so a typo does not silently do nothing.
 *
 *   [view]
 *   scale = fit            ; fit | 1:1
 *   host_key = rctrl       ; any key name (rctrl, ralt, rgui, f12, ScrollLock...)
 *   fullscreen = no
 *   grab = yes             ; take the keyboard (Alt+Tab, Super) while focused
 *   mouse = absolute       ; absolute | relative
 *   layout = de            ; the target's layout for paste (default: --layout, else us)
 *   screenshot_dir = ~/Pictures
 *   record_dir = ~/Videos  ; where host+R recordings go
 *   audio = yes            ; play the target's sound (no: --no-audio)
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "view/view.h"

struct parse {
	struct view_opts *o;
	struct view_config_strings *s;
	char *err;
	size_t errlen;
	int line;
	bool failed;
};

int
view_scale_parse(const char *v, enum view_scale *out)
{
	if (!strcasecmp(v, "fit")) {
		*out = VIEW_SCALE_FIT;
		return 0;
	}
	if (!strcmp(v, "1:1") || !strcasecmp(v, "1to1") || !strcasecmp(v, "native")) {
		*out = VIEW_SCALE_1TO1;
		return 0;
	}
	return -EINVAL;
}

static int
parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") ||
	    !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") ||
		 !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static void
replace(char **field, const char *v)
{
	free(*field);
	*field = strdup(v);
}

static int
set_key(struct parse *ps, const char *name, const char *v)
{
	struct view_opts *o = ps->o;
	if (!strcmp(name, "scale"))
		return view_scale_parse(v, &o->scale) ? -1 : 0;
	if (!strcmp(name, "host_key")) {
		int sc = view_host_key_parse(v);
		if (sc < 0)
			return -1;
		o->host_key = sc;
		return 0;
	}
	if (!strcmp(name, "fullscreen"))
		return parse_bool(v, &o->fullscreen) ? -1 : 0;
	if (!strcmp(name, "grab"))
		return parse_bool(v, &o->grab) ? -1 : 0;
	if (!strcmp(name, "audio"))
		return parse_bool(v, &o->audio) ? -1 : 0;
	if (!strcmp(name, "mouse")) {
		if (strcmp(v, "absolute") && strcmp(v, "relative"))
			return -1;
		o->relative = !strcmp(v, "relative");
		return 0;
	}
	if (!strcmp(name, "layout")) {
		replace(&ps->s->layout, v);
		o->layout = ps->s->layout;
		return 0;
	}
	if (!strcmp(name, "screenshot_dir")) {
		replace(&ps->s->shot_dir, v);
		o->shot_dir = ps->s->shot_dir;
		return 0;
	}
	if (!strcmp(name, "record_dir")) {
		replace(&ps->s->rec_dir, v);
		o->rec_dir = ps->s->rec_dir;
		return 0;
	}
	return -2;
}

static int
on_ini(void *ud, const char *section, const char *name, const char *value)
{
	struct parse *ps = ud;
	if (strcmp(section, "view"))
		return 1; /* other sections belong to other commands */
	int rc = set_key(ps, name, value);
	if (rc == 0)
		return 1;
	if (!ps->failed)
		snprintf(ps->err, ps->errlen,
			 rc == -2 ? "unknown key '%.40s' in [view] (scale, host_key, fullscreen, "
				    "grab, mouse, layout, screenshot_dir, record_dir, audio)"
				  : "[view] %.40s: bad value '%.60s'",
			 name, value);
	ps->failed = true;
	return 0;
}

int
view_config_load(const char *path, struct view_opts *o, struct view_config_strings *owned,
		 char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	struct parse ps = { .o = o, .s = owned, .err = err, .errlen = errlen };
	int line = ini_parse_file(f, on_ini, &ps);
	fclose(f);
	if (ps.failed || line) {
		if (!ps.failed)
			snprintf(err, errlen, "cannot parse line %d", line);
		else if (line > 0) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n, " (line %d)", line);
		}
		return -EINVAL;
	}
	return 0;
}

void
view_config_free(struct view_config_strings *owned)
{
	free(owned->layout);
	free(owned->shot_dir);
	free(owned->rec_dir);
	owned->layout = owned->shot_dir = owned->rec_dir = NULL;
}
