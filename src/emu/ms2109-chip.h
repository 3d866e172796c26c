/* An okvm_chip whose feature reports go to an in-process MS2109 model (the virtual unit). */
#ifndef OKVM_EMU_MS2109_CHIP_H
#define OKVM_EMU_MS2109_CHIP_H

#include <pthread.h>

#include "emu/ms2109-emu.h"
#include "okvm/chip.h"

/**
 * @param e the register model; it must outlive the chip
 * @param lock held around each report (the model may be changed by another thread, e.g. the
 *        virtual unit's script); NULL = no locking
 * Free with okvm_chip_free(). Aborts on OOM.
 */
struct okvm_chip *emu_ms2109_chip_new(struct ms2109_emu *e, pthread_mutex_t *lock);
/** The same, and routed(to_target, ud) is called (on the caller's thread, lock released) each
 * time a register write moves the switchable port's mux. */
struct okvm_chip *emu_ms2109_chip_new_hooked(struct ms2109_emu *e, pthread_mutex_t *lock,
					     void (*routed)(bool to_target, void *ud), void *ud);

#endif
