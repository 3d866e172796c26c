/*
 * DESIGN: the target's serial console in okvm serve (docs/api.md "Serial console"): the
 * USB-serial adapter on the extension pins, shared by any number of viewers at /api/console
 * (WebSocket), one of whom is the writer.
 *
 * A thread of its own ("okvm-console") owns the adapter: it reads what the target prints into a
 * bounded scrollback ring (SERVE_CONSOLE_SCROLLBACK bytes; older bytes fall out) and writes the
 * writer's keys, which wait in a bounded input buffer (SERVE_CONSOLE_INPUT). The adapter is
 * opened when the server starts and again every second while it is missing (unplugged, busy).
 * Power presses (power-route.c) borrow the open port under port_lock, which the thread takes
 * only to close or reopen it.
 *
 * Viewers pull: each WebSocket keeps how far into the byte stream it has been sent ("sent", an
 * offset into everything ever read), and a writeable callback sends the next piece from the ring,
 * one frame at a time. A new viewer starts at the oldest byte still in the ring, so it gets the
 * scrollback first. A viewer that stops reading is simply not sent anything; when the ring has
 * moved past it, it skips ahead and is told how many bytes it missed. Nobody waits for anybody.
 * MCP sessions (mcp-http.c: serial_wait_for_text, serial_send_text, execute_script's
 * WaitSerial/SendSerial) read the same ring through an auto_console of serve_console_auto():
 * each from the end of the stream when its session began, like `okvm mcp`'s console from its
 * open. Their keys go into the same input buffer as the writer's (they do not need the web
 * terminal's writer role: the MCP login is an operator's), and a send returns once the console
 * thread has written them. Those readers run on MCP job threads and wait on cond; they hold a
 * reference, so the console's memory outlives serve_console_free() until the last session goes
 * (they get -ENODEV from then on).
 * Threads: the console thread; the service thread for everything about connections; MCP job
 * threads for the readers. The ring, the input, the writer and the counters are under lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "auto/console.h"
#include "lib/thread.h"
#include "lib/xalloc.h"
#include "okvm/log.h"
#include "okvm/serial.h"
#include "serve/internal.h"

#define SERVE_CONSOLE_SCROLLBACK (64 * 1024) /* bytes the page gets on connect */
#define SERVE_CONSOLE_INPUT 4096             /* keys waiting for the wire */
#define SERVE_CONSOLE_CHUNK 4096             /* bytes per WebSocket frame */
#define REOPEN_MS 1000
#define SEND_STALL_MS 5000 /* an MCP send that makes no progress this long: -ETIMEDOUT */

struct serve_console {
	struct serve *s;
	char *tty, *modem;
	int baud;
	pthread_t thread;
	bool running;
	int wake;                  /* eventfd: input waits, or stop */
	pthread_mutex_t port_lock; /* held to close/reopen the port, and by a power press */
	struct okvm_serial *port;  /* NULL while the adapter is missing */
	pthread_mutex_t lock;
	uint8_t ring[SERVE_CONSOLE_SCROLLBACK];
	uint64_t total; /* bytes read since the start; the ring holds the last ones */
	uint8_t in[SERVE_CONSOLE_INPUT];
	size_t in_n;
	bool brk, stop;
	uint32_t writer; /* conn id of the writer, 0: none */
	unsigned viewers;
	bool connected;
	bool gone;                     /* serve_console_free() ran: readers get -ENODEV */
	pthread_cond_t cond;           /* with lock: bytes read, written, connection changes */
	uint64_t queued, written;      /* input bytes ever queued / handed to the port */
	atomic_uint refs;              /* the server's + one per MCP reader */
	atomic_uint_fast64_t notifies; /* bumped per read (and connection change) */
	uint64_t seen;                 /* service thread: notifies handled */
};

static void
notify(struct serve_console *k)
{
	atomic_fetch_add(&k->notifies, 1);
	lws_cancel_service(k->s->ctx);
}

static void
append(struct serve_console *k, const uint8_t *p, size_t n)
{
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < n; i++)
		k->ring[(k->total + i) % SERVE_CONSOLE_SCROLLBACK] = p[i];
	k->total += n;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	notify(k);
}

