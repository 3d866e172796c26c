/*
 * The virtual unit, driven as a host would: through the slave side of its pty with raw termios
 * (no okvm serial or link code), byte for byte against docs/hardware.md 2.15, plus the target's
 * poll model and events. Waits use poll() with timeouts; the only fixed waits are the ones the
 * protocol is about (a gap longer than 3 ms, RTS held for more than 3 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "emu/emu.h"
#include "okvm/ch9329.h"

#define MAX_EVENTS 256
#define REPLY_MS 1000 /* generous: the machine is loaded */

struct fx {
	struct emu *emu;
	int fd; /* the host's end: the pty slave */
	int baud;
	pthread_mutex_t lock;
	char *events[MAX_EVENTS];
	int n_events;
	int notify[2]; /* one byte per event */
	int cursor;    /* wait_for() looks at events from here on */
	char tmp[64];
};

static void
record(const struct emu_event *ev, void *ud)
{
	struct fx *fx = ud;
	char *s = emu_event_json(ev);
	pthread_mutex_lock(&fx->lock);
	if (fx->n_events < MAX_EVENTS)
		fx->events[fx->n_events++] = s;
	else
		free(s);
	pthread_mutex_unlock(&fx->lock);
	if (write(fx->notify[1], "e", 1) != 1)
		abort();
}

static speed_t
speed(int baud)
{
	return baud == 115200 ? B115200 : baud == 9600 ? B9600 : B1200;
}

static void
host_set_baud(struct fx *fx, int baud)
{
	struct termios t;
	assert_int_equal(tcgetattr(fx->fd, &t), 0);
	cfmakeraw(&t);
	cfsetspeed(&t, speed(baud));
	assert_int_equal(tcsetattr(fx->fd, TCSANOW, &t), 0);
	tcflush(fx->fd, TCIOFLUSH);
	fx->baud = baud;
}

static struct fx *
fx_start(struct emu_config *cfg)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	pthread_mutex_init(&fx->lock, NULL);
	assert_int_equal(pipe2(fx->notify, O_NONBLOCK | O_CLOEXEC), 0);
	fx->emu = emu_new(cfg);
	emu_add_listener(fx->emu, record, fx);
	assert_int_equal(emu_start(fx->emu), 0);
	fx->fd = open(emu_tty_path(fx->emu), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	assert_true(fx->fd >= 0);
	host_set_baud(fx, cfg->baud);
	return fx;
}

static struct fx *
fx_default(int baud, int poll_ms)
{
	struct emu_config cfg;
	emu_config_init(&cfg);
	cfg.baud = baud;
	cfg.poll_ms = poll_ms;
	return fx_start(&cfg);
}

static void
fx_free(struct fx *fx)
{
	close(fx->fd);
	emu_free(fx->emu);
	for (int i = 0; i < fx->n_events; i++)
		free(fx->events[i]);
	close(fx->notify[0]);
	close(fx->notify[1]);
	pthread_mutex_destroy(&fx->lock);
	free(fx);
}

static void
send_bytes(struct fx *fx, const uint8_t *p, size_t n)
{
	assert_int_equal(write(fx->fd, p, n), (ssize_t)n);
}

#define SEND(fx, ...)                                        \
	do {                                                 \
		static const uint8_t b_[] = { __VA_ARGS__ }; \
		send_bytes(fx, b_, sizeof(b_));              \
	} while (0)

/* Read up to n bytes, waiting at most timeout_ms overall. */
static size_t
read_for(struct fx *fx, uint8_t *buf, size_t n, int timeout_ms)
{
	size_t got = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < n) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= timeout_ms)
			break;
		struct pollfd p = { .fd = fx->fd, .events = POLLIN };
		if (poll(&p, 1, (int)(timeout_ms - el)) <= 0)
			break;
		ssize_t r = read(fx->fd, buf + got, n - got);
		if (r > 0)
			got += (size_t)r;
	}
	return got;
}

static void
expect_bytes(struct fx *fx, const uint8_t *want, size_t n)
{
	uint8_t got[128];
	size_t k = read_for(fx, got, n, REPLY_MS);
	if (k != n || memcmp(got, want, n)) {
		fprintf(stderr, "want:");
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %02X", want[i]);
		fprintf(stderr, "\ngot: ");
		for (size_t i = 0; i < k; i++)
			fprintf(stderr, " %02X", got[i]);
		fprintf(stderr, "\n");
		fail();
	}
}

#define EXPECT(fx, ...)                                      \
	do {                                                 \
		static const uint8_t w_[] = { __VA_ARGS__ }; \
		expect_bytes(fx, w_, sizeof(w_));            \
	} while (0)

