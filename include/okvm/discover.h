/* Finding Openterface units and their parts in sysfs, and noticing them come and go. */
#ifndef OKVM_DISCOVER_H
#define OKVM_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OKVM_DISCOVER_MAX_EXT 8 /* devices listed per extension/switchable port */

enum okvm_variant {
	OKVM_VARIANT_MINI_KVM, /* MS2109 534D:2109 + CH340 1A86:7523 behind a 1A40:0101 hub */
	OKVM_VARIANT_KVM_GO,   /* MS2130S 345F:2132 + CH32V208 1A86:FE0C */
	OKVM_VARIANT_KVM_VGA,  /* MS2109S 345F:2109 + CH32V208 1A86:FE0C */
};

/* A USB device that is not part of the unit but hangs off one of its ports. */
struct okvm_ext_device {
	char port_chain[32]; /* "3-3.4" */
	uint16_t vid, pid;
	char product[64];
	char driver[32]; /* driver of its first bound interface, "" if none */
	char node[64];   /* "/dev/sda", "/dev/ttyACM1", "eth1", "" if none */
};

/* One unit and every node that belongs to it. Strings are "" when the part is absent. */
struct okvm_unit_info {
	int index; /* 1-based position in the sorted list (okvm list, -d N) */
	enum okvm_variant variant;
	char port_chain[32];   /* unit key: the hub's chain (Mini-KVM) or the composite's */
	char video_chain[32];  /* USB device of the capture chip */
	char serial_chain[32]; /* USB device of the serial chip */
	uint16_t video_vid, video_pid, serial_vid, serial_pid;
	char video_node[64];    /* "/dev/video0" (the lowest-numbered capture node) */
	char hidraw_node[64];   /* "/dev/hidraw2" */
	char serial_node[64];   /* "/dev/ttyUSB0" or "/dev/ttyACM0" */
	char serial_driver[32]; /* "ch341", "cdc_acm" */
	char alsa_card[32];     /* "hw:1" */
	char product[64];       /* USB product string of the capture chip */
	bool behind_hub;        /* Mini-KVM: the hub is the 1A40:0101 one */
	/* Mini-KVM v1.9: host hub port 3 (switchable USB-A, while routed to the host) and port 4
	 * (extension pins 2/3). Devices below a hub plugged there are listed too. */
	struct okvm_ext_device switchable[OKVM_DISCOVER_MAX_EXT];
	size_t n_switchable;
	struct okvm_ext_device ext[OKVM_DISCOVER_MAX_EXT];
	size_t n_ext;
};

/**
 * Scan a sysfs tree for units.
 * @param root sysfs root; NULL = $OKVM_SYSFS_ROOT if set, else "/sys"
 * @param out receives a malloc'd array sorted by port chain (free with okvm_discover_free_units)
 * @param n receives the number of units (0 is not an error)
 * @return 0, or -errno when the tree cannot be read at all (-ENOENT: no bus/usb/devices)
 * Pure sysfs reading; any thread; opens no device node.
 */
int okvm_discover_scan(const char *root, struct okvm_unit_info **out, size_t *n);
void okvm_discover_free_units(struct okvm_unit_info *units);

/**
 * Pick one unit by a -d spec: a number from the list ("1"), a port chain ("3-3", also any
 * chain of one of its parts, "3-3.2"), or a node path ("/dev/ttyUSB0", "/dev/hidraw1",
 * "/dev/video0").
 * @return index into units, -ENOENT when nothing matches, -EINVAL for an empty spec.
 */
int okvm_discover_match(const struct okvm_unit_info *units, size_t n, const char *spec);

/**
 * What okvm can use a device on the extension pins for (docs/extension-pins.md):
 * "USB-serial adapter: console + power lines" for a tty of a USB-serial chip (ftdi_sio, cp210x,
 * ch341, pl2303, cdc_acm), "HID relay, N channels" for a 16c0:05df board whose product string is
 * USBRelayN; NULL for anything else. A static string.
 */
const char *okvm_ext_role(const struct okvm_ext_device *x);

/** "Mini-KVM", "KVM-Go", "KVM-VGA". */
const char *okvm_variant_name(enum okvm_variant v);

/**
 * The USB VID:PID of the device a tty belongs to (/dev/ttyACM0 -> class/tty/ttyACM0, walked up
 * to the first directory with idVendor/idProduct), so a bare --serial port can be looked up in
 * the model table. @param root as for okvm_discover_scan. @return 0, -ENOENT (not a USB tty)
 */
int okvm_discover_tty_usb_id(const char *root, const char *tty, uint16_t *vid, uint16_t *pid);

/** The sysfs root in effect for NULL (see okvm_discover_scan). Never NULL. */
const char *okvm_discover_default_root(void);

/* ---- Hot-plug ---- */

enum okvm_watch_event { OKVM_UNIT_ADDED, OKVM_UNIT_REMOVED, OKVM_UNIT_CHANGED };

/** Called from okvm_discover_watch_dispatch() for every difference since the last scan. */
typedef void (*okvm_discover_watch_fn)(enum okvm_watch_event ev, const struct okvm_unit_info *u,
				       void *ud);

struct okvm_discover_watch;

/**
 * Watch for units arriving and leaving. With a sysfs root other than "/sys" (tests,
 * OKVM_SYSFS_ROOT) the tree is rescanned every rescan_ms; with "/sys" a libudev netlink monitor
 * triggers a rescan (debounced 200 ms), with a rescan every rescan_ms as a safety net.
 * The first dispatch reports every unit present as ADDED.
 * @param root as for okvm_discover_scan
 * @param rescan_ms period of the rescan; <= 0 = 1000
 * Never fails for lack of udev (falls back to rescanning); aborts on OOM.
 */
struct okvm_discover_watch *okvm_discover_watch_new(const char *root, int rescan_ms,
						    okvm_discover_watch_fn fn, void *ud);
/** Poll this fd for POLLIN, then call dispatch. Owned by the watch. */
int okvm_discover_watch_fd(const struct okvm_discover_watch *w);
/**
 * Non-blocking: consumes the fd's readiness, rescans if due, and calls fn per change.
 * @return number of changes reported, or -errno. Only the thread that owns the watch.
 */
int okvm_discover_watch_dispatch(struct okvm_discover_watch *w);
/** The units as of the last rescan (borrowed until the next dispatch). */
const struct okvm_unit_info *okvm_discover_watch_units(const struct okvm_discover_watch *w,
						       size_t *n);
void okvm_discover_watch_free(struct okvm_discover_watch *w); /* NULL ok */

#ifdef __cplusplus
}
#endif
#endif
