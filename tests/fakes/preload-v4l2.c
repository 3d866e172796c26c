/*
 * DESIGN: an LD_PRELOAD library that plays a UVC capture device (the MS2109 of an Openterface
 * Mini-KVM) as uvcvideo presents it, for okvm's V4L2 source and for any other V4L2 program
 * (v4l2-ctl, ffmpeg, ustreamer: tests/integration/test_fakes_clients.py), on machines with no
 * V4L2 driver. It answers open/openat, ioctl, mmap, poll, select, close and the stat/access
 * family for one path and passes everything else to libc.
 *
 * Like the kernel, ioctl looks at the low 32 bits of the request (the kernel ABI's request is an
 * unsigned int; a program that passes it through an int gets it sign-extended). The ioctls are
 * the ones uvcvideo has (QUERYCAP, ENUM_FMT, G/S/TRY_FMT, ENUM_FRAMESIZES/INTERVALS, G/S_PARM,
 * ENUMINPUT, G/S_INPUT with the one "Camera 1" input, G_SELECTION with the crop bounds, CROPCAP as
 * the V4L2 core builds it from them, REQBUFS/QUERYBUF/QBUF/DQBUF/EXPBUF/STREAMON/OFF for MMAP
 * buffers, G/S_PRIORITY); the device has no controls (QUERYCTRL and friends: EINVAL), and what
 * uvcvideo lacks (G_STD, DV timings, tuners, audio) is ENOTTY. Buffers are memfds, so a program's
 * mmap is a real mapping that outlives close() as in the kernel, and EXPBUF hands out a dup of
 * one. A DQBUF on a blocking fd (no O_NONBLOCK) waits for the next frame.
 *
 * The device offers the MS2109-D default mode list (docs/hardware.md 4): MJPEG and YUYV
 * sizes and frame rates. Frames come at the negotiated rate from a timerfd (the fd okvm polls is
 * that timerfd, so poll() works unmodified); each tick fills the oldest queued buffer, and a
 * buffer that nobody queued in time means a dropped frame, as in the driver. MJPEG frames are
 * read from OKVM_FAKE_V4L2_DIR/WxH-*.jpg (sorted, looped) for the current size; YUYV frames are a
 * flat grey whose level is (frame number * 20) mod 256.
 *
 * Environment (read at each open):
 *   OKVM_FAKE_V4L2_PATH    device path to fake (default /dev/video0)
 *   OKVM_FAKE_V4L2_DIR     folder of frames
 *   OKVM_FAKE_V4L2_SCRIPT  faults, "K:event[,K:event]..." where K is the frame number (1-based,
 *                          counted over the whole run; 0 = every frame):
 *     eagain        the next DQBUF after frame K fails with EAGAIN once
 *     nodht         frame K is sent without its Huffman tables
 *     truncated     frame K is cut to 60% (no EOI)
 *     burst=N       frame K arrives together with the N-1 frames after it (one tick); when
 *                   buffers run out, the burst reuses the oldest filled one, so its last
 *                   frame always lands
 *     nosignal=MS   no frames for MS milliseconds from frame K on
 *     unplug=MS     at frame K the device vanishes (ENODEV, POLLERR); open fails with ENOENT
 *                   for MS milliseconds, then it is back (at OKVM_FAKE_V4L2_RENUMBER if that
 *                   is set: the kernel gave it another node; the old path stays gone)
 *     mode=WxH      from frame K on, the pictures are WxH (the source changed resolution)
 * Test hooks (found with dlsym): fake_v4l2_counter(name) -> "opens", "closes", "eagain", "dqbuf",
 * "produced", "dropped"; fake_v4l2_format(&fourcc, &w, &h, &fps).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/stat.h>
#include <linux/version.h>
#include <linux/videodev2.h>

#include "jpeg-strip.h"

#define NBUF_MAX 32 /* UVC_MAX_VIDEO_BUFFERS */
#define MAX_EVENTS 32
#define MAX_FILES 64

struct fmode {
	uint32_t fourcc;
	int w, h;
	int fps[6];
};

/* MS2109-D Table 3 defaults (docs/hardware.md 4). */
static const struct fmode modes[] = {
	{ V4L2_PIX_FMT_MJPEG, 1920, 1080, { 30, 25, 20, 10, 5 } },
	{ V4L2_PIX_FMT_MJPEG, 1600, 1200, { 30, 25, 20, 10, 5 } },
	{ V4L2_PIX_FMT_MJPEG, 1360, 768, { 30, 25, 20, 10, 5 } },
	{ V4L2_PIX_FMT_MJPEG, 1280, 1024, { 30, 25, 20, 10, 5 } },
	{ V4L2_PIX_FMT_MJPEG, 1280, 960, { 50, 30, 20, 10, 5 } },
	{ V4L2_PIX_FMT_MJPEG, 1280, 720, { 60, 50, 30, 20, 10 } },
	{ V4L2_PIX_FMT_MJPEG, 1024, 768, { 60, 50, 30, 20, 10 } },
	{ V4L2_PIX_FMT_MJPEG, 800, 600, { 60, 50, 30, 20, 10 } },
	{ V4L2_PIX_FMT_MJPEG, 720, 576, { 60, 50, 30, 20, 10 } },
	{ V4L2_PIX_FMT_MJPEG, 720, 480, { 60, 50, 30, 20, 10 } },
	{ V4L2_PIX_FMT_MJPEG, 640, 480, { 60, 50, 30, 20, 10 } },
	{ V4L2_PIX_FMT_YUYV, 1920, 1080, { 5 } },
	{ V4L2_PIX_FMT_YUYV, 1600, 1200, { 5 } },
	{ V4L2_PIX_FMT_YUYV, 1360, 768, { 8 } },
	{ V4L2_PIX_FMT_YUYV, 1280, 1024, { 8 } },
	{ V4L2_PIX_FMT_YUYV, 1280, 960, { 8 } },
	{ V4L2_PIX_FMT_YUYV, 1280, 720, { 10 } },
	{ V4L2_PIX_FMT_YUYV, 1024, 768, { 10 } },
	{ V4L2_PIX_FMT_YUYV, 800, 600, { 20, 10, 5 } },
	{ V4L2_PIX_FMT_YUYV, 720, 576, { 25, 20, 10, 5 } },
	{ V4L2_PIX_FMT_YUYV, 720, 480, { 30, 20, 10, 5 } },
	{ V4L2_PIX_FMT_YUYV, 640, 480, { 30, 20, 10, 5 } },
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

enum ev_kind { EV_EAGAIN, EV_NODHT, EV_TRUNC, EV_BURST, EV_NOSIGNAL, EV_UNPLUG, EV_MODE };
struct event {
	unsigned long k;
	enum ev_kind kind;
	int a, b;
	bool done;
};

enum { B_IDLE, B_QUEUED, B_DONE };
struct fbuf {
	uint8_t *mem; /* the fake's own mapping of memfd */
	int memfd;
	size_t len;
	bool mapped; /* the program mapped it */
	int state;
	unsigned long order; /* queue/done order */
	uint32_t used, seq;
	struct timeval ts;
};

struct pic {
	uint8_t *data;
	size_t size;
};

static struct {
	pthread_mutex_t lock;
	int fd;
	int prio;
	bool gone;
	bool renumbered; /* back after an unplug at OKVM_FAKE_V4L2_RENUMBER */
	char path[256];
	uint32_t fourcc;
	int w, h, fps;
	int pic_w, pic_h; /* mode=WxH override */
	struct fbuf bufs[NBUF_MAX];
	int nbufs;
	unsigned long order;
	bool streaming;
	unsigned long k; /* frames produced so far */
	bool eagain_pending;
	uint64_t nosignal_until, unplugged_until;
	struct event ev[MAX_EVENTS];
	int nev;
	char script[512];
	struct pic pics[MAX_FILES];
	int npics, pics_w, pics_h;
	unsigned long c_opens, c_closes, c_eagain, c_dqbuf, c_produced, c_dropped;
} F = { .lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP,
	.fd = -1 }; /* recursive: fopen of the pictures comes back through fopen() */

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_poll)(struct pollfd *, nfds_t, int);

