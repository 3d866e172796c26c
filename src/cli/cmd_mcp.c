/*
 * DESIGN: `okvm mcp`, the MCP server over stdio (docs/automation.md, "MCP"): one JSON-RPC
 * message per line on stdin, one answer per line on stdout, log lines on stderr only.
 *
 * The unit is opened as `okvm serve` opens it (the same backend, src/serve/backend-unit.c) and
 * driven by the MCP core (src/auto/mcp.c) on the main thread, one request at a time, so the
 * backend's operations all come from one thread as it wants. A thread named okvm-mcp-in reads
 * stdin meanwhile: it queues the lines and, while a long tool runs (wait_for_text,
 * execute_script), cancels it when the client sends notifications/cancelled for it, when a
 * signal comes, or when the client is gone (stdin at EOF and stdout's reader gone). EOF ends
 * the server once the requests read before it are answered: the backend is destroyed, which
 * releases every key and button. The target's serial console (the adapter `okvm console`
 * uses), when the unit has one, is opened for the whole session: the serial_* tools and
 * execute_script's WaitSerial/SendSerial use it.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "auto/console.h"
#include "auto/mcp.h"
#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/log.h"
#include "okvm/unit.h"
#include "power/power.h"
#include "serve/backend.h"
#include "lib/thread.h"
#include "lib/xalloc.h"

#define MCP_MAX_LINE (16u << 20) /* one message; longer: a parse error, the rest dropped */

void
cmd_mcp_help(FILE *out)
{
	fputs("usage: okvm mcp [--ocr-lang LANG] [--type-cps N] [--dir DIR]\n"
	      "  An MCP (Model Context Protocol) server on stdin/stdout for AI agents: one\n"
	      "  JSON-RPC message per line; logs go to stderr. Tools: mouse, keyboard, screenshots,\n"
	      "  OCR, waits, scripts and the target's serial console (docs/automation.md,\n"
	      "  \"MCP\"). Ends at EOF on stdin, releasing every key and button.\n"
	      "\n"
	      "  --ocr-lang LANG   tesseract language(s) of screen_text and wait_for_text\n"
	      "                    (default eng; deu+eng...)\n"
	      "  --type-cps N      keyboard_type_text's speed in characters per second (default:\n"
	      "                    as fast as the link allows)\n"
	      "  --dir DIR         where execute_script's relative paths point (default: .)\n"
	      "  --layout XKB      (global) the target's keyboard layout (default us)\n"
	      "  -d emu, -d N, --serial PATH ...  (global) the unit, as for okvm serve\n"
	      "\n"
	      "  MCP client config: {\"command\": \"okvm\", \"args\": [\"mcp\", \"-d\", \"1\"]}\n",
	      out);
}

struct line {
	struct line *next;
	size_t len;
	char text[];
};

struct input {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct line *head, *tail;
	bool eof;
	atomic_bool cancel; /* of the request being handled */
	char *cur_id;       /* its id as JSON text (NULL: none) */
	bool too_long;      /* the line being read is past MCP_MAX_LINE */
	bool done;          /* the main thread is finished with the lines */
	bool gone;          /* stdout's reader left, or a signal came: cancel whatever comes */
};

/* notifications/cancelled for the request being handled? */
static void
check_cancel(struct input *in, const char *text, size_t len)
{
	if (!strstr(text, "notifications/cancelled"))
		return;
	cJSON *o = cJSON_ParseWithLength(text, len);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "params");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "requestId");
	char *idtxt = id ? cJSON_PrintUnformatted(id) : NULL;
	pthread_mutex_lock(&in->lock);
	if (idtxt && in->cur_id && !strcmp(idtxt, in->cur_id))
		atomic_store(&in->cancel, true);
	pthread_mutex_unlock(&in->lock);
	free(idtxt);
	cJSON_Delete(o);
}

