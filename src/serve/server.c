/*
 * DESIGN: the libwebsockets context of `okvm serve` and its one service thread.
 *
 * One protocol callback handles every connection; its per-session data is a struct conn whose
 * kind says what the connection became: a plain HTTP exchange (http.c), an MJPEG stream
 * (stream.c) or a WebSocket (ws.c). Everything lws-related runs on the thread that calls
 * serve_run(): lws calls are not thread-safe except lws_cancel_service(). The backend's threads
 * (capture, link dispatch, typing) reach this thread in two ways only: a new frame bumps an
 * atomic counter, anything else is pushed onto a locked, bounded event queue; both then call
 * lws_cancel_service(), and LWS_CALLBACK_EVENT_WAIT_CANCELLED drains them here.
 *
 * It deliberately does not decode, copy or re-encode video, and never blocks on a client.
 */
#include <arpa/inet.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "okvm/keymap.h"
#include "okvm/log.h"
#include "serve/internal.h"
#include "lib/xalloc.h"

uint64_t
serve_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
serve_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
serve_list_add(struct conn **head, struct conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

void
serve_list_del(struct conn **head, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (*head == c)
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/* No client, no capture (ARCHITECTURE 3). */
void
serve_update_want(struct serve *s)
{
	bool want = s->nstreams > 0 || s->nsockets > 0 || s->nstate_waiters > 0 || s->mcp_want > 0;
	want = want || s->ocr_want > 0 || vnc_wants_frames(s) || serve_record_active(s);
	if (want != s->wanting && s->be.ops->want_frames)
		s->be.ops->want_frames(s->be.ud, want);
	s->wanting = want;
}

/* ---- cross-thread notifications (called on backend threads) ---- */

static void
push_event(struct serve *s, const struct serve_event *ev)
{
	pthread_mutex_lock(&s->evq_lock);
	if (s->evq_len == SERVE_EVQ) {
		/* Full: the oldest goes; state is re-read as a whole anyway. */
		s->evq_head = (s->evq_head + 1) % SERVE_EVQ;
		s->evq_len--;
		s->evq_overflows++;
	}
	s->evq[(s->evq_head + s->evq_len) % SERVE_EVQ] = *ev;
	s->evq_len++;
	pthread_mutex_unlock(&s->evq_lock);
	lws_cancel_service(s->ctx);
}

static void
on_frame(void *ud)
{
	struct serve *s = ud;
	atomic_store(&s->frame_ready_us, serve_now_us());
	atomic_fetch_add(&s->frame_notifies, 1);
	lws_cancel_service(s->ctx);
}

static void
on_state(void *ud)
{
	push_event(ud, &(struct serve_event){ .type = EV_STATE });
}

void
serve_notify_state(struct serve *s)
{
	push_event(s, &(struct serve_event){ .type = EV_STATE });
}

static void
on_typing(size_t done, size_t total, int err, void *ud)
{
	push_event(ud, &(struct serve_event){ .type = EV_TYPING,
					      .done = done,
					      .total = total,
					      .err = err });
}

int
input_type(struct serve *s, const char *text, size_t len, const char *layout, double cps)
{
	if (!layout || !*layout)
		layout = s->cfg.layout;
	if (cps <= 0)
		cps = s->cfg.type_cps;
	int rc = s->be.ops->type(s->be.ud, text, len, layout, cps, on_typing, s);
	if (rc == 0) {
		s->typing_active = true;
		s->typing_done = 0;
		s->typing_total = 0;
		s->typing_err = 0;
		ws_broadcast_state(s);
	}
	return rc;
}

/* The video's mode and rate change without an event: look once a second while frames come. */
static void
check_video_state(struct serve *s)
{
	uint64_t now = serve_now_us();
	if (!s->nsockets || now - s->video_check_us < 1000000)
		return;
	s->video_check_us = now;
	struct serve_state st;
	s->be.ops->get_state(s->be.ud, &st);
	int fps = (int)lround(st.fps);
	if (fps == s->video_fps && st.width == s->video_w && st.height == s->video_h &&
	    st.signal == s->video_signal)
		return;
	s->video_fps = fps;
	s->video_w = st.width;
	s->video_h = st.height;
	s->video_signal = st.signal;
	ws_broadcast_state(s);
}

static void
drain_events(struct serve *s)
{
	auth_drain(s);
	console_drain(s);
	ocr_route_drain(s);
	mcp_http_drain(s);
	media_route_drain(s);
	uint64_t n = atomic_load(&s->frame_notifies);
	if (n != s->frames_seen) {
		s->frames_seen = n;
		stream_on_frame(s);
		record_on_frame(s);
		http_state_frame(s);
		ocr_route_frame(s);
		check_video_state(s);
	}
	variant_drain(s);
	ws_audio_drain(s);
	record_reap(s);
	if (s->vnc) {
		if (n != s->vnc_frames_seen) {
			s->vnc_frames_seen = n;
			vnc_on_frame(s);
		}
		vnc_drain(s);
	}
	struct serve_event evs[SERVE_EVQ];
	unsigned k = 0;
	pthread_mutex_lock(&s->evq_lock);
	while (s->evq_len) {
		evs[k++] = s->evq[s->evq_head];
		s->evq_head = (s->evq_head + 1) % SERVE_EVQ;
		s->evq_len--;
	}
	pthread_mutex_unlock(&s->evq_lock);
	if (!k)
		return;
	for (unsigned i = 0; i < k; i++) {
		if (evs[i].type != EV_TYPING)
			continue;
		s->typing_done = evs[i].done;
		s->typing_total = evs[i].total;
		s->typing_err = evs[i].err;
		s->typing_active = evs[i].err == 0 && evs[i].done < evs[i].total;
	}
	ws_broadcast_state(s);
}

/* ---- the protocol callback ---- */

static void
conn_init(struct conn *c, struct lws *wsi, struct serve *s, enum conn_kind kind)
{
	if (c->kind != CONN_NONE)
		return;
	c->kind = kind;
	c->wsi = wsi;
	c->s = s;
	c->id = ++s->next_id;
	if (!lws_get_peer_simple(wsi, c->peer, sizeof(c->peer)) || !c->peer[0])
		snprintf(c->peer, sizeof(c->peer), "unix"); /* a Unix socket has no address */
}

static int
on_http(struct lws *wsi, enum lws_callback_reasons reason, struct conn *c, struct serve *s,
	void *in, size_t len)
{
	bool ours = reason == LWS_CALLBACK_HTTP || reason == LWS_CALLBACK_HTTP_BODY ||
		    reason == LWS_CALLBACK_HTTP_BODY_COMPLETION ||
		    reason == LWS_CALLBACK_HTTP_WRITEABLE || reason == LWS_CALLBACK_CLOSED_HTTP ||
		    reason == LWS_CALLBACK_TIMER;
	if (ours && !c)
		return reason == LWS_CALLBACK_HTTP ? -1 : 0; /* no session data: nothing of ours */
	switch (reason) {
	case LWS_CALLBACK_HTTP: conn_init(c, wsi, s, CONN_HTTP); return http_on_request(c, in);
	case LWS_CALLBACK_HTTP_BODY: return http_on_body(c, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION: return http_on_body_done(c);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (c->kind == CONN_STREAM)
			return stream_writeable(c);
		return http_on_writeable(c);
	case LWS_CALLBACK_CLOSED_HTTP:
		if (c->kind == CONN_STREAM)
			stream_closed(c);
		else if (c->kind == CONN_HTTP)
			http_on_closed(c);
		if (c->kind == CONN_STREAM || c->kind == CONN_HTTP)
			c->kind = CONN_NONE;
		return 0;
	case LWS_CALLBACK_TIMER:
		if (c->kind == CONN_HTTP && c->http.ocr_job)
			return ocr_route_timer(c);
		if (c->kind == CONN_HTTP)
			return http_state_timer(c);
		return stream_timer(c);
	default: return lws_callback_http_dummy(wsi, reason, c, in, len);
	}
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct conn *c = user;
	struct serve *s = lws_context_user(lws_get_context(wsi));
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED: drain_events(s); return 0;
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return guard_accept(s, (int)(lws_intptr_t)in); /* user is lws's own filter data */
	case LWS_CALLBACK_WSI_CREATE: guard_created(s, wsi); return 0;
	case LWS_CALLBACK_WSI_DESTROY: guard_destroyed(s, wsi); return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		/* WebSocket only: HTTP/2 is not offered, so "Upgrade: h2c" gets no 101. */
		return in && !strcasecmp(in, "websocket") ? 0 : -1;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return ws_filter(&(struct conn){ .wsi = wsi, .s = s });
	case LWS_CALLBACK_ESTABLISHED:
		if (!c)
			return -1;
		memset(c, 0, sizeof(*c));
		if (console_uri(wsi)) {
			conn_init(c, wsi, s, CONN_CONSOLE);
			return console_established(c);
		}
		conn_init(c, wsi, s, CONN_WS);
		return ws_established(c);
	case LWS_CALLBACK_RECEIVE:
		if (c && c->kind == CONN_CONSOLE)
			return console_receive(c, in, len);
		return c && c->kind == CONN_WS ? ws_receive(c, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (c && c->kind == CONN_CONSOLE)
			return console_writeable(c);
		return c && c->kind == CONN_WS ? ws_writeable(c) : 0;
	case LWS_CALLBACK_CLOSED:
		if (c && c->kind == CONN_CONSOLE)
			console_closed(c);
		if (c && c->kind == CONN_WS)
			ws_closed(c);
		if (c)
			c->kind = CONN_NONE;
		return 0;
	default: return on_http(wsi, reason, c, s, in, len);
	}
}

static const struct lws_protocols protocols[] = {
	{ .name = "okvm",
	  .callback = callback,
	  .per_session_data_size = sizeof(struct conn),
	  .rx_buffer_size = 16384 },
	{ 0 },
};

/* ---- lifecycle ---- */

struct serve *
serve_new(const struct serve_config *cfg, struct serve_backend *be)
{
	struct serve *s = xcalloc(1, sizeof(*s));
	serve_config_copy(&s->cfg, cfg);
	s->be = *be;
	s->net_pending = -1;
	auth_learn_host_name(s);
	pthread_mutex_init(&s->evq_lock, NULL);
	pthread_mutex_init(&s->auth_lock, NULL);
	pthread_cond_init(&s->auth_cond, NULL);
	return s;
}

static void
lws_log_bridge(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	/* okvm reports what matters itself; lws's own lines are details for -v. */
	okvm_log(level == LLL_ERR ? OKVM_LOG_INFO : OKVM_LOG_DEBUG, "lws: %.*s", (int)n, line);
}

/* "127.0.0.1:8080", "[::1]:8080", ":8080", "0.0.0.0:80" -> address (NULL = any) and port. */
static int
parse_listen(const char *listen, char *addr, size_t n, int *port)
{
	if (!strncmp(listen, "unix:", 5)) { /* unix:/run/okvm.sock, for a reverse proxy */
		const char *path = listen + 5;
		if (path[0] != '/' || strlen(path) >= n || strlen(path) >= 108)
			return -EINVAL;
		snprintf(addr, n, "%s", path);
		*port = 0;
		return 0;
	}
	const char *colon = strrchr(listen, ':');
	if (!colon)
		return -EINVAL;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p < 1 || p > 65535 || end == colon + 1)
		return -EINVAL;
	*port = (int)p;
	const char *a = listen;
	size_t alen = (size_t)(colon - listen);
	if (alen >= 2 && a[0] == '[' && a[alen - 1] == ']') {
		a++;
		alen -= 2;
	}
	if (alen >= n)
		return -EINVAL;
	memcpy(addr, a, alen);
	addr[alen] = 0;
	return 0;
}

bool
serve_listen_valid(const char *listen)
{
	char addr[64];
	int port;
	return !parse_listen(listen, addr, sizeof(addr), &port);
}

bool
serve_listen_is_loopback(const char *listen)
{
	if (!strncmp(listen, "unix:", 5))
		return false; /* a reverse proxy brings the network: a password is required */
	char addr[64];
	int port;
	if (parse_listen(listen, addr, sizeof(addr), &port))
		return false;
	if (!strcmp(addr, "localhost") || !strcmp(addr, "::1"))
		return true;
	struct in_addr in;
	return inet_pton(AF_INET, addr, &in) == 1 && (ntohl(in.s_addr) >> 24) == 127;
}

/*
 * Bind the address once ourselves before lws does: the error is then a precise errno
 * (EADDRINUSE, EADDRNOTAVAIL, EACCES) rather than lws's "init server failed", and lws's own
 * failure path (which leaks a little) is not taken.
 */
static int
probe_bind(const char *addr, int port)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM },
			*res;
	char service[8];
	snprintf(service, sizeof(service), "%d", port);
	int rc = getaddrinfo(*addr ? addr : NULL, service, &hints, &res);
	if (rc)
		return -EADDRNOTAVAIL;
	rc = 0;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return rc;
}

