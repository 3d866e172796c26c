/* The text planner and the reverse map: exact reports for small cases, and the library-level
 * round trip (plan -> the decoder of the same layout -> the same text) on 29 layouts, with Caps
 * Lock off and on, one character at a time, all at once and in random strings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "okvm/error.h"
#include "okvm/keymap.h"
#include "okvm/text.h"

static const char *const layouts[] = {
	"us",         "de",        "fr",      "gb",        "es",
	"it",         "se",        "dk",      "be",        "ch",
	"jp",         "us:dvorak", "us:intl", "ru",        "cz",
	"pl",         "no",        "fi",      "pt",        "hu",
	"tr",         "ch:fr",     "br",      "latam",     "de:nodeadkeys",
	"us:colemak", "ca",        "ua",      "ca:multix",
};

struct buf {
	char *s;
	size_t n, cap;
};

static void
on_text(const char *utf8, void *ud)
{
	struct buf *b = ud;
	size_t n = strlen(utf8);
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		assert_non_null(b->s);
	}
	memcpy(b->s + b->n, utf8, n + 1);
	b->n += n;
}

/* Plan text, feed it to a fresh decoder of the same layout in the given LED state, return what
 * the target typed (caller frees) or NULL if planning failed. */
static char *
round_trip(const struct okvm_keymap *km, struct okvm_kbd_decoder *d, const char *text, size_t len,
	   uint8_t leds)
{
	struct okvm_text_opts o = { .leds = leds };
	struct okvm_text_plan p;
	struct okvm_text_error err;
	if (okvm_text_plan(km, text, len, &o, &p, &err) < 0) {
		print_message("plan failed: %s\n", err.message);
		return NULL;
	}
	struct buf b = { 0 };
	on_text("", &b);
	okvm_kbd_decoder_set_leds(d, leds);
	for (size_t i = 0; i < p.n; i++)
		okvm_kbd_decoder_feed(d, &p.reports[i], NULL, on_text, &b);
	struct okvm_kbd_report last = p.reports[p.n - 1];
	assert_int_equal(last.modifiers, 0);
	assert_int_equal(last.keys[0], 0);
	okvm_text_plan_free(&p);
	return b.s;
}

static size_t
put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

static void
check_one_layout(const char *name, uint8_t leds, unsigned seed, size_t min_chars)
{
	struct okvm_keymap *km = okvm_keymap_new(name);
	struct okvm_kbd_decoder *d = okvm_kbd_decoder_new(name);
	assert_non_null(km);
	assert_non_null(d);
	bool caps = leds & OKVM_LED_CAPS;
	size_t n = okvm_keymap_charset(km, caps, NULL, 0);
	if (n < min_chars)
		fail_msg("%s: only %zu characters", name, n);
	uint32_t *cps = calloc(n, sizeof(*cps));
	okvm_keymap_charset(km, caps, cps, n);
	char *all = calloc(n * 4 + 3, 1);
	size_t alen = 0;
	/* Each character alone. */
	for (size_t i = 0; i < n; i++) {
		char one[5] = { 0 };
		size_t l = put_utf8(one, cps[i]);
		memcpy(all + alen, one, l);
		alen += l;
		char *got = round_trip(km, d, one, l, leds);
		if (!got || strcmp(got, one))
			fail_msg("%s leds %u: U+%04X '%s' came out as '%s'", name, leds, cps[i],
				 one, got ? got : "(plan failed)");
		free(got);
	}
	/* All at once, with Enter and Tab: key-to-key transitions. */
	memcpy(all + alen, "\n\t", 2);
	alen += 2;
	char *got = round_trip(km, d, all, alen, leds);
	assert_non_null(got);
	assert_string_equal(got, all);
	free(got);
	/* Random strings (repeats, modifier changes, dead keys next to each other). */
	srand(seed);
	char *rnd = calloc(400 * 4 + 1, 1);
	for (int round = 0; round < 5; round++) {
		size_t rl = 0;
		for (int i = 0; i < 400; i++) {
			int r = rand() % (int)(n + 8);
			uint32_t cp = r < (int)n ? cps[r] : r % 2 ? '\n' : cps[rand() % 4];
			rl += put_utf8(rnd + rl, cp);
		}
		rnd[rl] = '\0';
		got = round_trip(km, d, rnd, rl, leds);
		assert_non_null(got);
		assert_string_equal(got, rnd);
		free(got);
	}
	free(rnd);
	free(all);
	free(cps);
	okvm_kbd_decoder_free(d);
	okvm_keymap_free(km);
}

