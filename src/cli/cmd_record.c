/*
 * DESIGN: `okvm record -o FILE.mkv`: the unit's video as the device sends it, into Matroska
 * (src/av/record.c; docs/recording.md). The capture keeps only its newest frame; this loop,
 * on the main thread, takes each new one (a jump in the frames' sequence numbers is counted as
 * missed) and hands its JPEG to the recorder with its capture time. Placeholders ("no signal")
 * are not recorded: a time without signal is a gap in the timestamps. The recording ends at
 * --seconds, at --max-size, on SIGINT/SIGTERM/SIGHUP, or when the video device goes away
 * (unplug); each way writes the trailer, so the file is complete. Nothing is decoded.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "av/record.h"
#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/video.h"

void
cmd_record_help(FILE *out)
{
	fputs("usage: okvm record -o FILE.mkv [--seconds N] [--timelapse N] [--max-size SIZE]\n"
	      "                   [--audio] [--pcm NAME]\n"
	      "  Record the target's screen: the device's MJPEG frames, not re-encoded, into a\n"
	      "  Matroska file with their capture timestamps. Ends at --seconds, at --max-size,\n"
	      "  on Ctrl-C/SIGTERM, or when the unit is unplugged; the file is complete each way.\n"
	      "  -o, --output FILE  the Matroska file to write (always Matroska, whatever its name)\n"
	      "  --seconds N        stop after N seconds (decimals allowed; default: until stopped)\n"
	      "  --timelapse N      keep one frame every N seconds (timestamps stay those of capture)\n"
	      "  --max-size SIZE    keep the file at or below SIZE bytes (suffix K, M or G: 1024s);\n"
	      "                     at least 64K\n"
	      "  --video DEV, --video-mode WxH[@FPS]  as for okvm screenshot\n"
	      "  --audio            an audio track too: the unit's sound, 48 kHz stereo PCM (the\n"
	      "                     virtual unit's tone with -d emu), on the same clock\n"
	      "  --pcm NAME         the audio track from this ALSA capture PCM (implies --audio)\n"
	      "  --timeout MS       wait this long for the first picture (default 5000)\n"
	      "  --json             the summary as JSON\n"
	      "  Prints FILE, the frames written and missed, the duration and how it ended.\n"
	      "  Exit status: 0 recorded, 1 no picture, an unplug or a write error (the file is\n"
	      "  still complete), 2 bad usage.\n",
	      out);
}

struct rec_args {
	const char *path;
	double seconds;   /* 0 = until stopped */
	double timelapse; /* 0 = every frame */
	uint64_t max_bytes;
	int timeout_ms;
	bool audio;      /* --audio or --pcm: an audio track */
	const char *pcm; /* --pcm NAME */
};

/* A number of seconds: > 0, at most a year. */
static bool
parse_seconds(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 366 * 86400.0)
		return false;
	*out = v;
	return true;
}

/* BYTES, or N with K, M or G (powers of 1024). */
static bool
parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return false;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	else if (*end == 'G' || *end == 'g')
		shift = 30, end++;
	if (*end || v > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

enum {
	OPT_SECONDS = 300,
	OPT_TIMELAPSE,
	OPT_MAX_SIZE,
	OPT_VIDEO,
	OPT_VIDEO_MODE,
	OPT_TIMEOUT,
	OPT_AUDIO,
	OPT_PCM,
};

static const struct option rec_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "seconds", required_argument, NULL, OPT_SECONDS },
	{ "timelapse", required_argument, NULL, OPT_TIMELAPSE },
	{ "max-size", required_argument, NULL, OPT_MAX_SIZE },
	{ "video", required_argument, NULL, OPT_VIDEO },
	{ "video-mode", required_argument, NULL, OPT_VIDEO_MODE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "audio", no_argument, NULL, OPT_AUDIO },
	{ "pcm", required_argument, NULL, OPT_PCM },
	{ 0 },
};

