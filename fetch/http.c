/*
 * http.c - libcurl plumbing for fetch/: handle pool, one exchange per call,
 * response header parsing, URL origin helpers.
 *
 * What it does: sets up each easy handle the same safe way (no signals, no
 * redirects followed, no verbose output that could print the token, only
 * http/https), parses the headers the hub client needs, and hands the body
 * to a callback as it arrives.
 * What it does not do: retries, errno mapping, choosing whether to send the
 * token (see hub.c: only to the endpoint's own origin), logging.
 */
#include "fetch/http.h"

#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

/* Idle handles kept for reuse; more concurrent callers simply create extra
 * handles that are freed when the pool is full. */
#define POOL_IDLE_MAX 16
/* Sockets one handle's connection cache tracks for the dead-path check
 * (hub, CDN, a proxy: a handle keeps a few connections). */
#define CONN_FDS_MAX 8

/* One easy handle and the multi handle that drives it: the multi holds
 * the connection cache (keep-alive survives between calls) and lets
 * mfs_http_perform wake up when it wants, not only when curl does. Used
 * by one thread at a time (taken from the pool). */
struct conn {
	CURL *h;
	CURLM *m;
	int fds[CONN_FDS_MAX];     /* this handle's open sockets (-1: free slot) */
};

struct mfs_http_pool {
	pthread_mutex_t mu;
	/* the last round trip (us) an established socket of this pool showed;
	 * stretches the dead-path bound for sockets still connecting */
	_Atomic int64_t rtt_us;
	struct conn *idle[POOL_IDLE_MAX]; /* protected by mu */
	size_t n_idle;             /* protected by mu */
	char ua[160];              /* immutable after creation */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int mfs_http_pool_new(struct mfs_http_pool **out)
{
	struct mfs_http_pool *p = NULL;
	int rc = 0;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		rc = -EIO;
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = -ENOMEM;
		goto out;
	}
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		p = NULL;
		rc = -ENOMEM;
		goto out;
	}
	snprintf(p->ua, sizeof(p->ua), "modelfs/%s; libcurl/%s", MODELFS_VERSION,
		 curl_version_info(CURLVERSION_NOW)->version);
out:
	*out = p;
	return rc;
}

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	/* the multi closes its cached connections through close_cb: c lives
	 * until then */
	if (c->m)
		curl_multi_cleanup(c->m);
	if (c->h)
		curl_easy_cleanup(c->h);
	free(c);
}