static void
set_port(struct serve_console *k, struct okvm_serial *port)
{
	pthread_mutex_lock(&k->port_lock);
	okvm_serial_close(k->port);
	k->port = port;
	pthread_mutex_unlock(&k->port_lock);
	pthread_mutex_lock(&k->lock);
	bool changed = k->connected != (port != NULL);
	k->connected = port != NULL;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	if (changed) {
		okvm_log(OKVM_LOG_NOTICE, "serve: console %s %s", k->tty,
			 port ? "open" : "gone (retrying every second)");
		notify(k);
	}
}

/* Keys and a break for the target. */
static void
flush_input(struct serve_console *k)
{
	uint8_t buf[SERVE_CONSOLE_INPUT];
	pthread_mutex_lock(&k->lock);
	size_t n = k->in_n;
	bool brk = k->brk;
	memcpy(buf, k->in, n);
	k->in_n = 0;
	k->brk = false;
	pthread_mutex_unlock(&k->lock);
	if (brk && okvm_serial_send_break(k->port) == -ENODEV)
		set_port(k, NULL);
	if (n && k->port && okvm_serial_write(k->port, buf, n) == -ENODEV)
		set_port(k, NULL);
	if (n) {
		pthread_mutex_lock(&k->lock);
		k->written += n; /* sent, or lost with the adapter (connected says which) */
		pthread_cond_broadcast(&k->cond);
		pthread_mutex_unlock(&k->lock);
	}
}

static void *
console_thread(void *arg)
{
	struct serve_console *k = arg;
	for (;;) {
		if (!k->port) {
			struct okvm_serial *p;
			if (okvm_serial_open(k->tty, k->baud, &p) == 0) {
				if (k->modem)
					okvm_serial_set_modem_socket(p, k->modem);
				set_port(k, p);
			}
		}
		struct pollfd pf[2] = {
			{ .fd = k->wake, .events = POLLIN },
			{ .fd = k->port ? okvm_serial_fd(k->port) : -1, .events = POLLIN },
		};
		poll(pf, 2, k->port ? -1 : REOPEN_MS);
		uint64_t v;
		if ((pf[0].revents & POLLIN) && read(k->wake, &v, sizeof(v)) < 0)
			okvm_log(OKVM_LOG_DEBUG, "serve: console eventfd: %s", strerror(errno));
		pthread_mutex_lock(&k->lock);
		bool stop = k->stop;
		pthread_mutex_unlock(&k->lock);
		if (stop)
			break;
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t buf[4096];
			ssize_t n = okvm_serial_read(k->port, buf, sizeof(buf));
			if (n > 0)
				append(k, buf, (size_t)n);
			else if (n < 0)
				set_port(k, NULL);
		}
		if (k->port)
			flush_input(k);
	}
	set_port(k, NULL);
	return NULL;
}

void
serve_set_console(struct serve *s, const char *tty, const char *modem, int baud)
{
	struct serve_console *k = xcalloc(1, sizeof(*k));
	k->s = s;
	k->tty = xstrdup(tty);
	k->modem = modem ? xstrdup(modem) : NULL;
	k->baud = baud;
	k->wake = -1;
	atomic_init(&k->refs, 1);
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&k->port_lock, NULL);
	s->console = k;
}

void
serve_console_start(struct serve *s)
{
	struct serve_console *k = s->console;
	if (!k || k->running)
		return;
	/* open it now, so the first request after "serving on" finds the adapter open */
	struct okvm_serial *p;
	if (okvm_serial_open(k->tty, k->baud, &p) == 0) {
		if (k->modem)
			okvm_serial_set_modem_socket(p, k->modem);
		set_port(k, p);
	}
	k->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (k->wake >= 0 && thread_start(&k->thread, "okvm-console", console_thread, k) == 0)
		k->running = true;
	else
		okvm_log(OKVM_LOG_ERROR, "serve: cannot start the console thread");
}

static void
wake(struct serve_console *k)
{
	uint64_t one = 1;
	if (write(k->wake, &one, sizeof(one)) < 0)
		okvm_log(OKVM_LOG_DEBUG, "serve: console eventfd: %s", strerror(errno));
}

