/*
 * DESIGN: the virtual unit's extension pins (docs/extension-pins.md): a USB-serial adapter on
 * the host-side pins, wired as the docs show to a virtual ATX front-panel header and to the
 * target's serial console, and the target's power state that this wiring reaches.
 *
 * The adapter is a second pseudo-terminal (the tty a host opens: `--link PATH` + ".pins", else the
 * pty slave) with its modem lines on a datagram socket of its own (`PATH.pins.modem`, else
 * "pins.modem" in the unit's private folder), in the protocol of docs/contracts.md section 1:
 * "DTR=0/1" and "RTS=0/1" from the host, "WATCH" asks for the input lines, answered with
 * "DSR=x", "CTS=0" and "DCD=0" at once and "DSR=x" on every change.
 *
 * Wiring (docs/extension-pins.md, "The virtual wiring"): DTR asserted closes the power switch,
 * RTS asserted closes the reset switch, the power LED drives DSR, adapter TX/RX are the target's
 * UART at 115200 8N1. The target behaves as a PC with an ACPI OS:
 *  - off, power switch closed: it powers on at once (boot log, then a login prompt);
 *  - on, power switch closed and opened within 4 s: the OS shuts down (a short log, then off);
 *  - on, power switch held 4 s: off at the 4 s mark (force-off);
 *  - on, reset closed: it restarts at once (boot log again); off: nothing.
 * Off means no HDMI signal, no USB (HID reports are dropped), LED dark and a silent console.
 * Every change is an event: "power" (state + cause), "atx" (a switch closed or opened),
 * "console" (bytes the target printed, dir "out", or received, dir "in").
 *
 * Output leaves at the UART's wire rate (10 bits per byte at 115200); a host that set another
 * speed reads junk, and its bytes are junk to the target. Runs on the emu thread only.
 *
 * The adapter can be unplugged and plugged back (emu_set_pins_plugged; `okvm emulate`'s
 * SIGUSR2): unplugged, its pty closes (the host's fd hangs up: EIO, as a USB-serial chip that
 * went away), the link and the modem socket vanish, and its lines drop with its power: a power
 * or reset switch held through DTR or RTS opens at that moment (an "atx" event, then what the
 * target does with a press that short). The target keeps its power state; what it prints
 * goes nowhere. Plugged, it is a fresh pty at the same link, lines deasserted. "adapter" events.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "emu/emu-internal.h"
#include "lib/xalloc.h"
#include "okvm/log.h"

#define PINS_BAUD 115200
#define PINS_TX_CAP 8192               /* console bytes waiting for the wire */
#define PINS_FORCE_NS 4000000000ull    /* ATX: held 4 s while on = force off */
#define PINS_BOOT_STEP_NS 120000000ull /* between two lines of the boot log */
#define PINS_SHUTDOWN_NS 400000000ull  /* shutdown log -> power off */
#define PINS_MAX_WATCHERS 4
#define PINS_LINE_MAX 64

static const char *const boot_log[] = {
	"\r\nokvm virtual target, BIOS 1.0\r\n",
	"Booting from Hard Disk...\r\n",
	"[    0.000000] Linux version 6.1.0-okvm (virtual target)\r\n",
	"[    0.000000] Command line: console=ttyS0,115200n8\r\n",
	"[    1.204511] systemd[1]: Reached target multi-user.target.\r\n",
	"\r\nDebian GNU/Linux 12 okvm-target ttyS0\r\n\r\n",
	"okvm-target login: ",
};
#define BOOT_STEPS (sizeof(boot_log) / sizeof(boot_log[0]))

enum login_stage { LOGIN_NAME, LOGIN_PASSWORD };

struct emu_pins {
	bool plugged; /* the adapter is on the pins (unplugged: no fds, nothing on the wire) */
	int master, slave_hold, modem;
	char pty_name[64];
	char *link, *modem_path;
	struct sockaddr_un watch[PINS_MAX_WATCHERS];
	socklen_t watch_len[PINS_MAX_WATCHERS];
	bool dtr, rts; /* from the host: asserted */
	bool on;       /* the target's power */
	uint64_t dtr_since;
	uint64_t force_at; /* EMU_NEVER or when a held power switch forces the target off */
	uint64_t boot_at;  /* EMU_NEVER or when the next boot line is printed */
	size_t boot_step;
	uint64_t off_at; /* EMU_NEVER or when the shutdown ends */
	bool booted;
	enum login_stage stage;
	size_t line_n;
	/* console output on the wire */
	uint8_t tx[PINS_TX_CAP];
	size_t tx_head, tx_n;
	uint64_t tx_next; /* when the next byte's stop bit has passed */
};

static uint64_t
byte_ns(void)
{
	return 10ull * 1000000000ull / PINS_BAUD;
}