void mfs_http_pool_free(struct mfs_http_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_idle; i++)
		conn_free(p->idle[i]);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static struct conn *pool_take(struct mfs_http_pool *p)
{
	struct conn *c = NULL;

	pthread_mutex_lock(&p->mu);
	if (p->n_idle > 0)
		c = p->idle[--p->n_idle];
	pthread_mutex_unlock(&p->mu);
	if (c) {
		curl_easy_reset(c->h); /* the multi keeps live connections and DNS */
		return c;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	for (size_t i = 0; i < CONN_FDS_MAX; i++)
		c->fds[i] = -1;
	c->h = curl_easy_init();
	c->m = curl_multi_init();
	if (!c->h || !c->m) {
		conn_free(c);
		return NULL;
	}
	return c;
}

static void pool_put(struct mfs_http_pool *p, struct conn *c)
{
	pthread_mutex_lock(&p->mu);
	if (p->n_idle < POOL_IDLE_MAX) {
		p->idle[p->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	conn_free(c);
}

/* curl made a socket for one of c's connections: remember it. */
static int sockopt_cb(void *ud, curl_socket_t fd, curlsocktype purpose)
{
	struct conn *c = ud;

	(void)purpose;
	for (size_t i = 0; i < CONN_FDS_MAX; i++)
		if (c->fds[i] < 0) {
			c->fds[i] = fd;
			break;
		}
	/* no room: that socket is merely not checked for a dead path */
	return CURL_SOCKOPT_OK;
}

static int close_cb(void *ud, curl_socket_t fd)
{
	struct conn *c = ud;

	for (size_t i = 0; i < CONN_FDS_MAX; i++)
		if (c->fds[i] == fd)
			c->fds[i] = -1;
	return close(fd);
}

bool mfs_http_path_dead(const struct mfs_tcp_seen *t, int64_t elapsed_ms,
			int64_t path_rtt_us)
{
	int64_t rtt_us = t->rtt_us > 0 ? t->rtt_us : path_rtt_us;
	int64_t bound_ms = 4 * rtt_us / 1000 + 300;

	if (t->syn_sent)
		return t->retransmits > 0 || (path_rtt_us > 0 && elapsed_ms >= bound_ms);
	return t->established && t->unacked > 0 && t->retransmits > 0 &&
	       elapsed_ms >= bound_ms;
}

/* The path to the server is dead when one of c's sockets has been
 * connecting since the exchange began (SYN unanswered), or holds request
 * bytes the kernel already had to retransmit and the server's TCP still
 * has not acknowledged: a black hole (mfs_http_path_dead says how long
 * each may take). A server that is merely slow to answer has
 * acknowledged the request; idle cached connections hold no
 * unacknowledged bytes. Established sockets teach the pool the path's
 * round trip on the way. */
static bool sock_seen(int fd, struct mfs_tcp_seen *t)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return false;
	*t = (struct mfs_tcp_seen){
		.syn_sent = ti.tcpi_state == TCP_SYN_SENT,
		.established = ti.tcpi_state == TCP_ESTABLISHED,
		.retransmits = ti.tcpi_retransmits,
		.unacked = ti.tcpi_unacked,
		.rtt_us = ti.tcpi_state == TCP_ESTABLISHED ? (int64_t)ti.tcpi_rtt : 0,
	};
	return true;
}

/* After an exchange: the round trip c's connections showed, for the
 * next socket that is still connecting. */
static void learn_rtt(const struct conn *c, struct mfs_http_pool *p)
{
	struct mfs_tcp_seen t;

	for (size_t i = 0; i < CONN_FDS_MAX; i++)
		if (sock_seen(c->fds[i], &t) && t.rtt_us > 0)
			p->rtt_us = t.rtt_us;
}

static bool path_dead(const struct conn *c, struct mfs_http_pool *p, int64_t elapsed_ms)
{
	struct mfs_tcp_seen t;

	for (size_t i = 0; i < CONN_FDS_MAX; i++)
		if (sock_seen(c->fds[i], &t) && mfs_http_path_dead(&t, elapsed_ms, p->rtt_us))
			return true;
	return false;
}

void mfs_http_resp_init(struct mfs_http_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	r->retry_after_s = -1;
	r->ratelimit_r = -1;
	r->ratelimit_t = -1;
}

void mfs_http_resp_clear(struct mfs_http_resp *r)
{
	free(r->location);
	free(r->link_next);
	free(r->err_code);
	free(r->err_msg);
	mfs_http_resp_init(r);
}

bool mfs_http_body_stop(void *ctx, const struct mfs_http_resp *r, const char *data, size_t len)
{
	(void)ctx;
	(void)r;
	(void)data;
	(void)len;
	return false;
}

/* ---------------- pure parsers ---------------- */

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Strict unsigned decimal; advances *s. Rejects empty and overflow. */
static int parse_u64(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
		p++;
	}
	*s = p;
	*out = v;
	return 0;
}

int mfs_http_parse_content_range(const char *v, uint64_t *a, uint64_t *b,
				 uint64_t *total, bool *total_known)
{
	const char *p = skip_ws(v);
	uint64_t x, y, t = 0;
	bool known = false;

	if (strncasecmp(p, "bytes", 5) != 0)
		return -EINVAL;
	p += 5;
	if (*p != ' ' && *p != '=')
		return -EINVAL;
	p = skip_ws(p + 1);
	if (parse_u64(&p, &x) < 0 || *p++ != '-' || parse_u64(&p, &y) < 0 || *p++ != '/')
		return -EINVAL;
	if (*p == '*') {
		p++;
	} else {
		if (parse_u64(&p, &t) < 0)
			return -EINVAL;
		known = true;
	}
	p = skip_ws(p);
	if (*p != '\0' || x > y || (known && y >= t))
		return -EINVAL;
	*a = x;
	*b = y;
	*total = t;
	*total_known = known;
	return 0;
}

int mfs_http_parse_link_next(const char *v, char **out)
{
	const char *p = v;

	*out = NULL;
	for (;;) {
		const char *u0, *u1;
		bool is_next = false;

		p = skip_ws(p);
		while (*p == ',')
			p = skip_ws(p + 1);
		if (*p == '\0')
			return -ENOENT;
		if (*p != '<')
			return -ENOENT; /* malformed: give up rather than guess */
		u0 = p + 1;
		u1 = strchr(u0, '>');
		if (!u1)
			return -ENOENT;
		p = u1 + 1;
		/* parameters: ; name=value | ; name="value" until ',' */
		for (;;) {
			char name[16], val[128];
			size_t nl = 0, vl = 0;

			p = skip_ws(p);
			if (*p != ';')
				break;
			p = skip_ws(p + 1);
			while (*p && *p != '=' && *p != ';' && *p != ',' && *p != ' ') {
				if (nl + 1 < sizeof(name))
					name[nl++] = *p;
				p++;
			}
			name[nl] = '\0';
			p = skip_ws(p);
			if (*p == '=') {
				p = skip_ws(p + 1);
				if (*p == '"') {
					p++;
					while (*p && *p != '"') {
						if (vl + 1 < sizeof(val))
							val[vl++] = *p;
						p++;
					}
					if (*p == '"')
						p++;
				} else {
					while (*p && *p != ';' && *p != ',' && *p != ' ') {
						if (vl + 1 < sizeof(val))
							val[vl++] = *p;
						p++;
					}
				}
			}
			val[vl] = '\0';
			if (strcasecmp(name, "rel") == 0) {
				/* rel may hold several space-separated relation types */
				char *save = NULL;
				for (char *tok = strtok_r(val, " \t", &save); tok;
				     tok = strtok_r(NULL, " \t", &save))
					if (strcasecmp(tok, "next") == 0)
						is_next = true;
			}
		}
		if (is_next) {
			size_t n = (size_t)(u1 - u0);
			char *s;

			if (n == 0)
				return -ENOENT;
			s = malloc(n + 1);
			if (!s)
				return -ENOMEM;
			memcpy(s, u0, n);
			s[n] = '\0';
			*out = s;
			return 0;
		}
		/* skip to the next link-value */
		while (*p && *p != ',')
			p++;
	}
}

int mfs_http_parse_ratelimit(const char *v, long *r, long *t)
{
	long rv = -1, tv = -1;
	const char *p = v;

	while (*p) {
		const char *tok;
		uint64_t x;

		p = skip_ws(p);
		tok = p;
		while (*p && *p != ';' && *p != ',')
			p++;
		/* token is [tok, p) */
		if (p - tok >= 2 && tok[1] == '=' && (tok[0] == 'r' || tok[0] == 't')) {
			const char *q = tok + 2;
			if (parse_u64(&q, &x) == 0 && skip_ws(q) == p && x <= 86400 * 366) {
				if (tok[0] == 'r' && rv < 0)
					rv = (long)x;
				else if (tok[0] == 't' && tv < 0)
					tv = (long)x;
			}
		}
		if (*p)
			p++;
	}
	if (rv < 0 || tv < 0)
		return -EINVAL;
	*r = rv;
	*t = tv;
	return 0;
}

int mfs_http_parse_retry_after(const char *v, long *secs)
{
	const char *p = skip_ws(v);
	uint64_t x;

	if (parse_u64(&p, &x) < 0 || *skip_ws(p) != '\0' || x > 86400)
		return -EINVAL;
	*secs = (long)x;
	return 0;
}

/* Parses url with curl's URL API; absolute http/https only. */
static int url_parse(const char *url, CURLU **out)
{
	CURLU *u = curl_url();
	char *scheme = NULL;
	int rc = 0;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
		rc = -EINVAL;
		curl_url_cleanup(u);
		u = NULL;
	}
	curl_free(scheme);
	*out = u;
	return rc;
}

