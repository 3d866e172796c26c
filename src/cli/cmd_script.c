/*
 * DESIGN: `okvm script [--format ahk|okvm] [--dry-run] FILE|-`, two languages:
 *
 * The okvm format: okvm commands, one per line, against one unit in one process, so
 * the in-process virtual unit (and its screen) lives from the first line to the last. A line is
 * any okvm command without the leading "okvm" (`type "Hello"`, `key ctrl+alt+delete`,
 * `mouse move 0.5 0.5`, `screenshot -o shot.png`), plus `sleep MS`. The whole script is read
 * and checked (quoting, command names) before the first line runs; a failing line stops the
 * script with "line N:" and that line's exit status. Each command releases what it pressed, as
 * it does on its own.
 *
 * The ahk format (FILE.ahk, or --format ahk): the official Qt app's Script Tool language with
 * okvm's extensions (src/auto/script.h, docs/automation.md). The whole file is parsed and
 * checked against the target layout before the unit is opened; errors are FILE:LINE:COL. It runs
 * on the unit's serve backend (cli_serve_backend), the engine `okvm serve` and `okvm mcp` use,
 * on a worker thread while the main thread turns SIGINT/SIGTERM into the engine's cancel flag;
 * every exit releases all keys and buttons. A Wait* timeout exits 3 and saves the screen as
 * FILE.timeout.jpg beside the script. Main thread only (plus that worker).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auto/console.h"
#include "auto/script.h"
#include "cli/cli.h"
#include "cli/script-parse.h"
#include "lib/xalloc.h"
#include "okvm/error.h"
#include "okvm/unit.h"
#include "power/power.h"
#include "serve/backend.h"

#define CLI_TIMEOUT 3 /* a Wait* statement timed out */

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

void
cmd_script_help(FILE *out)
{
	fputs("usage: okvm script [--format ahk|okvm] [--dry-run] FILE|-\n"
	      "\n"
	      "Run a script against the unit. Two formats, told apart by the file name or\n"
	      "--format:\n"
	      "  FILE.ahk  the official Openterface app's Script Tool language (Send ^c,\n"
	      "            Click 150,300, Sleep 500, SetCapsLockState On, FullScreenCapture\n"
	      "            \"x.png\" ...) with okvm's extensions (WaitText \"login:\", 60;\n"
	      "            WaitScreen, WaitStill, AssertText, Type, Switch, Power); mouse\n"
	      "            coordinates 0..4096 as in the Qt app; see docs/automation.md\n"
	      "  other     okvm commands, one per line (type \"Hi\", key enter, sleep 500)\n"
	      "\n"
	      "The whole script is checked before anything is sent; errors name FILE:LINE:COL.\n"
	      "  --format ahk|okvm  the language, whatever the file is called\n"
	      "  --dry-run          print what would be done, open no unit\n"
	      "\n"
	      "Exit status: 0 done, 1 failed (the line is named), 2 bad script or usage,\n"
	      "3 a Wait* statement timed out (the screen is saved as FILE.timeout.jpg).\n",
	      out);
}

static char *
read_all(FILE *in, size_t max, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = xmalloc(cap);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, in)) > 0) {
		n += got;
		if (n > max)
			break;
		if (n == cap)
			buf = xrealloc(buf, cap *= 2);
	}
	*len = n;
	return buf;
}

struct ahk_watch {
	atomic_bool cancel, done;
};

/* The main thread's half: signals become the engine's cancel flag. */
static void
watch_signals(struct ahk_watch *w)
{
	while (!atomic_load(&w->done)) {
		if (cli_stop_signal)
			atomic_store(&w->cancel, true);
		poll(NULL, 0, 10);
	}
}

struct ahk_job {
	const struct auto_script *s;
	struct auto_script_env env;
	struct auto_script_error err;
	struct ahk_watch *w;
	int rc;
};

static void *
ahk_worker(void *ud)
{
	struct ahk_job *j = ud;
	j->rc = auto_script_run(j->s, &j->env, &j->err);
	atomic_store(&j->w->done, true);
	return NULL;
}

/* Power and the serial console of a script: one adapter, held open by the console while the
 * script runs (it is exclusive), so Power presses through the open port then. */
struct pins {
	struct power_config pc;
	struct auto_console *con; /* NULL: no WaitSerial/SendSerial, or no console */
};

