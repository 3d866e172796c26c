/*
 * One unit as the tools use it: where its CH9329 is (discovery by -d N, by port chain, the first
 * unit found, a tty path, or the parts of the virtual unit), the baud to open it at, its link,
 * a name for people, and where its nodes are now after a re-plug (found again by port chain
 * from a hot-plug watch, not a fresh sysfs scan each time).
 */
#ifndef OKVM_UNIT_H
#define OKVM_UNIT_H

#include <stddef.h>

#include "okvm/chip.h"
#include "okvm/discover.h"
#include "okvm/link.h"
#include "okvm/video.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A unit made by the caller (the virtual unit): its pty and modem datagram socket, its video
 * chip and its screen. */
struct okvm_unit_parts {
	const char *tty;          /* set: open this, no discovery; device and serial are ignored */
	const char *modem_socket; /* docs/contracts.md section 1; NULL = none/PATH.modem */
	int baud;                 /* the emulated chip's baud; 0 = detect */
	struct okvm_chip *chip;   /* its video chip or NULL; the unit takes it (okvm_chip_free) */
	struct okvm_capture *capture; /* its screen or NULL; lent: the unit never frees it, and
					 stops wanting frames at okvm_unit_free */
};

struct okvm_unit_spec {
	const char *device;     /* as -d takes it: NULL = the first unit found, "2" (okvm list),
				   a port chain ("3-3", or a part's, "3-3.2"), a node path
				   ("/dev/ttyUSB0": the discovered unit with that node, else
				   the path used as given) */
	const char *serial;     /* --serial PATH: used as given, no discovery; wins over device */
	int baud;               /* 0 = the model's fixed baud (CH32V208) else detect; > 0 this */
	const char *sysfs_root; /* NULL = okvm_discover_default_root() */
	int rescan_ms;          /* the hot-plug watch's rescan period; <= 0 = 1000 */
	struct okvm_link_config link; /* template (pacing, info poll); path, baud and
					 modem_socket are the unit's own */
	struct okvm_unit_parts parts;
};

struct okvm_unit;

/**
 * Resolve the spec: which unit, which tty, which baud. Opens no device node.
 * @return 0 (*out set), -ENOENT when no unit matches (none found, or -d names none of them),
 *         or the scan's -errno when the sysfs tree cannot be read (-EACCES ...).
 * Aborts on OOM. Any thread; the unit then belongs to it (see the locate functions).
 */
int okvm_unit_new(const struct okvm_unit_spec *spec, struct okvm_unit **out);

/**
 * Create and open the link (okvm_link_new + okvm_link_open).
 * @return 0, -ENODEV when the discovered unit has no serial port (no ch341/cdc_acm node),
 *         -EALREADY when it is open, or okvm_link_open()'s error (the link is then freed).
 */
int okvm_unit_connect(struct okvm_unit *u);

/**
 * Open the link for the serial port's modem lines only (okvm_link_dtr_pulse: the switchable
 * port's power on a Mini-KVM v1.9): nothing is sent to the chip, so it need not answer.
 * @return as okvm_unit_connect().
 */
int okvm_unit_connect_lines(struct okvm_unit *u);

/**
 * okvm_unit_new() + okvm_unit_connect(); on failure nothing is left (*out untouched).
 * @return 0, or either one's error.
 */
int okvm_unit_open(const struct okvm_unit_spec *spec, struct okvm_unit **out);

/** The open link; NULL before okvm_unit_connect() succeeded or after okvm_unit_take_link(). */
struct okvm_link *okvm_unit_link(const struct okvm_unit *u);
/** Hand the link over: the caller frees it (okvm_link_free); the unit then has none. */
struct okvm_link *okvm_unit_take_link(struct okvm_unit *u);
/** The unit as discovered when it was resolved; NULL for --serial, parts, or a path that is
 *  no discovered unit's node. */
