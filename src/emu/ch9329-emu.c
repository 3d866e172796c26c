/*
 * DESIGN: the virtual CH9329 (docs/hardware.md 2, reply rules 2.15).
 *
 * Pure state machine with the clock passed in; emu.c does the I/O. The host's bytes become
 * a timeline: each byte's stop bit ends 10 bits / baud after the previous one (or after the time
 * it was read, if the line was idle). chip_run() takes the bytes in time order, so what the chip
 * does depends on wire time, not on when this thread happened to run:
 *   - a gap longer than the packet interval (3 ms) before a byte discards a partial frame;
 *   - bytes sent while the host's tty speed differs from the chip's baud arrive as junk that
 *     never contains a header byte, so nothing is answered (a real UART at the wrong speed);
 *   - replies are queued with their own wire times and written to the pty as they "arrive".
 * Frames are cut with the shared codec (okvm_ch9329_parser_*); on a bad checksum the parser
 * resyncs one byte later, and the chip drops the rest of that frame itself (a chip counts LEN)
 * after answering CMD|0xC0 E4.
 * With strict_gap (--emu-strict-gap) frames are not cut by LEN but by the idle line: the bytes
 * up to 3 ms of silence are one packet, so a frame sent less than 3 ms after the previous one's
 * last byte corrupts both (end_packet). ch32v208-quiet (no_info) never answers GET_INFO.
 * Not modelled: ASCII and pass-through serial modes (stored, never applied), unsolicited 0x87
 * frames, the 0xE1 timeout reply, the UP pin.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "emu/emu-internal.h"
#include "okvm/log.h"
#include "okvm/models.h"

/* Factory USB strings (docs/virtual-unit.md: product string from QT issue #220). */
static const char *const factory_strings[3] = { "WCH", "WCH UART TO KB-MS_V1.8", "0" };

uint64_t
emu_byte_ns(int baud)
{
	return 10ull * 1000000000ull / (uint64_t)(baud > 0 ? baud : EMU_DEFAULT_BAUD);
}

static bool
baud_supported(uint32_t baud)
{
	/* the CH9329's speeds (okvm/models.h); the CH32V208 emulation shares its parameter block */
	return baud <= INT_MAX && okvm_hid_chip_baud_ok(OKVM_HID_CH9329, (int)baud);
}

static void
fifo_push(struct emu_fifo *f, uint8_t b, uint64_t t)
{
	size_t i = (f->head + f->n) % EMU_FIFO_CAP;
	f->b[i] = b;
	f->t[i] = t;
	f->n++;
}

static uint8_t
fifo_pop(struct emu_fifo *f)
{
	uint8_t b = f->b[f->head];
	f->head = (f->head + 1) % EMU_FIFO_CAP;
	f->n--;
	return b;
}

static void
factory_defaults(struct emu_chip *c)
{
	okvm_ch9329_params_factory(&c->stored);
	for (int i = 0; i < 3; i++) {
		c->string_len[i] = (uint8_t)strlen(factory_strings[i]);
		memcpy(c->strings[i], factory_strings[i], c->string_len[i] + 1);
	}
}

/* Power-up or RESET: the stored parameters become the working ones. */
static void
apply_stored(struct emu_chip *c)
{
	c->baud = (int)c->stored.baud;
	c->addr = c->stored.addr;
	c->mode = c->stored.mode & 0x03;
	uint16_t gap = c->stored.packet_interval_ms ? c->stored.packet_interval_ms : 3;
	c->gap_ns = gap * 1000000ull;
	okvm_ch9329_parser_reset(&c->parser);
	c->pkt_n = 0;
	c->reset_at = EMU_NEVER;
}

