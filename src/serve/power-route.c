/*
 * DESIGN: GET /api/power and POST /api/power?action=on|off|force-off|reset|cycle (docs/api.md),
 * and "power" in /api/state, on top of src/power/power.c. The server gets the [power] config
 * (with its adapter found) from `okvm serve` through serve_set_power(); without it both routes
 * say there is no power control.
 *
 * A press lasts up to 5 s and more (cycle), so it runs on a thread of its own ("okvm-power"),
 * one at a time: a POST while one runs gets 409. GET reads the power LED on the service thread
 * (a TIOCMGET, or one datagram to the virtual adapter: well under a millisecond) unless a press
 * holds the adapter, when it answers the last state known. A press that ends pushes a state
 * event, so WebSocket clients see the new "power" at once.
 *
 * Backends: serial (the console's adapter: a press borrows its open port), hidrelay (its own
 * hidraw node, no console involved), vbus (the switchable port's power through the unit
 * backend's usb_power, which the backend's hid thread applies; the state is what was last
 * set, since there is no LED) and wol (on only; other actions are refused with 400).
 * An adapter that vanishes mid-press ends the press with its line released (power.c); the
 * console reopens it once it is back, and the next press goes through the new port.
 * Threads: the service thread, and the press thread under the lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/thread.h"
#include "lib/xalloc.h"
#include "okvm/log.h"
#include "power/power.h"
#include "serve/internal.h"

struct serve_power {
	struct serve *s;
	struct power_config cfg;
	pthread_mutex_t lock;
	bool busy;     /* a press runs */
	bool joinable; /* worker has been started and not yet joined */
	pthread_t worker;
	enum power_action act;
	enum power_state state; /* the last state read */
	char last[256];         /* what the last press did */
	bool last_failed;       /* ... and whether it failed (the adapter vanished, say) */
	volatile int cancel;
};

/* backend = vbus: the unit's DTR, set on the backend's hid thread (this is a press thread). */
static int
route_vbus(void *ud, bool powered)
{
	struct serve *s = ud;
	if (!s->be.ops->usb_power)
		return -EOPNOTSUPP;
	return s->be.ops->usb_power(s->be.ud, powered);
}

static const char *
backend_name(enum power_backend b)
{
	static const char *const names[] = { "serial", "vbus", "hidrelay", "wol" };
	return names[b];
}

void
serve_set_power(struct serve *s, struct power_config *pc)
{
	struct serve_power *p = xcalloc(1, sizeof(*p));
	p->s = s;
	p->cfg = *pc; /* takes over its strings */
	memset(pc, 0, sizeof(*pc));
	pthread_mutex_init(&p->lock, NULL);
	if (p->cfg.backend == POWER_BACKEND_VBUS) {
		p->cfg.vbus = route_vbus;
		p->cfg.vbus_ud = s;
		/* the link opened the unit's port with DTR released: the port is powered */
		p->state = s->be.link && s->be.ops->usb_power ? POWER_ON : POWER_UNKNOWN;
	}
	s->power = p;
	/* the target's serial console, which then owns its port: the power adapter's other half
	   (serial backend), or [power] console, or the adapter on the pins next to a relay */
	if (p->cfg.console)
		serve_set_console(s, p->cfg.console, p->cfg.console_modem, p->cfg.baud);
}

/* The power lines are the console's adapter's (serial backend, the same tty). */
static bool
shares_console(const struct serve_power *p)
{
	return p->cfg.backend == POWER_BACKEND_SERIAL && p->s->console && p->cfg.console &&
	       p->cfg.device && !strcmp(p->cfg.console, p->cfg.device);
}

/* The console's open port when there is a console (NULL: none, or not open; *held says
 * whether to give it back). */
static struct okvm_serial *
borrow(struct serve_power *p, bool *held)
{
	*held = false;
	if (!shares_console(p))
		return NULL; /* a relay, the port's power, a packet: the console is not involved */
	struct okvm_serial *port = serve_console_borrow(p->s);
	*held = port != NULL;
	return port;
}

/* The press needs the console's port, and the console has none (its adapter is gone). */
static bool
adapter_missing(struct serve_power *p, const struct okvm_serial *port)
{
	return shares_console(p) && !port;
}

void
serve_power_free(struct serve *s)
{
	struct serve_power *p = s->power;
	if (!p)
		return;
	flag_set(&p->cancel, 1); /* a press under way ends now, its line released */
	if (p->joinable)
		pthread_join(p->worker, NULL);
	power_config_clear(&p->cfg);
	pthread_mutex_destroy(&p->lock);
	free(p);
	s->power = NULL;
}

