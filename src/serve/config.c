/*
 * DESIGN: okvm serve's configuration file, an INI file read with inih (docs/serve.md):
 *
 *   [serve]
 *   listen = 127.0.0.1:8080
 *   password = $argon2id$v=19$m=12288,t=3,p=1$...     (written by `okvm passwd`: user "admin")
 *   totp = JBSWY3DPEHPK3PXP...                          (written by `okvm totp`)
 *   ...
 *   [user.alice]                                        (`okvm passwd --user alice --role ...`)
 *   password = $argon2id$...
 *   role = operator
 *
 * Command-line options override the file. Unknown keys in [serve] and [user.*] are an error
 * naming the line, so a typo does not silently leave a default in place; other sections belong
 * to other commands and are skipped.
 *
 * The file holds password hashes and TOTP secrets, so one that other users may read or write is
 * refused (group access is fine: the system service reads its file through group okvm). Writing
 * is in config-write.c.
 *
 * Line length: inih reads lines into a buffer of fixed size, 200 bytes by default, which cut a
 * long metrics_token. Debian's inih makes that size a run-time variable (ini_max_line; meson
 * checks for it), which is raised here to CONFIG_MAX_LINE; with another inih the compiled-in
 * limit applies. Either way a longer line is refused naming it, never cut.
 */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "okvm/log.h"
#include "serve/config-file.h"
#include "serve/totp.h"

#define CONFIG_MAX_LINE 16384          /* characters, without the newline */
#define CONFIG_MAX_BYTES (1024 * 1024) /* a config file is a few hundred bytes */

void
serve_config_init(struct serve_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = xstrdup(SERVE_DEFAULT_LISTEN);
	cfg->layout = xstrdup("us");
	cfg->session_hours = 12;
	cfg->stall_timeout_s = 10;
	cfg->max_clients = 256;
	cfg->type_cps = 0;
	cfg->follow_toggle = true;
	cfg->login_max_failures = 5;
	cfg->login_lockout_s = 30;
	cfg->auth_mode = SERVE_AUTH_AUTO;
	cfg->header_timeout_s = 10;
	cfg->max_unauth_per_addr = 16;
	cfg->record_dir = serve_record_default_dir();
	cfg->record_max_bytes = 2ULL << 30;
	cfg->record_min_free = 1ULL << 30;
	cfg->record_audio = true;
}

char *
serve_record_default_dir(void)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char buf[4096];
	if (state && state[0] == '/')
		snprintf(buf, sizeof(buf), "%s/okvm/recordings", state);
	else if (home && home[0] == '/')
		snprintf(buf, sizeof(buf), "%s/.local/state/okvm/recordings", home);
	else
		snprintf(buf, sizeof(buf), "/var/lib/okvm/recordings");
	return xstrdup(buf);
}

static void
free_secret(char *p)
{
	if (p)
		memset(p, 0, strlen(p));
	free(p);
}

static void
user_clear(struct serve_user *u)
{
	free(u->name);
	free_secret(u->password_hash);
	free_secret(u->totp_secret);
	memset(u, 0, sizeof(*u));
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
	free_secret(cfg->mcp_token);
	free(cfg->vnc_listen);
	free_secret(cfg->vnc_password);
	free_secret(cfg->totp_secret);
	free(cfg->media_spool_dir);
	free(cfg->record_dir);
	free(cfg->h264_encoder);
	for (unsigned i = 0; i < cfg->nserver_names; i++)
		free(cfg->server_names[i]);
	for (unsigned i = 0; i < cfg->nusers; i++)
		user_clear(&cfg->users[i]);
	memset(cfg, 0, sizeof(*cfg));
}

