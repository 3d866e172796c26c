/*
 * DESIGN: the CH9329 frame codec (docs/hardware.md 2).
 * Encoders fill a struct okvm_ch9329_frame and serialise it; the streaming decoder takes bytes in
 * any chunking, skips garbage until 57 AB, drops frames whose checksum or length is wrong and then
 * resynchronises one byte after the bad header (a real header may hide inside a broken frame, as
 * in the macOS app's parser). Pure: no fds, no clocks, no allocation, no logging; any thread may
 * use its own parser. It does not interpret replies beyond the payload decoders below; the link
 * decides what an error means.
 */
#include <errno.h>
#include <string.h>

#include "okvm/ch9329.h"
#include "okvm/models.h"

uint8_t
okvm_ch9329_sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

size_t
okvm_ch9329_encode(const struct okvm_ch9329_frame *f, uint8_t *out, size_t cap)
{
	size_t total = (size_t)f->len + OKVM_CH9329_OVERHEAD;
	if (cap < total)
		return 0;
	out[0] = OKVM_CH9329_HEAD0;
	out[1] = OKVM_CH9329_HEAD1;
	out[2] = f->addr;
	out[3] = f->cmd;
	out[4] = f->len;
	memcpy(out + 5, f->data, f->len);
	out[total - 1] = okvm_ch9329_sum(out, total - 1);
	return total;
}

static void
frame_init(struct okvm_ch9329_frame *f, uint8_t cmd, uint8_t len)
{
	memset(f, 0, sizeof(*f));
	f->cmd = cmd;
	f->len = len;
}

void
okvm_ch9329_build_simple(struct okvm_ch9329_frame *f, uint8_t cmd)
{
	frame_init(f, cmd, 0);
}

void
okvm_ch9329_build_kbd(struct okvm_ch9329_frame *f, const struct okvm_kbd_report *r)
{
	frame_init(f, OKVM_CH9329_CMD_SEND_KB_GENERAL, 8);
	f->data[0] = r->modifiers;
	f->data[1] = 0x00; /* reserved, must be 0 (hardware.md 2.5) */
	memcpy(f->data + 2, r->keys, 6);
}

void
okvm_ch9329_build_media(struct okvm_ch9329_frame *f, const struct okvm_media_report *r)
{
	/* hardware.md 2.3: ACPI is report id + 1 byte (LEN 2), multimedia id + 3 bytes (LEN 4). */
	uint8_t n = r->report_id == OKVM_MEDIA_ACPI ? 1 : 3;
	frame_init(f, OKVM_CH9329_CMD_SEND_KB_MEDIA, (uint8_t)(n + 1));
	f->data[0] = r->report_id;
	memcpy(f->data + 1, r->bits, n);
}

static uint16_t
clamp_abs(uint16_t v)
{
	return v > OKVM_CH9329_ABS_MAX ? OKVM_CH9329_ABS_MAX : v;
}

void
okvm_ch9329_build_abs(struct okvm_ch9329_frame *f, const struct okvm_mouse_abs *m)
{
	uint16_t x = clamp_abs(m->x), y = clamp_abs(m->y);
	frame_init(f, OKVM_CH9329_CMD_SEND_MS_ABS, 7);
	f->data[0] = 0x02; /* absolute mouse report id (hardware.md 2.6) */
	f->data[1] = m->buttons & OKVM_BTN_MASK;
	f->data[2] = (uint8_t)(x & 0xff);
	f->data[3] = (uint8_t)(x >> 8);
	f->data[4] = (uint8_t)(y & 0xff);
	f->data[5] = (uint8_t)(y >> 8);
	f->data[6] = (uint8_t)m->wheel;
}

void
okvm_ch9329_build_rel(struct okvm_ch9329_frame *f, const struct okvm_mouse_rel *m)
{
	frame_init(f, OKVM_CH9329_CMD_SEND_MS_REL, 5);
	f->data[0] = 0x01; /* relative mouse report id (hardware.md 2.7) */
	f->data[1] = m->buttons & OKVM_BTN_MASK;
	f->data[2] = (uint8_t)m->dx;
	f->data[3] = (uint8_t)m->dy;
	f->data[4] = (uint8_t)m->wheel;
}

