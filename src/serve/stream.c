/*
 * DESIGN: MJPEG fan-out and snapshots, as ustreamer does it on libevent, on lws's writeable
 * callback (ARCHITECTURE 3).
 *
 * A stream client is given the newest frame only once everything it was sent before has
 * drained: the client takes a reference to the newest frame, and the JPEG is written straight
 * from the shared buffer for as long as the socket takes it. A slow client therefore skips
 * frames and costs the others nothing. On a plain socket the part goes out with sendmsg and
 * nothing is copied in user space (send_direct), and a client that is idle when the frame
 * arrives is written to at once (push_direct); only one whose socket is full waits for
 * LWS_CALLBACK_HTTP_WRITEABLE, so lws polls no fd per client per frame. Under TLS it goes
 * through lws_write in SERVE_CHUNK pieces and lws buffers at most the unsent tail of one. A part
 * that does not finish within stall_timeout_s gets the client dropped (lws_set_timeout).
 *
 * Each part: "Content-Type", "Content-Length" and "X-Timestamp" (the frame's CLOCK_MONOTONIC
 * capture time in seconds) headers, the JPEG, then the next boundary right away, so browsers
 * show a frame as soon as it is complete instead of when the next one starts.
 *
 * A snapshot waits (as a stream client, so capture runs) for a frame newer than the one current
 * when it asked, unless capture was already running, then answers with one JPEG.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "okvm/log.h"
#include "serve/internal.h"
#include "lib/xalloc.h"

static const char part_trailer[] = "\r\n--" SERVE_BOUNDARY "\r\n";

static struct okvm_frame *
newest(struct serve *s)
{
	return s->be.ops->newest_frame ? s->be.ops->newest_frame(s->be.ud) : NULL;
}

static void
unref(struct serve *s, struct okvm_frame *f)
{
	if (f)
		s->be.ops->frame_unref(s->be.ud, f);
}

/* A stream client's frames: its variant's, or the device's. */
static struct okvm_frame *
conn_newest(struct conn *c)
{
	return c->stream.variant ? variant_newest(c->stream.variant) : newest(c->s);
}

static void
conn_unref(struct conn *c, struct okvm_frame *f)
{
	if (c->stream.variant)
		okvm_frame_unref(f);
	else
		unref(c->s, f);
}

static int
snapshot_reply(struct conn *c, struct okvm_frame *f)
{
	char hdr[160];
	snprintf(hdr, sizeof(hdr),
		 "Content-Disposition: inline; filename=\"okvm-%" PRIu64 ".jpg\"\r\n"
		 "X-Timestamp: %" PRIu64 ".%06" PRIu64 "\r\n",
		 f->seq, f->ts_us / 1000000u, f->ts_us % 1000000u);
	http_set_headers(c, 200, "image/jpeg", (long long)f->size, hdr);
	c->http.body_frame = f;
	c->http.body_ptr = f->data;
	c->http.body_size = f->size;
	c->http.body_off = 0;
	lws_callback_on_writable(c->wsi);
	return 0;
}

static void
snapshot_done_waiting(struct conn *c)
{
	struct serve *s = c->s;
	serve_list_del(&s->streams, c);
	s->nstreams--;
	c->stream.snapshot = false;
	c->kind = CONN_HTTP;
	lws_set_timer_usecs(c->wsi, -1);
	serve_update_want(s);
}

int
stream_timer(struct conn *c)
{
	if (c->kind != CONN_STREAM || !c->stream.snapshot)
		return 0;
	snapshot_done_waiting(c);
	return http_reply_error(c, 503, "no video frame (no signal or no capture)");
}

static int
snapshot_begin(struct conn *c)
{
	struct serve *s = c->s;
	struct okvm_frame *f = newest(s);
	if (f && s->wanting)
		return snapshot_reply(c, f);
	c->stream.snap_after_seq = f ? f->seq : 0;
	unref(s, f);
	c->kind = CONN_STREAM;
	c->stream.snapshot = true;
	serve_list_add(&s->streams, c);
	s->nstreams++;
	serve_update_want(s);
	lws_set_timer_usecs(c->wsi, (lws_usec_t)s->cfg.stall_timeout_s * 1000000);
	return 0;
}

