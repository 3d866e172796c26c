/*
 * The target's serial console for scripts and MCP (docs/automation.md: WaitSerial, SendSerial,
 * serial_wait_for_text, serial_send_text): the USB-serial adapter `okvm console` uses, opened
 * once (exclusive) for a whole script or MCP session. What the target prints is read only while
 * a wait runs; in between it waits in the tty (and the adapter's) buffer, so nothing printed
 * after the console was opened is lost to a wait that starts later.
 *
 * A wait matches in what the target printed since the end of the previous match (or since the
 * console was opened), like expect: two WaitSerial "login:" need two prompts.
 *
 * Threads: any thread; calls are serialised by a lock of the console's own (a send waits for a
 * running wait's next 20 ms step, not for the whole wait).
 */
#ifndef OKVM_AUTO_CONSOLE_H
#define OKVM_AUTO_CONSOLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct auto_console;
struct okvm_serial;

/* Open the tty at baud (modem: a virtual adapter's modem socket, or NULL). 0 or -errno
 * (-EBUSY: another console or a power press holds it). */
int auto_console_open(const char *tty, int baud, const char *modem, struct auto_console **out);
void auto_console_close(struct auto_console *c);

/* A console whose bytes come from elsewhere (okvm serve's console thread owns the adapter and
 * hands MCP what it read): the same matching, over these operations. */
struct auto_console_ops {
	/* Up to n bytes the target printed that this console has not had; 0: none now; -ENODEV:
	   the adapter is gone (after the bytes read before it went). Never blocks. */
	ssize_t (*read)(void *ud, uint8_t *buf, size_t n);
	/* Sleep until read may have more (or a change), at most ms. */
	void (*wait)(void *ud, int ms);
	/* All len bytes to the target: 0, -ENODEV, -ETIMEDOUT or -errno. */
	int (*send)(void *ud, const void *p, size_t len);
	void (*close)(void *ud); /* auto_console_close(): ud's last use */
};
struct auto_console *auto_console_new(const struct auto_console_ops *ops, void *ud,
				      const char *path);

/* The open port, for power presses on the same adapter (power_run_port); NULL for a console of
 * auto_console_new(). */
struct okvm_serial *auto_console_port(struct auto_console *c);
const char *auto_console_path(const struct auto_console *c);

/* Send len bytes as they are. 0, -ENODEV (the adapter went away), -ETIMEDOUT or -errno. */
int auto_console_send(struct auto_console *c, const void *p, size_t len);

/* Wait until text (NUL-terminated, not empty) appears in what the target printed since the last
 * match. 0, -ETIMEDOUT, -ECANCELED (*cancel became true; cancel may be NULL), -ENODEV. */
int auto_console_wait(struct auto_console *c, const char *text, double timeout_s,
		      const atomic_bool *cancel);

#endif
