/*
 * Fuzz target: one JSON-RPC message into the MCP server core (mcp_handle, src/auto/mcp.c) with a
 * backend whose input fails (the unit unplugged) and whose video has no frame, and the cancel
 * flag up, so every tool's argument checks and error paths run without waiting. Checks that
 * nothing crashes or leaks and that every request gets one JSON answer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "auto/mcp.h"
#include "serve/backend.h"

/* clang-format off */
static int b_key(void *ud, const char *c, bool d) { return -ENODEV; }
static int b_combo(void *ud, const char *c) { return -ENODEV; }
static int b_abs(void *ud, double x, double y, uint8_t b) { return -ENODEV; }
static int b_buttons(void *ud, uint8_t b) { return -ENODEV; }
static int b_wheel(void *ud, int dy, int dx) { return -ENODEV; }
static int b_rel(void *ud, int dx, int dy, uint8_t b) { return -ENODEV; }
static int b_release(void *ud) { return 0; }
static int b_switch(void *ud, enum okvm_usb_dir to) { return -ENODEV; }
static struct okvm_frame *b_frame(void *ud) { return NULL; }
static void b_unref(void *ud, struct okvm_frame *f) { }
static void b_want(void *ud, bool want) { }
/* clang-format on */

static void
b_state(void *ud, struct serve_state *out)
{
	memset(out, 0, sizeof(*out));
	out->has_input = true;
	out->has_video = true;
	out->width = 1920;
	out->height = 1080;
}

static int
b_type(void *ud, const char *t, size_t n, const char *l, double cps, serve_type_progress_fn fn,
       void *fud)
{
	return -ENODEV;
}

/* clang-format off */
static const struct serve_backend_ops ops = {
	.key = b_key, .combo = b_combo, .mouse_abs = b_abs, .buttons = b_buttons, .wheel = b_wheel,
	.rel = b_rel, .type = b_type, .release_all = b_release, .usb_switch = b_switch,
	.get_state = b_state, .newest_frame = b_frame, .frame_unref = b_unref,
	.want_frames = b_want,
};
/* clang-format on */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct serve_backend be = { .ops = &ops };
	static struct mcp *m;
	static atomic_bool cancel = true;
	if (!m)
		m = mcp_new(&(struct mcp_config){ .b = &be, .transport = "fuzz" });
	char *out = mcp_handle(m, (const char *)data, size, &cancel);
	if (out) {
		cJSON *o = cJSON_Parse(out);
		if (!o)
			abort(); /* an answer is always JSON */
		cJSON_Delete(o);
		free(out);
	}
	return 0;
}
