/*
 * DESIGN: `okvm serve`, the web KVM. Reads the config file, lets the command line override it,
 * opens the unit (src/lib/dev/unit.c) and builds its backend (src/serve/backend-unit.c), then
 * runs the server's service loop on the main thread until SIGINT/SIGTERM. serve_free() releases
 * every key and button pressed through the server before the process exits.
 *
 * cli_serve_wrap is the one seam for tests: a test build (tests/recorder/) sets it to wrap the
 * unit's backend in one that records each call; the product leaves it NULL.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "power/power.h"
#include "okvm/discover.h"
#include "okvm/chip.h"
#include "cli/discover-cli.h"
#include "emu/emu.h"
#include "okvm/error.h"
#include "okvm/log.h"
#include "okvm/link.h"
#include "okvm/unit.h"
#include "okvm/video.h"
#include "serve/serve.h"

void (*cli_serve_wrap)(struct cli *cli, struct serve_backend *be);

void
cmd_serve_help(FILE *out)
{
	fputs("usage: okvm serve [OPTIONS]\n"
	      "  Serve the web KVM: video (MJPEG), keyboard, mouse, paste, REST API and WebSocket.\n"
	      "\n"
	      "  --listen ADDR:PORT    where to listen (default 127.0.0.1:8080; unix:/PATH for a\n"
	      "                        reverse proxy). Any address other than loopback\n"
	      "                        needs a password (okvm passwd)\n"
	      "  --config FILE         config file (default ~/.config/okvm/okvm.conf, else\n"
	      "                        /etc/okvm/okvm.conf); options below override it\n"
	      "  --auth auto|always    always: a login on loopback too (auto: when a password is\n"
	      "                        set); users come from okvm passwd\n"
	      "  --tls-cert FILE       serve HTTPS with this certificate (PEM) ...\n"
	      "  --tls-key FILE        ... and this private key (PEM)\n"
	      "  --tls-self-signed     serve HTTPS with a generated self-signed certificate (kept\n"
	      "                        next to the config file and reused)\n"
	      "  --session-hours N     login session lifetime (default 12)\n"
	      "  --stall-timeout S     drop a client that does not take a frame or message within\n"
	      "                        S seconds (default 10)\n"
	      "  --max-clients N       concurrent connections (default 256)\n"
	      "  --type-cps N          default paste speed in characters per second (0 = as fast as\n"
	      "                        the link allows)\n"
	      "  --no-follow-toggle    leave the USB port alone when the unit's hardware toggle\n"
	      "                        moves (default: follow it, as `okvm switch follow` does)\n"
	      "  --vnc IPV4:PORT       also serve VNC there (127.0.0.1:5900); any address other\n"
	      "                        than loopback needs [vnc] password in the config\n"
	      "  --layout XKB          (global) default target keyboard layout for paste\n"
	      "  -d emu                (global) the built-in virtual unit (--emu-* options apply)\n"
	      "  --serial PATH, -d /dev/ttyX  (global) a CH9329 on this tty, with --video DEV\n"
	      "                        (default /dev/video0) as its video\n"
	      "  -d frames:PATH[@FPS]  (global) a video-only unit: JPEGs of a folder or an .mjpeg\n"
	      "  -d N, -d PORTCHAIN    (global) a unit from `okvm list`; nothing: the first found\n"
	      "  --video DEV, --video-mode WxH@FPS  (global) the capture node and mode\n"
	      "  --video frames:PATH[@FPS]  (global) the unit's input with these frames as its video\n"
	      "                        (demos, tests: -d emu --video frames:DIR)\n"
	      "\n"
	      "  Prints \"okvm: serving on URL\" on stdout once it listens. See docs/serve.md and\n"
	      "  docs/api.md. AI agents: MCP at /mcp (the login, or [mcp] token in the config as\n"
	      "  a bearer token; docs/automation.md).\n",
	      out);
}

enum {
	O_LISTEN = 1,
	O_CONFIG,
	O_CERT,
	O_KEY,
	O_SELF,
	O_SESSION,
	O_STALL,
	O_MAXC,
	O_CPS,
	O_AUTH,
	O_NO_TOGGLE,
	O_VNC
};

static const struct option opts[] = {
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "config", required_argument, NULL, O_CONFIG },
	{ "tls-cert", required_argument, NULL, O_CERT },
	{ "tls-key", required_argument, NULL, O_KEY },
	{ "tls-self-signed", no_argument, NULL, O_SELF },
	{ "session-hours", required_argument, NULL, O_SESSION },
	{ "stall-timeout", required_argument, NULL, O_STALL },
	{ "max-clients", required_argument, NULL, O_MAXC },
	{ "type-cps", required_argument, NULL, O_CPS },
	{ "auth", required_argument, NULL, O_AUTH },
	{ "no-follow-toggle", no_argument, NULL, O_NO_TOGGLE },
	{ "vnc", required_argument, NULL, O_VNC },
	{ 0 },
};

struct serve_args {
	const char *listen, *config, *cert, *key, *auth, *vnc;
	bool self_signed, no_follow;
	int session_hours, stall, max_clients;
	double cps;
};

static int
num(const char *opt, const char *v, double lo, double hi, double *out)
{
	char *end;
	double d = strtod(v, &end);
	if (end == v || *end || d < lo || d > hi)
		return cli_usage("serve: %s wants a number from %g to %g", opt, lo, hi);
	*out = d;
	return 0;
}

static int
parse(int argc, char **argv, struct serve_args *a)
{
	int c;
	double d = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: a->listen = optarg; break;
		case O_VNC: a->vnc = optarg; break;
		case O_CONFIG: a->config = optarg; break;
		case O_CERT: a->cert = optarg; break;
		case O_KEY: a->key = optarg; break;
		case O_SELF: a->self_signed = true; break;
		case O_NO_TOGGLE: a->no_follow = true; break;
		case O_AUTH:
			if (strcmp(optarg, "auto") && strcmp(optarg, "always"))
				return cli_usage("serve: --auth auto or --auth always");
			a->auth = optarg;
			break;
		case O_SESSION:
			if (num("--session-hours", optarg, 1, 8760, &d))
				return CLI_USAGE;
			a->session_hours = (int)d;
			break;
		case O_STALL:
			if (num("--stall-timeout", optarg, 1, 3600, &d))
				return CLI_USAGE;
			a->stall = (int)d;
			break;
		case O_MAXC:
			if (num("--max-clients", optarg, 1, 4096, &d))
				return CLI_USAGE;
			a->max_clients = (int)d;
			break;
		case O_CPS:
			if (num("--type-cps", optarg, 0, 10000, &a->cps))
				return CLI_USAGE;
			break;
		case ':': return cli_usage("serve: %s needs a value", argv[optind - 1]);
		default: return cli_usage("serve: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("serve: unexpected argument '%s'", argv[optind]);
	return 0;
}

static void
replace(char **field, const char *v)
{
	if (!v)
		return;
	free(*field);
	*field = strdup(v);
}

static int
build_config(struct cli *cli, const struct serve_args *a, struct serve_config *cfg)
{
	serve_config_init(cfg);
	char *path = a->config ? strdup(a->config) : serve_config_default_path(false);
	if (path) {
		int rc = serve_config_load(cfg, path);
		if (rc) {
			int r = cli_fail("serve: cannot use config %s: %s", path,
					 okvm_strerror(rc));
			free(path);
			return r;
		}
	}
	free(path);
	replace(&cfg->listen, a->listen);
	replace(&cfg->vnc_listen, a->vnc);
	replace(&cfg->tls_cert, a->cert);
	replace(&cfg->tls_key, a->key);
	replace(&cfg->layout, cli->layout);
	cfg->tls_self_signed |= a->self_signed;
	if (a->no_follow)
		cfg->follow_toggle = false;
	if (a->auth)
		cfg->auth_mode = strcmp(a->auth, "always") ? SERVE_AUTH_AUTO : SERVE_AUTH_ALWAYS;
	if (a->session_hours)
		cfg->session_hours = a->session_hours;
	if (a->stall)
		cfg->stall_timeout_s = a->stall;
	if (a->max_clients)
		cfg->max_clients = a->max_clients;
	if (a->cps > 0)
		cfg->type_cps = a->cps;
	return 0;
}

/* The unit's link with GET_INFO polling on (the page shows the LEDs and the target's state).
 * The backend takes the link over; the unit stays for locating its nodes after a re-plug. */
