/* Key names, KeyboardEvent.code table and the combo parser: the reports each combo sends. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "okvm/ch9329.h"
#include "okvm/keymap.h"

struct rep {
	uint8_t mods;
	uint8_t keys[3];
};

static void
expect_combo(const char *combo, const struct okvm_keymap *km, const struct rep *want, int n)
{
	struct okvm_combo c;
	char err[128] = "";
	int rc = okvm_combo_parse(combo, km, &c, err, sizeof(err));
	if (rc)
		fail_msg("'%s': %d %s", combo, rc, err);
	assert_false(c.is_media);
	assert_int_equal(c.n, n);
	for (int i = 0; i < n; i++) {
		struct okvm_kbd_report r = { .modifiers = want[i].mods };
		memcpy(r.keys, want[i].keys, 3);
		if (memcmp(&r, &c.kbd[i], sizeof(r)))
			fail_msg("'%s' report %d: {%02x %02x %02x}", combo, i, c.kbd[i].modifiers,
				 c.kbd[i].keys[0], c.kbd[i].keys[1]);
	}
}

#define COMBO(combo, km, ...)                                                \
	do {                                                                 \
		static const struct rep w[] = { __VA_ARGS__ };               \
		expect_combo(combo, km, w, (int)(sizeof(w) / sizeof(w[0]))); \
	} while (0)

static void
test_keyboard_combos(void **state)
{
	(void)state;
	COMBO("ctrl+alt+delete", NULL, { 0x05, { 0 } }, { 0x05, { 0x4C } }, { 0, { 0 } });
	COMBO("CTRL+Alt+Del", NULL, { 0x05, { 0 } }, { 0x05, { 0x4C } }, { 0, { 0 } });
	COMBO("altgr+q", NULL, { 0x40, { 0 } }, { 0x40, { 0x14 } }, { 0, { 0 } });
	COMBO("shift+f10", NULL, { 0x02, { 0 } }, { 0x02, { 0x43 } }, { 0, { 0 } });
	COMBO("super", NULL, { 0x08, { 0 } }, { 0, { 0 } });
	COMBO("win+l", NULL, { 0x08, { 0 } }, { 0x08, { 0x0F } }, { 0, { 0 } });
	COMBO("ctrl+alt+f2", NULL, { 0x05, { 0 } }, { 0x05, { 0x3B } }, { 0, { 0 } });
	COMBO("enter", NULL, { 0, { 0x28 } }, { 0, { 0 } });
	COMBO("f24", NULL, { 0, { 0x73 } }, { 0, { 0 } });
	COMBO(" rctrl + rshift + KeyA ", NULL, { 0x30, { 0 } }, { 0x30, { 0x04 } }, { 0, { 0 } });
	COMBO("a+b+a", NULL, { 0, { 0x04, 0x05 } }, { 0, { 0 } });
	COMBO("ctrl+-", NULL, { 0x01, { 0 } }, { 0x01, { 0x2D } }, { 0, { 0 } });
	COMBO("IntlBackslash", NULL, { 0, { 0x64 } }, { 0, { 0 } });
	COMBO("kp-enter", NULL, { 0, { 0x58 } }, { 0, { 0 } });
}

/* With a keymap, characters and letters follow the target layout. */
static void
test_layout_combos(void **state)
{
	(void)state;
	struct okvm_keymap *de = okvm_keymap_new("de");
	struct okvm_keymap *fr = okvm_keymap_new("fr");
	assert_non_null(de);
	assert_non_null(fr);
	COMBO("ctrl+@", de, { 0x41, { 0 } }, { 0x41, { 0x14 } }, { 0, { 0 } });
	COMBO("ctrl+z", de, { 0x01, { 0 } }, { 0x01, { 0x1C } }, { 0, { 0 } });
	COMBO("ctrl+Z", de, { 0x01, { 0 } }, { 0x01, { 0x1C } }, { 0, { 0 } });
	COMBO("ctrl+z", NULL, { 0x01, { 0 } }, { 0x01, { 0x1D } }, { 0, { 0 } });
	COMBO("ctrl+ä", de, { 0x01, { 0 } }, { 0x01, { 0x34 } }, { 0, { 0 } });
	COMBO("ctrl+-", de, { 0x01, { 0 } }, { 0x01, { 0x38 } }, { 0, { 0 } });
	COMBO("ctrl+a", fr, { 0x01, { 0 } }, { 0x01, { 0x14 } }, { 0, { 0 } });
	COMBO("ctrl+1", fr, { 0x01, { 0 } }, { 0x01, { 0x1E } }, { 0, { 0 } }); /* the key */
	COMBO("ctrl+plus", de, { 0x01, { 0 } }, { 0x01, { 0x30 } }, { 0, { 0 } });
	struct okvm_combo c;
	assert_int_equal(okvm_combo_parse("ctrl+ä", NULL, &c, NULL, 0), -ENOENT);
	okvm_keymap_free(de);
	okvm_keymap_free(fr);
}

