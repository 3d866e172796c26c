/*
 * DESIGN: the text planner. Turns UTF-8 into the whole list of keyboard reports before anything
 * is sent, so a character the layout cannot type fails the command up front instead of halfway
 * through a paste. Each report is a full keyboard state (what the CH9329 sends). The sequence is
 * the shortest one a host reads safely:
 *   - next key, same modifiers: one report that releases the previous key and presses the next
 *     ({0,a} -> {0,b}), the way fast human typing rolls over;
 *   - the same key again: a release report in between that keeps the modifiers held
 *     ({Shift,A} -> {Shift,0} -> {Shift,A});
 *   - other modifiers: all keys up in between, then the new modifiers go down in the report
 *     that presses the key, as the official app's paste does ({Shift,A} -> {0,0} -> {0,b}).
 *     Keeping shared modifiers held would be legal too, but a host reads the modifier bits in
 *     order, and on some layouts a modifier's keysym depends on those already down (Shift then
 *     AltGr is Multi_key on mao, Level5 latch on de:T3); the reverse map models exactly "all
 *     up, then the bits in order";
 *   - the plan ends with all keys released.
 * Caps Lock comes from the keymap's second map (built with Lock locked), so compensation is what
 * XKB says each key does under Lock, not a guess about "letters".
 * Pure: no I/O, no clocks; memory is the caller's to free.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okvm/error.h"
#include "okvm/text.h"
#include "lib/xalloc.h"

struct planner {
	struct okvm_text_plan *p;
	size_t cap;
	struct okvm_kbd_report cur;
};

int
okvm_utf8_next(const char *s, size_t len, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *)s;
	if (!len)
		return -EILSEQ;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	int n;
	uint32_t v, min;
	if ((p[0] & 0xE0) == 0xC0) {
		n = 2, v = p[0] & 0x1F, min = 0x80;
	} else if ((p[0] & 0xF0) == 0xE0) {
		n = 3, v = p[0] & 0x0F, min = 0x800;
	} else if ((p[0] & 0xF8) == 0xF0) {
		n = 4, v = p[0] & 0x07, min = 0x10000;
	} else {
		return -EILSEQ;
	}
	if ((size_t)n > len)
		return -EILSEQ;
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return -EILSEQ;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return -EILSEQ;
	*cp = v;
	return n;
}

static void
push(struct planner *pl, uint8_t mods, uint8_t usage, size_t index)
{
	struct okvm_text_plan *p = pl->p;
	if (p->n == pl->cap) {
		pl->cap = pl->cap ? 2 * pl->cap : 64;
		p->reports = xrealloc(p->reports, pl->cap * sizeof(*p->reports));
		p->char_index = xrealloc(p->char_index, pl->cap * sizeof(*p->char_index));
	}
	struct okvm_kbd_report r = { .modifiers = mods, .keys = { usage } };
	p->reports[p->n] = r;
	p->char_index[p->n] = (uint32_t)index;
	p->n++;
	pl->cur = r;
}

static void
press(struct planner *pl, struct okvm_keystroke k, size_t index)
{
	const struct okvm_kbd_report *cur = &pl->cur;
	if (cur->keys[0]) {
		if (cur->modifiers == k.modifiers && cur->keys[0] != k.usage) {
			push(pl, k.modifiers, k.usage, index);
			return;
		}
		push(pl, cur->modifiers == k.modifiers ? k.modifiers : 0, 0, index);
	}
	push(pl, k.modifiers, k.usage, index);
}

static void
describe_unmappable(struct okvm_text_error *err, const char *s, int n, const char *layout)
{
	int w = snprintf(err->message, sizeof(err->message), "U+%04X", err->cp);
	if (err->cp >= 0x20 && err->cp != 0x7F)
		w += snprintf(err->message + w, sizeof(err->message) - (size_t)w, " '%.*s'", n, s);
	w += snprintf(err->message + w, sizeof(err->message) - (size_t)w,
		      " at %zu: not on layout '%s'", err->char_index, layout);
	if (err->unmappable > 1)
		snprintf(err->message + w, sizeof(err->message) - (size_t)w,
			 " (%zu unmappable characters)", err->unmappable);
}

static int
fail(struct okvm_text_plan *out, int rc)
{
	okvm_text_plan_free(out);
	return rc;
}

/* Walk the text; plan what is typeable, note the rest. Returns 0 or -EILSEQ. */
static int
walk(const struct okvm_keymap *km, const char *s, size_t len, bool caps, struct planner *pl,
     struct okvm_text_error *err)
{
	size_t index = 0;
	for (size_t i = 0; i < len; index++) {
		uint32_t cp;
		int n = okvm_utf8_next(s + i, len - i, &cp);
		if (n < 0) {
			*err = (struct okvm_text_error){ .byte_offset = i, .char_index = index };
			snprintf(err->message, sizeof(err->message),
				 "invalid UTF-8 at byte %zu (character %zu)", i, index);
			return -EILSEQ;
		}
		size_t at = i, ci = index;
		i += (size_t)n;
		if (cp == '\r') {
			cp = '\n';
			if (i < len && s[i] == '\n')
				i++, index++;
		}
		struct okvm_keyseq seq;
		if (okvm_keymap_lookup(km, cp, caps, &seq) < 0) {
			if (!err->unmappable++) {
				err->byte_offset = at;
				err->char_index = ci;
				err->cp = cp;
			}
			continue;
		}
		for (int k = 0; k < seq.n; k++)
			press(pl, seq.k[k], ci);
	}
	pl->p->chars = index;
	return 0;
}

int
okvm_text_plan(const struct okvm_keymap *km, const char *utf8, size_t len,
	       const struct okvm_text_opts *o, struct okvm_text_plan *out,
	       struct okvm_text_error *err)
{
	static const struct okvm_text_opts defaults = { 0 };
	struct okvm_text_error scratch;
	if (!o)
		o = &defaults;
	if (!err)
		err = &scratch;
	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	bool caps_on = o->leds & OKVM_LED_CAPS;
	if (caps_on && o->caps == OKVM_CAPS_REFUSE) {
		snprintf(err->message, sizeof(err->message),
			 "Caps Lock is on on the target (caps mode 'refuse')");
		return -EPERM;
	}
	struct planner pl = { .p = out };
	int rc = walk(km, utf8, len, caps_on && o->caps == OKVM_CAPS_COMPENSATE, &pl, err);
	if (rc < 0)
		return fail(out, rc);
	if (err->unmappable) {
		uint32_t cp;
		int n = okvm_utf8_next(utf8 + err->byte_offset, len - err->byte_offset, &cp);
		describe_unmappable(err, utf8 + err->byte_offset, n, okvm_keymap_layout(km));
		if (!o->skip_unmappable)
			return fail(out, -OKVM_E_UNMAPPABLE);
	}
	out->skipped = err->unmappable;
	push(&pl, 0, 0, out->chars);
	return 0;
}

void
okvm_text_plan_free(struct okvm_text_plan *p)
{
	free(p->reports);
	free(p->char_index);
	memset(p, 0, sizeof(*p));
}