static int
open_link(struct okvm_unit *unit, const char *what, struct okvm_link **out)
{
	const struct okvm_unit_info *ui = okvm_unit_info(unit);
	unsigned logged = cli_errors_logged;
	int rc = okvm_unit_connect(unit);
	if (rc == -ENODEV && ui && !okvm_unit_serial_path(unit)[0])
		return cli_fail("%s: unit %s has no serial port (is the ch341 driver loaded?)",
				what, ui->port_chain);
	if (rc < 0) {
		if (cli_errors_logged != logged)
			return CLI_FAIL; /* the library said what went wrong, in one line */
		return cli_fail("%s: %s: %s", what, okvm_unit_serial_path(unit), okvm_strerror(rc));
	}
	*out = okvm_unit_take_link(unit);
	return 0;
}

static bool
is_frames(const struct cli *cli)
{
	return cli->device && !strncmp(cli->device, "frames:", 7);
}

/* Hot-plug of a discovered unit: the library finds it again by its port chain (the hub port
 * it is plugged into); its serial and capture nodes may have other names now. The link's
 * callback runs on the backend's hid thread, the capture's on the capture thread, each only
 * while its node is gone; okvm_unit_locate_* may be called from both. */
static int
locate_by_chain(void *ud, char *path, size_t size)
{
	return okvm_unit_locate_serial(ud, path, size);
}