/* The LED now, unless a press holds the adapter (then the last known: *stored true). */
static enum power_state
current(struct serve_power *p, char *msg, size_t n, bool *stored)
{
	*stored = true;
	msg[0] = 0; /* no error (it went out as "error" uninitialised while busy, and for vbus) */
	pthread_mutex_lock(&p->lock);
	bool busy = p->busy;
	enum power_state st = p->state;
	pthread_mutex_unlock(&p->lock);
	if (busy || p->cfg.backend == POWER_BACKEND_VBUS)
		return st; /* vbus: no LED; what okvm set last (unknown before that) */
	*stored = false;
	bool held;
	struct okvm_serial *port = borrow(p, &held);
	int rc = adapter_missing(p, port) ? -ENODEV : power_status_port(&p->cfg, port, &st, msg, n);
	if (held)
		serve_console_return(p->s);
	if (rc == -ENODEV && !msg[0])
		snprintf(msg, n, "the adapter %s is not connected", p->cfg.device);
	if (rc < 0)
		st = POWER_UNKNOWN;
	pthread_mutex_lock(&p->lock);
	if (!p->busy)
		p->state = st;
	pthread_mutex_unlock(&p->lock);
	return st;
}

void
serve_power_state_json(struct serve *s, cJSON *o)
{
	struct serve_power *p = s->power;
	cJSON *j = cJSON_AddObjectToObject(o, "power");
	cJSON_AddBoolToObject(j, "available", p != NULL);
	if (!p) {
		cJSON_AddStringToObject(j, "state", "unknown");
		return;
	}
	pthread_mutex_lock(&p->lock);
	cJSON_AddStringToObject(j, "state", power_state_name(p->state));
	cJSON_AddBoolToObject(j, "busy", p->busy);
	pthread_mutex_unlock(&p->lock);
}

/* One press, p->busy set by the caller: through the console's port when the lines are its
 * adapter's; the outcome into the state and the last message, busy cleared. */
static int
press_now(struct serve_power *p, enum power_action a, const volatile int *cancel,
	  struct power_result *r)
{
	memset(r, 0, sizeof(*r));
	bool held;
	struct okvm_serial *port = borrow(p, &held);
	int rc = -ENODEV;
	if (adapter_missing(p, port))
		snprintf(r->msg, sizeof(r->msg), "the adapter %s is not connected", p->cfg.device);
	else
		rc = power_run_port(&p->cfg, port, a, cancel, r);
	if (held)
		serve_console_return(p->s);
	okvm_log(rc < 0 ? OKVM_LOG_WARN : OKVM_LOG_NOTICE, "audit: power %s: %s",
		 power_action_name(a), r->msg);
	pthread_mutex_lock(&p->lock);
	p->busy = false;
	/* a press that failed knows nothing new (an unplugged adapter: read it again) */
	p->state = rc < 0 && p->cfg.backend == POWER_BACKEND_VBUS ? p->state : r->after;
	p->last_failed = rc < 0;
	snprintf(p->last, sizeof(p->last), "%s", r->msg);
	pthread_mutex_unlock(&p->lock);
	serve_notify_state(p->s);
	return rc < 0 ? rc : 0;
}

static void *
press_thread(void *arg)
{
	struct serve_power *p = arg;
	struct power_result r;
	press_now(p, p->act, &p->cancel, &r);
	return NULL;
}

int
serve_power_run(struct serve *s, int action, const volatile int *cancel, char *msg, size_t n)
{
	struct serve_power *p = s->power;
	enum power_action a = (enum power_action)action;
	msg[0] = 0;
	if (!p)
		return -ENODEV;
	pthread_mutex_lock(&p->lock);
	if (p->busy) {
		pthread_mutex_unlock(&p->lock);
		snprintf(msg, n, "another press is running");
		return -EBUSY;
	}
	p->busy = true;
	p->act = a;
	pthread_mutex_unlock(&p->lock);
	serve_notify_state(s);
	struct power_result r;
	int rc = press_now(p, a, cancel, &r);
	snprintf(msg, n, "%s", r.msg);
	return rc;
}

/* stored: st is the state kept (not an LED read now), then read again with busy and last, so
 * that a press ending meanwhile cannot pair the state before it with its result. */
static cJSON *
power_object(struct serve_power *p, enum power_state st, bool stored, const char *err)
{
	cJSON *o = cJSON_CreateObject();
	pthread_mutex_lock(&p->lock);
	cJSON_AddStringToObject(o, "state", power_state_name(stored ? p->state : st));
	cJSON_AddBoolToObject(o, "busy", p->busy);
	if (p->busy)
		cJSON_AddStringToObject(o, "pressing", power_action_name(p->act));
	if (p->last[0]) {
		cJSON_AddStringToObject(o, "last", p->last);
		cJSON_AddBoolToObject(o, "last_failed", p->last_failed);
	}
	pthread_mutex_unlock(&p->lock);
	cJSON_AddStringToObject(o, "backend", backend_name(p->cfg.backend));
	if (p->cfg.device && p->cfg.backend != POWER_BACKEND_VBUS &&
	    p->cfg.backend != POWER_BACKEND_WOL)
		cJSON_AddStringToObject(o, "device", p->cfg.device);
	cJSON_AddBoolToObject(o, "led",
			      p->cfg.backend == POWER_BACKEND_SERIAL &&
				      p->cfg.led.line != POWER_LINE_NONE);
	cJSON_AddBoolToObject(o, "wol", power_wakes_by_wol(&p->cfg));
	if (err && err[0])
		cJSON_AddStringToObject(o, "error", err);
	return o;
}

