/*
 * DESIGN: `okvm script FILE|-`: okvm commands, one per line, against one unit in one process, so
 * the in-process virtual unit (and its screen) lives from the first line to the last. A line is
 * any okvm command without the leading "okvm" (`type "Hello"`, `key ctrl+alt+delete`,
 * `mouse move 0.5 0.5`, `screenshot -o shot.png`), plus `sleep MS`. The whole script is read
 * and checked (quoting, command names) before the first line runs; a failing line stops the
 * script with "line N:" and that line's exit status. Each command releases what it pressed, as
 * it does on its own. Main thread only.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/script-parse.h"
#include "lib/xalloc.h"

#define SCRIPT_MAX_BYTES (4u << 20)
#define SCRIPT_MAX_SLEEP_MS 3600000

struct script {
	struct script_line *lines;
	int *lineno;
	size_t n;
};

static void
script_free(struct script *s)
{
	for (size_t i = 0; i < s->n; i++)
		script_line_free(&s->lines[i]);
	free(s->lines);
	free(s->lineno);
}

static int
check_line(const struct script_line *l, int lineno)
{
	/* The command name as it will run: after the line's own global options (--layout de). */
	struct cli scratch = { 0 };
	char *argv[SCRIPT_MAX_ARGS + 2] = { "okvm" };
	memcpy(argv + 1, l->argv, sizeof(char *) * (size_t)(l->argc + 1));
	int argc = l->argc + 1;
	bool help = false;
	if (cli_extract_globals(&scratch, &argc, argv, &help))
		return cli_usage("line %d: bad option", lineno);
	if (argc < 2)
		return cli_usage("line %d: options but no command", lineno);
	const char *name = argv[1];
	if (!strcmp(name, "sleep")) {
		char *end;
		long ms = l->argc == 2 ? strtol(l->argv[1], &end, 10) : -1;
		if (l->argc != 2 || *end || end == l->argv[1] || ms < 0 || ms > SCRIPT_MAX_SLEEP_MS)
			return cli_usage("line %d: sleep takes milliseconds (0-%d)", lineno,
					 SCRIPT_MAX_SLEEP_MS);
		return CLI_OK;
	}
	const struct cli_command *c = cli_find_command(name);
	if (!c)
		return cli_usage("line %d: unknown command '%s'", lineno, name);
	if (!strcmp(name, "script") || !strcmp(name, "serve") || !strcmp(name, "emulate"))
		return cli_usage("line %d: '%s' cannot run inside a script", lineno, name);
	return CLI_OK;
}

static int
script_load(FILE *in, const char *name, struct script *s)
{
	char *line = NULL;
	size_t cap = 0, total = 0;
	ssize_t len;
	int lineno = 0, rc = CLI_OK;
	while (rc == CLI_OK && (len = getline(&line, &cap, in)) >= 0) {
		lineno++;
		total += (size_t)len;
		if (total > SCRIPT_MAX_BYTES) {
			rc = cli_usage("%s: larger than %u MiB", name, SCRIPT_MAX_BYTES >> 20);
			break;
		}
		struct script_line l;
		const char *why;
		if (script_split(line, (size_t)len, &l, &why) < 0) {
			rc = cli_usage("%s: line %d: %s", name, lineno, why);
			break;
		}
		if (l.argc == 0) {
			script_line_free(&l);
			continue;
		}
		rc = check_line(&l, lineno);
		s->lines = xrealloc(s->lines, (s->n + 1) * sizeof(*s->lines));
		s->lineno = xrealloc(s->lineno, (s->n + 1) * sizeof(*s->lineno));
		s->lines[s->n] = l;
		s->lineno[s->n++] = lineno;
	}
	free(line);
	return rc;
}

static int
run_line(struct cli *base, struct script_line *l)
{
	if (!strcmp(l->argv[0], "sleep")) {
		int left = (int)strtol(l->argv[1], NULL, 10); /* checked by check_line */
		while (left > 0 && !cli_stop_signal) {
			int step = left > 100 ? 100 : left;
			poll(NULL, 0, step); /* a scripted delay, interruptible by signals */
			left -= step;
		}
		return cli_stop_signal ? cli_fail("interrupted by signal %d", cli_stop_signal) : 0;
	}
	struct cli c = *base;
	int argc = l->argc + 1;
	char *argv[SCRIPT_MAX_ARGS + 2];
	argv[0] = "okvm";
	memcpy(argv + 1, l->argv, sizeof(char *) * (size_t)(l->argc + 1));
	bool help = false;
	int rc = cli_extract_globals(&c, &argc, argv, &help);
	if (rc)
		return rc;
	return cli_find_command(argv[1])->fn(&c, argc - 1, argv + 1);
}

int
cmd_script(struct cli *cli, int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("usage: okvm script FILE|-");
	const char *name = argv[1];
	FILE *in = strcmp(name, "-") ? fopen(name, "r") : stdin;
	if (!in)
		return cli_fail("%s: %s", name, strerror(errno));
	struct script s = { 0 };
	int rc = script_load(in, name, &s);
	if (in != stdin)
		fclose(in);
	cli_emu_hold(true); /* one virtual unit for the whole script */
	for (size_t i = 0; i < s.n && rc == CLI_OK; i++) {
		if (cli_stop_signal) {
			rc = cli_fail("interrupted by signal %d before line %d", cli_stop_signal,
				      s.lineno[i]);
			break;
		}
		rc = run_line(cli, &s.lines[i]);
		if (rc)
			fprintf(stderr, "okvm: script %s stopped at line %d\n", name, s.lineno[i]);
	}
	cli_emu_hold(false);
	script_free(&s);
	return rc;
}
