/*
 * The Script Tool language inside: a parsed script is a flat list of actions, each carrying the
 * line and column of its statement. The parser (script-parse.c) turns every statement into
 * actions once; the runner (script-run.c) only executes them, so nothing it meets at run time is
 * new syntax. Key names live in script-keys.c.
 */
#ifndef OKVM_AUTO_SCRIPT_INTERNAL_H
#define OKVM_AUTO_SCRIPT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auto/script.h"

/* The Qt app's absolute mouse units: 0..4096 on each axis, (0,0) top left (the CH9329's). */
#define AHK_ABS_MAX 4096
#define AHK_MAX_REPEAT 10000      /* {Key N}, Click count */
#define AHK_MAX_SLEEP_MS 86400000 /* a day */
#define AHK_MAX_TIMEOUT_S 86400.0 /* Wait* */
#define AHK_MAX_PIXELS 16384      /* region coordinates */
#define AHK_MAX_BYTES (4u << 20)  /* script text */

enum ahk_op {
	AHK_KEY,         /* code down/up (a browser KeyboardEvent.code) */
	AHK_CHAR,        /* cp through the target layout, with mods held around it */
	AHK_MODS,        /* mods down (down) or up: the HID modifier bits, left keys */
	AHK_MOVE,        /* absolute x, y (Qt units), buttons */
	AHK_REL,         /* relative x, y mickeys */
	AHK_BUTTONS,     /* buttons at the last position */
	AHK_WHEEL,       /* n wheel units, + up (the chip's sign) */
	AHK_SLEEP,       /* n ms */
	AHK_TYPE,        /* s through the backend's typing job; f = cps (0: default) */
	AHK_LOCK,        /* n = enum okvm_led bit; a = 1 on, 0 off, 2 toggle */
	AHK_CAPTURE,     /* s = path; has_rect: r is the area in frame pixels */
	AHK_WAIT_TEXT,   /* s; f = timeout s; has_rect */
	AHK_ASSERT_TEXT, /* s; has_rect */
	AHK_WAIT_SCREEN, /* s = needle path; f = timeout s; g = threshold */
	AHK_WAIT_STILL,  /* n = still ms; f = timeout s */
	AHK_SWITCH,      /* a = 1 target, 0 host */
	AHK_POWER,       /* s = on|off|force-off|reset|cycle */
	AHK_KEY_DELAY,   /* n = ms between keystrokes of Send (SetKeyDelay) */
	AHK_SYNC,        /* end of a statement: wait until the link sent everything */
	AHK_READ_TEXT,   /* s = variable name; has_rect: OCR once into it */
	AHK_PRINT,       /* s: a line on the script's output (env->out) */
	AHK_WAIT_SERIAL, /* s; f = timeout s: the target's serial console (env->serial_wait) */
	AHK_SEND_SERIAL, /* s, n bytes (escapes done; may hold NUL-free control bytes) */
};

#define AHK_MAX_VARS 64
#define AHK_MAX_VAR_NAME 32

struct ahk_action {
	enum ahk_op op;
	int line, col;
	bool down;
	bool has_rect;
	uint8_t mods;
	uint8_t buttons;
	uint32_t cp;
	int n, a, x, y;
	double f, g;
	const char *code; /* static */
	char *s;          /* owned */
	bool interp;      /* s holds %name% of a variable ReadText set: replaced at run time */
	int rx, ry, rw, rh;
};

struct auto_script {
	struct ahk_action *v;
	size_t n, cap;
	size_t statements;
	bool needs_frames; /* captures and waits: the runner wants frames */
};

/* A key of Send's {Name}: the browser code of a keyboard or media key, or a character the
 * target layout types ({!}, {Exclam}), or a wheel notch. */
struct ahk_key {
	const char *code; /* NULL: cp or wheel */
	uint32_t cp;
	int wheel;       /* +1 up, -1 down */
	uint8_t mod_bit; /* the key is a modifier (its HID bit) */
};

/* Look a key name up, case-insensitively (AHK names and the Qt app's). 0 or -ENOENT. */
int ahk_key_lookup(const char *name, size_t len, struct ahk_key *out);
/* The browser code of modifier bit (one of enum okvm_kbd_mod). */
const char *ahk_mod_code(uint8_t bit);

#endif
