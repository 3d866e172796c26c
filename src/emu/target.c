/*
 * DESIGN: the virtual target, the computer the CH9329's USB device side is plugged into.
 *
 * Its USB host polls the chip's HID endpoints (keyboard, mouse, media) every poll interval on a
 * fixed schedule (t0 + k * poll). The chip holds one report per endpoint: a report that replaces
 * one not yet polled is lost (event "dropped"), as is any report sent while the target is
 * unplugged or the chip is re-enumerating. A polled report is what the target experiences:
 * keyboard reports go through the layout decoder (okvm_kbd_decoder: key events, text, lock LEDs),
 * mouse reports move the pointer (relative moves clamped to 0..4096), media reports are passed on.
 * Unplugging releases every key and button, as an OS does when a keyboard disappears; the OS
 * keeps its lock state and pushes it to the keyboard again when it comes back.
 * Runs on the emu thread with the clock passed in; emits through emu_emit().
 */
#include <errno.h>
#include <string.h>

#include "emu/emu-internal.h"
#include "okvm/keymap.h"
#include "okvm/log.h"

static const char *const slot_names[EMU_SLOTS] = { "keyboard", "mouse", "media" };

int
target_init(struct emu *e, uint64_t now)
{
	struct emu_target *t = &e->target;
	memset(t, 0, sizeof(*t));
	t->dec = okvm_kbd_decoder_new(e->layout);
	if (!t->dec) {
		okvm_log(OKVM_LOG_INFO, "emu: keyboard layout '%s' does not exist", e->layout);
		return -ENOENT;
	}
	t->poll_ns = (uint64_t)e->poll_ms * 1000000ull;
	t->t0 = now;
	t->x = t->y = OKVM_CH9329_ABS_MAX / 2;
	return 0;
}

void
target_fini(struct emu *e)
{
	okvm_kbd_decoder_free(e->target.dec);
	e->target.dec = NULL;
}

static void
emit_dropped(struct emu *e, enum emu_slot_kind k)
{
	emu_emit(e, &(struct emu_event){ .type = EMU_EV_DROPPED, .report = slot_names[k] });
}

void
target_submit(struct emu *e, enum emu_slot_kind k, uint8_t cmd, const uint8_t *data, uint8_t len,
	      uint64_t t)
{
	struct emu_target *tg = &e->target;
	struct emu_slot *s = &tg->slot[k];
	if (!tg->enumerated) {
		emit_dropped(e, k);
		return;
	}
	if (s->pending)
		emit_dropped(e, k);
	s->pending = true;
	s->tick = tg->t0 + ((t - tg->t0) / tg->poll_ns + 1) * tg->poll_ns;
	s->cmd = cmd;
	s->len = len > sizeof(s->data) ? sizeof(s->data) : len;
	memcpy(s->data, data, s->len);
}

uint64_t
target_next_due(const struct emu *e)
{
	uint64_t t = EMU_NEVER;
	for (int k = 0; k < EMU_SLOTS; k++)
		if (e->target.slot[k].pending && e->target.slot[k].tick < t)
			t = e->target.slot[k].tick;
	return t;
}

static void
on_key(uint8_t usage, bool down, void *ud)
{
	emu_emit(ud, &(struct emu_event){ .type = EMU_EV_KEY, .usage = usage, .down = down });
}

static void
on_text(const char *utf8, void *ud)
{
	emu_emit(ud, &(struct emu_event){ .type = EMU_EV_TEXT, .text = utf8 });
}

static void
feed_keyboard(struct emu *e, const struct okvm_kbd_report *r)
{
	uint8_t leds = okvm_kbd_decoder_feed(e->target.dec, r, on_key, on_text, e);
	if (leds != e->target.leds) {
		e->target.leds = leds;
		emu_emit(e, &(struct emu_event){ .type = EMU_EV_LEDS, .leds = leds });
	}
}

