/*
 * Helpers of the config file's reader and writer (config.c, config-write.c) that the commands
 * editing it (okvm passwd, okvm totp) share. serve.h has the main API.
 */
#ifndef OKVM_SERVE_CONFIG_FILE_H
#define OKVM_SERVE_CONFIG_FILE_H

#include <stdbool.h>

#include "serve/serve.h"

/* Longest password okvm passwd takes (characters): argon2 takes any length, but a limit keeps a
 * pasted file from being hashed, and nothing is ever cut silently. */
#define SERVE_MAX_PASSWORD 1024

/* Is name a valid [user.NAME]: 1 to 32 of a-z 0-9 _ . - ? */
bool serve_user_name_valid(const char *name);

/* "viewer", "operator", "admin" -> the role; anything else SERVE_ROLE_NONE. */
enum serve_role serve_role_parse(const char *s);
const char *serve_role_name(enum serve_role r);

/* serve_config_load without its log lines, for a command that only peeks at the file. */
int serve_config_load_quiet(struct serve_config *cfg, const char *path);

/* Remove a whole section ("user.alice") from the file, keeping everything else, with the same
 * care as serve_config_set_in. Returns 0, -ENOENT (no such section or no file) or -errno. */
int serve_config_remove_section(const char *path, const char *section);

#endif
