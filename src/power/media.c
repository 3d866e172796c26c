/*
 * DESIGN: an image streamed onto the medium in the switchable port (media.h). The source is a
 * raw file or a decoder (zlib with gzip auto-detection, liblzma's concatenated .xz decoder,
 * libzstd's stream decoder) reading 256 KiB at a time; 1 MiB chunks go to the device, hashed on
 * the way (libsodium's SHA-256), then fsync, POSIX_FADV_DONTNEED (and BLKFLSBUF for a block
 * device) so the read-back comes from the medium, not the page cache.
 */
#include "power/media.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <lzma.h>
#include <mntent.h>
#include <poll.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "lib/thread.h"
#include "okvm/discover.h"

#define IN_SIZE (256u * 1024u)
#define CHUNK (1024u * 1024u)
#define PROGRESS_NS 250000000ull

struct src {
	enum media_codec codec;
	int fd;
	uint8_t *in;
	size_t in_len, in_pos;
	bool in_eof, done;
	z_stream z;
	lzma_stream x;
	ZSTD_DStream *zs;
	size_t zst_left; /* ZSTD_decompressStream's last hint */
};

enum media_codec
media_codec_of(const char *path)
{
	size_t n = strlen(path);
	if (n > 3 && !strcasecmp(path + n - 3, ".gz"))
		return MEDIA_GZ;
	if (n > 3 && !strcasecmp(path + n - 3, ".xz"))
		return MEDIA_XZ;
	if (n > 4 && !strcasecmp(path + n - 4, ".zst"))
		return MEDIA_ZST;
	return MEDIA_RAW;
}

const char *
media_codec_name(enum media_codec c)
{
	switch (c) {
	case MEDIA_RAW: return "raw";
	case MEDIA_GZ: return "gzip";
	case MEDIA_XZ: return "xz";
	case MEDIA_ZST: return "zstd";
	}
	return "?";
}

static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
src_open(struct src *s, const char *path)
{
	*s = (struct src){ .codec = media_codec_of(path), .x = LZMA_STREAM_INIT };
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return -errno;
	if (s->codec == MEDIA_RAW)
		return 0;
	s->in = malloc(IN_SIZE);
	if (!s->in)
		abort();
	int ok = 1;
	if (s->codec == MEDIA_GZ)
		ok = inflateInit2(&s->z, 15 + 32) == Z_OK; /* +32: gzip or zlib header */
	else if (s->codec == MEDIA_XZ)
		ok = lzma_stream_decoder(&s->x, UINT64_MAX, LZMA_CONCATENATED) == LZMA_OK;
	else
		ok = (s->zs = ZSTD_createDStream()) && !ZSTD_isError(ZSTD_initDStream(s->zs));
	if (!ok)
		abort(); /* out of memory */
	return 0;
}

static void
src_close(struct src *s)
{
	if (s->codec == MEDIA_GZ)
		inflateEnd(&s->z);
	else if (s->codec == MEDIA_XZ)
		lzma_end(&s->x);
	else if (s->codec == MEDIA_ZST)
		ZSTD_freeDStream(s->zs);
	free(s->in);
	if (s->fd >= 0)
		close(s->fd);
}

/* More compressed input when the buffer is used up. @return 0 or -errno. */
static int
refill(struct src *s)
{
	if (s->in_pos < s->in_len || s->in_eof)
		return 0;
	ssize_t r;
	do
		r = read(s->fd, s->in, IN_SIZE);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	s->in_len = (size_t)r;
	s->in_pos = 0;
	s->in_eof = r == 0;
	return 0;
}

