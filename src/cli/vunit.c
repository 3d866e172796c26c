/*
 * DESIGN: the in-process virtual unit behind `-d emu`. One per process, started on first use by
 * whichever part needs it (the link, the video capture, the registers, the server) and stopped
 * at exit by cli_emu_shutdown(), after the link has released everything. It is the CH9329
 * emulator (src/emu/emu.c, its own thread), the virtual target's screen (src/emu/screen.c, fed
 * by the emulator's events) and the MS2109 register model (src/emu/ms2109-emu.c, reached through
 * the same okvm_chip code as a real hidraw node). Configured from the global --emu-* options.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "emu/audio.h"
#include "emu/emu.h"
#include "emu/ms2109-chip.h"
#include "emu/ms2109-emu.h"
#include "emu/screen.h"
#include "okvm/error.h"
#include "okvm/video.h"
#include "lib/xalloc.h"

#define EMU_DEFAULT_VIDEO "1920x1080@30"

struct vunit {
	struct emu *emu;
	struct vscreen *screen;
	struct ms2109_emu regs;
	pthread_mutex_t regs_lock;
	int w, h, fps; /* the screen's mode, for the HDMI signal the chip reports */
	/* its sound (src/emu/audio.c) */
	struct emu_audio *audio;
};

static struct vunit *the_unit;
static bool held;

void
cli_emu_hold(bool hold)
{
	held = hold;
}

bool
cli_is_emu(const struct cli *cli)
{
	return cli->device && !strcmp(cli->device, "emu") && !cli->serial;
}

/* The emulator's thread tells the screen what the target experiences. */
static void
feed_screen(const struct emu_event *ev, void *ud)
{
	struct vscreen *vs = ud;
	switch (ev->type) {
	case EMU_EV_TEXT: vscreen_feed_text(vs, ev->text); break;
	case EMU_EV_MOUSE: vscreen_mouse(vs, ev->x, ev->y, ev->buttons, ev->wheel); break;
	case EMU_EV_LEDS: vscreen_set_leds(vs, ev->leds); break;
	case EMU_EV_KEY: vscreen_key(vs, ev->usage, ev->down); break;
	case EMU_EV_MEDIA: vscreen_media(vs, ev->media_id, ev->media_bits); break;
	case EMU_EV_SWITCH: vscreen_usb_switch(vs, ev->to_target); break;
	default: break;
	}
}

/* The target's power (the extension pins): off means no HDMI signal. */
static void
feed_power(const struct emu_event *ev, void *ud)
{
	struct vunit *u = ud;
	if (ev->type != EMU_EV_POWER)
		return;
	vscreen_set_signal(u->screen, ev->on);
	pthread_mutex_lock(&u->regs_lock);
	ms2109_emu_set_signal(&u->regs, ev->on, u->w, u->h, u->fps * 100, 0);
	pthread_mutex_unlock(&u->regs_lock);
}

static struct vunit *
vunit_new(struct cli *cli)
{
	const char *mode = cli->emu_video ? cli->emu_video : EMU_DEFAULT_VIDEO;
	struct vscreen *vs = vscreen_new_mode(mode);
	if (!vs) {
		cli_usage("--emu-video: '%s' is not WxH@FPS", mode);
		return NULL;
	}
	struct vunit *u = xcalloc(1, sizeof(*u));
	u->screen = vs;
	ms2109_emu_init(&u->regs, NULL);
	if (cli->emu_video_chip && ms2109_emu_set_chip(&u->regs, cli->emu_video_chip) < 0) {
		cli_usage("--emu-video-chip is ms2109, ms2109s or ms2130s (+ -noecho, -halves), "
			  "not '%s'",
			  cli->emu_video_chip);
		vscreen_free(vs);
		free(u);
		return NULL;
	}
	int w = 1920, h = 1080, fps = 30;
	okvm_video_parse_mode(mode, &w, &h, &fps);
	ms2109_emu_set_signal(&u->regs, true, w, h, fps * 100, 0);
	if (cli->emu_media) /* the stick starts at the target (okvm media moves it) */
		u->regs.xdata[MS2109_REG_SPDIFOUT] |= ms2109_emu_switch_bit(&u->regs);
	u->w = w;
	u->h = h;
	u->fps = fps;
	pthread_mutex_init(&u->regs_lock, NULL);

	struct emu_config cfg;
	emu_config_init(&cfg);
	cfg.events_path = cli->emu_events;
	cfg.layout = cli->emu_layout ? cli->emu_layout : cli_layout(cli);
	cfg.poll_ms = cli->emu_poll_ms;
	if (cli->emu_chip)
		emu_config_chip(&cfg, cli->emu_chip); /* checked when the option was parsed */
	cfg.strict_gap = cli->emu_strict_gap;
	cfg.dataflip = cli->emu_dataflip;
	cfg.baud = cli_emu_baud(cli);
	cfg.pins_adapter = cli->emu_pins;
	cfg.target_off = cli->emu_power_off;
	u->emu = emu_new(&cfg);
	emu_add_listener(u->emu, feed_screen, vs);
	emu_add_listener(u->emu, feed_power, u);
	u->audio = emu_audio_new();
	emu_add_listener(u->emu, emu_audio_listener, u->audio);
	return u;
}

