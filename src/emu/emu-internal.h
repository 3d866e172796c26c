/* The virtual unit's internals, shared by emu.c, ch9329-emu.c, target.c, pins.c and events.c. */
#ifndef OKVM_EMU_INTERNAL_H
#define OKVM_EMU_INTERNAL_H

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <stdint.h>

#include "emu/emu.h"
#include "okvm/ch9329.h"

#define EMU_NEVER UINT64_MAX
#define EMU_FIFO_CAP 512 /* bytes on the wire in one direction, not yet delivered */
#define EMU_MAX_LISTENERS 8
#define EMU_PKT_CAP 256 /* strict_gap: longest packet kept (two longest host frames fit) */
#define EMU_RTS_FACTORY_NS 3000000000ull  /* DEF low > 3 s (hardware.md 2.10, 2.11) */
#define EMU_FACTORY_DELAY_NS 200000000ull /* restored 200 ms after release (hardware.md 2.15) */

/* Bytes in flight on one wire direction, each with the time its stop bit ends. */
struct emu_fifo {
	uint8_t b[EMU_FIFO_CAP];
	uint64_t t[EMU_FIFO_CAP];
	size_t head, n;
};

enum emu_slot_kind { EMU_SLOT_KBD, EMU_SLOT_MOUSE, EMU_SLOT_MEDIA, EMU_SLOTS };

/* The newest report of one HID endpoint, waiting for the target's next poll. */
struct emu_slot {
	bool pending;
	uint64_t tick; /* poll that picks it up */
	uint8_t cmd;   /* CH9329 command it came with */
	uint8_t len;
	uint8_t data[8];
};

struct emu_chip {
	/* Stored (what GET_PARA_CFG/GET_USB_STRING show; survives RESET). */
	struct okvm_ch9329_params stored;
	char strings[3][OKVM_CH9329_STRING_MAX + 1];
	uint8_t string_len[3];
	/* Applied at power-up and RESET. */
	int baud;
	uint8_t addr;
	uint8_t mode;    /* low two bits of the mode byte */
	uint64_t gap_ns; /* packet end interval */
	/* Wire state. */
	struct okvm_ch9329_parser parser;
	struct emu_fifo rx, tx;
	uint64_t rx_wire_end; /* stop bit of the last byte the host has sent */
	uint64_t last_rx;     /* stop bit of the last byte the chip has taken */
	uint64_t tx_wire_end;
	uint64_t reset_at;   /* EMU_NEVER or when RESET takes effect (its reply has left) */
	uint64_t factory_at; /* EMU_NEVER or when the DEF-pin factory reset takes effect */
	bool rts, dtr;
	uint64_t rts_since;
	bool usb_to_target; /* CH32V208 switch position */
	/* strict_gap: the bytes of the packet being received, ended by an idle line */
	uint8_t pkt[EMU_PKT_CAP];
	size_t pkt_n;
};

struct emu_target {
	bool plugged;    /* the target PC is attached to the chip's USB device side */
	bool enumerated; /* plugged and not in the middle of a re-enumeration */
	uint64_t poll_ns, t0;
	struct emu_slot slot[EMU_SLOTS];
	struct okvm_kbd_decoder *dec;
	uint16_t x, y;
	uint8_t buttons;
	uint8_t leds;
	bool off; /* the target PC is powered off (pins.c): no USB, reports dropped */
};

struct emu_listener_entry {
	emu_listener fn;
	void *ud;
};

