/*
 * DESIGN: the HTTP half of okvm serve: routing, request bodies, complete responses and the
 * REST API (ARCHITECTURE 4.3, docs/api.md).
 *
 * Runs on the service thread only. A request is routed from its path (and ?action= for the
 * mjpg-streamer compatible paths) once lws has parsed its headers; POST bodies are collected up
 * to SERVE_MAX_BODY and handled on completion. Every response is built whole (headers + body, or
 * headers + a frame reference for snapshots) and written from the writeable callback, as much as
 * the socket takes each time, so no client can block the loop. Long-lived responses (MJPEG) are
 * stream.c's; WebSockets are ws.c's.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <sodium.h>

#include "lib/kbd/layout-json.h"
#include "okvm/error.h"
#include "okvm/keymap.h"
#include "okvm/log.h"
#include "serve/config-file.h"
#include "serve/internal.h"
#include "lib/xalloc.h"

enum route {
	R_NONE,
	R_INDEX,
	R_LOGIN_PAGE,
	R_FAVICON,
	R_ASSET,
	R_STREAM,
	R_STREAM_H264,
	R_SNAPSHOT,
	R_STATE,
	R_LAYOUTS,
	R_METRICS,
	R_LOGIN,
	R_LOGOUT,
	R_TYPE,
	R_KEY,
	R_MOUSE,
	R_SWITCH,
	R_RELEASE,
	R_WS,
	R_OCR,
	R_MCP,
	R_POWER,
	R_MEDIA,
	R_RECORD,
	R_RECORDINGS,
	R_RECORDING,
};

struct route_def {
	const char *path;
	enum route route;
	bool post;
	enum serve_role role; /* the least role that may use it (NONE: anyone) */
};

static const struct route_def routes[] = {
	{ "/", R_INDEX, false, SERVE_ROLE_VIEWER },
	{ "/login", R_LOGIN_PAGE, false, SERVE_ROLE_NONE },
	{ "/favicon.ico", R_FAVICON, false, SERVE_ROLE_NONE },
	{ "/stream", R_STREAM, false, SERVE_ROLE_VIEWER },
	{ "/stream.h264", R_STREAM_H264, false, SERVE_ROLE_VIEWER },
	{ "/snapshot", R_SNAPSHOT, false, SERVE_ROLE_VIEWER },
	{ "/api/state", R_STATE, false, SERVE_ROLE_VIEWER },
	{ "/api/layouts", R_LAYOUTS, false, SERVE_ROLE_VIEWER },
	{ "/api/ocr", R_OCR, false, SERVE_ROLE_VIEWER },
	{ "/metrics", R_METRICS, false, SERVE_ROLE_ADMIN },
	{ "/api/login", R_LOGIN, true, SERVE_ROLE_NONE },
	{ "/api/logout", R_LOGOUT, true, SERVE_ROLE_NONE },
	{ "/api/type", R_TYPE, true, SERVE_ROLE_OPERATOR },
	{ "/api/key", R_KEY, true, SERVE_ROLE_OPERATOR },
	{ "/api/mouse", R_MOUSE, true, SERVE_ROLE_OPERATOR },
	{ "/api/switch", R_SWITCH, true, SERVE_ROLE_OPERATOR },
	{ "/api/release", R_RELEASE, true, SERVE_ROLE_OPERATOR },
	{ "/api/ws", R_WS, false, SERVE_ROLE_VIEWER },
	{ "/mcp", R_MCP, true, SERVE_ROLE_OPERATOR }, /* POST; GET and DELETE too (mcp-http.c) */
	{ "/api/power", R_POWER, false,
	  SERVE_ROLE_VIEWER }, /* GET; POST: operator (power-route.c) */
	{ "/api/media", R_MEDIA, false,
	  SERVE_ROLE_VIEWER }, /* GET; POST: operator (media-route.c) */
	/* GET; POST, DELETE: operator (record-route.c) */
	{ "/api/record", R_RECORD, false, SERVE_ROLE_VIEWER },
	{ "/api/recordings", R_RECORDINGS, false, SERVE_ROLE_VIEWER },
	{ "/api/recordings/", R_RECORDING, false, SERVE_ROLE_VIEWER }, /* + NAME */
};

static const char *
status_text(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return "Error";
	}
}

