/*
 * DESIGN: finding Openterface units in sysfs (docs/hardware.md 1.2, 1.3).
 *
 * Everything is read from a sysfs root (normally /sys, OKVM_SYSFS_ROOT or an explicit root in
 * tests), so recorded trees in tests/fixtures/sysfs/ exercise the same code as a real machine.
 * No device node is opened here.
 *
 * 1. Every USB device under ROOT/bus/usb/devices is read (chain, VID:PID, product).
 * 2. Every node of the classes tty, hidraw, video4linux, sound, block and net is walked up (by
 *    resolving its class symlink) to the USB device it belongs to: the last path component of
 *    the form B-P[.P...] ("3-3.2"); interface suffixes (":1.0") are not device components.
 * 3. Units are anchored on the capture chip, as the official app does; IDs and hub ports are
 *    those of the model table (models.c, okvm/models.h):
 *    - Mini-KVM (hardware.md 1.2): 534D:2109 on port 1 of a 1A40:0101 hub, whose chain is the key.
 *      A 534D:2109 elsewhere counts only if its product string says "Openterface" (MacroSilicon's
 *      default ID is on every generic HDMI capture stick). The serial chip is the 1A86:7523 on
 *      hub port 2 *of that hub*, never a CH340 found elsewhere (QT issue #141: another CH340
 *      adapter was taken for the unit's). Hub port 3 is the switchable USB-A port, hub port 4
 *      the host-side extension pins (hardware.md 1.2). A unit whose hub has other IDs, or its
 *      parts other ports (another batch), is grouped by parent hub as QT does: the one 1A86:7523
 *      on the same hub, any port; then the hub's chain is the key.
 *    - KVM-Go (345F:2132) and KVM-VGA (345F:2109): the composite's own chain is the key; the
 *      1A86:FE0C serial is the one below the same parent hub (USB 2 topology), or below the
 *      USB 2 twin of that hub (USB 3 topology, where the composite sits on the SuperSpeed bus and
 *      the serial under the hub's high-speed half). The twin is found through the kernel's
 *      `peer` links between the two halves of a port; without them, by the same port path on
 *      another bus.
 * 4. Class nodes whose USB device is one of the unit's parts are attached to it.
 *
 * What it does not do: open nodes, read registers (chip.h), or decide what to do with a unit.
 * Thread: any; no global state.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "okvm/discover.h"
#include "okvm/log.h"
#include "okvm/models.h"
#include "lib/strnum.h"
#include "lib/xalloc.h"

struct usbdev {
	char chain[32];
	char dir[PATH_MAX];
	uint16_t vid, pid;
	char product[64];
	bool taken; /* already a part of some unit */
};

struct classnode {
	char cls[16];
	char name[64];
	char chain[32];
	char driver[32]; /* driver of the interface the node hangs off */
};

struct scan {
	const char *root;
	struct usbdev *devs;
	size_t n_devs, cap_devs;
	struct classnode *nodes;
	size_t n_nodes, cap_nodes;
	struct okvm_unit_info *units;
	size_t n_units, cap_units;
};

const char *
okvm_discover_default_root(void)
{
	const char *env = getenv("OKVM_SYSFS_ROOT");
	return env && *env ? env : "/sys";
}

const char *
okvm_variant_name(enum okvm_variant v)
{
	switch (v) {
	case OKVM_VARIANT_MINI_KVM: return "Mini-KVM";
	case OKVM_VARIANT_KVM_GO: return "KVM-Go";
	case OKVM_VARIANT_KVM_VGA: return "KVM-VGA";
	}
	return "unknown";
}


/* Bounded copy that always terminates (truncation is acceptable for display strings). */
static void
copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n > size - 1)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* Read a one-line sysfs attribute, trailing newline removed. Returns length or -errno. */
static int
read_attr(const char *dir, const char *name, char *buf, size_t size)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return (int)n;
}

