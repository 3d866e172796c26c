/*
 * The CH9329 link: one per unit; owns the serial port, queues HID reports with priorities,
 * keeps up to two HID reports (one command) in flight awaiting their ACKs, paces reports, polls
 * GET_INFO when idle.
 * No threads inside: poll okvm_link_fd() and call okvm_link_dispatch() (libinput style).
 * The enqueue functions (okvm_link_send_*, okvm_link_mouse_*, okvm_link_release_all,
 * okvm_link_pending) may be called from any thread; everything else belongs to the thread that
 * dispatches. An enqueue that finds the link idle writes the report from the calling thread (no
 * wake-up of the dispatching one; docs/link.md "The direct write"). See docs/link.md for the
 * pacing model and where its numbers come from.
 */
#ifndef OKVM_LINK_H
#define OKVM_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "okvm/ch9329.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Minimum gap between two HID reports. The virtual unit's target polls its HID endpoints every
 * 10 ms (EMU_DEFAULT_POLL_MS, the USB full-speed bInterval the CH9329 reports); a report that
 * the chip overwrites before the next poll is lost, so the gap must exceed the poll interval.
 */
#define OKVM_LINK_DEFAULT_GAP_MS 12
/*
 * Idle line kept between two frames on the wire, from the previous frame's last byte to the
 * next frame's first: the CH9329 ends a packet after 3 ms without a byte (CH9329-D, the
 * parameter block's packet interval), so frames closer than that run into one. 3 ms plus 1 ms
 * for the CH340's USB frame (bytes reach its UART on 1 ms USB frames).
 */
#define OKVM_LINK_FRAME_IDLE_US 4000
#define OKVM_LINK_DEFAULT_ACK_TIMEOUT_MS 500 /* CH9329-P section II */
#define OKVM_LINK_DEFAULT_INFO_POLL_MS 1000
#define OKVM_LINK_KBD_QUEUE 4096 /* keyboard reports queued at most (-EAGAIN beyond) */
#define OKVM_LINK_MEDIA_QUEUE 256
#define OKVM_LINK_MOUSE_QUEUE 1024 /* button/wheel changes queued at most */

struct okvm_link_config {
	const char *path;         /* tty */
	int baud;                 /* 0 = detect: 115200, then 9600, twice (hardware.md 2.10) */
	int report_gap_ms;        /* minimum gap between two HID reports; <=0 = default
				     (OKVM_LINK_DEFAULT_GAP_MS) */
	int ack_timeout_ms;       /* default 500 */
	int info_poll_ms;         /* GET_INFO when idle; default 1000; 0 = off, <0 = off too */
	const char *modem_socket; /* docs/contracts.md section 1; NULL = PATH.modem if it exists */
	bool no_gap;              /* added: report_gap_ms 0 really means 0 (benchmarks) */
	bool no_pipeline; /* added: one HID report in flight instead of two (docs/link.md) */
	bool lines_only;  /* added: open the port for its modem lines only (the DTR pulse): no
			     probe, no baud detection, and nothing is ever sent to the chip */
};

struct okvm_link_state {
	bool target_connected;
	uint8_t leds; /* enum okvm_led bits */
	uint8_t version;
	int baud;
	bool chip_ok; /* the chip answered the last frame */
	/* added: GET_INFO was never answered (some CH32V208 firmware ignores it; the link opened
	   because the chip acknowledges HID reports, or because it is a CDC-ACM port): version,
	   target_connected and leds are unknown, not "disconnected" */
	bool info_unknown;
};

/** Called on the dispatch thread whenever a field of the state changes. */
typedef void (*okvm_link_listener)(const struct okvm_link_state *st, void *ud);

/** Create a link (copies cfg and its strings). Aborts on OOM; opens nothing. */
struct okvm_link *okvm_link_new(const struct okvm_link_config *cfg);

/**
 * Open the port, find the chip's baud (hardware.md 2.10) and read GET_INFO. A chip that never
 * answers GET_INFO but acknowledges a keyboard all-up report, or any chip on a CDC-ACM port
 * (a CH32V208), opens with state.info_unknown (warned once).
 * @return 0, -ETIMEDOUT if the chip never answers, or the port's open error (-ENOENT, -EACCES,
 *         -EBUSY ...; logged with the fix).
 */
int okvm_link_open(struct okvm_link *l);

/** An epoll fd: readable when the port has bytes, a timer fired or another thread queued. */
/**
 * After the port vanished (dispatch returned -ENODEV): close it, forget queued input (the
 * replugged chip presses nothing), and open again, at path if given (a replugged CH340 may come
 * back as another ttyUSB), else the same path. Dispatching thread only; enqueue calls from other
 * threads stay safe throughout (they fail with -ENODEV until it succeeds).
 * @return as okvm_link_open(); -EALREADY if the port is still alive.
 */
int okvm_link_reopen(struct okvm_link *l, const char *path);
/** The tty the link opens. Dispatching thread (it changes in okvm_link_reopen). */
const char *okvm_link_path(const struct okvm_link *l);

int okvm_link_fd(struct okvm_link *l);

/**
 * Do whatever is due, without blocking: read replies, handle timeouts, send the next frame.
 * @return 0, or -ENODEV when the port vanished (the link stays usable only for free).
 */
int okvm_link_dispatch(struct okvm_link *l);

/** One listener (NULL clears). Dispatch thread. It is called with the link's lock held: it may
 * enqueue, but not call okvm_link_get_stats. */
void okvm_link_set_listener(struct okvm_link *l, okvm_link_listener fn, void *ud);

