/*
 * Pacing keyboard reports onto a link: the one text pacer behind `okvm type`, the web server's
 * paste and scripts. It decides which report goes next and when (rate characters per second, or
 * as fast as the link takes them), and how many characters the link has sent. It starts no
 * thread and never sleeps: the caller waits as it likes (poll on the link's fd in the CLI, a
 * condition variable in the server) and calls okvm_pacer_run() again by the time it asked for.
 */
#ifndef OKVM_PACER_H
#define OKVM_PACER_H

#include <stddef.h>
#include <stdint.h>

#include "okvm/ch9329.h"
#include "okvm/link.h"

#ifdef __cplusplus
extern "C" {
#endif

struct okvm_pacer {
	const struct okvm_kbd_report *reports;
	const uint32_t *char_index; /* the character of each report (okvm_text_plan), or NULL */
	size_t n;                   /* reports */
	size_t chars;               /* characters in all (n when char_index is NULL) */
	double rate;                /* characters per second; <= 0: as fast as the link allows */
	size_t queue_ahead;         /* at most this many reports waiting in the link; 0: no limit */
	double start_s;
	size_t next; /* reports handed to the link so far */
};

/**
 * Start pacing n reports (borrowed: they must outlive the pacer) at now_s (any monotonic clock
 * in seconds, the same one for every call). char_index may be NULL (a combo: one "character"
 * per report, no rate).
 */
void okvm_pacer_init(struct okvm_pacer *p, const struct okvm_kbd_report *reports,
		     const uint32_t *char_index, size_t n, size_t chars, double rate,
		     size_t queue_ahead, double now_s);

/**
 * Hand the link every report that is due.
 * @param wake_s when to call again: the next report's time, or (link queue full) now_s + 0.1,
 *        earlier if the link makes progress meanwhile
 * @return 0 while reports remain, 1 when every report is with the link (the caller then waits
 *         for okvm_link_pending() to reach 0 or flushes), or -errno from okvm_link_send_kbd
 *         (-ENODEV: the port is gone)
 */
int okvm_pacer_run(struct okvm_pacer *p, struct okvm_link *link, double now_s, double *wake_s);

/** Characters the link has sent: those of the reports no longer queued or in flight. */
size_t okvm_pacer_done(const struct okvm_pacer *p, struct okvm_link *link);

#ifdef __cplusplus
}
#endif
#endif