static void
vunit_free(struct vunit *u)
{
	if (!u)
		return;
	if (u->emu) {
		emu_stop(u->emu);
		emu_free(u->emu);
	}
	vscreen_free(u->screen);
	emu_audio_free(u->audio);
	pthread_mutex_destroy(&u->regs_lock);
	free(u);
}

static int
vunit(struct cli *cli, struct vunit **out)
{
	if (!the_unit) {
		if (!cli)
			return cli_fail("the virtual unit is not running");
		struct vunit *u = vunit_new(cli);
		if (!u)
			return CLI_USAGE;
		unsigned logged = cli_errors_logged;
		int rc = emu_start(u->emu);
		if (rc < 0) {
			vunit_free(u);
			if (cli_errors_logged != logged)
				return CLI_FAIL; /* the virtual unit said why, in one line */
			return cli_fail("cannot start the virtual unit: %s", okvm_strerror(rc));
		}
		the_unit = u;
	}
	*out = the_unit;
	return CLI_OK;
}

int
cli_emu(struct cli *cli, struct emu **out)
{
	struct vunit *u = NULL;
	int rc = vunit(cli, &u);
	if (!rc)
		*out = u->emu;
	return rc;
}

int
cli_emu_capture(struct cli *cli, struct okvm_capture **out)
{
	struct vunit *u = NULL;
	int rc = vunit(cli, &u);
	if (!rc)
		*out = vscreen_capture(u->screen); /* owned by the screen: never freed by callers */
	return rc;
}

static void
on_routed(bool to_target, void *ud)
{
	emu_post_switch(ud, to_target);
}

int
cli_emu_chip(struct cli *cli, struct okvm_chip **out)
{
	struct vunit *u = NULL;
	int rc = vunit(cli, &u);
	if (!rc)
		*out = emu_ms2109_chip_new_hooked(&u->regs, &u->regs_lock, on_routed, u->emu);
	return rc;
}

int
cli_emu_audio(struct cli *cli, struct emu_audio **out)
{
	struct vunit *u = NULL;
	int rc = vunit(cli, &u);
	if (!rc)
		*out = u->audio;
	return rc;
}

struct vscreen *
cli_emu_screen(void)
{
	return the_unit ? the_unit->screen : NULL;
}

void
cli_emu_set_toggle(bool target)
{
	if (!the_unit)
		return;
	pthread_mutex_lock(&the_unit->regs_lock);
	ms2109_emu_set_toggle(&the_unit->regs, target);
	pthread_mutex_unlock(&the_unit->regs_lock);
}

const char *
cli_emu_modem_socket(void)
{
	return the_unit ? emu_modem_socket(the_unit->emu) : NULL;
}

const char *
cli_emu_pins_tty(void)
{
	return the_unit ? emu_pins_tty(the_unit->emu) : NULL;
}

const char *
cli_emu_pins_modem_socket(void)
{
	return the_unit ? emu_pins_modem_socket(the_unit->emu) : NULL;
}

int
cli_emu_baud(const struct cli *cli)
{
	if (cli->baud > 0)
		return cli->baud;
	struct emu_config cfg;
	emu_config_init(&cfg);
	if (cli->emu_chip)
		emu_config_chip(&cfg, cli->emu_chip); /* a CH32V208 runs at 115200 */
	return cfg.baud;
}

void
cli_emu_shutdown(void)
{
	if (held)
		return;
	vunit_free(the_unit);
	the_unit = NULL;
}
