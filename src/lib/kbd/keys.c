/*
 * DESIGN: key names, one table shared by the CLI (`okvm key ctrl+alt+delete`) and the web UI
 * (browser KeyboardEvent.code -> HID). Each row is one key: its KeyboardEvent.code (UI Events
 * "KeyboardEvent code Values", with the USB usage that document gives), the names people type,
 * and what to send: a usage of page 0x07, a modifier bit, or a bit of the CH9329 multimedia or
 * ACPI report (hardware.md 2.13). Browser media keys (AudioVolumeUp...) go out as media reports:
 * every target OS honours those, while keyboard-page volume usages are Linux-only.
 * The combo parser builds the press reports and the release report; with a keymap it also
 * accepts characters of the target layout. Pure and stateless.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "okvm/keymap.h"
#include "okvm/text.h"

struct key_def {
	const char *code;  /* KeyboardEvent.code, NULL if none */
	const char *names; /* CLI names, space-separated */
	uint8_t kind;
	uint8_t usage; /* KBD: usage; MEDIA: byte index 0-2; ACPI: 0 */
	uint8_t bit;   /* KBD: modifier bit; MEDIA/ACPI: bit mask */
};

/* clang-format off */
#define K(code, names, usage) { code, names, OKVM_KEY_KBD, usage, 0 }
#define MOD(code, names, usage, bit) { code, names, OKVM_KEY_KBD, usage, bit }
#define MEDIA(code, names, byte, bit) { code, names, OKVM_KEY_MEDIA, byte, bit }
#define ACPI(code, names, bit) { code, names, OKVM_KEY_ACPI, 0, bit }
/* clang-format on */