static uint16_t
read_hex16(const char *dir, const char *name)
{
	char buf[16];
	if (read_attr(dir, name, buf, sizeof(buf)) <= 0)
		return 0;
	return (uint16_t)strtoul(buf, NULL, 16);
}

/* "3-3.2" yes; "3-3.2:1.0", "usb3", "3-0:1.0" no. */
static bool
is_device_component(const char *s, size_t len)
{
	size_t i = 0;
	bool dash = false;
	if (!len || s[0] < '0' || s[0] > '9')
		return false;
	for (; i < len; i++) {
		char c = s[i];
		if (c == '-' && !dash && i > 0)
			dash = true;
		else if (!(c >= '0' && c <= '9') && !(c == '.' && dash))
			return false;
	}
	return dash && s[len - 1] != '-' && s[len - 1] != '.';
}

/* The USB device chain a resolved sysfs path belongs to (last device component), and the
 * directory of the interface right below it. Returns false if the path is not under USB. */
static bool
chain_of_path(const char *path, char *chain, size_t size, char *iface_dir, size_t iface_size)
{
	const char *p = path, *best = NULL;
	size_t best_len = 0;
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		if (is_device_component(p, (size_t)(end - p))) {
			best = p;
			best_len = (size_t)(end - p);
		}
		p = end;
	}
	if (!best || best_len >= size)
		return false;
	memcpy(chain, best, best_len);
	chain[best_len] = 0;
	if (iface_dir) {
		const char *after = best + best_len;
		const char *iend = *after == '/' ? strchrnul(after + 1, '/') : after;
		snprintf(iface_dir, iface_size, "%.*s", (int)(iend - path), path);
	}
	return true;
}

static void
link_basename(const char *dir, const char *name, char *out, size_t size)
{
	char path[PATH_MAX + 64], target[PATH_MAX];
	out[0] = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return;
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = 0;
	const char *slash = strrchr(target, '/');
	copy(out, size, slash ? slash + 1 : target);
}

static void
add_usb_device(struct scan *s, const char *name)
{
	char link[PATH_MAX + 64], real[PATH_MAX];
	snprintf(link, sizeof(link), "%s/bus/usb/devices/%s", s->root, name);
	if (!realpath(link, real))
		return; /* dangling: the device went away while we looked */
	s->devs = xgrow(s->devs, &s->cap_devs, s->n_devs, sizeof(*s->devs), 16);
	struct usbdev *d = &s->devs[s->n_devs];
	memset(d, 0, sizeof(*d));
	copy(d->chain, sizeof(d->chain), name);
	copy(d->dir, sizeof(d->dir), real);
	d->vid = read_hex16(real, "idVendor");
	d->pid = read_hex16(real, "idProduct");
	if (read_attr(real, "product", d->product, sizeof(d->product)) < 0)
		d->product[0] = 0;
	if (d->vid || d->pid)
		s->n_devs++;
}

static int
scan_usb(struct scan *s)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/bus/usb/devices", s->root);
	DIR *dir = opendir(path);
	if (!dir)
		return -errno;
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (is_device_component(e->d_name, strlen(e->d_name)) &&
		    strlen(e->d_name) < sizeof(s->devs->chain))
			add_usb_device(s, e->d_name);
	}
	closedir(dir);
	return 0;
}

static bool
wanted_node(const char *cls, const char *name, const char *real)
{
	if (!strcmp(cls, "sound"))
		return !strncmp(name, "card", 4);
	if (!strcmp(cls, "block")) {
		char buf[8];
		return read_attr(real, "partition", buf, sizeof(buf)) < 0;
	}
	return true;
}