/* Power in a script: the adapter `okvm power` uses ([power] in okvm.conf, or the unit's pins). */
static int
power_cb(void *ud, const char *action)
{
	const struct pins *pn = ud;
	const struct power_config *pc = &pn->pc;
	enum power_action act;
	if (power_action_parse(action, &act))
		return -EINVAL;
	struct power_result res = { 0 };
	struct okvm_serial *port = NULL;
	if (pn->con && pc->device && !strcmp(pc->device, auto_console_path(pn->con)))
		port = auto_console_port(pn->con);
	int rc = power_run_port(pc, port, act, &cli_stop_signal, &res);
	if (rc < 0)
		fprintf(stderr, "okvm: power %s: %s\n", action, res.msg);
	else
		printf("okvm: power %s: %s\n", action, res.msg);
	return rc;
}

static int
serial_wait_cb(void *ud, const char *text, double timeout_s, const atomic_bool *cancel)
{
	return auto_console_wait(((struct pins *)ud)->con, text, timeout_s, cancel);
}

static int
serial_send_cb(void *ud, const char *bytes, size_t len)
{
	return auto_console_send(((struct pins *)ud)->con, bytes, len);
}

static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	char *d = xmalloc((size_t)(slash - path) + 1);
	memcpy(d, path, (size_t)(slash - path));
	d[slash - path] = 0;
	return d;
}

/* FILE.ahk -> FILE.timeout.jpg, beside the script ("-": in the current directory). */
static char *
timeout_name(const char *path)
{
	if (!strcmp(path, "-"))
		return xstrdup("script.timeout.jpg");
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	size_t stem = dot && dot != base ? (size_t)(dot - path) : strlen(path);
	char *out = xmalloc(stem + sizeof(".timeout.jpg"));
	memcpy(out, path, stem);
	memcpy(out + stem, ".timeout.jpg", sizeof(".timeout.jpg"));
	return out;
}

static int
run_ahk(struct cli *cli, const char *name, FILE *in, bool dry_run)
{
	size_t len;
	char *text = read_all(in, 4u << 20, &len);
	if (ferror(in)) {
		free(text);
		return cli_fail("%s: %s", name, strerror(errno));
	}
	const char *shown = strcmp(name, "-") ? name : "<stdin>";
	struct auto_script *s;
	struct auto_script_error err;
	int rc = auto_script_parse(text, len, &s, &err);
	free(text);
	if (rc) {
		fprintf(stderr, "%s:%d:%d: %s\n", shown, err.line, err.col, err.msg);
		return CLI_USAGE;
	}
	const char *layout = cli_layout(cli);
	rc = auto_script_check(s, layout, true, &err);
	if (rc) {
		fprintf(stderr, "%s:%d:%d: %s\n", shown, err.line, err.col, err.msg);
		auto_script_free(s);
		return CLI_USAGE;
	}
	char *dir = dir_of(strcmp(name, "-") ? name : "./-");
	struct ahk_watch w = { 0 };
	struct ahk_job j = { .s = s, .w = &w };
	j.env = (struct auto_script_env){ .layout = layout,
					  .dir = dir,
					  .cancel = &w.cancel,
					  .log = cli->verbose ? stderr : NULL,
					  .out = stdout,
					  .dry_run = dry_run };
	if (dry_run) {
		j.env.log = stdout;
		rc = auto_script_run(s, &j.env, &j.err);
		auto_script_free(s);
		free(dir);
		return rc ? CLI_FAIL : CLI_OK;
	}
	struct serve_backend be;
	struct okvm_unit *unit = NULL;
	if ((rc = cli_serve_backend(cli, "script", false, &be, &unit))) {
		auto_script_free(s);
		free(dir);
		return rc;
	}
	j.env.b = &be;
	/* Power statements need a power backend, WaitSerial and SendSerial the console: found
	   now, before anything is sent (without a console the run refuses them, FILE:LINE:COL). */
	struct pins pn = { .con = NULL };
	power_config_init(&pn.pc);
	bool want_power = auto_script_check(s, layout, false, &err) == -EOPNOTSUPP;
	bool found = (want_power || auto_script_needs_serial(s)) &&
		     cli_power_adapter(cli, NULL, &pn.pc, true) == CLI_OK;
	if (found && auto_script_needs_serial(s)) {
		/* the console's adapter: [power] console, as okvm console finds it */
		const char *tty = pn.pc.console;
		if (tty) {
			rc = auto_console_open(tty, pn.pc.baud, pn.pc.console_modem, &pn.con);
			if (rc < 0) {
				fprintf(stderr, "okvm: script: the serial console %s: %s%s\n", tty,
					okvm_strerror(rc),
					rc == -EBUSY
						? " (another console or a power press holds it)"
						: "");
				be.ops->destroy(be.ud);
				okvm_unit_free(unit);
				power_config_clear(&pn.pc);
				auto_script_free(s);
				free(dir);
				return CLI_FAIL;
			}
			j.env.serial_wait = serial_wait_cb;
			j.env.serial_send = serial_send_cb;
			j.env.serial_ud = &pn;
		}
	}
	if (want_power) {
		if (found && pn.pc.device &&
		    (pn.pc.backend == POWER_BACKEND_SERIAL ||
		     pn.pc.backend == POWER_BACKEND_HIDRELAY)) {
			j.env.power = power_cb;
			j.env.power_ud = &pn;
		} else {
			fprintf(stderr,
				"%s:%d:%d: %s: no USB-serial adapter on its extension pins "
				"and no [power] device in okvm.conf\n",
				shown, err.line, err.col, err.msg);
			be.ops->destroy(be.ud);
			okvm_unit_free(unit);
			auto_console_close(pn.con);
			power_config_clear(&pn.pc);
			auto_script_free(s);
			free(dir);
			return CLI_FAIL;
		}
	}
	char *shot = timeout_name(name);
	j.env.timeout_shot = shot;
	pthread_t t;
	if (pthread_create(&t, NULL, ahk_worker, &j)) {
		j.rc = -EAGAIN;
		snprintf(j.err.msg, sizeof(j.err.msg), "cannot start a thread");
	} else {
		watch_signals(&w);
		pthread_join(t, NULL);
	}
	be.ops->destroy(be.ud); /* frees the link, which releases everything again */
	okvm_unit_free(unit);
	if (j.rc == -ECANCELED && cli_stop_signal)
		rc = cli_fail("%s:%d: interrupted by signal %d; every key and button released",
			      shown, j.err.line, cli_stop_signal);
	else if (j.rc)
		fprintf(stderr, "%s:%d:%d: %s\n", shown, j.err.line, j.err.col, j.err.msg);
	rc = !j.rc ? CLI_OK : j.rc == -ETIMEDOUT ? CLI_TIMEOUT : CLI_FAIL;
	auto_console_close(pn.con);
	power_config_clear(&pn.pc);
	auto_script_free(s);
	free(shot);
	free(dir);
	return rc;
}