/* One decoder step into out[0..cap): @return bytes produced, or -EBADMSG. Sets s->done. */
static ssize_t
step(struct src *s, uint8_t *out, size_t cap)
{
	size_t avail = s->in_len - s->in_pos;
	if (s->codec == MEDIA_GZ) {
		s->z.next_in = s->in + s->in_pos;
		s->z.avail_in = (uInt)avail;
		s->z.next_out = out;
		s->z.avail_out = (uInt)cap;
		int rc = inflate(&s->z, Z_NO_FLUSH);
		s->in_pos = s->in_len - s->z.avail_in;
		size_t got = cap - s->z.avail_out;
		if (rc == Z_STREAM_END) {
			/* another gzip member may follow (pigz, cat a.gz b.gz) */
			if (s->in_pos == s->in_len && refill(s) == 0 && s->in_eof)
				s->done = true;
			else
				inflateReset(&s->z);
		} else if (rc == Z_BUF_ERROR && s->in_eof && !got) {
			return -EBADMSG; /* truncated */
		} else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			return -EBADMSG;
		}
		return (ssize_t)got;
	}
	if (s->codec == MEDIA_XZ) {
		s->x.next_in = s->in + s->in_pos;
		s->x.avail_in = avail;
		s->x.next_out = out;
		s->x.avail_out = cap;
		lzma_ret rc = lzma_code(&s->x, s->in_eof ? LZMA_FINISH : LZMA_RUN);
		s->in_pos = s->in_len - s->x.avail_in;
		if (rc == LZMA_STREAM_END)
			s->done = true;
		else if (rc != LZMA_OK)
			return -EBADMSG;
		return (ssize_t)(cap - s->x.avail_out);
	}
	if (s->in_eof && !avail) { /* the end: only where the last frame was finished */
		if (s->zst_left)
			return -EBADMSG;
		s->done = true;
		return 0;
	}
	ZSTD_inBuffer ib = { s->in, s->in_len, s->in_pos };
	ZSTD_outBuffer ob = { out, cap, 0 };
	size_t rc = ZSTD_decompressStream(s->zs, &ob, &ib);
	s->in_pos = ib.pos;
	if (ZSTD_isError(rc))
		return -EBADMSG;
	s->zst_left = rc; /* 0: a frame is complete and flushed */
	return (ssize_t)ob.pos;
}

