/*
 * DESIGN: a small V4L2 and hidraw client that talks to the LD_PRELOAD fakes the way programs
 * other than okvm do (tests/integration/test_fakes_clients.py), printing "key=value" lines:
 *   fake-probe v4l2 PATH    QUERYCAP with the request passed as an int (sign-extended to 64 bits,
 *                           as in programs that keep requests in an int), as unsigned long, and
 *                           access() and stat() of the node
 *   fake-probe hidraw PATH  what hidapi's hid_open_path and hid_get_feature_report do: open,
 *                           HIDIOCGRDESCSIZE, HIDIOCGRDESC, HIDIOCGRAWINFO, HIDIOCGRAWNAME(256),
 *                           then an MS2109 register read (SET_FEATURE 0xB5, GET_FEATURE) with
 *                           the length in the request, once as unsigned and once as int
 * Errors print as key=<errno name> (key=ENOTTY); the exit code is 0 unless the node cannot be
 * opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/hidraw.h>
#include <linux/videodev2.h>

static void
result(const char *key, int rc)
{
	if (rc < 0)
		printf("%s=%s\n", key, strerrorname_np(errno));
	else
		printf("%s=%d\n", key, rc);
}

static int
probe_v4l2(const char *path)
{
	result("access", access(path, R_OK | W_OK));
	struct stat st;
	int rc = stat(path, &st);
	result("stat", rc);
	if (rc == 0)
		printf("stat_chr=%d\nstat_major=%u\n", S_ISCHR(st.st_mode), major(st.st_rdev));
	int fd = open(path, O_RDWR | O_NONBLOCK);
	if (fd < 0) {
		result("open", fd);
		return 1;
	}
	struct v4l2_capability cap;
	int req = (int)VIDIOC_QUERYCAP; /* negative: the direction bits reach bit 31 */
	memset(&cap, 0, sizeof(cap));
	result("querycap_int", ioctl(fd, req, &cap));
	printf("querycap_int_driver=%s\n", (char *)cap.driver);
	memset(&cap, 0, sizeof(cap));
	result("querycap_ulong", ioctl(fd, (unsigned long)VIDIOC_QUERYCAP, &cap));
	int input = -1;
	result("g_input_int", ioctl(fd, (int)VIDIOC_G_INPUT, &input));
	printf("input=%d\n", input);
	close(fd);
	return 0;
}

static void
hex(const char *key, const uint8_t *b, int n)
{
	printf("%s=", key);
	for (int i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

static void
read_register(int fd, int as_int, const char *key)
{
	uint8_t buf[9] = { 0x00, 0xB5, 0xCB, 0xDC }; /* report id 0, READ_XDATA, an address */
	unsigned long set = HIDIOCSFEATURE(sizeof(buf)), get = HIDIOCGFEATURE(sizeof(buf));
	if (as_int) {
		set = (unsigned long)(long)(int)set;
		get = (unsigned long)(long)(int)get;
	}
	char k[64];
	snprintf(k, sizeof(k), "%s_set", key);
	result(k, ioctl(fd, set, buf));
	memset(buf, 0, sizeof(buf));
	int n = ioctl(fd, get, buf);
	snprintf(k, sizeof(k), "%s_get", key);
	result(k, n);
	snprintf(k, sizeof(k), "%s_reply", key);
	if (n > 0)
		hex(k, buf, n);
}

static int
probe_hidraw(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		result("open", fd);
		return 1;
	}
	int size = 0;
	result("rdescsize", ioctl(fd, HIDIOCGRDESCSIZE, &size));
	printf("rdesc_size=%d\n", size);
	struct hidraw_report_descriptor rd = { .size = (uint32_t)size };
	result("rdesc", ioctl(fd, HIDIOCGRDESC, &rd));
	hex("rdesc_bytes", rd.value, size > 0 && size < 256 ? size : 0);
	struct hidraw_devinfo info = { 0 };
	result("rawinfo_int", ioctl(fd, (int)HIDIOCGRAWINFO, &info));
	printf("bus=%d\nvid=%04x\npid=%04x\n", info.bustype, (uint16_t)info.vendor,
	       (uint16_t)info.product);
	char name[256] = "";
	result("rawname", ioctl(fd, HIDIOCGRAWNAME(sizeof(name)), name));
	printf("name=%s\n", name);
	read_register(fd, 0, "feature");
	read_register(fd, 1, "feature_int");
	uint8_t out[9] = { 0 };
	result("write", (int)write(fd, out, sizeof(out)));
	close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "v4l2") && strcmp(argv[1], "hidraw"))) {
		fprintf(stderr, "usage: fake-probe v4l2|hidraw PATH\n");
		return 2;
	}
	return !strcmp(argv[1], "v4l2") ? probe_v4l2(argv[2]) : probe_hidraw(argv[2]);
}
