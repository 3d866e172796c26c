/* libFuzzer target: the JPEG checks and DHT insertion that run on every captured frame. */
#include <stdint.h>
#include <stdlib.h>

#include "okvm/video.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long n = okvm_jpeg_check(data, size);
	int w, h;
	okvm_jpeg_size(data, size, &w, &h);
	bool dht = okvm_jpeg_has_dht(data, size);
	if (n > 0 && !dht) {
		size_t cap = (size_t)n + okvm_jpeg_dht_size();
		uint8_t *out = malloc(cap);
		if (out) {
			long m = okvm_jpeg_insert_dht(data, (size_t)n, out, cap);
			if (m > 0 && !okvm_jpeg_has_dht(out, (size_t)m))
				abort(); /* an inserted table must be found again */
			free(out);
		}
	}
	return 0;
}