static void
test_media_combos(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		uint8_t id, b[3];
	} want[] = {
		{ "volume-up", 2, { 0x01 } },      { "volume-down", 2, { 0x02 } },
		{ "mute", 2, { 0x04 } },           { "play-pause", 2, { 0x08 } },
		{ "next-track", 2, { 0x10 } },     { "prev-track", 2, { 0x20 } },
		{ "stop", 2, { 0x40 } },           { "eject", 2, { 0x80 } },
		{ "www-home", 2, { 0, 0x08 } },    { "calculator", 2, { 0, 0, 0x04 } },
		{ "power", 1, { 0x01 } },          { "sleep", 1, { 0x02 } },
		{ "wake", 1, { 0x04 } },           { "Volume_Up", 2, { 0x01 } },
		{ "mute+volume-up", 2, { 0x05 } },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct okvm_combo c;
		assert_int_equal(okvm_combo_parse(want[i].name, NULL, &c, NULL, 0), 0);
		assert_true(c.is_media);
		assert_int_equal(c.n, 2);
		assert_int_equal(c.media[0].report_id, want[i].id);
		assert_memory_equal(c.media[0].bits, want[i].b, 3);
		assert_int_equal(c.media[1].report_id, want[i].id);
		assert_memory_equal(c.media[1].bits, ((uint8_t[3]){ 0 }), 3);
	}
	/* hardware.md 2.13: mute press is 57 AB 00 03 04 02 04 00 00 0F. */
	struct okvm_combo c;
	assert_int_equal(okvm_combo_parse("mute", NULL, &c, NULL, 0), 0);
	struct okvm_ch9329_frame f;
	okvm_ch9329_build_media(&f, &c.media[0]);
	uint8_t bytes[16];
	static const uint8_t mute[] = {
		0x57, 0xAB, 0x00, 0x03, 0x04, 0x02, 0x04, 0x00, 0x00, 0x0F
	};
	assert_int_equal(okvm_ch9329_encode(&f, bytes, sizeof(bytes)), sizeof(mute));
	assert_memory_equal(bytes, mute, sizeof(mute));
}

