/*
 * Audio capture from an ALSA PCM (the unit's UAC interface: 48 kHz stereo S16_LE as the MS2109
 * gives it) with alsa-lib, and a WAV file writer. One owner thread each.
 */
#ifndef OKVM_AV_AUDIO_H
#define OKVM_AV_AUDIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct av_audio;

/**
 * Open a capture PCM ("hw:1", "plughw:1", or any name of the ALSA configuration) for
 * interleaved S16_LE at rate and channels.
 * @return 0 (*out set), or alsa-lib's -errno (-ENOENT no such PCM, -EBUSY in use, -EINVAL the
 *         device does not take that format or rate). *err names the step that failed.
 */
int av_audio_open(const char *pcm, int rate, int channels, struct av_audio **out, const char **err);
/**
 * Read up to frames (blocking). An overrun is recovered (the samples lost are counted).
 * @return frames read (> 0), or -errno (-ENODEV: unplugged, -EIO). *ts_us = the capture time
 *         of the first frame read (CLOCK_MONOTONIC, the PCM's delay taken off).
 */
long av_audio_read(struct av_audio *a, int16_t *pcm, size_t frames, uint64_t *ts_us);
/** Frames ready to read without blocking (an overrun is recovered first), or -errno. */
long av_audio_avail(struct av_audio *a);
/** Overruns seen so far. */
unsigned av_audio_overruns(const struct av_audio *a);
void av_audio_close(struct av_audio *a);

/** A WAV file of interleaved S16_LE: the header's sizes are filled in at wav_close. */
struct av_wav;
/** @return 0 or -errno (the file cannot be created). */
int av_wav_open(const char *path, int rate, int channels, struct av_wav **out);
/** @return 0 or -EIO. */
int av_wav_write(struct av_wav *w, const int16_t *pcm, size_t frames);
/** Fill in the sizes and close. @return 0 or -EIO. Frees w. */
int av_wav_close(struct av_wav *w);

#endif
