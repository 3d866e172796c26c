/* libFuzzer target: the Script Tool parser (src/auto/script-parse.c) never overruns, and either
 * refuses with a position inside the text and a message, or gives actions whose positions are
 * inside the text. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auto/script-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	struct auto_script *s;
	struct auto_script_error err;
	/* a copy of exactly size bytes: ASan sees any read past the end */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	int rc = auto_script_parse(text, size, &s, &err);
	if (rc) {
		if (rc != -EINVAL || s || err.line < 1 || (size_t)err.line > lines || err.col < 1 ||
		    !err.msg[0])
			abort();
	} else {
		for (size_t i = 0; i < s->n; i++)
			if (s->v[i].line < 1 || (size_t)s->v[i].line > lines || s->v[i].col < 1 ||
			    (size_t)s->v[i].col > size + 1)
				abort();
		if (auto_script_count(s) > lines)
			abort();
		auto_script_free(s);
	}
	free(text);
	return 0;
}