/*
 * lws takes an interface name or a numeric address as its iface and, given a host name such as
 * "localhost", listens on nothing (it waits for an interface of that name). So a name is
 * resolved here, once: its first IPv4 address, else its first IPv6 one.
 */
static int
resolve_host(char *addr, size_t n)
{
	unsigned char buf[sizeof(struct in6_addr)];
	if (!*addr || inet_pton(AF_INET, addr, buf) == 1 || inet_pton(AF_INET6, addr, buf) == 1)
		return 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *pick = NULL;
	if (getaddrinfo(addr, NULL, &hints, &res)) {
		okvm_log(OKVM_LOG_ERROR,
			 "serve: cannot resolve '%s' of --listen: give an address of this host "
			 "(127.0.0.1:PORT, [::1]:PORT, 0.0.0.0:PORT)",
			 addr);
		return -EADDRNOTAVAIL;
	}
	for (struct addrinfo *r = res; r && !pick; r = r->ai_next)
		if (r->ai_family == AF_INET)
			pick = r;
	for (struct addrinfo *r = res; r && !pick; r = r->ai_next)
		if (r->ai_family == AF_INET6)
			pick = r;
	char num[INET6_ADDRSTRLEN] = "";
	if (pick && pick->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)pick->ai_addr)->sin_addr, num,
			  sizeof(num));
	else if (pick)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr, num,
			  sizeof(num));
	freeaddrinfo(res);
	if (!num[0] || strlen(num) >= n) {
		okvm_log(OKVM_LOG_ERROR, "serve: '%s' of --listen has no IP address", addr);
		return -EADDRNOTAVAIL;
	}
	okvm_log(OKVM_LOG_INFO, "serve: %s is %s", addr, num);
	snprintf(addr, n, "%s", num);
	return 0;
}

