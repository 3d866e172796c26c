/*
 * The request headers that decide who may do what, read as plain strings: Host (DNS
 * rebinding), Cookie (the session), Origin (cross-site requests), Authorization (the metrics
 * token). No libwebsockets types: auth.c hands the header text over, and tests call these alone.
 */
#ifndef OKVM_SERVE_AUTH_PARSE_H
#define OKVM_SERVE_AUTH_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TOKEN_HEX 64 /* a session token: 32 random bytes in hex */

/*
 * May a request with this Host header be served? A loopback name ("localhost", "*.localhost",
 * any case, a trailing dot allowed), an IP literal (IPv4, or IPv6 in brackets), or one of the
 * names[n] (lower case); an optional ":PORT" of digits. NULL or "" (no Host): false.
 */
bool auth_host_allowed(const char *host, const char *const *names, unsigned n);

/*
 * Call fn with each okvm_session cookie of a Cookie header, by exact name ("xokvm_session" is
 * another cookie) and only when its value is a whole token of AUTH_TOKEN_HEX characters. Every
 * one is tried, so a cookie planted by a sibling site cannot hide the real one; fn returns true
 * to stop. Returns whether fn stopped. header may be NULL.
 */
bool auth_each_session_cookie(const char *header, bool (*fn)(const char *token, void *ud),
			      void *ud);

/* Does Origin ("scheme://host[:port]") name the same host and port as Host? A request without
 * Origin (curl, scripts: origin NULL) passes. */
bool auth_origin_matches(const char *origin, const char *host);

/* Is the Authorization header "Bearer <want>" (constant-time compare)? want NULL: false. */
bool auth_bearer_ok(const char *header, const char *want);

#endif
