/* Video-chip registers byte for byte against the MS2109 register model, the per-chip report
 * fall-backs, both firmware generations of the switch bit, the EEPROM header, and the switch
 * sequence (register write, then DTR pulse) in order. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "emu/ms2109-chip.h"
#include "emu/ms2109-emu.h"
#include "okvm/chip.h"

/* The transport under test: the register model, with every report and every DTR pulse and
 * 0x17 command written to one event log, in order. */
struct rig {
	struct ms2109_emu emu;
	char log[16384];
	size_t len;
	int dtr_rc;
	enum okvm_usb_dir serial_dir;
};

static void
logf_(struct rig *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	r->len += (size_t)vsnprintf(r->log + r->len, sizeof(r->log) - r->len, fmt, ap);
	va_end(ap);
}

static void
log_bytes(struct rig *r, const char *what, const uint8_t *b, size_t n)
{
	logf_(r, "%s", what);
	for (size_t i = 0; i < n; i++)
		logf_(r, " %02x", b[i]);
	logf_(r, "\n");
}

static int
t_set(void *ud, const uint8_t *buf, size_t len)
{
	struct rig *r = ud;
	log_bytes(r, "set", buf, len);
	return ms2109_emu_feature_set(&r->emu, buf, len);
}

static int
t_get(void *ud, uint8_t *buf, size_t len)
{
	struct rig *r = ud;
	int rc = ms2109_emu_feature_get(&r->emu, buf, len);
	if (rc >= 0)
		log_bytes(r, "get", buf, (size_t)rc);
	return rc;
}

static int
t_dtr(void *ud, int ms)
{
	struct rig *r = ud;
	logf_(r, "dtr %d\n", ms);
	return r->dtr_rc;
}

static int
t_serial(void *ud, bool query, enum okvm_usb_dir dir, enum okvm_usb_dir *now)
{
	struct rig *r = ud;
	logf_(r, "0x17 %s\n", query ? "query" : dir == OKVM_USB_TO_TARGET ? "target" : "host");
	if (!query)
		r->serial_dir = dir;
	*now = r->serial_dir;
	return 0;
}

static const struct okvm_chip_transport transport = { t_set, t_get, NULL };

static struct rig *
rig_new(const char *fw)
{
	struct rig *r = calloc(1, sizeof(*r));
	ms2109_emu_init(&r->emu, fw);
	return r;
}

static void
clear(struct rig *r)
{
	r->len = 0;
	r->log[0] = 0;
}

static void
test_read_bytes(void **state)
{
	struct rig *r = rig_new("24081309");
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109, &transport, r);
	uint8_t v;
	assert_int_equal(okvm_chip_read(c, 0xF800, &v), 0);
	assert_int_equal(v, 0xA7); /* the MS2109 test byte */
	assert_string_equal(r->log, "set 00 b5 f8 00 00 00 00 00 00\n"
				    "get 00 b5 f8 00 a7 00 00 00 00\n");
	clear(r);
	assert_int_equal(okvm_chip_write(c, 0xC6A0, 0x5A), 0);
	assert_string_equal(r->log, "set 00 b6 c6 a0 5a 00 00 00 00\n");
	assert_int_equal(r->emu.xdata[0xC6A0], 0x5A);
	char fw[9];
	unsigned long num;
	assert_int_equal(okvm_chip_firmware(c, fw, &num), 0);
	assert_string_equal(fw, "24081309");
	assert_int_equal(num, 24081309UL);
	okvm_chip_free(c);
	free(r);
}

