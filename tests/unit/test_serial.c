/* The serial port on a real pty: termios as the chip needs it, errors a user can act on, modem
 * lines through the datagram side channel (docs/contracts.md section 1), unplug as -ENODEV. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <termios.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake-chip.h"
#include "okvm/log.h"
#include "okvm/serial.h"

static char logbuf[2048];

static void
capture_log(enum okvm_log_level level, const char *fmt, va_list ap, void *ud)
{
	(void)level;
	(void)ud;
	size_t n = strlen(logbuf);
	vsnprintf(logbuf + n, sizeof(logbuf) - n, fmt, ap);
}

static void
reset_log(void)
{
	logbuf[0] = 0;
	okvm_log_set_handler(capture_log, NULL);
}

static void
test_missing_node(void **state)
{
	(void)state;
	reset_log();
	struct okvm_serial *s = NULL;
	assert_int_equal(okvm_serial_open("/dev/ttyNOPE-okvm", 9600, &s), -ENOENT);
	assert_null(s);
	assert_non_null(strstr(logbuf, "no such port"));
	assert_non_null(strstr(logbuf, "okvm list"));
}

static void
test_not_a_tty(void **state)
{
	(void)state;
	reset_log();
	struct okvm_serial *s = NULL;
	assert_int_equal(okvm_serial_open("/dev/null", 9600, &s), -ENOTTY);
	assert_int_equal(okvm_serial_open("/dev/null", 12345, &s), -EINVAL);
}

static void
test_raw_8n1_and_baud(void **state)
{
	(void)state;
	reset_log();
	struct fake_chip c;
	assert_int_equal(fake_chip_open(&c), 0);
	/* the slave starts cooked (echo, CR/LF mapping): open must make it raw */
	struct okvm_serial *s;
	assert_int_equal(okvm_serial_open(c.slave, 9600, &s), 0);
	assert_int_equal(fake_chip_baud(&c), 9600);
	struct termios t;
	assert_int_equal(tcgetattr(okvm_serial_fd(s), &t), 0);
	assert_int_equal(t.c_cflag & CSIZE, CS8);
	assert_false(t.c_cflag & (PARENB | CSTOPB | CRTSCTS));
	assert_false(t.c_lflag & (ECHO | ICANON | ISIG));
	assert_false(t.c_iflag & (ICRNL | IXON));
	assert_false(t.c_oflag & OPOST);
	assert_true(fcntl(okvm_serial_fd(s), F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(okvm_serial_fd(s), F_GETFD) & FD_CLOEXEC);
	/* bytes pass untouched both ways (0x0D, 0x0A, 0x03, 0x11 would be eaten by a cooked tty) */
	static const uint8_t bytes[] = { 0x57, 0xAB, 0x0D, 0x0A, 0x03, 0x11, 0x13, 0x7F, 0x00 };
	assert_int_equal(okvm_serial_write(s, bytes, sizeof(bytes)), sizeof(bytes));
	uint8_t got[16] = { 0 };
	assert_true(fake_chip_has_input(&c, 1000));
	assert_int_equal(read(c.master, got, sizeof(got)), sizeof(bytes));
	assert_memory_equal(got, bytes, sizeof(bytes));
	assert_int_equal(okvm_serial_read(s, got, sizeof(got)), 0); /* nothing now */
	fake_chip_write(&c, bytes, sizeof(bytes));
	struct pollfd pfd = { .fd = okvm_serial_fd(s), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	assert_int_equal(okvm_serial_read(s, got, sizeof(got)), sizeof(bytes));
	assert_memory_equal(got, bytes, sizeof(bytes));
	assert_int_equal(okvm_serial_set_baud(s, 115200), 0);
	assert_int_equal(okvm_serial_baud(s), 115200);
	assert_int_equal(fake_chip_baud(&c), 115200);
	assert_int_equal(okvm_serial_set_baud(s, 100000), -EINVAL);
	/* modem lines on a pty without a socket: not available */
	assert_int_equal(okvm_serial_set_rts(s, true), -ENOTTY);
	okvm_serial_close(s);
	fake_chip_close(&c);
}

static void
test_unplug_is_enodev(void **state)
{
	(void)state;
	reset_log();
	struct fake_chip c;
	assert_int_equal(fake_chip_open(&c), 0);
	struct okvm_serial *s;
	assert_int_equal(okvm_serial_open(c.slave, 115200, &s), 0);
	close(c.slave_fd);
	c.slave_fd = -1;
	fake_chip_unplug(&c);
	uint8_t b[8];
	assert_int_equal(okvm_serial_read(s, b, sizeof(b)), -ENODEV);
	okvm_serial_close(s);
}

/* Run fn as an unprivileged user (root opens anything and ignores TIOCEXCL). */
static void
as_nobody(int (*fn)(const char *path), const char *path)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0))
			_exit(77);
		_exit(fn(path));
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int
open_busy(const char *path)
{
	reset_log();
	struct okvm_serial *s;
	int rc = okvm_serial_open(path, 9600, &s);
	return rc == -EBUSY && strstr(logbuf, "another program") ? 0 : 1;
}

