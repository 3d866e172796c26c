/*
 * DESIGN: the glue that lets the library's register code (src/lib/chip/ms21xx.c) talk to the
 * virtual unit's MS2109 model in the same process: the transport's set/get call the model's
 * feature functions under the caller's lock. `-d emu` then reads firmware, signal, mode and
 * toggle, and switches the USB port, through exactly the code a real unit uses.
 */
#include <stdlib.h>

#include "emu/ms2109-chip.h"
#include "lib/xalloc.h"

struct glue {
	struct ms2109_emu *emu;
	pthread_mutex_t *lock;
	void (*routed)(bool to_target, void *ud);
	void *ud;
};

static int
glue_set(void *ud, const uint8_t *buf, size_t len)
{
	struct glue *g = ud;
	if (g->lock)
		pthread_mutex_lock(g->lock);
	bool before = ms2109_emu_routed_target(g->emu);
	int rc = ms2109_emu_feature_set(g->emu, buf, len);
	bool after = ms2109_emu_routed_target(g->emu);
	if (g->lock)
		pthread_mutex_unlock(g->lock);
	if (rc == 0 && before != after && g->routed)
		g->routed(after, g->ud); /* the mux moved: the register write is the switch */
	return rc;
}

static int
glue_get(void *ud, uint8_t *buf, size_t len)
{
	struct glue *g = ud;
	if (g->lock)
		pthread_mutex_lock(g->lock);
	int rc = ms2109_emu_feature_get(g->emu, buf, len);
	if (g->lock)
		pthread_mutex_unlock(g->lock);
	return rc;
}

struct okvm_chip *
emu_ms2109_chip_new_hooked(struct ms2109_emu *e, pthread_mutex_t *lock,
			   void (*routed)(bool to_target, void *ud), void *ud)
{
	static const struct okvm_chip_transport t = { glue_set, glue_get, free };
	struct glue *g = xmalloc(sizeof(*g));
	*g = (struct glue){ .emu = e, .lock = lock, .routed = routed, .ud = ud };
	return okvm_chip_new(e->kind, &t, g); /* the register file says which chip it is */
}

struct okvm_chip *
emu_ms2109_chip_new(struct ms2109_emu *e, pthread_mutex_t *lock)
{
	return emu_ms2109_chip_new_hooked(e, lock, NULL, NULL);
}
