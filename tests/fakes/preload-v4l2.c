/*
 * DESIGN: an LD_PRELOAD library that plays a UVC capture device (the MS2109 of an Openterface
 * Mini-KVM) for okvm's V4L2 source, on machines with no V4L2 driver. It answers open, ioctl,
 * mmap, munmap, poll and close for one path and passes everything else to libc.
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
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/videodev2.h>

#include "jpeg-strip.h"

#define NBUF_MAX 8
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
	uint8_t *mem;
	size_t len;
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
} F = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static int (*real_open)(const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static int (*real_poll)(struct pollfd *, nfds_t, int);

static void
init_real(void)
{
	if (real_open)
		return;
	real_close = dlsym(RTLD_NEXT, "close");
	real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	real_mmap = dlsym(RTLD_NEXT, "mmap");
	real_munmap = dlsym(RTLD_NEXT, "munmap");
	real_poll = dlsym(RTLD_NEXT, "poll");
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
	if (read(F.fd, &exp, sizeof(exp)) != sizeof(exp))
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

static int
set_fmt(struct v4l2_format *f)
{
	const struct fmode *m = find_mode(f->fmt.pix.pixelformat, (int)f->fmt.pix.width,
					  (int)f->fmt.pix.height);
	if (!m)
		m = &modes[0]; /* drivers adjust to something they support */
	if (F.streaming)
		return -EBUSY;
	F.fourcc = m->fourcc;
	F.w = m->w;
	F.h = m->h;
	F.fps = m->fps[0];
	f->fmt.pix.pixelformat = m->fourcc;
	f->fmt.pix.width = (uint32_t)m->w;
	f->fmt.pix.height = (uint32_t)m->h;
	f->fmt.pix.bytesperline = m->fourcc == V4L2_PIX_FMT_YUYV ? (uint32_t)m->w * 2 : 0;
	f->fmt.pix.sizeimage = (uint32_t)(m->w * m->h * 2);
	f->fmt.pix.field = V4L2_FIELD_NONE;
	return 0;
}

static int
set_parm(struct v4l2_streamparm *p)
{
	const struct fmode *m = find_mode(F.fourcc, F.w, F.h);
	struct v4l2_fract *t = &p->parm.capture.timeperframe;
	int want = t->numerator ? (int)(t->denominator / t->numerator) : 30, best = m->fps[0];
	for (int i = 0; i < 6 && m->fps[i]; i++)
		if (abs(m->fps[i] - want) < abs(best - want))
			best = m->fps[i];
	F.fps = best;
	t->numerator = 1;
	t->denominator = (uint32_t)best;
	return 0;
}

static void
free_bufs(void)
{
	for (int i = 0; i < F.nbufs; i++)
		if (F.bufs[i].mem)
			real_munmap(F.bufs[i].mem, F.bufs[i].len);
	memset(F.bufs, 0, sizeof(F.bufs));
	F.nbufs = 0;
}

