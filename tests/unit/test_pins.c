/*
 * The extension pins (issue 16): discovery names a USB-serial adapter and a HID relay on the
 * pins (okvm_ext_role), finds the virtual unit's adapter at the unit's chain + ".4" in a tree
 * written by emu_sysfs_write, and the [power] keys of okvm.conf parse as docs/power.md says.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <ftw.h>
#include <unistd.h>

#include "emu/sysfs-writer.h"
#include "okvm/discover.h"
#include "power/power.h"

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
test_adapter_on_the_pins(void **state)
{
	(void)state;
	char dir[] = "/tmp/okvm-pins-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct emu_sysfs_unit eu = { "3-1", "ttyUSB0", "hidraw0", 0, 1, "ttyUSB1" };
	assert_int_equal(emu_sysfs_write(dir, &eu), 0);
	struct okvm_unit_info *units;
	size_t n;
	assert_int_equal(okvm_discover_scan(dir, &units, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(units[0].serial_node, "/dev/ttyUSB0"); /* the CH340 stays the unit's */
	assert_int_equal(units[0].n_ext, 1);
	const struct okvm_ext_device *x = &units[0].ext[0];
	assert_string_equal(x->port_chain, "3-1.4");
	assert_int_equal(x->vid, 0x0403);
	assert_int_equal(x->pid, 0x6001);
	assert_string_equal(x->driver, "ftdi_sio");
	assert_string_equal(x->node, "/dev/ttyUSB1");
	assert_string_equal(okvm_ext_role(x), "USB-serial adapter: console + power lines");
	okvm_discover_free_units(units);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
test_roles(void **state)
{
	(void)state;
	struct okvm_ext_device relay = { .vid = 0x16c0,
					 .pid = 0x05df,
					 .product = "USBRelay2",
					 .driver = "usbhid",
					 .node = "/dev/hidraw3" };
	assert_string_equal(okvm_ext_role(&relay), "HID relay, 2 channels");
	struct okvm_ext_device stick = { .vid = 0x0781,
					 .pid = 0x5567,
					 .product = "Cruzer Blade",
					 .driver = "usb-storage",
					 .node = "/dev/sda" };
	assert_null(okvm_ext_role(&stick));
	struct okvm_ext_device acm = { .driver = "cdc_acm", .node = "/dev/ttyACM1" };
	assert_string_equal(okvm_ext_role(&acm), "USB-serial adapter: console + power lines");
	struct okvm_ext_device unbound = { .driver = "", .node = "/dev/ttyUSB3" };
	assert_null(okvm_ext_role(&unbound));
}

static void
test_power_config(void **state)
{
	(void)state;
	struct power_config c;
	char err[200];
	power_config_init(&c);
	assert_int_equal(c.power.line, POWER_LINE_DTR);
	assert_int_equal(c.reset.line, POWER_LINE_RTS);
	assert_int_equal(c.led.line, POWER_LINE_DSR);
	assert_int_equal(c.press_ms, 500);
	assert_int_equal(c.force_ms, 5000);
	assert_int_equal(c.reset_ms, 500);
	assert_int_equal(power_config_set(&c, "power", "!rts", err, sizeof(err)), 0);
	assert_int_equal(c.power.line, POWER_LINE_RTS);
	assert_true(c.power.active_low);
	assert_int_equal(power_config_set(&c, "led", "dcd", err, sizeof(err)), 0);
	assert_int_equal(c.led.line, POWER_LINE_DCD);
	assert_int_equal(power_config_set(&c, "led", "dtr", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "led takes dsr, cts, dcd (! for active low) or none, not 'dtr'");
	assert_int_equal(power_config_set(&c, "force_off_ms", "3000", err, sizeof(err)), -EINVAL);
	assert_int_equal(c.force_ms, 5000); /* a refused value changes nothing */
	assert_int_equal(power_config_set(&c, "colour", "red", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown key 'colour'"));
	assert_int_equal(power_config_set(&c, "device", "/dev/ttyUSB7", err, sizeof(err)), 0);
	assert_string_equal(c.device, "/dev/ttyUSB7");
	assert_int_equal(power_config_set(&c, "device", "auto", err, sizeof(err)), 0);
	assert_null(c.device);

	char path[] = "/tmp/okvm-pins-conf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char text[] = "[serve]\nlisten = 1.2.3.4:5\n[power]\nreset = none\n"
			    "power_ms = 250\n[power]\nbaud = 12345\n";
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	assert_int_equal(power_config_load(&c, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 7: baud takes"));
	assert_int_equal(c.reset.line, POWER_LINE_NONE);
	assert_int_equal(c.press_ms, 250);
	unlink(path);
	power_config_clear(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adapter_on_the_pins),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_power_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
