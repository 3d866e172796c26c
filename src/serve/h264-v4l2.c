/*
 * DESIGN: H.264 from a stateful V4L2 memory-to-memory encoder (docs/serve.md, "H.264"), the
 * hardware behind the same job as openh264 (h264.c, which picks between them and falls back).
 *
 * The device is a Raspberry Pi's bcm2835-codec-encode (/dev/video11) or any other stateful
 * encoder (Documentation/userspace-api/media/v4l/dev-encoder.rst): raw pictures are queued on
 * its OUTPUT queue, H.264 comes back on its CAPTURE queue. Both the multi-planar and the
 * single-planar API are spoken (bcm2835, venus, mtk are multi-planar; coda is single). The
 * setup follows dev-encoder.rst: S_FMT CAPTURE (H264, a sizeimage suggestion) before S_FMT
 * OUTPUT (YU12, else NV12), the visible rectangle as the OUTPUT crop (drivers round the height
 * up: bcm2835 to 16 lines, bytesperline to 32), S_PARM for the frame rate, then the codec
 * controls: bitrate, constrained baseline (no B-frames), a level for the size and rate, the
 * IDR period, and REPEAT_SEQ_HEADER so that every IDR carries SPS + PPS.
 *
 * One picture in, one access unit out, synchronously on the variant's thread: the picture is
 * copied into a free OUTPUT buffer (I420 as it is, or interleaved to NV12 right there: no
 * buffer of our own per frame), queued, and the thread polls the fd for at most
 * H264_V4L2_TIMEOUT_MS for the CAPTURE buffer. An encoder that sends SPS + PPS in a buffer of
 * their own (bcm2835 does, first) has them kept and put in front of the next picture; an IDR
 * without them gets the last ones seen, so SPS + PPS precede every IDR whatever the driver
 * does with REPEAT_SEQ_HEADER. An IDR on request is V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME before
 * the picture is queued.
 *
 * What it does not do: decide what to use or log (h264.c does; here failures come back as
 * -errno with a reason in words), stateless encoders (request API), DMABUF import, more than
 * one picture in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/videodev2.h>

#include "lib/xalloc.h"
#include "serve/internal.h"

#define H264_V4L2_TIMEOUT_MS 1000
#define H264_V4L2_IDR_PERIOD_S 30 /* as openh264's (h264.c) */
#define NBUF_OUT 3
#define NBUF_CAP 4
#define MAX_HEADERS 1024 /* SPS + PPS are some tens of bytes */

struct mbuf {
	void *mem[VIDEO_MAX_PLANES];
	size_t len[VIDEO_MAX_PLANES];
	bool queued;
};

struct h264_v4l2 {
	int fd;
	bool mplane;
	uint32_t out_type, cap_type, out_fourcc;
	int w, h;            /* the picture (the OUTPUT crop) */
	unsigned bpl, rows;  /* the OUTPUT buffer's luma stride and (aligned) height */
	unsigned out_planes; /* 1 (contiguous) or, for YUV420M/NV12M, 3 or 2 */
	struct mbuf out[NBUF_OUT], cap[NBUF_CAP];
	unsigned nout, ncap;
	bool streaming;
	uint8_t headers[MAX_HEADERS]; /* the last SPS + PPS, Annex-B */
	size_t headers_len;
	uint8_t *au;
	size_t au_len, au_cap;
};

static int
xioctl(int fd, unsigned long req, void *arg)
{
	int rc;
	do
		rc = ioctl(fd, req, arg);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : 0;
}

/* Does the queue of this type offer fourcc? */
static bool
offers(int fd, uint32_t type, uint32_t fourcc)
{
	for (unsigned i = 0; i < 64; i++) {
		struct v4l2_fmtdesc d = { .index = i, .type = type };
		if (xioctl(fd, VIDIOC_ENUM_FMT, &d))
			return false;
		if (d.pixelformat == fourcc)
			return true;
	}
	return false;
}

/* The queue types and raw format of an encoder on fd; -ENOTTY (not M2M) or -EMEDIUMTYPE (no
 * H.264 out, or no YU12/NV12 in), with the reason in why. */
