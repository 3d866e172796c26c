/*
 * DESIGN: the CH9329 link's in-flight side: pacing, ACKs and dispatch.
 *
 * The CH9329 is master/slave: the host sends a frame and the chip answers within 500 ms
 * (CH9329-P section II), in order. HID reports (0x02..0x06) are pipelined: one more may be
 * written while an earlier one waits for its ACK (a window of LINK_WINDOW = 2, 1 with
 * no_pipeline), but only once the earlier frame's bytes are on the wire at the current baud, so
 * the chip sees them back-to-back at most; at 9600 baud this hides the ACK's 7.3 ms of wire time
 * and the chip's turnaround. Other commands and GET_INFO polls are strict: they wait until
 * nothing is in flight, and nothing follows them until their reply. Replies match the in-flight
 * FIFO oldest first; a reply to a later frame means the earlier ones lost theirs. A frame whose
 * deadline passes is dropped (parser reset, counted); the link goes on and never hangs. HID
 * reports also keep a minimum gap between them, send to send (report_gap_ms, default
 * OKVM_LINK_DEFAULT_GAP_MS), because the chip forwards each report to a USB endpoint that the
 * target polls; a report overwritten before the poll is lost.
 *
 * Threads: everything here runs on the dispatch thread, the one that calls okvm_link_dispatch()
 * and the blocking commands; it owns struct okvm_link outside q: what is on the wire (the
 * in-flight FIFO and its window), ACK matching, the parser and resync, the ACK deadlines and the
 * minimum gap on one timerfd, the GET_INFO poll, the state and the stats. What is to be sent
 * next, and in which order (release-all first, keyboard, media, mouse changes, coalesced
 * motion), is the queue's (link-queue.c): other threads enqueue there under its mutex and kick
 * its eventfd, and this side takes frames out with queue_pop_next() and gives each HID frame
 * back with queue_hid_done() when it is answered or lost. The serial fd, the timerfd and the
 * queue's eventfd sit in one epoll fd (okvm_link_fd). Idle: GET_INFO every info_poll_ms, and a
 * listener hears about changes. Time comes from a clock function tests can replace. Commands
 * (baud, reset, factory reset) live in link-ops.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/hid/link-private.h"
#include "okvm/log.h"
#include "lib/xalloc.h"

#define NS_PER_MS 1000000ull
#define LOCK_REFRESH_MS 50
#define NOACK_AFTER 3             /* unanswered HID reports (none ever ACKed) that mean "no ACKs" */
#define QUIET_POLL_MS 30000       /* GET_INFO never answered: ask this seldom ... */
#define QUIET_POLL_TIMEOUT_MS 100 /* ... and wait this long (an exchange is 21 ms at 9600) */
#define LINK_FLIP_TRIES 8         /* reports without a DATAFLIP toggle that mean "none wired" */
#define FLIP_RECHECK_NS 250000ull /* a real port wakes nobody on CTS: look this often */
#define FLIP_WINDOW 32            /* toggle latencies per poll-interval estimate */
#define HID_MIN_FRAME 10          /* bytes of the shortest HID report frame (media) */

static uint64_t
mono_ns(void *ud)
{
	(void)ud;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
link_now(struct okvm_link *l)
{
	return l->now_fn(l->now_ud);
}

void
link_set_clock(struct okvm_link *l, link_clock_fn fn, void *ud)
{
	l->now_fn = fn ? fn : mono_ns;
	l->now_ud = ud;
}

void
link_set_timing(struct okvm_link *l, const struct link_timing *t)
{
	l->timing = *t;
}

void
link_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- life cycle ---- */

static int
make_fds(struct okvm_link *l)
{
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->epfd < 0 || l->tfd < 0)
		return -errno;
	int rc = queue_init(&l->q);
	if (rc < 0)
		return rc;
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.fd = l->tfd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev) < 0)
		return -errno;
	ev.data.fd = queue_fd(&l->q);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0)
		return -errno;
	return 0;
}


struct okvm_link *
okvm_link_new(const struct okvm_link_config *cfg)
{
	struct okvm_link *l = xcalloc(1, sizeof(*l));
	l->path = xstrdup_or_null(cfg->path);
	l->modem_socket = xstrdup_or_null(cfg->modem_socket);
	l->cfg_baud = cfg->baud;
	int gap = cfg->report_gap_ms > 0 ? cfg->report_gap_ms
		  : cfg->no_gap          ? 0
					 : OKVM_LINK_DEFAULT_GAP_MS;
	l->gap_ns = (uint64_t)gap * NS_PER_MS;
	l->ack_timeout_ms = cfg->ack_timeout_ms > 0 ? cfg->ack_timeout_ms
						    : OKVM_LINK_DEFAULT_ACK_TIMEOUT_MS;
	l->poll_ms = cfg->info_poll_ms > 0 ? cfg->info_poll_ms : 0;
	l->window = cfg->no_pipeline ? 1 : LINK_WINDOW;
	l->lines_only = cfg->lines_only;
	l->timing = (struct link_timing){ .rts_hold_ms = 4000,
					  .rts_settle_ms = 500,
					  .verify_attempts = 4 };
	l->now_fn = mono_ns;
	pthread_mutex_init(&l->mu, NULL);
	okvm_ch9329_parser_init(&l->parser);
	l->epfd = l->tfd = l->q.efd = l->cts_fd = -1;
	if (make_fds(l) < 0)
		abort(); /* only EMFILE/ENOMEM: as out of memory */
	return l;
}

