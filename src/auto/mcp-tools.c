/*
 * DESIGN: the MCP server's tools (docs/automation.md, "MCP"). The names and arguments of the
 * official Qt app's MCP server (mouse_*, keyboard_*, capture_*, execute_script,
 * validate_script, system_status, usb_switch), and okvm's own: screen_text (OCR with boxes),
 * wait_for_text, wait_for_screen_change and key_combo (okvm's combo names).
 *
 * Each tool checks all of its arguments before it sends anything, and answers a failure as a
 * result with isError: true and one line saying what was wrong and what to do. Everything goes
 * through the serve backend's operations (src/serve/backend.h), so `okvm mcp` and POST /mcp of
 * `okvm serve` drive the unit alike.
 *
 * Coordinates: x, y are pixels of the full captured frame (as capture_screen shows it without
 * max_width, and as screen_text's boxes are); fx, fy are fractions 0..1 of it. A tool takes
 * either pair. Screen-reading tools hold want_frames(true) while they run.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auto/console.h"
#include "auto/mcp-internal.h"
#include "auto/ocr.h"
#include "auto/script.h"
#include "auto/wait.h"
#include "okvm/error.h"
#include "okvm/keymap.h"
#include "okvm/video.h"
#include "serve/backend.h"
#include "lib/xalloc.h"

#define FRAME_WAIT_MS 3000     /* for a frame newer than the call */
#define TYPE_WAIT_EXTRA_S 30.0 /* typing: beyond the time its speed asks */
#define MAX_TIMEOUT_S 3600.0

struct call {
	struct mcp *m;
	const struct serve_backend *b;
	const cJSON *args;
	const atomic_bool *cancel;
	char err[512]; /* a bad argument, set by the arg_* helpers */
};

/* ---- results ---- */

static cJSON *
text_content(const char *txt)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", "text");
	cJSON_AddStringToObject(c, "text", txt);
	return c;
}

static cJSON *
result_of(cJSON *content, bool is_error)
{
	cJSON *r = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(r, "content");
	if (content)
		cJSON_AddItemToArray(arr, content);
	cJSON_AddBoolToObject(r, "isError", is_error);
	return r;
}

static cJSON *
vresult(bool is_error, const char *fmt, va_list ap)
{
	char *txt = NULL;
	if (vasprintf(&txt, fmt, ap) < 0)
		abort();
	cJSON *r = result_of(text_content(txt), is_error);
	free(txt);
	return r;
}

__attribute__((format(printf, 1, 2))) static cJSON *
ok(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cJSON *r = vresult(false, fmt, ap);
	va_end(ap);
	return r;
}

__attribute__((format(printf, 1, 2))) static cJSON *
fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cJSON *r = vresult(true, fmt, ap);
	va_end(ap);
	return r;
}

/* A backend error rc of what, as a line a model can act on. */
static cJSON *
fail_rc(const char *what, int rc)
{
	switch (rc) {
	case -OKVM_E_VIDEO_ONLY:
		return fail("%s: this unit has video only (no keyboard/mouse link)", what);
	case -EBUSY: return fail("%s: the unit is busy typing; try again when it is done", what);
	case -ENODEV: return fail("%s: the unit is unplugged; plug it in and try again", what);
	case -EOPNOTSUPP: return fail("%s: this unit cannot do that", what);
	case -ECANCELED: return fail("%s: cancelled", what);
	case -ETIMEDOUT: return fail("%s: timed out", what);
	default: return fail("%s: %s", what, okvm_strerror(rc));
	}
}

/* ---- arguments ---- */

static const cJSON *
arg(struct call *c, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->args, name);
	return cJSON_IsNull(v) ? NULL : v;
}

__attribute__((format(printf, 2, 3))) static bool
bad(struct call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return false;
}

/* A number in [lo, hi] (integral if want_int); dflt when absent (required: an error). */
static bool
arg_num(struct call *c, const char *name, bool required, bool want_int, double lo, double hi,
	double dflt, double *out)
{
	const cJSON *v = arg(c, name);
	if (!v) {
		*out = dflt;
		return required ? bad(c, "missing argument '%s'", name) : true;
	}
	if (!cJSON_IsNumber(v))
		return bad(c, "argument '%s' must be a number", name);
	double d = v->valuedouble;
	if (!isfinite(d) || (want_int && d != floor(d)))
		return bad(c, "argument '%s' must be %s", name, want_int ? "an integer" : "finite");
	if (d < lo || d > hi)
		return bad(c, "argument '%s' is %g: want %g to %g", name, d, lo, hi);
	*out = d;
	return true;
}

static bool
arg_int(struct call *c, const char *name, bool required, int lo, int hi, int dflt, int *out)
{
	double d = 0; /* set by arg_num when it returns true (-O3 cannot tell) */
	if (!arg_num(c, name, required, true, lo, hi, dflt, &d))
		return false;
	*out = (int)d;
	return true;
}

static bool
arg_str(struct call *c, const char *name, bool required, const char *dflt, const char **out)
{
	const cJSON *v = arg(c, name);
	*out = dflt;
	if (!v)
		return required ? bad(c, "missing argument '%s'", name) : true;
	if (!cJSON_IsString(v))
		return bad(c, "argument '%s' must be a string", name);
	*out = v->valuestring;
	return true;
}

static bool
arg_bool(struct call *c, const char *name, bool dflt, bool *out)
{
	const cJSON *v = arg(c, name);
	*out = dflt;
	if (!v)
		return true;
	if (!cJSON_IsBool(v))
		return bad(c, "argument '%s' must be true or false", name);
	*out = cJSON_IsTrue(v);
	return true;
}

/* One of a list of words (NULL-terminated); its index. */
static bool
arg_enum(struct call *c, const char *name, bool required, const char *const *words, int dflt,
	 int *out)
{
	const char *s;
	*out = dflt;
	if (!arg_str(c, name, required, NULL, &s))
		return false;
	if (!s)
		return true;
	for (int i = 0; words[i]; i++)
		if (!strcasecmp(s, words[i])) {
			*out = i;
			return true;
		}
	char list[160] = "";
	for (int i = 0; words[i]; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 words[i]);
	return bad(c, "argument '%s' is '%.40s': want one of %s", name, s, list);
}

/* ---- frames ---- */

static void
sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static bool
cancelled(const struct call *c)
{
	return c->cancel && atomic_load(c->cancel);
}

/* A frame captured after the call began (capture may just have started), or after
 * FRAME_WAIT_MS the newest there is (NULL: none). The caller holds want_frames(true). */
