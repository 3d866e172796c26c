/*
 * DESIGN: the [power] section of okvm.conf (docs/power.md), read with inih like [serve]
 * (src/serve/config.c): every key is checked, an unknown key or a bad value is an error naming
 * the line, other sections are skipped. Also the defaults (the wiring docs/extension-pins.md
 * draws: DTR = power, RTS = reset, DSR = power LED, all active high).
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/strnum.h"
#include "lib/xalloc.h"
#include "okvm/serial.h"
#include "power/power.h"

void
power_config_init(struct power_config *c)
{
	memset(c, 0, sizeof(*c));
	c->backend = POWER_BACKEND_SERIAL;
	c->power.line = POWER_LINE_DTR;
	c->reset.line = POWER_LINE_RTS;
	c->led.line = POWER_LINE_DSR;
	c->press_ms = POWER_DEFAULT_PRESS_MS;
	c->force_ms = POWER_DEFAULT_FORCE_MS;
	c->reset_ms = POWER_DEFAULT_RESET_MS;
	c->cycle_off_ms = POWER_DEFAULT_CYCLE_OFF_MS;
	c->baud = POWER_DEFAULT_BAUD;
	c->power_channel = 1;
	c->reset_channel = 2;
}

/* A copy of src with everything of it: the caller frees both with power_config_clear(). */
void
power_config_copy(struct power_config *dst, const struct power_config *src)
{
	*dst = *src;
	dst->device = src->device ? xstrdup(src->device) : NULL;
	dst->modem_socket = src->modem_socket ? xstrdup(src->modem_socket) : NULL;
	dst->wol_address = src->wol_address ? xstrdup(src->wol_address) : NULL;
	dst->wol_interface = src->wol_interface ? xstrdup(src->wol_interface) : NULL;
	dst->console = src->console ? xstrdup(src->console) : NULL;
	dst->console_modem = src->console_modem ? xstrdup(src->console_modem) : NULL;
}

void
power_config_clear(struct power_config *c)
{
	free(c->device);
	free(c->modem_socket);
	free(c->wol_address);
	free(c->wol_interface);
	free(c->console);
	free(c->console_modem);
	c->device = c->modem_socket = c->wol_address = c->wol_interface = NULL;
	c->console = c->console_modem = NULL;
}

/* "dtr", "!rts", "none"; outputs or inputs. */
static int
parse_wire(const char *v, bool output, struct power_wire *w)
{
	static const char *const outs[] = { "dtr", "rts" }, *const ins[] = { "dsr", "cts", "dcd" };
	bool low = v[0] == '!';
	const char *name = low ? v + 1 : v;
	if (!strcmp(v, "none")) {
		*w = (struct power_wire){ POWER_LINE_NONE, false };
		return 0;
	}
	for (int i = 0; i < (output ? 2 : 3); i++) {
		if (!strcmp(name, output ? outs[i] : ins[i])) {
			w->line = output ? (enum power_line)(POWER_LINE_DTR + i)
					 : (enum power_line)(POWER_LINE_DSR + i);
			w->active_low = low;
			return 0;
		}
	}
	return -EINVAL;
}

/* Milliseconds (or a baud) from lo to hi; *out is left alone when v is not one. */
static int
parse_ms(const char *v, long lo, long hi, int *out)
{
	long n;
	if (!str_to_long(v, 10, lo, hi, &n))
		return -EINVAL;
	*out = (int)n;
	return 0;
}