static void
reset_response(struct conn *c)
{
	auth_detach(c);
	ocr_route_detach(c);
	free(c->http.resp);
	free(c->http.body_mem);
	free(c->http.body);
	if (c->http.body_frame)
		c->s->be.ops->frame_unref(c->s->be.ud, c->http.body_frame);
	if (c->http.body_map)
		munmap(c->http.body_map, c->http.body_map_len);
	c->http.body_map = NULL;
	c->http.resp = NULL;
	c->http.body_mem = NULL;
	c->http.body = NULL;
	c->http.body_frame = NULL;
	c->http.body_ptr = NULL;
	c->http.resp_len = c->http.resp_off = c->http.body_size = c->http.body_off =
		c->http.body_len = 0;
	c->http.body_expect = 0;
}

/*
 * Headers as plain HTTP/1.1 text (h2 is refused in http_on_request, so no lws framing is
 * needed); extra_headers are complete "Name: value\r\n" lines.
 */
int
http_set_headers(struct conn *c, unsigned status, const char *ctype, long long length,
		 const char *extra_headers)
{
	size_t cap = LWS_PRE + 1024 + (extra_headers ? strlen(extra_headers) : 0);
	free(c->http.resp);
	c->http.resp = xmalloc(cap);
	char *p = (char *)c->http.resp + LWS_PRE;
	int n = snprintf(p, cap - LWS_PRE,
			 "HTTP/1.1 %u %s\r\n"
			 "Content-Type: %s\r\n"
			 "Cache-Control: no-store\r\n"
			 "X-Content-Type-Options: nosniff\r\n"
			 "Referrer-Policy: no-referrer\r\n"
			 "X-Frame-Options: DENY\r\n"
			 "%s%s",
			 status, status_text(status), ctype,
			 c->s->tls ? "Strict-Transport-Security: max-age=31536000\r\n" : "",
			 extra_headers ? extra_headers : "");
	/* Every answer ends its connection (see http_on_request). */
	if (length >= 0)
		n += snprintf(p + n, cap - LWS_PRE - (size_t)n, "Content-Length: %lld\r\n", length);
	n += snprintf(p + n, cap - LWS_PRE - (size_t)n, "Connection: close\r\n\r\n");
	c->http.resp_len = (size_t)n;
	c->http.resp_off = 0;
	return 0;
}

int
http_reply(struct conn *c, unsigned status, const char *ctype, const char *body, size_t len,
	   const char *extra_headers)
{
	http_set_headers(c, status, ctype, status == 204 ? -1 : (long long)len, extra_headers);
	if (c->http.is_head || status == 204)
		len = 0; /* the headers say what a GET would get */
	free(c->http.body_mem);
	c->http.body_mem = xmalloc(len + 1);
	memcpy(c->http.body_mem, body, len);
	c->http.body_ptr = (const uint8_t *)c->http.body_mem;
	c->http.body_size = len;
	c->http.body_off = 0;
	lws_callback_on_writable(c->wsi);
	return 0;
}

int
http_reply_json(struct conn *c, unsigned status, const char *json)
{
	return http_reply(c, status, "application/json", json, strlen(json), NULL);
}

int
http_reply_object(struct conn *c, unsigned status, cJSON *o)
{
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	int rc = http_reply_json(c, status, txt);
	free(txt);
	return rc;
}

int
http_reply_error(struct conn *c, unsigned status, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", false);
	cJSON_AddStringToObject(o, "error", msg);
	return http_reply_object(c, status, o);
}

static int
reply_ok(struct conn *c, unsigned status, cJSON *extra)
{
	cJSON *o = extra ? extra : cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", true);
	return http_reply_object(c, status, o);
}

/* Map a backend error to an HTTP status and a message people can act on. */
static int
reply_backend_error(struct conn *c, int rc, const char *what)
{
	char msg[200];
	serve_error_text(msg, sizeof(msg), what, rc);
	return http_reply_error(c, serve_error_status(rc), msg);
}

const char *
serve_urlarg(struct lws *wsi, const char *name, char *buf, size_t size)
{
	/* lws_get_urlarg_by_name() copies each argument into the caller's buffer and gives up at
	 * the first one that does not fit, so a long argument hid every one after it. Each
	 * argument fits here: the whole request head is at most SERVE_MAX_HEADER bytes. */
	char frag[SERVE_MAX_HEADER];
	size_t nl = strlen(name);
	for (int i = 0;
	     lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0; i++) {
		if (strncmp(frag, name, nl))
			continue;
		size_t vl = strlen(frag + nl);
		if (vl >= size)
			snprintf(buf, size, "%s", SERVE_URLARG_TOO_LONG);
		else
			memcpy(buf, frag + nl, vl + 1);
		return buf;
	}
	return NULL;
}

