/*
 * DESIGN: the one table of Openterface products (docs/hardware.md 1.1 VID:PID table, 1.2
 * topology and hub ports, 2.1 serial speeds, 3.3 USB switch per hardware, 2.11 modem lines).
 * Discovery, the video-chip code, the virtual unit's sysfs writer and the CLI look products up
 * here instead of comparing VID/PID literals; this file is the only one in src/ that holds them.
 *
 * Adding a product is adding a row (and an okvm_model_id). Rows that share their USB IDs must
 * share their variant, and the most capable revision comes first: a lookup by ID returns it
 * (discovery cannot tell a Mini-KVM v1.9 from a v1.6, so it looks for the v1.9's extension
 * pins on every Mini-KVM).
 *
 * What it does not do: read sysfs or open anything. Thread: any; constant data only.
 */
#include <stddef.h>

#include "okvm/models.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* hardware.md 1.1 and the recorded trees in tests/fixtures/sysfs: each part's IDs and strings */
/* clang-format off */
#define MS2109_OPENTERFACE { 0x534D, 0x2109, "Openterface", "MACROSILICON" }
#define MS2109S_VGA { 0x345F, 0x2109, NULL, NULL }
#define MS2130S_GO { 0x345F, 0x2132, NULL, NULL }
#define CH340_SERIAL { 0x1A86, 0x7523, "USB2.0-Serial", NULL }
#define CH32V208_SERIAL { 0x1A86, 0xFE0C, NULL, NULL }
#define SL21_HUB { 0x1A40, 0x0101, "USB 2.0 Hub", NULL } /* CoreChips SL2.1s (BOM) */
#define NO_PART { 0, 0, NULL, NULL }
/* clang-format on */

/* CH32V208 units run at a fixed 115200 (hardware.md 2.1, QT CH32V208Strategy.h) */
#define CH32V208_BAUD 115200

/* The parts, chips and topology of each family: rows that share their USB IDs share these. */
#define MINI_KVM_PARTS                                                                    \
	.variant = OKVM_VARIANT_MINI_KVM, .video_chip = OKVM_CHIP_MS2109,                 \
	.hid_chip = OKVM_HID_CH9329, .video = MS2109_OPENTERFACE, .serial = CH340_SERIAL, \
	.hub = SL21_HUB, .topology = OKVM_TOPO_HUB_PORTS
#define KVM_GO_PARTS                                                                   \
	.variant = OKVM_VARIANT_KVM_GO, .video_chip = OKVM_CHIP_MS2130S,               \
	.hid_chip = OKVM_HID_CH32V208, .video = MS2130S_GO, .serial = CH32V208_SERIAL, \
	.hub = NO_PART, .fixed_baud = CH32V208_BAUD,                                   \
	.features = OKVM_MODEL_SERIAL_SWITCH | OKVM_MODEL_AUDIO | OKVM_MODEL_SD_CARD

static const struct okvm_model models[] = {
	/* Host hub HUB1: MS2109 on port 1, CH340C on 2, FSUSB42 mux (switchable USB-A) on 3,
	 * extension header PROBE_USB pins 2/3 on 4 (hardware.md 1.2, v1.9 schematic). The toggle
	 * only drives MS2109 GPIO0; the app mirrors it into SPDIFOUT, which drives the mux
	 * (hardware.md 3.3). CH340 DTR# powers the USB-A port, RTS# is CH9329 DEF, CTS# is DATAFLIP
	 * (hardware.md 2.11). */
	[OKVM_MODEL_MINI_KVM_V1_9] = {
		.name = "Mini-KVM v1.9",
		MINI_KVM_PARTS,
		.ports = { .video = 1, .serial = 2, .switchable = 3, .ext = 4 },
		.features = OKVM_MODEL_SOFT_SWITCH | OKVM_MODEL_HW_TOGGLE | OKVM_MODEL_TOGGLE_READ |
			    OKVM_MODEL_DTR_POWER | OKVM_MODEL_RTS_RESET | OKVM_MODEL_DATAFLIP |
			    OKVM_MODEL_AUDIO,
	},
	/* Same parts and hub, no extension header (hardware.md 1.2); the toggle drives the mux
	 * directly, RTS/DTR/CTS are unconnected and there is no software switch
	 * (hardware.md 2.11, 3.3). */
	[OKVM_MODEL_MINI_KVM_V1_6] = {
		.name = "Mini-KVM v1.6",
		MINI_KVM_PARTS,
		.ports = { .video = 1, .serial = 2, .switchable = 3 },
		.features = OKVM_MODEL_HW_TOGGLE | OKVM_MODEL_AUDIO,
	},
	/* MS2130S composite on the SuperSpeed bus; the CH32V208 serial and the micro-SD reader
	 * under the hub's USB 2 half, a different port chain (hardware.md 1.2, QT "companion port
	 * chain"). The hub's own ID is not known. Switch: command 0x17 (hardware.md 3.3). Audio: QT
	 * matches the audio device by "345F" (hardware.md 1.1 strings). */
	[OKVM_MODEL_KVM_GO_USB3] = {
		.name = "KVM-Go USB3",
		KVM_GO_PARTS,
		.topology = OKVM_TOPO_COMPANION,
	},
	/* On a USB 2 path: one hub holding the serial, the micro-SD reader and the composite. */
	[OKVM_MODEL_KVM_GO_USB2] = {
		.name = "KVM-Go USB2",
		KVM_GO_PARTS,
		.topology = OKVM_TOPO_SAME_HUB,
	},
	/* MS2109S + CH32V208 (QT "KVMVGA (345F:2109)", AND "KVMGO-VGA"); no schematic is public,
	 * so only what the apps use is set: the 0x17 switch (hardware.md 3.3). */
	[OKVM_MODEL_KVM_VGA] = {
		.name = "KVM-VGA",
		.variant = OKVM_VARIANT_KVM_VGA,
		.video_chip = OKVM_CHIP_MS2109S,
		.hid_chip = OKVM_HID_CH32V208,
		.video = MS2109S_VGA,
		.serial = CH32V208_SERIAL,
		.hub = NO_PART,
		.topology = OKVM_TOPO_SAME_HUB,
		.fixed_baud = CH32V208_BAUD,
		.features = OKVM_MODEL_SERIAL_SWITCH,
	},
};