/* Nothing at all arrives within ms. */
static void
expect_silence(struct fx *fx, int ms)
{
	uint8_t b[64];
	size_t k = read_for(fx, b, sizeof(b), ms);
	if (k)
		fprintf(stderr, "unexpected %zu bytes, first %02X\n", k, b[0]);
	assert_int_equal(k, 0);
}

/* Wait until at least n events have been recorded. */
static void
wait_events(struct fx *fx, int n, int timeout_ms)
{
	for (;;) {
		pthread_mutex_lock(&fx->lock);
		int have = fx->n_events;
		pthread_mutex_unlock(&fx->lock);
		if (have >= n)
			return;
		struct pollfd p = { .fd = fx->notify[0], .events = POLLIN };
		if (poll(&p, 1, timeout_ms) <= 0) {
			fprintf(stderr, "timed out waiting for event %d (have %d)\n", n, have);
			fail();
		}
		char c[64];
		if (read(fx->notify[0], c, sizeof(c)) < 0)
			continue;
	}
}

/* Wait for an event equal to json, after the one the previous wait_for() found; @return its
 * index. */
static int
wait_for(struct fx *fx, const char *json)
{
	for (int i = fx->cursor;; i++) {
		wait_events(fx, i + 1, REPLY_MS);
		pthread_mutex_lock(&fx->lock);
		bool eq = !strcmp(fx->events[i], json);
		pthread_mutex_unlock(&fx->lock);
		if (eq) {
			fx->cursor = i + 1;
			return i;
		}
	}
}

static int
count_events(struct fx *fx, const char *json)
{
	int n = 0;
	pthread_mutex_lock(&fx->lock);
	for (int i = 0; i < fx->n_events; i++)
		n += !strcmp(fx->events[i], json);
	pthread_mutex_unlock(&fx->lock);
	return n;
}

static void
send_frame(struct fx *fx, const struct okvm_ch9329_frame *f)
{
	uint8_t buf[OKVM_CH9329_MAX_FRAME];
	size_t n = okvm_ch9329_encode(f, buf, sizeof(buf));
	send_bytes(fx, buf, n);
}

static void
set_baud_params(struct fx *fx, uint32_t baud)
{
	struct okvm_ch9329_params p;
	struct okvm_ch9329_frame f;
	okvm_ch9329_params_factory(&p);
	p.baud = baud;
	okvm_ch9329_build_set_params(&f, &p);
	send_frame(fx, &f);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x89, 0x01, 0x00, 0x8C);
}

#define GET_INFO 0x57, 0xAB, 0x00, 0x01, 0x00, 0x03
#define INFO_REPLY \
	0x57, 0xAB, 0x00, 0x81, 0x08, 0x38, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC4

/* ---- hardware.md 2.15, row by row ---- */

/* belief: GET_INFO answered; version in DATA[0] (the default the virtual chip plays) */
static void
test_get_info(void **state)
{
	struct fx *fx = fx_default(9600, 0);
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY); /* the real capture of hardware.md 2.4 */
	expect_silence(fx, 50);
	fx_free(fx);
}

/* belief: ACKs sent (the default the virtual chip plays) */
static void
test_hid_acks(void **state)
{
	/* Each report waits for the target's poll before the next (one report per endpoint). */
	struct fx *fx = fx_default(115200, 0);
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x10);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	wait_for(fx, "{\"type\":\"text\",\"text\":\"a\"}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x03, 0x04, 0x02, 0x04, 0x00, 0x00, 0x0F);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x83, 0x01, 0x00, 0x86);
	wait_for(fx, "{\"type\":\"media\",\"id\":2,\"bits\":[4,0,0]}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x04, 0x07, 0x02, 0x00, 0x40, 0x01, 0x15, 0x02, 0x00, 0x67);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x84, 0x01, 0x00, 0x87);
	wait_for(fx, "{\"type\":\"mouse\",\"x\":320,\"y\":533,\"buttons\":0,\"wheel\":0}");
	/* Relative: 10 right, 10 up from there. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x05, 0x05, 0x01, 0x00, 0x0A, 0xF6, 0x00, 0x0D);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x85, 0x01, 0x00, 0x88);
	wait_for(fx, "{\"type\":\"mouse\",\"x\":330,\"y\":523,\"buttons\":0,\"wheel\":0}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x06, 0x02, 0x01, 0x02, 0x0D);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x86, 0x01, 0x00, 0x89);
	expect_silence(fx, 50);
	assert_int_equal(count_events(fx, "{\"type\":\"dropped\",\"report\":\"mouse\"}"), 0);
	fx_free(fx);
}

/* belief: GET_PARA_CFG 50 bytes; factory 9600 */
static void
test_get_params_factory(void **state)
{
	struct fx *fx = fx_default(9600, 0);
	SEND(fx, 0x57, 0xAB, 0x00, 0x08, 0x00, 0x0A);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x88, 0x32, 0x82, 0x80, 0x00, 0x00, 0x00, 0x25, 0x80, 0x08,
	       0x00, 0x00, 0x03, 0x86, 0x1A, 0x29, 0xE1, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0D, 0, 0,
	       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	       0x26);
	fx_free(fx);
}

static void
test_set_params_apply_after_reset(void **state)
{
	struct fx *fx = fx_default(9600, 0);
	set_baud_params(fx, 115200);
	/* Stored: GET_PARA_CFG is now the real reply of hardware.md 2.8 (QT issue #141). */
	SEND(fx, 0x57, 0xAB, 0x00, 0x08, 0x00, 0x0A);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x88, 0x32, 0x82, 0x80, 0x00, 0x00, 0x01, 0xC2, 0x00, 0x08,
	       0x00, 0x00, 0x03, 0x86, 0x1A, 0x29, 0xE1, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0D, 0, 0,
	       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	       0x44);
	/* Not applied yet: still 9600. */
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	/* RESET answers at the old baud, then the chip runs at the new one. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x0F, 0x00, 0x11);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8F, 0x01, 0x00, 0x92);
	wait_for(fx, "{\"type\":\"usb\",\"connected\":false}"); /* target re-enumerates */
	wait_for(fx, "{\"type\":\"usb\",\"connected\":true}");
	SEND(fx, GET_INFO);
	expect_silence(fx, 200);
	host_set_baud(fx, 115200);
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	fx_free(fx);
}