/* Fill out[0..cap) as far as the image goes. @return bytes (0 = the end) or -errno. */
static ssize_t
src_read(struct src *s, uint8_t *out, size_t cap)
{
	size_t got = 0;
	while (got < cap && !s->done) {
		if (s->codec == MEDIA_RAW) {
			ssize_t r = read(s->fd, out + got, cap - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				s->done = true;
			got += (size_t)r;
			continue;
		}
		int rc = refill(s);
		if (rc < 0)
			return rc;
		size_t before = s->in_pos;
		ssize_t n = step(s, out + got, cap - got);
		if (n < 0)
			return n;
		got += (size_t)n;
		if (!n && s->in_eof && s->in_pos == before && !s->done)
			return -EBADMSG; /* input ended inside a stream */
	}
	return (ssize_t)got;
}

static bool
cancelled(const struct media_job *j)
{
	return flag_get(j->cancel);
}

static void
tell(struct media_job *j, const char *phase, uint64_t done, uint64_t total, double t0, double *last,
     bool end)
{
	double t = now_s();
	if (!j->progress || (!end && t - *last < PROGRESS_NS / 1e9))
		return;
	*last = t;
	j->progress(j->ud, phase, done, total, t - t0);
}

static void
fail(struct media_job *j, const char *fmt, const char *what, int rc)
{
	snprintf(j->err, sizeof(j->err), fmt, what, strerror(-rc));
}

int
media_image_size(struct media_job *j, uint64_t *out)
{
	struct src s;
	int rc = src_open(&s, j->image);
	if (rc < 0) {
		fail(j, "%s: %s", j->image, rc);
		src_close(&s);
		return rc;
	}
	struct stat st;
	if (s.codec == MEDIA_RAW) {
		rc = fstat(s.fd, &st) < 0 ? -errno : 0;
		*out = rc ? 0 : (uint64_t)st.st_size;
		src_close(&s);
		return rc;
	}
	uint8_t *buf = malloc(CHUNK);
	if (!buf)
		abort();
	uint64_t total = 0, packed = fstat(s.fd, &st) < 0 ? 0 : (uint64_t)st.st_size;
	double t0 = now_s(), last = t0;
	ssize_t n;
	while ((n = src_read(&s, buf, CHUNK)) > 0 && !cancelled(j)) {
		total += (uint64_t)n;
		tell(j, "check", (uint64_t)lseek(s.fd, 0, SEEK_CUR), packed, t0, &last, false);
	}
	free(buf);
	src_close(&s);
	if (cancelled(j))
		return -EINTR;
	if (n < 0) {
		snprintf(j->err, sizeof(j->err), "%s: %s", j->image,
			 n == -EBADMSG ? "not a valid archive (corrupt or cut short)"
				       : strerror((int)-n));
		return (int)n;
	}
	*out = total;
	return 0;
}

int
media_device_size(const char *device, uint64_t *out)
{
	int fd = open(device, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	if (!rc && S_ISBLK(st.st_mode))
		rc = ioctl(fd, BLKGETSIZE64, out) < 0 ? -errno : 0;
	else if (!rc)
		*out = (uint64_t)st.st_size;
	close(fd);
	return rc;
}

/* "/dev/sda1" or "/dev/nvme0n1p2" of "/dev/sda", "/dev/nvme0n1"; the device itself too. */
static bool
same_or_partition(const char *dev, const char *name)
{
	size_t n = strlen(dev);
	if (strncmp(dev, name, n))
		return false;
	const char *p = name + n;
	if (*p == 'p' && p[1] >= '0' && p[1] <= '9')
		p++;
	while (*p >= '0' && *p <= '9')
		p++;
	return !*p;
}

int
media_mounted(const char *device, const char *mounts, char *where, size_t n)
{
	if (!mounts)
		mounts = getenv("OKVM_MOUNTS");
	FILE *f = setmntent(mounts && *mounts ? mounts : "/proc/self/mounts", "r");
	if (!f)
		return -errno;
	char *dev = realpath(device, NULL);
	struct mntent *m;
	int found = 0;
	while (!found && (m = getmntent(f))) {
		char *real = realpath(m->mnt_fsname, NULL); /* /dev/disk/by-uuid/... links */
		if (same_or_partition(device, m->mnt_fsname) ||
		    (dev && same_or_partition(dev, m->mnt_fsname)) ||
		    (dev && real && same_or_partition(dev, real))) {
			snprintf(where, n, "%s on %s", m->mnt_fsname, m->mnt_dir);
			found = 1;
		}
		free(real);
	}
	free(dev);
	endmntent(f);
	return found;
}

static void
hex(const uint8_t *h, char *out)
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
open_device(struct media_job *j, int flags)
{
	struct stat st;
	if (stat(j->device, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		flags |= O_EXCL; /* EBUSY while mounted or held */
	int fd = open(j->device, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int
write_phase(struct media_job *j, int fd, struct src *s, uint8_t *buf, uint8_t digest[32])
{
	crypto_hash_sha256_state h;
	crypto_hash_sha256_init(&h);
	double t0 = now_s(), last = t0;
	int rc = 0;
	for (;;) {
		if (cancelled(j))
			return -EINTR;
		ssize_t n = src_read(s, buf, CHUNK);
		if (n < 0) {
			snprintf(j->err, sizeof(j->err), "%s: %s", j->image,
				 n == -EBADMSG ? "not a valid archive" : strerror((int)-n));
			return (int)n;
		}
		if (!n)
			break;
		if (j->written + (uint64_t)n > j->image_size) {
			snprintf(j->err, sizeof(j->err), "%s changed while written", j->image);
			return -ENOSPC;
		}
		crypto_hash_sha256_update(&h, buf, (unsigned long long)n);
		if ((rc = write_all(fd, buf, (size_t)n)) < 0) {
			fail(j, "%s: %s", j->device, rc);
			return rc;
		}
		j->written += (uint64_t)n;
		tell(j, "write", j->written, j->image_size, t0, &last, false);
		if (j->chunk_delay_ms > 0)
			poll(NULL, 0, j->chunk_delay_ms);
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		fail(j, "%s: fsync: %s", j->device, rc);
		return rc;
	}
	j->write_secs = now_s() - t0;
	tell(j, "write", j->written, j->image_size, t0, &last, true);
	crypto_hash_sha256_final(&h, digest);
	return 0;
}

static int
verify_phase(struct media_job *j, uint8_t *buf, const uint8_t digest[32])
{
	int fd = open(j->device, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ioctl(fd, BLKFLSBUF, 0); /* a block device's buffers; fails harmlessly on a file */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	crypto_hash_sha256_state h;
	crypto_hash_sha256_init(&h);
	uint64_t done = 0;
	double t0 = now_s(), last = t0;
	int rc = 0;
	while (done < j->image_size && !rc) {
		if (cancelled(j)) {
			rc = -EINTR;
			break;
		}
		size_t want = j->image_size - done < CHUNK ? (size_t)(j->image_size - done) : CHUNK;
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		crypto_hash_sha256_update(&h, buf, (unsigned long long)n);
		done += (uint64_t)n;
		tell(j, "verify", done, j->image_size, t0, &last, false);
	}
	close(fd);
	if (rc < 0) {
		fail(j, "%s: reading back: %s", j->device, rc);
		return rc;
	}
	tell(j, "verify", done, j->image_size, t0, &last, true);
	uint8_t back[32];
	crypto_hash_sha256_final(&h, back);
	if (memcmp(back, digest, 32)) {
		char a[65];
		hex(back, a);
		snprintf(j->err, sizeof(j->err), "%s reads back sha256 %s, the image is %s",
			 j->device, a, j->sha256);
		return -EIO;
	}
	return 0;
}

int
media_write(struct media_job *j)
{
	j->written = 0;
	struct src s;
	int rc = src_open(&s, j->image);
	if (rc < 0) {
		fail(j, "%s: %s", j->image, rc);
		src_close(&s);
		return rc;
	}
	int fd = open_device(j, O_WRONLY);
	if (fd < 0) {
		fail(j, "%s: %s", j->device, fd);
		src_close(&s);
		return fd;
	}
	uint8_t *buf = malloc(CHUNK), digest[32];
	if (!buf)
		abort();
	rc = write_phase(j, fd, &s, buf, digest);
	close(fd);
	src_close(&s);
	if (!rc) {
		hex(digest, j->sha256);
		rc = verify_phase(j, buf, digest);
	}
	free(buf);
	return rc;
}

void
media_human(uint64_t b, char *out, size_t n)
{
	if (b >= 1000000000ull)
		snprintf(out, n, "%.2f GB", (double)b / 1e9);
	else
		snprintf(out, n, "%.1f MB", (double)b / 1e6);
}

int
media_port_device(bool emu, const char *emu_file, const char *chain, char *path, size_t n,
		  char *unit, size_t un)
{
	if (emu) {
		snprintf(unit, un, "the virtual unit");
		if (!emu_file)
			return 0;
		char *real = realpath(emu_file, NULL);
		if (!real) {
			int e = errno;
			snprintf(unit, un, "--emu-media %s: %s", emu_file, strerror(e));
			return -e;
		}
		snprintf(path, n, "%s", real);
		free(real);
		return 1;
	}
	struct okvm_unit_info *units;
	size_t nu;
	int rc = okvm_discover_scan(NULL, &units, &nu);
	if (rc < 0 || !nu) {
		if (!rc)
			okvm_discover_free_units(units);
		snprintf(unit, un, "no unit found (okvm list)");
		return -ENODEV;
	}
	int i = chain ? okvm_discover_match(units, nu, chain) : 0;
	if (i < 0) {
		okvm_discover_free_units(units);
		snprintf(unit, un, "no unit '%s' (okvm list)", chain);
		return -ENODEV;
	}
	snprintf(unit, un, "unit %s", units[i].port_chain);
	int found = 0;
	for (size_t k = 0; k < units[i].n_switchable && !found; k++)
		if (!strncmp(units[i].switchable[k].node, "/dev/sd", 7)) {
			snprintf(path, n, "%s", units[i].switchable[k].node);
			found = 1;
		}
	okvm_discover_free_units(units);
	return found;
}

int
media_check_device(const char *dev, const char *image, uint64_t image_size, bool size_known,
		   uint64_t *dev_size, char *msg, size_t n)
{
	char where[PATH_MAX + 64];
	int rc = media_mounted(dev, NULL, where, sizeof(where));
	if (rc < 0) {
		snprintf(msg, n, "media: cannot read the mounts table: %s", strerror(-rc));
		return -1;
	}
	if (rc > 0) {
		snprintf(msg, n, "media: %s is mounted (%.200s): refused; unmount it first", dev,
			 where);
		return -1;
	}
	uint64_t size;
	if ((rc = media_device_size(dev, &size)) < 0) {
		snprintf(msg, n, "media: %s: %s", dev, strerror(-rc));
		return -1;
	}
	if (dev_size)
		*dev_size = size;
	if (size_known && image_size > size) {
		char a[32], b[32];
		media_human(image_size, a, sizeof(a));
		media_human(size, b, sizeof(b));
		snprintf(msg, n,
			 "media: %s (%s, %llu bytes) does not fit on %s (%s, %llu bytes): refused",
			 image, a, (unsigned long long)image_size, dev, b,
			 (unsigned long long)size);
		return -1;
	}
	if (size_known && !image_size) {
		snprintf(msg, n, "media: %s is empty: nothing to write", image);
		return -1;
	}
	return 0;
}

int
media_check_disk(const char *disk, const char *port, const char *unit, bool force,
		 const char *force_flag, char *msg, size_t n)
{
	struct stat a, b;
	bool ok = port[0] && stat(disk, &a) == 0 && stat(port, &b) == 0 &&
		  ((S_ISBLK(a.st_mode) && a.st_rdev == b.st_rdev) ||
		   (!S_ISBLK(a.st_mode) && a.st_dev == b.st_dev && a.st_ino == b.st_ino));
	if (ok || force)
		return 0;
	snprintf(msg, n,
		 "media: %s is not the medium in %s's switchable port (%s): refused; %s writes it "
		 "anyway",
		 disk, unit, port[0] ? port : "none there", force_flag);
	return -1;
}
