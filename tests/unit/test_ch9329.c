/* CH9329 codec: hardware.md 2's frames byte for byte; the decoder at every split, after garbage. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "okvm/ch9329.h"

struct vector {
	const char *name;
	uint8_t bytes[80];
	size_t len;
};

/* clang-format off */
#define V(n, ...) { n, { __VA_ARGS__ }, sizeof((uint8_t[]){ __VA_ARGS__ }) }
/* clang-format on */

/* Frames quoted in docs/hardware.md 2.2-2.13 (sums verified there). */
static const struct vector vectors[] = {
	V("get_info", 0x57, 0xAB, 0x00, 0x01, 0x00, 0x03),
	V("get_para_cfg", 0x57, 0xAB, 0x00, 0x08, 0x00, 0x0A),
	V("reset", 0x57, 0xAB, 0x00, 0x0F, 0x00, 0x11),
	V("set_default_cfg", 0x57, 0xAB, 0x00, 0x0C, 0x00, 0x0E),
	V("kbd_press_a", 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
	  0x00, 0x10),
	V("kbd_release_all", 0x57, 0xAB, 0x00, 0x02, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0x0C),
	V("abs_320_533", 0x57, 0xAB, 0x00, 0x04, 0x07, 0x02, 0x00, 0x40, 0x01, 0x15, 0x02, 0x00,
	  0x67),
	V("rel_left_press", 0x57, 0xAB, 0x00, 0x05, 0x05, 0x01, 0x01, 0x00, 0x00, 0x00, 0x0E),
	V("media_mute", 0x57, 0xAB, 0x00, 0x03, 0x04, 0x02, 0x04, 0x00, 0x00, 0x0F),
	V("switch_host", 0x57, 0xAB, 0x00, 0x17, 0x05, 0, 0, 0, 0, 0x00, 0x1E),
	V("switch_target", 0x57, 0xAB, 0x00, 0x17, 0x05, 0, 0, 0, 0, 0x01, 0x1F),
	V("switch_query", 0x57, 0xAB, 0x00, 0x17, 0x05, 0, 0, 0, 0, 0x03, 0x21),
	V("kbd_ack", 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85),
	V("media_ack", 0x57, 0xAB, 0x00, 0x83, 0x01, 0x00, 0x86),
	V("abs_ack", 0x57, 0xAB, 0x00, 0x84, 0x01, 0x00, 0x87),
	V("info_reply", 0x57, 0xAB, 0x00, 0x81, 0x08, 0x38, 0x01, 0x00, 0, 0, 0, 0, 0, 0xC4),
};

/* Real GET_PARA_CFG reply of a Mini-KVM at 115200 (hardware.md 2.8, QT issue #141). */
static const uint8_t para_reply_head[] = { 0x57, 0xAB, 0x00, 0x88, 0x32, 0x82, 0x80, 0x00, 0x00,
					   0x01, 0xC2, 0x00, 0x08, 0x00, 0x00, 0x03, 0x86, 0x1A,
					   0x29, 0xE1, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0D };

static size_t
para_reply(uint8_t *out)
{
	memset(out, 0, 56);
	memcpy(out, para_reply_head, sizeof(para_reply_head));
	out[55] = 0x44;
	return 56;
}

static void
encode_vector(const struct okvm_ch9329_frame *f, const char *name)
{
	uint8_t out[OKVM_CH9329_MAX_FRAME];
	size_t n = okvm_ch9329_encode(f, out, sizeof(out));
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		if (strcmp(vectors[i].name, name))
			continue;
		assert_int_equal(n, vectors[i].len);
		assert_memory_equal(out, vectors[i].bytes, n);
		return;
	}
	fail_msg("no vector %s", name);
}

