/* Discovery against recorded sysfs trees: grouping by port chain, foreign CH340s, extension
 * pins, KVM-Go topologies, -d matching, the virtual unit's tree, and hot-plug. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <ftw.h>
#include <unistd.h>

#include "emu/sysfs-writer.h"
#include "okvm/discover.h"
#include "srcroot.h"

static struct okvm_unit_info *
scan(const char *fixture, size_t *n)
{
	char root[PATH_MAX + 128];
	struct okvm_unit_info *u;
	snprintf(root, sizeof(root), "%s/tests/fixtures/sysfs/%s", test_source_root(), fixture);
	assert_int_equal(okvm_discover_scan(root, &u, n), 0);
	return u;
}

static void
test_one_mini_kvm(void **state)
{
	size_t n;
	struct okvm_unit_info *u = scan("mini-kvm-v1-9", &n);
	assert_int_equal(n, 1);
	assert_int_equal(u->index, 1);
	assert_int_equal(u->variant, OKVM_VARIANT_MINI_KVM);
	assert_string_equal(u->port_chain, "3-3");
	assert_true(u->behind_hub);
	assert_string_equal(u->video_chain, "3-3.1");
	assert_string_equal(u->serial_chain, "3-3.2");
	assert_string_equal(u->video_node, "/dev/video0"); /* not the metadata node video1 */
	assert_string_equal(u->hidraw_node, "/dev/hidraw0");
	assert_string_equal(u->serial_node, "/dev/ttyUSB0");
	assert_string_equal(u->serial_driver, "ch341");
	assert_string_equal(u->alsa_card, "hw:1");
	assert_string_equal(u->product, "Openterface");
	assert_int_equal(u->video_vid, 0x534D);
	assert_int_equal(u->serial_pid, 0x7523);
	assert_int_equal(u->n_ext, 0);
	assert_int_equal(u->n_switchable, 0);
	okvm_discover_free_units(u);
}

static void
test_two_mini_kvms(void **state)
{
	size_t n;
	struct okvm_unit_info *u = scan("two-mini-kvms", &n);
	assert_int_equal(n, 2);
	/* sorted by port chain; each unit gets its own nodes, never the other's */
	assert_string_equal(u[0].port_chain, "1-2");
	assert_string_equal(u[0].serial_node, "/dev/ttyUSB1");
	assert_string_equal(u[0].hidraw_node, "/dev/hidraw1");
	assert_string_equal(u[0].video_node, "/dev/video2");
	assert_string_equal(u[0].alsa_card, "hw:2");
	assert_string_equal(u[1].port_chain, "3-3");
	assert_string_equal(u[1].serial_node, "/dev/ttyUSB0");
	assert_string_equal(u[1].hidraw_node, "/dev/hidraw0");
	assert_string_equal(u[1].video_node, "/dev/video0");
	assert_int_equal(u[1].index, 2);
	okvm_discover_free_units(u);
}

static void
test_foreign_ch340_never_taken(void **state)
{
	size_t n;
	struct okvm_unit_info *u = scan("mini-kvm-foreign-ch340", &n);
	assert_int_equal(n, 1); /* the generic 534D:2109 capture stick at 1-5 is no unit */
	assert_string_equal(u->port_chain, "3-3");
	/* ttyUSB0 (root port) and ttyUSB1 (other 1A40 hub) come first in the kernel's order */
	assert_string_equal(u->serial_node, "/dev/ttyUSB2");
	assert_string_equal(u->serial_chain, "3-3.2");
	/* the adapter in the unit's own switchable port is shown there, not as the unit's chip */
	assert_int_equal(u->n_switchable, 1);
	assert_string_equal(u->switchable[0].port_chain, "3-3.3");
	assert_string_equal(u->switchable[0].node, "/dev/ttyUSB3");
	assert_int_equal(u->switchable[0].vid, 0x1A86);
	okvm_discover_free_units(u);
}

/* Belief "every Mini-KVM's hub is 1A40:0101 with the MS2109 on port 1 and the CH340 on port 2"
 * (hardware.md 1.2, from one BOM and two dmesg logs; QT groups by parent hub only): units of a
 * batch with another hub chip, or other wiring, still get their serial port and video. */
static void
test_other_hub(void **state)
{
	size_t n;
	struct okvm_unit_info *u = scan("mini-kvm-other-hub", &n);
	assert_int_equal(n, 1);
	assert_string_equal(u->port_chain, "3-3");
	assert_true(u->behind_hub);
	assert_string_equal(u->serial_node, "/dev/ttyUSB0");
	assert_string_equal(u->video_node, "/dev/video0");
	assert_string_equal(u->hidraw_node, "/dev/hidraw0");
	assert_int_equal(u->n_switchable, 1); /* the known ports: port 3 is still the USB-A port */
	assert_string_equal(u->switchable[0].port_chain, "3-3.3");
	okvm_discover_free_units(u);

	u = scan("mini-kvm-other-ports", &n);
	assert_int_equal(n, 1);
	assert_string_equal(u->port_chain, "3-2");
	assert_string_equal(u->video_chain, "3-2.3");
	assert_string_equal(u->serial_chain, "3-2.1");
	assert_string_equal(u->serial_node, "/dev/ttyUSB0"); /* never the adapter's ttyUSB1 */
	assert_string_equal(u->hidraw_node, "/dev/hidraw0");
	assert_int_equal(u->n_switchable, 0); /* other wiring: which port switches is unknown */
	okvm_discover_free_units(u);
}

