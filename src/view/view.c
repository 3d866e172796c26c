/*
 * DESIGN: `okvm view`, the native window on the target (SDL2).
 *
 * Threads. Everything here runs on the main thread: SDL's events, decoding, rendering, and the
 * calls into the unit's backend (src/serve/backend.h; its okvm-hid thread owns the serial link,
 * so a key costs the main thread one enqueue and never waits for the chip). The capture thread
 * and the backend's threads only set an atomic flag and push one SDL user event
 * (SDL_PushEvent is thread-safe): a frame notice is pushed only while none is pending, so
 * frames never queue; the main loop then asks the capture for its newest frame (newest wins)
 * and decodes that one, straight to I420 planes (decode.c) shown as an IYUV texture.
 *
 * Sound (audio.c) has threads of its own: a reader into a ring, and SDL's audio callback.
 * A recording (host+R, record.c) runs on its own thread too and takes frames from the capture
 * itself; the window only starts and stops it and shows for how long it has run.
 *
 * While the window is hidden or minimised the viewer stops wanting frames: no capture work
 * (for a V4L2 unit) and no decoding at all.
 *
 * Input. Keys go by SDL scancode through keys.c's table to the backend's key(code); repeats
 * are dropped (the target repeats a held key itself). The host key (default Right Ctrl) is
 * never sent: alone it toggles the keyboard grab (and leaves relative mouse mode), as in
 * VirtualBox; with another key it is a viewer command (view --help). Every key and button the
 * viewer pressed is released when the window loses focus and when it closes. The absolute
 * pointer maps the picture's rectangle (letterbox excluded) to the chip's 0..4096; a point in
 * the letterbox is clamped to the picture's edge.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <SDL.h>
#include <turbojpeg.h>

#include "lib/video/draw.h"
#include "okvm/ch9329.h"
#include "okvm/error.h"
#include "okvm/log.h"
#include "av/record.h"
#include "okvm/video.h"
#include "serve/backend.h"
#include "view/decode.h"
#include "view/overlay.h"
#include "view/view.h"

#define WAIT_MS 100         /* longest sleep in the loop: signals are seen this fast */
#define FIRST_FRAME_MS 2000 /* how long the window waits for a first frame to take its size */

struct view {
	const struct view_opts *o;
	const struct serve_backend_ops *ops;
	void *ud;
	SDL_Window *win;
	SDL_Renderer *ren;
	SDL_Texture *tex, *ovl_tex;
	int tex_w, tex_h;
	/* the software renderer: frames decoded straight to these pixels (decode.c); 0: YUV */
	Uint32 rgb_format;
	int tj_format;
	Uint32 ev_base; /* +0 frame, +1 state, +2 paste progress, +3 the recording ended */
	atomic_bool frame_pending, state_pending, progress_pending, rec_pending;
	struct view_decoder dec;
	struct okvm_frame *shown; /* the frame on screen (a reference), for screenshots */
	uint64_t shown_seq;
	bool visible, wanting, focused, dirty;
	enum view_scale scale;
	bool fullscreen, grabbed, relative, user_released;
	bool host_down, host_used;
	bool overlay;
	bool lock_synced;
	uint8_t buttons;
	uint8_t held[SDL_NUM_SCANCODES / 8];
	struct serve_state st;
	SDL_Rect dst; /* the picture in output pixels */
	/* paste (progress written by the backend's okvm-type thread) */
	bool pasting;
	atomic_size_t p_done, p_total;
	atomic_int p_err;
	atomic_bool p_end;
	char message[80];
	/* presented-frame rate */
	unsigned shown_count;
	double shown_fps;
	uint64_t fps_t0_us;
	char title[256];
	FILE *trace;
	struct view_audio *audio; /* the unit's sound (audio.c), NULL when off */
	struct okvm_capture *cap; /* the unit's capture (for recording), NULL: none */
	struct view_rec *rec;     /* the recording under way (record.c), NULL: none */
	uint64_t rec_t0_us;
	char rec_time[16]; /* "1:05" */
};

/* ---- notices from other threads ---- */

static void
push(struct view *v, atomic_bool *flag, Uint32 type)
{
	if (atomic_exchange(flag, true))
		return; /* one is pending: the main loop takes the newest state anyway */
	SDL_Event e = { .type = type };
	SDL_PushEvent(&e);
}

static void
on_frame(void *ud)
{
	struct view *v = ud;
	push(v, &v->frame_pending, v->ev_base);
}

static void
on_state(void *ud)
{
	struct view *v = ud;
	push(v, &v->state_pending, v->ev_base + 1);
}

