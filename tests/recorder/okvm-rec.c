/*
 * DESIGN: okvm-rec, the okvm binary with a recorder for the tests: every object of the product
 * binary plus this file, which sets cli_serve_wrap (src/cli/cmd_serve.c) so that `okvm-rec serve`
 * wraps the unit's backend in one that forwards each call and, when the unit accepted it
 * (returned 0), appends one JSON line to the file named by OKVM_REC_LOG:
 *   {"op":"key","code":"KeyA","down":true}   {"op":"mouse","x":0.5,"y":0.25,"buttons":1}
 *   {"op":"buttons","buttons":0} {"op":"wheel","dy":1,"dx":0}
 *   {"op":"rel","dx":3,"dy":-2,"buttons":0}
 *   {"op":"combo","combo":"ctrl+alt+delete"}
 *   {"op":"type","layout":"us","cps":50,"chars":5,"text":"hello"} (text: the first 400 bytes)
 *   {"op":"typed","text":"h"} (each character, as the unit's progress reports it typed)
 *   {"op":"release_all"}   {"op":"switch","to":"host"}
 *   {"op":"sim","connected":false} {"op":"sim","signal":false} (SIGUSR1 / SIGUSR2, below)
 * The unit is a real one: the tests run it as `-d emu --video frames:DIR@FPS` (the virtual
 * unit's CH9329 and target for input, a folder of JPEGs for video), so key codes, combos,
 * layouts and typing go through the product's keymap and link and fail where they would fail.
 *
 * With -d emu, SIGUSR1 unplugs / plugs back the virtual target (the CH9329 then reports it gone,
 * as a real one does), SIGUSR2 turns the virtual screen's HDMI signal off / on (it shows
 * only when the virtual screen is the video) and SIGWINCH moves the unit's hardware USB toggle
 * to the other side ({"op":"sim","toggle":"target"}). A thread named okvm-recsig takes them with
 * sigwait; they are blocked in every thread from before main().
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "emu/emu.h"
#include "emu/screen.h"
#include "serve/backend.h"
#include "lib/thread.h"
#include "lib/xalloc.h"

/* One typing job: its text, and how much of it the log shows typed. */
struct job {
	struct job *next;
	struct rec *r;
	char *text;
	size_t len, pos; /* bytes; pos: the next character to log */
	size_t logged;   /* characters logged */
	size_t done;     /* characters the unit reported typed */
	bool announced;  /* its "type" line is out: "typed" lines may follow */
	serve_type_progress_fn fn;
	void *fn_ud;
};

struct rec {
	struct serve_backend inner;
	FILE *log;
	pthread_mutex_t lock; /* the log, the jobs and the simulated states */
	struct job *jobs;     /* every job, freed at the end (a late progress call may come) */
	struct emu *emu;      /* -d emu: for SIGUSR1 */
	bool connected, signal, toggle_target;
	pthread_t sig;
	bool sig_running;
	volatile bool stop;
};

/* One line; r->lock held. */
static void
put_locked(struct rec *r, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		abort();
	if (r->log) {
		fputs(s, r->log);
		fputc('\n', r->log);
		fflush(r->log);
	}
	free(s);
}

static void
log_obj(struct rec *r, cJSON *o)
{
	pthread_mutex_lock(&r->lock);
	put_locked(r, o);
	pthread_mutex_unlock(&r->lock);
}

static cJSON *
op(const char *name)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "op", name);
	return o;
}

/* A position as the log shows it: 6 decimals. */
static double
six(double v)
{
	return round(v * 1e6) / 1e6;
}

static int
rec_key(void *ud, const char *code, bool down)
{
	struct rec *r = ud;
	int rc = r->inner.ops->key(r->inner.ud, code, down);
	if (!rc) {
		cJSON *o = op("key");
		cJSON_AddStringToObject(o, "code", code);
		cJSON_AddBoolToObject(o, "down", down);
		log_obj(r, o);
	}
	return rc;
}

static int
rec_combo(void *ud, const char *combo)
{
	struct rec *r = ud;
	int rc = r->inner.ops->combo(r->inner.ud, combo);
	if (!rc) {
		cJSON *o = op("combo");
		cJSON_AddStringToObject(o, "combo", combo);
		log_obj(r, o);
	}
	return rc;
}