static const char *
urlarg(struct conn *c, const char *name, char *buf, int n)
{
	return serve_urlarg(c->wsi, name, buf, (size_t)n);
}

/* ---- handlers ---- */

static int
do_asset(struct conn *c, const char *path)
{
	const struct web_asset *a = web_asset_find(path);
	if (!a)
		return http_reply_error(c, 404, "not found");
	return http_reply(c, 200, a->type, (const char *)a->data, a->size, NULL);
}

/* Browsers ask for it on every page: the page's own icon if web/ has one, else "none" (204)
 * rather than a 404 in every console. */
static int
do_favicon(struct conn *c)
{
	if (web_asset_find("/favicon.ico"))
		return do_asset(c, "/favicon.ico");
	return http_reply(c, 204, "image/x-icon", "", 0, NULL);
}

static int
reply_state(struct conn *c)
{
	char *json = ws_state_json(c->s, c);
	int rc = http_reply_json(c, 200, json);
	free(json);
	return rc;
}

#define STATE_FRESH_US 2000000 /* a frame this recent: the video state is known */
#define STATE_WAIT_US 1500000  /* longer without a frame: no signal (capture says so after 1 s) */

static void
state_unwait(struct conn *c)
{
	if (!c->http.state_wait)
		return;
	c->http.state_wait = false;
	serve_list_del(&c->s->state_waiters, c);
	c->s->nstate_waiters--;
	lws_set_timer_usecs(c->wsi, -1);
	serve_update_want(c->s);
}

/*
 * The video's signal and size are the capture's, which runs only while somebody watches. With
 * nobody watching and no recent frame, capture starts and the answer waits for a frame (or
 * STATE_WAIT_US), so a script sees what the unit sees without opening /stream.
 */
static int
do_state(struct conn *c)
{
	struct serve *s = c->s;
	struct serve_state st = { 0 };
	s->be.ops->get_state(s->be.ud, &st);
	uint64_t last = atomic_load(&s->frame_ready_us);
	if (!st.has_video || s->wanting || (last && serve_now_us() - last < STATE_FRESH_US))
		return reply_state(c);
	c->http.state_wait = true;
	serve_list_add(&s->state_waiters, c);
	s->nstate_waiters++;
	serve_update_want(s);
	lws_set_timer_usecs(c->wsi, STATE_WAIT_US);
	return 0;
}

void
http_state_frame(struct serve *s)
{
	while (s->state_waiters) {
		struct conn *c = s->state_waiters;
		state_unwait(c);
		reply_state(c);
	}
}

int
http_state_timer(struct conn *c)
{
	if (!c->http.state_wait)
		return 0;
	state_unwait(c);
	return reply_state(c);
}

/* GET /api/layouts: xkb-data's layouts and variants, as `okvm layouts --json` lists them. */
static int
do_layouts(struct conn *c)
{
	struct okvm_layout_info *l;
	int n = okvm_layouts_list(&l);
	if (n < 0)
		return http_reply_error(c, 503,
					"layouts: cannot read the XKB layout list (is xkb-data "
					"installed?)");
	cJSON *arr = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		cJSON *o = layout_json(&l[i]);
		if (o)
			cJSON_AddItemToArray(arr, o);
	}
	free(l);
	return http_reply_object(c, 200, arr);
}

static int
do_metrics(struct conn *c)
{
	char *txt = metrics_text(c->s);
	int rc = http_reply(c, 200, "text/plain; version=0.0.4", txt, strlen(txt), NULL);
	free(txt);
	return rc;
}

/* One field of an application/x-www-form-urlencoded body, by exact name, decoded.
 * Returns 1, 0 (no such field) or -1 (longer than n - 1). */