static void
init_real(void)
{
	if (real_open)
		return;
	real_close = dlsym(RTLD_NEXT, "close");
	real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	real_mmap = dlsym(RTLD_NEXT, "mmap");
	real_poll = dlsym(RTLD_NEXT, "poll");
	real_openat = dlsym(RTLD_NEXT, "openat");
	real_open = dlsym(RTLD_NEXT, "open");
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- script ---- */

static void
parse_script(const char *s)
{
	if (!s)
		s = "";
	if (!strcmp(s, F.script))
		return;
	snprintf(F.script, sizeof(F.script), "%s", s);
	F.nev = 0;
	F.k = 0;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", s);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t && F.nev < MAX_EVENTS;
	     t = strtok_r(NULL, ",", &save)) {
		struct event e = { .k = strtoul(t, NULL, 10) };
		char *name = strchr(t, ':');
		if (!name)
			continue;
		name++;
		char *arg = strchr(name, '=');
		if (arg)
			*arg++ = 0;
		if (!strcmp(name, "eagain"))
			e.kind = EV_EAGAIN;
		else if (!strcmp(name, "nodht"))
			e.kind = EV_NODHT;
		else if (!strcmp(name, "truncated"))
			e.kind = EV_TRUNC;
		else if (!strcmp(name, "burst"))
			e.kind = EV_BURST;
		else if (!strcmp(name, "nosignal"))
			e.kind = EV_NOSIGNAL;
		else if (!strcmp(name, "unplug"))
			e.kind = EV_UNPLUG;
		else if (!strcmp(name, "mode"))
			e.kind = EV_MODE;
		else
			continue;
		if (arg && e.kind == EV_MODE)
			sscanf(arg, "%dx%d", &e.a, &e.b);
		else if (arg)
			e.a = atoi(arg);
		F.ev[F.nev++] = e;
	}
}

static struct event *
event_at(unsigned long k, enum ev_kind kind)
{
	for (int i = 0; i < F.nev; i++)
		if (F.ev[i].kind == kind && (F.ev[i].k == k || F.ev[i].k == 0) && !F.ev[i].done)
			return &F.ev[i];
	return NULL;
}

/* ---- pictures ---- */

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
load_pics(int w, int h)
{
	if (F.pics_w == w && F.pics_h == h)
		return;
	for (int i = 0; i < F.npics; i++)
		free(F.pics[i].data);
	F.npics = 0;
	F.pics_w = w;
	F.pics_h = h;
	const char *dir = getenv("OKVM_FAKE_V4L2_DIR");
	DIR *d = dir ? opendir(dir) : NULL;
	if (!d)
		return;
	char prefix[32], *names[MAX_FILES];
	int n = 0;
	snprintf(prefix, sizeof(prefix), "%dx%d-", w, h);
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_FILES)
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(*names), by_name);
	for (int i = 0; i < n; i++) {
		char full[1024];
		snprintf(full, sizeof(full), "%s/%s", dir, names[i]);
		free(names[i]);
		FILE *f = fopen(full, "rb");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		long size = ftell(f);
		rewind(f);
		uint8_t *p = malloc((size_t)size);
		if (fread(p, 1, (size_t)size, f) == (size_t)size)
			F.pics[F.npics++] = (struct pic){ p, (size_t)size };
		else
			free(p);
		fclose(f);
	}
}

/* Copy a JPEG without its DHT segments. */
static void
fill(struct fbuf *b, unsigned long k)
{
	b->used = 0;
	if (F.fourcc == V4L2_PIX_FMT_YUYV) {
		size_t n = (size_t)F.w * (size_t)F.h * 2;
		uint8_t y = (uint8_t)(k * 20);
		for (size_t i = 0; i + 1 < n && i + 1 < b->len; i += 2) {
			b->mem[i] = y;
			b->mem[i + 1] = 128;
		}
		b->used = (uint32_t)(n < b->len ? n : b->len);
		return;
	}
	load_pics(F.pic_w ? F.pic_w : F.w, F.pic_w ? F.pic_h : F.h);
	if (!F.npics)
		return;
	struct pic *p = &F.pics[k % (unsigned long)F.npics];
	if (p->size > b->len)
		return;
	if (event_at(k, EV_NODHT))
		b->used = (uint32_t)strip_dht(p->data, p->size, b->mem);
	else {
		memcpy(b->mem, p->data, p->size);
		b->used = (uint32_t)p->size;
	}
	if (event_at(k, EV_TRUNC))
		b->used = b->used * 6 / 10;
}