void
serve_config_copy(struct serve_config *dst, const struct serve_config *src)
{
	*dst = *src; /* the numbers; every pointer is replaced below */
	dst->listen = xstrdup_or_null(src->listen);
	dst->password_hash = xstrdup_or_null(src->password_hash);
	dst->tls_cert = xstrdup_or_null(src->tls_cert);
	dst->tls_key = xstrdup_or_null(src->tls_key);
	dst->tls_dir = xstrdup_or_null(src->tls_dir);
	dst->layout = xstrdup_or_null(src->layout);
	dst->config_path = xstrdup_or_null(src->config_path);
	dst->metrics_token = xstrdup_or_null(src->metrics_token);
	dst->mcp_token = xstrdup_or_null(src->mcp_token);
	dst->vnc_listen = xstrdup_or_null(src->vnc_listen);
	dst->vnc_password = xstrdup_or_null(src->vnc_password);
	dst->totp_secret = xstrdup_or_null(src->totp_secret);
	dst->media_spool_dir = xstrdup_or_null(src->media_spool_dir);
	dst->record_dir = xstrdup_or_null(src->record_dir);
	dst->h264_encoder = xstrdup_or_null(src->h264_encoder);
	for (unsigned i = 0; i < src->nserver_names; i++)
		dst->server_names[i] = xstrdup_or_null(src->server_names[i]);
	for (unsigned i = 0; i < src->nusers; i++) {
		dst->users[i].name = xstrdup_or_null(src->users[i].name);
		dst->users[i].password_hash = xstrdup_or_null(src->users[i].password_hash);
		dst->users[i].totp_secret = xstrdup_or_null(src->users[i].totp_secret);
	}
}

/* ---- values ---- */

/* What went wrong on the line inih is about to report; "" for the generic message. */
struct parse {
	struct serve_config *cfg;
	char why[200];
};

