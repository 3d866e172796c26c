/*
 * DESIGN: `okvm doctor [--json]`: one report an owner of a real unit can read or attach to a bug
 * report. It checks what stops a unit from working on a new machine (device-node permissions
 * and groups, the udev rule, brltty and ModemManager), finds each part of the unit, opens the
 * link with baud detection and measures what the upstream sources disagree on: whether the
 * chip answers GET_INFO, whether it acknowledges HID reports, the GET_INFO round trip, the
 * length of its GET_PARA_CFG block, whether its DATAFLIP line (CTS) moves and the target's poll
 * interval it shows, and whether the video chip's register replies echo the request.
 *
 * Each check is a row: an id, a status (ok, warn, fail, unknown, skip), one line for people
 * and its measured values. Text: one line per check. --json: one object with every value and
 * nothing personal (no user or host names, no USB serial numbers). Exit 0 when no check
 * failed, 1 when one did. Sends only harmless traffic: GET_INFO, GET_PARA_CFG and empty
 * keyboard reports (nothing pressed), so the target sees no input.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli/cli.h"
#include "okvm/chip.h"
#include "okvm/discover.h"
#include "okvm/error.h"
#include "okvm/link.h"
#include "okvm/models.h"
#include "okvm/unit.h"
#include "okvm/video.h"

#define RTT_ROUNDS 20
#define ACK_REPORTS 4
#define DATAFLIP_REPORTS 16

enum status { ST_OK, ST_WARN, ST_FAIL, ST_UNKNOWN, ST_SKIP };

static const char *const status_names[] = { "ok", "warn", "fail", "unknown", "skip" };

struct report {
	cJSON *checks; /* array */
	bool failed;
};

/* One row: id, status, the line for people; returns its object for the measured values. */
static cJSON *row(struct report *r, const char *id, enum status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static cJSON *
row(struct report *r, const char *id, enum status st, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "status", status_names[st]);
	cJSON_AddStringToObject(o, "summary", line);
	cJSON_AddItemToArray(r->checks, o);
	if (st == ST_FAIL)
		r->failed = true;
	return o;
}

/* ---- the machine ---- */

/* A process named comm runs (/proc/PID/comm). */
static bool
process_runs(const char *comm)
{
	DIR *d = opendir("/proc");
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], name[64] = "";
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f))
			name[strcspn(name, "\n")] = 0;
		fclose(f);
		found = !strcmp(name, comm);
	}
	closedir(d);
	return found;
}

static const char *const rule_dirs[] = { "/etc/udev/rules.d", "/usr/lib/udev/rules.d",
					 "/lib/udev/rules.d" };

static const char *
find_rule(const char *name, char *buf, size_t n)
{
	for (size_t i = 0; i < sizeof(rule_dirs) / sizeof(rule_dirs[0]); i++) {
		snprintf(buf, n, "%s/%s", rule_dirs[i], name);
		if (access(buf, F_OK) == 0)
			return buf;
	}
	return NULL;
}

