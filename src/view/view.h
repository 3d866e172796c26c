/*
 * okvm view: the native viewer window (SDL2). The CLI (src/cli/cmd_view.c) opens the unit and
 * its serve backend (src/serve/backend.h), fills struct view_opts from okvm.conf's [view]
 * section and the command line, and calls view_run() on the main thread.
 */
#ifndef OKVM_VIEW_VIEW_H
#define OKVM_VIEW_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct serve_backend;
struct view_audio_source;

enum view_scale {
	VIEW_SCALE_FIT, /* the whole frame, aspect kept, letterboxed */
	VIEW_SCALE_1TO1 /* one frame pixel per window pixel, centred */
};

struct view_opts {
	enum view_scale scale;
	int host_key;         /* an SDL_Scancode; default SDL_SCANCODE_RCTRL */
	bool fullscreen;      /* start fullscreen */
	bool grab;            /* take the keyboard (system combos) while focused; default true */
	bool relative;        /* start with the relative mouse */
	bool audio;           /* [view] audio / --no-audio: play the unit's sound */
	const char *layout;   /* the target's layout for paste */
	const char *unit;     /* for the title */
	const char *shot_dir; /* where host+S screenshots go (default ".") */
	const char *rec_dir;  /* where host+R recordings go (default ".") */
	/* where the sound comes from (NULL: none) */
	const struct view_audio_source *audio_src;
};

void view_opts_init(struct view_opts *o);

/* Run the window until it is closed, SIGINT/SIGTERM (*stop set) or host+Q. Releases every key
 * and button it pressed before returning. Returns 0, or -errno (no display: -ENXIO). */
int view_run(const struct view_opts *o, struct serve_backend *be, volatile int *stop);

/* ---- audio.c: the unit's sound, played with SDL audio ---- */

/* The unit's sound, 48 kHz stereo S16: read(ud, pcm, frames, ts_us) blocks for up to frames
 * (10 ms), and returns frames read (0: none yet), or -errno to end the sound; *ts_us the
 * capture time of the first (CLOCK_MONOTONIC). Called from the viewer's audio thread. */
struct view_audio_source {
	long (*read)(void *ud, int16_t *pcm, size_t frames, uint64_t *ts_us);
	void *ud;
};
struct view_audio;
/* Open SDL's audio device (48 kHz S16 stereo) and start playing src. NULL: no sound output
 * (said in the log; the viewer goes on without sound). After SDL_Init. */
struct view_audio *view_audio_start(const struct view_audio_source *src);
/* Stop playing, join the reader, close the device. NULL ok. */
void view_audio_stop(struct view_audio *a);
/* Hand every chunk read from now on to a recording too (NULL: no more). Main thread; when it
 * returns, the previous recording gets no further chunk. */
struct view_rec;
void view_audio_set_rec(struct view_audio *a, struct view_rec *rec);

/* ---- record.c: host+R, what the window shows into Matroska (src/av/record.c) ---- */

struct okvm_capture;
struct view_rec_config {
	struct okvm_capture *cap; /* the unit's capture (struct serve_backend's) */
	const char *dir;          /* the file goes here as okvm-YYYYmmdd-HHMMSS.mkv (NULL: ".") */
	bool audio;               /* a 48 kHz stereo PCM track, fed with view_rec_audio() */
	/* called on the recorder's thread when the recording ended by itself (a write error,
	 * the device unplugged): the caller then calls view_rec_stop(). May be NULL. */
	void (*done)(void *ud);
	void *done_ud;
};
struct view_rec_result {
	char path[4096];
	uint64_t frames, missed, audio_dropped;
	double seconds, audio_seconds;
	int err; /* 0, -ENODATA (no frame came: the file is removed), -ENODEV (unplugged), -EIO */
};
/* Create the file and start recording on a thread of its own. Returns 0 (*out set), -ENODEV
 * (no capture), or the recorder's -errno (the directory is missing, not writable...). */
int view_rec_start(const struct view_rec_config *cfg, struct view_rec **out);
const char *view_rec_path(const struct view_rec *r);
/* Interleaved S16 samples (at most 10 ms) captured at ts_us; copied. Any thread. */
void view_rec_audio(struct view_rec *r, const int16_t *pcm, size_t frames, uint64_t ts_us);
/* The recording ended by itself (see done). Any thread. */
bool view_rec_ended(const struct view_rec *r);
/* Finish the file (trailer written) and free r; *res says what is in it. Returns res->err. */
int view_rec_stop(struct view_rec *r, struct view_rec_result *res);

/* ---- keys.c: SDL scancodes -> okvm keys ---- */

/* The KeyboardEvent.code (the key names of `okvm key`) of an SDL scancode, or NULL. */
const char *view_scancode_code(int scancode);
/* The SDL scancode of a host-key name ("rctrl", "right-ctrl", "ControlRight", "ralt", "f12",
 * any `okvm key` name of a key SDL knows). -1: none. */
int view_host_key_parse(const char *name);
/* A person's name for the host key ("Right Ctrl"). */
const char *view_host_key_name(int scancode);
/* Print the whole table: scancode, SDL name, code, usage (okvm view --list-keys). */
void view_keys_print(FILE *out);

/* ---- config.c: okvm.conf's [view] section ---- */

/* Read [view] from path into o (strings are strdup'ed into *owned, freed by the caller with
 * view_config_free). A missing file is fine (0). Returns 0, or -EINVAL with one line for the
 * user in err (bad key or value, with its line). */
struct view_config_strings {
	char *layout, *shot_dir, *rec_dir;
};
int view_config_load(const char *path, struct view_opts *o, struct view_config_strings *owned,
		     char *err, size_t errlen);
void view_config_free(struct view_config_strings *owned);
/* "fit" / "1:1" (also "1to1", "native"). 0 or -EINVAL. */
int view_scale_parse(const char *v, enum view_scale *out);

/* ---- src/cli/cmd_view.c: the command (main.c's table) ---- */
struct cli;
int cmd_view(struct cli *cli, int argc, char **argv);
void cmd_view_help(FILE *out);

#endif
