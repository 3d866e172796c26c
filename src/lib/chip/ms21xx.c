/*
 * DESIGN: register access to the MacroSilicon video chips over HID feature reports
 * (docs/hardware.md 3.1, 3.2). The differences between the chips are data, one row per chip:
 * the report id/length attempts in the order the official app tries them, and the register
 * addresses. A register read is SET_FEATURE(request) then GET_FEATURE(response), the value at
 * byte 4. A response that echoes a command must echo this request's command and address, else
 * the next attempt is tried; one that echoes nothing (byte 1 is no register command) is taken
 * as the official app takes every answer (hardware.md 3.1: whether the MS2109S and MS2130S
 * echo is not known). The attempt that worked
 * is remembered, so a unit costs the fall-backs only once.
 *
 * The transport is a pair of function pointers: hidraw (sys/hidraw.c) for a real unit, the
 * register model (src/emu/ms2109-emu.c) in tests and in the virtual unit.
 * Thread: the owner of the struct; one transaction at a time (no lock inside: the caller who
 * shares a chip between threads holds its own mutex around calls).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "okvm/chip.h"
#include "okvm/discover.h"
#include "okvm/log.h"
#include "okvm/models.h"
#include "lib/sys/hidraw.h"
#include "lib/xalloc.h"

#define CMD_READ_XDATA 0xB5
#define CMD_WRITE_XDATA 0xB6
#define CMD_READ_EEPROM 0xE5
#define CMD_WRITE_EEPROM 0xE6
#define DATA_INDEX 4
#define MAX_REPORT 65
#define NEW_SWITCH_FW 24081309UL
#define NO_REG 0

struct attempt {
	uint8_t id, len;
};

struct chip_desc {
	const char *name;
	struct attempt reads[3], writes[3];
	uint16_t fw, signal, width, height, fps, pclk, toggle, spdif;
};

/* hardware.md 3.1 (attempt order) and 3.2 (addresses). NO_REG: the chip has no such register. */
/* clang-format off */
static const struct chip_desc chips[] = {
	[OKVM_CHIP_MS2109] = { "MS2109",
		{ { 0x00, 9 }, { 0x01, 9 } }, { { 0x00, 9 }, { 0x01, 9 } },
		0xCBDC, 0xFA8C, 0xC6AF, 0xC6B1, 0xC6B5, 0xC73C, 0xDF00, 0xDF01 },
	[OKVM_CHIP_MS2109S] = { "MS2109S",
		{ { 0x00, 11 }, { 0x01, 11 }, { 0x00, 65 } }, { { 0x00, 9 }, { 0x00, 11 } },
		0xCBDC, 0xFD9C, 0xC703, 0xC705, 0xC617, 0xC8C5, NO_REG, NO_REG },
	[OKVM_CHIP_MS2130S] = { "MS2130S",
		{ { 0x01, 11 }, { 0x00, 11 }, { 0x00, 65 } },
		{ { 0x01, 11 }, { 0x00, 11 }, { 0x00, 65 } },
		0x1FDC, 0xFA8D, 0x1CFC, 0x1CFE, 0x1D02, 0x1D00, NO_REG, NO_REG },
};
/* clang-format on */

struct okvm_chip {
	const struct chip_desc *desc;
	enum okvm_chip_kind kind;
	struct okvm_chip_transport t;
	void *ud;
	int read_ok, write_ok;       /* index of the attempt that worked last, -1 = none yet */
	unsigned echoed, not_echoed; /* answers taken, with and without the request's echo */
	char fw[9];
	unsigned long fw_number;
};

int
okvm_chip_kind_from_usb(uint16_t vid, uint16_t pid, enum okvm_chip_kind *out)
{
	/* the chip of the first model whose capture composite has this ID (okvm/models.h) */
	const struct okvm_model *m = okvm_model_find(vid, pid, OKVM_PART_VIDEO);
	if (!m)
		return -ENODEV;
	*out = m->video_chip;
	return 0;
}

const char *
okvm_chip_kind_name(enum okvm_chip_kind k)
{
	return (size_t)k < sizeof(chips) / sizeof(chips[0]) ? chips[k].name : "unknown";
}

struct okvm_chip *
okvm_chip_new(enum okvm_chip_kind kind, const struct okvm_chip_transport *t, void *ud)
{
	struct okvm_chip *c = xcalloc(1, sizeof(*c));
	c->kind = (size_t)kind < sizeof(chips) / sizeof(chips[0]) ? kind : OKVM_CHIP_MS2109;
	c->desc = &chips[c->kind];
	c->t = *t;
	c->ud = ud;
	c->read_ok = c->write_ok = -1;
	return c;
}

