/*
 * DESIGN: the recorder behind `okvm record` (docs/recording.md). A frame from the capture is
 * already a complete JPEG (the capture inserted Huffman tables where the MS2109 leaves them
 * out), so recording is remuxing: each JPEG becomes one Matroska block of an MJPEG track, as it
 * is, stamped with its capture time; libavformat's Matroska muxer writes the container. Audio,
 * when asked for, is a PCM S16LE track stamped from the same clock, so the two play in sync.
 *
 * The size limit is kept with an estimate that is never below what the muxer writes: the header
 * as written, each block's payload plus room for its block header and its cue point, and room
 * for the trailer. A frame that would pass the limit is refused (-EFBIG) and the caller
 * finishes the file, which then stays under the limit with its trailer.
 *
 * One owner thread; nothing here starts a thread or touches the capture.
 *
 * FFmpeg's libraries are loaded when the first recording opens (dlopen, the sonames of the
 * headers built against), not linked: libavformat and libavcodec bring some 90 libraries of
 * their own (codecs, network protocols, librsvg...), about 16 MB of resident pages in every
 * okvm process, `okvm view` and `okvm serve` included, that never records (docs/viewer.md,
 * "Memory"). The calls below go through the table `av`, typed from the headers.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/version_major.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/macros.h>
#include <libavutil/version.h>

#include "av/record.h"
#include "lib/xalloc.h"

/* ---- the libraries, loaded on first use ---- */

#define AV_SONAME(name, major) "lib" name ".so." AV_STRINGIFY(major)
#define AV_FUNCS(X)                               \
	X(util, av_channel_layout_default)        \
	X(util, av_rescale_q)                     \
	X(codec, av_packet_alloc)                 \
	X(codec, av_packet_unref)                 \
	X(codec, av_packet_free)                  \
	X(format, avformat_alloc_output_context2) \
	X(format, avformat_free_context)          \
	X(format, avformat_new_stream)            \
	X(format, avformat_write_header)          \
	X(format, av_interleaved_write_frame)     \
	X(format, av_write_frame)                 \
	X(format, av_write_trailer)               \
	X(format, avio_open)                      \
	X(format, avio_flush)                     \
	X(format, avio_seek)                      \
	X(format, avio_closep)

static struct {
#define AV_FIELD(lib, fn) __typeof__(fn) *fn;
	AV_FUNCS(AV_FIELD)
#undef AV_FIELD
} av;
static pthread_once_t av_once = PTHREAD_ONCE_INIT;
static int av_loaded;    /* 0 or -ELIBACC */
static char av_why[320]; /* why not: the library or function, and dlerror's words */

static void *
av_open_lib(const char *soname)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(av_why, sizeof(av_why), "%s", e ? e : soname);
	}
	return h;
}