static void
test_encoders(void **state)
{
	(void)state;
	struct okvm_ch9329_frame f;
	okvm_ch9329_build_simple(&f, OKVM_CH9329_CMD_GET_INFO);
	encode_vector(&f, "get_info");
	okvm_ch9329_build_simple(&f, OKVM_CH9329_CMD_GET_PARA_CFG);
	encode_vector(&f, "get_para_cfg");
	okvm_ch9329_build_simple(&f, OKVM_CH9329_CMD_RESET);
	encode_vector(&f, "reset");
	okvm_ch9329_build_simple(&f, OKVM_CH9329_CMD_SET_DEFAULT_CFG);
	encode_vector(&f, "set_default_cfg");

	struct okvm_kbd_report r = { .keys = { 0x04 } };
	okvm_ch9329_build_kbd(&f, &r);
	encode_vector(&f, "kbd_press_a");
	r = (struct okvm_kbd_report){ 0 };
	okvm_ch9329_build_kbd(&f, &r);
	encode_vector(&f, "kbd_release_all");

	struct okvm_mouse_abs m = { .x = 320, .y = 533 };
	okvm_ch9329_build_abs(&f, &m);
	encode_vector(&f, "abs_320_533");
	struct okvm_mouse_rel rel = { .buttons = OKVM_BTN_LEFT };
	okvm_ch9329_build_rel(&f, &rel);
	encode_vector(&f, "rel_left_press");
	struct okvm_media_report media = { .report_id = OKVM_MEDIA_MULTIMEDIA, .bits = { 0x04 } };
	okvm_ch9329_build_media(&f, &media);
	encode_vector(&f, "media_mute");

	okvm_ch9329_build_usb_switch(&f, OKVM_USB_TO_HOST);
	encode_vector(&f, "switch_host");
	okvm_ch9329_build_usb_switch(&f, OKVM_USB_TO_TARGET);
	encode_vector(&f, "switch_target");
	okvm_ch9329_build_usb_switch(&f, OKVM_USB_QUERY);
	encode_vector(&f, "switch_query");

	uint8_t ok = 0;
	okvm_ch9329_build_reply(&f, OKVM_CH9329_CMD_SEND_KB_GENERAL, true, &ok, 1);
	encode_vector(&f, "kbd_ack");
	okvm_ch9329_build_reply(&f, OKVM_CH9329_CMD_SEND_KB_MEDIA, true, &ok, 1);
	encode_vector(&f, "media_ack");
	okvm_ch9329_build_reply(&f, OKVM_CH9329_CMD_SEND_MS_ABS, true, &ok, 1);
	encode_vector(&f, "abs_ack");
	uint8_t info[8] = { 0x38, 0x01 };
	okvm_ch9329_build_reply(&f, OKVM_CH9329_CMD_GET_INFO, true, info, 8);
	encode_vector(&f, "info_reply");
}

static void
test_abs_clamps_and_acpi_len(void **state)
{
	(void)state;
	struct okvm_ch9329_frame f;
	struct okvm_mouse_abs m = { .x = 5000, .y = 4096, .wheel = -1, .buttons = 0xff };
	okvm_ch9329_build_abs(&f, &m);
	/* five buttons: back and forward (0x08, 0x10) as PiKVM and NanoKVM-USB send them */
	assert_int_equal(f.data[1], OKVM_BTN_MASK);
	assert_int_equal(f.data[2] | f.data[3] << 8, 4096);
	assert_int_equal(f.data[4] | f.data[5] << 8, 4096);
	assert_int_equal(f.data[6], 0xFF); /* one notch down */

	struct okvm_media_report acpi = { .report_id = OKVM_MEDIA_ACPI, .bits = { 0x01, 9, 9 } };
	okvm_ch9329_build_media(&f, &acpi);
	assert_int_equal(f.len, 2);
	struct okvm_media_report back;
	assert_int_equal(okvm_ch9329_parse_media(&f, &back), 0);
	assert_int_equal(back.bits[0], 0x01);
	assert_int_equal(back.bits[1], 0);
}

