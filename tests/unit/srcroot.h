/* The source tree of the build that made this test binary (for fixtures): read from
 * <build>/meson-info/meson-info.json, found from /proc/self/exe (<build>/tests/unit/test-x). */
#ifndef OKVM_TEST_SRCROOT_H
#define OKVM_TEST_SRCROOT_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

static inline const char *
test_source_root(void)
{
	static char root[PATH_MAX];
	char exe[PATH_MAX], info[PATH_MAX + 64], text[8192];
	if (root[0])
		return root;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		abort();
	exe[n] = 0;
	for (int i = 0; i < 3; i++)
		*strrchr(exe, '/') = 0;
	snprintf(info, sizeof(info), "%s/meson-info/meson-info.json", exe);
	FILE *f = fopen(info, "re");
	if (!f)
		abort();
	size_t len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = 0;
	cJSON *j = cJSON_Parse(text);
	const cJSON *src = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "directories"), "source");
	if (!cJSON_IsString(src))
		abort();
	snprintf(root, sizeof(root), "%s", src->valuestring);
	cJSON_Delete(j);
	return root;
}

#endif
