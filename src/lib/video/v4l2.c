/*
 * DESIGN: the V4L2 source (the MS2109's UVC video), on the capture thread.
 * start(): open the node, enumerate formats, sizes and intervals, pick MJPEG at the requested
 * mode (default: the largest mode with 30 fps), else YUYV at that mode, set it, and stream with
 * 4 mmap buffers. grab(): wait for the fd (or the capture's wake fd), dequeue every ready buffer
 * and keep only the newest (older ones go straight back to the driver, as ustreamer does),
 * validate the JPEG, insert the standard Huffman table when the frame has none, take the size
 * from the JPEG header (the picture may change size without the format changing), publish, and
 * requeue. YUYV frames are encoded with libjpeg-turbo. Errors map onto the capture thread's
 * states: no frame within the timeout = no signal, ENODEV = unplugged (reopened every second;
 * with a locate callback, at the node the unit has now if that changed).
 * Every system call goes through lib/sys/v4l2.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/videodev2.h>
#include <turbojpeg.h>

#include "lib/sys/v4l2.h"
#include "lib/video/capture.h"
#include "okvm/log.h"
#include "lib/xalloc.h"

#define NBUFS 4
#define MAX_MODES 128
#define JPEG_QUALITY 80

struct mode {
	uint32_t fourcc;
	int w, h, fps;
};

struct vbuf {
	void *mem;
	size_t len;
};

struct v4l2src {
	struct okvm_capture_ops ops;
	char name[300];
	char *path;
	int (*locate)(void *ud, char *path, size_t size); /* where the device is now */
	void *locate_ud;
	int req_w, req_h, req_fps; /* 0 = default */
	int fd;
	struct vbuf bufs[NBUFS];
	int nbufs;
	struct mode cur;
	int last_w, last_h; /* size of the last published picture */
	tjhandle tj;
	uint8_t *planes; /* YUYV -> planar 4:2:2 scratch */
};

static int
xioctl(struct v4l2src *s, unsigned long req, void *arg)
{
	return sys_v4l2_ioctl(s->fd, req, arg);
}

/* ---- mode selection ---- */

static int
list_modes(struct v4l2src *s, uint32_t fourcc, struct mode *out, int n)
{
	struct v4l2_frmsizeenum fs = { .pixel_format = fourcc };
	for (fs.index = 0; n < MAX_MODES && xioctl(s, VIDIOC_ENUM_FRAMESIZES, &fs) == 0;
	     fs.index++) {
		if (fs.type != V4L2_FRMSIZE_TYPE_DISCRETE)
			continue;
		struct v4l2_frmivalenum fi = { .pixel_format = fourcc,
					       .width = fs.discrete.width,
					       .height = fs.discrete.height };
		for (fi.index = 0; xioctl(s, VIDIOC_ENUM_FRAMEINTERVALS, &fi) == 0 && n < MAX_MODES;
		     fi.index++) {
			if (fi.type != V4L2_FRMIVAL_TYPE_DISCRETE || !fi.discrete.numerator)
				continue;
			int fps = (int)((fi.discrete.denominator + fi.discrete.numerator / 2) /
					fi.discrete.numerator);
			out[n++] = (struct mode){ fourcc, (int)fs.discrete.width,
						  (int)fs.discrete.height, fps };
		}
	}
	return n;
}

static int
enum_modes(struct v4l2src *s, struct mode *out)
{
	int n = 0;
	struct v4l2_fmtdesc fd = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	for (fd.index = 0; xioctl(s, VIDIOC_ENUM_FMT, &fd) == 0; fd.index++)
		if (fd.pixelformat == V4L2_PIX_FMT_MJPEG || fd.pixelformat == V4L2_PIX_FMT_YUYV)
			n = list_modes(s, fd.pixelformat, out, n);
	return n;
}

/* Higher is better: MJPEG over YUYV, then the requested fps (or 30), then area, then fps. */
static long
score(const struct v4l2src *s, const struct mode *m)
{
	if (s->req_w && (m->w != s->req_w || m->h != s->req_h))
		return -1;
	if (s->req_fps && m->fps != s->req_fps)
		return -1;
	long sc = m->fourcc == V4L2_PIX_FMT_MJPEG ? 1L << 40 : 0;
	if (!s->req_fps && m->fps == 30)
		sc += 1L << 39;
	return sc + (long)m->w * m->h * 256 + m->fps;
}

