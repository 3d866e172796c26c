/*
 * DESIGN: what the file-based fuzz targets share. The temporary folder is per process and made
 * once: libFuzzer calls a target hundreds of thousands of times, so each input only rewrites
 * files inside it. Nothing here is a fuzz target.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "okvm/log.h"
#include "fuzz-util.h"

static char tmpdir[PATH_MAX];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) ? -errno : 0;
}

int
fuzz_rmtree(const char *path)
{
	int rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc < 0 ? -errno : rc;
}

static void
cleanup(void)
{
	if (tmpdir[0])
		fuzz_rmtree(tmpdir);
}

const char *
fuzz_tmpdir(void)
{
	if (tmpdir[0])
		return tmpdir;
	const char *base = getenv("TMPDIR");
	if (!access("/dev/shm", W_OK))
		base = "/dev/shm";
	else if (!base || !*base)
		base = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/okvm-fuzz-XXXXXX", base);
	if (!mkdtemp(tmpdir)) {
		perror(tmpdir);
		abort();
	}
	atexit(cleanup);
	return tmpdir;
}

static void
drop(enum okvm_log_level level, const char *fmt, va_list ap, void *ud)
{
}

void
fuzz_quiet(void)
{
	if (!getenv("FUZZ_VERBOSE"))
		okvm_log_set_handler(drop, NULL);
}

int
fuzz_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			int err = errno;
			close(fd);
			return -err;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd) ? -errno : 0;
}
