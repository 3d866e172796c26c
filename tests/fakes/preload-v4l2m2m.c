/*
 * DESIGN: an LD_PRELOAD library that plays a stateful V4L2 memory-to-memory H.264 encoder as a
 * Raspberry Pi's bcm2835-codec driver presents it (/dev/video11, "bcm2835-codec-encode"), for
 * okvm serve's hardware H.264 path (src/serve/h264-v4l2.c) on machines with no such device.
 * It answers open/openat, ioctl, mmap and close for one path and passes everything else on,
 * so it can sit in LD_PRELOAD beside the capture fake (preload-v4l2.c; use distinct paths).
 *
 * Like the kernel, ioctl looks at the low 32 bits of the request. What it answers, after the
 * driver (drivers/staging/vc04_services/bcm2835-codec) and the stateful encoder interface
 * (Documentation/userspace-api/media/v4l/dev-encoder.rst):
 *   QUERYCAP     driver "bcm2835-codec", card "bcm2835-codec-encode", bus "platform:bcm2835-codec",
 *                V4L2_CAP_VIDEO_M2M_MPLANE | V4L2_CAP_STREAMING (multi-planar; see PLANES)
 *   ENUM_FMT     OUTPUT_MPLANE: the raw formats (YU12, YV12, NV12, NV21, RGB565, YUYV, ...;
 *                OKVM_FAKE_M2M_OUTPUT=NV12 offers NV12 alone); CAPTURE_MPLANE: H264 alone
 *   S/G/TRY_FMT  one plane; OUTPUT: width and height 32-1920, bytesperline up to a multiple of
 *                32, height up to a multiple of 16 (the visible size becomes the crop);
 *                CAPTURE: sizeimage 512 KiB (768 KiB above 720p) or the larger one asked for;
 *                EBUSY once that queue has buffers
 *   S/G_SELECTION the OUTPUT crop; S/G_PARM the OUTPUT frame rate
 *   S/G_CTRL, QUERYCTRL, S_EXT_CTRLS  bitrate, bitrate mode, H.264 profile, level, I-period,
 *                min/max QP, REPEAT_SEQ_HEADER, FORCE_KEY_FRAME; anything else EINVAL
 *   REQBUFS/QUERYBUF/QBUF/DQBUF/STREAMON/STREAMOFF  MMAP buffers in memfds (capture offsets
 *                from 1 << 30, as v4l2-mem2mem's), DQBUF EAGAIN on a non-blocking fd
 * It really encodes, with openh264, so that the stream okvm serves decodes in ffmpeg: a picture
 * is encoded when an OUTPUT and a CAPTURE buffer are both queued and both queues stream. The
 * first picture after STREAMON is preceded by a CAPTURE buffer holding SPS + PPS alone, as the
 * Pi sends; later IDRs carry SPS + PPS only when REPEAT_SEQ_HEADER is set. IDR buffers have
 * V4L2_BUF_FLAG_KEYFRAME. The fd is an eventfd, readable while a CAPTURE buffer is done, so
 * okvm's poll() needs no interception.
 *
 * Environment (read at each open):
 *   OKVM_FAKE_M2M_PATH    device path to fake (default /dev/video11)
 *   OKVM_FAKE_M2M_OUTPUT  NV12: offer only NV12 on the OUTPUT queue
 *   OKVM_FAKE_M2M_PLANES  single: the single-planar API instead (V4L2_CAP_VIDEO_M2M, the
 *                         OUTPUT and CAPTURE types, fmt.pix, buffers without planes), as
 *                         i.MX's coda encoder has; the rest as above
 *   OKVM_FAKE_M2M_ENCODE  none: no openh264; each picture comes back as a few bytes of NAL
 *                         headers (not decodable), for bench/h264_v4l2.py, which measures what
 *                         okvm itself spends per picture
 *   OKVM_FAKE_M2M_LOG     append what the program asked as JSON lines: {"op":"open"},
 *                         {"op":"s_fmt","queue":"output","fourcc":"YU12","width":..,...},
 *                         {"op":"s_parm","fps":..}, {"op":"ctrl","name":"bitrate","value":..},
 *                         {"op":"force_key_frame"}, {"op":"picture","n":..,"idr":..,"bytes":..},
 *                         {"op":"streamon"}, {"op":"close"}
 *   OKVM_FAKE_M2M_SCRIPT  faults, comma separated (pictures counted over the whole process):
 *     fail-open   every open fails with EBUSY (the codec's instances are taken)
 *     fail-fmt    S_FMT on the OUTPUT queue fails with EINVAL
 *     keep-output an OUTPUT buffer comes back only when the next picture is encoded (a driver
 *                 that keeps the last picture as its reference)
 *     enodev=K    after K pictures the device vanishes: ioctls ENODEV (the fd wakes), open ENOENT
 *     stall=K     picture K is never given back (nor any after it, on that fd)
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <wels/codec_api.h>

#include <linux/videodev2.h>

#define MAX_CTX 8
#define MAX_BUFS 32
#define CAP_OFF_BASE (1u << 30) /* v4l2-mem2mem's DST_QUEUE_OFF_BASE */
#define MAX_W 1920              /* MAX_W_CODEC */
#define MAX_H 1920

/* the program's, the driver's, done for DQBUF, encoded but kept (keep-output) */
enum { B_IDLE, B_QUEUED, B_DONE, B_HELD };
struct mbuf {
	int memfd;
	uint8_t *mem;
	size_t len;
	int state;
	unsigned long order;
	uint32_t used, flags;
	struct timeval ts;
};

struct queue {
	uint32_t fourcc;
	unsigned w, h, bpl, sizeimage;
	struct mbuf b[MAX_BUFS];
	unsigned n;
	bool on;
};

