/*
 * Fuzz target: okvm serve's config file (src/serve/config.c). The input is the whole file:
 * serve_config_load reads it from a temporary folder. A file it accepts is then given a new
 * password the way `okvm passwd` does (serve_config_set) and read again: that must still work
 * and give back the new password, or `okvm passwd` would break a config file that worked.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "fuzz-util.h"

#define NEW_HASH "$argon2id$v=19$m=12288,t=3,p=1$ZnV6eg$ZnV6emZ1enpmdXp6"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[4200];
	if (!path[0]) {
		fuzz_quiet();
		snprintf(path, sizeof(path), "%s/okvm.conf", fuzz_tmpdir());
	}
	if (fuzz_write_file(path, data, size))
		abort();
	struct serve_config cfg;
	serve_config_init(&cfg);
	int rc = serve_config_load(&cfg, path);
	if (rc == 0 && cfg.listen)
		serve_listen_valid(cfg.listen);
	serve_config_clear(&cfg);
	/* Past the reader's own limits (NUL bytes, lines longer than the rewrite's buffer) the two
	 * are allowed to disagree. */
	if (rc || memchr(data, 0, size) || size > 4000)
		return 0;
	/* A refusal is reported to the user; a rewrite that "works" and loses the file is not. */
	if (serve_config_set(path, "password", NEW_HASH))
		return 0;
	serve_config_init(&cfg);
	if (serve_config_load(&cfg, path) || !cfg.password_hash ||
	    strcmp(cfg.password_hash, NEW_HASH))
		abort();
	serve_config_clear(&cfg);
	return 0;
}
