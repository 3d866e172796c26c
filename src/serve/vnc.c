/*
 * DESIGN: a VNC server beside the web server (`okvm serve --vnc ADDR:PORT`, docs/serve.md), on
 * LibVNCServer, so that any VNC client drives the target.
 *
 * Threads. LibVNCServer runs its own (rfbRunEventLoop in the background: a listener plus one
 * thread per client). Its input callbacks only push events onto a locked queue here and wake the
 * service thread (lws_cancel_service), which applies them through the backend as every other
 * input is (vnc_drain). The picture: while at least one VNC client is connected the server
 * wants frames; the service thread hands the newest device frame to the okvm-vnc thread (newest
 * wins), which decodes it to RGBX into a back buffer and compares it with the framebuffer the
 * clients are sent from in 32x32 blocks: only changed blocks are copied over and marked modified,
 * so a still screen costs one decode per device frame and sends nothing. LibVNCServer encodes
 * what it sends (Tight with JPEG, ZRLE, ... as the client asks). No client: no decoding.
 *
 * Keys. A keysym for a character is pressed as that character is typed on the target's layout
 * (the backend's combo, which finds its key and modifiers: '@' is AltGr+Q on de), with any Shift
 * the client holds lifted around it; with Ctrl, Alt or Super held it is the key at that
 * character's place, as shortcuts are. Other keysyms (Return, F1, arrows, modifiers) map to the
 * key by name. Pointer: absolute, the five buttons, wheel notches from buttons 4-7. Clipboard text
 * from a client is typed on the target.
 *
 * Security as the web server's: loopback needs no password; any other address needs
 * `[vnc] password` (VNC authentication, whose DES challenge uses the first 8 characters), and
 * failures count per address as logins do (docs/serve.md "Security"). LibVNCServer also answers
 * WebSocket handshakes on the same port (noVNC), with TLS (wss://) when it has a certificate: the
 * web server's. A web page in any browser on this host could open ws://127.0.0.1:5900 (the
 * library checks no Origin), so without a password a WebSocket client is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <rfb/keysym.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "okvm/keymap.h"
#include "okvm/log.h"
#include "lib/xalloc.h"
#include "serve/internal.h"

#define VNC_BLOCK 32
#define VNC_QUEUE 256
#define VNC_FAIL_MAX 5      /* failed passwords from one address, then ... */
#define VNC_LOCKOUT_S 60    /* ... it is refused this long */
#define VNC_FAIL_TRACKED 64 /* addresses remembered */

enum vnc_ev_type { VE_KEY, VE_PTR, VE_TEXT, VE_GONE };

struct vnc_ev {
	enum vnc_ev_type type;
	bool down;
	uint32_t keysym;
	int x, y, mask, w, h;
	char *text;
};

struct vnc_fail {
	char addr[64];
	unsigned n;
	uint64_t until_us;
};

struct serve_vnc {
	struct serve *s;
	rfbScreenInfoPtr screen;
	char *password_list[2]; /* rfbCheckPasswordByList's NULL-terminated list */
	bool need_password;
	char *ssl_cert, *ssl_key; /* the web server's TLS pair, for wss:// clients */
	atomic_int clients;
	/* events from LibVNCServer's threads (lock) */
	pthread_mutex_t lock;
	struct vnc_ev q[VNC_QUEUE];
	unsigned qhead, qlen;
	uint64_t dropped;
	struct vnc_fail fails[VNC_FAIL_TRACKED];
	/* the decoder thread (lock + cond) */
	pthread_t thread;
	pthread_cond_t cond;
	struct okvm_frame *in;
	bool stop, drop; /* drop: the last client left, give the pixels' pages back */
	tjhandle dec;
	uint8_t *back;
	int fb_w, fb_h;
	_Atomic uint64_t blocks_sent, frames_decoded;
	bool has_thread;
	/* service thread only */
	struct okvm_keymap *km; /* the target's layout ([serve] layout / --layout) */
	int last_buttons;
	bool shift_l, shift_r, ctrl, alt, super, altgr; /* held by clients */
};

