/*
 * okvm serve: the web KVM (ARCHITECTURE 3, 4.3, 7). The command (src/cli/cmd_serve.c) fills a
 * serve_config from the config file and its options, builds a backend and runs the server.
 */
#ifndef OKVM_SERVE_H
#define OKVM_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "serve/backend.h"

#define SERVE_DEFAULT_LISTEN "127.0.0.1:8080"
#define SERVE_MAX_USERS 32
#define SERVE_MAX_SERVER_NAMES 16

/* What a user may do (docs/serve.md "Users and roles"); each role includes the ones before it. */
enum serve_role {
	SERVE_ROLE_NONE = 0,
	SERVE_ROLE_VIEWER,   /* video and state only */
	SERVE_ROLE_OPERATOR, /* + keyboard, mouse, paste, USB switch */
	SERVE_ROLE_ADMIN,    /* + power, media, firmware (later issues) */
};

/* auth = auto: login when a password is set (and a password is required off loopback);
 * auth = always: login on every address, loopback included; the server refuses to start without
 * a user. */
enum serve_auth_mode { SERVE_AUTH_AUTO, SERVE_AUTH_ALWAYS };

/* One login. The [serve] section's `password` (and `totp`) is the user "admin" with role admin;
 * each [user.NAME] section adds one more. */
struct serve_user {
	char *name;
	char *password_hash; /* argon2id string */
	enum serve_role role;
	char *totp_secret; /* base32 (RFC 4648), NULL: no second factor */
};

struct serve_config {
	char *listen;        /* ADDR:PORT; IPv6 as [::1]:8080 */
	char *password_hash; /* argon2id string (crypto_pwhash_str); NULL: no login */
	char *tls_cert, *tls_key;
	bool tls_self_signed;   /* generate a pair into tls_dir (if none is there yet) */
	char *tls_dir;          /* where a generated pair lives; NULL = next to the config file */
	int session_hours;      /* session cookie lifetime */
	int stall_timeout_s;    /* a stream or WebSocket client that takes longer is dropped */
	int max_clients;        /* concurrent connections */
	char *layout;           /* default target layout for typing */
	double type_cps;        /* default typing speed, characters per second */
	bool follow_toggle;     /* mirror the unit's hardware USB toggle (default on) */
	int login_max_failures; /* per address, before a lockout */
	int login_lockout_s;    /* first lockout; doubles each time */
	char *config_path;      /* the file it came from, or NULL */
	char *metrics_token; /* opens GET /metrics as "Authorization: Bearer ..." (>= 16 chars) */
	char *mcp_token;     /* [mcp] token: opens /mcp as "Authorization: Bearer ..." */
	char *vnc_listen;    /* --vnc / [vnc] listen: IPV4:PORT of the VNC server; NULL: none */
	char *vnc_password;  /* [vnc] password (VNC authentication: 6-8 characters) */
	char *totp_secret;   /* [serve] totp: the second factor of the "admin" user above */
	enum serve_auth_mode auth_mode;
	/* Host names (besides loopback names and IP literals) that requests may carry in Host:
	 * the DNS-rebinding check. From `server_names = a.example, b.example`. */
	char *server_names[SERVE_MAX_SERVER_NAMES];
	unsigned nserver_names;
	struct serve_user users[SERVE_MAX_USERS]; /* users[i].name != NULL for i < nusers */
	unsigned nusers;
	/* Connection limits against slowloris and floods (docs/serve.md "Security"). */
	int header_timeout_s;    /* a request's headers and body must arrive within this */
	int max_unauth_per_addr; /* connections not yet logged in per address (IPv6: per /64) */
	char *media_spool_dir; /* [media] spool_dir: uploads wait here (NULL: $TMPDIR, /var/tmp) */
	/* [record]: recordings from the web UI (docs/recording.md) */
	char *record_dir;          /* where they go; default $XDG_STATE_HOME/okvm/recordings */
	uint64_t record_max_bytes; /* one file stays at or below this (default 2 GiB) */
	uint64_t record_min_free;  /* a start needs this much free space (default 1 GiB) */
	bool record_audio;         /* the unit's sound as a second track (default on) */
	/* [serve] h264_encoder: NULL (auto: a V4L2 M2M encoder if there is one, else openh264),
	 * "openh264", "v4l2" (one must exist) or a device path (docs/serve.md, "H.264") */
	char *h264_encoder;
};

