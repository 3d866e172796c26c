/*
 * DESIGN: the connection guard of okvm serve: who may hold a socket, and for how long, before
 * they have shown that they may use the KVM (docs/serve.md "Security").
 *
 * Every accepted socket gets an entry from the moment lws accepts it (FILTER_NETWORK_CONNECTION,
 * then WSI_CREATE) until lws destroys it (WSI_DESTROY), so even a client that never sends a byte
 * is seen. An entry is "proven" once one of its requests passed the login check (or, without a
 * password, once it sent a whole request). Unproven entries are what slowloris and connection
 * floods are made of, and they are bounded three ways:
 *   - per address group (an IPv4 address, or an IPv6 /64: one host gets a whole /64), at most
 *     max_unauth_per_addr; a new connection beyond that closes the group's oldest unproven one,
 *     so an attacker churns through his own sockets and a real user's new one gets in;
 *   - in total, at most max_clients: beyond that a new connection closes the oldest unproven one
 *     of any group, and only when every slot is proven is it refused;
 *   - in time: a request's headers and body must arrive within header_timeout of the connection.
 *     (Every answer ends its connection, http.c, so there is no idle keep-alive to bound.)
 * Proven connections (streams, WebSockets) are limited by the stall timeout only: a logged-in
 * user always gets in.
 *
 * A sweep every 500 ms closes entries past their deadline and ends sessions that expired
 * (auth.c). Runs on the service thread only.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "okvm/log.h"
#include "serve/internal.h"

#define SWEEP_US 500000
#define GRACE_US 1000000 /* a client gets this long to send a request before it counts */

/* serve_addr_group: sessions.c, which counts login failures by the same groups. */

static void
sockaddr_group(const struct sockaddr_storage *ss, char *out, size_t n)
{
	char txt[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, txt, sizeof(txt));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, txt,
			  sizeof(txt));
	else if (ss->ss_family == AF_UNIX)
		snprintf(txt, sizeof(txt), "unix");
	serve_addr_group(txt, out, n);
}

static struct netconn *
find_entry(struct serve *s, const struct lws *wsi)
{
	for (unsigned i = 0; i < s->nnet; i++)
		if (s->net[i].wsi == wsi)
			return &s->net[i];
	return NULL;
}

static void
kill_entry(struct netconn *e, const char *why)
{
	if (e->killed || !e->wsi)
		return;
	e->killed = true;
	okvm_log(OKVM_LOG_INFO, "serve: closing a connection from %s (%s)", e->group, why);
	lws_set_timeout(e->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
}

/*
 * The oldest live, unproven entry (of one group, or of any when group is NULL) that connected
 * before `before`; *count: all live unproven entries of the group.
 */
static struct netconn *
oldest_unproven(struct serve *s, const char *group, uint64_t before, unsigned *count)
{
	struct netconn *old = NULL;
	*count = 0;
	for (unsigned i = 0; i < s->nnet; i++) {
		struct netconn *e = &s->net[i];
		if (e->proven || e->killed || (group && strcmp(e->group, group)))
			continue;
		(*count)++;
		if (e->since_us < before && (!old || e->since_us < old->since_us))
			old = e;
	}
	return old;
}

/* A group over its limit loses its oldest unproven connections, once they had their grace. */
static void
enforce_group(struct serve *s, const char *group, uint64_t now)
{
	unsigned count;
	for (;;) {
		struct netconn *old = oldest_unproven(s, group, now - GRACE_US, &count);
		if (count <= (unsigned)s->cfg.max_unauth_per_addr || !old)
			return;
		kill_entry(old, "too many connections from one address that have not logged in");
	}
}

int
guard_accept(struct serve *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		ss.ss_family = AF_UNSPEC;
	if (s->net_pending >= 0) { /* the last accept never became a connection */
		s->net[s->net_pending] = s->net[--s->nnet];
		s->net_pending = -1;
	}
	char group[48];
	sockaddr_group(&ss, group, sizeof(group));
	uint64_t now = serve_now_us();
	unsigned count;
	if (s->nnet >= SERVE_MAX_NET || s->nnet >= (unsigned)s->cfg.max_clients) {
		struct netconn *old = oldest_unproven(s, NULL, now, &count);
		if (!old || s->nnet >= SERVE_MAX_NET) {
			okvm_log(OKVM_LOG_WARN, "serve: connection from %s refused: %u connections",
				 group, s->nnet);
			return 1;
		}
		kill_entry(old, "the server is full");
	}
	struct netconn *e = &s->net[s->nnet];
	memset(e, 0, sizeof(*e));
	snprintf(e->group, sizeof(e->group), "%s", group);
	e->since_us = now;
	e->deadline_us = now + (uint64_t)s->cfg.header_timeout_s * 1000000;
	s->net_pending = (int)s->nnet++;
	enforce_group(s, group, now);
	return 0;
}

void
guard_created(struct serve *s, struct lws *wsi)
{
	if (s->net_pending < 0)
		return; /* not an accepted socket (the listener, lws's own pipes) */
	s->net[s->net_pending].wsi = wsi;
	s->net_pending = -1;
	if (!s->sweep_on) {
		s->sweep_on = true;
		lws_sul_schedule(s->ctx, 0, &s->sweep, guard_sweep, SWEEP_US);
	}
}

void
guard_destroyed(struct serve *s, struct lws *wsi)
{
	struct netconn *e = find_entry(s, wsi);
	if (e)
		*e = s->net[--s->nnet];
}

void
guard_request(struct serve *s, struct lws *wsi, bool proven)
{
	struct netconn *e = find_entry(s, wsi);
	if (!e)
		return;
	e->proven |= proven;
	if (e->proven)
		e->deadline_us = 0;
}

void
guard_received(struct serve *s, struct lws *wsi)
{
	struct netconn *e = find_entry(s, wsi);
	if (e)
		e->deadline_us = 0; /* the whole request is in; the answer is ours to send */
}

void
guard_sweep(lws_sorted_usec_list_t *sul)
{
	struct serve *s = lws_container_of(sul, struct serve, sweep);
	uint64_t now = serve_now_us();
	for (unsigned i = 0; i < s->nnet; i++) {
		struct netconn *e = &s->net[i];
		if (e->deadline_us && now >= e->deadline_us)
			kill_entry(e, "request or idle deadline passed");
	}
	for (unsigned i = 0; i < s->nnet; i++)
		if (!s->net[i].proven && !s->net[i].killed)
			enforce_group(s, s->net[i].group, now);
	auth_expire(s);
	lws_sul_schedule(s->ctx, 0, &s->sweep, guard_sweep, SWEEP_US);
}
