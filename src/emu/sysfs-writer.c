/*
 * DESIGN: writes the sysfs view of a virtual Mini-KVM v1.9 (docs/hardware.md 1.2): the hub
 * 1A40:0101 at the unit's chain, the MS2109 composite (UVC, UAC, HID) on port 1 and the CH340
 * on port 2 (IDs, strings and ports: OKVM_MODEL_MINI_KVM_V1_9 of okvm/models.h), with the
 * class devices a kernel creates below their interfaces (video4linux, sound, hidraw, tty) and
 * the symlinks that lead to them. Discovery reads such a tree through
 * OKVM_SYSFS_ROOT exactly as it reads /sys, so a virtual unit can be discovered end to end.
 * Symlinks are relative, as in sysfs, so a tree can be moved or committed.
 * Thread: any; it only touches the files below root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu/sysfs-writer.h"
#include "okvm/models.h"

#define PCI "devices/pci0000:00/0000:00:14.0"

struct writer {
	const char *root;
	int err;
};

static int
mkdirs(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static void
put(struct writer *w, const char *rel, const char *name, const char *fmt, const char *val)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s/%s", w->root, rel);
	int rc = mkdirs(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = rc == 0 ? fopen(path, "we") : NULL;
	if (!f) {
		w->err = rc ? rc : -errno;
		return;
	}
	fprintf(f, fmt, val);
	fputc('\n', f);
	fclose(f);
}

/* A symlink at root/link_rel pointing at root/target_rel, written relative. */
static void
link_rel(struct writer *w, const char *link_rel, const char *target_rel)
{
	char rel[PATH_MAX] = "", path[PATH_MAX], dir[PATH_MAX];
	for (const char *p = strchr(link_rel, '/'); p; p = strchr(p + 1, '/'))
		strncat(rel, "../", sizeof(rel) - strlen(rel) - 1);
	strncat(rel, target_rel, sizeof(rel) - strlen(rel) - 1);
	snprintf(path, sizeof(path), "%s/%s", w->root, link_rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	int rc = mkdirs(dir);
	unlink(path);
	if (rc < 0 || symlink(rel, path) < 0)
		w->err = rc < 0 ? rc : -errno;
}

/* devices/.../usbB/B-P/B-P.Q for chain "B-P.Q". */
static void
dev_rel(const char *chain, char *out, size_t size)
{
	size_t bus_len = strcspn(chain, "-");
	int n = snprintf(out, size, PCI "/usb%.*s", (int)bus_len, chain);
	const char *p = chain + bus_len;
	while (*p && n > 0 && (size_t)n < size) {
		const char *next = strchr(p + 1, '.');
		size_t len = next ? (size_t)(next - chain) : strlen(chain);
		n += snprintf(out + n, size - (size_t)n, "/%.*s", (int)len, chain);
		if (!next)
			break;
		p = next;
	}
}

/* The device of one part of the model at chain, with IDs as sysfs writes them ("534d"). */
static void
usb_device(struct writer *w, const char *chain, const struct okvm_usb_part *d, char *dir,
	   size_t size)
{
	char link[PATH_MAX], vid[8], pid[8];
	dev_rel(chain, dir, size);
	snprintf(vid, sizeof(vid), "%04x", d->vid);
	snprintf(pid, sizeof(pid), "%04x", d->pid);
	put(w, dir, "idVendor", "%s", vid);
	put(w, dir, "idProduct", "%s", pid);
	put(w, dir, "product", "%s", d->product ? d->product : "");
	if (d->manufacturer)
		put(w, dir, "manufacturer", "%s", d->manufacturer);
	put(w, dir, "speed", "%s", "480");
	put(w, dir, "uevent", "%s", "DEVTYPE=usb_device");
	snprintf(link, sizeof(link), "bus/usb/devices/%s", chain);
	link_rel(w, link, dir);
}

/* Interface N of a device, bound to driver; its path goes to iface. */
static void
interface(struct writer *w, const char *dev, const char *chain, int n, const char *driver,
	  char *iface, size_t size)
{
	char num[8], drv[PATH_MAX], link[PATH_MAX + 16];
	snprintf(iface, size, "%s/%s:1.%d", dev, chain, n);
	snprintf(num, sizeof(num), "%02x", n);
	put(w, iface, "bInterfaceNumber", "%s", num);
	snprintf(drv, sizeof(drv), "bus/usb/drivers/%s", driver);
	char abs[PATH_MAX + 8];
	snprintf(abs, sizeof(abs), "%s/%s", w->root, drv);
	mkdirs(abs);
	snprintf(link, sizeof(link), "%s/driver", iface);
	link_rel(w, link, drv);
}

/* A class device at iface/sub and its class/<cls>/<name> link. */
static void
class_node(struct writer *w, const char *iface, const char *sub, const char *cls, const char *name)
{
	char dir[PATH_MAX], link[PATH_MAX], ev[96];
	if (snprintf(dir, sizeof(dir), "%s/%s", iface, sub) >= (int)sizeof(dir))
		abort(); /* the tree's own paths: far below PATH_MAX */
	snprintf(ev, sizeof(ev), "DEVNAME=%s", name);
	put(w, dir, "uevent", "%s", ev);
	snprintf(link, sizeof(link), "class/%s/%s", cls, name);
	link_rel(w, link, dir);
}

static void
write_ms2109(struct writer *w, const char *hub, const struct okvm_model *m,
	     const struct emu_sysfs_unit *u)
{
	char chain[40], dev[PATH_MAX], ifc[PATH_MAX + 64], sub[128], name[32];
	snprintf(chain, sizeof(chain), "%s.%d", hub, m->ports.video);
	usb_device(w, chain, &m->video, dev, sizeof(dev));
	interface(w, dev, chain, 0, "uvcvideo", ifc, sizeof(ifc));
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "video%d", u->video + i);
		snprintf(sub, sizeof(sub), "video4linux/%s", name);
		class_node(w, ifc, sub, "video4linux", name);
	}
	interface(w, dev, chain, 2, "snd-usb-audio", ifc, sizeof(ifc));
	snprintf(name, sizeof(name), "card%d", u->card);
	snprintf(sub, sizeof(sub), "sound/%s", name);
	class_node(w, ifc, sub, "sound", name);
	if (!u->hidraw)
		return;
	interface(w, dev, chain, 4, "usbhid", ifc, sizeof(ifc));
	snprintf(sub, sizeof(sub), "0003:%04X:%04X.0001/hidraw/%s", m->video.vid, m->video.pid,
		 u->hidraw);
	class_node(w, ifc, sub, "hidraw", u->hidraw);
}

