/*
 * The unit layer (okvm/unit.h): resolving -d specs against recorded sysfs trees, the baud it
 * chooses, following a unit by its port chain when the tree changes, and opening a link on a
 * scripted fake chip (tests/unit/fake-chip.c) through --serial and through the virtual unit's
 * parts; the unit's video chip and capture (hidraw node, the parts', none for a bare tty).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "emu/sysfs-writer.h"
#include "fake-chip.h"
#include "okvm/log.h"
#include "okvm/unit.h"
#include "srcroot.h"

static const uint8_t GET_INFO[] = { 0x57, 0xAB, 0x00, 0x01, 0x00, 0x03 };
static const uint8_t INFO_REPLY[] = { 0x57, 0xAB, 0x00, 0x81, 0x08, 0x38, 0x01,
				      0x00, 0,    0,    0,    0,    0,    0xC4 };

static char root_buf[PATH_MAX + 128];

static const char *
fixture(const char *name)
{
	snprintf(root_buf, sizeof(root_buf), "%s/tests/fixtures/sysfs/%s", test_source_root(),
		 name);
	return root_buf;
}

static int
resolve(const char *tree, const char *device, struct okvm_unit **u)
{
	struct okvm_unit_spec spec = { .device = device, .sysfs_root = fixture(tree) };
	return okvm_unit_new(&spec, u);
}

static void
test_resolve_number(void **state)
{
	struct okvm_unit *u;
	assert_int_equal(resolve("two-mini-kvms", "1", &u), 0);
	const struct okvm_unit_info *ui = okvm_unit_info(u);
	assert_non_null(ui);
	assert_string_equal(ui->port_chain, "1-2");
	assert_string_equal(okvm_unit_serial_path(u), "/dev/ttyUSB1");
	assert_string_equal(okvm_unit_name(u), "Openterface 1-2");
	assert_int_equal(okvm_unit_baud(u), 0); /* CH9329: detect */
	assert_null(okvm_unit_link(u));
	okvm_unit_free(u);

	assert_int_equal(resolve("two-mini-kvms", NULL, &u), 0); /* the first found */
	assert_string_equal(okvm_unit_info(u)->port_chain, "1-2");
	okvm_unit_free(u);
}

static void
test_resolve_chain(void **state)
{
	struct okvm_unit *u;
	assert_int_equal(resolve("two-mini-kvms", "3-3", &u), 0);
	assert_string_equal(okvm_unit_info(u)->port_chain, "3-3");
	assert_string_equal(okvm_unit_serial_path(u), "/dev/ttyUSB0");
	okvm_unit_free(u);

	assert_int_equal(resolve("two-mini-kvms", "1-2.2", &u), 0); /* its CH340's chain */
	assert_string_equal(okvm_unit_info(u)->port_chain, "1-2");
	assert_string_equal(okvm_unit_serial_path(u), "/dev/ttyUSB1");
	okvm_unit_free(u);
}

static void
test_no_match(void **state)
{
	struct okvm_unit *u = NULL;
	assert_int_equal(resolve("two-mini-kvms", "4-4", &u), -ENOENT);
	assert_int_equal(resolve("two-mini-kvms", "9", &u), -ENOENT);
	assert_int_equal(resolve("two-mini-kvms", "", &u), -ENOENT);
	struct okvm_unit_spec spec = { .sysfs_root = "/nonexistent/okvm-sysfs" };
	assert_int_equal(okvm_unit_new(&spec, &u), -ENOENT); /* no USB tree: no unit */
	assert_null(u);
}

static void
test_paths_are_not_discovered(void **state)
{
	struct okvm_unit *u;
	struct okvm_unit_spec spec = { .device = "/dev/ttyUSB7",
				       .sysfs_root = "/nonexistent/okvm-sysfs" };
	assert_int_equal(okvm_unit_new(&spec, &u), 0);
	assert_null(okvm_unit_info(u));
	assert_string_equal(okvm_unit_name(u), "/dev/ttyUSB7");
	assert_string_equal(okvm_unit_serial_path(u), "/dev/ttyUSB7");
	char buf[64];
	assert_int_equal(okvm_unit_locate_serial(u, buf, sizeof(buf)), -ENODEV);
	assert_int_equal(okvm_unit_get_fd(u), -1);
	okvm_unit_free(u);

	spec.serial = "/dev/ttyS3"; /* --serial wins over -d */
	assert_int_equal(okvm_unit_new(&spec, &u), 0);
	assert_string_equal(okvm_unit_serial_path(u), "/dev/ttyS3");
	okvm_unit_free(u);
}

