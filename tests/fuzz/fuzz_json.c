/*
 * fuzz_json.c - libFuzzer target: the JSON parser (util/json.c), strict
 * and in lenient-UTF-8 mode (the mode tree listings use). The first byte
 * picks the mode; every parsed document is walked whole, and a string's
 * reported length must match its bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

static void walk(const struct mfs_json *v, int depth)
{
	size_t len = 0;
	int64_t i;
	double d;
	bool b;

	if (!v || depth > 10000)
		abort();
	switch (mfs_json_type(v)) {
	case MFS_JSON_OBJECT:
		for (size_t k = 0; k < mfs_json_len(v); k++) {
			const char *key = mfs_json_key_at(v, k);
			if (!key)
				abort();
			(void)mfs_json_get(v, key);
			walk(mfs_json_at(v, k), depth + 1);
		}
		break;
	case MFS_JSON_ARRAY:
		for (size_t k = 0; k < mfs_json_len(v); k++)
			walk(mfs_json_at(v, k), depth + 1);
		break;
	case MFS_JSON_STRING: {
		const char *s = mfs_json_str(v, &len);
		if (!s || s[len] != '\0')
			abort();
		break;
	}
	default:
		(void)mfs_json_int(v, &i);
		(void)mfs_json_double(v, &d);
		(void)mfs_json_bool(v, &b);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mfs_json *doc = NULL;

	if (size < 1)
		return 0;
	if (mfs_json_parse_ex((const char *)data + 1, size - 1,
			      data[0] & 1 ? MFS_JSON_LENIENT_UTF8 : 0, &doc) >= 0)
		walk(doc, 0);
	mfs_json_free(doc);
	return 0;
}
