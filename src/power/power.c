/*
 * DESIGN: presses on the target's ATX header through the modem lines of a USB-serial adapter
 * (docs/power.md, docs/extension-pins.md): DTR and RTS drive optocouplers across the power and
 * reset switch pins, DSR (or CTS, DCD) reads the power LED. A press opens the adapter (exclusive:
 * a second press, or a console holding it, gets -EBUSY), reads the LED, asserts the line for the
 * press time, releases it and closes the adapter. Whatever ends the press (its time, a cancel,
 * an error) the line is released; an adapter unplugged mid-press took its lines with it (a
 * USB-serial chip without power drives nothing: the optocoupler opens the switch), which the
 * next line access shows as -ENODEV.
 *
 * On a real tty the lines are TIOCMBIS/TIOCMBIC/TIOCMGET; on the virtual unit's pty they go over
 * its modem socket (docs/contracts.md section 1): serial.c sends DTR/RTS, and this file asks for
 * the input lines with "WATCH" from a socket of its own and takes the "DSR=x" (CTS, DCD) answer.
 *
 * The HID relay backend (the 16c0:05df boards PiKVM's hidrelay drives) closes a relay across the
 * switch pins: on its hidraw node, SET_FEATURE of report 0 with 8 bytes { 0xFF (on) or 0xFD
 * (off), channel 1..8, 0 ... } and GET_FEATURE of report 0 reads { serial[5], 0, 0, state }, bit
 * n-1 of state = channel n closed. A press reads the state first (the node answers as a relay
 * board), closes the channel, opens it after the press time on every exit path, and reads the
 * state again to see it open. Such a board has no LED input: the state is unknown and every press
 * is allowed.
 *
 * The switchable port's VBUS backend cuts the target's USB power through a callback of the owner
 * (the unit's link: DTR asserted = port unpowered, hardware.md 2.11).
 *
 * Wake-on-LAN sends the magic packet (6 bytes 0xFF, then the target's MAC 16 times: 102 bytes)
 * in one UDP datagram to a broadcast address (SO_BROADCAST) or a host, by default
 * 255.255.255.255:9, optionally out of one interface (SO_BINDTODEVICE). It can only wake: with
 * backend wol every other action is refused before anything is sent. Next to a serial or relay
 * backend whose power line is none it is how `on` wakes the target (the LED, if there is one,
 * is read before and watched after, as for a press); a backend with a power line presses it
 * and sends no packet, unless asked to (wol_first), since a packet and a press at once could
 * reach a PC that has just woken as an ACPI power-button event.
 * Blocking; any thread; one press at a time per process (a mutex, tried, never waited on).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h> /* the TIOCM_* bits */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/sys/hidraw.h"
#include "lib/thread.h"
#include "lib/xalloc.h"
#include "okvm/error.h"
#include "okvm/serial.h"
#include "power/power.h"

#define SLICE_MS 20
#define LED_WAIT_MS 500    /* the virtual adapter answers WATCH at once */
#define LED_SETTLE_MS 3000 /* after `on`: how long to watch the LED light */

/* ---- Wake-on-LAN ---- */

int
power_parse_mac(const char *s, uint8_t mac[6])
{
	/* six pairs of hex digits, each pair but the last followed by ':' or '-' (one kind) */
	if (strlen(s) != 17)
		return -EINVAL;
	char sep = s[2];
	if (sep != ':' && sep != '-')
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = s + i * 3;
		char hex[3] = { p[0], p[1], 0 };
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < 5 && p[2] != sep))
			return -EINVAL;
		mac[i] = (uint8_t)strtoul(hex, NULL, 16);
	}
	if (mac[0] & 1) /* a group address: no NIC has it */
		return -EINVAL;
	static const uint8_t zero[6];
	return memcmp(mac, zero, 6) ? 0 : -EINVAL;
}

void
power_wol_packet(const uint8_t mac[6], uint8_t out[POWER_WOL_PACKET])
{
	memset(out, 0xFF, 6);
	for (int i = 0; i < 16; i++)
		memcpy(out + 6 + i * 6, mac, 6);
}

