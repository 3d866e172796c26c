/* The okvm command-line tool: shared state of the commands. */
#ifndef OKVM_CLI_H
#define OKVM_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes (ARCHITECTURE 4.1). */
enum {
	CLI_OK = 0,
	CLI_FAIL = 1,  /* runtime failure */
	CLI_USAGE = 2, /* bad usage; nothing was sent */
};

/* Global options, accepted before or after the command name. */
struct cli {
	const char
		*device; /* -d/--device SPEC: emu, port chain, serial path, number, frames:PATH */
	const char *serial; /* --serial PATH: a CH9329 on any tty, no discovery */
	int baud;           /* --baud N; 0 = detect */
	const char *layout; /* --layout XKB: the target's keyboard layout (default "us") */
	bool json;          /* --json: machine-readable output */
	int report_gap_ms;  /* --report-gap-ms N: minimum gap between HID reports; -1 = default */
	bool no_pipeline;   /* --no-pipeline: one HID report in flight, not two */
	int verbose;        /* -v: more log output */
	/* The virtual unit (any process that runs one). */
	const char *emu_events; /* --emu-events FILE: JSON lines of what the target experiences */
	const char *emu_layout; /* --emu-layout XKB: layout the virtual target decodes with */
	int emu_poll_ms;        /* --emu-poll-ms N: target's HID poll interval; 0 = default */
	const char *emu_video;  /* --emu-video WxH@FPS: the virtual target's screen mode */
	const char *emu_chip;   /* --emu-chip ch9329|ch9329f|ch32v208|ch32v208-quiet */
	bool emu_strict_gap;    /* --emu-strict-gap: frames end by 3 ms of idle, not by LEN */
	int emu_dataflip;       /* --emu-dataflip on|off: 1 / -1; 0 = the chip's default */
	const char *emu_video_chip; /* --emu-video-chip ms2109|ms2109s|ms2130s[-noecho][-halves] */
	bool emu_pins;         /* --emu-pins usb-serial: an adapter on the pins (ATX + console) */
	bool emu_power_off;    /* --emu-power off: the virtual target starts powered off */
	const char *emu_media; /* --emu-media FILE: the stick in the switchable port (okvm media) */
	/* Video (screenshot; later serve). */
	const char *video;      /* --video DEV: a V4L2 node, without discovery */
	const char *video_mode; /* --video-mode WxH[@FPS]: capture mode (default: largest @30) */
};

typedef int (*cli_cmd_fn)(struct cli *cli, int argc, char **argv);

struct cli_command {
	const char *name;
	cli_cmd_fn fn;
	const char *args;    /* one-line synopsis of the arguments */
	const char *summary; /* one line for --help */
};

/* The command table (src/cli/main.c), and its global-option parser: takes the global options
   out of argv[1..] wherever they stand before "--" and applies them to cli. */
const struct cli_command *cli_find_command(const char *name);
int cli_extract_globals(struct cli *cli, int *argc, char **argv, bool *help);
int cmd_script(struct cli *cli, int argc, char **argv);
void cmd_script_help(FILE *out); /* okvm script --help */
/* Keep the in-process virtual unit alive across commands (okvm script). */
void cli_emu_hold(bool hold);

/* Print "okvm: <message>" to stderr and return CLI_USAGE / CLI_FAIL. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The target layout in effect (--layout or "us"). */
const char *cli_layout(const struct cli *cli);

/* Error lines the library has printed so far: a command that fails right after one adds none. */
extern unsigned cli_errors_logged;

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
/* The unit the global options name (-d, --serial, --baud, -d emu: starts the virtual unit),
   resolved with the messages of cli_open_link; its link is not open yet. For `okvm serve`. */
struct okvm_unit;
struct okvm_unit_spec;
int cli_unit_new(struct cli *cli, struct okvm_unit_spec *spec, struct okvm_unit **out);
/* The unit as cli_open_link resolves it (same options, same messages), kept with its link
   open (okvm_unit_link), so its video chip comes from the same unit. Close with
   cli_close_unit (releases all, then stops the virtual unit). */
int cli_open_unit(struct cli *cli, struct okvm_unit **out);
void cli_close_unit(struct okvm_unit *u);
/* The discovered unit -d names (a number, a port chain, a node path; --serial is ignored), or
   the virtual unit for -d emu, with its video chip and capture to open (okvm_unit_open_chip,
   cli_open_chip); shown = the unit as `okvm list` describes it. Prints one line on failure:
   CLI_FAIL (no such unit / none found), CLI_USAGE (frames:). */
struct okvm_unit_info;
int cli_unit_discovered(struct cli *cli, struct okvm_unit **out, struct okvm_unit_info *shown);

/* Commands (one file each in src/cli/). */
int cmd_info(struct cli *cli, int argc, char **argv); /* chip, target, LEDs, baud */
/* A GET_INFO version byte for people: 0x30..0x39 "V1.0".."V1.9", else "0x82" (info.c). */
void cli_ch9329_version_text(uint8_t v, char *out, size_t cap);
int cmd_doctor(struct cli *cli, int argc, char **argv);        /* cmd_doctor.c: for owners */
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
struct okvm_capture;
struct okvm_chip;
/* The virtual unit's screen as a capture; owned by the unit (close with cli_close_capture). */
int cli_emu_capture(struct cli *cli, struct okvm_capture **out);
struct vscreen;
struct vscreen *cli_emu_screen(void); /* the virtual target's screen; NULL when none runs */
struct emu_audio;
int cli_emu_audio(struct cli *cli, struct emu_audio **out); /* its sound (src/emu/audio.h) */
void cli_emu_set_toggle(bool target); /* the virtual unit's hardware USB toggle moves */
/* An okvm_chip on the virtual unit's MS2109 register model (free with okvm_chip_free). cli may
   be NULL once the unit runs. */