void
okvm_chip_free(struct okvm_chip *c)
{
	if (!c)
		return;
	if (c->t.close)
		c->t.close(c->ud);
	free(c);
}

enum okvm_chip_kind
okvm_chip_kind(const struct okvm_chip *c)
{
	return c->kind;
}

/* ---- hidraw transport ---- */

static int
hid_set(void *ud, const uint8_t *buf, size_t len)
{
	return hidraw_set_feature((int)(intptr_t)ud, buf, len);
}

static int
hid_get(void *ud, uint8_t *buf, size_t len)
{
	return hidraw_get_feature((int)(intptr_t)ud, buf, len);
}

static void
hid_close(void *ud)
{
	hidraw_close((int)(intptr_t)ud);
}

/* Walk /sys/class/hidraw/NAME up to 6 parents for idVendor/idProduct (hardware.md 1.3). */
static int
detect_kind(const char *hidraw_path, const char *root, enum okvm_chip_kind *out)
{
	const char *name = strrchr(hidraw_path, '/');
	char link[PATH_MAX], dir[PATH_MAX];
	snprintf(link, sizeof(link), "%s/class/hidraw/%s",
		 root ? root : okvm_discover_default_root(), name ? name + 1 : hidraw_path);
	if (!realpath(link, dir))
		return -ENOENT;
	for (int up = 0; up < 6; up++) {
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			break;
		*slash = 0;
		char buf[16], p[PATH_MAX + 16];
		unsigned vid, pid;
		snprintf(p, sizeof(p), "%s/idVendor", dir);
		FILE *f = fopen(p, "re");
		if (!f)
			continue;
		bool ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%x", &vid) == 1;
		fclose(f);
		snprintf(p, sizeof(p), "%s/idProduct", dir);
		f = fopen(p, "re");
		ok = ok && f && fgets(buf, sizeof(buf), f) && sscanf(buf, "%x", &pid) == 1;
		if (f)
			fclose(f);
		return ok ? okvm_chip_kind_from_usb((uint16_t)vid, (uint16_t)pid, out) : -ENODEV;
	}
	return -ENOENT;
}

int
okvm_chip_open(const char *hidraw_path, const char *sysfs_root, struct okvm_chip **out)
{
	enum okvm_chip_kind kind = OKVM_CHIP_MS2109;
	if (detect_kind(hidraw_path, sysfs_root, &kind) < 0)
		okvm_log(OKVM_LOG_DEBUG, "%s: chip kind unknown; assuming MS2109", hidraw_path);
	int fd = hidraw_open(hidraw_path);
	if (fd < 0)
		return fd;
	static const struct okvm_chip_transport hid = { hid_set, hid_get, hid_close };
	*out = okvm_chip_new(kind, &hid, (void *)(intptr_t)fd);
	return 0;
}

/* ---- transactions ---- */

static bool
fatal(int rc)
{
	return rc == -ENODEV || rc == -EBADF || rc == -ENOENT;
}

/* Byte 1 of an answer that echoes a request: one of the register commands. */
static bool
is_command(uint8_t b)
{
	return b == CMD_READ_XDATA || b == CMD_WRITE_XDATA || b == CMD_READ_EEPROM ||
	       b == CMD_WRITE_EEPROM;
}

/* One request/response with one report format. Returns 0, -EPROTO (no echo), -errno. */
static int
transact(struct okvm_chip *c, struct attempt a, uint8_t cmd, uint16_t addr, uint8_t *resp)
{
	uint8_t req[MAX_REPORT] = { a.id, cmd, (uint8_t)(addr >> 8), (uint8_t)addr };
	int rc = c->t.set_feature(c->ud, req, a.len);
	if (rc < 0)
		return rc;
	memset(resp, 0, MAX_REPORT);
	resp[0] = a.id;
	rc = c->t.get_feature(c->ud, resp, a.len);
	if (rc < 0)
		return rc;
	if (rc < DATA_INDEX + 1)
		return -EPROTO;
	/* An echo of another request is stale or misrouted; no echo at all is what the official
	 * app and CORE accept (they read byte 4 of any answer), so an MS2109S/MS2130S that does not
	 * echo still reads. */
	if (is_command(resp[1]) && (resp[1] != cmd || resp[2] != req[2] || resp[3] != req[3]))
		return -EPROTO;
	if (is_command(resp[1]))
		c->echoed++;
	else
		c->not_echoed++;
	return 0;
}

