/*
 * DESIGN: `okvm view`, the native window (src/view/). Reads okvm.conf's [view] section, lets the
 * command line override it, opens the unit the way `okvm serve` does (its link with GET_INFO
 * polling for the LEDs, its capture, its video chip for the USB switch) and wraps it in the
 * serve backend (src/serve/backend-unit.c), whose okvm-hid thread runs the link; then runs the
 * window on the main thread. The backend's end releases everything on the target. The sound
 * (unless --no-audio / audio = off) is opened here as `okvm audio` opens it (cmd_audio.c) and
 * played by src/view/audio.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "av/audio.h"
#include "cli/cli.h"
#include "cli/discover-cli.h"
#include "okvm/chip.h"
#include "okvm/discover.h"
#include "okvm/error.h"
#include "okvm/link.h"
#include "okvm/log.h"
#include "okvm/unit.h"
#include "okvm/video.h"
#include "serve/backend.h"
#include "serve/serve.h"
#include "view/view.h"

void
cmd_view_help(FILE *out)
{
	fputs("usage: okvm view [OPTIONS]\n"
	      "  A window on the target: its screen, and your keyboard and mouse on it.\n"
	      "\n"
	      "  --scale fit|1:1       fit the window, aspect kept (default), or one pixel per pixel\n"
	      "  --fullscreen          start fullscreen\n"
	      "  --host-key NAME       the host key (default rctrl: Right Ctrl; ralt, rgui, f12,\n"
	      "                        ScrollLock... any `okvm key` name)\n"
	      "  --no-audio            do not play the target's sound (default: play it, from the\n"
	      "                        unit's sound card, or the virtual unit's for -d emu)\n"
	      "  --pcm NAME            play this ALSA capture PCM instead (plughw:1, a name from\n"
	      "                        ~/.asoundrc)\n"
	      "  --no-grab             do not take the keyboard (Alt+Tab, Super stay the host's)\n"
	      "  --relative            start with the relative mouse (for targets without absolute\n"
	      "                        pointer support); the host key leaves it\n"
	      "  --screenshot-dir DIR  where screenshots go (default: the current folder)\n"
	      "  --record-dir DIR      where HOST+R recordings go (default: the current folder)\n"
	      "  --config FILE         config file with a [view] section (default\n"
	      "                        ~/.config/okvm/okvm.conf, else /etc/okvm/okvm.conf)\n"
	      "  --list-keys           print the SDL scancode -> HID usage table and exit\n"
	      "  --layout XKB          (global) the target's layout, for paste\n"
	      "  -d SPEC               (global) the unit: emu, N, a port chain, a serial path,\n"
	      "                        frames:PATH[@FPS] (video only)\n"
	      "\n"
	      "Keys (HOST = the host key, Right Ctrl unless --host-key):\n"
	      "  HOST alone            grab the keyboard / release it (and leave relative mouse)\n"
	      "  HOST+V                paste the clipboard as typing in --layout (progress in the\n"
	      "                        title); HOST+V again or Esc cancels\n"
	      "  HOST+O                the overlay: signal, resolution, fps, LEDs, USB port,\n"
	      "                        recording; while it shows, S, U, D, V, F and R act\n"
	      "                        without HOST; Esc closes it\n"
	      "  HOST+F                fullscreen on/off\n"
	      "  HOST+Z                scale: fit / 1:1\n"
	      "  HOST+M                mouse: absolute / relative\n"
	      "  HOST+S                screenshot (the frame as the device sent it, JPEG)\n"
	      "  HOST+R                record: start / stop. The device's MJPEG frames, not\n"
	      "                        re-encoded, and the sound when it plays, into\n"
	      "                        okvm-YYYYmmdd-HHMMSS.mkv in --record-dir (the title shows\n"
	      "                        REC and for how long); closing finishes the file\n"
	      "  HOST+U                USB switch: the port to the host / to the target\n"
	      "  HOST+D, HOST+Delete   Ctrl+Alt+Del on the target\n"
	      "  HOST+Q                quit\n"
	      "  Every other key goes to the target; a click grabs the keyboard. Focus loss and\n"
	      "  closing release every key and button.\n"
	      "\n"
	      "Mouse: absolute (the picture, letterbox excluded), five buttons, the wheel.\n"
	      "See docs/viewer.md.\n",
	      out);
}

enum {
	O_SCALE = 1,
	O_FULL,
	O_HOST,
	O_NOGRAB,
	O_REL,
	O_SHOTS,
	O_CONFIG,
	O_LIST,
	O_NOAUDIO,
	O_PCM,
	O_RECDIR
};

static const struct option opts[] = {
	{ "scale", required_argument, NULL, O_SCALE },
	{ "fullscreen", no_argument, NULL, O_FULL },
	{ "host-key", required_argument, NULL, O_HOST },
	{ "no-grab", no_argument, NULL, O_NOGRAB },
	{ "relative", no_argument, NULL, O_REL },
	{ "screenshot-dir", required_argument, NULL, O_SHOTS },
	{ "config", required_argument, NULL, O_CONFIG },
	{ "list-keys", no_argument, NULL, O_LIST },
	{ "no-audio", no_argument, NULL, O_NOAUDIO },
	{ "pcm", required_argument, NULL, O_PCM },
	{ "record-dir", required_argument, NULL, O_RECDIR },
	{ 0 },
};

struct view_args {
	const char *scale, *host, *shots, *config, *pcm, *recdir;
	bool full, nograb, rel, list, noaudio;
};

static int
parse(int argc, char **argv, struct view_args *a)
{
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case O_SCALE: a->scale = optarg; break;
		case O_FULL: a->full = true; break;
		case O_HOST: a->host = optarg; break;
		case O_NOGRAB: a->nograb = true; break;
		case O_REL: a->rel = true; break;
		case O_SHOTS: a->shots = optarg; break;
		case O_CONFIG: a->config = optarg; break;
		case O_LIST: a->list = true; break;
		case O_NOAUDIO: a->noaudio = true; break;
		case O_PCM: a->pcm = optarg; break;
		case O_RECDIR: a->recdir = optarg; break;
		case ':': return cli_usage("view: %s needs a value", argv[optind - 1]);
		default: return cli_usage("view: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("view: unexpected argument '%s'", argv[optind]);
	return 0;
}

/* okvm.conf's [view], then the command line over it. */
static int
build_opts(struct cli *cli, const struct view_args *a, struct view_opts *o,
	   struct view_config_strings *owned)
{
	view_opts_init(o);
	char *path = a->config ? strdup(a->config) : serve_config_default_path(false);
	if (path) {
		char err[200] = "";
		int rc = view_config_load(path, o, owned, err, sizeof(err));
		if (rc) {
			int r = rc == -EINVAL ? cli_usage("view: %s: %s", path, err)
					      : cli_fail("view: cannot read config %s: %s", path,
							 okvm_strerror(rc));
			free(path);
			return r;
		}
		free(path);
	}
	if (a->scale && view_scale_parse(a->scale, &o->scale))
		return cli_usage("view: --scale fit or --scale 1:1, not '%s'", a->scale);
	if (a->host && (o->host_key = view_host_key_parse(a->host)) < 0)
		return cli_usage("view: --host-key: no key named '%s' (rctrl, ralt, rgui, f12...)",
				 a->host);
	o->fullscreen |= a->full;
	if (a->nograb)
		o->grab = false;
	o->relative |= a->rel;
	if (a->noaudio)
		o->audio = false;
	if (a->shots)
		o->shot_dir = a->shots;
	if (a->recdir)
		o->rec_dir = a->recdir;
	if (cli->layout)
		o->layout = cli->layout;
	return 0;
}

