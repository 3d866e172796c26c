/* Helpers shared by the video tests: numbered test pictures and a frame recorder. */
#ifndef OKVM_TEST_VIDEO_TESTLIB_H
#define OKVM_TEST_VIDEO_TESTLIB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "okvm/video.h"

/* Solid picture number i (0..9) of w x h as a JPEG (malloc'ed); its colour identifies it. */
uint8_t *testpic_jpeg(int w, int h, int i, size_t *size);
/* Which picture a JPEG shows: 0..9, or -1 if it decodes to none of them (or not at all). */
int testpic_index(const uint8_t *jpeg, size_t size);
/* Decode fully; returns 0 and width/height if libjpeg-turbo accepts it. */
int testpic_decode(const uint8_t *jpeg, size_t size, int *w, int *h, uint8_t center_rgb[3]);
/* Write pictures 0..n-1 to DIR/PREFIXnn.jpg. */
void testpic_write(const char *dir, const char *prefix, int w, int h, int n);
/* A fresh temporary folder (mkdtemp) and its removal. */
char *testdir_new(void);
void testdir_free(char *dir);

#define REC_MAX 512
struct recorder {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct okvm_capture *cap;
	struct okvm_frame *frames[REC_MAX];
	int n;
};
/* Record every frame the capture publishes (set before okvm_capture_start). */
void recorder_init(struct recorder *r, struct okvm_capture *cap);
/* Wait until pred(r, ud) holds (checked under the lock after each frame); false on timeout. */
bool recorder_wait(struct recorder *r, bool (*pred)(struct recorder *r, void *ud), void *ud,
		   int timeout_ms);
/* Frames recorded that are real (not placeholders). */
int recorder_real(struct recorder *r);
void recorder_fini(struct recorder *r);

#endif