static void
push_line(struct input *in, const char *text, size_t len)
{
	while (len && (text[len - 1] == '\r' || text[len - 1] == ' '))
		len--;
	if (!len)
		return;
	check_cancel(in, text, len);
	struct line *l = xmalloc(sizeof(*l) + len + 1);
	l->next = NULL;
	l->len = len;
	memcpy(l->text, text, len);
	l->text[len] = 0;
	pthread_mutex_lock(&in->lock);
	if (in->tail)
		in->tail->next = l;
	else
		in->head = l;
	in->tail = l;
	pthread_cond_signal(&in->cond);
	pthread_mutex_unlock(&in->lock);
}

static void
set_eof(struct input *in)
{
	pthread_mutex_lock(&in->lock);
	in->eof = true;
	pthread_cond_signal(&in->cond);
	pthread_mutex_unlock(&in->lock);
}

/* After EOF the requests already read are still answered, unless stdout's reader is gone too
 * (or a signal came): then the one running is cancelled. */
static void
watch_stdout(struct input *in)
{
	for (;;) {
		pthread_mutex_lock(&in->lock);
		bool done = in->done;
		pthread_mutex_unlock(&in->lock);
		if (done)
			return;
		struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };
		if (cli_stop_signal ||
		    (poll(&p, 1, 100) > 0 && (p.revents & (POLLERR | POLLHUP)))) {
			atomic_store(&in->cancel, true);
			pthread_mutex_lock(&in->lock);
			in->gone = true;
			pthread_mutex_unlock(&in->lock);
			return;
		}
	}
}

static void *
reader(void *ud)
{
	struct input *in = ud;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	while (!cli_stop_signal) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		int n = poll(&p, 1, 100);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			buf = xrealloc(buf, cap);
		}
		ssize_t r = read(STDIN_FILENO, buf + len, cap - len);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		size_t start = 0;
		for (char *nl; (nl = memchr(buf + start, '\n', len - start));) {
			size_t end = (size_t)(nl - buf);
			if (!in->too_long)
				push_line(in, buf + start, end - start);
			in->too_long = false;
			start = end + 1;
		}
		memmove(buf, buf + start, len - start);
		len -= start;
		if (len > MCP_MAX_LINE) {
			if (!in->too_long)
				push_line(in, "{", 1); /* answered with a parse error */
			in->too_long = true;
			len = 0;
		}
	}
	if (len && !in->too_long)
		push_line(in, buf, len); /* a last message without its newline */
	free(buf);
	set_eof(in);
	watch_stdout(in);
	return NULL;
}

/* The next line, or NULL at EOF (or a signal). */
static struct line *
next_line(struct input *in)
{
	pthread_mutex_lock(&in->lock);
	while (!in->head && !in->eof && !cli_stop_signal) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000L;
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_sec++, ts.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&in->cond, &in->lock, &ts);
	}
	struct line *l = in->head;
	if (l && !cli_stop_signal) {
		in->head = l->next;
		if (!in->head)
			in->tail = NULL;
	} else {
		l = NULL;
	}
	pthread_mutex_unlock(&in->lock);
	return l;
}

static void
set_current(struct input *in, const char *text, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(text, len);
	const cJSON *id = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "id") : NULL;
	char *idtxt = id ? cJSON_PrintUnformatted(id) : NULL;
	cJSON_Delete(o);
	pthread_mutex_lock(&in->lock);
	free(in->cur_id);
	in->cur_id = idtxt;
	if (!in->gone && !cli_stop_signal)
		atomic_store(&in->cancel, false);
	pthread_mutex_unlock(&in->lock);
}

enum { O_LANG = 1, O_CPS, O_DIR };

static const struct option opts[] = {
	{ "ocr-lang", required_argument, NULL, O_LANG },
	{ "type-cps", required_argument, NULL, O_CPS },
	{ "dir", required_argument, NULL, O_DIR },
	{ 0 },
};