static void
test_status_and_quirks(void **state)
{
	struct rig *r = rig_new(NULL);
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109, &transport, r);
	struct okvm_chip_status st;
	assert_int_equal(okvm_chip_get_status(c, &st), 0);
	assert_false(st.signal);
	assert_int_equal(st.width, 0);
	assert_true(st.has_toggle);
	assert_int_equal(st.toggle, OKVM_USB_TO_HOST);
	assert_true(st.has_switch);
	assert_int_equal(st.usb, OKVM_USB_TO_HOST);

	ms2109_emu_set_signal(&r->emu, true, 1280, 720, 5994, 7425);
	ms2109_emu_set_toggle(&r->emu, true);
	assert_int_equal(okvm_chip_get_status(c, &st), 0);
	assert_true(st.signal);
	assert_int_equal(st.width, 1280);
	assert_int_equal(st.height, 720);
	assert_float_equal(st.fps, 59.94, 1e-9);
	assert_float_equal(st.pixel_clock, 74.25, 1e-9);
	assert_int_equal(st.toggle, OKVM_USB_TO_TARGET);

	/* 3840x2160@30 (297 MHz): the chip reports 1920x1080; the host doubles it back */
	ms2109_emu_set_signal(&r->emu, true, 3840, 2160, 3000, 29700);
	assert_int_equal(r->emu.xdata[MS2109_REG_WIDTH] << 8 | r->emu.xdata[MS2109_REG_WIDTH + 1],
			 1920);
	assert_int_equal(okvm_chip_get_status(c, &st), 0);
	assert_int_equal(st.width, 3840);
	assert_int_equal(st.height, 2160);
	/* 4096 wide stays (QT normalizeResolution) */
	assert_int_equal(ms2109_emu_apply(&r->emu, "reg.0xC6AF=0x10"), 0);
	assert_int_equal(ms2109_emu_apply(&r->emu, "reg.0xC6B0=0x00"), 0);
	assert_int_equal(okvm_chip_get_status(c, &st), 0);
	assert_int_equal(st.width, 4096);
	okvm_chip_free(c);
	free(r);
}

static void
test_report_id_fallback(void **state)
{
	struct rig *r = rig_new(NULL);
	assert_int_equal(ms2109_emu_apply(&r->emu, "report_id=1"), 0);
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109, &transport, r);
	uint8_t v;
	assert_int_equal(okvm_chip_read(c, 0xF800, &v), 0);
	assert_int_equal(v, 0xA7);
	/* (0x00, 9) stalls, then (0x01, 9) answers (hardware.md 3.1) */
	assert_string_equal(r->log, "set 00 b5 f8 00 00 00 00 00 00\n"
				    "set 01 b5 f8 00 00 00 00 00 00\n"
				    "get 01 b5 f8 00 a7 00 00 00 00\n");
	clear(r);
	assert_int_equal(okvm_chip_read(c, 0xF800, &v), 0); /* remembered: no second stall */
	assert_string_equal(r->log, "set 01 b5 f8 00 00 00 00 00 00\n"
				    "get 01 b5 f8 00 a7 00 00 00 00\n");
	clear(r);
	assert_int_equal(okvm_chip_write(c, 0x1234, 0x99), 0);
	assert_string_equal(r->log, "set 00 b6 12 34 99 00 00 00 00\n"
				    "set 01 b6 12 34 99 00 00 00 00\n");
	okvm_chip_free(c);

	/* MS2109S: reads use 11-byte reports; writes try 9 bytes first, then 11 */
	ms2109_emu_init(&r->emu, NULL);
	assert_int_equal(ms2109_emu_apply(&r->emu, "report_len=11"), 0);
	c = okvm_chip_new(OKVM_CHIP_MS2109S, &transport, r);
	clear(r);
	assert_int_equal(okvm_chip_read(c, 0xF800, &v), 0);
	assert_string_equal(r->log, "set 00 b5 f8 00 00 00 00 00 00 00 00\n"
				    "get 00 b5 f8 00 a7 00 00 00 00 00 00\n");
	clear(r);
	assert_int_equal(okvm_chip_write(c, 0x0001, 0x02), 0);
	assert_string_equal(r->log, "set 00 b6 00 01 02 00 00 00 00\n"
				    "set 00 b6 00 01 02 00 00 00 00 00 00\n");
	/* no soft switch on the MS2109S */
	enum okvm_usb_dir d;
	assert_int_equal(okvm_chip_get_switch(c, &d), -ENOTSUP);
	okvm_chip_free(c);

	/* nothing answers: -ENOTSUP after the whole list */
	ms2109_emu_init(&r->emu, NULL);
	assert_int_equal(ms2109_emu_apply(&r->emu, "report_id=7"), 0);
	c = okvm_chip_new(OKVM_CHIP_MS2130S, &transport, r);
	clear(r);
	assert_int_equal(okvm_chip_read(c, 0x1FDC, &v), -ENOTSUP);
	char want[512] = "set 01 b5 1f dc 00 00 00 00 00 00 00\n"
			 "set 00 b5 1f dc 00 00 00 00 00 00 00\n"
			 "set 00 b5 1f dc";
	for (int i = 4; i < 65; i++) /* the 65-byte report */
		strcat(want, " 00");
	strcat(want, "\n");
	assert_string_equal(r->log, want);
	okvm_chip_free(c);
	free(r);
}

