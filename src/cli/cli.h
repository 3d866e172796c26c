/* The okvm command-line tool: shared state of the commands. */
#ifndef OKVM_CLI_H
#define OKVM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes (ARCHITECTURE 4.1). */
enum {
	CLI_OK = 0,
	CLI_FAIL = 1,  /* runtime failure */
	CLI_USAGE = 2, /* bad usage; nothing was sent */
};

/* Global options, accepted before or after the command name. */
struct cli {
	const char *device;     /* -d/--device SPEC: emu, port chain, serial path, number, frames:PATH */
	const char *serial;     /* --serial PATH: a CH9329 on any tty, no discovery */
	int baud;               /* --baud N; 0 = detect */
	const char *layout;     /* --layout XKB: the target's keyboard layout (default "us") */
	bool json;              /* --json: machine-readable output */
	int verbose;            /* -v: more log output */
	/* The virtual unit (any process that runs one). */
	const char *emu_events; /* --emu-events FILE: JSON lines of what the target experiences */
	const char *emu_layout; /* --emu-layout XKB: layout the virtual target decodes with */
	int emu_poll_ms;        /* --emu-poll-ms N: target's HID poll interval; 0 = default */
	const char *emu_video;  /* --emu-video WxH@FPS: the virtual target's screen mode */
};

typedef int (*cli_cmd_fn)(struct cli *cli, int argc, char **argv);

struct cli_command {
	const char *name;
	cli_cmd_fn fn;
	const char *args;    /* one-line synopsis of the arguments */
	const char *summary; /* one line for --help */
};

/* Print "okvm: <message>" to stderr and return CLI_USAGE / CLI_FAIL. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The target layout in effect (--layout or "us"). */
const char *cli_layout(const struct cli *cli);

/* Set by SIGINT/SIGTERM; long-running commands poll it and release all keys before exiting. */
extern volatile int cli_stop_signal;
/* Install SIGINT/SIGTERM handlers that set cli_stop_signal (no SA_RESTART). */
void cli_install_signals(void);

/* The unit's CH9329 link (unit.c): --serial PATH or -d /dev/tty...; CLI_OK or an exit code
   (message printed). cli_check_link validates the options only; cli_close_link releases all. */
struct okvm_link;
int cli_check_link(const struct cli *cli);
int cli_open_link(struct cli *cli, struct okvm_link **out);
void cli_close_link(struct okvm_link *l);

/* Commands (one file each in src/cli/). */
int cmd_info(struct cli *cli, int argc, char **argv);          /* chip, target, LEDs, baud */
int cmd_mouse(struct cli *cli, int argc, char **argv);         /* move/click/scroll/rel */
int cmd_reset(struct cli *cli, int argc, char **argv);         /* CH9329 RESET */
int cmd_factory_reset(struct cli *cli, int argc, char **argv); /* CH9329 factory defaults */
int cmd_baud(struct cli *cli, int argc, char **argv);          /* change the CH9329's baud */
/* The in-process virtual unit (-d emu), src/cli/vunit.c: started on first use, one per process. */
struct emu;
bool cli_is_emu(const struct cli *cli);
int cli_emu(struct cli *cli, struct emu **out);
int cli_emu_baud(const struct cli *cli);
void cli_emu_shutdown(void); /* main() calls it after the command; idempotent */

/* Send keyboard reports in order through the link, at most rate characters per second (0: as
   fast as the link allows; char_index may be NULL), then wait for the ACKs. Releases all and
   fails on a signal. src/cli/cmd_type.c */
struct okvm_link;
struct okvm_kbd_report;
int cli_send_reports(struct okvm_link *link, const struct okvm_kbd_report *reports,
		     const uint32_t *char_index, size_t n, double rate);
int cmd_type(struct cli *cli, int argc, char **argv);
int cmd_key(struct cli *cli, int argc, char **argv);
int cmd_emulate(struct cli *cli, int argc, char **argv); /* cmd_emulate.c: virtual unit on a pty */
/* (each command's file declares nothing here; main.c's table names them) */
int cmd_layouts(struct cli *cli, int argc, char **argv); /* okvm layouts: target layouts */
int cmd_serve(struct cli *cli, int argc, char **argv);   /* web KVM server (cmd_serve.c) */
void cmd_serve_help(FILE *out);                          /* okvm serve --help */
int cmd_passwd(struct cli *cli, int argc, char **argv);  /* set the web login password */

#endif
