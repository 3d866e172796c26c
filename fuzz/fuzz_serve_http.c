/*
 * Fuzz target: whole HTTP connections to a real okvm serve in this process, listening on
 * 127.0.0.1 with a password set (so the login paths run) and a stub backend that accepts every
 * input and has no video. Each input is the bytes one client sends on one TCP connection:
 * requests, pipelined requests, bodies, a WebSocket upgrade and its frames.
 *
 * Input: byte 0 says how the rest is sent: bits 0-1 + 1 is the number of write()s the rest is cut
 * into (equal pieces; the server is served until quiet after each), bit 2 closes the sending
 * half after the last piece. The rest is sent as is.
 *
 * The service loop runs on this thread (serve_service) until the server closes the connection
 * or goes quiet: no byte for QUIET_PASSES passes and no login check under way (an argon2 check
 * runs on the okvm-auth thread; its answer may come a few tens of ms later).
 *
 * One session is known to the fuzzer: SESSION, planted in the server before each input, so
 * inputs that carry "Cookie: okvm_session=SESSION" reach the logged-in routes. Without it in the
 * input no request may reach the backend's input operations (keys, mouse, typing, switch):
 * that would be a way past the login, and aborts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "okvm/log.h"
#include "serve/internal.h"

#define PASSWORD "fuzz-password"
#define METRICS_TOKEN "fuzz-metrics-token-0123"
#define SESSION "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"
#define QUIET_PASSES 4
#define MAX_WAIT_MS 300
#define MAX_SEND (256 * 1024)

static struct serve *server;
static int port;
static unsigned input_calls; /* backend input operations during this input */

/* ---- the stub backend: accepts everything, records nothing but a count, no frames ---- */

/* clang-format off */
static int b_key(void *ud, const char *c, bool d) { input_calls++; return 0; }
static int b_combo(void *ud, const char *c) { input_calls++; return 0; }
static int b_abs(void *ud, double x, double y, uint8_t b) { input_calls++; return 0; }
static int b_buttons(void *ud, uint8_t b) { input_calls++; return 0; }
static int b_wheel(void *ud, int dy, int dx) { input_calls++; return 0; }
static int b_rel(void *ud, int dx, int dy, uint8_t b) { input_calls++; return 0; }
static int b_release(void *ud) { input_calls++; return 0; }
static int b_switch(void *ud, enum okvm_usb_dir to) { input_calls++; return 0; }
static struct okvm_frame *b_newest(void *ud) { return NULL; }
static void b_unref(void *ud, struct okvm_frame *f) { }
static void b_want(void *ud, bool want) { }
/* clang-format on */

static int
b_type(void *ud, const char *t, size_t n, const char *l, double cps, serve_type_progress_fn fn,
       void *fud)
{
	input_calls++;
	return 0;
}

static void
b_state(void *ud, struct serve_state *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->unit, sizeof(out->unit), "fuzz");
	out->has_input = true;
	out->has_video = true;
	out->target_connected = true;
}

/* clang-format off */
static const struct serve_backend_ops ops = {
	.key = b_key, .combo = b_combo, .mouse_abs = b_abs, .buttons = b_buttons, .wheel = b_wheel,
	.rel = b_rel, .type = b_type, .release_all = b_release, .usb_switch = b_switch,
	.get_state = b_state, .newest_frame = b_newest, .frame_unref = b_unref,
	.want_frames = b_want,
};
/* clang-format on */

/* ---- set-up, once per process ---- */

static void
drop_log(enum okvm_log_level level, const char *fmt, va_list ap, void *ud)
{
}

/* serve_start refuses port 0: take a free one from the kernel and hand it over. */
static int
free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		abort();
	close(fd);
	return ntohs(a.sin_port);
}

/* At exit, so that the okvm-auth thread is joined: valgrind counts a running thread's stack as
 * possibly lost. */
static void
stop_server(void)
{
	serve_free(server);
	server = NULL;
}

static void
start_server(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!getenv("FUZZ_VERBOSE"))
		okvm_log_set_handler(drop_log, NULL);
	struct serve_config cfg;
	serve_config_init(&cfg);
	if (serve_password_hash(PASSWORD, &cfg.password_hash))
		abort();
	cfg.metrics_token = strdup(METRICS_TOKEN);
	cfg.login_max_failures = 1000; /* keep the login path open for the fuzzer */
	cfg.login_lockout_s = 1;
	port = free_port();
	free(cfg.listen);
	if (asprintf(&cfg.listen, "127.0.0.1:%d", port) < 0)
		abort();
	struct serve_backend be = { .ops = &ops };
	server = serve_new(&cfg, &be);
	serve_config_clear(&cfg);
	if (serve_start(server)) {
		fprintf(stderr, "fuzz-serve-http: cannot listen on 127.0.0.1:%d\n", port);
		abort();
	}
	atexit(stop_server);
}

/* Put SESSION back (a logout in the last input may have ended it). */
static void
plant_session(struct serve *s)
{
	for (int i = 0; i < SERVE_MAX_SESSIONS; i++)
		if (!strcmp(s->sessions[i].token, SESSION))
			return;
	struct session *se = &s->sessions[SERVE_MAX_SESSIONS - 1];
	snprintf(se->token, sizeof(se->token), "%s", SESSION);
	se->expires_us = serve_wall_us() + 3600ull * 1000000;
}

static bool
login_in_flight(struct serve *s)
{
	for (int i = 0; i < SERVE_LOGIN_SLOTS; i++)
		if (s->logins[i].pending)
			return true;
	return false;
}

static uint64_t
now_ms(void)
{
	return serve_now_us() / 1000;
}

/* ---- one connection ---- */

/* Serve and read the client side until quiet. Returns false once the server closed it. */
static bool
pump(int fd)
{
	int quiet = 0;
	uint64_t start = now_ms();
	while (quiet < QUIET_PASSES || login_in_flight(server)) {
		if (serve_service(server, -1))
			abort();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		quiet++;
		if (poll(&p, 1, 1) > 0) {
			char buf[65536];
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
				return false;
			if (n > 0)
				quiet = 0;
		}
		if (now_ms() - start > MAX_WAIT_MS)
			break; /* a stream or a snapshot waiting for a frame that never comes */
	}
	return true;
}

/* Returns false once the server closed the connection. */
static bool
send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return false;
		if (k > 0) {
			p += k;
			n -= (size_t)k;
		} else if (!pump(fd)) {
			return false;
		}
	}
	return pump(fd);
}

static int
connect_client(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		abort(); /* the listen backlog takes it before the server accepts */
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!server)
		start_server();
	if (!size || size > MAX_SEND)
		return 0;
	plant_session(server);
	input_calls = 0;
	unsigned pieces = (data[0] & 3) + 1;
	bool half_close = data[0] & 4;
	const uint8_t *p = data + 1;
	size_t n = size - 1, each = n / pieces + 1;
	int fd = connect_client();
	bool open = true;
	for (unsigned i = 0; i < pieces && open && n; i++) {
		size_t k = n < each ? n : each;
		open = send_all(fd, p, k);
		p += k;
		n -= k;
	}
	if (open && half_close) {
		shutdown(fd, SHUT_WR);
		pump(fd);
	}
	close(fd);
	/* Let the server see the close and free the connection before the next input. */
	for (int i = 0; i < QUIET_PASSES; i++) {
		serve_service(server, -1);
		poll(NULL, 0, 1);
	}
	if (input_calls && !memmem(data, size, SESSION, strlen(SESSION)))
		abort(); /* the backend was driven without the session: a way past the login */
	return 0;
}
