/*
 * DESIGN: the link's maintenance commands: open with baud detection, baud change, reset,
 * factory reset, CH32V208 USB switch, DTR pulse. Sequences and timings from hardware.md 2.10/2.11
 * (the official app's SerialPortManager and FactoryResetManager, the CH9329 datasheet).
 *
 * They run on the dispatch thread and block (the CLI calls them; the server runs them on its
 * link thread). While one runs, `suspended` keeps HID reports and GET_INFO polls off the wire,
 * so the chip sees only the sequence; queued reports go out afterwards.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hid/link-private.h"
#include "okvm/log.h"
#include "lib/xalloc.h"

#define PROBE_MS 150

static int
probe_within(struct okvm_link *l, int timeout_ms)
{
	struct okvm_ch9329_info info;
	int rc = okvm_link_get_info(l, &info, timeout_ms);
	if (rc == 0) {
		struct okvm_link_state st = l->state;
		st.baud = okvm_serial_baud(l->ser);
		st.chip_ok = true;
		link_update_state(l, &st);
	}
	return rc;
}

static int
probe(struct okvm_link *l)
{
	return probe_within(l, l->ack_timeout_ms);
}

static int
switch_baud(struct okvm_link *l, int baud)
{
	okvm_ch9329_parser_reset(&l->parser);
	if (okvm_serial_baud(l->ser) == baud)
		return 0;
	return okvm_serial_set_baud(l->ser, baud);
}

/* GET_INFO unanswered: does the chip acknowledge a keyboard all-up report (presses nothing)?
 * Some CH32V208 firmware ignores GET_INFO (openterface-rs); the official app only warns. */
static int
hid_probe_within(struct okvm_link *l, int timeout_ms)
{
	struct okvm_ch9329_frame f, rep;
	okvm_ch9329_build_kbd(&f, &(struct okvm_kbd_report){ 0 });
	int rc = okvm_link_command(l, &f, &rep, timeout_ms);
	return rc == -EPROTO ? 0 : rc; /* an error status is an answer too */
}

/* Opened without GET_INFO: the state says "unknown", not "disconnected". */
static void
open_unknown(struct okvm_link *l, bool acks)
{
	struct okvm_link_state st = l->state;
	st.baud = okvm_serial_baud(l->ser);
	st.chip_ok = acks;
	st.info_unknown = true;
	st.target_connected = false;
	st.leds = 0;
	st.version = 0;
	link_update_state(l, &st);
	l->no_ack = !acks;
	okvm_log(OKVM_LOG_WARN,
		 "%s: the chip does not answer GET_INFO at %d baud; going on without it (target "
		 "and LEDs unknown)%s",
		 l->path, st.baud,
		 acks ? "" : "; it does not acknowledge HID reports either: sending unpaced");
}

/* The given baud only; otherwise 115200 then 9600, GET_INFO as probe (the official app starts
 * at its stored baud or 9600: hardware.md 2.10), first with PROBE_MS each (a wrong guess costs
 * little), then with the full ACK timeout. Between the two rounds, if GET_INFO got no answer, a
 * keyboard all-up report is tried at each baud; on a CDC-ACM port (a CH32V208, fixed 115200)
 * the link opens at 115200 even if nothing answers (what it answers is not confirmed). */
