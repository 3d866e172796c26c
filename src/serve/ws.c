/*
 * DESIGN: the WebSocket at /api/ws: JSON text messages both ways (docs/api.md), and the merging
 * of input from several browsers at once.
 *
 * Runs on the service thread only. A message is collected whole (up to SERVE_MAX_WS_MSG, else the
 * socket is closed with 1009), parsed with cJSON and validated completely before anything is sent
 * to the backend: an unknown or malformed message gets {"type":"error"} back and changes nothing.
 *
 * Input from all clients is merged: the server remembers which keys and buttons each client
 * holds; a key goes down on the target when the first client presses it and up when the last one
 * lets go, and the buttons sent are the union of every client's. When a client goes away, its
 * keys and buttons are released. Browser autorepeat (a second keydown) is ignored: the target
 * repeats by itself.
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

/* ---- outgoing ---- */

void
ws_queue_text(struct conn *c, const char *text)
{
	if (c->qlen == SERVE_WS_QUEUE) {
		c->q_dropped++;
		return;
	}
	size_t n = strlen(text);
	struct ws_msg *m = malloc(sizeof(*m) + LWS_PRE + n);
	if (!m)
		abort();
	m->len = n;
	memcpy(m->buf + LWS_PRE, text, n);
	c->q[(c->qhead + c->qlen) % SERVE_WS_QUEUE] = m;
	c->qlen++;
	if (c->wsi) {
		if (c->qlen == 1 && !c->state_dirty)
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, c->s->cfg.stall_timeout_s);
		lws_callback_on_writable(c->wsi);
	}
}

static void
reply_error(struct conn *c, const char *ref, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
reply_error(struct conn *c, const char *ref, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "error");
	cJSON_AddStringToObject(o, "error", msg);
	if (ref)
		cJSON_AddStringToObject(o, "ref", ref);
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (c)
		ws_queue_text(c, txt);
	free(txt);
	if (c && c->s)
		c->s->ws_errors++;
}

static void
reply_ok(struct conn *c, const char *ref)
{
	char txt[96];
	snprintf(txt, sizeof(txt), "{\"type\":\"ok\",\"ref\":\"%s\"}", ref);
	if (c)
		ws_queue_text(c, txt);
}

static const char *
usb_name(enum serve_usb u)
{
	return u == SERVE_USB_HOST ? "host" : u == SERVE_USB_TARGET ? "target" : "unknown";
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
	cJSON_AddBoolToObject(l, "num", st.leds & SERVE_LED_NUM);
	cJSON_AddBoolToObject(l, "caps", st.leds & SERVE_LED_CAPS);
	cJSON_AddBoolToObject(l, "scroll", st.leds & SERVE_LED_SCROLL);
	cJSON *v = cJSON_AddObjectToObject(o, "video");
	cJSON_AddBoolToObject(v, "available", st.has_video);
	cJSON_AddBoolToObject(v, "signal", st.signal);
	cJSON_AddNumberToObject(v, "width", st.width);
	cJSON_AddNumberToObject(v, "height", st.height);
	cJSON_AddNumberToObject(v, "fps", round(st.fps * 10) / 10);
	cJSON_AddStringToObject(o, "usb", usb_name(st.usb));
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
		for (int i = 0; you->session_id && i < SERVE_MAX_SESSIONS; i++)
			if (s->sessions[i].id == you->session_id)
				cJSON_AddStringToObject(o, "user", s->sessions[i].user);
	}
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return txt;
}