static struct fbuf *
oldest(int state)
{
	struct fbuf *best = NULL;
	for (int i = 0; i < F.nbufs; i++)
		if (F.bufs[i].state == state && (!best || F.bufs[i].order < best->order))
			best = &F.bufs[i];
	return best;
}

static void
produce_one(bool steal)
{
	unsigned long k = ++F.k;
	F.c_produced++;
	struct event *e;
	if ((e = event_at(k, EV_MODE))) {
		F.pic_w = e->a;
		F.pic_h = e->b;
		e->done = true;
	}
	struct fbuf *b = oldest(B_QUEUED);
	if (!b && steal)
		b = oldest(B_DONE); /* a burst: its newest frames always land */
	if (!b) {
		F.c_dropped++;
		return;
	}
	fill(b, k);
	b->seq = (uint32_t)(k - 1);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	b->ts.tv_sec = ts.tv_sec;
	b->ts.tv_usec = ts.tv_nsec / 1000;
	b->state = B_DONE;
	b->order = ++F.order;
	if ((e = event_at(k, EV_EAGAIN)) && e->k) {
		F.eagain_pending = true;
		e->done = true;
	}
}

/* Consume timer expirations and produce frames; apply time-based events. */
static void
tick(void)
{
	if (F.fd < 0 || F.gone || !F.streaming)
		return;
	uint64_t exp = 0;
	struct pollfd pfd = { .fd = F.fd, .events = POLLIN };
	/* the timerfd is blocking when the program opened the node so */
	if (real_poll(&pfd, 1, 0) != 1 || read(F.fd, &exp, sizeof(exp)) != sizeof(exp))
		return;
	uint64_t now = now_ms();
	if (now < F.nosignal_until)
		return;
	if (exp > (uint64_t)F.nbufs + 1)
		exp = (uint64_t)F.nbufs + 1;
	for (uint64_t i = 0; i < exp && !F.gone; i++) {
		unsigned long next = F.k + 1;
		struct event *e;
		if ((e = event_at(next, EV_UNPLUG)) && e->k) {
			e->done = true;
			F.gone = true;
			F.renumbered = getenv("OKVM_FAKE_V4L2_RENUMBER") != NULL;
			F.unplugged_until = now + (uint64_t)e->a;
			return;
		}
		if ((e = event_at(next, EV_NOSIGNAL)) && e->k) {
			e->done = true;
			F.nosignal_until = now + (uint64_t)e->a;
			return;
		}
		int burst = 1;
		if ((e = event_at(next, EV_BURST)) && e->k) {
			e->done = true;
			burst = e->a > 1 ? e->a : 1;
		}
		for (int j = 0; j < burst; j++)
			produce_one(burst > 1);
	}
}

/* ---- ioctls ---- */

static const struct fmode *
find_mode(uint32_t fourcc, int w, int h)
{
	for (size_t i = 0; i < NMODES; i++)
		if (modes[i].fourcc == fourcc && modes[i].w == w && modes[i].h == h)
			return &modes[i];
	return NULL;
}

static int
enum_fmt(struct v4l2_fmtdesc *d)
{
	if (d->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || d->index > 1)
		return -EINVAL;
	uint32_t index = d->index;
	memset(d, 0, sizeof(*d));
	d->index = index;
	d->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	d->pixelformat = index ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_MJPEG;
	d->flags = index ? 0 : V4L2_FMT_FLAG_COMPRESSED;
	/* the V4L2 core's names (v4l_fill_fmtdesc) */
	snprintf((char *)d->description, sizeof(d->description), "%s",
		 index ? "YUYV 4:2:2" : "Motion-JPEG");
	return 0;
}

static int
enum_sizes(struct v4l2_frmsizeenum *fs)
{
	unsigned n = 0;
	for (size_t i = 0; i < NMODES; i++) {
		if (modes[i].fourcc != fs->pixel_format)
			continue;
		if (n++ == fs->index) {
			fs->type = V4L2_FRMSIZE_TYPE_DISCRETE;
			fs->discrete.width = (uint32_t)modes[i].w;
			fs->discrete.height = (uint32_t)modes[i].h;
			return 0;
		}
	}
	return -EINVAL;
}

static int
enum_intervals(struct v4l2_frmivalenum *fi)
{
	const struct fmode *m = find_mode(fi->pixel_format, (int)fi->width, (int)fi->height);
	if (!m || fi->index >= 6 || !m->fps[fi->index])
		return -EINVAL;
	fi->type = V4L2_FRMIVAL_TYPE_DISCRETE;
	fi->discrete.numerator = 1;
	fi->discrete.denominator = (uint32_t)m->fps[fi->index];
	return 0;
}

static void
arm_timer(void)
{
	struct itimerspec it = { 0 };
	if (F.streaming) {
		long ns = 1000000000L / F.fps;
		it.it_interval.tv_nsec = ns;
		it.it_value.tv_nsec = ns;
	}
	timerfd_settime(F.fd, 0, &it, NULL);
}

/* uvcvideo's choice (uvc_v4l2_try_format): the format asked for, else the default one; in it,
 * the frame size nearest to the one asked for. */
static const struct fmode *
nearest_mode(uint32_t fourcc, int w, int h)
{
	if (fourcc != V4L2_PIX_FMT_MJPEG && fourcc != V4L2_PIX_FMT_YUYV)
		fourcc = modes[0].fourcc;
	const struct fmode *best = NULL;
	long best_d = 0;
	for (size_t i = 0; i < NMODES; i++) {
		if (modes[i].fourcc != fourcc)
			continue;
		long mw = modes[i].w < w ? modes[i].w : w, mh = modes[i].h < h ? modes[i].h : h;
		long d = (long)w * h + (long)modes[i].w * modes[i].h - 2 * mw * mh;
		if (!best || d < best_d) {
			best = &modes[i];
			best_d = d;
		}
	}
	return best;
}

