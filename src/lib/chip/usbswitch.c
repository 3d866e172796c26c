/*
 * DESIGN: the switchable USB-A port across hardware generations (docs/hardware.md 3.3).
 * - Mini-KVM v1.9: the MS2109's SPDIFOUT pin (0xDF01) selects the mux; after changing it the
 *   port is power-cycled with a DTR pulse (hardware.md 2.11) so the device re-enumerates on its new
 *   side (QT PR #649, MacOS PR #35).
 * - KVM-Go / KVM-VGA: the CH32V208 switches on serial command 0x17.
 * - v1.6: no soft switch at all; only the toggle switches.
 * The steps a unit needs are function pointers, so the order (register, then pulse) is unit
 * tested without a serial port, and the CLI, the server and the web UI share this one path.
 * Thread: whoever owns the chip and the serial port.
 */
#include <errno.h>

#include "okvm/chip.h"

#define DEFAULT_PULSE_MS 500

int
okvm_usb_switch_set(const struct okvm_usb_switch *sw, enum okvm_usb_dir dir)
{
	if (sw->chip) {
		int rc = okvm_chip_set_switch(sw->chip, dir);
		if (rc < 0)
			return rc;
		if (!sw->dtr_pulse)
			return -ENOTSUP;
		return sw->dtr_pulse(sw->ud, sw->pulse_ms > 0 ? sw->pulse_ms : DEFAULT_PULSE_MS);
	}
	if (sw->serial_switch) {
		enum okvm_usb_dir now;
		return sw->serial_switch(sw->ud, false, dir, &now);
	}
	return -ENOTSUP;
}

int
okvm_usb_switch_get(const struct okvm_usb_switch *sw, enum okvm_usb_dir *out)
{
	if (sw->chip)
		return okvm_chip_get_switch(sw->chip, out);
	if (sw->serial_switch)
		return sw->serial_switch(sw->ud, true, OKVM_USB_TO_HOST, out);
	return -ENOTSUP;
}

int
okvm_usb_switch_follow_step(const struct okvm_usb_switch *sw, int *last)
{
	enum okvm_usb_dir toggle, now;
	if (!sw->chip)
		return -ENOTSUP;
	int rc = okvm_chip_get_toggle(sw->chip, &toggle);
	if (rc < 0)
		return rc;
	if (*last == (int)toggle)
		return 0;
	if (*last < 0) { /* first look: switch only if the port is not already there */
		rc = okvm_chip_get_switch(sw->chip, &now);
		if (rc < 0)
			return rc;
		*last = (int)toggle;
		if (now == toggle)
			return 0;
	}
	*last = (int)toggle;
	rc = okvm_usb_switch_set(sw, toggle);
	return rc < 0 ? rc : 1;
}