struct ctx {
	bool used;
	bool single; /* OKVM_FAKE_M2M_PLANES=single */
	int fd;      /* the eventfd */
	bool nonblock, stalled;
	struct queue out, cap;
	unsigned crop_w, crop_h;
	unsigned fps_num, fps_den;
	int bitrate, bitrate_mode, profile, level, i_period, min_qp, max_qp;
	bool repeat_headers, force_key, headers_sent;
	ISVCEncoder *enc;
	uint8_t *i420;
	unsigned long order;
};

static uint32_t
out_type(const struct ctx *c)
{
	return c->single ? V4L2_BUF_TYPE_VIDEO_OUTPUT : V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
}

static uint32_t
cap_type(const struct ctx *c)
{
	return c->single ? V4L2_BUF_TYPE_VIDEO_CAPTURE : V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
}

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ctx c[MAX_CTX];
	unsigned long pictures; /* over the process, for the script */
	bool gone;
	bool fail_open, fail_fmt, keep_output;
	unsigned long enodev_at, stall_at;
} F = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

static void
init_real(void)
{
	if (real_open)
		return;
	real_close = dlsym(RTLD_NEXT, "close");
	real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	real_mmap = dlsym(RTLD_NEXT, "mmap");
	real_openat = dlsym(RTLD_NEXT, "openat");
	real_open = dlsym(RTLD_NEXT, "open");
}

static void __attribute__((format(printf, 1, 2))) logj(const char *fmt, ...)
{
	const char *path = getenv("OKVM_FAKE_M2M_LOG");
	if (!path || !*path)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(line) - 1)
		return;
	line[n++] = '\n';
	int fd = real_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) != n) {
	}
	real_close(fd);
}

static const char *
fourcc_str(uint32_t f, char *buf)
{
	for (int i = 0; i < 4; i++)
		buf[i] = (char)((f >> (8 * i)) & 0xff);
	buf[4] = 0;
	return buf;
}

static void
parse_script(void)
{
	const char *s = getenv("OKVM_FAKE_M2M_SCRIPT");
	F.fail_open = F.fail_fmt = F.keep_output = false;
	F.enodev_at = F.stall_at = 0;
	if (!s)
		return;
	F.fail_open = strstr(s, "fail-open") != NULL;
	F.fail_fmt = strstr(s, "fail-fmt") != NULL;
	F.keep_output = strstr(s, "keep-output") != NULL;
	const char *p;
	if ((p = strstr(s, "enodev=")))
		F.enodev_at = strtoul(p + 7, NULL, 10);
	if ((p = strstr(s, "stall=")))
		F.stall_at = strtoul(p + 6, NULL, 10);
}

/* ---- formats ---- */

static const uint32_t raw_fmts[] = {
	V4L2_PIX_FMT_YUV420, V4L2_PIX_FMT_YVU420, V4L2_PIX_FMT_NV12,  V4L2_PIX_FMT_NV21,
	V4L2_PIX_FMT_RGB565, V4L2_PIX_FMT_YUYV,   V4L2_PIX_FMT_UYVY,  V4L2_PIX_FMT_YVYU,
	V4L2_PIX_FMT_VYUY,   V4L2_PIX_FMT_RGB24,  V4L2_PIX_FMT_BGR24, V4L2_PIX_FMT_BGR32,
};

static bool
nv12_only(void)
{
	const char *o = getenv("OKVM_FAKE_M2M_OUTPUT");
	return o && !strcmp(o, "NV12");
}

static int
enum_fmt(const struct ctx *c, struct v4l2_fmtdesc *d)
{
	uint32_t type = d->type, index = d->index;
	memset(d, 0, sizeof(*d));
	d->type = type;
	d->index = index;
	if (type == cap_type(c)) {
		if (index)
			return -EINVAL;
		d->pixelformat = V4L2_PIX_FMT_H264;
		d->flags = V4L2_FMT_FLAG_COMPRESSED;
		snprintf((char *)d->description, sizeof(d->description), "H.264");
		return 0;
	}
	if (type != out_type(c))
		return -EINVAL;
	if (nv12_only()) {
		if (index)
			return -EINVAL;
		d->pixelformat = V4L2_PIX_FMT_NV12;
	} else {
		if (index >= sizeof(raw_fmts) / sizeof(raw_fmts[0]))
			return -EINVAL;
		d->pixelformat = raw_fmts[index];
	}
	char f[5];
	snprintf((char *)d->description, sizeof(d->description), "%s",
		 fourcc_str(d->pixelformat, f));
	return 0;
}

static bool
raw_ok(uint32_t f)
{
	if (nv12_only())
		return f == V4L2_PIX_FMT_NV12;
	for (size_t i = 0; i < sizeof(raw_fmts) / sizeof(raw_fmts[0]); i++)
		if (raw_fmts[i] == f)
			return true;
	return false;
}