int
okvm_ch9329_build_custom(struct okvm_ch9329_frame *f, const uint8_t *data, size_t len)
{
	if (len > OKVM_CH9329_HOST_MAX_DATA)
		return -EINVAL;
	frame_init(f, OKVM_CH9329_CMD_SEND_MY_HID, (uint8_t)len);
	if (len)
		memcpy(f->data, data, len);
	return 0;
}

void
okvm_ch9329_build_set_params(struct okvm_ch9329_frame *f, const struct okvm_ch9329_params *p)
{
	frame_init(f, OKVM_CH9329_CMD_SET_PARA_CFG, OKVM_CH9329_PARAMS_LEN);
	okvm_ch9329_params_pack(p, f->data);
}

void
okvm_ch9329_build_get_string(struct okvm_ch9329_frame *f, enum okvm_ch9329_string type)
{
	frame_init(f, OKVM_CH9329_CMD_GET_USB_STRING, 1);
	f->data[0] = (uint8_t)type;
}

int
okvm_ch9329_build_set_string(struct okvm_ch9329_frame *f, enum okvm_ch9329_string type,
			     const char *s, size_t len)
{
	if (len > OKVM_CH9329_STRING_MAX || (unsigned)type > OKVM_CH9329_STR_SERIAL)
		return -EINVAL;
	frame_init(f, OKVM_CH9329_CMD_SET_USB_STRING, (uint8_t)(len + 2));
	f->data[0] = (uint8_t)type;
	f->data[1] = (uint8_t)len;
	if (len)
		memcpy(f->data + 2, s, len);
	return 0;
}

void
okvm_ch9329_build_usb_switch(struct okvm_ch9329_frame *f, enum okvm_usb_dir dir)
{
	/* hardware.md 2.3: 5 bytes, 00 00 00 00 dir. */
	frame_init(f, OKVM_CH9329_CMD_USB_SWITCH, 5);
	f->data[4] = (uint8_t)dir;
}

void
okvm_ch9329_build_reply(struct okvm_ch9329_frame *f, uint8_t cmd, bool ok, const uint8_t *data,
			uint8_t len)
{
	frame_init(f, (uint8_t)(cmd | (ok ? OKVM_CH9329_REPLY_OK : OKVM_CH9329_REPLY_ERR)), len);
	if (len)
		memcpy(f->data, data, len);
}

static int
expect(const struct okvm_ch9329_frame *f, uint8_t cmd, uint8_t min_len)
{
	return f->cmd == cmd && f->len >= min_len ? 0 : -EBADMSG;
}

int
okvm_ch9329_parse_info(const struct okvm_ch9329_frame *f, struct okvm_ch9329_info *out)
{
	if (expect(f, OKVM_CH9329_CMD_GET_INFO | OKVM_CH9329_REPLY_OK, 3) < 0)
		return -EBADMSG;
	/* The version byte: DATA[0] (CH9329-P), but the macOS app's SerialResponseHandler also
	 * reads it from DATA[7] when DATA[0] is 0x00 and from DATA[3] when DATA[0] is 0x01 or 0x02
	 * (other firmware; a CH9329's DATA[0] is 0x30 and up, so the layouts never collide). */
	out->version = f->data[0];
	if (f->data[0] == 0x00 && f->len >= 8)
		out->version = f->data[7];
	else if ((f->data[0] == 0x01 || f->data[0] == 0x02) && f->len >= 4)
		out->version = f->data[3];
	out->target_connected = f->data[1] == 0x01;
	out->leds = f->data[2] & 0x07;
	return 0;
}

int
okvm_ch9329_parse_params(const struct okvm_ch9329_frame *f, struct okvm_ch9329_params *out)
{
	uint8_t cmd = f->cmd & 0x3f;
	if ((cmd != OKVM_CH9329_CMD_GET_PARA_CFG && cmd != OKVM_CH9329_CMD_SET_PARA_CFG) ||
	    (f->cmd & OKVM_CH9329_REPLY_ERR) == OKVM_CH9329_REPLY_ERR ||
	    f->len < OKVM_CH9329_PARAMS_LEN)
		return -EBADMSG;
	okvm_ch9329_params_unpack(f->data, out);
	return 0;
}

