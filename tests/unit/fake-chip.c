/*
 * DESIGN: a scripted fake CH9329 on a pty master (see fake-chip.h). It decodes nothing on its
 * own beyond frame lengths (5-byte header + LEN + sum), so tests compare the library's exact
 * bytes. Time-outs are generous (the machine is loaded); a wrong byte ends the script with a
 * message naming the step.
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "fake-chip.h"

int
fake_chip_open(struct fake_chip *c)
{
	memset(c, 0, sizeof(*c));
	/* keep a slave fd open: with none, the master reads EIO before the library opens it */
	if (openpty(&c->master, &c->slave_fd, c->slave, NULL, NULL) < 0)
		return -errno;
	c->dgram_fd = -1;
	return 0;
}

void
fake_chip_unplug(struct fake_chip *c)
{
	if (c->master >= 0)
		close(c->master);
	c->master = -1;
}

void
fake_chip_close(struct fake_chip *c)
{
	fake_chip_unplug(c);
	if (c->slave_fd >= 0)
		close(c->slave_fd);
	c->slave_fd = -1;
}

static bool
read_exact(int fd, uint8_t *p, size_t n, int timeout_ms)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return false;
		ssize_t r = read(fd, p + got, n - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

size_t
fake_chip_read_frame(struct fake_chip *c, uint8_t *buf, size_t cap, int timeout_ms)
{
	if (cap < 70 || !read_exact(c->master, buf, 5, timeout_ms))
		return 0;
	size_t n = 5 + (size_t)buf[4] + 1;
	if (n > cap || !read_exact(c->master, buf + 5, n - 5, timeout_ms))
		return 0;
	return n;
}

bool
fake_chip_has_input(struct fake_chip *c, int ms)
{
	struct pollfd pfd = { .fd = c->master, .events = POLLIN };
	return poll(&pfd, 1, ms) > 0 && (pfd.revents & POLLIN);
}

void
fake_chip_write(struct fake_chip *c, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(c->master, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

int
fake_chip_baud(struct fake_chip *c)
{
	struct termios t;
	if (tcgetattr(c->master, &t) < 0)
		return 0;
	switch (cfgetospeed(&t)) {
	case B9600: return 9600;
	case B115200: return 115200;
	case B57600: return 57600;
	case B19200: return 19200;
	default: return 0;
	}
}

size_t
fake_frame(uint8_t *out, uint8_t cmd, const uint8_t *data, uint8_t len)
{
	out[0] = 0x57;
	out[1] = 0xAB;
	out[2] = 0x00;
	out[3] = cmd;
	out[4] = len;
	if (len)
		memcpy(out + 5, data, len);
	unsigned sum = 0;
	for (size_t i = 0; i < 5u + len; i++)
		sum += out[i];
	out[5 + len] = (uint8_t)sum;
	return 6u + len;
}

size_t
fake_ack(uint8_t *out, uint8_t cmd)
{
	uint8_t ok = 0;
	return fake_frame(out, cmd | 0x80, &ok, 1);
}

static void
hex(char *out, size_t cap, const uint8_t *p, size_t n)
{
	size_t o = 0;
	out[0] = 0;
	for (size_t i = 0; i < n && o + 4 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%02X ", p[i]);
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool
run_expect(struct fake_chip *c, const struct fake_step *s, size_t i)
{
	uint8_t buf[80];
	size_t n = fake_chip_read_frame(c, buf, sizeof(buf), 5000);
	char got[256], want[256];
	hex(got, sizeof(got), buf, n);
	hex(want, sizeof(want), s->bytes, s->len);
	if (n != s->len || memcmp(buf, s->bytes, n)) {
		snprintf(c->err, sizeof(c->err), "step %zu: expected [%s], got [%s]", i, want, got);
		return false;
	}
	int baud = fake_chip_baud(c);
	if (s->baud && baud != s->baud) {
		snprintf(c->err, sizeof(c->err), "step %zu: [%s] at %d baud, expected %d", i, got,
			 baud, s->baud);
		return false;
	}
	return true;
}

static bool
run_dgram(struct fake_chip *c, const struct fake_step *s, size_t i)
{
	struct pollfd pfd = { .fd = c->dgram_fd, .events = POLLIN };
	char buf[32] = { 0 };
	if (poll(&pfd, 1, 10000) <= 0 || recv(c->dgram_fd, buf, sizeof(buf) - 1, 0) <= 0) {
		snprintf(c->err, sizeof(c->err), "step %zu: no datagram (want %s)", i, s->text);
		return false;
	}
	if (c->ndgram < 8)
		c->dgram_ns[c->ndgram++] = mono_ns();
	if (strcmp(buf, s->text)) {
		snprintf(c->err, sizeof(c->err), "step %zu: datagram '%s', want '%s'", i, buf,
			 s->text);
		return false;
	}
	return true;
}

static bool
run_quiet(struct fake_chip *c, const struct fake_step *s, size_t i)
{
	if (!fake_chip_has_input(c, (int)s->len))
		return true;
	uint8_t buf[80];
	char got[256];
	hex(got, sizeof(got), buf, fake_chip_read_frame(c, buf, sizeof(buf), 1000));
	snprintf(c->err, sizeof(c->err), "step %zu: expected %zu ms of silence, got [%s]", i,
		 s->len, got);
	return false;
}

static void *
script(void *arg)
{
	struct fake_chip *c = arg;
	for (size_t i = 0; i < c->nsteps; i++) {
		const struct fake_step *s = &c->steps[i];
		bool ok = true;
		if (s->kind == FAKE_EXPECT)
			ok = run_expect(c, s, i);
		else if (s->kind == FAKE_REPLY)
			fake_chip_write(c, s->bytes, s->len);
		else if (s->kind == FAKE_QUIET)
			ok = run_quiet(c, s, i);
		else
			ok = run_dgram(c, s, i);
		if (!ok)
			return NULL;
		c->done = i + 1;
	}
	return NULL;
}

void
fake_chip_run(struct fake_chip *c, const struct fake_step *steps, size_t n, int dgram_fd)
{
	c->steps = steps;
	c->nsteps = n;
	c->done = 0;
	c->err[0] = 0;
	c->ndgram = 0;
	c->dgram_fd = dgram_fd;
	pthread_create(&c->thread, NULL, script, c);
}

size_t
fake_chip_join(struct fake_chip *c)
{
	pthread_join(c->thread, NULL);
	if (c->err[0])
		fprintf(stderr, "fake chip: %s\n", c->err);
	return c->done;
}

static void *
auto_main(void *arg)
{
	struct fake_auto *a = arg;
	uint8_t head[5], rest[70], out[20];
	while (!atomic_load(&a->stop)) {
		struct pollfd pfd = { .fd = a->chip->master, .events = POLLIN };
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		uint64_t t = mono_ns();
		if (!read_exact(a->chip->master, head, 5, 1000))
			return NULL;
		if (head[0] != 0x57 || head[1] != 0xAB ||
		    !read_exact(a->chip->master, rest, (size_t)head[4] + 1, 1000))
			continue;
		pthread_mutex_lock(&a->mu);
		if (a->n < a->cap) {
			memcpy(a->frames[a->n], head, 5);
			memcpy(a->frames[a->n] + 5, rest, 11);
			a->first_byte_ns[a->n++] = t;
		}
		pthread_mutex_unlock(&a->mu);
		if (head[3] == 0x01) {
			uint8_t d[8] = { 0x38, 0x01, 0x00 };
			fake_chip_write(a->chip, out, fake_frame(out, 0x81, d, 8));
		} else {
			fake_chip_write(a->chip, out, fake_ack(out, head[3]));
		}
	}
	return NULL;
}

void
fake_auto_start(struct fake_auto *a, struct fake_chip *c, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->chip = c;
	a->cap = cap;
	a->frames = calloc(cap, 16);
	a->first_byte_ns = calloc(cap, sizeof(uint64_t));
	pthread_mutex_init(&a->mu, NULL);
	pthread_create(&a->thread, NULL, auto_main, a);
}

size_t
fake_auto_count(struct fake_auto *a)
{
	pthread_mutex_lock(&a->mu);
	size_t n = a->n;
	pthread_mutex_unlock(&a->mu);
	return n;
}

void
fake_auto_stop(struct fake_auto *a)
{
	atomic_store(&a->stop, true);
	pthread_join(a->thread, NULL);
	pthread_mutex_destroy(&a->mu);
	free(a->frames);
	free(a->first_byte_ns);
}
