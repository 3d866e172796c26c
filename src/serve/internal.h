/* okvm serve internals shared by server.c, http.c, stream.c, ws.c, auth.c, metrics.c. */
#ifndef OKVM_SERVE_INTERNAL_H
#define OKVM_SERVE_INTERNAL_H

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "serve/serve.h"
#include "serve/sessions.h"

#define SERVE_MAX_HEADER 4096         /* request header bytes; more: lws closes, unanswered */
#define SERVE_MAX_BODY (256 * 1024)   /* POST bodies; more -> 413 */
#define SERVE_MAX_WS_MSG (256 * 1024) /* one WebSocket message; more -> close 1009 */
#define SERVE_WS_QUEUE 32             /* queued replies per WebSocket client; more -> dropped */
#define SERVE_MAX_PRESSED 16          /* keys one client can hold at once */
#define SERVE_CHUNK (64 * 1024)       /* bytes per lws_write of a frame */
#define SERVE_EVQ 64                  /* cross-thread event queue */
#define SERVE_LAT_RING 1024           /* frame-ready -> written samples kept for /metrics */
#define SERVE_BOUNDARY "boundarydonotcross"

enum conn_kind { CONN_NONE, CONN_HTTP, CONN_STREAM, CONN_WS, CONN_CONSOLE };
enum part_phase { PART_IDLE, PART_HEADER, PART_BODY };

struct ws_msg {
	size_t len;
	unsigned char buf[]; /* LWS_PRE headroom, then len bytes */
};

struct login_job;
struct ocr_job;
struct ocr_route;
struct okvm_keymap;
struct mcp_job;
struct mcp_http;

/* The last SERVE_LAT_RING latency samples, for the quantiles of /metrics. */
struct lat_ring {
	uint64_t us[SERVE_LAT_RING];
	unsigned n, pos;
};

/* A plain HTTP exchange: the request, then one whole response (http.c). */
struct conn_http {
	int route;
	bool is_post;
	bool is_head;    /* HEAD: a GET's answer without its body */
	bool dispatched; /* this request was handled: lws may report its end again */
	bool state_wait; /* GET /api/state waiting for a fresh look at the video (s->state_waiters) */
	char *body;
	size_t body_len, body_expect;
	/* response: headers, then a body from body_mem (owned) or body_frame (a reference) */
	unsigned char *resp; /* LWS_PRE + headers */
	size_t resp_len, resp_off;
	char *body_mem;
	struct okvm_frame *body_frame;
	struct login_job *login_job; /* POST /api/login whose password is being checked */
	struct ocr_job *ocr_job;     /* GET /api/ocr being read (ocr-route.c) */
	bool is_delete;              /* DELETE (/mcp only) */
	struct mcp_job *mcp_job;     /* POST /mcp being worked on (mcp-http.c) */
	bool media_upload;           /* POST /api/media: body to the spool (media-route.c) */
	const uint8_t *body_ptr;
	size_t body_size, body_off;
	void *body_map; /* a mapped file the body is (record-route.c), unmapped at the end */
	size_t body_map_len;
};

/* An MJPEG stream, or a snapshot waiting for a frame (snapshot = true) (stream.c). */
struct conn_stream {
	bool snapshot;
	uint64_t snap_after_seq;
	enum part_phase phase;
	struct okvm_frame *cur;
	uint64_t last_seq;
	uint64_t ready_us; /* when cur's notify arrived (0: not measured) */
	bool waiting;      /* idle, had every frame: the next one is measured */
	bool draining;     /* a finished part still sits in lws's buffer */
	bool in_fan;       /* idle when the newest frame arrived: counted in fan_* */
	bool failed;       /* a send from stream_on_frame failed: close at the next callback */
	struct stream_variant *variant; /* ?fps=&q=&width= (variant.c); NULL: the device's frames */
	bool h264;     /* GET /stream.h264: access units back to back, no multipart */
	bool need_idr; /* H.264: nothing until the next IDR (new, or fell behind) */
	char part_hdr[LWS_PRE + 192];
	size_t part_hdr_len, part_off;
	uint64_t part_start_us;
	uint64_t frames_skipped;
	uint64_t fps_window_start_us, fps_window_frames;
	double fps;
};