static void
on_progress(size_t done, size_t total, int err, void *ud)
{
	struct view *v = ud;
	atomic_store(&v->p_done, done);
	atomic_store(&v->p_total, total);
	if (err || done == total) {
		atomic_store(&v->p_err, err);
		atomic_store(&v->p_end, true);
	}
	push(v, &v->progress_pending, v->ev_base + 2);
}

static void
on_rec_done(void *ud)
{
	struct view *v = ud;
	push(v, &v->rec_pending, v->ev_base + 3);
}

/* ---- the picture ---- */

static void
want(struct view *v, bool w)
{
	if (w == v->wanting)
		return;
	v->wanting = w;
	v->ops->want_frames(v->ud, w);
}

/* Where the picture goes in the output (letterboxed fit, or 1:1 centred). */
static void
layout(struct view *v)
{
	int ow, oh;
	SDL_GetRendererOutputSize(v->ren, &ow, &oh);
	int fw = v->tex_w ? v->tex_w : ow, fh = v->tex_h ? v->tex_h : oh;
	if (v->scale == VIEW_SCALE_1TO1) {
		v->dst = (SDL_Rect){ (ow - fw) / 2, (oh - fh) / 2, fw, fh };
		return;
	}
	double k = fmin((double)ow / fw, (double)oh / fh);
	int w = (int)lround(fw * k), h = (int)lround(fh * k);
	v->dst = (SDL_Rect){ (ow - w) / 2, (oh - h) / 2, w, h };
}

static int
upload(struct view *v, const struct view_yuv *y)
{
	if (!v->tex || v->tex_w != y->width || v->tex_h != y->height) {
		if (v->tex)
			SDL_DestroyTexture(v->tex);
		v->tex = SDL_CreateTexture(v->ren, SDL_PIXELFORMAT_IYUV,
					   SDL_TEXTUREACCESS_STREAMING, y->width, y->height);
		if (!v->tex)
			return -ENOMEM;
		v->tex_w = y->width;
		v->tex_h = y->height;
		layout(v);
	}
	return SDL_UpdateYUVTexture(v->tex, NULL, y->y, y->y_pitch, y->u, y->u_pitch, y->v,
				    y->v_pitch)
		       ? -EIO
		       : 0;
}

static void
draw_overlay(struct view *v)
{
	int w, h;
	view_overlay_size(&w, &h);
	if (!v->ovl_tex) {
		v->ovl_tex = SDL_CreateTexture(v->ren, SDL_PIXELFORMAT_RGB24,
					       SDL_TEXTUREACCESS_STREAMING, w, h);
		if (!v->ovl_tex)
			return;
		SDL_SetTextureBlendMode(v->ovl_tex, SDL_BLENDMODE_BLEND);
		SDL_SetTextureAlphaMod(v->ovl_tex, 224);
	}
	struct okvm_canvas cv;
	canvas_init(&cv, w, h);
	struct view_overlay_info in = { .state = &v->st,
					.shown_fps = v->shown_fps,
					.host_key = view_host_key_name(v->o->host_key),
					.message = v->message[0] ? v->message : NULL,
					.recording = v->rec ? v->rec_time : NULL };
	view_overlay_draw(&cv, &in);
	SDL_UpdateTexture(v->ovl_tex, NULL, cv.rgb, w * 3);
	canvas_fini(&cv);
	SDL_Rect r = { 16, 16, w, h };
	SDL_RenderCopy(v->ren, v->ovl_tex, NULL, &r);
}

static void
present(struct view *v)
{
	SDL_SetRenderDrawColor(v->ren, 0, 0, 0, 255);
	SDL_RenderClear(v->ren);
	if (v->tex)
		SDL_RenderCopy(v->ren, v->tex, NULL, &v->dst);
	if (v->overlay)
		draw_overlay(v);
	SDL_RenderPresent(v->ren);
	v->dirty = false;
}

/* Decode straight into the locked RGB texture (the software renderer). */
static int
decode_rgb(struct view *v, const struct okvm_frame *f)
{
	int w, h;
	if (view_decode_size(&v->dec, f->data, f->size, &w, &h))
		return -EBADMSG;
	if (!v->tex || v->tex_w != w || v->tex_h != h) {
		if (v->tex)
			SDL_DestroyTexture(v->tex);
		v->tex = SDL_CreateTexture(v->ren, v->rgb_format, SDL_TEXTUREACCESS_STREAMING, w,
					   h);
		if (!v->tex)
			return -ENOMEM;
		v->tex_w = w;
		v->tex_h = h;
		layout(v);
	}
	void *px;
	int pitch;
	if (SDL_LockTexture(v->tex, NULL, &px, &pitch))
		return -EIO;
	int rc = view_decode_rgb(&v->dec, f->data, f->size, w, h, px, pitch, v->tj_format);
	SDL_UnlockTexture(v->tex);
	return rc;
}