int
power_wol_address(const char *s, struct sockaddr_storage *out, unsigned *len)
{
	char host[64];
	const char *port = NULL;
	size_t n;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -EINVAL;
		n = (size_t)(end - s - 1);
		port = end[1] ? end + 2 : NULL;
		s++;
	} else {
		const char *colon = strchr(s, ':');
		n = colon ? (size_t)(colon - s) : strlen(s);
		port = colon ? colon + 1 : NULL;
	}
	if (!n || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = 0;
	unsigned long p = 9;
	if (port) {
		char *e;
		if (!*port || !isdigit((unsigned char)*port))
			return -EINVAL;
		p = strtoul(port, &e, 10);
		if (*e || p < 1 || p > 65535)
			return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *v4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		*len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*v6);
	} else {
		return -EINVAL;
	}
	return 0;
}

bool
power_wakes_by_wol(const struct power_config *c)
{
	if (c->backend == POWER_BACKEND_WOL)
		return true;
	if (!c->wol || c->backend == POWER_BACKEND_VBUS)
		return false;
	if (c->wol_first)
		return true;
	return c->backend == POWER_BACKEND_HIDRELAY ? c->power_channel == 0
						    : c->power.line == POWER_LINE_NONE;
}

int
power_wol_send(const struct power_config *c, char *msg, size_t msgsz)
{
	const char *to = c->wol_address ? c->wol_address : POWER_WOL_DEFAULT_ADDRESS;
	if (!c->wol) {
		snprintf(msg, msgsz, "Wake-on-LAN needs the target's MAC: set wol_mac in [power]");
		return -EINVAL;
	}
	struct sockaddr_storage sa;
	unsigned salen;
	if (power_wol_address(to, &sa, &salen) < 0) {
		snprintf(msg, msgsz,
			 "wol_address '%s' is not A.B.C.D[:PORT] or [V6][:PORT] (numbers only)",
			 to);
		return -EINVAL;
	}
	int fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int rc = -errno;
		snprintf(msg, msgsz, "Wake-on-LAN: socket: %s", strerror(-rc));
		return rc;
	}
	int one = 1, rc = 0;
	if (sa.ss_family == AF_INET &&
	    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0) {
		rc = -errno;
		snprintf(msg, msgsz, "Wake-on-LAN: SO_BROADCAST: %s", strerror(-rc));
	}
	if (!rc && c->wol_interface &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, c->wol_interface,
		       (socklen_t)strlen(c->wol_interface)) < 0) {
		rc = -errno;
		snprintf(msg, msgsz, "Wake-on-LAN: wol_interface %s: %s%s", c->wol_interface,
			 strerror(-rc),
			 rc == -EPERM ? " (binding to an interface needs CAP_NET_RAW here; give "
					"the LAN's broadcast address as wol_address instead)"
				      : "");
	}
	uint8_t pkt[POWER_WOL_PACKET];
	power_wol_packet(c->wol_mac, pkt);
	if (!rc && sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&sa, salen) !=
			   (ssize_t)sizeof(pkt)) {
		rc = -errno;
		snprintf(msg, msgsz, "Wake-on-LAN to %s: %s", to, strerror(-rc));
	}
	close(fd);
	if (!rc)
		snprintf(msg, msgsz,
			 "Wake-on-LAN: magic packet for %02x:%02x:%02x:%02x:%02x:%02x sent to %s",
			 c->wol_mac[0], c->wol_mac[1], c->wol_mac[2], c->wol_mac[3], c->wol_mac[4],
			 c->wol_mac[5], to);
	return rc;
}

static pthread_mutex_t press_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const state_names[] = { "unknown", "off", "on" };
static const char *const action_names[] = { "on", "off", "force-off", "reset", "cycle" };

const char *
power_state_name(enum power_state s)
{
	return state_names[s];
}

const char *
power_action_name(enum power_action a)
{
	return action_names[a];
}

int
power_action_parse(const char *s, enum power_action *out)
{
	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++) {
		if (!strcmp(s, action_names[i])) {
			*out = (enum power_action)i;
			return 0;
		}
	}
	return -EINVAL;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The adapter with its lines. */
struct adapter {
	struct okvm_serial *port;
	bool borrowed;        /* the caller's open port (okvm serve's console): not closed here */
	char *modem;          /* the virtual adapter's modem socket, or NULL */
	int watch;            /* our socket to it, or -1 */
	const char *path;     /* for messages */
	int held_ms, want_ms; /* the last press: how long it held, of how long */
};