/* Nothing to press: `on` on a running target, `off` on a stopped one (docs/power.md). */
static const char *
needless(const struct serve_power *p, enum power_action a, enum power_state st)
{
	if (p->cfg.backend == POWER_BACKEND_VBUS) {
		if (a == POWER_ACT_ON && st == POWER_ON)
			return "the switchable port is already powered: nothing done";
		if ((a == POWER_ACT_OFF || a == POWER_ACT_FORCE_OFF) && st == POWER_OFF)
			return "the switchable port is already unpowered: nothing done";
		return NULL;
	}
	if (a == POWER_ACT_ON && st == POWER_ON)
		return "the target is already on (power LED lit): nothing pressed";
	if ((a == POWER_ACT_OFF || a == POWER_ACT_FORCE_OFF) && st == POWER_OFF)
		return "the target is already off (power LED dark): nothing pressed";
	if (a == POWER_ACT_RESET && st == POWER_OFF)
		return "the target is off (power LED dark): reset does nothing; nothing pressed";
	return NULL;
}

static int
do_post(struct conn *c, struct serve_power *p)
{
	char buf[32];
	const char *arg = serve_urlarg(c->wsi, "action=", buf, sizeof(buf));
	enum power_action a;
	if (!arg || power_action_parse(arg, &a) < 0)
		return http_reply_error(c, 400,
					"power: action is on, off, force-off, reset or cycle");
	if (p->cfg.backend == POWER_BACKEND_WOL && a != POWER_ACT_ON) {
		char why[200];
		snprintf(why, sizeof(why),
			 "power: Wake-on-LAN can only wake the target: %s needs a power switch "
			 "(backend serial or hidrelay in [power]); nothing sent",
			 power_action_name(a));
		return http_reply_error(c, 400, why);
	}
	char msg[200];
	bool stored;
	enum power_state st = current(p, msg, sizeof(msg), &stored); /* before the press */
	pthread_mutex_lock(&p->lock);
	if (p->busy) {
		pthread_mutex_unlock(&p->lock);
		return http_reply_error(c, 409, "power: another press is running; wait for it");
	}
	const char *skip = needless(p, a, st);
	if (skip) {
		pthread_mutex_unlock(&p->lock);
		cJSON *o = power_object(p, st, false, NULL);
		cJSON_AddBoolToObject(o, "ok", true);
		cJSON_AddBoolToObject(o, "done", false);
		cJSON_AddStringToObject(o, "message", skip);
		return http_reply_object(c, 200, o);
	}
	if (p->joinable)
		pthread_join(p->worker, NULL); /* the last press has ended: busy is false */
	p->joinable = false;
	p->busy = true;
	p->act = a;
	flag_set(&p->cancel, 0);
	int rc = thread_start(&p->worker, "okvm-power", press_thread, p);
	p->joinable = rc == 0;
	p->busy = rc == 0;
	pthread_mutex_unlock(&p->lock);
	if (rc)
		return http_reply_error(c, 503, "power: cannot start the press");
	okvm_log(OKVM_LOG_NOTICE, "audit: %s asked for power %s", c->peer, power_action_name(a));
	serve_notify_state(c->s);
	cJSON *o = power_object(p, st, false, NULL);
	cJSON_AddBoolToObject(o, "ok", true);
	cJSON_AddBoolToObject(o, "started", true);
	cJSON_AddStringToObject(o, "action", power_action_name(a));
	return http_reply_object(c, 202, o);
}

int
serve_power_route(struct conn *c)
{
	struct serve_power *p = c->s->power;
	if (!p)
		return http_reply_error(
			c, c->http.is_post ? 503 : 404,
			"power: no power control (wire a USB-serial adapter to the "
			"extension pins, or set [power] in okvm.conf; docs/power.md)");
	if (c->http.is_post) {
		if (c->role < SERVE_ROLE_OPERATOR)
			return http_reply_error(c, 403, "/api/power needs the role operator");
		return do_post(c, p);
	}
	char msg[200];
	bool stored;
	enum power_state st = current(p, msg, sizeof(msg), &stored);
	return http_reply_object(c, 200, power_object(p, st, stored, msg));
}