static void
test_bad_params_rejected(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	struct okvm_ch9329_params p;
	struct okvm_ch9329_frame f;
	okvm_ch9329_params_factory(&p);
	p.baud = 12345; /* not a UART speed the chip offers */
	okvm_ch9329_build_set_params(&f, &p);
	send_frame(fx, &f);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xC9, 0x01, 0xE5, 0xB1);
	okvm_ch9329_params_factory(&p);
	p.mode = 0x04;
	okvm_ch9329_build_set_params(&f, &p);
	send_frame(fx, &f);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xC9, 0x01, 0xE5, 0xB1);
	fx_free(fx);
}

static void
test_usb_strings(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	SEND(fx, 0x57, 0xAB, 0x00, 0x0A, 0x01, 0x00, 0x0D);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8A, 0x05, 0x00, 0x03, 'W', 'C', 'H', 0x76);
	SEND(fx, 0x57, 0xAB, 0x00, 0x0A, 0x01, 0x01, 0x0E);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8A, 0x18, 0x01, 0x16, 'W', 'C', 'H', ' ', 'U', 'A', 'R', 'T',
	       ' ', 'T', 'O', ' ', 'K', 'B', '-', 'M', 'S', '_', 'V', '1', '.', '8', 0x82);
	SEND(fx, 0x57, 0xAB, 0x00, 0x0A, 0x01, 0x02, 0x0F);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8A, 0x03, 0x02, 0x01, '0', 0xC2);
	SEND(fx, 0x57, 0xAB, 0x00, 0x0B, 0x06, 0x01, 0x04, 'o', 'k', 'v', 'm', 0xD5);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8B, 0x01, 0x00, 0x8E);
	SEND(fx, 0x57, 0xAB, 0x00, 0x0A, 0x01, 0x01, 0x0E);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8A, 0x06, 0x01, 0x04, 'o', 'k', 'v', 'm', 0x54);
	/* LEN does not match the string length: parameter error. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x0B, 0x06, 0x01, 0x05, 'o', 'k', 'v', 'm', 0xD6);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xCB, 0x01, 0xE5, 0xB3);
	/* Unknown string type. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x0A, 0x01, 0x03, 0x10);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xCA, 0x01, 0xE5, 0xB2);
	fx_free(fx);
}

/* belief: factory 9600 */
static void
test_set_default_cfg(void **state)
{
	struct fx *fx = fx_default(9600, 0);
	set_baud_params(fx, 115200);
	SEND(fx, 0x57, 0xAB, 0x00, 0x0B, 0x06, 0x01, 0x04, 'o', 'k', 'v', 'm', 0xD5);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8B, 0x01, 0x00, 0x8E);
	SEND(fx, 0x57, 0xAB, 0x00, 0x0C, 0x00, 0x0E);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8C, 0x01, 0x00, 0x8F);
	/* Factory block and strings again. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x08, 0x00, 0x0A);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x88, 0x32, 0x82, 0x80, 0x00, 0x00, 0x00, 0x25, 0x80, 0x08,
	       0x00, 0x00, 0x03, 0x86, 0x1A, 0x29, 0xE1, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0D, 0, 0,
	       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	       0x26);
	SEND(fx, 0x57, 0xAB, 0x00, 0x0A, 0x01, 0x01, 0x0E);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8A, 0x18, 0x01, 0x16, 'W', 'C', 'H', ' ', 'U', 'A', 'R', 'T',
	       ' ', 'T', 'O', ' ', 'K', 'B', '-', 'M', 'S', '_', 'V', '1', '.', '8', 0x82);
	/* The 115200 stored before was replaced by 9600: a RESET keeps the chip at 9600. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x0F, 0x00, 0x11);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8F, 0x01, 0x00, 0x92);
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	fx_free(fx);
}

static void
test_broadcast_no_reply(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	/* Keyboard 'a' to address 0xFF: executed, not answered. */
	SEND(fx, 0x57, 0xAB, 0xFF, 0x02, 0x08, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x0F);
	wait_for(fx, "{\"type\":\"text\",\"text\":\"a\"}");
	SEND(fx, 0x57, 0xAB, 0xFF, 0x01, 0x00, 0x02);
	expect_silence(fx, 100);
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	fx_free(fx);
}