/* tls.c */
int serve_tls_self_signed(struct serve *s, char **cert, char **key);
int serve_tls_check_pair(const char *cert, const char *key);
void serve_tls_policy(struct lws_context_creation_info *info);

static int
setup_tls(struct serve *s, struct lws_context_creation_info *info, char **cert, char **key)
{
	*cert = *key = NULL;
	if (s->cfg.tls_self_signed && !s->cfg.tls_cert) {
		int rc = serve_tls_self_signed(s, cert, key);
		if (rc)
			return rc;
	} else if (s->cfg.tls_cert || s->cfg.tls_key) {
		if (!s->cfg.tls_cert || !s->cfg.tls_key) {
			okvm_log(OKVM_LOG_ERROR, "serve: --tls-cert and --tls-key go together");
			return -EINVAL;
		}
		*cert = xstrdup(s->cfg.tls_cert);
		*key = xstrdup(s->cfg.tls_key);
	} else {
		return 0;
	}
	/* lws_create_context() answers every TLS failure with NULL: check the pair first, so
	 * each problem gets its own line and code. */
	int rc = serve_tls_check_pair(*cert, *key);
	if (rc) {
		free(*cert);
		free(*key);
		*cert = *key = NULL;
		return rc;
	}
	serve_tls_policy(info);
	info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info->ssl_cert_filepath = *cert;
	info->ssl_private_key_filepath = *key;
	s->tls = true;
	return 0;
}

