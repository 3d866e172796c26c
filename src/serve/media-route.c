/*
 * DESIGN: GET /api/media and POST /api/media (docs/api.md, docs/power.md "Virtual media"): an
 * image uploaded from the page onto the USB stick in the unit's switchable port, with the same
 * order and refusals as `okvm media write` (src/cli/cmd_media.c) and the same writer
 * (src/power/media.c).
 *
 * The body is the image (Content-Length required); lws hands it over in pieces, which the service
 * thread queues for the worker thread ("okvm-media", started with the upload), which writes them
 * to a spool file (mkstemps in [media] spool_dir, else $TMPDIR, else /var/tmp): never the whole
 * image in memory (the queue holds at most about SPOOL_HIGH; above it the upload's socket is
 * not read, lws_rx_flow_control, until the worker has caught up), never a disk write on the
 * service thread (a slow spool disk, an SD card under the kernel's dirty-page throttling, would
 * stall every stream and every key), and a cut upload writes nothing to the medium. What can be
 * refused before a byte of the body is read is refused then: a job under way (409), a body the
 * spool folder has no room for (507), and, when the stick is on the host now, a mounted stick
 * (409) or a raw image larger than it (413). Once the body is complete a worker thread
 * ("okvm-media") does what the CLI does: check the image (a compressed one unpacked to nowhere
 * and counted), switch the port to the host, find the stick, refuse a mounted one, one not in the
 * port (disk= without force=1) or one too small (the port goes back to the target: nothing was
 * written), write, fsync, read back and compare SHA-256, switch to the target, and with boot=1
 * power-cycle (power-route.c). The backend's usb_switch belongs to the service thread, so the
 * worker asks for the switch there (media_route_drain) and waits for the state to show it.
 *
 * One job at a time. GET answers the stick and the job (phase upload, check, switch, write,
 * verify, boot, done or failed; bytes, MB/s, ETA, the result). POST ?action=cancel ends the
 * upload (its connection closed) or stops the worker at the next 1 MiB.
 * Threads: the service thread; the worker under the lock. The worker owns the spool file and
 * ends every job, a cut or cancelled upload's too (the service thread says why: cut_msg).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lib/strnum.h"
#include "lib/thread.h"
#include "lib/xalloc.h"
#include "okvm/discover.h"
#include "okvm/log.h"
#include "power/media.h"
#include "power/power.h"
#include "serve/internal.h"

#define FIND_TIMEOUT_MS 15000  /* a stick enumerating after the switch (as the CLI) */
#define SWITCH_TIMEOUT_MS 5000 /* the backend moving the port */
#define SPOOL_MARGIN (16ull * 1024 * 1024)
#define SPOOL_HIGH (4u << 20)  /* queued body bytes: the upload's socket is not read above it */
#define SPOOL_LOW (1u << 20)   /* ... and read again below it */
#define SPOOL_CHUNK (1u << 20) /* what the worker takes off the queue per write */
/* lws_get_urlarg_by_name stops at the first argument longer than its buffer: room for all */
#define URLARG_MAX (PATH_MAX + 16)

struct serve_media {
	struct serve *s;
	bool emu;
	char *emu_file;   /* -d emu --emu-media FILE: the virtual stick; NULL: none */
	char *unit_chain; /* discovery: the unit's port chain (NULL: the first unit) */
	char *spool_dir;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* the job (lock) */
	bool busy, joinable, started;
	pthread_t worker;
	char phase[16];
	uint64_t done, total;
	double t0; /* of the phase */
	char error[400], result[200], sha256[65], name[128], device[PATH_MAX], disk[PATH_MAX];
	bool boot, force, cancelled;
	bool worker_spool; /* the worker owns the spool file: job_end unlinks it */
	volatile int cancel;
	bool stopping; /* okvm serve stops: the worker leaves the upload */
	/* the body on its way to the spool (lock): the service thread appends, the worker takes */
	uint8_t *q;
	size_t q_cap, q_off, q_len;
	uint64_t received;        /* body bytes the service thread has queued */
	bool body_done, body_cut; /* the whole body came / the upload ended early (cut_msg) */
	bool paused, resume;      /* the upload's socket is not read / may be again (worker asks) */
	bool spool_failed;        /* the worker could not write the spool: the job ended (error) */
	char cut_msg[200];
	int spool_delay_ms; /* OKVM_MEDIA_SPOOL_DELAY_MS: a test hook, a slow spool disk */
	int delay_ms;       /* OKVM_MEDIA_DELAY_MS: the CLI's test hook */
	/* the switch the worker asked for (lock) */
	bool sw_req, sw_answered;
	enum okvm_usb_dir sw_to;
	int sw_rc;
	bool usb_known;
	enum okvm_usb_dir usb;
	/* the upload (service thread) */
	struct conn *up;
	/* the spool file: made by the service thread at the upload's start, then the worker's */
	int spool_fd;
	char spool[PATH_MAX];
};