static void
test_round_trip_layouts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		check_one_layout(layouts[i], 0, (unsigned)i + 1, 90);
}

static void
test_round_trip_caps_on(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		check_one_layout(layouts[i], OKVM_LED_CAPS | OKVM_LED_NUM, (unsigned)i + 100, 90);
}

/* The layouts' own characters are in their maps (not only ASCII). */
static void
test_layout_characters(void **state)
{
	(void)state;
	/* clang-format off */
	static const struct { const char *layout; const char *chars; } want[] = {
		{ "de", "äöüÄÖÜß@€{}[]\\|~µ²³éèêÉ" }, { "fr", "àçéèù€@#{}^¨êëâ" },
		{ "gb", "£€\"@#~¬|" }, { "es", "ñÑ¿¡ºª€áéíóú" }, { "ru", "йцукенЁё№" },
		{ "us:intl", "éÉñÑüçåæœß¿¡áàâãäè" }, { "pl", "ąćęłńóśźżĄŁ" }, { "cz", "ěščřžýáíé" },
		{ "tr", "ğüşıöçĞÜŞİÖÇ" }, { "jp", "\\|_" }, { "se", "åäöÅÄÖ" },
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct okvm_keymap *km = okvm_keymap_new(want[i].layout);
		assert_non_null(km);
		const char *s = want[i].chars;
		size_t len = strlen(s);
		for (size_t at = 0; at < len;) {
			uint32_t cp;
			int n = okvm_utf8_next(s + at, len - at, &cp);
			assert_true(n > 0);
			struct okvm_keyseq seq;
			if (okvm_keymap_lookup(km, cp, false, &seq) < 0)
				fail_msg("%s: U+%04X missing", want[i].layout, cp);
			at += (size_t)n;
		}
		okvm_keymap_free(km);
	}
}

struct rep {
	uint8_t mods, key;
};

static void
expect_plan(const char *layout, const char *text, const struct rep *want, size_t n, uint8_t leds)
{
	struct okvm_keymap *km = okvm_keymap_new(layout);
	assert_non_null(km);
	struct okvm_text_opts o = { .leds = leds };
	struct okvm_text_plan p;
	assert_int_equal(okvm_text_plan(km, text, strlen(text), &o, &p, NULL), 0);
	for (size_t i = 0; i < p.n && i < n; i++) {
		if (p.reports[i].modifiers != want[i].mods || p.reports[i].keys[0] != want[i].key)
			fail_msg("%s '%s' report %zu: {%02x,%02x}, want {%02x,%02x}", layout, text,
				 i, p.reports[i].modifiers, p.reports[i].keys[0], want[i].mods,
				 want[i].key);
		for (int k = 1; k < 6; k++)
			assert_int_equal(p.reports[i].keys[k], 0);
	}
	assert_int_equal(p.n, n);
	okvm_text_plan_free(&p);
	okvm_keymap_free(km);
}

#define EXPECT(layout, text, leds, ...)                                       \
	do {                                                                  \
		static const struct rep w[] = { __VA_ARGS__ };                \
		expect_plan(layout, text, w, sizeof(w) / sizeof(w[0]), leds); \
	} while (0)