/* ---- what LibVNCServer's threads call ---- */

static void
push(struct serve_vnc *v, const struct vnc_ev *ev)
{
	pthread_mutex_lock(&v->lock);
	if (v->qlen == VNC_QUEUE) {
		v->dropped++;
		free(ev->text);
	} else {
		v->q[(v->qhead + v->qlen) % VNC_QUEUE] = *ev;
		v->qlen++;
	}
	pthread_mutex_unlock(&v->lock);
	lws_cancel_service(v->s->ctx);
}

static void
on_key(rfbBool down, rfbKeySym sym, rfbClientPtr cl)
{
	struct serve_vnc *v = cl->screen->screenData;
	push(v, &(struct vnc_ev){ .type = VE_KEY, .down = down, .keysym = (uint32_t)sym });
}

static void
on_pointer(int mask, int x, int y, rfbClientPtr cl)
{
	struct serve_vnc *v = cl->screen->screenData;
	push(v, &(struct vnc_ev){ .type = VE_PTR,
				  .mask = mask,
				  .x = x,
				  .y = y,
				  .w = cl->screen->width,
				  .h = cl->screen->height });
	rfbDefaultPtrAddEvent(mask, x, y, cl);
}

/* Latin-1 (the classic cut text) to UTF-8. */
static char *
latin1_to_utf8(const char *s, int len)
{
	char *o = xmalloc((size_t)len * 2 + 1), *p = o;
	for (int i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80) {
			*p++ = (char)c;
		} else {
			*p++ = (char)(0xC0 | (c >> 6));
			*p++ = (char)(0x80 | (c & 0x3F));
		}
	}
	*p = 0;
	return o;
}

static void
on_cut_text(char *str, int len, rfbClientPtr cl)
{
	struct serve_vnc *v = cl->screen->screenData;
	if (len <= 0 || len > 1 << 20)
		return;
	push(v, &(struct vnc_ev){ .type = VE_TEXT, .text = latin1_to_utf8(str, len) });
}

static void
on_cut_text_utf8(char *str, int len, rfbClientPtr cl)
{
	struct serve_vnc *v = cl->screen->screenData;
	if (len <= 0 || len > 1 << 20)
		return;
	char *t = xmalloc((size_t)len + 1);
	memcpy(t, str, (size_t)len);
	t[len] = 0;
	push(v, &(struct vnc_ev){ .type = VE_TEXT, .text = t });
}

static void
on_gone(rfbClientPtr cl)
{
	struct serve_vnc *v = cl->screen->screenData;
	/* LibVNCServer 0.9.14 never frees a WebSocket client's context (45 KB of fixed buffers);
	 * nothing reads it after this hook. */
	free(cl->wsctx);
	cl->wsctx = NULL;
	int left = atomic_fetch_sub(&v->clients, 1) - 1;
	okvm_log(OKVM_LOG_INFO, "serve: VNC client %s left (%d left)", cl->host, left);
	push(v, &(struct vnc_ev){ .type = VE_GONE });
}

static struct vnc_fail *
fail_slot(struct serve_vnc *v, const char *addr, bool make)
{
	struct vnc_fail *free_slot = NULL, *oldest = &v->fails[0];
	for (int i = 0; i < VNC_FAIL_TRACKED; i++) {
		struct vnc_fail *f = &v->fails[i];
		if (f->addr[0] && !strcmp(f->addr, addr))
			return f;
		if (!f->addr[0] && !free_slot)
			free_slot = f;
		if (f->until_us < oldest->until_us)
			oldest = f;
	}
	if (!make)
		return NULL;
	struct vnc_fail *f = free_slot ? free_slot : oldest;
	memset(f, 0, sizeof(*f));
	snprintf(f->addr, sizeof(f->addr), "%s", addr);
	return f;
}