static int
parse_args(struct cli *cli, int argc, char **argv, struct rec_args *a)
{
	int c;
	long ms;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:", rec_opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'o': a->path = optarg; break;
		case OPT_SECONDS:
			if (!parse_seconds(optarg, &a->seconds))
				return cli_usage(
					"record: --seconds: '%s' is not a number of seconds "
					"above 0",
					optarg);
			break;
		case OPT_TIMELAPSE:
			if (!parse_seconds(optarg, &a->timelapse))
				return cli_usage("record: --timelapse: '%s' is not a number of "
						 "seconds above 0",
						 optarg);
			break;
		case OPT_MAX_SIZE:
			if (!parse_size(optarg, &a->max_bytes) || a->max_bytes < 65536)
				return cli_usage(
					"record: --max-size: '%s' is not a size of at least "
					"64K (bytes, or N with K, M or G)",
					optarg);
			break;
		case OPT_AUDIO: a->audio = true; break;
		case OPT_PCM: a->pcm = optarg, a->audio = true; break;
		case OPT_VIDEO: cli->video = optarg; break;
		case OPT_VIDEO_MODE: cli->video_mode = optarg; break;
		case OPT_TIMEOUT:
			errno = 0;
			ms = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || ms < 1 || ms > 600000)
				return cli_usage("record: --timeout: '%s' is not a number of ms "
						 "(1-600000)",
						 optarg);
			a->timeout_ms = (int)ms;
			break;
		case '?':
			if (optopt)
				return cli_usage("record: option '%s' needs a value",
						 argv[optind - 1]);
			return cli_usage("record: unknown option '%s' (see okvm record --help)",
					 argv[optind - 1]);
		default: return cli_usage("record: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("record: unexpected argument '%s'", argv[optind]);
	if (!a->path)
		return cli_usage("record: no output file (use -o FILE.mkv)");
	if (!strcmp(a->path, "-"))
		return cli_usage("record: -o -: Matroska needs a file it can seek in; name one");
	return CLI_OK;
}

enum rec_end { END_STOPPED, END_SECONDS, END_SIZE, END_UNPLUG, END_NO_PICTURE, END_WRITE };

struct rec_run {
	struct okvm_capture *cap;
	struct av_record *rec;
	const struct rec_args *a;
	uint64_t seq;      /* of the last frame seen */
	uint64_t missed;   /* frames the capture published that this loop never saw */
	uint64_t skipped;  /* frames left out on purpose (--timelapse) */
	uint64_t start_us; /* when recording began (--seconds counts from here) */
	uint64_t due_us;   /* capture time the next frame is due at (--timelapse) */
	int write_error;
	struct cli_audio audio; /* --audio */
	bool audio_on;
	int audio_error;
};

/* One new frame: keep it or not. Returns -1 to go on, or why the recording ends. */
static int
take(struct rec_run *r, struct okvm_frame *f)
{
	if (r->seq && f->seq > r->seq + 1 && !r->a->timelapse)
		r->missed += f->seq - r->seq - 1;
	r->seq = f->seq;
	struct av_record_stats st;
	av_record_get_stats(r->rec, &st);
	if (f->placeholder) {
		struct okvm_capture_status cs;
		okvm_capture_get_status(r->cap, &cs);
		if (!cs.device && st.frames)
			return END_UNPLUG;
		return -1;
	}
	if (r->a->seconds && f->ts_us >= r->start_us + (uint64_t)(r->a->seconds * 1e6))
		return END_SECONDS;
	/* --timelapse: frames are due at first + k * N, so the spacing does not drift by the
	 * frame interval at each step. */
	uint64_t step_us = (uint64_t)(r->a->timelapse * 1e6);
	if (r->a->timelapse && st.frames && f->ts_us < r->due_us) {
		r->skipped++;
		return -1;
	}
	int rc = av_record_video(r->rec, f->data, f->size, f->width, f->height, f->ts_us);
	if (rc == -EFBIG)
		return END_SIZE;
	if (rc) {
		r->write_error = rc;
		return END_WRITE;
	}
	if (!r->due_us)
		r->due_us = f->ts_us;
	while (step_us && r->due_us <= f->ts_us)
		r->due_us += step_us;
	return -1;
}

/* Hand the audio that is ready to the recorder (nothing is kept before the first frame). */
static int
drain_audio(struct rec_run *r)
{
	/* Blocks of 20 ms (Matroska stamps blocks in ms: smaller ones would share stamps), at
	 * most 200 ms a turn, so a source that is not paced (a file) cannot starve the video. */
	int16_t pcm[960 * 2];
	for (int turn = 0; turn < 10; turn++) {
		uint64_t ts;
		long n = cli_audio_read(&r->audio, pcm, 960, &ts, false);
		if (n < 0) {
			r->audio_error = (int)n;
			return END_WRITE;
		}
		if (n == 0)
			return -1;
		int rc = av_record_audio(r->rec, pcm, (size_t)n, ts);
		if (rc == -EFBIG)
			return END_SIZE;
		if (rc)
			return r->write_error = rc, END_WRITE;
	}
	return -1;
}

static enum rec_end
record_loop(struct rec_run *r)
{
	uint64_t first_deadline = okvm_now_us() + (uint64_t)r->a->timeout_ms * 1000;
	r->start_us = okvm_now_us();
	while (!cli_stop_signal) {
		uint64_t now = okvm_now_us();
		struct av_record_stats st;
		av_record_get_stats(r->rec, &st);
		if (!st.frames && now >= first_deadline)
			return END_NO_PICTURE;
		if (r->a->seconds && now >= r->start_us + (uint64_t)(r->a->seconds * 1e6))
			return END_SECONDS;
		if (r->audio_on) {
			int end = drain_audio(r);
			if (end >= 0)
				return (enum rec_end)end;
		}
		if (okvm_capture_wait(r->cap, r->seq, r->audio_on ? 20 : 100) < 0)
			continue;
		struct okvm_frame *f = okvm_capture_latest(r->cap);
		if (!f)
			continue;
		int end = f->seq > r->seq ? take(r, f) : -1;
		okvm_frame_unref(f);
		if (end >= 0)
			return (enum rec_end)end;
	}
	return END_STOPPED;
}