void
ws_broadcast_state(struct serve *s)
{
	for (struct conn *c = s->sockets; c; c = c->next) {
		c->state_dirty = true;
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
	if (c->state_dirty) {
		c->state_dirty = false;
		char *txt = ws_state_json(c->s, c);
		n = strlen(txt);
		state = malloc(LWS_PRE + n);
		if (!state)
			abort();
		memcpy(state + LWS_PRE, txt, n);
		free(txt);
		p = (unsigned char *)state + LWS_PRE;
	} else if (c->qlen) {
		m = c->q[c->qhead];
		c->qhead = (c->qhead + 1) % SERVE_WS_QUEUE;
		c->qlen--;
		p = m->buf + LWS_PRE;
		n = m->len;
	} else {
		return 0;
	}
	int rc = lws_write(c->wsi, p, n, LWS_WRITE_TEXT);
	free(state);
	free(m);
	if (rc < 0)
		return -1;
	if (c->qlen || c->state_dirty)
		lws_callback_on_writable(c->wsi);
	else
		lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	return 0;
}

/* ---- input merging ---- */

static int
find_pressed(const struct conn *c, const char *code)
{
	for (unsigned i = 0; i < c->npressed; i++)
		if (!strcmp(c->pressed[i], code))
			return (int)i;
	return -1;
}

static bool
held_by_other(struct serve *s, const struct conn *me, const char *code)
{
	for (struct conn *c = s->sockets; c; c = c->next)
		if (c != me && find_pressed(c, code) >= 0)
			return true;
	return false;
}

/* Buttons held by any client; me may be a REST request's throwaway connection (not listed). */
static uint8_t
buttons_union(struct serve *s, const struct conn *me)
{
	uint8_t b = me ? me->buttons : 0;
	for (struct conn *c = s->sockets; c; c = c->next)
		if (c != me)
			b |= c->buttons;
	return b;
}

int
input_key(struct serve *s, struct conn *c, const char *code, bool down)
{
	int i = find_pressed(c, code);
	if (down) {
		if (i >= 0)
			return 0; /* browser autorepeat */
		if (c->npressed == SERVE_MAX_PRESSED)
			return -ENOSPC;
		if (!held_by_other(s, c, code)) {
			int rc = s->be.ops->key(s->be.ud, code, true);
			if (rc)
				return rc;
		}
		snprintf(c->pressed[c->npressed++], sizeof(c->pressed[0]), "%s", code);
		return 0;
	}
	if (i >= 0) {
		c->npressed--;
		memmove(c->pressed[i], c->pressed[i + 1], (c->npressed - (unsigned)i) *
			sizeof(c->pressed[0]));
	}
	if (held_by_other(s, c, code))
		return 0;
	return s->be.ops->key(s->be.ud, code, false);
}

int
input_release_client(struct serve *s, struct conn *c)
{
	while (c->npressed)
		input_key(s, c, c->pressed[c->npressed - 1], false);
	if (c->buttons) {
		c->buttons = 0;
		s->be.ops->buttons(s->be.ud, buttons_union(s, c));
	}
	return 0;
}

/* ---- incoming ---- */

static bool
get_number(cJSON *o, const char *name, double lo, double hi, bool required, double *out)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
	if (!it)
		return !required;
	if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < lo ||
	    it->valuedouble > hi)
		return false;
	*out = it->valuedouble;
	return true;
}

static bool
get_int(cJSON *o, const char *name, int lo, int hi, bool required, int *out)
{
	double d = *out;
	if (!get_number(o, name, lo, hi, required, &d) || d != floor(d))
		return false;
	*out = (int)d;
	return true;
}

static bool
valid_code(const char *code)
{
	size_t n = strlen(code);
	if (n == 0 || n >= 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((code[i] >= 'a' && code[i] <= 'z') || (code[i] >= 'A' && code[i] <= 'Z') ||
		      (code[i] >= '0' && code[i] <= '9')))
			return false;
	return true;
}

static void
msg_key(struct serve *s, struct conn *c, cJSON *o)
{
	const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "code"));
	cJSON *down = cJSON_GetObjectItemCaseSensitive(o, "down");
	if (!code || !cJSON_IsBool(down))
		return reply_error(c, "key", "key needs \"code\" (string) and \"down\" (boolean)");
	if (!valid_code(code))
		return reply_error(c, "key", "unknown key code");
	int rc = input_key(s, c, code, cJSON_IsTrue(down));
	if (rc == -ENOENT)
		return reply_error(c, "key", "unknown key code '%s'", code);
	if (rc)
		return reply_error(c, "key", "key %s: %s", code, okvm_strerror(rc));
}

static void
msg_mouse(struct serve *s, struct conn *c, cJSON *o)
{
	double x = 0, y = 0;
	int buttons = c->buttons;
	if (!get_number(o, "x", 0, 1, true, &x) || !get_number(o, "y", 0, 1, true, &y))
		return reply_error(c, "mouse", "mouse needs \"x\" and \"y\" from 0 to 1");
	if (!get_int(o, "buttons", 0, 7, false, &buttons))
		return reply_error(c, "mouse", "\"buttons\" must be an integer from 0 to 7");
	uint8_t old = c->buttons;
	c->buttons = (uint8_t)buttons;
	int rc = s->be.ops->mouse_abs(s->be.ud, x, y, buttons_union(s, c));
	if (rc) {
		c->buttons = old;
		return reply_error(c, "mouse", "mouse: %s", okvm_strerror(rc));
	}
	s->last_x = x;
	s->last_y = y;
}