static rfbBool
check_password(rfbClientPtr cl, const char *response, int len)
{
	struct serve_vnc *v = cl->screen->screenData;
	uint64_t now = serve_now_us();
	pthread_mutex_lock(&v->lock);
	struct vnc_fail *f = fail_slot(v, cl->host, false);
	bool locked = f && f->until_us > now;
	pthread_mutex_unlock(&v->lock);
	if (locked) {
		okvm_log(OKVM_LOG_WARN, "serve: VNC login from %s refused: locked out", cl->host);
		return FALSE;
	}
	rfbBool ok = rfbCheckPasswordByList(cl, response, len);
	pthread_mutex_lock(&v->lock);
	f = fail_slot(v, cl->host, !ok);
	if (ok && f)
		memset(f, 0, sizeof(*f));
	else if (!ok && ++f->n >= VNC_FAIL_MAX) {
		f->until_us = now + (uint64_t)VNC_LOCKOUT_S * 1000000;
		f->n = 0;
	}
	pthread_mutex_unlock(&v->lock);
	okvm_log(ok ? OKVM_LOG_INFO : OKVM_LOG_WARN, "serve: VNC password from %s %s", cl->host,
		 ok ? "accepted" : "wrong");
	return ok;
}

static enum rfbNewClientAction
on_new_client(rfbClientPtr cl)
{
	struct serve_vnc *v = cl->screen->screenData;
	if (cl->wsctx && !v->need_password) {
		/* The version banner is out, nothing else: no message of it is read. */
		okvm_log(OKVM_LOG_WARN,
			 "serve: VNC: refused a WebSocket client from %s: without [vnc] password "
			 "any web page open on this host could drive the target this way; set a "
			 "password for noVNC and other WebSocket clients (docs/serve.md, VNC)",
			 cl->host);
		/* LibVNCServer 0.9.14 frees a refused client's WebSocket context nowhere (a plain
		 * calloc of fixed buffers); the close that follows only checks it for NULL. */
		free(cl->wsctx);
		cl->wsctx = NULL;
		return RFB_CLIENT_REFUSE;
	}
	/* The request path of a WebSocket client, read by nobody after the handshake: 0.9.14's
	 * rfbCloseClient frees it without clearing it, and a client closed by its own thread is
	 * closed again by rfbShutdownServer when okvm stops (a double free). */
	free(cl->wspath);
	cl->wspath = NULL;
	cl->clientGoneHook = on_gone;
	int n = atomic_fetch_add(&v->clients, 1) + 1;
	okvm_log(OKVM_LOG_INFO, "serve: VNC client %s (%d connected)", cl->host, n);
	lws_cancel_service(v->s->ctx); /* the service thread starts wanting frames */
	return RFB_CLIENT_ACCEPT;
}

/* ---- the decoder thread ---- */

/* Copy the blocks of back that differ from the framebuffer and mark them. */
static void
update_blocks(struct serve_vnc *v)
{
	int w = v->fb_w, h = v->fb_h;
	size_t stride = (size_t)w * 4;
	uint8_t *fb = (uint8_t *)v->screen->frameBuffer;
	for (int by = 0; by < h; by += VNC_BLOCK) {
		int bh = by + VNC_BLOCK <= h ? VNC_BLOCK : h - by;
		int run_start = -1;
		for (int bx = 0; bx <= w; bx += VNC_BLOCK) {
			bool changed = false;
			int bw = bx + VNC_BLOCK <= w ? VNC_BLOCK : w - bx;
			for (int y = by; bx < w && y < by + bh && !changed; y++) {
				size_t o = (size_t)y * stride + (size_t)bx * 4;
				changed = memcmp(fb + o, v->back + o, (size_t)bw * 4) != 0;
			}
			if (changed) {
				for (int y = by; y < by + bh; y++) {
					size_t o = (size_t)y * stride + (size_t)bx * 4;
					memcpy(fb + o, v->back + o, (size_t)bw * 4);
				}
				v->blocks_sent++;
				if (run_start < 0)
					run_start = bx;
			}
			if ((!changed || bx + VNC_BLOCK > w) && run_start >= 0) {
				int end = changed ? bx + bw : bx;
				rfbMarkRectAsModified(v->screen, run_start, by, end, by + bh);
				run_start = -1;
			}
		}
	}
}

