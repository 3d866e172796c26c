/*
 * DESIGN: the client side of bench/fanout.py: N MJPEG clients of okvm serve in one thread
 * (epoll), plus optionally one client that connects and never reads. Parses just enough of
 * multipart/x-mixed-replace to count whole frames, and measures, per frame, the time from its
 * X-Timestamp (CLOCK_MONOTONIC capture time, same clock here) to the moment its last byte was
 * read. Prints one JSON object: per-client fps, latency p50/p99/max over all clients, and
 * p50/p99 over frames of the latency of the last client to get each frame ("all").
 * Usage: fanout_client PORT N SECONDS [STALLED(0|1)]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (1 << 20)

struct client {
	int fd;
	char *buf;
	size_t len;
	size_t need;        /* bytes of the current JPEG still to skip; 0 = parsing headers */
	double ts;          /* X-Timestamp of the current part */
	long frames;
};

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
dial(int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		exit(1);
	}
	char req[128];
	int n = snprintf(req, sizeof(req), "GET /stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
	if (write(fd, req, (size_t)n) != n)
		exit(1);
	return fd;
}

static double *lat;
static struct sample {
	double ts, lat;
} *smp;
static size_t nlat, caplat;

static void
record(double ts, double l)
{
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 4096;
		lat = realloc(lat, caplat * sizeof(*lat));
		smp = realloc(smp, caplat * sizeof(*smp));
	}
	smp[nlat] = (struct sample){ ts, l };
	lat[nlat++] = l;
}

/* Consume what is buffered: headers (find Content-Length and X-Timestamp), then the JPEG. */
static void
parse(struct client *c, double t)
{
	size_t off = 0;
	for (;;) {
		if (c->need) {
			size_t take = c->len - off < c->need ? c->len - off : c->need;
			off += take;
			c->need -= take;
			if (c->need)
				break;
			c->frames++;
			record(c->ts, t - c->ts);
			continue;
		}
		char *end = memmem(c->buf + off, c->len - off, "\r\n\r\n", 4);
		if (!end)
			break;
		*end = 0;
		char *cl = strcasestr(c->buf + off, "Content-Length:");
		char *ts = strcasestr(c->buf + off, "X-Timestamp:");
		size_t hdr_end = (size_t)(end - c->buf) + 4;
		if (cl && ts) {
			c->need = strtoul(cl + 15, NULL, 10) + 2; /* + CRLF before the boundary */
			c->ts = strtod(ts + 12, NULL);
			c->need -= 2;
		}
		off = hdr_end;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int
cmp_ts(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;
	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* Per frame (one X-Timestamp), the latency of the last client to have it all: "written to
 * all clients". Only frames every client received count. Returns how many; sorted in out. */
static size_t
per_frame_max(int n, double *out)
{
	qsort(smp, nlat, sizeof(*smp), cmp_ts);
	size_t k = 0;
	for (size_t i = 0; i < nlat;) {
		size_t j = i;
		double mx = 0;
		for (; j < nlat && smp[j].ts == smp[i].ts; j++)
			mx = smp[j].lat > mx ? smp[j].lat : mx;
		if ((int)(j - i) == n)
			out[k++] = mx;
		i = j;
	}
	qsort(out, k, sizeof(*out), cmp);
	return k;
}

int
main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	int port = atoi(argv[1]), n = atoi(argv[2]);
	double secs = atof(argv[3]);
	int stalled_fd = argc > 4 && atoi(argv[4]) ? dial(port, 4096) : -1;
	struct client *cs = calloc((size_t)n, sizeof(*cs));
	int ep = epoll_create1(0);
	for (int i = 0; i < n; i++) {
		cs[i].fd = dial(port, 0);
		cs[i].buf = malloc(BUF);
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	double warm = now() + 1.0, stop = warm + secs;
	long *base = calloc((size_t)n, sizeof(long));
	bool measuring = false;
	while (now() < stop) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, 100);
		double t = now();
		if (!measuring && t >= warm) {
			measuring = true;
			nlat = 0;
			for (int i = 0; i < n; i++)
				base[i] = cs[i].frames;
		}
		for (int j = 0; j < k; j++) {
			struct client *c = &cs[evs[j].data.u32];
			ssize_t r = read(c->fd, c->buf + c->len, BUF - c->len);
			if (r <= 0) {
				fprintf(stderr, "client %u closed\n", evs[j].data.u32);
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				continue;
			}
			c->len += (size_t)r;
			parse(c, t);
		}
	}
	double *all = malloc((nlat + 1) * sizeof(*all));
	size_t nall = per_frame_max(n, all);
	qsort(lat, nlat, sizeof(*lat), cmp);
	double minfps = 1e9, sum = 0;
	printf("{\"clients\":%d,\"fps\":[", n);
	for (int i = 0; i < n; i++) {
		double f = (double)(cs[i].frames - base[i]) / secs;
		minfps = f < minfps ? f : minfps;
		sum += f;
		printf("%s%.1f", i ? "," : "", f);
	}
	printf("],\"min_fps\":%.1f,\"mean_fps\":%.1f,\"lat_p50_ms\":%.2f,\"lat_p99_ms\":%.2f,"
	       "\"lat_max_ms\":%.2f,\"frames\":%zu,\"all_p50_ms\":%.2f,\"all_p99_ms\":%.2f,"
	       "\"all_frames\":%zu}\n", minfps, sum / n,
	       nlat ? lat[nlat / 2] * 1e3 : 0, nlat ? lat[(size_t)(nlat * 0.99)] * 1e3 : 0,
	       nlat ? lat[nlat - 1] * 1e3 : 0, nlat, nall ? all[nall / 2] * 1e3 : 0,
	       nall ? all[(size_t)(nall * 0.99)] * 1e3 : 0, nall);
	free(all);
	if (stalled_fd >= 0)
		close(stalled_fd);
	return 0;
}