static unsigned
clampu(unsigned v, unsigned lo, unsigned hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void
put_fmt(struct v4l2_format *f, const struct queue *q)
{
	uint32_t type = f->type;
	memset(&f->fmt, 0, sizeof(f->fmt));
	f->type = type;
	uint32_t cs = q->fourcc == V4L2_PIX_FMT_H264 ? V4L2_COLORSPACE_DEFAULT
						     : V4L2_COLORSPACE_SMPTE170M;
	if (type == V4L2_BUF_TYPE_VIDEO_OUTPUT || type == V4L2_BUF_TYPE_VIDEO_CAPTURE) {
		struct v4l2_pix_format *p = &f->fmt.pix;
		p->width = q->w;
		p->height = q->h;
		p->pixelformat = q->fourcc;
		p->field = V4L2_FIELD_NONE;
		p->bytesperline = q->bpl;
		p->sizeimage = q->sizeimage;
		p->colorspace = cs;
		return;
	}
	struct v4l2_pix_format_mplane *p = &f->fmt.pix_mp;
	p->width = q->w;
	p->height = q->h;
	p->pixelformat = q->fourcc;
	p->field = V4L2_FIELD_NONE;
	p->num_planes = 1;
	p->plane_fmt[0].bytesperline = q->bpl;
	p->plane_fmt[0].sizeimage = q->sizeimage;
	p->colorspace = cs;
}

static unsigned
raw_bpp_x2(uint32_t f) /* bytes per pixel times 2, of the luma plane's row */
{
	switch (f) {
	case V4L2_PIX_FMT_YUYV:
	case V4L2_PIX_FMT_UYVY:
	case V4L2_PIX_FMT_YVYU:
	case V4L2_PIX_FMT_VYUY:
	case V4L2_PIX_FMT_RGB565: return 4;
	case V4L2_PIX_FMT_RGB24:
	case V4L2_PIX_FMT_BGR24: return 6;
	case V4L2_PIX_FMT_BGR32: return 8;
	default: return 2;
	}
}

/* TRY (apply false) or S_FMT; the rounding of the driver's try_fmt. */
static int
set_fmt(struct ctx *c, struct v4l2_format *f, bool apply)
{
	/* what was asked, from either layout */
	unsigned want_w = c->single ? f->fmt.pix.width : f->fmt.pix_mp.width;
	unsigned want_h = c->single ? f->fmt.pix.height : f->fmt.pix_mp.height;
	uint32_t want_f = c->single ? f->fmt.pix.pixelformat : f->fmt.pix_mp.pixelformat;
	unsigned want_bpl = c->single ? f->fmt.pix.bytesperline
				      : f->fmt.pix_mp.plane_fmt[0].bytesperline;
	unsigned want_size = c->single ? f->fmt.pix.sizeimage
				       : f->fmt.pix_mp.plane_fmt[0].sizeimage;
	struct queue q;
	char fc[5];
	if (f->type == cap_type(c)) {
		q = c->cap;
		q.fourcc = V4L2_PIX_FMT_H264;
		q.w = clampu(want_w, 32, MAX_W);
		q.h = clampu(want_h, 32, MAX_H);
		q.bpl = 0;
		unsigned def = q.w * q.h > 1280 * 720 ? 768 << 10 : 512 << 10;
		q.sizeimage = want_size > def ? want_size : def;
		if (apply) {
			if (c->cap.n)
				return -EBUSY;
			c->cap = q;
			logj("{\"op\":\"s_fmt\",\"queue\":\"capture\",\"fourcc\":\"%s\",\"width\":%u,"
			     "\"height\":%u,\"sizeimage\":%u}",
			     fourcc_str(q.fourcc, fc), q.w, q.h, q.sizeimage);
		}
		put_fmt(f, &q);
		return 0;
	}
	if (f->type != out_type(c))
		return -EINVAL;
	if (apply && F.fail_fmt) {
		logj("{\"op\":\"s_fmt\",\"queue\":\"output\",\"refused\":true}");
		return -EINVAL;
	}
	q = c->out;
	q.fourcc = raw_ok(want_f) ? want_f
				  : (nv12_only() ? V4L2_PIX_FMT_NV12 : V4L2_PIX_FMT_YUV420);
	unsigned vis_w = clampu(want_w, 32, MAX_W), vis_h = clampu(want_h, 32, MAX_H);
	q.w = vis_w;
	q.h = (vis_h + 15) & ~15u; /* "a vertical alignment of 16 lines" */
	unsigned min_bpl = vis_w * raw_bpp_x2(q.fourcc) / 2;
	unsigned bpl = want_bpl > min_bpl ? want_bpl : min_bpl;
	q.bpl = (bpl + 31) & ~31u;
	bool planar = raw_bpp_x2(q.fourcc) == 2;
	q.sizeimage = planar ? q.bpl * q.h * 3 / 2 : q.bpl * q.h;
	if (apply) {
		if (c->out.n)
			return -EBUSY;
		c->out = q;
		c->crop_w = vis_w;
		c->crop_h = vis_h;
		logj("{\"op\":\"s_fmt\",\"queue\":\"output\",\"fourcc\":\"%s\",\"width\":%u,"
		     "\"height\":%u,\"bytesperline\":%u,\"sizeimage\":%u,\"asked_width\":%u,"
		     "\"asked_height\":%u}",
		     fourcc_str(q.fourcc, fc), q.w, q.h, q.bpl, q.sizeimage, want_w, want_h);
	}
	put_fmt(f, &q);
	return 0;
}

static int
get_fmt(struct ctx *c, struct v4l2_format *f)
{
	if (f->type == cap_type(c))
		put_fmt(f, &c->cap);
	else if (f->type == out_type(c))
		put_fmt(f, &c->out);
	else
		return -EINVAL;
	return 0;
}

static int
selection(struct ctx *c, struct v4l2_selection *s, bool set)
{
	if (s->type != V4L2_BUF_TYPE_VIDEO_OUTPUT && s->type != V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE)
		return -EINVAL;
	if (s->target != V4L2_SEL_TGT_CROP && (set || (s->target != V4L2_SEL_TGT_CROP_DEFAULT &&
						       s->target != V4L2_SEL_TGT_CROP_BOUNDS)))
		return -EINVAL;
	if (set) {
		c->crop_w = clampu(s->r.width, 32, c->out.w);
		c->crop_h = clampu(s->r.height, 32, c->out.h);
		logj("{\"op\":\"s_selection\",\"width\":%u,\"height\":%u}", c->crop_w, c->crop_h);
	}
	s->r.left = s->r.top = 0;
	s->r.width = set || s->target == V4L2_SEL_TGT_CROP ? c->crop_w : c->out.w;
	s->r.height = set || s->target == V4L2_SEL_TGT_CROP ? c->crop_h : c->out.h;
	return 0;
}

static int
parm(struct ctx *c, struct v4l2_streamparm *p, bool set)
{
	if (p->type != out_type(c))
		return -EINVAL;
	struct v4l2_fract *t = &p->parm.output.timeperframe;
	if (set) {
		if (!t->numerator || !t->denominator)
			return -EINVAL;
		c->fps_num = t->denominator;
		c->fps_den = t->numerator;
		logj("{\"op\":\"s_parm\",\"fps\":%.3f}", (double)c->fps_num / c->fps_den);
	}
	memset(&p->parm, 0, sizeof(p->parm));
	p->parm.output.capability = V4L2_CAP_TIMEPERFRAME;
	p->parm.output.timeperframe.numerator = c->fps_den;
	p->parm.output.timeperframe.denominator = c->fps_num;
	return 0;
}

/* ---- controls ---- */

struct ctrl_def {
	uint32_t id;
	const char *name;
	int type, min, max, def;
};

static const struct ctrl_def ctrl_defs[] = {
	{ V4L2_CID_MPEG_VIDEO_BITRATE, "bitrate", V4L2_CTRL_TYPE_INTEGER, 25000, 25000000,
	  10000000 },
	{ V4L2_CID_MPEG_VIDEO_BITRATE_MODE, "bitrate_mode", V4L2_CTRL_TYPE_MENU, 0, 1, 0 },
	{ V4L2_CID_MPEG_VIDEO_H264_PROFILE, "profile", V4L2_CTRL_TYPE_MENU, 0, 4, 4 },
	{ V4L2_CID_MPEG_VIDEO_H264_LEVEL, "level", V4L2_CTRL_TYPE_MENU, 0, 13, 11 },
	{ V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, "i_period", V4L2_CTRL_TYPE_INTEGER, 0, 0x7fffffff,
	  60 },
	{ V4L2_CID_MPEG_VIDEO_H264_MIN_QP, "min_qp", V4L2_CTRL_TYPE_INTEGER, 0, 51, 0 },
	{ V4L2_CID_MPEG_VIDEO_H264_MAX_QP, "max_qp", V4L2_CTRL_TYPE_INTEGER, 0, 51, 51 },
	{ V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, "repeat_seq_header", V4L2_CTRL_TYPE_BOOLEAN, 0, 1,
	  0 },
	{ V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, "force_key_frame", V4L2_CTRL_TYPE_BUTTON, 0, 0, 0 },
};
#define NCTRL (sizeof(ctrl_defs) / sizeof(ctrl_defs[0]))

static int *
ctrl_field(struct ctx *c, uint32_t id)
{
	switch (id) {
	case V4L2_CID_MPEG_VIDEO_BITRATE: return &c->bitrate;
	case V4L2_CID_MPEG_VIDEO_BITRATE_MODE: return &c->bitrate_mode;
	case V4L2_CID_MPEG_VIDEO_H264_PROFILE: return &c->profile;
	case V4L2_CID_MPEG_VIDEO_H264_LEVEL: return &c->level;
	case V4L2_CID_MPEG_VIDEO_H264_I_PERIOD: return &c->i_period;
	case V4L2_CID_MPEG_VIDEO_H264_MIN_QP: return &c->min_qp;
	case V4L2_CID_MPEG_VIDEO_H264_MAX_QP: return &c->max_qp;
	default: return NULL;
	}
}

static const struct ctrl_def *
ctrl_find(uint32_t id)
{
	for (size_t i = 0; i < NCTRL; i++)
		if (ctrl_defs[i].id == id)
			return &ctrl_defs[i];
	return NULL;
}

static int
set_ctrl(struct ctx *c, uint32_t id, int value)
{
	const struct ctrl_def *d = ctrl_find(id);
	if (!d)
		return -EINVAL;
	if (d->type != V4L2_CTRL_TYPE_BUTTON && (value < d->min || value > d->max))
		return -ERANGE;
	if (id == V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME) {
		c->force_key = true;
		logj("{\"op\":\"force_key_frame\"}");
		return 0;
	}
	if (id == V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER)
		c->repeat_headers = value;
	else
		*ctrl_field(c, id) = value;
	logj("{\"op\":\"ctrl\",\"name\":\"%s\",\"value\":%d}", d->name, value);
	if (c->enc && id == V4L2_CID_MPEG_VIDEO_BITRATE) {
		SBitrateInfo b = { .iLayer = SPATIAL_LAYER_ALL, .iBitrate = value };
		(*c->enc)->SetOption(c->enc, ENCODER_OPTION_BITRATE, &b);
	}
	return 0;
}

static int
get_ctrl(struct ctx *c, struct v4l2_control *v)
{
	const struct ctrl_def *d = ctrl_find(v->id);
	if (!d || d->type == V4L2_CTRL_TYPE_BUTTON)
		return -EINVAL;
	v->value = v->id == V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER ? c->repeat_headers
								  : *ctrl_field(c, v->id);
	return 0;
}

static int
query_ctrl(struct v4l2_queryctrl *q)
{
	const struct ctrl_def *d = ctrl_find(q->id);
	if (!d)
		return -EINVAL;
	memset(q, 0, sizeof(*q));
	q->id = d->id;
	q->type = (uint32_t)d->type;
	snprintf((char *)q->name, sizeof(q->name), "%s", d->name);
	q->minimum = d->min;
	q->maximum = d->max;
	q->step = 1;
	q->default_value = d->def;
	return 0;
}

static int
ext_ctrls(struct ctx *c, struct v4l2_ext_controls *x)
{
	for (unsigned i = 0; i < x->count; i++) {
		int rc = set_ctrl(c, x->controls[i].id, x->controls[i].value);
		if (rc) {
			x->error_idx = i;
			return rc;
		}
	}
	return 0;
}

/* ---- buffers ---- */

static struct queue *
queue_of(struct ctx *c, uint32_t type)
{
	if (type == out_type(c))
		return &c->out;
	if (type == cap_type(c))
		return &c->cap;
	return NULL;
}

static void
free_bufs(struct queue *q)
{
	for (unsigned i = 0; i < q->n; i++) {
		munmap(q->b[i].mem, q->b[i].len);
		real_close(q->b[i].memfd);
	}
	memset(q->b, 0, sizeof(q->b));
	q->n = 0;
}

static int
reqbufs(struct ctx *c, struct v4l2_requestbuffers *rb)
{
	struct queue *q = queue_of(c, rb->type);
	if (!q || rb->memory != V4L2_MEMORY_MMAP)
		return -EINVAL;
	if (q->on)
		return -EBUSY;
	free_bufs(q);
	unsigned n = clampu(rb->count, rb->count ? 1 : 0, MAX_BUFS);
	for (unsigned i = 0; i < n; i++) {
		struct mbuf *b = &q->b[i];
		b->len = q->sizeimage;
		b->memfd = memfd_create("fake-m2m-buf", MFD_CLOEXEC);
		if (b->memfd < 0 || ftruncate(b->memfd, (off_t)b->len) ||
		    (b->mem = real_mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_SHARED, b->memfd,
					0)) == MAP_FAILED) {
			q->n = i;
			free_bufs(q);
			return -ENOMEM;
		}
		q->n = i + 1;
	}
	rb->count = n;
	rb->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP;
	logj("{\"op\":\"reqbufs\",\"queue\":\"%s\",\"count\":%u}",
	     q == &c->out ? "output" : "capture", n);
	return 0;
}

