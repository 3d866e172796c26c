/*
 * DESIGN: okvm serve's configuration file, an INI file read with inih (docs/serve.md):
 *
 *   [serve]
 *   listen = 127.0.0.1:8080
 *   password = $argon2id$v=19$m=12288,t=3,p=1$...     (written by `okvm passwd`)
 *   tls_cert = /etc/okvm/cert.pem
 *   ...
 *
 * Command-line options override the file. The file holds a password hash, so `okvm passwd`
 * writes it 0600 (in a 0700 folder) by writing a temporary file and renaming it over the old one.
 * Unknown keys are an error, so a typo does not silently leave a default in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "okvm/log.h"
#include "serve/serve.h"

void
serve_config_init(struct serve_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = strdup(SERVE_DEFAULT_LISTEN);
	cfg->layout = strdup("us");
	cfg->session_hours = 12;
	cfg->stall_timeout_s = 10;
	cfg->max_clients = 256;
	cfg->type_cps = 0;
	cfg->login_max_failures = 5;
	cfg->login_lockout_s = 30;
}

static void
free_secret(char *p)
{
	if (p)
		memset(p, 0, strlen(p));
	free(p);
}

void
serve_config_clear(struct serve_config *cfg)
{
	free(cfg->listen);
	free_secret(cfg->password_hash);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->tls_dir);
	free(cfg->layout);
	free(cfg->config_path);
	free_secret(cfg->metrics_token);
	memset(cfg, 0, sizeof(*cfg));
}

static bool
set_str(char **field, const char *v)
{
	free(*field);
	*field = *v ? strdup(v) : NULL;
	return true;
}

static bool
set_int(int *field, const char *v, int lo, int hi)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (end == v || *end || n < lo || n > hi)
		return false;
	*field = (int)n;
	return true;
}

static bool
set_bool(bool *field, const char *v)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*field = true;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*field = false;
	else
		return false;
	return true;
}

static bool
set_key(struct serve_config *cfg, const char *name, const char *v)
{
	if (!strcmp(name, "listen"))
		return set_str(&cfg->listen, v);
	if (!strcmp(name, "password"))
		return set_str(&cfg->password_hash, v);
	if (!strcmp(name, "tls_cert"))
		return set_str(&cfg->tls_cert, v);
	if (!strcmp(name, "tls_key"))
		return set_str(&cfg->tls_key, v);
	if (!strcmp(name, "tls_self_signed"))
		return set_bool(&cfg->tls_self_signed, v);
	if (!strcmp(name, "tls_dir"))
		return set_str(&cfg->tls_dir, v);
	if (!strcmp(name, "layout"))
		return set_str(&cfg->layout, v);
	if (!strcmp(name, "session_hours"))
		return set_int(&cfg->session_hours, v, 1, 24 * 365);
	if (!strcmp(name, "stall_timeout"))
		return set_int(&cfg->stall_timeout_s, v, 1, 3600);
	if (!strcmp(name, "max_clients"))
		return set_int(&cfg->max_clients, v, 1, 4096);
	if (!strcmp(name, "login_max_failures"))
		return set_int(&cfg->login_max_failures, v, 1, 1000);
	if (!strcmp(name, "login_lockout"))
		return set_int(&cfg->login_lockout_s, v, 1, 86400);
	if (!strcmp(name, "metrics_token"))
		return strlen(v) >= 16 && strlen(v) <= 256 && !strpbrk(v, " \t") &&
		       set_str(&cfg->metrics_token, v);
	if (!strcmp(name, "type_cps")) {
		char *end;
		double d = strtod(v, &end);
		if (end == v || *end || d < 0 || d > 10000)
			return false;
		cfg->type_cps = d;
		return true;
	}
	return false;
}

static int
on_ini(void *ud, const char *section, const char *name, const char *value)
{
	if (strcmp(section, "serve"))
		return 1; /* other sections belong to other commands */
	return set_key(ud, name, value) ? 1 : 0;
}

int
serve_config_load(struct serve_config *cfg, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	struct stat st;
	if (!fstat(fileno(f), &st) && (st.st_mode & 077))
		okvm_log(OKVM_LOG_WARN, "%s: readable by others; it may hold a password hash "
			 "(chmod 600)", path);
	int line = ini_parse_file(f, on_ini, cfg);
	fclose(f);
	if (line) {
		okvm_log(OKVM_LOG_ERROR, "%s:%d: unknown key or bad value", path, line);
		return -EINVAL;
	}
	free(cfg->config_path);
	cfg->config_path = strdup(path);
	return 0;
}

char *
serve_config_default_path(bool for_write)
{
	char *p = NULL;
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg) {
		if (asprintf(&p, "%s/okvm/okvm.conf", xdg) < 0)
			abort();
	} else if (home && *home) {
		if (asprintf(&p, "%s/.config/okvm/okvm.conf", home) < 0)
			abort();
	}
	if (p && (for_write || !access(p, F_OK)))
		return p;
	free(p);
	if (!access("/etc/okvm/okvm.conf", F_OK))
		return strdup("/etc/okvm/okvm.conf");
	return NULL;
}

static int
mkdir_parent(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Copy the old file, replacing or adding key in [serve]. */
static void
rewrite(FILE *in, FILE *out, const char *key, const char *value)
{
	char line[4096];
	bool in_serve = false, done = false, seen_serve = false;
	size_t klen = strlen(key);
	while (in && fgets(line, sizeof(line), in)) {
		const char *p = line + strspn(line, " \t");
		if (*p == '[') {
			if (in_serve && !done) {
				fprintf(out, "%s = %s\n", key, value);
				done = true;
			}
			in_serve = !strncmp(p, "[serve]", 7);
			seen_serve |= in_serve;
		} else if (in_serve && !strncmp(p, key, klen) && strchr(" \t=", p[klen])) {
			if (!done)
				fprintf(out, "%s = %s\n", key, value);
			done = true;
			continue;
		}
		fputs(line, out);
	}
	if (!done)
		fprintf(out, "%s%s = %s\n", seen_serve && in_serve ? "" : "\n[serve]\n", key, value);
}

int
serve_config_set(const char *path, const char *key, const char *value)
{
	int rc = mkdir_parent(path);
	if (rc)
		return rc;
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	FILE *out = fdopen(fd, "w");
	FILE *in = fopen(path, "r");
	rewrite(in, out, key, value);
	if (in)
		fclose(in);
	rc = fflush(out) || fsync(fd) ? -errno : 0;
	fclose(out);
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}
