/*
 * DESIGN: the Mini-KVM's video chip as the host sees it through hidraw: a 64 KiB XDATA register
 * file and a 2 KiB EEPROM behind vendor feature reports (docs/hardware.md 3.1-3.4).
 *
 * Pure: a struct and functions on bytes, no fds, no threads, no globals, so the same model
 * serves the LD_PRELOAD hidraw fake (tests/fakes/preload-hidraw.c) and an in-process virtual
 * unit. The caller serialises access (the real chip also handles one transaction at a time).
 *
 * A transaction is SET_FEATURE(request) then GET_FEATURE(response):
 *   request  [id] [cmd] [addr hi] [addr lo] [data] 0 0 0 0
 *   response [id] [cmd] [addr hi] [addr lo] [data or 5 EEPROM bytes] ...
 * The chip answers one report id and length (0 and 9 on the MS2109); anything else stalls
 * (-EPIPE), which is what drives the host's per-chip fall-backs of hardware.md 3.1.
 *
 * The EEPROM image follows the layout of hardware.md 3.4: signature, code size (BE), VID/PID (BE),
 * firmware version, video and audio names (length byte = name length + 1), code from 0x30 with a
 * 128-byte EDID inside, then the header checksum (sum of bytes 2..47) and the code checksum,
 * 16-bit BE each. The signature bytes are not known (hardware.md 3.4); the model uses A5 5A.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/ms2109-emu.h"
#include "okvm/models.h"
#include "lib/strnum.h"
#include "lib/xalloc.h"

#define CMD_READ_XDATA 0xB5
#define CMD_WRITE_XDATA 0xB6
#define CMD_READ_EEPROM 0xE5
#define CMD_WRITE_EEPROM 0xE6
#define NEW_SWITCH_FW 24081309UL /* hardware.md 3.2: from this firmware on, bit 0 of 0xDF01 */
#define CODE_SIZE 256
#define HALF_SIZE_PCLK_X100 18900 /* above 189 MHz the chip reports half the mode */

/* Register addresses per chip (hardware.md 3.2), report id and length it answers to. */
struct layout {
	const char *name;
	uint16_t fw, signal, width, height, fps, pclk;
	uint8_t report_id, report_len;
	bool halves;
};

static const struct layout layouts[] = {
	[OKVM_CHIP_MS2109] = { "ms2109", MS2109_REG_FW0, MS2109_REG_SIGNAL, MS2109_REG_WIDTH,
			       MS2109_REG_HEIGHT, MS2109_REG_FPS, MS2109_REG_PCLK, 0x00, 9, true },
	[OKVM_CHIP_MS2109S] = { "ms2109s", 0xCBDC, 0xFD9C, 0xC703, 0xC705, 0xC617, 0xC8C5, 0x00, 11,
				false },
	[OKVM_CHIP_MS2130S] = { "ms2130s", 0x1FDC, 0xFA8D, 0x1CFC, 0x1CFE, 0x1D02, 0x1D00, 0x01, 11,
				false },
};

static const struct layout *
lay(const struct ms2109_emu *e)
{
	return &layouts[(size_t)e->kind < sizeof(layouts) / sizeof(layouts[0]) ? e->kind : 0];
}

static void
put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static unsigned
get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static unsigned long
fw_number(const uint8_t fw[4])
{
	return ((fw[0] * 100UL + fw[1]) * 100UL + fw[2]) * 100UL + fw[3];
}

/* A 128-byte EDID 1.3 block named "HD to USB" with a valid checksum (MS2109-D default EDID,
 * Openterface's display name per hardware.md 4). */
static void
make_edid(uint8_t *p)
{
	static const uint8_t head[] = { 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00,
					0x36, 0x94, 0x09, 0x21, 0x01, 0x00, 0x00, 0x00,
					0x01, 0x22, 0x01, 0x03, 0x80, 0x3C, 0x22, 0x78 };
	static const char name[13] = "HD to USB\n  ";
	memset(p, 0, 128);
	memcpy(p, head, sizeof(head));
	uint8_t *d = p + 54 + 18; /* second descriptor: display name */
	d[3] = 0xFC;
	memcpy(d + 5, name, 13);
	unsigned sum = 0;
	for (int i = 0; i < 127; i++)
		sum += p[i];
	p[127] = (uint8_t)(256 - sum % 256);
}