int cli_emu_chip(struct cli *cli, struct okvm_chip **out);
const char *cli_emu_modem_socket(void); /* NULL when no virtual unit runs */
/* The virtual unit's adapter on the extension pins (--emu-pins): tty and modem socket; NULL
   when none runs. */
const char *cli_emu_pins_tty(void);
const char *cli_emu_pins_modem_socket(void);

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
int cmd_layouts(struct cli *cli, int argc, char **argv);    /* okvm layouts: target layouts */
int cmd_list(struct cli *cli, int argc, char **argv);       /* cmd_list.c: units and their nodes */
int cmd_switch(struct cli *cli, int argc, char **argv);     /* cmd_switch.c: the USB switch */
int cmd_chip(struct cli *cli, int argc, char **argv);       /* cmd_chip.c: video-chip registers */
int cmd_screenshot(struct cli *cli, int argc, char **argv); /* video.c: save the newest frame */
int cmd_power(struct cli *cli, int argc, char **argv); /* cmd_power.c: power and reset buttons */
void cmd_power_help(FILE *out);                        /* okvm power --help */
/* [power] of the config file (or config), and the adapter it names, else -d emu's virtual one,
   else the one on the unit's extension pins: pc->device set, or an exit code (said); and
   pc->console, the serial console's tty (NULL: none). */
struct power_config;
int cli_power_adapter(struct cli *cli, const char *config, struct power_config *pc, bool quiet);
int cmd_console(struct cli *cli, int argc, char **argv); /* cmd_console.c: serial console */
void cmd_console_help(FILE *out);
int cmd_ocr(struct cli *cli, int argc, char **argv); /* cmd_ocr.c: text on the screen */
void cmd_ocr_help(FILE *out);                        /* okvm ocr --help */
/* cmd_record.c: the screen into Matroska, MJPEG as sent */
int cmd_record(struct cli *cli, int argc, char **argv);
void cmd_record_help(FILE *out);
/* cmd_media.c: virtual media, a USB stick in the switchable port */
int cmd_media(struct cli *cli, int argc, char **argv);
void cmd_media_help(FILE *out);
/* cmd_audio.c: the unit's sound into a WAV file */
int cmd_audio(struct cli *cli, int argc, char **argv);
void cmd_audio_help(FILE *out);
/* The unit's sound for okvm audio and okvm record: the ALSA PCM named (NULL: the virtual unit's
 * for -d emu, else the unit's card), 48 kHz stereo S16_LE. Open: CLI_OK or an exit code (said).
 * Read: max frames, waiting for them, or (wait false) only when max are ready; frames read
 * (0: not yet, or a signal), or -errno; *ts_us the first frame's capture time. Close returns
 * the overruns seen. */
struct av_audio;
struct cli_audio {
	struct av_audio *alsa;
	struct emu_audio *emu;
	uint64_t start_us, made; /* the virtual unit's clock */
};
int cli_audio_open(struct cli *cli, const char *pcm, struct cli_audio *s);
long cli_audio_read(struct cli_audio *s, int16_t *pcm, size_t max, uint64_t *ts_us, bool wait);
unsigned cli_audio_close(struct cli_audio *s);

struct okvm_capture;
struct okvm_frame;
/* video.c: the capture for the selected unit (frames:PATH, --video DEV, /dev/videoN), not yet
   started. Returns CLI_OK, or an exit code after printing why. */
int cli_open_capture(struct cli *cli, struct okvm_capture **out);
/* Wait up to timeout_ms for a real frame captured after the call (okvm screenshot, okvm ocr);
 * the newest frame seen (maybe a placeholder, or an older one) when none comes, or NULL. */
struct okvm_frame *cli_fresh_frame(struct okvm_capture *c, int timeout_ms);
void cli_close_capture(struct cli *cli,
		       struct okvm_capture *cap); /* frees, unless the virtual unit owns it */

int cmd_serve(struct cli *cli, int argc, char **argv); /* web KVM server (cmd_serve.c) */
void cmd_serve_help(FILE *out);                        /* okvm serve --help */
void cmd_type_help(FILE *out);                         /* okvm type --help */
int cmd_mcp(struct cli *cli, int argc, char **argv);   /* cmd_mcp.c: MCP server on stdio */
void cmd_mcp_help(FILE *out);                          /* okvm mcp --help */
/* Tests only (tests/recorder/): wraps the unit's backend before the server starts; NULL in the
 * product. */
struct serve_backend;
extern void (*cli_serve_wrap)(struct cli *cli, struct serve_backend *be);
/* The unit the global options name with the backend okvm serve drives it through (messages
   printed, starting with what: "view"; CLI_OK or an exit code). Destroy the backend, then
   okvm_unit_free(*unit). */
int cli_serve_backend(struct cli *cli, const char *what, bool follow_toggle,
		      struct serve_backend *be, struct okvm_unit **unit);
/* okvm passwd and okvm totp (src/cli/account.c): --config FILE, --user NAME (checked) and the
 * command's own flags out of "RDSX" (--role, --delete, --show, --remove); hint lists them for
 * the unknown-option message. Returns CLI_OK or CLI_USAGE (said). */
struct cli_account_args {
	const char *config, *user, *role;
	bool del, show, remove;
};
int cli_account_args(const char *cmd, const char *flags, const char *hint, int argc, char **argv,
		     struct cli_account_args *a);
int cmd_passwd(struct cli *cli, int argc, char **argv); /* set the web login password */
int cmd_totp(struct cli *cli, int argc, char **argv);   /* a login's second factor */

#endif
