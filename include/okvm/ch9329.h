/*
 * CH9329 serial protocol: frame encoder and streaming decoder. Pure code: no fds, no clocks,
 * no allocation. Facts from docs/hardware.md 2 (CH9329-P V1.2 and the apps).
 *
 * Frame: 57 AB | ADDR | CMD | LEN | DATA[LEN] | SUM, SUM = sum of all preceding bytes mod 256.
 * Replies: CMD|0x80 on success, CMD|0xC0 with one status byte on error.
 */
#ifndef OKVM_CH9329_H
#define OKVM_CH9329_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OKVM_CH9329_HEAD0 0x57
#define OKVM_CH9329_HEAD1 0xAB
/* LEN is one byte: a frame carries up to 255 data bytes. A CH9329 takes at most 64 from the host,
 * but a CH9329F answers GET_PARA_CFG with 72 or 88 (One-KVM PR 302), so the reader takes any. */
#define OKVM_CH9329_MAX_DATA 255
#define OKVM_CH9329_HOST_MAX_DATA 64 /* what the chip accepts from the host (custom HID) */
#define OKVM_CH9329_OVERHEAD 6
#define OKVM_CH9329_MAX_FRAME (OKVM_CH9329_MAX_DATA + OKVM_CH9329_OVERHEAD)
#define OKVM_CH9329_PARAMS_LEN 50
#define OKVM_CH9329_STRING_MAX 23
#define OKVM_CH9329_REPLY_OK 0x80
#define OKVM_CH9329_REPLY_ERR 0xC0
#define OKVM_CH9329_ABS_MAX 4096 /* absolute mouse coordinates are 0..4096 inclusive */

/* Command codes, hardware.md 2.3. */
enum okvm_ch9329_cmd {
	OKVM_CH9329_CMD_GET_INFO = 0x01,
	OKVM_CH9329_CMD_SEND_KB_GENERAL = 0x02,
	OKVM_CH9329_CMD_SEND_KB_MEDIA = 0x03,
	OKVM_CH9329_CMD_SEND_MS_ABS = 0x04,
	OKVM_CH9329_CMD_SEND_MS_REL = 0x05,
	OKVM_CH9329_CMD_SEND_MY_HID = 0x06,
	OKVM_CH9329_CMD_READ_MY_HID = 0x07, /* arrives unsolicited as 0x87 */
	OKVM_CH9329_CMD_GET_PARA_CFG = 0x08,
	OKVM_CH9329_CMD_SET_PARA_CFG = 0x09,
	OKVM_CH9329_CMD_GET_USB_STRING = 0x0A,
	OKVM_CH9329_CMD_SET_USB_STRING = 0x0B,
	OKVM_CH9329_CMD_SET_DEFAULT_CFG = 0x0C,
	OKVM_CH9329_CMD_RESET = 0x0F,
	OKVM_CH9329_CMD_USB_SWITCH = 0x17, /* CH32V208 vendor extension only */
};

/* Status byte of replies, CH9329-P table 2. */
enum okvm_ch9329_status {
	OKVM_CH9329_OK = 0x00,
	OKVM_CH9329_ERR_TIMEOUT = 0xE1,
	OKVM_CH9329_ERR_HEAD = 0xE2,
	OKVM_CH9329_ERR_CMD = 0xE3,
	OKVM_CH9329_ERR_SUM = 0xE4,
	OKVM_CH9329_ERR_PARA = 0xE5,
	OKVM_CH9329_ERR_OPERATE = 0xE6,
};

/* Keyboard modifier bits, hardware.md 2.5. */
enum okvm_kbd_mod {
	OKVM_MOD_LCTRL = 0x01,
	OKVM_MOD_LSHIFT = 0x02,
	OKVM_MOD_LALT = 0x04,
	OKVM_MOD_LGUI = 0x08,
	OKVM_MOD_RCTRL = 0x10,
	OKVM_MOD_RSHIFT = 0x20,
	OKVM_MOD_RALT = 0x40, /* AltGr */
	OKVM_MOD_RGUI = 0x80,
};

/* Mouse buttons, hardware.md 2.6. */
enum okvm_mouse_button {
	OKVM_BTN_LEFT = 0x01,
	OKVM_BTN_RIGHT = 0x02,
	OKVM_BTN_MIDDLE = 0x04,
	/* added: back and forward, as PiKVM and NanoKVM-USB send them (bits 3 and 4) */
	OKVM_BTN_BACK = 0x08,
	OKVM_BTN_FORWARD = 0x10,
};
#define OKVM_BTN_MASK 0x1F /* the five buttons; bits 5..7 are never sent */

/* GET_INFO LED bits, hardware.md 2.4. */
enum okvm_led {
	OKVM_LED_NUM = 0x01,
	OKVM_LED_CAPS = 0x02,
	OKVM_LED_SCROLL = 0x04,
};

