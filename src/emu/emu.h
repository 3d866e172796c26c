/*
 * The virtual unit: a CH9329 behind a pseudo-terminal, and the target computer it types into.
 * See docs/virtual-unit.md for what it models and where every number comes from.
 *
 * Threads: emu_new/emu_start/emu_stop/emu_free and emu_add_listener belong to one owning thread.
 * emu_set_target_connected, emu_set_pins_plugged and emu_post_switch may be called from any
 * thread. Listeners run on the unit's own thread ("okvm-emu").
 */
#ifndef OKVM_EMU_H
#define OKVM_EMU_H

#include <stdbool.h>
#include <stdint.h>

#define EMU_DEFAULT_POLL_MS 10    /* target's HID poll interval (USB full-speed HID bInterval) */
#define EMU_DEFAULT_BAUD 9600     /* CH9329 factory baud, hardware.md 2.1 */
#define EMU_DEFAULT_VERSION 0x38  /* GET_INFO version byte of a real CH9329, hardware.md 2.4 */
#define EMU_CH32V208_VERSION 0x82 /* versions 0x82..0x84 mean a CH32V208 (hardware.md 2.4) */
#define EMU_CH9329F_PARAMS_LEN 72 /* a CH9329F's GET_PARA_CFG reply (One-KVM PR 302: 72 or 88) */
#define EMU_STRICT_GAP_MS 3       /* --emu-strict-gap: the idle time that ends a frame */

/** Which chip the unit carries. The CH32V208 additionally answers command 0x17 (USB switch). */
enum emu_chip_type {
	EMU_CHIP_CH9329 = 0,
	EMU_CHIP_CH32V208,
};

/*
 * Fill with emu_config_init() first: every field's zero means its default except
 * target_connected, whose default is true (a zeroed config starts with the target unplugged).
 */
struct emu_config {
	const char *link_path;   /* symlink to the pty slave, or NULL */
	int baud;                /* chip's baud at power-up; <= 0: 9600 (factory) */
	int poll_ms;             /* target's HID poll interval; <= 0: EMU_DEFAULT_POLL_MS */
	const char *layout;      /* layout the target decodes with; NULL: "us" */
	const char *events_path; /* --emu-events FILE (truncated at start), or NULL */
	bool target_connected;   /* target PC plugged in at start (emu_config_init: true) */
	enum emu_chip_type chip; /* default EMU_CHIP_CH9329 */
	uint8_t version;         /* GET_INFO version byte; 0: EMU_DEFAULT_VERSION */
	/* Variants where upstream sources disagree (docs/virtual-unit.md "Beliefs and variants"): */
	uint8_t params_len; /* GET_PARA_CFG reply length: 50 (0), a CH9329F 72 or 88 */
	bool no_info;       /* GET_INFO is never answered (some CH32V208 firmware) */
	bool strict_gap;    /* bytes < 3 ms after a frame's last byte belong to that frame */
	/* DATAFLIP (hardware.md 2.11: CTS toggles on every USB packet the chip uploads; wired on
	   Mini-KVM v1.9): 0 = the chip's default (on for ch9329/ch9329f, off for the CH32V208s,
	   whose wiring no source shows), 1 = on, -1 = off */
	int dataflip;
	/* where GET_INFO carries the version: 0 = DATA[0] (CH9329-P); 7 = DATA[0] 0x00 and the
	   version in DATA[7]; 3 = DATA[0] 0x01 and the version in DATA[3] (the layouts the macOS
	   app's SerialResponseHandler reads besides the first; --emu-chip ch32v208-d7, -d3) */
	uint8_t info_version_at;
	/* The extension pins (docs/virtual-unit.md "The extension pins"): a USB-serial adapter
	   wired to the target's ATX header and serial console (--emu-pins usb-serial) */
	bool pins_adapter;
	bool target_off; /* with pins_adapter: the target starts powered off (--emu-power off) */
};

/**
 * Set cfg for --emu-chip NAME: ch9329 (the default), ch9329f (72-byte GET_PARA_CFG), ch32v208
 * (KVM-Go: 0x17, fixed 115200, GET_INFO version 0x82) or ch32v208-quiet (the same, but never
 * answers GET_INFO; it still acknowledges HID reports). @return 0, or -EINVAL for another name.
 */
int emu_config_chip(struct emu_config *cfg, const char *name);
/** The names emu_config_chip() takes, for messages: "ch9329, ch9329f, ch32v208 or ...". */
extern const char emu_chip_names[];