void
chip_power_up(struct emu *e, uint64_t now)
{
	struct emu_chip *c = &e->chip;
	memset(c, 0, sizeof(*c));
	factory_defaults(c);
	/* --baud sets the baud the chip powers up with, as if stored earlier. */
	if (baud_supported((uint32_t)e->cfg_baud))
		c->stored.baud = (uint32_t)e->cfg_baud;
	apply_stored(c);
	okvm_ch9329_parser_init(&c->parser);
	c->parser.max_len = OKVM_CH9329_HOST_MAX_DATA; /* longer headers: resync (2.15) */
	c->factory_at = EMU_NEVER;
	c->rx_wire_end = c->last_rx = c->tx_wire_end = now;
}

static uint8_t
junk(uint8_t b)
{
	/* Deterministic and never 0x57, so no header can form out of it. */
	return (uint8_t)(0x80 | ((b * 37u + 11u) & 0x7f));
}

void
chip_host_bytes(struct emu *e, const uint8_t *p, size_t n, int host_baud, uint64_t now)
{
	struct emu_chip *c = &e->chip;
	bool wrong = host_baud != c->baud;
	uint64_t bt = emu_byte_ns(c->baud);
	uint64_t t = c->rx_wire_end > now ? c->rx_wire_end : now;
	for (size_t i = 0; i < n && c->rx.n < EMU_FIFO_CAP; i++) {
		t += bt;
		fifo_push(&c->rx, wrong ? junk(p[i]) : p[i], t);
	}
	c->rx_wire_end = t;
}

static void
send_frame(struct emu *e, const struct okvm_ch9329_frame *f, uint64_t t)
{
	struct emu_chip *c = &e->chip;
	uint8_t buf[OKVM_CH9329_MAX_FRAME];
	size_t n = okvm_ch9329_encode(f, buf, sizeof(buf));
	uint64_t bt = emu_byte_ns(c->baud);
	uint64_t w = c->tx_wire_end > t ? c->tx_wire_end : t;
	if (c->tx.n + n > EMU_FIFO_CAP)
		return; /* lost, whole frames only: never a torn reply on the wire */
	for (size_t i = 0; i < n; i++) {
		w += bt;
		fifo_push(&c->tx, buf[i], w);
	}
	c->tx_wire_end = w;
}

static void
reply(struct emu *e, uint8_t cmd, bool ok, const uint8_t *data, uint8_t len, uint64_t t)
{
	struct okvm_ch9329_frame f;
	okvm_ch9329_build_reply(&f, cmd, ok, data, len);
	f.addr = e->chip.addr;
	send_frame(e, &f, t);
}

static void
reply_status(struct emu *e, uint8_t cmd, uint8_t status, uint64_t t)
{
	reply(e, cmd, status == OKVM_CH9329_OK, &status, 1, t);
}

#define EMU_SILENT (-1) /* execute(): no reply at all */

static int
cmd_get_info(struct emu *e, const struct okvm_ch9329_frame *f, uint8_t out[OKVM_CH9329_MAX_DATA],
	     uint8_t *len)
{
	if (e->no_info)
		return EMU_SILENT;
	if (f->len)
		return OKVM_CH9329_ERR_PARA;
	memset(out, 0, 8);
	out[0] = e->version;
	if (e->info_version_at == 7 || e->info_version_at == 3) {
		/* the other layouts (--emu-chip ch32v208-d7 / -d3): a marker in DATA[0] */
		out[0] = e->info_version_at == 7 ? 0x00 : 0x01;
		out[e->info_version_at] = e->version;
	}
	out[1] = e->target.enumerated ? 0x01 : 0x00;
	out[2] = e->target.enumerated ? e->target.leds : 0x00;
	*len = 8;
	return OKVM_CH9329_OK;
}

