/* The virtual target's decoder: hand-written reports (usages from the HID tables, not from the
 * planner) in, the text an XKB desktop would produce out, per layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "okvm/keymap.h"

#define SHIFT OKVM_MOD_LSHIFT
#define ALTGR OKVM_MOD_RALT
#define CTRL OKVM_MOD_LCTRL

struct sink {
	char text[512];
	size_t len;
	struct {
		uint8_t usage;
		bool down;
	} ev[64];
	int nev;
};

static void
on_key(uint8_t usage, bool down, void *ud)
{
	struct sink *s = ud;
	if (s->nev < 64) {
		s->ev[s->nev].usage = usage;
		s->ev[s->nev].down = down;
		s->nev++;
	}
}

static void
on_text(const char *utf8, void *ud)
{
	struct sink *s = ud;
	size_t n = strlen(utf8);
	assert_true(s->len + n < sizeof(s->text));
	memcpy(s->text + s->len, utf8, n + 1);
	s->len += n;
}

static uint8_t
feed(struct okvm_kbd_decoder *d, struct sink *s, uint8_t mods, uint8_t k0, uint8_t k1)
{
	struct okvm_kbd_report r = { .modifiers = mods, .keys = { k0, k1 } };
	return okvm_kbd_decoder_feed(d, &r, on_key, on_text, s);
}

/* Press a key with modifiers, then release everything. */
static void
tap(struct okvm_kbd_decoder *d, struct sink *s, uint8_t mods, uint8_t usage)
{
	feed(d, s, mods, usage, 0);
	feed(d, s, 0, 0, 0);
}

static struct okvm_kbd_decoder *
open_layout(const char *name, struct sink *s)
{
	memset(s, 0, sizeof(*s));
	struct okvm_kbd_decoder *d = okvm_kbd_decoder_new(name);
	assert_non_null(d);
	return d;
}

static void
test_hello_world_us(void **state)
{
	(void)state;
	static const struct {
		uint8_t mods, usage;
	} keys[] = {
		{ SHIFT, 0x0B }, { 0, 0x08 }, { 0, 0x0F },     { 0, 0x0F }, { 0, 0x12 },
		{ 0, 0x36 },     { 0, 0x2C }, { SHIFT, 0x1A }, { 0, 0x12 }, { 0, 0x15 },
		{ 0, 0x0F },     { 0, 0x07 }, { SHIFT, 0x1E },
	};
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("us", &s);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		tap(d, &s, keys[i].mods, keys[i].usage);
	assert_string_equal(s.text, "Hello, World!");
	okvm_kbd_decoder_free(d);
}

static void
test_de(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("de", &s);
	tap(d, &s, 0, 0x1C); /* the key US calls Y */
	tap(d, &s, 0, 0x1D); /* the key US calls Z */
	tap(d, &s, ALTGR, 0x14);
	tap(d, &s, SHIFT, 0x1F); /* Shift+2 */
	tap(d, &s, ALTGR, 0x08);
	tap(d, &s, 0, 0x33);
	assert_string_equal(s.text, "zy@\"€ö");
	okvm_kbd_decoder_free(d);
}

static void
test_fr(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("fr", &s);
	tap(d, &s, 0, 0x04);
	tap(d, &s, 0, 0x14);
	tap(d, &s, 0, 0x1E); /* unshifted digit row gives symbols on AZERTY */
	tap(d, &s, SHIFT, 0x1E);
	assert_string_equal(s.text, "qa&1");
	okvm_kbd_decoder_free(d);
}

static void
test_dead_keys_us_intl(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("us:intl", &s);
	tap(d, &s, 0, 0x34); /* dead_acute: nothing yet */
	assert_int_equal(s.len, 0);
	tap(d, &s, 0, 0x08);
	tap(d, &s, SHIFT, 0x34); /* dead_diaeresis */
	tap(d, &s, 0, 0x18);
	tap(d, &s, SHIFT, 0x35); /* dead_tilde */
	tap(d, &s, 0, 0x11);
	tap(d, &s, SHIFT, 0x23); /* dead_circumflex */
	tap(d, &s, SHIFT, 0x08);
	assert_string_equal(s.text, "éüñÊ");
	okvm_kbd_decoder_free(d);
}

/* Releases first, modifiers first: {Shift, a} right after {0, b} types "bA". */
static void
test_event_order(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("us", &s);
	feed(d, &s, 0, 0x05, 0);
	feed(d, &s, SHIFT, 0x04, 0);
	feed(d, &s, 0, 0, 0);
	assert_string_equal(s.text, "bA");
	static const struct {
		uint8_t usage;
		bool down;
	} want[] = {
		{ 0x05, true }, { 0x05, false }, { 0xE1, true },
		{ 0x04, true }, { 0xE1, false }, { 0x04, false },
	};
	assert_int_equal(s.nev, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(s.ev[i].usage, want[i].usage);
		assert_int_equal(s.ev[i].down, want[i].down);
	}
	okvm_kbd_decoder_free(d);
}

