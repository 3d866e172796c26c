/*
 * DESIGN: the unit's sound to the browser over the WebSocket (docs/api.md, "audio" message).
 *
 * A WebSocket client that sends {"type":"audio","codec":"opus"} (or "pcm") gets the text
 * message {"type":"audio","codec":"opus"|"pcm","rate":48000,"channels":2,"frame_ms":20} and
 * from then on one binary message per 20 ms of sound:
 *
 *     byte 0      'A' (0x41), the format's version 1 of this header
 *     byte 1      codec: 1 = Opus (one Opus packet, RFC 6716), 0 = PCM (S16_LE interleaved)
 *     bytes 2-3   frames in it (960: 20 ms at 48 kHz; big-endian)
 *     bytes 4-7   sequence number (big-endian; +1 per 20 ms, a gap is sound lost)
 *     bytes 8-15  capture time of the first frame, CLOCK_MONOTONIC microseconds (big-endian)
 *     bytes 16..  the payload
 *
 * One thread ("okvm-audio") owns the source (serve_set_audio: an ALSA card or the virtual
 * unit's sound) and opens it only while at least one client asked for audio; it closes it and
 * sleeps when the last one stops or leaves. It reads 960 frames at a time, encodes them with
 * libopus (only while someone wants Opus), and puts both forms in a ring of SERVE_AUDIO_RING
 * packets; the service thread sends each client the packets it has not had yet, oldest first,
 * and a client more than the ring behind skips ahead (its sequence numbers show the gap).
 * Should the encoder not start, Opus clients get PCM messages (byte 1 says which).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <opus/opus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "okvm/error.h"
#include "okvm/log.h"
#include "lib/thread.h"
#include "lib/xalloc.h"
#include "serve/internal.h"

#define RATE 48000
#define CHANNELS 2
#define FRAMES 960 /* 20 ms */
#define HDR 16
#define OPUS_MAX 1500
#define SERVE_AUDIO_RING 16

struct audio_packet {
	uint64_t seq, ts_us;
	int16_t pcm[FRAMES * CHANNELS];
	uint8_t opus[OPUS_MAX];
	int opus_len; /* 0: not encoded */
};

struct serve_audio {
	struct serve *s;
	struct serve_audio_source src;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned want_opus, want_pcm; /* clients (service thread writes, under lock) */
	bool stop;
	uint64_t seq; /* packets made (under lock) */
	struct audio_packet ring[SERVE_AUDIO_RING];
	atomic_uint_fast64_t made; /* for the service thread's drain */
	uint64_t seen;
	uint64_t sent;  /* binary messages sent (service thread) */
	bool failed;    /* the source would not open: wait for the next request */
	bool capturing; /* the source is open (under lock) */
};

static void
put_be(uint8_t *p, uint64_t x, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, x >>= 8)
		p[i] = (uint8_t)x;
}

