/*
 * test_strbuf.c - the growable buffer and its JSON string escaping.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

Test(strbuf, append_printf_detach)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	cr_assert_eq(mfs_strbuf_puts(&sb, "abc"), 0);
	cr_assert_eq(mfs_strbuf_append(&sb, "d\0e", 3), 0);
	cr_assert_eq(sb.len, 6);
	cr_assert(memcmp(sb.buf, "abcd\0e", 7) == 0, "NUL-terminated after binary data");
	for (int i = 0; i < 10000; i++)
		cr_assert_eq(mfs_strbuf_printf(&sb, "%d,", i), 0);
	size_t len;
	char *s = mfs_strbuf_detach(&sb, &len);
	cr_assert_not_null(s);
	cr_assert_eq(len, strlen(s + 6) + 6);
	cr_assert(strncmp(s + 6, "0,1,2,", 6) == 0);
	cr_assert_str_eq(s + len - 5, "9999,");
	cr_assert_null(sb.buf, "detach resets");
	cr_assert_eq(sb.len, 0);
	free(s);
	mfs_strbuf_free(&sb);
}

Test(strbuf, detach_empty_is_not_null)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	size_t len = 9;
	char *s = mfs_strbuf_detach(&sb, &len);
	cr_assert_not_null(s);
	cr_assert_str_eq(s, "");
	cr_assert_eq(len, 0);
	free(s);
}

Test(strbuf, sticky_error)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	mfs_strbuf_puts(&sb, "x");
	sb.err = -12;
	cr_assert_eq(mfs_strbuf_puts(&sb, "more"), -12);
	cr_assert_eq(sb.len, 1);
	cr_assert_null(mfs_strbuf_detach(&sb, NULL));
	cr_assert_null(sb.buf, "failed detach frees");
}

static void check_esc(const char *in, size_t n, const char *want)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	cr_assert_eq(mfs_strbuf_json_str(&sb, in, n), 0);
	cr_assert_str_eq(sb.buf, want);
	mfs_strbuf_free(&sb);
}

Test(strbuf, json_escaping)
{
	check_esc("", 0, "\"\"");
	check_esc("plain", 5, "\"plain\"");
	check_esc("q\"b\\s/", 6, "\"q\\\"b\\\\s/\"");
	check_esc("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
	check_esc("\x01\x1f", 2, "\"\\u0001\\u001f\"");
	check_esc("a\0b", 3, "\"a\\u0000b\"");
	check_esc("\x7f", 1, "\"\x7f\"");
	check_esc("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");
	check_esc(NULL, 0, "\"\"");
	/* Appends after existing content. */
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	mfs_strbuf_puts(&sb, "{\"k\":");
	mfs_strbuf_json_str(&sb, "v\n", 2);
	mfs_strbuf_puts(&sb, "}");
	cr_assert_str_eq(sb.buf, "{\"k\":\"v\\n\"}");
	mfs_strbuf_free(&sb);
}