static int
buf_of(struct ctx *c, struct v4l2_buffer *v, struct queue **qp)
{
	struct queue *q = queue_of(c, v->type);
	if (!q || v->index >= q->n || v->memory != V4L2_MEMORY_MMAP ||
	    (!c->single && (!v->m.planes || v->length < 1)))
		return -EINVAL;
	*qp = q;
	return (int)v->index;
}

static void
fill_buf(struct ctx *c, struct queue *q, unsigned i, struct v4l2_buffer *v)
{
	struct mbuf *b = &q->b[i];
	v->index = i;
	v->flags = b->flags |
		   (b->state == B_QUEUED || b->state == B_HELD ? V4L2_BUF_FLAG_QUEUED : 0) |
		   (b->state == B_DONE ? V4L2_BUF_FLAG_DONE : 0) | V4L2_BUF_FLAG_TIMESTAMP_COPY;
	v->field = V4L2_FIELD_NONE;
	v->timestamp = b->ts;
	unsigned off = (q == &c->cap ? CAP_OFF_BASE : 0) + i * 4096u;
	if (c->single) {
		v->length = (unsigned)b->len;
		v->bytesused = b->used;
		v->m.offset = off;
		return;
	}
	struct v4l2_plane *p = v->m.planes;
	v->length = 1;
	memset(p, 0, sizeof(*p));
	p->length = (unsigned)b->len;
	p->bytesused = b->used;
	p->m.mem_offset = off;
}

