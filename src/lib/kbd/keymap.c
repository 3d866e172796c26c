/*
 * DESIGN: the reverse map of a target layout, character -> key presses, computed from the layout
 * itself with libxkbcommon rather than from hand-written per-layout tables. For each modifier
 * state (none, Shift, AltGr, AltGr+Shift: cheapest first) an xkb_state is put in that state the
 * way the target's would be (modifier keys pressed, Caps Lock locked or not), and every key of
 * the main block, then the keypad, is asked for its keysym and text. A keysym that starts a
 * Compose sequence is a dead key: characters that no key gives directly are then searched as
 * dead + base and dead + dead + base through the en_US.UTF-8 Compose table (the one the decoder
 * and XKB desktops use). The same questions the decoder asks are asked here, so whatever this
 * map claims the decoder types back exactly; the tests check it on 20+ layouts.
 * Not covered: Level3/Level5 on keys that are not modifiers (Caps Lock, <LSGT> in de:neo: the
 * report's modifier byte cannot hold them), keysyms that give several characters, Multi_key.
 * Built once per layout; lookups are a binary search; read-only afterwards,
 * so a map may be shared by threads once built.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kbd/hid_xkb.h"
#include "okvm/keymap.h"
#include "lib/xalloc.h"

struct entry {
	uint32_t cp;
	xkb_keysym_t sym; /* for single presses: the keysym, a base for dead-key sequences */
	struct okvm_keyseq seq;
};

struct charmap {
	struct entry *e;
	size_t n, cap;
};

struct okvm_keymap {
	char name[2 * OKVM_LAYOUT_NAME_MAX];
	struct charmap map[2]; /* [0] Caps Lock off, [1] on */
};

/* Main block first (letters, digits, punctuation, space, ISO and JIS extra keys), then keypad.
 * Enter, Escape, Backspace and Tab give control characters and are left out. */
static const uint8_t scan_order[] = {
	0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11,
	0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F,
	0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31,
	0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x64, 0x87, 0x89, 0x54, 0x55, 0x56, 0x57, 0x59,
	0x5A, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60, 0x61, 0x62, 0x63, 0x67, 0x85, 0xB6, 0xB7,
};

/* Modifier keys (E0-E7) looked at for Level3 and Level5, AltGr first. */
static const uint8_t level_key_order[] = { 6, 2, 4, 0, 7, 3, 5, 1 };

#define MAX_COMBOS 8

/* One key press and the keysym it gives. */
struct step {
	struct okvm_keystroke k;
	xkb_keysym_t sym;
};

/* Scratch state while building. */
struct builder {
	struct hid_xkb *x;
	struct xkb_compose_state *cs;
	struct charmap *m;
	/* Keysyms of the modifier keys of each modifier byte, as pressed in bit order (the order
	 * in which a host reads the report's bits) from all keys up. */
	xkb_keysym_t combo_sym[256][8];
	uint8_t combo_nsym[256];
	struct step dead[64];
	int ndead;
};

static struct entry *
map_find(const struct charmap *m, uint32_t cp)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].cp == cp)
			return &m->e[i];
	return NULL;
}

static void
map_add(struct charmap *m, uint32_t cp, xkb_keysym_t sym, const struct okvm_keyseq *seq)
{
	if (map_find(m, cp))
		return;
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 256;
		m->e = xrealloc(m->e, m->cap * sizeof(*m->e));
	}
	m->e[m->n++] = (struct entry){ .cp = cp, .sym = sym, .seq = *seq };
}