static void
scan_class(struct scan *s, const char *cls)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/class/%s", s->root, cls);
	DIR *dir = opendir(path);
	if (!dir)
		return;
	struct dirent *e;
	while ((e = readdir(dir))) {
		char link[PATH_MAX + 300], real[PATH_MAX], iface[PATH_MAX];
		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		if (!realpath(link, real) || !wanted_node(cls, e->d_name, real))
			continue;
		struct classnode n = { 0 };
		if (!chain_of_path(real, n.chain, sizeof(n.chain), iface, sizeof(iface)))
			continue;
		copy(n.cls, sizeof(n.cls), cls);
		copy(n.name, sizeof(n.name), e->d_name);
		link_basename(iface, "driver", n.driver, sizeof(n.driver));
		s->nodes = xgrow(s->nodes, &s->cap_nodes, s->n_nodes, sizeof(*s->nodes), 16);
		s->nodes[s->n_nodes++] = n;
	}
	closedir(dir);
}

static struct usbdev *
find_dev(struct scan *s, const char *chain)
{
	for (size_t i = 0; i < s->n_devs; i++)
		if (!strcmp(s->devs[i].chain, chain))
			return &s->devs[i];
	return NULL;
}

/* "3-3.1" -> "3-3"; "3-3" -> "" (on a root port). */
static void
parent_chain(const char *chain, char *out, size_t size)
{
	const char *dot = strrchr(chain, '.');
	if (!dot) {
		out[0] = 0;
		return;
	}
	snprintf(out, size, "%.*s", (int)(dot - chain), chain);
}

/* chain is prefix itself or lies below it ("3-3.4" and "3-3.4.1" are under "3-3.4"). */
static bool
under(const char *chain, const char *prefix)
{
	size_t n = strlen(prefix);
	return n && !strncmp(chain, prefix, n) && (chain[n] == 0 || chain[n] == '.');
}

static const char *
strip_bus(const char *chain)
{
	const char *dash = strchr(chain, '-');
	return dash ? dash + 1 : chain;
}

static struct okvm_unit_info *
new_unit(struct scan *s, enum okvm_variant v, const char *key, struct usbdev *video)
{
	s->units = xgrow(s->units, &s->cap_units, s->n_units, sizeof(*s->units), 16);
	struct okvm_unit_info *u = &s->units[s->n_units++];
	memset(u, 0, sizeof(*u));
	u->variant = v;
	copy(u->port_chain, sizeof(u->port_chain), key);
	copy(u->video_chain, sizeof(u->video_chain), video->chain);
	copy(u->product, sizeof(u->product), video->product);
	u->video_vid = video->vid;
	u->video_pid = video->pid;
	video->taken = true;
	return u;
}

static void
set_serial(struct okvm_unit_info *u, struct usbdev *d)
{
	copy(u->serial_chain, sizeof(u->serial_chain), d->chain);
	u->serial_vid = d->vid;
	u->serial_pid = d->pid;
	d->taken = true;
}

static void
node_path(const struct classnode *n, char *out, size_t size)
{
	const char *prefix = "/dev/", *name = n->name;
	if (!strcmp(n->cls, "sound")) {
		prefix = "hw:";
		name += 4; /* "card1" -> "hw:1" */
	} else if (!strcmp(n->cls, "net")) {
		prefix = "";
	}
	size_t k = strlen(prefix);
	copy(out, size, prefix);
	copy(out + k, size - k, name);
}

static void
describe_ext(struct scan *s, const struct usbdev *d, struct okvm_ext_device *x)
{
	memset(x, 0, sizeof(*x));
	copy(x->port_chain, sizeof(x->port_chain), d->chain);
	x->vid = d->vid;
	x->pid = d->pid;
	copy(x->product, sizeof(x->product), d->product);
	char iface[PATH_MAX + 64];
	snprintf(iface, sizeof(iface), "%s/%s:1.0", d->dir, d->chain);
	link_basename(iface, "driver", x->driver, sizeof(x->driver));
	for (size_t i = 0; i < s->n_nodes; i++) {
		if (!strcmp(s->nodes[i].chain, d->chain)) {
			node_path(&s->nodes[i], x->node, sizeof(x->node));
			break;
		}
	}
}

