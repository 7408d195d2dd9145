/*
 * httpd.c - the HTTP/1.1 server core (see httpd.h for what it bounds).
 *
 * Threads: the loop thread owns every connection that is waiting for a
 * request (the `idle` array) and polls them; it reads the head and the
 * body of a request (non-blocking, against one deadline from the request's
 * first byte), parses it, and only a complete request moves the
 * connection to the work queue. A worker owns it while it runs the
 * handler, then hands it back through the `back` list and a wake pipe.
 * A connection is thus owned by exactly one thread at a time and needs no
 * lock of its own.
 *
 * Workers take the oldest queued request whose client address holds fewer
 * than per_client workers, so one address (a crawler, an attacker, a
 * stuck peer) cannot take every worker; the others keep serving.
 *
 * Sockets stay non-blocking; a worker writing to a slow reader waits with
 * poll() for at most io_ms per stall and, over the whole response, for at
 * most io_ms + sent / min_send_rate in all: a reader taking one byte every
 * few seconds is cut off instead of holding a worker forever.
 */
#include "serve/httpd.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"
#include "util/size.h"

struct mfs_httpd_conn {
	struct mfs_httpd_conn *next;   /* in queue/back lists */
	int fd;
	uint32_t addr;                 /* client IPv4 address, network order */
	char client[INET_ADDRSTRLEN];
	char buf[MFS_HTTPD_MAX_HEADER + 1];
	size_t len;
	int64_t since_ms;              /* first byte of the current request, or idle start */
	bool partial;                  /* some bytes of a request arrived */
	/* the request being read (loop thread) or served (worker) */
	bool have_head;                /* rq parsed; the body may still be arriving */
	struct mfs_httpd_req rq;
	size_t body_want;
	/* response pacing (worker) */
	int64_t blocked_ms;            /* time spent waiting for the reader */
	uint64_t sent;
	struct mfs_httpd *srv;
};

struct mfs_httpd {
	struct mfs_httpd_config cfg;
	mfs_httpd_handler handler;
	void *hctx;
	int lfd;
	int port;
	int wake[2];
	/* owned by the loop thread */
	struct mfs_httpd_conn **idle;
	int n_idle;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct mfs_httpd_conn *q_head, *q_tail; /* protected by mu */
	struct mfs_httpd_conn *back;            /* protected by mu */
	bool stopping;                          /* protected by mu */
	int n_conns;                            /* protected by mu */
	struct mfs_httpd_stats st;              /* protected by mu */
	uint32_t *busy;     /* client address per worker, 0 = idle; protected by mu */
	pthread_t *threads;
	int nthreads;
};

/* ---- parsing ------------------------------------------------------------- */

void mfs_httpd_req_clear(struct mfs_httpd_req *rq)
{
	/* target is the start of the one malloc'd copy of the head */
	free(rq->target);
	free(rq->body);
	memset(rq, 0, sizeof(*rq));
}

static bool token_char(int c)
{
	/* c != 0: strchr finds the terminator */
	return c && (isalnum(c) || strchr("!#$%&'*+-.^_`|~", c));
}