int
okvm_ch9329_parse_string(const struct okvm_ch9329_frame *f, uint8_t *type, char s[24])
{
	uint8_t cmd = f->cmd & 0x3f;
	if ((cmd != OKVM_CH9329_CMD_GET_USB_STRING && cmd != OKVM_CH9329_CMD_SET_USB_STRING) ||
	    (f->cmd & OKVM_CH9329_REPLY_ERR) == OKVM_CH9329_REPLY_ERR || f->len < 2)
		return -EBADMSG;
	uint8_t n = f->data[1];
	if (n > OKVM_CH9329_STRING_MAX || (size_t)n + 2 > f->len)
		return -EBADMSG;
	*type = f->data[0];
	memcpy(s, f->data + 2, n);
	s[n] = '\0';
	return 0;
}

int
okvm_ch9329_parse_kbd(const struct okvm_ch9329_frame *f, struct okvm_kbd_report *out)
{
	if (expect(f, OKVM_CH9329_CMD_SEND_KB_GENERAL, 8) < 0 || f->len != 8)
		return -EBADMSG;
	out->modifiers = f->data[0];
	memcpy(out->keys, f->data + 2, 6);
	return 0;
}

int
okvm_ch9329_parse_abs(const struct okvm_ch9329_frame *f, struct okvm_mouse_abs *out)
{
	if (expect(f, OKVM_CH9329_CMD_SEND_MS_ABS, 7) < 0 || f->len != 7 || f->data[0] != 0x02)
		return -EBADMSG;
	out->buttons = f->data[1];
	out->x = (uint16_t)(f->data[2] | f->data[3] << 8);
	out->y = (uint16_t)(f->data[4] | f->data[5] << 8);
	out->wheel = (int8_t)f->data[6];
	return 0;
}

int
okvm_ch9329_parse_rel(const struct okvm_ch9329_frame *f, struct okvm_mouse_rel *out)
{
	if (expect(f, OKVM_CH9329_CMD_SEND_MS_REL, 5) < 0 || f->len != 5 || f->data[0] != 0x01)
		return -EBADMSG;
	out->buttons = f->data[1];
	out->dx = (int8_t)f->data[2];
	out->dy = (int8_t)f->data[3];
	out->wheel = (int8_t)f->data[4];
	return 0;
}

int
okvm_ch9329_parse_media(const struct okvm_ch9329_frame *f, struct okvm_media_report *out)
{
	if (expect(f, OKVM_CH9329_CMD_SEND_KB_MEDIA, 2) < 0)
		return -EBADMSG;
	uint8_t id = f->data[0];
	/* ACPI: LEN 2 per spec, LEN 4 as the macOS app pads it; multimedia: LEN 4. */
	if (!((id == OKVM_MEDIA_ACPI && (f->len == 2 || f->len == 4)) ||
	      (id == OKVM_MEDIA_MULTIMEDIA && f->len == 4)))
		return -EBADMSG;
	memset(out, 0, sizeof(*out));
	out->report_id = id;
	memcpy(out->bits, f->data + 1, (size_t)f->len - 1);
	if (id == OKVM_MEDIA_ACPI)
		out->bits[1] = out->bits[2] = 0;
	return 0;
}

static void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void
okvm_ch9329_params_pack(const struct okvm_ch9329_params *p, uint8_t out[OKVM_CH9329_PARAMS_LEN])
{
	/* Offsets: hardware.md 2.8, "Data bytes" column. */
	memset(out, 0, OKVM_CH9329_PARAMS_LEN);
	out[0] = p->mode;
	out[1] = p->serial_mode;
	out[2] = p->addr;
	out[3] = (uint8_t)(p->baud >> 24);
	out[4] = (uint8_t)(p->baud >> 16);
	out[5] = (uint8_t)(p->baud >> 8);
	out[6] = (uint8_t)p->baud;
	memcpy(out + 7, p->reserved1, 2);
	put_be16(out + 9, p->packet_interval_ms);
	out[11] = (uint8_t)p->vid; /* VID/PID little-endian */
	out[12] = (uint8_t)(p->vid >> 8);
	out[13] = (uint8_t)p->pid;
	out[14] = (uint8_t)(p->pid >> 8);
	put_be16(out + 15, p->kb_upload_interval_ms);
	put_be16(out + 17, p->kb_release_delay_ms);
	out[19] = p->auto_enter;
	memcpy(out + 20, p->enter_chars, 8);
	memcpy(out + 28, p->filter, 8);
	out[36] = p->string_enable;
	out[37] = p->kb_fast_upload;
	memcpy(out + 38, p->reserved2, 12);
}

