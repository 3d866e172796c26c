/*
 * A scripted fake CH9329 on the master side of a real pty, for tests and benchmarks.
 * The library opens the slave path as if it were /dev/ttyUSB0; the test reads the exact bytes
 * the library sent and writes the replies it chooses. Closing the master is an unplug.
 */
#ifndef OKVM_FAKE_CHIP_H
#define OKVM_FAKE_CHIP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fake_chip {
	int master;
	int slave_fd;
	char slave[128];
	/* script thread */
	pthread_t thread;
	const struct fake_step *steps;
	size_t nsteps, done;
	int dgram_fd;
	char err[640];        /* two 256-byte hex dumps and the step text */
	uint64_t dgram_ns[8]; /* CLOCK_MONOTONIC arrival of each datagram step */
	size_t ndgram;
};

enum fake_kind {
	FAKE_EXPECT, /* read one frame; its bytes must equal bytes[0..len), at baud if baud != 0 */
	FAKE_REPLY,  /* write bytes */
	FAKE_DGRAM,  /* read one datagram from dgram_fd; it must equal text */
	FAKE_QUIET,  /* no byte may arrive for len milliseconds */
};

struct fake_step {
	enum fake_kind kind;
	const uint8_t *bytes;
	size_t len;
	int baud;
	const char *text;
};

int fake_chip_open(struct fake_chip *c);
/** Close the master: the slave sees EOF/EIO (an unplug). */
void fake_chip_unplug(struct fake_chip *c);
void fake_chip_close(struct fake_chip *c);
/** Read one whole frame (exact bytes) within timeout_ms. @return its length, 0 on timeout. */
size_t fake_chip_read_frame(struct fake_chip *c, uint8_t *buf, size_t cap, int timeout_ms);
/** True if any byte arrives within ms. */
bool fake_chip_has_input(struct fake_chip *c, int ms);
void fake_chip_write(struct fake_chip *c, const uint8_t *p, size_t n);
/** The baud the slave is set to, as seen from the master (0 if unknown). */
int fake_chip_baud(struct fake_chip *c);
/** Run steps on a thread; fake_chip_join returns the number of steps done (err set if < n). */
void fake_chip_run(struct fake_chip *c, const struct fake_step *steps, size_t n, int dgram_fd);
size_t fake_chip_join(struct fake_chip *c);
/** Frame bytes with the sum appended: hdr = 57 AB 00 cmd len + data. @return total length. */
size_t fake_frame(uint8_t *out, uint8_t cmd, const uint8_t *data, uint8_t len);
/** ACK of cmd: 57 AB 00 cmd|80 01 00 sum. */
size_t fake_ack(uint8_t *out, uint8_t cmd);

#endif

/* An auto-answering chip on its own thread: ACKs every frame, answers GET_INFO, records what
   arrived (first-byte time in CLOCK_MONOTONIC ns, frame bytes). For throughput tests/benches. */
struct fake_auto {
	struct fake_chip *chip;
	pthread_t thread;
	atomic_bool stop; /* set by fake_auto_stop, read by its thread */
	pthread_mutex_t mu;
	uint8_t (*frames)[16]; /* first 16 bytes of each frame */
	uint64_t *first_byte_ns;
	size_t n, cap;
};
void fake_auto_start(struct fake_auto *a, struct fake_chip *c, size_t cap);
/** Frames recorded so far (thread-safe). */
size_t fake_auto_count(struct fake_auto *a);
void fake_auto_stop(struct fake_auto *a);
