/*
 * DESIGN: link throughput and latency against an in-process fake CH9329 on a pty that ACKs at
 * once (tests/unit/fake-chip.c). Prints keyboard reports/s at the default gap and at gap 0, and
 * p50/p99 of enqueue -> first byte readable on the chip's side of the pty, with the link
 * dispatched on its own thread as okvm serve does. No wire time: a pty ignores the baud, so
 * these are the software's own costs; a real 115200 link adds ~1.2 ms per keyboard frame.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake-chip.h"
#include "okvm/link.h"

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct okvm_link *
open_link(struct fake_chip *c, bool no_gap)
{
	struct okvm_link_config cfg = { .path = c->slave, .baud = 115200, .no_gap = no_gap };
	struct okvm_link *l = okvm_link_new(&cfg);
	if (okvm_link_open(l) < 0) {
		fprintf(stderr, "bench-link: open failed\n");
		exit(1);
	}
	return l;
}

static double
throughput(bool no_gap, int n)
{
	struct fake_chip c;
	struct fake_auto a;
	fake_chip_open(&c);
	fake_auto_start(&a, &c, (size_t)n + 16);
	struct okvm_link *l = open_link(&c, no_gap);
	uint64_t t0 = now_ns();
	for (int i = 0; i < n; i++) {
		struct okvm_kbd_report r = { .keys = { (uint8_t)(4 + i % 26) } };
		okvm_link_send_kbd(l, &r);
	}
	okvm_link_flush(l, 120000);
	double s = (double)(now_ns() - t0) / 1e9;
	okvm_link_free(l);
	fake_auto_stop(&a);
	fake_chip_close(&c);
	return n / s;
}

struct loop {
	struct okvm_link *l;
	volatile bool stop;
};

static void *
dispatch_main(void *arg)
{
	struct loop *lp = arg;
	while (!lp->stop) {
		struct pollfd pfd = { .fd = okvm_link_fd(lp->l), .events = POLLIN };
		poll(&pfd, 1, 20);
		okvm_link_dispatch(lp->l);
	}
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void
latency(int n)
{
	struct fake_chip c;
	struct fake_auto a;
	fake_chip_open(&c);
	fake_auto_start(&a, &c, (size_t)n + 16);
	struct loop lp = { .l = open_link(&c, true) };
	size_t base = fake_auto_count(&a);
	pthread_t t;
	pthread_create(&t, NULL, dispatch_main, &lp);
	uint64_t *lat = calloc((size_t)n, sizeof(*lat));
	for (int i = 0; i < n; i++) {
		struct okvm_kbd_report r = { .keys = { (uint8_t)(4 + i % 26) } };
		uint64_t t0 = now_ns();
		okvm_link_send_kbd(lp.l, &r);
		/* wait without spinning: three threads share two cores here */
		struct timespec nap = { 0, 20000 };
		while (fake_auto_count(&a) < base + (size_t)i + 1 || okvm_link_pending(lp.l))
			nanosleep(&nap, NULL);
		lat[i] = a.first_byte_ns[base + (size_t)i] - t0;
	}
	lp.stop = true;
	pthread_join(t, NULL);
	qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
	printf("enqueue -> first byte on the fd (gap 0, %d samples): p50 %.1f us, p99 %.1f us, "
	       "max %.1f us\n", n, (double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3,
	       (double)lat[n - 1] / 1e3);
	free(lat);
	okvm_link_free(lp.l);
	fake_auto_stop(&a);
	fake_chip_close(&c);
}

int
main(void)
{
	printf("keyboard reports/s, default gap %d ms: %.1f\n", OKVM_LINK_DEFAULT_GAP_MS,
	       throughput(false, 250));
	printf("keyboard reports/s, gap 0 (ACK-paced only): %.1f\n", throughput(true, 5000));
	latency(2000);
	return 0;
}
