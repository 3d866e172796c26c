/* libokvm logging: the library never prints by itself; it calls a handler. */
#ifndef OKVM_LOG_H
#define OKVM_LOG_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

enum okvm_log_level {
	OKVM_LOG_DEBUG = 10,
	OKVM_LOG_INFO = 20,
	OKVM_LOG_NOTICE = 25, /* a normal event someone must be able to read later (audit) */
	OKVM_LOG_WARN = 30,
	OKVM_LOG_ERROR = 40,
};

typedef void (*okvm_log_handler)(enum okvm_log_level level, const char *fmt, va_list ap,
				 void *userdata);

/**
 * Install the process-wide log handler. The default handler writes WARN and above to stderr.
 * @param handler NULL restores the default
 * Call before starting threads; the handler itself may be called from any thread.
 */
void okvm_log_set_handler(okvm_log_handler handler, void *userdata);

/** Lowest level passed to the handler (default OKVM_LOG_WARN). */
void okvm_log_set_level(enum okvm_log_level level);
enum okvm_log_level okvm_log_get_level(void);

/** Log through the installed handler (used by libokvm and its front-ends). */
void okvm_log(enum okvm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