/* clang-format off */
static const struct key_def keys[] = {
	MOD("ControlLeft", "ctrl control lctrl ctrl-left", 0xE0, OKVM_MOD_LCTRL),
	MOD("ShiftLeft", "shift lshift shift-left", 0xE1, OKVM_MOD_LSHIFT),
	MOD("AltLeft", "alt lalt alt-left option", 0xE2, OKVM_MOD_LALT),
	MOD("MetaLeft", "super win meta cmd gui windows lsuper lwin lmeta", 0xE3, OKVM_MOD_LGUI),
	MOD("ControlRight", "rctrl ctrl-right", 0xE4, OKVM_MOD_RCTRL),
	MOD("ShiftRight", "rshift shift-right", 0xE5, OKVM_MOD_RSHIFT),
	MOD("AltRight", "altgr ralt alt-right", 0xE6, OKVM_MOD_RALT),
	MOD("MetaRight", "rsuper rwin rmeta", 0xE7, OKVM_MOD_RGUI),
	MOD("OSLeft", "", 0xE3, OKVM_MOD_LGUI),  /* older Firefox */
	MOD("OSRight", "", 0xE7, OKVM_MOD_RGUI),
	K("KeyA", "a", 0x04), K("KeyB", "b", 0x05), K("KeyC", "c", 0x06), K("KeyD", "d", 0x07),
	K("KeyE", "e", 0x08), K("KeyF", "f", 0x09), K("KeyG", "g", 0x0A), K("KeyH", "h", 0x0B),
	K("KeyI", "i", 0x0C), K("KeyJ", "j", 0x0D), K("KeyK", "k", 0x0E), K("KeyL", "l", 0x0F),
	K("KeyM", "m", 0x10), K("KeyN", "n", 0x11), K("KeyO", "o", 0x12), K("KeyP", "p", 0x13),
	K("KeyQ", "q", 0x14), K("KeyR", "r", 0x15), K("KeyS", "s", 0x16), K("KeyT", "t", 0x17),
	K("KeyU", "u", 0x18), K("KeyV", "v", 0x19), K("KeyW", "w", 0x1A), K("KeyX", "x", 0x1B),
	K("KeyY", "y", 0x1C), K("KeyZ", "z", 0x1D),
	K("Digit1", "1", 0x1E), K("Digit2", "2", 0x1F), K("Digit3", "3", 0x20),
	K("Digit4", "4", 0x21), K("Digit5", "5", 0x22), K("Digit6", "6", 0x23),
	K("Digit7", "7", 0x24), K("Digit8", "8", 0x25), K("Digit9", "9", 0x26),
	K("Digit0", "0", 0x27),
	K("Enter", "enter return ret", 0x28), K("Escape", "esc escape", 0x29),
	K("Backspace", "backspace bksp bs", 0x2A), K("Tab", "tab", 0x2B),
	K("Space", "space spc", 0x2C), K("Minus", "minus -", 0x2D),
	K("Equal", "equal equals =", 0x2E),
	K("BracketLeft", "bracket-left lbracket [", 0x2F),
	K("BracketRight", "bracket-right rbracket ]", 0x30), K("Backslash", "backslash \\", 0x31),
	K("Semicolon", "semicolon ;", 0x33), K("Quote", "quote apostrophe '", 0x34),
	K("Backquote", "backquote grave backtick `", 0x35), K("Comma", "comma ,", 0x36),
	K("Period", "period dot .", 0x37), K("Slash", "slash /", 0x38),
	K("CapsLock", "capslock caps", 0x39),
	K("F1", "f1", 0x3A), K("F2", "f2", 0x3B), K("F3", "f3", 0x3C), K("F4", "f4", 0x3D),
	K("F5", "f5", 0x3E), K("F6", "f6", 0x3F), K("F7", "f7", 0x40), K("F8", "f8", 0x41),
	K("F9", "f9", 0x42), K("F10", "f10", 0x43), K("F11", "f11", 0x44), K("F12", "f12", 0x45),
	K("PrintScreen", "printscreen print prtsc prtscr sysrq", 0x46),
	K("ScrollLock", "scrolllock scrlk scroll", 0x47), K("Pause", "pause break", 0x48),
	K("Insert", "insert ins", 0x49), K("Home", "home", 0x4A), K("PageUp", "pageup pgup", 0x4B),
	K("Delete", "delete del", 0x4C), K("End", "end", 0x4D),
	K("PageDown", "pagedown pgdn", 0x4E), K("ArrowRight", "right", 0x4F),
	K("ArrowLeft", "left", 0x50), K("ArrowDown", "down", 0x51), K("ArrowUp", "up", 0x52),
	K("NumLock", "numlock numlk", 0x53), K("NumpadDivide", "kp-divide kp-slash", 0x54),
	K("NumpadMultiply", "kp-multiply kp-asterisk", 0x55),
	K("NumpadSubtract", "kp-subtract kp-minus", 0x56), K("NumpadAdd", "kp-add kp-plus", 0x57),
	K("NumpadEnter", "kp-enter", 0x58), K("Numpad1", "kp1 kp-1", 0x59),
	K("Numpad2", "kp2 kp-2", 0x5A), K("Numpad3", "kp3 kp-3", 0x5B),
	K("Numpad4", "kp4 kp-4", 0x5C), K("Numpad5", "kp5 kp-5", 0x5D),
	K("Numpad6", "kp6 kp-6", 0x5E), K("Numpad7", "kp7 kp-7", 0x5F),
	K("Numpad8", "kp8 kp-8", 0x60), K("Numpad9", "kp9 kp-9", 0x61),
	K("Numpad0", "kp0 kp-0", 0x62), K("NumpadDecimal", "kp-decimal kp-dot", 0x63),
	K("IntlBackslash", "102nd lsgt iso-backslash", 0x64),
	K("ContextMenu", "menu context-menu apps compose", 0x65),
	K("NumpadEqual", "kp-equal", 0x67),
	K("F13", "f13", 0x68), K("F14", "f14", 0x69), K("F15", "f15", 0x6A), K("F16", "f16", 0x6B),
	K("F17", "f17", 0x6C), K("F18", "f18", 0x6D), K("F19", "f19", 0x6E), K("F20", "f20", 0x6F),
	K("F21", "f21", 0x70), K("F22", "f22", 0x71), K("F23", "f23", 0x72), K("F24", "f24", 0x73),
	K("Open", "open", 0x74), K("Help", "help", 0x75), K("Props", "props", 0x76),
	K("Select", "select", 0x77), K("Again", "again redo", 0x79), K("Undo", "undo", 0x7A),
	K("Cut", "cut", 0x7B), K("Copy", "copy", 0x7C), K("Paste", "paste", 0x7D),
	K("Find", "find", 0x7E), K("NumpadComma", "kp-comma", 0x85),
	K("IntlRo", "ro", 0x87), K("KanaMode", "kana katakana-hiragana", 0x88),
	K("IntlYen", "yen", 0x89), K("Convert", "henkan convert", 0x8A),
	K("NonConvert", "muhenkan nonconvert", 0x8B),
	K("Lang1", "lang1 hangeul hangul", 0x90), K("Lang2", "lang2 hanja", 0x91),
	K("Lang3", "lang3", 0x92), K("Katakana", "katakana", 0x92),
	K("Lang4", "lang4", 0x93), K("Hiragana", "hiragana", 0x93),
	K("Lang5", "lang5 zenkaku-hankaku", 0x94),
	K("NumpadParenLeft", "kp-paren-left", 0xB6), K("NumpadParenRight", "kp-paren-right", 0xB7),
	K("NumpadClear", "kp-clear", 0xD8),
	MEDIA("AudioVolumeUp", "volume-up volup", 0, 0x01),
	MEDIA("AudioVolumeDown", "volume-down voldown", 0, 0x02),
	MEDIA("AudioVolumeMute", "mute volume-mute", 0, 0x04),
	MEDIA("MediaPlayPause", "play-pause play", 0, 0x08),
	MEDIA("MediaTrackNext", "next-track next", 0, 0x10),
	MEDIA("MediaTrackPrevious", "prev-track previous-track prev", 0, 0x20),
	MEDIA("MediaStop", "stop media-stop", 0, 0x40), MEDIA("Eject", "eject", 0, 0x80),
	MEDIA("LaunchMail", "mail email", 1, 0x01), MEDIA("BrowserSearch", "www-search", 1, 0x02),
	MEDIA("BrowserFavorites", "www-favorites", 1, 0x04),
	MEDIA("BrowserHome", "www-home", 1, 0x08), MEDIA("BrowserBack", "www-back", 1, 0x10),
	MEDIA("BrowserForward", "www-forward", 1, 0x20), MEDIA("BrowserStop", "www-stop", 1, 0x40),
	MEDIA("BrowserRefresh", "www-refresh refresh", 1, 0x80),
	MEDIA("MediaSelect", "media", 2, 0x01), MEDIA(NULL, "explorer", 2, 0x02),
	MEDIA("LaunchApp2", "calculator calc", 2, 0x04), MEDIA(NULL, "screensaver", 2, 0x08),
	MEDIA("LaunchApp1", "my-computer", 2, 0x10), MEDIA(NULL, "minimize", 2, 0x20),
	MEDIA(NULL, "record", 2, 0x40), MEDIA(NULL, "rewind", 2, 0x80),
	ACPI("Power", "power", 0x01), ACPI("Sleep", "sleep", 0x02),
	ACPI("WakeUp", "wake wakeup", 0x04),
};
/* clang-format on */

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void
fill(const struct key_def *d, struct okvm_key *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = (enum okvm_key_kind)d->kind;
	if (d->kind == OKVM_KEY_KBD) {
		out->usage = d->usage;
		out->modifier_bit = d->bit;
	} else {
		out->media_bit[d->usage] = d->bit;
	}
}