int
serve_start(struct serve *s)
{
	char addr[64];
	int port;
#ifdef __GLIBC__
	/* A fixed threshold: buffers of 1 MiB and more (frames drawn, decoded or encoded for a
	 * viewer) are mappings of their own, given back when freed. glibc's sliding one would put
	 * them in a thread's arena after the first such free, where they stay after the last
	 * viewer left (malloc_trim does not trim an arena's top). */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
	if (parse_listen(s->cfg.listen, addr, sizeof(addr), &port)) {
		okvm_log(OKVM_LOG_ERROR, "serve: bad listen address '%s' (want ADDR:PORT)",
			 s->cfg.listen);
		return -EINVAL;
	}
	if (!serve_listen_is_loopback(s->cfg.listen) && !auth_required(s)) {
		okvm_log(OKVM_LOG_ERROR,
			 "serve: listening on %s needs a password: run `okvm passwd`",
			 s->cfg.listen);
		return -EACCES;
	}
	bool unix_sock = !strncmp(s->cfg.listen, "unix:", 5);
	if (s->cfg.auth_mode == SERVE_AUTH_ALWAYS &&
	    !(s->cfg.password_hash && *s->cfg.password_hash) && !s->cfg.nusers) {
		okvm_log(OKVM_LOG_ERROR, "serve: auth = always needs a user: run `okvm passwd`");
		return -EACCES;
	}
	int rc = 0;
	if ((rc = h264_encoder_check(s->cfg.h264_encoder)))
		return rc;
	if (!unix_sock && (rc = resolve_host(addr, sizeof(addr))))
		return rc;
	if (unix_sock) {
		struct stat st;
		/* A socket left by an earlier run is taken over; anything else at the path is not. */
		if (!lstat(addr, &st) && S_ISSOCK(st.st_mode))
			unlink(addr);
		else if (!lstat(addr, &st)) {
			okvm_log(OKVM_LOG_ERROR, "serve: %s exists and is not a socket", addr);
			return -EEXIST;
		}
	} else {
		rc = probe_bind(strcmp(addr, "0.0.0.0") && strcmp(addr, "::") ? addr : "", port);
	}
	if (rc)
		return rc;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_bridge);
	struct lws_context_creation_info info = { 0 };
	info.port = port;
	info.iface = (!*addr || !strcmp(addr, "0.0.0.0") || !strcmp(addr, "::")) ? NULL : addr;
	info.protocols = protocols;
	info.user = s;
	info.max_http_header_data = SERVE_MAX_HEADER;
	info.max_http_header_pool = (unsigned short)(s->cfg.max_clients + 8);
	info.fd_limit_per_thread = (unsigned)s->cfg.max_clients + 16;
	info.keepalive_timeout = 30;
	info.timeout_secs = (unsigned)s->cfg.stall_timeout_s;
	info.alpn = "http/1.1";
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (info.iface && strchr(addr, '.') && !unix_sock)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	if (unix_sock)
		info.options |= LWS_SERVER_OPTION_UNIX_SOCK;
	char *cert, *key;
	rc = setup_tls(s, &info, &cert, &key);
	if (rc)
		return rc;
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		free(cert);
		free(key);
	}
	if (!s->ctx && s->tls) {
		/* probe_bind() and serve_tls_check_pair() passed: most likely TLS set-up that
		 * only lws tried (its own reason is in the -v log). */
		okvm_log(OKVM_LOG_ERROR,
			 "serve: libwebsockets could not set up TLS on %s "
			 "(run with -v for its reason)",
			 s->cfg.listen);
		return -EPROTO;
	}
	if (!s->ctx)
		return -EADDRINUSE; /* or an address not of this host: lws does not say which */
	/* lws may come up listening on nothing (an iface it waits for): if the port can still be
	 * bound, nobody listens on it, and "serving on" would be a lie. */
	if (!unix_sock &&
	    !probe_bind(strcmp(addr, "0.0.0.0") && strcmp(addr, "::") ? addr : "", port)) {
		okvm_log(OKVM_LOG_ERROR, "serve: libwebsockets is not listening on %s",
			 s->cfg.listen);
		lws_context_destroy(s->ctx);
		s->ctx = NULL;
		free(cert);
		free(key);
		return -EADDRNOTAVAIL;
	}
	if (unix_sock && chmod(addr, 0660)) /* the proxy's group may connect, nobody else */
		okvm_log(OKVM_LOG_WARN, "serve: chmod %s: %s", addr, strerror(errno));
	if (s->be.ops->set_notify)
		s->be.ops->set_notify(s->be.ud, on_frame, on_state, s);
	serve_console_start(s);
	rc = vnc_start(s, cert, key);
	free(cert);
	free(key);
	if (rc)
		return rc;
	okvm_log(OKVM_LOG_INFO, "serve: listening on %s://%s", s->tls ? "https" : "http",
		 s->cfg.listen);
	return 0;
}