static struct okvm_frame *
fresh_frame(struct call *c)
{
	const struct serve_backend *b = c->b;
	struct okvm_frame *f = b->ops->newest_frame(b->ud);
	uint64_t seq0 = f ? f->seq : 0;
	for (int waited = 0; waited < FRAME_WAIT_MS && !cancelled(c); waited += 10) {
		sleep_ms(10);
		struct okvm_frame *g = b->ops->newest_frame(b->ud);
		if (g && g->seq > seq0) {
			if (f)
				b->ops->frame_unref(b->ud, f);
			return g;
		}
		if (!f)
			f = g, seq0 = g ? g->seq : 0;
		else if (g)
			b->ops->frame_unref(b->ud, g);
	}
	return f;
}

static void
want(struct call *c, bool on)
{
	if (c->b->ops->want_frames)
		c->b->ops->want_frames(c->b->ud, on);
}

/* The frame's size for pixel coordinates: the state's, else a frame's. */
static bool
frame_size(struct call *c, int *w, int *h)
{
	struct serve_state st;
	c->b->ops->get_state(c->b->ud, &st);
	if (!st.has_video)
		return bad(c,
			   "this unit has no video: give fx, fy (fractions 0..1) instead of x, y");
	if (st.width > 0 && st.height > 0) {
		*w = st.width, *h = st.height;
		return true;
	}
	want(c, true);
	struct okvm_frame *f = fresh_frame(c);
	want(c, false);
	if (!f)
		return bad(c, "no video frame yet to measure pixels in: give fx, fy (fractions "
			      "0..1) instead of x, y");
	*w = f->width, *h = f->height;
	c->b->ops->frame_unref(c->b->ud, f);
	return true;
}

/* x, y (pixels of the frame) or fx, fy (fractions). *have false: neither was given. */
static bool
arg_pos(struct call *c, bool required, double *fx, double *fy, bool *have)
{
	bool px = arg(c, "x") || arg(c, "y"), fr = arg(c, "fx") || arg(c, "fy");
	*have = px || fr;
	if (px && fr)
		return bad(c, "give x, y (pixels) or fx, fy (fractions), not both");
	if (!*have)
		return required ? bad(c, "missing arguments: x, y (pixels of the captured frame) "
					 "or fx, fy (fractions 0..1)")
				: true;
	if (fr)
		return arg_num(c, "fx", true, false, 0, 1, 0, fx) &&
		       arg_num(c, "fy", true, false, 0, 1, 0, fy);
	double x, y;
	if (!arg_num(c, "x", true, false, -1e9, 1e9, 0, &x) ||
	    !arg_num(c, "y", true, false, -1e9, 1e9, 0, &y))
		return false;
	int w = 0, h = 0;
	if (!frame_size(c, &w, &h))
		return false;
	if (x < 0 || y < 0 || x >= w || y >= h)
		return bad(c,
			   "(%g, %g) is off the screen: the frame is %dx%d pixels (x 0..%d, y "
			   "0..%d)",
			   x, y, w, h, w - 1, h - 1);
	*fx = x / w;
	*fy = y / h;
	return true;
}

/* region: {x, y, w, h} in pixels of the frame. */
static bool
arg_region(struct call *c, struct auto_rect *r, bool *have)
{
	const cJSON *v = arg(c, "region");
	*have = v != NULL;
	if (!v)
		return true;
	if (!cJSON_IsObject(v))
		return bad(c, "argument 'region' must be an object {x, y, w, h} (pixels)");
	int *f[4] = { &r->x, &r->y, &r->w, &r->h };
	const char *n[4] = { "x", "y", "w", "h" };
	for (int i = 0; i < 4; i++) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(v, n[i]);
		if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
		    e->valuedouble < (i < 2 ? 0 : 1) || e->valuedouble > 100000)
			return bad(c, "region.%s must be an integer %s", n[i],
				   i < 2 ? ">= 0" : ">= 1");
		*f[i] = (int)e->valuedouble;
	}
	return true;
}

#define CHECK(expr)                                \
	do {                                       \
		if (!(expr))                       \
			return fail("%s", c->err); \
	} while (0)

/* ---- mouse ---- */

static const char *const buttons_words[] = { "left", "right", "middle", NULL };

static cJSON *
t_mouse_move_absolute(struct call *c)
{
	double fx, fy;
	bool have;
	CHECK(arg_pos(c, true, &fx, &fy, &have));
	int rc = c->b->ops->mouse_abs(c->b->ud, fx, fy, 0);
	if (rc)
		return fail_rc("mouse_move_absolute", rc);
	return ok("Mouse moved to (%.4f, %.4f) of the screen", fx, fy);
}

static cJSON *
t_mouse_click(struct call *c)
{
	double fx = 0, fy = 0;
	bool have;
	int button, count;
	CHECK(arg_pos(c, false, &fx, &fy, &have));
	CHECK(arg_enum(c, "button", false, buttons_words, 0, &button));
	CHECK(arg_int(c, "count", false, 1, 10, 1, &count));
	uint8_t bits = (uint8_t)(1u << button);
	const struct serve_backend *b = c->b;
	int rc = have ? b->ops->mouse_abs(b->ud, fx, fy, 0) : 0;
	for (int i = 0; i < count && !rc; i++) {
		if (i)
			sleep_ms(80); /* between the clicks of a double click, as the Qt app */
		rc = have ? b->ops->mouse_abs(b->ud, fx, fy, bits) : b->ops->buttons(b->ud, bits);
		if (!rc) {
			sleep_ms(20);
			rc = have ? b->ops->mouse_abs(b->ud, fx, fy, 0) : b->ops->buttons(b->ud, 0);
		}
	}
	if (rc) {
		b->ops->buttons(b->ud, 0);
		return fail_rc("mouse_click", rc);
	}
	if (!have)
		return ok("Mouse %d-click (%s) where the pointer is", count, buttons_words[button]);
	return ok("Mouse %d-click (%s) at (%.4f, %.4f) of the screen", count, buttons_words[button],
		  fx, fy);
}

static cJSON *
t_mouse_move_relative(struct call *c)
{
	int dx, dy;
	CHECK(arg_int(c, "dx", true, -32767, 32767, 0, &dx));
	CHECK(arg_int(c, "dy", true, -32767, 32767, 0, &dy));
	int rc = c->b->ops->rel(c->b->ud, dx, dy, 0);
	if (rc)
		return fail_rc("mouse_move_relative", rc);
	return ok("Mouse moved relative by (%d, %d)", dx, dy);
}

static cJSON *
t_mouse_scroll(struct call *c)
{
	static const char *const dirs[] = { "up", "down", NULL };
	int dir, lines;
	CHECK(arg_enum(c, "direction", true, dirs, 0, &dir));
	CHECK(arg_int(c, "lines", false, 1, 127, 1, &lines));
	int rc = c->b->ops->wheel(c->b->ud, dir ? lines : -lines, 0);
	if (rc)
		return fail_rc("mouse_scroll", rc);
	return ok("Scrolled %s %d lines", dirs[dir], lines);
}