static void
console_unref(struct serve_console *k)
{
	if (atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	pthread_mutex_destroy(&k->port_lock);
	free(k->tty);
	free(k->modem);
	free(k);
}

void
serve_console_free(struct serve *s)
{
	struct serve_console *k = s->console;
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	k->gone = true; /* MCP readers: -ENODEV from now on, and no more wakes */
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	if (k->running) {
		wake(k);
		pthread_join(k->thread, NULL);
	}
	if (k->wake >= 0)
		close(k->wake);
	k->wake = -1;
	s->console = NULL;
	console_unref(k);
}

/* ---- MCP's readers (any thread) ---- */

struct reader {
	struct serve_console *k;
	uint64_t pos; /* the next byte of the stream this reader gets */
};

static ssize_t
reader_read(void *ud, uint8_t *buf, size_t n)
{
	struct reader *r = ud;
	struct serve_console *k = r->k;
	pthread_mutex_lock(&k->lock);
	uint64_t oldest = k->total > SERVE_CONSOLE_SCROLLBACK ? k->total - SERVE_CONSOLE_SCROLLBACK
							      : 0;
	if (r->pos < oldest)
		r->pos = oldest; /* fell out of the ring while nobody waited: skipped */
	size_t m = (size_t)(k->total - r->pos);
	if (m > n)
		m = n;
	for (size_t i = 0; i < m; i++)
		buf[i] = k->ring[(r->pos + i) % SERVE_CONSOLE_SCROLLBACK];
	r->pos += m;
	bool gone = k->gone || !k->connected;
	pthread_mutex_unlock(&k->lock);
	return !m && gone ? -ENODEV : (ssize_t)m;
}

static void
deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void
reader_wait(void *ud, int ms)
{
	struct reader *r = ud;
	struct serve_console *k = r->k;
	struct timespec ts;
	deadline(&ts, ms);
	pthread_mutex_lock(&k->lock);
	if (k->total == r->pos && k->connected && !k->gone)
		pthread_cond_timedwait(&k->cond, &k->lock, &ts);
	pthread_mutex_unlock(&k->lock);
}

static int
reader_send(void *ud, const void *p, size_t len)
{
	struct serve_console *k = ((struct reader *)ud)->k;
	const uint8_t *b = p;
	size_t done = 0;
	int rc = 0;
	struct timespec ts;
	deadline(&ts, SEND_STALL_MS);
	pthread_mutex_lock(&k->lock);
	while (!rc && (done < len || k->written < k->queued)) {
		if (k->gone || !k->connected) {
			rc = -ENODEV;
			break;
		}
		size_t room = SERVE_CONSOLE_INPUT - k->in_n, m = len - done;
		if (m && room) {
			m = m < room ? m : room;
			memcpy(k->in + k->in_n, b + done, m);
			k->in_n += m;
			k->queued += m;
			done += m;
			wake(k); /* under the lock: the eventfd is open while gone is false */
			deadline(&ts, SEND_STALL_MS);
			continue;
		}
		if (pthread_cond_timedwait(&k->cond, &k->lock, &ts) == ETIMEDOUT)
			rc = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}

static void
reader_close(void *ud)
{
	struct reader *r = ud;
	console_unref(r->k);
	free(r);
}

static const struct auto_console_ops reader_ops = {
	.read = reader_read,
	.wait = reader_wait,
	.send = reader_send,
	.close = reader_close,
};

struct auto_console *
serve_console_auto(struct serve *s)
{
	struct serve_console *k = s->console;
	if (!k)
		return NULL;
	struct reader *r = xcalloc(1, sizeof(*r));
	r->k = k;
	atomic_fetch_add(&k->refs, 1);
	pthread_mutex_lock(&k->lock);
	r->pos = k->total; /* from now on, as `okvm mcp`'s console from its open */
	pthread_mutex_unlock(&k->lock);
	return auto_console_new(&reader_ops, r, k->tty);
}

struct okvm_serial *
serve_console_borrow(struct serve *s)
{
	struct serve_console *k = s->console;
	if (!k)
		return NULL;
	pthread_mutex_lock(&k->port_lock);
	if (!k->port)
		pthread_mutex_unlock(&k->port_lock);
	return k->port;
}

void
serve_console_return(struct serve *s)
{
	pthread_mutex_unlock(&s->console->port_lock);
}

/* ---- WebSocket /api/console (service thread) ---- */

static void
hello(struct conn *c)
{
	struct serve_console *k = c->s->console;
	cJSON *o = cJSON_CreateObject();
	pthread_mutex_lock(&k->lock);
	cJSON_AddStringToObject(o, "type", "console");
	cJSON_AddStringToObject(o, "tty", k->tty);
	cJSON_AddBoolToObject(o, "connected", k->connected);
	cJSON_AddBoolToObject(o, "writer", k->writer == c->id);
	cJSON_AddBoolToObject(o, "writer_present", k->writer != 0);
	cJSON_AddNumberToObject(o, "viewers", k->viewers);
	cJSON_AddNumberToObject(o, "baud", k->baud);
	pthread_mutex_unlock(&k->lock);
	if (c->con.lost)
		cJSON_AddNumberToObject(o, "lost", (double)c->con.lost);
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	snprintf(c->con.ctl, sizeof(c->con.ctl), "%s", txt);
	free(txt);
	c->con.ctl_dirty = true;
	lws_callback_on_writable(c->wsi);
}

static void
hello_all(struct serve *s)
{
	for (struct conn *c = s->consoles; c; c = c->next)
		hello(c);
}

bool
console_uri(struct lws *wsi)
{
	char uri[32];
	return lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) > 0 &&
	       !strcmp(uri, "/api/console");
}

int
console_established(struct conn *c)
{
	struct serve *s = c->s;
	struct serve_console *k = s->console;
	if (!k)
		return -1;
	const struct session *se = auth_required(s) ? auth_check_request(s, c->wsi) : NULL;
	if (auth_required(s) && !se)
		return -1;
	c->role = se ? se->role : SERVE_ROLE_ADMIN;
	guard_request(s, c->wsi, true);
	serve_list_add(&s->consoles, c);
	pthread_mutex_lock(&k->lock);
	k->viewers++;
	/* the first who may type becomes the writer; the others watch until they take it */
	if (!k->writer && c->role >= SERVE_ROLE_OPERATOR)
		k->writer = c->id;
	c->con.sent = k->total > SERVE_CONSOLE_SCROLLBACK ? k->total - SERVE_CONSOLE_SCROLLBACK : 0;
	pthread_mutex_unlock(&k->lock);
	okvm_log(OKVM_LOG_INFO, "serve: console viewer %u from %s", c->id, c->peer);
	hello_all(s);
	return 0;
}

void
console_closed(struct conn *c)
{
	struct serve_console *k = c->s->console;
	serve_list_del(&c->s->consoles, c);
	free(c->con.rx);
	c->con.rx = NULL;
	if (!k)
		return; /* the server is going: the console went first */
	pthread_mutex_lock(&k->lock);
	k->viewers--;
	if (k->writer == c->id)
		k->writer = 0;
	pthread_mutex_unlock(&k->lock);
	hello_all(c->s);
}

static void
console_error(struct conn *c, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "error");
	cJSON_AddStringToObject(o, "error", msg);
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	snprintf(c->con.ctl, sizeof(c->con.ctl), "%s", txt);
	free(txt);
	c->con.ctl_dirty = true;
	lws_callback_on_writable(c->wsi);
}

