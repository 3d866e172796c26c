/*
 * DESIGN: `okvm screenshot` and the CLI's way to a video source. cli_open_capture() turns the
 * options into a capture (frames:PATH[@FPS] = the file source; --video DEV, -d /dev/videoN or
 * nothing = V4L2, default /dev/video0); the integrator hooks `-d emu` and discovery in there.
 * screenshot wants frames, waits for the first real picture (a placeholder means no signal or
 * no device, which fails unless --allow-no-signal), and writes it: the JPEG bytes exactly as the
 * device sent them, or a PNG when the name ends in .png, or stdout for "-".
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/unit.h"
#include "okvm/video.h"

#define DEFAULT_VIDEO "/dev/video0"

static int
open_frames(const char *spec, struct okvm_capture **out)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s", spec);
	double fps = 30;
	char *at = strrchr(path, '@');
	if (at) {
		char *end;
		fps = strtod(at + 1, &end);
		if (end == at + 1 || *end || fps <= 0 || fps > 1000)
			return cli_usage("frames:PATH@FPS: '%s' is not a frame rate", at + 1);
		*at = 0;
	}
	*out = okvm_capture_new_files(path, fps);
	return CLI_OK;
}

/* The discovered unit whose capture cli_open_capture() handed out (the unit owns it). */
static struct okvm_unit *capture_unit;

void
cli_close_capture(struct cli *cli, struct okvm_capture *cap)
{
	if (capture_unit && cap == okvm_unit_capture(capture_unit)) {
		okvm_unit_free(capture_unit); /* frees the capture with it */
		capture_unit = NULL;
		return;
	}
	if (!cli->video && cli_is_emu(cli)) {
		okvm_capture_want(cap, false); /* the virtual unit owns its screen's capture */
		return;
	}
	okvm_capture_free(cap);
}

/* -d N or -d PORTCHAIN: the unit's own capture node, followed across a re-plug. */
static int
open_unit_capture(struct cli *cli, struct okvm_capture **out)
{
	struct okvm_unit *u;
	struct okvm_unit_info shown;
	int rc = cli_unit_discovered(cli, &u, &shown);
	if (rc)
		return rc;
	rc = okvm_unit_open_capture(u, NULL, cli->video_mode);
	if (rc) {
		okvm_unit_free(u);
		if (rc == -EINVAL)
			return cli_usage("--video-mode: '%s' is not WxH or WxH@FPS",
					 cli->video_mode);
		return cli_fail("unit %s has no video capture node (is the uvcvideo driver "
				"loaded?); use --video /dev/videoN",
				shown.port_chain);
	}
	capture_unit = u;
	*out = okvm_unit_capture(u);
	return CLI_OK;
}

int
cli_open_capture(struct cli *cli, struct okvm_capture **out)
{
	const char *dev = cli->video;
	if (dev && !strncmp(dev, "frames:", 7))
		return open_frames(dev + 7, out);
	if (!dev && cli_is_emu(cli))
		return cli_emu_capture(cli, out);
	if (cli->device && !strncmp(cli->device, "frames:", 7))
		return open_frames(cli->device + 7, out);
	if (!dev && cli->device && !strncmp(cli->device, "/dev/video", 10))
		dev = cli->device;
	if (!dev && cli->device)
		return open_unit_capture(cli, out);
	if (cli->video_mode) {
		int w, h, fps;
		if (okvm_video_parse_mode(cli->video_mode, &w, &h, &fps) < 0)
			return cli_usage("--video-mode: '%s' is not WxH or WxH@FPS",
					 cli->video_mode);
	}
	*out = okvm_capture_new_v4l2(dev ? dev : DEFAULT_VIDEO, cli->video_mode);
	return CLI_OK;
}

struct okvm_frame *
cli_fresh_frame(struct okvm_capture *c, int timeout_ms)
{
	/* A screenshot shows the screen after it was asked for: frames captured earlier (the slot
	 * may hold one from before the last command took effect) are only a fallback. */
	struct okvm_frame *best = NULL;
	uint64_t asked = okvm_now_us();
	uint64_t seq = 0, deadline = asked + (uint64_t)timeout_ms * 1000;
	while (!cli_stop_signal) {
		uint64_t now = okvm_now_us();
		if (now >= deadline)
			break;
		int left = (int)((deadline - now + 999) / 1000);
		if (okvm_capture_wait(c, seq, left < 100 ? left : 100) < 0)
			continue;
		struct okvm_frame *f = okvm_capture_latest(c);
		if (!f)
			continue;
		seq = f->seq;
		okvm_frame_unref(best);
		best = f;
		if (!f->placeholder && f->ts_us >= asked)
			break;
	}
	return best;
}

