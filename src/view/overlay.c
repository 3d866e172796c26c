/*
 * DESIGN: the viewer's overlay (host key + O): the unit's state and the keys that act while it
 * is shown, drawn with okvm's built-in font (src/lib/video/draw.c) on a small RGB canvas that
 * the window blends over the picture. SDL has no text of its own. Main thread only.
 */
#include <stdio.h>
#include <string.h>

#include "lib/video/draw.h"
#include "okvm/ch9329.h"
#include "serve/backend.h"
#include "view/overlay.h"

#define PAD 10
#define LINE (OKVM_FONT_H + 4)

static const uint32_t fg = OKVM_RGB(0xee, 0xee, 0xee), dim = OKVM_RGB(0x99, 0x99, 0x99);
static const uint32_t on = OKVM_RGB(0x5c, 0xd6, 0x5c), off = OKVM_RGB(0x66, 0x66, 0x66);
static const uint32_t rec = OKVM_RGB(0xf0, 0x40, 0x40);

static int
row(int i)
{
	return PAD + i * LINE;
}

static void
led(struct okvm_canvas *cv, int *x, int y, const char *name, bool lit)
{
	*x = canvas_text(cv, *x, y, name, lit ? on : off, 1) + OKVM_FONT_W;
}

void
view_overlay_size(int *w, int *h)
{
	*w = 2 * PAD + 46 * OKVM_FONT_W;
	*h = 2 * PAD + 10 * LINE;
}

void
view_overlay_draw(struct okvm_canvas *cv, const struct view_overlay_info *in)
{
	const struct serve_state *st = in->state;
	char line[96];
	canvas_fill(cv, 0, 0, cv->width, cv->height, OKVM_RGB(0x18, 0x1c, 0x22));
	snprintf(line, sizeof(line), "okvm view: %.34s", st->unit);
	canvas_text(cv, PAD, row(0), line, fg, 1);
	if (!st->has_video)
		snprintf(line, sizeof(line), "video: none");
	else if (!st->signal)
		snprintf(line, sizeof(line), "signal: none");
	else
		snprintf(line, sizeof(line), "signal: %dx%d  %.1f fps (shown %.1f)", st->width,
			 st->height, st->fps, in->shown_fps);
	canvas_text(cv, PAD, row(1), line, st->signal ? fg : dim, 1);
	snprintf(line, sizeof(line), "target: %s",
		 !st->has_input         ? "no keyboard/mouse link"
		 : st->target_connected ? "connected"
					: "not connected");
	canvas_text(cv, PAD, row(2), line, fg, 1);
	int x = canvas_text(cv, PAD, row(3), "LEDs: ", fg, 1);
	led(cv, &x, row(3), "NUM", st->leds & OKVM_LED_NUM);
	led(cv, &x, row(3), "CAPS", st->leds & OKVM_LED_CAPS);
	led(cv, &x, row(3), "SCROLL", st->leds & OKVM_LED_SCROLL);
	snprintf(line, sizeof(line), "USB port: %s",
		 !st->usb_known                ? "unknown"
		 : st->usb == OKVM_USB_TO_HOST ? "host"
					       : "target");
	canvas_text(cv, PAD, row(4), line, fg, 1);
	if (in->recording) {
		snprintf(line, sizeof(line), "REC %.12s", in->recording);
		canvas_text(cv, PAD, row(5), line, rec, 1);
	} else {
		canvas_text(cv, PAD, row(5), "not recording", dim, 1);
	}
	canvas_text(cv, PAD, row(6), in->message ? in->message : "", on, 1);
	canvas_text(cv, PAD, row(7), "S screenshot  U USB switch  D Ctrl+Alt+Del", fg, 1);
	canvas_text(cv, PAD, row(8),
		    in->recording ? "R stop recording  V paste  F fullscreen"
				  : "R record  V paste  F fullscreen  Esc close",
		    fg, 1);
	snprintf(line, sizeof(line), "(also %.20s + the key; %.20s alone: grab)", in->host_key,
		 in->host_key);
	canvas_text(cv, PAD, row(9), line, dim, 1);
}