/* A second program gets -EBUSY and a message saying someone holds the port. */
static void
test_exclusive(void **state)
{
	(void)state;
	reset_log();
	struct fake_chip c;
	assert_int_equal(fake_chip_open(&c), 0);
	chmod(c.slave, 0666);
	struct okvm_serial *a;
	assert_int_equal(okvm_serial_open(c.slave, 9600, &a), 0);
	as_nobody(open_busy, c.slave);
	okvm_serial_close(a);
	fake_chip_close(&c);
}

static int
open_denied(const char *path)
{
	reset_log();
	struct okvm_serial *s;
	int rc = okvm_serial_open(path, 9600, &s);
	struct stat st;
	stat(path, &st);
	struct group *gr = getgrgid(st.st_gid);
	char want[64];
	snprintf(want, sizeof(want), "usermod -aG %s", gr ? gr->gr_name : "dialout");
	/* the rules file the project ships (dist/60-okvm.rules; there is no dist/udev/) */
	bool rules = strstr(logbuf, "(dist/60-okvm.rules)") != NULL;
	return rc == -EACCES && strstr(logbuf, want) && rules ? 0 : 1;
}

/* Permission denied names the tty's group to join and the udev rules file that exists. */
static void
test_permission_names_group(void **state)
{
	(void)state;
	reset_log();
	struct fake_chip c;
	assert_int_equal(fake_chip_open(&c), 0);
	chmod(c.slave, 0660);
	as_nobody(open_denied, c.slave);
	fake_chip_close(&c);
}

static int
bind_at(const char *path)
{
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) <
		    (int)sizeof(sa.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void
expect_dgram(int fd, const char *want)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	char buf[32] = { 0 };
	assert_true(recv(fd, buf, sizeof(buf) - 1, 0) > 0);
	assert_string_equal(buf, want);
}

/* PATH.modem next to a tty link: lines deasserted at open, one datagram per change. */
static void
test_modem_socket_next_to_link(void **state)
{
	(void)state;
	reset_log();
	struct fake_chip c;
	assert_int_equal(fake_chip_open(&c), 0);
	char link[64], sock[80];
	snprintf(link, sizeof(link), "/tmp/okvm-test-tty-%d", getpid());
	snprintf(sock, sizeof(sock), "%s.modem", link);
	unlink(link);
	assert_int_equal(symlink(c.slave, link), 0);
	int fd = bind_at(sock);
	struct okvm_serial *s;
	assert_int_equal(okvm_serial_open(link, 9600, &s), 0);
	expect_dgram(fd, "DTR=0");
	expect_dgram(fd, "RTS=0");
	assert_int_equal(okvm_serial_set_rts(s, true), 0);
	expect_dgram(fd, "RTS=1");
	assert_int_equal(okvm_serial_set_dtr(s, true), 0);
	expect_dgram(fd, "DTR=1");
	assert_int_equal(okvm_serial_set_dtr(s, false), 0);
	expect_dgram(fd, "DTR=0");
	okvm_serial_close(s);
	close(fd);
	unlink(sock);
	unlink(link);
	fake_chip_close(&c);
}

/* An explicit socket (an in-process virtual unit). */
static void
test_modem_socket_explicit(void **state)
{
	(void)state;
	reset_log();
	struct fake_chip c;
	assert_int_equal(fake_chip_open(&c), 0);
	char sock[80];
	snprintf(sock, sizeof(sock), "/tmp/okvm-test-explicit-%d", getpid());
	int fd = bind_at(sock);
	struct okvm_serial *s;
	assert_int_equal(okvm_serial_open(c.slave, 9600, &s), 0);
	assert_int_equal(okvm_serial_set_modem_socket(s, sock), 0);
	expect_dgram(fd, "DTR=0");
	expect_dgram(fd, "RTS=0");
	assert_int_equal(okvm_serial_set_rts(s, true), 0);
	expect_dgram(fd, "RTS=1");
	okvm_serial_close(s);
	close(fd);
	unlink(sock);
	fake_chip_close(&c);
}

/*
 * The order of events at open, as the virtual unit's modem socket sees them against the termios
 * calls: tcsetattr is wrapped here, and notes which datagrams were already sent when it ran.
 */
static int order_sock = -1;
static char order_log[256];

