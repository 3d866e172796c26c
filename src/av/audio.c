/*
 * DESIGN: audio from the unit (docs/audio.md). The MS2109 is also a USB Audio Class device:
 * ALSA names it as a card (discovery finds which, okvm_unit_info.alsa_card), and alsa-lib reads
 * it as any capture PCM, so the same code reads the real card, a plug PCM, or any PCM of an
 * ALSA configuration (the tests use the `file` plugin's infile). Reads block; the caller's
 * thread owns the PCM. The WAV writer is the RIFF header (44 bytes, sizes patched at the end)
 * and the samples as they come.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <alsa/asoundlib.h>

#include "av/audio.h"
#include "okvm/video.h"
#include "lib/xalloc.h"

struct av_audio {
	snd_pcm_t *pcm;
	int rate, channels;
	unsigned overruns;
};

static int
set_params(snd_pcm_t *pcm, int rate, int channels, const char **err)
{
	snd_pcm_hw_params_t *hw;
	snd_pcm_hw_params_alloca(&hw);
	unsigned r = (unsigned)rate;
	snd_pcm_uframes_t period = (snd_pcm_uframes_t)rate / 100; /* 10 ms */
	unsigned buffer_us = 200000;
	int rc;
	if ((rc = snd_pcm_hw_params_any(pcm, hw)) < 0)
		return *err = "hw_params_any", rc;
	if ((rc = snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED)) < 0)
		return *err = "interleaved access", rc;
	if ((rc = snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16_LE)) < 0)
		return *err = "format S16_LE", rc;
	if ((rc = snd_pcm_hw_params_set_channels(pcm, hw, (unsigned)channels)) < 0)
		return *err = "channels", rc;
	if ((rc = snd_pcm_hw_params_set_rate_near(pcm, hw, &r, NULL)) < 0 || r != (unsigned)rate)
		return *err = "rate", rc < 0 ? rc : -EINVAL;
	snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, NULL);
	snd_pcm_hw_params_set_buffer_time_near(pcm, hw, &buffer_us, NULL);
	if ((rc = snd_pcm_hw_params(pcm, hw)) < 0)
		return *err = "hw_params", rc;
	return 0;
}

/* alsa-lib prints its own errors on stderr ("ALSA lib pcm.c:...: Unknown PCM x"); the caller
 * says what failed in one line of its own. */
static void
alsa_quiet(const char *file, int line, const char *fn, int err, const char *fmt, ...)
{
}

int
av_audio_open(const char *name, int rate, int channels, struct av_audio **out, const char **err)
{
	snd_pcm_t *pcm;
	snd_lib_error_set_handler(alsa_quiet);
	*err = "open";
	int rc = snd_pcm_open(&pcm, name, SND_PCM_STREAM_CAPTURE, 0);
	if (rc < 0)
		return rc;
	rc = set_params(pcm, rate, channels, err);
	if (rc == 0 && (rc = snd_pcm_start(pcm)) < 0)
		*err = "start";
	if (rc < 0) {
		snd_pcm_close(pcm);
		return rc;
	}
	struct av_audio *a = xcalloc(1, sizeof(*a));
	a->pcm = pcm;
	a->rate = rate;
	a->channels = channels;
	*out = a;
	return 0;
}

long
av_audio_read(struct av_audio *a, int16_t *pcm, size_t frames, uint64_t *ts_us)
{
	for (int tries = 0; tries < 3; tries++) {
		snd_pcm_sframes_t n = snd_pcm_readi(a->pcm, pcm, frames);
		if (n > 0) {
			snd_pcm_sframes_t delay = 0;
			if (snd_pcm_delay(a->pcm, &delay) < 0 || delay < 0)
				delay = 0;
			uint64_t back = (uint64_t)(n + delay) * 1000000 / (uint64_t)a->rate;
			uint64_t now = okvm_now_us();
			*ts_us = now > back ? now - back : 0;
			return (long)n;
		}
		if (n == 0 || n == -EAGAIN)
			continue;
		if (n == -ENODEV)
			return -ENODEV;
		if (n == -EPIPE)
			a->overruns++;
		if (snd_pcm_recover(a->pcm, (int)n, 1) < 0)
			return n == -ESTRPIPE || n == -EPIPE ? -EIO : (long)n;
		snd_pcm_start(a->pcm);
	}
	return -EIO;
}

long
av_audio_avail(struct av_audio *a)
{
	snd_pcm_sframes_t n = snd_pcm_avail_update(a->pcm);
	if (n == -EPIPE) {
		a->overruns++;
		if (snd_pcm_recover(a->pcm, (int)n, 1) < 0)
			return -EIO;
		snd_pcm_start(a->pcm);
		n = snd_pcm_avail_update(a->pcm);
	}
	return n < 0 ? (long)n : (long)n;
}

unsigned
av_audio_overruns(const struct av_audio *a)
{
	return a->overruns;
}

void
av_audio_close(struct av_audio *a)
{
	if (!a)
		return;
	snd_pcm_close(a->pcm);
	free(a);
}

struct av_wav {
	FILE *fp;
	int rate, channels;
	uint64_t bytes;
};

static void
put_le(uint8_t *p, uint32_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The RIFF/WAVE header for PCM S16_LE (WAVE format tag 1). */
static void
wav_header(uint8_t h[44], int rate, int channels, uint32_t data_bytes)
{
	memcpy(h, "RIFF", 4);
	put_le(h + 4, 36 + data_bytes, 4);
	memcpy(h + 8, "WAVEfmt ", 8);
	put_le(h + 16, 16, 4);
	put_le(h + 20, 1, 2);
	put_le(h + 22, (uint32_t)channels, 2);
	put_le(h + 24, (uint32_t)rate, 4);
	put_le(h + 28, (uint32_t)(rate * channels * 2), 4);
	put_le(h + 32, (uint32_t)(channels * 2), 2);
	put_le(h + 34, 16, 2);
	memcpy(h + 36, "data", 4);
	put_le(h + 40, data_bytes, 4);
}

int
av_wav_open(const char *path, int rate, int channels, struct av_wav **out)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return -errno;
	uint8_t h[44];
	wav_header(h, rate, channels, 0);
	if (fwrite(h, 1, sizeof(h), fp) != sizeof(h)) {
		fclose(fp);
		return -EIO;
	}
	struct av_wav *w = xcalloc(1, sizeof(*w));
	w->fp = fp;
	w->rate = rate;
	w->channels = channels;
	*out = w;
	return 0;
}

int
av_wav_write(struct av_wav *w, const int16_t *pcm, size_t frames)
{
	size_t n = frames * (size_t)w->channels;
	if (w->bytes + n * 2 > UINT32_MAX - 36)
		return -EFBIG;             /* a RIFF file ends at 4 GiB */
	if (fwrite(pcm, 2, n, w->fp) != n) /* S16_LE on a little-endian host, as captured */
		return -EIO;
	w->bytes += n * 2;
	return 0;
}

int
av_wav_close(struct av_wav *w)
{
	if (!w)
		return 0;
	uint8_t h[44];
	int rc = 0;
	wav_header(h, w->rate, w->channels, (uint32_t)w->bytes);
	if (fseek(w->fp, 0, SEEK_SET) || fwrite(h, 1, sizeof(h), w->fp) != sizeof(h))
		rc = -EIO;
	if (fclose(w->fp) != 0)
		rc = -EIO;
	free(w);
	return rc;
}
