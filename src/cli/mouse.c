/*
 * DESIGN: `okvm mouse move X Y [--raw] | click [left|right|middle|back|forward] | scroll N |
 * rel DX DY`.
 * Every argument is checked before the port is opened (bad input: exit 2, nothing sent).
 * move uses the absolute mouse (fractions of the screen, or chip units 0..4096 with --raw);
 * click, scroll and rel use the relative mouse with no motion, so they never move the pointer
 * (a fresh process does not know where the absolute pointer is). The link splits large
 * relative moves and wheel turns into int8 steps. Exit paths release all (cli_close_link).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/link.h"
#include "lib/strnum.h"

enum mouse_op { OP_MOVE, OP_CLICK, OP_SCROLL, OP_REL };

struct mouse_args {
	enum mouse_op op;
	bool raw;
	double fx, fy;
	long a, b; /* raw x/y, button bit, wheel notches, dx/dy */
};

static bool
parse_frac(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0))
		return false;
	*out = v;
	return true;
}

static int
parse_move(struct mouse_args *m, int n, char **pos)
{
	if (n != 2)
		return cli_usage("mouse move: give X Y");
	if (m->raw) {
		if (!str_to_long(pos[0], 10, 0, OKVM_CH9329_ABS_MAX, &m->a) ||
		    !str_to_long(pos[1], 10, 0, OKVM_CH9329_ABS_MAX, &m->b))
			return cli_usage("mouse move --raw: X and Y are integers from 0 to 4096");
		return CLI_OK;
	}
	if (!parse_frac(pos[0], &m->fx) || !parse_frac(pos[1], &m->fy))
		return cli_usage("mouse move: X and Y are fractions of the screen from 0 to 1 "
				 "(or use --raw for 0..4096)");
	m->a = lround(m->fx * OKVM_CH9329_ABS_MAX);
	m->b = lround(m->fy * OKVM_CH9329_ABS_MAX);
	return CLI_OK;
}

static int
parse_click(struct mouse_args *m, int n, char **pos)
{
	const char *b = n >= 1 ? pos[0] : "left";
	if (n > 1)
		return cli_usage("mouse click: one button at most");
	m->a = !strcmp(b, "left")      ? OKVM_BTN_LEFT
	       : !strcmp(b, "right")   ? OKVM_BTN_RIGHT
	       : !strcmp(b, "middle")  ? OKVM_BTN_MIDDLE
	       : !strcmp(b, "back")    ? OKVM_BTN_BACK
	       : !strcmp(b, "forward") ? OKVM_BTN_FORWARD
				       : 0;
	if (!m->a)
		return cli_usage("mouse click: '%s' is not left, right, middle, back or forward",
				 b);
	return CLI_OK;
}

static int
parse_args(struct mouse_args *m, int argc, char **argv)
{
	char *pos[4];
	int n = 0;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--raw"))
			m->raw = true;
		else if (n < 4)
			pos[n++] = argv[i];
		else
			return cli_usage("mouse: too many arguments");
	}
	const char *sub = argc >= 2 ? argv[1] : "";
	if (m->raw && strcmp(sub, "move"))
		return cli_usage("mouse: --raw applies to move only");
	if (!strcmp(sub, "move")) {
		m->op = OP_MOVE;
		return parse_move(m, n, pos);
	}
	if (!strcmp(sub, "click")) {
		m->op = OP_CLICK;
		return parse_click(m, n, pos);
	}
	if (!strcmp(sub, "scroll")) {
		m->op = OP_SCROLL;
		if (n != 1 || !str_to_long(pos[0], 10, -10000, 10000, &m->a))
			return cli_usage(
				"mouse scroll: give N notches from -10000 to 10000 (+ up)");
		return CLI_OK;
	}
	if (!strcmp(sub, "rel")) {
		m->op = OP_REL;
		if (n != 2 || !str_to_long(pos[0], 10, -100000, 100000, &m->a) ||
		    !str_to_long(pos[1], 10, -100000, 100000, &m->b))
			return cli_usage("mouse rel: give DX DY, integers from -100000 to 100000");
		return CLI_OK;
	}
	return cli_usage("mouse: use move X Y, click [left|right|middle|back|forward], scroll N or "
			 "rel DX DY");
}

static long
clamp127(long v)
{
	return v > 127 ? 127 : v < -127 ? -127 : v;
}

static int
enqueue(struct okvm_link *l, const struct mouse_args *m)
{
	int rc = 0;
	switch (m->op) {
	case OP_MOVE: return okvm_link_mouse_abs(l, (uint16_t)m->a, (uint16_t)m->b, 0, 0);
	case OP_CLICK:
		rc = okvm_link_mouse_rel(l, 0, 0, (uint8_t)m->a, 0);
		return rc ? rc : okvm_link_mouse_rel(l, 0, 0, 0, 0);
	case OP_SCROLL:
		for (long left = m->a; left && !rc; left -= clamp127(left))
			rc = okvm_link_mouse_rel(l, 0, 0, 0, (int8_t)clamp127(left));
		return rc;
	case OP_REL:
		for (long x = m->a, y = m->b; (x || y) && !rc;) {
			long sx = clamp127(x), sy = clamp127(y);
			rc = okvm_link_mouse_rel(l, (int8_t)sx, (int8_t)sy, 0, 0);
			x -= sx;
			y -= sy;
		}
		return rc;
	}
	return -EINVAL;
}

/* Wait until sent, in slices, so SIGINT/SIGTERM stop a long move (free releases all). */
static int
drain(struct okvm_link *l)
{
	int rc;
	do {
		rc = okvm_link_flush(l, 200);
	} while (rc == -ETIMEDOUT && !cli_stop_signal && okvm_link_pending(l));
	return cli_stop_signal ? -EINTR : rc;
}

int
cmd_mouse(struct cli *cli, int argc, char **argv)
{
	struct mouse_args m = { 0 };
	int rc = parse_args(&m, argc, argv);
	if (rc)
		return rc;
	struct okvm_link *l;
	rc = cli_open_link(cli, &l);
	if (rc)
		return rc;
	unsigned logged = cli_errors_logged;
	int err = enqueue(l, &m);
	if (err == 0)
		err = drain(l);
	struct okvm_link_stats st;
	okvm_link_get_stats(l, &st);
	cli_close_link(l);
	if (err < 0 && err != -EINTR && cli_errors_logged != logged)
		return CLI_FAIL; /* the link said why it died, in one line */
	if (err < 0)
		return cli_fail("mouse: %s", okvm_strerror(err));
	/* reports only: the 115200 probe of baud detection times out on a 9600 chip */
	if (st.report_timeouts || st.report_errors)
		return cli_fail("mouse: the chip did not acknowledge %llu of %llu reports",
				(unsigned long long)(st.report_timeouts + st.report_errors),
				(unsigned long long)st.reports_sent);
	return CLI_OK;
}