static int
detect(struct okvm_link *l)
{
	bool acm = serial_is_cdc_acm(l->ser);
	int bauds[2] = { 115200, 9600 }, nb = 2;
	if (l->cfg_baud || acm) {
		bauds[0] = l->cfg_baud ? l->cfg_baud : 115200;
		nb = 1;
	}
	int quick = PROBE_MS < l->ack_timeout_ms ? PROBE_MS : l->ack_timeout_ms;
	/* round 0: GET_INFO, quick; 1: keyboard all-up, quick; 2: GET_INFO, full timeout */
	for (int round = 0; round < (nb == 1 ? 2 : 3); round++) {
		for (int i = 0; i < nb; i++) {
			int rc = switch_baud(l, bauds[i]);
			if (rc < 0)
				return rc;
			okvm_log(OKVM_LOG_DEBUG, "%s: probing the CH9329 at %d baud (%s)", l->path,
				 bauds[i], round == 1 ? "keyboard all-up" : "GET_INFO");
			if (round == 1) {
				rc = hid_probe_within(l, quick);
				if (rc == 0)
					open_unknown(l, true);
			} else {
				rc = probe_within(l, round ? l->ack_timeout_ms : quick);
			}
			if (rc != -ETIMEDOUT)
				return rc;
		}
	}
	if (!acm)
		return -ETIMEDOUT;
	open_unknown(l, false);
	return 0;
}

static int
open_held(struct okvm_link *l)
{
	if (l->ser)
		return -EALREADY;
	struct okvm_serial *s;
	int rc = okvm_serial_open(l->path, l->cfg_baud ? l->cfg_baud : 115200, &s);
	if (rc < 0)
		return rc;
	if (l->modem_socket)
		okvm_serial_set_modem_socket(s, l->modem_socket);
	rc = link_attach(l, s);
	if (rc < 0) {
		okvm_serial_close(s);
		return rc;
	}
	if (l->lines_only) {
		l->suspended = true; /* no report, no poll: only the lines (okvm_link_dtr_pulse) */
		return 0;
	}
	l->suspended = true;
	rc = detect(l);
	l->suspended = false;
	if (rc == -ETIMEDOUT) {
		if (l->cfg_baud)
			okvm_log(OKVM_LOG_ERROR,
				 "%s: the CH9329 does not answer at %d baud; try "
				 "without --baud to detect it",
				 l->path, l->cfg_baud);
		else
			okvm_log(OKVM_LOG_ERROR,
				 "%s: the CH9329 does not answer at 115200 or 9600 "
				 "baud; is this the unit's serial port?",
				 l->path);
	}
	if (rc < 0) {
		link_detach(l);
		return rc;
	}
	uint64_t now = link_now(l);
	l->next_poll_ns = now + (uint64_t)l->poll_ms * 1000000ull;
	link_arm_timer(l, now); /* the first poll is due with nothing sent: the fd must say so */
	return 0;
}

int
okvm_link_open(struct okvm_link *l)
{
	link_hold(l); /* a blocking helper: no direct write meanwhile (link-private.h) */
	int rc = open_held(l);
	link_unhold(l);
	return rc;
}

const char *
okvm_link_path(const struct okvm_link *l)
{
	return l->path;
}

static int
reopen_held(struct okvm_link *l, const char *path)
{
	if (l->ser && !atomic_load(&l->dead))
		return -EALREADY;
	link_detach(l);
	/* A replugged unit is a new USB device on the target too: nothing is pressed there, and
	 * input queued for the old port is stale. */
	queue_clear(&l->q);
	for (size_t i = 0; i < l->nfl; i++)
		if (l->fl[i].kind == FL_HID)
			queue_hid_done(&l->q); /* lost with the port: not pending any more */
	l->nfl = 0;
	if (l->cmd.phase == CMD_SENT)
		l->cmd.phase = CMD_IDLE;
	l->any_report = l->gap_started = false;
	l->no_ack = l->hid_acked = false;
	l->noack_run = 0;
	l->state.info_unknown = false;
	okvm_ch9329_parser_reset(&l->parser);
	if (path && strcmp(path, l->path)) {
		char *p = xstrdup(path);
		free(l->path);
		l->path = p;
	}
	return okvm_link_open(l);
}

int
okvm_link_reopen(struct okvm_link *l, const char *path)
{
	link_hold(l); /* a blocking helper: no direct write meanwhile (link-private.h) */
	int rc = reopen_held(l, path);
	link_unhold(l);
	return rc;
}

