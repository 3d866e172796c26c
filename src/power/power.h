/*
 * The target's power and reset buttons, and its power LED (docs/power.md): `okvm power`,
 * GET/POST /api/power. Backends: the modem lines of a USB-serial adapter (the one on the
 * extension pins, or any tty), a USB HID relay board, the switchable port's VBUS (a target
 * powered by USB) and Wake-on-LAN (on only; also next to a backend without a power line).
 * Configured in okvm.conf [power].
 *
 * Threads: a power_config belongs to its owner; power_status() and power_run() block (up to a
 * press's length plus a second) and may run on any thread, one at a time per adapter (a second
 * caller gets -EBUSY: the adapter is opened exclusively, and power_run() holds a lock of its
 * own in the process).
 */
#ifndef OKVM_POWER_H
#define OKVM_POWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#define POWER_DEFAULT_PRESS_MS 500      /* a short press of the power button */
#define POWER_DEFAULT_FORCE_MS 5000     /* ATX boards force off after 4 s held */
#define POWER_DEFAULT_RESET_MS 500      /* a press of the reset button */
#define POWER_DEFAULT_CYCLE_OFF_MS 3000 /* cycle: off this long before on again */
#define POWER_DEFAULT_BAUD 115200       /* the console's speed (the lines do not care) */

enum power_backend {
	POWER_BACKEND_SERIAL,   /* modem lines of a USB-serial adapter (default) */
	POWER_BACKEND_VBUS,     /* the switchable port's power (the unit's DTR) */
	POWER_BACKEND_HIDRELAY, /* a USB HID relay board (16c0:05df) on /dev/hidrawN */
	POWER_BACKEND_WOL,      /* Wake-on-LAN only: `on` sends the magic packet */
};

#define POWER_WOL_DEFAULT_ADDRESS "255.255.255.255:9" /* the limited broadcast, discard port */
#define POWER_WOL_PACKET 102                          /* 6 x 0xFF, then the MAC 16 times */

#define POWER_RELAY_CHANNELS 8 /* the largest boards of the family */

/* A modem line of the adapter: outputs DTR/RTS, inputs DSR/CTS/DCD. */
enum power_line {
	POWER_LINE_NONE = 0,
	POWER_LINE_DTR,
	POWER_LINE_RTS,
	POWER_LINE_DSR,
	POWER_LINE_CTS,
	POWER_LINE_DCD,
};

struct power_wire {
	enum power_line line;
	bool active_low; /* the button is pressed (the LED lit) when the line is deasserted */
};

struct power_config {
	enum power_backend backend;
	char *device;       /* the adapter's tty; NULL = the unit's extension pins (chain + .4) */
	char *modem_socket; /* a virtual adapter's modem socket; NULL = DEVICE.modem if it exists */
	/* The target's serial console (okvm console, okvm serve, scripts, MCP): [power] console,
	   else the power adapter itself (serial backend), else the USB-serial adapter on the pins;
	   NULL: none (console = none, or nothing found). Filled by the command line's lookup. */
	char *console, *console_modem;
	bool console_off; /* console = none */
	struct power_wire power, reset, led;
	int press_ms, force_ms, reset_ms, cycle_off_ms;
	int baud;
	/* POWER_BACKEND_HIDRELAY: the relay channels (1..8) across the power and reset switch
	   pins; 0 = none. device is the board's hidraw node. */
	int power_channel, reset_channel;
	/* Wake-on-LAN: the target's MAC (wol false: none configured), where the packet goes
	   (HOST:PORT, [V6]:PORT or HOST; NULL = POWER_WOL_DEFAULT_ADDRESS) and the interface it
	   leaves by (NULL: the routing table's choice). With backend wol, `on` sends it; with a
	   backend whose power line is none, `on` sends it instead of a press. */
	bool wol;
	bool wol_first; /* `on` by Wake-on-LAN even with a power line (okvm power on --wol) */
	uint8_t wol_mac[6];
	char *wol_address, *wol_interface;
	/* POWER_BACKEND_VBUS: switches the target's USB power (true = powered); set by the owner */
	int (*vbus)(void *ud, bool powered);
	void *vbus_ud;
};

