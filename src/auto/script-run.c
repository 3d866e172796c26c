/*
 * DESIGN: the runner of a parsed script (script-internal.h): each action becomes calls of the
 * serve backend (src/serve/backend.h), so `okvm script`, `okvm serve` and `okvm mcp` drive a
 * unit the same way. Characters go through the target layout's reverse map (okvm_keymap), one
 * report per key change: modifiers down, key down, key up, modifiers up. After each statement
 * the runner waits until the link has sent everything (okvm_link_pending), so Sleep and the
 * waits measure from when the target got the input, as in the Qt app, where Send blocks.
 * Qt mouse units 0..4096 map to the backend's fractions as x / 4096, which the backend turns
 * back into exactly the same chip units.
 *
 * Every exit path (the end, an error, a timeout, *cancel) calls release_all. Runs on the
 * caller's thread, which must be the only one calling the backend's operations meanwhile.
 */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <turbojpeg.h>

#include "auto/ocr.h"
#include "auto/script-internal.h"
#include "auto/wait.h"
#include "lib/xalloc.h"
#include "okvm/ch9329.h"
#include "okvm/error.h"
#include "okvm/keymap.h"
#include "okvm/link.h"
#include "okvm/video.h"
#include "serve/backend.h"

#define STALL_TIMEOUT_MS 10000
#define FRAME_WAIT_MS 5000
#define LED_WAIT_MS 1500
#define SWITCH_WAIT_MS 5000

struct runner {
	const struct auto_script_env *env;
	const struct serve_backend *b;
	FILE *log;
	struct auto_script_error *err;
	struct okvm_keymap *km;
	struct auto_ocr *ocr;
	bool own_ocr;
	int key_delay_ms;
	const struct ahk_action *a; /* the current action */
	int captures;
	/* variables ReadText set */
	char *var_name[AHK_MAX_VARS], *var_val[AHK_MAX_VARS];
	int nvars;
};

static int __attribute__((format(printf, 3, 4)))
rfail(struct runner *r, int rc, const char *fmt, ...)
{
	r->err->line = r->a ? r->a->line : 0;
	r->err->col = r->a ? r->a->col : 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err->msg, sizeof(r->err->msg), fmt, ap);
	va_end(ap);
	return rc;
}

static bool
cancelled(const struct runner *r)
{
	return r->env->cancel && atomic_load(r->env->cancel);
}

static void
nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static double
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Sleep ms, in steps, until *cancel. 0 or -ECANCELED. */
static int
pause_ms(struct runner *r, int ms)
{
	double until = mono_ms() + ms;
	for (;;) {
		if (cancelled(r))
			return -ECANCELED;
		double left = until - mono_ms();
		if (left <= 0)
			return 0;
		nap_ms(left > 10 ? 10 : (int)ceil(left));
	}
}

/* Until the link has sent everything queued; fails only when it stops making progress. */
static int
drain(struct runner *r)
{
	if (!r->b->link)
		return 0;
	size_t last = okvm_link_pending(r->b->link), now;
	double since = mono_ms();
	while ((now = okvm_link_pending(r->b->link))) {
		if (cancelled(r))
			return -ECANCELED;
		if (now < last) {
			last = now;
			since = mono_ms();
		} else if (mono_ms() - since > STALL_TIMEOUT_MS) {
			return rfail(r, -EIO,
				     "the unit took no input for %d s (%zu reports waiting)",
				     STALL_TIMEOUT_MS / 1000, now);
		}
		nap_ms(2);
	}
	return 0;
}

static int
input_error(struct runner *r, int rc)
{
	if (rc == -OKVM_E_VIDEO_ONLY || rc == -EOPNOTSUPP)
		return rfail(r, rc, "this unit has no keyboard and mouse");
	return rfail(r, rc, "%s", okvm_strerror(rc));
}

/* A backend input call, retried while the link's queue is full. */
#define INPUT(r, call)                                               \
	({                                                           \
		int rc_;                                             \
		while ((rc_ = (call)) == -EBUSY || rc_ == -EAGAIN) { \
			if (cancelled(r))                            \
				break;                               \
			nap_ms(2);                                   \
		}                                                    \
		rc_ < 0 ? input_error(r, rc_) : 0;                   \
	})

