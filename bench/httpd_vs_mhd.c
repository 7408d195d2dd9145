/*
 * httpd_vs_mhd.c - the same trivial server on serve/httpd.c and on
 * libmicrohttpd, to measure what moving `modelfs serve` onto
 * libmicrohttpd would change (issue 12). Both answer every GET with the
 * same 16 KiB body from memory, 8 worker threads, keep-alive on, and a
 * 10 s limit on a connection that sends nothing (MHD's per-connection
 * timeout; httpd's whole-request deadline). Driven by
 * bench/httpd_vs_mhd.py (wrk + slowloris); prints its port and serves
 * until stdin closes.
 *
 *   httpd_vs_mhd ours|mhd
 *
 * It does not touch the cache, the index or the network beyond 127.0.0.1.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve/httpd.h"

#define BODY_SIZE (16 * 1024)
static char body[BODY_SIZE];

static int ours_handler(void *ctx, const struct mfs_httpd_req *rq, struct mfs_httpd_conn *c)
{
	char head[128];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
			 "Connection: %s\r\n\r\n", BODY_SIZE, rq->keep_alive ? "keep-alive" : "close");

	(void)ctx;
	if (mfs_httpd_write(c, head, (size_t)n))
		return -1;
	return mfs_httpd_write(c, body, sizeof(body));
}

static enum MHD_Result mhd_handler(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_size, void **ptr)
{
	struct MHD_Response *r = cls;

	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	(void)upload_size;
	(void)ptr;
	return MHD_queue_response(conn, MHD_HTTP_OK, r);
}

/* stdin closing (the driver exiting) is the stop signal */
static int stdin_pipe(void)
{
	int p[2];

	if (pipe(p))
		return -1;
	if (fork() == 0) {
		char b;
		close(p[0]);
		while (read(0, &b, 1) > 0)
			;
		_exit(write(p[1], "x", 1) == 1 ? 0 : 1);
	}
	close(p[1]);
	return p[0];
}

int main(int argc, char **argv)
{
	int stop;

	memset(body, 'x', sizeof(body));
	if (argc != 2)
		return 2;
	stop = stdin_pipe();
	if (!strcmp(argv[1], "ours")) {
		struct mfs_httpd_config cfg = { .workers = 8, .max_conns = 1024 };
		struct mfs_httpd *s;
		if (mfs_httpd_new(&cfg, ours_handler, NULL, &s))
			return 1;
		printf("%d\n", mfs_httpd_port(s));
		fflush(stdout);
		mfs_httpd_run(s, stop);
		mfs_httpd_free(s);
		return 0;
	}
	if (!strcmp(argv[1], "mhd")) {
		struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(body), body,
									 MHD_RESPMEM_PERSISTENT);
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		struct MHD_Daemon *d = MHD_start_daemon(
			MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
			mhd_handler, r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			MHD_OPTION_THREAD_POOL_SIZE, 8u,
			MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
			MHD_OPTION_END);
		const union MHD_DaemonInfo *info;
		struct pollfd p = { .fd = stop, .events = POLLIN };
		if (!d)
			return 1;
		info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
		printf("%u\n", info ? info->port : 0);
		fflush(stdout);
		while (poll(&p, 1, -1) < 0)
			;
		MHD_stop_daemon(d);
		MHD_destroy_response(r);
		return 0;
	}
	return 2;
}
