/*
 * The CH9329 link against a scripted fake chip on a real pty: exact frames in, chosen replies
 * out. Pacing tests drive dispatch by hand with an injected clock; the blocking helpers run
 * against a script thread (tests/unit/fake-chip.c).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake-chip.h"
#include "lib/hid/link-private.h"
#include "okvm/link.h"
#include "okvm/pacer.h"
#include "okvm/log.h"

#define MS 1000000ull

/* Frames quoted in docs/hardware.md 2 (sums verified there). */
static const uint8_t GET_INFO[] = { 0x57, 0xAB, 0x00, 0x01, 0x00, 0x03 };
static const uint8_t GET_PARA[] = { 0x57, 0xAB, 0x00, 0x08, 0x00, 0x0A };
static const uint8_t RESET[] = { 0x57, 0xAB, 0x00, 0x0F, 0x00, 0x11 };
static const uint8_t SET_DEFAULT[] = { 0x57, 0xAB, 0x00, 0x0C, 0x00, 0x0E };
static const uint8_t INFO_REPLY[] = { 0x57, 0xAB, 0x00, 0x81, 0x08, 0x38, 0x01,
				      0x00, 0,    0,    0,    0,    0,    0xC4 };
static const uint8_t KBD_ACK[] = { 0x57, 0xAB, 0x00, 0x82, 0x01, 0x00, 0x85 };
static const uint8_t KBD_A[] = {
	0x57, 0xAB, 0x00, 0x02, 0x08, 0x00, 0x00, 0x04, 0, 0, 0, 0, 0, 0x10
};
static const uint8_t KBD_UP[] = { 0x57, 0xAB, 0x00, 0x02, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0x0C };
static const uint8_t ABS_320_533[] = { 0x57, 0xAB, 0x00, 0x04, 0x07, 0x02, 0x00,
				       0x40, 0x01, 0x15, 0x02, 0x00, 0x67 };

/* ---- a clock the test moves ---- */

struct fake_clock {
	bool real;
	uint64_t t;
};

static uint64_t
clock_read(void *ud)
{
	struct fake_clock *c = ud;
	if (c->real) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		c->t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	return c->t;
}

struct fixture {
	struct fake_chip chip;
	struct fake_clock clock;
	struct okvm_link *link;
	int listener_calls;
	struct okvm_link_state last;
};

static void
on_state(const struct okvm_link_state *st, void *ud)
{
	struct fixture *fx = ud;
	fx->listener_calls++;
	fx->last = *st;
}

static void
quiet_log(enum okvm_log_level level, const char *fmt, va_list ap, void *ud)
{
	(void)level;
	(void)fmt;
	(void)ap;
	(void)ud;
}

static int setup_poll_ms; /* info_poll_ms of the next setup_link (0: no polling) */
static int setup_baud;    /* baud of the next setup_link (0: 9600) */

/* Open a link at 9600 against the fake chip (GET_INFO answered by a script thread). */
static struct fixture *
setup_link_ex(int gap_ms, int ack_ms, bool no_pipeline)
{
	okvm_log_set_handler(quiet_log, NULL);
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_int_equal(fake_chip_open(&fx->chip), 0);
	int baud = setup_baud ? setup_baud : 9600;
	struct okvm_link_config cfg = { .path = fx->chip.slave,
					.baud = baud,
					.report_gap_ms = gap_ms,
					.ack_timeout_ms = ack_ms,
					.info_poll_ms = setup_poll_ms,
					.no_pipeline = no_pipeline };
	fx->link = okvm_link_new(&cfg);
	fx->clock.real = true;
	link_set_clock(fx->link, clock_read, &fx->clock);
	okvm_link_set_listener(fx->link, on_state, fx);
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), baud, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 2, -1);
	assert_int_equal(okvm_link_open(fx->link), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 2);
	fx->clock.real = false; /* from here on the test moves time */
	return fx;
}

static struct fixture *
setup_link(int gap_ms, int ack_ms)
{
	return setup_link_ex(gap_ms, ack_ms, false);
}

static void
teardown_link(struct fixture *fx)
{
	/* free sends release-all; nobody answers: it must still return */
	struct okvm_link *l = fx->link;
	fake_chip_unplug(&fx->chip);
	fx->clock.real = true;
	okvm_link_free(l);
	fake_chip_close(&fx->chip);
	free(fx);
}

/* Wait for the link's fd, then dispatch (what a caller's poll loop does). */
static int
pump(struct fixture *fx)
{
	struct pollfd pfd = { .fd = okvm_link_fd(fx->link), .events = POLLIN };
	poll(&pfd, 1, 200);
	return okvm_link_dispatch(fx->link);
}

static void
expect_frame(struct fixture *fx, const uint8_t *want, size_t n)
{
	uint8_t buf[80];
	size_t got = fake_chip_read_frame(&fx->chip, buf, sizeof(buf), 2000);
	assert_int_equal(got, n);
	assert_memory_equal(buf, want, n);
}

static void
expect_silence(struct fixture *fx)
{
	assert_false(fake_chip_has_input(&fx->chip, 60));
}

/* Replies matched so far: ACKs, error replies and frames given up. */
static uint64_t
answered(struct fixture *fx)
{
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	return st.acks + st.chip_errors + st.timeouts;
}

/* Write a reply and dispatch until the link has matched it to an in-flight frame. */
static void
reply(struct fixture *fx, const uint8_t *f, size_t n)
{
	uint64_t before = answered(fx);
	fake_chip_write(&fx->chip, f, n);
	okvm_link_dispatch(fx->link); /* may run before the bytes arrive: pump until seen */
	for (int i = 0; i < 50 && answered(fx) == before; i++)
		pump(fx);
	if (answered(fx) == before)
		fail_msg("reply 0x%02x not consumed", f[3]);
}

static void
ack(struct fixture *fx, uint8_t cmd)
{
	uint8_t a[8];
	reply(fx, a, fake_ack(a, cmd));
}

static const struct okvm_kbd_report key_a = { .keys = { 0x04 } };
static const struct okvm_kbd_report key_b = { .keys = { 0x05 } };

static size_t
kbd_frame(uint8_t *out, const struct okvm_kbd_report *r)
{
	uint8_t d[8] = { r->modifiers, 0 };
	memcpy(d + 2, r->keys, 6);
	return fake_frame(out, 0x02, d, 8);
}

static size_t
abs_frame(uint8_t *out, uint16_t x, uint16_t y, uint8_t buttons, int8_t wheel)
{
	uint8_t d[7] = { 0x02, buttons, x & 0xFF, x >> 8, y & 0xFF, y >> 8, (uint8_t)wheel };
	return fake_frame(out, 0x04, d, 7);
}

/* The next report waits for the gap (12 ms send to send) even when A is already ACKed. */
/* belief: ACKs sent; 10 ms poll (the 12 ms gap exceeds it) */
static void
test_ack_pacing_and_gap(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_a), 0);
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_b), 0);
	assert_int_equal(okvm_link_pending(fx->link), 2);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	pump(fx);
	expect_silence(fx); /* neither the gap nor A's wire time has passed */
	fx->clock.t += 5 * MS;
	ack(fx, 0x02);
	expect_silence(fx); /* ACKed, but only 5 ms since A */
	fx->clock.t += 6 * MS;
	pump(fx);
	expect_silence(fx); /* 11 ms */
	/* the timerfd is armed for the rest of the gap: the fd becomes readable by itself */
	struct pollfd pfd = { .fd = okvm_link_fd(fx->link), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	fx->clock.t += 1 * MS;
	pump(fx);
	uint8_t b[20];
	expect_frame(fx, b, kbd_frame(b, &key_b));
	ack(fx, 0x02);
	assert_int_equal(okvm_link_pending(fx->link), 0);
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.reports_sent, 2);
	assert_int_equal(st.acks, 2);
	assert_int_equal(st.timeouts, 0);
	teardown_link(fx);
}

/* Release-all goes before queued presses and drops them. */
/* belief: ACKs sent */
static void
test_release_all_jumps_queue(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	okvm_link_send_kbd(fx->link, &key_a);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	okvm_link_send_kbd(fx->link, &key_b);
	okvm_link_send_kbd(fx->link, &key_a);
	assert_int_equal(okvm_link_release_all(fx->link), 0);
	ack(fx, 0x02);
	/* keyboard up, media up, mouse buttons up (relative: no pointer jump) */
	static const uint8_t media_up[] = { 0x57, 0xAB, 0x00, 0x03, 0x04, 0x02, 0, 0, 0, 0x0B };
	static const uint8_t rel_up[] = { 0x57, 0xAB, 0x00, 0x05, 0x05, 0x01, 0, 0, 0, 0, 0x0D };
	const struct {
		const uint8_t *f;
		size_t n;
		uint8_t cmd;
	} seq[] = { { KBD_UP, sizeof(KBD_UP), 0x02 },
		    { media_up, sizeof(media_up), 0x03 },
		    { rel_up, sizeof(rel_up), 0x05 } };
	for (size_t i = 0; i < 3; i++) {
		fx->clock.t += 12 * MS;
		pump(fx);
		expect_frame(fx, seq[i].f, seq[i].n);
		ack(fx, seq[i].cmd);
	}
	fx->clock.t += 100 * MS;
	pump(fx);
	expect_silence(fx); /* B and A were dropped */
	assert_int_equal(okvm_link_pending(fx->link), 0);
	teardown_link(fx);
}