/* ---- keyboard ---- */

/* Qt::Key values (facts of Qt's qnamespace.h) -> KeyboardEvent.code. */
static const struct {
	int qt;
	const char *code;
} qt_keys[] = {
	{ 0x01000000, "Escape" },
	{ 0x01000001, "Tab" },
	{ 0x01000002, "Tab" },
	{ 0x01000003, "Backspace" },
	{ 0x01000004, "Enter" },
	{ 0x01000005, "NumpadEnter" },
	{ 0x01000006, "Insert" },
	{ 0x01000007, "Delete" },
	{ 0x01000008, "Pause" },
	{ 0x01000009, "PrintScreen" },
	{ 0x0100000a, "PrintScreen" },
	{ 0x01000010, "Home" },
	{ 0x01000011, "End" },
	{ 0x01000012, "ArrowLeft" },
	{ 0x01000013, "ArrowUp" },
	{ 0x01000014, "ArrowRight" },
	{ 0x01000015, "ArrowDown" },
	{ 0x01000016, "PageUp" },
	{ 0x01000017, "PageDown" },
	{ 0x01000020, "ShiftLeft" },
	{ 0x01000021, "ControlLeft" },
	{ 0x01000022, "MetaLeft" },
	{ 0x01000023, "AltLeft" },
	{ 0x01001103, "AltRight" },
	{ 0x01000024, "CapsLock" },
	{ 0x01000025, "NumLock" },
	{ 0x01000026, "ScrollLock" },
	{ 0x01000055, "ContextMenu" },
	{ 0x20, "Space" },
};

/* US positions of the printable ASCII punctuation: unshifted, then shifted. */
static const char us_plain[] = "`-=[]\\;',./";
static const char us_shift[] = "~_+{}|:\"<>?";
static const char *const us_codes[] = { "Backquote",    "Minus",     "Equal",     "BracketLeft",
					"BracketRight", "Backslash", "Semicolon", "Quote",
					"Comma",        "Period",    "Slash" };
static const char digits_shift[] = ")!@#$%^&*(";

/* A Qt key code as a KeyboardEvent.code in buf; *shift: the character needs Shift. */
static bool
qt_key_code(int qt, char *buf, size_t n, bool *shift)
{
	*shift = false;
	for (size_t i = 0; i < sizeof(qt_keys) / sizeof(qt_keys[0]); i++)
		if (qt_keys[i].qt == qt) {
			snprintf(buf, n, "%s", qt_keys[i].code);
			return true;
		}
	if (qt >= 0x01000030 && qt <= 0x01000047) { /* F1..F24 */
		snprintf(buf, n, "F%d", qt - 0x01000030 + 1);
		return true;
	}
	if (qt >= 'A' && qt <= 'Z') {
		snprintf(buf, n, "Key%c", qt);
		return true;
	}
	if (qt >= 'a' && qt <= 'z') {
		snprintf(buf, n, "Key%c", qt - 'a' + 'A');
		return true;
	}
	if (qt >= '0' && qt <= '9') {
		snprintf(buf, n, "Digit%c", qt);
		return true;
	}
	const char *p;
	if (qt > 0 && qt < 0x7f && (p = strchr(digits_shift, qt))) {
		snprintf(buf, n, "Digit%d", (int)(p - digits_shift));
		*shift = true;
		return true;
	}
	if (qt > 0 && qt < 0x7f && (p = strchr(us_plain, qt))) {
		snprintf(buf, n, "%s", us_codes[p - us_plain]);
		return true;
	}
	if (qt > 0 && qt < 0x7f && (p = strchr(us_shift, qt))) {
		snprintf(buf, n, "%s", us_codes[p - us_shift]);
		*shift = true;
		return true;
	}
	return false;
}

/* A key name (okvm's, as in key_combo, or a KeyboardEvent.code) as a KeyboardEvent.code. */
static bool
name_code(const char *name, char *buf, size_t n)
{
	struct okvm_key k, e;
	if (!okvm_key_from_code(name, &k)) {
		snprintf(buf, n, "%s", name);
		return true;
	}
	if (okvm_key_lookup(name, &k))
		return false;
	const char *code, *names;
	for (size_t i = 0; okvm_key_table_get(i, &code, &names, &e); i++)
		if (code && e.kind == k.kind && e.usage == k.usage &&
		    !memcmp(e.media_bit, k.media_bit, sizeof(e.media_bit))) {
			snprintf(buf, n, "%s", code);
			return true;
		}
	return false;
}

static cJSON *
t_keyboard_press_key(struct call *c)
{
	static const char *const sides[] = { "left", "right", NULL };
	const cJSON *k = arg(c, "key");
	int mods, side;
	bool down, autorelease;
	CHECK(arg_int(c, "modifiers", false, 0, 15, 0, &mods));
	CHECK(arg_bool(c, "isKeyDown", true, &down));
	CHECK(arg_bool(c, "autoRelease", true, &autorelease));
	CHECK(arg_enum(c, "side", false, sides, 0, &side));
	char code[48];
	bool shift = false;
	if (!k)
		return fail("missing argument 'key' (a Qt key code such as 65 for A, or a key name "
			    "such as \"enter\" or \"KeyA\")");
	if (cJSON_IsNumber(k)) {
		if (k->valuedouble != floor(k->valuedouble) ||
		    !qt_key_code((int)k->valuedouble, code, sizeof(code), &shift))
			return fail("key %g is no Qt key code okvm knows (letters, digits, ASCII "
				    "punctuation, Qt::Key_Return, arrows, F1-F24, modifiers...)",
				    k->valuedouble);
	} else if (!cJSON_IsString(k) || !name_code(k->valuestring, code, sizeof(code))) {
		return fail("key %s%.40s%s is no key name (try \"enter\", \"f5\", \"KeyA\"; "
			    "key_combo takes combos)",
			    cJSON_IsString(k) ? "'" : "", cJSON_IsString(k) ? k->valuestring : "",
			    cJSON_IsString(k) ? "'" : "");
	}
	if (side == 1) { /* the right one of a modifier */
		static const char *const l[] = { "ShiftLeft", "ControlLeft", "AltLeft",
						 "MetaLeft" };
		static const char *const r[] = { "ShiftRight", "ControlRight", "AltRight",
						 "MetaRight" };
		for (int i = 0; i < 4; i++)
			if (!strcmp(code, l[i]))
				snprintf(code, sizeof(code), "%s", r[i]);
	}
	static const char *const mod_codes[] = { "ShiftLeft", "ControlLeft", "AltLeft",
						 "MetaLeft" };
	if (shift)
		mods |= 1;
	const struct serve_backend *b = c->b;
	int rc = 0;
	if (down) {
		for (int i = 0; i < 4 && !rc; i++)
			if (mods & (1 << i))
				rc = b->ops->key(b->ud, mod_codes[i], true);
		if (!rc)
			rc = b->ops->key(b->ud, code, true);
	}
	if (!rc && (!down || autorelease)) {
		if (down)
			sleep_ms(50); /* held long enough for the target to see it */
		rc = b->ops->key(b->ud, code, false);
		for (int i = 3; i >= 0 && !rc; i--)
			if (mods & (1 << i))
				rc = b->ops->key(b->ud, mod_codes[i], false);
	}
	if (rc) {
		b->ops->release_all(b->ud);
		return fail_rc("keyboard_press_key", rc);
	}
	return ok("Key %s %s (modifiers %d)", code,
		  !down         ? "released"
		  : autorelease ? "pressed and released"
				: "pressed",
		  mods);
}