static void
test_strings_and_custom(void **state)
{
	(void)state;
	struct okvm_ch9329_frame f;
	assert_int_equal(okvm_ch9329_build_set_string(&f, OKVM_CH9329_STR_PRODUCT, "okvm", 4), 0);
	uint8_t out[OKVM_CH9329_MAX_FRAME];
	size_t n = okvm_ch9329_encode(&f, out, sizeof(out));
	const uint8_t want[] = { 0x57, 0xAB, 0x00, 0x0B, 0x06, 0x01, 0x04, 'o', 'k', 'v', 'm' };
	assert_int_equal(n, sizeof(want) + 1);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(out[n - 1], okvm_ch9329_sum(want, sizeof(want)));
	assert_int_equal(okvm_ch9329_build_set_string(&f, OKVM_CH9329_STR_SERIAL,
						      "123456789012345678901234", 24),
			 -EINVAL);
	uint8_t big[65] = { 0 };
	assert_int_equal(okvm_ch9329_build_custom(&f, big, 65), -EINVAL);
	assert_int_equal(okvm_ch9329_build_custom(&f, big, 64), 0);
	assert_int_equal(okvm_ch9329_encode(&f, out, sizeof(out)), 70);
	assert_int_equal(okvm_ch9329_encode(&f, out, 69), 0);

	/* GET_USB_STRING reply decodes. */
	uint8_t payload[] = { 0x00, 3, 'W', 'C', 'H' };
	okvm_ch9329_build_reply(&f, OKVM_CH9329_CMD_GET_USB_STRING, true, payload, sizeof(payload));
	uint8_t type;
	char s[24];
	assert_int_equal(okvm_ch9329_parse_string(&f, &type, s), 0);
	assert_string_equal(s, "WCH");
	f.data[1] = 40; /* length beyond the frame */
	assert_int_equal(okvm_ch9329_parse_string(&f, &type, s), -EBADMSG);
}

/* belief: GET_PARA_CFG 50 bytes; factory 9600 (a real chip's reply) */
static void
test_params_roundtrip_real_reply(void **state)
{
	(void)state;
	uint8_t raw[56];
	size_t n = para_reply(raw);
	struct okvm_ch9329_parser p;
	okvm_ch9329_parser_init(&p);
	struct okvm_ch9329_frame f;
	assert_int_equal(okvm_ch9329_parser_push(&p, raw, n), n);
	assert_int_equal(okvm_ch9329_parser_next(&p, &f), 1);
	struct okvm_ch9329_params prm;
	assert_int_equal(okvm_ch9329_parse_params(&f, &prm), 0);
	assert_int_equal(prm.mode, 0x82);
	assert_int_equal(prm.serial_mode, 0x80);
	assert_int_equal(prm.baud, 115200);
	assert_int_equal(prm.packet_interval_ms, 3);
	assert_int_equal(prm.vid, 0x1A86);
	assert_int_equal(prm.pid, 0xE129);
	assert_int_equal(prm.kb_release_delay_ms, 1);
	assert_int_equal(prm.enter_chars[0], 0x0D);
	/* Packing what we unpacked gives the same 50 bytes. */
	uint8_t again[50];
	okvm_ch9329_params_pack(&prm, again);
	assert_memory_equal(again, raw + 5, 50);
	/* Factory block differs from that reply only in the baud. */
	struct okvm_ch9329_params fac;
	okvm_ch9329_params_factory(&fac);
	fac.baud = 115200;
	okvm_ch9329_params_pack(&fac, again);
	assert_memory_equal(again, raw + 5, 50);
}

static void
feed_split(const uint8_t *bytes, size_t len, size_t split, struct okvm_ch9329_frame *out,
	   int *frames)
{
	struct okvm_ch9329_parser p;
	okvm_ch9329_parser_init(&p);
	*frames = 0;
	const uint8_t *parts[2] = { bytes, bytes + split };
	size_t lens[2] = { split, len - split };
	for (int k = 0; k < 2; k++) {
		assert_int_equal(okvm_ch9329_parser_push(&p, parts[k], lens[k]), lens[k]);
		int rc;
		while ((rc = okvm_ch9329_parser_next(&p, out)) != 0) {
			assert_int_equal(rc, 1);
			(*frames)++;
		}
	}
}