static int
rec_mouse_abs(void *ud, double x, double y, uint8_t buttons)
{
	struct rec *r = ud;
	int rc = r->inner.ops->mouse_abs(r->inner.ud, x, y, buttons);
	if (!rc) {
		cJSON *o = op("mouse");
		cJSON_AddNumberToObject(o, "x", six(x));
		cJSON_AddNumberToObject(o, "y", six(y));
		cJSON_AddNumberToObject(o, "buttons", buttons);
		log_obj(r, o);
	}
	return rc;
}

static int
rec_buttons(void *ud, uint8_t buttons)
{
	struct rec *r = ud;
	int rc = r->inner.ops->buttons(r->inner.ud, buttons);
	if (!rc) {
		cJSON *o = op("buttons");
		cJSON_AddNumberToObject(o, "buttons", buttons);
		log_obj(r, o);
	}
	return rc;
}

static int
rec_wheel(void *ud, int dy, int dx)
{
	struct rec *r = ud;
	int rc = r->inner.ops->wheel(r->inner.ud, dy, dx);
	if (!rc) {
		cJSON *o = op("wheel");
		cJSON_AddNumberToObject(o, "dy", dy);
		cJSON_AddNumberToObject(o, "dx", dx);
		log_obj(r, o);
	}
	return rc;
}

static int
rec_rel(void *ud, int dx, int dy, uint8_t buttons)
{
	struct rec *r = ud;
	int rc = r->inner.ops->rel(r->inner.ud, dx, dy, buttons);
	if (!rc) {
		cJSON *o = op("rel");
		cJSON_AddNumberToObject(o, "dx", dx);
		cJSON_AddNumberToObject(o, "dy", dy);
		cJSON_AddNumberToObject(o, "buttons", buttons);
		log_obj(r, o);
	}
	return rc;
}

static size_t
utf8_chars(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xc0) != 0x80;
	return k;
}

/* "typed" lines up to what the unit reported; r->lock held. */
static void
put_typed_locked(struct job *j)
{
	while (j->logged < j->done && j->pos < j->len) {
		size_t n = 1;
		while (j->pos + n < j->len && ((unsigned char)j->text[j->pos + n] & 0xc0) == 0x80)
			n++;
		char ch[8] = { 0 };
		memcpy(ch, j->text + j->pos, n < sizeof(ch) ? n : sizeof(ch) - 1);
		cJSON *o = op("typed");
		cJSON_AddStringToObject(o, "text", ch);
		put_locked(j->r, o);
		j->pos += n;
		j->logged++;
	}
}

/* The unit's progress, from its typing thread. */
static void
on_progress(size_t done, size_t total, int err, void *ud)
{
	struct job *j = ud;
	pthread_mutex_lock(&j->r->lock);
	if (done > j->done)
		j->done = done;
	if (j->announced)
		put_typed_locked(j);
	pthread_mutex_unlock(&j->r->lock);
	if (j->fn)
		j->fn(done, total, err, j->fn_ud);
}