struct type_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t done, total;
	int err;
	bool finished;
};

static void
on_type_progress(size_t done, size_t total, int err, void *ud)
{
	struct type_wait *w = ud;
	pthread_mutex_lock(&w->lock);
	w->done = done;
	w->total = total;
	w->err = err;
	if (err || done == total)
		w->finished = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static char *
session_layout(struct mcp *m)
{
	pthread_mutex_lock(&m->lock);
	char *l = xstrdup(m->layout);
	pthread_mutex_unlock(&m->lock);
	return l;
}

static cJSON *
t_keyboard_type_text(struct call *c)
{
	const char *text;
	double cps;
	CHECK(arg_str(c, "text", true, NULL, &text));
	CHECK(arg_num(c, "cps", false, false, 0, 10000, c->m->type_cps, &cps));
	size_t len = strlen(text);
	if (!len)
		return ok("Typed text (0 chars)");
	char *layout = session_layout(c->m);
	struct type_wait w = { .finished = false };
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	int rc = c->b->ops->type(c->b->ud, text, len, layout, cps, on_type_progress, &w);
	cJSON *r;
	if (rc == -OKVM_E_UNMAPPABLE || rc == -EINVAL) {
		r = fail("keyboard_type_text: this text cannot be typed on the layout '%s' (a "
			 "character it has no key for); nothing was sent. keyboard_set_layout sets "
			 "the target's layout",
			 layout);
	} else if (rc) {
		r = fail_rc("keyboard_type_text", rc);
	} else {
		/* Until the link has sent it all; cancelled: everything up, and wait for the
		 * typing thread to say it stopped (its callback uses w). */
		double limit_s = (cps > 0 ? (double)len / cps : (double)len / 50) +
				 TYPE_WAIT_EXTRA_S;
		struct timespec start;
		clock_gettime(CLOCK_REALTIME, &start);
		bool released = false;
		int stale = 0;
		pthread_mutex_lock(&w.lock);
		while (!w.finished) {
			struct timespec now, ts;
			clock_gettime(CLOCK_REALTIME, &now);
			double el = (double)(now.tv_sec - start.tv_sec) +
				    (double)(now.tv_nsec - start.tv_nsec) / 1e9;
			if ((cancelled(c) || el > limit_s) && !released) {
				pthread_mutex_unlock(&w.lock);
				c->b->ops->release_all(c->b->ud);
				pthread_mutex_lock(&w.lock);
				released = true;
			} else if (released && (el > limit_s + 5 || cancelled(c))) {
				/* No word from the typing thread after everything went up: the
				 * backend is going away (its callback is cleared then). */
				if (++stale > 40)
					break;
			}
			ts = now;
			ts.tv_nsec += 50000000L;
			if (ts.tv_nsec >= 1000000000L)
				ts.tv_sec++, ts.tv_nsec -= 1000000000L;
			pthread_cond_timedwait(&w.cond, &w.lock, &ts);
		}
		size_t done = w.done, total = w.total;
		int err = w.err;
		bool fin = w.finished;
		pthread_mutex_unlock(&w.lock);
		if (!fin || err)
			r = fail_rc("keyboard_type_text", fin ? err : -ETIMEDOUT);
		else
			r = ok("Typed text (%zu chars) on layout %s", total ? total : done, layout);
	}
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	free(layout);
	return r;
}

static int
serial_wait_cb(void *ud, const char *text, double timeout_s, const atomic_bool *cancel)
{
	return auto_console_wait(ud, text, timeout_s, cancel);
}

static int
serial_send_cb(void *ud, const char *bytes, size_t len)
{
	return auto_console_send(ud, bytes, len);
}

/* A script's text and its run: shared by keyboard_send_keys and execute_script. */
static cJSON *
run_script(struct call *c, const char *what, const char *text)
{
	struct auto_script *s;
	struct auto_script_error e = { 0 };
	if (auto_script_parse(text, strlen(text), &s, &e))
		return fail("%s: line %d col %d: %s (nothing was sent)", what, e.line, e.col,
			    e.msg);
	char *log = NULL;
	size_t loglen = 0;
	FILE *f = open_memstream(&log, &loglen);
	char *layout = session_layout(c->m);
	struct auto_script_env env = { .b = c->b,
				       .layout = layout,
				       .dir = c->m->dir,
				       .cancel = c->cancel,
				       .log = f };
	if (c->m->console) {
		env.serial_wait = serial_wait_cb;
		env.serial_send = serial_send_cb;
		env.serial_ud = c->m->console;
	}
	int rc = auto_script_run(s, &env, &e);
	fclose(f);
	auto_script_free(s);
	free(layout);
	cJSON *r;
	if (rc == -ETIMEDOUT)
		r = fail("%s: timed out at line %d col %d: %s\n%s", what, e.line, e.col, e.msg,
			 log);
	else if (rc)
		r = fail("%s: failed at line %d col %d: %s\n%s", what, e.line, e.col,
			 e.msg[0] ? e.msg : okvm_strerror(rc), log);
	else
		r = ok("%s: done\n%s", what, log);
	free(log);
	return r;
}

static cJSON *
t_keyboard_send_keys(struct call *c)
{
	const char *keys;
	CHECK(arg_str(c, "keys", true, NULL, &keys));
	if (!*keys)
		return fail("keyboard_send_keys: empty keystroke sequence");
	/* Send "keys", with the language's backtick escape for a quote. */
	size_t n = strlen(keys);
	char *s = xmalloc(2 * n + 16);
	char *p = s;
	memcpy(p, "Send \"", 6);
	p += 6;
	for (size_t i = 0; i < n; i++) {
		if (keys[i] == '\n' || keys[i] == '\r')
			return free(s), fail("keyboard_send_keys: use {Enter}, not a line break");
		if (keys[i] == '"')
			*p++ = '`';
		*p++ = keys[i];
	}
	memcpy(p, "\"\n", 3);
	cJSON *r = run_script(c, "keyboard_send_keys", s);
	free(s);
	return r;
}

static cJSON *
t_keyboard_function_key(struct call *c)
{
	const char *key;
	CHECK(arg_str(c, "key", true, NULL, &key));
	int n = 0;
	char tail;
	if ((key[0] != 'F' && key[0] != 'f') || sscanf(key + 1, "%d%c", &n, &tail) != 1 || n < 1 ||
	    n > 24)
		return fail("keyboard_function_key: '%.20s' is no function key: want F1 to F24",
			    key);
	char code[8];
	snprintf(code, sizeof(code), "F%d", n);
	int rc = c->b->ops->key(c->b->ud, code, true);
	if (!rc) {
		sleep_ms(20);
		rc = c->b->ops->key(c->b->ud, code, false);
	}
	if (rc) {
		c->b->ops->release_all(c->b->ud);
		return fail_rc("keyboard_function_key", rc);
	}
	return ok("Sent %s", code);
}

static cJSON *
combo(struct call *c, const char *what, const char *combo)
{
	char err[160];
	struct okvm_combo parsed;
	if (okvm_combo_parse(combo, NULL, &parsed, err, sizeof(err)))
		return fail("%s: %s (names as in `okvm key`: ctrl+alt+delete, enter, f5, "
			    "volume-up)",
			    what, err);
	int rc = c->b->ops->combo(c->b->ud, combo);
	if (rc)
		return fail_rc(what, rc);
	return ok("Sent %s", combo);
}

static cJSON *
t_keyboard_ctrl_alt_del(struct call *c)
{
	return combo(c, "keyboard_ctrl_alt_del", "ctrl+alt+delete");
}

static cJSON *
t_key_combo(struct call *c)
{
	const char *s;
	CHECK(arg_str(c, "combo", true, NULL, &s));
	return combo(c, "key_combo", s);
}

static cJSON *
t_keyboard_set_layout(struct call *c)
{
	const char *layout;
	CHECK(arg_str(c, "layout", true, NULL, &layout));
	struct okvm_keymap *km = *layout ? okvm_keymap_new(layout) : NULL;
	if (!km)
		return fail(
			"keyboard_set_layout: no XKB layout '%.40s' (`okvm layouts` lists them: "
			"us, de, fr, gb, de:nodeadkeys...)",
			layout);
	okvm_keymap_free(km);
	pthread_mutex_lock(&c->m->lock);
	free(c->m->layout);
	c->m->layout = xstrdup(layout);
	pthread_mutex_unlock(&c->m->lock);
	return ok("Keyboard layout set to: %s (keyboard_type_text and scripts type for it)",
		  layout);
}

/* ---- screen ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
base64(const unsigned char *p, size_t n)
{
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? b64[v & 63] : '=';
	}
	*o = 0;
	return out;
}

static cJSON *
image_result(const unsigned char *jpeg, size_t len, const char *note)
{
	cJSON *img = cJSON_CreateObject();
	cJSON_AddStringToObject(img, "type", "image");
	char *data = base64(jpeg, len);
	cJSON_AddStringToObject(img, "data", data);
	free(data);
	cJSON_AddStringToObject(img, "mimeType", "image/jpeg");
	cJSON *r = result_of(img, false);
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(r, "content"), text_content(note));
	return r;
}

static cJSON *
t_capture_screen(struct call *c)
{
	int quality, max_width;
	CHECK(arg_int(c, "quality", false, 1, 100, 0, &quality));
	CHECK(arg_int(c, "max_width", false, 16, 16384, 0, &max_width));
	struct serve_state st;
	c->b->ops->get_state(c->b->ud, &st);
	if (!st.has_video)
		return fail("capture_screen: this unit has no video");
	want(c, true);
	struct okvm_frame *f = fresh_frame(c);
	want(c, false);
	if (!f)
		return fail(cancelled(c) ? "capture_screen: cancelled"
					 : "capture_screen: no video frame came within 3 s");
	unsigned char *jpeg;
	size_t len;
	int w = f->width, h = f->height, fw = f->width, fh = f->height;
	bool placeholder = f->placeholder;
	int rc = 0;
	if (quality || (max_width && max_width < f->width)) {
		rc = mcp_jpeg_scale(f->data, f->size, max_width, quality ? quality : 90, &jpeg,
				    &len, &w, &h);
	} else {
		jpeg = xmalloc(f->size);
		memcpy(jpeg, f->data, f->size);
		len = f->size;
	}
	c->b->ops->frame_unref(c->b->ud, f);
	if (rc)
		return fail("capture_screen: the frame cannot be decoded: %s", okvm_strerror(rc));
	char note[256];
	snprintf(note, sizeof(note),
		 "Screen %dx%d%s, image %dx%d. Pixel coordinates (x, y) of tools are of the %dx%d "
		 "frame; fx, fy are fractions 0..1.",
		 fw, fh, placeholder ? " (no signal: okvm's placeholder picture)" : "", w, h, fw,
		 fh);
	cJSON *r = image_result(jpeg, len, note);
	pthread_mutex_lock(&c->m->lock);
	free(c->m->last_jpeg);
	c->m->last_jpeg = jpeg;
	c->m->last_len = len;
	c->m->last_w = w;
	c->m->last_h = h;
	pthread_mutex_unlock(&c->m->lock);
	return r;
}

static cJSON *
t_capture_last_image(struct call *c)
{
	pthread_mutex_lock(&c->m->lock);
	cJSON *r = NULL;
	if (c->m->last_jpeg) {
		char note[96];
		snprintf(note, sizeof(note), "The last capture_screen image, %dx%d", c->m->last_w,
			 c->m->last_h);
		r = image_result(c->m->last_jpeg, c->m->last_len, note);
	}
	pthread_mutex_unlock(&c->m->lock);
	return r ? r
		 : fail("capture_last_image: nothing captured yet in this session: call "
			"capture_screen");
}

/* The session's OCR, made on first use; called with ocr_lock held. */
static int
session_ocr(struct call *c)
{
	if (c->m->ocr)
		return 0;
	return auto_ocr_new(c->m->ocr_lang, &c->m->ocr);
}

static cJSON *
fail_ocr(const char *what, int rc, const char *lang)
{
	if (rc == -ENOENT)
		return fail("%s: the OCR language data '%s' is missing (install "
			    "tesseract-ocr-%s)",
			    what, lang, lang);
	return fail("%s: OCR cannot start: %s", what, okvm_strerror(rc));
}

static cJSON *
t_screen_text(struct call *c)
{
	struct auto_rect reg;
	bool have;
	CHECK(arg_region(c, &reg, &have));
	want(c, true);
	struct okvm_frame *f = fresh_frame(c);
	want(c, false);
	if (!f)
		return fail("screen_text: no video frame came within 3 s");
	pthread_mutex_lock(&c->m->ocr_lock);
	int rc = session_ocr(c);
	struct auto_ocr_result res = { 0 };
	if (!rc)
		rc = auto_ocr_jpeg(c->m->ocr, f->data, f->size, have ? &reg : NULL, &res);
	pthread_mutex_unlock(&c->m->ocr_lock);
	c->b->ops->frame_unref(c->b->ud, f);
	if (rc == -EINVAL && have)
		return fail("screen_text: the region is off the screen (or empty)");
	if (rc)
		return fail_ocr("screen_text", rc, c->m->ocr_lang);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "width", res.width);
	cJSON_AddNumberToObject(o, "height", res.height);
	cJSON *words = cJSON_AddArrayToObject(o, "words");
	for (size_t i = 0; i < res.n_words; i++) {
		cJSON *w = cJSON_CreateObject();
		cJSON_AddStringToObject(w, "text", res.words[i].text);
		cJSON_AddNumberToObject(w, "x", res.words[i].box.x);
		cJSON_AddNumberToObject(w, "y", res.words[i].box.y);
		cJSON_AddNumberToObject(w, "w", res.words[i].box.w);
		cJSON_AddNumberToObject(w, "h", res.words[i].box.h);
		cJSON_AddNumberToObject(w, "conf", round(res.words[i].conf * 10) / 10);
		cJSON_AddItemToArray(words, w);
	}
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cJSON *r = result_of(text_content(res.text ? res.text : ""), false);
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(r, "content"), text_content(json));
	free(json);
	auto_ocr_result_free(&res);
	return r;
}

