/* Internal: the frame pool behind okvm_capture_frame_alloc(). */
#ifndef OKVM_LIB_VIDEO_FRAME_H
#define OKVM_LIB_VIDEO_FRAME_H

#include <stdbool.h>

#include "okvm/video.h"

struct okvm_frame_pool;

struct okvm_frame_pool *frame_pool_new(void);
/** Drop the owner's reference; the pool goes when its last frame does. */
void frame_pool_unref(struct okvm_frame_pool *p);
/** A writable frame with room for size bytes (refs = 1). */
/** Free the frames kept for reuse (nobody watches; frames still out come back as usual). */
void frame_pool_trim(struct okvm_frame_pool *p);
struct okvm_frame *frame_pool_alloc(struct okvm_frame_pool *p, size_t size);
/** A frame that shares prev's bytes (and size/width/height/placeholder). */
struct okvm_frame *frame_pool_repeat(struct okvm_frame_pool *p, struct okvm_frame *prev);

#endif