int
link_attach(struct okvm_link *l, struct okvm_serial *s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.fd = okvm_serial_fd(s);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0)
		return -errno;
	l->ser = s;
	atomic_store(&l->dead, false);
	/* DATAFLIP: can this port show CTS? Each open starts again (another port, a replug). */
	uint64_t c;
	l->flip_capable = !l->lines_only && okvm_serial_cts_count(s, &c) == 0;
	l->flip = l->flip_capable ? FLIP_UNKNOWN : FLIP_OFF;
	l->flips = l->flip_capable ? c : 0;
	l->flip_wait = l->flip_suspect = l->flip_ahead = false;
	l->flip_tries = 0;
	l->flip_poll_ns = 0;
	l->cts_fd = l->flip_capable ? okvm_serial_cts_fd(s) : -1;
	if (l->cts_fd >= 0) {
		ev.data.fd = l->cts_fd;
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->cts_fd, &ev) < 0)
			l->cts_fd = -1; /* then it is looked at on the timer, as on a real port */
	}
	return 0;
}

void
link_detach(struct okvm_link *l)
{
	if (!l->ser)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, okvm_serial_fd(l->ser), NULL);
	if (l->cts_fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->cts_fd, NULL);
	l->cts_fd = -1;
	okvm_serial_close(l->ser);
	l->ser = NULL;
}

int
okvm_link_fd(struct okvm_link *l)
{
	return l->epfd;
}

void
okvm_link_set_listener(struct okvm_link *l, okvm_link_listener fn, void *ud)
{
	l->listener = fn;
	l->listener_ud = ud;
}

void
link_update_state(struct okvm_link *l, const struct okvm_link_state *st)
{
	if (!memcmp(st, &l->state, sizeof(*st)))
		return;
	l->state = *st;
	if (l->listener)
		l->listener(&l->state, l->listener_ud);
}

void
okvm_link_get_state(struct okvm_link *l, struct okvm_link_state *out)
{
	*out = l->state;
}

void
okvm_link_get_stats(struct okvm_link *l, struct okvm_link_stats *out)
{
	pthread_mutex_lock(&l->mu); /* a direct write counts reports_sent */
	*out = l->st;
	out->garbage_bytes = l->parser.garbage_bytes;
	pthread_mutex_unlock(&l->mu);
	out->coalesced = queue_coalesced(&l->q);
}

void
link_hold(struct okvm_link *l)
{
	pthread_mutex_lock(&l->mu);
	l->hold++;
	pthread_mutex_unlock(&l->mu);
}

void
link_unhold(struct okvm_link *l)
{
	pthread_mutex_lock(&l->mu);
	l->hold--;
	pthread_mutex_unlock(&l->mu);
}

/* ---- sending and receiving (dispatch thread) ---- */

/* How long n bytes take on the wire at the port's baud (8N1: 10 bits a byte). */
static uint64_t
wire_ns(struct okvm_link *l, size_t n)
{
	int baud = okvm_serial_baud(l->ser);
	if (baud <= 0)
		baud = 9600; /* unknown: the slowest the apps use */
	return (uint64_t)n * 10u * 1000000000ull / (uint64_t)baud;
}

/* Write f and append it to the in-flight FIFO (the caller checked there is room). */
static int
send_frame(struct okvm_link *l, const struct okvm_ch9329_frame *f, enum fl_kind kind,
	   int timeout_ms)
{
	uint8_t buf[OKVM_CH9329_MAX_FRAME];
	size_t n = okvm_ch9329_encode(f, buf, sizeof(buf));
	uint64_t now = link_now(l);
	ssize_t w = okvm_serial_write(l->ser, buf, n);
	if (w < 0) {
		if (w == -ENODEV)
			atomic_store(&l->dead, true);
		okvm_log(OKVM_LOG_WARN, "%s: writing %s: %s", l->path, okvm_ch9329_cmd_name(f->cmd),
			 strerror((int)-w));
		return (int)w;
	}
	l->last_wire_end_ns = now + wire_ns(l, n);
	if (f->cmd >= OKVM_CH9329_CMD_SEND_KB_GENERAL && f->cmd <= OKVM_CH9329_CMD_SEND_MY_HID) {
		/* a report, also the open's keyboard all-up probe: the next one keeps the gap, or
		   the target's poll would miss this one */
		l->last_report_ns = now;
		l->gap_started = true;
		uint64_t c;
		if (l->flip != FLIP_OFF && okvm_serial_cts_count(l->ser, &c) == 0) {
			if (l->flip == FLIP_ON && l->flip_wait) {
				/* gone ahead (flip_early_ns): the one before is still in the chip
				   and its toggle comes first; the count keeps waiting for it */
				l->flip_ahead = true;
				l->flip_prev_wire_end_ns = l->flip_wire_end_ns;
				l->st.flip_ahead++;
			} else {
				l->flips = c; /* toggles before this write are not its */
				l->flip_ahead = false;
			}
			l->flip_wait = true; /* the target has it once CTS toggles */
			l->flip_wire_end_ns = now + wire_ns(l, n);
		}
	}
	if (kind == FL_HID && l->no_ack) {
		/* nothing will answer: not in flight, the gaps alone pace it */
		l->st.reports_sent++;
		l->st.unpaced++;
		l->last_report_ns = now;
		l->any_report = true;
		queue_hid_done(&l->q);
		return 0;
	}
	l->fl[l->nfl++] = (struct inflight){ .kind = kind,
					     .cmd = f->cmd,
					     .sent_ns = now,
					     .deadline_ns = now + (uint64_t)timeout_ms * NS_PER_MS,
					     .wire_end_ns = now + wire_ns(l, n) };
	if (kind == FL_HID) {
		l->st.reports_sent++;
		l->last_report_ns = now;
		l->any_report = true;
	}
	return 0;
}