static void
log_modes(const struct v4l2src *s, const struct mode *m, int n)
{
	char line[2048];
	size_t len = 0;
	for (int i = 0; i < n && len < sizeof(line) - 40; i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %s:%dx%d@%d",
					m[i].fourcc == V4L2_PIX_FMT_MJPEG ? "mjpeg" : "yuyv",
					m[i].w, m[i].h, m[i].fps);
	okvm_log(OKVM_LOG_ERROR, "%s: mode %dx%d@%d is not offered; modes:%s", s->name, s->req_w,
		 s->req_h, s->req_fps, n ? line : " none");
}

static int
choose_mode(struct v4l2src *s)
{
	struct mode modes[MAX_MODES];
	int n = enum_modes(s, modes);
	long best = -1;
	for (int i = 0; i < n; i++) {
		long sc = score(s, &modes[i]);
		if (sc > best) {
			best = sc;
			s->cur = modes[i];
		}
	}
	if (best < 0) {
		log_modes(s, modes, n);
		return -EINVAL;
	}
	return 0;
}

static int
set_mode(struct v4l2src *s)
{
	struct v4l2_format f = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	f.fmt.pix.width = (uint32_t)s->cur.w;
	f.fmt.pix.height = (uint32_t)s->cur.h;
	f.fmt.pix.pixelformat = s->cur.fourcc;
	f.fmt.pix.field = V4L2_FIELD_ANY;
	int rc = xioctl(s, VIDIOC_S_FMT, &f);
	if (rc < 0)
		return rc;
	s->cur.w = (int)f.fmt.pix.width;
	s->cur.h = (int)f.fmt.pix.height;
	s->cur.fourcc = f.fmt.pix.pixelformat;
	struct v4l2_streamparm p = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	p.parm.capture.timeperframe.numerator = 1;
	p.parm.capture.timeperframe.denominator = (uint32_t)s->cur.fps;
	if (xioctl(s, VIDIOC_S_PARM, &p) == 0 && p.parm.capture.timeperframe.numerator)
		s->cur.fps = (int)(p.parm.capture.timeperframe.denominator /
				   p.parm.capture.timeperframe.numerator);
	okvm_log(OKVM_LOG_INFO, "%s: %s %dx%d@%d", s->name,
		 s->cur.fourcc == V4L2_PIX_FMT_MJPEG ? "MJPEG" : "YUYV", s->cur.w, s->cur.h,
		 s->cur.fps);
	return 0;
}

/* ---- buffers ---- */

static void
unmap_all(struct v4l2src *s)
{
	for (int i = 0; i < s->nbufs; i++)
		sys_v4l2_munmap(s->bufs[i].mem, s->bufs[i].len);
	s->nbufs = 0;
}

static int
map_buffers(struct v4l2src *s)
{
	struct v4l2_requestbuffers rb = { .count = NBUFS,
					  .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
					  .memory = V4L2_MEMORY_MMAP };
	int rc = xioctl(s, VIDIOC_REQBUFS, &rb);
	if (rc < 0)
		return rc;
	if (rb.count < 2 || rb.count > NBUFS)
		return -ENOMEM;
	for (unsigned i = 0; i < rb.count; i++) {
		struct v4l2_buffer b = { .index = i,
					 .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
					 .memory = V4L2_MEMORY_MMAP };
		if ((rc = xioctl(s, VIDIOC_QUERYBUF, &b)) < 0)
			return rc;
		s->bufs[i].len = b.length;
		s->bufs[i].mem = sys_v4l2_mmap(s->fd, b.length, b.m.offset);
		if (!s->bufs[i].mem)
			return -errno;
		s->nbufs = (int)i + 1;
		if ((rc = xioctl(s, VIDIOC_QBUF, &b)) < 0)
			return rc;
	}
	return 0;
}

static void
v4l2_stop(void *ud, struct okvm_capture *c)
{
	struct v4l2src *s = ud;
	(void)c;
	if (s->fd < 0)
		return;
	enum v4l2_buf_type t = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	xioctl(s, VIDIOC_STREAMOFF, &t);
	unmap_all(s);
	sys_v4l2_close(s->fd);
	s->fd = -1;
}

static int
check_caps(struct v4l2src *s)
{
	struct v4l2_capability cap;
	int rc = xioctl(s, VIDIOC_QUERYCAP, &cap);
	if (rc < 0)
		return rc == -ENOTTY ? -ENODEV : rc;
	uint32_t caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps
								: cap.capabilities;
	if (!(caps & V4L2_CAP_VIDEO_CAPTURE) || !(caps & V4L2_CAP_STREAMING)) {
		okvm_log(OKVM_LOG_ERROR, "%s: not a streaming video capture device", s->name);
		return -ENODEV;
	}
	return 0;
}

