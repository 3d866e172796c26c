/*
 * DESIGN: input from browsers and scripts, whatever carried it: the JSON messages of the
 * WebSocket and of POST /api/mouse (docs/api.md) are validated and applied here, and input
 * from several clients is merged.
 *
 * Runs on the service thread only. A message is validated completely before anything is sent to
 * the backend: an unknown or malformed one gets an error (queued to the WebSocket client, or
 * kept for the REST answer) and changes nothing. Every message checks the sender's role.
 *
 * Merging: the server remembers which keys and buttons each WebSocket client holds; a key goes
 * down on the target when the first client presses it and up when the last one lets go, and the
 * buttons sent are the union of every client's. When a client goes away, its keys and buttons
 * are released. Browser autorepeat (a second keydown) is ignored: the target repeats by itself.
 * A REST request is no client: it holds nothing after its answer (its buttons are its own).
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
#include "okvm/keymap.h"
#include "okvm/log.h"
#include "okvm/text.h"
#include "serve/config-file.h"
#include "serve/internal.h"

/* An error for the message's sender: queued to a WebSocket client, kept in in->err for REST. */
static void reply_error(struct input_src *in, const char *ref, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
reply_error(struct input_src *in, const char *ref, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!in->err[0])
		snprintf(in->err, sizeof(in->err), "%s", msg);
	if (!in->c)
		return;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "error");
	cJSON_AddStringToObject(o, "error", msg);
	if (ref)
		cJSON_AddStringToObject(o, "ref", ref);
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	ws_queue_text(in->c, txt);
	free(txt);
	in->s->ws_errors++;
}

void
serve_error_text(char *buf, size_t n, const char *what, int rc)
{
	const char *m;
	switch (rc) {
	case -EBUSY: m = "a paste is running; wait or POST /api/release"; break;
	case -OKVM_E_VIDEO_ONLY:
		m = "this unit has video only (no keyboard and mouse link); check its serial port "
		    "with `okvm doctor`";
		break;
	case -EOPNOTSUPP:
		m = !strcmp(what, "wheel") ? "the unit has no horizontal wheel; send \"dy\""
					   : "the unit cannot do that";
		break;
	case -ENODEV:
		m = "the unit is unplugged; plug it back in (okvm serve picks it up again)";
		break;
	case -EIO:
	case -ETIMEDOUT:
	case -EPROTO: m = "the unit does not answer; check its USB cable, then retry"; break;
	case -ENOSPC: m = "too many keys held at once; let some go"; break;
	case -OKVM_E_UNMAPPABLE: m = "a character the target layout cannot type"; break;
	default: snprintf(buf, n, "%s failed: %s", what, okvm_strerror(rc)); return;
	}
	snprintf(buf, n, "%s: %s", what, m);
}

unsigned
serve_error_status(int rc)
{
	switch (rc) {
	case -EBUSY: return 409;
	case -EOPNOTSUPP:
	case -OKVM_E_VIDEO_ONLY: return 501;
	case -ENODEV:
	case -EIO:
	case -ETIMEDOUT:
	case -EPROTO: return 503;
	default: return 400;
	}
}

/* An error from the backend (rc) for what: kept in in->rc, said as serve_error_text says it. */
static void
reply_backend(struct input_src *in, const char *ref, const char *what, int rc)
{
	char msg[200];
	serve_error_text(msg, sizeof(msg), what, rc);
	if (!in->err[0])
		in->rc = rc;
	reply_error(in, ref, "%s", msg);
}

int
input_check_type(struct serve *s, const char *text, size_t len, const char *layout, char *err,
		 size_t n)
{
	if (!layout || !*layout)
		layout = s->cfg.layout;
	if (!layout || !*layout)
		layout = "us";
	if (!s->km || strcmp(okvm_keymap_layout(s->km), layout)) {
		struct okvm_keymap *km = okvm_keymap_new(layout);
		if (!km) {
			snprintf(err, n,
				 "type: no keyboard layout '%.40s' (see GET /api/layouts or okvm "
				 "layouts)",
				 layout);
			return -EINVAL;
		}
		okvm_keymap_free(s->km);
		s->km = km;
	}
	struct okvm_text_opts o = { .caps = OKVM_CAPS_COMPENSATE };
	struct okvm_text_plan plan;
	struct okvm_text_error e = { 0 };
	int rc = okvm_text_plan(s->km, text, len, &o, &plan, &e);
	if (rc) {
		snprintf(err, n, "type: %s", e.message[0] ? e.message : okvm_strerror(rc));
		return -EINVAL;
	}
	okvm_text_plan_free(&plan);
	return 0;
}

