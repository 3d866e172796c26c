/*
 * DESIGN: reduced MJPEG streams, shared per setting (`/stream?fps=N&q=Q&width=W`, docs/api.md).
 *
 * A variant is one distinct (fps, q, width). Every stream client that asks for the same setting
 * shares it, so the device's frame is re-encoded once per setting, never per client; clients
 * without parameters keep the device's own frames, untouched. The service thread feeds each
 * variant the newest device frame (variant_feed, from stream_on_frame): the frame-rate limit is
 * applied there on capture timestamps, and a variant with only `fps` passes the device's JPEG
 * through (no decode). Otherwise the variant's thread decodes the JPEG straight to YUV planes at
 * a scale the decoder does itself (turbojpeg's n/8 factors: no separate resize, no colour
 * conversion), encodes that at quality q, and publishes the result as a refcounted frame;
 * lws_cancel_service() wakes the service thread, which hands it to the variant's clients
 * (variant_drain -> stream_on_variant). Newest wins: a device frame that arrives while the thread
 * is busy replaces the one waiting, so a slow encode drops frames instead of queueing them.
 * The last client leaving stops and joins the thread and frees everything (and trims the heap).
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "okvm/log.h"
#include "lib/video/frame.h"
#include "lib/xalloc.h"
#include "serve/internal.h"

struct stream_variant {
	struct serve *s;
	struct variant_key key; /* fps, quality, width 0: as the device (no limit, no
				   re-encoding, its width); h264: H.264 at key.kbps (0: by size) */
	unsigned users;
	struct stream_variant *next;
	/* service thread only */
	uint64_t next_due_us; /* the frame-rate limit: next capture time taken */
	uint64_t seen_seq;    /* out_seq already handed to the clients */
	bool has_thread;
	pthread_t thread;
	/* lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct okvm_frame *in;   /* newest device frame not yet encoded */
	struct okvm_frame *last; /* the last device frame fed (H.264: re-encoded for an IDR) */
	struct okvm_frame *out;  /* newest result */
	uint64_t out_seq;
	bool stop;
	bool want_idr; /* H.264: the next picture is an IDR (a viewer joined or fell behind) */
	uint64_t encoded, dropped, errors;
	double encode_ms;
	/* the variant's thread only */
	struct okvm_frame_pool *pool;
	tjhandle dec, enc;
	uint8_t *yuv;
	size_t yuv_cap;
	struct h264_enc *h264;
	char h264_name[80]; /* lock: h264_enc_name() of the last picture, for /metrics */
};

/* The largest scale turbojpeg decodes to whose width is at most want (1/1 if want is 0 or at
 * least w). */
static tjscalingfactor
pick_scale(int w, int want)
{
	tjscalingfactor best = { 1, 1 };
	if (want <= 0 || want >= w)
		return best;
	int n = 0;
	tjscalingfactor *f = tjGetScalingFactors(&n);
	int best_w = 0;
	for (int i = 0; f && i < n; i++) {
		int sw = TJSCALED(w, f[i]);
		if (sw <= want && sw > best_w) {
			best_w = sw;
			best = f[i];
		}
	}
	if (!best_w) /* smaller than the smallest scale: take the smallest */
		for (int i = 0; f && i < n; i++)
			if (TJSCALED(w, f[i]) < TJSCALED(w, best))
				best = f[i];
	return best;
}