static void
put_fmt(struct v4l2_format *f, const struct fmode *m)
{
	memset(&f->fmt.pix, 0, sizeof(f->fmt.pix));
	f->fmt.pix.pixelformat = m->fourcc;
	f->fmt.pix.width = (uint32_t)m->w;
	f->fmt.pix.height = (uint32_t)m->h;
	f->fmt.pix.bytesperline = m->fourcc == V4L2_PIX_FMT_YUYV ? (uint32_t)m->w * 2 : 0;
	f->fmt.pix.sizeimage = (uint32_t)(m->w * m->h * 2);
	f->fmt.pix.field = V4L2_FIELD_NONE;
	f->fmt.pix.colorspace = V4L2_COLORSPACE_SRGB;
}

/* S_FMT (apply) or TRY_FMT. */
static int
set_fmt(struct v4l2_format *f, bool apply)
{
	if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
		return -EINVAL;
	const struct fmode *m = nearest_mode(f->fmt.pix.pixelformat, (int)f->fmt.pix.width,
					     (int)f->fmt.pix.height);
	if (apply && (F.streaming || F.nbufs))
		return -EBUSY; /* uvcvideo: "if (uvc_queue_allocated(...)) return -EBUSY" */
	if (apply) {
		F.fourcc = m->fourcc;
		F.w = m->w;
		F.h = m->h;
		F.fps = m->fps[0];
	}
	put_fmt(f, m);
	return 0;
}

static int
get_fmt(struct v4l2_format *f)
{
	if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
		return -EINVAL;
	put_fmt(f, find_mode(F.fourcc, F.w, F.h));
	return 0;
}

static int
get_parm(struct v4l2_streamparm *p)
{
	if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
		return -EINVAL;
	memset(&p->parm, 0, sizeof(p->parm));
	p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
	p->parm.capture.timeperframe.numerator = 1;
	p->parm.capture.timeperframe.denominator = (uint32_t)F.fps;
	return 0;
}

static int
set_parm(struct v4l2_streamparm *p)
{
	if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
		return -EINVAL;
	if (F.streaming)
		return -EBUSY;
	const struct fmode *m = find_mode(F.fourcc, F.w, F.h);
	struct v4l2_fract *t = &p->parm.capture.timeperframe;
	int want = t->numerator ? (int)(t->denominator / t->numerator) : 30, best = m->fps[0];
	for (int i = 0; i < 6 && m->fps[i]; i++)
		if (abs(m->fps[i] - want) < abs(best - want))
			best = m->fps[i];
	F.fps = best;
	return get_parm(p);
}

static void
free_bufs(void)
{
	for (int i = 0; i < F.nbufs; i++) {
		if (F.bufs[i].mem)
			munmap(F.bufs[i].mem, F.bufs[i].len);
		if (F.bufs[i].memfd >= 0)
			real_close(F.bufs[i].memfd);
	}
	memset(F.bufs, 0, sizeof(F.bufs));
	F.nbufs = 0;
}

static int
reqbufs(struct v4l2_requestbuffers *rb)
{
	if (rb->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || rb->memory != V4L2_MEMORY_MMAP)
		return -EINVAL;
	if (F.streaming)
		return -EBUSY;
	free_bufs();
	int n = rb->count > NBUF_MAX ? NBUF_MAX : (int)rb->count;
	size_t len = (size_t)F.w * (size_t)F.h * 2;
	for (int i = 0; i < n; i++) {
		struct fbuf *b = &F.bufs[i];
		b->len = len;
		b->memfd = memfd_create("fake-v4l2-buffer", MFD_CLOEXEC);
		if (b->memfd < 0 || ftruncate(b->memfd, (off_t)len) < 0) {
			n = i + 1;
			F.nbufs = n;
			free_bufs();
			return -ENOMEM;
		}
		b->mem = real_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, b->memfd, 0);
	}
	F.nbufs = n;
	rb->count = (uint32_t)n;
	rb->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP;
	return 0;
}

static void
fill_v4l2_buf(struct v4l2_buffer *b, int i)
{
	memset(b, 0, sizeof(*b));
	b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	b->memory = V4L2_MEMORY_MMAP;
	b->index = (uint32_t)i;
	b->length = (uint32_t)F.bufs[i].len;
	b->m.offset = (uint32_t)i * 0x100000u;
	b->field = V4L2_FIELD_NONE;
	b->bytesused = F.bufs[i].used;
	b->sequence = F.bufs[i].seq;
	b->timestamp = F.bufs[i].ts;
	/* uvcvideo: monotonic timestamps taken at the start of the frame */
	b->flags = V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC | V4L2_BUF_FLAG_TSTAMP_SRC_SOE |
		   (F.bufs[i].mapped ? V4L2_BUF_FLAG_MAPPED : 0) |
		   (F.bufs[i].state == B_QUEUED ? V4L2_BUF_FLAG_QUEUED : 0) |
		   (F.bufs[i].state == B_DONE ? V4L2_BUF_FLAG_DONE : 0);
}

static bool
blocking(void)
{
	int fl = fcntl(F.fd, F_GETFL);
	return fl >= 0 && !(fl & O_NONBLOCK);
}

/* Called with the lock held; a blocking wait drops it while it sleeps on the frame clock. */
static int
dqbuf(struct v4l2_buffer *b)
{
	if (b->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || b->memory != V4L2_MEMORY_MMAP)
		return -EINVAL;
	F.c_dqbuf++;
	int fd = F.fd;
	for (;;) {
		if (F.gone || F.fd != fd)
			return -ENODEV;
		if (!F.streaming)
			return -EINVAL;
		tick();
		if (F.eagain_pending) {
			F.eagain_pending = false;
			F.c_eagain++;
			return -EAGAIN;
		}
		struct fbuf *d = oldest(B_DONE);
		if (d) {
			d->state = B_IDLE;
			fill_v4l2_buf(b, (int)(d - F.bufs));
			return 0;
		}
		if (!blocking())
			return -EAGAIN;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		pthread_mutex_unlock(&F.lock);
		real_poll(&pfd, 1, 100);
		pthread_mutex_lock(&F.lock);
	}
}

static int
buf_index(const struct v4l2_buffer *b)
{
	if (b->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || (int)b->index >= F.nbufs)
		return -1;
	return (int)b->index;
}

static int
qbuf(struct v4l2_buffer *b)
{
	int i = buf_index(b);
	if (i < 0 || b->memory != V4L2_MEMORY_MMAP || F.bufs[i].state != B_IDLE)
		return -EINVAL;
	F.bufs[i].state = B_QUEUED;
	F.bufs[i].order = ++F.order;
	fill_v4l2_buf(b, i);
	return 0;
}