struct emu {
	/* Configuration (owned copies). */
	char *link_path, *layout, *events_path;
	int cfg_baud, poll_ms;
	bool cfg_connected;
	enum emu_chip_type chip_type;
	uint8_t version;
	uint8_t params_len; /* GET_PARA_CFG reply length */
	bool no_info;       /* never answers GET_INFO */
	bool strict_gap;    /* frames end by idle time, not by LEN (docs/virtual-unit.md) */
	bool dataflip;      /* CTS toggles on every report the target takes (hardware.md 2.11) */
	/* GET_INFO: the version in DATA[0] (0), or DATA[7] / DATA[3] (7, 3) */
	uint8_t info_version_at;
	struct emu_listener_entry listeners[EMU_MAX_LISTENERS];
	int n_listeners;
	/* Running state. */
	bool running;
	pthread_t thread;
	int master, slave_hold, modem, wake, events_fd;
	char pty_name[64];
	char *modem_path, *tmpdir;
	pthread_mutex_t lock; /* guards the requests below */
	int req_connected;    /* -1 none, else 0/1 */
	int req_switch;       /* -1 none, else 0/1 */
	int req_pins;         /* -1 none, else 0/1: unplug / plug the pins' adapter */
	bool req_stop;
	struct emu_chip chip;
	struct emu_target target;
	/* DATAFLIP: the CTS line and who watches it (the host side that sent "WATCH") */
	bool cts;
	struct sockaddr_un cts_peer;
	socklen_t cts_peer_len; /* 0: nobody watches */
	/* The extension pins (pins.c): a USB-serial adapter wired to the ATX header and console */
	bool cfg_pins, cfg_power_on;
	struct emu_pins *pins; /* NULL: nothing on the pins */
};

/* emu.c: what the unit's CH340 and the pins' adapter both are (a pty with a link, and the modem
 * datagram socket of contracts section 1) */
int emu_open_pty(int baud, int *master, int *slave_hold, char *name, size_t namesz);
int emu_make_link(const char *link, const char *target); /* -EEXIST: not a symlink there */
int emu_bind_modem(const char *path, int *fd);
typedef void (*emu_modem_fn)(struct emu *e, const char *msg, const struct sockaddr_un *from,
			     socklen_t flen, uint64_t now);
/** Every datagram waiting on fd, NUL-terminated, with its sender. */
void emu_modem_each(struct emu *e, int fd, emu_modem_fn fn, uint64_t now);

/* events.c */
void emu_emit(struct emu *e, const struct emu_event *ev);

/* ch9329-emu.c */
void chip_power_up(struct emu *e, uint64_t now);
void chip_host_bytes(struct emu *e, const uint8_t *p, size_t n, int host_baud, uint64_t now);
uint64_t chip_next_due(const struct emu *e);
void chip_run(struct emu *e, uint64_t t);
void chip_flush_tx(struct emu *e, int host_baud, uint64_t now);
uint64_t chip_next_tx(const struct emu *e);
void chip_modem(struct emu *e, const char *msg, uint64_t now);
uint64_t emu_byte_ns(int baud);

/* target.c */
int target_init(struct emu *e, uint64_t now);
void target_fini(struct emu *e);
/** A HID report arrived from the host at time t (the chip has validated it). */
void target_submit(struct emu *e, enum emu_slot_kind k, uint8_t cmd, const uint8_t *data,
		   uint8_t len, uint64_t t);
uint64_t target_next_due(const struct emu *e);
/* emu.c: the chip uploaded a report to the target: DATAFLIP toggles (when modelled). */
void emu_dataflip(struct emu *e);
void target_run(struct emu *e, uint64_t t);
void target_set_plugged(struct emu *e, bool on);
/** The chip re-enumerates (RESET): the target loses and finds the device again. */
void target_reenumerate(struct emu *e);

void target_set_powered(struct emu *e, bool on);

/* pins.c: the extension pins' USB-serial adapter, ATX header and the target's power */
struct pollfd;
int pins_open(struct emu *e);
void pins_close(struct emu *e);
void pins_start(struct emu *e);
int pins_pollfds(struct emu *e, struct pollfd *pfd); /* fills 0 or 2 entries */
void pins_ready(struct emu *e, const struct pollfd *pfd, uint64_t now);
uint64_t pins_next_due(const struct emu *e);
void pins_run(struct emu *e, uint64_t now);
/** Unplug (its pty and socket go, its lines drop) or plug back the adapter. */
void pins_set_plugged(struct emu *e, bool plugged, uint64_t now);

#endif