/* Which slot a HID command fills, after checking it as the chip would (E5 on bad layout). */
static int
check_hid(const struct okvm_ch9329_frame *f, enum emu_slot_kind *kind)
{
	struct okvm_kbd_report kr;
	struct okvm_media_report mr;
	struct okvm_mouse_abs ma;
	struct okvm_mouse_rel ml;
	switch (f->cmd) {
	case OKVM_CH9329_CMD_SEND_KB_GENERAL:
		*kind = EMU_SLOT_KBD;
		return okvm_ch9329_parse_kbd(f, &kr) || f->data[1] ? OKVM_CH9329_ERR_PARA : 0;
	case OKVM_CH9329_CMD_SEND_KB_MEDIA:
		*kind = EMU_SLOT_MEDIA;
		return okvm_ch9329_parse_media(f, &mr) ? OKVM_CH9329_ERR_PARA : 0;
	case OKVM_CH9329_CMD_SEND_MS_ABS:
		*kind = EMU_SLOT_MOUSE;
		return okvm_ch9329_parse_abs(f, &ma) ? OKVM_CH9329_ERR_PARA : 0;
	default:
		*kind = EMU_SLOT_MOUSE;
		return okvm_ch9329_parse_rel(f, &ml) ? OKVM_CH9329_ERR_PARA : 0;
	}
}

static bool
mode_allows(uint8_t mode, enum emu_slot_kind k)
{
	/* CH9329-D operating modes (hardware.md 2.8): 1 keyboard only, 3 custom HID only. */
	if (mode == 3)
		return false;
	return mode != 1 || k == EMU_SLOT_KBD;
}

static int
cmd_hid(struct emu *e, const struct okvm_ch9329_frame *f, uint64_t t)
{
	enum emu_slot_kind k;
	int st = check_hid(f, &k);
	if (st)
		return st;
	if (!mode_allows(e->chip.mode, k)) {
		static const char *const names[] = { "keyboard", "mouse", "media" };
		emu_emit(e, &(struct emu_event){ .type = EMU_EV_DROPPED, .report = names[k] });
		return OKVM_CH9329_OK;
	}
	target_submit(e, k, f->cmd, f->data, f->len, t);
	return OKVM_CH9329_OK;
}

static bool
params_valid(const struct okvm_ch9329_params *p)
{
	bool mode_ok = (p->mode & 0x7c) == 0;          /* 0x00-0x03 or 0x80-0x83 */
	bool serial_ok = (p->serial_mode & 0x7f) <= 2; /* 0x00-0x02 or 0x80-0x82 */
	return mode_ok && serial_ok && baud_supported(p->baud);
}

static int
cmd_set_params(struct emu *e, const struct okvm_ch9329_frame *f)
{
	struct okvm_ch9329_params p;
	if (f->len != OKVM_CH9329_PARAMS_LEN)
		return OKVM_CH9329_ERR_PARA;
	okvm_ch9329_params_unpack(f->data, &p);
	if (!params_valid(&p))
		return OKVM_CH9329_ERR_PARA;
	e->chip.stored = p; /* applied at the next RESET or power-up (CH9329-P 2.2.9) */
	return OKVM_CH9329_OK;
}

static int
cmd_get_string(struct emu *e, const struct okvm_ch9329_frame *f, uint8_t out[OKVM_CH9329_MAX_DATA],
	       uint8_t *len)
{
	if (f->len != 1 || f->data[0] > OKVM_CH9329_STR_SERIAL)
		return OKVM_CH9329_ERR_PARA;
	uint8_t type = f->data[0], n = e->chip.string_len[type];
	out[0] = type;
	out[1] = n;
	memcpy(out + 2, e->chip.strings[type], n);
	*len = (uint8_t)(n + 2);
	return OKVM_CH9329_OK;
}

static int
cmd_set_string(struct emu *e, const struct okvm_ch9329_frame *f)
{
	if (f->len < 2 || f->data[0] > OKVM_CH9329_STR_SERIAL ||
	    f->data[1] > OKVM_CH9329_STRING_MAX || f->len != f->data[1] + 2)
		return OKVM_CH9329_ERR_PARA;
	uint8_t type = f->data[0], n = f->data[1];
	memcpy(e->chip.strings[type], f->data + 2, n);
	e->chip.strings[type][n] = '\0';
	e->chip.string_len[type] = n;
	return OKVM_CH9329_OK;
}