static int
stream(unsigned long req, const int *type)
{
	if (*type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
		return -EINVAL;
	if (req == VIDIOC_STREAMON) {
		if (!F.nbufs)
			return -EINVAL;
		if (F.streaming)
			return 0;
		F.streaming = true;
	} else {
		F.streaming = false;
		for (int i = 0; i < F.nbufs; i++)
			F.bufs[i].state = B_IDLE; /* vb2: STREAMOFF hands every buffer back */
		F.eagain_pending = false;
	}
	arm_timer();
	return 0;
}

static int
expbuf(struct v4l2_exportbuffer *e)
{
	if (e->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || (int)e->index >= F.nbufs || e->plane)
		return -EINVAL;
	int fd = fcntl(F.bufs[e->index].memfd, (e->flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD,
		       0);
	if (fd < 0)
		return -errno;
	e->fd = fd;
	return 0;
}

static int
enum_input(struct v4l2_input *in)
{
	if (in->index)
		return -EINVAL;
	memset(in, 0, sizeof(*in));
	/* uvcvideo names an input terminal of camera type "Camera N" */
	snprintf((char *)in->name, sizeof(in->name), "Camera 1");
	in->type = V4L2_INPUT_TYPE_CAMERA;
	return 0;
}

/* uvcvideo's g_selection: crop bounds and default only, the whole frame. */
static int
get_selection(struct v4l2_selection *sel)
{
	if (sel->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
		return -EINVAL;
	if (sel->target != V4L2_SEL_TGT_CROP_DEFAULT && sel->target != V4L2_SEL_TGT_CROP_BOUNDS)
		return -EINVAL;
	sel->r = (struct v4l2_rect){ 0, 0, (uint32_t)F.w, (uint32_t)F.h };
	return 0;
}

/* The V4L2 core's CROPCAP (v4l_cropcap) built on g_selection; pixel aspect 1:1. */
static int
cropcap(struct v4l2_cropcap *c)
{
	if (c->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
		return -EINVAL;
	c->pixelaspect = (struct v4l2_fract){ 1, 1 };
	c->bounds = c->defrect = (struct v4l2_rect){ 0, 0, (uint32_t)F.w, (uint32_t)F.h };
	return 0;
}

static int
ext_ctrls(struct v4l2_ext_controls *c)
{
	if (!c->count)
		return 0;
	c->error_idx = c->count;
	return -EINVAL;
}

static int
do_ioctl(unsigned int req, void *arg)
{
	if (F.gone)
		return -ENODEV;
	switch (req) {
	case VIDIOC_QUERYCAP: {
		struct v4l2_capability *c = arg;
		memset(c, 0, sizeof(*c));
		snprintf((char *)c->driver, sizeof(c->driver), "uvcvideo");
		snprintf((char *)c->card, sizeof(c->card), "Openterface (fake)");
		snprintf((char *)c->bus_info, sizeof(c->bus_info), "usb-0000:00:14.0-3.1");
		c->version = LINUX_VERSION_CODE;
		c->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
		c->capabilities = c->device_caps | V4L2_CAP_DEVICE_CAPS;
		return 0;
	}
	case VIDIOC_ENUM_FMT: return enum_fmt(arg);
	case VIDIOC_ENUM_FRAMESIZES: return enum_sizes(arg);
	case VIDIOC_ENUM_FRAMEINTERVALS: return enum_intervals(arg);
	case VIDIOC_G_FMT: return get_fmt(arg);
	case VIDIOC_S_FMT: return set_fmt(arg, true);
	case VIDIOC_TRY_FMT: return set_fmt(arg, false);
	case VIDIOC_G_PARM: return get_parm(arg);
	case VIDIOC_S_PARM: return set_parm(arg);
	case VIDIOC_ENUMINPUT: return enum_input(arg);
	case VIDIOC_G_INPUT: *(int *)arg = 0; return 0;
	case VIDIOC_S_INPUT: return *(int *)arg ? -EINVAL : 0;
	case VIDIOC_G_PRIORITY: *(enum v4l2_priority *)arg = (enum v4l2_priority)F.prio; return 0;
	case VIDIOC_S_PRIORITY:
		if (*(unsigned *)arg > V4L2_PRIORITY_RECORD)
			return -EINVAL;
		F.prio = (int)*(unsigned *)arg;
		return 0;
	case VIDIOC_G_SELECTION: return get_selection(arg);
	case VIDIOC_CROPCAP: return cropcap(arg);
	case VIDIOC_G_CROP:
		return -EINVAL; /* uvcvideo's g_selection refuses TGT_CROP */
	/* no controls: what uvcvideo answers for an id it does not have */
	case VIDIOC_QUERYCTRL:
	case VIDIOC_QUERY_EXT_CTRL:
	case VIDIOC_QUERYMENU:
	case VIDIOC_G_CTRL:
	case VIDIOC_S_CTRL:
	case VIDIOC_SUBSCRIBE_EVENT: return -EINVAL;
	case VIDIOC_G_EXT_CTRLS:
	case VIDIOC_S_EXT_CTRLS:
	case VIDIOC_TRY_EXT_CTRLS: return ext_ctrls(arg);
	case VIDIOC_UNSUBSCRIBE_EVENT: return 0;
	case VIDIOC_DQEVENT: return -ENOENT;
	case VIDIOC_REQBUFS: return reqbufs(arg);
	case VIDIOC_QUERYBUF: {
		int i = buf_index(arg);
		if (i < 0)
			return -EINVAL;
		fill_v4l2_buf(arg, i);
		return 0;
	}
	case VIDIOC_QBUF: return qbuf(arg);
	case VIDIOC_DQBUF: return dqbuf(arg);
	case VIDIOC_EXPBUF: return expbuf(arg);
	case VIDIOC_STREAMON:
	case VIDIOC_STREAMOFF: return stream(req, arg);
	default:
		return -ENOTTY; /* G_STD, ENUMSTD, DV timings, tuners, audio, ...: not uvcvideo's */
	}
}

/* ---- the intercepted calls ---- */

static bool
is_fake(int fd)
{
	return fd >= 0 && fd == F.fd;
}

/* The node's state for path: -2 not ours, -ENOENT unplugged (or renumbered away), 0 there. */
static int
node_state(const char *path)
{
	const char *want = getenv("OKVM_FAKE_V4L2_PATH");
	if (!want)
		want = "/dev/video0";
	const char *renumber = getenv("OKVM_FAKE_V4L2_RENUMBER");
	if (F.renumbered && renumber) {
		if (!strcmp(path, want) && strcmp(want, renumber))
			return -ENOENT; /* the old node is gone for good */
		want = renumber;
	}
	if (!path || strcmp(path, want))
		return -2;
	return F.gone && now_ms() < F.unplugged_until ? -ENOENT : 0;
}

static int
fake_open(const char *path, int flags)
{
	pthread_mutex_lock(&F.lock);
	int rc = node_state(path);
	if (rc < 0) {
		pthread_mutex_unlock(&F.lock);
		return rc;
	}
	if (F.fd >= 0) {
		rc = -EBUSY; /* one opener; an fd left open after an unplug stays dead */
	} else {
		F.gone = false;
		parse_script(getenv("OKVM_FAKE_V4L2_SCRIPT"));
		F.fd = timerfd_create(CLOCK_MONOTONIC,
				      ((flags & O_NONBLOCK) ? TFD_NONBLOCK : 0) |
					      ((flags & O_CLOEXEC) ? TFD_CLOEXEC : 0));
		F.fourcc = modes[0].fourcc;
		F.w = modes[0].w;
		F.h = modes[0].h;
		F.fps = 30;
		F.prio = V4L2_PRIORITY_DEFAULT;
		F.streaming = false;
		F.c_opens++;
		snprintf(F.path, sizeof(F.path), "%s", path);
		rc = F.fd;
	}
	pthread_mutex_unlock(&F.lock);
	return rc;
}

/* N of /dev/videoN */
static int
node_minor(const char *p)
{
	const char *d = p + strlen(p);
	while (d > p && d[-1] >= '0' && d[-1] <= '9')
		d--;
	return atoi(d);
}

/* The node's /sys/dev/char/81:N/uevent, which v4l2-ctl reads to learn what the node is; -2 when
 * path is not it. */
static int
uevent_open(const char *path)
{
	char want[64], text[128];
	const char *node = getenv("OKVM_FAKE_V4L2_PATH");
	pthread_mutex_lock(&F.lock);
	if (F.renumbered && getenv("OKVM_FAKE_V4L2_RENUMBER"))
		node = getenv("OKVM_FAKE_V4L2_RENUMBER");
	if (!node)
		node = "/dev/video0";
	bool there = node_state(node) == 0;
	pthread_mutex_unlock(&F.lock);
	int minor = node_minor(node);
	snprintf(want, sizeof(want), "/sys/dev/char/81:%d/uevent", minor);
	if (!path || strcmp(path, want))
		return -2;
	if (!there)
		return -ENOENT;
	/* the kernel's name, whatever the fake path is called (v4l2-ctl wants videoN) */
	int n = snprintf(text, sizeof(text), "MAJOR=81\nMINOR=%d\nDEVNAME=video%d\n", minor, minor);
	int fd = memfd_create("fake-v4l2-uevent", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)n) != n || lseek(fd, 0, SEEK_SET) != 0) {
		real_close(fd);
		return -EIO;
	}
	return fd;
}

static int
open_common(int dirfd, const char *path, int flags, va_list ap)
{
	init_real();
	int rc = path && path[0] == '/' ? fake_open(path, flags) : -2;
	if (rc == -2)
		rc = uevent_open(path);
	if (rc >= 0)
		return rc;
	if (rc != -2) {
		errno = -rc;
		return -1;
	}
	mode_t mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t)
									    : 0;
	if (dirfd == AT_FDCWD)
		return real_open(path, flags, mode);
	return real_openat(dirfd, path, flags, mode);
}

#include "preload-open.h" /* open, open64, openat, openat64 */

static FILE *
fopen_common(const char *path, const char *mode, const char *real_name)
{
	init_real();
	int fd = uevent_open(path);
	if (fd == -2)
		return ((FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, real_name))(path,
											      mode);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	return fdopen(fd, "r");
}

/* glibc's fopen opens inside libc, past open() */
FILE *
fopen(const char *path, const char *mode)
{
	return fopen_common(path, mode, "fopen");
}

FILE *
fopen64(const char *path, const char *mode)
{
	return fopen_common(path, mode, "fopen64");
}

int
close(int fd)
{
	init_real();
	pthread_mutex_lock(&F.lock);
	if (is_fake(fd)) {
		F.c_closes++;
		free_bufs(); /* a program's own mappings stay valid, as in the kernel */
		F.fd = -1;
		F.streaming = false;
		F.eagain_pending = false;
	}
	pthread_mutex_unlock(&F.lock);
	return real_close(fd);
}

int
ioctl(int fd, unsigned long req, ...)
{
	init_real();
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	pthread_mutex_lock(&F.lock);
	if (!is_fake(fd)) {
		pthread_mutex_unlock(&F.lock);
		return real_ioctl(fd, req, arg);
	}
	/* the kernel's request is an unsigned int: an int request sign-extended to 64 bits is the
	 * same ioctl */
	int rc = do_ioctl((unsigned int)req, arg);
	pthread_mutex_unlock(&F.lock);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return rc;
}

static void *
mmap_common(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	init_real();
	pthread_mutex_lock(&F.lock);
	if (!is_fake(fd)) {
		pthread_mutex_unlock(&F.lock);
		return real_mmap(addr, len, prot, flags, fd, off);
	}
	int i = (int)(off / 0x100000), err = 0;
	void *p = MAP_FAILED;
	if (F.gone)
		err = ENODEV;
	else if (off % 0x100000 || i < 0 || i >= F.nbufs || len > F.bufs[i].len)
		err = EINVAL;
	else if (!(flags & MAP_SHARED))
		err = EINVAL; /* vb2: "mmap: MAP_SHARED required" */
	else if ((p = real_mmap(addr, len, prot, flags, F.bufs[i].memfd, 0)) == MAP_FAILED)
		err = errno;
	else
		F.bufs[i].mapped = true;
	pthread_mutex_unlock(&F.lock);
	errno = err ? err : errno;
	return p;
}

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap_common(addr, len, prot, flags, fd, off);
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return mmap_common(addr, len, prot, flags, fd, off);
}