static void
wake(struct ctx *c)
{
	uint64_t one = 1;
	if (write(c->fd, &one, sizeof(one)) != sizeof(one)) {
	}
	pthread_cond_broadcast(&F.cond);
}

static bool
cap_ready(struct ctx *c)
{
	for (unsigned i = 0; i < c->cap.n; i++)
		if (c->cap.b[i].state == B_DONE)
			return true;
	return false;
}

static void
drain_wake(struct ctx *c)
{
	if (cap_ready(c) || F.gone)
		return;
	uint64_t v;
	if (read(c->fd, &v, sizeof(v)) < 0) {
	}
}

static int
open_encoder(struct ctx *c)
{
	if (WelsCreateSVCEncoder(&c->enc) || !c->enc)
		return -ENOMEM;
	SEncParamExt p;
	(*c->enc)->GetDefaultParams(c->enc, &p);
	float fps = c->fps_den ? (float)c->fps_num / (float)c->fps_den : 30.0f;
	p.iUsageType = CAMERA_VIDEO_REAL_TIME;
	p.iPicWidth = (int)c->crop_w;
	p.iPicHeight = (int)c->crop_h;
	p.iTargetBitrate = c->bitrate;
	p.iRCMode = RC_BITRATE_MODE;
	p.fMaxFrameRate = fps;
	p.uiIntraPeriod = (unsigned)c->i_period;
	p.eSpsPpsIdStrategy = CONSTANT_ID;
	p.iEntropyCodingModeFlag = 0;
	p.bEnableFrameSkip = false;
	p.iMultipleThreadIdc = 1;
	p.sSpatialLayers[0].iVideoWidth = (int)c->crop_w;
	p.sSpatialLayers[0].iVideoHeight = (int)c->crop_h;
	p.sSpatialLayers[0].fFrameRate = fps;
	p.sSpatialLayers[0].iSpatialBitrate = c->bitrate;
	p.sSpatialLayers[0].uiProfileIdc = PRO_BASELINE;
	/* the V4L2 level menu (1.0, 1b, 1.1 ... 4.2) as the SPS's level_idc */
	static const ELevelIdc levels[] = { LEVEL_1_0, LEVEL_1_B, LEVEL_1_1, LEVEL_1_2, LEVEL_1_3,
					    LEVEL_2_0, LEVEL_2_1, LEVEL_2_2, LEVEL_3_0, LEVEL_3_1,
					    LEVEL_3_2, LEVEL_4_0, LEVEL_4_1, LEVEL_4_2 };
	if (c->level >= 0 && c->level < (int)(sizeof(levels) / sizeof(levels[0])))
		p.sSpatialLayers[0].uiLevelIdc = levels[c->level];
	p.sSpatialLayers[0].sSliceArgument.uiSliceMode = SM_SINGLE_SLICE;
	int quiet = WELS_LOG_QUIET;
	(*c->enc)->SetOption(c->enc, ENCODER_OPTION_TRACE_LEVEL, &quiet);
	if ((*c->enc)->InitializeExt(c->enc, &p)) {
		WelsDestroySVCEncoder(c->enc);
		c->enc = NULL;
		return -EINVAL;
	}
	c->i420 = malloc((size_t)c->crop_w * c->crop_h * 3 / 2 + 16);
	return c->i420 ? 0 : -ENOMEM;
}

