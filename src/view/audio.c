/*
 * DESIGN: okvm view's sound (docs/viewer.md). The unit's sound (the caller's source: the ALSA
 * capture of src/av/audio.c, or the virtual unit's, src/emu/audio.c) is read 10 ms at a time
 * by a thread of ours ("okvm-view-audio"; the read blocks, paced by the card or the clock) into
 * a fixed ring of 10 ms chunks; SDL's audio callback (SDL's own thread) takes from the ring's
 * oldest chunk and plays silence when it is empty. The ring never grows: when a chunk comes
 * in over the latency target the oldest ones go, so a player that falls behind (the device
 * clock slower than the card's, a stall) catches up instead of drifting late. One mutex
 * guards the ring; the callback holds it for a copy of at most a few chunks.
 *
 * A recording (host+R, record.c) gets a copy of each chunk as it comes in, under the lock.
 *
 * Latency: each chunk keeps its capture time; when the callback starts playing a chunk it
 * notes now + SDL's device buffer (the samples it was asked for) - capture time, the time from
 * the card to the speaker as far as SDL tells; OKVM_VIEW_AUDIO_TRACE=FILE writes those figures
 * at the end (bench/view.py).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>

#include "lib/xalloc.h"
#include "okvm/log.h"
#include "okvm/video.h"
#include "view/view.h"

#define RATE 48000
#define CHANNELS 2
#define CHUNK (RATE / 100) /* 10 ms */
#define SLOTS 8            /* the ring: 80 ms at most */
#define TARGET 4           /* chunks waiting at most: 40 ms, the latency target */
#define DEVICE_SAMPLES 480 /* SDL's buffer: 10 ms */
#define TRACE_MAX 6000     /* a minute of chunks */

struct view_audio {
	struct view_audio_source src;
	SDL_AudioDeviceID dev;
	int device_frames; /* SDL's buffer as obtained */
	pthread_t thread;
	bool running;
	atomic_bool stop;
	pthread_mutex_t lock;
	/* the ring (lock) */
	int16_t pcm[SLOTS][CHUNK * CHANNELS];
	size_t frames[SLOTS];
	uint64_t ts_us[SLOTS];
	unsigned head, count; /* oldest slot, chunks held */
	size_t pos;           /* frames of the oldest chunk already played */
	uint64_t dropped, underruns;
	/* latency figures (lock) */
	uint32_t *lat_us;
	size_t lat_n;
	FILE *trace;
	struct view_rec *rec; /* a recording that gets each chunk too (lock) */
};

static void
on_play(void *ud, Uint8 *stream, int len)
{
	struct view_audio *a = ud;
	int16_t *out = (int16_t *)stream;
	size_t want = (size_t)len / (CHANNELS * sizeof(int16_t));
	uint64_t now = okvm_now_us();
	pthread_mutex_lock(&a->lock);
	bool short_ = false;
	while (want) {
		if (!a->count) {
			short_ = true;
			break;
		}
		unsigned s = a->head;
		if (a->pos == 0 && a->lat_us && a->lat_n < TRACE_MAX) {
			uint64_t at = now + (uint64_t)a->device_frames * 1000000 / RATE;
			a->lat_us[a->lat_n++] = at > a->ts_us[s] ? (uint32_t)(at - a->ts_us[s]) : 0;
		}
		size_t n = a->frames[s] - a->pos;
		if (n > want)
			n = want;
		memcpy(out, a->pcm[s] + a->pos * CHANNELS, n * CHANNELS * sizeof(int16_t));
		out += n * CHANNELS;
		want -= n;
		a->pos += n;
		if (a->pos == a->frames[s]) {
			a->head = (a->head + 1) % SLOTS;
			a->count--;
			a->pos = 0;
		}
	}
	if (short_)
		a->underruns++;
	pthread_mutex_unlock(&a->lock);
	memset(out, 0, want * CHANNELS * sizeof(int16_t)); /* silence where nothing came */
}

