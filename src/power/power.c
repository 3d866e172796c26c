/*
 * DESIGN: presses on the target's ATX header through the modem lines of a USB-serial adapter
 * (docs/power.md, docs/extension-pins.md): DTR and RTS drive optocouplers across the power and
 * reset switch pins, DSR (or CTS, DCD) reads the power LED. A press opens the adapter (exclusive:
 * a second press, or a console holding it, gets -EBUSY), reads the LED, asserts the line for the
 * press time, releases it and closes the adapter. Whatever ends the press (its time, a cancel,
 * an error) the line is released; an adapter that vanished mid-press took its lines with it.
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
 * Blocking; any thread; one press at a time per process (a mutex, tried, never waited on).
 */
#include <errno.h>
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
#include "lib/xalloc.h"
#include "okvm/error.h"
#include "okvm/serial.h"
#include "power/power.h"

#define SLICE_MS 20
#define LED_WAIT_MS 500    /* the virtual adapter answers WATCH at once */
#define LED_SETTLE_MS 3000 /* after `on`: how long to watch the LED light */

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
	bool borrowed; /* the caller's open port (okvm serve's console): not closed here */
	char *modem;   /* the virtual adapter's modem socket, or NULL */
	int watch;     /* our socket to it, or -1 */
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
	return cancel && *cancel;
}

/* Hold the switch for ms, then release it. */
static int
press(struct adapter *a, const struct power_wire *w, int ms, const volatile int *cancel)
{
	int rc = set_wire(a, w, true);
	uint64_t end = now_ms() + (uint64_t)ms;
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
press_msg(int rc, const struct power_wire *w, struct power_result *r)
{
	if (rc == -ENODEV)
		snprintf(r->msg, sizeof(r->msg),
			 "the adapter vanished mid-press (its %s line went with it: released)",
			 line_name(w->line));
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
		if ((rc = wire_ok(pw, "power", r)) || (rc = press(a, pw, c->press_ms, cancel)))
			return press_msg(rc, pw, r);
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
			return press_msg(rc, pw, r);
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
			return press_msg(rc, &c->reset, r);
		r->after = settle(c, a, POWER_ON, 0, cancel);
		break;
	case POWER_ACT_CYCLE:
		if ((rc = wire_ok(pw, "power", r)))
			return rc;
		if (s != POWER_OFF) {
			if ((rc = press(a, pw, c->force_ms, cancel)))
				return press_msg(rc, pw, r);
			for (uint64_t end = now_ms() + (uint64_t)c->cycle_off_ms;
			     now_ms() < end && !cancelled(cancel);)
				poll(NULL, 0, SLICE_MS);
		}
		if (cancelled(cancel) || (rc = press(a, pw, c->press_ms, cancel)))
			return press_msg(rc ? rc : -ECANCELED, pw, r);
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

static int
run_hidrelay(const struct power_config *c, enum power_action act, const volatile int *cancel,
	     struct power_result *r)
{
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
	if (c->backend == POWER_BACKEND_VBUS)
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
	if (c->backend == POWER_BACKEND_VBUS) {
		rc = run_vbus(c, act, cancel, r);
	} else if (c->backend == POWER_BACKEND_HIDRELAY) {
		rc = run_hidrelay(c, act, cancel, r);
	} else {
		struct adapter a;
		rc = adapter_open(c, port, &a, r->msg, sizeof(r->msg));
		if (!rc)
			rc = read_led(c, &a, &r->before);
		if (!rc) {
			r->after = r->before;
			rc = run_serial(c, &a, act, cancel, r);
		}
		adapter_close(&a);
	}
	pthread_mutex_unlock(&press_lock);
	return rc;
}
