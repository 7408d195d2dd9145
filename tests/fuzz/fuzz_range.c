/*
 * fuzz_range.c - libFuzzer target: the Range header parser of `modelfs
 * serve` (serve/reply.c, mfs_sv_parse_range). The first 8 bytes are the
 * blob size, the rest the header value. A satisfiable answer must lie
 * inside the blob: a <= b < size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t blob = 0, a = UINT64_MAX, b = UINT64_MAX;
	char *h;
	int rc;

	if (size < 8)
		return 0;
	memcpy(&blob, data, 8);
	blob >>= (data[0] & 63); /* small sizes too */
	h = malloc(size - 8 + 1);
	if (!h)
		return 0;
	memcpy(h, data + 8, size - 8);
	h[size - 8] = '\0';
	rc = mfs_sv_parse_range(h, blob, &a, &b);
	if (rc == 0 && !(a <= b && b < blob))
		abort();
	if (rc != 0 && rc != 1 && rc != -400 && rc != -416)
		abort();
	free(h);
	return 0;
}