static void
set_chip_ok(struct okvm_link *l, bool ok)
{
	struct okvm_link_state st = l->state;
	st.chip_ok = ok;
	link_update_state(l, &st);
}

static void
finish_poll(struct okvm_link *l, const struct okvm_ch9329_frame *f)
{
	struct okvm_ch9329_info info;
	if (okvm_ch9329_parse_info(f, &info) < 0)
		return;
	struct okvm_link_state st = l->state;
	if (st.info_unknown)
		okvm_log(OKVM_LOG_INFO, "%s: the chip answers GET_INFO now", l->path);
	st.version = info.version;
	st.target_connected = info.target_connected;
	st.leds = info.leds;
	st.chip_ok = true;
	st.info_unknown = false;
	link_update_state(l, &st);
}

/* A HID report got no reply. While none was ever acknowledged, NOACK_AFTER in a row mean this
 * chip does not ACK HID reports (unknown for a CH32V208): stop waiting for ACKs. */
static void
hid_unanswered(struct okvm_link *l)
{
	if (l->no_ack)
		return; /* sent before we knew: not a failure either */
	l->st.report_timeouts++;
	if (l->hid_acked || ++l->noack_run < NOACK_AFTER)
		return;
	l->no_ack = true;
	l->st.report_timeouts = 0; /* not failures: this chip never answers them */
	okvm_log(OKVM_LOG_WARN,
		 "%s: the chip does not acknowledge HID reports; sending them without waiting for "
		 "ACKs, %d ms apart",
		 l->path, (int)(l->gap_ns / NS_PER_MS));
}

/* Take the oldest in-flight frame off the FIFO. */
static struct inflight
pop_inflight(struct okvm_link *l)
{
	struct inflight x = l->fl[0];
	l->nfl--;
	memmove(&l->fl[0], &l->fl[1], l->nfl * sizeof(l->fl[0]));
	return x;
}

static void
complete(struct okvm_link *l, const struct inflight *fl, const struct okvm_ch9329_frame *f)
{
	uint64_t now = link_now(l);
	double ms = (double)(now - fl->sent_ns) / 1e6;
	l->st.ack_ms_last = ms;
	if (ms > l->st.ack_ms_max)
		l->st.ack_ms_max = ms;
	uint8_t status = okvm_ch9329_reply_status(f);
	if (status) {
		l->st.chip_errors++;
		if (fl->kind == FL_HID)
			l->st.report_errors++;
		/* once per change of error, not per report (a flood would bury the cause) */
		if (status != l->last_status || fl->cmd != l->last_status_cmd)
			okvm_log(OKVM_LOG_WARN, "%s: the CH9329 rejected %s: %s (0x%02X)", l->path,
				 okvm_ch9329_cmd_name(fl->cmd), okvm_ch9329_status_name(status),
				 status);
		l->last_status_cmd = fl->cmd;
	}
	l->last_status = status;
	if (fl->kind == FL_HID) {
		l->st.acks++;
		l->hid_acked = true;
		l->noack_run = 0;
		queue_hid_done(&l->q);
	} else if (fl->kind == FL_POLL && !status) {
		finish_poll(l, f);
	} else if (fl->kind == FL_CMD) {
		l->cmd.reply = *f;
		l->cmd.rc = status ? -EPROTO : 0;
		l->cmd.phase = CMD_DONE;
	}
	if (!l->nfl)
		l->last_wire_end_ns = 0; /* the chip answered the newest frame: its packet ended */
	if (!l->state.chip_ok)
		okvm_log(OKVM_LOG_INFO, "%s: the CH9329 answers again", l->path);
	set_chip_ok(l, true);
}

/* A frame that will get no reply: free its slot (a command learns rc). */
static void
fail_inflight(struct okvm_link *l, const struct inflight *x, int rc)
{
	if (x->kind == FL_HID) {
		queue_hid_done(&l->q);
	} else if (x->kind == FL_CMD) {
		l->cmd.rc = rc;
		l->cmd.phase = CMD_DONE;
	}
}

/* A later frame was answered first: this one's reply was lost (garbled on the wire, or the
 * chip dropped the frame). Counted as a timeout; no resync, the parser just found a frame. */
static void
lost_reply(struct okvm_link *l, const struct inflight *x)
{
	l->st.timeouts++;
	if (x->kind == FL_HID)
		hid_unanswered(l);
	okvm_log(OKVM_LOG_INFO, "%s: no reply to %s; the CH9329 answered the next frame", l->path,
		 okvm_ch9329_cmd_name(x->cmd));
	fail_inflight(l, x, -ETIMEDOUT);
}

