/*
 * httpd.h - a small, defensive HTTP/1.1 server core for `modelfs serve`.
 *
 * What it does: one poll() thread accepts connections and collects whole
 * requests, head and body (idle keep-alive connections and slow senders
 * cost no thread); a bounded pool of worker threads runs the handler for
 * complete requests. Bounded in every direction: max connections (the
 * oldest idle or half-sent one is closed to admit a new one), header size,
 * one deadline for the whole request to arrive (head + body: slowloris and
 * slow POSTs), idle keep-alive time, body size, workers per client address
 * (one address never holds them all), and a minimum send rate for
 * responses (time blocked on a slow reader is bounded by io_ms plus
 * bytes sent / min_send_rate, so a reader trickling bytes is cut off
 * instead of holding a worker forever). Keep-alive and pipelining work.
 * What it does not do: TLS, chunked request bodies (refused with 411),
 * routing (the handler does it), know anything about models.
 */
#ifndef MFS_SERVE_HTTPD_H
#define MFS_SERVE_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MFS_HTTPD_MAX_TARGET 8192
#define MFS_HTTPD_MAX_HEADER (16 * 1024)

struct mfs_httpd_config {
	const char *host;        /* default 127.0.0.1 */
	int port;                /* 0 = any free port */
	int workers;             /* default 8 */
	int max_conns;           /* default 512 */
	int idle_ms;             /* keep-alive idle limit; default 30000 */
	int header_ms;           /* whole request (head + body) must arrive within
				  * this of its first byte; default 10000 */
	int io_ms;               /* no progress on a send for this long = drop; 10000 */
	size_t max_body;         /* default 1 MiB */
	int per_client;          /* most workers one client address may hold;
				  * default workers - max(1, workers / 4) */
	uint32_t min_send_rate;  /* bytes/s a reader must take; default 16 KiB/s */
};

struct mfs_httpd_req {
	char method[8];
	char *target;            /* path part, still percent-encoded */
	char *query;             /* after '?', "" when none */
	bool http10;
	bool keep_alive;
	const char *range;       /* header values, NULL when absent */
	const char *authorization;
	const char *content_type;
	char *body;              /* NUL-terminated; NULL when none */
	size_t body_len;
	const char *client;      /* the peer's address, dotted (set by the server) */
};

struct mfs_httpd_conn;
/* Runs in a worker thread; writes the whole response with
 * mfs_httpd_write. Returning non-zero closes the connection. */
typedef int (*mfs_httpd_handler)(void *ctx, const struct mfs_httpd_req *rq,
				 struct mfs_httpd_conn *c);

/* Writes all of buf (bounded by io_ms without progress). 0 or -errno;
 * after an error the connection is closed by the server. */
int mfs_httpd_write(struct mfs_httpd_conn *c, const void *buf, size_t len);

struct mfs_httpd;
/* Binds and listens (so the port is known before run). */
int mfs_httpd_new(const struct mfs_httpd_config *cfg, mfs_httpd_handler h, void *ctx,
		  struct mfs_httpd **out);
int mfs_httpd_port(const struct mfs_httpd *s);
/* Serves until stop_fd becomes readable. */
int mfs_httpd_run(struct mfs_httpd *s, int stop_fd);
void mfs_httpd_free(struct mfs_httpd *s);

struct mfs_httpd_stats {
	uint64_t accepted, requests, evicted_idle, timeouts, bad_requests;
	uint64_t client_waits;   /* a request waited: its client held its share */
	int open_conns;
};
void mfs_httpd_stats(struct mfs_httpd *s, struct mfs_httpd_stats *st);

/* Parses one request head (exposed for tests). buf holds at least the
 * head up to "\r\n\r\n" (bytes after it are not looked at). Returns the
 * head length, or a negative HTTP status to answer (-400 also for a
 * control character such as a bare CR or LF inside a header, -414, -431,
 * -501...). Strings point into a malloc'd copy kept in rq (free with
 * mfs_httpd_req_clear). */
int mfs_httpd_parse(const char *buf, size_t len, struct mfs_httpd_req *rq,
		    int64_t *content_length);
void mfs_httpd_req_clear(struct mfs_httpd_req *rq);

#endif