/* The host's speed is the UART's (the master sees the slave's termios). */
static bool
speed_ok(const struct emu_pins *p)
{
	struct termios t;
	return tcgetattr(p->master, &t) == 0 && cfgetospeed(&t) == B115200;
}

static void
emit_console(struct emu *e, const char *dir, const uint8_t *b, size_t n)
{
	char text[PINS_TX_CAP + 1];
	if (n > PINS_TX_CAP)
		n = PINS_TX_CAP;
	for (size_t i = 0; i < n; i++)
		text[i] = b[i] >= 0x80 || b[i] == 0 ? '?' : (char)b[i]; /* JSON stays valid UTF-8 */
	text[n] = '\0';
	emu_emit(e, &(struct emu_event){ .type = EMU_EV_CONSOLE, .text = text, .report = dir });
}

static void
emit_power(struct emu *e, bool on, const char *cause)
{
	emu_emit(e, &(struct emu_event){ .type = EMU_EV_POWER, .on = on, .text = cause });
}

/* The target prints: queued for the wire behind what is there (the oldest bytes of a full
 * queue give way, as a UART's FIFO overruns). */
static void
console_out(struct emu *e, const char *s, uint64_t now)
{
	struct emu_pins *p = e->pins;
	size_t n = strlen(s);
	if (!p->plugged) { /* the target's UART drives a wire that ends nowhere */
		emit_console(e, "out", (const uint8_t *)s, n);
		return;
	}
	if (!p->tx_n && p->tx_next < now)
		p->tx_next = now;
	for (size_t i = 0; i < n; i++) {
		if (p->tx_n == PINS_TX_CAP) {
			p->tx_head = (p->tx_head + 1) % PINS_TX_CAP;
			p->tx_n--;
		}
		p->tx[(p->tx_head + p->tx_n++) % PINS_TX_CAP] = (uint8_t)s[i];
	}
	emit_console(e, "out", (const uint8_t *)s, n);
}

static void
send_line(struct emu_pins *p, int i, const char *msg)
{
	if (sendto(p->modem, msg, strlen(msg), MSG_DONTWAIT, (struct sockaddr *)&p->watch[i],
		   p->watch_len[i]) < 0 &&
	    errno != EAGAIN)
		p->watch_len[i] = 0; /* the watcher went away */
}

static void
send_led(struct emu_pins *p)
{
	if (!p->plugged)
		return;
	for (int i = 0; i < PINS_MAX_WATCHERS; i++)
		if (p->watch_len[i])
			send_line(p, i, p->on ? "DSR=1" : "DSR=0");
}

static void
power_set(struct emu *e, bool on, const char *cause, uint64_t now)
{
	struct emu_pins *p = e->pins;
	p->on = on;
	p->booted = false;
	p->boot_at = on ? now : EMU_NEVER;
	p->boot_step = 0;
	p->off_at = p->force_at = EMU_NEVER;
	p->line_n = 0;
	p->stage = LOGIN_NAME;
	if (!on)
		p->tx_n = 0; /* the UART loses power: nothing more leaves */
	emit_power(e, on, cause);
	target_set_powered(e, on);
	send_led(p);
}

static void
power_switch(struct emu *e, bool closed, uint64_t now)
{
	struct emu_pins *p = e->pins;
	emu_emit(e, &(struct emu_event){ .type = EMU_EV_ATX, .report = "power", .down = closed });
	if (closed) {
		p->dtr_since = now;
		if (!p->on)
			power_set(e, true, "button", now);
		else
			p->force_at = now + PINS_FORCE_NS;
		return;
	}
	bool was_short = p->force_at != EMU_NEVER; /* released before the 4 s mark */
	p->force_at = EMU_NEVER;
	if (p->on && was_short && p->off_at == EMU_NEVER) {
		/* the ACPI power button: the OS shuts down */
		p->boot_at = EMU_NEVER;
		console_out(
			e, "\r\n[  OK  ] Reached target poweroff.target.\r\nreboot: Power down\r\n",
			now);
		p->off_at = now + PINS_SHUTDOWN_NS;
	}
}

static void
reset_switch(struct emu *e, bool closed, uint64_t now)
{
	struct emu_pins *p = e->pins;
	emu_emit(e, &(struct emu_event){ .type = EMU_EV_ATX, .report = "reset", .down = closed });
	if (!closed || !p->on)
		return;
	p->tx_n = 0;
	power_set(e, true, "reset", now);
	target_reenumerate(e);
}