static void
check_machine(struct report *r)
{
	struct utsname u;
	cJSON *o = row(r, "okvm", ST_OK, "okvm %s on Linux %s", OKVM_VERSION,
		       uname(&u) == 0 ? u.release : "?");
	cJSON_AddStringToObject(o, "version", OKVM_VERSION);
	cJSON_AddStringToObject(o, "kernel", uname(&u) == 0 ? u.release : "");

	char path[256];
	const char *rule = find_rule("60-okvm.rules", path, sizeof(path));
	o = rule ? row(r, "udev-rule", ST_OK, "%s is installed", rule)
		 : row(r, "udev-rule", ST_WARN,
		       "no 60-okvm.rules in /etc/udev/rules.d: without it only root opens the "
		       "video chip (sudo cp dist/60-okvm.rules /etc/udev/rules.d/)");
	cJSON_AddBoolToObject(o, "installed", rule != NULL);

	/* brltty's udev rule claims every CH340 (1A86:7523), the Mini-KVM's serial bridge. */
	bool brl_rule = find_rule("85-brltty.rules", path, sizeof(path)) != NULL;
	bool brl_runs = process_runs("brltty");
	o = brl_runs   ? row(r, "brltty", ST_WARN,
			     "brltty runs and may take the CH340 serial port (sudo apt remove "
			       "brltty, or disable its udev rule)")
	    : brl_rule ? row(r, "brltty", ST_WARN,
			     "brltty is installed: its udev rule may take the CH340 serial port "
			     "when the unit is plugged in")
		       : row(r, "brltty", ST_OK, "brltty is not installed");
	cJSON_AddBoolToObject(o, "running", brl_runs);
	cJSON_AddBoolToObject(o, "installed", brl_rule);

	bool mm = process_runs("ModemManager");
	o = mm ? row(r, "modemmanager", ST_WARN,
		     "ModemManager runs: it may probe the serial port with AT commands when the "
		     "unit is plugged in (the link recovers, but the first seconds can fail)")
	       : row(r, "modemmanager", ST_OK, "ModemManager does not run");
	cJSON_AddBoolToObject(o, "running", mm);
}

/* ---- the unit's nodes ---- */

static bool
in_group(gid_t g)
{
	if (getegid() == g)
		return true;
	gid_t list[256];
	int n = getgroups(256, list);
	for (int i = 0; i < n; i++)
		if (list[i] == g)
			return true;
	return false;
}

/* May this user read and write the node? The group to join when not. */
static void
check_node(struct report *r, const char *id, const char *what, const char *path)
{
	if (!path || !path[0] || path[0] != '/') {
		row(r, id, ST_SKIP, "%s: %s", what, path && path[0] ? path : "none found");
		return;
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		cJSON *o = row(r, id, ST_FAIL, "%s %s: %s", what, path, strerror(errno));
		cJSON_AddStringToObject(o, "node", path);
		return;
	}
	bool rw = access(path, R_OK | W_OK) == 0;
	const struct group *gr = getgrgid(st.st_gid);
	char gname[64];
	snprintf(gname, sizeof(gname), "%s", gr ? gr->gr_name : "?");
	cJSON *o;
	if (rw)
		o = row(r, id, ST_OK, "%s %s: read and write", what, path);
	else if (!in_group(st.st_gid))
		o = row(r, id, ST_FAIL,
			"%s %s: no access; join its group: sudo usermod -aG %s $USER, then log in "
			"again",
			what, path, gname);
	else
		o = row(r, id, ST_FAIL, "%s %s: no access though in group %s (mode %03o)", what,
			path, gname, (unsigned)(st.st_mode & 0777));
	cJSON_AddStringToObject(o, "node", path);
	cJSON_AddStringToObject(o, "group", gname);
	cJSON_AddBoolToObject(o, "rw", rw);
	cJSON_AddBoolToObject(o, "in_group", in_group(st.st_gid));
}

