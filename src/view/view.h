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
	char *layout, *shot_dir;
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