/* Positions are coalesced: only the newest unsent one goes out. */
/* belief: ACKs sent */
static void
test_mouse_coalescing(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	okvm_link_mouse_abs(fx->link, 320, 533, 0, 0);
	pump(fx);
	expect_frame(fx, ABS_320_533, sizeof(ABS_320_533)); /* hardware.md 2.6 example */
	for (int i = 1; i <= 50; i++)
		okvm_link_mouse_abs(fx->link, (uint16_t)(i * 10), (uint16_t)(i * 20), 0, 0);
	assert_int_equal(okvm_link_pending(fx->link), 2); /* in flight + one position */
	ack(fx, 0x04);
	fx->clock.t += 12 * MS;
	pump(fx);
	uint8_t f[20];
	expect_frame(fx, f, abs_frame(f, 500, 1000, 0, 0));
	ack(fx, 0x04);
	fx->clock.t += 12 * MS;
	pump(fx);
	expect_silence(fx);
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.coalesced, 49);
	teardown_link(fx);
}

/* A click and the wheel carry the pointer's position; a drag keeps its path's last point. */
/* belief: ACKs sent */
static void
test_abs_click_keeps_position(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	okvm_link_mouse_abs(fx->link, 1000, 2000, 0, 0);
	pump(fx);
	uint8_t f[20];
	expect_frame(fx, f, abs_frame(f, 1000, 2000, 0, 0));
	okvm_link_mouse_abs(fx->link, 1000, 2000, 0x01, 0);  /* press */
	okvm_link_mouse_abs(fx->link, 1500, 2500, 0x01, 0);  /* drag */
	okvm_link_mouse_abs(fx->link, 1600, 2600, 0x01, 0);  /* drag (coalesced) */
	okvm_link_mouse_abs(fx->link, 1700, 2700, 0x00, 0);  /* release elsewhere */
	okvm_link_mouse_abs(fx->link, 1700, 2700, 0x00, -2); /* two notches down */
	ack(fx, 0x04);
	const uint16_t want[][4] = { { 1000, 2000, 1, 0 },
				     { 1600, 2600, 1, 0 },
				     { 1700, 2700, 0, 0 },
				     { 1700, 2700, 0, 0xFE } };
	for (size_t i = 0; i < 4; i++) {
		fx->clock.t += 12 * MS;
		pump(fx);
		expect_frame(fx, f,
			     abs_frame(f, want[i][0], want[i][1], (uint8_t)want[i][2],
				       (int8_t)want[i][3]));
		ack(fx, 0x04);
	}
	fx->clock.t += 12 * MS;
	pump(fx);
	expect_silence(fx);
	teardown_link(fx);
}

/* Relative motion is summed and split into int8 steps. */
/* belief: ACKs sent */
static void
test_rel_summed_and_split(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	okvm_link_send_kbd(fx->link, &key_a);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	for (int i = 0; i < 3; i++)
		okvm_link_mouse_rel(fx->link, 100, -10, 0, 0); /* 300, -30 */
	ack(fx, 0x02);
	const int8_t want[][2] = { { 127, -30 }, { 127, 0 }, { 46, 0 } };
	for (size_t i = 0; i < 3; i++) {
		fx->clock.t += 12 * MS;
		pump(fx);
		uint8_t f[20], d[5] = { 0x01, 0, (uint8_t)want[i][0], (uint8_t)want[i][1], 0 };
		expect_frame(fx, f, fake_frame(f, 0x05, d, 5));
		ack(fx, 0x05);
	}
	fx->clock.t += 12 * MS;
	pump(fx);
	expect_silence(fx);
	teardown_link(fx);
}

/* An error reply is counted and the link goes on. */
/* belief: ACKs sent (an error reply answers too) */
static void
test_error_reply(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	okvm_link_send_kbd(fx->link, &key_a);
	okvm_link_send_kbd(fx->link, &key_b);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	uint8_t err[8], st_e5 = 0xE5;
	fake_chip_write(&fx->chip, err, fake_frame(err, 0xC2, &st_e5, 1));
	for (int i = 0; i < 20 && fx->link->nfl; i++)
		pump(fx);
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.chip_errors, 1);
	assert_int_equal(st.timeouts, 0);
	fx->clock.t += 12 * MS;
	pump(fx);
	uint8_t b[20];
	expect_frame(fx, b, kbd_frame(b, &key_b));
	teardown_link(fx);
}

/*
 * A chip that never answers, strict (no_pipeline): one frame in flight, timeout at 500 ms,
 * resync, the next report goes out only then.
 */
/* belief: ACKs sent, the other way for one chip that was ACKing (timeouts, not unpaced) */
static void
test_chip_never_answers_strict(void **state)
{
	(void)state;
	struct fixture *fx = setup_link_ex(12, 500, true);
	int calls = fx->listener_calls;
	okvm_link_send_kbd(fx->link, &key_a);
	okvm_link_send_kbd(fx->link, &key_b);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	fx->clock.t += 499 * MS;
	pump(fx);
	expect_silence(fx);
	fx->clock.t += 1 * MS;
	pump(fx);
	uint8_t b[20];
	expect_frame(fx, b, kbd_frame(b, &key_b));
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.timeouts, 1);
	assert_false(fx->last.chip_ok);
	assert_int_equal(fx->listener_calls, calls + 1);
	ack(fx, 0x02); /* it answers again */
	assert_true(fx->last.chip_ok);
	teardown_link(fx);
}

/*
 * A chip that never answers, pipelined: B follows A after A's wire time, C waits (never three
 * in flight); A times out at 500 ms (resync, counted), which lets C out; B keeps its own
 * deadline, 15 ms later.
 */
/* belief: ACKs sent, the other way for one chip that was ACKing (timeouts, not unpaced) */
static void
test_chip_never_answers(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	int calls = fx->listener_calls;
	okvm_link_send_kbd(fx->link, &key_a);
	okvm_link_send_kbd(fx->link, &key_b);
	okvm_link_send_kbd(fx->link, &key_a);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	fx->clock.t += 19 * MS; /* 14 bytes at 9600 baud: 14.6 ms, then the 4 ms idle line */
	pump(fx);
	uint8_t b[20];
	expect_frame(fx, b, kbd_frame(b, &key_b));
	fx->clock.t += 480 * MS; /* 499 ms after A */
	pump(fx);
	expect_silence(fx); /* two in flight: C waits */
	assert_int_equal(okvm_link_pending(fx->link), 3);
	fx->clock.t += 1 * MS;
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A)); /* C, in A's slot */
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.timeouts, 1);
	assert_int_equal(st.resyncs, 1);
	assert_false(fx->last.chip_ok);
	assert_int_equal(fx->listener_calls, calls + 1);
	fx->clock.t += 18 * MS; /* 499 ms after B */
	pump(fx);
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.timeouts, 1);
	fx->clock.t += 1 * MS;
	pump(fx);
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.timeouts, 2);
	assert_int_equal(okvm_link_pending(fx->link), 1); /* C */
	ack(fx, 0x02);                                    /* it answers again: C's ACK */
	assert_true(fx->last.chip_ok);
	assert_int_equal(okvm_link_pending(fx->link), 0);
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.acks, 1);
	assert_int_equal(st.reports_sent, 3);
	teardown_link(fx);
}

/*
 * Two reports in flight before the first ACK, never three; the second not before the first's
 * wire time (14.6 ms at 9600) even with no gap, and not before the gap when that is longer.
 */