/* Case-insensitive comparison that skips '-' and '_' on both sides ("Volume_Up" = "volumeup"). */
static bool
loose_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0, j = 0;
	for (;;) {
		while (i < alen && (a[i] == '-' || a[i] == '_') && alen > 1)
			i++;
		while (j < blen && (b[j] == '-' || b[j] == '_') && blen > 1)
			j++;
		if (i == alen || j == blen)
			return i == alen && j == blen;
		if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[j]))
			return false;
		i++, j++;
	}
}

static bool
names_match(const char *names, const char *name, size_t len)
{
	for (const char *p = names; *p;) {
		size_t n = strcspn(p, " ");
		if (n && loose_equal(p, n, name, len))
			return true;
		p += n + strspn(p + n, " ");
	}
	return false;
}

static const struct key_def *
find_name(const char *name, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (names_match(keys[i].names, name, len))
			return &keys[i];
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].code && loose_equal(keys[i].code, strlen(keys[i].code), name, len))
			return &keys[i];
	return NULL;
}

int
okvm_key_lookup(const char *name, struct okvm_key *out)
{
	const struct key_def *d = name ? find_name(name, strlen(name)) : NULL;
	if (!d)
		return -ENOENT;
	fill(d, out);
	return 0;
}

int
okvm_key_from_code(const char *code, struct okvm_key *out)
{
	for (size_t i = 0; code && i < NKEYS; i++) {
		if (keys[i].code && !strcmp(keys[i].code, code)) {
			fill(&keys[i], out);
			return 0;
		}
	}
	return -ENOENT;
}

