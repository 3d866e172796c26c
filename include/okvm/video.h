/* okvm video: refcounted MJPEG frames, capture sources (V4L2, files, custom) and JPEG helpers. */
#ifndef OKVM_VIDEO_H
#define OKVM_VIDEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * One captured picture: a complete JPEG. Immutable once published; refcounted across threads.
 * okvm_capture_latest() hands out a new reference; drop it with okvm_frame_unref() from any thread.
 */
struct okvm_frame {
	const uint8_t *data;
	size_t size;       /* bytes of data: SOI .. EOI */
	int width, height; /* from the JPEG's SOF header */
	uint64_t seq;      /* per source, starts at 1, +1 per published frame */
	uint64_t ts_us;    /* CLOCK_MONOTONIC capture time in microseconds */
	bool placeholder;  /* a "no signal" / "no device" picture made by okvm */
};

/** Take another reference. @return f. Any thread. */
struct okvm_frame *okvm_frame_ref(struct okvm_frame *f);
/** Drop a reference; the last one frees (or recycles) the frame. NULL ok. Any thread. */
void okvm_frame_unref(struct okvm_frame *f);

struct okvm_capture;

/**
 * A source plugged into the generic capture thread (okvm_capture_new_custom()). Every callback
 * runs on the capture thread. The thread calls start() when a consumer wants frames, then
 * grab() in a loop while it does, and stop() when nobody wants frames any more.
 */
struct okvm_capture_ops {
	const char *name; /* for logs: "v4l2 /dev/video0", "virtual screen" */
	/** Acquire the device. 0, or -errno (-ENOENT/-ENODEV: no device; retried once a second). */
	int (*start)(void *ud, struct okvm_capture *c);
	/**
	 * Wait up to timeout_ms for the next frame and publish it (okvm_capture_publish*()).
	 * Sleep with okvm_capture_sleep_until() or poll okvm_capture_wake_fd() so that stop
	 * requests are seen at once.
	 * @return 0 (a frame was published or the wait was interrupted), -ETIMEDOUT (no frame:
	 *         no signal), -EAGAIN (try again), -ENODEV (device gone: stop() follows, then
	 *         start() is retried once a second), other -errno (logged, retried).
	 */
	int (*grab)(void *ud, struct okvm_capture *c, int timeout_ms);
	/** Release the device (after start() succeeded). May be NULL. */
	void (*stop)(void *ud, struct okvm_capture *c);
	/** Free ud when the capture is freed. May be NULL. */
	void (*destroy)(void *ud);
};

/**
 * Capture from a V4L2 device (MJPEG by mmap; YUYV-only modes are encoded to JPEG).
 * @param dev  "/dev/video0"
 * @param mode "1280x720@60", "1280x720" or NULL (the largest MJPEG mode at 30 fps)
 * Never fails: a missing device shows as status.device == false and placeholder frames.
 */
struct okvm_capture *okvm_capture_new_v4l2(const char *dev, const char *mode);
/**
 * As okvm_capture_new_v4l2, for a device that may come back under another node after a
 * re-plug: while dev cannot be opened (ENOENT, ENODEV), locate(ud, path, size) is asked where
 * the device is now (0 and path filled, or <0 not found) and that node is opened instead.
 * Called on the capture thread, at most once a second, only while the device is missing.
 */
struct okvm_capture *okvm_capture_new_v4l2_located(const char *dev, const char *mode,
						   int (*locate)(void *ud, char *path, size_t size),
						   void *ud);
/** Parse "WxH@FPS" or "WxH" (fps 0). 0 or -EINVAL. */
int okvm_video_parse_mode(const char *mode, int *width, int *height, int *fps);
/** Loop a folder of .jpg files (sorted by name) or one .mjpeg file (concatenated JPEGs) at fps. */
struct okvm_capture *okvm_capture_new_files(const char *path, double fps);
/** A capture thread around a caller-provided source; ops must outlive the capture. */
struct okvm_capture *okvm_capture_new_custom(const struct okvm_capture_ops *ops, void *ud);

/** Start the capture thread ("okvm-capture"). 0 or -errno. Call once, from the owning thread. */
int okvm_capture_start(struct okvm_capture *c);
/**
 * Declare interest. Counted: every want(true) needs a want(false). With no interest the source
 * is stopped and no capture work is done. Any thread.
 */
void okvm_capture_want(struct okvm_capture *c, bool want);
/** The newest frame as a new reference, or NULL when none yet. Any thread; never blocks long. */
struct okvm_frame *okvm_capture_latest(struct okvm_capture *c);
/**
 * Block until a frame with seq > after_seq is published.
 * @return 0, -ETIMEDOUT after timeout_ms (< 0 = forever). Any thread except the capture thread.
 */