/* A WebSocket client: its incoming message, its reply queue, and the input it holds (ws.c,
 * input.c). */
struct conn_ws {
	char *rx;
	size_t rx_len;
	struct ws_msg *q[SERVE_WS_QUEUE];
	unsigned qhead, qlen;
	bool state_dirty;
	uint64_t q_dropped;
	char pressed[SERVE_MAX_PRESSED][32];
	unsigned npressed;
	uint8_t buttons;
	/* H.264 over the WebSocket (ws-video.c) */
	struct stream_variant *video; /* its variant; NULL: no video asked for */
	bool video_pending, video_need_idr;
	uint64_t video_last_seq;
	int video_w, video_h; /* of the last codec message sent */
	char video_codec[32]; /* its codec string ("avc1.42C028") */
	uint8_t *video_buf;   /* LWS_PRE + header + access unit, reused (grows only) */
	size_t video_cap;
	/* sound over the WebSocket (ws-audio.c) */
	int audio; /* 0 none, 1 PCM, 2 Opus */
	bool audio_pending;
	uint64_t audio_last_seq;
};

/* A viewer of the serial console at /api/console (console.c). */
struct conn_console {
	uint64_t sent; /* bytes of the console's stream sent so far */
	uint64_t lost; /* bytes it missed by not reading while the ring moved on */
	char ctl[512]; /* the next text message (state or error) */
	bool ctl_dirty;
	bool was_connected;
	char *rx;
	size_t rx_len;
};

/*
 * One connection; lws allocates it zeroed as the per-session data. A common part, then one part
 * per role: every connection starts as HTTP; a stream (or snapshot) also uses its HTTP part for
 * the response headers; a WebSocket uses only its own. All of it belongs to the service thread.
 */
struct conn {
	enum conn_kind kind;
	struct lws *wsi;
	struct serve *s;
	struct conn *next, *prev; /* in s->streams or s->sockets */
	uint32_t id;
	char peer[48];
	bool authed;
	enum serve_role role; /* of the request or WebSocket (no login: admin) */
	uint64_t session_id;  /* its session (0: none), ended by logout and expiry */
	struct conn_http http;
	struct conn_stream stream;
	struct conn_ws ws;
	struct conn_console con;
};

struct serve_event {
	enum { EV_STATE, EV_TYPING } type;
	size_t done, total;
	int err;
};

/* One accepted socket, from accept to destroy (guard.c). */
struct netconn {
	struct lws *wsi; /* NULL until lws created it */
	char group[48];  /* address group */
	uint64_t since_us;
	uint64_t deadline_us; /* closed when reached (0: none) */
	bool proven;          /* a request of it passed the login check */
	bool killed;
};
#define SERVE_MAX_NET 4112