static void
decode_one(struct serve_vnc *v, struct okvm_frame *f)
{
	int w, h, sub, cs;
	if (tjDecompressHeader3(v->dec, f->data, (unsigned long)f->size, &w, &h, &sub, &cs))
		return;
	if (w != v->fb_w || h != v->fb_h) {
		/* A new size: a new framebuffer (LibVNCServer tells the clients). */
		char *fb = xcalloc((size_t)w * h, 4);
		char *old = v->screen->frameBuffer;
		rfbNewFramebuffer(v->screen, fb, w, h, 8, 3, 4);
		free(old);
		free(v->back);
		v->back = xmalloc((size_t)w * h * 4);
		v->fb_w = w;
		v->fb_h = h;
	}
	if (tjDecompress2(v->dec, f->data, (unsigned long)f->size, v->back, w, 0, h, TJPF_RGBX,
			  TJFLAG_FASTDCT) &&
	    tjGetErrorCode(v->dec) == TJERR_FATAL)
		return;
	v->frames_decoded++;
	update_blocks(v);
}

/* Hand the whole pages of [p, p + n) back to the system; they read as zeros when next touched. */
static void
drop_pages(void *p, size_t n)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + n) & ~(page - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

static void *
vnc_thread(void *arg)
{
	struct serve_vnc *v = arg;
	pthread_setname_np(pthread_self(), "okvm-vnc");
	pthread_mutex_lock(&v->lock);
	for (;;) {
		while (!v->in && !v->stop && !v->drop)
			pthread_cond_wait(&v->cond, &v->lock);
		if (v->stop)
			break;
		if (v->drop && !v->in) {
			/* Nobody watches: the framebuffer and the back buffer (w x h x 4 each) go; the
			 * next client's first frame is all changed blocks against black. */
			v->drop = false;
			if (!atomic_load(&v->clients)) {
				size_t n = (size_t)v->fb_w * v->fb_h * 4;
				drop_pages(v->screen->frameBuffer, n);
				drop_pages(v->back, n);
			}
			continue;
		}
		struct okvm_frame *f = v->in;
		v->in = NULL;
		pthread_mutex_unlock(&v->lock);
		decode_one(v, f);
		okvm_frame_unref(f);
		pthread_mutex_lock(&v->lock);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

/* ---- the service thread ---- */

/* Keysyms that are keys, not characters: to their KeyboardEvent.code. */
static const struct {
	uint32_t sym;
	const char *code;
} named_keys[] = {
	{ XK_BackSpace, "Backspace" },
	{ XK_Tab, "Tab" },
	{ XK_ISO_Left_Tab, "Tab" },
	{ XK_Return, "Enter" },
	{ XK_KP_Enter, "NumpadEnter" },
	{ XK_Escape, "Escape" },
	{ XK_Delete, "Delete" },
	{ XK_Insert, "Insert" },
	{ XK_Home, "Home" },
	{ XK_End, "End" },
	{ XK_Page_Up, "PageUp" },
	{ XK_Page_Down, "PageDown" },
	{ XK_Left, "ArrowLeft" },
	{ XK_Right, "ArrowRight" },
	{ XK_Up, "ArrowUp" },
	{ XK_Down, "ArrowDown" },
	{ XK_Shift_L, "ShiftLeft" },
	{ XK_Shift_R, "ShiftRight" },
	{ XK_Control_L, "ControlLeft" },
	{ XK_Control_R, "ControlRight" },
	{ XK_Alt_L, "AltLeft" },
	{ XK_Alt_R, "AltRight" },
	{ XK_Meta_L, "MetaLeft" },
	{ XK_Meta_R, "MetaRight" },
	{ XK_Super_L, "MetaLeft" },
	{ XK_Super_R, "MetaRight" },
	{ XK_ISO_Level3_Shift, "AltRight" },
	{ XK_Mode_switch, "AltRight" },
	{ XK_Caps_Lock, "CapsLock" },
	{ XK_Num_Lock, "NumLock" },
	{ XK_Scroll_Lock, "ScrollLock" },
	{ XK_Print, "PrintScreen" },
	{ XK_Pause, "Pause" },
	{ XK_Menu, "ContextMenu" },
	{ XK_F1, "F1" },
	{ XK_F2, "F2" },
	{ XK_F3, "F3" },
	{ XK_F4, "F4" },
	{ XK_F5, "F5" },
	{ XK_F6, "F6" },
	{ XK_F7, "F7" },
	{ XK_F8, "F8" },
	{ XK_F9, "F9" },
	{ XK_F10, "F10" },
	{ XK_F11, "F11" },
	{ XK_F12, "F12" },
	{ XK_KP_0, "Numpad0" },
	{ XK_KP_1, "Numpad1" },
	{ XK_KP_2, "Numpad2" },
	{ XK_KP_3, "Numpad3" },
	{ XK_KP_4, "Numpad4" },
	{ XK_KP_5, "Numpad5" },
	{ XK_KP_6, "Numpad6" },
	{ XK_KP_7, "Numpad7" },
	{ XK_KP_8, "Numpad8" },
	{ XK_KP_9, "Numpad9" },
	{ XK_KP_Add, "NumpadAdd" },
	{ XK_KP_Subtract, "NumpadSubtract" },
	{ XK_KP_Multiply, "NumpadMultiply" },
	{ XK_KP_Divide, "NumpadDivide" },
	{ XK_KP_Decimal, "NumpadDecimal" },
};

/* A keysym's Unicode character (0 if it is not one): Latin-1 keysyms are their code point,
 * 0x01000000 + U is Unicode U. */
static uint32_t
keysym_char(uint32_t sym)
{
	if ((sym >= 0x20 && sym <= 0x7e) || (sym >= 0xa0 && sym <= 0xff))
		return sym;
	if ((sym & 0xff000000) == 0x01000000)
		return sym & 0x00ffffff;
	return 0;
}

static void
track_modifier(struct serve_vnc *v, uint32_t sym, bool down)
{
	switch (sym) {
	case XK_Shift_L: v->shift_l = down; break;
	case XK_Shift_R: v->shift_r = down; break;
	case XK_Control_L:
	case XK_Control_R: v->ctrl = down; break;
	case XK_Alt_L:
	case XK_Alt_R:
	case XK_Meta_L:
	case XK_Meta_R: v->alt = down; break;
	case XK_Super_L:
	case XK_Super_R: v->super = down; break;
	case XK_ISO_Level3_Shift:
	case XK_Mode_switch: v->altgr = down; break;
	default: break;
	}
}

static const char *const modifier_codes[8] = {
	"ControlLeft",  "ShiftLeft",  "AltLeft",  "MetaLeft",
	"ControlRight", "ShiftRight", "AltRight", "MetaRight"
};

static void
stroke(struct serve *s, struct serve_vnc *v, uint8_t mods, uint8_t usage)
{
	const char *code = okvm_key_usage_code(usage); /* the backend takes codes */
	if (!code)
		return;
	for (int i = 0; i < 8; i++)
		if (mods & (1u << i))
			s->be.ops->key(s->be.ud, modifier_codes[i], true);
	s->be.ops->key(s->be.ud, code, true);
	s->be.ops->key(s->be.ud, code, false);
	for (int i = 7; i >= 0; i--)
		if (mods & (1u << i))
			s->be.ops->key(s->be.ud, modifier_codes[i], false);
}

/* One character as the target's layout types it (its key and modifiers, dead keys too). */
static void
press_char(struct serve *s, struct serve_vnc *v, uint32_t cp)
{
	struct serve_state st = { 0 };
	s->be.ops->get_state(s->be.ud, &st);
	bool caps = st.leds & OKVM_LED_CAPS;
	bool shortcut = v->ctrl || v->alt || v->super;
	struct okvm_keyseq seq;
	/* With Ctrl, Alt or Super held it is a shortcut: the key of the unshifted character, with
	 * the modifiers the client holds (Ctrl+Shift+T presses T's key under Ctrl+Shift). */
	uint32_t look = shortcut && cp >= 'A' && cp <= 'Z' ? cp - 'A' + 'a' : cp;
	if (!v->km || okvm_keymap_lookup(v->km, look, shortcut ? false : caps, &seq)) {
		okvm_log(OKVM_LOG_INFO, "serve: VNC: U+%04X is not on the target's layout", cp);
		return;
	}
	if (shortcut) {
		stroke(s, v, 0, seq.k[seq.n - 1].usage);
		return;
	}
	/* The client's Shift made the character; the layout's own modifiers replace it. */
	bool lift_l = v->shift_l, lift_r = v->shift_r;
	if (lift_l)
		s->be.ops->key(s->be.ud, "ShiftLeft", false);
	if (lift_r)
		s->be.ops->key(s->be.ud, "ShiftRight", false);
	for (int i = 0; i < seq.n; i++)
		stroke(s, v, seq.k[i].modifiers, seq.k[i].usage);
	if (lift_l)
		s->be.ops->key(s->be.ud, "ShiftLeft", true);
	if (lift_r)
		s->be.ops->key(s->be.ud, "ShiftRight", true);
}

static void
apply_key(struct serve *s, struct serve_vnc *v, uint32_t sym, bool down)
{
	for (size_t i = 0; i < sizeof(named_keys) / sizeof(named_keys[0]); i++)
		if (named_keys[i].sym == sym) {
			track_modifier(v, sym, down);
			s->be.ops->key(s->be.ud, named_keys[i].code, down);
			return;
		}
	uint32_t cp = keysym_char(sym);
	if (cp && down)
		press_char(s, v, cp);
	else if (!cp && down)
		okvm_log(OKVM_LOG_INFO, "serve: VNC: keysym 0x%x has no key", sym);
}

static void
apply_pointer(struct serve *s, struct serve_vnc *v, const struct vnc_ev *e)
{
	/* VNC: bit 0 left, 1 middle, 2 right, 3/4 wheel up/down, 5/6 left/right, 7/8 back/fwd;
	 * the backend: bit 0 left, 1 right, 2 middle, 3 back, 4 forward. */
	int m = e->mask;
	uint8_t b = (uint8_t)((m & 1) | ((m & 4) >> 1) | ((m & 2) << 1) | ((m & 0x80) >> 4) |
			      ((m & 0x100) >> 4));
	double x = e->w > 1 ? (double)e->x / (e->w - 1) : 0.5;
	double y = e->h > 1 ? (double)e->y / (e->h - 1) : 0.5;
	s->be.ops->mouse_abs(s->be.ud, x < 0 ? 0 : x > 1 ? 1 : x, y < 0 ? 0 : y > 1 ? 1 : y, b);
	int pressed = m & ~v->last_buttons;
	if (pressed & 0x78)
		s->be.ops->wheel(s->be.ud, (pressed & 8 ? -1 : 0) + (pressed & 16 ? 1 : 0),
				 (pressed & 32 ? -1 : 0) + (pressed & 64 ? 1 : 0));
	v->last_buttons = m;
}

void
vnc_drain(struct serve *s)
{
	struct serve_vnc *v = s->vnc;
	if (!v)
		return;
	struct vnc_ev evs[VNC_QUEUE];
	unsigned k = 0;
	pthread_mutex_lock(&v->lock);
	while (v->qlen) {
		evs[k++] = v->q[v->qhead];
		v->qhead = (v->qhead + 1) % VNC_QUEUE;
		v->qlen--;
	}
	pthread_mutex_unlock(&v->lock);
	for (unsigned i = 0; i < k; i++) {
		struct vnc_ev *e = &evs[i];
		switch (e->type) {
		case VE_KEY: apply_key(s, v, e->keysym, e->down); break;
		case VE_PTR: apply_pointer(s, v, e); break;
		case VE_TEXT:
			if (s->be.ops->type(s->be.ud, e->text, strlen(e->text), s->cfg.layout, 0,
					    NULL, NULL))
				okvm_log(OKVM_LOG_WARN,
					 "serve: VNC clipboard not typed (busy, or a character the "
					 "layout cannot type)");
			free(e->text);
			break;
		case VE_GONE:
			if (!atomic_load(&v->clients)) { /* the last one: nothing stays pressed */
				s->be.ops->release_all(s->be.ud);
				v->shift_l = v->shift_r = v->ctrl = v->alt = v->super = v->altgr =
					false;
				v->last_buttons = 0;
				pthread_mutex_lock(&v->lock);
				v->drop = true;
				pthread_cond_signal(&v->cond);
				pthread_mutex_unlock(&v->lock);
			}
			break;
		}
	}
	serve_update_want(s);
}

bool
vnc_wants_frames(struct serve *s)
{
	return s->vnc && atomic_load(&s->vnc->clients) > 0;
}

void
vnc_on_frame(struct serve *s)
{
	struct serve_vnc *v = s->vnc;
	if (!v || !atomic_load(&v->clients))
		return;
	struct okvm_frame *f = s->be.ops->newest_frame ? s->be.ops->newest_frame(s->be.ud) : NULL;
	if (!f)
		return;
	struct okvm_frame *mine = okvm_frame_ref(f);
	s->be.ops->frame_unref(s->be.ud, f);
	pthread_mutex_lock(&v->lock);
	okvm_frame_unref(v->in);
	v->in = mine;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

static int
parse_listen(const char *listen, in_addr_t *addr, int *port)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host))
		return -EINVAL;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = 0;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p < 1 || p > 65535)
		return -EINVAL;
	struct in_addr a;
	if (!strcmp(host, "localhost"))
		a.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &a) != 1)
		return -EINVAL;
	*addr = a.s_addr;
	*port = (int)p;
	return 0;
}