static int
identify(struct h264_v4l2 *e, char *card, size_t card_n, char *why, size_t n)
{
	struct v4l2_capability c;
	memset(&c, 0, sizeof(c));
	int rc = xioctl(e->fd, VIDIOC_QUERYCAP, &c);
	if (rc) {
		snprintf(why, n, "not a V4L2 device (QUERYCAP: %s)", strerror(-rc));
		return rc == -ENODEV ? rc : -ENOTTY;
	}
	uint32_t caps = c.capabilities & V4L2_CAP_DEVICE_CAPS ? c.device_caps : c.capabilities;
	snprintf(card, card_n, "%.32s", (const char *)c.card);
	if (!(caps & V4L2_CAP_STREAMING) ||
	    !(caps & (V4L2_CAP_VIDEO_M2M_MPLANE | V4L2_CAP_VIDEO_M2M))) {
		snprintf(why, n, "%s is not a memory-to-memory device", card);
		return -ENOTTY;
	}
	e->mplane = caps & V4L2_CAP_VIDEO_M2M_MPLANE;
	e->out_type = e->mplane ? V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE : V4L2_BUF_TYPE_VIDEO_OUTPUT;
	e->cap_type = e->mplane ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
	if (!offers(e->fd, e->cap_type, V4L2_PIX_FMT_H264)) {
		snprintf(why, n, "%s does not encode H.264 (its CAPTURE queue has no H264)", card);
		return -EMEDIUMTYPE;
	}
	if (offers(e->fd, e->out_type, V4L2_PIX_FMT_YUV420))
		e->out_fourcc = V4L2_PIX_FMT_YUV420;
	else if (offers(e->fd, e->out_type, V4L2_PIX_FMT_NV12))
		e->out_fourcc = V4L2_PIX_FMT_NV12;
	else {
		snprintf(why, n, "%s takes neither YU12 nor NV12 pictures", card);
		return -EMEDIUMTYPE;
	}
	return 0;
}

int
h264_v4l2_probe(const char *path, char *card, size_t card_n, char *why, size_t n)
{
	struct h264_v4l2 e = { .fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC) };
	if (e.fd < 0) {
		int err = errno;
		snprintf(why, n, "%s", strerror(err));
		return -err;
	}
	int rc = identify(&e, card, card_n, why, n);
	close(e.fd);
	return rc;
}

int
h264_v4l2_find(char *path, size_t n)
{
	/* Numeric order, as the kernel numbers the nodes (a Pi: 10 decode, 11 encode, 12 isp) */
	for (int i = 0; i < 64; i++) {
		char p[32], card[40], why[128];
		snprintf(p, sizeof(p), "/dev/video%d", i);
		if (!h264_v4l2_probe(p, card, sizeof(card), why, sizeof(why))) {
			snprintf(path, n, "%s", p);
			return 0;
		}
	}
	return -ENODEV;
}

/* ---- setup ---- */