static void *
reader_main(void *ud)
{
	struct view_audio *a = ud;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* the main thread takes SIGINT/SIGTERM */
	pthread_setname_np(pthread_self(), "okvm-view-audio");
	int16_t buf[CHUNK * CHANNELS];
	while (!atomic_load(&a->stop)) {
		uint64_t ts = 0;
		long n = a->src.read(a->src.ud, buf, CHUNK, &ts);
		if (n == 0)
			continue;
		if (n < 0) {
			okvm_log(OKVM_LOG_WARN, "view: sound: %s; the picture goes on without it",
				 n == -ENODEV ? "the sound card went away" : strerror((int)-n));
			break;
		}
		pthread_mutex_lock(&a->lock);
		while (a->count >= TARGET) { /* over the target: the oldest goes */
			a->head = (a->head + 1) % SLOTS;
			a->count--;
			a->pos = 0;
			a->dropped++;
		}
		unsigned s = (a->head + a->count) % SLOTS;
		memcpy(a->pcm[s], buf, (size_t)n * CHANNELS * sizeof(int16_t));
		a->frames[s] = (size_t)n;
		a->ts_us[s] = ts;
		a->count++;
		if (a->rec) /* a copy into the recording's ring; the disk is its thread's */
			view_rec_audio(a->rec, buf, (size_t)n, ts);
		pthread_mutex_unlock(&a->lock);
	}
	return NULL;
}

struct view_audio *
view_audio_start(const struct view_audio_source *src)
{
	if (SDL_InitSubSystem(SDL_INIT_AUDIO)) {
		okvm_log(OKVM_LOG_WARN,
			 "view: no sound output (%s); the picture goes on without it",
			 SDL_GetError());
		return NULL;
	}
	struct view_audio *a = xcalloc(1, sizeof(*a));
	a->src = *src;
	pthread_mutex_init(&a->lock, NULL);
	const char *trace = getenv("OKVM_VIEW_AUDIO_TRACE");
	if (trace && *trace && (a->trace = fopen(trace, "w")))
		a->lat_us = xcalloc(TRACE_MAX, sizeof(*a->lat_us));
	SDL_AudioSpec want = { .freq = RATE,
			       .format = AUDIO_S16LSB,
			       .channels = CHANNELS,
			       .samples = DEVICE_SAMPLES,
			       .callback = on_play,
			       .userdata = a },
		      got;
	a->dev = SDL_OpenAudioDevice(NULL, 0, &want, &got, 0); /* SDL converts if it must */
	if (!a->dev) {
		okvm_log(OKVM_LOG_WARN,
			 "view: no sound output (%s); the picture goes on without it",
			 SDL_GetError());
		view_audio_stop(a);
		return NULL;
	}
	a->device_frames = got.samples;
	if (pthread_create(&a->thread, NULL, reader_main, a) != 0) {
		view_audio_stop(a);
		return NULL;
	}
	a->running = true;
	okvm_log(OKVM_LOG_INFO, "view: sound on %s, %d Hz, %d-frame buffer",
		 SDL_GetCurrentAudioDriver(), got.freq, got.samples);
	SDL_PauseAudioDevice(a->dev, 0);
	return a;
}

void
view_audio_set_rec(struct view_audio *a, struct view_rec *rec)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->rec = rec;
	pthread_mutex_unlock(&a->lock);
}

void
view_audio_stop(struct view_audio *a)
{
	if (!a)
		return;
	if (a->dev)
		SDL_PauseAudioDevice(a->dev, 1);
	if (a->running) {
		atomic_store(&a->stop, true);
		pthread_join(a->thread, NULL); /* a read ends within its 10 ms */
	}
	if (a->dev)
		SDL_CloseAudioDevice(a->dev);
	if (a->trace) {
		for (size_t i = 0; i < a->lat_n; i++)
			fprintf(a->trace, "%u\n", a->lat_us[i]);
		fprintf(a->trace, "# dropped %llu underruns %llu\n", (unsigned long long)a->dropped,
			(unsigned long long)a->underruns);
		fclose(a->trace);
	}
	free(a->lat_us);
	pthread_mutex_destroy(&a->lock);
	free(a);
	SDL_QuitSubSystem(SDL_INIT_AUDIO);
}