static void
check_parts(struct report *r, struct okvm_unit *u)
{
	const struct okvm_unit_info *ui = okvm_unit_info(u);
	cJSON *o = row(r, "unit", ST_OK, "%s", okvm_unit_name(u));
	if (!ui) {
		cJSON_AddStringToObject(o, "serial_node", okvm_unit_serial_path(u));
		check_node(r, "serial-node", "serial port", okvm_unit_serial_path(u));
		return;
	}
	const struct okvm_model *m = okvm_model_of_unit(ui);
	char ids[32];
	cJSON_AddStringToObject(o, "model", m ? m->name : "unknown");
	cJSON_AddStringToObject(o, "port_chain", ui->port_chain);
	snprintf(ids, sizeof(ids), "%04x:%04x", ui->video_vid, ui->video_pid);
	cJSON_AddStringToObject(o, "video_usb", ids);
	snprintf(ids, sizeof(ids), "%04x:%04x", ui->serial_vid, ui->serial_pid);
	cJSON_AddStringToObject(o, "serial_usb", ids);
	cJSON_AddStringToObject(o, "serial_driver", ui->serial_driver);
	cJSON_AddStringToObject(o, "alsa_card", ui->alsa_card);
	cJSON_AddBoolToObject(o, "behind_hub", ui->behind_hub);
	check_node(r, "serial-node", "serial port", ui->serial_node);
	check_node(r, "video-node", "capture node", ui->video_node);
	check_node(r, "hidraw-node", "video chip (hidraw)", ui->hidraw_node);
	if (!ui->alsa_card[0])
		row(r, "audio", ST_WARN, "no sound card of the unit (snd-usb-audio not loaded?)");
	else
		row(r, "audio", ST_OK, "sound card %s", ui->alsa_card);
}

/* ---- the keyboard/mouse chip ---- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* GET_INFO round trips: min, median, 95th percentile, max in ms. */
static void
check_rtt(struct report *r, struct okvm_link *l)
{
	double ms[RTT_ROUNDS];
	int n = 0;
	for (int i = 0; i < RTT_ROUNDS && !cli_stop_signal; i++) {
		struct okvm_ch9329_info info;
		uint64_t t0 = okvm_now_us();
		if (okvm_link_get_info(l, &info, 500) == 0)
			ms[n++] = (double)(okvm_now_us() - t0) / 1000.0;
	}
	if (!n) {
		row(r, "get-info-rtt", ST_UNKNOWN, "GET_INFO round trip: no answer to measure");
		return;
	}
	qsort(ms, (size_t)n, sizeof(ms[0]), cmp_double);
	double p95 = ms[(n * 95 + 99) / 100 - 1];
	cJSON *o = row(r, "get-info-rtt", ST_OK,
		       "GET_INFO round trip: median %.1f ms, p95 %.1f ms (%d of %d answered)",
		       ms[n / 2], p95, n, RTT_ROUNDS);
	cJSON_AddNumberToObject(o, "answered", n);
	cJSON_AddNumberToObject(o, "rounds", RTT_ROUNDS);
	cJSON_AddNumberToObject(o, "min_ms", ms[0]);
	cJSON_AddNumberToObject(o, "median_ms", ms[n / 2]);
	cJSON_AddNumberToObject(o, "p95_ms", p95);
	cJSON_AddNumberToObject(o, "max_ms", ms[n - 1]);
}

/* Empty keyboard reports (nothing pressed): does the chip acknowledge HID reports? */
static void
check_acks(struct report *r, struct okvm_link *l)
{
	struct okvm_link_stats before, after;
	okvm_link_get_stats(l, &before);
	const struct okvm_kbd_report none = { 0 };
	for (int i = 0; i < ACK_REPORTS; i++)
		okvm_link_send_kbd(l, &none);
	int rc = okvm_link_flush(l, 5000);
	okvm_link_get_stats(l, &after);
	uint64_t sent = after.reports_sent - before.reports_sent;
	uint64_t acked = after.acks - before.acks;
	uint64_t missed = (after.report_timeouts - before.report_timeouts) +
			  (after.unpaced - before.unpaced);
	cJSON *o;
	if (rc < 0 && !sent)
		o = row(r, "hid-acks", ST_FAIL, "HID reports: none could be sent: %s",
			okvm_strerror(rc));
	else if (acked >= sent)
		o = row(r, "hid-acks", ST_OK,
			"HID reports: the chip acknowledges them (%llu of %llu)",
			(unsigned long long)acked, (unsigned long long)sent);
	else if (!acked)
		o = row(r, "hid-acks", ST_WARN,
			"HID reports: the chip acknowledges none (%llu sent): okvm paces by a fixed "
			"gap, which it cannot confirm",
			(unsigned long long)sent);
	else
		o = row(r, "hid-acks", ST_WARN, "HID reports: %llu of %llu acknowledged",
			(unsigned long long)acked, (unsigned long long)sent);
	cJSON_AddNumberToObject(o, "sent", (double)sent);
	cJSON_AddNumberToObject(o, "acked", (double)acked);
	cJSON_AddNumberToObject(o, "unacked", (double)missed);
	cJSON_AddNumberToObject(o, "ack_ms_max", after.ack_ms_max);
}