static void
test_combo_errors(void **state)
{
	(void)state;
	static const struct {
		const char *combo;
		int rc;
		const char *msg;
	} bad[] = {
		{ "ctrl+foo", -ENOENT, "unknown key 'foo' in 'ctrl+foo'" },
		{ "bogus", -ENOENT, "unknown key 'bogus' in 'bogus'" },
		{ "", -EINVAL, "empty key combo" },
		{ "ctrl+", -EINVAL, "empty key name in 'ctrl+'" },
		{ "ctrl++a", -EINVAL, "empty key name in 'ctrl++a'" },
		{ "shift+mute", -EINVAL, NULL },
		{ "power+mute", -EINVAL, NULL },
		{ "a+b+c+d+e+f+g", -EINVAL, NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct okvm_combo c;
		char err[128] = "";
		assert_int_equal(okvm_combo_parse(bad[i].combo, NULL, &c, err, sizeof(err)),
				 bad[i].rc);
		if (bad[i].msg)
			assert_string_equal(err, bad[i].msg);
		else
			assert_true(err[0] != '\0');
	}
	struct okvm_combo c;
	assert_int_equal(okvm_combo_parse("a+b+c+d+e+f", NULL, &c, NULL, 0), 0);
}

/* Browser codes: every code the web UI can send for a standard keyboard. */
static void
test_keyboard_event_codes(void **state)
{
	(void)state;
	/* clang-format off */
	static const struct { const char *code; uint8_t usage, bit; } want[] = {
		{ "Backquote", 0x35, 0 }, { "Backslash", 0x31, 0 }, { "BracketLeft", 0x2F, 0 },
		{ "BracketRight", 0x30, 0 }, { "Comma", 0x36, 0 }, { "Equal", 0x2E, 0 }, { "Minus", 0x2D, 0 },
		{ "IntlBackslash", 0x64, 0 }, { "IntlRo", 0x87, 0 }, { "IntlYen", 0x89, 0 },
		{ "Period", 0x37, 0 }, { "Quote", 0x34, 0 }, { "Semicolon", 0x33, 0 }, { "Slash", 0x38, 0 },
		{ "Backspace", 0x2A, 0 }, { "CapsLock", 0x39, 0 }, { "ContextMenu", 0x65, 0 },
		{ "Enter", 0x28, 0 }, { "Space", 0x2C, 0 }, { "Tab", 0x2B, 0 }, { "Convert", 0x8A, 0 },
		{ "KanaMode", 0x88, 0 }, { "Lang1", 0x90, 0 }, { "Lang2", 0x91, 0 }, { "NonConvert", 0x8B, 0 },
		{ "Delete", 0x4C, 0 }, { "End", 0x4D, 0 }, { "Help", 0x75, 0 }, { "Home", 0x4A, 0 },
		{ "Insert", 0x49, 0 }, { "PageDown", 0x4E, 0 }, { "PageUp", 0x4B, 0 }, { "ArrowDown", 0x51, 0 },
		{ "ArrowLeft", 0x50, 0 }, { "ArrowRight", 0x4F, 0 }, { "ArrowUp", 0x52, 0 },
		{ "NumLock", 0x53, 0 }, { "NumpadAdd", 0x57, 0 }, { "NumpadComma", 0x85, 0 },
		{ "NumpadDecimal", 0x63, 0 }, { "NumpadDivide", 0x54, 0 }, { "NumpadEnter", 0x58, 0 },
		{ "NumpadEqual", 0x67, 0 }, { "NumpadMultiply", 0x55, 0 }, { "NumpadSubtract", 0x56, 0 },
		{ "Escape", 0x29, 0 }, { "PrintScreen", 0x46, 0 }, { "ScrollLock", 0x47, 0 },
		{ "Pause", 0x48, 0 }, { "ControlLeft", 0xE0, 0x01 }, { "ShiftLeft", 0xE1, 0x02 },
		{ "AltLeft", 0xE2, 0x04 }, { "MetaLeft", 0xE3, 0x08 }, { "ControlRight", 0xE4, 0x10 },
		{ "ShiftRight", 0xE5, 0x20 }, { "AltRight", 0xE6, 0x40 }, { "MetaRight", 0xE7, 0x80 },
		{ "OSLeft", 0xE3, 0x08 },
	};
	/* clang-format on */
	struct okvm_key k;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (okvm_key_from_code(want[i].code, &k))
			fail_msg("code %s missing", want[i].code);
		assert_int_equal(k.kind, OKVM_KEY_KBD);
		assert_int_equal(k.usage, want[i].usage);
		assert_int_equal(k.modifier_bit, want[i].bit);
	}
	char code[16];
	for (int i = 0; i < 26; i++) {
		snprintf(code, sizeof(code), "Key%c", 'A' + i);
		assert_int_equal(okvm_key_from_code(code, &k), 0);
		assert_int_equal(k.usage, 0x04 + i);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(code, sizeof(code), "Digit%d", i);
		assert_int_equal(okvm_key_from_code(code, &k), 0);
		assert_int_equal(k.usage, i ? 0x1D + i : 0x27);
		snprintf(code, sizeof(code), "Numpad%d", i);
		assert_int_equal(okvm_key_from_code(code, &k), 0);
		assert_int_equal(k.usage, i ? 0x58 + i : 0x62);
	}
	for (int i = 1; i <= 24; i++) {
		snprintf(code, sizeof(code), "F%d", i);
		assert_int_equal(okvm_key_from_code(code, &k), 0);
		assert_int_equal(k.usage, i <= 12 ? 0x39 + i : 0x67 + (i - 12));
	}
	assert_int_equal(okvm_key_from_code("AudioVolumeUp", &k), 0);
	assert_int_equal(k.kind, OKVM_KEY_MEDIA);
	assert_int_equal(k.media_bit[0], 0x01);
	assert_int_equal(okvm_key_from_code("Power", &k), 0);
	assert_int_equal(k.kind, OKVM_KEY_ACPI);
	assert_int_equal(okvm_key_from_code("keya", &k), -ENOENT);
	assert_int_equal(okvm_key_from_code("Fn", &k), -ENOENT);
	assert_int_equal(okvm_key_from_code(NULL, &k), -ENOENT);
}

/* The table is consistent: codes unique, CLI names unique, every usage known to the kernel. */
/* The code of a usage: the first name-table entry, every code's usage maps back to a code of
 * the same usage, and usages without a key have none. */
static void
test_usage_code(void **state)
{
	(void)state;
	assert_string_equal(okvm_key_usage_code(0x04), "KeyA");
	assert_string_equal(okvm_key_usage_code(0x28), "Enter");
	assert_string_equal(okvm_key_usage_code(0x4C), "Delete");
	assert_string_equal(okvm_key_usage_code(0xE1), "ShiftLeft");
	assert_null(okvm_key_usage_code(0x00));
	assert_null(okvm_key_usage_code(0x01));
	const char *code;
	struct okvm_key k;
	for (size_t i = 0; okvm_key_table_get(i, &code, NULL, &k); i++) {
		if (!code || k.kind != OKVM_KEY_KBD)
			continue;
		struct okvm_key back;
		const char *c = okvm_key_usage_code(k.usage);
		assert_non_null(c);
		assert_int_equal(okvm_key_from_code(c, &back), 0);
		assert_int_equal(back.usage, k.usage);
	}
}