static double
now_s(void)
{
	return (double)serve_now_us() / 1e6;
}

void
serve_set_media(struct serve *s, const struct serve_media_config *mc)
{
	struct serve_media *m = xcalloc(1, sizeof(*m));
	m->s = s;
	m->emu = mc->emu;
	m->emu_file = xstrdup_or_null(mc->emu_file);
	m->unit_chain = xstrdup_or_null(mc->unit_chain);
	const char *dir = s->cfg.media_spool_dir;
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	m->spool_dir = xstrdup(dir && *dir ? dir : "/var/tmp");
	m->spool_fd = -1;
	const char *delay = getenv("OKVM_MEDIA_DELAY_MS"); /* test hook: a slow medium */
	long ms = 0;
	if (delay && str_to_long(delay, 10, 0, 10000, &ms))
		m->delay_ms = (int)ms;
	delay = getenv("OKVM_MEDIA_SPOOL_DELAY_MS"); /* test hook: a slow spool disk */
	ms = 0;
	if (delay && str_to_long(delay, 10, 0, 10000, &ms))
		m->spool_delay_ms = (int)ms;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	s->media = m;
}

void
serve_media_stop(struct serve *s)
{
	struct serve_media *m = s->media;
	if (!m)
		return;
	flag_set(&m->cancel, 1); /* a write under way stops at the next chunk */
	pthread_mutex_lock(&m->lock);
	m->stopping = true; /* an upload under way ends */
	pthread_cond_broadcast(&m->cond);
	bool join = m->joinable;
	m->joinable = false;
	pthread_mutex_unlock(&m->lock);
	if (join)
		pthread_join(m->worker, NULL);
}

void
serve_media_free(struct serve *s)
{
	struct serve_media *m = s->media;
	if (!m)
		return;
	serve_media_stop(s);
	free(m->q);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m->emu_file);
	free(m->unit_chain);
	free(m->spool_dir);
	free(m);
	s->media = NULL;
}

/* ---- the stick ---- */

/* The block device in the unit's switchable port now (media_port_device()). Any thread. */
static int
port_device(struct serve_media *m, char *path, size_t n, char *unit, size_t un)
{
	return media_port_device(m->emu, m->emu_file, m->unit_chain, path, n, unit, un);
}

static const char *
usb_name(bool known, enum okvm_usb_dir d)
{
	return !known ? "unknown" : d == OKVM_USB_TO_HOST ? "host" : "target";
}

/* ---- the worker ---- */

static void
set_phase(struct serve_media *m, const char *phase, uint64_t done, uint64_t total)
{
	pthread_mutex_lock(&m->lock);
	snprintf(m->phase, sizeof(m->phase), "%s", phase);
	m->done = done;
	m->total = total;
	m->t0 = now_s();
	pthread_mutex_unlock(&m->lock);
}

static void
on_progress(void *ud, const char *phase, uint64_t done, uint64_t total, double secs)
{
	struct serve_media *m = ud;
	pthread_mutex_lock(&m->lock);
	if (strcmp(m->phase, phase)) {
		snprintf(m->phase, sizeof(m->phase), "%s", phase);
		m->t0 = now_s() - secs;
	}
	m->done = done;
	m->total = total;
	pthread_mutex_unlock(&m->lock);
}

/* Ask the service thread to move the port and wait until the state shows it there. */
static int
switch_port(struct serve_media *m, enum okvm_usb_dir to)
{
	pthread_mutex_lock(&m->lock);
	m->sw_req = true;
	m->sw_answered = false;
	m->sw_to = to;
	pthread_mutex_unlock(&m->lock);
	int rc = -ETIMEDOUT;
	double end = now_s() + SWITCH_TIMEOUT_MS / 1000.0;
	while (now_s() < end && !flag_get(&m->cancel)) {
		lws_cancel_service(m->s->ctx); /* media_route_drain: the switch, the state */
		pthread_mutex_lock(&m->lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&m->cond, &m->lock, &ts);
		bool there = m->sw_answered && m->usb_known && m->usb == to;
		int src = m->sw_answered ? m->sw_rc : 0;
		pthread_mutex_unlock(&m->lock);
		if (src < 0) {
			rc = src;
			break;
		}
		if (there) {
			rc = 0;
			break;
		}
	}
	if (flag_get(&m->cancel) && rc == -ETIMEDOUT)
		rc = -EINTR;
	pthread_mutex_lock(&m->lock);
	m->sw_req = false;
	pthread_mutex_unlock(&m->lock);
	if (!rc)
		okvm_log(OKVM_LOG_NOTICE, "media: usb switch: %s",
			 to == OKVM_USB_TO_HOST ? "host" : "target");
	return rc;
}