/* DATAFLIP (hardware.md 2.11: CTS toggles on every report the target takes; wired on Mini-KVM
 * v1.9): does it move here, and which poll interval do its toggles show? */
static void
check_dataflip(struct report *r, struct okvm_link *l, bool target_connected)
{
	if (!target_connected) {
		row(r, "dataflip", ST_UNKNOWN,
		    "DATAFLIP: not measured: the target is not connected (it takes no reports)");
		return;
	}
	int rc = okvm_link_probe_target(l, DATAFLIP_REPORTS, 5000);
	struct okvm_link_stats st;
	okvm_link_get_stats(l, &st);
	cJSON *o;
	if (rc == -ENOTSUP)
		o = row(r, "dataflip", ST_UNKNOWN,
			"DATAFLIP: this port cannot show the CTS line: okvm paces by the fixed gap");
	else if (rc < 0)
		o = row(r, "dataflip", ST_UNKNOWN, "DATAFLIP: not measured: %s", okvm_strerror(rc));
	else if (st.flip_pacing)
		o = row(r, "dataflip", ST_OK,
			"DATAFLIP: CTS toggles on each report the target takes; it polls about "
			"every %.0f ms; okvm paces typing by it",
			st.target_poll_ms < 1 ? 1 : st.target_poll_ms);
	else
		o = row(r, "dataflip", ST_OK,
			"DATAFLIP: CTS does not move (v1.6 board, KVM-Go, or not wired): okvm paces "
			"by the fixed gap");
	cJSON_AddStringToObject(o, "state",
				st.flip_pacing   ? "toggles"
				: st.flip_absent ? "none"
						 : "unknown");
	cJSON_AddNumberToObject(o, "flips", (double)st.flips);
	if (st.flip_pacing)
		cJSON_AddNumberToObject(o, "target_poll_ms", st.target_poll_ms);
}