static void
test_table_consistent(void **state)
{
	(void)state;
	const char *code, *names;
	struct okvm_key k, again;
	size_t n = 0;
	for (size_t i = 0; okvm_key_table_get(i, &code, &names, &k); i++, n++) {
		if (k.kind == OKVM_KEY_KBD)
			assert_true(okvm_usage_to_evdev(k.usage) >= 0);
		if (code) {
			assert_int_equal(okvm_key_from_code(code, &again), 0);
			assert_memory_equal(&k, &again, sizeof(k));
			for (size_t j = 0; j < i; j++) {
				const char *other;
				okvm_key_table_get(j, &other, NULL, NULL);
				if (other && !strcmp(other, code))
					fail_msg("code %s twice", code);
			}
		}
		/* Each CLI name finds this row. */
		for (const char *p = names; *p;) {
			size_t l = strcspn(p, " ");
			char name[32];
			snprintf(name, sizeof(name), "%.*s", (int)l, p);
			assert_int_equal(okvm_key_lookup(name, &again), 0);
			if (memcmp(&k, &again, sizeof(k)))
				fail_msg("name '%s' finds another key", name);
			p += l + strspn(p + l, " ");
		}
	}
	assert_true(n > 150);
	assert_int_equal(okvm_key_lookup("nope", &k), -ENOENT);
	assert_int_equal(okvm_key_lookup("numpadenter", &k), 0); /* codes work on the CLI too */
	assert_int_equal(k.usage, 0x58);
}

static void
test_live_state(void **state)
{
	(void)state;
	struct okvm_kbd_report r = { 0 };
	struct okvm_key k;
	static const char *const down[] = { "ShiftLeft", "KeyA", "KeyB", "KeyC",
					    "KeyD",      "KeyE", "KeyF" };
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(okvm_key_from_code(down[i], &k), 0);
		assert_int_equal(okvm_kbd_report_apply(&r, &k, true), 1);
	}
	okvm_key_from_code("KeyG", &k);
	assert_int_equal(okvm_kbd_report_apply(&r, &k, true), -ENOSPC);
	okvm_key_from_code("KeyA", &k);
	assert_int_equal(okvm_kbd_report_apply(&r, &k, true), 0); /* already down */
	okvm_key_from_code("KeyC", &k);
	assert_int_equal(okvm_kbd_report_apply(&r, &k, false), 1);
	assert_int_equal(okvm_kbd_report_apply(&r, &k, false), 0);
	struct okvm_kbd_report want = { 0x02, { 0x04, 0x05, 0x07, 0x08, 0x09, 0 } };
	assert_memory_equal(&r, &want, sizeof(r));
	okvm_key_from_code("ShiftLeft", &k);
	assert_int_equal(okvm_kbd_report_apply(&r, &k, false), 1);
	assert_int_equal(r.modifiers, 0);
	okvm_key_from_code("AudioVolumeUp", &k);
	assert_int_equal(okvm_kbd_report_apply(&r, &k, true), -EINVAL);

	struct okvm_media_report m = { 0 };
	assert_int_equal(okvm_media_report_apply(&m, &k, true), 1);
	assert_int_equal(m.report_id, OKVM_MEDIA_MULTIMEDIA);
	assert_int_equal(m.bits[0], 0x01);
	okvm_key_from_code("AudioVolumeMute", &k);
	assert_int_equal(okvm_media_report_apply(&m, &k, true), 1);
	assert_int_equal(m.bits[0], 0x05);
	assert_int_equal(okvm_media_report_apply(&m, &k, false), 1);
	assert_int_equal(m.bits[0], 0x01);
	okvm_key_from_code("Power", &k);
	assert_int_equal(okvm_media_report_apply(&m, &k, true), 1);
	assert_int_equal(m.report_id, OKVM_MEDIA_ACPI);
	assert_int_equal(m.bits[0], 0x01);
	okvm_key_from_code("KeyA", &k);
	assert_int_equal(okvm_media_report_apply(&m, &k, true), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyboard_combos),      cmocka_unit_test(test_layout_combos),
		cmocka_unit_test(test_media_combos),         cmocka_unit_test(test_combo_errors),
		cmocka_unit_test(test_keyboard_event_codes), cmocka_unit_test(test_usage_code),
		cmocka_unit_test(test_table_consistent),     cmocka_unit_test(test_live_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