static void
job_end(struct serve_media *m, const char *error, const char *result)
{
	pthread_mutex_lock(&m->lock);
	if (m->spool_fd >= 0)
		close(m->spool_fd);
	m->spool_fd = -1;
	if (m->worker_spool)
		unlink(m->spool); /* before busy goes: the next upload picks a new name */
	m->worker_spool = false;
	free(m->q); /* the queue is empty or given up now */
	m->q = NULL;
	m->q_cap = m->q_off = m->q_len = 0;
	snprintf(m->phase, sizeof(m->phase), "%s", error ? "failed" : "done");
	if (error) /* bounded: callers' buffers are larger (the release build's -Wformat-truncation) */
		snprintf(m->error, sizeof(m->error), "%.*s", (int)sizeof(m->error) - 1, error);
	if (result)
		snprintf(m->result, sizeof(m->result), "%.*s", (int)sizeof(m->result) - 1, result);
	m->busy = false;
	pthread_mutex_unlock(&m->lock);
	okvm_log(error ? OKVM_LOG_WARN : OKVM_LOG_NOTICE, "audit: media write %s: %s", m->name,
		 error ? error : result);
	serve_notify_state(m->s);
}

/* A refusal after the switch to the host: nothing was written, the stick goes back. */
static void
refused(struct serve_media *m, const char *msg)
{
	set_phase(m, "switch", 0, 0);
	switch_port(m, OKVM_USB_TO_TARGET);
	job_end(m, msg, NULL);
}

static int
find_device(struct serve_media *m, char *port, size_t n, char *unit, size_t un)
{
	for (int waited = 0;; waited += 250) {
		int rc = port_device(m, port, n, unit, un);
		if (rc != 0 || m->emu || waited >= FIND_TIMEOUT_MS || flag_get(&m->cancel))
			return rc;
		poll(NULL, 0, 250);
	}
}

static void
run_job(struct serve_media *m)
{
	char msg[sizeof(m->error)];
	struct media_job j = { .image = m->spool,
			       .cancel = &m->cancel,
			       .progress = on_progress,
			       .ud = m,
			       .chunk_delay_ms = m->delay_ms };
	set_phase(m, "check", 0, 0);
	int rc = media_image_size(&j, &j.image_size);
	if (rc == -EINTR)
		return job_end(m, "media: cancelled while checking the image: nothing written",
			       NULL);
	if (rc < 0) {
		/* j.err names the spool file: the user knows the image by its name */
		const char *why = strstr(j.err, ": ");
		snprintf(msg, sizeof(msg), "media: %s%s", m->name, why ? why : ": cannot be read");
		return job_end(m, msg, NULL);
	}
	set_phase(m, "switch", 0, 0);
	if ((rc = switch_port(m, OKVM_USB_TO_HOST)) < 0) {
		snprintf(msg, sizeof(msg),
			 "media: the USB switch did not move to the host (%s): "
			 "nothing written",
			 rc == -EINTR ? "cancelled" : strerror(-rc));
		return job_end(m, msg, NULL);
	}
	char port[PATH_MAX] = "", unit[96] = "";
	int found = find_device(m, port, sizeof(port), unit, sizeof(unit));
	if (found < 0) {
		snprintf(msg, sizeof(msg), "media: %s", unit);
		return refused(m, msg);
	}
	const char *dev = port;
	if (m->disk[0]) {
		if (media_check_disk(m->disk, port, unit, m->force, "--force (force=1)", msg,
				     sizeof(msg)))
			return refused(m, msg);
		dev = m->disk;
	} else if (!found) {
		snprintf(msg, sizeof(msg), "media: no USB stick in %s's switchable port%s", unit,
			 m->emu ? " (give -d emu --emu-media FILE)"
				: " (okvm list shows what is there; --disk DEV)");
		return refused(m, msg);
	}
	if (media_check_device(dev, m->name, j.image_size, true, NULL, msg, sizeof(msg)))
		return refused(m, msg);
	pthread_mutex_lock(&m->lock);
	snprintf(m->device, sizeof(m->device), "%s", dev);
	pthread_mutex_unlock(&m->lock);
	okvm_log(OKVM_LOG_NOTICE, "media: writing %s (%s) to %s", m->name,
		 media_codec_name(media_codec_of(m->spool)), dev);
	j.device = dev;
	set_phase(m, "write", 0, j.image_size);
	rc = media_write(&j);
	if (rc < 0) {
		pthread_mutex_lock(&m->lock);
		m->done = j.written; /* what the error says (progress comes every 250 ms) */
		pthread_mutex_unlock(&m->lock);
	}
	if (rc == -EINTR) {
		char a[32];
		media_human(j.written, a, sizeof(a));
		snprintf(msg, sizeof(msg),
			 "media: cancelled after %llu of %llu bytes (%s): the medium is not "
			 "bootable; the port stays at the host",
			 (unsigned long long)j.written, (unsigned long long)j.image_size, a);
		return job_end(m, msg, NULL);
	}
	if (rc < 0) {
		snprintf(msg, sizeof(msg),
			 "media: %s; the medium is not bootable; the port stays at the host",
			 j.err);
		return job_end(m, msg, NULL);
	}
	char result[200];
	snprintf(result, sizeof(result),
		 "written %llu bytes in %.2f s (%.1f MB/s), verified: sha256 %s",
		 (unsigned long long)j.written, j.write_secs,
		 j.write_secs > 0 ? (double)j.written / 1e6 / j.write_secs : 0, j.sha256);
	pthread_mutex_lock(&m->lock);
	snprintf(m->sha256, sizeof(m->sha256), "%s", j.sha256);
	snprintf(m->result, sizeof(m->result), "%s", result);
	pthread_mutex_unlock(&m->lock);
	set_phase(m, "switch", 0, 0);
	if ((rc = switch_port(m, OKVM_USB_TO_TARGET)) < 0) {
		snprintf(msg, sizeof(msg),
			 "media: %s, but the USB switch did not move to the target (%s)", result,
			 strerror(-rc));
		return job_end(m, msg, NULL);
	}
	if (m->boot) {
		set_phase(m, "boot", 0, 0);
		char pmsg[200] = "";
		rc = serve_power_run(m->s, POWER_ACT_CYCLE, &m->cancel, pmsg, sizeof(pmsg));
		if (rc < 0) {
			snprintf(msg, sizeof(msg),
				 "media: written and verified, but the power cycle failed: %s",
				 pmsg[0] ? pmsg : strerror(-rc));
			return job_end(m, msg, NULL);
		}
		size_t l = strlen(result);
		snprintf(result + l, sizeof(result) - l, "; power cycle: %s", pmsg);
	}
	pthread_mutex_lock(&m->lock);
	m->done = m->total = j.written; /* what the result says */
	pthread_mutex_unlock(&m->lock);
	job_end(m, NULL, result);
}