static void
note_dgrams(void)
{
	char buf[16];
	ssize_t n;
	while (order_sock >= 0 && (n = recv(order_sock, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[n] = 0;
		strncat(order_log, buf, sizeof(order_log) - strlen(order_log) - 2);
		strcat(order_log, " ");
	}
}

int
tcsetattr(int fd, int act, const struct termios *t)
{
	static int (*real)(int, int, const struct termios *);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "tcsetattr");
	note_dgrams();
	if (order_sock >= 0)
		strncat(order_log, "tcsetattr ", sizeof(order_log) - strlen(order_log) - 1);
	return real(fd, act, t);
}

/* Open NAME (a symlink to the pty in a fresh directory, NAME.modem bound); the log of events. */
static void
open_logged(const char *name, const char *sysfs_root, char *out, size_t cap)
{
	reset_log();
	struct fake_chip c;
	assert_int_equal(fake_chip_open(&c), 0);
	char dir[] = "/tmp/okvm-test-order-XXXXXX", link[128], sock[160];
	assert_non_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/%s", dir, name);
	snprintf(sock, sizeof(sock), "%s.modem", link);
	assert_int_equal(symlink(c.slave, link), 0);
	order_sock = bind_at(sock);
	order_log[0] = 0;
	if (sysfs_root)
		setenv("OKVM_SYSFS_ROOT", sysfs_root, 1);
	struct okvm_serial *s;
	assert_int_equal(okvm_serial_open(link, 9600, &s), 0);
	unsetenv("OKVM_SYSFS_ROOT");
	note_dgrams();
	snprintf(out, cap, "%s", order_log);
	close(order_sock);
	order_sock = -1;
	okvm_serial_close(s);
	unlink(sock);
	unlink(link);
	rmdir(dir);
	fake_chip_close(&c);
}

/*
 * Belief (hardware.md 2.11, v1.9 boards): DTR asserted cuts the switchable USB-A port's ground,
 * and Linux raises DTR on open. A CH340 port: DTR (and RTS) go down before the termios calls
 * (USB control transfers on a real CH340), so the port is unpowered as briefly as possible.
 */
static void
test_dtr_lowered_before_configure(void **state)
{
	(void)state;
	char got[256];
	open_logged("ttyUSB0", NULL, got, sizeof(got));
	assert_string_equal(got, "DTR=0 RTS=0 tcsetattr ");
}

/*
 * Belief (QT PR 649): many CDC-ACM firmwares stop sending while DTR is low, so a CH32V208's
 * ttyACM keeps the lines Linux set. Told by the name, or by sysfs's driver link (cdc_acm) when
 * the name says nothing; a ch341 driver link keeps the CH340 behaviour.
 */
static void
test_cdc_acm_keeps_dtr(void **state)
{
	(void)state;
	char got[256];
	open_logged("ttyACM0", NULL, got, sizeof(got));
	assert_string_equal(got, "tcsetattr ");

	struct fake_chip c;
	assert_int_equal(fake_chip_open(&c), 0);
	const char *pts = strrchr(c.slave, '/') + 1; /* the name sysfs is asked about */
	char root[] = "/tmp/okvm-test-sysfs-XXXXXX", dev[256], drv[300];
	assert_non_null(mkdtemp(root));
	const char *drivers[] = { "cdc_acm", "ch341" },
		   *want[] = { "tcsetattr ", "DTR=0 RTS=0 tcsetattr " };
	for (int i = 0; i < 2; i++) {
		char cmd[600];
		snprintf(dev, sizeof(dev), "%s/class/tty/%s/device", root, pts);
		snprintf(cmd, sizeof(cmd), "rm -rf %s/class && mkdir -p %s", root, dev);
		assert_int_equal(system(cmd), 0);
		snprintf(drv, sizeof(drv), "%s/driver", dev);
		char target[64];
		snprintf(target, sizeof(target), "../../../bus/usb/drivers/%s", drivers[i]);
		assert_int_equal(symlink(target, drv), 0);
		/* the same pty behind a neutral name: only sysfs can tell */
		reset_log();
		char dir[] = "/tmp/okvm-test-order-XXXXXX", link[128], sock[160];
		assert_non_null(mkdtemp(dir));
		snprintf(link, sizeof(link), "%s/kvm", dir);
		snprintf(sock, sizeof(sock), "%s.modem", link);
		assert_int_equal(symlink(c.slave, link), 0);
		order_sock = bind_at(sock);
		order_log[0] = 0;
		setenv("OKVM_SYSFS_ROOT", root, 1);
		struct okvm_serial *s;
		assert_int_equal(okvm_serial_open(link, 9600, &s), 0);
		unsetenv("OKVM_SYSFS_ROOT");
		note_dgrams();
		assert_string_equal(order_log, want[i]);
		close(order_sock);
		order_sock = -1;
		okvm_serial_close(s);
		unlink(sock);
		unlink(link);
		rmdir(dir);
	}
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
	fake_chip_close(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_node),
		cmocka_unit_test(test_not_a_tty),
		cmocka_unit_test(test_raw_8n1_and_baud),
		cmocka_unit_test(test_unplug_is_enodev),
		cmocka_unit_test(test_exclusive),
		cmocka_unit_test(test_permission_names_group),
		cmocka_unit_test(test_modem_socket_next_to_link),
		cmocka_unit_test(test_modem_socket_explicit),
		cmocka_unit_test(test_dtr_lowered_before_configure),
		cmocka_unit_test(test_cdc_acm_keeps_dtr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
