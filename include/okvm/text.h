/*
 * The text planner: UTF-8 text -> the complete list of keyboard reports that types it on the
 * target's layout, computed before anything is sent. Pure computation on the caller's thread.
 *
 * Usage (what `okvm type` does):
 *     struct okvm_keymap *km = okvm_keymap_new("de");
 *     struct okvm_text_opts o = { .leds = info.leds };      // LEDs from GET_INFO
 *     struct okvm_text_plan plan;
 *     struct okvm_text_error err;
 *     if (okvm_text_plan(km, text, len, &o, &plan, &err) < 0) { print err.message; exit 1 or 2 }
 *     for (size_t i = 0; i < plan.n; i++) send plan.reports[i] (progress: plan.char_index[i]);
 *     okvm_text_plan_free(&plan);
 */
#ifndef OKVM_TEXT_H
#define OKVM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "okvm/ch9329.h"
#include "okvm/keymap.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What to do about the target's Caps Lock. */
enum okvm_caps_mode {
	OKVM_CAPS_COMPENSATE = 0, /* default: with Caps on, keys Lock affects get inverse Shift */
	OKVM_CAPS_IGNORE,         /* plan as if Caps were off */
	OKVM_CAPS_REFUSE,         /* fail with -EPERM if Caps is on */
};

struct okvm_text_opts {
	uint8_t leds; /* the target's LEDs (enum okvm_led), e.g. from GET_INFO */
	enum okvm_caps_mode caps;
	bool skip_unmappable; /* leave out characters the layout cannot type */
};

/**
 * The plan: full keyboard states to send in order. It always ends with an all-released report.
 * char_index[i] is the index (in code points, from 0) of the input character report i belongs
 * to; the final release has index == chars.
 */
struct okvm_text_plan {
	struct okvm_kbd_report *reports;
	uint32_t *char_index;
	size_t n;
	size_t chars;   /* code points in the input */
	size_t skipped; /* unmappable characters left out (skip_unmappable) */
};

/** Why planning failed. message is one line for the user, e.g.
 * "U+20AC '€' at 12: not on layout 'us' (2 unmappable characters)". */
struct okvm_text_error {
	size_t byte_offset; /* of the first bad character */
	size_t char_index;  /* of the first bad character, in code points from 0 */
	uint32_t cp;        /* the first unmappable code point (0 for invalid UTF-8) */
	size_t unmappable;  /* how many unmappable characters in all */
	char message[200];
};

/**
 * Plan the reports that type utf8[0..len) on km's layout.
 * Shortest safe sequence: the next key with the same modifiers is pressed in the report that
 * releases the previous key; a repeated key gets a release report in between that keeps the
 * modifiers, a modifier change an all-released report. "\n", "\r" and "\r\n" are one Enter,
 * "\t" is Tab, dead-key characters take 2-3 presses.
 * @param o NULL for defaults
 * @param err may be NULL; filled on failure
 * @return 0 (out filled; free with okvm_text_plan_free), or -EILSEQ (invalid UTF-8),
 *         -OKVM_E_UNMAPPABLE (a character the layout cannot type), -EPERM (Caps Lock on with
 *         OKVM_CAPS_REFUSE). On failure out is empty.
 */
int okvm_text_plan(const struct okvm_keymap *km, const char *utf8, size_t len,
		   const struct okvm_text_opts *o, struct okvm_text_plan *out,
		   struct okvm_text_error *err);

/** Free the plan's arrays; the struct may be reused. NULL-safe on an empty plan. */
void okvm_text_plan_free(struct okvm_text_plan *p);

/**
 * Decode one UTF-8 character (strict: no overlongs, surrogates or values above U+10FFFF).
 * @return its length in bytes (1-4) and *cp, or -EILSEQ.
 */
int okvm_utf8_next(const char *s, size_t len, uint32_t *cp);

#ifdef __cplusplus
}
#endif
#endif