/* The newest frame, if it is new: decode, upload, present. */
static void
show_newest(struct view *v)
{
	struct okvm_frame *f = v->ops->newest_frame(v->ud);
	if (!f)
		return;
	if (f->seq == v->shown_seq && v->shown) {
		v->ops->frame_unref(v->ud, f);
		return;
	}
	uint64_t t0 = okvm_now_us(), t1;
	int rc;
	if (v->rgb_format) {
		rc = decode_rgb(v, f);
		t1 = okvm_now_us();
	} else {
		struct view_yuv y;
		rc = view_decode(&v->dec, f->data, f->size, &y);
		t1 = okvm_now_us();
		if (!rc)
			rc = upload(v, &y);
	}
	if (rc) {
		okvm_log(OKVM_LOG_DEBUG, "view: frame %llu not shown", (unsigned long long)f->seq);
		v->ops->frame_unref(v->ud, f);
		return;
	}
	present(v);
	uint64_t t2 = okvm_now_us();
	if (v->trace)
		fprintf(v->trace, "%llu %llu %llu %llu %llu\n", (unsigned long long)f->seq,
			(unsigned long long)f->ts_us, (unsigned long long)t0,
			(unsigned long long)t1, (unsigned long long)t2);
	if (v->shown)
		v->ops->frame_unref(v->ud, v->shown);
	v->shown = f;
	v->shown_seq = f->seq;
	v->shown_count++;
}

/* ---- title ---- */

static void
update_title(struct view *v)
{
	char t[256];
	const char *hk = view_host_key_name(v->o->host_key);
	int n = snprintf(t, sizeof(t), "okvm view: %s", v->st.unit);
	if (v->st.has_video && !v->st.signal)
		n += snprintf(t + n, sizeof(t) - (size_t)n, " - no signal");
	else if (v->tex_w)
		n += snprintf(t + n, sizeof(t) - (size_t)n, " - %dx%d", v->tex_w, v->tex_h);
	if (v->rec)
		n += snprintf(t + n, sizeof(t) - (size_t)n, " - REC %s", v->rec_time);
	if (v->pasting)
		n += snprintf(t + n, sizeof(t) - (size_t)n, " - pasting %zu/%zu (Esc cancels)",
			      atomic_load(&v->p_done), atomic_load(&v->p_total));
	else if (v->message[0])
		n += snprintf(t + n, sizeof(t) - (size_t)n, " - %s", v->message);
	if (v->relative)
		snprintf(t + n, sizeof(t) - (size_t)n, " - relative mouse, %s leaves", hk);
	else if (v->grabbed)
		snprintf(t + n, sizeof(t) - (size_t)n, " - keyboard grabbed, %s releases", hk);
	if (strcmp(t, v->title)) {
		snprintf(v->title, sizeof(v->title), "%s", t);
		SDL_SetWindowTitle(v->win, t);
	}
}

static void say(struct view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct view *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->message, sizeof(v->message), fmt, ap);
	va_end(ap);
	okvm_log(OKVM_LOG_NOTICE, "view: %s", v->message);
	v->dirty = true;
}

/* ---- grab and mouse modes ---- */

static void
set_grab(struct view *v, bool on)
{
	v->grabbed = on;
	SDL_SetWindowKeyboardGrab(v->win, on ? SDL_TRUE : SDL_FALSE);
	update_title(v);
}

static void
set_relative(struct view *v, bool on)
{
	v->relative = on;
	SDL_SetRelativeMouseMode(on ? SDL_TRUE : SDL_FALSE);
	update_title(v);
}

/* ---- keys ---- */

static bool
is_held(const struct view *v, int sc)
{
	return v->held[sc / 8] & (1u << (sc % 8));
}

static void
set_held(struct view *v, int sc, bool down)
{
	if (down)
		v->held[sc / 8] |= (uint8_t)(1u << (sc % 8));
	else
		v->held[sc / 8] &= (uint8_t) ~(1u << (sc % 8));
}

static void
send_key(struct view *v, int sc, bool down)
{
	const char *code = view_scancode_code(sc);
	if (!code || is_held(v, sc) == down)
		return;
	int rc = v->ops->key(v->ud, code, down);
	if (rc && rc != -ENOSPC)
		okvm_log(OKVM_LOG_DEBUG, "view: key %s: %s", code, okvm_strerror(rc));
	set_held(v, sc, down);
}