static int
form_field(const char *body, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	for (const char *p = body; *p;) {
		const char *end = p + strcspn(p, "&");
		if ((size_t)(end - p) > nl && !strncmp(p, name, nl) && p[nl] == '=') {
			size_t vl = (size_t)(end - p) - nl - 1;
			if (vl >= n)
				return -1;
			memcpy(out, p + nl + 1, vl);
			out[vl] = 0;
			for (char *q = out; *q; q++)
				if (*q == '+')
					*q = ' ';
			lws_urldecode(out, out, (int)n);
			return 1;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

static int
do_login(struct conn *c)
{
	char pw[1100] = "", user[40] = "", code[16] = "";
	const char *body = c->http.body ? c->http.body : "";
	/* A form (password=...&user=...&totp=...) or the bare password (the user "admin"). */
	if (strchr(body, '=')) {
		if (form_field(body, "password", pw, sizeof(pw)) != 1)
			return http_reply_error(c, 400, "login: send password=... (a form)");
		int u = form_field(body, "user", user, sizeof(user));
		if (u < 0)
			snprintf(user, sizeof(user),
				 "?"); /* too long for any user: no admin default */
		else if (u == 0)
			user[0] = 0;
		if (form_field(body, "totp", code, sizeof(code)) != 1)
			code[0] = 0;
	} else if (strlen(body) < sizeof(pw)) {
		snprintf(pw, sizeof(pw), "%s", body);
	}
	int rc = auth_login_start(c->s, c, user, pw, code[0] ? code : NULL);
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(code, sizeof(code));
	return rc ? http_login_reply(c, rc, NULL) : 0; /* 0: the answer comes from auth_drain */
}

int
http_login_reply(struct conn *c, int rc, const char *cookie)
{
	if (rc == -EAGAIN) {
		char hdr[64], msg[96];
		int after = auth_login_retry_after(c->s, c->peer);
		if (after < 1)
			after = 1;
		snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", after);
		snprintf(msg, sizeof(msg),
			 "{\"ok\":false,\"error\":\"too many attempts; retry in %d s\"}", after);
		return http_reply(c, 429, "application/json", msg, strlen(msg), hdr);
	}
	if (rc == -EPERM)
		return http_reply_error(c, 403, "wrong user name, password or code");
	if (rc == -EBUSY) {
		const char *m = "{\"ok\":false,\"error\":\"busy checking other logins; retry\"}";
		return http_reply(c, 503, "application/json", m, strlen(m), "Retry-After: 1\r\n");
	}
	if (rc == -ENOKEY) {
		const char *m = "{\"ok\":false,\"error\":\"enter the 6-digit code of your "
				"authenticator app\",\"totp\":true}";
		return http_reply(c, 401, "application/json", m, strlen(m), NULL);
	}
	if (rc)
		return http_reply_error(c, 400, "login is not enabled (no password configured)");
	char hdr[320];
	snprintf(hdr, sizeof(hdr), "Set-Cookie: %s\r\n", cookie);
	const char *ok = "{\"ok\":true}";
	return http_reply(c, 200, "application/json", ok, strlen(ok), hdr);
}

static int
do_logout(struct conn *c)
{
	if (c->session_id)
		audit(c, "logout");
	auth_logout(c->s, c->wsi);
	const char *hdr =
		"Set-Cookie: okvm_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict\r\n";
	const char *ok = "{\"ok\":true}";
	return http_reply(c, 200, "application/json", ok, strlen(ok), hdr);
}

static int
do_type(struct conn *c)
{
	char lbuf[96], rbuf[32];
	const char *layout = urlarg(c, "layout=", lbuf, sizeof(lbuf));
	const char *rate = urlarg(c, "cps=", rbuf, sizeof(rbuf));
	char *end = NULL;
	double cps = rate ? strtod(rate, &end) : 0;
	if (!c->http.body_len)
		return http_reply_error(c, 400, "type: the body is the text to type");
	if (rate && (!*rate || *end || !isfinite(cps) || cps < 0 || cps > 10000))
		return http_reply_error(c, 400,
					"type: ?cps= must be a number from 0 to 10000 (characters "
					"per second; 0: the server's rate)");
	char why[256];
	if (input_check_type(c->s, c->http.body, c->http.body_len, layout, why, sizeof(why)))
		return http_reply_error(c, 400, why);
	int rc = input_type(c->s, c->http.body, c->http.body_len, layout, cps);
	if (rc)
		return reply_backend_error(c, rc, "type");
	audit(c, "paste bytes=%zu", c->http.body_len);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "bytes", (double)c->http.body_len);
	return reply_ok(c, 202, o);
}

static int
do_key(struct conn *c)
{
	char buf[256];
	const char *combo = urlarg(c, "combo=", buf, sizeof(buf));
	if (!combo || !*combo)
		return http_reply_error(c, 400, "key: ?combo= is required, e.g. ctrl+alt+delete");
	/* An unencoded '+' in a query string arrives as a space. */
	for (char *p = buf; *p; p++)
		if (*p == ' ')
			*p = '+';
	char why[256];
	if (input_check_combo(combo, why, sizeof(why)))
		return http_reply_error(c, 400, why);
	int rc = c->s->be.ops->combo(c->s->be.ud, combo);
	return rc ? reply_backend_error(c, rc, "key") : reply_ok(c, 200, NULL);
}

static int
do_switch(struct conn *c)
{
	char buf[32];
	const char *to = urlarg(c, "to=", buf, sizeof(buf));
	enum okvm_usb_dir dir;
	if (serve_usb_parse(to, &dir) < 0)
		return http_reply_error(c, 400, "switch: ?to=host or ?to=target");
	int rc = c->s->be.ops->usb_switch(c->s->be.ud, dir);
	if (!rc)
		audit(c, "switch to=%s", to);
	return rc ? reply_backend_error(c, rc, "switch") : reply_ok(c, 200, NULL);
}

static int
do_release(struct conn *c)
{
	int rc = c->s->be.ops->release_all(c->s->be.ud);
	return rc ? reply_backend_error(c, rc, "release") : reply_ok(c, 200, NULL);
}

/* POST /api/mouse: the body is one WebSocket-style message: mouse, wheel or rel (default mouse),
 * validated and applied by input.c as a WebSocket message is. */
static int
do_mouse(struct conn *c)
{
	cJSON *o = cJSON_ParseWithLength(c->http.body ? c->http.body : "", c->http.body_len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return http_reply_error(c, 400, "mouse: the body must be a JSON object");
	}
	if (!cJSON_GetObjectItemCaseSensitive(o, "type"))
		cJSON_AddStringToObject(o, "type", "mouse");
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
	if (!type || (strcmp(type, "mouse") && strcmp(type, "wheel") && strcmp(type, "rel"))) {
		cJSON_Delete(o);
		return http_reply_error(c, 400, "mouse: type must be mouse, wheel or rel");
	}
	/* REST clicks are not tracked per client: the caller sends buttons 0 itself. */
	struct input_src in = { .s = c->s, .role = c->role };
	int rc = input_apply(&in, o);
	cJSON_Delete(o);
	if (rc)
		return http_reply_error(c,
					rc == -EPERM ? 403
					: in.rc      ? serve_error_status(in.rc)
						     : 400,
					in.err);
	return reply_ok(c, 200, NULL);
}

static int
dispatch(struct conn *c)
{
	c->http.dispatched = true;
	guard_received(c->s, c->wsi);
	switch (c->http.route) {
	case R_INDEX: return do_asset(c, "/index.html");
	case R_LOGIN_PAGE: return do_asset(c, "/login.html");
	case R_FAVICON: return do_favicon(c);
	case R_STATE: return do_state(c);
	case R_LAYOUTS: return do_layouts(c);
	case R_OCR: return ocr_route_begin(c);
	case R_METRICS: return do_metrics(c);
	case R_LOGIN: return do_login(c);
	case R_LOGOUT: return do_logout(c);
	case R_TYPE: return do_type(c);
	case R_KEY: return do_key(c);
	case R_MOUSE: return do_mouse(c);
	case R_SWITCH: return do_switch(c);
	case R_RELEASE: return do_release(c);
	case R_WS: return http_reply_error(c, 400, "/api/ws is a WebSocket endpoint");
	case R_MCP: return mcp_http_request(c);
	case R_POWER: return serve_power_route(c);
	case R_RECORD: return serve_record_route(c);
	case R_RECORDINGS: return serve_recordings_list(c);
	default: return http_reply_error(c, 404, "not found");
	}
}

/* ---- request flow ---- */

static const struct route_def *
find_route(struct conn *c, const char *uri)
{
	char buf[64];
	if (!strcmp(uri, "/")) {
		const char *action = urlarg(c, "action=", buf, sizeof(buf));
		if (action && !strcmp(action, "stream"))
			uri = "/stream";
		else if (action && !strcmp(action, "snapshot"))
			uri = "/snapshot";
	}
	if (!strncmp(uri, "/api/recordings/", 16))
		uri = "/api/recordings/"; /* + NAME (record-route.c) */
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(routes[i].path, uri))
			return &routes[i];
	return NULL;
}

static bool
method_is(struct lws *wsi, enum lws_token_indexes t)
{
	return lws_hdr_total_length(wsi, t) > 0;
}

static int
deny(struct conn *c)
{
	if (c->http.route == R_INDEX)
		return http_reply(c, 302, "text/plain", "", 0, "Location: /login\r\n");
	return http_reply_error(c, 401, "log in first (POST /api/login)");
}

/* Headers of a request that every route refuses; NULL if none. */
static int
check_framing(struct conn *c, const char *cl)
{
	bool te = method_is(c->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
	if (cl[0] && te) /* which one ends the body? A proxy and we may disagree: smuggling */
		return http_reply_error(c, 400,
					"send Content-Length or Transfer-Encoding, not both");
	if (cl[0] && strspn(cl, "0123456789") != strlen(cl))
		return http_reply_error(c, 400, "bad Content-Length");
	if (c->http.is_post && !cl[0] && te)
		return http_reply_error(c, 411, "send a Content-Length");
	return 0;
}

int
http_on_request(struct conn *c, const char *uri)
{
	struct serve *s = c->s;
	reset_response(c);
	c->http.dispatched = false;
	/*
	 * One request per connection. libwebsockets 4.1.6 mishandles a request with a body that
	 * was pipelined behind another one (it reports the body's end over and over and never
	 * lets the answer out: the service thread spins and the server stops answering), and a
	 * request pipelined behind a login would be parsed while its check runs. So every answer
	 * says "Connection: close" (http_set_headers) and the connection closes once it is written
	 * (http_on_writeable), so nothing behind a request is read. Browsers and scripts open a new
	 * connection, which costs a KVM nothing: its video and input have their own.
	 */
	s->http_requests++;
	if (lws_get_network_wsi(c->wsi) != c->wsi)
		return -1; /* an HTTP/2 stream: okvm speaks HTTP/1.1 only */
	c->http.is_post = method_is(c->wsi, WSI_TOKEN_POST_URI);
	c->http.is_head = !c->http.is_post && method_is(c->wsi, WSI_TOKEN_HEAD_URI);
	c->http.is_delete = (!strcmp(uri, "/mcp") || !strncmp(uri, "/api/recordings/", 16)) &&
			    method_is(c->wsi, WSI_TOKEN_DELETE_URI);
	char cl[32] = "";
	lws_hdr_copy(c->wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
	bool need = auth_required(s);
	const struct session *se = need ? auth_check_request(s, c->wsi) : NULL;
	c->authed = !need || se;
	c->role = !need ? SERVE_ROLE_ADMIN : se ? se->role : SERVE_ROLE_NONE;
	c->session_id = se ? se->id : 0;
	if (!auth_host_ok(s, c->wsi)) {
		char host[128] = "";
		lws_hdr_copy(c->wsi, host, sizeof(host), WSI_TOKEN_HOST);
		/* it goes into the log: nothing but printable ASCII */
		for (char *p = host; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
		okvm_log(OKVM_LOG_WARN, "serve: request from %s for Host '%s' refused", c->peer,
			 host);
		if (!host[0])
			return http_reply_error(c, 400, "a request needs a Host header");
		return http_reply_error(c, 403,
					"this Host is not served here: add the name to "
					"server_names in okvm.conf");
	}
	guard_request(s, c->wsi, c->authed); /* a refused Host proves nothing */
	int rc = check_framing(c, cl);
	if (rc || c->http.resp)
		return rc;
	if (!c->http.is_post && !c->http.is_head && !c->http.is_delete &&
	    !method_is(c->wsi, WSI_TOKEN_GET_URI))
		return http_reply_error(c, 405, "method not allowed");
	const struct route_def *r = find_route(c, uri);
	if (!r) {
		c->http.route = R_ASSET;
		return c->http.is_post ? http_reply_error(c, 405, "method not allowed")
				       : do_asset(c, uri);
	}
	c->http.route = (int)r->route;
	if (r->post != c->http.is_post && r->route != R_MCP && r->route != R_POWER &&
	    r->route != R_MEDIA && r->route != R_RECORD)
		return http_reply_error(c, 405, r->post ? "use POST" : "use GET");
	if (r->route == R_MCP && !c->authed && mcp_http_token_ok(s, c->wsi)) {
		c->authed = true; /* an agent's token: /mcp only */
		c->role = SERVE_ROLE_OPERATOR;
	}
	if (r->route == R_METRICS && !c->authed && auth_check_metrics_token(s, c->wsi)) {
		c->authed = true; /* for this request only: the token opens nothing else */
		c->role = SERVE_ROLE_ADMIN;
	}
	if (r->role != SERVE_ROLE_NONE && !c->authed)
		return deny(c);
	if (c->role < r->role) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%s needs the role %s (yours: %s)", r->path,
			 serve_role_name(r->role), serve_role_name(c->role));
		return http_reply_error(c, 403, msg);
	}
	if ((c->http.is_post || (c->http.is_delete && r->route == R_RECORDING)) &&
	    !auth_origin_ok(c->wsi))
		return http_reply_error(c, 403, "cross-origin request refused");
	if (c->http.is_head && (r->route == R_STREAM || r->route == R_STREAM_H264 ||
				r->route == R_SNAPSHOT || r->route == R_WS))
		return http_reply_error(c, 405, "use GET");
	if (r->route == R_RECORDING) {
		guard_received(s, c->wsi);
		c->http.dispatched = true;
		return serve_recording_file(c, uri);
	}
	if (r->route == R_STREAM_H264) {
		guard_received(s, c->wsi);
		return stream_begin_h264(c);
	}
	if (r->route == R_STREAM || r->route == R_SNAPSHOT) {
		guard_received(s, c->wsi);
		return stream_begin(c, r->route == R_SNAPSHOT);
	}
	if (r->route == R_MEDIA) { /* its body is an image, spooled as it comes */
		c->http.dispatched = !c->http.is_post;
		return media_route_request(c, cl);
	}
	if (!c->http.is_post || !cl[0])
		return dispatch(c); /* no body */
	unsigned long long n = strtoull(cl, NULL, 10);
	if (n > SERVE_MAX_BODY)
		return http_reply_error(c, 413, "body too large");
	if (n == 0)
		return dispatch(c);
	c->http.body = xmalloc(n + 1);
	c->http.body_len = 0;
	c->http.body_expect = (size_t)n;
	return 0;
}

int
http_on_body(struct conn *c, const void *in, size_t len)
{
	if (c->http.media_upload)
		return media_route_body(c, in, len);
	if (!c->http.body || c->http.resp)
		return 0; /* already answered (e.g. 413): drop the rest */
	if (c->http.body_len + len > c->http.body_expect)
		return -1;
	memcpy(c->http.body + c->http.body_len, in, len);
	c->http.body_len += len;
	return 0;
}

int
http_on_body_done(struct conn *c)
{
	/* lws reports the end of a body again on each pass while pipelined bytes wait behind it
	 * (as they do while a login is being checked): one request is handled once. */
	if (c->http.media_upload)
		return media_route_body_done(c);
	if (c->http.resp || c->http.dispatched)
		return 0;
	if (c->http.body)
		c->http.body[c->http.body_len] = 0;
	return dispatch(c);
}

int
http_on_writeable(struct conn *c)
{
	if (!c->http.resp)
		return 0;
	struct lws *wsi = c->wsi;
	while (c->http.resp_off < c->http.resp_len) {
		size_t n = c->http.resp_len - c->http.resp_off;
		bool last = !c->http.body_size;
		if (lws_write(wsi, c->http.resp + LWS_PRE + c->http.resp_off, n,
			      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
			return -1;
		c->http.resp_off += n;
		if (lws_send_pipe_choked(wsi)) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	while (c->http.body_off < c->http.body_size) {
		size_t n = c->http.body_size - c->http.body_off;
		if (n > SERVE_CHUNK)
			n = SERVE_CHUNK;
		bool last = c->http.body_off + n == c->http.body_size;
		if (lws_write(wsi, (unsigned char *)c->http.body_ptr + c->http.body_off, n,
			      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
			return -1;
		c->http.body_off += n;
		if (!last && lws_send_pipe_choked(wsi)) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	reset_response(c);
	return -1; /* every answer ends its connection: see http_on_request */
}

void
http_on_closed(struct conn *c)
{
	mcp_http_closed(c);
	media_route_closed(c);
	state_unwait(c);
	reset_response(c);
}
