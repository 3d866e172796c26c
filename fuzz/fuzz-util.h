/* Helpers shared by the fuzz targets that need files: a private temporary folder, tree removal,
 * and silence from okvm's log handler (one line per input would slow libFuzzer down). */
#ifndef OKVM_FUZZ_UTIL_H
#define OKVM_FUZZ_UTIL_H

#include <stddef.h>

/* A folder of this process's own (on /dev/shm when it exists, else $TMPDIR or /tmp), made on
 * the first call and removed at exit. Aborts when it cannot be made. */
const char *fuzz_tmpdir(void);
/* Remove path and everything below it, without following symlinks. Returns 0 or -errno. */
int fuzz_rmtree(const char *path);
/* Drop okvm's log lines, unless FUZZ_VERBOSE is set in the environment. */
void fuzz_quiet(void);
/* Write len bytes to path (created 0600, truncated). Returns 0 or -errno. */
int fuzz_write_file(const char *path, const void *data, size_t len);

#endif