static int
remaining(uint64_t deadline, int timeout)
{
	if (timeout < 0)
		return -1;
	uint64_t now = now_ms();
	return now >= deadline ? 0 : (int)(deadline - now);
}

int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	init_real();
	int at = -1;
	pthread_mutex_lock(&F.lock);
	for (nfds_t i = 0; i < n; i++)
		if (is_fake(fds[i].fd))
			at = (int)i;
	bool ready = at >= 0 && (F.gone || oldest(B_DONE));
	pthread_mutex_unlock(&F.lock);
	if (at < 0)
		return real_poll(fds, n, timeout);
	uint64_t deadline = now_ms() + (uint64_t)(timeout > 0 ? timeout : 0);
	short want = fds[at].events;
	for (;;) {
		fds[at].events = POLLIN;
		int r = real_poll(fds, n, ready ? 0 : remaining(deadline, timeout));
		fds[at].events = want;
		if (r < 0)
			return r;
		pthread_mutex_lock(&F.lock);
		if (fds[at].revents & POLLIN)
			tick();
		short rev = F.gone           ? (POLLERR | POLLHUP)
			    : oldest(B_DONE) ? ((POLLIN | POLLRDNORM) & want)
					     : 0;
		pthread_mutex_unlock(&F.lock);
		r -= fds[at].revents ? 1 : 0;
		fds[at].revents = rev;
		r += rev ? 1 : 0;
		if (r > 0 || remaining(deadline, timeout) == 0)
			return r;
		ready = false;
	}
}