struct serve {
	struct serve_config cfg;
	struct serve_backend be;
	struct lws_context *ctx;
	bool tls;
	uint32_t next_id;
	struct conn *streams;       /* MJPEG clients */
	struct conn *sockets;       /* WebSocket clients */
	struct conn *state_waiters; /* GET /api/state, capturing a frame first (http.c) */
	unsigned nstreams, nsockets, nstate_waiters;
	/* cross-thread: the backend's threads push, the service thread pops */
	pthread_mutex_t evq_lock;
	struct serve_event evq[SERVE_EVQ];
	unsigned evq_head, evq_len;
	uint64_t evq_overflows;
	atomic_uint_fast64_t frame_notifies; /* bumped per new frame */
	atomic_uint_fast64_t frame_ready_us; /* when the newest frame's notify came */
	uint64_t frames_seen;                /* frame_notifies value handled */
	/* reduced streams, one per distinct setting (variant.c) */
	struct stream_variant *variants;
	unsigned nvariants;
	atomic_uint_fast64_t variant_notifies; /* bumped per frame a variant made */
	uint64_t variants_seen;                /* variant_notifies value handled */
	struct serve_vnc *vnc;                 /* --vnc (vnc.c); NULL: none */
	struct serve_audio *audio;             /* serve_set_audio (ws-audio.c); NULL: none */
	uint64_t vnc_frames_seen;              /* frame_notifies value the VNC picture had */
	uint64_t video_units_sent; /* H.264 access units sent over WebSockets (ws-video.c) */
	bool wanting;
	uint64_t video_check_us;         /* last look at the video state */
	int video_fps, video_w, video_h; /* as last broadcast */
	bool video_signal;
	/* input merge */
	double last_x, last_y;
	bool typing_active;
	size_t typing_done, typing_total;
	int typing_err;
	/* metrics */
	uint64_t frames_served, stream_drops, stream_stalls, ws_errors, http_requests,
		login_failures;
	uint64_t served_window_start_us, served_window_frames;
	double served_fps;
	struct lat_ring lat_write; /* frame ready -> written to one client */
	/* frame ready -> written to every stream client that was idle when it arrived */
	uint64_t fan_seq, fan_ready_us, fan_incomplete;
	unsigned fan_pending;
	struct lat_ring lat_fanout;
	/* connection guard (guard.c) */
	struct netconn net[SERVE_MAX_NET];
	unsigned nnet;
	int net_pending; /* accepted, not yet created by lws (-1: none) */
	lws_sorted_usec_list_t sweep;
	bool sweep_on;
	/* auth: the tables of sessions.c, worked on by auth.c */
	char host_name[64], host_name_local[72]; /* this machine's, lower case ("" if unknown) */
	struct session sessions[SERVE_MAX_SESSIONS];
	uint64_t next_session_id;
	uint64_t totp_last_step[SERVE_MAX_USERS + 1]; /* per user: no code used twice */
	struct login_slot logins[SERVE_LOGIN_SLOTS];
	unsigned auth_queued; /* checks waiting or under way */
	/* argon2 checks run on the okvm-auth thread, never on the service thread */
	pthread_mutex_t auth_lock;
	pthread_cond_t auth_cond;
	pthread_t auth_thread;
	bool auth_running, auth_stop;
	struct login_job *auth_todo, *auth_done;
	struct okvm_keymap *km; /* the last layout a paste was checked against (input.c) */
	struct ocr_route *ocr;  /* GET /api/ocr: its jobs and the okvm-ocr thread (ocr-route.c) */
	unsigned ocr_want;      /* GET /api/ocr requests waiting for a frame */
	struct mcp_http *mcp;   /* MCP over HTTP (mcp-http.c); NULL until the first /mcp */
	struct serve_power *power;     /* /api/power (power-route.c); NULL: no power control */
	struct serve_media *media;     /* /api/media (media-route.c); NULL: no unit to write to */
	struct serve_console *console; /* /api/console (console.c); NULL: no console */
	struct conn *consoles;         /* its viewers */
	unsigned mcp_want;             /* MCP tool calls that want frames now */
	struct serve_record *record;   /* /api/record (record-route.c); NULL until first used */
};

uint64_t serve_now_us(void);  /* CLOCK_MONOTONIC */
uint64_t serve_wall_us(void); /* CLOCK_REALTIME */

/* server.c */
void serve_list_add(struct conn **head, struct conn *c);
void serve_list_del(struct conn **head, struct conn *c);
void serve_update_want(struct serve *s);

/* http.c: the protocol callback's HTTP half. Return values as for an lws callback. */
int http_on_request(struct conn *c, const char *uri);
int http_on_body(struct conn *c, const void *in, size_t len);
int http_on_body_done(struct conn *c);
int http_on_writeable(struct conn *c);
void http_on_closed(struct conn *c);
void http_state_frame(struct serve *s); /* a frame came: answer the waiting GET /api/state */
int http_state_timer(struct conn *c);   /* none came in time: answer with what is known */
/* Answer with a complete response; body copied. Schedules the write. */
int http_reply(struct conn *c, unsigned status, const char *ctype, const char *body, size_t len,
	       const char *extra_headers);
/* Headers only (length -1: open-ended, Connection: close); the caller sets the body. */
int http_set_headers(struct conn *c, unsigned status, const char *ctype, long long length,
		     const char *extra_headers);
int http_reply_json(struct conn *c, unsigned status, const char *json);
struct cJSON;
int http_reply_object(struct conn *c, unsigned status, struct cJSON *o); /* o consumed */
int http_reply_error(struct conn *c, unsigned status, const char *msg);
/* The value of the query argument NAME ("action=") in buf, or NULL when absent. A value that does
 * not fit in buf comes back as SERVE_URLARG_TOO_LONG, which no argument accepts, so it is refused
 * as a bad value. Unlike lws_get_urlarg_by_name(), a long argument does not hide later ones. */
