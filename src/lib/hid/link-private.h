/* Internals of the CH9329 link shared by link-queue.c (the queue), link.c (in flight, dispatch)
 * and link-ops.c (commands). */
#ifndef OKVM_LINK_PRIVATE_H
#define OKVM_LINK_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>

#include "okvm/ch9329.h"
#include "okvm/link.h"
#include "okvm/serial.h"

/** Monotonic nanoseconds; tests inject a fake one. */
typedef uint64_t (*link_clock_fn)(void *ud);

/** Device timings of the maintenance commands (hardware.md 2.10); tests shorten them. */
struct link_timing {
	int rts_hold_ms;     /* factory reset: RTS asserted this long (4000) */
	int rts_settle_ms;   /* then released this long before talking (500) */
	int verify_attempts; /* GET_INFO tries after a baud change or reset (4) */
};

struct ring {
	uint8_t *buf;
	size_t elem, cap, head, n;
};

/* A queued mouse change: a button or wheel change, or motion flushed before one. */
struct mouse_ev {
	bool abs;
	uint8_t buttons;
	int8_t wheel;
	uint16_t x, y;  /* abs */
	int32_t dx, dy; /* rel; split into int8 steps when sent */
};

enum fl_kind { FL_HID, FL_POLL, FL_CMD };

/* HID reports in flight at most (docs/link.md "Pacing model"); commands and polls: one. */
#define LINK_WINDOW 2

/* A frame written and waiting for its reply. */
struct inflight {
	enum fl_kind kind;
	uint8_t cmd;
	uint64_t sent_ns, deadline_ns;
	uint64_t wire_end_ns; /* its last byte has left the host at this baud */
};
enum cmd_phase { CMD_IDLE, CMD_QUEUED, CMD_SENT, CMD_DONE };

/*
 * The queue side (link-queue.c): what waits to be sent. Any thread; every field is under mu.
 */
struct link_queue {
	pthread_mutex_t mu;
	int efd; /* eventfd: kicked after each enqueue, in the link's epoll set */
	struct ring urgent, kbd, media, mouse;
	bool abs_pending; /* newest unsent absolute position */
	uint16_t abs_x, abs_y;
	int32_t rel_dx, rel_dy;  /* unsent relative motion */
	uint8_t buttons;         /* newest enqueued button state */
	uint8_t sent_buttons;    /* button state of the last mouse frame taken for sending */
	uint16_t last_x, last_y; /* newest enqueued absolute position */
	bool abs_used, rel_used, acpi_used;
	size_t inflight_hid; /* HID frames taken and not yet done (okvm_link_pending counts them) */
	uint64_t coalesced;
};

/*
 * The in-flight side (link.c, link-ops.c): everything but q and dead is the dispatch thread's
 * (the thread calling okvm_link_dispatch and the blocking commands); configuration is set
 * before it starts. One exception, the direct write (link_try_direct): an enqueuing thread that
 * finds the link idle writes the frame itself, holding mu, and leaves the in-flight state it made
 * to the dispatch thread. So okvm_link_dispatch and okvm_link_get_stats hold mu too, and every
 * blocking helper runs under link_hold() (hold > 0: no direct write), so what it touches
 * outside mu is its own.
 */
struct okvm_link {
	pthread_mutex_t mu; /* the link's lock: dispatch, and a direct write from another thread */
	unsigned hold;      /* blocking helpers running (dispatch thread; under mu) */

	/* configuration */
	char *path, *modem_socket;
	int cfg_baud, ack_timeout_ms, poll_ms;
	int window;      /* HID frames in flight at most: LINK_WINDOW, or 1 with no_pipeline */
	bool lines_only; /* the modem lines only: nothing is sent to the chip */
	uint64_t gap_ns;
	struct link_timing timing;
	link_clock_fn now_fn;
	void *now_ud;

	/* fds: epfd holds the serial fd, the timerfd and the queue's eventfd */
	struct okvm_serial *ser;
	int epfd, tfd;
	atomic_bool dead; /* set by the dispatch thread, read by enqueuing threads */

	/* shared with enqueuing threads: only through the queue_* functions below */
	struct link_queue q;