static cJSON *
t_wait_for_text(struct call *c)
{
	const char *text;
	double timeout;
	struct auto_rect reg, where = { 0 };
	bool have;
	CHECK(arg_str(c, "text", true, NULL, &text));
	CHECK(arg_num(c, "timeout_s", false, false, 0.1, MAX_TIMEOUT_S, 30, &timeout));
	CHECK(arg_region(c, &reg, &have));
	if (!*text)
		return fail("wait_for_text: argument 'text' is empty");
	pthread_mutex_lock(&c->m->ocr_lock);
	int rc = session_ocr(c);
	if (rc) {
		pthread_mutex_unlock(&c->m->ocr_lock);
		return fail_ocr("wait_for_text", rc, c->m->ocr_lang);
	}
	want(c, true);
	rc = auto_wait_text(c->b, c->m->ocr, text, have ? &reg : NULL, (int)(timeout * 1000),
			    c->cancel, &where);
	want(c, false);
	pthread_mutex_unlock(&c->m->ocr_lock);
	if (rc == -ETIMEDOUT)
		return fail("wait_for_text: '%s' did not appear within %g s (screen_text shows "
			    "what is there)",
			    text, timeout);
	if (rc)
		return fail_rc("wait_for_text", rc);
	return ok("Found '%s' at x=%d y=%d w=%d h=%d (pixels of the frame)", text, where.x, where.y,
		  where.w, where.h);
}

