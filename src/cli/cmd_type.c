/*
 * DESIGN: `okvm type` and `okvm key`: text and key combos to the target.
 * The whole input is validated and planned before the port is opened (an unknown key name or an
 * unmappable character sends nothing), then re-planned once the target's Caps Lock state is
 * known. Reports go to the link in order; the link keeps the ACK flow and the minimum gap
 * between reports, this file adds the optional characters-per-second limit (--rate). A signal
 * stops the sending: queued presses are dropped and release-all reaches the target before exit.
 * Runs on the main thread only; the link is dispatched from here.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/keymap.h"
#include "okvm/link.h"
#include "okvm/pacer.h"
#include "okvm/text.h"
#include "okvm/video.h" /* okvm_now_us */
#include "lib/xalloc.h"

/* Default: no limit of its own. The link already keeps every report the target's USB poll can
 * see (the minimum gap, the ACK window), so the default is as fast as that is safe; --rate N
 * slows typing down for applications that cannot keep up (docs/keyboard.md). */
#define TYPE_DEFAULT_RATE 0.0
#define TYPE_MAX_INPUT (16u << 20)
#define FLUSH_TIMEOUT_MS 5000

/* The pacer's clock: okvm's CLOCK_MONOTONIC, in seconds. */
static double
now_s(void)
{
	return (double)okvm_now_us() / 1e6;
}

