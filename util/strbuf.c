/*
 * strbuf.c - growable NUL-terminated byte buffer with a sticky error, and
 * JSON string escaping for the few JSON documents modelfs writes (status
 * output, the serve API).
 * It does not validate UTF-8: callers pass strings that were validated on
 * the way in (paths, repo ids); bytes >= 0x80 are copied as they are.
 */
#include "util/strbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sb_reserve(struct mfs_strbuf *sb, size_t extra)
{
	if (sb->err)
		return sb->err;
	if (extra > SIZE_MAX - sb->len - 1) {
		sb->err = -ENOMEM;
		return sb->err;
	}
	size_t need = sb->len + extra + 1;
	if (need <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *nb = realloc(sb->buf, cap);
	if (!nb) {
		sb->err = -ENOMEM;
		return sb->err;
	}
	sb->buf = nb;
	sb->cap = cap;
	return 0;
}

int mfs_strbuf_append(struct mfs_strbuf *sb, const void *data, size_t len)
{
	int rc = sb_reserve(sb, len);

	if (rc < 0)
		return rc;
	if (len)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
	return 0;
}

int mfs_strbuf_puts(struct mfs_strbuf *sb, const char *s)
{
	return mfs_strbuf_append(sb, s, strlen(s));
}

int mfs_strbuf_printf(struct mfs_strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	if (sb->err)
		return sb->err;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((rc = sb_reserve(sb, (size_t)n)) < 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
	return 0;
}

int mfs_strbuf_json_str(struct mfs_strbuf *sb, const char *s, size_t len)
{
	static const char hexd[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;
	int rc;

	if (!s) {
		p = (const unsigned char *)"";
		len = 0;
	}

	/* Worst case 6 output bytes per input byte, plus the quotes. */
	if (len > (SIZE_MAX - 2) / 6) {
		sb->err = sb->err ? sb->err : -ENOMEM;
		return sb->err;
	}
	if ((rc = sb_reserve(sb, len + 2)) < 0)
		return rc;
	mfs_strbuf_append(sb, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		char esc[6];
		size_t el = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		/* Flush the plain run before the byte that needs escaping. */
		mfs_strbuf_append(sb, p + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
			esc[4] = hexd[c >> 4]; esc[5] = hexd[c & 15];
			el = 6;
		}
		mfs_strbuf_append(sb, esc, el);
	}
	mfs_strbuf_append(sb, p + run, len - run);
	return mfs_strbuf_append(sb, "\"", 1);
}

char *mfs_strbuf_detach(struct mfs_strbuf *sb, size_t *len)
{
	char *r;

	if (sb->err) {
		mfs_strbuf_free(sb);
		return NULL;
	}
	if (!sb->buf && sb_reserve(sb, 0) < 0) {
		mfs_strbuf_free(sb);
		return NULL;
	}
	sb->buf[sb->len] = '\0';
	r = sb->buf;
	if (len)
		*len = sb->len;
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	sb->err = 0;
	return r;
}

void mfs_strbuf_free(struct mfs_strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	sb->err = 0;
}
