/*
 * Virtual media (docs/power.md, "Virtual media"): an image, raw or compressed (.gz, .xz, .zst,
 * streamed through zlib, liblzma, libzstd), written to the block device (or the virtual unit's
 * file) in the switchable port, then read back and compared by SHA-256. No CLI here: the caller
 * finds the device, moves the switch and prints the progress.
 * Threads: everything blocks; one caller per media_job.
 */
#ifndef OKVM_POWER_MEDIA_H
#define OKVM_POWER_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the image's name says it is. */
enum media_codec { MEDIA_RAW, MEDIA_GZ, MEDIA_XZ, MEDIA_ZST };
enum media_codec media_codec_of(const char *path);
const char *media_codec_name(enum media_codec c); /* "raw", "gzip", "xz", "zstd" */

/* Called at most every 250 ms and once at the end of each phase ("check", "write", "verify"). */
typedef void (*media_progress_fn)(void *ud, const char *phase, uint64_t done, uint64_t total,
				  double secs);

struct media_job {
	const char *image, *device;
	uint64_t image_size;        /* from media_image_size() */
	const volatile int *cancel; /* nonzero: stop (SIGINT/SIGTERM); NULL = never */
	media_progress_fn progress; /* NULL = none */
	void *ud;
	int chunk_delay_ms; /* test hook (OKVM_MEDIA_DELAY_MS): a pause per 1 MiB chunk */
	uint64_t written;   /* out: bytes written before the end or the stop */
	double write_secs;  /* out: time of the write phase, fsync included */
	char sha256[65];    /* out: the image's SHA-256, hex */
	char err[256];      /* out: what failed, for people */
};

/**
 * The image's size once unpacked: st_size for a raw image; a compressed one is unpacked (to
 * nowhere) and counted, so a corrupt archive is refused before anything is written.
 * @return 0, -ENOENT/-EACCES... (open), -EBADMSG (not a valid archive), -EINTR (cancelled).
 */
int media_image_size(struct media_job *j, uint64_t *out);

/**
 * The device's capacity: BLKGETSIZE64 for a block device, st_size for a file.
 * @return 0 or -errno.
 */
int media_device_size(const char *device, uint64_t *out);

/**
 * Whether the device or one of its partitions (DEV1, DEVp1) is mounted according to the mounts
 * file (NULL = $OKVM_MOUNTS, else /proc/self/mounts). @return 1 (where = the mount point), 0,
 * or -errno when the file cannot be read.
 */
int media_mounted(const char *device, const char *mounts, char *where, size_t n);

/**
 * Write the image over the device from its start, fsync, drop the cached pages and read the
 * bytes back: their SHA-256 must equal the image's. A block device is opened O_EXCL (the kernel
 * refuses it while mounted or held).
 * @return 0, -EINTR (cancelled: j->written tells how far), -ENOSPC (the image grew past the
 *         device), -EBADMSG (corrupt archive), -EIO (the read-back differs), or -errno.
 */
int media_write(struct media_job *j);

/* b as "1.23 GB" or "45.6 MB". */
void media_human(uint64_t b, char *out, size_t n);

/**
 * The block device in the unit's switchable port now (the unit by port chain, NULL = the
 * first; with emu, the file standing for the stick, NULL = none). unit gets "the virtual
 * unit" or "unit CHAIN" for messages. @return 1 (path set), 0 (none there), or -ENODEV /
 * -errno with unit saying why ("no unit found (okvm list)", "--emu-media FILE: ...").
 */
int media_port_device(bool emu, const char *emu_file, const char *chain, char *path, size_t n,
		      char *unit, size_t un);

/**
 * The refusals before a byte is written: dev mounted, its size unreadable, and (size_known)
 * the image larger than dev or empty. dev_size (may be NULL) gets dev's capacity.
 * @return 0, or -1 with msg set ("media: ...").
 */
int media_check_device(const char *dev, const char *image, uint64_t image_size, bool size_known,
		       uint64_t *dev_size, char *msg, size_t n);

/**
 * disk must be the medium in the port (the same block device, or the same file), unless force;
 * force_flag names the override in the refusal ("--force"). @return 0, or -1 with msg set.
 */
int media_check_disk(const char *disk, const char *port, const char *unit, bool force,
		     const char *force_flag, char *msg, size_t n);

#endif