/* Defaults into cfg (listen 127.0.0.1:8080, no password...). Free with serve_config_clear. */
void serve_config_init(struct serve_config *cfg);
void serve_config_clear(struct serve_config *cfg);
/* [record] dir's default: $XDG_STATE_HOME/okvm/recordings, ~/.local/state/okvm/recordings or
 * /var/lib/okvm/recordings (malloc'd). */
char *serve_record_default_dir(void);
/* A deep copy of src into dst (dst is overwritten, not cleared first). */
void serve_config_copy(struct serve_config *dst, const struct serve_config *src);
/* Read an INI file ([serve] section; see docs/serve.md). Returns 0, -ENOENT, -EINVAL (with a
 * log line naming the line), -errno. Keys it does not know are an error. */
int serve_config_load(struct serve_config *cfg, const char *path);
/* The config file to use when none is given: $XDG_CONFIG_HOME/okvm/okvm.conf or
 * ~/.config/okvm/okvm.conf if it exists, else /etc/okvm/okvm.conf if it exists, else NULL.
 * for_write: the per-user path even if it does not exist. Returns a malloc'd string. */
char *serve_config_default_path(bool for_write);
/* Set (or replace) one key of the [serve] section in the file, creating the file and its
 * folder (0700) if needed; the file ends up 0600. Returns 0 or -errno. */
int serve_config_set(const char *path, const char *key, const char *value);
/* The same for any section ("serve", "user.alice"); value NULL removes the key. */
int serve_config_set_in(const char *path, const char *section, const char *key, const char *value);

/* Is this ADDR:PORT well-formed (port 1..65535, IPv6 in brackets)? */
bool serve_listen_valid(const char *listen);
/* Is this listen address loopback-only (127.0.0.0/8, ::1, localhost)? */
bool serve_listen_is_loopback(const char *listen);

struct serve;
/* Takes ownership of the backend (destroyed by serve_free). cfg is copied. */
struct serve *serve_new(const struct serve_config *cfg, struct serve_backend *be);
/* Power and reset through /api/power (src/power/power.h): takes over pc's strings (pc is
 * cleared). Before serve_start. */
/* The unit's sound for {"type":"audio"} (ws-audio.c); without it audio requests fail. src is
 * copied; its ud must outlive the server. */
void serve_set_audio(struct serve *s, const struct serve_audio_source *src);
struct power_config;
void serve_set_power(struct serve *s, struct power_config *pc);
/* Virtual media through /api/media (media-route.c, docs/power.md): the stick in the unit's
 * switchable port. Strings are copied. Before serve_start. */
struct serve_media_config {
	bool emu;               /* the virtual unit: emu_file stands for the stick */
	const char *emu_file;   /* -d emu --emu-media FILE; NULL: no stick */
	const char *unit_chain; /* a real unit's port chain, for discovery (NULL: the first) */
};
void serve_set_media(struct serve *s, const struct serve_media_config *mc);
/* Create the context and listen. Returns 0, -EADDRINUSE, -EACCES (a password is required on a
 * non-loopback address, or a TLS file is unreadable), -ENOENT (no such TLS file), -EINVAL (a
 * TLS file is not PEM, or the key does not match the certificate), -EKEYREJECTED (OpenSSL's
 * security level refuses the key or certificate), -ELOOP (the self-signed key path is a
 * symlink), -EPROTO (lws could not set up TLS), -errno. A TLS failure and the missing password
 * are logged, one line each, before the return. */
int serve_start(struct serve *s);
/* Run the service loop on the calling thread until *stop becomes non-zero. Returns 0 or -errno. */
int serve_run(struct serve *s, volatile int *stop);
/* One pass of the service loop on the calling thread (as serve_run's, for callers with a loop
 * of their own): timeout_ms < 0 serves only what is ready and returns at once; otherwise lws
 * sleeps until its next event or timer (lws 4 ignores the value itself). Returns 0 or -EIO. */
int serve_service(struct serve *s, int timeout_ms);
/* Releases every key pressed through the server, closes all connections. NULL ok. */
void serve_free(struct serve *s);

/* Hash a password for the config file (argon2id, libsodium). out gets a malloc'd string. */
int serve_password_hash(const char *password, char **out);

#endif