static int
bad_get(void *ud, uint8_t *buf, size_t len)
{
	int rc = t_get(ud, buf, len);
	buf[3] ^= 1; /* answers for another address */
	return rc;
}

static int
gone_set(void *ud, const uint8_t *buf, size_t len)
{
	t_set(ud, buf, len);
	return -ENODEV;
}

/* Unplugged: no fall-back attempts, -ENODEV straight away. */
static void
test_unplugged(void **state)
{
	static const struct okvm_chip_transport gone = { gone_set, t_get, NULL };
	struct rig *r = rig_new(NULL);
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109, &gone, r);
	uint8_t v;
	assert_int_equal(okvm_chip_read(c, 0xF800, &v), -ENODEV);
	assert_string_equal(r->log, "set 00 b5 f8 00 00 00 00 00 00\n");
	assert_int_equal(okvm_chip_write(c, 0xF800, 1), -ENODEV);
	okvm_chip_free(c);
	free(r);
}

static void
test_echo_mismatch(void **state)
{
	static const struct okvm_chip_transport bad = { t_set, bad_get, NULL };
	struct rig *r = rig_new(NULL);
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109, &bad, r);
	uint8_t v;
	assert_int_equal(okvm_chip_read(c, 0xF800, &v), -EPROTO);
	okvm_chip_free(c);
	free(r);
}

static int
other_cmd_get(void *ud, uint8_t *buf, size_t len)
{
	int rc = t_get(ud, buf, len);
	buf[1] = 0xE5; /* echoes an EEPROM read, not this XDATA read */
	return rc;
}

/* Belief "the MS2109S/MS2130S echo command and address" (hardware.md 3.1, QT reads byte 4 of any
 * answer): both answers read; an echo of another request is still refused. */
static void
test_no_echo(void **state)
{
	static const char *const specs[] = { "ms2130s-noecho", "ms2130s", "ms2109s-noecho",
					     "ms2109-noecho" };
	static const enum okvm_chip_kind kinds[] = { OKVM_CHIP_MS2130S, OKVM_CHIP_MS2130S,
						     OKVM_CHIP_MS2109S, OKVM_CHIP_MS2109 };
	for (size_t i = 0; i < 4; i++) {
		struct rig *r = rig_new("25022713");
		assert_int_equal(ms2109_emu_set_chip(&r->emu, specs[i]), 0);
		ms2109_emu_set_signal(&r->emu, true, 1920, 1080, 6000, 14850);
		struct okvm_chip *c = okvm_chip_new(kinds[i], &transport, r);
		struct okvm_chip_status st;
		assert_int_equal(okvm_chip_get_status(c, &st), 0);
		assert_string_equal(st.firmware, "25022713");
		assert_true(st.signal);
		assert_int_equal(st.width, 1920);
		assert_int_equal(st.height, 1080);
		okvm_chip_free(c);
		free(r);
	}
	struct rig *r = rig_new(NULL);
	assert_int_equal(ms2109_emu_set_chip(&r->emu, "ms2130s-noecho"), 0);
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2130S, &transport, r);
	uint8_t v;
	assert_int_equal(okvm_chip_read(c, 0x1FDC, &v), 0);
	assert_string_equal(r->log, "set 01 b5 1f dc 00 00 00 00 00 00 00\n"
				    "get 01 00 00 00 18 00 00 00 00 00 00\n");
	okvm_chip_free(c);
	static const struct okvm_chip_transport other = { t_set, other_cmd_get, NULL };
	c = okvm_chip_new(OKVM_CHIP_MS2109, &other, r);
	ms2109_emu_init(&r->emu, NULL);
	assert_int_equal(okvm_chip_read(c, 0xF800, &v), -EPROTO);
	okvm_chip_free(c);
	assert_int_equal(ms2109_emu_set_chip(&r->emu, "ms2130s-echo"), -EINVAL);
	free(r);
}