static void
emit_mouse(struct emu *e, int8_t wheel)
{
	struct emu_target *t = &e->target;
	emu_emit(e, &(struct emu_event){ .type = EMU_EV_MOUSE,
					 .x = t->x,
					 .y = t->y,
					 .buttons = t->buttons,
					 .wheel = wheel });
}

static uint16_t
clamp_axis(int v)
{
	return (uint16_t)(v < 0 ? 0 : v > OKVM_CH9329_ABS_MAX ? OKVM_CH9329_ABS_MAX : v);
}

static void
deliver(struct emu *e, const struct emu_slot *s)
{
	struct okvm_ch9329_frame f = { .cmd = s->cmd, .len = s->len };
	memcpy(f.data, s->data, s->len);
	struct okvm_kbd_report kr;
	struct okvm_mouse_abs ma;
	struct okvm_mouse_rel ml;
	struct okvm_media_report mr;
	struct emu_target *t = &e->target;
	if (okvm_ch9329_parse_kbd(&f, &kr) == 0) {
		feed_keyboard(e, &kr);
	} else if (okvm_ch9329_parse_abs(&f, &ma) == 0) {
		t->x = clamp_axis(ma.x);
		t->y = clamp_axis(ma.y);
		t->buttons = ma.buttons & OKVM_BTN_MASK;
		emit_mouse(e, ma.wheel);
	} else if (okvm_ch9329_parse_rel(&f, &ml) == 0) {
		t->x = clamp_axis(t->x + ml.dx);
		t->y = clamp_axis(t->y + ml.dy);
		t->buttons = ml.buttons & OKVM_BTN_MASK;
		emit_mouse(e, ml.wheel);
	} else if (okvm_ch9329_parse_media(&f, &mr) == 0) {
		struct emu_event ev = { .type = EMU_EV_MEDIA, .media_id = mr.report_id };
		memcpy(ev.media_bits, mr.bits, 3);
		emu_emit(e, &ev);
	}
}

/* The poll at time t (the earliest target_next_due()). */
void
target_run(struct emu *e, uint64_t t)
{
	for (int k = 0; k < EMU_SLOTS; k++) {
		struct emu_slot *s = &e->target.slot[k];
		if (s->pending && s->tick <= t) {
			s->pending = false;
			emu_dataflip(e); /* the chip uploads the report: its UP pin toggles */
			deliver(e, s);
		}
	}
}

/* The device vanished from the target: reports in flight are lost, keys and buttons go up. */
static void
lose_device(struct emu *e)
{
	struct emu_target *t = &e->target;
	for (int k = 0; k < EMU_SLOTS; k++) {
		if (t->slot[k].pending)
			emit_dropped(e, k);
		t->slot[k].pending = false;
	}
	t->enumerated = false;
	emu_emit(e, &(struct emu_event){ .type = EMU_EV_USB, .on = false });
	static const struct okvm_kbd_report none;
	feed_keyboard(e, &none);
	if (t->buttons) {
		t->buttons = 0;
		emit_mouse(e, 0);
	}
}

static void
find_device(struct emu *e)
{
	if (e->target.off)
		return; /* a PC that is off does not enumerate anything */
	e->target.enumerated = true;
	emu_emit(e, &(struct emu_event){ .type = EMU_EV_USB, .on = true });
}

void
target_set_plugged(struct emu *e, bool on)
{
	struct emu_target *t = &e->target;
	if (t->plugged == on)
		return;
	t->plugged = on;
	if (on)
		find_device(e);
	else if (t->enumerated)
		lose_device(e);
}

void
target_reenumerate(struct emu *e)
{
	if (!e->target.plugged)
		return;
	lose_device(e);
	find_device(e);
}

void
target_set_powered(struct emu *e, bool on)
{
	struct emu_target *t = &e->target;
	t->off = !on;
	if (!t->plugged)
		return;
	if (!on && t->enumerated)
		lose_device(e);
	else if (on && !t->enumerated)
		find_device(e);
}