#define NO_CONSOLE                                                                          \
	"this unit has no serial console for the target (wire a USB-serial adapter to the " \
	"extension pins, or name it as device in okvm.conf [power]; see okvm console)"

static cJSON *
t_serial_wait_for_text(struct call *c)
{
	const char *text;
	double timeout;
	CHECK(arg_str(c, "text", true, NULL, &text));
	CHECK(arg_num(c, "timeout_s", false, false, 0, MAX_TIMEOUT_S, 30, &timeout));
	if (!*text)
		return fail("serial_wait_for_text: argument 'text' is empty");
	if (!c->m->console)
		return fail("serial_wait_for_text: " NO_CONSOLE);
	int rc = auto_console_wait(c->m->console, text, timeout, c->cancel);
	if (rc == -ETIMEDOUT)
		return fail("serial_wait_for_text: '%s' did not appear on the serial console "
			    "within %g s",
			    text, timeout);
	if (rc == -ENODEV)
		return fail("serial_wait_for_text: the console's adapter went away");
	if (rc)
		return fail_rc("serial_wait_for_text", rc);
	return ok("Found '%s' on the serial console", text);
}

static cJSON *
t_serial_send_text(struct call *c)
{
	const char *text;
	CHECK(arg_str(c, "text", true, NULL, &text));
	if (!*text)
		return fail("serial_send_text: argument 'text' is empty");
	if (!c->m->console)
		return fail("serial_send_text: " NO_CONSOLE);
	int rc = auto_console_send(c->m->console, text, strlen(text));
	if (rc == -ENODEV)
		return fail("serial_send_text: the console's adapter went away");
	if (rc)
		return fail_rc("serial_send_text", rc);
	return ok("Sent %zu bytes to the serial console", strlen(text));
}

static cJSON *
t_wait_for_screen_change(struct call *c)
{
	double timeout = 0;
	int still = 0;
	CHECK(arg_num(c, "timeout_s", false, false, 0.1, MAX_TIMEOUT_S, 30, &timeout));
	CHECK(arg_int(c, "still_ms", false, 0, 3600000, 0, &still));
	want(c, true);
	int rc = still ? auto_wait_still(c->b, still, (int)(timeout * 1000), c->cancel)
		       : auto_wait_change(c->b, (int)(timeout * 1000), c->cancel);
	want(c, false);
	if (rc == -ETIMEDOUT && still)
		return fail("wait_for_screen_change: the screen did not stay still for %d ms "
			    "within %g s",
			    still, timeout);
	if (rc == -ETIMEDOUT)
		return fail("wait_for_screen_change: the screen did not change within %g s",
			    timeout);
	if (rc)
		return fail_rc("wait_for_screen_change", rc);
	if (still)
		return ok("The screen has been still for %d ms", still);
	return ok("The screen changed");
}

/* ---- scripts, status, USB ---- */

static cJSON *
t_execute_script(struct call *c)
{
	const char *text;
	CHECK(arg_str(c, "script", true, NULL, &text));
	return run_script(c, "execute_script", text);
}

