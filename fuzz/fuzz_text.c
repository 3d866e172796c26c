/*
 * libFuzzer target: the text planner against the decoder. Byte 0 picks the layout, byte 1 the
 * Caps Lock state, the rest is text. Whatever the planner accepts must come out of the decoder
 * of the same layout exactly ("\r\n" and "\r" as "\n"); whatever it refuses must be refused
 * with -EILSEQ or -OKVM_E_UNMAPPABLE and an offset inside the input. The combo parser gets the
 * same text and must not misbehave.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "okvm/error.h"
#include "okvm/keymap.h"
#include "okvm/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const layouts[] = { "us", "de", "fr", "us:intl", "ca:multix", "jp" };
#define NLAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

struct out {
	char buf[8192];
	size_t n;
};

static void
on_text(const char *utf8, void *ud)
{
	struct out *o = ud;
	size_t n = strlen(utf8);
	if (o->n + n >= sizeof(o->buf))
		abort();
	memcpy(o->buf + o->n, utf8, n + 1);
	o->n += n;
}

/* The text as the target should type it: CR LF and CR become LF. */
static size_t
normalise(const char *s, size_t len, char *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			out[n++] = '\n';
			if (i + 1 < len && s[i + 1] == '\n')
				i++;
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	return n;
}

static void
check_plan(const struct okvm_keymap *km, struct okvm_kbd_decoder *d, const char *text, size_t len,
	   uint8_t leds)
{
	struct okvm_text_opts o = { .leds = leds };
	struct okvm_text_plan p;
	struct okvm_text_error err;
	int rc = okvm_text_plan(km, text, len, &o, &p, &err);
	if (rc < 0) {
		if ((rc != -EILSEQ && rc != -OKVM_E_UNMAPPABLE) || err.byte_offset >= len)
			abort();
		return;
	}
	struct out got = { .n = 0 };
	got.buf[0] = '\0';
	okvm_kbd_decoder_set_leds(d, leds);
	for (size_t i = 0; i < p.n; i++)
		okvm_kbd_decoder_feed(d, &p.reports[i], NULL, on_text, &got);
	static char want[4096];
	normalise(text, len, want);
	if (strcmp(got.buf, want) || p.reports[p.n - 1].modifiers || p.reports[p.n - 1].keys[0])
		abort();
	okvm_text_plan_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct okvm_keymap *km[NLAYOUTS];
	static struct okvm_kbd_decoder *dec[NLAYOUTS];
	if (size < 2 || size > 2048)
		return 0;
	size_t l = data[0] % NLAYOUTS;
	if (!km[l]) {
		km[l] = okvm_keymap_new(layouts[l]);
		dec[l] = okvm_kbd_decoder_new(layouts[l]);
		if (!km[l] || !dec[l])
			abort();
	}
	char text[2049];
	size_t len = size - 2;
	memcpy(text, data + 2, len);
	text[len] = '\0';
	check_plan(km[l], dec[l], text, len, data[1] & 1 ? OKVM_LED_CAPS : 0);
	struct okvm_combo c;
	char err[128];
	if (okvm_combo_parse(text, km[l], &c, err, sizeof(err)) == 0 && (c.n < 2 || c.n > 3))
		abort();
	return 0;
}
