/*
 * DESIGN: the virtual target's keyboard: what an XKB desktop (X11/Wayland on Linux) makes of the
 * reports a CH9329 sends. Each report is diffed against the previous one; releases are applied
 * before presses, modifiers before other keys, so a report {Shift, B} after {0, a} reads as
 * "a up, Shift down, b down" and types "B". Text comes from xkb_state (levels, Caps Lock
 * capitalisation) through an xkb_compose_state (dead keys). The lock LEDs are kept here and also
 * drive XKB's locked modifiers, so Caps Lock changes text as on a real OS.
 * Used by the virtual unit (src/emu) and by the round-trip tests of the text planner. Owned by
 * one thread; no allocation after okvm_kbd_decoder_new().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kbd/hid_xkb.h"
#include "okvm/keymap.h"
#include "lib/xalloc.h"

#define HID_ROLLOVER 0x01 /* ErrorRollOver: too many keys; the host keeps its previous state */
#define USAGE_CAPS 0x39
#define USAGE_SCROLL 0x47
#define USAGE_NUM 0x53
#define USAGE_MOD0 0xE0

struct okvm_kbd_decoder {
	struct hid_xkb x;
	struct xkb_state *state;
	struct xkb_compose_state *compose;
	struct okvm_kbd_report prev;
	uint8_t leds;
	xkb_mod_index_t mod_ctrl, mod_alt, mod_logo, mod_caps, mod_num;
};

/* The keys a report holds, modifiers first: bits as E0-E7, then the slots in order. */
struct keyset {
	uint8_t usage[14];
	int n;
};

static bool
keyset_has(const struct keyset *s, uint8_t usage)
{
	for (int i = 0; i < s->n; i++)
		if (s->usage[i] == usage)
			return true;
	return false;
}

static void
keyset_from_report(const struct okvm_kbd_report *r, struct keyset *s)
{
	s->n = 0;
	for (int i = 0; i < 8; i++)
		if (r->modifiers & (1u << i))
			s->usage[s->n++] = (uint8_t)(USAGE_MOD0 + i);
	/* Slot modifiers (E0-E7) go with the modifiers, ahead of ordinary keys. */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < 6; i++) {
			uint8_t u = r->keys[i];
			bool is_mod = u >= USAGE_MOD0 && u <= USAGE_MOD0 + 7;
			if (u < 0x04 || is_mod != (pass == 0) || keyset_has(s, u))
				continue;
			s->usage[s->n++] = u;
		}
	}
}

static bool
report_is_rollover(const struct okvm_kbd_report *r)
{
	for (int i = 0; i < 6; i++)
		if (r->keys[i] == HID_ROLLOVER)
			return true;
	return false;
}

static bool
mod_active(const struct okvm_kbd_decoder *d, xkb_mod_index_t m)
{
	return m != XKB_MOD_INVALID &&
	       xkb_state_mod_index_is_active(d->state, m, XKB_STATE_MODS_EFFECTIVE) > 0;
}

static void
emit(okvm_kbd_text_fn on_text, void *ud, const char *s)
{
	if (on_text && s[0])
		on_text(s, ud);
}

/* Drop control characters other than the three a text field acts on. */
static void
filter_controls(char *buf)
{
	unsigned char c = (unsigned char)buf[0];
	if (c && buf[1] == '\0' && (c < 0x20 || c == 0x7F) && c != '\t' && c != '\b')
		buf[0] = '\0';
}

static void
key_text(struct okvm_kbd_decoder *d, xkb_keycode_t kc, okvm_kbd_text_fn on_text, void *ud)
{
	char buf[64];
	xkb_keysym_t sym = xkb_state_key_get_one_sym(d->state, kc);
	if (mod_active(d, d->mod_ctrl) || mod_active(d, d->mod_alt) || mod_active(d, d->mod_logo))
		return;
	if (d->compose && xkb_compose_state_feed(d->compose, sym) == XKB_COMPOSE_FEED_ACCEPTED) {
		switch (xkb_compose_state_get_status(d->compose)) {
		case XKB_COMPOSE_COMPOSING: return;
		case XKB_COMPOSE_COMPOSED:
			xkb_compose_state_get_utf8(d->compose, buf, sizeof(buf));
			xkb_compose_state_reset(d->compose);
			emit(on_text, ud, buf);
			return;
		case XKB_COMPOSE_CANCELLED: xkb_compose_state_reset(d->compose); return;
		case XKB_COMPOSE_NOTHING: break;
		}
	}
	if (sym == XKB_KEY_Return || sym == XKB_KEY_KP_Enter) {
		emit(on_text, ud, "\n");
		return;
	}
	xkb_state_key_get_utf8(d->state, kc, buf, sizeof(buf));
	filter_controls(buf);
	emit(on_text, ud, buf);
}

