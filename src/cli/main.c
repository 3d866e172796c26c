/*
 * DESIGN: okvm's entry point. Parses the global options (anywhere before "--", so
 * `okvm type --layout de TEXT` and `okvm --layout de type TEXT` both work), installs the signal
 * handlers and dispatches to one function per command, each in its own file. It owns no device;
 * commands open what they need and release all keys and buttons on every exit path.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "emu/emu.h"
#include "okvm/log.h"
#include "lib/strnum.h"
#include "view/view.h"

static int cmd_help(struct cli *cli, int argc, char **argv);
static int cmd_version(struct cli *cli, int argc, char **argv);

static const struct cli_command commands[] = {
	{ "help", cmd_help, "[COMMAND]", "show this help" },
	{ "version", cmd_version, "", "print the version" },
	{ "type", cmd_type,
	  "[--rate CPS|max] [--caps-lock MODE] [--skip-unmappable] [--dry-run] TEXT|-",
	  "type text on the target (any --layout)" },
	{ "key", cmd_key, "COMBO...", "press key combos: ctrl+alt+delete, enter, volume-up" },
	{ "script", cmd_script, "[--format ahk|okvm] [--dry-run] FILE|-",
	  "run a script: the Qt app's Script Tool (.ahk) or okvm commands" },
	{ "info", cmd_info, "", "show the chip, target connection, LEDs, baud and USB ids" },
	{ "doctor", cmd_doctor, "[--json]",
	  "check this machine and the unit; a report for bug reports" },
	{ "mouse", cmd_mouse, "move X Y [--raw] | click [BTN] | scroll N | rel DX DY",
	  "use the mouse" },
	{ "reset", cmd_reset, "", "restart the keyboard/mouse chip (CH9329)" },
	{ "factory-reset", cmd_factory_reset, "",
	  "restore the CH9329's factory settings (9600 baud)" },
	{ "baud", cmd_baud, "9600|115200", "change the CH9329's serial speed" },
	{ "emulate", cmd_emulate, "[--link PATH] [--audio-out FILE]",
	  "virtual unit on a pty (SIGUSR1: target out/in; SIGUSR2: pins adapter)" },
	{ "layouts", cmd_layouts, "[FILTER] | --chars LAYOUT",
	  "list the target keyboard layouts (--json), or what one can type" },
	{ "list", cmd_list, "", "list the units found, their nodes and extension-port devices" },
	{ "switch", cmd_switch, "[MODE] [--no-pulse]",
	  "switchable USB port: host, target, toggle, follow, status (default)" },
	{ "chip", cmd_chip, "", "video-chip registers: firmware, HDMI signal, mode, toggle" },
	{ "screenshot", cmd_screenshot, "[-o FILE|-] [--video DEV] [--allow-no-signal]",
	  "save the newest video frame (JPEG as sent, or PNG)" },
	{ "ocr", cmd_ocr, "[--region X,Y,W,H] [--lang LANG] [--json]",
	  "read the text on the target's screen (OCR)" },
	{ "record", cmd_record, "-o FILE.mkv [--seconds N] [--timelapse N] [--max-size SIZE]",
	  "record the screen to Matroska, MJPEG as sent (see record --help)" },
	{ "audio", cmd_audio, "-o FILE.wav [--seconds N] [--pcm NAME]",
	  "capture the target's sound (48 kHz stereo) into a WAV file" },
	{ "power", cmd_power, "status|on|off|force-off|reset|cycle [--adapter TTY]",
	  "the target's power and reset buttons (adapter on the extension pins)" },
	{ "media", cmd_media, "write IMAGE [--disk DEV] [--boot] [--force] | status",
	  "write a disk image to the USB stick in the switchable port (virtual media)" },
	{ "console", cmd_console, "[TTY] [--baud N] [--log FILE]",
	  "the target's serial console (adapter on the extension pins; Ctrl-] q leaves)" },
	{ "serve", cmd_serve, "[--listen ADDR:PORT] [OPTIONS]",
	  "serve the web KVM (see serve --help)" },
	{ "mcp", cmd_mcp, "[--ocr-lang LANG] [--type-cps N]",
	  "MCP server on stdio for AI agents (see mcp --help)" },
	{ "view", cmd_view, "[--scale fit|1:1] [--fullscreen] [OPTIONS]",
	  "a window on the target: screen, keyboard, mouse, paste (see view --help)" },
	{ "passwd", cmd_passwd, "[--config FILE] [--user NAME --role ROLE | --user NAME --delete]",
	  "set a web login password (ROLE: viewer, operator, admin)" },
	{ "totp", cmd_totp, "[--config FILE] [--user NAME] [--show | --remove]",
	  "make a login's second factor (authenticator app QR code)" },
};

/* Commands whose --help describes every option. */
static const struct {
	const char *name;
	void (*print)(FILE *out);
} long_help[] = {
	{ "serve", cmd_serve_help }, { "mcp", cmd_mcp_help },         { "type", cmd_type_help },
	{ "power", cmd_power_help }, { "console", cmd_console_help }, { "view", cmd_view_help },
	{ "ocr", cmd_ocr_help },     { "script", cmd_script_help },   { "record", cmd_record_help },
	{ "media", cmd_media_help }, { "audio", cmd_audio_help },
};