static int
key(struct runner *r, const char *code, bool down)
{
	const struct serve_backend *b = r->b;
	return INPUT(r, b->ops->key(b->ud, code, down));
}

static int
mods(struct runner *r, uint8_t m, bool down)
{
	for (int i = 0; i < 8; i++) {
		int bit = down ? i : 7 - i;
		if (m & (1u << bit)) {
			int rc = key(r, ahk_mod_code((uint8_t)(1u << bit)), down);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static uint8_t
leds_now(const struct runner *r)
{
	struct serve_state st;
	memset(&st, 0, sizeof(st));
	r->b->ops->get_state(r->b->ud, &st);
	return st.leds;
}

static int
send_char(struct runner *r, const struct ahk_action *a)
{
	struct okvm_keyseq seq;
	bool caps = leds_now(r) & OKVM_LED_CAPS;
	if (okvm_keymap_lookup(r->km, a->cp, caps, &seq))
		return rfail(r, -EINVAL, "layout %s cannot type U+%04X", okvm_keymap_layout(r->km),
			     a->cp);
	for (int i = 0; i < seq.n; i++) {
		const char *code = okvm_key_usage_code(seq.k[i].usage);
		uint8_t m = (uint8_t)(a->mods | seq.k[i].modifiers);
		int rc;
		if (!code)
			return rfail(r, -EINVAL, "no key code for usage 0x%02x", seq.k[i].usage);
		if ((rc = mods(r, m, true)) || (rc = key(r, code, true)) ||
		    (rc = key(r, code, false)) || (rc = mods(r, m, false)))
			return rc;
		if (r->key_delay_ms && (rc = pause_ms(r, r->key_delay_ms)))
			return rc;
	}
	return 0;
}

/* ---- typing job ---- */

struct type_job {
	atomic_bool done;
	atomic_int err;
};

static void
type_progress(size_t done, size_t total, int err, void *ud)
{
	struct type_job *j = ud;
	if (err < 0 || done == total) {
		atomic_store(&j->err, err < 0 ? err : 0);
		atomic_store(&j->done, true);
	}
}

static int
type_text(struct runner *r, const struct ahk_action *a)
{
	const struct serve_backend *b = r->b;
	struct type_job *j = xcalloc(1, sizeof(*j));
	const char *layout = r->env->layout ? r->env->layout : "us";
	int rc = INPUT(r, b->ops->type(b->ud, a->s, strlen(a->s), layout, a->f, type_progress, j));
	while (!rc && !atomic_load(&j->done)) {
		if (cancelled(r)) {
			b->ops->release_all(b->ud); /* stops the job; it reports done */
			for (int i = 0; i < 500 && !atomic_load(&j->done); i++)
				nap_ms(2);
			rc = -ECANCELED;
			break;
		}
		nap_ms(5);
	}
	if (!rc && atomic_load(&j->err))
		rc = input_error(r, atomic_load(&j->err));
	if (atomic_load(&j->done))
		free(j);
	/* else the backend may still call back: leak the 8 bytes rather than risk a use */
	return rc;
}

/* ---- frames and files ---- */

static char *
resolve(const struct runner *r, const char *path)
{
	if (path[0] == '/' || !r->env->dir || !r->env->dir[0])
		return xstrdup(path);
	size_t n = strlen(r->env->dir) + strlen(path) + 2;
	char *s = xmalloc(n);
	snprintf(s, n, "%s/%s", r->env->dir, path);
	return s;
}

static struct okvm_frame *
frame_wait(struct runner *r)
{
	double until = mono_ms() + FRAME_WAIT_MS;
	for (;;) {
		struct okvm_frame *f = r->b->ops->newest_frame(r->b->ud);
		if (f || mono_ms() > until || cancelled(r))
			return f;
		nap_ms(20);
	}
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

static int
write_png_rgb(FILE *fp, const uint8_t *rgb, int w, int h, int stride)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!info) {
		png_destroy_write_struct(&png, NULL);
		return -ENOMEM;
	}
	png_bytep *rows = xmalloc(sizeof(*rows) * (size_t)h);
	for (int y = 0; y < h; y++)
		rows[y] = (png_bytep)rgb + (size_t)y * (size_t)stride;
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(rows);
		return -EIO;
	}
	png_init_io(png, fp);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	png_write_image(png, rows);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(rows);
	return 0;
}

/* The area (clipped to the frame) as PNG or JPEG, by the file name. */
static int
write_area(FILE *fp, const struct okvm_frame *f, const char *name, int x, int y, int w, int h)
{
	tjhandle d = tjInitDecompress();
	if (!d)
		return -ENOMEM;
	uint8_t *rgb = xmalloc((size_t)f->width * (size_t)f->height * 3);
	int rc = tjDecompress2(d, f->data, (unsigned long)f->size, rgb, f->width, 0, f->height,
			       TJPF_RGB, 0)
			 ? -EBADMSG
			 : 0;
	tjDestroy(d);
	int stride = f->width * 3;
	const uint8_t *origin = rgb + (size_t)y * (size_t)stride + (size_t)x * 3;
	if (!rc && ends_with(name, ".png")) {
		rc = write_png_rgb(fp, origin, w, h, stride);
	} else if (!rc) {
		tjhandle c = tjInitCompress();
		unsigned char *jpg = NULL;
		unsigned long jl = 0;
		if (!c ||
		    tjCompress2(c, origin, w, stride, h, TJPF_RGB, &jpg, &jl, TJSAMP_420, 92, 0))
			rc = -EIO;
		else if (fwrite(jpg, 1, jl, fp) != jl)
			rc = -EIO;
		tjFree(jpg);
		if (c)
			tjDestroy(c);
	}
	free(rgb);
	return rc;
}

static int
save_frame(const struct okvm_frame *f, const char *path, const struct ahk_action *area, char *why,
	   size_t whylen)
{
	int x = 0, y = 0, w = f->width, h = f->height;
	if (area && area->has_rect) {
		x = area->rx;
		y = area->ry;
		w = area->rw;
		h = area->rh;
		if (x >= f->width || y >= f->height) {
			snprintf(why, whylen, "the area starts outside the %dx%d frame", f->width,
				 f->height);
			return -EINVAL;
		}
		if (x + w > f->width)
			w = f->width - x;
		if (y + h > f->height)
			h = f->height - y;
	}
	FILE *fp = fopen(path, "wb");
	if (!fp) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	int rc;
	if (area && area->has_rect)
		rc = write_area(fp, f, path, x, y, w, h);
	else if (ends_with(path, ".png"))
		rc = okvm_jpeg_to_png(f->data, f->size, fp);
	else
		rc = fwrite(f->data, 1, f->size, fp) == f->size ? 0 : -EIO;
	if (fclose(fp) && !rc)
		rc = -EIO;
	if (rc)
		snprintf(why, whylen, "%s: %s", path, okvm_strerror(rc));
	return rc;
}

static int
capture(struct runner *r, const struct ahk_action *a)
{
	char *path;
	if (a->s) {
		path = resolve(r, a->s);
	} else {
		char name[80];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		snprintf(name, sizeof(name), "okvm-capture-%04d%02d%02d-%02d%02d%02d-%d.jpg",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ++r->captures);
		path = resolve(r, name);
	}
	struct okvm_frame *f = frame_wait(r);
	if (!f) {
		free(path);
		return cancelled(r) ? -ECANCELED
				    : rfail(r, -ENODATA, "no frame from the capture in %d s",
					    FRAME_WAIT_MS / 1000);
	}
	char why[200];
	int rc = save_frame(f, path, a, why, sizeof(why));
	r->b->ops->frame_unref(r->b->ud, f);
	if (rc)
		rc = rfail(r, rc, "%s", why);
	else if (r->log)
		fprintf(r->log, "okvm: saved %s\n", path);
	free(path);
	return rc;
}

static void
timeout_shot(struct runner *r, char *note, size_t len)
{
	note[0] = 0;
	if (!r->env->timeout_shot)
		return;
	struct okvm_frame *f = r->b->ops->newest_frame(r->b->ud);
	if (!f)
		return;
	char why[200];
	if (!save_frame(f, r->env->timeout_shot, NULL, why, sizeof(why)))
		snprintf(note, len, " (the screen then: %s)", r->env->timeout_shot);
	r->b->ops->frame_unref(r->b->ud, f);
}

static int
ocr_ready(struct runner *r)
{
	if (r->ocr)
		return 0;
	int rc = auto_ocr_new(NULL, &r->ocr);
	if (rc)
		return rfail(r, rc, "OCR is not available: %s", okvm_strerror(rc));
	r->own_ocr = true;
	return 0;
}

static struct auto_rect
rect_of(const struct ahk_action *a)
{
	return (struct auto_rect){ a->rx, a->ry, a->rw, a->rh };
}

static int
timeout_ms(double s)
{
	return (int)lround(s * 1000);
}

static void
collapse(char *s)
{
	char *w = s;
	bool blank = false;
	for (char *p = s; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			blank = w != s;
			continue;
		}
		if (blank)
			*w++ = ' ';
		blank = false;
		*w++ = *p;
	}
	*w = 0;
}

