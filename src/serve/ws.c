/*
 * DESIGN: the WebSocket at /api/ws: JSON text messages both ways (docs/api.md).
 *
 * Runs on the service thread only. A message is collected whole (up to SERVE_MAX_WS_MSG, else the
 * socket is closed with 1009) and handed to input.c, which validates and applies it (and merges
 * the input of several browsers): an unknown or malformed message gets {"type":"error"} back
 * and changes nothing.
 *
 * Outgoing: a state event is coalesced (a dirty flag, built when the socket is writeable);
 * replies wait in a queue of SERVE_WS_QUEUE per client, and a client that does not read for
 * stall_timeout_s is dropped. One lws_write per writeable callback, as lws requires for ws.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "okvm/error.h"
#include "okvm/log.h"
#include "serve/config-file.h"
#include "serve/internal.h"
#include "lib/xalloc.h"

/* ---- outgoing ---- */

void
ws_queue_text(struct conn *c, const char *text)
{
	if (c->ws.qlen == SERVE_WS_QUEUE) {
		c->ws.q_dropped++;
		return;
	}
	size_t n = strlen(text);
	struct ws_msg *m = xmalloc(sizeof(*m) + LWS_PRE + n);
	m->len = n;
	memcpy(m->buf + LWS_PRE, text, n);
	c->ws.q[(c->ws.qhead + c->ws.qlen) % SERVE_WS_QUEUE] = m;
	c->ws.qlen++;
	if (c->wsi) {
		if (c->ws.qlen == 1 && !c->ws.state_dirty)
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, c->s->cfg.stall_timeout_s);
		lws_callback_on_writable(c->wsi);
	}
}

static const char *
usb_name(const struct serve_state *st)
{
	return !st->usb_known ? "unknown" : st->usb == OKVM_USB_TO_HOST ? "host" : "target";
}

char *
ws_state_json(struct serve *s, struct conn *you)
{
	struct serve_state st = { 0 };
	s->be.ops->get_state(s->be.ud, &st);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "state");
	cJSON_AddStringToObject(o, "unit", st.unit);
	cJSON_AddBoolToObject(o, "input", st.has_input);
	cJSON *t = cJSON_AddObjectToObject(o, "target");
	cJSON_AddBoolToObject(t, "connected", st.target_connected);
	cJSON *l = cJSON_AddObjectToObject(o, "leds");
	cJSON_AddBoolToObject(l, "num", st.leds & OKVM_LED_NUM);
	cJSON_AddBoolToObject(l, "caps", st.leds & OKVM_LED_CAPS);
	cJSON_AddBoolToObject(l, "scroll", st.leds & OKVM_LED_SCROLL);
	cJSON *v = cJSON_AddObjectToObject(o, "video");
	cJSON_AddBoolToObject(v, "available", st.has_video);
	cJSON_AddBoolToObject(v, "signal", st.signal);
	cJSON_AddNumberToObject(v, "width", st.width);
	cJSON_AddNumberToObject(v, "height", st.height);
	cJSON_AddNumberToObject(v, "fps", round(st.fps * 10) / 10);
	cJSON_AddStringToObject(o, "usb", usb_name(&st));
	serve_power_state_json(s, o);
	serve_record_state_json(s, o);
	/* the paste layout when a message names none: the page defaults to it */
	cJSON_AddStringToObject(o, "layout",
				s->cfg.layout && *s->cfg.layout ? s->cfg.layout : "us");
	cJSON *ty = cJSON_AddObjectToObject(o, "typing");
	cJSON_AddBoolToObject(ty, "active", s->typing_active);
	cJSON_AddNumberToObject(ty, "done", (double)s->typing_done);
	cJSON_AddNumberToObject(ty, "total", (double)s->typing_total);
	if (s->typing_err)
		cJSON_AddStringToObject(ty, "error", okvm_strerror(s->typing_err));
	cJSON *cl = cJSON_AddObjectToObject(o, "clients");
	cJSON_AddNumberToObject(cl, "sockets", s->nsockets);
	cJSON_AddNumberToObject(cl, "streams", s->nstreams);
	if (you)
		cJSON_AddNumberToObject(cl, "you", you->id);
	cJSON *list = cJSON_AddArrayToObject(cl, "list");
	for (struct conn *c = s->sockets; c; c = c->next) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "id", c->id);
		cJSON_AddStringToObject(e, "addr", c->peer);
		cJSON_AddItemToArray(list, e);
	}
	cJSON_AddBoolToObject(o, "auth", auth_required(s));
	if (you) {
		cJSON_AddStringToObject(o, "role", serve_role_name(you->role));
		const struct session *se = auth_session(s, you->session_id);
		if (se)
			cJSON_AddStringToObject(o, "user", se->user);
	}
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return txt;
}

void
ws_broadcast_state(struct serve *s)
{
	for (struct conn *c = s->sockets; c; c = c->next) {
		c->ws.state_dirty = true;
		if (c->wsi)
			lws_callback_on_writable(c->wsi);
	}
}