static int
cmd_usb_switch(struct emu *e, const struct okvm_ch9329_frame *f, uint8_t out[OKVM_CH9329_MAX_DATA],
	       uint8_t *len)
{
	static const uint8_t zero[4];
	if (e->chip_type != EMU_CHIP_CH32V208)
		return OKVM_CH9329_ERR_CMD; /* a CH9329 has no 0x17 */
	uint8_t dir = f->len == 5 ? f->data[4] : 0xff;
	if (f->len != 5 || memcmp(f->data, zero, 4) ||
	    (dir != OKVM_USB_TO_HOST && dir != OKVM_USB_TO_TARGET && dir != OKVM_USB_QUERY))
		return OKVM_CH9329_ERR_PARA;
	if (dir != OKVM_USB_QUERY && e->chip.usb_to_target != (dir == OKVM_USB_TO_TARGET)) {
		e->chip.usb_to_target = dir == OKVM_USB_TO_TARGET;
		emu_emit(e, &(struct emu_event){ .type = EMU_EV_SWITCH,
						 .to_target = e->chip.usb_to_target });
	}
	out[0] = e->chip.usb_to_target ? OKVM_USB_TO_TARGET : OKVM_USB_TO_HOST;
	*len = 1;
	return OKVM_CH9329_OK;
}

/* Runs one command. @return status; *len/out hold a data reply when status is OK and *len > 0. */
static int
execute(struct emu *e, const struct okvm_ch9329_frame *f, uint8_t out[OKVM_CH9329_MAX_DATA],
	uint8_t *len, uint64_t t)
{
	*len = 0;
	switch (f->cmd) {
	case OKVM_CH9329_CMD_GET_INFO: return cmd_get_info(e, f, out, len);
	case OKVM_CH9329_CMD_SEND_KB_GENERAL:
	case OKVM_CH9329_CMD_SEND_KB_MEDIA:
	case OKVM_CH9329_CMD_SEND_MS_ABS:
	case OKVM_CH9329_CMD_SEND_MS_REL: return cmd_hid(e, f, t);
	case OKVM_CH9329_CMD_SEND_MY_HID: return OKVM_CH9329_OK; /* no custom-HID app on target */
	case OKVM_CH9329_CMD_GET_PARA_CFG:
		if (f->len)
			return OKVM_CH9329_ERR_PARA;
		/* a CH9329F sends 72 or 88 bytes: the block, then bytes nobody documents (zeros) */
		memset(out, 0, e->params_len);
		okvm_ch9329_params_pack(&e->chip.stored, out);
		*len = e->params_len;
		return OKVM_CH9329_OK;
	case OKVM_CH9329_CMD_SET_PARA_CFG: return cmd_set_params(e, f);
	case OKVM_CH9329_CMD_GET_USB_STRING: return cmd_get_string(e, f, out, len);
	case OKVM_CH9329_CMD_SET_USB_STRING: return cmd_set_string(e, f);
	case OKVM_CH9329_CMD_SET_DEFAULT_CFG:
		if (f->len)
			return OKVM_CH9329_ERR_PARA;
		factory_defaults(&e->chip); /* baud applies after RESET, like SET_PARA_CFG */
		return OKVM_CH9329_OK;
	case OKVM_CH9329_CMD_RESET:
		if (f->len)
			return OKVM_CH9329_ERR_PARA;
		e->chip.reset_at = 0; /* set once the reply is queued */
		return OKVM_CH9329_OK;
	case OKVM_CH9329_CMD_USB_SWITCH: return cmd_usb_switch(e, f, out, len);
	default: return OKVM_CH9329_ERR_CMD;
	}
}