static int
simple(struct okvm_link *l, uint8_t cmd, int timeout_ms)
{
	struct okvm_ch9329_frame f;
	okvm_ch9329_build_simple(&f, cmd);
	return okvm_link_command(l, &f, NULL, timeout_ms);
}

/* After the chip restarted: GET_INFO until it answers (it needs a moment to boot). */
static int
verify(struct okvm_link *l)
{
	int rc = -ETIMEDOUT;
	for (int i = 0; i < l->timing.verify_attempts && rc == -ETIMEDOUT; i++)
		rc = probe(l);
	return rc;
}

static int
write_baud(struct okvm_link *l, int baud)
{
	struct okvm_ch9329_params p;
	int rc = okvm_link_get_params(l, &p, l->ack_timeout_ms);
	if (rc < 0)
		return rc;
	p.baud = (uint32_t)baud; /* everything else exactly as the chip has it */
	struct okvm_ch9329_frame f;
	okvm_ch9329_build_set_params(&f, &p);
	rc = okvm_link_command(l, &f, NULL, l->ack_timeout_ms);
	if (rc < 0)
		return rc;
	/* RESET at the old baud: the new parameters apply after it (CH9329-P 2.2.9) */
	return simple(l, OKVM_CH9329_CMD_RESET, l->ack_timeout_ms);
}

static int
set_baud_held(struct okvm_link *l, int baud)
{
	if (!okvm_serial_baud_valid(baud))
		return -EINVAL;
	if (!l->ser)
		return -ENOTCONN;
	int old = okvm_serial_baud(l->ser);
	okvm_link_flush(l, 2000);
	l->suspended = true;
	int rc = write_baud(l, baud);
	if (rc == 0)
		rc = switch_baud(l, baud);
	if (rc == 0) {
		rc = verify(l);
		if (rc == -ETIMEDOUT)
			okvm_log(OKVM_LOG_ERROR,
				 "%s: the CH9329 does not answer at %d baud after "
				 "the change (it did at %d); try `okvm factory-reset`",
				 l->path, baud, old);
	}
	l->suspended = false;
	return rc;
}

int
okvm_link_set_baud(struct okvm_link *l, int baud)
{
	link_hold(l); /* a blocking helper: no direct write meanwhile (link-private.h) */
	int rc = set_baud_held(l, baud);
	link_unhold(l);
	return rc;
}

static int
reset_held(struct okvm_link *l)
{
	if (!l->ser)
		return -ENOTCONN;
	okvm_link_flush(l, 2000);
	l->suspended = true;
	int rc = simple(l, OKVM_CH9329_CMD_RESET, l->ack_timeout_ms);
	if (rc == 0)
		rc = verify(l);
	l->suspended = false;
	return rc;
}

int
okvm_link_reset(struct okvm_link *l)
{
	link_hold(l); /* a blocking helper: no direct write meanwhile (link-private.h) */
	int rc = reset_held(l);
	link_unhold(l);
	return rc;
}

static bool
is_ch32v208(const struct okvm_link *l)
{
	/* MAC SerialResponseHandler: versions 0x82..0x84 mean a CH32V208 (hardware.md 2.4); a
	   CDC-ACM port is one too (QT decides by 1A86:FE0C, the cdc_acm device) */
	return (l->state.version >= 0x82 && l->state.version <= 0x84) ||
	       (l->ser && serial_is_cdc_acm(l->ser));
}

/* Hardware method (boards >= v1.9): RTS drives the CH9329's DEF pin (hardware.md 2.10/2.11). */
static int
rts_method(struct okvm_link *l)
{
	int rc = okvm_serial_set_rts(l->ser, true);
	if (rc < 0) {
		okvm_log(OKVM_LOG_INFO, "%s: cannot drive RTS (%s); using SET_DEFAULT_CFG", l->path,
			 strerror(-rc));
		return rc;
	}
	okvm_log(OKVM_LOG_INFO, "%s: holding RTS for %d ms (CH9329 DEF pin)", l->path,
		 l->timing.rts_hold_ms);
	link_sleep_ms(l->timing.rts_hold_ms);
	rc = okvm_serial_set_rts(l->ser, false);
	link_sleep_ms(l->timing.rts_settle_ms);
	if (rc < 0)
		return rc;
	rc = switch_baud(l, 9600);
	okvm_serial_flush(l->ser);
	return rc < 0 ? rc : verify(l);
}