const char *
okvm_ext_role(const struct okvm_ext_device *x)
{
	static const char *const serial_drivers[] = { "ftdi_sio", "cp210x", "ch341", "pl2303",
						      "cdc_acm" };
	static const char *const relays[] = { "HID relay, 1 channel", "HID relay, 2 channels",
					      "HID relay, 4 channels", "HID relay, 8 channels" };
	if (x->vid == 0x16c0 && x->pid == 0x05df && !strncmp(x->product, "USBRelay", 8)) {
		/* the boards' product string names the channels (PiKVM's hidrelay driver) */
		switch (x->product[8]) {
		case '1': return relays[0];
		case '2': return relays[1];
		case '4': return relays[2];
		case '8': return relays[3];
		default: return "HID relay";
		}
	}
	if (strncmp(x->node, "/dev/tty", 8))
		return NULL;
	for (size_t i = 0; i < sizeof(serial_drivers) / sizeof(serial_drivers[0]); i++)
		if (!strcmp(x->driver, serial_drivers[i]))
			return "USB-serial adapter: console + power lines";
	return NULL;
}

/* Devices on hub port `port` of the unit's hub and below it. */
static size_t
collect_port(struct scan *s, const char *hub, int port, struct okvm_ext_device *out)
{
	char prefix[48];
	size_t n = 0;
	snprintf(prefix, sizeof(prefix), "%s.%d", hub, port);
	for (size_t i = 0; i < s->n_devs && n < OKVM_DISCOVER_MAX_EXT; i++)
		if (under(s->devs[i].chain, prefix))
			describe_ext(s, &s->devs[i], &out[n++]);
	return n;
}

/* chain is "<hub>.<port>" */
static bool
on_port(const char *chain, const char *hub, int port)
{
	char want[48];
	snprintf(want, sizeof(want), "%s.%d", hub, port);
	return !strcmp(chain, want);
}

/* The serial part of model m right below hub `hub` (not taken): the only one, or the one on
 * the table's serial port; NULL if none, or several and none there. */
static struct usbdev *
sibling_serial(struct scan *s, const char *hub, const struct okvm_model *m)
{
	struct usbdev *found = NULL;
	size_t n = 0;
	for (size_t i = 0; i < s->n_devs; i++) {
		struct usbdev *d = &s->devs[i];
		char parent[32];
		parent_chain(d->chain, parent, sizeof(parent));
		if (d->taken || strcmp(parent, hub) ||
		    !okvm_model_part_is(m, OKVM_PART_SERIAL, d->vid, d->pid))
			continue;
		if (on_port(d->chain, hub, m->ports.serial))
			return d;
		found = d;
		n++;
	}
	return n == 1 ? found : NULL; /* two elsewhere: neither is certain */
}

/* The port number of a chain below a hub ("3-3.2" -> 2). */
static int
port_of(const char *chain)
{
	const char *dot = strrchr(chain, '.');
	long port;
	return dot && str_to_long(dot + 1, 10, 1, 255, &port) ? (int)port : 0;
}

/*
 * A model whose parts sit on fixed ports of its own hub (Mini-KVM, struct okvm_model_ports).
 * The known layout (the table's hub ID, the video on its port) takes the serial chip by port.
 * Any other hub holding an "Openterface" video chip is taken as the unit's own, as QT groups
 * by parent hub only (hardware.md 1.3): the serial chip is the one of the model's ID on that
 * hub, whatever its port; the switchable and extension ports are known only when the video and
 * serial ports are the table's.
 */
