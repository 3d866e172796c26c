/*
 * DESIGN: `okvm baud 9600|115200`: change the CH9329's stored speed (SET_PARA_CFG + RESET at
 * the old speed, then verify at the new one; hardware.md 2.10). The official apps use only
 * these two.
 *
 * The mode bytes. The chip reports the modes its pins chose as 0x80 | mode (hardware.md 2.8), and
 * CH9329-P restricts what SET_PARA_CFG stores to the software values; QT wrote serial mode 0x80
 * and its users' 115200 came back as 9600 after a replug (QT issue #642, fix PR #643: write
 * 0x00). Whether 0x80 is refused for storage or only for the pins is not known, so okvm writes
 * what works under both beliefs: working mode = the mode the chip runs in now (the low two bits:
 * 0x80 -> 0x00, 0x82 -> 0x02) and serial mode 0x00, protocol mode, the only one okvm speaks. A
 * block that already holds software values is left as it is.
 *
 * A CH32V208 (KVM-Go, KVM-VGA) has no command-based configuration (QT CH32V208Strategy): it is
 * refused before anything is sent, recognised by the model table from its serial part's USB ID
 * (QT decides by 1A86:FE0C) and, for a tty the table cannot place, by its GET_INFO version
 * 0x82..0x84 (MAC SerialResponseHandler; hardware.md 2.4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "okvm/discover.h"
#include "okvm/error.h"
#include "okvm/link.h"
#include "okvm/models.h"

static bool
serial_id_is_ch32v208(uint16_t vid, uint16_t pid)
{
	const struct okvm_model *m = okvm_model_find(vid, pid, OKVM_PART_SERIAL);
	return m && m->hid_chip == OKVM_HID_CH32V208;
}

/* By the model table: the tty's USB ID, or the discovered unit's serial part. */
static bool
model_says_ch32v208(const struct cli *cli)
{
	const char *tty = cli->serial;
	if (!tty && cli->device && cli->device[0] == '/')
		tty = cli->device;
	uint16_t vid, pid;
	if (tty)
		return okvm_discover_tty_usb_id(NULL, tty, &vid, &pid) == 0 &&
		       serial_id_is_ch32v208(vid, pid);
	if (cli_is_emu(cli))
		return false; /* the virtual unit: its GET_INFO says */
	struct okvm_unit_info *units;
	size_t n = 0;
	if (okvm_discover_scan(NULL, &units, &n) < 0)
		return false;
	int i = n ? okvm_discover_match(units, n, cli->device ? cli->device : "1") : -1;
	bool yes = false;
	if (i >= 0) {
		const struct okvm_model *m = okvm_model_of_unit(&units[i]);
		yes = serial_id_is_ch32v208(units[i].serial_vid, units[i].serial_pid) ||
		      (m && m->hid_chip == OKVM_HID_CH32V208);
	}
	okvm_discover_free_units(units);
	return yes;
}

static int
refuse(void)
{
	return cli_fail("baud: this unit's serial chip is a CH32V208 (KVM-Go, KVM-VGA): it runs at "
			"a fixed 115200 baud and has no command to change it");
}

/* Store the mode bytes as software values (see DESIGN) at the current baud. */
static int
software_modes(struct okvm_link *l)
{
	struct okvm_ch9329_params p;
	int rc = okvm_link_get_params(l, &p, 1000);
	if (rc < 0)
		return rc;
	if (!(p.mode & 0x80) && p.serial_mode == 0x00)
		return 0;
	p.mode &= 0x03;
	p.serial_mode = 0x00;
	struct okvm_ch9329_frame f;
	okvm_ch9329_build_set_params(&f, &p);
	return okvm_link_command(l, &f, NULL, 1000);
}

int
cmd_baud(struct cli *cli, int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("baud: give 9600 or 115200");
	int baud = !strcmp(argv[1], "9600") ? 9600 : !strcmp(argv[1], "115200") ? 115200 : 0;
	if (!baud)
		return cli_usage("baud: '%s' is not 9600 or 115200", argv[1]);
	if (model_says_ch32v208(cli))
		return refuse();
	struct okvm_link *l;
	int rc = cli_open_link(cli, &l);
	if (rc)
		return rc;
	struct okvm_link_state st;
	okvm_link_get_state(l, &st);
	if (!st.info_unknown && st.version >= 0x82 && st.version <= 0x84) {
		cli_close_link(l);
		return refuse();
	}
	int err = software_modes(l);
	if (err == 0)
		err = okvm_link_set_baud(l, baud);
	cli_close_link(l);
	if (err < 0)
		return cli_fail("baud: %s", okvm_strerror(err));
	printf("the CH9329 now runs at %d baud\n", baud);
	return CLI_OK;
}