volatile int cli_stop_signal;

static void
on_signal(int sig)
{
	cli_stop_signal = sig;
}

void
cli_install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int
vreport(int code, const char *fmt, va_list ap)
{
	fputs("okvm: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	return code;
}

int
cli_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vreport(CLI_USAGE, fmt, ap);
	va_end(ap);
	return rc;
}

int
cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vreport(CLI_FAIL, fmt, ap);
	va_end(ap);
	return rc;
}

const char *
cli_layout(const struct cli *cli)
{
	return cli->layout ? cli->layout : "us";
}

const struct cli_command *
cli_find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void
print_help(FILE *out)
{
	fputs("usage: okvm [OPTIONS] COMMAND [ARGS...]\n"
	      "\n"
	      "Drive an Openterface KVM (Mini-KVM, KVM-Go, KVM-VGA) or the built-in virtual unit.\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char head[128];
		snprintf(head, sizeof(head), "%s %s", commands[i].name, commands[i].args);
		if (strlen(head) > 30)
			fprintf(out, "  %s\n  %-30s %s\n", head, "", commands[i].summary);
		else
			fprintf(out, "  %-30s %s\n", head, commands[i].summary);
	}
	fputs("\n"
	      "Options (before or after the command):\n"
	      "  -d, --device SPEC     unit: emu (built-in virtual unit), a port chain (3-1), a serial\n"
	      "                        path, a number from `okvm list`, or frames:PATH[@FPS]\n"
	      "      --serial PATH     talk to a CH9329 on this tty, without discovery\n"
	      "      --baud N          serial speed (9600 or 115200); default: detect\n"
	      "      --layout XKB      the target's keyboard layout (us, de, fr, gb, us:dvorak...)\n"
	      "      --json            machine-readable output\n"
	      "      --video DEV       the capture node (default: the unit's, else /dev/video0);\n"
	      "                        frames:PATH[@FPS] = a folder of JPEGs or an .mjpeg file\n"
	      "      --video-mode MODE capture mode WxH@FPS (default: the largest 30 fps mode)\n"
	      "      --report-gap-ms N minimum gap between HID reports (default 12; raise it for\n"
	      "                        targets that poll slowly, e.g. some BIOSes)\n"
	      "      --no-pipeline     wait for each HID report's ACK before sending the next\n"
	      "                        (default: up to two in flight; for chips that misbehave)\n"
	      "  -v, --verbose         more log output (repeat for debug)\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "Virtual unit options (with -d emu, okvm emulate, okvm serve -d emu):\n"
	      "      --emu-events FILE write what the virtual target experiences as JSON lines\n"
	      "      --emu-layout XKB  layout the virtual target decodes with (default: --layout)\n"
	      "      --emu-poll-ms N   the virtual target's USB HID poll interval\n"
	      "      --emu-video MODE  the virtual screen, e.g. 1920x1080@30\n"
	      "      --emu-chip CHIP   ch9329 (default), ch9329f, ch32v208 or ch32v208-quiet\n"
	      "                        (ch32v208-d7, -d3: GET_INFO's version in DATA[7], DATA[3])\n"
	      "      --emu-strict-gap  frames end by 3 ms of idle line, not by LEN (datasheet)\n"
	      "      --emu-dataflip on|off  CTS toggles on each report the target takes (default:\n"
	      "                        on for ch9329/ch9329f, off for ch32v208)\n"
	      "      --emu-video-chip C  ms2109 (default), ms2109s or ms2130s; -noecho: answers\n"
	      "                        without echo; -halves/-nohalves: mode halved above 189 MHz\n"
	      "      --emu-pins usb-serial  a USB-serial adapter on the extension pins, wired to\n"
	      "                        the target's power/reset header and serial console\n"
	      "      --emu-power on|off  the target's power at start (with --emu-pins; default on)\n"
	      "      --emu-media FILE  a USB stick in the switchable port (okvm media), routed\n"
	      "                        to the target at start\n"
	      "\n"
	      "Exit status: 0 success, 1 runtime failure, 2 bad usage: nothing was sent (an unknown\n"
	      "option, layout, key name or unit spec, or text the layout cannot type).\n"
	      "`okvm help COMMAND` or `okvm COMMAND --help`: a command's own options.\n",
	      out);
}

