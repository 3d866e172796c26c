/*
 * Keyboard knowledge: HID usages <-> Linux keycodes, key names and combos, the reverse map of a
 * target layout (character -> keys) and the virtual target's decoder (reports -> text).
 * Layouts are XKB names: "us", "de", "us:dvorak" (also "us(dvorak)"). Everything here is pure
 * computation on the caller's thread; objects are not shared between threads.
 */
#ifndef OKVM_KEYMAP_H
#define OKVM_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "okvm/ch9329.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- HID usage page 0x07 <-> Linux evdev keycode --------------------------------------------- */

/**
 * Linux evdev keycode of a keyboard usage (facts from the kernel's hid-input table).
 * The XKB keycode is this + 8.
 * @return the keycode, or -1 if the usage has none (0x00-0x03, reserved usages).
 */
int okvm_usage_to_evdev(uint8_t usage);

/**
 * Keyboard usage of an evdev keycode. Where several usages share a keycode (0x31 and 0x32 are
 * both KEY_BACKSLASH) the lowest usage, the one a standard keyboard sends, is returned.
 * @return the usage, or -1 if none.
 */
int okvm_evdev_to_usage(int evdev);

/* ---- Layout names ---------------------------------------------------------------------------- */

#define OKVM_LAYOUT_NAME_MAX 64

/**
 * Split "de", "us:dvorak" or "us(dvorak)" into XKB layout and variant ("" when none).
 * @return 0, or -EINVAL for an empty or malformed name (characters other than [A-Za-z0-9_-]).
 */
int okvm_layout_split(const char *name, char layout[OKVM_LAYOUT_NAME_MAX],
		      char variant[OKVM_LAYOUT_NAME_MAX]);

/* ---- Reverse map of a target layout: character -> keys --------------------------------------- */

/** One key press: a usage with the modifier byte held while it goes down. */
struct okvm_keystroke {
	uint8_t modifiers;
	uint8_t usage;
};

#define OKVM_KEYSEQ_MAX 3

/** The presses that type one character: 1, or 2-3 with dead keys (dead key(s) then the base). */
struct okvm_keyseq {
	uint8_t n;
	struct okvm_keystroke k[OKVM_KEYSEQ_MAX];
};

struct okvm_keymap;

/**
 * Build the reverse map of a layout from XKB itself: every key of the main block (then the
 * keypad) at the modifier states none < Shift < AltGr (RAlt) < AltGr+Shift, the cheapest first,
 * and characters reached through dead keys with the en_US.UTF-8 Compose table. Two maps are
 * built: one for Caps Lock off and one for Caps Lock on (keys whose level depends on Lock get
 * the inverse Shift there). Takes a few tens of milliseconds.
 * @return the map, or NULL if the layout does not exist or its name is malformed.
 */
struct okvm_keymap *okvm_keymap_new(const char *layout);

/** NULL is fine. */
void okvm_keymap_free(struct okvm_keymap *km);

/** The layout name as given to okvm_keymap_new(). */
const char *okvm_keymap_layout(const struct okvm_keymap *km);

/**
 * How to type one character (Unicode code point) on this layout.
 * '\n' is Enter, '\t' is Tab. Other control characters are not typeable.
 * @param caps_lock the target's Caps Lock state the sequence must be right for
 * @return 0, or -ENOENT when the layout cannot type it.
 */
int okvm_keymap_lookup(const struct okvm_keymap *km, uint32_t cp, bool caps_lock,
		       struct okvm_keyseq *out);

/**
 * The typeable characters, in increasing code point order (tests, documentation).
 * @param out may be NULL when cap is 0
 * @return the total number (may exceed cap; only cap are written)
 */
size_t okvm_keymap_charset(const struct okvm_keymap *km, bool caps_lock, uint32_t *out, size_t cap);

/** True if XKB can compile the layout ("de", "us:dvorak"). Costs a keymap compile. */
bool okvm_layout_exists(const char *name);

/** One entry of the layout list. */
struct okvm_layout_info {
	char name[2 * OKVM_LAYOUT_NAME_MAX]; /* "de" or "de:nodeadkeys" */
	char description[128];               /* "German", "German (no dead keys)" */
};

/**
 * The layouts and variants Debian's xkb-data lists (rules/evdev.lst; OKVM_XKB_RULES overrides
 * the path), in the file's order, each layout followed by its variants.
 * @param out receives a malloc()ed array the caller free()s
 * @return the number of entries, or -errno (the file cannot be read).
 */
int okvm_layouts_list(struct okvm_layout_info **out);

/* ---- Key names and combos -------------------------------------------------------------------- */

/**
 * A named key. KBD: a usage of page 0x07; modifier keys (usages E0-E7) also set modifier_bit
 * (enum okvm_kbd_mod). MEDIA: media_bit[0..2] are the three bitmap bytes of a multimedia report
 * (id 2, hardware.md 2.13). ACPI: media_bit[0] is the ACPI byte (id 1: Power, Sleep, Wake).
 */
struct okvm_key {
	enum okvm_key_kind { OKVM_KEY_KBD, OKVM_KEY_MEDIA, OKVM_KEY_ACPI } kind;
	uint8_t usage;
	uint8_t modifier_bit;
	uint8_t media_bit[3];
};

/**
 * Look a key up by name, as typed on the command line: case-insensitive, '-' and '_' ignored
 * ("ctrl", "AltGr", "super"/"win"/"meta", "enter", "f1".."f24", "a", "1", "delete",
 * "volume-up", "play-pause", "power"...), and every browser KeyboardEvent.code ("KeyA",
 * "NumpadEnter", "IntlBackslash"). Letters and digits name the key at that US position.
 * @return 0, or -ENOENT.
 */