static void *
audio_thread(void *arg)
{
	struct serve_audio *a = arg;
	OpusEncoder *enc = NULL;
	bool open = false;
	int16_t pcm[FRAMES * CHANNELS];
	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		if ((!a->want_opus && !a->want_pcm) || a->failed) {
			if (open) {
				pthread_mutex_unlock(&a->lock);
				a->src.close(a->src.ud);
				okvm_log(OKVM_LOG_INFO, "serve: audio capture stopped");
				pthread_mutex_lock(&a->lock);
				open = false;
				a->capturing = false;
			}
			pthread_cond_wait(&a->cond, &a->lock);
			continue;
		}
		bool opus = a->want_opus > 0;
		pthread_mutex_unlock(&a->lock);
		if (!open) {
			int rc = a->src.open(a->src.ud);
			if (rc < 0) {
				okvm_log(OKVM_LOG_WARN, "serve: audio: cannot capture: %s",
					 okvm_strerror(rc));
				pthread_mutex_lock(&a->lock);
				a->failed = true; /* until the next request */
				continue;
			}
			open = true;
			okvm_log(OKVM_LOG_INFO, "serve: audio capture started");
			pthread_mutex_lock(&a->lock);
			a->capturing = true;
			pthread_mutex_unlock(&a->lock);
		}
		size_t got = 0;
		uint64_t ts = 0;
		while (got < FRAMES) {
			uint64_t t;
			long n = a->src.read(a->src.ud, pcm + got * CHANNELS, FRAMES - got, &t);
			if (n < 0)
				break;
			if (got == 0)
				ts = t;
			got += (size_t)n;
		}
		if (got < FRAMES) { /* unplugged or failed: open again, not at once */
			okvm_log(OKVM_LOG_WARN,
				 "serve: audio: the capture failed; opening it again");
			a->src.close(a->src.ud);
			open = false;
			struct timespec d = { 0, 200 * 1000 * 1000 };
			nanosleep(&d, NULL);
			pthread_mutex_lock(&a->lock);
			a->capturing = false;
			continue;
		}
		uint8_t out[OPUS_MAX] = { 0 };
		int olen = 0;
		if (opus && !enc) {
			int err;
			enc = opus_encoder_create(RATE, CHANNELS, OPUS_APPLICATION_AUDIO, &err);
			if (enc)
				opus_encoder_ctl(enc, OPUS_SET_BITRATE(128000));
		}
		if (opus && enc) {
			olen = opus_encode(enc, pcm, FRAMES, out, sizeof(out));
			if (olen < 0)
				olen = 0;
		}
		pthread_mutex_lock(&a->lock);
		a->seq++;
		struct audio_packet *p = &a->ring[a->seq % SERVE_AUDIO_RING];
		p->seq = a->seq;
		p->ts_us = ts;
		memcpy(p->pcm, pcm, sizeof(pcm));
		memcpy(p->opus, out, (size_t)olen);
		p->opus_len = olen;
		atomic_store(&a->made, a->seq);
		lws_cancel_service(a->s->ctx);
	}
	pthread_mutex_unlock(&a->lock);
	if (open)
		a->src.close(a->src.ud);
	if (enc)
		opus_encoder_destroy(enc);
	return NULL;
}

void
serve_set_audio(struct serve *s, const struct serve_audio_source *src)
{
	struct serve_audio *a = xcalloc(1, sizeof(*a));
	a->s = s;
	a->src = *src;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	s->audio = a;
}

/* The thread starts with the first listener (the lws context exists by then). */
static void
set_want(struct serve_audio *a, int d_opus, int d_pcm)
{
	pthread_mutex_lock(&a->lock);
	a->want_opus += (unsigned)d_opus;
	a->want_pcm += (unsigned)d_pcm;
	a->failed = false;
	if (!a->started && thread_start(&a->thread, "okvm-audio", audio_thread, a) == 0)
		a->started = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

void
ws_audio_stop(struct conn *c)
{
	struct serve_audio *a = c->s->audio;
	if (!a || !c->ws.audio)
		return;
	set_want(a, c->ws.audio == 2 ? -1 : 0, c->ws.audio == 1 ? -1 : 0);
	c->ws.audio = 0;
	c->ws.audio_pending = false;
}

int
ws_audio_request(struct conn *c, const cJSON *o, char *why, size_t n)
{
	const char *codec = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "codec"));
	if (!codec || (strcmp(codec, "opus") && strcmp(codec, "pcm") && strcmp(codec, "none"))) {
		snprintf(why, n,
			 "audio needs \"codec\": \"opus\", \"pcm\" (binary sound messages) or "
			 "\"none\" (stop)");
		return -EINVAL;
	}
	struct serve_audio *a = c->s->audio;
	if (!a && strcmp(codec, "none")) {
		snprintf(why, n, "audio: this unit has no sound");
		return -EOPNOTSUPP;
	}
	ws_audio_stop(c);
	if (!strcmp(codec, "none"))
		return 0;
	bool opus = !strcmp(codec, "opus");
	c->ws.audio = opus ? 2 : 1;
	pthread_mutex_lock(&a->lock);
	c->ws.audio_last_seq = a->seq; /* from the next packet on */
	pthread_mutex_unlock(&a->lock);
	set_want(a, opus, !opus);
	char txt[128];
	snprintf(txt, sizeof(txt),
		 "{\"type\":\"audio\",\"codec\":\"%s\",\"rate\":%d,\"channels\":%d,"
		 "\"frame_ms\":20}",
		 codec, RATE, CHANNELS);
	ws_queue_text(c, txt);
	okvm_log(OKVM_LOG_INFO, "serve: WebSocket client %u gets audio (%s)", c->id, codec);
	return 0;
}

