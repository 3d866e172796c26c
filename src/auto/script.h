/*
 * The official Qt app's Script Tool language (AutoHotkey-like: Send, Click, MouseMove, Sleep,
 * SetCapsLockState, FullScreenCapture ...) plus okvm's extensions for driving whole installs
 * (WaitText, WaitScreen, WaitStill, AssertText, Type, Power, Switch, WaitSerial, SendSerial).
 * docs/automation.md is the language reference.
 *
 * A script is parsed and checked completely (statement names, argument counts, key names,
 * coordinates) before anything runs, so a bad script sends nothing. It then runs against a
 * struct serve_backend (src/serve/backend.h), the same engine for `okvm script`, `okvm serve`
 * and `okvm mcp`.
 *
 * Threads: a parsed script is immutable and may be shared; auto_script_run() blocks the calling
 * thread (it sleeps and polls frames), so the server calls it off its service thread. Every exit
 * path of auto_script_run() releases every key and button it pressed.
 */
#ifndef OKVM_AUTO_SCRIPT_H
#define OKVM_AUTO_SCRIPT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct serve_backend;
struct auto_ocr;

struct auto_script;

/* Where and what: line and col count from 1 (col in bytes); msg is one line, "expected ...". */
struct auto_script_error {
	int line, col;
	char msg[256];
};

/* Parse and check text (UTF-8, need not be NUL-terminated). Returns 0 with *out set, or -EINVAL
 * with err filled (the first error). Out of memory aborts. */
int auto_script_parse(const char *text, size_t len, struct auto_script **out,
		      struct auto_script_error *err);

struct auto_script_env {
	const struct serve_backend *b; /* input + frames; want_frames handled by the runner */
	struct auto_ocr *ocr;          /* NULL: created on first use (and freed by the run) */
	const char *layout;            /* target's XKB layout for Send/Type; NULL = "us" */
	const char *dir;               /* relative file paths (captures, needles) resolve here */
	const atomic_bool *cancel;     /* may be NULL */
	FILE *log;                     /* one line per action, or NULL */
	bool dry_run;                  /* print the plan (to log, else stdout), send nothing */
	/* okvm additions (zero = default) */
	const char *timeout_shot; /* a Wait* timeout saves the frame here (JPEG); NULL: none */
	/* Power on|off|force-off|reset|cycle (src/power): NULL = no power backend, and a script
	   with Power is refused before anything runs. Blocks for the press; 0 or -errno. */
	int (*power)(void *ud, const char *action);
	void *power_ud;
	FILE *out; /* Print's lines (the CLI: stdout); NULL: not printed */
	/* WaitSerial / SendSerial on the target's serial console (src/auto/console.h): NULL = no
	   console, and a script with them is refused before anything runs. wait: 0, -ETIMEDOUT,
	   -ECANCELED or -errno; send: 0 or -errno. */
	int (*serial_wait)(void *ud, const char *text, double timeout_s, const atomic_bool *cancel);
	int (*serial_send)(void *ud, const char *bytes, size_t len);
	void *serial_ud;
};

/* Run a parsed script. Returns 0; -ETIMEDOUT (a Wait* timed out: CLI exit 3); -ECANCELED (*cancel
 * became true); -EPROTO (an AssertText failed); -EOPNOTSUPP (a statement the unit cannot do, such
 * as Power without a power backend, WaitSerial without a console); other -errno from the backend. On failure err names the
 * statement's line and col and what went wrong. */
int auto_script_run(const struct auto_script *s, const struct auto_script_env *env,
		    struct auto_script_error *err);

void auto_script_free(struct auto_script *s);

/* How many statements the script has (tests, dry-run summaries). */
size_t auto_script_count(const struct auto_script *s);

/* Check what depends on the unit, before it is opened: every character of Send and Type is
 * typeable on layout (NULL = "us"); has_power: a power backend exists (else Power is refused).
 * auto_script_run() does the same first. Returns 0, -EINVAL (err filled: untypeable character),
 * -EOPNOTSUPP (err filled: Power without a backend). */
int auto_script_check(const struct auto_script *s, const char *layout, bool has_power,
		      struct auto_script_error *err);

/* Whether the script has WaitSerial or SendSerial (it needs the target's serial console). */
bool auto_script_needs_serial(const struct auto_script *s);

/* Whether the script captures or waits on the screen (the unit needs video). */
bool auto_script_needs_video(const struct auto_script *s);

#endif