static void
quiet_log(const char *fmt, ...)
{
	(void)fmt;
}

int
vnc_start(struct serve *s, const char *cert, const char *key)
{
	const char *listen = s->cfg.vnc_listen;
	if (!listen)
		return 0;
	in_addr_t addr;
	int port;
	if (parse_listen(listen, &addr, &port)) {
		okvm_log(OKVM_LOG_ERROR, "serve: --vnc %s: want IPV4:PORT (127.0.0.1:5900)",
			 listen);
		return -EINVAL;
	}
	bool loopback = (ntohl(addr) >> 24) == 127;
	if (!loopback && !s->cfg.vnc_password) {
		okvm_log(OKVM_LOG_ERROR,
			 "serve: VNC on %s (not loopback) needs a password: set password in the "
			 "[vnc] section of okvm.conf (docs/serve.md, VNC)",
			 listen);
		return -EACCES;
	}
	struct serve_vnc *v = xcalloc(1, sizeof(*v));
	v->s = s;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	v->dec = tjInitDecompress();
	v->km = okvm_keymap_new(s->cfg.layout && *s->cfg.layout ? s->cfg.layout : "us");
	if (okvm_log_get_level() > OKVM_LOG_DEBUG) /* LibVNCServer's own chatter only with -v -v */
		rfbLog = rfbErr = quiet_log;
	char arg0[] = "okvm";
	char *argv[] = { arg0, NULL };
	int argc = 1;
	/* A placeholder picture until the first frame: 640x360 black. */
	v->fb_w = 640;
	v->fb_h = 360;
	v->screen = rfbGetScreen(&argc, argv, v->fb_w, v->fb_h, 8, 3, 4);
	if (!v->screen || !v->dec) {
		okvm_log(OKVM_LOG_ERROR, "serve: VNC: could not set up the server");
		vnc_free(s);
		return -ENOMEM;
	}
	v->screen->frameBuffer = xcalloc((size_t)v->fb_w * v->fb_h, 4);
	v->back = xmalloc((size_t)v->fb_w * v->fb_h * 4);
	v->screen->screenData = v;
	v->screen->desktopName = "okvm";
	v->screen->port = port;
	v->screen->ipv6port = 0;
	v->screen->listenInterface = addr;
	v->screen->alwaysShared = TRUE;
	v->screen->kbdAddEvent = on_key;
	v->screen->ptrAddEvent = on_pointer;
	v->screen->setXCutText = on_cut_text;
	v->screen->setXCutTextUTF8 = on_cut_text_utf8;
	v->screen->newClientHook = on_new_client;
	v->screen->cursor = NULL; /* the target draws its own pointer */
	if (s->cfg.vnc_password) {
		v->password_list[0] = s->cfg.vnc_password;
		v->screen->authPasswdData = v->password_list;
		v->screen->passwordCheck = check_password;
		v->need_password = true;
	}
	if (cert && key) {
		v->ssl_cert = xstrdup(cert);
		v->ssl_key = xstrdup(key);
		v->screen->sslcertfile = v->ssl_cert;
		v->screen->sslkeyfile = v->ssl_key;
	}
	s->vnc = v;
	rfbInitServer(v->screen);
	if (v->screen->listenSock == RFB_INVALID_SOCKET) {
		okvm_log(OKVM_LOG_ERROR, "serve: VNC: cannot listen on %s (in use?)", listen);
		vnc_free(s);
		return -EADDRINUSE;
	}
	if (pthread_create(&v->thread, NULL, vnc_thread, v)) {
		vnc_free(s);
		return -ENOMEM;
	}
	v->has_thread = true;
	rfbRunEventLoop(v->screen, 40000, TRUE);
	okvm_log(OKVM_LOG_INFO, "serve: VNC on %s%s%s", listen,
		 v->need_password ? " (password)" : " (loopback, no password)",
		 !v->need_password ? ""
		 : v->ssl_cert ? "; WebSocket clients too, wss:// with the web server's certificate"
			       : "; WebSocket clients too (ws://)");
	return 0;
}