/* belief: ACKs sent (error replies for bad reports) */
static void
test_error_replies(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	/* Bad SUM (GET_INFO with 04). */
	SEND(fx, 0x57, 0xAB, 0x00, 0x01, 0x00, 0x04);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xC1, 0x01, 0xE4, 0xA8);
	/* Unknown command 0x0D. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x0D, 0x00, 0x0F);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xCD, 0x01, 0xE3, 0xB3);
	/* 0x17 is a CH32V208 command; a CH9329 does not know it. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x17, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x1F);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xD7, 0x01, 0xE3, 0xBD);
	/* Keyboard with LEN 7. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x07, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x0F);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xC2, 0x01, 0xE5, 0xAA);
	/* Keyboard with byte 1 non-zero. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x11);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xC2, 0x01, 0xE5, 0xAA);
	/* Absolute mouse with report id 3. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x04, 0x07, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xC4, 0x01, 0xE5, 0xAC);
	/* None of these reached the target. */
	expect_silence(fx, 50);
	assert_int_equal(count_events(fx, "{\"type\":\"text\",\"text\":\"a\"}"), 0);
	fx_free(fx);
}

static void
test_ch32v208_switch(void **state)
{
	struct emu_config cfg;
	emu_config_init(&cfg);
	cfg.baud = 115200;
	cfg.chip = EMU_CHIP_CH32V208;
	struct fx *fx = fx_start(&cfg);
	SEND(fx, 0x57, 0xAB, 0x00, 0x17, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x1F);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x97, 0x01, 0x01, 0x9B);
	wait_for(fx, "{\"type\":\"switch\",\"to\":\"target\"}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x17, 0x05, 0x00, 0x00, 0x00, 0x00, 0x03, 0x21);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x97, 0x01, 0x01, 0x9B);
	fx_free(fx);
}

/* --emu-chip variants (docs/virtual-unit.md "Beliefs and variants"): a CH9329F's 72-byte
 * GET_PARA_CFG; ch32v208-quiet ignores GET_INFO but ACKs reports; back/forward buttons reach the
 * target. */
/* belief: GET_PARA_CFG 50 bytes, GET_INFO answered, 3 mouse buttons: the other ways */
static void
test_chip_variants(void **state)
{
	struct emu_config cfg;
	emu_config_init(&cfg);
	assert_int_equal(emu_config_chip(&cfg, "ch9329x"), -EINVAL);
	assert_int_equal(emu_config_chip(&cfg, "ch9329f"), 0);
	cfg.baud = 115200;
	struct fx *fx = fx_start(&cfg);
	SEND(fx, 0x57, 0xAB, 0x00, 0x08, 0x00, 0x0A);
	uint8_t buf[80];
	assert_int_equal(read_for(fx, buf, 78, 1000), 78);
	assert_int_equal(buf[3], 0x88);
	assert_int_equal(buf[4], 72);
	/* absolute mouse with back + forward held */
	SEND(fx, 0x57, 0xAB, 0x00, 0x04, 0x07, 0x02, 0x18, 0x00, 0x08, 0x00, 0x08, 0x00, 0x37);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x84, 0x01, 0x00, 0x87);
	wait_for(fx, "{\"type\":\"mouse\",\"x\":2048,\"y\":2048,\"buttons\":24,\"wheel\":0}");
	fx_free(fx);

	emu_config_init(&cfg);
	assert_int_equal(emu_config_chip(&cfg, "ch32v208-quiet"), 0);
	assert_int_equal(cfg.baud, 115200);
	fx = fx_start(&cfg);
	SEND(fx, 0x57, 0xAB, 0x00, 0x01, 0x00, 0x03);
	expect_silence(fx, 50);
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0x0C);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	fx_free(fx);
}