static void
pins_datagram(struct emu *e, const char *msg, const struct sockaddr_un *from, socklen_t flen,
	      uint64_t now)
{
	struct emu_pins *p = e->pins;
	if (!strcmp(msg, "WATCH")) {
		if (flen <= sizeof(sa_family_t))
			return;
		int slot = 0;
		for (int i = 0; i < PINS_MAX_WATCHERS; i++)
			if (!p->watch_len[i] ||
			    (p->watch_len[i] == flen && !memcmp(&p->watch[i], from, flen)))
				slot = i;
		p->watch[slot] = *from;
		p->watch_len[slot] = flen;
		send_line(p, slot, p->on ? "DSR=1" : "DSR=0");
		send_line(p, slot, "CTS=0");
		send_line(p, slot, "DCD=0");
		return;
	}
	if (strlen(msg) != 5 || msg[3] != '=' || (msg[4] != '0' && msg[4] != '1')) {
		okvm_log(OKVM_LOG_DEBUG, "emu: pins: ignoring modem message '%s'", msg);
		return;
	}
	bool on = msg[4] == '1';
	if (!strncmp(msg, "DTR", 3) && on != p->dtr) {
		p->dtr = on;
		power_switch(e, on, now);
	} else if (!strncmp(msg, "RTS", 3) && on != p->rts) {
		p->rts = on;
		reset_switch(e, on, now);
	}
}

/* What the target's getty does with a typed byte: echo at the name, not at the password. */
static void
getty_byte(struct emu *e, uint8_t c, uint64_t now)
{
	struct emu_pins *p = e->pins;
	char echo[2] = { (char)c, 0 };
	if (c == '\r' || c == '\n') {
		if (p->stage == LOGIN_NAME && p->line_n) {
			console_out(e, "\r\nPassword: ", now);
			p->stage = LOGIN_PASSWORD;
		} else if (p->stage == LOGIN_PASSWORD) {
			console_out(e, "\r\n\r\nLogin incorrect\r\nokvm-target login: ", now);
			p->stage = LOGIN_NAME;
		} else {
			console_out(e, "\r\nokvm-target login: ", now);
		}
		p->line_n = 0;
	} else if (c == 0x7f || c == 0x08) {
		if (p->line_n) {
			p->line_n--;
			if (p->stage == LOGIN_NAME)
				console_out(e, "\b \b", now);
		}
	} else if (c >= 0x20 && c < 0x7f && p->line_n < PINS_LINE_MAX) {
		p->line_n++;
		if (p->stage == LOGIN_NAME)
			console_out(e, echo, now);
	}
}

static void
read_console(struct emu *e, uint64_t now)
{
	struct emu_pins *p = e->pins;
	uint8_t buf[64]; /* at most ~40 bytes of output each: the queue's other half holds them */
	ssize_t n = read(p->master, buf, sizeof(buf));
	if (n <= 0)
		return;
	if (!p->on)
		return; /* nobody listens on a target that is off */
	bool ok = speed_ok(p);
	if (!ok)
		memset(buf, '?', (size_t)n); /* a UART at the wrong speed reads junk */
	emit_console(e, "in", buf, (size_t)n);
	if (!ok || !p->booted)
		return;
	for (ssize_t i = 0; i < n; i++)
		getty_byte(e, buf[i], now);
}

int
pins_pollfds(struct emu *e, struct pollfd *pfd)
{
	if (!e->pins)
		return 0;
	/* A target whose UART cannot keep up stops taking input (its tty blocks the writer), so
	 * nothing it prints is lost: no reading while the output queue is half full. */
	bool room = e->pins->tx_n < PINS_TX_CAP / 2;
	pfd[0] = (struct pollfd){ .fd = e->pins->master, .events = room ? POLLIN : 0 };
	pfd[1] = (struct pollfd){ .fd = e->pins->modem, .events = POLLIN };
	return 2;
}

void
pins_ready(struct emu *e, const struct pollfd *pfd, uint64_t now)
{
	if (!e->pins)
		return;
	if (pfd[0].revents & POLLIN)
		read_console(e, now);
	if (pfd[1].revents & POLLIN)
		emu_modem_each(e, e->pins->modem, pins_datagram, now);
}

uint64_t
pins_next_due(const struct emu *e)
{
	const struct emu_pins *p = e->pins;
	if (!p)
		return EMU_NEVER;
	uint64_t t = p->tx_n ? p->tx_next : EMU_NEVER;
	if (p->force_at < t)
		t = p->force_at;
	if (p->boot_at < t)
		t = p->boot_at;
	return p->off_at < t ? p->off_at : t;
}

