/*
 * DESIGN: builds the XKB context, keymap (rules evdev, model pc105, no options) and Compose table
 * for a layout name. The context ignores XKB_DEFAULT_* environment variables so the machine that
 * runs okvm cannot change what a target layout means. libxkbcommon's own log goes to okvm_log at
 * debug level: a missing layout is reported by our return code, not by xkb's noise.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/kbd/hid_xkb.h"
#include "okvm/keymap.h"
#include "okvm/log.h"

static bool
name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static int
copy_part(const char *s, size_t n, char out[OKVM_LAYOUT_NAME_MAX])
{
	if (n >= OKVM_LAYOUT_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!name_char_ok(s[i]))
			return -EINVAL;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int
okvm_layout_split(const char *name, char layout[OKVM_LAYOUT_NAME_MAX],
		  char variant[OKVM_LAYOUT_NAME_MAX])
{
	if (!name)
		return -EINVAL;
	size_t len = strlen(name);
	size_t cut = strcspn(name, ":(");
	const char *var = name + cut;
	size_t vlen = 0;
	if (name[cut] == ':') {
		var++;
		vlen = len - cut - 1;
	} else if (name[cut] == '(') {
		if (name[len - 1] != ')' || len < cut + 2)
			return -EINVAL;
		var++;
		vlen = len - cut - 2;
	}
	if (cut == 0 || (name[cut] && vlen == 0))
		return -EINVAL;
	int rc = copy_part(name, cut, layout);
	return rc ? rc : copy_part(var, vlen, variant);
}

static void
xkb_log(struct xkb_context *ctx, enum xkb_log_level level, const char *fmt, va_list ap)
{
	(void)ctx;
	(void)level;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	okvm_log(OKVM_LOG_DEBUG, "xkb: %s", buf);
}

int
hid_xkb_open(const char *name, struct hid_xkb *out)
{
	char layout[OKVM_LAYOUT_NAME_MAX], variant[OKVM_LAYOUT_NAME_MAX];
	memset(out, 0, sizeof(*out));
	int rc = okvm_layout_split(name, layout, variant);
	if (rc)
		return rc;
	out->ctx = xkb_context_new(XKB_CONTEXT_NO_ENVIRONMENT_NAMES);
	if (!out->ctx)
		return -ENOMEM;
	xkb_context_set_log_fn(out->ctx, xkb_log);
	struct xkb_rule_names rmlvo = {
		.rules = "evdev",
		.model = "pc105",
		.layout = layout,
		.variant = variant,
		.options = "",
	};
	out->keymap = xkb_keymap_new_from_names(out->ctx, &rmlvo, XKB_KEYMAP_COMPILE_NO_FLAGS);
	if (!out->keymap) {
		hid_xkb_close(out);
		return -ENOENT;
	}
	out->compose = xkb_compose_table_new_from_locale(out->ctx, HID_COMPOSE_LOCALE,
							 XKB_COMPOSE_COMPILE_NO_FLAGS);
	if (!out->compose)
		okvm_log(OKVM_LOG_WARN,
			 "no Compose table for %s: dead keys will not compose "
			 "(install libx11-data)",
			 HID_COMPOSE_LOCALE);
	return 0;
}

void
hid_xkb_close(struct hid_xkb *x)
{
	xkb_compose_table_unref(x->compose);
	xkb_keymap_unref(x->keymap);
	xkb_context_unref(x->ctx);
	memset(x, 0, sizeof(*x));
}