static const char *
var_get(const struct runner *r, const char *name, size_t len)
{
	for (int i = 0; i < r->nvars; i++)
		if (strlen(r->var_name[i]) == len && !strncmp(r->var_name[i], name, len))
			return r->var_val[i];
	return NULL;
}

/* s with every %name% of a set variable replaced by its text; other %...% stay. */
static char *
expand(const struct runner *r, const char *s)
{
	size_t cap = strlen(s) + 1, n = 0;
	char *o = xmalloc(cap);
	for (const char *p = s; *p;) {
		const char *e = *p == '%' ? strchr(p + 1, '%') : NULL;
		const char *v = e ? var_get(r, p + 1, (size_t)(e - p - 1)) : NULL;
		const char *piece = v ? v : p;
		size_t len = v ? strlen(v) : 1;
		if (n + len + 1 > cap) {
			cap = (n + len + 1) * 2;
			o = xrealloc(o, cap);
		}
		memcpy(o + n, piece, len);
		n += len;
		p = v ? e + 1 : p + 1;
	}
	o[n] = 0;
	return o;
}

/* The text OCR reads now (in the action's region), collapsed to single spaces; malloc'd. */
static int
read_screen(struct runner *r, const struct ahk_action *a, const char *what, char **text)
{
	int rc = ocr_ready(r);
	if (rc)
		return rc;
	struct okvm_frame *f = frame_wait(r);
	if (!f)
		return rfail(r, -ENODATA, "no frame from the capture in %d s",
			     FRAME_WAIT_MS / 1000);
	struct auto_rect reg = rect_of(a);
	struct auto_ocr_result res;
	rc = auto_ocr_jpeg(r->ocr, f->data, f->size, a->has_rect ? &reg : NULL, &res);
	r->b->ops->frame_unref(r->b->ud, f);
	if (rc)
		return rfail(r, rc, "%s: OCR failed: %s", what, okvm_strerror(rc));
	collapse(res.text);
	*text = xstrdup(res.text);
	auto_ocr_result_free(&res);
	return 0;
}