static void
adapter_close(struct adapter *a)
{
	if (!a->borrowed)
		okvm_serial_close(a->port); /* lines left deasserted */
	if (a->watch >= 0)
		close(a->watch);
	free(a->modem);
	memset(a, 0, sizeof(*a));
	a->watch = -1;
}

static void
adapter_modem(const struct power_config *c, struct adapter *a)
{
	if (c->modem_socket) {
		a->modem = xstrdup(c->modem_socket);
		if (!a->borrowed)
			okvm_serial_set_modem_socket(a->port, c->modem_socket);
		return;
	}
	char *p = xasprintf("%s.modem", c->device);
	struct stat st;
	if (stat(p, &st) == 0 && S_ISSOCK(st.st_mode))
		a->modem = p;
	else
		free(p);
}

static int
adapter_open(const struct power_config *c, struct okvm_serial *port, struct adapter *a, char *msg,
	     size_t msgsz)
{
	memset(a, 0, sizeof(*a));
	a->watch = -1;
	a->path = c->device ? c->device : "the adapter";
	if (port) {
		a->port = port;
		a->borrowed = true;
		adapter_modem(c, a);
		return 0;
	}
	if (!c->device) {
		snprintf(msg, msgsz,
			 "no adapter for the power lines: set device in [power], "
			 "or wire one to the unit's extension pins (docs/power.md)");
		return -ENOENT;
	}
	int rc = okvm_serial_open(c->device, c->baud, &a->port);
	if (rc == -EBUSY) {
		snprintf(msg, msgsz, "%s is busy: another press runs, or a console holds it",
			 c->device);
		return rc;
	}
	if (rc < 0) {
		snprintf(msg, msgsz, "cannot open the power adapter %s: %s", c->device,
			 okvm_strerror(rc));
		return rc;
	}
	adapter_modem(c, a);
	return 0;
}

static int
line_bit(enum power_line l)
{
	switch (l) {
	case POWER_LINE_DTR: return TIOCM_DTR;
	case POWER_LINE_RTS: return TIOCM_RTS;
	case POWER_LINE_DSR: return TIOCM_DSR;
	case POWER_LINE_CTS: return TIOCM_CTS;
	case POWER_LINE_DCD: return TIOCM_CAR;
	case POWER_LINE_NONE: break;
	}
	return 0;
}

static const char *
line_name(enum power_line l)
{
	static const char *const names[] = { "none", "DTR", "RTS", "DSR", "CTS", "DCD" };
	return names[l];
}