static cJSON *
t_validate_script(struct call *c)
{
	const char *text;
	CHECK(arg_str(c, "script", true, NULL, &text));
	struct auto_script *s;
	struct auto_script_error e = { 0 };
	cJSON *o = cJSON_CreateObject();
	if (auto_script_parse(text, strlen(text), &s, &e)) {
		cJSON_AddBoolToObject(o, "valid", false);
		cJSON_AddNumberToObject(o, "line", e.line);
		cJSON_AddNumberToObject(o, "col", e.col);
		cJSON_AddStringToObject(o, "error", e.msg);
	} else {
		cJSON_AddBoolToObject(o, "valid", true);
		cJSON_AddNumberToObject(o, "statements", (double)auto_script_count(s));
		cJSON_AddStringToObject(o, "message", "Script validation successful");
		auto_script_free(s);
	}
	bool valid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "valid"));
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cJSON *r = result_of(text_content(json), !valid);
	free(json);
	return r;
}

static cJSON *
t_system_status(struct call *c)
{
	struct serve_state st;
	c->b->ops->get_state(c->b->ud, &st);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "mcp_server", "running");
	cJSON_AddStringToObject(o, "transport", c->m->transport);
	cJSON_AddStringToObject(o, "unit", st.unit);
	cJSON *serial = cJSON_AddObjectToObject(o, "serial");
	cJSON_AddBoolToObject(serial, "connected", st.has_input);
	cJSON_AddBoolToObject(serial, "target_connected", st.target_connected);
	cJSON *leds = cJSON_AddObjectToObject(o, "leds");
	cJSON_AddBoolToObject(leds, "num", st.leds & OKVM_LED_NUM);
	cJSON_AddBoolToObject(leds, "caps", st.leds & OKVM_LED_CAPS);
	cJSON_AddBoolToObject(leds, "scroll", st.leds & OKVM_LED_SCROLL);
	cJSON *cam = cJSON_AddObjectToObject(o, "camera");
	cJSON_AddBoolToObject(cam, "active", st.has_video);
	cJSON_AddBoolToObject(cam, "signal", st.signal);
	cJSON_AddBoolToObject(cam, "frame_available", st.width > 0);
	if (st.width > 0) {
		cJSON_AddNumberToObject(cam, "frame_width", st.width);
		cJSON_AddNumberToObject(cam, "frame_height", st.height);
	}
	cJSON_AddStringToObject(o, "usb",
				!st.usb_known                ? "unknown"
				: st.usb == OKVM_USB_TO_HOST ? "host"
							     : "target");
	char *layout = session_layout(c->m);
	cJSON_AddStringToObject(o, "layout", layout);
	free(layout);
	cJSON_AddNumberToObject(o, "typing_pending", (double)st.typing_pending);
	cJSON_AddBoolToObject(o, "all_ready", st.has_input && st.has_video);
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cJSON *r = ok("%s", json);
	free(json);
	return r;
}

static cJSON *
t_usb_switch(struct call *c)
{
	static const char *const to[] = { "host", "target", NULL };
	int t;
	CHECK(arg_enum(c, "target", true, to, 0, &t));
	int rc = c->b->ops->usb_switch(c->b->ud, t ? OKVM_USB_TO_TARGET : OKVM_USB_TO_HOST);
	if (rc)
		return fail_rc("usb_switch", rc);
	return ok(t ? "USB switched to the target (controlled computer)"
		    : "USB switched to the host (control computer)");
}

/* ---- the table ---- */

#define POS_PROPS                                                                                  \
	"\"x\":{\"type\":\"number\",\"description\":\"pixels of the captured frame, from the "     \
	"left\"},\"y\":{\"type\":\"number\",\"description\":\"pixels of the captured frame, from " \
	"the top\"},\"fx\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1,\"description\":"      \
	"\"fraction of the width (instead of x)\"},\"fy\":{\"type\":\"number\",\"minimum\":0,"     \
	"\"maximum\":1,\"description\":\"fraction of the height (instead of y)\"}"
#define REGION_PROP                                                                               \
	"\"region\":{\"type\":\"object\",\"description\":\"pixels of the frame (default: all of " \
	"it)\",\"properties\":{\"x\":{\"type\":\"integer\"},\"y\":{\"type\":\"integer\"},\"w\":{" \
	"\"type\":\"integer\"},\"h\":{\"type\":\"integer\"}},\"required\":[\"x\",\"y\",\"w\","    \
	"\"h\"]}"
#define NO_ARGS "{\"type\":\"object\",\"properties\":{}}"