#define SERVE_URLARG_TOO_LONG "(too long)"
const char *serve_urlarg(struct lws *wsi, const char *name, char *buf, size_t size);
/* The answer to POST /api/login: rc 0 with the Set-Cookie value, or -EAGAIN (429), -EBUSY
 * (503), -EPERM (403), -ENOKEY (401: a TOTP code is needed), -EINVAL (400). */
int http_login_reply(struct conn *c, int rc, const char *cookie);

/* stream.c */
int stream_begin(struct conn *c, bool snapshot);
int stream_begin_h264(struct conn *c); /* GET /stream.h264 */
int stream_writeable(struct conn *c);
int stream_timer(struct conn *c);
void stream_on_frame(struct serve *s);
/* The variant v has a new frame: hand it to its idle clients. */
void stream_on_variant(struct serve *s, struct stream_variant *v);
void stream_closed(struct conn *c);

/* variant.c: reduced MJPEG streams (`/stream?fps=N&q=Q&width=W`), one per distinct setting. */
#define SERVE_VARIANT_DEFAULT_Q 80 /* quality when only width is given */
#define SERVE_VARIANT_MAX_FPS 60
#define SERVE_VARIANT_MIN_WIDTH 64
struct stream_variant;
struct variant_key {
	bool h264;                     /* H.264 access units (h264.c) instead of JPEGs */
	int fps, quality, width, kbps; /* 0: as the device / the default */
};
/* The request's fps=, q=, width= (and kbps= for H.264; 0 where absent) into k (k->h264 set by
 * the caller). -EINVAL with a message for a bad value. */
int variant_parse(struct lws *wsi, struct variant_key *k, char *err, size_t n);
/* Join (or start) the variant of this setting; NULL if its thread could not start. */
struct stream_variant *variant_get(struct serve *s, const struct variant_key *k);
/* H.264: make the next picture an IDR (re-encoding the last frame if none comes). */
void variant_want_idr(struct stream_variant *v);
void variant_put(struct serve *s, struct stream_variant *v);  /* the last user stops it */
void variant_feed_all(struct serve *s, struct okvm_frame *f); /* a new device frame */
struct okvm_frame *variant_newest(struct stream_variant *v);  /* a new reference, or NULL */
void variant_drain(struct serve *s); /* service thread: new variant frames to their clients */
void variant_stats(struct serve *s, uint64_t *encoded, uint64_t *dropped, double *encode_ms_max);
/* The H.264 encoders the running H.264 variants use ("openh264", "v4l2:/dev/video11"), with how
 * many variants use each; at most max names. Service thread. */
unsigned variant_h264_encoders(struct serve *s, char (*names)[80], unsigned *counts, unsigned max);

/* vnc.c: the VNC server (--vnc ADDR:PORT) on LibVNCServer's threads. */
struct serve_vnc;
/* After the lws context exists; 0 when not configured. cert/key: the web server's TLS pair or
 * NULL, for LibVNCServer's wss:// clients. */
int vnc_start(struct serve *s, const char *cert, const char *key);
void vnc_free(struct serve *s);
void vnc_drain(struct serve *s);    /* service thread: its clients' input, through the backend */
void vnc_on_frame(struct serve *s); /* service thread: a new frame for the VNC picture */
bool vnc_wants_frames(struct serve *s);
void vnc_stats(struct serve *s, unsigned *clients, uint64_t *frames, uint64_t *blocks);

/* h264.c: openh264 with low-delay settings, or a V4L2 M2M encoder (h264-v4l2.c); one per H.264
 * variant, used by its thread only. choice: [serve] h264_encoder (NULL: auto). */