/* USB string types for GET/SET_USB_STRING, hardware.md 2.9. */
enum okvm_ch9329_string {
	OKVM_CH9329_STR_MANUFACTURER = 0x00,
	OKVM_CH9329_STR_PRODUCT = 0x01,
	OKVM_CH9329_STR_SERIAL = 0x02,
};

/* Media report ids, hardware.md 2.13. */
enum okvm_media_report_id {
	OKVM_MEDIA_ACPI = 0x01,
	OKVM_MEDIA_MULTIMEDIA = 0x02,
};

/* CH32V208 USB switch directions (cmd 0x17), hardware.md 2.3. */
enum okvm_usb_dir {
	OKVM_USB_TO_HOST = 0x00,
	OKVM_USB_TO_TARGET = 0x01,
	OKVM_USB_QUERY = 0x03,
};

/** One decoded or to-be-encoded frame. */
struct okvm_ch9329_frame {
	uint8_t addr;
	uint8_t cmd;
	uint8_t len;
	uint8_t data[OKVM_CH9329_MAX_DATA];
};

/** Keyboard report: modifier bitmap + up to six HID usages (page 0x07); unused slots 0. */
struct okvm_kbd_report {
	uint8_t modifiers;
	uint8_t keys[6];
};

/** Absolute mouse: x, y in 0..4096; wheel in notches, + up, - down. */
struct okvm_mouse_abs {
	uint8_t buttons;
	uint16_t x;
	uint16_t y;
	int8_t wheel;
};

/** Relative mouse: dx + right, dy + down, wheel + up. */
struct okvm_mouse_rel {
	uint8_t buttons;
	int8_t dx;
	int8_t dy;
	int8_t wheel;
};

/** Media / ACPI report: report id (1 ACPI, 2 multimedia) and its bitmap bytes. */
struct okvm_media_report {
	uint8_t report_id;
	uint8_t bits[3];
};

/** GET_INFO reply, hardware.md 2.4. */
struct okvm_ch9329_info {
	uint8_t version;       /* 0x30 = V1.0 ... 0x38 = V1.8 */
	bool target_connected; /* enumerated by the target PC */
	uint8_t leds;          /* enum okvm_led bits */
};

/** The 50-byte parameter block, hardware.md 2.8. Multi-byte fields BE, vid/pid LE on the wire. */
struct okvm_ch9329_params {
	uint8_t mode;
	uint8_t serial_mode;
	uint8_t addr;
	uint32_t baud;
	uint8_t reserved1[2];
	uint16_t packet_interval_ms;
	uint16_t vid;
	uint16_t pid;
	uint16_t kb_upload_interval_ms;
	uint16_t kb_release_delay_ms;
	uint8_t auto_enter;
	uint8_t enter_chars[8];
	uint8_t filter[8];
	uint8_t string_enable;
	uint8_t kb_fast_upload;
	uint8_t reserved2[12];
};

/** Sum of bytes mod 256. */
uint8_t okvm_ch9329_sum(const uint8_t *p, size_t n);

/**
 * Serialise a frame.
 * @return bytes written (len + 6), or 0 if cap is too small.
 */
size_t okvm_ch9329_encode(const struct okvm_ch9329_frame *f, uint8_t *out, size_t cap);

/* Frame builders: fill *f (addr 0x00) for each host command of hardware.md 2.3.
 * Return 0 or -EINVAL. */
void okvm_ch9329_build_simple(struct okvm_ch9329_frame *f, uint8_t cmd); /* no-data commands */
void okvm_ch9329_build_kbd(struct okvm_ch9329_frame *f, const struct okvm_kbd_report *r);
/** Media: LEN 2 for ACPI (id + 1 byte, as CH9329-P), LEN 4 for multimedia. */
void okvm_ch9329_build_media(struct okvm_ch9329_frame *f, const struct okvm_media_report *r);
void okvm_ch9329_build_abs(struct okvm_ch9329_frame *f, const struct okvm_mouse_abs *m);
void okvm_ch9329_build_rel(struct okvm_ch9329_frame *f, const struct okvm_mouse_rel *m);
/** Custom HID payload, 0..64 bytes (OKVM_CH9329_HOST_MAX_DATA); -EINVAL if longer. */
int okvm_ch9329_build_custom(struct okvm_ch9329_frame *f, const uint8_t *data, size_t len);
void okvm_ch9329_build_set_params(struct okvm_ch9329_frame *f, const struct okvm_ch9329_params *p);
void okvm_ch9329_build_get_string(struct okvm_ch9329_frame *f, enum okvm_ch9329_string type);
/** -EINVAL if len > 23 or type unknown. */
int okvm_ch9329_build_set_string(struct okvm_ch9329_frame *f, enum okvm_ch9329_string type,
				 const char *s, size_t len);