int mfs_http_url_origin(const char *url, char *buf, size_t buflen)
{
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc;

	rc = url_parse(url, &u);
	if (rc < 0)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		rc = -EINVAL;
		goto out;
	}
	if ((size_t)snprintf(buf, buflen, "%s://%s:%s", scheme, host, port) >= buflen) {
		rc = -EINVAL;
		goto out;
	}
	for (char *c = buf; *c; c++)
		*c = (char)tolower((unsigned char)*c);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

int mfs_http_url_join(const char *base, const char *loc, char **out)
{
	CURLU *u = NULL;
	char *full = NULL, *scheme = NULL;
	int rc;

	*out = NULL;
	rc = url_parse(base, &u);
	if (rc < 0)
		goto out;
	/* With a base set, curl resolves a relative reference against it. */
	if (curl_url_set(u, CURLUPART_URL, loc, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) ||
	    curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		rc = -EINVAL;
		goto out;
	}
	*out = strdup(full);
	if (!*out)
		rc = -ENOMEM;
out:
	curl_free(scheme);
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

void mfs_http_url_for_log(const char *url, char *buf, size_t buflen)
{
	size_t n = strcspn(url, "?#");

	if (buflen == 0)
		return;
	if (n >= buflen)
		n = buflen - 1;
	memcpy(buf, url, n);
	buf[n] = '\0';
}

/* ---------------- one exchange ---------------- */

struct xfer {
	const struct mfs_http_req *req;
	struct mfs_http_resp *resp;
	int64_t last_activity_ms; /* when the last header or body byte came */
	bool stalled;
	bool answered;            /* a header or body byte arrived */
};

static char *dup_value(const char *v, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, v, n);
		s[n] = '\0';
	}
	return s;
}