int
stream_begin(struct conn *c, bool snapshot)
{
	struct serve *s = c->s;
	if (snapshot)
		return snapshot_begin(c);
	struct variant_key k = { 0 };
	char err[160];
	if (variant_parse(c->wsi, &k, err, sizeof(err)))
		return http_reply_error(c, 400, err);
	if ((k.fps || k.quality || k.width) && !(c->stream.variant = variant_get(s, &k)))
		return http_reply_error(c, 503, "could not start a reduced stream");
	/* Open-ended: no Content-Length; the body starts with the first boundary. */
	const char *txt = "HTTP/1.1 200 OK\r\n"
			  "Content-Type: multipart/x-mixed-replace;boundary=" SERVE_BOUNDARY "\r\n"
			  "Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n"
			  "Pragma: no-cache\r\n"
			  "X-Content-Type-Options: nosniff\r\n"
			  "Connection: close\r\n\r\n"
			  "--" SERVE_BOUNDARY "\r\n";
	size_t n = strlen(txt);
	c->http.resp = xmalloc(LWS_PRE + n);
	memcpy(c->http.resp + LWS_PRE, txt, n);
	c->http.resp_len = n;
	c->http.resp_off = 0;
	c->kind = CONN_STREAM;
	c->stream.phase = PART_IDLE;
	c->stream.fps_window_start_us = serve_now_us();
	serve_list_add(&s->streams, c);
	s->nstreams++;
	serve_update_want(s);
	okvm_log(OKVM_LOG_INFO, "serve: stream client %u from %s", c->id, c->peer);
	lws_callback_on_writable(c->wsi);
	return 0;
}

int
stream_begin_h264(struct conn *c)
{
	struct serve *s = c->s;
	struct variant_key k = { .h264 = true };
	char err[160];
	if (variant_parse(c->wsi, &k, err, sizeof(err)))
		return http_reply_error(c, 400, err);
	if (!(c->stream.variant = variant_get(s, &k)))
		return http_reply_error(c, 503, "could not start the H.264 encoder");
	const char *txt = "HTTP/1.1 200 OK\r\n"
			  "Content-Type: video/h264\r\n"
			  "Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n"
			  "X-Content-Type-Options: nosniff\r\n"
			  "Connection: close\r\n\r\n";
	size_t n = strlen(txt);
	c->http.resp = xmalloc(LWS_PRE + n);
	memcpy(c->http.resp + LWS_PRE, txt, n);
	c->http.resp_len = n;
	c->http.resp_off = 0;
	c->kind = CONN_STREAM;
	c->stream.h264 = true;
	c->stream.need_idr = true;
	c->stream.phase = PART_IDLE;
	c->stream.fps_window_start_us = serve_now_us();
	serve_list_add(&s->streams, c);
	s->nstreams++;
	serve_update_want(s);
	okvm_log(OKVM_LOG_INFO, "serve: H.264 stream client %u from %s", c->id, c->peer);
	lws_callback_on_writable(c->wsi);
	return 0;
}

/* Start timing a fan-out: the frame is out once every client idle now has written it. */
static void
fan_begin(struct serve *s)
{
	if (s->fan_pending) {
		/* Overtaken: count it, and keep how long it had taken so far (a lower bound). */
		s->fan_incomplete++;
		metrics_add(&s->lat_fanout, serve_now_us() - s->fan_ready_us);
	}
	struct okvm_frame *f = newest(s);
	s->fan_seq = f ? f->seq : 0;
	s->fan_ready_us = atomic_load(&s->frame_ready_us);
	s->fan_pending = 0;
	unref(s, f);
}

static void
fan_done(struct conn *c, uint64_t now)
{
	struct serve *s = c->s;
	if (!c->stream.in_fan)
		return;
	c->stream.in_fan = false;
	if (s->fan_pending && --s->fan_pending == 0 && now >= s->fan_ready_us)
		metrics_add(&s->lat_fanout, now - s->fan_ready_us);
}

static bool start_part(struct conn *c);
static int send_direct(struct conn *c);

/*
 * Plain sockets: an idle client gets the new frame right here, one sendmsg, instead of a
 * writeable callback: lws would otherwise poll every stream fd once per client per frame (the
 * poll work grows as N squared). Only a client whose socket is full waits for a callback.
 */
static void
push_direct(struct conn *c)
{
	if (!start_part(c))
		return;
	int r = send_direct(c);
	if (r < 0)
		c->stream.failed = true;
	if (r <= 0)
		lws_callback_on_writable(c->wsi);
}

void
stream_on_frame(struct serve *s)
{
	struct conn *next;
	fan_begin(s);
	if (s->variants) {
		struct okvm_frame *f = newest(s);
		variant_feed_all(s, f);
		unref(s, f);
	}
	for (struct conn *c = s->streams; c; c = next) {
		next = c->next;
		c->stream.in_fan = false;
		if (c->stream.variant)
			continue; /* stream_on_variant */
		if (c->stream.snapshot) {
			struct okvm_frame *f = newest(s);
			if (f && f->seq > c->stream.snap_after_seq) {
				snapshot_done_waiting(c);
				snapshot_reply(c, f);
			} else {
				unref(s, f);
			}
			continue;
		}
		if (c->stream.phase != PART_IDLE)
			continue;
		if (!c->stream.draining && c->stream.last_seq != s->fan_seq) {
			c->stream.in_fan = true;
			s->fan_pending++;
		}
		if (!s->tls && !c->stream.draining && !c->http.resp &&
		    !lws_partial_buffered(c->wsi))
			push_direct(c);
		else
			lws_callback_on_writable(c->wsi);
	}
}