int
input_check_combo(const char *combo, char *err, size_t n)
{
	struct okvm_combo c;
	char why[160] = "";
	int rc = okvm_combo_parse(combo, NULL, &c, why, sizeof(why));
	if (rc)
		snprintf(err, n, "combo: %s",
			 why[0] ? why : "not a combo; write e.g. ctrl+alt+delete");
	return rc;
}

static void
reply_ok(struct input_src *in, const char *ref)
{
	char txt[96];
	snprintf(txt, sizeof(txt), "{\"type\":\"ok\",\"ref\":\"%s\"}", ref);
	if (in->c)
		ws_queue_text(in->c, txt);
}

/* ---- input merging ---- */

static int
find_pressed(const struct conn *c, const char *code)
{
	for (unsigned i = 0; i < c->ws.npressed; i++)
		if (!strcmp(c->ws.pressed[i], code))
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
	uint8_t b = me ? me->ws.buttons : 0;
	for (struct conn *c = s->sockets; c; c = c->next)
		if (c != me)
			b |= c->ws.buttons;
	return b;
}

int
input_key(struct serve *s, struct conn *c, const char *code, bool down)
{
	int i = find_pressed(c, code);
	if (down) {
		if (i >= 0)
			return 0; /* browser autorepeat */
		if (c->ws.npressed == SERVE_MAX_PRESSED)
			return -ENOSPC;
		if (!held_by_other(s, c, code)) {
			int rc = s->be.ops->key(s->be.ud, code, true);
			if (rc)
				return rc;
		}
		snprintf(c->ws.pressed[c->ws.npressed++], sizeof(c->ws.pressed[0]), "%s", code);
		return 0;
	}
	if (i >= 0) {
		c->ws.npressed--;
		memmove(c->ws.pressed[i], c->ws.pressed[i + 1],
			(c->ws.npressed - (unsigned)i) * sizeof(c->ws.pressed[0]));
	}
	if (held_by_other(s, c, code))
		return 0;
	return s->be.ops->key(s->be.ud, code, false);
}

int
input_release_client(struct serve *s, struct conn *c)
{
	while (c->ws.npressed)
		input_key(s, c, c->ws.pressed[c->ws.npressed - 1], false);
	if (c->ws.buttons) {
		c->ws.buttons = 0;
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
msg_key(struct input_src *in, cJSON *o)
{
	struct serve *s = in->s;
	struct conn *c = in->c;
	const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "code"));
	cJSON *down = cJSON_GetObjectItemCaseSensitive(o, "down");
	if (!code || !cJSON_IsBool(down))
		return reply_error(in, "key", "key needs \"code\" (string) and \"down\" (boolean)");
	if (!valid_code(code))
		return reply_error(in, "key",
				   "key: '%.40s' is not a key code (KeyboardEvent.code, e.g. KeyA)",
				   code);
	if (!c) /* held keys belong to a client, so they can be let go when it leaves */
		return reply_error(in, "key",
				   "key messages need a WebSocket; POST /api/key?combo=");
	int rc = input_key(s, c, code, cJSON_IsTrue(down));
	if (rc == -ENOENT)
		return reply_error(in, "key", "unknown key code '%s'", code);
	if (rc)
		return reply_backend(in, "key", "key", rc);
}

/* One pointer report: absolute at x, y (fractions of the screen) or relative by dx, dy. */
struct pointer_report {
	bool abs;
	double x, y;
	int dx, dy;
};

/* The rest of a mouse or rel message (ref): its "buttons" (default: those the sender holds),
 * then r with every client's buttons. The sender holds its buttons from now on, unless the
 * backend refuses r: then its old ones stand again. Returns false after an error reply. */
