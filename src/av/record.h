/*
 * okvm's recorder: the device's MJPEG frames remuxed as they are into a Matroska file with their
 * capture timestamps (libavformat), and optionally 48 kHz PCM audio beside them. No decoding and
 * no encoding: a frame's JPEG bytes go into the file unchanged. One owner thread.
 */
#ifndef OKVM_AV_RECORD_H
#define OKVM_AV_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct av_record_config {
	const char *path;   /* the .mkv to write (created or truncated) */
	uint64_t max_bytes; /* the file stays at or below this; 0 = no limit */
	int audio_rate;     /* samples per second of the audio track; 0 = no audio track */
	int audio_channels; /* 1 or 2 (S16_LE interleaved) */
};

struct av_record;

/**
 * Load FFmpeg's libraries (dlopen, once; av_record_open() does it too). Any thread.
 * @return 0, or -ELIBACC when libavformat, libavcodec or libavutil of the version okvm was
 *         built with cannot be loaded (nothing can be recorded then).
 */
int av_record_available(void);

/** Why av_record_available() failed, for people (the library, dlerror's words, the Debian
 *  package to install), or NULL when FFmpeg is loaded. Any thread, after the load. */
const char *av_record_load_error(void);

/**
 * Create the file (nothing is written into it before the first frame, whose size the track
 * header needs).
 * @return 0 (*out set), -errno when the file cannot be created (-EACCES, -ENOENT ...),
 *         -EINVAL for a bad config. Aborts on OOM.
 */
int av_record_open(const struct av_record_config *cfg, struct av_record **out);

/**
 * Add one JPEG as it is, at its capture time (CLOCK_MONOTONIC us). The first frame's time is
 * the file's zero; the first frame also writes the file's header (its size for the track).
 * @return 0, -EFBIG (the frame would take the file past max_bytes: not written, the file
 *         can still be closed cleanly), -EIO (a write failed).
 */
int av_record_video(struct av_record *r, const uint8_t *jpeg, size_t n, int width, int height,
		    uint64_t ts_us);

/**
 * Add interleaved S16_LE samples captured starting at ts_us (CLOCK_MONOTONIC). Samples from
 * before the first video frame are dropped (both tracks start at zero); until then they are
 * ignored. @return as av_record_video().
 */
int av_record_audio(struct av_record *r, const int16_t *pcm, size_t frames, uint64_t ts_us);

struct av_record_stats {
	uint64_t frames;       /* video frames written */
	uint64_t first_us;     /* capture time of the first frame (0 = none yet) */
	uint64_t last_us;      /* of the last one */
	uint64_t audio_frames; /* audio sample frames written */
	uint64_t bytes;        /* the estimate the limit is checked against (see record.c) */
};
void av_record_get_stats(const struct av_record *r, struct av_record_stats *out);

/**
 * Finish the file: the trailer (cues, duration) is written and the file closed. A file with no
 * frame is removed (a Matroska file needs its track's header).
 * @return 0, -ENODATA (no frame was recorded; the file is removed), -EIO. Frees r (NULL ok).
 */
int av_record_close(struct av_record *r);

#endif
