/*
 * fuzz_http.c - libFuzzer target: the HTTP request-head parser of
 * `modelfs serve` (serve/httpd.c, mfs_httpd_parse). Checks that any input
 * gives a status or a head length within the input, and that a parsed
 * request has a target starting with '/' and no control characters in
 * the header values it kept.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/httpd.h"

static void no_ctl(const char *v)
{
	for (; v && *v; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mfs_httpd_req rq;
	int64_t clen;
	int hl = mfs_httpd_parse((const char *)data, size, &rq, &clen);

	if (hl > 0) {
		if ((size_t)hl > size || rq.target[0] != '/' || !rq.query)
			abort();
		no_ctl(rq.range);
		no_ctl(rq.authorization);
		no_ctl(rq.content_type);
	} else if (hl == 0 || hl < -599) {
		abort();
	}
	mfs_httpd_req_clear(&rq);
	return 0;
}