static bool
send_pointer(struct input_src *in, cJSON *o, const char *ref, const struct pointer_report *r)
{
	struct serve *s = in->s;
	uint8_t *held = in->c ? &in->c->ws.buttons : &in->buttons, old = *held;
	int buttons = old;
	/* bits 0..4: left, right, middle, back, forward (PiKVM, NanoKVM-USB) */
	if (!get_int(o, "buttons", 0, 0x1F, false, &buttons)) {
		reply_error(in, ref, "\"buttons\" must be an integer from 0 to 31");
		return false;
	}
	*held = (uint8_t)buttons;
	uint8_t all = buttons_union(s, in->c) | *held;
	int rc = r->abs ? s->be.ops->mouse_abs(s->be.ud, r->x, r->y, all)
			: s->be.ops->rel(s->be.ud, r->dx, r->dy, all);
	if (rc) {
		*held = old;
		reply_backend(in, ref, ref, rc);
		return false;
	}
	return true;
}

static void
msg_mouse(struct input_src *in, cJSON *o)
{
	struct pointer_report r = { .abs = true };
	if (!get_number(o, "x", 0, 1, true, &r.x) || !get_number(o, "y", 0, 1, true, &r.y))
		return reply_error(in, "mouse", "mouse needs \"x\" and \"y\" from 0 to 1");
	if (send_pointer(in, o, "mouse", &r)) {
		in->s->last_x = r.x;
		in->s->last_y = r.y;
	}
}

static void
msg_wheel(struct input_src *in, cJSON *o)
{
	struct serve *s = in->s;
	int dy = 0, dx = 0;
	if (!get_int(o, "dy", -127, 127, false, &dy) || !get_int(o, "dx", -127, 127, false, &dx))
		return reply_error(in, "wheel",
				   "wheel \"dy\"/\"dx\" must be integers from -127 to 127");
	int rc = s->be.ops->wheel(s->be.ud, dy, dx);
	if (rc)
		return reply_backend(in, "wheel", "wheel", rc);
}

static void
msg_rel(struct input_src *in, cJSON *o)
{
	struct pointer_report r = { .abs = false };
	if (!get_int(o, "dx", -32767, 32767, true, &r.dx) ||
	    !get_int(o, "dy", -32767, 32767, true, &r.dy))
		return reply_error(in, "rel", "rel needs integer \"dx\" and \"dy\" (|d| <= 32767)");
	send_pointer(in, o, "rel", &r);
}

static void
msg_type(struct input_src *in, cJSON *o)
{
	struct serve *s = in->s;
	struct conn *c = in->c;
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "text"));
	cJSON *lay = cJSON_GetObjectItemCaseSensitive(o, "layout");
	double cps = 0;
	if (!text || !*text)
		return reply_error(in, "type", "type needs a non-empty \"text\"");
	if (lay && !cJSON_IsString(lay))
		return reply_error(in, "type", "\"layout\" must be a string");
	if (!get_number(o, "cps", 0, 10000, false, &cps))
		return reply_error(in, "type", "\"cps\" must be a number from 0 to 10000");
	char why[256];
	if (input_check_type(s, text, strlen(text), lay ? lay->valuestring : NULL, why,
			     sizeof(why)))
		return reply_error(in, "type", "%s", why);
	int rc = input_type(s, text, strlen(text), lay ? lay->valuestring : NULL, cps);
	if (rc)
		return reply_backend(in, "type", "type", rc);
	if (c)
		audit(c, "paste bytes=%zu", strlen(text));
	reply_ok(in, "type");
}

static void
msg_release_all(struct input_src *in, cJSON *o)
{
	struct serve *s = in->s;
	struct conn *c = in->c;
	for (struct conn *k = s->sockets; k; k = k->next) {
		k->ws.npressed = 0;
		k->ws.buttons = 0;
	}
	if (c) {
		c->ws.npressed = 0;
		c->ws.buttons = 0;
	}
	int rc = s->be.ops->release_all(s->be.ud);
	if (rc)
		return reply_backend(in, "release_all", "release_all", rc);
	s->typing_active = false;
	ws_broadcast_state(s);
}