static const char *
end_name(enum rec_end e)
{
	switch (e) {
	case END_STOPPED: return "stopped";
	case END_SECONDS: return "seconds";
	case END_SIZE: return "max-size";
	case END_UNPLUG: return "unplugged";
	case END_NO_PICTURE: return "no picture";
	case END_WRITE: return "write error";
	}
	return "?";
}

static void
print_summary(struct cli *cli, const struct rec_run *r, const struct av_record_stats *st,
	      enum rec_end end)
{
	double dur = st->frames ? (double)(st->last_us - st->first_us) / 1e6 : 0;
	if (!cli->json) {
		printf("%s: %llu frames, %.3f s, %llu missed%s, %s\n", r->a->path,
		       (unsigned long long)st->frames, dur, (unsigned long long)r->missed,
		       r->a->timelapse ? " (timelapse)" : "", end_name(end));
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "file", r->a->path);
	cJSON_AddNumberToObject(o, "frames", (double)st->frames);
	cJSON_AddNumberToObject(o, "seconds", dur);
	cJSON_AddNumberToObject(o, "missed", (double)r->missed);
	cJSON_AddNumberToObject(o, "skipped", (double)r->skipped);
	cJSON_AddNumberToObject(o, "audio_seconds", (double)st->audio_frames / 48000);
	cJSON_AddStringToObject(o, "end", end_name(end));
	char *s = cJSON_PrintUnformatted(o);
	puts(s);
	cJSON_free(s);
	cJSON_Delete(o);
}

/* The exit status and the one line for how it ended (the file is closed by now). */
static int
report(struct cli *cli, struct rec_run *r, const struct av_record_stats *st, enum rec_end end,
       int close_rc)
{
	if (end == END_NO_PICTURE || (close_rc == -ENODATA && end != END_STOPPED)) {
		struct okvm_capture_status cs;
		okvm_capture_get_status(r->cap, &cs);
		if (!cs.device)
			return cli_fail("record: no video device (is the unit plugged in? see "
					"`okvm list`); nothing recorded");
		if (end == END_SIZE)
			return cli_fail("record: --max-size is too small for one frame; nothing "
					"recorded");
		return cli_fail("record: no video signal from the target within %d ms; nothing "
				"recorded",
				r->a->timeout_ms);
	}
	if (close_rc == -ENODATA)
		return cli_fail("record: stopped before the first frame; nothing recorded");
	if (r->audio_error)
		return cli_fail("record: the sound stopped (%s); %s is complete up to there",
				okvm_strerror(r->audio_error), r->a->path);
	if (r->write_error || close_rc)
		return cli_fail("record: cannot write %s: %s (%llu frames are in it)", r->a->path,
				okvm_strerror(r->write_error ? r->write_error : close_rc),
				(unsigned long long)st->frames);
	print_summary(cli, r, st, end);
	if (end == END_UNPLUG)
		return cli_fail("record: the video device went away (unplugged?); %s is complete "
				"up to there",
				r->a->path);
	return CLI_OK;
}

int
cmd_record(struct cli *cli, int argc, char **argv)
{
	struct rec_args a = { .timeout_ms = 5000 };
	int rc = parse_args(cli, argc, argv, &a);
	if (rc)
		return rc;
	struct rec_run r = { .a = &a };
	rc = cli_open_capture(cli, &r.cap);
	if (rc)
		return rc;
	if (a.audio) {
		rc = cli_audio_open(cli, a.pcm, &r.audio);
		if (rc) {
			cli_close_capture(cli, r.cap);
			return rc;
		}
		r.audio_on = true;
	}
	struct av_record_config cfg = { .path = a.path, .max_bytes = a.max_bytes };
	if (a.audio)
		cfg.audio_rate = 48000, cfg.audio_channels = 2;
	rc = av_record_open(&cfg, &r.rec);
	if (rc) {
		cli_audio_close(&r.audio);
		cli_close_capture(cli, r.cap);
		if (rc == -ELIBACC)
			return cli_fail("record: %s", av_record_load_error());
		return cli_fail("record: cannot create %s: %s", a.path, okvm_strerror(rc));
	}
	okvm_capture_start(r.cap);
	okvm_capture_want(r.cap, true);
	enum rec_end end = record_loop(&r);
	struct av_record_stats st;
	av_record_get_stats(r.rec, &st);
	int close_rc = av_record_close(r.rec);
	cli_audio_close(&r.audio);
	rc = report(cli, &r, &st, end, close_rc);
	cli_close_capture(cli, r.cap);
	return rc;
}
