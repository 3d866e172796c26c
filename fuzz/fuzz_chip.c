/*
 * Fuzz target: the video chip's register replies (src/lib/chip/ms21xx.c, usbswitch.c). A fake
 * HID transport answers every feature report from the input, so the reply checks, the report
 * format fall-backs, the firmware and mode decoding and the USB switch logic all see replies a
 * broken or hostile chip could send.
 *
 * Input: byte 0 picks the chip (MS2109, MS2109S, MS2130S); then operations, one byte each plus
 * their arguments, interleaved with the bytes the transport consumes:
 *   SET_FEATURE: one byte; 0xE0..0xE7 fail with an errno from `errs`, anything else succeeds.
 *   GET_FEATURE: one byte g, by its top two bits:
 *     0 echo the request (id, command, address) and take 5 data bytes from the input
 *     1 the same with one of the echoed bytes wrong (the reply to another request)
 *     2 (g & 63) raw bytes from the input, a short or garbled report
 *     3 fail with an errno from `errs`
 * When the input runs out the transport answers -ENODEV (unplugged), which ends every operation.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "okvm/chip.h"

struct feed {
	const uint8_t *p;
	size_t n;
	uint8_t req[65];
	size_t req_len;
};

static const int errs[8] = { -EPIPE, -EINVAL, -EIO, -ETIMEDOUT, -ENODEV, -EBADF, -EPROTO, -EAGAIN };

static int
take(struct feed *f)
{
	if (!f->n)
		return -1;
	f->n--;
	return *f->p++;
}

static uint16_t
take16(struct feed *f)
{
	int hi = take(f), lo = take(f);
	return (uint16_t)((hi < 0 ? 0 : hi) << 8 | (lo < 0 ? 0 : lo));
}

static int
t_set(void *ud, const uint8_t *buf, size_t len)
{
	struct feed *f = ud;
	int b = take(f);
	if (b < 0)
		return -ENODEV;
	if (len > sizeof(f->req))
		abort(); /* a report longer than any the chips use */
	memcpy(f->req, buf, len);
	f->req_len = len;
	return (b & 0xF8) == 0xE0 ? errs[b & 7] : 0;
}

static int
t_get(void *ud, uint8_t *buf, size_t len)
{
	struct feed *f = ud;
	int g = take(f);
	if (g < 0)
		return -ENODEV;
	if (len < 5 || len > sizeof(f->req))
		abort();
	switch (g >> 6) {
	case 0:
	case 1:
		memset(buf, 0, len);
		memcpy(buf, f->req, 4);
		for (size_t i = 4; i < 9 && i < len; i++) {
			int b = take(f);
			buf[i] = (uint8_t)(b < 0 ? 0 : b);
		}
		if (g >> 6)
			buf[1 + (g & 3) % 3] ^= (uint8_t)(g | 1);
		return (int)len;
	case 2: {
		size_t n = (size_t)(g & 63);
		if (n > len)
			n = len;
		if (n > f->n)
			n = f->n;
		memcpy(buf, f->p, n);
		f->p += n;
		f->n -= n;
		return (int)n;
	}
	default: return errs[g & 7];
	}
}

static int
t_dtr(void *ud, int ms)
{
	return ms > 0 ? 0 : -EINVAL;
}

static void
check_firmware(const char fw[9], unsigned long num)
{
	if (strlen(fw) != 8)
		abort();
	for (int i = 0; i < 8; i++)
		if (!isdigit((unsigned char)fw[i]))
			abort();
	if (strtoul(fw, NULL, 10) != num)
		abort();
}

static void
check_status(const struct okvm_chip_status *st)
{
	check_firmware(st->firmware, strtoul(st->firmware, NULL, 10));
	if (!st->signal && (st->width || st->height || st->fps != 0 || st->pixel_clock != 0))
		abort(); /* mode fields only with a signal */
	if (st->width < 0 || st->height < 0 || st->fps < 0 || st->pixel_clock < 0)
		abort();
}

static void
run_op(struct okvm_chip *c, struct feed *f, int op)
{
	static const struct okvm_usb_switch none;
	struct okvm_usb_switch sw = { .chip = c, .dtr_pulse = t_dtr };
	enum okvm_usb_dir dir = take(f) & 1 ? OKVM_USB_TO_TARGET : OKVM_USB_TO_HOST;
	uint8_t v, buf[32];
	uint16_t v16;
	char fw[9];
	unsigned long num;
	struct okvm_chip_status st;
	int last;
	switch (op % 11) {
	case 0: okvm_chip_read(c, take16(f), &v); break;
	case 1: okvm_chip_write(c, take16(f), (uint8_t)take(f)); break;
	case 2: okvm_chip_read16(c, take16(f), &v16); break;
	case 3: okvm_chip_eeprom_read(c, take16(f), buf, (size_t)(take(f) & 31)); break;
	case 4:
		if (okvm_chip_firmware(c, fw, &num) == 0)
			check_firmware(fw, num);
		break;
	case 5:
		if (okvm_chip_get_status(c, &st) == 0)
			check_status(&st);
		break;
	case 6: okvm_chip_get_toggle(c, &dir); break;
	case 7: okvm_chip_get_switch(c, &dir); break;
	case 8: okvm_usb_switch_set(&sw, dir); break;
	case 9:
		last = take(f) & 1 ? -1 : (int)dir;
		okvm_usb_switch_follow_step(&sw, &last);
		break;
	default:
		okvm_usb_switch_get(&none, &dir);
		okvm_usb_switch_get(&sw, &dir);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	struct feed f = { .p = data + 1, .n = size - 1 };
	static const struct okvm_chip_transport t = { t_set, t_get, NULL };
	enum okvm_chip_kind kind = (enum okvm_chip_kind)(data[0] % 3);
	struct okvm_chip *c = okvm_chip_new(kind, &t, &f);
	if (okvm_chip_kind(c) != kind || !okvm_chip_kind_name(kind))
		abort();
	for (int k = 0; k < 64; k++) {
		int op = take(&f);
		if (op < 0)
			break;
		run_op(c, &f, op);
	}
	okvm_chip_free(c);
	return 0;
}
