/*
 * DESIGN: console.h. A buffer of what the target printed and no wait has consumed yet; a wait
 * reads the port in 20 ms steps (poll), appends, and looks for the text from where a match
 * could still start. The buffer keeps at most CONSOLE_KEEP bytes: older ones are dropped, but
 * never the last len(text) - 1, so a match is not cut in two. The bytes come from the port, or
 * from the owner's operations (auto_console_new: okvm serve's console thread reads the port).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auto/console.h"
#include "lib/xalloc.h"
#include "okvm/serial.h"

#define CONSOLE_KEEP (256u << 10) /* unconsumed output kept for a wait */
#define CONSOLE_STEP_MS 20

struct auto_console {
	struct okvm_serial *port; /* NULL: ops */
	const struct auto_console_ops *ops;
	void *ud;
	char *path;
	pthread_mutex_t lock;
	char *buf;
	size_t len;
};

int
auto_console_open(const char *tty, int baud, const char *modem, struct auto_console **out)
{
	struct okvm_serial *p;
	int rc = okvm_serial_open(tty, baud, &p);
	if (rc < 0)
		return rc;
	if (modem)
		okvm_serial_set_modem_socket(p, modem);
	struct auto_console *c = xcalloc(1, sizeof(*c));
	c->port = p;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

struct auto_console *
auto_console_new(const struct auto_console_ops *ops, void *ud, const char *path)
{
	struct auto_console *c = xcalloc(1, sizeof(*c));
	c->ops = ops;
	c->ud = ud;
	c->path = xstrdup(path);
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void
auto_console_close(struct auto_console *c)
{
	if (!c)
		return;
	if (c->ops)
		c->ops->close(c->ud);
	free(c->path);
	okvm_serial_close(c->port);
	pthread_mutex_destroy(&c->lock);
	free(c->buf);
	free(c);
}

struct okvm_serial *
auto_console_port(struct auto_console *c)
{
	return c->port;
}

const char *
auto_console_path(const struct auto_console *c)
{
	return c->port ? okvm_serial_path(c->port) : c->path;
}

int
auto_console_send(struct auto_console *c, const void *p, size_t len)
{
	pthread_mutex_lock(&c->lock);
	ssize_t n = !len     ? 0
		    : c->ops ? c->ops->send(c->ud, p, len)
			     : okvm_serial_write(c->port, p, len);
	pthread_mutex_unlock(&c->lock);
	return n < 0 ? (int)n : 0;
}

static double
mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read what is there into the buffer (lock held). 0 or -ENODEV. */
static int
drain(struct auto_console *c)
{
	for (;;) {
		uint8_t tmp[4096];
		ssize_t n = c->ops ? c->ops->read(c->ud, tmp, sizeof(tmp))
				   : okvm_serial_read(c->port, tmp, sizeof(tmp));
		if (n < 0)
			return (int)n;
		if (!n)
			return 0;
		c->buf = xrealloc(c->buf, c->len + (size_t)n + 1);
		memcpy(c->buf + c->len, tmp, (size_t)n);
		c->len += (size_t)n;
	}
}

/* The text in the buffer: consume through the end of the match. */
static bool
match(struct auto_console *c, const char *text, size_t tl)
{
	if (c->len >= tl)
		for (size_t i = 0; i + tl <= c->len; i++)
			if (!memcmp(c->buf + i, text, tl)) {
				memmove(c->buf, c->buf + i + tl, c->len - i - tl);
				c->len -= i + tl;
				return true;
			}
	if (c->len > CONSOLE_KEEP) { /* keep the tail a match could start in */
		size_t keep = CONSOLE_KEEP > tl ? CONSOLE_KEEP : tl;
		memmove(c->buf, c->buf + c->len - keep, keep);
		c->len = keep;
	}
	return false;
}

int
auto_console_wait(struct auto_console *c, const char *text, double timeout_s,
		  const atomic_bool *cancel)
{
	size_t tl = strlen(text);
	double until = mono_s() + timeout_s;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		int rc = drain(c);
		bool hit = match(c, text, tl);
		pthread_mutex_unlock(&c->lock);
		if (hit)
			return 0;
		if (rc < 0)
			return rc;
		if (cancel && atomic_load(cancel))
			return -ECANCELED;
		double left = until - mono_s();
		if (left <= 0)
			return -ETIMEDOUT;
		int ms = left * 1000 < CONSOLE_STEP_MS ? (int)(left * 1000) + 1 : CONSOLE_STEP_MS;
		if (c->ops) {
			c->ops->wait(c->ud, ms);
			continue;
		}
		struct pollfd pf = { .fd = okvm_serial_fd(c->port), .events = POLLIN };
		poll(&pf, 1, ms);
	}
}