static void
test_extension_pins(void **state)
{
	size_t n;
	struct okvm_unit_info *u = scan("mini-kvm-extension", &n);
	assert_int_equal(n, 1);
	assert_string_equal(u->port_chain, "7-1");
	assert_int_equal(u->n_ext, 1);
	assert_string_equal(u->ext[0].port_chain, "7-1.4");
	assert_int_equal(u->ext[0].vid, 0x0403);
	assert_int_equal(u->ext[0].pid, 0x6001);
	assert_string_equal(u->ext[0].product, "FT232R USB UART");
	assert_string_equal(u->ext[0].driver, "ftdi_sio");
	assert_string_equal(u->ext[0].node, "/dev/ttyUSB1");
	assert_int_equal(u->n_switchable, 1);
	assert_string_equal(u->switchable[0].driver, "usb-storage");
	assert_string_equal(u->switchable[0].node, "/dev/sda");
	assert_string_equal(u->serial_node, "/dev/ttyUSB0"); /* not the FTDI's ttyUSB1 */
	okvm_discover_free_units(u);
}

static void
test_no_hidraw(void **state)
{
	size_t n;
	struct okvm_unit_info *u = scan("mini-kvm-no-hidraw", &n);
	assert_int_equal(n, 1);
	assert_string_equal(u->hidraw_node, "");
	assert_string_equal(u->serial_node, "/dev/ttyUSB0");
	assert_string_equal(u->video_node, "/dev/video0");
	okvm_discover_free_units(u);
}

static void
test_kvm_go(void **state)
{
	size_t n;
	struct okvm_unit_info *u = scan("kvm-go-usb2", &n);
	assert_int_equal(n, 1);
	assert_int_equal(u->variant, OKVM_VARIANT_KVM_GO);
	assert_string_equal(u->port_chain, "1-2.3");
	assert_string_equal(u->serial_chain, "1-2.1");
	assert_string_equal(u->serial_node, "/dev/ttyACM0");
	assert_string_equal(u->serial_driver, "cdc_acm");
	assert_string_equal(u->hidraw_node, "/dev/hidraw0");
	okvm_discover_free_units(u);

	u = scan("kvm-go-usb3", &n);
	assert_int_equal(n, 2);
	assert_string_equal(u[0].port_chain, "1-1.2"); /* a second KVM-Go, on USB 2 */
	assert_string_equal(u[0].serial_node, "/dev/ttyACM1");
	assert_string_equal(u[1].port_chain, "2-1.1");     /* SuperSpeed composite */
	assert_string_equal(u[1].serial_chain, "1-3.4.1"); /* under the peer of 2-1: 1-3 */
	assert_string_equal(u[1].serial_node, "/dev/ttyACM0");
	assert_string_equal(u[1].video_node, "/dev/video0");
	okvm_discover_free_units(u);

	u = scan("kvm-vga", &n);
	assert_int_equal(n, 1);
	assert_int_equal(u->variant, OKVM_VARIANT_KVM_VGA);
	assert_string_equal(u->serial_node, "/dev/ttyACM0");
	assert_string_equal(okvm_variant_name(u->variant), "KVM-VGA");
	okvm_discover_free_units(u);
}

static void
test_match(void **state)
{
	size_t n;
	struct okvm_unit_info *u = scan("two-mini-kvms", &n);
	assert_int_equal(okvm_discover_match(u, n, "1"), 0);
	assert_int_equal(okvm_discover_match(u, n, "2"), 1);
	assert_int_equal(okvm_discover_match(u, n, "3"), -ENOENT);
	assert_int_equal(okvm_discover_match(u, n, "0"), -ENOENT);
	assert_int_equal(okvm_discover_match(u, n, "3-3"), 1);
	assert_int_equal(okvm_discover_match(u, n, "1-2.2"), 0);
	assert_int_equal(okvm_discover_match(u, n, "/dev/ttyUSB0"), 1);
	assert_int_equal(okvm_discover_match(u, n, "/dev/hidraw1"), 0);
	assert_int_equal(okvm_discover_match(u, n, "/dev/video0"), 1);
	assert_int_equal(okvm_discover_match(u, n, "4-4"), -ENOENT);
	assert_int_equal(okvm_discover_match(u, n, ""), -EINVAL);
	okvm_discover_free_units(u);
}

