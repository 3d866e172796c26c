/*
 * DESIGN: process-wide logging for libokvm.
 * The library never writes to stderr itself (libinput's rule): every message goes through one
 * handler that a front-end may replace. The default handler prints WARN and above to stderr.
 * Owned by no thread; the handler and level are set before threads start and read afterwards.
 */
#include <stdio.h>
#include <stdatomic.h>

#include "okvm/log.h"

static void
default_handler(enum okvm_log_level level, const char *fmt, va_list ap, void *userdata)
{
	(void)userdata;
	const char *tag = level >= OKVM_LOG_ERROR  ? "error"
			  : level >= OKVM_LOG_WARN ? "warning"
			  : level >= OKVM_LOG_INFO ? "info"
						   : "debug";
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "okvm: %s: %s\n", tag, line);
}

static okvm_log_handler log_handler = default_handler;
static void *log_userdata;
static atomic_int log_level = OKVM_LOG_WARN;

void
okvm_log_set_handler(okvm_log_handler handler, void *userdata)
{
	log_handler = handler ? handler : default_handler;
	log_userdata = userdata;
}

void
okvm_log_set_level(enum okvm_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum okvm_log_level
okvm_log_get_level(void)
{
	return (enum okvm_log_level)atomic_load(&log_level);
}

void
okvm_log(enum okvm_log_level level, const char *fmt, ...)
{
	if ((int)level < atomic_load(&log_level))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_handler(level, fmt, ap, log_userdata);
	va_end(ap);
}
