/*
 * DESIGN: the text pacer (include/okvm/pacer.h). The link already keeps every report the
 * target's USB poll can see (minimum gap, ACK window: docs/link.md), so the pacer only adds the
 * optional characters-per-second limit and a bound on how far ahead of the link it queues (so a
 * cancel or release-all finds little queued). No thread, no clock of its own: the caller passes
 * the time, which also makes it testable without sleeping. Thread: the caller's; the link calls
 * it uses are thread-safe.
 */
#include <errno.h>

#include "okvm/pacer.h"

void
okvm_pacer_init(struct okvm_pacer *p, const struct okvm_kbd_report *reports,
		const uint32_t *char_index, size_t n, size_t chars, double rate, size_t queue_ahead,
		double now_s)
{
	*p = (struct okvm_pacer){ .reports = reports,
				  .char_index = char_index,
				  .n = n,
				  .chars = char_index ? chars : n,
				  .rate = rate,
				  .queue_ahead = queue_ahead,
				  .start_s = now_s };
}

int
okvm_pacer_run(struct okvm_pacer *p, struct okvm_link *link, double now_s, double *wake_s)
{
	while (p->next < p->n) {
		double due = p->rate > 0 && p->char_index
				     ? p->start_s + p->char_index[p->next] / p->rate
				     : 0;
		if (now_s < due) {
			*wake_s = due;
			return 0;
		}
		if (p->queue_ahead && okvm_link_pending(link) >= p->queue_ahead) {
			*wake_s = now_s + 0.1;
			return 0;
		}
		int rc = okvm_link_send_kbd(link, &p->reports[p->next]);
		if (rc == -EAGAIN) { /* queue full: let the link drain */
			*wake_s = now_s + 0.1;
			return 0;
		}
		if (rc)
			return rc;
		p->next++;
	}
	*wake_s = now_s;
	return 1;
}

size_t
okvm_pacer_done(const struct okvm_pacer *p, struct okvm_link *link)
{
	size_t pending = okvm_link_pending(link);
	size_t k = p->next > pending ? p->next - pending : 0;
	if (k >= p->n)
		return p->chars;
	return p->char_index ? p->char_index[k] : k;
}