/* Wait for the link (or until deadline_s), dispatching it. 1 = stopped by a signal. */
static int
pump(struct okvm_link *link, double deadline_s)
{
	struct pollfd pfd = { .fd = okvm_link_fd(link), .events = POLLIN };
	double left = deadline_s - now_s();
	int ms = left <= 0 ? 0 : left > 0.1 ? 100 : (int)(left * 1000.0) + 1;
	int rc = poll(&pfd, 1, ms);
	if (cli_stop_signal)
		return 1;
	if (rc > 0) {
		rc = okvm_link_dispatch(link);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Release what is held (as far as the link still can), then report in one line. logged is
 * cli_errors_logged before sending: when the link itself said why it died ("the serial port
 * vanished"), that line is the report and none is added. */
static int
stop_and_release(struct okvm_link *link, int why, unsigned logged)
{
	okvm_link_release_all(link);
	int rc = okvm_link_flush(link, 1000);
	if (why == 1)
		return cli_fail("interrupted by signal %d; all keys released%s", cli_stop_signal,
				rc < 0 ? " (not confirmed by the chip)" : "");
	if (cli_errors_logged != logged)
		return CLI_FAIL;
	return cli_fail("the link failed: %s", okvm_strerror(why));
}

int
cli_send_reports(struct okvm_link *link, const struct okvm_kbd_report *reports,
		 const uint32_t *char_index, size_t n, double rate)
{
	unsigned logged = cli_errors_logged;
	struct okvm_pacer p;
	okvm_pacer_init(&p, reports, char_index, n, n, rate, 0, now_s());
	for (;;) {
		if (cli_stop_signal)
			return stop_and_release(link, 1, logged);
		double wake;
		int rc = okvm_pacer_run(&p, link, now_s(), &wake);
		if (rc < 0)
			return stop_and_release(link, rc, logged);
		if (rc == 1)
			break;
		if ((rc = pump(link, wake)))
			return stop_and_release(link, rc, logged);
	}
	while (okvm_link_pending(link) > 0) {
		int rc = pump(link, now_s() + 0.1);
		if (rc)
			return stop_and_release(link, rc, logged);
	}
	int rc = okvm_link_flush(link, FLUSH_TIMEOUT_MS);
	if (rc < 0 && cli_errors_logged != logged)
		return CLI_FAIL; /* the link said why */
	if (rc < 0)
		return cli_fail("the chip did not acknowledge the last reports: %s",
				okvm_strerror(rc));
	return CLI_OK;
}

static int
read_all(FILE *in, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (n == cap) {
			if (cap >= TYPE_MAX_INPUT) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		size_t k = fread(buf + n, 1, cap - n, in);
		n += k;
		if (k == 0)
			break;
	}
	if (ferror(in)) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int
parse_rate(const char *s, double *rate)
{
	if (!strcmp(s, "max")) {
		*rate = 0;
		return CLI_OK;
	}
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= 1 && v <= 10000))
		return cli_usage("--rate: '%s' is not a number of characters per second (1-10000) "
				 "or 'max'",
				 s);
	*rate = v;
	return CLI_OK;
}

static int
parse_caps(const char *s, enum okvm_caps_mode *mode)
{
	if (!strcmp(s, "compensate"))
		*mode = OKVM_CAPS_COMPENSATE;
	else if (!strcmp(s, "ignore"))
		*mode = OKVM_CAPS_IGNORE;
	else if (!strcmp(s, "refuse"))
		*mode = OKVM_CAPS_REFUSE;
	else
		return cli_usage("--caps-lock: '%s' is not compensate, ignore or refuse", s);
	return CLI_OK;
}

void
cmd_type_help(FILE *out)
{
	fputs("usage: okvm type [--rate CPS|max] [--caps-lock MODE] [--skip-unmappable] [--dry-run] "
	      "TEXT|-\n"
	      "  type text on the target, in its keyboard layout (--layout XKB, default us);\n"
	      "  - reads standard input. The whole text is planned before anything is sent.\n"
	      "\n"
	      "Options:\n"
	      "      --rate CPS|max     characters per second (1-10000); default max: as fast as\n"
	      "                         the report pacing allows\n"
	      "      --caps-lock MODE   when the target's Caps Lock is on: compensate (default: type\n"
	      "                         the text as given), ignore (send the keys as if it were off)\n"
	      "                         or refuse (send nothing, exit 1)\n"
	      "      --skip-unmappable  type the rest when some characters are not on the layout\n"
	      "      --dry-run          plan only: print the characters and reports, send nothing\n"
	      "\n"
	      "Exit status: 0 typed, 1 runtime failure, 2 bad usage or text the layout cannot type\n"
	      "(nothing sent).\n",
	      out);
}

struct type_args {
	double rate;
	struct okvm_text_opts opts;
	bool dry_run;
	char *text;
	size_t len;
};

static int
type_parse(int argc, char **argv, struct type_args *a)
{
	static const struct option opts[] = {
		{ "rate", required_argument, NULL, 'r' },
		{ "caps-lock", required_argument, NULL, 'c' },
		{ "skip-unmappable", no_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ 0 },
	};
	a->rate = TYPE_DEFAULT_RATE;
	optind = 1;
	opterr = 0;
	int c, rc;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if ((rc = parse_rate(optarg, &a->rate)))
				return rc;
			break;
		case 'c':
			if ((rc = parse_caps(optarg, &a->opts.caps)))
				return rc;
			break;
		case 's': a->opts.skip_unmappable = true; break;
		case 'n': a->dry_run = true; break;
		default: return cli_usage("type: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return cli_usage("usage: okvm type [--rate CPS|max] [--caps-lock MODE] "
				 "[--skip-unmappable] [--dry-run] TEXT|-");
	const char *arg = argv[optind];
	if (!strcmp(arg, "-")) {
		int err = read_all(stdin, &a->text, &a->len);
		if (err == -EFBIG)
			return cli_usage("type: standard input is larger than %u MiB",
					 TYPE_MAX_INPUT >> 20);
		if (err)
			return cli_fail("type: cannot read standard input: %s", strerror(-err));
	} else {
		a->text = xstrdup(arg);
		a->len = strlen(arg);
	}
	return CLI_OK;
}

/* Text the layout cannot type is bad input, like an unknown layout: nothing is sent and the exit
 * status is CLI_USAGE. One line names the first such character, its position (in characters from
 * 0) and the way out. */
static int
report_unmappable(const struct type_args *a, const struct okvm_text_error *err, const char *layout)
{
	char shown[16] = "";
	uint32_t cp;
	int n = okvm_utf8_next(a->text + err->byte_offset, a->len - err->byte_offset, &cp);
	if (n > 0 && err->cp >= 0x20 && err->cp != 0x7F)
		snprintf(shown, sizeof(shown), " '%.*s'", n, a->text + err->byte_offset);
	char more[64] = "";
	if (err->unmappable > 1)
		snprintf(more, sizeof(more), "; %zu characters in all", err->unmappable);
	return cli_usage("type: U+%04X%s at %zu is not on layout '%s'%s (use --skip-unmappable, or "
			 "--layout)",
			 (unsigned)err->cp, shown, err->char_index, layout, more);
}

static int
plan_or_report(const struct okvm_keymap *km, const struct type_args *a, const char *layout,
	       struct okvm_text_plan *plan)
{
	struct okvm_text_error err = { 0 };
	int rc = okvm_text_plan(km, a->text, a->len, &a->opts, plan, &err);
	if (rc == 0)
		return CLI_OK;
	if (rc == -EPERM)
		return cli_fail("Caps Lock is on on the target and --caps-lock refuse was given; "
				"nothing sent");
	if (rc == -OKVM_E_UNMAPPABLE)
		return report_unmappable(a, &err, layout);
	if (rc == -EILSEQ)
		return cli_usage("type: %s; nothing sent", err.message);
	return cli_fail("type: %s; nothing sent", err.message);
}

int
cmd_type(struct cli *cli, int argc, char **argv)
{
	struct type_args a = { 0 };
	int rc = type_parse(argc, argv, &a);
	if (rc)
		return rc;
	struct okvm_keymap *km = okvm_keymap_new(cli_layout(cli));
	if (!km) {
		free(a.text);
		return cli_usage("unknown keyboard layout '%s'; see `okvm layouts`",
				 cli_layout(cli));
	}
	struct okvm_text_plan plan = { 0 };
	rc = plan_or_report(km, &a, cli_layout(cli),
			    &plan); /* before opening anything: validate the whole text */
	if (rc || a.dry_run || plan.chars == 0) {
		if (!rc && a.dry_run)
			printf("%zu characters, %zu reports\n", plan.chars, plan.n);
		goto out;
	}
	struct okvm_link *link = NULL;
	rc = cli_open_link(cli, &link);
	if (rc)
		goto out;
	struct okvm_ch9329_info info;
	if (a.opts.caps != OKVM_CAPS_IGNORE && okvm_link_get_info(link, &info, 1000) == 0 &&
	    (info.leds & OKVM_LED_CAPS)) {
		a.opts.leds = info.leds;
		okvm_text_plan_free(&plan);
		rc = plan_or_report(km, &a, cli_layout(cli), &plan);
	}
	if (!rc)
		rc = cli_send_reports(link, plan.reports, plan.char_index, plan.n, a.rate);
	if (!rc && plan.skipped)
		fprintf(stderr, "okvm: skipped %zu character%s the layout '%s' cannot type\n",
			plan.skipped, plan.skipped == 1 ? "" : "s", cli_layout(cli));
	cli_close_link(link);
out:
	okvm_text_plan_free(&plan);
	okvm_keymap_free(km);
	free(a.text);
	return rc;
}

int
cmd_key(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(
			"usage: okvm key COMBO... (e.g. ctrl+alt+delete, enter, volume-up)");
	struct okvm_keymap *km = okvm_keymap_new(cli_layout(cli));
	if (!km)
		return cli_usage("unknown keyboard layout '%s'; see `okvm layouts`",
				 cli_layout(cli));
	int n = argc - 1, rc = CLI_OK;
	struct okvm_combo *combos = xcalloc((size_t)n, sizeof(*combos));
	for (int i = 0; i < n && !rc; i++) {
		char err[200];
		if (okvm_combo_parse(argv[i + 1], km, &combos[i], err, sizeof(err)) < 0)
			rc = cli_usage("%s; nothing sent", err);
	}
	struct okvm_link *link = NULL;
	if (!rc)
		rc = cli_open_link(cli, &link);
	unsigned logged = cli_errors_logged;
	for (int i = 0; i < n && !rc; i++) {
		const struct okvm_combo *c = &combos[i];
		if (!c->is_media) {
			rc = cli_send_reports(link, c->kbd, NULL, (size_t)c->n, 0);
			continue;
		}
		for (int k = 0; k < c->n && !rc; k++)
			if (okvm_link_send_media(link, &c->media[k]) < 0)
				rc = cli_errors_logged != logged
					     ? CLI_FAIL
					     : cli_fail("cannot queue the media key");
		if (!rc && okvm_link_flush(link, FLUSH_TIMEOUT_MS) < 0)
			rc = cli_errors_logged != logged
				     ? CLI_FAIL /* the link said why it died */
				     : cli_fail("the chip did not acknowledge the media key");
	}
	if (link)
		cli_close_link(link);
	free(combos);
	okvm_keymap_free(km);
	return rc;
}
