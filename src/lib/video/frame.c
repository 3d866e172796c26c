/*
 * DESIGN: refcounted frames and the per-capture pool they come from.
 * A frame is published once and then only read, from any thread; the last unref returns it to
 * its pool (buffer kept, so the capture path does not allocate once warm) or frees it. A repeat
 * frame shares another frame's bytes and holds a reference on it, so the virtual screen repeating
 * an unchanged picture costs no copy. The pool outlives its capture while frames are out.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "lib/video/frame.h"
#include "lib/xalloc.h"

#define POOL_KEEP 6 /* free frames kept for reuse */

struct frame_impl {
	struct okvm_frame pub;
	atomic_int refs;
	uint8_t *buf;
	size_t cap;
	struct frame_impl *owner; /* repeat frames: whose bytes pub.data points at */
	struct okvm_frame_pool *pool;
	struct frame_impl *next;
};

struct okvm_frame_pool {
	pthread_mutex_t lock;
	atomic_int refs; /* the capture + one per frame out */
	struct frame_impl *free;
	int nfree;
};

static struct frame_impl *
impl(struct okvm_frame *f)
{
	return (struct frame_impl *)f; /* pub is the first member */
}

struct okvm_frame_pool *
frame_pool_new(void)
{
	struct okvm_frame_pool *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	atomic_init(&p->refs, 1);
	return p;
}

void
frame_pool_unref(struct okvm_frame_pool *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	while (p->free) {
		struct frame_impl *f = p->free;
		p->free = f->next;
		free(f->buf);
		free(f);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void
frame_pool_trim(struct okvm_frame_pool *p)
{
	pthread_mutex_lock(&p->lock);
	struct frame_impl *f = p->free;
	p->free = NULL;
	p->nfree = 0;
	pthread_mutex_unlock(&p->lock);
	while (f) {
		struct frame_impl *next = f->next;
		free(f->buf);
		free(f);
		f = next;
	}
}

static struct frame_impl *
pool_take(struct okvm_frame_pool *p)
{
	pthread_mutex_lock(&p->lock);
	struct frame_impl *f = p->free;
	if (f) {
		p->free = f->next;
		p->nfree--;
	}
	pthread_mutex_unlock(&p->lock);
	if (!f) {
		f = xcalloc(1, sizeof(*f));
	}
	atomic_fetch_add(&p->refs, 1);
	f->pool = p;
	return f;
}

struct okvm_frame *
frame_pool_alloc(struct okvm_frame_pool *p, size_t size)
{
	struct frame_impl *f = pool_take(p);
	if (f->cap < size) {
		free(f->buf);
		f->cap = size + size / 4;
		f->buf = xmalloc(f->cap);
	}
	memset(&f->pub, 0, sizeof(f->pub));
	f->pub.data = f->buf;
	f->owner = NULL;
	atomic_init(&f->refs, 1);
	return &f->pub;
}

struct okvm_frame *
frame_pool_repeat(struct okvm_frame_pool *p, struct okvm_frame *prev)
{
	struct frame_impl *f = pool_take(p);
	f->pub = *prev;
	f->pub.seq = 0;
	f->pub.ts_us = 0;
	struct frame_impl *o = impl(prev);
	f->owner = impl(okvm_frame_ref(o->owner ? &o->owner->pub : prev));
	atomic_init(&f->refs, 1);
	return &f->pub;
}

uint8_t *
okvm_frame_buffer(struct okvm_frame *f, size_t *capacity)
{
	struct frame_impl *fi = impl(f);
	if (capacity)
		*capacity = fi->owner ? 0 : fi->cap;
	return fi->owner ? NULL : fi->buf;
}

struct okvm_frame *
okvm_frame_ref(struct okvm_frame *f)
{
	atomic_fetch_add(&impl(f)->refs, 1);
	return f;
}

void
okvm_frame_unref(struct okvm_frame *f)
{
	if (!f)
		return;
	struct frame_impl *fi = impl(f);
	if (atomic_fetch_sub(&fi->refs, 1) != 1)
		return;
	if (fi->owner) {
		okvm_frame_unref(&fi->owner->pub);
		fi->owner = NULL;
	}
	struct okvm_frame_pool *p = fi->pool;
	pthread_mutex_lock(&p->lock);
	bool keep = p->nfree < POOL_KEEP;
	if (keep) {
		fi->next = p->free;
		p->free = fi;
		p->nfree++;
	}
	pthread_mutex_unlock(&p->lock);
	if (!keep) {
		free(fi->buf);
		free(fi);
	}
	frame_pool_unref(p);
}
