/*
 * The seam between `okvm serve` and a unit (docs/contracts.md section 6).
 *
 * The server never talks to a link, a keymap or a capture directly: it calls these operations.
 * The backend of a real or virtual unit (backend-unit.c: link + keymap + capture) implements
 * them; the tests wrap it in a recorder (tests/recorder/okvm-rec.c) that logs every call.
 *
 * Threads: every operation except the notify callbacks is called on the server's service thread
 * only (or, outside okvm serve, on one thread: `okvm mcp` calls them on its main thread; the
 * MCP workers of okvm serve hand theirs to the service thread, src/serve/mcp-http.c). Input operations must not block (they enqueue). The backend calls the functions given to
 * set_notify() from any of its threads; those only push onto the server's locked queue and wake
 * the service loop with lws_cancel_service().
 */
#ifndef OKVM_SERVE_BACKEND_H
#define OKVM_SERVE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "okvm/ch9329.h"
#include "okvm/video.h"

struct okvm_link;
struct okvm_capture;

/* What the unit looks like now (GET /api/state, WebSocket state events, /metrics). */
struct serve_state {
	char unit[64];         /* a name for people: "test", "emu", "Mini-KVM 3-1" */
	bool has_input;        /* false: a video-only unit (input calls fail) */
	bool target_connected; /* the target's USB host sees the HID chip */
	uint8_t leds;          /* enum okvm_led bits (the CH9329's GET_INFO byte) */
	bool has_video;        /* false: no capture at all */
	bool signal;           /* HDMI signal present */
	int width, height;     /* of the newest frame; 0 if none */
	double fps;            /* captured frames per second (last second) */
	bool usb_known;        /* where the switchable USB port is routed is known ... */
	enum okvm_usb_dir usb; /* ... OKVM_USB_TO_HOST or OKVM_USB_TO_TARGET */
	/* counters for /metrics */
	uint64_t frames_captured;
	uint64_t hid_reports; /* HID reports sent to the chip */
	uint64_t hid_errors;  /* ACK timeouts + chip error statuses */
	double ack_ms_last, ack_ms_max;
	size_t typing_pending; /* characters queued and not yet typed */
};

/* Progress of one typing job: called from a backend thread; done == total or err < 0 ends it. */
typedef void (*serve_type_progress_fn)(size_t done, size_t total, int err, void *ud);

struct serve_backend_ops {
	/* A key by its browser KeyboardEvent.code ("KeyA", "ShiftLeft", "AudioVolumeUp").
	 * Returns 0, -ENOENT (no such code: nothing sent), -EOPNOTSUPP (video-only unit). */
	int (*key)(void *ud, const char *code, bool down);
	/* Press and release a combo such as "ctrl+alt+delete" (keymap names). -ENOENT: nothing sent. */
	int (*combo)(void *ud, const char *combo);
	/* Absolute pointer: x, y in [0,1] of the video frame; buttons bit0 left, bit1 right,
	 * bit2 middle (as MouseEvent.buttons and CH9329). */
	int (*mouse_abs)(void *ud, double x, double y, uint8_t buttons);
	/* Button state only, at the last position and in the last mode. */
	int (*buttons)(void *ud, uint8_t buttons);
	/* Wheel notches; dy > 0 scrolls down, dx > 0 scrolls right (browser deltaY/deltaX sign). */
	int (*wheel)(void *ud, int dy, int dx);
	/* Relative motion in mickeys; the backend splits it into reports of at most +-127. */
	int (*rel)(void *ud, int dx, int dy, uint8_t buttons);
	/* Type UTF-8 text on a target with this XKB layout at about cps characters per second
	 * (0 = as fast as the link allows). Asynchronous: returns 0 when queued, -EBUSY while another
	 * job runs, -EINVAL (unknown layout), -OKVM_E_UNMAPPABLE (nothing queued). */
	int (*type)(void *ud, const char *text, size_t len, const char *layout, double cps,
		    serve_type_progress_fn fn, void *fn_ud);
	/* Every key, media key and button up; typing stops. */
	int (*release_all)(void *ud);
	/* The switchable USB port: to = OKVM_USB_TO_HOST or OKVM_USB_TO_TARGET. -EOPNOTSUPP if none. */
	int (*usb_switch)(void *ud, enum okvm_usb_dir to);
	void (*get_state)(void *ud, struct serve_state *out);
	/* The newest frame as a new reference (NULL: none yet). Give it back with frame_unref. */
	struct okvm_frame *(*newest_frame)(void *ud);
	void (*frame_unref)(void *ud, struct okvm_frame *f);
	/* Someone watches (stream clients, a pending snapshot): capture only when true. */
	void (*want_frames)(void *ud, bool want);
	/* on_frame: a new frame is ready; on_state: get_state() changed. Either may be NULL.
	 * Called once before any frame is produced. */
	void (*set_notify)(void *ud, void (*on_frame)(void *), void (*on_state)(void *), void *nud);
	void (*destroy)(void *ud);
	/* added: the switchable USB-A port's power (the unit's DTR, hardware.md 2.11) for
	 * [power] backend = vbus. Any thread but the service thread: it blocks until the
	 * backend's own thread has set the line (milliseconds). 0, -OKVM_E_VIDEO_ONLY, -ENODEV
	 * (the unit is gone) or -errno. NULL: not offered. */
	int (*usb_power)(void *ud, bool powered);
};

struct serve_backend {
	struct okvm_link *link;       /* contract 6: the unit's link, or NULL (video only) */
	struct okvm_capture *capture; /* contract 6: the unit's capture, or NULL (no video) */
	const struct serve_backend_ops *ops;
	void *ud;
};

/* The unit's sound for WebSocket clients that ask (ws-audio.c): 48 kHz stereo S16_LE. Called on
 * the server's audio thread only, opened while someone listens and closed when no one does. */
struct serve_audio_source {
	int (*open)(void *ud); /* 0 or -errno */
	/* Up to frames, blocking and paced in real time. Frames read (> 0) or -errno. */
	long (*read)(void *ud, int16_t *pcm, size_t frames, uint64_t *ts_us);
	void (*close)(void *ud);
	void *ud;
};

/* What a unit backend is made of; either half may be missing. */
struct serve_unit_config {
	struct okvm_link *link;       /* open, GET_INFO polling on; taken over (freed at the end,
					    which releases everything); NULL: video-only unit */
	struct okvm_capture *capture; /* started here if it is not yet; NULL: no video */
	bool capture_owned;           /* free the capture at the end (else only stop wanting) */
	const char *unit;             /* a name for people */
	/* Hot-plug: where the unit's CH9329 is now. Called on the hid thread about once a second
	   while the link is gone; fills path and returns 0 when the unit is back. NULL: wait for
	   the same path to reappear. */
	int (*locate)(void *ud, char *path, size_t size);
	void *locate_ud;
	bool follow_toggle; /* mirror the unit's hardware USB toggle (chip with one; hardware.md) */
	struct okvm_chip *chip; /* the video chip (Mini-KVM USB switch register); taken
					    over and freed at the end; NULL: switch by the CH32V208's
					    serial command 0x17 */
};

/*
 * The backend of a real or virtual unit: input through the CH9329 link (its dispatch runs on a
 * thread of this backend, okvm-hid), key codes, combos and typing through the keymap, video from
 * the capture. Returns 0 or -errno; on failure the caller still owns link and capture.
 */
int serve_backend_unit_new(const struct serve_unit_config *cfg, struct serve_backend *out);

#endif