int mfs_httpd_parse(const char *buf, size_t len, struct mfs_httpd_req *rq, int64_t *clen)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	char *copy, *line, *next, *sp1, *sp2, *q;
	size_t hlen, mlen;
	int rc = 0;

	memset(rq, 0, sizeof(*rq));
	*clen = -1;
	if (!end)
		return len >= MFS_HTTPD_MAX_HEADER ? -431 : -400;
	hlen = (size_t)(end - buf) + 4;
	if (memchr(buf, '\0', hlen))
		return -400;
	copy = malloc(hlen + 1);
	if (!copy)
		return -503;
	memcpy(copy, buf, hlen);
	copy[hlen] = '\0';
	rq->target = copy; /* freed by req_clear, whatever happens next */

	line = copy;
	next = strstr(line, "\r\n");
	*next = '\0';
	sp1 = strchr(line, ' ');
	if (!sp1)
		return -400;
	mlen = (size_t)(sp1 - line);
	for (size_t i = 0; i < mlen; i++)
		if (!token_char((unsigned char)line[i]))
			return -400;
	if (mlen == 0 || mlen >= sizeof(rq->method))
		return -501;
	memcpy(rq->method, line, mlen);
	sp2 = strchr(sp1 + 1, ' ');
	if (!sp2)
		return -400;
	*sp2 = '\0';
	if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
		rq->keep_alive = true;
	else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
		rq->http10 = true;
	else
		return -505;
	if ((size_t)(sp2 - sp1 - 1) > MFS_HTTPD_MAX_TARGET)
		return -414;
	if (sp1[1] != '/')
		return -400; /* no absolute-form or authority-form for us */
	for (char *p = sp1 + 1; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return -400;
	/* move the target to the start of the buffer so rq->target == copy */
	q = strchr(sp1 + 1, '?');
	{
		size_t tl = strlen(sp1 + 1);
		memmove(copy, sp1 + 1, tl + 1);
		q = q ? copy + (q - (sp1 + 1)) : NULL;
		/* the bytes between the target's copy and `next` are dead now */
	}
	if (q) {
		*q = '\0';
		rq->query = q + 1;
	} else {
		rq->query = copy + strlen(copy); /* "" */
	}

	for (line = next + 2; *line; line = next + 2) {
		char *colon, *v, *ve;
		next = strstr(line, "\r\n");
		if (!next)
			break;
		*next = '\0';
		if (*line == '\0')
			break;
		if (*line == ' ' || *line == '\t')
			return -400; /* obsolete line folding */
		colon = strchr(line, ':');
		if (!colon || colon == line)
			return -400;
		for (char *p = line; p < colon; p++)
			if (!token_char((unsigned char)*p))
				return -400;
		*colon = '\0';
		v = colon + 1;
		/* a bare CR or LF (or any control but HTAB) inside a value is how
		 * requests are smuggled past a proxy that splits lines differently */
		for (const char *p = v; *p; p++)
			if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
				return -400;
		while (*v == ' ' || *v == '\t')
			v++;
		ve = v + strlen(v);
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			*--ve = '\0';
		if (!strcasecmp(line, "range")) {
			rq->range = v;
		} else if (!strcasecmp(line, "authorization")) {
			rq->authorization = v;
		} else if (!strcasecmp(line, "content-type")) {
			rq->content_type = v;
		} else if (!strcasecmp(line, "connection")) {
			if (strcasestr(v, "close"))
				rq->keep_alive = false;
			else if (strcasestr(v, "keep-alive"))
				rq->keep_alive = true;
		} else if (!strcasecmp(line, "transfer-encoding")) {
			rc = -411;
		} else if (!strcasecmp(line, "content-length")) {
			char *e;
			long long n;
			if (!isdigit((unsigned char)*v))
				return -400;
			errno = 0;
			n = strtoll(v, &e, 10);
			if (errno || *e || n < 0 || (*clen >= 0 && *clen != n))
				return -400;
			*clen = n;
		}
	}
	return rc ? rc : (int)hlen;
}

/* ---- I/O with deadlines ---------------------------------------------------- */

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do {
		r = poll(&p, 1, ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	if (p.revents & (POLLERR | POLLNVAL))
		return -EPIPE;
	return 0;
}

/* How long a writer may still wait for this reader: io_ms per stall, and
 * io_ms + sent / min_send_rate over the whole response. */
static int64_t write_budget_ms(const struct mfs_httpd_conn *c)
{
	const struct mfs_httpd_config *cfg = &c->srv->cfg;
	int64_t total = cfg->io_ms + (int64_t)(c->sent * 1000 / cfg->min_send_rate);
	int64_t left = total - c->blocked_ms;

	return left < cfg->io_ms ? left : cfg->io_ms;
}

int mfs_httpd_write(struct mfs_httpd_conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			c->sent += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int64_t budget = write_budget_ms(c), t0 = mfs_now_ms();
			int rc = budget <= 0 ? -ETIMEDOUT : wait_fd(c->fd, POLLOUT, (int)budget);
			c->blocked_ms += mfs_now_ms() - t0;
			if (rc == -ETIMEDOUT) {
				/* the client is gone or too slow: the close that follows
				 * resets the connection, dropping what the kernel still
				 * buffers for it instead of trickling that out too */
				struct linger lg = { .l_onoff = 1, .l_linger = 0 };
				setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
				pthread_mutex_lock(&c->srv->mu);
				c->srv->st.timeouts++;
				pthread_mutex_unlock(&c->srv->mu);
			}
			if (rc)
				return rc;
			continue;
		}
		return n < 0 ? -errno : -EPIPE;
	}
	return 0;
}