/* --emu-strict-gap: two frames back to back are one packet: E4, nothing executed; a frame after
 * 3 ms of idle is fine. */
/* belief: frames cut by LEN, the other way (3 ms idle gap) */
static void
test_strict_gap_packets(void **state)
{
	struct emu_config cfg;
	emu_config_init(&cfg);
	cfg.baud = 115200;
	cfg.strict_gap = true;
	struct fx *fx = fx_start(&cfg);
	SEND(fx, 0x57, 0xAB, 0x00, 0x01, 0x00, 0x03, 0x57, 0xAB, 0x00, 0x01, 0x00, 0x03);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0xC1, 0x01, 0xE4, 0xA8);
	expect_silence(fx, 30);
	SEND(fx, 0x57, 0xAB, 0x00, 0x01, 0x00, 0x03);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x81, 0x08, 0x38, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	       0xC4);
	fx_free(fx);
}

static void
test_mode_and_address_apply_after_reset(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	struct okvm_ch9329_params p;
	struct okvm_ch9329_frame f;
	okvm_ch9329_params_factory(&p);
	p.baud = 115200;
	p.mode = 0x01; /* keyboard only */
	p.addr = 0x05;
	okvm_ch9329_build_set_params(&f, &p);
	send_frame(fx, &f);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x89, 0x01, 0x00, 0x8C);
	/* Before RESET the mouse still reaches the target. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x05, 0x05, 0x01, 0x00, 0x0A, 0xF6, 0x00, 0x0D);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x85, 0x01, 0x00, 0x88);
	wait_for(fx, "{\"type\":\"mouse\",\"x\":2058,\"y\":2038,\"buttons\":0,\"wheel\":0}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x0F, 0x00, 0x11);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8F, 0x01, 0x00, 0x92);
	wait_for(fx, "{\"type\":\"usb\",\"connected\":true}");
	/* Address 5 now: frames to 0x00 are someone else's; replies carry 05. */
	SEND(fx, GET_INFO);
	expect_silence(fx, 100);
	SEND(fx, 0x57, 0xAB, 0x05, 0x01, 0x00, 0x08);
	EXPECT(fx, 0x57, 0xAB, 0x05, 0x81, 0x08, 0x38, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	       0xC9);
	/* Mode 1: the mouse report is acknowledged but the target has no mouse. */
	SEND(fx, 0x57, 0xAB, 0x05, 0x05, 0x05, 0x01, 0x00, 0x0A, 0xF6, 0x00, 0x12);
	EXPECT(fx, 0x57, 0xAB, 0x05, 0x85, 0x01, 0x00, 0x8D);
	wait_for(fx, "{\"type\":\"dropped\",\"report\":\"mouse\"}");
	fx_free(fx);
}

/* ---- the wire ---- */

static void
test_wrong_baud_no_reply(void **state)
{
	struct fx *fx = fx_default(9600, 0);
	host_set_baud(fx, 115200);
	for (int i = 0; i < 3; i++)
		SEND(fx, GET_INFO);
	expect_silence(fx, 300);
	host_set_baud(fx, 9600);
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	fx_free(fx);
}

/* belief: 3 ms idle gap ends a partial frame under either cut (LEN or idle) */
static void
test_gap_discards_partial_frame(void **state)
{
	struct fx *fx = fx_default(9600, 0);
	SEND(fx, 0x57, 0xAB, 0x00);
	expect_silence(fx, 50); /* 50 ms > 3 ms packet interval */
	SEND(fx, 0x01, 0x00, 0x03);
	expect_silence(fx, 200);
	/* A frame written in two parts with no idle line in between is one frame: 50 bytes of
	 * SET_PARA_CFG take 52 ms on the wire at 9600, so the rest follows with no gap. */
	struct okvm_ch9329_params p;
	struct okvm_ch9329_frame f;
	uint8_t buf[OKVM_CH9329_MAX_FRAME];
	okvm_ch9329_params_factory(&p);
	okvm_ch9329_build_set_params(&f, &p);
	size_t n = okvm_ch9329_encode(&f, buf, sizeof(buf));
	send_bytes(fx, buf, 50);
	send_bytes(fx, buf + 50, n - 50);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x89, 0x01, 0x00, 0x8C);
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	fx_free(fx);
}