static void
put_name(uint8_t *p, const char *name)
{
	size_t n = strlen(name);
	p[0] = (uint8_t)(n + 1);
	memcpy(p + 1, name, n);
}

static void
eeprom_checksums(struct ms2109_emu *e)
{
	uint8_t *img = e->eeprom;
	unsigned code = get16(img + 2), hsum = 0, csum = 0;
	for (int i = 2; i < 48; i++)
		hsum += img[i];
	for (unsigned i = 48; i < 48 + code; i++)
		csum += img[i];
	put16(img + 48 + code, hsum & 0xFFFF);
	put16(img + 50 + code, csum & 0xFFFF);
}

static void
eeprom_image(struct ms2109_emu *e)
{
	uint8_t *img = e->eeprom;
	const struct okvm_model *m = okvm_model_get(OKVM_MODEL_MINI_KVM_V1_9);
	memset(img, 0xFF, MS2109_EMU_EEPROM_SIZE);
	memset(img, 0, 48 + CODE_SIZE);
	img[0] = 0xA5;
	img[1] = 0x5A;
	put16(img + 2, CODE_SIZE);
	put16(img + 6, m->video.vid);
	put16(img + 8, m->video.pid);
	memcpy(img + 12, e->fw, 4);
	put_name(img + 0x10, "Openterface");
	put_name(img + 0x20, "Openterface");
	for (int i = 0; i < 16; i++) /* a recognisable code preamble before the EDID */
		img[0x30 + i] = (uint8_t)(0x02 + i);
	make_edid(img + 0x40);
	eeprom_checksums(e);
}

static int
set_fw(struct ms2109_emu *e, const char *fw)
{
	if (strlen(fw) != 8 || strspn(fw, "0123456789") != 8)
		return -EINVAL;
	for (int i = 0; i < 4; i++)
		e->fw[i] = (uint8_t)((fw[2 * i] - '0') * 10 + fw[2 * i + 1] - '0');
	memcpy(e->xdata + lay(e)->fw, e->fw, 4);
	memcpy(e->eeprom + 12, e->fw, 4);
	eeprom_checksums(e);
	return 0;
}

void
ms2109_emu_init(struct ms2109_emu *e, const char *fw)
{
	memset(e, 0, sizeof(*e));
	e->kind = OKVM_CHIP_MS2109;
	e->echo = true;
	e->halves = true;
	e->report_id = 0x00;
	e->report_len = 9;
	e->xdata[MS2109_REG_TEST] = 0xA7;
	eeprom_image(e);
	if (set_fw(e, fw ? fw : MS2109_EMU_DEFAULT_FW) < 0)
		set_fw(e, MS2109_EMU_DEFAULT_FW);
}

uint8_t
ms2109_emu_switch_bit(const struct ms2109_emu *e)
{
	return fw_number(e->fw) >= NEW_SWITCH_FW ? 0x01 : 0x10;
}

bool
ms2109_emu_routed_target(const struct ms2109_emu *e)
{
	return e->xdata[MS2109_REG_SPDIFOUT] & ms2109_emu_switch_bit(e);
}

void
ms2109_emu_set_toggle(struct ms2109_emu *e, bool target)
{
	uint8_t *r = &e->xdata[MS2109_REG_TOGGLE];
	*r = (uint8_t)((*r & ~1u) | (target ? 1u : 0u));
}