static void
msg_wheel(struct serve *s, struct conn *c, cJSON *o)
{
	int dy = 0, dx = 0;
	if (!get_int(o, "dy", -127, 127, false, &dy) || !get_int(o, "dx", -127, 127, false, &dx))
		return reply_error(c, "wheel", "wheel \"dy\"/\"dx\" must be integers from -127 to 127");
	int rc = s->be.ops->wheel(s->be.ud, dy, dx);
	if (rc)
		return reply_error(c, "wheel", "wheel: %s", okvm_strerror(rc));
}

static void
msg_rel(struct serve *s, struct conn *c, cJSON *o)
{
	int dx = 0, dy = 0, buttons = c->buttons;
	if (!get_int(o, "dx", -32767, 32767, true, &dx) ||
	    !get_int(o, "dy", -32767, 32767, true, &dy))
		return reply_error(c, "rel", "rel needs integer \"dx\" and \"dy\" (|d| <= 32767)");
	if (!get_int(o, "buttons", 0, 7, false, &buttons))
		return reply_error(c, "rel", "\"buttons\" must be an integer from 0 to 7");
	uint8_t old = c->buttons;
	c->buttons = (uint8_t)buttons;
	int rc = s->be.ops->rel(s->be.ud, dx, dy, buttons_union(s, c));
	if (rc) {
		c->buttons = old;
		return reply_error(c, "rel", "rel: %s", okvm_strerror(rc));
	}
}

static void
msg_type(struct serve *s, struct conn *c, cJSON *o)
{
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "text"));
	cJSON *lay = cJSON_GetObjectItemCaseSensitive(o, "layout");
	double cps = 0;
	if (!text || !*text)
		return reply_error(c, "type", "type needs a non-empty \"text\"");
	if (lay && !cJSON_IsString(lay))
		return reply_error(c, "type", "\"layout\" must be a string");
	if (!get_number(o, "cps", 0, 10000, false, &cps))
		return reply_error(c, "type", "\"cps\" must be a number from 0 to 10000");
	int rc = input_type(s, text, strlen(text), lay ? lay->valuestring : NULL, cps);
	if (rc)
		return reply_error(c, "type", "type: %s", okvm_strerror(rc));
	if (c)
		audit(c, "paste bytes=%zu", strlen(text));
	reply_ok(c, "type");
}

static void
msg_release_all(struct serve *s, struct conn *c, cJSON *o)
{
	for (struct conn *k = s->sockets; k; k = k->next) {
		k->npressed = 0;
		k->buttons = 0;
	}
	if (c) {
		c->npressed = 0;
		c->buttons = 0;
	}
	int rc = s->be.ops->release_all(s->be.ud);
	if (rc)
		return reply_error(c, "release_all", "release_all: %s", okvm_strerror(rc));
	s->typing_active = false;
	ws_broadcast_state(s);
}

static void
msg_ping(struct serve *s, struct conn *c, cJSON *o)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "type", "pong");
	cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "t");
	if (cJSON_IsNumber(t))
		cJSON_AddNumberToObject(r, "t", t->valuedouble);
	char *txt = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	if (c)
		ws_queue_text(c, txt);
	free(txt);
}

static void
msg_switch(struct serve *s, struct conn *c, cJSON *o)
{
	const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "to"));
	enum serve_usb dir = !to ? SERVE_USB_UNKNOWN : !strcmp(to, "host") ? SERVE_USB_HOST
			     : !strcmp(to, "target") ? SERVE_USB_TARGET : SERVE_USB_UNKNOWN;
	if (dir == SERVE_USB_UNKNOWN)
		return reply_error(c, "switch", "switch needs \"to\": \"host\" or \"target\"");
	int rc = s->be.ops->usb_switch(s->be.ud, dir);
	if (rc)
		return reply_error(c, "switch", "switch: %s", okvm_strerror(rc));
	if (c)
		audit(c, "switch to=%s", to);
	ws_broadcast_state(s);
}

