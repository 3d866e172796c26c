/*
 * DESIGN: `okvm ocr [--region X,Y,W,H] [--lang L] [--json]`: read the text on the target's
 * screen (docs/automation.md). The region and the language are checked before the capture
 * opens; then, as `okvm screenshot` does, it waits for a real frame captured after it was asked
 * for and hands it to src/auto/ocr.c. Prints the text, or with --json the words with their
 * boxes (frame pixels) and confidence as GET /api/ocr answers. Main thread only.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auto/ocr.h"
#include "cli/cli.h"
#include "okvm/error.h"
#include "okvm/video.h"

void
cmd_ocr_help(FILE *out)
{
	fputs("usage: okvm ocr [--region X,Y,W,H] [--lang LANG] [--json] [--timeout MS]\n"
	      "                [--file JPEG]\n"
	      "  Read the text on the target's screen (OCR with tesseract).\n"
	      "  --region X,Y,W,H  only this rectangle, in pixels of the captured frame (clipped\n"
	      "                    to it); default: the whole frame\n"
	      "  --lang LANG       tesseract language(s): eng (default), deu, deu+eng...; each\n"
	      "                    needs its Debian package tesseract-ocr-LANG\n"
	      "  --json            {\"text\", \"words\": [{\"text\",\"x\",\"y\",\"w\",\"h\",\"conf\"}],\n"
	      "                    \"width\", \"height\", \"ms\"}\n"
	      "  --timeout MS      wait this long for a picture (default 5000)\n"
	      "  --file JPEG       read this picture instead (a saved screenshot, a decoded\n"
	      "                    frame); no unit is opened\n"
	      "  Exit status: 0 read (maybe no text), 1 no picture, 2 bad region or language.\n",
	      out);
}

/* "X,Y,W,H": four integers, W and H > 0. */
static bool
parse_region(const char *s, struct auto_rect *r)
{
	long v[4];
	const char *p = s;
	for (int i = 0; i < 4; i++) {
		char *end;
		errno = 0;
		v[i] = strtol(p, &end, 10);
		if (end == p || errno || v[i] < -100000 || v[i] > 100000)
			return false;
		if (*end != (i < 3 ? ',' : '\0'))
			return false;
		p = end + 1;
	}
	*r = (struct auto_rect){ (int)v[0], (int)v[1], (int)v[2], (int)v[3] };
	return r->w > 0 && r->h > 0;
}

static void
print_json(const struct auto_ocr_result *r)
{
	char *s = auto_ocr_result_json(r);
	puts(s);
	free(s);
}

enum { OPT_REGION = 300, OPT_LANG, OPT_TIMEOUT, OPT_VIDEO, OPT_FILE };

static const struct option ocr_opts[] = {
	{ "region", required_argument, NULL, OPT_REGION },
	{ "lang", required_argument, NULL, OPT_LANG },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "video", required_argument, NULL, OPT_VIDEO },
	{ "file", required_argument, NULL, OPT_FILE },
	{ 0 },
};

static int
read_frame(struct cli *cli, struct auto_ocr *ocr, const struct auto_rect *region, int timeout_ms)
{
	struct okvm_capture *cap;
	int rc = cli_open_capture(cli, &cap);
	if (rc)
		return rc;
	okvm_capture_start(cap);
	okvm_capture_want(cap, true);
	struct okvm_frame *f = cli_fresh_frame(cap, timeout_ms);
	if (!f) {
		rc = cli_stop_signal ? CLI_FAIL
				     : cli_fail("ocr: no frame within %d ms", timeout_ms);
	} else if (f->placeholder) {
		struct okvm_capture_status st;
		okvm_capture_get_status(cap, &st);
		rc = st.device
			     ? cli_fail("ocr: no video signal from the target (HDMI cable? target "
					"asleep?)")
			     : cli_fail("ocr: no video device (is the unit plugged in? see `okvm "
					"list`)");
	} else {
		struct auto_ocr_result res;
		int err = auto_ocr_jpeg(ocr, f->data, f->size, region, &res);
		if (err == -EINVAL && region)
			rc = cli_usage("ocr: --region %d,%d,%d,%d is outside the %dx%d frame",
				       region->x, region->y, region->w, region->h, f->width,
				       f->height);
		else if (err)
			rc = cli_fail("ocr: cannot read the frame: %s", okvm_strerror(err));
		else if (cli->json)
			print_json(&res);
		else if (res.text[0])
			puts(res.text);
		auto_ocr_result_free(&res);
	}
	okvm_frame_unref(f);
	cli_close_capture(cli, cap);
	return rc;
}

/* --file: a JPEG from disk, no capture. */
static int
read_file(struct cli *cli, struct auto_ocr *ocr, const char *path, const struct auto_rect *region)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return cli_fail("ocr: cannot open %s: %s", path, strerror(errno));
	size_t cap = 1 << 20, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, fp)) > 0) {
		len += n;
		if (len == cap && cap < (64u << 20)) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		} else if (len == cap) {
			break;
		}
	}
	bool bad = ferror(fp) || !buf;
	fclose(fp);
	int rc = 0;
	struct auto_ocr_result res = { 0 };
	int err = bad ? -EIO : auto_ocr_jpeg(ocr, buf, len, region, &res);
	if (bad)
		rc = cli_fail("ocr: cannot read %s", path);
	else if (err == -EINVAL)
		rc = region ? cli_usage(
				      "ocr: --region %d,%d,%d,%d is outside %s, or it is not a JPEG",
				      region->x, region->y, region->w, region->h, path)
			    : cli_fail("ocr: %s is not a JPEG", path);
	else if (err)
		rc = cli_fail("ocr: cannot read %s: %s", path, okvm_strerror(err));
	else if (cli->json)
		print_json(&res);
	else if (res.text[0])
		puts(res.text);
	auto_ocr_result_free(&res);
	free(buf);
	return rc;
}

int
cmd_ocr(struct cli *cli, int argc, char **argv)
{
	struct auto_rect region;
	bool has_region = false;
	const char *lang = "eng", *file = NULL;
	int timeout_ms = 5000, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", ocr_opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case OPT_REGION:
			if (!parse_region(optarg, &region))
				return cli_usage(
					"ocr: --region '%s' is not X,Y,W,H (pixels; W and H "
					"above 0), e.g. 0,0,400,100",
					optarg);
			has_region = true;
			break;
		case OPT_LANG: lang = optarg; break;
		case OPT_VIDEO: cli->video = optarg; break;
		case OPT_FILE: file = optarg; break;
		case OPT_TIMEOUT:
			timeout_ms = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || timeout_ms < 1 || timeout_ms > 600000)
				return cli_usage("ocr: --timeout: '%s' is not a number of ms "
						 "(1-600000)",
						 optarg);
			break;
		default: return cli_usage("ocr: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("ocr: unexpected argument '%s'", argv[optind]);
	char why[512];
	if (auto_ocr_lang_check(lang, why, sizeof(why)))
		return cli_usage("ocr: %s", why);
	struct auto_ocr *ocr;
	int err = auto_ocr_new(lang, &ocr);
	if (err == -ELIBACC)
		return 1; /* said: which library, what to install */
	if (err)
		return cli_fail("ocr: cannot start tesseract: %s", okvm_strerror(err));
	int rc = file ? read_file(cli, ocr, file, has_region ? &region : NULL)
		      : read_frame(cli, ocr, has_region ? &region : NULL, timeout_ms);
	auto_ocr_free(ocr);
	return rc;
}