static void
handle_frame(struct okvm_link *l, const struct okvm_ch9329_frame *f)
{
	if (f->cmd == (OKVM_CH9329_CMD_READ_MY_HID | OKVM_CH9329_REPLY_OK)) {
		l->st.unsolicited++; /* custom-HID data from the target: not used */
		return;
	}
	for (size_t i = 0; i < l->nfl; i++) {
		if (!okvm_ch9329_is_reply_to(f, l->fl[i].cmd))
			continue;
		/* the chip answers in order: the frames before this one lost their replies */
		while (i--) {
			struct inflight x = pop_inflight(l);
			lost_reply(l, &x);
		}
		struct inflight x = pop_inflight(l);
		complete(l, &x, f);
		return;
	}
	l->st.unsolicited++;
	if (l->no_ack && f->cmd >= (OKVM_CH9329_CMD_SEND_KB_GENERAL | OKVM_CH9329_REPLY_OK) &&
	    f->cmd <= (OKVM_CH9329_CMD_SEND_MY_HID | OKVM_CH9329_REPLY_OK)) {
		l->no_ack = false;
		l->hid_acked = true;
		okvm_log(OKVM_LOG_INFO, "%s: the chip acknowledges HID reports after all", l->path);
	}
	okvm_log(OKVM_LOG_DEBUG, "%s: ignoring %s (0x%02X), nothing waits for it", l->path,
		 okvm_ch9329_cmd_name(f->cmd), f->cmd);
}

static void
drain_parser(struct okvm_link *l)
{
	struct okvm_ch9329_frame f;
	int rc;
	while ((rc = okvm_ch9329_parser_next(&l->parser, &f)) != 0) {
		if (rc > 0)
			handle_frame(l, &f);
		else
			l->st.resyncs++;
	}
}

static int
read_port(struct okvm_link *l)
{
	uint8_t buf[256];
	for (;;) {
		ssize_t r = okvm_serial_read(l->ser, buf, sizeof(buf));
		if (r <= 0)
			return (int)r;
		size_t off = 0;
		while (off < (size_t)r) {
			off += okvm_ch9329_parser_push(&l->parser, buf + off, (size_t)r - off);
			drain_parser(l);
		}
	}
}

/* The oldest frame's deadline passed: resync, count, and go on (the next keeps its own). */
static void
check_timeout(struct okvm_link *l, uint64_t now)
{
	while (l->nfl && now >= l->fl[0].deadline_ns) {
		struct inflight x = pop_inflight(l);
		l->st.timeouts++;
		l->st.resyncs++;
		okvm_ch9329_parser_reset(&l->parser);
		if (x.kind == FL_POLL && l->state.info_unknown)
			continue; /* expected: this chip ignores GET_INFO; it is not "gone" */
		if (x.kind == FL_HID)
			hid_unanswered(l);
		if (l->state.chip_ok || x.kind == FL_CMD)
			okvm_log(x.kind == FL_HID ? OKVM_LOG_WARN : OKVM_LOG_INFO,
				 "%s: no reply to %s within %d ms; resynchronising", l->path,
				 okvm_ch9329_cmd_name(x.cmd),
				 (int)((x.deadline_ns - x.sent_ns) / NS_PER_MS));
		fail_inflight(l, &x, -ETIMEDOUT);
		set_chip_ok(l, false);
	}
}

/* The chip ends a packet after 3 ms of idle line: keep that between frames on the wire. */
static uint64_t
idle_end_ns(const struct okvm_link *l)
{
	return l->last_wire_end_ns ? l->last_wire_end_ns + OKVM_LINK_FRAME_IDLE_US * 1000ull : 0;
}

/*
 * DATAFLIP: new CTS changes mean the target took the report in the chip. Then the next one
 * may go at once (the chip also ended that packet: no idle line to keep), and the time it took
 * feeds the estimate of the target's poll interval. While none has been seen (UNKNOWN), a
 * report that the gap passed without a toggle counts towards "not wired" (OFF).
 */
/* How long a report in the chip is waited for before the next goes anyway: the gap plus the
 * packet's idle end, counted from when the chip has the report whole (at 9600 its wire time
 * alone is longer than the gap; a chip that cuts packets by 3 ms of idle uploads that much
 * later). */
static uint64_t
flip_deadline(const struct okvm_link *l)
{
	return l->flip_wire_end_ns + l->gap_ns + OKVM_LINK_FRAME_IDLE_US * 1000ull;
}

static void flip_sample(struct okvm_link *l, uint64_t lat);

static void
update_flips(struct okvm_link *l, uint64_t now)
{
	uint64_t c;
	/* A real port is only asked while a report waits (send_frame() takes the count then); the
	 * virtual unit's datagrams are read whenever they come, or its fd stays readable. */
	if (l->flip == FLIP_OFF || (!l->flip_wait && l->cts_fd < 0) ||
	    okvm_serial_cts_count(l->ser, &c) < 0)
		return;
	if (c == l->flips) {
		if (l->flip_wait && now >= flip_deadline(l)) {
			l->flip_wait = false; /* given up on this one: the gap paces the next */
			l->flip_ahead = false;
			l->flip_suspect = true;
			if (l->flip == FLIP_ON) {
				l->st.flip_misses++;
			} else if (++l->flip_tries >= LINK_FLIP_TRIES) {
				l->flip = FLIP_OFF;
				l->st.flip_absent = true;
				okvm_log(OKVM_LOG_DEBUG,
					 "%s: CTS never toggled after a report (no DATAFLIP line): "
					 "pacing by the %d ms gap",
					 l->path, (int)(l->gap_ns / NS_PER_MS));
			}
		}
		return;
	}
	if (l->flip_wait && l->flip_ahead) {
		/* the first toggle is the older report's; the newer one waits on, and the idle line
		 * after it stays owed (it may still be on the wire) */
		l->flip_ahead = false;
		l->flips++;
		l->st.flips++;
		flip_sample(l, now > l->flip_prev_wire_end_ns ? now - l->flip_prev_wire_end_ns : 0);
		if (c == l->flips)
			return;
	}
	l->flips = c;
	if (!l->flip_wait)
		return; /* a toggle for a report already given up on */
	l->flip_wait = false;
	l->st.flips++;
	/* The target has it, so the chip ended that packet: no idle line is owed before the next
	 * frame. Unless a report was given up on since: this toggle may be that one's, late, while
	 * the chip still reads this packet; then the idle line stays until the ACK. */
	if (l->flip_suspect)
		l->flip_suspect = false;
	else
		l->last_wire_end_ns = 0;
	flip_sample(l, now > l->flip_wire_end_ns ? now - l->flip_wire_end_ns : 0);
	if (l->flip == FLIP_UNKNOWN) {
		l->flip = FLIP_ON;
		l->st.flip_pacing = true;
		okvm_log(OKVM_LOG_INFO,
			 "%s: the chip's DATAFLIP line shows each report the target takes: pacing "
			 "by it",
			 l->path);
	}
}