/* A command's own help: its long help when it has one, else its usage line and summary. */
static void
print_command_help(const struct cli_command *c, FILE *out)
{
	for (size_t k = 0; k < sizeof(long_help) / sizeof(long_help[0]); k++) {
		if (!strcmp(long_help[k].name, c->name)) {
			long_help[k].print(out);
			return;
		}
	}
	fprintf(out, "usage: okvm %s %s\n  %s\n", c->name, c->args, c->summary);
}

static int
cmd_help(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	if (argc > 2)
		return cli_usage("usage: okvm help [COMMAND]");
	if (argc == 2) {
		const struct cli_command *c = cli_find_command(argv[1]);
		if (!c)
			return cli_usage("help: unknown command '%s'; see `okvm --help`", argv[1]);
		print_command_help(c, stdout);
		return CLI_OK;
	}
	print_help(stdout);
	return CLI_OK;
}

static int
cmd_version(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	puts("okvm " OKVM_VERSION);
	return CLI_OK;
}

static int
parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
	long v;
	if (!str_to_long(s, 10, lo, hi, &v))
		return cli_usage("%s: '%s' is not a number from %d to %d", opt, s, lo, hi);
	*out = (int)v;
	return CLI_OK;
}

/* digits, then '\0' or the next character; NULL when s does not start with a digit */
static const char *
skip_digits(const char *s)
{
	if (*s < '0' || *s > '9')
		return NULL;
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

/* What -d can name: emu, frames:..., a number or a port chain (3-1, 1-2.4) from `okvm list`, or
 * a path (anything with a '/'). Anything else is a typo, told as such rather than as "no unit". */
static bool
device_spec_ok(const char *s)
{
	if (!strcmp(s, "emu") || !strncmp(s, "frames:", 7) || strchr(s, '/'))
		return true;
	const char *p = skip_digits(s);
	if (!p)
		return false;
	if (!*p)
		return true; /* a number */
	if (*p != '-' || !(p = skip_digits(p + 1)))
		return false;
	while (*p == '.')
		if (!(p = skip_digits(p + 1)))
			return false;
	return !*p;
}

enum {
	OPT_SERIAL = 256,
	OPT_BAUD,
	OPT_LAYOUT,
	OPT_JSON,
	OPT_EMU_EVENTS,
	OPT_EMU_LAYOUT,
	OPT_EMU_POLL,
	OPT_EMU_VIDEO,
	OPT_EMU_CHIP,
	OPT_EMU_STRICT_GAP,
	OPT_EMU_DATAFLIP,
	OPT_GAP,
	OPT_NO_PIPELINE,
	OPT_VIDEO,
	OPT_VIDEO_MODE,
	OPT_EMU_VIDEO_CHIP,
	OPT_EMU_PINS,
	OPT_EMU_POWER,
	OPT_EMU_MEDIA,
};

static const struct option global_opts[] = {
	{ "device", required_argument, NULL, 'd' },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "baud", required_argument, NULL, OPT_BAUD },
	{ "layout", required_argument, NULL, OPT_LAYOUT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "report-gap-ms", required_argument, NULL, OPT_GAP },
	{ "video", required_argument, NULL, OPT_VIDEO },
	{ "video-mode", required_argument, NULL, OPT_VIDEO_MODE },
	{ "no-pipeline", no_argument, NULL, OPT_NO_PIPELINE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "emu-events", required_argument, NULL, OPT_EMU_EVENTS },
	{ "emu-layout", required_argument, NULL, OPT_EMU_LAYOUT },
	{ "emu-poll-ms", required_argument, NULL, OPT_EMU_POLL },
	{ "emu-video", required_argument, NULL, OPT_EMU_VIDEO },
	{ "emu-chip", required_argument, NULL, OPT_EMU_CHIP },
	{ "emu-strict-gap", no_argument, NULL, OPT_EMU_STRICT_GAP },
	{ "emu-dataflip", required_argument, NULL, OPT_EMU_DATAFLIP },
	{ "emu-video-chip", required_argument, NULL, OPT_EMU_VIDEO_CHIP },
	{ "emu-pins", required_argument, NULL, OPT_EMU_PINS },
	{ "emu-power", required_argument, NULL, OPT_EMU_POWER },
	{ "emu-media", required_argument, NULL, OPT_EMU_MEDIA },
	{ 0 },
};

