/*
 * strbuf.h - a growable byte buffer, with JSON string escaping for writers.
 */
#ifndef MFS_UTIL_STRBUF_H
#define MFS_UTIL_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct mfs_strbuf {
	char *buf;   /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	int err;     /* sticky -ENOMEM: appends after a failure are no-ops */
};

#define MFS_STRBUF_INIT { NULL, 0, 0, 0 }

int mfs_strbuf_append(struct mfs_strbuf *sb, const void *data, size_t len);
int mfs_strbuf_puts(struct mfs_strbuf *sb, const char *s);
int mfs_strbuf_printf(struct mfs_strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends `s` as a quoted JSON string, escaping as RFC 8259 requires. */
int mfs_strbuf_json_str(struct mfs_strbuf *sb, const char *s, size_t len);
/* Hands the buffer to the caller (never NULL on success) and resets sb. */
char *mfs_strbuf_detach(struct mfs_strbuf *sb, size_t *len);
void mfs_strbuf_free(struct mfs_strbuf *sb);

#endif