bool
okvm_key_table_get(size_t i, const char **code, const char **names, struct okvm_key *out)
{
	if (i >= NKEYS)
		return false;
	if (code)
		*code = keys[i].code;
	if (names)
		*names = keys[i].names;
	if (out)
		fill(&keys[i], out);
	return true;
}

const char *
okvm_key_usage_code(uint8_t usage)
{
	for (size_t i = 0; i < NKEYS; i++) {
		struct okvm_key k;
		fill(&keys[i], &k);
		if (keys[i].code && k.kind == OKVM_KEY_KBD && k.usage == usage)
			return keys[i].code;
	}
	return NULL;
}

/* ---- live state ---- */

static int
slot_of(const struct okvm_kbd_report *r, uint8_t usage)
{
	for (int i = 0; i < 6; i++)
		if (r->keys[i] == usage)
			return i;
	return -1;
}

int
okvm_kbd_report_apply(struct okvm_kbd_report *r, const struct okvm_key *k, bool down)
{
	if (k->kind != OKVM_KEY_KBD || !k->usage)
		return -EINVAL;
	if (k->modifier_bit) {
		uint8_t was = r->modifiers;
		r->modifiers = down ? was | k->modifier_bit : was & ~k->modifier_bit;
		return r->modifiers != was;
	}
	int at = slot_of(r, k->usage);
	if (down) {
		int free_slot = slot_of(r, 0);
		if (at >= 0)
			return 0;
		if (free_slot < 0)
			return -ENOSPC;
		r->keys[free_slot] = k->usage;
		return 1;
	}
	if (at < 0)
		return 0;
	memmove(&r->keys[at], &r->keys[at + 1], (size_t)(5 - at));
	r->keys[5] = 0;
	return 1;
}

int
okvm_media_report_apply(struct okvm_media_report *r, const struct okvm_key *k, bool down)
{
	if (k->kind == OKVM_KEY_KBD)
		return -EINVAL;
	uint8_t id = k->kind == OKVM_KEY_ACPI ? OKVM_MEDIA_ACPI : OKVM_MEDIA_MULTIMEDIA;
	struct okvm_media_report before = *r;
	if (r->report_id != id)
		*r = (struct okvm_media_report){ .report_id = id };
	for (int i = 0; i < 3; i++)
		r->bits[i] = down ? r->bits[i] | k->media_bit[i] : r->bits[i] & ~k->media_bit[i];
	return memcmp(&before, r, sizeof(*r)) != 0;
}

/* ---- combos ---- */

struct combo_acc {
	uint8_t mods;
	uint8_t keys[6];
	int nkeys;
	int media_kind; /* -1 none, else OKVM_KEY_MEDIA / OKVM_KEY_ACPI */
	uint8_t media[3];
	bool kbd; /* any keyboard key or modifier */
};

static int
set_err(char *err, size_t errlen, int rc, const char *fmt, const char *part, size_t n,
	const char *combo)
{
	if (err && errlen) {
		char what[64];
		snprintf(what, sizeof(what), "%.*s", (int)(n < 63 ? n : 63), part);
		snprintf(err, errlen, fmt, what, combo);
	}
	return rc;
}