struct h264_enc;
struct h264_enc *h264_enc_new(const char *choice);
void h264_enc_free(struct h264_enc *e);
/* "openh264" or "v4l2:/dev/videoN": the one in use (or about to be tried). */
const char *h264_enc_name(const struct h264_enc *e);
/* serve_start: h264_encoder = v4l2 or a path that is no such encoder is -ENODEV, logged. */
int h264_encoder_check(const char *choice);
/* Encode planes from tjDecompressToYUV2 (pad 1, subsampling sub) as one Annex-B access unit
 * (*out valid until the next call; *len 0 if the encoder skipped the picture). The encoder is
 * (re)opened when size, rate or bitrate change. */
int h264_enc_frame(struct h264_enc *e, const uint8_t *yuv, int w, int h, int sub, float fps,
		   int bitrate_kbps, bool force_idr, uint64_t ts_us, const uint8_t **out,
		   size_t *len, bool *idr);
bool h264_au_is_idr(const uint8_t *p, size_t n); /* has an SPS or IDR slice */
int h264_codec_string(const uint8_t *p, size_t n, char *buf, size_t size); /* "avc1.42C028" */

/* h264-v4l2.c: a stateful V4L2 memory-to-memory H.264 encoder. Failures come back as -errno
 * with the reason in why (n bytes); nothing is logged. */
struct h264_v4l2;
/* Is path such an encoder? 0 with its card name, -errno (-ENOTTY: not M2M, -EMEDIUMTYPE: no
 * H.264 or no YU12/NV12). */
int h264_v4l2_probe(const char *path, char *card, size_t card_n, char *why, size_t n);
/* The first /dev/video0-63 that is one, into path; -ENODEV if none. */
int h264_v4l2_find(char *path, size_t n);
int h264_v4l2_open(struct h264_v4l2 **out, const char *path, int w, int h, float fps, int kbps,
		   char *why, size_t n);
/* One I420 picture (w x h of open) in, one Annex-B access unit out (*out valid until the next
 * call; SPS + PPS before every IDR). -ETIMEDOUT after 1 s, -ENODEV when it vanished. */
int h264_v4l2_encode(struct h264_v4l2 *e, const uint8_t *i420, bool force_idr, uint64_t ts_us,
		     const uint8_t **out, size_t *len, bool *idr, char *why, size_t n);
void h264_v4l2_free(struct h264_v4l2 *e); /* NULL ok */

/* ws.c */
int ws_filter(struct conn *c); /* before the upgrade: path, Origin, session */
int ws_established(struct conn *c);
int ws_receive(struct conn *c, const void *in, size_t len);
int ws_writeable(struct conn *c);
void ws_closed(struct conn *c);
void ws_broadcast_state(struct serve *s);
/* Handle one message as text; replies queued on c (which may be NULL for tests). */
void ws_handle_message(struct serve *s, struct conn *c, const char *msg, size_t len);
char *ws_state_json(struct serve *s, struct conn *you);
/* ws-video.c: H.264 over the WebSocket ({"type":"video"}) */
int ws_video_request(struct conn *c, const cJSON *o, char *why, size_t n);
void ws_video_on_variant(struct serve *s, struct stream_variant *v); /* a new picture */
int ws_video_writeable(struct conn *c); /* 1: a picture sent, 0: none, -1: error */
void ws_video_stop(struct conn *c);
/* ws-audio.c: sound over the WebSocket ({"type":"audio"}) */
int ws_audio_request(struct conn *c, const cJSON *o, char *why, size_t n);
void ws_audio_drain(struct serve *s);   /* new packets: wake the listeners */
int ws_audio_writeable(struct conn *c); /* 1: a packet sent, 0: none, -1: error */
void ws_audio_stop(struct conn *c);
void serve_audio_free(struct serve *s);
void serve_audio_stats(struct serve *s, unsigned *listeners, uint64_t *sent, bool *capturing);
/* ws-audio.c for the recorder: one more listener (on: *from_seq set to the newest packet), and
 * the packet after *seq (its PCM, at most frames; *seq moves on): frames, or 0 when none is new. */