static void
msg_combo(struct serve *s, struct conn *c, cJSON *o)
{
	const char *combo = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "combo"));
	if (!combo || !*combo || strlen(combo) > 128)
		return reply_error(c, "combo", "combo needs \"combo\", e.g. \"ctrl+alt+delete\"");
	int rc = s->be.ops->combo(s->be.ud, combo);
	if (rc == -ENOENT)
		return reply_error(c, "combo", "unknown key in combo '%s'", combo);
	if (rc)
		return reply_error(c, "combo", "combo: %s", okvm_strerror(rc));
}

static const struct {
	const char *type;
	void (*fn)(struct serve *s, struct conn *c, cJSON *o);
	enum serve_role role;           /* the least role that may send it */
} handlers[] = {
	{ "key", msg_key, SERVE_ROLE_OPERATOR }, { "mouse", msg_mouse, SERVE_ROLE_OPERATOR },
	{ "wheel", msg_wheel, SERVE_ROLE_OPERATOR }, { "rel", msg_rel, SERVE_ROLE_OPERATOR },
	{ "type", msg_type, SERVE_ROLE_OPERATOR },
	{ "release_all", msg_release_all, SERVE_ROLE_OPERATOR },
	{ "ping", msg_ping, SERVE_ROLE_VIEWER }, { "switch", msg_switch, SERVE_ROLE_OPERATOR },
	{ "combo", msg_combo, SERVE_ROLE_OPERATOR },
};

/* Two members whose names differ at most in case ({"Type":..,"type":..}): one reader of the
 * message could take one and another reader the other, so such a message is refused whole. */
static bool
has_duplicate_names(const cJSON *o)
{
	for (const cJSON *a = o->child; a; a = a->next)
		for (const cJSON *b = a->next; b; b = b->next)
			if (a->string && b->string && !strcasecmp(a->string, b->string))
				return true;
	return false;
}

void
ws_handle_message(struct serve *s, struct conn *c, const char *msg, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(msg, len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return reply_error(c, NULL, "malformed message: want one JSON object");
	}
	if (has_duplicate_names(o)) {
		cJSON_Delete(o);
		return reply_error(c, NULL, "malformed message: a member name appears twice");
	}
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
	if (!type) {
		cJSON_Delete(o);
		return reply_error(c, NULL, "message without a \"type\"");
	}
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (strcmp(handlers[i].type, type))
			continue;
		if (c && c->role < handlers[i].role) {
			cJSON_Delete(o);
			return reply_error(c, handlers[i].type, "%s needs the role %s (yours: %s)",
					   handlers[i].type, serve_role_name(handlers[i].role),
					   serve_role_name(c->role));
		}
		handlers[i].fn(s, c, o);
		cJSON_Delete(o);
		return;
	}
	char t[40];
	snprintf(t, sizeof(t), "%s", type);
	cJSON_Delete(o);
	reply_error(c, NULL, "unknown message type '%s'", t);
}

/* ---- connection life ---- */

int
ws_filter(struct conn *c)
{
	char uri[64];
	if (lws_hdr_copy(c->wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/api/ws"))
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
		reply_error(c, NULL, "binary messages are not supported; send JSON text");
		return 0;
	}
	if (c->rx_len + len > SERVE_MAX_WS_MSG) {
		okvm_log(OKVM_LOG_WARN, "serve: WebSocket client %u sent a message over %d bytes",
			 c->id, SERVE_MAX_WS_MSG);
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"message too big", 15);
		return -1;
	}
	char *rx = realloc(c->rx, c->rx_len + len + 1);
	if (!rx)
		abort();
	c->rx = rx;
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	c->rx[c->rx_len] = 0;
	ws_handle_message(c->s, c, c->rx, c->rx_len);
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
	return 0;
}

void
ws_closed(struct conn *c)
{
	struct serve *s = c->s;
	input_release_client(s, c);
	serve_list_del(&s->sockets, c);
	s->nsockets--;
	serve_update_want(s);
	free(c->rx);
	c->rx = NULL;
	while (c->qlen) {
		free(c->q[c->qhead]);
		c->qhead = (c->qhead + 1) % SERVE_WS_QUEUE;
		c->qlen--;
	}
	okvm_log(OKVM_LOG_INFO, "serve: WebSocket client %u left", c->id);
	ws_broadcast_state(s);
}