enum power_state { POWER_UNKNOWN, POWER_OFF, POWER_ON };
enum power_action {
	POWER_ACT_ON,
	POWER_ACT_OFF,
	POWER_ACT_FORCE_OFF,
	POWER_ACT_RESET,
	POWER_ACT_CYCLE
};

/** Defaults: serial backend, power = DTR, reset = RTS, LED = DSR, all active high, 0.5/5/0.5 s. */
void power_config_init(struct power_config *c);
void power_config_clear(struct power_config *c);
/** dst = src with copies of its strings (power_config_clear() frees each). */
void power_config_copy(struct power_config *dst, const struct power_config *src);
/**
 * One key of [power] (docs/power.md): backend, device, power, reset, led (a line name or
 * "none", "!dtr" = active low), power_ms, force_off_ms, reset_ms, cycle_off_ms, baud,
 * power_channel, reset_channel (hidrelay: 1..8, or 0 = none), wol_mac, wol_address,
 * wol_interface.
 * @return 0, or -EINVAL with a message in err naming the key and what it takes.
 */
int power_config_set(struct power_config *c, const char *key, const char *value, char *err,
		     size_t errsz);
/** "AA:BB:CC:DD:EE:FF" (or with '-') into mac: a unicast MAC. @return 0 or -EINVAL. */
int power_parse_mac(const char *s, uint8_t mac[6]);
/** The magic packet for mac: 6 x 0xFF, then the MAC 16 times. */
void power_wol_packet(const uint8_t mac[6], uint8_t out[POWER_WOL_PACKET]);
/**
 * Send the magic packet for c->wol_mac to c->wol_address (SO_BROADCAST set) through
 * c->wol_interface. @return 0, or -errno with msg set (a bad address is -EINVAL).
 */
int power_wol_send(const struct power_config *c, char *msg, size_t msgsz);
/** A numeric address for the packet: "A.B.C.D[:PORT]" or "[V6][:PORT]" (port 9 if none).
 *  @return 0 with *out filled (sockaddr_in or _in6, *len its size), or -EINVAL. */
struct sockaddr_storage;
int power_wol_address(const char *s, struct sockaddr_storage *out, unsigned *len);
/** Does `on` go by Wake-on-LAN with this config (backend wol, or a MAC and no power line)? */
bool power_wakes_by_wol(const struct power_config *c);

/** The [power] section of an INI file (other sections skipped). @return 0, -ENOENT (no file),
 *  -EINVAL (err says which line and why) or -errno. */
int power_config_load(struct power_config *c, const char *path, char *err, size_t errsz);

const char *power_state_name(enum power_state s);   /* "on", "off", "unknown" */
const char *power_action_name(enum power_action a); /* "on", "off", "force-off", ... */
/** "on", "off", "force-off", "reset", "cycle". @return 0 or -EINVAL. */
int power_action_parse(const char *s, enum power_action *out);

struct power_result {
	enum power_state before, after;
	bool done;     /* false: nothing was pressed (already in that state) */
	char msg[256]; /* one line for people: what happened, or why nothing did */
};

/**
 * The state the LED shows. @return 0 (UNKNOWN without an LED line), or a negative errno with
 * msg set: -ENOENT (no adapter), -EBUSY (held by another press or a console), -EACCES.
 */
int power_status(const struct power_config *c, enum power_state *out, char *msg, size_t msgsz);
/**
 * Press what the action needs (reads the LED first: `on` on a running target and `off` on a
 * stopped one do nothing, res->done false). Lines are released on every exit path, cancel
 * included (checked every 20 ms; NULL = never). @return 0, -EBUSY (a press runs), -ENODEV
 * (the adapter vanished mid-press: its lines are gone with it), -ECANCELED, or -errno; res->msg
 * says which.
 */
int power_run(const struct power_config *c, enum power_action a, const volatile int *cancel,
	      struct power_result *res);

/**
 * The same on a port the caller holds open (okvm serve's console owns the adapter): it is not
 * opened or closed here, and the caller keeps it alive and open for the call. port NULL: as
 * above.
 */
struct okvm_serial;
int power_status_port(const struct power_config *c, struct okvm_serial *port, enum power_state *out,
		      char *msg, size_t msgsz);
int power_run_port(const struct power_config *c, struct okvm_serial *port, enum power_action a,
		   const volatile int *cancel, struct power_result *res);

#endif