static void
test_kvm_go_fixed_baud(void **state)
{
	struct okvm_unit *u;
	assert_int_equal(resolve("kvm-go-usb2", NULL, &u), 0);
	assert_string_equal(okvm_unit_serial_path(u), "/dev/ttyACM0");
	assert_int_equal(okvm_unit_baud(u), 115200); /* CH32V208: hardware.md 2.1 */
	okvm_unit_free(u);

	struct okvm_unit_spec spec = { .sysfs_root = fixture("kvm-go-usb2"), .baud = 9600 };
	assert_int_equal(okvm_unit_new(&spec, &u), 0);
	assert_int_equal(okvm_unit_baud(u), 9600); /* --baud wins */
	okvm_unit_free(u);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Every directory or link called ttyUSB9: the tty below the CH340's interface and its class
 * link (nftw has no user pointer). Removed after the walk, as when ch341 is not loaded. */
static char tty_paths[8][PATH_MAX];
static int n_tty_paths;

static int
find_tty(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (!strcmp(path + ftw->base, "ttyUSB9") && n_tty_paths < 8)
		snprintf(tty_paths[n_tty_paths++], PATH_MAX, "%s", path);
	return 0;
}

static void
remove_tty(const char *dir)
{
	n_tty_paths = 0;
	nftw(dir, find_tty, 16, FTW_PHYS);
	assert_true(n_tty_paths >= 1);
	for (int i = n_tty_paths - 1; i >= 0; i--)
		if (unlink(tty_paths[i]) != 0)
			rm_tree(tty_paths[i]);
}

static void
test_no_serial_node(void **state)
{
	char dir[] = "/tmp/okvm-unit-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct emu_sysfs_unit eu = { "2-4", "ttyUSB9", "hidraw3", 6, 4, NULL };
	assert_int_equal(emu_sysfs_write(dir, &eu), 0);
	remove_tty(dir);
	struct okvm_unit *u;
	struct okvm_unit_spec spec = { .sysfs_root = dir };
	assert_int_equal(okvm_unit_new(&spec, &u), 0);
	assert_string_equal(okvm_unit_info(u)->port_chain, "2-4");
	assert_string_equal(okvm_unit_info(u)->video_node, "/dev/video6");
	assert_string_equal(okvm_unit_serial_path(u), "");
	assert_int_equal(okvm_unit_connect(u), -ENODEV);
	okvm_unit_free(u);
	struct okvm_unit *none = NULL;
	assert_int_equal(okvm_unit_open(&spec, &none), -ENODEV);
	assert_null(none);
	rm_tree(dir);
}

/* Dispatch the unit (as a poll loop would) until its video node is want (NULL: none), 5 s at
 * most. The tree changes in steps, so intermediate scans may see something else. */
static void
wait_video(struct okvm_unit *u, const char *want)
{
	struct pollfd p = { .fd = okvm_unit_get_fd(u), .events = POLLIN };
	assert_true(p.fd >= 0);
	char buf[64];
	for (int i = 0; i < 250; i++) {
		assert_true(poll(&p, 1, 5000) > 0);
		assert_true(okvm_unit_dispatch(u) >= 0);
		int rc = okvm_unit_locate_video(u, buf, sizeof(buf));
		if (want ? rc == 0 && !strcmp(buf, want) : rc == -ENODEV)
			return;
	}
	fail_msg("the unit's video node never became %s", want ? want : "none");
}

static void
test_locate_after_replug(void **state)
{
	char dir[] = "/tmp/okvm-unit-XXXXXX";
	assert_non_null(mkdtemp(dir));
	/* /dev/ttyUSB5 does not exist here (udev has not made it); /dev/null does, and stands
	 * for the tty of the re-plugged unit. */
	struct emu_sysfs_unit before = { "2-4", "ttyUSB5", "hidraw3", 6, 4, NULL };
	struct emu_sysfs_unit after = { "2-4", "null", "hidraw4", 8, 4, NULL };
	struct emu_sysfs_unit other = { "1-1", "ttyUSB0", "hidraw0", 0, 1, NULL };
	assert_int_equal(emu_sysfs_write(dir, &before), 0);
	struct okvm_unit *u, *slow;
	struct okvm_unit_spec spec = { .device = "2-4", .sysfs_root = dir, .rescan_ms = 20 };
	assert_int_equal(okvm_unit_new(&spec, &u), 0);
	spec.rescan_ms = 60000; /* its watch rescans only once */
	assert_int_equal(okvm_unit_new(&spec, &slow), 0);
	char buf[64];
	assert_int_equal(okvm_unit_locate_video(u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/dev/video6");
	assert_int_equal(okvm_unit_locate_video(slow, buf, sizeof(buf)), 0);
	assert_int_equal(okvm_unit_locate_serial(u, buf, sizeof(buf)), -ENODEV); /* no node */
	assert_int_equal(okvm_unit_locate_video(u, buf, 4), -ENOSPC);

	/* unplug, another unit arrives first, re-plug with other node names */
	assert_int_equal(emu_sysfs_remove(dir, &before), 0);
	assert_int_equal(emu_sysfs_write(dir, &other), 0);
	assert_int_equal(emu_sysfs_write(dir, &after), 0);
	wait_video(u, "/dev/video8");
	assert_int_equal(okvm_unit_locate_serial(u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/dev/null");
	/* the answer comes from the watch's last scan, not from a fresh one */
	assert_int_equal(okvm_unit_locate_video(slow, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/dev/video6");

	assert_int_equal(emu_sysfs_remove(dir, &after), 0); /* gone again */
	wait_video(u, NULL);
	assert_int_equal(okvm_unit_locate_serial(u, buf, sizeof(buf)), -ENODEV);
	assert_int_equal(okvm_unit_dispatch(u), 0); /* no news since */
	okvm_unit_free(slow);
	okvm_unit_free(u);
	rm_tree(dir);
}

static void
quiet_log(enum okvm_log_level level, const char *fmt, va_list ap, void *ud)
{
	(void)level;
	(void)fmt;
	(void)ap;
	(void)ud;
}

/* Open through spec and check the link asked the chip for GET_INFO at 9600. */
static void
open_on_fake_chip(struct okvm_unit_spec *spec, struct fake_chip *chip, const char *name)
{
	const struct fake_step steps[] = {
		{ FAKE_EXPECT, GET_INFO, sizeof(GET_INFO), 9600, NULL },
		{ FAKE_REPLY, INFO_REPLY, sizeof(INFO_REPLY), 0, NULL },
	};
	fake_chip_run(chip, steps, 2, -1);
	struct okvm_unit *u;
	assert_int_equal(okvm_unit_open(spec, &u), 0);
	assert_int_equal(fake_chip_join(chip), 2);
	assert_non_null(okvm_unit_link(u));
	assert_string_equal(okvm_link_path(okvm_unit_link(u)), chip->slave);
	assert_string_equal(okvm_unit_name(u), name);
	assert_null(okvm_unit_info(u));
	assert_int_equal(okvm_unit_connect(u), -EALREADY);
	struct okvm_link_state st;
	okvm_link_get_state(okvm_unit_link(u), &st);
	assert_int_equal(st.baud, 9600);
	assert_true(st.target_connected);
	okvm_unit_free(u);
}

static void
test_open_parts(void **state)
{
	okvm_log_set_handler(quiet_log, NULL);
	struct fake_chip chip;
	assert_int_equal(fake_chip_open(&chip), 0);
	struct okvm_unit_spec spec = { .device = "emu", /* parts win: no discovery */
				       .sysfs_root = "/nonexistent/okvm-sysfs",
				       .parts = { .tty = chip.slave, .baud = 9600 } };
	open_on_fake_chip(&spec, &chip, "virtual unit (emu)");
	fake_chip_close(&chip);
}

/* The DTR pulse of `okvm switch` on a Mini-KVM: the lines only, so a CH9329 that does not
 * answer (at an unknown baud, unpowered) cannot stop it, and nothing reaches the chip. */
static void
test_connect_lines_only(void **state)
{
	(void)state;
	okvm_log_set_handler(quiet_log, NULL);
	struct fake_chip chip;
	assert_int_equal(fake_chip_open(&chip), 0);
	char sock[108];
	snprintf(sock, sizeof(sock), "/tmp/okvm-test-unit-modem-%d", getpid());
	unlink(sock);
	int dfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	assert_int_equal(bind(dfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct okvm_unit_spec spec = {
		.device = "emu",
		.sysfs_root = "/nonexistent/okvm-sysfs",
		.parts = { .tty = chip.slave, .modem_socket = sock, .baud = 9600 }
	};
	struct okvm_unit *u;
	assert_int_equal(okvm_unit_new(&spec, &u), 0);
	const struct fake_step steps[] = {
		{ FAKE_DGRAM, NULL, 0, 0, "DTR=0" }, /* the lines right after open */
		{ FAKE_DGRAM, NULL, 0, 0, "RTS=0" },
		{ FAKE_DGRAM, NULL, 0, 0, "DTR=1" }, /* the pulse */
		{ FAKE_DGRAM, NULL, 0, 0, "DTR=0" },
	};
	fake_chip_run(&chip, steps, 4, dfd);
	assert_int_equal(okvm_unit_connect_lines(u), 0); /* nobody answers: still open */
	assert_int_equal(okvm_link_dtr_pulse(okvm_unit_link(u), 20), 0);
	assert_int_equal(fake_chip_join(&chip), 4);
	okvm_unit_free(u);
	assert_false(fake_chip_has_input(&chip, 50)); /* not one byte for the chip */
	close(dfd);
	unlink(sock);
	fake_chip_close(&chip);
}

static void
test_open_serial(void **state)
{
	okvm_log_set_handler(quiet_log, NULL);
	struct fake_chip chip;
	assert_int_equal(fake_chip_open(&chip), 0);
	struct okvm_unit_spec spec = { .serial = chip.slave, .baud = 9600 };
	open_on_fake_chip(&spec, &chip, chip.slave);
	fake_chip_close(&chip);
}

/* A node path is the discovered unit that has it; a path no unit has is used bare. */
static void
test_path_finds_its_unit(void **state)
{
	struct okvm_unit *u;
	assert_int_equal(resolve("two-mini-kvms", "/dev/ttyUSB0", &u), 0);
	assert_non_null(okvm_unit_info(u));
	assert_string_equal(okvm_unit_info(u)->port_chain, "3-3");
	okvm_unit_free(u);
	assert_int_equal(resolve("two-mini-kvms", "/dev/hidraw1", &u), 0);
	assert_string_equal(okvm_unit_info(u)->port_chain, "1-2");
	assert_string_equal(okvm_unit_serial_path(u), "/dev/ttyUSB1");
	okvm_unit_free(u);
	assert_int_equal(resolve("two-mini-kvms", "/dev/ttyUSB7", &u), 0);
	assert_null(okvm_unit_info(u));
	assert_string_equal(okvm_unit_serial_path(u), "/dev/ttyUSB7");
	okvm_unit_free(u);
}

static void
test_chip_and_capture_of_a_bare_tty(void **state)
{
	okvm_log_set_handler(quiet_log, NULL);
	struct okvm_unit *u;
	struct okvm_unit_spec spec = { .serial = "/dev/ttyS3" };
	assert_int_equal(okvm_unit_new(&spec, &u), 0);
	assert_int_equal(okvm_unit_open_chip(u), -ENXIO); /* no video chip known */
	assert_null(okvm_unit_chip(u));
	assert_string_equal(okvm_unit_chip_path(u), "");
	assert_int_equal(okvm_unit_open_capture(u, NULL, NULL), -ENXIO);
	assert_null(okvm_unit_capture(u));
	assert_int_equal(okvm_unit_open_capture(u, "/dev/video-okvm-none", "640x"), -EINVAL);
	/* --video: that node as given; the unit frees it */
	assert_int_equal(okvm_unit_open_capture(u, "/dev/video-okvm-none", "640x480@30"), 0);
	assert_non_null(okvm_unit_capture(u));
	assert_int_equal(okvm_unit_open_capture(u, "/dev/video-okvm-none", NULL), -EALREADY);
	okvm_unit_free(u);
}

static void
test_chip_and_capture_of_a_discovered_unit(void **state)
{
	okvm_log_set_handler(quiet_log, NULL);
	struct okvm_unit *u;
	assert_int_equal(resolve("mini-kvm-no-hidraw", NULL, &u), 0);
	assert_int_equal(okvm_unit_open_chip(u), -ENODEV); /* usbhid not bound */
	okvm_unit_free(u);

	assert_int_equal(resolve("two-mini-kvms", "2", &u), 0);
	assert_string_equal(okvm_unit_chip_path(u), "/dev/hidraw0");
	int rc = okvm_unit_open_chip(u); /* the recorded node is not on this machine */
	assert_true(rc == -ENOENT || rc == -EACCES || rc == 0);
	assert_int_equal(okvm_unit_open_capture(u, NULL, NULL), 0);
	struct okvm_capture *cap = okvm_unit_capture(u);
	assert_non_null(cap);
	okvm_capture_start(cap); /* its thread locates through the unit until the unit is freed */
	okvm_unit_free(u);
}

static int chip_closed;

static int
no_feature(void *ud, const uint8_t *buf, size_t len)
{
	return -EIO;
}

static int
no_get(void *ud, uint8_t *buf, size_t len)
{
	return -EIO;
}

static void
count_close(void *ud)
{
	chip_closed++;
}

static void
test_chip_and_capture_of_parts(void **state)
{
	static const struct okvm_chip_transport t = { no_feature, no_get, count_close };
	struct okvm_chip *chip = okvm_chip_new(OKVM_CHIP_MS2109, &t, &chip_closed);
	struct okvm_capture *screen = okvm_capture_new_files("/nonexistent/okvm-frames", 10);
	struct okvm_unit_spec spec = {
		.parts = { .tty = "/dev/null", .chip = chip, .capture = screen }
	};
	struct okvm_unit *u;
	chip_closed = 0;
	assert_int_equal(okvm_unit_new(&spec, &u), 0);
	assert_null(okvm_unit_info(u));
	assert_string_equal(okvm_unit_chip_path(u), "(virtual)");
	assert_int_equal(okvm_unit_open_chip(u), 0);
	assert_ptr_equal(okvm_unit_chip(u), chip);
	assert_int_equal(okvm_unit_open_chip(u), -EALREADY);
	assert_int_equal(okvm_unit_open_capture(u, NULL, NULL), 0);
	assert_ptr_equal(okvm_unit_capture(u), screen);
	okvm_unit_free(u);
	assert_int_equal(chip_closed, 1); /* the unit took the chip */
	okvm_capture_free(screen);        /* ... but only borrowed the screen */

	/* a chip handed in and never opened is freed too */
	chip = okvm_chip_new(OKVM_CHIP_MS2109, &t, &chip_closed);
	spec.parts.chip = chip;
	spec.parts.capture = NULL;
	assert_int_equal(okvm_unit_new(&spec, &u), 0);
	assert_int_equal(okvm_unit_open_capture(u, NULL, NULL), -ENXIO);
	okvm_unit_free(u);
	assert_int_equal(chip_closed, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_number),
		cmocka_unit_test(test_resolve_chain),
		cmocka_unit_test(test_no_match),
		cmocka_unit_test(test_paths_are_not_discovered),
		cmocka_unit_test(test_kvm_go_fixed_baud),
		cmocka_unit_test(test_no_serial_node),
		cmocka_unit_test(test_locate_after_replug),
		cmocka_unit_test(test_open_parts),
		cmocka_unit_test(test_connect_lines_only),
		cmocka_unit_test(test_open_serial),
		cmocka_unit_test(test_path_finds_its_unit),
		cmocka_unit_test(test_chip_and_capture_of_a_bare_tty),
		cmocka_unit_test(test_chip_and_capture_of_a_discovered_unit),
		cmocka_unit_test(test_chip_and_capture_of_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
