/*
 * http.h - the small libcurl wrapper under fetch/hub.c (internal to fetch/).
 *
 * What it does:
 *   - a pool of reusable CURL easy handles, each driven by a multi handle
 *     of its own that keeps its connection cache (keep-alive connections
 *     survive between calls);
 *   - tells a dead path (a black hole: nothing acknowledged at the TCP
 *     level) from a slow server within req->dead_ms, on a fresh or a
 *     reused connection;
 *   - one HTTP exchange per mfs_http_perform call, redirects NEVER followed
 *     (hub.c follows them by hand so it can decide where the token goes);
 *   - parses the response headers hub.c needs, resetting them at every
 *     status line (1xx interim answers must not leak into the final one);
 *   - small pure parsers for those headers and for URL origins.
 * What it does not do: retries, error mapping, deciding whether the token
 * may be sent (the caller passes it or not), logging anything secret.
 */
#ifndef MFS_FETCH_HTTP_H
#define MFS_FETCH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

struct mfs_http_pool;

/* What we understood of one response's headers. Strings are malloc'd and
 * owned by the struct (mfs_http_resp_clear frees them). */
struct mfs_http_resp {
	long status;              /* 0 until a status line was seen */
	int64_t content_length;   /* -1 when absent or unparsable */
	bool has_crange;          /* a well-formed "bytes a-b/(total|*)" */
	uint64_t cr_start, cr_end, cr_total;
	bool cr_total_known;
	bool cr_malformed;        /* Content-Range present but not parsable */
	long retry_after_s;       /* -1 when absent (HTTP-date form ignored) */
	long ratelimit_r, ratelimit_t; /* -1 when absent */
	char *location;
	char *link_next;          /* Link: <...>; rel="next" */
	char *err_code;           /* X-Error-Code */
	char *err_msg;            /* X-Error-Message */
	uint64_t body_bytes;      /* body bytes received for this response */
	bool new_conn;            /* the exchange opened a fresh connection (a
				   * failure there says the origin is down; on a
				   * reused one it may just be a stale socket) */
	bool dead_path;           /* given up after req->dead_ms: nothing answered
				   * and the path is dead (a connect unanswered,
				   * or request bytes retransmitted and still not
				   * acknowledged): an outage, reused connection
				   * or not */
};

void mfs_http_resp_init(struct mfs_http_resp *r);
void mfs_http_resp_clear(struct mfs_http_resp *r);

/* Body callback: gets each chunk of the body with the headers already
 * parsed. Returns true to continue, false to abort the transfer (the
 * perform then ends with CURLE_WRITE_ERROR). */
typedef bool (*mfs_http_body_fn)(void *ctx, const struct mfs_http_resp *r,
				 const char *data, size_t len);

/* A body callback that stops the transfer at its first body byte: for
 * probes, which need to see that bodies flow (a server resetting after the
 * headers fails) but not the body itself. */
bool mfs_http_body_stop(void *ctx, const struct mfs_http_resp *r, const char *data, size_t len);

struct mfs_http_req {
	const char *url;
	const char *token;        /* NULL: no Authorization header */
	const char *proxy;        /* NULL: libcurl's environment */
	bool head;
	bool has_range;           /* Range: bytes=range_start-range_end */
	uint64_t range_start, range_end;
	bool compressed_ok;       /* false: Accept-Encoding: identity */
	long timeout_ms;          /* whole exchange, > 0 */
	long connect_timeout_ms;  /* > 0 */
	long stall_ms;            /* abort when no byte arrives for this long; 0 = off */
	long dead_ms;             /* from this long after the start until the first
				   * response byte, give up as soon as the path
				   * is dead (resp->dead_path); a slow server
				   * that acknowledged the request is waited
				   * for. 0 = off */
	mfs_http_body_fn body;    /* NULL: body discarded */
	void *body_ctx;
};

