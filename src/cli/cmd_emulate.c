/*
 * DESIGN: `okvm emulate`: run the virtual unit (src/emu) as its own process, so any program
 * (okvm --serial PATH, the official apps, a terminal) can talk to a CH9329 that is not there.
 * The main thread only waits for signals: SIGTERM/SIGINT/SIGHUP stop the unit (link and modem
 * socket removed), SIGUSR1 plugs or unplugs the virtual target, SIGUSR2 the USB-serial adapter
 * on its extension pins (--emu-pins: a mid-press unplug for the tests). The unit's own thread does the
 * rest. The first line on stdout is the tty to open (the link, else the pty), then it is flushed,
 * so a script can start it in the background and read where it is.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "emu/audio.h"
#include "emu/emu.h"
#include "okvm/error.h"
#include "okvm/keymap.h"
#include "okvm/models.h"

static volatile sig_atomic_t toggle_requests, pins_requests;

static void
on_usr1(int sig)
{
	if (sig == SIGUSR2)
		pins_requests++;
	else
		toggle_requests++;
}

struct emulate_opts {
	const char *link;
	const char *audio_out; /* --audio-out FILE: the virtual unit's sound (src/emu/audio.c) */
	bool disconnected;
	enum emu_chip_type chip;
};

static int
parse_opts(int argc, char **argv, struct emulate_opts *o)
{
	static const struct option opts[] = {
		{ "link", required_argument, NULL, 'l' },
		{ "target-disconnected", no_argument, NULL, 't' },
		{ "chip", required_argument, NULL, 'c' },
		{ "audio-out", required_argument, NULL, 'a' },
		{ 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'l') {
			o->link = optarg;
		} else if (c == 'a') {
			o->audio_out = optarg;
		} else if (c == 't') {
			o->disconnected = true;
		} else if (c == 'c' && !strcmp(optarg, "ch9329")) {
			o->chip = EMU_CHIP_CH9329;
		} else if (c == 'c' && !strcmp(optarg, "ch32v208")) {
			o->chip = EMU_CHIP_CH32V208;
		} else if (c == 'c') {
			return cli_usage("emulate: --chip is ch9329 or ch32v208, not '%s'", optarg);
		} else {
			return cli_usage("emulate: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("emulate: unexpected argument '%s'", argv[optind]);
	return CLI_OK;
}

/* "1200, 2400, ... or 115200": the CH9329's speeds (okvm/models.h) */
static void
baud_list(char *out, size_t size)
{
	const struct okvm_hid_chip *c = okvm_hid_chip_get(OKVM_HID_CH9329);
	size_t n = 0;
	out[0] = 0;
	for (size_t i = 0; i < c->n_bauds && n < size; i++) {
		const char *sep = i == 0 ? "" : i + 1 == c->n_bauds ? " or " : ", ";
		int k = snprintf(out + n, size - n, "%s%d", sep, c->bauds[i]);
		if (k < 0)
			break;
		n += (size_t)k;
	}
}

static void
print_ready(struct cli *cli, struct emu *e, int baud)
{
	const char *pins = emu_pins_tty(e);
	if (cli->json && pins)
		printf("{\"tty\":\"%s\",\"pty\":\"%s\",\"modem\":\"%s\",\"baud\":%d,"
		       "\"pins_tty\":\"%s\",\"pins_modem\":\"%s\"}\n",
		       emu_tty_path(e), emu_pty_name(e), emu_modem_socket(e), baud, pins,
		       emu_pins_modem_socket(e));
	else if (cli->json)
		printf("{\"tty\":\"%s\",\"pty\":\"%s\",\"modem\":\"%s\",\"baud\":%d}\n",
		       emu_tty_path(e), emu_pty_name(e), emu_modem_socket(e), baud);
	else
		printf("%s\n", emu_tty_path(e));
	if (!cli->json && pins)
		printf("pins: %s\n", pins); /* the USB-serial adapter on the extension pins */
	fflush(stdout);
}

/* SIGUSR1 and SIGUSR2 are caught from the start (their default would kill the process), and the
 * stop signals and both stay blocked except inside sigsuspend(), so none is missed. */
static void
block_signals(sigset_t *old)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, old);
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
}

/* Sleep until a stop signal; SIGUSR1 toggles the target, SIGUSR2 the pins' adapter. */
static void
wait_loop(struct emu *e, bool connected, const sigset_t *old)
{
	bool pins = true;
	while (!cli_stop_signal) {
		sigsuspend(old);
		for (; toggle_requests > 0; toggle_requests--) {
			connected = !connected;
			emu_set_target_connected(e, connected);
		}
		for (; pins_requests > 0; pins_requests--) {
			pins = !pins;
			emu_set_pins_plugged(e, pins);
		}
	}
}

static int
run(struct cli *cli, const struct emu_config *cfg, const char *audio_out, const sigset_t *old)
{
	struct emu *e = emu_new(cfg);
	struct emu_audio *audio = NULL;
	if (audio_out) {
		audio = emu_audio_new();
		emu_add_listener(e, emu_audio_listener, audio);
		int arc = emu_audio_start_writer(audio, audio_out);
		if (arc) {
			emu_free(e);
			emu_audio_free(audio);
			return cli_fail("emulate: --audio-out %s: %s", audio_out,
					okvm_strerror(arc));
		}
	}
	unsigned logged = cli_errors_logged;
	int rc = emu_start(e);
	if (rc) {
		emu_free(e);
		emu_audio_free(audio);
		if (cli_errors_logged != logged)
			return CLI_FAIL; /* the virtual unit said why, in one line */
		if (rc == -EEXIST)
			return cli_fail("emulate: %s exists and is not a symlink", cfg->link_path);
		return cli_fail("emulate: cannot start the virtual unit (link %s, events %s): %s",
				cfg->link_path ? cfg->link_path : "none",
				cfg->events_path ? cfg->events_path : "none", okvm_strerror(rc));
	}
	print_ready(cli, e, cfg->baud);
	wait_loop(e, cfg->target_connected, old);
	emu_free(e);
	emu_audio_free(audio);
	return CLI_OK;
}

int
cmd_emulate(struct cli *cli, int argc, char **argv)
{
	sigset_t old;
	block_signals(&old);
	struct emu_config cfg;
	emu_config_init(&cfg);
	if (cli->emu_chip)
		emu_config_chip(&cfg, cli->emu_chip); /* checked when the option was parsed */
	cfg.strict_gap = cli->emu_strict_gap;
	cfg.dataflip = cli->emu_dataflip;
	struct emulate_opts o = { .chip = cfg.chip };
	int rc = parse_opts(argc, argv, &o);
	int baud = cli->baud ? cli->baud : cfg.baud;
	cfg.layout = cli->emu_layout ? cli->emu_layout : cli_layout(cli);
	if (!rc && !okvm_hid_chip_baud_ok(OKVM_HID_CH9329, baud)) {
		char list[128];
		baud_list(list, sizeof(list));
		rc = cli_usage("emulate: a CH9329 runs at %s baud, not %d", list, baud);
	}
	struct okvm_kbd_decoder *dec = rc ? NULL : okvm_kbd_decoder_new(cfg.layout);
	if (!rc && !dec)
		rc = cli_usage("emulate: unknown keyboard layout '%s'", cfg.layout);
	okvm_kbd_decoder_free(dec);
	if (rc) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return rc;
	}
	cfg.link_path = o.link;
	cfg.baud = baud;
	cfg.poll_ms = cli->emu_poll_ms;
	cfg.events_path = cli->emu_events;
	cfg.target_connected = !o.disconnected;
	cfg.chip = o.chip;
	cfg.pins_adapter = cli->emu_pins;
	cfg.target_off = cli->emu_power_off;
	rc = run(cli, &cfg, o.audio_out, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