void
ms2109_emu_set_signal(struct ms2109_emu *e, bool on, int width, int height, int fps_x100,
		      int pclk_x100)
{
	const struct layout *l = lay(e);
	uint8_t *x = e->xdata;
	x[l->signal] = (uint8_t)((x[l->signal] & ~1u) | (on ? 1u : 0u));
	if (!on) {
		memset(x + l->width, 0, 2);
		memset(x + l->height, 0, 2);
		memset(x + l->fps, 0, 2);
		memset(x + l->pclk, 0, 2);
		return;
	}
	if (pclk_x100 <= 0) /* CEA-like total: 1.1 x 1.04 blanking, rounded */
		pclk_x100 = (int)((long long)width * height * fps_x100 * 1144 / 1000 / 1000000);
	if (e->halves && pclk_x100 > HALF_SIZE_PCLK_X100) {
		width /= 2;
		height /= 2;
	}
	put16(x + l->width, (unsigned)width);
	put16(x + l->height, (unsigned)height);
	put16(x + l->fps, (unsigned)fps_x100);
	put16(x + l->pclk, (unsigned)pclk_x100 > 0xFFFF ? 0xFFFF : (unsigned)pclk_x100);
}

int
ms2109_emu_set_chip(struct ms2109_emu *e, const char *spec)
{
	size_t n = strcspn(spec, "-");
	int kind = -1;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (strlen(layouts[i].name) == n && !strncmp(spec, layouts[i].name, n))
			kind = (int)i;
	if (kind < 0)
		return -EINVAL;
	bool echo = true, halves = layouts[kind].halves;
	for (const char *p = spec + n; *p;) {
		p++; /* the '-' */
		size_t k = strcspn(p, "-");
		if (k == 6 && !strncmp(p, "noecho", k))
			echo = false;
		else if (k == 6 && !strncmp(p, "halves", k))
			halves = true;
		else if (k == 8 && !strncmp(p, "nohalves", k))
			halves = false;
		else
			return -EINVAL;
		p += k;
	}
	ms2109_emu_set_signal(e, false, 0, 0, 0, 0);
	memset(e->xdata + lay(e)->fw, 0, 4);
	e->kind = (enum okvm_chip_kind)kind;
	e->echo = echo;
	e->halves = halves;
	e->report_id = layouts[kind].report_id;
	e->report_len = layouts[kind].report_len;
	memcpy(e->xdata + lay(e)->fw, e->fw, 4);
	return 0;
}

static bool
accepts(const struct ms2109_emu *e, const uint8_t *buf, size_t len)
{
	if (!len || buf[0] != e->report_id || len < e->report_len) {
		return false;
	}
	return true;
}

int
ms2109_emu_feature_set(struct ms2109_emu *e, const uint8_t *buf, size_t len)
{
	if (!accepts(e, buf, len))
		return -EPIPE;
	unsigned addr = get16(buf + 2);
	uint8_t *r = e->response;
	memset(r, 0, sizeof(e->response));
	memcpy(r, buf, 4);
	switch (buf[1]) {
	case CMD_READ_XDATA: r[4] = e->xdata[addr]; break;
	case CMD_WRITE_XDATA:
		e->xdata[addr] = buf[4];
		r[4] = buf[4];
		break;
	case CMD_READ_EEPROM:
		for (unsigned i = 0; i < 5; i++)
			r[4 + i] = e->eeprom[(addr + i) % MS2109_EMU_EEPROM_SIZE];
		break;
	case CMD_WRITE_EEPROM:
		e->eeprom[addr % MS2109_EMU_EEPROM_SIZE] = buf[4];
		r[4] = buf[4];
		break;
	default: /* unknown command: the chip echoes and does nothing */ break;
	}
	if (!e->echo)
		memset(r + 1, 0, 3); /* the data stays at byte 4, where the official app reads it */
	e->pending = true;
	return 0;
}

int
ms2109_emu_feature_get(struct ms2109_emu *e, uint8_t *buf, size_t len)
{
	if (!len || buf[0] != e->report_id)
		return -EPIPE;
	size_t n = len < e->report_len ? len : e->report_len;
	if (e->pending) {
		memcpy(buf, e->response, n);
	} else {
		memset(buf, 0, n);
		buf[0] = e->report_id;
	}
	e->pending = false;
	return (int)n;
}

