/*
 * test_json.c - the JSON reader: valid documents and accessors, every kind
 * of malformed input, the depth limit, UTF-8 validation, escapes (including
 * \u0000 and surrogate pairs), duplicate keys and a large array.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json.h"
#include "util/strbuf.h"

static struct mfs_json *parse_ok(const char *s)
{
	struct mfs_json *d = NULL;
	int rc = mfs_json_parse(s, strlen(s), &d);
	cr_assert_eq(rc, 0, "parse of <%s> failed: %d", s, rc);
	cr_assert_not_null(d);
	return d;
}

static int parse_rc(const char *s, size_t n)
{
	struct mfs_json *d = (struct mfs_json *)0x1;
	int rc = mfs_json_parse(s, n, &d);
	if (rc == 0)
		mfs_json_free(d);
	else
		cr_assert_null(d, "out must be NULL on failure");
	return rc;
}

Test(json, hub_tree_entry)
{
	const char *doc =
		"[{\"type\":\"file\",\"oid\":\"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\","
		"\"size\":548123560,\"path\":\"model.safetensors\","
		"\"lfs\":{\"oid\":\"abc\",\"size\":548123560,\"pointerSize\":134}},"
		" {\"type\":\"directory\",\"oid\":\"x\",\"size\":0,\"path\":\"sub\"}]";
	struct mfs_json *d = parse_ok(doc);
	cr_assert_eq(mfs_json_type(d), MFS_JSON_ARRAY);
	cr_assert_eq(mfs_json_len(d), 2);
	const struct mfs_json *e = mfs_json_at(d, 0);
	cr_assert_eq(mfs_json_type(e), MFS_JSON_OBJECT);
	cr_assert_eq(mfs_json_len(e), 5);
	cr_assert_str_eq(mfs_json_get_str(e, "type"), "file");
	cr_assert_str_eq(mfs_json_get_str(e, "path"), "model.safetensors");
	int64_t v;
	cr_assert(mfs_json_int(mfs_json_get(e, "size"), &v));
	cr_assert_eq(v, 548123560);
	cr_assert(mfs_json_int(mfs_json_get(mfs_json_get(e, "lfs"), "pointerSize"), &v));
	cr_assert_eq(v, 134);
	cr_assert_str_eq(mfs_json_key_at(e, 4), "lfs");
	cr_assert_null(mfs_json_key_at(d, 0), "arrays have no keys");
	cr_assert_null(mfs_json_get(e, "missing"));
	cr_assert_null(mfs_json_get(d, "type"), "get on an array");
	cr_assert_null(mfs_json_get_str(e, "size"), "number is not a string");
	cr_assert_null(mfs_json_at(d, 2));
	cr_assert_str_eq(mfs_json_get_str(mfs_json_at(d, 1), "type"), "directory");
	mfs_json_free(d);
}

Test(json, scalars_and_whitespace)
{
	struct mfs_json *d;
	bool b;
	double x;
	int64_t i;

	d = parse_ok(" \t\r\n true \n");
	cr_assert(mfs_json_bool(d, &b) && b);
	cr_assert_eq(mfs_json_len(d), 0);
	mfs_json_free(d);
	d = parse_ok("false");
	cr_assert(mfs_json_bool(d, &b) && !b);
	cr_assert(!mfs_json_int(d, &i));
	mfs_json_free(d);
	d = parse_ok("null");
	cr_assert_eq(mfs_json_type(d), MFS_JSON_NULL);
	cr_assert(!mfs_json_bool(d, &b));
	mfs_json_free(d);
	d = parse_ok("\"\"");
	size_t n = 99;
	cr_assert_str_eq(mfs_json_str(d, &n), "");
	cr_assert_eq(n, 0);
	mfs_json_free(d);
	d = parse_ok("{}");
	cr_assert_eq(mfs_json_type(d), MFS_JSON_OBJECT);
	cr_assert_eq(mfs_json_len(d), 0);
	mfs_json_free(d);
	d = parse_ok("[ ]");
	cr_assert_eq(mfs_json_len(d), 0);
	cr_assert_null(mfs_json_at(d, 0));
	mfs_json_free(d);
	d = parse_ok("-1.5e3");
	cr_assert(mfs_json_double(d, &x));
	cr_assert_float_eq(x, -1500.0, 1e-9);
	cr_assert(!mfs_json_int(d, &i), "exponent form is not an integer");
	mfs_json_free(d);
}

Test(json, numbers)
{
	struct { const char *s; bool is_int; int64_t i; double d; } ok[] = {
		{ "0", true, 0, 0 },
		{ "-0", true, 0, 0 },
		{ "42", true, 42, 42 },
		{ "-17", true, -17, -17 },
		{ "9223372036854775807", true, INT64_MAX, 9223372036854775807.0 },
		{ "-9223372036854775808", true, INT64_MIN, -9223372036854775808.0 },
		{ "9223372036854775808", false, 0, 9223372036854775808.0 },
		{ "1.0", false, 0, 1.0 },
		{ "0.25", false, 0, 0.25 },
		{ "1e2", false, 0, 100 },
		{ "1E+2", false, 0, 100 },
		{ "25e-2", false, 0, 0.25 },
	};
	for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
		struct mfs_json *d = parse_ok(ok[k].s);
		int64_t i;
		double x;
		cr_assert_eq(mfs_json_type(d), MFS_JSON_NUMBER);
		cr_assert_eq(mfs_json_int(d, &i), ok[k].is_int, "%s", ok[k].s);
		if (ok[k].is_int)
			cr_assert_eq(i, ok[k].i, "%s", ok[k].s);
		cr_assert(mfs_json_double(d, &x));
		cr_assert_float_eq(x, ok[k].d, 1e-9 * (ok[k].d < 0 ? -ok[k].d : ok[k].d) + 1e-12, "%s", ok[k].s);
		mfs_json_free(d);
	}
	const char *bad[] = { "01", "-", "+1", "1.", ".5", "1e", "1e+", "--1", "0x10",
			      "1.5.2", "NaN", "Infinity", "-Infinity", "1 2", "- 1", "00" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		cr_assert_eq(parse_rc(bad[k], strlen(bad[k])), -EINVAL, "<%s>", bad[k]);
}

Test(json, malformed)
{
	const char *bad[] = {
		"", " ", "[", "]", "{", "}", "[1,]", "[,1]", "[1 2]", "{\"a\":1,}",
		"{\"a\" 1}", "{\"a\":}", "{a:1}", "{'a':1}", "{\"a\":1 \"b\":2}", "{1:2}",
		"tru", "truex", "nul", "True", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"",
		"[1]x", "{} {}", "// c\n1", "/* */1", "\xef\xbb\xbf{}", "[\"a\"\"b\"]",
		"\"tab\there\"", "\"nl\nhere\"", "[1,,2]", "{\"a\":1,,\"b\":2}", "\"\\\"",
		"\"a\\", "[\"\\ud800\\u", "{\"a\"", "{\"a\":", "[true false]",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		cr_assert_eq(parse_rc(bad[k], strlen(bad[k])), -EINVAL, "<%s>", bad[k]);
	/* NUL byte inside the given length is garbage, not an end marker. */
	cr_assert_eq(parse_rc("[1]\0", 4), -EINVAL);
	cr_assert_eq(parse_rc("\"a\0b\"", 5), -EINVAL);
	/* The length bounds the input: a valid prefix is fine, a cut one is not. */
	cr_assert_eq(parse_rc("[1]garbage", 3), 0);
	cr_assert_eq(parse_rc("[1, 2]", 4), -EINVAL);
}