static int
write_all(FILE *fp, const struct okvm_frame *f, bool png)
{
	if (png)
		return okvm_jpeg_to_png(f->data, f->size, fp);
	return fwrite(f->data, 1, f->size, fp) == f->size ? 0 : -EIO;
}

static bool
ends_with_png(const char *name)
{
	size_t n = strlen(name);
	return n >= 4 && !strcasecmp(name + n - 4, ".png");
}

static void
print_json(const char *name, const struct okvm_frame *f)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "file", name);
	cJSON_AddNumberToObject(o, "width", f->width);
	cJSON_AddNumberToObject(o, "height", f->height);
	cJSON_AddNumberToObject(o, "bytes", (double)f->size);
	cJSON_AddBoolToObject(o, "signal", !f->placeholder);
	char *s = cJSON_PrintUnformatted(o);
	puts(s);
	cJSON_free(s);
	cJSON_Delete(o);
}

static int
save(struct cli *cli, const struct okvm_frame *f, const char *name)
{
	char def[64];
	if (!name) {
		time_t t = time(NULL);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(def, sizeof(def), "okvm-%Y%m%d-%H%M%S.jpg", &tm);
		name = def;
	}
	bool png = ends_with_png(name), out_std = !strcmp(name, "-");
	FILE *fp = out_std ? stdout : fopen(name, "wb");
	if (!fp)
		return cli_fail("cannot write %s: %s", name, strerror(errno));
	int rc = write_all(fp, f, png);
	if ((out_std ? fflush(fp) : fclose(fp)) != 0 && rc == 0)
		rc = -EIO;
	if (rc < 0)
		return cli_fail("cannot write %s: %s", name, okvm_strerror(rc));
	if (out_std)
		return CLI_OK;
	if (cli->json)
		print_json(name, f);
	else
		printf("%s %dx%d%s\n", name, f->width, f->height,
		       f->placeholder ? " (no signal)" : "");
	return CLI_OK;
}

static int
explain_placeholder(struct okvm_capture *c, struct okvm_frame *f)
{
	struct okvm_capture_status st;
	okvm_capture_get_status(c, &st);
	okvm_frame_unref(f);
	if (!st.device)
		return cli_fail("no video device (is the unit plugged in? see `okvm list`); "
				"--allow-no-signal saves the placeholder anyway");
	return cli_fail("no video signal from the target (HDMI cable? target asleep?); "
			"--allow-no-signal saves the placeholder anyway");
}

enum { OPT_VIDEO = 300, OPT_VIDEO_MODE, OPT_ALLOW, OPT_TIMEOUT };

static const struct option shot_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "video", required_argument, NULL, OPT_VIDEO },
	{ "video-mode", required_argument, NULL, OPT_VIDEO_MODE },
	{ "allow-no-signal", no_argument, NULL, OPT_ALLOW },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ 0 },
};

int
cmd_screenshot(struct cli *cli, int argc, char **argv)
{
	const char *name = NULL;
	bool allow = false;
	int timeout_ms = 5000, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:", shot_opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'o': name = optarg; break;
		case OPT_VIDEO: cli->video = optarg; break;
		case OPT_VIDEO_MODE: cli->video_mode = optarg; break;
		case OPT_ALLOW: allow = true; break;
		case OPT_TIMEOUT:
			timeout_ms = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || timeout_ms < 1 || timeout_ms > 600000)
				return cli_usage("--timeout: '%s' is not a number of ms (1-600000)",
						 optarg);
			break;
		default: return cli_usage("screenshot: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("screenshot: unexpected argument '%s'", argv[optind]);
	struct okvm_capture *cap;
	int rc = cli_open_capture(cli, &cap);
	if (rc)
		return rc;
	okvm_capture_start(cap);
	okvm_capture_want(cap, true);
	struct okvm_frame *f = cli_fresh_frame(cap, timeout_ms);
	if (!f)
		rc = cli_stop_signal ? CLI_FAIL : cli_fail("no frame within %d ms", timeout_ms);
	else if (f->placeholder && !allow)
		rc = explain_placeholder(cap, f), f = NULL;
	else
		rc = save(cli, f, name);
	okvm_frame_unref(f);
	cli_close_capture(cli, cap);
	return rc;
}
