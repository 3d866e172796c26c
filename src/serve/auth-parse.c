/*
 * DESIGN: the header checks of auth-parse.h, on plain strings. Pure functions, any thread;
 * nothing is logged (the caller decides what a refusal means).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "serve/auth-parse.h"

static bool
name_allowed(const char *host, const char *const *names, unsigned n)
{
	static const char lh[] = "localhost";
	size_t len = strlen(host);
	if (!strcmp(host, lh) || (len > sizeof(lh) && !strcmp(host + len - sizeof(lh) + 1, lh) &&
				  host[len - sizeof(lh)] == '.'))
		return true;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return true; /* an IP literal cannot be rebound: it is its own origin */
	for (unsigned i = 0; i < n; i++)
		if (names[i] && !strcmp(host, names[i]))
			return true;
	return false;
}

bool
auth_host_allowed(const char *header, const char *const *names, unsigned n)
{
	char host[256];
	if (!header || !*header || strlen(header) >= sizeof(host))
		return false;
	snprintf(host, sizeof(host), "%s", header);
	char *h = host;
	if (*h == '[') { /* an IPv6 literal, with or without a port */
		char *close = strchr(h, ']');
		struct in6_addr a6;
		if (!close || (close[1] && (close[1] != ':' || !close[2] ||
					    strspn(close + 2, "0123456789") != strlen(close + 2))))
			return false;
		*close = 0;
		return inet_pton(AF_INET6, h + 1, &a6) == 1;
	}
	char *colon = strrchr(h, ':');
	if (colon) {
		if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return false;
		*colon = 0;
	}
	for (char *p = h; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	size_t len = strlen(h);
	if (len && h[len - 1] == '.')
		h[--len] = 0; /* "localhost." is localhost */
	return len && name_allowed(h, names, n);
}

bool
auth_each_session_cookie(const char *header, bool (*fn)(const char *token, void *ud), void *ud)
{
	static const char name[] = "okvm_session";
	if (!header)
		return false;
	for (const char *p = header; *p;) {
		p += strspn(p, " \t;");
		const char *end = p + strcspn(p, ";");
		const char *eq = memchr(p, '=', (size_t)(end - p));
		if (eq && (size_t)(eq - p) == sizeof(name) - 1 &&
		    !memcmp(p, name, sizeof(name) - 1)) {
			const char *v = eq + 1;
			size_t n = strcspn(v, " \t;");
			const char *after = v + n + strspn(v + n, " \t");
			if (n == AUTH_TOKEN_HEX && (after == end)) {
				char tok[AUTH_TOKEN_HEX + 1];
				memcpy(tok, v, AUTH_TOKEN_HEX);
				tok[AUTH_TOKEN_HEX] = 0;
				bool stop = fn(tok, ud);
				sodium_memzero(tok, sizeof(tok));
				if (stop)
					return true;
			}
		}
		p = end;
	}
	return false;
}

bool
auth_origin_matches(const char *origin, const char *host)
{
	if (!origin)
		return true; /* not a browser: curl, scripts */
	if (!host)
		return false;
	const char *o = strstr(origin, "://");
	return o && !strcasecmp(o + 3, host);
}

bool
auth_bearer_ok(const char *header, const char *want)
{
	if (!want || !header || strncasecmp(header, "Bearer ", 7))
		return false;
	const char *tok = header + 7;
	size_t n = strlen(want);
	return strlen(tok) == n && !sodium_memcmp(tok, want, n);
}