/* belief: frames cut by LEN or by 3 ms idle gap: the 4 ms idle line holds either way; ACKs sent */
static void
test_pipeline_window(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	fx->link->gap_ns = 0;
	for (int i = 0; i < 4; i++)
		okvm_link_send_kbd(fx->link, i % 2 ? &key_b : &key_a);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	fx->clock.t += 14 * MS;
	pump(fx);
	expect_silence(fx); /* A's last byte is still on the wire */
	/* the timerfd is armed for the end of A's wire time: the fd becomes readable by itself */
	struct pollfd pfd = { .fd = okvm_link_fd(fx->link), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	fx->clock.t += 4 * MS; /* 18 ms: A's 14.6 ms of wire time and not yet the idle line */
	pump(fx);
	expect_silence(fx);
	fx->clock.t += 1 * MS; /* 14.6 + OKVM_LINK_FRAME_IDLE_US (4 ms) passed */
	pump(fx);
	uint8_t b[20];
	expect_frame(fx, b, kbd_frame(b, &key_b)); /* before A's ACK */
	fx->clock.t += 100 * MS;
	pump(fx);
	expect_silence(fx); /* never three */
	assert_int_equal(okvm_link_pending(fx->link), 4);
	ack(fx, 0x02); /* A's: B's wire time is over, so the third goes at once */
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	pump(fx);
	expect_silence(fx);
	ack(fx, 0x02);
	fx->clock.t += 18 * MS; /* the third's wire time and idle line are not over yet */
	pump(fx);
	expect_silence(fx);
	fx->clock.t += 1 * MS;
	pump(fx);
	expect_frame(fx, b, kbd_frame(b, &key_b));
	ack(fx, 0x02);
	ack(fx, 0x02);
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.reports_sent, 4);
	assert_int_equal(st.acks, 4);
	assert_int_equal(st.timeouts, 0);
	assert_int_equal(okvm_link_pending(fx->link), 0);
	/* a gap longer than the wire time still holds, send to send */
	fx->link->gap_ns = 30 * MS;
	okvm_link_send_kbd(fx->link, &key_a);
	okvm_link_send_kbd(fx->link, &key_b);
	fx->clock.t += 100 * MS;
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	fx->clock.t += 29 * MS;
	pump(fx);
	expect_silence(fx);
	fx->clock.t += 1 * MS;
	pump(fx);
	expect_frame(fx, b, kbd_frame(b, &key_b));
	teardown_link(fx);
}

/* no_pipeline: the strict rule, the next report only after the ACK. */
/* belief: ACKs sent */
static void
test_no_pipeline(void **state)
{
	(void)state;
	struct fixture *fx = setup_link_ex(12, 500, true);
	okvm_link_send_kbd(fx->link, &key_a);
	okvm_link_send_kbd(fx->link, &key_b);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	fx->clock.t += 100 * MS;
	pump(fx);
	expect_silence(fx);
	ack(fx, 0x02);
	uint8_t b[20];
	expect_frame(fx, b, kbd_frame(b, &key_b));
	teardown_link(fx);
}

/*
 * Replies match the in-flight FIFO: an error reply goes to the oldest frame of its command; a
 * reply to the second frame while the first waits means the first's reply was lost.
 */
/* belief: ACKs sent */
static void
test_pipeline_reply_matching(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	okvm_link_send_kbd(fx->link, &key_a);
	okvm_link_send_kbd(fx->link, &key_b);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	fx->clock.t += 19 * MS; /* wire time + idle line */
	pump(fx);
	uint8_t f[20], err[8], e5 = 0xE5;
	expect_frame(fx, f, kbd_frame(f, &key_b));
	reply(fx, err, fake_frame(err, 0xC2, &e5, 1)); /* A rejected */
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.chip_errors, 1);
	assert_int_equal(st.acks, 1);       /* an error reply is a reply: it counts in both */
	assert_int_equal(fx->link->nfl, 1); /* B still waits */
	ack(fx, 0x02);
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.acks, 2);
	assert_int_equal(st.timeouts, 0);
	/* keyboard then mouse in flight; the mouse's ACK comes first: the keyboard's was lost */
	okvm_link_send_kbd(fx->link, &key_a);
	okvm_link_mouse_abs(fx->link, 320, 533, 0, 0);
	fx->clock.t += 12 * MS;
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	fx->clock.t += 19 * MS; /* wire time + idle line */
	pump(fx);
	expect_frame(fx, ABS_320_533, sizeof(ABS_320_533));
	ack(fx, 0x04);
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.acks, 3);
	assert_int_equal(st.timeouts, 1); /* the keyboard frame's reply never came */
	assert_int_equal(st.resyncs, 0);
	assert_int_equal(fx->link->nfl, 0);
	assert_int_equal(okvm_link_pending(fx->link), 0);
	assert_true(fx->last.chip_ok);
	/* its late ACK now matches nothing */
	uint8_t a[8];
	fake_chip_write(&fx->chip, a, fake_ack(a, 0x02));
	for (int i = 0; i < 50 && !fx->link->st.unsolicited; i++)
		pump(fx);
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.unsolicited, 1);
	assert_int_equal(st.acks, 3);
	teardown_link(fx);
}

/*
 * A command (GET_INFO) waits until the window is empty, and nothing follows it until its
 * reply; queued reports go after it. Real time, the chip on a script thread.
 */
/* belief: GET_INFO answered; ACKs sent */
static void
test_command_waits_for_window(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 1000);
	fx->clock.real = true;
	uint8_t b[20];
	size_t nb = kbd_frame(b, &key_b);
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, KBD_A, sizeof(KBD_A), 0, NULL },
		{ FAKE_EXPECT, b, nb, 0, NULL },    /* before any ACK */
		{ FAKE_QUIET, NULL, 100, 0, NULL }, /* two in flight + a command queued */
		{ FAKE_REPLY, KBD_ACK, sizeof(KBD_ACK), 0, NULL },
		{ FAKE_QUIET, NULL, 100, 0, NULL }, /* B still in flight */
		{ FAKE_REPLY, KBD_ACK, sizeof(KBD_ACK), 0, NULL },
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 0, NULL },
		{ FAKE_QUIET, NULL, 100, 0, NULL }, /* the third report waits for the reply */
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
		{ FAKE_EXPECT, KBD_A, sizeof(KBD_A), 0, NULL },
		{ FAKE_REPLY, KBD_ACK, sizeof(KBD_ACK), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 11, -1);
	okvm_link_send_kbd(fx->link, &key_a);
	okvm_link_send_kbd(fx->link, &key_b);
	for (int i = 0; i < 100 && fx->link->nfl < 2; i++)
		pump(fx);
	assert_int_equal(fx->link->nfl, 2);
	okvm_link_send_kbd(fx->link, &key_a);
	struct okvm_ch9329_info info;
	assert_int_equal(okvm_link_get_info(fx->link, &info, 2000), 0);
	assert_int_equal(info.version, 0x38);
	assert_int_equal(okvm_link_flush(fx->link, 2000), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 11);
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.acks, 3);
	assert_int_equal(st.timeouts, 0);
	teardown_link(fx);
}

/* Garbage, a bad sum and an unsolicited 0x87 before the real ACK. */
/* belief: ACKs sent */
static void
test_garbage_and_bad_sum(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	okvm_link_send_kbd(fx->link, &key_a);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	static const uint8_t junk[] = { 0x00, 0xFF, 0x13, 0x57, 0x00, 0x57, 0xAB, 0x00,
					0x82, 0x01, 0x00, 0x86, /* bad sum */
					0x57, 0xAB, 0x00, 0x87, 0x02, 0x11, 0x22, 0x00 };
	uint8_t unsol[sizeof(junk)];
	memcpy(unsol, junk, sizeof(junk));
	unsol[sizeof(junk) - 1] = (uint8_t)(0x57 + 0xAB + 0x87 + 0x02 + 0x11 + 0x22);
	fake_chip_write(&fx->chip, unsol, sizeof(unsol));
	for (int i = 0; i < 5; i++)
		pump(fx);
	assert_int_equal(fx->link->nfl, 1); /* still waiting: nothing above was its ACK */
	ack(fx, 0x02);
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.acks, 1);
	assert_int_equal(st.resyncs, 1);
	assert_int_equal(st.unsolicited, 1);
	assert_true(st.garbage_bytes >= 5);
	teardown_link(fx);
}

/* Closing the master is an unplug: dispatch and enqueue say -ENODEV. */
static void
test_port_vanishes(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	fake_chip_unplug(&fx->chip);
	int rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++)
		rc = pump(fx);
	assert_int_equal(rc, -ENODEV);
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_a), -ENODEV);
	teardown_link(fx);
}

/* Hot-plug: after -ENODEV, okvm_link_reopen opens the re-plugged chip (at a new path, as a
 * CH340 that came back as another ttyUSB), drops stale input, and the link works again. */
/* belief: GET_INFO answered (the reopen's probe) */
static void
test_reopen_after_unplug(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	assert_int_equal(okvm_link_reopen(fx->link, NULL), -EALREADY); /* still alive */
	okvm_link_send_kbd(fx->link, &key_a);
	fake_chip_unplug(&fx->chip);
	int rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++)
		rc = pump(fx);
	assert_int_equal(rc, -ENODEV);
	fake_chip_close(&fx->chip);

	assert_int_equal(fake_chip_open(&fx->chip), 0); /* the unit is back, elsewhere */
	fx->clock.real = true;
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
		{ FAKE_EXPECT, KBD_A, sizeof(KBD_A), 0,
		  NULL }, /* the new press, not the stale one */
		{ FAKE_REPLY, KBD_ACK, sizeof(KBD_ACK), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 4, -1);
	assert_int_equal(okvm_link_reopen(fx->link, fx->chip.slave), 0);
	assert_string_equal(okvm_link_path(fx->link), fx->chip.slave);
	assert_int_equal(okvm_link_pending(fx->link), 0);
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_a), 0);
	assert_int_equal(okvm_link_flush(fx->link, 1000), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 4);
	teardown_link(fx);
}