/* Every key and button the viewer holds goes up (focus lost, close). Typing goes on. */
static void
release_held(struct view *v)
{
	for (int sc = 0; sc < SDL_NUM_SCANCODES; sc++)
		if (is_held(v, sc))
			send_key(v, sc, false);
	if (v->buttons) {
		v->buttons = 0;
		v->ops->buttons(v->ud, 0);
	}
}

static void
tap(struct view *v, const char *code)
{
	v->ops->key(v->ud, code, true);
	v->ops->key(v->ud, code, false);
}

/* Host and target lock keys agree: the host's state (what the user sees on the keyboard)
 * wins, by tapping the target's key. Done when the window gets focus and once the target's
 * LEDs are first known. */
static void
sync_locks(struct view *v)
{
	if (!v->focused || !v->st.has_input || !v->st.target_connected)
		return;
	SDL_Keymod m = SDL_GetModState();
	if (!!(m & KMOD_CAPS) != !!(v->st.leds & OKVM_LED_CAPS))
		tap(v, "CapsLock");
	if (!!(m & KMOD_NUM) != !!(v->st.leds & OKVM_LED_NUM))
		tap(v, "NumLock");
	if (!!(m & KMOD_SCROLL) != !!(v->st.leds & OKVM_LED_SCROLL))
		tap(v, "ScrollLock");
	v->lock_synced = true;
}

static void
paste(struct view *v)
{
	if (v->pasting) {
		v->ops->release_all(v->ud); /* stops the typing job */
		memset(v->held, 0, sizeof(v->held));
		v->buttons = 0;
		return;
	}
	char *text = SDL_GetClipboardText();
	if (!text || !*text) {
		say(v, "paste: the clipboard has no text");
		SDL_free(text);
		return;
	}
	atomic_store(&v->p_done, 0);
	atomic_store(&v->p_total, 0);
	atomic_store(&v->p_end, false);
	int rc = v->ops->type(v->ud, text, strlen(text), v->o->layout, 0, on_progress, v);
	if (rc == -OKVM_E_UNMAPPABLE || rc == -EINVAL)
		say(v, "paste: the clipboard has text layout %s cannot type", v->o->layout);
	else if (rc)
		say(v, "paste: %s", okvm_strerror(rc));
	else
		v->pasting = true, v->message[0] = 0;
	SDL_free(text);
	update_title(v);
}

static void
paste_progress(struct view *v)
{
	atomic_store(&v->progress_pending, false);
	if (atomic_load(&v->p_end)) {
		int err = atomic_load(&v->p_err);
		v->pasting = false;
		if (err == -ECANCELED)
			say(v, "paste cancelled at %zu/%zu", atomic_load(&v->p_done),
			    atomic_load(&v->p_total));
		else if (err)
			say(v, "paste: %s", okvm_strerror(err));
		else
			say(v, "pasted %zu characters", atomic_load(&v->p_total));
	}
	update_title(v);
}

static void
screenshot(struct view *v)
{
	struct okvm_frame *f = v->ops->newest_frame(v->ud);
	if (!f) {
		say(v, "screenshot: no frame yet");
		return;
	}
	char path[4096], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	snprintf(path, sizeof(path), "%s/okvm-%s-%llu.jpg", v->o->shot_dir ? v->o->shot_dir : ".",
		 stamp, (unsigned long long)f->seq);
	FILE *out = fopen(path, "wb");
	bool ok = out && fwrite(f->data, 1, f->size, out) == f->size;
	if (out && fclose(out))
		ok = false;
	v->ops->frame_unref(v->ud, f);
	if (ok)
		say(v, "screenshot %.60s", path);
	else
		say(v, "screenshot: cannot write %.50s", path);
}

static void
usb_toggle(struct view *v)
{
	enum okvm_usb_dir to = v->st.usb_known && v->st.usb == OKVM_USB_TO_HOST ? OKVM_USB_TO_TARGET
										: OKVM_USB_TO_HOST;
	int rc = v->ops->usb_switch(v->ud, to);
	if (rc)
		say(v, "USB switch: %s", okvm_strerror(rc));
	else
		say(v, "USB port to the %s", to == OKVM_USB_TO_HOST ? "host" : "target");
}

/* "m:ss" (or "h:mm:ss") since the recording started. */
static void
rec_clock(struct view *v)
{
	uint64_t s = (okvm_now_us() - v->rec_t0_us) / 1000000;
	if (s >= 3600)
		snprintf(v->rec_time, sizeof(v->rec_time), "%u:%02u:%02u", (unsigned)(s / 3600),
			 (unsigned)(s / 60 % 60), (unsigned)(s % 60));
	else
		snprintf(v->rec_time, sizeof(v->rec_time), "%u:%02u", (unsigned)(s / 60),
			 (unsigned)(s % 60));
}