static int
rec_type(void *ud, const char *text, size_t len, const char *layout, double cps,
	 serve_type_progress_fn fn, void *fn_ud)
{
	struct rec *r = ud;
	struct job *j = xcalloc(1, sizeof(*j));
	j->r = r;
	j->text = xmalloc(len + 1);
	memcpy(j->text, text, len);
	j->text[len] = 0;
	j->len = len;
	j->fn = fn;
	j->fn_ud = fn_ud;
	pthread_mutex_lock(&r->lock);
	j->next = r->jobs;
	r->jobs = j;
	pthread_mutex_unlock(&r->lock);
	int rc = r->inner.ops->type(r->inner.ud, text, len, layout, cps, on_progress, j);
	if (rc)
		return rc;
	size_t shown = len < 400 ? len : 400;
	while (shown < len && ((unsigned char)text[shown] & 0xc0) == 0x80)
		shown--; /* whole characters only */
	char *head = xmalloc(shown + 1);
	memcpy(head, text, shown);
	head[shown] = 0;
	cJSON *o = op("type");
	cJSON_AddStringToObject(o, "layout", layout);
	cJSON_AddNumberToObject(o, "cps", cps);
	cJSON_AddNumberToObject(o, "chars", (double)utf8_chars(text, len));
	cJSON_AddStringToObject(o, "text", head);
	free(head);
	/* "type" first, then what was typed meanwhile. */
	pthread_mutex_lock(&r->lock);
	put_locked(r, o);
	j->announced = true;
	put_typed_locked(j);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int
rec_release_all(void *ud)
{
	struct rec *r = ud;
	int rc = r->inner.ops->release_all(r->inner.ud);
	if (!rc)
		log_obj(r, op("release_all"));
	return rc;
}

static int
rec_usb_switch(void *ud, enum okvm_usb_dir to)
{
	struct rec *r = ud;
	int rc = r->inner.ops->usb_switch(r->inner.ud, to);
	if (!rc) {
		cJSON *o = op("switch");
		cJSON_AddStringToObject(o, "to", to == OKVM_USB_TO_HOST ? "host" : "target");
		log_obj(r, o);
	}
	return rc;
}

static void
rec_get_state(void *ud, struct serve_state *out)
{
	struct rec *r = ud;
	r->inner.ops->get_state(r->inner.ud, out);
}

static struct okvm_frame *
rec_newest_frame(void *ud)
{
	struct rec *r = ud;
	return r->inner.ops->newest_frame(r->inner.ud);
}

static void
rec_frame_unref(void *ud, struct okvm_frame *f)
{
	struct rec *r = ud;
	r->inner.ops->frame_unref(r->inner.ud, f);
}

static void
rec_want_frames(void *ud, bool want)
{
	struct rec *r = ud;
	r->inner.ops->want_frames(r->inner.ud, want);
}

static void
rec_set_notify(void *ud, void (*on_frame)(void *), void (*on_state)(void *), void *nud)
{
	struct rec *r = ud;
	r->inner.ops->set_notify(r->inner.ud, on_frame, on_state, nud);
}

static void
rec_destroy(void *ud)
{
	struct rec *r = ud;
	if (r->sig_running) {
		r->stop = true;
		pthread_kill(r->sig, SIGUSR1);
		pthread_join(r->sig, NULL);
	}
	r->inner.ops->destroy(r->inner.ud); /* no progress call after this */
	while (r->jobs) {
		struct job *j = r->jobs;
		r->jobs = j->next;
		free(j->text);
		free(j);
	}
	if (r->log)
		fclose(r->log);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static const struct serve_backend_ops rec_ops = {
	.key = rec_key,
	.combo = rec_combo,
	.mouse_abs = rec_mouse_abs,
	.buttons = rec_buttons,
	.wheel = rec_wheel,
	.rel = rec_rel,
	.type = rec_type,
	.release_all = rec_release_all,
	.usb_switch = rec_usb_switch,
	.get_state = rec_get_state,
	.newest_frame = rec_newest_frame,
	.frame_unref = rec_frame_unref,
	.want_frames = rec_want_frames,
	.set_notify = rec_set_notify,
	.destroy = rec_destroy,
};

static void *
sig_thread(void *ud)
{
	struct rec *r = ud;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGWINCH);
	for (;;) {
		int sig;
		if (sigwait(&set, &sig))
			continue;
		if (r->stop)
			return NULL;
		cJSON *o = op("sim");
		if (sig == SIGUSR1) {
			r->connected = !r->connected;
			emu_set_target_connected(r->emu, r->connected);
			cJSON_AddBoolToObject(o, "connected", r->connected);
		} else if (sig == SIGWINCH) {
			r->toggle_target = !r->toggle_target;
			cli_emu_set_toggle(r->toggle_target);
			cJSON_AddStringToObject(o, "toggle", r->toggle_target ? "target" : "host");
		} else {
			r->signal = !r->signal;
			struct vscreen *vs = cli_emu_screen();
			if (vs)
				vscreen_set_signal(vs, r->signal);
			cJSON_AddBoolToObject(o, "signal", r->signal);
		}
		log_obj(r, o);
	}
}

static void
wrap(struct cli *cli, struct serve_backend *be)
{
	struct rec *r = xcalloc(1, sizeof(*r));
	r->inner = *be;
	pthread_mutex_init(&r->lock, NULL);
	const char *path = getenv("OKVM_REC_LOG");
	if (path && *path && !(r->log = fopen(path, "a"))) {
		fprintf(stderr, "okvm-rec: OKVM_REC_LOG %s: %s\n", path, strerror(errno));
		exit(1);
	}
	r->connected = r->signal = true;
	if (cli_is_emu(cli) && cli_emu(cli, &r->emu) == CLI_OK &&
	    !thread_start(&r->sig, "okvm-recsig", sig_thread, r))
		r->sig_running = true;
	be->ops = &rec_ops;
	be->ud = r;
}

/* Before main(): SIGUSR1/2 and SIGWINCH blocked in every thread the process will start
 * (sigwait takes them), and the wrapper installed. */
__attribute__((constructor)) static void
install(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	cli_serve_wrap = wrap;
}