void okvm_ch9329_build_usb_switch(struct okvm_ch9329_frame *f, enum okvm_usb_dir dir);
/** Reply frame (chip side, used by the virtual unit): cmd|0x80 or cmd|0xC0 + data. */
void okvm_ch9329_build_reply(struct okvm_ch9329_frame *f, uint8_t cmd, bool ok, const uint8_t *data,
			     uint8_t len);

/* Decoders of payloads. Return 0, or -EBADMSG when the frame is not of that kind/length.
 * parse_params takes a reply of 50 bytes or more (a CH9329F sends 72 or 88: the first 50 are the
 * block of hardware.md 2.8, the rest is not documented and ignored). */
int okvm_ch9329_parse_info(const struct okvm_ch9329_frame *f, struct okvm_ch9329_info *out);
int okvm_ch9329_parse_params(const struct okvm_ch9329_frame *f, struct okvm_ch9329_params *out);
/** s receives up to 23 bytes + NUL. */
int okvm_ch9329_parse_string(const struct okvm_ch9329_frame *f, uint8_t *type, char s[24]);
int okvm_ch9329_parse_kbd(const struct okvm_ch9329_frame *f, struct okvm_kbd_report *out);
int okvm_ch9329_parse_abs(const struct okvm_ch9329_frame *f, struct okvm_mouse_abs *out);
int okvm_ch9329_parse_rel(const struct okvm_ch9329_frame *f, struct okvm_mouse_rel *out);
int okvm_ch9329_parse_media(const struct okvm_ch9329_frame *f, struct okvm_media_report *out);

void okvm_ch9329_params_pack(const struct okvm_ch9329_params *p,
			     uint8_t out[OKVM_CH9329_PARAMS_LEN]);
void okvm_ch9329_params_unpack(const uint8_t in[OKVM_CH9329_PARAMS_LEN],
			       struct okvm_ch9329_params *p);
/** Factory parameter block of a Mini-KVM's CH9329 (mode 0x82, 9600 baud, 1A86:E129...). */
void okvm_ch9329_params_factory(struct okvm_ch9329_params *p);

/** True if f is a reply (success or error) to command cmd. */
bool okvm_ch9329_is_reply_to(const struct okvm_ch9329_frame *f, uint8_t cmd);
/**
 * Status of a reply: 0 success, or the chip's status byte (0xE1..0xE6) for an error reply.
 * For success replies whose payload is a status byte, that byte is returned.
 */
uint8_t okvm_ch9329_reply_status(const struct okvm_ch9329_frame *f);
/** "ERR_SUM" etc.; "OK" for 0; "unknown" otherwise. */
const char *okvm_ch9329_status_name(uint8_t status);
/** "GET_INFO" etc. for a command or reply code; "unknown" otherwise. */
const char *okvm_ch9329_cmd_name(uint8_t cmd);

/* Streaming decoder. Bounded: holds at most two frames of the longest LEN. */
#define OKVM_CH9329_PARSER_CAP (2 * OKVM_CH9329_MAX_FRAME)
struct okvm_ch9329_parser {
	uint8_t buf[OKVM_CH9329_PARSER_CAP];
	size_t n;
	uint64_t garbage_bytes; /* bytes skipped while looking for 57 AB */
	uint64_t bad_sums;      /* complete frames dropped for a wrong checksum */
	uint64_t bad_lengths;   /* headers with LEN > max_len */
	uint8_t max_len;        /* longest LEN taken (parser_init: OKVM_CH9329_MAX_DATA; the
				   virtual chip sets OKVM_CH9329_HOST_MAX_DATA, as a CH9329) */
};

void okvm_ch9329_parser_init(struct okvm_ch9329_parser *p);
/** Copy up to the free space of in into the parser. @return bytes taken (may be < len). */
size_t okvm_ch9329_parser_push(struct okvm_ch9329_parser *p, const uint8_t *in, size_t len);
/**
 * Take the next event from the buffered bytes.
 * @return 1 and *out filled for a complete valid frame; 0 when more bytes are needed;
 *         -EBADMSG when a frame with a wrong checksum was dropped; -EMSGSIZE when a header with
 *         LEN > max_len (or LEN > 64 in anything but a success reply, CMD|0x80) was dropped. After a negative return call again: the decoder resynchronises
 *         on the next 57 AB. Garbage before a header is skipped silently (counted).
 */
int okvm_ch9329_parser_next(struct okvm_ch9329_parser *p, struct okvm_ch9329_frame *out);
/** Forget buffered bytes (after a baud change or a timeout). */
void okvm_ch9329_parser_reset(struct okvm_ch9329_parser *p);

#ifdef __cplusplus
}
#endif
#endif