static void
rec_start(struct view *v)
{
	struct view_rec_config cfg = { .cap = v->cap,
				       .dir = v->o->rec_dir,
				       .audio = v->audio != NULL,
				       .done = on_rec_done,
				       .done_ud = v };
	int rc = view_rec_start(&cfg, &v->rec);
	if (rc) {
		v->rec = NULL;
		if (rc == -ENODEV)
			say(v, "record: this unit has no video");
		else if (rc == -ELIBACC) {
			say(v, "record: FFmpeg's libraries are missing (see the log)");
			okvm_log(OKVM_LOG_ERROR, "view: record: %s", av_record_load_error());
		} else
			say(v, "record: cannot create a file in %.24s: %s",
			    v->o->rec_dir ? v->o->rec_dir : ".", okvm_strerror(rc));
		return;
	}
	view_audio_set_rec(v->audio, v->rec);
	v->rec_t0_us = okvm_now_us();
	rec_clock(v);
	v->message[0] = 0;
	okvm_log(OKVM_LOG_NOTICE, "view: recording %s", view_rec_path(v->rec));
	printf("okvm: recording %s\n", view_rec_path(v->rec));
	fflush(stdout);
	update_title(v);
}

/* Finish the file (trailer), say what is in it. */
static void
rec_stop(struct view *v)
{
	if (!v->rec)
		return;
	view_audio_set_rec(v->audio, NULL);
	struct view_rec_result r;
	int rc = view_rec_stop(v->rec, &r);
	v->rec = NULL;
	atomic_store(&v->rec_pending, false);
	const char *base = strrchr(r.path, '/') ? strrchr(r.path, '/') + 1 : r.path;
	if (rc == -ENODATA)
		say(v, "record: no picture came; nothing recorded");
	else if (rc == -ENODEV)
		say(v, "record: the video went away; %.40s is complete up to there", base);
	else if (rc)
		say(v, "record: %.30s: %s (%llu frames in it)", base, okvm_strerror(rc),
		    (unsigned long long)r.frames);
	else
		say(v, "recorded %.40s, %.1f s", base, r.seconds);
	if (rc != -ENODATA)
		printf("okvm: recorded %s: %llu frames, %.3f s, %llu missed%s\n", r.path,
		       (unsigned long long)r.frames, r.seconds, (unsigned long long)r.missed,
		       rc ? " (ended early)" : "");
	fflush(stdout);
	update_title(v);
}

static void
rec_toggle(struct view *v)
{
	if (v->rec)
		rec_stop(v);
	else
		rec_start(v);
}

static void
set_fullscreen(struct view *v, bool on)
{
	v->fullscreen = on;
	SDL_SetWindowFullscreen(v->win, on ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0);
}

/* A viewer command (host key + key, or a key while the overlay shows). true: it was one. */
static bool
command(struct view *v, int sc, bool *quit)
{
	switch (sc) {
	case SDL_SCANCODE_V: paste(v); break;
	case SDL_SCANCODE_O:
		v->overlay = !v->overlay;
		v->dirty = true;
		break;
	case SDL_SCANCODE_F: set_fullscreen(v, !v->fullscreen); break;
	case SDL_SCANCODE_Z:
		v->scale = v->scale == VIEW_SCALE_FIT ? VIEW_SCALE_1TO1 : VIEW_SCALE_FIT;
		layout(v);
		v->dirty = true;
		break;
	case SDL_SCANCODE_M: set_relative(v, !v->relative); break;
	case SDL_SCANCODE_S: screenshot(v); break;
	case SDL_SCANCODE_R: rec_toggle(v); break;
	case SDL_SCANCODE_U: usb_toggle(v); break;
	case SDL_SCANCODE_D:
	case SDL_SCANCODE_DELETE:
		v->ops->combo(v->ud, "ctrl+alt+delete");
		say(v, "sent Ctrl+Alt+Del");
		break;
	case SDL_SCANCODE_Q: *quit = true; break;
	default: return false;
	}
	return true;
}

/* The keys that act without the host key while the overlay shows (it lists them). */
static bool
overlay_key(int sc)
{
	return sc == SDL_SCANCODE_S || sc == SDL_SCANCODE_U || sc == SDL_SCANCODE_D ||
	       sc == SDL_SCANCODE_V || sc == SDL_SCANCODE_F || sc == SDL_SCANCODE_O ||
	       sc == SDL_SCANCODE_R;
}

static void
host_key_alone(struct view *v)
{
	if (v->relative || v->grabbed) {
		if (v->relative)
			set_relative(v, false);
		set_grab(v, false);
		v->user_released = true;
	} else {
		v->user_released = false;
		set_grab(v, true);
	}
}