static void
check_link(struct report *r, struct okvm_unit *u)
{
	uint64_t t0 = okvm_now_us();
	int rc = okvm_unit_connect(u);
	double open_ms = (double)(okvm_now_us() - t0) / 1000.0;
	if (rc < 0) {
		cJSON *o = row(r, "link", ST_FAIL, "%s: %s", okvm_unit_serial_path(u),
			       rc == -ETIMEDOUT
				       ? "the CH9329 does not answer at 9600 or 115200 baud (wrong "
					 "port, or the unit is unpowered)"
				       : okvm_strerror(rc));
		cJSON_AddStringToObject(o, "error", okvm_strerror(rc));
		return;
	}
	struct okvm_link *l = okvm_unit_link(u);
	struct okvm_link_state st;
	okvm_link_get_state(l, &st);
	cJSON *o = row(r, "link", ST_OK, "%s opened at %d baud in %.0f ms%s",
		       okvm_unit_serial_path(u), st.baud, open_ms,
		       okvm_unit_baud(u) ? "" : " (detected)");
	cJSON_AddNumberToObject(o, "baud", st.baud);
	cJSON_AddBoolToObject(o, "detected", okvm_unit_baud(u) == 0);
	cJSON_AddNumberToObject(o, "open_ms", open_ms);

	struct okvm_ch9329_info info = { 0 };
	rc = okvm_link_get_info(l, &info, 1000);
	if (rc == 0) {
		char ver[16];
		cli_ch9329_version_text(info.version, ver, sizeof(ver));
		o = row(r, "get-info", ST_OK, "GET_INFO: version %s, target %s, LEDs%s%s%s%s", ver,
			info.target_connected ? "connected" : "not connected",
			info.leds & OKVM_LED_NUM ? " num" : "",
			info.leds & OKVM_LED_CAPS ? " caps" : "",
			info.leds & OKVM_LED_SCROLL ? " scroll" : "", info.leds & 7 ? "" : " off");
		cJSON_AddBoolToObject(o, "answered", true);
		cJSON_AddStringToObject(o, "version", ver);
		cJSON_AddNumberToObject(o, "version_byte", info.version);
		cJSON_AddBoolToObject(o, "target_connected", info.target_connected);
		cJSON_AddNumberToObject(o, "leds", info.leds);
	} else {
		o = row(r, "get-info", ST_WARN,
			"GET_INFO: no answer (%s): target and LEDs are unknown; okvm works without "
			"them",
			okvm_strerror(rc));
		cJSON_AddBoolToObject(o, "answered", false);
	}
	if (rc == 0)
		check_rtt(r, l);
	struct okvm_ch9329_params p;
	rc = okvm_link_get_params(l, &p, 1000);
	if (rc == 0) {
		char usb[16];
		snprintf(usb, sizeof(usb), "%04x:%04x", p.vid, p.pid);
		o = row(r, "get-para-cfg", ST_OK, "GET_PARA_CFG: mode %d%s, baud %u, USB %s",
			p.mode & 0x03, p.mode & 0x80 ? " (by pins)" : "", (unsigned)p.baud, usb);
		cJSON_AddNumberToObject(o, "mode", p.mode);
		cJSON_AddNumberToObject(o, "serial_mode", p.serial_mode);
		cJSON_AddNumberToObject(o, "baud", p.baud);
		cJSON_AddStringToObject(o, "usb", usb);
	} else {
		o = row(r, "get-para-cfg", ST_UNKNOWN, "GET_PARA_CFG: no answer (%s)",
			okvm_strerror(rc));
	}
	cJSON_AddBoolToObject(o, "answered", rc == 0);
	check_acks(r, l);
	/* a chip that ignores GET_INFO does not say whether the target is there: try anyway */
	check_dataflip(r, l, st.info_unknown || info.target_connected);
}

/* ---- the video chip ---- */