/* select and pselect through poll when the node is in a set; the kernel maps POLLIN, POLLHUP and
 * POLLERR to readable, POLLOUT and POLLERR to writable, POLLPRI to exceptional. */
static int
select_common(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int timeout_ms, bool *ours)
{
	struct pollfd pfd[FD_SETSIZE];
	int n = 0;
	*ours = false;
	pthread_mutex_lock(&F.lock);
	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		short ev = (short)((rd && FD_ISSET(fd, rd) ? POLLIN : 0) |
				   (wr && FD_ISSET(fd, wr) ? POLLOUT : 0) |
				   (ex && FD_ISSET(fd, ex) ? POLLPRI : 0));
		if (!ev)
			continue;
		*ours |= is_fake(fd);
		pfd[n++] = (struct pollfd){ .fd = fd, .events = ev };
	}
	pthread_mutex_unlock(&F.lock);
	if (!*ours)
		return 0;
	int r = poll(pfd, (nfds_t)n, timeout_ms);
	if (r < 0)
		return r;
	if (rd)
		FD_ZERO(rd);
	if (wr)
		FD_ZERO(wr);
	if (ex)
		FD_ZERO(ex);
	int count = 0;
	for (int i = 0; i < n; i++) {
		short rev = pfd[i].revents;
		if (rd && (pfd[i].events & POLLIN) && (rev & (POLLIN | POLLHUP | POLLERR))) {
			FD_SET(pfd[i].fd, rd);
			count++;
		}
		if (wr && (pfd[i].events & POLLOUT) && (rev & (POLLOUT | POLLERR))) {
			FD_SET(pfd[i].fd, wr);
			count++;
		}
		if (ex && (pfd[i].events & POLLPRI) && (rev & POLLPRI)) {
			FD_SET(pfd[i].fd, ex);
			count++;
		}
		if (rev & POLLNVAL) {
			errno = EBADF;
			return -1;
		}
	}
	return count;
}

int
select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	init_real();
	bool ours;
	int ms = tv ? (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000) : -1;
	uint64_t start = now_ms();
	int r = select_common(nfds, rd, wr, ex, ms, &ours);
	if (!ours) {
		int (*real_select)(int, fd_set *, fd_set *, fd_set *,
				   struct timeval *) = dlsym(RTLD_NEXT, "select");
		return real_select(nfds, rd, wr, ex, tv);
	}
	if (tv) { /* Linux writes back the time left */
		uint64_t spent = now_ms() - start;
		long left = ms > (long)spent ? ms - (long)spent : 0;
		tv->tv_sec = left / 1000;
		tv->tv_usec = (left % 1000) * 1000;
	}
	return r;
}

int
pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
	const sigset_t *mask)
{
	init_real();
	bool ours;
	int ms = ts ? (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000) : -1;
	sigset_t old;
	if (mask)
		pthread_sigmask(SIG_SETMASK, mask, &old);
	int r = select_common(nfds, rd, wr, ex, ms, &ours);
	if (mask)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ours) {
		int (*real_pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
				    const sigset_t *) = dlsym(RTLD_NEXT, "pselect");
		return real_pselect(nfds, rd, wr, ex, ts, mask);
	}
	return r;
}

/* ---- the node in the file system: stat and access see a character device ---- */


static void
fill_stat(struct stat *st, const char *path)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFCHR | 0660;
	st->st_nlink = 1;
	st->st_gid = 44; /* video */
	st->st_rdev = makedev(81, (unsigned)node_minor(path));
	st->st_blksize = 4096;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	st->st_atim = st->st_mtim = st->st_ctim = now;
}

/* 0 filled, -1 with errno set, -2 not ours */
static int
stat_path(const char *path, struct stat *st)
{
	pthread_mutex_lock(&F.lock);
	int rc = path ? node_state(path) : -2;
	pthread_mutex_unlock(&F.lock);
	if (rc == -2)
		return -2;
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	fill_stat(st, path);
	return 0;
}

static int
stat_fd(int fd, struct stat *st)
{
	pthread_mutex_lock(&F.lock);
	bool ours = is_fake(fd);
	pthread_mutex_unlock(&F.lock);
	if (!ours)
		return -2;
	fill_stat(st, F.path);
	return 0;
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

typedef int (*stat_fn)(const char *, struct stat *);
typedef int (*fstat_fn)(int, struct stat *);
typedef int (*fstatat_fn)(int, const char *, struct stat *, int);

int stat64(const char *path, struct stat64 *st);
int lstat64(const char *path, struct stat64 *st);
int fstat64(int fd, struct stat64 *st);
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags);
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);

