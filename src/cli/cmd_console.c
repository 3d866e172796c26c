/*
 * DESIGN: `okvm console [TTY] [--baud N] [--log FILE]`: the target's serial console through the
 * USB-serial adapter on the unit's extension pins (found as `okvm power` finds it: [power]
 * device, -d emu's virtual adapter, else the unit's chain + ".4"), or any tty by path. A raw
 * terminal like picocom: the terminal goes raw, every key goes to the target as typed, what
 * the target prints goes to stdout (and to --log FILE, appended). Ctrl-] is the escape key:
 * Ctrl-] q leaves, Ctrl-] b sends a break, Ctrl-] Ctrl-] sends a Ctrl-] itself. With stdin not
 * a terminal (a pipe), its bytes are sent as they come and its end leaves the console reading
 * until SIGINT/SIGTERM. The adapter is opened like the CH9329's port (exclusive, DTR and RTS
 * released: the power and reset buttons stay up). One thread, one poll() loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/serial.h"
#include "power/power.h"

#define ESCAPE_KEY 0x1d /* Ctrl-] (telnet's) */

struct console_opts {
	const char *tty, *log, *config;
	int baud;
};

void
cmd_console_help(FILE *out)
{
	fputs("usage: okvm console [TTY] [--baud N] [--log FILE]\n"
	      "  The target's serial console through the USB-serial adapter on the unit's\n"
	      "  extension pins (or TTY): a raw terminal. Ctrl-] q leaves, Ctrl-] b sends a\n"
	      "  break, Ctrl-] Ctrl-] sends Ctrl-]. docs/power.md.\n"
	      "  --baud N       the console's speed (default 115200, or [power] baud)\n"
	      "  --log FILE     append everything the target prints to FILE\n"
	      "  --config FILE  okvm.conf whose [power] device names the adapter\n",
	      out);
}

static int
parse_opts(int argc, char **argv, struct console_opts *o)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' },
		{ 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'l')
			o->log = optarg;
		else if (c == 'c')
			o->config = optarg;
		else
			return cli_usage("console: unknown option '%s' (okvm console --help)",
					 argv[optind - 1]);
	}
	if (optind + 1 < argc)
		return cli_usage("console: unexpected argument '%s'", argv[optind + 1]);
	o->tty = optind < argc ? argv[optind] : NULL;
	return CLI_OK;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, 100);
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct session {
	struct okvm_serial *port;
	int log;
	bool escape; /* the escape key came last */
	bool quit;
};

/* Keys typed: the escape sequence, or bytes for the target. */
static int
keys(struct session *s, const uint8_t *p, size_t n)
{
	uint8_t out[512];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s->escape) {
			s->escape = false;
			if (p[i] == 'q' || p[i] == '.') {
				s->quit = true;
				break;
			}
			if (p[i] == 'b') {
				okvm_serial_send_break(s->port);
				continue;
			}
			if (p[i] != ESCAPE_KEY)
				continue; /* not a command: dropped, as picocom does */
		} else if (p[i] == ESCAPE_KEY) {
			s->escape = true;
			continue;
		}
		out[k++] = p[i];
	}
	return k ? (int)okvm_serial_write(s->port, out, k) : 0;
}

static int
from_target(struct session *s)
{
	uint8_t buf[4096];
	ssize_t n = okvm_serial_read(s->port, buf, sizeof(buf));
	if (n <= 0)
		return (int)n;
	if (s->log >= 0 && write_all(s->log, buf, (size_t)n) < 0) {
		close(s->log);
		s->log = -1;
		fprintf(stderr, "okvm: console: the log stopped: %s\n", strerror(errno));
	}
	return write_all(STDOUT_FILENO, buf, (size_t)n);
}

static int
loop(struct session *s, bool tty_in)
{
	bool in_open = true;
	while (!s->quit && !cli_stop_signal) {
		struct pollfd p[2] = {
			{ .fd = okvm_serial_fd(s->port), .events = POLLIN },
			{ .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN },
		};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			int rc = from_target(s);
			if (rc < 0)
				return rc;
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			uint8_t buf[512];
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0 && !tty_in) {
				in_open = false; /* keep reading the target */
			} else if (n <= 0) {
				return 0;
			} else {
				int rc = keys(s, buf, (size_t)n);
				if (rc < 0)
					return rc;
			}
		}
	}
	return 0;
}

static int
find_tty(struct cli *cli, const struct console_opts *o, char **path, int *baud)
{
	struct power_config pc;
	power_config_init(&pc);
	int rc = cli_power_adapter(cli, o->config, &pc, false);
	if (!rc && !pc.console)
		rc = cli_fail("console: no serial console: [power] console = none, or no "
			      "USB-serial adapter on the unit's pins (give the TTY, or console = "
			      "TTY in [power])");
	if (!rc) {
		*path = strdup(pc.console);
		*baud = pc.baud;
	}
	power_config_clear(&pc);
	return rc;
}

int
cmd_console(struct cli *cli, int argc, char **argv)
{
	struct console_opts o = { 0 };
	int rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc;
	char *path = NULL;
	int baud = POWER_DEFAULT_BAUD;
	if (o.tty)
		path = strdup(o.tty);
	else if ((rc = find_tty(cli, &o, &path, &baud)))
		return rc;
	if (cli->baud)
		baud = cli->baud; /* the global --baud */
	struct session s = { .log = -1 };
	if (o.log && (s.log = open(o.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
		rc = cli_fail("console: cannot write %s: %s", o.log, strerror(errno));
		free(path);
		return rc;
	}
	rc = okvm_serial_open(path, baud, &s.port);
	if (rc < 0) {
		int r = cli_fail("console: %s: %s%s", path, okvm_strerror(rc),
				 rc == -EBUSY ? " (another console or a power press holds it)"
					      : "");
		free(path);
		if (s.log >= 0)
			close(s.log);
		return r;
	}
	cli_install_signals();
	bool tty_in = isatty(STDIN_FILENO);
	struct termios saved;
	if (tty_in) {
		tcgetattr(STDIN_FILENO, &saved);
		struct termios raw = saved;
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		fprintf(stderr, "okvm: console on %s at %d baud; Ctrl-] q to leave\r\n", path,
			baud);
	}
	rc = loop(&s, tty_in);
	if (tty_in)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	okvm_serial_close(s.port);
	if (s.log >= 0)
		close(s.log);
	int r = rc < 0 ? cli_fail("console: %s: %s", path,
				  rc == -ENODEV ? "the adapter went away" : okvm_strerror(rc))
		       : CLI_OK;
	free(path);
	return r;
}
