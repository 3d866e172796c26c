/* HID usage <-> evdev: kernel facts, the lowest-usage rule for duplicates, and agreement with the
 * key names of XKB's evdev keycodes (an independent source: xkeyboard-config). */
#include <errno.h>
#include <linux/input-event-codes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <xkbcommon/xkbcommon.h>

#include "okvm/keymap.h"

static void
test_known_usages(void **state)
{
	(void)state;
	/* clang-format off */
	static const struct { uint8_t usage; int evdev; } facts[] = {
		{ 0x04, KEY_A }, { 0x1D, KEY_Z }, { 0x1E, KEY_1 }, { 0x27, KEY_0 },
		{ 0x28, KEY_ENTER }, { 0x2A, KEY_BACKSPACE }, { 0x2B, KEY_TAB }, { 0x2C, KEY_SPACE },
		{ 0x39, KEY_CAPSLOCK }, { 0x3A, KEY_F1 }, { 0x45, KEY_F12 }, { 0x46, KEY_SYSRQ },
		{ 0x4C, KEY_DELETE }, { 0x53, KEY_NUMLOCK }, { 0x58, KEY_KPENTER }, { 0x62, KEY_KP0 },
		{ 0x63, KEY_KPDOT }, { 0x64, KEY_102ND }, { 0x65, KEY_COMPOSE }, { 0x67, KEY_KPEQUAL },
		{ 0x68, KEY_F13 }, { 0x73, KEY_F24 }, { 0x85, KEY_KPCOMMA }, { 0x87, KEY_RO },
		{ 0x88, KEY_KATAKANAHIRAGANA }, { 0x89, KEY_YEN }, { 0x8A, KEY_HENKAN },
		{ 0x8B, KEY_MUHENKAN }, { 0x90, KEY_HANGEUL }, { 0x91, KEY_HANJA },
		{ 0xE0, KEY_LEFTCTRL }, { 0xE1, KEY_LEFTSHIFT }, { 0xE2, KEY_LEFTALT },
		{ 0xE3, KEY_LEFTMETA }, { 0xE4, KEY_RIGHTCTRL }, { 0xE5, KEY_RIGHTSHIFT },
		{ 0xE6, KEY_RIGHTALT }, { 0xE7, KEY_RIGHTMETA },
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
		assert_int_equal(okvm_usage_to_evdev(facts[i].usage), facts[i].evdev);
		assert_int_equal(okvm_evdev_to_usage(facts[i].evdev), facts[i].usage);
	}
}

static void
test_no_mapping(void **state)
{
	(void)state;
	for (int u = 0; u < 4; u++)
		assert_int_equal(okvm_usage_to_evdev((uint8_t)u), -1);
	assert_int_equal(okvm_usage_to_evdev(0x82), -1);
	assert_int_equal(okvm_usage_to_evdev(0xA0), -1);
	assert_int_equal(okvm_evdev_to_usage(0), -1);
	assert_int_equal(okvm_evdev_to_usage(-5), -1);
	assert_int_equal(okvm_evdev_to_usage(100000), -1);
	assert_int_equal(okvm_evdev_to_usage(KEY_BRIGHTNESSUP), -1);
}

/* Duplicates resolve to the usage a standard keyboard sends. */
static void
test_duplicates(void **state)
{
	(void)state;
	assert_int_equal(okvm_usage_to_evdev(0x32), KEY_BACKSLASH);
	assert_int_equal(okvm_evdev_to_usage(KEY_BACKSLASH), 0x31);
	assert_int_equal(okvm_usage_to_evdev(0x9C), KEY_DELETE);
	assert_int_equal(okvm_evdev_to_usage(KEY_DELETE), 0x4C);
	assert_int_equal(okvm_evdev_to_usage(KEY_MUTE), 0x7F);
	assert_int_equal(okvm_evdev_to_usage(KEY_VOLUMEUP), 0x80);
}

/* Every keycode the table yields maps back to a usage with the same keycode. */
static void
test_round_trip(void **state)
{
	(void)state;
	int mapped = 0;
	for (int u = 0; u < 256; u++) {
		int k = okvm_usage_to_evdev((uint8_t)u);
		if (k < 0)
			continue;
		mapped++;
		int back = okvm_evdev_to_usage(k);
		assert_true(back >= 0 && back <= u);
		assert_int_equal(okvm_usage_to_evdev((uint8_t)back), k);
	}
	assert_true(mapped > 150);
}

/* xkeyboard-config names each evdev keycode + 8 after its position: check a few through xkb. */
static void
test_xkb_key_names(void **state)
{
	(void)state;
	static const struct {
		uint8_t usage;
		const char *name;
	} facts[] = {
		{ 0x04, "AC01" }, { 0x14, "AD01" }, { 0x35, "TLDE" }, { 0x31, "BKSL" },
		{ 0x64, "LSGT" }, { 0x87, "AB11" }, { 0x89, "AE13" }, { 0x28, "RTRN" },
		{ 0xE6, "RALT" }, { 0xE3, "LWIN" }, { 0x39, "CAPS" }, { 0x58, "KPEN" },
		{ 0x68, "FK13" }, { 0x2C, "SPCE" }, { 0x8A, "HENK" }, { 0x8B, "MUHE" },
	};
	struct xkb_context *ctx = xkb_context_new(XKB_CONTEXT_NO_ENVIRONMENT_NAMES);
	struct xkb_rule_names rmlvo = { "evdev", "pc105", "us", "", "" };
	struct xkb_keymap *km = xkb_keymap_new_from_names(ctx, &rmlvo, 0);
	assert_non_null(km);
	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
		int k = okvm_usage_to_evdev(facts[i].usage);
		const char *name = xkb_keymap_key_get_name(km, (xkb_keycode_t)k + 8);
		assert_non_null(name);
		assert_string_equal(name, facts[i].name);
	}
	xkb_keymap_unref(km);
	xkb_context_unref(ctx);
}

static void
test_layout_split(void **state)
{
	(void)state;
	char l[OKVM_LAYOUT_NAME_MAX], v[OKVM_LAYOUT_NAME_MAX];
	assert_int_equal(okvm_layout_split("de", l, v), 0);
	assert_string_equal(l, "de");
	assert_string_equal(v, "");
	assert_int_equal(okvm_layout_split("us:dvorak", l, v), 0);
	assert_string_equal(l, "us");
	assert_string_equal(v, "dvorak");
	assert_int_equal(okvm_layout_split("ch(fr)", l, v), 0);
	assert_string_equal(l, "ch");
	assert_string_equal(v, "fr");
	const char *bad[] = { "", ":x", "us:", "us()", "us(", "us,de", "us:dv(x)", "a b", "de+x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(okvm_layout_split(bad[i], l, v), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_usages),  cmocka_unit_test(test_no_mapping),
		cmocka_unit_test(test_duplicates),    cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_xkb_key_names), cmocka_unit_test(test_layout_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
