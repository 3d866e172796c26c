/*
 * DESIGN: the test backend of okvm serve (`okvm serve --test-backend DIR`): a stand-in unit
 * that lets the server, its integration tests, the browser tests and the benchmarks run without
 * the link, keymap or capture code.
 *
 * Video: the *.jpg files of a folder, read once, served in name order in a loop at a fixed
 * rate by a thread named okvm-testsrc; a frame points into the file's buffer (no copy) and is
 * reference-counted. The thread produces only while the server wants frames.
 * Input: every call is appended to a log as one JSON line (backend.h lists them), which is what
 * the tests read back; key codes are checked against the KeyboardEvent.code names a US keyboard
 * has, so unknown codes fail as they would on a real unit. Lock keys toggle the LEDs; typing
 * runs on its own thread at the asked speed and reports progress.
 * SIGUSR1 toggles "target connected" and SIGUSR2 toggles "video signal", so tests can show
 * those states.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "okvm/log.h"
#include "serve/backend.h"
#include "lib/thread.h"
#include "lib/xalloc.h"

#define MAX_FILES 256

struct jpeg_file {
	uint8_t *data;
	size_t size;
	int width, height;
};

struct tframe {
	struct okvm_frame f; /* first: a struct okvm_frame * is a struct tframe * */
	atomic_int refs;
};

struct tb {
	struct jpeg_file files[MAX_FILES];
	size_t nfiles;
	double fps;
	FILE *log;
	pthread_mutex_t lock; /* everything below, and the log */
	pthread_cond_t cond;
	pthread_t thread, typer;
	bool typer_running, stop, want;
	struct tframe *newest;
	uint64_t seq;
	uint8_t leds;
	enum serve_usb usb;
	bool connected, signal;
	double x, y;
	uint8_t buttons;
	uint64_t reports, frames;
	double cur_fps;
	void (*on_frame)(void *), (*on_state)(void *);
	void *nud;
	/* typing */
	char *text;
	size_t text_len, typed, total;
	double cps;
	serve_type_progress_fn progress;
	void *progress_ud;
	bool typing_cancel;
};

static atomic_int sig_toggle_connected, sig_toggle_signal;

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One JSON line; lock held by the caller. */
static void logf_locked(struct tb *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
logf_locked(struct tb *t, const char *fmt, ...)
{
	if (!t->log)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(t->log, fmt, ap);
	va_end(ap);
	fputc('\n', t->log);
	fflush(t->log);
}

/* JSON string escaping for the log. */
static void
json_str(char *out, size_t n, const char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 8 < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, n - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = 0;
}

/* ---- frames ---- */

static void
frame_unref(void *ud, struct okvm_frame *f)
{
	(void)ud;
	struct tframe *tf = (struct tframe *)f;
	if (tf && atomic_fetch_sub(&tf->refs, 1) == 1)
		free(tf);
}

static struct okvm_frame *
newest_frame(void *ud)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	struct tframe *tf = t->newest;
	if (tf)
		atomic_fetch_add(&tf->refs, 1);
	pthread_mutex_unlock(&t->lock);
	return tf ? &tf->f : NULL;
}

static void
publish(struct tb *t)
{
	struct jpeg_file *jf = &t->files[t->seq % t->nfiles];
	struct tframe *tf = xcalloc(1, sizeof(*tf));
	atomic_init(&tf->refs, 1);
	tf->f.data = jf->data;
	tf->f.size = jf->size;
	tf->f.width = jf->width;
	tf->f.height = jf->height;
	tf->f.seq = ++t->seq;
	tf->f.ts_us = now_us();
	struct tframe *old = t->newest;
	t->newest = tf;
	t->frames++;
	if (old)
		frame_unref(t, &old->f);
}

static bool
poll_signals(struct tb *t)
{
	bool changed = false;
	if (atomic_exchange(&sig_toggle_connected, 0)) {
		t->connected = !t->connected;
		logf_locked(t, "{\"op\":\"sim\",\"connected\":%s}",
			    t->connected ? "true" : "false");
		changed = true;
	}
	if (atomic_exchange(&sig_toggle_signal, 0)) {
		t->signal = !t->signal;
		logf_locked(t, "{\"op\":\"sim\",\"signal\":%s}", t->signal ? "true" : "false");
		changed = true;
	}
	return changed;
}