/* Bounded queue: -EAGAIN beyond OKVM_LINK_KBD_QUEUE. */
static void
test_queue_bounded(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	/* the first goes to the idle link at once (the direct write); then the queue fills */
	for (int i = 0; i < OKVM_LINK_KBD_QUEUE + 1; i++)
		assert_int_equal(okvm_link_send_kbd(fx->link, &key_a), 0);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_a), -EAGAIN);
	okvm_link_release_all(fx->link);
	assert_int_equal(okvm_link_pending(fx->link), 3 + 1); /* + the one in flight */
	teardown_link(fx);
}

/* GET_INFO polling when idle; the listener hears the LED change. */
/* belief: GET_INFO answered (the idle poll) */
static void
test_info_poll(void **state)
{
	(void)state;
	okvm_log_set_handler(quiet_log, NULL);
	struct fixture *fx = setup_link(12, 500);
	fx->link->poll_ms = 1000;
	fx->link->next_poll_ns = fx->clock.t + 1000 * MS;
	pump(fx);
	expect_silence(fx);
	fx->clock.t += 1000 * MS;
	pump(fx);
	expect_frame(fx, GET_INFO, sizeof(GET_INFO));
	uint8_t f[20], d[8] = { 0x38, 0x01, 0x02 }; /* Caps Lock on */
	fake_chip_write(&fx->chip, f, fake_frame(f, 0x81, d, 8));
	for (int i = 0; i < 20 && fx->link->nfl; i++)
		pump(fx);
	assert_int_equal(fx->last.leds, OKVM_LED_CAPS);
	assert_true(fx->last.target_connected);
	/* a Caps Lock press: GET_INFO 50 ms later instead of 1000 */
	struct okvm_kbd_report caps = { .keys = { 0x39 } };
	okvm_link_send_kbd(fx->link, &caps);
	pump(fx);
	uint8_t k[20];
	expect_frame(fx, k, kbd_frame(k, &caps));
	ack(fx, 0x02);
	fx->clock.t += 49 * MS;
	pump(fx);
	expect_silence(fx);
	fx->clock.t += 1 * MS;
	pump(fx);
	expect_frame(fx, GET_INFO, sizeof(GET_INFO));
	teardown_link(fx);
}

/* Right after open, with nothing sent: the link's fd wakes the caller's poll loop when the
 * first GET_INFO is due (okvm serve's page showed no LED or target state until someone typed). */
/* belief: GET_INFO answered (the idle poll) */
static void
test_info_poll_due_after_open(void **state)
{
	(void)state;
	setup_poll_ms = 100;
	struct fixture *fx = setup_link(12, 500);
	setup_poll_ms = 0;
	fx->clock.real = true;
	struct pollfd pfd = { .fd = okvm_link_fd(fx->link), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 2000), 1); /* nobody dispatched since open */
	okvm_link_dispatch(fx->link);
	expect_frame(fx, GET_INFO, sizeof(GET_INFO));
	teardown_link(fx);
}

/* ---- blocking helpers against a script thread ---- */

static struct fixture *
setup_raw(void)
{
	okvm_log_set_handler(quiet_log, NULL);
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_int_equal(fake_chip_open(&fx->chip), 0);
	return fx;
}

/* Detection: 115200 first, then 9600 (hardware.md 2.10), GET_INFO as the probe. */
/* belief: factory 9600 (found at 9600 after the 115200 probe) */
static void
test_baud_detection(void **state)
{
	(void)state;
	struct fixture *fx = setup_raw();
	struct okvm_link_config cfg = { .path = fx->chip.slave }; /* ACK timeout 500 ms */
	fx->link = okvm_link_new(&cfg);
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 115200, NULL }, /* no answer */
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 3, -1);
	struct fake_clock wall = { .real = true };
	uint64_t t0 = clock_read(&wall);
	assert_int_equal(okvm_link_open(fx->link), 0);
	/* a wrong first guess costs the short probe (150 ms), not the 500 ms ACK timeout */
	assert_true(clock_read(&wall) - t0 < 450 * MS);
	assert_int_equal(fake_chip_join(&fx->chip), 3);
	struct okvm_link_state st;
	okvm_link_get_state(fx->link, &st);
	assert_int_equal(st.baud, 9600);
	assert_int_equal(st.version, 0x38);
	assert_true(st.target_connected);
	teardown_link(fx);
}

/* Nobody answers: two cycles through both bauds, then -ETIMEDOUT. */
/* belief: GET_INFO answered, the other way at both bauds (nothing ACKs either: -ETIMEDOUT) */
static void
test_baud_detection_gives_up(void **state)
{
	(void)state;
	struct fixture *fx = setup_raw();
	struct okvm_link_config cfg = { .path = fx->chip.slave, .ack_timeout_ms = 80 };
	fx->link = okvm_link_new(&cfg);
	/* GET_INFO quick at both, a keyboard all-up at both (a chip that ignores GET_INFO would
	 * ACK it), GET_INFO with the full timeout at both */
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 115200, NULL },
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
		{ FAKE_EXPECT, KBD_UP, sizeof(KBD_UP), 115200, NULL },
		{ FAKE_EXPECT, KBD_UP, sizeof(KBD_UP), 9600, NULL },
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 115200, NULL },
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
	};
	fake_chip_run(&fx->chip, steps, 6, -1);
	assert_int_equal(okvm_link_open(fx->link), -ETIMEDOUT);
	assert_int_equal(fake_chip_join(&fx->chip), 6);
	assert_false(fake_chip_has_input(&fx->chip, 100));
	teardown_link(fx);
}

static char fid_log[4096];

static void
fid_capture(enum okvm_log_level level, const char *fmt, va_list ap, void *ud)
{
	(void)level;
	(void)ud;
	size_t n = strlen(fid_log);
	vsnprintf(fid_log + n, sizeof(fid_log) - n, fmt, ap);
}

/*
 * Belief: every chip answers GET_INFO. Not so for some CH32V208 firmware (openterface-rs; the
 * official app only warns). A chip that ignores GET_INFO but ACKs a keyboard all-up report
 * opens, with the state "unknown" (not "disconnected") and a warning.
 */
/* belief: GET_INFO answered, the other way */
static void
test_silent_get_info_opens(void **state)
{
	(void)state;
	struct fixture *fx = setup_raw();
	fid_log[0] = 0;
	okvm_log_set_handler(fid_capture, NULL);
	struct okvm_link_config cfg = { .path = fx->chip.slave, .baud = 9600 };
	fx->link = okvm_link_new(&cfg);
	okvm_link_set_listener(fx->link, on_state, fx);
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
		{ FAKE_EXPECT, KBD_UP, sizeof(KBD_UP), 9600, NULL },
		{ FAKE_REPLY, KBD_ACK, sizeof(KBD_ACK), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 3, -1);
	assert_int_equal(okvm_link_open(fx->link), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 3);
	struct okvm_link_state st;
	okvm_link_get_state(fx->link, &st);
	assert_true(st.info_unknown);
	assert_true(st.chip_ok);
	assert_int_equal(st.baud, 9600);
	assert_non_null(strstr(fid_log, "does not answer GET_INFO"));
	assert_non_null(strstr(fid_log, "unknown"));
	/* input goes out after the report gap (the probe was a report): no GET_INFO poll waiting
	 * out its 500 ms stands in front of it */
	fx->clock.real = true;
	okvm_link_send_kbd(fx->link, &key_a);
	uint64_t t0 = clock_read(&fx->clock);
	while (!fake_chip_has_input(&fx->chip, 0) && clock_read(&fx->clock) - t0 < 400 * MS)
		assert_int_equal(pump(fx), 0);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	assert_true(clock_read(&fx->clock) - t0 < 100 * MS);
	teardown_link(fx);
}

/*
 * Belief: the chip ACKs every HID report (CH9329-P). Unknown for a CH32V208. A chip that never
 * ACKs must not make every report wait out the 500 ms ACK timeout: after NOACK_AFTER (3)
 * unanswered reports the link says so once and paces by the gap alone; those reports do not
 * count as failures (report_timeouts 0).
 */
/* belief: ACKs sent, the other way */
static void
test_no_ack_goes_unpaced(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	fx->clock.real = true;
	fid_log[0] = 0;
	okvm_log_set_handler(fid_capture, NULL);
	for (int i = 0; i < 10; i++)
		okvm_link_send_kbd(fx->link, i % 2 ? &key_b : &key_a);
	uint64_t t0 = clock_read(&fx->clock);
	assert_int_equal(okvm_link_flush(fx->link, 4000), 0);
	double ms = (double)(clock_read(&fx->clock) - t0) / 1e6;
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.reports_sent, 10);
	assert_true(st.unpaced >= 6);
	assert_int_equal(st.report_timeouts, 0);
	/* three timeouts (~1 s, two in flight) then 12 ms a report; waiting out each: ~2.5 s */
	assert_true(ms < 1500);
	assert_non_null(strstr(fid_log, "does not acknowledge HID reports"));
	teardown_link(fx);
}