/* One code point from a short UTF-8 string, or 0 if it holds none or several. */
static uint32_t
single_cp(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	int len;
	if (p[0] < 0x80) {
		cp = p[0];
		len = 1;
	} else if ((p[0] & 0xE0) == 0xC0) {
		cp = p[0] & 0x1F;
		len = 2;
	} else if ((p[0] & 0xF0) == 0xE0) {
		cp = p[0] & 0x0F;
		len = 3;
	} else {
		cp = p[0] & 0x07;
		len = 4;
	}
	for (int i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	return p[len] ? 0 : cp;
}

static bool
printable(uint32_t cp)
{
	return cp >= 0x20 && cp != 0x7F && !(cp >= 0x80 && cp < 0xA0);
}

/*
 * What the target's Compose sees for some presses, from a reset state. When a press needs other
 * modifiers than the one before, the planner releases everything and the host then reads the
 * modifier keys going down in bit order: their keysyms are fed first (xkbcommon ignores most,
 * but 1.5 cancels a sequence on ISO_Level5_Shift, so a sequence is only claimed if it survives
 * them). Same modifiers roll over without new modifier events.
 */
static enum xkb_compose_status
run_steps(struct builder *b, const struct step *s, int n)
{
	xkb_compose_state_reset(b->cs);
	for (int i = 0; i < n; i++) {
		uint8_t mods = s[i].k.modifiers;
		if (i == 0 || mods != s[i - 1].k.modifiers)
			for (int m = 0; m < b->combo_nsym[mods]; m++)
				xkb_compose_state_feed(b->cs, b->combo_sym[mods][m]);
		xkb_compose_state_feed(b->cs, s[i].sym);
	}
	return xkb_compose_state_get_status(b->cs);
}

static bool
text_mods_only(struct xkb_state *st)
{
	static const char *const blocked[] = { XKB_MOD_NAME_CTRL, XKB_MOD_NAME_ALT,
					       XKB_MOD_NAME_LOGO };
	for (size_t i = 0; i < 3; i++)
		if (xkb_state_mod_name_is_active(st, blocked[i], XKB_STATE_MODS_EFFECTIVE) > 0)
			return false;
	return true;
}

static void
note_dead(struct builder *b, const struct step *st)
{
	for (int i = 0; i < b->ndead; i++)
		if (b->dead[i].sym == st->sym)
			return;
	if (b->ndead < (int)(sizeof(b->dead) / sizeof(b->dead[0])))
		b->dead[b->ndead++] = *st;
}

static void
scan_key(struct builder *b, struct xkb_state *st, uint8_t mods, uint8_t usage)
{
	xkb_keycode_t kc = (xkb_keycode_t)okvm_usage_to_evdev(usage) + 8;
	struct step step = { { mods, usage }, xkb_state_key_get_one_sym(st, kc) };
	if (step.sym == XKB_KEY_NoSymbol)
		return;
	if (b->cs) {
		enum xkb_compose_status s = run_steps(b, &step, 1);
		if (s == XKB_COMPOSE_COMPOSING) {
			note_dead(b, &step);
			return;
		}
		if (s != XKB_COMPOSE_NOTHING)
			return;
	}
	char buf[16];
	if (xkb_state_key_get_utf8(st, kc, buf, sizeof(buf)) <= 0)
		return;
	uint32_t cp = single_cp(buf);
	if (printable(cp))
		map_add(b->m, cp, step.sym, &(struct okvm_keyseq){ .n = 1, .k = { step.k } });
}

/*
 * The modifier states to try, cheapest first: none, Shift, Level3, Level3+Shift, Level5, ...
 * Level3 and Level5 are whichever modifier keys the layout makes ISO_Level3_Shift /
 * ISO_Level5_Shift (AltGr = RAlt on most; RCtrl is Level5 on ca:multix). Returns the count.
 */
static int
level_combos(struct xkb_keymap *keymap, uint8_t out[MAX_COMBOS])
{
	uint8_t l3 = 0, l5 = 0;
	struct xkb_state *st = xkb_state_new(keymap);
	if (!st)
		abort();
	for (size_t i = 0; i < sizeof(level_key_order); i++) {
		uint8_t bit = level_key_order[i];
		xkb_keycode_t kc = (xkb_keycode_t)okvm_usage_to_evdev(0xE0 + bit) + 8;
		xkb_keysym_t sym = xkb_state_key_get_one_sym(st, kc);
		if (sym == XKB_KEY_ISO_Level3_Shift && !l3)
			l3 = (uint8_t)(1u << bit);
		if (sym == XKB_KEY_ISO_Level5_Shift && !l5)
			l5 = (uint8_t)(1u << bit);
	}
	xkb_state_unref(st);
	int n = 0;
	const uint8_t levels[] = { 0, l3, l5, (uint8_t)(l3 | l5) };
	for (int i = 0; i < 4; i++) {
		if (i && (!levels[i] || (i == 3 && (!l3 || !l5))))
			continue;
		out[n++] = levels[i];
		out[n++] = levels[i] | OKVM_MOD_LSHIFT;
	}
	return n;
}

/* Every key at one modifier state; the state is built as the target's would be. */
static void
scan_combo(struct builder *b, bool caps, uint8_t mods, size_t from, size_t to)
{
	struct xkb_state *st = xkb_state_new(b->x->keymap);
	if (!st)
		abort();
	xkb_mod_index_t lock = xkb_keymap_mod_get_index(b->x->keymap, XKB_MOD_NAME_CAPS);
	if (caps && lock != XKB_MOD_INVALID)
		xkb_state_update_mask(st, 0, 0, 1u << lock, 0, 0, 0);
	bool usable = true;
	b->combo_nsym[mods] = 0;
	for (int i = 0; i < 8; i++) {
		if (!(mods & (1u << i)))
			continue;
		xkb_keycode_t kc = (xkb_keycode_t)okvm_usage_to_evdev((uint8_t)(0xE0 + i)) + 8;
		xkb_keysym_t sym = xkb_state_key_get_one_sym(st, kc);
		b->combo_sym[mods][b->combo_nsym[mods]++] = sym;
		/* A modifier that starts a sequence itself (Shift+AltGr = Multi_key on mao). */
		if (b->cs && xkb_compose_state_feed(b->cs, sym) == XKB_COMPOSE_FEED_ACCEPTED &&
		    xkb_compose_state_get_status(b->cs) != XKB_COMPOSE_NOTHING)
			usable = false;
		xkb_compose_state_reset(b->cs);
		xkb_state_update_key(st, kc, XKB_KEY_DOWN);
	}
	if (usable && text_mods_only(st))
		for (size_t i = from; i < to; i++)
			scan_key(b, st, mods, scan_order[i]);
	xkb_state_unref(st);
}

static void
try_sequence(struct builder *b, const struct step *s, int n)
{
	char buf[16];
	if (run_steps(b, s, n) != XKB_COMPOSE_COMPOSED)
		return;
	xkb_compose_state_get_utf8(b->cs, buf, sizeof(buf));
	uint32_t cp = single_cp(buf);
	if (!printable(cp))
		return;
	struct okvm_keyseq seq = { .n = (uint8_t)n };
	for (int i = 0; i < n; i++)
		seq.k[i] = s[i].k;
	map_add(b->m, cp, XKB_KEY_NoSymbol, &seq);
}

/* Try dead [+ dead] + base for every base typed by one press; first found (cheapest) wins. */
static void
compose_pass(struct builder *b, int depth)
{
	size_t nbase = b->m->n;
	struct step s[3];
	for (int d1 = 0; d1 < b->ndead; d1++) {
		for (int d2 = 0; d2 < (depth == 3 ? b->ndead : 1); d2++) {
			s[0] = b->dead[d1];
			s[1] = b->dead[d2];
			if (depth == 3 && run_steps(b, s, 2) != XKB_COMPOSE_COMPOSING)
				continue;
			for (size_t i = 0; i < nbase + (size_t)b->ndead; i++) {
				if (i >= nbase) {
					s[depth - 1] = b->dead[i - nbase];
				} else if (b->m->e[i].seq.n == 1) {
					s[depth - 1].k = b->m->e[i].seq.k[0];
					s[depth - 1].sym = b->m->e[i].sym;
				} else {
					continue;
				}
				try_sequence(b, s, depth);
			}
		}
	}
}

static int
entry_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct entry *)a)->cp, y = ((const struct entry *)b)->cp;
	return x < y ? -1 : x > y;
}