int
power_config_set(struct power_config *c, const char *key, const char *v, char *err, size_t errsz)
{
	int rc = 0;
	const char *takes = "";
	if (!strcmp(key, "backend")) {
		takes = "serial, hidrelay, vbus or wol";
		if (!strcmp(v, "serial"))
			c->backend = POWER_BACKEND_SERIAL;
		else if (!strcmp(v, "vbus"))
			c->backend = POWER_BACKEND_VBUS;
		else if (!strcmp(v, "hidrelay"))
			c->backend = POWER_BACKEND_HIDRELAY;
		else if (!strcmp(v, "wol"))
			c->backend = POWER_BACKEND_WOL;
		else
			rc = -EINVAL;
	} else if (!strcmp(key, "device")) {
		free(c->device);
		c->device = !strcmp(v, "auto") ? NULL : xstrdup(v);
	} else if (!strcmp(key, "console")) {
		free(c->console);
		c->console = !strcmp(v, "auto") || !strcmp(v, "none") ? NULL : xstrdup(v);
		c->console_off = !strcmp(v, "none");
	} else if (!strcmp(key, "power") || !strcmp(key, "reset")) {
		takes = "dtr, rts, !dtr, !rts (active low) or none";
		rc = parse_wire(v, true, !strcmp(key, "power") ? &c->power : &c->reset);
	} else if (!strcmp(key, "led")) {
		takes = "dsr, cts, dcd (! for active low) or none";
		rc = parse_wire(v, false, &c->led);
	} else if (!strcmp(key, "power_ms") || !strcmp(key, "reset_ms")) {
		takes = "milliseconds, 10 to 10000";
		rc = parse_ms(v, 10, 10000, !strcmp(key, "power_ms") ? &c->press_ms : &c->reset_ms);
	} else if (!strcmp(key, "force_off_ms")) {
		takes = "milliseconds, 4000 to 20000 (ATX boards force off after 4 s)";
		rc = parse_ms(v, 4000, 20000, &c->force_ms);
	} else if (!strcmp(key, "cycle_off_ms")) {
		takes = "milliseconds, 0 to 60000";
		rc = parse_ms(v, 0, 60000, &c->cycle_off_ms);
	} else if (!strcmp(key, "power_channel") || !strcmp(key, "reset_channel")) {
		takes = "a relay channel, 1 to 8, or 0 for none";
		rc = parse_ms(v, 0, POWER_RELAY_CHANNELS,
			      !strcmp(key, "power_channel") ? &c->power_channel
							    : &c->reset_channel);
	} else if (!strcmp(key, "baud")) {
		takes = "a standard speed, 1200 to 115200";
		int baud = 0;
		rc = parse_ms(v, 1200, 115200, &baud);
		if (!rc && okvm_serial_baud_valid(baud))
			c->baud = baud;
		else
			rc = -EINVAL;
	} else if (!strcmp(key, "wol_mac")) {
		takes = "the target's MAC address, AA:BB:CC:DD:EE:FF";
		rc = power_parse_mac(v, c->wol_mac);
		c->wol = !rc;
	} else if (!strcmp(key, "wol_address")) {
		takes = "a numeric broadcast or host address, A.B.C.D[:PORT] or [V6][:PORT]";
		struct sockaddr_storage ss;
		unsigned len;
		rc = power_wol_address(v, &ss, &len);
		if (!rc) {
			free(c->wol_address);
			c->wol_address = xstrdup(v);
		}
	} else if (!strcmp(key, "wol_interface")) {
		takes = "a network interface name (eth0)";
		rc = !*v || strlen(v) >= 16 || strchr(v, '/') || strchr(v, ' ') ? -EINVAL : 0;
		if (!rc) {
			free(c->wol_interface);
			c->wol_interface = xstrdup(v);
		}
	} else {
		snprintf(
			err, errsz,
			"unknown key '%s' (backend, device, console, power, reset, led, power_ms, "
			"force_off_ms, reset_ms, cycle_off_ms, baud, power_channel, reset_channel, "
			"wol_mac, wol_address, wol_interface)",
			key);
		return -EINVAL;
	}
	if (rc)
		snprintf(err, errsz, "%s takes %s, not '%s'", key, takes, v);
	return rc;
}

struct parse {
	struct power_config *c;
	char *err;
	size_t errsz;
	int rc;
};

static int
on_ini(void *ud, const char *section, const char *key, const char *value)
{
	struct parse *p = ud;
	if (strcmp(section, "power"))
		return 1;
	if (power_config_set(p->c, key, value, p->err, p->errsz) < 0) {
		p->rc = -EINVAL;
		return 0;
	}
	return 1;
}

int
power_config_load(struct power_config *c, const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -errno;
	}
	char why[160] = "";
	struct parse p = { c, why, sizeof(why), 0 };
	int line = ini_parse_file(f, on_ini, &p);
	fclose(f);
	if (line) {
		snprintf(err, errsz, "%s line %d: %s", path, line,
			 why[0] ? why : "not key = value");
		return -EINVAL;
	}
	return 0;
}