static void
test_decoder_every_split(void **state)
{
	(void)state;
	for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		const struct vector *vec = &vectors[v];
		for (size_t split = 0; split <= vec->len; split++) {
			struct okvm_ch9329_frame f;
			int frames;
			feed_split(vec->bytes, vec->len, split, &f, &frames);
			assert_int_equal(frames, 1);
			uint8_t re[OKVM_CH9329_MAX_FRAME];
			assert_int_equal(okvm_ch9329_encode(&f, re, sizeof(re)), vec->len);
			assert_memory_equal(re, vec->bytes, vec->len);
		}
		/* After garbage (including a stray 57 and a 57 AB with a bad length). */
		uint8_t buf[160];
		const uint8_t junk[] = {
			0x00, 0x57, 0x12, 0xAB, 0x57, 0xAB, 0x00, 0x02, 0xFF, 0x57
		};
		memcpy(buf, junk, sizeof(junk));
		memcpy(buf + sizeof(junk), vec->bytes, vec->len);
		size_t total = sizeof(junk) + vec->len;
		for (size_t split = 0; split <= total; split++) {
			struct okvm_ch9329_parser p;
			okvm_ch9329_parser_init(&p);
			int frames = 0, errors = 0;
			struct okvm_ch9329_frame f;
			size_t at = 0;
			size_t ends[2] = { split, total };
			for (int k = 0; k < 2; k++) {
				while (at < ends[k]) {
					at += okvm_ch9329_parser_push(&p, buf + at, ends[k] - at);
					int rc;
					while ((rc = okvm_ch9329_parser_next(&p, &f)) != 0) {
						if (rc == 1)
							frames++;
						else
							errors++;
					}
				}
			}
			assert_int_equal(frames, 1);
			assert_int_equal(f.cmd, vec->bytes[3]);
			assert_int_equal(errors, 1); /* the LEN 0xFF header */
		}
	}
}

static void
test_decoder_bad_sum_resyncs(void **state)
{
	(void)state;
	/* A frame with a wrong sum, immediately followed by a good ACK: the ACK survives. */
	uint8_t buf[] = { 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x99,
			  0x57, 0xAB, 0x00, 0x84, 0x01, 0x00, 0x87 };
	struct okvm_ch9329_parser p;
	okvm_ch9329_parser_init(&p);
	okvm_ch9329_parser_push(&p, buf, sizeof(buf));
	struct okvm_ch9329_frame f;
	assert_int_equal(okvm_ch9329_parser_next(&p, &f), -EBADMSG);
	assert_int_equal(okvm_ch9329_parser_next(&p, &f), 1);
	assert_int_equal(f.cmd, 0x84);
	assert_int_equal(okvm_ch9329_parser_next(&p, &f), 0);
	assert_int_equal(p.bad_sums, 1);

	/* A good frame hidden inside a truncated one: 57 AB 00 02 08 then a complete ACK. */
	uint8_t nested[] = { 0x57, 0xAB, 0x00, 0x02, 0x08, 0x57, 0xAB, 0x00,
			     0x82, 0x01, 0x00, 0x85, 0,    0,    0 };
	okvm_ch9329_parser_init(&p);
	okvm_ch9329_parser_push(&p, nested, sizeof(nested));
	int rc, good = 0;
	while ((rc = okvm_ch9329_parser_next(&p, &f)) != 0)
		if (rc == 1 && f.cmd == 0x82)
			good++;
	assert_int_equal(good, 1);
}

static void
test_decoder_bounded(void **state)
{
	(void)state;
	/* Endless garbage never grows the buffer past its cap, and push always takes bytes. */
	struct okvm_ch9329_parser p;
	okvm_ch9329_parser_init(&p);
	uint8_t junk[1000];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7 + 1) == 0x57 ? 0 : (uint8_t)(i * 7 + 1);
	size_t at = 0;
	struct okvm_ch9329_frame f;
	while (at < sizeof(junk)) {
		size_t k = okvm_ch9329_parser_push(&p, junk + at, sizeof(junk) - at);
		assert_true(k > 0);
		at += k;
		while (okvm_ch9329_parser_next(&p, &f) != 0)
			;
		assert_true(p.n <= OKVM_CH9329_PARSER_CAP);
	}
	assert_true(p.garbage_bytes > 900);
}

/* A CH9329F answers GET_PARA_CFG with 72 or 88 bytes (One-KVM PR 302); a CH9329 with 50. The
 * parser takes replies up to LEN 255 and the config reader the first 50 bytes. Belief covered:
 * "GET_PARA_CFG is 50 bytes" (hardware.md 2.8) is not assumed. */