/* Let every client's own thread close it before rfbShutdownServer: LibVNCServer 0.9.14 closes
 * again each client still in its list, and a client whose thread is already closing it is
 * closed twice (a wss:// client's GnuTLS session freed twice). */
static void
close_clients(struct serve_vnc *v)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(v->screen);
	rfbClientPtr cl;
	while ((cl = rfbClientIteratorNext(it)))
		if (cl->sock != RFB_INVALID_SOCKET)
			shutdown(cl->sock, SHUT_RDWR);
	rfbReleaseClientIterator(it);
	for (int i = 0; i < 200 && atomic_load(&v->clients) > 0; i++)
		usleep(10 * 1000);
}

void
vnc_free(struct serve *s)
{
	struct serve_vnc *v = s->vnc;
	if (!v)
		return;
	s->vnc = NULL;
	if (v->screen) {
		if (v->has_thread)
			close_clients(v);
		rfbShutdownServer(v->screen, TRUE);
		if (v->has_thread) {
			pthread_mutex_lock(&v->lock);
			v->stop = true;
			pthread_cond_signal(&v->cond);
			pthread_mutex_unlock(&v->lock);
			pthread_join(v->thread, NULL);
		}
		free(v->screen->frameBuffer);
		v->screen->frameBuffer = NULL;
		rfbScreenCleanup(v->screen);
	}
	for (unsigned i = 0; i < v->qlen; i++)
		free(v->q[(v->qhead + i) % VNC_QUEUE].text);
	okvm_frame_unref(v->in);
	okvm_keymap_free(v->km);
	if (v->dec)
		tjDestroy(v->dec);
	free(v->back);
	free(v->ssl_cert);
	free(v->ssl_key);
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
	free(v);
}

void
vnc_stats(struct serve *s, unsigned *clients, uint64_t *frames, uint64_t *blocks)
{
	struct serve_vnc *v = s->vnc;
	*clients = v ? (unsigned)atomic_load(&v->clients) : 0;
	*frames = *blocks = 0;
	if (!v)
		return;
	*frames = atomic_load(&v->frames_decoded);
	*blocks = atomic_load(&v->blocks_sent);
}
