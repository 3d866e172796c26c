/*
 * DESIGN: the virtual unit's sound source. A real Mini-KVM captures the target's HDMI audio
 * through the MS2109's UAC interface (48 kHz stereo S16_LE); the virtual target has no sound of
 * its own, so this makes one that tests can recognise: a quiet 440 Hz test tone, and a 1 kHz
 * tone for 100 ms from each key press the target receives (its listener runs on the emu
 * thread and only bumps an atomic counter). The reader pulls samples as fast as it likes; the
 * pacing is the reader's (okvm audio paces it by the clock), so this file has no thread.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "emu/audio.h"
#include "lib/xalloc.h"

#define TEST_AMPLITUDE 328.0 /* -40 dBFS */
#define KEY_AMPLITUDE 8231.0 /* -12 dBFS */

struct emu_audio {
	atomic_uint keys;   /* key presses so far (emu thread) */
	unsigned keys_seen; /* reader: presses turned into tones */
	uint64_t t;         /* reader: frames made */
	uint64_t key_left;  /* reader: frames of key tone still to play */
};

struct emu_audio *
emu_audio_new(void)
{
	return xcalloc(1, sizeof(struct emu_audio));
}

void
emu_audio_listener(const struct emu_event *ev, void *ud)
{
	struct emu_audio *a = ud;
	if (ev->type == EMU_EV_KEY && ev->down)
		atomic_fetch_add(&a->keys, 1);
}

void
emu_audio_read(struct emu_audio *a, int16_t *pcm, size_t frames)
{
	unsigned keys = atomic_load(&a->keys);
	if (keys != a->keys_seen) {
		a->keys_seen = keys;
		a->key_left = (uint64_t)EMU_AUDIO_RATE * EMU_AUDIO_KEY_MS / 1000;
	}
	for (size_t i = 0; i < frames; i++, a->t++) {
		double s = TEST_AMPLITUDE *
			   sin(2 * M_PI * EMU_AUDIO_TEST_HZ * (double)a->t / EMU_AUDIO_RATE);
		if (a->key_left) {
			s += KEY_AMPLITUDE *
			     sin(2 * M_PI * EMU_AUDIO_KEY_HZ * (double)a->t / EMU_AUDIO_RATE);
			a->key_left--;
		}
		pcm[2 * i] = pcm[2 * i + 1] = (int16_t)lrint(s);
	}
}

void
emu_audio_free(struct emu_audio *a)
{
	free(a);
}