/* belief: GET_PARA_CFG 50 bytes, both ways */
static void
test_long_params_reply(void **state)
{
	(void)state;
	static const size_t lens[] = { 50, 72, 88, 255 };
	for (size_t k = 0; k < 4; k++) {
		uint8_t data[255] = { 0 }, wire[300];
		struct okvm_ch9329_params want, got;
		okvm_ch9329_params_factory(&want);
		okvm_ch9329_params_pack(&want, data);
		struct okvm_ch9329_frame f, out;
		okvm_ch9329_build_reply(&f, OKVM_CH9329_CMD_GET_PARA_CFG, true, data,
					(uint8_t)lens[k]);
		size_t n = okvm_ch9329_encode(&f, wire, sizeof(wire));
		assert_int_equal(n, lens[k] + 6);
		struct okvm_ch9329_parser p;
		okvm_ch9329_parser_init(&p);
		assert_int_equal(okvm_ch9329_parser_push(&p, wire, n), n);
		assert_int_equal(okvm_ch9329_parser_next(&p, &out), 1);
		assert_int_equal(out.len, lens[k]);
		assert_int_equal(okvm_ch9329_parse_params(&out, &got), 0);
		assert_int_equal(got.baud, want.baud);
		assert_int_equal(got.vid, want.vid);
	}
	/* a short block is still refused */
	uint8_t d[49] = { 0 };
	struct okvm_ch9329_frame f;
	struct okvm_ch9329_params got;
	okvm_ch9329_build_reply(&f, OKVM_CH9329_CMD_GET_PARA_CFG, true, d, 49);
	assert_int_equal(okvm_ch9329_parse_params(&f, &got), -EBADMSG);
	/* a host frame (the virtual chip's side) with LEN 72 is still a bad length */
	struct okvm_ch9329_parser p;
	okvm_ch9329_parser_init(&p);
	p.max_len = OKVM_CH9329_HOST_MAX_DATA;
	uint8_t hdr[] = { 0x57, 0xAB, 0x00, 0x06, 72 };
	okvm_ch9329_parser_push(&p, hdr, sizeof(hdr));
	assert_int_equal(okvm_ch9329_parser_next(&p, &f), -EMSGSIZE);
}

static void
test_reply_status(void **state)
{
	(void)state;
	struct okvm_ch9329_frame f;
	uint8_t st = OKVM_CH9329_ERR_SUM;
	okvm_ch9329_build_reply(&f, OKVM_CH9329_CMD_SEND_KB_GENERAL, false, &st, 1);
	assert_int_equal(f.cmd, 0xC2);
	assert_true(okvm_ch9329_is_reply_to(&f, OKVM_CH9329_CMD_SEND_KB_GENERAL));
	assert_false(okvm_ch9329_is_reply_to(&f, OKVM_CH9329_CMD_SEND_MS_ABS));
	assert_int_equal(okvm_ch9329_reply_status(&f), 0xE4);
	assert_string_equal(okvm_ch9329_status_name(0xE4), "ERR_SUM");
	assert_string_equal(okvm_ch9329_status_name(0xE1), "ERR_TIMEOUT");
	assert_string_equal(okvm_ch9329_status_name(0xE6), "ERR_OPERATE");
	uint8_t info[8] = { 0x30, 0x00, 0x02 };
	okvm_ch9329_build_reply(&f, OKVM_CH9329_CMD_GET_INFO, true, info, 8);
	assert_int_equal(okvm_ch9329_reply_status(&f), 0);
	struct okvm_ch9329_info i;
	assert_int_equal(okvm_ch9329_parse_info(&f, &i), 0);
	assert_false(i.target_connected);
	assert_int_equal(i.leds, OKVM_LED_CAPS);
	assert_string_equal(okvm_ch9329_cmd_name(0x81), "GET_INFO");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoders),
		cmocka_unit_test(test_abs_clamps_and_acpi_len),
		cmocka_unit_test(test_strings_and_custom),
		cmocka_unit_test(test_params_roundtrip_real_reply),
		cmocka_unit_test(test_decoder_every_split),
		cmocka_unit_test(test_decoder_bad_sum_resyncs),
		cmocka_unit_test(test_decoder_bounded),
		cmocka_unit_test(test_reply_status),
		cmocka_unit_test(test_long_params_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
