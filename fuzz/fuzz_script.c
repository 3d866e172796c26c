/* libFuzzer target: the okvm script line splitter never overruns and its argv stays in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/script-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script_line l;
	const char *why;
	if (script_split((const char *)data, size, &l, &why) < 0)
		return 0;
	if (l.argc < 0 || l.argc > SCRIPT_MAX_ARGS || l.argv[l.argc] != NULL)
		abort();
	size_t total = 0;
	for (int i = 0; i < l.argc; i++)
		total += strlen(l.argv[i]) + 1;
	if (total > size + 1)
		abort();
	script_line_free(&l);
	return 0;
}