static void
build_hub_unit(struct scan *s, struct usbdev *video, const struct okvm_model *m)
{
	char hub[32];
	parent_chain(video->chain, hub, sizeof(hub));
	struct usbdev *h = hub[0] ? find_dev(s, hub) : NULL;
	bool known = h && okvm_model_part_is(m, OKVM_PART_HUB, h->vid, h->pid) &&
		     on_port(video->chain, hub, m->ports.video);
	bool named = m->video.product && strstr(video->product, m->video.product);
	if (!known && !named) {
		/* 534D:2109 is MacroSilicon's default ID: every generic HDMI capture stick has it */
		okvm_log(OKVM_LOG_DEBUG,
			 "discover: %s is a MacroSilicon capture device (\"%s\"), "
			 "not a %s",
			 video->chain, video->product, okvm_variant_name(m->variant));
		return;
	}
	struct usbdev *d = NULL;
	if (known) {
		char serial[48];
		snprintf(serial, sizeof(serial), "%s.%d", hub, m->ports.serial);
		d = find_dev(s, serial);
		if (d && !okvm_model_part_is(m, OKVM_PART_SERIAL, d->vid, d->pid))
			d = NULL;
	} else if (h) {
		d = sibling_serial(s, hub, m);
	}
	bool grouped = known || d;
	struct okvm_unit_info *u = new_unit(s, m->variant, grouped ? hub : video->chain, video);
	u->behind_hub = grouped;
	if (!grouped) {
		okvm_log(OKVM_LOG_INFO,
			 "discover: %s (%04X:%04X) shares no hub with a %04X:%04X serial chip; no "
			 "serial chip is associated with it",
			 video->chain, m->video.vid, m->video.pid, m->serial.vid, m->serial.pid);
		return;
	}
	if (!known)
		okvm_log(
			OKVM_LOG_INFO,
			"discover: %s: hub %04X:%04X, video on port %d, serial on port %d: not the "
			"known %04X:%04X layout; grouped by parent hub",
			hub, h->vid, h->pid, port_of(video->chain), port_of(d->chain), m->hub.vid,
			m->hub.pid);
	if (d)
		set_serial(u, d);
	bool table_ports = on_port(video->chain, hub, m->ports.video) &&
			   (!d || on_port(d->chain, hub, m->ports.serial));
	if (!table_ports)
		return; /* which port is the switchable one is not known */
	if (m->ports.switchable)
		u->n_switchable = collect_port(s, hub, m->ports.switchable, u->switchable);
	if (m->ports.ext)
		u->n_ext = collect_port(s, hub, m->ports.ext, u->ext);
}

/* The directory of the hub port that `chain` is plugged into ("usb2-port1", "2-1-port3"). */
static bool
upstream_port_dir(struct scan *s, const char *chain, char *out, size_t size)
{
	char parent[32], hubdir[PATH_MAX];
	size_t bus_len = strcspn(chain, "-");
	const char *dot = strrchr(chain, '.');
	parent_chain(chain, parent, sizeof(parent));
	if (!parent[0]) { /* on a root port: the root hub usbB, interface B-0:1.0 */
		char link[PATH_MAX];
		snprintf(link, sizeof(link), "%s/bus/usb/devices/usb%.*s", s->root, (int)bus_len,
			 chain);
		if (!realpath(link, hubdir))
			return false;
		snprintf(out, size, "%s/%.*s-0:1.0/usb%.*s-port%s", hubdir, (int)bus_len, chain,
			 (int)bus_len, chain, chain + bus_len + 1);
		return true;
	}
	const struct usbdev *h = find_dev(s, parent);
	if (!h)
		return false;
	snprintf(out, size, "%s/%s:1.0/%s-port%s", h->dir, parent, parent, dot + 1);
	return true;
}

/*
 * The USB 2 twin of a USB 3 hub: the kernel links the SuperSpeed and high-speed halves of each
 * port with a `peer` symlink ("usb2-port1" -> "usb1-port3", "2-1-port2" -> "1-3-port2"). The
 * device on the peer port is the twin hub. Returns false when there is no peer link.
 */