/* The picture in v->yuv as one H.264 access unit; NULL if the encoder skipped it or failed. */
static struct okvm_frame *
encode_h264(struct stream_variant *v, const struct okvm_frame *src, int w, int h, int sub)
{
	pthread_mutex_lock(&v->lock);
	bool idr = v->want_idr;
	v->want_idr = false;
	pthread_mutex_unlock(&v->lock);
	float fps = v->key.fps ? (float)v->key.fps : 30.0f;
	int kbps = v->key.kbps;
	if (!kbps) { /* about 0.04 bit per pixel and frame: 2.5 Mbit/s at 1080p30 */
		kbps = (int)((double)w * h * fps * 0.04 / 1000);
		kbps = kbps < 200 ? 200 : kbps;
	}
	const uint8_t *au;
	size_t len;
	bool is_idr;
	int rc = h264_enc_frame(v->h264, v->yuv, w, h, sub, fps, kbps, idr, src->ts_us, &au, &len,
				&is_idr);
	const char *name = h264_enc_name(v->h264);
	if (strcmp(name, v->h264_name)) { /* chosen, or fallen back to openh264 */
		pthread_mutex_lock(&v->lock);
		snprintf(v->h264_name, sizeof(v->h264_name), "%s", name);
		pthread_mutex_unlock(&v->lock);
	}
	if (rc || !len) {
		if (rc && idr) { /* try again with the next frame */
			pthread_mutex_lock(&v->lock);
			v->want_idr = true;
			pthread_mutex_unlock(&v->lock);
		}
		return NULL;
	}
	struct okvm_frame *f = frame_pool_alloc(v->pool, len);
	size_t room;
	memcpy(okvm_frame_buffer(f, &room), au, len);
	f->size = len;
	f->width = w & ~1;
	f->height = h & ~1;
	f->ts_us = src->ts_us;
	f->placeholder = src->placeholder;
	return f;
}

/* Re-encode one device frame. Returns the new frame or NULL (the JPEG did not decode). */
static struct okvm_frame *
encode(struct stream_variant *v, const struct okvm_frame *src)
{
	int w, h, sub, cs;
	if (tjDecompressHeader3(v->dec, src->data, (unsigned long)src->size, &w, &h, &sub, &cs))
		return NULL;
	tjscalingfactor sf = pick_scale(w, v->key.width);
	int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
	unsigned long ysz = tjBufSizeYUV2(sw, 1, sh, sub);
	if (ysz == (unsigned long)-1)
		return NULL;
	if (ysz > v->yuv_cap) {
		free(v->yuv);
		v->yuv = xmalloc(ysz);
		v->yuv_cap = ysz;
	}
	if (tjDecompressToYUV2(v->dec, src->data, (unsigned long)src->size, v->yuv, sw, 1, sh,
			       TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE) &&
	    tjGetErrorCode(v->dec) == TJERR_FATAL)
		return NULL;
	if (v->key.h264)
		return encode_h264(v, src, sw, sh, sub);
	unsigned long cap = tjBufSize(sw, sh, sub);
	struct okvm_frame *f = frame_pool_alloc(v->pool, cap);
	size_t room;
	unsigned char *buf = okvm_frame_buffer(f, &room);
	unsigned long len = room;
	int q = v->key.quality ? v->key.quality : SERVE_VARIANT_DEFAULT_Q;
	if (tjCompressFromYUV(v->enc, v->yuv, sw, 1, sh, sub, &buf, &len, q,
			      TJFLAG_NOREALLOC | TJFLAG_FASTDCT)) {
		okvm_frame_unref(f);
		return NULL;
	}
	f->size = len;
	f->width = sw;
	f->height = sh;
	f->ts_us = src->ts_us;
	f->placeholder = src->placeholder;
	return f;
}