int okvm_capture_wait(struct okvm_capture *c, uint64_t after_seq, int timeout_ms);
/** fn(ud) is called on the capture thread after each new frame. Set before okvm_capture_start(). */
void okvm_capture_set_notify(struct okvm_capture *c, void (*fn)(void *ud), void *ud);

struct okvm_capture_status {
	bool signal;       /* frames are arriving */
	bool device;       /* the device is present (always true for files and custom) */
	int width, height; /* of the newest real frame; 0 before the first */
	double fps;        /* measured over the last second */
	uint64_t frames;   /* real frames published */
	uint64_t dropped;  /* frames replaced before anybody took them, or invalid */
};
/** A snapshot of the status. Any thread. */
void okvm_capture_get_status(struct okvm_capture *c, struct okvm_capture_status *out);
/** Stop the thread, release the device, drop the slot. Frames still referenced stay valid.
 * NULL ok. */
void okvm_capture_free(struct okvm_capture *c);

/* --- For sources (capture thread only) --- */

/**
 * A writable frame with room for size bytes, from the capture's pool. Fill frame->data (cast
 * away const: it is yours until published), then okvm_capture_publish() or okvm_frame_unref().
 */
struct okvm_frame *okvm_capture_frame_alloc(struct okvm_capture *c, size_t size);
/** The writable buffer of a frame from okvm_capture_frame_alloc(), and its capacity. */
uint8_t *okvm_frame_buffer(struct okvm_frame *f, size_t *capacity);
/**
 * Publish a frame (takes over the caller's reference): sets seq and ts_us (if 0), puts it in the
 * slot (dropping the previous one), wakes waiters and calls the notify function.
 */
void okvm_capture_publish(struct okvm_capture *c, struct okvm_frame *f);
/** Copy a JPEG into a pooled frame and publish it. width/height 0 = read from the JPEG. */
int okvm_capture_publish_jpeg(struct okvm_capture *c, const uint8_t *jpeg, size_t size,
			      uint64_t ts_us, bool placeholder);
/** Publish the same JPEG bytes as prev again, as a new frame (new seq/ts), without copying. */
void okvm_capture_publish_repeat(struct okvm_capture *c, struct okvm_frame *prev, uint64_t ts_us);
/** Readable when the thread should stop waiting (stop, free). Poll it next to the device fd. */
int okvm_capture_wake_fd(struct okvm_capture *c);
/** Sleep until the CLOCK_MONOTONIC deadline; -EINTR when woken early, else 0. */
int okvm_capture_sleep_until(struct okvm_capture *c, uint64_t deadline_us);
/** Count a dropped/invalid frame in the status. */
void okvm_capture_count_drop(struct okvm_capture *c);

/** CLOCK_MONOTONIC in microseconds. */
uint64_t okvm_now_us(void);

/* --- JPEG helpers (pure; any thread) --- */

/** Minimum size of a JPEG we accept (ustreamer's rule). */
#define OKVM_JPEG_MIN_SIZE 125

/**
 * Check that p is a complete JPEG: at least OKVM_JPEG_MIN_SIZE bytes, SOI first, EOI last
 * (trailing zero padding is tolerated and trimmed).
 * @return the JPEG's size without padding, or -EBADMSG.
 */
long okvm_jpeg_check(const uint8_t *p, size_t n);
/** Width and height from the first SOFn segment. 0 or -EBADMSG. */
int okvm_jpeg_size(const uint8_t *p, size_t n, int *width, int *height);
/** Whether the JPEG carries a DHT segment before its scan. */
bool okvm_jpeg_has_dht(const uint8_t *p, size_t n);
/** Bytes of the standard Huffman table segment (JPEG Annex K.3) okvm inserts: always 420. */
size_t okvm_jpeg_dht_size(void);
/**
 * Copy a JPEG into out with the standard DHT segment inserted before its SOF.
 * @param cap must be >= n + okvm_jpeg_dht_size()
 * @return bytes written, or -EBADMSG (no SOF), -ENOSPC.
 */
long okvm_jpeg_insert_dht(const uint8_t *p, size_t n, uint8_t *out, size_t cap);

/** Decode a JPEG and write it to out as an 8-bit RGB PNG. 0, -EBADMSG, -EIO. Any thread. */
int okvm_jpeg_to_png(const uint8_t *jpeg, size_t n, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