/* struct stat and struct stat64 are the same on the 64-bit ABIs this runs on */
_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "stat and stat64 differ");

int
stat(const char *path, struct stat *st)
{
	int rc = stat_path(path, st);
	return rc != -2 ? rc : REAL("stat", stat_fn)(path, st);
}

int
stat64(const char *path, struct stat64 *st)
{
	int rc = stat_path(path, (struct stat *)st);
	return rc != -2 ? rc : REAL("stat64", stat_fn)(path, (struct stat *)st);
}

int
lstat(const char *path, struct stat *st)
{
	int rc = stat_path(path, st);
	return rc != -2 ? rc : REAL("lstat", stat_fn)(path, st);
}

int
lstat64(const char *path, struct stat64 *st)
{
	int rc = stat_path(path, (struct stat *)st);
	return rc != -2 ? rc : REAL("lstat64", stat_fn)(path, (struct stat *)st);
}

int
fstat(int fd, struct stat *st)
{
	int rc = stat_fd(fd, st);
	return rc != -2 ? rc : REAL("fstat", fstat_fn)(fd, st);
}

int
fstat64(int fd, struct stat64 *st)
{
	int rc = stat_fd(fd, (struct stat *)st);
	return rc != -2 ? rc : REAL("fstat64", fstat_fn)(fd, (struct stat *)st);
}

static int
statat_common(int dirfd, const char *path, struct stat *st, int flags)
{
	if ((flags & AT_EMPTY_PATH) && path && !path[0])
		return stat_fd(dirfd, st);
	return path && path[0] == '/' ? stat_path(path, st) : -2;
}

int
fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	int rc = statat_common(dirfd, path, st, flags);
	return rc != -2 ? rc : REAL("fstatat", fstatat_fn)(dirfd, path, st, flags);
}

int
fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	int rc = statat_common(dirfd, path, (struct stat *)st, flags);
	return rc != -2 ? rc : REAL("fstatat64", fstatat_fn)(dirfd, path, (struct stat *)st, flags);
}

/* programs built against glibc before 2.33 call these */
int
__xstat(int ver, const char *path, struct stat *st)
{
	int rc = stat_path(path, st);
	return rc != -2 ? rc
			: REAL("__xstat", int (*)(int, const char *, struct stat *))(ver, path, st);
}

int
__xstat64(int ver, const char *path, struct stat64 *st)
{
	return __xstat(ver, path, (struct stat *)st);
}

int
__lxstat(int ver, const char *path, struct stat *st)
{
	int rc = stat_path(path, st);
	return rc != -2
		       ? rc
		       : REAL("__lxstat", int (*)(int, const char *, struct stat *))(ver, path, st);
}

int
__lxstat64(int ver, const char *path, struct stat64 *st)
{
	return __lxstat(ver, path, (struct stat *)st);
}

int
__fxstat(int ver, int fd, struct stat *st)
{
	int rc = stat_fd(fd, st);
	return rc != -2 ? rc : REAL("__fxstat", int (*)(int, int, struct stat *))(ver, fd, st);
}

int
__fxstat64(int ver, int fd, struct stat64 *st)
{
	return __fxstat(ver, fd, (struct stat *)st);
}

int
statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx)
{
	struct stat st;
	int rc = statat_common(dirfd, path, &st, flags);
	if (rc == -2)
		return REAL("statx", int (*)(int, const char *, int, unsigned, struct statx *))(
			dirfd, path, flags, mask, stx);
	if (rc < 0)
		return rc;
	memset(stx, 0, sizeof(*stx));
	stx->stx_mask = STATX_BASIC_STATS;
	stx->stx_mode = (uint16_t)st.st_mode;
	stx->stx_nlink = 1;
	stx->stx_gid = st.st_gid;
	stx->stx_blksize = 4096;
	stx->stx_rdev_major = major(st.st_rdev);
	stx->stx_rdev_minor = minor(st.st_rdev);
	stx->stx_atime.tv_sec = stx->stx_mtime.tv_sec = stx->stx_ctime.tv_sec = st.st_mtim.tv_sec;
	return 0;
}

/* 0 there, -1 with errno, -2 not ours. A crw-rw---- node: read and write, never execute. */
static int
access_path(const char *path, int mode)
{
	struct stat st;
	int rc = path && path[0] == '/' ? stat_path(path, &st) : -2;
	if (rc == 0 && (mode & X_OK)) {
		errno = EACCES;
		return -1;
	}
	return rc;
}

int
access(const char *path, int mode)
{
	int rc = access_path(path, mode);
	return rc != -2 ? rc : REAL("access", int (*)(const char *, int))(path, mode);
}

int
euidaccess(const char *path, int mode)
{
	int rc = access_path(path, mode);
	return rc != -2 ? rc : REAL("euidaccess", int (*)(const char *, int))(path, mode);
}

int
eaccess(const char *path, int mode)
{
	return euidaccess(path, mode);
}

int
faccessat(int dirfd, const char *path, int mode, int flags)
{
	int rc = access_path(path, mode);
	return rc != -2 ? rc
			: REAL("faccessat", int (*)(int, const char *, int, int))(dirfd, path, mode,
										  flags);
}

/* ---- test hooks ---- */

unsigned long fake_v4l2_counter(const char *name);
void fake_v4l2_format(uint32_t *fourcc, int *w, int *h, int *fps);

unsigned long
fake_v4l2_counter(const char *name)
{
	pthread_mutex_lock(&F.lock);
	unsigned long v = !strcmp(name, "opens")      ? F.c_opens
			  : !strcmp(name, "closes")   ? F.c_closes
			  : !strcmp(name, "eagain")   ? F.c_eagain
			  : !strcmp(name, "dqbuf")    ? F.c_dqbuf
			  : !strcmp(name, "produced") ? F.c_produced
			  : !strcmp(name, "dropped")  ? F.c_dropped
						      : 0;
	pthread_mutex_unlock(&F.lock);
	return v;
}

void
fake_v4l2_format(uint32_t *fourcc, int *w, int *h, int *fps)
{
	pthread_mutex_lock(&F.lock);
	*fourcc = F.fourcc;
	*w = F.w;
	*h = F.h;
	*fps = F.fps;
	pthread_mutex_unlock(&F.lock);
}