/* The upload: the queued body into the spool file. 0 when all of it is there (the file closed);
 * else the job has ended (the upload was cut or cancelled, the spool could not be written,
 * okvm serve stops). */
static int
spool_body(struct serve_media *m)
{
	uint8_t *buf = xmalloc(SPOOL_CHUNK);
	char msg[PATH_MAX + 96] = "";
	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (!m->q_len && !m->body_done && !m->body_cut && !m->stopping)
			pthread_cond_wait(&m->cond, &m->lock);
		if (flag_get(&m->cancel) && m->body_done &&
		    !m->body_cut) { /* the body was in: no cut */
			m->body_cut = true;
			snprintf(m->cut_msg, sizeof(m->cut_msg),
				 "media: cancelled during the upload after %llu of %llu bytes: "
				 "nothing written to the medium",
				 (unsigned long long)m->done, (unsigned long long)m->total);
		}
		if (m->body_cut || m->stopping) {
			snprintf(msg, sizeof(msg), "%s",
				 m->body_cut
					 ? m->cut_msg
					 : "media: okvm serve stopped during the upload: nothing "
					   "written to the medium");
			break;
		}
		if (!m->q_len) /* body_done: all of it is in the file */
			break;
		size_t n = m->q_len < SPOOL_CHUNK ? m->q_len : SPOOL_CHUNK;
		memcpy(buf, m->q + m->q_off, n);
		m->q_off += n;
		m->q_len -= n;
		if (!m->q_len)
			m->q_off = 0;
		bool resume = m->paused && !m->resume && m->q_len < SPOOL_LOW;
		if (resume)
			m->resume = true;
		pthread_mutex_unlock(&m->lock);
		if (resume)
			lws_cancel_service(
				m->s->ctx); /* media_route_drain reads the socket again */
		if (m->spool_delay_ms)
			poll(NULL, 0, m->spool_delay_ms);
		int err = 0;
		for (size_t off = 0; off < n && !err;) {
			ssize_t w = write(m->spool_fd, buf + off, n - off);
			if (w < 0 && errno != EINTR)
				err = errno;
			else if (w > 0)
				off += (size_t)w;
		}
		pthread_mutex_lock(&m->lock);
		if (err) {
			snprintf(msg, sizeof(msg),
				 "media: the spool file in %s: %s: nothing written to the medium",
				 m->spool_dir, strerror(err));
			m->spool_failed = true;
			break;
		}
		m->done += n;
	}
	pthread_mutex_unlock(&m->lock);
	free(buf);
	if (msg[0]) {
		job_end(m, msg, NULL);
		if (m->spool_failed)
			lws_cancel_service(m->s->ctx); /* media_route_drain answers the upload */
		return -1;
	}
	pthread_mutex_lock(&m->lock);
	close(m->spool_fd);
	m->spool_fd = -1;
	free(m->q);
	m->q = NULL;
	m->q_cap = m->q_off = 0;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void *