static int
read_text(struct runner *r, const struct ahk_action *a)
{
	char *text = NULL;
	int rc = read_screen(r, a, "ReadText", &text);
	if (rc)
		return rc;
	if (r->log)
		fprintf(r->log, "okvm: line %d: %s = \"%s\"\n", a->line, a->s, text);
	for (int i = 0; i < r->nvars; i++)
		if (!strcmp(r->var_name[i], a->s)) {
			free(r->var_val[i]);
			r->var_val[i] = text;
			return 0;
		}
	r->var_name[r->nvars] = xstrdup(a->s); /* the parser bounds their number */
	r->var_val[r->nvars++] = text;
	return 0;
}

static int
assert_text(struct runner *r, const struct ahk_action *a)
{
	int rc = ocr_ready(r);
	if (rc)
		return rc;
	struct okvm_frame *f = frame_wait(r);
	if (!f)
		return rfail(r, -ENODATA, "no frame from the capture in %d s",
			     FRAME_WAIT_MS / 1000);
	struct auto_rect reg = rect_of(a);
	struct auto_ocr_result res;
	rc = auto_ocr_jpeg(r->ocr, f->data, f->size, a->has_rect ? &reg : NULL, &res);
	r->b->ops->frame_unref(r->b->ud, f);
	if (rc)
		return rfail(r, rc, "AssertText: OCR failed: %s", okvm_strerror(rc));
	char *want = xstrdup(a->s);
	collapse(want);
	collapse(res.text);
	bool found = strstr(res.text, want) != NULL;
	if (!found) {
		char note[160];
		timeout_shot(r, note, sizeof(note));
		rc = rfail(r, -EPROTO,
			   "AssertText \"%s\": not on the screen; it reads \"%.60s%s\"%s", a->s,
			   res.text, strlen(res.text) > 60 ? "..." : "", note);
	}
	free(want);
	auto_ocr_result_free(&res);
	return rc;
}

