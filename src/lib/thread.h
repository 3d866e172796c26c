/*
 * Starting okvm's own threads (STYLE.md "Threads and event loops"): one helper instead of a
 * hand-rolled pthread_create at every site. The new thread starts with every signal blocked
 * (signals belong to the main thread: signalfd, or the CLI's handler), carries a name that
 * top, gdb and the log show, and an error comes back as -errno. Header-only, static inline:
 * nothing exported. Any thread may call it.
 */
#ifndef OKVM_THREAD_H
#define OKVM_THREAD_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>

/* name: at most 15 characters ("okvm-capture"). Returns 0 or -errno (nothing started). */
static inline int
thread_start(pthread_t *t, const char *name, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits this mask */
	int rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	pthread_setname_np(*t, name);
	return 0;
}

/* A stop flag set by one thread (or a signal handler) and polled by another, as a relaxed atomic
 * access: the C memory model (and ThreadSanitizer) calls a plain volatile one a data race. */
static inline int
flag_get(const volatile int *f)
{
	return f ? __atomic_load_n(f, __ATOMIC_RELAXED) : 0;
}

static inline void
flag_set(volatile int *f, int v)
{
	__atomic_store_n(f, v, __ATOMIC_RELAXED);
}

#endif