/* One report -> toggle time. The target polls on a fixed schedule, so these spread evenly over
 * one poll interval. Of n samples the second longest, m2, estimates it as m2 * (n + 1) / (n - 1):
 * one sample stretched by a late wake-up of this thread (a loaded machine) does not count. */
static void
flip_sample(struct okvm_link *l, uint64_t lat)
{
	if (l->flip_lat_n >= FLIP_WINDOW) {
		/* a whole window: its estimate bounds the going ahead (flip_early_ns) */
		l->flip_poll_ns = l->flip_lat_2nd_ns * (FLIP_WINDOW + 1) / (FLIP_WINDOW - 1);
		l->flip_lat_max_ns = l->flip_lat_2nd_ns = 0;
		l->flip_lat_n = 0;
	}
	if (lat > l->flip_lat_max_ns) {
		l->flip_lat_2nd_ns = l->flip_lat_max_ns;
		l->flip_lat_max_ns = lat;
	} else if (lat > l->flip_lat_2nd_ns) {
		l->flip_lat_2nd_ns = lat;
	}
	unsigned n = ++l->flip_lat_n;
	if (n >= 4)
		l->st.target_poll_ms = (double)l->flip_lat_2nd_ns * (n + 1) / (n - 1) / 1e6;
	else if (!l->st.target_poll_ms)
		l->st.target_poll_ms = (double)l->flip_lat_max_ns * (n + 1) / n / 1e6;
}

/*
 * DATAFLIP on and the last report not yet taken: when the next may go anyway. Waiting for each
 * toggle costs the wire time plus up to one poll per report; where the wire time is long (9600
 * baud) that is slower than the fixed gap, which sends the next frame while the last one waits
 * for the poll. So the next one may go ahead once (a) the gap passed, as the fixed gap would send
 * it (what the gap alone makes safe, this makes safe), and (b) its bytes cannot be whole in the
 * chip before the target's poll took the last one: wire end of the last + the poll interval x
 * 17/16 + 1 ms, minus the shortest frame's wire time (a target that polls slower than the gap
 * keeps its reports; at a 10 ms poll that is 11.6 ms, within the gap, so this goes no later than
 * the gap would). The poll interval is the estimate of the last whole window of FLIP_WINDOW
 * toggles (second longest x 33/31: under 0.9 polls 3 % of the time, and one late wake-up of this
 * thread does not count); before the first window none goes ahead (with the gap as the bound a
 * 16 ms target lost reports: bench/typing.py).
 * The idle line after the last frame (pump) and the window still hold; one report at most goes
 * ahead of one that was not seen taken (flip_ahead).
 */
static uint64_t
flip_early_ns(struct okvm_link *l)
{
	if (!l->flip_poll_ns)
		return UINT64_MAX; /* the poll is not known yet: it may be slower than the gap */
	uint64_t w = wire_ns(l, HID_MIN_FRAME);
	if (w * 2 < l->flip_poll_ns)
		return UINT64_MAX; /* short frames (115200): the toggle comes first unless a wake-up
				      was late, and going ahead then gains nothing but a race */
	uint64_t poll = l->flip_poll_ns + l->flip_poll_ns / 16 + NS_PER_MS;
	uint64_t safe = l->flip_wire_end_ns + poll;
	safe = safe > w ? safe - w : 0;
	uint64_t gap = l->last_report_ns + l->gap_ns;
	return safe > gap ? safe : gap;
}

static bool
gap_ready(struct okvm_link *l, uint64_t now)
{
	if (!l->gap_started)
		return true;
	if (l->flip == FLIP_ON && !l->flip_wait)
		return true; /* the target took the last report: nothing to overwrite */
	if (l->flip == FLIP_ON && l->flip_wait && !l->flip_ahead && now >= flip_early_ns(l))
		return true; /* it cannot overwrite the last one (flip_early_ns) */
	if (l->flip != FLIP_OFF && l->flip_wait)
		return now >= flip_deadline(l); /* one report in the chip at a time, while known */
	return now >= l->last_report_ns + l->gap_ns;
}

/*
 * Room for one more HID frame: nothing in flight, or (pipelining) only HID frames, fewer than
 * the window, and the newest one's bytes already on the wire.
 */
static bool
window_open(struct okvm_link *l, uint64_t now)
{
	if (!l->nfl)
		return true;
	return l->fl[0].kind == FL_HID && l->nfl < (size_t)l->window &&
	       now >= l->fl[l->nfl - 1].wire_end_ns;
}