static bool
twin_hub(struct scan *s, const char *hub, char *out, size_t size)
{
	char port[PATH_MAX + 128], peer[64];
	if (!upstream_port_dir(s, hub, port, sizeof(port)))
		return false;
	link_basename(port, "peer", peer, sizeof(peer));
	char *sep = strstr(peer, "-port");
	if (!sep)
		return false;
	*sep = 0;
	const char *num = sep + 5;
	if (!strncmp(peer, "usb", 3))
		snprintf(out, size, "%s-%s", peer + 3, num);
	else
		snprintf(out, size, "%s.%s", peer, num);
	return true;
}

/* The CH32V208 of a KVM-Go/KVM-VGA whose composite hangs below hub `parent`. */
static struct usbdev *
find_companion_serial(struct scan *s, const char *parent, const struct okvm_model *m)
{
	struct usbdev *best = NULL;
	char twin[160];
	bool has_twin = twin_hub(s, parent, twin, sizeof(twin));
	for (size_t i = 0; i < s->n_devs; i++) {
		struct usbdev *d = &s->devs[i];
		if (d->taken || !okvm_model_part_is(m, OKVM_PART_SERIAL, d->vid, d->pid))
			continue;
		bool same = under(d->chain, parent);
		/* without peer links (old kernels): the same port path on another bus */
		bool other = has_twin ? under(d->chain, twin)
				      : under(strip_bus(d->chain), strip_bus(parent));
		if ((same || other) && (!best || strlen(d->chain) < strlen(best->chain)))
			best = d;
	}
	return best;
}

static void
build_gen2(struct scan *s, struct usbdev *video, const struct okvm_model *m)
{
	struct okvm_unit_info *u = new_unit(s, m->variant, video->chain, video);
	char parent[32];
	parent_chain(video->chain, parent, sizeof(parent));
	if (!parent[0])
		copy(parent, sizeof(parent), video->chain);
	struct usbdev *d = find_companion_serial(s, parent, m);
	if (d)
		set_serial(u, d);
}

static void
attach_node(struct okvm_unit_info *u, const struct classnode *n)
{
	bool video = !strcmp(n->chain, u->video_chain);
	bool serial = u->serial_chain[0] && !strcmp(n->chain, u->serial_chain);
	if (video && !strcmp(n->cls, "hidraw") && !u->hidraw_node[0]) {
		node_path(n, u->hidraw_node, sizeof(u->hidraw_node));
	} else if (video && !strcmp(n->cls, "video4linux")) {
		/* the lowest number is the capture node; the next one is UVC metadata */
		char p[64];
		node_path(n, p, sizeof(p));
		if (!u->video_node[0] || strverscmp(p, u->video_node) < 0)
			copy(u->video_node, sizeof(u->video_node), p);
	} else if (video && !strcmp(n->cls, "sound")) {
		node_path(n, u->alsa_card, sizeof(u->alsa_card));
	} else if (serial && !strcmp(n->cls, "tty")) {
		node_path(n, u->serial_node, sizeof(u->serial_node));
		copy(u->serial_driver, sizeof(u->serial_driver), n->driver);
	}
}

static int
cmp_unit(const void *a, const void *b)
{
	const struct okvm_unit_info *x = a, *y = b;
	return strverscmp(x->port_chain, y->port_chain);
}

static void
build_units(struct scan *s)
{
	/* units on their own hub first: they take their serial chip by port, not by search */
	for (size_t i = 0; i < s->n_devs; i++) {
		struct usbdev *d = &s->devs[i];
		const struct okvm_model *m = okvm_model_find(d->vid, d->pid, OKVM_PART_VIDEO);
		if (m && m->topology == OKVM_TOPO_HUB_PORTS)
			build_hub_unit(s, d, m);
	}
	for (size_t i = 0; i < s->n_devs; i++) {
		struct usbdev *d = &s->devs[i];
		const struct okvm_model *m = okvm_model_find(d->vid, d->pid, OKVM_PART_VIDEO);
		if (m && m->topology != OKVM_TOPO_HUB_PORTS)
			build_gen2(s, d, m);
	}
	for (size_t u = 0; u < s->n_units; u++)
		for (size_t i = 0; i < s->n_nodes; i++)
			attach_node(&s->units[u], &s->nodes[i]);
	if (s->n_units)
		qsort(s->units, s->n_units, sizeof(*s->units), cmp_unit);
	for (size_t u = 0; u < s->n_units; u++)
		s->units[u].index = (int)u + 1;
}

