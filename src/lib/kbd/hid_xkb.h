/* Internal to src/lib/hid: one place that builds XKB objects for a layout name. */
#ifndef OKVM_HID_XKB_H
#define OKVM_HID_XKB_H

#include <xkbcommon/xkbcommon-compose.h>
#include <xkbcommon/xkbcommon.h>

/* The Compose table used by both the decoder and the reverse map, so they always agree. */
#define HID_COMPOSE_LOCALE "en_US.UTF-8"

struct hid_xkb {
	struct xkb_context *ctx;
	struct xkb_keymap *keymap;
	struct xkb_compose_table *compose; /* NULL when the system has no Compose table */
};

/* Compile the keymap of a layout name ("de", "us:dvorak"). Returns 0, -EINVAL (malformed name)
 * or -ENOENT (XKB does not know the layout or variant). */
int hid_xkb_open(const char *name, struct hid_xkb *out);
void hid_xkb_close(struct hid_xkb *x);

#endif