static void *
variant_thread(void *arg)
{
	struct stream_variant *v = arg;
	pthread_setname_np(pthread_self(), "okvm-variant");
	pthread_mutex_lock(&v->lock);
	for (;;) {
		while (!v->in && !v->stop)
			pthread_cond_wait(&v->cond, &v->lock);
		if (v->stop)
			break;
		struct okvm_frame *src = v->in;
		v->in = NULL;
		pthread_mutex_unlock(&v->lock);
		uint64_t t0 = serve_now_us();
		struct okvm_frame *f = encode(v, src);
		double ms = (double)(serve_now_us() - t0) / 1000.0;
		okvm_frame_unref(src);
		pthread_mutex_lock(&v->lock);
		if (!f) {
			v->errors += !v->key.h264;
			continue;
		}
		f->seq = ++v->out_seq;
		okvm_frame_unref(v->out);
		v->out = f;
		v->encoded++;
		v->encode_ms = ms;
		pthread_mutex_unlock(&v->lock);
		atomic_fetch_add(&v->s->variant_notifies, 1);
		lws_cancel_service(v->s->ctx);
		pthread_mutex_lock(&v->lock);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

int
variant_parse(struct lws *wsi, struct variant_key *k, char *err, size_t n)
{
	static const struct {
		const char *name;
		int lo, hi;
		const char *what;
	} args[] = {
		{ "fps=", 1, SERVE_VARIANT_MAX_FPS, "frames per second" },
		{ "q=", 1, 100, "JPEG quality" },
		{ "width=", SERVE_VARIANT_MIN_WIDTH, 16384, "width in pixels" },
		{ "kbps=", 100, 100000, "H.264 bitrate in kbit/s" },
	};
	int *out[] = { &k->fps, &k->quality, &k->width, &k->kbps };
	size_t nargs = k->h264 ? 4 : 3;
	for (size_t i = 0; i < nargs; i++) {
		char buf[48];
		*out[i] = 0;
		const char *val = serve_urlarg(wsi, args[i].name, buf, sizeof(buf));
		if (!val)
			continue;
		char *end;
		errno = 0;
		long x = strtol(val, &end, 10);
		if (errno || end == val || *end || x < args[i].lo || x > args[i].hi) {
			snprintf(err, n, "%s%s: the %s must be a whole number from %d to %d",
				 args[i].name, val, args[i].what, args[i].lo, args[i].hi);
			return -EINVAL;
		}
		*out[i] = (int)x;
	}
	if (k->h264 && k->quality) {
		snprintf(err, n, "q= is for MJPEG; an H.264 stream takes kbps= (100-100000)");
		return -EINVAL;
	}
	return 0;
}

struct stream_variant *
variant_get(struct serve *s, const struct variant_key *k)
{
	for (struct stream_variant *v = s->variants; v; v = v->next)
		if (v->key.h264 == k->h264 && v->key.fps == k->fps &&
		    v->key.quality == k->quality && v->key.width == k->width &&
		    v->key.kbps == k->kbps) {
			v->users++;
			return v;
		}
	struct stream_variant *v = xcalloc(1, sizeof(*v));
	v->s = s;
	v->key = *k;
	v->users = 1;
	v->want_idr = true;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	if (k->quality || k->width || k->h264) {
		v->pool = frame_pool_new();
		v->dec = tjInitDecompress();
		v->enc = tjInitCompress();
		if (k->h264)
			v->h264 = h264_enc_new(s->cfg.h264_encoder);
		if (!v->dec || !v->enc ||
		    pthread_create(&v->thread, NULL, variant_thread, v) != 0) {
			okvm_log(OKVM_LOG_ERROR, "serve: could not start a stream variant");
			if (v->dec)
				tjDestroy(v->dec);
			if (v->enc)
				tjDestroy(v->enc);
			h264_enc_free(v->h264);
			frame_pool_unref(v->pool);
			pthread_mutex_destroy(&v->lock);
			pthread_cond_destroy(&v->cond);
			free(v);
			return NULL;
		}
		v->has_thread = true;
	}
	v->next = s->variants;
	s->variants = v;
	s->nvariants++;
	okvm_log(OKVM_LOG_INFO, "serve: stream variant %s fps=%d q=%d width=%d kbps=%d started",
		 k->h264 ? "h264" : "mjpeg", k->fps, k->quality, k->width, k->kbps);
	return v;
}

void
variant_put(struct serve *s, struct stream_variant *v)
{
	if (!v || --v->users)
		return;
	for (struct stream_variant **pp = &s->variants; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	s->nvariants--;
	if (v->has_thread) {
		pthread_mutex_lock(&v->lock);
		v->stop = true;
		pthread_cond_signal(&v->cond);
		pthread_mutex_unlock(&v->lock);
		pthread_join(v->thread, NULL);
		tjDestroy(v->dec);
		tjDestroy(v->enc);
		h264_enc_free(v->h264);
		free(v->yuv);
	}
	okvm_frame_unref(v->in);
	okvm_frame_unref(v->last);
	okvm_frame_unref(v->out);
	frame_pool_unref(v->pool);
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
	okvm_log(OKVM_LOG_INFO,
		 "serve: stream variant %s fps=%d q=%d width=%d stopped (%llu encoded)",
		 v->key.h264 ? "h264" : "mjpeg", v->key.fps, v->key.quality, v->key.width,
		 (unsigned long long)v->encoded);
	free(v);
#ifdef __GLIBC__
	malloc_trim(0); /* the encoder's buffers were in its thread's arena: give them back */
#endif
}

/* Service thread: a new device frame, taken if the frame-rate limit lets it through. A
 * pass-through variant (fps only) publishes it as it is; variant_drain hands it on. */
static void
feed(struct stream_variant *v, struct okvm_frame *f)
{
	if (v->key.fps) {
		uint64_t interval = 1000000u / (unsigned)v->key.fps;
		/* 5 ms of slack: capture timestamps jitter around the source's own interval. */
		if (v->next_due_us && f->ts_us + 5000 < v->next_due_us)
			return;
		bool on_time = v->next_due_us && f->ts_us < v->next_due_us + interval;
		v->next_due_us = (on_time ? v->next_due_us : f->ts_us) + interval;
	}
	pthread_mutex_lock(&v->lock);
	if (v->has_thread) {
		if (v->in)
			v->dropped++;
		okvm_frame_unref(v->in);
		v->in = okvm_frame_ref(f);
		okvm_frame_unref(v->last);
		v->last = okvm_frame_ref(f);
		pthread_cond_signal(&v->cond);
	} else {
		okvm_frame_unref(v->out);
		v->out = okvm_frame_ref(f);
		v->out_seq = f->seq;
		atomic_fetch_add(&v->s->variant_notifies, 1);
	}
	pthread_mutex_unlock(&v->lock);
}

void
variant_feed_all(struct serve *s, struct okvm_frame *f)
{
	if (!f)
		return;
	for (struct stream_variant *v = s->variants; v; v = v->next)
		feed(v, f);
}

void
variant_want_idr(struct stream_variant *v)
{
	pthread_mutex_lock(&v->lock);
	if (!v->want_idr) {
		v->want_idr = true;
		/* A still screen sends no new frame: encode the last one again. */
		if (!v->in && v->last) {
			v->in = okvm_frame_ref(v->last);
			pthread_cond_signal(&v->cond);
		}
	}
	pthread_mutex_unlock(&v->lock);
}

struct okvm_frame *
variant_newest(struct stream_variant *v)
{
	pthread_mutex_lock(&v->lock);
	struct okvm_frame *f = v->out ? okvm_frame_ref(v->out) : NULL;
	pthread_mutex_unlock(&v->lock);
	return f;
}

void
variant_drain(struct serve *s)
{
	uint64_t n = atomic_load(&s->variant_notifies);
	if (n == s->variants_seen)
		return;
	s->variants_seen = n;
	for (struct stream_variant *v = s->variants; v; v = v->next) {
		pthread_mutex_lock(&v->lock);
		uint64_t seq = v->out_seq;
		pthread_mutex_unlock(&v->lock);
		if (seq != v->seen_seq) {
			v->seen_seq = seq;
			stream_on_variant(s, v);
		}
	}
}

unsigned
variant_h264_encoders(struct serve *s, char (*names)[80], unsigned *counts, unsigned max)
{
	unsigned n = 0;
	for (struct stream_variant *v = s->variants; v; v = v->next) {
		if (!v->key.h264)
			continue;
		char name[80];
		pthread_mutex_lock(&v->lock);
		snprintf(name, sizeof(name), "%s", v->h264_name);
		pthread_mutex_unlock(&v->lock);
		if (!name[0]) /* no picture yet */
			continue;
		unsigned i = 0;
		while (i < n && strcmp(names[i], name))
			i++;
		if (i == n && n == max)
			continue;
		if (i == n) {
			snprintf(names[n], sizeof(names[n]), "%s", name);
			counts[n++] = 0;
		}
		counts[i]++;
	}
	return n;
}

void
variant_stats(struct serve *s, uint64_t *encoded, uint64_t *dropped, double *encode_ms_max)
{
	*encoded = *dropped = 0;
	*encode_ms_max = 0;
	for (struct stream_variant *v = s->variants; v; v = v->next) {
		pthread_mutex_lock(&v->lock);
		*encoded += v->encoded;
		*dropped += v->dropped;
		if (v->encode_ms > *encode_ms_max)
			*encode_ms_max = v->encode_ms;
		pthread_mutex_unlock(&v->lock);
	}
}