static int
v4l2_start(void *ud, struct okvm_capture *c)
{
	struct v4l2src *s = ud;
	s->fd = sys_v4l2_open(s->path);
	char now[256];
	if (s->fd < 0 && (s->fd == -ENOENT || s->fd == -ENODEV) && s->locate &&
	    s->locate(s->locate_ud, now, sizeof(now)) == 0 && strcmp(now, s->path)) {
		/* Re-plugged under another node (the old minor was still taken, another
		 * camera came first...): follow the unit, not the name. */
		okvm_log(OKVM_LOG_WARN, "%s: the capture device is back as %s", s->path, now);
		free(s->path);
		s->path = xstrdup(now);
		s->fd = sys_v4l2_open(s->path);
	}
	if (s->fd < 0) {
		int rc = s->fd;
		s->fd = -1;
		return rc;
	}
	int rc = check_caps(s);
	if (rc == 0)
		rc = choose_mode(s);
	if (rc == 0)
		rc = set_mode(s);
	if (rc == 0)
		rc = map_buffers(s);
	enum v4l2_buf_type t = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	if (rc == 0)
		rc = xioctl(s, VIDIOC_STREAMON, &t);
	if (rc < 0) {
		v4l2_stop(s, c);
		return rc;
	}
	capture_set_size_hint(c, s->cur.w, s->cur.h);
	return 0;
}

/* ---- frames ---- */

static void
note_size(struct v4l2src *s, struct okvm_capture *c, int w, int h)
{
	if (w == s->last_w && h == s->last_h)
		return;
	if (s->last_w)
		okvm_log(OKVM_LOG_INFO, "%s: picture is now %dx%d", s->name, w, h);
	s->last_w = w;
	s->last_h = h;
	capture_set_size_hint(c, w, h);
}

/* Fill in a w x h JPEG of size bytes taken at ts and hand it to the capture. */
static void
publish(struct v4l2src *s, struct okvm_capture *c, struct okvm_frame *f, size_t size, int w, int h,
	uint64_t ts)
{
	f->size = size;
	f->width = w;
	f->height = h;
	f->ts_us = ts;
	note_size(s, c, w, h);
	okvm_capture_publish(c, f);
}

static int
publish_mjpeg(struct v4l2src *s, struct okvm_capture *c, const uint8_t *p, size_t n, uint64_t ts)
{
	long len = okvm_jpeg_check(p, n);
	int w, h;
	if (len < 0 || okvm_jpeg_size(p, (size_t)len, &w, &h) < 0) {
		okvm_log(OKVM_LOG_DEBUG, "%s: dropped a broken JPEG (%zu bytes)", s->name, n);
		okvm_capture_count_drop(c);
		return -EAGAIN;
	}
	bool dht = okvm_jpeg_has_dht(p, (size_t)len);
	size_t need = (size_t)len + (dht ? 0 : okvm_jpeg_dht_size());
	struct okvm_frame *f = okvm_capture_frame_alloc(c, need);
	uint8_t *out = okvm_frame_buffer(f, NULL);
	if (dht)
		memcpy(out, p, (size_t)len);
	else
		okvm_jpeg_insert_dht(p, (size_t)len, out, need);
	publish(s, c, f, need, w, h, ts);
	return 0;
}

/* Packed YUYV 4:2:2 -> three planes, then libjpeg-turbo. */
static int
publish_yuyv(struct v4l2src *s, struct okvm_capture *c, const uint8_t *p, size_t n, uint64_t ts)
{
	int w = s->cur.w, h = s->cur.h;
	if (n < (size_t)w * (size_t)h * 2) {
		okvm_capture_count_drop(c);
		return -EAGAIN;
	}
	size_t ysz = (size_t)w * (size_t)h, csz = ysz / 2;
	if (!s->planes)
		s->planes = xmalloc(ysz + 2 * csz);
	uint8_t *y = s->planes, *u = y + ysz, *v = u + csz;
	for (size_t i = 0; i < ysz / 2; i++) {
		y[2 * i] = p[4 * i];
		u[i] = p[4 * i + 1];
		y[2 * i + 1] = p[4 * i + 2];
		v[i] = p[4 * i + 3];
	}
	if (!s->tj && !(s->tj = tjInitCompress()))
		return -ENOMEM;
	unsigned long cap = tjBufSize(w, h, TJSAMP_422);
	struct okvm_frame *f = okvm_capture_frame_alloc(c, cap);
	uint8_t *out = okvm_frame_buffer(f, NULL);
	const unsigned char *planes[3] = { y, u, v };
	if (tjCompressFromYUVPlanes(s->tj, planes, w, NULL, h, TJSAMP_422, &out, &cap, JPEG_QUALITY,
				    TJFLAG_NOREALLOC | TJFLAG_FASTDCT)) {
		okvm_frame_unref(f);
		okvm_capture_count_drop(c);
		return -EAGAIN;
	}
	publish(s, c, f, cap, w, h, ts);
	return 0;
}