const struct okvm_unit_info *okvm_unit_info(const struct okvm_unit *u);
/** For people: "PRODUCT CHAIN" ("unit CHAIN" without a product string), the tty path, or
 *  "virtual unit (emu)" for parts. Never NULL. */
const char *okvm_unit_name(const struct okvm_unit *u);
/** The tty the link opens (at connect): "" for a discovered unit without a serial port. */
const char *okvm_unit_serial_path(const struct okvm_unit *u);
/** The baud the link opens at: 0 = detection (hardware.md 2.10). */
int okvm_unit_baud(const struct okvm_unit *u);

/**
 * Open the unit's video chip (MS2109/MS2109S/MS2130S) on its hidraw node, the kind from the
 * model table (okvm_model_of_unit); the parts' chip for the virtual unit.
 * @return 0, -EALREADY when it is open, -ENXIO when the unit has no known video chip (a tty
 *         path, --serial, parts without a chip), -ENOTSUP when its model's video chip is not
 *         reached through hidraw, -ENODEV when the discovered unit has no hidraw node (usbhid
 *         not bound), or okvm_chip_open()'s error (-EACCES: no udev rule ...).
 */
int okvm_unit_open_chip(struct okvm_unit *u);
/** The open video chip; NULL before okvm_unit_open_chip() succeeded or after take. */
struct okvm_chip *okvm_unit_chip(const struct okvm_unit *u);
/** Hand the chip over: the caller frees it (okvm_chip_free); the unit then has none. */
struct okvm_chip *okvm_unit_take_chip(struct okvm_unit *u);
/** The video chip's node for people: the hidraw path, "(virtual)" for parts, else "". */
const char *okvm_unit_chip_path(const struct okvm_unit *u);

/**
 * The unit's capture, not yet started: video set = that V4L2 node as given (it follows no
 * re-plug); else the parts' screen; else the discovered unit's capture node, followed across
 * a re-plug (okvm_capture_new_v4l2_located with okvm_unit_locate_video). mode as
 * okvm_capture_new_v4l2 takes it (NULL = largest @30). The unit frees it (okvm_unit_free),
 * except the parts' screen, which it only lends.
 * @return 0, -EALREADY when one is open, -ENXIO when video is NULL and the unit has no known
 *         capture node (a tty path, --serial, parts without a screen), -EINVAL for a bad mode.
 */
int okvm_unit_open_capture(struct okvm_unit *u, const char *video, const char *mode);
/** The open capture; NULL before okvm_unit_open_capture() succeeded. */
struct okvm_capture *okvm_unit_capture(const struct okvm_unit *u);

/**
 * Where the unit's serial / capture node is now: the node of the unit with the same port chain
 * in the hot-plug watch's last scan (the watch is dispatched first, without blocking). The
 * serial node must also exist in /dev. Fits the locate callbacks of serve_unit_config and
 * okvm_capture_new_v4l2_located(). Thread-safe (a mutex; link and capture threads may ask at
 * once). @return 0 (buf filled), -ENODEV (not there now; also for units not discovered),
 *         -ENOSPC (buf too small).
 */
int okvm_unit_locate_serial(struct okvm_unit *u, char *buf, size_t n);
int okvm_unit_locate_video(struct okvm_unit *u, char *buf, size_t n);

/**
 * The hot-plug watch's fd (libudev monitor + timer, see okvm_discover_watch_new): poll it for
 * POLLIN, then call okvm_unit_dispatch(). -1 for units not discovered (nothing to follow).
 */
int okvm_unit_get_fd(struct okvm_unit *u);
/**
 * Non-blocking: take the watch's news. @return 1 when the unit's nodes changed (or it left or
 * came back) since the last dispatch or locate, 0 when not, -errno from the rescan.
 * Thread-safe, like the locate functions.
 */
int okvm_unit_dispatch(struct okvm_unit *u);

/** Free the link (release-all first, as okvm_link_free does), the capture, the chip, the watch,
 *  the unit. NULL ok. */
void okvm_unit_free(struct okvm_unit *u);

#ifdef __cplusplus
}
#endif
#endif
