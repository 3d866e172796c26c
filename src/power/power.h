/*
 * The target's power and reset buttons, and its power LED (docs/power.md): `okvm power`,
 * GET/POST /api/power. Backends: the modem lines of a USB-serial adapter (the one on the
 * extension pins, or any tty), and the switchable port's VBUS (a target powered by USB).
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
};

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
	struct power_wire power, reset, led;
	int press_ms, force_ms, reset_ms, cycle_off_ms;
	int baud;
	/* POWER_BACKEND_HIDRELAY: the relay channels (1..8) across the power and reset switch
	   pins; 0 = none. device is the board's hidraw node. */
	int power_channel, reset_channel;
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
/**
 * One key of [power] (docs/power.md): backend, device, power, reset, led (a line name or
 * "none", "!dtr" = active low), power_ms, force_off_ms, reset_ms, cycle_off_ms, baud,
 * power_channel, reset_channel (hidrelay: 1..8, or 0 = none).
 * @return 0, or -EINVAL with a message in err naming the key and what it takes.
 */
int power_config_set(struct power_config *c, const char *key, const char *value, char *err,
		     size_t errsz);
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
	char msg[200]; /* one line for people: what happened, or why nothing did */
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