static void
av_load(void)
{
	/* libavutil first: the others need it; never closed (their tables stay in use) */
	void *util = av_open_lib(AV_SONAME("avutil", LIBAVUTIL_VERSION_MAJOR));
	void *codec = util ? av_open_lib(AV_SONAME("avcodec", LIBAVCODEC_VERSION_MAJOR)) : NULL;
	void *format = codec ? av_open_lib(AV_SONAME("avformat", LIBAVFORMAT_VERSION_MAJOR)) : NULL;
	av_loaded = -ELIBACC;
	if (!format)
		return;
#define AV_SYM(lib, fn)                                                                    \
	if (!(av.fn = (__typeof__(fn) *)dlsym(lib, #fn))) {                                \
		snprintf(av_why, sizeof(av_why), "%s has no %s", AV_SONAME(#lib, 0), #fn); \
		return;                                                                    \
	}
	AV_FUNCS(AV_SYM)
#undef AV_SYM
	av_loaded = 0;
}

int
av_record_available(void)
{
	pthread_once(&av_once, av_load);
	return av_loaded;
}

const char *
av_record_load_error(void)
{
	static char msg[sizeof(av_why) + 128];
	pthread_once(&av_once, av_load);
	if (!av_loaded)
		return NULL;
	snprintf(
		msg, sizeof(msg),
		"cannot load FFmpeg's libraries (%s); install libavformat%d (scripts/install-deps)",
		av_why, LIBAVFORMAT_VERSION_MAJOR);
	return msg;
}

/* Room the estimate keeps per block: a SimpleBlock's ID, size and 4-byte header, a share of the
 * cluster headers, and a CuePoint (every MJPEG frame is a keyframe, and the muxer indexes each
 * keyframe of a video track). Measured: about 28 bytes per video block with 1 ms timestamps. */
#define VIDEO_BLOCK_ROOM 64
#define AUDIO_BLOCK_ROOM 24
/* The trailer: cues' master element, the seek head, the segment info's duration, tags. */
#define TRAILER_ROOM 16384
/* The header before it is written: EBML header, segment info, tracks (about 500 bytes). */
#define HEADER_ROOM 4096

struct av_record {
	AVFormatContext *fc;
	AVStream *video, *audio;
	AVPacket *pkt;
	char *path;
	uint64_t max_bytes;
	bool header;            /* written (at the first frame) */
	uint64_t t0_us;         /* capture time of the first frame: the file's zero */
	int64_t video_last_pts; /* of the last frame, in the track's time base */
	int64_t audio_next;     /* pts (in samples) the next audio sample continues at */
	bool audio_started;
	struct av_record_stats st;
};

static int
av_errno(int averr)
{
	return averr == AVERROR(ENOSPC) || averr == AVERROR(EFBIG) ? averr : -EIO;
}

int
av_record_open(const struct av_record_config *cfg, struct av_record **out)
{
	if (!cfg->path || !*cfg->path ||
	    (cfg->audio_rate && (cfg->audio_channels < 1 || cfg->audio_channels > 2)))
		return -EINVAL;
	int rc = av_record_available();
	if (rc)
		return rc;
	AVFormatContext *fc = NULL;
	if (av.avformat_alloc_output_context2(&fc, NULL, "matroska", cfg->path) < 0 || !fc)
		abort();
	rc = av.avio_open(&fc->pb, cfg->path, AVIO_FLAG_WRITE);
	if (rc < 0) {
		av.avformat_free_context(fc);
		return rc;
	}
	struct av_record *r = xcalloc(1, sizeof(*r));
	r->fc = fc;
	r->path = xstrdup(cfg->path);
	r->max_bytes = cfg->max_bytes;
	r->pkt = av.av_packet_alloc();
	if (!r->pkt)
		abort();
	r->video = av.avformat_new_stream(fc, NULL);
	if (!r->video)
		abort();
	r->video->codecpar->codec_type = AVMEDIA_TYPE_VIDEO;
	r->video->codecpar->codec_id = AV_CODEC_ID_MJPEG;
	r->video->time_base = (AVRational){ 1, 1000000 };
	if (cfg->audio_rate) {
		r->audio = av.avformat_new_stream(fc, NULL);
		if (!r->audio)
			abort();
		AVCodecParameters *p = r->audio->codecpar;
		p->codec_type = AVMEDIA_TYPE_AUDIO;
		p->codec_id = AV_CODEC_ID_PCM_S16LE;
		p->sample_rate = cfg->audio_rate;
		av.av_channel_layout_default(&p->ch_layout, cfg->audio_channels);
		p->bits_per_coded_sample = 16;
		p->block_align = 2 * cfg->audio_channels;
		p->bit_rate = (int64_t)cfg->audio_rate * 16 * cfg->audio_channels;
		r->audio->time_base = (AVRational){ 1, cfg->audio_rate };
	}
	*out = r;
	return 0;
}

static int
write_header(struct av_record *r, int width, int height, uint64_t ts_us)
{
	r->video->codecpar->width = width;
	r->video->codecpar->height = height;
	int rc = av.avformat_write_header(r->fc, NULL);
	if (rc < 0)
		return av_errno(rc);
	av.avio_flush(r->fc->pb);
	r->header = true;
	r->t0_us = ts_us;
	r->st.first_us = ts_us;
	r->st.bytes = (uint64_t)av.avio_seek(r->fc->pb, 0, SEEK_CUR) + TRAILER_ROOM;
	return 0;
}

static bool
over_limit(const struct av_record *r, size_t more)
{
	return r->max_bytes && r->st.bytes + more > r->max_bytes;
}

static int
write_packet(struct av_record *r, AVStream *s, const uint8_t *data, size_t n, int64_t pts,
	     int64_t duration)
{
	AVPacket *pkt = r->pkt;
	pkt->data = (uint8_t *)data;
	pkt->size = (int)n;
	pkt->stream_index = s->index;
	pkt->pts = pkt->dts = pts;
	pkt->duration = duration;
	pkt->flags = AV_PKT_FLAG_KEY;
	pkt->pos = -1;
	/* One track: straight to the muxer, no copy. Two: the interleaver copies what it holds. */
	int rc = r->audio ? av.av_interleaved_write_frame(r->fc, pkt)
			  : av.av_write_frame(r->fc, pkt);
	av.av_packet_unref(pkt);
	return rc < 0 ? av_errno(rc) : 0;
}

int
av_record_video(struct av_record *r, const uint8_t *jpeg, size_t n, int width, int height,
		uint64_t ts_us)
{
	if (!r->header) {
		/* A limit too small for the first frame leaves no file (no header written). */
		if (r->max_bytes &&
		    HEADER_ROOM + TRAILER_ROOM + n + VIDEO_BLOCK_ROOM > r->max_bytes)
			return -EFBIG;
		int rc = write_header(r, width, height, ts_us);
		if (rc)
			return rc;
	}
	if (over_limit(r, n + VIDEO_BLOCK_ROOM))
		return -EFBIG;
	if (ts_us < r->t0_us)
		ts_us = r->t0_us;
	int64_t pts = av.av_rescale_q((int64_t)(ts_us - r->t0_us), (AVRational){ 1, 1000000 },
				      r->video->time_base);
	/* Two frames within one tick of the track's time base (1 ms in Matroska) would share a
	 * timestamp, which players take for a duplicate: the later one moves by a tick. */
	if (r->st.frames && pts <= r->video_last_pts)
		pts = r->video_last_pts + 1;
	int rc = write_packet(r, r->video, jpeg, n, pts, 0);
	if (rc)
		return rc;
	r->st.frames++;
	r->st.last_us = ts_us;
	r->video_last_pts = pts;
	r->st.bytes += n + VIDEO_BLOCK_ROOM;
	return 0;
}

int
av_record_audio(struct av_record *r, const int16_t *pcm, size_t frames, uint64_t ts_us)
{
	if (!r->audio || !r->header || !frames)
		return 0;
	int rate = r->audio->codecpar->sample_rate;
	int ch = r->audio->codecpar->ch_layout.nb_channels;
	/* Where these samples fall on the file's clock, in samples. */
	int64_t at = ((int64_t)ts_us - (int64_t)r->t0_us) * rate / 1000000;
	/* Continue the samples before without gaps or overlaps unless the clock says they are
	 * more than 20 ms off (samples were lost, or the source restarted). */
	if (r->audio_started && llabs(at - r->audio_next) <= rate / 50)
		at = r->audio_next;
	if (at < 0) {
		if ((int64_t)frames <= -at)
			return 0;
		pcm += (size_t)-at * (size_t)ch;
		frames -= (size_t)-at;
		at = 0;
	}
	if (r->audio_started && at < r->audio_next) {
		size_t skip = (size_t)(r->audio_next - at);
		if (frames <= skip)
			return 0;
		pcm += skip * (size_t)ch, frames -= skip, at = r->audio_next;
	}
	size_t n = frames * (size_t)ch * 2;
	if (over_limit(r, n + AUDIO_BLOCK_ROOM))
		return -EFBIG;
	int64_t pts = av.av_rescale_q(at, (AVRational){ 1, rate }, r->audio->time_base);
	int64_t dur = av.av_rescale_q((int64_t)frames, (AVRational){ 1, rate },
				      r->audio->time_base);
	int rc = write_packet(r, r->audio, (const uint8_t *)pcm, n, pts, dur);
	if (rc)
		return rc;
	r->audio_started = true;
	r->audio_next = at + (int64_t)frames;
	r->st.audio_frames += frames;
	r->st.bytes += n + AUDIO_BLOCK_ROOM;
	return 0;
}

void
av_record_get_stats(const struct av_record *r, struct av_record_stats *out)
{
	*out = r->st;
}

int
av_record_close(struct av_record *r)
{
	if (!r)
		return 0;
	int rc = 0;
	if (r->header) {
		if (av.av_write_trailer(r->fc) < 0)
			rc = -EIO;
	} else {
		rc = -ENODATA;
	}
	if (av.avio_closep(&r->fc->pb) < 0 && !rc)
		rc = -EIO;
	if (rc == -ENODATA)
		unlink(r->path);
	av.av_packet_free(&r->pkt);
	av.avformat_free_context(r->fc);
	free(r->path);
	free(r);
	return rc;
}