static const struct tool {
	const char *name, *description, *schema;
	cJSON *(*fn)(struct call *c);
} tools[] = {
	{ "mouse_move_absolute",
	  "Move the mouse pointer to a point of the target's screen: x, y in pixels of the "
	  "captured frame (as capture_screen shows it at full size), or fx, fy as fractions 0..1.",
	  "{\"type\":\"object\",\"properties\":{" POS_PROPS "}}", t_mouse_move_absolute },
	{ "mouse_click",
	  "Click at a point (x, y pixels of the frame, or fx, fy fractions; none: where the "
	  "pointer is). button left/right/middle, count 1 (single) to 10 (2: double-click).",
	  "{\"type\":\"object\",\"properties\":{" POS_PROPS
	  ",\"button\":{\"type\":\"string\",\"enum\":[\"left\",\"right\",\"middle\"],\"default\":"
	  "\"left\"},\"count\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10,\"default\":1}}}",
	  t_mouse_click },
	{ "mouse_move_relative",
	  "Move the mouse relative to where it is, in mickeys: positive dx right, positive dy "
	  "down.",
	  "{\"type\":\"object\",\"properties\":{\"dx\":{\"type\":\"integer\"},\"dy\":{\"type\":"
	  "\"integer\"}},\"required\":[\"dx\",\"dy\"]}",
	  t_mouse_move_relative },
	{ "mouse_scroll", "Turn the mouse wheel up or down by a number of lines (notches).",
	  "{\"type\":\"object\",\"properties\":{\"direction\":{\"type\":\"string\",\"enum\":[\"up\","
	  "\"down\"]},\"lines\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":127,\"default\":1}},"
	  "\"required\":[\"direction\"]}",
	  t_mouse_scroll },
	{ "keyboard_press_key",
	  "Press (and by default release) one key: key is a Qt key code (65 = A, 16777220 = "
	  "Return) or a key name (\"enter\", \"f5\", \"KeyA\"); modifiers is a bitmask 1 Shift, 2 "
	  "Ctrl, 4 Alt, 8 Meta; side picks the right modifier key.",
	  "{\"type\":\"object\",\"properties\":{\"key\":{\"type\":[\"integer\",\"string\"]},"
	  "\"modifiers\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":15,\"default\":0},"
	  "\"isKeyDown\":{\"type\":\"boolean\",\"default\":true},\"autoRelease\":{\"type\":"
	  "\"boolean\",\"default\":true},\"side\":{\"type\":\"string\",\"enum\":[\"left\","
	  "\"right\"]}},\"required\":[\"key\"]}",
	  t_keyboard_press_key },
	{ "keyboard_type_text",
	  "Type text on the target with its keyboard layout (keyboard_set_layout); returns when "
	  "all of it was typed. cps: characters per second (default: as fast as the link).",
	  "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"},\"cps\":{\"type\":"
	  "\"number\",\"minimum\":0}},\"required\":[\"text\"]}",
	  t_keyboard_type_text },
	{ "keyboard_send_keys",
	  "Send keystrokes in AutoHotkey-like syntax, as the Script Tool's Send: \"Hello\", \"^c\" "
	  "(Ctrl+C), \"!{Tab}\" (Alt+Tab), \"{Enter}\", \"#r\" (Win+R).",
	  "{\"type\":\"object\",\"properties\":{\"keys\":{\"type\":\"string\"}},\"required\":["
	  "\"keys\"]}",
	  t_keyboard_send_keys },
	{ "keyboard_function_key", "Press and release a function key, F1 to F24.",
	  "{\"type\":\"object\",\"properties\":{\"key\":{\"type\":\"string\",\"description\":\"F1 "
	  "to F24\"}},\"required\":[\"key\"]}",
	  t_keyboard_function_key },
	{ "keyboard_ctrl_alt_del", "Send Ctrl+Alt+Delete.", NO_ARGS, t_keyboard_ctrl_alt_del },
	{ "keyboard_set_layout",
	  "Set the target's keyboard layout (XKB name: us, de, fr, gb, de:nodeadkeys) for "
	  "keyboard_type_text and scripts, for this session.",
	  "{\"type\":\"object\",\"properties\":{\"layout\":{\"type\":\"string\"}},\"required\":["
	  "\"layout\"]}",
	  t_keyboard_set_layout },
	{ "capture_screen",
	  "A screenshot of the target as a JPEG image. max_width scales it down (for a model's "
	  "context); quality 1-100 re-encodes it. Coordinates of other tools stay in pixels of "
	  "the full frame.",
	  "{\"type\":\"object\",\"properties\":{\"quality\":{\"type\":\"integer\",\"minimum\":1,"
	  "\"maximum\":100},\"max_width\":{\"type\":\"integer\",\"minimum\":16}}}",
	  t_capture_screen },
	{ "capture_last_image", "The last image capture_screen returned in this session, again.",
	  NO_ARGS, t_capture_last_image },
	{ "execute_script",
	  "Run a script in the Qt Script Tool's language (Send, Click, MouseMove, Sleep, "
	  "FullScreenCapture ...) with okvm's extensions (WaitText, WaitStill, Type ...). "
	  "Checked whole before anything is sent.",
	  "{\"type\":\"object\",\"properties\":{\"script\":{\"type\":\"string\"}},\"required\":["
	  "\"script\"]}",
	  t_execute_script },
	{ "validate_script",
	  "Check a script without running it: valid, or the line, column and what was expected.",
	  "{\"type\":\"object\",\"properties\":{\"script\":{\"type\":\"string\"}},\"required\":["
	  "\"script\"]}",
	  t_validate_script },
	{ "system_status",
	  "The unit: keyboard/mouse link, target connected, LEDs, video signal and size, USB "
	  "port, layout.",
	  NO_ARGS, t_system_status },
	{ "usb_switch", "Route the switchable USB port to the host or to the target.",
	  "{\"type\":\"object\",\"properties\":{\"target\":{\"type\":\"string\",\"enum\":[\"host\","
	  "\"target\"]}},\"required\":[\"target\"]}",
	  t_usb_switch },
	{ "screen_text",
	  "Read the screen's text by OCR: the text, then JSON of its words with boxes (pixels "
	  "of the frame) and confidence. region limits it to a rectangle.",
	  "{\"type\":\"object\",\"properties\":{" REGION_PROP "}}", t_screen_text },
	{ "wait_for_text",
	  "Wait until text (case-sensitive) shows on the screen (OCR), up to timeout_s (default "
	  "30); returns where it is.",
	  "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"},\"timeout_s\":{"
	  "\"type\":\"number\",\"minimum\":0.1,\"maximum\":3600,\"default\":30}," REGION_PROP
	  "},\"required\":[\"text\"]}",
	  t_wait_for_text },
	{ "serial_wait_for_text",
	  "Wait until text (case-sensitive) appears on the target's serial console, in what it "
	  "printed since the previous match (or since the session opened the console), up to "
	  "timeout_s (default 30).",
	  "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"},\"timeout_s\":{"
	  "\"type\":\"number\",\"minimum\":0,\"maximum\":3600,\"default\":30}},\"required\":["
	  "\"text\"]}",
	  t_serial_wait_for_text },
	{ "serial_send_text",
	  "Send text to the target's serial console byte for byte (Enter is \"\\r\", as a terminal "
	  "sends it).",
	  "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":["
	  "\"text\"]}",
	  t_serial_send_text },
	{ "wait_for_screen_change",
	  "Wait until the screen changes (or, with still_ms, until it has not changed for that "
	  "long), up to timeout_s (default 30).",
	  "{\"type\":\"object\",\"properties\":{\"timeout_s\":{\"type\":\"number\",\"minimum\":0.1,"
	  "\"maximum\":3600,\"default\":30},\"still_ms\":{\"type\":\"integer\",\"minimum\":0}}}",
	  t_wait_for_screen_change },
	{ "key_combo",
	  "Press and release a combo of okvm key names joined by '+': ctrl+alt+delete, alt+f4, "
	  "super, enter, shift+f10, volume-up.",
	  "{\"type\":\"object\",\"properties\":{\"combo\":{\"type\":\"string\"}},\"required\":["
	  "\"combo\"]}",
	  t_key_combo },
};

cJSON *
mcp_tools_list(void)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "name", tools[i].name);
		cJSON_AddStringToObject(t, "description", tools[i].description);
		cJSON *schema = cJSON_Parse(tools[i].schema);
		if (!schema)
			abort(); /* a typo in the table above */
		cJSON_AddItemToObject(t, "inputSchema", schema);
		cJSON_AddItemToArray(arr, t);
	}
	return arr;
}

cJSON *
mcp_tool_call(struct mcp *m, const char *name, const cJSON *args, const atomic_bool *cancel)
{
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		if (!strcmp(tools[i].name, name)) {
			struct call c = { .m = m, .b = m->b, .args = args, .cancel = cancel };
			/* cppcheck-suppress returnDanglingLifetime ; the result is a new cJSON tree */
			return tools[i].fn(&c);
		}
	return NULL;
}