static int
set_formats(struct h264_v4l2 *e, float fps, char *why, size_t n)
{
	struct v4l2_format f = { .type = e->cap_type };
	size_t sizeimage = (size_t)e->w * (size_t)e->h; /* 1 byte per pixel: ample for an IDR */
	if (sizeimage < 256 * 1024)
		sizeimage = 256 * 1024;
	if (e->mplane) {
		f.fmt.pix_mp.width = (unsigned)e->w;
		f.fmt.pix_mp.height = (unsigned)e->h;
		f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_H264;
		f.fmt.pix_mp.num_planes = 1;
		f.fmt.pix_mp.plane_fmt[0].sizeimage = (unsigned)sizeimage;
	} else {
		f.fmt.pix.width = (unsigned)e->w;
		f.fmt.pix.height = (unsigned)e->h;
		f.fmt.pix.pixelformat = V4L2_PIX_FMT_H264;
		f.fmt.pix.sizeimage = (unsigned)sizeimage;
	}
	int rc = xioctl(e->fd, VIDIOC_S_FMT, &f);
	if (rc) {
		snprintf(why, n, "H264 on CAPTURE refused (S_FMT: %s)", strerror(-rc));
		return rc;
	}
	memset(&f, 0, sizeof(f));
	f.type = e->out_type;
	if (e->mplane) {
		f.fmt.pix_mp.width = (unsigned)e->w;
		f.fmt.pix_mp.height = (unsigned)e->h;
		f.fmt.pix_mp.pixelformat = e->out_fourcc;
		f.fmt.pix_mp.num_planes = 1;
		f.fmt.pix_mp.colorspace =
			V4L2_COLORSPACE_JPEG; /* full-range BT.601, as the JPEGs */
	} else {
		f.fmt.pix.width = (unsigned)e->w;
		f.fmt.pix.height = (unsigned)e->h;
		f.fmt.pix.pixelformat = e->out_fourcc;
		f.fmt.pix.colorspace = V4L2_COLORSPACE_JPEG;
	}
	rc = xioctl(e->fd, VIDIOC_S_FMT, &f);
	uint32_t got = e->mplane ? f.fmt.pix_mp.pixelformat : f.fmt.pix.pixelformat;
	unsigned gw = e->mplane ? f.fmt.pix_mp.width : f.fmt.pix.width;
	unsigned gh = e->mplane ? f.fmt.pix_mp.height : f.fmt.pix.height;
	e->bpl = e->mplane ? f.fmt.pix_mp.plane_fmt[0].bytesperline : f.fmt.pix.bytesperline;
	e->out_planes = e->mplane ? f.fmt.pix_mp.num_planes : 1;
	if (rc || got != e->out_fourcc || gw < (unsigned)e->w || gh < (unsigned)e->h ||
	    e->bpl < (unsigned)e->w || e->out_planes != 1) {
		snprintf(why, n, "%dx%d %s refused (S_FMT: %s, got %ux%u)", e->w, e->h,
			 e->out_fourcc == V4L2_PIX_FMT_NV12 ? "NV12" : "YU12",
			 rc ? strerror(-rc) : "another format", gw, gh);
		return rc ? rc : -EINVAL;
	}
	e->rows = gh;
	/* The visible rectangle, when the driver rounded the size up (optional in the API). */
	struct v4l2_selection sel = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT,
				      .target = V4L2_SEL_TGT_CROP,
				      .r = { 0, 0, (unsigned)e->w, (unsigned)e->h } };
	xioctl(e->fd, VIDIOC_S_SELECTION, &sel);
	struct v4l2_streamparm parm = { .type = e->out_type };
	parm.parm.output.timeperframe.numerator = 1000;
	parm.parm.output.timeperframe.denominator = (unsigned)(fps * 1000.0f + 0.5f);
	if (xioctl(e->fd, VIDIOC_S_PARM, &parm) && e->mplane) {
		parm.type =
			V4L2_BUF_TYPE_VIDEO_OUTPUT; /* some drivers want the single-planar type */
		xioctl(e->fd, VIDIOC_S_PARM, &parm);
	}
	return 0;
}

/* The smallest level whose macroblock rate and frame size fit (H.264 table A-1). */
static int
pick_level(int w, int h, float fps)
{
	static const struct {
		int level;
		long mbps, fs;
	} t[] = {
		{ V4L2_MPEG_VIDEO_H264_LEVEL_3_0, 40500, 1620 },
		{ V4L2_MPEG_VIDEO_H264_LEVEL_3_1, 108000, 3600 },
		{ V4L2_MPEG_VIDEO_H264_LEVEL_3_2, 216000, 5120 },
		{ V4L2_MPEG_VIDEO_H264_LEVEL_4_0, 245760, 8192 },
		{ V4L2_MPEG_VIDEO_H264_LEVEL_4_2, 522240, 8704 },
		{ V4L2_MPEG_VIDEO_H264_LEVEL_5_0, 589824, 22080 },
		{ V4L2_MPEG_VIDEO_H264_LEVEL_5_1, 983040, 36864 },
	};
	long fs = (long)((w + 15) / 16) * ((h + 15) / 16);
	long mbps = (long)(fs * fps + 0.5f);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (fs <= t[i].fs && mbps <= t[i].mbps)
			return t[i].level;
	return V4L2_MPEG_VIDEO_H264_LEVEL_5_1;
}

static int
set_ctrl(struct h264_v4l2 *e, uint32_t id, int value)
{
	struct v4l2_control c = { .id = id, .value = value };
	return xioctl(e->fd, VIDIOC_S_CTRL, &c);
}