static void
test_exact_reports(void **state)
{
	(void)state;
	EXPECT("us", "ab", 0, { 0, 0x04 }, { 0, 0x05 }, { 0, 0 });
	EXPECT("us", "aa", 0, { 0, 0x04 }, { 0, 0 }, { 0, 0x04 }, { 0, 0 });
	EXPECT("us", "aA", 0, { 0, 0x04 }, { 0, 0 }, { 0x02, 0x04 }, { 0, 0 });
	EXPECT("us", "AB", 0, { 0x02, 0x04 }, { 0x02, 0x05 }, { 0, 0 });
	EXPECT("us", "Ab", 0, { 0x02, 0x04 }, { 0, 0 }, { 0, 0x05 }, { 0, 0 });
	EXPECT("us", "a\r\nb\rc\n\t", 0, { 0, 0x04 }, { 0, 0x28 }, { 0, 0x05 }, { 0, 0x28 },
	       { 0, 0x06 }, { 0, 0x28 }, { 0, 0x2B }, { 0, 0 });
	EXPECT("us", "", 0, { 0, 0 });
	EXPECT("de", "zy@", 0, { 0, 0x1C }, { 0, 0x1D }, { 0, 0 }, { 0x40, 0x14 }, { 0, 0 });
	EXPECT("de", "@€", 0, { 0x40, 0x14 }, { 0x40, 0x08 }, { 0, 0 });
	EXPECT("fr", "aq", 0, { 0, 0x14 }, { 0, 0x04 }, { 0, 0 });
	/* Level5 on a modifier key: RCtrl on ca:multix. */
	EXPECT("ca:multix", "→", 0, { 0x10, 0x0C }, { 0, 0 });
	/* Direct AltGr beats a dead key; ê needs dead_circumflex (Shift+6) then e. */
	EXPECT("us:intl", "éê", 0, { 0x40, 0x08 }, { 0, 0 }, { 0x02, 0x23 }, { 0, 0 }, { 0, 0x08 },
	       { 0, 0 });
	/* A modifier change releases everything; a repeat keeps the modifiers. */
	EXPECT("de", "Ω@", 0, { 0x42, 0x14 }, { 0, 0 }, { 0x40, 0x14 }, { 0, 0 });
	EXPECT("us", "AA", 0, { 0x02, 0x04 }, { 0x02, 0 }, { 0x02, 0x04 }, { 0, 0 });
	/* Caps Lock on, compensate: letters get the inverse Shift, digits do not. */
	EXPECT("us", "aA1!", OKVM_LED_CAPS, { 0x02, 0x04 }, { 0, 0 }, { 0, 0x04 }, { 0, 0x1E },
	       { 0, 0 }, { 0x02, 0x1E }, { 0, 0 });
}

static void
test_caps_modes(void **state)
{
	(void)state;
	struct okvm_keymap *km = okvm_keymap_new("us");
	struct okvm_text_plan p;
	struct okvm_text_error err;
	struct okvm_text_opts o = { .leds = OKVM_LED_CAPS, .caps = OKVM_CAPS_REFUSE };
	assert_int_equal(okvm_text_plan(km, "a", 1, &o, &p, &err), -EPERM);
	assert_non_null(strstr(err.message, "Caps Lock"));
	assert_null(p.reports);
	o.leds = 0;
	assert_int_equal(okvm_text_plan(km, "a", 1, &o, &p, &err), 0);
	okvm_text_plan_free(&p);
	o = (struct okvm_text_opts){ .leds = OKVM_LED_CAPS, .caps = OKVM_CAPS_IGNORE };
	assert_int_equal(okvm_text_plan(km, "a", 1, &o, &p, &err), 0);
	assert_int_equal(p.reports[0].modifiers, 0);
	assert_int_equal(p.reports[0].keys[0], 0x04);
	okvm_text_plan_free(&p);
	okvm_keymap_free(km);
}

static void
test_unmappable(void **state)
{
	(void)state;
	struct okvm_keymap *km = okvm_keymap_new("us");
	struct okvm_text_plan p;
	struct okvm_text_error err;
	const char *text = "Price: 5€ and ¥\n";
	assert_int_equal(okvm_text_plan(km, text, strlen(text), NULL, &p, &err),
			 -OKVM_E_UNMAPPABLE);
	assert_string_equal(err.message,
			    "U+20AC '€' at 8: not on layout 'us' (2 unmappable characters)");
	assert_int_equal(err.cp, 0x20AC);
	assert_int_equal(err.char_index, 8);
	assert_int_equal(err.byte_offset, 8);
	assert_int_equal(err.unmappable, 2);
	assert_int_equal(p.n, 0);

	struct okvm_text_opts o = { .skip_unmappable = true };
	assert_int_equal(okvm_text_plan(km, text, strlen(text), &o, &p, &err), 0);
	assert_int_equal(p.skipped, 2);
	assert_int_equal(p.chars, 16);
	struct okvm_kbd_decoder *d = okvm_kbd_decoder_new("us");
	struct buf b = { 0 };
	on_text("", &b);
	for (size_t i = 0; i < p.n; i++)
		okvm_kbd_decoder_feed(d, &p.reports[i], NULL, on_text, &b);
	assert_string_equal(b.s, "Price: 5 and \n");
	free(b.s);
	okvm_kbd_decoder_free(d);
	okvm_text_plan_free(&p);

	assert_int_equal(okvm_text_plan(km, "ab\x07", 3, NULL, &p, &err), -OKVM_E_UNMAPPABLE);
	assert_string_equal(err.message, "U+0007 at 2: not on layout 'us'");
	okvm_keymap_free(km);
}

