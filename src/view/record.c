/*
 * DESIGN: the viewer's record button (host key + R; docs/viewer.md). What the window shows,
 * recorded as `okvm record` records it (src/av/record.c): the device's MJPEG frames remuxed
 * as they are into Matroska with their capture times, and the sound the viewer plays as a PCM
 * track beside them when it plays one.
 *
 * Threads. A thread of its own ("okvm-view-rec") owns the recorder: it waits on the capture
 * for each new frame (okvm_capture_wait, as okvm record's loop does) and writes it, so the
 * disk never stalls the window or the sound. The viewer's sound thread hands its 10 ms chunks
 * to view_rec_audio(), which only copies them into a bounded ring (64 chunks, 640 ms; when it
 * is full the oldest goes and is counted); the recorder thread writes them between frames.
 * The recorder declares its own interest in frames (the capture's want is counted), so a
 * recording goes on while the window is hidden and nothing is decoded for it.
 *
 * The end: view_rec_stop() (host+R again, the window closing, SIGINT/SIGTERM) joins the thread
 * and writes the trailer. A write error, a full disk or an unplug ends the recording from the
 * thread: the file is finished there and the window is told through the done callback.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "av/record.h"
#include "lib/xalloc.h"
#include "okvm/video.h"
#include "view/view.h"

#define RATE 48000
#define CHANNELS 2
#define CHUNK (RATE / 100) /* the viewer's sound comes in 10 ms chunks */
#define SLOTS 64           /* 640 ms of sound waiting at most */

struct view_rec {
	struct okvm_capture *cap;
	struct av_record *rec;
	char path[4096];
	pthread_t thread;
	atomic_bool stop;
	void (*done)(void *ud);
	void *done_ud;
	pthread_mutex_t lock;
	/* the sound ring (lock) */
	int16_t pcm[SLOTS][CHUNK * CHANNELS];
	size_t frames[SLOTS];
	uint64_t ts_us[SLOTS];
	unsigned head, count;
	uint64_t audio_dropped;
	/* written by the thread; read after it ended, or atomically */
	atomic_int err;  /* why it ended by itself (0: still running or stopped) */
	atomic_bool end; /* ended by itself */
	uint64_t seq, missed;
	bool audio;
};

/* dir/okvm-YYYYmmdd-HHMMSS.mkv, or -2, -3 ... when a recording of the same second exists. */
static void
make_path(char *path, size_t size, const char *dir)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	snprintf(path, size, "%s/okvm-%s.mkv", dir, stamp);
	struct stat sb;
	for (int i = 2; i < 100 && stat(path, &sb) == 0; i++)
		snprintf(path, size, "%s/okvm-%s-%d.mkv", dir, stamp, i);
}