static char *nested(int depth, const char *open, const char *close, const char *mid)
{
	size_t n = (size_t)depth * (strlen(open) + strlen(close)) + strlen(mid) + 1;
	char *s = malloc(n), *p = s;
	cr_assert_not_null(s);
	for (int i = 0; i < depth; i++, p += strlen(open))
		memcpy(p, open, strlen(open));
	memcpy(p, mid, strlen(mid));
	p += strlen(mid);
	for (int i = 0; i < depth; i++, p += strlen(close))
		memcpy(p, close, strlen(close));
	*p = '\0';
	return s;
}

Test(json, depth_limit)
{
	char *s = nested(MFS_JSON_MAX_DEPTH, "[", "]", "1");
	cr_assert_eq(parse_rc(s, strlen(s)), 0);
	free(s);
	s = nested(MFS_JSON_MAX_DEPTH + 1, "[", "]", "1");
	cr_assert_eq(parse_rc(s, strlen(s)), -EINVAL);
	free(s);
	s = nested(MFS_JSON_MAX_DEPTH, "{\"k\":", "}", "[]");
	cr_assert_eq(parse_rc(s, strlen(s)), -EINVAL, "64 objects + 1 array is 65 levels");
	free(s);
	s = nested(MFS_JSON_MAX_DEPTH, "{\"k\":", "}", "1");
	struct mfs_json *d = parse_ok(s);
	const struct mfs_json *v = d;
	for (int i = 0; i < MFS_JSON_MAX_DEPTH; i++)
		v = mfs_json_get(v, "k");
	int64_t x;
	cr_assert(mfs_json_int(v, &x) && x == 1);
	mfs_json_free(d);
	free(s);
	/* Far deeper than the limit must fail cleanly, not overflow the stack. */
	s = nested(100000, "[", "]", "");
	cr_assert_eq(parse_rc(s, strlen(s)), -EINVAL);
	free(s);
}