int serve_audio_record(struct serve *s, bool on, uint64_t *from_seq);
long serve_audio_next(struct serve *s, uint64_t *seq, int16_t *pcm, size_t frames, uint64_t *ts_us);
/* record-route.c: recording from the web UI (docs/recording.md) */
int serve_record_route(struct conn *c);                    /* GET/POST /api/record */
int serve_recordings_list(struct conn *c);                 /* GET /api/recordings */
int serve_recording_file(struct conn *c, const char *uri); /* GET/DELETE /api/recordings/NAME */
bool serve_record_active(struct serve *s);                 /* the capture must run */
void record_on_frame(struct serve *s);                     /* a new device frame */
void record_reap(struct serve *s);                         /* a recording that ended by itself */
void serve_record_state_json(struct serve *s, cJSON *o);   /* "record" in the state */
void serve_record_free(struct serve *s);                   /* stops a recording: trailer written */
/* power-route.c: GET/POST /api/power, "power" in the state; serve_power_free joins a press */
int serve_power_route(struct conn *c);
void serve_power_state_json(struct serve *s, cJSON *o);
void serve_power_free(struct serve *s);
/* A press for another part of the server (media-route.c's boot=1) on the calling thread, which
 * waits for it: 0 (msg: what happened), -ENODEV (no power control), -EBUSY (a press runs), or
 * power_run_port's error. Any thread but the service thread. */
int serve_power_run(struct serve *s, int action, const volatile int *cancel, char *msg,
		    size_t n); /* action: enum power_action */
/* media-route.c: GET/POST /api/media (cl: the Content-Length header, "" if none), the upload's
 * body, the switch the worker asked for (service thread), and the end */
int media_route_request(struct conn *c, const char *cl);
int media_route_body(struct conn *c, const void *in, size_t len);
int media_route_body_done(struct conn *c);
void media_route_closed(struct conn *c);
void media_route_drain(struct serve *s);
void serve_media_stop(struct serve *s); /* cancel and join the writer: before the power goes */
void serve_media_free(struct serve *s); /* after the lws context */
/* console.c: the serial console's thread and its WebSocket viewers */
void serve_set_console(struct serve *s, const char *tty, const char *modem, int baud);
void serve_console_start(struct serve *s); /* once the lws context exists */
void serve_console_free(struct serve *s);
struct okvm_serial;
/* The open adapter, locked against reopening (NULL, unlocked: not open); give it back. */
struct okvm_serial *serve_console_borrow(struct serve *s);
void serve_console_return(struct serve *s);
/* A reader of the console for an MCP session, from the stream's end now (NULL: no console);
 * auto_console_close() gives it back, also after serve_console_free(). */
struct auto_console;
struct auto_console *serve_console_auto(struct serve *s);
bool console_uri(struct lws *wsi);
int console_established(struct conn *c);
int console_receive(struct conn *c, const void *in, size_t len);
int console_writeable(struct conn *c);
void console_closed(struct conn *c);
void console_drain(struct serve *s);
/* server.c: the state changed (any thread): every WebSocket client gets a state event */
void serve_notify_state(struct serve *s);
void ws_queue_text(struct conn *c, const char *text);
/* input.c: one input message, from the WebSocket (c: the client; replies are queued to it) or
 * from REST (c == NULL; the first error is kept in err). */
struct input_src {
	struct serve *s;
	struct conn *c;
	enum serve_role role;
	uint8_t buttons; /* a REST request's own buttons */
	char err[256];   /* the first error, "" if none */
	int rc;          /* the backend's error behind err (0: the message itself was bad) */
};
/* One line for a user about the backend error rc of what ("type", "wheel"...): what went wrong
 * and what to do, never a bare errno text. */
void serve_error_text(char *buf, size_t n, const char *what, int rc);
unsigned serve_error_status(int rc); /* its HTTP status: 409 busy, 501, 503 unit gone, 400 */
/* Check a paste before anything is sent: layout (NULL/"": the server's) exists, text can be
 * typed on it. 0, or -EINVAL with one line for the user in err. */
int input_check_type(struct serve *s, const char *text, size_t len, const char *layout, char *err,
		     size_t n);
/* Check a combo's key names: 0, or -ENOENT/-EINVAL with a line naming the bad part in err. */
int input_check_combo(const char *combo, char *err, size_t n);
/* Validate and apply one message object. Returns 0, -EPERM (the role may not), -EINVAL. */
int input_apply(struct input_src *in, cJSON *o);
/* "host" / "target" (REST ?to=, WebSocket "to") as the port's direction; -EINVAL otherwise. */
int serve_usb_parse(const char *to, enum okvm_usb_dir *out);
/* Input merging across WebSocket clients. */
int input_key(struct serve *s, struct conn *c, const char *code, bool down);
int input_release_client(struct serve *s, struct conn *c);
int input_type(struct serve *s, const char *text, size_t len, const char *layout, double cps);