/* Belief "an MS2109S reports half the mode above 189 MHz, like the MS2109" (QT corrects the
 * MS2109 only): 3840x2160@30 at 297 MHz reads right whether the chip halves or not. */
static void
test_ms2109s_halving(void **state)
{
	static const char *const specs[] = { "ms2109s", "ms2109s-halves" };
	for (size_t i = 0; i < 2; i++) {
		struct rig *r = rig_new(NULL);
		assert_int_equal(ms2109_emu_set_chip(&r->emu, specs[i]), 0);
		ms2109_emu_set_signal(&r->emu, true, 3840, 2160, 3000, 29700);
		struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109S, &transport, r);
		struct okvm_chip_status st;
		assert_int_equal(okvm_chip_get_status(c, &st), 0);
		assert_int_equal(st.width, 3840);
		assert_int_equal(st.height, 2160);
		/* 1920x1080@60 at 148.5 MHz: never doubled */
		ms2109_emu_set_signal(&r->emu, true, 1920, 1080, 6000, 14850);
		assert_int_equal(okvm_chip_get_status(c, &st), 0);
		assert_int_equal(st.width, 1920);
		okvm_chip_free(c);
		free(r);
	}
}

/* Switch bit per firmware (hardware.md 3.2): read-modify-write, other bits untouched. */
static void
check_switch(const char *fw, uint8_t bit)
{
	struct rig *r = rig_new(fw);
	r->emu.xdata[MS2109_REG_SPDIFOUT] = 0xA0;
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109, &transport, r);
	char want[256];
	char fwbuf[9];
	assert_int_equal(okvm_chip_firmware(c, fwbuf, NULL), 0);
	clear(r);
	assert_int_equal(okvm_chip_set_switch(c, OKVM_USB_TO_TARGET), 0);
	snprintf(want, sizeof(want),
		 "set 00 b5 df 01 00 00 00 00 00\n"
		 "get 00 b5 df 01 a0 00 00 00 00\n"
		 "set 00 b6 df 01 %02x 00 00 00 00\n",
		 0xA0 | bit);
	assert_string_equal(r->log, want);
	assert_true(ms2109_emu_routed_target(&r->emu));
	enum okvm_usb_dir d;
	assert_int_equal(okvm_chip_get_switch(c, &d), 0);
	assert_int_equal(d, OKVM_USB_TO_TARGET);
	assert_int_equal(okvm_chip_set_switch(c, OKVM_USB_TO_HOST), 0);
	assert_int_equal(r->emu.xdata[MS2109_REG_SPDIFOUT], 0xA0);
	assert_false(ms2109_emu_routed_target(&r->emu));
	okvm_chip_free(c);
	free(r);
}

static void
test_switch_bit_both_generations(void **state)
{
	check_switch("24081309", 0x01); /* from 24081309 on: bit 0 */
	check_switch("25022713", 0x01);
	check_switch("24071201", 0x10); /* older: bit 4 */
	check_switch("23110800", 0x10);
}

static void
test_switch_sequence(void **state)
{
	struct rig *r = rig_new(NULL);
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109, &transport, r);
	struct okvm_usb_switch sw = { .chip = c, .dtr_pulse = t_dtr, .ud = r };
	char fw[9];
	assert_int_equal(okvm_chip_firmware(c, fw, NULL), 0);
	clear(r);
	assert_int_equal(okvm_usb_switch_set(&sw, OKVM_USB_TO_TARGET), 0);
	/* register first, then the power cycle (QT PR #649 / MacOS PR #35), 500 ms default */
	assert_string_equal(r->log, "set 00 b5 df 01 00 00 00 00 00\n"
				    "get 00 b5 df 01 00 00 00 00 00\n"
				    "set 00 b6 df 01 01 00 00 00 00\n"
				    "dtr 500\n");
	/* a failing pulse is reported (the register did change) */
	r->dtr_rc = -EBUSY;
	assert_int_equal(okvm_usb_switch_set(&sw, OKVM_USB_TO_HOST), -EBUSY);
	assert_false(ms2109_emu_routed_target(&r->emu));
	/* no way to pulse: the register is set, the caller learns it could not finish */
	sw.dtr_pulse = NULL;
	assert_int_equal(okvm_usb_switch_set(&sw, OKVM_USB_TO_TARGET), -ENOTSUP);

	/* CH32V208: command 0x17 only, no register, no pulse */
	struct okvm_usb_switch ch32 = { .serial_switch = t_serial, .dtr_pulse = t_dtr, .ud = r };
	clear(r);
	enum okvm_usb_dir d;
	assert_int_equal(okvm_usb_switch_set(&ch32, OKVM_USB_TO_TARGET), 0);
	assert_int_equal(okvm_usb_switch_get(&ch32, &d), 0);
	assert_int_equal(d, OKVM_USB_TO_TARGET);
	assert_string_equal(r->log, "0x17 target\n0x17 query\n");

	/* neither (v1.6 without a soft switch) */
	struct okvm_usb_switch none = { 0 };
	assert_int_equal(okvm_usb_switch_set(&none, OKVM_USB_TO_HOST), -ENOTSUP);
	assert_int_equal(okvm_usb_switch_get(&none, &d), -ENOTSUP);
	okvm_chip_free(c);
	free(r);
}