void
ws_audio_drain(struct serve *s)
{
	struct serve_audio *a = s->audio;
	if (!a)
		return;
	uint64_t m = atomic_load(&a->made);
	if (m == a->seen)
		return;
	a->seen = m;
	for (struct conn *c = s->sockets; c; c = c->next)
		if (c->ws.audio && c->wsi) {
			c->ws.audio_pending = true;
			lws_callback_on_writable(c->wsi);
		}
}

int
ws_audio_writeable(struct conn *c)
{
	struct serve_audio *a = c->s->audio;
	c->ws.audio_pending = false;
	if (!a || !c->ws.audio)
		return 0;
	bool opus = c->ws.audio == 2;
	uint8_t *buf = xmalloc(LWS_PRE + HDR + sizeof(a->ring[0].pcm)), *p = buf + LWS_PRE;
	size_t len = 0;
	pthread_mutex_lock(&a->lock);
	uint64_t next = c->ws.audio_last_seq + 1;
	if (a->seq >= SERVE_AUDIO_RING && next <= a->seq - SERVE_AUDIO_RING)
		next = a->seq - SERVE_AUDIO_RING + 1; /* too far behind: skip ahead */
	if (next <= a->seq) {
		const struct audio_packet *k = &a->ring[next % SERVE_AUDIO_RING];
		p[0] = 'A';
		p[1] = opus && k->opus_len ? 1 : 0;
		put_be(p + 2, FRAMES, 2);
		put_be(p + 4, k->seq, 4);
		put_be(p + 8, k->ts_us, 8);
		if (p[1]) {
			memcpy(p + HDR, k->opus, (size_t)k->opus_len);
			len = HDR + (size_t)k->opus_len;
		} else {
			memcpy(p + HDR, k->pcm, sizeof(k->pcm)); /* S16_LE as captured */
			len = HDR + sizeof(k->pcm);
		}
		c->ws.audio_last_seq = k->seq;
		c->ws.audio_pending = k->seq < a->seq;
	}
	pthread_mutex_unlock(&a->lock);
	int rc = 0;
	if (len) {
		rc = lws_write(c->wsi, p, len, LWS_WRITE_BINARY) < 0 ? -1 : 1;
		a->sent++;
	}
	free(buf);
	return rc;
}

int
serve_audio_record(struct serve *s, bool on, uint64_t *from_seq)
{
	struct serve_audio *a = s->audio;
	if (!a)
		return -EOPNOTSUPP;
	if (on) {
		pthread_mutex_lock(&a->lock);
		*from_seq = a->seq; /* from the next packet on */
		pthread_mutex_unlock(&a->lock);
	}
	set_want(a, 0, on ? 1 : -1); /* the recorder takes the PCM of every packet */
	return 0;
}

long
serve_audio_next(struct serve *s, uint64_t *seq, int16_t *pcm, size_t frames, uint64_t *ts_us)
{
	struct serve_audio *a = s->audio;
	if (!a)
		return 0;
	long n = 0;
	pthread_mutex_lock(&a->lock);
	uint64_t next = *seq + 1;
	if (a->seq >= SERVE_AUDIO_RING && next <= a->seq - SERVE_AUDIO_RING)
		next = a->seq - SERVE_AUDIO_RING + 1; /* too far behind: skip ahead */
	if (next <= a->seq) {
		const struct audio_packet *k = &a->ring[next % SERVE_AUDIO_RING];
		n = (long)(frames < FRAMES ? frames : FRAMES);
		memcpy(pcm, k->pcm, (size_t)n * CHANNELS * sizeof(int16_t));
		*ts_us = k->ts_us;
		*seq = k->seq;
	}
	pthread_mutex_unlock(&a->lock);
	return n;
}

void
serve_audio_stats(struct serve *s, unsigned *listeners, uint64_t *sent, bool *capturing)
{
	struct serve_audio *a = s->audio;
	*listeners = 0;
	*sent = 0;
	*capturing = false;
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	*listeners = a->want_opus + a->want_pcm;
	*capturing = a->capturing;
	pthread_mutex_unlock(&a->lock);
	*sent = a->sent;
}

void
serve_audio_free(struct serve *s)
{
	struct serve_audio *a = s->audio;
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	if (a->started)
		pthread_join(a->thread, NULL);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	free(a);
	s->audio = NULL;
}
