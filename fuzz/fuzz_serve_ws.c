/*
 * Fuzz target: one WebSocket message into okvm serve's handler (ws_handle_message), with two
 * clients and a backend that accepts everything, so every path past validation runs too. Checks
 * that nothing crashes or leaks and that a client never holds more keys than allowed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/internal.h"

/* clang-format off */
static int b_key(void *ud, const char *c, bool d) { return c[0] == 'X' ? -ENOENT : 0; }
static int b_combo(void *ud, const char *c) { return 0; }
static int b_abs(void *ud, double x, double y, uint8_t b) { return 0; }
static int b_buttons(void *ud, uint8_t b) { return 0; }
static int b_wheel(void *ud, int dy, int dx) { return 0; }
static int b_rel(void *ud, int dx, int dy, uint8_t b) { return 0; }
static int b_release(void *ud) { return 0; }
static int b_switch(void *ud, enum okvm_usb_dir to) { return 0; }
static void b_state(void *ud, struct serve_state *out) { memset(out, 0, sizeof(*out)); }
static void b_unref(void *ud, struct okvm_frame *f) { }
/* clang-format on */

static int
b_type(void *ud, const char *t, size_t n, const char *l, double cps, serve_type_progress_fn fn,
       void *fud)
{
	return 0;
}

/* clang-format off */
static const struct serve_backend_ops ops = {
	.key = b_key, .combo = b_combo, .mouse_abs = b_abs, .buttons = b_buttons, .wheel = b_wheel,
	.rel = b_rel, .type = b_type, .release_all = b_release, .usb_switch = b_switch,
	.get_state = b_state, .frame_unref = b_unref,
};
/* clang-format on */

static void
drain(struct conn *c)
{
	while (c->ws.qlen) {
		free(c->ws.q[c->ws.qhead]);
		c->ws.qhead = (c->ws.qhead + 1) % SERVE_WS_QUEUE;
		c->ws.qlen--;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct serve *s;
	static struct conn a, b;
	if (!s) {
		struct serve_config cfg;
		serve_config_init(&cfg);
		struct serve_backend be = { .ops = &ops };
		s = serve_new(&cfg, &be);
		serve_config_clear(&cfg);
		a = (struct conn){ .kind = CONN_WS, .s = s, .id = 1, .role = SERVE_ROLE_ADMIN };
		b = (struct conn){ .kind = CONN_WS, .s = s, .id = 2, .role = SERVE_ROLE_ADMIN };
		serve_list_add(&s->sockets, &a);
		serve_list_add(&s->sockets, &b);
	}
	/* The first byte picks the client, the rest is the message. */
	if (!size)
		return 0;
	struct conn *c = data[0] & 1 ? &b : &a;
	ws_handle_message(s, c, (const char *)data + 1, size - 1);
	if (c->ws.npressed > SERVE_MAX_PRESSED)
		abort();
	drain(&a);
	drain(&b);
	return 0;
}
