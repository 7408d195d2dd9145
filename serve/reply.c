/*
 * reply.c - the HTTP side of `modelfs serve`'s answers: status lines and
 * headers, hub-shaped JSON errors, query strings, percent-decoding and
 * the Range header. Pure functions of their arguments besides the writes;
 * no access decisions (access.c) and no content (content.c).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/internal.h"

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool mfs_sv_pct_decode(const char *in, size_t n, char *out, bool form)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '%') {
			int h, l;
			if (i + 2 >= n)
				return false;
			h = hexval((unsigned char)in[i + 1]);
			l = hexval((unsigned char)in[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return false;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = form && in[i] == '+' ? ' ' : in[i];
		}
	}
	out[o] = '\0';
	return true;
}

bool mfs_sv_qparam(const char *q, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	for (const char *p = q; p && *p;) {
		size_t len = strcspn(p, "&");
		if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t vl = len - nl - 1;
			if (vl >= cap)
				return false;
			return mfs_sv_pct_decode(p + nl + 1, vl, out, true);
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return false;
}

bool mfs_sv_qflag(const char *q, const char *name)
{
	char v[8];

	return mfs_sv_qparam(q, name, v, sizeof(v)) && (!strcasecmp(v, "true") || !strcmp(v, "1"));
}

/* ---- responses ---------------------------------------------------------------- */

const char *mfs_sv_reason(int st)
{
	switch (st) {
	case 200: return "OK";
	case 206: return "Partial Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 429: return "Too Many Requests";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 416: return "Range Not Satisfiable";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	default: return "Error";
	}
}

/* Sends status + headers (extra: complete header lines) + body. */
int mfs_sv_reply(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq, int st,
		 const char *ctype, const char *extra, const char *body, size_t blen)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	bool head = strcmp(rq->method, "HEAD") == 0;
	int rc;

	mfs_strbuf_printf(&sb, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s"
			  "Connection: %s\r\n\r\n", st, mfs_sv_reason(st), blen,
			  ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
			  extra ? extra : "", rq->keep_alive ? "keep-alive" : "close");
	if (sb.err) {
		mfs_strbuf_free(&sb);
		return -ENOMEM;
	}
	if (!head && blen)
		mfs_strbuf_append(&sb, body, blen);
	rc = sb.err ? -ENOMEM : mfs_httpd_write(c, sb.buf, sb.len);
	mfs_strbuf_free(&sb);
	return rc;
}

int mfs_sv_error(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq, int st,
		       const char *code, const char *msg, const char *commit)
{
	struct mfs_strbuf h = MFS_STRBUF_INIT, b = MFS_STRBUF_INIT;
	int rc;

	if (code)
		mfs_strbuf_printf(&h, "X-Error-Code: %s\r\n", code);
	if (msg)
		mfs_strbuf_printf(&h, "X-Error-Message: %s\r\n", msg);
	if (commit)
		mfs_strbuf_printf(&h, "X-Repo-Commit: %s\r\n", commit);
	mfs_strbuf_puts(&b, "{\"error\":");
	mfs_strbuf_json_str(&b, msg ? msg : mfs_sv_reason(st), strlen(msg ? msg : mfs_sv_reason(st)));
	mfs_strbuf_puts(&b, "}");
	rc = h.err || b.err ? -ENOMEM :
	     mfs_sv_reply(c, rq, st, "application/json; charset=utf-8", h.buf, b.buf, b.len);
	mfs_strbuf_free(&h);
	mfs_strbuf_free(&b);
	return rc;
}

int mfs_sv_json(struct mfs_httpd_conn *c, const struct mfs_httpd_req *rq,
		      struct mfs_strbuf *sb, const char *commit)
{
	char extra[80] = "";

	if (sb->err)
		return mfs_sv_error(c, rq, 500, NULL, "Out of memory", NULL);
	if (commit)
		snprintf(extra, sizeof(extra), "X-Repo-Commit: %s\r\n", commit);
	return mfs_sv_reply(c, rq, 200, "application/json; charset=utf-8", extra, sb->buf, sb->len);
}

/* ---- Range -------------------------------------------------------------------- */

/* Only single ranges: a multi-range answer is multipart, which no client
 * of ours asks for. */
int mfs_sv_parse_range(const char *h, uint64_t size, uint64_t *a, uint64_t *b)
{
	const char *p;
	char *e;
	unsigned long long x, y;

	if (!h)
		return 1;
	if (strncasecmp(h, "bytes=", 6) != 0)
		return -400;
	p = h + 6;
	if (strchr(p, ','))
		return -416; /* multi-range: not supported */
	if (*p == '-') {
		if (!isdigit((unsigned char)p[1]))
			return -400;
		errno = 0;
		y = strtoull(p + 1, &e, 10);
		if (errno || *e)
			return -400;
		if (y == 0 || size == 0)
			return -416;
		*a = y >= size ? 0 : size - y;
		*b = size - 1;
		return 0;
	}
	if (!isdigit((unsigned char)*p))
		return -400;
	errno = 0;
	x = strtoull(p, &e, 10);
	if (errno || *e != '-')
		return -400;
	p = e + 1;
	if (*p == '\0') {
		y = size ? size - 1 : 0;
	} else {
		if (!isdigit((unsigned char)*p))
			return -400;
		errno = 0;
		y = strtoull(p, &e, 10);
		if (errno || *e)
			return -400;
		if (y < x)
			return -400;
	}
	if (x >= size)
		return -416;
	if (y >= size)
		y = size - 1;
	*a = x;
	*b = y;
	return 0;
}
