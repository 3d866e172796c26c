/*
 * DESIGN: GET /metrics in the Prometheus text format (version 0.0.4).
 *
 * Built on the service thread from the server's own counters and the backend's state: captured
 * and served fps, clients, frames skipped and drops per stream client, frame-ready -> written
 * latency (p50/p99 over the last SERVE_LAT_RING parts), link ACK latency, HID reports and errors,
 * and the typing queue. Per-client series carry the client id and address as labels.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/internal.h"
#include "lib/xalloc.h"

void
metrics_add(struct lat_ring *r, uint64_t latency_us)
{
	r->us[r->pos] = latency_us;
	r->pos = (r->pos + 1) % SERVE_LAT_RING;
	if (r->n < SERVE_LAT_RING)
		r->n++;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double
quantile(const uint64_t *sorted, unsigned n, double q)
{
	if (!n)
		return 0;
	unsigned i = (unsigned)(q * (n - 1) + 0.5);
	return (double)sorted[i] / 1e6;
}

struct buf {
	char *p;
	size_t len, cap;
};

static void out(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)n;
		b->p = xrealloc(b->p, b->cap);
	}
}

static void
metric(struct buf *b, const char *name, const char *type, const char *help, double v)
{
	out(b, "# HELP %s %s\n# TYPE %s %s\n%s %.6g\n", name, help, name, type, name, v);
}

static void
per_client(struct buf *b, struct serve *s)
{
	out(b, "# HELP okvm_serve_client_fps Frames per second written to each stream client.\n"
	       "# TYPE okvm_serve_client_fps gauge\n");
	for (struct conn *c = s->streams; c; c = c->next)
		if (!c->stream.snapshot)
			out(b, "okvm_serve_client_fps{client=\"%u\",addr=\"%s\"} %.3g\n", c->id,
			    c->peer, c->stream.fps);
	out(b, "# HELP okvm_serve_client_frames_skipped_total Frames a stream client skipped "
	       "because it was still busy with an older one.\n"
	       "# TYPE okvm_serve_client_frames_skipped_total counter\n");
	for (struct conn *c = s->streams; c; c = c->next)
		if (!c->stream.snapshot)
			out(b,
			    "okvm_serve_client_frames_skipped_total{client=\"%u\",addr=\"%s\"} %llu\n",
			    c->id, c->peer, (unsigned long long)c->stream.frames_skipped);
	out(b, "# HELP okvm_serve_ws_dropped_total Replies dropped because a WebSocket client did "
	       "not read.\n# TYPE okvm_serve_ws_dropped_total counter\n");
	for (struct conn *c = s->sockets; c; c = c->next)
		out(b, "okvm_serve_ws_dropped_total{client=\"%u\",addr=\"%s\"} %llu\n", c->id,
		    c->peer, (unsigned long long)c->ws.q_dropped);
}

/* A latency ring as a Prometheus summary: p50, p99 and the sample count. */
static void
summary(struct buf *b, const char *name, const char *help, const struct lat_ring *r)
{
	uint64_t sorted[SERVE_LAT_RING];
	memcpy(sorted, r->us, sizeof(uint64_t) * r->n);
	qsort(sorted, r->n, sizeof(uint64_t), cmp_u64);
	out(b,
	    "# HELP %s %s\n# TYPE %s summary\n%s{quantile=\"0.5\"} %.6f\n"
	    "%s{quantile=\"0.99\"} %.6f\n%s_count %u\n",
	    name, help, name, name, quantile(sorted, r->n, 0.5), name, quantile(sorted, r->n, 0.99),
	    name, r->n);
}