/* Write the next queued HID frame (the caller checked the window, idle line and gap).
 * @return 0 sent, 1 nothing queued, or the write's -errno (the frame is dropped). */
static int
send_next_hid(struct okvm_link *l, uint64_t now)
{
	struct okvm_ch9329_frame f;
	bool lock_key = false;
	if (!queue_pop_next(&l->q, &f, &lock_key))
		return 1;
	int rc = send_frame(l, &f, FL_HID, l->ack_timeout_ms);
	if (lock_key && l->poll_ms) {
		/* the LEDs change: ask soon, as the official app does (hardware.md 2.10) */
		uint64_t soon = now + LOCK_REFRESH_MS * NS_PER_MS;
		if (soon < l->next_poll_ns)
			l->next_poll_ns = soon;
	}
	if (rc < 0)
		queue_hid_done(&l->q);
	return rc;
}

/* Send the next frame if the link has room for it. */
static int
pump(struct okvm_link *l, uint64_t now)
{
	if (!l->ser || !window_open(l, now) || now < idle_end_ns(l))
		return 0;
	if (l->cmd.phase == CMD_QUEUED) {
		if (l->nfl)
			return 0; /* commands wait until the window is empty */
		l->cmd.phase = CMD_SENT;
		int rc = send_frame(l, &l->cmd.req, FL_CMD, l->cmd.timeout_ms);
		if (rc < 0) {
			l->cmd.rc = rc;
			l->cmd.phase = CMD_DONE;
		}
		return rc == -ENODEV ? rc : 0;
	}
	if (l->suspended)
		return 0;
	int rc = gap_ready(l, now) ? send_next_hid(l, now) : 1;
	if (rc <= 0)
		return rc == -ENODEV ? rc : 0;
	struct okvm_ch9329_frame f;
	if (!l->nfl && l->poll_ms && now >= l->next_poll_ns && !okvm_link_pending(l)) {
		okvm_ch9329_build_simple(&f, OKVM_CH9329_CMD_GET_INFO);
		/* a chip that ignores GET_INFO: seldom and briefly, so input is not held up */
		bool quiet = l->state.info_unknown;
		int every = quiet && l->poll_ms < QUIET_POLL_MS ? QUIET_POLL_MS : l->poll_ms;
		l->next_poll_ns = now + (uint64_t)every * NS_PER_MS;
		rc = send_frame(l, &f, FL_POLL, quiet ? QUIET_POLL_TIMEOUT_MS : l->ack_timeout_ms);
		return rc == -ENODEV ? rc : 0;
	}
	return 0;
}

/* When pump can next send something without an ACK or a timeout first; UINT64_MAX: never. */
static uint64_t
next_send_ns(struct okvm_link *l, uint64_t now)
{
	uint64_t idle = idle_end_ns(l);
	if (l->ser && l->cmd.phase == CMD_QUEUED && !l->nfl)
		return idle > now ? idle : UINT64_MAX; /* only the idle line holds it back */
	if (!l->ser || l->suspended || l->cmd.phase == CMD_QUEUED)
		return UINT64_MAX; /* a queued command goes once a reply or timeout empties the link */
	if (l->nfl && (l->fl[0].kind != FL_HID || l->nfl >= (size_t)l->window))
		return UINT64_MAX;
	if (!queue_queued(&l->q)) {
		if (l->nfl || !l->poll_ms)
			return UINT64_MAX;
		return l->next_poll_ns > idle ? l->next_poll_ns : idle;
	}
	uint64_t t = l->gap_started ? l->last_report_ns + l->gap_ns : 0;
	if (l->flip == FLIP_ON && !l->flip_wait) {
		t = 0; /* the target took the last report */
	} else if (l->flip != FLIP_OFF && l->flip_wait) {
		t = flip_deadline(l); /* as gap_ready() waits */
		if (l->flip == FLIP_ON && !l->flip_ahead && flip_early_ns(l) < t)
			t = flip_early_ns(l);
		if (l->cts_fd < 0 && now + FLIP_RECHECK_NS < t)
			t = now + FLIP_RECHECK_NS; /* a real port: look at CTS again soon */
	}
	if (l->nfl && l->fl[l->nfl - 1].wire_end_ns > t)
		t = l->fl[l->nfl - 1].wire_end_ns;
	if (idle > t)
		t = idle;
	return t > now ? t : UINT64_MAX; /* due already: pump just sent what it could */
}

void
link_arm_timer(struct okvm_link *l, uint64_t now)
{
	uint64_t due = next_send_ns(l, now);
	for (size_t i = 0; i < l->nfl; i++)
		if (l->fl[i].deadline_ns < due)
			due = l->fl[i].deadline_ns;
	struct itimerspec its = { 0 };
	if (due != UINT64_MAX) {
		uint64_t rel = due > now ? due - now : 1;
		its.it_value.tv_sec = (time_t)(rel / 1000000000ull);
		its.it_value.tv_nsec = (long)(rel % 1000000000ull);
	}
	timerfd_settime(l->tfd, 0, &its, NULL);
}

static void
drain_fd(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) > 0)
		;
}