/*
 * Belief: the CH9329 cuts frames by LEN, so back-to-back frames are fine (the official app
 * writes them so). The datasheet says a packet ends after 3 ms of idle line: pipelined reports
 * keep OKVM_LINK_FRAME_IDLE_US between the previous frame's last byte and the next one's first.
 * (test_pipeline_window checks the exact instant with the injected clock.)
 */

/* The factory parameter block (hardware.md 2.8) with a given baud. */
static void
params_block(uint8_t out[50], uint32_t baud)
{
	static const uint8_t head[] = { 0x82, 0x80, 0x00, 0,    0,    0,    0,
					0x08, 0x00, 0x00, 0x03, 0x86, 0x1A, 0x29,
					0xE1, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0D };
	memset(out, 0, 50);
	memcpy(out, head, sizeof(head));
	out[3] = (uint8_t)(baud >> 24);
	out[4] = (uint8_t)(baud >> 16);
	out[5] = (uint8_t)(baud >> 8);
	out[6] = (uint8_t)baud;
	out[36] = 0x87; /* string enable: kept as the chip had it */
}

/* set_baud: read params, write them back with only the baud changed, RESET, switch, verify. */
/* belief: GET_PARA_CFG 50 bytes (its block is read, then written back) */
static void
test_set_baud_sequence(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 300);
	fx->clock.real = true;
	uint8_t p9600[50], p115200[50], para_reply[60], set_para[60], ack_set[8], ack_reset[8];
	params_block(p9600, 9600);
	params_block(p115200, 115200);
	size_t n_reply = fake_frame(para_reply, 0x88, p9600, 50);
	size_t n_set = fake_frame(set_para, 0x09, p115200, 50);
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_PARA, sizeof(GET_PARA), 9600, NULL },
		{ FAKE_REPLY, para_reply, n_reply, 0, NULL },
		{ FAKE_EXPECT, set_para, n_set, 9600, NULL },
		{ FAKE_REPLY, ack_set, fake_ack(ack_set, 0x09), 0, NULL },
		{ FAKE_EXPECT, RESET, sizeof(RESET), 9600, NULL }, /* at the old baud */
		{ FAKE_REPLY, ack_reset, fake_ack(ack_reset, 0x0F), 0, NULL },
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 115200, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 8, -1);
	assert_int_equal(okvm_link_set_baud(fx->link, 115200), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 8);
	assert_int_equal(fx->last.baud, 115200);
	assert_int_equal(okvm_link_set_baud(fx->link, 12345), -EINVAL);
	teardown_link(fx);
}

/* A chip error reply to a blocking command is -EPROTO and the reply is handed back. */
static void
test_command_error_reply(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 300);
	fx->clock.real = true;
	uint8_t err[8], e3 = 0xE3;
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_PARA, sizeof(GET_PARA), 0, NULL },
		{ FAKE_REPLY, err, fake_frame(err, 0xC8, &e3, 1), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 2, -1);
	struct okvm_ch9329_frame req, rep;
	okvm_ch9329_build_simple(&req, OKVM_CH9329_CMD_GET_PARA_CFG);
	assert_int_equal(okvm_link_command(fx->link, &req, &rep, 300), -EPROTO);
	assert_int_equal(fake_chip_join(&fx->chip), 2);
	assert_int_equal(rep.cmd, 0xC8);
	assert_int_equal(okvm_ch9329_reply_status(&rep), 0xE3);
	/* and a chip that never answers a command: -ETIMEDOUT, the link stays usable */
	assert_int_equal(okvm_link_command(fx->link, &req, &rep, 100), -ETIMEDOUT);
	uint8_t f[80];
	assert_int_equal(fake_chip_read_frame(&fx->chip, f, sizeof(f), 1000), sizeof(GET_PARA));
	teardown_link(fx);
}

static int
bind_dgram(char *path, size_t cap)
{
	snprintf(path, cap, "/tmp/okvm-test-modem-%d", getpid());
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Factory reset, RTS method: RTS=1 held, RTS=0, then the chip answers at 9600. */
/* belief: factory 9600 (the chip answers at 9600 after the reset) */
static void
test_factory_reset_rts(void **state)
{
	(void)state;
	struct fixture *fx = setup_raw();
	char sock[108];
	int dfd = bind_dgram(sock, sizeof(sock));
	struct okvm_link_config cfg = { .path = fx->chip.slave,
					.baud = 115200,
					.ack_timeout_ms = 200,
					.modem_socket = sock };
	fx->link = okvm_link_new(&cfg);
	link_set_timing(fx->link, &(struct link_timing){ .rts_hold_ms = 150,
							 .rts_settle_ms = 10,
							 .verify_attempts = 2 });
	const struct fake_step open_steps[] = {
		{ FAKE_DGRAM, NULL, 0, 0, "DTR=0" }, /* the lines' state right after open */
		{ FAKE_DGRAM, NULL, 0, 0, "RTS=0" },
		{ FAKE_DGRAM, NULL, 0, 0, "WATCH" }, /* tell me about CTS (DATAFLIP) */
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 115200, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
	};
	fake_chip_run(&fx->chip, open_steps, 5, dfd);
	assert_int_equal(okvm_link_open(fx->link), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 5);
	const struct fake_step steps[] = {
		{ FAKE_DGRAM, NULL, 0, 0, "RTS=1" },
		{ FAKE_DGRAM, NULL, 0, 0, "RTS=0" },
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 4, dfd);
	assert_int_equal(okvm_link_factory_reset(fx->link), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 4);
	uint64_t held = fx->chip.dgram_ns[1] - fx->chip.dgram_ns[0];
	assert_true(held >= 140 * MS); /* RTS was held, not toggled */
	struct okvm_link_state st;
	okvm_link_get_state(fx->link, &st);
	assert_int_equal(st.baud, 9600);
	close(dfd);
	unlink(sock);
	teardown_link(fx);
}

/* No modem lines (a pty without socket): SET_DEFAULT_CFG at 9600, then 115200, + RESET. */
/* belief: factory 9600 (the chip answers at 9600 after the reset) */
static void
test_factory_reset_command(void **state)
{
	(void)state;
	struct fixture *fx = setup_raw();
	struct okvm_link_config cfg = { .path = fx->chip.slave,
					.baud = 115200,
					.ack_timeout_ms = 150 };
	fx->link = okvm_link_new(&cfg);
	link_set_timing(fx->link, &(struct link_timing){ .rts_hold_ms = 10,
							 .rts_settle_ms = 10,
							 .verify_attempts = 2 });
	uint8_t a_def[8], a_reset[8];
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 115200, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
		{ FAKE_EXPECT, SET_DEFAULT, sizeof(SET_DEFAULT), 9600, NULL }, /* no answer */
		{ FAKE_EXPECT, SET_DEFAULT, sizeof(SET_DEFAULT), 115200, NULL },
		{ FAKE_REPLY, a_def, fake_ack(a_def, 0x0C), 0, NULL },
		{ FAKE_EXPECT, RESET, sizeof(RESET), 115200, NULL },
		{ FAKE_REPLY, a_reset, fake_ack(a_reset, 0x0F), 0, NULL },
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 9, -1);
	assert_int_equal(okvm_link_open(fx->link), 0);
	assert_int_equal(okvm_link_factory_reset(fx->link), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 9);
	teardown_link(fx);
}

/* free() leaves nothing pressed: keyboard, media, buttons up (abs at the last position). */
/* belief: ACKs sent */
static void
test_release_all_on_free(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 300);
	fx->clock.real = true;
	static const uint8_t media_up[] = { 0x57, 0xAB, 0x00, 0x03, 0x04, 0x02, 0, 0, 0, 0x0B };
	uint8_t abs_up[20], a2[8], a3[8];
	size_t n_abs = abs_frame(abs_up, 320, 533, 0, 0);
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, KBD_A, sizeof(KBD_A), 0, NULL },
		{ FAKE_REPLY, KBD_ACK, sizeof(KBD_ACK), 0, NULL },
		{ FAKE_EXPECT, KBD_UP, sizeof(KBD_UP), 0, NULL },
		{ FAKE_REPLY, KBD_ACK, sizeof(KBD_ACK), 0, NULL },
		{ FAKE_EXPECT, media_up, sizeof(media_up), 0, NULL },
		{ FAKE_REPLY, a2, fake_ack(a2, 0x03), 0, NULL },
		{ FAKE_EXPECT, abs_up, n_abs, 0, NULL },
		{ FAKE_REPLY, a3, fake_ack(a3, 0x04), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 8, -1);
	/* 'a' goes down on the target ... */
	okvm_link_send_kbd(fx->link, &key_a);
	assert_int_equal(okvm_link_flush(fx->link, 1000), 0);
	/* ... then more is queued but never sent: free drops it and releases everything. */
	okvm_link_mouse_abs(fx->link, 320, 533, 0, 0);
	okvm_link_mouse_abs(fx->link, 320, 533, 0x02, 0);
	okvm_link_send_kbd(fx->link, &key_a);
	okvm_link_free(fx->link);
	assert_int_equal(fake_chip_join(&fx->chip), 8);
	fake_chip_close(&fx->chip);
	free(fx);
}