void
stream_on_variant(struct serve *s, struct stream_variant *v)
{
	ws_video_on_variant(s, v);
	struct conn *next;
	for (struct conn *c = s->streams; c; c = next) {
		next = c->next;
		if (c->stream.variant != v || c->stream.phase != PART_IDLE)
			continue;
		if (!s->tls && !c->stream.draining && !c->http.resp &&
		    !lws_partial_buffered(c->wsi))
			push_direct(c);
		else
			lws_callback_on_writable(c->wsi);
	}
}

static void
count_fps(struct serve *s, struct conn *c, uint64_t now)
{
	c->stream.fps_window_frames++;
	if (now - c->stream.fps_window_start_us >= 1000000) {
		c->stream.fps = (double)c->stream.fps_window_frames * 1e6 /
				(double)(now - c->stream.fps_window_start_us);
		c->stream.fps_window_frames = 0;
		c->stream.fps_window_start_us = now;
	}
	s->served_window_frames++;
	if (now - s->served_window_start_us >= 1000000) {
		s->served_fps = (double)s->served_window_frames * 1e6 /
				(double)(now - s->served_window_start_us);
		s->served_window_frames = 0;
		s->served_window_start_us = now;
	}
}

/* Take the newest frame if it is one this client has not had. */
static bool
start_part(struct conn *c)
{
	struct serve *s = c->s;
	struct okvm_frame *f = conn_newest(c);
	if (!f || f->seq == c->stream.last_seq) {
		conn_unref(c, f);
		c->stream.waiting = true;
		return false;
	}
	if (c->stream.h264) {
		/* A viewer decodes from an IDR on, and cannot skip a picture: after a gap it waits
		 * for the next IDR (and asks for one). */
		if (!c->stream.need_idr && c->stream.last_seq && f->seq != c->stream.last_seq + 1) {
			c->stream.need_idr = true;
			c->stream.frames_skipped += f->seq - c->stream.last_seq - 1;
		}
		if (c->stream.need_idr && !h264_au_is_idr(f->data, f->size)) {
			variant_want_idr(c->stream.variant);
			c->stream.last_seq = f->seq; /* wait for a newer one */
			conn_unref(c, f);
			c->stream.waiting = true;
			return false;
		}
		c->stream.need_idr = false;
	}
	if (!c->stream.variant && c->stream.last_seq && f->seq > c->stream.last_seq + 1)
		c->stream.frames_skipped += f->seq - c->stream.last_seq - 1;
	c->stream.cur = f;
	/* Latency counts only from a notify this client was waiting for (not a backlog). */
	c->stream.ready_us = c->stream.waiting ? atomic_load(&s->frame_ready_us) : 0;
	c->stream.waiting = false;
	int n = c->stream.h264 ? 0 /* raw Annex-B: access units back to back */
			       : snprintf(c->stream.part_hdr + LWS_PRE,
					  sizeof(c->stream.part_hdr) - LWS_PRE,
					  "Content-Type: image/jpeg\r\nContent-Length: %zu\r\n"
					  "X-Timestamp: %" PRIu64 ".%06" PRIu64 "\r\n\r\n",
					  f->size, f->ts_us / 1000000u, f->ts_us % 1000000u);
	c->stream.part_hdr_len = (size_t)n;
	c->stream.part_off = 0;
	c->stream.part_start_us = serve_now_us();
	c->stream.phase = PART_HEADER;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_CONTENT, s->cfg.stall_timeout_s);
	return true;
}

static void
finish_part(struct conn *c)
{
	struct serve *s = c->s;
	uint64_t now = serve_now_us();
	c->stream.last_seq = c->stream.cur->seq;
	conn_unref(c, c->stream.cur);
	c->stream.cur = NULL;
	c->stream.phase = PART_IDLE;
	s->frames_served++;
	if (c->stream.ready_us && now >= c->stream.ready_us)
		metrics_add(&s->lat_write, now - c->stream.ready_us);
	if (!c->stream.variant && c->stream.last_seq == s->fan_seq)
		fan_done(c, now);
	count_fps(s, c, now);
	/* Under TLS lws may hold an unsent tail: the part is not out yet, and the timeout stays
	 * armed until the next writeable callback says the socket drained. A direct send that
	 * finished left nothing behind (and asking would cost a poll() per part). */
	if (s->tls && lws_send_pipe_choked(c->wsi))
		c->stream.draining = true;
	else
		lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
}