enum emu_event_type {
	EMU_EV_TEXT,    /* {"type":"text","text":"H"} */
	EMU_EV_KEY,     /* {"type":"key","usage":4,"down":true} */
	EMU_EV_MOUSE,   /* {"type":"mouse","x":2048,"y":2048,"buttons":0,"wheel":0} */
	EMU_EV_USB,     /* {"type":"usb","connected":true} */
	EMU_EV_LEDS,    /* {"type":"leds","num":false,"caps":true,"scroll":false} */
	EMU_EV_SWITCH,  /* {"type":"switch","to":"target"} */
	EMU_EV_DROPPED, /* {"type":"dropped","report":"keyboard"} */
	/* Additions to ARCHITECTURE 4.2 (docs/virtual-unit.md): */
	EMU_EV_USB_POWER, /* {"type":"usb_power","on":false}: DTR powers the switchable USB-A port */
	EMU_EV_MEDIA,     /* {"type":"media","id":2,"bits":[4,0,0]}: consumer/ACPI report */
	/* The extension pins (pins.c): */
	EMU_EV_POWER,   /* {"type":"power","state":"on","cause":"button"}: on = on, text = cause */
	EMU_EV_ATX,     /* {"type":"atx","switch":"power","closed":true}: report, down */
	EMU_EV_CONSOLE, /* {"type":"console","dir":"out","text":"login: "}: report = dir, text */
	EMU_EV_ADAPTER, /* {"type":"adapter","plugged":false}: the pins' adapter unplugged: on */
};

/** One thing the target experienced. Pointers are valid only during the listener call. */
struct emu_event {
	enum emu_event_type type;
	const char *text;   /* TEXT: UTF-8 */
	uint8_t usage;      /* KEY: HID usage page 0x07 (modifiers 0xE0..0xE7) */
	bool down;          /* KEY */
	uint16_t x, y;      /* MOUSE: chip units 0..4096 */
	uint8_t buttons;    /* MOUSE: OKVM_BTN_* */
	int8_t wheel;       /* MOUSE: + up */
	bool on;            /* USB: connected; USB_POWER: powered */
	uint8_t leds;       /* LEDS: OKVM_LED_* bits */
	bool to_target;     /* SWITCH */
	const char *report; /* DROPPED: "keyboard", "mouse" or "media" */
	uint8_t media_id;   /* MEDIA: 1 ACPI, 2 multimedia */
	uint8_t media_bits[3];
};

typedef void (*emu_listener)(const struct emu_event *ev, void *ud); /* from the emu thread */

struct emu;

/** Defaults: factory baud, default poll interval, "us", target connected, CH9329. */
void emu_config_init(struct emu_config *cfg);

/** Copies cfg (strings too). Aborts on OOM; never fails otherwise. */
struct emu *emu_new(const struct emu_config *cfg);
/**
 * Create the pty (and link, modem socket, events file) and start the "okvm-emu" thread.
 * @return 0; -ENOENT if the layout does not exist; -EEXIST if link_path exists and is not a
 *         symlink; -EALREADY if running; other -errno from the system.
 */
int emu_start(struct emu *e);
/** pty slave, or link_path when given: what to pass to okvm_serial_open(). NULL if not started. */
const char *emu_tty_path(struct emu *e);
/** The pty slave itself (/dev/pts/N). NULL if not started. */
const char *emu_pty_name(struct emu *e);
/** Unix datagram socket for DTR/RTS (docs/contracts.md section 1). NULL if not started. */
const char *emu_modem_socket(struct emu *e);
/** Before emu_start. Up to 8 listeners. */
void emu_add_listener(struct emu *e, emu_listener fn, void *ud);
/** The extension pins' USB-serial adapter: its tty (link_path + ".pins", else the pty slave)
 *  and its modem socket. NULL when not started or without --emu-pins. */
const char *emu_pins_tty(struct emu *e);
const char *emu_pins_modem_socket(struct emu *e);
/** Plug or unplug the target PC (the CH9329's USB side). Any thread. */
void emu_set_target_connected(struct emu *e, bool on);
/** Unplug or plug back the USB-serial adapter on the pins (--emu-pins): unplugged, its tty and
 *  modem socket vanish and its lines drop (a held switch opens); plugged, a fresh pty at the same
 *  link. Any thread; nothing without --emu-pins. */
void emu_set_pins_plugged(struct emu *e, bool plugged);
/** The USB switch moved (e.g. the video chip's GPIO): emits a switch event. Any thread. */
void emu_post_switch(struct emu *e, bool to_target);
/**
 * Stops the thread, closes the pty (the host sees an unplug), removes link and socket.
 * Listeners run on the thread being joined: do not call this while holding a lock they take.
 */
void emu_stop(struct emu *e);
/** Stops if running. NULL ok. */
void emu_free(struct emu *e);

/**
 * Format an event as its JSON line (no newline), keys in ARCHITECTURE 4.2 order.
 * @return a malloc'd string the caller frees.
 */
char *emu_event_json(const struct emu_event *ev);

#endif