/* A link that never sent a HID report pressed nothing: free() sends nothing (okvm info). */
static void
test_free_after_query_sends_nothing(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 300);
	fx->clock.real = true;
	link_hold(fx->link);                  /* as in a blocking helper: no direct write */
	okvm_link_send_kbd(fx->link, &key_a); /* queued, never sent */
	okvm_link_free(fx->link);
	uint8_t buf[80];
	assert_int_equal(fake_chip_read_frame(&fx->chip, buf, sizeof(buf), 300), 0);
	fake_chip_close(&fx->chip);
	free(fx);
}

/* RESET, then GET_INFO until the chip answers again. */
/* belief: GET_INFO answered (verify after RESET) */
static void
test_reset_sequence(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 200);
	fx->clock.real = true;
	uint8_t a[8];
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, RESET, sizeof(RESET), 9600, NULL },
		{ FAKE_REPLY, a, fake_ack(a, 0x0F), 0, NULL },
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL }, /* still booting */
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 5, -1);
	assert_int_equal(okvm_link_reset(fx->link), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 5);
	teardown_link(fx);
}

/* CH32V208 USB switch (cmd 0x17, hardware.md 2.3 exact frames) and the DTR pulse. */
/* belief: DTR low (the pulse raises it, then lowers it again) */
static void
test_usb_switch_and_dtr_pulse(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 300);
	fx->clock.real = true;
	static const uint8_t to_target[] = { 0x57, 0xAB, 0x00, 0x17, 0x05, 0, 0, 0, 0, 0x01, 0x1F };
	static const uint8_t query[] = { 0x57, 0xAB, 0x00, 0x17, 0x05, 0, 0, 0, 0, 0x03, 0x21 };
	uint8_t r1[8], r0[8], one = 1, zero = 0;
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, to_target, sizeof(to_target), 0, NULL },
		{ FAKE_REPLY, r1, fake_frame(r1, 0x97, &one, 1), 0, NULL },
		{ FAKE_EXPECT, query, sizeof(query), 0, NULL },
		{ FAKE_REPLY, r0, fake_frame(r0, 0x97, &zero, 1), 0, NULL },
	};
	fake_chip_run(&fx->chip, steps, 4, -1);
	enum okvm_usb_dir now = OKVM_USB_QUERY;
	assert_int_equal(okvm_link_usb_switch(fx->link, OKVM_USB_TO_TARGET, &now), 0);
	assert_int_equal(now, OKVM_USB_TO_TARGET);
	assert_int_equal(okvm_link_usb_switch(fx->link, OKVM_USB_QUERY, &now), 0);
	assert_int_equal(now, OKVM_USB_TO_HOST);
	assert_int_equal(fake_chip_join(&fx->chip), 4);
	/* a pty without a modem socket has no DTR */
	assert_int_equal(okvm_link_dtr_pulse(fx->link, 10), -ENOTTY);
	char sock[108];
	int dfd = bind_dgram(sock, sizeof(sock));
	assert_int_equal(okvm_serial_set_modem_socket(fx->link->ser, sock), 0);
	const struct fake_step dsteps[] = {
		{ FAKE_DGRAM, NULL, 0, 0, "DTR=0" },
		{ FAKE_DGRAM, NULL, 0, 0, "RTS=0" },
		{ FAKE_DGRAM, NULL, 0, 0, "DTR=1" },
		{ FAKE_DGRAM, NULL, 0, 0, "DTR=0" },
	};
	fake_chip_run(&fx->chip, dsteps, 4, dfd);
	assert_int_equal(okvm_link_dtr_pulse(fx->link, 120), 0);
	assert_int_equal(fake_chip_join(&fx->chip), 4);
	assert_true(fx->chip.dgram_ns[3] - fx->chip.dgram_ns[2] >= 110 * MS);
	close(dfd);
	unlink(sock);
	teardown_link(fx);
}

/* Media reports in order; release-all lifts ACPI keys too once they were used. */
/* belief: ACKs sent */
static void
test_media_and_acpi_release(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	struct okvm_media_report mute = { .report_id = 2, .bits = { 0x04 } };
	struct okvm_media_report power = { .report_id = 1, .bits = { 0x01 } };
	okvm_link_send_media(fx->link, &mute);
	pump(fx);
	static const uint8_t mute_f[] = {
		0x57, 0xAB, 0x00, 0x03, 0x04, 0x02, 0x04, 0x00, 0x00, 0x0F
	}; /* hardware.md 2.13 example */
	expect_frame(fx, mute_f, sizeof(mute_f));
	okvm_link_send_media(fx->link, &power);
	ack(fx, 0x03);
	fx->clock.t += 12 * MS;
	pump(fx);
	static const uint8_t power_f[] = { 0x57, 0xAB, 0x00, 0x03, 0x02, 0x01, 0x01, 0x09 };
	expect_frame(fx, power_f, sizeof(power_f)); /* ACPI: LEN 2 as the datasheet */
	okvm_link_release_all(fx->link);
	ack(fx, 0x03);
	static const uint8_t media_up[] = { 0x57, 0xAB, 0x00, 0x03, 0x04, 0x02, 0, 0, 0, 0x0B };
	static const uint8_t acpi_up[] = { 0x57, 0xAB, 0x00, 0x03, 0x02, 0x01, 0x00, 0x08 };
	const uint8_t *want[] = { KBD_UP, media_up, acpi_up };
	const size_t len[] = { sizeof(KBD_UP), sizeof(media_up), sizeof(acpi_up) };
	for (int i = 0; i < 3; i++) {
		fx->clock.t += 12 * MS;
		pump(fx);
		expect_frame(fx, want[i], len[i]);
		ack(fx, want[i][3]);
	}
	teardown_link(fx);
}

struct producer {
	struct okvm_link *link;
	uint8_t id;
};

static void *
produce(void *arg)
{
	struct producer *p = arg;
	for (int i = 0; i < 150; i++) {
		struct okvm_kbd_report r = { .modifiers = p->id, .keys = { (uint8_t)i } };
		while (okvm_link_send_kbd(p->link, &r) == -EAGAIN)
			;
	}
	return NULL;
}

/* Three threads enqueue while this one dispatches: nothing lost, each thread's order kept. */
/* belief: ACKs sent */
static void
test_threads_enqueue(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	fx->clock.real = true;
	fx->link->gap_ns = 0;
	struct fake_auto a;
	fake_auto_start(&a, &fx->chip, 1000);
	pthread_t t[3];
	struct producer p[3];
	for (int i = 0; i < 3; i++) {
		p[i] = (struct producer){ fx->link, (uint8_t)(1 << i) };
		pthread_create(&t[i], NULL, produce, &p[i]);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(okvm_link_flush(fx->link, 20000), 0);
	assert_int_equal(fake_auto_count(&a), 450); /* recorded before its ACK went out */
	int next[3] = { 0 };
	for (size_t i = 0; i < a.n; i++) {
		int who = a.frames[i][5] == 1 ? 0 : a.frames[i][5] == 2 ? 1 : 2;
		assert_int_equal(a.frames[i][7], next[who]++);
	}
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.acks, 450);
	assert_int_equal(st.timeouts, 0);
	fake_auto_stop(&a);
	teardown_link(fx);
}

/* ---- DATAFLIP going ahead (a virtual CTS line over the modem socket, the test's clock) ---- */

struct flip_fx {
	struct fixture *fx;
	int dfd;
	char sock[108];
	struct sockaddr_un link_addr; /* where the link's WATCH came from: CTS news go there */
	socklen_t link_len;
	int level;
};

static void
flip_cts(struct flip_fx *f)
{
	char msg[8];
	snprintf(msg, sizeof(msg), "CTS=%d", f->level);
	assert_true(sendto(f->dfd, msg, strlen(msg), 0, (struct sockaddr *)&f->link_addr,
			   f->link_len) > 0);
	f->level ^= 1;
}

/* Open at 9600 with a modem socket; answer WATCH with the line's level (not a toggle). */
static void
flip_open(struct flip_fx *f)
{
	f->fx = setup_raw();
	f->dfd = bind_dgram(f->sock, sizeof(f->sock));
	struct okvm_link_config cfg = { .path = f->fx->chip.slave,
					.baud = 9600,
					.report_gap_ms = 12,
					.ack_timeout_ms = 500,
					.modem_socket = f->sock };
	f->fx->link = okvm_link_new(&cfg);
	f->fx->clock.real = true;
	link_set_clock(f->fx->link, clock_read, &f->fx->clock);
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
	};
	fake_chip_run(&f->fx->chip, steps, 2, -1);
	assert_int_equal(okvm_link_open(f->fx->link), 0);
	assert_int_equal(fake_chip_join(&f->fx->chip), 2);
	char msg[16];
	for (;;) { /* DTR=0, RTS=0, then WATCH */
		f->link_len = sizeof(f->link_addr);
		ssize_t n = recvfrom(f->dfd, msg, sizeof(msg) - 1, 0,
				     (struct sockaddr *)&f->link_addr, &f->link_len);
		assert_true(n > 0);
		msg[n] = 0;
		if (!strcmp(msg, "WATCH"))
			break;
	}
	f->level = 0;
	flip_cts(f); /* CTS=0: the line as it is */
	f->fx->clock.real = false;
}