static void
close_encoder(struct ctx *c)
{
	if (c->enc) {
		(*c->enc)->Uninitialize(c->enc);
		WelsDestroySVCEncoder(c->enc);
		c->enc = NULL;
	}
	free(c->i420);
	c->i420 = NULL;
	c->headers_sent = false;
}

static int
oldest(struct queue *q, int state)
{
	int best = -1;
	for (unsigned i = 0; i < q->n; i++)
		if (q->b[i].state == state && (best < 0 || q->b[i].order < q->b[best].order))
			best = (int)i;
	return best;
}

/* The raw picture of OUTPUT buffer b as I420 at the crop size (YU12 and NV12; other formats
 * become grey, okvm never sends them). */
static void
to_i420(struct ctx *c, const struct mbuf *b, SSourcePicture *pic)
{
	unsigned w = c->crop_w, h = c->crop_h, cw = (w + 1) / 2, ch = (h + 1) / 2;
	unsigned bpl = c->out.bpl, rows = c->out.h;
	uint8_t *y = c->i420, *u = y + (size_t)w * h, *v = u + (size_t)cw * ch;
	for (unsigned r = 0; r < h; r++)
		memcpy(y + (size_t)w * r, b->mem + (size_t)bpl * r, w);
	const uint8_t *c0 = b->mem + (size_t)bpl * rows;
	if (c->out.fourcc == V4L2_PIX_FMT_NV12 || c->out.fourcc == V4L2_PIX_FMT_NV21) {
		bool swap = c->out.fourcc == V4L2_PIX_FMT_NV21;
		for (unsigned r = 0; r < ch; r++)
			for (unsigned x = 0; x < cw; x++) {
				const uint8_t *s = c0 + (size_t)bpl * r + 2 * x;
				u[(size_t)cw * r + x] = s[swap];
				v[(size_t)cw * r + x] = s[!swap];
			}
	} else if (c->out.fourcc == V4L2_PIX_FMT_YUV420 || c->out.fourcc == V4L2_PIX_FMT_YVU420) {
		const uint8_t *c1 = c0 + (size_t)(bpl / 2) * (rows / 2);
		bool swap = c->out.fourcc == V4L2_PIX_FMT_YVU420;
		for (unsigned r = 0; r < ch; r++) {
			memcpy(u + (size_t)cw * r, (swap ? c1 : c0) + (size_t)(bpl / 2) * r, cw);
			memcpy(v + (size_t)cw * r, (swap ? c0 : c1) + (size_t)(bpl / 2) * r, cw);
		}
	} else {
		memset(y, 128, (size_t)w * h + 2 * (size_t)cw * ch);
	}
	memset(pic, 0, sizeof(*pic));
	pic->iColorFormat = videoFormatI420;
	pic->iPicWidth = (int)w;
	pic->iPicHeight = (int)h;
	pic->iStride[0] = (int)w;
	pic->iStride[1] = pic->iStride[2] = (int)cw;
	pic->pData[0] = y;
	pic->pData[1] = u;
	pic->pData[2] = v;
}

/* Copy the NAL units of the encoded picture into dst: SPS/PPS (types 7, 8) only when
 * headers, the rest only when slices. */
static size_t
copy_nals(const SFrameBSInfo *info, uint8_t *dst, size_t cap, bool headers, bool slices)
{
	size_t n = 0;
	for (int i = 0; i < info->iLayerNum; i++) {
		const SLayerBSInfo *l = &info->sLayerInfo[i];
		const uint8_t *p = l->pBsBuf;
		for (int j = 0; j < l->iNalCount; j++) {
			size_t len = (size_t)l->pNalLengthInByte[j];
			size_t sc = len > 3 && !p[2] ? 4 : 3;
			int t = len > sc ? p[sc] & 0x1f : 0;
			bool hdr = t == 7 || t == 8;
			if (((hdr && headers) || (!hdr && slices)) && n + len <= cap) {
				memcpy(dst + n, p, len);
				n += len;
			}
			p += len;
		}
	}
	return n;
}

static void
finish(struct ctx *c, struct mbuf *cb, size_t used, uint32_t flags, struct timeval ts)
{
	cb->used = (uint32_t)used;
	cb->flags = flags;
	cb->ts = ts;
	cb->state = B_DONE;
	cb->order = ++c->order;
}

static bool
null_encode(void)
{
	const char *e = getenv("OKVM_FAKE_M2M_ENCODE");
	return e && !strcmp(e, "none");
}

/* OKVM_FAKE_M2M_ENCODE=none: SPS + PPS, or a slice header, and nothing that decodes. */
static size_t
null_picture(struct ctx *c, uint8_t *dst, bool headers, bool idr)
{
	static const uint8_t hdr[] = { 0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x28, 0, 0, 0, 1, 0x68, 0xce };
	static const uint8_t i_slice[] = { 0, 0, 0, 1, 0x65, 0x88, 0x84 };
	static const uint8_t p_slice[] = { 0, 0, 0, 1, 0x41, 0x9a, 0x02 };
	size_t n = 0;
	if (headers) {
		memcpy(dst, hdr, sizeof(hdr));
		n = sizeof(hdr);
	}
	if (!headers || idr) {
		memcpy(dst + n, idr ? i_slice : p_slice, sizeof(i_slice));
		n += sizeof(i_slice);
	}
	return n;
}