worker_main(void *arg)
{
	struct serve_media *m = arg;
	if (spool_body(m) == 0)
		run_job(m);
	return NULL;
}

/* ---- the service thread ---- */

void
media_route_drain(struct serve *s)
{
	struct serve_media *m = s->media;
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	/* The worker caught up with the upload, or gave up on it (the next piece of the body
	 * gets the answer): read its socket again. */
	bool resume = m->paused && (m->resume || m->spool_failed);
	if (resume)
		m->paused = m->resume = false;
	pthread_mutex_unlock(&m->lock);
	if (resume && m->up)
		lws_rx_flow_control(m->up->wsi, 1);
	pthread_mutex_lock(&m->lock);
	bool req = m->sw_req && !m->sw_answered;
	enum okvm_usb_dir to = m->sw_to;
	bool waiting = m->sw_req;
	pthread_mutex_unlock(&m->lock);
	if (!waiting)
		return;
	int rc = 0;
	if (req)
		rc = s->be.ops->usb_switch ? s->be.ops->usb_switch(s->be.ud, to) : -EOPNOTSUPP;
	struct serve_state st = { 0 };
	s->be.ops->get_state(s->be.ud, &st);
	pthread_mutex_lock(&m->lock);
	if (req) {
		m->sw_answered = true;
		m->sw_rc = rc;
	}
	m->usb_known = st.usb_known;
	m->usb = st.usb;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void
add_u64(cJSON *o, const char *k, uint64_t v)
{
	cJSON_AddNumberToObject(o, k, (double)v);
}

/* The stick now, as `okvm media status` tells it. */
static cJSON *
stick_object(struct serve_media *m)
{
	cJSON *o = cJSON_CreateObject();
	char port[PATH_MAX] = "", unit[96] = "";
	int found = port_device(m, port, sizeof(port), unit, sizeof(unit));
	cJSON_AddBoolToObject(o, "present", found > 0);
	cJSON_AddStringToObject(o, "unit", unit);
	struct serve_state st = { 0 };
	m->s->be.ops->get_state(m->s->be.ud, &st);
	cJSON_AddStringToObject(o, "usb", usb_name(st.usb_known, st.usb));
	if (found > 0) {
		cJSON_AddStringToObject(o, "device", port);
		uint64_t size = 0;
		if (media_device_size(port, &size) == 0)
			add_u64(o, "size", size);
		char where[PATH_MAX + 64];
		int rc = media_mounted(port, NULL, where, sizeof(where));
		if (rc > 0)
			cJSON_AddStringToObject(o, "mounted", where);
		else
			cJSON_AddBoolToObject(o, "mounted", false);
	} else {
		cJSON_AddStringToObject(o, "hint",
					m->emu ? "give -d emu --emu-media FILE"
					       : "none on the host (the port points to the target, "
						 "or nothing is plugged in)");
	}
	return o;
}

static cJSON *
job_object(struct serve_media *m)
{
	pthread_mutex_lock(&m->lock);
	if (!m->started) {
		pthread_mutex_unlock(&m->lock);
		return cJSON_CreateNull();
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "phase", m->phase);
	cJSON_AddStringToObject(o, "name", m->name);
	cJSON_AddBoolToObject(o, "boot", m->boot);
	add_u64(o, "done", m->done);
	add_u64(o, "total", m->total);
	double secs = now_s() - m->t0;
	double rate = secs > 0 ? (double)m->done / 1e6 / secs : 0;
	bool running = m->busy;
	cJSON_AddNumberToObject(o, "mb_s", running ? rate : 0);
	if (running && rate > 0 && m->total > m->done)
		cJSON_AddNumberToObject(o, "eta_s", (double)(m->total - m->done) / 1e6 / rate);
	if (m->device[0])
		cJSON_AddStringToObject(o, "device", m->device);
	if (m->sha256[0])
		cJSON_AddStringToObject(o, "sha256", m->sha256);
	if (m->result[0])
		cJSON_AddStringToObject(o, "result", m->result);
	if (m->error[0])
		cJSON_AddStringToObject(o, "error", m->error);
	cJSON_AddBoolToObject(o, "cancelled", m->cancelled);
	pthread_mutex_unlock(&m->lock);
	return o;
}

static int
do_get(struct conn *c, struct serve_media *m)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "available", true);
	pthread_mutex_lock(&m->lock);
	cJSON_AddBoolToObject(o, "busy", m->busy);
	pthread_mutex_unlock(&m->lock);
	cJSON_AddItemToObject(o, "stick", stick_object(m));
	cJSON_AddItemToObject(o, "job", job_object(m));
	cJSON_AddStringToObject(o, "spool_dir", m->spool_dir);
	return http_reply_object(c, 200, o);
}

