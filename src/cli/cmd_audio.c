/*
 * DESIGN: `okvm audio -o FILE.wav [--seconds N] [--pcm NAME]`: the target's sound, 48 kHz stereo
 * S16_LE as the MS2109's UAC interface gives it, into a WAV file for scripts (docs/audio.md).
 * The source: --pcm NAME (any ALSA capture PCM), else the virtual unit's sound for -d emu
 * (src/emu/audio.c, paced here by the clock, 10 ms at a time), else the ALSA card discovery
 * found for the unit. Main thread; ends at --seconds or on SIGINT/SIGTERM with the header's
 * sizes written, so the file is complete each way.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "av/audio.h"
#include "cli/cli.h"
#include "emu/audio.h"
#include "okvm/discover.h"
#include "okvm/error.h"
#include "okvm/unit.h"
#include "okvm/video.h"

#define RATE 48000
#define CHANNELS 2
#define CHUNK (RATE / 100) /* 10 ms */

void
cmd_audio_help(FILE *out)
{
	fputs("usage: okvm audio -o FILE.wav [--seconds N] [--pcm NAME] [--json]\n"
	      "  Capture the target's sound (48 kHz stereo 16-bit, as the unit's HDMI audio\n"
	      "  arrives) into a WAV file. Ends at --seconds or on Ctrl-C/SIGTERM; the file is\n"
	      "  complete each way.\n"
	      "  -o, --output FILE  the WAV file to write\n"
	      "  --seconds N        stop after N seconds (decimals allowed; default: until stopped)\n"
	      "  --pcm NAME         an ALSA capture PCM (hw:1, plughw:1, a name from ~/.asoundrc);\n"
	      "                     default: the unit's sound card (okvm list), or the virtual\n"
	      "                     unit's sound with -d emu (a quiet 440 Hz tone, 1 kHz per key)\n"
	      "  --json             the summary as JSON\n"
	      "  Exit status: 0 captured, 1 no sound device or a read/write error, 2 bad usage.\n",
	      out);
}

struct audio_args {
	const char *path, *pcm;
	double seconds;
};

enum { OPT_SECONDS = 300, OPT_PCM };

static const struct option audio_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "seconds", required_argument, NULL, OPT_SECONDS },
	{ "pcm", required_argument, NULL, OPT_PCM },
	{ 0 },
};

static int
parse_args(int argc, char **argv, struct audio_args *a)
{
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:", audio_opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'o': a->path = optarg; break;
		case OPT_PCM: a->pcm = optarg; break;
		case OPT_SECONDS:
			errno = 0;
			a->seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(a->seconds) ||
			    a->seconds <= 0 || a->seconds > 86400 * 7)
				return cli_usage(
					"audio: --seconds: '%s' is not a number of seconds "
					"above 0",
					optarg);
			break;
		case '?':
			if (optopt)
				return cli_usage("audio: option '%s' needs a value",
						 argv[optind - 1]);
			return cli_usage("audio: unknown option '%s' (see okvm audio --help)",
					 argv[optind - 1]);
		default: return cli_usage("audio: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("audio: unexpected argument '%s'", argv[optind]);
	if (!a->path)
		return cli_usage("audio: no output file (use -o FILE.wav)");
	return CLI_OK;
}

/* The discovered unit's card as a plug PCM (plughw:N), so the rate and format are ALSA's
 * business if the card offers others too. */
static int
unit_pcm(struct cli *cli, char *buf, size_t n)
{
	struct okvm_unit *u;
	struct okvm_unit_info shown;
	int rc = cli_unit_discovered(cli, &u, &shown);
	if (rc)
		return rc;
	okvm_unit_free(u);
	if (!shown.alsa_card[0])
		return cli_fail("audio: unit %s has no sound card (is snd-usb-audio loaded?); use "
				"--pcm NAME",
				shown.port_chain);
	const char *card = shown.alsa_card;
	if (!strncmp(card, "hw:", 3))
		snprintf(buf, n, "plughw:%.32s", card + 3);
	else
		snprintf(buf, n, "%.32s", card);
	return CLI_OK;
}