static void
handle_frame(struct emu *e, const struct okvm_ch9329_frame *f, uint64_t t)
{
	struct emu_chip *c = &e->chip;
	bool broadcast = f->addr == 0xff;
	if (!broadcast && c->addr != 0x00 && f->addr != c->addr)
		return; /* addressed to another chip on the bus */
	uint8_t out[OKVM_CH9329_MAX_DATA], len;
	int st = execute(e, f, out, &len, t);
	if (st == EMU_SILENT)
		return; /* ch32v208-quiet: GET_INFO is ignored */
	if (!broadcast) {
		if (st == OKVM_CH9329_OK && len)
			reply(e, f->cmd, true, out, len, t);
		else
			reply_status(e, f->cmd, (uint8_t)st, t);
	}
	/* RESET: the reply leaves at the old baud, then the chip restarts. */
	if (c->reset_at == 0)
		c->reset_at = c->tx_wire_end > t ? c->tx_wire_end : t;
}

/* The parser dropped a frame with a bad SUM; it kept all but its first byte. */
static void
handle_bad_sum(struct emu *e, uint64_t t)
{
	struct okvm_ch9329_parser *p = &e->chip.parser;
	/* buf now starts AB ADDR CMD LEN ...: the rest of the bad frame (LEN + 5 bytes). */
	uint8_t addr = p->buf[1], cmd = p->buf[2];
	size_t rest = (size_t)p->buf[3] + OKVM_CH9329_OVERHEAD - 1;
	if (rest > p->n)
		rest = p->n;
	memmove(p->buf, p->buf + rest, p->n - rest);
	p->n -= rest;
	bool ours = e->chip.addr == 0x00 || addr == e->chip.addr;
	if (addr != 0xff && ours)
		reply_status(e, cmd, OKVM_CH9329_ERR_SUM, t);
}

/*
 * --emu-strict-gap: the line was idle for the packet interval after the packet's last byte, so
 * the packet is complete (CH9329-D: a packet ends by 3 ms of idle, not by LEN). Exactly one frame
 * is executed; anything else that starts with a header (a frame with the next one's bytes run
 * into it) fails the chip's checksum over the whole packet: CMD|0xC0 E4, nothing executed.
 */
static void
end_packet(struct emu *e, uint64_t t)
{
	struct emu_chip *c = &e->chip;
	struct okvm_ch9329_parser p;
	struct okvm_ch9329_frame f;
	okvm_ch9329_parser_init(&p);
	p.max_len = OKVM_CH9329_HOST_MAX_DATA;
	okvm_ch9329_parser_push(&p, c->pkt, c->pkt_n);
	int rc = okvm_ch9329_parser_next(&p, &f);
	bool whole = rc == 1 && p.n == 0 && p.garbage_bytes == 0;
	bool header = c->pkt_n >= 5 && c->pkt[0] == OKVM_CH9329_HEAD0 &&
		      c->pkt[1] == OKVM_CH9329_HEAD1;
	uint8_t addr = c->pkt[2], cmd = c->pkt[3];
	c->pkt_n = 0;
	if (whole) {
		handle_frame(e, &f, t);
	} else if (header && addr != 0xff && (c->addr == 0x00 || addr == c->addr)) {
		okvm_log(OKVM_LOG_DEBUG, "emu: strict gap: %s ran into the next frame",
			 okvm_ch9329_cmd_name(cmd));
		reply_status(e, cmd, OKVM_CH9329_ERR_SUM, t);
	}
}

static uint64_t
packet_end(const struct emu_chip *c)
{
	return c->pkt_n ? c->last_rx + c->gap_ns : EMU_NEVER;
}

static void
take_byte(struct emu *e, uint8_t b, uint64_t t)
{
	struct emu_chip *c = &e->chip;
	uint64_t bt = emu_byte_ns(c->baud);
	if (e->strict_gap) {
		if (c->pkt_n && t - bt > c->last_rx + c->gap_ns)
			end_packet(e, c->last_rx + c->gap_ns);
		if (c->pkt_n < EMU_PKT_CAP)
			c->pkt[c->pkt_n++] = b;
		c->last_rx = t;
		return;
	}
	/* Idle line between the previous stop bit and this start bit ends the frame. */
	if (c->parser.n && t - bt > c->last_rx + c->gap_ns)
		okvm_ch9329_parser_reset(&c->parser);
	c->last_rx = t;
	okvm_ch9329_parser_push(&c->parser, &b, 1);
	for (;;) {
		struct okvm_ch9329_frame f;
		int rc = okvm_ch9329_parser_next(&c->parser, &f);
		if (rc == 0)
			break;
		if (rc == 1)
			handle_frame(e, &f, t);
		else if (rc == -EBADMSG)
			handle_bad_sum(e, t);
	}
}