/* The QT workaround puts modifiers in key slots too: one E1 press, not two. */
static void
test_slot_modifiers(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("us", &s);
	feed(d, &s, SHIFT, 0xE1, 0x04);
	feed(d, &s, 0, 0, 0);
	feed(d, &s, 0, 0xE1, 0x05); /* shift only as a slot */
	feed(d, &s, 0, 0, 0);
	assert_string_equal(s.text, "AB");
	assert_int_equal(s.nev, 8);
	assert_int_equal(s.ev[0].usage, 0xE1);
	assert_int_equal(s.ev[1].usage, 0x04);
	okvm_kbd_decoder_free(d);
}

static void
test_control_keys(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("us", &s);
	tap(d, &s, 0, 0x28);             /* Enter */
	tap(d, &s, 0, 0x2B);             /* Tab */
	tap(d, &s, 0, 0x2A);             /* Backspace */
	tap(d, &s, 0, 0x29);             /* Escape: no text */
	tap(d, &s, 0, 0x4C);             /* Delete: no text */
	tap(d, &s, CTRL, 0x06);          /* Ctrl+C: no text */
	tap(d, &s, OKVM_MOD_LALT, 0x2B); /* Alt+Tab: no text */
	tap(d, &s, OKVM_MOD_LGUI, 0x0F); /* Super+L: no text */
	tap(d, &s, 0, 0x3A);             /* F1 */
	tap(d, &s, 0, 0x58);             /* keypad Enter */
	assert_string_equal(s.text, "\n\t\b\n");
	okvm_kbd_decoder_free(d);
}

static void
test_caps_lock(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("us", &s);
	assert_int_equal(feed(d, &s, 0, 0x39, 0), OKVM_LED_CAPS);
	assert_int_equal(feed(d, &s, 0, 0, 0), OKVM_LED_CAPS);
	tap(d, &s, 0, 0x04);
	tap(d, &s, SHIFT, 0x05);
	tap(d, &s, 0, 0x1E);
	tap(d, &s, SHIFT, 0x1E);
	assert_int_equal(feed(d, &s, 0, 0x39, 0), 0);
	tap(d, &s, 0, 0x06);
	assert_string_equal(s.text, "Ab1!c");
	okvm_kbd_decoder_free(d);
}

static void
test_num_lock_and_set_leds(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("us", &s);
	tap(d, &s, 0, 0x59); /* KP1 without Num Lock: End, no text */
	assert_int_equal(s.len, 0);
	tap(d, &s, 0, 0x53);
	assert_int_equal(okvm_kbd_decoder_leds(d), OKVM_LED_NUM);
	tap(d, &s, 0, 0x59);
	tap(d, &s, 0, 0x47); /* Scroll Lock */
	assert_int_equal(okvm_kbd_decoder_leds(d), OKVM_LED_NUM | OKVM_LED_SCROLL);
	okvm_kbd_decoder_set_leds(d, OKVM_LED_CAPS);
	tap(d, &s, 0, 0x59);
	tap(d, &s, 0, 0x04);
	okvm_kbd_decoder_set_leds(d, OKVM_LED_NUM);
	tap(d, &s, 0, 0x5A);
	tap(d, &s, 0, 0x04);
	assert_string_equal(s.text, "1A2a");
	okvm_kbd_decoder_free(d);
}

/* set_leds while Shift is held keeps Shift in effect. */
static void
test_set_leds_keeps_held_keys(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("us", &s);
	feed(d, &s, SHIFT, 0, 0);
	okvm_kbd_decoder_set_leds(d, 0);
	feed(d, &s, SHIFT, 0x04, 0);
	feed(d, &s, 0, 0, 0);
	assert_string_equal(s.text, "A");
	okvm_kbd_decoder_free(d);
}

static void
test_rollover_ignored(void **state)
{
	(void)state;
	struct sink s;
	struct okvm_kbd_decoder *d = open_layout("us", &s);
	feed(d, &s, 0, 0x04, 0);
	struct okvm_kbd_report r = { .keys = { 1, 1, 1, 1, 1, 1 } };
	okvm_kbd_decoder_feed(d, &r, on_key, on_text, &s);
	feed(d, &s, 0, 0x04, 0x05);
	feed(d, &s, 0, 0, 0);
	assert_string_equal(s.text, "ab");
	okvm_kbd_decoder_free(d);
}

static void
test_unknown_layout(void **state)
{
	(void)state;
	assert_null(okvm_kbd_decoder_new("xx-nonexistent"));
	assert_null(okvm_kbd_decoder_new("us:nonexistent"));
	assert_null(okvm_kbd_decoder_new(""));
	assert_null(okvm_kbd_decoder_new("us,de"));
	okvm_kbd_decoder_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_world_us),
		cmocka_unit_test(test_de),
		cmocka_unit_test(test_fr),
		cmocka_unit_test(test_dead_keys_us_intl),
		cmocka_unit_test(test_event_order),
		cmocka_unit_test(test_slot_modifiers),
		cmocka_unit_test(test_control_keys),
		cmocka_unit_test(test_caps_lock),
		cmocka_unit_test(test_num_lock_and_set_leds),
		cmocka_unit_test(test_set_leds_keeps_held_keys),
		cmocka_unit_test(test_rollover_ignored),
		cmocka_unit_test(test_unknown_layout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