/* The sound that is waiting, into the file. 0 or the recorder's error. */
static int
drain_audio(struct view_rec *r)
{
	int16_t buf[CHUNK * CHANNELS];
	for (;;) {
		pthread_mutex_lock(&r->lock);
		if (!r->count) {
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
		unsigned s = r->head;
		size_t n = r->frames[s];
		uint64_t ts = r->ts_us[s];
		memcpy(buf, r->pcm[s], n * CHANNELS * sizeof(int16_t));
		r->head = (r->head + 1) % SLOTS;
		r->count--;
		pthread_mutex_unlock(&r->lock);
		int rc = av_record_audio(r->rec, buf, n, ts);
		if (rc)
			return rc;
	}
}

/* One new frame into the file. 0, or why the recording ends. */
static int
take_frame(struct view_rec *r)
{
	struct okvm_frame *f = okvm_capture_latest(r->cap);
	if (!f)
		return 0;
	int rc = 0;
	if (f->seq > r->seq) {
		if (r->seq && f->seq > r->seq + 1)
			r->missed += f->seq - r->seq - 1;
		r->seq = f->seq;
		struct av_record_stats st;
		av_record_get_stats(r->rec, &st);
		if (f->placeholder) { /* "no signal": a gap in the timestamps, unless unplugged */
			struct okvm_capture_status cs;
			okvm_capture_get_status(r->cap, &cs);
			if (!cs.device && st.frames)
				rc = -ENODEV;
		} else {
			rc = av_record_video(r->rec, f->data, f->size, f->width, f->height,
					     f->ts_us);
		}
	}
	okvm_frame_unref(f);
	return rc;
}

static void *
rec_main(void *ud)
{
	struct view_rec *r = ud;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* the main thread takes SIGINT/SIGTERM */
	pthread_setname_np(pthread_self(), "okvm-view-rec");
	int rc = 0;
	while (!rc && !atomic_load(&r->stop)) {
		if (r->audio && (rc = drain_audio(r)))
			break;
		if (okvm_capture_wait(r->cap, r->seq, r->audio ? 20 : 100) == 0)
			rc = take_frame(r);
	}
	if (rc) {
		atomic_store(&r->err, rc);
		atomic_store(&r->end, true);
		if (r->done)
			r->done(r->done_ud);
	}
	return NULL;
}

int
view_rec_start(const struct view_rec_config *cfg, struct view_rec **out)
{
	if (!cfg->cap)
		return -ENODEV;
	struct view_rec *r = xcalloc(1, sizeof(*r));
	make_path(r->path, sizeof(r->path), cfg->dir && *cfg->dir ? cfg->dir : ".");
	struct av_record_config ac = { .path = r->path };
	if (cfg->audio)
		ac.audio_rate = RATE, ac.audio_channels = CHANNELS;
	int rc = av_record_open(&ac, &r->rec);
	if (rc) {
		free(r);
		return rc;
	}
	r->cap = cfg->cap;
	r->audio = cfg->audio;
	r->done = cfg->done;
	r->done_ud = cfg->done_ud;
	pthread_mutex_init(&r->lock, NULL);
	okvm_capture_want(r->cap, true);
	if (pthread_create(&r->thread, NULL, rec_main, r) != 0) {
		okvm_capture_want(r->cap, false);
		av_record_close(r->rec);
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -EAGAIN;
	}
	*out = r;
	return 0;
}

const char *
view_rec_path(const struct view_rec *r)
{
	return r->path;
}

void
view_rec_audio(struct view_rec *r, const int16_t *pcm, size_t frames, uint64_t ts_us)
{
	if (!r->audio || !frames)
		return;
	if (frames > CHUNK)
		frames = CHUNK;
	pthread_mutex_lock(&r->lock);
	if (r->count == SLOTS) { /* the disk is behind: the oldest goes */
		r->head = (r->head + 1) % SLOTS;
		r->count--;
		r->audio_dropped++;
	}
	unsigned s = (r->head + r->count) % SLOTS;
	memcpy(r->pcm[s], pcm, frames * CHANNELS * sizeof(int16_t));
	r->frames[s] = frames;
	r->ts_us[s] = ts_us;
	r->count++;
	pthread_mutex_unlock(&r->lock);
}

bool
view_rec_ended(const struct view_rec *r)
{
	return atomic_load(&r->end);
}

int
view_rec_stop(struct view_rec *r, struct view_rec_result *res)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	okvm_capture_want(r->cap, false);
	if (r->audio && !atomic_load(&r->err))
		drain_audio(r); /* what came in before the stop */
	struct av_record_stats st;
	av_record_get_stats(r->rec, &st);
	int rc = av_record_close(r->rec);
	int err = atomic_load(&r->err);
	*res = (struct view_rec_result){
		.frames = st.frames,
		.missed = r->missed,
		.seconds = st.frames ? (double)(st.last_us - st.first_us) / 1e6 : 0,
		.audio_seconds = (double)st.audio_frames / RATE,
		.audio_dropped = r->audio_dropped,
		.err = err ? err : rc,
	};
	snprintf(res->path, sizeof(res->path), "%s", r->path);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return res->err;
}