/*
 * The direct write (any thread, after an enqueue). Waking the dispatch thread costs a scheduler
 * wake-up, which on a loaded machine is most of the key -> serial byte time; so when the link is
 * idle the enqueuing thread writes the report itself. Only an idle link qualifies: nothing in
 * flight (no ACK to read first, no window to judge), no command queued or blocking helper
 * running (hold), not suspended, the idle line and the gap (or DATAFLIP) passed. The frame comes
 * off the queue by the same priorities as pump's, under mu, so frames leave in the queue's
 * order whoever writes them. What it leaves (the in-flight frame, its deadline, the gap) is the
 * dispatch thread's from here: the timerfd is armed for it and the ACK wakes it. Nothing here
 * calls the listener. trylock: a running dispatch will take the frame itself (the caller kicks),
 * and a listener that enqueues from inside dispatch cannot deadlock.
 */
bool
link_try_direct(struct okvm_link *l)
{
	if (pthread_mutex_trylock(&l->mu) != 0)
		return false;
	bool sent = false;
	if (!l->hold && l->ser && !atomic_load(&l->dead) && !l->suspended &&
	    l->cmd.phase == CMD_IDLE && !l->nfl) {
		uint64_t now = link_now(l);
		update_flips(l, now); /* a toggle not yet dispatched lifts the wait as in pump */
		if (now >= idle_end_ns(l) && gap_ready(l, now)) {
			sent = send_next_hid(l, now) == 0;
			if (sent) {
				l->st.direct++;
				link_arm_timer(l, now);
			}
		}
	}
	pthread_mutex_unlock(&l->mu);
	return sent;
}

static int dispatch_locked(struct okvm_link *l);

int
okvm_link_dispatch(struct okvm_link *l)
{
	pthread_mutex_lock(&l->mu);
	int rc = dispatch_locked(l);
	pthread_mutex_unlock(&l->mu);
	return rc;
}

static int
dispatch_locked(struct okvm_link *l)
{
	if (atomic_load(&l->dead))
		return -ENODEV;
	queue_drain_kicks(&l->q);
	drain_fd(l->tfd);
	int rc = 0;
	if (l->ser)
		rc = read_port(l);
	uint64_t now = link_now(l);
	if (rc == 0) {
		check_timeout(l, now);
		if (l->ser)
			update_flips(l, now);
		rc = pump(l, now);
	}
	if (rc == -ENODEV) {
		atomic_store(&l->dead, true);
		okvm_log(OKVM_LOG_ERROR, "%s: the serial port vanished (unplugged?)", l->path);
		if (l->cmd.phase == CMD_SENT || l->cmd.phase == CMD_QUEUED) {
			l->cmd.rc = -ENODEV;
			l->cmd.phase = CMD_DONE;
		}
		return -ENODEV;
	}
	link_arm_timer(l, now);
	return 0;
}

/* ---- blocking helpers (dispatch thread) ---- */

static int
wait_fd(struct okvm_link *l, uint64_t deadline)
{
	uint64_t now = link_now(l);
	if (now >= deadline)
		return -ETIMEDOUT;
	uint64_t ms = (deadline - now + NS_PER_MS - 1) / NS_PER_MS;
	struct pollfd pfd = { .fd = l->epfd, .events = POLLIN };
	poll(&pfd, 1, ms > 100 ? 100 : (int)ms);
	return 0;
}

int
link_wait_cmd(struct okvm_link *l, int timeout_ms)
{
	uint64_t deadline = link_now(l) + (uint64_t)timeout_ms * NS_PER_MS;
	for (;;) {
		int rc = okvm_link_dispatch(l);
		if (l->cmd.phase == CMD_DONE || rc < 0)
			break;
		if (wait_fd(l, deadline) < 0) {
			l->cmd.rc = -ETIMEDOUT;
			break;
		}
	}
	int rc = l->cmd.phase == CMD_DONE ? l->cmd.rc : atomic_load(&l->dead) ? -ENODEV : l->cmd.rc;
	if (l->cmd.phase == CMD_QUEUED)
		l->cmd.phase = CMD_IDLE; /* never sent */
	else if (l->cmd.phase == CMD_DONE)
		l->cmd.phase = CMD_IDLE;
	/* CMD_SENT stays until its reply or timeout frees the link */
	return rc;
}

static int command_held(struct okvm_link *l, const struct okvm_ch9329_frame *req,
			struct okvm_ch9329_frame *reply, int timeout_ms);

int
okvm_link_command(struct okvm_link *l, const struct okvm_ch9329_frame *req,
		  struct okvm_ch9329_frame *reply, int timeout_ms)
{
	if (!l->ser)
		return -ENOTCONN;
	if (atomic_load(&l->dead))
		return -ENODEV;
	if (timeout_ms <= 0)
		timeout_ms = l->ack_timeout_ms;
	link_hold(l);
	int rc = command_held(l, req, reply, timeout_ms);
	link_unhold(l);
	return rc;
}

static int
command_held(struct okvm_link *l, const struct okvm_ch9329_frame *req,
	     struct okvm_ch9329_frame *reply, int timeout_ms)
{
	/* a command still in flight from an earlier call: let it finish first */
	if (l->cmd.phase == CMD_SENT) {
		int rc = link_wait_cmd(l, timeout_ms);
		if (rc == -ENODEV)
			return rc;
	}
	l->cmd.req = *req;
	l->cmd.phase = CMD_QUEUED;
	l->cmd.rc = -ETIMEDOUT;
	/* the link times the frame out at timeout_ms (and frees itself); we wait a bit longer */
	l->cmd.timeout_ms = timeout_ms;
	int rc = link_wait_cmd(l, timeout_ms + 50);
	if ((rc == 0 || rc == -EPROTO) && reply)
		*reply = l->cmd.reply;
	return rc;
}