char *
metrics_text(struct serve *s)
{
	struct serve_state st = { 0 };
	s->be.ops->get_state(s->be.ud, &st);
	struct buf b = { .cap = 4096 };
	b.p = xmalloc(b.cap);
	b.p[0] = 0;
	bool recent = serve_now_us() - s->served_window_start_us < 2000000;
	metric(&b, "okvm_capture_fps", "gauge", "Frames per second captured.", st.fps);
	metric(&b, "okvm_capture_frames_total", "counter", "Frames captured.",
	       (double)st.frames_captured);
	metric(&b, "okvm_video_signal", "gauge", "1 if the capture has an HDMI signal.", st.signal);
	metric(&b, "okvm_serve_fps", "gauge", "Frames per second written to all stream clients.",
	       recent ? s->served_fps : 0);
	metric(&b, "okvm_serve_frames_total", "counter", "Frames written to stream clients.",
	       (double)s->frames_served);
	metric(&b, "okvm_serve_stream_clients", "gauge", "Connected MJPEG stream clients.",
	       s->nstreams);
	metric(&b, "okvm_serve_ws_clients", "gauge", "Connected WebSocket clients.", s->nsockets);
	metric(&b, "okvm_serve_stream_drops_total", "counter",
	       "Stream clients that left in the middle of a frame (stalled or gone).",
	       (double)s->stream_drops);
	metric(&b, "okvm_serve_stream_stalls_total", "counter",
	       "Stream clients dropped because a frame took longer than the stall timeout.",
	       (double)s->stream_stalls);
	summary(&b, "okvm_serve_frame_write_seconds",
		"Frame ready to completely written to a client.", &s->lat_write);
	summary(&b, "okvm_serve_frame_fanout_seconds",
		"Frame ready to completely written to every stream client that was waiting for it.",
		&s->lat_fanout);
	metric(&b, "okvm_serve_frame_fanout_incomplete_total", "counter",
	       "Frames a newer frame overtook before every waiting client had it.",
	       (double)s->fan_incomplete);
	uint64_t v_enc, v_drop;
	double v_ms;
	variant_stats(s, &v_enc, &v_drop, &v_ms);
	metric(&b, "okvm_serve_stream_variants", "gauge",
	       "Reduced streams running (one per distinct ?fps=&q=&width= setting).", s->nvariants);
	metric(&b, "okvm_serve_variant_frames_total", "counter",
	       "Frames re-encoded for the running reduced streams.", (double)v_enc);
	metric(&b, "okvm_serve_variant_dropped_total", "counter",
	       "Device frames a reduced stream's encoder skipped because it was still busy.",
	       (double)v_drop);
	metric(&b, "okvm_serve_video_units_total", "counter",
	       "H.264 access units sent to WebSocket clients.", (double)s->video_units_sent);
	char enc_names[8][80];
	unsigned enc_counts[8];
	unsigned n_enc = variant_h264_encoders(s, enc_names, enc_counts, 8);
	out(&b, "# HELP okvm_serve_h264_encoders Running H.264 streams by the encoder they use.\n"
		"# TYPE okvm_serve_h264_encoders gauge\n");
	for (unsigned i = 0; i < n_enc; i++)
		out(&b, "okvm_serve_h264_encoders{name=\"%s\"} %u\n", enc_names[i], enc_counts[i]);
	unsigned a_n;
	uint64_t a_sent;
	bool a_on;
	serve_audio_stats(s, &a_n, &a_sent, &a_on);
	metric(&b, "okvm_serve_audio_listeners", "gauge",
	       "WebSocket clients that asked for the unit's sound.", a_n);
	metric(&b, "okvm_serve_audio_capturing", "gauge",
	       "1 while the sound source is open (someone listens).", a_on);
	metric(&b, "okvm_serve_audio_messages_total", "counter",
	       "20 ms sound messages sent to WebSocket clients.", (double)a_sent);
	metric(&b, "okvm_serve_variant_encode_seconds_max", "gauge",
	       "Longest last re-encode among the running reduced streams.", v_ms / 1000);
	per_client(&b, s);
	metric(&b, "okvm_serve_http_requests_total", "counter", "HTTP requests.",
	       (double)s->http_requests);
	metric(&b, "okvm_serve_ws_errors_total", "counter",
	       "WebSocket messages refused (malformed, unknown, out of range).",
	       (double)s->ws_errors);
	metric(&b, "okvm_serve_login_failures_total", "counter", "Wrong passwords.",
	       (double)s->login_failures);
	metric(&b, "okvm_serve_event_overflows_total", "counter",
	       "Backend events dropped because the server's queue was full.",
	       (double)s->evq_overflows);
	metric(&b, "okvm_hid_reports_total", "counter", "HID reports sent to the chip.",
	       (double)st.hid_reports);
	metric(&b, "okvm_hid_errors_total", "counter", "ACK timeouts and chip error statuses.",
	       (double)st.hid_errors);
	metric(&b, "okvm_link_ack_seconds_last", "gauge", "Latency of the last ACK.",
	       st.ack_ms_last / 1000);
	metric(&b, "okvm_link_ack_seconds_max", "gauge", "Highest ACK latency.",
	       st.ack_ms_max / 1000);
	metric(&b, "okvm_typing_queue", "gauge", "Characters queued for typing.",
	       (double)st.typing_pending);
	metric(&b, "okvm_target_connected", "gauge", "1 if the target sees the keyboard.",
	       st.target_connected);
	return b.p;
}
