/* The virtual unit's video chip: an MS2109 register file and EEPROM behind HID feature reports. */
#ifndef OKVM_EMU_MS2109_EMU_H
#define OKVM_EMU_MS2109_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "okvm/chip.h"

#define MS2109_EMU_EEPROM_SIZE 2048 /* AT24C16 (HW BOM U3) */
#define MS2109_EMU_DEFAULT_FW "24081309"

/* Register addresses of the Mini-KVM (docs/hardware.md 3.2, column MS2109). */
enum {
	MS2109_REG_FW0 = 0xCBDC,      /* 4 bytes, each printed as two decimal digits */
	MS2109_REG_SIGNAL = 0xFA8C,   /* bit0 = HDMI input present */
	MS2109_REG_WIDTH = 0xC6AF,    /* BE16 */
	MS2109_REG_HEIGHT = 0xC6B1,   /* BE16 */
	MS2109_REG_FPS = 0xC6B5,      /* BE16, Hz x 100 */
	MS2109_REG_PCLK = 0xC73C,     /* BE16, MHz x 100 */
	MS2109_REG_TOGGLE = 0xDF00,   /* GPIO0 bit0: 1 = toggle at target */
	MS2109_REG_SPDIFOUT = 0xDF01, /* USB-switch mux select */
	MS2109_REG_TEST = 0xF800,     /* reads 0xA7 */
};

struct ms2109_emu {
	uint8_t xdata[65536];
	uint8_t eeprom[MS2109_EMU_EEPROM_SIZE];
	uint8_t report_id; /* the report id the chip answers to (0 on the MS2109) */
	size_t report_len; /* its feature report length including the id (9) */
	uint8_t response[65];
	bool pending;  /* a request was set and its response not yet read */
	uint8_t fw[4]; /* firmware version bytes */
	/* Which chip's register file this is (docs/hardware.md 3.2 columns), and two beliefs the
	 * sources leave open, so tests can play each answer: */
	enum okvm_chip_kind kind;
	bool echo; /* answers echo command and address (MS2109: yes; MS2109S/MS2130S: unknown) */
	bool halves; /* above 189 MHz the mode is reported halved (MS2109: yes, QT; others: unknown) */
};

/**
 * Power up: registers, EEPROM image (header, names, EDID, checksums), no signal, toggle at host,
 * switch at host.
 * @param fw firmware version "YYMMDDNN" (8 decimal digits); NULL = MS2109_EMU_DEFAULT_FW.
 *        Firmware before 24081309 uses bit 4 of 0xDF01 for the switch, later ones bit 0.
 */
void ms2109_emu_init(struct ms2109_emu *e, const char *fw);

/**
 * HIDIOCSFEATURE: buf[0] is the report id. Reads (0xB5, 0xE5) prepare the response returned by
 * the next get; writes (0xB6, 0xE6) change the register/EEPROM byte at buf[2..3] to buf[4].
 * @return 0, or -EPIPE for a report id or length the chip does not have (the kernel returns
 *         EPIPE when the device stalls the control transfer)
 */
int ms2109_emu_feature_set(struct ms2109_emu *e, const uint8_t *buf, size_t len);
/** HIDIOCGFEATURE: @return bytes filled (the report length at most), or -EPIPE. */
int ms2109_emu_feature_get(struct ms2109_emu *e, uint8_t *buf, size_t len);

/**
 * Script the HDMI input. With a pixel clock above 189 MHz the chip reports half the width and
 * height, as the real MS2109 does (hardware.md 3.2 "Resolution quirks").
 * @param fps_x100 e.g. 6000; @param pclk_x100 MHz x 100, 0 = derive from the mode
 */
void ms2109_emu_set_signal(struct ms2109_emu *e, bool on, int width, int height, int fps_x100,
			   int pclk_x100);
void ms2109_emu_set_toggle(struct ms2109_emu *e, bool target);
/** Where the mux routes the switchable port now (SPDIFOUT with the firmware's bit). */
bool ms2109_emu_routed_target(const struct ms2109_emu *e);
/** The bit of 0xDF01 this firmware uses (0x01 or 0x10). */
uint8_t ms2109_emu_switch_bit(const struct ms2109_emu *e);

/**
 * Become another chip's register file: "ms2109", "ms2109s" or "ms2130s", each optionally followed
 * by "-noecho" (answers carry no command/address echo) and/or "-halves" / "-nohalves" (whether
 * the mode is reported halved above 189 MHz). Sets the chip's report id and length (MS2109 0/9,
 * MS2109S 0/11, MS2130S 1/11, the first format QT tries), moves the firmware bytes to the
 * chip's address and clears the signal. @return 0 or -EINVAL (nothing changed)
 */
int ms2109_emu_set_chip(struct ms2109_emu *e, const char *spec);

/**
 * Apply one "key=value" setting (the virtual unit's script and the hidraw fake's state file):
 * fw=24081309, signal=0|1, mode=1920x1080@60 (also sets signal=1), pclk=14850, toggle=host|target,
 * report_id=N, report_len=N, reg.C6AF=0x07 (any XDATA byte), chip=SPEC (ms2109_emu_set_chip),
 * echo=0|1, halves=0|1.
 * @return 0 or -EINVAL
 */
int ms2109_emu_apply(struct ms2109_emu *e, const char *setting);
/** Text form of the state that ms2109_emu_apply() reads back: settings then changed registers. */
size_t ms2109_emu_dump(const struct ms2109_emu *e, char *out, size_t size);

#endif