/* A report that the target takes lat_ms after the chip had it whole (the toggle), then its ACK. */
static void
flip_report(struct flip_fx *f, const struct okvm_kbd_report *r, uint64_t lat_ms)
{
	struct fixture *fx = f->fx;
	assert_int_equal(okvm_link_send_kbd(fx->link, r), 0);
	pump(fx);
	uint8_t want[20];
	expect_frame(fx, want, kbd_frame(want, r));
	fx->clock.t += 14583333ull + lat_ms * MS; /* 14 bytes at 9600, then the poll */
	uint64_t before = fx->link->st.flips;
	flip_cts(f);
	for (int i = 0; i < 50 && fx->link->st.flips == before; i++)
		pump(fx);
	assert_int_equal(fx->link->st.flips, before + 1);
	ack(fx, 0x02);
}

/*
 * At 9600 the wire time (14.6 ms) is longer than a 10 ms poll. Waiting for each toggle made
 * DATAFLIP slower than the fixed gap, which sends the next frame 4 ms (the idle line) after the
 * last one's bytes. Now a report that is not seen taken by then is gone ahead of: the next goes
 * at the idle line's end, as the gap would send it. The older report's toggle is taken as its
 * own, not the newer one's: it lifts neither the wait nor the idle line after the newer frame.
 */
/* belief: DATAFLIP wired; 10 ms poll; frames cut by LEN or by 3 ms idle gap (the idle line holds) */
static void
test_dataflip_goes_ahead(void **state)
{
	(void)state;
	struct flip_fx f;
	flip_open(&f);
	struct fixture *fx = f.fx;
	uint8_t want[20];
	flip_report(&f, &key_b, 9); /* the line is seen: pacing by it */
	assert_true(fx->link->st.flip_pacing);
	/* before the poll interval is known nothing goes ahead (the target may poll slower) */
	fx->clock.t += 50 * MS;
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_a), 0);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_b), 0);
	fx->clock.t += 14583333ull + 9 * MS;
	pump(fx);
	expect_silence(fx);
	flip_cts(&f); /* A taken: B goes */
	pump(fx);
	pump(fx);
	expect_frame(fx, want, kbd_frame(want, &key_b));
	assert_int_equal(fx->link->st.flip_ahead, 0);
	ack(fx, 0x02);
	fx->clock.t += 14583333ull + 9 * MS;
	flip_cts(&f);
	pump(fx);
	pump(fx);
	ack(fx, 0x02);
	/* a window of 32 toggles at 9 ms: the target polls about every 9.6 ms */
	for (int i = 0; i < 33; i++)
		flip_report(&f, i % 2 ? &key_a : &key_b, 9);
	fx->clock.t += 50 * MS;
	/* A: its bytes are in the chip at e; no toggle comes yet */
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_a), 0);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	uint64_t e = fx->clock.t + 14583333ull;
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_b), 0);
	fx->clock.t = e + 3 * MS;
	pump(fx);
	expect_silence(fx); /* the idle line after A */
	fx->clock.t = e + 4 * MS + 1000;
	pump(fx);
	expect_frame(fx, want, kbd_frame(want, &key_b)); /* ahead of A, as the gap would send it */
	assert_int_equal(fx->link->st.flip_ahead, 1);
	ack(fx, 0x02);
	/* A's toggle: A is taken, B still waits; C may not follow B's bytes at once */
	uint64_t eb = e + 4 * MS + 1000 + 14583333ull;
	fx->clock.t = e + 9 * MS;
	uint64_t flips = fx->link->st.flips;
	flip_cts(&f);
	for (int i = 0; i < 50 && fx->link->st.flips == flips; i++)
		pump(fx);
	assert_int_equal(fx->link->st.flips, flips + 1);
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_a), 0);
	fx->clock.t = eb + 2 * MS;
	pump(fx);
	expect_silence(fx); /* A's toggle lifted neither B's wait nor the idle line after B */
	/* B's toggle: B is taken, its packet ended, C goes at once */
	flip_cts(&f);
	pump(fx);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.flip_misses, 0);
	assert_int_equal(st.flip_ahead, 1);
	close(f.dfd);
	unlink(f.sock);
	teardown_link(fx);
}

/* A target that polls slower than the gap (20 ms): a report may not go ahead before the last one
 * can have been taken, though the gap passed; waiting for the toggle keeps every report. */
/* belief: 10 ms poll, the other way (20 ms); DATAFLIP wired */
static void
test_dataflip_slow_target_no_ahead(void **state)
{
	(void)state;
	struct flip_fx f;
	flip_open(&f);
	struct fixture *fx = f.fx;
	for (int i = 0; i < 33; i++)
		flip_report(&f, i % 2 ? &key_a : &key_b, 19);
	fx->clock.t += 50 * MS;
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_a), 0);
	pump(fx);
	expect_frame(fx, KBD_A, sizeof(KBD_A));
	uint64_t e = fx->clock.t + 14583333ull;
	assert_int_equal(okvm_link_send_kbd(fx->link, &key_b), 0);
	ack(fx, 0x02);            /* the idle line is no reason to wait any more */
	fx->clock.t = e + 9 * MS; /* the gap and the idle line passed; A may still be in the chip */
	pump(fx);
	expect_silence(fx);
	/* the poll bound: 19 ms x 33/31 x 17/16 + 1 ms = 22.5 ms after e, less B's 10.4 ms */
	fx->clock.t = e + 13 * MS;
	pump(fx);
	uint8_t want[20];
	expect_frame(fx, want, kbd_frame(want, &key_b));
	assert_int_equal(fx->link->st.flip_ahead, 1);
	close(f.dfd);
	unlink(f.sock);
	teardown_link(fx);
}

/* GET_INFO's version byte in the three layouts the macOS app reads (SerialResponseHandler):
 * DATA[0]; DATA[7] when DATA[0] is 0x00; DATA[3] when DATA[0] is 0x01 or 0x02. Connected and
 * LEDs stay in DATA[1] and DATA[2]. */
/* belief: version in DATA[0], both ways */
static void
test_info_version_layouts(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	fx->clock.real = true;
	static const uint8_t data[][8] = {
		{ 0x38, 0x01, 0x02, 0, 0, 0, 0, 0 },    /* CH9329: V1.8 in DATA[0] */
		{ 0x00, 0x01, 0x02, 0, 0, 0, 0, 0x82 }, /* version in DATA[7] */
		{ 0x01, 0x01, 0x02, 0x83, 0, 0, 0, 0 }, /* version in DATA[3] */
		{ 0x02, 0x00, 0x00, 0x84, 0, 0, 0, 0 }, /* the same, marker 0x02 */
		{ 0x82, 0x01, 0x00, 0, 0, 0, 0, 0 },    /* a CH32V208 in DATA[0] */
	};
	static const uint8_t want[] = { 0x38, 0x82, 0x83, 0x84, 0x82 };
	for (size_t i = 0; i < sizeof(want); i++) {
		uint8_t rep[20];
		size_t n = fake_frame(rep, 0x81, data[i], 8);
		const struct fake_step steps[] = {
			{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 0, NULL },
			{ FAKE_REPLY, rep, n, 0, NULL },
		};
		fake_chip_run(&fx->chip, steps, 2, -1);
		struct okvm_ch9329_info info;
		assert_int_equal(okvm_link_get_info(fx->link, &info, 500), 0);
		assert_int_equal(fake_chip_join(&fx->chip), 2);
		assert_int_equal(info.version, want[i]);
		assert_int_equal(info.target_connected, data[i][1] == 1);
		assert_int_equal(info.leds, data[i][2]);
		struct okvm_link_state st;
		okvm_link_get_state(fx->link, &st);
		assert_int_equal(st.version, want[i]);
	}
	teardown_link(fx);
}

/* The direct write: a thread enqueues while this one dispatches (ACKs, the rest of the queue).
 * Each round waits until the link is idle, queues 20 presses (the first is written by the
 * producer itself, the rest by either thread), calls release-all and queues 5 more presses.
 * The chip must see byte-exact frames, each press once and in order, each release-all as its
 * three frames together, no press queued after a release-all before its frames, no press queued
 * before it after them, and every press queued after one. */
#define DIRECT_ROUNDS 30
struct direct_producer {
	struct okvm_link *link;
	unsigned first_after[DIRECT_ROUNDS]; /* the counter of the first press after release r */
	bool done;
	pthread_mutex_t mu;
};