int okvm_key_lookup(const char *name, struct okvm_key *out);

/**
 * The key of a browser KeyboardEvent.code (exact, case-sensitive), for the web UI.
 * @return 0, or -ENOENT (codes with no HID key, e.g. "Fn").
 */
int okvm_key_from_code(const char *keyboard_event_code, struct okvm_key *out);

/**
 * Entry i of the name table (documentation, `okvm key --list`, tests).
 * @param code receives the KeyboardEvent.code or NULL; names the CLI names, space-separated
 * @return false past the end.
 */
bool okvm_key_table_get(size_t i, const char **code, const char **names, struct okvm_key *out);

/**
 * The KeyboardEvent.code of a keyboard usage (its first entry in the name table: 0x04 "KeyA"),
 * for front-ends whose backend takes codes. NULL for a usage with no code.
 */
const char *okvm_key_usage_code(uint8_t usage);

/**
 * Live keys (web UI, key down/up events): apply one key event to the keyboard state r.
 * Modifier keys set or clear their bit; other keys take or free a slot (slots stay packed, in
 * press order). Pressing a key that is down, or releasing one that is up, changes nothing.
 * @return 1 if r changed, 0 if not, -ENOSPC when a seventh key goes down (r unchanged; a real
 *         keyboard would report rollover), -EINVAL if k is not a keyboard key.
 */
int okvm_kbd_report_apply(struct okvm_kbd_report *r, const struct okvm_key *k, bool down);

/**
 * The same for media and ACPI keys: r becomes the report to send (its id set from k).
 * Returns 1 if r changed, 0 if not, -EINVAL if k is a keyboard key.
 */
int okvm_media_report_apply(struct okvm_media_report *r, const struct okvm_key *k, bool down);

/**
 * A parsed combo: the reports that press it, then the one that releases it.
 * Keyboard: modifiers go down first in their own report, then the keys with them, then all up
 * ("ctrl+alt+delete": {05,-} {05,4C} {00,-}). Media/ACPI: press and release reports of one id.
 */
struct okvm_combo {
	bool is_media; /* true: use media[], else kbd[] */
	int n;         /* reports in kbd[] or media[] */
	struct okvm_kbd_report kbd[3];
	struct okvm_media_report media[2];
};

/**
 * Parse "ctrl+alt+delete", "altgr+q", "shift+f10", "super", "volume-up"... Names are joined by
 * '+'. With a keymap, a single character not in the name table ("@", "ä", "plus" for '+') is
 * looked up on the target layout and brings its own modifiers (ctrl+@ on de = Ctrl+AltGr+Q);
 * letters then also follow the layout (ctrl+z on de presses the key labelled Z, usage 0x1C).
 * @param km may be NULL (US positions)
 * @param err receives one line for the user on failure (may be NULL)
 * @return 0, -ENOENT (a name that does not exist; err names it), -EINVAL (empty combo or part,
 *         media keys mixed with others, more than 6 keys).
 */
int okvm_combo_parse(const char *combo, const struct okvm_keymap *km, struct okvm_combo *out,
		     char *err, size_t errlen);

/* ---- The virtual target's decoder ------------------------------------------------------------ */

struct okvm_kbd_decoder;

/** Called once per key that goes down or up; modifiers appear as usages 0xE0-0xE7. */
typedef void (*okvm_kbd_key_fn)(uint8_t usage, bool down, void *ud);
/** Called with the text the target OS produces for one key press (NUL-terminated UTF-8). */
typedef void (*okvm_kbd_text_fn)(const char *utf8, void *ud);

/**
 * A decoder for the target's layout: XKB keymap (rules evdev, model pc105), xkb_state and the
 * en_US.UTF-8 Compose table for dead keys. All keys up, all LEDs off.
 * @return the decoder, or NULL if the layout does not exist (or its name is malformed).
 */
struct okvm_kbd_decoder *okvm_kbd_decoder_new(const char *layout);

/**
 * Feed one keyboard report. Diffs it against the previous one and reports, in the order a real
 * host sees them, all releases (modifiers first) then all presses (modifiers first); usages
 * E0-E7 found in the key slots (the QT "CH9329 workaround") count as modifiers. Text is what an
 * XKB desktop would insert on each press: Enter "\n", Tab "\t", Backspace "\b", dead keys
 * composed, nothing while Ctrl, Alt or Super is held and nothing for other control keys.
 * Caps, Num and Scroll Lock toggle their LED on press and act on the text as on a real OS.
 * A report whose slots hold ErrorRollOver (0x01) is ignored, as a host does.
 * @param on_key, on_text may be NULL
 * @return the LED bits (enum okvm_led) after the report
 */
uint8_t okvm_kbd_decoder_feed(struct okvm_kbd_decoder *d, const struct okvm_kbd_report *r,
			      okvm_kbd_key_fn on_key, okvm_kbd_text_fn on_text, void *ud);

/** Set the lock state (enum okvm_led bits), e.g. the target booted with Num Lock on. */
void okvm_kbd_decoder_set_leds(struct okvm_kbd_decoder *d, uint8_t leds);

/** Current LED bits. */
uint8_t okvm_kbd_decoder_leds(const struct okvm_kbd_decoder *d);

/** NULL is fine. */
void okvm_kbd_decoder_free(struct okvm_kbd_decoder *d);

#ifdef __cplusplus
}
#endif
#endif
