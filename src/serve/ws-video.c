/*
 * DESIGN: H.264 to the browser over the WebSocket (docs/api.md, "video" message).
 *
 * A WebSocket client that sends {"type":"video","codec":"h264"} joins the H.264 variant of its
 * setting (variant.c: one encoder per setting, shared with GET /stream.h264 viewers of the
 * same setting) and from then on gets one binary message per access unit:
 *
 *     byte 0      'H' (0x48), the format's version 1 of this header
 *     byte 1      flags: bit 0 = IDR (SPS + PPS + IDR slice: a decoder can start here)
 *     bytes 2-3   width, bytes 4-5 height (big-endian, pixels)
 *     bytes 6-13  capture time of the device frame, CLOCK_MONOTONIC microseconds (big-endian)
 *     bytes 14-15 reserved (0)
 *     bytes 16..  the access unit, Annex-B (start codes), as WebCodecs' "annexb" format takes it
 *
 * Before the first IDR it sends, and whenever the picture size changes, a text message
 * {"type":"video","codec":"avc1.PPCCLL","width":W,"height":H} with the codec string for
 * VideoDecoder.configure(). Like GET /stream.h264, a client starts at an IDR of its own and,
 * after missing a picture (its socket was full when a newer one came), waits for the next IDR
 * and asks for one. Only the newest picture is ever sent; text messages go first. Access units
 * are small next to JPEGs, so each is copied once behind lws's LWS_PRE headroom.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okvm/log.h"
#include "lib/xalloc.h"
#include "serve/internal.h"

#define WS_VIDEO_HDR 16

static int
num_arg(const cJSON *o, const char *name, int lo, int hi, int *out, char *why, size_t n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	*out = 0;
	if (!v)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble != (int)v->valuedouble || v->valuedouble < lo ||
	    v->valuedouble > hi) {
		snprintf(why, n, "video: \"%s\" must be a whole number from %d to %d", name, lo,
			 hi);
		return -EINVAL;
	}
	*out = (int)v->valuedouble;
	return 0;
}

void
ws_video_stop(struct conn *c)
{
	if (!c->ws.video)
		return;
	variant_put(c->s, c->ws.video);
	c->ws.video = NULL;
	free(c->ws.video_buf);
	c->ws.video_buf = NULL;
	c->ws.video_cap = 0;
}

int
ws_video_request(struct conn *c, const cJSON *o, char *why, size_t n)
{
	const char *codec = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "codec"));
	if (!codec || (strcmp(codec, "h264") && strcmp(codec, "none"))) {
		snprintf(why, n,
			 "video needs \"codec\": \"h264\" (binary access units) or \"none\" "
			 "(stop)");
		return -EINVAL;
	}
	struct variant_key k = { .h264 = true };
	if (num_arg(o, "fps", 1, SERVE_VARIANT_MAX_FPS, &k.fps, why, n) ||
	    num_arg(o, "width", SERVE_VARIANT_MIN_WIDTH, 16384, &k.width, why, n) ||
	    num_arg(o, "kbps", 100, 100000, &k.kbps, why, n))
		return -EINVAL;
	ws_video_stop(c);
	if (!strcmp(codec, "none"))
		return 0;
	c->ws.video = variant_get(c->s, &k);
	if (!c->ws.video) {
		snprintf(why, n, "video: the H.264 encoder could not start");
		return -ENOMEM;
	}
	c->ws.video_need_idr = true;
	c->ws.video_last_seq = 0;
	c->ws.video_w = c->ws.video_h = 0;
	c->ws.video_codec[0] = 0;
	c->ws.video_pending = true;
	okvm_log(OKVM_LOG_INFO, "serve: WebSocket client %u gets H.264", c->id);
	lws_callback_on_writable(c->wsi);
	return 0;
}

void
ws_video_on_variant(struct serve *s, struct stream_variant *v)
{
	for (struct conn *c = s->sockets; c; c = c->next)
		if (c->ws.video == v && c->wsi) {
			c->ws.video_pending = true;
			lws_callback_on_writable(c->wsi);
		}
}

static void
put_be(uint8_t *p, uint64_t x, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, x >>= 8)
		p[i] = (uint8_t)x;
}

/* The codec message for a new IDR whose size or codec string (profile and level: another
 * encoder after a fallback may write others) differs from the last one sent: queued first.
 * false when nothing needs saying. */
static bool
announce(struct conn *c, const struct okvm_frame *f)
{
	char codec[32];
	if (h264_codec_string(f->data, f->size, codec, sizeof(codec)))
		return false;
	if (f->width == c->ws.video_w && f->height == c->ws.video_h &&
	    !strcmp(codec, c->ws.video_codec))
		return false;
	char txt[160];
	snprintf(txt, sizeof(txt),
		 "{\"type\":\"video\",\"codec\":\"%s\",\"width\":%d,\"height\":%d}", codec,
		 f->width, f->height);
	ws_queue_text(c, txt);
	c->ws.video_w = f->width;
	c->ws.video_h = f->height;
	snprintf(c->ws.video_codec, sizeof(c->ws.video_codec), "%s", codec);
	return true;
}

int
ws_video_writeable(struct conn *c)
{
	c->ws.video_pending = false;
	if (!c->ws.video)
		return 0;
	struct okvm_frame *f = variant_newest(c->ws.video);
	if (!f || f->seq == c->ws.video_last_seq) {
		okvm_frame_unref(f);
		return 0;
	}
	if (!c->ws.video_need_idr && c->ws.video_last_seq && f->seq != c->ws.video_last_seq + 1)
		c->ws.video_need_idr = true; /* missed one: its successors do not decode */
	bool idr = h264_au_is_idr(f->data, f->size);
	if (c->ws.video_need_idr && !idr) {
		variant_want_idr(c->ws.video);
		c->ws.video_last_seq = f->seq;
		okvm_frame_unref(f);
		return 0;
	}
	if (idr && announce(c, f)) { /* queued: goes out before this picture */
		okvm_frame_unref(f);
		c->ws.video_pending = true;
		return 0;
	}
	c->ws.video_need_idr = false;
	c->ws.video_last_seq = f->seq;
	size_t n = WS_VIDEO_HDR + f->size;
	if (LWS_PRE + n > c->ws.video_cap) { /* lws wants LWS_PRE bytes of room before the data */
		free(c->ws.video_buf);
		c->ws.video_cap = (LWS_PRE + n) * 5 / 4;
		c->ws.video_buf = xmalloc(c->ws.video_cap);
	}
	uint8_t *p = c->ws.video_buf + LWS_PRE;
	p[0] = 'H';
	p[1] = idr ? 1 : 0;
	put_be(p + 2, (uint64_t)f->width, 2);
	put_be(p + 4, (uint64_t)f->height, 2);
	put_be(p + 6, f->ts_us, 8);
	p[14] = p[15] = 0;
	memcpy(p + WS_VIDEO_HDR, f->data, f->size);
	okvm_frame_unref(f);
	int rc = lws_write(c->wsi, p, n, LWS_WRITE_BINARY);
	c->s->video_units_sent++;
	return rc < 0 ? -1 : 1;
}