static void
build_map(struct hid_xkb *x, bool caps, struct charmap *m)
{
	struct builder b = { .x = x, .m = m }; /* about 9 KB */
	if (x->compose) {
		b.cs = xkb_compose_state_new(x->compose, XKB_COMPOSE_STATE_NO_FLAGS);
		if (!b.cs)
			abort();
	}
	uint8_t combos[MAX_COMBOS];
	int ncombos = level_combos(x->keymap, combos);
	size_t keypad = 0;
	while (scan_order[keypad] != 0x54)
		keypad++;
	for (int c = 0; c < ncombos; c++)
		scan_combo(&b, caps, combos[c], 0, keypad);
	for (int c = 0; c < ncombos; c++)
		scan_combo(&b, caps, combos[c], keypad, sizeof(scan_order));
	if (b.cs) {
		compose_pass(&b, 2);
		compose_pass(&b, 3);
	}
	xkb_compose_state_unref(b.cs);
	qsort(m->e, m->n, sizeof(*m->e), entry_cmp);
}

struct okvm_keymap *
okvm_keymap_new(const char *layout)
{
	struct hid_xkb x;
	if (hid_xkb_open(layout, &x) < 0)
		return NULL;
	struct okvm_keymap *km = xcalloc(1, sizeof(*km));
	snprintf(km->name, sizeof(km->name), "%s", layout);
	build_map(&x, false, &km->map[0]);
	build_map(&x, true, &km->map[1]);
	hid_xkb_close(&x);
	return km;
}

void
okvm_keymap_free(struct okvm_keymap *km)
{
	if (!km)
		return;
	free(km->map[0].e);
	free(km->map[1].e);
	free(km);
}

const char *
okvm_keymap_layout(const struct okvm_keymap *km)
{
	return km->name;
}

int
okvm_keymap_lookup(const struct okvm_keymap *km, uint32_t cp, bool caps_lock,
		   struct okvm_keyseq *out)
{
	if (cp == '\n' || cp == '\t') {
		*out = (struct okvm_keyseq){ .n = 1, .k = { { 0, cp == '\n' ? 0x28 : 0x2B } } };
		return 0;
	}
	const struct charmap *m = &km->map[caps_lock];
	struct entry key = { .cp = cp };
	const struct entry *e = bsearch(&key, m->e, m->n, sizeof(*m->e), entry_cmp);
	if (!e)
		return -ENOENT;
	*out = e->seq;
	return 0;
}

size_t
okvm_keymap_charset(const struct okvm_keymap *km, bool caps_lock, uint32_t *out, size_t cap)
{
	const struct charmap *m = &km->map[caps_lock];
	for (size_t i = 0; i < m->n && i < cap; i++)
		out[i] = m->e[i].cp;
	return m->n;
}

bool
okvm_layout_exists(const char *name)
{
	struct hid_xkb x;
	if (hid_xkb_open(name, &x) < 0)
		return false;
	hid_xkb_close(&x);
	return true;
}
