/* libFuzzer target: the CH9329 streaming decoder must never overrun, loop or lose its bound. */
#include <stdint.h>
#include <stdlib.h>

#include "okvm/ch9329.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct okvm_ch9329_parser p;
	okvm_ch9329_parser_init(&p);
	struct okvm_ch9329_frame f;
	size_t at = 0;
	/* First byte picks the chunk size, so splits vary too. */
	size_t chunk = size ? (size_t)(data[0] % 17) + 1 : 1;
	while (at < size) {
		size_t n = size - at < chunk ? size - at : chunk;
		size_t k = okvm_ch9329_parser_push(&p, data + at, n);
		at += k;
		int rc, guard = 0;
		while ((rc = okvm_ch9329_parser_next(&p, &f)) != 0) {
			if (rc == 1) {
				uint8_t out[OKVM_CH9329_MAX_FRAME];
				if (okvm_ch9329_encode(&f, out, sizeof(out)) != (size_t)f.len + 6)
					abort();
			}
			if (++guard > 1000)
				abort();
		}
		if (p.n > OKVM_CH9329_PARSER_CAP)
			abort();
	}
	return 0;
}