static void
on_key(struct view *v, const SDL_KeyboardEvent *k, bool *quit)
{
	int sc = k->keysym.scancode;
	bool down = k->type == SDL_KEYDOWN;
	okvm_log(OKVM_LOG_DEBUG, "view: key %d %s%s (host %s)", sc, down ? "down" : "up",
		 k->repeat ? " repeat" : "", v->host_down ? "held" : "up");
	if (sc == v->o->host_key) {
		if (down && !k->repeat) {
			v->host_down = true;
			v->host_used = false;
		} else if (!down) {
			if (v->host_down && !v->host_used)
				host_key_alone(v);
			v->host_down = false;
		}
		return;
	}
	if (down && v->host_down) {
		v->host_used = true;
		if (!k->repeat)
			command(v, sc, quit);
		return;
	}
	if (down && sc == SDL_SCANCODE_ESCAPE && (v->pasting || v->overlay)) {
		if (v->pasting && !k->repeat)
			paste(v);
		else
			v->overlay = false, v->dirty = true;
		return;
	}
	if (down && v->overlay && overlay_key(sc) && !is_held(v, sc)) {
		if (!k->repeat)
			command(v, sc, quit);
		return;
	}
	if (down && k->repeat)
		return;
	send_key(v, sc, down);
}

/* ---- mouse ---- */

/* Window coordinates -> fraction of the picture, letterbox clamped to its edge. */
static void
to_frame(struct view *v, int wx, int wy, double *fx, double *fy)
{
	int ww, wh, ow, oh;
	SDL_GetWindowSize(v->win, &ww, &wh);
	SDL_GetRendererOutputSize(v->ren, &ow, &oh);
	/* frame pixel p of a W-wide picture is p / W, chip units p * 4096 / W, as CH9329-P 2.2.4
	 * and the official app scale (docs/hardware.md 2.6) */
	double px = (double)wx * ow / (ww ? ww : 1), py = (double)wy * oh / (wh ? wh : 1);
	double x = v->dst.w ? (px - v->dst.x) / v->dst.w : 0.5;
	double y = v->dst.h ? (py - v->dst.y) / v->dst.h : 0.5;
	*fx = fmin(1, fmax(0, x));
	*fy = fmin(1, fmax(0, y));
}

static uint8_t
button_bit(Uint8 b)
{
	switch (b) {
	case SDL_BUTTON_LEFT: return 0x01;
	case SDL_BUTTON_RIGHT: return 0x02;
	case SDL_BUTTON_MIDDLE: return 0x04;
	case SDL_BUTTON_X1: return 0x08; /* back */
	case SDL_BUTTON_X2: return 0x10; /* forward */
	default: return 0;
	}
}

static void
move_abs(struct view *v, int x, int y)
{
	double fx, fy;
	to_frame(v, x, y, &fx, &fy);
	v->ops->mouse_abs(v->ud, fx, fy, v->buttons);
}

static void
on_button(struct view *v, const SDL_MouseButtonEvent *b)
{
	bool down = b->type == SDL_MOUSEBUTTONDOWN;
	if (down && !v->grabbed && v->o->grab && v->focused)
		set_grab(v, true),
			v->user_released = false; /* a click captures, as in VirtualBox */
	uint8_t bit = button_bit(b->button);
	v->buttons = down ? v->buttons | bit : v->buttons & (uint8_t)~bit;
	if (v->relative)
		v->ops->buttons(v->ud, v->buttons);
	else
		move_abs(v, b->x, b->y);
}

static void
on_wheel(struct view *v, const SDL_MouseWheelEvent *w)
{
	int dy = w->direction == SDL_MOUSEWHEEL_FLIPPED ? -w->y : w->y;
	if (dy)
		v->ops->wheel(v->ud, -dy, 0); /* SDL: + away from the user (up); backend: + down */
}

/* ---- window ---- */

static void
set_visible(struct view *v, bool vis)
{
	v->visible = vis;
	want(v, vis);
	if (vis)
		v->dirty = true;
}

static void
on_window(struct view *v, const SDL_WindowEvent *w)
{
	switch (w->event) {
	case SDL_WINDOWEVENT_HIDDEN:
	case SDL_WINDOWEVENT_MINIMIZED: set_visible(v, false); break;
	case SDL_WINDOWEVENT_SHOWN:
	case SDL_WINDOWEVENT_RESTORED:
	case SDL_WINDOWEVENT_MAXIMIZED:
	case SDL_WINDOWEVENT_EXPOSED: set_visible(v, true); break;
	case SDL_WINDOWEVENT_SIZE_CHANGED:
		layout(v);
		v->dirty = true;
		break;
	case SDL_WINDOWEVENT_FOCUS_GAINED:
		v->focused = true;
		if (v->o->grab && !v->user_released)
			set_grab(v, true);
		sync_locks(v);
		break;
	case SDL_WINDOWEVENT_FOCUS_LOST:
		v->focused = false;
		v->host_down = false;
		release_held(v);
		break;
	default: break;
	}
}