static int
reqbufs(struct v4l2_requestbuffers *rb)
{
	if (rb->memory != V4L2_MEMORY_MMAP)
		return -EINVAL;
	free_bufs();
	int n = rb->count > NBUF_MAX ? NBUF_MAX : (int)rb->count;
	for (int i = 0; i < n; i++) {
		F.bufs[i].len = (size_t)F.w * (size_t)F.h * 2;
		F.bufs[i].mem = real_mmap(NULL, F.bufs[i].len, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	F.nbufs = n;
	rb->count = (uint32_t)n;
	return 0;
}

static void
fill_v4l2_buf(struct v4l2_buffer *b, int i)
{
	b->index = (uint32_t)i;
	b->length = (uint32_t)F.bufs[i].len;
	b->m.offset = (uint32_t)i * 0x100000u;
	b->bytesused = F.bufs[i].used;
	b->sequence = F.bufs[i].seq;
	b->timestamp = F.bufs[i].ts;
	b->flags = V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC |
		   (F.bufs[i].state == B_QUEUED ? V4L2_BUF_FLAG_QUEUED : 0) |
		   (F.bufs[i].state == B_DONE ? V4L2_BUF_FLAG_DONE : 0);
}

static int
dqbuf(struct v4l2_buffer *b)
{
	F.c_dqbuf++;
	tick();
	if (F.eagain_pending) {
		F.eagain_pending = false;
		F.c_eagain++;
		return -EAGAIN;
	}
	struct fbuf *d = oldest(B_DONE);
	if (!d)
		return -EAGAIN;
	d->state = B_IDLE;
	fill_v4l2_buf(b, (int)(d - F.bufs));
	return 0;
}

static int
do_ioctl(unsigned long req, void *arg)
{
	if (F.gone)
		return -ENODEV;
	switch (req) {
	case VIDIOC_QUERYCAP: {
		struct v4l2_capability *c = arg;
		memset(c, 0, sizeof(*c));
		snprintf((char *)c->driver, sizeof(c->driver), "uvcvideo");
		snprintf((char *)c->card, sizeof(c->card), "Openterface (fake)");
		c->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
		c->capabilities = c->device_caps | V4L2_CAP_DEVICE_CAPS;
		return 0;
	}
	case VIDIOC_ENUM_FMT: {
		struct v4l2_fmtdesc *d = arg;
		if (d->index > 1)
			return -EINVAL;
		d->pixelformat = d->index ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_MJPEG;
		d->flags = d->index ? 0 : V4L2_FMT_FLAG_COMPRESSED;
		return 0;
	}
	case VIDIOC_ENUM_FRAMESIZES: return enum_sizes(arg);
	case VIDIOC_ENUM_FRAMEINTERVALS: return enum_intervals(arg);
	case VIDIOC_S_FMT: return set_fmt(arg);
	case VIDIOC_S_PARM: return set_parm(arg);
	case VIDIOC_REQBUFS: return reqbufs(arg);
	case VIDIOC_QUERYBUF: {
		struct v4l2_buffer *b = arg;
		if ((int)b->index >= F.nbufs)
			return -EINVAL;
		fill_v4l2_buf(b, (int)b->index);
		return 0;
	}
	case VIDIOC_QBUF: {
		struct v4l2_buffer *b = arg;
		if ((int)b->index >= F.nbufs || F.bufs[b->index].state == B_QUEUED)
			return -EINVAL;
		F.bufs[b->index].state = B_QUEUED;
		F.bufs[b->index].order = ++F.order;
		return 0;
	}
	case VIDIOC_DQBUF: return dqbuf(arg);
	case VIDIOC_STREAMON:
	case VIDIOC_STREAMOFF:
		F.streaming = req == VIDIOC_STREAMON;
		arm_timer();
		return 0;
	default: return -ENOTTY;
	}
}

/* ---- the intercepted calls ---- */

static bool
is_fake(int fd)
{
	return fd >= 0 && fd == F.fd;
}

static int
fake_open(const char *path)
{
	const char *want = getenv("OKVM_FAKE_V4L2_PATH");
	if (!want)
		want = "/dev/video0";
	const char *renumber = getenv("OKVM_FAKE_V4L2_RENUMBER");
	if (F.renumbered && renumber)
		want = renumber; /* the old node is gone for good */
	if (strcmp(path, want))
		return -2; /* not ours */
	pthread_mutex_lock(&F.lock);
	int rc;
	if (F.fd >= 0 && !F.gone) {
		rc = -EBUSY;
	} else if (F.gone && now_ms() < F.unplugged_until) {
		rc = -ENOENT;
	} else if (F.fd >= 0) {
		rc = -EBUSY; /* the old fd is still open: a real driver keeps it dead */
	} else {
		F.gone = false;
		parse_script(getenv("OKVM_FAKE_V4L2_SCRIPT"));
		F.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		F.fourcc = modes[0].fourcc;
		F.w = modes[0].w;
		F.h = modes[0].h;
		F.fps = 30;
		F.streaming = false;
		F.c_opens++;
		snprintf(F.path, sizeof(F.path), "%s", path);
		rc = F.fd;
	}
	pthread_mutex_unlock(&F.lock);
	return rc;
}

static int
open_common(const char *path, int flags, va_list ap)
{
	init_real();
	int rc = fake_open(path);
	if (rc >= 0)
		return rc;
	if (rc != -2) {
		errno = -rc;
		return -1;
	}
	mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
	return real_open(path, flags, mode);
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int rc = open_common(path, flags, ap);
	va_end(ap);
	return rc;
}

int
open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int rc = open_common(path, flags, ap);
	va_end(ap);
	return rc;
}

int
close(int fd)
{
	init_real();
	pthread_mutex_lock(&F.lock);
	if (is_fake(fd)) {
		F.c_closes++;
		free_bufs();
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
	int rc = do_ioctl(req, arg);
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
	int i = (int)(off / 0x100000);
	void *p = i >= 0 && i < F.nbufs && !F.gone ? F.bufs[i].mem : NULL;
	pthread_mutex_unlock(&F.lock);
	if (!p) {
		errno = ENODEV;
		return MAP_FAILED;
	}
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

int
munmap(void *addr, size_t len)
{
	init_real();
	pthread_mutex_lock(&F.lock);
	for (int i = 0; i < F.nbufs; i++)
		if (F.bufs[i].mem == addr) {
			pthread_mutex_unlock(&F.lock);
			return 0; /* freed with the buffers (REQBUFS or close) */
		}
	pthread_mutex_unlock(&F.lock);
	return real_munmap(addr, len);
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
	for (;;) {
		int r = real_poll(fds, n, ready ? 0 : remaining(deadline, timeout));
		if (r < 0)
			return r;
		pthread_mutex_lock(&F.lock);
		if (fds[at].revents & POLLIN)
			tick();
		short rev = F.gone	     ? (POLLERR | POLLHUP)
			    : oldest(B_DONE) ? (POLLIN | POLLRDNORM)
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