static bool
is_frames_video(const struct cli *cli)
{
	return cli->video && !strncmp(cli->video, "frames:", 7);
}

/* The unit's video: the virtual unit's screen, the discovered unit's capture, or
 * cli_open_capture's choice (frames:PATH, --video DEV or frames:PATH, /dev/videoN). */
static int
open_video(struct cli *cli, const char *what, struct okvm_unit *unit, struct serve_unit_config *u)
{
	const struct okvm_unit_info *ui = unit ? okvm_unit_info(unit) : NULL;
	if (!is_frames_video(cli) && (ui || (unit && cli_is_emu(cli)))) {
		/* The unit's: it follows the unit, not the node name, across a re-plug (--video
		 * stays as given), and the unit frees it after the backend. */
		int rc = okvm_unit_open_capture(unit, cli->video, cli->video_mode);
		if (rc == -EINVAL)
			return cli_usage("--video-mode: '%s' is not WxH or WxH@FPS",
					 cli->video_mode);
		if (rc < 0)
			return cli_fail("%s: video: %s", what, okvm_strerror(rc));
		u->capture = okvm_unit_capture(unit);
		u->capture_owned = false;
		return 0;
	}
	int rc = cli_open_capture(cli, &u->capture);
	u->capture_owned = !rc;
	return rc;
}

static void
close_video(struct serve_unit_config *u)
{
	if (u->capture && u->capture_owned)
		okvm_capture_free(u->capture); /* else the unit's, freed with it */
}

/* unit: the unit the link and capture locate themselves through; it outlives the backend.
 * what: the command, for messages. */
static int
make_backend(struct cli *cli, const char *what, bool follow_toggle, struct serve_backend *be,
	     struct okvm_unit **unit)
{
	/* -d N, -d PORTCHAIN or nothing: discovery, as the other commands do */
	struct okvm_unit_spec spec = { .link = { .info_poll_ms = OKVM_LINK_DEFAULT_INFO_POLL_MS } };
	bool input = !is_frames(cli);
	struct serve_unit_config u = { 0 };
	char name[128];
	snprintf(name, sizeof(name), "%s", cli->device ? cli->device : "unit");
	int rc = input ? cli_unit_new(cli, &spec, unit) : 0;
	if (!rc && input && !(rc = open_link(*unit, what, &u.link)))
		snprintf(name, sizeof(name), "%s", okvm_unit_name(*unit));
	if (!rc && (rc = open_video(cli, what, *unit, &u)) && u.link)
		okvm_link_free(u.link);
	if (rc) {
		okvm_unit_free(*unit);
		*unit = NULL;
		return rc;
	}
	const struct okvm_unit_info *ui = *unit ? okvm_unit_info(*unit) : NULL;
	u.unit = name;
	u.follow_toggle = follow_toggle;
	if (ui) {
		u.locate = locate_by_chain;
		u.locate_ud = *unit;
	}
	/* The video chip for the USB switch, as `okvm switch` uses it; without one (no hidraw
	 * access, --serial) the server falls back to command 0x17 or reports the switch unknown. */
	struct okvm_chip *chip;
	if (*unit &&
	    (ui ? ui->variant == OKVM_VARIANT_MINI_KVM && ui->hidraw_node[0] : cli_is_emu(cli)) &&
	    cli_open_chip(*unit, &chip) == CLI_OK)
		u.chip = okvm_unit_take_chip(*unit); /* the backend's now */
	rc = serve_backend_unit_new(&u, be);
	if (rc) {
		okvm_chip_free(u.chip);
		okvm_link_free(u.link);
		close_video(&u);
		okvm_unit_free(*unit);
		*unit = NULL;
		return cli_fail("%s: %s", what, okvm_strerror(rc));
	}
	return 0;
}

/* The same backend for other commands that drive a unit as the server does (okvm mcp, view,
 * script). */
int
cli_serve_backend(struct cli *cli, const char *what, bool follow_toggle, struct serve_backend *be,
		  struct okvm_unit **unit)
{
	return make_backend(cli, what, follow_toggle, be, unit);
}

/* The unit's sound for {"type":"audio"}: what okvm audio reads (the virtual unit's, or the
 * unit's card), opened by the server's audio thread while someone listens. */
struct serve_sound {
	struct cli *cli;
	struct cli_audio a;
};