static int
set_controls(struct h264_v4l2 *e, float fps, int kbps, char *why, size_t n)
{
	int rc = set_ctrl(e, V4L2_CID_MPEG_VIDEO_BITRATE, kbps * 1000);
	if (!rc)
		rc = set_ctrl(e, V4L2_CID_MPEG_VIDEO_H264_PROFILE,
			      V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE);
	if (rc == -EINVAL || rc == -ERANGE) /* no constrained baseline: baseline has no B either */
		rc = set_ctrl(e, V4L2_CID_MPEG_VIDEO_H264_PROFILE,
			      V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE);
	if (rc) {
		snprintf(why, n, "bitrate or baseline profile refused (S_CTRL: %s)", strerror(-rc));
		return rc;
	}
	/* Optional ones: a driver without them still makes a stream okvm can use (the headers are
	 * repeated here if the driver does not, and an IDR is asked for when a viewer needs one). */
	set_ctrl(e, V4L2_CID_MPEG_VIDEO_H264_LEVEL, pick_level(e->w, e->h, fps));
	set_ctrl(e, V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, (int)(fps * H264_V4L2_IDR_PERIOD_S));
	set_ctrl(e, V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 1);
	set_ctrl(e, V4L2_CID_MPEG_VIDEO_B_FRAMES, 0);
	return 0;
}

static int
map_bufs(struct h264_v4l2 *e, uint32_t type, struct mbuf *bufs, unsigned want, unsigned *got,
	 char *why, size_t n)
{
	struct v4l2_requestbuffers rb = { .count = want, .type = type, .memory = V4L2_MEMORY_MMAP };
	int rc = xioctl(e->fd, VIDIOC_REQBUFS, &rb);
	if (rc || !rb.count) {
		snprintf(why, n, "no buffers (REQBUFS: %s)", rc ? strerror(-rc) : "0 given");
		return rc ? rc : -ENOMEM;
	}
	*got = rb.count < want ? rb.count : want;
	for (unsigned i = 0; i < *got; i++) {
		struct v4l2_plane planes[VIDEO_MAX_PLANES];
		struct v4l2_buffer b = { .index = i, .type = type, .memory = V4L2_MEMORY_MMAP };
		memset(planes, 0, sizeof(planes));
		if (e->mplane) {
			b.m.planes = planes;
			b.length = VIDEO_MAX_PLANES;
		}
		if ((rc = xioctl(e->fd, VIDIOC_QUERYBUF, &b))) {
			snprintf(why, n, "QUERYBUF: %s", strerror(-rc));
			return rc;
		}
		unsigned np = e->mplane ? b.length : 1;
		for (unsigned p = 0; p < np && p < VIDEO_MAX_PLANES; p++) {
			size_t len = e->mplane ? planes[p].length : b.length;
			off_t off = e->mplane ? planes[p].m.mem_offset : b.m.offset;
			void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, off);
			if (m == MAP_FAILED) {
				rc = -errno;
				snprintf(why, n, "mmap: %s", strerror(-rc));
				return rc;
			}
			bufs[i].mem[p] = m;
			bufs[i].len[p] = len;
		}
	}
	return 0;
}

static int
queue(struct h264_v4l2 *e, uint32_t type, unsigned i, size_t used, uint64_t ts_us)
{
	struct v4l2_plane planes[VIDEO_MAX_PLANES];
	struct v4l2_buffer b = { .index = i, .type = type, .memory = V4L2_MEMORY_MMAP };
	struct mbuf *m = type == e->out_type ? &e->out[i] : &e->cap[i];
	memset(planes, 0, sizeof(planes));
	b.timestamp.tv_sec = (time_t)(ts_us / 1000000);
	b.timestamp.tv_usec = (suseconds_t)(ts_us % 1000000);
	if (e->mplane) {
		b.m.planes = planes;
		b.length = 1;
		planes[0].length = (unsigned)m->len[0];
		planes[0].bytesused = (unsigned)used;
	} else {
		b.length = (unsigned)m->len[0];
		b.bytesused = (unsigned)used;
	}
	int rc = xioctl(e->fd, VIDIOC_QBUF, &b);
	if (!rc)
		m->queued = true;
	return rc;
}