static void
test_reply_takes_wire_time(void **state)
{
	/* 56 bytes at 1200 baud: 466 ms on the wire. */
	struct emu_config cfg;
	emu_config_init(&cfg);
	cfg.baud = 1200;
	struct fx *fx = fx_start(&cfg);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	SEND(fx, 0x57, 0xAB, 0x00, 0x08, 0x00, 0x0A);
	uint8_t b[56];
	assert_int_equal(read_for(fx, b, sizeof(b), 3000), sizeof(b));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	/* request 50 ms + reply 466 ms; the lower bound cannot be met by an instant reply. */
	assert_true(ms >= 480);
	fx_free(fx);
}

static uint32_t
lcg(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 16;
}

/* Random frames (right and wrong sums, commands that change no setting) mixed with garbage. */
static size_t
make_noise(uint8_t *out, size_t cap, uint32_t seed)
{
	static const uint8_t cmds[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
					0x08, 0x0A, 0x0D, 0x17, 0x3F, 0x81 };
	size_t n = 0;
	while (n + OKVM_CH9329_MAX_FRAME + 8 < cap) {
		for (uint32_t g = lcg(&seed) % 8; g; g--)
			out[n++] = (uint8_t)lcg(&seed);
		struct okvm_ch9329_frame f = { .cmd = cmds[lcg(&seed) % sizeof(cmds)] };
		f.len = (uint8_t)(lcg(&seed) % 12);
		f.addr = lcg(&seed) % 4 ? 0x00 : 0xFF;
		for (int i = 0; i < f.len; i++)
			f.data[i] = (uint8_t)lcg(&seed);
		size_t k = okvm_ch9329_encode(&f, out + n, cap - n);
		if (lcg(&seed) % 2)
			out[n + k - 1] ^= 0x5A;
		n += k;
	}
	return n;
}

static void
test_noise_only_clean_replies(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	static uint8_t noise[4000], replies[65536];
	size_t n = make_noise(noise, sizeof(noise), 42), got = 0;
	for (size_t off = 0; off < n; off += 100) {
		send_bytes(fx, noise + off, n - off < 100 ? n - off : 100);
		got += read_for(fx, replies + got, sizeof(replies) - got, 5);
	}
	got += read_for(fx, replies + got, sizeof(replies) - got, 500);
	/* Every byte the chip sent is part of a well-formed frame. */
	struct okvm_ch9329_parser p;
	struct okvm_ch9329_frame f;
	okvm_ch9329_parser_init(&p);
	size_t frames = 0;
	for (size_t off = 0; off < got;) {
		off += okvm_ch9329_parser_push(&p, replies + off, got - off);
		int rc;
		while ((rc = okvm_ch9329_parser_next(&p, &f)) == 1)
			frames++;
		assert_int_equal(rc, 0);
	}
	assert_int_equal(p.n, 0);
	assert_int_equal(p.garbage_bytes, 0);
	assert_true(frames > 20);
	/* The noise holds no valid HID report (seed 42): the target saw nothing, so GET_INFO is
	 * the plain one. It still answers normally. */
	pthread_mutex_lock(&fx->lock);
	assert_int_equal(fx->n_events, 1);
	pthread_mutex_unlock(&fx->lock);
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	fx_free(fx);
}

/* ---- the target ---- */

/* belief: 10 ms poll (a report replaced before the poll is lost) */
static void
test_poll_overwrite_drops(void **state)
{
	struct fx *fx = fx_default(115200, 100);
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x10);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	/* The target just polled; the next poll is 100 ms away. Two reports (b, then c) now
	 * take 2.4 ms on the wire: c replaces b before the target sees it. */
	wait_for(fx, "{\"type\":\"text\",\"text\":\"a\"}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11,
	     0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00,
	       0x85);
	wait_for(fx, "{\"type\":\"text\",\"text\":\"c\"}");
	assert_int_equal(count_events(fx, "{\"type\":\"dropped\",\"report\":\"keyboard\"}"), 1);
	assert_int_equal(count_events(fx, "{\"type\":\"text\",\"text\":\"b\"}"), 0);
	fx_free(fx);
}

/* belief: 10 ms poll */
static void
test_poll_spaced_reports_all_seen(void **state)
{
	/* At 9600 baud a keyboard frame takes 14.6 ms, longer than the 10 ms poll: nothing is
	 * lost even when the host writes them all at once. */
	struct fx *fx = fx_default(9600, EMU_DEFAULT_POLL_MS);
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x0B, 0x00, 0x00, 0x00, 0x00, 0x00, 0x17,
	     0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C,
	     0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18,
	     0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C);
	int h = wait_for(fx, "{\"type\":\"text\",\"text\":\"h\"}");
	int i = wait_for(fx, "{\"type\":\"text\",\"text\":\"i\"}");
	assert_true(h < i);
	wait_for(fx, "{\"type\":\"key\",\"usage\":12,\"down\":false}");
	for (int k = 0; k < 4; k++)
		EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	assert_int_equal(count_events(fx, "{\"type\":\"dropped\",\"report\":\"keyboard\"}"), 0);
	fx_free(fx);
}

