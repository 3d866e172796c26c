/* Internals of the CH9329 link shared by link.c (queues, dispatch) and link-ops.c (commands). */
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

struct okvm_link {
	/* configuration */
	char *path, *modem_socket;
	int cfg_baud, ack_timeout_ms, poll_ms;
	int window; /* HID frames in flight at most: LINK_WINDOW, or 1 with no_pipeline */
	uint64_t gap_ns;
	struct link_timing timing;
	link_clock_fn now_fn;
	void *now_ud;

	/* fds: epfd holds the serial fd, the timerfd and the eventfd */
	struct okvm_serial *ser;
	int epfd, tfd, efd;
	atomic_bool dead;

	/* shared with enqueuing threads, under mu */
	pthread_mutex_t mu;
	struct ring urgent, kbd, media, mouse;
	bool abs_pending; /* newest unsent absolute position */
	uint16_t abs_x, abs_y;
	int32_t rel_dx, rel_dy;  /* unsent relative motion */
	uint8_t buttons;         /* newest enqueued button state */
	uint8_t sent_buttons;    /* button state of the last mouse frame taken for sending */
	uint16_t last_x, last_y; /* newest enqueued absolute position */
	bool abs_used, rel_used, acpi_used;
	size_t inflight_hid; /* HID frames in flight (okvm_link_pending counts them) */
	bool lock_key_sent;  /* the frame just taken presses a lock key */
	uint64_t coalesced;

	/* dispatch thread only */
	struct inflight fl[LINK_WINDOW]; /* oldest first; replies match in this order */
	size_t nfl;
	bool any_report;
	uint64_t last_report_ns, next_poll_ns;
	bool suspended;                       /* maintenance in progress: no HID, no polls */
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

void link_set_clock(struct okvm_link *l, link_clock_fn fn, void *ud);
void link_set_timing(struct okvm_link *l, const struct link_timing *t);
uint64_t link_now(struct okvm_link *l);
/** Publish st if it differs from the current state. */
void link_update_state(struct okvm_link *l, const struct okvm_link_state *st);
/** Run dispatch until the blocking command finishes or timeout_ms passes. */
int link_wait_cmd(struct okvm_link *l, int timeout_ms);
/** Attach an opened port to the epoll set. */
int link_attach(struct okvm_link *l, struct okvm_serial *s);
void link_detach(struct okvm_link *l);
/** Sleep for ms on the dispatch thread (device timing, not synchronisation). */
void link_sleep_ms(int ms);

#endif