/* A done buffer of this queue: its index, bytes used and flags; -EAGAIN when none. */
static int
dequeue(struct h264_v4l2 *e, uint32_t type, unsigned *used, uint32_t *flags)
{
	struct v4l2_plane planes[VIDEO_MAX_PLANES];
	struct v4l2_buffer b = { .type = type, .memory = V4L2_MEMORY_MMAP };
	memset(planes, 0, sizeof(planes));
	if (e->mplane) {
		b.m.planes = planes;
		b.length = VIDEO_MAX_PLANES;
	}
	int rc = xioctl(e->fd, VIDIOC_DQBUF, &b);
	if (rc)
		return rc;
	unsigned nb = type == e->out_type ? e->nout : e->ncap;
	if (b.index >= nb)
		return -EIO;
	(type == e->out_type ? e->out : e->cap)[b.index].queued = false;
	*used = e->mplane ? planes[0].bytesused : b.bytesused;
	*flags = b.flags;
	if (e->mplane && type == e->cap_type &&
	    planes[0].data_offset) { /* the payload starts later */
		unsigned off = planes[0].data_offset;
		uint8_t *m = e->cap[b.index].mem[0];
		*used = off < *used && *used <= e->cap[b.index].len[0] ? *used - off : 0;
		memmove(m, m + off, *used);
	}
	return (int)b.index;
}

void
h264_v4l2_free(struct h264_v4l2 *e)
{
	if (!e)
		return;
	if (e->streaming) {
		int t = (int)e->out_type;
		xioctl(e->fd, VIDIOC_STREAMOFF, &t);
		t = (int)e->cap_type;
		xioctl(e->fd, VIDIOC_STREAMOFF, &t);
	}
	struct mbuf *sets[2] = { e->out, e->cap };
	unsigned counts[2] = { NBUF_OUT, NBUF_CAP };
	for (int s = 0; s < 2; s++)
		for (unsigned i = 0; i < counts[s]; i++)
			for (int p = 0; p < VIDEO_MAX_PLANES; p++)
				if (sets[s][i].mem[p])
					munmap(sets[s][i].mem[p], sets[s][i].len[p]);
	if (e->fd >= 0) {
		struct v4l2_requestbuffers rb = { .type = e->out_type, .memory = V4L2_MEMORY_MMAP };
		if (e->nout)
			xioctl(e->fd, VIDIOC_REQBUFS, &rb);
		rb.type = e->cap_type;
		if (e->ncap)
			xioctl(e->fd, VIDIOC_REQBUFS, &rb);
		close(e->fd);
	}
	free(e->au);
	free(e);
}

int
h264_v4l2_open(struct h264_v4l2 **out, const char *path, int w, int h, float fps, int kbps,
	       char *why, size_t n)
{
	*out = NULL;
	struct h264_v4l2 *e = xcalloc(1, sizeof(*e));
	e->w = w;
	e->h = h;
	e->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (e->fd < 0) {
		int rc = -errno;
		snprintf(why, n, "open: %s", strerror(-rc));
		free(e);
		return rc;
	}
	char card[40];
	int rc = identify(e, card, sizeof(card), why, n);
	if (!rc)
		rc = set_formats(e, fps, why, n);
	if (!rc)
		rc = set_controls(e, fps, kbps, why, n);
	if (!rc)
		rc = map_bufs(e, e->out_type, e->out, NBUF_OUT, &e->nout, why, n);
	if (!rc)
		rc = map_bufs(e, e->cap_type, e->cap, NBUF_CAP, &e->ncap, why, n);
	for (unsigned i = 0; !rc && i < e->ncap; i++)
		if ((rc = queue(e, e->cap_type, i, 0, 0)))
			snprintf(why, n, "QBUF: %s", strerror(-rc));
	int t = (int)e->out_type;
	if (!rc && (rc = xioctl(e->fd, VIDIOC_STREAMON, &t)) == 0) {
		e->streaming = true;
		t = (int)e->cap_type;
		rc = xioctl(e->fd, VIDIOC_STREAMON, &t);
	}
	if (rc && !why[0])
		snprintf(why, n, "STREAMON: %s", strerror(-rc));
	if (rc) {
		h264_v4l2_free(e);
		return rc;
	}
	*out = e;
	return 0;
}