Test(json, escapes)
{
	struct mfs_json *d = parse_ok("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"");
	size_t n;
	const char *s = mfs_json_str(d, &n);
	cr_assert_str_eq(s, "a\"b\\c/d\be\ff\ng\rh\ti");
	cr_assert_eq(n, strlen("a\"b\\c/d\be\ff\ng\rh\ti"));
	mfs_json_free(d);

	d = parse_ok("\"x\\u0000y\"");
	s = mfs_json_str(d, &n);
	cr_assert_eq(n, 3, "embedded NUL is kept and counted");
	cr_assert(memcmp(s, "x\0y", 4) == 0);
	mfs_json_free(d);

	/* U+00E9, U+20AC, U+1F600 (surrogate pair), upper- and lower-case hex. */
	d = parse_ok("\"\\u00e9\\u20AC\\ud83d\\uDE00\"");
	s = mfs_json_str(d, &n);
	cr_assert_str_eq(s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	mfs_json_free(d);

	/* Keys are decoded too. */
	d = parse_ok("{\"k\\u00e9y\":1, \"a\\u0000b\":2}");
	cr_assert_not_null(mfs_json_get(d, "k\xc3\xa9y"));
	cr_assert_null(mfs_json_get(d, "a"), "a key with NUL does not match its prefix");
	mfs_json_free(d);
}

Test(json, bad_surrogates)
{
	const char *bad[] = { "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800x\"", "\"\\ud800\\u0041\"",
			      "\"\\ud800\\ud800\"", "\"\\udfff\\ud800\"" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		cr_assert_eq(parse_rc(bad[k], strlen(bad[k])), -EILSEQ, "<%s>", bad[k]);
}

Test(json, utf8_validation)
{
	struct mfs_json *d = parse_ok("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
	mfs_json_free(d);
	const char *bad[] = {
		"\"\x80\"",                 /* lone continuation */
		"\"\xc3\"",                 /* truncated */
		"\"\xc3(\"",                /* bad continuation */
		"\"\xc0\xaf\"",             /* overlong '/' */
		"\"\xc1\xbf\"",             /* overlong */
		"\"\xe0\x80\xaf\"",         /* overlong 3-byte */
		"\"\xf0\x80\x80\xaf\"",     /* overlong 4-byte */
		"\"\xed\xa0\x80\"",         /* encoded surrogate U+D800 */
		"\"\xed\xbf\xbf\"",         /* encoded surrogate U+DFFF */
		"\"\xf4\x90\x80\x80\"",     /* U+110000 */
		"\"\xf5\x80\x80\x80\"",
		"\"\xff\"",
		"\"\xe2\x82\"",             /* truncated 3-byte at end of string */
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		cr_assert_eq(parse_rc(bad[k], strlen(bad[k])), -EILSEQ, "case %zu", k);
	/* Invalid UTF-8 in a key is caught as well. */
	cr_assert_eq(parse_rc("{\"\xc0\xaf\":1}", 8), -EILSEQ);
	/* Outside a string, a high byte is just malformed JSON. */
	cr_assert_eq(parse_rc("[\xc3\xa9]", 4), -EINVAL);
}

Test(json, duplicate_keys_first_wins)
{
	struct mfs_json *d = parse_ok("{\"a\":1,\"b\":2,\"a\":3}");
	int64_t v;
	cr_assert_eq(mfs_json_len(d), 3);
	cr_assert(mfs_json_int(mfs_json_get(d, "a"), &v));
	cr_assert_eq(v, 1);
	cr_assert(mfs_json_int(mfs_json_at(d, 2), &v));
	cr_assert_eq(v, 3);
	cr_assert_str_eq(mfs_json_key_at(d, 2), "a");
	mfs_json_free(d);
}

Test(json, roundtrip_with_strbuf_escaping)
{
	/* Every byte 0x01..0x7f through the writer, back through the reader. */
	char raw[128];
	for (int i = 0; i < 127; i++)
		raw[i] = (char)(i + 1);
	raw[127] = '\0';
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	cr_assert_eq(mfs_strbuf_json_str(&sb, raw, 127), 0);
	struct mfs_json *d = NULL;
	cr_assert_eq(mfs_json_parse(sb.buf, sb.len, &d), 0);
	size_t n;
	const char *s = mfs_json_str(d, &n);
	cr_assert_eq(n, 127);
	cr_assert(memcmp(s, raw, 127) == 0);
	mfs_json_free(d);
	mfs_strbuf_free(&sb);
}

Test(json, big_array_of_objects)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	const size_t N = 100000;
	mfs_strbuf_puts(&sb, "[");
	for (size_t i = 0; i < N; i++)
		mfs_strbuf_printf(&sb, "%s{\"type\":\"file\",\"oid\":\"%040zu\",\"size\":%zu,"
				  "\"path\":\"dir/file-%zu.bin\",\"lfs\":{\"size\":%zu}}",
				  i ? "," : "", i, i * 3, i, i);
	mfs_strbuf_puts(&sb, "]");
	cr_assert_eq(sb.err, 0);

	struct timespec t0, t1;
	struct mfs_json *d = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(mfs_json_parse(sb.buf, sb.len, &d), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "json: %zu objects (%zu bytes) parsed in %.3f s\n", N, sb.len, secs);
	/* Not a speed test (bench/ measures speed): a bound that only a parser
	 * gone quadratic would cross, so a sanitizer build on a loaded machine
	 * (3 s measured) still passes. */
	cr_assert_lt(secs, 30.0);

	cr_assert_eq(mfs_json_len(d), N);
	for (size_t i = 0; i < N; i += 9973) {
		const struct mfs_json *e = mfs_json_at(d, i);
		int64_t v;
		char want[64];
		snprintf(want, sizeof(want), "dir/file-%zu.bin", i);
		cr_assert_str_eq(mfs_json_get_str(e, "path"), want);
		cr_assert(mfs_json_int(mfs_json_get(e, "size"), &v));
		cr_assert_eq(v, (int64_t)(i * 3));
	}
	mfs_json_free(d);
	mfs_strbuf_free(&sb);
}

Test(json, null_safety)
{
	int64_t i;
	cr_assert_eq(mfs_json_len(NULL), 0);
	cr_assert_null(mfs_json_at(NULL, 0));
	cr_assert_null(mfs_json_get(NULL, "a"));
	cr_assert_null(mfs_json_get_str(NULL, "a"));
	cr_assert(!mfs_json_int(NULL, &i));
	mfs_json_free(NULL);
}

/* Lenient mode: bad Unicode in one string must not lose the document; it
 * becomes NUL bytes that a caller's name validation rejects. */
Test(json, lenient_utf8_marks_bad_units_with_nul)
{
	const char *doc = "[{\"path\":\"ok.txt\"},{\"path\":\"bad\\udcff.txt\"},"
			  "{\"path\":\"hi\\ud800x\"},{\"path\":\"raw\xff\xfe\"}]";
	struct mfs_json *j;
	size_t len;

	cr_assert_eq(mfs_json_parse(doc, strlen(doc), &j), -EILSEQ);
	cr_assert_eq(mfs_json_parse_ex(doc, strlen(doc), MFS_JSON_LENIENT_UTF8, &j), 0);
	cr_assert_eq(mfs_json_len(j), 4u);
	const char *s = mfs_json_str(mfs_json_get(mfs_json_at(j, 0), "path"), &len);
	cr_assert_str_eq(s, "ok.txt");
	cr_assert_eq(len, 6u);
	s = mfs_json_str(mfs_json_get(mfs_json_at(j, 1), "path"), &len);
	cr_assert_eq(len, 8u);
	cr_assert_eq(memcmp(s, "bad\0.txt", 8), 0);
	s = mfs_json_str(mfs_json_get(mfs_json_at(j, 2), "path"), &len);
	cr_assert_eq(len, 4u);
	cr_assert_eq(memcmp(s, "hi\0x", 4), 0);
	s = mfs_json_str(mfs_json_get(mfs_json_at(j, 3), "path"), &len);
	cr_assert_eq(len, 5u);
	cr_assert_eq(memcmp(s, "raw\0\0", 5), 0);
	mfs_json_free(j);
}
