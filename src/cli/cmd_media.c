/*
 * DESIGN: `okvm media write IMAGE [--disk DEV] [--boot] [--force]` and `okvm media status`:
 * a USB stick in the unit's switchable port as the target's virtual media (docs/power.md,
 * "Virtual media"). Order of a write, every refusal before the first byte: the image is checked
 * (a compressed one unpacked to nowhere and counted), the port is switched to the host (the
 * `okvm switch host` code), the medium found (discovery: a block device in the switchable port;
 * -d emu: --emu-media FILE), the device must be that medium (else --force), unmounted and large
 * enough (a refusal puts the port back to the target: nothing was written); then
 * src/power/media.c writes and verifies, the port goes to the target, and --boot runs
 * `okvm power cycle`. SIGINT/SIGTERM stop the write; the port stays at the host, where the
 * half-written medium cannot boot the target.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/strnum.h"
#include "okvm/discover.h"
#include "power/media.h"

#define FIND_TIMEOUT_MS 15000 /* a stick enumerating after the switch */

struct media_opts {
	const char *device, *emu_media; /* --emu-media: the global option */
	bool boot, force;
};

void
cmd_media_help(FILE *out)
{
	fputs("usage: okvm media write IMAGE [--disk DEV] [--boot] [--force]\n"
	      "       okvm media status\n"
	      "  A USB stick in the unit's switchable port as the target's virtual media.\n"
	      "  write: switch the port to the host, find the stick (a block device in the port),\n"
	      "  check it is unmounted and large enough, write IMAGE (.gz, .xz and .zst are\n"
	      "  unpacked on the way), verify it by SHA-256, switch the port to the target.\n"
	      "  --disk DEV        the block device (default: the one in the switchable port); a\n"
	      "                    device elsewhere is refused without --force (--device is\n"
	      "                    the global option that picks the unit)\n"
	      "  --boot            then power-cycle the target (okvm power cycle)\n"
	      "  --force           write a device that is not in the unit's switchable port\n"
	      "  -d emu --emu-media FILE: the virtual unit, FILE stands for the stick (its size\n"
	      "                    is the stick's; the port starts at the target)\n"
	      "  status: the device in the port, its size, where the port points, mounted or not.\n",
	      out);
}

static int
parse_opts(int argc, char **argv, struct media_opts *o)
{
	static const struct option opts[] = {
		{ "disk", required_argument, NULL, 'D' },
		{ "boot", no_argument, NULL, 'b' },
		{ "force", no_argument, NULL, 'f' },
		{ 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'D')
			o->device = optarg;
		else if (c == 'b')
			o->boot = true;
		else if (c == 'f')
			o->force = true;
		else
			return cli_usage("media: unknown option '%s' (okvm media --help)",
					 argv[optind - 1]);
	}
	return CLI_OK;
}

static void
on_progress(void *ud, const char *phase, uint64_t done, uint64_t total, double secs)
{
	(void)ud;
	char a[32], b[32];
	media_human(done, a, sizeof(a));
	media_human(total, b, sizeof(b));
	double rate = secs > 0 ? (double)done / 1e6 / secs : 0;
	double eta = rate > 0 && total > done ? (double)(total - done) / 1e6 / rate : 0;
	bool tty = isatty(STDERR_FILENO);
	static double logged = -1; /* a log gets a line a second, and each phase's last */
	if (!tty && done < total && secs - logged < 1.0 && secs >= logged)
		return;
	logged = done < total ? secs : -1;
	fprintf(stderr, "%s%s: %s of %s (%.0f %%), %.1f MB/s, ETA %d:%02d%s", tty ? "\r" : "",
		phase, a, b, total ? 100.0 * (double)done / (double)total : 100.0, rate,
		(int)eta / 60, (int)eta % 60, tty ? "\033[K" : "\n");
	if (tty && done >= total)
		fputc('\n', stderr);
}

/* Move the port with `okvm switch`'s code (it prints "usb switch: ..."). */
static int
switch_port(struct cli *cli, const char *dir)
{
	char a0[] = "switch", a1[16];
	snprintf(a1, sizeof(a1), "%s", dir);
	char *argv[] = { a0, a1, NULL };
	return cmd_switch(cli, 2, argv);
}

/* The block device in the unit's switchable port now: 1 (path set), 0 (none), or CLI_*. */
static int
port_device(struct cli *cli, const struct media_opts *o, char *path, size_t n, char *unit,
	    size_t un)
{
	int rc = media_port_device(cli_is_emu(cli), o->emu_media, cli->device, path, n, unit, un);
	return rc < 0 ? -cli_fail("media: %s", unit) : rc;
}

/* After the switch: wait for the stick to enumerate (the virtual one is there at once). */
static int
find_port_device(struct cli *cli, const struct media_opts *o, char *path, size_t n, char *unit,
		 size_t un)
{
	for (int waited = 0;; waited += 250) {
		int rc = port_device(cli, o, path, n, unit, un);
		if (rc != 0 || cli_is_emu(cli) || waited >= FIND_TIMEOUT_MS || cli_stop_signal)
			return rc;
		poll(NULL, 0, 250);
	}
}

/* --disk must name the port's medium (same inode), unless --force. */
static int
check_device(const struct media_opts *o, const char *port, const char *unit, char *dev, size_t n)
{
	char msg[PATH_MAX * 2 + 160];
	if (media_check_disk(o->device, port, unit, o->force, "--force", msg, sizeof(msg)))
		return cli_fail("%s", msg);
	snprintf(dev, n, "%s", o->device);
	return CLI_OK;
}

