/* The Openterface products okvm knows, in one table: USB identities, hub ports, serial speed,
 * chips and features. Everything that tells one product from another is data here. */
#ifndef OKVM_MODELS_H
#define OKVM_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "okvm/chip.h"
#include "okvm/discover.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One entry per product (docs/hardware.md 1.1, 1.2). Revisions whose USB parts have the same
 * IDs (Mini-KVM v1.9 and v1.6, KVM-Go on a USB 2 or USB 3 path) cannot be told apart by
 * discovery; a lookup by ID returns the first of them, so the most capable one comes first. */
enum okvm_model_id {
	OKVM_MODEL_MINI_KVM_V1_9,
	OKVM_MODEL_MINI_KVM_V1_6,
	OKVM_MODEL_KVM_GO_USB3,
	OKVM_MODEL_KVM_GO_USB2,
	OKVM_MODEL_KVM_VGA,
};

/* The chip that types into the target (hardware.md 1.1, 2.1). */
enum okvm_hid_kind {
	OKVM_HID_CH9329,   /* WCH CH9329 over UART behind a CH340 USB-serial bridge: /dev/ttyUSB* */
	OKVM_HID_CH32V208, /* WCH CH32V208 MCU, CDC-ACM (/dev/ttyACM*): CH9329 frames + cmd 0x17 */
};

/* How the parts of one unit hang together on the host's USB tree (hardware.md 1.2, 1.3). */
enum okvm_model_topology {
	OKVM_TOPO_HUB_PORTS, /* the unit's own hub, each part on a fixed port (okvm_model_ports) */
	OKVM_TOPO_SAME_HUB,  /* capture composite and serial below one parent hub (USB 2 path) */
	OKVM_TOPO_COMPANION, /* composite on SuperSpeed, serial below the hub's USB 2 twin */
};

enum okvm_model_part { OKVM_PART_VIDEO, OKVM_PART_SERIAL, OKVM_PART_HUB };

/* Features (bits of okvm_model.features). */
enum okvm_model_feature {
	OKVM_MODEL_SOFT_SWITCH = 1u << 0,   /* the video chip's register routes the USB-A port */
	OKVM_MODEL_HW_TOGGLE = 1u << 1,     /* a physical toggle switch for the USB-A port */
	OKVM_MODEL_TOGGLE_READ = 1u << 2,   /* its position is readable (video chip GPIO0) */
	OKVM_MODEL_SERIAL_SWITCH = 1u << 3, /* the HID chip's command 0x17 routes the port */
	OKVM_MODEL_DTR_POWER = 1u << 4,     /* serial DTR cuts the USB-A port's ground */
	OKVM_MODEL_RTS_RESET = 1u << 5,     /* RTS drives the CH9329 DEF pin (hardware.md 2.10) */
	OKVM_MODEL_DATAFLIP = 1u << 6,      /* serial CTS toggles per HID packet (CH9329 UP pin) */
	OKVM_MODEL_AUDIO = 1u << 7,         /* the capture composite carries HDMI audio (UAC) */
	OKVM_MODEL_SD_CARD = 1u << 8,       /* a micro-SD reader (USB mass storage) */
};

/* One USB device of a unit. vid:pid 0:0 = the product has no such part, or it is not known. */
struct okvm_usb_part {
	uint16_t vid, pid;
	const char *product;      /* USB product string as Linux shows it; NULL if not known */
	const char *manufacturer; /* NULL if not known */
};

/* Downstream ports of the unit's own hub (OKVM_TOPO_HUB_PORTS); 0 = no such role. */
struct okvm_model_ports {
	int video;      /* the capture composite */
	int serial;     /* the serial bridge to the HID chip */
	int switchable; /* the switchable USB-A port while routed to the host */
	int ext;        /* the host-side extension pins */
};

struct okvm_model {
	const char *name;               /* "Mini-KVM v1.9" */
	enum okvm_variant variant;      /* what discovery reports (okvm_variant_name) */
	enum okvm_chip_kind video_chip; /* MS2109, MS2109S, MS2130S */
	enum okvm_hid_kind hid_chip;
	struct okvm_usb_part video, serial, hub;
	enum okvm_model_topology topology;
	struct okvm_model_ports ports;
	int fixed_baud;    /* the serial speed is fixed at this; 0 = settable */
	unsigned features; /* enum okvm_model_feature bits */
};

/* A HID chip kind: the serial speeds it runs at and the identity the target computer sees. */
struct okvm_hid_chip {
	const char *name; /* "CH9329" */
	int factory_baud;
	const int *bauds; /* ascending */
	size_t n_bauds;
	uint16_t target_vid, target_pid; /* factory USB ID on the target side; 0:0 if not known */
};

/** The model with this id, or NULL past the end of the table (iterate from 0 until NULL).
 *  Pointers into a constant table: valid forever, any thread. */
const struct okvm_model *okvm_model_get(enum okvm_model_id id);

/** One part of a model (OKVM_PART_VIDEO, _SERIAL, _HUB); NULL for an unknown part. */
const struct okvm_usb_part *okvm_model_part(const struct okvm_model *m, enum okvm_model_part p);

/** True if the model's part has this USB ID (never for a part the model lacks). */
bool okvm_model_part_is(const struct okvm_model *m, enum okvm_model_part p, uint16_t vid,
			uint16_t pid);

/**
 * The first model whose part `p` has this USB ID (hardware.md 1.3: the capture chip's ID decides).
 * @return the model, or NULL when no model has such a part
 */
const struct okvm_model *okvm_model_find(uint16_t vid, uint16_t pid, enum okvm_model_part p);

/** The model of a discovered (or virtual) unit: by its capture chip's ID within its variant,
 *  else the first model of its variant. NULL only for an unknown variant. */
const struct okvm_model *okvm_model_of_unit(const struct okvm_unit_info *u);

/**
 * The serial speed a unit's HID chip is fixed at (CH32V208: 115200, hardware.md 2.1), for a link to
 * use instead of detecting; 0 when the speed is settable (CH9329: detect 115200/9600).
 */
int okvm_model_fixed_baud(const struct okvm_unit_info *u);

/** A HID chip kind's row; NULL for an unknown kind. */
const struct okvm_hid_chip *okvm_hid_chip_get(enum okvm_hid_kind k);

/** True if the chip runs at this serial speed (CH9329: 1200..115200, hardware.md 2.1). */
bool okvm_hid_chip_baud_ok(enum okvm_hid_kind k, int baud);

#ifdef __cplusplus
}
#endif
#endif