/* A single character of the target layout ("@", "ä", "plus"), as one key press. */
static bool
layout_char(const struct okvm_keymap *km, const char *part, size_t n, struct okvm_keystroke *k)
{
	uint32_t cp;
	if (!km)
		return false;
	if (loose_equal(part, n, "plus", 4))
		cp = '+';
	else if (okvm_utf8_next(part, n, &cp) != (int)n)
		return false;
	if (cp >= 'A' && cp <= 'Z')
		cp += 'a' - 'A'; /* ctrl+Z means the Z key, not Shift */
	struct okvm_keyseq seq;
	if (okvm_keymap_lookup(km, cp, false, &seq) < 0 || seq.n != 1)
		return false;
	*k = seq.k[0];
	return true;
}

static int
add_kbd(struct combo_acc *a, uint8_t mods, uint8_t usage)
{
	a->kbd = true;
	a->mods |= mods;
	if (!usage)
		return 0;
	for (int i = 0; i < a->nkeys; i++)
		if (a->keys[i] == usage)
			return 0;
	if (a->nkeys == 6)
		return -EINVAL;
	a->keys[a->nkeys++] = usage;
	return 0;
}

static int
add_part(struct combo_acc *a, const char *part, size_t n, const struct okvm_keymap *km)
{
	struct okvm_keystroke k;
	uint32_t cp;
	bool one_char = okvm_utf8_next(part, n, &cp) == (int)n && !(cp >= '0' && cp <= '9');
	if ((one_char || !find_name(part, n)) && layout_char(km, part, n, &k))
		return add_kbd(a, k.modifiers, k.usage);
	const struct key_def *d = find_name(part, n);
	if (!d)
		return -ENOENT;
	if (d->kind == OKVM_KEY_KBD)
		return add_kbd(a, d->bit, d->bit ? 0 : d->usage);
	if (a->media_kind >= 0 && a->media_kind != d->kind)
		return -EINVAL;
	a->media_kind = d->kind;
	a->media[d->usage] |= d->bit;
	return 0;
}

static void
build_combo(const struct combo_acc *a, struct okvm_combo *out)
{
	memset(out, 0, sizeof(*out));
	if (a->media_kind >= 0) {
		out->is_media = true;
		out->n = 2;
		out->media[0].report_id = a->media_kind == OKVM_KEY_ACPI ? OKVM_MEDIA_ACPI
									 : OKVM_MEDIA_MULTIMEDIA;
		memcpy(out->media[0].bits, a->media, 3);
		out->media[1].report_id = out->media[0].report_id;
		return;
	}
	if (a->mods && a->nkeys)
		out->kbd[out->n++].modifiers = a->mods;
	struct okvm_kbd_report *r = &out->kbd[out->n++];
	r->modifiers = a->mods;
	memcpy(r->keys, a->keys, (size_t)a->nkeys);
	out->n++; /* the release: all zero */
}

int
okvm_combo_parse(const char *combo, const struct okvm_keymap *km, struct okvm_combo *out, char *err,
		 size_t errlen)
{
	struct combo_acc a = { .media_kind = -1 };
	const char *p = combo ? combo : "";
	if (!*p)
		return set_err(err, errlen, -EINVAL, "empty key combo%s%s", "", 0, "");
	for (;;) {
		size_t n = strcspn(p, "+");
		const char *part = p;
		while (n && isspace((unsigned char)*part))
			part++, n--;
		while (n && isspace((unsigned char)part[n - 1]))
			n--;
		if (!n)
			return set_err(err, errlen, -EINVAL, "empty key name%s in '%s'", "", 0,
				       combo);
		int rc = add_part(&a, part, n, km);
		if (rc == -ENOENT)
			return set_err(err, errlen, rc, "unknown key '%s' in '%s'", part, n, combo);
		if (rc < 0)
			return set_err(err, errlen, rc,
				       "key '%s' cannot go in '%s' (media keys "
				       "stand alone; at most 6 keys)",
				       part, n, combo);
		p += strcspn(p, "+");
		if (!*p)
			break;
		p++;
	}
	if (a.media_kind >= 0 && a.kbd)
		return set_err(err, errlen, -EINVAL,
			       "media keys%s cannot be combined with "
			       "keyboard keys in '%s'",
			       "", 0, combo);
	build_combo(&a, out);
	return 0;
}