/* ---- encoding ---- */

/* The I420 picture into OUTPUT buffer m: luma rows at the driver's stride, chroma as YU12
 * planes (stride bpl/2, after the aligned luma) or interleaved as NV12 (stride bpl). */
static size_t
fill_picture(struct h264_v4l2 *e, struct mbuf *m, const uint8_t *i420)
{
	int w = e->w, h = e->h, cw = (w + 1) / 2, ch = (h + 1) / 2;
	size_t bpl = e->bpl, cbpl = e->out_fourcc == V4L2_PIX_FMT_NV12 ? bpl : bpl / 2;
	size_t need = bpl * e->rows + (e->out_fourcc == V4L2_PIX_FMT_NV12
					       ? bpl * (e->rows / 2)
					       : 2 * cbpl * (e->rows / 2));
	if (need > m->len[0])
		return 0;
	uint8_t *dst = m->mem[0];
	const uint8_t *u = i420 + (size_t)w * h, *v = u + (size_t)cw * ch;
	for (int y = 0; y < h; y++)
		memcpy(dst + bpl * y, i420 + (size_t)w * y, (size_t)w);
	uint8_t *c0 = dst + bpl * e->rows;
	if (e->out_fourcc == V4L2_PIX_FMT_NV12) {
		for (int y = 0; y < ch; y++) {
			uint8_t *d = c0 + cbpl * y;
			const uint8_t *su = u + (size_t)cw * y, *sv = v + (size_t)cw * y;
			for (int x = 0; x < cw; x++) {
				d[2 * x] = su[x];
				d[2 * x + 1] = sv[x];
			}
		}
	} else {
		uint8_t *c1 = c0 + cbpl * (e->rows / 2);
		for (int y = 0; y < ch; y++) {
			memcpy(c0 + cbpl * y, u + (size_t)cw * y, (size_t)cw);
			memcpy(c1 + cbpl * y, v + (size_t)cw * y, (size_t)cw);
		}
	}
	return need;
}

static void
au_put(struct h264_v4l2 *e, const uint8_t *p, size_t n)
{
	if (e->au_len + n > e->au_cap) {
		e->au_cap = (e->au_len + n) * 2;
		e->au = xrealloc(e->au, e->au_cap);
	}
	memcpy(e->au + e->au_len, p, n);
	e->au_len += n;
}

/* NAL units of Annex-B bytes: what kinds there are (bit per type), SPS + PPS kept. */
static unsigned
scan_nals(struct h264_v4l2 *e, const uint8_t *p, size_t n, bool keep_headers)
{
	unsigned kinds = 0;
	size_t hdr_start = SIZE_MAX, hdr_end = 0;
	for (size_t i = 0; i + 3 < n; i++) {
		if (p[i] || p[i + 1] || p[i + 2] != 1)
			continue;
		int t = p[i + 3] & 0x1f;
		size_t sc = i && !p[i - 1] ? i - 1 : i;
		if (hdr_start != SIZE_MAX && !hdr_end && t != 7 && t != 8)
			hdr_end = sc;
		if ((t == 7 || t == 8) && hdr_start == SIZE_MAX)
			hdr_start = sc;
		kinds |= 1u << t;
		i += 3;
	}
	if (keep_headers && hdr_start != SIZE_MAX) {
		size_t end = hdr_end ? hdr_end : n;
		if (end - hdr_start <= MAX_HEADERS) {
			memcpy(e->headers, p + hdr_start, end - hdr_start);
			e->headers_len = end - hdr_start;
		}
	}
	return kinds;
}

