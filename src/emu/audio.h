/*
 * The virtual unit's sound (docs/audio.md): what its UAC interface would capture from the
 * target. A quiet test tone (440 Hz, -40 dBFS) all the time, and a short louder tone (1 kHz,
 * -12 dBFS, 100 ms) from each key the virtual target receives, 48 kHz stereo S16_LE.
 */
#ifndef OKVM_EMU_AUDIO_H
#define OKVM_EMU_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "emu/emu.h"

#define EMU_AUDIO_RATE 48000
#define EMU_AUDIO_CHANNELS 2
#define EMU_AUDIO_TEST_HZ 440
#define EMU_AUDIO_KEY_HZ 1000
#define EMU_AUDIO_KEY_MS 100

struct emu_audio;

/** Aborts on OOM. */
struct emu_audio *emu_audio_new(void);
/** An emu_listener (emu_add_listener): each key press starts a key tone. Emu thread. */
void emu_audio_listener(const struct emu_event *ev, void *ud);
/** The next frames of the sound, interleaved (frames * 2 samples). One reader thread; the
 *  caller paces it (the source has no clock of its own). */
void emu_audio_read(struct emu_audio *a, int16_t *pcm, size_t frames);
/**
 * Write the sound in real time, raw S16_LE 48 kHz stereo, to path (a FIFO for an ALSA `file`
 * PCM's infile, or a file) from a thread of its own ("okvm-emu-audio"), as a sound card would
 * deliver it: okvm emulate --audio-out. A FIFO is opened once a reader is there; a reader that
 * leaves ends the writing. @return 0 or -errno (path cannot be made or opened).
 */
int emu_audio_start_writer(struct emu_audio *a, const char *path);
/** Stop and join the writer (if any), then free. NULL ok. */
void emu_audio_free(struct emu_audio *a);

#endif