static uint64_t
buf_ts(const struct v4l2_buffer *b)
{
	if ((b->flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) != V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC)
		return okvm_now_us();
	return (uint64_t)b->timestamp.tv_sec * 1000000u + (uint64_t)b->timestamp.tv_usec;
}

/* Dequeue every ready buffer; keep the newest in *keep, give the older ones back. */
static int
drain(struct v4l2src *s, struct okvm_capture *c, struct v4l2_buffer *keep)
{
	bool have = false;
	for (;;) {
		struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
					 .memory = V4L2_MEMORY_MMAP };
		int rc = xioctl(s, VIDIOC_DQBUF, &b);
		if (rc == -EAGAIN)
			return have ? 0 : -EAGAIN;
		if (rc < 0)
			return rc == -EINVAL || rc == -EIO ? -ENODEV : rc;
		if (b.index >= (unsigned)s->nbufs)
			return -EPROTO;
		if (have) {
			okvm_capture_count_drop(c);
			xioctl(s, VIDIOC_QBUF, keep);
		}
		*keep = b;
		have = true;
	}
}

static int
v4l2_grab(void *ud, struct okvm_capture *c, int timeout_ms)
{
	struct v4l2src *s = ud;
	int rc = sys_v4l2_wait(s->fd, okvm_capture_wake_fd(c), timeout_ms);
	if (rc == 0)
		return -ETIMEDOUT;
	if (rc < 0)
		return rc;
	struct v4l2_buffer b;
	rc = drain(s, c, &b);
	if (rc < 0)
		return rc;
	const uint8_t *p = s->bufs[b.index].mem;
	size_t n = b.bytesused < s->bufs[b.index].len ? b.bytesused : s->bufs[b.index].len;
	if (b.flags & V4L2_BUF_FLAG_ERROR) {
		okvm_capture_count_drop(c);
		rc = -EAGAIN;
	} else if (s->cur.fourcc == V4L2_PIX_FMT_MJPEG) {
		rc = publish_mjpeg(s, c, p, n, buf_ts(&b));
	} else {
		rc = publish_yuyv(s, c, p, n, buf_ts(&b));
	}
	int q = xioctl(s, VIDIOC_QBUF, &b);
	return q == -ENODEV ? q : rc;
}

static void
v4l2_destroy(void *ud)
{
	struct v4l2src *s = ud;
	if (s->tj)
		tjDestroy(s->tj);
	free(s->planes);
	free(s->path);
	free(s);
}

static const struct okvm_capture_ops v4l2_ops = {
	.start = v4l2_start,
	.grab = v4l2_grab,
	.stop = v4l2_stop,
	.destroy = v4l2_destroy,
};

/* "1280x720@60", "1280x720" -> numbers; 0 or -EINVAL. */
int
okvm_video_parse_mode(const char *mode, int *w, int *h, int *fps)
{
	char tail;
	*fps = 0;
	if (sscanf(mode, "%dx%d%c", w, h, &tail) == 2)
		return *w > 0 && *h > 0 ? 0 : -EINVAL;
	if (sscanf(mode, "%dx%d@%d%c", w, h, fps, &tail) == 3)
		return *w > 0 && *h > 0 && *fps > 0 && *fps <= 240 ? 0 : -EINVAL;
	return -EINVAL;
}

struct okvm_capture *
okvm_capture_new_v4l2(const char *dev, const char *mode)
{
	return okvm_capture_new_v4l2_located(dev, mode, NULL, NULL);
}

struct okvm_capture *
okvm_capture_new_v4l2_located(const char *dev, const char *mode,
			      int (*locate)(void *ud, char *path, size_t size), void *ud)
{
	struct v4l2src *s = xcalloc(1, sizeof(*s));
	s->locate = locate;
	s->locate_ud = ud;
	s->path = strdup(dev);
	s->fd = -1;
	snprintf(s->name, sizeof(s->name), "%s", dev);
	if (mode && okvm_video_parse_mode(mode, &s->req_w, &s->req_h, &s->req_fps) < 0) {
		okvm_log(OKVM_LOG_ERROR, "%s: bad video mode '%s' (want WxH or WxH@FPS)", dev,
			 mode);
		s->req_w = s->req_h = s->req_fps = 0;
	}
	s->ops = v4l2_ops;
	s->ops.name = s->name;
	struct okvm_capture *c = okvm_capture_new_custom(&s->ops, s);
	if (s->req_w)
		capture_set_size_hint(c, s->req_w, s->req_h);
	return c;
}
