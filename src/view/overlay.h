/* okvm view: the overlay picture (overlay.c). Main thread only. */
#ifndef OKVM_VIEW_OVERLAY_H
#define OKVM_VIEW_OVERLAY_H

struct okvm_canvas;
struct serve_state;

struct view_overlay_info {
	const struct serve_state *state;
	double shown_fps;      /* frames the window presented in the last second */
	const char *host_key;  /* its name */
	const char *message;   /* the last action's result ("screenshot okvm-...jpg"), or NULL */
	const char *recording; /* how long the recording has run ("1:05"), NULL: none */
};

/* The canvas size the overlay wants. */
void view_overlay_size(int *w, int *h);
void view_overlay_draw(struct okvm_canvas *cv, const struct view_overlay_info *in);

#endif