static int
do_cancel(struct conn *c, struct serve_media *m)
{
	pthread_mutex_lock(&m->lock);
	bool busy = m->busy;
	char phase[16];
	snprintf(phase, sizeof(phase), "%s", m->phase);
	if (busy) {
		m->cancelled = true;
		flag_set(&m->cancel, 1);
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->lock);
	if (!busy)
		return http_reply_error(c, 409, "media: no write is under way: nothing to cancel");
	audit(c, "media cancel (%s)", phase);
	if (m->up) /* the upload: its connection goes; media_route_closed says so */
		lws_set_timeout(m->up->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", true);
	cJSON_AddStringToObject(o, "phase", phase);
	cJSON_AddStringToObject(
		o, "message",
		!strcmp(phase, "upload") || !strcmp(phase, "check")
			? "cancelled: nothing was written to the medium"
			: "cancelling: the medium is not bootable until written again");
	return http_reply_object(c, 200, o);
}

/* What the extension says the image is: the spool file keeps it (media_codec_of). */
static const char *
ext_of(const char *name)
{
	switch (media_codec_of(name)) {
	case MEDIA_GZ: return ".gz";
	case MEDIA_XZ: return ".xz";
	case MEDIA_ZST: return ".zst";
	default: return ".img";
	}
}

/* The checks before a byte of the body is read: 0, or an answer sent (1). */
static int
precheck(struct conn *c, struct serve_media *m, const char *name, uint64_t len)
{
	char msg[sizeof(m->error)];
	pthread_mutex_lock(&m->lock);
	bool busy = m->busy;
	char phase[16];
	snprintf(phase, sizeof(phase), "%s", m->phase);
	pthread_mutex_unlock(&m->lock);
	if (busy) {
		snprintf(msg, sizeof(msg),
			 "media: another write is under way (%s); wait for it or cancel it "
			 "(POST /api/media?action=cancel)",
			 phase);
		http_reply_error(c, 409, msg);
		return 1;
	}
	if (!len) {
		snprintf(msg, sizeof(msg), "media: %s is empty: nothing to write", name);
		http_reply_error(c, 400, msg);
		return 1;
	}
	struct statvfs vfs;
	if (statvfs(m->spool_dir, &vfs) < 0) {
		snprintf(msg, sizeof(msg),
			 "media: the spool folder %s: %s; set [media] spool_dir in okvm.conf",
			 m->spool_dir, strerror(errno));
		http_reply_error(c, 507, msg);
		return 1;
	}
	uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (len + SPOOL_MARGIN > avail) {
		char a[32], b[32];
		media_human(len, a, sizeof(a));
		media_human(avail, b, sizeof(b));
		snprintf(msg, sizeof(msg),
			 "media: %s (%s) does not fit in the spool folder %s (%s free): refused; "
			 "set [media] spool_dir in okvm.conf to a larger one",
			 name, a, m->spool_dir, b);
		http_reply_error(c, 507, msg);
		return 1;
	}
	/* The stick, if the host sees it now (the virtual one always; a real one while the port
	 * points to the host): what can be refused now is refused before the upload. */
	char port[PATH_MAX] = "", unit[96] = "";
	struct serve_state st = { 0 };
	c->s->be.ops->get_state(c->s->be.ud, &st);
	int found = port_device(m, port, sizeof(port), unit, sizeof(unit));
	if (found > 0 && (m->emu || (st.usb_known && st.usb == OKVM_USB_TO_HOST))) {
		bool raw = media_codec_of(name) == MEDIA_RAW;
		const char *dev = m->disk[0] ? m->disk : port;
		if (m->disk[0] && media_check_disk(m->disk, port, unit, m->force,
						   "--force (force=1)", msg, sizeof(msg))) {
			http_reply_error(c, 403, msg);
			return 1;
		}
		if (media_check_device(dev, name, len, raw, NULL, msg, sizeof(msg))) {
			http_reply_error(c, strstr(msg, "does not fit") ? 413 : 409, msg);
			return 1;
		}
	} else if (found == 0 && m->emu) {
		snprintf(msg, sizeof(msg),
			 "media: no USB stick in %s's switchable port (give -d emu --emu-media "
			 "FILE)",
			 unit);
		http_reply_error(c, 409, msg);
		return 1;
	}
	return 0;
}

static bool
flag(struct conn *c, const char *name)
{
	char buf[URLARG_MAX];
	const char *v = lws_get_urlarg_by_name(c->wsi, name, buf, sizeof(buf));
	return v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"));
}

/* POST /api/media?name=...: the upload starts (or is refused). */
static int
begin_upload(struct conn *c, struct serve_media *m, const char *cl)
{
	char name[sizeof(m->name)], arg[URLARG_MAX], dbuf[URLARG_MAX];
	const char *n = lws_get_urlarg_by_name(c->wsi, "name=", arg, sizeof(arg));
	/* a name, not a path */
	snprintf(name, sizeof(name), "%s", !n ? "" : strrchr(n, '/') ? strrchr(n, '/') + 1 : n);
	for (char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?'; /* it goes into the log and the messages */
	if (!name[0])
		snprintf(name, sizeof(name), "image.img");
	const char *d = lws_get_urlarg_by_name(c->wsi, "disk=", dbuf, sizeof(dbuf));
	if (d && *d && c->role < SERVE_ROLE_ADMIN)
		return http_reply_error(c, 403, "media: disk= needs the role admin");
	if (!cl[0])
		return http_reply_error(c, 411,
					"media: the body is the image: send it with a "
					"Content-Length");
	uint64_t len = strtoull(cl, NULL, 10);
	bool force = flag(c, "force="), boot = flag(c, "boot=");
	if (boot && !c->s->power)
		return http_reply_error(c, 400,
					"media: boot=1 needs power control (docs/power.md); "
					"none is configured");
	/* precheck reads m->disk/force */
	pthread_mutex_lock(&m->lock);
	bool busy = m->busy;
	if (!busy) {
		snprintf(m->disk, sizeof(m->disk), "%s", d && *d ? d : "");
		m->force = force;
	}
	pthread_mutex_unlock(&m->lock);
	if (!busy && d && *d && access(d, F_OK) < 0) {
		char msg[PATH_MAX + 64];
		snprintf(msg, sizeof(msg), "media: disk=%s: %s", d, strerror(errno));
		return http_reply_error(c, 400, msg);
	}
	if (precheck(c, m, name, len))
		return 0;
	snprintf(m->spool, sizeof(m->spool), "%s/okvm-media-XXXXXX%s", m->spool_dir, ext_of(name));
	int fd = mkostemps(m->spool, (int)strlen(ext_of(name)), O_CLOEXEC);
	if (fd < 0) {
		char msg[PATH_MAX + 96];
		snprintf(msg, sizeof(msg),
			 "media: cannot create a spool file in %s: %s; set [media] spool_dir in "
			 "okvm.conf",
			 m->spool_dir, strerror(errno));
		return http_reply_error(c, 507, msg);
	}
	pthread_mutex_lock(&m->lock);
	bool join = m->joinable;
	m->joinable = false;
	pthread_mutex_unlock(&m->lock);
	if (join)
		pthread_join(m->worker, NULL); /* the last job has ended: busy was false */
	m->spool_fd = fd;
	pthread_mutex_lock(&m->lock);
	m->worker_spool = true; /* the worker's: job_end closes and unlinks it */
	m->q_off = m->q_len = 0;
	m->received = 0;
	m->body_done = m->body_cut = m->paused = m->resume = m->spool_failed = false;
	m->busy = m->started = true;
	flag_set(&m->cancel, 0);
	m->cancelled = false;
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->boot = boot;
	m->error[0] = m->result[0] = m->sha256[0] = m->device[0] = 0;
	snprintf(m->phase, sizeof(m->phase), "upload");
	m->done = 0;
	m->total = len;
	m->t0 = now_s();
	pthread_mutex_unlock(&m->lock);
	int rc = thread_start(&m->worker, "okvm-media", worker_main, m);
	if (rc) {
		job_end(m, "media: cannot start the writer thread", NULL);
		return http_reply_error(c, 503, "media: cannot start the writer thread");
	}
	pthread_mutex_lock(&m->lock);
	m->joinable = true;
	pthread_mutex_unlock(&m->lock);
	m->up = c;
	c->http.media_upload = true;
	audit(c, "media upload name=%s bytes=%llu%s", name, (unsigned long long)len,
	      boot ? " boot" : "");
	serve_notify_state(c->s);
	return 0;
}

int
media_route_request(struct conn *c, const char *cl)
{
	struct serve_media *m = c->s->media;
	if (!m)
		return http_reply_error(c, c->http.is_post ? 503 : 404,
					"media: no unit to write virtual media to (docs/power.md)");
	char buf[URLARG_MAX];
	const char *action = lws_get_urlarg_by_name(c->wsi, "action=", buf, sizeof(buf));
	if (!c->http.is_post || action)
		guard_received(c->s, c->wsi); /* no body to wait for */
	if (!c->http.is_post)
		return do_get(c, m);
	if (c->role < SERVE_ROLE_OPERATOR)
		return http_reply_error(c, 403, "/api/media needs the role operator");
	if (action && !strcmp(action, "cancel"))
		return do_cancel(c, m);
	if (action && strcmp(action, "check"))
		return http_reply_error(c, 400, "media: action is cancel or check");
	if (action) { /* the upload's checks without the upload: ?action=check&name=&size= */
		char sz[URLARG_MAX], name[URLARG_MAX];
		const char *n = lws_get_urlarg_by_name(c->wsi, "name=", name, sizeof(name));
		const char *z = lws_get_urlarg_by_name(c->wsi, "size=", sz, sizeof(sz));
		if (!z || strspn(z, "0123456789") != strlen(z) || !*z)
			return http_reply_error(c, 400, "media: check needs size=BYTES");
		char nm[sizeof(m->name)];
		snprintf(nm, sizeof(nm), "%s",
			 !n || !*n         ? "image.img"
			 : strrchr(n, '/') ? strrchr(n, '/') + 1
					   : n);
		if (precheck(c, m, nm, strtoull(z, NULL, 10)))
			return 0;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddBoolToObject(o, "ok", true);
		cJSON_AddItemToObject(o, "stick", stick_object(m));
		return http_reply_object(c, 200, o);
	}
	return begin_upload(c, m, cl);
}

/* The upload ends early: the worker ends the job with msg (it owns the spool file). */
static void
cut_upload(struct serve_media *m, const char *msg)
{
	if (m->up)
		m->up->http.media_upload = false;
	m->up = NULL;
	pthread_mutex_lock(&m->lock);
	snprintf(m->cut_msg, sizeof(m->cut_msg), "%s", msg);
	m->body_cut = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* The worker could not write the spool (the job has ended): the upload gets its error. */
static int
spool_refused(struct conn *c, struct serve_media *m)
{
	char msg[sizeof(m->error)];
	pthread_mutex_lock(&m->lock);
	snprintf(msg, sizeof(msg), "%s", m->error);
	pthread_mutex_unlock(&m->lock);
	c->http.media_upload = false;
	m->up = NULL;
	return http_reply_error(c, 507, msg);
}

int
media_route_body(struct conn *c, const void *in, size_t len)
{
	struct serve_media *m = c->s->media;
	if (m->up != c)
		return 0;
	pthread_mutex_lock(&m->lock);
	if (m->spool_failed) {
		pthread_mutex_unlock(&m->lock);
		return spool_refused(c, m);
	}
	if (m->q_off + m->q_len + len > m->q_cap) { /* room at the end: move the rest down */
		if (m->q_len && m->q_off)
			memmove(m->q, m->q + m->q_off, m->q_len);
		m->q_off = 0;
		if (m->q_len + len > m->q_cap) {
			m->q_cap = m->q_len + len > SPOOL_HIGH + SPOOL_CHUNK
					   ? m->q_len + len
					   : SPOOL_HIGH + SPOOL_CHUNK;
			m->q = xrealloc(m->q, m->q_cap);
		}
	}
	memcpy(m->q + m->q_off + m->q_len, in, len);
	m->q_len += len;
	m->received += len;
	bool pause = !m->paused && m->q_len >= SPOOL_HIGH;
	if (pause)
		m->paused = true, m->resume = false;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (pause) /* the worker is behind: lws reads no more of the body until it catches up */
		lws_rx_flow_control(c->wsi, 0);
	return 0;
}

int
media_route_body_done(struct conn *c)
{
	struct serve_media *m = c->s->media;
	c->http.media_upload = false;
	if (m->up != c)
		return 0;
	guard_received(c->s, c->wsi);
	c->http.dispatched = true;
	pthread_mutex_lock(&m->lock);
	bool failed = m->spool_failed;
	uint64_t got = m->received;
	if (!failed) {
		m->body_done = true; /* the worker finishes the spool, then the job */
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->lock);
	if (failed)
		return spool_refused(c, m);
	m->up = NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", true);
	cJSON_AddBoolToObject(o, "started", true);
	add_u64(o, "bytes", got);
	return http_reply_object(c, 202, o);
}

void
media_route_closed(struct conn *c)
{
	struct serve_media *m = c->s->media;
	if (!m || m->up != c)
		return;
	pthread_mutex_lock(&m->lock);
	uint64_t got = m->received, total = m->total;
	bool cancelled = m->cancelled;
	pthread_mutex_unlock(&m->lock);
	char msg[200];
	if (cancelled)
		snprintf(msg, sizeof(msg),
			 "media: cancelled during the upload after %llu of %llu bytes: nothing "
			 "written to the medium",
			 (unsigned long long)got, (unsigned long long)total);
	else
		snprintf(msg, sizeof(msg),
			 "media: the upload was cut after %llu of %llu bytes: nothing written to "
			 "the medium",
			 (unsigned long long)got, (unsigned long long)total);
	cut_upload(m, msg);
}