/* A press with a 16-bit counter in keys[1..2], so that every report is a distinct frame. */
static struct okvm_kbd_report
direct_report(unsigned c)
{
	return (struct okvm_kbd_report){ .keys = { 0x04, (uint8_t)(c & 0xFF), (uint8_t)(c >> 8) } };
}

static void
direct_press(struct direct_producer *p, unsigned *c)
{
	struct okvm_kbd_report r = direct_report((*c)++);
	while (okvm_link_send_kbd(p->link, &r) == -EAGAIN)
		usleep(100);
}

static void *
direct_produce(void *ud)
{
	struct direct_producer *p = ud;
	unsigned c = 1, seed = 12345;
	for (int r = 0; r < DIRECT_ROUNDS; r++) {
		while (okvm_link_pending(p->link))
			usleep(200);
		seed = seed * 1103515245u + 12345u;
		usleep(seed >> 16 & 0x3FF); /* so the link is sometimes idle, sometimes not */
		for (int i = 0; i < 20; i++) {
			direct_press(p, &c);
			if (i % 4 == 3)
				usleep(300);
		}
		okvm_link_release_all(p->link);
		p->first_after[r] = c;
		for (int i = 0; i < 5; i++)
			direct_press(p, &c);
	}
	pthread_mutex_lock(&p->mu);
	p->done = true;
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* belief: ACKs sent */
static void
test_direct_write_threads(void **state)
{
	(void)state;
	setup_baud = 115200;
	struct fixture *fx = setup_link(12, 500);
	setup_baud = 0;
	link_set_clock(fx->link, NULL, NULL); /* the real clock, read on both threads */
	fx->link->gap_ns = 0;
	struct fake_auto a;
	fake_auto_start(&a, &fx->chip, 2000);
	struct direct_producer p = { .link = fx->link };
	pthread_mutex_init(&p.mu, NULL);
	pthread_t t;
	pthread_create(&t, NULL, direct_produce, &p);
	for (;;) {
		pthread_mutex_lock(&p.mu);
		bool done = p.done;
		pthread_mutex_unlock(&p.mu);
		if (done && !okvm_link_pending(fx->link))
			break;
		struct pollfd pfd = { .fd = okvm_link_fd(fx->link), .events = POLLIN };
		poll(&pfd, 1, 5);
		assert_int_equal(okvm_link_dispatch(fx->link), 0);
	}
	pthread_join(t, NULL);
	static const uint8_t media_up[] = { 0x57, 0xAB, 0x00, 0x03, 0x04, 0x02, 0, 0, 0, 0x0B };
	static const uint8_t rel_up[] = { 0x57, 0xAB, 0x00, 0x05, 0x05, 0x01, 0, 0, 0, 0, 0x0D };
	size_t n = fake_auto_count(&a); /* each recorded before its ACK went out: all are in */
	int round = 0;                  /* release-alls seen */
	unsigned last = 0;              /* the newest press counter seen */
	unsigned seen_after = 0;        /* presses seen since the last release-all */
	for (size_t i = 0; i < n; i++) {
		const uint8_t *f = a.frames[i];
		if (!memcmp(f, KBD_UP, sizeof(KBD_UP))) {
			/* the three frames together, in order */
			assert_true(i + 2 < n);
			assert_memory_equal(a.frames[i + 1], media_up, sizeof(media_up));
			assert_memory_equal(a.frames[i + 2], rel_up, sizeof(rel_up));
			i += 2;
			assert_true(round < DIRECT_ROUNDS);
			if (round)
				assert_true(seen_after >= 5); /* the previous one's 5 came first */
			/* no press queued after this release-all went before it */
			assert_true(last < p.first_after[round]);
			round++;
			seen_after = 0;
			continue;
		}
		uint8_t want[20];
		struct okvm_kbd_report r = direct_report(f[8] | (unsigned)f[9] << 8);
		assert_memory_equal(f, want, kbd_frame(want, &r)); /* byte-exact, sum included */
		unsigned c = f[8] | (unsigned)f[9] << 8;
		assert_true(c > last);       /* each press once, in order */
		if (round && seen_after < 5) /* none queued before the release-all after it, */
			assert_int_equal(c, p.first_after[round - 1] + seen_after); /* none lost */
		seen_after++;
		last = c;
	}
	assert_int_equal(round, DIRECT_ROUNDS);
	assert_true(seen_after >= 5);
	struct okvm_link_stats st;
	okvm_link_get_stats(fx->link, &st);
	assert_int_equal(st.reports_sent, n);
	assert_int_equal(st.acks, n);
	assert_int_equal(st.timeouts, 0);
	assert_true(st.direct > 0);               /* the producer wrote some itself ... */
	assert_true(st.direct < st.reports_sent); /* ... and the dispatch thread the rest */
	fake_auto_stop(&a);
	pthread_mutex_destroy(&p.mu);
	teardown_link(fx);
}

/* The text pacer (okvm/pacer.h): the rate limit by character, the bound on how far ahead of the
 * link it queues, and the characters counted as sent only once the link let them go. */
static void
test_pacer(void **state)
{
	(void)state;
	struct fixture *fx = setup_link(12, 500);
	static const struct okvm_kbd_report r[4] = { { .keys = { 0x04 } },
						     { .keys = { 0 } },
						     { .keys = { 0x05 } },
						     { .keys = { 0 } } };
	static const uint32_t chars[4] = { 0, 0, 1, 1 };
	struct okvm_pacer p;
	double wake;
	okvm_pacer_init(&p, r, chars, 4, 2, 10.0, 0, 100.0);
	assert_int_equal(okvm_pacer_run(&p, fx->link, 100.0, &wake), 0);
	assert_int_equal(p.next, 2); /* character 0 is due at once, character 1 at 100.1 */
	assert_true(wake > 100.09 && wake < 100.11);
	assert_int_equal(okvm_pacer_done(&p, fx->link), 0); /* both still with the link */
	assert_int_equal(okvm_pacer_run(&p, fx->link, 100.05, &wake), 0);
	assert_int_equal(p.next, 2); /* not yet */
	assert_int_equal(okvm_pacer_run(&p, fx->link, 100.1, &wake), 1);
	assert_int_equal(p.next, 4);
	assert_int_equal(okvm_link_pending(fx->link), 4);

	/* As fast as the link takes them, but never more than 2 waiting in it. */
	struct okvm_pacer q;
	okvm_pacer_init(&q, r, NULL, 4, 0, 0, 2, 0);
	okvm_link_release_all(fx->link); /* drops what p queued */
	size_t before = okvm_link_pending(fx->link);
	assert_int_equal(okvm_pacer_run(&q, fx->link, 1.0, &wake), 0);
	assert_int_equal(q.next, before >= 2 ? 0 : 2 - before);
	assert_true(wake > 1.09 && wake < 1.11);
	teardown_link(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ack_pacing_and_gap),
		cmocka_unit_test(test_release_all_jumps_queue),
		cmocka_unit_test(test_mouse_coalescing),
		cmocka_unit_test(test_abs_click_keeps_position),
		cmocka_unit_test(test_rel_summed_and_split),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_chip_never_answers),
		cmocka_unit_test(test_chip_never_answers_strict),
		cmocka_unit_test(test_pipeline_window),
		cmocka_unit_test(test_no_pipeline),
		cmocka_unit_test(test_pipeline_reply_matching),
		cmocka_unit_test(test_command_waits_for_window),
		cmocka_unit_test(test_garbage_and_bad_sum),
		cmocka_unit_test(test_port_vanishes),
		cmocka_unit_test(test_reopen_after_unplug),
		cmocka_unit_test(test_queue_bounded),
		cmocka_unit_test(test_info_poll),
		cmocka_unit_test(test_info_poll_due_after_open),
		cmocka_unit_test(test_baud_detection),
		cmocka_unit_test(test_baud_detection_gives_up),
		cmocka_unit_test(test_silent_get_info_opens),
		cmocka_unit_test(test_no_ack_goes_unpaced),
		cmocka_unit_test(test_set_baud_sequence),
		cmocka_unit_test(test_command_error_reply),
		cmocka_unit_test(test_factory_reset_rts),
		cmocka_unit_test(test_factory_reset_command),
		cmocka_unit_test(test_release_all_on_free),
		cmocka_unit_test(test_free_after_query_sends_nothing),
		cmocka_unit_test(test_threads_enqueue),
		cmocka_unit_test(test_direct_write_threads),
		cmocka_unit_test(test_info_version_layouts),
		cmocka_unit_test(test_dataflip_goes_ahead),
		cmocka_unit_test(test_dataflip_slow_target_no_ahead),
		cmocka_unit_test(test_reset_sequence),
		cmocka_unit_test(test_usb_switch_and_dtr_pulse),
		cmocka_unit_test(test_media_and_acpi_release),
		cmocka_unit_test(test_pacer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