static int
sound_open(void *ud)
{
	struct serve_sound *k = ud;
	return cli_audio_open(k->cli, NULL, &k->a) == CLI_OK ? 0 : -ENODEV;
}

static long
sound_read(void *ud, int16_t *pcm, size_t frames, uint64_t *ts_us)
{
	struct serve_sound *k = ud;
	long n;
	while ((n = cli_audio_read(&k->a, pcm, frames, ts_us, true)) == 0)
		;
	return n;
}

static void
sound_close(void *ud)
{
	struct serve_sound *k = ud;
	cli_audio_close(&k->a);
}

/* /api/power when there is something to press with: [power] device, the virtual unit's pins,
 * or an adapter on the unit's extension pins (docs/power.md). A bad [power] is an error. */
static int
serve_power(struct cli *cli, const char *config, struct serve *s)
{
	struct power_config pc;
	power_config_init(&pc);
	int rc = cli_power_adapter(cli, config, &pc, true);
	if (rc == CLI_OK)
		serve_set_power(s, &pc);
	power_config_clear(&pc);
	return rc == CLI_USAGE ? rc : CLI_OK;
}

int
cmd_serve(struct cli *cli, int argc, char **argv)
{
	struct serve_args a = { 0 };
	int rc = parse(argc, argv, &a);
	if (rc)
		return rc;
	struct serve_config cfg;
	if ((rc = build_config(cli, &a, &cfg))) {
		serve_config_clear(&cfg);
		return rc;
	}
	if (!serve_listen_valid(cfg.listen)) {
		rc = cli_usage("serve: --listen %s: want ADDR:PORT (127.0.0.1:8080, [::1]:8080) or "
			       "unix:/PATH",
			       cfg.listen);
		serve_config_clear(&cfg);
		return rc;
	}
	if (!cfg.tls_cert != !cfg.tls_key) {
		serve_config_clear(&cfg);
		return cli_usage("serve: --tls-cert and --tls-key go together");
	}
	if (!serve_listen_is_loopback(cfg.listen) && !cfg.password_hash && !cfg.nusers) {
		serve_config_clear(&cfg);
		return cli_fail(
			"serve: listening on %s needs a password; set one with `okvm passwd`",
			a.listen ? a.listen : "a non-loopback address");
	}
	struct serve_backend be;
	struct okvm_unit *unit = NULL;
	if ((rc = make_backend(cli, "serve", cfg.follow_toggle, &be, &unit))) {
		serve_config_clear(&cfg);
		return rc;
	}
	if (cli_serve_wrap)
		cli_serve_wrap(cli, &be);
	/* The audit lines (who logged in, pasted, switched) go to the journal without -v. */
	if (okvm_log_get_level() > OKVM_LOG_NOTICE)
		okvm_log_set_level(OKVM_LOG_NOTICE);
	struct serve *s = serve_new(&cfg, &be);
	struct serve_sound sound = { .cli = cli };
	serve_set_audio(
		s, &(struct serve_audio_source){ sound_open, sound_read, sound_close, &sound });
	if (cli_is_emu(cli) || unit) /* /api/media: the stick in the switchable port */
		serve_set_media(s, &(struct serve_media_config){
					   .emu = cli_is_emu(cli),
					   .emu_file = cli->emu_media,
					   .unit_chain = unit && okvm_unit_info(unit)
								 ? okvm_unit_info(unit)->port_chain
								 : NULL });
	if ((rc = serve_power(cli, a.config, s))) {
		serve_free(s);
		okvm_unit_free(unit);
		serve_config_clear(&cfg);
		return rc;
	}
	bool tls = cfg.tls_cert || cfg.tls_self_signed;
	unsigned logged = cli_errors_logged;
	rc = serve_start(s);
	if (rc) {
		serve_free(s);
		okvm_unit_free(unit);
		int r = CLI_FAIL; /* serve_start said what went wrong, in one line */
		if (cli_errors_logged == logged)
			r = cli_fail("serve: cannot listen on %s: %s", cfg.listen,
				     rc == -EADDRINUSE ? "the port is in use" : okvm_strerror(rc));
		serve_config_clear(&cfg);
		return r;
	}
	if (!strncmp(cfg.listen, "unix:", 5))
		printf("okvm: serving on %s\n", cfg.listen);
	else
		printf("okvm: serving on %s://%s/\n", tls ? "https" : "http", cfg.listen);
	fflush(stdout);
	serve_config_clear(&cfg);
	rc = serve_run(s, &cli_stop_signal);
	serve_free(s);
	okvm_unit_free(unit); /* after the backend: its threads locate through it */
	if (rc)
		return cli_fail("serve: %s", okvm_strerror(rc));
	return CLI_OK;
}