/* The dead_ms every fetch/ client uses: a request the server's TCP has
 * not acknowledged this long after it started (retransmitted at least
 * once by then: the kernel's shortest retransmission timeout is 200 ms),
 * or a connect not done by then, is an outage. Well inside the 1 s in
 * which a reader with no source left must get its EIO. It is the floor:
 * mfs_http_path_dead stretches it with the path's round trip, so a long
 * link is not called dead for being long. */
#define MFS_HTTP_DEAD_MS 500

/* What one socket's TCP_INFO says, for mfs_http_path_dead. */
struct mfs_tcp_seen {
	bool syn_sent;            /* still connecting */
	bool established;
	unsigned retransmits;     /* tcpi_retransmits: unanswered resends now */
	unsigned unacked;         /* tcpi_unacked: segments the peer has not acked */
	int64_t rtt_us;           /* tcpi_rtt of this socket; 0 = none yet */
};

/* Whether a socket `elapsed_ms` into an exchange that got no response byte
 * yet sits on a dead path. `path_rtt_us` is the last round trip measured
 * on this client's established connections (0: none yet), used for a
 * socket still connecting, which has no round trip of its own. The rule:
 *   - connecting: dead once the SYN had to be resent (the kernel's first
 *     SYN timeout is 1 s), or, when the path's round trip is known, once
 *     4 round trips + 300 ms have passed without an answer;
 *   - connected: dead when request bytes were resent and are still not
 *     acknowledged 4 round trips + 300 ms into the exchange (a lost packet
 *     that its resend repairs is acknowledged well before that).
 * With a 600 ms satellite round trip that is 2.7 s; on a LAN 0.3 s, so the
 * MFS_HTTP_DEAD_MS floor decides. Pure: unit-tested without sockets. */
bool mfs_http_path_dead(const struct mfs_tcp_seen *t, int64_t elapsed_ms,
			int64_t path_rtt_us);

int mfs_http_pool_new(struct mfs_http_pool **out);
void mfs_http_pool_free(struct mfs_http_pool *p);

/* Performs one exchange. `resp` must be initialised; it is cleared first.
 * Returns the CURLcode (CURLE_OK when an HTTP response was completely
 * received, whatever its status). A stall (req->stall_ms without a byte)
 * is reported as CURLE_OPERATION_TIMEDOUT, and so is a dead path
 * (resp->dead_path). *connected tells whether a
 * connection was ever established (distinguishes "host down" timeouts). */
CURLcode mfs_http_perform(struct mfs_http_pool *p, const struct mfs_http_req *req,
			  struct mfs_http_resp *resp, bool *connected);

/* ---- pure helpers (also unit-tested through hub_internal.h) ---- */

/* "bytes a-b/total" or "bytes a-b/(star)": 0 or -EINVAL. */
int mfs_http_parse_content_range(const char *v, uint64_t *a, uint64_t *b,
				 uint64_t *total, bool *total_known);
/* First link with rel containing "next"; *out malloc'd. 0, -ENOENT, -ENOMEM. */
int mfs_http_parse_link_next(const char *v, char **out);
/* "r=<int>" and "t=<int>" parameters of a RateLimit header. 0 when both
 * were found, -EINVAL otherwise. */
int mfs_http_parse_ratelimit(const char *v, long *r, long *t);
/* Integer-seconds Retry-After (0..86400); -EINVAL for anything else. */
int mfs_http_parse_retry_after(const char *v, long *secs);

/* "scheme://host:port" of an absolute http(s) URL, lowercased, default
 * port filled in. 0 or -EINVAL. */
int mfs_http_url_origin(const char *url, char *buf, size_t buflen);
/* Resolves `loc` (absolute, or relative to `base`) into a malloc'd
 * absolute http(s) URL. 0, -EINVAL (bad or non-http scheme), -ENOMEM. */
int mfs_http_url_join(const char *base, const char *loc, char **out);
/* Copy of url without its query string or fragment, for logging. */
void mfs_http_url_for_log(const char *url, char *buf, size_t buflen);

#endif