static int
force_key_frame(struct h264_v4l2 *e)
{
	int rc = set_ctrl(e, V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1);
	return rc == -ENODEV ? rc : 0; /* a driver without it still sends the periodic IDR */
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Wait for CAPTURE buffers until one holds a picture; SPS/PPS-only buffers are kept. */
static int
collect(struct h264_v4l2 *e, bool *idr, char *why, size_t n)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		unsigned used;
		uint32_t flags;
		int i = dequeue(e, e->cap_type, &used, &flags);
		if (i >= 0) {
			const uint8_t *p = e->cap[i].mem[0];
			bool bad = (flags & V4L2_BUF_FLAG_ERROR) || used > e->cap[i].len[0];
			unsigned kinds = bad ? 0 : scan_nals(e, p, used, true);
			bool pic = kinds & ((1u << 1) | (1u << 5));
			if (pic && (kinds & (1u << 5)) && !(kinds & (1u << 7)))
				au_put(e, e->headers,
				       e->headers_len); /* SPS + PPS before every IDR */
			if (pic)
				au_put(e, p, used); /* a buffer of headers only is kept, not sent */
			int rc = queue(e, e->cap_type, (unsigned)i, 0, 0);
			if (rc) {
				snprintf(why, n, "QBUF: %s", strerror(-rc));
				return rc;
			}
			if (pic) {
				*idr = (kinds & (1u << 5)) || (flags & V4L2_BUF_FLAG_KEYFRAME);
				return 0;
			}
			if (bad || !used) { /* the driver dropped or skipped this one */
				e->au_len = 0;
				return 0;
			}
			continue;
		}
		if (i != -EAGAIN) {
			snprintf(why, n, "%s (DQBUF)",
				 i == -ENODEV ? "the device vanished" : strerror(-i));
			return i;
		}
		long ms = ms_since(&t0);
		if (ms >= H264_V4L2_TIMEOUT_MS) {
			snprintf(why, n, "no picture back within %d ms", H264_V4L2_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		struct pollfd pfd = { .fd = e->fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)(H264_V4L2_TIMEOUT_MS - ms));
		if (r > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) &&
		    !(pfd.revents & POLLIN)) {
			snprintf(why, n, "the device vanished (poll)");
			return -ENODEV;
		}
	}
}

/* An OUTPUT buffer the encoder has given back (one may keep a picture a while after its
 * H.264 came back): waits up to H264_V4L2_TIMEOUT_MS for one. */
static int
free_out(struct h264_v4l2 *e)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (bool polled = false;; polled = true) {
		unsigned used;
		uint32_t flags;
		int rc;
		while ((rc = dequeue(e, e->out_type, &used, &flags)) >= 0)
			;
		if (rc == -ENODEV)
			return rc;
		for (unsigned i = 0; i < e->nout; i++)
			if (!e->out[i].queued)
				return (int)i;
		long ms = ms_since(&t0);
		if (ms >= H264_V4L2_TIMEOUT_MS)
			return -ETIMEDOUT;
		if (polled) { /* POLLOUT came, yet no buffer: do not spin on it */
			struct timespec pause = { 0, 5 * 1000000 };
			nanosleep(&pause, NULL);
		}
		struct pollfd pfd = { .fd = e->fd, .events = POLLOUT };
		poll(&pfd, 1, (int)(H264_V4L2_TIMEOUT_MS - ms));
	}
}

int
h264_v4l2_encode(struct h264_v4l2 *e, const uint8_t *i420, bool force_idr, uint64_t ts_us,
		 const uint8_t **out, size_t *len, bool *idr, char *why, size_t n)
{
	*len = 0;
	*idr = false;
	int i = free_out(e);
	if (i < 0) {
		snprintf(why, n, "%s",
			 i == -ETIMEDOUT ? "the encoder kept every picture buffer for 1 s"
					 : "the device vanished (DQBUF)");
		return i;
	}
	size_t size = fill_picture(e, &e->out[(unsigned)i], i420);
	if (!size) {
		snprintf(why, n, "its picture buffer is too small");
		return -EINVAL;
	}
	int rc = force_idr ? force_key_frame(e) : 0;
	if (!rc)
		rc = queue(e, e->out_type, (unsigned)i, size, ts_us);
	if (rc) {
		snprintf(why, n, "%s (QBUF)",
			 rc == -ENODEV ? "the device vanished" : strerror(-rc));
		return rc;
	}
	e->au_len = 0;
	if ((rc = collect(e, idr, why, n)))
		return rc;
	*out = e->au;
	*len = e->au_len;
	return 0;
}