static void
check_chip(struct report *r, struct okvm_unit *u)
{
	int rc = okvm_unit_open_chip(u);
	if (rc == -ENXIO || rc == -ENOTSUP) {
		row(r, "video-chip", ST_SKIP, "video chip: not reachable here (%s)",
		    rc == -ENXIO ? "a tty path names no unit" : "not through hidraw");
		return;
	}
	if (rc < 0) {
		cJSON *o = row(r, "video-chip", ST_FAIL, "video chip %s: %s%s",
			       okvm_unit_chip_path(u), okvm_strerror(rc),
			       rc == -EACCES ? " (install dist/60-okvm.rules)" : "");
		cJSON_AddStringToObject(o, "error", okvm_strerror(rc));
		return;
	}
	struct okvm_chip_status cs;
	rc = okvm_chip_get_status(okvm_unit_chip(u), &cs);
	if (rc < 0) {
		row(r, "video-chip", ST_FAIL, "video chip %s: register reads fail: %s",
		    okvm_unit_chip_path(u), okvm_strerror(rc));
		return;
	}
	const char *kind = okvm_chip_kind_name(okvm_chip_kind(okvm_unit_chip(u)));
	cJSON *o = row(r, "video-chip", ST_OK, "video chip %s: %s, firmware %s, %s",
		       okvm_unit_chip_path(u), kind, cs.firmware,
		       cs.signal ? "HDMI signal" : "no signal");
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON_AddStringToObject(o, "firmware", cs.firmware);
	cJSON_AddBoolToObject(o, "signal", cs.signal);
	/* hardware.md 3.1: the official apps read byte 4 of any answer; whether the MS2109S and
	 * MS2130S echo the request is what this row settles. */
	unsigned echoed, bare;
	okvm_chip_echo_counts(okvm_unit_chip(u), &echoed, &bare);
	o = row(r, "register-echo", ST_OK,
		"register answers: %u echo the request, %u echo nothing%s", echoed, bare,
		bare ? (echoed ? " (mixed)"
			       : " (okvm reads byte 4 of them, as the official apps do)")
		     : "");
	cJSON_AddNumberToObject(o, "echoed", echoed);
	cJSON_AddNumberToObject(o, "not_echoed", bare);
	if (cs.signal) {
		o = row(r, "hdmi", ST_OK, "HDMI: %dx%d at %.2f Hz, pixel clock %.2f MHz", cs.width,
			cs.height, cs.fps, cs.pixel_clock);
		cJSON_AddNumberToObject(o, "width", cs.width);
		cJSON_AddNumberToObject(o, "height", cs.height);
		cJSON_AddNumberToObject(o, "fps", cs.fps);
		cJSON_AddNumberToObject(o, "pixel_clock_mhz", cs.pixel_clock);
	} else {
		row(r, "hdmi", ST_WARN, "HDMI: no signal (is the target on and its cable in?)");
	}
	if (cs.has_switch) {
		o = row(r, "usb-switch", ST_OK, "USB switch: the port is at the %s%s%s",
			cs.usb == OKVM_USB_TO_HOST ? "host" : "target",
			cs.has_toggle ? ", the toggle at the " : "",
			cs.has_toggle ? (cs.toggle == OKVM_USB_TO_HOST ? "host" : "target") : "");
		cJSON_AddStringToObject(o, "port", cs.usb == OKVM_USB_TO_HOST ? "host" : "target");
		if (cs.has_toggle)
			cJSON_AddStringToObject(o, "toggle",
						cs.toggle == OKVM_USB_TO_HOST ? "host" : "target");
	}
}

/* ---- the command ---- */

static void
print_text(const cJSON *checks)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, checks)
	{
		printf("%-8s %-14s %s\n", cJSON_GetObjectItem(c, "status")->valuestring,
		       cJSON_GetObjectItem(c, "id")->valuestring,
		       cJSON_GetObjectItem(c, "summary")->valuestring);
	}
}

int
cmd_doctor(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage("doctor: unexpected argument '%s' (okvm doctor [--json])",
				 argv[1]);
	if (cli->device && !strncmp(cli->device, "frames:", 7))
		return cli_usage("doctor: -d %s is a folder of frames, not a unit", cli->device);
	struct report r = { .checks = cJSON_CreateArray() };
	check_machine(&r);
	struct okvm_unit_spec spec = { .link = { .info_poll_ms = 0 } };
	struct okvm_unit *u = NULL;
	int rc = cli_unit_new(cli, &spec, &u); /* says why there is no unit, in one line */
	if (rc) {
		row(&r, "unit", ST_FAIL, "no unit (see the line above)");
	} else {
		check_parts(&r, u);
		check_link(&r, u);
		check_chip(&r, u);
	}
	if (cli->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "okvm_doctor", OKVM_VERSION);
		cJSON_AddBoolToObject(o, "ok", !r.failed);
		cJSON_AddItemToObject(o, "checks", r.checks);
		char *s = cJSON_Print(o);
		puts(s);
		free(s);
		cJSON_Delete(o);
	} else {
		print_text(r.checks);
		printf("%s\n", r.failed ? "Something failed: see the lines marked fail. Attach "
					  "`okvm doctor --json` to a bug report."
					: "No failures. `okvm doctor --json` has every figure.");
		cJSON_Delete(r.checks);
	}
	okvm_unit_free(u);
	return r.failed ? CLI_FAIL : CLI_OK;
}