/* Both queues stream, an OUTPUT and CAPTURE buffer wait: encode one picture. */
static void
run(struct ctx *c)
{
	while (c->out.on && c->cap.on && !F.gone && !c->stalled) {
		int oi = oldest(&c->out, B_QUEUED), ci = oldest(&c->cap, B_QUEUED);
		if (oi < 0 || ci < 0)
			return;
		bool null = null_encode();
		if (!null && !c->enc && open_encoder(c))
			return;
		struct mbuf *ob = &c->out.b[oi], *cb = &c->cap.b[ci];
		if (null && cb->len >= 64) {
			bool idr = c->headers_sent && c->force_key;
			size_t n = null_picture(c, cb->mem, !c->headers_sent, idr);
			finish(c, cb, n, idr ? V4L2_BUF_FLAG_KEYFRAME : 0, ob->ts);
			if (c->headers_sent) {
				ob->state = B_DONE;
				ob->order = ++c->order;
				c->force_key = false;
			}
			c->headers_sent = true;
			wake(c);
			continue;
		}
		if (!c->headers_sent) { /* the Pi's first CAPTURE buffer: SPS + PPS alone */
			SFrameBSInfo info;
			memset(&info, 0, sizeof(info));
			(*c->enc)->EncodeParameterSets(c->enc, &info);
			size_t n = copy_nals(&info, cb->mem, cb->len, true, false);
			finish(c, cb, n, 0, ob->ts);
			c->headers_sent = true;
			wake(c);
			continue;
		}
		unsigned long k = ++F.pictures;
		if (F.stall_at && k == F.stall_at) {
			c->stalled = true;
			logj("{\"op\":\"stall\",\"n\":%lu}", k);
			return;
		}
		SSourcePicture pic;
		to_i420(c, ob, &pic);
		if (c->force_key)
			(*c->enc)->ForceIntraFrame(c->enc, true);
		c->force_key = false;
		SFrameBSInfo info;
		memset(&info, 0, sizeof(info));
		if ((*c->enc)->EncodeFrame(c->enc, &pic, &info) != cmResultSuccess)
			info.eFrameType = videoFrameTypeInvalid;
		bool idr = info.eFrameType == videoFrameTypeIDR;
		size_t n = copy_nals(&info, cb->mem, cb->len, idr && c->repeat_headers, true);
		for (unsigned i = 0; F.keep_output && i < c->out.n; i++)
			if (c->out.b[i].state == B_HELD) { /* the last picture is given back now */
				c->out.b[i].state = B_DONE;
				c->out.b[i].order = ++c->order;
			}
		ob->state = F.keep_output ? B_HELD : B_DONE;
		ob->order = ++c->order;
		finish(c, cb, n,
		       (idr ? V4L2_BUF_FLAG_KEYFRAME : V4L2_BUF_FLAG_PFRAME) |
			       (info.eFrameType == videoFrameTypeInvalid ? V4L2_BUF_FLAG_ERROR : 0),
		       ob->ts);
		logj("{\"op\":\"picture\",\"n\":%lu,\"idr\":%s,\"bytes\":%zu}", k,
		     idr ? "true" : "false", n);
		wake(c);
		if (F.enodev_at && k >= F.enodev_at) {
			F.gone = true;
			logj("{\"op\":\"vanish\",\"n\":%lu}", k);
			for (int i = 0; i < MAX_CTX; i++)
				if (F.c[i].used)
					wake(&F.c[i]);
		}
	}
}

static int
qbuf(struct ctx *c, struct v4l2_buffer *v)
{
	struct queue *q;
	int i = buf_of(c, v, &q);
	if (i < 0)
		return i;
	struct mbuf *b = &q->b[i];
	if (b->state != B_IDLE)
		return -EINVAL;
	b->state = B_QUEUED;
	b->flags = 0;
	b->order = ++c->order;
	if (q == &c->out) {
		uint32_t used = c->single ? v->bytesused : v->m.planes[0].bytesused;
		b->used = used ? used : (uint32_t)b->len;
		b->ts = v->timestamp;
	}
	run(c);
	return 0;
}

static int
dqbuf(struct ctx *c, struct v4l2_buffer *v)
{
	struct queue *q;
	uint32_t type = v->type;
	if (!(q = queue_of(c, type)) || (!c->single && (!v->m.planes || v->length < 1)))
		return -EINVAL;
	for (;;) {
		if (F.gone)
			return -ENODEV;
		if (!q->on)
			return -EINVAL;
		int best = oldest(q, B_DONE);
		if (best >= 0) {
			struct mbuf *b = &q->b[best];
			b->state = B_IDLE;
			fill_buf(c, q, (unsigned)best, v);
			v->flags &= ~(uint32_t)(V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_DONE);
			v->type = type;
			v->memory = V4L2_MEMORY_MMAP;
			if (q == &c->cap)
				drain_wake(c);
			return 0;
		}
		if (c->nonblock)
			return -EAGAIN;
		pthread_cond_wait(&F.cond, &F.lock);
	}
}

static int
stream(struct ctx *c, unsigned req, const int *type)
{
	struct queue *q = queue_of(c, (uint32_t)*type);
	if (!q)
		return -EINVAL;
	if (req == VIDIOC_STREAMON) {
		if (!q->n)
			return -EINVAL;
		q->on = true;
		logj("{\"op\":\"streamon\",\"queue\":\"%s\"}", q == &c->out ? "output" : "capture");
		run(c);
		return 0;
	}
	q->on = false;
	for (unsigned i = 0; i < q->n; i++)
		q->b[i].state = B_IDLE;
	if (q == &c->out)
		close_encoder(c);
	drain_wake(c);
	return 0;
}