void
okvm_ch9329_params_unpack(const uint8_t in[OKVM_CH9329_PARAMS_LEN], struct okvm_ch9329_params *p)
{
	memset(p, 0, sizeof(*p));
	p->mode = in[0];
	p->serial_mode = in[1];
	p->addr = in[2];
	p->baud = (uint32_t)in[3] << 24 | (uint32_t)in[4] << 16 | (uint32_t)in[5] << 8 | in[6];
	memcpy(p->reserved1, in + 7, 2);
	p->packet_interval_ms = get_be16(in + 9);
	p->vid = (uint16_t)(in[11] | in[12] << 8);
	p->pid = (uint16_t)(in[13] | in[14] << 8);
	p->kb_upload_interval_ms = get_be16(in + 15);
	p->kb_release_delay_ms = get_be16(in + 17);
	p->auto_enter = in[19];
	memcpy(p->enter_chars, in + 20, 8);
	memcpy(p->filter, in + 28, 8);
	p->string_enable = in[36];
	p->kb_fast_upload = in[37];
	memcpy(p->reserved2, in + 38, 12);
}

void
okvm_ch9329_params_factory(struct okvm_ch9329_params *p)
{
	/* hardware.md 2.8, factory column; mode 0x82 because the Mini-KVM straps MODE1 low. */
	memset(p, 0, sizeof(*p));
	p->mode = 0x82;
	p->serial_mode = 0x80;
	p->addr = 0x00;
	p->baud = 9600;
	p->reserved1[0] = 0x08;
	p->packet_interval_ms = 3;
	const struct okvm_hid_chip *c = okvm_hid_chip_get(OKVM_HID_CH9329);
	p->vid = c->target_vid;
	p->pid = c->target_pid;
	p->kb_release_delay_ms = 1;
	p->enter_chars[0] = 0x0D;
}

bool
okvm_ch9329_is_reply_to(const struct okvm_ch9329_frame *f, uint8_t cmd)
{
	return f->cmd == (cmd | OKVM_CH9329_REPLY_OK) || f->cmd == (cmd | OKVM_CH9329_REPLY_ERR);
}

uint8_t
okvm_ch9329_reply_status(const struct okvm_ch9329_frame *f)
{
	bool err = (f->cmd & OKVM_CH9329_REPLY_ERR) == OKVM_CH9329_REPLY_ERR;
	if (err)
		return f->len >= 1 && f->data[0] ? f->data[0] : OKVM_CH9329_ERR_OPERATE;
	uint8_t cmd = f->cmd & 0x3f;
	bool status_payload = cmd != OKVM_CH9329_CMD_GET_INFO &&
			      cmd != OKVM_CH9329_CMD_GET_PARA_CFG &&
			      cmd != OKVM_CH9329_CMD_GET_USB_STRING &&
			      cmd != OKVM_CH9329_CMD_USB_SWITCH;
	return status_payload && f->len == 1 ? f->data[0] : OKVM_CH9329_OK;
}

const char *
okvm_ch9329_status_name(uint8_t status)
{
	switch (status) {
	case OKVM_CH9329_OK: return "OK";
	case OKVM_CH9329_ERR_TIMEOUT: return "ERR_TIMEOUT";
	case OKVM_CH9329_ERR_HEAD: return "ERR_HEAD";
	case OKVM_CH9329_ERR_CMD: return "ERR_CMD";
	case OKVM_CH9329_ERR_SUM: return "ERR_SUM";
	case OKVM_CH9329_ERR_PARA: return "ERR_PARA";
	case OKVM_CH9329_ERR_OPERATE: return "ERR_OPERATE";
	default: return "unknown";
	}
}