/* CH9329-D: 1200..115200, factory 9600 (hardware.md 2.1); the standard speeds of that range. */
static const int ch9329_bauds[] = { 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 };
static const int ch32v208_bauds[] = { CH32V208_BAUD };

static const struct okvm_hid_chip hid_chips[] = {
	/* target-side identity: the parameter block's default 1A86:E129 (hardware.md 1.1, 2.8) */
	[OKVM_HID_CH9329] = { "CH9329", 9600, ch9329_bauds, N_OF(ch9329_bauds), 0x1A86, 0xE129 },
	[OKVM_HID_CH32V208] = { "CH32V208", CH32V208_BAUD, ch32v208_bauds, N_OF(ch32v208_bauds), 0,
				0 },
};

const struct okvm_model *
okvm_model_get(enum okvm_model_id id)
{
	return (size_t)id < N_OF(models) ? &models[id] : NULL;
}

const struct okvm_usb_part *
okvm_model_part(const struct okvm_model *m, enum okvm_model_part p)
{
	switch (p) {
	case OKVM_PART_VIDEO: return &m->video;
	case OKVM_PART_SERIAL: return &m->serial;
	case OKVM_PART_HUB: return &m->hub;
	}
	return NULL;
}

bool
okvm_model_part_is(const struct okvm_model *m, enum okvm_model_part p, uint16_t vid, uint16_t pid)
{
	const struct okvm_usb_part *u = m ? okvm_model_part(m, p) : NULL;
	return u && (u->vid || u->pid) && u->vid == vid && u->pid == pid;
}

const struct okvm_model *
okvm_model_find(uint16_t vid, uint16_t pid, enum okvm_model_part p)
{
	for (size_t i = 0; i < N_OF(models); i++)
		if (okvm_model_part_is(&models[i], p, vid, pid))
			return &models[i];
	return NULL;
}

const struct okvm_model *
okvm_model_of_unit(const struct okvm_unit_info *u)
{
	const struct okvm_model *first = NULL;
	for (size_t i = 0; i < N_OF(models); i++) {
		if (models[i].variant != u->variant)
			continue;
		if (okvm_model_part_is(&models[i], OKVM_PART_VIDEO, u->video_vid, u->video_pid))
			return &models[i];
		if (!first)
			first = &models[i];
	}
	return first;
}

int
okvm_model_fixed_baud(const struct okvm_unit_info *u)
{
	const struct okvm_model *m = okvm_model_of_unit(u);
	return m ? m->fixed_baud : 0;
}

const struct okvm_hid_chip *
okvm_hid_chip_get(enum okvm_hid_kind k)
{
	return (size_t)k < N_OF(hid_chips) ? &hid_chips[k] : NULL;
}

bool
okvm_hid_chip_baud_ok(enum okvm_hid_kind k, int baud)
{
	const struct okvm_hid_chip *c = okvm_hid_chip_get(k);
	for (size_t i = 0; c && i < c->n_bauds; i++)
		if (c->bauds[i] == baud)
			return true;
	return false;
}