static uint8_t
lock_led(uint8_t usage)
{
	switch (usage) {
	case USAGE_CAPS: return OKVM_LED_CAPS;
	case USAGE_NUM: return OKVM_LED_NUM;
	case USAGE_SCROLL: return OKVM_LED_SCROLL;
	default: return 0;
	}
}

static void
key_event(struct okvm_kbd_decoder *d, uint8_t usage, bool down, okvm_kbd_key_fn on_key,
	  okvm_kbd_text_fn on_text, void *ud)
{
	if (on_key)
		on_key(usage, down, ud);
	int evdev = okvm_usage_to_evdev(usage);
	if (evdev < 0)
		return;
	xkb_keycode_t kc = (xkb_keycode_t)evdev + 8;
	if (down) {
		d->leds ^= lock_led(usage);
		key_text(d, kc, on_text, ud);
	}
	xkb_state_update_key(d->state, kc, down ? XKB_KEY_DOWN : XKB_KEY_UP);
}

uint8_t
okvm_kbd_decoder_feed(struct okvm_kbd_decoder *d, const struct okvm_kbd_report *r,
		      okvm_kbd_key_fn on_key, okvm_kbd_text_fn on_text, void *ud)
{
	if (report_is_rollover(r))
		return d->leds;
	struct keyset before, after;
	keyset_from_report(&d->prev, &before);
	keyset_from_report(r, &after);
	for (int i = 0; i < before.n; i++)
		if (!keyset_has(&after, before.usage[i]))
			key_event(d, before.usage[i], false, on_key, on_text, ud);
	for (int i = 0; i < after.n; i++)
		if (!keyset_has(&before, after.usage[i]))
			key_event(d, after.usage[i], true, on_key, on_text, ud);
	d->prev = *r;
	return d->leds;
}

/*
 * XKB has no call to set locks alone next to key updates, so build a fresh state with the wanted
 * locked modifiers and replay the keys that are held (lock keys excepted: replaying them would
 * toggle again).
 */
void
okvm_kbd_decoder_set_leds(struct okvm_kbd_decoder *d, uint8_t leds)
{
	xkb_mod_mask_t locked = 0;
	if ((leds & OKVM_LED_CAPS) && d->mod_caps != XKB_MOD_INVALID)
		locked |= 1u << d->mod_caps;
	if ((leds & OKVM_LED_NUM) && d->mod_num != XKB_MOD_INVALID)
		locked |= 1u << d->mod_num;
	xkb_state_unref(d->state);
	d->state = xkb_state_new(d->x.keymap);
	if (!d->state)
		abort();
	xkb_state_update_mask(d->state, 0, 0, locked, 0, 0, 0);
	struct keyset held;
	keyset_from_report(&d->prev, &held);
	for (int i = 0; i < held.n; i++) {
		int evdev = okvm_usage_to_evdev(held.usage[i]);
		if (evdev >= 0 && !lock_led(held.usage[i]))
			xkb_state_update_key(d->state, (xkb_keycode_t)evdev + 8, XKB_KEY_DOWN);
	}
	d->leds = leds & (OKVM_LED_NUM | OKVM_LED_CAPS | OKVM_LED_SCROLL);
}

uint8_t
okvm_kbd_decoder_leds(const struct okvm_kbd_decoder *d)
{
	return d->leds;
}

struct okvm_kbd_decoder *
okvm_kbd_decoder_new(const char *layout)
{
	struct okvm_kbd_decoder *d = xcalloc(1, sizeof(*d));
	if (hid_xkb_open(layout, &d->x) < 0) {
		free(d);
		return NULL;
	}
	d->state = xkb_state_new(d->x.keymap);
	if (!d->state)
		abort();
	if (d->x.compose) {
		d->compose = xkb_compose_state_new(d->x.compose, XKB_COMPOSE_STATE_NO_FLAGS);
		if (!d->compose)
			abort();
	}
	d->mod_ctrl = xkb_keymap_mod_get_index(d->x.keymap, XKB_MOD_NAME_CTRL);
	d->mod_alt = xkb_keymap_mod_get_index(d->x.keymap, XKB_MOD_NAME_ALT);
	d->mod_logo = xkb_keymap_mod_get_index(d->x.keymap, XKB_MOD_NAME_LOGO);
	d->mod_caps = xkb_keymap_mod_get_index(d->x.keymap, XKB_MOD_NAME_CAPS);
	d->mod_num = xkb_keymap_mod_get_index(d->x.keymap, XKB_MOD_NAME_NUM);
	return d;
}

void
okvm_kbd_decoder_free(struct okvm_kbd_decoder *d)
{
	if (!d)
		return;
	xkb_compose_state_unref(d->compose);
	xkb_state_unref(d->state);
	hid_xkb_close(&d->x);
	free(d);
}
