/* The video chip's registers (MS2109, MS2109S, MS2130S) and the USB switch. */
#ifndef OKVM_CHIP_H
#define OKVM_CHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "okvm/ch9329.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the switchable USB-A port is routed: enum okvm_usb_dir of okvm/ch9329.h (the 0x17
 * command's direction bytes, OKVM_USB_TO_HOST / OKVM_USB_TO_TARGET). */

enum okvm_chip_kind { OKVM_CHIP_MS2109, OKVM_CHIP_MS2109S, OKVM_CHIP_MS2130S };

/** Chip kind from the capture device's VID:PID (hardware.md 1.3); -ENODEV for other devices. */
int okvm_chip_kind_from_usb(uint16_t vid, uint16_t pid, enum okvm_chip_kind *out);
const char *okvm_chip_kind_name(enum okvm_chip_kind k); /* "MS2109" ... */

/* Where feature reports go: hidraw for a real unit, a register model in tests and the virtual
 * unit. Both return 0 / bytes read, or -errno. buf[0] is the report id. */
struct okvm_chip_transport {
	int (*set_feature)(void *ud, const uint8_t *buf, size_t len);
	int (*get_feature)(void *ud, uint8_t *buf, size_t len);
	void (*close)(void *ud); /* may be NULL */
};

struct okvm_chip;

/** A chip over any transport. Aborts on OOM; takes ownership of ud if t->close is set. */
struct okvm_chip *okvm_chip_new(enum okvm_chip_kind kind, const struct okvm_chip_transport *t,
				void *ud);
/**
 * Open the hidraw node of a capture chip (kind from its sysfs parents, like the official app).
 * @param sysfs_root NULL = default (OKVM_SYSFS_ROOT or /sys); used only to detect the kind,
 *        which falls back to MS2109 when the node is not found there
 * @return 0, -ENOENT, -EACCES (no udev rule or group: docs/hardware-setup.md), -errno
 */
int okvm_chip_open(const char *hidraw_path, const char *sysfs_root, struct okvm_chip **out);
void okvm_chip_free(struct okvm_chip *c); /* NULL ok */
enum okvm_chip_kind okvm_chip_kind(const struct okvm_chip *c);

/**
 * One register transaction (SET then GET), trying the chip's report id/length fall-backs of
 * hardware.md 3.1 in order; the first that works is remembered for later transactions.
 * @return 0, -EPROTO (the response echoes another request; one without any echo is taken),
 *         -ENOTSUP (no report format worked), -ENODEV (unplugged), -errno. Not thread-safe: one transaction at a time
 *         per chip (the owner serialises).
 */
int okvm_chip_read(struct okvm_chip *c, uint16_t addr, uint8_t *val);
/** Answers taken so far that echoed the request's command and address, and that echoed
 *  nothing (hardware.md 3.1: whether the MS2109S/MS2130S echo is not known; okvm doctor). */
void okvm_chip_echo_counts(const struct okvm_chip *c, unsigned *echoed, unsigned *not_echoed);
int okvm_chip_write(struct okvm_chip *c, uint16_t addr, uint8_t val);
/** Big-endian 16-bit value as two single-byte reads, high address first (as QT does). */
int okvm_chip_read16(struct okvm_chip *c, uint16_t addr_hi, uint16_t *val);
/** EEPROM: up to 5 bytes per transaction (0xE5). */
int okvm_chip_eeprom_read(struct okvm_chip *c, uint16_t addr, uint8_t *buf, size_t n);

/** Firmware version "24081309" (each byte two decimal digits; all-0xFF -> "00000000"). */
int okvm_chip_firmware(struct okvm_chip *c, char out[9], unsigned long *number);

struct okvm_chip_status {
	char firmware[9];
	bool signal;
	int width, height;  /* normalised (hardware.md 3.2 quirks); 0 without signal */
	double fps;         /* Hz */
	double pixel_clock; /* MHz */
	bool has_toggle;    /* the chip reports the hardware toggle (MS2109) */
	enum okvm_usb_dir toggle;
	bool has_switch;       /* the chip drives the USB switch (MS2109) */
	enum okvm_usb_dir usb; /* where the switch register routes the port */
};
/** Everything `okvm info` shows; mode fields only when there is a signal. */
int okvm_chip_get_status(struct okvm_chip *c, struct okvm_chip_status *out);

/** Hardware toggle position (0xDF00 bit0). -ENOTSUP on chips without it. */
int okvm_chip_get_toggle(struct okvm_chip *c, enum okvm_usb_dir *out);
/** The soft switch (0xDF01, the firmware's bit; hardware.md 3.2/3.3). -ENOTSUP on other chips. */
int okvm_chip_get_switch(struct okvm_chip *c, enum okvm_usb_dir *out);
/** Read-modify-write of 0xDF01; only the firmware's bit changes. No DTR pulse here. */
int okvm_chip_set_switch(struct okvm_chip *c, enum okvm_usb_dir dir);

/* ---- The USB switch across hardware (hardware.md 3.3) ---- */

/* How a unit switches; the front-end fills in what it has. */
struct okvm_usb_switch {
	struct okvm_chip *chip; /* Mini-KVM v1.9: MS2109 register */
	/* Power-cycle the switchable port (DTR asserted for ms, released; hardware.md 2.11). */
	int (*dtr_pulse)(void *ud, int ms);
	/* CH32V208 (KVM-Go/VGA): serial command 0x17; dir query with query=true. */
	int (*serial_switch)(void *ud, bool query, enum okvm_usb_dir dir, enum okvm_usb_dir *now);
	void *ud;
	int pulse_ms; /* 0 = 500 (QT restartSwitchableUSB) */
};

/**
 * Route the switchable port. MS2109: read-modify-write 0xDF01, then the DTR pulse so the device
 * re-enumerates on the new side. CH32V208: command 0x17. Neither: -ENOTSUP (v1.6 hardware:
 * only the physical toggle switches).
 * @return 0; -errno of the failing step (a failed DTR pulse after a good register write is
 *         returned too: the port may need a replug)
 */
int okvm_usb_switch_set(const struct okvm_usb_switch *sw, enum okvm_usb_dir dir);
/** Where the port is routed now. */
int okvm_usb_switch_get(const struct okvm_usb_switch *sw, enum okvm_usb_dir *out);
/**
 * "follow": one step of mirroring the hardware toggle, as the official app does once a second.
 * Reads the toggle and, if it differs from the last position seen (*last; start with -1),
 * switches. @return 1 when it switched, 0 when nothing changed, -errno.
 */
int okvm_usb_switch_follow_step(const struct okvm_usb_switch *sw, int *last);

#ifdef __cplusplus
}
#endif
#endif