/**
 * Thread-safe enqueue. Keyboard and media reports are full states sent in order; release-all
 * jumps the queue; absolute positions are coalesced (only the newest unsent one is sent),
 * relative motion is summed; button and wheel changes are kept in order.
 * @return 0, -EAGAIN (queue full, nothing queued), -ENODEV (port gone), -EINVAL (abs > 4096).
 */
int okvm_link_send_kbd(struct okvm_link *l, const struct okvm_kbd_report *r);
int okvm_link_send_media(struct okvm_link *l, const struct okvm_media_report *r);
int okvm_link_mouse_abs(struct okvm_link *l, uint16_t x, uint16_t y, uint8_t buttons, int8_t wheel);
int okvm_link_mouse_rel(struct okvm_link *l, int8_t dx, int8_t dy, uint8_t buttons, int8_t wheel);
/** Drop queued reports; send keyboard up, media up and mouse buttons up first. Thread-safe. */
int okvm_link_release_all(struct okvm_link *l);
/** Reports queued or in flight. Thread-safe. */
size_t okvm_link_pending(struct okvm_link *l);

/*
 * Blocking helpers for the CLI. They run the dispatch loop themselves, so call them only on the
 * dispatching thread. Chip error replies (CMD|0xC0) return -EPROTO (the status is logged by name
 * and, for okvm_link_command, left in *reply).
 */
/** Until nothing is queued or in flight. @return 0, -ETIMEDOUT, -ENODEV. */
int okvm_link_flush(struct okvm_link *l, int timeout_ms);
/**
 * Send n keyboard reports with nothing pressed (the target sees no input) and wait until they
 * are answered and taken, so that okvm_link_get_stats() shows the DATAFLIP line and the
 * target's poll interval (flip_pacing, flip_absent, target_poll_ms; okvm info, okvm doctor).
 * Dispatch thread. @return 0, -ENOTSUP (the port cannot show CTS at all: nothing is sent),
 * -ETIMEDOUT, -ENODEV, -ENOTCONN.
 */
int okvm_link_probe_target(struct okvm_link *l, int n, int timeout_ms);
int okvm_link_get_info(struct okvm_link *l, struct okvm_ch9329_info *out, int timeout_ms);
int okvm_link_get_params(struct okvm_link *l, struct okvm_ch9329_params *out, int timeout_ms);
/** Any command, waits for its reply (CMD|0x80 or CMD|0xC0). @return 0, -EPROTO, -ETIMEDOUT... */
int okvm_link_command(struct okvm_link *l, const struct okvm_ch9329_frame *req,
		      struct okvm_ch9329_frame *reply, int timeout_ms);
/** SET_PARA_CFG (baud only) + RESET at the old baud, switch, verify (hardware.md 2.10). */
int okvm_link_set_baud(struct okvm_link *l, int baud);
/** RESET (0x0F): the chip restarts with its stored parameters. */
int okvm_link_reset(struct okvm_link *l);
/**
 * Factory defaults: RTS asserted 4 s, released, 0.5 s, then GET_INFO at 9600; if the chip does
 * not answer (no RTS wiring, boards < v1.9), SET_DEFAULT_CFG at 9600 then 115200 + RESET.
 * Not for CH32V208. @return 0 (chip answers at 9600), -ETIMEDOUT.
 */
int okvm_link_factory_reset(struct okvm_link *l);
/** CH32V208 USB switch (cmd 0x17); *now receives the routing reported (may be NULL). */
int okvm_link_usb_switch(struct okvm_link *l, enum okvm_usb_dir dir, enum okvm_usb_dir *now);
/** Assert DTR for ms, then deassert: power-cycles the switchable USB-A port (hardware.md 2.11). */
int okvm_link_dtr_pulse(struct okvm_link *l, int ms);
/** Assert (true: the switchable USB-A port unpowered) or release DTR until told otherwise, or
 *  until the port is closed or reopened (then released). Dispatch thread. 0 or -errno. */
int okvm_link_set_dtr(struct okvm_link *l, bool asserted);

struct okvm_link_stats {
	uint64_t reports_sent, acks, timeouts, chip_errors, resyncs;
	double ack_ms_last, ack_ms_max;
	/* added */
	uint64_t unsolicited;   /* 0x87 frames and replies nobody waited for */
	uint64_t garbage_bytes; /* bytes skipped by the parser */
	uint64_t coalesced;     /* absolute positions replaced before they were sent */
	/* HID reports only (timeouts and chip_errors also count probes and commands, e.g. the
	 * 115200 probe of baud detection): what a command that sent reports should judge by */
	uint64_t report_timeouts, report_errors;
	uint64_t unpaced; /* reports sent without waiting for an ACK (a chip that never ACKs) */
	/* DATAFLIP (hardware.md 2.11): CTS toggles seen after reports, and what they show */
	uint64_t flips;        /* reports the target was seen to take */
	uint64_t flip_misses;  /* reports sent on the gap because no toggle came in time */
	bool flip_pacing;      /* the toggles pace the reports (else the fixed gap) */
	bool flip_absent;      /* the port showed no toggles: the fixed gap paces */
	double target_poll_ms; /* the target's HID poll interval as the toggles show it; 0 = not
				  known yet (from the report -> toggle times of the last 32) */
	uint64_t direct;       /* reports the enqueuing thread wrote itself (the link was idle) */
	uint64_t flip_ahead;   /* reports sent before the one ahead of them was seen taken */
};
/** Dispatch thread. */
void okvm_link_get_stats(struct okvm_link *l, struct okvm_link_stats *out);
/** Current state (dispatch thread). */
void okvm_link_get_state(struct okvm_link *l, struct okvm_link_state *out);

/** Release all (ACKed, short timeout) if this link ever sent a HID report, close the port,
 * free. NULL ok. */
void okvm_link_free(struct okvm_link *l);

#ifdef __cplusplus
}
#endif
#endif