static int
do_ioctl(struct ctx *c, unsigned req, void *arg)
{
	if (F.gone)
		return -ENODEV;
	switch (req) {
	case VIDIOC_QUERYCAP: {
		struct v4l2_capability *cap = arg;
		memset(cap, 0, sizeof(*cap));
		snprintf((char *)cap->driver, sizeof(cap->driver), "bcm2835-codec");
		snprintf((char *)cap->card, sizeof(cap->card), "bcm2835-codec-encode");
		snprintf((char *)cap->bus_info, sizeof(cap->bus_info), "platform:bcm2835-codec");
		cap->version = 0x060100;
		cap->device_caps = (c->single ? V4L2_CAP_VIDEO_M2M : V4L2_CAP_VIDEO_M2M_MPLANE) |
				   V4L2_CAP_STREAMING;
		cap->capabilities = cap->device_caps | V4L2_CAP_DEVICE_CAPS;
		return 0;
	}
	case VIDIOC_ENUM_FMT: return enum_fmt(c, arg);
	case VIDIOC_G_FMT: return get_fmt(c, arg);
	case VIDIOC_S_FMT: return set_fmt(c, arg, true);
	case VIDIOC_TRY_FMT: return set_fmt(c, arg, false);
	case VIDIOC_G_SELECTION: return selection(c, arg, false);
	case VIDIOC_S_SELECTION: return selection(c, arg, true);
	case VIDIOC_G_PARM: return parm(c, arg, false);
	case VIDIOC_S_PARM: return parm(c, arg, true);
	case VIDIOC_QUERYCTRL: return query_ctrl(arg);
	case VIDIOC_S_CTRL: {
		struct v4l2_control *v = arg;
		return set_ctrl(c, v->id, v->value);
	}
	case VIDIOC_G_CTRL: return get_ctrl(c, arg);
	case VIDIOC_S_EXT_CTRLS: return ext_ctrls(c, arg);
	case VIDIOC_REQBUFS: return reqbufs(c, arg);
	case VIDIOC_QUERYBUF: {
		struct queue *q;
		int i = buf_of(c, arg, &q);
		if (i < 0)
			return i;
		fill_buf(c, q, (unsigned)i, arg);
		return 0;
	}
	case VIDIOC_QBUF: return qbuf(c, arg);
	case VIDIOC_DQBUF: return dqbuf(c, arg);
	case VIDIOC_STREAMON:
	case VIDIOC_STREAMOFF: return stream(c, req, arg);
	case VIDIOC_SUBSCRIBE_EVENT:
	case VIDIOC_UNSUBSCRIBE_EVENT: return 0;
	case VIDIOC_DQEVENT: return -ENOENT;
	default: return -ENOTTY;
	}
}

/* ---- the intercepted calls ---- */

static struct ctx *
ctx_of(int fd)
{
	for (int i = 0; fd >= 0 && i < MAX_CTX; i++)
		if (F.c[i].used && F.c[i].fd == fd)
			return &F.c[i];
	return NULL;
}

static int
fake_open(const char *path, int flags)
{
	const char *want = getenv("OKVM_FAKE_M2M_PATH");
	if (!want)
		want = "/dev/video11";
	if (!path || strcmp(path, want))
		return -2;
	pthread_mutex_lock(&F.lock);
	parse_script();
	int rc;
	struct ctx *c = NULL;
	for (int i = 0; !c && i < MAX_CTX; i++)
		if (!F.c[i].used)
			c = &F.c[i];
	if (F.gone)
		rc = -ENOENT;
	else if (F.fail_open)
		rc = -EBUSY;
	else if (!c)
		rc = -EBUSY;
	else {
		memset(c, 0, sizeof(*c));
		c->used = true;
		const char *planes = getenv("OKVM_FAKE_M2M_PLANES");
		c->single = planes && !strcmp(planes, "single");
		c->fd = eventfd(0, EFD_NONBLOCK | ((flags & O_CLOEXEC) ? EFD_CLOEXEC : 0));
		c->nonblock = flags & O_NONBLOCK;
		c->bitrate = 10000000;
		c->profile = V4L2_MPEG_VIDEO_H264_PROFILE_HIGH;
		c->level = V4L2_MPEG_VIDEO_H264_LEVEL_4_0;
		c->i_period = 60;
		c->max_qp = 51;
		c->fps_num = 30;
		c->fps_den = 1;
		c->out.fourcc = V4L2_PIX_FMT_YUV420;
		c->out.w = c->crop_w = 1920;
		c->out.h = 1088;
		c->crop_h = 1080;
		c->out.bpl = 1920;
		c->out.sizeimage = 1920 * 1088 * 3 / 2;
		c->cap.fourcc = V4L2_PIX_FMT_H264;
		c->cap.w = 1920;
		c->cap.h = 1080;
		c->cap.sizeimage = 768 << 10;
		rc = c->fd < 0 ? -errno : c->fd;
		c->used = c->fd >= 0;
	}
	logj(rc >= 0 ? "{\"op\":\"open\",\"path\":\"%s\"}"
		     : "{\"op\":\"open\",\"path\":\"%s\","
		       "\"refused\":true}",
	     path);
	pthread_mutex_unlock(&F.lock);
	return rc;
}

static int
open_common(int dirfd, const char *path, int flags, va_list ap)
{
	init_real();
	int rc = path && path[0] == '/' ? fake_open(path, flags) : -2;
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

int
close(int fd)
{
	init_real();
	pthread_mutex_lock(&F.lock);
	struct ctx *c = ctx_of(fd);
	if (c) {
		close_encoder(c);
		free_bufs(&c->out);
		free_bufs(&c->cap);
		c->used = false;
		logj("{\"op\":\"close\"}");
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
	struct ctx *c = ctx_of(fd);
	if (!c) {
		pthread_mutex_unlock(&F.lock);
		return real_ioctl(fd, req, arg);
	}
	int rc = do_ioctl(c, (unsigned int)req, arg);
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
	struct ctx *c = ctx_of(fd);
	if (!c) {
		pthread_mutex_unlock(&F.lock);
		return real_mmap(addr, len, prot, flags, fd, off);
	}
	struct queue *q = (uint64_t)off >= CAP_OFF_BASE ? &c->cap : &c->out;
	unsigned i = (unsigned)(((uint64_t)off - (q == &c->cap ? CAP_OFF_BASE : 0)) / 4096u);
	void *m = MAP_FAILED;
	if (F.gone)
		errno = ENODEV;
	else if (i >= q->n || len > q->b[i].len)
		errno = EINVAL;
	else
		m = real_mmap(addr, len, prot, flags, q->b[i].memfd, 0);
	pthread_mutex_unlock(&F.lock);
	return m;
}

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap_common(addr, len, prot, flags, fd, off);
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return mmap_common(addr, len, prot, flags, fd, (off_t)off);
}