int
ws_writeable(struct conn *c)
{
	char *state = NULL;
	unsigned char *p;
	size_t n;
	struct ws_msg *m = NULL;
	if (c->ws.state_dirty) {
		c->ws.state_dirty = false;
		char *txt = ws_state_json(c->s, c);
		n = strlen(txt);
		state = xmalloc(LWS_PRE + n);
		memcpy(state + LWS_PRE, txt, n);
		free(txt);
		p = (unsigned char *)state + LWS_PRE;
	} else if (c->ws.qlen) {
		m = c->ws.q[c->ws.qhead];
		c->ws.qhead = (c->ws.qhead + 1) % SERVE_WS_QUEUE;
		c->ws.qlen--;
		p = m->buf + LWS_PRE;
		n = m->len;
	} else {
		/* text first; then the newest H.264 picture, if this client asked for video */
		int r = ws_video_writeable(c);
		if (r == 0)
			r = ws_audio_writeable(c);
		if (r < 0)
			return -1;
		if (c->ws.qlen || c->ws.state_dirty || c->ws.video_pending || c->ws.audio_pending)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	int rc = lws_write(c->wsi, p, n, LWS_WRITE_TEXT);
	free(state);
	free(m);
	if (rc < 0)
		return -1;
	if (c->ws.qlen || c->ws.state_dirty || c->ws.video_pending || c->ws.audio_pending)
		lws_callback_on_writable(c->wsi);
	else
		lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	return 0;
}

/* ---- connection life ---- */

int
ws_filter(struct conn *c)
{
	char uri[64];
	if (lws_hdr_copy(c->wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    (strcmp(uri, "/api/ws") && (strcmp(uri, "/api/console") || !c->s->console)))
		return 1;
	if (!auth_host_ok(c->s, c->wsi)) {
		okvm_log(OKVM_LOG_WARN, "serve: WebSocket for a Host not served here refused");
		return 1;
	}
	if (!auth_origin_ok(c->wsi)) {
		okvm_log(OKVM_LOG_WARN, "serve: WebSocket from a foreign Origin refused");
		return 1;
	}
	if (auth_required(c->s) && !auth_check_request(c->s, c->wsi))
		return 1;
	return 0;
}

int
ws_established(struct conn *c)
{
	struct serve *s = c->s;
	const struct session *se = auth_required(s) ? auth_check_request(s, c->wsi) : NULL;
	if (auth_required(s) && !se)
		return -1; /* the session ended between the handshake and now */
	c->role = se ? se->role : SERVE_ROLE_ADMIN;
	c->session_id = se ? se->id : 0;
	guard_request(s, c->wsi, true);
	serve_list_add(&s->sockets, c);
	s->nsockets++;
	serve_update_want(s);
	okvm_log(OKVM_LOG_INFO, "serve: WebSocket client %u from %s", c->id, c->peer);
	ws_broadcast_state(s);
	return 0;
}

int
ws_receive(struct conn *c, const void *in, size_t len)
{
	struct lws *wsi = c->wsi;
	if (lws_frame_is_binary(wsi)) {
		ws_queue_text(c, "{\"type\":\"error\",\"error\":\"binary messages are not "
				 "supported; send JSON text\"}");
		c->s->ws_errors++;
		return 0;
	}
	/* What the frame's header says is still to come counts too: a header claiming 4 GiB is
	 * refused at its first bytes, not after the server has waited for them. */
	if (c->ws.rx_len + len + lws_remaining_packet_payload(wsi) > SERVE_MAX_WS_MSG) {
		okvm_log(OKVM_LOG_WARN, "serve: WebSocket client %u sent a message over %d bytes",
			 c->id, SERVE_MAX_WS_MSG);
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"message too big", 15);
		return -1;
	}
	char *rx = xrealloc(c->ws.rx, c->ws.rx_len + len + 1);
	c->ws.rx = rx;
	memcpy(c->ws.rx + c->ws.rx_len, in, len);
	c->ws.rx_len += len;
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	c->ws.rx[c->ws.rx_len] = 0;
	ws_handle_message(c->s, c, c->ws.rx, c->ws.rx_len);
	free(c->ws.rx);
	c->ws.rx = NULL;
	c->ws.rx_len = 0;
	return 0;
}

void
ws_closed(struct conn *c)
{
	struct serve *s = c->s;
	input_release_client(s, c);
	ws_video_stop(c);
	ws_audio_stop(c);
	serve_list_del(&s->sockets, c);
	s->nsockets--;
	serve_update_want(s);
	free(c->ws.rx);
	c->ws.rx = NULL;
	while (c->ws.qlen) {
		free(c->ws.q[c->ws.qhead]);
		c->ws.qhead = (c->ws.qhead + 1) % SERVE_WS_QUEUE;
		c->ws.qlen--;
	}
	okvm_log(OKVM_LOG_INFO, "serve: WebSocket client %u left", c->id);
	ws_broadcast_state(s);
}
