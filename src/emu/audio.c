/*
 * DESIGN: the virtual unit's sound source. A real Mini-KVM captures the target's HDMI audio
 * through the MS2109's UAC interface (48 kHz stereo S16_LE); the virtual target has no sound of
 * its own, so this makes one that tests can recognise: a quiet 440 Hz test tone, and a 1 kHz
 * tone for 100 ms from each key press the target receives (its listener runs on the emu
 * thread and only bumps an atomic counter). The reader pulls samples as fast as it likes; the
 * pacing is the reader's (okvm audio paces it by the clock), so this file has no thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emu/audio.h"
#include "lib/xalloc.h"
#include "okvm/video.h"

#define TEST_AMPLITUDE 328.0 /* -40 dBFS */
#define KEY_AMPLITUDE 8231.0 /* -12 dBFS */

struct emu_audio {
	atomic_uint keys;   /* key presses so far (emu thread) */
	unsigned keys_seen; /* reader: presses turned into tones */
	uint64_t t;         /* reader: frames made */
	uint64_t key_left;  /* reader: frames of key tone still to play */
	/* the writer thread (emu_audio_start_writer) */
	pthread_t writer;
	bool writing;
	atomic_bool stop;
	char *path;
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

static void
sleep_us(uint64_t us)
{
	struct timespec d = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
	nanosleep(&d, NULL);
}

/* A FIFO opens for writing only once a reader has it open: try every 10 ms until stopped. */
static int
open_out(struct emu_audio *a)
{
	while (!atomic_load(&a->stop)) {
		int fd = open(a->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			fcntl(fd, F_SETFL, 0); /* blocking writes from here on */
			return fd;
		}
		if (errno != ENXIO)
			return -1;
		sleep_us(10000);
	}
	return -1;
}

static void *
writer_main(void *ud)
{
	struct emu_audio *a = ud;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* a reader leaving is EPIPE, not SIGPIPE */
	pthread_setname_np(pthread_self(), "okvm-emu-audio");
	int fd = open_out(a);
	int16_t pcm[EMU_AUDIO_RATE / 100 * EMU_AUDIO_CHANNELS]; /* 10 ms */
	uint64_t next = okvm_now_us();
	while (fd >= 0 && !atomic_load(&a->stop)) {
		emu_audio_read(a, pcm, EMU_AUDIO_RATE / 100);
		if (write(fd, pcm, sizeof(pcm)) != (ssize_t)sizeof(pcm))
			break;
		next += 10000;
		uint64_t now = okvm_now_us();
		if (next > now)
			sleep_us(next - now);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

int
emu_audio_start_writer(struct emu_audio *a, const char *path)
{
	a->path = xstrdup(path);
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 && errno != ENXIO)
		return -errno;
	if (fd >= 0)
		close(fd);
	if (pthread_create(&a->writer, NULL, writer_main, a) != 0)
		return -EAGAIN;
	a->writing = true;
	return 0;
}

void
emu_audio_free(struct emu_audio *a)
{
	if (!a)
		return;
	if (a->writing) {
		atomic_store(&a->stop, true);
		pthread_join(a->writer, NULL);
	}
	free(a->path);
	free(a);
}