static void *
producer(void *ud)
{
	struct tb *t = ud;
	uint64_t period = (uint64_t)(1e6 / t->fps), next = now_us(), win = next, nwin = 0;
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		bool changed = poll_signals(t);
		if (t->want && t->signal) {
			publish(t);
			nwin++;
			if (t->on_frame)
				t->on_frame(t->nud);
		}
		uint64_t now = now_us();
		if (now - win >= 1000000) {
			t->cur_fps = (double)nwin * 1e6 / (double)(now - win);
			win = now;
			nwin = 0;
		}
		if (changed && t->on_state)
			t->on_state(t->nud);
		next += period;
		if (next < now)
			next = now;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t wait = next - now;
		ts.tv_sec += (time_t)(wait / 1000000);
		ts.tv_nsec += (long)(wait % 1000000) * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* ---- input ---- */

static const char *const named_codes[] = {
	"Enter",
	"Escape",
	"Backspace",
	"Tab",
	"Space",
	"Minus",
	"Equal",
	"BracketLeft",
	"BracketRight",
	"Backslash",
	"IntlBackslash",
	"Semicolon",
	"Quote",
	"Backquote",
	"Comma",
	"Period",
	"Slash",
	"CapsLock",
	"PrintScreen",
	"ScrollLock",
	"Pause",
	"Insert",
	"Home",
	"PageUp",
	"Delete",
	"End",
	"PageDown",
	"ArrowRight",
	"ArrowLeft",
	"ArrowDown",
	"ArrowUp",
	"NumLock",
	"NumpadDivide",
	"NumpadMultiply",
	"NumpadSubtract",
	"NumpadAdd",
	"NumpadEnter",
	"NumpadDecimal",
	"ContextMenu",
	"ControlLeft",
	"ShiftLeft",
	"AltLeft",
	"MetaLeft",
	"ControlRight",
	"ShiftRight",
	"AltRight",
	"MetaRight",
	"IntlRo",
	"IntlYen",
	"AudioVolumeUp",
	"AudioVolumeDown",
	"AudioVolumeMute",
	"MediaPlayPause",
	"MediaTrackNext",
	"MediaTrackPrevious",
	"MediaStop",
	"Power",
	NULL,
};

static bool
known_code(const char *c)
{
	size_t n = strlen(c);
	if (n == 4 && !strncmp(c, "Key", 3) && c[3] >= 'A' && c[3] <= 'Z')
		return true;
	if (n == 6 && !strncmp(c, "Digit", 5) && c[5] >= '0' && c[5] <= '9')
		return true;
	if (n == 7 && !strncmp(c, "Numpad", 6) && c[6] >= '0' && c[6] <= '9')
		return true;
	if ((n == 2 || n == 3) && c[0] == 'F') {
		int f = (int)strtol(c + 1, NULL, 10);
		if (f >= 1 && f <= 24 && c[1] != '0')
			return true;
	}
	for (const char *const *p = named_codes; *p; p++)
		if (!strcmp(*p, c))
			return true;
	return false;
}

static void
notify_state_locked(struct tb *t)
{
	if (t->on_state)
		t->on_state(t->nud);
}

static int
tb_key(void *ud, const char *code, bool down)
{
	struct tb *t = ud;
	if (!known_code(code))
		return -ENOENT;
	pthread_mutex_lock(&t->lock);
	logf_locked(t, "{\"op\":\"key\",\"code\":\"%s\",\"down\":%s}", code,
		    down ? "true" : "false");
	t->reports++;
	uint8_t bit = !strcmp(code, "NumLock")      ? SERVE_LED_NUM
		      : !strcmp(code, "CapsLock")   ? SERVE_LED_CAPS
		      : !strcmp(code, "ScrollLock") ? SERVE_LED_SCROLL
						    : 0;
	if (bit && down) {
		t->leds ^= bit;
		notify_state_locked(t);
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static bool
known_combo_key(const char *k, size_t n)
{
	static const char *const names[] = {
		"ctrl",     "alt",        "altgr",      "shift",  "super",       "win",
		"meta",     "delete",     "del",        "enter",  "esc",         "escape",
		"tab",      "space",      "backspace",  "sysrq",  "printscreen", "prtsc",
		"home",     "end",        "insert",     "pageup", "pagedown",    "up",
		"down",     "left",       "right",      "pause",  "volume-up",   "volume-down",
		"mute",     "play-pause", "next",       "prev",   "previous",    "stop",
		"capslock", "numlock",    "scrolllock", "menu",   NULL,
	};
	if (n == 1 && ((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9')))
		return true;
	if ((n == 2 || n == 3) && k[0] == 'f' && k[1] >= '1' && k[1] <= '9' &&
	    (n == 2 || (k[2] >= '0' && k[2] <= '9')) && strtol(k + 1, NULL, 10) <= 24)
		return true;
	for (const char *const *p = names; *p; p++)
		if (strlen(*p) == n && !strncmp(*p, k, n))
			return true;
	return false;
}

static int
tb_combo(void *ud, const char *combo)
{
	struct tb *t = ud;
	for (const char *p = combo; *p;) {
		const char *plus = strchr(p, '+');
		size_t n = plus ? (size_t)(plus - p) : strlen(p);
		if (!known_combo_key(p, n))
			return -ENOENT;
		p += n + (plus ? 1 : 0);
	}
	char esc[256];
	json_str(esc, sizeof(esc), combo, strlen(combo));
	pthread_mutex_lock(&t->lock);
	logf_locked(t, "{\"op\":\"combo\",\"combo\":\"%s\"}", esc);
	t->reports += 2;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int
tb_mouse_abs(void *ud, double x, double y, uint8_t buttons)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	t->x = x;
	t->y = y;
	t->buttons = buttons;
	t->reports++;
	logf_locked(t, "{\"op\":\"mouse\",\"x\":%.6f,\"y\":%.6f,\"buttons\":%u}", x, y, buttons);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int
tb_buttons(void *ud, uint8_t buttons)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	t->buttons = buttons;
	t->reports++;
	logf_locked(t, "{\"op\":\"buttons\",\"buttons\":%u}", buttons);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int
tb_wheel(void *ud, int dy, int dx)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	t->reports++;
	logf_locked(t, "{\"op\":\"wheel\",\"dy\":%d,\"dx\":%d}", dy, dx);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int
tb_rel(void *ud, int dx, int dy, uint8_t buttons)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	t->buttons = buttons;
	t->reports++;
	logf_locked(t, "{\"op\":\"rel\",\"dx\":%d,\"dy\":%d,\"buttons\":%u}", dx, dy, buttons);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* ---- typing ---- */

static size_t
utf8_len(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			k++;
	return k;
}

static void
sleep_locked(struct tb *t, double secs)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)(secs * 1e9) + (uint64_t)ts.tv_nsec;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	pthread_cond_timedwait(&t->cond, &t->lock, &ts);
}

static void *
typer(void *ud)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	size_t i = 0;
	while (i < t->text_len && !t->typing_cancel && !t->stop) {
		size_t n = 1;
		while (i + n < t->text_len && ((unsigned char)t->text[i + n] & 0xc0) == 0x80)
			n++;
		char esc[64];
		json_str(esc, sizeof(esc), t->text + i, n);
		logf_locked(t, "{\"op\":\"typed\",\"text\":\"%s\"}", esc);
		t->reports += 2;
		i += n;
		t->typed++;
		if (t->progress)
			t->progress(t->typed, t->total, 0, t->progress_ud);
		if (i < t->text_len)
			sleep_locked(t, 1.0 / t->cps);
	}
	if (t->typed < t->total && t->progress)
		t->progress(t->typed, t->total, -ECANCELED, t->progress_ud);
	free(t->text);
	t->text = NULL;
	t->typed = t->total = 0;
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static bool
valid_layout(const char *l)
{
	size_t n = strlen(l);
	if (n < 2 || n > 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((l[i] >= 'a' && l[i] <= 'z') || (l[i] >= '0' && l[i] <= '9') || l[i] == ':' ||
		      l[i] == '_' || l[i] == '-'))
			return false;
	return true;
}

static int
tb_type(void *ud, const char *text, size_t len, const char *layout, double cps,
	serve_type_progress_fn fn, void *fn_ud)
{
	struct tb *t = ud;
	if (!valid_layout(layout))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	if (t->text) {
		pthread_mutex_unlock(&t->lock);
		return -EBUSY;
	}
	if (t->typer_running) {
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->typer, NULL);
		pthread_mutex_lock(&t->lock);
		t->typer_running = false;
	}
	t->text = xmalloc(len + 1);
	memcpy(t->text, text, len);
	t->text[len] = 0;
	t->text_len = len;
	t->total = utf8_len(text, len);
	t->typed = 0;
	t->cps = cps > 0 ? cps : 200;
	t->progress = fn;
	t->progress_ud = fn_ud;
	t->typing_cancel = false;
	char esc[512];
	json_str(esc, sizeof(esc), text, len < 400 ? len : 400);
	logf_locked(t,
		    "{\"op\":\"type\",\"layout\":\"%s\",\"cps\":%g,\"chars\":%zu,\"text\":\"%s\"}",
		    layout, cps, t->total, esc);
	if (thread_start(&t->typer, "okvm-testtype", typer, t)) {
		free(t->text);
		t->text = NULL;
		pthread_mutex_unlock(&t->lock);
		return -EAGAIN;
	}
	t->typer_running = true;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int
tb_release_all(void *ud)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	t->buttons = 0;
	t->typing_cancel = true;
	t->reports += 2;
	logf_locked(t, "{\"op\":\"release_all\"}");
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int
tb_usb_switch(void *ud, enum serve_usb to)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	t->usb = to;
	logf_locked(t, "{\"op\":\"switch\",\"to\":\"%s\"}",
		    to == SERVE_USB_HOST ? "host" : "target");
	notify_state_locked(t);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void
tb_get_state(void *ud, struct serve_state *out)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	memset(out, 0, sizeof(*out));
	snprintf(out->unit, sizeof(out->unit), "test");
	out->has_input = true;
	out->target_connected = t->connected;
	out->leds = t->leds;
	out->has_video = true;
	out->signal = t->signal;
	out->width = t->newest ? t->newest->f.width : t->files[0].width;
	out->height = t->newest ? t->newest->f.height : t->files[0].height;
	out->fps = t->want && t->signal ? t->cur_fps : 0;
	out->usb = t->usb;
	out->frames_captured = t->frames;
	out->hid_reports = t->reports;
	out->typing_pending = t->total - t->typed;
	pthread_mutex_unlock(&t->lock);
}

static void
tb_want(void *ud, bool want)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	t->want = want;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void
tb_set_notify(void *ud, void (*on_frame)(void *), void (*on_state)(void *), void *nud)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	t->on_frame = on_frame;
	t->on_state = on_state;
	t->nud = nud;
	if (!on_frame && !on_state)
		t->progress = NULL;
	pthread_mutex_unlock(&t->lock);
}

static void
tb_destroy(void *ud)
{
	struct tb *t = ud;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	t->typing_cancel = true;
	t->progress = NULL;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	if (t->typer_running)
		pthread_join(t->typer, NULL);
	if (t->newest)
		frame_unref(t, &t->newest->f);
	for (size_t i = 0; i < t->nfiles; i++)
		free(t->files[i].data);
	if (t->log)
		fclose(t->log);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}

static const struct serve_backend_ops tb_ops = {
	.key = tb_key,
	.combo = tb_combo,
	.mouse_abs = tb_mouse_abs,
	.buttons = tb_buttons,
	.wheel = tb_wheel,
	.rel = tb_rel,
	.type = tb_type,
	.release_all = tb_release_all,
	.usb_switch = tb_usb_switch,
	.get_state = tb_get_state,
	.newest_frame = newest_frame,
	.frame_unref = frame_unref,
	.want_frames = tb_want,
	.set_notify = tb_set_notify,
	.destroy = tb_destroy,
};

/* ---- loading ---- */

static int
load_file(const char *path, struct jpeg_file *jf, tjhandle tj)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n <= 0 || n > 64L * 1024 * 1024) {
		fclose(f);
		return -EINVAL;
	}
	jf->data = xmalloc((size_t)n);
	jf->size = fread(jf->data, 1, (size_t)n, f);
	fclose(f);
	int sub, cs;
	if (jf->size != (size_t)n || tjDecompressHeader3(tj, jf->data, (unsigned long)jf->size,
							 &jf->width, &jf->height, &sub, &cs)) {
		okvm_log(OKVM_LOG_ERROR, "test backend: %s is not a JPEG", path);
		free(jf->data);
		jf->data = NULL;
		return -EINVAL;
	}
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
load_dir(struct tb *t, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	char *names[MAX_FILES];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_FILES) {
		size_t l = strlen(e->d_name);
		if (l > 4 &&
		    (!strcmp(e->d_name + l - 4, ".jpg") || !strcmp(e->d_name + l - 5, ".jpeg")))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(names[0]), cmp_str);
	tjhandle tj = tjInitDecompress();
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (!rc && !(rc = load_file(path, &t->files[t->nfiles], tj)))
			t->nfiles++;
		free(names[i]);
	}
	tjDestroy(tj);
	if (!rc && !t->nfiles) {
		okvm_log(OKVM_LOG_ERROR, "test backend: no *.jpg in %s", dir);
		rc = -ENOENT;
	}
	return rc;
}

static void
on_usr(int sig)
{
	atomic_store(sig == SIGUSR1 ? &sig_toggle_connected : &sig_toggle_signal, 1);
}

int
serve_backend_test_new(const char *dir, double fps, const char *log_path, struct serve_backend *out)
{
	struct tb *t = xcalloc(1, sizeof(*t));
	int rc = load_dir(t, dir);
	if (!rc && log_path && !(t->log = fopen(log_path, "a")))
		rc = -errno;
	if (rc) {
		for (size_t i = 0; i < t->nfiles; i++)
			free(t->files[i].data);
		free(t);
		return rc;
	}
	t->fps = fps > 0 && isfinite(fps) ? fps : 30;
	t->connected = t->signal = true;
	t->usb = SERVE_USB_TARGET;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	struct sigaction sa = { .sa_handler = on_usr };
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	if (thread_start(&t->thread, "okvm-testsrc", producer, t))
		abort(); /* a test stand-in: no thread, no test */
	*out = (struct serve_backend){ .ops = &tb_ops, .ud = t };
	return 0;
}