static void
test_invalid_utf8(void **state)
{
	(void)state;
	/* clang-format off */
	static const struct { const char *s; size_t off; } bad[] = {
		{ "ab\xC3(", 2 }, { "\xC0\xAF", 0 }, { "x\xED\xA0\x80", 1 }, { "é\xE2\x82", 2 },
		{ "\xF4\x90\x80\x80", 0 }, { "\xFF", 0 }, { "a\x80", 1 },
	};
	/* clang-format on */
	struct okvm_keymap *km = okvm_keymap_new("us");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct okvm_text_plan p;
		struct okvm_text_error err;
		assert_int_equal(okvm_text_plan(km, bad[i].s, strlen(bad[i].s), NULL, &p, &err),
				 -EILSEQ);
		assert_int_equal(err.byte_offset, bad[i].off);
		assert_non_null(strstr(err.message, "invalid UTF-8"));
	}
	okvm_keymap_free(km);
}

/* char_index follows code points; a dead-key character's reports share its index. */
static void
test_char_index(void **state)
{
	(void)state;
	struct okvm_keymap *km = okvm_keymap_new("us:intl");
	struct okvm_text_plan p;
	assert_int_equal(okvm_text_plan(km, "aê\r\nb", 6, NULL, &p, NULL), 0);
	static const uint32_t want[] = { 0, 1, 1, 1, 1, 2, 4, 5 };
	assert_int_equal(p.n, 8);
	assert_int_equal(p.chars, 5);
	for (size_t i = 0; i < p.n; i++)
		assert_int_equal(p.char_index[i], want[i]);
	okvm_text_plan_free(&p);
	okvm_keymap_free(km);
}

static void
test_layout_exists_and_list(void **state)
{
	(void)state;
	assert_true(okvm_layout_exists("de"));
	assert_true(okvm_layout_exists("us:dvorak"));
	assert_false(okvm_layout_exists("nope"));
	assert_false(okvm_layout_exists("us:nope"));
	assert_null(okvm_keymap_new("nope"));
	struct okvm_layout_info *l;
	int n = okvm_layouts_list(&l);
	assert_true(n > 500);
	bool de = false, dvorak = false;
	for (int i = 0; i < n; i++) {
		if (!strcmp(l[i].name, "de"))
			de = !strcmp(l[i].description, "German");
		if (!strcmp(l[i].name, "us:dvorak")) {
			dvorak = !strcmp(l[i].description, "English (Dvorak)");
			assert_string_equal(l[i - 1].name + 0, l[i - 1].name); /* in us's group */
		}
	}
	assert_true(de);
	assert_true(dvorak);
	free(l);
	setenv("OKVM_XKB_RULES", "/nonexistent/evdev.lst", 1);
	assert_int_equal(okvm_layouts_list(&l), -ENOENT);
	unsetenv("OKVM_XKB_RULES");
}

/* Every layout xkb-data lists (about 580; 20-90 s): OKVM_ALL_LAYOUTS=1 meson test text. */
static void
test_round_trip_all_layouts(void **state)
{
	(void)state;
	if (!getenv("OKVM_ALL_LAYOUTS"))
		skip();
	struct okvm_layout_info *l;
	int n = okvm_layouts_list(&l);
	assert_true(n > 0);
	int checked = 0;
	for (int i = 0; i < n; i++) {
		if (!okvm_layout_exists(l[i].name))
			continue; /* "custom": a placeholder without symbols */
		check_one_layout(l[i].name, 0, (unsigned)i, 1);
		check_one_layout(l[i].name, OKVM_LED_CAPS, (unsigned)i, 1);
		checked++;
	}
	print_message("%d layouts round-trip\n", checked);
	free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_reports),
		cmocka_unit_test(test_caps_modes),
		cmocka_unit_test(test_unmappable),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_char_index),
		cmocka_unit_test(test_layout_characters),
		cmocka_unit_test(test_layout_exists_and_list),
		cmocka_unit_test(test_round_trip_layouts),
		cmocka_unit_test(test_round_trip_caps_on),
		cmocka_unit_test(test_round_trip_all_layouts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