void
okvm_chip_echo_counts(const struct okvm_chip *c, unsigned *echoed, unsigned *not_echoed)
{
	*echoed = c->echoed;
	*not_echoed = c->not_echoed;
}

static int
request(struct okvm_chip *c, uint8_t cmd, uint16_t addr, uint8_t *resp)
{
	const struct attempt *list = c->desc->reads;
	int first = c->read_ok >= 0 ? c->read_ok : 0, err = -ENOTSUP;
	for (int k = 0; k < 3; k++) {
		int i = (first + k) % 3;
		if (!list[i].len)
			continue;
		int rc = transact(c, list[i], cmd, addr, resp);
		if (rc == 0) {
			c->read_ok = i;
			return 0;
		}
		if (fatal(rc))
			return rc;
		if (rc == -EPROTO || err == -ENOTSUP)
			err = rc == -EPIPE || rc == -EINVAL ? -ENOTSUP : rc;
	}
	okvm_log(OKVM_LOG_DEBUG, "%s: no report format answered 0x%02X at 0x%04X", c->desc->name,
		 cmd, addr);
	return err;
}

int
okvm_chip_read(struct okvm_chip *c, uint16_t addr, uint8_t *val)
{
	uint8_t resp[MAX_REPORT];
	int rc = request(c, CMD_READ_XDATA, addr, resp);
	if (rc == 0)
		*val = resp[DATA_INDEX];
	return rc;
}

int
okvm_chip_write(struct okvm_chip *c, uint16_t addr, uint8_t val)
{
	const struct attempt *list = c->desc->writes;
	int first = c->write_ok >= 0 ? c->write_ok : 0, rc = -ENOTSUP;
	for (int k = 0; k < 3; k++) {
		int i = (first + k) % 3;
		if (!list[i].len)
			continue;
		uint8_t req[MAX_REPORT] = { list[i].id, CMD_WRITE_XDATA, (uint8_t)(addr >> 8),
					    (uint8_t)addr, val };
		rc = c->t.set_feature(c->ud, req, list[i].len);
		if (rc == 0) {
			c->write_ok = i;
			return 0;
		}
		if (fatal(rc))
			return rc;
	}
	return rc == -EPIPE || rc == -EINVAL ? -ENOTSUP : rc;
}

int
okvm_chip_read16(struct okvm_chip *c, uint16_t addr_hi, uint16_t *val)
{
	uint8_t hi, lo;
	int rc = okvm_chip_read(c, addr_hi, &hi);
	if (rc == 0)
		rc = okvm_chip_read(c, (uint16_t)(addr_hi + 1), &lo);
	if (rc == 0)
		*val = (uint16_t)(hi << 8 | lo);
	return rc;
}

int
okvm_chip_eeprom_read(struct okvm_chip *c, uint16_t addr, uint8_t *buf, size_t n)
{
	while (n) {
		uint8_t resp[MAX_REPORT];
		int rc = request(c, CMD_READ_EEPROM, addr, resp);
		if (rc < 0)
			return rc;
		size_t k = n < 5 ? n : 5;
		memcpy(buf, resp + DATA_INDEX, k);
		buf += k;
		n -= k;
		addr = (uint16_t)(addr + k);
	}
	return 0;
}

int
okvm_chip_firmware(struct okvm_chip *c, char out[9], unsigned long *number)
{
	uint8_t b[4];
	for (int i = 0; i < 4; i++) {
		int rc = okvm_chip_read(c, (uint16_t)(c->desc->fw + i), &b[i]);
		if (rc < 0)
			return rc;
	}
	if (b[0] == 0xFF && b[1] == 0xFF && b[2] == 0xFF && b[3] == 0xFF)
		memset(b, 0, 4); /* blank EEPROM: MAC shows "00000000" */
	snprintf(out, 9, "%02u%02u%02u%02u", b[0] % 100u, b[1] % 100u, b[2] % 100u, b[3] % 100u);
	unsigned long num = strtoul(out, NULL, 10);
	snprintf(c->fw, sizeof(c->fw), "%s", out);
	c->fw_number = num;
	if (number)
		*number = num;
	return 0;
}

/* Largest input the chips take (hardware.md 4: 4K at most, 4096 x 2160). */
#define MAX_IN_W 4096
#define MAX_IN_H 2160