/* The virtual unit's sound is made on demand: as many frames as the clock says are due. */
static long
emu_read(struct cli_audio *s, int16_t *pcm, size_t max, uint64_t *ts_us, bool wait)
{
	uint64_t now = okvm_now_us();
	if (!s->start_us)
		s->start_us = now;
	uint64_t due = (now - s->start_us) * RATE / 1000000;
	if (wait && due < s->made + max) {
		uint64_t at = s->start_us + (s->made + max) * 1000000 / RATE;
		struct timespec d = { 0, (long)(at - now) * 1000 };
		if (nanosleep(&d, NULL) < 0)
			return 0;
		due = s->made + max;
	}
	if (!wait && due < s->made + max)
		return 0;
	size_t n = max;
	*ts_us = s->start_us + s->made * 1000000 / RATE;
	emu_audio_read(s->emu, pcm, n);
	s->made += n;
	return (long)n;
}

long
cli_audio_read(struct cli_audio *s, int16_t *pcm, size_t max, uint64_t *ts_us, bool wait)
{
	if (!s->alsa)
		return emu_read(s, pcm, max, ts_us, wait);
	if (!wait) {
		long avail = av_audio_avail(s->alsa);
		if (avail < 0)
			return avail == -EAGAIN ? 0 : avail;
		if ((size_t)avail < max)
			return 0;
	}
	long n = av_audio_read(s->alsa, pcm, max, ts_us);
	return n == -EINTR ? 0 : n;
}

int
cli_audio_open(struct cli *cli, const char *pcm, struct cli_audio *s)
{
	char name[64];
	*s = (struct cli_audio){ 0 };
	if (!pcm && cli_is_emu(cli))
		return cli_emu_audio(cli, &s->emu);
	if (!pcm) {
		int rc = unit_pcm(cli, name, sizeof(name));
		if (rc)
			return rc;
		pcm = name;
	}
	const char *step;
	int rc = av_audio_open(pcm, RATE, CHANNELS, &s->alsa, &step);
	if (rc < 0)
		return cli_fail("audio: cannot capture from '%s' (%s: %s)", pcm, step,
				okvm_strerror(rc));
	return CLI_OK;
}

unsigned
cli_audio_close(struct cli_audio *s)
{
	unsigned overruns = s->alsa ? av_audio_overruns(s->alsa) : 0;
	av_audio_close(s->alsa);
	s->alsa = NULL;
	return overruns;
}

static void
print_summary(struct cli *cli, const struct audio_args *a, uint64_t frames, unsigned overruns)
{
	double secs = (double)frames / RATE;
	if (!cli->json) {
		printf("%s: %llu frames, %.3f s, %d Hz, %d channels, %u overruns\n", a->path,
		       (unsigned long long)frames, secs, RATE, CHANNELS, overruns);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "file", a->path);
	cJSON_AddNumberToObject(o, "frames", (double)frames);
	cJSON_AddNumberToObject(o, "seconds", secs);
	cJSON_AddNumberToObject(o, "rate", RATE);
	cJSON_AddNumberToObject(o, "channels", CHANNELS);
	cJSON_AddNumberToObject(o, "overruns", overruns);
	char *s = cJSON_PrintUnformatted(o);
	puts(s);
	cJSON_free(s);
	cJSON_Delete(o);
}

int
cmd_audio(struct cli *cli, int argc, char **argv)
{
	struct audio_args a = { 0 };
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	struct cli_audio s;
	rc = cli_audio_open(cli, a.pcm, &s);
	if (rc)
		return rc;
	struct av_wav *w;
	int err = av_wav_open(a.path, RATE, CHANNELS, &w);
	if (err) {
		cli_audio_close(&s);
		return cli_fail("audio: cannot create %s: %s", a.path, okvm_strerror(err));
	}
	uint64_t want = a.seconds ? (uint64_t)llround(a.seconds * RATE) : UINT64_MAX, got = 0;
	int16_t pcm[CHUNK * CHANNELS];
	while (!cli_stop_signal && got < want && !err) {
		size_t n = want - got < CHUNK ? (size_t)(want - got) : CHUNK;
		uint64_t ts;
		long r = cli_audio_read(&s, pcm, n, &ts, true);
		if (r < 0)
			err = (int)r;
		else if (r > 0 && !(err = av_wav_write(w, pcm, (size_t)r)))
			got += (uint64_t)r;
	}
	unsigned overruns = cli_audio_close(&s);
	int cerr = av_wav_close(w);
	if (err == -ENODEV)
		return cli_fail("audio: the sound device went away (unplugged?); %s holds %.3f s",
				a.path, (double)got / RATE);
	if (err || cerr)
		return cli_fail("audio: %s: %s", a.path, okvm_strerror(err ? err : cerr));
	print_summary(cli, &a, got, overruns);
	return CLI_OK;
}
