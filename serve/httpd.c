/*
 * httpd.c - the HTTP/1.1 server core (see httpd.h for what it bounds).
 *
 * Threads: the loop thread owns every connection that is waiting for a
 * request (the `idle` array) and polls them; a complete request moves the
 * connection to the work queue, a worker owns it while it runs the
 * handler, then hands it back through the `back` list and a wake pipe.
 * A connection is thus owned by exactly one thread at a time and needs no
 * lock of its own.
 *
 * Sockets stay non-blocking; workers wait with poll() and a deadline, so
 * a client that stops reading (or sends a body at 1 byte/s) costs one
 * worker for at most io_ms per stall.
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
	char buf[MFS_HTTPD_MAX_HEADER + 1];
	size_t len;
	int64_t since_ms;              /* first byte of the current request, or idle start */
	bool partial;                  /* some bytes of a request arrived */
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
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
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

int mfs_httpd_write(struct mfs_httpd_conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* no progress for io_ms: the client is gone or too slow */
			int rc = wait_fd(c->fd, POLLOUT, c->srv->cfg.io_ms);
			if (rc == -ETIMEDOUT) {
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

static int read_more(struct mfs_httpd_conn *c, char *dst, size_t cap, int ms)
{
	for (;;) {
		ssize_t n = recv(c->fd, dst, cap, 0);
		if (n > 0)
			return (int)n;
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int rc = wait_fd(c->fd, POLLIN, ms);
		if (rc)
			return rc;
	}
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

static void conn_close(struct mfs_httpd *s, struct mfs_httpd_conn *c)
{
	close(c->fd);
	free(c);
	pthread_mutex_lock(&s->mu);
	s->n_conns--;
	pthread_mutex_unlock(&s->mu);
}

static bool head_complete(const struct mfs_httpd_conn *c)
{
	return memmem(c->buf, c->len, "\r\n\r\n", 4) != NULL;
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
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* One request on a connection the worker owns. true: keep the connection. */
static bool handle_one(struct mfs_httpd *s, struct mfs_httpd_conn *c)
{
	struct mfs_httpd_req rq;
	int64_t clen;
	int hl = mfs_httpd_parse(c->buf, c->len, &rq, &clen);
	size_t used;
	bool keep = false;

	pthread_mutex_lock(&s->mu);
	s->st.requests++;
	if (hl < 0)
		s->st.bad_requests++;
	pthread_mutex_unlock(&s->mu);
	if (hl < 0) {
		send_status(c, -hl);
		goto out;
	}
	used = (size_t)hl;
	if (clen > 0) {
		size_t have;
		if ((uint64_t)clen > s->cfg.max_body) {
			send_status(c, 413);
			goto out;
		}
		rq.body = malloc((size_t)clen + 1);
		if (!rq.body) {
			send_status(c, 503);
			goto out;
		}
		have = c->len - used < (size_t)clen ? c->len - used : (size_t)clen;
		memcpy(rq.body, c->buf + used, have);
		used += have;
		while (have < (size_t)clen) {
			int n = read_more(c, rq.body + have, (size_t)clen - have, s->cfg.io_ms);
			if (n < 0)
				goto out;
			have += (size_t)n;
		}
		rq.body[clen] = '\0';
		rq.body_len = (size_t)clen;
	}
	/* keep pipelined bytes for the next request */
	memmove(c->buf, c->buf + used, c->len - used);
	c->len -= used;
	keep = s->handler(s->hctx, &rq, c) == 0 && rq.keep_alive;
out:
	mfs_httpd_req_clear(&rq);
	return keep;
}

static void *worker(void *arg)
{
	struct mfs_httpd *s = arg;

	for (;;) {
		struct mfs_httpd_conn *c;
		bool keep;

		pthread_mutex_lock(&s->mu);
		while (!s->q_head && !s->stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		c = s->q_head;
		s->q_head = c->next;
		if (!s->q_head)
			s->q_tail = NULL;
		pthread_mutex_unlock(&s->mu);

		keep = handle_one(s, c);
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
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
		c->since_ms = mfs_now_ms();
		pthread_mutex_lock(&s->mu);
		s->n_conns++;
		pthread_mutex_unlock(&s->mu);
		s->idle[s->n_idle++] = c;
	}
}

/* Reads what arrived; true when the connection is to be closed. */
static bool conn_readable(struct mfs_httpd_conn *c)
{
	for (;;) {
		size_t room = MFS_HTTPD_MAX_HEADER - c->len;
		ssize_t n;

		if (room == 0) {
			send_status(c, 431);
			return true;
		}
		n = recv(c->fd, c->buf + c->len, room, 0);
		if (n > 0) {
			if (!c->partial) {
				c->partial = true;
				c->since_ms = mfs_now_ms();
			}
			c->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return true;
		if (errno == EINTR)
			continue;
		return errno != EAGAIN && errno != EWOULDBLOCK;
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
			bool drop = false;
			if (rev & (POLLIN | POLLHUP | POLLERR))
				drop = conn_readable(c);
			if (!drop && c->len > 0 && head_complete(c)) {
				idle_remove(s, i);
				enqueue(s, c);
				continue;
			}
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
				back = c->next;
				if (c->len > 0 && head_complete(c))
					enqueue(s, c); /* a pipelined request */
				else if (s->n_idle < s->cfg.max_conns)
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
	if (!s->threads) {
		rc = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < s->cfg.workers; i++) {
		rc = -pthread_create(&s->threads[i], NULL, worker, s);
		if (rc)
			goto fail;
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
	for (int i = 0; i < s->n_idle; i++) {
		close(s->idle[i]->fd);
		free(s->idle[i]);
	}
	for (struct mfs_httpd_conn *c = s->q_head, *n; c; c = n) {
		n = c->next;
		close(c->fd);
		free(c);
	}
	for (struct mfs_httpd_conn *c = s->back, *n; c; c = n) {
		n = c->next;
		close(c->fd);
		free(c);
	}
	free(s->idle);
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