/* {"type":"in","data":"..."}, {"type":"take"}, {"type":"break"} */
static void
console_message(struct conn *c, const char *text, size_t len)
{
	struct serve_console *k = c->s->console;
	cJSON *o = cJSON_ParseWithLength(text, len);
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
	if (!type) {
		console_error(c, "console: send {\"type\":\"in\",\"data\":\"...\"}, take or break");
	} else if (c->role < SERVE_ROLE_OPERATOR) {
		console_error(c, "console: typing needs the role operator");
	} else if (!strcmp(type, "take")) {
		pthread_mutex_lock(&k->lock);
		k->writer = c->id;
		pthread_mutex_unlock(&k->lock);
		okvm_log(OKVM_LOG_NOTICE, "audit: console writer is now client %u (%s)", c->id,
			 c->peer);
		hello_all(c->s);
	} else if (strcmp(type, "in") && strcmp(type, "break")) {
		console_error(c, "console: message types are in, take and break");
	} else {
		const char *data = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(o, "data"));
		size_t n = data ? strlen(data) : 0;
		pthread_mutex_lock(&k->lock);
		const char *err = k->writer != c->id
					  ? "console: you are a viewer; take the console "
					    "to type (one writer at a time)"
				  : !k->connected ? "console: the adapter is not connected"
				  : k->in_n + n > SERVE_CONSOLE_INPUT
					  ? "console: typing too fast; dropped"
					  : NULL;
		if (!err && !strcmp(type, "break"))
			k->brk = true;
		else if (!err && n) {
			memcpy(k->in + k->in_n, data, n);
			k->in_n += n;
			k->queued += n;
		}
		pthread_mutex_unlock(&k->lock);
		if (err)
			console_error(c, err);
		else
			wake(k);
	}
	cJSON_Delete(o);
}