static void
test_target_disconnected(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	wait_for(fx, "{\"type\":\"usb\",\"connected\":true}");
	emu_set_target_connected(fx->emu, false);
	wait_for(fx, "{\"type\":\"usb\",\"connected\":false}");
	SEND(fx, GET_INFO);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x81, 0x08, 0x38, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	       0xC3);
	/* Acknowledged, never seen. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x10);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	wait_for(fx, "{\"type\":\"dropped\",\"report\":\"keyboard\"}");
	emu_set_target_connected(fx->emu, true);
	wait_for(fx, "{\"type\":\"usb\",\"connected\":true}");
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	assert_int_equal(count_events(fx, "{\"type\":\"text\",\"text\":\"a\"}"), 0);
	fx_free(fx);
}

/* belief: GET_INFO answered (LEDs in DATA[2]) */
static void
test_caps_lock_leds(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x39, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x45);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	wait_for(fx, "{\"type\":\"leds\",\"num\":false,\"caps\":true,\"scroll\":false}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x0C);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	wait_for(fx, "{\"type\":\"key\",\"usage\":57,\"down\":false}");
	SEND(fx, GET_INFO);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x81, 0x08, 0x38, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
	       0xC6);
	/* Caps Lock is on: 'a' types "A". */
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x10);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	wait_for(fx, "{\"type\":\"text\",\"text\":\"A\"}");
	fx_free(fx);
}

/* ---- modem lines ---- */

static void
modem_send(struct fx *fx, const char *msg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = emu_modem_socket(fx->emu);
	assert_non_null(path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	assert_int_equal(sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa)),
			 (ssize_t)strlen(msg));
	close(s);
}

/* belief: DTR low (DTR high cuts the switchable port) */
static void
test_dtr_powers_port(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	modem_send(fx, "DTR=1");
	wait_for(fx, "{\"type\":\"usb_power\",\"on\":false}");
	modem_send(fx, "DTR=0");
	wait_for(fx, "{\"type\":\"usb_power\",\"on\":true}");
	fx_free(fx);
}

/* belief: factory 9600 */
static void
test_rts_factory_reset(void **state)
{
	struct fx *fx = fx_default(9600, 0);
	set_baud_params(fx, 115200);
	SEND(fx, 0x57, 0xAB, 0x00, 0x0F, 0x00, 0x11);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x8F, 0x01, 0x00, 0x92);
	wait_for(fx, "{\"type\":\"usb\",\"connected\":false}"); /* the RESET */
	host_set_baud(fx, 115200);
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	/* A short RTS pulse changes nothing. */
	modem_send(fx, "RTS=1");
	expect_silence(fx, 500);
	modem_send(fx, "RTS=0");
	expect_silence(fx, 400);
	SEND(fx, GET_INFO);
	EXPECT(fx, INFO_REPLY);
	/* RTS (DEF pin) held 3.4 s > 3 s, then released: factory defaults 200 ms later. */
	modem_send(fx, "RTS=1");
	expect_silence(fx, 3400);
	modem_send(fx, "RTS=0");
	wait_for(fx, "{\"type\":\"usb\",\"connected\":false}");
	host_set_baud(fx, 9600);
	SEND(fx, 0x57, 0xAB, 0x00, 0x08, 0x00, 0x0A);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x88, 0x32, 0x82, 0x80, 0x00, 0x00, 0x00, 0x25, 0x80, 0x08,
	       0x00, 0x00, 0x03, 0x86, 0x1A, 0x29, 0xE1, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0D, 0, 0,
	       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	       0x26);
	fx_free(fx);
}