/* guard.c: the connection guard. */
/* serve_addr_group (IPv4 address or IPv6 /64) is in sessions.h. */
int guard_accept(struct serve *s, int fd); /* FILTER_NETWORK_CONNECTION: 0 or 1 (refuse) */
void guard_created(struct serve *s, struct lws *wsi);
void guard_destroyed(struct serve *s, struct lws *wsi);
void guard_request(struct serve *s, struct lws *wsi, bool proven); /* headers are in */
void guard_received(struct serve *s, struct lws *wsi);             /* the whole request is in */
void guard_sweep(lws_sorted_usec_list_t *sul);

/* auth.c */
bool auth_required(const struct serve *s);
/* Is this request's Host one the server answers to (a loopback name, an IP literal, or one of
 * server_names)? Not: DNS rebinding. */
bool auth_host_ok(struct serve *s, struct lws *wsi);
/* The request's session (valid okvm_session cookie), or NULL. */
const struct session *auth_check_request(struct serve *s, struct lws *wsi);
/* The live session of that id (a connection's session_id), or NULL. */
const struct session *auth_session(const struct serve *s, uint64_t id);
void auth_expire(struct serve *s);          /* end expired sessions and their connections */
void auth_learn_host_name(struct serve *s); /* at start: this machine's name is a Host too */
/* One line to the log for what a user did (login, switch, paste...), with who and from where. */
void audit(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool auth_check_metrics_token(struct serve *s, struct lws *wsi);
/* POST /api/login: checks the rate limit, then hands the password to the okvm-auth thread. 0: the
 * answer comes later through http_login_reply (from auth_drain); <0: answer now (-EAGAIN rate
 * limited, -EBUSY too many checks waiting, -EINVAL no password configured). user NULL or "":
 * "admin"; code: the TOTP code, or NULL. */
int auth_login_start(struct serve *s, struct conn *c, const char *user, const char *password,
		     const char *code);
void auth_drain(struct serve *s); /* finished checks: sessions, failures, replies */
void auth_detach(struct conn *c); /* the connection closed or moved on */
void auth_stop(struct serve *s);  /* before the lws context goes */
void auth_free(struct serve *s);  /* after it */
void auth_logout(struct serve *s, struct lws *wsi);
bool auth_origin_ok(struct lws *wsi);
int auth_login_retry_after(struct serve *s, const char *peer); /* seconds, 0 = allowed */

/* mcp-http.c: MCP at /mcp (streamable HTTP). */
int mcp_http_request(struct conn *c); /* POST (body in), GET, DELETE */
void mcp_http_closed(struct conn *c); /* the client left: cancel its job */
void mcp_http_drain(struct serve *s); /* calls and finished jobs (service thread) */
void mcp_http_stop(struct serve *s);  /* before the lws context goes */
bool mcp_http_token_ok(struct serve *s, struct lws *wsi); /* Authorization: Bearer [mcp] token */

/* metrics.c */
char *metrics_text(struct serve *s);
void metrics_add(struct lat_ring *r, uint64_t latency_us);

/* web assets (generated from web/ by web/embed.py) */
struct web_asset {
	const char *path;
	const char *type;
	const unsigned char *data;
	size_t size;
};
const struct web_asset *web_asset_find(const char *path);

/* ocr-route.c: GET /api/ocr, read on the okvm-ocr thread. */
int ocr_route_begin(struct conn *c);   /* checks, then waits for a frame; 0 or an answer */
void ocr_route_frame(struct serve *s); /* a frame came: hand it to the waiting requests */
void ocr_route_drain(struct serve *s); /* finished reads: their answers */
int ocr_route_timer(struct conn *c);   /* no frame in time: 503 */
void ocr_route_detach(struct conn *c); /* the connection closed or moved on */
void ocr_route_stop(struct serve *s);  /* before the lws context goes */
void ocr_route_free(struct serve *s);  /* after it, before the backend goes */

#endif