int
okvm_link_get_info(struct okvm_link *l, struct okvm_ch9329_info *out, int timeout_ms)
{
	struct okvm_ch9329_frame req, rep;
	okvm_ch9329_build_simple(&req, OKVM_CH9329_CMD_GET_INFO);
	int rc = okvm_link_command(l, &req, &rep, timeout_ms);
	if (rc < 0)
		return rc;
	if (okvm_ch9329_parse_info(&rep, out) < 0)
		return -EBADMSG;
	struct okvm_link_state st = l->state;
	st.version = out->version;
	st.target_connected = out->target_connected;
	st.leds = out->leds;
	st.info_unknown = false;
	link_update_state(l, &st);
	return 0;
}

int
okvm_link_get_params(struct okvm_link *l, struct okvm_ch9329_params *out, int timeout_ms)
{
	struct okvm_ch9329_frame req, rep;
	okvm_ch9329_build_simple(&req, OKVM_CH9329_CMD_GET_PARA_CFG);
	int rc = okvm_link_command(l, &req, &rep, timeout_ms);
	if (rc < 0)
		return rc;
	return okvm_ch9329_parse_params(&rep, out) < 0 ? -EBADMSG : 0;
}

int
okvm_link_flush(struct okvm_link *l, int timeout_ms)
{
	uint64_t deadline = link_now(l) + (uint64_t)timeout_ms * NS_PER_MS;
	for (;;) {
		int rc = okvm_link_dispatch(l);
		if (rc < 0)
			return rc;
		if (!okvm_link_pending(l))
			return 0;
		if (wait_fd(l, deadline) < 0)
			return -ETIMEDOUT;
	}
}

/* Until the report in the chip was taken (or given up on), dispatching. */
static int
wait_taken(struct okvm_link *l, uint64_t deadline)
{
	int rc = 0;
	while (!rc && l->flip_wait && l->flip != FLIP_OFF)
		if ((rc = okvm_link_dispatch(l)) == 0)
			rc = wait_fd(l, deadline);
	return rc;
}

static int probe_target_held(struct okvm_link *l, int n, int timeout_ms);

int
okvm_link_probe_target(struct okvm_link *l, int n, int timeout_ms)
{
	if (!l->ser)
		return -ENOTCONN;
	if (!l->flip_capable)
		return -ENOTSUP; /* the port cannot show CTS: nothing to learn, nothing sent */
	link_hold(l);
	int rc = probe_target_held(l, n, timeout_ms);
	link_unhold(l);
	return rc;
}

static int
probe_target_held(struct okvm_link *l, int n, int timeout_ms)
{
	bool had_report = l->any_report;
	const struct okvm_kbd_report none = { 0 };
	uint64_t deadline = link_now(l) + (uint64_t)timeout_ms * NS_PER_MS;
	/* The target polls on its own schedule; reports sent right after the last was taken would
	 * all land at the same phase of it, so each goes after a pseudo-random pause of up to
	 * 20 ms: then report -> toggle times spread over the whole poll interval. */
	l->flip_lat_n = 0;
	l->flip_lat_max_ns = l->flip_lat_2nd_ns = 0;
	l->st.target_poll_ms = 0;
	uint32_t seed = (uint32_t)link_now(l) | 1u;
	int rc = 0;
	for (int i = 0; i < n && !rc; i++) {
		if ((rc = okvm_link_send_kbd(l, &none)) < 0)
			break;
		if ((rc = okvm_link_flush(l, timeout_ms)) < 0 || (rc = wait_taken(l, deadline)) < 0)
			break;
		seed = seed * 1664525u + 1013904223u;
		uint64_t until = link_now(l) + (uint64_t)(seed >> 16) % 20000u * 1000u;
		while (!rc && link_now(l) < until)
			if ((rc = okvm_link_dispatch(l)) == 0)
				rc = wait_fd(l, until);
		if (rc == -ETIMEDOUT)
			rc = 0; /* the pause ended */
	}
	if (!had_report)
		l->any_report = false; /* it pressed nothing: no release-all is owed */
	return rc;
}

void
okvm_link_free(struct okvm_link *l)
{
	if (!l)
		return;
	link_hold(l); /* for good: no direct write any more */
	/* Leave nothing pressed. A link that never sent a HID report pressed nothing, and a query
	 * (okvm info) should not cost three reports' wire time. */
	if (l->ser && !atomic_load(&l->dead) && l->any_report) {
		/* short per-frame timeout, bounded total */
		if (l->ack_timeout_ms > 200)
			l->ack_timeout_ms = 200;
		l->suspended = false;
		okvm_link_release_all(l);
		if (okvm_link_flush(l, 1000) < 0)
			okvm_log(OKVM_LOG_WARN, "%s: release-all was not acknowledged", l->path);
	}
	if (l->st.reports_sent)
		okvm_log(OKVM_LOG_DEBUG,
			 "%s: %llu reports (%llu written by the enqueuing thread), %llu DATAFLIP "
			 "toggles, %llu sent ahead of one, %llu given up on",
			 l->path, (unsigned long long)l->st.reports_sent,
			 (unsigned long long)l->st.direct, (unsigned long long)l->st.flips,
			 (unsigned long long)l->st.flip_ahead,
			 (unsigned long long)l->st.flip_misses);
	link_detach(l);
	close(l->epfd);
	close(l->tfd);
	queue_fini(&l->q);
	pthread_mutex_destroy(&l->mu);
	free(l->path);
	free(l->modem_socket);
	free(l);
}