static void
msg_ping(struct input_src *in, cJSON *o)
{
	struct conn *c = in->c;
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

int
serve_usb_parse(const char *to, enum okvm_usb_dir *out)
{
	if (to && !strcmp(to, "host"))
		*out = OKVM_USB_TO_HOST;
	else if (to && !strcmp(to, "target"))
		*out = OKVM_USB_TO_TARGET;
	else
		return -EINVAL;
	return 0;
}

static void
msg_switch(struct input_src *in, cJSON *o)
{
	struct serve *s = in->s;
	struct conn *c = in->c;
	const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "to"));
	enum okvm_usb_dir dir;
	if (serve_usb_parse(to, &dir) < 0)
		return reply_error(in, "switch", "switch needs \"to\": \"host\" or \"target\"");
	int rc = s->be.ops->usb_switch(s->be.ud, dir);
	if (rc)
		return reply_backend(in, "switch", "switch", rc);
	if (c)
		audit(c, "switch to=%s", to);
	ws_broadcast_state(s);
}

static void
msg_combo(struct input_src *in, cJSON *o)
{
	struct serve *s = in->s;
	const char *combo = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "combo"));
	if (!combo || !*combo || strlen(combo) > 128)
		return reply_error(in, "combo", "combo needs \"combo\", e.g. \"ctrl+alt+delete\"");
	char why[256];
	if (input_check_combo(combo, why, sizeof(why)))
		return reply_error(in, "combo", "%s", why);
	int rc = s->be.ops->combo(s->be.ud, combo);
	if (rc)
		return reply_backend(in, "combo", "combo", rc);
}

static void
msg_video(struct input_src *in, cJSON *o)
{
	char why[160];
	if (!in->c)
		return reply_error(in, "video",
				   "video is a WebSocket message (GET /stream.h264 "
				   "for HTTP)");
	if (ws_video_request(in->c, o, why, sizeof(why)))
		return reply_error(in, "video", "%s", why);
}

static void
msg_audio(struct input_src *in, cJSON *o)
{
	char why[160];
	if (!in->c)
		return reply_error(in, "audio", "audio is a WebSocket message");
	if (ws_audio_request(in->c, o, why, sizeof(why)))
		return reply_error(in, "audio", "%s", why);
}

static const struct {
	const char *type;
	void (*fn)(struct input_src *in, cJSON *o);
	enum serve_role role; /* the least role that may send it */
} handlers[] = {
	{ "key", msg_key, SERVE_ROLE_OPERATOR },
	{ "mouse", msg_mouse, SERVE_ROLE_OPERATOR },
	{ "wheel", msg_wheel, SERVE_ROLE_OPERATOR },
	{ "rel", msg_rel, SERVE_ROLE_OPERATOR },
	{ "type", msg_type, SERVE_ROLE_OPERATOR },
	{ "release_all", msg_release_all, SERVE_ROLE_OPERATOR },
	{ "ping", msg_ping, SERVE_ROLE_VIEWER },
	{ "switch", msg_switch, SERVE_ROLE_OPERATOR },
	{ "combo", msg_combo, SERVE_ROLE_OPERATOR },
	{ "video", msg_video, SERVE_ROLE_VIEWER },
	{ "audio", msg_audio, SERVE_ROLE_VIEWER },
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

int
input_apply(struct input_src *in, cJSON *o)
{
	if (has_duplicate_names(o)) {
		reply_error(in, NULL, "malformed message: a member name appears twice");
		return -EINVAL;
	}
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
	if (!type) {
		reply_error(in, NULL, "message without a \"type\"");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (strcmp(handlers[i].type, type))
			continue;
		if (in->role < handlers[i].role) {
			reply_error(in, handlers[i].type, "%s needs the role %s (yours: %s)",
				    handlers[i].type, serve_role_name(handlers[i].role),
				    serve_role_name(in->role));
			return -EPERM;
		}
		handlers[i].fn(in, o);
		return in->err[0] ? -EINVAL : 0;
	}
	reply_error(in, NULL, "unknown message type '%.40s'", type);
	return -EINVAL;
}

void
ws_handle_message(struct serve *s, struct conn *c, const char *msg, size_t len)
{
	struct input_src in = { .s = s, .c = c, .role = c ? c->role : SERVE_ROLE_NONE };
	cJSON *o = cJSON_ParseWithLength(msg, len);
	if (!cJSON_IsObject(o))
		reply_error(&in, NULL, "malformed message: want one JSON object");
	else
		input_apply(&in, o);
	cJSON_Delete(o);
}