static int
wait_result(struct runner *r, int rc, const char *what)
{
	if (!rc || rc == -ECANCELED)
		return rc;
	if (rc == -ETIMEDOUT) {
		char note[160];
		timeout_shot(r, note, sizeof(note));
		return rfail(r, rc, "%s: timed out%s", what, note);
	}
	return rfail(r, rc, "%s: %s", what, okvm_strerror(rc));
}

static int
lock_state(struct runner *r, const struct ahk_action *a)
{
	static const char *const codes[] = { [OKVM_LED_NUM] = "NumLock",
					     [OKVM_LED_CAPS] = "CapsLock",
					     [OKVM_LED_SCROLL] = "ScrollLock" };
	/* As the Qt app: read the LEDs first, press the key only if they differ. */
	uint8_t before = leds_now(r);
	bool on = before & a->n;
	if (a->a != 2 && on == (a->a == 1))
		return 0;
	int rc;
	const char *code = codes[a->n];
	if ((rc = key(r, code, true)) || (rc = key(r, code, false)) || (rc = drain(r)))
		return rc;
	/* Until the target's new LED state is read back, so the next statement sees it. */
	double until = mono_ms() + LED_WAIT_MS;
	while (((leds_now(r) ^ before) & a->n) == 0 && mono_ms() < until)
		if ((rc = pause_ms(r, 10)))
			return rc;
	return 0;
}

static int
run_action(struct runner *r, const struct ahk_action *a)
{
	const struct serve_backend *b = r->b;
	switch (a->op) {
	case AHK_KEY: return key(r, a->code, a->down);
	case AHK_CHAR: return send_char(r, a);
	case AHK_MODS: return mods(r, a->mods, a->down);
	case AHK_MOVE:
		return INPUT(r, b->ops->mouse_abs(b->ud, a->x / (double)AHK_ABS_MAX,
						  a->y / (double)AHK_ABS_MAX, a->buttons));
	case AHK_REL: return INPUT(r, b->ops->rel(b->ud, a->x, a->y, a->buttons));
	case AHK_BUTTONS: return INPUT(r, b->ops->buttons(b->ud, a->buttons));
	case AHK_WHEEL: return INPUT(r, b->ops->wheel(b->ud, -a->n, 0));
	case AHK_SLEEP: return pause_ms(r, a->n);
	case AHK_TYPE: return type_text(r, a);
	case AHK_READ_TEXT: return read_text(r, a);
	case AHK_PRINT:
		if (r->env->out) {
			fprintf(r->env->out, "%s\n", a->s);
			fflush(r->env->out);
		}
		return 0;
	case AHK_LOCK: return lock_state(r, a);
	case AHK_CAPTURE: return capture(r, a);
	case AHK_WAIT_TEXT: {
		int rc = ocr_ready(r);
		struct auto_rect reg = rect_of(a);
		if (!rc)
			rc = auto_wait_text(b, r->ocr, a->s, a->has_rect ? &reg : NULL,
					    timeout_ms(a->f), r->env->cancel, NULL);
		char what[300];
		snprintf(what, sizeof(what), "WaitText \"%s\" (%g s)", a->s, a->f);
		return r->err->msg[0] ? rc : wait_result(r, rc, what);
	}
	case AHK_ASSERT_TEXT: return assert_text(r, a);
	case AHK_WAIT_SCREEN: {
		char *path = resolve(r, a->s);
		int rc = auto_wait_screen(b, path, a->g, NULL, timeout_ms(a->f), r->env->cancel,
					  NULL);
		char what[300];
		snprintf(what, sizeof(what), "WaitScreen %s (%g s)", path, a->f);
		free(path);
		return wait_result(r, rc, what);
	}
	case AHK_WAIT_STILL: {
		int rc = auto_wait_still(b, a->n, timeout_ms(a->f), r->env->cancel);
		char what[100];
		snprintf(what, sizeof(what), "WaitStill %d ms (%g s)", a->n, a->f);
		return wait_result(r, rc, what);
	}
	case AHK_SWITCH: {
		enum okvm_usb_dir to = a->a ? OKVM_USB_TO_TARGET : OKVM_USB_TO_HOST;
		int rc = b->ops->usb_switch(b->ud, to);
		if (rc == -EOPNOTSUPP)
			return rfail(r, rc, "Switch: this unit has no switchable USB port");
		if (rc)
			return rfail(r, rc, "Switch: %s", okvm_strerror(rc));
		/* The backend switches on its own thread: until the state says so. */
		double until = mono_ms() + SWITCH_WAIT_MS;
		for (;;) {
			struct serve_state st;
			memset(&st, 0, sizeof(st));
			b->ops->get_state(b->ud, &st);
			if (st.usb_known && st.usb == to)
				return 0;
			if (mono_ms() > until)
				return rfail(r, -ETIME, "Switch: the port did not move in %d s",
					     SWITCH_WAIT_MS / 1000);
			if ((rc = pause_ms(r, 10)))
				return rc;
		}
	}
	case AHK_POWER: {
		int rc = r->env->power(r->env->power_ud, a->s);
		return rc ? rfail(r, rc, "Power %s: %s", a->s, okvm_strerror(rc)) : 0;
	}
	case AHK_WAIT_SERIAL: {
		int rc = r->env->serial_wait(r->env->serial_ud, a->s, a->f, r->env->cancel);
		if (!rc || rc == -ECANCELED)
			return rc;
		if (rc == -ETIMEDOUT)
			return rfail(r, rc,
				     "WaitSerial \"%s\" (%g s): timed out; the target's console "
				     "did not print it",
				     a->s, a->f);
		return rfail(r, rc, "WaitSerial \"%s\": the console: %s", a->s,
			     rc == -ENODEV ? "the adapter went away" : okvm_strerror(rc));
	}
	case AHK_SEND_SERIAL: {
		int rc = r->env->serial_send(r->env->serial_ud, a->s, (size_t)a->n);
		return rc ? rfail(r, rc, "SendSerial: the console: %s",
				  rc == -ENODEV ? "the adapter went away" : okvm_strerror(rc))
			  : 0;
	}
	case AHK_KEY_DELAY: r->key_delay_ms = a->n; return 0;
	case AHK_SYNC: return drain(r);
	}
	return 0;
}