static int
parse(int argc, char **argv, struct mcp_config *cfg)
{
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case O_LANG: cfg->ocr_lang = optarg; break;
		case O_DIR: cfg->dir = optarg; break;
		case O_CPS:
			cfg->type_cps = strtod(optarg, &end);
			if (end == optarg || *end || cfg->type_cps < 0 || cfg->type_cps > 10000)
				return cli_usage("mcp: --type-cps wants a number from 0 to 10000");
			break;
		case ':': return cli_usage("mcp: %s needs a value", argv[optind - 1]);
		default:
			return cli_usage("mcp: unknown option '%s' (see okvm mcp --help)",
					 argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("mcp: unexpected argument '%s'", argv[optind]);
	return 0;
}

/* One answer line on stdout; false when the client is gone. */
static bool
answer(const char *txt)
{
	return fputs(txt, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
}

int
cmd_mcp(struct cli *cli, int argc, char **argv)
{
	struct mcp_config cfg = { .layout = cli_layout(cli), .transport = "stdio" };
	int rc = parse(argc, argv, &cfg);
	if (rc)
		return rc;
	if (isatty(STDOUT_FILENO))
		okvm_log(OKVM_LOG_WARN, "mcp: stdout is a terminal; this is a server for an MCP "
					"client (see okvm mcp --help)");
	struct serve_backend be;
	struct okvm_unit *unit = NULL;
	if ((rc = cli_serve_backend(cli, "mcp", true, &be, &unit)))
		return rc;
	be.ops->set_notify(be.ud, NULL, NULL, NULL);
	signal(SIGPIPE, SIG_IGN); /* a client gone: write fails, the loop ends */
	cfg.b = &be;
	/* The serial console, if the unit has one (quiet when it has none). */
	struct power_config pc;
	power_config_init(&pc);
	if (cli_power_adapter(cli, NULL, &pc, true) == CLI_OK && pc.console) {
		int crc = auto_console_open(pc.console, pc.baud, pc.console_modem, &cfg.console);
		if (crc < 0)
			okvm_log(OKVM_LOG_WARN,
				 "mcp: the serial console %s: %s; serial_* tools off", pc.console,
				 okvm_strerror(crc));
		else
			okvm_log(OKVM_LOG_INFO, "mcp: the serial console is %s", pc.console);
	}
	power_config_clear(&pc);
	struct mcp *m = mcp_new(&cfg);
	struct input in = { .eof = false };
	pthread_mutex_init(&in.lock, NULL);
	pthread_cond_init(&in.cond, NULL);
	pthread_t rd;
	rc = thread_start(&rd, "okvm-mcp-in", reader, &in);
	if (rc) {
		rc = cli_fail("mcp: cannot start a thread: %s", strerror(-rc));
	} else {
		okvm_log(OKVM_LOG_INFO, "mcp: serving MCP on stdio");
		struct line *l;
		while ((l = next_line(&in))) {
			set_current(&in, l->text, l->len);
			char *out = mcp_handle(m, l->text, l->len, &in.cancel);
			free(l);
			bool alive = !out || answer(out);
			free(out);
			if (!alive)
				break;
		}
		be.ops->release_all(be.ud);
		pthread_mutex_lock(&in.lock);
		in.done = true;
		bool eof = in.eof;
		pthread_mutex_unlock(&in.lock);
		/* The reader ends at EOF or a signal; a client that stopped reading but keeps
		 * stdin open is left by closing stdin. */
		if (!eof)
			close(STDIN_FILENO);
		pthread_join(rd, NULL);
	}
	for (struct line *l = in.head, *n; l; l = n) {
		n = l->next;
		free(l);
	}
	free(in.cur_id);
	pthread_cond_destroy(&in.cond);
	pthread_mutex_destroy(&in.lock);
	mcp_free(m);
	auto_console_close(cfg.console);
	be.ops->destroy(be.ud);
	okvm_unit_free(unit);
	return rc;
}