int
console_receive(struct conn *c, const void *in, size_t len)
{
	if (c->con.rx_len + len > SERVE_MAX_WS_MSG)
		return -1;
	c->con.rx = xrealloc(c->con.rx, c->con.rx_len + len + 1);
	memcpy(c->con.rx + c->con.rx_len, in, len);
	c->con.rx_len += len;
	if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi))
		return 0;
	if (!lws_frame_is_binary(c->wsi))
		console_message(c, c->con.rx, c->con.rx_len);
	c->con.rx_len = 0;
	return 0;
}

int
console_writeable(struct conn *c)
{
	struct serve_console *k = c->s->console;
	unsigned char buf[LWS_PRE + SERVE_CONSOLE_CHUNK];
	if (c->con.ctl_dirty) {
		size_t n = strlen(c->con.ctl);
		memcpy(buf + LWS_PRE, c->con.ctl, n);
		c->con.ctl_dirty = false;
		if (lws_write(c->wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n)
			return -1;
		lws_callback_on_writable(c->wsi);
		return 0;
	}
	pthread_mutex_lock(&k->lock);
	uint64_t oldest = k->total > SERVE_CONSOLE_SCROLLBACK ? k->total - SERVE_CONSOLE_SCROLLBACK
							      : 0;
	bool skipped = c->con.sent < oldest;
	if (skipped) {
		c->con.lost += oldest - c->con.sent; /* it did not read: it misses what fell out */
		c->con.sent = oldest;
	}
	size_t n = (size_t)(k->total - c->con.sent);
	if (n > SERVE_CONSOLE_CHUNK)
		n = SERVE_CONSOLE_CHUNK;
	for (size_t i = 0; i < n; i++)
		buf[LWS_PRE + i] = k->ring[(c->con.sent + i) % SERVE_CONSOLE_SCROLLBACK];
	c->con.sent += n;
	bool more = c->con.sent < k->total;
	pthread_mutex_unlock(&k->lock);
	if (skipped)
		hello(c); /* says how much it lost, after this piece */
	if (n && lws_write(c->wsi, buf + LWS_PRE, n, LWS_WRITE_BINARY) < (int)n)
		return -1;
	if (more)
		lws_callback_on_writable(c->wsi);
	return 0;
}

void
console_drain(struct serve *s)
{
	struct serve_console *k = s->console;
	if (!k)
		return;
	uint64_t n = atomic_load(&k->notifies);
	if (n == k->seen)
		return;
	k->seen = n;
	pthread_mutex_lock(&k->lock);
	bool connected = k->connected;
	pthread_mutex_unlock(&k->lock);
	for (struct conn *c = s->consoles; c; c = c->next) {
		if (c->con.was_connected != connected) {
			c->con.was_connected = connected;
			hello(c);
		}
		lws_callback_on_writable(c->wsi);
	}
}