static void
test_follow(void **state)
{
	struct rig *r = rig_new(NULL);
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109, &transport, r);
	struct okvm_usb_switch sw = { .chip = c, .dtr_pulse = t_dtr, .ud = r, .pulse_ms = 600 };
	int last = -1;
	/* toggle at host, port at host: nothing to do */
	assert_int_equal(okvm_usb_switch_follow_step(&sw, &last), 0);
	assert_int_equal(last, OKVM_USB_TO_HOST);
	ms2109_emu_set_toggle(&r->emu, true);
	clear(r);
	assert_int_equal(okvm_usb_switch_follow_step(&sw, &last), 1);
	assert_true(ms2109_emu_routed_target(&r->emu));
	assert_non_null(strstr(r->log, "set 00 b6 df 01 01 00 00 00 00\ndtr 600\n"));
	clear(r);
	assert_int_equal(okvm_usb_switch_follow_step(&sw, &last), 0);
	assert_null(strstr(r->log, "dtr")); /* unchanged toggle: no pulse */
	ms2109_emu_set_toggle(&r->emu, false);
	assert_int_equal(okvm_usb_switch_follow_step(&sw, &last), 1);
	assert_false(ms2109_emu_routed_target(&r->emu));
	okvm_chip_free(c);
	free(r);
}

static unsigned
be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void
test_eeprom_header(void **state)
{
	struct rig *r = rig_new("24081309");
	struct okvm_chip *c = okvm_chip_new(OKVM_CHIP_MS2109, &transport, r);
	uint8_t img[MS2109_EMU_EEPROM_SIZE];
	assert_int_equal(okvm_chip_eeprom_read(c, 0, img, 48), 0);
	assert_int_equal(img[0], 0xA5);
	assert_int_equal(img[1], 0x5A);
	assert_int_equal(be16(img + 6), 0x534D);
	assert_int_equal(be16(img + 8), 0x2109);
	assert_memory_equal(img + 12, ((uint8_t[]){ 24, 8, 13, 9 }), 4);
	assert_int_equal(img[0x10], strlen("Openterface") + 1);
	assert_memory_equal(img + 0x11, "Openterface", 11);
	unsigned code = be16(img + 2), size = code + 52;
	assert_true(size <= sizeof(img));
	assert_int_equal(okvm_chip_eeprom_read(c, 48, img + 48, size - 48), 0);
	unsigned hsum = 0, csum = 0;
	for (int i = 2; i < 48; i++)
		hsum += img[i];
	for (unsigned i = 48; i < 48 + code; i++)
		csum += img[i];
	assert_int_equal(be16(img + size - 4), hsum & 0xFFFF);
	assert_int_equal(be16(img + size - 2), csum & 0xFFFF);
	/* the EDID inside the code, with its display name and a valid checksum */
	uint8_t *edid = memmem(img + 48, code, "\x00\xFF\xFF\xFF\xFF\xFF\xFF\x00", 8);
	assert_non_null(edid);
	unsigned sum = 0;
	for (int i = 0; i < 128; i++)
		sum += edid[i];
	assert_int_equal(sum % 256, 0);
	assert_non_null(memmem(edid, 128, "HD to USB", 9));
	/* five bytes per 0xE5 transaction */
	clear(r);
	assert_int_equal(okvm_chip_eeprom_read(c, 0x10, img, 5), 0);
	assert_string_equal(r->log, "set 00 e5 00 10 00 00 00 00 00\n"
				    "get 00 e5 00 10 0c 4f 70 65 6e\n");
	/* a new firmware version moves the header checksum with it */
	assert_int_equal(ms2109_emu_apply(&r->emu, "fw=25022713"), 0);
	assert_int_equal(okvm_chip_eeprom_read(c, 0, img, size), 0);
	hsum = 0;
	for (int i = 2; i < 48; i++)
		hsum += img[i];
	assert_int_equal(be16(img + size - 4), hsum & 0xFFFF);
	okvm_chip_free(c);
	free(r);
}