static void
on_state_event(struct view *v)
{
	atomic_store(&v->state_pending, false);
	bool was = v->st.target_connected;
	v->ops->get_state(v->ud, &v->st);
	if ((!v->lock_synced || !was) && v->st.target_connected)
		sync_locks(v);
	if (v->overlay)
		v->dirty = true;
	update_title(v);
}

static void
tick(struct view *v)
{
	uint64_t now = okvm_now_us();
	if (now - v->fps_t0_us < 1000000)
		return;
	v->shown_fps = v->shown_count * 1e6 / (double)(now - v->fps_t0_us);
	v->shown_count = 0;
	v->fps_t0_us = now;
	v->ops->get_state(v->ud, &v->st);
	if (v->rec)
		rec_clock(v);
	update_title(v);
	if (v->overlay)
		v->dirty = true;
}

/* One event. Returns false to quit. */
static bool
handle(struct view *v, const SDL_Event *e)
{
	bool quit = false;
	if (e->type == v->ev_base) {
		atomic_store(&v->frame_pending, false);
		if (v->visible)
			show_newest(v);
		return true;
	}
	if (e->type == v->ev_base + 1) {
		on_state_event(v);
		return true;
	}
	if (e->type == v->ev_base + 2) {
		paste_progress(v);
		return true;
	}
	if (e->type == v->ev_base + 3) {
		if (v->rec && view_rec_ended(v->rec))
			rec_stop(v); /* ended by itself: finish the file, say why */
		return true;
	}
	switch (e->type) {
	case SDL_QUIT: return false;
	case SDL_WINDOWEVENT: on_window(v, &e->window); break;
	case SDL_KEYDOWN:
	case SDL_KEYUP: on_key(v, &e->key, &quit); break;
	case SDL_MOUSEMOTION:
		if (v->relative && (e->motion.xrel || e->motion.yrel))
			v->ops->rel(v->ud, e->motion.xrel, e->motion.yrel, v->buttons);
		else if (v->relative)
			break; /* SDL's warp back to the centre: no motion */
		else
			move_abs(v, e->motion.x, e->motion.y);
		break;
	case SDL_MOUSEBUTTONDOWN:
	case SDL_MOUSEBUTTONUP: on_button(v, &e->button); break;
	case SDL_MOUSEWHEEL: on_wheel(v, &e->wheel); break;
	default: break;
	}
	return !quit;
}

