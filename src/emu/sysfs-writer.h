/* The virtual unit's sysfs: a tree that discovery (OKVM_SYSFS_ROOT) finds as a Mini-KVM. */
#ifndef OKVM_EMU_SYSFS_WRITER_H
#define OKVM_EMU_SYSFS_WRITER_H

struct emu_sysfs_unit {
	const char *hub_chain; /* MS2109 at .1, CH340 at .2 (hardware.md 1.2); NULL = "1-1" */
	const char *tty;       /* "ttyUSB0" (class/tty name; /dev/<tty> is the node) */
	const char *hidraw;    /* "hidraw0"; NULL = the unit has no hidraw node */
	int video;             /* videoN of the capture node (N+1 is the metadata node) */
	int card;              /* ALSA card number */
	const char
		*pins_tty; /* "ttyUSB1": an FT232R adapter on the extension pins (.4); NULL none */
};

/**
 * Write (or add to) a sysfs tree at root: device directories under
 * devices/pci0000:00/0000:00:14.0/usbB/, attributes, interfaces with driver links, class nodes
 * and the bus/usb/devices and class symlinks, as Linux shows them.
 * @return 0 or -errno
 */
int emu_sysfs_write(const char *root, const struct emu_sysfs_unit *u);
/** Remove the unit's devices and links again (an unplug, for hot-plug tests). */
int emu_sysfs_remove(const char *root, const struct emu_sysfs_unit *u);

#endif