static bool
is_ahk_name(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && !strcasecmp(name + n - 4, ".ahk");
}

int
cmd_script(struct cli *cli, int argc, char **argv)
{
	const char *format = NULL, *name = NULL;
	bool dry_run = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--format") && i + 1 < argc)
			format = argv[++i];
		else if (!strncmp(argv[i], "--format=", 9))
			format = argv[i] + 9;
		else if (!strcmp(argv[i], "--dry-run"))
			dry_run = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return cli_usage("script: unknown option '%s'; see `okvm script --help`",
					 argv[i]);
		else if (name)
			return cli_usage(
				"usage: okvm script [--format ahk|okvm] [--dry-run] FILE|-");
		else
			name = argv[i];
	}
	if (!name)
		return cli_usage("usage: okvm script [--format ahk|okvm] [--dry-run] FILE|-");
	if (format && strcmp(format, "ahk") && strcmp(format, "okvm"))
		return cli_usage("script: --format %s: expected ahk (the Qt app's Script Tool) or "
				 "okvm (okvm commands)",
				 format);
	bool ahk = format ? !strcmp(format, "ahk") : is_ahk_name(name);
	FILE *in = strcmp(name, "-") ? fopen(name, "r") : stdin;
	if (!in)
		return cli_fail("%s: %s", name, strerror(errno));
	if (ahk) {
		int rc = run_ahk(cli, name, in, dry_run);
		if (in != stdin)
			fclose(in);
		return rc;
	}
	struct script s = { 0 };
	int rc = script_load(in, name, &s);
	if (in != stdin)
		fclose(in);
	if (dry_run) {
		for (size_t i = 0; i < s.n && rc == CLI_OK; i++) {
			printf("line %d:", s.lineno[i]);
			for (int k = 0; k < s.lines[i].argc; k++)
				printf(" %s", s.lines[i].argv[k]);
			putchar('\n');
		}
		script_free(&s);
		return rc;
	}
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
