/*
 * The serial port of a CH9329 link: a raw 8N1 tty, exclusive, with DTR and RTS under control.
 * One object per open port; it belongs to one thread (the link's dispatch thread).
 */
#ifndef OKVM_SERIAL_H
#define OKVM_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct okvm_serial;

/**
 * Open a tty for the CH9329: raw 8N1, no flow control, O_NONBLOCK|O_NOCTTY|O_CLOEXEC, TIOCEXCL,
 * then DTR and RTS deasserted at once (Linux raises both on open; hardware.md 2.11: DTR asserted
 * powers off the switchable USB port, RTS held > 3 s factory-resets the chip).
 * @param path the tty (/dev/ttyUSB0, a pty slave, a symlink to one)
 * @param baud a standard speed from 1200 to 115200
 * @param out receives the port
 * @return 0, -EINVAL (bad baud), -ENOENT (no such node), -EACCES (permission; the log names the
 *         group to join), -EBUSY (held by another program), -ENOTTY (not a terminal), or -errno.
 *         Each failure is logged with the fix.
 */
int okvm_serial_open(const char *path, int baud, struct okvm_serial **out);

/** The tty fd, for poll(); owned by the port. */
int okvm_serial_fd(const struct okvm_serial *s);

/** Change the speed (tcsetattr) and flush both directions. @return 0, -EINVAL or -errno. */
int okvm_serial_set_baud(struct okvm_serial *s, int baud);
int okvm_serial_baud(const struct okvm_serial *s);

/** Discard unread input and unsent output. */
void okvm_serial_flush(struct okvm_serial *s);

/**
 * Write all n bytes (waits for room up to 1 s).
 * @return n, -ENODEV (unplugged), -ETIMEDOUT (no room) or -errno.
 */
ssize_t okvm_serial_write(struct okvm_serial *s, const uint8_t *p, size_t n);

/** Read what is there. @return bytes read, 0 = nothing now, -ENODEV on EOF/EIO/ENODEV. */
ssize_t okvm_serial_read(struct okvm_serial *s, uint8_t *p, size_t n);

/**
 * Set the modem lines (true = asserted). On a real tty: TIOCMBIS/TIOCMBIC. On a pseudo-terminal
 * (ENOTTY) with a known modem socket: one datagram "DTR=1"/"DTR=0"/"RTS=1"/"RTS=0"
 * (docs/contracts.md section 1). @return 0, -ENOTTY (no modem lines and no socket) or -errno.
 */
int okvm_serial_set_dtr(struct okvm_serial *s, bool asserted);
int okvm_serial_set_rts(struct okvm_serial *s, bool asserted);

/**
 * Name the virtual unit's modem socket explicitly (an in-process unit whose pty has no PATH.modem).
 * Sends "DTR=0" and "RTS=0" right away, as serial_open does for PATH.modem, so the unit knows
 * the lines' state after open. @param path NULL forgets the socket. @return 0 or -errno.
 */
int okvm_serial_set_modem_socket(struct okvm_serial *s, const char *path);

/**
 * CTS changes counted so far (the CH9329's DATAFLIP output on Mini-KVM v1.9, hardware.md
 * 2.11): TIOCGICOUNT on a real port; on the virtual unit's pty, the "CTS=" datagrams its modem
 * socket sends after a "WATCH" (docs/contracts.md section 1). @return 0, -ENOTSUP (no way to
 * see the line: a pty without a modem socket), -ENODEV, -errno.
 */
int okvm_serial_cts_count(struct okvm_serial *s, uint64_t *count);
/** A fd that becomes readable when CTS news arrives (the modem socket), or -1 (a real port:
 *  the driver wakes nobody; poll okvm_serial_cts_count()). */
int okvm_serial_cts_fd(const struct okvm_serial *s);

/**
 * The modem lines as TIOCMGET shows them (TIOCM_DSR, TIOCM_CTS, TIOCM_CAR... bits) on a real
 * port. @return 0, -ENOTTY (a pseudo-terminal: no lines; the virtual unit's adapter answers on
 * its modem socket instead, docs/contracts.md section 1), -ENODEV (unplugged) or -errno.
 */
int okvm_serial_get_lines(struct okvm_serial *s, int *bits);

/** Send a break (tcsendbreak: 0.25-0.5 s of zeros). A pty takes it and carries none.
 *  @return 0, -ENODEV or -errno. */
int okvm_serial_send_break(struct okvm_serial *s);

/** Path given to okvm_serial_open. */
const char *okvm_serial_path(const struct okvm_serial *s);

/** Close; NULL is fine. Lines are left deasserted. */
void okvm_serial_close(struct okvm_serial *s);

/** True if baud is a standard speed okvm accepts (1200..115200). */
bool okvm_serial_baud_valid(int baud);

#ifdef __cplusplus
}
#endif
#endif