static void
test_model_dump_roundtrip(void **state)
{
	struct ms2109_emu *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	char text[4096];
	ms2109_emu_init(a, "24071201");
	assert_int_equal(ms2109_emu_apply(a, "mode=1920x1080@30"), 0);
	assert_int_equal(ms2109_emu_apply(a, "toggle=target"), 0);
	assert_int_equal(ms2109_emu_apply(a, "report_id=1"), 0);
	assert_int_equal(ms2109_emu_apply(a, "bogus=1"), -EINVAL);
	assert_int_equal(ms2109_emu_apply(a, "mode=0x0@1"), -EINVAL);
	ms2109_emu_dump(a, text, sizeof(text));
	ms2109_emu_init(b, NULL);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		assert_int_equal(ms2109_emu_apply(b, line), 0);
	assert_memory_equal(a->xdata, b->xdata, sizeof(a->xdata));
	assert_int_equal(b->report_id, 1);
	assert_int_equal(ms2109_emu_switch_bit(b), 0x10);
	free(a);
	free(b);
}

/* The in-process glue the virtual unit uses: same register code, same model. */
static void
test_in_process_glue(void **state)
{
	struct ms2109_emu *e = malloc(sizeof(*e));
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	ms2109_emu_init(e, NULL);
	assert_int_equal(ms2109_emu_apply(e, "mode=1024x768@75"), 0);
	struct okvm_chip *c = emu_ms2109_chip_new(e, &lock);
	struct okvm_chip_status st;
	assert_int_equal(okvm_chip_get_status(c, &st), 0);
	assert_true(st.signal);
	assert_int_equal(st.width, 1024);
	assert_int_equal(st.height, 768);
	assert_float_equal(st.fps, 75.0, 1e-9);
	assert_int_equal(okvm_chip_set_switch(c, OKVM_USB_TO_TARGET), 0);
	assert_true(ms2109_emu_routed_target(e));
	okvm_chip_free(c);
	free(e);
}

static void
test_kind(void **state)
{
	enum okvm_chip_kind k;
	assert_int_equal(okvm_chip_kind_from_usb(0x534D, 0x2109, &k), 0);
	assert_int_equal(k, OKVM_CHIP_MS2109);
	assert_int_equal(okvm_chip_kind_from_usb(0x345F, 0x2109, &k), 0);
	assert_int_equal(k, OKVM_CHIP_MS2109S);
	assert_int_equal(okvm_chip_kind_from_usb(0x345F, 0x2132, &k), 0);
	assert_int_equal(k, OKVM_CHIP_MS2130S);
	assert_int_equal(okvm_chip_kind_from_usb(0x1A86, 0x7523, &k), -ENODEV);
	assert_string_equal(okvm_chip_kind_name(OKVM_CHIP_MS2130S), "MS2130S");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_bytes),
		cmocka_unit_test(test_status_and_quirks),
		cmocka_unit_test(test_report_id_fallback),
		cmocka_unit_test(test_echo_mismatch),
		cmocka_unit_test(test_no_echo),
		cmocka_unit_test(test_ms2109s_halving),
		cmocka_unit_test(test_unplugged),
		cmocka_unit_test(test_switch_bit_both_generations),
		cmocka_unit_test(test_switch_sequence),
		cmocka_unit_test(test_follow),
		cmocka_unit_test(test_eeprom_header),
		cmocka_unit_test(test_model_dump_roundtrip),
		cmocka_unit_test(test_in_process_glue),
		cmocka_unit_test(test_kind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