static void
chip_restart(struct emu *e)
{
	apply_stored(&e->chip);
	target_reenumerate(e);
}

uint64_t
chip_next_due(const struct emu *e)
{
	const struct emu_chip *c = &e->chip;
	uint64_t t = c->rx.n ? c->rx.t[c->rx.head] : EMU_NEVER;
	if (c->reset_at < t)
		t = c->reset_at;
	if (c->factory_at < t)
		t = c->factory_at;
	if (packet_end(c) < t)
		t = packet_end(c);
	return t;
}

/* Do whatever is due at time t (the earliest chip_next_due()). */
void
chip_run(struct emu *e, uint64_t t)
{
	struct emu_chip *c = &e->chip;
	if (c->reset_at <= t) {
		chip_restart(e);
	} else if (c->factory_at <= t) {
		c->factory_at = EMU_NEVER;
		okvm_log(OKVM_LOG_INFO, "emu: DEF pin: factory defaults restored");
		factory_defaults(c);
		chip_restart(e);
	} else if (packet_end(c) <= t && !(c->rx.n && c->rx.t[c->rx.head] <= packet_end(c))) {
		end_packet(e, packet_end(c)); /* the next byte, if any, starts after the idle gap */
	} else if (c->rx.n && c->rx.t[c->rx.head] <= t) {
		uint64_t bt = c->rx.t[c->rx.head];
		take_byte(e, fifo_pop(&c->rx), bt);
	}
}

uint64_t
chip_next_tx(const struct emu *e)
{
	const struct emu_chip *c = &e->chip;
	return c->tx.n ? c->tx.t[c->tx.head] : EMU_NEVER;
}

/* Write every reply byte whose stop bit has passed. */
void
chip_flush_tx(struct emu *e, int host_baud, uint64_t now)
{
	struct emu_chip *c = &e->chip;
	uint8_t buf[EMU_FIFO_CAP];
	size_t n = 0;
	bool wrong = host_baud != c->baud;
	while (c->tx.n && c->tx.t[c->tx.head] <= now) {
		uint8_t b = fifo_pop(&c->tx);
		buf[n++] = wrong ? junk(b) : b;
	}
	if (!n)
		return;
	ssize_t w = write(e->master, buf, n);
	(void)w; /* short when the host's input queue is full: the rest is lost, as on a wire */
}

/* A datagram from the host's serial layer: "DTR=1", "RTS=0" ... (contracts section 1). */
void
chip_modem(struct emu *e, const char *msg, uint64_t now)
{
	struct emu_chip *c = &e->chip;
	if (strlen(msg) != 5 || msg[3] != '=' || (msg[4] != '0' && msg[4] != '1')) {
		okvm_log(OKVM_LOG_DEBUG, "emu: ignoring modem message '%s'", msg);
		return;
	}
	bool on = msg[4] == '1';
	if (!strncmp(msg, "DTR", 3)) {
		if (on != c->dtr)
			/* DTR asserted cuts the USB-A port's ground (hardware.md 2.11). */
			emu_emit(e, &(struct emu_event){ .type = EMU_EV_USB_POWER, .on = !on });
		c->dtr = on;
	} else if (!strncmp(msg, "RTS", 3)) {
		if (on && !c->rts)
			c->rts_since = now;
		if (!on && c->rts && now - c->rts_since > EMU_RTS_FACTORY_NS)
			c->factory_at = now + EMU_FACTORY_DELAY_NS;
		c->rts = on;
	}
}