/* ---- events file and lifecycle ---- */

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
test_events_file_bytes(void **state)
{
	char dir[] = "/tmp/okvm-test-emu-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/events.jsonl", dir);
	struct emu_config cfg;
	emu_config_init(&cfg);
	cfg.baud = 115200;
	cfg.events_path = path;
	struct fx *fx = fx_start(&cfg);
	/* Shift+h, release all, a move to the centre, Enter. */
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x02, 0x00, 0x0B, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x19);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	wait_for(fx, "{\"type\":\"text\",\"text\":\"H\"}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x0C);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	wait_for(fx, "{\"type\":\"key\",\"usage\":11,\"down\":false}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x04, 0x07, 0x02, 0x01, 0x00, 0x08, 0x00, 0x08, 0xFF, 0x1F);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x84, 0x01, 0x00, 0x87);
	wait_for(fx, "{\"type\":\"mouse\",\"x\":2048,\"y\":2048,\"buttons\":1,\"wheel\":-1}");
	SEND(fx, 0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00,
	     0x34);
	EXPECT(fx, 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85);
	wait_for(fx, "{\"type\":\"text\",\"text\":\"\\n\"}");
	emu_stop(fx->emu);
	assert_string_equal(
		slurp(path),
		"{\"type\":\"usb\",\"connected\":true}\n"
		"{\"type\":\"key\",\"usage\":225,\"down\":true}\n"
		"{\"type\":\"key\",\"usage\":11,\"down\":true}\n"
		"{\"type\":\"text\",\"text\":\"H\"}\n"
		"{\"type\":\"key\",\"usage\":225,\"down\":false}\n"
		"{\"type\":\"key\",\"usage\":11,\"down\":false}\n"
		"{\"type\":\"mouse\",\"x\":2048,\"y\":2048,\"buttons\":1,\"wheel\":-1}\n"
		"{\"type\":\"key\",\"usage\":40,\"down\":true}\n"
		"{\"type\":\"text\",\"text\":\"\\n\"}\n");
	fx_free(fx);
	unlink(path);
	rmdir(dir);
}

static void
test_start_stop_repeatedly(void **state)
{
	char dir[] = "/tmp/okvm-test-emu-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char link[128], modem[140];
	snprintf(link, sizeof(link), "%s/ttyKVM", dir);
	snprintf(modem, sizeof(modem), "%s.modem", link);
	struct emu_config cfg;
	emu_config_init(&cfg);
	cfg.link_path = link;
	struct emu *e = emu_new(&cfg);
	struct stat st;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(emu_start(e), 0);
		assert_int_equal(emu_start(e), -EALREADY);
		assert_string_equal(emu_tty_path(e), link);
		assert_string_equal(emu_modem_socket(e), modem);
		assert_int_equal(lstat(link, &st), 0);
		assert_true(S_ISLNK(st.st_mode));
		int fd = open(link, O_RDWR | O_NOCTTY);
		assert_true(fd >= 0);
		close(fd);
		emu_stop(e);
		assert_int_equal(lstat(link, &st), -1);
		assert_int_equal(lstat(modem, &st), -1);
		assert_null(emu_tty_path(e));
	}
	emu_free(e);
	/* Without a link: a private socket directory that goes away again. */
	emu_config_init(&cfg);
	e = emu_new(&cfg);
	assert_int_equal(emu_start(e), 0);
	char sock[256];
	snprintf(sock, sizeof(sock), "%s", emu_modem_socket(e));
	assert_int_equal(lstat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	emu_free(e);
	assert_int_equal(lstat(sock, &st), -1);
	/* A bad layout fails to start and leaves nothing behind. */
	cfg.layout = "no-such-layout";
	e = emu_new(&cfg);
	assert_int_equal(emu_start(e), -ENOENT);
	emu_free(e);
	rmdir(dir);
}

static void
test_unplug_seen_by_host(void **state)
{
	struct fx *fx = fx_default(115200, 0);
	emu_stop(fx->emu);
	uint8_t b;
	struct pollfd p = { .fd = fx->fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, REPLY_MS), 1);
	ssize_t r = read(fx->fd, &b, 1);
	assert_true(r == 0 || (r < 0 && errno == EIO));
	fx_free(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_info),
		cmocka_unit_test(test_hid_acks),
		cmocka_unit_test(test_get_params_factory),
		cmocka_unit_test(test_set_params_apply_after_reset),
		cmocka_unit_test(test_bad_params_rejected),
		cmocka_unit_test(test_usb_strings),
		cmocka_unit_test(test_set_default_cfg),
		cmocka_unit_test(test_broadcast_no_reply),
		cmocka_unit_test(test_error_replies),
		cmocka_unit_test(test_ch32v208_switch),
		cmocka_unit_test(test_chip_variants),
		cmocka_unit_test(test_strict_gap_packets),
		cmocka_unit_test(test_mode_and_address_apply_after_reset),
		cmocka_unit_test(test_wrong_baud_no_reply),
		cmocka_unit_test(test_gap_discards_partial_frame),
		cmocka_unit_test(test_reply_takes_wire_time),
		cmocka_unit_test(test_noise_only_clean_replies),
		cmocka_unit_test(test_poll_overwrite_drops),
		cmocka_unit_test(test_poll_spaced_reports_all_seen),
		cmocka_unit_test(test_target_disconnected),
		cmocka_unit_test(test_caps_lock_leds),
		cmocka_unit_test(test_dtr_powers_port),
		cmocka_unit_test(test_rts_factory_reset),
		cmocka_unit_test(test_events_file_bytes),
		cmocka_unit_test(test_start_stop_repeatedly),
		cmocka_unit_test(test_unplug_seen_by_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