static int
apply_global(struct cli *cli, int c, const char *arg, bool *help)
{
	switch (c) {
	case 'd':
		if (!device_spec_ok(arg))
			return cli_usage("-d %s: not a unit spec (emu, a number or port chain from "
					 "okvm list, a tty path, frames:PATH)",
					 arg);
		cli->device = arg;
		return CLI_OK;
	case OPT_SERIAL: cli->serial = arg; return CLI_OK;
	case OPT_BAUD: return parse_int("--baud", arg, 1200, 115200, &cli->baud);
	case OPT_LAYOUT: cli->layout = arg; return CLI_OK;
	case OPT_JSON: cli->json = true; return CLI_OK;
	case OPT_VIDEO: cli->video = arg; return CLI_OK;
	case OPT_VIDEO_MODE: cli->video_mode = arg; return CLI_OK;
	case OPT_GAP: return parse_int("--report-gap-ms", arg, 0, 1000, &cli->report_gap_ms);
	case OPT_NO_PIPELINE: cli->no_pipeline = true; return CLI_OK;
	case 'v': cli->verbose++; return CLI_OK;
	case 'h': *help = true; return CLI_OK;
	case OPT_EMU_EVENTS: cli->emu_events = arg; return CLI_OK;
	case OPT_EMU_LAYOUT: cli->emu_layout = arg; return CLI_OK;
	case OPT_EMU_POLL: return parse_int("--emu-poll-ms", arg, 1, 1000, &cli->emu_poll_ms);
	case OPT_EMU_VIDEO: cli->emu_video = arg; return CLI_OK;
	case OPT_EMU_CHIP: {
		struct emu_config probe;
		emu_config_init(&probe);
		if (emu_config_chip(&probe, arg) < 0)
			return cli_usage("--emu-chip is %s, not '%s'", emu_chip_names, arg);
		cli->emu_chip = arg;
		return CLI_OK;
	}
	case OPT_EMU_STRICT_GAP: cli->emu_strict_gap = true; return CLI_OK;
	case OPT_EMU_DATAFLIP:
		if (strcmp(arg, "on") && strcmp(arg, "off"))
			return cli_usage("--emu-dataflip is on or off, not '%s'", arg);
		cli->emu_dataflip = arg[1] == 'n' ? 1 : -1;
		return CLI_OK;
	case OPT_EMU_VIDEO_CHIP: cli->emu_video_chip = arg; return CLI_OK; /* checked by vunit.c */
	case OPT_EMU_PINS:
		if (strcmp(arg, "usb-serial") && strcmp(arg, "none"))
			return cli_usage("--emu-pins is usb-serial or none, not '%s'", arg);
		cli->emu_pins = !strcmp(arg, "usb-serial");
		return CLI_OK;
	case OPT_EMU_POWER:
		if (strcmp(arg, "on") && strcmp(arg, "off"))
			return cli_usage("--emu-power is on or off, not '%s'", arg);
		cli->emu_power_off = !strcmp(arg, "off");
		return CLI_OK;
	case OPT_EMU_MEDIA: cli->emu_media = arg; return CLI_OK;
	default: return CLI_USAGE;
	}
}