/* SendSerial's bytes as the script wrote them (CR as `n). */
static void
serial_text(const char *s, char *out, size_t len)
{
	size_t k = 0;
	for (; *s && k + 3 < len; s++) {
		if (*s == '\r' || *s == '\t') {
			out[k++] = '`';
			out[k++] = *s == '\r' ? 'n' : 't';
		} else {
			out[k++] = *s;
		}
	}
	out[k] = 0;
}

/* One line for people: what the action does. */
static void
describe(const struct ahk_action *a, char *out, size_t len)
{
	static const char *const locks[] = { [OKVM_LED_NUM] = "NumLock",
					     [OKVM_LED_CAPS] = "CapsLock",
					     [OKVM_LED_SCROLL] = "ScrollLock" };
	char rect[80] = "";
	if (a->has_rect)
		snprintf(rect, sizeof(rect), " in %d,%d %dx%d", a->rx, a->ry, a->rw, a->rh);
	switch (a->op) {
	case AHK_KEY: snprintf(out, len, "key %s %s", a->code, a->down ? "down" : "up"); break;
	case AHK_CHAR:
		if (a->cp >= 0x20 && a->cp < 0x7F)
			snprintf(out, len, "char '%c'%s", (char)a->cp, a->mods ? " with" : "");
		else
			snprintf(out, len, "char U+%04X%s", a->cp, a->mods ? " with" : "");
		for (int i = 0; a->mods && i < 8; i++)
			if (a->mods & (1u << i)) {
				size_t n = strlen(out);
				snprintf(out + n, len - n, " %s", ahk_mod_code((uint8_t)(1u << i)));
			}
		break;
	case AHK_MODS: {
		snprintf(out, len, "modifiers");
		for (int i = 0; i < 8; i++)
			if (a->mods & (1u << i)) {
				size_t n = strlen(out);
				snprintf(out + n, len - n, " %s", ahk_mod_code((uint8_t)(1u << i)));
			}
		size_t n = strlen(out);
		snprintf(out + n, len - n, " %s", a->down ? "down" : "up");
		break;
	}
	case AHK_MOVE:
		snprintf(out, len, "mouse to %d,%d of 4096 buttons %u", a->x, a->y, a->buttons);
		break;
	case AHK_REL:
		snprintf(out, len, "mouse by %d,%d buttons %u", a->x, a->y, a->buttons);
		break;
	case AHK_BUTTONS: snprintf(out, len, "buttons %u", a->buttons); break;
	case AHK_WHEEL: snprintf(out, len, "wheel %+d", a->n); break;
	case AHK_SLEEP: snprintf(out, len, "sleep %d ms", a->n); break;
	case AHK_TYPE: snprintf(out, len, "type \"%s\"", a->s); break;
	case AHK_LOCK:
		snprintf(out, len, "%s %s", locks[a->n],
			 a->a == 2 ? "toggle"
			 : a->a    ? "on"
				   : "off");
		break;
	case AHK_CAPTURE:
		snprintf(out, len, "capture%s to %s", rect, a->s ? a->s : "(a new file)");
		break;
	case AHK_WAIT_TEXT:
		snprintf(out, len, "wait up to %g s for text \"%s\"%s", a->f, a->s, rect);
		break;
	case AHK_ASSERT_TEXT: snprintf(out, len, "assert text \"%s\"%s", a->s, rect); break;
	case AHK_WAIT_SCREEN:
		snprintf(out, len, "wait up to %g s for image %s (similarity %g)", a->f, a->s,
			 a->g);
		break;
	case AHK_WAIT_STILL:
		snprintf(out, len, "wait up to %g s for %d ms without change", a->f, a->n);
		break;
	case AHK_SWITCH: snprintf(out, len, "USB switch to %s", a->a ? "target" : "host"); break;
	case AHK_POWER: snprintf(out, len, "power %s", a->s); break;
	case AHK_KEY_DELAY: snprintf(out, len, "key delay %d ms", a->n); break;
	case AHK_SYNC: snprintf(out, len, "wait until sent"); break;
	case AHK_READ_TEXT: snprintf(out, len, "read text%s into %s", rect, a->s); break;
	case AHK_PRINT: snprintf(out, len, "print \"%s\"", a->s); break;
	case AHK_WAIT_SERIAL:
		snprintf(out, len, "wait for \"%s\" on the serial console (%g s)", a->s, a->f);
		break;
	case AHK_SEND_SERIAL: {
		char t[200];
		serial_text(a->s, t, sizeof(t));
		snprintf(out, len, "send \"%s\" to the serial console", t);
		break;
	}
	}
}

