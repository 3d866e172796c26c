/*
 * Text planner figures: plan throughput (characters/s) for a 100 KB text, and reports per
 * character for English prose: every report costs one CH9329 frame on the wire, so this ratio
 * sets typing speed (QT's paste sends 3 reports per character: press, release, release).
 * Usage: bench-text [LAYOUT...] (default: us de fr us:intl)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "okvm/keymap.h"
#include "okvm/text.h"

static const char prose[] =
	"It was a bright cold day in spring, and the clocks on the tower were striking nine. "
	"The engineer opened her laptop, plugged the little KVM into the server in the corner, "
	"and typed the long password twice, slowly, because the last time a single missed key "
	"had locked her out for an hour. \"Never again,\" she said to nobody in particular.\n"
	"The logs told a simple story: at 03:14 the disk filled up; at 03:15 the database "
	"stopped accepting writes; by 03:20 every request returned an error (HTTP 500).\n"
	"She cleaned up old archives, restarted the service, and wrote a short note for the "
	"team: check free space daily, rotate logs weekly, and keep 20% headroom at all times.\n";

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
make_text(size_t size)
{
	char *t = malloc(size + 1);
	size_t n = strlen(prose);
	for (size_t at = 0; at < size; at += n)
		memcpy(t + at, prose, at + n <= size ? n : size - at);
	t[size] = '\0';
	return t;
}

static void
bench_layout(const char *layout, const char *text, size_t len)
{
	double t0 = now_s();
	struct okvm_keymap *km = okvm_keymap_new(layout);
	double t1 = now_s();
	if (!km) {
		printf("%-10s no such layout\n", layout);
		return;
	}
	struct okvm_text_plan p = { 0 };
	struct okvm_text_error err;
	int rounds = 0;
	double start = now_s(), end;
	do {
		okvm_text_plan_free(&p);
		if (okvm_text_plan(km, text, len, NULL, &p, &err) < 0) {
			printf("%-10s %s\n", layout, err.message);
			okvm_keymap_free(km);
			return;
		}
		rounds++;
		end = now_s();
	} while (end - start < 0.5);
	double cps = (double)p.chars * rounds / (end - start);
	double rpc = (double)p.n / (double)p.chars;
	printf("%-10s keymap %5.1f ms  plan %6.1f M chars/s  %.3f reports/char  "
	       "115200 baud: %4.0f chars/s  9600 baud: %3.0f chars/s\n",
	       layout, (t1 - t0) * 1e3, cps / 1e6, rpc,
	       115200.0 / 10 / 14 / rpc, 9600.0 / 10 / 14 / rpc);
	okvm_text_plan_free(&p);
	okvm_keymap_free(km);
}

int
main(int argc, char **argv)
{
	static const char *const defaults[] = { "us", "de", "fr", "us:intl", "us:dvorak" };
	size_t len = 100 * 1024;
	char *text = make_text(len);
	printf("text: %zu bytes of English prose; wire rates assume 14-byte frames, 10 bits/byte\n",
	       len);
	if (argc > 1)
		for (int i = 1; i < argc; i++)
			bench_layout(argv[i], text, len);
	else
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
			bench_layout(defaults[i], text, len);
	free(text);
	return 0;
}