static void
write_ch340(struct writer *w, const char *hub, const struct okvm_model *m,
	    const struct emu_sysfs_unit *u)
{
	char chain[40], dev[PATH_MAX], ifc[PATH_MAX + 64], sub[128];
	snprintf(chain, sizeof(chain), "%s.%d", hub, m->ports.serial);
	usb_device(w, chain, &m->serial, dev, sizeof(dev));
	interface(w, dev, chain, 0, "ch341", ifc, sizeof(ifc));
	snprintf(sub, sizeof(sub), "%s/tty/%s", u->tty, u->tty);
	class_node(w, ifc, sub, "tty", u->tty);
}

/* A USB-serial adapter on the extension pins (hub port 4, docs/extension-pins.md): an FT232R,
 * the chip of most 3.3 V adapters, with the IDs and driver Linux shows for it. */
static void
write_pins(struct writer *w, const char *hub, const struct okvm_model *m,
	   const struct emu_sysfs_unit *u)
{
	static const struct okvm_usb_part ft232r = { .vid = 0x0403,
						     .pid = 0x6001,
						     .product = "FT232R USB UART",
						     .manufacturer = "FTDI" };
	char chain[40], dev[PATH_MAX], ifc[PATH_MAX + 64], sub[128];
	snprintf(chain, sizeof(chain), "%s.%d", hub, m->ports.ext);
	usb_device(w, chain, &ft232r, dev, sizeof(dev));
	interface(w, dev, chain, 0, "ftdi_sio", ifc, sizeof(ifc));
	snprintf(sub, sizeof(sub), "%s/tty/%s", u->pins_tty, u->pins_tty);
	class_node(w, ifc, sub, "tty", u->pins_tty);
}

int
emu_sysfs_write(const char *root, const struct emu_sysfs_unit *u)
{
	struct writer w = { root, 0 };
	const struct okvm_model *m = okvm_model_get(OKVM_MODEL_MINI_KVM_V1_9);
	const char *hub = u->hub_chain ? u->hub_chain : "1-1";
	char dev[PATH_MAX], ifc[PATH_MAX + 64];
	usb_device(&w, hub, &m->hub, dev, sizeof(dev));
	interface(&w, dev, hub, 0, "hub", ifc, sizeof(ifc));
	write_ms2109(&w, hub, m, u);
	write_ch340(&w, hub, m, u);
	if (u->pins_tty)
		write_pins(&w, hub, m, u);
	return w.err;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
unlink_if_dangling(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, 0) < 0 &&
		    errno == ENOENT)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	if (d)
		closedir(d);
}

int
emu_sysfs_remove(const char *root, const struct emu_sysfs_unit *u)
{
	static const char *const dirs[] = { "bus/usb/devices", "class/tty", "class/hidraw",
					    "class/video4linux", "class/sound" };
	char rel[PATH_MAX], path[PATH_MAX * 3];
	dev_rel(u->hub_chain ? u->hub_chain : "1-1", rel, sizeof(rel));
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		return -errno;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root, dirs[i]);
		unlink_if_dangling(path);
	}
	return 0;
}