int
auto_script_check(const struct auto_script *s, const char *layout, bool has_power,
		  struct auto_script_error *err)
{
	struct auto_script_error scratch;
	if (!err)
		err = &scratch;
	memset(err, 0, sizeof(*err));
	struct okvm_keymap *km = NULL;
	int rc = 0;
	for (size_t i = 0; i < s->n && !rc; i++) {
		const struct ahk_action *a = &s->v[i];
		if (a->op == AHK_POWER && !has_power) {
			err->line = a->line;
			err->col = a->col;
			snprintf(err->msg, sizeof(err->msg),
				 "Power %s needs a power backend (see okvm power), and this unit "
				 "has none",
				 a->s);
			rc = -EOPNOTSUPP;
			break;
		}
		if (a->op != AHK_CHAR && a->op != AHK_TYPE)
			continue;
		if (!km && !(km = okvm_keymap_new(layout ? layout : "us"))) {
			err->line = a->line;
			err->col = a->col;
			snprintf(err->msg, sizeof(err->msg), "unknown layout '%s'",
				 layout ? layout : "us");
			rc = -EINVAL;
			break;
		}
		struct okvm_keyseq seq;
		if (a->op == AHK_CHAR) {
			if (okvm_keymap_lookup(km, a->cp, false, &seq)) {
				err->line = a->line;
				err->col = a->col;
				snprintf(err->msg, sizeof(err->msg),
					 "layout %s cannot type U+%04X; expected a character the "
					 "target's layout has (--layout)",
					 okvm_keymap_layout(km), a->cp);
				rc = -EINVAL;
			}
			continue;
		}
		/* Type: walk the UTF-8 (the parser checked it) */
		const unsigned char *start = (const unsigned char *)a->s, *p = start;
		while (*p && !rc) {
			int n = *p < 0x80 ? 1 : *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
			uint32_t cp = n == 1 ? *p : (uint32_t)(*p & (0x7F >> n));
			for (int k = 1; k < n; k++) {
				if (!p[k]) {
					n = k;
					break;
				}
				cp = cp << 6 | (p[k] & 0x3F);
			}
			if (cp != '\n' && cp != '\t' && okvm_keymap_lookup(km, cp, false, &seq)) {
				err->line = a->line;
				err->col = a->x + (int)(p - start);
				snprintf(err->msg, sizeof(err->msg),
					 "layout %s cannot type U+%04X; expected a character the "
					 "target's layout has (--layout)",
					 okvm_keymap_layout(km), cp);
				rc = -EINVAL;
			}
			p += n;
		}
	}
	okvm_keymap_free(km);
	return rc;
}