	/* dispatch thread only */
	struct inflight fl[LINK_WINDOW]; /* oldest first; replies match in this order */
	size_t nfl;
	bool any_report;
	uint64_t last_report_ns, next_poll_ns;
	bool gap_started;          /* a report was written: last_report_ns counts */
	uint64_t last_wire_end_ns; /* the last byte of the newest frame written leaves the host */
	bool no_ack;               /* the chip does not ACK HID reports: sent unpaced by ACKs */
	bool hid_acked;            /* a HID report was acknowledged since open */
	unsigned noack_run;        /* HID reports unanswered in a row while none was ever ACKed */
	bool suspended;            /* maintenance in progress: no HID, no polls */
	/* DATAFLIP (hardware.md 2.11): the chip toggles CTS on every report the target takes.
	   UNKNOWN until the first toggle follows a report (then ON: the next report goes as soon
	   as the target took the previous one) or LINK_FLIP_TRIES reports pass without one (OFF:
	   the fixed gap alone, as on v1.6 boards and the KVM-Go). */
	enum { FLIP_UNKNOWN, FLIP_ON, FLIP_OFF } flip;
	bool flip_capable;         /* the port can show CTS at all */
	bool flip_wait;            /* a report is in the chip, not yet taken by the target */
	bool flip_suspect;         /* one was given up on: the next toggle may be its, late */
	uint64_t flips;            /* CTS changes counted on the port */
	uint64_t flip_wire_end_ns; /* when the chip had that report whole */
	unsigned flip_tries;       /* reports without a toggle while UNKNOWN */
	uint64_t flip_lat_max_ns;  /* the longest report -> toggle time in this window ... */
	uint64_t flip_lat_2nd_ns;  /* ... the second longest ... */
	unsigned flip_lat_n;       /* ... of this many samples */
	int cts_fd;                /* readable on CTS news (virtual unit), or -1 */
	/* a report went before the one ahead of it was seen taken, and when the chip had that one */
	bool flip_ahead;
	uint64_t flip_prev_wire_end_ns;
	uint64_t flip_poll_ns; /* the poll interval by the last whole window of toggles, or 0 */
	uint8_t last_status, last_status_cmd; /* to log chip errors once per change */
	struct okvm_ch9329_parser parser;
	struct okvm_link_stats st;
	struct okvm_link_state state;
	okvm_link_listener listener;
	void *listener_ud;
	struct {
		enum cmd_phase phase;
		struct okvm_ch9329_frame req, reply;
		int rc;
		int timeout_ms;
	} cmd;
};

/*
 * The queue's interface to the in-flight side (link-queue.c; the enqueue functions themselves
 * are the public okvm_link_* ones). Each takes q->mu for its own duration; none blocks.
 */
/** Rings, mutex and eventfd. @return 0, or -errno if the eventfd cannot be made. */
int queue_init(struct link_queue *q);
void queue_fini(struct link_queue *q);
/** The eventfd the enqueue functions kick (readable when something was queued). */
int queue_fd(struct link_queue *q);
/** Read the eventfd empty. */
void queue_drain_kicks(struct link_queue *q);
/**
 * Take the next HID frame by priority into *f and count it in flight until queue_hid_done().
 * *lock_key is set if it presses Caps, Num or Scroll Lock. @return false if nothing is queued.
 */
bool queue_pop_next(struct link_queue *q, struct okvm_ch9329_frame *f, bool *lock_key);
/** A frame queue_pop_next() gave out was answered, lost, or never written. */
void queue_hid_done(struct link_queue *q);
/** Frames waiting (not counting those in flight). */
size_t queue_queued(struct link_queue *q);
/** Drop everything queued and forget the button state (no release-all frames). */
void queue_clear(struct link_queue *q);
/** Absolute positions replaced before they were sent. */
uint64_t queue_coalesced(struct link_queue *q);

/**
 * Any thread, after an enqueue: if the link is idle (nothing in flight, no command, the gap or
 * the DATAFLIP line allows a report now) and nobody holds mu, write the next HID frame from
 * this thread and arm the link's timer for its ACK. @return true if it did (no kick needed).
 */
bool link_try_direct(struct okvm_link *l);
/** Dispatch thread: a blocking helper starts / ends (no direct write in between). Nests. */
void link_hold(struct okvm_link *l);
void link_unhold(struct okvm_link *l);

void link_set_clock(struct okvm_link *l, link_clock_fn fn, void *ud);
void link_set_timing(struct okvm_link *l, const struct link_timing *t);
uint64_t link_now(struct okvm_link *l);
/** Publish st if it differs from the current state. */
void link_update_state(struct okvm_link *l, const struct okvm_link_state *st);
/* The timerfd set for what is due next (a send, a timeout, the next GET_INFO poll). */
void link_arm_timer(struct okvm_link *l, uint64_t now);
/** Run dispatch until the blocking command finishes or timeout_ms passes. */
int link_wait_cmd(struct okvm_link *l, int timeout_ms);
/** Attach an opened port to the epoll set. */
int link_attach(struct okvm_link *l, struct okvm_serial *s);
void link_detach(struct okvm_link *l);
/** serial.c: the port is a CDC-ACM one (cdc_acm driver or a ttyACM name): a CH32V208. */
bool serial_is_cdc_acm(const struct okvm_serial *s);
/** Sleep for ms on the dispatch thread (device timing, not synchronisation). */
void link_sleep_ms(int ms);

#endif