static int
cmp_dev(const void *a, const void *b)
{
	const struct usbdev *x = a, *y = b;
	return strverscmp(x->chain, y->chain);
}

int
okvm_discover_scan(const char *root, struct okvm_unit_info **out, size_t *n)
{
	static const char *const classes[] = { "tty",   "hidraw", "video4linux",
					       "sound", "block",  "net" };
	struct scan s = { .root = root ? root : okvm_discover_default_root() };
	*out = NULL;
	*n = 0;
	int rc = scan_usb(&s);
	if (rc < 0) {
		okvm_log(OKVM_LOG_DEBUG, "discover: %s/bus/usb/devices: %s", s.root, strerror(-rc));
		return rc;
	}
	if (s.n_devs)
		qsort(s.devs, s.n_devs, sizeof(*s.devs), cmp_dev);
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		scan_class(&s, classes[i]);
	build_units(&s);
	free(s.devs);
	free(s.nodes);
	*out = s.units;
	*n = s.n_units;
	return 0;
}

int
okvm_discover_tty_usb_id(const char *root, const char *tty, uint16_t *vid, uint16_t *pid)
{
	char link[PATH_MAX + 64], dir[PATH_MAX], real[PATH_MAX];
	const char *name = tty;
	if (realpath(tty, real)) /* a symlink such as /dev/serial/by-id/... */
		name = real;
	const char *slash = strrchr(name, '/');
	snprintf(link, sizeof(link), "%s/class/tty/%s", root ? root : okvm_discover_default_root(),
		 slash ? slash + 1 : name);
	if (!realpath(link, dir))
		return -ENOENT;
	for (char *end; (end = strrchr(dir, '/')) && end != dir; *end = 0) {
		uint16_t v = read_hex16(dir, "idVendor"), p = read_hex16(dir, "idProduct");
		if (v || p) {
			*vid = v;
			*pid = p;
			return 0;
		}
	}
	return -ENOENT;
}

void
okvm_discover_free_units(struct okvm_unit_info *units)
{
	free(units);
}

static bool
unit_has_node(const struct okvm_unit_info *u, const char *path)
{
	return (u->serial_node[0] && !strcmp(path, u->serial_node)) ||
	       (u->hidraw_node[0] && !strcmp(path, u->hidraw_node)) ||
	       (u->video_node[0] && !strcmp(path, u->video_node));
}

static bool
unit_has_chain(const struct okvm_unit_info *u, const char *chain)
{
	return !strcmp(chain, u->port_chain) || !strcmp(chain, u->video_chain) ||
	       (u->serial_chain[0] && !strcmp(chain, u->serial_chain));
}

int
okvm_discover_match(const struct okvm_unit_info *units, size_t n, const char *spec)
{
	if (!spec || !*spec)
		return -EINVAL;
	char *end;
	long num = strtol(spec, &end, 10);
	if (!*end && end != spec)
		return num >= 1 && (size_t)num <= n ? (int)num - 1 : -ENOENT;
	char real[PATH_MAX];
	bool resolved = spec[0] == '/' && realpath(spec, real);
	for (size_t i = 0; i < n; i++) {
		if (unit_has_chain(&units[i], spec) || unit_has_node(&units[i], spec) ||
		    (resolved && unit_has_node(&units[i], real)))
			return (int)i;
	}
	return -ENOENT;
}
