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

/* ---- a reader that trickles: the whole response is bounded ---------------- */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int write_rc = 1;
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

/* Answers with 64 MiB, far more than the kernel buffers. */
static int big_handler(void *ctx, const struct mfs_httpd_req *rq, struct mfs_httpd_conn *c)
{
	static char chunk[1 << 16];
	const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n";
	int rc = mfs_httpd_write(c, head, sizeof(head) - 1);

	(void)ctx;
	(void)rq;
	for (int i = 0; !rc && i < 1024; i++)
		rc = mfs_httpd_write(c, chunk, sizeof(chunk));
	pthread_mutex_lock(&write_mu);
	write_rc = rc;
	pthread_mutex_unlock(&write_mu);
	return rc;
}

struct run_arg {
	struct mfs_httpd *s;
	int stop;
};

static void *run_server(void *arg)
{
	struct run_arg *ra = arg;

	mfs_httpd_run(ra->s, ra->stop);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A reader taking 4 KiB every 300 ms of a 64 MiB answer: the worker's
 * write gives up (-ETIMEDOUT; with Linux's POLLOUT needing a third of the
 * send buffer free, the per-stall io_ms is what fires here) and the
 * connection is reset, so the megabytes the kernel still buffers for it
 * are dropped, not trickled out for minutes behind a closed socket. */
Test(httpd, a_trickling_reader_is_cut_off, .timeout = 60)
{
	struct mfs_httpd_config cfg = { .workers = 2, .io_ms = 600 };
	struct mfs_httpd *s;
	struct run_arg ra;
	int stop[2], fd, rcvbuf = 4096, rc;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	pthread_t th;
	char buf[4096];
	const char req[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
	double t0;
	bool cut = false;

	cr_assert_eq(pipe(stop), 0);
	cr_assert_eq(mfs_httpd_new(&cfg, big_handler, NULL, &s), 0);
	ra = (struct run_arg){ s, stop[0] };
	cr_assert_eq(pthread_create(&th, NULL, run_server, &ra), 0);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	sa.sin_port = htons((uint16_t)mfs_httpd_port(s));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
	t0 = now_s();
	while (now_s() - t0 < 40) {
		usleep(300 * 1000);
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			/* reset: what the server's kernel still buffered is dropped */
			cut = true;
			break;
		}
	}
	cr_expect(cut, "still served a trickling reader after %.0f s", now_s() - t0);
	pthread_mutex_lock(&write_mu);
	rc = write_rc;
	pthread_mutex_unlock(&write_mu);
	cr_expect_eq(rc, -ETIMEDOUT);
	close(fd);
	cr_assert_eq(write(stop[1], "x", 1), 1);
	pthread_join(th, NULL);
	mfs_httpd_free(s);
	close(stop[0]);
	close(stop[1]);
}