const char *
okvm_ch9329_cmd_name(uint8_t cmd)
{
	switch (cmd & 0x3f) {
	case OKVM_CH9329_CMD_GET_INFO: return "GET_INFO";
	case OKVM_CH9329_CMD_SEND_KB_GENERAL: return "SEND_KB_GENERAL_DATA";
	case OKVM_CH9329_CMD_SEND_KB_MEDIA: return "SEND_KB_MEDIA_DATA";
	case OKVM_CH9329_CMD_SEND_MS_ABS: return "SEND_MS_ABS_DATA";
	case OKVM_CH9329_CMD_SEND_MS_REL: return "SEND_MS_REL_DATA";
	case OKVM_CH9329_CMD_SEND_MY_HID: return "SEND_MY_HID_DATA";
	case OKVM_CH9329_CMD_READ_MY_HID: return "READ_MY_HID_DATA";
	case OKVM_CH9329_CMD_GET_PARA_CFG: return "GET_PARA_CFG";
	case OKVM_CH9329_CMD_SET_PARA_CFG: return "SET_PARA_CFG";
	case OKVM_CH9329_CMD_GET_USB_STRING: return "GET_USB_STRING";
	case OKVM_CH9329_CMD_SET_USB_STRING: return "SET_USB_STRING";
	case OKVM_CH9329_CMD_SET_DEFAULT_CFG: return "SET_DEFAULT_CFG";
	case OKVM_CH9329_CMD_RESET: return "RESET";
	case OKVM_CH9329_CMD_USB_SWITCH: return "USB_SWITCH";
	default: return "unknown";
	}
}

void
okvm_ch9329_parser_init(struct okvm_ch9329_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->max_len = OKVM_CH9329_MAX_DATA;
}

void
okvm_ch9329_parser_reset(struct okvm_ch9329_parser *p)
{
	p->n = 0;
}

size_t
okvm_ch9329_parser_push(struct okvm_ch9329_parser *p, const uint8_t *in, size_t len)
{
	size_t room = OKVM_CH9329_PARSER_CAP - p->n;
	size_t k = len < room ? len : room;
	memcpy(p->buf + p->n, in, k);
	p->n += k;
	return k;
}

static void
drop(struct okvm_ch9329_parser *p, size_t k)
{
	memmove(p->buf, p->buf + k, p->n - k);
	p->n -= k;
}

int
okvm_ch9329_parser_next(struct okvm_ch9329_parser *p, struct okvm_ch9329_frame *out)
{
	/* Skip to the first 57 (a lone 57 at the end may start a header). */
	size_t i = 0;
	while (i < p->n && !(p->buf[i] == OKVM_CH9329_HEAD0 &&
			     (i + 1 == p->n || p->buf[i + 1] == OKVM_CH9329_HEAD1)))
		i++;
	if (i) {
		p->garbage_bytes += i;
		drop(p, i);
	}
	if (p->n < 5)
		return 0;
	uint8_t len = p->buf[4];
	/* Only a success reply may be longer than what the host may send (a CH9329F's 72 or 88
	   byte GET_PARA_CFG): a stray 57 AB with a long LEN must not swallow the frames after it. */
	bool reply_ok = (p->buf[3] & 0xC0) == OKVM_CH9329_REPLY_OK;
	if (len > p->max_len || (len > OKVM_CH9329_HOST_MAX_DATA && !reply_ok)) {
		p->bad_lengths++;
		drop(p, 1);
		return -EMSGSIZE;
	}
	size_t total = (size_t)len + OKVM_CH9329_OVERHEAD;
	if (p->n < total)
		return 0;
	if (okvm_ch9329_sum(p->buf, total - 1) != p->buf[total - 1]) {
		p->bad_sums++;
		drop(p, 1);
		return -EBADMSG;
	}
	out->addr = p->buf[2];
	out->cmd = p->buf[3];
	out->len = len;
	memcpy(out->data, p->buf + 5, len);
	drop(p, total);
	return 1;
}