static int
apply_mode(struct ms2109_emu *e, const char *v)
{
	int w, h;
	double fps;
	if (sscanf(v, "%dx%d@%lf", &w, &h, &fps) != 3 || w <= 0 || h <= 0 || w > 8192 || h > 8192 ||
	    fps <= 0 || fps > 240)
		return -EINVAL;
	ms2109_emu_set_signal(e, true, w, h, (int)(fps * 100 + 0.5), 0);
	return 0;
}

static int
apply_reg(struct ms2109_emu *e, const char *key, const char *v)
{
	long addr, val;
	if (!str_to_long(key, 0, 0, 0xFFFF, &addr) || !str_to_long(v, 0, 0, 0xFF, &val))
		return -EINVAL;
	e->xdata[addr] = (uint8_t)val;
	return 0;
}

int
ms2109_emu_apply(struct ms2109_emu *e, const char *setting)
{
	char key[32];
	const char *eq = strchr(setting, '=');
	long n;
	if (!eq || eq == setting || (size_t)(eq - setting) >= sizeof(key))
		return -EINVAL;
	snprintf(key, sizeof(key), "%.*s", (int)(eq - setting), setting);
	const char *v = eq + 1;
	if (!strcmp(key, "fw"))
		return set_fw(e, v);
	if (!strcmp(key, "mode"))
		return apply_mode(e, v);
	if (!strcmp(key, "chip"))
		return ms2109_emu_set_chip(e, v);
	if ((!strcmp(key, "echo") || !strcmp(key, "halves")) &&
	    (!strcmp(v, "0") || !strcmp(v, "1"))) {
		*(key[0] == 'e' ? &e->echo : &e->halves) = v[0] == '1';
		return 0;
	}
	if (!strcmp(key, "signal") && (!strcmp(v, "0") || !strcmp(v, "1"))) {
		uint8_t *sig = &e->xdata[lay(e)->signal];
		*sig = (uint8_t)((*sig & ~1u) | (v[0] == '1'));
		return 0;
	}
	if (!strcmp(key, "toggle") && (!strcmp(v, "host") || !strcmp(v, "target"))) {
		ms2109_emu_set_toggle(e, v[0] == 't');
		return 0;
	}
	if (!strcmp(key, "pclk") && str_to_long(v, 0, 0, 0xFFFF, &n)) {
		put16(e->xdata + lay(e)->pclk, (unsigned)n);
		return 0;
	}
	if (!strcmp(key, "report_id") && str_to_long(v, 0, 0, 255, &n)) {
		e->report_id = (uint8_t)n;
		return 0;
	}
	if (!strcmp(key, "report_len") && str_to_long(v, 0, 5, 65, &n)) {
		e->report_len = (size_t)n;
		return 0;
	}
	if (!strncmp(key, "reg.", 4))
		return apply_reg(e, key + 4, v);
	return -EINVAL;
}

size_t
ms2109_emu_dump(const struct ms2109_emu *e, char *out, size_t size)
{
	struct ms2109_emu *ref = xmalloc(sizeof(*ref));
	char fw[9];
	snprintf(fw, sizeof(fw), "%02u%02u%02u%02u", e->fw[0] % 100u, e->fw[1] % 100u,
		 e->fw[2] % 100u, e->fw[3] % 100u);
	ms2109_emu_init(ref, fw);
	ms2109_emu_set_chip(ref, lay(e)->name);
	size_t n = (size_t)snprintf(out, size,
				    "chip=%s\necho=%d\nhalves=%d\nfw=%s\nreport_id=%u\n"
				    "report_len=%zu\n",
				    lay(e)->name, e->echo, e->halves, fw, e->report_id,
				    e->report_len);
	for (unsigned a = 0; a < sizeof(e->xdata) && n < size; a++)
		if (e->xdata[a] != ref->xdata[a])
			n += (size_t)snprintf(out + n, size - n, "reg.0x%04X=0x%02X\n", a,
					      e->xdata[a]);
	free(ref);
	return n < size ? n : size - 1;
}