/*
 * Plain sockets: what is left of the part (header, JPEG, boundary) goes out with one sendmsg
 * straight from the shared frame; what the socket does not take waits for the next writeable
 * callback. lws_write would copy every unsent tail into a buffer of its own and cost a syscall
 * per piece. Returns 1 when the part is out, 0 when the socket is full, -1 on an error.
 */
static int
send_direct(struct conn *c)
{
	size_t hl = c->stream.part_hdr_len, bl = c->stream.cur->size;
	size_t tl = c->stream.h264 ? 0 : sizeof(part_trailer) - 1;
	size_t off = c->stream.part_off;
	struct iovec iov[3];
	int k = 0;
	if (off < hl)
		iov[k++] = (struct iovec){ c->stream.part_hdr + LWS_PRE + off, hl - off };
	if (off < hl + bl) {
		size_t o = off > hl ? off - hl : 0;
		iov[k++] = (struct iovec){ (char *)c->stream.cur->data + o, bl - o };
	}
	size_t o = off > hl + bl ? off - hl - bl : 0;
	iov[k++] = (struct iovec){ (char *)part_trailer + o, tl - o };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)k };
	ssize_t n = sendmsg(lws_get_socket_fd(c->wsi), &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	c->stream.part_off += (size_t)n;
	if (c->stream.part_off < hl + bl + tl)
		return 0;
	finish_part(c);
	return 1;
}

/* One step of the current part through lws (TLS), where lws buffers what the socket does not
 * take. Returns as send_direct does: 1 go on, 0 the socket is full, -1 on an error. */
static int
write_step(struct conn *c)
{
	struct lws *wsi = c->wsi;
	if (c->stream.phase == PART_HEADER) {
		if (c->stream.part_hdr_len &&
		    lws_write(wsi, (unsigned char *)c->stream.part_hdr + LWS_PRE,
			      c->stream.part_hdr_len, LWS_WRITE_HTTP) < 0)
			return -1;
		c->stream.phase = PART_BODY;
	} else {
		size_t n = c->stream.cur->size - c->stream.part_off;
		if (n > SERVE_CHUNK)
			n = SERVE_CHUNK;
		if (n && lws_write(wsi, (unsigned char *)c->stream.cur->data + c->stream.part_off,
				   n, LWS_WRITE_HTTP) < 0)
			return -1;
		c->stream.part_off += n;
		if (c->stream.part_off == c->stream.cur->size) {
			if (!c->stream.h264 &&
			    lws_write(wsi, (unsigned char *)part_trailer, sizeof(part_trailer) - 1,
				      LWS_WRITE_HTTP) < 0)
				return -1;
			finish_part(c);
		}
	}
	return lws_send_pipe_choked(wsi) ? 0 : 1;
}

int
stream_writeable(struct conn *c)
{
	if (c->stream.snapshot)
		return 0;
	if (c->stream.failed)
		return -1;
	struct lws *wsi = c->wsi;
	if (c->stream.draining) {
		c->stream.draining = false;
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	}
	if (c->http.resp) {
		if (lws_write(wsi, c->http.resp + LWS_PRE, c->http.resp_len, LWS_WRITE_HTTP) < 0)
			return -1;
		free(c->http.resp);
		c->http.resp = NULL;
		if (lws_send_pipe_choked(wsi)) {
			/* lws holds part of it; it flushes that before the next callback. */
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	for (;;) {
		if (c->stream.phase == PART_IDLE && !start_part(c))
			return 0; /* nothing new: stream_on_frame wakes us */
		int r = c->s->tls ? write_step(c) : send_direct(c);
		if (r < 0)
			return -1;
		if (r == 0) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
}

void
stream_closed(struct conn *c)
{
	struct serve *s = c->s;
	if (!s)
		return;
	if (c->stream.cur || c->stream.draining) {
		/* Closed mid-part: lws dropped it for stalling, or the peer went away. */
		uint64_t took = serve_now_us() - c->stream.part_start_us;
		bool stalled = took + 500000 >= (uint64_t)s->cfg.stall_timeout_s * 1000000;
		s->stream_drops++;
		s->stream_stalls += stalled;
		okvm_log(stalled ? OKVM_LOG_WARN : OKVM_LOG_INFO, "serve: stream client %u (%s) %s",
			 c->id, c->peer, stalled ? "stalled: dropped" : "went away mid-frame");
	}
	fan_done(c, serve_now_us());
	conn_unref(c, c->stream.cur);
	c->stream.cur = NULL;
	variant_put(s, c->stream.variant);
	c->stream.variant = NULL;
	free(c->http.resp);
	c->http.resp = NULL;
	http_on_closed(c);
	serve_list_del(&s->streams, c);
	s->nstreams--;
	serve_update_want(s);
}