/* The virtual adapter's input lines: "WATCH", then its answer for this line. */
static int
watch_line(struct adapter *a, enum power_line l, bool *level)
{
	if (!a->modem)
		return -ENOTSUP;
	if (a->watch < 0) {
		a->watch = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		struct sockaddr_un me = { .sun_family = AF_UNIX };
		if (a->watch < 0 || bind(a->watch, (struct sockaddr *)&me, sizeof(sa_family_t)) < 0)
			return -errno;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(a->modem) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, a->modem, strlen(a->modem) + 1);
	if (sendto(a->watch, "WATCH", 5, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	char want[8];
	snprintf(want, sizeof(want), "%s=", line_name(l));
	uint64_t end = now_ms() + LED_WAIT_MS;
	for (uint64_t t = now_ms(); t < end; t = now_ms()) {
		struct pollfd p = { .fd = a->watch, .events = POLLIN };
		if (poll(&p, 1, (int)(end - t)) <= 0)
			break;
		char m[16];
		ssize_t n;
		while ((n = recv(a->watch, m, sizeof(m) - 1, 0)) > 0) {
			m[n] = 0;
			if (!strncmp(m, want, 4) && n == 5) {
				*level = m[4] == '1';
				return 0;
			}
		}
	}
	return -ETIMEDOUT;
}

static int
read_led(const struct power_config *c, struct adapter *a, enum power_state *out)
{
	*out = POWER_UNKNOWN;
	if (c->led.line == POWER_LINE_NONE)
		return 0;
	int bits = 0;
	bool level;
	int rc = okvm_serial_get_lines(a->port, &bits);
	if (rc == 0) {
		level = bits & line_bit(c->led.line);
	} else if (rc == -ENOTTY) {
		if (watch_line(a, c->led.line, &level) < 0)
			return 0; /* a pty without the virtual adapter: no LED to read */
	} else {
		return rc;
	}
	*out = level != c->led.active_low ? POWER_ON : POWER_OFF;
	return 0;
}

static int
set_wire(struct adapter *a, const struct power_wire *w, bool pressed)
{
	bool asserted = pressed != w->active_low;
	if (w->line == POWER_LINE_DTR)
		return okvm_serial_set_dtr(a->port, asserted);
	if (w->line == POWER_LINE_RTS)
		return okvm_serial_set_rts(a->port, asserted);
	return -EINVAL;
}

static bool
cancelled(const volatile int *cancel)
{
	return flag_get(cancel);
}

/* Hold the switch for ms, then release it. */
static int
press(struct adapter *a, const struct power_wire *w, int ms, const volatile int *cancel)
{
	int rc = set_wire(a, w, true);
	uint64_t start = now_ms(), end = start + (uint64_t)ms;
	a->want_ms = ms;
	while (!rc && now_ms() < end) {
		if (cancelled(cancel)) {
			rc = -ECANCELED;
			break;
		}
		uint64_t left = end - now_ms();
		poll(NULL, 0, left < SLICE_MS ? (int)left : SLICE_MS);
		/* a USB adapter that is unplugged shows up at the next line access */
		int bits;
		if (okvm_serial_get_lines(a->port, &bits) == -ENODEV)
			rc = -ENODEV;
	}
	a->held_ms = (int)(now_ms() - start);
	int rel = set_wire(a, w, false);
	return rc ? rc : rel;
}

/* Wait up to ms for the LED to show want (when there is an LED). */
static enum power_state
settle(const struct power_config *c, struct adapter *a, enum power_state want, int ms,
       const volatile int *cancel)
{
	enum power_state s = POWER_UNKNOWN;
	uint64_t end = now_ms() + (uint64_t)ms;
	do {
		if (read_led(c, a, &s) < 0 || s == want || s == POWER_UNKNOWN)
			break;
		poll(NULL, 0, 100);
	} while (now_ms() < end && !cancelled(cancel));
	return s;
}

static void
say(struct power_result *r, const char *text)
{
	snprintf(r->msg, sizeof(r->msg), "%s", text);
}

static int
press_msg(int rc, const struct adapter *a, const struct power_wire *w, struct power_result *r)
{
	if (rc == -ENODEV)
		snprintf(r->msg, sizeof(r->msg),
			 "the adapter %s was unplugged mid-press (after %d of %d ms): its %s line "
			 "lost power with it, so the switch is released; plug it back and press "
			 "again",
			 a->path, a->held_ms, a->want_ms, line_name(w->line));
	else if (rc == -ECANCELED)
		snprintf(r->msg, sizeof(r->msg), "interrupted: %s released", line_name(w->line));
	else if (rc < 0)
		snprintf(r->msg, sizeof(r->msg), "%s: %s", line_name(w->line), okvm_strerror(rc));
	return rc;
}

static int
wire_ok(const struct power_wire *w, const char *what, struct power_result *r)
{
	if (w->line == POWER_LINE_DTR || w->line == POWER_LINE_RTS)
		return 0;
	snprintf(r->msg, sizeof(r->msg),
		 "no line for the %s button: set it in [power] (dtr or rts)", what);
	return -EINVAL;
}

static int
run_serial(const struct power_config *c, struct adapter *a, enum power_action act,
	   const volatile int *cancel, struct power_result *r)
{
	enum power_state s = r->before;
	const struct power_wire *pw = &c->power;
	int rc;
	switch (act) {
	case POWER_ACT_ON:
		if (s == POWER_ON) {
			say(r, "the target is already on (power LED lit): nothing pressed");
			return 0;
		}
		if (power_wakes_by_wol(c)) {
			char sent[200];
			if ((rc = power_wol_send(c, sent, sizeof(sent)))) {
				say(r, sent);
				return rc;
			}
			r->after = settle(c, a, POWER_ON, LED_SETTLE_MS, cancel);
			r->done = true;
			snprintf(r->msg, sizeof(r->msg), "on: %s; the target is now %s", sent,
				 state_names[r->after]);
			return 0;
		}
		if ((rc = wire_ok(pw, "power", r)) || (rc = press(a, pw, c->press_ms, cancel)))
			return press_msg(rc, a, pw, r);
		r->after = settle(c, a, POWER_ON, LED_SETTLE_MS, cancel);
		break;
	case POWER_ACT_OFF:
	case POWER_ACT_FORCE_OFF:
		if (s == POWER_OFF) {
			say(r, "the target is already off (power LED dark): nothing pressed");
			return 0;
		}
		if ((rc = wire_ok(pw, "power", r)) ||
		    (rc = press(a, pw, act == POWER_ACT_OFF ? c->press_ms : c->force_ms, cancel)))
			return press_msg(rc, a, pw, r);
		r->after = settle(c, a, POWER_OFF, act == POWER_ACT_OFF ? 0 : 1000, cancel);
		break;
	case POWER_ACT_RESET:
		if (s == POWER_OFF) {
			say(r, "the target is off (power LED dark): reset does nothing; nothing "
			       "pressed");
			return 0;
		}
		if ((rc = wire_ok(&c->reset, "reset", r)) ||
		    (rc = press(a, &c->reset, c->reset_ms, cancel)))
			return press_msg(rc, a, &c->reset, r);
		r->after = settle(c, a, POWER_ON, 0, cancel);
		break;
	case POWER_ACT_CYCLE:
		if ((rc = wire_ok(pw, "power", r)))
			return rc;
		if (s != POWER_OFF) {
			if ((rc = press(a, pw, c->force_ms, cancel)))
				return press_msg(rc, a, pw, r);
			for (uint64_t end = now_ms() + (uint64_t)c->cycle_off_ms;
			     now_ms() < end && !cancelled(cancel);)
				poll(NULL, 0, SLICE_MS);
		}
		if (cancelled(cancel) || (rc = press(a, pw, c->press_ms, cancel)))
			return press_msg(rc ? rc : -ECANCELED, a, pw, r);
		r->after = settle(c, a, POWER_ON, LED_SETTLE_MS, cancel);
		break;
	}
	r->done = true;
	snprintf(r->msg, sizeof(r->msg), "%s: done; the target is now %s", action_names[act],
		 state_names[r->after]);
	return 0;
}

static int
run_vbus(const struct power_config *c, enum power_action act, const volatile int *cancel,
	 struct power_result *r)
{
	if (!c->vbus) {
		say(r, "power via the switchable port needs the unit (-d)");
		return -ENOTSUP;
	}
	int rc = 0;
	bool off = act == POWER_ACT_OFF || act == POWER_ACT_FORCE_OFF;
	if (act == POWER_ACT_RESET || act == POWER_ACT_CYCLE) {
		rc = c->vbus(c->vbus_ud, false);
		for (uint64_t end = now_ms() + (uint64_t)c->cycle_off_ms;
		     !rc && now_ms() < end && !cancelled(cancel);)
			poll(NULL, 0, SLICE_MS);
		int rc2 = c->vbus(c->vbus_ud, true);
		rc = rc ? rc : rc2;
	} else {
		rc = c->vbus(c->vbus_ud, !off);
	}
	if (rc < 0) {
		snprintf(r->msg, sizeof(r->msg), "switchable port power: %s", okvm_strerror(rc));
		return rc;
	}
	r->done = true;
	r->after = off ? POWER_OFF : POWER_ON;
	snprintf(r->msg, sizeof(r->msg), "%s: done (switchable port %s)", action_names[act],
		 off ? "unpowered" : "powered");
	return 0;
}

/* ---- the USB HID relay board ---- */

#define RELAY_REPORT 9 /* report id 0 + 8 bytes */
#define RELAY_ON 0xFF
#define RELAY_OFF 0xFD
#define RELAY_VID 0x16c0 /* V-USB's shared id, the boards' (www.dcttech.com USBRelayN) */
#define RELAY_PID 0x05df

static int
relay_state(int fd, uint8_t *state)
{
	uint8_t buf[RELAY_REPORT] = { 0 };
	int rc = hidraw_get_feature(fd, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	if (rc < RELAY_REPORT)
		return -EPROTO;
	*state = buf[8];
	return 0;
}

static int
relay_set(int fd, int channel, bool closed)
{
	uint8_t buf[RELAY_REPORT] = { 0, closed ? RELAY_ON : RELAY_OFF, (uint8_t)channel };
	return hidraw_set_feature(fd, buf, sizeof(buf));
}

/* Close the channel for ms, then open it (whatever happened meanwhile). */
static int
relay_press(const struct power_config *c, int fd, int channel, int ms, const volatile int *cancel,
	    struct power_result *r)
{
	int rc = relay_set(fd, channel, true);
	uint64_t end = now_ms() + (uint64_t)ms;
	while (!rc && now_ms() < end) {
		if (cancelled(cancel)) {
			rc = -ECANCELED;
			break;
		}
		uint64_t left = end - now_ms();
		poll(NULL, 0, left < SLICE_MS ? (int)left : SLICE_MS);
	}
	int rel = relay_set(fd, channel, false);
	uint8_t st = 0;
	if (!rel && (rel = relay_state(fd, &st)) == 0 && (st >> (channel - 1) & 1))
		rel = -EIO;
	if (rc == -ECANCELED)
		snprintf(r->msg, sizeof(r->msg), "interrupted: relay channel %d released%s",
			 channel, rel ? " (the board did not confirm it)" : "");
	else if (rc || rel)
		snprintf(r->msg, sizeof(r->msg), "%s: relay channel %d: %s", c->device, channel,
			 rel == -EIO ? "still closed after the release; unplug the board"
				     : okvm_strerror(rc ? rc : rel));
	return rc ? rc : rel;
}

static int
relay_channel_ok(int ch, const char *what, struct power_result *r)
{
	if (ch >= 1 && ch <= POWER_RELAY_CHANNELS)
		return 0;
	snprintf(r->msg, sizeof(r->msg),
		 "no relay channel for the %s button: set %s_channel in [power] (1 to 8)", what,
		 what);
	return -EINVAL;
}

static int
relay_open(const struct power_config *c, int *fd, char *msg, size_t msgsz)
{
	if (!c->device || strncmp(c->device, "/dev/hidraw", 11)) {
		snprintf(msg, msgsz,
			 "backend hidrelay needs device = /dev/hidrawN in [power] (the relay "
			 "board's node: okvm list names it)");
		return -EINVAL;
	}
	*fd = hidraw_open(c->device);
	if (*fd < 0) {
		snprintf(msg, msgsz, "cannot open the relay board %s: %s%s", c->device,
			 okvm_strerror(*fd),
			 *fd == -EACCES ? " (a udev rule for 16c0:05df, docs/power.md)" : "");
		return *fd;
	}
	uint16_t vid = 0, pid = 0;
	int rc = hidraw_get_ids(*fd, &vid, &pid);
	if (!rc && (vid != RELAY_VID || pid != RELAY_PID)) {
		snprintf(msg, msgsz,
			 "%s is %04x:%04x, not a USB HID relay board (16c0:05df): check device "
			 "in [power]",
			 c->device, vid, pid);
		hidraw_close(*fd);
		return -ENODEV;
	}
	uint8_t st;
	if (!rc)
		rc = relay_state(*fd, &st);
	if (rc < 0) {
		snprintf(msg, msgsz, "%s does not answer as a USB HID relay board: %s", c->device,
			 okvm_strerror(rc));
		hidraw_close(*fd);
	}
	return rc;
}

/* Wake-on-LAN alone: on sends the packet; nothing else can be done. */
static int
run_wol(const struct power_config *c, enum power_action act, struct power_result *r)
{
	if (act != POWER_ACT_ON) {
		snprintf(r->msg, sizeof(r->msg),
			 "Wake-on-LAN can only wake the target: %s needs a power switch (backend "
			 "serial or hidrelay in [power], docs/power.md); nothing sent",
			 action_names[act]);
		return -ENOTSUP;
	}
	char sent[200];
	int rc = power_wol_send(c, sent, sizeof(sent));
	if (rc) {
		say(r, sent);
		return rc;
	}
	r->done = true;
	snprintf(r->msg, sizeof(r->msg), "on: %s (no power LED to read: state unknown)", sent);
	return 0;
}

static int
run_hidrelay(const struct power_config *c, enum power_action act, const volatile int *cancel,
	     struct power_result *r)
{
	if (act == POWER_ACT_ON && power_wakes_by_wol(c))
		return run_wol(c, act, r);
	bool reset = act == POWER_ACT_RESET;
	int ch = reset ? c->reset_channel : c->power_channel;
	int rc = relay_channel_ok(ch, reset ? "reset" : "power", r);
	int fd = -1;
	if (rc || (rc = relay_open(c, &fd, r->msg, sizeof(r->msg))))
		return rc;
	switch (act) {
	case POWER_ACT_ON:
	case POWER_ACT_OFF: rc = relay_press(c, fd, ch, c->press_ms, cancel, r); break;
	case POWER_ACT_FORCE_OFF: rc = relay_press(c, fd, ch, c->force_ms, cancel, r); break;
	case POWER_ACT_RESET: rc = relay_press(c, fd, ch, c->reset_ms, cancel, r); break;
	case POWER_ACT_CYCLE:
		rc = relay_press(c, fd, ch, c->force_ms, cancel, r);
		for (uint64_t end = now_ms() + (uint64_t)c->cycle_off_ms;
		     !rc && now_ms() < end && !cancelled(cancel);)
			poll(NULL, 0, SLICE_MS);
		if (!rc)
			rc = cancelled(cancel) ? -ECANCELED
					       : relay_press(c, fd, ch, c->press_ms, cancel, r);
		if (rc == -ECANCELED && !r->msg[0])
			snprintf(r->msg, sizeof(r->msg), "interrupted: relay channel %d released",
				 ch);
		break;
	}
	hidraw_close(fd);
	if (rc)
		return rc;
	r->done = true;
	snprintf(r->msg, sizeof(r->msg),
		 "%s: done (relay channel %d; the board has no power LED: state unknown)",
		 action_names[act], ch);
	return 0;
}

int
power_status(const struct power_config *c, enum power_state *out, char *msg, size_t msgsz)
{
	return power_status_port(c, NULL, out, msg, msgsz);
}

int
power_status_port(const struct power_config *c, struct okvm_serial *port, enum power_state *out,
		  char *msg, size_t msgsz)
{
	*out = POWER_UNKNOWN;
	if (c->backend == POWER_BACKEND_VBUS || c->backend == POWER_BACKEND_WOL)
		return 0;
	if (c->backend == POWER_BACKEND_HIDRELAY) { /* no LED: unknown, if the board answers */
		int fd = -1;
		int rc = relay_open(c, &fd, msg, msgsz);
		if (!rc)
			hidraw_close(fd);
		return rc;
	}
	struct adapter a;
	int rc = adapter_open(c, port, &a, msg, msgsz);
	if (rc < 0)
		return rc;
	rc = read_led(c, &a, out);
	if (rc < 0)
		snprintf(msg, msgsz, "%s: reading the LED: %s", c->device, okvm_strerror(rc));
	adapter_close(&a);
	return rc;
}

int
power_run(const struct power_config *c, enum power_action act, const volatile int *cancel,
	  struct power_result *r)
{
	return power_run_port(c, NULL, act, cancel, r);
}

int
power_run_port(const struct power_config *c, struct okvm_serial *port, enum power_action act,
	       const volatile int *cancel, struct power_result *r)
{
	memset(r, 0, sizeof(*r));
	if (pthread_mutex_trylock(&press_lock)) {
		say(r, "another press is running: wait for it to end");
		return -EBUSY;
	}
	int rc;
	if (c->backend == POWER_BACKEND_WOL) {
		rc = run_wol(c, act, r);
	} else if (c->backend == POWER_BACKEND_VBUS) {
		rc = run_vbus(c, act, cancel, r);
	} else if (c->backend == POWER_BACKEND_HIDRELAY) {
		rc = run_hidrelay(c, act, cancel, r);
	} else {
		struct adapter a;
		rc = adapter_open(c, port, &a, r->msg, sizeof(r->msg));
		if (!rc && (rc = read_led(c, &a, &r->before)) < 0)
			snprintf(r->msg, sizeof(r->msg), "%s: reading the LED: %s%s", a.path,
				 okvm_strerror(rc),
				 rc == -ENODEV ? " (unplugged?): nothing pressed"
					       : "; nothing pressed");
		if (!rc) {
			r->after = r->before;
			rc = run_serial(c, &a, act, cancel, r);
		}
		adapter_close(&a);
	}
	pthread_mutex_unlock(&press_lock);
	return rc;
}