static long
sound_read(void *ud, int16_t *pcm, size_t frames, uint64_t *ts_us)
{
	return cli_audio_read(ud, pcm, frames, ts_us, true);
}

/* The sound to play: --pcm NAME (it must open), the virtual unit's for -d emu, else the card
 * discovery found for the unit (plughw:N; none, or one that does not open, is said and the
 * viewer goes on without sound). CLI_OK (*on set when there is a source) or an exit code. */
static int
open_sound(struct cli *cli, const char *pcm, struct okvm_unit *unit, struct cli_audio *s, bool *on)
{
	*on = false;
	*s = (struct cli_audio){ 0 };
	if (pcm || (cli_is_emu(cli) && unit)) {
		int rc = cli_audio_open(cli, pcm, s);
		*on = rc == CLI_OK;
		return rc;
	}
	const struct okvm_unit_info *ui = unit ? okvm_unit_info(unit) : NULL;
	if (!ui || !ui->alsa_card[0]) {
		if (ui)
			okvm_log(OKVM_LOG_WARN,
				 "view: unit %s has no sound card (is snd-usb-audio loaded?): no "
				 "sound",
				 ui->port_chain);
		return CLI_OK;
	}
	char name[64];
	const char *card = ui->alsa_card, *step;
	if (!strncmp(card, "hw:", 3))
		snprintf(name, sizeof(name), "plughw:%.32s", card + 3);
	else
		snprintf(name, sizeof(name), "%.32s", card);
	int rc = av_audio_open(name, 48000, 2, &s->alsa, &step);
	if (rc < 0)
		okvm_log(OKVM_LOG_WARN, "view: cannot capture sound from '%s' (%s: %s): no sound",
			 name, step, okvm_strerror(rc));
	*on = rc == 0;
	return CLI_OK;
}

int
cmd_view(struct cli *cli, int argc, char **argv)
{
	struct view_args a = { 0 };
	int rc = parse(argc, argv, &a);
	if (rc)
		return rc;
	if (a.list) {
		view_keys_print(stdout);
		return CLI_OK;
	}
	struct view_opts o;
	struct view_config_strings owned = { 0 };
	if ((rc = build_opts(cli, &a, &o, &owned))) {
		view_config_free(&owned);
		return rc;
	}
	struct serve_backend be;
	struct okvm_unit *unit = NULL;
	if ((rc = cli_serve_backend(cli, "view", true, &be, &unit))) {
		view_config_free(&owned);
		return rc;
	}
	struct cli_audio sound = { 0 };
	struct view_audio_source src = { sound_read, &sound };
	bool sound_on = false;
	if (o.audio && (rc = open_sound(cli, a.pcm, unit, &sound, &sound_on))) {
		be.ops->destroy(be.ud);
		okvm_unit_free(unit);
		view_config_free(&owned);
		return rc;
	}
	if (sound_on)
		o.audio_src = &src;
	unsigned logged = cli_errors_logged;
	rc = view_run(&o, &be, &cli_stop_signal);
	cli_audio_close(&sound);
	be.ops->destroy(be.ud); /* releases everything on the target */
	okvm_unit_free(unit);
	view_config_free(&owned);
	if (rc == -ENXIO)
		return cli_errors_logged != logged
			       ? CLI_FAIL
			       : cli_fail("view: no display (is DISPLAY or WAYLAND_DISPLAY set?)");
	if (rc)
		return cli_fail("view: %s", okvm_strerror(rc));
	return CLI_OK;
}