static bool hname_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	struct mfs_http_resp *r = x->resp;
	size_t total = size * nitems, n = total;
	const char *colon, *v;
	size_t nlen, vlen;
	char *val;

	x->last_activity_ms = mfs_now_ms();
	x->answered = true;
	while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
		n--;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (interim 1xx or final): forget older headers */
		const char *sp = memchr(data, ' ', n);
		mfs_http_resp_clear(r);
		if (sp && (size_t)(sp - data) + 4 <= n && isdigit((unsigned char)sp[1]) &&
		    isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
			r->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
		return total;
	}
	colon = memchr(data, ':', n);
	if (!colon)
		return total;
	nlen = (size_t)(colon - data);
	v = colon + 1;
	while (v < data + n && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(data + n - v);
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	val = dup_value(v, vlen);
	if (!val)
		return 0; /* aborts the transfer: out of memory */

	if (hname_is(data, nlen, "content-length")) {
		const char *p = val;
		uint64_t cl;
		if (parse_u64(&p, &cl) == 0 && *p == '\0' && cl <= INT64_MAX)
			r->content_length = (int64_t)cl;
	} else if (hname_is(data, nlen, "content-range")) {
		if (mfs_http_parse_content_range(val, &r->cr_start, &r->cr_end, &r->cr_total,
						 &r->cr_total_known) == 0)
			r->has_crange = true;
		else
			r->cr_malformed = true;
	} else if (hname_is(data, nlen, "location")) {
		if (!r->location) {
			r->location = val;
			val = NULL;
		}
	} else if (hname_is(data, nlen, "link")) {
		if (!r->link_next)
			(void)mfs_http_parse_link_next(val, &r->link_next);
	} else if (hname_is(data, nlen, "x-error-code")) {
		if (!r->err_code) {
			r->err_code = val;
			val = NULL;
		}
	} else if (hname_is(data, nlen, "x-error-message")) {
		if (!r->err_msg) {
			r->err_msg = val;
			val = NULL;
		}
	} else if (hname_is(data, nlen, "retry-after")) {
		long s;
		if (mfs_http_parse_retry_after(val, &s) == 0)
			r->retry_after_s = s;
	} else if (hname_is(data, nlen, "ratelimit")) {
		long rr, tt;
		if (mfs_http_parse_ratelimit(val, &rr, &tt) == 0) {
			r->ratelimit_r = rr;
			r->ratelimit_t = tt;
		}
	}
	free(val);
	return total;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	x->last_activity_ms = mfs_now_ms();
	x->answered = true;
	x->resp->body_bytes += n;
	if (x->req->body && !x->req->body(x->req->body_ctx, x->resp, data, n))
		return 0; /* != n: curl aborts with CURLE_WRITE_ERROR */
	return n;
}

/* Stall detection. libcurl's LOW_SPEED_LIMIT averages over a window of
 * several seconds, so a burst followed by silence goes unnoticed for far
 * longer than asked; counting time since the last byte is exact. libcurl
 * calls this at least about once per second even when nothing arrives. */
static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (x->req->stall_ms > 0 && mfs_now_ms() - x->last_activity_ms > x->req->stall_ms) {
		x->stalled = true;
		return 1; /* aborts with CURLE_ABORTED_BY_CALLBACK */
	}
	return 0;
}

/* How often a transfer not yet answered is checked for a dead path once
 * req->dead_ms has passed. */
#define DEAD_RECHECK_MS 50

/* Drives one transfer on c's multi handle. Unlike curl_easy_perform, it
 * wakes up when req->dead_ms is due (curl alone would sleep up to a
 * second between progress calls) to look for a dead path. */