static void
flush_tx(struct emu_pins *p, uint64_t now)
{
	if (!p->tx_n || p->tx_next > now || !p->plugged)
		return;
	size_t due = (size_t)((now - p->tx_next) / byte_ns()) + 1;
	if (due > p->tx_n)
		due = p->tx_n;
	bool ok = speed_ok(p);
	uint8_t buf[PINS_TX_CAP];
	for (size_t i = 0; i < due; i++)
		buf[i] = ok ? p->tx[(p->tx_head + i) % PINS_TX_CAP] : 0xf0;
	ssize_t w = write(p->master, buf, due);
	if (w <= 0) {
		p->tx_next = now + byte_ns(); /* the host is not reading: the wire waits */
		return;
	}
	p->tx_head = (p->tx_head + (size_t)w) % PINS_TX_CAP;
	p->tx_n -= (size_t)w;
	p->tx_next += (uint64_t)w * byte_ns();
}

void
pins_run(struct emu *e, uint64_t now)
{
	struct emu_pins *p = e->pins;
	if (!p)
		return;
	if (p->force_at <= now) {
		p->force_at = EMU_NEVER;
		power_set(e, false, "force-off", now);
	}
	if (p->off_at <= now)
		power_set(e, false, "shutdown", now);
	while (p->boot_at <= now) {
		console_out(e, boot_log[p->boot_step++], now);
		if (p->boot_step == BOOT_STEPS) {
			p->boot_at = EMU_NEVER;
			p->booted = true;
		} else {
			p->boot_at += PINS_BOOT_STEP_NS;
		}
	}
	flush_tx(p, now);
}

void
pins_start(struct emu *e)
{
	struct emu_pins *p = e->pins;
	if (!p)
		return;
	/* A target that is on when the unit starts has booted long ago: it sits at its prompt. */
	p->booted = p->on;
	emit_power(e, p->on, "start");
	e->target.off = !p->on;
}

/* The adapter's pty (its link) and modem socket. */
static int
plug(struct emu_pins *p)
{
	int rc = emu_open_pty(PINS_BAUD, &p->master, &p->slave_hold, p->pty_name,
			      sizeof(p->pty_name));
	if (!rc && p->link)
		rc = emu_make_link(p->link, p->pty_name);
	if (!rc)
		rc = emu_bind_modem(p->modem_path, &p->modem);
	p->plugged = true; /* unplug() takes back what was made, also after a failure */
	return rc;
}

static void
unplug(struct emu_pins *p)
{
	if (p->master >= 0)
		close(p->master);
	if (p->slave_hold >= 0)
		close(p->slave_hold);
	if (p->modem >= 0) {
		close(p->modem);
		unlink(p->modem_path);
	}
	struct stat st;
	if (p->link && lstat(p->link, &st) == 0 && S_ISLNK(st.st_mode))
		unlink(p->link);
	p->master = p->slave_hold = p->modem = -1;
	memset(p->watch_len, 0, sizeof(p->watch_len));
	p->tx_n = 0;
	p->plugged = false;
}

void
pins_set_plugged(struct emu *e, bool plugged, uint64_t now)
{
	struct emu_pins *p = e->pins;
	if (!p || p->plugged == plugged)
		return;
	if (!plugged) {
		unplug(p);
		emu_emit(e, &(struct emu_event){ .type = EMU_EV_ADAPTER, .on = false });
		/* no power, no lines: what DTR or RTS held closed opens now */
		if (p->dtr) {
			p->dtr = false;
			power_switch(e, false, now);
		}
		if (p->rts) {
			p->rts = false;
			reset_switch(e, false, now);
		}
	} else {
		int rc = plug(p);
		if (rc) {
			okvm_log(OKVM_LOG_ERROR, "emu: pins: cannot plug the adapter back: %s",
				 strerror(-rc));
			unplug(p);
			return;
		}
		p->tx_next = now;
		emu_emit(e, &(struct emu_event){ .type = EMU_EV_ADAPTER, .on = true });
	}
}

int
pins_open(struct emu *e)
{
	if (!e->cfg_pins)
		return 0;
	struct emu_pins *p = xcalloc(1, sizeof(*p));
	e->pins = p;
	p->master = p->slave_hold = p->modem = -1;
	p->on = e->cfg_power_on;
	p->force_at = p->boot_at = p->off_at = EMU_NEVER;
	if (e->link_path) {
		p->link = xasprintf("%s.pins", e->link_path);
		p->modem_path = xasprintf("%s.pins.modem", e->link_path);
	} else {
		p->modem_path = xasprintf("%s/pins.modem", e->tmpdir);
	}
	return plug(p);
}

void
pins_close(struct emu *e)
{
	struct emu_pins *p = e->pins;
	if (!p)
		return;
	unplug(p);
	free(p->link);
	free(p->modem_path);
	free(p);
	e->pins = NULL;
}

const char *
emu_pins_tty(struct emu *e)
{
	if (!e->running || !e->pins)
		return NULL;
	return e->pins->link ? e->pins->link : e->pins->pty_name; /* the link stays the name */
}

const char *
emu_pins_modem_socket(struct emu *e)
{
	return e->running && e->pins ? e->pins->modem_path : NULL;
}