int
serve_run(struct serve *s, volatile int *stop)
{
	while (!*stop) {
		if (lws_service(s->ctx, 0) < 0)
			return -EIO;
	}
	return 0;
}

void
serve_free(struct serve *s)
{
	if (!s)
		return;
	serve_record_free(s);  /* a recording ends with its trailer, while frames still come */
	serve_media_stop(s);   /* a write under way stops; it may press power: first */
	serve_power_free(s);   /* a press under way ends, its line released */
	serve_console_free(s); /* its thread wakes the context: before it goes */
	if (s->ctx) {
		if (s->be.ops->set_notify)
			s->be.ops->set_notify(s->be.ud, NULL, NULL, NULL);
		for (struct conn *c = s->sockets; c; c = c->next)
			input_release_client(s, c);
		vnc_free(s);         /* its threads push events and wake the context */
		mcp_http_stop(s);    /* its jobs use the backend: before it goes */
		auth_stop(s);        /* it wakes the context: stop it first */
		ocr_route_stop(s);   /* the same */
		serve_audio_free(s); /* it wakes the context */
		lws_context_destroy(s->ctx);
	}
	serve_audio_free(s); /* no context: never started */
	serve_media_free(s); /* after the context: a cut upload's close cleans its spool */
	auth_free(s);
	ocr_route_free(s);
	okvm_keymap_free(s->km);
	if (s->be.ops && s->be.ops->release_all)
		s->be.ops->release_all(s->be.ud);
	if (s->be.ops && s->be.ops->destroy)
		s->be.ops->destroy(s->be.ud);
	pthread_mutex_destroy(&s->evq_lock);
	pthread_mutex_destroy(&s->auth_lock);
	pthread_cond_destroy(&s->auth_cond);
	serve_config_clear(&s->cfg);
	free(s);
}

/* One pass of the service loop; for callers that run their own loop (the HTTP fuzz target). */
int
serve_service(struct serve *s, int timeout_ms)
{
	return lws_service(s->ctx, timeout_ms) < 0 ? -EIO : 0;
}