static CURLcode run(struct mfs_http_pool *p, struct conn *c, struct xfer *x)
{
	const struct mfs_http_req *req = x->req;
	int64_t start = mfs_now_ms();
	CURLcode cc = CURLE_OK;

	if (curl_multi_add_handle(c->m, c->h) != CURLM_OK)
		return CURLE_FAILED_INIT;
	for (;;) {
		int running = 0, wait_ms = 1000;
		CURLMsg *msg;

		if (curl_multi_perform(c->m, &running) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
		if (!running) {
			int left;
			while ((msg = curl_multi_info_read(c->m, &left)))
				if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->h)
					cc = msg->data.result;
			break;
		}
		if (req->dead_ms > 0 && !x->answered) {
			int64_t due = start + req->dead_ms - mfs_now_ms();
			if (due <= 0 && path_dead(c, p, mfs_now_ms() - start)) {
				/* removing the handle mid-transfer closes that connection */
				x->resp->dead_path = true;
				cc = CURLE_OPERATION_TIMEDOUT;
				break;
			}
			wait_ms = due <= 0 ? DEAD_RECHECK_MS : due < wait_ms ? (int)due : wait_ms;
		}
		if (curl_multi_poll(c->m, NULL, 0, wait_ms, NULL) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
	}
	curl_multi_remove_handle(c->m, c->h);
	return cc;
}

/* "X-Amzn-Trace-Id: <uuid4>": lets a request be found in server logs. */
static void trace_header(char *buf, size_t buflen)
{
	uint8_t b[16] = { 0 };
	static const char hx[] = "0123456789abcdef";
	char u[37];
	size_t j = 0;

	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		/* no entropy yet: an id only needs to be unlikely to repeat */
		uint64_t t = (uint64_t)(uintptr_t)buf ^ (uint64_t)clock();
		memcpy(b, &t, sizeof(t));
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			u[j++] = '-';
		u[j++] = hx[b[i] >> 4];
		u[j++] = hx[b[i] & 15];
	}
	u[j] = '\0';
	snprintf(buf, buflen, "X-Amzn-Trace-Id: %s", u);
}

CURLcode mfs_http_perform(struct mfs_http_pool *p, const struct mfs_http_req *req,
			  struct mfs_http_resp *resp, bool *connected)
{
	struct conn *c;
	CURL *h;
	struct curl_slist *hdrs = NULL, *tmp;
	struct xfer x = { req, resp, mfs_now_ms(), false, false };
	char trace[64], range[64];
	char *auth = NULL;
	size_t auth_len = 0;
	curl_off_t pre = 0;
	CURLcode cc = CURLE_OUT_OF_MEMORY;

	*connected = false;
	mfs_http_resp_clear(resp);
	c = pool_take(p);
	if (!c)
		return CURLE_OUT_OF_MEMORY;
	h = c->h;

	trace_header(trace, sizeof(trace));
	if (!(tmp = curl_slist_append(hdrs, trace)))
		goto out;
	hdrs = tmp;
	if (!req->compressed_ok) {
		if (!(tmp = curl_slist_append(hdrs, "Accept-Encoding: identity")))
			goto out;
		hdrs = tmp;
	}
	if (req->token && req->token[0]) {
		auth_len = strlen("Authorization: Bearer ") + strlen(req->token) + 1;
		auth = malloc(auth_len);
		if (!auth)
			goto out;
		snprintf(auth, auth_len, "Authorization: Bearer %s", req->token);
		tmp = curl_slist_append(hdrs, auth);
		if (!tmp)
			goto out;
		hdrs = tmp;
	}

	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 0L); /* would print Authorization */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, p->ua);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 1L);
	if (req->stall_ms > 0) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	}
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 128L * 1024);
	if (req->compressed_ok)
		curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	if (req->proxy)
		curl_easy_setopt(h, CURLOPT_PROXY, req->proxy);
	if (req->head)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (req->has_range) {
		snprintf(range, sizeof(range), "%llu-%llu",
			 (unsigned long long)req->range_start, (unsigned long long)req->range_end);
		curl_easy_setopt(h, CURLOPT_RANGE, range);
	}
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, c);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, c);

	cc = run(p, c, &x);
	learn_rtt(c, p);
	if (cc == CURLE_ABORTED_BY_CALLBACK && x.stalled)
		cc = CURLE_OPERATION_TIMEDOUT;
	if (curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK && pre > 0)
		*connected = true;
	if (resp->status != 0)
		*connected = true;
	{
		long nc = 0;
		resp->new_conn = curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK &&
				 nc > 0;
	}
	/* The slist references `auth`; drop it from the handle before freeing. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
out:
	/* curl_slist_append copied the Authorization line: wipe the copies too */
	for (tmp = hdrs; tmp; tmp = tmp->next)
		explicit_bzero(tmp->data, strlen(tmp->data));
	curl_slist_free_all(hdrs);
	if (auth) {
		explicit_bzero(auth, auth_len);
		free(auth);
	}
	pool_put(p, c);
	return cc;
}
