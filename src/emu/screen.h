/* The virtual target's screen: what the target computer behind the virtual unit shows. */
#ifndef OKVM_EMU_SCREEN_H
#define OKVM_EMU_SCREEN_H

#include <stdbool.h>
#include <stdint.h>

#include "okvm/video.h"

#define VSCREEN_DEFAULT_W 1920
#define VSCREEN_DEFAULT_H 1080
#define VSCREEN_DEFAULT_FPS 30
/* Traces of input that leaves no text (docs/virtual-unit.md "The screen"): shown this long, the
 * last VSCREEN_FADE_MS of it fading out; then the screen is idle again. */
#define VSCREEN_TRACE_MS 1000
#define VSCREEN_FADE_MS 400
#define VSCREEN_CLICK_R 14 /* a click: a ring of this radius (5 px wide) around the pointer's tip */

struct vscreen;

/**
 * A screen of w x h pixels at fps frames per second, with its capture source started (it renders
 * only while somebody wants frames: okvm_capture_want()). Aborts on OOM.
 * @param w, h even sizes from 64x64 to 4096x2160 (others are clamped); fps 1..120
 */
struct vscreen *vscreen_new(int w, int h, int fps);
/** Parse "WxH@FPS" (or NULL = 1920x1080@30) and create the screen; NULL on a bad mode. */
struct vscreen *vscreen_new_mode(const char *mode);
/** Text the target's OS produced (UTF-8; "\n", "\r", "\b", "\t" act as on a terminal).
 * Any thread. */
void vscreen_feed_text(struct vscreen *vs, const char *utf8);
/** The target's pointer in chip units (0..4095 per axis; CH9329 absolute). Any thread. */
void vscreen_set_pointer(struct vscreen *vs, int x, int y);
/**
 * The pointer (as vscreen_set_pointer), its buttons (OKVM_BTN_* bits) and a wheel movement (+ up):
 * a button going down leaves a marker where it went down, the wheel an indicator. Any thread.
 */
void vscreen_mouse(struct vscreen *vs, int x, int y, uint8_t buttons, int wheel);
/** A key went down or up (HID page 0x07 usage): a key pressed with Ctrl, Alt or Win held (or Win
 * alone) shows as the "last combo". Any thread. */
void vscreen_key(struct vscreen *vs, uint8_t usage, bool down);
/** A media report (id 2, three bitmap bytes) or ACPI report (id 1, one byte): a key newly down
 * shows an on-screen display (volume with a level bar, play/pause...). Any thread. */
void vscreen_media(struct vscreen *vs, uint8_t id, const uint8_t bits[3]);
/** The USB switch moved: a notification "USB stick: to target" / "to host". Any thread. */
void vscreen_usb_switch(struct vscreen *vs, bool to_target);
/** Keyboard LEDs: bit 0 Num, bit 1 Caps, bit 2 Scroll (HID LED report). Any thread. */
void vscreen_set_leds(struct vscreen *vs, uint8_t leds);
/** false: the target sends no picture (asleep, cable out): the capture shows NO SIGNAL. */
void vscreen_set_signal(struct vscreen *vs, bool on);
/** The screen's capture (owned by the screen; do not free). */
struct okvm_capture *vscreen_capture(struct vscreen *vs);
/** Pictures rendered and encoded so far (repeats not counted). Any thread. */
uint64_t vscreen_rendered(struct vscreen *vs);
/** CPU time the capture thread spent so far drawing pictures and encoding them as JPEG
 * (nanoseconds; for bench/bench_video.c). Any thread. */
void vscreen_get_timing(struct vscreen *vs, uint64_t *draw_ns, uint64_t *encode_ns);
/** Where things are drawn, for tests and overlays (pixels). */
struct vscreen_layout {
	int text_x, text_y;   /* top-left of character cell (0, 0) */
	int cell_w;           /* width of one character cell (height: OKVM_FONT_H) */
	int cols, rows;       /* console size in cells */
	int led_x[3], led_y;  /* top-left of the Num, Caps, Scroll boxes (14 x 20) */
	int combo_y, combo_h; /* the "last combo" box, centred horizontally (width: its text) */
	int osd_x, osd_y, osd_w, osd_h;     /* the media keys' on-screen display */
	int note_x, note_y, note_w, note_h; /* the USB switch's notification */
};
void vscreen_get_layout(struct vscreen *vs, struct vscreen_layout *out);
/** The character at a console cell (0 = blank). Any thread. */
uint32_t vscreen_cell(struct vscreen *vs, int col, int row);

/** Stop the capture thread and free everything. NULL ok. */
void vscreen_free(struct vscreen *vs);

#endif