static int
checks(struct media_job *j, uint64_t *dev_size)
{
	char msg[PATH_MAX * 2 + 160];
	if (media_check_device(j->device, j->image, j->image_size, true, dev_size, msg,
			       sizeof(msg)))
		return cli_fail("%s", msg);
	return CLI_OK;
}

static int
boot(struct cli *cli)
{
	char a0[] = "power", a1[] = "cycle";
	char *argv[] = { a0, a1, NULL };
	int rc = cmd_power(cli, 2, argv);
	if (rc)
		return cli_fail("media: written and verified, but the power cycle failed");
	return CLI_OK;
}

/* A refusal after the switch to the host: nothing was written, so the stick goes back to the
 * target as it was. */
static int
refused(struct cli *cli, int rc)
{
	switch_port(cli, "target");
	return rc;
}

static int
write_media(struct cli *cli, const struct media_opts *o, const char *image)
{
	struct media_job j = { .image = image,
			       .cancel = &cli_stop_signal,
			       .progress = on_progress };
	const char *delay = getenv("OKVM_MEDIA_DELAY_MS"); /* test hook: a slow medium */
	long ms = 0;
	if (delay && str_to_long(delay, 10, 0, 10000, &ms))
		j.chunk_delay_ms = (int)ms;
	if (access(image, R_OK) < 0)
		return cli_usage("media: %s: %s", image, strerror(errno));
	int rc = media_image_size(&j, &j.image_size);
	if (rc == -EINTR)
		return cli_fail("media: interrupted while checking %s: nothing written", image);
	if (rc < 0)
		return cli_fail("media: %s", j.err);
	if ((rc = switch_port(cli, "host")))
		return rc;
	char port[PATH_MAX] = "", dev[PATH_MAX], unit[64];
	int found = find_port_device(cli, o, port, sizeof(port), unit, sizeof(unit));
	if (found < 0)
		return refused(cli, -found);
	if (o->device)
		rc = check_device(o, port, unit, dev, sizeof(dev));
	else if (!found)
		rc = cli_fail("media: no USB stick in %s's switchable port%s", unit,
			      cli_is_emu(cli) ? " (give -d emu --emu-media FILE)"
					      : " (okvm list shows what is there; --disk DEV)");
	else
		snprintf(dev, sizeof(dev), "%s", port);
	if (rc)
		return refused(cli, rc);
	j.device = dev;
	uint64_t dev_size;
	if ((rc = checks(&j, &dev_size)))
		return refused(cli, rc);
	fprintf(stderr, "writing %s (%s) to %s\n", image, media_codec_name(media_codec_of(image)),
		dev);
	rc = media_write(&j);
	if (rc == -EINTR) {
		char a[32];
		media_human(j.written, a, sizeof(a));
		if (isatty(STDERR_FILENO))
			fputc('\n', stderr);
		return cli_fail("media: interrupted after %llu of %llu bytes (%s): the medium is "
				"not bootable; the port stays at the host",
				(unsigned long long)j.written, (unsigned long long)j.image_size, a);
	}
	if (rc < 0)
		return cli_fail("media: %s; the medium is not bootable; the port stays at the host",
				j.err);
	printf("written %llu bytes in %.2f s (%.1f MB/s), verified: sha256 %s\n",
	       (unsigned long long)j.written, j.write_secs,
	       j.write_secs > 0 ? (double)j.written / 1e6 / j.write_secs : 0, j.sha256);
	fflush(stdout);
	if ((rc = switch_port(cli, "target")))
		return rc;
	return o->boot ? boot(cli) : CLI_OK;
}

static int
status(struct cli *cli, const struct media_opts *o)
{
	char port[PATH_MAX] = "", unit[64];
	int found = port_device(cli, o, port, sizeof(port), unit, sizeof(unit));
	if (found < 0)
		return -found;
	if (!found) {
		printf("medium: none on the host (the port points to the target, or nothing is "
		       "plugged in)\n");
	} else {
		uint64_t size = 0;
		char where[PATH_MAX + 64], s[32];
		int rc = media_device_size(port, &size);
		media_human(size, s, sizeof(s));
		printf("medium: %s\n", port);
		if (rc == 0)
			printf("size: %llu bytes (%s)\n", (unsigned long long)size, s);
		rc = media_mounted(port, NULL, where, sizeof(where));
		printf("mounted: %s\n", rc > 0 ? where : rc == 0 ? "no" : "unknown");
	}
	fflush(stdout);
	char a0[] = "switch", a1[] = "status";
	char *argv[] = { a0, a1, NULL };
	return cmd_switch(cli, 2, argv);
}

int
cmd_media(struct cli *cli, int argc, char **argv)
{
	struct media_opts o = { 0 };
	int rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc;
	o.emu_media = cli->emu_media;
	if (o.emu_media && !cli_is_emu(cli))
		return cli_usage("media: --emu-media is for the virtual unit (-d emu)");
	if (optind < argc && !strcmp(argv[optind], "status") && optind + 1 == argc)
		return status(cli, &o);
	if (optind + 2 == argc && !strcmp(argv[optind], "write")) {
		cli_install_signals();
		return write_media(cli, &o, argv[optind + 1]);
	}
	return cli_usage("media: give write IMAGE or status (okvm media --help)");
}