static void send_status(struct mfs_httpd_conn *c, int status)
{
	char b[256];
	const char *reason = status == 400 ? "Bad Request" : status == 405 ? "Method Not Allowed" :
			     status == 411 ? "Length Required" : status == 413 ? "Payload Too Large" :
			     status == 414 ? "URI Too Long" : status == 431 ?
			     "Request Header Fields Too Large" : status == 501 ? "Not Implemented" :
			     status == 505 ? "HTTP Version Not Supported" : status == 408 ?
			     "Request Timeout" : "Service Unavailable";
	int n = snprintf(b, sizeof(b), "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n"
			 "Connection: close\r\n\r\n", status, reason);

	/* best effort and never blocking: the connection is closed next */
	if (send(c->fd, b, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		mfs_debug("serve: could not send %d: %s", status, strerror(errno));
}

/* ---- connections ------------------------------------------------------------ */

static void conn_free(struct mfs_httpd_conn *c)
{
	close(c->fd);
	mfs_httpd_req_clear(&c->rq);
	free(c);
}

static void conn_close(struct mfs_httpd *s, struct mfs_httpd_conn *c)
{
	conn_free(c);
	pthread_mutex_lock(&s->mu);
	s->n_conns--;
	pthread_mutex_unlock(&s->mu);
}

static void count(struct mfs_httpd *s, uint64_t *field)
{
	pthread_mutex_lock(&s->mu);
	(*field)++;
	pthread_mutex_unlock(&s->mu);
}

static void enqueue(struct mfs_httpd *s, struct mfs_httpd_conn *c)
{
	pthread_mutex_lock(&s->mu);
	c->next = NULL;
	if (s->q_tail)
		s->q_tail->next = c;
	else
		s->q_head = c;
	s->q_tail = c;
	/* one worker is enough: if this request's client holds its share,
	 * no other worker may take it either, and the worker finishing one of
	 * that client's requests looks at the queue again by itself */
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

enum step { NEED_MORE, READY, DROP };

/* Moves what the buffer holds into the request: parses a complete head,
 * takes the body bytes that came with it. Loop thread only. */
static enum step conn_advance(struct mfs_httpd *s, struct mfs_httpd_conn *c)
{
	int64_t clen;
	int hl;
	size_t take;

	if (!c->have_head) {
		if (c->len == 0 || !memmem(c->buf, c->len, "\r\n\r\n", 4))
			return NEED_MORE;
		hl = mfs_httpd_parse(c->buf, c->len, &c->rq, &clen);
		pthread_mutex_lock(&s->mu);
		s->st.requests++;
		if (hl < 0)
			s->st.bad_requests++;
		pthread_mutex_unlock(&s->mu);
		if (hl < 0) {
			send_status(c, -hl);
			return DROP;
		}
		if (clen > 0 && (uint64_t)clen > s->cfg.max_body) {
			send_status(c, 413);
			return DROP;
		}
		c->rq.client = c->client;
		c->have_head = true;
		c->body_want = clen > 0 ? (size_t)clen : 0;
		memmove(c->buf, c->buf + hl, c->len - (size_t)hl);
		c->len -= (size_t)hl;
		if (c->body_want) {
			c->rq.body = malloc(c->body_want + 1);
			if (!c->rq.body) {
				send_status(c, 503);
				return DROP;
			}
		}
	}
	/* body bytes that arrived with the head (the rest of buf is the next
	 * pipelined request) */
	take = c->body_want - c->rq.body_len;
	if (take > c->len)
		take = c->len;
	if (take) {
		memcpy(c->rq.body + c->rq.body_len, c->buf, take);
		c->rq.body_len += take;
		memmove(c->buf, c->buf + take, c->len - take);
		c->len -= take;
	}
	if (c->rq.body_len < c->body_want)
		return NEED_MORE;
	if (c->rq.body)
		c->rq.body[c->rq.body_len] = '\0';
	return READY;
}

/* Reads what arrived; DROP when the connection is to be closed. The head
 * is read only up to its end ("\r\n\r\n"): what follows is the body, read
 * straight into the request, so a head plus a large body arriving
 * together is not mistaken for an oversized head. */
static enum step conn_readable(struct mfs_httpd *s, struct mfs_httpd_conn *c)
{
	for (;;) {
		enum step st = conn_advance(s, c);
		char *dst;
		size_t room;
		ssize_t n;

		if (st != NEED_MORE)
			return st;
		if (c->have_head) {
			dst = c->rq.body + c->rq.body_len;
			room = c->body_want - c->rq.body_len;
		} else {
			dst = c->buf + c->len;
			room = MFS_HTTPD_MAX_HEADER - c->len;
			if (room == 0) {
				count(s, &s->st.bad_requests);
				send_status(c, 431);
				return DROP;
			}
		}
		n = recv(c->fd, dst, room, 0);
		if (n > 0) {
			if (!c->partial) {
				c->partial = true;
				c->since_ms = mfs_now_ms();
			}
			if (c->have_head)
				c->rq.body_len += (size_t)n;
			else
				c->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return DROP;
		if (errno == EINTR)
			continue;
		return errno != EAGAIN && errno != EWOULDBLOCK ? DROP : NEED_MORE;
	}
}

/* Workers a client address holds now (caller holds mu). */
static int busy_of(const struct mfs_httpd *s, uint32_t addr)
{
	int n = 0;

	for (int i = 0; i < s->nthreads; i++)
		n += s->busy[i] == addr;
	return n;
}

/* The oldest queued connection whose client may take one more worker
 * (caller holds mu); NULL if none. */
static struct mfs_httpd_conn *dequeue(struct mfs_httpd *s)
{
	struct mfs_httpd_conn *prev = NULL;

	for (struct mfs_httpd_conn *c = s->q_head; c; prev = c, c = c->next) {
		if (busy_of(s, c->addr) >= s->cfg.per_client) {
			s->st.client_waits++;
			continue;
		}
		if (prev)
			prev->next = c->next;
		else
			s->q_head = c->next;
		if (s->q_tail == c)
			s->q_tail = prev;
		return c;
	}
	return NULL;
}

struct worker_arg {
	struct mfs_httpd *s;
	int idx;
};

static void *worker(void *arg)
{
	struct mfs_httpd *s = ((struct worker_arg *)arg)->s;
	int idx = ((struct worker_arg *)arg)->idx;

	free(arg);
	for (;;) {
		struct mfs_httpd_conn *c = NULL;
		bool keep;

		pthread_mutex_lock(&s->mu);
		while (!s->stopping && !(c = dequeue(s)))
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		/* 0.0.0.0 never connects, so 0 can mean "idle" */
		s->busy[idx] = c->addr ? c->addr : 1;
		pthread_mutex_unlock(&s->mu);

		c->blocked_ms = 0;
		c->sent = 0;
		keep = s->handler(s->hctx, &c->rq, c) == 0 && c->rq.keep_alive;
		mfs_httpd_req_clear(&c->rq);
		c->have_head = false;
		c->body_want = 0;

		pthread_mutex_lock(&s->mu);
		s->busy[idx] = 0;
		pthread_mutex_unlock(&s->mu);
		if (!keep) {
			conn_close(s, c);
			continue;
		}
		c->since_ms = mfs_now_ms();
		c->partial = c->len > 0;
		pthread_mutex_lock(&s->mu);
		c->next = s->back;
		s->back = c;
		pthread_mutex_unlock(&s->mu);
		if (write(s->wake[1], "x", 1) < 0)
			mfs_debug("serve: wake pipe full"); /* the loop polls anyway */
	}
	return NULL;
}

/* ---- the loop --------------------------------------------------------------- */

static void idle_remove(struct mfs_httpd *s, int i)
{
	s->idle[i] = s->idle[--s->n_idle];
}

static void accept_all(struct mfs_httpd *s)
{
	for (;;) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd = accept4(s->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct mfs_httpd_conn *c;
		int one = 1;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				mfs_warn("serve: out of file descriptors");
			return;
		}
		pthread_mutex_lock(&s->mu);
		s->st.accepted++;
		bool full = s->n_conns >= s->cfg.max_conns;
		pthread_mutex_unlock(&s->mu);
		if (full) {
			/* make room: the connection idle for longest goes */
			int oldest = -1;
			for (int i = 0; i < s->n_idle; i++)
				if (oldest < 0 || s->idle[i]->since_ms < s->idle[oldest]->since_ms)
					oldest = i;
			if (oldest < 0) {
				close(fd); /* every slot is busy in a worker */
				continue;
			}
			struct mfs_httpd_conn *o = s->idle[oldest];
			idle_remove(s, oldest);
			conn_close(s, o);
			pthread_mutex_lock(&s->mu);
			s->st.evicted_idle++;
			pthread_mutex_unlock(&s->mu);
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->srv = s;
		c->addr = sa.sin_addr.s_addr;
		if (!inet_ntop(AF_INET, &sa.sin_addr, c->client, sizeof(c->client)))
			snprintf(c->client, sizeof(c->client), "?");
		c->since_ms = mfs_now_ms();
		pthread_mutex_lock(&s->mu);
		s->n_conns++;
		pthread_mutex_unlock(&s->mu);
		s->idle[s->n_idle++] = c;
	}
}

int mfs_httpd_run(struct mfs_httpd *s, int stop_fd)
{
	struct pollfd *pf = calloc((size_t)s->cfg.max_conns + 3, sizeof(*pf));
	int rc = 0;

	if (!pf)
		return -ENOMEM;
	for (;;) {
		int n = 0, r;
		int64_t now;

		pf[n++] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = s->wake[0], .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
		for (int i = 0; i < s->n_idle; i++)
			pf[n++] = (struct pollfd){ .fd = s->idle[i]->fd, .events = POLLIN };
		r = poll(pf, (nfds_t)n, 250);
		if (r < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (r > 0 && pf[0].revents)
			break;
		now = mfs_now_ms();
		/* connections polled this round, newest state first */
		for (int i = s->n_idle - 1; i >= 0; i--) {
			struct mfs_httpd_conn *c = s->idle[i];
			short rev = r > 0 && 3 + i < n ? pf[3 + i].revents : 0;
			enum step st = NEED_MORE;
			bool drop;
			if (rev & (POLLIN | POLLHUP | POLLERR))
				st = conn_readable(s, c);
			if (st == READY) {
				idle_remove(s, i);
				enqueue(s, c);
				continue;
			}
			drop = st == DROP;
			if (!drop && ((c->partial && now - c->since_ms > s->cfg.header_ms) ||
				      (!c->partial && now - c->since_ms > s->cfg.idle_ms))) {
				pthread_mutex_lock(&s->mu);
				s->st.timeouts++;
				pthread_mutex_unlock(&s->mu);
				if (c->partial)
					send_status(c, 408);
				drop = true;
			}
			if (drop) {
				idle_remove(s, i);
				conn_close(s, c);
			}
		}
		if (r > 0 && pf[1].revents) {
			char junk[256];
			struct mfs_httpd_conn *back;
			while (read(s->wake[0], junk, sizeof(junk)) > 0)
				;
			pthread_mutex_lock(&s->mu);
			back = s->back;
			s->back = NULL;
			pthread_mutex_unlock(&s->mu);
			while (back) {
				struct mfs_httpd_conn *c = back;
				enum step st = conn_advance(s, c);
				back = c->next;
				if (st == READY)
					enqueue(s, c); /* a pipelined request */
				else if (st == NEED_MORE && s->n_idle < s->cfg.max_conns)
					s->idle[s->n_idle++] = c;
				else
					conn_close(s, c);
			}
		}
		if (r > 0 && pf[2].revents)
			accept_all(s);
	}
	free(pf);
	return rc;
}

int mfs_httpd_new(const struct mfs_httpd_config *cfg, mfs_httpd_handler h, void *ctx,
		  struct mfs_httpd **out)
{
	struct mfs_httpd *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct rlimit rl;
	int one = 1, rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->lfd = -1;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->cfg = *cfg;
	if (!s->cfg.host)
		s->cfg.host = "127.0.0.1";
	if (s->cfg.workers <= 0)
		s->cfg.workers = 8;
	if (s->cfg.max_conns <= 0)
		s->cfg.max_conns = 512;
	if (s->cfg.idle_ms <= 0)
		s->cfg.idle_ms = 30000;
	if (s->cfg.header_ms <= 0)
		s->cfg.header_ms = 10000;
	if (s->cfg.io_ms <= 0)
		s->cfg.io_ms = 10000;
	if (!s->cfg.max_body)
		s->cfg.max_body = 1 << 20;
	if (s->cfg.per_client <= 0) {
		int reserve = s->cfg.workers / 4 > 1 ? s->cfg.workers / 4 : 1;
		s->cfg.per_client = s->cfg.workers - reserve > 1 ? s->cfg.workers - reserve : 1;
	}
	if (!s->cfg.min_send_rate)
		s->cfg.min_send_rate = 16 * 1024;
	s->handler = h;
	s->hctx = ctx;
	/* each connection is a descriptor: make sure the limit allows ours */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)s->cfg.max_conns + 256) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)s->cfg.max_conns + 256 ? rl.rlim_max
									   : (rlim_t)s->cfg.max_conns + 256;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (inet_pton(AF_INET, s->cfg.host, &sa.sin_addr) != 1) {
		rc = -EINVAL;
		goto fail;
	}
	sa.sin_port = htons((uint16_t)s->cfg.port);
	s->idle = calloc((size_t)s->cfg.max_conns, sizeof(*s->idle));
	if (!s->idle) {
		rc = -ENOMEM;
		goto fail;
	}
	if (pipe2(s->wake, O_NONBLOCK | O_CLOEXEC)) {
		rc = -errno;
		goto fail;
	}
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		rc = -errno;
		goto fail;
	}
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s->lfd, 512) ||
	    getsockname(s->lfd, (struct sockaddr *)&sa, &sl)) {
		rc = -errno;
		goto fail;
	}
	s->port = ntohs(sa.sin_port);
	s->threads = calloc((size_t)s->cfg.workers, sizeof(pthread_t));
	s->busy = calloc((size_t)s->cfg.workers, sizeof(*s->busy));
	if (!s->threads || !s->busy) {
		rc = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < s->cfg.workers; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));
		if (!wa) {
			rc = -ENOMEM;
			goto fail;
		}
		*wa = (struct worker_arg){ s, i };
		rc = -pthread_create(&s->threads[i], NULL, worker, wa);
		if (rc) {
			free(wa);
			goto fail;
		}
		s->nthreads++;
	}
	*out = s;
	return 0;
fail:
	mfs_httpd_free(s);
	return rc;
}

int mfs_httpd_port(const struct mfs_httpd *s)
{
	return s->port;
}

void mfs_httpd_free(struct mfs_httpd *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	free(s->threads);
	for (int i = 0; i < s->n_idle; i++)
		conn_free(s->idle[i]);
	for (struct mfs_httpd_conn *c = s->q_head, *n; c; c = n) {
		n = c->next;
		conn_free(c);
	}
	for (struct mfs_httpd_conn *c = s->back, *n; c; c = n) {
		n = c->next;
		conn_free(c);
	}
	free(s->idle);
	free(s->busy);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

void mfs_httpd_stats(struct mfs_httpd *s, struct mfs_httpd_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	st->open_conns = s->n_conns;
	pthread_mutex_unlock(&s->mu);
}