/* Command method ("V1.9.1"): SET_DEFAULT_CFG at 9600, else at 115200; RESET applies it. */
static int
command_method(struct okvm_link *l)
{
	static const int bauds[] = { 9600, 115200 };
	for (int i = 0; i < 2; i++) {
		int rc = switch_baud(l, bauds[i]);
		if (rc < 0)
			return rc;
		rc = simple(l, OKVM_CH9329_CMD_SET_DEFAULT_CFG, l->ack_timeout_ms);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc < 0)
			return rc;
		rc = simple(l, OKVM_CH9329_CMD_RESET, l->ack_timeout_ms);
		if (rc < 0 && rc != -ETIMEDOUT)
			return rc;
		rc = switch_baud(l, 9600);
		return rc < 0 ? rc : verify(l);
	}
	return -ETIMEDOUT;
}

static int
factory_reset_held(struct okvm_link *l)
{
	if (!l->ser)
		return -ENOTCONN;
	if (is_ch32v208(l)) {
		okvm_log(OKVM_LOG_ERROR, "%s: a CH32V208 has no factory reset (fixed 115200 baud)",
			 l->path);
		return -ENOTSUP;
	}
	okvm_link_flush(l, 2000);
	l->suspended = true;
	int rc = rts_method(l);
	if (rc < 0 && rc != -ENODEV)
		rc = command_method(l);
	l->suspended = false;
	if (rc == -ETIMEDOUT)
		okvm_log(OKVM_LOG_ERROR,
			 "%s: the CH9329 does not answer after the factory reset; "
			 "unplug the unit and plug it in again",
			 l->path);
	return rc;
}

int
okvm_link_factory_reset(struct okvm_link *l)
{
	link_hold(l); /* a blocking helper: no direct write meanwhile (link-private.h) */
	int rc = factory_reset_held(l);
	link_unhold(l);
	return rc;
}

int
okvm_link_usb_switch(struct okvm_link *l, enum okvm_usb_dir dir, enum okvm_usb_dir *now)
{
	if (dir != OKVM_USB_TO_HOST && dir != OKVM_USB_TO_TARGET && dir != OKVM_USB_QUERY)
		return -EINVAL;
	struct okvm_ch9329_frame f, rep;
	okvm_ch9329_build_usb_switch(&f, dir);
	int rc = okvm_link_command(l, &f, &rep, l->ack_timeout_ms);
	if (rc < 0)
		return rc;
	if (rep.len < 1)
		return -EBADMSG;
	if (now)
		*now = rep.data[0] ? OKVM_USB_TO_TARGET : OKVM_USB_TO_HOST;
	return 0;
}

static int
dtr_pulse_held(struct okvm_link *l, int ms)
{
	if (!l->ser)
		return -ENOTCONN;
	if (ms <= 0)
		return -EINVAL;
	int rc = okvm_serial_set_dtr(l->ser, true);
	if (rc < 0)
		return rc;
	link_sleep_ms(ms);
	return okvm_serial_set_dtr(l->ser, false);
}

int
okvm_link_set_dtr(struct okvm_link *l, bool asserted)
{
	link_hold(l);
	int rc = l->ser ? okvm_serial_set_dtr(l->ser, asserted) : -ENOTCONN;
	link_unhold(l);
	return rc;
}

int
okvm_link_dtr_pulse(struct okvm_link *l, int ms)
{
	link_hold(l); /* a blocking helper: no direct write meanwhile (link-private.h) */
	int rc = dtr_pulse_held(l, ms);
	link_unhold(l);
	return rc;
}