static const struct option *
find_long(const char *name, size_t n)
{
	for (const struct option *o = global_opts; o->name; o++)
		if (strlen(o->name) == n && !strncmp(o->name, name, n))
			return o;
	return NULL;
}

/*
 * Take the global options out of argv wherever they stand (before a "--"), leaving the command
 * and its own arguments in order. Unknown options stay for the command to judge.
 */
int
cli_extract_globals(struct cli *cli, int *argc, char **argv, bool *help)
{
	int out = 1;
	bool done = false;
	for (int i = 1; i < *argc; i++) {
		char *a = argv[i];
		if (done || a[0] != '-' || !a[1]) {
			argv[out++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			done = true;
			argv[out++] = a;
			continue;
		}
		int code = 0;
		const char *val = NULL;
		bool takes = false;
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			const struct option *o = find_long(a + 2, n);
			if (!o) {
				argv[out++] = a;
				continue;
			}
			code = o->val;
			takes = o->has_arg == required_argument;
			val = eq ? eq + 1 : NULL;
			if (!takes && eq)
				return cli_usage("option --%s takes no value", o->name);
		} else if (!a[2] && (a[1] == 'd' || a[1] == 'v' || a[1] == 'h')) {
			code = a[1];
			takes = a[1] == 'd';
		} else if (a[1] == 'd') {
			code = 'd';
			val = a + 2;
		} else {
			argv[out++] = a;
			continue;
		}
		if (takes && !val) {
			if (i + 1 >= *argc)
				return cli_usage("option %s needs a value", a);
			val = argv[++i];
		}
		int rc = apply_global(cli, code, val, help);
		if (rc)
			return rc;
	}
	*argc = out;
	argv[out] = NULL;
	return CLI_OK;
}

unsigned cli_errors_logged;

static void
log_to_stderr(enum okvm_log_level level, const char *fmt, va_list ap, void *userdata)
{
	(void)userdata;
	if (level >= OKVM_LOG_ERROR)
		cli_errors_logged++;
	const char *tag = level >= OKVM_LOG_ERROR    ? "error"
			  : level >= OKVM_LOG_WARN   ? "warning"
			  : level >= OKVM_LOG_NOTICE ? "notice"
			  : level >= OKVM_LOG_INFO   ? "info"
						     : "debug";
	fprintf(stderr, "okvm: %s: ", tag);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
main(int argc, char **argv)
{
	struct cli cli = { .report_gap_ms = -1 };
	bool help = false;
	int rc = cli_extract_globals(&cli, &argc, argv, &help);
	if (rc)
		return rc;
	okvm_log_set_handler(log_to_stderr, NULL);
	okvm_log_set_level(cli.verbose >= 2 ? OKVM_LOG_DEBUG
			   : cli.verbose    ? OKVM_LOG_INFO
					    : OKVM_LOG_WARN);
	if (argc < 2) {
		print_help(help ? stdout : stderr);
		return help ? CLI_OK : CLI_USAGE;
	}
	const char *name = argv[1];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name))
			continue;
		if (help && commands[i].fn != cmd_help) {
			print_command_help(&commands[i], stdout);
			return CLI_OK;
		}
		/* The command sees argv[0] = its name, then its arguments. */
		cli_install_signals();
		rc = commands[i].fn(&cli, argc - 1, argv + 1);
		cli_emu_shutdown();
		return rc;
	}
	return cli_usage("unknown command '%s'; see `okvm --help`", name);
}