static void
test_missing_root(void **state)
{
	struct okvm_unit_info *u;
	size_t n = 7;
	assert_int_equal(okvm_discover_scan("/nonexistent/okvm-sysfs", &u, &n), -ENOENT);
	assert_int_equal(n, 0);
	assert_null(u);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
test_virtual_unit_tree(void **state)
{
	char dir[] = "/tmp/okvm-sysfs-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct emu_sysfs_unit eu = { "2-4", "ttyUSB5", "hidraw3", 6, 4, NULL };
	assert_int_equal(emu_sysfs_write(dir, &eu), 0);
	struct okvm_unit_info *u;
	size_t n;
	assert_int_equal(okvm_discover_scan(dir, &u, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(u->port_chain, "2-4");
	assert_string_equal(u->serial_node, "/dev/ttyUSB5");
	assert_string_equal(u->hidraw_node, "/dev/hidraw3");
	assert_string_equal(u->video_node, "/dev/video6");
	assert_string_equal(u->alsa_card, "hw:4");
	assert_true(u->behind_hub);
	okvm_discover_free_units(u);
	assert_int_equal(emu_sysfs_remove(dir, &eu), 0);
	assert_int_equal(okvm_discover_scan(dir, &u, &n), 0);
	assert_int_equal(n, 0);
	okvm_discover_free_units(u);
	rm_tree(dir);
}

struct events {
	int added, removed, changed;
	char last[32];
};

static void
on_event(enum okvm_watch_event ev, const struct okvm_unit_info *u, void *ud)
{
	struct events *e = ud;
	e->added += ev == OKVM_UNIT_ADDED;
	e->removed += ev == OKVM_UNIT_REMOVED;
	e->changed += ev == OKVM_UNIT_CHANGED;
	snprintf(e->last, sizeof(e->last), "%s", u->port_chain);
}

/* Dispatch until fn reports `want` more events of any kind (poll: no sleeps). */
static void
pump(struct okvm_discover_watch *w, struct events *e, int want)
{
	int start = e->added + e->removed + e->changed;
	struct pollfd p = { .fd = okvm_discover_watch_fd(w), .events = POLLIN };
	for (int i = 0; i < 500 && e->added + e->removed + e->changed - start < want; i++) {
		assert_true(poll(&p, 1, 5000) > 0);
		assert_true(okvm_discover_watch_dispatch(w) >= 0);
	}
	assert_int_equal(e->added + e->removed + e->changed - start, want);
}

static void
test_hotplug(void **state)
{
	char dir[] = "/tmp/okvm-sysfs-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct emu_sysfs_unit a = { "1-1", "ttyUSB0", "hidraw0", 0, 1, NULL };
	struct emu_sysfs_unit b = { "3-2", "ttyUSB1", "hidraw1", 2, 2, NULL };
	assert_int_equal(emu_sysfs_write(dir, &a), 0);
	struct events e = { 0 };
	struct okvm_discover_watch *w = okvm_discover_watch_new(dir, 20, on_event, &e);
	pump(w, &e, 1);
	assert_int_equal(e.added, 1);
	assert_string_equal(e.last, "1-1");

	assert_int_equal(emu_sysfs_write(dir, &b), 0); /* a second unit arrives */
	pump(w, &e, 1);
	assert_int_equal(e.added, 2);
	assert_string_equal(e.last, "3-2");

	assert_int_equal(emu_sysfs_remove(dir, &a), 0); /* the first leaves */
	pump(w, &e, 1);
	assert_int_equal(e.removed, 1);
	assert_string_equal(e.last, "1-1");
	size_t n;
	const struct okvm_unit_info *u = okvm_discover_watch_units(w, &n);
	assert_int_equal(n, 1);
	assert_string_equal(u[0].serial_node, "/dev/ttyUSB1");

	struct emu_sysfs_unit a_nohid = a;
	a_nohid.hidraw = NULL;
	assert_int_equal(emu_sysfs_write(dir, &a_nohid), 0); /* comes back, hidraw not there yet */
	pump(w, &e, 1);
	assert_int_equal(e.added, 3);
	assert_string_equal(e.last, "1-1");
	assert_int_equal(e.changed, 0);
	u = okvm_discover_watch_units(w, &n);
	assert_int_equal(n, 2);
	assert_string_equal(u[0].hidraw_node, "");

	assert_int_equal(emu_sysfs_write(dir, &a), 0); /* its hidraw node appears */
	pump(w, &e, 1);
	assert_int_equal(e.changed, 1);
	u = okvm_discover_watch_units(w, &n);
	assert_string_equal(u[0].hidraw_node, "/dev/hidraw0");
	okvm_discover_watch_free(w);
	rm_tree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_mini_kvm),
		cmocka_unit_test(test_two_mini_kvms),
		cmocka_unit_test(test_foreign_ch340_never_taken),
		cmocka_unit_test(test_other_hub),
		cmocka_unit_test(test_extension_pins),
		cmocka_unit_test(test_no_hidraw),
		cmocka_unit_test(test_kvm_go),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_missing_root),
		cmocka_unit_test(test_virtual_unit_tree),
		cmocka_unit_test(test_hotplug),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