int
auto_script_run(const struct auto_script *s, const struct auto_script_env *env,
		struct auto_script_error *err)
{
	struct auto_script_error scratch;
	if (!err)
		err = &scratch;
	memset(err, 0, sizeof(*err));
	int rc = auto_script_check(s, env->layout, env->power || env->dry_run, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < s->n && !env->dry_run; i++) {
		const struct ahk_action *a = &s->v[i];
		bool wait = a->op == AHK_WAIT_SERIAL;
		if ((wait && !env->serial_wait) ||
		    (a->op == AHK_SEND_SERIAL && !env->serial_send)) {
			err->line = a->line;
			err->col = a->col;
			snprintf(err->msg, sizeof(err->msg),
				 "%s needs the target's serial console (a USB-serial adapter on "
				 "the extension pins, see okvm console), and this unit has none",
				 wait ? "WaitSerial" : "SendSerial");
			return -EOPNOTSUPP;
		}
	}
	struct runner r = { .env = env, .b = env->b, .err = err, .log = env->log, .ocr = env->ocr };
	if (env->dry_run) {
		FILE *out = env->log ? env->log : stdout;
		for (size_t i = 0; i < s->n; i++) {
			char line[400];
			if (s->v[i].op == AHK_SYNC)
				continue;
			describe(&s->v[i], line, sizeof(line));
			fprintf(out, "%d:%d: %s\n", s->v[i].line, s->v[i].col, line);
		}
		return 0;
	}
	if (!r.b || !r.b->ops)
		return rfail(&r, -EINVAL, "no unit to run on");
	r.km = okvm_keymap_new(env->layout ? env->layout : "us");
	if (s->needs_frames)
		r.b->ops->want_frames(r.b->ud, true);
	int last_line = 0;
	for (size_t i = 0; i < s->n && !rc; i++) {
		r.a = &s->v[i];
		if (cancelled(&r)) {
			rc = -ECANCELED;
			break;
		}
		if (r.log && r.a->op != AHK_SYNC && r.a->line != last_line) {
			char line[400];
			describe(r.a, line, sizeof(line));
			fprintf(r.log, "okvm: line %d: %s\n", r.a->line, line);
			last_line = r.a->line;
		}
		if (r.a->interp) { /* %name% of variables: the statement with their text */
			struct ahk_action x = *r.a;
			x.s = expand(&r, r.a->s);
			rc = run_action(&r, &x);
			free(x.s);
		} else {
			rc = run_action(&r, r.a);
		}
	}
	if (rc == -ECANCELED && !err->msg[0])
		rfail(&r, rc, "stopped");
	/* Every exit path: nothing stays pressed. */
	r.b->ops->release_all(r.b->ud);
	if (r.b->link) {
		double until = mono_ms() + 2000;
		while (okvm_link_pending(r.b->link) && mono_ms() < until)
			nap_ms(2);
	}
	if (s->needs_frames)
		r.b->ops->want_frames(r.b->ud, false);
	if (r.own_ocr)
		auto_ocr_free(r.ocr);
	okvm_keymap_free(r.km);
	for (int i = 0; i < r.nvars; i++) {
		free(r.var_name[i]);
		free(r.var_val[i]);
	}
	return rc;
}