static bool __attribute__((format(printf, 2, 3))) bad(struct parse *ps, const char *fmt, ...)
{
	if (!ps->why[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ps->why, sizeof(ps->why), fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool
set_str(char **field, const char *v)
{
	free_secret(*field);
	*field = *v ? xstrdup_or_null(v) : NULL;
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

/* A TOTP secret as the apps show it ("jbsw y3dp ..."), kept upper case without spaces or '='. */
static bool
set_totp(struct parse *ps, char **field, const char *v)
{
	if (!totp_secret_valid(v))
		return bad(ps, "totp: not a base32 secret of %d to %d bytes (okvm totp makes one)",
			   TOTP_MIN_SECRET_BYTES, TOTP_MAX_SECRET_BYTES);
	char *s = xstrdup_or_null(v), *o = s;
	for (const char *p = v; *p; p++)
		if (*p != ' ' && *p != '=')
			*o++ = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
	*o = 0;
	free_secret(*field);
	*field = s;
	return true;
}

static bool
set_hash(struct parse *ps, char **field, const char *v)
{
	/* A password typed into the file by hand would otherwise never match anything. */
	if (*v && strncmp(v, "$argon2id$", 10))
		return bad(ps, "password: not an argon2id hash (set it with okvm passwd)");
	return set_str(field, v);
}

static bool
dns_name_valid(const char *n)
{
	size_t len = strlen(n), label = 0;
	if (!len || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = n[i];
		if (c == '.' || !c) {
			if (!label || n[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static bool
set_server_names(struct parse *ps, struct serve_config *cfg, const char *v)
{
	char *copy = xstrdup_or_null(v), *save = NULL;
	char *names[SERVE_MAX_SERVER_NAMES] = { 0 };
	unsigned n = 0;
	bool ok = true;
	for (char *t = strtok_r(copy, ", \t", &save); t && ok; t = strtok_r(NULL, ", \t", &save)) {
		for (char *p = t; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		if (n == SERVE_MAX_SERVER_NAMES)
			ok = bad(ps, "server_names: more than %d names", SERVE_MAX_SERVER_NAMES);
		else if (!dns_name_valid(t))
			ok = bad(ps, "server_names: '%.80s' is not a DNS name", t);
		else
			names[n++] = xstrdup_or_null(t);
	}
	free(copy);
	if (!ok) {
		while (n)
			free(names[--n]);
		return false;
	}
	for (unsigned i = 0; i < cfg->nserver_names; i++)
		free(cfg->server_names[i]);
	memcpy(cfg->server_names, names, n * sizeof(names[0]));
	cfg->nserver_names = n;
	return true;
}

static bool
set_key(struct parse *ps, const char *name, const char *v)
{
	struct serve_config *cfg = ps->cfg;
	if (!strcmp(name, "listen"))
		return (*v && set_str(&cfg->listen, v)) || bad(ps, "listen: ADDR:PORT");
	if (!strcmp(name, "password"))
		return set_hash(ps, &cfg->password_hash, v);
	if (!strcmp(name, "totp"))
		return set_totp(ps, &cfg->totp_secret, v);
	if (!strcmp(name, "tls_cert"))
		return set_str(&cfg->tls_cert, v);
	if (!strcmp(name, "tls_key"))
		return set_str(&cfg->tls_key, v);
	if (!strcmp(name, "tls_self_signed"))
		return set_bool(&cfg->tls_self_signed, v);
	if (!strcmp(name, "follow_toggle"))
		return set_bool(&cfg->follow_toggle, v);
	if (!strcmp(name, "tls_dir"))
		return set_str(&cfg->tls_dir, v);
	if (!strcmp(name, "layout"))
		return (*v && set_str(&cfg->layout, v)) || bad(ps, "layout: an XKB layout name");
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
	if (!strcmp(name, "header_timeout"))
		return set_int(&cfg->header_timeout_s, v, 1, 300) ||
		       bad(ps, "header_timeout: 1 to 300 seconds");
	if (!strcmp(name, "max_unauth_per_address"))
		return set_int(&cfg->max_unauth_per_addr, v, 1, 4096) ||
		       bad(ps, "max_unauth_per_address: 1 to 4096");
	if (!strcmp(name, "server_names"))
		return set_server_names(ps, cfg, v);
	if (!strcmp(name, "auth")) {
		if (!strcmp(v, "auto") || !strcmp(v, "always")) {
			cfg->auth_mode = strcmp(v, "auto") ? SERVE_AUTH_ALWAYS : SERVE_AUTH_AUTO;
			return true;
		}
		return bad(ps, "auth: auto or always");
	}
	if (!strcmp(name, "metrics_token"))
		return (strlen(v) >= 16 && strlen(v) <= 256 && !strpbrk(v, " \t") &&
			set_str(&cfg->metrics_token, v)) ||
		       bad(ps, "metrics_token: 16 to 256 characters, no spaces");
	if (!strcmp(name, "h264_encoder")) {
		if (strcmp(v, "auto") && strcmp(v, "openh264") && strcmp(v, "v4l2") &&
		    (strncmp(v, "/dev/", 5) || strlen(v) > 60 || strpbrk(v, "\"\\ \t")))
			return bad(ps, "h264_encoder: auto, openh264, v4l2 or a /dev/videoN path");
		return set_str(&cfg->h264_encoder, strcmp(v, "auto") ? v : "");
	}
	if (!strcmp(name, "type_cps")) {
		char *end;
		double d = strtod(v, &end);
		if (end == v || *end || d < 0 || d > 10000)
			return false;
		cfg->type_cps = d;
		return true;
	}
	return bad(ps, "unknown key '%.60s' in [serve]", name);
}

/* ---- [user.NAME] ---- */

bool
serve_user_name_valid(const char *name)
{
	size_t n = strlen(name);
	return n >= 1 && n <= 32 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static const char *const role_names[] = {
	[SERVE_ROLE_VIEWER] = "viewer",
	[SERVE_ROLE_OPERATOR] = "operator",
	[SERVE_ROLE_ADMIN] = "admin",
};

enum serve_role
serve_role_parse(const char *s)
{
	for (int r = SERVE_ROLE_VIEWER; r <= SERVE_ROLE_ADMIN; r++)
		if (!strcmp(s, role_names[r]))
			return (enum serve_role)r;
	return SERVE_ROLE_NONE;
}

const char *
serve_role_name(enum serve_role r)
{
	return r >= SERVE_ROLE_VIEWER && r <= SERVE_ROLE_ADMIN ? role_names[r] : "none";
}

static struct serve_user *
user_get(struct parse *ps, const char *name)
{
	struct serve_config *cfg = ps->cfg;
	for (unsigned i = 0; i < cfg->nusers; i++)
		if (!strcmp(cfg->users[i].name, name))
			return &cfg->users[i];
	if (!serve_user_name_valid(name)) {
		bad(ps, "[user.%.40s]: a user name is 1 to 32 of a-z 0-9 _ . -", name);
		return NULL;
	}
	if (cfg->nusers == SERVE_MAX_USERS) {
		bad(ps, "more than %d [user.*] sections", SERVE_MAX_USERS);
		return NULL;
	}
	struct serve_user *u = &cfg->users[cfg->nusers++];
	u->name = xstrdup_or_null(name);
	return u;
}

static bool
set_user_key(struct parse *ps, const char *user, const char *name, const char *v)
{
	struct serve_user *u = user_get(ps, user);
	if (!u)
		return false;
	if (!strcmp(name, "password"))
		return set_hash(ps, &u->password_hash, v);
	if (!strcmp(name, "totp"))
		return set_totp(ps, &u->totp_secret, v);
	if (!strcmp(name, "role")) {
		u->role = serve_role_parse(v);
		return u->role != SERVE_ROLE_NONE || bad(ps, "role: viewer, operator or admin");
	}
	return bad(ps, "unknown key '%.60s' in [user.%s] (password, role, totp)", name, user);
}

/* BYTES, or N with K, M, G or T (powers of 1024). */
static bool
set_size(uint64_t *field, const char *v)
{
	char *end;
	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	unsigned shift = 0;
	const char *units = "KMGT";
	const char *u = *end ? strchr(units, *end & ~0x20) : NULL;
	if (u && *end)
		shift = 10 * (unsigned)(u - units + 1), end++;
	if (errno || *end || n > (UINT64_MAX >> shift))
		return false;
	*field = (uint64_t)n << shift;
	return true;
}

static bool
set_record_key(struct parse *ps, const char *name, const char *v)
{
	struct serve_config *cfg = ps->cfg;
	if (!strcmp(name, "dir"))
		return (v[0] == '/' && set_str(&cfg->record_dir, v)) ||
		       bad(ps, "[record] dir: an absolute path (the folder for recordings)");
	if (!strcmp(name, "max_size"))
		return (set_size(&cfg->record_max_bytes, v) && cfg->record_max_bytes >= 65536) ||
		       bad(ps, "[record] max_size: a size of at least 64K (bytes, or N with K, M, "
			       "G or T)");
	if (!strcmp(name, "min_free"))
		return set_size(&cfg->record_min_free, v) ||
		       bad(ps, "[record] min_free: a size (bytes, or N with K, M, G or T)");
	if (!strcmp(name, "audio"))
		return set_bool(&cfg->record_audio, v) || bad(ps, "[record] audio: yes or no");
	return bad(ps, "unknown key '%.60s' in [record] (dir, max_size, min_free, audio)", name);
}

static int
on_ini(void *ud, const char *section, const char *name, const char *value)
{
	struct parse *ps = ud;
	if (!strcmp(section, "serve"))
		return set_key(ps, name, value);
	if (!strncmp(section, "user.", 5))
		return set_user_key(ps, section + 5, name, value);
	if (!strcmp(section, "mcp")) { /* MCP over HTTP (docs/automation.md, "MCP") */
		if (strcmp(name, "token"))
			return bad(ps, "unknown key '%.60s' in [mcp] (token)", name);
		return (strlen(value) >= 16 && strlen(value) <= 256 && !strpbrk(value, " \t") &&
			set_str(&ps->cfg->mcp_token, value)) ||
		       bad(ps, "[mcp] token: 16 to 256 characters, no spaces");
	}
	if (!strcmp(section, "vnc")) { /* okvm serve's VNC server (docs/serve.md, "VNC") */
		if (!strcmp(name, "listen"))
			return set_str(&ps->cfg->vnc_listen, value);
		if (!strcmp(name, "password"))
			return (strlen(value) >= 6 && strlen(value) <= 8 &&
				set_str(&ps->cfg->vnc_password, value)) ||
			       bad(ps,
				   "[vnc] password: 6 to 8 characters (VNC authentication uses 8)");
		return bad(ps, "unknown key '%.60s' in [vnc] (listen, password)", name);
	}
	if (!strcmp(section, "record")) /* recording from the web UI (docs/recording.md) */
		return set_record_key(ps, name, value);
	if (!strcmp(section, "media")) { /* uploads of virtual media (docs/power.md) */
		if (strcmp(name, "spool_dir"))
			return bad(ps, "unknown key '%.60s' in [media] (spool_dir)", name);
		return (value[0] == '/' && set_str(&ps->cfg->media_spool_dir, value)) ||
		       bad(ps, "[media] spool_dir: an absolute folder path");
	}
	return 1; /* other sections belong to other commands */
}

/* ---- the file ---- */

/* The whole file (at most CONFIG_MAX_BYTES), NUL-terminated, malloc'd. */
static int
read_all(FILE *f, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf = xmalloc(cap);
	size_t n;
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap) {
			if (cap >= CONFIG_MAX_BYTES) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			char *bigger = xrealloc(buf, cap);
			buf = bigger;
		}
	}
	if (ferror(f)) {
		free(buf);
		return -EIO;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

/* The longest line inih will take whole, without its newline. */
static size_t
line_limit(void)
{
#ifdef OKVM_INIH_RUNTIME_OPTIONS
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = CONFIG_MAX_LINE + 3; /* room for "\r\n" and the NUL */
	ini_initial_alloc = 512;
	return CONFIG_MAX_LINE;
#else
	return INI_MAX_LINE - 3 < CONFIG_MAX_LINE ? INI_MAX_LINE - 3 : CONFIG_MAX_LINE;
#endif
}

/* 0, or the number of the first line longer than max. */
static int
long_line(const char *text, size_t max)
{
	int line = 1;
	for (const char *p = text; *p; line++) {
		size_t n = strcspn(p, "\n");
		if (n > max)
			return line;
		p += n + (p[n] == '\n');
	}
	return 0;
}

/* The line of the first "[section]" header (as inih reads one), or 0. */
static int
header_line(const char *text, const char *section)
{
	size_t slen = strlen(section);
	int line = 1;
	for (const char *p = text; *p; line++) {
		const char *s = p + strspn(p, " \t");
		if (*s == '[' && !strncmp(s + 1, section, slen) && s[1 + slen] == ']')
			return line;
		p += strcspn(p, "\n");
		p += *p == '\n';
	}
	return 0;
}

/* A [user.NAME] section with no keys, or without a password or role. */
static int
check_users(struct serve_config *cfg, const char *path, const char *text)
{
	int line = 1;
	for (const char *p = text; *p; line++) {
		const char *s = p + strspn(p, " \t");
		size_t eol = strcspn(p, "\n");
		const char *close = memchr(s, ']', (size_t)(p + eol - s));
		if (*s == '[' && close && !strncmp(s + 1, "user.", 5)) {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)(close - s - 6), s + 6);
			struct serve_user *u = NULL;
			for (unsigned i = 0; i < cfg->nusers; i++)
				if (!strcmp(cfg->users[i].name, name))
					u = &cfg->users[i];
			const char *why = !serve_user_name_valid(name)
						  ? "a user name is 1 to 32 of a-z 0-9 _ . -"
					  : !u || !u->password_hash
						  ? "no password (okvm passwd --user NAME "
						    "--role ROLE sets one)"
					  : !u->role ? "no role (viewer, operator or "
						       "admin)"
						     : NULL;
			if (why) {
				okvm_log(OKVM_LOG_ERROR, "%s:%d: [user.%s]: %s", path, line, name,
					 why);
				return -EINVAL;
			}
		}
		p += eol + (p[eol] == '\n');
	}
	for (unsigned i = 0; i < cfg->nusers; i++) {
		if (strcmp(cfg->users[i].name, "admin") || !cfg->password_hash)
			continue;
		okvm_log(OKVM_LOG_ERROR,
			 "%s:%d: [user.admin] and the [serve] password are both the "
			 "user admin; keep one",
			 path, header_line(text, "user.admin"));
		return -EINVAL;
	}
	if (cfg->totp_secret && !cfg->password_hash) {
		okvm_log(OKVM_LOG_ERROR, "%s:%d: [serve] has a totp but no password (okvm passwd)",
			 path, header_line(text, "serve"));
		return -EINVAL;
	}
	return 0;
}

static bool
holds_secrets(const struct serve_config *cfg)
{
	return cfg->password_hash || cfg->totp_secret || cfg->metrics_token || cfg->mcp_token ||
	       cfg->vnc_password || cfg->nusers;
}

/* Other users may neither read a file with secrets nor write any config (they could set the
 * password). Group access is the system service's layout (docs/serve.md). */
static int
check_mode(const struct serve_config *cfg, const char *path, const struct stat *st)
{
	bool secrets = holds_secrets(cfg);
	if (!(st->st_mode & S_IWOTH) && !(secrets && (st->st_mode & S_IROTH)))
		return 0;
	okvm_log(OKVM_LOG_ERROR,
		 "%s: %s and other users can %s it; okvm will not use it until "
		 "you run: chmod o-rwx %s",
		 path, secrets ? "it holds password hashes or secrets" : "it sets who may log in",
		 st->st_mode & S_IWOTH ? "write" : "read", path);
	return -EACCES;
}

static int
parse_text(struct serve_config *cfg, const char *path, const char *text)
{
	int line = long_line(text, line_limit());
	if (line) {
		okvm_log(OKVM_LOG_ERROR, "%s:%d: line longer than %zu characters", path, line,
			 line_limit());
		return -EINVAL;
	}
	struct parse ps = { .cfg = cfg };
	line = ini_parse_string(text, on_ini, &ps);
	if (line) {
		okvm_log(OKVM_LOG_ERROR, "%s:%d: %s", path, line,
			 ps.why[0] ? ps.why : "unknown key or bad value");
		return -EINVAL;
	}
	return check_users(cfg, path, text);
}

int
serve_config_load(struct serve_config *cfg, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	struct stat st;
	char *text = NULL;
	int rc = fstat(fileno(f), &st) ? -errno : read_all(f, &text);
	fclose(f);
	if (rc == -EFBIG)
		okvm_log(OKVM_LOG_ERROR, "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
	if (!rc)
		rc = parse_text(cfg, path, text);
	if (text) {
		memset(text, 0, strlen(text));
		free(text);
	}
	if (!rc)
		rc = check_mode(cfg, path, &st);
	if (rc)
		return rc;
	free(cfg->config_path);
	cfg->config_path = xstrdup_or_null(path);
	return 0;
}

int
serve_config_load_quiet(struct serve_config *cfg, const char *path)
{
	enum okvm_log_level old = okvm_log_get_level();
	okvm_log_set_level((enum okvm_log_level)(OKVM_LOG_ERROR + 1));
	int rc = serve_config_load(cfg, path);
	okvm_log_set_level(old);
	return rc;
}

char *
serve_config_default_path(bool for_write)
{
	char *p = NULL;
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg) {
		p = xasprintf("%s/okvm/okvm.conf", xdg);
	} else if (home && *home) {
		p = xasprintf("%s/.config/okvm/okvm.conf", home);
	}
	if (p && (for_write || !access(p, F_OK)))
		return p;
	free(p);
	if (!access("/etc/okvm/okvm.conf", F_OK))
		return strdup("/etc/okvm/okvm.conf");
	return NULL;
}