/* An MS2109S at more than 189 MHz: whether it halves like the MS2109 is not known (QT doubles
 * on the MS2109 only). Doubling is plausible only if the doubled mode fits the chips' largest
 * input and its active pixels fit in the pixel clock (they can never exceed it); a mode that
 * already fills the clock was reported whole. */
static bool
halved_plausible(const struct okvm_chip_status *st)
{
	double w = st->width * 2.0, h = st->height * 2.0;
	if (w > MAX_IN_W || h > MAX_IN_H)
		return false;
	return st->fps <= 0 || w * h * st->fps <= st->pixel_clock * 1e6;
}

/* hardware.md 3.2 "Resolution quirks" (QT normalizeResolution). */
static void
normalise(enum okvm_chip_kind kind, struct okvm_chip_status *st)
{
	bool halved = st->pixel_clock > 189.0 &&
		      (kind == OKVM_CHIP_MS2109 ||
		       (kind == OKVM_CHIP_MS2109S && halved_plausible(st)));
	if (halved) {
		if (st->width != 4096)
			st->width *= 2;
		if (st->height != 2160)
			st->height *= 2;
	}
	if (kind == OKVM_CHIP_MS2130S && st->width == 3840 && st->height == 1080)
		st->height = 2160;
}

static int
read_mode(struct okvm_chip *c, struct okvm_chip_status *st)
{
	uint16_t w, h, fps, pclk;
	int rc = okvm_chip_read16(c, c->desc->width, &w);
	if (rc == 0)
		rc = okvm_chip_read16(c, c->desc->height, &h);
	if (rc == 0)
		rc = okvm_chip_read16(c, c->desc->fps, &fps);
	if (rc == 0)
		rc = okvm_chip_read16(c, c->desc->pclk, &pclk);
	if (rc < 0)
		return rc;
	st->width = w;
	st->height = h;
	st->fps = fps / 100.0;
	st->pixel_clock = pclk / 100.0;
	normalise(c->kind, st);
	return 0;
}

int
okvm_chip_get_status(struct okvm_chip *c, struct okvm_chip_status *st)
{
	memset(st, 0, sizeof(*st));
	uint8_t sig;
	int rc = okvm_chip_firmware(c, st->firmware, NULL);
	if (rc == 0)
		rc = okvm_chip_read(c, c->desc->signal, &sig);
	if (rc < 0)
		return rc;
	st->signal = sig & 1;
	if (st->signal && (rc = read_mode(c, st)) < 0)
		return rc;
	st->has_toggle = okvm_chip_get_toggle(c, &st->toggle) == 0;
	st->has_switch = okvm_chip_get_switch(c, &st->usb) == 0;
	return 0;
}

int
okvm_chip_get_toggle(struct okvm_chip *c, enum okvm_usb_dir *out)
{
	uint8_t v;
	if (c->desc->toggle == NO_REG)
		return -ENOTSUP;
	int rc = okvm_chip_read(c, c->desc->toggle, &v);
	if (rc == 0)
		*out = v & 1 ? OKVM_USB_TO_TARGET : OKVM_USB_TO_HOST;
	return rc;
}

static int
switch_bit(struct okvm_chip *c, uint8_t *bit)
{
	if (!c->fw[0]) {
		int rc = okvm_chip_firmware(c, c->fw, NULL);
		if (rc < 0)
			return rc;
	}
	*bit = c->fw_number >= NEW_SWITCH_FW ? 0x01 : 0x10;
	return 0;
}

int
okvm_chip_get_switch(struct okvm_chip *c, enum okvm_usb_dir *out)
{
	uint8_t bit, v;
	if (c->desc->spdif == NO_REG)
		return -ENOTSUP;
	int rc = switch_bit(c, &bit);
	if (rc == 0)
		rc = okvm_chip_read(c, c->desc->spdif, &v);
	if (rc == 0)
		*out = v & bit ? OKVM_USB_TO_TARGET : OKVM_USB_TO_HOST;
	return rc;
}

int
okvm_chip_set_switch(struct okvm_chip *c, enum okvm_usb_dir dir)
{
	uint8_t bit, v;
	if (c->desc->spdif == NO_REG)
		return -ENOTSUP;
	int rc = switch_bit(c, &bit);
	if (rc == 0)
		rc = okvm_chip_read(c, c->desc->spdif, &v);
	if (rc < 0)
		return rc;
	v = dir == OKVM_USB_TO_TARGET ? (uint8_t)(v | bit) : (uint8_t)(v & ~bit);
	return okvm_chip_write(c, c->desc->spdif, v);
}
