/*
 * test_httpd.c - the parsers `modelfs serve` runs on untrusted bytes: the
 * request head (serve/httpd.c) and the Range header (serve/reply.c).
 * Cases come from issue 12 and from reading the code for its fuzz targets
 * (tests/fuzz/): control characters in header values, bytes after the
 * head, NUL bytes, token_char(0).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "serve/httpd.h"
#include "serve/internal.h"

static int parse(const char *s, struct mfs_httpd_req *rq, int64_t *clen)
{
	return mfs_httpd_parse(s, strlen(s), rq, clen);
}

Test(httpd, a_plain_request)
{
	struct mfs_httpd_req rq;
	int64_t clen;
	const char *s = "GET /a/b?x=1 HTTP/1.1\r\nRange: bytes=0-9\r\nX: y\r\n\r\n";

	cr_assert_eq(parse(s, &rq, &clen), (int)strlen(s));
	cr_expect_str_eq(rq.method, "GET");
	cr_expect_str_eq(rq.target, "/a/b");
	cr_expect_str_eq(rq.query, "x=1");
	cr_expect_str_eq(rq.range, "bytes=0-9");
	cr_expect(rq.keep_alive);
	cr_expect_eq(clen, -1);
	mfs_httpd_req_clear(&rq);
}

Test(httpd, control_characters_in_header_values_are_400)
{
	static const char *bad[] = {
		"GET / HTTP/1.1\r\nX: a\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
		"GET / HTTP/1.1\r\nRange: bytes=0-1\x01\r\n\r\n",
		"GET / HTTP/1.1\r\nX: \x7f\r\n\r\n",
		"GET / HTTP/1.1\r\nAuthorization: Bearer a\x0b\r\n\r\n",
	};
	struct mfs_httpd_req rq;
	int64_t clen;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(parse(bad[i], &rq, &clen), -400, "accepted case %zu", i);
		mfs_httpd_req_clear(&rq);
	}
	/* a tab is fine */
	cr_expect_gt(parse("GET / HTTP/1.1\r\nX: a\tb\r\n\r\n", &rq, &clen), 0);
	mfs_httpd_req_clear(&rq);
}

Test(httpd, the_head_ends_at_the_first_blank_line)
{
	struct mfs_httpd_req rq;
	int64_t clen;
	char buf[40000];
	const char *head = "POST /p HTTP/1.1\r\nContent-Length: 30000\r\n\r\n";
	size_t hl = strlen(head);

	/* a body (with what looks like headers in it) after the head is not
	 * part of it, however long */
	memcpy(buf, head, hl);
	memset(buf + hl, 'x', sizeof(buf) - hl);
	memcpy(buf + hl + 100, "\r\nX: \x01\r\n\r\n", 10);
	cr_assert_eq(mfs_httpd_parse(buf, sizeof(buf), &rq, &clen), (int)hl);
	cr_expect_eq(clen, 30000);
	mfs_httpd_req_clear(&rq);
}

Test(httpd, nul_bytes_and_nul_in_names)
{
	struct mfs_httpd_req rq;
	int64_t clen;
	static const char nul_value[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
	static const char nul_name[] = "GET / HTTP/1.1\r\n\0: b\r\n\r\n";

	cr_expect_eq(mfs_httpd_parse(nul_value, sizeof(nul_value) - 1, &rq, &clen), -400);
	mfs_httpd_req_clear(&rq);
	cr_expect_eq(mfs_httpd_parse(nul_name, sizeof(nul_name) - 1, &rq, &clen), -400);
	mfs_httpd_req_clear(&rq);
}

Test(httpd, framing)
{
	struct mfs_httpd_req rq;
	int64_t clen;

	cr_expect_eq(parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &rq, &clen), -411);
	mfs_httpd_req_clear(&rq);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &rq,
			   &clen), -400);
	mfs_httpd_req_clear(&rq);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &rq, &clen), -400);
	mfs_httpd_req_clear(&rq);
	cr_expect_eq(parse("GET / HTTP/1.1\r\n folded\r\n\r\n", &rq, &clen), -400);
	mfs_httpd_req_clear(&rq);
	cr_expect_eq(parse("GET http://x/ HTTP/1.1\r\n\r\n", &rq, &clen), -400);
	mfs_httpd_req_clear(&rq);
	cr_expect_eq(parse("GET / HTTP/2\r\n\r\n", &rq, &clen), -505);
	mfs_httpd_req_clear(&rq);
	cr_expect_eq(parse("GET / HTTP/1.1\r\n", &rq, &clen), -400);
	mfs_httpd_req_clear(&rq);
}

Test(range, parse)
{
	uint64_t a, b;

	cr_expect_eq(mfs_sv_parse_range(NULL, 10, &a, &b), 1);
	cr_expect_eq(mfs_sv_parse_range("bytes=2-5", 10, &a, &b), 0);
	cr_expect(a == 2 && b == 5);
	cr_expect_eq(mfs_sv_parse_range("bytes=2-", 10, &a, &b), 0);
	cr_expect(a == 2 && b == 9);
	cr_expect_eq(mfs_sv_parse_range("bytes=-3", 10, &a, &b), 0);
	cr_expect(a == 7 && b == 9);
	cr_expect_eq(mfs_sv_parse_range("bytes=-30", 10, &a, &b), 0);
	cr_expect(a == 0 && b == 9);
	cr_expect_eq(mfs_sv_parse_range("bytes=5-100", 10, &a, &b), 0);
	cr_expect(a == 5 && b == 9);
	cr_expect_eq(mfs_sv_parse_range("bytes=10-", 10, &a, &b), -416);
	cr_expect_eq(mfs_sv_parse_range("bytes=0-", 0, &a, &b), -416);
	cr_expect_eq(mfs_sv_parse_range("bytes=-0", 10, &a, &b), -416);
	cr_expect_eq(mfs_sv_parse_range("bytes=0-1,3-4", 10, &a, &b), -416);
	cr_expect_eq(mfs_sv_parse_range("bytes=5-1", 10, &a, &b), -400);
	cr_expect_eq(mfs_sv_parse_range("bytes=99999999999999999999999-", 10, &a, &b), -400);
	cr_expect_eq(mfs_sv_parse_range("bytes= 1-2", 10, &a, &b), -400);
	cr_expect_eq(mfs_sv_parse_range("bytes=1-2x", 10, &a, &b), -400);
	cr_expect_eq(mfs_sv_parse_range("items=1-2", 10, &a, &b), -400);
	cr_expect_eq(mfs_sv_parse_range("bytes=-", 10, &a, &b), -400);
}