static int
open_window(struct view *v)
{
	SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1"); /* okvm's own SIGINT/SIGTERM handlers */
	SDL_SetHint(SDL_HINT_VIDEO_ALLOW_SCREENSAVER, "1");
	SDL_SetHint(SDL_HINT_MOUSE_FOCUS_CLICKTHROUGH, "1");
	/* The software renderer's window surface straight to the display (X11: MIT-SHM), not
	 * through a GL renderer of SDL's own, which on a machine without a GPU is Mesa's software GL
	 * (about 125 MB more RSS, and a second copy per frame). GPU renderers never use it. The
	 * environment variable still overrides. */
	SDL_SetHint(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0");
	if (SDL_Init(SDL_INIT_VIDEO | SDL_INIT_EVENTS)) {
		okvm_log(OKVM_LOG_ERROR, "view: no display: %s", SDL_GetError());
		return -ENXIO;
	}
	v->ev_base = SDL_RegisterEvents(4);
	SDL_SetYUVConversionMode(SDL_YUV_CONVERSION_JPEG); /* JFIF: full-range BT.601 */
	/* The window starts at the picture's size: wait a little for the first frame. */
	want(v, true);
	int w = 1280, h = 720;
	for (int i = 0; i < FIRST_FRAME_MS / 10; i++) {
		struct okvm_frame *f = v->ops->newest_frame(v->ud);
		if (f) {
			w = f->width, h = f->height;
			v->ops->frame_unref(v->ud, f);
			break;
		}
		SDL_Delay(10);
	}
	SDL_DisplayMode dm;
	if (SDL_GetDesktopDisplayMode(0, &dm) == 0 && (w > dm.w * 9 / 10 || h > dm.h * 9 / 10)) {
		double k = fmin(dm.w * 0.9 / w, dm.h * 0.9 / h);
		w = (int)(w * k), h = (int)(h * k);
	}
	Uint32 flags = SDL_WINDOW_RESIZABLE | SDL_WINDOW_ALLOW_HIGHDPI;
	if (v->o->fullscreen)
		flags |= SDL_WINDOW_FULLSCREEN_DESKTOP;
	v->win = SDL_CreateWindow("okvm view", SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, w, h,
				  flags);
	if (v->win)
		v->ren = SDL_CreateRenderer(v->win, -1, 0);
	if (!v->win || !v->ren) {
		okvm_log(OKVM_LOG_ERROR, "view: cannot open a window: %s", SDL_GetError());
		return -ENXIO;
	}
	SDL_RendererInfo ri;
	if (SDL_GetRendererInfo(v->ren, &ri))
		ri.name = "?";
	/* No GPU (SDL's software renderer): SDL would turn a YUV texture into RGB itself, so the
	 * frame is decoded to RGB in the window's own pixel layout instead (decode.c). */
	Uint32 wf = SDL_GetWindowPixelFormat(v->win);
	if (!strcmp(ri.name, "software") &&
	    (wf == SDL_PIXELFORMAT_RGB888 || wf == SDL_PIXELFORMAT_ARGB8888))
		v->rgb_format = SDL_PIXELFORMAT_RGB888, v->tj_format = TJPF_BGRX;
	else if (!strcmp(ri.name, "software") &&
		 (wf == SDL_PIXELFORMAT_BGR888 || wf == SDL_PIXELFORMAT_ABGR8888))
		v->rgb_format = SDL_PIXELFORMAT_BGR888, v->tj_format = TJPF_RGBX;
	okvm_log(OKVM_LOG_INFO, "view: %s renderer on %s, window %dx%d, frames to %s", ri.name,
		 SDL_GetCurrentVideoDriver(), w, h, v->rgb_format ? "RGB" : "YUV");
	v->fullscreen = v->o->fullscreen;
	return 0;
}

void
view_opts_init(struct view_opts *o)
{
	*o = (struct view_opts){ .scale = VIEW_SCALE_FIT,
				 .host_key = SDL_SCANCODE_RCTRL,
				 .grab = true,
				 .audio = true,
				 .layout = "us" };
}

static void
close_window(struct view *v)
{
	if (v->ovl_tex)
		SDL_DestroyTexture(v->ovl_tex);
	if (v->tex)
		SDL_DestroyTexture(v->tex);
	if (v->ren)
		SDL_DestroyRenderer(v->ren);
	if (v->win)
		SDL_DestroyWindow(v->win);
	SDL_Quit();
}

static void
loop(struct view *v, volatile int *stop)
{
	SDL_Event e;
	bool run = true;
	while (run && !*stop) {
		if (SDL_WaitEventTimeout(&e, WAIT_MS)) {
			do
				run = handle(v, &e);
			while (run && SDL_PollEvent(&e));
		}
		if (v->dirty && v->visible)
			present(v);
		tick(v);
	}
}

int
view_run(const struct view_opts *o, struct serve_backend *be, volatile int *stop)
{
	struct view *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->o = o;
	v->ops = be->ops;
	v->ud = be->ud;
	v->cap = be->capture;
	v->scale = o->scale;
	v->fps_t0_us = okvm_now_us();
	/* bench/view.py and the tests: one line per presented frame */
	const char *trace = getenv("OKVM_VIEW_TRACE");
	if (trace && *trace && (v->trace = fopen(trace, "w")))
		setvbuf(v->trace, NULL, _IOLBF, 0);
	int rc = open_window(v);
	if (rc == 0) {
		view_decoder_init(&v->dec);
		v->ops->get_state(v->ud, &v->st);
		v->ops->set_notify(v->ud, on_frame, on_state, v);
		set_visible(v, !(SDL_GetWindowFlags(v->win) &
				 (SDL_WINDOW_HIDDEN | SDL_WINDOW_MINIMIZED)));
		if (v->visible)
			show_newest(v);
		update_title(v);
		if (o->relative)
			set_relative(v, true);
		if (o->audio && o->audio_src)
			v->audio = view_audio_start(o->audio_src);
		printf("okvm: viewing %s\n", v->st.unit);
		fflush(stdout);
		loop(v, stop);
		rec_stop(v); /* the trailer: a complete file on close and on signals */
		v->ops->release_all(v->ud); /* every key and button up, typing stopped */
		view_audio_stop(v->audio);
		v->ops->set_notify(v->ud, NULL, NULL, NULL);
		if (v->shown)
			v->ops->frame_unref(v->ud, v->shown);
		view_decoder_fini(&v->dec);
	}
	want(v, false);
	close_window(v);
	if (v->trace)
		fclose(v->trace);
	free(v);
	return rc;
}
